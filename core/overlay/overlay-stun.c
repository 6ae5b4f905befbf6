/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-stun.c: a super node's STUN server (RFC 5389, and RFC 5780 when it can).
 *
 * RFC 5780 needs answers from four transport addresses: the primary (A1, P1), the
 * alternate port (A1, P2), the alternate address (A2, P1) and both (A2, P2). P1 is the
 * overlay port, served by the udp transport; P2 (supernode.stun_alt_port, default P1 + 1)
 * is a socket of the core's own. A2 is either a second address of this host
 * (network.public_address_alt: the core binds A2:P1 and A2:P2 too) or another SN with the
 * same two ports that we are linked to: that SN answers from its own address when we ask
 * it with STUN_RELAY. Together the pair looks exactly like one RFC 5780 server, so real
 * clients (coturn's turnutils_natdiscovery) work against it.
 *
 * What an SN sends for a peer is bounded so no SN can be used as a reflector: only a
 * binding success it builds itself, sent to the address whose XOR-MAPPED-ADDRESS it
 * carries (the request's source as the asking SN saw it, or another port of that address
 * when the request had RESPONSE-PORT: a victim learns only its own address), smaller than
 * the STUN_RELAY that asked for it, only for a verified SN (overlay-verify.c), at most
 * RELAY_PER_SECOND per SN device whatever number of links it has, and never to an
 * address that is nobody's own (any, multicast, broadcast, link-local), to loopback
 * (unless network.allow_loopback) or to this SN itself. */
#include "overlay-private.h"
#include "hark/address.h"

#include "stun.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>

#define MAX_DATAGRAM 1500
#define READS_PER_DISPATCH 64
/* The core's own STUN sockets serve NAT tests, not traffic: each source address has a
 * bucket (so one flood does not starve others), and all share one more. The table of
 * sources is bounded; sources beyond it share the crowd bucket. */
#define OWN_PER_SECOND 200.0
#define OWN_PER_SOURCE_PER_SECOND 20.0
#define OWN_SOURCES_MAX 1024
/* A bucket untouched this long is full again (a burst refills in 2 s): forgetting it
 * loses nothing. */
#define OWN_SOURCE_IDLE_US (4 * G_USEC_PER_SEC)
#define RELAY_PER_SECOND 20.0
/* A bucket idle this long is full again: forgetting it changes nothing. */
#define RELAY_BUCKET_FULL_US ((gint64)(2 * G_USEC_PER_SEC))
#define RELAY_BUCKETS_KEPT 64
/* The host's own addresses are read again after this long (interfaces change). */
#define OWN_ADDRESSES_MAX_AGE_US ((gint64)(60 * G_USEC_PER_SEC))

enum {
  ALT_PORT = 1,
  ALT_IP = 2
}; /* bits of an origin's index */

typedef struct {
  OverlayStun *stun;
  guint index;
  GSocket *socket;
  GSource *source;
} StunSocket;

struct _OverlayStun {
  HarkOverlay *overlay;
  guint16 port, alt_port;
  GInetAddress *public_ip; /* A1 as announced */
  GInetAddress *alt_ip; /* A2 of this host, or NULL: ask a peer */
  StunSocket sockets[4]; /* [0] unused: the udp transport serves (A1, P1) */
  OverlayBucket own;
  GPtrArray *own_addresses; /* GInetAddress*: this SN's, no STUN_RELAY answer goes there */
  gint64 own_addresses_at; /* monotonic µs when read */
  GHashTable *sources; /* source key (hark_address_source_key) -> OverlayBucket* */
  OverlayBucket crowd; /* sources beyond OWN_SOURCES_MAX */
};

gboolean
hark_overlay_bucket_take(OverlayBucket *bucket, double per_second, double burst)
{
  gint64 now = g_get_monotonic_time();
  if (bucket->refilled_us == 0)
    bucket->tokens = burst;
  else
    bucket->tokens = MIN(burst, bucket->tokens + (double)(now - bucket->refilled_us) /
                                                   G_USEC_PER_SEC * per_second);
  bucket->refilled_us = now;
  if (bucket->tokens < 1)
    return FALSE;
  bucket->tokens -= 1;
  return TRUE;
}

/* Token bucket: burst of twice the rate. */
static gboolean
bucket_take(OverlayBucket *bucket, double per_second)
{
  return hark_overlay_bucket_take(bucket, per_second, 2 * per_second);
}

/* The bucket of the source of from on the core's own sockets. */
static OverlayBucket *
source_bucket(OverlayStun *stun, GSocketAddress *from)
{
  g_autofree char *host =
    g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(from)));
  g_autofree char *key = hark_address_source_key(host);
  OverlayBucket *bucket = g_hash_table_lookup(stun->sources, key);
  if (bucket != NULL)
    return bucket;
  if (g_hash_table_size(stun->sources) >= OWN_SOURCES_MAX) {
    gint64 now = g_get_monotonic_time();
    GHashTableIter iter;
    gpointer value;
    g_hash_table_iter_init(&iter, stun->sources);
    while (g_hash_table_iter_next(&iter, NULL, &value))
      if (now - ((OverlayBucket *)value)->refilled_us > OWN_SOURCE_IDLE_US)
        g_hash_table_iter_remove(&iter);
    if (g_hash_table_size(stun->sources) >= OWN_SOURCES_MAX)
      return &stun->crowd;
  }
  bucket = g_new0(OverlayBucket, 1);
  g_hash_table_insert(stun->sources, g_steal_pointer(&key), bucket);
  return bucket;
}

