/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-link.c: links between real nodes in one process (hark/link.h): TLS 1.3 with the
 * nodes' device certificates checked against the pinned CA, messages both ways, an
 * opener that proves its certificate later (and one that cannot), a peer from another
 * CA, broken framing, a peer that stalls the handshake or does not read, nodes without
 * credentials or without an overlay, a handler that frees its link, a link over a pipe;
 * and the tcp transport plugin opening links over 127.0.0.1.
 *
 * Nodes are "logged in" without a login server or client: the test's CA issues a
 * certificate for the node's identity and test-nodes.c hands it, with the CA, to the link
 * layer through hark_link_set_credentials. */
#include "link-private.h"
#include "hark/hark.h"
#include "test-files.h"
#include "test-nodes.h"
#include "test-wait.h"
#include "test-isolate.h"

#include <glib/gstdio.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Any well-formed account id will do for certificates made here. */
#define TEST_ACCOUNT_ID "00112233445566778899aabbccddeeff"

#define DAY (24 * 3600)

typedef HarkTestNet Fixture;

/* What one link's handler saw. */
typedef struct {
  int ups;
  int closes;
  GError *closed_error;
  GPtrArray *messages; /* HarkWireMessage* copies: type and id */
  gboolean free_on_message;
} Seen;

/* ---- nodes ------------------------------------------------------------------------------- */

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  hark_test_net_init(f, "hark-link-XXXXXX");
}

static void
iterate(void)
{
  hark_test_iterate();
}

static gboolean
fd_readable(gpointer data)
{
  struct pollfd pfd = { .fd = *(const int *)data, .events = POLLIN };
  return poll(&pfd, 1, 0) == 1;
}

/* The peer of fd closes its end (within a bound): fd reads the end of the stream. */
static void
assert_peer_closes(int fd)
{
  g_assert_true(hark_test_wait_for(fd_readable, &fd, 10000));
  char buffer[64];
  g_assert_cmpint(read(fd, buffer, sizeof buffer), ==, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  hark_test_net_clear(f);
}

/* ---- links -------------------------------------------------------------------------------- */

static void
seen_up(HarkLink *link, gpointer data)
{
  ((Seen *)data)->ups++;
}

static void
seen_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  Seen *seen = data;
  HarkWireMessage *copy = g_new0(HarkWireMessage, 1);
  copy->type = message->type;
  copy->id = message->id;
  copy->body = g_variant_ref(message->body);
  g_ptr_array_add(seen->messages, copy);
}

static void
seen_closed(HarkLink *link, const GError *error, gpointer data)
{
  Seen *seen = data;
  seen->closes++;
  g_clear_error(&seen->closed_error);
  if (error != NULL)
    seen->closed_error = g_error_copy(error);
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
  g_clear_error(&seen->closed_error);
}

static void
wait_until(HarkTestCondition done, gpointer data)
{
  g_assert_true(hark_test_wait_for(done, data, 10000));
}

static gboolean
has_closed(gpointer data)
{
  return ((Seen *)data)->closes > 0;
}

static gboolean
is_up(gpointer data)
{
  return ((Seen *)data)->ups > 0;
}

static GIOStream *
stream_from_fd(int fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new_from_fd(fd, &error);
  g_assert_no_error(error);
  return G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
}

typedef struct {
  HarkLink *opener, *acceptor;
  Seen opener_seen, acceptor_seen;
} Pair;

/* node a opens a link to node b over a socket pair; b accepts it. */
static void
pair_open(Fixture *f, Pair *p, HarkNode *a, HarkNode *b)
{
  int fds[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  seen_init(&p->opener_seen);
  seen_init(&p->acceptor_seen);
  g_autoptr(GError) error = NULL;
  f->accepted = NULL;
  HarkLink *acceptor = hark_link_new_for_stream(hark_node_get_context(b), "test",
                                                stream_from_fd(fds[1]), FALSE, "a", 1, &error);
  g_assert_no_error(error);
  g_assert_nonnull(acceptor);
  g_assert_true(f->accepted == acceptor);
  p->acceptor = acceptor;
  hark_link_set_handler(acceptor, &seen_handler, &p->acceptor_seen);
  p->opener = hark_link_new_for_stream(hark_node_get_context(a), "test", stream_from_fd(fds[0]),
                                       TRUE, "b", 2, &error);
  g_assert_no_error(error);
  g_assert_nonnull(p->opener);
  g_ptr_array_add(f->links, p->opener);
  hark_link_set_handler(p->opener, &seen_handler, &p->opener_seen);
  g_assert_cmpint(hark_link_get_state(p->opener), ==, HARK_LINK_HANDSHAKING);
  g_assert_true(hark_link_is_opener(p->opener));
  g_assert_false(hark_link_is_opener(p->acceptor));
}

static void
pair_clear(Pair *p)
{
  seen_clear(&p->opener_seen);
  seen_clear(&p->acceptor_seen);
}

static gboolean
pair_up(gpointer data)
{
  Pair *p = data;
  return (p->opener_seen.ups > 0 && p->acceptor_seen.ups > 0) || p->opener_seen.closes > 0 ||
         p->acceptor_seen.closes > 0;
}

static gboolean
has_messages(gpointer data)
{
  Seen *seen = data;
  return seen->messages->len > 0 || seen->closes > 0;
}

static void
send_ping(HarkLink *link, guint64 id)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_link_send(link, HARK_MSG_PING, id, g_variant_new("(t)", id * 10), &error));
  g_assert_no_error(error);
}

