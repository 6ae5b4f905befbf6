/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-tunnel.c: reaching the login server through the super node.
 *
 * The paper saw Skype log in through its SN when the login server was blocked; here the
 * SN carries an opaque byte stream: the node's login client runs TLS end to end with the
 * login server (pinned CA, checked host), so the SN sees only ciphertext. On the node,
 * the login client's SoupSession reaches the tunnel through a SOCKS5 endpoint on
 * loopback (GIO speaks SOCKS5 natively, so libsoup needs no change); each SOCKS CONNECT
 * becomes a TUNNEL_OPEN on the SN link. The SN opens TCP only to its own configured
 * login server (it is not an open proxy) and pumps bytes both ways as TUNNEL_DATA.
 *
 * Every tunnel the SN opens starts with a preamble line, signed with the SN's device key
 * and carrying its certificate, that states the client's address: the login server then
 * limits failed logins per client behind the SN, not per SN (docs/protocol.md, "Login
 * tunnel"), so one stranger behind an SN cannot lock out everyone else who logs in
 * through it.
 *
 * Both ends pump a stream into TUNNEL_DATA messages and back the same way (TunnelPipe). */
#include "overlay-private.h"
#include "overlay-tunnel-parse.h"

#define PIPE_CHUNK 16384

/* ---- a stream pumped through TUNNEL_DATA ------------------------------------------ */

typedef struct TunnelPipe TunnelPipe;
typedef void (*TunnelPipeClosed)(TunnelPipe *pipe, const char *why);

struct TunnelPipe {
  HarkOverlay *overlay;
  HarkLink *link; /* where TUNNEL_DATA and TUNNEL_CLOSE go */
  guint64 id;
  GIOStream *stream;
  GCancellable *cancellable;
  GQueue pending; /* GBytes* to write to the stream */
  gboolean writing;
  gboolean reading;
  gboolean draining; /* the other end closed: write what is queued, then close */
  gint64 last_active; /* monotonic µs */
  TunnelPipeClosed closed; /* the owner forgets the pipe and frees it */
  gpointer owner; /* the SnTunnel or SocksStream the pipe belongs to, for closed */
  guint8 buffer[PIPE_CHUNK];
};

static TunnelPipe *
pipe_new(HarkOverlay *overlay, HarkLink *link, guint64 id, GIOStream *stream,
         TunnelPipeClosed closed, gpointer owner)
{
  TunnelPipe *pipe = g_new0(TunnelPipe, 1);
  pipe->overlay = overlay;
  pipe->link = link;
  pipe->id = id;
  pipe->stream = g_object_ref(stream);
  pipe->cancellable = g_cancellable_new();
  pipe->closed = closed;
  pipe->owner = owner;
  pipe->last_active = g_get_monotonic_time();
  g_queue_init(&pipe->pending);
  return pipe;
}

static void
pipe_free(TunnelPipe *pipe)
{
  g_cancellable_cancel(pipe->cancellable);
  g_object_unref(pipe->cancellable);
  g_io_stream_close_async(pipe->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_object_unref(pipe->stream);
  g_queue_clear_full(&pipe->pending, (GDestroyNotify)g_bytes_unref);
  g_free(pipe);
}

/* The stream ended or failed: the other end hears TUNNEL_CLOSE, the owner frees it. */
static void
pipe_end(TunnelPipe *pipe, const char *why)
{
  if (why != NULL)
    g_message("login tunnel %" G_GUINT64_FORMAT " broke: %s", pipe->id, why);
  if (pipe->link != NULL)
    hark_link_send(pipe->link, HARK_MSG_TUNNEL_CLOSE, hark_overlay_next_id(pipe->overlay),
                   g_variant_new("(ts)", pipe->id, why != NULL ? why : ""), NULL);
  pipe->closed(pipe, why);
}

static void pipe_write_next(TunnelPipe *pipe);

static void
on_pipe_written(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error)) {
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      pipe_end(data, error->message);
    return;
  }
  TunnelPipe *pipe = data;
  g_bytes_unref(g_queue_pop_head(&pipe->pending));
  pipe->writing = FALSE;
  if (pipe->draining && g_queue_is_empty(&pipe->pending)) {
    pipe->closed(pipe, NULL);
    return;
  }
  pipe_write_next(pipe);
}

static void
pipe_write_next(TunnelPipe *pipe)
{
  GBytes *next = g_queue_peek_head(&pipe->pending);
  if (pipe->writing || next == NULL)
    return;
  pipe->writing = TRUE;
  gsize size;
  gconstpointer bytes = g_bytes_get_data(next, &size);
  g_output_stream_write_all_async(g_io_stream_get_output_stream(pipe->stream), bytes, size,
                                  G_PRIORITY_DEFAULT, pipe->cancellable, on_pipe_written, pipe);
}

