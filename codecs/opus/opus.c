/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus.c: the Opus codec plugin (RFC 7587): wideband voice by default, every encoder
 * setting the issue names settable, most of them live, and adaptation to the far end's
 * reports within configured bounds (opus-adapt.c): random loss brings FEC and a lower
 * bitrate; a link too narrow for the stream brings a lower bitrate, longer packets and
 * narrowband.
 *
 * Settings (plugin settings are the defaults; a session's codec settings override):
 *   bandwidth   narrowband|mediumband|wideband|superwideband|fullband (wideband)
 *   audio_type  voice|generic (voice)
 *   bitrate     6000-510000 bit/s (20000)       frame_size  10|20|40|60 ms (20)
 *   complexity  0-10 (10; digital silence is coded at 0, opus-encoder.c)
 *                                                inband_fec  bool (false)
 *   dtx         bool (false: silence is sent, to keep NAT bindings and TCP windows open;
 *               true: while silent only a comfort-noise frame every 400 ms is sent, the
 *               payloader dropping the encoder's empty frames, so a silent or muted
 *               participant costs the far end, a conference host above all, no packets
 *               and no decoding)
 *   packet_loss_percentage 0-100 (0)             adapt       bool (true; false: the
 *               encoder keeps what is configured whatever the reports say)
 *   min_bitrate, max_bitrate  the bounds adaptation keeps to (12000; max: the bitrate)
 *   narrow_bitrate  6000-min_bitrate (6000): how low a link too narrow for min_bitrate
 *               may take the bitrate (in narrowband); = min_bitrate: never below it
 *   max_ptime   10|20|40|60|120 ms (120): the longest packet time a narrow link may
 *               bring (120: pairs of 60 ms frames in one packet, opus-pack.c);
 *               = frame_size: the packet time never changes
 *   fec_bitrate 6000-510000 (28000): random loss raises the bitrate this far while it
 *               lasts, for FEC (libopus sends wideband FEC only above about 23 kbit/s);
 *               at or below max_bitrate: never raised
 * Without loss the bitrate stays at (or returns to) max_bitrate, so by default what is
 * configured as bitrate is what is sent; only random loss spends more (fec_bitrate), and
 * only while it lasts. The packet time changes on the fly (the encoder takes a new
 * frame-size between frames); the far end is not told, its decoder reads each packet's
 * duration from the packet's TOC byte. */
#include <hark/hark.h>

#include <gio/gio.h>
#include <gst/gst.h>
#include <string.h>

#include "opus-adapt.h"
#include "opus-decoder.h"
#include "opus-encoder.h"
#include "opus-pack.h"

typedef struct {
  GVariant *defaults; /* the plugin's settings */
} Opus;

static const char *const known[] = {
  "bandwidth",  "audio_type",  "bitrate",     "frame_size",
  "complexity", "inband_fec",  "dtx",         "packet_loss_percentage",
  "adapt",      "min_bitrate", "max_bitrate", "narrow_bitrate", "max_ptime", "fec_bitrate",
  NULL
};

/* The session's value, else the plugin's, else the built-in default. */
static gboolean
get_int(Opus *o, GVariant *settings, const char *key, gint64 fallback, gint64 min, gint64 max,
        gint64 *out, GError **error)
{
  return hark_settings_get_int(o->defaults, key, fallback, min, max, &fallback, error) &&
         hark_settings_get_int(settings, key, fallback, min, max, out, error);
}

static gboolean
get_bool(Opus *o, GVariant *settings, const char *key, gboolean fallback, gboolean *out,
         GError **error)
{
  return hark_settings_get_bool(o->defaults, key, fallback, &fallback, error) &&
         hark_settings_get_bool(settings, key, fallback, out, error);
}

static gboolean
get_choice(Opus *o, GVariant *settings, const char *key, const char *fallback,
           const char *const *choices, char **out, GError **error)
{
  g_autofree char *plugin_value = NULL;
  if (!hark_settings_get_string(o->defaults, key, fallback, &plugin_value, error) ||
      !hark_settings_get_string(settings, key, plugin_value, out, error))
    return FALSE;
  if (g_strv_contains(choices, *out))
    return TRUE;
  g_autofree char *list = g_strjoinv(", ", (char **)choices);
  g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
              "opus setting '%s': '%s' is not one of %s", key, *out, list);
  g_clear_pointer(out, g_free);
  return FALSE;
}

