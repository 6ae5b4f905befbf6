/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay.c: the super node's TURN server (RFC 8656; relay.h, docs/protocol.md "TURN").
 *
 * One UDP socket and one TCP listener on supernode.relay_port take the clients'
 * requests; each allocation has a UDP socket of its own towards peers. Requests are
 * parsed strictly (core/base/stun.c), authenticated with the overlay's REST-API
 * credentials (relay-auth.c) and answered with the RFC's codes; allocations live in
 * relay-table.c. The data path (ChannelData both ways, Data indications) reads and
 * writes the sockets' file descriptors directly into one buffer of the relay, with a
 * free header room in front, so a relayed datagram costs no allocation. Everything runs
 * on the node's main loop. */
#include "relay.h"

#include "relay-auth.h"
#include "relay-peer.h"
#include "relay-table.h"
#include "stun.h"

#include "hark/address.h"
#include "identity-private.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/socket.h>

#define SWEEP_S 5 /* expired allocations, permissions and channels go this often */
#define HEADROOM 48 /* a Data indication's header for an IPv6 peer: 20 + 24 + 4 */
#define DATAGRAM_MAX 65535
#define BATCH 64 /* datagrams read per wake-up, so one socket cannot starve the others */
#define TCP_FRAME_MAX (HARK_STUN_HEADER_SIZE + 65535 + 4)
#define TCP_OUT_MAX (256 * 1024) /* bytes queued to a slow TCP client; more is dropped */
#define TCP_CONNECTIONS_EXTRA 64 /* TCP clients beyond the allocation limit (asking first) */
#define TCP_IDLE_S 30 /* a TCP client without an allocation by then is closed */
#define PORT_TRIES 32
#define UNAUTHENTICATED_PER_S 1000 /* answers without MESSAGE-INTEGRITY over UDP */
#define SATURATED_US (2 * G_USEC_PER_SEC) /* 508 this long after the total bandwidth dropped */

/* Why requests were refused and datagrams dropped, counted (`overlay` → `relay`). */
typedef struct {
  guint64 malformed; /* not STUN/TURN, or broken: dropped */
  guint64 unauthenticated; /* 401 to a request without credentials (the first step) */
  guint64 wrong_credentials; /* 401: unknown, malformed or wrong username/password */
  guint64 expired_credentials; /* 401: the username's expiry has passed */
  guint64 stale_nonce; /* 438 */
  guint64 bad_request; /* 400 */
  guint64 unknown_attribute; /* 420 */
  guint64 forbidden; /* 403: a denied peer */
  guint64 mismatch; /* 437: no allocation, or one exists already */
  guint64 wrong_user; /* 441: not the allocation's username */
  guint64 unsupported_transport; /* 442 */
  guint64 unsupported_family; /* 440, 443 */
  guint64 quota; /* 486 */
  guint64 capacity; /* 508 */
  guint64 no_allocation; /* data from a client without allocation: dropped */
  guint64 unbound_channel; /* ChannelData on a channel not bound: dropped */
  guint64 no_permission; /* to or from a peer without permission: dropped */
  guint64 bandwidth; /* over the allocation's or the relay's bandwidth: dropped */
  guint64 tcp_idle; /* TCP connections closed without an allocation after TCP_IDLE_S */
  guint64 unanswered; /* unauthenticated requests over UDP past UNAUTHENTICATED_PER_S */
} RelayRefusals;

typedef struct _RelayTcp RelayTcp;

/* Where a message came from: the address, and the TCP connection when not UDP. */
typedef struct {
  RelayAddr addr;
  RelayTcp *tcp;
} RelayFrom;

/* The sockets of one allocation (RelayAllocation.owner). */
typedef struct {
  HarkRelay *relay;
  RelayAllocation *allocation;
  GSocket *socket;
  GSource *source;
  int fd;
  guint16 port;
  RelayTcp *tcp; /* the connection it was made over, NULL over UDP */
  RelayBucket bucket;
} RelayOwner;

struct _RelayTcp {
  HarkRelay *relay;
  GIOStream *stream; /* a GSocketConnection, or a GTlsConnection over one */
  GPollableInputStream *input;
  GPollableOutputStream *output;
  GSource *source, *out_source;
  RelayAddr client;
  gint64 opened; /* monotonic s */
  guint8 *in; /* TCP_FRAME_MAX bytes */
  gsize in_len;
  GByteArray *out;
};

struct _HarkRelay {
  char *host; /* what relayed addresses name */
  GInetAddress *public_ip;
  GInetAddress *bind_ip;
  guint16 port;
  guint min_port, max_port;
  GBytes *secret;
  guint8 nonce_key[RELAY_NONCE_KEY_SIZE];
  RelayTable *table;
  HarkCidr *allow;
  gsize n_allow;
  guint64 allocation_rate, total_rate; /* bytes/s, 0: no limit */
  RelayBucket total_bucket;
  gint64 saturated_at_us; /* when the total bandwidth last dropped a datagram, 0: never */
  RelayBucket unauthenticated; /* answers without integrity over UDP (answer_send) */
  guint max_tcp;

  GSocket *udp;
  int udp_fd;
  GSource *udp_source;
  GSocket *tcp_listener;
  GSource *tcp_source;
  guint16 tls_port; /* 0: no TURN over TLS */
  GTlsCertificate *tls_certificate;
  GSocket *tls_listener;
  GSource *tls_source;
  GHashTable *tcp_clients; /* RelayTcp* set */
  guint sweep_timer;

  guint64 allocations_made, datagrams_to_peers, datagrams_from_peers, bytes_to_peers,
    bytes_from_peers;
  RelayRefusals refused;

  guint8 buffer[HEADROOM + DATAGRAM_MAX + 4];
};

static void tcp_close(RelayTcp *tcp);

static gint64
now_s(void)
{
  return g_get_monotonic_time() / G_USEC_PER_SEC;
}

static guint16
get16(const guint8 *p)
{
  return (guint16)((p[0] << 8) | p[1]);
}

static void
put16(guint8 *p, guint16 v)
{
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
}

/* ---- sending ------------------------------------------------------------------------ */

static void tcp_send(RelayTcp *tcp, const guint8 *data, gsize size);

static void
send_to_client(HarkRelay *relay, const RelayFrom *to, const guint8 *data, gsize size)
{
  if (to->tcp != NULL) {
    tcp_send(to->tcp, data, size);
    return;
  }
  struct sockaddr_storage sa;
  gsize sa_size = hark_relay_addr_to_sockaddr(&to->addr, &sa);
  /* A full socket buffer drops the datagram, as the network would. */
  (void)sendto(relay->udp_fd, data, size, MSG_DONTWAIT, (struct sockaddr *)&sa, (socklen_t)sa_size);
}

static void
send_bytes(HarkRelay *relay, const RelayFrom *to, GBytes *message)
{
  gsize size;
  const guint8 *data = g_bytes_get_data(message, &size);
  send_to_client(relay, to, data, size);
  g_bytes_unref(message);
}

/* ---- answers ------------------------------------------------------------------------ */

static GByteArray *
answer_new(const HarkStunMessage *request, int cls)
{
  return hark_stun_builder_new(hark_stun_message_type(hark_stun_message_method(request->type), cls),
                               request->transaction_id);
}

