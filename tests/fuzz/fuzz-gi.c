/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-gi.c: libFuzzer target for the directory's gi messages (plugins/search-gi): the
 * strict decoder, then the engine that acts on what it accepts. An input is the bytes of
 * one message from another SN. Anything decode accepts must re-encode to the very same
 * bytes (one encoding per message); the engine (self and three contacts, records with a
 * blob starting "signed:" pass verify) must take the message without crashing or leaking,
 * and a second engine of the flood strategy too. Seeds: make-gi-seeds.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flood-engine.h"
#include "fuzz-common.h"
#include "gi-engine.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
drop(gpointer user, const HarkGiId *peer, GBytes *addr, GBytes *message)
{
}

static gboolean
verify(gpointer user, const HarkGiRecord *r)
{
  gsize len = 0;
  const char *blob = g_bytes_get_data(r->blob, &len);
  return len >= 7 && memcmp(blob, "signed:", 7) == 0;
}

static void
make_id(guint8 fill, HarkGiId *id)
{
  memset(id->b, fill, sizeof id->b);
}

static void
feed_engines(GBytes *input)
{
  HarkGiCallbacks cb = { .send = drop, .verify = verify };
  HarkGiId self, peers[3];
  make_id(0x00, &self);
  make_id(0x01, &peers[0]);
  make_id(0x80, &peers[1]);
  make_id(0x40, &peers[2]);
  gint64 now = (gint64)1000 * G_USEC_PER_SEC * 3600;
  HarkGiEngine *gi = hark_gi_engine_new(&self, NULL, NULL, &cb, NULL);
  HarkFloodEngine *flood = hark_flood_engine_new(&self, NULL, &cb, NULL);
  for (guint i = 0; i < 3; i++) {
    hark_gi_engine_peer_up(gi, &peers[i], NULL, now);
    hark_flood_engine_peer_up(flood, &peers[i]);
  }
  hark_gi_engine_receive(gi, &peers[0], input, now);
  hark_gi_engine_tick(gi, now + (gint64)3600 * G_USEC_PER_SEC);
  hark_gi_engine_peer_down(gi, &peers[1], now);
  hark_flood_engine_receive(flood, &peers[2], input, now);
  hark_gi_engine_free(gi);
  hark_flood_engine_free(flood);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) input = g_bytes_new(data, size);
  g_autoptr(GError) error = NULL;
  HarkGiMessage msg;
  if (hark_gi_message_decode_bytes(input, &msg, &error)) {
    g_autoptr(GBytes) again = hark_gi_message_encode_bytes(&msg);
    hark_gi_message_clear(&msg);
    if (!g_bytes_equal(again, input))
      abort();
  } else if (error == NULL) {
    abort(); /* a refusal always says why */
  }
  feed_engines(input);
  return 0;
}
