/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-opus-adapt.c: the Opus plugin's reading of receiver reports (codecs/opus/
 * opus-adapt.c), fed report sequences by hand: random loss must not lengthen packets, a
 * link too narrow must, and the way back up must wait and not oscillate. */
#include "opus-adapt.h"

#include <glib.h>

static const HarkOpusLimits limits = {
  .max_bitrate = 20000,
  .fec_bitrate = 28000,
  .min_bitrate = 12000,
  .narrow_bitrate = 6000,
  .frame_ms = 20,
  .max_ptime_ms = 120,
};

static HarkCodecFeedback
report(double loss, double rtt_ms, double jitter_ms)
{
  /* What was sent is not known: every clean report counts, as before interface 3; nor
   * what arrived, as before interface 4. */
  return (HarkCodecFeedback){ .loss_fraction = loss,
                              .rtt_ms = rtt_ms,
                              .jitter_ms = jitter_ms,
                              .sent_bitrate = -1,
                              .received_bitrate = -1,
                              .received_packet_rate = -1 };
}

/* A clean report of a stream that sent sent_bitrate since the report before. */
static HarkOpusVerdict
feed_sent(HarkOpusAdapt *a, double sent_bitrate)
{
  HarkCodecFeedback fb = report(0, 42, 5);
  fb.sent_bitrate = sent_bitrate;
  return hark_opus_adapt_step(a, &limits, &fb);
}

static HarkOpusVerdict
feed(HarkOpusAdapt *a, double loss, double rtt_ms, double jitter_ms)
{
  HarkCodecFeedback fb = report(loss, rtt_ms, jitter_ms);
  return hark_opus_adapt_step(a, &limits, &fb);
}

/* A link at its narrowest: the queue full (a round trip 900 ms above the empty link's)
 * and half the packets dropped, until the stream is at the bottom of the ladder. */
static guint
squeeze(HarkOpusAdapt *a)
{
  guint reports = 0;
  while ((a->ptime_ms < 120 || a->bitrate > 6000) && reports < 50) {
    feed(a, 0.5, 940, 15);
    reports++;
  }
  return reports;
}

/* A stream squeezed to the bottom of the ladder (120 ms, 6 kbit/s) by a full link. */
static void
start_at_bottom(HarkOpusAdapt *a)
{
  hark_opus_adapt_init(a, &limits);
  feed(a, 0, 40, 5);
  squeeze(a);
}

/* 5% random loss on a path of 40 ms with its jitter wandering 5-35 ms: FEC on, the
 * bitrate up to fec_bitrate (libopus sends no wideband FEC below about 23 kbit/s), and
 * the packet time stays 20 ms. */
static void
test_random_loss_keeps_ptime(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  GRand *rand = g_rand_new_with_seed(5);
  for (int i = 0; i < 120; i++) {
    double loss = g_rand_double_range(rand, 0.03, 0.07);
    double rtt = 40 + g_rand_double_range(rand, -5, 25);
    g_assert_cmpint(feed(&a, loss, rtt, g_rand_double_range(rand, 5, 35)), ==,
                    HARK_OPUS_ADAPT_RANDOM_LOSS);
    g_assert_cmpint(a.ptime_ms, ==, 20);
    g_assert_cmpint(a.bitrate, ==, 28000);
  }
  g_rand_free(rand);
  g_assert_true(a.fec);
  g_assert_cmpint(a.loss_percent, >=, 3);
  g_assert_false(a.narrowband);
  g_assert_false(a.cbr);
  g_assert_cmpuint(a.congested_reports, ==, 0);
}

/* 20% random loss, each report of about 50 packets scattered around it (10-35%), the
 * round trip flat: still random loss, however long it lasts; no report of it is the
 * "heavy" loss of a link too narrow. */
static void
test_random_loss_twenty_percent(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  GRand *rand = g_rand_new_with_seed(20);
  for (int i = 0; i < 300; i++) {
    feed(&a, g_rand_double_range(rand, 0.10, 0.35), 40 + g_rand_double_range(rand, -5, 25),
         g_rand_double_range(rand, 5, 35));
    g_assert_cmpint(a.ptime_ms, ==, 20);
    g_assert_cmpint(a.bitrate, ==, 28000);
  }
  g_rand_free(rand);
  g_assert_true(a.fec);
  g_assert_false(a.narrowband);
  g_assert_cmpuint(a.congested_reports, ==, 0);
}

