/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-pulse-playback.c: playback to the sound server (PulseAudio, or PipeWire's
 * PulseAudio service) with libpulse's asynchronous API: the thread that decodes (the
 * jitter buffer's) writes each decoded buffer straight into the server's stream, at the
 * place in it where the buffer is due, and returns. One write, one wake-up of
 * libpulse's thread to send it; nothing waits.
 *
 * Why not GStreamer's pulsesink: its ring buffer made the decoding thread wait for room,
 * woken by libpulse's thread at each of the server's requests, and each write woke
 * libpulse's thread again: about 345 switches a second in libpulse's thread, and the
 * jitter buffer's thread about 190. It also stalled for good now and then on a device
 * nobody records (a null sink), and then nothing more was played. Writing only when the
 * server asks (its write callback, baresip's shape) woke the threads least, but what the
 * server holds ahead of a request (a period at least) is delay every sample pays: about
 * 20 ms more from mouth to ear, which is why it is not done that way.
 *
 * Timing: each buffer is due (heard) at its running time plus the pipeline's latency
 * (the jitter buffer's delay, which the session's policy moves), as in any synchronised
 * sink. libpulse's interpolated timing says which sample of the stream is being heard
 * now, so the buffer is written where it will be heard at its due time (an absolute
 * position in the stream; what lies between writes plays as silence). A buffer that
 * continues the previous one within ALIGN_MS goes right after it, so the two clocks'
 * small differences never cut the audio; not after the latency moved, though (the
 * jitter-buffer policy's steps as it shrinks): then it goes where due, or the shrinking
 * would only be heard once it added up to ALIGN_MS (on the clean-link bench that kept the
 * delay 2.5 ms above the policy's, in the median). prebuf = 0: the server neither waits
 * to start nor stops on an underrun, so positions keep their time. The server plays what
 * is ahead of its read position; its device latency before that is how long before its due
 * time a buffer must be written: hark_media_pulse_sink_delay() tells the session, whose
 * probe in front of the sink counts it against each buffer's slack for the jitter-buffer
 * policy. Audio written behind the read position is dropped by the server (and counted
 * here as late). The device gets half a period of latency, as pulsesink's buffer of three
 * periods gave it (a buffer of one period gave it none, and the server spun). */
#include "media-private.h"
#include "media-pulse.h"

#include <gst/base/gstbasesink.h>
#include <string.h>

#define RATE 48000
#define BYTES_PER_SAMPLE 2
/* A buffer due within this of where the previous one ended goes right after it. */
#define ALIGN_MS 5
/* The server's requests for more, which nobody answers, come this many periods apart
 * (each wakes libpulse's thread); the device gets half a period of latency, as with
 * pulsesink's three periods of buffer. */
#define REQUEST_PERIODS 10
/* What a write needs beyond the device's latency to reach the server in time. */
#define MARGIN_MS 2

typedef struct _HarkMediaPulseSink HarkMediaPulseSink;

struct _HarkMediaPulseSink {
  GstBaseSink parent;
  char *device; /* NULL: the server's default (or PULSE_SINK) */
  guint period_ms;
  GstPipeline *pipeline; /* the top-level bin (not a reference): its latency */
  HarkMediaPulseLink link;
  gboolean running; /* connected; a failure from now on is an error on the bus */
  gint ahead_us; /* atomic: how long before it is due a buffer must be written */
  /* In the decoding thread (with the loop locked): where the last write ended. */
  gboolean have_end;
  gint64 end; /* in samples of the stream */
  GstClockTime end_latency; /* the pipeline's latency the last write was placed with */
  guint64 late_samples; /* written behind the server's read position */
};

typedef struct {
  GstBaseSinkClass parent_class;
} HarkMediaPulseSinkClass;

G_DEFINE_TYPE(HarkMediaPulseSink, hark_media_pulse_sink, GST_TYPE_BASE_SINK)

#define RAW_CAPS "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1"

static GstStaticPadTemplate sink_template =
  GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(RAW_CAPS));

/* The pipeline's running time now, or NONE before it plays. */
static GstClockTime
running_time_now(GstElement *element)
{
  g_autoptr(GstClock) clock = gst_element_get_clock(element);
  if (clock == NULL || GST_STATE(element) != GST_STATE_PLAYING)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time(clock), base = gst_element_get_base_time(element);
  return now > base ? now - base : 0;
}

/* With the loop locked: the sample of the stream that is heard at running time due
 * (now: the running time now), and how long before its time a write must reach the
 * server; FALSE before the server's first timing. */
static gboolean
position_of(HarkMediaPulseSink *self, GstClockTime due, GstClockTime now, gint64 *position,
            GstClockTime *ahead)
{
  pa_stream *stream = self->link.stream;
  pa_usec_t heard = 0;
  const pa_timing_info *timing = pa_stream_get_timing_info(stream);
  if (timing == NULL || pa_stream_get_time(stream, &heard) < 0)
    return FALSE;
  GstClockTimeDiff lead = GST_CLOCK_DIFF(now, due);
  *position = (gint64)gst_util_uint64_scale(heard, RATE, G_USEC_PER_SEC) +
              (lead >= 0 ? (gint64)gst_util_uint64_scale(lead, RATE, GST_SECOND)
                         : -(gint64)gst_util_uint64_scale(-lead, RATE, GST_SECOND));
  *ahead = (timing->sink_usec + MARGIN_MS * 1000) * GST_USECOND;
  return TRUE;
}

gint64
hark_media_pulse_place(gint64 due, gboolean have_end, gint64 end, gint64 align,
                       gboolean delay_moved)
{
  return have_end && !delay_moved && ABS(due - end) <= align ? end : due;
}

/* In the decoding thread: write the buffer where it is due. */
static GstFlowReturn
render(GstBaseSink *sink, GstBuffer *buffer)
{
  HarkMediaPulseSink *self = (HarkMediaPulseSink *)sink;
  GstClockTime now = running_time_now(GST_ELEMENT(sink));
  GstClockTime latency = self->pipeline ? gst_pipeline_get_latency(self->pipeline) : 0;
  GstClockTime at = GST_BUFFER_PTS_IS_VALID(buffer)
                      ? gst_segment_to_running_time(&sink->segment, GST_FORMAT_TIME,
                                                    GST_BUFFER_PTS(buffer))
                      : now;
  if (!GST_CLOCK_TIME_IS_VALID(now) || !GST_CLOCK_TIME_IS_VALID(at))
    return GST_FLOW_OK; /* not playing (yet) */
  GstClockTime due = at + (GST_CLOCK_TIME_IS_VALID(latency) ? latency : 0);
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ))
    return GST_FLOW_OK;
  gsize samples = map.size / BYTES_PER_SAMPLE;
  pa_threaded_mainloop_lock(self->link.loop);
  gint64 position = 0;
  GstClockTime ahead = 0;
  if (self->running && position_of(self, due, now, &position, &ahead)) {
    position = hark_media_pulse_place(position, self->have_end, self->end, RATE * ALIGN_MS / 1000,
                                      latency != self->end_latency);
    if (due < now + ahead)
      self->late_samples += MIN(samples, gst_util_uint64_scale(now + ahead - due, RATE, GST_SECOND));
    if (position >= 0 && pa_stream_write(self->link.stream, map.data, samples * BYTES_PER_SAMPLE,
                                         NULL, position * BYTES_PER_SAMPLE, PA_SEEK_ABSOLUTE) == 0) {
      self->have_end = TRUE;
      self->end = position + (gint64)samples;
      self->end_latency = latency;
    }
    g_atomic_int_set(&self->ahead_us, (gint)(ahead / GST_USECOND));
  }
  pa_threaded_mainloop_unlock(self->link.loop);
  gst_buffer_unmap(buffer, &map);
  return GST_FLOW_OK;
}

