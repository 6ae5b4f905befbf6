/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-envelope-seeds DIR: writes fuzz-envelope's keys (DIR/fuzz-envelope-keys.h: a test
 * CA, the recipient device's private key and the fuzzer's clock) and its seeds
 * (DIR/corpus/envelope/: envelopes that CA's devices sealed, so that mutations reach past
 * the signature and into the decryption). New keys each run (the CA key is thrown away):
 * commit the header with the seeds. Built by hand:
 *   ninja -C build tests/fuzz/make-envelope-seeds &&
 *   build/tests/fuzz/make-envelope-seeds tests/fuzz */
#include "message-envelope.h"
#include "test-nodes.h"

#include <hark/certificate.h>
#include <hark/identity.h>

#include <glib/gstdio.h>

#include <stdio.h>
#include <string.h>

#define NOT_BEFORE G_GINT64_CONSTANT(1735689600) /* 2025-01-01 */
#define LIFETIME (G_GINT64_CONSTANT(20) * 365 * 86400)
#define NOW G_GINT64_CONSTANT(1893456000) /* 2030-01-01, the fuzzer's clock */

typedef struct {
  HarkIdentity *key;
  char *path;
  GBytes *der;
} Device;

static Device
device(HarkCa *ca, const char *dir, const char *name, const char *user)
{
  Device d = { .path = g_build_filename(dir, name, NULL) };
  d.key = hark_test_identity_new(dir, name);
  d.der = hark_test_issue_device_der(ca, user, d.key, NOT_BEFORE, LIFETIME);
  return d;
}

static void
write_file(const char *dir, const char *name, gconstpointer data, gsize size)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents(path, data, (gssize)size, &error))
    g_error("%s", error->message);
}

/* text as a C string literal of lines, for the header. */
static void
append_literal(GString *out, const char *macro, const char *text)
{
  g_string_append_printf(out, "#define %s \\\n", macro);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    g_string_append_printf(out, "  \"%s\\n\" \\\n", lines[i]);
  g_string_append(out, "  \"\"\n\n");
}

static void
seal(const char *dir, const char *name, Device *sender, const char *user, const char *ca_pem,
     const char *to, GVariant *inner, Device *recipients, guint n)
{
  HarkMessageRecipient *r = g_new0(HarkMessageRecipient, n);
  for (guint i = 0; i < n; i++)
    r[i] =
      (HarkMessageRecipient){ hark_identity_get_fingerprint(recipients[i].key), recipients[i].der };
  g_autoptr(GVariant) owned = g_variant_ref_sink(inner);
  HarkMessageSealParams p = {
    .identity = sender->key,
    .certificate = sender->der,
    .sender = user,
    .ca_pem = ca_pem,
    .to = to,
    .sequence = 1,
    .counter = 7,
    .time = NOW - 60,
    .inner = owned,
    .recipients = r,
    .n_recipients = n,
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = hark_message_seal(&p, &error);
  g_assert_no_error(error);
  g_free(r);
  g_autofree char *corpus = g_build_filename(dir, "corpus", "envelope", NULL);
  g_mkdir_with_parents(corpus, 0755);
  write_file(corpus, name, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: make-envelope-seeds DIR (tests/fuzz)\n");
    return 2;
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp("hark-envelope-seeds-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *ca_dir = g_build_filename(tmp, "ca", NULL);
  g_autoptr(HarkCa) ca = hark_ca_load_or_create(ca_dir, "hark envelope fuzz CA", &error);
  g_assert_no_error(error);
  const char *ca_pem = hark_ca_get_certificate_pem(ca);
  Device alice = device(ca, tmp, "alice.pem", "alice");
  Device bob[3] = { device(ca, tmp, "bob.pem", "bob"), device(ca, tmp, "bob2.pem", "bob"),
                    device(ca, tmp, "alice2.pem", "alice") };

  /* The header: the CA, bob's device key (the fuzzer opens as bob) and the clock. */
  g_autofree char *key_pem = NULL;
  if (!g_file_get_contents(bob[0].path, &key_pem, NULL, &error))
    g_error("%s", error->message);
  GString *h =
    g_string_new("/* fuzz-envelope-keys.h: fuzz-envelope's CA, the recipient device's key\n"
                 " * and clock, written by make-envelope-seeds with the seeds it sealed\n"
                 " * (a test CA: its key was thrown away). */\n#pragma once\n\n");
  g_string_append_printf(
    h, "#define FUZZ_ENVELOPE_NOW G_GINT64_CONSTANT(%" G_GINT64_FORMAT ") /* 2030-01-01 */\n\n",
    NOW);
  append_literal(h, "FUZZ_ENVELOPE_CA_PEM", ca_pem);
  append_literal(h, "FUZZ_ENVELOPE_KEY_PEM", key_pem);
  write_file(argv[1], "fuzz-envelope-keys.h", h->str, h->len);
  g_string_free(h, TRUE);

  guint8 ids[2][HARK_MESSAGE_ID_SIZE];
  memset(ids, 0x5a, sizeof ids);
  seal(argv[1], "text-three-devices", &alice, "alice", ca_pem, "bob",
       hark_message_text_new("hello bob ✓", NULL), bob, 3);
  seal(argv[1], "receipt", &alice, "alice", ca_pem, "bob",
       hark_message_receipt_new((const guint8(*)[HARK_MESSAGE_ID_SIZE])ids, 2, "read", NULL), bob,
       1);
  seal(argv[1], "typing", &alice, "alice", ca_pem, "bob", hark_message_typing_new(TRUE), bob, 1);
  seal(argv[1], "not-for-bob", &alice, "alice", ca_pem, "bob", hark_message_typing_new(FALSE),
       bob + 1, 2);
  seal(argv[1], "group", &alice, "alice", ca_pem, "#0123456789abcdef0123456789abcdef",
       hark_message_text_new("to the group", NULL), bob, 2);
  seal(argv[1], "other-kind", &alice, "alice", ca_pem, "bob",
       g_variant_new_parsed("('group', {'members': <['alice', 'bob']>})"), bob, 1);
  g_autofree char *longest = g_strnfill(HARK_MESSAGE_MAX_TEXT, 'x');
  seal(argv[1], "text-longest", &alice, "alice", ca_pem, "bob",
       hark_message_text_new(longest, NULL), bob, 1);

  Device *all[] = { &alice, &bob[0], &bob[1], &bob[2] };
  for (guint i = 0; i < G_N_ELEMENTS(all); i++) {
    hark_identity_free(all[i]->key);
    g_bytes_unref(all[i]->der);
    g_unlink(all[i]->path);
    g_free(all[i]->path);
  }
  g_autofree char *ca_key = g_build_filename(ca_dir, "ca-key.pem", NULL);
  g_autofree char *ca_cert = g_build_filename(ca_dir, "ca.pem", NULL);
  g_unlink(ca_key);
  g_unlink(ca_cert);
  g_rmdir(ca_dir);
  g_rmdir(tmp);
  return 0;
}
