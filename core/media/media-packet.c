/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-packet.c: the first checks every received media packet meets, before any
 * GStreamer element sees it: is it RTP or RTCP at all, and is its header whole; and the
 * data of the far end's receive report (media-session-report.c).
 * Kept free of GStreamer so the fuzz target (tests/fuzz/fuzz-rtp.c) compiles it alone. */
#include "media-private.h"

static guint32
read_u32(const guint8 *p)
{
  return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

HarkMediaPacketKind
hark_media_packet_classify(const guint8 *data, gsize length, guint8 *payload_type, guint32 *ssrc)
{
  /* 12 bytes: an RTP fixed header, and less than the smallest SRTCP packet (8-byte
   * header, 4-byte index, authentication tag). */
  if (data == NULL || length < 12 || length > G_MAXUINT16)
    return HARK_MEDIA_PACKET_MALFORMED;
  if ((data[0] >> 6) != 2)
    return HARK_MEDIA_PACKET_MALFORMED;
  if (data[1] >= 192 && data[1] <= 223) {
    /* RTCP: the length field (in 32-bit words minus one) of the first report must fit. */
    gsize first = ((gsize)((data[2] << 8) | data[3]) + 1) * 4;
    return first <= length ? HARK_MEDIA_PACKET_RTCP : HARK_MEDIA_PACKET_MALFORMED;
  }
  gsize header = 12 + (gsize)(data[0] & 0x0f) * 4;
  if (header > length)
    return HARK_MEDIA_PACKET_MALFORMED;
  if (data[0] & 0x10) {
    if (header + 4 > length)
      return HARK_MEDIA_PACKET_MALFORMED;
    header += 4 + (gsize)((data[header + 2] << 8) | data[header + 3]) * 4;
    if (header > length)
      return HARK_MEDIA_PACKET_MALFORMED;
  }
  if (payload_type != NULL)
    *payload_type = data[1] & 0x7f;
  if (ssrc != NULL)
    *ssrc = read_u32(data + 8);
  return HARK_MEDIA_PACKET_RTP;
}

gboolean
hark_media_report_parse(const guint8 *data, gsize length, HarkMediaReceiveReport *report)
{
  if (data == NULL || length != HARK_MEDIA_REPORT_BYTES)
    return FALSE;
  report->clock_ms = read_u32(data);
  report->bytes = read_u32(data + 4);
  report->packets = read_u32(data + 8);
  return TRUE;
}

gboolean
hark_media_timestamp_plausible(guint32 last, guint32 next, guint clock_rate, gint64 elapsed_us)
{
  if (clock_rate == 0)
    return FALSE;
  gint64 step = (gint32)(next - last);
  gint64 elapsed = MAX(elapsed_us, 0) / 1000; /* ms */
  /* Allowed: the wall time since the last packet plus 10 s either way (reordering, a
   * sender's clock running fast, a codec swap's re-basing). */
  gint64 bound = (elapsed + 10000) * (gint64)clock_rate / 1000;
  return step <= bound && step >= -(gint64)10 * clock_rate;
}
