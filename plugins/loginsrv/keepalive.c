/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* keepalive.c: a client's TLS connection carries its next requests too.
 *
 * libsoup keeps an HTTP/1.1 connection open after an answer only when the SoupServer has
 * listeners of its own; this server has none (tls.c accepts, checks and hands each
 * connection over with soup_server_accept_iostream), so libsoup closed every connection
 * after one answer and every request paid a TCP and TLS handshake. Here, once an answer
 * has been written, its connection is taken back from libsoup
 * (soup_server_message_steal_connection) and handed over again, with the same addresses
 * (a tunnelled connection keeps the client its SN stated), to read the next request.
 *
 * What an idle connection costs is bounded: it is closed after LOGIN_KEEP_IDLE_SECONDS
 * without a request, after LOGIN_KEEP_MAX_REQUESTS requests, and it is not kept at all
 * when LOGIN_KEEP_MAX_IDLE connections are idle already, LOGIN_KEEP_MAX_IDLE_PER_SOURCE
 * of them from its source, or the request was refused before its body was read (the
 * unread body would be taken for the next request). A client that says
 * "Connection: close" or speaks HTTP/1.0 is not kept either.
 *
 * That is decided when the answer is set, before its headers go out, so that an answer
 * after which the connection closes says "Connection: close" (RFC 9112, 9.6): otherwise
 * the client pools a connection the server is closing and sends its next request into
 * the close. The bounds are read then, so answers being written at the same moment may
 * each take the last place: they overshoot by at most the answers in flight. */
#include "loginsrv.h"

#define CONN_DATA "hark-login-conn"
#define OFFERED_DATA "hark-login-offered" /* on a message whose body was read */

struct _LoginConn {
  gint refs; /* the connection's address holds one, and the idle timer while it exists */
  LoginServer *server; /* NULL once the server stopped */
  GSocketAddress *local;
  GSocketAddress *remote; /* not owned: it owns this; NULL once it is gone */
  char *source; /* what the per-source bound counts: as tls.c's */
  guint requests;
  GIOStream *stream; /* while idle: ours to close */
  GSource *idle; /* while idle: closes it */
};

static void
conn_close_done(GObject *source, GAsyncResult *result, gpointer data)
{
  g_io_stream_close_finish(G_IO_STREAM(source), result, NULL);
}

static void
conn_unref(gpointer data)
{
  LoginConn *conn = data;
  if (--conn->refs > 0)
    return;
  g_clear_object(&conn->local);
  g_free(conn->source);
  g_free(conn);
}

/* No longer idle: a request came, or the connection is closed or gone. The timer is
 * destroyed last: it holds a reference, and nothing here touches conn after it. */
static void
conn_busy(LoginConn *conn)
{
  GSource *idle = g_steal_pointer(&conn->idle);
  g_clear_object(&conn->stream);
  if (conn->server != NULL && conn->server->kept != NULL)
    g_hash_table_remove(conn->server->kept, conn);
  if (idle != NULL) {
    g_source_destroy(idle);
    g_source_unref(idle);
  }
}

/* The connection's address is finalized: the connection is gone. The idle timer holds
 * conn too, so a timer that is already being dispatched never reads freed memory (the
 * login server crashed there in the chaos test of messages). */
static void
conn_gone(gpointer data)
{
  LoginConn *conn = data;
  conn->remote = NULL;
  conn->refs++;
  conn_busy(conn);
  conn->refs--;
  conn_unref(conn);
}

void
login_keepalive_track(LoginServer *s, GSocketAddress *local, GSocketAddress *remote,
                      const char *source)
{
  LoginConn *conn = g_new0(LoginConn, 1);
  conn->refs = 1;
  conn->server = s;
  conn->local = local != NULL ? g_object_ref(local) : NULL;
  conn->remote = remote;
  conn->source = g_strdup(source);
  s->connections_accepted++;
  g_object_set_data_full(G_OBJECT(remote), CONN_DATA, conn, conn_gone);
}

static LoginConn *
conn_of(SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address(msg);
  return remote != NULL ? g_object_get_data(G_OBJECT(remote), CONN_DATA) : NULL;
}

void
login_keepalive_request_started(SoupServerMessage *msg)
{
  LoginConn *conn = conn_of(msg);
  if (conn == NULL)
    return;
  conn_busy(conn);
  conn->requests++;
}

