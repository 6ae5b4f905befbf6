/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tls.c: the login server's listening socket, the tunnel preambles and the TLS
 * handshakes.
 *
 * libsoup can do TLS itself, but GIO (2.74) offers no way to choose the protocol
 * versions of a connection. loginsrv.c sets G_TLS_GNUTLS_PRIORITY so that glib-networking
 * refuses anything older than TLS 1.3 in the handshake; a connection that negotiated
 * anything else all the same (an operator's own priority string) is closed here before a
 * byte of HTTP is read. The others are handed to libsoup (soup_server_accept_iostream).
 *
 * A connection first may carry an SN's tunnel preamble (tunnel.c): a TLS record starts
 * with 0x16, a preamble with 'H'. Its line is read without reading past it, and the
 * client it states goes with the connection to libsoup as data on the remote address.
 *
 * What a connection that says nothing costs is bounded: the preamble and the handshake
 * together have handshake_timeout seconds (10 by default: on a lossy link one lost
 * segment of the server's flight costs a 1 s retransmission, the next 2 s more); at most
 * max_handshakes_per_source are in progress from one address (a tunnelled one counts for
 * its stated client) and max_handshakes in all. A new connection over either bound does not wait or get turned
 * away: the oldest connection still in progress (from that source, or of all) is closed
 * for it. Idle connections are always the oldest, so a flood of them only ever pushes out
 * itself, and a client whose handshake takes a few milliseconds gets through. */
#include "loginsrv.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

/* Logins come in bursts (a network coming back); GIO's default backlog is 10. */
#define LISTEN_BACKLOG 128

struct _LoginListener {
  LoginServer *server;
  GTlsCertificate *certificate;
  GSocket *socket;
  GSource *source;
  GHashTable *handshakes; /* Handshake*, owned */
  GQueue order; /* Handshake* in progress, oldest first */
  GHashTable *per_source; /* source -> number in progress (GUINT_TO_POINTER) */
  guint64 evicted; /* connections closed to make room */
};

typedef struct {
  LoginListener *listener;
  GSocket *socket;
  GSocketConnection *connection;
  GIOStream *tls;
  GCancellable *cancellable;
  GSource *timeout;
  GSource *readable; /* while reading a preamble */
  GString *preamble;
  char *peer; /* the TCP peer's address */
  char *client; /* the client an SN's preamble stated, or NULL */
  char *source; /* what the per-source bound counts: peer, or "peer>client" */
  GList *link; /* in listener->order while it holds a slot */
} Handshake;

/* ---- slots ---------------------------------------------------------------------------------- */

static guint
source_count(LoginListener *l, const char *source)
{
  return GPOINTER_TO_UINT(g_hash_table_lookup(l->per_source, source));
}

static void
source_add(LoginListener *l, const char *source, int delta)
{
  guint count = source_count(l, source) + delta;
  if (count == 0)
    g_hash_table_remove(l->per_source, source);
  else
    g_hash_table_replace(l->per_source, g_strdup(source), GUINT_TO_POINTER(count));
}

static void
slot_take(Handshake *h)
{
  LoginListener *l = h->listener;
  g_queue_push_tail(&l->order, h);
  h->link = g_queue_peek_tail_link(&l->order);
  source_add(l, h->source, 1);
}

/* The handshake is over or given up: it no longer counts. */
static void
slot_release(Handshake *h)
{
  if (h->link == NULL)
    return;
  g_queue_delete_link(&h->listener->order, h->link);
  h->link = NULL;
  source_add(h->listener, h->source, -1);
}

/* Closes the oldest handshake in progress (of source, or of all when source is NULL). */
static void
evict_oldest(LoginListener *l, const char *source)
{
  for (GList *link = l->order.head; link != NULL; link = link->next) {
    Handshake *h = link->data;
    if (source != NULL && strcmp(h->source, source) != 0)
      continue;
    g_debug("closed a connection from %s still in its handshake, to make room", h->peer);
    l->evicted++;
    slot_release(h);
    g_cancellable_cancel(h->cancellable);
    return;
  }
}

/* Room for one more from source: the oldest of its own, or of all, makes way. */
static void
make_room(LoginListener *l, const char *source)
{
  LoginServer *s = l->server;
  if (source_count(l, source) >= s->max_handshakes_per_source)
    evict_oldest(l, source);
  if (g_queue_get_length(&l->order) >= s->max_handshakes)
    evict_oldest(l, NULL);
}

/* ---- one connection until its handshake is done -------------------------------------------- */

static void
handshake_free(gpointer data)
{
  Handshake *h = data;
  slot_release(h);
  g_source_destroy(h->timeout);
  g_source_unref(h->timeout);
  if (h->readable != NULL) {
    g_source_destroy(h->readable);
    g_source_unref(h->readable);
  }
  g_clear_object(&h->tls);
  g_clear_object(&h->connection);
  g_object_unref(h->socket);
  g_object_unref(h->cancellable);
  if (h->preamble != NULL)
    g_string_free(h->preamble, TRUE);
  g_free(h->peer);
  g_free(h->client);
  g_free(h->source);
  g_free(h);
}

/* Closes the socket (no close_notify, which could block) and forgets the handshake. */
static void
handshake_end(Handshake *h)
{
  if (h->connection != NULL)
    g_io_stream_close(G_IO_STREAM(h->connection), NULL, NULL);
  else if (h->tls == NULL)
    g_socket_close(h->socket, NULL);
  /* else libsoup has the connection now */
  g_hash_table_remove(h->listener->handshakes, h);
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
  /* Still reading a preamble: there is no callback to come. */
  if (h->readable != NULL)
    handshake_end(h);
  return G_SOURCE_REMOVE;
}

static const char *
protocol_name(GTlsProtocolVersion version)
{
  switch (version) {
  case G_TLS_PROTOCOL_VERSION_SSL_3_0:
    return "SSL 3.0";
  case G_TLS_PROTOCOL_VERSION_TLS_1_0:
    return "TLS 1.0";
  case G_TLS_PROTOCOL_VERSION_TLS_1_1:
    return "TLS 1.1";
  case G_TLS_PROTOCOL_VERSION_TLS_1_2:
    return "TLS 1.2";
  case G_TLS_PROTOCOL_VERSION_TLS_1_3:
    return "TLS 1.3";
  default:
    return "an unknown protocol";
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
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(h->socket, NULL);
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(h->socket, NULL);
  if (remote != NULL && h->client != NULL)
    g_object_set_data_full(G_OBJECT(remote), LOGIN_CLIENT_DATA, g_strdup(h->client), g_free);
  if (remote != NULL && s->soup != NULL && !s->stopping)
    login_keepalive_track(s, local, remote, h->source);
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
  handshake_end(h);
}

static void
tls_start(Handshake *h)
{
  LoginListener *l = h->listener;
  g_autoptr(GError) error = NULL;
  h->connection = g_socket_connection_factory_create_connection(h->socket);
  h->tls = g_tls_server_connection_new(G_IO_STREAM(h->connection), l->certificate, &error);
  if (h->tls == NULL) {
    g_warning("cannot start TLS: %s", error->message);
    handshake_end(h);
    return;
  }
  /* As libsoup does: an HTTP client may close TCP after the answer without notifying. */
  g_tls_connection_set_require_close_notify(G_TLS_CONNECTION(h->tls), FALSE);
  g_tls_connection_handshake_async(G_TLS_CONNECTION(h->tls), G_PRIORITY_DEFAULT, h->cancellable,
                                   on_handshake, h);
}

/* The preamble checked out: the connection now counts for the client its SN stated. */
static void
preamble_accept(Handshake *h, char *client)
{
  LoginListener *l = h->listener;
  slot_release(h);
  h->client = client;
  g_free(h->source);
  h->source = g_strdup_printf("%s>%s", h->peer, client);
  make_room(l, h->source);
  slot_take(h);
  tls_start(h);
}

/* A whole preamble line (with its CRLF) has been read. */
static void
preamble_done(Handshake *h)
{
  g_autoptr(GError) error = NULL;
  char *client = login_tunnel_preamble_check(h->listener->server, h->preamble->str, &error);
  if (client == NULL) {
    g_autofree char *why = g_strescape(error->message, NULL);
    g_message("refused a tunnel preamble from %s: %s", h->peer, why);
    handshake_end(h);
    return;
  }
  preamble_accept(h, client);
}

/* Reads what is there of the preamble, never past its end: peek, then take up to the
 * newline (or all of it when there is none yet). TRUE while more is to come. */
static gboolean
preamble_read(Handshake *h, gboolean *done, GError **error)
{
  char buffer[1024];
  gsize room = MIN(sizeof buffer, LOGIN_TUNNEL_PREAMBLE_MAX - h->preamble->len);
  GInputVector vector = { buffer, room };
  gint flags = G_SOCKET_MSG_PEEK;
  gssize peeked =
    g_socket_receive_message(h->socket, NULL, &vector, 1, NULL, NULL, &flags, NULL, error);
  if (peeked <= 0) {
    if (peeked == 0)
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CLOSED, "closed in the preamble");
    return FALSE;
  }
  const char *newline = memchr(buffer, '\n', (gsize)peeked);
  gsize take = newline != NULL ? (gsize)(newline - buffer) + 1 : (gsize)peeked;
  gssize got = g_socket_receive(h->socket, buffer, take, NULL, error);
  if (got != (gssize)take) {
    if (got >= 0)
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, "short read");
    return FALSE;
  }
  g_string_append_len(h->preamble, buffer, got);
  if (memchr(buffer, '\0', got) != NULL) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "a NUL in the preamble");
    return FALSE;
  }
  *done = newline != NULL;
  if (!*done && h->preamble->len >= LOGIN_TUNNEL_PREAMBLE_MAX) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the preamble is too long");
    return FALSE;
  }
  return TRUE;
}

