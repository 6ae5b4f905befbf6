/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-port.c: ports, audio handed between media sessions and their owner in this
 * process. A session whose sink is "port:NAME" puts what it plays into the port's queue
 * (resampled to the port's rate); one whose source is "port:NAME" sends what the owner
 * writes to the port. A conference host's mixer reads every leg's port once per tick and
 * writes each leg its mix, so the session code (codecs, SRTP, jitter buffer) stays one.
 * A local pipeline (hark_media_local_new) does the same for the owner's own source and
 * sink (the host's microphone and speaker). */
#include "media-session.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <string.h>

#define PORT_QUEUE_MS 200 /* received audio kept at most (older is dropped) */
#define PORT_MARGIN_MS 10 /* held beyond a read before reading starts (again) */
#define PORT_KEEP_MS 60 /* more than this beyond a read is cut at once to the margin */
/* A queue that never ran down to a read and the margin over this many reads holds a
 * standing backlog (a start-up burst, a faster producer): cut to the margin. */
#define PORT_WINDOW_READS 25
#define PORT_SLACK_MS 5 /* standing this much above the margin is left alone */
#define PORT_RESYNC_MS 100 /* writes this much late are a gap in what is sent */

struct _HarkMediaPort {
  gatomicrefcount refs;
  char *name;
  guint rate;
  GMutex lock;
  gint16 *queue; /* received samples, a ring of capacity samples */
  gsize capacity, start, length;
  guint64 received, dropped; /* samples */
  guint64 underruns; /* reads that found less than asked for */
  /* What waited in the queue when a read came (samples): the delay this port adds. */
  gsize queued_last;
  guint64 queued_sum, reads;
  /* Reading waits until a read and PORT_MARGIN_MS are there: audio arrives in buffers
   * whose size and timing wobble (a resampler's, a decoder's), and a read that finds a
   * few samples short would put a gap, and a jump of phase, in the middle of the mix. */
  gboolean primed;
  /* The least the queue held when a read came, over the current window of reads: what
   * stayed in it all along and only delays the audio. */
  gsize window_least;
  guint window_reads;
  GstElement *appsrc; /* the source of the session sending what we write; may be NULL */
  /* Where the next write starts in that source's running time, and how far that is
   * behind the running time on purpose. A pause in the writes while the session follows
   * a shared encoder (media-shared.c) is not a gap in the stream: the writes after it
   * continue the timestamps (hark_media_port_resume), since a jump would make the
   * resampler and encoder after it start over, a few samples off from where the stream
   * was; the session stamps its packets `lag` later again. Any other pause over
   * PORT_RESYNC_MS (the writer stalled) is a gap: the timestamps jump with it, so the far
   * end hears a gap rather than packets late. next_pts is NONE before the first write. */
  GstClockTime next_pts, lag;
  HarkMediaSession *session; /* that session (main context only); may be NULL */
  gpointer group; /* the shared encoder's group it follows (media-shared.c); may be NULL */
};

static GMutex ports_lock;
static GHashTable *ports; /* name -> HarkMediaPort* (borrowed: a port removes itself) */

static HarkMediaPort *
port_ref(HarkMediaPort *port)
{
  g_atomic_ref_count_inc(&port->refs);
  return port;
}

static void
port_unref(gpointer data)
{
  HarkMediaPort *port = data;
  if (!g_atomic_ref_count_dec(&port->refs))
    return;
  g_clear_pointer(&port->appsrc, gst_object_unref);
  g_mutex_clear(&port->lock);
  g_free(port->queue);
  g_free(port->name);
  g_free(port);
}

HarkMediaPort *
hark_media_port_new(const char *name, guint rate, GError **error)
{
  if (name == NULL || name[0] == '\0' || rate < 8000 || rate > 48000 || rate % 50 != 0) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "port '%s' at %u Hz: expected a name and 8000-48000 Hz in steps of 50",
                name != NULL ? name : "", rate);
    return NULL;
  }
  g_mutex_lock(&ports_lock);
  if (ports == NULL)
    ports = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  gboolean taken = g_hash_table_contains(ports, name);
  HarkMediaPort *port = NULL;
  if (!taken) {
    port = g_new0(HarkMediaPort, 1);
    g_atomic_ref_count_init(&port->refs);
    port->name = g_strdup(name);
    port->rate = rate;
    g_mutex_init(&port->lock);
    port->next_pts = GST_CLOCK_TIME_NONE;
    port->capacity = (gsize)rate * PORT_QUEUE_MS / 1000;
    port->queue = g_new0(gint16, port->capacity);
    g_hash_table_insert(ports, g_strdup(name), port);
  }
  g_mutex_unlock(&ports_lock);
  if (taken)
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "port '%s' exists", name);
  return port;
}

