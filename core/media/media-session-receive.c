/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-session-receive.c: what enters and leaves a media session at the transport:
 * packets protected and handed to the transport, taken from it and checked and decrypted
 * (media-srtp.c), the checks on what was decrypted (telephone-events are read there), and
 * one receive chain (depayloader, decoder) per payload type that arrives, made when rtpbin
 * asks for it. */
#include "media-session-impl.h"

#include <stdio.h>
#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/rtp/gstrtpbuffer.h>

/* ---- the transport edge --------------------------------------------------------------- */

/* Protected as it leaves (this side's key); RTP and RTCP come from their own appsinks. */
GstFlowReturn
hark_media_session_on_packet_out(GstAppSink *sink, gpointer data)
{
  HarkMediaSession *s = data;
  g_autoptr(GstSample) sample = gst_app_sink_pull_sample(sink);
  GstBuffer *buffer = sample ? gst_sample_get_buffer(sample) : NULL;
  GstMapInfo map;
  if (buffer == NULL || !gst_buffer_map(buffer, &map, GST_MAP_READ))
    return GST_FLOW_OK;
  guint8 stack[1500 + HARK_SRTP_MAX_TRAILER];
  guint8 *out = map.size + HARK_SRTP_MAX_TRAILER <= sizeof stack
                  ? stack
                  : g_malloc(map.size + HARK_SRTP_MAX_TRAILER);
  gsize length = 0;
  gboolean rtcp = GST_ELEMENT(sink) == s->rtcp_out;
  HarkSrtpResult protected =
    hark_srtp_protect(s->srtp_send, rtcp, map.data, map.size, out, &length);
  gst_buffer_unmap(buffer, &map);
  g_autoptr(GError) error = NULL;
  if (protected != HARK_SRTP_OK) {
    if (!s->send_error_logged) /* what rtpbin made: it cannot be malformed */
      g_warning("media: an outgoing %s packet could not be protected (%d)", rtcp ? "RTCP" : "RTP",
                protected);
    s->send_error_logged = TRUE;
  } else if (hark_media_transport_send(s->transport, out, length, &error)) {
    g_mutex_lock(&s->lock);
    s->packets_sent++;
    s->bytes_sent += length;
    g_mutex_unlock(&s->lock);
  } else if (!s->send_error_logged) {
    /* Once: a peer that went away (ICMP unreachable) would otherwise log 50 times a second. */
    s->send_error_logged = TRUE;
    g_warning("media: sending failed: %s", error->message);
  }
  if (out != stack)
    g_free(out);
  return GST_FLOW_OK;
}

void
hark_media_session_on_packet_in(const guint8 *data, gsize length, gpointer user_data)
{
  HarkMediaSession *s = user_data;
  HarkMediaPacketKind kind = hark_media_packet_classify(data, length, NULL, NULL);
  g_mutex_lock(&s->lock);
  s->packets_received++;
  s->bytes_received += length;
  if (kind == HARK_MEDIA_PACKET_MALFORMED)
    s->dropped_malformed++;
  else
    s->srtp_in++;
  g_mutex_unlock(&s->lock);
  if (kind == HARK_MEDIA_PACKET_MALFORMED)
    return;
  /* Checked, decrypted and into the jitter buffer here, on the transport's thread. What
   * fails the check (another key's, altered, a replay) goes no further: counted in
   * srtp_in, never in srtp_out (dropped_srtp). */
  gboolean rtcp = kind != HARK_MEDIA_PACKET_RTP;
  GstBuffer *buffer = gst_buffer_new_allocate(NULL, length, NULL);
  GstMapInfo map;
  gsize plain = 0;
  if (buffer == NULL || !gst_buffer_map(buffer, &map, GST_MAP_WRITE)) {
    gst_clear_buffer(&buffer);
    return;
  }
  HarkSrtpResult r = hark_srtp_unprotect(s->srtp_receive, rtcp, data, length, map.data, &plain);
  gst_buffer_unmap(buffer, &map);
  if (r != HARK_SRTP_OK) {
    gst_buffer_unref(buffer);
    return;
  }
  gst_buffer_set_size(buffer, plain);
  g_mutex_lock(&s->lock);
  s->bytes_authenticated += length;
  s->packets_authenticated++;
  g_mutex_unlock(&s->lock);
  if (hark_media_push_src_push(rtcp ? s->rtcp_in : s->rtp_in, buffer) == GST_FLOW_FLUSHING) {
    /* Not playing (yet, or any more): it never reached rtpbin. */
    g_mutex_lock(&s->lock);
    s->srtp_in--;
    g_mutex_unlock(&s->lock);
  }
}

