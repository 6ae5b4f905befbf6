/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-encoder.c: the Opus plugin's encoder element: libopus's one-stream encoder behind
 * a GstAudioEncoder, with opusenc's properties (the same names, values and nicks), so
 * that the plugin drives it as it drove opusenc.
 *
 * GStreamer's opusenc codes through libopus's multistream API, even for one mono
 * stream, and the multistream encoder sizes its stream encoders again on every frame.
 * In Debian's libopus (built with custom modes) that sizing creates a CELT mode, which
 * runs CPUID: a trap to the hypervisor in a virtual machine, about 15 us each. Per 20 ms
 * frame that made 245 us against 211 at complexity 10, 80 against 47 at 0
 * (docs/benchmarks.md, "CPU").
 *
 * A setting changed while running (the plugin's live settings and its adaptation, from
 * the main loop) is stored under the lock and taken by the streaming thread before its
 * next frame, so libopus's state is only ever touched by that thread. A new frame size
 * therefore applies one frame later than with opusenc (which resized from the setter's
 * thread): the frame the base class had already cut is coded at the old size.
 *
 * Digital silence (a muted source, a silent file, a microphone that gives exact zeros) is
 * coded in its own way once it has lasted QUIET_AFTER_MS, more than the longest frame,
 * so that every sample the encoder still holds is a zero. libopus spends nearly as much
 * on a frame of zeros as on a frame of speech at the default complexity 10 (its tonality
 * analysis and SILK's search run all the same), and SILK takes 7 bytes for it where
 * CELT's VBR takes 3. So the silence is coded at complexity 0 and, unless the bitrate is
 * constant or DTX is on, as "music" at a bitrate above SILK's range, which makes libopus
 * choose CELT: 14 us and 3 bytes a frame instead of 35 us and 7 (libopus 1.3.1, 20
 * kbit/s wideband voice). DTX keeps SILK, whose DTX drops silent frames; CBR would fill
 * CELT's frames to the higher rate. The first frame with a sample that is not zero is
 * coded with what is configured, so speech is never coded this way; libopus's own
 * switch from CELT back to SILK (a redundant 5 ms CELT frame) joins the two. */
#include "opus-encoder.h"

#include <gst/audio/audio.h>
#include <opus.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC(hark_opus_encoder_debug);
#define GST_CAT_DEFAULT hark_opus_encoder_debug

/* libopus's advice for the most one packet can take. */
#define MAX_PACKET 4000
#define QUIET_AFTER_MS 100
/* libopus 1.3.1 leaves SILK for CELT at about 28 kbit/s when the signal is music. */
#define QUIET_BITRATE 32000

typedef enum {
  BITRATE_CBR,
  BITRATE_VBR,
  BITRATE_CONSTRAINED_VBR,
} BitrateType;

typedef struct {
  int audio_type; /* OPUS_APPLICATION_*: at the start only (libopus refuses it later) */
  int bandwidth; /* OPUS_BANDWIDTH_* or OPUS_AUTO */
  int frame_ms; /* 2 stands for 2.5 */
  int bitrate; /* bit/s */
  int bitrate_type; /* BitrateType */
  int complexity;
  int packet_loss; /* percent */
  gboolean inband_fec;
  gboolean dtx;
  int signal; /* OPUS_AUTO; OPUS_SIGNAL_MUSIC while coding digital silence (not a property) */
} EncoderSettings;

typedef struct {
  GstAudioEncoder parent;
  GMutex lock; /* settings, between set_property and the streaming thread */
  EncoderSettings settings;
  /* The streaming thread's: */
  OpusEncoder *opus;
  EncoderSettings applied; /* what opus codes with */
  int rate;
  int channels;
  int frame_samples; /* per channel, what the base class hands in now */
  gint64 silent_samples; /* per channel, of zeros in a row up to the last frame */
  gint quiet; /* coding digital silence now (atomic: tests read it) */
} HarkOpusEncoder;

typedef struct {
  GstAudioEncoderClass parent_class;
} HarkOpusEncoderClass;

GType hark_opus_encoder_get_type(void);
G_DEFINE_TYPE(HarkOpusEncoder, hark_opus_encoder, GST_TYPE_AUDIO_ENCODER)

enum {
  PROP_0,
  PROP_AUDIO_TYPE,
  PROP_BANDWIDTH,
  PROP_FRAME_SIZE,
  PROP_BITRATE,
  PROP_BITRATE_TYPE,
  PROP_COMPLEXITY,
  PROP_PACKET_LOSS,
  PROP_INBAND_FEC,
  PROP_DTX,
};

static const EncoderSettings defaults = {
  .audio_type = OPUS_APPLICATION_AUDIO,
  .bandwidth = OPUS_BANDWIDTH_FULLBAND,
  .frame_ms = 20,
  .bitrate = 64000,
  .bitrate_type = BITRATE_CONSTRAINED_VBR,
  .complexity = 10,
  .packet_loss = 0,
  .inband_fec = FALSE,
  .dtx = FALSE,
  .signal = OPUS_AUTO,
};

#define RATES "{ 48000, 24000, 16000, 12000, 8000 }"

#define RAW_FORMAT GST_AUDIO_NE(S16) /* opus_encode() takes native 16-bit samples */
#define SINK_CAPS                              \
  "audio/x-raw, format = (string) " RAW_FORMAT \
  ", layout = (string) interleaved, rate = (int) " RATES ", channels = (int) [ 1, 2 ]"

static GstStaticPadTemplate sink_template =
  GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(SINK_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
  "src", GST_PAD_SRC, GST_PAD_ALWAYS,
  GST_STATIC_CAPS("audio/x-opus, channel-mapping-family = (int) 0, rate = (int) " RATES
                  ", channels = (int) [ 1, 2 ]"));

/* ---- the enums, as opusenc's ------------------------------------------------------------ */

static GType
enum_type(gsize *once, const char *name, const GEnumValue *values)
{
  if (g_once_init_enter(once))
    g_once_init_leave(once, g_enum_register_static(name, values));
  return (GType)*once;
}

static GType
audio_type_type(void)
{
  static gsize once = 0;
  static const GEnumValue values[] = {
    { OPUS_APPLICATION_AUDIO, "Generic audio", "generic" },
    { OPUS_APPLICATION_VOIP, "Voice", "voice" },
    { OPUS_APPLICATION_RESTRICTED_LOWDELAY, "Restricted low delay", "restricted-lowdelay" },
    { 0, NULL, NULL },
  };
  return enum_type(&once, "HarkOpusEncoderAudioType", values);
}

static GType
bandwidth_type(void)
{
  static gsize once = 0;
  static const GEnumValue values[] = {
    { OPUS_BANDWIDTH_NARROWBAND, "Narrow band", "narrowband" },
    { OPUS_BANDWIDTH_MEDIUMBAND, "Medium band", "mediumband" },
    { OPUS_BANDWIDTH_WIDEBAND, "Wide band", "wideband" },
    { OPUS_BANDWIDTH_SUPERWIDEBAND, "Super wide band", "superwideband" },
    { OPUS_BANDWIDTH_FULLBAND, "Full band", "fullband" },
    { OPUS_AUTO, "Auto", "auto" },
    { 0, NULL, NULL },
  };
  return enum_type(&once, "HarkOpusEncoderBandwidth", values);
}

static GType
frame_size_type(void)
{
  static gsize once = 0;
  static const GEnumValue values[] = {
    { 2, "2.5", "2.5" }, { 5, "5", "5" },    { 10, "10", "10" }, { 20, "20", "20" },
    { 40, "40", "40" },  { 60, "60", "60" }, { 0, NULL, NULL },
  };
  return enum_type(&once, "HarkOpusEncoderFrameSize", values);
}

static GType
bitrate_type_type(void)
{
  static gsize once = 0;
  static const GEnumValue values[] = {
    { BITRATE_CBR, "CBR", "cbr" },
    { BITRATE_VBR, "VBR", "vbr" },
    { BITRATE_CONSTRAINED_VBR, "Constrained VBR", "constrained-vbr" },
    { 0, NULL, NULL },
  };
  return enum_type(&once, "HarkOpusEncoderBitrateType", values);
}

/* ---- properties ------------------------------------------------------------------------- */

/* The member of EncoderSettings a property sets (all are int-sized). */
static int *
setting_of(EncoderSettings *s, guint id)
{
  switch (id) {
  case PROP_AUDIO_TYPE:
    return &s->audio_type;
  case PROP_BANDWIDTH:
    return &s->bandwidth;
  case PROP_FRAME_SIZE:
    return &s->frame_ms;
  case PROP_BITRATE:
    return &s->bitrate;
  case PROP_BITRATE_TYPE:
    return &s->bitrate_type;
  case PROP_COMPLEXITY:
    return &s->complexity;
  case PROP_PACKET_LOSS:
    return &s->packet_loss;
  case PROP_INBAND_FEC:
    return &s->inband_fec;
  case PROP_DTX:
    return &s->dtx;
  default:
    return NULL;
  }
}

static void
set_property(GObject *object, guint id, const GValue *value, GParamSpec *spec)
{
  HarkOpusEncoder *e = (HarkOpusEncoder *)object;
  g_mutex_lock(&e->lock);
  int *setting = setting_of(&e->settings, id);
  if (setting == NULL)
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, spec);
  else if (G_VALUE_HOLDS_ENUM(value))
    *setting = g_value_get_enum(value);
  else if (G_VALUE_HOLDS_BOOLEAN(value))
    *setting = g_value_get_boolean(value);
  else
    *setting = g_value_get_int(value);
  g_mutex_unlock(&e->lock);
}

