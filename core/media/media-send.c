/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-send.c: a session's send side after the source: the codec chain
 * (audioresample ! capsfilter ! encoder ! payloader), our own RTP sequence numbers and
 * timestamps (so they stay continuous when the chain is replaced, or when the packets
 * come from a shared encoder instead: media-shared.c), the live codec swap, hold with
 * its keep-alives, mute, and RFC 4733 DTMF events in place of audio frames. */
#include "media-session-impl.h"

#include <gst/rtp/gstrtpbuffer.h>
#include <string.h>

void
hark_media_send_chain_discard(GstElement *chain[4])
{
  for (guint i = 0; i < 4; i++)
    if (chain[i] != NULL)
      gst_object_unref(gst_object_ref_sink(chain[i]));
}

gboolean
hark_media_send_chain_make(const HarkMediaCodec *codec, guint32 ssrc, GstElement *chain[4],
                           GError **error)
{
  memset(chain, 0, 4 * sizeof chain[0]);
  if ((chain[0] = hark_media_element_make("audioresample", error)) == NULL ||
      (chain[1] = hark_media_element_make("capsfilter", error)) == NULL ||
      (chain[2] = hark_media_codec_element(codec, HARK_CODEC_ENCODER, error)) == NULL ||
      (chain[3] = hark_media_codec_element(codec, HARK_CODEC_PAYLOADER, error)) == NULL) {
    hark_media_send_chain_discard(chain);
    return FALSE;
  }
  g_autoptr(GstCaps) caps =
    gst_caps_new_simple("audio/x-raw", "rate", G_TYPE_INT, (int)codec->iface->sample_rate,
                        "channels", G_TYPE_INT, (int)codec->iface->channels, NULL);
  g_object_set(chain[1], "caps", caps, NULL);
  g_object_set(chain[3], "pt", codec->payload_type, "ssrc", ssrc, NULL);
  /* Audio payloaders (G.711, G.722, L16) pack whatever they get; pin their packet time
   * to the codec's frame so it neither waits for more nor sends less. */
  GObjectClass *payloader_class = G_OBJECT_GET_CLASS(chain[3]);
  if (g_object_class_find_property(payloader_class, "min-ptime") != NULL &&
      g_object_class_find_property(payloader_class, "max-ptime") != NULL)
    g_object_set(chain[3], "min-ptime", (gint64)codec->iface->frame_ms * GST_MSECOND, "max-ptime",
                 (gint64)codec->iface->frame_ms * GST_MSECOND, NULL);
  return TRUE;
}

/* ---- DTMF (RFC 4733) ------------------------------------------------------------------------ */

#define DTMF_TONE_MS 100 /* each digit's event lasts this long */
#define DTMF_PAUSE_MS 50 /* and the next starts at least this long after its last packet */
#define DTMF_ENDS 3 /* the end packet is sent this often (RFC 4733 §2.5.1.4) */
#define DTMF_QUEUE_MAX 64

/* Called with s->lock held for each audio packet about to go out (at out_ts, pts, lasting
 * duration): the telephone-event packet to send in its place, or NULL. Events run in the
 * clock of the codec sent (48 kHz with Opus: the stream keeps one clock, so the far
 * end's jitter buffer never re-times). */
