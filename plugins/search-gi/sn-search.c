/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sn-search.c: a node-free directory engine (gi, flood) as a search strategy on a super
 * node. While the node serves as an SN the strategy keeps an engine whose id is the SN's
 * device fingerprint. Once a second (sooner when the engine's next deadline is nearer) it
 * compares the verified SN links (sn_peers, each with the fingerprint its certificate
 * proved) with what the engine was told: new links go up, gone ones down. Polling is
 * simpler than events here and loses nothing: a message to a peer whose link went in
 * between fails to send, and that peer is taken down at once. The engine only ever
 * reaches SNs with a verified link: a contact without one is skipped (and dropped). */
#include "sn-search.h"

#include <string.h>

#define POLL_MS 1000

typedef struct _SnSearch SnSearch;

typedef struct {
  SnSearch *search;
  HarkSearchDone done;
  gpointer user_data;
  GCancellable *cancellable;
  char *key; /* the name asked for, canonical */
  gboolean finished;
} Ask;

struct _SnSearch {
  const HarkSnEngineOps *ops;
  char *name;
  HarkContext *ctx;
  const HarkSearchServices *services;
  gpointer host;
  gpointer engine; /* while serving as an SN */
  GHashTable *peers; /* "host:port" -> HarkGiId*: told to the engine */
  GHashTable *asks; /* guint64* request -> Ask* */
  Ask *starting; /* the lookup being started (its done may come before its id) */
  GArray *lost; /* HarkGiId: peers to take down on the next timer */
  GSource *timer;
  struct {
    guint64 lookups, found, not_found, routed, published, forgotten, unlinked, send_failed,
      malformed, unknown_peer, mismatched;
    guint last_hops;
  } counters;
};

static void schedule(SnSearch *s, gint64 delay_ms);

static gint64
now_us(SnSearch *s)
{
  return hark_clock_now_real(s->services->clock(s->host));
}

static gboolean
id_from_hex(const char *hex, HarkGiId *id)
{
  if (hex == NULL || strlen(hex) != 2 * HARK_GI_ID_LEN)
    return FALSE;
  for (guint i = 0; i < HARK_GI_ID_LEN; i++) {
    int hi = g_ascii_xdigit_value(hex[2 * i]), lo = g_ascii_xdigit_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return FALSE;
    id->b[i] = (guint8)(hi << 4 | lo);
  }
  return TRUE;
}

static const char *
peer_of_id(SnSearch *s, const HarkGiId *id)
{
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init(&iter, s->peers);
  while (g_hash_table_iter_next(&iter, &key, &value))
    if (hark_gi_id_equal(value, id))
      return key;
  return NULL;
}

static void
lose_peer(SnSearch *s, const HarkGiId *id)
{
  g_array_append_val(s->lost, *id);
  schedule(s, 0);
}

/* ---- the engine's callbacks ------------------------------------------------------------ */

static void
engine_send(gpointer user, const HarkGiId *peer, GBytes *addr, GBytes *message)
{
  SnSearch *s = user;
  (void)addr; /* SNs are reached only over links they verified */
  const char *name = peer_of_id(s, peer);
  if (name == NULL) {
    s->counters.unlinked++;
    lose_peer(s, peer);
    return;
  }
  g_autoptr(GError) error = NULL;
  GVariant *v = g_variant_new_from_bytes(G_VARIANT_TYPE(HARK_GI_MESSAGE_TYPE), message, TRUE);
  if (!s->services->send(s->host, name, v, &error)) {
    s->counters.send_failed++;
    g_debug("%s: no message to SN %s: %s", s->name, name, error->message);
    lose_peer(s, peer);
  }
}

/* The signed record in blob, verified by the node (counted there when refused), or NULL. */
static HarkPresenceRecord *
verify_blob(SnSearch *s, GBytes *blob, GError **error)
{
  g_autoptr(GVariant) v =
    g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE("(ayay)"), blob, FALSE));
  if (!g_variant_is_normal_form(v)) {
    g_set_error_literal(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                        "a record not in normal form");
    return NULL;
  }
  return s->services->verify(s->host, v, FALSE, error);
}

/* Signed and saying what the engine files it under: its user's key, device and time. */
static gboolean
engine_verify(gpointer user, const HarkGiRecord *record)
{
  SnSearch *s = user;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkPresenceRecord) verified = verify_blob(s, record->blob, &error);
  if (verified == NULL)
    return FALSE;
  HarkGiId key;
  hark_gi_id_for_user(verified->user, &key);
  if (!hark_gi_id_equal(&key, &record->key) || strcmp(verified->device, record->device) != 0 ||
      verified->time * G_USEC_PER_SEC != record->time_us) {
    s->counters.mismatched++;
    g_debug("%s: a validly signed record filed under another key, device or time", s->name);
    return FALSE;
  }
  return TRUE;
}