static void
get_property(GObject *object, guint id, GValue *value, GParamSpec *spec)
{
  HarkOpusEncoder *e = (HarkOpusEncoder *)object;
  g_mutex_lock(&e->lock);
  int *setting = setting_of(&e->settings, id);
  if (setting == NULL)
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, spec);
  else if (G_VALUE_HOLDS_ENUM(value))
    g_value_set_enum(value, *setting);
  else if (G_VALUE_HOLDS_BOOLEAN(value))
    g_value_set_boolean(value, *setting);
  else
    g_value_set_int(value, *setting);
  g_mutex_unlock(&e->lock);
}

static void
install_properties(GObjectClass *object_class)
{
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags live = flags | GST_PARAM_MUTABLE_PLAYING;
  g_object_class_install_property(object_class, PROP_AUDIO_TYPE,
                                  g_param_spec_enum("audio-type", "Audio type",
                                                    "What to tune for (taken at the start)",
                                                    audio_type_type(), defaults.audio_type, flags));
  g_object_class_install_property(object_class, PROP_BANDWIDTH,
                                  g_param_spec_enum("bandwidth", "Bandwidth", "Audio bandwidth",
                                                    bandwidth_type(), defaults.bandwidth, live));
  g_object_class_install_property(object_class, PROP_FRAME_SIZE,
                                  g_param_spec_enum("frame-size", "Frame size",
                                                    "A frame's duration in ms", frame_size_type(),
                                                    defaults.frame_ms, live));
  g_object_class_install_property(object_class, PROP_BITRATE,
                                  g_param_spec_int("bitrate", "Bitrate", "Bitrate in bit/s", 4000,
                                                   650000, defaults.bitrate, live));
  g_object_class_install_property(
    object_class, PROP_BITRATE_TYPE,
    g_param_spec_enum("bitrate-type", "Bitrate type", "Constant, variable or constrained",
                      bitrate_type_type(), defaults.bitrate_type, live));
  g_object_class_install_property(
    object_class, PROP_COMPLEXITY,
    g_param_spec_int("complexity", "Complexity", "0-10", 0, 10, defaults.complexity, live));
  g_object_class_install_property(object_class, PROP_PACKET_LOSS,
                                  g_param_spec_int("packet-loss-percentage", "Loss percentage",
                                                   "The loss to code for (with inband-fec)", 0, 100,
                                                   defaults.packet_loss, live));
  g_object_class_install_property(object_class, PROP_INBAND_FEC,
                                  g_param_spec_boolean("inband-fec", "In-band FEC",
                                                       "Forward error correction in the packets",
                                                       defaults.inband_fec, live));
  g_object_class_install_property(
    object_class, PROP_DTX,
    g_param_spec_boolean("dtx", "DTX", "Discontinuous transmission", defaults.dtx, live));
}