/* ---- the cases ------------------------------------------------------------------------------ */

/* Both logged in: each sees the other's certificate, messages go both ways, counters
 * count, and a close reaches both ends. */
static void
test_messages_both_ways(Fixture *f, gconstpointer data)
{
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, NULL);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, NULL);
  Pair p;
  pair_open(f, &p, alice, bob);
  g_autoptr(GError) error = NULL;
  /* Nothing goes before the handshake. */
  g_assert_false(hark_link_send(p.opener, HARK_MSG_PING, 1, g_variant_new("(t)", 1), &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_HANDSHAKE);
  g_clear_error(&error);
  g_assert_null(hark_link_channel_binding(p.opener));
  wait_until(pair_up, &p);
  g_assert_cmpint(p.opener_seen.ups, ==, 1);
  g_assert_cmpint(p.acceptor_seen.ups, ==, 1);
  g_assert_cmpint(hark_link_get_state(p.opener), ==, HARK_LINK_UP);

  const HarkDeviceCertificate *seen_by_alice = hark_link_get_peer_certificate(p.opener);
  const HarkDeviceCertificate *seen_by_bob = hark_link_get_peer_certificate(p.acceptor);
  g_assert_nonnull(seen_by_alice);
  g_assert_nonnull(seen_by_bob);
  g_assert_cmpstr(seen_by_alice->user, ==, "bob");
  g_assert_cmpstr(seen_by_alice->device_id, ==, hark_identity_get_fingerprint(bob->identity));
  g_assert_cmpstr(seen_by_bob->user, ==, "alice");
  g_assert_cmpstr(seen_by_bob->device_id, ==, hark_identity_get_fingerprint(alice->identity));

  /* Both ends compute the same binding. */
  g_autoptr(GBytes) binding_a = hark_link_channel_binding(p.opener);
  g_autoptr(GBytes) binding_b = hark_link_channel_binding(p.acceptor);
  g_assert_cmpuint(g_bytes_get_size(binding_a), ==, 32);
  g_assert_true(g_bytes_equal(binding_a, binding_b));

  send_ping(p.opener, 7);
  send_ping(p.opener, 8);
  wait_until(has_messages, &p.acceptor_seen);
  g_assert_true(hark_test_wait_for_uint(&p.acceptor_seen.messages->len, 2, 10000));
  HarkWireMessage *first = p.acceptor_seen.messages->pdata[0];
  g_assert_cmpuint(first->type, ==, HARK_MSG_PING);
  g_assert_cmpuint(first->id, ==, 7);
  guint64 time = 0;
  g_variant_get(first->body, "(t)", &time);
  g_assert_cmpuint(time, ==, 70);
  g_assert_cmpuint(((HarkWireMessage *)p.acceptor_seen.messages->pdata[1])->id, ==, 8);

  g_assert_true(hark_link_send(p.acceptor, HARK_MSG_PONG, 7, g_variant_new("(t)", 70), &error));
  wait_until(has_messages, &p.opener_seen);
  g_assert_cmpuint(((HarkWireMessage *)p.opener_seen.messages->pdata[0])->type, ==, HARK_MSG_PONG);

  const HarkLinkStats *a = hark_link_get_stats(p.opener);
  const HarkLinkStats *b = hark_link_get_stats(p.acceptor);
  g_assert_cmpuint(a->messages_out, ==, 2);
  g_assert_cmpuint(a->messages_in, ==, 1);
  g_assert_cmpuint(b->messages_in, ==, 2);
  g_assert_cmpuint(b->messages_out, ==, 1);
  g_assert_cmpuint(a->dropped, ==, 0);
  /* TLS included: far more than the messages' own bytes, and what one sent the other got. */
  g_assert_cmpuint(a->bytes_out, >, 500);
  g_assert_cmpuint(a->bytes_out, ==, b->bytes_in);
  g_assert_cmpint(a->up_at, >=, a->opened_at);
  g_assert_cmpint(a->opened_at, >, 0);
  g_assert_cmpint(a->rtt_us, ==, -1);
  hark_link_set_rtt(p.opener, 1234);
  g_assert_cmpint(a->rtt_us, ==, 1234);
  g_assert_cmpstr(hark_link_get_transport(p.opener), ==, "test");
  g_assert_cmpstr(hark_link_get_peer_host(p.opener), ==, "b");
  g_assert_cmpuint(hark_link_get_peer_port(p.opener), ==, 2);

  /* A close here: our handler hears it (no error) from an idle, the peer hears CLOSED. */
  hark_link_close(p.opener);
  hark_link_close(p.opener);
  g_assert_cmpint(p.opener_seen.closes, ==, 0);
  g_assert_false(hark_link_send(p.opener, HARK_MSG_PING, 2, g_variant_new("(t)", 2), NULL));
  wait_until(has_closed, &p.acceptor_seen);
  wait_until(has_closed, &p.opener_seen);
  g_assert_no_error(p.opener_seen.closed_error);
  g_assert_error(p.acceptor_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED);
  g_assert_cmpint(hark_link_get_state(p.acceptor), ==, HARK_LINK_CLOSED);
  iterate();
  g_assert_cmpint(p.opener_seen.closes, ==, 1);
  g_assert_cmpint(p.acceptor_seen.closes, ==, 1);
  pair_clear(&p);
}

