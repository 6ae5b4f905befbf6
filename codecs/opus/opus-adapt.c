/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-adapt.c: the Opus plugin's reading of receiver reports (opus-adapt.h says what it
 * tells apart and how it steps). Reports come about once a second; every figure below
 * counts reports, not seconds. */
#include "opus-adapt.h"

#define LOSSY 0.02 /* above: a lossy report */
#define CLEAN 0.01 /* below (and no queue): a clean one */
/* A queue the round trip shows above the empty link's: with loss, this much says the
 * loss is the link's capacity (random loss leaves the round trip where it was); without
 * loss, this much says a queue is building and will drop soon. A tbf or a home router
 * queues hundreds of ms; the jitter of a busy path is tens. */
#define QUEUE_WITH_LOSS_MS 100.0
#define QUEUE_ALONE_MS 250.0
#define QUEUE_CLEAN_MS 50.0
/* A queue shrinking this much from one report to the next is draining: the last step was
 * enough, wait for it rather than step again. */
#define DRAINING_MS 50.0
/* Loss that goes on (more than this many lossy reports in a row) is the link's when it
 * comes with a sign the round trip cannot give: a call that
 * starts on a full queue never sees the empty link's round trip (and a full drop-tail
 * queue can keep every sender report of ours from the far end for many seconds, leaving
 * no round trip at all). The signs: the far end's jitter up this much, the loss heavy,
 * or a round trip no path without a queue has. */
#define LOSSY_IN_A_ROW 3
#define JITTER_RISE_MS 30.0
#define LONG_RTT_MS 600.0
/* This much loss in two reports in a row is the link's whatever the round trip says
 * (random loss that heavy leaves nothing to protect: a lower rate costs it little). A
 * report covers about 50 packets, so 20 % random loss scatters its reports by about 6
 * points: at 25 % here, one report in five was "heavy", and a 20 % lossy path was taken
 * for a narrow one within seconds (6 kbit/s narrowband, STOI 0.67 against baresip's
 * 0.82 in make bench). A link too narrow drops 50-70 %. */
#define HEAVY_LOSS 0.40
/* A report that lost (nearly) everything covers a path that was down, not one too narrow
 * (a full queue passes what the link carries): a relay that died and was replaced, a
 * moment of no network. It tells nothing about the link's rate, and taken as a measure
 * of it (the jump below fits "what got through", i.e. nothing) it sent a call that had
 * just failed over to a new relay to the bottom of the ladder: 6 kbit/s narrowband. */
#define OUTAGE_LOSS 0.95
/* From this much capacity loss on, the loss measures the link: a drop-tail queue passes
 * what it can and drops the rest, so the link takes about (1 - loss) of what is sent.
 * The step goes straight to the rung that fits 90% of that, in one report instead of one
 * rung a report: on a link that drops most packets reports are rare, and the call's ICE
 * consent checks (RFC 7675) cannot wait many of them. */
#define MEASURABLE_LOSS 0.10
#define FIT_MARGIN 0.9
/* The wire cost of a rung, as the estimate uses it: IPv4 20 + UDP 8 + RTP 12 + SRTP tag
 * 10 + Opus's frame count 2 per packet, and a compound SRTCP report a second. */
#define PACKET_OVERHEAD 52
#define RTCP_BYTES_PER_S 150
/* Reports missing this long on a lossy link (the engine's missed_s) halve the stream's
 * wire rate, and again after as long again: 20 kbit/s in 20 ms packets comes down to 60
 * ms packets in 3 s and to the bottom in 6. The link had passed none of either end's
 * reports for 26 s while both ends' 20 ms packets filled it: the step frees it for our
 * reports, the far end steps down on them, and its reports reach us again. */