void
hark_media_port_free(HarkMediaPort *port)
{
  if (port == NULL)
    return;
  hark_media_port_leave_group(port);
  g_mutex_lock(&ports_lock);
  g_hash_table_remove(ports, port->name);
  g_mutex_unlock(&ports_lock);
  port_unref(port);
}

/* A new reference to the port called name, or NULL. */
static HarkMediaPort *
port_find(const char *name)
{
  g_mutex_lock(&ports_lock);
  HarkMediaPort *port = ports != NULL ? g_hash_table_lookup(ports, name) : NULL;
  if (port != NULL)
    port_ref(port);
  g_mutex_unlock(&ports_lock);
  return port;
}

guint
hark_media_port_rate(HarkMediaPort *port)
{
  return port->rate;
}

/* Drops the oldest samples, keeping keep (called with the lock held). */
static void
port_cut_to(HarkMediaPort *port, gsize keep)
{
  if (port->length <= keep)
    return;
  gsize cut = port->length - keep;
  port->start = (port->start + cut) % port->capacity;
  port->length -= cut;
  port->dropped += cut;
}

/* Audio comes in decoder-sized bursts and the mixer ticks on its own clock: a read needs
 * n samples there, and PORT_MARGIN_MS more absorbs the bursts' wobble. Whatever stands in
 * the queue beyond that, read after read, is only delay: the jitter buffer released a
 * backlog at the start, or the far end's clock runs fast. Left alone it would delay the
 * conference by up to PORT_KEEP_MS for the whole call (it did: 37 ms a leg, measured),
 * so it goes, once per window at most (a single short skip). */
static void
port_trim(HarkMediaPort *port, gsize n)
{
  gsize margin = (gsize)port->rate * PORT_MARGIN_MS / 1000;
  if (port->length > n + (gsize)port->rate * PORT_KEEP_MS / 1000) {
    port_cut_to(port, n + margin);
    port->window_least = G_MAXSIZE;
    port->window_reads = 0;
    return;
  }
  if (!port->primed)
    return;
  port->window_least = MIN(port->window_least, port->length);
  if (++port->window_reads < PORT_WINDOW_READS)
    return;
  if (port->window_least > n + margin + (gsize)port->rate * PORT_SLACK_MS / 1000)
    port_cut_to(port, port->length - (port->window_least - n - margin));
  port->window_least = G_MAXSIZE;
  port->window_reads = 0;
}

gsize
hark_media_port_read(HarkMediaPort *port, gint16 *samples, gsize n)
{
  g_mutex_lock(&port->lock);
  port_trim(port, n);
  port->queued_last = port->length;
  port->queued_sum += port->length;
  port->reads++;
  if (!port->primed && port->length >= n + (gsize)port->rate * PORT_MARGIN_MS / 1000) {
    port->primed = TRUE;
    port->window_least = G_MAXSIZE;
    port->window_reads = 0;
  }
  if (port->primed && port->length < n) {
    port->underruns++;
    port->primed = FALSE;
  }
  gsize got = port->primed ? MIN(n, port->length) : 0;
  for (gsize i = 0; i < got; i++)
    samples[i] = port->queue[(port->start + i) % port->capacity];
  port->start = (port->start + got) % port->capacity;
  port->length -= got;
  g_mutex_unlock(&port->lock);
  memset(samples + got, 0, (n - got) * sizeof *samples);
  return got;
}