/* The path goes down for a few seconds (a relay dies; the call moves to another): the
 * reports that come around it say everything was lost, then half, then nothing. That is
 * an outage, not a link too narrow: the packet time and the wideband bitrate stay. */
static void
test_outage_is_not_narrow(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  for (int i = 0; i < 5; i++)
    feed(&a, 0, 2, 1);
  const double around[] = { 0.5, 255.0 / 256, 255.0 / 256, 0.6, 0.3, 0 };
  for (guint i = 0; i < G_N_ELEMENTS(around); i++) {
    g_assert_cmpint(feed(&a, around[i], 3, 2), !=, HARK_OPUS_ADAPT_CONGESTED);
    g_assert_cmpint(a.ptime_ms, ==, 20);
    g_assert_cmpint(a.bitrate, >=, 12000);
  }
  g_assert_false(a.narrowband);
  g_assert_cmpuint(a.congested_reports, ==, 0);
}

/* The same loss with no round trip known (no sender report of ours answered) and a
 * steady jitter: still random loss. */
static void
test_random_loss_without_rtt(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  for (int i = 0; i < 60; i++)
    feed(&a, 0.05, -1, 20);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(a.bitrate, ==, 28000);
  g_assert_true(a.fec);
}

/* When the loss stops, FEC goes off and the bitrate is the configured one again at the
 * first clean report: what FEC cost is spent only while packets are lost. */
static void
test_random_loss_ends(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  for (int i = 0; i < 10; i++)
    feed(&a, 0.1, 40, 10);
  g_assert_cmpint(a.bitrate, ==, 28000);
  g_assert_cmpint(feed(&a, 0, 40, 10), ==, HARK_OPUS_ADAPT_CLEAN);
  g_assert_false(a.fec);
  g_assert_cmpint(a.bitrate, ==, 20000);
}

/* A call that met congestion once is never raised for FEC again, even after it climbed
 * back: the link was seen full at less. */
static void
test_no_raise_after_congestion(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 40, 5);
  g_assert_cmpint(feed(&a, 0.2, 900, 20), ==, HARK_OPUS_ADAPT_CONGESTED);
  for (int i = 0; i < 400; i++)
    feed(&a, 0, 40, 5);
  g_assert_cmpint(a.bitrate, ==, 20000);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint(feed(&a, 0.05, 40, 5), ==, HARK_OPUS_ADAPT_RANDOM_LOSS);
  g_assert_true(a.fec);
  g_assert_cmpint(a.bitrate, <=, 20000);
}

/* The link fills: the round trip climbs by the queue and the loss follows. FEC goes off at
 * once, and the ladder goes down: bitrate to min_bitrate, then 40, 60 and 120 ms packets,
 * then the bitrate to narrow_bitrate in narrowband at a constant bitrate. */
static void
test_capacity_loss_lengthens(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  for (int i = 0; i < 3; i++)
    feed(&a, 0, 40, 5);
  g_assert_cmpint(feed(&a, 0.3, 700, 40), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_false(a.fec);
  /* 30% lost: the link takes about 70% of 20 kbit/s in 20 ms packets (5.4 KB/s with the
   * headers), so the first step goes straight past min_bitrate to longer packets. */
  g_assert_cmpint(a.bitrate, ==, 12000);
  g_assert_cmpint(a.ptime_ms, >=, 40);
  guint reports = squeeze(&a) + 1;
  g_assert_cmpint(a.ptime_ms, ==, 120);
  g_assert_cmpint(a.bitrate, ==, 6000);
  g_assert_true(a.narrowband);
  g_assert_true(a.cbr);
  g_assert_false(a.fec);
  g_test_message("at the bottom after %u reports", reports);
  g_assert_cmpuint(reports, <=, 8);
  /* The bottom holds: more of the same changes nothing. */
  feed(&a, 0.5, 940, 15);
  g_assert_cmpint(a.ptime_ms, ==, 120);
  g_assert_cmpint(a.bitrate, ==, 6000);
}

/* A link that drops 70% (20 ms packets at 20 kbit/s into 1.5 KB/s): the second report
 * that says so is enough to reach the rung that fits (120 ms at 6 kbit/s, about 1.4 KB/s
 * on the wire), with no round trip known; the report after it, which still counts the
 * loss from before the step, takes no second jump. */
static void
test_capacity_jump(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  g_assert_cmpint(feed(&a, 0.7, -1, 10), ==, HARK_OPUS_ADAPT_RANDOM_LOSS);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(feed(&a, 0.7, -1, 10), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.ptime_ms, ==, 120);
  g_assert_cmpint(a.bitrate, <=, 8400);
  int bitrate = a.bitrate;
  feed(&a, 0.6, 1170, 10);
  g_assert_cmpint(a.bitrate, >=, MIN(bitrate, 6000));
  g_assert_cmpint(a.bitrate, >=, 6000);
}

/* What a caller read in make bench on a link of 1.5 KB/s each way (G_MESSAGES_DEBUG=
 * hark-opus): a clean report, then the first report after the link narrowed, its queue
 * already 0.5 s long but nothing lost yet (one rung down), then, 9 s later (a full queue
 * passes few reports), 58 % lost at a round trip of 2.8 s. That report measures the
 * link: the stream must fit it then (120 ms packets, narrowband), not a rung at a time,
 * the next report being 26 s away. The reports after it still count the loss from before
 * the jump while the queue drains: no further step. */
static void
test_capacity_jump_after_queue_step(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 1, 1);
  g_assert_cmpint(feed(&a, 0, 526, 10), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.bitrate, ==, 14000);
  g_assert_cmpint(feed(&a, 0.578, 2838, 10), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.ptime_ms, ==, 120);
  g_assert_cmpint(a.bitrate, <=, 8400);
  g_assert_true(a.narrowband);
  int bitrate = a.bitrate;
  feed(&a, 0.523, 2902, 5);
  feed(&a, 0.297, 2169, 25);
  g_assert_cmpint(a.bitrate, ==, bitrate);
  g_assert_cmpint(a.ptime_ms, ==, 120);
}

