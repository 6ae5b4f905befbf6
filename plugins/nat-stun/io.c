/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* io.c: STUN transactions of the `stun` plugin (see nat-stun.h). Answers come from the
 * Internet, so they are read with the core's strict parser (hark/stun.h) and accepted
 * only with the transaction id of a test still running and from the address that test
 * expects; the rest is dropped and counted. */
#include "nat-stun.h"

#include <string.h>

#define MAX_DATAGRAM 1500
#define READS_PER_DISPATCH 64
#define MAX_RTO_MS 1000

struct _IoSocket {
  Stun *stun;
  GSocket *socket;
  GSource *source;
  guint16 port;
  GPtrArray *tests; /* IoTest*, owned */
};

struct _IoTest {
  IoSocket *owner;
  GInetSocketAddress *to, *expect_from;
  guint8 transaction_id[HARK_STUN_TRANSACTION_ID_SIZE];
  GBytes *request;
  guint rto_ms;
  gint64 deadline_us;
  GSource *timer;
  IoTestDone done; /* NULL once finished or cancelled */
  gpointer data;
};

static gboolean
same_address(GInetSocketAddress *a, GInetSocketAddress *b)
{
  return g_inet_socket_address_get_port(a) == g_inet_socket_address_get_port(b) &&
         g_inet_address_equal(g_inet_socket_address_get_address(a),
                              g_inet_socket_address_get_address(b));
}

static void
stop_timer(IoTest *test)
{
  if (test->timer == NULL)
    return;
  g_source_destroy(test->timer);
  g_clear_pointer(&test->timer, g_source_unref);
}

static void
test_free(gpointer data)
{
  IoTest *test = data;
  stop_timer(test);
  g_object_unref(test->to);
  g_object_unref(test->expect_from);
  g_bytes_unref(test->request);
  g_free(test);
}

/* Calls back (once) with response or NULL. */
static void
finish(IoTest *test, HarkStunBindingResponse *response)
{
  IoTestDone done = test->done;
  test->done = NULL;
  stop_timer(test);
  if (done != NULL)
    done(response, test->data);
}

static void
send_request(IoTest *test)
{
  gsize size;
  const char *data = g_bytes_get_data(test->request, &size);
  g_autoptr(GError) error = NULL;
  if (g_socket_send_to(test->owner->socket, G_SOCKET_ADDRESS(test->to), data, size, NULL, &error) <
      0)
    g_debug("stun: cannot send: %s", error->message);
}

static gboolean on_timer(gpointer data);

static void
arm_timer(IoTest *test)
{
  gint64 left_ms = (test->deadline_us - g_get_monotonic_time() + 999) / 1000;
  stop_timer(test);
  test->timer = g_timeout_source_new((guint)CLAMP(MIN((gint64)test->rto_ms, left_ms), 0, G_MAXINT));
  g_source_set_callback(test->timer, on_timer, test, NULL);
  g_source_attach(test->timer, hark_context_main_context(test->owner->stun->ctx));
}

static gboolean
on_timer(gpointer data)
{
  IoTest *test = data;
  Stun *stun = test->owner->stun;
  g_clear_pointer(&test->timer, g_source_unref);
  if (g_get_monotonic_time() >= test->deadline_us) {
    stun->counters.timeouts++;
    finish(test, NULL);
    return G_SOURCE_REMOVE;
  }
  stun->counters.retransmissions++;
  send_request(test);
  test->rto_ms = MIN(test->rto_ms * 2, MAX_RTO_MS);
  arm_timer(test);
  return G_SOURCE_REMOVE;
}

IoTest *
io_test_start(IoSocket *socket, GInetSocketAddress *to, guint change,
              GInetSocketAddress *expect_from, IoTestDone done, gpointer data)
{
  Stun *stun = socket->stun;
  IoTest *test = g_new0(IoTest, 1);
  test->owner = socket;
  test->to = g_object_ref(to);
  test->expect_from = g_object_ref(expect_from);
  for (gsize i = 0; i < sizeof test->transaction_id; i++)
    test->transaction_id[i] = (guint8)g_random_int_range(0, 256);
  test->request = hark_stun_binding_request(test->transaction_id, change);
  test->rto_ms = stun->initial_rto_ms;
  test->deadline_us = g_get_monotonic_time() + (gint64)stun->timeout_ms * 1000;
  test->done = done;
  test->data = data;
  g_ptr_array_add(socket->tests, test);
  stun->counters.requests++;
  send_request(test);
  arm_timer(test);
  return test;
}