/* ---- who answers ------------------------------------------------------------------ */

/* The SN that plays A2, when this host has no second address: an SN peer with an IP
 * address and our two ports; the lowest address, so every request sees the same one. */
static Peer *
partner(OverlayStun *stun)
{
  Peer *best = NULL;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, stun->overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (!hark_overlay_is_verified_sn(peer) || peer->port != stun->port ||
        peer->stun_alt_port != stun->alt_port || peer->host == NULL ||
        !g_hostname_is_ip_address(peer->host))
      continue;
    if (best == NULL || strcmp(peer->host, best->host) < 0)
      best = peer;
  }
  return best;
}

/* The address origin `index` announces, or NULL when it has none now. */
static GSocketAddress *
origin_address(OverlayStun *stun, guint index)
{
  guint16 port = index & ALT_PORT ? stun->alt_port : stun->port;
  if (!(index & ALT_IP))
    return stun->public_ip != NULL ? g_inet_socket_address_new(stun->public_ip, port) : NULL;
  if (stun->alt_ip != NULL)
    return g_inet_socket_address_new(stun->alt_ip, port);
  Peer *peer = partner(stun);
  return peer != NULL ? g_inet_socket_address_new_from_string(peer->host, port) : NULL;
}

static void
send_from(OverlayStun *stun, guint index, GSocketAddress *to, GBytes *bytes)
{
  g_autoptr(GError) error = NULL;
  if (index == 0) {
    hark_overlay_send_datagram(stun->overlay, "udp", to, bytes);
    return;
  }
  GSocket *socket = stun->sockets[index].socket;
  if (socket == NULL)
    return;
  gsize size;
  const char *data = g_bytes_get_data(bytes, &size);
  if (g_socket_send_to(socket, to, data, size, NULL, &error) < 0)
    g_debug("cannot answer STUN: %s", error->message);
}

static void
ask_partner(OverlayStun *stun, guint index, GSocketAddress *to, const HarkStunRequest *request)
{
  HarkOverlay *overlay = stun->overlay;
  Peer *peer = partner(stun);
  if (peer == NULL || !G_IS_INET_SOCKET_ADDRESS(to))
    return;
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS(to);
  g_autofree char *host = g_inet_address_to_string(g_inet_socket_address_get_address(inet));
  GVariant *tid = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, request->transaction_id,
                                            sizeof request->transaction_id, 1);
  hark_link_send(peer->link, HARK_MSG_STUN_RELAY, hark_overlay_next_id(overlay),
                 g_variant_new("(sqqb@ay)", host, g_inet_socket_address_get_port(inet),
                               request->response_port, (index & ALT_PORT) != 0, tid),
                 NULL);
  overlay->counters.stun_relayed++;
}