/* No report for missed_s seconds on a lossy link (the engine's word for it). */
static HarkOpusVerdict
missed(HarkOpusAdapt *a, guint seconds)
{
  HarkCodecFeedback fb = { .loss_fraction = 0, .rtt_ms = 846, .jitter_ms = 13,
                           .missed_s = seconds, .sent_bitrate = -1, .received_bitrate = -1,
                           .received_packet_rate = -1 };
  return hark_opus_adapt_step(a, &limits, &fb);
}

/* What a callee read in make bench on a link of 1.5 KB/s each way: the first report after
 * the link narrowed shows a queue (one rung down), then no report at all for the rest of
 * the call (40 s), the link passing none of either end's while both ends' 20 ms packets
 * kept it full. Reports missing that long on a lossy link halve the stream every 3 s:
 * 60 ms packets or longer after 3 s, nothing more until 6, then the bottom; a report that comes at last and
 * still counts the time before takes it no lower; clean reports bring it back up. */
static void
test_capacity_reports_lost(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 1, 1);
  g_assert_cmpint(feed(&a, 0, 846, 13), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(missed(&a, 2), ==, HARK_OPUS_ADAPT_NOTHING);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(missed(&a, 3), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.ptime_ms, >=, 60);
  g_assert_false(a.fec);
  int bitrate = a.bitrate;
  missed(&a, 4);
  missed(&a, 5);
  g_assert_cmpint(a.bitrate, ==, bitrate);
  g_assert_cmpint(missed(&a, 6), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.ptime_ms, ==, 120);
  g_assert_cmpint(a.bitrate, ==, 6000);
  g_assert_true(a.narrowband);
  g_assert_true(a.cbr);
  /* The far end's reports pass again: the queue drains (one still counts loss). */
  feed(&a, 0.55, 1807, 35);
  feed(&a, 0, 840, 46);
  g_assert_cmpint(a.bitrate, ==, 6000);
  for (int i = 0; i < 400; i++)
    feed(&a, 0, 1, 2);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(a.bitrate, ==, 20000);
  g_assert_false(a.narrowband);
  /* A new silence counts from its own start: 3 s again before a step. */
  g_assert_cmpint(missed(&a, 2), ==, HARK_OPUS_ADAPT_NOTHING);
  g_assert_cmpint(a.bitrate, ==, 20000);
}

/* The ladder's order, one rung per report at moderate loss: the bitrate first, then the
 * packet time, the narrowband bitrate last. */
/* Heavy loss with a round trip no queue-free path has: one report is enough. */
static void
test_capacity_first_report(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  g_assert_cmpint(feed(&a, 0.7, 1500, 10), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.ptime_ms, ==, 120);
  /* Heavy loss at a round trip of 200 ms is not yet enough. */
  hark_opus_adapt_init(&a, &limits);
  g_assert_cmpint(feed(&a, 0.7, 200, 10), ==, HARK_OPUS_ADAPT_RANDOM_LOSS);
  g_assert_cmpint(a.ptime_ms, ==, 20);
}

