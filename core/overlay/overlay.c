/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay.c: the overlay object: its links (peers), the host cache it keeps, the
 * counters of dropped input, events, and the snapshot the `overlay` command shows.
 *
 * Every link of the node is a Peer here, whatever its role, so that one link handler
 * dispatches by role and one place closes and counts. */
#include "overlay-private.h"

#include "hark/address.h"

#include <stdarg.h>

#define HOST_CACHE_FILE "hostcache.json"
#define WAY_FILE "join.json"
/* Floods of bad input are logged at most this often; the rest goes to debug. */
#define DROP_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

static void on_link_up(HarkLink *link, gpointer data);
static void on_link_message(HarkLink *link, const HarkWireMessage *message, gpointer data);
static void on_link_closed(HarkLink *link, const GError *error, gpointer data);

static gboolean
on_link_foreign(HarkLink *link, const guint8 *data, gsize size, gpointer user_data)
{
  HarkOverlay *overlay = user_data;
  Peer *peer = hark_overlay_peer_of(overlay, link);
  return peer != NULL && peer->kind == PEER_PENDING &&
         hark_overlay_turn_foreign(overlay, peer, data, size);
}

static const HarkLinkHandler peer_handler = {
  .up = on_link_up,
  .message = on_link_message,
  .closed = on_link_closed,
  .foreign = on_link_foreign,
};

guint64
hark_overlay_next_id(HarkOverlay *overlay)
{
  return ++overlay->next_id;
}

void
hark_overlay_emit(HarkOverlay *overlay, const char *event, JsonObject *data)
{
  hark_overlay_listeners_event(overlay, event, data);
  hark_context_emit(overlay->ctx, event, data);
}

void
hark_overlay_note_drop(HarkOverlay *overlay, guint64 *counter, const char *format, ...)
{
  (*counter)++;
  va_list args;
  va_start(args, format);
  g_autofree char *text = g_strdup_vprintf(format, args);
  va_end(args);
  gint64 now = g_get_monotonic_time();
  /* One line per interval at message level says a flood is going on; the details of
   * every drop are there for whoever turns debug on. */
  if (now - overlay->last_drop_log >= DROP_LOG_INTERVAL_US) {
    overlay->last_drop_log = now;
    g_message("dropped: %s (further drops for 10 s are logged at debug level)", text);
  } else {
    g_debug("dropped: %s", text);
  }
}

char *
hark_overlay_address_text(GSocketAddress *address)
{
  if (!G_IS_INET_SOCKET_ADDRESS(address))
    return g_strdup("?");
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS(address);
  g_autofree char *host = g_inet_address_to_string(g_inet_socket_address_get_address(inet));
  return g_strdup_printf("%s:%u", host, g_inet_socket_address_get_port(inet));
}

void
hark_overlay_save_cache(HarkOverlay *overlay)
{
  g_autoptr(GError) error = NULL;
  if (!hark_host_cache_save(overlay->cache, overlay->cache_path, &error))
    g_warning("cannot save the host cache: %s", error->message);
}

/* ---- transports ------------------------------------------------------------------- */

GPtrArray *
hark_overlay_transports(HarkOverlay *overlay, guint32 flags)
{
  GPtrArray *all = hark_context_lookup(overlay->ctx, HARK_KIND_TRANSPORT);
  for (guint i = all->len; i-- > 0;) {
    const HarkRegistration *reg = all->pdata[i];
    const HarkTransportInterface *iface = reg->iface;
    if ((iface->flags & flags) == 0)
      g_ptr_array_remove_index(all, i);
  }
  return all;
}

const HarkRegistration *
hark_overlay_transport(HarkOverlay *overlay, const char *name)
{
  g_autoptr(GPtrArray) all = hark_context_lookup(overlay->ctx, HARK_KIND_TRANSPORT);
  for (guint i = 0; i < all->len; i++) {
    const HarkRegistration *reg = all->pdata[i];
    if (g_strcmp0(reg->name, name) == 0)
      return reg;
  }
  return NULL;
}

/* ---- peers ------------------------------------------------------------------------ */

static void
tunnel_table_free(gpointer data)
{
  g_hash_table_unref(data);
}

