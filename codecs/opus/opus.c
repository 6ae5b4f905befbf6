/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus.c: the Opus codec plugin (RFC 7587): wideband voice by default, every encoder
 * setting the issue names settable, most of them live, and bitrate/FEC adaptation from
 * the far end's loss reports within configured bounds.
 *
 * Settings (plugin settings are the defaults; a session's codec settings override):
 *   bandwidth   narrowband|mediumband|wideband|superwideband|fullband (wideband)
 *   audio_type  voice|generic (voice)
 *   bitrate     6000-510000 bit/s (20000)       frame_size  10|20|40|60 ms (20)
 *   complexity  0-10 (5)                         inband_fec  bool (false)
 *   dtx         bool (false: silence is sent, to keep NAT bindings and TCP windows open;
 *               true: while silent only a comfort-noise frame every 400 ms is sent, the
 *               payloader dropping the encoder's empty frames, so a silent or muted
 *               participant costs the far end, a conference host above all, no packets
 *               and no decoding)
 *   packet_loss_percentage 0-100 (0)             adapt       bool (true)
 *   min_bitrate, max_bitrate  the bounds adaptation keeps to (12000; max: the bitrate)
 * Without loss the bitrate stays at (or returns to) max_bitrate, so by default what is
 * configured as bitrate is what is sent: adaptation only ever spends less. */
#include <hark/hark.h>

#include <gst/gst.h>
#include <string.h>

typedef struct {
  GVariant *defaults; /* the plugin's settings */
} Opus;

static const char *const known[] = {
  "bandwidth",  "audio_type",  "bitrate",     "frame_size",
  "complexity", "inband_fec",  "dtx",         "packet_loss_percentage",
  "adapt",      "min_bitrate", "max_bitrate", NULL
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
configure_encoder(Opus *o, GObject *enc, GVariant *settings, GError **error)
{
  g_autofree char *bandwidth = NULL, *audio_type = NULL;
  gint64 bitrate, frame_size, complexity, loss, min_bitrate, max_bitrate;
  gboolean fec, dtx;
  if (!get_choice(o, settings, "bandwidth", "wideband", bandwidths, &bandwidth, error) ||
      !get_choice(o, settings, "audio_type", "voice", audio_types, &audio_type, error) ||
      !get_int(o, settings, "bitrate", 20000, 6000, 510000, &bitrate, error) ||
      !get_int(o, settings, "frame_size", 20, 10, 60, &frame_size, error) ||
      !get_int(o, settings, "complexity", 5, 0, 10, &complexity, error) ||
      !get_int(o, settings, "packet_loss_percentage", 0, 0, 100, &loss, error) ||
      !get_int(o, settings, "min_bitrate", 12000, 6000, 510000, &min_bitrate, error) ||
      !get_int(o, settings, "max_bitrate", bitrate, 6000, 510000, &max_bitrate, error) ||
      !get_bool(o, settings, "inband_fec", FALSE, &fec, error) ||
      !get_bool(o, settings, "dtx", FALSE, &dtx, error))
    return FALSE;
  if (frame_size != 10 && frame_size != 20 && frame_size != 40 && frame_size != 60) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "opus setting 'frame_size': %" G_GINT64_FORMAT " ms is not 10, 20, 40 or 60",
                frame_size);
    return FALSE;
  }
  if (min_bitrate > max_bitrate) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "opus settings: min_bitrate is above max_bitrate");
    return FALSE;
  }
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
  if (role == HARK_CODEC_DECODER)
    /* Conceal lost frames, and recover them from the next packet's FEC when it has it. */
    g_object_set(element, "plc", TRUE, "use-inband-fec", TRUE, NULL);
  if (role == HARK_CODEC_PAYLOADER) {
    gboolean dtx;
    if (!get_bool(instance, settings, "dtx", FALSE, &dtx, error))
      return FALSE;
    payloader_set_dtx(element, dtx);
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
  /* The same checks as at start; opusenc applies these to the next frame. */
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

/* Once per receiver report. Loss above 2%: FEC on at once, told the loss; when the
 * report before was lossy too (sustained loss, not one burst), the bitrate down 20% (FEC
 * costs bits, and lasting loss often means a full queue). Below 1%: FEC off and the
 * bitrate back up 10% a report. Always within [min_bitrate, max_bitrate]. */
static void
opus_adapt(gpointer instance, GObject *enc, GVariant *settings, const HarkCodecFeedback *fb)
{
  Opus *o = instance;
  gint64 min_bitrate = 12000, max_bitrate = 20000, configured = 20000;
  gboolean adapt = TRUE;
  if (!get_bool(o, settings, "adapt", TRUE, &adapt, NULL) || !adapt ||
      !get_int(o, settings, "bitrate", 20000, 6000, 510000, &configured, NULL) ||
      !get_int(o, settings, "min_bitrate", 12000, 6000, 510000, &min_bitrate, NULL) ||
      !get_int(o, settings, "max_bitrate", configured, 6000, 510000, &max_bitrate, NULL))
    return;
  int bitrate = 0;
  g_object_get(enc, "bitrate", &bitrate, NULL);
  int loss_percent = (int)(fb->loss_fraction * 100 + 0.5);
  /* Lossy reports in a row, kept on the encoder (a new one after a codec swap starts
   * afresh; one plugin instance serves every session). */
  guint lossy = GPOINTER_TO_UINT(g_object_get_data(enc, "hark-opus-lossy-reports"));
  lossy = fb->loss_fraction > 0.02 ? MIN(lossy + 1, 1000) : 0;
  g_object_set_data(enc, "hark-opus-lossy-reports", GUINT_TO_POINTER(lossy));
  if (fb->loss_fraction > 0.02) {
    if (lossy >= 2)
      bitrate = (int)(bitrate * 0.8);
    g_object_set(enc, "inband-fec", TRUE, "packet-loss-percentage", MIN(loss_percent, 100), NULL);
  } else if (fb->loss_fraction < 0.01) {
    bitrate = (int)(bitrate * 1.1);
    g_object_set(enc, "inband-fec", FALSE, "packet-loss-percentage", 0, NULL);
  }
  g_object_set(enc, "bitrate", (int)CLAMP(bitrate, min_bitrate, max_bitrate), NULL);
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
  .encoder = "opusenc",
  .payloader = "rtpopuspay",
  .depayloader = "rtpopusdepay",
  .decoder = "opusdec",
  .configure = opus_configure,
  .set_live = opus_set_live,
  .adapt = opus_adapt,
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