static void
test_ladder_order(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 40, 5);
  int seen_ptime_before_floor = 0;
  for (int i = 0; i < 20; i++) {
    feed(&a, 0.1, 600, 20);
    if (a.ptime_ms > 20 && a.bitrate > 12000)
      seen_ptime_before_floor++;
    if (a.bitrate < 12000)
      g_assert_cmpint(a.ptime_ms, ==, 120);
  }
  g_assert_cmpint(seen_ptime_before_floor, ==, 0);
  g_assert_cmpint(a.ptime_ms, ==, 120);
}

/* A queue without loss yet (a tbf filling): a round trip 300 ms above the empty link's is
 * congestion on its own; 100 ms without loss is not. */
static void
test_queue_alone(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 40, 5);
  g_assert_cmpint(feed(&a, 0, 140, 5), !=, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.bitrate, ==, 20000);
  g_assert_cmpint(feed(&a, 0, 340, 5), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.bitrate, <, 20000);
}

/* A call that starts on a full queue never sees the empty link's round trip: heavy loss
 * that goes on with the bitrate at its floor is the link's, round trip or not. */
static void
test_starts_congested(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  for (int i = 0; i < 12; i++)
    feed(&a, 0.65, i < 4 ? -1 : 1180, 8);
  g_assert_cmpint(a.ptime_ms, >, 20);
  g_assert_false(a.fec);
}

/* After a step the queue drains: a report with the queue shrinking and no loss brings no
 * further step. */
static void
test_draining_waits(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 40, 5);
  feed(&a, 0.2, 900, 20);
  int bitrate = a.bitrate, ptime = a.ptime_ms;
  g_assert_cmpint(feed(&a, 0, 700, 20), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.bitrate, ==, bitrate);
  g_assert_cmpint(a.ptime_ms, ==, ptime);
}

/* Random loss on a link found narrow: FEC stays off (it would cost what the link lacks). */
static void
test_no_fec_when_narrow(void)
{
  HarkOpusAdapt a;
  start_at_bottom(&a);
  g_assert_cmpint(feed(&a, 0.05, 45, 10), ==, HARK_OPUS_ADAPT_RANDOM_LOSS);
  g_assert_false(a.fec);
  g_assert_cmpint(a.ptime_ms, ==, 120);
}

/* Clean reports bring the stream back one rung at a time, each after 4 clean reports in a
 * row; a climb that brings the congestion back is undone and the next climb waits twice
 * as long (then 4 times...): the stream settles below the link instead of oscillating.
 * With the link clean for good, it returns to 20 ms packets at 20 kbit/s. */
