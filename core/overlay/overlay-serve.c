/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-serve.c: a super node. When it may serve (node.supernode, logged in, a public
 * address, uptime, load and bandwidth within the `supernode` settings) it listens on
 * every transport, takes ordinary nodes up to supernode.max_clients (the rest are
 * redirected to SNs it knows), links to supernode.links other SNs, tells everyone about
 * the SNs it knows, and answers UDP probes and STUN binding requests.
 *
 * Everything here reads input from strangers: a link must JOIN first, a client must
 * prove its certificate before anything but the login tunnel and keep-alives, and every
 * refusal is counted and logged at a rate-limited level. */
#include "overlay-private.h"

#include "link-private.h"

#include "hark/address.h"
#include "hark/stun.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define ELIGIBILITY_INTERVAL_S 10
#define SN_LINKS_INTERVAL_S 30
#define ANNOUNCE_EVERY_ROUNDS 2 /* SN_LIST to clients and peers every 60 s */

/* ---- who may serve ---------------------------------------------------------------- */

/* A global unicast IPv4 address of this host, or NULL: the public address of a node
 * that has no nat-probe plugin to say whether it is reachable from outside. */
static char *
find_global_address(void)
{
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) != 0)
    return NULL;
  char *found = NULL;
  for (struct ifaddrs *ifa = list; ifa != NULL && found == NULL; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET)
      continue;
    g_autoptr(GSocketAddress) address =
      g_socket_address_new_from_native(ifa->ifa_addr, sizeof(struct sockaddr_in));
    GInetAddress *inet = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(address));
    const guint8 *b = g_inet_address_to_bytes(inet);
    gboolean private = b[0] == 10 || b[0] == 127 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
                       (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254) ||
                       (b[0] == 100 && (b[1] & 0xc0) == 64) || b[0] == 0 || b[0] >= 224;
    if (!private)
      found = g_inet_address_to_string(inet);
  }
  freeifaddrs(list);
  return found;
}

/* Without a configured address: with a nat-probe plugin the probe must have found no NAT
 * (its mapped address is then the public one); without one, a global address of an
 * interface. Sets overlay->public_host, or says why not. */
static gboolean
public_address(HarkOverlay *overlay, char **why)
{
  g_autoptr(GPtrArray) probes = hark_context_lookup(overlay->ctx, HARK_KIND_NAT_PROBE);
  if (probes->len == 0) {
    if (overlay->public_host == NULL)
      overlay->public_host = find_global_address();
    if (overlay->public_host == NULL)
      *why = g_strdup("no public address (set network.public_address, or load a nat probe)");
    return overlay->public_host != NULL;
  }
  g_autoptr(JsonObject) nat = hark_overlay_nat_describe(overlay);
  const char *verdict = json_object_get_string_member_with_default(nat, "verdict", "unknown");
  const char *mapped = json_object_get_string_member_with_default(nat, "mapped", NULL);
  if (g_strcmp0(verdict, "open") != 0 || mapped == NULL || strrchr(mapped, ':') == NULL) {
    *why = g_strdup_printf("the NAT probe says '%s', not 'open' (or set network.public_address)",
                           verdict);
    return FALSE;
  }
  g_free(overlay->public_host);
  overlay->public_host = g_strndup(mapped, (gsize)(strrchr(mapped, ':') - mapped));
  return TRUE;
}

/* Why this node may not serve now, or NULL when it may. */
static char *
refusal(HarkOverlay *overlay)
{
  HarkConfig *config = overlay->node->config;
  if (!config->supernode)
    return g_strdup("node.supernode is false");
  if (hark_link_local_certificate(overlay->node) == NULL)
    return g_strdup("not logged in (an SN proves itself with its device certificate)");
  g_autofree char *why_not_public = NULL;
  if (config->public_address == NULL && !public_address(overlay, &why_not_public))
    return g_steal_pointer(&why_not_public);
  gint64 uptime = (g_get_monotonic_time() - overlay->started_at) / G_USEC_PER_SEC;
  if (uptime < config->sn_min_uptime)
    return g_strdup_printf("up %" G_GINT64_FORMAT " s of the %d s required (supernode.min_uptime)",
                           uptime, config->sn_min_uptime);
  double load[1];
  if (getloadavg(load, 1) == 1) {
    int percent = (int)(load[0] * 100 / g_get_num_processors());
    if (percent > config->sn_max_load)
      return g_strdup_printf("load %d%% of the cores, above supernode.max_load %d%%", percent,
                             config->sn_max_load);
  }
  if (config->sn_upload_kbps > 0 && config->sn_upload_kbps < config->sn_min_upload_kbps)
    return g_strdup_printf("upload %d kbps, below supernode.min_upload_kbps %d",
                           config->sn_upload_kbps, config->sn_min_upload_kbps);
  return NULL;
}

