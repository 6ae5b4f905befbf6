/* tcp.c: the tcp transport (hark/transport.h): overlay links over plain TCP. It only
 * connects and accepts; every connection is handed to the core as a HarkLink, which
 * runs TLS 1.3 and the framing over it (hark/link.h).
 *
 * Settings: connect_timeout_ms (default 5000). */
#include <hark/hark.h>


#define PLUGIN_NAME "tcp"
#define DEFAULT_CONNECT_TIMEOUT_MS 5000

typedef struct {
  HarkContext *ctx;
  guint connect_timeout_ms;
  GSocketClient *client;
  GSocketService *service; /* while listening */
  guint16 port;
  guint64 accepted, opened, failed;
  GHashTable *opens; /* Open*: connections being made */
} Tcp;

typedef struct {
  Tcp *tcp;
  char *host;
  guint16 port;
  GCancellable *cancellable; /* ours: the caller's cancel, the timeout and fini cancel it */
  GCancellable *caller;
  gulong caller_handler;
  GSource *timeout;
  gboolean timed_out;
  HarkTransportOpened opened;
  gpointer user_data;
} Open;

/* ---- accepting ---------------------------------------------------------------------- */

static gboolean
on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source,
            gpointer data)
{
  Tcp *tcp = data;
  g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address(connection, NULL);
  g_autofree char *host = NULL;
  guint16 port = 0;
  if (G_IS_INET_SOCKET_ADDRESS(remote)) {
    GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS(remote);
    host = g_inet_address_to_string(g_inet_socket_address_get_address(inet));
    port = g_inet_socket_address_get_port(inet);
  }
  hark_transport_tune_connection(connection);
  g_autoptr(GError) error = NULL;
  /* The core takes the connection (ours is the signal's) and gives the link to the
   * node's overlay; we keep nothing. */
  HarkLink *link = hark_link_new_for_stream(tcp->ctx, PLUGIN_NAME,
                                            G_IO_STREAM(g_object_ref(connection)), FALSE,
                                            host, port, &error);
  if (link == NULL) {
    tcp->failed++;
    g_debug("turned away a connection from %s:%u: %s", host, port, error->message);
  } else {
    tcp->accepted++;
  }
  return TRUE;
}

static gboolean
tcp_listen(gpointer instance, const char *address, guint16 port, GError **error)
{
  Tcp *tcp = instance;
  if (tcp->service != NULL) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "tcp already listens on port %u", tcp->port);
    return FALSE;
  }
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address);
  if (inet == NULL) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "tcp cannot listen on '%s': not an IP address", address);
    return FALSE;
  }
  g_autoptr(GSocketAddress) wanted = g_inet_socket_address_new(inet, port);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) local = NULL;
  /* The service accepts on the thread-default context of the moment: the node's. */
  GMainContext *context = hark_context_main_context(tcp->ctx);
  g_main_context_push_thread_default(context);
  GSocketService *service = g_socket_service_new();
  gboolean ok = g_socket_listener_add_address(G_SOCKET_LISTENER(service), wanted,
                                              G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                              NULL, &effective, &local);
  if (ok) {
    g_signal_connect(service, "incoming", G_CALLBACK(on_incoming), tcp);
    g_socket_service_start(service);
  }
  g_main_context_pop_thread_default(context);
  if (!ok) {
    g_object_unref(service);
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "tcp cannot listen on %s port %u: %s", address, port, local->message);
    return FALSE;
  }
  tcp->service = service;
  tcp->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
  g_debug("listening on %s port %u", address, tcp->port);
  return TRUE;
}

static void
tcp_stop_listening(gpointer instance)
{
  Tcp *tcp = instance;
  if (tcp->service == NULL)
    return;
  g_signal_handlers_disconnect_by_data(tcp->service, tcp);
  g_socket_service_stop(tcp->service);
  g_socket_listener_close(G_SOCKET_LISTENER(tcp->service));
  g_clear_object(&tcp->service);
  tcp->port = 0;
}

static guint16
tcp_local_port(gpointer instance)
{
  return ((Tcp *)instance)->port;
}

/* ---- opening ------------------------------------------------------------------------ */

static void
open_free(Open *o)
{
  g_hash_table_remove(o->tcp->opens, o);
  if (o->timeout != NULL) {
    g_source_destroy(o->timeout);
    g_source_unref(o->timeout);
  }
  if (o->caller != NULL) {
    g_cancellable_disconnect(o->caller, o->caller_handler);
    g_object_unref(o->caller);
  }
  g_object_unref(o->cancellable);
  g_free(o->host);
  g_free(o);
}

static void
on_caller_cancelled(GCancellable *caller, gpointer data)
{
  g_cancellable_cancel(((Open *)data)->cancellable);
}

static gboolean
on_connect_timeout(gpointer data)
{
  Open *o = data;
  o->timed_out = TRUE;
  g_clear_pointer(&o->timeout, g_source_unref);
  g_cancellable_cancel(o->cancellable);
  return G_SOURCE_REMOVE;
}

