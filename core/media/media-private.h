/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-private.h: what the media engine's files share inside libhark (and the fuzz
 * target compiles in): the RTP/RTCP packet checks at the transport edge. */
#pragma once

#include <glib.h>

typedef enum {
  HARK_MEDIA_PACKET_MALFORMED, /* too short, not version 2, header longer than the packet */
  HARK_MEDIA_PACKET_RTP,
  HARK_MEDIA_PACKET_RTCP, /* RFC 5761: payload-type byte 192-223 */
} HarkMediaPacketKind;

/* Classify one received (still encrypted) packet by its clear-text header. For RTP,
 * *payload_type and *ssrc are set (either may be NULL). Untrusted input of any length. */
HarkMediaPacketKind hark_media_packet_classify(const guint8 *data, gsize length,
                                               guint8 *payload_type, guint32 *ssrc);

/* Is an RTP timestamp step from last to next plausible after elapsed_us of wall time at
 * clock_rate? A sender's clock cannot run more than a few seconds ahead of wall time or
 * back; a jump beyond that is a corrupt or hostile packet that would stall the jitter
 * buffer (it waits for the "missing" time) or flush it. */
gboolean hark_media_timestamp_plausible(guint32 last, guint32 next, guint clock_rate,
                                        gint64 elapsed_us);

/* The receive report's data (media-session-report.c, docs/protocol.md): the far end's
 * clock in ms, and the bytes and packets of ours it had taken by then, each modulo 2^32. */
typedef struct {
  guint32 clock_ms, bytes, packets;
} HarkMediaReceiveReport;

#define HARK_MEDIA_REPORT_BYTES 12

/* The data of an APP packet "HKRX" as the far end sent it: FALSE unless it is exactly
 * HARK_MEDIA_REPORT_BYTES long. Untrusted input of any length. */
gboolean hark_media_report_parse(const guint8 *data, gsize length, HarkMediaReceiveReport *report);

/* The adaptive jitter-buffer policy (media-jitter.c). */
typedef struct {
  guint min_ms, max_ms;
  guint target_ms; /* the delay to hold received audio for now */
  gboolean have_slack;
  double worst_slack_ms; /* this tick: the least time a buffer reached the sink early by */
  guint64 late_seen; /* the jitter buffer's late-packet count at the last tick */
  guint calm; /* ticks in a row without a close call */
  guint grown, shrunk; /* how often it moved (each move is a gap or a cut in the audio) */
  guint ticks, grown_at; /* the ticks so far; the tick of the last growth */
  guint jittery_until; /* a tick: until then, the shrinking keeps the headroom */
  gboolean pause; /* what plays now is a pause (or nothing is known of it) */
  gint64 now_us; /* monotonic, at the last hark_media_jitter_hear() */
  guint pending_ms; /* a shrink waiting for a pause; 0: none */
  gint64 pending_deadline_us; /* it goes in then without one */
  guint loss_floor_ms; /* after a loss: the least delay until loss_until_us */
  gint64 loss_until_us;
  guint raised; /* how often a loss raised the delay to loss_floor_ms */
} HarkMediaJitter;

/* min == max: a fixed delay. */
void hark_media_jitter_init(HarkMediaJitter *j, guint start_ms, guint min_ms, guint max_ms);
/* One buffer reached the sink slack_ms before its playing time (negative: late). */
void hark_media_jitter_observe(HarkMediaJitter *j, double slack_ms);
/* Once a second, with the jitter buffer's count of packets that came after it gave up
 * on them. TRUE when target_ms changed. */
gboolean hark_media_jitter_tick(HarkMediaJitter *j, guint64 late_total);
/* What plays now: a pause or sound (before a tick or a poll). A shrink decided while sound
 * plays waits for a pause, at most 3 s; until told otherwise, everything is a pause. */
void hark_media_jitter_hear(HarkMediaJitter *j, gboolean pause, gint64 now_us);
/* While a shrink waits (pending_ms): TRUE when it went in now. */
gboolean hark_media_jitter_poll(HarkMediaJitter *j);
/* The jitter buffer gave up on packet_ms of audio at now_us (monotonic). For a while the
 * delay is at least a packet time plus headroom, so that the packet after a loss is in
 * the buffer by the time the loss is declared, and the decoder's rebuild of the lost
 * frame from it (Opus's in-band FEC) or its concealment plays in time and whole; at the
 * next tick. A stretch longer than two 20 ms packets (a longer packet time, a burst) sets
 * nothing: the wait for it would cost more delay than it saves. */
void hark_media_jitter_lost(HarkMediaJitter *j, guint packet_ms, gint64 now_us);

/* Where in the sound server's stream the playback writes a buffer that is due at sample
 * `due` (media-pulse-playback.c): right after the previous write (which ended at `end`,
 * if have_end) when it continues it within `align` samples and the delay the session plays
 * with has not moved since, so the two clocks' small differences never cut the audio;
 * otherwise where it is due, so a change of the jitter buffer's delay is heard at once. */
gint64 hark_media_pulse_place(gint64 due, gboolean have_end, gint64 end, gint64 align,
                              gboolean delay_moved);

/* ---- RFC 4733 telephone-events for DTMF (media-dtmf.c) ---------------------------------- */

#define HARK_MEDIA_DTMF_DIGITS "0123456789*#ABCD"
/* The event code of a digit of HARK_MEDIA_DTMF_DIGITS (RFC 4733 §3.2: 0-9, *, #, A-D are
 * 0-15); -1 for any other character. */
int hark_media_dtmf_event(char digit);
/* The 4-byte payload: event, E bit, volume (10: -10 dBm0), duration in timestamp units. */
void hark_media_dtmf_payload(guint8 out[4], guint event, gboolean end, guint duration);

/* What the receiver remembers of the event in progress. */
typedef struct {
  gboolean have;
  guint32 ts; /* an event's identity: the timestamp all its packets carry */
  guint8 event;
  gboolean reported;
} HarkMediaDtmfReceiver;

/* One received telephone-event packet's payload (untrusted, any length) at RTP timestamp
 * ts. Returns how many digits ended with it (0-2, written to digits): the one whose end
 * this is (reported once, however often the end is repeated), and before it one whose
 * end packets were all lost, when a newer event starts. -1 for a payload that is not a
 * DTMF event (shorter than 4 bytes, an event code above 15): dropped and counted. Packets
 * of an event older than the one in progress (reordered repeats) report nothing. */
int hark_media_dtmf_receive(HarkMediaDtmfReceiver *rx, guint32 ts, const guint8 *payload,
                            gsize length, char digits[2]);