/* ---- coding ------------------------------------------------------------------------------ */

static int
frame_samples_of(int frame_ms, int rate)
{
  return frame_ms == 2 ? rate / 400 : rate / 1000 * frame_ms;
}

static void
ctl_checked(HarkOpusEncoder *e, const char *what, int result)
{
  if (result != OPUS_OK)
    GST_WARNING_OBJECT(e, "libopus refused %s: %s", what, opus_strerror(result));
}

/* What changed since the last frame (everything when all), onto the encoder. The frame
 * size is the caller's (it applies between frames). */
static void
apply(HarkOpusEncoder *e, const EncoderSettings *want, gboolean all)
{
  const EncoderSettings *had = &e->applied;
  if (all || want->bitrate != had->bitrate)
    ctl_checked(e, "the bitrate", opus_encoder_ctl(e->opus, OPUS_SET_BITRATE(want->bitrate)));
  if (all || want->bandwidth != had->bandwidth)
    ctl_checked(e, "the bandwidth", opus_encoder_ctl(e->opus, OPUS_SET_BANDWIDTH(want->bandwidth)));
  if (all || want->bitrate_type != had->bitrate_type) {
    ctl_checked(e, "VBR",
                opus_encoder_ctl(e->opus, OPUS_SET_VBR(want->bitrate_type != BITRATE_CBR)));
    ctl_checked(e, "the VBR constraint",
                opus_encoder_ctl(
                  e->opus, OPUS_SET_VBR_CONSTRAINT(want->bitrate_type == BITRATE_CONSTRAINED_VBR)));
  }
  if (all || want->complexity != had->complexity)
    ctl_checked(e, "the complexity",
                opus_encoder_ctl(e->opus, OPUS_SET_COMPLEXITY(want->complexity)));
  if (all || want->inband_fec != had->inband_fec)
    ctl_checked(e, "FEC", opus_encoder_ctl(e->opus, OPUS_SET_INBAND_FEC(want->inband_fec)));
  if (all || want->packet_loss != had->packet_loss)
    ctl_checked(e, "the loss percentage",
                opus_encoder_ctl(e->opus, OPUS_SET_PACKET_LOSS_PERC(want->packet_loss)));
  if (all || want->dtx != had->dtx)
    ctl_checked(e, "DTX", opus_encoder_ctl(e->opus, OPUS_SET_DTX(want->dtx)));
  if (all || want->signal != had->signal)
    ctl_checked(e, "the signal", opus_encoder_ctl(e->opus, OPUS_SET_SIGNAL(want->signal)));
  int frame_ms = e->applied.frame_ms;
  e->applied = *want;
  e->applied.frame_ms = frame_ms;
}