static void drop_peers_of_kind(HarkOverlay *overlay, PeerKind kind, const char *why);
static void maintain_sn_links(HarkOverlay *overlay);

static gboolean
listen_all(HarkOverlay *overlay, GError **error)
{
  HarkConfig *config = overlay->node->config;
  g_autoptr(GPtrArray) all = hark_context_lookup(overlay->ctx, HARK_KIND_TRANSPORT);
  if (all->len == 0) {
    g_set_error_literal(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                        "no transport plugin is loaded");
    return FALSE;
  }
  for (guint i = 0; i < all->len; i++) {
    const HarkRegistration *reg = all->pdata[i];
    const HarkTransportInterface *iface = reg->iface;
    if (iface->local_port(reg->instance) != 0 && (iface->flags & HARK_TRANSPORT_STREAM))
      continue;
    g_autoptr(GError) local = NULL;
    const char *address = iface->flags & HARK_TRANSPORT_DATAGRAM
                            ? hark_overlay_stun_udp_address(overlay)
                            : config->listen_address;
    if (!iface->listen(reg->instance, address, config->port, &local) &&
        iface->local_port(reg->instance) == 0) {
      g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN, "%s: %s", reg->name,
                  local->message);
      return FALSE;
    }
  }
  return TRUE;
}

static void
stop_listening(HarkOverlay *overlay)
{
  g_autoptr(GPtrArray) all = hark_context_lookup(overlay->ctx, HARK_KIND_TRANSPORT);
  for (guint i = 0; i < all->len; i++) {
    const HarkRegistration *reg = all->pdata[i];
    const HarkTransportInterface *iface = reg->iface;
    iface->stop_listening(reg->instance);
  }
}

char **
hark_overlay_own_transports(HarkOverlay *overlay)
{
  g_autoptr(GPtrArray) all = hark_context_lookup(overlay->ctx, HARK_KIND_TRANSPORT);
  GPtrArray *names = g_ptr_array_new();
  for (guint i = 0; i < all->len; i++) {
    const HarkRegistration *reg = all->pdata[i];
    const HarkTransportInterface *iface = reg->iface;
    if (iface->local_port(reg->instance) != 0)
      g_ptr_array_add(names, g_strdup(reg->name));
  }
  g_ptr_array_add(names, NULL);
  return (char **)g_ptr_array_free(names, FALSE);
}

static gboolean
on_sn_links(gpointer data)
{
  maintain_sn_links(data);
  return G_SOURCE_CONTINUE;
}

static void
promote(HarkOverlay *overlay)
{
  g_autoptr(GError) error = NULL;
  if (!listen_all(overlay, &error)) {
    g_free(overlay->sn_refusal);
    overlay->sn_refusal = g_strdup_printf("cannot listen: %s", error->message);
    g_warning("cannot become a super node: %s", error->message);
    stop_listening(overlay);
    return;
  }
  overlay->is_sn = TRUE;
  hark_overlay_stun_start(overlay);
  hark_overlay_turn_relay_start(overlay);
  g_clear_pointer(&overlay->join, hark_overlay_join_free);
  hark_overlay_clear_source(overlay, &overlay->retry_source);
  if (overlay->sn != NULL) {
    Peer *old = overlay->sn;
    overlay->sn = NULL;
    hark_overlay_drop_peer(overlay, old, "this node serves as a super node now");
    hark_overlay_tunnel_client_link_lost(overlay);
  }
  g_auto(GStrv) transports = hark_overlay_own_transports(overlay);
  g_autofree char *list = g_strjoinv(", ", transports);
  g_message("serving as a super node at %s:%u (%s), up to %d clients, %d SN links",
            overlay->public_host, overlay->node->config->port, list,
            overlay->node->config->sn_max_clients, overlay->node->config->sn_links);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "role", "super");
  json_object_set_string_member(data, "host", overlay->public_host);
  json_object_set_int_member(data, "port", overlay->node->config->port);
  hark_overlay_emit(overlay, "overlay-role", data);
  hark_overlay_keepalive_serve_start(overlay);
  overlay->sn_links_source =
    hark_overlay_add_timer(overlay, SN_LINKS_INTERVAL_S * 1000, on_sn_links, overlay);
  maintain_sn_links(overlay);
}

void
hark_overlay_stop_serving(HarkOverlay *overlay, const char *why)
{
  if (!overlay->is_sn)
    return;
  overlay->is_sn = FALSE;
  hark_overlay_stun_stop(overlay);
  hark_overlay_turn_relay_stop(overlay);
  stop_listening(overlay);
  hark_overlay_clear_source(overlay, &overlay->sn_links_source);
  hark_overlay_keepalive_serve_stop(overlay);
  drop_peers_of_kind(overlay, PEER_CLIENT, why);
  drop_peers_of_kind(overlay, PEER_PENDING, why);
  drop_peers_of_kind(overlay, PEER_SN, why);
  if (why == NULL)
    return;
  g_message("no longer a super node: %s", why);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "role", "ordinary");
  json_object_set_string_member(data, "reason", why);
  hark_overlay_emit(overlay, "overlay-role", data);
  hark_overlay_join_start(overlay);
}