static const char *const bandwidths[] = { "narrowband",    "mediumband", "wideband",
                                          "superwideband", "fullband",   NULL };
static const char *const audio_types[] = { "voice", "generic", NULL };

static gboolean
is_frame_ms(gint64 ms)
{
  return ms == 10 || ms == 20 || ms == 40 || ms == 60;
}

/* The bounds adaptation keeps to, checked: the configured bitrate and frame, min_bitrate,
 * max_bitrate, narrow_bitrate, max_ptime, fec_bitrate. */
static gboolean
get_limits(Opus *o, GVariant *settings, HarkOpusLimits *limits, GError **error)
{
  gint64 bitrate, frame, min_bitrate, max_bitrate, narrow, max_ptime, fec_bitrate;
  if (!get_int(o, settings, "bitrate", 20000, 6000, 510000, &bitrate, error) ||
      !get_int(o, settings, "fec_bitrate", 28000, 6000, 510000, &fec_bitrate, error) ||
      !get_int(o, settings, "frame_size", 20, 10, 60, &frame, error) ||
      !get_int(o, settings, "min_bitrate", 12000, 6000, 510000, &min_bitrate, error) ||
      !get_int(o, settings, "max_bitrate", bitrate, 6000, 510000, &max_bitrate, error) ||
      !get_int(o, settings, "narrow_bitrate", MIN(6000, min_bitrate), 6000, 510000, &narrow,
               error) ||
      !get_int(o, settings, "max_ptime", 120, 10, 120, &max_ptime, error))
    return FALSE;
  if (!is_frame_ms(frame)) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "opus setting 'frame_size': %" G_GINT64_FORMAT " ms is not 10, 20, 40 or 60",
                frame);
    return FALSE;
  }
  if (!is_frame_ms(max_ptime) && max_ptime != 120) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "opus setting 'max_ptime': %" G_GINT64_FORMAT
                " ms is not 10, 20, 40, 60 or 120",
                max_ptime);
    return FALSE;
  }
  if (min_bitrate > max_bitrate || narrow > min_bitrate || max_ptime < frame) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "opus settings: %s",
                min_bitrate > max_bitrate ? "min_bitrate is above max_bitrate"
                : narrow > min_bitrate    ? "narrow_bitrate is above min_bitrate"
                                          : "max_ptime is below frame_size");
    return FALSE;
  }
  *limits = (HarkOpusLimits){ .max_bitrate = (int)max_bitrate,
                              .fec_bitrate = (int)fec_bitrate,
                              .min_bitrate = (int)min_bitrate,
                              .narrow_bitrate = (int)narrow,
                              .frame_ms = (int)frame,
                              .max_ptime_ms = (int)max_ptime };
  return TRUE;
}

/* libopus's own default. At 20 kbit/s wideband speech it scores as baresip's 24 kbit/s
 * (bench/opus-loss: STOI 0.992, mel-cepstral distortion 8.0 dB; at 5, 0.988 and 10.0 dB)
 * for about 0.5 % of a core more per encoder (SILK's 8-10 are one setting). */
#define COMPLEXITY 10