/* The base class hands in frames of frame_ms from now on; the latency is one frame. */
static void
set_frame(HarkOpusEncoder *e, int frame_ms)
{
  GstAudioEncoder *base = GST_AUDIO_ENCODER(e);
  e->applied.frame_ms = frame_ms;
  e->frame_samples = frame_samples_of(frame_ms, e->rate);
  GstClockTime latency = gst_util_uint64_scale_int(e->frame_samples, GST_SECOND, e->rate);
  gst_audio_encoder_set_frame_samples_min(base, e->frame_samples);
  gst_audio_encoder_set_frame_samples_max(base, e->frame_samples);
  gst_audio_encoder_set_frame_max(base, 1);
  gst_audio_encoder_set_latency(base, latency, latency);
}

static EncoderSettings
settings_now(HarkOpusEncoder *e)
{
  g_mutex_lock(&e->lock);
  EncoderSettings s = e->settings;
  g_mutex_unlock(&e->lock);
  return s;
}

static gboolean
set_format(GstAudioEncoder *base, GstAudioInfo *info)
{
  HarkOpusEncoder *e = (HarkOpusEncoder *)base;
  EncoderSettings want = settings_now(e);
  int err = OPUS_OK;
  g_clear_pointer(&e->opus, opus_encoder_destroy);
  e->opus = opus_encoder_create(GST_AUDIO_INFO_RATE(info), GST_AUDIO_INFO_CHANNELS(info),
                                want.audio_type, &err);
  if (e->opus == NULL) {
    GST_ELEMENT_ERROR(e, LIBRARY, INIT, (NULL),
                      ("libopus refused an encoder of %d Hz, %d channels: %s",
                       GST_AUDIO_INFO_RATE(info), GST_AUDIO_INFO_CHANNELS(info),
                       opus_strerror(err)));
    return FALSE;
  }
  e->rate = GST_AUDIO_INFO_RATE(info);
  e->channels = GST_AUDIO_INFO_CHANNELS(info);
  e->silent_samples = 0;
  g_atomic_int_set(&e->quiet, FALSE);
  apply(e, &want, TRUE);
  set_frame(e, want.frame_ms);
  g_autoptr(GstCaps) caps =
    gst_caps_new_simple("audio/x-opus", "channel-mapping-family", G_TYPE_INT, 0, "rate", G_TYPE_INT,
                        e->rate, "channels", G_TYPE_INT, e->channels, NULL);
  return gst_audio_encoder_set_output_format(base, caps);
}

