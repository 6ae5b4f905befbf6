/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* l16.c: L16, uncompressed 16-bit linear PCM (RFC 3551), mono at 16 kHz on dynamic
 * payload type 98: the reference that shows what the path does without a codec. 256
 * kbit/s, so for loopback and LANs. The "encoder" and "decoder" are audioconvert, which
 * turns samples to and from the network byte order the payloader wants. */
#include <hark/hark.h>

static const HarkCodecInterface l16 = {
  .version = HARK_CODEC_INTERFACE_VERSION,
  .encoding_name = "L16",
  .encoding_params = "1",
  .clock_rate = 16000,
  .sample_rate = 16000,
  .channels = 1,
  .default_payload_type = 98,
  .frame_ms = 20,
  .encoder = "audioconvert",
  .payloader = "rtpL16pay",
  .depayloader = "rtpL16depay",
  .decoder = "audioconvert",
};

static gboolean
l16_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { NULL };
  hark_settings_warn_unknown(settings, hark_context_plugin_name(ctx), known);
  return hark_context_register(ctx, HARK_KIND_CODEC, "l16", HARK_RANK_MARGINAL, &l16, NULL, error);
}

HARK_PLUGIN_DEFINE(.name = "l16", .version = HARK_VERSION,
                   .description = "L16 linear PCM, 16 kHz mono (a reference without compression)",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_CODEC, .init = l16_init);
