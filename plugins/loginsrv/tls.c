/* tls.c: the login server's listening socket and its TLS handshakes.
 *
 * libsoup can do TLS itself, but GIO (2.74) offers no way to choose the protocol
 * versions of a connection, and glib-networking's GnuTLS default also accepts TLS 1.2.
 * So connections are accepted and handshaken here: one that negotiated anything but
 * TLS 1.3 is closed before a byte of HTTP is read, and the others are handed to libsoup
 * (soup_server_accept_iostream). An operator who wants TLS 1.2 refused during the
 * handshake itself can set G_TLS_GNUTLS_PRIORITY=NORMAL:-VERS-ALL:+VERS-TLS1.3 in the
 * environment (process-wide). Handshakes have a time limit and their number is bounded,
 * so a client that connects and says nothing cannot pile them up. */
#include "loginsrv.h"

#define HANDSHAKE_TIMEOUT_SECONDS 10
#define MAX_HANDSHAKES 256
/* Logins come in bursts (a network coming back); GIO's default backlog is 10. */
#define LISTEN_BACKLOG 128

struct _LoginListener {
  LoginServer *server;
  GTlsCertificate *certificate;
  GSocket *socket;
  GSource *source;
  GHashTable *handshakes; /* Handshake*, owned */
};

typedef struct {
  LoginListener *listener;
  GSocketConnection *connection;
  GIOStream *tls;
  GCancellable *cancellable;
  GSource *timeout;
  char *peer; /* for the log */
} Handshake;

/* ---- one handshake ------------------------------------------------------------------------- */

static void
handshake_free(gpointer data)
{
  Handshake *h = data;
  g_source_destroy(h->timeout);
  g_source_unref(h->timeout);
  g_clear_object(&h->tls);
  g_clear_object(&h->connection);
  g_object_unref(h->cancellable);
  g_free(h->peer);
  g_free(h);
}

static char *
peer_name(GSocket *socket)
{
  g_autoptr(GSocketAddress) address = g_socket_get_remote_address(socket, NULL);
  if (!G_IS_INET_SOCKET_ADDRESS(address))
    return g_strdup("?");
  GInetAddress *inet = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(address));
  return g_inet_address_to_string(inet);
}

static gboolean
on_handshake_timeout(gpointer data)
{
  Handshake *h = data;
  g_cancellable_cancel(h->cancellable);
  return G_SOURCE_REMOVE;
}

static const char *
protocol_name(GTlsProtocolVersion version)
{
  switch (version) {
  case G_TLS_PROTOCOL_VERSION_SSL_3_0: return "SSL 3.0";
  case G_TLS_PROTOCOL_VERSION_TLS_1_0: return "TLS 1.0";
  case G_TLS_PROTOCOL_VERSION_TLS_1_1: return "TLS 1.1";
  case G_TLS_PROTOCOL_VERSION_TLS_1_2: return "TLS 1.2";
  case G_TLS_PROTOCOL_VERSION_TLS_1_3: return "TLS 1.3";
  default: return "an unknown protocol";
  }
}

/* Gives a TLS 1.3 connection to libsoup; anything else is only logged (and closed). */
static void
hand_over(Handshake *h)
{
  LoginServer *s = h->listener->server;
  GTlsProtocolVersion version = g_tls_connection_get_protocol_version(G_TLS_CONNECTION(h->tls));
  if (version != G_TLS_PROTOCOL_VERSION_TLS_1_3) {
    g_debug("closed a connection from %s: it negotiated %s; only TLS 1.3 is served", h->peer,
            protocol_name(version));
    return;
  }
  GSocket *socket = g_socket_connection_get_socket(h->connection);
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, NULL);
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, NULL);
  g_autoptr(GError) error = NULL;
  if (s->soup == NULL || s->stopping ||
      !soup_server_accept_iostream(s->soup, h->tls, local, remote, &error)) {
    g_debug("dropped the connection from %s: %s", h->peer,
            error ? error->message : "the server is stopping");
    return;
  }
  g_clear_object(&h->connection); /* libsoup owns the stream now */
}

static void
on_handshake(GObject *source, GAsyncResult *result, gpointer data)
{
  Handshake *h = data;
  g_autoptr(GError) error = NULL;
  if (g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), result, &error))
    hand_over(h);
  else
    g_debug("TLS handshake with %s failed: %s", h->peer, error->message);
  /* Not handed over: close the socket itself (no close_notify, which could block). */
  if (h->connection != NULL)
    g_io_stream_close(G_IO_STREAM(h->connection), NULL, NULL);
  g_hash_table_remove(h->listener->handshakes, h);
}