/* A STUN datagram from `from` to origin `index`. */
static void
handle_stun(OverlayStun *stun, guint index, GSocketAddress *from, GBytes *datagram)
{
  HarkOverlay *overlay = stun->overlay;
  g_autofree char *who = hark_overlay_address_text(from);
  g_autoptr(GSocketAddress) other = origin_address(stun, ALT_IP | ALT_PORT);
  HarkStunRequest request;
  g_autoptr(GError) error = NULL;
  if (!hark_stun_read_request(datagram, other != NULL, &request, &error)) {
    hark_overlay_note_drop(overlay, &overlay->counters.stun_refused, "STUN from %s: %s", who,
                           error->message);
    return;
  }
  /* RESPONSE-PORT: the answer goes to another port of the same address. */
  g_autoptr(GSocketAddress) to = NULL;
  if (request.n_unknown == 0 && request.response_port != 0 && G_IS_INET_SOCKET_ADDRESS(from))
    to = g_inet_socket_address_new(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(from)),
                                   request.response_port);
  else
    to = g_object_ref(from);
  guint target = index;
  if (request.n_unknown == 0) {
    if (request.change & HARK_STUN_CHANGE_IP)
      target ^= ALT_IP;
    if (request.change & HARK_STUN_CHANGE_PORT)
      target ^= ALT_PORT;
  }
  if ((target & ALT_IP) && stun->alt_ip == NULL) {
    ask_partner(stun, target, from, &request);
    return;
  }
  g_autoptr(GSocketAddress) origin = origin_address(stun, target);
  g_autoptr(GBytes) answer = hark_stun_answer_request(&request, from, origin, other, &error);
  if (answer == NULL) {
    hark_overlay_note_drop(overlay, &overlay->counters.stun_refused, "STUN from %s: %s", who,
                           error->message);
    return;
  }
  overlay->counters.stun_answered++;
  send_from(stun, target, to, answer);
}

void
hark_overlay_stun_datagram(HarkOverlay *overlay, GSocketAddress *from, GBytes *datagram)
{
  if (overlay->stun != NULL) {
    handle_stun(overlay->stun, 0, from, datagram);
    return;
  }
  /* Not serving RFC 5780 (its sockets could not be opened): plain RFC 5389. */
  g_autofree char *who = hark_overlay_address_text(from);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = hark_stun_answer(datagram, from, &error);
  if (answer == NULL) {
    hark_overlay_note_drop(overlay, &overlay->counters.stun_refused, "STUN from %s: %s", who,
                           error->message);
    return;
  }
  overlay->counters.stun_answered++;
  hark_overlay_send_datagram(overlay, "udp", from, answer);
}

/* ---- STUN_RELAY from a partner ---------------------------------------------------- */

/* The budget of the peer's device, shared by all its links. */
static OverlayBucket *
device_bucket(HarkOverlay *overlay, Peer *peer)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  if (overlay->relay_buckets == NULL)
    overlay->relay_buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  OverlayBucket *bucket = g_hash_table_lookup(overlay->relay_buckets, cert->device_id);
  if (bucket != NULL)
    return bucket;
  if (g_hash_table_size(overlay->relay_buckets) >= RELAY_BUCKETS_KEPT) {
    gint64 now = g_get_monotonic_time();
    GHashTableIter iter;
    gpointer value;
    g_hash_table_iter_init(&iter, overlay->relay_buckets);
    while (g_hash_table_iter_next(&iter, NULL, &value))
      if (now - ((OverlayBucket *)value)->refilled_us >= RELAY_BUCKET_FULL_US)
        g_hash_table_iter_remove(&iter);
  }
  bucket = g_new0(OverlayBucket, 1);
  g_hash_table_insert(overlay->relay_buckets, g_strdup(cert->device_id), bucket);
  return bucket;
}