Peer *
hark_overlay_add_peer(HarkOverlay *overlay, HarkLink *link, PeerKind kind)
{
  Peer *peer = g_new0(Peer, 1);
  peer->overlay = overlay;
  peer->link = link;
  peer->kind = kind;
  peer->since = g_get_monotonic_time();
  g_hash_table_insert(overlay->peers, link, peer);
  hark_link_set_handler(link, &peer_handler, overlay);
  return peer;
}

Peer *
hark_overlay_peer_of(HarkOverlay *overlay, HarkLink *link)
{
  return g_hash_table_lookup(overlay->peers, link);
}

guint
hark_overlay_add_timer(HarkOverlay *overlay, guint ms, GSourceFunc func, gpointer data)
{
  GSource *source = g_timeout_source_new(ms);
  g_source_set_callback(source, func, data, NULL);
  guint id = g_source_attach(source, overlay->node->main_context);
  g_source_unref(source);
  return id;
}

void
hark_overlay_clear_source(HarkOverlay *overlay, guint *source)
{
  if (*source == 0)
    return;
  GSource *found = g_main_context_find_source_by_id(overlay->node->main_context, *source);
  if (found != NULL)
    g_source_destroy(found);
  *source = 0;
}

/* A joined client leaves, whatever the reason (closed, silent, refused, no longer an
 * SN): whoever keeps track of where devices are (a directory, a frontend) hears it. */
static void
client_left(HarkOverlay *overlay, Peer *peer, const char *reason)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "name", peer->name);
  json_object_set_string_member(data, "user", cert != NULL ? cert->user : NULL);
  json_object_set_string_member(data, "device", cert != NULL ? cert->device_id : NULL);
  json_object_set_string_member(data, "host", hark_link_get_peer_host(peer->link));
  json_object_set_int_member(data, "port", hark_link_get_peer_port(peer->link));
  json_object_set_string_member(data, "reason", reason);
  hark_overlay_emit(overlay, "overlay-client-left", data);
}

/* why: logged when not NULL; reason: what an "overlay-client-left" event says. */
static void
drop_peer_for(HarkOverlay *overlay, Peer *peer, const char *why, const char *reason)
{
  if (why != NULL) {
    g_autofree char *who = hark_overlay_peer_describe(peer);
    g_message("closing the link with %s: %s", who, why);
  }
  if (peer->kind == PEER_CLIENT && !overlay->stopping)
    client_left(overlay, peer, reason != NULL ? reason : "closed");
  /* Dropped (silent, refused) rather than closed by the other end: the layers above
   * forget the link all the same (a directory its records and watches). */
  hark_overlay_listeners_link_closed(overlay, peer);
  hark_overlay_turn_stream_end(peer);
  hark_overlay_turn_peer_gone(overlay, peer);
  g_hash_table_steal(overlay->peers, peer->link);
  hark_overlay_clear_source(overlay, &peer->timer);
  hark_overlay_tunnel_serve_close_all(peer);
  g_clear_pointer(&peer->tunnels, tunnel_table_free);
  const HarkLinkStats *stats = hark_link_get_stats(peer->link);
  overlay->counters.bad_messages += stats->dropped;
  hark_overlay_release_admission(overlay, peer);
  hark_link_free(peer->link);
  g_free(peer->name);
  g_free(peer->host);
  g_strfreev(peer->transports);
  g_free(peer);
}

void
hark_overlay_drop_peer(HarkOverlay *overlay, Peer *peer, const char *why)
{
  drop_peer_for(overlay, peer, why, why);
}

char *
hark_overlay_peer_text(const char *text)
{
  return hark_text_escape(text, -1, OVERLAY_LOG_TEXT_MAX);
}

char *
hark_overlay_peer_describe(Peer *peer)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  g_autofree char *user = cert != NULL ? hark_overlay_peer_text(cert->user) : NULL;
  /* peer->name was escaped when it was stored. */
  return g_strdup_printf("%s%s%s (%s:%u over %s)", peer->name != NULL ? peer->name : "?",
                         cert != NULL ? " user " : "", cert != NULL ? user : "",
                         hark_link_get_peer_host(peer->link), hark_link_get_peer_port(peer->link),
                         hark_link_get_transport(peer->link));
}