static void
pipe_write(TunnelPipe *pipe, GBytes *bytes)
{
  pipe->last_active = g_get_monotonic_time();
  g_queue_push_tail(&pipe->pending, g_bytes_ref(bytes));
  pipe_write_next(pipe);
}

static void pipe_read_next(TunnelPipe *pipe);

static void
on_pipe_read(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);
  if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  TunnelPipe *pipe = data;
  if (pipe->draining)
    return; /* nobody to tell any more; the pipe closes once its writes are out */
  if (n <= 0) {
    pipe_end(pipe, n < 0 ? error->message : NULL);
    return;
  }
  pipe->last_active = g_get_monotonic_time();
  GVariant *chunk = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, pipe->buffer, n, 1);
  if (!hark_link_send(pipe->link, HARK_MSG_TUNNEL_DATA, hark_overlay_next_id(pipe->overlay),
                      g_variant_new("(t@ay)", pipe->id, chunk), &error)) {
    pipe->link = NULL; /* the link is going: nothing more can be said on it */
    pipe_end(pipe, error->message);
    return;
  }
  pipe_read_next(pipe);
}

static void
pipe_read_next(TunnelPipe *pipe)
{
  pipe->reading = TRUE;
  g_input_stream_read_async(g_io_stream_get_input_stream(pipe->stream), pipe->buffer,
                            sizeof pipe->buffer, G_PRIORITY_DEFAULT, pipe->cancellable,
                            on_pipe_read, pipe);
}

/* TUNNEL_DATA / TUNNEL_CLOSE for a pipe: TRUE when the pipe is gone after it. */
static gboolean
pipe_take(TunnelPipe *pipe, const HarkWireMessage *message)
{
  if (message->type == HARK_MSG_TUNNEL_DATA) {
    g_autoptr(GVariant) data = g_variant_get_child_value(message->body, 1);
    g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(data);
    pipe_write(pipe, bytes);
    return FALSE;
  }
  const char *reason = "";
  g_variant_get_child(message->body, 1, "&s", &reason);
  if (*reason != '\0') {
    g_autofree char *escaped = hark_overlay_peer_text(reason);
    g_message("login tunnel %" G_GUINT64_FORMAT " closed by the other end: %s", pipe->id, escaped);
  }
  /* Closed by the other end: no TUNNEL_CLOSE back, and what it sent before closing (the
   * last answer, often) is still written out before the stream closes. */
  pipe->link = NULL;
  pipe->draining = TRUE;
  if (pipe->writing || !g_queue_is_empty(&pipe->pending))
    return FALSE;
  pipe->closed(pipe, NULL);
  return TRUE;
}

/* ---- the SN's side ---------------------------------------------------------------- */

typedef struct {
  Peer *peer;
  guint64 id;
  GCancellable *connecting;
  TunnelPipe *pipe;
} SnTunnel;

static void
sn_tunnel_free(gpointer data)
{
  SnTunnel *tunnel = data;
  if (tunnel->connecting != NULL) {
    g_cancellable_cancel(tunnel->connecting);
    g_object_unref(tunnel->connecting);
  }
  if (tunnel->pipe != NULL)
    pipe_free(tunnel->pipe);
  g_free(tunnel);
}

/* The tunnel is found through the pipe, not by its id: ids are the clients' own, so
 * two clients' tunnels often have the same one, and a pipe closed by its client has no
 * link left to tell whose it was. A tunnel never outlives its peer's table
 * (hark_overlay_tunnel_serve_close_all). */
static void
sn_pipe_closed(TunnelPipe *pipe, const char *why)
{
  SnTunnel *tunnel = pipe->owner;
  g_debug("login tunnel %" G_GUINT64_FORMAT " closed%s%s", pipe->id, why ? ": " : "",
          why ? why : "");
  g_hash_table_remove(tunnel->peer->tunnels, &tunnel->id);
}

#define TUNNEL_MAGIC "HARK-TUNNEL-1"

/* "HARK-TUNNEL-1 <client> <unix seconds> <nonce> <certificate> <signature>\r\n"; NULL
 * when this SN has no certificate (then the login server sees the SN as the client). */
