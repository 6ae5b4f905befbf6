/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostcache.c: the super nodes a node knows (hark/hostcache.h), in memory and on disk.
 *
 * The cache is small (200 entries by default), so it is a plain array in the order the
 * entries were added, searched linearly: that order is also the tie-break of the
 * ranking and the order of the saved file, so a save and a load rank alike.
 *
 * The file is JSON written atomically with mode 0600. It is read as untrusted input:
 * at most 1 MiB, every member checked, anything unexpected refused with a message that
 * names the file, and hark_host_cache_open() turns any such refusal into a warning and a
 * fresh cache, so a damaged file can never stop a node from starting. */
#include "hark/hostcache.h"
#include "file-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(hark-host-cache-error-quark, hark_host_cache_error)
/* clang-format on */

#define FILE_VERSION 1
/* Our file nests three deep ({"entries": [{"transports": [...]}]}). json-glib's parser
 * recurses once per level, so a file of a million '[' would exhaust the stack: deeper
 * files are refused before they are parsed. */
#define MAX_NESTING 8

static const char *const known_transports[] = { "udp", "tcp", "tls443", NULL };

typedef struct {
  HarkHostCacheEntry entry;
  guint64 order; /* when it was added: the last tie-break of the ranking */
} CacheEntry;

struct _HarkHostCache {
  guint capacity;
  GPtrArray *entries; /* CacheEntry*, in the order they were added */
  guint64 next_order;
};

/* ---- entries ---------------------------------------------------------------------- */

static void
entry_clear(HarkHostCacheEntry *entry)
{
  g_free(entry->host);
  g_strfreev(entry->transports);
  g_free(entry->learnt_from);
}

static void
entry_copy_into(HarkHostCacheEntry *to, const HarkHostCacheEntry *from)
{
  *to = *from;
  to->host = g_strdup(from->host);
  to->transports = g_strdupv(from->transports);
  to->learnt_from = g_strdup(from->learnt_from);
}

HarkHostCacheEntry *
hark_host_cache_entry_copy(const HarkHostCacheEntry *entry)
{
  HarkHostCacheEntry *copy = g_new(HarkHostCacheEntry, 1);
  entry_copy_into(copy, entry);
  return copy;
}

void
hark_host_cache_entry_free(HarkHostCacheEntry *entry)
{
  if (entry == NULL)
    return;
  entry_clear(entry);
  g_free(entry);
}

static void
cache_entry_free(gpointer data)
{
  CacheEntry *slot = data;
  entry_clear(&slot->entry);
  g_free(slot);
}

static void
entry_set_transports(HarkHostCacheEntry *entry, const char *const *transports)
{
  g_strfreev(entry->transports);
  entry->transports = transports ? g_strdupv((char **)transports) : g_new0(char *, 1);
}

/* ---- ranking ---------------------------------------------------------------------- */

/* An unknown round trip ranks after every measured one. */
static int
compare_rtt(gint64 a, gint64 b)
{
  if ((a < 0) != (b < 0))
    return a < 0 ? 1 : -1;
  return (a > b) - (a < b);
}

/* < 0 when a is better than b; never 0 for two different entries. */
static int
compare_entries(const CacheEntry *a, const CacheEntry *b)
{
  /* What a peer merely named earns its rank by answering. */
  if ((a->entry.learnt_from != NULL) != (b->entry.learnt_from != NULL))
    return a->entry.learnt_from != NULL ? 1 : -1;
  if (a->entry.failures != b->entry.failures)
    return a->entry.failures < b->entry.failures ? -1 : 1;
  int rtt = compare_rtt(a->entry.rtt_us, b->entry.rtt_us);
  if (rtt != 0)
    return rtt;
  if (a->entry.last_seen != b->entry.last_seen)
    return a->entry.last_seen > b->entry.last_seen ? -1 : 1;
  return (a->order > b->order) - (a->order < b->order);
}

static int
compare_entry_pointers(gconstpointer a, gconstpointer b)
{
  return compare_entries(*(CacheEntry *const *)a, *(CacheEntry *const *)b);
}

/* The index of the worst entry that may be evicted (only unverified ones with
 * unverified_only), or -1 when there is none. */
