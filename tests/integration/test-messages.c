/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-messages.c: instant messages routed through super nodes (core/message/
 * message-route.c), with real nodes in one process: two SNs on loopback (their overlays
 * on test credentials, test-nodes.h), alice and bob clients of sn1, carol a client of
 * sn2, each with its own router. Envelopes are the test double of fake-envelope.h (no
 * cryptography: what the router does with an envelope does not depend on it).
 *
 * Cases: a message from alice reaches bob (same SN) and carol (sn1 forwards to sn2 over an
 * SN link it opens for it) exactly once; a device that is not online is 404 at either SN.
 * Hostile: an envelope in another user's name (400, counted, not delivered), one over the
 * SN's size limit (413), a flood (429 after the burst; the SN goes on serving), a target
 * device the envelope is not sealed for (400), a forged signature (400), MSG_FORWARD from
 * an SN peer whose claim is not verified (503, not delivered) and from a client (dropped,
 * counted). A target SN where nothing listens is 502 at once. */
#include "fake-envelope.h"
#include "hostile-peer.h"
#include "message-route.h"
#include "test-nodes.h"
#include "test-ports.h"
#include "test-wait.h"

#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>

#define WAIT_MS 10000
#define SN_MAX_ENVELOPE 4096
#define SN_BURST 10
#define FLOOD 30

typedef struct {
  HarkNode *node;
  HarkOverlay *overlay;
  HarkMessageRoute *route;
  GPtrArray *got; /* GBytes*: envelopes delivered to it */
} Member;

typedef struct {
  gboolean up;
  GPtrArray *messages; /* HarkWireMessage* (type, id, body copies) */
} Raw;

typedef struct {
  HarkTestNet net;
  guint16 port[2];
  Member sn[2];
  Member alice, bob, carol;
  Raw raw[2]; /* the links the test drives (they may hear more after the case) */
  GSocket *tarpit; /* listens, never accepts: a claimed SN address that stays unchecked */
} Fixture;

/* What one send() was answered. */
typedef struct {
  gboolean done;
  HarkMessageRouteResult result;
  guint code;
  char *text;
} Answer;

/* ---- members ---------------------------------------------------------------------------- */

static void
on_delivered(gpointer data, GBytes *envelope)
{
  Member *member = data;
  g_ptr_array_add(member->got, g_bytes_ref(envelope));
}

static const HarkMessageRouteHooks hooks = { .delivered = on_delivered };

static void
member_route(Member *member, const HarkMessageRouteLimits *limits)
{
  g_autoptr(GError) error = NULL;
  member->overlay = hark_overlay_new(member->node, NULL, &error);
  g_assert_no_error(error);
  g_assert_nonnull(member->overlay);
  member->got = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  member->route = hark_message_route_new(hark_node_get_context(member->node), member->overlay,
                                         &hark_fake_envelope_check, NULL, &hooks, member, limits);
  hark_overlay_start(member->overlay);
}

static void
member_clear(Member *member)
{
  g_clear_pointer(&member->route, hark_message_route_free);
  g_clear_pointer(&member->overlay, hark_overlay_free);
  g_clear_pointer(&member->got, g_ptr_array_unref);
}

static const char *
device_of(Member *member)
{
  return hark_identity_get_fingerprint(member->node->identity);
}

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

static char *
plugins_group(void)
{
  return g_strdup_printf("plugins = { path = [ \"%s\" ]; load = ( { name = \"tcp\"; } ); };\n",
                         g_getenv("HARK_TEST_PLUGIN_DIR"));
}

/* An SN at 127.0.0.1:port that opens no SN links of its own (links = 0): the only one
 * here is the one its router opens. */