static gboolean
on_eligibility(gpointer data)
{
  hark_overlay_check_eligibility(data);
  return G_SOURCE_CONTINUE;
}

void
hark_overlay_check_eligibility(HarkOverlay *overlay)
{
  if (overlay->eligibility_source == 0) {
    overlay->eligibility_source =
      hark_overlay_add_timer(overlay, ELIGIBILITY_INTERVAL_S * 1000, on_eligibility, overlay);
  }
  g_autofree char *why = refusal(overlay);
  if (why == NULL && !overlay->is_sn) {
    g_clear_pointer(&overlay->sn_refusal, g_free);
    promote(overlay);
  } else if (why != NULL) {
    if (g_strcmp0(why, overlay->sn_refusal) != 0)
      g_debug("not a super node: %s", why);
    g_free(overlay->sn_refusal);
    overlay->sn_refusal = g_strdup(why);
    /* Load comes and goes; only the loss of what an SN cannot do without ends it. */
    gboolean behind_nat =
      overlay->node->config->public_address == NULL && g_str_has_prefix(why, "the NAT probe says");
    if (overlay->is_sn && (!overlay->node->config->supernode || behind_nat ||
                           hark_link_local_certificate(overlay->node) == NULL))
      hark_overlay_stop_serving(overlay, why);
  }
}

/* ---- links to other SNs ----------------------------------------------------------- */

/* Peers of a kind; with unproven_only, those that have not shown a certificate. */
static guint
count_peers_where(HarkOverlay *overlay, PeerKind kind, gboolean unproven_only)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (peer->kind == kind &&
        (!unproven_only || hark_link_get_peer_certificate(peer->link) == NULL))
      n++;
  }
  return n;
}

static guint
count_peers(HarkOverlay *overlay, PeerKind kind)
{
  return count_peers_where(overlay, kind, FALSE);
}

/* SN links that count towards supernode.links: verified ones and our own being opened
 * (claimed ones must not keep us from linking to real SNs). */
static guint
count_sn_links(HarkOverlay *overlay)
{
  guint n = count_peers(overlay, PEER_OPENED);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    n += hark_overlay_is_verified_sn(value);
  return n;
}

static gboolean
linked_to(HarkOverlay *overlay, const char *host, guint16 port)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if ((hark_overlay_is_verified_sn(peer) || peer->kind == PEER_OPENED) && peer->port == port &&
        g_strcmp0(peer->host, host) == 0)
      return TRUE;
  }
  return FALSE;
}

typedef struct {
  HarkOverlay *overlay;
  char *host;
  guint16 port;
} SnLinkOpen;

static void
on_sn_link_opened(HarkLink *link, GError *error, gpointer data)
{
  SnLinkOpen *open = data;
  HarkOverlay *overlay = open->overlay;
  guint16 port = open->port;
  g_autofree char *host = open->host;
  g_free(open);
  if (link == NULL) {
    g_debug("SN link failed: %s", error->message);
    hark_overlay_sn_link_failed(overlay, host, port, error->message);
    g_error_free(error);
    return;
  }
  if (!overlay->is_sn) {
    hark_link_free(link);
    return;
  }
  Peer *peer = hark_overlay_add_peer(overlay, link, PEER_OPENED);
  peer->host = g_steal_pointer(&host);
  peer->port = port;
}

static void
open_sn_link(HarkOverlay *overlay, const HarkRegistration *reg, const char *host, guint16 port)
{
  const HarkTransportInterface *iface = reg->iface;
  SnLinkOpen *open = g_new0(SnLinkOpen, 1);
  open->overlay = overlay;
  open->host = g_strdup(host);
  open->port = port;
  g_debug("linking to the SN at %s:%u over %s", host, port, reg->name);
  iface->open(reg->instance, host, port, NULL, on_sn_link_opened, open);
}

/* What the listeners hear about SN links (overlay.h, hark_overlay_open_peer_link). */
static void
tell_sn_link(HarkOverlay *overlay, const char *event, const char *host, guint16 port,
             const char *error)
{
  g_autoptr(JsonObject) details = json_object_new();
  json_object_set_string_member(details, "host", host);
  json_object_set_int_member(details, "port", port);
  if (error != NULL)
    json_object_set_string_member(details, "error", error);
  hark_overlay_listeners_event(overlay, event, details);
}

void
hark_overlay_sn_peer_ready(HarkOverlay *overlay, Peer *peer)
{
  tell_sn_link(overlay, "sn-peer-linked", peer->host, peer->port, NULL);
}