static void
ask_answer(SnSearch *s, Ask *ask, GPtrArray *records, guint hops)
{
  ask->finished = TRUE;
  if (ask->cancellable != NULL && g_cancellable_is_cancelled(ask->cancellable))
    return;
  HarkSearchResult *result = hark_search_result_new(HARK_SEARCH_UNDECIDED);
  for (guint i = 0; records != NULL && i < records->len; i++) {
    const HarkGiRecord *r = records->pdata[i];
    g_autoptr(GError) error = NULL;
    HarkPresenceRecord *verified = verify_blob(s, r->blob, &error);
    g_autofree char *key = verified != NULL ? hark_presence_name_key(verified->user) : NULL;
    if (verified != NULL && g_strcmp0(key, ask->key) == 0)
      g_ptr_array_add(result->records, verified);
    else if (verified != NULL)
      hark_presence_record_free(verified);
  }
  if (result->records->len > 0) {
    result->answer = HARK_SEARCH_FOUND;
    s->counters.found++;
    s->counters.routed += hops > 0;
    s->counters.last_hops = hops;
  } else {
    s->counters.not_found++;
  }
  ask->done(result, NULL, ask->user_data);
}

static void
ask_free(Ask *ask)
{
  g_clear_object(&ask->cancellable);
  g_free(ask->key);
  g_free(ask);
}

static void
engine_done(gpointer user, guint64 request, gboolean ok, GPtrArray *records, guint hops)
{
  SnSearch *s = user;
  (void)ok;
  Ask *ask = g_hash_table_lookup(s->asks, &request);
  if (ask != NULL) {
    ask_answer(s, ask, records, hops);
    g_hash_table_remove(s->asks, &request);
  } else if (s->starting != NULL && !s->starting->finished) {
    ask_answer(s, s->starting, records, hops);
  }
}

static const HarkGiCallbacks engine_callbacks = {
  .send = engine_send,
  .verify = engine_verify,
  .done = engine_done,
};

/* ---- serving: the engine, the links, the timer ------------------------------------------ */

/* Lookups still waiting get an error: the next strategy decides. */
static void
stop_engine(SnSearch *s)
{
  if (s->engine == NULL)
    return;
  g_autoptr(GError) error =
    g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s stopped (no longer a super node)", s->name);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, s->asks);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Ask *ask = value;
    if (ask->cancellable == NULL || !g_cancellable_is_cancelled(ask->cancellable))
      ask->done(NULL, error, ask->user_data);
    g_hash_table_iter_remove(&iter);
  }
  g_clear_pointer(&s->engine, s->ops->destroy);
  g_hash_table_remove_all(s->peers);
  g_array_set_size(s->lost, 0);
}

/* An engine while the node is an SN that can name itself (services version 2). */
static gboolean
ensure_engine(SnSearch *s)
{
  if (s->services == NULL || !s->services->is_super_node(s->host)) {
    stop_engine(s);
    return FALSE;
  }
  if (s->engine != NULL)
    return TRUE;
  HarkGiId self;
  if (s->services->version < 2 || !id_from_hex(s->services->self_device(s->host), &self))
    return FALSE;
  s->engine = s->ops->create(&self, &engine_callbacks, s);
  return TRUE;
}

/* The verified links now against the peers the engine knows. */
static void
sync_peers(SnSearch *s)
{
  gint64 now = now_us(s);
  g_autoptr(GArray) lost = s->lost;
  s->lost = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  for (guint i = 0; i < lost->len; i++) {
    const HarkGiId *id = &g_array_index(lost, HarkGiId, i);
    const char *name = peer_of_id(s, id);
    if (name != NULL)
      g_hash_table_remove(s->peers, name);
    s->ops->peer_down(s->engine, id, now);
  }
  g_autoptr(GPtrArray) linked = s->services->sn_peers(s->host);
  g_autoptr(GHashTable) now_linked = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < linked->len; i++) {
    const char *name = linked->pdata[i];
    g_autofree char *fingerprint = s->services->peer_device(s->host, name);
    HarkGiId id;
    if (!id_from_hex(fingerprint, &id))
      continue;
    g_hash_table_add(now_linked, (gpointer)name);
    HarkGiId *known = g_hash_table_lookup(s->peers, name);
    if (known != NULL && hark_gi_id_equal(known, &id))
      continue;
    if (known != NULL) /* another SN on that address now */
      s->ops->peer_down(s->engine, known, now);
    g_hash_table_replace(s->peers, g_strdup(name), g_memdup2(&id, sizeof id));
    s->ops->peer_up(s->engine, &id, now);
  }
  /* Taken out first, told after: the engine's reroutes may call back into us. */
  g_autoptr(GArray) gone = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init(&iter, s->peers);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    if (g_hash_table_contains(now_linked, key))
      continue;
    g_array_append_val(gone, *(HarkGiId *)value);
    g_hash_table_iter_remove(&iter);
  }
  for (guint i = 0; i < gone->len && s->engine != NULL; i++)
    s->ops->peer_down(s->engine, &g_array_index(gone, HarkGiId, i), now);
}