static void
start_sn(Fixture *f, guint i)
{
  f->port[i] = free_port(G_SOCKET_TYPE_STREAM);
  g_autofree char *name = g_strdup_printf("sn%u", i + 1);
  g_autofree char *network = g_strdup_printf(
    "listen = \"127.0.0.1\"; port = %u; public_address = \"127.0.0.1\";", f->port[i]);
  g_autofree char *plugins = plugins_group();
  /* relay = false: the SNs share 127.0.0.1, where a second TURN server on 3478 could not
   * bind, and its warning is fatal in this process. */
  g_autofree char *groups =
    g_strdup_printf("supernode = { min_uptime = 0; max_load = 10000; links = 0;"
                    " stun_alt_port = %u; relay = false; };\n%s",
                    free_port(G_SOCKET_TYPE_DATAGRAM), plugins);
  f->sn[i].node = hark_test_net_node_configured(&f->net, name, f->net.ca, f->net.ca,
                                                "supernode = true;", network, groups);
  const HarkMessageRouteLimits limits = { .max_envelope = SN_MAX_ENVELOPE,
                                          .rate = 1,
                                          .burst = SN_BURST };
  member_route(&f->sn[i], &limits);
  g_assert_true(hark_overlay_is_super_node(f->sn[i].overlay));
}

static gboolean
is_attached(gpointer data)
{
  return hark_overlay_sn_link(data) != NULL;
}

static void
start_client(Fixture *f, Member *member, const char *name, guint sn)
{
  g_autofree char *network =
    g_strdup_printf("join_race_delay_ms = 0; bootstrap = ( { host = \"127.0.0.1\"; port = %u;"
                    " transports = [ \"tcp\" ]; } );",
                    f->port[sn]);
  g_autofree char *plugins = plugins_group();
  member->node = hark_test_net_node_configured(&f->net, name, f->net.ca, f->net.ca,
                                               "supernode = false;", network, plugins);
  member_route(member, NULL);
  g_assert_true(hark_test_wait_for(is_attached, member->overlay, hark_test_timeout(WAIT_MS)));
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  hark_test_net_init(&f->net, "hark-messages-XXXXXX");
  start_sn(f, 0);
  start_sn(f, 1);
  start_client(f, &f->alice, "alice", 0);
  start_client(f, &f->bob, "bob", 0);
  start_client(f, &f->carol, "carol", 1);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  member_clear(&f->alice);
  member_clear(&f->bob);
  member_clear(&f->carol);
  member_clear(&f->sn[0]);
  member_clear(&f->sn[1]);
  hark_test_net_clear(&f->net);
  for (guint i = 0; i < G_N_ELEMENTS(f->raw); i++)
    g_clear_pointer(&f->raw[i].messages, g_ptr_array_unref);
  g_clear_object(&f->tarpit);
}

/* ---- sending ---------------------------------------------------------------------------- */

static void
on_sent(HarkMessageRouteResult result, guint code, const char *text, gpointer data)
{
  Answer *answer = data;
  g_assert_false(answer->done); /* exactly once */
  answer->done = TRUE;
  answer->result = result;
  answer->code = code;
  answer->text = g_strdup(text);
}

static gboolean
is_answered(gpointer data)
{
  return ((Answer *)data)->done;
}

static char *
sn_address(Fixture *f, guint sn)
{
  return g_strdup_printf("127.0.0.1:%u", f->port[sn]);
}

/* from sends envelope to device at SN sn; returns once answered. */
static Answer
send_to(Fixture *f, Member *from, const char *device, guint sn, GBytes *envelope)
{
  Answer answer = { 0 };
  g_autofree char *address = sn_address(f, sn);
  hark_message_route_send(from->route, device, address, envelope, on_sent, &answer);
  g_assert_false(answer.done); /* never from inside send() */
  g_assert_true(hark_test_wait_for(is_answered, &answer, hark_test_timeout(WAIT_MS)));
  return answer;
}

/* An envelope of sender's (as certified) for the recipients. */
static GBytes *
envelope_of(Member *sender, const char *user, const char *const *recipients, gsize padding)
{
  return hark_fake_envelope_new(user, device_of(sender), recipients, TRUE, padding);
}