void
hark_overlay_sn_link_failed(HarkOverlay *overlay, const char *host, guint16 port, const char *why)
{
  tell_sn_link(overlay, "sn-peer-link-failed", host, port, why);
}

/* Links opened for hark_overlay_open_peer_link beyond supernode.links, at most. */
#define OPEN_ON_DEMAND_MAX 8

gboolean
hark_overlay_open_peer_link(HarkOverlay *overlay, const char *host, guint16 port, GError **error)
{
  HarkConfig *config = overlay->node->config;
  const char *refused = NULL;
  if (!overlay->is_sn)
    refused = "this node is not serving as a super node";
  else if (port == 0)
    refused = "port 0";
  else if (port == config->port && g_strcmp0(host, overlay->public_host) == 0)
    refused = "that is this node itself";
  else
    refused = hark_address_refusal(host, config->allow_loopback);
  if (refused == NULL && linked_to(overlay, host, port))
    return TRUE;
  g_autoptr(GPtrArray) streams = hark_overlay_transports(overlay, HARK_TRANSPORT_STREAM);
  if (refused == NULL && streams->len == 0)
    refused = "no stream transport";
  if (refused == NULL && count_sn_links(overlay) >= (guint)config->sn_links + OPEN_ON_DEMAND_MAX)
    refused = "too many SN links are open or being opened";
  if (refused != NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "no link to the SN at %s:%u: %s", host, port,
                refused);
    return FALSE;
  }
  open_sn_link(overlay, streams->pdata[0], host, port);
  return TRUE;
}

static void
send_sn_lists(HarkOverlay *overlay)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GVariant) list = g_variant_ref_sink(hark_overlay_sn_list(overlay, NULL, 0));
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (peer->kind == PEER_CLIENT || peer->kind == PEER_SN)
      hark_link_send(peer->link, HARK_MSG_SN_LIST, hark_overlay_next_id(overlay),
                     g_variant_new("(@a(sqas))", list), NULL);
  }
}

static void
maintain_sn_links(HarkOverlay *overlay)
{
  HarkConfig *config = overlay->node->config;
  if (++overlay->sn_rounds % ANNOUNCE_EVERY_ROUNDS == 0)
    send_sn_lists(overlay);
  guint have = count_sn_links(overlay);
  if (have >= (guint)config->sn_links)
    return;
  g_autoptr(GPtrArray) streams = hark_overlay_transports(overlay, HARK_TRANSPORT_STREAM);
  if (streams->len == 0)
    return;
  const HarkRegistration *reg = streams->pdata[0];
  g_autoptr(GPtrArray) best =
    hark_host_cache_best(overlay->cache, HARK_HOST_CACHE_DEFAULT_CAPACITY);
  for (guint i = 0; i < best->len && have < (guint)config->sn_links; i++) {
    const HarkHostCacheEntry *entry = best->pdata[i];
    gboolean self =
      entry->port == config->port && g_strcmp0(entry->host, overlay->public_host) == 0;
    if (self || linked_to(overlay, entry->host, entry->port) ||
        (entry->transports != NULL &&
         !g_strv_contains((const char *const *)entry->transports, reg->name)))
      continue;
    open_sn_link(overlay, reg, entry->host, entry->port);
    have++;
  }
}

void
hark_overlay_sn_link_up(HarkOverlay *overlay, Peer *peer)
{
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name",
                        g_variant_new_string(overlay->node->config->node_name));
  g_variant_builder_add(&dict, "{sv}", "as", g_variant_new_string("peer"));
  g_variant_builder_add(&dict, "{sv}", "host", g_variant_new_string(overlay->public_host));
  g_variant_builder_add(&dict, "{sv}", "port", g_variant_new_uint16(overlay->node->config->port));
  g_variant_builder_add(&dict, "{sv}", "stun_alt_port",
                        g_variant_new_uint16(hark_overlay_stun_alt_port(overlay)));
  g_auto(GStrv) transports = hark_overlay_own_transports(overlay);
  g_variant_builder_add(&dict, "{sv}", "transports",
                        g_variant_new_strv((const char *const *)transports, -1));
  peer->request_id = hark_overlay_next_id(overlay);
  hark_link_send(peer->link, HARK_MSG_JOIN, peer->request_id, g_variant_new("(a{sv})", &dict),
                 NULL);
}

void
hark_overlay_sn_peer_closed(HarkOverlay *overlay, Peer *peer)
{
  (void)overlay;
  g_message("the link to the SN %s closed", peer->name != NULL ? peer->name : "?");
}

static void
drop_peers_of_kind(HarkOverlay *overlay, PeerKind kind, const char *why)
{
  GList *peers = g_hash_table_get_values(overlay->peers);
  for (GList *l = peers; l != NULL; l = l->next) {
    Peer *peer = l->data;
    if (peer->kind == kind ||
        (kind == PEER_SN &&
         ((peer->kind == PEER_OPENED && peer->join == NULL) || peer->kind == PEER_PROBE)))
      hark_overlay_drop_peer(overlay, peer, why);
  }
  g_list_free(peers);
}

