/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-record.c: libFuzzer target for the directory's parsers (core/base/presence.c):
 * a signed presence record ('R' + its (ayay) bytes) through every check a node makes
 * before it stores or forwards one, against fuzz-record-keys.h's CA and clock; and a
 * DIR_LOOKUP body ('L' + (sbas) bytes); a DIR_SUBSCRIBE body ('S' + (sas)) and a
 * DIR_PRESENCE body ('P' + (ssa(ayay)as), each record then checked as a device checks
 * a pushed one) (core/directory/directory-presence-parse.c); a DIR_WATCH body ('W' +
 * (sa(ayay)), each signed watch then checked as an SN peer checks one,
 * core/base/presence-watch.c); a DIR_HINT body ('H' + (s)). A record that verifies must
 * parse to the same record again from its own signed form. Seeds: make-record-seeds.py,
 * make-presence-seeds.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hark/presence.h>

#include "directory-presence-parse.h"
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

static void
fuzz_subscribe(const uint8_t *data, size_t size)
{
  g_autoptr(GVariant) v = variant_of("(sas)", data, size);
  g_autoptr(GError) error = NULL;
  g_autofree char *watcher = NULL;
  g_autoptr(GHashTable) users = NULL;
  gboolean ok = hark_directory_subscribe_parse(v, &watcher, &users, &error);
  if (ok != (error == NULL) || ok != (users != NULL))
    abort();
  if (ok && (g_hash_table_size(users) > DIRECTORY_PRESENCE_MAX_USERS ||
             (*watcher != '\0' && !hark_presence_name_is_valid(watcher))))
    abort();
}

static void
fuzz_presence(const uint8_t *data, size_t size)
{
  g_autoptr(GVariant) v = variant_of("(ssa(ayay)as)", data, size);
  g_autoptr(GError) error = NULL;
  g_autofree char *watcher = NULL, *user = NULL;
  g_autoptr(GVariant) records = NULL, gone = NULL;
  gboolean ok = hark_directory_presence_parse(v, &watcher, &user, &records, &gone, &error);
  if (ok != (error == NULL) || ok != (records != NULL && gone != NULL))
    abort();
  if (!ok)
    return;
  if (g_variant_n_children(records) > DIRECTORY_PRESENCE_MAX_ITEMS ||
      !hark_presence_name_is_valid(user))
    abort();
  GVariantIter iter;
  GVariant *child;
  g_variant_iter_init(&iter, records);
  while ((child = g_variant_iter_next_value(&iter)) != NULL) {
    g_autoptr(GVariant) signed_form = child;
    g_autoptr(GError) verify_error = NULL;
    g_autoptr(HarkPresenceRecord) record =
      hark_presence_verify(signed_form, FUZZ_RECORD_CA_PEM, user, FUZZ_RECORD_NOW, &verify_error);
    if ((record == NULL) != (verify_error != NULL))
      abort();
    if (record != NULL && g_ascii_strcasecmp(record->user, user) != 0)
      abort();
  }
}

#define FUZZ_WATCH_SN "ab" /* the SN a watch is checked for: any, the check is a compare */

static void
fuzz_watch(const uint8_t *data, size_t size)
{
  g_autoptr(GVariant) v = variant_of("(sa(ayay))", data, size);
  g_autoptr(GError) error = NULL;
  g_autofree char *watcher = NULL;
  g_autoptr(GVariant) watches = NULL;
  gboolean ok = hark_directory_watch_parse(v, &watcher, &watches, &error);
  if (ok != (error == NULL) || ok != (watches != NULL))
    abort();
  if (!ok)
    return;
  if (g_variant_n_children(watches) > DIRECTORY_PRESENCE_MAX_WATCHES ||
      (*watcher != '\0' && !hark_presence_name_is_valid(watcher)))
    abort();
  GVariantIter iter;
  GVariant *child;
  g_variant_iter_init(&iter, watches);
  while ((child = g_variant_iter_next_value(&iter)) != NULL) {
    g_autoptr(GVariant) signed_watch = child;
    g_autoptr(GError) verify_error = NULL;
    g_autoptr(GHashTable) users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gboolean valid =
      hark_presence_watch_verify(signed_watch, FUZZ_RECORD_CA_PEM, *watcher ? watcher : "bob",
                                 FUZZ_WATCH_SN, FUZZ_RECORD_NOW, users, &verify_error);
    if (valid != (verify_error == NULL) ||
        (valid && g_hash_table_size(users) > HARK_PRESENCE_WATCH_MAX_USERS))
      abort();
  }
}

static void
fuzz_hint(const uint8_t *data, size_t size)
{
  g_autoptr(GVariant) v = variant_of("(s)", data, size);
  g_autoptr(GError) error = NULL;
  g_autofree char *user = NULL;
  gboolean ok = hark_directory_hint_parse(v, &user, &error);
  if (ok != (error == NULL) || ok != (user != NULL))
    abort();
  if (!ok)
    return;
  g_autofree char *key = hark_presence_name_key(user);
  if (!hark_presence_name_is_valid(user) || strcmp(user, key) != 0)
    abort(); /* the SN hints the canonical name */
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
  else if (data[0] == 'S')
    fuzz_subscribe(data + 1, size - 1);
  else if (data[0] == 'P')
    fuzz_presence(data + 1, size - 1);
  else if (data[0] == 'W')
    fuzz_watch(data + 1, size - 1);
  else if (data[0] == 'H')
    fuzz_hint(data + 1, size - 1);
  return 0;
}
