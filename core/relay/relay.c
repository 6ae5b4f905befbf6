/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay.c: the super node's TURN server (RFC 8656; relay.h, docs/protocol.md "TURN").
 *
 * One UDP socket on supernode.relay_port takes the clients' requests (TCP and TLS
 * clients: relay-tcp.c); each allocation has a UDP socket of its own towards peers. Requests are
 * parsed strictly (core/base/stun.c), authenticated with the overlay's REST-API
 * credentials (relay-auth.c) and answered with the RFC's codes; allocations live in
 * relay-table.c. The data path (ChannelData both ways, Data indications) reads and
 * writes the sockets' file descriptors directly into one buffer of the relay, with a
 * free header room in front, so a relayed datagram costs no allocation. Everything runs
 * on the node's main loop; the allocations' sockets are in one epoll set, a single source
 * of the loop, so a wake-up costs what is ready, not what is allocated. */
#include "relay-private.h"

#include "hark/address.h"

#include <errno.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- sending ------------------------------------------------------------------------ */

static void
send_to_client(HarkRelay *relay, const RelayFrom *to, const guint8 *data, gsize size)
{
  if (to->tcp != NULL) {
    hark_relay_tcp_send(to->tcp, data, size);
    return;
  }
  struct sockaddr_storage sa;
  gsize sa_size = hark_relay_addr_to_sockaddr(&to->addr, relay->v6_sockets, &sa);
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

void
hark_relay_log_refusal(const RelayFrom *from, const char *user, const char *what)
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
    hark_relay_log_refusal(from, NULL, "400: MESSAGE-INTEGRITY without USERNAME, REALM and NONCE");
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
    hark_relay_log_refusal(from, NULL, "401: another realm");
    answer_challenge(relay, from, m, 401, "Unauthenticated");
    return FALSE;
  }
  RelayCredential read =
    hark_relay_credential_read(relay->secret, (const char *)username->value, username->length,
                               HARK_RELAY_REALM, allocate ? real_s : 0, &auth->user, auth->key);
  if (read == RELAY_CREDENTIAL_EXPIRED) {
    relay->refused.expired_credentials++;
    g_autofree char *name = g_strndup((const char *)username->value, username->length);
    hark_relay_log_refusal(from, name, "401: the credential has expired");
    answer_challenge(relay, from, m, 401, "Unauthenticated: credential expired");
    return FALSE;
  }
  if (read != RELAY_CREDENTIAL_OK || !hark_stun_check_integrity(m, auth->key, sizeof auth->key)) {
    relay->refused.wrong_credentials++;
    hark_relay_log_refusal(from, auth->user, "401: wrong credential (MESSAGE-INTEGRITY)");
    auth_clear(auth);
    answer_challenge(relay, from, m, 401, "Unauthenticated");
    return FALSE;
  }
  return TRUE;
}

/* ---- allocations -------------------------------------------------------------------- */

static void
owner_free(gpointer data)
{
  RelayOwner *owner = data;
  HarkRelay *relay = owner->relay;
  if (owner->watched) {
    epoll_ctl(relay->epoll_fd, EPOLL_CTL_DEL, owner->fd, NULL);
    /* Freed while the relay works through a batch of ready sockets (a TCP client
     * closed by a send): its later entries must not be used. */
    for (int i = relay->event_next; i < relay->n_events; i++)
      if (relay->events[i].data.ptr == owner)
        relay->events[i].data.ptr = NULL;
    if (relay->reading == owner)
      relay->events_owner_gone = TRUE;
  }
  if (owner->socket != NULL) {
    g_socket_close(owner->socket, NULL);
    g_object_unref(owner->socket);
  }
  g_free(owner);
}

/* Bursts from many clients at once wait in the kernel while the main loop is busy: the
 * default 208 KiB of a UDP socket lost 2 % of 10,000 datagrams/s from 100 sessions.
 * The kernel caps these at net.core.rmem_max and wmem_max. */
