/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-adapt.h: the Opus plugin's response to the far end's reports, as a pure function
 * of the reports seen so far (no GStreamer), so that it can be tested report by report.
 *
 * Two kinds of loss are told apart. Random loss (a lossy radio, a busy router) leaves the
 * round trip flat: FEC comes on, with the bitrate raised to what wideband FEC needs
 * (fec_bitrate), the packet time stays.
 * A link too narrow for the stream fills its queue before it drops: the round trip grows
 * (by the time the queue holds) together with the loss, or grows alone. Then FEC goes off
 * (it costs bytes the link does not have) and the stream steps down a ladder: bitrate to
 * min_bitrate, then longer packets (fewer headers: 20 -> 40 -> 60 -> 120 ms), then the
 * bitrate below min_bitrate down to narrow_bitrate in narrowband. It climbs back one rung
 * at a time after a run of clean reports, a run that doubles each time a climb brought
 * the congestion back (hysteresis: it settles instead of oscillating). What the stream
 * sent (HarkCodecFeedback.sent_bitrate) decides what a report proves: silence sends far
 * less than speech, so its clean reports neither climb nor count towards a climb, a
 * queue that drains in it does not stop a descent, and its loss is fitted against what
 * was sent, not against the rung. Reports that go
 * missing on a lossy link (HarkCodecFeedback.missed_s) halve the stream's wire rate
 * every 3 s: the link is too full to pass them. */
#pragma once

#include <hark/codec.h>

G_BEGIN_DECLS

typedef struct {
  int max_bitrate; /* the configured bitrate (or max_bitrate): where a clean link sits */
  int fec_bitrate; /* random loss raises it this far, for FEC (never above on a link
                    * found too narrow); <= max_bitrate: it is not raised */
  int min_bitrate; /* random loss never takes it lower; congestion's first floor */
  int narrow_bitrate; /* a narrow link's floor, below min_bitrate (narrowband) */
  int frame_ms; /* the configured frame: the shortest packet time */
  int max_ptime_ms; /* the longest packet time congestion may reach (<= 120) */
} HarkOpusLimits;

typedef struct {
  /* What the encoder should do now. */
  int bitrate;
  int ptime_ms; /* the packet time: one frame (<= 60 ms) or two 60 ms frames (120) */
  gboolean fec;
  int loss_percent; /* the expected loss told to the encoder (FEC's strength) */
  gboolean narrowband; /* below min_bitrate: narrowband, which SILK codes best there */
  gboolean cbr; /* while narrowed: a constant bitrate (VBR's peaks would overflow the
                 * link's queue; Opus's constrained VBR spends a third more on a tone) */
  /* History. */
  gboolean started;
  guint lossy; /* lossy reports in a row */
  guint heavy; /* reports in a row with more than 40 % lost */
  gboolean stepped; /* the last report stepped down: this one may still count before it */
  double stepped_from; /* the wire rate (bytes/s) before the last step down */
  guint missed_steps; /* steps taken since the last report, for reports that went missing */
  guint clean; /* clean reports in a row */
  guint climb_after; /* clean reports in a row a climb up the ladder needs now */
  gboolean climbed; /* the last change was a climb (congestion after it doubles the wait) */
  double base_rtt_ms; /* the round trip of the empty link; < 0 unknown */
  double base_jitter_ms; /* the far end's lowest jitter report; < 0 unknown */
  double last_queue_ms; /* the queue the last report showed */
  double used_before; /* wire bytes/s the stream sent before the last report; < 0 unknown */
  guint congested_reports; /* in all (a figure for logs and tests) */
  /* Wire bytes/s the far end took while the link was full (its receive reports): the
   * link's rate, which climbs stay below; < 0 when not known. It is the mean over the
   * congested reports in a row that measured it (sum and count; 0 once one was not). */
  double ceiling, ceiling_sum;
  guint ceiling_count;
  guint congested_run; /* congested reports in a row */
  guint ceiling_age; /* reports since it was measured */
  /* What the stream sent (wire bytes/s) over the clean reports of the count towards a
   * climb: sum and count. */
  double streak_sent;
  guint streak_count;
} HarkOpusAdapt;

/* Why the last step changed what it changed (for the log line). */
typedef enum {
  HARK_OPUS_ADAPT_NOTHING,
  HARK_OPUS_ADAPT_RANDOM_LOSS, /* loss with a flat round trip */
  HARK_OPUS_ADAPT_CONGESTED, /* the link's capacity */
  HARK_OPUS_ADAPT_CLEAN, /* a clean report */
} HarkOpusVerdict;

/* Start at the configured state. */
void hark_opus_adapt_init(HarkOpusAdapt *a, const HarkOpusLimits *limits);

/* One receiver report; returns what the report was judged to say. */
HarkOpusVerdict hark_opus_adapt_step(HarkOpusAdapt *a, const HarkOpusLimits *limits,
                                     const HarkCodecFeedback *feedback);

G_END_DECLS