static gboolean
on_readable(GSocket *socket, GIOCondition condition, gpointer data)
{
  Handshake *h = data;
  g_autoptr(GError) error = NULL;
  /* Made room for another, or the server is stopping. */
  if (g_cancellable_is_cancelled(h->cancellable))
    goto ended;
  if (h->preamble == NULL) {
    /* The first byte tells: a TLS record (0x16) or a preamble ('H'). */
    char first = 0;
    GInputVector vector = { &first, 1 };
    gint flags = G_SOCKET_MSG_PEEK;
    gssize n = g_socket_receive_message(socket, NULL, &vector, 1, NULL, NULL, &flags, NULL, &error);
    if (n <= 0) {
      if (n == 0 || !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        goto ended;
      return G_SOURCE_CONTINUE;
    }
    if (first != LOGIN_TUNNEL_MAGIC[0]) {
      g_clear_pointer(&h->readable, g_source_unref); /* destroyed by returning REMOVE */
      tls_start(h);
      return G_SOURCE_REMOVE;
    }
    h->preamble = g_string_new(NULL);
  }
  gboolean done = FALSE;
  if (!preamble_read(h, &done, &error)) {
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
      return G_SOURCE_CONTINUE;
    g_autofree char *why = g_strescape(error->message, NULL);
    g_debug("dropped a connection from %s: %s", h->peer, why);
    goto ended;
  }
  if (!done)
    return G_SOURCE_CONTINUE;
  g_clear_pointer(&h->readable, g_source_unref);
  preamble_done(h);
  return G_SOURCE_REMOVE;
ended:
  g_clear_pointer(&h->readable, g_source_unref);
  handshake_end(h);
  return G_SOURCE_REMOVE;
}

static void
handshake_start(LoginListener *l, GSocket *socket)
{
  LoginServer *s = l->server;
  g_socket_set_blocking(socket, FALSE);
  /* An answer goes out as several small TLS records: without this, on a kept connection
   * the last waits for the client's delayed ACK (40 ms a request on Linux). */
  g_autoptr(GError) nodelay_error = NULL;
  if (!g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, &nodelay_error))
    g_debug("TCP_NODELAY: %s", nodelay_error->message);
  Handshake *h = g_new0(Handshake, 1);
  h->listener = l;
  h->socket = g_object_ref(socket);
  h->cancellable = g_cancellable_new();
  h->peer = peer_name(socket);
  h->source = g_strdup(h->peer);
  make_room(l, h->source);
  slot_take(h);
  h->timeout = g_timeout_source_new_seconds(s->handshake_timeout);
  g_source_set_callback(h->timeout, on_handshake_timeout, h, NULL);
  g_source_attach(h->timeout, hark_context_main_context(s->ctx));
  h->readable = g_socket_create_source(socket, G_IO_IN | G_IO_HUP | G_IO_ERR, h->cancellable);
  g_source_set_callback(h->readable, G_SOURCE_FUNC(on_readable), h, NULL);
  g_source_attach(h->readable, hark_context_main_context(s->ctx));
  g_hash_table_add(l->handshakes, h);
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
  g_queue_init(&l->order);
  l->per_source = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
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
  g_hash_table_unref(l->per_source);
  g_object_unref(l->certificate);
  g_free(l);
}