static gboolean
configure_encoder(Opus *o, GObject *enc, GVariant *settings, GError **error)
{
  g_autofree char *bandwidth = NULL, *audio_type = NULL;
  gint64 bitrate, frame_size, complexity, loss;
  gboolean fec, dtx;
  HarkOpusLimits limits;
  if (!get_choice(o, settings, "bandwidth", "wideband", bandwidths, &bandwidth, error) ||
      !get_choice(o, settings, "audio_type", "voice", audio_types, &audio_type, error) ||
      !get_int(o, settings, "bitrate", 20000, 6000, 510000, &bitrate, error) ||
      !get_int(o, settings, "frame_size", 20, 10, 60, &frame_size, error) ||
      !get_int(o, settings, "complexity", COMPLEXITY, 0, 10, &complexity, error) ||
      !get_int(o, settings, "packet_loss_percentage", 0, 0, 100, &loss, error) ||
      !get_bool(o, settings, "inband_fec", FALSE, &fec, error) ||
      !get_bool(o, settings, "dtx", FALSE, &dtx, error) ||
      !get_limits(o, settings, &limits, error))
    return FALSE;
  gst_util_set_object_arg(enc, "bandwidth", bandwidth);
  gst_util_set_object_arg(enc, "audio-type", audio_type);
  g_autofree char *frame = g_strdup_printf("%" G_GINT64_FORMAT, frame_size);
  gst_util_set_object_arg(enc, "frame-size", frame);
  g_object_set(enc, "bitrate", (int)bitrate, "complexity", (int)complexity,
               "packet-loss-percentage", (int)loss, "inband-fec", fec, "dtx", dtx, NULL);
  return TRUE;
}

/* The encoder's DTX frames (a TOC byte, nothing to decode) are sent only when the
 * payloader is told to drop them; without that, DTX saves bits but not one packet. */
static void
payloader_set_dtx(GObject *payloader, gboolean dtx)
{
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(payloader), "dtx") != NULL)
    g_object_set(payloader, "dtx", dtx, NULL);
}

/* The payloader after the encoder enc, or NULL. */
static GstElement *
payloader_of(GObject *enc)
{
  g_autoptr(GstPad) src = gst_element_get_static_pad(GST_ELEMENT(enc), "src");
  g_autoptr(GstPad) peer = src != NULL ? gst_pad_get_peer(src) : NULL;
  return peer != NULL ? gst_pad_get_parent_element(peer) : NULL;
}

static gboolean
opus_configure(gpointer instance, HarkCodecRole role, GObject *element, GVariant *settings,
               GError **error)
{
  if (role == HARK_CODEC_ENCODER)
    return configure_encoder(instance, element, settings, error);
  if (role == HARK_CODEC_PAYLOADER) {
    gboolean dtx;
    if (!get_bool(instance, settings, "dtx", FALSE, &dtx, error))
      return FALSE;
    payloader_set_dtx(element, dtx);
    hark_opus_pack_attach(GST_ELEMENT(element));
  }
  return TRUE;
}

static gboolean
opus_set_live(gpointer instance, GObject *enc, const char *key, GVariant *value, GError **error)
{
  g_autoptr(GVariantBuilder) b = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(b, "{sv}", key, value);
  g_autoptr(GVariant) one = g_variant_ref_sink(g_variant_builder_end(b));
  Opus *o = instance;
  gint64 n;
  gboolean flag;
  g_autofree char *choice = NULL;
  /* The same checks as at start; the encoder applies these to the next frame. */
  if (g_str_equal(key, "bitrate")) {
    if (!get_int(o, one, key, 20000, 6000, 510000, &n, error))
      return FALSE;
    g_object_set(enc, "bitrate", (int)n, NULL);
  } else if (g_str_equal(key, "complexity")) {
    if (!get_int(o, one, key, 0, 0, 10, &n, error))
      return FALSE;
    g_object_set(enc, "complexity", (int)n, NULL);
  } else if (g_str_equal(key, "packet_loss_percentage")) {
    if (!get_int(o, one, key, 0, 0, 100, &n, error))
      return FALSE;
    g_object_set(enc, "packet-loss-percentage", (int)n, NULL);
  } else if (g_str_equal(key, "inband_fec") || g_str_equal(key, "dtx")) {
    if (!get_bool(o, one, key, FALSE, &flag, error))
      return FALSE;
    g_object_set(enc, g_str_equal(key, "dtx") ? "dtx" : "inband-fec", flag, NULL);
    g_autoptr(GstElement) payloader = g_str_equal(key, "dtx") ? payloader_of(enc) : NULL;
    if (payloader != NULL)
      payloader_set_dtx(G_OBJECT(payloader), flag);
  } else if (g_str_equal(key, "bandwidth")) {
    if (!get_choice(o, one, key, "wideband", bandwidths, &choice, error))
      return FALSE;
    gst_util_set_object_arg(enc, "bandwidth", choice);
  } else {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "opus setting '%s' cannot change while running (live: bitrate, complexity, "
                "packet_loss_percentage, inband_fec, dtx, bandwidth)",
                key);
    return FALSE;
  }
  return TRUE;
}

