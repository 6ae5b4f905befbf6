/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-session-report.c: the receive report (docs/protocol.md, "The receive report").
 * Each side adds an RTCP APP packet "HKRX" to the compound reports it sends, saying how
 * many bytes and packets of the far end's it has taken (authenticated SRTP and SRTCP)
 * and when, by its own clock. The far end turns two of them into the rate its stream reached
 * this side at: what the link passed, which a receiver report never says (RFC 3550 counts
 * the packets lost, not the octets that arrived). It travels in SRTCP, so only the far
 * end can write it; what the far end says of its own reception is still only its word,
 * and the codec trusts it no further than what was sent (codecs/opus/opus-adapt.c). */
#include "media-private.h"
#include "media-session-impl.h"

#include <gst/rtp/gstrtcpbuffer.h>

#define REPORT_NAME "HKRX"
#define REPORT_SUBTYPE 0
/* Two reports further apart than this tell no rate worth having (a call on hold, a
 * path that was down). */
#define REPORT_SPAN_MAX_MS 60000

/* rtpsession's RTCP thread, before each compound packet goes out. The return value lets
 * an early packet be suppressed as before (reduced-size RTCP is not used). */
static gboolean
on_sending_rtcp(GObject *rtp_session, GstBuffer *buffer, gboolean early, gpointer data)
{
  (void)rtp_session;
  (void)early;
  HarkMediaSession *s = data;
  g_mutex_lock(&s->lock);
  guint32 bytes = (guint32)s->bytes_authenticated;
  guint32 packets = (guint32)s->packets_authenticated;
  g_mutex_unlock(&s->lock);
  guint32 clock_ms = (guint32)(g_get_monotonic_time() / 1000);
  GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
  if (!gst_rtcp_buffer_map(buffer, GST_MAP_READWRITE, &rtcp))
    return FALSE;
  GstRTCPPacket packet;
  if (gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_APP, &packet)) {
    gst_rtcp_packet_app_set_subtype(&packet, REPORT_SUBTYPE);
    gst_rtcp_packet_app_set_ssrc(&packet, s->ssrc);
    gst_rtcp_packet_app_set_name(&packet, REPORT_NAME);
    if (gst_rtcp_packet_app_set_data_length(&packet, HARK_MEDIA_REPORT_BYTES / 4)) {
      guint8 *out = gst_rtcp_packet_app_get_data(&packet);
      GST_WRITE_UINT32_BE(out, clock_ms);
      GST_WRITE_UINT32_BE(out + 4, bytes);
      GST_WRITE_UINT32_BE(out + 8, packets);
    }
  }
  gst_rtcp_buffer_unmap(&rtcp);
  return FALSE;
}

/* rtpsession's receiving thread: the far end's report, kept until the next tick. */
static void
on_app_rtcp(GObject *rtp_session, guint subtype, guint ssrc, const char *name, GstBuffer *buffer,
            gpointer data)
{
  (void)rtp_session;
  (void)ssrc;
  HarkMediaSession *s = data;
  if (subtype != REPORT_SUBTYPE || g_strcmp0(name, REPORT_NAME) != 0 || buffer == NULL)
    return;
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ))
    return;
  HarkMediaReceiveReport report;
  gsize size = map.size;
  gboolean ok = hark_media_report_parse(map.data, size, &report);
  gst_buffer_unmap(buffer, &map);
  g_mutex_lock(&s->lock);
  gboolean first_refusal = !ok && !s->far_report_refused;
  if (ok) {
    s->far_report = report;
    s->far_reports++;
  } else {
    s->far_report_refused = TRUE;
  }
  g_mutex_unlock(&s->lock);
  if (first_refusal) /* once a session: a peer sending them means it, not a stray packet */
    g_message("media: the far end's receive report has %" G_GSIZE_FORMAT " bytes of data, not "
              "%d: ignored, as are the rest of this session's that do not fit",
              size, HARK_MEDIA_REPORT_BYTES);
}

void
hark_media_report_install(HarkMediaSession *s, GObject *rtp_session)
{
  g_signal_connect(rtp_session, "on-sending-rtcp", G_CALLBACK(on_sending_rtcp), s);
  g_signal_connect(rtp_session, "on-app-rtcp", G_CALLBACK(on_app_rtcp), s);
}

/* Bit/s and packets/s of ours the far end took between the report used at the last
 * feedback and its newest; both negative when no new one came (or none before it, or
 * the two are too far apart). */
void
hark_media_report_received_rates(HarkMediaSession *s, double *bitrate, double *packet_rate)
{
  *bitrate = *packet_rate = -1;
  g_mutex_lock(&s->lock);
  HarkMediaReceiveReport now = s->far_report;
  guint64 count = s->far_reports;
  g_mutex_unlock(&s->lock);
  if (count == s->far_used_count)
    return;
  gboolean had = s->far_used_count > 0;
  HarkMediaReceiveReport before = s->far_used;
  s->far_used = now;
  s->far_used_count = count;
  guint32 span_ms = now.clock_ms - before.clock_ms; /* all three wrap at 2^32 */
  if (!had || span_ms == 0 || span_ms > REPORT_SPAN_MAX_MS)
    return;
  *bitrate = (guint32)(now.bytes - before.bytes) * 8000.0 / span_ms;
  *packet_rate = (guint32)(now.packets - before.packets) * 1000.0 / span_ms;
}