static void
test_climb_with_hysteresis(void)
{
  HarkOpusAdapt a;
  start_at_bottom(&a);
  for (int i = 0; i < 3; i++) {
    g_assert_cmpint(feed(&a, 0, 42, 5), ==, HARK_OPUS_ADAPT_CLEAN);
    g_assert_cmpint(a.bitrate, ==, 6000);
  }
  feed(&a, 0, 42, 5);
  g_assert_cmpint(a.bitrate, >, 6000); /* the 4th: one rung up */
  g_assert_cmpint(a.ptime_ms, ==, 120);
  /* Too much for the link: its queue builds and the rung is given back. */
  g_assert_cmpint(feed(&a, 0.1, 500, 20), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(a.bitrate, ==, 6000);
  g_assert_cmpuint(a.climb_after, ==, 8);
  /* Now 7 clean reports are not enough. */
  for (int i = 0; i < 7; i++)
    feed(&a, 0, 42, 5);
  g_assert_cmpint(a.bitrate, ==, 6000);
  feed(&a, 0, 42, 5);
  g_assert_cmpint(a.bitrate, >, 6000);
  /* Count the changes over a long clean stretch: each rung once, never back down. */
  int last_ptime = a.ptime_ms, last_bitrate = a.bitrate;
  for (int i = 0; i < 400; i++) {
    feed(&a, 0, 42, 5);
    g_assert_cmpint(a.ptime_ms, <=, last_ptime);
    g_assert_cmpint(a.bitrate, >=, last_bitrate);
    last_ptime = a.ptime_ms;
    last_bitrate = a.bitrate;
  }
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(a.bitrate, ==, 20000);
  g_assert_false(a.narrowband);
  g_assert_false(a.cbr);
}

/* What make bench's 1.5 KB/s link showed: at the bottom of the ladder, 30 s of silence
 * before the speech, every report clean. Silence at 120 ms packets sends about 3 kbit/s
 * (RTP and SRTP) where the rung is 6 + 1.6 kbit/s: those reports must not climb (they
 * did, to 10.5 kbit/s, which the speech then overfilled), nor count towards a climb.
 * The speech that follows fills the rung, and 4 of its clean reports climb one rung. */
static void
test_no_climb_in_silence(void)
{
  HarkOpusAdapt a;
  start_at_bottom(&a);
  for (int i = 0; i < 60; i++)
    g_assert_cmpint(feed_sent(&a, 3000), ==, HARK_OPUS_ADAPT_CLEAN);
  g_assert_cmpint(a.bitrate, ==, 6000);
  g_assert_cmpint(a.ptime_ms, ==, 120);
  g_assert_cmpuint(a.clean, ==, 0);
  for (int i = 0; i < 3; i++)
    feed_sent(&a, 7800);
  g_assert_cmpint(a.bitrate, ==, 6000);
  feed_sent(&a, 3000); /* a pause in the speech neither counts nor starts the count again */
  feed_sent(&a, 7800);
  g_assert_cmpint(a.bitrate, >, 6000);
  g_assert_cmpint(a.ptime_ms, ==, 120);
}

/* A report of the stream's loss and round trip that also says what the stream sent. */
static HarkOpusVerdict
feed_lossy_sent(HarkOpusAdapt *a, double loss, double rtt_ms, double sent_bitrate)
{
  HarkCodecFeedback fb = report(loss, rtt_ms, 5);
  fb.sent_bitrate = sent_bitrate;
  return hark_opus_adapt_step(a, &limits, &fb);
}

/* A queue that drains while the stream is silent does not show that the rung reached fits
 * speech: the descent goes on while the queue is still long. (It stopped at 12 kbit/s in
 * silence on make bench's 1.5 KB/s link, and the speech after it overfilled the link.)
 * A stream that used its rung while its queue drained still stops there. */
static void
test_no_drain_in_silence(void)
{
  for (int speaking = 0; speaking <= 1; speaking++) {
    HarkOpusAdapt a;
    hark_opus_adapt_init(&a, &limits);
    feed_lossy_sent(&a, 0, 40, 31000);
    g_assert_cmpint(feed_lossy_sent(&a, 0, 440, 31000), ==, HARK_OPUS_ADAPT_CONGESTED);
    g_assert_cmpint(a.bitrate, ==, 14000);
    /* 100 ms less queue, still 300 ms of it: 20 ms packets of silence send 12 kbit/s
     * (RTP and SRTP) where the rung is 14 + 9.6 kbit/s; speech fills it. */
    g_assert_cmpint(feed_lossy_sent(&a, 0, 340, speaking ? 24000 : 12000), ==,
                    HARK_OPUS_ADAPT_CONGESTED);
    g_assert_cmpint(a.bitrate, ==, speaking ? 14000 : 12000);
  }
}

/* Loss measures the link against what the stream sent, not against the rung's estimate
 * (which is speech's). Half the packets lost at 20 kbit/s in 20 ms packets: speech (31
 * kbit/s of SRTP and SRTCP) or a sender that does not say fits 120 ms packets at 12
 * kbit/s, about 2,100 bytes/s; silence that sent 14 kbit/s fits only the bottom, 1,330. */
static void
test_fit_what_was_sent(void)
{
  const double sent[] = { -1, 31000, 14000 };
  const int fits[] = { 12000, 12000, 6000 };
  for (guint i = 0; i < G_N_ELEMENTS(sent); i++) {
    HarkOpusAdapt a;
    hark_opus_adapt_init(&a, &limits);
    feed_lossy_sent(&a, 0, 40, sent[i]);
    g_assert_cmpint(feed_lossy_sent(&a, 0.5, 940, sent[i]), ==, HARK_OPUS_ADAPT_CONGESTED);
    g_assert_cmpint(a.ptime_ms, ==, 120);
    g_assert_cmpint(a.bitrate, ==, fits[i]);
  }
}

/* Above min_bitrate, clean reports raise the bitrate back towards max_bitrate only while
 * the stream fills it; after FEC's raise the way back down needs nothing. */
static void
test_no_raise_in_silence(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 40, 5);
  g_assert_cmpint(feed(&a, 0, 400, 5), ==, HARK_OPUS_ADAPT_CONGESTED); /* a queue alone */
  g_assert_cmpint(a.bitrate, ==, 14000);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  for (int i = 0; i < 20; i++)
    feed_sent(&a, 12000); /* 20 ms packets of silence: headers and little else */
  g_assert_cmpint(a.bitrate, ==, 14000);
  feed_sent(&a, 22000); /* speech */
  g_assert_cmpint(a.bitrate, ==, 15400);
  /* Random loss raised it for FEC; the first clean report takes it back down, silent or not. */
  HarkOpusAdapt b;
  hark_opus_adapt_init(&b, &limits);
  feed(&b, 0, 40, 5);
  g_assert_cmpint(feed(&b, 0.1, 40, 5), ==, HARK_OPUS_ADAPT_RANDOM_LOSS);
  g_assert_cmpint(b.bitrate, ==, 28000);
  feed_sent(&b, 12000);
  g_assert_cmpint(b.bitrate, ==, 20000);
  g_assert_false(b.fec);
}

