/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-overlay-unit.c: the super node side of the overlay in one process, without a login
 * server, a login client or `hark run` processes. The SN is a real node whose overlay is
 * made on test credentials (test-nodes.c hands the link layer a test CA and a device
 * certificate); the other side is a fake peer: a second node whose links the test drives
 * message by message over a socket pair (docs/testing.md, "Unit tests of links and the
 * overlay").
 *
 * Cases: a client joins (JOIN/JOIN_OK, PING/PONG, an SN_LIST from a client is not
 * learnt), and so does a second, ordinary overlay over tcp on loopback; a full SN redirects (at most 16 entries, itself left out); a peer claiming to
 * be an SN gets no STUN_RELAY and its SN_LIST is not learnt until the SN reached it at the
 * claimed address, then both work and the list lands in the host cache unverified; the
 * admission slots of links that never finished their handshake are given back; a hostile
 * SN whose JOIN_OK asks for a PING every second gets one every network.keepalive_floor s;
 * what a hostile SN answers a TURN_REQUEST with is refused with the reason, and its
 * silence ends the request after 5 s. */
#include "overlay-private.h"
#include "stun.h"
#include "hark/hark.h"
#include "hostile-peer.h"
#include "test-wait.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000

typedef struct {
  HarkTestNet net;
  HarkNode *sn_node;
  HarkOverlay *sn;
  guint16 sn_port;
  HarkOverlay *client; /* an ordinary node's overlay, when a case makes one */
} Fixture;

/* What the fake peer's end of one link saw. */
typedef struct {
  int ups;
  int closes;
  GPtrArray *messages; /* HarkWireMessage* copies */
} Seen;

/* ---- waiting ------------------------------------------------------------------------------ */

static gboolean
set_flag(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main loop until done, for at most WAIT_MS (a timer wakes a loop with nothing
 * else to do): every wait is bounded, none sleeps. */
static gboolean
wait_for(gboolean (*done)(gpointer), gpointer data)
{
  gboolean expired = FALSE;
  guint timer = g_timeout_add(WAIT_MS, set_flag, &expired);
  while (!done(data) && !expired)
    g_main_context_iteration(NULL, TRUE);
  if (!expired)
    g_source_remove(timer);
  return done(data);
}

/* ---- the fake peer's links ---------------------------------------------------------------- */

static void
seen_up(HarkLink *link, gpointer data)
{
  ((Seen *)data)->ups++;
}

static void
seen_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  HarkWireMessage *copy = g_new0(HarkWireMessage, 1);
  copy->type = message->type;
  copy->id = message->id;
  copy->body = g_variant_ref(message->body);
  g_ptr_array_add(((Seen *)data)->messages, copy);
}

static void
seen_closed(HarkLink *link, const GError *error, gpointer data)
{
  ((Seen *)data)->closes++;
}

static const HarkLinkHandler seen_handler = { seen_up, seen_message, seen_closed };

static void
seen_init(Seen *seen)
{
  memset(seen, 0, sizeof *seen);
  seen->messages = g_ptr_array_new_with_free_func((GDestroyNotify)hark_wire_message_free);
}

static void
seen_clear(Seen *seen)
{
  g_ptr_array_unref(seen->messages);
}

static gboolean
is_up(gpointer data)
{
  Seen *seen = data;
  return seen->ups > 0 || seen->closes > 0;
}

static gboolean
has_closed(gpointer data)
{
  return ((Seen *)data)->closes > 0;
}

typedef struct {
  Seen *seen;
  guint count;
} MessageWait;

static gboolean
has_count(gpointer data)
{
  MessageWait *w = data;
  return w->seen->messages->len >= w->count || w->seen->closes > 0;
}

/* The n-th message the fake peer got (waited for). */
static const HarkWireMessage *
nth_message(Seen *seen, guint n)
{
  MessageWait w = { seen, n + 1 };
  g_assert_true(wait_for(has_count, &w));
  g_assert_cmpuint(seen->messages->len, >, n);
  return seen->messages->pdata[n];
}

static GIOStream *
stream_from_fd(int fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new_from_fd(fd, &error);
  g_assert_no_error(error);
  return G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
}

/* A link from node (the fake peer) to the SN over a socket pair, as if accepted by the
 * SN's transport from source:port; the SN's overlay takes its end. */
static HarkLink *
open_to_sn(Fixture *f, HarkNode *node, const char *source, guint16 port, Seen *seen)
{
  int fds[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_autoptr(GError) error = NULL;
  HarkLink *accepted = hark_link_new_for_stream(
    hark_node_get_context(f->sn_node), "tcp", stream_from_fd(fds[1]), FALSE, source, port, &error);
  g_assert_no_error(error);
  g_assert_nonnull(hark_overlay_peer_of(f->sn, accepted));
  seen_init(seen);
  HarkLink *link =
    hark_link_new_for_stream(hark_node_get_context(node), "tcp", stream_from_fd(fds[0]), TRUE,
                             "127.0.0.1", f->sn_port, &error);
  g_assert_no_error(error);
  g_ptr_array_add(f->net.links, link);
  hark_link_set_handler(link, &seen_handler, seen);
  g_assert_true(wait_for(is_up, seen));
  g_assert_cmpint(seen->ups, ==, 1);
  return link;
}

static void
send_message(HarkLink *link, guint16 type, guint64 id, GVariant *body)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_link_send(link, type, id, body, &error));
  g_assert_no_error(error);
}