gboolean
hark_overlay_send_error(Peer *peer, guint64 id, guint code, const char *text)
{
  return hark_link_send(peer->link, HARK_MSG_ERROR, id, g_variant_new("(us)", code, text), NULL);
}

/* The slot belongs to the peer, not to its link's state: a link is already closed when
 * its closed handler runs, and a peer may go from anywhere, so the slot is given back
 * exactly once, wherever the peer goes. */
gboolean
hark_overlay_admit(HarkOverlay *overlay, Peer *peer)
{
  const char *host = hark_link_get_peer_host(peer->link);
  g_autofree char *source = hark_address_source_key(host);
  guint from = GPOINTER_TO_UINT(g_hash_table_lookup(overlay->unjoined_by_source, source));
  if (overlay->unjoined >= OVERLAY_MAX_UNJOINED) {
    hark_overlay_note_drop(overlay, &overlay->counters.too_many_handshakes,
                           "a link from %s: %u links have not joined yet", host, overlay->unjoined);
    return FALSE;
  }
  if (from >= OVERLAY_MAX_UNJOINED_PER_SOURCE) {
    hark_overlay_note_drop(overlay, &overlay->counters.too_many_from_source,
                           "a link from %s: %u links from there have not joined yet", host, from);
    return FALSE;
  }
  g_hash_table_insert(overlay->unjoined_by_source, g_strdup(source), GUINT_TO_POINTER(from + 1));
  peer->admitted_from = g_steal_pointer(&source);
  overlay->unjoined++;
  return TRUE;
}

void
hark_overlay_release_admission(HarkOverlay *overlay, Peer *peer)
{
  g_autofree char *source = g_steal_pointer(&peer->admitted_from);
  if (source == NULL)
    return;
  guint from = GPOINTER_TO_UINT(g_hash_table_lookup(overlay->unjoined_by_source, source));
  g_assert(from > 0 && overlay->unjoined > 0);
  if (from == 1)
    g_hash_table_remove(overlay->unjoined_by_source, source);
  else
    g_hash_table_insert(overlay->unjoined_by_source, g_strdup(source), GUINT_TO_POINTER(from - 1));
  overlay->unjoined--;
}

static void
on_link_up(HarkLink *link, gpointer data)
{
  HarkOverlay *overlay = data;
  Peer *peer = hark_overlay_peer_of(overlay, link);
  if (peer == NULL)
    return;
  if (peer->kind == PEER_PROBE)
    hark_overlay_verify_probe_up(overlay, peer);
  else if (peer->kind == PEER_OPENED && peer->join != NULL)
    hark_overlay_join_link_up(peer->join, peer);
  else if (peer->kind == PEER_OPENED)
    hark_overlay_sn_link_up(overlay, peer);
}

gboolean
hark_overlay_handle_keepalive(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  if (message->type == HARK_MSG_PING) {
    hark_link_send(peer->link, HARK_MSG_PONG, message->id, message->body, NULL);
    return TRUE;
  }
  if (message->type != HARK_MSG_PONG)
    return FALSE;
  guint64 sent = 0;
  g_variant_get(message->body, "(t)", &sent);
  gint64 now = g_get_monotonic_time();
  if (sent > 0 && (gint64)sent <= now)
    hark_link_set_rtt(peer->link, now - (gint64)sent);
  return TRUE;
}

static void
on_link_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  HarkOverlay *overlay = data;
  Peer *peer = hark_overlay_peer_of(overlay, link);
  if (peer == NULL)
    return;
  if (hark_overlay_listeners_message(overlay, peer, message))
    return;
  switch (peer->kind) {
  case PEER_OPENED:
    if (peer->join != NULL)
      hark_overlay_join_message(peer->join, peer, message);
    else
      hark_overlay_serve_message(overlay, peer, message);
    return;
  case PEER_MY_SN:
    hark_overlay_client_message(overlay, peer, message);
    return;
  case PEER_PENDING:
  case PEER_CLIENT:
  case PEER_SN:
    hark_overlay_serve_message(overlay, peer, message);
    return;
  case PEER_PROBE:
    return; /* closed as soon as it is up: nothing is expected on it */
  }
}