static gboolean
on_idle_timeout(gpointer data)
{
  LoginConn *conn = data;
  if (conn->remote == NULL || conn->idle != g_main_current_source())
    return G_SOURCE_REMOVE; /* gone, or no longer this timer's */
  GIOStream *stream = g_steal_pointer(&conn->stream);
  conn->refs++; /* conn_busy drops the timer's reference */
  conn_busy(conn);
  conn->refs--;
  if (stream == NULL)
    return G_SOURCE_REMOVE; /* no longer ours: a request took it (see on_wrote_body) */
  /* libsoup, waiting for the next request, sees the end and lets the connection go. */
  g_io_stream_close_async(stream, G_PRIORITY_DEFAULT, NULL, conn_close_done, NULL);
  g_object_unref(stream);
  return G_SOURCE_REMOVE;
}

static guint
idle_from(LoginServer *s, const char *source)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, s->kept);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    n += g_strcmp0(((LoginConn *)key)->source, source) == 0;
  return n;
}

static gboolean
may_keep(LoginServer *s, SoupServerMessage *msg, LoginConn *conn)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(msg);
  return !s->stopping && s->soup != NULL && s->kept != NULL &&
         soup_server_message_get_http_version(msg) == SOUP_HTTP_1_1 &&
         !soup_message_headers_header_contains(headers, "Connection", "close") &&
         conn->requests < LOGIN_KEEP_MAX_REQUESTS &&
         g_hash_table_size(s->kept) < LOGIN_KEEP_MAX_IDLE &&
         idle_from(s, conn->source) < LOGIN_KEEP_MAX_IDLE_PER_SOURCE;
}

/* The answer is written: take the connection back and wait for the next request on it. */
static void
on_wrote_body(SoupServerMessage *msg, gpointer data)
{
  LoginServer *s = data;
  LoginConn *conn = conn_of(msg);
  if (conn == NULL || conn->server == NULL)
    return;
  /* Still idle from an earlier answer (a request that never reached on_headers, such as
   * one libsoup refused itself): that wait ends here, or its timer would outlive conn
   * (a use after free: the login server crashed in the Table I benchmark). */
  conn_busy(conn);
  if (s->stopping || s->soup == NULL || s->kept == NULL)
    return; /* libsoup closes it; soup_server_disconnect would anyway */
  GSocketAddress *remote = conn->remote;
  g_object_ref(remote); /* the stolen message may take the last other reference */
  GIOStream *stream = soup_server_message_steal_connection(msg);
  g_autoptr(GError) error = NULL;
  if (stream == NULL) {
    g_object_unref(remote);
    return;
  }
  if (!soup_server_accept_iostream(s->soup, stream, conn->local, remote, &error)) {
    g_debug("closed a kept connection from %s: %s", conn->source, error->message);
    g_io_stream_close_async(stream, G_PRIORITY_DEFAULT, NULL, conn_close_done, NULL);
    g_object_unref(stream);
    g_object_unref(remote);
    return;
  }
  conn->stream = stream;
  conn->idle = g_timeout_source_new_seconds(LOGIN_KEEP_IDLE_SECONDS);
  conn->refs++;
  g_source_set_callback(conn->idle, on_idle_timeout, conn, conn_unref);
  g_source_attach(conn->idle, hark_context_main_context(s->ctx));
  g_hash_table_add(s->kept, conn);
  s->connections_kept++;
  g_object_unref(remote);
}

void
login_keepalive_offer(SoupServerMessage *msg)
{
  g_object_set_data(G_OBJECT(msg), OFFERED_DATA, GINT_TO_POINTER(TRUE));
}

void
login_keepalive_answer(LoginServer *s, SoupServerMessage *msg)
{
  LoginConn *conn = conn_of(msg);
  if (conn != NULL && conn->server != NULL &&
      g_object_get_data(G_OBJECT(msg), OFFERED_DATA) != NULL && may_keep(s, msg, conn)) {
    g_signal_connect(msg, "wrote-body", G_CALLBACK(on_wrote_body), s);
    return;
  }
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                               "close");
}

void
login_keepalive_start(LoginServer *s)
{
  s->kept = g_hash_table_new(NULL, NULL);
}

void
login_keepalive_stop(LoginServer *s)
{
  if (s->kept == NULL)
    return;
  /* soup_server_disconnect, right after, closes them with every other connection. */
  GList *conns = g_hash_table_get_keys(s->kept);
  for (GList *l = conns; l != NULL; l = l->next) {
    LoginConn *conn = l->data;
    conn_busy(conn);
    conn->server = NULL;
  }
  g_list_free(conns);
  g_clear_pointer(&s->kept, g_hash_table_unref);
}
