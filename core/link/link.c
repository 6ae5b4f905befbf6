/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link.c: HarkLink (hark/link.h): the life of a link between two nodes, its framing
 * (a 4-byte big-endian length, then one hark/wire.h message), and the pipe pump. The
 * GIOStream pump is link-stream.c; both drive the same TLS engine (link-tls.c, over two
 * memory BIOs): only where the bytes come from and go to differs.
 *
 * Lifetime: the link is reference counted inside libhark. The user holds one
 * reference (dropped by hark_link_free); every async operation and source in flight
 * holds another, so a callback that frees the link, or an operation that completes
 * after hark_link_free, never touches freed memory. After hark_link_free no handler is
 * called. */
#include "link-private.h"
#include "openssl-errors.h"
#include "hark/transport.h"

#include <string.h>

#include <openssl/err.h>

/* clang-format off */
G_DEFINE_QUARK(hark-link-error-quark, hark_link_error)
/* clang-format on */
/* clang-format off */
G_DEFINE_QUARK(hark-transport-error-quark, hark_transport_error)
/* clang-format on */

HarkNodeLinks *
hark_node_links(HarkNode *node)
{
  if (node->links == NULL)
    node->links = g_new0(HarkNodeLinks, 1);
  return node->links;
}

void
hark_node_links_free(HarkNode *node)
{
  HarkNodeLinks *links = g_steal_pointer(&node->links);
  if (links == NULL)
    return;
  g_clear_pointer(&links->tls_cache, hark_link_tls_cache_free);
  g_clear_pointer(&links->poller, hark_link_poller_free);
  g_free(links);
}

void
hark_link_set_network_handlers(HarkNode *node, HarkLinkAccepted link_accepted,
                               HarkDatagramReceived datagram_received, gpointer data)
{
  HarkNodeLinks *links = hark_node_links(node);
  links->link_accepted = link_accepted;
  links->datagram_received = datagram_received;
  links->network_handler_data = data;
}

void
hark_link_set_credentials(HarkNode *node, const HarkLinkCredentials *credentials, gpointer data)
{
  HarkNodeLinks *links = hark_node_links(node);
  links->credentials = credentials;
  links->credentials_data = data;
}

gboolean
hark_link_has_credentials(HarkNode *node)
{
  HarkNodeLinks *links = hark_node_links(node);
  return links->credentials != NULL && links->credentials->ca_pem(links->credentials_data) != NULL;
}

GBytes *
hark_link_local_certificate(HarkNode *node)
{
  HarkNodeLinks *links = hark_node_links(node);
  return links->credentials != NULL ? links->credentials->certificate_der(links->credentials_data)
                                    : NULL;
}

void
hark_transport_datagram_received(HarkContext *ctx, const char *transport, GSocketAddress *from,
                                 GBytes *datagram)
{
  HarkNodeLinks *links = hark_node_links(ctx->node);
  if (links->datagram_received != NULL)
    links->datagram_received(transport, from, datagram, links->network_handler_data);
}

#define FRAME_HEADER 4
#define DROP_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

static void advance(HarkLink *link);
static void run_tls(HarkLink *link);

HarkLink *
hark_link_hold(HarkLink *link)
{
  link->refs++;
  return link;
}

void
hark_link_release(HarkLink *link)
{
  g_assert(link->refs > 0);
  if (--link->refs > 0)
    return;
  /* Every source and operation holds a reference, so none is left now. */
  g_assert(link->handshake_timer == NULL && link->flush_timer == NULL &&
           link->expiry_timer == NULL);
  SSL_free(link->ssl); /* and its BIOs */
  SSL_CTX_free(link->ssl_ctx);
  g_free(link->ca_pem);
  g_clear_pointer(&link->peer_certificate, hark_device_certificate_free);
  g_byte_array_unref(link->plaintext);
  g_clear_error(&link->close_error);
  g_clear_object(&link->stream);
  g_clear_object(&link->read_cancellable);
  g_clear_object(&link->write_cancellable);
  g_free(link->read_buffer);
  g_clear_pointer(&link->writing, g_bytes_unref);
  g_clear_pointer(&link->to_write, g_byte_array_unref);
  g_main_context_unref(link->main_context);
  g_free(link->transport);
  g_free(link->peer_host);
  g_free(link);
}