static GVariant *
client_join(const char *name)
{
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string(name));
  g_variant_builder_add(&dict, "{sv}", "as", g_variant_new_string("client"));
  return g_variant_new("(a{sv})", &dict);
}

/* An SN list of n entries 127.0.<third>.1..n, port 7000, tcp. */
static GVariant *
sn_list(guint third, guint n)
{
  GVariantBuilder list;
  g_variant_builder_init(&list, G_VARIANT_TYPE("a(sqas)"));
  const char *const tcp[] = { "tcp", NULL };
  for (guint i = 1; i <= n; i++) {
    g_autofree char *host = g_strdup_printf("127.0.%u.%u", third, i);
    g_variant_builder_add(&list, "(sq^as)", host, (guint16)7000, tcp);
  }
  return g_variant_new("(@a(sqas))", g_variant_builder_end(&list));
}

static Peer *
only_peer_of_kind(HarkOverlay *overlay, PeerKind kind)
{
  Peer *found = NULL;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (peer->kind == kind) {
      g_assert_null(found);
      found = peer;
    }
  }
  return found;
}

/* ---- the SN ------------------------------------------------------------------------------- */

/* A port of 127.0.0.1 nobody uses right now (type: stream or datagram). */
static guint16
free_port(GSocketType type)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new(G_SOCKET_FAMILY_IPV4, type, 0, &error);
  g_assert_no_error(error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  g_assert_true(g_socket_bind(socket, any, FALSE, &error));
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address(socket, &error);
  g_assert_no_error(error);
  return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  int max_clients = GPOINTER_TO_INT(data);
  hark_test_net_init(&f->net, "hark-overlay-unit-XXXXXX");
  f->sn_port = free_port(G_SOCKET_TYPE_STREAM);
  guint16 alt_port = free_port(G_SOCKET_TYPE_DATAGRAM);
  g_autofree char *network = g_strdup_printf(
    "listen = \"127.0.0.1\"; port = %u; public_address = \"127.0.0.1\";", f->sn_port);
  /* links = 0: the SN opens no links of its own, so every link here is the test's. */
  g_autofree char *groups =
    g_strdup_printf("supernode = { min_uptime = 0; max_load = 10000; links = 0; max_clients = %d;"
                    " stun_alt_port = %u; relay = false; };\n"
                    "plugins = { load = ( { name = \"tcp\"; } ); };\n",
                    max_clients > 0 ? max_clients : 100, alt_port);
  f->sn_node = hark_test_net_node_configured(&f->net, "sn", f->net.ca, f->net.ca,
                                             "supernode = true;", network, groups);
  /* No login client: the overlay's certificate is the one handed to the link layer. */
  g_autoptr(GError) error = NULL;
  f->sn = hark_overlay_new(f->sn_node, NULL, &error);
  g_assert_no_error(error);
  g_assert_nonnull(f->sn);
  hark_overlay_start(f->sn);
  g_assert_true(f->sn->is_sn);
  g_assert_nonnull(f->sn->stun); /* RFC 5780: so a refused STUN_RELAY is refused for trust */
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  hark_overlay_free(f->client);
  hark_overlay_free(f->sn);
  hark_test_net_clear(&f->net);
}

/* ---- the cases ---------------------------------------------------------------------------- */

/* A certified client joins: JOIN_OK answers its JOIN's id, says who the SN is, what it saw
 * and that the client is authenticated; PING gets its PONG; an SN_LIST from a client is
 * not taken into the host cache. */