static GstBuffer *
dtmf_next(HarkMediaSession *s, guint32 out_ts, GstClockTime pts, GstClockTime duration)
{
  gboolean first = FALSE;
  if (!s->dtmf_active) {
    if (s->dtmf_queue->len == 0 || (GST_CLOCK_TIME_IS_VALID(s->dtmf_next_pts) &&
                                    GST_CLOCK_TIME_IS_VALID(pts) && pts < s->dtmf_next_pts))
      return NULL;
    s->dtmf_event = (guint8)hark_media_dtmf_event(s->dtmf_queue->str[0]);
    g_string_erase(s->dtmf_queue, 0, 1);
    s->dtmf_active = first = TRUE;
    s->dtmf_start_ts = out_ts;
    s->dtmf_ends = 0;
  }
  guint rate = s->out_clock_rate;
  if (!GST_CLOCK_TIME_IS_VALID(duration))
    duration = s->codecs[s->current].iface->frame_ms * GST_MSECOND;
  /* How long the event has lasted at the end of this packet. */
  guint32 elapsed =
    out_ts - s->dtmf_start_ts + (guint32)gst_util_uint64_scale(duration, rate, GST_SECOND);
  guint32 tone = rate * DTMF_TONE_MS / 1000;
  gboolean end = elapsed >= tone;
  if (end && ++s->dtmf_ends == DTMF_ENDS) {
    s->dtmf_active = FALSE;
    s->dtmf_sent++;
    if (GST_CLOCK_TIME_IS_VALID(pts))
      s->dtmf_next_pts = pts + duration + DTMF_PAUSE_MS * GST_MSECOND;
  }
  GstBuffer *packet = gst_rtp_buffer_new_allocate(4, 0, 0);
  GST_BUFFER_PTS(packet) = pts;
  GST_BUFFER_DURATION(packet) = duration;
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(packet, GST_MAP_WRITE, &rtp);
  gst_rtp_buffer_set_payload_type(&rtp, s->dtmf_pt);
  gst_rtp_buffer_set_ssrc(&rtp, s->ssrc);
  gst_rtp_buffer_set_marker(&rtp, first);
  hark_media_dtmf_payload(gst_rtp_buffer_get_payload(&rtp), s->dtmf_event, end, MIN(elapsed, tone));
  gst_rtp_buffer_unmap(&rtp);
  return packet;
}

gboolean
hark_media_session_send_dtmf(HarkMediaSession *s, const char *digits, GError **error)
{
  for (const char *d = digits; d != NULL && *d != '\0'; d++)
    if (hark_media_dtmf_event(*d) < 0) {
      if (g_ascii_isprint(*d))
        g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                    "DTMF: '%c' is not a digit of %s", *d, HARK_MEDIA_DTMF_DIGITS);
      else
        g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                    "DTMF: byte 0x%02x is not a digit of %s", (guint8)*d, HARK_MEDIA_DTMF_DIGITS);
      return FALSE;
    }
  gsize n = digits != NULL ? strlen(digits) : 0;
  const char *problem = NULL;
  g_mutex_lock(&s->lock);
  if (n == 0)
    problem = "no digits";
  else if (s->hold)
    problem = "the call is on hold (no media is sent)";
  else if (s->dtmf_queue->len + n > DTMF_QUEUE_MAX)
    problem = "too many digits queued (at most 64)";
  else
    g_string_append(s->dtmf_queue, digits);
  g_mutex_unlock(&s->lock);
  if (problem != NULL)
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "DTMF: %s", problem);
  return problem == NULL;
}

/* ---- stamping and hold ------------------------------------------------------------------ */

#define PRIME_SLACK (5 * GST_MSECOND) /* rounding between the port's and the encoder's stamps */

/* Called with s->lock held, for a packet of the session's own chain or (shared) of the
 * shared encoder it follows: is it the one to send now? The other's are left over from
 * before a switch (still on their way when it came); own packets before prime_until
 * were made only to bring the own encoder's state up to what the far end decoded. */
static gboolean
from_current_source(HarkMediaSession *s, GstClockTime pts, gboolean shared)
{
  if (shared != s->following)
    return FALSE;
  if (shared || !GST_CLOCK_TIME_IS_VALID(s->prime_until))
    return TRUE;
  if (GST_CLOCK_TIME_IS_VALID(pts) && pts + PRIME_SLACK < s->prime_until)
    return FALSE;
  s->prime_until = GST_CLOCK_TIME_NONE;
  return TRUE;
}

