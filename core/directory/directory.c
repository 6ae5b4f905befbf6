/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory.c: the directory's object: it listens to the overlay for its message types
 * and events (the overlay never calls up), hands the search strategies their services,
 * carries their DIR_STRATEGY messages between SNs, counts what it refused, and has the
 * `directory`, `status` and `search` commands. */
#include "directory-private.h"

#include <string.h>

#define LOG_INTERVAL_US G_USEC_PER_SEC

/* ---- refusals -------------------------------------------------------------------------- */

static guint64 *
counter_for(HarkDirectory *directory, const GError *error)
{
  DirectoryCounters *c = &directory->counters;
  if (error->domain == G_IO_ERROR)
    return error->code == G_IO_ERROR_EXISTS ? &c->records_stale : &c->records_full;
  if (error->domain != HARK_PRESENCE_ERROR)
    return &c->records_malformed;
  switch ((HarkPresenceError)error->code) {
  case HARK_PRESENCE_ERROR_FORGED:
    return &c->records_forged;
  case HARK_PRESENCE_ERROR_FOREIGN:
    return &c->records_foreign;
  case HARK_PRESENCE_ERROR_EXPIRED:
    return &c->records_expired;
  case HARK_PRESENCE_ERROR_FUTURE:
    return &c->records_future;
  case HARK_PRESENCE_ERROR_MALFORMED:
  default:
    return &c->records_malformed;
  }
}

/* A flood of bad records must not flood the log: one line a second at message level,
 * saying how many more there were; the rest at debug level. */
void
hark_directory_refused_text(HarkDirectory *directory, const char *text)
{
  gint64 now = g_get_monotonic_time();
  if (now - directory->last_log_us >= LOG_INTERVAL_US) {
    if (directory->refused_since_log > 0)
      g_message("directory: %s (and %" G_GUINT64_FORMAT " more refusals since the last line)", text,
                directory->refused_since_log);
    else
      g_message("directory: %s", text);
    directory->last_log_us = now;
    directory->refused_since_log = 0;
  } else {
    directory->refused_since_log++;
    g_debug("directory: %s", text);
  }
}

void
hark_directory_refused(HarkDirectory *directory, const GError *error, const char *from)
{
  (*counter_for(directory, error))++;
  g_autofree char *text = g_strdup_printf("%s (from %s)", error->message, from);
  hark_directory_refused_text(directory, text);
}

char *
hark_directory_link_text(HarkLink *link)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
  g_autofree char *user = cert != NULL ? hark_text_escape(cert->user, -1, 64) : NULL;
  return g_strdup_printf("%s:%u%s%s", hark_link_get_peer_host(link), hark_link_get_peer_port(link),
                         user != NULL ? " user " : "", user != NULL ? user : "");
}

const char *
hark_directory_ca_pem(HarkDirectory *directory)
{
  return hark_login_client_ca_pem(directory->login);
}

gint64
hark_directory_now(HarkDirectory *directory)
{
  return hark_clock_now_seconds(directory->clock);
}

/* ---- strategies and their services ----------------------------------------------------- */

const HarkRegistration *
hark_directory_strategy(HarkDirectory *directory, const char *name)
{
  for (guint i = 0; directory->strategies != NULL && i < directory->strategies->len; i++) {
    const HarkRegistration *reg = directory->strategies->pdata[i];
    if (strcmp(reg->name, name) == 0)
      return reg;
  }
  return NULL;
}

/* Each strategy gets services whose send() names it: a table per registration. */
typedef struct {
  HarkSearchServices services;
  HarkDirectory *directory;
  char *name;
} StrategyHost;

static HarkDirectory *
directory_of_host(gpointer host)
{
  return ((StrategyHost *)host)->directory;
}

static gboolean
service_is_super_node(gpointer host)
{
  HarkDirectory *directory = directory_of_host(host);
  return hark_overlay_is_super_node(directory->overlay);
}

static GPtrArray *
service_sn_peers(gpointer host)
{
  HarkDirectory *directory = directory_of_host(host);
  g_autoptr(GPtrArray) links = hark_overlay_sn_peer_links(directory->overlay);
  GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < links->len; i++) {
    char *id = hark_overlay_peer_id(directory->overlay, links->pdata[i]);
    if (id != NULL)
      g_ptr_array_add(ids, id);
  }
  return ids;
}

