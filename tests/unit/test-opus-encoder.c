/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Opus plugin's encoder element (codecs/opus/opus-encoder.c), fed by hand through a
 * GstHarness: a tone comes out as 20 ms packets that decode to that tone, each setting the
 * plugin changes while running (frame size, bitrate and CBR, bandwidth, FEC, DTX) shows in
 * the packets that follow, opusenc's property values are taken by name, and a short last
 * frame is coded at EOS, not lost. */
#include <math.h>
#include <opus.h>

#include "test-opus-feed.h"
#include "test-wav.h"

#define RATE OPUS_FEED_RATE
#define BLOCK OPUS_FEED_BLOCK /* 10 ms, as the engine's capture pushes */
#define TONE_HZ 440

static void
feed_init(OpusFeed *f)
{
  opus_feed_init(f, "generic", TONE_HZ);
}

static void
test_tone_in_20ms_packets(void)
{
  OpusFeed f;
  feed_init(&f);
  g_object_set(f.h->element, "bitrate", 20000, NULL);
  opus_feed(&f, 50, TRUE); /* 500 ms */
  g_autoptr(GPtrArray) packets = opus_feed_packets(&f);
  g_assert_cmpuint(packets->len, ==, 25);
  int error;
  OpusDecoder *dec = opus_decoder_create(RATE, 1, &error);
  g_assert_cmpint(error, ==, OPUS_OK);
  g_autofree opus_int16 *heard = g_new0(opus_int16, 50 * BLOCK);
  int at = 0;
  for (guint i = 0; i < packets->len; i++) {
    g_assert_cmpint(opus_feed_packet_samples(packets->pdata[i]), ==, 2 * BLOCK);
    gsize size;
    const guchar *data = g_bytes_get_data(packets->pdata[i], &size);
    int n = opus_decode(dec, data, (opus_int32)size, heard + at, 50 * BLOCK - at, 0);
    g_assert_cmpint(n, ==, 2 * BLOCK);
    at += n;
  }
  opus_decoder_destroy(dec);
  /* The last 300 ms (past the encoder's start): the tone, at its level. */
  const opus_int16 *tone = heard + at - 30 * BLOCK;
  g_assert_cmpfloat(hark_test_wav_rms(tone, 30 * BLOCK), >, 8000 / sqrt(2) * 0.7);
  g_assert_cmpfloat(fabs(opus_feed_crossings_per_second(tone, 30 * BLOCK) - 2 * TONE_HZ), <, 20);
  opus_feed_clear(&f);
}

/* The plugin sets the packet time, the bitrate type and the bandwidth by opusenc's names. */
static void
test_live_frame_size_and_bandwidth(void)
{
  OpusFeed f;
  feed_init(&f);
  opus_feed(&f, 10, TRUE);
  g_autoptr(GPtrArray) before = opus_feed_packets(&f);
  g_assert_cmpuint(before->len, ==, 5);
  gst_util_set_object_arg(G_OBJECT(f.h->element), "frame-size", "60");
  gst_util_set_object_arg(G_OBJECT(f.h->element), "bandwidth", "narrowband");
  opus_feed(&f, 2, TRUE); /* the next frame is cut at the old size, then 60 ms */
  opus_feed(&f, 60, TRUE);
  g_autoptr(GPtrArray) after = opus_feed_packets(&f);
  g_assert_cmpuint(after->len, ==, 11); /* 20 ms, then ten of 60 */
  g_assert_cmpint(opus_feed_packet_samples(after->pdata[0]), ==, 2 * BLOCK);
  for (guint i = 1; i < after->len; i++) {
    g_assert_cmpint(opus_feed_packet_samples(after->pdata[i]), ==, 6 * BLOCK);
    g_assert_cmpint(opus_packet_get_bandwidth(g_bytes_get_data(after->pdata[i], NULL)), ==,
                    OPUS_BANDWIDTH_NARROWBAND);
  }
  int frame = 0;
  g_object_get(f.h->element, "frame-size", &frame, NULL);
  g_assert_cmpint(frame, ==, 60);
  opus_feed_clear(&f);
}

