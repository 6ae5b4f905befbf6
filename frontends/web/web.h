/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* web.h: what the parts of the web frontend share (docs/web-frontend.md). web.c is the
 * plugin (settings, start/stop, events, the web-url command); http.c the HTTP server
 * (the page's files, /login, the WebSocket and its clients); auth.c the node's secret,
 * the one-time login tokens and the session cookies, with the parsers of what a browser
 * sends (no socket there, so tests/fuzz/fuzz-webauth.c feeds them). */
#pragma once

#include <hark/hark.h>
#include <libsoup/soup.h>

#define WEB_SECRET_FILE "web-secret"
#define WEB_SECRET_BYTES 32
#define WEB_TOKEN_BYTES 32
/* A login link is good for this long, and once. */
#define WEB_TOKEN_LIFETIME_SECONDS 60
/* Unused login links kept at most: minting more waits for some to expire. */
#define WEB_MAX_TOKENS 32
/* A session cookie is good for this long after it was issued. */
#define WEB_SESSION_LIFETIME_SECONDS (30 * 24 * 3600)
#define WEB_SESSION_COOKIE "hark_session"
/* A WebSocket message larger than this closes the connection (as ctl's max_line). */
#define WEB_MAX_MESSAGE 65536

/* ---- auth.c ------------------------------------------------------------------------- */

typedef struct {
  guint8 secret[WEB_SECRET_BYTES];
  GHashTable *tokens; /* SHA-256 of a token (hex) -> expiry (gint64*, monotonic µs) */
} WebAuth;

/* Reads the secret from path, or creates it (mode 0600) when there is none; refuses a
 * file other users may read, one that is not a regular file, or one not 64 hex digits. */
gboolean web_auth_init(WebAuth *auth, const char *path, GError **error);
void web_auth_clear(WebAuth *auth);
/* A new one-time token (64 hex digits), good until now_us + lifetime; NULL with error
 * when WEB_MAX_TOKENS unused ones are outstanding. */
char *web_auth_mint_token(WebAuth *auth, gint64 now_us, GError **error);
/* Consumes token: TRUE once for a token minted and not expired at now_us. */
gboolean web_auth_take_token(WebAuth *auth, const char *token, gint64 now_us);

/* A session cookie's value for the time now (unix s): "v1.ISSUED.NONCE.MAC"; NULL when
 * no random bytes could be had. */
char *web_session_new(const WebAuth *auth, gint64 now);
/* Is value a session this secret issued, at most WEB_SESSION_LIFETIME_SECONDS before now? */
gboolean web_session_check(const guint8 *secret, const char *value, gint64 now);
/* The value of cookie name in a Cookie header ("a=b; name=value"), or NULL. A name given
 * twice is no value (NULL): a cookie tossed in by a sibling host must not win by order. */
char *web_cookie_find(const char *header, const char *name);
/* Is token the shape web_auth_mint_token makes (64 lowercase hex digits)? */
gboolean web_token_is_valid(const char *token);

/* ---- http.c and web.c --------------------------------------------------------------- */

typedef struct _WebClient WebClient;

typedef struct {
  HarkContext *ctx;
  /* settings */
  char *address_setting;
  guint port_setting;
  char *tls_cert, *tls_key;
  guint max_clients;
  /* while started */
  WebAuth auth;
  gboolean auth_ready;
  SoupServer *server;
  gboolean tls;
  gboolean wildcard; /* listening on 0.0.0.0 or ::: any Host is accepted */
  char *host; /* "127.0.0.1:8480", "[::1]:8480": what Host must say, and the links' host */
  char *origin; /* "http://" + host: what a WebSocket's Origin must say */
  GPtrArray *clients; /* WebClient*, one reference each */
  guint client_seq; /* numbers clients in log lines */
  /* what was refused, for `web-status` (since the plugin was loaded) */
  struct {
    guint64 login_links; /* a token unknown, used or expired */
    guint64 hosts; /* a Host that is not ours (DNS rebinding) */
    guint64 origins; /* a WebSocket from another origin, or none */
    guint64 sessions; /* a WebSocket without a valid session cookie */
    guint64 busy; /* a WebSocket beyond max_clients */
    guint64 messages; /* a binary WebSocket message */
  } refused;
  guint64 logins; /* login links taken */
} WebServer;

/* The `address` setting as an address (web.c); NULL with error when it is none. */
GInetAddress *web_address(WebServer *s, GError **error);
/* The array for WebServer.clients. */
GPtrArray *web_clients_new(void);
/* Listen and serve; fills host and origin. */
gboolean web_http_start(WebServer *s, GError **error);
void web_http_stop(WebServer *s);
/* Send text (one JSON object) to every WebSocket client. */
void web_http_broadcast(WebServer *s, const char *text);
/* "http(s)://HOST/login?token=T" for a new token. */
char *web_login_url(WebServer *s, GError **error);