/* From the sink's streaming thread. */
static void
port_take(HarkMediaPort *port, const gint16 *samples, gsize n)
{
  g_mutex_lock(&port->lock);
  for (gsize i = 0; i < n; i++) {
    if (port->length == port->capacity) {
      port->start = (port->start + 1) % port->capacity;
      port->length--;
      port->dropped++;
    }
    port->queue[(port->start + port->length++) % port->capacity] = samples[i];
  }
  port->received += n;
  g_mutex_unlock(&port->lock);
}

/* A new reference to the source of the port's session, or NULL. */
static GstElement *
appsrc_ref(HarkMediaPort *port)
{
  g_mutex_lock(&port->lock);
  GstElement *appsrc = port->appsrc != NULL ? gst_object_ref(port->appsrc) : NULL;
  g_mutex_unlock(&port->lock);
  return appsrc;
}

void
hark_media_port_write(HarkMediaPort *port, const gint16 *samples, gsize n)
{
  GstElement *appsrc = appsrc_ref(port);
  if (appsrc == NULL)
    return;
  GstBuffer *buffer = gst_buffer_new_memdup(samples, n * sizeof *samples);
  GstClockTime duration = gst_util_uint64_scale(n, GST_SECOND, port->rate);
  GST_BUFFER_DURATION(buffer) = duration;
  GstClockTime now = hark_media_running_time(appsrc);
  g_mutex_lock(&port->lock);
  if (!GST_CLOCK_TIME_IS_VALID(port->next_pts) ||
      (GST_CLOCK_TIME_IS_VALID(now) &&
       now > port->next_pts + port->lag + PORT_RESYNC_MS * GST_MSECOND))
    port->next_pts = GST_CLOCK_TIME_IS_VALID(now) && now > port->lag ? now - port->lag : now;
  if (GST_CLOCK_TIME_IS_VALID(port->next_pts)) {
    /* With a DTS the source does not stamp it again (do-timestamp, before it plays). */
    GST_BUFFER_PTS(buffer) = GST_BUFFER_DTS(buffer) = port->next_pts;
    port->next_pts += duration;
  }
  g_mutex_unlock(&port->lock);
  /* FLUSHING once the session stopped: nothing to do about it. */
  gst_app_src_push_buffer(GST_APP_SRC(appsrc), buffer);
  gst_object_unref(appsrc);
}

GstClockTime
hark_media_port_resume(HarkMediaPort *port)
{
  GstElement *appsrc = appsrc_ref(port);
  GstClockTime now = appsrc != NULL ? hark_media_running_time(appsrc) : GST_CLOCK_TIME_NONE;
  g_clear_pointer(&appsrc, gst_object_unref);
  g_mutex_lock(&port->lock);
  GstClockTime next = port->next_pts;
  if (GST_CLOCK_TIME_IS_VALID(next) && GST_CLOCK_TIME_IS_VALID(now) && now > next)
    port->lag = now - next;
  g_mutex_unlock(&port->lock);
  return next;
}

GstClockTime
hark_media_port_lag(HarkMediaPort *port)
{
  g_mutex_lock(&port->lock);
  GstClockTime lag = port->lag;
  g_mutex_unlock(&port->lock);
  return lag;
}

HarkMediaPort *
hark_media_port_attach_session(const char *spec, HarkMediaSession *session)
{
  HarkMediaPort *port = port_find(spec + strlen("port:"));
  if (port != NULL)
    port->session = session;
  return port;
}

void
hark_media_port_detach_session(HarkMediaPort *port, HarkMediaSession *session)
{
  if (port == NULL)
    return;
  if (port->session == session)
    port->session = NULL;
  port_unref(port);
}

HarkMediaSession *
hark_media_port_session(HarkMediaPort *port)
{
  return port->session;
}

