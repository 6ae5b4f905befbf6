/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-quiet.c: digital silence coded at complexity 0 (opus-quiet.h says why). A probe on
 * the encoder's input counts how long the input has been exact zeros; past QUIET_AFTER (more
 * than the longest frame, 60 ms, so every sample the encoder still holds is a zero) the
 * complexity drops to 0, and the first block with a sample that is not zero restores
 * the configured complexity before the encoder takes the block in. The probe runs in the
 * streaming thread and a live setting in the main loop's: the lock keeps the configured
 * value and the property in step. */
#include "opus-quiet.h"

#include <string.h>

#define QUIET_KEY "hark-opus-quiet"
#define QUIET_AFTER (100 * GST_MSECOND)
/* 48 kHz, 16-bit mono: what the engine feeds an encoder (a buffer without a duration). */
#define BYTES_PER_SECOND (48000 * 2)

typedef struct {
  GMutex lock;
  GstElement *encoder; /* not a reference: the probe lives as long as the encoder */
  int complexity;      /* configured */
  gboolean lowered;    /* coding at 0 now */
  GstClockTime silent; /* how long the input has been zeros */
} Quiet;

static void
quiet_free(gpointer data)
{
  Quiet *q = data;
  g_mutex_clear(&q->lock);
  g_free(q);
}

static gboolean
all_zero(const guint8 *data, gsize size)
{
  gsize i = 0;
  for (; i + sizeof(guint64) <= size; i += sizeof(guint64)) {
    guint64 word;
    memcpy(&word, data + i, sizeof word);
    if (word != 0)
      return FALSE;
  }
  for (; i < size; i++)
    if (data[i] != 0)
      return FALSE;
  return TRUE;
}

static gboolean
buffer_silent(GstBuffer *buffer)
{
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ))
    return FALSE;
  gboolean silent = all_zero(map.data, map.size);
  gst_buffer_unmap(buffer, &map);
  return silent;
}

static GstClockTime
buffer_duration(GstBuffer *buffer)
{
  if (GST_BUFFER_DURATION_IS_VALID(buffer))
    return GST_BUFFER_DURATION(buffer);
  return gst_util_uint64_scale(gst_buffer_get_size(buffer), GST_SECOND, BYTES_PER_SECOND);
}

/* With the lock held. */
static void
quiet_apply(Quiet *q, gboolean lowered)
{
  if (q->lowered == lowered)
    return;
  q->lowered = lowered;
  g_object_set(q->encoder, "complexity", lowered ? 0 : q->complexity, NULL);
}

static GstPadProbeReturn
on_input(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  (void)pad;
  Quiet *q = data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  gboolean silent = buffer != NULL && buffer_silent(buffer);
  g_mutex_lock(&q->lock);
  q->silent = silent ? q->silent + buffer_duration(buffer) : 0;
  /* Nothing to gain when the configured complexity is 0 already. */
  quiet_apply(q, q->complexity > 0 && q->silent > QUIET_AFTER);
  g_mutex_unlock(&q->lock);
  return GST_PAD_PROBE_OK;
}

void
hark_opus_quiet_attach(GstElement *encoder, int complexity)
{
  if (g_object_get_data(G_OBJECT(encoder), QUIET_KEY) != NULL) {
    hark_opus_quiet_set_complexity(encoder, complexity);
    return;
  }
  g_autoptr(GstPad) sink = gst_element_get_static_pad(encoder, "sink");
  if (sink == NULL)
    return;
  Quiet *q = g_new0(Quiet, 1);
  g_mutex_init(&q->lock);
  q->encoder = encoder;
  q->complexity = complexity;
  g_object_set_data_full(G_OBJECT(encoder), QUIET_KEY, q, quiet_free);
  gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, on_input, q, NULL);
}

void
hark_opus_quiet_set_complexity(GstElement *encoder, int complexity)
{
  Quiet *q = g_object_get_data(G_OBJECT(encoder), QUIET_KEY);
  if (q == NULL) {
    g_object_set(encoder, "complexity", complexity, NULL);
    return;
  }
  g_mutex_lock(&q->lock);
  q->complexity = complexity;
  /* While silent the encoder stays at 0; the new value applies when sound comes back. */
  if (!q->lowered)
    g_object_set(encoder, "complexity", complexity, NULL);
  else if (complexity == 0)
    q->lowered = FALSE;
  g_mutex_unlock(&q->lock);
}

gboolean
hark_opus_quiet_is_lowered(GstElement *encoder)
{
  Quiet *q = g_object_get_data(G_OBJECT(encoder), QUIET_KEY);
  if (q == NULL)
    return FALSE;
  g_mutex_lock(&q->lock);
  gboolean lowered = q->lowered;
  g_mutex_unlock(&q->lock);
  return lowered;
}