/* A path that became longer (a relay instead of a direct path): the round trip is higher
 * for good, without loss. It may look like a queue for a while; the base follows it and
 * the stream returns to the top. */
static void
test_longer_path(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  feed(&a, 0, 20, 5);
  for (int i = 0; i < 400; i++)
    feed(&a, 0, 320, 5);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(a.bitrate, ==, 20000);
}

/* Bounds the settings give: a max_ptime of 60 never brings 120 ms packets, a
 * narrow_bitrate equal to min_bitrate never goes below it. */
/* A report of the stream sent at sent_bitrate of which the far end says it took
 * received_bitrate (its receive report), the link full (loss and a queue) or clean. */
static HarkOpusVerdict
feed_measured(HarkOpusAdapt *a, gboolean full, double sent_bitrate, double received_bitrate)
{
  HarkCodecFeedback fb = full ? report(0.5, 940, 15) : report(0, 42, 5);
  fb.sent_bitrate = sent_bitrate;
  fb.received_bitrate = received_bitrate;
  return hark_opus_adapt_step(a, &limits, &fb);
}

/* What the bottom rung (6 kbit/s in 120 ms packets) sends with RTP and SRTP: 7,600 bit/s. */
#define BOTTOM_SENT 7600.0

/* At the bottom of the ladder, the far end says the full link passed 7,000 and then
 * 9,000 bit/s of the stream: the link's rate is their mean, 8,000 (1,233 bytes/s with
 * IP and UDP). Speech at the bottom rung then reaches it whole, report after report, and
 * the stream stays there: the rung above would send 8 % more, over 95 % of the link. A
 * clean report that says more arrived (one report's figure is coarse) changes nothing.
 * A minute of reports later the measure is forgotten (the link may have widened) and
 * the stream climbs. */