/* ---- accepted links --------------------------------------------------------------- */

static gboolean
on_deadline(gpointer data)
{
  Peer *peer = data;
  peer->timer = 0;
  HarkOverlay *overlay = peer->overlay;
  hark_overlay_note_drop(overlay, &overlay->counters.unauthenticated,
                         "a link from %s:%u that did not %s in time",
                         hark_link_get_peer_host(peer->link), hark_link_get_peer_port(peer->link),
                         peer->kind == PEER_PENDING ? "join" : "log in");
  hark_overlay_drop_peer(overlay, peer, NULL);
  return G_SOURCE_REMOVE;
}

static void
set_deadline(Peer *peer, guint ms)
{
  HarkOverlay *overlay = peer->overlay;
  hark_overlay_clear_source(overlay, &peer->timer);
  peer->timer = hark_overlay_add_timer(overlay, ms, on_deadline, peer);
}

static void
clear_deadline(Peer *peer)
{
  hark_overlay_clear_source(peer->overlay, &peer->timer);
}

void
hark_overlay_link_accepted(HarkLink *link, gpointer data)
{
  HarkOverlay *overlay = data;
  if (!overlay->is_sn) {
    hark_link_free(link);
    return;
  }
  HarkConfig *config = overlay->node->config;
  hark_link_set_handshake_timeout(link, config->handshake_timeout_ms);
  Peer *peer = hark_overlay_add_peer(overlay, link, PEER_PENDING);
  if (!hark_overlay_admit(overlay, peer)) {
    hark_overlay_drop_peer(overlay, peer, NULL);
    return;
  }
  set_deadline(peer, config->handshake_timeout_ms + OVERLAY_JOIN_TIMEOUT_MS);
}

static GVariant *
join_ok_body(HarkOverlay *overlay, Peer *peer)
{
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name",
                        g_variant_new_string(overlay->node->config->node_name));
  g_variant_builder_add(&dict, "{sv}", "keepalive",
                        g_variant_new_uint32((guint32)overlay->node->config->keepalive));
  g_autofree char *observed = g_strdup_printf("%s:%u", hark_link_get_peer_host(peer->link),
                                              hark_link_get_peer_port(peer->link));
  g_variant_builder_add(&dict, "{sv}", "observed", g_variant_new_string(observed));
  g_variant_builder_add(&dict, "{sv}", "authenticated",
                        g_variant_new_boolean(hark_link_get_peer_certificate(peer->link) != NULL));
  g_variant_builder_add(
    &dict, "{sv}", "sns",
    hark_overlay_sn_list(overlay, hark_link_get_peer_host(peer->link), peer->port));
  g_variant_builder_add(&dict, "{sv}", "stun_alt_port",
                        g_variant_new_uint16(hark_overlay_stun_alt_port(overlay)));
  guint16 web_port = hark_overlay_turn_web_port(overlay);
  if (web_port != 0)
    g_variant_builder_add(&dict, "{sv}", "turn_web_port", g_variant_new_uint16(web_port));
  return g_variant_new("(a{sv})", &dict);
}

static gboolean
same_device(HarkOverlay *overlay, const HarkDeviceCertificate *cert)
{
  return cert != NULL &&
         g_strcmp0(cert->device_id, hark_identity_get_fingerprint(overlay->node->identity)) == 0;
}

static void
accept_sn_peer(HarkOverlay *overlay, Peer *peer, GVariant *dict, guint64 id)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  const char *host = NULL; /* as it announces itself: links come from any local address */
  guint16 port = 0;
  g_autofree const char **transports = NULL;
  const char *refused = NULL;
  if (cert == NULL)
    refused = "an SN link needs a device certificate";
  else if (same_device(overlay, cert))
    refused = "that is this node itself";
  else if (!g_variant_lookup(dict, "host", "&s", &host) || !hark_config_is_host(host) ||
           !g_variant_lookup(dict, "port", "q", &port) || port == 0 ||
           !g_variant_lookup(dict, "transports", "^a&s", &transports))
    refused = "a peer JOIN needs host, port and transports";
  if (refused != NULL) {
    hark_overlay_send_error(peer, id, 400, refused);
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "SN link from %s:%u: %s",
                           hark_link_get_peer_host(peer->link), hark_link_get_peer_port(peer->link),
                           refused);
    hark_link_close(peer->link);
    return;
  }
  /* One device cannot fill the SN with peer links (each would be checked, and share
   * its STUN_RELAY budget anyway). */
  if ((refused = hark_overlay_verify_device_limit(overlay, cert)) != NULL) {
    hark_overlay_send_error(peer, id, 400, refused);
    hark_overlay_note_drop(overlay, &overlay->counters.sn_claims_refused,
                           "SN link from %s:%u (user %s): %s", hark_link_get_peer_host(peer->link),
                           hark_link_get_peer_port(peer->link), cert->user, refused);
    hark_link_close(peer->link);
    return;
  }
  for (guint i = 0; transports[i] != NULL; i++)
    if (!hark_config_is_transport(transports[i]))
      transports[i] = NULL; /* unknown ones are cut off, not trusted */
  peer->kind = PEER_SN;
  peer->port = port;
  g_variant_lookup(dict, "stun_alt_port", "q", &peer->stun_alt_port);
  peer->transports = g_strdupv((char **)transports);
  peer->request_id = id;
  hark_link_send(peer->link, HARK_MSG_JOIN_OK, id, join_ok_body(overlay, peer), NULL);
  peer->host = g_strdup(host);
  /* An SN by its own word only, until we reached it at that address. */
  hark_overlay_verify_claim(overlay, peer);
}