static GBytes *
tunnel_preamble(HarkOverlay *overlay, Peer *peer)
{
  GBytes *certificate = hark_link_local_certificate(overlay->node);
  const char *client = hark_link_get_peer_host(peer->link);
  if (certificate == NULL || client == NULL || !g_hostname_is_ip_address(client)) {
    g_message("login tunnel without a preamble: %s", certificate == NULL
                                                       ? "this SN has no device certificate"
                                                       : "the client's address is unknown");
    return NULL;
  }
  /* Unique, not secret: the server refuses a nonce it has seen. */
  g_autofree char *nonce = g_strdup_printf("%08x%08x%08x%08x", g_random_int(), g_random_int(),
                                           g_random_int(), g_random_int());
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *text =
    g_strdup_printf(TUNNEL_MAGIC "\n%s\n%" G_GINT64_FORMAT "\n%s", client, now, nonce);
  g_autoptr(GBytes) data = g_bytes_new(text, strlen(text));
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) signature = hark_identity_sign(overlay->node->identity, data, &error);
  if (signature == NULL) {
    g_warning("cannot sign a login tunnel preamble: %s", error->message);
    return NULL;
  }
  gsize cert_size, signature_size;
  gconstpointer cert_data = g_bytes_get_data(certificate, &cert_size);
  gconstpointer signature_data = g_bytes_get_data(signature, &signature_size);
  g_autofree char *cert_text = g_base64_encode(cert_data, cert_size);
  g_autofree char *signature_text = g_base64_encode(signature_data, signature_size);
  char *line = g_strdup_printf(TUNNEL_MAGIC " %s %" G_GINT64_FORMAT " %s %s %s\r\n", client, now,
                               nonce, cert_text, signature_text);
  return g_bytes_new_take(line, strlen(line));
}

static void
on_sn_tunnel_connected(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection =
    g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), result, &error);
  if (connection == NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  SnTunnel *tunnel = data;
  Peer *peer = tunnel->peer;
  g_clear_object(&tunnel->connecting);
  if (connection == NULL) {
    g_autofree char *text = g_strdup_printf("cannot reach the login server: %s", error->message);
    hark_overlay_send_error(peer, tunnel->id, 502, text);
    g_hash_table_remove(peer->tunnels, &tunnel->id);
    return;
  }
  tunnel->pipe = pipe_new(peer->overlay, peer->link, tunnel->id, G_IO_STREAM(connection),
                          sn_pipe_closed, tunnel);
  /* Queued first: the client's bytes can only follow it. */
  g_autoptr(GBytes) preamble = tunnel_preamble(peer->overlay, peer);
  if (preamble != NULL)
    pipe_write(tunnel->pipe, preamble);
  hark_link_send(peer->link, HARK_MSG_TUNNEL_OK, tunnel->id, g_variant_new("(t)", tunnel->id),
                 NULL);
  pipe_read_next(tunnel->pipe);
}

static void
sn_tunnel_open(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  const char *host;
  guint16 port;
  g_variant_get(message->body, "(&sq)", &host, &port);
  const char *refused = NULL;
  if (!hark_overlay_tunnel_allowed(overlay->node->config->login_url, host, port))
    refused = "this SN carries streams only to its own login server";
  else if (peer->tunnels != NULL && g_hash_table_size(peer->tunnels) >= OVERLAY_TUNNELS_PER_LINK)
    refused = "too many tunnels on this link";
  else if (peer->tunnels != NULL && g_hash_table_contains(peer->tunnels, &message->id))
    refused = "that tunnel id is in use";
  if (refused != NULL) {
    g_autofree char *escaped = hark_overlay_peer_text(host);
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "TUNNEL_OPEN to %s:%u: %s",
                           escaped, port, refused);
    hark_overlay_send_error(peer, message->id, 403, refused);
    return;
  }
  if (peer->tunnels == NULL)
    peer->tunnels = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, sn_tunnel_free);
  SnTunnel *tunnel = g_new0(SnTunnel, 1);
  tunnel->peer = peer;
  tunnel->id = message->id;
  tunnel->connecting = g_cancellable_new();
  g_hash_table_insert(peer->tunnels, &tunnel->id, tunnel);
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_timeout(client, 10);
  g_socket_client_set_enable_proxy(client, FALSE);
  g_socket_client_connect_to_host_async(client, host, port, tunnel->connecting,
                                        on_sn_tunnel_connected, tunnel);
}

void
hark_overlay_tunnel_serve(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  if (message->type == HARK_MSG_TUNNEL_OPEN) {
    sn_tunnel_open(overlay, peer, message);
    return;
  }
  guint64 id = 0;
  g_variant_get_child(message->body, 0, "t", &id);
  SnTunnel *tunnel = peer->tunnels != NULL ? g_hash_table_lookup(peer->tunnels, &id) : NULL;
  if (tunnel == NULL || tunnel->pipe == NULL) {
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected,
                           "%s for tunnel %" G_GUINT64_FORMAT ", which is not open",
                           hark_wire_type_name(message->type), id);
    return;
  }
  pipe_take(tunnel->pipe, message);
}

