/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-session-stats.c: a media session's statistics (counters, RTCP reports, the
 * jitter buffer) and the once-a-second adaptation: the jitter-buffer target, and the
 * far end's report handed to the codec. */
#include "media-session-impl.h"

#include <string.h>

/* ---- statistics and adaptation --------------------------------------------------------- */

/* *rb_seq (may be NULL): the highest sequence number the far end's last report block
 * covers, which tells one report from the next; unchanged when none came. */
static void
read_rtcp(HarkMediaSession *s, HarkMediaStats *st, guint *rb_seq)
{
  st->rtt_ms = -1;
  st->remote_jitter_ms = -1;
  g_mutex_lock(&s->lock);
  guint out_clock_rate = s->out_clock_rate;
  g_mutex_unlock(&s->lock);
  GObject *rtp_session = NULL;
  g_signal_emit_by_name(s->rtpbin, "get-internal-session", 0, &rtp_session);
  if (rtp_session == NULL)
    return;
  GstStructure *stats = NULL;
  g_object_get(rtp_session, "stats", &stats, NULL);
  g_object_unref(rtp_session);
  const GValue *sources = stats ? gst_structure_get_value(stats, "source-stats") : NULL;
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  GValueArray *array = sources ? g_value_get_boxed(sources) : NULL;
  for (guint i = 0; array != NULL && i < array->n_values; i++) {
    const GstStructure *src = gst_value_get_structure(g_value_array_get_nth(array, i));
    G_GNUC_END_IGNORE_DEPRECATIONS
    gboolean internal = FALSE, have_rb = FALSE;
    gst_structure_get_boolean(src, "internal", &internal);
    if (internal)
      continue;
    /* The far end's source: what we measured of its stream, and (in the report blocks
     * it sent, which rtpsession keeps on the sender's source) what it measured of ours. */
    gint lost = 0, clock_rate = 0;
    guint jitter = 0, rb_ssrc = 0, fraction = 0, rtt = 0, rb_jitter = 0;
    gst_structure_get_int(src, "packets-lost", &lost);
    if (gst_structure_get_uint(src, "jitter", &jitter) &&
        gst_structure_get_int(src, "clock-rate", &clock_rate) && clock_rate > 0)
      st->jitter_ms = jitter * 1000.0 / clock_rate;
    st->lost += MAX(lost, 0);
    if (gst_structure_get_boolean(src, "have-rb", &have_rb) && have_rb &&
        gst_structure_get_uint(src, "rb-ssrc", &rb_ssrc) && rb_ssrc == s->ssrc &&
        gst_structure_get_uint(src, "rb-fractionlost", &fraction) &&
        gst_structure_get_uint(src, "rb-round-trip", &rtt)) {
      st->remote_loss_fraction = fraction / 256.0;
      st->rtt_ms = rtt * 1000.0 / 65536.0; /* NTP short format: 1/65536 s */
      /* In the clock of what we send (the far end's report of our stream). */
      if (gst_structure_get_uint(src, "rb-jitter", &rb_jitter) && out_clock_rate > 0)
        st->remote_jitter_ms = rb_jitter * 1000.0 / out_clock_rate;
      if (rb_seq != NULL)
        gst_structure_get_uint(src, "rb-exthighestseq", rb_seq);
    }
  }
  if (stats != NULL)
    gst_structure_free(stats);
}

static guint64 jitterbuffer_late(GstElement *jitterbuffer);