/* One frame into one packet. A short last frame (draining) is padded with silence; what
 * is beyond a frame (the base class hands in one frame) stays for the next. */
static GstFlowReturn
encode(HarkOpusEncoder *e, const guint8 *data, gsize size)
{
  GstAudioEncoder *base = GST_AUDIO_ENCODER(e);
  gsize frame_bytes = (gsize)e->frame_samples * (gsize)e->channels * sizeof(opus_int16);
  size = MIN(size, frame_bytes);
  g_autofree opus_int16 *padded = NULL;
  const opus_int16 *pcm = (const opus_int16 *)data;
  if (size < frame_bytes) {
    padded = g_malloc0(frame_bytes);
    memcpy(padded, data, size);
    pcm = padded;
  }
  GstBuffer *out = gst_audio_encoder_allocate_output_buffer(base, MAX_PACKET);
  GstMapInfo map;
  if (out == NULL || !gst_buffer_map(out, &map, GST_MAP_WRITE)) {
    gst_clear_buffer(&out);
    GST_ELEMENT_ERROR(e, RESOURCE, FAILED, (NULL), ("no output buffer"));
    return GST_FLOW_ERROR;
  }
  opus_int32 n = opus_encode(e->opus, pcm, e->frame_samples, map.data, MAX_PACKET);
  gst_buffer_unmap(out, &map);
  if (n < 0) {
    gst_buffer_unref(out);
    GST_ELEMENT_ERROR(e, STREAM, ENCODE, (NULL), ("libopus: %s", opus_strerror(n)));
    return GST_FLOW_ERROR;
  }
  gst_buffer_set_size(out, (gsize)n);
  int samples = (int)(size / ((gsize)e->channels * sizeof(opus_int16)));
  return gst_audio_encoder_finish_frame(base, out, samples);
}

/* ---- digital silence ---------------------------------------------------------------------- */

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

/* Counts the frame's zeros and, past QUIET_AFTER_MS of them, turns want into the
 * settings digital silence is coded with (the comment at the top says why). */
