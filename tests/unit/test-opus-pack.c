/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Opus plugin's packing of two frames into one RTP packet (codecs/opus/opus-pack.c),
 * on GStreamer's Opus payloader fed by hand through a GstHarness: two frames go out as
 * one packet of two frames, and a frame still held when the stream ends (a codec swap
 * drains the chain with EOS) goes out alone before the end instead of being lost. */
#include <gst/check/gstharness.h>
#include <opus.h>

#include "opus-pack.h"

#define RATE 48000
#define FRAME (RATE * 60 / 1000)
#define FRAME_NS (60 * GST_MSECOND)
#define MAX_PACKET 1500

static GstBuffer *
encoded_frame(OpusEncoder *enc, guint index)
{
  opus_int16 pcm[FRAME];
  for (int i = 0; i < FRAME; i++)
    pcm[i] = (opus_int16)((i % 48 < 24 ? 8000 : -8000) * (index % 2 ? 1 : -1));
  guint8 *out = g_malloc(MAX_PACKET);
  int n = opus_encode(enc, pcm, FRAME, out, MAX_PACKET);
  g_assert_cmpint(n, >, 2);
  GstBuffer *buffer = gst_buffer_new_wrapped(out, n);
  GST_BUFFER_PTS(buffer) = index * FRAME_NS;
  GST_BUFFER_DURATION(buffer) = FRAME_NS;
  return buffer;
}

/* How many of our 60 ms frames the Opus packet in an RTP packet holds (from its TOC
 * byte: libopus may code 60 ms as three 20 ms frames). */
static int
frames_in(GstBuffer *rtp)
{
  GstMapInfo map;
  g_assert_true(gst_buffer_map(rtp, &map, GST_MAP_READ));
  g_assert_cmpuint(map.size, >, 13);
  int frames =
    opus_packet_get_nb_samples(map.data + 12, (opus_int32)(map.size - 12), RATE) / FRAME;
  gst_buffer_unmap(rtp, &map);
  return frames;
}

/* GStreamer's Opus payloader with the packing on, two frames a packet. */
static GstHarness *
packing_harness(void)
{
  GstHarness *h = gst_harness_new("rtpopuspay");
  gst_harness_set_src_caps_str(h, "audio/x-opus, channel-mapping-family=(int)0, "
                                  "channels=(int)1, rate=(int)48000");
  hark_opus_pack_attach(h->element);
  hark_opus_pack_set_frames(h->element, 2);
  return h;
}

static void
test_pairs_and_drain(void)
{
  int err;
  OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
  g_assert_nonnull(enc);
  GstHarness *h = packing_harness();
  g_assert_cmpint(gst_harness_push(h, encoded_frame(enc, 0)), ==, GST_FLOW_OK);
  g_assert_cmpuint(gst_harness_buffers_in_queue(h), ==, 0); /* waits for its pair */
  g_assert_cmpint(gst_harness_push(h, encoded_frame(enc, 1)), ==, GST_FLOW_OK);
  g_assert_cmpuint(gst_harness_buffers_in_queue(h), ==, 1);
  GstBuffer *pair = gst_harness_pull(h);
  g_assert_cmpint(frames_in(pair), ==, 2);
  gst_buffer_unref(pair);

  g_assert_cmpint(gst_harness_push(h, encoded_frame(enc, 2)), ==, GST_FLOW_OK);
  g_assert_cmpuint(gst_harness_buffers_in_queue(h), ==, 0);
  g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
  g_assert_cmpuint(gst_harness_buffers_in_queue(h), ==, 1);
  GstBuffer *last = gst_harness_pull(h);
  g_assert_cmpint(frames_in(last), ==, 1);
  g_assert_cmpuint(GST_BUFFER_PTS(last), ==, 2 * FRAME_NS);
  gst_buffer_unref(last);
  gst_harness_teardown(h);
  opus_encoder_destroy(enc);
}

/* After a flush nothing held before it comes out. */
static void
test_flush_drops_held(void)
{
  int err;
  OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
  GstHarness *h = packing_harness();
  g_assert_cmpint(gst_harness_push(h, encoded_frame(enc, 0)), ==, GST_FLOW_OK);
  g_assert_true(gst_harness_push_event(h, gst_event_new_flush_start()));
  g_assert_true(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  g_assert_true(gst_harness_push_event(h, gst_event_new_segment(&segment)));
  g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
  g_assert_cmpuint(gst_harness_buffers_in_queue(h), ==, 0);
  gst_harness_teardown(h);
  opus_encoder_destroy(enc);
}

int
main(int argc, char **argv)
{
  gst_init(&argc, &argv);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/opus-pack/pairs-and-drain", test_pairs_and_drain);
  g_test_add_func("/opus-pack/flush-drops-held", test_flush_drops_held);
  return g_test_run();
}