static void
accept_client(HarkOverlay *overlay, Peer *peer, guint64 id)
{
  HarkConfig *config = overlay->node->config;
  /* A client without a certificate is logging in (through our tunnel, say) and may stay
   * 120 s unproven; strangers must not fill the SN that way. */
  if (hark_link_get_peer_certificate(peer->link) == NULL &&
      count_peers_where(overlay, PEER_CLIENT, TRUE) >= (guint)config->sn_max_logging_in) {
    hark_overlay_note_drop(overlay, &overlay->counters.too_many_logging_in,
                           "a client from %s:%u without a certificate: %d are logging in already",
                           hark_link_get_peer_host(peer->link), hark_link_get_peer_port(peer->link),
                           config->sn_max_logging_in);
    hark_overlay_send_error(peer, id, 503, "too many nodes are logging in here: try another SN");
    hark_link_close(peer->link);
    return;
  }
  if (count_peers(overlay, PEER_CLIENT) >= (guint)config->sn_max_clients) {
    overlay->counters.redirected++;
    g_autoptr(GVariant) list = g_variant_ref_sink(hark_overlay_sn_list(overlay, NULL, 0));
    GVariant *others = list;
    g_autoptr(GVariant) without_self = NULL;
    if (g_variant_n_children(list) > 0 && overlay->public_host != NULL) {
      /* The first entry is this SN; a redirect names the others. */
      GVariantBuilder builder;
      g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sqas)"));
      for (gsize i = 1; i < g_variant_n_children(list); i++) {
        g_autoptr(GVariant) entry = g_variant_get_child_value(list, i);
        g_variant_builder_add_value(&builder, entry);
      }
      without_self = g_variant_ref_sink(g_variant_builder_end(&builder));
      others = without_self;
    }
    g_debug("full (%d clients): redirecting %s", config->sn_max_clients, peer->name);
    hark_link_send(peer->link, HARK_MSG_REDIRECT, id, g_variant_new("(@a(sqas))", others), NULL);
    hark_link_close(peer->link);
    return;
  }
  peer->kind = PEER_CLIENT;
  hark_link_send(peer->link, HARK_MSG_JOIN_OK, id, join_ok_body(overlay, peer), NULL);
  if (hark_link_get_peer_certificate(peer->link) == NULL)
    set_deadline(peer, OVERLAY_AUTH_TIMEOUT_S * 1000);
  g_autofree char *who = hark_overlay_peer_describe(peer);
  g_message("client joined: %s", who);
}

static void
handle_join(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  g_autoptr(GVariant) dict = g_variant_get_child_value(message->body, 0);
  const char *name = NULL;
  const char *as = NULL;
  /* The name goes to logs and to the `overlay` command: no control characters (a
   * newline would forge a log line) and no bidirectional overrides. */
  if (!g_variant_lookup(dict, "name", "&s", &name) || !g_variant_lookup(dict, "as", "&s", &as) ||
      (g_strcmp0(as, "client") != 0 && g_strcmp0(as, "peer") != 0) || !hark_text_is_clean(name) ||
      strlen(name) == 0 || strlen(name) > 64) {
    hark_overlay_send_error(peer, message->id, 400,
                            "a JOIN needs a name (1-64 bytes of UTF-8 without control or "
                            "bidirectional formatting characters) and as: client|peer");
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "a malformed JOIN from %s:%u",
                           hark_link_get_peer_host(peer->link),
                           hark_link_get_peer_port(peer->link));
    hark_link_close(peer->link);
    return;
  }
  clear_deadline(peer);
  hark_overlay_release_admission(overlay, peer);
  peer->name = hark_overlay_peer_text(name);
  peer->since = g_get_monotonic_time();
  if (g_strcmp0(as, "peer") == 0)
    accept_sn_peer(overlay, peer, dict, message->id);
  else
    accept_client(overlay, peer, message->id);
}

