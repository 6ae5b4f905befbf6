/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Opus plugin's decoder element (codecs/opus/opus-decoder.c), fed by hand through a
 * GstHarness: each packet's audio comes out as soon as the packet goes in (no frame held
 * back for FEC), a lost packet's audio is rebuilt from the next packet's FEC, two losses
 * in a row are concealed in order, and a packet that is not Opus is concealed without
 * stopping the stream. */
#include <gst/check/gstharness.h>
#include <math.h>
#include <opus.h>

#include "opus-decoder.h"

#define RATE 48000
#define FRAME (RATE / 50)
#define FRAME_NS (20 * GST_MSECOND)
#define MAX_PACKET 1500

typedef struct {
  guchar data[MAX_PACKET];
  int size;
} Packet;

/* frames 20 ms Opus packets of a tone at low_hz that changes to high_hz at frame
 * change_at; with FEC each packet carries the previous frame again. */
static Packet *
encode_tones(int frames, int change_at, double low_hz, double high_hz, gboolean fec)
{
  int err;
  OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
  g_assert_nonnull(enc);
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(28000));
  opus_encoder_ctl(enc, OPUS_SET_MAX_BANDWIDTH(OPUS_BANDWIDTH_WIDEBAND));
  opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(fec));
  opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(fec ? 20 : 0));
  Packet *packets = g_new0(Packet, frames);
  double phase = 0;
  for (int f = 0; f < frames; f++) {
    opus_int16 pcm[FRAME];
    double hz = f < change_at ? low_hz : high_hz;
    for (int i = 0; i < FRAME; i++) {
      pcm[i] = (opus_int16)(12000 * sin(phase));
      phase += 2 * G_PI * hz / RATE;
    }
    packets[f].size = opus_encode(enc, pcm, FRAME, packets[f].data, MAX_PACKET);
    g_assert_cmpint(packets[f].size, >, 0);
  }
  opus_encoder_destroy(enc);
  return packets;
}

static GstHarness *
decoder_harness(void)
{
  g_assert_true(hark_opus_decoder_register());
  GstHarness *h = gst_harness_new(HARK_OPUS_DECODER_NAME);
  gst_harness_set_src_caps_str(h, "audio/x-opus, channel-mapping-family=(int)0, channels=(int)1, "
                                  "rate=(int)48000");
  gst_harness_set_sink_caps_str(h, "audio/x-raw, format=(string)S16LE, layout=(string)interleaved, "
                                   "rate=(int)48000, channels=(int)1");
  return h;
}

static void
push_packet(GstHarness *h, const Packet *p, int frame)
{
  GstBuffer *b = gst_buffer_new_memdup(p->data, (gsize)p->size);
  GST_BUFFER_PTS(b) = (GstClockTime)frame * FRAME_NS;
  GST_BUFFER_DURATION(b) = FRAME_NS;
  g_assert_cmpint(gst_harness_push(h, b), ==, GST_FLOW_OK);
}

/* A lost packet, as rtpjitterbuffer and the depayloader announce it. */
static void
push_gap(GstHarness *h, int frame)
{
  g_assert_true(gst_harness_push_event(h, gst_event_new_gap((GstClockTime)frame * FRAME_NS, FRAME_NS)));
}