static void
test_climb_stops_below_the_link(void)
{
  HarkOpusAdapt a;
  start_at_bottom(&a);
  g_assert_cmpint(feed_measured(&a, TRUE, BOTTOM_SENT, 7000), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpint(feed_measured(&a, TRUE, BOTTOM_SENT, 9000), ==, HARK_OPUS_ADAPT_CONGESTED);
  g_assert_cmpfloat(a.ceiling, >, 1200);
  g_assert_cmpfloat(a.ceiling, <, 1250);
  feed_measured(&a, FALSE, BOTTOM_SENT, 12000);
  g_assert_cmpfloat(a.ceiling, <, 1250);
  for (int i = 0; i < 40; i++)
    g_assert_cmpint(feed_measured(&a, FALSE, BOTTOM_SENT, BOTTOM_SENT), ==, HARK_OPUS_ADAPT_CLEAN);
  g_assert_cmpint(a.bitrate, ==, 6000);
  g_assert_cmpint(a.ptime_ms, ==, 120);
  for (int i = 0; i < 25; i++)
    feed_measured(&a, FALSE, BOTTOM_SENT, BOTTOM_SENT);
  g_assert_cmpfloat(a.ceiling, <, 0);
  g_assert_cmpint(a.bitrate, >, 6000);
}

/* The same with a link that passed 12,000 bit/s (1,733 bytes/s): the stream climbs the
 * rungs that fit under 95 % of it (each sending what its rung costs, all of which
 * arrives) and stops below the first that does not: 9,124 bit/s, whose next rung would
 * send about 1,730 bytes/s. */
static void
test_climb_up_to_the_link(void)
{
  HarkOpusAdapt a;
  start_at_bottom(&a);
  feed_measured(&a, TRUE, BOTTOM_SENT, 12000);
  for (int i = 0; i < 50; i++) {
    double sent = a.bitrate + 1000.0 / a.ptime_ms * 24 * 8;
    feed_measured(&a, FALSE, sent, sent);
  }
  g_assert_cmpint(a.ptime_ms, ==, 120);
  g_assert_cmpint(a.bitrate, >, 9000);
  g_assert_cmpint(a.bitrate, <, 10000);
}

/* A congested report whose far end says what it took: the step fits 90 % of that (2,600
 * bytes/s, with IP and UDP: 50 packets a second), down to 120 ms packets at 12 kbit/s,
 * where the loss alone (30 % of the estimate of 20 kbit/s in 20 ms packets) fits 40 ms
 * packets. */
static void
test_fit_what_arrived(void)
{
  const double received[] = { -1, 9600 };
  const int ptimes[] = { 40, 120 };
  for (guint i = 0; i < G_N_ELEMENTS(received); i++) {
    HarkOpusAdapt a;
    hark_opus_adapt_init(&a, &limits);
    for (int j = 0; j < 3; j++)
      feed(&a, 0, 40, 5);
    HarkCodecFeedback fb = report(0.3, 700, 40);
    fb.received_bitrate = received[i];
    fb.received_packet_rate = received[i] < 0 ? -1 : 50;
    g_assert_cmpint(hark_opus_adapt_step(&a, &limits, &fb), ==, HARK_OPUS_ADAPT_CONGESTED);
    g_assert_cmpint(a.ptime_ms, ==, ptimes[i]);
    g_assert_cmpint(a.bitrate, ==, 12000);
    g_assert_false(a.narrowband);
  }
}

/* Which congested reports measure the link, at the bottom of the ladder after a clean
 * report: not a congestion's first (its span may hold the moments before the queue
 * filled); the next two do, 8,000 and 10,000 bit/s in 8 packets a second: the ceiling
 * is their mean with IP and UDP, 1,358 bytes/s. */
static void
test_ceiling_from_a_full_link(void)
{
  HarkOpusAdapt a;
  start_at_bottom(&a);
  feed(&a, 0, 40, 5);
  const struct {
    double loss, received, packets;
  } reports[] = { { 0.5, 4000, 8.3 }, { 0.5, 8000, 8.3 }, { 0.5, 10000, 8.3 } };
  for (guint i = 0; i < G_N_ELEMENTS(reports); i++) {
    HarkCodecFeedback fb = report(reports[i].loss, 940, 15);
    fb.received_bitrate = reports[i].received;
    fb.received_packet_rate = reports[i].packets;
    g_assert_cmpint(hark_opus_adapt_step(&a, &limits, &fb), ==, HARK_OPUS_ADAPT_CONGESTED);
    g_assert_cmpint(a.ptime_ms, ==, 120);
    if (i == 0)
      g_assert_cmpfloat(a.ceiling, <, 0);
  }
  g_assert_cmpfloat(a.ceiling, >, 1355);
  g_assert_cmpfloat(a.ceiling, <, 1361);
}

static void
test_bounds(void)
{
  HarkOpusLimits l = limits;
  l.max_ptime_ms = 60;
  l.narrow_bitrate = 12000;
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &l);
  HarkCodecFeedback clean = report(0, 40, 5), full = report(0.5, 940, 15);
  hark_opus_adapt_step(&a, &l, &clean);
  for (int i = 0; i < 30; i++)
    hark_opus_adapt_step(&a, &l, &full);
  g_assert_cmpint(a.ptime_ms, ==, 60);
  g_assert_cmpint(a.bitrate, ==, 12000);
  g_assert_false(a.narrowband);
}

/* A far end that lies in its reports (they are authenticated, so only the peer of the
 * call can): every loss, round trip and jitter RTCP's fields can carry, in any order. It
 * can make us send it less (which it could have by hanging up) but never leave the
 * bounds: the bitrate within narrow_bitrate..fec_bitrate, a packet time Opus has, and
 * back at the top once its reports turn clean. */
