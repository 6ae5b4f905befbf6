/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-store.c: a super node's presence records: one per device, filed under the
 * user's canonical name, bounded in all (directory.max_records) and per user, each
 * checked (hark_presence_verify) before it is kept, and forgotten when the client that
 * published it leaves or 72 h after its time. */
#include "directory-private.h"

#include <string.h>

typedef struct {
  char *device;
  HarkPresenceRecord *public_form; /* verified */
  HarkPresenceRecord *full_form; /* verified, or NULL (a record from another SN) */
  char **buddies; /* canonical names the full form may go to */
  gpointer from; /* the link it came on, or NULL */
} StoredRecord;

struct _DirectoryStore {
  GHashTable *users; /* canonical name -> GPtrArray of StoredRecord* */
  guint size;
  guint max_records;
};

static void
stored_free(gpointer data)
{
  StoredRecord *stored = data;
  g_free(stored->device);
  hark_presence_record_free(stored->public_form);
  hark_presence_record_free(stored->full_form);
  g_strfreev(stored->buddies);
  g_free(stored);
}

DirectoryStore *
hark_directory_store_new(guint max_records)
{
  DirectoryStore *store = g_new0(DirectoryStore, 1);
  store->users =
    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
  store->max_records = max_records;
  return store;
}

void
hark_directory_store_free(DirectoryStore *store)
{
  if (store == NULL)
    return;
  g_hash_table_unref(store->users);
  g_free(store);
}

guint
hark_directory_store_size(DirectoryStore *store)
{
  return store->size;
}

static StoredRecord *
find_device(GPtrArray *records, const char *device, guint *index)
{
  for (guint i = 0; records != NULL && i < records->len; i++) {
    StoredRecord *stored = records->pdata[i];
    if (strcmp(stored->device, device) == 0) {
      *index = i;
      return stored;
    }
  }
  return NULL;
}

/* The two forms must be one record: the same device, sequence and time, public and full. */
static gboolean
check_pair(const HarkPresenceRecord *pub, const HarkPresenceRecord *full, GError **error)
{
  if (!pub->is_public || (full != NULL && full->is_public)) {
    g_set_error_literal(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                        "a publication needs the public form first and the full form second");
    return FALSE;
  }
  if (full != NULL && (strcmp(pub->device, full->device) != 0 || pub->sequence != full->sequence ||
                       pub->time != full->time || g_ascii_strcasecmp(pub->user, full->user) != 0)) {
    g_set_error_literal(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                        "the public and the full form are not of one record");
    return FALSE;
  }
  return TRUE;
}

static char **
canonical_names(char **names)
{
  GPtrArray *out = g_ptr_array_new();
  for (guint i = 0; names != NULL && names[i] != NULL && i < DIRECTORY_MAX_BUDDIES; i++)
    if (hark_presence_name_is_valid(names[i]))
      g_ptr_array_add(out, hark_presence_name_key(names[i]));
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

const HarkPresenceRecord *
hark_directory_store_put(DirectoryStore *store, const char *ca_pem, gint64 now,
                         GVariant *public_form, GVariant *full_form, char **buddies,
                         const char *cert_user, const char *cert_device, gpointer from,
                         GError **error)
{
  g_autoptr(HarkPresenceRecord) pub =
    hark_presence_verify(public_form, ca_pem, cert_user, now, error);
  if (pub == NULL)
    return NULL;
  g_autoptr(HarkPresenceRecord) full = NULL;
  if (full_form != NULL &&
      (full = hark_presence_verify(full_form, ca_pem, cert_user, now, error)) == NULL)
    return NULL;
  if (!check_pair(pub, full, error))
    return NULL;
  if (cert_device != NULL && strcmp(cert_device, pub->device) != 0) {
    g_set_error_literal(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_FOREIGN,
                        "a device may publish only its own record");
    return NULL;
  }
  g_autofree char *key = hark_presence_name_key(pub->user);
  GPtrArray *records = g_hash_table_lookup(store->users, key);
  guint index = 0;
  StoredRecord *old = find_device(records, pub->device, &index);
  if (old != NULL && old->public_form->sequence >= pub->sequence) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                "a record of sequence %" G_GUINT64_FORMAT " is not newer than the one "
                "stored (%" G_GUINT64_FORMAT ")",
                pub->sequence, old->public_form->sequence);
    return NULL;
  }
  if (old == NULL && (store->size >= store->max_records ||
                      (records != NULL && records->len >= DIRECTORY_MAX_PER_USER))) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                "this super node keeps no more records (%u in all, %d for one user)",
                store->max_records, DIRECTORY_MAX_PER_USER);
    return NULL;
  }
  if (records == NULL) {
    records = g_ptr_array_new_with_free_func(stored_free);
    g_hash_table_insert(store->users, g_strdup(key), records);
  }
  StoredRecord *stored = g_new0(StoredRecord, 1);
  stored->device = g_strdup(pub->device);
  stored->public_form = g_steal_pointer(&pub);
  stored->full_form = g_steal_pointer(&full);
  stored->buddies = canonical_names(buddies);
  stored->from = from;
  if (old != NULL) {
    g_ptr_array_index(records, index) = stored;
    stored_free(old);
  } else {
    g_ptr_array_add(records, stored);
    store->size++;
  }
  return stored->public_form;
}

