/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stream-common.c: see stream-common.h. */
#include "stream-common.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

void
hark_stream_set_nodelay(GSocketConnection *connection)
{
  g_autoptr(GError) error = NULL;
  if (!g_socket_set_option(g_socket_connection_get_socket(connection), IPPROTO_TCP, TCP_NODELAY, 1,
                           &error))
    g_debug("cannot set TCP_NODELAY: %s", error->message);
}

void
hark_stream_peer_of(GSocketAddress *address, char **host, guint16 *port)
{
  *host = NULL;
  *port = 0;
  if (G_IS_INET_SOCKET_ADDRESS(address)) {
    GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS(address);
    *host = g_inet_address_to_string(g_inet_socket_address_get_address(inet));
    *port = g_inet_socket_address_get_port(inet);
  }
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  HarkStreamListener *l = data;
  g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address(connection, NULL);
  g_autofree char *host = NULL;
  guint16 port = 0;
  hark_stream_peer_of(remote, &host, &port);
  hark_stream_set_nodelay(connection);
  g_autoptr(GError) error = NULL;
  /* The core takes the connection (ours is the signal's) and gives the link to the
   * node's overlay; we keep nothing. */
  HarkLink *link = hark_link_new_for_stream(
    l->ctx, l->transport, G_IO_STREAM(g_object_ref(connection)), FALSE, host, port, &error);
  if (link == NULL) {
    l->failed++;
    g_debug("turned away a connection from %s:%u: %s", host, port, error->message);
  } else {
    l->accepted++;
  }
  return TRUE;
}

#define STREAM_LISTEN_BACKLOG 1024

gboolean
hark_stream_listener_start(HarkStreamListener *l, const char *address, guint16 port, GError **error)
{
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address);
  if (inet == NULL) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "%s cannot listen on '%s': not an IP address", l->transport, address);
    return FALSE;
  }
  g_autoptr(GSocketAddress) wanted = g_inet_socket_address_new(inet, port);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) local = NULL;
  /* The service accepts on the thread-default context of the moment: the node's. */
  GMainContext *context = hark_context_main_context(l->ctx);
  g_main_context_push_thread_default(context);
  GSocketService *service = g_socket_service_new();
  /* GLib's backlog of 10 overflows under a burst of connections (a flood, or many
   * nodes coming back after an SN restart): the kernel then drops SYNs and honest
   * clients wait seconds for their retransmission. The kernel caps it at somaxconn. */
  g_socket_listener_set_backlog(G_SOCKET_LISTENER(service), STREAM_LISTEN_BACKLOG);
  gboolean ok =
    g_socket_listener_add_address(G_SOCKET_LISTENER(service), wanted, G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, NULL, &effective, &local);
  if (ok) {
    g_signal_connect(service, "incoming", G_CALLBACK(on_incoming), l);
    g_socket_service_start(service);
  }
  g_main_context_pop_thread_default(context);
  if (!ok) {
    g_object_unref(service);
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "%s cannot listen on %s port %u: %s", l->transport, address, port, local->message);
    return FALSE;
  }
  l->service = service;
  l->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
  g_debug("listening on %s port %u", address, l->port);
  return TRUE;
}

void
hark_stream_listener_stop(HarkStreamListener *l)
{
  if (l->service == NULL)
    return;
  g_signal_handlers_disconnect_by_data(l->service, l);
  g_socket_service_stop(l->service);
  g_socket_listener_close(G_SOCKET_LISTENER(l->service));
  g_clear_object(&l->service);
  l->port = 0;
}

static void
on_caller_cancelled(GCancellable *caller, gpointer data)
{
  g_cancellable_cancel(((HarkStreamAttempt *)data)->cancellable);
}

static void
destroy_timeout(HarkStreamAttempt *a)
{
  if (a->timeout != NULL) {
    g_source_destroy(a->timeout);
    g_clear_pointer(&a->timeout, g_source_unref);
  }
}

void
hark_stream_attempt_init(HarkStreamAttempt *a, GCancellable *caller)
{
  a->cancellable = g_cancellable_new();
  if (caller != NULL) {
    a->caller = g_object_ref(caller);
    a->caller_handler = g_cancellable_connect(caller, G_CALLBACK(on_caller_cancelled), a, NULL);
  }
}

static gboolean
on_timeout(gpointer data)
{
  HarkStreamAttempt *a = data;
  a->timed_out = TRUE;
  g_clear_pointer(&a->timeout, g_source_unref);
  g_cancellable_cancel(a->cancellable);
  return G_SOURCE_REMOVE;
}

void
hark_stream_attempt_arm(HarkStreamAttempt *a, GMainContext *context, guint timeout_ms)
{
  destroy_timeout(a);
  /* A caller's cancel must reach the new cancellable too. */
  gboolean cancelled = a->caller != NULL && g_cancellable_is_cancelled(a->caller);
  g_object_unref(a->cancellable);
  a->cancellable = g_cancellable_new();
  if (cancelled)
    g_cancellable_cancel(a->cancellable);
  a->timed_out = FALSE;
  a->timeout = g_timeout_source_new(timeout_ms);
  g_source_set_callback(a->timeout, on_timeout, a, NULL);
  g_source_attach(a->timeout, context);
}

gboolean
hark_stream_attempt_abandoned(HarkStreamAttempt *a)
{
  return (a->caller != NULL && g_cancellable_is_cancelled(a->caller)) ||
         (g_cancellable_is_cancelled(a->cancellable) && !a->timed_out);
}

void
hark_stream_attempt_abandon(HarkStreamAttempt *a)
{
  g_cancellable_cancel(a->cancellable);
}

void
hark_stream_attempt_clear(HarkStreamAttempt *a)
{
  destroy_timeout(a);
  if (a->caller != NULL) {
    g_cancellable_disconnect(a->caller, a->caller_handler);
    g_clear_object(&a->caller);
  }
  g_clear_object(&a->cancellable);
}

void
hark_stream_attempts_drain(GHashTable *set, GMainContext *context)
{
  GHashTableIter iter;
  gpointer item;
  g_hash_table_iter_init(&iter, set);
  while (g_hash_table_iter_next(&iter, &item, NULL))
    hark_stream_attempt_abandon(item);
  while (g_hash_table_size(set) > 0)
    g_main_context_iteration(context, TRUE);
}