#define ADAPT_KEY "hark-opus-adapt"

/* The packet time on the encoder and the payloader: one frame up to 60 ms, two 60 ms
 * frames joined for 120. The payloader's ptime bounds follow (the engine pins them to
 * the packet time; rtpopuspay sends each buffer it gets as one packet anyway). */
static void
apply_ptime(GObject *enc, int ptime_ms)
{
  g_autofree char *frame = g_strdup_printf("%d", MIN(ptime_ms, 60));
  gst_util_set_object_arg(enc, "frame-size", frame);
  g_autoptr(GstElement) payloader = payloader_of(enc);
  if (payloader == NULL)
    return;
  hark_opus_pack_set_frames(payloader, ptime_ms > 60 ? 2 : 1);
  GObjectClass *payloader_class = G_OBJECT_GET_CLASS(payloader);
  if (g_object_class_find_property(payloader_class, "min-ptime") != NULL &&
      g_object_class_find_property(payloader_class, "max-ptime") != NULL)
    g_object_set(payloader, "min-ptime", (gint64)ptime_ms * GST_MSECOND, "max-ptime",
                 (gint64)ptime_ms * GST_MSECOND, NULL);
}

static const char *const verdicts[] = { "nothing", "random loss", "congestion", "clean" };

/* Once per receiver report (opus-adapt.c decides; this applies what changed). The state
 * lives on the encoder: a new one after a codec swap starts afresh, and one plugin
 * instance serves every session. */
static void
opus_adapt(gpointer instance, GObject *enc, GVariant *settings, const HarkCodecFeedback *fb)
{
  Opus *o = instance;
  gboolean adapt = TRUE;
  HarkOpusLimits limits;
  g_autofree char *bandwidth = NULL;
  if (!get_bool(o, settings, "adapt", TRUE, &adapt, NULL) || !adapt ||
      !get_limits(o, settings, &limits, NULL) ||
      !get_choice(o, settings, "bandwidth", "wideband", bandwidths, &bandwidth, NULL))
    return;
  HarkOpusAdapt *a = g_object_get_data(enc, ADAPT_KEY);
  if (a == NULL) {
    a = g_new0(HarkOpusAdapt, 1);
    hark_opus_adapt_init(a, &limits);
    /* From what the encoder runs at now (a live `bitrate` set may have changed it). */
    g_object_get(enc, "bitrate", &a->bitrate, NULL);
    g_object_set_data_full(enc, ADAPT_KEY, a, g_free);
  }
  /* A live `bitrate` set (set_live) moves the ladder's position too. */
  int running = a->bitrate;
  g_object_get(enc, "bitrate", &running, NULL);
  a->bitrate = running;
  HarkOpusAdapt before = *a;
  HarkOpusVerdict verdict = hark_opus_adapt_step(a, &limits, fb);
  /* Every report as the ladder read it (G_MESSAGES_DEBUG=hark-opus): why a call steps or not. */
  if (fb->missed_s > 0)
    g_debug("opus: no report for %u s on a lossy link: %s; %d ms packets at %d bit/s",
            fb->missed_s, verdicts[verdict], a->ptime_ms, a->bitrate);
  else
    g_debug("opus: report loss %.1f%% rtt %.0f ms jitter %.0f ms, sent %.0f received %.0f "
            "bit/s: %s; queue %.0f ms above %.0f, %u lossy %u heavy %u clean in a row; ceiling "
            "%.0f B/s; %d ms packets at %d bit/s",
            fb->loss_fraction * 100, fb->rtt_ms, fb->jitter_ms, fb->sent_bitrate,
            fb->received_bitrate, verdicts[verdict], a->last_queue_ms, a->base_rtt_ms, a->lossy,
            a->heavy, a->clean, a->ceiling, a->ptime_ms, a->bitrate);
  if ((a->ptime_ms != before.ptime_ms || a->narrowband != before.narrowband) && fb->missed_s > 0)
    g_info("opus: no report for %u s on a lossy link: %d ms packets at %d bit/s%s",
           fb->missed_s, a->ptime_ms, a->bitrate, a->narrowband ? ", narrowband" : "");
  else if (a->ptime_ms != before.ptime_ms || a->narrowband != before.narrowband)
    g_info("opus: %s (loss %.1f%%, round trip %.0f ms): %d ms packets at %d bit/s%s",
           verdicts[verdict], fb->loss_fraction * 100, fb->rtt_ms, a->ptime_ms, a->bitrate,
           a->narrowband ? ", narrowband" : "");
  if (a->ptime_ms != before.ptime_ms)
    apply_ptime(enc, a->ptime_ms);
  if (a->narrowband != before.narrowband)
    gst_util_set_object_arg(enc, "bandwidth", a->narrowband ? "narrowband" : bandwidth);
  if (a->cbr != before.cbr) /* the encoder's default is constrained VBR */
    gst_util_set_object_arg(enc, "bitrate-type", a->cbr ? "cbr" : "constrained-vbr");
  g_object_set(enc, "inband-fec", a->fec, "packet-loss-percentage", a->loss_percent, "bitrate",
               a->bitrate, NULL);
}

