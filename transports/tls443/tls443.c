/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tls443.c: the tls443 transport (hark/transport.h): overlay links through firewalls
 * that let only web ports out. It tries TCP to the peer's tls_port (443: TLS there looks
 * like HTTPS), then a WebSocket to ws://host:http_port/path (80: through web proxies),
 * whose binary messages carry the link's TLS bytes. Either way the core runs TLS 1.3 and
 * the framing (hark/link.h); this plugin only moves bytes.
 *
 * Settings: tls_port (443), http_port (80), path ("/hark"), connect_timeout_ms (5000). */
#include "stream-common.h"

#include <libsoup/soup.h>
#include <string.h>

#define PLUGIN_NAME "tls443"
#define SUBPROTOCOL "hark-1"
/* A TLS record is at most 16 KiB plus overhead; writes are cut to this size and larger
 * incoming messages close the link, so neither side buffers without bound. */
#define MAX_MESSAGE (32 * 1024)

typedef struct {
  HarkContext *ctx;
  guint16 tls_port, http_port;
  char *path;
  guint connect_timeout_ms;
  GSocketClient *client;
  SoupSession *session;
  HarkStreamListener listener; /* while listening: the TLS port */
  SoupServer *server; /* while listening: the WebSocket endpoint */
  guint16 bound_http_port;
  GHashTable *opens; /* Open* being made */
  GHashTable *pipes; /* Pipe* the core has not closed yet */
  guint64 accepted_ws, opened_tls, opened_ws, failed;
} Tls443;

/* One WebSocket under a link. */
typedef struct {
  Tls443 *t;
  SoupWebsocketConnection *ws;
  HarkLink *link;
  gulong message_handler, closed_handler;
} Pipe;

typedef struct {
  HarkStreamAttempt attempt; /* first: hark_stream_attempts_drain; armed again for the
                              * WebSocket */
  Tls443 *t;
  char *host;
  GError *tls_error; /* why the TLS port failed, for the message when both do */
  char *url;
  HarkTransportOpened opened;
  gpointer user_data;
} Open;

/* ---- WebSocket pipes ---------------------------------------------------------------- */

