/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* http.c: the web frontend's HTTP server (docs/web-frontend.md): the page's files (from
 * the GResource page.gresource.xml builds into the plugin), /login (a one-time token to
 * a session cookie), and the WebSocket at /ws, which speaks the control protocol
 * (hark/control.h), one JSON object per text message. Every check of who is asking
 * (Host, cookie, Origin) happens before anything is served or upgraded. libsoup's
 * sources attach to the node's main context. */
#include "web.h"

#include <string.h>

#include "web-page.h"

#define RESOURCE_ROOT "/org/hark/web/"
#define CSP                                                                                        \
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "             \
  "script-src 'self'; frame-ancestors 'none'"

struct _WebClient {
  gint ref_count;
  WebServer *server; /* NULL once closed */
  guint number; /* for log lines */
  SoupWebsocketConnection *connection;
  gulong message_handler, closed_handler;
};

static const char login_needed_page[] =
  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
  "<title>hark</title></head><body><main><h1>hark</h1>"
  "<p>To use this phone in your browser, open the link that <code>hark ctl web-url</code> "
  "prints (it works once, for a minute). The node also logs one when it starts.</p>"
  "</main></body></html>\n";

static const char token_refused_page[] =
  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
  "<title>hark</title></head><body><main><h1>hark</h1>"
  "<p>This link has been used already, has expired, or was never good. Ask for a new one "
  "with <code>hark ctl web-url</code>.</p></main></body></html>\n";

/* ---- answers ------------------------------------------------------------------------- */

static void
add_security_headers(SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(headers, "Content-Security-Policy", CSP);
  soup_message_headers_replace(headers, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace(headers, "Referrer-Policy", "no-referrer");
  soup_message_headers_replace(headers, "Cache-Control", "no-store");
}

static void
answer_page(SoupServerMessage *msg, guint status, const char *page)
{
  soup_server_message_set_status(msg, status, NULL);
  soup_server_message_set_response(msg, "text/html; charset=utf-8", SOUP_MEMORY_STATIC, page,
                                   strlen(page));
}

static void
answer_status(SoupServerMessage *msg, guint status)
{
  soup_server_message_set_status(msg, status, NULL);
  const char *reason = soup_status_get_phrase(status);
  soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, reason,
                                   strlen(reason));
}

/* ---- who is asking ------------------------------------------------------------------- */

/* DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends
 * "Host: evil.example:PORT". Only the address we listen on is ours. */
static gboolean
host_is_ours(WebServer *s, SoupServerMessage *msg)
{
  if (s->wildcard)
    return TRUE;
  const char *host =
    soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Host");
  return host != NULL && g_ascii_strcasecmp(host, s->host) == 0;
}

static gboolean
has_session(WebServer *s, SoupServerMessage *msg)
{
  const char *header =
    soup_message_headers_get_list(soup_server_message_get_request_headers(msg), "Cookie");
  g_autofree char *value = web_cookie_find(header, WEB_SESSION_COOKIE);
  return web_session_check(s->auth.secret, value,
                           hark_clock_now_seconds(hark_context_get_clock(s->ctx)));
}

/* The page's own origin: the scheme and the Host it was loaded from (which host_is_ours
 * checked). A page of another site sends its own. */
static gboolean
origin_is_ours(WebServer *s, SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(msg);
  const char *origin = soup_message_headers_get_one(headers, "Origin");
  const char *host = soup_message_headers_get_one(headers, "Host");
  if (origin == NULL || host == NULL)
    return FALSE;
  g_autofree char *expected = g_strconcat(s->tls ? "https://" : "http://", host, NULL);
  return g_ascii_strcasecmp(origin, expected) == 0;
}

/* A peer-supplied string for a log line: escaped, and cut short. */
static char *
loggable(const char *text)
{
  if (text == NULL)
    return g_strdup("(none)");
  g_autofree char *cut = g_strndup(text, 120);
  return g_strescape(cut, NULL);
}

/* ---- the page's files ------------------------------------------------------------------ */

static const char *
content_type(const char *path)
{
  static const char *const types[][2] = {
    { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },   { ".svg", "image/svg+xml" },
    { ".png", "image/png" },                 { ".ico", "image/x-icon" },
    { ".json", "application/json" },        { ".woff2", "font/woff2" },
    { ".webmanifest", "application/manifest+json" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(types); i++)
    if (g_str_has_suffix(path, types[i][0]))
      return types[i][1];
  return "application/octet-stream";
}

static GBytes *
gzip_bytes(GBytes *plain)
{
  g_autoptr(GZlibCompressor) compressor = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 9);
  g_autoptr(GOutputStream) memory = g_memory_output_stream_new_resizable();
  g_autoptr(GOutputStream) out = g_converter_output_stream_new(memory, G_CONVERTER(compressor));
  gsize size;
  const void *data = g_bytes_get_data(plain, &size);
  if (!g_output_stream_write_all(out, data, size, NULL, NULL, NULL) ||
      !g_output_stream_close(out, NULL, NULL))
    return NULL;
  return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(memory));
}