static GBytes *
certificate_for(HarkCa *ca, HarkIdentity *identity, const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *public_pem = hark_identity_get_public_pem(identity);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  char *pem = hark_ca_issue_device(ca, user, TEST_ACCOUNT_ID, public_pem, now - 60, DAY, &error);
  g_assert_no_error(error);
  return g_bytes_new_take(pem, strlen(pem));
}

/* An opener that is not logged in gets a link, unauthenticated; it then proves a
 * certificate over the channel binding. Forged proofs and foreign certificates fail. */
static void
test_authenticate_later(Fixture *f, gconstpointer data)
{
  HarkNode *carol = hark_test_net_node(f, "carol", f->ca, NULL, NULL);
  HarkNode *sn = hark_test_net_node(f, "sn", f->ca, f->ca, NULL);
  Pair p;
  pair_open(f, &p, carol, sn);
  wait_until(pair_up, &p);
  g_assert_cmpint(p.acceptor_seen.ups, ==, 1);
  g_assert_null(hark_link_get_peer_certificate(p.acceptor));
  g_assert_cmpstr(hark_link_get_peer_certificate(p.opener)->user, ==, "sn");

  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) binding = hark_link_channel_binding(p.opener);
  g_autoptr(GBytes) signature = hark_identity_sign(carol->identity, binding, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) cert = certificate_for(f->ca, carol->identity, "carol");

  /* Signed by another key than the certified one. */
  g_autofree char *mallory_path = g_build_filename(f->dir, "mallory.pem", NULL);
  g_autoptr(HarkIdentity) mallory = hark_identity_load_or_create(mallory_path, NULL, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) forged = hark_identity_sign(mallory, binding, &error);
  g_assert_false(hark_link_authenticate(p.acceptor, cert, forged, &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED);
  g_clear_error(&error);
  /* A signature over something else than this link's binding. */
  g_autoptr(GBytes) other = g_bytes_new_static("another session's binding.......", 32);
  g_autoptr(GBytes) replayed = hark_identity_sign(carol->identity, other, &error);
  g_assert_false(hark_link_authenticate(p.acceptor, cert, replayed, &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED);
  g_clear_error(&error);
  /* A certificate from a CA this node does not pin. */
  g_autoptr(GBytes) foreign = certificate_for(f->other_ca, carol->identity, "carol");
  g_assert_false(hark_link_authenticate(p.acceptor, foreign, signature, &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED);
  g_clear_error(&error);
  g_assert_null(hark_link_get_peer_certificate(p.acceptor));
  g_assert_cmpint(hark_link_get_state(p.acceptor), ==, HARK_LINK_UP);

  g_assert_true(hark_link_authenticate(p.acceptor, cert, signature, &error));
  g_assert_no_error(error);
  const HarkDeviceCertificate *peer = hark_link_get_peer_certificate(p.acceptor);
  g_assert_nonnull(peer);
  g_assert_cmpstr(peer->user, ==, "carol");
  g_assert_cmpstr(peer->device_id, ==, hark_identity_get_fingerprint(carol->identity));

  /* Once authenticated, the peer cannot become someone else. */
  g_autofree char *dave_path = g_build_filename(f->dir, "dave.pem", NULL);
  g_autoptr(HarkIdentity) dave = hark_identity_load_or_create(dave_path, NULL, &error);
  g_autoptr(GBytes) dave_cert = certificate_for(f->ca, dave, "dave");
  g_autoptr(GBytes) dave_signature = hark_identity_sign(dave, binding, &error);
  g_assert_false(hark_link_authenticate(p.acceptor, dave_cert, dave_signature, &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED);
  g_assert_cmpstr(hark_link_get_peer_certificate(p.acceptor)->user, ==, "carol");
  pair_clear(&p);
}

/* An acceptor whose certificate is from a CA the opener does not pin. */
static void
test_untrusted_acceptor(Fixture *f, gconstpointer data)
{
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, NULL);
  HarkNode *evil = hark_test_net_node(f, "evil", f->other_ca, f->other_ca, NULL);
  Pair p;
  pair_open(f, &p, alice, evil);
  wait_until(has_closed, &p.opener_seen);
  g_assert_cmpint(p.opener_seen.ups, ==, 0);
  g_assert_error(p.opener_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED);
  g_assert_nonnull(strstr(p.opener_seen.closed_error->message, "login.ca"));
  g_assert_null(hark_link_get_peer_certificate(p.opener));
  /* The acceptor never sees it up either. */
  wait_until(has_closed, &p.acceptor_seen);
  g_assert_cmpint(p.acceptor_seen.ups, ==, 0);
  g_assert_error(p.acceptor_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_HANDSHAKE);
  pair_clear(&p);
}

/* Plaintext straight into the opener's TLS session (past hark_link_send's checks),
 * sent along with the next real message. */
static void
inject(HarkLink *link, const void *bytes, gsize size)
{
  g_assert_cmpint(SSL_write(link->ssl, bytes, (int)size), ==, (int)size);
}

/* A frame that does not decode is counted and dropped; the link stays up and the next
 * message arrives. */
static void
test_garbage_frame(Fixture *f, gconstpointer data)
{
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, NULL);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, NULL);
  Pair p;
  pair_open(f, &p, alice, bob);
  wait_until(pair_up, &p);
  static const guint8 garbage[] = { 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o' };
  inject(p.opener, garbage, sizeof garbage);
  send_ping(p.opener, 42);
  wait_until(has_messages, &p.acceptor_seen);
  g_assert_cmpuint(p.acceptor_seen.messages->len, ==, 1);
  g_assert_cmpuint(((HarkWireMessage *)p.acceptor_seen.messages->pdata[0])->id, ==, 42);
  g_assert_cmpuint(hark_link_get_stats(p.acceptor)->dropped, ==, 1);
  g_assert_cmpuint(hark_link_get_stats(p.acceptor)->messages_in, ==, 1);
  g_assert_cmpint(hark_link_get_state(p.acceptor), ==, HARK_LINK_UP);
  g_assert_cmpint(p.acceptor_seen.closes, ==, 0);
  pair_clear(&p);
}

/* A length over the limit (or zero) ends the link: its framing cannot be trusted. */
static void
test_bad_length(Fixture *f, gconstpointer data)
{
  const guint8 *header = data;
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, NULL);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, NULL);
  Pair p;
  pair_open(f, &p, alice, bob);
  wait_until(pair_up, &p);
  inject(p.opener, header, 4);
  send_ping(p.opener, 1);
  wait_until(has_closed, &p.acceptor_seen);
  g_assert_error(p.acceptor_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_PROTOCOL);
  g_assert_cmpuint(p.acceptor_seen.messages->len, ==, 0);
  /* The opener hears the end too. */
  wait_until(has_closed, &p.opener_seen);
  g_assert_error(p.opener_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED);
  pair_clear(&p);
}

