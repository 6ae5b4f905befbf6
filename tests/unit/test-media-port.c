/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-media-port.c: a port's queue (core/media/media-port.c), fed through its real sink
 * element by hand, one buffer at a time on the test's thread, and read as the conference
 * mixer reads it, a 20 ms frame a tick: a backlog that stands in the queue is cut down to
 * a frame and the margin (it would delay everyone hearing that leg for the whole call),
 * while a queue that only wobbles with bursty arrivals is left whole. */
#include "media-session.h"

#include <gst/gst.h>

#define RATE 16000
#define FRAME (RATE / 50) /* 20 ms */
#define MS(ms) ((gsize)RATE * (ms) / 1000)

typedef struct {
  HarkMediaPort *port;
  GstElement *sink;
  GstPad *src;
  guint64 pushed;
} Feed;

static void
feed_start(Feed *f, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_media_gst_init(&error));
  f->port = hark_media_port_new(name, RATE, &error);
  g_assert_no_error(error);
  g_autofree char *spec = g_strdup_printf("port:%s", name);
  f->sink = hark_media_port_sink_new(spec, &error);
  g_assert_no_error(error);
  gst_object_ref_sink(f->sink);
  g_assert_cmpint(gst_element_set_state(f->sink, GST_STATE_PLAYING), !=,
                  GST_STATE_CHANGE_FAILURE);
  f->src = gst_pad_new("src", GST_PAD_SRC);
  gst_pad_set_active(f->src, TRUE);
  g_autoptr(GstPad) sink_pad = gst_element_get_static_pad(f->sink, "sink");
  g_assert_cmpint(gst_pad_link(f->src, sink_pad), ==, GST_PAD_LINK_OK);
  g_autoptr(GstCaps) caps =
    gst_caps_from_string("audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1");
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  g_assert_true(gst_pad_push_event(f->src, gst_event_new_stream_start("test")));
  g_assert_true(gst_pad_push_event(f->src, gst_event_new_caps(caps)));
  g_assert_true(gst_pad_push_event(f->src, gst_event_new_segment(&segment)));
}

/* n samples as the decoder would hand them over; the sink takes them on this thread. */
static void
feed_push(Feed *f, gsize n)
{
  gint16 *samples = g_new(gint16, n);
  for (gsize i = 0; i < n; i++)
    samples[i] = (gint16)((f->pushed + i) % 20000);
  GstBuffer *buffer = gst_buffer_new_wrapped(samples, n * sizeof *samples);
  GST_BUFFER_PTS(buffer) = gst_util_uint64_scale(f->pushed, GST_SECOND, RATE);
  GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale(n, GST_SECOND, RATE);
  f->pushed += n;
  g_assert_cmpint(gst_pad_push(f->src, buffer), ==, GST_FLOW_OK);
}

static void
feed_stop(Feed *f)
{
  gst_element_set_state(f->sink, GST_STATE_NULL);
  gst_object_unref(f->src);
  gst_object_unref(f->sink);
  hark_media_port_free(f->port);
}

/* Reads a frame and says whether it came whole. */
static gboolean
tick(Feed *f)
{
  gint16 frame[FRAME];
  return hark_media_port_read(f->port, frame, FRAME) == FRAME;
}

static void
test_standing_backlog_cut(void)
{
  Feed f = { 0 };
  feed_start(&f, "test-port-backlog");
  /* 50 ms at once before the first read (a jitter buffer releasing what it held while
   * the call started), then a frame per tick: without a cut, every tick would find the
   * 50 ms there and the leg would be heard 30 ms later than it needs to be, all call. */
  feed_push(&f, MS(50));
  guint whole = 0;
  for (guint i = 0; i < 60; i++) {
    whole += tick(&f);
    feed_push(&f, FRAME);
  }
  g_assert_cmpuint(whole, ==, 60); /* no gap on the way */
  guint last_ms, mean_ms, send_ms;
  hark_media_port_get_queued(f.port, &last_ms, &mean_ms, &send_ms);
  g_assert_cmpuint(last_ms, <=, 20 + 10 + 5); /* a frame, the margin, the slack */
  guint64 received, dropped, underruns;
  hark_media_port_get_counts(f.port, &received, &dropped, &underruns);
  g_assert_cmpuint(dropped, >=, MS(15));
  g_assert_cmpuint(dropped, <=, MS(20));
  g_assert_cmpuint(underruns, ==, 0);
  feed_stop(&f);
}

static void
test_bursty_queue_kept(void)
{
  Feed f = { 0 };
  feed_start(&f, "test-port-bursty");
  /* Two frames every other tick (a decoder behind a busy scheduler): the queue swings
   * between a frame plus the margin and twice that. That is the margin at work, not
   * backlog: nothing may be dropped, and no read may come up short. */
  feed_push(&f, MS(30));
  guint whole = 0;
  for (guint i = 0; i < 100; i++) {
    whole += tick(&f);
    if (i % 2 == 0)
      feed_push(&f, 2 * FRAME);
  }
  g_assert_cmpuint(whole, ==, 100);
  guint64 received, dropped, underruns;
  hark_media_port_get_counts(f.port, &received, &dropped, &underruns);
  g_assert_cmpuint(dropped, ==, 0);
  g_assert_cmpuint(underruns, ==, 0);
  feed_stop(&f);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/media-port/standing-backlog-cut", test_standing_backlog_cut);
  g_test_add_func("/media-port/bursty-queue-kept", test_bursty_queue_kept);
  return g_test_run();
}
