/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-io.c: a media session's local ends, as configuration: the sound server, a WAV
 * file in or out, a test tone, silence. Each is a bin with one ghost pad: sources give
 * 48 kHz mono 16-bit audio, sinks take it, so codecs never see where audio comes from. */
#include "media-session.h"
#include "media-spec.h"

#include <gst/app/gstappsink.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define RAW_CAPS "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1"

/* elements[0] ! elements[1] ! ... inside a new bin, the ends ghosted. */
static GstElement *
bin_of(const char *name, GstElement **elements, guint n, gboolean source)
{
  GstElement *bin = gst_bin_new(name);
  for (guint i = 0; i < n; i++)
    gst_bin_add(GST_BIN(bin), elements[i]);
  for (guint i = 0; i + 1 < n; i++)
    gst_element_link(elements[i], elements[i + 1]);
  GstPad *pad = gst_element_get_static_pad(elements[source ? n - 1 : 0], source ? "src" : "sink");
  gst_element_add_pad(bin, gst_ghost_pad_new(source ? "src" : "sink", pad));
  gst_object_unref(pad);
  return bin;
}

GstElement *
hark_media_source_new(const char *spec, guint pulse_buffer_ms, HarkMediaPulseCapture **capture,
                      GError **error)
{
  *capture = NULL;
  GstElement *e[5] = { 0 };
  guint n = 0;
  g_autoptr(GstCaps) caps = NULL;
  if (g_str_equal(spec, "tone") || g_str_has_prefix(spec, "tone:") ||
      g_str_equal(spec, "silence")) {
    double freq = 0, level = 0;
    gboolean tone = !g_str_equal(spec, "silence");
    if (tone && !hark_media_spec_tone(spec, &freq, &level, error))
      return NULL;
    if ((e[n++] = hark_media_element_make("audiotestsrc", error)) == NULL)
      return NULL;
    /* 10 ms buffers: a 20 ms codec frame is never more than half a buffer late. */
    g_object_set(e[0], "is-live", TRUE, "samplesperbuffer", 480, NULL);
    if (tone)
      g_object_set(e[0], "freq", freq, "volume", level, NULL);
    else
      gst_util_set_object_arg(G_OBJECT(e[0]), "wave", "silence");
  } else if (hark_media_spec_wav_path(spec) != NULL) {
    const char *path = hark_media_spec_wav_path(spec);
    if (g_access(path, R_OK) != 0) {
      g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_FILE, "source file '%s': %s", path,
                  g_strerror(errno));
      return NULL;
    }
    /* Paced to the clock as a microphone is: unpaced, the whole file would be encoded and
     * sent at once, and a codec swap or hold during the call would find no audio left. */
    if ((e[n++] = hark_media_element_make("filesrc", error)) == NULL ||
        (e[n++] = hark_media_element_make("wavparse", error)) == NULL ||
        (e[n++] = hark_media_element_make("clocksync", error)) == NULL)
      goto fail;
    /* 960 bytes: 10 ms of 48 kHz 16-bit mono, read and paced as the tone's buffers are (a
     * file's default 4 KiB blocks would leave in 43 ms bursts: jitter at the far end). */
    g_object_set(e[0], "location", path, "blocksize", 960, NULL);
  } else if (g_str_has_prefix(spec, "port:")) {
    if ((e[n++] = hark_media_port_source_new(spec, error)) == NULL)
      return NULL;
  } else if (hark_media_spec_pulse_device(spec) != NULL) {
    /* Read by libpulse's thread (media-pulse.c), which pushes each block on itself; the
     * server delivers 48 kHz mono S16LE, so nothing needs converting. GStreamer's 200 ms
     * default buffer would have been most of the mouth-to-ear budget; ours is one block. */
    caps = gst_caps_from_string(RAW_CAPS);
    e[n++] = hark_media_push_src_new("capture", caps, FALSE);
    *capture = hark_media_pulse_capture_new(hark_media_spec_pulse_device(spec),
                                            MIN(10, pulse_buffer_ms), e[0]);
    return bin_of("source", e, n, TRUE);
  } else {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "source '%s': expected %s", spec,
                HARK_MEDIA_SPEC_SOURCES);
    return NULL;
  }
  if ((e[n++] = hark_media_element_make("audioconvert", error)) == NULL ||
      (e[n++] = hark_media_element_make("audioresample", error)) == NULL ||
      (e[n++] = hark_media_element_make("capsfilter", error)) == NULL)
    goto fail;
  caps = gst_caps_from_string(RAW_CAPS);
  g_object_set(e[n - 1], "caps", caps, NULL);
  return bin_of("source", e, n, TRUE);
fail:
  for (guint i = 0; i < n; i++)
    if (e[i] != NULL)
      gst_object_unref(gst_object_ref_sink(e[i]));
  return NULL;
}

/* ---- WAV out: written here rather than by wavenc, which completes its header only on
 * an EOS that a live RTP pipeline never delivers on its own. ---- */

struct _HarkMediaWav {
  FILE *file;
  char *path;
  GMutex lock;
  guint64 bytes;
};