/* A strategy's message goes out in a DIR_STRATEGY envelope under the strategy's name. */
static gboolean
send_strategy(HarkDirectory *directory, const char *strategy, const char *peer, GVariant *message,
              GError **error)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink(message);
  g_autoptr(GPtrArray) links = hark_overlay_sn_peer_links(directory->overlay);
  for (guint i = 0; i < links->len; i++) {
    g_autofree char *id = hark_overlay_peer_id(directory->overlay, links->pdata[i]);
    if (g_strcmp0(id, peer) == 0)
      return hark_link_send(links->pdata[i], HARK_MSG_DIR_STRATEGY,
                            hark_overlay_new_message_id(directory->overlay),
                            g_variant_new("(sv)", strategy, owned), error);
  }
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no verified SN peer %s", peer);
  return FALSE;
}

static GPtrArray *
service_store_find(gpointer host, const HarkPresenceQuery *query)
{
  HarkDirectory *directory = directory_of_host(host);
  if (directory->store == NULL)
    return g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  return hark_directory_store_find(directory->store, query, NULL, DIRECTORY_MAX_RESULTS);
}

static HarkPresenceRecord *
service_verify(gpointer host, GVariant *signed_record, gboolean store, GError **error)
{
  HarkDirectory *directory = directory_of_host(host);
  gint64 now = hark_directory_now(directory);
  g_autoptr(GError) local = NULL;
  HarkPresenceRecord *record =
    hark_presence_verify(signed_record, hark_directory_ca_pem(directory), NULL, now, &local);
  if (record != NULL && store && directory->store != NULL &&
      hark_directory_store_put(directory->store, hark_directory_ca_pem(directory), now,
                               record->signed_form, NULL, NULL, NULL, NULL, NULL, &local) == NULL)
    g_clear_pointer(&record, hark_presence_record_free);
  if (record == NULL) {
    /* A stale copy of what we hold is no offence of the sender's: not logged. */
    if (!g_error_matches(local, G_IO_ERROR, G_IO_ERROR_EXISTS))
      hark_directory_refused(directory, local, "a search strategy");
    g_propagate_error(error, g_steal_pointer(&local));
  }
  return record;
}

static HarkClock *
service_clock(gpointer host)
{
  HarkDirectory *directory = directory_of_host(host);
  return directory->clock;
}

typedef struct {
  HarkSearchDone done;
  gpointer user_data;
} LoginLookup;

static void
login_lookup_done(LoginLookup *lookup, HarkSearchResult *found, GError *error)
{
  lookup->done(found, error, lookup->user_data);
  g_clear_error(&error);
  g_free(lookup);
}

/* The login server's word on a name: it exists (FOUND with the name as registered: the
 * caller knows whether the overlay had a device) or there is no such user. */
static void
login_looked_up(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  GError *error = NULL;
  g_autofree char *user = NULL;
  HarkLoginLookup said = hark_login_client_lookup_finish(result, &user, &error);
  if (error != NULL) {
    login_lookup_done(data, NULL, error);
    return;
  }
  if (said == HARK_LOGIN_LOOKUP_NO_SUCH_USER || user == NULL ||
      !hark_presence_name_is_valid(user)) {
    login_lookup_done(data, hark_search_result_new(HARK_SEARCH_UNKNOWN), NULL);
    return;
  }
  HarkSearchResult *found = hark_search_result_new(HARK_SEARCH_FOUND);
  g_ptr_array_add(found->names, g_steal_pointer(&user));
  login_lookup_done(data, found, NULL);
}

/* The names the login server lists for a prefix; none is UNKNOWN. */
static void
login_searched(GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  GError *error = NULL;
  g_autoptr(GPtrArray) names = hark_login_client_search_finish(result, &error);
  if (names == NULL) {
    login_lookup_done(data, NULL, error);
    return;
  }
  HarkSearchResult *found = hark_search_result_new(HARK_SEARCH_FOUND);
  for (guint i = 0; i < names->len; i++)
    if (hark_presence_name_is_valid(names->pdata[i]))
      g_ptr_array_add(found->names, g_strdup(names->pdata[i]));
  if (found->names->len == 0)
    found->answer = HARK_SEARCH_UNKNOWN;
  login_lookup_done(data, found, NULL);
}

