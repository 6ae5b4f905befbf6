/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Opus plugin's coding of digital silence at complexity 0 (codecs/opus/opus-quiet.c),
 * on the plugin's encoder element fed by hand through a GstHarness: a long run of zeros
 * lowers the complexity, a short one does not, the first block of sound is coded at the
 * configured complexity (a probe behind the plugin's reads it as the encoder would), a live change while
 * silent takes effect with the sound, and a tone after the silence decodes as that tone. */
#include <gst/check/gstharness.h>
#include <math.h>
#include <opus.h>
#include <stdlib.h>

#include "opus-encoder.h"
#include "opus-quiet.h"

#define RATE 48000
#define BLOCK (RATE / 100) /* 10 ms, as the engine's capture pushes */
#define BLOCK_NS (10 * GST_MSECOND)
#define TONE_HZ 1000

typedef struct {
  GstHarness *h;
  guint blocks;
  int seen_complexity; /* what the encoder was set to as the last block went in */
} Feed;

static GstPadProbeReturn
read_complexity(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  (void)pad;
  (void)info;
  Feed *f = data;
  g_object_get(f->h->element, "complexity", &f->seen_complexity, NULL);
  return GST_PAD_PROBE_OK;
}

static void
feed_init(Feed *f, int complexity)
{
  g_assert_true(hark_opus_encoder_register());
  f->h = gst_harness_new(HARK_OPUS_ENCODER_NAME);
  gst_harness_set_src_caps_str(
    f->h, "audio/x-raw, format=S16LE, rate=48000, channels=1, layout=interleaved");
  g_object_set(f->h->element, "complexity", complexity, "bitrate", 20000, NULL);
  hark_opus_quiet_attach(f->h->element, complexity);
  g_autoptr(GstPad) sink = gst_element_get_static_pad(f->h->element, "sink");
  gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, read_complexity, f, NULL);
  f->blocks = 0;
}

static void
feed_clear(Feed *f)
{
  gst_harness_teardown(f->h);
}

/* count blocks of zeros (tone FALSE) or of a 1 kHz tone. */
static void
feed(Feed *f, guint count, gboolean tone)
{
  for (guint b = 0; b < count; b++, f->blocks++) {
    GstBuffer *buffer = gst_buffer_new_allocate(NULL, BLOCK * 2, NULL);
    GstMapInfo map;
    g_assert_true(gst_buffer_map(buffer, &map, GST_MAP_WRITE));
    gint16 *pcm = (gint16 *)map.data;
    for (int i = 0; i < BLOCK; i++)
      pcm[i] = tone ? (gint16)(8000 * sin(2 * G_PI * TONE_HZ * (f->blocks * BLOCK + i) / RATE))
                    : 0;
    gst_buffer_unmap(buffer, &map);
    GST_BUFFER_PTS(buffer) = f->blocks * BLOCK_NS;
    GST_BUFFER_DURATION(buffer) = BLOCK_NS;
    g_assert_cmpint(gst_harness_push(f->h, buffer), ==, GST_FLOW_OK);
  }
}

static int
complexity_now(Feed *f)
{
  int c;
  g_object_get(f->h->element, "complexity", &c, NULL);
  return c;
}

static void
test_long_silence_lowers(void)
{
  Feed f;
  feed_init(&f, 10);
  feed(&f, 5, TRUE);
  g_assert_false(hark_opus_quiet_is_lowered(f.h->element));
  feed(&f, 20, FALSE);
  g_assert_true(hark_opus_quiet_is_lowered(f.h->element));
  g_assert_cmpint(complexity_now(&f), ==, 0);
  /* The first block of sound goes in at the configured complexity. */
  feed(&f, 1, TRUE);
  g_assert_cmpint(f.seen_complexity, ==, 10);
  g_assert_false(hark_opus_quiet_is_lowered(f.h->element));
  feed_clear(&f);
}