static void
grow_buffers(GSocket *socket, int bytes)
{
  g_socket_set_option(socket, SOL_SOCKET, SO_RCVBUF, bytes, NULL);
  g_socket_set_option(socket, SOL_SOCKET, SO_SNDBUF, bytes, NULL);
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
      grow_buffers(socket, RELAYED_BUFFER);
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

void
hark_relay_log_allocation(RelayAllocation *allocation, const char *what)
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
    hark_relay_log_refusal(from, auth->user, "437: an allocation exists for this client already");
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
    hark_relay_log_refusal(from, auth->user, "442: a transport other than UDP");
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
    hark_relay_log_refusal(from, auth->user,
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
  struct epoll_event event = { .events = EPOLLIN, .data.ptr = owner };
  owner->watched = epoll_ctl(relay->epoll_fd, EPOLL_CTL_ADD, owner->fd, &event) == 0;
  if (!owner->watched)
    g_warning("relay: cannot watch a relayed socket: %s", g_strerror(errno));
  allocation->owner = owner;
  relay->allocations_made++;
  hark_relay_log_allocation(allocation, "allocated for");
  answer_allocated(relay, from, m, allocation);
}

/* The allocation a request is about, with the same username; else answered (437, 441). */
static RelayAllocation *
allocation_of(HarkRelay *relay, const RelayFrom *from, const HarkStunMessage *m, RelayAuth *auth)
{
  RelayAllocation *allocation = hark_relay_table_find(relay->table, &from->addr);
  if (allocation == NULL) {
    relay->refused.mismatch++;
    hark_relay_log_refusal(from, auth->user, "437: no allocation");
    answer_error(relay, from, m, 437, "Allocation Mismatch", auth->key);
    return NULL;
  }
  const HarkStunAttribute *username = hark_stun_message_find(m, HARK_STUN_ATTR_USERNAME);
  if (strlen(allocation->username) != username->length ||
      memcmp(allocation->username, username->value, username->length) != 0) {
    relay->refused.wrong_user++;
    hark_relay_log_refusal(from, auth->user, "441: not the username of the allocation");
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
    hark_relay_log_allocation(allocation, "released by");
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
  hark_relay_log_refusal(from, auth->user, text);
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
  gsize sa_size = hark_relay_addr_to_sockaddr(peer, relay->v6_sockets, &sa);
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

/* A datagram from a peer at payload, with HEADROOM free bytes before it: to the client as ChannelData when a
 * channel is bound to the peer, else as a Data indication, built in the room in front. */
static void
relay_from_peer(HarkRelay *relay, RelayOwner *owner, const RelayAddr *peer, guint8 *payload,
                gsize size)
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

/* Reads what waits on fd, up to RECV_BATCH datagrams, in one system call (a drained
 * socket costs no extra call that finds it empty); returns how many, each in its slot at
 * slot + HEADROOM, its sender in relay->from[i]. */
static int
receive_batch(HarkRelay *relay, int fd)
{
  for (int i = 0; i < RECV_BATCH; i++) {
    relay->messages[i].msg_hdr.msg_namelen = sizeof relay->from[i];
    relay->messages[i].msg_hdr.msg_flags = 0;
  }
  int n = recvmmsg(fd, relay->messages, RECV_BATCH, MSG_DONTWAIT, NULL);
  return MAX(n, 0);
}

static guint8 *
batch_payload(HarkRelay *relay, int i)
{
  return relay->slots + (gsize)i * SLOT_SIZE + HEADROOM;
}

static void
read_peers(RelayOwner *owner)
{
  HarkRelay *relay = owner->relay;
  for (int round = 0; round < BATCH / RECV_BATCH; round++) {
    int n = receive_batch(relay, owner->fd);
    for (int i = 0; i < n; i++) {
      RelayAddr peer;
      if (hark_relay_addr_from_sockaddr((struct sockaddr *)&relay->from[i], RELAY_UDP, &peer))
        relay_from_peer(relay, owner, &peer, batch_payload(relay, i), relay->messages[i].msg_len);
      if (relay->events_owner_gone)
        return; /* the owner went with a send to its TCP client */
    }
    if (n < RECV_BATCH)
      return;
  }
}

/* The relayed sockets are watched by one epoll descriptor, itself one source of the main
 * loop: a GSource per allocation made every wake-up of the loop walk (prepare, poll,
 * check) all of them, so the relay's cost grew with its allocations, not its traffic. */
static gboolean
on_peers_readable(gint fd, GIOCondition condition, gpointer data)
{
  HarkRelay *relay = data;
  relay->n_events = epoll_wait(relay->epoll_fd, relay->events, EPOLL_BATCH, 0);
  for (relay->event_next = 0; relay->event_next < relay->n_events;) {
    RelayOwner *owner = relay->events[relay->event_next++].data.ptr;
    if (owner == NULL)
      continue;
    relay->reading = owner;
    relay->events_owner_gone = FALSE;
    read_peers(owner);
  }
  relay->reading = NULL;
  relay->n_events = 0;
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
    hark_relay_log_refusal(from, NULL, error->message);
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

void
hark_relay_handle_message(HarkRelay *relay, const RelayFrom *from, const guint8 *data, gsize size)
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
  hark_relay_handle_message(relay, &source, data, size);
}

static gboolean
on_udp_readable(GSocket *socket, GIOCondition condition, gpointer data)
{
  HarkRelay *relay = data;
  for (int round = 0; round < BATCH / RECV_BATCH; round++) {
    int n = receive_batch(relay, relay->udp_fd);
    for (int i = 0; i < n; i++)
      hark_relay_receive_udp(relay, batch_payload(relay, i), relay->messages[i].msg_len,
                             (struct sockaddr *)&relay->from[i]);
    if (n < RECV_BATCH)
      break;
  }
  return G_SOURCE_CONTINUE;
}

/* ---- the relay ---------------------------------------------------------------------- */

static gboolean
on_sweep(gpointer data)
{
  HarkRelay *relay = data;
  gint64 now = now_s();
  guint gone = hark_relay_table_expire(relay->table, now);
  if (gone > 0)
    g_message("relay: %u allocation(s) expired (not refreshed)", gone);
  hark_relay_tcp_close_idle(relay, now);
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
  if (type == G_SOCKET_TYPE_DATAGRAM)
    grow_buffers(socket, LISTENER_BUFFER);
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

/* TURN over TLS; without it (its port taken) the relay serves UDP and TCP still. */
static void
start_tls(HarkRelay *relay, HarkIdentity *identity, guint16 port)
{
  g_autoptr(GError) error = NULL;
  relay->tls_certificate = hark_relay_tls_certificate(identity, relay->host, &error);
  if (relay->tls_certificate != NULL)
    relay->tls_listener = listen_on(relay, G_SOCKET_TYPE_STREAM, port, &error);
  if (relay->tls_listener == NULL) {
    g_warning("relay: no TURN over TLS on port %u: %s", port, error->message);
    g_clear_object(&relay->tls_certificate);
    return;
  }
  relay->tls_port = port;
  relay->tls_source = watch(relay->tls_listener, G_SOURCE_FUNC(hark_relay_tls_on_accept), relay);
}

HarkRelay *
hark_relay_new(const HarkConfig *config, HarkIdentity *identity, const char *public_host,
               GError **error)
{
  g_autoptr(HarkRelay) relay = g_new0(HarkRelay, 1);
  relay->tcp_clients = g_hash_table_new_full(NULL, NULL, hark_relay_tcp_free, NULL);
  relay->epoll_fd = -1;
  relay->slots = g_malloc((gsize)RECV_BATCH * SLOT_SIZE); /* touched only as far as used */
  for (int i = 0; i < RECV_BATCH; i++) {
    relay->iov[i].iov_base = batch_payload(relay, i);
    relay->iov[i].iov_len = DATAGRAM_MAX;
    relay->messages[i].msg_hdr.msg_iov = &relay->iov[i];
    relay->messages[i].msg_hdr.msg_iovlen = 1;
    relay->messages[i].msg_hdr.msg_name = &relay->from[i];
  }
  relay->public_ip = g_inet_address_new_from_string(public_host);
  relay->bind_ip = g_inet_address_new_from_string(config->listen_address);
  if (relay->public_ip == NULL || relay->bind_ip == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "the relay needs literal addresses (public %s, listen %s)", public_host,
                config->listen_address);
    return NULL;
  }
  relay->host = g_strdup(public_host);
  relay->v6_sockets = g_inet_address_get_family(relay->bind_ip) == G_SOCKET_FAMILY_IPV6;
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
  relay->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (relay->epoll_fd < 0) {
    int code = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(code), "relay: epoll: %s",
                g_strerror(code));
    return NULL;
  }
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
  relay->peers_source = g_unix_fd_source_new(relay->epoll_fd, G_IO_IN);
  g_source_set_callback(relay->peers_source, G_SOURCE_FUNC(on_peers_readable), relay, NULL);
  g_source_attach(relay->peers_source, NULL);
  relay->tcp_source = watch(relay->tcp_listener, G_SOURCE_FUNC(hark_relay_tcp_on_accept), relay);
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
  destroy_source(&relay->peers_source);
  hark_relay_table_free(relay->table);
  if (relay->epoll_fd >= 0)
    close(relay->epoll_fd);
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
  g_free(relay->slots);
  g_free(relay);
}

GBytes *
hark_relay_get_secret(HarkRelay *relay)
{
  return relay->secret;
}

gboolean
hark_relay_is_full(HarkRelay *relay)
{
  if (hark_relay_table_admits(relay->table, "") == 508)
    return TRUE;
  return relay->saturated_at_us != 0 &&
         g_get_monotonic_time() - relay->saturated_at_us < SATURATED_US;
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