static int
cache_worst_evictable(HarkHostCache *cache, gboolean unverified_only)
{
  int worst = -1;
  for (guint i = 0; i < cache->entries->len; i++) {
    CacheEntry *slot = g_ptr_array_index(cache->entries, i);
    if (slot->entry.bootstrap || (unverified_only && slot->entry.learnt_from == NULL))
      continue;
    if (worst < 0 || compare_entries(slot, g_ptr_array_index(cache->entries, worst)) > 0)
      worst = (int)i;
  }
  return worst;
}

/* ---- the cache -------------------------------------------------------------------- */

HarkHostCache *
hark_host_cache_new(guint capacity)
{
  g_return_val_if_fail(capacity > 0, NULL);
  HarkHostCache *cache = g_new0(HarkHostCache, 1);
  cache->capacity = capacity;
  cache->entries = g_ptr_array_new_with_free_func(cache_entry_free);
  return cache;
}

void
hark_host_cache_free(HarkHostCache *cache)
{
  if (cache == NULL)
    return;
  g_ptr_array_unref(cache->entries);
  g_free(cache);
}

guint
hark_host_cache_size(HarkHostCache *cache)
{
  g_return_val_if_fail(cache != NULL, 0);
  return cache->entries->len;
}

/* Host names are case-insensitive, so "SN1.example" and "sn1.example" are one SN. */
static CacheEntry *
cache_find(HarkHostCache *cache, const char *host, guint16 port)
{
  for (guint i = 0; i < cache->entries->len; i++) {
    CacheEntry *slot = g_ptr_array_index(cache->entries, i);
    if (slot->entry.port == port && g_ascii_strcasecmp(slot->entry.host, host) == 0)
      return slot;
  }
  return NULL;
}

/* A new, never-seen entry for host:port, evicting the worst non-bootstrap entry when
 * the cache is full; NULL when there is no room. */
static CacheEntry *
cache_insert_evicting(HarkHostCache *cache, const char *host, guint16 port,
                      gboolean unverified_only)
{
  if (cache->entries->len >= cache->capacity) {
    int worst = cache_worst_evictable(cache, unverified_only);
    if (worst < 0)
      return NULL;
    g_ptr_array_remove_index(cache->entries, (guint)worst);
  }
  CacheEntry *slot = g_new0(CacheEntry, 1);
  slot->entry.host = g_strdup(host);
  slot->entry.port = port;
  slot->entry.transports = g_new0(char *, 1);
  slot->entry.rtt_us = -1;
  slot->order = cache->next_order++;
  g_ptr_array_add(cache->entries, slot);
  return slot;
}

static CacheEntry *
cache_insert(HarkHostCache *cache, const char *host, guint16 port)
{
  return cache_insert_evicting(cache, host, port, FALSE);
}

static CacheEntry *
cache_find_or_insert(HarkHostCache *cache, const char *host, guint16 port)
{
  CacheEntry *slot = cache_find(cache, host, port);
  return slot ? slot : cache_insert(cache, host, port);
}

gboolean
hark_host_cache_add_bootstrap(HarkHostCache *cache, const HarkBootstrapConfig *bootstrap)
{
  g_return_val_if_fail(cache != NULL && bootstrap != NULL && bootstrap->host != NULL, FALSE);
  CacheEntry *slot = cache_find_or_insert(cache, bootstrap->host, bootstrap->port);
  if (slot == NULL)
    return FALSE;
  slot->entry.bootstrap = TRUE;
  g_clear_pointer(&slot->entry.learnt_from, g_free); /* the configuration vouches for it */
  entry_set_transports(&slot->entry, (const char *const *)bootstrap->transports);
  return TRUE;
}

gboolean
hark_host_cache_seen(HarkHostCache *cache, const char *host, guint16 port,
                     const char *const *transports, gint64 rtt_us, gint64 now)
{
  g_return_val_if_fail(cache != NULL && host != NULL, FALSE);
  CacheEntry *slot = cache_find_or_insert(cache, host, port);
  if (slot == NULL)
    return FALSE;
  if (transports != NULL)
    entry_set_transports(&slot->entry, transports);
  if (rtt_us >= 0)
    slot->entry.rtt_us = rtt_us;
  slot->entry.last_seen = now;
  slot->entry.failures = 0;
  g_clear_pointer(&slot->entry.learnt_from, g_free);
  return TRUE;
}

