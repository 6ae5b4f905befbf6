/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-srtp.c: libFuzzer target for the engine's SRTP (core/media/media-srtp.c), which
 * checks every packet that arrives on a call's media path. The first byte picks the
 * suite (bit 0: AEAD_AES_256_GCM, else AES_CM_128_HMAC_SHA1_80) and RTP or SRTCP (bit 1);
 * the rest is a packet. As received, under a fixed key: no crash, and whatever passes
 * comes out shorter by at least the tag. As sent: what protection accepts unprotects
 * under the same key to the same bytes, once (the second time is a replay). */
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "media-srtp.h"

static const guint8 master[44] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                                   31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44 };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_init();
  return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > 4096)
    return 0;
  HarkMediaSrtpSuite suite =
    data[0] & 1 ? HARK_MEDIA_SRTP_AEAD_AES_256_GCM : HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80;
  gboolean rtcp = (data[0] & 2) != 0;
  const guint8 *packet = data + 1;
  gsize length = size - 1;
  g_autoptr(GBytes) key = g_bytes_new_static(master, hark_media_srtp_key_length(suite));
  g_autoptr(HarkSrtp) rx = hark_srtp_new(suite, key, FALSE);
  g_autoptr(HarkSrtp) tx = hark_srtp_new(suite, key, TRUE);
  g_autoptr(HarkSrtp) rx2 = hark_srtp_new(suite, key, FALSE);
  if (rx == NULL || tx == NULL || rx2 == NULL)
    abort();
  g_autofree guint8 *out = g_malloc(length + HARK_SRTP_MAX_TRAILER);
  g_autofree guint8 *back = g_malloc(length + HARK_SRTP_MAX_TRAILER);
  gsize n = 0, m = 0;
  if (hark_srtp_unprotect(rx, rtcp, packet, length, out, &n) == HARK_SRTP_OK) {
    fuzz_say("accepted", NULL);
    if (n + 10 > length)
      abort();
  }
  if (hark_srtp_protect(tx, rtcp, packet, length, out, &n) != HARK_SRTP_OK) {
    fuzz_say("refused", "not a packet protection takes");
    return 0;
  }
  if (n > length + HARK_SRTP_MAX_TRAILER ||
      hark_srtp_unprotect(rx2, rtcp, out, n, back, &m) != HARK_SRTP_OK || m != length ||
      memcmp(back, packet, length) != 0 ||
      hark_srtp_unprotect(rx2, rtcp, out, n, back, &m) != HARK_SRTP_REPLAY)
    abort();
  fuzz_say("round trip", NULL);
  return 0;
}