static gint64
counter(Member *member, const char *name)
{
  g_autoptr(JsonObject) snapshot = hark_message_route_snapshot(member->route);
  return json_object_get_int_member(snapshot, name);
}

static gint64
refused(Member *member, const char *reason)
{
  g_autoptr(JsonObject) snapshot = hark_message_route_snapshot(member->route);
  JsonObject *by_reason = json_object_get_object_member(snapshot, "refused");
  return json_object_get_int_member_with_default(by_reason, reason, 0);
}

typedef struct {
  Member *member;
  guint n;
} GotWait;

static gboolean
has_got(gpointer data)
{
  GotWait *w = data;
  return w->member->got->len >= w->n;
}

static void
wait_got(Member *member, guint n)
{
  GotWait w = { member, n };
  g_assert_true(hark_test_wait_for(has_got, &w, hark_test_timeout(WAIT_MS)));
}

static void
answer_clear(Answer *answer)
{
  g_clear_pointer(&answer->text, g_free);
}

/* ---- the cases -------------------------------------------------------------------------- */

/* alice -> bob through sn1, then alice -> carol through sn1 and sn2: each arrives once,
 * as sent; the SNs count what they did. A second message to each comes after the first,
 * so the first was not delivered twice. */
static void
test_delivered(Fixture *f, gconstpointer data)
{
  const char *to_bob[] = { device_of(&f->bob), device_of(&f->alice), NULL };
  const char *to_carol[] = { device_of(&f->carol), NULL };
  for (guint round = 1; round <= 2; round++) {
    g_autoptr(GBytes) for_bob = envelope_of(&f->alice, "alice", to_bob, round);
    Answer answer = send_to(f, &f->alice, device_of(&f->bob), 0, for_bob);
    g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_DELIVERED);
    g_assert_null(answer.text);
    wait_got(&f->bob, round);
    g_assert_true(g_bytes_equal(f->bob.got->pdata[round - 1], for_bob));

    g_autoptr(GBytes) for_carol = envelope_of(&f->alice, "alice", to_carol, round);
    answer = send_to(f, &f->alice, device_of(&f->carol), 1, for_carol);
    g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_DELIVERED);
    wait_got(&f->carol, round);
    g_assert_true(g_bytes_equal(f->carol.got->pdata[round - 1], for_carol));
  }
  g_assert_cmpuint(f->bob.got->len, ==, 2);
  g_assert_cmpuint(f->carol.got->len, ==, 2);
  g_assert_cmpuint(f->alice.got->len, ==, 0); /* a recipient, but not the target */
  g_assert_cmpint(counter(&f->sn[0], "routed"), ==, 4);
  g_assert_cmpint(counter(&f->sn[0], "delivered"), ==, 2);
  g_assert_cmpint(counter(&f->sn[0], "forwarded"), ==, 2);
  g_assert_cmpint(counter(&f->sn[1], "delivered"), ==, 2);
  g_assert_cmpint(counter(&f->alice, "sent"), ==, 4);
  g_assert_cmpint(counter(&f->carol, "received"), ==, 2);
  /* One SN link carried both forwards. */
  g_autoptr(GPtrArray) links = hark_overlay_sn_peer_links(f->sn[0].overlay);
  g_assert_cmpuint(links->len, ==, 1);
}

/* A device that is nowhere: 404 from sn1 itself, and from sn2 through sn1. */
static void
test_not_online(Fixture *f, gconstpointer data)
{
  const char *nobody = "0000000000000000000000000000000000000000000000000000000000000000";
  const char *to_nobody[] = { nobody, NULL };
  g_autoptr(GBytes) envelope = envelope_of(&f->alice, "alice", to_nobody, 0);
  for (guint sn = 0; sn < 2; sn++) {
    Answer answer = send_to(f, &f->alice, nobody, sn, envelope);
    g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_NOT_ONLINE);
    g_assert_cmpuint(answer.code, ==, 404);
    answer_clear(&answer);
  }
  g_assert_cmpint(refused(&f->sn[0], "not_online"), ==, 1);
  g_assert_cmpint(refused(&f->sn[1], "not_online"), ==, 1);
}