void
hark_media_session_get_stats(HarkMediaSession *s, HarkMediaStats *st)
{
  memset(st, 0, sizeof *st);
  read_rtcp(s, st, NULL);
  g_mutex_lock(&s->lock);
  g_strlcpy(st->codec, s->codecs[s->current].name, sizeof st->codec);
  st->payload_type = s->codecs[s->current].payload_type;
  st->packets_sent = s->packets_sent;
  st->bytes_sent = s->bytes_sent;
  st->packets_received = s->packets_received;
  st->bytes_received = s->bytes_received;
  st->rtp_received = s->rtp_received;
  st->concealed_samples = s->concealed_samples;
  st->played_samples = s->played_samples;
  /* What was checked (media-srtp.c) and did not come out decrypted (nothing waits in
   * between: the packet is decrypted in the transport's callback). */
  st->dropped_srtp = s->srtp_in > s->srtp_out ? s->srtp_in - s->srtp_out : 0;
  st->dropped_malformed = s->dropped_malformed;
  st->dropped_unknown_pt = s->dropped_unknown_pt;
  st->dropped_timestamp = s->dropped_timestamp;
  st->keepalives_sent = s->keepalives_sent;
  st->keepalives_received = s->keepalives_received;
  st->on_hold = s->hold;
  st->muted = g_atomic_int_get(&s->muted);
  st->dtmf_sent = s->dtmf_sent;
  st->dtmf_received = s->dtmf_received;
  st->last_swap_gap_ms = (guint)((s->swap_gap + GST_MSECOND - 1) / GST_MSECOND);
  st->send_bitrate = s->send_bitrate;
  st->receive_bitrate = s->receive_bitrate;
  st->jitter_buffer_ms = s->jitter.target_ms;
  st->jitter_buffer_grown = s->jitter.grown;
  st->jitter_buffer_shrunk = s->jitter.shrunk;
  st->jitter_buffer_raised = s->jitter.raised;
  st->late_buffers = s->late_buffers;
  st->ptime_ms = s->ptime_ms;
  g_autoptr(GstElement) jitterbuffer = s->jitterbuffer ? gst_object_ref(s->jitterbuffer) : NULL;
  g_mutex_unlock(&s->lock);
  st->late_packets = jitterbuffer_late(jitterbuffer);
  st->transport_overhead = hark_media_transport_overhead(s->transport);
  if (!g_atomic_int_get(&s->swapping) && s->encoder != NULL) {
    GObjectClass *encoder_class = G_OBJECT_GET_CLASS(s->encoder);
    if (g_object_class_find_property(encoder_class, "bitrate"))
      g_object_get(s->encoder, "bitrate", &st->encoder_bitrate, NULL);
    if (g_object_class_find_property(encoder_class, "inband-fec"))
      g_object_get(s->encoder, "inband-fec", &st->fec, NULL);
  }
}

JsonObject *
hark_media_stats_to_json(const HarkMediaStats *st)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "codec", st->codec);
  json_object_set_int_member(o, "payload_type", st->payload_type);
  json_object_set_int_member(o, "packets_sent", st->packets_sent);
  json_object_set_int_member(o, "bytes_sent", st->bytes_sent);
  json_object_set_int_member(o, "packets_received", st->packets_received);
  json_object_set_int_member(o, "bytes_received", st->bytes_received);
  json_object_set_int_member(o, "transport_overhead", st->transport_overhead);
  json_object_set_int_member(o, "rtp_received", st->rtp_received);
  json_object_set_int_member(o, "lost", st->lost);
  json_object_set_double_member(o, "jitter_ms", st->jitter_ms);
  json_object_set_double_member(o, "rtt_ms", st->rtt_ms);
  json_object_set_double_member(o, "remote_loss_fraction", st->remote_loss_fraction);
  json_object_set_int_member(o, "concealed_samples", st->concealed_samples);
  json_object_set_int_member(o, "played_samples", st->played_samples);
  json_object_set_int_member(o, "jitter_buffer_ms", st->jitter_buffer_ms);
  json_object_set_int_member(o, "jitter_buffer_grown", st->jitter_buffer_grown);
  json_object_set_int_member(o, "jitter_buffer_shrunk", st->jitter_buffer_shrunk);
  json_object_set_int_member(o, "jitter_buffer_raised", st->jitter_buffer_raised);
  json_object_set_int_member(o, "late_packets", st->late_packets);
  json_object_set_int_member(o, "late_buffers", st->late_buffers);
  json_object_set_int_member(o, "dropped_srtp", st->dropped_srtp);
  json_object_set_int_member(o, "dropped_malformed", st->dropped_malformed);
  json_object_set_int_member(o, "dropped_unknown_pt", st->dropped_unknown_pt);
  json_object_set_int_member(o, "dropped_timestamp", st->dropped_timestamp);
  json_object_set_int_member(o, "keepalives_sent", st->keepalives_sent);
  json_object_set_int_member(o, "keepalives_received", st->keepalives_received);
  json_object_set_int_member(o, "encoder_bitrate", st->encoder_bitrate);
  json_object_set_boolean_member(o, "on_hold", st->on_hold);
  json_object_set_boolean_member(o, "muted", st->muted);
  json_object_set_int_member(o, "dtmf_sent", st->dtmf_sent);
  json_object_set_int_member(o, "dtmf_received", st->dtmf_received);
  json_object_set_int_member(o, "last_swap_gap_ms", st->last_swap_gap_ms);
  json_object_set_double_member(o, "send_bitrate", st->send_bitrate);
  json_object_set_double_member(o, "receive_bitrate", st->receive_bitrate);
  json_object_set_boolean_member(o, "fec", st->fec);
  json_object_set_int_member(o, "ptime_ms", st->ptime_ms);
  json_object_set_double_member(o, "remote_jitter_ms", st->remote_jitter_ms);
  return o;
}