static void
count_close(HarkOverlay *overlay, const GError *error)
{
  if (error == NULL || error->domain != HARK_LINK_ERROR)
    return;
  if (error->code == HARK_LINK_ERROR_PROTOCOL)
    overlay->counters.bad_frames++;
  else if (error->code == HARK_LINK_ERROR_HANDSHAKE || error->code == HARK_LINK_ERROR_UNTRUSTED)
    overlay->counters.handshake_failures++;
  else if (error->code == HARK_LINK_ERROR_EXPIRED)
    overlay->counters.certificates_expired++;
}

static void
on_link_closed(HarkLink *link, const GError *error, gpointer data)
{
  HarkOverlay *overlay = data;
  Peer *peer = hark_overlay_peer_of(overlay, link);
  if (peer == NULL)
    return;
  const char *why = error != NULL ? error->message : "closed";
  if (peer->kind == PEER_PROBE) {
    /* Our check of a claimed SN failed: that is the claim's fault, not bad input here. */
    hark_overlay_verify_probe_closed(overlay, peer, why);
    hark_overlay_drop_peer(overlay, peer, NULL);
    return;
  }
  count_close(overlay, error);
  hark_overlay_listeners_link_closed(overlay, peer);
  switch (peer->kind) {
  case PEER_OPENED:
    if (peer->join != NULL) {
      hark_overlay_join_link_closed(peer->join, peer, error);
      return;
    }
    hark_overlay_sn_link_failed(overlay, peer->host, peer->port, why);
    break;
  case PEER_MY_SN: {
    g_autofree char *reason = g_strdup(why);
    hark_overlay_drop_peer(overlay, peer, NULL);
    overlay->sn = NULL;
    hark_overlay_sn_lost(overlay, reason);
    return;
  }
  case PEER_SN:
    hark_overlay_sn_peer_closed(overlay, peer);
    break;
  case PEER_PENDING:
  case PEER_CLIENT:
  case PEER_PROBE:
    break;
  }
  g_autofree char *who = hark_overlay_peer_describe(peer);
  if (peer->kind == PEER_PENDING)
    g_debug("link from %s closed: %s", who, why);
  else
    g_message("link with %s closed: %s", who, why);
  drop_peer_for(overlay, peer, NULL, why);
}

/* ---- SN lists --------------------------------------------------------------------- */

GVariant *
hark_overlay_sn_list(HarkOverlay *overlay, const char *except_host, guint16 except_port)
{
  GVariantBuilder builder;
  g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sqas)"));
  guint n = 0;
  /* An SN names itself first: that is how others learn it exists. */
  if (overlay->is_sn && overlay->public_host != NULL) {
    g_auto(GStrv) own = hark_overlay_own_transports(overlay);
    g_variant_builder_add(&builder, "(sq^as)", overlay->public_host, overlay->node->config->port,
                          own);
    n++;
  }
  g_autoptr(GPtrArray) best = hark_host_cache_best(overlay->cache, OVERLAY_SN_LIST_MAX + 1);
  for (guint i = 0; i < best->len && n < OVERLAY_SN_LIST_MAX; i++) {
    const HarkHostCacheEntry *entry = best->pdata[i];
    /* Only SNs that answered us are passed on: a name heard from one peer is not
     * handed to others before it proved it exists. */
    if (entry->failures > 0 || entry->learnt_from != NULL ||
        (except_host != NULL && g_strcmp0(entry->host, except_host) == 0 &&
         entry->port == except_port))
      continue;
    const char *const none[] = { NULL };
    g_variant_builder_add(&builder, "(sq^as)", entry->host, entry->port,
                          entry->transports != NULL ? (const char *const *)entry->transports
                                                    : none);
    n++;
  }
  return g_variant_builder_end(&builder);
}

/* One entry of a peer's list, checked: a routable IP literal (hark/address.h), a port,
 * known transports. NULL when it is not one, with why. */
