/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-pulse-playback.c: playback to the sound server (PulseAudio, or PipeWire's
 * PulseAudio service) with libpulse's asynchronous API, baresip's shape: the decoded
 * audio is queued here by the thread that decodes it (the jitter buffer's), and
 * libpulse's own thread takes it out when the server asks for more
 * (pa_stream_set_write_callback) and writes it straight into the server's memory
 * (pa_stream_begin_write). So a received frame costs no wake-up between the decoder and
 * the sound server: the decoding thread never waits for the server, and libpulse's
 * thread wakes only for the server's requests.
 *
 * Why not GStreamer's pulsesink: its ring buffer made the decoding thread wait for room
 * (woken by libpulse's thread on each request), and each write from that thread woke
 * libpulse's thread again to send it: about 345 switches a second in libpulse's thread
 * and the jitter buffer's waits on top.
 *
 * Timing: each buffer is due at its running time plus the pipeline's latency (the
 * jitter buffer's delay, which the session's policy moves), as in any synchronised sink.
 * The server's requests are the playback clock: every sample written is due one sample
 * after the one before, starting from the time of the first request. A request only
 * takes samples that are due by then, so a buffer that reached this sink before its due
 * time (what the session's probe in front of the sink measures for the policy) is always
 * in time; a sample missing at its time is written as silence, and audio that comes more
 * than ALIGN_MS off where the stream is (the policy changed the delay, or it came late)
 * is realigned by silence or by dropping the late part. prebuf = 0 keeps the server
 * playing through a stall of ours (it plays silence and drops what comes behind its read
 * position), so the written samples keep their place in time, and a stall longer than
 * RESYNC_MS starts the clock again. The buffer is pulsesink's that measured best: three
 * periods, requested one at a time (a buffer of one period made the server spin). */
#include "media-pulse.h"

#include <gst/base/gstbasesink.h>
#include <string.h>

#define RATE 48000
#define BYTES_PER_SAMPLE 2
/* Audio further than this from where the stream is gets realigned. */
#define ALIGN_MS 5
/* A request this far from where the written samples say it should come (a stall of
 * ours or of the server, or a sound card whose clock drifted) starts the clock again. */
#define RESYNC_MS 40
/* Queued audio beyond this (nothing is taking it out) is dropped, oldest first. */
#define MAX_QUEUED_MS 1000

typedef struct {
  GstBuffer *buffer;
  GstClockTime due; /* running time its first sample is due at */
  gsize offset; /* bytes already taken */
} Queued;

typedef struct _HarkMediaPulseSink HarkMediaPulseSink;

struct _HarkMediaPulseSink {
  GstBaseSink parent;
  char *device; /* NULL: the server's default (or PULSE_SINK) */
  guint period_ms;
  GstPipeline *pipeline; /* the top-level bin (not a reference): its latency */
  HarkMediaPulseLink link;
  gboolean running; /* connected; a failure from now on is an error on the bus */
  /* Only in libpulse's thread: the running time the next written sample is due at. */
  GstClockTime next_due;
  GMutex lock; /* the queue, shared by the decoding thread and libpulse's */
  GQueue queue;
  gsize queued_bytes;
  guint64 silence_samples, late_samples; /* written for missing audio; dropped as late */
};

typedef struct {
  GstBaseSinkClass parent_class;
} HarkMediaPulseSinkClass;

G_DEFINE_TYPE(HarkMediaPulseSink, hark_media_pulse_sink, GST_TYPE_BASE_SINK)

#define RAW_CAPS "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1"

static GstStaticPadTemplate sink_template =
  GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(RAW_CAPS));

static GstClockTime
samples_time(guint64 samples)
{
  return gst_util_uint64_scale(samples, GST_SECOND, RATE);
}

static guint64
time_samples(GstClockTime t)
{
  return gst_util_uint64_scale(t, RATE, GST_SECOND);
}

static void
queued_free(Queued *q)
{
  gst_buffer_unref(q->buffer);
  g_free(q);
}

/* With the lock held. */
static void
queue_clear(HarkMediaPulseSink *self)
{
  g_queue_clear_full(&self->queue, (GDestroyNotify)queued_free);
  self->queued_bytes = 0;
}

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

/* In the decoding thread: queue the buffer with the time it is due at. */
static GstFlowReturn
render(GstBaseSink *sink, GstBuffer *buffer)
{
  HarkMediaPulseSink *self = (HarkMediaPulseSink *)sink;
  GstClockTime latency = self->pipeline ? gst_pipeline_get_latency(self->pipeline) : 0;
  GstClockTime at = GST_BUFFER_PTS_IS_VALID(buffer)
                      ? gst_segment_to_running_time(&sink->segment, GST_FORMAT_TIME,
                                                    GST_BUFFER_PTS(buffer))
                      : GST_CLOCK_TIME_NONE;
  if (!GST_CLOCK_TIME_IS_VALID(at))
    at = running_time_now(GST_ELEMENT(sink));
  Queued *q = g_new0(Queued, 1);
  q->buffer = gst_buffer_ref(buffer);
  q->due = GST_CLOCK_TIME_IS_VALID(at) ? at + (GST_CLOCK_TIME_IS_VALID(latency) ? latency : 0)
                                       : GST_CLOCK_TIME_NONE;
  const gsize max_bytes = (gsize)RATE * BYTES_PER_SAMPLE * MAX_QUEUED_MS / 1000;
  g_mutex_lock(&self->lock);
  g_queue_push_tail(&self->queue, q);
  self->queued_bytes += gst_buffer_get_size(buffer);
  while (self->queued_bytes > max_bytes) {
    Queued *old = g_queue_pop_head(&self->queue);
    self->queued_bytes -= gst_buffer_get_size(old->buffer) - old->offset;
    self->late_samples += (gst_buffer_get_size(old->buffer) - old->offset) / BYTES_PER_SAMPLE;
    queued_free(old);
  }
  g_mutex_unlock(&self->lock);
  return GST_FLOW_OK;
}

/* With the lock held: fill n samples of out with what is due from t on. */
static void
fill(HarkMediaPulseSink *self, guint8 *out, gsize n, GstClockTime t)
{
  const GstClockTimeDiff align = ALIGN_MS * GST_MSECOND;
  gsize done = 0; /* samples */
  while (done < n) {
    Queued *q = g_queue_peek_head(&self->queue);
    if (q == NULL) {
      memset(out + done * BYTES_PER_SAMPLE, 0, (n - done) * BYTES_PER_SAMPLE);
      self->silence_samples += n - done;
      return;
    }
    gsize left = (gst_buffer_get_size(q->buffer) - q->offset) / BYTES_PER_SAMPLE;
    GstClockTime cursor = t + samples_time(done);
    if (GST_CLOCK_TIME_IS_VALID(q->due) && left > 0) {
      GstClockTime head = q->due + samples_time(q->offset / BYTES_PER_SAMPLE);
      GstClockTimeDiff off = GST_CLOCK_DIFF(cursor, head); /* > 0: not due yet */
      if (off > align) {
        gsize quiet = MIN(n - done, (gsize)time_samples(off));
        memset(out + done * BYTES_PER_SAMPLE, 0, quiet * BYTES_PER_SAMPLE);
        self->silence_samples += quiet;
        done += quiet;
        continue;
      }
      if (off < -align) {
        gsize late = MIN(left, (gsize)time_samples(-off));
        q->offset += late * BYTES_PER_SAMPLE;
        self->queued_bytes -= late * BYTES_PER_SAMPLE;
        self->late_samples += late;
        left -= late;
      }
    }
    gsize take = MIN(left, n - done);
    gst_buffer_extract(q->buffer, q->offset, out + done * BYTES_PER_SAMPLE,
                       take * BYTES_PER_SAMPLE);
    q->offset += take * BYTES_PER_SAMPLE;
    self->queued_bytes -= take * BYTES_PER_SAMPLE;
    done += take;
    if (q->offset >= gst_buffer_get_size(q->buffer))
      queued_free(g_queue_pop_head(&self->queue));
  }
}

/* In libpulse's thread, with its lock held: the server wants nbytes more. */
static void
on_writable(pa_stream *stream, size_t nbytes, void *data)
{
  HarkMediaPulseSink *self = data;
  GstClockTime now = running_time_now(GST_ELEMENT(self));
  while (nbytes >= BYTES_PER_SAMPLE) {
    void *out = NULL;
    size_t n = nbytes - nbytes % BYTES_PER_SAMPLE;
    if (pa_stream_begin_write(stream, &out, &n) < 0 || out == NULL)
      return;
    n -= n % BYTES_PER_SAMPLE;
    gsize samples = n / BYTES_PER_SAMPLE;
    if (!GST_CLOCK_TIME_IS_VALID(now)) {
      memset(out, 0, n); /* not playing yet */
    } else {
      /* This request takes what is due by now; the stream's own count of samples says
       * where it is, unless it is far from the time of the request. */
      GstClockTime start = now > samples_time(samples) ? now - samples_time(samples) : 0;
      if (!GST_CLOCK_TIME_IS_VALID(self->next_due) ||
          (GstClockTimeDiff)(self->next_due > start ? self->next_due - start
                                                    : start - self->next_due) >
            (GstClockTimeDiff)(RESYNC_MS * GST_MSECOND))
        self->next_due = start;
      g_mutex_lock(&self->lock);
      fill(self, out, samples, self->next_due);
      g_mutex_unlock(&self->lock);
      self->next_due += samples_time(samples);
    }
    if (pa_stream_write(stream, out, n, NULL, 0, PA_SEEK_RELATIVE) < 0)
      return;
    nbytes -= n;
  }
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
  /* prebuf 0: the server neither waits to start nor stops on an underrun (see the top). */
  const pa_buffer_attr attr = {
    .maxlength = (uint32_t)-1, .tlength = 3 * period, .prebuf = 0, .minreq = period,
    .fragsize = (uint32_t)-1
  };
  l->stream = pa_stream_new(l->context, "call", &spec, NULL);
  pa_stream_set_state_callback(l->stream, on_stream_state, self);
  pa_stream_set_write_callback(l->stream, on_writable, self);
  return pa_stream_connect_playback(l->stream, self->device, &attr, PA_STREAM_ADJUST_LATENCY, NULL,
                                    NULL) == 0;
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
  self->next_due = GST_CLOCK_TIME_NONE;
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
  g_mutex_lock(&self->lock);
  queue_clear(self);
  g_mutex_unlock(&self->lock);
  GST_DEBUG_OBJECT(self, "%" G_GUINT64_FORMAT " samples of silence, %" G_GUINT64_FORMAT " late",
                   self->silence_samples, self->late_samples);
  return TRUE;
}

static gboolean
event(GstBaseSink *sink, GstEvent *event)
{
  HarkMediaPulseSink *self = (HarkMediaPulseSink *)sink;
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP) {
    g_mutex_lock(&self->lock);
    queue_clear(self);
    g_mutex_unlock(&self->lock);
  }
  return GST_BASE_SINK_CLASS(hark_media_pulse_sink_parent_class)->event(sink, event);
}