/* Ends an answer: SOFTWARE, MESSAGE-INTEGRITY when keyed, FINGERPRINT; and sends it.
 * Unauthenticated answers over UDP (401, 438, 400, 420, Binding) are larger than what
 * asks for them and go to a source anyone can forge: at most UNAUTHENTICATED_PER_S of
 * them leave, so the relay cannot be used to flood a victim. */
static void
answer_send(HarkRelay *relay, const RelayFrom *to, GByteArray *b, const guint8 *key)
{
  if (key == NULL && to->tcp == NULL &&
      !hark_relay_bucket_take(&relay->unauthenticated, UNAUTHENTICATED_PER_S, 1,
                              g_get_monotonic_time())) {
    relay->refused.unanswered++;
    g_byte_array_unref(b);
    return;
  }
  hark_stun_builder_add_software(b);
  if (key != NULL)
    hark_stun_builder_add_integrity(b, key, 16);
  send_bytes(relay, to, hark_stun_builder_finish(b));
}

static void
answer_error(HarkRelay *relay, const RelayFrom *to, const HarkStunMessage *request, guint code,
             const char *reason, const guint8 *key)
{
  GByteArray *b = answer_new(request, HARK_STUN_CLASS_ERROR);
  hark_stun_builder_add_error(b, code, reason);
  answer_send(relay, to, b, key);
}

/* 401 or 438: the realm and a fresh nonce, for the client to try (again) with. */
static void
answer_challenge(HarkRelay *relay, const RelayFrom *to, const HarkStunMessage *request, guint code,
                 const char *reason)
{
  GByteArray *b = answer_new(request, HARK_STUN_CLASS_ERROR);
  hark_stun_builder_add_error(b, code, reason);
  hark_stun_builder_add(b, HARK_STUN_ATTR_REALM, HARK_RELAY_REALM, strlen(HARK_RELAY_REALM));
  g_autofree char *nonce =
    hark_relay_nonce_make(relay->nonce_key, &to->addr, g_get_real_time() / G_USEC_PER_SEC);
  hark_stun_builder_add(b, HARK_STUN_ATTR_NONCE, nonce, (guint16)strlen(nonce));
  answer_send(relay, to, b, NULL);
}

static void
log_refusal(const RelayFrom *from, const char *user, const char *what)
{
  g_autofree char *client = hark_relay_addr_text(&from->addr);
  g_autofree char *shown = user != NULL ? hark_text_escape(user, -1, 64) : g_strdup("?");
  g_debug("relay: %s from %s (%s over %s)", what, client, shown, from->tcp != NULL ? "TCP" : "UDP");
}

/* ---- authentication ------------------------------------------------------------------ */

typedef struct {
  char *user;
  guint8 key[16];
} RelayAuth;

static void
auth_clear(RelayAuth *auth)
{
  g_clear_pointer(&auth->user, g_free);
  explicit_bzero(auth->key, sizeof auth->key);
}

/* TRUE with auth filled when the request carries a good credential for this relay;
 * otherwise answered (401, 438, 400) and counted. allocate: the username's expiry
 * counts (an allocation, once made, lives by its own lifetime). */
static gboolean
authenticate(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m, gboolean allocate,
             RelayAuth *auth)
{
  const HarkStunAttribute *integrity = hark_stun_message_find(m, HARK_STUN_ATTR_MESSAGE_INTEGRITY);
  const HarkStunAttribute *username = hark_stun_message_find(m, HARK_STUN_ATTR_USERNAME);
  const HarkStunAttribute *realm = hark_stun_message_find(m, HARK_STUN_ATTR_REALM);
  const HarkStunAttribute *nonce = hark_stun_message_find(m, HARK_STUN_ATTR_NONCE);
  if (integrity == NULL) {
    relay->refused.unauthenticated++;
    answer_challenge(relay, from, m, 401, "Unauthenticated");
    return FALSE;
  }
  if (username == NULL || realm == NULL || nonce == NULL) {
    relay->refused.bad_request++;
    log_refusal(from, NULL, "400: MESSAGE-INTEGRITY without USERNAME, REALM and NONCE");
    answer_error(relay, from, m, 400, "Bad Request", NULL);
    return FALSE;
  }
  gint64 real_s = g_get_real_time() / G_USEC_PER_SEC;
  if (!hark_relay_nonce_check(relay->nonce_key, &from->addr, (const char *)nonce->value,
                              nonce->length, real_s)) {
    relay->refused.stale_nonce++;
    answer_challenge(relay, from, m, 438, "Stale Nonce");
    return FALSE;
  }
  if (realm->length != strlen(HARK_RELAY_REALM) ||
      memcmp(realm->value, HARK_RELAY_REALM, realm->length) != 0) {
    relay->refused.wrong_credentials++;
    log_refusal(from, NULL, "401: another realm");
    answer_challenge(relay, from, m, 401, "Unauthenticated");
    return FALSE;
  }
  RelayCredential read =
    hark_relay_credential_read(relay->secret, (const char *)username->value, username->length,
                               HARK_RELAY_REALM, allocate ? real_s : 0, &auth->user, auth->key);
  if (read == RELAY_CREDENTIAL_EXPIRED) {
    relay->refused.expired_credentials++;
    g_autofree char *name = g_strndup((const char *)username->value, username->length);
    log_refusal(from, name, "401: the credential has expired");
    answer_challenge(relay, from, m, 401, "Unauthenticated: credential expired");
    return FALSE;
  }
  if (read != RELAY_CREDENTIAL_OK || !hark_stun_check_integrity(m, auth->key, sizeof auth->key)) {
    relay->refused.wrong_credentials++;
    log_refusal(from, auth->user, "401: wrong credential (MESSAGE-INTEGRITY)");
    auth_clear(auth);
    answer_challenge(relay, from, m, 401, "Unauthenticated");
    return FALSE;
  }
  return TRUE;
}

/* ---- allocations -------------------------------------------------------------------- */

static gboolean on_peer_readable(GSocket *socket, GIOCondition condition, gpointer data);

static void
owner_free(gpointer data)
{
  RelayOwner *owner = data;
  if (owner->source != NULL) {
    g_source_destroy(owner->source);
    g_source_unref(owner->source);
  }
  if (owner->socket != NULL) {
    g_socket_close(owner->socket, NULL);
    g_object_unref(owner->socket);
  }
  g_free(owner);
}

