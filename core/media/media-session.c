/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-session.c: one media session: a GStreamer pipeline that sends
 *   source ! [audioresample ! capsfilter ! encoder ! payloader] ! rtpbin ! appsink
 * and receives
 *   push source ! (checks) ! rtpbin (jitter buffer) ! [depayloader ! decoder] ! sink
 * with RTCP both ways through the same rtpbin session (so RTT and loss are known), and
 * the push-source/appsink ends wired to a HarkMediaTransport through SRTP (media-srtp.c:
 * packets are protected as they leave the appsinks and checked and decrypted before they
 * are pushed in). The bracketed codec chains are
 * made per codec: the send chain is replaced live on a codec swap (media-send.c), a
 * receive chain is added for each payload type that arrives.
 *
 * This file builds, starts and frees a session; the transport edge and the receive
 * chains are in media-session-receive.c, statistics and adaptation in
 * media-session-stats.c (media-session-impl.h: the state they share). */
#include "media-session-impl.h"

#include <gst/app/gstappsink.h>
#include <string.h>

gsize
hark_media_srtp_key_length(HarkMediaSrtpSuite suite)
{
  return suite == HARK_MEDIA_SRTP_AEAD_AES_256_GCM ? 44 : 30;
}

const HarkMediaCodec *
hark_media_session_codec_for_pt(HarkMediaSession *s, guint pt)
{
  for (guint i = 0; i < s->n_codecs; i++)
    if (s->codecs[i].payload_type == pt)
      return &s->codecs[i];
  return NULL;
}

/* ---- building ----------------------------------------------------------------------------- */

static gboolean
link_pads(GstElement *a, const char *a_pad, GstElement *b, const char *b_pad, GError **error)
{
  if (gst_element_link_pads(a, a_pad, b, b_pad))
    return TRUE;
  g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER, "could not link %s:%s to %s:%s",
              GST_ELEMENT_NAME(a), a_pad, GST_ELEMENT_NAME(b), b_pad);
  return FALSE;
}

static GstElement *
make_appsink(HarkMediaSession *s, GError **error)
{
  GstElement *sink = hark_media_element_make("appsink", error);
  if (sink == NULL)
    return NULL;
  /* Packets leave as soon as they are made; the source already runs in real time. A file
   * source does not, so then the sink paces it. */
  g_object_set(sink, "sync", s->paced, "async", FALSE, "max-buffers", 64, "drop", TRUE, NULL);
  GstAppSinkCallbacks callbacks = { .new_sample = hark_media_session_on_packet_out };
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, s, NULL);
  return sink;
}

/* Received packets, once decrypted, go from the transport's callback straight into rtpbin
 * (no queue and no thread in between), stamped with their arrival for the jitter buffer. */
static GstElement *
make_packet_src(const char *name, const char *caps_text)
{
  g_autoptr(GstCaps) caps = gst_caps_from_string(caps_text);
  return hark_media_push_src_new(name, caps, TRUE);
}

static gboolean
payload_type_usable(guint pt)
{
  /* RFC 5761: with RTP and RTCP on one transport, 64-95 would read as RTCP. */
  return pt <= 127 && pt != HARK_MEDIA_KEEPALIVE_PT && !(pt >= 64 && pt <= 95);
}