/* A telephone-event packet (s->lock held): each digit reported once; the packet goes on
 * through rtpbin (so its sequence number counts and nothing reads as lost) to a fakesink,
 * never to a decoder. Not a DTMF event: dropped and counted as malformed. */
static GstPadProbeReturn
dtmf_received(HarkMediaSession *s, guint32 ts, const guint8 *payload, gsize length)
{
  char digits[2];
  int n = hark_media_dtmf_receive(&s->dtmf_rx, ts, payload, length, digits);
  if (n < 0) {
    s->dropped_malformed++;
    return GST_PAD_PROBE_DROP;
  }
  hark_media_session_dtmf_heard(s, digits, n);
  s->rtp_received++;
  return GST_PAD_PROBE_OK;
}

/* After decryption: only authenticated packets get here, so the checks below cannot be
 * steered by a forger. Drops are counted by reason. */
GstPadProbeReturn
hark_media_session_on_decrypted_rtp(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  HarkMediaSession *s = data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  g_mutex_lock(&s->lock);
  s->srtp_out++;
  GstPadProbeReturn verdict = GST_PAD_PROBE_DROP;
  gboolean clock_changed = FALSE;
  if (!gst_rtp_buffer_map(buffer, GST_MAP_READ, &rtp)) {
    s->dropped_malformed++;
    goto out;
  }
  guint pt = gst_rtp_buffer_get_payload_type(&rtp);
  guint32 ts = gst_rtp_buffer_get_timestamp(&rtp);
  guint32 ssrc = gst_rtp_buffer_get_ssrc(&rtp);
  guint8 event[4] = { 0 };
  gsize event_length = MIN(gst_rtp_buffer_get_payload_len(&rtp), sizeof event);
  if (pt == s->dtmf_pt)
    memcpy(event, gst_rtp_buffer_get_payload(&rtp), event_length);
  gst_rtp_buffer_unmap(&rtp);
  gint64 now = g_get_monotonic_time();
  hark_media_session_heard(s, now);
  const HarkMediaCodec *codec = hark_media_session_codec_for_pt(s, pt);
  if (pt == HARK_MEDIA_KEEPALIVE_PT) {
    s->keepalives_received++;
  } else if (pt == s->dtmf_pt) {
    verdict = dtmf_received(s, ts, event, event_length);
  } else if (codec == NULL) {
    s->dropped_unknown_pt++;
  } else if (s->have_last_in && ssrc == s->last_in_ssrc &&
             !hark_media_timestamp_plausible(s->last_in_ts, ts, codec->iface->clock_rate,
                                             now - s->last_in_time)) {
    s->dropped_timestamp++;
  } else {
    s->have_last_in = TRUE;
    s->last_in_ssrc = ssrc;
    s->last_in_ts = ts;
    s->last_in_time = now;
    s->rtp_received++;
    if (s->in_codec != NULL && codec != s->in_codec) {
      s->swap_seen_at = now;
      s->swap_gap = 0;
    }
    s->in_codec = codec;
    clock_changed = codec->iface->clock_rate != s->in_clock_rate && s->dtmf_mapped;
    s->in_clock_rate = codec->iface->clock_rate;
    verdict = GST_PAD_PROBE_OK;
  }
out:
  g_mutex_unlock(&s->lock);
  /* The far end's events now run in another clock: rtpbin asks for their caps again. */
  if (clock_changed)
    g_signal_emit_by_name(s->rtpbin, "clear-pt-map");
  return verdict;
}

GstPadProbeReturn
hark_media_session_on_decrypted_rtcp(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  HarkMediaSession *s = data;
  g_mutex_lock(&s->lock);
  s->srtp_out++;
  hark_media_session_heard(s, g_get_monotonic_time());
  g_mutex_unlock(&s->lock);
  return GST_PAD_PROBE_OK;
}

/* ---- receive chains, one per payload type that arrives ------------------------------- */

static GstCaps *
rtp_caps(const HarkMediaCodec *codec)
{
  GstCaps *caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio",
                                      "clock-rate", G_TYPE_INT, (int)codec->iface->clock_rate,
                                      "encoding-name", G_TYPE_STRING, codec->iface->encoding_name,
                                      "payload", G_TYPE_INT, (int)codec->payload_type, NULL);
  if (codec->iface->encoding_params != NULL)
    gst_caps_set_simple(caps, "encoding-params", G_TYPE_STRING, codec->iface->encoding_params,
                        NULL);
  return caps;
}