static void
test_join(Fixture *f, gconstpointer data)
{
  HarkNode *alice = hark_test_net_node(&f->net, "alice", f->net.ca, f->net.ca, NULL);
  Seen seen;
  HarkLink *link = open_to_sn(f, alice, "127.0.0.5", 4000, &seen);
  g_assert_cmpuint(f->sn->unjoined, ==, 1);
  send_message(link, HARK_MSG_JOIN, 41, client_join("alice"));
  const HarkWireMessage *ok = nth_message(&seen, 0);
  g_assert_cmpuint(ok->type, ==, HARK_MSG_JOIN_OK);
  g_assert_cmpuint(ok->id, ==, 41);
  g_autoptr(GVariant) dict = g_variant_get_child_value(ok->body, 0);
  const char *name = NULL, *observed = NULL;
  gboolean authenticated = FALSE;
  g_assert_true(g_variant_lookup(dict, "name", "&s", &name));
  g_assert_cmpstr(name, ==, "sn");
  g_assert_true(g_variant_lookup(dict, "observed", "&s", &observed));
  g_assert_cmpstr(observed, ==, "127.0.0.5:4000");
  g_assert_true(g_variant_lookup(dict, "authenticated", "b", &authenticated));
  g_assert_true(authenticated);
  /* The SN names itself first. */
  g_autoptr(GVariant) sns = g_variant_lookup_value(dict, "sns", G_VARIANT_TYPE("a(sqas)"));
  g_assert_nonnull(sns);
  g_assert_cmpuint(g_variant_n_children(sns), ==, 1);
  const char *host = NULL;
  guint16 port = 0;
  g_variant_get_child(sns, 0, "(&sq@as)", &host, &port, NULL);
  g_assert_cmpstr(host, ==, "127.0.0.1");
  g_assert_cmpuint(port, ==, f->sn_port);

  Peer *client = only_peer_of_kind(f->sn, PEER_CLIENT);
  g_assert_nonnull(client);
  g_assert_cmpstr(client->name, ==, "alice");
  g_assert_cmpuint(f->sn->unjoined, ==, 0); /* the JOIN gave its admission slot back */

  send_message(link, HARK_MSG_PING, 42, g_variant_new("(t)", (guint64)1234));
  const HarkWireMessage *pong = nth_message(&seen, 1);
  g_assert_cmpuint(pong->type, ==, HARK_MSG_PONG);
  g_assert_cmpuint(pong->id, ==, 42);
  guint64 echoed = 0;
  g_variant_get(pong->body, "(t)", &echoed);
  g_assert_cmpuint(echoed, ==, 1234);

  guint cached = hark_host_cache_size(f->sn->cache);
  guint64 unexpected = f->sn->counters.unexpected;
  send_message(link, HARK_MSG_SN_LIST, 43, sn_list(3, 4));
  send_message(link, HARK_MSG_PING, 44, g_variant_new("(t)", (guint64)1)); /* after the SN_LIST */
  g_assert_cmpuint(nth_message(&seen, 2)->id, ==, 44);
  g_assert_cmpuint(f->sn->counters.unexpected, ==, unexpected + 1);
  g_assert_cmpuint(hark_host_cache_size(f->sn->cache), ==, cached);
  g_assert_null(hark_host_cache_lookup(f->sn->cache, "127.0.3.1", 7000));
  g_assert_cmpint(seen.closes, ==, 0);
  seen_clear(&seen);
}

/* max_clients = 1 and 30 SNs known: the second client gets a REDIRECT of at most 16
 * entries, without this SN, and the link ends. */
static void
test_redirect_when_full(Fixture *f, gconstpointer data)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  const char *const tcp[] = { "tcp", NULL };
  for (guint i = 1; i <= 30; i++) {
    g_autofree char *host = g_strdup_printf("127.0.4.%u", i);
    g_assert_true(hark_host_cache_seen(f->sn->cache, host, 7000, tcp, 1000 + i, now));
  }
  HarkNode *alice = hark_test_net_node(&f->net, "alice", f->net.ca, f->net.ca, NULL);
  HarkNode *bob = hark_test_net_node(&f->net, "bob", f->net.ca, f->net.ca, NULL);
  Seen first, second;
  HarkLink *a = open_to_sn(f, alice, "127.0.0.5", 4000, &first);
  send_message(a, HARK_MSG_JOIN, 1, client_join("alice"));
  g_assert_cmpuint(nth_message(&first, 0)->type, ==, HARK_MSG_JOIN_OK);

  HarkLink *b = open_to_sn(f, bob, "127.0.0.6", 4000, &second);
  send_message(b, HARK_MSG_JOIN, 2, client_join("bob"));
  const HarkWireMessage *redirect = nth_message(&second, 0);
  g_assert_cmpuint(redirect->type, ==, HARK_MSG_REDIRECT);
  g_assert_cmpuint(redirect->id, ==, 2);
  g_autoptr(GVariant) list = g_variant_get_child_value(redirect->body, 0);
  /* 16 in a list, the first of which (the SN itself) a redirect leaves out. */
  g_assert_cmpuint(g_variant_n_children(list), ==, HARK_ADDRESS_LIST_MAX - 1);
  for (gsize i = 0; i < g_variant_n_children(list); i++) {
    const char *host = NULL;
    g_variant_get_child(list, i, "(&sq@as)", &host, NULL, NULL);
    g_assert_true(g_str_has_prefix(host, "127.0.4."));
  }
  g_assert_true(wait_for(has_closed, &second));
  g_assert_cmpuint(f->sn->counters.redirected, ==, 1);
  g_assert_nonnull(only_peer_of_kind(f->sn, PEER_CLIENT)); /* alice stays */
  g_assert_cmpint(first.closes, ==, 0);
  seen_clear(&first);
  seen_clear(&second);
}