gpointer
hark_media_port_get_group(HarkMediaPort *port)
{
  return port->group;
}

void
hark_media_port_set_group(HarkMediaPort *port, gpointer group)
{
  port->group = group;
}

void
hark_media_port_get_counts(HarkMediaPort *port, guint64 *received, guint64 *dropped,
                           guint64 *underruns)
{
  g_mutex_lock(&port->lock);
  *received = port->received;
  *dropped = port->dropped;
  *underruns = port->underruns;
  g_mutex_unlock(&port->lock);
}

void
hark_media_port_get_queued(HarkMediaPort *port, guint *last_ms, guint *mean_ms, guint *send_ms)
{
  g_mutex_lock(&port->lock);
  *last_ms = (guint)(port->queued_last * 1000 / port->rate);
  *mean_ms = port->reads > 0 ? (guint)(port->queued_sum * 1000 / port->reads / port->rate) : 0;
  GstElement *appsrc = port->appsrc != NULL ? gst_object_ref(port->appsrc) : NULL;
  g_mutex_unlock(&port->lock);
  guint64 bytes = 0;
  if (appsrc != NULL) {
    g_object_get(appsrc, "current-level-bytes", &bytes, NULL);
    gst_object_unref(appsrc);
  }
  *send_ms = (guint)(bytes / 2 * 1000 / port->rate);
}

/* ---- the elements ------------------------------------------------------------------- */

typedef HarkMediaPort HarkMediaPortRef;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMediaPortRef, port_unref)

static HarkMediaPort *
port_for_spec(const char *spec, GError **error)
{
  HarkMediaPort *port = port_find(spec + strlen("port:"));
  if (port == NULL)
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "no port '%s'", spec);
  return port;
}

GstElement *
hark_media_port_source_new(const char *spec, GError **error)
{
  g_autoptr(HarkMediaPortRef) port = port_for_spec(spec, error);
  if (port == NULL)
    return NULL;
  GstElement *appsrc = hark_media_element_make("appsrc", error);
  if (appsrc == NULL)
    return NULL;
  g_autoptr(GstCaps) caps = hark_media_mono_caps(port->rate);
  /* Timestamped as it is pushed, as a microphone's audio would be; 200 ms at most queued,
   * the oldest dropped, should the session stop taking it (its pipeline stopping). */
  g_object_set(appsrc, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", TRUE, "caps",
               caps, "max-bytes", (guint64)port->rate * 2 / 5, NULL);
  gst_util_set_object_arg(G_OBJECT(appsrc), "leaky-type", "downstream");
  g_mutex_lock(&port->lock);
  g_clear_pointer(&port->appsrc, gst_object_unref);
  port->appsrc = gst_object_ref(appsrc);
  port->next_pts = GST_CLOCK_TIME_NONE; /* another pipeline's running time */
  port->lag = 0;
  g_mutex_unlock(&port->lock);
  return appsrc;
}

static GstFlowReturn
port_new_sample(GstAppSink *sink, gpointer data)
{
  g_autoptr(GstSample) sample = gst_app_sink_pull_sample(sink);
  GstBuffer *buffer = sample ? gst_sample_get_buffer(sample) : NULL;
  GstMapInfo map;
  if (buffer == NULL || !gst_buffer_map(buffer, &map, GST_MAP_READ))
    return GST_FLOW_OK;
  port_take(data, (const gint16 *)map.data, map.size / 2);
  gst_buffer_unmap(buffer, &map);
  return GST_FLOW_OK;
}