void
hark_link_destroy_source(GSource **source)
{
  if (*source == NULL)
    return;
  GSource *s = g_steal_pointer(source);
  g_source_destroy(s);
  g_source_unref(s);
}

/* A source on the node's context whose callback gets the link; it holds a reference. */
GSource *
hark_link_attach_source(HarkLink *link, GSource *source, GSourceFunc callback)
{
  g_source_set_callback(source, callback, hark_link_hold(link), (GDestroyNotify)hark_link_release);
  g_source_attach(source, link->main_context);
  return source;
}

/* ---- the end ------------------------------------------------------------------------ */

static gboolean
deliver_closed(gpointer data)
{
  HarkLink *link = data;
  if (!link->freed && link->handler.closed != NULL)
    link->handler.closed(link, link->close_error, link->user_data);
  return G_SOURCE_REMOVE;
}

static void
flush_output(HarkLink *link)
{
  size_t pending = link->wbio != NULL ? BIO_ctrl_pending(link->wbio) : 0;
  if (pending == 0)
    return;
  if (link->pipe_iface != NULL) {
    guint8 *data = g_malloc(pending);
    int got = BIO_read(link->wbio, data, (int)pending);
    g_autoptr(GBytes) bytes = g_bytes_new_take(data, got > 0 ? (gsize)got : 0);
    if (link->pipe == NULL || got <= 0)
      return; /* the pipe is gone: nothing more can go out */
    link->stats.bytes_out += (guint64)got;
    link->pipe_iface->write(link->pipe, bytes);
  } else if (link->stream != NULL) {
    hark_link_stream_queue(link);
  }
}

/* Ends the link once: stops both pumps, says goodbye to the peer when TLS still can
 * (tls_goodbye: a close_notify after a finished handshake; otherwise only what OpenSSL
 * has queued, an alert say), and has the closed handler told why from an idle. flush:
 * send what is queued on a best-effort basis (not when the peer stopped reading).
 * Takes error (NULL: closed here, on purpose). */
static void
link_end(HarkLink *link, GError *error, gboolean tls_goodbye, gboolean flush)
{
  if (link->state == HARK_LINK_CLOSED) {
    g_clear_error(&error);
    return;
  }
  link->state = HARK_LINK_CLOSED;
  hark_link_destroy_source(&link->handshake_timer);
  hark_link_destroy_source(&link->expiry_timer);
  g_debug("link %s with %s:%u closed: %s", link->transport, link->peer_host, link->peer_port,
          error != NULL ? error->message : "closed here");
  if (tls_goodbye && link->ssl != NULL && SSL_is_init_finished(link->ssl)) {
    ERR_clear_error();
    SSL_shutdown(link->ssl);
    ERR_clear_error();
  }
  if (link->pipe_iface != NULL) {
    if (flush)
      flush_output(link);
    gpointer pipe = g_steal_pointer(&link->pipe);
    if (pipe != NULL)
      link->pipe_iface->close(pipe);
  } else {
    hark_link_stream_end(link, flush);
  }
  link->close_error = error;
  if (!link->freed) {
    GSource *idle = g_idle_source_new();
    hark_link_attach_source(link, idle, deliver_closed);
    g_source_unref(idle);
  }
}

void
hark_link_fail(HarkLink *link, HarkLinkError code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  link_end(link, g_error_new_literal(HARK_LINK_ERROR, code, message), TRUE, TRUE);
}

/* The peer or the transport went away: during the handshake that is its failure. */
HarkLinkError
hark_link_gone_code(HarkLink *link)
{
  return link->state == HARK_LINK_HANDSHAKING ? HARK_LINK_ERROR_HANDSHAKE : HARK_LINK_ERROR_CLOSED;
}

/* advance() under a reference, since any callback it makes may free the link. A pipe
 * may hand bytes over from inside a callback of this link (its write, say): the loop
 * already running reads them. */
static void
run_tls(HarkLink *link)
{
  if (link->advancing)
    return;
  hark_link_hold(link);
  link->advancing = TRUE;
  advance(link);
  link->advancing = FALSE;
  hark_link_release(link);
}

static gboolean deliver_raw(HarkLink *link);
static gboolean offer_foreign(HarkLink *link, gsize offset);

#define TLS_HANDSHAKE_RECORD 0x16 /* the first byte of every TLS ClientHello */

