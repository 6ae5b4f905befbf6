/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-pack.c: two Opus packets into one before the payloader (opus-pack.h). A buffer
 * probe on the payloader's sink pad holds every other packet and hands the payloader the
 * pair joined; two that cannot join (a mode or bandwidth change between them, a DTX
 * frame) go out one by one, and so does a frame held when the stream ends. */
#include "opus-pack.h"

#include <opus.h>

#define PACK_KEY "hark-opus-pack"

typedef struct {
  gint frames; /* atomic: set from the main thread, read in the streaming thread */
  GstBuffer *held; /* streaming thread only */
  gboolean draining; /* streaming thread only: the held frame is on its way out alone */
  OpusRepacketizer *repacketizer;
} Pack;

static void
pack_free(gpointer data)
{
  Pack *p = data;
  gst_clear_buffer(&p->held);
  opus_repacketizer_destroy(p->repacketizer);
  g_free(p);
}

/* first and second joined into one packet (its time first's, its duration both), or
 * NULL when they cannot be. */
static GstBuffer *
join(Pack *p, GstBuffer *first, GstBuffer *second)
{
  GstMapInfo a, b;
  if (!gst_buffer_map(first, &a, GST_MAP_READ))
    return NULL;
  if (!gst_buffer_map(second, &b, GST_MAP_READ)) {
    gst_buffer_unmap(first, &a);
    return NULL;
  }
  GstBuffer *joined = NULL;
  /* 1-2 bytes: a DTX frame, which the payloader drops on its own; not worth joining. */
  opus_repacketizer_init(p->repacketizer);
  if (a.size > 2 && b.size > 2 && a.size < G_MAXINT32 / 2 && b.size < G_MAXINT32 / 2 &&
      opus_repacketizer_cat(p->repacketizer, a.data, (opus_int32)a.size) == OPUS_OK &&
      opus_repacketizer_cat(p->repacketizer, b.data, (opus_int32)b.size) == OPUS_OK) {
    opus_int32 room = (opus_int32)(a.size + b.size + 8);
    guint8 *out = g_malloc(room);
    opus_int32 n = opus_repacketizer_out(p->repacketizer, out, room);
    if (n > 0) {
      joined = gst_buffer_new_wrapped(out, n);
      gst_buffer_copy_into(joined, first, GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS, 0,
                           -1);
      if (GST_BUFFER_DURATION_IS_VALID(first) && GST_BUFFER_DURATION_IS_VALID(second))
        GST_BUFFER_DURATION(joined) = GST_BUFFER_DURATION(first) + GST_BUFFER_DURATION(second);
    } else {
      g_free(out);
    }
  }
  gst_buffer_unmap(second, &b);
  gst_buffer_unmap(first, &a);
  return joined;
}

static GstPadProbeReturn
on_encoded(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Pack *p = data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  if (p->draining)
    return GST_PAD_PROBE_OK;
  if (p->held == NULL) {
    if (g_atomic_int_get(&p->frames) <= 1)
      return GST_PAD_PROBE_OK;
    p->held = gst_buffer_ref(buffer); /* its pair comes next */
    return GST_PAD_PROBE_DROP;
  }
  GstBuffer *joined = join(p, p->held, buffer);
  if (joined != NULL) {
    gst_clear_buffer(&p->held);
  } else {
    /* The held one goes alone; this one waits for a pair of its own. */
    joined = p->held;
    p->held = gst_buffer_ref(buffer);
  }
  gst_buffer_unref(buffer);
  GST_PAD_PROBE_INFO_DATA(info) = joined;
  return GST_PAD_PROBE_OK;
}

/* A codec swap drains the chain with EOS (media-send.c): a held frame goes out alone
 * before it, or the last 60 ms before the swap would never be heard. A flush drops it,
 * as it drops everything else on the way. */
static GstPadProbeReturn
on_event(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Pack *p = data;
  GstEventType type = GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info));
  if (type == GST_EVENT_FLUSH_STOP) {
    gst_clear_buffer(&p->held);
  } else if (type == GST_EVENT_EOS && p->held != NULL) {
    p->draining = TRUE;
    gst_pad_chain(pad, g_steal_pointer(&p->held));
    p->draining = FALSE;
  }
  return GST_PAD_PROBE_OK;
}

void
hark_opus_pack_attach(GstElement *payloader)
{
  g_autoptr(GstPad) sink = gst_element_get_static_pad(payloader, "sink");
  if (sink == NULL || g_object_get_data(G_OBJECT(payloader), PACK_KEY) != NULL)
    return;
  Pack *p = g_new0(Pack, 1);
  p->frames = 1;
  p->repacketizer = opus_repacketizer_create();
  /* The payloader owns it: freed when the chain is, after its streaming thread is gone. */
  g_object_set_data_full(G_OBJECT(payloader), PACK_KEY, p, pack_free);
  gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, on_encoded, p, NULL);
  gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH,
                    on_event, p, NULL);
}

void
hark_opus_pack_set_frames(GstElement *payloader, int frames)
{
  Pack *p = g_object_get_data(G_OBJECT(payloader), PACK_KEY);
  if (p != NULL)
    g_atomic_int_set(&p->frames, CLAMP(frames, 1, 2));
}