static void
connected(GObject *source, GAsyncResult *result, gpointer data)
{
  Open *o = data;
  Tcp *tcp = o->tcp;
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection =
    g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), result, &error);
  /* Cancelled by the caller, or by fini: nobody is to be told. */
  if ((o->caller != NULL && g_cancellable_is_cancelled(o->caller)) ||
      (g_cancellable_is_cancelled(o->cancellable) && !o->timed_out)) {
    g_clear_object(&connection);
    open_free(o);
    return;
  }
  HarkLink *link = NULL;
  if (connection == NULL) {
    gboolean timeout = o->timed_out || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    GError *failure = timeout
      ? g_error_new(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_TIMEOUT,
                    "no TCP connection to %s:%u within %u ms", o->host, o->port,
                    tcp->connect_timeout_ms)
      : g_error_new(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_UNREACHABLE,
                    "cannot connect to %s:%u over TCP: %s", o->host, o->port, error->message);
    g_clear_error(&error);
    error = failure;
  } else {
    g_clear_error(&error);
    hark_transport_tune_connection(connection);
    link = hark_link_new_for_stream(tcp->ctx, PLUGIN_NAME, G_IO_STREAM(connection), TRUE,
                                    o->host, o->port, &error);
  }
  if (link != NULL)
    tcp->opened++;
  else
    tcp->failed++;
  HarkTransportOpened opened = o->opened;
  gpointer user_data = o->user_data;
  open_free(o);
  opened(link, g_steal_pointer(&error), user_data);
}

static void
tcp_open(gpointer instance, const char *host, guint16 port, GCancellable *cancellable,
         HarkTransportOpened opened, gpointer user_data)
{
  Tcp *tcp = instance;
  Open *o = g_new0(Open, 1);
  o->tcp = tcp;
  o->host = g_strdup(host);
  o->port = port;
  o->opened = opened;
  o->user_data = user_data;
  o->cancellable = g_cancellable_new();
  g_hash_table_add(tcp->opens, o);
  if (cancellable != NULL) {
    o->caller = g_object_ref(cancellable);
    o->caller_handler =
      g_cancellable_connect(cancellable, G_CALLBACK(on_caller_cancelled), o, NULL);
  }
  GMainContext *context = hark_context_main_context(tcp->ctx);
  o->timeout = g_timeout_source_new(tcp->connect_timeout_ms);
  g_source_set_callback(o->timeout, on_connect_timeout, o, NULL);
  g_source_attach(o->timeout, context);
  g_main_context_push_thread_default(context);
  g_socket_client_connect_to_host_async(tcp->client, host, port, o->cancellable, connected, o);
  g_main_context_pop_thread_default(context);
}

/* ---- the rest ------------------------------------------------------------------------ */

static JsonObject *
tcp_stats(gpointer instance)
{
  Tcp *tcp = instance;
  JsonObject *stats = json_object_new();
  if (tcp->service != NULL)
    json_object_set_int_member(stats, "listening", tcp->port);
  else
    json_object_set_null_member(stats, "listening");
  json_object_set_int_member(stats, "accepted", (gint64)tcp->accepted);
  json_object_set_int_member(stats, "opened", (gint64)tcp->opened);
  /* Connections either way that did not become links. */
  json_object_set_int_member(stats, "failed", (gint64)tcp->failed);
  return stats;
}

static const HarkTransportInterface tcp_interface = {
  .version = HARK_TRANSPORT_INTERFACE_VERSION,
  .flags = HARK_TRANSPORT_STREAM,
  .listen = tcp_listen,
  .stop_listening = tcp_stop_listening,
  .local_port = tcp_local_port,
  .open = tcp_open,
  .stats = tcp_stats,
};

static void
tcp_free(Tcp *tcp)
{
  tcp_stop_listening(tcp);
  /* Their callbacks are plugin code: let them all run before the plugin is unloaded. */
  GHashTableIter iter;
  gpointer o;
  g_hash_table_iter_init(&iter, tcp->opens);
  while (g_hash_table_iter_next(&iter, &o, NULL))
    g_cancellable_cancel(((Open *)o)->cancellable);
  while (g_hash_table_size(tcp->opens) > 0)
    g_main_context_iteration(hark_context_main_context(tcp->ctx), TRUE);
  g_hash_table_unref(tcp->opens);
  g_object_unref(tcp->client);
  g_free(tcp);
}

static gboolean
tcp_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { "connect_timeout_ms", NULL };
  gint64 timeout = 0;
  if (!hark_settings_get_int(settings, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS, 1,
                             600000, &timeout, error))
    return FALSE;
  hark_settings_warn_unknown(settings, hark_context_plugin_name(ctx), known);
  Tcp *tcp = g_new0(Tcp, 1);
  tcp->ctx = ctx;
  tcp->connect_timeout_ms = (guint)timeout;
  tcp->client = g_socket_client_new();
  /* Straight to the peer: the system's proxy settings are for the web, not the overlay. */
  g_socket_client_set_enable_proxy(tcp->client, FALSE);
  tcp->opens = g_hash_table_new(NULL, NULL);
  if (!hark_context_register(ctx, HARK_KIND_TRANSPORT, PLUGIN_NAME, HARK_RANK_PRIMARY,
                             &tcp_interface, tcp, error)) {
    tcp_free(tcp);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, tcp);
  return TRUE;
}

static void
tcp_fini(HarkContext *ctx)
{
  tcp_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = PLUGIN_NAME,
                   .version = HARK_VERSION,
                   .description = "overlay links over TCP (TLS 1.3 by the core)",
                   .license = "LGPL-2.1-or-later",
                   .kinds = HARK_KIND_TRANSPORT,
                   .init = tcp_init,
                   .fini = tcp_fini);