static const guint8 oversized[4] = { 0, 1, 0, 1 }; /* 65537 */
static const guint8 zero_length[4] = { 0, 0, 0, 0 };

/* A peer that connects and never says anything is dropped after the handshake timeout. */
static void
test_handshake_timeout(Fixture *f, gconstpointer data)
{
  HarkNode *sn = hark_test_net_node(f, "sn", f->ca, f->ca, NULL);
  int fds[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_autoptr(GError) error = NULL;
  /* The timeout counts from the link's creation: the clock starts before it, so a slow
   * machine (ASan, valgrind) cannot make the wait look short. */
  gint64 start = g_get_monotonic_time();
  HarkLink *link = hark_link_new_for_stream(hark_node_get_context(sn), "test",
                                            stream_from_fd(fds[1]), FALSE, "slow", 1, &error);
  g_assert_no_error(error);
  g_assert_true(link == f->accepted);
  Seen seen;
  seen_init(&seen);
  hark_link_set_handler(link, &seen_handler, &seen);
  hark_link_set_handshake_timeout(link, 200);
  wait_until(has_closed, &seen);
  g_assert_cmpint(g_get_monotonic_time() - start, >=, 150 * 1000);
  g_assert_error(seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_HANDSHAKE);
  g_assert_cmpint(seen.ups, ==, 0);
  /* And the connection is closed: the slow peer reads the end. */
  assert_peer_closes(fds[0]);
  close(fds[0]);
  seen_clear(&seen);
}

/* The peer stops reading: more than 1 MiB queued closes the link with BACKLOG. */
static void
test_backlog(Fixture *f, gconstpointer data)
{
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, NULL);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, NULL);
  Pair p;
  pair_open(f, &p, alice, bob);
  wait_until(pair_up, &p);
  /* Without the main loop running nothing is written out: the queue only grows. */
  g_autofree guint8 *blob = g_malloc0(60000);
  g_autoptr(GError) error = NULL;
  int sent = 0;
  while (
    hark_link_send(p.opener, HARK_MSG_TUNNEL_DATA, (guint64)sent,
                   g_variant_new("(t@ay)", (guint64)1,
                                 g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, blob, 60000, 1)),
                   &error))
    sent++;
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_BACKLOG);
  g_assert_cmpint(sent, >=, 16);
  g_assert_cmpint(sent, <=, 18);
  g_assert_cmpint(hark_link_get_state(p.opener), ==, HARK_LINK_CLOSED);
  wait_until(has_closed, &p.opener_seen);
  g_assert_error(p.opener_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_BACKLOG);
  pair_clear(&p);
}