#define MISSED_S 3
#define MISSED_CUT 0.5
/* A report shows whether a rung fits only if the stream used it since the report before:
 * what it sent (RTP and SRTP, no IP or UDP) at least this share of the rung's rate.
 * Silence in VBR sends far less, DTX or a mute nothing, and so does CBR at 120 ms: the
 * repacketizer that joins two 60 ms frames drops the padding CBR keeps its rate with
 * (padding them back kept the bottom rung at 97 % of a 1.5 KB/s link, whose queue then
 * never drained). Climbing on the clean reports of 30 s of silence took that link to
 * 10.5 kbit/s, which the speech after it overfilled: loss, a queue of over a second, the
 * bottom of the ladder again in the middle of the words (3 calls of 13 in make bench's
 * narrow link, docs/benchmarks.md). The other way round, a queue that drains in silence
 * does not show that the rung the descent reached fits speech. */
#define FILLED_SHARE 0.8
#define IP_UDP_BYTES 28
/* Clean reports before the first climb back up. Each counts only if the stream used its
 * rung, so a climb is a probe of the link with real traffic: 4 of them (8 before reports
 * were checked for that) let a call that fell to the bottom on a 1.5 KB/s link climb two
 * rungs in 10 s of speech (STOI median 0.889 over 10 calls against 0.868 with 8). */
#define CLIMB_FIRST 4
#define CLIMB_MAX 64 /* the longest wait, after climbs that failed again and again */
/* The link's rate, as the far end's receive reports measure it while the link is full
 * (a congested report: a drop-tail queue then passes exactly what the link carries). A
 * climb waits until the rung above fits under this share of it: at 1.5 KB/s the rungs
 * are 9-15 % apart, and one 3 % over the link hid behind tbf's burst for seconds, then
 * built a queue of 600 ms that took 5-8 s to drain (30 s of speech, STOI 0.57-0.62). One
 * report's figure is coarse (8 packets of 120 ms a second: one more or less in its span
 * is 12 %), so the ceiling is the mean of a congestion's reports, and what the stream
 * sends is the mean over the clean run a climb counts. Clean reports never raise it:
 * each one's figure is as coarse, and taking the highest let a call climb 3 rungs over
 * the link. The measure is forgotten after CEILING_REPORTS, so that a link that widened
 * is found again. */
#define CEILING_SHARE 0.95
#define CEILING_REPORTS 60
#define PTIME_MAX 120 /* RFC 6716: an Opus packet holds at most 120 ms */

void
hark_opus_adapt_init(HarkOpusAdapt *a, const HarkOpusLimits *l)
{
  *a = (HarkOpusAdapt){
    .bitrate = l->max_bitrate,
    .ptime_ms = l->frame_ms,
    .climb_after = CLIMB_FIRST,
    .base_rtt_ms = -1,
    .base_jitter_ms = -1,
    .last_queue_ms = -1,
    .used_before = -1,
    .ceiling = -1,
    .started = TRUE,
  };
}

/* Whether the stream is below its normal floor: packets longer than configured, or the
 * bitrate below min_bitrate. There FEC stays off and climbing waits for clean runs. */
static gboolean
narrowed(const HarkOpusAdapt *a, const HarkOpusLimits *l)
{
  return a->ptime_ms > l->frame_ms || a->bitrate < l->min_bitrate;
}

/* The next longer packet time: 10 -> 20 -> 40 -> 60 -> 120 ms (at most max_ptime_ms). */
static int
longer_ptime(int ptime, int max)
{
  int next = ptime < 20 ? 20 : ptime < 40 ? 40 : ptime < 60 ? 60 : PTIME_MAX;
  return MIN(next, MIN(max, PTIME_MAX));
}

/* The next shorter one, not below the configured frame. */
static int
shorter_ptime(int ptime, int frame)
{
  int next = ptime > 60 ? 60 : ptime > 40 ? 40 : ptime > 20 ? 20 : 10;
  return MAX(next, frame);
}

/* Bytes/s a rung costs on the wire (the estimate above). */
static double
wire_rate(const HarkOpusAdapt *a)
{
  return a->bitrate / 8.0 + 1000.0 / a->ptime_ms * PACKET_OVERHEAD + RTCP_BYTES_PER_S;
}

