/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-natstun.c: the `stun` nat-probe plugin against STUN servers made in the test: a
 * plain RFC 5389 server (no NAT on loopback, behaviours unknown), no server at all (UDP
 * blocked), and bad input, every kind dropped and counted: a wrong magic cookie, a bad
 * length, an XOR-MAPPED-ADDRESS with a bad family, an unknown comprehension-required
 * attribute, an unknown transaction, and the right transaction from an address that was
 * not asked. Needs stun.so ($HARK_PLUGIN_PATH). */
#include <hark/hark.h>

#include <string.h>

#include "hark-private.h"
#include "hark/hark.h"
#include "stun.h"
#include "test-wait.h"
#include "test-isolate.h"

typedef enum {
  SERVE_GOOD, /* a correct answer */
  SERVE_BAD, /* every kind of bad answer, never a good one */
} ServeMode;

typedef struct {
  GSocket *socket, *elsewhere; /* the server, and another socket on the same host */
  GSource *source;
  ServeMode mode;
  guint requests;
} Server;

typedef struct {
  HarkNode *node;
  const HarkNatProbeInterface *iface;
  gpointer instance;
  Server server;
  HarkNatResult *result;
  gboolean done;
} Fixture;

static GSocket *
udp_socket(void)
{
  g_autoptr(GError) error = NULL;
  GSocket *socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  g_assert_no_error(error);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
  g_assert_true(g_socket_bind(socket, any, FALSE, &error));
  g_socket_set_blocking(socket, FALSE);
  return socket;
}

static void
send_bytes(GSocket *socket, GSocketAddress *to, GBytes *bytes)
{
  gsize size;
  const char *data = g_bytes_get_data(bytes, &size);
  g_assert_cmpint(g_socket_send_to(socket, to, data, size, NULL, NULL), ==, (gssize)size);
}

/* A copy of bytes with byte `at` xor'ed with `mask`. */
static GBytes *
patched(GBytes *bytes, gsize at, guint8 mask)
{
  gsize size;
  guint8 *copy = g_memdup2(g_bytes_get_data(bytes, &size), g_bytes_get_size(bytes));
  copy[at] ^= mask;
  return g_bytes_new_take(copy, size);
}

/* A success response with XOR-MAPPED-ADDRESS first: its family byte is at offset 25. */
static GBytes *
answer_of(GBytes *request, GSocketAddress *from, guint8 flip_transaction)
{
  HarkStunRequest read;
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_stun_read_request(request, FALSE, &read, &error));
  read.transaction_id[0] ^= flip_transaction;
  GBytes *answer = hark_stun_answer_request(&read, from, NULL, NULL, &error);
  g_assert_no_error(error);
  return answer;
}

static GBytes *
good_answer(GBytes *request, GSocketAddress *from)
{
  return answer_of(request, from, 0);
}

static void
serve_bad(Server *server, GBytes *request, GSocketAddress *from)
{
  g_autoptr(GBytes) good = good_answer(request, from);
  gsize size = g_bytes_get_size(good);
  g_autoptr(GBytes) cookie = patched(good, 4, 0x01);
  g_autoptr(GBytes) length = g_bytes_new_from_bytes(good, 0, size - 4);
  /* Family 0x01 -> 0x03: neither IPv4 nor IPv6 (FINGERPRINT is then wrong too, so drop it:
   * the length shrinks by 8 and the message stays well formed up to the family). */
  g_autoptr(GBytes) unfingerprinted = g_bytes_new_from_bytes(good, 0, size - 8);
  gsize usize;
  guint8 *family = g_memdup2(g_bytes_get_data(unfingerprinted, &usize), usize);
  family[3] = (guint8)(usize - 20);
  family[25] = 0x03;
  g_autoptr(GBytes) bad_family = g_bytes_new_take(family, usize);
  g_autoptr(GBytes) unknown_transaction = answer_of(request, from, 0xFF);
  send_bytes(server->socket, from, cookie);
  send_bytes(server->socket, from, length);
  send_bytes(server->socket, from, bad_family);
  send_bytes(server->socket, from, unknown_transaction);
  send_bytes(server->elsewhere, from, good); /* right transaction, wrong source */
}

static gboolean
on_request(GSocket *socket, GIOCondition condition, gpointer data)
{
  Server *server = data;
  guint8 buffer[1500];
  GSocketAddress *from_raw = NULL;
  gssize n = g_socket_receive_from(socket, &from_raw, (char *)buffer, sizeof buffer, NULL, NULL);
  g_autoptr(GSocketAddress) from = from_raw;
  if (n <= 0 || from == NULL)
    return G_SOURCE_CONTINUE;
  server->requests++;
  g_autoptr(GBytes) request = g_bytes_new(buffer, (gsize)n);
  if (server->mode == SERVE_GOOD) {
    g_autoptr(GBytes) answer = good_answer(request, from);
    send_bytes(socket, from, answer);
  } else {
    serve_bad(server, request, from);
  }
  return G_SOURCE_CONTINUE;
}