static void
handle_auth(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  g_autoptr(GVariant) cert_v = g_variant_get_child_value(message->body, 0);
  g_autoptr(GVariant) sig_v = g_variant_get_child_value(message->body, 1);
  g_autoptr(GBytes) cert = g_variant_get_data_as_bytes(cert_v);
  g_autoptr(GBytes) signature = g_variant_get_data_as_bytes(sig_v);
  g_autoptr(GError) error = NULL;
  if (!hark_link_authenticate(peer->link, cert, signature, &error)) {
    hark_overlay_note_drop(overlay, &overlay->counters.unauthenticated,
                           "AUTH from %s:%u refused: %s", hark_link_get_peer_host(peer->link),
                           hark_link_get_peer_port(peer->link), error->message);
    hark_overlay_send_error(peer, message->id, 401, error->message);
    return;
  }
  clear_deadline(peer);
  const HarkDeviceCertificate *proven = hark_link_get_peer_certificate(peer->link);
  hark_link_send(peer->link, HARK_MSG_AUTH_OK, message->id, g_variant_new("(s)", proven->user),
                 NULL);
  g_autofree char *user = hark_overlay_peer_text(proven->user);
  g_message("%s %s is user %s (device %s)", peer->kind == PEER_SN ? "the SN" : "client", peer->name,
            user, proven->device_id);
}

static void
serve_opened(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  if (message->id != peer->request_id) {
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected,
                           "%s before the answer to our JOIN", hark_wire_type_name(message->type));
    return;
  }
  if (message->type != HARK_MSG_JOIN_OK) {
    g_debug("the SN at %s:%u did not take our SN link", hark_link_get_peer_host(peer->link),
            peer->port);
    hark_link_close(peer->link);
    return;
  }
  g_autoptr(GVariant) dict = g_variant_get_child_value(message->body, 0);
  const char *name = NULL;
  g_variant_lookup(dict, "name", "&s", &name);
  peer->name = name != NULL ? hark_overlay_peer_text(name) : g_strdup("?");
  peer->kind = PEER_SN;
  peer->since = g_get_monotonic_time();
  g_variant_lookup(dict, "stun_alt_port", "q", &peer->stun_alt_port);
  hark_overlay_verify_opened(overlay, peer);
  hark_overlay_sn_peer_ready(overlay, peer);
  g_autoptr(GVariant) sns = g_variant_lookup_value(dict, "sns", G_VARIANT_TYPE("a(sqas)"));
  if (sns != NULL)
    g_ptr_array_unref(
      hark_overlay_learn_sn_list(overlay, sns, hark_link_get_peer_host(peer->link)));
  hark_host_cache_seen(overlay->cache, hark_link_get_peer_host(peer->link), peer->port, NULL, -1,
                       g_get_real_time() / G_USEC_PER_SEC);
  g_message("linked to the SN %s at %s:%u", peer->name, hark_link_get_peer_host(peer->link),
            peer->port);
}

void
hark_overlay_serve_message(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  if (hark_overlay_handle_keepalive(overlay, peer, message))
    return;
  if (peer->kind == PEER_OPENED) {
    serve_opened(overlay, peer, message);
    return;
  }
  gboolean authenticated = hark_link_get_peer_certificate(peer->link) != NULL;
  switch (message->type) {
  case HARK_MSG_JOIN:
    if (peer->kind == PEER_PENDING) {
      handle_join(overlay, peer, message);
      return;
    }
    break;
  case HARK_MSG_AUTH:
    /* A client proves its certificate, or a renewed one; an SN that opened a link to us
     * proves its renewed certificate (its first was in the handshake): the link ends
     * when the certificate it holds expires (link.c). */
    if (peer->kind == PEER_CLIENT || (peer->kind == PEER_SN && !hark_link_is_opener(peer->link))) {
      handle_auth(overlay, peer, message);
      return;
    }
    break;
  case HARK_MSG_AUTH_OK:
    if (peer->kind == PEER_SN && hark_link_is_opener(peer->link))
      return; /* the answer to our renewed certificate on a link we opened */
    break;
  case HARK_MSG_TUNNEL_OPEN:
  case HARK_MSG_TUNNEL_DATA:
  case HARK_MSG_TUNNEL_CLOSE:
    if (peer->kind == PEER_CLIENT) {
      hark_overlay_tunnel_serve(overlay, peer, message);
      return;
    }
    break;
  case HARK_MSG_TURN_REQUEST:
    /* Answered to clients not logged in too: with a 401 that tells them why. */
    if (peer->kind == PEER_CLIENT) {
      hark_overlay_turn_serve(overlay, peer, message);
      return;
    }
    break;
  case HARK_MSG_TURN_FORWARD:
    /* Refused with a 403 to anyone but a verified SN: the sender learns why. */
    if (peer->kind == PEER_SN || peer->kind == PEER_CLIENT) {
      hark_overlay_turn_serve_forward(overlay, peer, message);
      return;
    }
    break;
  case HARK_MSG_TURN_CREDENTIALS:
  case HARK_MSG_ERROR:
    /* An SN peer's answer to a TURN_FORWARD of ours (steering). */
    if (peer->kind == PEER_SN && hark_overlay_turn_forward_answer(overlay, peer, message))
      return;
    break;
  case HARK_MSG_STUN_RELAY:
    if (peer->kind == PEER_SN) {
      hark_overlay_stun_relay(overlay, peer, message);
      return;
    }
    break;
  case HARK_MSG_SN_LIST:
    if (hark_overlay_is_verified_sn(peer)) {
      g_autoptr(GVariant) list = g_variant_get_child_value(message->body, 0);
      g_ptr_array_unref(
        hark_overlay_learn_sn_list(overlay, list, hark_link_get_peer_host(peer->link)));
      return;
    }
    break;
  default:
    break;
  }
  guint64 *counter = authenticated || peer->kind == PEER_SN ? &overlay->counters.unexpected
                                                            : &overlay->counters.unauthenticated;
  hark_overlay_note_drop(overlay, counter, "%s from %s:%u (%s)", hark_wire_type_name(message->type),
                         hark_link_get_peer_host(peer->link), hark_link_get_peer_port(peer->link),
                         peer->kind == PEER_PENDING ? "before JOIN"
                         : authenticated            ? "not expected"
                                                    : "not logged in");
}

