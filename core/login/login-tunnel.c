/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-tunnel.c: the way to the login server through the super node (login.h,
 * hark_login_client_set_tunnel): a direct request that gets no connection in time, or
 * no answer, is sent once more the other way. */
#include "login-impl.h"

/* The patience counts from the first step of the message's own connection: a message
 * queued behind the session's per-host connection limit (a burst of requests) is waiting
 * for the server to answer others, which says nothing about the path to it. */
static void
on_network_event(SoupMessage *msg, GSocketClientEvent event, GIOStream *connection, gpointer data)
{
  Op *op = data;
  if (op->sent_at == 0)
    op->sent_at = g_get_monotonic_time();
  if (event == G_SOCKET_CLIENT_CONNECTED)
    op->connected = TRUE;
}

/* A pooled connection sends no network events; writing the headers proves it is up. */
static void
on_wrote_headers(SoupMessage *msg, gpointer data)
{
  ((Op *)data)->connected = TRUE;
}

/* Every half second while a direct message has no connection: after
 * DIRECT_CONNECT_PATIENCE_MS, give it up as soon as the super node's way is ready. */
static gboolean
on_direct_patience(gpointer data)
{
  Op *op = data;
  HarkLoginClient *client = op->client;
  if (op->connected) {
    op->patience_source = 0;
    return G_SOURCE_REMOVE;
  }
  if (op->sent_at == 0 ||
      g_get_monotonic_time() - op->sent_at < DIRECT_CONNECT_PATIENCE_MS * 1000 ||
      client->tunnel == NULL || client->via_tunnel || !client->tunnel_ready(client->tunnel_data))
    return G_SOURCE_CONTINUE;
  op->patience_source = 0;
  op->gave_up = TRUE;
  g_cancellable_cancel(op->attempt);
  return G_SOURCE_REMOVE;
}

/* Only the first direct attempt: once the other way was tried, each way gets its full time. */
void
hark_login_watch_direct_connection(Op *op)
{
  if (op->client->via_tunnel || op->other_way_tried)
    return;
  op->sent_at = 0;
  g_signal_connect(op->msg, "network-event", G_CALLBACK(on_network_event), op);
  g_signal_connect(op->msg, "wrote-headers", G_CALLBACK(on_wrote_headers), op);
  op->patience_source = g_timeout_add(500, on_direct_patience, op);
}

/* No answer: when the overlay offers a tunnel, try the other way once (through the SN
 * when direct failed, directly when the tunnel failed). A TLS failure is not a blocked
 * path but a wrong server, and is not retried. */
gboolean
hark_login_op_try_other_way(Op *op, const GError *error)
{
  HarkLoginClient *client = op->client;
  if (op->other_way_tried || client->tunnel == NULL || error->domain == G_TLS_ERROR ||
      op->tls_errors != 0 || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;
  /* The other way of this message's: the client's way may have changed meanwhile (another
   * request that gave up first), and going back the way that just failed helps nobody. */
  gboolean to_tunnel = !op->via_tunnel;
  if (to_tunnel && !client->tunnel_ready(client->tunnel_data))
    return FALSE;
  op->other_way_tried = TRUE;
  client->via_tunnel = to_tunnel;
  soup_session_set_proxy_resolver(client->session, to_tunnel ? client->tunnel : NULL);
  if (to_tunnel)
    g_message("the login server cannot be reached directly (%s): trying through the super node",
              error->message);
  else
    g_message("the way through the super node failed (%s): trying the login server directly",
              error->message);
  hark_login_op_transmit(op);
  return TRUE;
}

void
hark_login_client_set_tunnel(HarkLoginClient *client, GProxyResolver *resolver,
                             gboolean (*ready)(gpointer data), gpointer data)
{
  g_clear_object(&client->tunnel);
  client->tunnel = resolver != NULL ? g_object_ref(resolver) : NULL;
  client->tunnel_ready = ready;
  client->tunnel_data = data;
  if (resolver == NULL && client->via_tunnel) {
    client->via_tunnel = FALSE;
    soup_session_set_proxy_resolver(client->session, NULL);
  }
}

void
hark_login_client_set_proxy_resolver(HarkLoginClient *client, GProxyResolver *resolver)
{
  soup_session_set_proxy_resolver(client->session, resolver);
}