gboolean
hark_host_cache_learn(HarkHostCache *cache, const char *host, guint16 port,
                      const char *const *transports, const char *source, gint64 now)
{
  g_return_val_if_fail(cache != NULL && host != NULL && source != NULL, FALSE);
  if (cache_find(cache, host, port) != NULL)
    return TRUE;
  guint unverified = 0, from_source = 0;
  for (guint i = 0; i < cache->entries->len; i++) {
    const CacheEntry *slot = g_ptr_array_index(cache->entries, i);
    if (slot->entry.learnt_from == NULL)
      continue;
    unverified++;
    if (strcmp(slot->entry.learnt_from, source) == 0)
      from_source++;
  }
  if (from_source >= HARK_HOST_CACHE_MAX_PER_SOURCE ||
      unverified >= MAX(1, cache->capacity / HARK_HOST_CACHE_UNVERIFIED_SHARE))
    return FALSE;
  CacheEntry *slot = cache_insert_evicting(cache, host, port, TRUE);
  if (slot == NULL)
    return FALSE;
  entry_set_transports(&slot->entry, transports);
  slot->entry.last_seen = now;
  slot->entry.learnt_from = g_strdup(source);
  return TRUE;
}

gboolean
hark_host_cache_failed(HarkHostCache *cache, const char *host, guint16 port, gint64 now)
{
  g_return_val_if_fail(cache != NULL && host != NULL, FALSE);
  CacheEntry *slot = cache_find(cache, host, port);
  if (slot == NULL)
    return FALSE;
  if (slot->entry.failures < G_MAXUINT)
    slot->entry.failures++;
  return TRUE;
}

static gboolean
entry_is_stale(const HarkHostCacheEntry *entry, gint64 now, gint64 max_age_s)
{
  if (entry->bootstrap)
    return FALSE;
  return entry->failures >= HARK_HOST_CACHE_MAX_FAILURES || entry->last_seen == 0 ||
         now - entry->last_seen > max_age_s;
}

guint
hark_host_cache_forget_where(HarkHostCache *cache,
                             gboolean (*refuse)(const char *host, gpointer data), gpointer data)
{
  g_return_val_if_fail(cache != NULL && refuse != NULL, 0);
  guint dropped = 0;
  for (guint i = cache->entries->len; i-- > 0;) {
    CacheEntry *slot = g_ptr_array_index(cache->entries, i);
    if (!slot->entry.bootstrap && refuse(slot->entry.host, data)) {
      g_ptr_array_remove_index(cache->entries, i);
      dropped++;
    }
  }
  return dropped;
}

guint
hark_host_cache_expire(HarkHostCache *cache, gint64 now, gint64 max_age_s)
{
  g_return_val_if_fail(cache != NULL, 0);
  guint dropped = 0;
  for (guint i = cache->entries->len; i-- > 0;) {
    CacheEntry *slot = g_ptr_array_index(cache->entries, i);
    if (entry_is_stale(&slot->entry, now, max_age_s)) {
      g_ptr_array_remove_index(cache->entries, i);
      dropped++;
    }
  }
  return dropped;
}

const HarkHostCacheEntry *
hark_host_cache_lookup(HarkHostCache *cache, const char *host, guint16 port)
{
  g_return_val_if_fail(cache != NULL && host != NULL, NULL);
  CacheEntry *slot = cache_find(cache, host, port);
  return slot ? &slot->entry : NULL;
}

GPtrArray *
hark_host_cache_best(HarkHostCache *cache, guint n)
{
  g_return_val_if_fail(cache != NULL, NULL);
  /* A copy keeps the free function of the original: this one must only borrow. */
  g_autoptr(GPtrArray) ranked = g_ptr_array_copy(cache->entries, NULL, NULL);
  g_ptr_array_set_free_func(ranked, NULL);
  g_ptr_array_sort(ranked, compare_entry_pointers);

  GPtrArray *best = g_ptr_array_new_with_free_func((GDestroyNotify)hark_host_cache_entry_free);
  for (guint i = 0; i < ranked->len && i < n; i++) {
    const CacheEntry *slot = g_ptr_array_index(ranked, i);
    g_ptr_array_add(best, hark_host_cache_entry_copy(&slot->entry));
  }
  return best;
}

/* ---- saving ----------------------------------------------------------------------- */

