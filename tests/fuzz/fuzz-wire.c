/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-wire.c: libFuzzer target for hark_wire_decode, the first code that touches a
 * peer's bytes. Besides crashes and leaks it checks that anything the decoder accepts
 * re-encodes to the very same bytes and decodes to the same message: a message must
 * have exactly one encoding, or two peers could read one message differently. */
#include <stdint.h>
#include <stdlib.h>

#include <hark/wire.h>
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static gboolean
same_message(const HarkWireMessage *a, const HarkWireMessage *b)
{
  return a->version == b->version && a->type == b->type && a->id == b->id &&
         g_variant_equal(a->body, b->body);
}

static void
check_round_trip(GBytes *input, const HarkWireMessage *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) encoded = hark_wire_encode(message->type, message->id, message->body, &error);
  if (encoded == NULL || !g_bytes_equal(encoded, input))
    abort();

  g_autoptr(HarkWireMessage) again = hark_wire_decode(encoded, &error);
  if (again == NULL || !same_message(message, again))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) input = g_bytes_new(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkWireMessage) message = hark_wire_decode(input, &error);

  if (message == NULL) {
    if (error == NULL || error->domain != HARK_WIRE_ERROR)
      abort();
    return 0;
  }
  if (error != NULL)
    abort();
  check_round_trip(input, message);
  return 0;
}