/* alice sends in bob's name (his user and device): refused, counted, nobody gets it;
 * the same with her own device but bob's user name. */
static void
test_not_yours(Fixture *f, gconstpointer data)
{
  const char *to_carol[] = { device_of(&f->carol), NULL };
  g_autoptr(GBytes) as_bob = envelope_of(&f->bob, "bob", to_carol, 0);
  g_autoptr(GBytes) user_bob = envelope_of(&f->alice, "bob", to_carol, 0);
  GBytes *forged[] = { as_bob, user_bob };
  for (guint i = 0; i < G_N_ELEMENTS(forged); i++) {
    for (guint sn = 0; sn < 2; sn++) {
      Answer answer = send_to(f, &f->alice, device_of(&f->carol), sn, forged[i]);
      g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_REFUSED);
      g_assert_cmpuint(answer.code, ==, 400);
      g_assert_nonnull(strstr(answer.text, "not yours"));
      answer_clear(&answer);
    }
  }
  g_assert_cmpint(refused(&f->sn[0], "not_yours"), ==, 4);
  g_assert_cmpint(counter(&f->sn[0], "forwarded"), ==, 0);
  g_assert_cmpuint(f->carol.got->len, ==, 0);
}

/* Over the SN's limit: 413 before anything else is looked at; the limit itself passes. */
static void
test_too_large(Fixture *f, gconstpointer data)
{
  const char *to_bob[] = { device_of(&f->bob), NULL };
  g_autoptr(GBytes) big = envelope_of(&f->alice, "alice", to_bob, SN_MAX_ENVELOPE);
  Answer answer = send_to(f, &f->alice, device_of(&f->bob), 0, big);
  g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_REFUSED);
  g_assert_cmpuint(answer.code, ==, 413);
  answer_clear(&answer);
  g_assert_cmpint(refused(&f->sn[0], "too_large"), ==, 1);
  g_autoptr(GBytes) fits = envelope_of(&f->alice, "alice", to_bob, SN_MAX_ENVELOPE - 400);
  g_assert_cmpuint(g_bytes_get_size(fits), <=, SN_MAX_ENVELOPE);
  answer = send_to(f, &f->alice, device_of(&f->bob), 0, fits);
  g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_DELIVERED);
  wait_got(&f->bob, 1);
  g_assert_cmpuint(f->bob.got->len, ==, 1);
}

typedef struct {
  Answer answers[FLOOD];
} Flood;

static gboolean
flood_answered(gpointer data)
{
  Flood *flood = data;
  for (guint i = 0; i < FLOOD; i++)
    if (!flood->answers[i].done)
      return FALSE;
  return TRUE;
}

/* FLOOD messages at once against a burst of SN_BURST at 1 a second: the rest is 429,
 * counted; bob got exactly what was answered delivered; the SN still serves bob. */