/* Whether the stream used its rung since the last report (FILLED_SHARE); a sender that
 * does not know what it sent counts as having used it. */
static gboolean
filled(const HarkOpusAdapt *a, const HarkCodecFeedback *fb)
{
  if (fb->sent_bitrate < 0)
    return TRUE;
  double rung = a->bitrate + 1000.0 / a->ptime_ms * (PACKET_OVERHEAD - IP_UDP_BYTES) * 8.0;
  return fb->sent_bitrate >= FILLED_SHARE * rung;
}

/* Wire bytes/s of a stream of bitrate bit/s (RTP and up) at packets a second. */
static double
with_ip_udp(double bitrate, double packets)
{
  return bitrate / 8.0 + packets * IP_UDP_BYTES;
}

/* Bytes/s the stream put on the wire since the last report (IP and UDP added to what the
 * sender counted); < 0 when the sender does not know. The rung's estimate is speech's:
 * silence at 120 ms sends about half of it, and a loss fitted against the estimate takes
 * the link for wider than it is. */
static double
sent_wire_rate(const HarkOpusAdapt *a, const HarkCodecFeedback *fb)
{
  if (fb->sent_bitrate < 0)
    return -1;
  return with_ip_udp(fb->sent_bitrate, 1000.0 / a->ptime_ms);
}

/* Bytes/s of the stream that reached the far end between its last two receive reports
 * (IP and UDP added as for what was sent); < 0 when not known. */
static double
received_wire_rate(const HarkOpusAdapt *a, const HarkCodecFeedback *fb)
{
  if (fb->received_bitrate < 0)
    return -1;
  double packets = fb->received_packet_rate >= 0 ? fb->received_packet_rate : 1000.0 / a->ptime_ms;
  return with_ip_udp(fb->received_bitrate, packets);
}

/* Whether next (the rung above a) fits under the link's measured rate. What next would
 * send is scaled from what a sends now (sent, wire bytes/s; < 0 unknown): the rung's
 * estimate is a guess at the costs, the ratio between two rungs much less so. */
static gboolean
fits_ceiling(const HarkOpusAdapt *a, const HarkOpusAdapt *next, double sent)
{
  if (a->ceiling < 0)
    return TRUE;
  double want = sent >= 0 ? sent * wire_rate(next) / wire_rate(a) : wire_rate(next);
  return want <= a->ceiling * CEILING_SHARE;
}

/* Whether a report measures the link's rate: the link was full for all of its span (the
 * congested report before it said so too: the first may span the moments before the
 * queue filled, and tbf's burst). One whose packets were shorter than the stream's now
 * measures less than the link passes of the longer ones (a link's own headers, which
 * nobody here sees, cost more in short packets: 1.5 KB/s of tbf passed 1,240 bytes/s of
 * IP in 20 ms packets and 1,400 in 120 ms ones): a ceiling too low, which keeps a call a
 * rung lower until it is forgotten or measured again, is the cheaper error. */
static gboolean
measures_link(const HarkOpusAdapt *a, HarkOpusVerdict verdict, double got)
{
  return verdict == HARK_OPUS_ADAPT_CONGESTED && a->congested_run >= 2 && got >= 0;
}

/* The ceiling after this report (got: what reached the far end, bytes/s): the mean of
 * the reports of this congestion that measure the link, forgotten when old. */
static void
follow_ceiling(HarkOpusAdapt *a, double got, HarkOpusVerdict verdict)
{
  if (a->ceiling >= 0 && ++a->ceiling_age > CEILING_REPORTS)
    a->ceiling = -1;
  a->congested_run = verdict == HARK_OPUS_ADAPT_CONGESTED ? a->congested_run + 1 : 0;
  if (a->congested_run == 0)
    a->ceiling_count = 0;
  if (!measures_link(a, verdict, got))
    return;
  if (a->ceiling_count == 0)
    a->ceiling_sum = 0;
  a->ceiling_sum += got;
  a->ceiling_count++;
  a->ceiling = a->ceiling_sum / a->ceiling_count;
  a->ceiling_age = 0;
}