static gboolean
on_timer(gpointer data)
{
  SnSearch *s = data;
  g_clear_pointer(&s->timer, g_source_unref);
  if (ensure_engine(s)) {
    sync_peers(s);
    gint64 now = now_us(s);
    if (s->ops->next_deadline(s->engine) <= now)
      s->ops->tick(s->engine, now);
  }
  schedule(s, POLL_MS);
  return G_SOURCE_REMOVE;
}

/* The timer in at most delay_ms, sooner when the engine's deadline is nearer. */
static void
schedule(SnSearch *s, gint64 delay_ms)
{
  if (s->services == NULL)
    return;
  if (s->engine != NULL) {
    gint64 until = (s->ops->next_deadline(s->engine) - now_us(s)) / 1000 + 1;
    delay_ms = MIN(delay_ms, MAX(until, 0));
  }
  if (s->timer != NULL) {
    gint64 due = (g_source_get_ready_time(s->timer) - g_get_monotonic_time()) / 1000;
    if (due <= delay_ms)
      return;
    g_source_destroy(s->timer);
    g_clear_pointer(&s->timer, g_source_unref);
  }
  s->timer = g_timeout_source_new((guint)delay_ms);
  g_source_set_callback(s->timer, on_timer, s, NULL);
  g_source_attach(s->timer, hark_context_main_context(s->ctx));
}

/* ---- the search interface -------------------------------------------------------------- */

static void
attach(gpointer instance, const HarkSearchServices *services, gpointer host)
{
  SnSearch *s = instance;
  s->services = services;
  s->host = host;
  if (services->version < 2)
    g_warning("%s: the node's search services are version %u; it needs 2 to run", s->name,
              services->version);
  schedule(s, 0);
}

static void
detach(gpointer instance)
{
  SnSearch *s = instance;
  stop_engine(s);
  if (s->timer != NULL) {
    g_source_destroy(s->timer);
    g_clear_pointer(&s->timer, g_source_unref);
  }
  s->services = NULL;
  s->host = NULL;
}

static void
serve_lookup(gpointer instance, const HarkPresenceQuery *query, GCancellable *cancellable,
             HarkSearchDone done, gpointer user_data)
{
  SnSearch *s = instance;
  /* The index is by whole name: a prefix is the login server's to answer. */
  if (query->prefix || !ensure_engine(s)) {
    done(hark_search_result_new(HARK_SEARCH_UNDECIDED), NULL, user_data);
    return;
  }
  sync_peers(s);
  s->counters.lookups++;
  Ask *ask = g_new0(Ask, 1);
  ask->search = s;
  ask->done = done;
  ask->user_data = user_data;
  ask->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
  ask->key = g_strdup(query->key);
  HarkGiId key;
  hark_gi_id_for_user(query->key, &key);
  s->starting = ask;
  guint64 request = s->ops->lookup(s->engine, &key, now_us(s));
  s->starting = NULL;
  if (ask->finished)
    ask_free(ask);
  else
    g_hash_table_insert(s->asks, g_memdup2(&request, sizeof request), ask);
  schedule(s, POLL_MS);
}

static void
message(gpointer instance, const char *peer, GVariant *variant)
{
  SnSearch *s = instance;
  if (!ensure_engine(s))
    return;
  if (!g_variant_is_of_type(variant, G_VARIANT_TYPE(HARK_GI_MESSAGE_TYPE))) {
    s->counters.malformed++;
    g_debug("%s: a DIR_STRATEGY of type %s refused", s->name, g_variant_get_type_string(variant));
    return;
  }
  if (!g_hash_table_contains(s->peers, peer))
    sync_peers(s); /* a link verified since the last poll */
  const HarkGiId *from = g_hash_table_lookup(s->peers, peer);
  if (from == NULL) {
    s->counters.unknown_peer++;
    return;
  }
  HarkGiId id = *from;
  g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(variant);
  s->ops->receive(s->engine, &id, bytes, now_us(s));
  schedule(s, POLL_MS);
}

static void
record_published(gpointer instance, const HarkPresenceRecord *record)
{
  SnSearch *s = instance;
  if (record->signed_form == NULL || !ensure_engine(s))
    return;
  sync_peers(s);
  HarkGiId key;
  hark_gi_id_for_user(record->user, &key);
  g_autoptr(GBytes) blob = g_variant_get_data_as_bytes(record->signed_form);
  g_autoptr(HarkGiRecord) r =
    hark_gi_record_new(&key, record->device, record->time * G_USEC_PER_SEC, blob);
  s->counters.published++;
  s->ops->publish(s->engine, r, now_us(s));
  schedule(s, POLL_MS);
}