static void
service_login_lookup(gpointer host, const HarkPresenceQuery *query, GCancellable *cancellable,
                     HarkSearchDone done, gpointer user_data)
{
  HarkDirectory *directory = directory_of_host(host);
  LoginLookup *lookup = g_new0(LoginLookup, 1);
  lookup->done = done;
  lookup->user_data = user_data;
  if (query->prefix)
    hark_login_client_search_async(directory->login, query->key, 20, cancellable, login_searched,
                                   lookup);
  else
    hark_login_client_lookup_async(directory->login, query->key, cancellable, login_looked_up,
                                   lookup);
}

static gboolean
service_send(gpointer host, const char *peer, GVariant *message, GError **error)
{
  StrategyHost *h = host;
  return send_strategy(h->directory, h->name, peer, message, error);
}

static const char *
service_self_device(gpointer host)
{
  HarkDirectory *directory = directory_of_host(host);
  return hark_identity_get_fingerprint(directory->node->identity);
}

static char *
service_peer_device(gpointer host, const char *peer)
{
  HarkDirectory *directory = directory_of_host(host);
  g_autoptr(GPtrArray) links = hark_overlay_sn_peer_links(directory->overlay);
  for (guint i = 0; i < links->len; i++) {
    g_autofree char *id = hark_overlay_peer_id(directory->overlay, links->pdata[i]);
    const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(links->pdata[i]);
    if (g_strcmp0(id, peer) == 0)
      return cert != NULL ? g_strdup(cert->device_id) : NULL;
  }
  return NULL;
}

static const HarkSearchServices strategy_services = {
  .version = HARK_SEARCH_INTERFACE_VERSION,
  .is_super_node = service_is_super_node,
  .sn_peers = service_sn_peers,
  .send = service_send,
  .store_find = service_store_find,
  .verify = service_verify,
  .clock = service_clock,
  .login_lookup = service_login_lookup,
  .self_device = service_self_device,
  .peer_device = service_peer_device,
};

static void
strategy_host_free(gpointer data)
{
  StrategyHost *host = data;
  g_free(host->name);
  g_free(host);
}

static void
attach_strategies(HarkDirectory *directory)
{
  directory->strategies = hark_context_lookup(directory->ctx, HARK_KIND_SEARCH);
  for (guint i = 0; i < directory->strategies->len; i++) {
    const HarkRegistration *reg = directory->strategies->pdata[i];
    const HarkSearchInterface *iface = reg->iface;
    StrategyHost *host = g_new0(StrategyHost, 1);
    host->services = strategy_services;
    host->directory = directory;
    host->name = g_strdup(reg->name);
    g_ptr_array_add(directory->strategy_hosts, host);
    if (iface->attach != NULL)
      iface->attach(reg->instance, &host->services, host);
  }
  for (char **name = directory->node->config->dir_search; *name != NULL; name++)
    if (hark_directory_strategy(directory, *name) == NULL)
      g_message("directory: the search strategy '%s' (directory.search) is not loaded; "
                "it is skipped",
                *name);
}

static void
detach_strategies(HarkDirectory *directory)
{
  for (guint i = 0; directory->strategies != NULL && i < directory->strategies->len; i++) {
    const HarkRegistration *reg = directory->strategies->pdata[i];
    const HarkSearchInterface *iface = reg->iface;
    if (iface->detach != NULL)
      iface->detach(reg->instance);
  }
  g_clear_pointer(&directory->strategies, g_ptr_array_unref);
}

/* A client's record (or the SN's own), to the strategies that spread records among SNs
 * (version 2). */
void
hark_directory_published_to_strategies(HarkDirectory *directory, const HarkPresenceRecord *record)
{
  for (guint i = 0; directory->strategies != NULL && i < directory->strategies->len; i++) {
    const HarkRegistration *reg = directory->strategies->pdata[i];
    const HarkSearchInterface *iface = reg->iface;
    if (iface->version >= 2 && iface->record_published != NULL)
      iface->record_published(reg->instance, record);
  }
}