GstCaps *
hark_media_session_on_request_pt_map(GstElement *rtpbin, guint session, guint pt, gpointer data)
{
  HarkMediaSession *s = data;
  if (pt == s->dtmf_pt) {
    /* The far end's events run in the clock of the codec it sends. */
    g_mutex_lock(&s->lock);
    s->dtmf_mapped = TRUE;
    guint rate = s->in_clock_rate;
    g_mutex_unlock(&s->lock);
    return gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio", "clock-rate",
                               G_TYPE_INT, (int)rate, "encoding-name", G_TYPE_STRING,
                               "TELEPHONE-EVENT", "payload", G_TYPE_INT, (int)pt, NULL);
  }
  const HarkMediaCodec *codec = hark_media_session_codec_for_pt(s, pt);
  return codec ? rtp_caps(codec) : NULL;
}

/* Telephone-events were reported before rtpbin; what leaves it ends here. */
static gboolean
add_dtmf_sink(HarkMediaSession *s, GstPad *rtp_src, GError **error)
{
  GstElement *sink = hark_media_element_make("fakesink", error);
  if (sink == NULL)
    return FALSE;
  g_object_set(sink, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add(GST_BIN(s->pipeline), sink);
  g_autoptr(GstPad) in = gst_element_get_static_pad(sink, "sink");
  if (gst_pad_link(rtp_src, in) != GST_PAD_LINK_OK) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "could not link the DTMF payload type's sink");
    return FALSE;
  }
  gst_element_sync_state_with_parent(sink);
  return TRUE;
}

/* The jitter buffer announces lost packets; the depayloader turns that into a gap the
 * decoder fills (Opus conceals, G.711 plays silence). Either way those samples were not
 * received, so they count as concealed. The jitter buffer gives a packet up only at its
 * deadline, so what fills the gap, and the packet after it that Opus waits for to
 * recover the gap from its FEC, reach the sink late by construction: that is loss, not
 * jitter, and growing the buffer for each such lateness would only add delay (under 10 %
 * random loss it climbed to its ceiling). Instead a loss holds the delay at one packet
 * and a little for a while (hark_media_jitter_lost): then the packet after the loss is in
 * the buffer when the loss is declared, and the rebuilt frame plays in time. A packet
 * that did come, only late, still grows it: the jitter buffer counts it (late_packets),
 * and the policy follows that count. */
static GstPadProbeReturn
on_decoder_event(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  HarkMediaSession *s = data;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_GAP) {
    GstClockTime at = GST_CLOCK_TIME_NONE, duration = GST_CLOCK_TIME_NONE;
    gst_event_parse_gap(event, &at, &duration);
    if (GST_CLOCK_TIME_IS_VALID(duration)) {
      g_mutex_lock(&s->lock);
      hark_media_jitter_lost(&s->jitter, (guint)MIN(duration / GST_MSECOND, G_MAXUINT),
                             g_get_monotonic_time());
      s->concealed_samples += gst_util_uint64_scale(duration, 48000, GST_SECOND);
      if (GST_CLOCK_TIME_IS_VALID(at) &&
          (!GST_CLOCK_TIME_IS_VALID(s->conceal_end) || at + 2 * duration > s->conceal_end))
        s->conceal_end = at + 2 * duration;
      g_mutex_unlock(&s->lock);
    }
  }
  return GST_PAD_PROBE_OK;
}

/* s->lock held. */
static gboolean
fills_a_loss(const HarkMediaSession *s, GstBuffer *buffer)
{
  return GST_CLOCK_TIME_IS_VALID(s->conceal_end) && GST_BUFFER_PTS_IS_VALID(buffer) &&
         GST_BUFFER_PTS(buffer) < s->conceal_end;
}

/* 5 ms of 48 kHz: the blocks the level is judged in. */
#define LEVEL_BLOCK 240
/* -50 dBFS (samples of about 100 in 32768): quiet whatever the usual level. */
#define PAUSE_MEAN_SQUARE (100.0 * 100.0)

/* The swap's gap, as a listener hears it (s->lock held): within 2 s of the far end's
 * codec change, the longest run of audio 20 dB below the usual level (5 ms blocks,
 * against a slow average of what played before) together with any hole in the played
 * timeline (a sound card plays it as silence). The drained old encoder's last frame,
 * the new one's start and the jitter buffer's re-timing all show up so. The same blocks
 * tell how long what plays has been a pause, where the jitter buffer may shrink. */