static HarkHostCacheEntry *
sn_list_entry(HarkOverlay *overlay, GVariant *item, const char **why)
{
  const char *host;
  guint16 port;
  g_autofree const char **names = NULL;
  g_variant_get(item, "(&sq^a&s)", &host, &port, &names);
  *why = hark_address_refusal(host, overlay->node->config->allow_loopback);
  if (*why == NULL && port == 0)
    *why = "port 0";
  if (*why == NULL && names[0] == NULL)
    *why = "no transports";
  for (guint i = 0; *why == NULL && names[i] != NULL; i++)
    if (!hark_config_is_transport(names[i]))
      *why = "an unknown transport";
  if (*why != NULL)
    return NULL;
  HarkHostCacheEntry *entry = g_new0(HarkHostCacheEntry, 1);
  entry->host = g_strdup(host);
  entry->port = port;
  entry->transports = g_strdupv((char **)names);
  entry->rtt_us = -1;
  return entry;
}

GPtrArray *
hark_overlay_learn_sn_list(HarkOverlay *overlay, GVariant *list, const char *from)
{
  GPtrArray *taken = g_ptr_array_new_with_free_func((GDestroyNotify)hark_host_cache_entry_free);
  gsize n = g_variant_n_children(list);
  g_autofree char *source = hark_address_source_key(from);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  guint refused = 0, not_kept = 0;
  const char *last_why = NULL;
  for (gsize i = 0; i < MIN(n, (gsize)HARK_ADDRESS_LIST_MAX); i++) {
    g_autoptr(GVariant) item = g_variant_get_child_value(list, i);
    const char *why = NULL;
    g_autoptr(HarkHostCacheEntry) entry = sn_list_entry(overlay, item, &why);
    if (entry == NULL) {
      refused++;
      last_why = why;
      continue;
    }
    if (overlay->is_sn && entry->port == overlay->node->config->port &&
        g_strcmp0(entry->host, overlay->public_host) == 0)
      continue; /* ourselves */
    /* Heard of, not heard from: unverified until it answers, bounded per source. */
    if (!hark_host_cache_learn(overlay->cache, entry->host, entry->port,
                               (const char *const *)entry->transports, source, now))
      not_kept++;
    g_ptr_array_add(taken, g_steal_pointer(&entry));
  }
  if (n > HARK_ADDRESS_LIST_MAX || refused > 0)
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected,
                           "an SN list from %s: %zu entries, %zu over the %d looked at, %u "
                           "refused (last: %s)",
                           source, n, n > HARK_ADDRESS_LIST_MAX ? n - HARK_ADDRESS_LIST_MAX : 0,
                           HARK_ADDRESS_LIST_MAX, refused, last_why != NULL ? last_why : "-");
  if (not_kept > 0)
    g_debug("an SN list from %s: %u entries not kept (that source's share of the host cache "
            "is used up)",
            source, not_kept);
  if (taken->len > 0)
    hark_overlay_save_cache(overlay);
  return taken;
}

/* ---- lifecycle -------------------------------------------------------------------- */

/* Not at start: the first HTTPS request of a process makes GnuTLS read the system's
 * CA bundle (about 50 ms of this loop), which would delay the join race. */
#define SYNC_FALLBACK_S 5

void
hark_overlay_sync_login(HarkOverlay *overlay)
{
  if (overlay->synced)
    return;
  overlay->synced = TRUE;
  hark_overlay_clear_source(overlay, &overlay->sync_source);
  if (overlay->login != NULL)
    hark_login_client_sync(overlay->login);
}

static gboolean
on_sync_fallback(gpointer data)
{
  HarkOverlay *overlay = data;
  overlay->sync_source = 0;
  hark_overlay_sync_login(overlay);
  return G_SOURCE_REMOVE;
}

static void
login_changed(gpointer data)
{
  HarkOverlay *overlay = data;
  if (overlay->sn != NULL)
    hark_overlay_send_auth(overlay, overlay->sn);
  /* A renewed certificate goes to every SN this SN linked to as well: the other end drops
   * the link when the certificate it holds expires. */
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (peer->kind == PEER_SN && hark_link_is_opener(peer->link))
      hark_overlay_send_auth(overlay, peer);
  }
  hark_overlay_check_eligibility(overlay);
  /* After the AUTH above, so that what a listener sends next is under the new one. */
  hark_overlay_listeners_event(overlay, "certificate-changed", NULL);
}

