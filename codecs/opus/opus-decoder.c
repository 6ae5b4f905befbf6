/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-decoder.c: the Opus plugin's decoder element: libopus behind a GstAudioDecoder,
 * whose in-band FEC costs delay only when a packet was lost.
 *
 * GStreamer's opusdec, with use-inband-fec, holds every frame back until the next packet
 * has come, so as to have that packet's FEC at hand should the frame be missing: 20 ms
 * more mouth to ear on every call, lossy or not (make bench's clean loopback call: 65.9 ms
 * with it, 53.7 ms without; docs/benchmarks.md). Here a packet is decoded the moment it
 * comes. Only a gap (a packet the jitter buffer gave up on, which the base class hands in
 * as an empty buffer) waits, for the packet after it: libopus rebuilds the lost frame
 * from that packet's FEC (or conceals it, when the packet has none), then decodes the
 * packet itself. The jitter buffer declares a loss only at the lost packet's deadline,
 * by which time the next one is usually in it already, so the rebuilt frame follows
 * at once. A packet libopus refuses (a hostile or broken sender) is concealed, never an
 * error that would stop the call. */
#include "opus-decoder.h"

#include <gst/audio/audio.h>
#include <opus.h>

GST_DEBUG_CATEGORY_STATIC(hark_opus_decoder_debug);
#define GST_CAT_DEFAULT hark_opus_decoder_debug

#define RATE 48000
/* libopus conceals in steps of 2.5 ms; shorter remainders wait for the next gap. */
#define PLC_STEP (RATE / 400)
/* A gap longer than this (an outage) is concealed only so far: libopus's concealment has
 * faded to silence long before, and the sink plays a hole in the timeline as silence. */
#define MAX_GAP_SAMPLES (RATE * 2)
#define DEFAULT_FRAME_SAMPLES (RATE / 50)

typedef struct {
  GstAudioDecoder parent;
  OpusDecoder *opus;
  int channels;
  int gap_samples; /* a lost stretch waiting for the next packet's FEC; 0: none */
  GstClockTime leftover; /* gap time shorter than PLC_STEP, carried to the next gap */
  int last_samples; /* the last packet's duration, for a gap that gives none */
} HarkOpusDecoder;

typedef struct {
  GstAudioDecoderClass parent_class;
} HarkOpusDecoderClass;

GType hark_opus_decoder_get_type(void);
G_DEFINE_TYPE(HarkOpusDecoder, hark_opus_decoder, GST_TYPE_AUDIO_DECODER)

static GstStaticPadTemplate sink_template =
  GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                          GST_STATIC_CAPS("audio/x-opus, channel-mapping-family = (int) 0"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
  "src", GST_PAD_SRC, GST_PAD_ALWAYS,
  GST_STATIC_CAPS("audio/x-raw, format = (string) " GST_AUDIO_NE(S16) ", layout = (string) "
                  "interleaved, rate = (int) 48000, channels = (int) [ 1, 2 ]"));

static GstCaps *
raw_caps(int channels)
{
  return gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, GST_AUDIO_NE(S16), "layout",
                             G_TYPE_STRING, "interleaved", "rate", G_TYPE_INT, RATE, "channels",
                             G_TYPE_INT, channels, NULL);
}

/* The stream's channels if downstream takes them, else the other count: libopus mixes
 * down or up as asked, which saves a converter after it. */
static int
output_channels(GstAudioDecoder *base, int stream_channels)
{
  g_autoptr(GstCaps) peer = gst_pad_peer_query_caps(GST_AUDIO_DECODER_SRC_PAD(base), NULL);
  g_autoptr(GstCaps) want = raw_caps(stream_channels);
  if (peer == NULL || gst_caps_can_intersect(peer, want))
    return stream_channels;
  g_autoptr(GstCaps) other = raw_caps(3 - stream_channels);
  return gst_caps_can_intersect(peer, other) ? 3 - stream_channels : stream_channels;
}

