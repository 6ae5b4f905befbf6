/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* codec.h: the interface of a codec plugin (kind HARK_KIND_CODEC).
 *
 * A codec plugin describes a codec to the media engine (core/media-*.c); it does not
 * process audio itself. The description names the GStreamer elements the engine creates
 * (encoder, RTP payloader, depayloader, decoder) and the RTP facts (encoding name, clock
 * rate, default payload type), and the plugin applies its settings to those elements
 * when the engine asks. Elements are handed over as GObject so this header needs no
 * GStreamer headers; they are GstElements. One plugin may register several codecs
 * (g711 registers "pcmu" and "pcma"), each under its own name. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define HARK_CODEC_INTERFACE_VERSION 4 /* 2: HarkCodecFeedback.missed_s, make(); 3: .sent_bitrate;
                                        * 4: .received_bitrate */

typedef enum {
  HARK_CODEC_ENCODER,
  HARK_CODEC_PAYLOADER,
  HARK_CODEC_DEPAYLOADER,
  HARK_CODEC_DECODER,
} HarkCodecRole;

/* What RTCP says about the stream this side sends, handed to adapt() about once a second
 * (and once a second while its reports go missing on a lossy link: missed_s). */
typedef struct {
  double loss_fraction; /* 0..1, as the far end reported it in its last receiver report */
  double rtt_ms; /* round-trip time; negative when not known yet */
  /* Always 0, kept only so that the members after it stay where codecs of versions 1
   * and 2 read them: an RTCP receiver report says what was lost, never the octets that
   * arrived. What this side sent is sent_bitrate (version 3). */
  guint64 bytes_acked;
  double jitter_ms; /* the interarrival jitter the far end measured of this stream (RFC 3550
                     * §6.4.1); negative when not known */
  /* 0: a new report. Otherwise (codecs of interface version 2 and up) no report has come
   * for this many seconds (2 or more) although we send and the far end's stream reaches
   * us with more than 40 % of its packets lost since the last one: the link is too
   * full to pass its reports (a full byte-limited queue drops an RTCP packet, larger than
   * most RTP packets, nearly always). The fields above are the last report's. */
  guint missed_s;
  /* Version 3: bit/s this side sent (SRTP and SRTCP) since the feedback before; negative
   * when not known (the first). A clean report says the sender's rate fits the link only
   * if the sender used it: silence (or DTX, or a mute) sends far less. */
  double sent_bitrate;
  /* Version 4: bit/s of this side's packets (SRTP and SRTCP, as sent_bitrate counts them)
   * that the far end says it took between its last two receive reports (an RTCP APP
   * packet, docs/protocol.md): what the link passed, by the far end's clock. Negative
   * when not known: the far end does not send them, or no new one came with this report.
   * Only the far end's word: never more than it was sent, if it is honest. */
  double received_bitrate;
  /* Version 4: the packets/s the same reports say arrived (so the wire rate can count
   * each packet's IP and UDP headers, whatever packet times the span saw); negative
   * when not known. */
  double received_packet_rate;
} HarkCodecFeedback;

typedef struct {
  guint32 version; /* HARK_CODEC_INTERFACE_VERSION; new members go at the end */

  const char *encoding_name; /* RTP encoding name, e.g. "OPUS", "PCMU" */
  const char *encoding_params; /* the SDP encoding parameters (channels), or NULL */
  guint clock_rate; /* RTP clock rate, e.g. 48000; 8000 for G.711 */
  guint sample_rate; /* rate of the raw audio the encoder takes */
  guint channels;
  guint default_payload_type; /* static type (0, 8, 9) or a dynamic default (96-127) */
  guint frame_ms; /* packet time; the engine pins audio payloaders (those with
                                * min-ptime/max-ptime) to it */

  /* GStreamer element factory names; NULL for an element make() gives (version 2). */
  const char *encoder;
  const char *payloader;
  const char *depayloader;
  const char *decoder;

  /* Apply the codec's settings (the a{sv} of the media configuration for this codec,
   * possibly empty) to one element the engine made. A wrong setting is an error naming
   * the key. May be NULL when the defaults of every element are right. */
  gboolean (*configure)(gpointer instance, HarkCodecRole role, GObject *element, GVariant *settings,
                        GError **error);

  /* Change one setting on a running encoder. FALSE with an error naming the key when
   * the setting is unknown, out of range, or cannot change while running. May be NULL. */
  gboolean (*set_live)(gpointer instance, GObject *encoder, const char *key, GVariant *value,
                       GError **error);

  /* Follow the far end's reports: e.g. lower the bitrate and switch on FEC when loss
   * rises, or lengthen the packets when the round trip says a queue is filling, within
   * the bounds the settings give. A packet time changed here is not signalled: a codec
   * may do it only when its packets say their own duration (Opus's TOC byte). May be
   * NULL (fixed-rate codecs). */
  void (*adapt)(gpointer instance, GObject *encoder, GVariant *settings,
                const HarkCodecFeedback *feedback);

  /* Version 2. Make the element of a role whose factory name above is NULL: an element
   * of the plugin's own, which no GStreamer plugin provides (GStreamer starts after the
   * plugins load, so a plugin cannot put a factory into its registry at init; it may
   * register one here). The engine configures it as any other. NULL, with an error,
   * when it cannot. May be NULL when every role has a factory name. */
  GObject *(*make)(gpointer instance, HarkCodecRole role, GError **error);
} HarkCodecInterface;

G_END_DECLS