/* A UDP socket on the SN's address, on a free port of the range (even when asked). */
static GSocket *
open_relayed(HarkRelay *relay, gboolean even, guint16 *port_out)
{
  GSocketFamily family = g_inet_address_get_family(relay->bind_ip);
  for (int i = 0; i < PORT_TRIES; i++) {
    guint32 port =
      (guint32)g_random_int_range((gint32)relay->min_port, (gint32)relay->max_port + 1);
    if (even)
      port &= ~1u;
    if (port < relay->min_port)
      continue;
    g_autoptr(GSocket) socket =
      g_socket_new(family, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
    if (socket == NULL)
      return NULL;
    g_autoptr(GSocketAddress) address = g_inet_socket_address_new(relay->bind_ip, (guint16)port);
    if (g_socket_bind(socket, address, FALSE, NULL)) {
      g_socket_set_blocking(socket, FALSE);
      *port_out = (guint16)port;
      return g_steal_pointer(&socket);
    }
  }
  return NULL;
}

/* The Allocate success: XOR-RELAYED-ADDRESS, LIFETIME, XOR-MAPPED-ADDRESS. */
static void
answer_allocated(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m,
                 RelayAllocation *allocation)
{
  RelayOwner *owner = allocation->owner;
  GByteArray *b = answer_new(m, HARK_STUN_CLASS_SUCCESS);
  g_autoptr(GSocketAddress) relayed = g_inet_socket_address_new(relay->public_ip, owner->port);
  g_autoptr(GSocketAddress) mapped = hark_relay_addr_to_inet(&from->addr);
  hark_stun_builder_add_address(b, HARK_STUN_ATTR_XOR_RELAYED_ADDRESS, relayed, m->transaction_id,
                                NULL);
  gint64 left = MAX(0, allocation->expires - now_s());
  hark_stun_builder_add_u32(b, HARK_STUN_ATTR_LIFETIME, (guint32)left);
  hark_stun_builder_add_address(b, HARK_STUN_ATTR_XOR_MAPPED_ADDRESS, mapped, m->transaction_id,
                                NULL);
  answer_send(relay, from, b, allocation->key);
}

static gint64
requested_lifetime(const HarkStunMessage *m)
{
  const HarkStunAttribute *a = hark_stun_message_find(m, HARK_STUN_ATTR_LIFETIME);
  return a != NULL ? (gint64)hark_stun_attribute_u32(a) : -1;
}

static void
log_allocation(RelayAllocation *allocation, const char *what)
{
  RelayOwner *owner = allocation->owner;
  g_autofree char *client = hark_relay_addr_text(&allocation->client);
  g_autofree char *user = hark_text_escape(allocation->user, -1, 64);
  g_message("relay: %s %s from %s over %s: port %u, %" G_GUINT64_FORMAT
            " bytes to peers, %" G_GUINT64_FORMAT " from peers",
            what, user, client, allocation->client.transport == RELAY_TCP ? "TCP" : "UDP",
            owner != NULL ? owner->port : 0, allocation->bytes_to_peers,
            allocation->bytes_from_peers);
}

static void
handle_allocate(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m, RelayAuth *auth)
{
  RelayAllocation *existing = hark_relay_table_find(relay->table, &from->addr);
  if (existing != NULL) {
    /* A retransmission of the Allocate that made it gets the same answer. */
    if (memcmp(existing->transaction_id, m->transaction_id, 12) == 0 &&
        g_strcmp0(existing->user, auth->user) == 0) {
      answer_allocated(relay, from, m, existing);
      return;
    }
    relay->refused.mismatch++;
    log_refusal(from, auth->user, "437: an allocation exists for this client already");
    answer_error(relay, from, m, 437, "Allocation Mismatch", auth->key);
    return;
  }
  const HarkStunAttribute *transport =
    hark_stun_message_find(m, HARK_STUN_ATTR_REQUESTED_TRANSPORT);
  if (transport == NULL) {
    relay->refused.bad_request++;
    answer_error(relay, from, m, 400, "Bad Request: no REQUESTED-TRANSPORT", auth->key);
    return;
  }
  if (transport->value[0] != RELAY_UDP) {
    relay->refused.unsupported_transport++;
    log_refusal(from, auth->user, "442: a transport other than UDP");
    answer_error(relay, from, m, 442, "Unsupported Transport Protocol", auth->key);
    return;
  }
  const HarkStunAttribute *family =
    hark_stun_message_find(m, HARK_STUN_ATTR_REQUESTED_ADDRESS_FAMILY);
  gboolean v6_relay = g_inet_address_get_family(relay->public_ip) == G_SOCKET_FAMILY_IPV6;
  if (family != NULL && family->value[0] != (v6_relay ? 0x02 : 0x01)) {
    relay->refused.unsupported_family++;
    answer_error(relay, from, m, 440, "Address Family not Supported", auth->key);
    return;
  }
  guint refusal = hark_relay_table_admits(relay->table, auth->user);
  /* The relay's bandwidth was used up lately: no new allocations until it has room. */
  if (refusal == 0 && relay->saturated_at_us != 0 &&
      g_get_monotonic_time() - relay->saturated_at_us < SATURATED_US)
    refusal = 508;
  guint16 port = 0;
  g_autoptr(GSocket) socket = NULL;
  if (refusal == 0) {
    socket =
      open_relayed(relay, hark_stun_message_find(m, HARK_STUN_ATTR_EVEN_PORT) != NULL, &port);
    if (socket == NULL)
      refusal = 508;
  }
  if (refusal != 0) {
    if (refusal == 486)
      relay->refused.quota++;
    else
      relay->refused.capacity++;
    log_refusal(from, auth->user,
                refusal == 486 ? "486: the user's allocation quota is used up"
                               : "508: the relay is at capacity");
    answer_error(relay, from, m, refusal,
                 refusal == 486 ? "Allocation Quota Reached" : "Insufficient Capacity", auth->key);
    return;
  }
  guint lifetime = hark_relay_lifetime_granted(requested_lifetime(m), FALSE);
  const HarkStunAttribute *username = hark_stun_message_find(m, HARK_STUN_ATTR_USERNAME);
  g_autofree char *name = g_strndup((const char *)username->value, username->length);
  RelayAllocation *allocation = hark_relay_table_add(
    relay->table, &from->addr, auth->user, name, auth->key, m->transaction_id, lifetime, now_s());
  RelayOwner *owner = g_new0(RelayOwner, 1);
  owner->relay = relay;
  owner->allocation = allocation;
  owner->socket = g_steal_pointer(&socket);
  owner->fd = g_socket_get_fd(owner->socket);
  owner->port = port;
  owner->tcp = from->tcp;
  owner->bucket.tokens = (double)relay->allocation_rate;
  owner->bucket.last_us = g_get_monotonic_time();
  owner->source = g_socket_create_source(owner->socket, G_IO_IN, NULL);
  g_source_set_callback(owner->source, G_SOURCE_FUNC(on_peer_readable), owner, NULL);
  g_source_attach(owner->source, NULL);
  allocation->owner = owner;
  relay->allocations_made++;
  log_allocation(allocation, "allocated for");
  answer_allocated(relay, from, m, allocation);
}

/* The allocation a request is about, with the same username; else answered (437, 441). */
static RelayAllocation *
allocation_of(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m, RelayAuth *auth)
{
  RelayAllocation *allocation = hark_relay_table_find(relay->table, &from->addr);
  if (allocation == NULL) {
    relay->refused.mismatch++;
    log_refusal(from, auth->user, "437: no allocation");
    answer_error(relay, from, m, 437, "Allocation Mismatch", auth->key);
    return NULL;
  }
  const HarkStunAttribute *username = hark_stun_message_find(m, HARK_STUN_ATTR_USERNAME);
  if (strlen(allocation->username) != username->length ||
      memcmp(allocation->username, username->value, username->length) != 0) {
    relay->refused.wrong_user++;
    log_refusal(from, auth->user, "441: not the username of the allocation");
    answer_error(relay, from, m, 441, "Wrong Credentials", auth->key);
    return NULL;
  }
  return allocation;
}

static void
handle_refresh(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m, RelayAuth *auth)
{
  RelayAllocation *allocation = allocation_of(relay, from, m, auth);
  if (allocation == NULL)
    return;
  guint lifetime = hark_relay_lifetime_granted(requested_lifetime(m), TRUE);
  GByteArray *b = answer_new(m, HARK_STUN_CLASS_SUCCESS);
  hark_stun_builder_add_u32(b, HARK_STUN_ATTR_LIFETIME, lifetime);
  answer_send(relay, from, b, auth->key);
  if (lifetime == 0) {
    log_allocation(allocation, "released by");
    hark_relay_table_remove(relay->table, allocation);
  } else {
    hark_relay_allocation_refresh(allocation, lifetime, now_s());
  }
}

/* An XOR-PEER-ADDRESS as a peer the relay may send to: NULL when it may, else the code
 * (400 malformed, 443 family, 403 denied) and why. */
static guint
read_peer(HarkRelay *relay, const HarkStunMessage *m, const HarkStunAttribute *a, RelayAddr *peer,
          const char **why)
{
  g_autoptr(GInetSocketAddress) address = hark_stun_decode_address(a, m->transaction_id, NULL);
  if (address == NULL || !hark_relay_addr_from_inet(address, RELAY_UDP, peer)) {
    *why = "a malformed XOR-PEER-ADDRESS";
    return 400;
  }
  hark_relay_addr_unmap(peer);
  gboolean v6_relay = g_inet_address_get_family(relay->public_ip) == G_SOCKET_FAMILY_IPV6;
  if ((peer->family == 6) != v6_relay) {
    *why = "a peer of the other address family";
    return 443;
  }
  *why = hark_relay_peer_refusal(peer, relay->allow, relay->n_allow);
  return *why != NULL ? 403 : 0;
}

static void
refuse_peer(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m, RelayAuth *auth,
            guint code, const char *why)
{
  if (code == 403)
    relay->refused.forbidden++;
  else if (code == 443)
    relay->refused.unsupported_family++;
  else
    relay->refused.bad_request++;
  g_autofree char *text = g_strdup_printf("%u: peer refused: %s", code, why);
  log_refusal(from, auth->user, text);
  answer_error(relay, from, m, code,
               code == 403   ? "Forbidden"
               : code == 443 ? "Peer Address Family Mismatch"
                             : "Bad Request",
               auth->key);
}

static void
handle_create_permission(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m,
                         RelayAuth *auth)
{
  RelayAllocation *allocation = allocation_of(relay, from, m, auth);
  if (allocation == NULL)
    return;
  /* All or nothing: every peer is checked before any permission is installed. */
  RelayAddr peers[16];
  guint n = 0;
  for (guint i = 0; i < m->attributes->len; i++) {
    const HarkStunAttribute *a = &g_array_index(m->attributes, HarkStunAttribute, i);
    if (a->type != HARK_STUN_ATTR_XOR_PEER_ADDRESS)
      continue;
    if (n == G_N_ELEMENTS(peers)) {
      refuse_peer(relay, from, m, auth, 400, "more than 16 peers in one request");
      return;
    }
    const char *why = NULL;
    guint code = read_peer(relay, m, a, &peers[n], &why);
    if (code != 0) {
      refuse_peer(relay, from, m, auth, code, why);
      return;
    }
    n++;
  }
  if (n == 0) {
    refuse_peer(relay, from, m, auth, 400, "no XOR-PEER-ADDRESS");
    return;
  }
  gint64 now = now_s();
  for (guint i = 0; i < n; i++)
    if (!hark_relay_allocation_permit(allocation, &peers[i], now)) {
      relay->refused.capacity++;
      answer_error(relay, from, m, 508, "Insufficient Capacity: too many permissions", auth->key);
      return;
    }
  answer_send(relay, from, answer_new(m, HARK_STUN_CLASS_SUCCESS), auth->key);
}

static void
handle_channel_bind(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m,
                    RelayAuth *auth)
{
  RelayAllocation *allocation = allocation_of(relay, from, m, auth);
  if (allocation == NULL)
    return;
  const HarkStunAttribute *channel = hark_stun_message_find(m, HARK_STUN_ATTR_CHANNEL_NUMBER);
  const HarkStunAttribute *peer_attribute =
    hark_stun_message_find(m, HARK_STUN_ATTR_XOR_PEER_ADDRESS);
  guint16 number = channel != NULL ? get16(channel->value) : 0;
  if (number < RELAY_CHANNEL_MIN || number > RELAY_CHANNEL_MAX || peer_attribute == NULL) {
    refuse_peer(relay, from, m, auth, 400, "no channel number of 0x4000-0x7FFF, or no peer");
    return;
  }
  RelayAddr peer;
  const char *why = NULL;
  guint code = read_peer(relay, m, peer_attribute, &peer, &why);
  if (code == 0) {
    code = hark_relay_allocation_bind(allocation, number, &peer, now_s());
    why = code == 400 ? "the channel or the peer is bound otherwise" : "too many channels";
  }
  if (code != 0) {
    if (code == 508) {
      relay->refused.capacity++;
      answer_error(relay, from, m, 508, "Insufficient Capacity: too many channels", auth->key);
      return;
    }
    refuse_peer(relay, from, m, auth, code, why);
    return;
  }
  answer_send(relay, from, answer_new(m, HARK_STUN_CLASS_SUCCESS), auth->key);
}

/* ---- the data path ------------------------------------------------------------------ */

/* Whether a datagram of size bytes may pass for this allocation (its own and the relay's
 * bandwidth); counted when not. */
static gboolean
within_bandwidth(HarkRelay *relay, RelayOwner *owner, gsize size)
{
  gint64 now_us = g_get_monotonic_time();
  if (!hark_relay_bucket_take(&owner->bucket, relay->allocation_rate, size, now_us)) {
    relay->refused.bandwidth++;
    return FALSE;
  }
  if (!hark_relay_bucket_take(&relay->total_bucket, relay->total_rate, size, now_us)) {
    relay->refused.bandwidth++;
    relay->saturated_at_us = now_us;
    return FALSE;
  }
  return TRUE;
}

static void
send_to_peer(HarkRelay *relay, RelayAllocation *allocation, const RelayAddr *peer,
             const guint8 *data, gsize size)
{
  RelayOwner *owner = allocation->owner;
  if (!hark_relay_allocation_permitted(allocation, peer, now_s())) {
    relay->refused.no_permission++;
    return;
  }
  if (!within_bandwidth(relay, owner, size))
    return;
  struct sockaddr_storage sa;
  gsize sa_size = hark_relay_addr_to_sockaddr(peer, &sa);
  if (sendto(owner->fd, data, size, MSG_DONTWAIT, (struct sockaddr *)&sa, (socklen_t)sa_size) < 0)
    return;
  allocation->bytes_to_peers += size;
  relay->bytes_to_peers += size;
  relay->datagrams_to_peers++;
}

static void
handle_send(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m)
{
  RelayAllocation *allocation = hark_relay_table_find(relay->table, &from->addr);
  if (allocation == NULL) {
    relay->refused.no_allocation++;
    return;
  }
  const HarkStunAttribute *peer_attribute =
    hark_stun_message_find(m, HARK_STUN_ATTR_XOR_PEER_ADDRESS);
  const HarkStunAttribute *data = hark_stun_message_find(m, HARK_STUN_ATTR_DATA);
  if (peer_attribute == NULL || data == NULL) {
    relay->refused.malformed++;
    return;
  }
  g_autoptr(GInetSocketAddress) address =
    hark_stun_decode_address(peer_attribute, m->transaction_id, NULL);
  RelayAddr peer;
  if (address == NULL || !hark_relay_addr_from_inet(address, RELAY_UDP, &peer)) {
    relay->refused.malformed++;
    return;
  }
  hark_relay_addr_unmap(&peer);
  /* A permission is never given to a denied peer, so this is the same check twice. */
  if (hark_relay_peer_refusal(&peer, relay->allow, relay->n_allow) != NULL) {
    relay->refused.forbidden++;
    return;
  }
  send_to_peer(relay, allocation, &peer, data->value, data->length);
}

/* ChannelData from a client (RFC 8656 12.4): 4 bytes of channel and length, then data. */
static void
handle_channel_data(HarkRelay *relay, const RelayFrom *from, const guint8 *data, gsize size)
{
  guint16 number = get16(data);
  guint16 length = get16(data + 2);
  if (number > RELAY_CHANNEL_MAX || size < 4u + length) {
    relay->refused.malformed++;
    return;
  }
  RelayAllocation *allocation = hark_relay_table_find(relay->table, &from->addr);
  if (allocation == NULL) {
    relay->refused.no_allocation++;
    return;
  }
  const RelayChannel *channel = hark_relay_allocation_channel(allocation, number, now_s());
  if (channel == NULL) {
    relay->refused.unbound_channel++;
    return;
  }
  send_to_peer(relay, allocation, &channel->peer, data + 4, length);
}

/* A datagram from a peer at buffer + HEADROOM: to the client as ChannelData when a
 * channel is bound to the peer, else as a Data indication, built in the room in front. */
static void
relay_from_peer(HarkRelay *relay, RelayOwner *owner, const RelayAddr *peer, gsize size)
{
  RelayAllocation *allocation = owner->allocation;
  gint64 now = now_s();
  /* What cannot go to the client in one message with its header (a STUN length is 16
   * bits) is not relayed. */
  if (size > DATAGRAM_MAX - HEADROOM) {
    relay->refused.malformed++;
    return;
  }
  if (!hark_relay_allocation_permitted(allocation, peer, now)) {
    relay->refused.no_permission++;
    return;
  }
  if (!within_bandwidth(relay, owner, size))
    return;
  guint8 *payload = relay->buffer + HEADROOM;
  gsize padding = (4 - size % 4) % 4;
  memset(payload + size, 0, padding);
  RelayFrom to = { allocation->client, owner->tcp };
  const RelayChannel *channel = hark_relay_allocation_channel_to(allocation, peer, now);
  guint8 *start;
  gsize total;
  if (channel != NULL) {
    start = payload - 4;
    put16(start, channel->number);
    put16(start + 2, (guint16)size);
    /* Over TCP ChannelData is padded to 4 (RFC 8656 12.5); over UDP it need not be. */
    total = 4 + size + (owner->tcp != NULL ? padding : 0);
  } else {
    gsize address_size = peer->family == 4 ? 8 : 20;
    gsize header = HARK_STUN_HEADER_SIZE + 4 + address_size + 4;
    start = payload - header;
    guint8 id[12];
    for (int i = 0; i < 3; i++) {
      guint32 r = g_random_int();
      memcpy(id + 4 * i, &r, 4);
    }
    put16(start, hark_stun_message_type(HARK_STUN_METHOD_DATA, HARK_STUN_CLASS_INDICATION));
    put16(start + 2, (guint16)(header - HARK_STUN_HEADER_SIZE + size + padding));
    guint32 cookie = GUINT32_TO_BE(HARK_STUN_MAGIC_COOKIE);
    memcpy(start + 4, &cookie, 4);
    memcpy(start + 8, id, 12);
    guint8 *a = start + HARK_STUN_HEADER_SIZE;
    put16(a, HARK_STUN_ATTR_XOR_PEER_ADDRESS);
    put16(a + 2, (guint16)address_size);
    a[4] = 0;
    a[5] = peer->family == 4 ? 0x01 : 0x02;
    put16(a + 6, (guint16)(peer->port ^ (HARK_STUN_MAGIC_COOKIE >> 16)));
    guint8 mask[16];
    memcpy(mask, &cookie, 4);
    memcpy(mask + 4, id, 12);
    for (gsize i = 0; i < address_size - 4; i++)
      a[8 + i] = peer->addr[i] ^ mask[i];
    a += 4 + address_size;
    put16(a, HARK_STUN_ATTR_DATA);
    put16(a + 2, (guint16)size);
    total = header + size + padding;
  }
  send_to_client(relay, &to, start, total);
  allocation->bytes_from_peers += size;
  relay->bytes_from_peers += size;
  relay->datagrams_from_peers++;
}

static gboolean
on_peer_readable(GSocket *socket, GIOCondition condition, gpointer data)
{
  RelayOwner *owner = data;
  HarkRelay *relay = owner->relay;
  for (int i = 0; i < BATCH; i++) {
    struct sockaddr_storage sa;
    socklen_t sa_size = sizeof sa;
    ssize_t n = recvfrom(owner->fd, relay->buffer + HEADROOM, DATAGRAM_MAX, MSG_DONTWAIT,
                         (struct sockaddr *)&sa, &sa_size);
    if (n < 0)
      break;
    RelayAddr peer;
    if (!hark_relay_addr_from_sockaddr((struct sockaddr *)&sa, RELAY_UDP, &peer))
      continue;
    relay_from_peer(relay, owner, &peer, (gsize)n);
  }
  return G_SOURCE_CONTINUE;
}

/* ---- requests ----------------------------------------------------------------------- */

static void
answer_binding(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m)
{
  GByteArray *b = answer_new(m, HARK_STUN_CLASS_SUCCESS);
  g_autoptr(GSocketAddress) mapped = hark_relay_addr_to_inet(&from->addr);
  hark_stun_builder_add_address(b, HARK_STUN_ATTR_XOR_MAPPED_ADDRESS, mapped, m->transaction_id,
                                NULL);
  answer_send(relay, from, b, NULL);
}

static void
answer_unknown(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m)
{
  relay->refused.unknown_attribute++;
  GByteArray *b = answer_new(m, HARK_STUN_CLASS_ERROR);
  hark_stun_builder_add_error(b, 420, "Unknown Attribute");
  guint8 list[2 * HARK_STUN_MAX_UNKNOWN];
  guint n = MIN(m->unknown_required->len, HARK_STUN_MAX_UNKNOWN);
  for (guint i = 0; i < n; i++)
    put16(list + 2 * i, g_array_index(m->unknown_required, guint16, i));
  hark_stun_builder_add(b, HARK_STUN_ATTR_UNKNOWN_ATTRIBUTES, list, (guint16)(2 * n));
  answer_send(relay, from, b, NULL);
}

static void
handle_stun(HarkRelay *relay, const RelayFrom *from, const guint8 *data, gsize size)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunMessage) m = hark_stun_parse(bytes, &error);
  if (m == NULL) {
    relay->refused.malformed++;
    log_refusal(from, NULL, error->message);
    return;
  }
  int cls = hark_stun_message_class(m->type);
  guint16 method = hark_stun_message_method(m->type);
  if (cls == HARK_STUN_CLASS_INDICATION && method == HARK_STUN_METHOD_SEND) {
    handle_send(relay, from, m);
    return;
  }
  if (cls != HARK_STUN_CLASS_REQUEST) {
    relay->refused.malformed++;
    return;
  }
  if (m->unknown_required->len > 0) {
    answer_unknown(relay, from, m);
    return;
  }
  if (method == HARK_STUN_METHOD_BINDING) {
    answer_binding(relay, from, m);
    return;
  }
  if (method != HARK_STUN_METHOD_ALLOCATE && method != HARK_STUN_METHOD_REFRESH &&
      method != HARK_STUN_METHOD_CREATE_PERMISSION && method != HARK_STUN_METHOD_CHANNEL_BIND) {
    relay->refused.bad_request++;
    answer_error(relay, from, m, 400, "Bad Request: unknown method", NULL);
    return;
  }
  RelayAuth auth = { 0 };
  if (!authenticate(relay, from, m, method == HARK_STUN_METHOD_ALLOCATE, &auth))
    return;
  switch (method) {
  case HARK_STUN_METHOD_ALLOCATE:
    handle_allocate(relay, from, m, &auth);
    break;
  case HARK_STUN_METHOD_REFRESH:
    handle_refresh(relay, from, m, &auth);
    break;
  case HARK_STUN_METHOD_CREATE_PERMISSION:
    handle_create_permission(relay, from, m, &auth);
    break;
  default:
    handle_channel_bind(relay, from, m, &auth);
  }
  auth_clear(&auth);
}

