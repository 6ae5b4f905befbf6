/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* attack.h: clients that misbehave towards a super node, for the tests that show it
 * keeps serving: raw TCP or a WebSocket (tls443's port 80 path) under them, and an
 * OpenSSL client over memory BIOs that can stop anywhere in the TLS handshake or
 * present a certificate nobody pins.
 *
 * Every call is blocking with a bounded wait (sockets have receive timeouts), and
 * reports failures as FALSE with a g_test_message saying why. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  ATTACK_TCP, /* the bytes straight on a TCP connection (tcp, tls443's TLS port) */
  ATTACK_WEBSOCKET, /* in binary WebSocket messages after an upgrade (tls443's http port) */
} AttackCarrier;

typedef enum {
  ATTACK_CLOSE, /* connect (and upgrade), then close at once */
  ATTACK_GARBAGE, /* bytes that are not TLS, then close */
  ATTACK_ABORT, /* a ClientHello, the first answer, then close mid-handshake */
  ATTACK_UNTRUSTED, /* a whole handshake with a self-signed client certificate */
} AttackKind;

typedef struct _AttackConn AttackConn;

/* A connection from source (an address of this host, NULL: any) to host:port, upgraded
 * to a WebSocket at path when the carrier says so; NULL when that fails. */
AttackConn *attack_connect(AttackCarrier carrier, const char *source, const char *host,
                           guint16 port, const char *path);
/* TRUE when the other side closes within timeout_ms (whatever it sends before). */
gboolean attack_wait_closed(AttackConn *conn, guint timeout_ms);
void attack_conn_free(AttackConn *conn);

/* One failed handshake of that kind; TRUE once the SN has closed its side (so the
 * next starts after this one ended there). */
gboolean attack_failed_handshake(AttackKind kind, AttackCarrier carrier, const char *source,
                                 const char *host, guint16 port, const char *path);

G_END_DECLS
