/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-push-src.c: a live source element that pushes what it is given downstream in the
 * caller's own thread. appsrc queues each buffer for a streaming thread of its own, so
 * every packet and every captured block cost one more wake-up and two context switches;
 * here the transport's receive callback (the main loop) decrypts and hands the packet to
 * the jitter buffer itself, and libpulse's thread encodes and sends the block it filled,
 * which is what baresip does. A buffer given before the element plays is dropped (a
 * live source produces nothing while paused). */
#include "media-session.h"

struct _HarkMediaPushSrc {
  GstElement parent;
  GstPad *src;
  GstCaps *caps;
  gboolean timestamp; /* stamp each buffer with the running time it arrived at */
  gboolean started; /* stream-start, caps and segment are out (under the stream lock) */
};

G_DEFINE_TYPE(HarkMediaPushSrc, hark_media_push_src, GST_TYPE_ELEMENT)

static GstStaticPadTemplate src_template =
  GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static gboolean
src_query(GstPad *pad, GstObject *parent, GstQuery *query)
{
  HarkMediaPushSrc *self = (HarkMediaPushSrc *)parent;
  switch (GST_QUERY_TYPE(query)) {
  case GST_QUERY_LATENCY:
    /* Live, and nothing held back: what it is given leaves at once. */
    gst_query_set_latency(query, TRUE, 0, GST_CLOCK_TIME_NONE);
    return TRUE;
  case GST_QUERY_CAPS: {
    GstCaps *filter = NULL;
    gst_query_parse_caps(query, &filter);
    GstCaps *caps = filter ? gst_caps_intersect_full(filter, self->caps, GST_CAPS_INTERSECT_FIRST)
                           : gst_caps_ref(self->caps);
    gst_query_set_caps_result(query, caps);
    gst_caps_unref(caps);
    return TRUE;
  }
  default:
    return gst_pad_query_default(pad, parent, query);
  }
}

static GstStateChangeReturn
change_state(GstElement *element, GstStateChange transition)
{
  HarkMediaPushSrc *self = (HarkMediaPushSrc *)element;
  GstStateChangeReturn ret =
    GST_ELEMENT_CLASS(hark_media_push_src_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;
  switch (transition) {
  case GST_STATE_CHANGE_PAUSED_TO_READY:
    /* The pad was deactivated (under its stream lock): sticky events are gone. */
    self->started = FALSE;
    return ret;
  case GST_STATE_CHANGE_READY_TO_PAUSED:
  case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
    return GST_STATE_CHANGE_NO_PREROLL;
  default:
    return ret;
  }
}

static void
finalize(GObject *object)
{
  gst_caps_unref(((HarkMediaPushSrc *)object)->caps);
  G_OBJECT_CLASS(hark_media_push_src_parent_class)->finalize(object);
}

static void
hark_media_push_src_class_init(HarkMediaPushSrcClass *klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = finalize;
  element_class->change_state = change_state;
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(element_class, "hark push source", "Source",
                                        "Pushes buffers in the caller's thread", "hark");
}

static void
hark_media_push_src_init(HarkMediaPushSrc *self)
{
  self->src = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_query_function(self->src, src_query);
  gst_pad_use_fixed_caps(self->src);
  gst_element_add_pad(GST_ELEMENT(self), self->src);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
}

GstElement *
hark_media_push_src_new(const char *name, GstCaps *caps, gboolean timestamp)
{
  HarkMediaPushSrc *self = g_object_new(hark_media_push_src_get_type(), "name", name, NULL);
  self->caps = gst_caps_ref(caps);
  self->timestamp = timestamp;
  return GST_ELEMENT(self);
}

/* Called with the stream lock held. */
static void
start_stream(HarkMediaPushSrc *self)
{
  g_autofree char *id = gst_pad_create_stream_id(self->src, GST_ELEMENT(self), NULL);
  GstEvent *start = gst_event_new_stream_start(id);
  gst_event_set_group_id(start, gst_util_group_id_next());
  gst_pad_push_event(self->src, start);
  gst_pad_push_event(self->src, gst_event_new_caps(self->caps));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_pad_push_event(self->src, gst_event_new_segment(&segment));
  self->started = TRUE;
}

GstFlowReturn
hark_media_push_src_push(GstElement *element, GstBuffer *buffer)
{
  HarkMediaPushSrc *self = (HarkMediaPushSrc *)element;
  GST_OBJECT_LOCK(self);
  gboolean playing = GST_STATE(self) == GST_STATE_PLAYING;
  GstClock *clock = playing && self->timestamp && GST_ELEMENT_CLOCK(self) != NULL
                      ? gst_object_ref(GST_ELEMENT_CLOCK(self))
                      : NULL;
  GstClockTime base = GST_ELEMENT_CAST(self)->base_time;
  GST_OBJECT_UNLOCK(self);
  if (!playing) {
    gst_buffer_unref(buffer);
    return GST_FLOW_FLUSHING;
  }
  if (clock != NULL) {
    GstClockTime now = gst_clock_get_time(clock);
    if (!GST_BUFFER_PTS_IS_VALID(buffer))
      GST_BUFFER_PTS(buffer) = GST_BUFFER_DTS(buffer) = now > base ? now - base : 0;
    gst_object_unref(clock);
  }
  /* The stream lock: a state change to READY waits for the push to finish. */
  GST_PAD_STREAM_LOCK(self->src);
  if (!self->started)
    start_stream(self);
  GstFlowReturn ret = gst_pad_push(self->src, buffer);
  GST_PAD_STREAM_UNLOCK(self->src);
  return ret;
}