static void
quiet_settings(HarkOpusEncoder *e, const guint8 *data, gsize size, EncoderSettings *want)
{
  gsize bytes_per_sample = (gsize)e->channels * sizeof(opus_int16);
  if (all_zero(data, size))
    e->silent_samples = MIN(e->silent_samples + (gint64)(size / bytes_per_sample), G_MAXINT32);
  else
    e->silent_samples = 0;
  gboolean quiet = e->silent_samples > (gint64)e->rate * QUIET_AFTER_MS / 1000;
  g_atomic_int_set(&e->quiet, quiet);
  if (!quiet)
    return;
  want->complexity = 0;
  if (!want->dtx && want->bitrate_type != BITRATE_CBR) {
    want->signal = OPUS_SIGNAL_MUSIC;
    want->bitrate = MAX(want->bitrate, QUIET_BITRATE);
  }
}

gboolean
hark_opus_encoder_is_quiet(GstElement *encoder)
{
  return g_atomic_int_get(&((HarkOpusEncoder *)encoder)->quiet);
}

/* ---- the base class's calls ------------------------------------------------------------------ */

static GstFlowReturn
handle_frame(GstAudioEncoder *base, GstBuffer *buffer)
{
  HarkOpusEncoder *e = (HarkOpusEncoder *)base;
  if (buffer == NULL) /* draining: every frame was coded as it came */
    return GST_FLOW_OK;
  if (e->opus == NULL)
    return GST_FLOW_NOT_NEGOTIATED;
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ))
    return GST_FLOW_ERROR;
  EncoderSettings want = settings_now(e);
  quiet_settings(e, map.data, map.size, &want);
  apply(e, &want, FALSE);
  GstFlowReturn ret = encode(e, map.data, map.size);
  gst_buffer_unmap(buffer, &map);
  if (want.frame_ms != e->applied.frame_ms)
    set_frame(e, want.frame_ms);
  return ret;
}

static gboolean
stop(GstAudioEncoder *base)
{
  HarkOpusEncoder *e = (HarkOpusEncoder *)base;
  g_clear_pointer(&e->opus, opus_encoder_destroy);
  return TRUE;
}

static void
finalize(GObject *object)
{
  HarkOpusEncoder *e = (HarkOpusEncoder *)object;
  g_clear_pointer(&e->opus, opus_encoder_destroy);
  g_mutex_clear(&e->lock);
  G_OBJECT_CLASS(hark_opus_encoder_parent_class)->finalize(object);
}

static void
hark_opus_encoder_class_init(HarkOpusEncoderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GstElementClass *element = GST_ELEMENT_CLASS(klass);
  GstAudioEncoderClass *encoder = GST_AUDIO_ENCODER_CLASS(klass);
  object_class->set_property = set_property;
  object_class->get_property = get_property;
  object_class->finalize = finalize;
  install_properties(object_class);
  gst_element_class_add_static_pad_template(element, &sink_template);
  gst_element_class_add_static_pad_template(element, &src_template);
  gst_element_class_set_static_metadata(element, "hark Opus encoder", "Codec/Encoder/Audio",
                                        "Opus through libopus's one-stream encoder",
                                        "hark developers");
  encoder->stop = stop;
  encoder->set_format = set_format;
  encoder->handle_frame = handle_frame;
  GST_DEBUG_CATEGORY_INIT(hark_opus_encoder_debug, HARK_OPUS_ENCODER_NAME, 0,
                          "hark's Opus encoder");
}

static void
hark_opus_encoder_init(HarkOpusEncoder *e)
{
  g_mutex_init(&e->lock);
  e->settings = defaults;
  e->applied = defaults;
  GST_PAD_SET_ACCEPT_TEMPLATE(GST_AUDIO_ENCODER_SINK_PAD(e));
}

gboolean
hark_opus_encoder_register(void)
{
  static gsize once = 0;
  static gboolean registered = FALSE;
  if (g_once_init_enter(&once)) {
    registered = gst_element_register(NULL, HARK_OPUS_ENCODER_NAME, GST_RANK_NONE,
                                      hark_opus_encoder_get_type());
    g_once_init_leave(&once, 1);
  }
  return registered;
}