/* Called with s->lock held. Returns FALSE to drop the packet. */
static gboolean
restamp(HarkMediaSession *s, GstBuffer **pbuffer, gboolean shared)
{
  if (!from_current_source(s, GST_BUFFER_PTS(*pbuffer), shared))
    return FALSE;
  GstBuffer *buffer = *pbuffer = gst_buffer_make_writable(*pbuffer);
  if (!shared && s->port != NULL && GST_BUFFER_PTS_IS_VALID(buffer))
    GST_BUFFER_PTS(buffer) += hark_media_port_lag(s->port);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map(buffer, GST_MAP_READWRITE, &rtp))
    return FALSE;
  guint32 in_ts = gst_rtp_buffer_get_timestamp(&rtp);
  GstClockTime pts = GST_BUFFER_PTS(buffer);
  if (s->rebase) {
    /* A new payloader: continue from the last timestamp sent, advanced by the media time
     * in between, in the new codec's clock. A switch between the own and the shared
     * encoder continues right after the last packet: both are fed one frame per tick. */
    guint32 expected = in_ts;
    if (s->rebase_exact && s->have_out)
      expected = s->last_out_ts + s->last_out_step;
    else if (s->have_out && GST_CLOCK_TIME_IS_VALID(pts) &&
             GST_CLOCK_TIME_IS_VALID(s->last_out_pts) && pts >= s->last_out_pts)
      expected = s->last_out_ts + (guint32)gst_util_uint64_scale(pts - s->last_out_pts,
                                                                 s->out_clock_rate, GST_SECOND);
    else if (s->have_out)
      expected = s->last_out_ts + 1;
    s->ts_offset = expected - in_ts;
    s->rebase = s->rebase_exact = FALSE;
  }
  guint32 out_ts = in_ts + s->ts_offset;
  s->have_out = TRUE;
  s->last_out_ts = out_ts;
  s->last_out_pts = pts;
  GstClockTime duration = GST_BUFFER_DURATION(buffer);
  s->last_out_step = GST_CLOCK_TIME_IS_VALID(duration)
                       ? (guint32)gst_util_uint64_scale(duration, s->out_clock_rate, GST_SECOND)
                       : s->codecs[s->current].iface->frame_ms * s->out_clock_rate / 1000;
  if (GST_CLOCK_TIME_IS_VALID(duration) && !s->hold)
    s->ptime_ms = (guint)((duration + GST_MSECOND / 2) / GST_MSECOND);
  GstBuffer *event = NULL;
  if (!s->hold && (event = dtmf_next(s, out_ts, pts, duration)) != NULL) {
    /* The event takes this frame's place in the stream (RFC 4733 §2.5.1.2: the audio is
     * not sent while an event is): one sequence space, and the far end's jitter buffer
     * and loss figures see nothing missing. */
    gst_rtp_buffer_unmap(&rtp);
    gst_buffer_unref(buffer);
    buffer = *pbuffer = event;
    gst_rtp_buffer_map(buffer, GST_MAP_READWRITE, &rtp);
    out_ts = s->dtmf_start_ts;
  } else if (s->hold) {
    gst_rtp_buffer_unmap(&rtp);
    gint64 now = g_get_monotonic_time();
    if (now - s->last_keepalive < (gint64)s->keepalive_ms * 1000)
      return FALSE;
    s->last_keepalive = now;
    s->keepalives_sent++;
    GstBuffer *keepalive = gst_rtp_buffer_new_allocate(0, 0, 0);
    GST_BUFFER_PTS(keepalive) = pts;
    gst_buffer_unref(buffer);
    buffer = *pbuffer = keepalive;
    gst_rtp_buffer_map(buffer, GST_MAP_READWRITE, &rtp);
    gst_rtp_buffer_set_payload_type(&rtp, HARK_MEDIA_KEEPALIVE_PT);
    gst_rtp_buffer_set_ssrc(&rtp, s->ssrc);
  } else if (shared) {
    gst_rtp_buffer_set_payload_type(&rtp, s->codecs[s->current].payload_type);
    gst_rtp_buffer_set_ssrc(&rtp, s->ssrc);
  }
  gst_rtp_buffer_set_seq(&rtp, s->next_seq++);
  gst_rtp_buffer_set_timestamp(&rtp, out_ts);
  gst_rtp_buffer_unmap(&rtp);
  return TRUE;
}

