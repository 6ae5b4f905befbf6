/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-envelope.c: libFuzzer target for message envelopes (core/message/): the input is a
 * signed envelope's bytes, as an SN or the login server receives them. It goes through
 * hark_envelope_parse (shape and limits), hark_envelope_verify against
 * fuzz-envelope-keys.h's CA and clock, and hark_envelope_open with that file's recipient
 * key (bob's device), then the inner plaintext's parser. An envelope that parses must
 * honour every limit; one that opens must give a plaintext of a valid kind. Seeds and keys:
 * make-envelope-seeds.c. */
#include <glib/gstdio.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "fuzz-envelope-keys.h"
#include "message-envelope.h"

static HarkIdentity *bob;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  /* The identity is read from a 0600 file, as a device reads its own. */
  g_autofree char *dir = g_dir_make_tmp("hark-fuzz-envelope-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "bob.pem", NULL);
  if (dir == NULL || !g_file_set_contents_full(path, FUZZ_ENVELOPE_KEY_PEM, -1,
                                               G_FILE_SET_CONTENTS_NONE, 0600, NULL))
    abort();
  bob = hark_identity_load(path, NULL);
  g_unlink(path);
  g_rmdir(dir);
  if (bob == NULL)
    abort();
  return 0;
}

static void
check_limits(const HarkEnvelope *e)
{
  if (e->recipients->len == 0 || e->recipients->len > HARK_MESSAGE_MAX_RECIPIENTS ||
      g_bytes_get_size(e->certificate) > HARK_MESSAGE_MAX_CERTIFICATE ||
      g_bytes_get_size(e->body) > HARK_MESSAGE_MAX_BODY || e->counter == 0 || e->sequence == 0 ||
      strlen(e->sender_device) != 64)
    abort();
}

static void
check_inner(GVariant *inner)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(inner, &error);
  if (parsed == NULL)
    abort(); /* open checked it already */
  if (parsed->kind == HARK_MESSAGE_KIND_TEXT &&
      (strlen(parsed->text) > HARK_MESSAGE_MAX_TEXT || !g_utf8_validate(parsed->text, -1, NULL)))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkEnvelope) e = hark_envelope_parse(bytes, &error);
  if ((e == NULL) != (error != NULL) || (error != NULL && error->domain != HARK_MESSAGE_ERROR))
    abort();
  if (e == NULL) {
    fuzz_say("refused", error->message);
    return 0;
  }
  check_limits(e);
  gboolean verified = hark_envelope_verify(e, FUZZ_ENVELOPE_CA_PEM, FUZZ_ENVELOPE_NOW, &error);
  if (verified != (error == NULL) || verified != e->verified)
    abort();
  if (!verified) {
    fuzz_say("not verified", error->message);
    return 0;
  }
  g_autoptr(GVariant) inner = hark_envelope_open(e, bob, &error);
  if ((inner == NULL) != (error != NULL))
    abort();
  if (inner == NULL) {
    fuzz_say("not opened", error->message);
    return 0;
  }
  check_inner(inner);
  fuzz_say("opened", g_variant_get_type_string(inner));
  return 0;
}