static void
follow_gaps(HarkMediaSession *s, GstBuffer *buffer, GstClockTime at)
{
  gboolean in_window =
    s->swap_seen_at != 0 && g_get_monotonic_time() - s->swap_seen_at < 2 * G_USEC_PER_SEC;
  gsize n = gst_buffer_get_size(buffer) / 2;
  if (GST_CLOCK_TIME_IS_VALID(at)) {
    if (GST_CLOCK_TIME_IS_VALID(s->play_end) && at > s->play_end) {
      s->quiet_run += at - s->play_end;
      s->pause_run += at - s->play_end;
    }
    s->play_end = at + gst_util_uint64_scale(n, GST_SECOND, 48000);
  }
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ))
    return;
  const gint16 *samples = (const gint16 *)map.data;
  for (gsize i = 0; i + LEVEL_BLOCK <= n; i += LEVEL_BLOCK) {
    double sum = 0;
    for (gsize j = i; j < i + LEVEL_BLOCK; j++)
      sum += (double)samples[j] * samples[j];
    double mean_square = sum / LEVEL_BLOCK;
    if (!in_window)
      s->level_ref = s->level_ref > 0 ? 0.98 * s->level_ref + 0.02 * mean_square : mean_square;
    gboolean below = mean_square * 100 < s->level_ref; /* 20 dB below */
    s->quiet_run = below ? s->quiet_run + 5 * GST_MSECOND : 0;
    /* A pause, for the jitter buffer to shrink in: that, or next to nothing at all (a
     * stream of silence has no usual level to be below). */
    s->pause_run = below || mean_square < PAUSE_MEAN_SQUARE ? s->pause_run + 5 * GST_MSECOND : 0;
    if (in_window)
      s->swap_gap = MAX(s->swap_gap, s->quiet_run);
  }
  gst_buffer_unmap(buffer, &map);
}

/* Everything the sink gets: samples played, and how early each buffer came before its
 * playing time (running time + the pipeline latency) less what the sink needs before
 * it (the sound server's output delay), which the jitter-buffer policy follows. */
GstPadProbeReturn
hark_media_session_on_played(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  HarkMediaSession *s = data;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
      const GstSegment *segment = NULL;
      gst_event_parse_segment(event, &segment);
      g_mutex_lock(&s->lock);
      gst_segment_copy_into(segment, &s->play_segment);
      s->conceal_end = GST_CLOCK_TIME_NONE; /* a new timeline (a codec swap, a restart) */
      g_mutex_unlock(&s->lock);
    }
    return GST_PAD_PROBE_OK;
  }
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  GstClockTime now = gst_clock_get_time(s->clock) - gst_element_get_base_time(s->pipeline);
  GstClockTime ahead = s->playback ? hark_media_pulse_sink_delay(s->playback) : 0;
  g_mutex_lock(&s->lock);
  s->played_samples += gst_buffer_get_size(buffer) / 2;
  GstClockTime at =
    s->play_segment.format == GST_FORMAT_TIME
      ? gst_segment_to_running_time(&s->play_segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer))
      : GST_CLOCK_TIME_NONE;
  follow_gaps(s, buffer, at);
  /* The first second tells nothing about the network: the pipelines are still starting. */
  if (GST_CLOCK_TIME_IS_VALID(at) && s->played_samples > 48000) {
    double slack_ms = ((gint64)(at + s->latency) - (gint64)ahead - (gint64)now) / 1e6;
    if (!fills_a_loss(s, buffer))
      hark_media_jitter_observe(&s->jitter, slack_ms);
    if (slack_ms < 0)
      s->late_buffers++;
  }
  g_mutex_unlock(&s->lock);
  return GST_PAD_PROBE_OK;
}

GstElement *
hark_media_codec_element(const HarkMediaCodec *codec, HarkCodecRole role, GError **error)
{
  const char *factory = role == HARK_CODEC_ENCODER       ? codec->iface->encoder
                        : role == HARK_CODEC_PAYLOADER   ? codec->iface->payloader
                        : role == HARK_CODEC_DEPAYLOADER ? codec->iface->depayloader
                                                         : codec->iface->decoder;
  GstElement *e = NULL;
  if (factory != NULL)
    e = hark_media_element_make(factory, error);
  else if (codec->iface->version >= 2 && codec->iface->make != NULL)
    e = GST_ELEMENT(codec->iface->make(codec->instance, role, error));
  else
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "codec %s names no element for one of its roles", codec->name);
  if (e == NULL)
    return NULL;
  if (codec->iface->configure != NULL &&
      !codec->iface->configure(codec->instance, role, G_OBJECT(e), codec->settings, error)) {
    g_prefix_error(error, "codec %s: ", codec->name);
    gst_object_unref(gst_object_ref_sink(e));
    return NULL;
  }
  return e;
}

/* The codec says its audio is 48 kHz mono, and its decoder can give it as the sink takes
 * it (a decoder that plays at its input's rate, such as G.711's, says 8 kHz). */