static void
handle_message(HarkRelay *relay, const RelayFrom *from, const guint8 *data, gsize size)
{
  if (size >= 4 && (data[0] & 0xC0) == 0x40)
    handle_channel_data(relay, from, data, size);
  else
    handle_stun(relay, from, data, size);
}

void
hark_relay_receive_udp(HarkRelay *relay, const guint8 *data, gsize size,
                       const struct sockaddr *from)
{
  RelayFrom source = { .tcp = NULL };
  if (!hark_relay_addr_from_sockaddr(from, RELAY_UDP, &source.addr))
    return;
  handle_message(relay, &source, data, size);
}

static gboolean
on_udp_readable(GSocket *socket, GIOCondition condition, gpointer data)
{
  HarkRelay *relay = data;
  for (int i = 0; i < BATCH; i++) {
    struct sockaddr_storage sa;
    socklen_t sa_size = sizeof sa;
    /* Into the payload room, so a ChannelData's data is where a peer's would be. */
    ssize_t n = recvfrom(relay->udp_fd, relay->buffer + HEADROOM, DATAGRAM_MAX, MSG_DONTWAIT,
                         (struct sockaddr *)&sa, &sa_size);
    if (n < 0)
      break;
    hark_relay_receive_udp(relay, relay->buffer + HEADROOM, (gsize)n, (struct sockaddr *)&sa);
  }
  return G_SOURCE_CONTINUE;
}