static gboolean
restamp_in_list(GstBuffer **buffer, guint index, gpointer data)
{
  HarkMediaSession *s = data;
  if (!restamp(s, buffer, FALSE))
    gst_clear_buffer(buffer); /* removes it from the list */
  return TRUE;
}

/* The payloader's output. An EOS is the drain of a chain being replaced: it must not
 * reach rtpbin, which would end the stream. */
static GstPadProbeReturn
on_payloaded(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  HarkMediaSession *s = data;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM)
    return GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS ? GST_PAD_PROBE_DROP
                                                                           : GST_PAD_PROBE_OK;
  gboolean keep = TRUE;
  g_mutex_lock(&s->lock);
  s->chain_flowing = TRUE;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    keep = restamp(s, &buffer, FALSE);
    GST_PAD_PROBE_INFO_DATA(info) = buffer;
  } else {
    GstBufferList *list = gst_buffer_list_make_writable(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    gst_buffer_list_foreach(list, restamp_in_list, s);
    GST_PAD_PROBE_INFO_DATA(info) = list;
    keep = gst_buffer_list_length(list) > 0;
  }
  g_mutex_unlock(&s->lock);
  return keep ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

static void
on_encoder_notify(GObject *encoder, GParamSpec *pspec, gpointer data)
{
  HarkMediaSession *s = data;
  g_atomic_int_inc(&s->encoder_generation);
}

/* Add chain (made for codecs[index]) to the pipeline between source_tail and rtpbin. */
static gboolean
chain_attach(HarkMediaSession *s, guint index, GstElement *chain[4], GError **error)
{
  for (guint i = 0; i < 4; i++)
    gst_bin_add(GST_BIN(s->pipeline), chain[i]);
  g_autoptr(GstPad) first = gst_element_get_static_pad(chain[0], "sink");
  g_autoptr(GstPad) last = gst_element_get_static_pad(chain[3], "src");
  g_autoptr(GstPad) rtp_sink = gst_element_get_static_pad(s->rtpbin, "send_rtp_sink_0");
  if (rtp_sink == NULL)
    rtp_sink = gst_element_request_pad_simple(s->rtpbin, "send_rtp_sink_0");
  if (!gst_element_link_many(chain[0], chain[1], chain[2], chain[3], NULL) ||
      gst_pad_link(s->source_tail, first) != GST_PAD_LINK_OK ||
      gst_pad_link(last, rtp_sink) != GST_PAD_LINK_OK) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "codec %s: could not link its send chain", s->codecs[index].name);
    return FALSE;
  }
  gst_pad_add_probe(last,
                    GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                    on_payloaded, s, NULL);
  g_mutex_lock(&s->lock);
  s->rebase = TRUE;
  s->out_clock_rate = s->codecs[index].iface->clock_rate;
  s->current = index;
  s->chain_flowing = FALSE;
  if (s->rtp_send_sink == NULL)
    s->rtp_send_sink = gst_object_ref(rtp_sink);
  g_mutex_unlock(&s->lock);
  memcpy(s->chain, chain, sizeof s->chain);
  s->encoder = chain[2];
  /* Any setting changed (by the codec's adaptation, a live set) makes it another stream
   * than a shared encoder's of the old settings (media-shared.c). */
  g_signal_connect(chain[2], "notify", G_CALLBACK(on_encoder_notify), s);
  g_atomic_int_inc(&s->encoder_generation);
  for (int i = 3; i >= 0; i--)
    gst_element_sync_state_with_parent(chain[i]);
  return TRUE;
}