/* The devices that published through link (a client's, closing) left this SN: told to
 * the strategies that store their clients' records again each period (version 3). */
static void
client_left_to_strategies(HarkDirectory *directory, HarkLink *link)
{
  g_autoptr(GPtrArray) records = hark_directory_store_records_from(directory->store, link);
  for (guint i = 0; directory->strategies != NULL && i < directory->strategies->len; i++) {
    const HarkRegistration *reg = directory->strategies->pdata[i];
    const HarkSearchInterface *iface = reg->iface;
    if (iface->version < 3 || iface->client_left == NULL)
      continue;
    for (guint k = 0; k < records->len; k++) {
      const HarkPresenceRecord *record = records->pdata[k];
      iface->client_left(reg->instance, record->user, record->device);
    }
  }
}

static void
tick_strategies(HarkDirectory *directory)
{
  for (guint i = 0; directory->strategies != NULL && i < directory->strategies->len; i++) {
    const HarkRegistration *reg = directory->strategies->pdata[i];
    const HarkSearchInterface *iface = reg->iface;
    if (iface->tick != NULL)
      iface->tick(reg->instance);
  }
}

/* ---- SN side: publications and strategy messages ---------------------------------------- */

static void
serve_publish(HarkDirectory *directory, HarkLink *link, const HarkWireMessage *message)
{
  g_autofree char *who = hark_directory_link_text(link);
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
  if (cert == NULL) {
    directory->counters.publish_unauthenticated++;
    hark_directory_refused_text(directory,
                                "a DIR_PUBLISH from a client that has not proved a certificate");
    hark_link_send(link, HARK_MSG_ERROR, message->id,
                   g_variant_new("(us)", 401, "log in before publishing presence"), NULL);
    return;
  }
  g_autoptr(GVariant) public_form = g_variant_get_child_value(message->body, 0);
  g_autoptr(GVariant) full_form = g_variant_get_child_value(message->body, 1);
  g_autofree const char **buddies = NULL;
  g_variant_get_child(message->body, 2, "^a&s", &buddies);
  g_autoptr(GError) error = NULL;
  const HarkPresenceRecord *stored = hark_directory_store_put(
    directory->store, hark_directory_ca_pem(directory), hark_directory_now(directory), public_form,
    full_form, (char **)buddies, cert->user, cert->device_id, link, &error);
  if (stored == NULL) {
    hark_directory_refused(directory, error, who);
    hark_link_send(link, HARK_MSG_ERROR, message->id, g_variant_new("(us)", 400, error->message),
                   NULL);
    return;
  }
  directory->counters.published++;
  g_debug("directory: stored the record of %s (sequence %" G_GUINT64_FORMAT ")", who,
          stored->sequence);
  hark_directory_published_to_strategies(directory, stored);
  hark_link_send(
    link, HARK_MSG_DIR_PUBLISH_OK, message->id,
    g_variant_new("(tu)", stored->sequence, (guint32)directory->node->config->dir_refresh_interval),
    NULL);
  hark_directory_presence_published(directory, link, stored);
}

static void
serve_strategy(HarkDirectory *directory, HarkLink *link, const HarkWireMessage *message)
{
  const char *name;
  g_autoptr(GVariant) inner = NULL;
  g_variant_get(message->body, "(&sv)", &name, &inner);
  const HarkRegistration *reg = hark_directory_strategy(directory, name);
  const HarkSearchInterface *iface = reg != NULL ? reg->iface : NULL;
  g_autofree char *peer = hark_overlay_peer_id(directory->overlay, link);
  if (iface == NULL || iface->message == NULL || peer == NULL) {
    directory->counters.strategy_unknown++;
    g_autofree char *shown = hark_text_escape(name, -1, 32);
    g_autofree char *text =
      g_strdup_printf("a DIR_STRATEGY for '%s', which is not loaded here", shown);
    hark_directory_refused_text(directory, text);
    return;
  }
  iface->message(reg->instance, peer, inner);
}

/* ---- the overlay listener --------------------------------------------------------------- */