static HarkPresenceRecord *
copy_record(const HarkPresenceRecord *record)
{
  return hark_presence_parse(record->signed_form, NULL);
}

static void
add_user_records(GPtrArray *out, GPtrArray *records, const char *asker, guint max)
{
  for (guint i = 0; i < records->len && out->len < max; i++) {
    StoredRecord *stored = records->pdata[i];
    gboolean buddy = asker != NULL && stored->full_form != NULL &&
                     g_strv_contains((const char *const *)stored->buddies, asker);
    HarkPresenceRecord *copy = copy_record(buddy ? stored->full_form : stored->public_form);
    if (copy != NULL)
      g_ptr_array_add(out, copy);
  }
}

GPtrArray *
hark_directory_store_find(DirectoryStore *store, const HarkPresenceQuery *query, const char *asker,
                          guint max)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  g_autofree char *asker_key = asker != NULL ? hark_presence_name_key(asker) : NULL;
  if (!query->prefix) {
    GPtrArray *records = g_hash_table_lookup(store->users, query->key);
    if (records != NULL)
      add_user_records(out, records, asker_key, max);
    return out;
  }
  /* Sorted, so that a prefix's answer does not depend on the table's order. */
  g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(store->users), (GCompareFunc)strcmp);
  for (GList *l = keys; l != NULL && out->len < max; l = l->next)
    if (g_str_has_prefix(l->data, query->key))
      add_user_records(out, g_hash_table_lookup(store->users, l->data), asker_key, max);
  return out;
}

/* Removes the records for which drop() says so; returns how many. */
static guint
remove_where(DirectoryStore *store, gboolean (*drop)(StoredRecord *, gconstpointer),
             gconstpointer data)
{
  guint removed = 0;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, store->users);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    GPtrArray *records = value;
    for (guint i = records->len; i > 0; i--)
      if (drop(records->pdata[i - 1], data)) {
        g_ptr_array_remove_index(records, i - 1);
        removed++;
      }
    if (records->len == 0)
      g_hash_table_iter_remove(&iter);
  }
  store->size -= removed;
  return removed;
}

static gboolean
came_from(StoredRecord *stored, gconstpointer from)
{
  return stored->from == from;
}

guint
hark_directory_store_forget_from(DirectoryStore *store, gpointer from)
{
  return from != NULL ? remove_where(store, came_from, from) : 0;
}

static gboolean
too_old(StoredRecord *stored, gconstpointer now)
{
  return stored->public_form->time < *(const gint64 *)now - HARK_PRESENCE_LIFETIME_S;
}

guint
hark_directory_store_expire(DirectoryStore *store, gint64 now)
{
  return remove_where(store, too_old, &now);
}

GPtrArray *
hark_directory_store_visible(DirectoryStore *store, const char *user, const char *watcher)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  GPtrArray *records = g_hash_table_lookup(store->users, user);
  for (guint i = 0; records != NULL && i < records->len; i++) {
    StoredRecord *stored = records->pdata[i];
    HarkPresenceRecord *copy = NULL;
    if (stored->full_form != NULL &&
        g_strv_contains((const char *const *)stored->buddies, watcher) &&
        (copy = copy_record(stored->full_form)) != NULL)
      g_ptr_array_add(out, copy);
  }
  return out;
}

char **
hark_directory_store_users_from(DirectoryStore *store, gpointer from)
{
  GPtrArray *out = g_ptr_array_new();
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init(&iter, store->users);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    GPtrArray *records = value;
    for (guint i = 0; i < records->len; i++)
      if (came_from(records->pdata[i], from)) {
        g_ptr_array_add(out, g_strdup(key));
        break;
      }
  }
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

GPtrArray *
hark_directory_store_records_from(DirectoryStore *store, gpointer from)
{
  GPtrArray *out = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, store->users);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    GPtrArray *records = value;
    for (guint i = 0; i < records->len; i++)
      if (came_from(records->pdata[i], from))
        g_ptr_array_add(out, ((StoredRecord *)records->pdata[i])->public_form);
  }
  return out;
}

const char *const *
hark_directory_store_buddies(DirectoryStore *store, const char *user, const char *device)
{
  guint index;
  StoredRecord *stored = find_device(g_hash_table_lookup(store->users, user), device, &index);
  return stored != NULL ? (const char *const *)stored->buddies : NULL;
}

GPtrArray *
hark_directory_store_links_of(DirectoryStore *store, const char *user)
{
  GPtrArray *out = g_ptr_array_new();
  GPtrArray *records = g_hash_table_lookup(store->users, user);
  for (guint i = 0; records != NULL && i < records->len; i++) {
    StoredRecord *stored = records->pdata[i];
    if (stored->from != NULL)
      g_ptr_array_add(out, stored->from);
  }
  return out;
}
