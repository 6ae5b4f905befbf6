/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-pulse.c: capture from the sound server (PulseAudio, or PipeWire's PulseAudio
 * service) with libpulse's asynchronous API: the fragments the server sends are copied
 * into fixed blocks in libpulse's own thread, and each full block is pushed from there
 * through the encoder to the transport (media-push-src.c: no queue, no thread between).
 *
 * Why not GStreamer's pulsesrc: its streaming thread wakes for every fragment the server
 * sends, and libpulse's thread wakes to hand each one over. On the benchmark's sound
 * server (a mono remap of a busy null sink's monitor) the server sends about 2,800
 * fragments a second, and pulsesrc's two threads switched about 7,000 times a second:
 * over half of the calling end's CPU. Here the one libpulse thread does it (what baresip
 * does). The server converts to 48 kHz mono S16LE, so no converter sits in the hot path. */
#include "media-pulse.h"

#include <string.h>

struct _HarkMediaPulseCapture {
  char *device; /* NULL: the server's default (or PULSE_SOURCE) */
  guint block_ms;
  GstElement *src; /* a push source (a reference) */
  HarkMediaPulseLink link;
  GstBuffer *block; /* being filled */
  GstMapInfo map;
  gsize filled;
  gboolean running; /* connected; a failure from now on is an error on the bus */
  GstClockTime next_pts; /* where the last block ended, to keep timestamps continuous */
};

HarkMediaPulseCapture *
hark_media_pulse_capture_new(const char *device, guint block_ms, GstElement *src)
{
  HarkMediaPulseCapture *c = g_new0(HarkMediaPulseCapture, 1);
  c->device = device && device[0] ? g_strdup(device) : NULL;
  c->block_ms = CLAMP(block_ms, 5, 40);
  c->src = gst_object_ref(src);
  c->next_pts = GST_CLOCK_TIME_NONE;
  return c;
}

/* The running time the block that was just read started at. Blocks follow each other
 * without gaps, so a block within 20 ms of where the last one ended continues it: the
 * encoder and the RTP timestamps see steady time, not the reader's scheduling. */
static GstClockTime
block_pts(HarkMediaPulseCapture *c, GstClockTime duration)
{
  g_autoptr(GstClock) clock = gst_element_get_clock(c->src);
  if (clock == NULL)
    return GST_CLOCK_TIME_NONE; /* not playing yet */
  GstClockTime now = gst_clock_get_time(clock) - gst_element_get_base_time(c->src);
  GstClockTime pts = now > duration ? now - duration : 0;
  if (GST_CLOCK_TIME_IS_VALID(c->next_pts) &&
      (GstClockTimeDiff)(pts - c->next_pts) < (GstClockTimeDiff)(20 * GST_MSECOND) &&
      (GstClockTimeDiff)(c->next_pts - pts) < (GstClockTimeDiff)(20 * GST_MSECOND))
    pts = c->next_pts;
  c->next_pts = pts + duration;
  return pts;
}

/* In libpulse's thread, with its lock held: copy what came into the block; push each
 * full one. A hole (the server lost data) is silence. */
static void
on_readable(pa_stream *stream, size_t nbytes, void *data)
{
  HarkMediaPulseCapture *c = data;
  gsize bytes = 48 * 2 * c->block_ms;
  GstClockTime duration = c->block_ms * GST_MSECOND;
  const void *fragment;
  size_t n;
  /* peek says "nothing left" by n == 0; no pa_stream_readable_size() before it, since every
   * libpulse call makes a getpid() system call (its fork check), a few thousand a second. */
  while (pa_stream_peek(stream, &fragment, &n) == 0 && n > 0) {
    for (size_t at = 0; at < n;) {
      if (c->block == NULL) {
        c->block = gst_buffer_new_allocate(NULL, bytes, NULL);
        gst_buffer_map(c->block, &c->map, GST_MAP_WRITE);
        c->filled = 0;
      }
      gsize take = MIN(bytes - c->filled, n - at);
      if (fragment != NULL)
        memcpy(c->map.data + c->filled, (const guint8 *)fragment + at, take);
      else
        memset(c->map.data + c->filled, 0, take);
      c->filled += take;
      at += take;
      if (c->filled < bytes)
        continue;
      gst_buffer_unmap(c->block, &c->map);
      GstBuffer *block = g_steal_pointer(&c->block);
      GstClockTime pts = block_pts(c, duration);
      if (!GST_CLOCK_TIME_IS_VALID(pts)) {
        gst_buffer_unref(block);
        continue;
      }
      GST_BUFFER_PTS(block) = pts;
      GST_BUFFER_DURATION(block) = duration;
      hark_media_push_src_push(c->src, block);
    }
    pa_stream_drop(stream);
  }
}

/* ---- the connection, shared with playback (media-pulse-playback.c) ---------------- */

static void
on_context_state(pa_context *context, void *data)
{
  pa_threaded_mainloop_signal(((HarkMediaPulseLink *)data)->loop, 0);
}

/* With the loop locked: connect the context, make and connect the stream, and wait for
 * both to be ready. */