static const guint16 listened_types[] = {
  HARK_MSG_DIR_PUBLISH,  HARK_MSG_DIR_PUBLISH_OK, HARK_MSG_DIR_LOOKUP,   HARK_MSG_DIR_RESULT,
  HARK_MSG_DIR_STRATEGY, HARK_MSG_DIR_SUBSCRIBE,  HARK_MSG_DIR_PRESENCE, HARK_MSG_DIR_WATCH,
  HARK_MSG_DIR_HINT,
};

static gboolean
on_message(gpointer data, HarkLink *link, HarkOverlayFrom from, const HarkWireMessage *message)
{
  HarkDirectory *directory = data;
  if (from == HARK_OVERLAY_FROM_CLAIMED_SN)
    return directory->store != NULL &&
           hark_directory_presence_message(directory, link, from, message);
  switch (message->type) {
  case HARK_MSG_DIR_PUBLISH:
    if (from != HARK_OVERLAY_FROM_CLIENT || directory->store == NULL)
      break;
    serve_publish(directory, link, message);
    return TRUE;
  case HARK_MSG_DIR_LOOKUP:
    if (from != HARK_OVERLAY_FROM_CLIENT || directory->store == NULL)
      break;
    hark_directory_serve_lookup(directory, link, message);
    return TRUE;
  case HARK_MSG_DIR_STRATEGY:
    if (from != HARK_OVERLAY_FROM_SN || directory->store == NULL)
      break;
    serve_strategy(directory, link, message);
    return TRUE;
  case HARK_MSG_DIR_PUBLISH_OK:
    return from == HARK_OVERLAY_FROM_MY_SN && hark_directory_publish_answer(directory, message);
  case HARK_MSG_DIR_RESULT:
    return from == HARK_OVERLAY_FROM_MY_SN && hark_directory_search_answer(directory, message);
  case HARK_MSG_DIR_SUBSCRIBE:
  case HARK_MSG_DIR_WATCH:
  case HARK_MSG_DIR_PRESENCE:
  case HARK_MSG_DIR_HINT:
    if (hark_directory_presence_message(directory, link, from, message))
      return TRUE;
    break;
  case HARK_MSG_ERROR:
    if (from == HARK_OVERLAY_FROM_SN) /* an answer to our watch or hint, or someone else's */
      return hark_directory_reach_error(directory, link, message);
    return hark_directory_publish_answer(directory, message) ||
           hark_directory_search_answer(directory, message);
  default:
    break;
  }
  /* Not for this node's role: the overlay's counters say so. */
  g_autofree char *who = hark_directory_link_text(link);
  hark_overlay_count_refused(directory->overlay, "%s from %s (not expected here)",
                             hark_wire_type_name(message->type), who);
  return TRUE;
}

static gboolean
on_expire(gpointer data)
{
  HarkDirectory *directory = data;
  guint n = hark_directory_store_expire(directory->store, hark_directory_now(directory));
  if (n > 0)
    g_debug("directory: forgot %u records older than 72 h", n);
  tick_strategies(directory);
  hark_directory_presence_tick(directory);
  /* Once per timeout (a test clock's run once): the next is a new one. */
  directory->expire_source =
    hark_clock_add_seconds(directory->clock, DIRECTORY_EXPIRE_S, on_expire, directory);
  return G_SOURCE_REMOVE;
}

static void
start_serving(HarkDirectory *directory)
{
  if (directory->store != NULL)
    return;
  directory->store = hark_directory_store_new((guint)directory->node->config->dir_max_records);
  directory->buckets = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  directory->expire_source =
    hark_clock_add_seconds(directory->clock, DIRECTORY_EXPIRE_S, on_expire, directory);
  hark_directory_reach_start(directory);
}

gboolean
hark_directory_bucket_take(DirectoryBucket *bucket, gint64 now_us, double per_minute, double burst)
{
  if (!bucket->started) {
    bucket->started = TRUE;
    bucket->tokens = burst;
    bucket->refilled_us = now_us;
  }
  double rate = per_minute / 60.0 / G_USEC_PER_SEC;
  bucket->tokens = MIN(burst, bucket->tokens + (now_us - bucket->refilled_us) * rate);
  bucket->refilled_us = now_us;
  if (bucket->tokens < 1)
    return FALSE;
  bucket->tokens -= 1;
  return TRUE;
}

