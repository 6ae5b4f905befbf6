/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link-stream.c: the byte pump of a link over a GIOStream (hark_link_new_for_stream):
 * one async read at a time into the TLS engine, and a write queue of what TLS produces
 * with one async write in flight, all on the node's main context. After the link ends,
 * what is queued still goes out for up to CLOSE_FLUSH_MS, then the stream is closed
 * (GIO refuses to close a stream with an operation pending, so it waits for both). */
#include "link-private.h"

#include <openssl/bio.h>

#define CLOSE_FLUSH_MS 2000

static void write_next(HarkLink *link);
static void maybe_close_stream(HarkLink *link);

static gboolean
flush_timed_out(gpointer data)
{
  HarkLink *link = data;
  g_clear_pointer(&link->flush_timer, g_source_unref);
  g_byte_array_set_size(link->to_write, 0);
  g_cancellable_cancel(link->write_cancellable);
  return G_SOURCE_REMOVE;
}

static void
stream_closed(GObject *source, GAsyncResult *result, gpointer data)
{
  g_io_stream_close_finish(G_IO_STREAM(source), result, NULL);
  hark_link_release(data);
}

/* Once the link is closed and no read or write is in flight any more (GIO refuses to
 * close a stream with pending operations). */
static void
maybe_close_stream(HarkLink *link)
{
  if (link->state != HARK_LINK_CLOSED || link->stream == NULL || link->stream_closing ||
      link->read_pending || link->writing != NULL)
    return;
  link->stream_closing = TRUE;
  hark_link_destroy_source(&link->flush_timer);
  g_main_context_push_thread_default(link->main_context);
  g_io_stream_close_async(link->stream, G_PRIORITY_DEFAULT, NULL, stream_closed,
                          hark_link_hold(link));
  g_main_context_pop_thread_default(link->main_context);
}

static void
write_done(GObject *source, GAsyncResult *result, gpointer data)
{
  HarkLink *link = data;
  gsize written = 0;
  g_autoptr(GError) error = NULL;
  gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, &written, &error);
  link->stats.bytes_out += written;
  g_clear_pointer(&link->writing, g_bytes_unref);
  if (ok) {
    write_next(link);
  } else {
    g_byte_array_set_size(link->to_write, 0); /* nothing more can go out */
    if (link->state != HARK_LINK_CLOSED)
      hark_link_fail(link, hark_link_gone_code(link), "cannot write to %s:%u: %s", link->peer_host,
                     link->peer_port, error->message);
  }
  maybe_close_stream(link);
  hark_link_release(link);
}

/* One write in flight at a time; what is queued behind it goes out as one write. */
static void
write_next(HarkLink *link)
{
  if (link->stream == NULL || link->writing != NULL || link->to_write->len == 0 ||
      link->stream_closing)
    return;
  link->writing = g_byte_array_free_to_bytes(g_steal_pointer(&link->to_write));
  link->to_write = g_byte_array_new();
  gsize size = 0;
  gconstpointer data = g_bytes_get_data(link->writing, &size);
  g_main_context_push_thread_default(link->main_context);
  g_output_stream_write_all_async(g_io_stream_get_output_stream(link->stream), data, size,
                                  G_PRIORITY_DEFAULT, link->write_cancellable, write_done,
                                  hark_link_hold(link));
  g_main_context_pop_thread_default(link->main_context);
}

gsize
hark_link_stream_queued(HarkLink *link)
{
  return link->to_write->len + (link->writing != NULL ? g_bytes_get_size(link->writing) : 0);
}

void
hark_link_stream_got(HarkLink *link, const guint8 *buffer, gssize n, const GError *error)
{
  if (link->state != HARK_LINK_CLOSED) {
    if (n < 0)
      hark_link_fail(link, hark_link_gone_code(link), "cannot read from %s:%u: %s", link->peer_host,
                     link->peer_port, error->message);
    else if (n == 0)
      hark_link_fail(link, hark_link_gone_code(link), "%s:%u closed the connection%s",
                     link->peer_host, link->peer_port,
                     link->state == HARK_LINK_HANDSHAKING ? " during the TLS handshake" : "");
    else {
      hark_link_feed(link, buffer, (gsize)n);
      hark_link_stream_read(link);
    }
  }
  maybe_close_stream(link);
}

static void
read_done(GObject *source, GAsyncResult *result, gpointer data)
{
  HarkLink *link = data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);
  link->read_pending = FALSE;
  hark_link_stream_got(link, link->read_buffer, n, error);
  hark_link_release(link);
}

/* Sockets are read by the node's poller (link-poller.c), other streams by GIO. */
void
hark_link_stream_read(HarkLink *link)
{
  if (link->read_pending || link->polled || link->state == HARK_LINK_CLOSED)
    return;
  if (hark_link_poller_add(link))
    return;
  if (link->read_buffer == NULL)
    link->read_buffer = g_malloc(HARK_LINK_READ_CHUNK);
  link->read_pending = TRUE;
  g_main_context_push_thread_default(link->main_context);
  g_input_stream_read_async(g_io_stream_get_input_stream(link->stream), link->read_buffer,
                            HARK_LINK_READ_CHUNK, G_PRIORITY_DEFAULT, link->read_cancellable,
                            read_done, hark_link_hold(link));
  g_main_context_pop_thread_default(link->main_context);
}

void
hark_link_stream_queue(HarkLink *link)
{
  size_t pending = link->wbio != NULL ? BIO_ctrl_pending(link->wbio) : 0;
  if (pending == 0)
    return;
  guint old = link->to_write->len;
  g_byte_array_set_size(link->to_write, old + (guint)pending);
  int got = BIO_read(link->wbio, link->to_write->data + old, (int)pending);
  g_byte_array_set_size(link->to_write, old + (guint)MAX(got, 0));
  write_next(link);
}

void
hark_link_stream_end(HarkLink *link, gboolean flush)
{
  if (flush)
    hark_link_stream_queue(link);
  else {
    g_byte_array_set_size(link->to_write, 0);
    g_cancellable_cancel(link->write_cancellable);
  }
  g_cancellable_cancel(link->read_cancellable);
  hark_link_poller_remove(link); /* before the socket closes and its number is reused */
  if (link->writing != NULL)
    link->flush_timer =
      hark_link_attach_source(link, g_timeout_source_new(CLOSE_FLUSH_MS), flush_timed_out);
  maybe_close_stream(link);
}