static gboolean
not_routable(const char *host, gpointer data)
{
  const HarkConfig *config = data;
  return !hark_address_is_routable(host, config->allow_loopback);
}

HarkOverlay *
hark_overlay_new(HarkNode *node, HarkLoginClient *login, GError **error)
{
  if (!hark_link_has_credentials(node))
    return NULL;
  HarkConfig *config = node->config;
  OverlayTurn *turn = hark_overlay_turn_new(config, error);
  if (turn == NULL)
    return NULL;
  HarkOverlay *overlay = g_new0(HarkOverlay, 1);
  overlay->turn = turn;
  overlay->node = node;
  overlay->login = login;
  overlay->ctx = node->core_ctx;
  overlay->peers = g_hash_table_new(NULL, NULL);
  overlay->unjoined_by_source = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  overlay->started_at = g_get_monotonic_time();
  overlay->retry_ms = OVERLAY_RETRY_FIRST_MS;
  overlay->keepalive_s = (guint)config->keepalive;
  overlay->cache_path = g_build_filename(config->state_dir, HOST_CACHE_FILE, NULL);
  overlay->way_path = g_build_filename(config->state_dir, WAY_FILE, NULL);
  overlay->public_host = g_strdup(config->public_address);
  g_autoptr(GError) warning = NULL;
  overlay->cache = hark_host_cache_open(overlay->cache_path, HARK_HOST_CACHE_DEFAULT_CAPACITY,
                                        config->bootstrap, &warning);
  if (warning != NULL)
    g_warning("%s", warning->message);
  guint expired = hark_host_cache_expire(overlay->cache, g_get_real_time() / G_USEC_PER_SEC,
                                         config->host_cache_max_age);
  /* Configured SNs may be host names; what came from the network must be routable. */
  expired += hark_host_cache_forget_where(overlay->cache, not_routable, config);
  g_message("host cache: %u super nodes (%u bootstrap configured, %u aged out), %s",
            hark_host_cache_size(overlay->cache), config->bootstrap->len, expired,
            overlay->cache_path);
  hark_overlay_save_cache(overlay);
  return overlay;
}

void
hark_overlay_start(HarkOverlay *overlay)
{
  hark_link_set_network_handlers(overlay->node, hark_overlay_link_accepted,
                                 hark_overlay_datagram_received, overlay);
  /* Without a login client (a unit test's overlay) there is no sync, no changed
   * certificate to announce and nobody to tunnel for. */
  if (overlay->login != NULL) {
    hark_login_client_set_changed_handler(overlay->login, login_changed, overlay);
    hark_overlay_tunnel_client_start(overlay);
  }
  hark_overlay_nat_start(overlay);
  overlay->sync_source =
    hark_overlay_add_timer(overlay, SYNC_FALLBACK_S * 1000, on_sync_fallback, overlay);
  hark_overlay_check_eligibility(overlay);
  if (!overlay->is_sn)
    hark_overlay_join_start(overlay);
}

void
hark_overlay_free(HarkOverlay *overlay)
{
  if (overlay == NULL)
    return;
  overlay->stopping = TRUE;
  if (overlay->login != NULL)
    hark_login_client_set_changed_handler(overlay->login, NULL, NULL);
  hark_link_set_network_handlers(overlay->node, NULL, NULL, NULL);
  g_clear_pointer(&overlay->join, hark_overlay_join_free);
  hark_overlay_tunnel_client_free(overlay);
  hark_overlay_turn_free(overlay);
  hark_overlay_nat_free(overlay);
  hark_overlay_stop_serving(overlay, NULL);
  hark_overlay_clear_source(overlay, &overlay->retry_source);
  hark_overlay_keepalive_stop(overlay);
  hark_overlay_clear_source(overlay, &overlay->eligibility_source);
  hark_overlay_clear_source(overlay, &overlay->sn_links_source);
  hark_overlay_clear_source(overlay, &overlay->sync_source);
  GList *peers = g_hash_table_get_values(overlay->peers);
  for (GList *l = peers; l != NULL; l = l->next)
    hark_overlay_drop_peer(overlay, l->data, NULL);
  g_list_free(peers);
  overlay->sn = NULL;
  hark_overlay_save_cache(overlay);
  hark_host_cache_free(overlay->cache);
  g_hash_table_unref(overlay->peers);
  g_hash_table_unref(overlay->unjoined_by_source);
  g_free(overlay->cache_path);
  g_free(overlay->way_path);
  g_free(overlay->last_error);
  g_free(overlay->sn_refusal);
  g_free(overlay->public_host);
  g_clear_pointer(&overlay->relay_buckets, g_hash_table_unref);
  hark_overlay_listeners_free(overlay);
  g_free(overlay);
}

