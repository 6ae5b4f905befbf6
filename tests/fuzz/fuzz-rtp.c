/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-rtp.c: libFuzzer target for the first checks a received media packet meets
 * (core/media-packet.c), which run on every packet a peer or a stranger sends before
 * any decryption, and for the RFC 4733 telephone-event receiver (core/media-dtmf.c)
 * that reads the payload of every packet of the DTMF payload type. Besides crashes it
 * checks the classifier's promises: an accepted RTP header lies inside the packet, and
 * an accepted RTCP packet's first report fits; and the receiver's: a digit is one of
 * the sixteen, and a repeated packet never reports its digit a second time. The same
 * bytes are read as the data of a receive report (media-packet.c) too. */
#include <stdint.h>
#include <stdlib.h>

#include "media-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The payload as a telephone-event, fed twice (the end packet's repeats): the second
 * time reports nothing. Then the same event's older timestamp: nothing either. */
static void
check_dtmf(const uint8_t *data, gsize header, size_t size)
{
  HarkMediaDtmfReceiver rx = { 0 };
  guint32 ts = (guint32)data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7];
  char digits[2] = { 0, 0 };
  int n = hark_media_dtmf_receive(&rx, ts, data + header, size - header, digits);
  if (n < -1 || n > 1)
    abort(); /* two only when an earlier event was in progress */
  for (int i = 0; i < n; i++)
    if (hark_media_dtmf_event(digits[i]) < 0)
      abort();
  if (hark_media_dtmf_receive(&rx, ts, data + header, size - header, digits) > 0 ||
      hark_media_dtmf_receive(&rx, ts - 1, data + header, size - header, digits) > 0)
    abort();
}

/* The data as a receive report's (an RTCP APP packet "HKRX"): taken exactly when it is
 * twelve bytes long, and then read as three big-endian words. */
static void
check_report(const uint8_t *data, size_t size)
{
  HarkMediaReceiveReport report;
  gboolean parsed = hark_media_report_parse(data, size, &report);
  if (parsed != (size == HARK_MEDIA_REPORT_BYTES))
    abort();
  if (parsed && (report.clock_ms != ((guint32)data[0] << 24 | data[1] << 16 | data[2] << 8 | data[3]) ||
                 report.bytes != ((guint32)data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7]) ||
                 report.packets != ((guint32)data[8] << 24 | data[9] << 16 | data[10] << 8 | data[11])))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  check_report(data, size);
  guint8 pt = 0xff;
  guint32 ssrc = 0;
  HarkMediaPacketKind kind = hark_media_packet_classify(data, size, &pt, &ssrc);
  if (kind == HARK_MEDIA_PACKET_RTP) {
    gsize header = 12 + (gsize)(data[0] & 0x0f) * 4;
    if (pt > 127 || header > size || (data[1] >= 192 && data[1] <= 223))
      abort();
    if (data[0] & 0x10)
      header += 4 + (gsize)((data[header + 2] << 8) | data[header + 3]) * 4;
    check_dtmf(data, header, size);
  } else if (kind == HARK_MEDIA_PACKET_RTCP) {
    if (size < 12 || (((gsize)data[2] << 8 | data[3]) + 1) * 4 > size)
      abort();
  }
  if (size >= 16) {
    guint32 last = (guint32)data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7];
    guint32 next = (guint32)data[8] << 24 | data[9] << 16 | data[10] << 8 | data[11];
    gint64 elapsed =
      (gint64)((guint32)data[12] << 24 | data[13] << 16 | data[14] << 8 | data[15]) - G_MAXINT32;
    guint rate = (data[0] << 8 | data[1]) * 8;
    gboolean ok = hark_media_timestamp_plausible(last, next, rate, elapsed);
    /* No step is plausible without a clock; a step of zero always is with one. */
    if ((rate == 0 && ok) ||
        (rate > 0 && !hark_media_timestamp_plausible(last, last, rate, elapsed)))
      abort();
  }
  return 0;
}