static void
wav_header(guint8 h[44], guint32 data_bytes)
{
  const guint32 rate = 48000, byte_rate = rate * 2;
  memcpy(h, "RIFF", 4);
  GST_WRITE_UINT32_LE(h + 4, 36 + data_bytes);
  memcpy(h + 8, "WAVEfmt ", 8);
  GST_WRITE_UINT32_LE(h + 16, 16);
  GST_WRITE_UINT16_LE(h + 20, 1); /* PCM */
  GST_WRITE_UINT16_LE(h + 22, 1); /* mono */
  GST_WRITE_UINT32_LE(h + 24, rate);
  GST_WRITE_UINT32_LE(h + 28, byte_rate);
  GST_WRITE_UINT16_LE(h + 32, 2);
  GST_WRITE_UINT16_LE(h + 34, 16);
  memcpy(h + 36, "data", 4);
  GST_WRITE_UINT32_LE(h + 40, data_bytes);
}

static GstFlowReturn
wav_new_sample(GstAppSink *sink, gpointer data)
{
  HarkMediaWav *wav = data;
  g_autoptr(GstSample) sample = gst_app_sink_pull_sample(sink);
  GstBuffer *buffer = sample ? gst_sample_get_buffer(sample) : NULL;
  GstMapInfo map;
  if (buffer == NULL || !gst_buffer_map(buffer, &map, GST_MAP_READ))
    return GST_FLOW_OK;
  g_mutex_lock(&wav->lock);
  if (wav->file != NULL && wav->bytes + map.size < G_MAXUINT32 - 64) {
    if (fwrite(map.data, 1, map.size, wav->file) == map.size)
      wav->bytes += map.size;
  }
  g_mutex_unlock(&wav->lock);
  gst_buffer_unmap(buffer, &map);
  return GST_FLOW_OK;
}

void
hark_media_wav_close(HarkMediaWav *wav)
{
  if (wav == NULL)
    return;
  g_mutex_lock(&wav->lock);
  if (wav->file != NULL) {
    guint8 h[44];
    wav_header(h, (guint32)wav->bytes);
    if (fseek(wav->file, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, wav->file) != sizeof h ||
        fclose(wav->file) != 0)
      g_warning("media sink '%s': could not complete the WAV header", wav->path);
    wav->file = NULL;
  }
  g_mutex_unlock(&wav->lock);
}

void
hark_media_wav_free(HarkMediaWav *wav)
{
  if (wav == NULL)
    return;
  hark_media_wav_close(wav);
  g_mutex_clear(&wav->lock);
  g_free(wav->path);
  g_free(wav);
}

GstElement *
hark_media_sink_new(const char *spec, guint pulse_buffer_ms, HarkMediaWav **wav_out, GError **error)
{
  GstElement *e[2] = { 0 };
  guint n = 0;
  *wav_out = NULL;
  if (g_str_equal(spec, "null")) {
    if ((e[n++] = hark_media_element_make("fakesink", error)) == NULL)
      return NULL;
    g_object_set(e[0], "sync", TRUE, "async", FALSE, NULL);
  } else if (g_str_has_prefix(spec, "port:")) {
    /* A conference host's leg (media-port.c): a bin already. */
    return hark_media_port_sink_new(spec, error);
  } else if (hark_media_spec_wav_path(spec) != NULL) {
    const char *path = hark_media_spec_wav_path(spec);
    FILE *file = path[0] ? fopen(path, "wb") : NULL;
    guint8 h[44];
    wav_header(h, 0);
    if (file == NULL || fwrite(h, 1, sizeof h, file) != sizeof h) {
      g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_FILE, "sink file '%s': %s", path,
                  g_strerror(errno));
      if (file != NULL)
        fclose(file);
      return NULL;
    }
    HarkMediaWav *wav = g_new0(HarkMediaWav, 1);
    wav->file = file;
    wav->path = g_strdup(path);
    g_mutex_init(&wav->lock);
    if ((e[n++] = hark_media_element_make("appsink", error)) == NULL) {
      hark_media_wav_free(wav);
      return NULL;
    }
    g_autoptr(GstCaps) caps = gst_caps_from_string(RAW_CAPS);
    /* Not synchronised: the file gets each buffer as it is decoded. */
    g_object_set(e[0], "sync", FALSE, "async", FALSE, "caps", caps, NULL);
    GstAppSinkCallbacks callbacks = { .new_sample = wav_new_sample };
    gst_app_sink_set_callbacks(GST_APP_SINK(e[0]), &callbacks, wav, NULL);
    *wav_out = wav;
  } else if (hark_media_spec_pulse_device(spec) != NULL) {
    /* Written by the decoding thread where each buffer is due (media-pulse-playback.c),
     * with periods of at most 10 ms: the device gets half a period of latency of its
     * own. With none (pulsesink's buffer of one period) the server and every capture of
     * its monitor woke about 2,000 times a second (22 % of a core in the benchmark). */
    e[n++] = hark_media_pulse_sink_new(hark_media_spec_pulse_device(spec),
                                       MIN(10, pulse_buffer_ms));
  } else {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "sink '%s': expected %s", spec,
                HARK_MEDIA_SPEC_SINKS);
    return NULL;
  }
  return bin_of("sink", e, n, FALSE);
}