/* ---- datagrams: probes and STUN --------------------------------------------------- */

void
hark_overlay_send_datagram(HarkOverlay *overlay, const char *transport, GSocketAddress *to,
                           GBytes *bytes)
{
  const HarkRegistration *reg = hark_overlay_transport(overlay, transport);
  const HarkTransportInterface *iface = reg != NULL ? reg->iface : NULL;
  if (iface == NULL || iface->send_to == NULL)
    return;
  g_autoptr(GError) error = NULL;
  if (!iface->send_to(reg->instance, to, bytes, &error))
    g_debug("cannot answer a datagram: %s", error->message);
}

static void
answer_probe(HarkOverlay *overlay, const char *transport, GSocketAddress *from,
             const HarkWireMessage *message, gsize request_size)
{
  HarkConfig *config = overlay->node->config;
  guint clients = count_peers(overlay, PEER_CLIENT);
  g_autofree char *observed = hark_overlay_address_text(from);
  g_auto(GStrv) transports = hark_overlay_own_transports(overlay);
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string(config->node_name));
  g_variant_builder_add(&dict, "{sv}", "role", g_variant_new_string("super"));
  g_variant_builder_add(&dict, "{sv}", "accepting",
                        g_variant_new_boolean(clients < (guint)config->sn_max_clients));
  g_variant_builder_add(&dict, "{sv}", "clients", g_variant_new_uint32(clients));
  g_variant_builder_add(&dict, "{sv}", "transports",
                        g_variant_new_strv((const char *const *)transports, -1));
  g_variant_builder_add(&dict, "{sv}", "observed", g_variant_new_string(observed));
  g_autoptr(GBytes) reply =
    hark_wire_encode(HARK_MSG_PROBE_REPLY, message->id, g_variant_new("(a{sv})", &dict), NULL);
  /* The source of a datagram may be forged: never send more than came in. */
  if (reply == NULL || g_bytes_get_size(reply) > request_size) {
    hark_overlay_note_drop(overlay, &overlay->counters.probes_too_small,
                           "a PROBE of %zu bytes from %s: the answer would be %zu (pad it to %d)",
                           request_size, observed, reply != NULL ? g_bytes_get_size(reply) : 0,
                           OVERLAY_PROBE_SIZE);
    return;
  }
  overlay->counters.probes_answered++;
  hark_overlay_send_datagram(overlay, transport, from, reply);
}

void
hark_overlay_datagram_received(const char *transport, GSocketAddress *from, GBytes *datagram,
                               gpointer data)
{
  HarkOverlay *overlay = data;
  g_autofree char *who = hark_overlay_address_text(from);
  if (!overlay->is_sn) {
    hark_overlay_note_drop(overlay, &overlay->counters.bad_datagrams,
                           "a datagram from %s: this node is not a super node", who);
    return;
  }
  if (hark_stun_is_stun(datagram)) {
    hark_overlay_stun_datagram(overlay, from, datagram);
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkWireMessage) message = hark_wire_decode(datagram, &error);
  if (message == NULL || message->type != HARK_MSG_PROBE) {
    hark_overlay_note_drop(overlay, &overlay->counters.bad_datagrams, "a datagram from %s: %s", who,
                           message == NULL ? error->message : "not a PROBE");
    return;
  }
  answer_probe(overlay, transport, from, message, g_bytes_get_size(datagram));
}