/* The jitter buffer's count of packets that came after it had given up on them. */
static guint64
jitterbuffer_late(GstElement *jitterbuffer)
{
  guint64 late = 0;
  GstStructure *stats = NULL;
  if (jitterbuffer != NULL)
    g_object_get(jitterbuffer, "stats", &stats, NULL);
  if (stats != NULL) {
    gst_structure_get_uint64(stats, "num-late", &late);
    gst_structure_free(stats);
  }
  return late;
}

/* What plays is a pause, where a shrink of the delay goes in (media-jitter.c): quiet (20 dB
 * below its usual level, or next to silent: follow_gaps() in media-session-receive.c) for
 * this long; checked every SHRINK_POLL_MS while a shrink waits. */
#define PAUSE_AT_LEAST (30 * GST_MSECOND)
#define SHRINK_POLL_MS 10

/* The jitter buffers wait this long for a missing packet, and the sink plays this long
 * after arrival. */
static void
apply_latency(HarkMediaSession *s, guint target)
{
  g_object_set(s->rtpbin, "latency", target, NULL);
  gst_pipeline_set_latency(GST_PIPELINE(s->pipeline), target * GST_MSECOND);
  gst_bin_recalculate_latency(GST_BIN(s->pipeline));
}

/* A tick of the policy (with the jitter buffer's late count) or a poll of a waiting shrink,
 * told what plays now; the delay it leaves applied. TRUE while a shrink waits. */
static gboolean
follow_policy(HarkMediaSession *s, gboolean tick, guint64 late)
{
  g_mutex_lock(&s->lock);
  hark_media_jitter_hear(&s->jitter, s->pause_run >= PAUSE_AT_LEAST, g_get_monotonic_time());
  gboolean changed =
    tick ? hark_media_jitter_tick(&s->jitter, late) : hark_media_jitter_poll(&s->jitter);
  guint target = s->jitter.target_ms;
  s->latency = target * GST_MSECOND;
  gboolean waiting = s->jitter.pending_ms != 0;
  g_mutex_unlock(&s->lock);
  if (changed)
    apply_latency(s, target);
  return waiting;
}

static gboolean
on_shrink_poll(gpointer data)
{
  HarkMediaSession *s = data;
  if (follow_policy(s, FALSE, 0))
    return G_SOURCE_CONTINUE;
  s->shrink_poll = 0;
  return G_SOURCE_REMOVE;
}

void
hark_media_session_stop_shrink(HarkMediaSession *s)
{
  if (s->shrink_poll != 0)
    g_source_remove(s->shrink_poll);
  s->shrink_poll = 0;
}

/* The policy's verdict of this second, applied: a growth at once, a shrink in the next
 * pause of what plays (polled for while it waits). */
static void
adapt_jitter(HarkMediaSession *s)
{
  g_mutex_lock(&s->lock);
  g_autoptr(GstElement) jitterbuffer = s->jitterbuffer ? gst_object_ref(s->jitterbuffer) : NULL;
  g_mutex_unlock(&s->lock);
  gboolean waiting = follow_policy(s, TRUE, jitterbuffer_late(jitterbuffer));
  if (waiting && s->shrink_poll == 0)
    s->shrink_poll = g_timeout_add(SHRINK_POLL_MS, on_shrink_poll, s);
  else if (!waiting)
    hark_media_session_stop_shrink(s);
}

/* The bitrates each way over the last 5 s (from the byte counts at the last 6 ticks). */
static void
measure_bitrates(HarkMediaSession *s)
{
  g_mutex_lock(&s->lock);
  guint n = G_N_ELEMENTS(s->rate_samples);
  s->rate_samples[s->rate_next].at = g_get_monotonic_time();
  s->rate_samples[s->rate_next].sent = s->bytes_sent;
  s->rate_samples[s->rate_next].received = s->bytes_received;
  guint newest = s->rate_next;
  s->rate_next = (s->rate_next + 1) % n;
  s->rate_count = MIN(s->rate_count + 1, n);
  guint oldest = s->rate_count < n ? 0 : s->rate_next;
  gint64 span = s->rate_samples[newest].at - s->rate_samples[oldest].at;
  if (span > 0) {
    s->send_bitrate =
      (s->rate_samples[newest].sent - s->rate_samples[oldest].sent) * 8.0 * G_USEC_PER_SEC / span;
    s->receive_bitrate = (s->rate_samples[newest].received - s->rate_samples[oldest].received) *
                         8.0 * G_USEC_PER_SEC / span;
  }
  g_mutex_unlock(&s->lock);
}