/* One rung down; FALSE at the bottom. */
static gboolean
step_down(HarkOpusAdapt *a, const HarkOpusLimits *l)
{
  if (a->bitrate > l->min_bitrate) {
    a->bitrate = MAX(l->min_bitrate, (int)(a->bitrate * 0.7));
  } else if (longer_ptime(a->ptime_ms, l->max_ptime_ms) > a->ptime_ms) {
    a->ptime_ms = longer_ptime(a->ptime_ms, l->max_ptime_ms);
  } else if (a->bitrate > l->narrow_bitrate) {
    a->bitrate = MAX(l->narrow_bitrate, (int)(a->bitrate * 0.7));
  } else {
    return FALSE;
  }
  return TRUE;
}

/* One rung up, the ladder's reverse: the bitrate back to min_bitrate, then shorter
 * packets. (Above min_bitrate clean reports raise the bitrate a report at a time.) */
static void
climb(HarkOpusAdapt *a, const HarkOpusLimits *l)
{
  if (a->bitrate < l->min_bitrate) /* 15%: a probe the link's queue absorbs for seconds */
    a->bitrate = MIN(l->min_bitrate, (int)(a->bitrate * 1.15));
  else
    a->ptime_ms = shorter_ptime(a->ptime_ms, l->frame_ms);
}

/* The queue the report shows (ms above the lowest round trip seen); < 0 unknown. The
 * lowest round trip drifts up slowly on reports without loss, so that a path that became
 * longer (a relay) is not taken for a queue forever. */
static double
queue_ms(HarkOpusAdapt *a, const HarkCodecFeedback *fb)
{
  if (fb->rtt_ms < 0)
    return -1;
  if (a->base_rtt_ms < 0 || fb->rtt_ms < a->base_rtt_ms)
    a->base_rtt_ms = fb->rtt_ms;
  double queue = fb->rtt_ms - a->base_rtt_ms;
  if (fb->loss_fraction < CLEAN)
    a->base_rtt_ms += queue * 0.05;
  return queue;
}

static gboolean
jitter_rose(HarkOpusAdapt *a, const HarkCodecFeedback *fb)
{
  if (fb->jitter_ms < 0)
    return FALSE;
  if (a->base_jitter_ms < 0 || fb->jitter_ms < a->base_jitter_ms)
    a->base_jitter_ms = fb->jitter_ms;
  return fb->jitter_ms > a->base_jitter_ms + JITTER_RISE_MS;
}

/* Whether this report says the link is too narrow. */
static gboolean
congested(HarkOpusAdapt *a, const HarkCodecFeedback *fb, double queue)
{
  gboolean lossy = fb->loss_fraction > LOSSY;
  gboolean jitter_up = jitter_rose(a, fb);
  if (a->heavy >= 2 || (a->heavy >= 1 && fb->rtt_ms > LONG_RTT_MS))
    return TRUE;
  if (queue >= 0 && ((lossy && queue > QUEUE_WITH_LOSS_MS) || queue > QUEUE_ALONE_MS))
    return TRUE;
  /* Random loss that heavy or that far away is rare; longer packets are then the lesser
   * harm. (Random loss no longer steps the bitrate down to its floor first: it raises it
   * for FEC; the reports in a row are what count.) */
  return lossy && a->lossy > LOSSY_IN_A_ROW &&
         (jitter_up || fb->loss_fraction > HEAVY_LOSS || fb->rtt_ms > LONG_RTT_MS);
}

/* What any sign of a full link does before its step: FEC off, no clean run, and a climb
 * that brought it back makes the next climb wait twice as long. It also counts, so the
 * bitrate is never raised for FEC afterwards. */
static void
mark_congested(HarkOpusAdapt *a)
{
  a->congested_reports++;
  a->clean = 0;
  a->fec = FALSE; /* FEC costs bytes the link does not have */
  a->loss_percent = 0;
  if (a->climbed)
    a->climb_after = MIN(a->climb_after * 2, CLIMB_MAX);
  a->climbed = FALSE;
}