static const char *
link_connect_locked(HarkMediaPulseLink *l, HarkMediaPulseStreamFunc connect_stream, gpointer data)
{
  if (pa_context_connect(l->context, NULL, PA_CONTEXT_NOAUTOSPAWN, NULL) < 0)
    return pa_strerror(pa_context_errno(l->context));
  pa_context_state_t cs;
  while ((cs = pa_context_get_state(l->context)) != PA_CONTEXT_READY) {
    if (!PA_CONTEXT_IS_GOOD(cs))
      return pa_strerror(pa_context_errno(l->context));
    pa_threaded_mainloop_wait(l->loop);
  }
  if (!connect_stream(l, data))
    return pa_strerror(pa_context_errno(l->context));
  pa_stream_state_t ss;
  while ((ss = pa_stream_get_state(l->stream)) != PA_STREAM_READY) {
    if (!PA_STREAM_IS_GOOD(ss))
      return pa_strerror(pa_context_errno(l->context));
    pa_threaded_mainloop_wait(l->loop);
  }
  return NULL;
}

gboolean
hark_media_pulse_link_open(HarkMediaPulseLink *l, HarkMediaPulseStreamFunc connect_stream,
                           gpointer data, GError **error)
{
  l->loop = pa_threaded_mainloop_new();
  l->context = pa_context_new(pa_threaded_mainloop_get_api(l->loop), "hark");
  pa_context_set_state_callback(l->context, on_context_state, l);
  pa_threaded_mainloop_lock(l->loop);
  const char *problem = pa_threaded_mainloop_start(l->loop) < 0
                          ? "cannot start a thread"
                          : link_connect_locked(l, connect_stream, data);
  pa_threaded_mainloop_unlock(l->loop);
  if (problem != NULL) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_NO_SOUND, "%s", problem);
    hark_media_pulse_link_close(l);
    return FALSE;
  }
  return TRUE;
}

void
hark_media_pulse_link_close(HarkMediaPulseLink *l)
{
  if (l->loop == NULL)
    return;
  pa_threaded_mainloop_lock(l->loop);
  if (l->stream != NULL) {
    pa_stream_set_read_callback(l->stream, NULL, NULL);
    pa_stream_set_write_callback(l->stream, NULL, NULL);
    pa_stream_set_state_callback(l->stream, NULL, NULL);
    pa_stream_disconnect(l->stream);
    g_clear_pointer(&l->stream, pa_stream_unref);
  }
  pa_context_disconnect(l->context);
  g_clear_pointer(&l->context, pa_context_unref);
  pa_threaded_mainloop_unlock(l->loop);
  pa_threaded_mainloop_stop(l->loop);
  g_clear_pointer(&l->loop, pa_threaded_mainloop_free);
}

/* ---- capture ---------------------------------------------------------------------------- */

static void
on_stream_state(pa_stream *stream, void *data)
{
  HarkMediaPulseCapture *c = data;
  if (c->running && !PA_STREAM_IS_GOOD(pa_stream_get_state(stream))) {
    c->running = FALSE;
    GST_ELEMENT_ERROR(c->src, RESOURCE, READ,
                      ("sound server: %s", pa_strerror(pa_context_errno(c->link.context))),
                      (NULL));
  }
  pa_threaded_mainloop_signal(c->link.loop, 0);
}

/* With the loop locked: the record stream, its fragments about one block. */
static gboolean
connect_record(HarkMediaPulseLink *l, gpointer data)
{
  HarkMediaPulseCapture *c = data;
  const pa_sample_spec spec = { .format = PA_SAMPLE_S16LE, .rate = 48000, .channels = 1 };
  /* fragsize: with ADJUST_LATENCY the source's latency is set to about one block. */
  const pa_buffer_attr attr = { .maxlength = (uint32_t)-1,
                                .tlength = (uint32_t)-1,
                                .prebuf = (uint32_t)-1,
                                .minreq = (uint32_t)-1,
                                .fragsize = 48 * 2 * c->block_ms };
  l->stream = pa_stream_new(l->context, "call", &spec, NULL);
  pa_stream_set_state_callback(l->stream, on_stream_state, c);
  pa_stream_set_read_callback(l->stream, on_readable, c);
  return pa_stream_connect_record(l->stream, c->device, &attr, PA_STREAM_ADJUST_LATENCY) == 0;
}

gboolean
hark_media_pulse_capture_start(HarkMediaPulseCapture *c, GError **error)
{
  if (c->link.loop != NULL)
    return TRUE;
  if (!hark_media_pulse_link_open(&c->link, connect_record, c, error))
    return FALSE;
  c->running = TRUE;
  return TRUE;
}

void
hark_media_pulse_capture_stop(HarkMediaPulseCapture *c)
{
  if (c == NULL || c->link.loop == NULL)
    return;
  pa_threaded_mainloop_lock(c->link.loop);
  c->running = FALSE;
  pa_threaded_mainloop_unlock(c->link.loop);
  hark_media_pulse_link_close(&c->link);
  if (c->block != NULL) {
    gst_buffer_unmap(c->block, &c->map);
    gst_clear_buffer(&c->block);
  }
}

void
hark_media_pulse_capture_free(HarkMediaPulseCapture *c)
{
  if (c == NULL)
    return;
  hark_media_pulse_capture_stop(c);
  gst_object_unref(c->src);
  g_free(c->device);
  g_free(c);
}