static void
pipe_write(gpointer data, GBytes *bytes)
{
  Pipe *p = data;
  if (soup_websocket_connection_get_state(p->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  gsize size;
  const guint8 *bytes_data = g_bytes_get_data(bytes, &size);
  for (gsize offset = 0; offset < size; offset += MAX_MESSAGE)
    soup_websocket_connection_send_binary(p->ws, bytes_data + offset,
                                          MIN(MAX_MESSAGE, size - offset));
}

/* The core is done with the pipe (it may be inside one of our signal handlers: GObject
 * keeps the connection alive until the emission ends). */
static void
pipe_close(gpointer data)
{
  Pipe *p = data;
  g_hash_table_remove(p->t->pipes, p);
  g_signal_handler_disconnect(p->ws, p->message_handler);
  g_signal_handler_disconnect(p->ws, p->closed_handler);
  if (soup_websocket_connection_get_state(p->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close(p->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_object_unref(p->ws);
  g_free(p);
}

static const HarkLinkPipe pipe_iface = {
  .version = 1,
  .write = pipe_write,
  .close = pipe_close,
};

static void
on_ws_message(SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  Pipe *p = data;
  if (type != SOUP_WEBSOCKET_DATA_BINARY) {
    g_autoptr(GError) error =
      g_error_new_literal(HARK_LINK_ERROR, HARK_LINK_ERROR_PROTOCOL, "a text WebSocket message");
    hark_link_pipe_closed(p->link, error); /* frees p through pipe_close */
    return;
  }
  hark_link_pipe_received(p->link, message);
}

static void
on_ws_closed(SoupWebsocketConnection *ws, gpointer data)
{
  Pipe *p = data;
  g_autoptr(GError) error =
    g_error_new(HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED, "WebSocket closed (code %u)",
                soup_websocket_connection_get_close_code(ws));
  hark_link_pipe_closed(p->link, error);
}

/* Takes ws. NULL when the core refused the link (it has closed the pipe already). */
static HarkLink *
pipe_link(Tls443 *t, SoupWebsocketConnection *ws, gboolean opener, const char *host, guint16 port,
          GError **error)
{
  Pipe *p = g_new0(Pipe, 1);
  p->t = t;
  p->ws = ws;
  /* Larger ones make libsoup close the connection (1009), which ends the link. */
  soup_websocket_connection_set_max_incoming_payload_size(ws, MAX_MESSAGE);
  soup_websocket_connection_set_keepalive_interval(ws, 0);
  g_hash_table_add(t->pipes, p);
  p->message_handler = g_signal_connect(ws, "message", G_CALLBACK(on_ws_message), p);
  p->closed_handler = g_signal_connect(ws, "closed", G_CALLBACK(on_ws_closed), p);
  /* p->link is set before any signal can run: they come from the main loop. */
  HarkLink *link =
    hark_link_new_for_pipe(t->ctx, PLUGIN_NAME, &pipe_iface, p, opener, host, port, error);
  if (link != NULL && g_hash_table_contains(t->pipes, p))
    p->link = link;
  return link;
}

/* ---- accepting ---------------------------------------------------------------------- */

static void
on_websocket(SoupServer *server, SoupServerMessage *msg, const char *path,
             SoupWebsocketConnection *ws, gpointer data)
{
  Tls443 *t = data;
  g_autofree char *host = NULL;
  guint16 port;
  hark_stream_peer_of(soup_server_message_get_remote_address(msg), &host, &port);
  g_autoptr(GError) error = NULL;
  if (pipe_link(t, g_object_ref(ws), FALSE, host, port, &error) == NULL) {
    t->failed++;
    g_debug("turned away a WebSocket from %s:%u: %s", host, port, error->message);
  } else {
    t->accepted_ws++;
  }
}

static guint16
server_port(SoupServer *server)
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

static void tls443_stop_listening(gpointer instance);

static gboolean
listen_websocket(Tls443 *t, GSocketAddress *http_address, GError **error)
{
  t->server = soup_server_new("server-header", "hark", NULL);
  char *protocols[] = { (char *)SUBPROTOCOL, NULL };
  soup_server_add_websocket_handler(t->server, t->path, NULL, protocols, on_websocket, t, NULL);
  if (!soup_server_listen(t->server, http_address, 0, error))
    return FALSE;
  t->bound_http_port = server_port(t->server);
  return TRUE;
}

/* The overlay port is ignored: this transport's ports are its settings. */
static gboolean
tls443_listen(gpointer instance, const char *address, guint16 port, GError **error)
{
  Tls443 *t = instance;
  if (t->listener.service != NULL) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "tls443 already listens on ports %u and %u", t->listener.port, t->bound_http_port);
    return FALSE;
  }
  if (!hark_stream_listener_start(&t->listener, address, t->tls_port, error))
    return FALSE;
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address);
  g_autoptr(GSocketAddress) http_address = g_inet_socket_address_new(inet, t->http_port);
  g_autoptr(GError) local = NULL;
  /* The server accepts on the thread-default context of the moment: make it the node's. */
  GMainContext *context = hark_context_main_context(t->ctx);
  g_main_context_push_thread_default(context);
  gboolean ok = listen_websocket(t, http_address, &local);
  g_main_context_pop_thread_default(context);
  if (!ok) {
    tls443_stop_listening(t);
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "tls443 cannot listen on %s port %u (HTTP): %s", address, t->http_port,
                local->message);
    return FALSE;
  }
  g_debug("WebSocket on %s port %u at %s", address, t->bound_http_port, t->path);
  return TRUE;
}

static void
tls443_stop_listening(gpointer instance)
{
  Tls443 *t = instance;
  hark_stream_listener_stop(&t->listener);
  if (t->server != NULL) {
    soup_server_disconnect(t->server);
    g_clear_object(&t->server);
  }
  t->bound_http_port = 0;
}

static guint16
tls443_local_port(gpointer instance)
{
  return ((Tls443 *)instance)->listener.port;
}

/* ---- opening ------------------------------------------------------------------------ */

static void
open_free(Open *o)
{
  g_hash_table_remove(o->t->opens, o);
  hark_stream_attempt_clear(&o->attempt);
  g_clear_error(&o->tls_error);
  g_free(o->url);
  g_free(o->host);
  g_free(o);
}

/* Each try gets connect_timeout_ms. */
static void
arm(Open *o)
{
  hark_stream_attempt_arm(&o->attempt, hark_context_main_context(o->t->ctx),
                          o->t->connect_timeout_ms);
}

static void
finish_open(Open *o, HarkLink *link, GError *error)
{
  HarkTransportOpened opened = o->opened;
  gpointer user_data = o->user_data;
  if (link == NULL)
    o->t->failed++;
  open_free(o);
  opened(link, error, user_data); /* the callee owns error, as with tcp */
}

static char *
attempt_failure(Open *o, const GError *error)
{
  if (o->attempt.timed_out)
    return g_strdup_printf("no connection within %u ms", o->t->connect_timeout_ms);
  return g_strdup(error->message);
}

static void
ws_connected(GObject *source, GAsyncResult *result, gpointer data)
{
  Open *o = data;
  g_autoptr(GError) error = NULL;
  SoupWebsocketConnection *ws =
    soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &error);
  if (hark_stream_attempt_abandoned(&o->attempt)) {
    g_clear_object(&ws);
    open_free(o);
    return;
  }
  if (ws == NULL) {
    g_autofree char *why = attempt_failure(o, error);
    finish_open(o, NULL,
                g_error_new(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_UNREACHABLE,
                            "cannot reach %s over tls443: TLS port %u: %s; WebSocket %s: %s",
                            o->host, o->t->tls_port, o->tls_error->message, o->url, why));
    return;
  }
  GError *link_error = NULL;
  HarkLink *link = pipe_link(o->t, ws, TRUE, o->host, o->t->http_port, &link_error);
  if (link != NULL)
    o->t->opened_ws++;
  finish_open(o, link, link_error);
}