void
hark_directory_clear_source(HarkDirectory *directory, guint *source_id)
{
  if (*source_id == 0)
    return;
  GSource *source =
    g_main_context_find_source_by_id(hark_context_main_context(directory->ctx), *source_id);
  if (source != NULL)
    g_source_destroy(source);
  *source_id = 0;
}

static void
stop_serving(HarkDirectory *directory)
{
  if (directory->presence != NULL)
    hark_directory_presence_reset(directory);
  if (directory->reach != NULL)
    hark_directory_reach_reset(directory);
  hark_directory_clear_source(directory, &directory->expire_source);
  g_clear_pointer(&directory->store, hark_directory_store_free);
  g_clear_pointer(&directory->buckets, g_hash_table_unref);
}

static void
on_event(gpointer data, const char *event, JsonObject *details)
{
  HarkDirectory *directory = data;
  if (g_strcmp0(event, "overlay-role") == 0) {
    if (hark_overlay_is_super_node(directory->overlay)) {
      start_serving(directory);
      hark_directory_publish(directory, "serving as a super node");
    } else {
      stop_serving(directory);
    }
  } else if (g_strcmp0(event, "overlay-attached") == 0) {
    hark_directory_publish(directory, "attached to a super node");
    hark_directory_presence_reset(directory);
    hark_directory_presence_subscribe(directory, "attached to a super node");
  } else if (g_strcmp0(event, "certificate-changed") == 0) {
    hark_directory_publish(directory, "the certificate changed");
    hark_directory_presence_subscribe(directory, "the certificate changed");
  } else if (g_strcmp0(event, "nat-probed") == 0) {
    hark_directory_publish(directory, "a new NAT verdict");
  } else if (g_strcmp0(event, "sn-peer-linked") == 0 && directory->store != NULL) {
    const char *host = json_object_get_string_member_with_default(details, "host", "");
    guint16 port = (guint16)json_object_get_int_member_with_default(details, "port", 0);
    /* A new SN link (ours or theirs) gets our clients' watches now, not in 60 s. */
    HarkLink *peer = hark_overlay_peer_link(directory->overlay, host, port);
    if (peer != NULL)
      hark_directory_presence_forward_to(directory, peer);
    hark_directory_reach_linked(directory, host, port);
  } else if (g_strcmp0(event, "sn-peer-link-failed") == 0 && directory->store != NULL) {
    hark_directory_reach_link_failed(
      directory, json_object_get_string_member_with_default(details, "host", ""),
      (guint16)json_object_get_int_member_with_default(details, "port", 0));
  }
}

static void
on_link_closed(gpointer data, HarkLink *link, HarkOverlayFrom from)
{
  HarkDirectory *directory = data;
  if (directory->store == NULL)
    return;
  /* A client's record goes with its link, and its watchers are told; the strategies
   * first, while the store still has it. */
  if (from == HARK_OVERLAY_FROM_CLIENT)
    client_left_to_strategies(directory, link);
  hark_directory_presence_link_closed(directory, link, from);
  if (from == HARK_OVERLAY_FROM_SN)
    hark_directory_reach_peer_closed(directory, link);
  if (from == HARK_OVERLAY_FROM_CLIENT)
    hark_directory_forget_client(directory, link);
}

/* The buddy list changed: this device's record names other buddies, and it watches them. */
static void
on_buddies_changed(gpointer data)
{
  HarkDirectory *directory = data;
  hark_directory_publish(directory, "the buddy list changed");
  hark_directory_presence_subscribe(directory, "the buddy list changed");
}

/* A contact request with user changed here: their devices (and ours) are told. */
static void
on_contacted(gpointer data, const char *user)
{
  hark_directory_presence_hint(data, user);
}

static void
describe_buddies(gpointer data, JsonObject *answer)
{
  hark_directory_presence_describe_buddies(data, answer);
}

static const HarkLoginBuddyHooks buddy_hooks = {
  .changed = on_buddies_changed,
  .describe = describe_buddies,
  .contacted = on_contacted,
};

