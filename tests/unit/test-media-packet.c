/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-media-packet.c: the checks every received media packet meets first
 * (core/media-packet.c): what is RTP, what is RTCP, what is dropped as malformed, and
 * which timestamp steps are believed. */
#include "media-private.h"

#include <string.h>

static void
test_classify(void)
{
  guint8 rtp[32] = { 0x80, 111, 0x12, 0x34, 0, 0, 0x01, 0, 0xde, 0xad, 0xbe, 0xef };
  guint8 pt = 0;
  guint32 ssrc = 0;
  g_assert_cmpint(hark_media_packet_classify(rtp, sizeof rtp, &pt, &ssrc), ==,
                  HARK_MEDIA_PACKET_RTP);
  g_assert_cmpuint(pt, ==, 111);
  g_assert_cmphex(ssrc, ==, 0xdeadbeef);
  /* The marker bit is not part of the payload type. */
  rtp[1] = 0x80 | 8;
  g_assert_cmpint(hark_media_packet_classify(rtp, sizeof rtp, &pt, NULL), ==,
                  HARK_MEDIA_PACKET_RTP);
  g_assert_cmpuint(pt, ==, 8);
  /* Too short, wrong version, CSRCs or an extension beyond the end. */
  g_assert_cmpint(hark_media_packet_classify(rtp, 11, NULL, NULL), ==, HARK_MEDIA_PACKET_MALFORMED);
  g_assert_cmpint(hark_media_packet_classify(NULL, 0, NULL, NULL), ==, HARK_MEDIA_PACKET_MALFORMED);
  rtp[0] = 0x40;
  g_assert_cmpint(hark_media_packet_classify(rtp, sizeof rtp, NULL, NULL), ==,
                  HARK_MEDIA_PACKET_MALFORMED);
  rtp[0] = 0x80 | 6; /* 6 CSRCs = 36 bytes of header */
  g_assert_cmpint(hark_media_packet_classify(rtp, sizeof rtp, NULL, NULL), ==,
                  HARK_MEDIA_PACKET_MALFORMED);
  rtp[0] = 0x90; /* an extension of 0x0101 words */
  rtp[14] = 1;
  rtp[15] = 1;
  g_assert_cmpint(hark_media_packet_classify(rtp, sizeof rtp, NULL, NULL), ==,
                  HARK_MEDIA_PACKET_MALFORMED);
  rtp[14] = 0;
  rtp[15] = 2; /* 8 bytes: fits */
  g_assert_cmpint(hark_media_packet_classify(rtp, sizeof rtp, NULL, NULL), ==,
                  HARK_MEDIA_PACKET_RTP);

  guint8 rtcp[28] = { 0x80, 200, 0, 6 };
  g_assert_cmpint(hark_media_packet_classify(rtcp, sizeof rtcp, NULL, NULL), ==,
                  HARK_MEDIA_PACKET_RTCP);
  rtcp[3] = 7; /* 32 bytes claimed in 28 */
  g_assert_cmpint(hark_media_packet_classify(rtcp, sizeof rtcp, NULL, NULL), ==,
                  HARK_MEDIA_PACKET_MALFORMED);
}

static void
test_timestamps(void)
{
  /* 20 ms later at 48 kHz: 960; reordering by a frame; a long hold. */
  g_assert_true(hark_media_timestamp_plausible(1000, 1960, 48000, 20000));
  g_assert_true(hark_media_timestamp_plausible(1960, 1000, 48000, 1000));
  g_assert_true(hark_media_timestamp_plausible(0, 60 * 8000, 8000, 60 * G_USEC_PER_SEC));
  /* Wrap-around is a small step. */
  g_assert_true(hark_media_timestamp_plausible(0xffffff00u, 0x40, 8000, 20000));
  /* A quarter of the 32-bit range after 20 ms, or 20 s back. */
  g_assert_false(hark_media_timestamp_plausible(1000, 1000 + 0x40000000u, 48000, 20000));
  g_assert_false(hark_media_timestamp_plausible(20 * 48000 + 5, 5, 48000, 20000));
  g_assert_false(hark_media_timestamp_plausible(0, 0, 0, 0));
}

/* Feed one telephone-event payload; returns the digits it reported ("" for none, "!" for
 * a payload refused). */