/* The encoder and the decoder are the plugin's own: the encoder codes one stream without
 * the multistream API's cost per frame (opus-encoder.c), the decoder conceals lost frames
 * and rebuilds them from the next packet's FEC without holding every frame back for it
 * (opus-decoder.c). */
static GObject *
opus_make(gpointer instance, HarkCodecRole role, GError **error)
{
  (void)instance;
  GstElement *e = NULL;
  if (role == HARK_CODEC_DECODER && hark_opus_decoder_register())
    e = gst_element_factory_make(HARK_OPUS_DECODER_NAME, NULL);
  else if (role == HARK_CODEC_ENCODER && hark_opus_encoder_register())
    e = gst_element_factory_make(HARK_OPUS_ENCODER_NAME, NULL);
  if (e == NULL)
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the Opus plugin could not make its %s",
                role == HARK_CODEC_DECODER   ? "decoder"
                : role == HARK_CODEC_ENCODER ? "encoder"
                                             : "element for that role");
  return e != NULL ? G_OBJECT(e) : NULL;
}

static const HarkCodecInterface opus_codec = {
  .version = HARK_CODEC_INTERFACE_VERSION,
  .encoding_name = "OPUS",
  .encoding_params = "2", /* RFC 7587: always "opus/48000/2" in SDP, mono or not */
  .clock_rate = 48000,
  .sample_rate = 48000,
  .channels = 1,
  .default_payload_type = 111,
  .frame_ms = 20,
  .encoder = NULL, /* opus_make() */
  .payloader = "rtpopuspay",
  .depayloader = "rtpopusdepay",
  .decoder = NULL, /* opus_make() */
  .configure = opus_configure,
  .set_live = opus_set_live,
  .adapt = opus_adapt,
  .make = opus_make,
};

static void
opus_free(Opus *o)
{
  g_variant_unref(o->defaults);
  g_free(o);
}

static gboolean
opus_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  Opus *o = g_new0(Opus, 1);
  o->defaults =
    settings ? g_variant_ref(settings) : g_variant_ref_sink(g_variant_new("a{sv}", NULL));
  hark_settings_warn_unknown(o->defaults, hark_context_plugin_name(ctx), known);
  if (!hark_context_register(ctx, HARK_KIND_CODEC, "opus", HARK_RANK_PRIMARY, &opus_codec, o,
                             error)) {
    opus_free(o);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, o);
  return TRUE;
}

static void
opus_fini(HarkContext *ctx)
{
  opus_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "opus", .version = HARK_VERSION,
                   .description = "Opus codec (RFC 7587): wideband voice, adaptive bitrate and FEC",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_CODEC, .init = opus_init,
                   .fini = opus_fini);