static void
test_hostile_reports(void)
{
  HarkOpusAdapt a;
  hark_opus_adapt_init(&a, &limits);
  GRand *rand = g_rand_new_with_seed(16);
  const double losses[] = { 0, 1.0 / 256, 0.5, 255.0 / 256 };
  const double rtts[] = { -1, 0.0153, 40, 65535999.98 }; /* RTCP's 16.16 seconds */
  const double jitters[] = { -1, 0, 30, 4294967295.0 / 48 }; /* a 32-bit count at 48 kHz */
  /* A receive report's: 2^32 bytes in 1 ms at most. */
  const double received[] = { -1, 0, 8000, 4294967295.0 * 8000 };
  for (int i = 0; i < 5000; i++) {
    HarkCodecFeedback fb = report(losses[g_rand_int_range(rand, 0, 4)],
                                  rtts[g_rand_int_range(rand, 0, 4)],
                                  jitters[g_rand_int_range(rand, 0, 4)]);
    fb.received_bitrate = received[g_rand_int_range(rand, 0, 4)];
    hark_opus_adapt_step(&a, &limits, &fb);
    g_assert_cmpint(a.bitrate, >=, 6000);
    g_assert_cmpint(a.bitrate, <=, 28000);
    g_assert_true(a.ptime_ms == 20 || a.ptime_ms == 40 || a.ptime_ms == 60 ||
                  a.ptime_ms == 120);
    g_assert_cmpint(a.loss_percent, >=, 0);
    g_assert_cmpint(a.loss_percent, <=, 100);
  }
  g_rand_free(rand);
  for (int i = 0; i < 2000; i++)
    feed(&a, 0, 40, 5);
  g_assert_cmpint(a.ptime_ms, ==, 20);
  g_assert_cmpint(a.bitrate, ==, 20000);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/opus-adapt/random-loss/keeps-ptime", test_random_loss_keeps_ptime);
  g_test_add_func("/opus-adapt/random-loss/without-rtt", test_random_loss_without_rtt);
  g_test_add_func("/opus-adapt/random-loss/ends", test_random_loss_ends);
  g_test_add_func("/opus-adapt/random-loss/no-raise-after-congestion",
                  test_no_raise_after_congestion);
  g_test_add_func("/opus-adapt/outage-is-not-narrow", test_outage_is_not_narrow);
  g_test_add_func("/opus-adapt/random-loss/twenty-percent", test_random_loss_twenty_percent);
  g_test_add_func("/opus-adapt/capacity/lengthens-packets", test_capacity_loss_lengthens);
  g_test_add_func("/opus-adapt/capacity/jump-to-fit", test_capacity_jump);
  g_test_add_func("/opus-adapt/capacity/jump-after-queue-step",
                  test_capacity_jump_after_queue_step);
  g_test_add_func("/opus-adapt/capacity/reports-lost", test_capacity_reports_lost);
  g_test_add_func("/opus-adapt/capacity/first-report", test_capacity_first_report);
  g_test_add_func("/opus-adapt/capacity/ladder-order", test_ladder_order);
  g_test_add_func("/opus-adapt/capacity/queue-alone", test_queue_alone);
  g_test_add_func("/opus-adapt/capacity/starts-congested", test_starts_congested);
  g_test_add_func("/opus-adapt/capacity/draining-waits", test_draining_waits);
  g_test_add_func("/opus-adapt/capacity/no-fec-when-narrow", test_no_fec_when_narrow);
  g_test_add_func("/opus-adapt/climb/hysteresis", test_climb_with_hysteresis);
  g_test_add_func("/opus-adapt/climb/longer-path", test_longer_path);
  g_test_add_func("/opus-adapt/climb/not-in-silence", test_no_climb_in_silence);
  g_test_add_func("/opus-adapt/climb/no-raise-in-silence", test_no_raise_in_silence);
  g_test_add_func("/opus-adapt/capacity/no-drain-in-silence", test_no_drain_in_silence);
  g_test_add_func("/opus-adapt/capacity/fit-what-was-sent", test_fit_what_was_sent);
  g_test_add_func("/opus-adapt/climb/stops-below-the-link", test_climb_stops_below_the_link);
  g_test_add_func("/opus-adapt/climb/up-to-the-link", test_climb_up_to_the_link);
  g_test_add_func("/opus-adapt/capacity/fit-what-arrived", test_fit_what_arrived);
  g_test_add_func("/opus-adapt/capacity/ceiling-from-a-full-link", test_ceiling_from_a_full_link);
  g_test_add_func("/opus-adapt/bounds", test_bounds);
  g_test_add_func("/opus-adapt/hostile-reports", test_hostile_reports);
  return g_test_run();
}