static void
add_own_address(GPtrArray *addresses, const char *text)
{
  GInetAddress *ip = text != NULL ? g_inet_address_new_from_string(text) : NULL;
  if (ip != NULL)
    g_ptr_array_add(addresses, ip);
}

/* The addresses the SN is configured with and announces, and every address of this
 * host's interfaces (it may listen on all of them; its other services surely do), read
 * again once a minute. */
static GPtrArray *
own_addresses(OverlayStun *stun)
{
  gint64 now = g_get_monotonic_time();
  if (stun->own_addresses != NULL && now - stun->own_addresses_at < OWN_ADDRESSES_MAX_AGE_US)
    return stun->own_addresses;
  g_clear_pointer(&stun->own_addresses, g_ptr_array_unref);
  GPtrArray *addresses = g_ptr_array_new_with_free_func(g_object_unref);
  HarkOverlay *overlay = stun->overlay;
  HarkConfig *config = overlay->node->config;
  add_own_address(addresses, overlay->public_host);
  add_own_address(addresses, config->public_address);
  add_own_address(addresses, config->public_address_alt);
  add_own_address(addresses, config->listen_address);
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) == 0) {
    for (struct ifaddrs *ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
      if (ifa->ifa_addr == NULL)
        continue;
      gsize size = ifa->ifa_addr->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
                   : ifa->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                          : 0;
      g_autoptr(GSocketAddress) address =
        size > 0 ? g_socket_address_new_from_native(ifa->ifa_addr, size) : NULL;
      GInetAddress *ip = address != NULL && G_IS_INET_SOCKET_ADDRESS(address)
                           ? g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(address))
                           : NULL;
      /* With allow_loopback every node runs on this host: loopback is everybody's. */
      if (ip != NULL && !(config->allow_loopback && g_inet_address_get_is_loopback(ip)))
        g_ptr_array_add(addresses, g_object_ref(ip));
    }
    freeifaddrs(list);
  }
  stun->own_addresses = addresses;
  stun->own_addresses_at = now;
  return addresses;
}

static gboolean
is_own_address(OverlayStun *stun, GInetAddress *ip)
{
  g_autoptr(GInetAddress) plain = hark_stun_address_unmapped(ip);
  GPtrArray *own = own_addresses(stun);
  for (guint i = 0; i < own->len; i++)
    if (g_inet_address_equal(own->pdata[i], plain))
      return TRUE;
  return (stun->public_ip != NULL && g_inet_address_equal(stun->public_ip, plain)) ||
         (stun->alt_ip != NULL && g_inet_address_equal(stun->alt_ip, plain));
}

void
hark_overlay_stun_relay(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  OverlayStun *stun = overlay->stun;
  const char *host = NULL;
  guint16 port = 0, response_port = 0;
  gboolean alt_port = FALSE;
  g_autoptr(GVariant) tid = NULL;
  g_variant_get(message->body, "(&sqqb@ay)", &host, &port, &response_port, &alt_port, &tid);
  g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(host);
  const char *refused = NULL;
  if (stun == NULL)
    refused = "this SN serves no RFC 5780";
  else if (!hark_overlay_is_verified_sn(peer))
    refused = "not a verified SN (yet)";
  else if (!bucket_take(device_bucket(overlay, peer), RELAY_PER_SECOND))
    refused = "over the rate of STUN_RELAY per SN device";
  else if (ip == NULL || port == 0 || g_variant_n_children(tid) != HARK_STUN_TRANSACTION_ID_SIZE)
    refused = "not an IP address, a port and a 12-byte transaction id";
  else
    refused = hark_address_refusal_inet(ip, overlay->node->config->allow_loopback);
  if (refused == NULL && is_own_address(stun, ip))
    refused = "an address of this SN";
  if (refused != NULL) {
    hark_overlay_note_drop(overlay, &overlay->counters.stun_relay_refused,
                           "STUN_RELAY from the SN %s: %s", peer->name != NULL ? peer->name : "?",
                           refused);
    return;
  }
  HarkStunRequest request = { 0 };
  memcpy(request.transaction_id, g_variant_get_data(tid), sizeof request.transaction_id);
  guint index = alt_port ? ALT_PORT : 0;
  g_autoptr(GSocketAddress) mapped = g_inet_socket_address_new(ip, port);
  g_autoptr(GSocketAddress) to =
    g_inet_socket_address_new(ip, response_port != 0 ? response_port : port);
  g_autoptr(GSocketAddress) origin = origin_address(stun, index);
  /* Seen from the client, the asking SN is the other address. */
  g_autoptr(GSocketAddress) other =
    peer->host != NULL && g_hostname_is_ip_address(peer->host)
      ? g_inet_socket_address_new_from_string(peer->host, stun->alt_port)
      : NULL;
  g_autoptr(GBytes) answer = hark_stun_answer_request(&request, mapped, origin, other, NULL);
  if (answer == NULL)
    return;
  overlay->counters.stun_relay_served++;
  send_from(stun, index, to, answer);
}