/* An accepting link whose peer does not start with TLS: its user may take the stream as
 * it is (plain TURN over TCP on the web port: libnice's "TURN over TLS" in RFC 5245 mode
 * is TURN over TCP). TRUE when the bytes were handled here. */
static gboolean
feed_plain(HarkLink *link, const guint8 *data, gsize size)
{
  if (link->plain) {
    g_byte_array_append(link->plaintext, data, (guint)size);
    deliver_raw(link);
    return TRUE;
  }
  if (link->tls_seen || link->opener || link->state != HARK_LINK_HANDSHAKING ||
      link->handler.foreign == NULL)
    return FALSE;
  if (link->plaintext->len == 0 && size > 0 && data[0] == TLS_HANDSHAKE_RECORD) {
    link->tls_seen = TRUE;
    return FALSE;
  }
  g_byte_array_append(link->plaintext, data, (guint)size);
  if (link->plaintext->len < 8)
    return TRUE; /* not enough to tell yet */
  if (!offer_foreign(link, 0)) {
    hark_link_fail(link, HARK_LINK_ERROR_HANDSHAKE, "%s:%u did not start a TLS handshake",
                   link->peer_host, link->peer_port);
    return TRUE;
  }
  link->plain = TRUE;
  link->state = HARK_LINK_UP;
  hark_link_destroy_source(&link->handshake_timer);
  deliver_raw(link);
  return TRUE;
}

void
hark_link_feed(HarkLink *link, const guint8 *data, gsize size)
{
  link->stats.bytes_in += size;
  if (feed_plain(link, data, size))
    return;
  while (size > 0) {
    int chunk = (int)MIN(size, (gsize)(1 << 20));
    BIO_write(link->rbio, data, chunk);
    data += chunk;
    size -= (gsize)chunk;
  }
  run_tls(link);
}

/* ---- TLS and framing ------------------------------------------------------------------ */

static void
dropped(HarkLink *link, const GError *error)
{
  link->stats.dropped++;
  gint64 now = g_get_monotonic_time();
  /* A peer sending garbage must not flood the log: one message per 10 s per link. */
  gboolean loud =
    link->last_drop_logged == 0 || now - link->last_drop_logged >= DROP_LOG_INTERVAL_US;
  if (loud)
    link->last_drop_logged = now;
  g_log(G_LOG_DOMAIN, loud ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_DEBUG,
        "dropped a message from %s:%u (%s): %s (%" G_GUINT64_FORMAT " dropped on this link)",
        link->peer_host, link->peer_port, link->transport, error->message, link->stats.dropped);
}

/* Hands every complete frame to the handler; FALSE once the link is no longer up. */
static gboolean
deliver_raw(HarkLink *link)
{
  GByteArray *in = link->plaintext;
  g_autoptr(GByteArray) bytes = g_byte_array_new();
  g_byte_array_append(bytes, in->data, in->len);
  g_byte_array_set_size(in, 0);
  link->stats.last_in_at = g_get_monotonic_time();
  link->raw_received(link, bytes->data, bytes->len, link->raw_data);
  return link->state == HARK_LINK_UP;
}

/* The first bytes an accepting link got cannot be framing: its user may take the stream
 * (hark_link_divert). Needs 8 bytes to tell (a STUN header's magic cookie, say). */
static gboolean
offer_foreign(HarkLink *link, gsize offset)
{
  GByteArray *in = link->plaintext;
  if (offset != 0 || link->opener || link->stats.messages_in != 0 ||
      link->handler.foreign == NULL || in->len < 8)
    return FALSE;
  return link->handler.foreign(link, in->data, in->len, link->user_data) &&
         link->raw_received != NULL;
}

