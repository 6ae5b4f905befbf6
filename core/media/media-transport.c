/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-transport.c: the packet transport under a media session: the generic wrapper
 * (serialised sends, injected loss), UDP, and RFC 4571 framing over a byte stream (for
 * the TCP paths of later issues: TURN over TCP, the overlay relay). The session only
 * ever sees this interface, so ICE and relays plug in without touching the pipelines. */
#include "media-session.h"

#include <string.h>

struct _HarkMediaTransport {
  const HarkMediaTransportInterface *iface;
  gpointer impl;
  GMutex lock; /* RTP and RTCP leave on different streaming threads */
  double loss;
  GRand *rand;
  guint overhead; /* the interface's, unless the transport knows better (UDP over IPv6) */
};

HarkMediaTransport *
hark_media_transport_new(const HarkMediaTransportInterface *iface, gpointer impl)
{
  g_return_val_if_fail(iface != NULL && iface->version >= 1 && iface->send != NULL, NULL);
  HarkMediaTransport *t = g_new0(HarkMediaTransport, 1);
  t->iface = iface;
  t->impl = impl;
  t->overhead = iface->overhead;
  g_mutex_init(&t->lock);
  return t;
}

void
hark_media_transport_set_loss(HarkMediaTransport *t, double fraction, guint32 seed)
{
  g_mutex_lock(&t->lock);
  t->loss = CLAMP(fraction, 0.0, 1.0);
  g_clear_pointer(&t->rand, g_rand_free);
  if (t->loss > 0)
    t->rand = g_rand_new_with_seed(seed);
  g_mutex_unlock(&t->lock);
}

gboolean
hark_media_transport_send(HarkMediaTransport *t, const guint8 *data, gsize length, GError **error)
{
  g_mutex_lock(&t->lock);
  gboolean ok = TRUE;
  if (t->rand == NULL || g_rand_double(t->rand) >= t->loss)
    ok = t->iface->send(t->impl, data, length, error);
  g_mutex_unlock(&t->lock);
  return ok;
}

void
hark_media_transport_start(HarkMediaTransport *t, HarkMediaReceiveFunc func, gpointer user_data)
{
  t->iface->start(t->impl, func, user_data);
}

guint
hark_media_transport_overhead(HarkMediaTransport *t)
{
  return t->overhead;
}

void
hark_media_transport_free(HarkMediaTransport *t)
{
  if (t == NULL)
    return;
  if (t->iface->free != NULL)
    t->iface->free(t->impl);
  g_clear_pointer(&t->rand, g_rand_free);
  g_mutex_clear(&t->lock);
  g_free(t);
}

/* ---- UDP ---------------------------------------------------------------------------------- */

typedef struct {
  GSocket *socket;
  GSocketAddress *remote;
  GSource *source;
  HarkMediaReceiveFunc func;
  gpointer user_data;
  guint8 buffer[65536];
} Udp;

static gboolean
udp_send(gpointer impl, const guint8 *data, gsize length, GError **error)
{
  Udp *u = impl;
  if (u->remote == NULL)
    return TRUE; /* not told where to yet: as if lost */
  return g_socket_send_to(u->socket, u->remote, (const char *)data, length, NULL, error) >= 0;
}

/* Only the configured peer is heard: a stale process or a stranger on the same port
 * must not inject audio (they would also fail SRTP, but need not cost a decryption). */
static gboolean
udp_readable(GSocket *socket, GIOCondition condition, gpointer data)
{
  Udp *u = data;
  for (int i = 0; i < 64; i++) {
    GSocketAddress *from = NULL;
    gssize n =
      g_socket_receive_from(socket, &from, (char *)u->buffer, sizeof u->buffer, NULL, NULL);
    if (n < 0)
      break;
    gboolean ours =
      from != NULL && u->remote != NULL && G_IS_INET_SOCKET_ADDRESS(from) &&
      g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(from)) ==
        g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(u->remote)) &&
      g_inet_address_equal(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(from)),
                           g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(u->remote)));
    g_clear_object(&from);
    if (ours && u->func != NULL)
      u->func(u->buffer, n, u->user_data);
  }
  return G_SOURCE_CONTINUE;
}

static void
udp_start(gpointer impl, HarkMediaReceiveFunc func, gpointer user_data)
{
  Udp *u = impl;
  u->func = func;
  u->user_data = user_data;
  if (u->source != NULL)
    return;
  u->source = g_socket_create_source(u->socket, G_IO_IN, NULL);
  g_source_set_callback(u->source, G_SOURCE_FUNC(udp_readable), u, NULL);
  g_source_attach(u->source, g_main_context_get_thread_default());
}

static void
udp_free(gpointer impl)
{
  Udp *u = impl;
  if (u->source != NULL) {
    g_source_destroy(u->source);
    g_source_unref(u->source);
  }
  g_clear_object(&u->socket);
  g_clear_object(&u->remote);
  g_free(u);
}

static const HarkMediaTransportInterface udp_interface = {
  .version = 1,
  .send = udp_send,
  .start = udp_start,
  .free = udp_free,
  .overhead = 28, /* IPv4 20 + UDP 8; IPv6 is 20 more */
};