/* In CBR every packet has the bitrate's size, and a new bitrate applies to the next frame. */
static void
test_live_bitrate_in_cbr(void)
{
  OpusFeed f;
  feed_init(&f);
  gst_util_set_object_arg(G_OBJECT(f.h->element), "bitrate-type", "cbr");
  g_object_set(f.h->element, "bitrate", 32000, NULL);
  opus_feed(&f, 20, TRUE);
  g_autoptr(GPtrArray) high = opus_feed_packets(&f);
  g_object_set(f.h->element, "bitrate", 12000, NULL);
  opus_feed(&f, 20, TRUE);
  g_autoptr(GPtrArray) low = opus_feed_packets(&f);
  g_assert_cmpuint(high->len, ==, 10);
  g_assert_cmpuint(low->len, ==, 10);
  for (guint i = 0; i < 10; i++) {
    g_assert_cmpuint(g_bytes_get_size(high->pdata[i]), ==, 32000 / 50 / 8);
    g_assert_cmpuint(g_bytes_get_size(low->pdata[i]), ==, 12000 / 50 / 8);
  }
  opus_feed_clear(&f);
}

/* The level (RMS) of the frame before packet, rebuilt from its FEC by a new decoder (which
 * has nothing to conceal from: no FEC, no sound). */
static double
rebuilt_level(GBytes *packet)
{
  int error;
  OpusDecoder *dec = opus_decoder_create(RATE, 1, &error);
  g_assert_cmpint(error, ==, OPUS_OK);
  opus_int16 pcm[2 * BLOCK];
  gsize size;
  const guchar *data = g_bytes_get_data(packet, &size);
  g_assert_cmpint(opus_decode(dec, data, (opus_int32)size, pcm, 2 * BLOCK, 1), ==, 2 * BLOCK);
  opus_decoder_destroy(dec);
  return hark_test_wav_rms(pcm, 2 * BLOCK);
}

/* FEC is coded once asked for with the loss it is for; DTX sends a TOC byte alone for
 * silence. */
static void
test_live_fec_and_dtx(void)
{
  OpusFeed f;
  opus_feed_init(&f, "voice", TONE_HZ);
  g_object_set(f.h->element, "bitrate", 28000, NULL);
  gst_util_set_object_arg(G_OBJECT(f.h->element), "bandwidth", "wideband");
  opus_feed(&f, 40, TRUE);
  g_autoptr(GPtrArray) plain = opus_feed_packets(&f);
  g_object_set(f.h->element, "inband-fec", TRUE, "packet-loss-percentage", 20, NULL);
  opus_feed(&f, 40, TRUE);
  g_autoptr(GPtrArray) with_fec = opus_feed_packets(&f);
  /* A lost packet's audio comes back from the next one's FEC, which the plain ones lack. */
  g_assert_cmpfloat(rebuilt_level(plain->pdata[10]), <, 100);
  g_assert_cmpfloat(rebuilt_level(with_fec->pdata[10]), >, 1000);

  g_object_set(f.h->element, "dtx", TRUE, NULL);
  opus_feed(&f, 100, FALSE); /* a second of digital silence */
  g_autoptr(GPtrArray) silent = opus_feed_packets(&f);
  g_assert_cmpuint(silent->len, ==, 50);
  guint toc_only = 0;
  for (guint i = 0; i < silent->len; i++)
    toc_only += g_bytes_get_size(silent->pdata[i]) <= 2;
  g_assert_cmpuint(toc_only, >, 30);
  g_assert_cmpuint(plain->len, ==, 20);
  opus_feed_clear(&f);
}

/* EOS in the middle of a frame: the part that came is coded (padded), not dropped. */
static void
test_short_last_frame_coded(void)
{
  OpusFeed f;
  feed_init(&f);
  opus_feed(&f, 4, TRUE);
  opus_feed_samples(&f, BLOCK / 2, TRUE);
  g_assert_true(gst_harness_push_event(f.h, gst_event_new_eos()));
  g_autoptr(GPtrArray) packets = opus_feed_packets(&f);
  g_assert_cmpuint(packets->len, ==, 3);
  g_assert_cmpint(opus_feed_packet_samples(packets->pdata[2]), ==, 2 * BLOCK);
  opus_feed_clear(&f);
}

int
main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/opus-encoder/tone-in-20ms-packets", test_tone_in_20ms_packets);
  g_test_add_func("/opus-encoder/live-frame-size-and-bandwidth",
                  test_live_frame_size_and_bandwidth);
  g_test_add_func("/opus-encoder/live-bitrate-in-cbr", test_live_bitrate_in_cbr);
  g_test_add_func("/opus-encoder/live-fec-and-dtx", test_live_fec_and_dtx);
  g_test_add_func("/opus-encoder/short-last-frame-coded", test_short_last_frame_coded);
  return g_test_run();
}
