/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* g722.c: G.722 (payload type 9): 16 kHz wideband at 64 kbit/s, from FFmpeg's encoder
 * and decoder in gstreamer1.0-libav (the only G.722 encoder Debian's GStreamer has).
 * RFC 3551 keeps its RTP clock at 8000 Hz for historical reasons, while the audio is
 * 16 kHz. Packets of 20 ms (frame_ms: the engine pins the payloader to it). No settings. */
#include <hark/hark.h>

static const HarkCodecInterface g722 = {
  .version = HARK_CODEC_INTERFACE_VERSION,
  .encoding_name = "G722",
  .clock_rate = 8000,
  .sample_rate = 16000,
  .channels = 1,
  .default_payload_type = 9,
  .frame_ms = 20,
  .encoder = "avenc_g722",
  .payloader = "rtpg722pay",
  .depayloader = "rtpg722depay",
  .decoder = "avdec_g722",
};

static gboolean
g722_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { NULL };
  hark_settings_warn_unknown(settings, hark_context_plugin_name(ctx), known);
  return hark_context_register(ctx, HARK_KIND_CODEC, "g722", HARK_RANK_SECONDARY, &g722, NULL,
                               error);
}

HARK_PLUGIN_DEFINE(.name = "g722", .version = HARK_VERSION,
                   .description = "G.722 wideband (FFmpeg's codec via gstreamer1.0-libav)",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_CODEC, .init = g722_init);