/* Seconds since the far end's last report when it should have sent more and the link
 * seems to lose them; 0 otherwise (and then the clock restarts). A report comes about
 * once a second while we send; none for 2 s while its stream still reaches us (not a
 * path that is down) with more than 40 % of it lost since the last report says the
 * link is too full to pass them (random loss of 20 % loses three reports in a row about
 * once a minute: with a tenth as the mark, that took a lossy call for a full link, which
 * left FEC off for good; a full queue drops 50-70 %): over a 1.5 KB/s tbf with 20 ms packets neither end's
 * RTCP passed in 26 s while 45 % of its RTP did (a byte-limited drop-tail queue that
 * small RTP packets keep full has no room for a larger RTCP one). The codec can then
 * step down without them (RFC 5348 §4.4's no-feedback timer does the same), and so
 * unblock the far end's reports by freeing its own link for ours. */
static guint
reports_missed(HarkMediaSession *s, const HarkMediaStats *st, gboolean report)
{
  g_mutex_lock(&s->lock);
  guint64 sent = s->packets_sent, received = s->rtp_received;
  g_mutex_unlock(&s->lock);
  gint64 now = g_get_monotonic_time();
  gboolean sending = sent > s->sent_at_tick;
  s->sent_at_tick = sent;
  if (report || !sending || s->report_at == 0) {
    s->report_at = now;
    s->lost_at_report = st->lost;
    s->received_at_report = received;
    return 0;
  }
  guint64 lost = (guint64)MAX(st->lost - s->lost_at_report, 0);
  guint64 got = received - s->received_at_report;
  guint missed = (guint)((now - s->report_at + G_USEC_PER_SEC / 2) / G_USEC_PER_SEC);
  return missed >= 2 && got > 0 && lost * 10 > (lost + got) * 4 ? missed : 0;
}

/* Bits/s sent since the feedback before (what the stream used of what the codec set);
 * negative the first time. */
static double
sent_since_feedback(HarkMediaSession *s)
{
  g_mutex_lock(&s->lock);
  guint64 sent = s->bytes_sent;
  g_mutex_unlock(&s->lock);
  gint64 now = g_get_monotonic_time();
  double rate = s->feedback_at > 0 && now > s->feedback_at
                  ? (double)(sent - s->sent_at_feedback) * 8.0 * G_USEC_PER_SEC / (double)(now - s->feedback_at)
                  : -1;
  s->feedback_at = now;
  s->sent_at_feedback = sent;
  return rate;
}

/* Once a second: measure, follow the jitter we see, and hand the far end's latest report
 * to the codec (Opus adapts), or tell it that reports are missing on a lossy link. */
gboolean
hark_media_session_on_tick(gpointer data)
{
  HarkMediaSession *s = data;
  measure_bitrates(s);
  adapt_jitter(s);
  const HarkMediaCodec *codec = &s->codecs[s->current];
  if (codec->iface->adapt == NULL || s->encoder == NULL || g_atomic_int_get(&s->swapping))
    return G_SOURCE_CONTINUE;
  HarkMediaStats st = { 0 };
  guint rb_seq = s->rb_seq;
  read_rtcp(s, &st, &rb_seq);
  guint missed = reports_missed(s, &st, rb_seq != s->rb_seq);
  /* Each receiver report once: RTCP comes about once a second, not in step with this
   * tick, and a report read twice would step the bitrate twice for one loss figure. */
  if (rb_seq == s->rb_seq && (missed == 0 || codec->iface->version < 2))
    return G_SOURCE_CONTINUE;
  s->rb_seq = rb_seq;
  double received = -1, received_packets = -1;
  hark_media_report_received_rates(s, &received, &received_packets);
  HarkCodecFeedback feedback = { .loss_fraction = st.remote_loss_fraction,
                                 /* 0: the report's LSR was 0 (the far end has had no
                                  * sender report of ours yet), not a measured round trip */
                                 .rtt_ms = st.rtt_ms > 0 ? st.rtt_ms : -1,
                                 .jitter_ms = st.remote_jitter_ms,
                                 .missed_s = missed,
                                 .sent_bitrate = sent_since_feedback(s),
                                 .received_bitrate = received,
                                 .received_packet_rate = received_packets };
  codec->iface->adapt(codec->instance, G_OBJECT(s->encoder), codec->settings, &feedback);
  return G_SOURCE_CONTINUE;
}