static GVariant *
peer_join(const char *name, guint16 port)
{
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string(name));
  g_variant_builder_add(&dict, "{sv}", "as", g_variant_new_string("peer"));
  g_variant_builder_add(&dict, "{sv}", "host", g_variant_new_string("127.0.0.1"));
  g_variant_builder_add(&dict, "{sv}", "port", g_variant_new_uint16(port));
  const char *const tcp[] = { "tcp", NULL };
  g_variant_builder_add(&dict, "{sv}", "transports", g_variant_new_strv(tcp, -1));
  return g_variant_new("(a{sv})", &dict);
}

static GVariant *
stun_relay(void)
{
  static const guint8 tid[HARK_STUN_TRANSACTION_ID_SIZE] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
  };
  /* A client at 127.0.0.2 (not the SN's own address): answer it from the second port. */
  return g_variant_new("(sqqb@ay)", "127.0.0.2", (guint16)9, (guint16)0, TRUE,
                       g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, tid, sizeof tid, 1));
}

static gboolean
claim_settled(gpointer data)
{
  HarkOverlay *overlay = data;
  Peer *peer = only_peer_of_kind(overlay, PEER_SN);
  return peer == NULL || hark_overlay_is_verified_sn(peer);
}

/* A peer that JOINs as an SN is only an SN by its own word: its STUN_RELAY is refused and
 * its SN_LIST not learnt. Once the SN reached it at the claimed address (a link of the
 * SN's own to the fake peer's tcp port, showing the same device), both are taken, and
 * the listed SNs land in the host cache as heard of, not heard from. */
static void
test_claimed_sn(Fixture *f, gconstpointer data)
{
  HarkNode *sn2 = hark_test_net_node(&f->net, "sn2", f->net.ca, f->net.ca,
                                     "plugins = { load = ( { name = \"tcp\"; } ); };\n");
  HarkRegistration *tcp = hark_test_transport(sn2, "tcp");
  const HarkTransportInterface *iface = tcp->iface;
  g_autoptr(GError) error = NULL;
  g_assert_true(iface->listen(tcp->instance, "127.0.0.1", 0, &error));
  g_assert_no_error(error);
  guint16 sn2_port = iface->local_port(tcp->instance);
  g_assert_cmpuint(sn2_port, !=, 0);

  Seen seen;
  HarkLink *link = open_to_sn(f, sn2, "127.0.0.1", 5000, &seen);
  /* All three in one go: the SN reads them before its check of the claim can finish. */
  send_message(link, HARK_MSG_JOIN, 1, peer_join("sn2", sn2_port));
  send_message(link, HARK_MSG_STUN_RELAY, 2, stun_relay());
  send_message(link, HARK_MSG_SN_LIST, 3, sn_list(5, 3));
  send_message(link, HARK_MSG_PING, 4, g_variant_new("(t)", (guint64)1));
  const HarkWireMessage *ok = nth_message(&seen, 0);
  g_assert_cmpuint(ok->type, ==, HARK_MSG_JOIN_OK);
  /* The SN handles a link's messages in order: by the PONG it has handled all four. Its
   * check of the claim takes a TCP connect and a TLS handshake through this same loop,
   * so it cannot have finished before the other three were read; if the order ever
   * changed, this fails instead of passing for the wrong reason. */
  g_assert_cmpuint(nth_message(&seen, 1)->type, ==, HARK_MSG_PONG);
  Peer *claimed = only_peer_of_kind(f->sn, PEER_SN);
  g_assert_nonnull(claimed);
  g_assert_cmpint(claimed->trust, ==, SN_CLAIMED);
  g_assert_cmpuint(f->sn->counters.stun_relay_refused, ==, 1);
  g_assert_cmpuint(f->sn->counters.stun_relay_served, ==, 0);
  g_assert_cmpuint(f->sn->counters.unexpected, ==, 1);
  g_assert_null(hark_host_cache_lookup(f->sn->cache, "127.0.5.1", 7000));

  g_assert_true(wait_for(claim_settled, f->sn));
  Peer *peer = only_peer_of_kind(f->sn, PEER_SN);
  g_assert_nonnull(peer);
  g_assert_true(hark_overlay_is_verified_sn(peer));
  g_assert_cmpuint(f->sn->counters.sn_claims_refused, ==, 0);

  send_message(link, HARK_MSG_STUN_RELAY, 5, stun_relay());
  send_message(link, HARK_MSG_SN_LIST, 6, sn_list(5, 3));
  send_message(link, HARK_MSG_PING, 7, g_variant_new("(t)", (guint64)1)); /* after both */
  const HarkWireMessage *pong = NULL;
  for (guint i = 2; pong == NULL; i++) {
    const HarkWireMessage *m = nth_message(&seen, i);
    if (m->type == HARK_MSG_PONG && m->id == 7)
      pong = m;
  }
  g_assert_cmpuint(f->sn->counters.stun_relay_served, ==, 1);
  g_assert_cmpuint(f->sn->counters.stun_relay_refused, ==, 1);
  for (guint i = 1; i <= 3; i++) {
    g_autofree char *host = g_strdup_printf("127.0.5.%u", i);
    const HarkHostCacheEntry *entry = hark_host_cache_lookup(f->sn->cache, host, 7000);
    g_assert_nonnull(entry);
    g_assert_cmpstr(entry->learnt_from, ==, "127.0.0.1"); /* unverified: heard of */
  }
  /* Heard of is not passed on: the SN's own list does not name them. */
  g_autoptr(GVariant) own = g_variant_ref_sink(hark_overlay_sn_list(f->sn, NULL, 0));
  for (gsize i = 0; i < g_variant_n_children(own); i++) {
    const char *host = NULL;
    g_variant_get_child(own, i, "(&sq@as)", &host, NULL, NULL);
    g_assert_false(g_str_has_prefix(host, "127.0.5."));
  }
  g_assert_cmpint(seen.closes, ==, 0);
  seen_clear(&seen);
}

