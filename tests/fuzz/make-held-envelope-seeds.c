/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-held-envelope-seeds DIR: writes the seeds of fuzz-held-envelope: envelopes in shape (one
 * recipient, several) and near misses that each fail one check. Built by hand:
 *   ninja -C build tests/fuzz/make-held-envelope-seeds &&
 *   build/tests/fuzz/make-held-envelope-seeds tests/fuzz/corpus/held-envelope */
#include <string.h>

#include "test-envelope.h"

#define ALICE "1111111111111111111111111111111111111111111111111111111111111111"
#define BOB "2222222222222222222222222222222222222222222222222222222222222222"
#define CAROL "3333333333333333333333333333333333333333333333333333333333333333"

static void
write_seed(const char *dir, const char *name, GBytes *bytes)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  if (!g_file_set_contents(path, g_bytes_get_data(bytes, NULL), (gssize)g_bytes_get_size(bytes),
                           NULL))
    g_error("cannot write %s", path);
}

/* The envelope without its last n bytes (the end of its signature). */
static GBytes *
cut(GBytes *bytes, gsize n)
{
  return g_bytes_new_from_bytes(bytes, 0, g_bytes_get_size(bytes) - n);
}

int
main(int argc, char **argv)
{
  if (argc != 2)
    g_error("usage: make-held-envelope-seeds DIR");
  const char *dir = argv[1];
  g_random_set_seed(1);
  const char *const one[] = { BOB, NULL };
  const char *const three[] = { BOB, CAROL, ALICE, NULL };
  const char *const none[] = { NULL };
  const char *const bad_id[] = { "BOB", NULL };
  g_autoptr(GBytes) single = hark_test_envelope_new(ALICE, one, 40);
  g_autoptr(GBytes) several = hark_test_envelope_new(ALICE, three, 200);
  g_autoptr(GBytes) nobody = hark_test_envelope_new(ALICE, none, 10);
  g_autoptr(GBytes) bad_recipient = hark_test_envelope_new(ALICE, bad_id, 10);
  g_autoptr(GBytes) bad_sender = hark_test_envelope_new("not-a-device", one, 10);
  g_autoptr(GBytes) short_signature = cut(single, 1);
  write_seed(dir, "one-recipient", single);
  write_seed(dir, "three-recipients", several);
  write_seed(dir, "no-recipient", nobody);
  write_seed(dir, "bad-recipient-id", bad_recipient);
  write_seed(dir, "bad-sender-device", bad_sender);
  write_seed(dir, "short-signature", short_signature);
  /* Not normal form: the outer offsets no longer match the bytes. */
  gsize size = 0;
  const guint8 *data = g_bytes_get_data(single, &size);
  g_autofree guint8 *patched = g_memdup2(data, size);
  patched[size - 1] ^= 0x40;
  g_autoptr(GBytes) not_normal = g_bytes_new(patched, size);
  write_seed(dir, "framing-offset", not_normal);
  return 0;
}