void
hark_overlay_tunnel_serve_close_all(Peer *peer)
{
  if (peer->tunnels == NULL)
    return;
  /* The link is going away: the pipes must not talk to it any more. */
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, peer->tunnels);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    SnTunnel *tunnel = value;
    if (tunnel->pipe != NULL)
      tunnel->pipe->link = NULL;
  }
  g_hash_table_remove_all(peer->tunnels);
}

/* ---- the node's side: a SOCKS5 endpoint on loopback ------------------------------- */

typedef struct {
  struct _TunnelClient *client;
  GSocketConnection *connection;
  GCancellable *cancellable;
  HarkSocksState socks; /* the greeting and request, as far as read */
  guint64 id; /* the TUNNEL_OPEN's, once sent */
  TunnelPipe *pipe; /* once the SN said TUNNEL_OK */
} SocksStream;

struct _TunnelClient {
  HarkOverlay *overlay;
  GSocketService *service;
  GProxyResolver *resolver;
  GPtrArray *streams; /* SocksStream* */
};

static void
socks_free(gpointer data)
{
  SocksStream *stream = data;
  g_cancellable_cancel(stream->cancellable);
  g_object_unref(stream->cancellable);
  if (stream->pipe != NULL)
    pipe_free(stream->pipe);
  else
    g_io_stream_close_async(G_IO_STREAM(stream->connection), G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_object_unref(stream->connection);
  g_free(stream);
}

static void
socks_drop(SocksStream *stream)
{
  g_ptr_array_remove(stream->client->streams, stream);
}

/* Both replies are tiny and go to loopback: written at once. */
static void
socks_write(SocksStream *stream, const guint8 *bytes, gsize size)
{
  g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(stream->connection)), bytes,
                            size, NULL, NULL, NULL);
}

/* The method chosen: 0 (no authentication) or 0xff (none acceptable). */
static void
socks_choose(SocksStream *stream, guint8 method)
{
  const guint8 reply[2] = { 5, method };
  socks_write(stream, reply, sizeof reply);
}

static void
socks_reply(SocksStream *stream, guint8 code)
{
  /* VER, REP, RSV, ATYP=IPv4, 0.0.0.0:0: GIO ignores the bound address. */
  const guint8 reply[10] = { 5, code, 0, 1 };
  socks_write(stream, reply, sizeof reply);
}

static void socks_read_more(SocksStream *stream);

/* Takes host (any bytes a local process sent: escaped in the log). */
static void
socks_connect(SocksStream *stream, char *host_taken, guint16 port)
{
  HarkOverlay *overlay = stream->client->overlay;
  g_autofree char *host = host_taken;
  g_autofree char *shown = hark_overlay_peer_text(host);
  if (overlay->sn == NULL || !g_utf8_validate(host, -1, NULL)) {
    g_message("login tunnel to %s:%u: no super node to carry it", shown, port);
    socks_reply(stream, 3); /* network unreachable */
    socks_drop(stream);
    return;
  }
  stream->id = hark_overlay_next_id(overlay);
  g_message("login through the SN %s: tunnel to %s:%u", overlay->sn->name, shown, port);
  hark_link_send(overlay->sn->link, HARK_MSG_TUNNEL_OPEN, stream->id,
                 g_variant_new("(sq)", host, port), NULL);
}

static void
on_socks_read(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);
  if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  SocksStream *stream = data;
  if (n <= 0) {
    socks_drop(stream);
    return;
  }
  stream->socks.have += n;
  gboolean greeted = stream->socks.greeted;
  char *host = NULL;
  guint16 port = 0;
  HarkSocksStep step = hark_overlay_socks_step(&stream->socks, &host, &port);
  if (!greeted && stream->socks.greeted)
    socks_choose(stream, 0); /* no authentication */
  switch (step) {
  case HARK_SOCKS_MORE:
    socks_read_more(stream);
    break;
  case HARK_SOCKS_NO_METHOD:
    socks_choose(stream, 0xff);
    socks_drop(stream);
    break;
  case HARK_SOCKS_UNSUPPORTED:
    socks_reply(stream, 7); /* command not supported */
    socks_drop(stream);
    break;
  case HARK_SOCKS_CONNECT:
    socks_connect(stream, host, port);
    break;
  }
}