static gboolean
is_attached(gpointer data)
{
  return ((HarkOverlay *)data)->sn != NULL;
}

/* An ordinary node's overlay, bootstrapped with the SN only, joins it over tcp on
 * loopback: it is attached (PEER_MY_SN), the SN has it as a client, and the SNs the SN
 * named in its JOIN_OK are in the client's host cache as heard of from the SN. */
static void
test_client_overlay_joins(Fixture *f, gconstpointer data)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  const char *const tcp[] = { "tcp", NULL };
  for (guint i = 1; i <= 3; i++) {
    g_autofree char *host = g_strdup_printf("127.0.6.%u", i);
    g_assert_true(hark_host_cache_seen(f->sn->cache, host, 7000, tcp, 1000, now));
  }
  g_autofree char *network =
    g_strdup_printf("join_race_delay_ms = 0; bootstrap = ( { host = \"127.0.0.1\"; port = %u;"
                    " transports = [ \"tcp\" ]; } );",
                    f->sn_port);
  HarkNode *carol =
    hark_test_net_node_configured(&f->net, "carol", f->net.ca, f->net.ca, "supernode = false;",
                                  network, "plugins = { load = ( { name = \"tcp\"; } ); };\n");
  g_autoptr(GError) error = NULL;
  f->client = hark_overlay_new(carol, NULL, &error);
  g_assert_no_error(error);
  hark_overlay_start(f->client);
  g_assert_false(f->client->is_sn);
  g_assert_true(wait_for(is_attached, f->client));
  g_assert_cmpint(f->client->sn->kind, ==, PEER_MY_SN);
  g_assert_cmpstr(f->client->sn->name, ==, "sn");
  Peer *client = only_peer_of_kind(f->sn, PEER_CLIENT);
  g_assert_nonnull(client);
  g_assert_cmpstr(client->name, ==, "carol");
  g_assert_cmpstr(hark_link_get_peer_certificate(client->link)->user, ==, "carol");
  for (guint i = 1; i <= 3; i++) {
    g_autofree char *host = g_strdup_printf("127.0.6.%u", i);
    const HarkHostCacheEntry *entry = hark_host_cache_lookup(f->client->cache, host, 7000);
    g_assert_nonnull(entry);
    g_assert_cmpstr(entry->learnt_from, ==, "127.0.0.1");
  }
  /* The SN itself answered: verified in the client's cache. */
  const HarkHostCacheEntry *sn = hark_host_cache_lookup(f->client->cache, "127.0.0.1", f->sn_port);
  g_assert_nonnull(sn);
  g_assert_null(sn->learnt_from);
}