static gboolean
deliver_frames(HarkLink *link)
{
  GByteArray *in = link->plaintext;
  if (link->raw_received != NULL)
    return deliver_raw(link);
  gsize offset = 0;
  while (in->len - offset >= FRAME_HEADER) {
    guint32 length;
    memcpy(&length, in->data + offset, sizeof length);
    length = GUINT32_FROM_BE(length);
    if (length > HARK_WIRE_MAX_SIZE && in->len < 8 && offset == 0 && !link->opener &&
        link->stats.messages_in == 0 && link->handler.foreign != NULL)
      break; /* wait for the 8 bytes that tell */
    if ((length == 0 || length > HARK_WIRE_MAX_SIZE) && offer_foreign(link, offset))
      return link->state == HARK_LINK_UP && deliver_raw(link);
    if (length == 0 || length > HARK_WIRE_MAX_SIZE) {
      hark_link_fail(link, HARK_LINK_ERROR_PROTOCOL,
                     "%s:%u sent a frame of %u bytes (1 to %u are allowed): its framing cannot be "
                     "trusted any more",
                     link->peer_host, link->peer_port, length, HARK_WIRE_MAX_SIZE);
      return FALSE;
    }
    if (in->len - offset - FRAME_HEADER < length)
      break;
    g_autoptr(GBytes) bytes = g_bytes_new(in->data + offset + FRAME_HEADER, length);
    offset += FRAME_HEADER + length;
    g_autoptr(GError) error = NULL;
    g_autoptr(HarkWireMessage) message = hark_wire_decode(bytes, &error);
    if (message == NULL) {
      dropped(link, error);
      continue;
    }
    link->stats.messages_in++;
    link->stats.last_in_at = g_get_monotonic_time();
    if (link->handler.message != NULL)
      link->handler.message(link, message, link->user_data);
    if (link->state != HARK_LINK_UP)
      return FALSE;
  }
  g_byte_array_remove_range(in, 0, (guint)offset);
  return TRUE;
}

static void
handshake_done(HarkLink *link)
{
  g_autoptr(GError) error = NULL;
  if (!hark_link_tls_check_peer(link, &error)) {
    link_end(link, g_steal_pointer(&error), TRUE, TRUE);
    return;
  }
  link->state = HARK_LINK_UP;
  link->stats.up_at = g_get_monotonic_time();
  hark_link_destroy_source(&link->handshake_timer);
  hark_link_watch_peer_certificate(link);
  const HarkDeviceCertificate *peer = link->peer_certificate;
  g_debug("link %s with %s:%u up in %" G_GINT64_FORMAT " ms; peer %s%s%s", link->transport,
          link->peer_host, link->peer_port, (link->stats.up_at - link->stats.opened_at) / 1000,
          peer != NULL ? peer->user : "unauthenticated", peer != NULL ? "/" : "",
          peer != NULL ? peer->device_id : "");
  if (link->handler.up != NULL)
    link->handler.up(link, link->user_data);
}

/* Runs TLS as far as the bytes received allow: the handshake, then decryption and
 * delivery. Whatever TLS wants to send goes to the pump. */
static void
advance(HarkLink *link)
{
  if (link->state == HARK_LINK_HANDSHAKING) {
    ERR_clear_error();
    int r = SSL_do_handshake(link->ssl);
    int code = r == 1 ? SSL_ERROR_NONE : SSL_get_error(link->ssl, r);
    flush_output(link); /* our next flight, or the alert that ends it */
    if (link->state != HARK_LINK_HANDSHAKING)
      return; /* the pipe broke under the write */
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
      return;
    if (code != SSL_ERROR_NONE) {
      link_end(link, hark_link_tls_handshake_error(link), FALSE, TRUE);
      return;
    }
    handshake_done(link);
  }
  guint8 buffer[HARK_LINK_READ_CHUNK];
  while (link->state == HARK_LINK_UP) {
    ERR_clear_error();
    int n = SSL_read(link->ssl, buffer, sizeof buffer);
    if (n > 0) {
      g_byte_array_append(link->plaintext, buffer, (guint)n);
      if (!deliver_frames(link))
        return;
      continue;
    }
    int code = SSL_get_error(link->ssl, n);
    flush_output(link); /* e.g. the answer to a key update */
    if (link->state != HARK_LINK_UP || code == SSL_ERROR_WANT_READ)
      return;
    if (code == SSL_ERROR_ZERO_RETURN) {
      hark_link_fail(link, HARK_LINK_ERROR_CLOSED, "%s:%u closed the link", link->peer_host,
                     link->peer_port);
    } else {
      g_autofree char *details = hark_openssl_take_errors();
      link_end(link,
               g_error_new(HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED,
                           "TLS error on the link with %s:%u: %s", link->peer_host, link->peer_port,
                           details[0] != '\0' ? details : "no reason given"),
               FALSE, TRUE);
    }
    return;
  }
}

/* ---- the peer's certificate ending ------------------------------------------------------ */