/* ---- TCP (RFC 8656 3.1: the same messages on a stream, ChannelData padded to 4) ----- */

/* Writes without blocking: bytes written, 0 when it would block, -1 on an error. */
static gssize
tcp_write(RelayTcp *tcp, const guint8 *data, gsize size)
{
  g_autoptr(GError) error = NULL;
  gssize n = g_pollable_output_stream_write_nonblocking(tcp->output, data, size, NULL, &error);
  if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return 0;
  return n;
}

static gboolean
on_tcp_writable(GObject *stream, gpointer data)
{
  RelayTcp *tcp = data;
  while (tcp->out->len > 0) {
    gssize n = tcp_write(tcp, tcp->out->data, tcp->out->len);
    if (n <= 0)
      return G_SOURCE_CONTINUE; /* an error shows on the reading side too, which closes */
    g_byte_array_remove_range(tcp->out, 0, (guint)n);
  }
  g_source_unref(tcp->out_source);
  tcp->out_source = NULL;
  return G_SOURCE_REMOVE;
}

static void
tcp_send(RelayTcp *tcp, const guint8 *data, gsize size)
{
  if (tcp->out->len == 0) {
    gssize n = tcp_write(tcp, data, size);
    if (n == (gssize)size)
      return;
    if (n > 0) {
      data += n;
      size -= (gsize)n;
    }
  }
  if (tcp->out->len + size > TCP_OUT_MAX) {
    tcp->relay->refused.bandwidth++; /* a client that does not read: its media is dropped */
    return;
  }
  g_byte_array_append(tcp->out, data, (guint)size);
  if (tcp->out_source == NULL) {
    tcp->out_source = g_pollable_output_stream_create_source(tcp->output, NULL);
    g_source_set_callback(tcp->out_source, G_SOURCE_FUNC(on_tcp_writable), tcp, NULL);
    g_source_attach(tcp->out_source, NULL);
  }
}

