/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-udp.c: the udp transport plugin between two nodes in one process: probes and
 * their answers, retransmission, timeouts, cancellation, flood protection and answers
 * from the wrong address. Needs udp.so ($HARK_PLUGIN_PATH). */
#include <hark/hark.h>

#include <string.h>

#include "link-private.h"
#include "hark/hark.h"
#include "test-nodes.h"
#include "test-wait.h"
#include "test-isolate.h"

typedef struct {
  HarkNode *node;
  const HarkTransportInterface *iface;
  gpointer udp;
  /* What the node's datagram handler saw. */
  guint received;
  GHashTable *from_ips; /* ip -> count */
  GSocketAddress *last_from;
  /* Answering PROBEs: reply to the answer_on-th one (0: never); through `via` when set. */
  guint probes;
  guint answer_on;
  GSocket *via;
} Peer;

typedef struct {
  Peer a, b;
} Fixture;

typedef struct {
  gboolean done;
  GBytes *reply;
  gint64 rtt_us;
  GError *error;
} Answer;

static void
on_datagram(const char *transport, GSocketAddress *from, GBytes *datagram, gpointer data)
{
  Peer *p = data;
  g_assert_cmpstr(transport, ==, "udp");
  p->received++;
  g_autofree char *ip =
    g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(from)));
  guint count = GPOINTER_TO_UINT(g_hash_table_lookup(p->from_ips, ip));
  g_hash_table_insert(p->from_ips, g_strdup(ip), GUINT_TO_POINTER(count + 1));
  g_set_object(&p->last_from, from);

  g_autoptr(HarkWireMessage) m = hark_wire_decode(datagram, NULL);
  if (m == NULL || m->type != HARK_MSG_PROBE)
    return;
  p->probes++;
  if (p->answer_on == 0 || p->probes < p->answer_on)
    return;
  GVariantDict dict;
  g_variant_dict_init(&dict, NULL);
  g_variant_dict_insert(&dict, "name", "s", "b");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) reply = hark_wire_encode(
    HARK_MSG_PROBE_REPLY, m->id, g_variant_new("(@a{sv})", g_variant_dict_end(&dict)), &error);
  g_assert_no_error(error);
  if (p->via != NULL) {
    gsize size;
    const char *bytes = g_bytes_get_data(reply, &size);
    g_assert_cmpint(g_socket_send_to(p->via, from, bytes, size, NULL, &error), ==, (gssize)size);
  } else {
    g_assert_true(p->iface->send_to(p->udp, from, reply, &error));
  }
  g_assert_no_error(error);
}

static void
peer_set_up(Peer *p, const char *name)
{
  const char *conf = "plugins: { load = ( { name = \"udp\"; settings = { initial_rto_ms = 40; "
                     "max_datagrams_per_second = 50; }; } ); };\n";
  g_autoptr(GError) error = NULL;
  HarkConfig *config = hark_config_load_from_string(conf, name, &error);
  g_assert_no_error(error);
  p->node = hark_node_new(config);
  g_assert_true(hark_node_load_plugins(p->node, &error));
  g_assert_no_error(error);
  const HarkRegistration *r = hark_test_transport(p->node, "udp");
  g_assert_cmpuint(r->rank, ==, HARK_RANK_PRIMARY);
  p->iface = r->iface;
  g_assert_cmpuint(p->iface->flags, ==, HARK_TRANSPORT_DATAGRAM);
  g_assert_null(p->iface->open);
  p->udp = r->instance;
  p->from_ips = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  hark_link_set_network_handlers(p->node, NULL, on_datagram, p);
}

