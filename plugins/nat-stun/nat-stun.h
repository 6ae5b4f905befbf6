/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nat-stun.h: what the two files of the `stun` nat-probe plugin share.
 *
 * io.c runs STUN transactions: a UDP socket on the node's main loop, binding requests
 * retransmitted until their answer or a timeout, answers matched by transaction id and
 * by the address they must come from (everything else dropped and counted).
 * nat-stun.c runs RFC 5780's tests (RFC 5389 binding, mapping, filtering) with them and
 * is the plugin. */
#pragma once

#include <hark/hark.h>

G_BEGIN_DECLS

/* What the plugin counted, for `nat`. */
typedef struct {
  guint64 probes;
  guint64 requests, retransmissions, responses, timeouts;
  guint64 dropped_malformed; /* not a valid binding response (hark/stun.h says why) */
  guint64 dropped_unexpected; /* no transaction of ours has that id */
  guint64 dropped_wrong_source; /* our transaction's id, from an address we did not ask */
  guint64 dropped_error; /* an error response (e.g. 420: no RFC 5780) */
} StunCounters;

typedef struct {
  HarkContext *ctx;
  guint timeout_ms; /* a test without an answer by then failed */
  guint initial_rto_ms; /* first retransmission; doubles */
  StunCounters counters;
} Stun;

typedef struct _IoSocket IoSocket;
typedef struct _IoTest IoTest;

/* response: NULL when the test timed out; borrowed. */
typedef void (*IoTestDone)(HarkStunBindingResponse *response, gpointer data);

/* A UDP socket on 0.0.0.0 and an ephemeral port, read on the node's main loop. */
IoSocket *io_socket_new(Stun *stun, GError **error);
guint16 io_socket_port(IoSocket *socket);
/* Ends every test of the socket without calling back, and closes it. */
void io_socket_free(IoSocket *socket);

/* A binding request (with CHANGE-REQUEST flags `change`) to `to`, whose answer must come
 * from expect_from. done is called once, unless the test is cancelled first. */
IoTest *io_test_start(IoSocket *socket, GInetSocketAddress *to, guint change,
                      GInetSocketAddress *expect_from, IoTestDone done, gpointer data);
/* No callback any more; the test is freed with its socket. */
void io_test_cancel(IoTest *test);

G_END_DECLS