gboolean
hark_media_send_chain_install(HarkMediaSession *s, guint index, GError **error)
{
  GstElement *chain[4];
  if (!hark_media_send_chain_make(&s->codecs[index], s->ssrc, chain, error))
    return FALSE;
  return chain_attach(s, index, chain, error);
}

/* ---- the live codec swap ---------------------------------------------------------------- */

typedef struct {
  HarkMediaSession *session;
  guint index;
  GstElement *chain[4]; /* the new chain until it is in the pipeline */
} Swap;

/* The probe's destroy notify: also when the session is freed before the swap happened. */
static void
swap_free(gpointer data)
{
  Swap *swap = data;
  hark_media_send_chain_discard(swap->chain);
  g_free(swap);
}

/* On the source's streaming thread, with the source blocked: drain the old chain (its
 * last frames go out), take it out, put the new one in; the blocked buffer then flows
 * into the new chain, so no source audio is skipped. */
static GstPadProbeReturn
on_source_blocked(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Swap *swap = data;
  HarkMediaSession *s = swap->session;
  GstElement *old[4];
  memcpy(old, s->chain, sizeof old);
  g_autoptr(GstPad) old_first = gst_element_get_static_pad(old[0], "sink");
  gst_pad_send_event(old_first, gst_event_new_eos());
  g_autoptr(GstPad) old_last = gst_element_get_static_pad(old[3], "src");
  g_autoptr(GstPad) rtp_sink = gst_pad_get_peer(old_last);
  gst_pad_unlink(s->source_tail, old_first);
  if (rtp_sink != NULL)
    gst_pad_unlink(old_last, rtp_sink);
  s->encoder = NULL;
  for (guint i = 0; i < 4; i++) {
    gst_element_set_state(old[i], GST_STATE_NULL);
    gst_bin_remove(GST_BIN(s->pipeline), old[i]);
  }
  g_autoptr(GError) error = NULL;
  if (!chain_attach(s, swap->index, swap->chain, &error))
    g_warning("media: codec swap: %s", error->message);
  memset(swap->chain, 0, sizeof swap->chain); /* the pipeline has them now */
  g_atomic_int_set(&s->swapping, FALSE);
  return GST_PAD_PROBE_REMOVE;
}

gboolean
hark_media_session_swap_codec(HarkMediaSession *s, guint index, GError **error)
{
  if (index >= s->n_codecs) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "codec swap: the session has %u codecs, not %u", s->n_codecs, index + 1);
    return FALSE;
  }
  if (!s->started || g_atomic_int_get(&s->swapping)) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                s->started ? "codec swap: a swap is still in progress"
                           : "codec swap: the session is not started");
    return FALSE;
  }
  if (index == s->current)
    return TRUE;
  /* Made here, so a codec that cannot be made is an error to the caller, not a silent
   * failure on a streaming thread. */
  Swap *swap = g_new0(Swap, 1);
  swap->session = s;
  swap->index = index;
  if (!hark_media_send_chain_make(&s->codecs[index], s->ssrc, swap->chain, error)) {
    g_free(swap);
    return FALSE;
  }
  g_atomic_int_set(&s->swapping, TRUE);
  gst_pad_add_probe(s->source_tail, GST_PAD_PROBE_TYPE_BLOCK_DOWNSTREAM | GST_PAD_PROBE_TYPE_BUFFER,
                    on_source_blocked, swap, swap_free);
  return TRUE;
}

/* ---- mute --------------------------------------------------------------------------------- */

/* On the source's streaming thread: a muted source's audio becomes silence (zeros, the
 * 16-bit samples' silence) before the encoder, so packets keep their pace and the far
 * end's jitter buffer, RTCP and NAT bindings see no difference. */
GstPadProbeReturn
hark_media_session_on_source(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  HarkMediaSession *s = data;
  if (!g_atomic_int_get(&s->muted))
    return GST_PAD_PROBE_OK;
  GstBuffer *buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  gst_buffer_memset(buffer, 0, 0, gst_buffer_get_size(buffer));
  GST_PAD_PROBE_INFO_DATA(info) = buffer;
  return GST_PAD_PROBE_OK;
}