static const HarkOverlayListener directory_listener = {
  .types = listened_types,
  .n_types = G_N_ELEMENTS(listened_types),
  .errors_from_sn = TRUE,
  .message = on_message,
  .event = on_event,
  .link_closed = on_link_closed,
  .errors_from_sn_peers = TRUE, /* a 503 to a watch or hint: sent again */
  .claimed_sn_peers = TRUE, /* only for DIR_WATCH and DIR_PRESENCE: refused and counted */
};

HarkDirectory *
hark_directory_new(HarkNode *node, HarkOverlay *overlay, HarkLoginClient *login)
{
  HarkDirectory *directory = g_new0(HarkDirectory, 1);
  directory->node = node;
  directory->overlay = overlay;
  directory->login = login;
  directory->ctx = node->core_ctx;
  directory->clock = hark_context_get_clock(node->core_ctx);
  directory->status = HARK_PRESENCE_ONLINE;
  directory->strategy_hosts = g_ptr_array_new_with_free_func(strategy_host_free);
  directory->searches = g_hash_table_new(g_int64_hash, g_int64_equal);
  directory->searches_running = g_ptr_array_new();
  directory->serving = g_ptr_array_new();
  directory->presence = hark_directory_presence_new(directory);
  directory->reach = hark_directory_reach_new(directory);
  directory->listener = hark_overlay_add_listener(overlay, &directory_listener, directory);
  hark_login_client_set_buddy_hooks(login, &buddy_hooks, directory);
  attach_strategies(directory);
  if (hark_overlay_is_super_node(overlay))
    start_serving(directory);
  hark_directory_publish_start(directory);
  return directory;
}

void
hark_directory_free(HarkDirectory *directory)
{
  if (directory == NULL)
    return;
  hark_overlay_remove_listener(directory->overlay, directory->listener);
  hark_login_client_set_buddy_hooks(directory->login, NULL, NULL);
  hark_directory_publish_stop(directory);
  hark_directory_searches_free(directory);
  hark_directory_serving_free(directory); /* before the strategies go, as they owe answers */
  g_clear_pointer(&directory->reach, hark_directory_reach_free); /* before the strategies go */
  detach_strategies(directory);
  stop_serving(directory);
  hark_directory_presence_free(directory->presence);
  g_ptr_array_unref(directory->strategy_hosts);
  g_hash_table_unref(directory->searches);
  g_ptr_array_unref(directory->searches_running);
  g_ptr_array_unref(directory->serving);
  g_free(directory->last_publish_error);
  g_free(directory);
}

/* ---- commands -------------------------------------------------------------------------- */

static HarkDirectory *
directory_of(HarkCommandCall *call, gpointer user_data)
{
  HarkDirectory **directory = user_data;
  if (*directory != NULL)
    return *directory;
  hark_command_call_return_error(
    call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                              "this node has no directory: it needs a login section"));
  return NULL;
}

static JsonObject *
counters_json(const DirectoryCounters *c)
{
  JsonObject *o = json_object_new();
  json_object_set_int_member(o, "records_forged", (gint64)c->records_forged);
  json_object_set_int_member(o, "records_foreign", (gint64)c->records_foreign);
  json_object_set_int_member(o, "records_expired", (gint64)c->records_expired);
  json_object_set_int_member(o, "records_future", (gint64)c->records_future);
  json_object_set_int_member(o, "records_malformed", (gint64)c->records_malformed);
  json_object_set_int_member(o, "records_stale", (gint64)c->records_stale);
  json_object_set_int_member(o, "records_full", (gint64)c->records_full);
  json_object_set_int_member(o, "publish_unauthenticated", (gint64)c->publish_unauthenticated);
  json_object_set_int_member(o, "lookups_limited", (gint64)c->lookups_limited);
  json_object_set_int_member(o, "lookups_malformed", (gint64)c->lookups_malformed);
  json_object_set_int_member(o, "strategy_unknown", (gint64)c->strategy_unknown);
  json_object_set_int_member(o, "results_refused", (gint64)c->results_refused);
  json_object_set_int_member(o, "published", (gint64)c->published);
  json_object_set_int_member(o, "lookups", (gint64)c->lookups);
  json_object_set_int_member(o, "lookups_local_only", (gint64)c->lookups_local_only);
  return o;
}

