/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-opus-feed.c: feeding the Opus encoder element in the unit tests (test-opus-feed.h). */
#include "test-opus-feed.h"

#include "opus-encoder.h"

#include <math.h>
#include <opus.h>

void
opus_feed_init(OpusFeed *f, const char *audio_type, double tone_hz)
{
  g_assert_true(hark_opus_encoder_register());
  f->h = gst_harness_new(HARK_OPUS_ENCODER_NAME);
  gst_util_set_object_arg(G_OBJECT(f->h->element), "audio-type", audio_type);
  gst_harness_set_src_caps_str(
    f->h, "audio/x-raw, format=S16LE, rate=48000, channels=1, layout=interleaved");
  f->blocks = 0;
  f->tone_hz = tone_hz;
}

void
opus_feed_clear(OpusFeed *f)
{
  gst_harness_teardown(f->h);
}

void
opus_feed_samples(OpusFeed *f, int samples, gboolean tone)
{
  GstBuffer *buffer = gst_buffer_new_allocate(NULL, (gsize)samples * 2, NULL);
  GstMapInfo map;
  g_assert_true(gst_buffer_map(buffer, &map, GST_MAP_WRITE));
  gint16 *pcm = (gint16 *)map.data;
  for (int i = 0; i < samples; i++)
    pcm[i] = tone ? (gint16)(8000 * sin(2 * G_PI * f->tone_hz *
                                        ((double)f->blocks * OPUS_FEED_BLOCK + i) / OPUS_FEED_RATE))
                  : 0;
  gst_buffer_unmap(buffer, &map);
  GST_BUFFER_PTS(buffer) = f->blocks * 10 * GST_MSECOND;
  GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale_int(samples, GST_SECOND, OPUS_FEED_RATE);
  g_assert_cmpint(gst_harness_push(f->h, buffer), ==, GST_FLOW_OK);
  f->blocks++;
}

void
opus_feed(OpusFeed *f, guint count, gboolean tone)
{
  for (guint b = 0; b < count; b++)
    opus_feed_samples(f, OPUS_FEED_BLOCK, tone);
}

GPtrArray *
opus_feed_packets(OpusFeed *f)
{
  GPtrArray *packets = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  GstBuffer *buffer;
  while ((buffer = gst_harness_try_pull(f->h)) != NULL) {
    GstMapInfo map;
    g_assert_true(gst_buffer_map(buffer, &map, GST_MAP_READ));
    g_ptr_array_add(packets, g_bytes_new(map.data, map.size));
    gst_buffer_unmap(buffer, &map);
    gst_buffer_unref(buffer);
  }
  return packets;
}

int
opus_feed_packet_samples(GBytes *packet)
{
  gsize size;
  const guchar *data = g_bytes_get_data(packet, &size);
  return opus_packet_get_nb_samples(data, (opus_int32)size, OPUS_FEED_RATE);
}

double
opus_feed_crossings_per_second(const gint16 *pcm, int n)
{
  int crossings = 0;
  for (int i = 1; i < n; i++)
    if ((pcm[i - 1] < 0) != (pcm[i] < 0))
      crossings++;
  return crossings * (double)OPUS_FEED_RATE / n;
}