static void
test_flood(Fixture *f, gconstpointer data)
{
  const char *to_bob[] = { device_of(&f->bob), NULL };
  g_autoptr(GBytes) envelope = envelope_of(&f->alice, "alice", to_bob, 0);
  g_autofree char *sn1 = sn_address(f, 0);
  Flood flood = { 0 };
  gint64 start = g_get_monotonic_time();
  for (guint i = 0; i < FLOOD; i++)
    hark_message_route_send(f->alice.route, device_of(&f->bob), sn1, envelope, on_sent,
                            &flood.answers[i]);
  g_assert_true(hark_test_wait_for(flood_answered, &flood, hark_test_timeout(WAIT_MS)));
  double seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
  guint delivered = 0, limited = 0;
  for (guint i = 0; i < FLOOD; i++) {
    if (flood.answers[i].result == HARK_MESSAGE_ROUTE_DELIVERED)
      delivered++;
    else if (flood.answers[i].code == 429)
      limited++;
    answer_clear(&flood.answers[i]);
  }
  g_assert_cmpuint(delivered + limited, ==, FLOOD);
  g_assert_cmpuint(delivered, >=, SN_BURST);
  g_assert_cmpfloat(delivered, <=, SN_BURST + seconds + 1);
  g_assert_cmpint(refused(&f->sn[0], "rate"), ==, limited);
  wait_got(&f->bob, delivered);
  /* Another client's bucket is its own. */
  const char *to_alice[] = { device_of(&f->alice), NULL };
  g_autoptr(GBytes) reply = envelope_of(&f->bob, "bob", to_alice, 0);
  Answer answer = send_to(f, &f->bob, device_of(&f->alice), 0, reply);
  g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_DELIVERED);
  wait_got(&f->alice, 1);
  g_assert_cmpuint(f->bob.got->len, ==, delivered);
}

/* The target is not among the envelope's recipients (an SN must not become a mail
 * drop for envelopes nobody there can open), and a signature that does not verify. */
static void
test_bad_envelopes(Fixture *f, gconstpointer data)
{
  const char *to_carol[] = { device_of(&f->carol), NULL };
  g_autoptr(GBytes) for_carol = envelope_of(&f->alice, "alice", to_carol, 0);
  Answer answer = send_to(f, &f->alice, device_of(&f->bob), 0, for_carol);
  g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_REFUSED);
  g_assert_cmpuint(answer.code, ==, 400);
  answer_clear(&answer);
  g_assert_cmpint(refused(&f->sn[0], "not_a_recipient"), ==, 1);

  const char *to_bob[] = { device_of(&f->bob), NULL };
  g_autoptr(GBytes) forged =
    hark_fake_envelope_new("alice", device_of(&f->alice), to_bob, FALSE, 0);
  answer = send_to(f, &f->alice, device_of(&f->bob), 0, forged);
  g_assert_cmpuint(answer.code, ==, 400);
  answer_clear(&answer);
  g_assert_cmpint(refused(&f->sn[0], "forged"), ==, 1);

  g_autoptr(GBytes) garbage = g_bytes_new_static("not an envelope", 15);
  answer = send_to(f, &f->alice, device_of(&f->bob), 0, garbage);
  g_assert_cmpuint(answer.code, ==, 400);
  answer_clear(&answer);
  g_assert_cmpint(refused(&f->sn[0], "malformed"), ==, 1);
  g_assert_cmpuint(f->bob.got->len, ==, 0);
}

/* ---- a raw peer: a certified node's link to sn1 that the test drives ------------------- */

static void
raw_up(HarkLink *link, gpointer data)
{
  ((Raw *)data)->up = TRUE;
}

static void
raw_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  HarkWireMessage *copy = g_new0(HarkWireMessage, 1);
  *copy = *message;
  copy->body = g_variant_ref(message->body);
  g_ptr_array_add(((Raw *)data)->messages, copy);
}

static void
raw_closed(HarkLink *link, const GError *error, gpointer data)
{
}

static const HarkLinkHandler raw_handler = { raw_up, raw_message, raw_closed };

static HarkLink *
raw_link(Fixture *f, const char *name, Raw *raw)
{
  HarkNode *node = hark_test_net_node(&f->net, name, f->net.ca, f->net.ca, NULL);
  int fds[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) theirs = g_socket_new_from_fd(fds[1], &error);
  g_assert_no_error(error);
  hark_link_new_for_stream(hark_node_get_context(f->sn[0].node), "tcp",
                           G_IO_STREAM(g_socket_connection_factory_create_connection(theirs)),
                           FALSE, "127.0.0.9", 4000, &error);
  g_assert_no_error(error);
  g_autoptr(GSocket) ours = g_socket_new_from_fd(fds[0], &error);
  g_assert_no_error(error);
  HarkLink *link =
    hark_link_new_for_stream(hark_node_get_context(node), "tcp",
                             G_IO_STREAM(g_socket_connection_factory_create_connection(ours)), TRUE,
                             "127.0.0.1", f->port[0], &error);
  g_assert_no_error(error);
  g_ptr_array_add(f->net.links, link);
  raw->messages = g_ptr_array_new_with_free_func((GDestroyNotify)hark_wire_message_free);
  hark_link_set_handler(link, &raw_handler, raw);
  g_assert_true(hark_test_wait_for_flag(&raw->up, hark_test_timeout(WAIT_MS)));
  return link;
}

