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

/* The adaptive jitter-buffer policy (media-jitter.c). */
typedef struct {
  guint min_ms, max_ms;
  guint target_ms; /* the delay to hold received audio for now */
  gboolean have_slack;
  double worst_slack_ms; /* this tick: the least time a buffer reached the sink early by */
  guint64 late_seen; /* the jitter buffer's late-packet count at the last tick */
  guint calm; /* ticks in a row without a close call */
  guint grown; /* how often it grew */
} HarkMediaJitter;

/* min == max: a fixed delay. */
void hark_media_jitter_init(HarkMediaJitter *j, guint start_ms, guint min_ms, guint max_ms);
/* One buffer reached the sink slack_ms before its playing time (negative: late). */
void hark_media_jitter_observe(HarkMediaJitter *j, double slack_ms);
/* Once a second, with the jitter buffer's count of packets that came after it gave up
 * on them. TRUE when target_ms changed. */
gboolean hark_media_jitter_tick(HarkMediaJitter *j, guint64 late_total);