GstClockTime
hark_media_pulse_sink_delay(GstElement *sink)
{
  return (GstClockTime)g_atomic_int_get(&((HarkMediaPulseSink *)sink)->ahead_us) * GST_USECOND;
}

static void
on_stream_state(pa_stream *stream, void *data)
{
  HarkMediaPulseSink *self = data;
  if (self->running && !PA_STREAM_IS_GOOD(pa_stream_get_state(stream))) {
    self->running = FALSE;
    GST_ELEMENT_ERROR(self, RESOURCE, WRITE,
                      ("sound server: %s", pa_strerror(pa_context_errno(self->link.context))),
                      (NULL));
  }
  pa_threaded_mainloop_signal(self->link.loop, 0);
}

/* With the loop locked: the playback stream. */
static gboolean
connect_playback(HarkMediaPulseLink *l, gpointer data)
{
  HarkMediaPulseSink *self = data;
  const pa_sample_spec spec = { .format = PA_SAMPLE_S16LE, .rate = RATE, .channels = 1 };
  const uint32_t period = RATE * BYTES_PER_SAMPLE * self->period_ms / 1000;
  /* prebuf 0: the server neither waits to start nor stops on an underrun (see the top).
   * Nobody answers its requests for more: what is due is written as it comes. */
  const pa_buffer_attr attr = {
    .maxlength = (uint32_t)-1, .tlength = 2 * REQUEST_PERIODS * period + period, .prebuf = 0,
    .minreq = REQUEST_PERIODS * period, .fragsize = (uint32_t)-1
  };
  l->stream = pa_stream_new(l->context, "call", &spec, NULL);
  pa_stream_set_state_callback(l->stream, on_stream_state, self);
  /* The server's timing, interpolated here between its updates (every 1.5 s once the
   * stream runs): the sample being heard now, without a round trip. */
  pa_stream_flags_t flags =
    PA_STREAM_ADJUST_LATENCY | PA_STREAM_INTERPOLATE_TIMING | PA_STREAM_AUTO_TIMING_UPDATE;
  return pa_stream_connect_playback(l->stream, self->device, &attr, flags, NULL, NULL) == 0;
}