GstElement *
hark_media_port_sink_new(const char *spec, GError **error)
{
  g_autoptr(HarkMediaPortRef) port = port_for_spec(spec, error);
  if (port == NULL)
    return NULL;
  GstElement *resample = hark_media_element_make("audioresample", error);
  GstElement *appsink = resample != NULL ? hark_media_element_make("appsink", error) : NULL;
  if (appsink == NULL) {
    if (resample != NULL)
      gst_object_unref(gst_object_ref_sink(resample));
    return NULL;
  }
  g_autoptr(GstCaps) caps = hark_media_mono_caps(port->rate);
  /* Not synchronised: the jitter buffer paces what it plays already. */
  g_object_set(appsink, "sync", FALSE, "async", FALSE, "caps", caps, NULL);
  GstAppSinkCallbacks callbacks = { .new_sample = port_new_sample };
  gst_app_sink_set_callbacks(GST_APP_SINK(appsink), &callbacks, port_ref(port), port_unref);
  GstElement *bin = gst_bin_new("port-sink");
  gst_bin_add_many(GST_BIN(bin), resample, appsink, NULL);
  gst_element_link(resample, appsink);
  GstPad *pad = gst_element_get_static_pad(resample, "sink");
  gst_element_add_pad(bin, gst_ghost_pad_new("sink", pad));
  gst_object_unref(pad);
  return bin;
}

/* ---- the owner's own source and sink ---------------------------------------------------- */

struct _HarkMediaLocal {
  GstElement *capture_pipeline, *play_pipeline;
  HarkMediaPulseCapture *capture;
  HarkMediaWav *wav;
};

static GstElement *
pipeline_of(GstElement *from, GstElement *to)
{
  GstElement *pipeline = gst_pipeline_new(NULL);
  gst_bin_add_many(GST_BIN(pipeline), from, to, NULL);
  gst_element_link(from, to);
  return pipeline;
}

HarkMediaLocal *
hark_media_local_new(const char *source, const char *sink, HarkMediaPort *port, GError **error)
{
  if (!hark_media_gst_init(error))
    return NULL;
  g_autofree char *spec = g_strdup_printf("port:%s", port->name);
  HarkMediaLocal *local = g_new0(HarkMediaLocal, 1);
  GstElement *from = hark_media_source_new(source, 10, &local->capture, error);
  GstElement *into = from != NULL ? hark_media_port_sink_new(spec, error) : NULL;
  if (into == NULL)
    goto fail_from;
  local->capture_pipeline = pipeline_of(from, into);
  from = hark_media_port_source_new(spec, error);
  into = from != NULL ? hark_media_sink_new(sink, 10, &local->wav, error) : NULL;
  if (into == NULL)
    goto fail_from;
  /* The port's source gives the port's rate; the sink takes 48 kHz. */
  GstElement *convert = hark_media_element_make("audioresample", error);
  if (convert == NULL) {
    gst_object_unref(gst_object_ref_sink(into));
    goto fail_from;
  }
  local->play_pipeline = pipeline_of(from, into);
  gst_bin_add(GST_BIN(local->play_pipeline), convert);
  gst_element_unlink(from, into);
  gst_element_link_many(from, convert, into, NULL);
  if (local->capture != NULL && !hark_media_pulse_capture_start(local->capture, error))
    goto fail;
  if (gst_element_set_state(local->capture_pipeline, GST_STATE_PLAYING) ==
        GST_STATE_CHANGE_FAILURE ||
      gst_element_set_state(local->play_pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "the local audio (%s, %s) did not start", source, sink);
    goto fail;
  }
  return local;
fail_from:
  if (from != NULL)
    gst_object_unref(gst_object_ref_sink(from));
fail:
  hark_media_local_free(local);
  return NULL;
}

void
hark_media_local_free(HarkMediaLocal *local)
{
  if (local == NULL)
    return;
  hark_media_pulse_capture_stop(local->capture);
  GstElement *pipelines[] = { local->capture_pipeline, local->play_pipeline };
  for (guint i = 0; i < G_N_ELEMENTS(pipelines); i++)
    if (pipelines[i] != NULL) {
      gst_element_set_state(pipelines[i], GST_STATE_NULL);
      gst_object_unref(pipelines[i]);
    }
  hark_media_wav_free(local->wav);
  hark_media_pulse_capture_free(local->capture);
  g_free(local);
}