/* Without a login section there is no CA to check peers against: no links at all. A
 * node that is not logged in cannot accept (it has no certificate to show) until it
 * logs in, and no longer once it logged out. */
static void
test_no_credentials(Fixture *f, gconstpointer data)
{
  HarkNode *bare = hark_test_net_node(f, "bare", NULL, NULL, NULL);
  HarkNode *carol = hark_test_net_node(f, "carol", f->ca, NULL, NULL);
  for (int opener = 0; opener < 2; opener++) {
    int fds[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    g_autoptr(GError) error = NULL;
    f->accepted = NULL;
    HarkLink *link = hark_link_new_for_stream(hark_node_get_context(bare), "test",
                                              stream_from_fd(fds[1]), opener, "x", 1, &error);
    g_assert_null(link);
    g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_NO_CREDENTIALS);
    g_assert_nonnull(strstr(error->message, "login"));
    g_assert_null(f->accepted);
    assert_peer_closes(fds[0]);
    close(fds[0]);
  }
  int fds[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_null(hark_link_new_for_stream(hark_node_get_context(carol), "test",
                                         stream_from_fd(fds[1]), FALSE, "x", 1, &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_NO_CREDENTIALS);
  g_assert_nonnull(strstr(error->message, "not logged in"));
  close(fds[0]);

  /* Carol logs in (her credentials get a certificate): the next link is accepted, with
   * a TLS context made for it; she logs out and accepts none again. */
  HarkTestCredentials *credentials = f->credentials->pdata[f->credentials->len - 1];
  g_autofree char *pem = hark_test_issue_pem(f->ca, carol->identity, "carol");
  hark_test_credentials_set_certificate(credentials, pem);
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_clear_error(&error);
  f->accepted = NULL;
  HarkLink *accepted = hark_link_new_for_stream(hark_node_get_context(carol), "test",
                                                stream_from_fd(fds[1]), FALSE, "x", 1, &error);
  g_assert_no_error(error);
  g_assert_true(accepted == f->accepted);
  close(fds[0]);
  hark_test_credentials_set_certificate(credentials, NULL);
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_assert_null(hark_link_new_for_stream(hark_node_get_context(carol), "test",
                                         stream_from_fd(fds[1]), FALSE, "x", 1, &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_NO_CREDENTIALS);
  close(fds[0]);
}

/* A node with credentials but no overlay to take accepted links closes them. */
static void
test_no_overlay(Fixture *f, gconstpointer data)
{
  HarkNode *sn = hark_test_net_node(f, "sn", f->ca, f->ca, NULL);
  hark_link_set_network_handlers(sn, NULL, NULL, NULL);
  int fds[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_null(hark_link_new_for_stream(hark_node_get_context(sn), "test", stream_from_fd(fds[1]),
                                         FALSE, "x", 1, &error));
  g_assert_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED);
  assert_peer_closes(fds[0]);
  close(fds[0]);
}

/* A handler may free its link from inside any callback. */
static void
free_in_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  Fixture *f = data;
  g_ptr_array_remove(f->links, link);
  hark_link_free(link);
}

static void
test_free_in_callback(Fixture *f, gconstpointer data)
{
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, NULL);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, NULL);
  Pair p;
  pair_open(f, &p, alice, bob);
  wait_until(pair_up, &p);
  static const HarkLinkHandler freeing = { NULL, free_in_message, NULL };
  hark_link_set_handler(p.acceptor, &freeing, f);
  send_ping(p.opener, 1);
  send_ping(p.opener, 2);
  wait_until(has_closed, &p.opener_seen);
  g_assert_error(p.opener_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED);
  g_assert_false(g_ptr_array_find(f->links, p.acceptor, NULL));
  pair_clear(&p);
}

