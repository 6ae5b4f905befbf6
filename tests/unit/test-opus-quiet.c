/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Opus plugin's encoder element on digital silence (codecs/opus/opus-encoder.c), fed
 * by hand through a GstHarness: a long run of zeros is coded in CELT's 3-byte frames, a
 * short one (a pause between words) is not; the first frame of sound is coded as
 * configured again, with a live change made while silent; DTX and CBR keep SILK; and a
 * tone after the silence decodes as that tone. */
#include <math.h>
#include <opus.h>
#include <stdlib.h>

#include "opus-encoder.h"
#include "test-opus-feed.h"
#include "test-wav.h"

#define RATE OPUS_FEED_RATE
#define BLOCK OPUS_FEED_BLOCK /* 10 ms, as the engine's capture pushes */
#define TONE_HZ 1000

static void
feed_init(OpusFeed *f, int complexity)
{
  opus_feed_init(f, "voice", TONE_HZ);
  gst_util_set_object_arg(G_OBJECT(f->h->element), "bandwidth", "wideband");
  g_object_set(f->h->element, "complexity", complexity, "bitrate", 20000, NULL);
}

typedef struct {
  guint packets;
  gsize bytes;
  gsize last_size;
  guint8 last_toc;
} Packets;

/* Takes every packet the encoder has made so far. */
static Packets
take_packets(OpusFeed *f)
{
  Packets p = { 0 };
  g_autoptr(GPtrArray) packets = opus_feed_packets(f);
  for (guint i = 0; i < packets->len; i++) {
    gsize size;
    const guint8 *data = g_bytes_get_data(packets->pdata[i], &size);
    p.packets++;
    p.last_size = size;
    p.bytes += size;
    p.last_toc = data[0];
  }
  return p;
}

/* RFC 6716 3.1: configurations 0-11 are SILK, 16-31 CELT. */
static gboolean
is_silk(guint8 toc)
{
  return (toc >> 3) < 12;
}

static gboolean
is_celt(guint8 toc)
{
  return (toc >> 3) >= 16;
}

static void
test_long_silence_is_celt(void)
{
  OpusFeed f;
  feed_init(&f, 10);
  opus_feed(&f, 10, TRUE);
  Packets tone = take_packets(&f);
  g_assert_false(hark_opus_encoder_is_quiet(f.h->element));
  g_assert_true(is_silk(tone.last_toc));
  opus_feed(&f, 20, FALSE);
  take_packets(&f);
  opus_feed(&f, 40, FALSE);
  Packets silence = take_packets(&f);
  g_assert_true(hark_opus_encoder_is_quiet(f.h->element));
  g_assert_cmpuint(silence.packets, ==, 20);
  g_assert_true(is_celt(silence.last_toc));
  g_assert_cmpuint(silence.bytes, <=, 3 * silence.packets);
  /* The first frame of sound is coded as configured: SILK (wideband voice). */
  opus_feed(&f, 2, TRUE);
  Packets back = take_packets(&f);
  g_assert_cmpuint(back.packets, ==, 1);
  g_assert_false(hark_opus_encoder_is_quiet(f.h->element));
  g_assert_true(is_silk(back.last_toc));
  /* The property says what is configured, not what silence was coded with. */
  int complexity = -1, bitrate = -1;
  g_object_get(f.h->element, "complexity", &complexity, "bitrate", &bitrate, NULL);
  g_assert_cmpint(complexity, ==, 10);
  g_assert_cmpint(bitrate, ==, 20000);
  opus_feed_clear(&f);
}

/* A pause between words (under the 100 ms) is coded as configured. */
static void
test_short_silence_kept(void)
{
  OpusFeed f;
  feed_init(&f, 10);
  for (int round = 0; round < 5; round++) {
    opus_feed(&f, 4, TRUE);
    opus_feed(&f, 8, FALSE);
    g_assert_false(hark_opus_encoder_is_quiet(f.h->element));
    Packets p = take_packets(&f);
    g_assert_true(is_silk(p.last_toc));
  }
  opus_feed_clear(&f);
}

/* The sound after the silence is coded with the settings as they are then: a live
 * bitrate made while silent shows, and the silence's own higher one is gone. */
static void
test_live_change_while_silent(void)
{
  OpusFeed f;
  feed_init(&f, 10);
  opus_feed(&f, 100, TRUE);
  take_packets(&f);
  opus_feed(&f, 20, TRUE);
  Packets before = take_packets(&f);
  opus_feed(&f, 40, FALSE);
  g_assert_true(hark_opus_encoder_is_quiet(f.h->element));
  g_object_set(f.h->element, "bitrate", 10000, NULL);
  opus_feed(&f, 40, FALSE);
  g_assert_true(hark_opus_encoder_is_quiet(f.h->element));
  take_packets(&f);
  opus_feed(&f, 100, TRUE);
  take_packets(&f);
  opus_feed(&f, 20, TRUE);
  Packets after = take_packets(&f);
  g_assert_false(hark_opus_encoder_is_quiet(f.h->element));
  g_test_message("a tone frame: %zu bytes at 20 kbit/s, %zu at 10 kbit/s after the silence",
                 before.bytes / before.packets, after.bytes / after.packets);
  g_assert_cmpuint(after.bytes * 20, <, before.bytes * 17);
  opus_feed_clear(&f);
}