/* The encoder's mode for the rung reached: narrowband CBR below min_bitrate. */
static void
set_mode(HarkOpusAdapt *a, const HarkOpusLimits *l)
{
  a->narrowband = a->bitrate < l->min_bitrate;
  a->cbr = narrowed(a, l);
}

static void
on_congestion(HarkOpusAdapt *a, const HarkOpusLimits *l, const HarkCodecFeedback *fb,
              double queue, double got)
{
  mark_congested(a);
  /* A queue already draining after the last step needs no further step, unless the
   * report still counts loss: light loss takes one rung more (the cheaper error on a link
   * that drops), measurable loss the rung that fits what it measured (below). */
  gboolean draining = a->last_queue_ms >= 0 && queue >= 0 &&
                      queue < a->last_queue_ms - DRAINING_MS && filled(a, fb);
  if (draining && fb->loss_fraction <= LOSSY) {
    a->stepped = FALSE;
    return;
  }
  double before = wire_rate(a);
  if (fb->loss_fraction > MEASURABLE_LOSS) {
    /* The loss measures what was sent when it was counted: a report right after a step,
     * or one whose queue drains, may still count the rung before it. Fitting that rung is
     * never more than the loss says; fitting the current one then would step twice for
     * one loss. (Only one rung a report here left a call at 40 ms packets, 12 kbit/s and
     * 60 % loss for 26 s in make bench: a queue-alone step had just come before its first
     * lossy report, and the next report took that long through the full queue.) */
    gboolean earlier = a->stepped || draining;
    double sent = earlier ? MAX(a->stepped_from, before) : before;
    double used = sent_wire_rate(a, fb);
    if (used >= 0) /* what the stream really sent, over the two reports when earlier */
      sent = MIN(sent, earlier ? MAX(used, a->used_before) : used);
    /* What the far end took is what the link passed (a full queue passes exactly that),
     * when the loss's guess says more: a congestion's first report may count the moments
     * before the queue filled (and tbf's burst), as the guess does not. */
    double passed = sent * (1 - fb->loss_fraction);
    double fits = (got >= 0 ? MIN(got, passed) : passed) * FIT_MARGIN;
    while (wire_rate(a) > fits && step_down(a, l))
      ;
  } else {
    step_down(a, l);
  }
  a->stepped = wire_rate(a) < before;
  if (a->stepped)
    a->stepped_from = before;
}

/* Loss with a flat round trip: FEC, at a bitrate that carries it. Random loss is no
 * reason to send less (the link is not full), and below about 23 kbit/s libopus does
 * not send wideband FEC at all: it narrows the band until FEC fits, or drops it
 * (bench/opus-loss, libopus alone at 10 % loss: STOI 0.913 at 20 kbit/s without FEC,
 * 0.962 at 24 and 0.974 at 28 kbit/s with it; stepping down to 12 kbit/s with FEC
 * "on", as this did before, scored 0.905). So the bitrate goes up to fec_bitrate, unless
 * this call has met congestion: a link that was once found full is not filled more. */
static void
on_random_loss(HarkOpusAdapt *a, const HarkOpusLimits *l, const HarkCodecFeedback *fb)
{
  a->clean = 0;
  if (narrowed(a, l))
    return; /* the link was found narrow: FEC would cost what it does not have */
  a->fec = TRUE;
  a->loss_percent = MIN((int)(fb->loss_fraction * 100 + 0.5), 100);
  if (a->congested_reports == 0)
    a->bitrate = MAX(a->bitrate, l->fec_bitrate);
}

/* A clean report: FEC off; back down to max_bitrate after FEC's raise. Upwards (a climb,
 * or the bitrate back up towards max_bitrate) only on reports of a stream that used its
 * rung; the others neither climb nor count towards a climb. */
