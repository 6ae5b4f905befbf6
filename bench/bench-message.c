/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-message.c: what an end-to-end message envelope costs (core/message/).
 *
 *   bench-message [--rounds N]
 *
 * For 1, 10, 100 and 200 recipient devices (200: a group of 100 members with 2 devices
 * each, sealed once for all of them): the time to seal one text (which checks every
 * recipient's certificate against the CA, as a sender does), to parse and verify it (what
 * each SN on the path and the login server do), and to open it on one recipient device,
 * each the median of N rounds in CPU time; and the envelope's size. Prints JSON. One
 * thread, keys and certificates from a test CA made in a temporary directory. */
#include "message-envelope.h"
#include "test-files.h"
#include "test-nodes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW G_GINT64_CONSTANT(1900000000)

/* This process's CPU time in µs: the machine is shared, so wall time would measure the
 * others' load as well. */
static gint64
cpu_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static int
compare_gint64(gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

static double
median_us(GArray *samples)
{
  g_array_sort(samples, compare_gint64);
  return (double)g_array_index(samples, gint64, samples->len / 2);
}

typedef struct {
  HarkIdentity *key;
  GBytes *der;
} Device;

static void
measure(const char *ca_pem, Device *sender, Device *devices, guint n, int rounds, gboolean last)
{
  HarkMessageRecipient *r = g_new0(HarkMessageRecipient, n);
  for (guint i = 0; i < n; i++)
    r[i] = (HarkMessageRecipient){ hark_identity_get_fingerprint(devices[i].key), devices[i].der };
  g_autoptr(GVariant) inner =
    g_variant_ref_sink(hark_message_text_new("a message of about the length people type", NULL));
  HarkMessageSealParams p = {
    .identity = sender->key,
    .certificate = sender->der,
    .sender = "alice",
    .ca_pem = ca_pem,
    .to = "bob",
    .sequence = 1,
    .counter = 1,
    .time = NOW,
    .inner = inner,
    .recipients = r,
    .n_recipients = n,
  };
  g_autoptr(GArray) seal = g_array_new(FALSE, FALSE, sizeof(gint64));
  g_autoptr(GArray) verify = g_array_new(FALSE, FALSE, sizeof(gint64));
  g_autoptr(GArray) open = g_array_new(FALSE, FALSE, sizeof(gint64));
  gsize size = 0;
  for (int round = 0; round < rounds; round++) {
    g_autoptr(GError) error = NULL;
    gint64 t0 = cpu_us();
    g_autoptr(GBytes) bytes = hark_message_seal(&p, &error);
    gint64 t1 = cpu_us();
    g_autoptr(HarkEnvelope) e = hark_envelope_parse(bytes, &error);
    gboolean verified = e != NULL && hark_envelope_verify(e, ca_pem, NOW, &error);
    gint64 t2 = cpu_us();
    g_autoptr(GVariant) opened =
      verified ? hark_envelope_open(e, devices[n - 1].key, &error) : NULL;
    gint64 t3 = cpu_us();
    if (opened == NULL)
      g_error("round %d with %u recipients: %s", round, n, error->message);
    gint64 d[] = { t1 - t0, t2 - t1, t3 - t2 };
    g_array_append_val(seal, d[0]);
    g_array_append_val(verify, d[1]);
    g_array_append_val(open, d[2]);
    size = g_bytes_get_size(bytes);
  }
  g_free(r);
  printf("    {\"recipients\": %u, \"seal_us\": %.0f, \"verify_us\": %.0f, \"open_us\": %.0f, "
         "\"bytes\": %" G_GSIZE_FORMAT "}%s\n",
         n, median_us(seal), median_us(verify), median_us(open), size, last ? "" : ",");
}

int
main(int argc, char **argv)
{
  int rounds = 20;
  if (argc == 3 && strcmp(argv[1], "--rounds") == 0)
    rounds = atoi(argv[2]);
  else if (argc != 1) {
    fprintf(stderr, "usage: bench-message [--rounds N]\n");
    return 2;
  }
  if (rounds < 1)
    rounds = 1;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("hark-bench-message-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *ca_dir = g_build_filename(dir, "ca", NULL);
  g_autoptr(HarkCa) ca = hark_ca_load_or_create(ca_dir, "bench CA", &error);
  g_assert_no_error(error);
  const char *ca_pem = hark_ca_get_certificate_pem(ca);
  Device sender = { hark_test_identity_new(dir, "alice.pem"), NULL };
  sender.der = hark_test_issue_device_der(ca, "alice", sender.key, NOW - 3600, 86400);
  enum {
    MOST = 200
  };
  Device devices[MOST];
  for (guint i = 0; i < MOST; i++) {
    g_autofree char *name = g_strdup_printf("bob%u.pem", i);
    devices[i].key = hark_test_identity_new(dir, name);
    devices[i].der = hark_test_issue_device_der(ca, "bob", devices[i].key, NOW - 3600, 86400);
  }
  printf("{\n  \"rounds\": %d,\n  \"results\": [\n", rounds);
  const guint counts[] = { 1, 10, 100, MOST };
  for (guint i = 0; i < G_N_ELEMENTS(counts); i++)
    measure(ca_pem, &sender, devices, counts[i], rounds, i + 1 == G_N_ELEMENTS(counts));
  printf("  ]\n}\n");
  for (guint i = 0; i < MOST; i++) {
    hark_identity_free(devices[i].key);
    g_bytes_unref(devices[i].der);
  }
  hark_identity_free(sender.key);
  g_bytes_unref(sender.der);
  hark_test_remove_tree(dir);
  return 0;
}