static gboolean
accepts_gzip(SoupServerMessage *msg)
{
  const char *list =
    soup_message_headers_get_list(soup_server_message_get_request_headers(msg), "Accept-Encoding");
  return list != NULL && soup_header_contains(list, "gzip");
}

/* name: "index.html", "app.js"; FALSE when the page has no such file. */
static gboolean
serve_file(SoupServerMessage *msg, const char *name)
{
  /* The resource holds only the page's files: no path leads anywhere else, but say no
   * to the odd ones before looking. */
  if (*name == '\0' || strstr(name, "..") != NULL || strstr(name, "//") != NULL)
    return FALSE;
  g_autofree char *path = g_strconcat(RESOURCE_ROOT, name, NULL);
  g_autoptr(GBytes) bytes =
    g_resource_lookup_data(web_page_get_resource(), path, G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
  if (bytes == NULL)
    return FALSE;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_append(headers, "Vary", "Accept-Encoding");
  g_autoptr(GBytes) gzipped = accepts_gzip(msg) ? gzip_bytes(bytes) : NULL;
  if (gzipped != NULL && g_bytes_get_size(gzipped) < g_bytes_get_size(bytes)) {
    soup_message_headers_replace(headers, "Content-Encoding", "gzip");
    g_clear_pointer(&bytes, g_bytes_unref);
    bytes = g_bytes_ref(gzipped);
  }
  soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type(headers, content_type(name), NULL);
  soup_message_body_append_bytes(soup_server_message_get_response_body(msg), bytes);
  return TRUE;
}

/* ---- /login ---------------------------------------------------------------------------- */

static void
serve_login(WebServer *s, SoupServerMessage *msg, GHashTable *query)
{
  const char *token = query != NULL ? g_hash_table_lookup(query, "token") : NULL;
  HarkClock *clock = hark_context_get_clock(s->ctx);
  if (!web_auth_take_token(&s->auth, token, hark_clock_now_monotonic(clock))) {
    s->refused.login_links++;
    g_message("refused a login link: %s", token == NULL ? "no token" : "unknown, used or expired");
    answer_page(msg, SOUP_STATUS_FORBIDDEN, token_refused_page);
    return;
  }
  g_autofree char *session = web_session_new(&s->auth, hark_clock_now_seconds(clock));
  if (session == NULL) {
    answer_status(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR);
    return;
  }
  g_autofree char *cookie =
    g_strdup_printf(WEB_SESSION_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s",
                    session, WEB_SESSION_LIFETIME_SECONDS, s->tls ? "; Secure" : "");
  soup_message_headers_append(soup_server_message_get_response_headers(msg), "Set-Cookie", cookie);
  soup_server_message_set_redirect(msg, SOUP_STATUS_SEE_OTHER, "/");
  s->logins++;
  g_message("a browser logged in with a login link");
}

/* ---- every path but /ws -------------------------------------------------------------------- */

static void
on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer data)
{
  WebServer *s = data;
  add_security_headers(msg);
  const char *method = soup_server_message_get_method(msg);
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
    answer_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED);
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
                                 "GET, HEAD");
    return;
  }
  if (!host_is_ours(s, msg)) {
    s->refused.hosts++;
    answer_status(msg, SOUP_STATUS_MISDIRECTED_REQUEST);
    return;
  }
  if (strcmp(path, "/login") == 0) {
    serve_login(s, msg, query);
  } else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
    if (!has_session(s, msg))
      answer_page(msg, SOUP_STATUS_UNAUTHORIZED, login_needed_page);
    else if (!serve_file(msg, "index.html"))
      answer_status(msg, SOUP_STATUS_NOT_FOUND);
  } else if (!serve_file(msg, path + 1)) {
    answer_status(msg, SOUP_STATUS_NOT_FOUND);
  }
}

/* ---- /ws: the checks before the upgrade ---------------------------------------------------- */