/* A pause between words (under the 100 ms) keeps the complexity. */
static void
test_short_silence_kept(void)
{
  Feed f;
  feed_init(&f, 10);
  for (int round = 0; round < 5; round++) {
    feed(&f, 3, TRUE);
    feed(&f, 9, FALSE);
    g_assert_false(hark_opus_quiet_is_lowered(f.h->element));
    g_assert_cmpint(f.seen_complexity, ==, 10);
  }
  feed_clear(&f);
}

/* A live change while silent: still 0 until the sound comes back, then the new value. */
static void
test_live_change_while_silent(void)
{
  Feed f;
  feed_init(&f, 10);
  feed(&f, 20, FALSE);
  hark_opus_quiet_set_complexity(f.h->element, 5);
  g_assert_cmpint(complexity_now(&f), ==, 0);
  feed(&f, 1, TRUE);
  g_assert_cmpint(f.seen_complexity, ==, 5);
  feed_clear(&f);
}

/* Configured at 0, there is nothing to lower (and nothing to restore). */
static void
test_configured_zero(void)
{
  Feed f;
  feed_init(&f, 0);
  feed(&f, 20, FALSE);
  g_assert_false(hark_opus_quiet_is_lowered(f.h->element));
  feed(&f, 2, TRUE);
  g_assert_cmpint(f.seen_complexity, ==, 0);
  feed_clear(&f);
}

/* Zero crossings a second of the last n samples: a 1 kHz tone has 2,000. */
static double
crossings_per_second(const opus_int16 *pcm, int n)
{
  int crossings = 0;
  for (int i = 1; i < n; i++)
    crossings += (pcm[i - 1] < 0) != (pcm[i] < 0);
  return crossings * (double)RATE / n;
}

/* What the far end hears: half a second of silence coded at 0, then the tone, decoded by
 * libopus, is silence and then the tone at its pitch and level. */
static void
test_tone_after_silence_decodes(void)
{
  Feed f;
  feed_init(&f, 10);
  feed(&f, 50, FALSE);
  g_assert_true(hark_opus_quiet_is_lowered(f.h->element));
  feed(&f, 30, TRUE);
  int error;
  OpusDecoder *dec = opus_decoder_create(RATE, 1, &error);
  g_assert_cmpint(error, ==, OPUS_OK);
  g_autofree opus_int16 *heard = g_new0(opus_int16, 80 * BLOCK);
  int at = 0;
  GstBuffer *packet;
  while ((packet = gst_harness_try_pull(f.h)) != NULL) {
    GstMapInfo map;
    g_assert_true(gst_buffer_map(packet, &map, GST_MAP_READ));
    int n = opus_decode(dec, map.data, (opus_int32)map.size, heard + at, 80 * BLOCK - at, 0);
    g_assert_cmpint(n, >, 0);
    at += n;
    gst_buffer_unmap(packet, &map);
    gst_buffer_unref(packet);
  }
  opus_decoder_destroy(dec);
  /* All but the last frame at least, whatever an encoder holds back until EOS. */
  g_assert_cmpint(at, >=, 70 * BLOCK);
  double peak_silence = 0;
  for (int i = 0; i < 45 * BLOCK; i++)
    peak_silence = MAX(peak_silence, abs(heard[i]));
  g_assert_cmpfloat(peak_silence, <, 100);
  const opus_int16 *tone = heard + at - 15 * BLOCK;
  double energy = 0;
  for (int i = 0; i < 15 * BLOCK; i++)
    energy += (double)tone[i] * tone[i];
  double rms = sqrt(energy / (15 * BLOCK));
  g_assert_cmpfloat(rms, >, 8000 / sqrt(2) * 0.5);
  g_assert_cmpfloat(fabs(crossings_per_second(tone, 15 * BLOCK) - 2 * TONE_HZ), <, 100);
  feed_clear(&f);
}

int
main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/opus-quiet/long-silence-lowers", test_long_silence_lowers);
  g_test_add_func("/opus-quiet/short-silence-kept", test_short_silence_kept);
  g_test_add_func("/opus-quiet/live-change-while-silent", test_live_change_while_silent);
  g_test_add_func("/opus-quiet/configured-zero", test_configured_zero);
  g_test_add_func("/opus-quiet/tone-after-silence-decodes", test_tone_after_silence_decodes);
  return g_test_run();
}