/* ---- a hostile SN ------------------------------------------------------------------------- */

/* An SN built in this process on the test CA: it answers a JOIN with a JOIN_OK asking for a
 * keep-alive every HOSTILE_KEEPALIVE_S, and every PING with a PONG, and counts the PINGs. */
#define HOSTILE_KEEPALIVE_S 1

typedef struct {
  HarkTestNet *net;
  guint pings;
  GVariant *turn_answer; /* what a TURN_REQUEST gets as TURN_CREDENTIALS; NULL: nothing */
  guint turn_requests;
  HarkLink *link; /* the last link it accepted */
} HostileSn;

static void
hostile_sn_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  HostileSn *sn = data;
  if (message->type == HARK_MSG_PING) {
    sn->pings++;
    hark_link_send(link, HARK_MSG_PONG, message->id, message->body, NULL);
  } else if (message->type == HARK_MSG_TURN_REQUEST) {
    sn->turn_requests++;
    if (sn->turn_answer != NULL)
      hark_link_send(link, HARK_MSG_TURN_CREDENTIALS, message->id, sn->turn_answer, NULL);
  } else if (message->type == HARK_MSG_JOIN) {
    hark_link_send(link, HARK_MSG_JOIN_OK, message->id,
                   g_variant_new_parsed("({'name': <'hostile'>, 'keepalive': <%u>,"
                                        " 'authenticated': <true>},)",
                                        (guint32)HOSTILE_KEEPALIVE_S),
                   NULL);
  }
}

static const HarkLinkHandler hostile_sn_handler = {
  .message = hostile_sn_message,
  .closed = hark_test_peer_closed,
};

static void
hostile_sn_accepted(HarkLink *link, gpointer data)
{
  HostileSn *sn = data;
  hark_link_set_handler(link, &hostile_sn_handler, sn);
  g_ptr_array_add(sn->net->links, link);
  sn->link = link;
}

/* A hostile SN in this process and a real ordinary overlay (f->client) attached to it;
 * the SN's transport, to stop listening at the end. */
static const HarkTransportInterface *
attach_to_hostile(Fixture *f, HostileSn *hostile, HarkRegistration **tcp_out)
{
  HarkNode *sn_node = hark_test_net_node(&f->net, "hostile", f->net.ca, f->net.ca,
                                         "plugins = { load = ( { name = \"tcp\"; } ); };\n");
  hark_link_set_network_handlers(sn_node, hostile_sn_accepted, NULL, hostile);
  HarkRegistration *tcp = hark_test_transport(sn_node, "tcp");
  const HarkTransportInterface *iface = tcp->iface;
  guint16 port = free_port(G_SOCKET_TYPE_STREAM);
  g_autoptr(GError) error = NULL;
  g_assert_true(iface->listen(tcp->instance, "127.0.0.1", port, &error));
  g_assert_no_error(error);

  g_autofree char *network =
    g_strdup_printf("join_race_delay_ms = 0; bootstrap = ( { host = \"127.0.0.1\"; port = %u;"
                    " transports = [ \"tcp\" ]; } );",
                    port);
  HarkNode *carol =
    hark_test_net_node_configured(&f->net, "carol", f->net.ca, f->net.ca, "supernode = false;",
                                  network, "plugins = { load = ( { name = \"tcp\"; } ); };\n");
  f->client = hark_overlay_new(carol, NULL, &error);
  g_assert_no_error(error);
  hark_overlay_start(f->client);
  g_assert_true(wait_for(is_attached, f->client));
  g_assert_cmpstr(f->client->sn->name, ==, "hostile");
  *tcp_out = tcp;
  return iface;
}

/* The client takes the floor (10 s), not the SN's 1 s: nothing to PING for in the seconds
 * a 1 s keep-alive would have sent several, and the raised value is counted. */
static void
test_hostile_sn_keepalive_floored(Fixture *f, gconstpointer data)
{
  /* Static: its links' handler may still run as the fixture frees them. */
  static HostileSn hostile;
  hostile = (HostileSn){ .net = &f->net };
  HarkRegistration *tcp;
  const HarkTransportInterface *iface = attach_to_hostile(f, &hostile, &tcp);
  g_assert_cmpuint(f->client->keepalive_s, ==, 10);
  g_assert_cmpuint(f->client->counters.sn_keepalive_raised, ==, 1);
  /* On purpose: a 1 s keep-alive would have sent two PINGs by now. */
  hark_test_let_time_pass(2500);
  g_assert_cmpuint(hostile.pings, ==, 0);
  g_assert_cmpuint(f->client->pings_sent, ==, 0);
  g_assert_true(f->client->sn != NULL);
  iface->stop_listening(tcp->instance);
}