/* ---- pipes ------------------------------------------------------------------------------------ */

/* One direction of an in-process pipe: what one link writes reaches the other from an
 * idle, as a WebSocket's messages would. */
typedef struct TestPipe TestPipe;
struct TestPipe {
  TestPipe *other;
  HarkLink *link; /* the link reading what the other end writes */
  GQueue incoming; /* GBytes* for link */
  int closes; /* close() calls by the core */
  guint idle;
};

static gboolean
pipe_deliver(gpointer data)
{
  TestPipe *pipe = data;
  pipe->idle = 0;
  GBytes *bytes;
  while (pipe->link != NULL && (bytes = g_queue_pop_head(&pipe->incoming)) != NULL) {
    hark_link_pipe_received(pipe->link, bytes);
    g_bytes_unref(bytes);
  }
  return G_SOURCE_REMOVE;
}

static void
pipe_write(gpointer data, GBytes *bytes)
{
  TestPipe *to = ((TestPipe *)data)->other;
  g_queue_push_tail(&to->incoming, g_bytes_ref(bytes));
  if (to->idle == 0)
    to->idle = g_idle_add(pipe_deliver, to);
}

static void
pipe_close(gpointer data)
{
  TestPipe *pipe = data;
  pipe->closes++;
  /* The other end learns that its pipe broke. */
  if (pipe->other->link != NULL && pipe->other->closes == 0)
    hark_link_pipe_closed(pipe->other->link, NULL);
  pipe->link = NULL;
}

static const HarkLinkPipe test_pipe = { 1, pipe_write, pipe_close };