static gboolean
check_config(const HarkMediaConfig *config, GError **error)
{
  const char *problem = NULL;
  if (config->n_codecs == 0 || config->codecs == NULL)
    problem = "no codec";
  else if (config->transport == NULL)
    problem = "no transport";
  else if (config->source == NULL || config->sink == NULL)
    problem = "no source or sink";
  else if (config->send_key == NULL || config->receive_key == NULL)
    problem = "SRTP keys are required in both directions";
  else if (g_bytes_get_size(config->send_key) != hark_media_srtp_key_length(config->srtp_suite) ||
           g_bytes_get_size(config->receive_key) != hark_media_srtp_key_length(config->srtp_suite))
    problem = config->srtp_suite == HARK_MEDIA_SRTP_AEAD_AES_256_GCM
                ? "an AEAD_AES_256_GCM key is 44 bytes (32 key + 12 salt)"
                : "an AES_CM_128_HMAC_SHA1_80 key is 30 bytes (16 key + 14 salt)";
  guint dtmf_pt = config->dtmf_payload_type ? config->dtmf_payload_type : 101;
  if (problem == NULL && !payload_type_usable(dtmf_pt))
    problem = "a DTMF payload type outside 0-63 and 96-127, or the keep-alive's (20)";
  for (guint i = 0; problem == NULL && i < config->n_codecs; i++) {
    const HarkMediaCodec *c = &config->codecs[i];
    guint pt = c->payload_type ? c->payload_type : c->iface->default_payload_type;
    if (c->iface == NULL || c->iface->version < 1)
      problem = "a codec without an interface table";
    else if (!payload_type_usable(pt))
      problem = "a payload type outside 0-63 and 96-127, or the keep-alive's (20)";
    else if (pt == dtmf_pt)
      problem = "a codec with the DTMF payload type";
    for (guint j = 0; problem == NULL && j < i; j++) {
      const HarkMediaCodec *d = &config->codecs[j];
      if ((d->payload_type ? d->payload_type : d->iface->default_payload_type) == pt)
        problem = "two codecs with one payload type";
    }
  }
  if (problem != NULL)
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "media session: %s", problem);
  return problem == NULL;
}

static gboolean
build(HarkMediaSession *s, const HarkMediaConfig *config, GError **error)
{
  s->pipeline = gst_pipeline_new("media");
  /* The system clock, not a sound card's: sending, the jitter buffer and RTCP keep wall
   * time, and source and sink each follow it on their own (a capture clock would make
   * the playback side chase it, with audible re-syncs whenever the two drift). */
  s->clock = gst_system_clock_obtain();
  gst_pipeline_use_clock(GST_PIPELINE(s->pipeline), s->clock);
  GstElement *source =
    hark_media_source_new(config->source, s->pulse_buffer_ms, &s->capture, error);
  if (source == NULL)
    return FALSE;
  gst_bin_add(GST_BIN(s->pipeline), source);
  if (g_str_has_prefix(config->source, "port:"))
    s->port = hark_media_port_attach_session(config->source, s);
  s->source_tail = gst_element_get_static_pad(source, "src");
  gst_pad_add_probe(s->source_tail, GST_PAD_PROBE_TYPE_BUFFER, hark_media_session_on_source, s,
                    NULL);
  GstElement *sink = hark_media_sink_new(config->sink, s->pulse_buffer_ms, &s->wav, error);
  if (sink == NULL)
    return FALSE;
  gst_bin_add(GST_BIN(s->pipeline), sink);
  s->playback = gst_bin_get_by_name(GST_BIN(sink), "pulse-playback");
  /* The sound server's sink needs each buffer its output delay before it is due: the
   * policy would add that after its first second, in which the audio would come late. */
  if (s->playback != NULL)
    s->jitter.target_ms =
      CLAMP(s->jitter.target_ms + (guint)(hark_media_pulse_sink_delay(s->playback) / GST_MSECOND),
            s->jitter.min_ms, s->jitter.max_ms);
  /* The playback latency is the receive branch's alone: the jitter buffer's delay, which
   * the policy moves (decoding and the way to the sink are in what it measures). Left to
   * itself the pipeline would take the largest latency of any branch, and the send
   * branch's (capture, encoder look-ahead) would delay playback as well. */
  s->latency = s->jitter.target_ms * GST_MSECOND;
  gst_pipeline_set_latency(GST_PIPELINE(s->pipeline), s->latency);
  if ((s->rtpbin = hark_media_element_make("rtpbin", error)) == NULL ||
      (s->funnel = hark_media_element_make("funnel", error)) == NULL ||
      (s->rtp_out = make_appsink(s, error)) == NULL ||
      (s->rtcp_out = make_appsink(s, error)) == NULL ||
      (s->rtp_in = make_packet_src("rtp_in", "application/x-rtp")) == NULL ||
      (s->rtcp_in = make_packet_src("rtcp_in", "application/x-rtcp")) == NULL)
    return FALSE;
  GstElement *all[] = { s->rtpbin, s->funnel, s->rtp_out, s->rtcp_out, s->rtp_in, s->rtcp_in };
  for (guint i = 0; i < G_N_ELEMENTS(all); i++)
    gst_bin_add(GST_BIN(s->pipeline), all[i]);
  /* The RTCP sender must not wait for the first RTP packet's clock sync. */
  g_object_set(s->rtcp_out, "sync", FALSE, NULL);

  g_object_set(s->rtpbin, "latency", s->jitter.target_ms, "do-lost", TRUE, "drop-on-latency", TRUE,
               NULL);
  g_signal_connect(s->rtpbin, "new-jitterbuffer",
                   G_CALLBACK(hark_media_session_on_new_jitterbuffer), s);
  g_signal_connect(s->rtpbin, "request-pt-map", G_CALLBACK(hark_media_session_on_request_pt_map),
                   s);
  g_signal_connect(s->rtpbin, "pad-added", G_CALLBACK(hark_media_session_on_pad_added), s);

  /* The send chain first, so rtpbin's send pads exist to link the appsinks to. */
  if (!hark_media_send_chain_install(s, 0, error))
    return FALSE;
  if (!link_pads(s->rtpbin, "send_rtp_src_0", s->rtp_out, "sink", error) ||
      !link_pads(s->rtpbin, "send_rtcp_src_0", s->rtcp_out, "sink", error) ||
      !link_pads(s->rtp_in, "src", s->rtpbin, "recv_rtp_sink_0", error) ||
      !link_pads(s->rtcp_in, "src", s->rtpbin, "recv_rtcp_sink_0", error) ||
      !link_pads(s->funnel, "src", sink, "sink", error))
    return FALSE;
  g_autoptr(GstPad) decrypted = gst_element_get_static_pad(s->rtp_in, "src");
  gst_pad_add_probe(decrypted, GST_PAD_PROBE_TYPE_BUFFER, hark_media_session_on_decrypted_rtp, s,
                    NULL);
  g_autoptr(GstPad) decrypted_rtcp = gst_element_get_static_pad(s->rtcp_in, "src");
  gst_pad_add_probe(decrypted_rtcp, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                    hark_media_session_on_decrypted_rtcp, s, NULL);
  g_autoptr(GstPad) played = gst_element_get_static_pad(s->funnel, "src");
  gst_pad_add_probe(played, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                    hark_media_session_on_played, s, NULL);

  /* RTCP once a second rather than every 5 s: adaptation and statistics follow sooner,
   * for about 100 bytes a second each way. */
  GObject *rtp_session = NULL;
  g_signal_emit_by_name(s->rtpbin, "get-internal-session", 0, &rtp_session);
  if (rtp_session != NULL) {
    g_object_set(rtp_session, "rtcp-min-interval", (guint64)GST_SECOND, NULL);
    hark_media_report_install(s, rtp_session);
    g_object_unref(rtp_session);
  }
  return TRUE;
}