static char *
server_text(Server *server)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(server->socket, NULL);
  return g_strdup_printf("127.0.0.1:%u",
                         g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local)));
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  const char *conf = "plugins: { load = ( { name = \"stun\"; settings = { timeout_ms = 400; "
                     "initial_rto_ms = 50; }; } ); };\n";
  g_autoptr(GError) error = NULL;
  HarkConfig *config = hark_config_load_from_string(conf, "natstun.conf", &error);
  g_assert_no_error(error);
  f->node = hark_node_new(config);
  g_assert_true(hark_node_load_plugins(f->node, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) probes = hark_context_lookup(f->node->core_ctx, HARK_KIND_NAT_PROBE);
  g_assert_cmpuint(probes->len, ==, 1);
  const HarkRegistration *reg = probes->pdata[0];
  g_assert_cmpstr(reg->name, ==, "stun");
  f->iface = reg->iface;
  f->instance = reg->instance;
  f->server.socket = udp_socket();
  f->server.elsewhere = udp_socket();
  f->server.mode = GPOINTER_TO_INT(data);
  f->server.source = g_socket_create_source(f->server.socket, G_IO_IN, NULL);
  g_source_set_callback(f->server.source, G_SOURCE_FUNC(on_request), &f->server, NULL);
  g_source_attach(f->server.source, NULL);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  hark_nat_result_free(f->result);
  g_source_destroy(f->server.source);
  g_source_unref(f->server.source);
  g_object_unref(f->server.socket);
  g_object_unref(f->server.elsewhere);
  hark_node_free(f->node);
  hark_test_iterate();
}

static void
on_done(HarkNatResult *result, const GError *error, gpointer data)
{
  Fixture *f = data;
  g_assert_no_error(error);
  f->result = result;
  f->done = TRUE;
}

static void
probe(Fixture *f, const char *const *servers)
{
  f->iface->probe(f->instance, servers, NULL, on_done, f);
  g_assert_true(hark_test_wait_for_flag(&f->done, 10000));
}

static gint64
stat_of(Fixture *f, const char *name)
{
  g_autoptr(JsonObject) stats = f->iface->stats(f->instance);
  return json_object_get_int_member(stats, name);
}

/* A plain RFC 5389 server on loopback: no NAT; without OTHER-ADDRESS no behaviours. */
static void
test_plain_server(Fixture *f, gconstpointer data)
{
  g_autofree char *server = server_text(&f->server);
  const char *const servers[] = { "not-an-address", server, NULL };
  probe(f, servers);
  g_assert_cmpint(f->result->verdict, ==, HARK_NAT_VERDICT_OPEN);
  g_assert_cmpstr(f->result->server, ==, server);
  g_assert_true(g_str_has_prefix(f->result->mapped, "127.0.0.1:"));
  g_assert_null(f->result->other);
  g_assert_cmpint(f->result->mapping, ==, HARK_NAT_BEHAVIOUR_UNKNOWN);
  g_assert_cmpint(f->result->filtering, ==, HARK_NAT_BEHAVIOUR_UNKNOWN);
  g_assert_cmpint(stat_of(f, "responses"), ==, 1);
}

/* Nothing but bad answers: each dropped and counted, and the verdict is UDP blocked. */
static void
test_bad_answers(Fixture *f, gconstpointer data)
{
  g_autofree char *server = server_text(&f->server);
  const char *const servers[] = { server, NULL };
  probe(f, servers);
  g_assert_cmpuint(f->server.requests, >=, 2); /* retransmitted */
  g_assert_cmpint(f->result->verdict, ==, HARK_NAT_VERDICT_UDP_BLOCKED);
  g_assert_null(f->result->mapped);
  gint64 requests = (gint64)f->server.requests;
  /* wrong cookie, bad length, bad family: three malformed per request */
  g_assert_cmpint(stat_of(f, "dropped_malformed"), ==, 3 * requests);
  g_assert_cmpint(stat_of(f, "dropped_unexpected"), ==, requests);
  g_assert_cmpint(stat_of(f, "dropped_wrong_source"), ==, requests);
  g_assert_cmpint(stat_of(f, "responses"), ==, 0);
  g_assert_cmpint(stat_of(f, "timeouts"), ==, 1);
}

/* No server answers at all: UDP blocked, after the timeout. */
static void
test_silence(Fixture *f, gconstpointer data)
{
  g_autoptr(GSocket) silent = udp_socket();
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(silent, NULL);
  g_autofree char *server =
    g_strdup_printf("127.0.0.1:%u", g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local)));
  const char *const servers[] = { server, NULL };
  probe(f, servers);
  g_assert_cmpint(f->result->verdict, ==, HARK_NAT_VERDICT_UDP_BLOCKED);
  g_assert_cmpint(stat_of(f, "retransmissions"), >=, 1);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
#define ADD(path, mode, fn)                                                        \
  hark_test_add_isolated(path, Fixture, GINT_TO_POINTER(mode), fixture_set_up, fn, \
                         fixture_tear_down)
  ADD("/natstun/plain-server", SERVE_GOOD, test_plain_server);
  ADD("/natstun/bad-answers", SERVE_BAD, test_bad_answers);
  ADD("/natstun/silence", SERVE_GOOD, test_silence);
  return g_test_run();
}