/* The same link over a transport's own pipe instead of a stream. */
static void
test_pipe_link(Fixture *f, gconstpointer data)
{
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, NULL);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, NULL);
  TestPipe a = { 0 }, b = { 0 };
  a.other = &b;
  b.other = &a;
  g_queue_init(&a.incoming);
  g_queue_init(&b.incoming);
  g_autoptr(GError) error = NULL;
  f->accepted = NULL;
  b.link = hark_link_new_for_pipe(hark_node_get_context(bob), "ws", &test_pipe, &b, FALSE, "alice",
                                  1, &error);
  g_assert_no_error(error);
  g_assert_true(b.link == f->accepted);
  a.link = hark_link_new_for_pipe(hark_node_get_context(alice), "ws", &test_pipe, &a, TRUE, "bob",
                                  2, &error);
  g_assert_no_error(error);
  HarkLink *opener = a.link;
  g_ptr_array_add(f->links, opener);
  Pair p;
  seen_init(&p.opener_seen);
  seen_init(&p.acceptor_seen);
  p.opener = opener;
  p.acceptor = b.link;
  hark_link_set_handler(p.opener, &seen_handler, &p.opener_seen);
  hark_link_set_handler(p.acceptor, &seen_handler, &p.acceptor_seen);
  wait_until(pair_up, &p);
  g_assert_cmpint(p.opener_seen.ups, ==, 1);
  g_assert_cmpint(p.acceptor_seen.ups, ==, 1);
  g_assert_cmpstr(hark_link_get_peer_certificate(p.acceptor)->user, ==, "alice");
  g_assert_cmpstr(hark_link_get_peer_certificate(p.opener)->user, ==, "bob");
  send_ping(p.opener, 9);
  wait_until(has_messages, &p.acceptor_seen);
  g_assert_cmpuint(((HarkWireMessage *)p.acceptor_seen.messages->pdata[0])->id, ==, 9);
  g_assert_cmpuint(hark_link_get_stats(p.opener)->bytes_out, ==,
                   hark_link_get_stats(p.acceptor)->bytes_in);

  /* The opener closes: its pipe is closed once, the acceptor hears CLOSED. */
  hark_link_close(p.opener);
  g_assert_cmpint(a.closes, ==, 1);
  wait_until(has_closed, &p.acceptor_seen);
  g_assert_error(p.acceptor_seen.closed_error, HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED);
  wait_until(has_closed, &p.opener_seen);
  g_assert_no_error(p.opener_seen.closed_error);
  g_assert_cmpint(b.closes, ==, 1); /* the core is done with the broken pipe too */
  iterate();
  g_assert_cmpint(a.closes, ==, 1);
  g_queue_clear_full(&a.incoming, (GDestroyNotify)g_bytes_unref);
  g_queue_clear_full(&b.incoming, (GDestroyNotify)g_bytes_unref);
  if (a.idle != 0)
    g_source_remove(a.idle);
  if (b.idle != 0)
    g_source_remove(b.idle);
  pair_clear(&p);
}

/* ---- the tcp transport ------------------------------------------------------------------- */

static const char *
plugin_dir(void)
{
  const char *dir = g_getenv("HARK_PLUGIN_PATH");
  g_assert_nonnull(dir);
  return dir;
}

static char *
tcp_plugins(void)
{
  return g_strdup_printf("plugins = { path = [ \"%s\" ]; load = ( { name = \"tcp\"; settings "
                         "= { connect_timeout_ms = 3000; }; } ); };\n",
                         plugin_dir());
}

static HarkRegistration *
tcp_of(HarkNode *node)
{
  HarkRegistration *reg = hark_test_transport(node, "tcp");
  g_assert_cmpuint(reg->rank, ==, HARK_RANK_PRIMARY);
  const HarkTransportInterface *iface = reg->iface;
  g_assert_true(iface->flags & HARK_TRANSPORT_STREAM);
  g_assert_null(iface->send_to);
  g_assert_null(iface->request);
  return reg;
}

typedef HarkTestOpened Opened;

static gboolean
opened_done(gpointer data)
{
  return ((Opened *)data)->calls > 0;
}

