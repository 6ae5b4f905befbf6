/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* g711.c: G.711 µ-law (PCMU, payload type 0) and A-law (PCMA, 8): narrowband, 64 kbit/s,
 * the codec every SIP peer has. The packet time is fixed at 20 ms (RFC 3551's default):
 * frame_ms, which the engine pins the payloader to. No settings. */
#include <hark/hark.h>

#define G711(NAME, PT, ENC, PAY, DEPAY, DEC)                                            \
  {                                                                                     \
    .version = HARK_CODEC_INTERFACE_VERSION, .encoding_name = NAME, .clock_rate = 8000, \
    .sample_rate = 8000, .channels = 1, .default_payload_type = PT, .frame_ms = 20,     \
    .encoder = ENC, .payloader = PAY, .depayloader = DEPAY, .decoder = DEC,             \
  }

static const HarkCodecInterface pcmu =
  G711("PCMU", 0, "mulawenc", "rtppcmupay", "rtppcmudepay", "mulawdec");
static const HarkCodecInterface pcma =
  G711("PCMA", 8, "alawenc", "rtppcmapay", "rtppcmadepay", "alawdec");

static gboolean
g711_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { NULL };
  hark_settings_warn_unknown(settings, hark_context_plugin_name(ctx), known);
  return hark_context_register(ctx, HARK_KIND_CODEC, "pcmu", HARK_RANK_SECONDARY, &pcmu, NULL,
                               error) &&
         hark_context_register(ctx, HARK_KIND_CODEC, "pcma", HARK_RANK_SECONDARY, &pcma, NULL,
                               error);
}

HARK_PLUGIN_DEFINE(.name = "g711", .version = HARK_VERSION,
                   .description = "G.711 µ-law (PCMU) and A-law (PCMA), 20 ms packets",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_CODEC, .init = g711_init);