static gboolean
peer_certificate_expired(gpointer data)
{
  HarkLink *link = data;
  const HarkDeviceCertificate *peer = link->peer_certificate;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  if (peer != NULL && peer->not_after > now) {
    /* The clock was set back meanwhile: wait for the rest. */
    hark_link_watch_peer_certificate(link);
    return G_SOURCE_REMOVE;
  }
  g_autoptr(GDateTime) at = g_date_time_new_from_unix_utc(peer != NULL ? peer->not_after : now);
  g_autofree char *when = at != NULL ? g_date_time_format_iso8601(at) : g_strdup("?");
  hark_link_fail(link, HARK_LINK_ERROR_EXPIRED,
                 "the certificate of %s:%u (%s's device %.16s...) expired at %s and was not "
                 "renewed",
                 link->peer_host, link->peer_port, peer != NULL ? peer->user : "?",
                 peer != NULL ? peer->device_id : "?", when);
  return G_SOURCE_REMOVE;
}

void
hark_link_watch_peer_certificate(HarkLink *link)
{
  /* The source being replaced may be the one calling: destroying it here is safe, its
   * callback holds its own reference to the link. */
  hark_link_destroy_source(&link->expiry_timer);
  const HarkDeviceCertificate *peer = link->peer_certificate;
  if (link->opener || peer == NULL || link->state == HARK_LINK_CLOSED)
    return;
  gint64 left_ms = peer->not_after * 1000 - g_get_real_time() / 1000;
  /* A moment past notAfter, so that the check above sees it expired. */
  guint delay = (guint)CLAMP(left_ms + 50, 0, (gint64)G_MAXUINT);
  link->expiry_timer =
    hark_link_attach_source(link, g_timeout_source_new(delay), peer_certificate_expired);
}

/* ---- making links -------------------------------------------------------------------- */

static gboolean
handshake_timed_out(gpointer data)
{
  HarkLink *link = data;
  hark_link_fail(link, HARK_LINK_ERROR_HANDSHAKE, "no TLS handshake with %s:%u within %u ms",
                 link->peer_host, link->peer_port, link->handshake_timeout_ms);
  return G_SOURCE_REMOVE;
}

/* Counted from the link's creation, so a timeout set later is not a fresh start. */
static void
arm_handshake_timer(HarkLink *link)
{
  hark_link_destroy_source(&link->handshake_timer);
  gint64 elapsed_ms = (g_get_monotonic_time() - link->stats.opened_at) / 1000;
  guint left =
    elapsed_ms < link->handshake_timeout_ms ? link->handshake_timeout_ms - (guint)elapsed_ms : 0;
  link->handshake_timer =
    hark_link_attach_source(link, g_timeout_source_new(left), handshake_timed_out);
}

void
hark_link_set_handshake_timeout(HarkLink *link, guint ms)
{
  g_return_if_fail(link != NULL);
  link->handshake_timeout_ms = ms;
  if (link->state == HARK_LINK_HANDSHAKING)
    arm_handshake_timer(link);
}

static HarkLink *
link_new(HarkContext *ctx, const char *transport, gboolean opener, const char *peer_host,
         guint16 peer_port)
{
  HarkLink *link = g_new0(HarkLink, 1);
  link->refs = 1;
  link->main_context = g_main_context_ref(hark_context_main_context(ctx));
  link->node = ctx->node;
  link->transport = g_strdup(transport);
  link->peer_host = g_strdup(peer_host != NULL ? peer_host : "?");
  link->peer_port = peer_port;
  link->opener = opener;
  link->state = HARK_LINK_HANDSHAKING;
  link->stats.opened_at = g_get_monotonic_time();
  link->stats.rtt_us = -1;
  link->plaintext = g_byte_array_new();
  link->handshake_timeout_ms = HARK_LINK_HANDSHAKE_TIMEOUT_MS;
  return link;
}

/* TLS set up, the handshake clock running and (opener) the first flight sent. On
 * failure the link is ended (its stream or pipe closed) and freed. */
static gboolean
link_start(HarkLink *link, HarkContext *ctx, GError **error)
{
  if (!hark_link_tls_setup(link, ctx->node, error)) {
    link->freed = TRUE;
    link_end(link, NULL, FALSE, FALSE);
    hark_link_release(link);
    return FALSE;
  }
  arm_handshake_timer(link);
  run_tls(link);
  return TRUE;
}

/* The opener's link goes back to whoever opened it (through the transport); an
 * accepted one goes to the node's overlay, or away when there is none. */