static void
client_left(gpointer instance, const char *user, const char *device)
{
  SnSearch *s = instance;
  if (s->engine == NULL || s->ops->forget == NULL)
    return;
  HarkGiId key;
  hark_gi_id_for_user(user, &key);
  s->ops->forget(s->engine, &key, device);
  s->counters.forgotten++;
}

static JsonObject *
stats(gpointer instance)
{
  SnSearch *s = instance;
  JsonObject *o = json_object_new();
  json_object_set_boolean_member(o, "running", s->engine != NULL);
  json_object_set_int_member(o, "lookups", (gint64)s->counters.lookups);
  json_object_set_int_member(o, "found", (gint64)s->counters.found);
  json_object_set_int_member(o, "not_found", (gint64)s->counters.not_found);
  json_object_set_int_member(o, "routed", (gint64)s->counters.routed);
  json_object_set_int_member(o, "last_hops", s->counters.last_hops);
  json_object_set_int_member(o, "published", (gint64)s->counters.published);
  json_object_set_int_member(o, "forgotten", (gint64)s->counters.forgotten);
  json_object_set_int_member(o, "unlinked", (gint64)s->counters.unlinked);
  json_object_set_int_member(o, "send_failed", (gint64)s->counters.send_failed);
  json_object_set_int_member(o, "malformed_envelopes", (gint64)s->counters.malformed);
  json_object_set_int_member(o, "unknown_peer", (gint64)s->counters.unknown_peer);
  json_object_set_int_member(o, "mismatched", (gint64)s->counters.mismatched);
  if (s->engine == NULL)
    return o;
  json_object_set_int_member(o, "peers", g_hash_table_size(s->peers));
  json_object_set_int_member(o, "contacts", s->ops->contacts(s->engine));
  json_object_set_int_member(o, "records", s->ops->records(s->engine));
  const HarkGiStats *st = s->ops->stats(s->engine);
  json_object_set_int_member(o, "sent", (gint64)st->sent);
  json_object_set_int_member(o, "received", (gint64)st->received);
  json_object_set_int_member(o, "malformed", (gint64)st->malformed);
  json_object_set_int_member(o, "forged", (gint64)st->forged);
  json_object_set_int_member(o, "duplicates", (gint64)st->duplicates);
  json_object_set_int_member(o, "refused_replicas", (gint64)st->refused_replicas);
  json_object_set_int_member(o, "cache_hits", (gint64)st->cache_hits);
  json_object_set_int_member(o, "expired", (gint64)st->expired);
  json_object_set_int_member(o, "timeouts", (gint64)st->timeouts);
  json_object_set_int_member(o, "rerouted", (gint64)st->rerouted);
  json_object_set_int_member(o, "stored_refused", (gint64)st->stored_refused);
  json_object_set_int_member(o, "misfiled", (gint64)st->misfiled);
  json_object_set_int_member(o, "stale", (gint64)st->stale);
  json_object_set_int_member(o, "refused_stores", (gint64)st->refused_stores);
  json_object_set_int_member(o, "unsolicited", (gint64)st->unsolicited);
  json_object_set_int_member(o, "unexpected", (gint64)st->unexpected);
  return o;
}

static const HarkSearchInterface sn_search_iface = {
  .version = HARK_SEARCH_INTERFACE_VERSION,
  .attach = attach,
  .detach = detach,
  .serve_lookup = serve_lookup,
  .message = message,
  .stats = stats,
  .record_published = record_published,
  .client_left = client_left,
};

gboolean
hark_sn_search_register(HarkContext *ctx, const char *name, const HarkSnEngineOps *ops,
                        GError **error)
{
  SnSearch *s = g_new0(SnSearch, 1);
  s->ops = ops;
  s->name = g_strdup(name);
  s->ctx = ctx;
  s->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  s->asks = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, (GDestroyNotify)ask_free);
  s->lost = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  if (!hark_context_register(ctx, HARK_KIND_SEARCH, name, HARK_RANK_PRIMARY, &sn_search_iface, s,
                             error)) {
    hark_sn_search_free(s);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, s);
  return TRUE;
}

/* The core detached the strategy before its plugin unloads. */
void
hark_sn_search_free(gpointer search)
{
  SnSearch *s = search;
  if (s == NULL)
    return;
  detach(s);
  g_hash_table_unref(s->peers);
  g_hash_table_unref(s->asks);
  g_array_unref(s->lost);
  g_free(s->name);
  g_free(s);
}