static void
peer_tear_down(Peer *p)
{
  hark_node_free(p->node);
  g_hash_table_destroy(p->from_ips);
  g_clear_object(&p->last_from);
  g_clear_object(&p->via);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  peer_set_up(&f->a, "a.conf");
  peer_set_up(&f->b, "b.conf");
  g_autoptr(GError) error = NULL;
  g_assert_true(f->b.iface->listen(f->b.udp, "127.0.0.1", 0, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(f->b.iface->local_port(f->b.udp), >, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  peer_tear_down(&f->a);
  peer_tear_down(&f->b);
  /* Let sources destroyed with the nodes go. */
  hark_test_iterate();
}

/* Runs the main context until *flag, within ms (scaled); the case stops when it is not. */
static void
run_until(const gboolean *flag, guint ms)
{
  g_assert_true(hark_test_wait_for_flag(flag, ms));
}

typedef struct {
  Peer *peer;
  gint64 at_least;
} DatagramsIn;

static gint64 stat_of(Peer *p, const char *name);

static gboolean
datagrams_in_reached(gpointer data)
{
  const DatagramsIn *wait = data;
  return stat_of(wait->peer, "datagrams_in") >= wait->at_least;
}

/* Until the peer's plugin has read at_least datagrams (dropped ones included). */
static void
wait_datagrams_in(Peer *peer, gint64 at_least)
{
  DatagramsIn wait = { peer, at_least };
  g_assert_true(hark_test_wait_for(datagrams_in_reached, &wait, 5000));
}

static gint64
stat_of(Peer *p, const char *name)
{
  return hark_test_transport_stat(hark_test_transport(p->node, "udp"), name);
}

static GSocketAddress *
address_of(Peer *p)
{
  return g_inet_socket_address_new_from_string("127.0.0.1", p->iface->local_port(p->udp));
}

static void
on_answered(GBytes *reply, gint64 rtt_us, const GError *error, gpointer data)
{
  Answer *answer = data;
  g_assert_false(answer->done);
  answer->done = TRUE;
  answer->reply = reply != NULL ? g_bytes_ref(reply) : NULL;
  answer->rtt_us = rtt_us;
  answer->error = error != NULL ? g_error_copy(error) : NULL;
}

static void
answer_clear(Answer *answer)
{
  g_clear_pointer(&answer->reply, g_bytes_unref);
  g_clear_error(&answer->error);
}

static GBytes *
probe(guint64 id)
{
  GVariantDict dict;
  g_variant_dict_init(&dict, NULL);
  g_variant_dict_insert(&dict, "name", "s", "a");
  g_autoptr(GError) error = NULL;
  GBytes *bytes = hark_wire_encode(HARK_MSG_PROBE, id,
                                   g_variant_new("(@a{sv})", g_variant_dict_end(&dict)), &error);
  g_assert_no_error(error);
  return bytes;
}

static void
send_request(Fixture *f, guint64 id, guint timeout_ms, GCancellable *cancellable, Answer *answer)
{
  g_autoptr(GSocketAddress) to = address_of(&f->b);
  g_autoptr(GBytes) message = probe(id);
  f->a.iface->request(f->a.udp, to, message, id, timeout_ms, cancellable, on_answered, answer);
}

static void
test_probe(Fixture *f, gconstpointer data)
{
  g_autoptr(JsonObject) before = f->a.iface->stats(f->a.udp);
  g_assert_true(json_object_get_null_member(before, "listening"));
  f->b.answer_on = 1;
  Answer answer = { 0 };
  send_request(f, 7, 2000, NULL, &answer);
  run_until(&answer.done, 3000);
  g_assert_true(answer.done);
  g_assert_no_error(answer.error);
  g_autoptr(HarkWireMessage) m = hark_wire_decode(answer.reply, NULL);
  g_assert_cmpuint(m->type, ==, HARK_MSG_PROBE_REPLY);
  g_assert_cmpuint(m->id, ==, 7);
  g_assert_cmpint(answer.rtt_us, >, 0);
  g_assert_cmpint(answer.rtt_us, <, G_USEC_PER_SEC);
  /* The answer completed the request: A's handler never saw it. */
  g_assert_cmpuint(f->a.received, ==, 0);
  g_assert_cmpuint(f->b.received, ==, 1);
  g_assert_cmpint(stat_of(&f->a, "retransmissions"), ==, 0);
  g_assert_cmpint(stat_of(&f->a, "datagrams_out"), ==, 1);
  g_assert_cmpint(stat_of(&f->a, "datagrams_in"), ==, 1);
  g_assert_cmpint(stat_of(&f->b, "datagrams_in"), ==, 1);
  g_assert_cmpint(stat_of(&f->b, "datagrams_out"), ==, 1);
  g_assert_cmpint(stat_of(&f->b, "listening"), ==, f->b.iface->local_port(f->b.udp));
  /* A probed without listening: an ephemeral socket, but it does not count as listening. */
  g_assert_cmpuint(f->a.iface->local_port(f->a.udp), ==, 0);
  answer_clear(&answer);
}

static void
test_third_transmission(Fixture *f, gconstpointer data)
{
  f->b.answer_on = 3;
  Answer answer = { 0 };
  send_request(f, 8, 5000, NULL, &answer);
  run_until(&answer.done, 6000);
  g_assert_true(answer.done);
  g_assert_no_error(answer.error);
  g_assert_cmpuint(f->b.probes, ==, 3);
  g_assert_cmpint(stat_of(&f->a, "retransmissions"), ==, 2);
  g_assert_cmpint(stat_of(&f->a, "datagrams_out"), ==, 3);
  /* Measured from the last transmission (Karn): well under the 40 + 80 ms waited. */
  g_assert_cmpint(answer.rtt_us, <, 40000);
  answer_clear(&answer);
}

static void
test_timeout(Fixture *f, gconstpointer data)
{
  Answer answer = { 0 };
  gint64 start = g_get_monotonic_time();
  send_request(f, 9, 300, NULL, &answer);
  run_until(&answer.done, 3000);
  gint64 elapsed_ms = (g_get_monotonic_time() - start) / 1000;
  g_assert_true(answer.done);
  g_assert_error(answer.error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_TIMEOUT);
  g_assert_null(answer.reply);
  g_assert_cmpint(elapsed_ms, >=, 290);
  g_assert_cmpint(elapsed_ms, <, hark_test_timeout(800));
  g_assert_cmpint(stat_of(&f->a, "requests_timed_out"), ==, 1);
  /* 40, 80, 160 ms: sent at 0, 40, 120 and 280 ms. Each timer is armed when the one
   * before fires, so on a loaded machine a late one can push the last past the 300 ms
   * deadline: 1 to 3 retransmissions, and B saw each transmission. */
  gint64 retransmissions = stat_of(&f->a, "retransmissions");
  g_assert_cmpint(retransmissions, >=, 1);
  g_assert_cmpint(retransmissions, <=, 3);
  g_assert_cmpuint(f->b.probes, ==, retransmissions + 1);
  answer_clear(&answer);
}

static void
test_cancel(Fixture *f, gconstpointer data)
{
  f->b.answer_on = 2;
  /* Static: a callback that comes after all (the bug this case is for) must not write
   * into a stack frame that is gone. */
  static Answer answer;
  answer = (Answer){ 0 };
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  send_request(f, 10, 2000, cancellable, &answer);
  /* The request is under way (its first probe out), then cancelled: no answer may come
   * for longer than its retransmissions would take to run out. */
  hark_test_let_time_pass(20);
  g_cancellable_cancel(cancellable);
  hark_test_let_time_pass(300);
  g_assert_false(answer.done);

  /* Already cancelled when asked: nothing is sent, nothing is called. */
  gint64 out = stat_of(&f->a, "datagrams_out");
  send_request(f, 11, 2000, cancellable, &answer);
  hark_test_let_time_pass(100); /* checking that nothing happens */
  g_assert_false(answer.done);
  g_assert_cmpint(stat_of(&f->a, "datagrams_out"), ==, out);
}

static GSocket *
raw_socket(const char *ip)
{
  g_autoptr(GError) error = NULL;
  GSocket *s =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  g_assert_no_error(error);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string(ip, 0);
  g_assert_true(g_socket_bind(s, any, FALSE, &error));
  g_assert_no_error(error);
  return s;
}

static void
raw_send(GSocket *s, GSocketAddress *to, gsize size)
{
  g_autofree char *bytes = g_malloc0(size);
  g_autoptr(GError) error = NULL;
  g_assert_cmpint(g_socket_send_to(s, to, bytes, size, NULL, &error), ==, (gssize)size);
  g_assert_no_error(error);
}

static guint
count_from(Peer *p, const char *ip)
{
  return GPOINTER_TO_UINT(g_hash_table_lookup(p->from_ips, ip));
}

static void
test_flood(Fixture *f, gconstpointer data)
{
  g_autoptr(GSocketAddress) to = address_of(&f->b);
  g_autoptr(GSocket) flooder = raw_socket("127.0.0.1");
  /* In batches, so the kernel's receive buffer does not drop them before the plugin
   * sees them. */
  gint64 start = g_get_monotonic_time();
  for (int batch = 0; batch < 20; batch++) {
    for (int i = 0; i < 25; i++)
      raw_send(flooder, to, 40);
    wait_datagrams_in(&f->b, 25 * (batch + 1));
  }
  g_autoptr(GSocket) other = raw_socket("127.0.0.2");
  raw_send(other, to, 40);
  g_autoptr(GSocket) big = raw_socket("127.0.0.3");
  raw_send(big, to, 1600);
  raw_send(big, to, 1500);
  wait_datagrams_in(&f->b, 503);
  double seconds = (g_get_monotonic_time() - start) / (double)G_USEC_PER_SEC;

  guint delivered = count_from(&f->b, "127.0.0.1");
  g_test_message("flood: %u of 500 delivered, %" G_GINT64_FORMAT " dropped", delivered,
                 stat_of(&f->b, "dropped"));
  g_assert_cmpint(stat_of(&f->b, "datagrams_in"), ==, 503);
  /* A burst of 100, and 50/s more for the time the flood lasted (measured, so a slow
   * machine that takes longer to send them lets more through, as it should). */
  g_assert_cmpuint(delivered, >=, 100);
  g_assert_cmpuint(delivered, <=, 100 + (guint)(50 * seconds) + 1);
  g_assert_cmpint(stat_of(&f->b, "dropped"), ==, 500 - delivered + 1);
  g_assert_cmpuint(count_from(&f->b, "127.0.0.2"), ==, 1);
  /* 1500 bytes pass, 1600 do not. */
  g_assert_cmpuint(count_from(&f->b, "127.0.0.3"), ==, 1);
}

static void
test_wrong_source(Fixture *f, gconstpointer data)
{
  /* B answers, but from another port: that is not the answer A waits for. */
  f->b.answer_on = 1;
  f->b.via = raw_socket("127.0.0.1");
  Answer answer = { 0 };
  send_request(f, 12, 300, NULL, &answer);
  run_until(&answer.done, 2000);
  g_assert_true(answer.done);
  g_assert_error(answer.error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_TIMEOUT);
  /* The stray answers went to A's handler as ordinary datagrams. */
  g_assert_cmpuint(f->a.received, ==, f->b.probes);
  g_assert_cmpuint(f->a.received, >=, 1);
  answer_clear(&answer);
}

/* STUN shares the overlay's port: the transport hands it to the core like any datagram
 * that answers none of its requests (a super node's overlay answers it, see
 * tests/integration/test-overlay.c); the plugin itself neither answers nor drops it. */
static void
test_stun_handed_over(Fixture *f, gconstpointer data)
{
  static const guint8 request[] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1,  2,
                                    3,    4,    5,    6,    7,    8,    9,    10,   11, 12 };
  g_autoptr(GSocketAddress) to = address_of(&f->b);
  g_autoptr(GSocket) client = raw_socket("127.0.0.1");
  g_autoptr(GError) error = NULL;
  g_assert_cmpint(g_socket_send_to(client, to, (const char *)request, sizeof request, NULL, &error),
                  ==, sizeof request);
  g_assert_no_error(error);
  g_assert_true(hark_test_wait_for_uint(&f->b.received, 1, 5000));
  g_assert_cmpint(stat_of(&f->b, "datagrams_out"), ==, 0);
  char buffer[1500];
  g_socket_set_blocking(client, FALSE);
  g_assert_cmpint(g_socket_receive(client, buffer, sizeof buffer, NULL, NULL), <, 0);
}

static void
test_listen_twice(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(f->b.iface->listen(f->b.udp, "127.0.0.1", 0, &error));
  g_assert_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN);
  g_clear_error(&error);
  g_assert_false(f->a.iface->listen(f->a.udp, "not-an-ip", 0, &error));
  g_assert_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN);
  g_clear_error(&error);
  /* The port B holds cannot be taken twice. */
  g_assert_false(
    f->a.iface->listen(f->a.udp, "127.0.0.1", f->b.iface->local_port(f->b.udp), &error));
  g_assert_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN);
  g_clear_error(&error);
  f->b.iface->stop_listening(f->b.udp);
  g_assert_cmpuint(f->b.iface->local_port(f->b.udp), ==, 0);
  g_autoptr(JsonObject) stats = f->b.iface->stats(f->b.udp);
  g_assert_true(json_object_get_null_member(stats, "listening"));
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
#define ADD(path, fn) \
  hark_test_add_isolated(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD("/udp/probe", test_probe);
  ADD("/udp/third-transmission", test_third_transmission);
  ADD("/udp/timeout", test_timeout);
  ADD("/udp/cancel", test_cancel);
  ADD("/udp/flood", test_flood);
  ADD("/udp/wrong-source", test_wrong_source);
  ADD("/udp/stun-handed-over", test_stun_handed_over);
  ADD("/udp/listen-twice", test_listen_twice);
  return g_test_run();
}