/* Configured at 0 the silence is still coded in CELT's small frames. */
static void
test_configured_zero(void)
{
  OpusFeed f;
  feed_init(&f, 0);
  opus_feed(&f, 60, FALSE);
  g_assert_true(hark_opus_encoder_is_quiet(f.h->element));
  Packets p = take_packets(&f);
  g_assert_true(is_celt(p.last_toc));
  opus_feed(&f, 2, TRUE);
  g_assert_true(is_silk(take_packets(&f).last_toc));
  opus_feed_clear(&f);
}

/* With DTX the silence stays in SILK, whose DTX leaves only the TOC byte (the payloader
 * drops those); with a constant bitrate too, since CELT's frames would fill the higher
 * rate. */
static void
test_dtx_and_cbr_keep_silk(void)
{
  OpusFeed f;
  feed_init(&f, 10);
  g_object_set(f.h->element, "dtx", TRUE, NULL);
  opus_feed(&f, 100, FALSE);
  g_assert_true(hark_opus_encoder_is_quiet(f.h->element));
  Packets dtx = take_packets(&f);
  g_assert_true(is_silk(dtx.last_toc));
  g_assert_cmpuint(dtx.last_size, <=, 2);
  opus_feed_clear(&f);

  feed_init(&f, 10);
  g_object_set(f.h->element, "bitrate-type", 0 /* cbr */, NULL);
  opus_feed(&f, 100, FALSE);
  g_assert_true(hark_opus_encoder_is_quiet(f.h->element));
  Packets cbr = take_packets(&f);
  g_assert_true(is_silk(cbr.last_toc));
  g_assert_cmpuint(cbr.last_size, ==, 20000 / 8 / 50);
  opus_feed_clear(&f);
}

/* What the far end hears: half a second of silence coded in CELT, then the tone, decoded by
 * libopus, is silence and then the tone at its pitch and level. */
static void
test_tone_after_silence_decodes(void)
{
  OpusFeed f;
  feed_init(&f, 10);
  opus_feed(&f, 50, FALSE);
  g_assert_true(hark_opus_encoder_is_quiet(f.h->element));
  opus_feed(&f, 30, TRUE);
  int error;
  OpusDecoder *dec = opus_decoder_create(RATE, 1, &error);
  g_assert_cmpint(error, ==, OPUS_OK);
  g_autofree opus_int16 *heard = g_new0(opus_int16, 80 * BLOCK);
  int at = 0;
  g_autoptr(GPtrArray) packets = opus_feed_packets(&f);
  for (guint i = 0; i < packets->len; i++) {
    gsize size;
    const guchar *data = g_bytes_get_data(packets->pdata[i], &size);
    int n = opus_decode(dec, data, (opus_int32)size, heard + at, 80 * BLOCK - at, 0);
    g_assert_cmpint(n, >, 0);
    at += n;
  }
  opus_decoder_destroy(dec);
  /* All but the last frame at least, whatever an encoder holds back until EOS. */
  g_assert_cmpint(at, >=, 70 * BLOCK);
  double peak_silence = 0;
  for (int i = 0; i < 45 * BLOCK; i++)
    peak_silence = MAX(peak_silence, abs(heard[i]));
  g_assert_cmpfloat(peak_silence, <, 100);
  const opus_int16 *tone = heard + at - 15 * BLOCK;
  double rms = hark_test_wav_rms(tone, 15 * BLOCK);
  g_assert_cmpfloat(rms, >, 8000 / sqrt(2) * 0.5);
  g_assert_cmpfloat(fabs(opus_feed_crossings_per_second(tone, 15 * BLOCK) - 2 * TONE_HZ), <, 100);
  opus_feed_clear(&f);
}

int
main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/opus-quiet/long-silence-is-celt", test_long_silence_is_celt);
  g_test_add_func("/opus-quiet/short-silence-kept", test_short_silence_kept);
  g_test_add_func("/opus-quiet/live-change-while-silent", test_live_change_while_silent);
  g_test_add_func("/opus-quiet/configured-zero", test_configured_zero);
  g_test_add_func("/opus-quiet/dtx-and-cbr-keep-silk", test_dtx_and_cbr_keep_silk);
  g_test_add_func("/opus-quiet/tone-after-silence-decodes", test_tone_after_silence_decodes);
  return g_test_run();
}