typedef struct {
  gboolean done;
  HarkTurnCredentials *credentials;
  GError *error;
} TurnAsked;

typedef struct {
  HarkOverlay *overlay;
  guint64 count;
} UnexpectedWait;

static gboolean
unexpected_above(gpointer data)
{
  UnexpectedWait *w = data;
  return w->overlay->counters.unexpected > w->count;
}

static void
on_turn(GObject *source, GAsyncResult *result, gpointer data)
{
  TurnAsked *asked = data;
  asked->credentials = hark_overlay_turn_credentials_finish(NULL, result, &asked->error);
  asked->done = TRUE;
}

/* The client asks its SN for TURN credentials and waits for the outcome (at most 8 s). */
static TurnAsked
ask_turn(HarkOverlay *client)
{
  TurnAsked asked = { 0 };
  hark_overlay_turn_credentials_async(client, NULL, on_turn, &asked);
  g_assert_false(asked.done); /* never before it returns */
  g_assert_true(hark_test_wait_for_flag(&asked.done, 8000));
  return asked;
}

/* What a hostile SN answers a TURN_REQUEST with: a client refuses each bad answer with
 * the reason (counted, not cached; loopback, which test nodes allow, is in fuzz-turn's seeds),
 * takes a good one, counts one it did not ask for, and
 * gives up on an SN that says nothing after 5 s. */