/* On the way to PAUSED: connected, or an error that names the server's reason. */
static gboolean
start(GstBaseSink *sink)
{
  HarkMediaPulseSink *self = (HarkMediaPulseSink *)sink;
  GstObject *top = GST_OBJECT(sink);
  while (GST_OBJECT_PARENT(top) != NULL)
    top = GST_OBJECT_PARENT(top);
  self->pipeline = GST_IS_PIPELINE(top) ? GST_PIPELINE(top) : NULL;
  self->have_end = FALSE;
  g_autoptr(GError) error = NULL;
  if (!hark_media_pulse_link_open(&self->link, connect_playback, self, &error)) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("%s", error->message), (NULL));
    return FALSE;
  }
  self->running = TRUE;
  return TRUE;
}

static void
disconnect(HarkMediaPulseSink *self)
{
  if (self->link.loop == NULL)
    return;
  pa_threaded_mainloop_lock(self->link.loop);
  self->running = FALSE;
  pa_threaded_mainloop_unlock(self->link.loop);
  hark_media_pulse_link_close(&self->link);
}

static gboolean
stop(GstBaseSink *sink)
{
  HarkMediaPulseSink *self = (HarkMediaPulseSink *)sink;
  disconnect(self);
  GST_DEBUG_OBJECT(self, "%" G_GUINT64_FORMAT " samples written late", self->late_samples);
  return TRUE;
}

static void
finalize(GObject *object)
{
  HarkMediaPulseSink *self = (HarkMediaPulseSink *)object;
  disconnect(self);
  g_free(self->device);
  G_OBJECT_CLASS(hark_media_pulse_sink_parent_class)->finalize(object);
}

static void
hark_media_pulse_sink_class_init(HarkMediaPulseSinkClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSinkClass *sink_class = GST_BASE_SINK_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = finalize;
  sink_class->start = start;
  sink_class->stop = stop;
  sink_class->render = render;
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(element_class, "hark sound-server playback", "Sink/Audio",
                                        "Writes to PulseAudio where each buffer is due", "hark");
}

static void
hark_media_pulse_sink_init(HarkMediaPulseSink *self)
{
}

GstElement *
hark_media_pulse_sink_new(const char *device, guint period_ms)
{
  /* Named "pulse...": a failure to connect reads as "no sound server" (media-session.c). */
  HarkMediaPulseSink *self =
    g_object_new(hark_media_pulse_sink_get_type(), "name", "pulse-playback", NULL);
  self->device = device && device[0] ? g_strdup(device) : NULL;
  self->period_ms = CLAMP(period_ms, 5, 40);
  /* Until the server's timing says: the device's latency (half a period; a period to be
   * safe), and the margin. */
  self->ahead_us = (self->period_ms + MARGIN_MS) * 1000;
  /* Not synchronised by GStreamer: written where due, as soon as it comes; never waits
   * to preroll (a live pipeline), and keeps no last buffer. */
  g_object_set(self, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, NULL);
  return GST_ELEMENT(self);
}