/* The power of x at hz (Goertzel). */
static double
power_at(const gint16 *x, gsize n, double hz)
{
  double w = 2 * cos(2 * G_PI * hz / RATE), s1 = 0, s2 = 0;
  for (gsize i = 0; i < n; i++) {
    double s0 = x[i] + w * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - w * s1 * s2;
}

/* The next output buffer, which must be there already: 20 ms of audio at pts. */
static GstBuffer *
pull_frame(GstHarness *h, int frame)
{
  GstBuffer *b = gst_harness_try_pull(h);
  g_assert_nonnull(b);
  g_assert_cmpuint(gst_buffer_get_size(b), ==, FRAME * 2);
  g_assert_cmpuint(GST_BUFFER_PTS(b), ==, (GstClockTime)frame * FRAME_NS);
  return b;
}

/* Whether the frame sounds more like hz_a than hz_b. */
static gboolean
sounds_like(GstBuffer *b, double hz_a, double hz_b)
{
  GstMapInfo map;
  g_assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
  const gint16 *x = (const gint16 *)map.data;
  gsize n = map.size / 2;
  gboolean yes = power_at(x, n, hz_a) > 4 * power_at(x, n, hz_b);
  gst_buffer_unmap(b, &map);
  return yes;
}

static void
test_no_frame_held_back(void)
{
  Packet *packets = encode_tones(10, 10, 440, 440, TRUE);
  GstHarness *h = decoder_harness();
  for (int f = 0; f < 10; f++) {
    push_packet(h, &packets[f], f);
    gst_buffer_unref(pull_frame(h, f)); /* before the next packet goes in */
  }
  gst_harness_teardown(h);
  g_free(packets);
}

/* The tone changes from 440 to 1000 Hz at frame 6, which is lost: concealment would carry
 * the 440 Hz on; the next packet's FEC holds the 1000 Hz. */
static void
rebuilt_frame(gboolean fec, gboolean expect_high)
{
  Packet *packets = encode_tones(10, 6, 440, 1000, fec);
  GstHarness *h = decoder_harness();
  for (int f = 0; f < 6; f++) {
    push_packet(h, &packets[f], f);
    gst_buffer_unref(pull_frame(h, f));
  }
  push_gap(h, 6);
  g_assert_null(gst_harness_try_pull(h)); /* waits for packet 7 and its FEC */
  push_packet(h, &packets[7], 7);
  GstBuffer *rebuilt = pull_frame(h, 6);
  g_assert_true(sounds_like(rebuilt, expect_high ? 1000 : 440, expect_high ? 440 : 1000));
  gst_buffer_unref(rebuilt);
  GstBuffer *next = pull_frame(h, 7);
  if (fec) /* (concealment's 440 Hz still rings into the frame after it) */
    g_assert_true(sounds_like(next, 1000, 440));
  gst_buffer_unref(next);
  gst_harness_teardown(h);
  g_free(packets);
}

static void
test_fec_rebuilds_lost_frame(void)
{
  rebuilt_frame(TRUE, TRUE);
}

/* The check above can fail: without FEC in the stream the lost frame is concealed from
 * what came before it. */
static void
test_without_fec_concealed(void)
{
  rebuilt_frame(FALSE, FALSE);
}

static void
test_two_losses_in_order(void)
{
  Packet *packets = encode_tones(10, 10, 440, 440, TRUE);
  GstHarness *h = decoder_harness();
  for (int f = 0; f < 3; f++) {
    push_packet(h, &packets[f], f);
    gst_buffer_unref(pull_frame(h, f));
  }
  push_gap(h, 3);
  push_gap(h, 4); /* no packet came for 3's FEC: concealed now */
  gst_buffer_unref(pull_frame(h, 3));
  g_assert_null(gst_harness_try_pull(h));
  push_packet(h, &packets[5], 5);
  for (int f = 4; f <= 5; f++)
    gst_buffer_unref(pull_frame(h, f));
  gst_harness_teardown(h);
  g_free(packets);
}

static void
test_not_opus_concealed(void)
{
  Packet *packets = encode_tones(10, 10, 440, 440, FALSE);
  GstHarness *h = decoder_harness();
  push_packet(h, &packets[0], 0);
  gst_buffer_unref(pull_frame(h, 0));
  /* TOC code 3 with a frame count of 0: no valid packet (RFC 6716 §3.2.5). */
  Packet junk = {.data = {0xfb, 0x00, 0xde, 0xad}, .size = 4};
  push_packet(h, &junk, 1);
  gst_buffer_unref(pull_frame(h, 1)); /* the last packet's duration, concealed */
  push_packet(h, &packets[2], 2);
  GstBuffer *after = pull_frame(h, 2);
  g_assert_true(sounds_like(after, 440, 1000));
  gst_buffer_unref(after);
  gst_harness_teardown(h);
  g_free(packets);
}

int
main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/opus-decoder/no-frame-held-back", test_no_frame_held_back);
  g_test_add_func("/opus-decoder/fec-rebuilds-lost-frame", test_fec_rebuilds_lost_frame);
  g_test_add_func("/opus-decoder/without-fec-concealed", test_without_fec_concealed);
  g_test_add_func("/opus-decoder/two-losses-in-order", test_two_losses_in_order);
  g_test_add_func("/opus-decoder/not-opus-concealed", test_not_opus_concealed);
  return g_test_run();
}