typedef struct {
  Raw *raw;
  guint16 type;
  guint64 id;
} RawWait;

static gboolean
raw_has(gpointer data)
{
  RawWait *w = data;
  for (guint i = 0; i < w->raw->messages->len; i++) {
    const HarkWireMessage *m = w->raw->messages->pdata[i];
    if (m->type == w->type && m->id == w->id)
      return TRUE;
  }
  return FALSE;
}

static const HarkWireMessage *
raw_wait(Raw *raw, guint16 type, guint64 id)
{
  RawWait w = { raw, type, id };
  g_assert_true(hark_test_wait_for(raw_has, &w, hark_test_timeout(WAIT_MS)));
  for (guint i = 0; i < raw->messages->len; i++) {
    const HarkWireMessage *m = raw->messages->pdata[i];
    if (m->type == type && m->id == id)
      return m;
  }
  return NULL;
}

static GVariant *
join_body(const char *as, guint16 port)
{
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string("mallory"));
  g_variant_builder_add(&dict, "{sv}", "as", g_variant_new_string(as));
  if (port != 0) {
    const char *const tcp[] = { "tcp", NULL };
    g_variant_builder_add(&dict, "{sv}", "host", g_variant_new_string("127.0.0.1"));
    g_variant_builder_add(&dict, "{sv}", "port", g_variant_new_uint16(port));
    g_variant_builder_add(&dict, "{sv}", "transports", g_variant_new_strv(tcp, -1));
  }
  return g_variant_new("(a{sv})", &dict);
}

static void
raw_send(HarkLink *link, guint16 type, guint64 id, GVariant *body)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_link_send(link, type, id, body, &error));
  g_assert_no_error(error);
}

static GVariant *
forward_body(Fixture *f, const char *sender_user, Member *sender)
{
  const char *to_bob[] = { device_of(&f->bob), NULL };
  g_autoptr(GBytes) envelope = envelope_of(sender, sender_user, to_bob, 0);
  return g_variant_new("(s@ay)", device_of(&f->bob),
                       g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, envelope, TRUE));
}

/* mallory, with an ordinary certificate, JOINs sn1 as an SN at an address where nothing
 * listens, and at once sends a MSG_FORWARD for bob (an envelope of alice's, replayed):
 * 503 while its claim is unchecked, nothing delivered. Then as a client: MSG_FORWARD is
 * not a client's message (dropped, counted). */
/* A TCP port on 127.0.0.1 that takes connections into its backlog and never answers. */
static guint16
tarpit(Fixture *f)
{
  guint16 port = 0;
  f->tarpit = hark_test_peer_tarpit(&port);
  return port;
}

