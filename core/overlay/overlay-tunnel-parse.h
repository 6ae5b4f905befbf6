/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-tunnel-parse.h: what the login tunnel (overlay-tunnel.c) reads from others,
 * with no socket, link or overlay (overlay-tunnel-parse.c), so that the fuzz target
 * tests/fuzz/fuzz-tunnel.c feeds it bytes the way the tunnel does. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* 4 + 1 + 255 + 2: the largest SOCKS5 CONNECT request (and more than the largest greeting,
 * 2 + 255). */
#define HARK_SOCKS_MAX_REQUEST 262

/* A SOCKS5 client on the loopback endpoint, as far as it has been read: the caller reads
 * into request + have (at most HARK_SOCKS_MAX_REQUEST - have bytes) and adds to have. */
typedef struct {
  guint8 request[HARK_SOCKS_MAX_REQUEST];
  gsize have;
  gboolean greeted; /* its greeting offered "no authentication": method 0 was chosen */
} HarkSocksState;

typedef enum {
  HARK_SOCKS_MORE, /* read more */
  HARK_SOCKS_NO_METHOD, /* the greeting does not offer "no authentication": reply 0xff */
  HARK_SOCKS_UNSUPPORTED, /* not a CONNECT we take: reply 7 (command not supported) */
  HARK_SOCKS_CONNECT, /* a CONNECT to *host (taken: not checked, may be any bytes) :*port */
} HarkSocksStep;

/* The next step after new bytes. When the greeting completes in them, greeted becomes
 * TRUE (the caller replies method 0) and the request after it is read at once. */
HarkSocksStep hark_overlay_socks_step(HarkSocksState *state, char **host, guint16 *port);

/* A TUNNEL_OPEN's destination is the login server of login_url (this SN's own, the only
 * place its tunnels go). */
gboolean hark_overlay_tunnel_allowed(const char *login_url, const char *host, guint16 port);

G_END_DECLS