static void
try_websocket(Open *o)
{
  Tls443 *t = o->t;
  /* An IPv6 literal needs brackets in a URL. */
  gboolean literal6 = strchr(o->host, ':') != NULL;
  o->url = g_strdup_printf("ws://%s%s%s:%u%s", literal6 ? "[" : "", o->host, literal6 ? "]" : "",
                           t->http_port, t->path);
  g_autoptr(SoupMessage) msg = soup_message_new("GET", o->url);
  if (msg == NULL) {
    finish_open(o, NULL,
                g_error_new(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_UNREACHABLE,
                            "cannot reach %s over tls443: TLS port %u: %s; and %s is not a "
                            "valid URL",
                            o->host, t->tls_port, o->tls_error->message, o->url));
    return;
  }
  arm(o);
  char *protocols[] = { (char *)SUBPROTOCOL, NULL };
  GMainContext *context = hark_context_main_context(t->ctx);
  g_main_context_push_thread_default(context);
  soup_session_websocket_connect_async(t->session, msg, NULL, protocols, G_PRIORITY_DEFAULT,
                                       o->attempt.cancellable, ws_connected, o);
  g_main_context_pop_thread_default(context);
}

static void
tls_connected(GObject *source, GAsyncResult *result, gpointer data)
{
  Open *o = data;
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection =
    g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), result, &error);
  if (hark_stream_attempt_abandoned(&o->attempt)) {
    g_clear_object(&connection);
    open_free(o);
    return;
  }
  if (connection == NULL) {
    g_autofree char *why = attempt_failure(o, error);
    o->tls_error = g_error_new_literal(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_UNREACHABLE, why);
    try_websocket(o);
    return;
  }
  hark_stream_set_nodelay(connection);
  GError *link_error = NULL;
  HarkLink *link = hark_link_new_for_stream(o->t->ctx, PLUGIN_NAME, G_IO_STREAM(connection), TRUE,
                                            o->host, o->t->tls_port, &link_error);
  if (link != NULL)
    o->t->opened_tls++;
  finish_open(o, link, link_error);
}

static void
tls443_open(gpointer instance, const char *host, guint16 port, GCancellable *cancellable,
            HarkTransportOpened opened, gpointer user_data)
{
  Tls443 *t = instance;
  Open *o = g_new0(Open, 1);
  o->t = t;
  o->host = g_strdup(host);
  o->opened = opened;
  o->user_data = user_data;
  g_hash_table_add(t->opens, o);
  hark_stream_attempt_init(&o->attempt, cancellable);
  arm(o);
  GMainContext *context = hark_context_main_context(t->ctx);
  g_main_context_push_thread_default(context);
  g_socket_client_connect_to_host_async(t->client, host, t->tls_port, o->attempt.cancellable,
                                        tls_connected, o);
  g_main_context_pop_thread_default(context);
}

/* ---- the rest ----------------------------------------------------------------------- */