static void
test_tcp_link(Fixture *f, gconstpointer data)
{
  g_autofree char *plugins = tcp_plugins();
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, plugins);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, plugins);
  HarkRegistration *a = tcp_of(alice), *b = tcp_of(bob);
  const HarkTransportInterface *iface = b->iface;
  g_autoptr(GError) error = NULL;
  {
    g_autoptr(JsonObject) stats = iface->stats(b->instance);
    g_assert_true(json_object_get_null_member(stats, "listening"));
  }
  g_assert_true(iface->listen(b->instance, "127.0.0.1", 0, &error));
  g_assert_no_error(error);
  guint16 port = iface->local_port(b->instance);
  g_assert_cmpuint(port, >, 0);
  g_assert_cmpint(hark_test_transport_stat(b, "listening"), ==, port);
  g_assert_false(iface->listen(b->instance, "127.0.0.1", 0, &error));
  g_assert_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN);
  g_clear_error(&error);

  Opened o = { 0 };
  f->accepted = NULL;
  iface->open(a->instance, "127.0.0.1", port, NULL, hark_test_on_opened, &o);
  g_assert_cmpint(o.calls, ==, 0); /* never before open returns */
  wait_until(opened_done, &o);
  g_assert_no_error(o.error);
  g_assert_nonnull(o.link);
  g_ptr_array_add(f->links, o.link);
  Seen opener_seen;
  seen_init(&opener_seen);
  hark_link_set_handler(o.link, &seen_handler, &opener_seen);
  g_assert_cmpstr(hark_link_get_transport(o.link), ==, "tcp");
  g_assert_cmpuint(hark_link_get_peer_port(o.link), ==, port);
  wait_until(is_up, &opener_seen);
  g_assert_cmpstr(hark_link_get_peer_certificate(o.link)->user, ==, "bob");
  g_assert_true(hark_test_wait_for_nonnull((gpointer const *)&f->accepted, 10000));
  Seen acceptor_seen;
  seen_init(&acceptor_seen);
  hark_link_set_handler(f->accepted, &seen_handler, &acceptor_seen);
  g_assert_cmpstr(hark_link_get_peer_host(f->accepted), ==, "127.0.0.1");
  send_ping(o.link, 5);
  wait_until(has_messages, &acceptor_seen);
  g_assert_cmpuint(((HarkWireMessage *)acceptor_seen.messages->pdata[0])->id, ==, 5);
  g_assert_cmpstr(hark_link_get_peer_certificate(f->accepted)->user, ==, "alice");
  g_assert_cmpint(hark_test_transport_stat(b, "accepted"), ==, 1);
  g_assert_cmpint(hark_test_transport_stat(a, "opened"), ==, 1);
  g_assert_cmpint(hark_test_transport_stat(a, "failed"), ==, 0);

  /* Stopping keeps the links; new connections are refused. */
  iface->stop_listening(b->instance);
  g_assert_cmpuint(iface->local_port(b->instance), ==, 0);
  send_ping(o.link, 6);
  g_assert_true(hark_test_wait_for_uint(&acceptor_seen.messages->len, 2, 10000));
  Opened refused = { 0 };
  iface->open(a->instance, "127.0.0.1", port, NULL, hark_test_on_opened, &refused);
  wait_until(opened_done, &refused);
  g_assert_null(refused.link);
  g_assert_error(refused.error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_UNREACHABLE);
  g_autofree char *where = g_strdup_printf("127.0.0.1:%u", port);
  g_assert_nonnull(strstr(refused.error->message, where));
  g_assert_cmpint(hark_test_transport_stat(a, "failed"), ==, 1);
  g_clear_error(&refused.error);
  seen_clear(&opener_seen);
  seen_clear(&acceptor_seen);
}

/* A cancelled open is never answered. */
static void
test_tcp_cancel(Fixture *f, gconstpointer data)
{
  g_autofree char *plugins = tcp_plugins();
  HarkNode *alice = hark_test_net_node(f, "alice", f->ca, f->ca, plugins);
  HarkNode *bob = hark_test_net_node(f, "bob", f->ca, f->ca, plugins);
  HarkRegistration *a = tcp_of(alice), *b = tcp_of(bob);
  const HarkTransportInterface *iface = b->iface;
  g_assert_true(iface->listen(b->instance, "127.0.0.1", 0, NULL));
  /* Static: a callback that comes after all (the bug this case is for) must not write
   * into a stack frame that is gone. */
  static Opened o;
  o = (Opened){ 0 };
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  iface->open(a->instance, "127.0.0.1", iface->local_port(b->instance), cancellable,
              hark_test_on_opened, &o);
  g_cancellable_cancel(cancellable);
  /* Nothing to wait for: the check is that no answer comes within the time. */
  hark_test_let_time_pass(100);
  g_assert_cmpint(o.calls, ==, 0);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
#define ADD(path, func, data) \
  hark_test_add_isolated(path, Fixture, data, fixture_set_up, func, fixture_tear_down)
  ADD("/link/messages-both-ways", test_messages_both_ways, NULL);
  ADD("/link/authenticate-later", test_authenticate_later, NULL);
  ADD("/link/untrusted-acceptor", test_untrusted_acceptor, NULL);
  ADD("/link/garbage-frame", test_garbage_frame, NULL);
  ADD("/link/oversized-frame", test_bad_length, oversized);
  ADD("/link/zero-length-frame", test_bad_length, zero_length);
  ADD("/link/handshake-timeout", test_handshake_timeout, NULL);
  ADD("/link/backlog", test_backlog, NULL);
  ADD("/link/no-credentials", test_no_credentials, NULL);
  ADD("/link/no-overlay", test_no_overlay, NULL);
  ADD("/link/free-in-callback", test_free_in_callback, NULL);
  ADD("/link/pipe", test_pipe_link, NULL);
  ADD("/tcp/link", test_tcp_link, NULL);
  ADD("/tcp/cancel", test_tcp_cancel, NULL);
  return g_test_run();
}