/* ---- snapshot --------------------------------------------------------------------- */

static JsonObject *
describe_link(Peer *peer)
{
  JsonObject *object = json_object_new();
  const HarkLinkStats *stats = hark_link_get_stats(peer->link);
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  gint64 now = g_get_monotonic_time();
  json_object_set_string_member(object, "name", peer->name);
  json_object_set_string_member(object, "user", cert != NULL ? cert->user : NULL);
  json_object_set_string_member(object, "host", hark_link_get_peer_host(peer->link));
  json_object_set_int_member(object, "port",
                             peer->port != 0 ? peer->port : hark_link_get_peer_port(peer->link));
  json_object_set_string_member(object, "transport", hark_link_get_transport(peer->link));
  if (stats->rtt_us >= 0)
    json_object_set_int_member(object, "rtt_us", stats->rtt_us);
  else
    json_object_set_null_member(object, "rtt_us");
  json_object_set_int_member(object, "seconds", (now - peer->since) / G_USEC_PER_SEC);
  json_object_set_int_member(object, "bytes_in", stats->bytes_in);
  json_object_set_int_member(object, "bytes_out", stats->bytes_out);
  /* How long nothing has arrived on it: what the keep-alives watch. */
  gint64 heard = MAX(stats->last_in_at, stats->up_at);
  json_object_set_int_member(object, "silent_ms", heard > 0 ? (now - heard) / 1000 : 0);
  return object;
}

/* The SN link also says how its liveness is watched (overlay-keepalive.c). */
static JsonObject *
describe_my_sn(HarkOverlay *overlay)
{
  JsonObject *object = describe_link(overlay->sn);
  json_object_set_int_member(object, "keepalive_s", overlay->keepalive_s);
  json_object_set_int_member(object, "keepalive_timeout_s",
                             overlay->node->config->keepalive_timeout);
  json_object_set_int_member(object, "pings_sent", (gint64)overlay->pings_sent);
  const HarkLinkStats *stats = hark_link_get_stats(overlay->sn->link);
  json_object_set_boolean_member(object, "awaiting_answer",
                                 overlay->probe_at != 0 && stats->last_in_at < overlay->probe_at);
  return object;
}

/* An SN link also says who opened it and whether the peer is a verified SN. */
static JsonObject *
describe_sn_link(Peer *peer)
{
  JsonObject *object = describe_link(peer);
  json_object_set_boolean_member(object, "outgoing", hark_link_is_opener(peer->link));
  json_object_set_boolean_member(object, "verified", peer->trust == SN_VERIFIED);
  return object;
}