HarkMediaTransport *
hark_media_transport_new_udp(GInetSocketAddress *local, GInetSocketAddress *remote, GError **error)
{
  GSocketFamily family = g_socket_address_get_family(G_SOCKET_ADDRESS(local));
  if (remote != NULL && g_socket_address_get_family(G_SOCKET_ADDRESS(remote)) != family) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "UDP media transport: the local and remote addresses are of different families");
    return NULL;
  }
  g_autoptr(GSocket) socket =
    g_socket_new(family, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
  if (socket == NULL || !g_socket_bind(socket, G_SOCKET_ADDRESS(local), FALSE, error))
    return NULL;
  g_socket_set_blocking(socket, FALSE);
  Udp *u = g_new0(Udp, 1);
  u->socket = g_steal_pointer(&socket);
  u->remote = remote ? g_object_ref(G_SOCKET_ADDRESS(remote)) : NULL;
  HarkMediaTransport *t = hark_media_transport_new(&udp_interface, u);
  if (family == G_SOCKET_FAMILY_IPV6)
    t->overhead += 20;
  return t;
}

GInetSocketAddress *
hark_media_transport_get_local(HarkMediaTransport *t)
{
  if (t->iface->send != udp_send)
    return NULL;
  Udp *u = t->impl;
  return G_INET_SOCKET_ADDRESS(g_socket_get_local_address(u->socket, NULL));
}

gboolean
hark_media_transport_set_remote(HarkMediaTransport *t, GInetSocketAddress *remote, GError **error)
{
  if (t->iface->send != udp_send) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "only a UDP media transport has a remote address to change");
    return FALSE;
  }
  Udp *u = t->impl;
  if (g_socket_address_get_family(G_SOCKET_ADDRESS(remote)) != g_socket_get_family(u->socket)) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "UDP media transport: the remote address is of another family than the socket");
    return FALSE;
  }
  g_mutex_lock(&t->lock); /* the streaming threads read it in send() */
  g_clear_object(&u->remote);
  u->remote = g_object_ref(G_SOCKET_ADDRESS(remote));
  g_mutex_unlock(&t->lock);
  return TRUE;
}

/* ---- RFC 4571 framing over a stream ------------------------------------------------------- */

typedef struct {
  GIOStream *stream;
  GCancellable *cancel;
  HarkMediaReceiveFunc func;
  gpointer user_data;
  GByteArray *pending;
  guint8 chunk[16384];
} Framed;

static gboolean
framed_send(gpointer impl, const guint8 *data, gsize length, GError **error)
{
  Framed *f = impl;
  if (length > G_MAXUINT16) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "packet of %zu bytes does not fit RFC 4571 framing", length);
    return FALSE;
  }
  guint8 frame[2 + 65535];
  frame[0] = length >> 8;
  frame[1] = length & 0xff;
  memcpy(frame + 2, data, length);
  /* Blocking on the streaming thread: a full TCP window holds the sender back, which
   * is what a stream transport should do to a real-time sender (the jitter buffer on
   * the far side copes with the burst when the window opens). */
  return g_output_stream_write_all(g_io_stream_get_output_stream(f->stream), frame, length + 2,
                                   NULL, f->cancel, error);
}

static void framed_clear(gpointer data);

static void
on_framed_read(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);
  if (n <= 0) {
    if (n < 0 && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      g_warning("media stream transport: %s", error->message);
    g_rc_box_release_full(data, framed_clear);
    return;
  }
  Framed *f = data;
  g_byte_array_append(f->pending, f->chunk, n);
  gsize at = 0;
  while (f->pending->len - at >= 2) {
    gsize length = ((gsize)f->pending->data[at] << 8) | f->pending->data[at + 1];
    if (f->pending->len - at - 2 < length)
      break;
    if (f->func != NULL)
      f->func(f->pending->data + at + 2, length, f->user_data);
    at += 2 + length;
  }
  g_byte_array_remove_range(f->pending, 0, at);
  if (g_cancellable_is_cancelled(f->cancel)) {
    g_rc_box_release_full(f, framed_clear);
    return;
  }
  g_input_stream_read_async(g_io_stream_get_input_stream(f->stream), f->chunk, sizeof f->chunk,
                            G_PRIORITY_HIGH, f->cancel, on_framed_read, f); /* keeps its ref */
}

static void
framed_read_more(Framed *f)
{
  g_input_stream_read_async(g_io_stream_get_input_stream(f->stream), f->chunk, sizeof f->chunk,
                            G_PRIORITY_HIGH, f->cancel, on_framed_read, g_rc_box_acquire(f));
}

static void
framed_start(gpointer impl, HarkMediaReceiveFunc func, gpointer user_data)
{
  Framed *f = impl;
  gboolean first = f->func == NULL;
  f->func = func;
  f->user_data = user_data;
  if (first)
    framed_read_more(f);
}

static void
framed_clear(gpointer data)
{
  Framed *f = data;
  g_object_unref(f->cancel);
  g_object_unref(f->stream);
  g_byte_array_unref(f->pending);
}

/* A read in flight holds a reference: its buffer is f->chunk, and the cancelled read
 * still completes (from the main loop) after the owner let go. */
static void
framed_free(gpointer impl)
{
  Framed *f = impl;
  f->func = NULL;
  g_cancellable_cancel(f->cancel);
  g_rc_box_release_full(f, framed_clear);
}

static const HarkMediaTransportInterface framed_interface = {
  .version = 1,
  .send = framed_send,
  .start = framed_start,
  .free = framed_free,
  .overhead = 40 + 2, /* IPv4 20 + TCP 20 (no options) + the length */
};

HarkMediaTransport *
hark_media_transport_new_stream(GIOStream *stream)
{
  Framed *f = g_rc_box_new0(Framed);
  f->stream = g_object_ref(stream);
  f->cancel = g_cancellable_new();
  f->pending = g_byte_array_new();
  return hark_media_transport_new(&framed_interface, f);
}
