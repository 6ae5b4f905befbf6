/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-session-impl.h: the session's state, shared by media-session.c (building,
 * starting, freeing), media-session-receive.c (the transport edge, receive chains),
 * media-session-stats.c (statistics, adaptation), media-session-report.c (the receive
 * report in RTCP), media-send.c (the send chain,
 * codec swap, hold, mute, DTMF) and media-session-events.c (what the owner is told:
 * silence, received digits). */
#pragma once

#include "media-private.h"
#include "media-session.h"
#include "media-srtp.h"

#include <gst/app/gstappsink.h>

struct _HarkMediaSession {
  HarkMediaCodec *codecs; /* copies: names and settings owned */
  guint n_codecs;
  guint current; /* the codec sent */
  HarkMediaTransport *transport;
  HarkMediaSrtpSuite suite;
  HarkSrtp *srtp_send, *srtp_receive; /* this side's key; the far end's */
  GBytes *receive_key; /* the far end's, to tell whether saved receiving may carry over */
  guint32 ssrc;
  guint pulse_buffer_ms, keepalive_ms, silence_ms;
  GMainContext *context; /* the owner's: events are delivered there */
  gboolean paced; /* a file source: the send appsink keeps real time */

  GstClock *clock; /* the pipeline's: the system clock */
  GstElement *jitterbuffer; /* the latest rtpbin made (one per far-end SSRC) */
  GstElement *pipeline, *rtpbin, *funnel;
  GstElement *rtp_out, *rtcp_out, *rtp_in, *rtcp_in;
  GstPad *source_tail; /* 48 kHz mono from the source; the send chain hangs here */
  GstElement *chain[4]; /* the send chain: audioresample, capsfilter, encoder, payloader */
  GstElement *encoder; /* == chain[2] */
  HarkMediaWav *wav;
  HarkMediaPulseCapture *capture; /* a "pulse" source */
  GstElement *playback; /* a "pulse" sink: its output delay counts against the slack */
  guint bus_watch, tick;
  gboolean started, failed, send_error_logged;
  gint swapping; /* atomic: set on the main context, cleared by the streaming
                           * thread once the new chain is in (encoder is valid again) */

  GMutex lock; /* what the streaming threads and the main context share: */
  guint64 packets_sent, bytes_sent, packets_received, bytes_received;
  /* Of the far end's packets that passed SRTP's check: bytes and packets. */
  guint64 bytes_authenticated, packets_authenticated;
  /* The far end's newest receive report (media-session-report.c), how many came, and
   * whether a malformed one was logged. */
  HarkMediaReceiveReport far_report;
  guint64 far_reports;
  gboolean far_report_refused;
  guint64 srtp_in, srtp_out, rtp_received, concealed_samples, played_samples;
  guint64 dropped_malformed, dropped_unknown_pt, dropped_timestamp;
  guint64 keepalives_sent, keepalives_received;
  gboolean hold;
  gint muted; /* atomic: read by the source's streaming thread */
  /* Events: the owner's callbacks, the last authenticated packet from the far end. */
  HarkMediaSessionEvents events;
  gpointer events_data;
  GSource *silence_watch;
  gint64 last_heard;
  gboolean silent_fired;
  /* DTMF (RFC 4733, media-send.c sends, media-session-receive.c receives). */
  guint dtmf_pt;
  GString *dtmf_queue; /* digits still to send */
  gboolean dtmf_active; /* a digit's packets are going out */
  guint8 dtmf_event;
  guint32 dtmf_start_ts; /* its timestamp (every packet of one event carries it) */
  guint dtmf_ends; /* end packets sent of it */
  GstClockTime dtmf_next_pts; /* the next digit starts no earlier */
  guint64 dtmf_sent, dtmf_received;
  HarkMediaDtmfReceiver dtmf_rx;
  GString *dtmf_heard; /* received digits not yet handed to the owner */
  GSource *dtmf_delivery; /* pending on context to hand them over */
  guint in_clock_rate; /* of the codec the far end sends now */
  gboolean dtmf_mapped; /* rtpbin has asked for the DTMF payload type's caps */
  /* The far end's codec changes and the gaps in what played around the last one. */
  const HarkMediaCodec *in_codec;
  gint64 swap_seen_at; /* monotonic us; 0 before one */
  GstClockTime swap_gap; /* the longest gap in what played since then (2 s) */
  GstClockTime play_end; /* running time where the last played buffer ended */
  double level_ref; /* mean square of played samples (a slow average, outside swaps) */
  GstClockTime quiet_run; /* how long what played has been far below level_ref */
  GstClockTime pause_run; /* ... or that, or next to silent: a pause */
  guint shrink_poll; /* while a shrink of the delay waits for a pause (media-jitter.c) */
  /* Bytes each way at the last 6 ticks, for the bitrates over 5 s. */
  struct {
    gint64 at;
    guint64 sent, received;
  } rate_samples[6];
  guint rate_next, rate_count;
  double send_bitrate, receive_bitrate;
  guint rb_seq; /* main context only: the last receiver report handed to the codec */
  /* Main context only: when that report came (or the first tick, or the last tick that
   * sent nothing), with the far end's packets lost and received by then, and our packets
   * sent at the last tick: reports missing on a lossy link (media-session-stats.c). */
  gint64 report_at;
  gint64 lost_at_report;
  guint64 received_at_report, sent_at_tick;
  gint64 feedback_at; /* when the codec was last handed feedback; 0: never */
  guint64 sent_at_feedback; /* bytes_sent then */
  HarkMediaReceiveReport far_used; /* the far end's report the codec was last told of */
  guint64 far_used_count; /* far_reports then; 0: none yet */
  /* Playback timing: the sink pad's segment, the jitter-buffer policy, late buffers. */
  GstSegment play_segment;
  HarkMediaJitter jitter;
  GstClockTime latency; /* the pipeline's, = jitter.target_ms */
  guint64 late_buffers;
  /* Buffers that start before this (stream time) fill or follow a lost packet: late by
   * construction, so the jitter policy does not take them for network jitter. */
  GstClockTime conceal_end;
  gint64 last_keepalive;
  /* Receive check state. */
  gboolean have_last_in;
  guint32 last_in_ssrc, last_in_ts;
  gint64 last_in_time;
  /* Send stamping: sequence numbers and timestamps are ours, not the payloader's, so a
   * new payloader after a swap continues them. */
  guint16 next_seq;
  gboolean have_out, rebase;
  guint32 last_out_ts, ts_offset;
  GstClockTime last_out_pts;
  guint out_clock_rate;
  guint32 last_out_step; /* the last packet's length in timestamp units */
  guint ptime_ms; /* the audio in the last audio packet sent */
  /* A shared encoder (media-shared.c): while following, its packets are sent and the own
   * chain's dropped; after leaving, own packets stamped before prime_until are dropped
   * (they only primed the own encoder), and the rest are stamped the port's lag later.
   * rebase_exact: continue the timestamps right after the last packet. chain_flowing:
   * the own chain has sent since it was put in (rtpbin's send pad has its caps). Under
   * lock, but for rtp_send_sink (set once). */
  gboolean following, rebase_exact, chain_flowing;
  GstClockTime prime_until;
  GstPad *rtp_send_sink;
  /* Main context only: the encoder's settings as text, remade when they changed. */
  gint encoder_generation; /* atomic: bumped by any change of the encoder's properties */
  gint signature_generation;
  char *signature;
  HarkMediaPort *port; /* the source's port ("port:NAME"), which points back here */
};