static gboolean
on_bus_message(GstBus *bus, GstMessage *message, gpointer data)
{
  HarkMediaSession *s = data;
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    g_autoptr(GError) error = NULL;
    g_autofree char *debug = NULL;
    gst_message_parse_error(message, &error, &debug);
    g_warning("media: %s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(message)), error->message);
    s->failed = TRUE;
  }
  return G_SOURCE_CONTINUE;
}

HarkMediaSession *
hark_media_session_new(const HarkMediaConfig *config, GError **error)
{
  if (!hark_media_gst_init(error) || !check_config(config, error)) {
    hark_media_transport_free(config->transport);
    return NULL;
  }
  HarkMediaSession *s = g_new0(HarkMediaSession, 1);
  g_mutex_init(&s->lock);
  s->n_codecs = config->n_codecs;
  s->codecs = g_new0(HarkMediaCodec, config->n_codecs);
  for (guint i = 0; i < config->n_codecs; i++) {
    HarkMediaCodec *c = &s->codecs[i];
    *c = config->codecs[i];
    c->name = g_strdup(c->name ? c->name : c->iface->encoding_name);
    c->settings = c->settings ? g_variant_ref_sink(c->settings)
                              : g_variant_ref_sink(g_variant_new("a{sv}", NULL));
    if (c->payload_type == 0)
      c->payload_type = c->iface->default_payload_type;
  }
  s->transport = config->transport;
  s->suite = config->srtp_suite;
  /* The lengths are checked above (check_config); only OpenSSL could fail here. */
  s->srtp_send = hark_srtp_new(s->suite, config->send_key, TRUE);
  s->srtp_receive = hark_srtp_new(s->suite, config->receive_key, FALSE);
  s->receive_key = g_bytes_ref(config->receive_key);
  s->ssrc = config->ssrc ? config->ssrc : g_random_int();
  if (config->jitter_ms)
    hark_media_jitter_init(&s->jitter, config->jitter_ms, config->jitter_ms, config->jitter_ms);
  else
    hark_media_jitter_init(&s->jitter, config->jitter_start_ms ? config->jitter_start_ms : 20,
                           config->jitter_min_ms ? config->jitter_min_ms : 10,
                           config->jitter_max_ms ? config->jitter_max_ms : 200);
  gst_segment_init(&s->play_segment, GST_FORMAT_UNDEFINED);
  s->pulse_buffer_ms = config->pulse_buffer_ms ? config->pulse_buffer_ms : 10;
  s->keepalive_ms = config->keepalive_ms ? config->keepalive_ms : 3000;
  s->silence_ms = config->silence_ms ? config->silence_ms : 7000;
  s->dtmf_pt = config->dtmf_payload_type ? config->dtmf_payload_type : 101;
  s->dtmf_queue = g_string_new(NULL);
  s->dtmf_heard = g_string_new(NULL);
  s->dtmf_next_pts = GST_CLOCK_TIME_NONE;
  s->play_end = GST_CLOCK_TIME_NONE;
  s->conceal_end = GST_CLOCK_TIME_NONE;
  s->prime_until = GST_CLOCK_TIME_NONE;
  s->in_clock_rate = s->codecs[0].iface->clock_rate;
  s->context = g_main_context_ref_thread_default();
  s->paced = g_str_has_prefix(config->source, "file:");
  s->next_seq = g_random_int_range(0, 0x8000); /* RFC 3550: random start */
  if (s->srtp_send == NULL || s->srtp_receive == NULL) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "media session: SRTP could not be set up (OpenSSL refused the keys)");
    hark_media_session_free(s);
    return NULL;
  }
  if (!build(s, config, error)) {
    hark_media_session_free(s);
    return NULL;
  }
  return s;
}

