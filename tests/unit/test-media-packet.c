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

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/media-packet/classify", test_classify);
  g_test_add_func("/media-packet/timestamps", test_timestamps);
  return g_test_run();
}