static void
test_hostile_sn_turn(Fixture *f, gconstpointer data)
{
  static HostileSn hostile;
  hostile = (HostileSn){ .net = &f->net };
  HarkRegistration *tcp;
  const HarkTransportInterface *iface = attach_to_hostile(f, &hostile, &tcp);
  gint64 later = g_get_real_time() / G_USEC_PER_SEC + 3600;
  g_autofree char *long_text = g_strnfill(600, 'a');
  struct {
    GVariant *answer;
    const char *why;
  } bad[] = {
    { g_variant_new("(sqssxb)", "0.0.0.0", 3478, "u", "p", later, TRUE), "unspecified" },
    { g_variant_new("(sqssxb)", "turn.example.org", 3478, "u", "p", later, TRUE),
      "not an IP address" },
    { g_variant_new("(sqssxb)", "192.0.2.5", 0, "u", "p", later, TRUE), "port 0" },
    { g_variant_new("(sqssxb)", "192.0.2.5", 3478, long_text, "p", later, TRUE),
      "username is 600 bytes" },
    { g_variant_new("(sqssxb)", "192.0.2.5", 3478, "u\nhark message: forged", "p", later, TRUE),
      "control" },
    { g_variant_new("(sqssxb)", "192.0.2.5", 3478, "u", "", later, TRUE), "password is 0 bytes" },
    { g_variant_new("(sqssxb)", "192.0.2.5", 3478, "u", "p", later - 7200, TRUE), "expire" },
    { g_variant_new("(sqssxb)", "192.0.2.5", 3478, "u", "p", later + 400 * 86400, TRUE), "expire" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    guint64 unexpected = f->client->counters.unexpected;
    hostile.turn_answer = g_variant_ref_sink(bad[i].answer);
    TurnAsked asked = ask_turn(f->client);
    g_clear_pointer(&hostile.turn_answer, g_variant_unref);
    g_assert_null(asked.credentials);
    g_assert_error(asked.error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    if (strstr(asked.error->message, bad[i].why) == NULL)
      g_error("answer %" G_GSIZE_FORMAT ": '%s' does not say '%s'", i, asked.error->message,
              bad[i].why);
    g_assert_null(strchr(asked.error->message, '\n'));
    g_assert_cmpuint(f->client->counters.unexpected, ==, unexpected + 1);
    g_clear_error(&asked.error);
  }
  g_assert_cmpuint(hostile.turn_requests, ==, G_N_ELEMENTS(bad)); /* none was cached */

  /* A good answer is taken, and kept: the next ask does not reach the SN. */
  hostile.turn_answer = g_variant_ref_sink(
    g_variant_new("(sqssxb)", "192.0.2.5", 3478, "1:carol", "secretish", later, FALSE));
  TurnAsked good = ask_turn(f->client);
  g_assert_no_error(good.error);
  g_assert_cmpstr(good.credentials->host, ==, "192.0.2.5");
  g_assert_cmpstr(good.credentials->password, ==, "secretish");
  g_assert_false(good.credentials->tcp);
  TurnAsked cached = ask_turn(f->client);
  g_assert_no_error(cached.error);
  g_assert_cmpuint(hostile.turn_requests, ==, G_N_ELEMENTS(bad) + 1);
  hark_turn_credentials_free(good.credentials);
  hark_turn_credentials_free(cached.credentials);

  /* Credentials nobody asked for are dropped and counted. */
  guint64 unexpected = f->client->counters.unexpected;
  hark_link_send(hostile.link, HARK_MSG_TURN_CREDENTIALS, 999, g_variant_ref(hostile.turn_answer),
                 NULL);
  g_clear_pointer(&hostile.turn_answer, g_variant_unref);
  UnexpectedWait more = { f->client, unexpected };
  g_assert_true(wait_for(unexpected_above, &more));

  /* An SN that says nothing: the request ends after 5 s with the reason. */
  hark_overlay_turn_link_lost(f->client); /* forget the cached answer */
  gint64 start = g_get_monotonic_time();
  TurnAsked silent = ask_turn(f->client);
  g_assert_error(silent.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_nonnull(strstr(silent.error->message, "did not answer within 5 s"));
  g_assert_cmpint(g_get_monotonic_time() - start, >=, 5 * G_USEC_PER_SEC);
  g_clear_error(&silent.error);
  iface->stop_listening(tcp->instance);
}

typedef struct {
  HarkOverlay *overlay;
  guint unjoined;
} UnjoinedWait;

static gboolean
unjoined_is(gpointer data)
{
  UnjoinedWait *w = data;
  return w->overlay->unjoined == w->unjoined;
}

/* An accepted link whose other end never says a word: TRUE when the overlay took it (it
 * holds an admission slot then). A refused link is freed inside the accept handler, so
 * the overlay's peer table tells, not the pointer. */
static gboolean
accept_silent(Fixture *f, const char *source, int *other_end)
{
  int fds[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  *other_end = fds[0];
  guint peers = g_hash_table_size(f->sn->peers);
  g_autoptr(GError) error = NULL;
  hark_link_new_for_stream(hark_node_get_context(f->sn_node), "tcp", stream_from_fd(fds[1]), FALSE,
                           source, 1, &error);
  g_assert_no_error(error);
  return g_hash_table_size(f->sn->peers) == peers + 1;
}

/* 32 handshakes from one address fill that address's slots: the 33rd is refused, one from
 * elsewhere is not. When the 32 fail (their peer goes away mid-handshake) every slot comes
 * back, and the address may try again. */
static void
test_admission_slots(Fixture *f, gconstpointer data)
{
  int silent[OVERLAY_MAX_UNJOINED_PER_SOURCE];
  for (int i = 0; i < OVERLAY_MAX_UNJOINED_PER_SOURCE; i++)
    g_assert_true(accept_silent(f, "127.0.0.9", &silent[i]));
  g_assert_cmpuint(f->sn->unjoined, ==, OVERLAY_MAX_UNJOINED_PER_SOURCE);
  int refused, other;
  g_assert_false(accept_silent(f, "127.0.0.9", &refused));
  g_assert_cmpuint(f->sn->counters.too_many_from_source, ==, 1);
  g_assert_true(accept_silent(f, "127.0.0.10", &other));
  g_assert_cmpuint(f->sn->unjoined, ==, OVERLAY_MAX_UNJOINED_PER_SOURCE + 1);

  for (int i = 0; i < OVERLAY_MAX_UNJOINED_PER_SOURCE; i++)
    close(silent[i]);
  UnjoinedWait w = { f->sn, 1 };
  g_assert_true(wait_for(unjoined_is, &w));
  g_assert_cmpuint(f->sn->counters.handshake_failures, ==, OVERLAY_MAX_UNJOINED_PER_SOURCE);
  g_assert_cmpuint(g_hash_table_size(f->sn->unjoined_by_source), ==, 1);
  int again;
  g_assert_true(accept_silent(f, "127.0.0.9", &again));
  g_assert_cmpuint(f->sn->unjoined, ==, 2);
  g_assert_cmpuint(f->sn->counters.too_many_from_source, ==, 1);
  close(refused);
  close(other);
  close(again);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
#define ADD(path, func, data) \
  g_test_add(path, Fixture, GINT_TO_POINTER(data), fixture_set_up, func, fixture_tear_down)
  ADD("/overlay-unit/join", test_join, 0);
  ADD("/overlay-unit/redirect-when-full", test_redirect_when_full, 1);
  ADD("/overlay-unit/claimed-sn", test_claimed_sn, 0);
  ADD("/overlay-unit/admission-slots", test_admission_slots, 0);
  ADD("/overlay-unit/client-overlay-joins", test_client_overlay_joins, 0);
  ADD("/overlay-unit/hostile-sn-keepalive-floored", test_hostile_sn_keepalive_floored, 0);
  ADD("/overlay-unit/hostile-sn-turn", test_hostile_sn_turn, 0);
  return g_test_run();
}