/* The size of the frame at the start of data, 0 while incomplete, -1 when it is neither
 * STUN nor ChannelData (the stream cannot be followed any further). */
static gssize
tcp_frame_size(const guint8 *data, gsize size)
{
  if (size < 4)
    return 0;
  gsize frame;
  if ((data[0] & 0xC0) == 0x40)
    frame = 4 + (((gsize)get16(data + 2) + 3) & ~(gsize)3);
  else if ((data[0] & 0xC0) == 0)
    frame = HARK_STUN_HEADER_SIZE + get16(data + 2);
  else
    return -1;
  return frame <= size ? (gssize)frame : 0;
}

static gboolean
on_tcp_readable(GObject *stream, gpointer data)
{
  RelayTcp *tcp = data;
  HarkRelay *relay = tcp->relay;
  g_autoptr(GError) error = NULL;
  gssize n = g_pollable_input_stream_read_nonblocking(tcp->input, tcp->in + tcp->in_len,
                                                      TCP_FRAME_MAX - tcp->in_len, NULL, &error);
  if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE; /* a TLS handshake under way */
  if (n <= 0) {
    tcp_close(tcp);
    return G_SOURCE_REMOVE;
  }
  tcp->in_len += (gsize)n;
  gsize used = 0;
  for (;;) {
    gssize frame = tcp_frame_size(tcp->in + used, tcp->in_len - used);
    if (frame < 0) {
      relay->refused.malformed++;
      log_refusal(&(RelayFrom){ tcp->client, tcp }, NULL, "neither STUN nor ChannelData on TCP");
      tcp_close(tcp);
      return G_SOURCE_REMOVE;
    }
    if (frame == 0)
      break;
    RelayFrom from = { tcp->client, tcp };
    handle_message(relay, &from, tcp->in + used, (gsize)frame);
    used += (gsize)frame;
  }
  memmove(tcp->in, tcp->in + used, tcp->in_len - used);
  tcp->in_len -= used;
  return G_SOURCE_CONTINUE;
}

static void
tcp_free(RelayTcp *tcp)
{
  if (tcp->source != NULL) {
    g_source_destroy(tcp->source);
    g_source_unref(tcp->source);
  }
  if (tcp->out_source != NULL) {
    g_source_destroy(tcp->out_source);
    g_source_unref(tcp->out_source);
  }
  g_io_stream_close(tcp->stream, NULL, NULL);
  g_object_unref(tcp->stream);
  g_byte_array_unref(tcp->out);
  g_free(tcp->in);
  g_free(tcp);
}

/* The connection is gone, and with it its allocation (RFC 8656 3.1). */
static void
tcp_close(RelayTcp *tcp)
{
  HarkRelay *relay = tcp->relay;
  RelayAllocation *allocation = hark_relay_table_find(relay->table, &tcp->client);
  if (allocation != NULL) {
    log_allocation(allocation, "connection closed by");
    hark_relay_table_remove(relay->table, allocation);
  }
  g_hash_table_remove(relay->tcp_clients, tcp);
}