const HarkMediaCodec *hark_media_session_codec_for_pt(HarkMediaSession *s, guint pt);
GstElement *hark_media_codec_element(const HarkMediaCodec *codec, HarkCodecRole role,
                                     GError **error);
/* media-session-receive.c: the transport edge and the receive chains (callbacks that
 * media-session.c connects while building). */
GstFlowReturn hark_media_session_on_packet_out(GstAppSink *sink, gpointer data);
void hark_media_session_on_packet_in(const guint8 *data, gsize length, gpointer user_data);
GstPadProbeReturn hark_media_session_on_decrypted_rtp(GstPad *pad, GstPadProbeInfo *info,
                                                      gpointer data);
GstPadProbeReturn hark_media_session_on_decrypted_rtcp(GstPad *pad, GstPadProbeInfo *info,
                                                       gpointer data);
GstCaps *hark_media_session_on_request_pt_map(GstElement *rtpbin, guint session, guint pt,
                                              gpointer data);
GstPadProbeReturn hark_media_session_on_played(GstPad *pad, GstPadProbeInfo *info, gpointer data);
void hark_media_session_on_new_jitterbuffer(GstElement *rtpbin, GstElement *jitterbuffer,
                                            guint session, guint ssrc, gpointer data);
void hark_media_session_on_pad_added(GstElement *rtpbin, GstPad *pad, gpointer data);
/* media-session-stats.c: once a second, the adaptation (a main-context timeout). */
gboolean hark_media_session_on_tick(gpointer data);
/* A shrink of the jitter-buffer delay waiting for a pause is dropped (the session ends). */
void hark_media_session_stop_shrink(HarkMediaSession *s);
/* media-session-report.c: the receive report, sent in our RTCP and read from the far
 * end's; what the far end says it took since the report before (< 0: not known). */
void hark_media_report_install(HarkMediaSession *s, GObject *rtp_session);
void hark_media_report_received_rates(HarkMediaSession *s, double *bitrate, double *packet_rate);

/* Make the send chain for codecs[index], add it, link it between source_tail and
 * rtpbin's send_rtp_sink_0 (while building, or with source_tail blocked). */
gboolean hark_media_send_chain_install(HarkMediaSession *s, guint index, GError **error);

/* media-session-events.c: every authenticated packet from the far end (RTP, RTCP,
 * keep-alive) calls this, with s->lock held. */
void hark_media_session_heard(HarkMediaSession *s, gint64 now);
/* With s->lock held: hand digits to the owner soon, on its main context. */
void hark_media_session_dtmf_heard(HarkMediaSession *s, const char *digits, int n);
/* Start watching for silence (from hark_media_session_start), on s->context. */
void hark_media_session_events_start(HarkMediaSession *s);
/* Stop every event source (from hark_media_session_free). */
void hark_media_session_events_stop(HarkMediaSession *s);
/* media-send.c: the probe on source_tail that silences a muted source. */
GstPadProbeReturn hark_media_session_on_source(GstPad *pad, GstPadProbeInfo *info, gpointer data);
