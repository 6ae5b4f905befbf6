/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tcp.c: the tcp transport (hark/transport.h): overlay links over plain TCP. It only
 * connects and accepts; every connection is handed to the core as a HarkLink, which
 * runs TLS 1.3 and the framing over it (hark/link.h).
 *
 * Settings: connect_timeout_ms (default 5000). */
#include "stream-common.h"

#define PLUGIN_NAME "tcp"
#define DEFAULT_CONNECT_TIMEOUT_MS 5000

typedef struct {
  HarkContext *ctx;
  guint connect_timeout_ms;
  GSocketClient *client;
  HarkStreamListener listener;
  guint64 opened, failed; /* failed: opens that gave no link (accepting counts its own) */
  GHashTable *opens; /* Open*: connections being made */
} Tcp;

typedef struct {
  HarkStreamAttempt attempt; /* first: hark_stream_attempts_drain */
  Tcp *tcp;
  char *host;
  guint16 port;
  HarkTransportOpened opened;
  gpointer user_data;
} Open;

/* ---- accepting ---------------------------------------------------------------------- */

static gboolean
tcp_listen(gpointer instance, const char *address, guint16 port, GError **error)
{
  Tcp *tcp = instance;
  if (tcp->listener.service != NULL) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "tcp already listens on port %u", tcp->listener.port);
    return FALSE;
  }
  return hark_stream_listener_start(&tcp->listener, address, port, error);
}

static void
tcp_stop_listening(gpointer instance)
{
  hark_stream_listener_stop(&((Tcp *)instance)->listener);
}

static guint16
tcp_local_port(gpointer instance)
{
  return ((Tcp *)instance)->listener.port;
}

/* ---- opening ------------------------------------------------------------------------ */

static void
open_free(Open *o)
{
  g_hash_table_remove(o->tcp->opens, o);
  hark_stream_attempt_clear(&o->attempt);
  g_free(o->host);
  g_free(o);
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
  if (hark_stream_attempt_abandoned(&o->attempt)) {
    g_clear_object(&connection);
    open_free(o);
    return;
  }
  HarkLink *link = NULL;
  if (connection == NULL) {
    gboolean timeout =
      o->attempt.timed_out || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    GError *failure = timeout ? g_error_new(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_TIMEOUT,
                                            "no TCP connection to %s:%u within %u ms", o->host,
                                            o->port, tcp->connect_timeout_ms)
                              : g_error_new(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_UNREACHABLE,
                                            "cannot connect to %s:%u over TCP: %s", o->host,
                                            o->port, error->message);
    g_clear_error(&error);
    error = failure;
  } else {
    g_clear_error(&error);
    hark_stream_set_nodelay(connection);
    link = hark_link_new_for_stream(tcp->ctx, PLUGIN_NAME, G_IO_STREAM(connection), TRUE, o->host,
                                    o->port, &error);
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
  g_hash_table_add(tcp->opens, o);
  GMainContext *context = hark_context_main_context(tcp->ctx);
  hark_stream_attempt_init(&o->attempt, cancellable);
  hark_stream_attempt_arm(&o->attempt, context, tcp->connect_timeout_ms);
  g_main_context_push_thread_default(context);
  g_socket_client_connect_to_host_async(tcp->client, host, port, o->attempt.cancellable, connected,
                                        o);
  g_main_context_pop_thread_default(context);
}

/* ---- the rest ------------------------------------------------------------------------ */

static JsonObject *
tcp_stats(gpointer instance)
{
  Tcp *tcp = instance;
  JsonObject *stats = json_object_new();
  if (tcp->listener.service != NULL)
    json_object_set_int_member(stats, "listening", tcp->listener.port);
  else
    json_object_set_null_member(stats, "listening");
  json_object_set_int_member(stats, "accepted", (gint64)tcp->listener.accepted);
  json_object_set_int_member(stats, "opened", (gint64)tcp->opened);
  /* Connections either way that did not become links. */
  json_object_set_int_member(stats, "failed", (gint64)(tcp->failed + tcp->listener.failed));
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
  hark_stream_attempts_drain(tcp->opens, hark_context_main_context(tcp->ctx));
  g_hash_table_unref(tcp->opens);
  g_object_unref(tcp->client);
  g_free(tcp);
}

static gboolean
tcp_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { "connect_timeout_ms", NULL };
  gint64 timeout = 0;
  if (!hark_settings_get_int(settings, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS, 1, 600000,
                             &timeout, error))
    return FALSE;
  hark_settings_warn_unknown(settings, hark_context_plugin_name(ctx), known);
  Tcp *tcp = g_new0(Tcp, 1);
  tcp->ctx = ctx;
  tcp->connect_timeout_ms = (guint)timeout;
  tcp->client = g_socket_client_new();
  /* Straight to the peer: the system's proxy settings are for the web, not the overlay. */
  g_socket_client_set_enable_proxy(tcp->client, FALSE);
  tcp->opens = g_hash_table_new(NULL, NULL);
  tcp->listener.ctx = ctx;
  tcp->listener.transport = PLUGIN_NAME;
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

HARK_PLUGIN_DEFINE(.name = PLUGIN_NAME, .version = HARK_VERSION,
                   .description = "overlay links over TCP (TLS 1.3 by the core)",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_TRANSPORT, .init = tcp_init,
                   .fini = tcp_fini);