static void
on_clean(HarkOpusAdapt *a, const HarkOpusLimits *l, const HarkCodecFeedback *fb)
{
  gboolean used = filled(a, fb);
  HarkOpusAdapt next = *a;
  a->fec = FALSE;
  a->loss_percent = 0;
  if (!narrowed(a, l)) {
    next.bitrate = MIN(l->max_bitrate, (int)(a->bitrate * 1.1));
    if (next.bitrate < a->bitrate || (used && fits_ceiling(a, &next, sent_wire_rate(a, fb))))
      a->bitrate = next.bitrate;
    return;
  }
  if (!used)
    return;
  if (++a->clean == 1)
    a->streak_sent = a->streak_count = 0;
  double sent = sent_wire_rate(a, fb);
  if (sent >= 0) {
    a->streak_sent += sent;
    a->streak_count++;
  }
  if (a->clean < a->climb_after)
    return;
  climb(&next, l);
  if (!fits_ceiling(a, &next, a->streak_count > 0 ? a->streak_sent / a->streak_count : -1)) {
    a->clean = a->climb_after; /* ready the moment the link is found wider */
    return;
  }
  climb(a, l);
  a->clean = 0;
  a->climbed = TRUE;
}

/* No report for missed_s seconds on a lossy link: a step down every MISSED_S seconds.
 * A report that comes at last may still count the time before the step (stepped). */
static HarkOpusVerdict
on_missed(HarkOpusAdapt *a, const HarkOpusLimits *l, guint missed_s)
{
  if (missed_s < MISSED_S * (a->missed_steps + 1))
    return HARK_OPUS_ADAPT_NOTHING;
  a->missed_steps++;
  mark_congested(a);
  double before = wire_rate(a);
  while (wire_rate(a) > before * MISSED_CUT && step_down(a, l))
    ;
  if (wire_rate(a) < before) {
    a->stepped = TRUE;
    a->stepped_from = before;
  }
  set_mode(a, l);
  return HARK_OPUS_ADAPT_CONGESTED;
}

HarkOpusVerdict
hark_opus_adapt_step(HarkOpusAdapt *a, const HarkOpusLimits *l, const HarkCodecFeedback *fb)
{
  if (!a->started)
    hark_opus_adapt_init(a, l);
  if (fb->missed_s > 0)
    return on_missed(a, l, fb->missed_s);
  a->missed_steps = 0;
  if (fb->loss_fraction >= OUTAGE_LOSS) {
    a->heavy = 0; /* nor does it pair with the report after it */
    a->clean = 0;
    return HARK_OPUS_ADAPT_NOTHING;
  }
  a->lossy = fb->loss_fraction > LOSSY ? MIN(a->lossy + 1, 1000) : 0;
  a->heavy = fb->loss_fraction > HEAVY_LOSS ? MIN(a->heavy + 1, 1000) : 0;
  gboolean stepped = a->stepped;
  a->stepped = FALSE;
  double queue = queue_ms(a, fb);
  double got = received_wire_rate(a, fb); /* before a step changes the packet rate */
  HarkOpusVerdict verdict = HARK_OPUS_ADAPT_NOTHING;
  if (congested(a, fb, queue)) {
    a->stepped = stepped; /* on_congestion reads it, and sets it when it steps */
    on_congestion(a, l, fb, queue, got);
    verdict = HARK_OPUS_ADAPT_CONGESTED;
  } else if (fb->loss_fraction > LOSSY) {
    on_random_loss(a, l, fb);
    verdict = HARK_OPUS_ADAPT_RANDOM_LOSS;
  } else if (fb->loss_fraction < CLEAN && (queue < 0 || queue < QUEUE_CLEAN_MS)) {
    on_clean(a, l, fb);
    verdict = HARK_OPUS_ADAPT_CLEAN;
  } else {
    a->clean = 0; /* some loss or some queue: neither a reason to step nor to climb */
  }
  follow_ceiling(a, got, verdict);
  a->last_queue_ms = queue;
  a->used_before = sent_wire_rate(a, fb);
  set_mode(a, l);
  return verdict;
}