static gboolean
set_format(GstAudioDecoder *base, GstCaps *caps)
{
  HarkOpusDecoder *d = (HarkOpusDecoder *)base;
  int stream_channels = 2; /* RFC 7587: the decoder is always ready for stereo */
  gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &stream_channels);
  if (stream_channels < 1 || stream_channels > 2) {
    GST_ERROR_OBJECT(d, "an Opus stream of %d channels: only mono and stereo are decoded",
                     stream_channels);
    return FALSE;
  }
  int channels = output_channels(base, stream_channels);
  if (d->opus == NULL || channels != d->channels) {
    int err = OPUS_OK;
    g_clear_pointer(&d->opus, opus_decoder_destroy);
    d->opus = opus_decoder_create(RATE, channels, &err);
    if (d->opus == NULL) {
      GST_ERROR_OBJECT(d, "libopus refused a decoder: %s", opus_strerror(err));
      return FALSE;
    }
    d->channels = channels;
  }
  GstAudioInfo info;
  gst_audio_info_set_format(&info, GST_AUDIO_FORMAT_S16, RATE, channels, NULL);
  return gst_audio_decoder_set_output_format(base, &info);
}

/* samples of audio from libopus (data NULL: concealed; fec: rebuilt from data's FEC),
 * handed on as the oldest frame waiting. A packet libopus refuses is concealed. */
static GstFlowReturn
finish_decoded(HarkOpusDecoder *d, const guchar *data, gsize size, int samples, gboolean fec)
{
  GstAudioDecoder *base = GST_AUDIO_DECODER(d);
  gsize bytes = (gsize)samples * (gsize)d->channels * sizeof(opus_int16);
  GstBuffer *out = gst_audio_decoder_allocate_output_buffer(base, bytes);
  GstMapInfo map;
  if (out == NULL || !gst_buffer_map(out, &map, GST_MAP_WRITE)) {
    gst_clear_buffer(&out);
    GST_ERROR_OBJECT(d, "no output buffer of %" G_GSIZE_FORMAT " bytes", bytes);
    return GST_FLOW_ERROR;
  }
  opus_int16 *pcm = (opus_int16 *)map.data;
  int n = opus_decode(d->opus, data, (opus_int32)size, pcm, samples, fec);
  if (n < 0 && data != NULL) {
    GST_WARNING_OBJECT(d, "libopus refused a packet of %" G_GSIZE_FORMAT " bytes (%s): concealed",
                       size, opus_strerror(n));
    n = opus_decode(d->opus, NULL, 0, pcm, samples, 0);
  }
  if (n < 0)
    memset(pcm, 0, bytes); /* not even concealment: silence keeps the timeline */
  gst_buffer_unmap(out, &map);
  return gst_audio_decoder_finish_frame(base, out, 1);
}

/* The gap waiting for a next packet that did not come in time: concealed now. */
static GstFlowReturn
conceal_pending(HarkOpusDecoder *d)
{
  GST_DEBUG_OBJECT(d, "concealing %d samples: no packet came after the gap", d->gap_samples);
  int samples = d->gap_samples;
  d->gap_samples = 0;
  return finish_decoded(d, NULL, 0, samples, FALSE);
}

/* A lost stretch: held for the next packet's FEC (a stretch already held had no next
 * packet, two in a row were lost: that one is concealed first). */
static GstFlowReturn
on_gap(HarkOpusDecoder *d, GstBuffer *gap)
{
  GstFlowReturn ret = d->gap_samples > 0 ? conceal_pending(d) : GST_FLOW_OK;
  if (ret != GST_FLOW_OK)
    return ret;
  GstClockTime duration = GST_BUFFER_DURATION_IS_VALID(gap)
                            ? GST_BUFFER_DURATION(gap)
                            : gst_util_uint64_scale_int(d->last_samples, GST_SECOND, RATE);
  duration += d->leftover;
  guint64 steps = gst_util_uint64_scale(duration, RATE, GST_SECOND * PLC_STEP);
  d->leftover = duration - gst_util_uint64_scale(steps * PLC_STEP, GST_SECOND, RATE);
  int samples = (int)MIN(steps * PLC_STEP, (guint64)MAX_GAP_SAMPLES);
  if (samples == 0) /* less than libopus can conceal: nothing plays for it */
    return gst_audio_decoder_finish_frame(GST_AUDIO_DECODER(d), NULL, 1);
  d->gap_samples = samples;
  return GST_FLOW_OK;
}

static GstFlowReturn
decode_packet(HarkOpusDecoder *d, const guchar *data, gsize size)
{
  int samples = opus_packet_get_nb_samples(data, (opus_int32)size, RATE);
  if (samples <= 0 || samples > RATE * 120 / 1000) {
    GST_WARNING_OBJECT(d, "not an Opus packet (%" G_GSIZE_FORMAT " bytes): concealed", size);
    return finish_decoded(d, NULL, 0, d->last_samples, FALSE);
  }
  d->last_samples = samples;
  return finish_decoded(d, data, size, samples, FALSE);
}