void
hark_media_session_set_mute(HarkMediaSession *s, gboolean mute)
{
  g_atomic_int_set(&s->muted, mute ? 1 : 0);
}

void
hark_media_session_set_hold(HarkMediaSession *s, gboolean hold)
{
  g_mutex_lock(&s->lock);
  s->hold = hold;
  s->last_keepalive = g_get_monotonic_time();
  if (hold) {
    /* Digits are for now: not sent after a resume. One in progress stops (its end packets
     * are not sent; the far end reports it when the next event starts). */
    g_string_truncate(s->dtmf_queue, 0);
    s->dtmf_active = FALSE;
  }
  g_mutex_unlock(&s->lock);
}

/* ---- the shared encoder (media-shared.c) -------------------------------------------------- */

gboolean
hark_media_session_can_follow(HarkMediaSession *s)
{
  g_mutex_lock(&s->lock);
  gboolean can = s->started && s->chain_flowing && !s->hold && s->rtp_send_sink != NULL &&
                 !g_atomic_int_get(&s->muted) && !g_atomic_int_get(&s->swapping);
  g_mutex_unlock(&s->lock);
  return can;
}

const char *
hark_media_session_encoder_signature(HarkMediaSession *s)
{
  gint generation = g_atomic_int_get(&s->encoder_generation);
  if (s->signature == NULL || generation != s->signature_generation) {
    g_clear_pointer(&s->signature, g_free);
    if (s->encoder != NULL)
      s->signature = hark_media_encoder_signature(&s->codecs[s->current], s->encoder);
    s->signature_generation = generation;
  }
  return s->signature;
}

gboolean
hark_media_session_shared_chain(HarkMediaSession *s, GstElement *chain[4], GError **error)
{
  const HarkMediaCodec *codec = &s->codecs[s->current];
  if (s->encoder == NULL || !hark_media_send_chain_make(codec, s->ssrc, chain, error))
    return FALSE;
  hark_media_encoder_copy_settings(s->encoder, chain[2]);
  g_autofree char *copy = hark_media_encoder_signature(codec, chain[2]);
  if (g_strcmp0(copy, hark_media_session_encoder_signature(s)) != 0) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "codec %s: its encoder's settings could not all be copied", codec->name);
    hark_media_send_chain_discard(chain);
    return FALSE;
  }
  return TRUE;
}

void
hark_media_session_follow(HarkMediaSession *s, gboolean follow, GstClockTime primed)
{
  /* The port's writes go on as one steady stream (media-port.c): own packets are stamped
   * the pause later, in restamp(). */
  GstClockTime next =
    !follow && s->port != NULL ? hark_media_port_resume(s->port) : GST_CLOCK_TIME_NONE;
  g_mutex_lock(&s->lock);
  s->following = follow;
  s->rebase = s->rebase_exact = TRUE; /* another encoder's timestamps from now on */
  s->prime_until = GST_CLOCK_TIME_IS_VALID(next) ? next + primed : GST_CLOCK_TIME_NONE;
  g_mutex_unlock(&s->lock);
}

void
hark_media_session_send_shared(HarkMediaSession *s, GstBuffer *packet)
{
  GstBuffer *buffer = gst_buffer_make_writable(packet);
  GST_BUFFER_PTS(buffer) = hark_media_running_time(s->pipeline);
  GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
  g_mutex_lock(&s->lock);
  gboolean keep = restamp(s, &buffer, TRUE);
  GstPad *sink = keep ? gst_object_ref(s->rtp_send_sink) : NULL;
  g_mutex_unlock(&s->lock);
  if (!keep) {
    gst_buffer_unref(buffer);
    return;
  }
  /* Into rtpbin as the own payloader's packets go (its counts and RTCP include them);
   * the pad's stream lock puts them in line with anything the own chain still sends. */
  gst_pad_chain(sink, buffer);
  gst_object_unref(sink);
}