static const char *
dtmf_feed(HarkMediaDtmfReceiver *rx, guint32 ts, guint event, gboolean end, guint duration)
{
  static char out[3];
  guint8 payload[4];
  hark_media_dtmf_payload(payload, event, end, duration);
  char digits[2];
  int n = hark_media_dtmf_receive(rx, ts, payload, sizeof payload, digits);
  if (n < 0)
    return "!";
  memcpy(out, digits, n);
  out[n] = '\0';
  return out;
}

/* Each digit once however its end is repeated; reordered repeats of an older event
 * report nothing; a digit whose ends were all lost is reported when the next starts;
 * what is not a DTMF event is refused. */
static void
test_dtmf(void)
{
  g_assert_cmpint(hark_media_dtmf_event('0'), ==, 0);
  g_assert_cmpint(hark_media_dtmf_event('*'), ==, 10);
  g_assert_cmpint(hark_media_dtmf_event('#'), ==, 11);
  g_assert_cmpint(hark_media_dtmf_event('D'), ==, 15);
  g_assert_cmpint(hark_media_dtmf_event('d'), ==, -1);
  g_assert_cmpint(hark_media_dtmf_event('\0'), ==, -1);
  g_assert_cmpint(hark_media_dtmf_event('\n'), ==, -1);
  guint8 p[4];
  hark_media_dtmf_payload(p, 11, TRUE, 70000);
  g_assert_cmpuint(p[0], ==, 11);
  g_assert_cmpuint(p[1], ==, 0x80 | 10);
  g_assert_cmpuint((p[2] << 8) | p[3], ==, 0xffff); /* clamped to the 16-bit field */

  HarkMediaDtmfReceiver rx = { 0 };
  g_assert_cmpstr(dtmf_feed(&rx, 1000, 1, FALSE, 960), ==, "");
  g_assert_cmpstr(dtmf_feed(&rx, 1000, 1, FALSE, 1920), ==, "");
  g_assert_cmpstr(dtmf_feed(&rx, 1000, 1, TRUE, 4800), ==, "1");
  for (int i = 0; i < 10; i++) /* a far end that repeats its end packet: still once */
    g_assert_cmpstr(dtmf_feed(&rx, 1000, 1, TRUE, 4800), ==, "");
  /* Another event code at the same instant is not a new digit. */
  g_assert_cmpstr(dtmf_feed(&rx, 1000, 2, TRUE, 4800), ==, "");
  g_assert_cmpstr(dtmf_feed(&rx, 9000, 11, FALSE, 960), ==, "");
  /* A late repeat of the first event's end, after the second began. */
  g_assert_cmpstr(dtmf_feed(&rx, 1000, 1, TRUE, 4800), ==, "");
  /* The second's ends all lost: reported when the third starts, the third at its end. */
  g_assert_cmpstr(dtmf_feed(&rx, 20000, 10, FALSE, 960), ==, "#");
  g_assert_cmpstr(dtmf_feed(&rx, 20000, 10, TRUE, 4800), ==, "*");
  /* A new event whose first packet is already its end (the others lost). */
  g_assert_cmpstr(dtmf_feed(&rx, 30000, 15, TRUE, 4800), ==, "D");
  /* Across the timestamp's wrap. */
  HarkMediaDtmfReceiver wrap = { 0 };
  g_assert_cmpstr(dtmf_feed(&wrap, 0xfffffff0u, 3, TRUE, 4800), ==, "3");
  g_assert_cmpstr(dtmf_feed(&wrap, 0x00000100u, 4, TRUE, 4800), ==, "4");
  /* Not DTMF: event codes above 15 (other telephone events), short payloads. */
  g_assert_cmpstr(dtmf_feed(&rx, 40000, 16, TRUE, 4800), ==, "!");
  g_assert_cmpstr(dtmf_feed(&rx, 40000, 255, TRUE, 4800), ==, "!");
  char digits[2];
  g_assert_cmpint(hark_media_dtmf_receive(&rx, 40000, p, 3, digits), ==, -1);
  g_assert_cmpint(hark_media_dtmf_receive(&rx, 40000, NULL, 0, digits), ==, -1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/media-packet/classify", test_classify);
  g_test_add_func("/media-packet/timestamps", test_timestamps);
  g_test_add_func("/media-packet/dtmf", test_dtmf);
  return g_test_run();
}