static void
refuse_websocket(SoupServerMessage *msg, guint64 *counter, guint status, const char *why)
{
  (*counter)++;
  g_autofree char *origin = loggable(
    soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Origin"));
  g_message("refused a WebSocket (Origin %s): %s", origin, why);
  answer_status(msg, status);
}

/* Runs before libsoup's handshake: a status set here means no upgrade. */
static void
on_websocket_request(SoupServer *server, SoupServerMessage *msg, const char *path,
                     GHashTable *query, gpointer data)
{
  WebServer *s = data;
  add_security_headers(msg);
  if (!host_is_ours(s, msg))
    refuse_websocket(msg, &s->refused.hosts, SOUP_STATUS_MISDIRECTED_REQUEST, "another Host");
  else if (!origin_is_ours(s, msg))
    refuse_websocket(msg, &s->refused.origins, SOUP_STATUS_FORBIDDEN, "another origin");
  else if (!has_session(s, msg))
    refuse_websocket(msg, &s->refused.sessions, SOUP_STATUS_FORBIDDEN, "no valid session cookie");
  else if (s->clients->len >= s->max_clients)
    refuse_websocket(msg, &s->refused.busy, SOUP_STATUS_SERVICE_UNAVAILABLE, "too many clients");
}

/* ---- WebSocket clients ------------------------------------------------------------------------ */

static WebClient *
client_ref(WebClient *c)
{
  g_atomic_int_inc(&c->ref_count);
  return c;
}

static void
client_unref(WebClient *c)
{
  if (!g_atomic_int_dec_and_test(&c->ref_count))
    return;
  g_clear_object(&c->connection);
  g_free(c);
}

/* Leave the server's list; the connection closes (or has closed) on its own. */
static void
client_forget(WebClient *c)
{
  WebServer *s = c->server;
  if (s == NULL)
    return;
  c->server = NULL;
  g_signal_handler_disconnect(c->connection, c->message_handler);
  g_signal_handler_disconnect(c->connection, c->closed_handler);
  g_debug("web client %u disconnected", c->number);
  g_ptr_array_remove(s->clients, c); /* last: it may hold the last reference */
}

static void
client_send(WebClient *c, const char *text)
{
  if (c->server != NULL &&
      soup_websocket_connection_get_state(c->connection) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_send_text(c->connection, text);
}

/* The answer to one message (NULL for a blank one): now, or later. */
static void
message_done(GString *answer, gpointer data)
{
  WebClient *c = data;
  if (answer != NULL) {
    client_send(c, answer->str);
    g_string_free(answer, TRUE);
  }
  client_unref(c);
}

static void
on_message(SoupWebsocketConnection *connection, gint type, GBytes *message, gpointer data)
{
  WebClient *c = data;
  if (type != SOUP_WEBSOCKET_DATA_TEXT) {
    c->server->refused.messages++;
    g_message("web client %u sent a binary message; closing it", c->number);
    soup_websocket_connection_close(connection, SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA,
                                    "text messages only");
    return;
  }
  gsize size;
  const char *text = g_bytes_get_data(message, &size);
  hark_control_handle(c->server->ctx, text, size, message_done, client_ref(c));
}

static void
on_closed(SoupWebsocketConnection *connection, gpointer data)
{
  client_forget(data);
}

static void
on_websocket(SoupServer *server, SoupServerMessage *msg, const char *path,
             SoupWebsocketConnection *connection, gpointer data)
{
  WebServer *s = data;
  WebClient *c = g_new0(WebClient, 1);
  c->ref_count = 1;
  c->server = s;
  c->number = ++s->client_seq;
  c->connection = g_object_ref(connection);
  soup_websocket_connection_set_max_incoming_payload_size(connection, WEB_MAX_MESSAGE);
  /* A browser that vanished without a close (a laptop lid) is noticed. */
  soup_websocket_connection_set_keepalive_interval(connection, 30);
  c->message_handler = g_signal_connect(connection, "message", G_CALLBACK(on_message), c);
  c->closed_handler = g_signal_connect(connection, "closed", G_CALLBACK(on_closed), c);
  g_ptr_array_add(s->clients, c);
  g_debug("web client %u connected", c->number);
  g_autoptr(JsonObject) hello = hark_control_hello_new(s->ctx);
  g_autoptr(GString) text = hark_control_object_text(hello);
  client_send(c, text->str);
}

GPtrArray *
web_clients_new(void)
{
  return g_ptr_array_new_with_free_func((GDestroyNotify)client_unref);
}

void
web_http_broadcast(WebServer *s, const char *text)
{
  /* A copy: a client may leave the list while we send. */
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func((GDestroyNotify)client_unref);
  for (guint i = 0; i < s->clients->len; i++)
    g_ptr_array_add(clients, client_ref(s->clients->pdata[i]));
  for (guint i = 0; i < clients->len; i++)
    client_send(clients->pdata[i], text);
}

/* ---- listening --------------------------------------------------------------------------- */

static guint16
bound_port(SoupServer *server)
{
  GSList *listeners = soup_server_get_listeners(server);
  guint16 port = 0;
  if (listeners != NULL) {
    g_autoptr(GSocketAddress) local = g_socket_get_local_address(listeners->data, NULL);
    if (local != NULL)
      port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
  }
  g_slist_free(listeners);
  return port;
}

/* host: the address as a URL has it ("[::1]" for IPv6); a wildcard's links go to loopback. */
static char *
url_host(GInetAddress *address)
{
  gboolean v6 = g_inet_address_get_family(address) == G_SOCKET_FAMILY_IPV6;
  g_autofree char *text = g_inet_address_get_is_any(address) ? g_strdup(v6 ? "::1" : "127.0.0.1")
                                                              : g_inet_address_to_string(address);
  return v6 ? g_strdup_printf("[%s]", text) : g_steal_pointer(&text);
}

static SoupServer *
server_new(WebServer *s, GError **error)
{
  if (s->tls_cert == NULL)
    return soup_server_new("server-header", "hark", NULL);
  const char *state_dir = hark_context_state_dir(s->ctx);
  g_autofree char *cert = hark_config_state_path(state_dir, s->tls_cert);
  g_autofree char *key = hark_config_state_path(state_dir, s->tls_key);
  g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_files(cert, key, error);
  if (certificate == NULL) {
    g_prefix_error(error, "cannot read tls_cert %s and tls_key %s: ", cert, key);
    return NULL;
  }
  return soup_server_new("server-header", "hark", "tls-certificate", certificate, NULL);
}

static gboolean
listen_now(WebServer *s, GInetAddress *address, GError **error)
{
  s->server = server_new(s, error);
  if (s->server == NULL)
    return FALSE;
  s->tls = s->tls_cert != NULL;
  soup_server_add_handler(s->server, NULL, on_request, s, NULL);
  soup_server_add_handler(s->server, "/ws", on_websocket_request, s, NULL);
  soup_server_add_websocket_handler(s->server, "/ws", NULL, NULL, on_websocket, s, NULL);
  g_autoptr(GSocketAddress) where = g_inet_socket_address_new(address, s->port_setting);
  if (!soup_server_listen(s->server, where, s->tls ? SOUP_SERVER_LISTEN_HTTPS : 0, error)) {
    g_autofree char *text = g_inet_address_to_string(address);
    g_prefix_error(error, "cannot listen on %s port %u: ", text, s->port_setting);
    return FALSE;
  }
  return TRUE;
}

gboolean
web_http_start(WebServer *s, GError **error)
{
  g_autoptr(GInetAddress) address = web_address(s, error);
  if (address == NULL)
    return FALSE;
  s->wildcard = g_inet_address_get_is_any(address);
  /* The server's sources (listener, connections) attach to the thread-default context
   * at the time they are made: the node's. */
  GMainContext *context = hark_context_main_context(s->ctx);
  g_main_context_push_thread_default(context);
  gboolean ok = listen_now(s, address, error);
  g_main_context_pop_thread_default(context);
  if (!ok)
    return FALSE;
  g_autofree char *host = url_host(address);
  s->host = g_strdup_printf("%s:%u", host, bound_port(s->server));
  s->origin = g_strconcat(s->tls ? "https://" : "http://", s->host, NULL);
  return TRUE;
}

void
web_http_stop(WebServer *s)
{
  while (s->clients->len > 0) {
    WebClient *c = client_ref(s->clients->pdata[0]);
    if (soup_websocket_connection_get_state(c->connection) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close(c->connection, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
                                      "the node stops");
    client_forget(c);
    client_unref(c);
  }
  if (s->server != NULL)
    soup_server_disconnect(s->server);
  g_clear_object(&s->server);
  g_clear_pointer(&s->host, g_free);
  g_clear_pointer(&s->origin, g_free);
}

char *
web_login_url(WebServer *s, GError **error)
{
  if (s->server == NULL) {
    g_set_error_literal(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                        "the web frontend is not serving");
    return NULL;
  }
  g_autofree char *token =
    web_auth_mint_token(&s->auth, hark_clock_now_monotonic(hark_context_get_clock(s->ctx)), error);
  if (token == NULL)
    return NULL;
  return g_strdup_printf("%s/login?token=%s", s->origin, token);
}