/* A new client connection, TLS when the relay has a certificate for this listener. */
static void
tcp_open(HarkRelay *relay, GSocket *socket, gboolean tls)
{
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, NULL);
  RelayAddr client;
  if (remote == NULL ||
      !hark_relay_addr_from_inet(G_INET_SOCKET_ADDRESS(remote), RELAY_TCP, &client))
    return;
  if (g_hash_table_size(relay->tcp_clients) >= relay->max_tcp) {
    relay->refused.capacity++;
    return; /* closed as the socket goes */
  }
  g_socket_set_blocking(socket, FALSE);
  g_autoptr(GIOStream) stream = G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
  if (tls) {
    g_autoptr(GError) error = NULL;
    GIOStream *secured = g_tls_server_connection_new(stream, relay->tls_certificate, &error);
    if (secured == NULL) {
      g_debug("relay: no TLS for a client: %s", error->message);
      return;
    }
    g_object_unref(stream);
    stream = secured;
  }
  RelayTcp *tcp = g_new0(RelayTcp, 1);
  tcp->relay = relay;
  tcp->stream = g_steal_pointer(&stream);
  tcp->input = G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(tcp->stream));
  tcp->output = G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(tcp->stream));
  tcp->client = client;
  tcp->opened = now_s();
  tcp->in = g_malloc(TCP_FRAME_MAX);
  tcp->out = g_byte_array_new();
  tcp->source = g_pollable_input_stream_create_source(tcp->input, NULL);
  g_source_set_callback(tcp->source, G_SOURCE_FUNC(on_tcp_readable), tcp, NULL);
  g_source_attach(tcp->source, NULL);
  g_hash_table_add(relay->tcp_clients, tcp);
}

static void
accept_all(HarkRelay *relay, GSocket *listener, gboolean tls)
{
  for (int i = 0; i < BATCH; i++) {
    g_autoptr(GSocket) socket = g_socket_accept(listener, NULL, NULL);
    if (socket == NULL)
      break;
    tcp_open(relay, socket, tls);
  }
}

static gboolean
on_tcp_accept(GSocket *listener, GIOCondition condition, gpointer data)
{
  accept_all(data, listener, FALSE);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_tls_accept(GSocket *listener, GIOCondition condition, gpointer data)
{
  accept_all(data, listener, TRUE);
  return G_SOURCE_CONTINUE;
}

/* ---- the relay ---------------------------------------------------------------------- */

/* TCP clients that hold a connection without an allocation (connection slots are few:
 * the allocation limit and TCP_CONNECTIONS_EXTRA more). */
static void
close_idle_tcp(HarkRelay *relay, gint64 now)
{
  g_autoptr(GPtrArray) idle = g_ptr_array_new();
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, relay->tcp_clients);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    RelayTcp *tcp = key;
    if (now - tcp->opened >= TCP_IDLE_S &&
        hark_relay_table_find(relay->table, &tcp->client) == NULL)
      g_ptr_array_add(idle, tcp);
  }
  for (guint i = 0; i < idle->len; i++) {
    relay->refused.tcp_idle++;
    tcp_close(idle->pdata[i]);
  }
}

static gboolean
on_sweep(gpointer data)
{
  HarkRelay *relay = data;
  gint64 now = now_s();
  guint gone = hark_relay_table_expire(relay->table, now);
  if (gone > 0)
    g_message("relay: %u allocation(s) expired (not refreshed)", gone);
  close_idle_tcp(relay, now);
  return G_SOURCE_CONTINUE;
}

static GSocket *
listen_on(HarkRelay *relay, GSocketType type, guint16 port, GError **error)
{
  g_autoptr(GSocket) socket = g_socket_new(
    g_inet_address_get_family(relay->bind_ip), type,
    type == G_SOCKET_TYPE_DATAGRAM ? G_SOCKET_PROTOCOL_UDP : G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return NULL;
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new(relay->bind_ip, port);
  if (!g_socket_bind(socket, address, type == G_SOCKET_TYPE_STREAM, error))
    return NULL;
  if (type == G_SOCKET_TYPE_STREAM && !g_socket_listen(socket, error))
    return NULL;
  g_socket_set_blocking(socket, FALSE);
  return g_steal_pointer(&socket);
}

static GSource *
watch(GSocket *socket, GSourceFunc func, gpointer data)
{
  GSource *source = g_socket_create_source(socket, G_IO_IN, NULL);
  g_source_set_callback(source, func, data, NULL);
  g_source_attach(source, NULL);
  return source;
}

/* TURN over TLS shows a certificate of the node's own key (Ed25519), made here and
 * signed by itself: TURN clients (libnice, coturn's) check a TURN server by the
 * credentials it accepts, not by a certificate chain, so a self-signed one is what
 * coturn ships too. The private key's PEM exists only while GIO reads it, then is wiped. */
static GTlsCertificate *
tls_certificate(HarkIdentity *identity, const char *host, GError **error)
{
  EVP_PKEY *key = hark_identity_get_private_key(identity);
  X509 *cert = X509_new();
  BIO *bio = BIO_new(BIO_s_mem());
  gboolean ok =
    cert != NULL && bio != NULL && X509_set_version(cert, 2) == 1 &&
    ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)g_random_int_range(1, G_MAXINT32)) == 1 &&
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
    X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600) != NULL &&
    X509_set_pubkey(cert, key) == 1 &&
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)host, -1, -1, 0) == 1 &&
    X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1 &&
    X509_sign(cert, key, NULL) > 0 && PEM_write_bio_X509(bio, cert) == 1 &&
    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1;
  GTlsCertificate *certificate = NULL;
  if (ok) {
    char *data = NULL;
    long size = BIO_get_mem_data(bio, &data);
    g_autofree char *pem = g_strndup(data, (gsize)size);
    explicit_bzero(data, (gsize)size);
    certificate = g_tls_certificate_new_from_pem(pem, -1, error);
    explicit_bzero(pem, (gsize)size);
  } else {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "relay: cannot make a TLS certificate of the node's key (OpenSSL)");
  }
  BIO_free(bio);
  X509_free(cert);
  return certificate;
}

/* TURN over TLS; without it (its port taken) the relay serves UDP and TCP still. */
static void
start_tls(HarkRelay *relay, HarkIdentity *identity, guint16 port)
{
  g_autoptr(GError) error = NULL;
  relay->tls_certificate = tls_certificate(identity, relay->host, &error);
  if (relay->tls_certificate != NULL)
    relay->tls_listener = listen_on(relay, G_SOCKET_TYPE_STREAM, port, &error);
  if (relay->tls_listener == NULL) {
    g_warning("relay: no TURN over TLS on port %u: %s", port, error->message);
    g_clear_object(&relay->tls_certificate);
    return;
  }
  relay->tls_port = port;
  relay->tls_source = watch(relay->tls_listener, G_SOURCE_FUNC(on_tls_accept), relay);
}