static JsonObject *
describe_counters(HarkOverlay *overlay)
{
  const OverlayCounters *c = &overlay->counters;
  guint64 undecodable = c->bad_messages;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    undecodable += hark_link_get_stats(((Peer *)value)->link)->dropped;
  JsonObject *object = json_object_new();
  json_object_set_int_member(object, "unauthenticated", c->unauthenticated);
  json_object_set_int_member(object, "unexpected", c->unexpected);
  json_object_set_int_member(object, "undecodable", undecodable);
  json_object_set_int_member(object, "bad_frames", c->bad_frames);
  json_object_set_int_member(object, "handshake_failures", c->handshake_failures);
  json_object_set_int_member(object, "too_many_handshakes", c->too_many_handshakes);
  json_object_set_int_member(object, "too_many_from_source", c->too_many_from_source);
  json_object_set_int_member(object, "bad_datagrams", c->bad_datagrams);
  json_object_set_int_member(object, "stun_answered", c->stun_answered);
  json_object_set_int_member(object, "stun_refused", c->stun_refused);
  json_object_set_int_member(object, "probes_answered", c->probes_answered);
  json_object_set_int_member(object, "probes_too_small", c->probes_too_small);
  json_object_set_int_member(object, "stun_flood", c->stun_flood);
  json_object_set_int_member(object, "stun_relayed", c->stun_relayed);
  json_object_set_int_member(object, "certificates_expired", c->certificates_expired);
  json_object_set_int_member(object, "stun_relay_served", c->stun_relay_served);
  json_object_set_int_member(object, "stun_relay_refused", c->stun_relay_refused);
  json_object_set_int_member(object, "redirected", c->redirected);
  json_object_set_int_member(object, "sn_claims_refused", c->sn_claims_refused);
  json_object_set_int_member(object, "too_many_logging_in", c->too_many_logging_in);
  json_object_set_int_member(object, "sn_keepalive_raised", c->sn_keepalive_raised);
  json_object_set_int_member(object, "turn_answered", c->turn_answered);
  json_object_set_int_member(object, "turn_refused", c->turn_refused);
  json_object_set_int_member(object, "turn_forwarded", c->turn_forwarded);
  json_object_set_int_member(object, "turn_forward_served", c->turn_forward_served);
  json_object_set_int_member(object, "turn_forward_refused", c->turn_forward_refused);
  json_object_set_int_member(object, "turn_forward_bad", c->turn_forward_bad);
  return object;
}

static JsonObject *
describe_transports(HarkOverlay *overlay)
{
  JsonObject *object = json_object_new();
  g_autoptr(GPtrArray) all = hark_context_lookup(overlay->ctx, HARK_KIND_TRANSPORT);
  for (guint i = 0; i < all->len; i++) {
    const HarkRegistration *reg = all->pdata[i];
    const HarkTransportInterface *iface = reg->iface;
    JsonObject *stats = iface->stats != NULL ? iface->stats(reg->instance) : json_object_new();
    json_object_set_object_member(object, reg->name, stats);
  }
  return object;
}

static const char *
state_name(HarkOverlay *overlay)
{
  if (overlay->is_sn)
    return "serving";
  if (overlay->sn != NULL)
    return "attached";
  if (overlay->join != NULL)
    return "joining";
  return "waiting";
}

JsonObject *
hark_overlay_snapshot(HarkOverlay *overlay, guint max_clients)
{
  JsonObject *object = json_object_new();
  json_object_set_string_member(object, "role", overlay->is_sn ? "super" : "ordinary");
  json_object_set_string_member(object, "state", state_name(overlay));
  if (overlay->sn != NULL)
    json_object_set_object_member(object, "sn", describe_my_sn(overlay));
  else
    json_object_set_null_member(object, "sn");
  if (overlay->join != NULL)
    json_object_set_array_member(object, "trying", hark_overlay_join_describe(overlay->join));
  json_object_set_string_member(object, "last_error", overlay->last_error);
  json_object_set_int_member(object, "host_cache", hark_host_cache_size(overlay->cache));
  json_object_set_string_member(object, "supernode_refusal",
                                overlay->is_sn ? NULL : overlay->sn_refusal);
  JsonArray *clients = json_array_new();
  JsonArray *sns = json_array_new();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  guint client_count = 0;
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (peer->kind == PEER_CLIENT && client_count++ < max_clients)
      json_array_add_object_element(clients, describe_link(peer));
    else if (peer->kind == PEER_SN)
      json_array_add_object_element(sns, describe_sn_link(peer));
  }
  /* The list is capped: an SN with thousands of clients would answer megabytes. */
  json_object_set_int_member(object, "client_count", client_count);
  /* Accepted links that have not joined yet (each holds an admission slot). */
  json_object_set_int_member(object, "unjoined", overlay->unjoined);
  json_object_set_array_member(object, "clients", clients);
  json_object_set_array_member(object, "sn_links", sns);
  json_object_set_object_member(object, "dropped", describe_counters(overlay));
  json_object_set_object_member(object, "turn", hark_overlay_turn_describe(overlay));
  json_object_set_object_member(object, "transports", describe_transports(overlay));
  if (overlay->is_sn)
    json_object_set_object_member(object, "stun", hark_overlay_stun_describe(overlay));
  return object;
}