static void
handshake_start(LoginListener *l, GSocket *socket)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = g_socket_connection_factory_create_connection(socket);
  GIOStream *tls = g_tls_server_connection_new(G_IO_STREAM(connection), l->certificate, &error);
  if (tls == NULL) {
    g_warning("cannot start TLS: %s", error->message);
    g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
    return;
  }
  /* As libsoup does: an HTTP client may close TCP after the answer without notifying. */
  g_tls_connection_set_require_close_notify(G_TLS_CONNECTION(tls), FALSE);
  Handshake *h = g_new0(Handshake, 1);
  h->listener = l;
  h->connection = g_steal_pointer(&connection);
  h->tls = tls;
  h->cancellable = g_cancellable_new();
  h->peer = peer_name(socket);
  h->timeout = g_timeout_source_new_seconds(HANDSHAKE_TIMEOUT_SECONDS);
  g_source_set_callback(h->timeout, on_handshake_timeout, h, NULL);
  g_source_attach(h->timeout, hark_context_main_context(l->server->ctx));
  g_hash_table_add(l->handshakes, h);
  g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT, h->cancellable,
                                   on_handshake, h);
}

/* ---- accepting ------------------------------------------------------------------------------ */

static gboolean
on_incoming(GSocket *listening, GIOCondition condition, gpointer data)
{
  LoginListener *l = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_accept(listening, NULL, &error);
  if (socket == NULL) {
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
      g_warning("accept failed: %s", error->message);
    return G_SOURCE_CONTINUE;
  }
  if (g_hash_table_size(l->handshakes) >= MAX_HANDSHAKES) {
    g_debug("turned a connection away: %d TLS handshakes in progress", MAX_HANDSHAKES);
    g_socket_close(socket, NULL);
    return G_SOURCE_CONTINUE;
  }
  handshake_start(l, socket);
  return G_SOURCE_CONTINUE;
}

static GSocket *
listen_socket(LoginServer *s, GError **error)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string(s->listen);
  g_autoptr(GSocketAddress) socket_address = g_inet_socket_address_new(address, s->port);
  GSocket *socket = g_socket_new(g_inet_address_get_family(address), G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, error);
  if (socket != NULL)
    g_socket_set_listen_backlog(socket, LISTEN_BACKLOG);
  if (socket == NULL || !g_socket_bind(socket, socket_address, TRUE, error) ||
      !g_socket_listen(socket, error)) {
    g_prefix_error(error, "cannot listen on %s port %u: ", s->listen, s->port);
    g_clear_object(&socket);
    return NULL;
  }
  g_socket_set_blocking(socket, FALSE);
  return socket;
}

LoginListener *
login_listener_start(LoginServer *s, GTlsCertificate *certificate, GError **error)
{
  GSocket *socket = listen_socket(s, error);
  if (socket == NULL)
    return NULL;
  LoginListener *l = g_new0(LoginListener, 1);
  l->server = s;
  l->certificate = g_object_ref(certificate);
  l->socket = socket;
  l->handshakes = g_hash_table_new_full(NULL, NULL, handshake_free, NULL);
  l->source = g_socket_create_source(socket, G_IO_IN, NULL);
  g_source_set_callback(l->source, G_SOURCE_FUNC(on_incoming), l, NULL);
  g_source_attach(l->source, hark_context_main_context(s->ctx));
  return l;
}

guint16
login_listener_port(LoginListener *l)
{
  g_autoptr(GSocketAddress) address = g_socket_get_local_address(l->socket, NULL);
  return address != NULL ? g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(address)) : 0;
}

void
login_listener_stop(LoginListener *l)
{
  g_source_destroy(l->source);
  g_source_unref(l->source);
  g_socket_close(l->socket, NULL);
  g_object_unref(l->socket);
  GHashTableIter iter;
  gpointer h;
  g_hash_table_iter_init(&iter, l->handshakes);
  while (g_hash_table_iter_next(&iter, &h, NULL))
    g_cancellable_cancel(((Handshake *)h)->cancellable);
  /* Their callbacks are plugin code: let them all run before anything is unloaded. */
  GMainContext *context = hark_context_main_context(l->server->ctx);
  while (g_hash_table_size(l->handshakes) > 0)
    g_main_context_iteration(context, TRUE);
  g_hash_table_unref(l->handshakes);
  g_object_unref(l->certificate);
  g_free(l);
}