static JsonNode *
entry_to_json(const HarkHostCacheEntry *entry)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "host");
  json_builder_add_string_value(builder, entry->host);
  json_builder_set_member_name(builder, "port");
  json_builder_add_int_value(builder, entry->port);
  json_builder_set_member_name(builder, "transports");
  json_builder_begin_array(builder);
  for (char **t = entry->transports; *t != NULL; t++)
    json_builder_add_string_value(builder, *t);
  json_builder_end_array(builder);
  json_builder_set_member_name(builder, "last_seen");
  json_builder_add_int_value(builder, entry->last_seen);
  json_builder_set_member_name(builder, "failures");
  json_builder_add_int_value(builder, entry->failures);
  json_builder_set_member_name(builder, "rtt_us");
  json_builder_add_int_value(builder, entry->rtt_us);
  json_builder_set_member_name(builder, "bootstrap");
  json_builder_add_boolean_value(builder, entry->bootstrap);
  if (entry->learnt_from != NULL) {
    json_builder_set_member_name(builder, "learnt_from");
    json_builder_add_string_value(builder, entry->learnt_from);
  }
  json_builder_end_object(builder);
  return json_builder_get_root(builder);
}

static char *
cache_to_json(HarkHostCache *cache)
{
  JsonArray *entries = json_array_sized_new(cache->entries->len);
  for (guint i = 0; i < cache->entries->len; i++) {
    const CacheEntry *slot = g_ptr_array_index(cache->entries, i);
    json_array_add_element(entries, entry_to_json(&slot->entry));
  }
  JsonObject *object = json_object_new();
  json_object_set_int_member(object, "version", FILE_VERSION);
  json_object_set_array_member(object, "entries", entries);

  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
  json_object_unref(object);
  g_autoptr(JsonGenerator) generator = json_generator_new();
  json_generator_set_pretty(generator, TRUE);
  json_generator_set_root(generator, root);
  return json_generator_to_data(generator, NULL);
}

gboolean
hark_host_cache_save(HarkHostCache *cache, const char *path, GError **error)
{
  g_return_val_if_fail(cache != NULL && path != NULL, FALSE);
  g_autofree char *text = cache_to_json(cache);
  g_autoptr(GError) local = NULL;

  /* GLib writes a temporary file next to path, created O_EXCL with the mode, syncs it
   * (DURABLE) and renames it over path: 0600 from the moment the file exists. The
   * directory is synced after, so the rename itself survives a crash. */
  if (!g_file_set_contents_full(path, text, -1,
                                G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600,
                                &local)) {
    g_set_error(error, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_IO,
                "cannot save the host cache: %s", local->message);
    return FALSE;
  }
  hark_file_sync_parent_dir(path);
  return TRUE;
}

/* ---- loading: reading the file ---------------------------------------------------- */

static gboolean set_corrupt(GError **error, const char *path, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

static gboolean
set_corrupt(GError **error, const char *path, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *problem = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_CORRUPT,
              "%s: not a valid host cache: %s", path, problem);
  return FALSE;
}

/* The file's bytes, refusing (CORRUPT) a file larger than the limit without reading
 * more than one byte past it. */
static GBytes *
read_limited(const char *path, GError **error)
{
  g_autoptr(GFile) file = g_file_new_for_path(path);
  g_autoptr(GError) local = NULL;
  g_autoptr(GFileInputStream) stream = g_file_read(file, NULL, &local);
  if (stream == NULL) {
    gboolean missing = g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_set_error(error, HARK_HOST_CACHE_ERROR,
                missing ? HARK_HOST_CACHE_ERROR_MISSING : HARK_HOST_CACHE_ERROR_IO,
                "%s: cannot read the host cache: %s", path, local->message);
    return NULL;
  }
  g_autofree char *buffer = g_malloc(HARK_HOST_CACHE_MAX_FILE_SIZE + 1);
  gsize length = 0;
  if (!g_input_stream_read_all(G_INPUT_STREAM(stream), buffer, HARK_HOST_CACHE_MAX_FILE_SIZE + 1,
                               &length, NULL, &local)) {
    g_set_error(error, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_IO,
                "%s: cannot read the host cache: %s", path, local->message);
    return NULL;
  }
  if (length > HARK_HOST_CACHE_MAX_FILE_SIZE) {
    set_corrupt(error, path, "larger than %d bytes", HARK_HOST_CACHE_MAX_FILE_SIZE);
    return NULL;
  }
  return g_bytes_new_take(g_steal_pointer(&buffer), length);
}