static JsonObject *
tls443_stats(gpointer instance)
{
  Tls443 *t = instance;
  JsonObject *stats = json_object_new();
  if (t->listener.service != NULL) {
    json_object_set_int_member(stats, "listening", t->listener.port);
    json_object_set_int_member(stats, "http_port", t->bound_http_port);
  } else {
    json_object_set_null_member(stats, "listening");
    json_object_set_null_member(stats, "http_port");
  }
  json_object_set_int_member(stats, "accepted_tls", (gint64)t->listener.accepted);
  json_object_set_int_member(stats, "accepted_websocket", (gint64)t->accepted_ws);
  json_object_set_int_member(stats, "opened_tls", (gint64)t->opened_tls);
  json_object_set_int_member(stats, "opened_websocket", (gint64)t->opened_ws);
  json_object_set_int_member(stats, "failed", (gint64)(t->failed + t->listener.failed));
  return stats;
}

static const HarkTransportInterface tls443_interface = {
  .version = HARK_TRANSPORT_INTERFACE_VERSION,
  .flags = HARK_TRANSPORT_STREAM,
  .listen = tls443_listen,
  .stop_listening = tls443_stop_listening,
  .local_port = tls443_local_port,
  .open = tls443_open,
  .stats = tls443_stats,
};

static void
tls443_free(Tls443 *t)
{
  tls443_stop_listening(t);
  hark_stream_attempts_drain(t->opens, hark_context_main_context(t->ctx));
  GHashTableIter iter;
  gpointer item;
  /* Links still on a WebSocket would call into this plugin after it is gone: end them
   * (the core then closes each pipe, which removes it from the table). */
  while (g_hash_table_size(t->pipes) > 0) {
    g_hash_table_iter_init(&iter, t->pipes);
    g_hash_table_iter_next(&iter, &item, NULL);
    Pipe *p = item;
    g_autoptr(GError) error = g_error_new_literal(HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED,
                                                  "the tls443 plugin is unloading");
    if (p->link != NULL)
      hark_link_pipe_closed(p->link, error);
    else
      pipe_close(p);
  }
  g_hash_table_unref(t->pipes);
  g_hash_table_unref(t->opens);
  g_object_unref(t->session);
  g_object_unref(t->client);
  g_free(t->path);
  g_free(t);
}

static gboolean
tls443_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { "tls_port", "http_port", "path", "connect_timeout_ms",
                                       NULL };
  gint64 tls_port, http_port, timeout;
  g_autofree char *path = NULL;
  if (!hark_settings_get_int(settings, "tls_port", 443, 0, 65535, &tls_port, error) ||
      !hark_settings_get_int(settings, "http_port", 80, 0, 65535, &http_port, error) ||
      !hark_settings_get_int(settings, "connect_timeout_ms", 5000, 1, 600000, &timeout, error) ||
      !hark_settings_get_string(settings, "path", "/hark", &path, error))
    return FALSE;
  if (path[0] != '/' || strpbrk(path, " ?#") != NULL) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "setting 'path' must be a URL path starting with '/' (got '%s')", path);
    return FALSE;
  }
  hark_settings_warn_unknown(settings, hark_context_plugin_name(ctx), known);

  Tls443 *t = g_new0(Tls443, 1);
  t->ctx = ctx;
  t->tls_port = (guint16)tls_port;
  t->http_port = (guint16)http_port;
  t->path = g_steal_pointer(&path);
  t->connect_timeout_ms = (guint)timeout;
  t->client = g_socket_client_new();
  /* Direct connections both ways, like the login client: the system's proxy settings
   * belong to the desktop's browser, and resolving them (libproxy) runs per request. */
  g_socket_client_set_enable_proxy(t->client, FALSE);
  t->session = soup_session_new_with_options("user-agent", "hark/" HARK_VERSION, NULL);
  soup_session_set_proxy_resolver(t->session, NULL);
  t->opens = g_hash_table_new(NULL, NULL);
  t->listener.ctx = ctx;
  t->listener.transport = PLUGIN_NAME;
  t->pipes = g_hash_table_new(NULL, NULL);
  if (!hark_context_register(ctx, HARK_KIND_TRANSPORT, PLUGIN_NAME, HARK_RANK_SECONDARY,
                             &tls443_interface, t, error)) {
    tls443_free(t);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, t);
  return TRUE;
}

static void
tls443_fini(HarkContext *ctx)
{
  tls443_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = PLUGIN_NAME, .version = HARK_VERSION,
                   .description = "overlay links over TCP 443 or a WebSocket on port 80",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_TRANSPORT,
                   .init = tls443_init, .fini = tls443_fini);
