/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A discrete-event simulation of the directory: N super nodes, each running the real gi
 * or flood engine, over a simulated fabric of links with per-link delay and loss, with
 * churn. Used by bench/sim-directory (make bench) and by tests/unit/test-gi.c. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  HARK_DIRSIM_GI,
  HARK_DIRSIM_FLOOD
} HarkDirSimStrategy;

typedef struct {
  HarkDirSimStrategy strategy;
  guint sns; /* super nodes at the start */
  guint users; /* users (each with 1 or 2 devices) */
  guint lookups; /* lookups during the churn phase */
  guint32 seed;
  guint delay_min_ms, delay_max_ms; /* one-way delay of a link, uniform per pair */
  double loss; /* a message lost on a link is resent after rto_ms */
  guint rto_ms;
  double churn_per_minute; /* share of SNs replaced each simulated minute (0.01) */
  double mass_departure; /* share of SNs that crash at once, halfway (0.10) */
  guint keepalive_s; /* a crashed SN's links are noticed dead after this */
  guint reconnect_s; /* a device whose SN left is back (and publishes) after this */
  guint churn_minutes; /* length of the measured phase */
  guint idle_minutes; /* the idle phase that gives the idle cost */
  guint gi_k, gi_r; /* gi parameters (0: the engine's default) */
  guint cache_ttl_s;
} HarkDirSimParams;

typedef struct {
  guint sns, users, lookups, found, forged_refused;
  double success; /* found / lookups of users online within 72 h */
  double hops_median, hops_p95, hops_p99; /* gi: SN hops; flood: rounds */
  double msgs_per_lookup, msgs_median, msgs_p99; /* messages a lookup caused */
  double time_median_ms, time_p95_ms;
  double idle_msgs_per_sn_s; /* messages per SN and second in the idle phase */
  double bytes_per_record; /* store bytes / records stored (replicas included) */
  double records_per_sn;
  guint64 messages_total;
  guint departed, joined;
  guint asked_again; /* lookups whose SN left before the answer, asked again elsewhere */
  double wall_s;
} HarkDirSimResult;

void hark_dirsim_params_init(HarkDirSimParams *params);
void hark_dirsim_run(const HarkDirSimParams *params, HarkDirSimResult *result);

G_END_DECLS