static GstFlowReturn
handle_frame(GstAudioDecoder *base, GstBuffer *buffer)
{
  HarkOpusDecoder *d = (HarkOpusDecoder *)base;
  if (buffer == NULL) /* draining: a held gap has no next packet coming */
    return d->gap_samples > 0 ? conceal_pending(d) : GST_FLOW_OK;
  if (gst_buffer_get_size(buffer) == 0)
    return on_gap(d, buffer);
  /* Finishing a frame may release its input: held until the packet is decoded. */
  g_autoptr(GstBuffer) packet = gst_buffer_ref(buffer);
  GstMapInfo map;
  if (!gst_buffer_map(packet, &map, GST_MAP_READ))
    return GST_FLOW_ERROR;
  GstFlowReturn ret = GST_FLOW_OK;
  if (d->gap_samples > 0) {
    int samples = d->gap_samples;
    d->gap_samples = 0;
    GST_DEBUG_OBJECT(d, "rebuilding %d samples from the next packet (%" G_GSIZE_FORMAT " bytes)",
                     samples, map.size);
    /* libopus conceals all but the last frame's worth and rebuilds that from the FEC. */
    ret = finish_decoded(d, map.data, map.size, samples, TRUE);
  }
  if (ret == GST_FLOW_OK)
    ret = decode_packet(d, map.data, map.size);
  gst_buffer_unmap(packet, &map);
  return ret;
}

static void
forget_gap(HarkOpusDecoder *d)
{
  d->gap_samples = 0;
  d->leftover = 0;
  d->last_samples = DEFAULT_FRAME_SAMPLES;
}

static void
flush(GstAudioDecoder *base, gboolean hard)
{
  HarkOpusDecoder *d = (HarkOpusDecoder *)base;
  forget_gap(d);
  if (hard && d->opus != NULL)
    opus_decoder_ctl(d->opus, OPUS_RESET_STATE);
}

static gboolean
start(GstAudioDecoder *base)
{
  /* Gaps come in as empty buffers, to be concealed or rebuilt here (said at each start:
   * the base class forgets it when it resets). */
  gst_audio_decoder_set_plc_aware(base, TRUE);
  forget_gap((HarkOpusDecoder *)base);
  return TRUE;
}

static gboolean
stop(GstAudioDecoder *base)
{
  HarkOpusDecoder *d = (HarkOpusDecoder *)base;
  g_clear_pointer(&d->opus, opus_decoder_destroy);
  d->channels = 0;
  return TRUE;
}

static void
finalize(GObject *object)
{
  HarkOpusDecoder *d = (HarkOpusDecoder *)object;
  g_clear_pointer(&d->opus, opus_decoder_destroy);
  G_OBJECT_CLASS(hark_opus_decoder_parent_class)->finalize(object);
}

static void
hark_opus_decoder_class_init(HarkOpusDecoderClass *klass)
{
  GstElementClass *element = GST_ELEMENT_CLASS(klass);
  GstAudioDecoderClass *decoder = GST_AUDIO_DECODER_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = finalize;
  gst_element_class_add_static_pad_template(element, &sink_template);
  gst_element_class_add_static_pad_template(element, &src_template);
  gst_element_class_set_static_metadata(
    element, "hark Opus decoder", "Codec/Decoder/Audio",
    "Opus with in-band FEC that waits for the next packet only after a loss",
    "hark developers");
  decoder->start = start;
  decoder->stop = stop;
  decoder->set_format = set_format;
  decoder->handle_frame = handle_frame;
  decoder->flush = flush;
  GST_DEBUG_CATEGORY_INIT(hark_opus_decoder_debug, HARK_OPUS_DECODER_NAME, 0,
                          "hark's Opus decoder");
}

static void
hark_opus_decoder_init(HarkOpusDecoder *d)
{
  GstAudioDecoder *base = GST_AUDIO_DECODER(d);
  gst_audio_decoder_set_plc(base, TRUE);
  gst_audio_decoder_set_use_default_pad_acceptcaps(base, TRUE);
  GST_PAD_SET_ACCEPT_TEMPLATE(GST_AUDIO_DECODER_SINK_PAD(base));
  forget_gap(d);
}

gboolean
hark_opus_decoder_register(void)
{
  static gsize once = 0;
  static gboolean registered = FALSE;
  if (g_once_init_enter(&once)) {
    registered =
      gst_element_register(NULL, HARK_OPUS_DECODER_NAME, GST_RANK_NONE, hark_opus_decoder_get_type());
    g_once_init_leave(&once, 1);
  }
  return registered;
}