void
io_test_cancel(IoTest *test)
{
  test->done = NULL;
  stop_timer(test);
}

static IoTest *
find_test(IoSocket *socket, const guint8 *transaction_id)
{
  for (guint i = 0; i < socket->tests->len; i++) {
    IoTest *test = socket->tests->pdata[i];
    if (test->done != NULL &&
        memcmp(test->transaction_id, transaction_id, sizeof test->transaction_id) == 0)
      return test;
  }
  return NULL;
}

/* One datagram. Callbacks never free the socket (the probe does that from an idle). */
static void
handle_datagram(IoSocket *socket, GSocketAddress *from, GBytes *datagram)
{
  Stun *stun = socket->stun;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunBindingResponse) response = hark_stun_read_binding_response(datagram, &error);
  g_autofree char *who = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(from));
  if (response == NULL) {
    stun->counters.dropped_malformed++;
    g_debug("stun: dropped a datagram from %s: %s", who, error->message);
    return;
  }
  IoTest *test = find_test(socket, response->transaction_id);
  if (test == NULL) {
    stun->counters.dropped_unexpected++;
    g_debug("stun: dropped a response from %s: no transaction of ours", who);
    return;
  }
  if (!G_IS_INET_SOCKET_ADDRESS(from) ||
      !same_address(G_INET_SOCKET_ADDRESS(from), test->expect_from)) {
    stun->counters.dropped_wrong_source++;
    g_debug("stun: dropped a response from %s: not the address asked", who);
    return;
  }
  if (response->error_code != 0) {
    /* 420 from a server without RFC 5780, say: the test fails at once. */
    stun->counters.dropped_error++;
    g_debug("stun: error %u from %s", response->error_code, who);
    finish(test, NULL);
    return;
  }
  stun->counters.responses++;
  finish(test, response);
}

static gboolean
on_readable(GSocket *gsocket, GIOCondition condition, gpointer data)
{
  IoSocket *socket = data;
  for (int i = 0; i < READS_PER_DISPATCH; i++) {
    guint8 buffer[MAX_DATAGRAM];
    GSocketAddress *from_raw = NULL;
    gssize size =
      g_socket_receive_from(gsocket, &from_raw, (char *)buffer, sizeof buffer, NULL, NULL);
    g_autoptr(GSocketAddress) from = from_raw;
    if (size < 0)
      break;
    if (from == NULL)
      continue;
    g_autoptr(GBytes) datagram = g_bytes_new(buffer, (gsize)size);
    handle_datagram(socket, from, datagram);
  }
  return G_SOURCE_CONTINUE;
}

IoSocket *
io_socket_new(Stun *stun, GError **error)
{
  g_autoptr(GSocket) gsocket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
  g_autoptr(GInetAddress) any = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) bind_to = g_inet_socket_address_new(any, 0);
  if (gsocket == NULL || !g_socket_bind(gsocket, bind_to, FALSE, error))
    return NULL;
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address(gsocket, error);
  if (bound == NULL)
    return NULL;
  g_socket_set_blocking(gsocket, FALSE);
  IoSocket *socket = g_new0(IoSocket, 1);
  socket->stun = stun;
  socket->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  socket->socket = g_steal_pointer(&gsocket);
  socket->tests = g_ptr_array_new_with_free_func(test_free);
  socket->source = g_socket_create_source(socket->socket, G_IO_IN, NULL);
  g_source_set_callback(socket->source, G_SOURCE_FUNC(on_readable), socket, NULL);
  g_source_attach(socket->source, hark_context_main_context(stun->ctx));
  return socket;
}

guint16
io_socket_port(IoSocket *socket)
{
  return socket->port;
}

void
io_socket_free(IoSocket *socket)
{
  if (socket == NULL)
    return;
  g_source_destroy(socket->source);
  g_source_unref(socket->source);
  g_ptr_array_unref(socket->tests);
  g_socket_close(socket->socket, NULL);
  g_object_unref(socket->socket);
  g_free(socket);
}