static void
socks_read_more(SocksStream *stream)
{
  g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(stream->connection)),
                            stream->socks.request + stream->socks.have,
                            sizeof stream->socks.request - stream->socks.have, G_PRIORITY_DEFAULT,
                            stream->cancellable, on_socks_read, stream);
}

static gboolean
on_socks_incoming(GSocketService *service, GSocketConnection *connection, GObject *source,
                  gpointer data)
{
  struct _TunnelClient *client = data;
  SocksStream *stream = g_new0(SocksStream, 1);
  stream->client = client;
  stream->connection = g_object_ref(connection);
  stream->cancellable = g_cancellable_new();
  g_ptr_array_add(client->streams, stream);
  socks_read_more(stream);
  return TRUE;
}

static void
client_pipe_closed(TunnelPipe *pipe, const char *why)
{
  g_debug("login tunnel %" G_GUINT64_FORMAT " closed%s%s", pipe->id, why ? ": " : "",
          why ? why : "");
  socks_drop(pipe->owner);
}

static SocksStream *
stream_of(struct _TunnelClient *client, guint64 id)
{
  for (guint i = 0; i < client->streams->len; i++) {
    SocksStream *stream = client->streams->pdata[i];
    if (stream->id == id)
      return stream;
  }
  return NULL;
}

void
hark_overlay_tunnel_client_message(HarkOverlay *overlay, const HarkWireMessage *message)
{
  struct _TunnelClient *client = overlay->tunnel;
  guint64 id = message->id;
  if (message->type == HARK_MSG_TUNNEL_DATA || message->type == HARK_MSG_TUNNEL_CLOSE)
    g_variant_get_child(message->body, 0, "t", &id);
  SocksStream *stream = client != NULL ? stream_of(client, id) : NULL;
  if (stream == NULL) {
    if (message->type != HARK_MSG_ERROR)
      hark_overlay_note_drop(overlay, &overlay->counters.unexpected,
                             "%s for a tunnel this node does not have",
                             hark_wire_type_name(message->type));
    return;
  }
  switch (message->type) {
  case HARK_MSG_TUNNEL_OK:
    socks_reply(stream, 0);
    g_cancellable_cancel(stream->cancellable); /* the SOCKS reads end; the pipe reads now */
    stream->pipe = pipe_new(overlay, overlay->sn->link, id, G_IO_STREAM(stream->connection),
                            client_pipe_closed, stream);
    pipe_read_next(stream->pipe);
    return;
  case HARK_MSG_ERROR:
    socks_reply(stream, 5); /* connection refused */
    socks_drop(stream);
    return;
  default:
    if (stream->pipe != NULL)
      pipe_take(stream->pipe, message);
    return;
  }
}

void
hark_overlay_tunnel_client_link_lost(HarkOverlay *overlay)
{
  if (overlay->tunnel != NULL && overlay->tunnel->streams->len > 0)
    g_ptr_array_remove_range(overlay->tunnel->streams, 0, overlay->tunnel->streams->len);
}

static gboolean
tunnel_ready(gpointer data)
{
  HarkOverlay *overlay = data;
  return overlay->sn != NULL;
}

void
hark_overlay_tunnel_client_start(HarkOverlay *overlay)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  GSocketService *service = g_socket_service_new();
  if (!g_socket_listener_add_address(G_SOCKET_LISTENER(service), any, G_SOCKET_TYPE_STREAM,
                                     G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error)) {
    g_warning("no login tunnel (cannot listen on loopback): %s", error->message);
    g_object_unref(service);
    return;
  }
  struct _TunnelClient *client = g_new0(struct _TunnelClient, 1);
  client->overlay = overlay;
  client->service = service;
  client->streams = g_ptr_array_new_with_free_func(socks_free);
  guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_autofree char *uri = g_strdup_printf("socks5://127.0.0.1:%u", port);
  client->resolver = g_simple_proxy_resolver_new(uri, NULL);
  g_signal_connect(service, "incoming", G_CALLBACK(on_socks_incoming), client);
  g_socket_service_start(service);
  overlay->tunnel = client;
  hark_login_client_set_tunnel(overlay->login, client->resolver, tunnel_ready, overlay);
}

void
hark_overlay_tunnel_client_free(HarkOverlay *overlay)
{
  struct _TunnelClient *client = overlay->tunnel;
  if (client == NULL)
    return;
  hark_login_client_set_tunnel(overlay->login, NULL, NULL, NULL);
  g_socket_service_stop(client->service);
  g_socket_listener_close(G_SOCKET_LISTENER(client->service));
  g_object_unref(client->service);
  g_object_unref(client->resolver);
  g_ptr_array_unref(client->streams);
  g_free(client);
  overlay->tunnel = NULL;
}