/* How deep brackets nest outside strings; stops counting past MAX_NESTING. */
static guint
json_nesting(const char *text, gsize length)
{
  guint depth = 0, deepest = 0;
  gboolean in_string = FALSE, escaped = FALSE;
  for (gsize i = 0; i < length && deepest <= MAX_NESTING; i++) {
    char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = FALSE;
      else if (c == '\\')
        escaped = TRUE;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '[' || c == '{') {
      depth++;
      deepest = MAX(deepest, depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return deepest;
}

static JsonNode *
parse_json(GBytes *bytes, const char *path, GError **error)
{
  gsize length = 0;
  const char *text = g_bytes_get_data(bytes, &length);
  if (json_nesting(text, length) > MAX_NESTING) {
    set_corrupt(error, path, "nested more than %d deep", MAX_NESTING);
    return NULL;
  }
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data(parser, text, (gssize)length, &local)) {
    set_corrupt(error, path, "%s", local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL) {
    set_corrupt(error, path, "the file is empty");
    return NULL;
  }
  return json_node_ref(root);
}

/* ---- loading: checking what was read ---------------------------------------------- */

/* Where a member is, for messages: the top level or one entry. */
typedef struct {
  const char *path;
  char where[32]; /* "" or "entry N: " */
} Reader;

static gboolean reader_fail(const Reader *reader, GError **error, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

static gboolean
reader_fail(const Reader *reader, GError **error, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *problem = g_strdup_vprintf(format, args);
  va_end(args);
  return set_corrupt(error, reader->path, "%s%s", reader->where, problem);
}

/* Refuses members other than those named: the version says what a file may hold. */
static gboolean
check_members(const Reader *reader, JsonObject *object, const char *const *allowed, GError **error)
{
  g_autoptr(GList) names = json_object_get_members(object);
  for (GList *n = names; n != NULL; n = n->next)
    if (!g_strv_contains(allowed, n->data))
      return reader_fail(reader, error, "unknown member \"%s\"", (const char *)n->data);
  return TRUE;
}

/* The member name, which must hold a value of type (JSON_TYPE_ARRAY for an array). */
static JsonNode *
get_member(const Reader *reader, JsonObject *object, const char *name, GType type,
           const char *expected, GError **error)
{
  JsonNode *node = json_object_get_member(object, name);
  if (node == NULL)
    reader_fail(reader, error, "\"%s\" is missing", name);
  else if (json_node_get_value_type(node) != type)
    reader_fail(reader, error, "\"%s\" is not %s", name, expected);
  else
    return node;
  return NULL;
}

static gboolean
get_int(const Reader *reader, JsonObject *object, const char *name, gint64 min, gint64 max,
        gint64 *value, GError **error)
{
  JsonNode *node = get_member(reader, object, name, G_TYPE_INT64, "an integer", error);
  if (node == NULL)
    return FALSE;
  *value = json_node_get_int(node);
  if (*value < min || *value > max)
    return reader_fail(reader, error,
                       "\"%s\" is %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT
                       " to %" G_GINT64_FORMAT,
                       name, *value, min, max);
  return TRUE;
}

/* The same rule as the configuration's bootstrap hosts (config.c): an IP address, or a
 * host name of letters, digits, '-', '.' and '_'. */
static gboolean
read_host(const Reader *reader, JsonObject *object, HarkHostCacheEntry *entry, GError **error)
{
  JsonNode *node = get_member(reader, object, "host", G_TYPE_STRING, "a string", error);
  if (node == NULL)
    return FALSE;
  const char *host = json_node_get_string(node);
  if (!hark_config_is_host(host))
    return reader_fail(reader, error, "\"host\" \"%s\" is not a host name or an IP address", host);
  entry->host = g_strdup(host);
  return TRUE;
}

/* At least one transport, each a known one, none twice. */
static gboolean
read_transports(const Reader *reader, JsonObject *object, HarkHostCacheEntry *entry, GError **error)
{
  JsonNode *node = get_member(reader, object, "transports", JSON_TYPE_ARRAY, "an array", error);
  if (node == NULL)
    return FALSE;
  JsonArray *array = json_node_get_array(node);
  guint count = json_array_get_length(array);
  if (count == 0 || count > g_strv_length((char **)known_transports))
    return reader_fail(reader, error, "\"transports\" has %u names, expected 1 to %u", count,
                       g_strv_length((char **)known_transports));

  /* Filled in place, so it is NULL-terminated at each step and freed with the entry. */
  entry->transports = g_new0(char *, count + 1);
  for (guint i = 0; i < count; i++) {
    JsonNode *item = json_array_get_element(array, i);
    const char *name =
      json_node_get_value_type(item) == G_TYPE_STRING ? json_node_get_string(item) : NULL;
    if (name == NULL || !hark_config_is_transport(name))
      return reader_fail(reader, error, "\"transports\" item %u is not one of udp, tcp, tls443", i);
    if (g_strv_contains((const char *const *)entry->transports, name))
      return reader_fail(reader, error, "\"transports\" names %s twice", name);
    entry->transports[i] = g_strdup(name);
  }
  return TRUE;
}

/* Optional: an address or an IPv6 /64 (hark_address_source_key). */
static gboolean
read_learnt_from(const Reader *reader, JsonObject *object, HarkHostCacheEntry *entry,
                 GError **error)
{
  if (!json_object_has_member(object, "learnt_from"))
    return TRUE;
  JsonNode *node = get_member(reader, object, "learnt_from", G_TYPE_STRING, "a string", error);
  if (node == NULL)
    return FALSE;
  const char *source = json_node_get_string(node);
  gsize length = strlen(source);
  if (length == 0 || length > 64 || strspn(source, "0123456789abcdefABCDEF:./") != length ||
      entry->bootstrap)
    return reader_fail(reader, error, "\"learnt_from\" is not a source address");
  entry->learnt_from = g_strdup(source);
  return TRUE;
}

static gboolean
read_entry(const Reader *reader, JsonNode *node, HarkHostCacheEntry *entry, GError **error)
{
  static const char *const members[] = { "host",      "port",        "transports",
                                         "last_seen", "failures",    "rtt_us",
                                         "bootstrap", "learnt_from", NULL };
  if (!JSON_NODE_HOLDS_OBJECT(node))
    return reader_fail(reader, error, "not an object");
  JsonObject *object = json_node_get_object(node);
  gint64 port = 0, failures = 0;

  if (!check_members(reader, object, members, error) || !read_host(reader, object, entry, error) ||
      !get_int(reader, object, "port", 1, G_MAXUINT16, &port, error) ||
      !read_transports(reader, object, entry, error) ||
      !get_int(reader, object, "last_seen", 0, G_MAXINT64, &entry->last_seen, error) ||
      !get_int(reader, object, "failures", 0, G_MAXUINT, &failures, error) ||
      !get_int(reader, object, "rtt_us", -1, G_MAXINT64, &entry->rtt_us, error))
    return FALSE;
  JsonNode *bootstrap =
    get_member(reader, object, "bootstrap", G_TYPE_BOOLEAN, "true or false", error);
  if (bootstrap == NULL)
    return FALSE;
  entry->port = (guint16)port;
  entry->failures = (guint)failures;
  entry->bootstrap = json_node_get_boolean(bootstrap);
  return read_learnt_from(reader, object, entry, error);
}

/* Adds the entry read from the file; two entries for one SN are refused. */
static gboolean
cache_add_loaded(HarkHostCache *cache, const Reader *reader, const HarkHostCacheEntry *entry,
                 GError **error)
{
  if (cache_find(cache, entry->host, entry->port) != NULL)
    return reader_fail(reader, error, "%s:%u is listed twice", entry->host, entry->port);
  CacheEntry *slot = cache_insert(cache, entry->host, entry->port);
  g_assert(slot != NULL); /* the entry count was checked against the capacity */
  entry_clear(&slot->entry);
  entry_copy_into(&slot->entry, entry);
  return TRUE;
}

static JsonArray *
read_top_level(const Reader *reader, JsonNode *root, guint capacity, GError **error)
{
  static const char *const members[] = { "version", "entries", NULL };
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    reader_fail(reader, error, "the top level is not an object");
    return NULL;
  }
  JsonObject *object = json_node_get_object(root);
  gint64 version = 0;
  if (!check_members(reader, object, members, error) ||
      !get_int(reader, object, "version", 0, G_MAXINT64, &version, error))
    return NULL;
  if (version != FILE_VERSION) {
    reader_fail(reader, error, "version %" G_GINT64_FORMAT " is not supported (expected %d)",
                version, FILE_VERSION);
    return NULL;
  }
  JsonNode *entries = get_member(reader, object, "entries", JSON_TYPE_ARRAY, "an array", error);
  if (entries == NULL)
    return NULL;
  JsonArray *array = json_node_get_array(entries);
  if (json_array_get_length(array) > capacity) {
    reader_fail(reader, error, "%u entries, more than the %u it may hold",
                json_array_get_length(array), capacity);
    return NULL;
  }
  return array;
}

static HarkHostCache *
cache_from_json(JsonNode *root, const char *path, guint capacity, GError **error)
{
  Reader reader = { path, "" };
  JsonArray *array = read_top_level(&reader, root, capacity, error);
  if (array == NULL)
    return NULL;

  g_autoptr(HarkHostCache) cache = hark_host_cache_new(capacity);
  for (guint i = 0; i < json_array_get_length(array); i++) {
    g_autoptr(HarkHostCacheEntry) entry = g_new0(HarkHostCacheEntry, 1);
    g_snprintf(reader.where, sizeof reader.where, "entry %u: ", i);
    if (!read_entry(&reader, json_array_get_element(array, i), entry, error) ||
        !cache_add_loaded(cache, &reader, entry, error))
      return NULL;
  }
  return g_steal_pointer(&cache);
}

HarkHostCache *
hark_host_cache_load(const char *path, guint capacity, GError **error)
{
  g_return_val_if_fail(path != NULL && capacity > 0, NULL);
  g_autoptr(GBytes) bytes = read_limited(path, error);
  if (bytes == NULL)
    return NULL;
  g_autoptr(JsonNode) root = parse_json(bytes, path, error);
  if (root == NULL)
    return NULL;
  return cache_from_json(root, path, capacity, error);
}

/* ---- opening at start ------------------------------------------------------------- */

/* Moves a corrupt file to path.corrupt (replacing an older one) for a person to look
 * at, and says so, or why it could not, in the warning. */
static void
set_aside(const char *path, GError *warning)
{
  g_autofree char *aside = g_strconcat(path, ".corrupt", NULL);
  g_autofree char *old = warning->message;
  if (g_rename(path, aside) == 0)
    warning->message =
      g_strdup_printf("%s; moved to %s, starting from the bootstrap list", old, aside);
  else
    warning->message = g_strdup_printf("%s; cannot move it to %s (%s), starting from the "
                                       "bootstrap list",
                                       old, aside, g_strerror(errno));
}

/* Entries the file called bootstrap are bootstrap only if the configuration still
 * lists them: an SN dropped from the configuration may then age out. */
static void
cache_reset_bootstrap(HarkHostCache *cache, GPtrArray *bootstrap)
{
  for (guint i = 0; i < cache->entries->len; i++)
    ((CacheEntry *)g_ptr_array_index(cache->entries, i))->entry.bootstrap = FALSE;
  for (guint i = 0; bootstrap != NULL && i < bootstrap->len; i++)
    if (!hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, i)))
      g_warning("host cache: no room for bootstrap SN %s: more bootstrap SNs than %u",
                ((HarkBootstrapConfig *)g_ptr_array_index(bootstrap, i))->host, cache->capacity);
}

HarkHostCache *
hark_host_cache_open(const char *path, guint capacity, GPtrArray *bootstrap, GError **warning)
{
  g_return_val_if_fail(path != NULL && capacity > 0, NULL);
  g_autoptr(GError) local = NULL;
  HarkHostCache *cache = hark_host_cache_load(path, capacity, &local);

  if (cache == NULL) {
    if (g_error_matches(local, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_CORRUPT))
      set_aside(path, local);
    if (!g_error_matches(local, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_MISSING))
      g_propagate_error(warning, g_steal_pointer(&local));
    cache = hark_host_cache_new(capacity);
  }
  cache_reset_bootstrap(cache, bootstrap);
  return cache;
}