static JsonObject *
strategy_json(HarkDirectory *directory, const char *name, gboolean configured)
{
  JsonObject *o = json_object_new();
  const HarkRegistration *reg = hark_directory_strategy(directory, name);
  json_object_set_string_member(o, "name", name);
  json_object_set_boolean_member(o, "configured", configured);
  json_object_set_boolean_member(o, "loaded", reg != NULL);
  const HarkSearchInterface *iface = reg != NULL ? reg->iface : NULL;
  if (iface != NULL) {
    json_object_set_string_member(o, "plugin", reg->plugin);
    if (iface->stats != NULL)
      json_object_set_object_member(o, "stats", iface->stats(reg->instance));
  }
  return o;
}

/* directory.search in order, then what is loaded but not named there (an SN serves a
 * lookup with the strategies the client names, which may be others than its own). */
static JsonArray *
strategies_json(HarkDirectory *directory)
{
  JsonArray *array = json_array_new();
  char **order = directory->node->config->dir_search;
  for (char **name = order; *name != NULL; name++)
    json_array_add_object_element(array, strategy_json(directory, *name, TRUE));
  for (guint i = 0; directory->strategies != NULL && i < directory->strategies->len; i++) {
    const HarkRegistration *reg = directory->strategies->pdata[i];
    if (!g_strv_contains((const char *const *)order, reg->name))
      json_array_add_object_element(array, strategy_json(directory, reg->name, FALSE));
  }
  return array;
}

static void
run_directory(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkDirectory *directory = directory_of(call, user_data);
  if (directory == NULL)
    return;
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "role", directory->store != NULL ? "super" : "client");
  if (directory->store != NULL)
    json_object_set_int_member(o, "records", hark_directory_store_size(directory->store));
  json_object_set_array_member(o, "search", strategies_json(directory));
  json_object_set_object_member(o, "publish", hark_directory_publish_describe(directory));
  json_object_set_object_member(o, "counters", counters_json(&directory->counters));
  json_object_set_object_member(o, "presence", hark_directory_presence_describe(directory));
  json_object_set_object_member(o, "reach", hark_directory_reach_describe(directory));
  hark_command_call_return_object(call, o);
}

static void
run_status(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkDirectory *directory = directory_of(call, user_data);
  if (directory == NULL)
    return;
  const char *text = json_object_get_string_member_with_default(args, "status", NULL);
  if (text != NULL) {
    HarkPresenceStatus status;
    if (!hark_presence_status_from_string(text, &status) || status == HARK_PRESENCE_HIDDEN) {
      hark_command_call_return_error(
        call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                          "status: '%s' is not one of online, away, busy, invisible", text));
      return;
    }
    if (status != directory->status) {
      directory->status = status;
      hark_directory_publish(directory, "the status changed");
    }
  }
  hark_command_call_return_object(call, hark_directory_publish_describe(directory));
}

static void
run_search(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkDirectory *directory = directory_of(call, user_data);
  if (directory != NULL)
    hark_directory_search(directory, json_object_get_string_member(args, "name"), call);
}

static const HarkCommandParam status_params[] = {
  { "status", HARK_PARAM_STRING, FALSE, "online, away, busy or invisible (none: show it)" },
  { NULL },
};

static const HarkCommandParam search_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "a user name, or the start of names followed by *" },
  { NULL },
};

static const HarkCommand directory_commands[] = {
  { HARK_COMMAND_VERSION, "directory",
    "this node's part of the directory: records kept, strategies, publishing, refusals", NULL,
    run_directory },
  { HARK_COMMAND_VERSION, "status", "this device's presence status: show it or change it",
    status_params, run_status },
  { HARK_COMMAND_VERSION, "search",
    "find a user's online devices (NAME), or users whose names start with PREFIX (PREFIX*)",
    search_params, run_search },
};

void
hark_directory_commands_register(HarkContext *core_ctx, HarkDirectory **directory)
{
  for (gsize i = 0; i < G_N_ELEMENTS(directory_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &directory_commands[i], directory, &error))
      g_error("directory command table is broken: %s", error->message);
  }
}