static void
no_sound_error(GError **error, const char *who, const char *cause)
{
  g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_NO_SOUND,
              "no sound server (%s: %s): this machine has no PulseAudio or PipeWire to play "
              "and record through; set the source (media.source, or --source) to \"tone\", "
              "\"silence\" or \"file:PATH\" and the sink (media.sink, or --sink) to \"null\" or "
              "\"file:PATH\", or start a sound server",
              who, cause);
}

/* A sound server that is not there fails the state change at once (playback connects
 * on the way to PAUSED); say what to configure instead. */
static void
explain_failure(HarkMediaSession *s, GError **error)
{
  g_autoptr(GstBus) bus = gst_element_get_bus(s->pipeline);
  g_autoptr(GstMessage) message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  g_autoptr(GError) cause = NULL;
  if (message != NULL)
    gst_message_parse_error(message, &cause, NULL);
  const char *who = message ? GST_OBJECT_NAME(GST_MESSAGE_SRC(message)) : "";
  if (g_str_has_prefix(who, "pulse"))
    no_sound_error(error, who, cause ? cause->message : "could not connect");
  else
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER, "media pipeline: %s%s%s", who,
                cause ? ": " : "could not start", cause ? cause->message : "");
}

gboolean
hark_media_session_start(HarkMediaSession *s, GError **error)
{
  if (s->started)
    return TRUE;
  g_autoptr(GstBus) bus = gst_element_get_bus(s->pipeline);
  g_autoptr(GError) capture_error = NULL;
  if (s->capture != NULL && !hark_media_pulse_capture_start(s->capture, &capture_error)) {
    no_sound_error(error, "capture", capture_error->message);
    return FALSE;
  }
  if (gst_element_set_state(s->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    hark_media_pulse_capture_stop(s->capture);
    explain_failure(s, error);
    gst_element_set_state(s->pipeline, GST_STATE_NULL);
    return FALSE;
  }
  s->bus_watch = gst_bus_add_watch(bus, on_bus_message, s);
  hark_media_transport_start(s->transport, hark_media_session_on_packet_in, s);
  s->tick = g_timeout_add_seconds(1, hark_media_session_on_tick, s);
  hark_media_session_events_start(s);
  s->started = TRUE;
  return TRUE;
}

void
hark_media_session_free(HarkMediaSession *s)
{
  if (s == NULL)
    return;
  if (s->tick)
    g_source_remove(s->tick);
  hark_media_session_stop_shrink(s);
  if (s->bus_watch)
    g_source_remove(s->bus_watch);
  hark_media_pulse_capture_stop(s->capture);
  if (s->pipeline != NULL) {
    gst_element_set_state(s->pipeline, GST_STATE_NULL);
    gst_object_unref(s->pipeline);
  }
  /* After the streaming threads stopped: they schedule the delivery of digits. */
  hark_media_session_events_stop(s);
  hark_media_port_detach_session(s->port, s);
  gst_clear_object(&s->rtp_send_sink);
  g_free(s->signature);
  g_clear_object(&s->source_tail);
  gst_clear_object(&s->jitterbuffer);
  gst_clear_object(&s->playback);
  gst_clear_object(&s->clock);
  hark_media_transport_free(s->transport);
  hark_media_wav_free(s->wav);
  hark_media_pulse_capture_free(s->capture);
  for (guint i = 0; i < s->n_codecs; i++) {
    g_free((char *)s->codecs[i].name);
    g_variant_unref(s->codecs[i].settings);
  }
  g_free(s->codecs);
  hark_srtp_free(s->srtp_send);
  hark_srtp_free(s->srtp_receive);
  g_clear_pointer(&s->receive_key, g_bytes_unref);
  g_main_context_unref(s->context);
  g_string_free(s->dtmf_queue, TRUE);
  g_string_free(s->dtmf_heard, TRUE);
  g_mutex_clear(&s->lock);
  g_free(s);
}

gboolean
hark_media_session_set_codec_setting(HarkMediaSession *s, const char *key, GVariant *value,
                                     GError **error)
{
  const HarkMediaCodec *codec = &s->codecs[s->current];
  g_autoptr(GVariant) sunk = g_variant_ref_sink(value);
  if (g_atomic_int_get(&s->swapping)) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "a codec swap is in progress; change the setting after it");
    return FALSE;
  }
  if (codec->iface->set_live == NULL || s->encoder == NULL) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "codec %s has no settings that change while running", codec->name);
    return FALSE;
  }
  return codec->iface->set_live(codec->instance, G_OBJECT(s->encoder), key, sunk, error);
}