static HarkLink *
hand_over(HarkLink *link, HarkContext *ctx, GError **error)
{
  HarkNodeLinks *links = hark_node_links(ctx->node);
  if (link->opener)
    return link;
  if (links->link_accepted == NULL) {
    g_debug("no overlay takes links on this node; closing the one from %s:%u (%s)", link->peer_host,
            link->peer_port, link->transport);
    g_set_error_literal(error, HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED,
                        "no overlay takes links on this node");
    hark_link_free(link);
    return NULL;
  }
  links->link_accepted(link, links->network_handler_data);
  return link;
}

HarkLink *
hark_link_new_for_stream(HarkContext *ctx, const char *transport, GIOStream *stream,
                         gboolean opener, const char *peer_host, guint16 peer_port, GError **error)
{
  g_return_val_if_fail(ctx != NULL && transport != NULL && G_IS_IO_STREAM(stream), NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);
  HarkLink *link = link_new(ctx, transport, opener, peer_host, peer_port);
  link->stream = stream;
  link->read_cancellable = g_cancellable_new();
  link->write_cancellable = g_cancellable_new();
  link->to_write = g_byte_array_new();
  if (!link_start(link, ctx, error))
    return NULL;
  hark_link_stream_read(link);
  return hand_over(link, ctx, error);
}

HarkLink *
hark_link_new_for_pipe(HarkContext *ctx, const char *transport, const HarkLinkPipe *pipe_iface,
                       gpointer pipe, gboolean opener, const char *peer_host, guint16 peer_port,
                       GError **error)
{
  g_return_val_if_fail(ctx != NULL && transport != NULL && pipe_iface != NULL, NULL);
  g_return_val_if_fail(
    pipe_iface->version >= 1 && pipe_iface->write != NULL && pipe_iface->close != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);
  HarkLink *link = link_new(ctx, transport, opener, peer_host, peer_port);
  link->pipe_iface = pipe_iface;
  link->pipe = pipe;
  if (!link_start(link, ctx, error))
    return NULL;
  return hand_over(link, ctx, error);
}

void
hark_link_pipe_received(HarkLink *link, GBytes *bytes)
{
  g_return_if_fail(link != NULL && bytes != NULL && link->pipe_iface != NULL);
  if (link->state == HARK_LINK_CLOSED)
    return;
  gsize size = 0;
  const guint8 *data = g_bytes_get_data(bytes, &size);
  hark_link_feed(link, data, size);
}

void
hark_link_pipe_closed(HarkLink *link, const GError *error)
{
  g_return_if_fail(link != NULL && link->pipe_iface != NULL);
  if (link->state == HARK_LINK_CLOSED)
    return;
  link_end(link,
           g_error_new(HARK_LINK_ERROR, hark_link_gone_code(link), "the %s pipe to %s:%u broke: %s",
                       link->transport, link->peer_host, link->peer_port,
                       error != NULL ? error->message : "closed"),
           FALSE, FALSE);
}

/* ---- using links ----------------------------------------------------------------------- */

void
hark_link_set_handler(HarkLink *link, const HarkLinkHandler *handler, gpointer user_data)
{
  g_return_if_fail(link != NULL);
  if (handler != NULL)
    link->handler = *handler;
  else
    memset(&link->handler, 0, sizeof link->handler);
  link->user_data = user_data;
}