HarkRelay *
hark_relay_new(const HarkConfig *config, HarkIdentity *identity, const char *public_host,
               GError **error)
{
  g_autoptr(HarkRelay) relay = g_new0(HarkRelay, 1);
  relay->tcp_clients = g_hash_table_new_full(NULL, NULL, (GDestroyNotify)tcp_free, NULL);
  relay->public_ip = g_inet_address_new_from_string(public_host);
  relay->bind_ip = g_inet_address_new_from_string(config->listen_address);
  if (relay->public_ip == NULL || relay->bind_ip == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "the relay needs literal addresses (public %s, listen %s)", public_host,
                config->listen_address);
    return NULL;
  }
  relay->host = g_strdup(public_host);
  relay->port = (guint16)config->sn_relay_port;
  relay->min_port = (guint)config->sn_relay_min_port;
  relay->max_port = (guint)config->sn_relay_max_port;
  relay->allocation_rate = (guint64)config->sn_relay_allocation_bandwidth;
  relay->total_rate = (guint64)config->sn_relay_bandwidth;
  relay->total_bucket.tokens = (double)relay->total_rate;
  relay->total_bucket.last_us = g_get_monotonic_time();
  relay->unauthenticated.tokens = UNAUTHENTICATED_PER_S;
  relay->unauthenticated.last_us = relay->total_bucket.last_us;
  relay->max_tcp = (guint)config->sn_relay_max_allocations + TCP_CONNECTIONS_EXTRA;
  relay->n_allow = config->sn_relay_allow != NULL ? g_strv_length(config->sn_relay_allow) : 0;
  relay->allow = g_new0(HarkCidr, MAX(relay->n_allow, 1));
  for (gsize i = 0; i < relay->n_allow; i++)
    hark_cidr_parse(config->sn_relay_allow[i], &relay->allow[i]); /* checked by config.c */
  for (gsize i = 0; i < sizeof relay->nonce_key; i++)
    relay->nonce_key[i] = (guint8)g_random_int();
  relay->secret = hark_relay_secret_load(config->state_dir, error);
  if (relay->secret == NULL)
    return NULL;
  relay->table = hark_relay_table_new((guint)config->sn_relay_max_allocations,
                                      (guint)config->sn_relay_max_allocations_per_user, owner_free);
  relay->udp = listen_on(relay, G_SOCKET_TYPE_DATAGRAM, relay->port, error);
  if (relay->udp == NULL) {
    g_prefix_error(error, "relay: UDP port %u: ", relay->port);
    return NULL;
  }
  relay->udp_fd = g_socket_get_fd(relay->udp);
  relay->tcp_listener = listen_on(relay, G_SOCKET_TYPE_STREAM, relay->port, error);
  if (relay->tcp_listener == NULL) {
    g_prefix_error(error, "relay: TCP port %u: ", relay->port);
    return NULL;
  }
  if (identity != NULL && config->sn_relay_tls_port != 0)
    start_tls(relay, identity, (guint16)config->sn_relay_tls_port);
  relay->udp_source = watch(relay->udp, G_SOURCE_FUNC(on_udp_readable), relay);
  relay->tcp_source = watch(relay->tcp_listener, G_SOURCE_FUNC(on_tcp_accept), relay);
  relay->sweep_timer = g_timeout_add_seconds(SWEEP_S, on_sweep, relay);
  g_message("relay: TURN server at %s:%u (UDP and TCP), TLS port %u, for logged-in users, "
            "relaying from ports %u-%u",
            relay->host, relay->port, relay->tls_port, relay->min_port, relay->max_port);
  return g_steal_pointer(&relay);
}

static void
destroy_source(GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy(*source);
  g_clear_pointer(source, g_source_unref);
}

void
hark_relay_free(HarkRelay *relay)
{
  if (relay == NULL)
    return;
  if (relay->sweep_timer != 0)
    g_source_remove(relay->sweep_timer);
  destroy_source(&relay->udp_source);
  destroy_source(&relay->tcp_source);
  destroy_source(&relay->tls_source);
  hark_relay_table_free(relay->table);
  g_hash_table_unref(relay->tcp_clients);
  if (relay->udp != NULL)
    g_socket_close(relay->udp, NULL);
  if (relay->tcp_listener != NULL)
    g_socket_close(relay->tcp_listener, NULL);
  g_clear_object(&relay->udp);
  g_clear_object(&relay->tcp_listener);
  if (relay->tls_listener != NULL)
    g_socket_close(relay->tls_listener, NULL);
  g_clear_object(&relay->tls_listener);
  g_clear_object(&relay->tls_certificate);
  g_clear_pointer(&relay->secret, g_bytes_unref);
  explicit_bzero(relay->nonce_key, sizeof relay->nonce_key);
  g_clear_object(&relay->public_ip);
  g_clear_object(&relay->bind_ip);
  g_free(relay->allow);
  g_free(relay->host);
  g_free(relay);
}

GBytes *
hark_relay_get_secret(HarkRelay *relay)
{
  return relay->secret;
}

guint16
hark_relay_get_port(HarkRelay *relay)
{
  return relay->port;
}

guint16
hark_relay_get_tls_port(HarkRelay *relay)
{
  return relay->tls_port;
}

const char *
hark_relay_get_host(HarkRelay *relay)
{
  return relay->host;
}

static void
count_user(gpointer data, gpointer user_data)
{
  RelayAllocation *allocation = data;
  JsonObject *users = user_data;
  json_object_set_int_member(users, allocation->user,
                             json_object_get_int_member_with_default(users, allocation->user, 0) +
                               1);
}

JsonObject *
hark_relay_describe(HarkRelay *relay)
{
  JsonObject *object = json_object_new();
  json_object_set_string_member(object, "host", relay->host);
  json_object_set_int_member(object, "port", relay->port);
  json_object_set_int_member(object, "tls_port", relay->tls_port);
  json_object_set_int_member(object, "allocations", hark_relay_table_size(relay->table));
  json_object_set_int_member(object, "allocations_made", (gint64)relay->allocations_made);
  json_object_set_int_member(object, "tcp_connections", g_hash_table_size(relay->tcp_clients));
  JsonObject *users = json_object_new();
  hark_relay_table_foreach(relay->table, count_user, users);
  json_object_set_object_member(object, "users", users);
  json_object_set_int_member(object, "bytes_to_peers", (gint64)relay->bytes_to_peers);
  json_object_set_int_member(object, "bytes_from_peers", (gint64)relay->bytes_from_peers);
  json_object_set_int_member(object, "datagrams_to_peers", (gint64)relay->datagrams_to_peers);
  json_object_set_int_member(object, "datagrams_from_peers", (gint64)relay->datagrams_from_peers);
  JsonObject *refused = json_object_new();
  const RelayRefusals *r = &relay->refused;
  const struct {
    const char *name;
    guint64 value;
  } counts[] = {
    { "malformed", r->malformed },
    { "unauthenticated", r->unauthenticated },
    { "wrong_credentials", r->wrong_credentials },
    { "expired_credentials", r->expired_credentials },
    { "stale_nonce", r->stale_nonce },
    { "bad_request", r->bad_request },
    { "unknown_attribute", r->unknown_attribute },
    { "forbidden", r->forbidden },
    { "mismatch", r->mismatch },
    { "wrong_user", r->wrong_user },
    { "unsupported_transport", r->unsupported_transport },
    { "unsupported_family", r->unsupported_family },
    { "quota", r->quota },
    { "capacity", r->capacity },
    { "no_allocation", r->no_allocation },
    { "unbound_channel", r->unbound_channel },
    { "no_permission", r->no_permission },
    { "bandwidth", r->bandwidth },
    { "tcp_idle", r->tcp_idle },
    { "unanswered", r->unanswered },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(counts); i++)
    json_object_set_int_member(refused, counts[i].name, (gint64)counts[i].value);
  json_object_set_object_member(object, "refused", refused);
  return object;
}
