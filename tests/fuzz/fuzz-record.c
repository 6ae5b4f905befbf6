/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-record.c: libFuzzer target for the directory's parsers (core/base/presence.c):
 * a signed presence record ('R' + its (ayay) bytes) through every check a node makes
 * before it stores or forwards one, against fuzz-record-keys.h's CA and clock; and a
 * DIR_LOOKUP body ('L' + (sbas) bytes). A record that verifies must parse to the same
 * record again from its own signed form. Seeds: make-record-seeds.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hark/presence.h>

#include "fuzz-common.h"
#include "fuzz-record-keys.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

/* Untrusted bytes as a GVariant of type, the way wire.c hands bodies over (not
 * necessarily normal form: the parsers must cope). */
static GVariant *
variant_of(const char *type, const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  return g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(type), bytes, FALSE));
}

static void
fuzz_record(const uint8_t *data, size_t size)
{
  g_autoptr(GVariant) v = variant_of(HARK_PRESENCE_SIGNED_TYPE, data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkPresenceRecord) record =
    hark_presence_verify(v, FUZZ_RECORD_CA_PEM, NULL, FUZZ_RECORD_NOW, &error);
  if (record == NULL) {
    if (error == NULL || error->domain != HARK_PRESENCE_ERROR)
      abort();
    return;
  }
  g_autoptr(HarkPresenceRecord) again = hark_presence_parse(record->signed_form, &error);
  if (again == NULL || strcmp(again->user, record->user) != 0 ||
      again->sequence != record->sequence || again->status != record->status)
    abort();
}

static void
fuzz_lookup(const uint8_t *data, size_t size)
{
  g_autoptr(GVariant) v = variant_of(HARK_PRESENCE_QUERY_TYPE, data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkPresenceQuery) query = hark_presence_query_parse(v, &error);
  if ((query == NULL) != (error != NULL))
    abort();
  if (query != NULL && !hark_presence_name_is_valid(query->key))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  if (data[0] == 'R')
    fuzz_record(data + 1, size - 1);
  else if (data[0] == 'L')
    fuzz_lookup(data + 1, size - 1);
  return 0;
}