static void
test_forward_unverified(Fixture *f, gconstpointer data)
{
  Raw *peer = &f->raw[0];
  HarkLink *link = raw_link(f, "mallory", peer);
  raw_send(link, HARK_MSG_JOIN, 1, join_body("peer", tarpit(f)));
  raw_wait(peer, HARK_MSG_JOIN_OK, 1);
  raw_send(link, HARK_MSG_MSG_FORWARD, 2, forward_body(f, "alice", &f->alice));
  const HarkWireMessage *error = raw_wait(peer, HARK_MSG_ERROR, 2);
  guint32 code = 0;
  g_variant_get(error->body, "(u&s)", &code, NULL);
  g_assert_cmpuint(code, ==, 503);
  g_assert_cmpint(refused(&f->sn[0], "unverified"), ==, 1);

  Raw *client = &f->raw[1];
  HarkLink *as_client = raw_link(f, "mallory2", client);
  raw_send(as_client, HARK_MSG_JOIN, 1, join_body("client", 0));
  raw_wait(client, HARK_MSG_JOIN_OK, 1);
  raw_send(as_client, HARK_MSG_MSG_FORWARD, 2, forward_body(f, "alice", &f->alice));
  raw_send(as_client, HARK_MSG_PING, 3, g_variant_new("(t)", (guint64)1));
  raw_wait(client, HARK_MSG_PONG, 3); /* the MSG_FORWARD before it was handled */
  g_assert_cmpint(refused(&f->sn[0], "unexpected"), ==, 1);
  /* Whatever happened to the claim meanwhile, bob got nothing. */
  g_assert_cmpuint(f->bob.got->len, ==, 0);
  g_assert_cmpint(counter(&f->sn[0], "delivered"), ==, 0);
}

/* A target SN where nothing listens: 502 as soon as the link to it fails (counted as
 * unreachable), not after the 10 s bound. A node that has no SN of its own (here an SN's
 * own device) is told so, from the main loop and not inside send(). */
static void
test_unreachable(Fixture *f, gconstpointer data)
{
  guint16 port = 0;
  g_autoptr(GSocket) closed = hark_test_closed_port(&port);
  g_assert_nonnull(closed);
  const char *to_carol[] = { device_of(&f->carol), NULL };
  g_autoptr(GBytes) envelope = envelope_of(&f->alice, "alice", to_carol, 0);
  g_autofree char *nowhere = g_strdup_printf("127.0.0.1:%u", port);
  Answer answer = { 0 };
  gint64 start = g_get_monotonic_time();
  hark_message_route_send(f->alice.route, device_of(&f->carol), nowhere, envelope, on_sent,
                          &answer);
  g_assert_true(hark_test_wait_for(is_answered, &answer, hark_test_timeout(WAIT_MS)));
  g_assert_cmpint(g_get_monotonic_time() - start, <, HARK_MESSAGE_ROUTE_FORWARD_MS * 1000 / 2);
  g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_UNREACHABLE);
  g_assert_cmpuint(answer.code, ==, 502);
  answer_clear(&answer);
  g_assert_cmpint(refused(&f->sn[0], "unreachable"), ==, 1);
  /* A name is no SN address: refused before any link is opened. */
  answer = send_to(f, &f->alice, device_of(&f->carol), 0, envelope);
  g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_NOT_ONLINE); /* sn1 itself */
  answer_clear(&answer);
  Answer named = { 0 };
  hark_message_route_send(f->alice.route, device_of(&f->carol), "sn2.example.org:33033", envelope,
                          on_sent, &named);
  g_assert_true(hark_test_wait_for(is_answered, &named, hark_test_timeout(WAIT_MS)));
  g_assert_cmpuint(named.code, ==, 502);
  answer_clear(&named);
  g_assert_cmpuint(f->carol.got->len, ==, 0);

  /* An SN has no SN link of its own: it serves its own send as it would a client's,
   * forwarding it to carol's SN. */
  answer = send_to(f, &f->sn[0], device_of(&f->carol), 1, envelope);
  g_assert_cmpint(answer.result, ==, HARK_MESSAGE_ROUTE_DELIVERED);
  answer_clear(&answer);
  wait_got(&f->carol, 1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD("/messages/delivered", test_delivered);
  ADD("/messages/not-online", test_not_online);
  ADD("/messages/not-yours", test_not_yours);
  ADD("/messages/too-large", test_too_large);
  ADD("/messages/flood", test_flood);
  ADD("/messages/bad-envelopes", test_bad_envelopes);
  ADD("/messages/forward-unverified", test_forward_unverified);
  ADD("/messages/unreachable", test_unreachable);
  return g_test_run();
}
