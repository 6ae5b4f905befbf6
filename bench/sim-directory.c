/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sim-directory: runs the directory simulation (directory-sim.c) for each number of SNs
 * and strategy given and prints one JSON object per run (make bench reads them).
 *   sim-directory [--sns 100,1000,10000] [--strategy gi,flood] [--users-per-sn 2]
 *                 [--lookups 1000] [--seed 1] [--loss 0.01] [--r 3] [--churn 0.01]
 *                 [--mass 0.10]
 * HARK_SIM_DEBUG=1 prints each lookup that found nothing (who stores the key). */
#include "directory-sim.h"

#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
  g_autofree gchar *sns = g_strdup("100,1000,10000"), *strategies = g_strdup("gi,flood");
  gint users_per_sn = 2, lookups = 1000, seed = 1, replicas = 3;
  gdouble loss = 0.01, churn = 0.01, mass = 0.10;
  GOptionEntry entries[] = {
    { "sns", 0, 0, G_OPTION_ARG_STRING, &sns, "numbers of SNs", "N,N" },
    { "strategy", 0, 0, G_OPTION_ARG_STRING, &strategies, "gi and/or flood", "S,S" },
    { "users-per-sn", 0, 0, G_OPTION_ARG_INT, &users_per_sn, "users per SN", "U" },
    { "lookups", 0, 0, G_OPTION_ARG_INT, &lookups, "lookups per run", "L" },
    { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "random seed", "S" },
    { "loss", 0, 0, G_OPTION_ARG_DOUBLE, &loss, "link loss (resent after 200 ms)", "P" },
    { "r", 0, 0, G_OPTION_ARG_INT, &replicas, "gi: replicas per record", "R" },
    { "churn", 0, 0, G_OPTION_ARG_DOUBLE, &churn, "share of SNs replaced per minute", "P" },
    { "mass", 0, 0, G_OPTION_ARG_DOUBLE, &mass, "share of SNs crashing at once", "P" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- simulate the directory");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "sim-directory: %s\n", error->message);
    return 2;
  }
  g_auto(GStrv) ns = g_strsplit(sns, ",", -1), ss = g_strsplit(strategies, ",", -1);
  for (guint i = 0; ns[i] != NULL; i++)
    for (guint j = 0; ss[j] != NULL; j++) {
      HarkDirSimParams p;
      HarkDirSimResult r;
      hark_dirsim_params_init(&p);
      p.strategy = g_str_equal(ss[j], "flood") ? HARK_DIRSIM_FLOOD : HARK_DIRSIM_GI;
      p.sns = (guint)atoi(ns[i]);
      p.users = p.sns * (guint)users_per_sn;
      p.lookups = (guint)lookups;
      p.seed = (guint32)seed;
      p.loss = loss;
      p.gi_r = (guint)replicas;
      p.churn_per_minute = churn;
      p.mass_departure = mass;
      hark_dirsim_run(&p, &r);
      printf("{\"strategy\": \"%s\", \"sns\": %u, \"users\": %u, \"lookups\": %u, "
             "\"found\": %u, \"success\": %.2f, \"hops_median\": %.1f, \"hops_p95\": %.1f, "
             "\"hops_p99\": %.1f, \"msgs_per_lookup\": %.2f, \"msgs_median\": %.1f, "
             "\"msgs_p99\": %.1f, \"time_median_ms\": %.1f, \"time_p95_ms\": %.1f, "
             "\"idle_msgs_per_sn_s\": %.4f, \"bytes_per_record\": %.0f, "
             "\"records_per_sn\": %.1f, \"departed\": %u, \"joined\": %u, "
             "\"forged_refused\": %u, \"asked_again\": %u, \"messages_total\": %" G_GUINT64_FORMAT ", "
             "\"delay_ms\": [%u, %u], \"loss\": %.3f, \"r\": %u, \"wall_s\": %.1f}\n",
             ss[j], r.sns, r.users, r.lookups, r.found, r.success, r.hops_median, r.hops_p95,
             r.hops_p99, r.msgs_per_lookup, r.msgs_median, r.msgs_p99, r.time_median_ms, r.time_p95_ms, r.idle_msgs_per_sn_s,
             r.bytes_per_record, r.records_per_sn, r.departed, r.joined, r.forged_refused, r.asked_again,
             r.messages_total, p.delay_min_ms, p.delay_max_ms, p.loss, p.gi_r, r.wall_s);
      fflush(stdout);
    }
  return 0;
}