static gboolean
decodes_native(const HarkMediaCodec *codec, GstElement *decoder, GstCaps *raw)
{
  if (codec->iface->sample_rate != 48000 || codec->iface->channels != 1)
    return FALSE;
  g_autoptr(GstPad) out = gst_element_get_static_pad(decoder, "src");
  g_autoptr(GstCaps) template = out ? gst_pad_get_pad_template_caps(out) : NULL;
  return template != NULL && gst_caps_can_intersect(template, raw);
}

/* The chain's elements into e (depayloader, decoder, [audioconvert, audioresample,]
 * capsfilter); their number, or 0. */
static guint
receive_chain_make(const HarkMediaCodec *codec, GstElement *e[5], GError **error)
{
  g_autoptr(GstCaps) raw =
    gst_caps_from_string("audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1");
  guint n = 5;
  memset(e, 0, 5 * sizeof e[0]);
  if ((e[0] = hark_media_codec_element(codec, HARK_CODEC_DEPAYLOADER, error)) == NULL ||
      (e[1] = hark_media_codec_element(codec, HARK_CODEC_DECODER, error)) == NULL)
    goto fail;
  /* A decoder that gives 48 kHz mono 16-bit itself (Opus decodes at the rate and channels
   * asked for) needs no converter: two elements fewer for every buffer played. */
  if (decodes_native(codec, e[1], raw))
    n = 3;
  if ((n == 5 && (e[2] = hark_media_element_make("audioconvert", error)) == NULL) ||
      (n == 5 && (e[3] = hark_media_element_make("audioresample", error)) == NULL) ||
      (e[n - 1] = hark_media_element_make("capsfilter", error)) == NULL)
    goto fail;
  g_object_set(e[n - 1], "caps", raw, NULL);
  return n;
fail:
  for (guint i = 0; i < 5; i++)
    if (e[i] != NULL)
      gst_object_unref(gst_object_ref_sink(e[i]));
  return 0;
}

static gboolean
add_receive_chain(HarkMediaSession *s, GstPad *rtp_src, guint pt, GError **error)
{
  const HarkMediaCodec *codec = hark_media_session_codec_for_pt(s, pt);
  if (codec == NULL) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "no codec for payload type %u",
                pt);
    return FALSE;
  }
  GstElement *e[5];
  guint n = receive_chain_make(codec, e, error);
  if (n == 0)
    return FALSE;
  for (guint i = 0; i < n; i++) {
    gst_bin_add(GST_BIN(s->pipeline), e[i]);
    if (i > 0)
      gst_element_link(e[i - 1], e[i]);
  }
  g_autoptr(GstPad) decoder_sink = gst_element_get_static_pad(e[1], "sink");
  gst_pad_add_probe(decoder_sink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_decoder_event, s, NULL);
  g_autoptr(GstPad) out = gst_element_get_static_pad(e[n - 1], "src");
  g_autoptr(GstPad) funnel_in = gst_element_request_pad_simple(s->funnel, "sink_%u");
  g_autoptr(GstPad) depay_sink = gst_element_get_static_pad(e[0], "sink");
  if (gst_pad_link(out, funnel_in) != GST_PAD_LINK_OK ||
      gst_pad_link(rtp_src, depay_sink) != GST_PAD_LINK_OK) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "codec %s: could not link its receive chain", codec->name);
    return FALSE;
  }
  for (int i = (int)n - 1; i >= 0; i--)
    gst_element_sync_state_with_parent(e[i]);
  return TRUE;
}

void
hark_media_session_on_new_jitterbuffer(GstElement *rtpbin, GstElement *jitterbuffer, guint session,
                                       guint ssrc, gpointer data)
{
  HarkMediaSession *s = data;
  g_mutex_lock(&s->lock);
  gst_object_replace((GstObject **)&s->jitterbuffer, GST_OBJECT(jitterbuffer));
  g_mutex_unlock(&s->lock);
}

void
hark_media_session_on_pad_added(GstElement *rtpbin, GstPad *pad, gpointer data)
{
  HarkMediaSession *s = data;
  g_autofree char *name = gst_pad_get_name(pad);
  guint session = 0, ssrc = 0, pt = 0;
  if (sscanf(name, "recv_rtp_src_%u_%u_%u", &session, &ssrc, &pt) != 3)
    return;
  g_autoptr(GError) error = NULL;
  if (!(pt == s->dtmf_pt ? add_dtmf_sink(s, pad, &error) : add_receive_chain(s, pad, pt, &error)))
    g_warning("media: %s", error->message);
}