gboolean
hark_link_send(HarkLink *link, guint16 type, guint64 id, GVariant *body, GError **error)
{
  g_return_val_if_fail(link != NULL && body != NULL, FALSE);
  g_autoptr(GVariant) owned = g_variant_ref_sink(body);
  if (link->state != HARK_LINK_UP) {
    g_set_error(error, HARK_LINK_ERROR,
                link->state == HARK_LINK_CLOSED ? HARK_LINK_ERROR_CLOSED
                                                : HARK_LINK_ERROR_HANDSHAKE,
                "the link with %s:%u is %s", link->peer_host, link->peer_port,
                link->state == HARK_LINK_CLOSED ? "closed" : "not up yet");
    return FALSE;
  }
  g_autoptr(GBytes) message = hark_wire_encode(type, id, owned, error);
  if (message == NULL)
    return FALSE;
  gsize size = g_bytes_get_size(message);
  /* A pipe takes every write at once: only a stream has a queue. */
  gsize queued = link->stream != NULL ? hark_link_stream_queued(link) : 0;
  if (queued + FRAME_HEADER + size > HARK_LINK_WRITE_LIMIT) {
    GError *backlog = g_error_new(HARK_LINK_ERROR, HARK_LINK_ERROR_BACKLOG,
                                  "%s:%u does not read: more than %u bytes are waiting for it",
                                  link->peer_host, link->peer_port, HARK_LINK_WRITE_LIMIT);
    g_propagate_error(error, g_error_copy(backlog));
    link_end(link, backlog, FALSE, FALSE);
    return FALSE;
  }
  /* One buffer, so that a small message is one TLS record. */
  g_autofree guint8 *frame = g_malloc(FRAME_HEADER + size);
  guint32 length = GUINT32_TO_BE((guint32)size);
  memcpy(frame, &length, FRAME_HEADER);
  memcpy(frame + FRAME_HEADER, g_bytes_get_data(message, NULL), size);
  ERR_clear_error();
  if (SSL_write(link->ssl, frame, (int)(FRAME_HEADER + size)) <= 0) {
    g_autofree char *details = hark_openssl_take_errors();
    GError *broken =
      g_error_new(HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED, "TLS error on the link with %s:%u: %s",
                  link->peer_host, link->peer_port, details);
    g_propagate_error(error, g_error_copy(broken));
    link_end(link, broken, FALSE, TRUE);
    return FALSE;
  }
  link->stats.messages_out++;
  link->stats.last_out_at = g_get_monotonic_time();
  hark_link_hold(link); /* a pipe's write may end the link */
  flush_output(link);
  hark_link_release(link);
  return TRUE;
}

void
hark_link_divert(HarkLink *link, HarkLinkRawReceived received, gpointer user_data)
{
  g_return_if_fail(link != NULL && received != NULL);
  link->raw_received = received;
  link->raw_data = user_data;
}

gboolean
hark_link_write_raw(HarkLink *link, const guint8 *data, gsize size)
{
  g_return_val_if_fail(link != NULL, FALSE);
  gsize queued = link->stream != NULL ? hark_link_stream_queued(link) : 0;
  if (link->state != HARK_LINK_UP || queued + size > HARK_LINK_WRITE_LIMIT)
    return FALSE;
  ERR_clear_error();
  if (link->plain) {
    BIO_write(link->wbio, data, (int)size); /* no TLS: straight to the transport */
  } else if (SSL_write(link->ssl, data, (int)size) <= 0) {
    g_autofree char *details = hark_openssl_take_errors();
    link_end(link,
             g_error_new(HARK_LINK_ERROR, HARK_LINK_ERROR_CLOSED,
                         "TLS error on the link with %s:%u: %s", link->peer_host,
                         link->peer_port, details),
             FALSE, TRUE);
    return FALSE;
  }
  link->stats.last_out_at = g_get_monotonic_time();
  hark_link_hold(link); /* a pipe's write may end the link */
  flush_output(link);
  hark_link_release(link);
  return TRUE;
}

void
hark_link_close(HarkLink *link)
{
  g_return_if_fail(link != NULL);
  link_end(link, NULL, TRUE, TRUE);
}

void
hark_link_free(HarkLink *link)
{
  if (link == NULL)
    return;
  g_return_if_fail(!link->freed);
  link->freed = TRUE;
  memset(&link->handler, 0, sizeof link->handler);
  link_end(link, NULL, TRUE, TRUE);
  hark_link_release(link);
}

HarkLinkState
hark_link_get_state(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, HARK_LINK_CLOSED);
  return link->state;
}

const char *
hark_link_get_transport(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, NULL);
  return link->transport;
}

const char *
hark_link_get_peer_host(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, NULL);
  return link->peer_host;
}

guint16
hark_link_get_peer_port(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, 0);
  return link->peer_port;
}

gboolean
hark_link_is_opener(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, FALSE);
  return link->opener;
}

const HarkLinkStats *
hark_link_get_stats(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, NULL);
  return &link->stats;
}

void
hark_link_set_rtt(HarkLink *link, gint64 rtt_us)
{
  g_return_if_fail(link != NULL);
  link->stats.rtt_us = rtt_us;
}

const HarkDeviceCertificate *
hark_link_get_peer_certificate(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, NULL);
  return link->peer_certificate;
}