static void
finalize(GObject *object)
{
  HarkMediaPulseSink *self = (HarkMediaPulseSink *)object;
  disconnect(self);
  queue_clear(self);
  g_mutex_clear(&self->lock);
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
  sink_class->event = event;
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(element_class, "hark sound-server playback", "Sink/Audio",
                                        "Plays to PulseAudio from libpulse's thread", "hark");
}

static void
hark_media_pulse_sink_init(HarkMediaPulseSink *self)
{
  g_mutex_init(&self->lock);
  g_queue_init(&self->queue);
  self->next_due = GST_CLOCK_TIME_NONE;
}

GstElement *
hark_media_pulse_sink_new(const char *device, guint period_ms)
{
  /* Named "pulse...": a failure to connect reads as "no sound server" (media-session.c). */
  HarkMediaPulseSink *self =
    g_object_new(hark_media_pulse_sink_get_type(), "name", "pulse-playback", NULL);
  self->device = device && device[0] ? g_strdup(device) : NULL;
  self->period_ms = CLAMP(period_ms, 5, 40);
  /* Not synchronised by GStreamer: the server's requests pace it; never waits to preroll
   * (a live pipeline), and keeps no last buffer. */
  g_object_set(self, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, NULL);
  return GST_ELEMENT(self);
}