/* ---- the core's own sockets ------------------------------------------------------- */

static gboolean
own_socket_ready(GSocket *socket, GIOCondition condition, gpointer data)
{
  StunSocket *s = data;
  OverlayStun *stun = s->stun;
  HarkOverlay *overlay = stun->overlay;
  for (int i = 0; i < READS_PER_DISPATCH; i++) {
    guint8 buffer[MAX_DATAGRAM + 1];
    GSocketAddress *from_raw = NULL;
    gssize size =
      g_socket_receive_from(socket, &from_raw, (char *)buffer, sizeof buffer, NULL, NULL);
    g_autoptr(GSocketAddress) from = from_raw;
    if (size < 0)
      break;
    if (from == NULL)
      continue;
    g_autofree char *who = hark_overlay_address_text(from);
    if (!G_IS_INET_SOCKET_ADDRESS(from) ||
        !bucket_take(source_bucket(stun, from), OWN_PER_SOURCE_PER_SECOND) ||
        !bucket_take(&stun->own, OWN_PER_SECOND)) {
      hark_overlay_note_drop(overlay, &overlay->counters.stun_flood,
                             "STUN from %s on port %u: over the rate", who,
                             s->index & ALT_PORT ? stun->alt_port : stun->port);
      continue;
    }
    g_autoptr(GBytes) datagram = g_bytes_new(buffer, (gsize)size);
    if (size > MAX_DATAGRAM || !hark_stun_is_stun(datagram)) {
      hark_overlay_note_drop(overlay, &overlay->counters.bad_datagrams,
                             "a datagram from %s on a STUN port: not STUN", who);
      continue;
    }
    handle_stun(stun, s->index, from, datagram);
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
open_own_socket(OverlayStun *stun, guint index, GInetAddress *ip, GError **error)
{
  StunSocket *s = &stun->sockets[index];
  guint16 port = index & ALT_PORT ? stun->alt_port : stun->port;
  g_autoptr(GSocket) socket = g_socket_new(g_inet_address_get_family(ip), G_SOCKET_TYPE_DATAGRAM,
                                           G_SOCKET_PROTOCOL_UDP, error);
  g_autoptr(GSocketAddress) bind_to = g_inet_socket_address_new(ip, port);
  if (socket == NULL || !g_socket_bind(socket, bind_to, FALSE, error))
    return FALSE;
  g_socket_set_blocking(socket, FALSE);
  s->stun = stun;
  s->index = index;
  s->socket = g_steal_pointer(&socket);
  s->source = g_socket_create_source(s->socket, G_IO_IN, NULL);
  g_source_set_callback(s->source, G_SOURCE_FUNC(own_socket_ready), s, NULL);
  g_source_attach(s->source, hark_context_main_context(stun->overlay->ctx));
  return TRUE;
}

void
hark_overlay_stun_stop(HarkOverlay *overlay)
{
  OverlayStun *stun = g_steal_pointer(&overlay->stun);
  if (stun == NULL)
    return;
  for (guint i = 1; i < G_N_ELEMENTS(stun->sockets); i++) {
    StunSocket *s = &stun->sockets[i];
    if (s->source != NULL) {
      g_source_destroy(s->source);
      g_source_unref(s->source);
    }
    if (s->socket != NULL)
      g_socket_close(s->socket, NULL);
    g_clear_object(&s->socket);
  }
  g_clear_object(&stun->public_ip);
  g_clear_object(&stun->alt_ip);
  g_clear_pointer(&stun->own_addresses, g_ptr_array_unref);
  g_hash_table_unref(stun->sources);
  g_free(stun);
}

guint16
hark_overlay_stun_alt_port(HarkOverlay *overlay)
{
  HarkConfig *config = overlay->node->config;
  if (config->sn_stun_alt_port != 0)
    return (guint16)config->sn_stun_alt_port;
  return config->port < G_MAXUINT16 ? (guint16)(config->port + 1) : (guint16)(config->port - 1);
}

/* The udp transport listens on this address: with a second address the answers must
 * leave from exactly the address they were asked at, so the wildcard will not do. */
const char *
hark_overlay_stun_udp_address(HarkOverlay *overlay)
{
  HarkConfig *config = overlay->node->config;
  if (config->public_address_alt != NULL && config->public_address != NULL)
    return config->public_address;
  return config->listen_address;
}

void
hark_overlay_stun_start(HarkOverlay *overlay)
{
  HarkConfig *config = overlay->node->config;
  hark_overlay_stun_stop(overlay);
  OverlayStun *stun = g_new0(OverlayStun, 1);
  stun->overlay = overlay;
  stun->sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  stun->port = config->port;
  stun->alt_port = hark_overlay_stun_alt_port(overlay);
  if (overlay->public_host != NULL)
    stun->public_ip = g_inet_address_new_from_string(overlay->public_host);
  if (config->public_address_alt != NULL && config->public_address != NULL)
    stun->alt_ip = g_inet_address_new_from_string(config->public_address_alt);
  else if (config->public_address_alt != NULL)
    g_warning("network.public_address_alt needs network.public_address: not used");
  overlay->stun = stun;

  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) primary =
    g_inet_address_new_from_string(hark_overlay_stun_udp_address(overlay));
  gboolean ok = primary != NULL && open_own_socket(stun, ALT_PORT, primary, &error);
  if (ok && stun->alt_ip != NULL)
    ok = open_own_socket(stun, ALT_IP, stun->alt_ip, &error) &&
         open_own_socket(stun, ALT_IP | ALT_PORT, stun->alt_ip, &error);
  if (!ok) {
    g_message("STUN serves RFC 5389 only: cannot open its alternate sockets: %s",
              error != NULL ? error->message : "no address");
    hark_overlay_stun_stop(overlay);
    return;
  }
  if (stun->alt_ip != NULL)
    g_message("STUN (RFC 5780) at %s and %s, ports %u and %u", overlay->public_host,
              config->public_address_alt, stun->port, stun->alt_port);
  else
    g_message("STUN (RFC 5780 with a partner SN) at %s, ports %u and %u",
              overlay->public_host != NULL ? overlay->public_host : "?", stun->port,
              stun->alt_port);
}

JsonObject *
hark_overlay_stun_describe(HarkOverlay *overlay)
{
  OverlayStun *stun = overlay->stun;
  JsonObject *object = json_object_new();
  json_object_set_boolean_member(object, "rfc5780", FALSE);
  if (stun == NULL)
    return object;
  json_object_set_int_member(object, "alt_port", stun->alt_port);
  g_autoptr(GSocketAddress) other = origin_address(stun, ALT_IP | ALT_PORT);
  json_object_set_boolean_member(object, "rfc5780", other != NULL);
  if (other != NULL) {
    g_autofree char *text = hark_overlay_address_text(other);
    json_object_set_string_member(object, "other_address", text);
    json_object_set_string_member(object, "alternate", stun->alt_ip != NULL ? "own" : "partner");
    Peer *peer = stun->alt_ip == NULL ? partner(stun) : NULL;
    if (peer != NULL)
      json_object_set_string_member(object, "partner", peer->name);
  }
  return object;
}