const HarkRegistration *
hark_media_codec_choose(GPtrArray *registrations, const char *const *preference, GError **error)
{
  for (guint p = 0; preference != NULL && preference[p] != NULL; p++)
    for (guint i = 0; registrations != NULL && i < registrations->len; i++) {
      const HarkRegistration *r = registrations->pdata[i];
      if (r->kind == HARK_KIND_CODEC && g_str_equal(r->name, preference[p]))
        return r;
    }
  if ((preference == NULL || preference[0] == NULL) && registrations != NULL &&
      registrations->len > 0)
    return registrations->pdata[0];
  g_autofree char *wanted = preference ? g_strjoinv(", ", (char **)preference) : g_strdup("any");
  g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
              "no codec plugin registers any of: %s (is the codec plugin loaded?)", wanted);
  return NULL;
}

/* ---- receiving carried over to a session made again --------------------------------------- */

struct _HarkMediaReceiving {
  HarkMediaSrtpSuite suite;
  GBytes *key;
  HarkSrtpWindows *windows;
};

HarkMediaReceiving *
hark_media_session_save_receiving(HarkMediaSession *s)
{
  HarkMediaReceiving *r = g_new0(HarkMediaReceiving, 1);
  r->suite = s->suite;
  r->key = g_bytes_ref(s->receive_key);
  r->windows = hark_srtp_save_windows(s->srtp_receive);
  return r;
}

gboolean
hark_media_session_restore_receiving(HarkMediaSession *s, const HarkMediaReceiving *receiving)
{
  if (receiving->suite != s->suite || !g_bytes_equal(receiving->key, s->receive_key))
    return FALSE;
  hark_srtp_restore_windows(s->srtp_receive, receiving->windows);
  return TRUE;
}

void
hark_media_receiving_free(HarkMediaReceiving *receiving)
{
  if (receiving == NULL)
    return;
  g_bytes_unref(receiving->key);
  hark_srtp_windows_free(receiving->windows);
  g_free(receiving);
}
