/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-media-srtp.c: SRTP and SRTCP with OpenSSL (core/media/media-srtp.c): the session
 * keys and keystream of RFC 3711's appendix B; packets byte for byte libsrtp's, both
 * ways, both suites, RTP and SRTCP, across a rollover of the sequence number (libsrtp is
 * what GStreamer's srtpenc/srtpdec ran, and what a far end may run); and what an attacker
 * on the path tries: an altered packet or tag, a packet under another key, a replay, a
 * packet older than the window, truncated packets and headers that overrun them, SRTCP
 * without its E bit, more SSRCs than the table holds; and a receiving context made again
 * with what the last one saw (a stream past its rollover goes on; its past stays refused). */
#include "media-srtp.h"

#include <openssl/evp.h>
#include <srtp2/srtp.h>
#include <stdio.h>
#include <string.h>

static GBytes *
hex_bytes(const char *hex)
{
  gsize n = strlen(hex) / 2;
  guint8 *b = g_malloc(n);
  for (gsize i = 0; i < n; i++)
    sscanf(hex + 2 * i, "%2hhx", &b[i]);
  return g_bytes_new_take(b, n);
}

static GBytes *
random_key(HarkMediaSrtpSuite suite)
{
  gsize n = hark_media_srtp_key_length(suite);
  guint8 *b = g_malloc(n);
  for (gsize i = 0; i < n; i++)
    b[i] = g_random_int_range(0, 256);
  return g_bytes_new_take(b, n);
}

/* An RTP packet: seq, ssrc, `payload` bytes (optionally 2 CSRCs and an extension). */
static gsize
make_rtp(guint8 *p, guint16 seq, guint32 ssrc, gsize payload, gboolean extras)
{
  gsize n = 0;
  p[n++] = extras ? 0x92 : 0x80;
  p[n++] = 111;
  p[n++] = seq >> 8, p[n++] = seq;
  guint32 ts = seq * 960u;
  p[n++] = ts >> 24, p[n++] = ts >> 16, p[n++] = ts >> 8, p[n++] = ts;
  p[n++] = ssrc >> 24, p[n++] = ssrc >> 16, p[n++] = ssrc >> 8, p[n++] = ssrc;
  if (extras) {
    for (int i = 0; i < 8; i++)
      p[n++] = 0x10 + i; /* two CSRCs */
    p[n++] = 0xbe, p[n++] = 0xde, p[n++] = 0, p[n++] = 1; /* one word of extension */
    p[n++] = 0x10, p[n++] = 0xaa, p[n++] = 0, p[n++] = 0;
  }
  for (gsize i = 0; i < payload; i++)
    p[n++] = (guint8)(seq + i);
  return n;
}

/* A receiver report: version 2, PT 201, one block. */
static gsize
make_rtcp(guint8 *p, guint32 ssrc)
{
  memset(p, 0, 32);
  p[0] = 0x81, p[1] = 201, p[2] = 0, p[3] = 7;
  p[4] = ssrc >> 24, p[5] = ssrc >> 16, p[6] = ssrc >> 8, p[7] = ssrc;
  for (int i = 8; i < 32; i++)
    p[i] = (guint8)i;
  return 32;
}

/* ---- RFC 3711, appendix B --------------------------------------------------------- */

/* B.3: the session keys of master key E1F97A0D3E018BE0D64FA32C06DE4139, master salt
 * 0EC675AD498AFEEBB6960B3AABE6 are cipher key C61E7A93744F39EE10734AFE3FF7A087 and
 * cipher salt 30CBBC08863D8C85D49DB34A9AE1. Seen through what protection produces: an
 * RTP packet of zeros at SSRC 0, index 0 comes out as its header and the AES-CM
 * keystream of those session keys. */
static void
test_rfc3711_keystream(void)
{
  g_autoptr(GBytes) master = hex_bytes("E1F97A0D3E018BE0D64FA32C06DE4139"
                                       "0EC675AD498AFEEBB6960B3AABE6");
  g_autoptr(HarkSrtp) tx = hark_srtp_new(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, master, TRUE);
  g_assert_nonnull(tx);
  guint8 packet[12 + 48] = { 0x80, 0 }, out[sizeof packet + HARK_SRTP_MAX_TRAILER];
  gsize n = 0;
  g_assert_cmpint(hark_srtp_protect(tx, FALSE, packet, sizeof packet, out, &n), ==, HARK_SRTP_OK);
  g_assert_cmpuint(n, ==, sizeof packet + 10);
  /* AES-128 of the counter blocks 30CBBC08863D8C85D49DB34A9AE10000, ...0001, ...0002. */
  guint8 expected[48];
  g_autoptr(GBytes) key = hex_bytes("C61E7A93744F39EE10734AFE3FF7A087");
  g_autoptr(GBytes) iv = hex_bytes("30CBBC08863D8C85D49DB34A9AE10000");
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int done = 0;
  memset(expected, 0, sizeof expected);
  g_assert_cmpint(EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, g_bytes_get_data(key, NULL),
                                     g_bytes_get_data(iv, NULL)),
                  ==, 1);
  g_assert_cmpint(EVP_EncryptUpdate(ctx, expected, &done, expected, sizeof expected), ==, 1);
  EVP_CIPHER_CTX_free(ctx);
  g_assert_cmpmem(out + 12, 48, expected, 48);
}

/* B.2 itself: the keystream of session key 2B7E151628AED2A6ABF7158809CF4F3C and session
 * salt F0F1F2F3F4F5F6F7F8F9FAFBFCFD at SSRC 0, index 0 begins E03EAD0935C95E80E166B16DD92B4EB4
 * D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0. OpenSSL's CTR from
 * that counter block gives it (what cm_iv and ctr use). */
static void
test_rfc3711_b2(void)
{
  g_autoptr(GBytes) key = hex_bytes("2B7E151628AED2A6ABF7158809CF4F3C");
  g_autoptr(GBytes) iv = hex_bytes("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
  g_autoptr(GBytes) want = hex_bytes("E03EAD0935C95E80E166B16DD92B4EB4"
                                     "D23513162B02D0F72A43A2FE4A5F97AB"
                                     "41E95B3BB0A2E8DD477901E4FCA894C0");
  guint8 stream[48] = { 0 };
  int done = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  g_assert_cmpint(EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, g_bytes_get_data(key, NULL),
                                     g_bytes_get_data(iv, NULL)),
                  ==, 1);
  g_assert_cmpint(EVP_EncryptUpdate(ctx, stream, &done, stream, sizeof stream), ==, 1);
  EVP_CIPHER_CTX_free(ctx);
  g_assert_cmpmem(stream, sizeof stream, g_bytes_get_data(want, NULL), g_bytes_get_size(want));
}

/* ---- against libsrtp ------------------------------------------------------------------ */

typedef struct {
  HarkMediaSrtpSuite suite;
  gboolean extras;
} Case;

static srtp_t
libsrtp_session(HarkMediaSrtpSuite suite, GBytes *key, gboolean sender)
{
  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  if (suite == HARK_MEDIA_SRTP_AEAD_AES_256_GCM) {
    srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtcp);
  } else {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
  }
  policy.ssrc.type = sender ? ssrc_any_outbound : ssrc_any_inbound;
  policy.key = (unsigned char *)g_bytes_get_data(key, NULL);
  policy.window_size = 128;
  policy.allow_repeat_tx = 0;
  srtp_t session = NULL;
  g_assert_cmpint(srtp_create(&session, &policy), ==, srtp_err_status_ok);
  return session;
}

/* One packet through ours to libsrtp and through libsrtp to ours: the same bytes out. */
static void
both_ways(const Case *c, HarkSrtp *tx, HarkSrtp *rx, srtp_t lib_tx, srtp_t lib_rx, gboolean rtcp,
          const guint8 *plain, gsize length)
{
  guint8 ours[256], theirs[256], back[256];
  gsize ours_length = 0, back_length = 0;
  g_assert_cmpint(hark_srtp_protect(tx, rtcp, plain, length, ours, &ours_length), ==, HARK_SRTP_OK);
  memcpy(theirs, plain, length);
  int theirs_length = (int)length;
  srtp_err_status_t st = rtcp ? srtp_protect_rtcp(lib_tx, theirs, &theirs_length)
                              : srtp_protect(lib_tx, theirs, &theirs_length);
  g_assert_cmpint(st, ==, srtp_err_status_ok);
  if (!rtcp) /* SRTCP indices are each side's own count; RTP's are the packet's */
    g_assert_cmpmem(ours, ours_length, theirs, theirs_length);
  /* Ours decrypted by libsrtp, libsrtp's by ours. */
  int n = (int)ours_length;
  st = rtcp ? srtp_unprotect_rtcp(lib_rx, ours, &n) : srtp_unprotect(lib_rx, ours, &n);
  g_assert_cmpint(st, ==, srtp_err_status_ok);
  g_assert_cmpmem(ours, n, plain, length);
  g_assert_cmpint(hark_srtp_unprotect(rx, rtcp, theirs, theirs_length, back, &back_length), ==,
                  HARK_SRTP_OK);
  g_assert_cmpmem(back, back_length, plain, length);
  (void)c;
}

static void
test_libsrtp(gconstpointer data)
{
  const Case *c = data;
  g_autoptr(GBytes) key = random_key(c->suite);
  g_autoptr(HarkSrtp) tx = hark_srtp_new(c->suite, key, TRUE);
  g_autoptr(HarkSrtp) rx = hark_srtp_new(c->suite, key, FALSE);
  srtp_t lib_tx = libsrtp_session(c->suite, key, TRUE),
         lib_rx = libsrtp_session(c->suite, key, FALSE);
  guint8 plain[256];
  /* From just below a rollover of the sequence number on: the ROC must follow. */
  guint16 seq = 65530;
  for (int i = 0; i < 40; i++, seq++) {
    both_ways(c, tx, rx, lib_tx, lib_rx, FALSE, plain,
              make_rtp(plain, seq, 0x1234abcd, 1 + (i * 7) % 160, c->extras));
    if (i % 5 == 0)
      both_ways(c, tx, rx, lib_tx, lib_rx, TRUE, plain, make_rtcp(plain, 0x1234abcd));
  }
  srtp_dealloc(lib_tx);
  srtp_dealloc(lib_rx);
}

/* ---- attacks --------------------------------------------------------------------------- */

static gsize
protect(HarkSrtp *tx, gboolean rtcp, const guint8 *plain, gsize length, guint8 *out)
{
  gsize n = 0;
  g_assert_cmpint(hark_srtp_protect(tx, rtcp, plain, length, out, &n), ==, HARK_SRTP_OK);
  return n;
}

static HarkSrtpResult
unprotect(HarkSrtp *rx, gboolean rtcp, const guint8 *packet, gsize length)
{
  guint8 out[512];
  gsize n = 0;
  g_assert_cmpuint(length, <=, sizeof out);
  return hark_srtp_unprotect(rx, rtcp, packet, length, out, &n);
}

static void
test_attacks(gconstpointer data)
{
  HarkMediaSrtpSuite suite = GPOINTER_TO_INT(data);
  g_autoptr(GBytes) key = random_key(suite), other = random_key(suite);
  g_autoptr(HarkSrtp) tx = hark_srtp_new(suite, key, TRUE);
  g_autoptr(HarkSrtp) rx = hark_srtp_new(suite, key, FALSE);
  g_autoptr(HarkSrtp) stranger = hark_srtp_new(suite, other, TRUE);
  guint8 plain[256], packet[300], forged[300];
  for (int rtcp = 0; rtcp <= 1; rtcp++) {
    gsize length = rtcp ? make_rtcp(plain, 77) : make_rtp(plain, 100, 77, 80, FALSE);
    gsize n = protect(tx, rtcp, plain, length, packet);
    /* Every single bit flipped, header, payload, tag or index, fails the check. */
    for (gsize bit = 0; bit < n * 8; bit++) {
      memcpy(forged, packet, n);
      forged[bit / 8] ^= 1 << (bit % 8);
      HarkSrtpResult r = unprotect(rx, rtcp, forged, n);
      g_assert_cmpint(r, !=, HARK_SRTP_OK);
    }
    /* Another key's packet. */
    gsize m = protect(stranger, rtcp, plain, length, forged);
    g_assert_cmpint(unprotect(rx, rtcp, forged, m), ==, HARK_SRTP_AUTH);
    /* Truncated anywhere. */
    for (gsize cut = 0; cut < n; cut++)
      g_assert_cmpint(unprotect(rx, rtcp, packet, cut), !=, HARK_SRTP_OK);
    /* The real one passes once, then is a replay. */
    g_assert_cmpint(unprotect(rx, rtcp, packet, n), ==, HARK_SRTP_OK);
    g_assert_cmpint(unprotect(rx, rtcp, packet, n), ==, HARK_SRTP_REPLAY);
  }
  /* Older than the window: packets 101..200 pass, then 100's twin (seq 120 protected
   * early and held back) is 80 behind. */
  gsize held = protect(tx, FALSE, plain, make_rtp(plain, 120, 77, 10, FALSE), forged);
  for (guint16 seq = 101; seq <= 200; seq++)
    if (seq != 120) {
      gsize n = protect(tx, FALSE, plain, make_rtp(plain, seq, 77, 10, FALSE), packet);
      g_assert_cmpint(unprotect(rx, FALSE, packet, n), ==, HARK_SRTP_OK);
    }
  g_assert_cmpint(unprotect(rx, FALSE, forged, held), ==, HARK_SRTP_REPLAY);
  /* Late but within the window, and out of order: accepted once. */
  gsize late = protect(tx, FALSE, plain, make_rtp(plain, 150 + 100, 77, 10, FALSE), forged);
  gsize n = protect(tx, FALSE, plain, make_rtp(plain, 251, 77, 10, FALSE), packet);
  g_assert_cmpint(unprotect(rx, FALSE, packet, n), ==, HARK_SRTP_OK);
  g_assert_cmpint(unprotect(rx, FALSE, forged, late), ==, HARK_SRTP_OK);
  g_assert_cmpint(unprotect(rx, FALSE, forged, late), ==, HARK_SRTP_REPLAY);
  /* A header whose CSRCs or extension run past the end. */
  make_rtp(plain, 300, 77, 0, TRUE);
  plain[0] = 0x8f; /* 15 CSRCs: 72 bytes of header in a shorter packet */
  g_assert_cmpint(hark_srtp_protect(tx, FALSE, plain, 40, packet, &n), ==, HARK_SRTP_MALFORMED);
  g_assert_cmpint(unprotect(rx, FALSE, plain, 40), ==, HARK_SRTP_MALFORMED);
  /* SRTCP without E (unencrypted) is refused, whatever its tag. */
  n = protect(tx, TRUE, plain, make_rtcp(plain, 77), packet);
  gsize word = suite == HARK_MEDIA_SRTP_AEAD_AES_256_GCM ? n - 4 : n - 14;
  packet[word] &= 0x7f;
  g_assert_cmpint(unprotect(rx, TRUE, packet, n), ==, HARK_SRTP_MALFORMED);
  /* SSRCs beyond the table (one is taken by 77): the ones already seen keep working. */
  g_autoptr(HarkSrtp) many = hark_srtp_new(suite, key, TRUE);
  for (guint32 ssrc = 1000; ssrc < 1000 + HARK_SRTP_MAX_SSRCS; ssrc++) {
    n = protect(many, FALSE, plain, make_rtp(plain, 5, ssrc, 10, FALSE), packet);
    HarkSrtpResult r = unprotect(rx, FALSE, packet, n);
    g_assert_true(r == HARK_SRTP_OK || r == HARK_SRTP_TOO_MANY_SSRCS);
  }
  n = protect(stranger, FALSE, plain, make_rtp(plain, 6, 9999, 10, FALSE), packet);
  g_assert_cmpint(unprotect(rx, FALSE, packet, n), ==, HARK_SRTP_TOO_MANY_SSRCS);
  n = protect(tx, FALSE, plain, make_rtp(plain, 252, 77, 10, FALSE), packet);
  g_assert_cmpint(unprotect(rx, FALSE, packet, n), ==, HARK_SRTP_OK);
}

/* A receiving context made again for a stream that goes on (a conference host adopting a
 * call: docs/protocol.md, "Conferences"). The sender wraps its sequence numbers (65,530 ..
 * 65,535, 0 .. 9: its rollover counter is 1); a receiver that saw that, saved, is given
 * to a new context with the same key. That one takes the stream's next packets and
 * refuses the ones already seen, as the first would; a new context without it guesses
 * the rollover counter as 0 and refuses the stream (the bug this fixes: after 22 minutes
 * of a call, an adopted member was never heard at the host). SRTCP goes on too. */
static void
test_windows_carry_over(gconstpointer data)
{
  HarkMediaSrtpSuite suite = GPOINTER_TO_INT(data);
  g_autoptr(GBytes) key = random_key(suite);
  g_autoptr(HarkSrtp) tx = hark_srtp_new(suite, key, TRUE);
  g_autoptr(HarkSrtp) rx = hark_srtp_new(suite, key, FALSE);
  guint8 plain[256], seen[300], rtcp[300];
  gsize seen_n = 0;
  for (guint i = 0; i < 16; i++) {
    guint8 packet[300];
    gsize n =
      protect(tx, FALSE, plain, make_rtp(plain, (guint16)(65530 + i), 77, 40, FALSE), packet);
    g_assert_cmpint(unprotect(rx, FALSE, packet, n), ==, HARK_SRTP_OK);
    if (i == 12) { /* seq 6, after the wrap */
      memcpy(seen, packet, n);
      seen_n = n;
    }
  }
  gsize rtcp_n = protect(tx, TRUE, plain, make_rtcp(plain, 77), rtcp);
  g_assert_cmpint(unprotect(rx, TRUE, rtcp, rtcp_n), ==, HARK_SRTP_OK);
  g_autoptr(HarkSrtpWindows) saved = hark_srtp_save_windows(rx);
  g_autoptr(HarkSrtp) again = hark_srtp_new(suite, key, FALSE);
  hark_srtp_restore_windows(again, saved);
  g_autoptr(HarkSrtp) fresh = hark_srtp_new(suite, key, FALSE);
  guint8 next[300];
  gsize next_n = protect(tx, FALSE, plain, make_rtp(plain, 10, 77, 40, FALSE), next);
  g_assert_cmpint(unprotect(fresh, FALSE, next, next_n), ==, HARK_SRTP_AUTH);
  g_assert_cmpint(unprotect(again, FALSE, next, next_n), ==, HARK_SRTP_OK);
  g_assert_cmpint(unprotect(again, FALSE, seen, seen_n), ==, HARK_SRTP_REPLAY);
  g_assert_cmpint(unprotect(again, TRUE, rtcp, rtcp_n), ==, HARK_SRTP_REPLAY);
  rtcp_n = protect(tx, TRUE, plain, make_rtcp(plain, 77), rtcp);
  g_assert_cmpint(unprotect(again, TRUE, rtcp, rtcp_n), ==, HARK_SRTP_OK);
}

static void
test_wrong_key_length(void)
{
  g_autoptr(GBytes) short_key = hex_bytes("00112233");
  g_assert_null(hark_srtp_new(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, short_key, TRUE));
  g_autoptr(GBytes) cm_key = random_key(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80);
  g_assert_null(hark_srtp_new(HARK_MEDIA_SRTP_AEAD_AES_256_GCM, cm_key, TRUE));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_assert_cmpint(srtp_init(), ==, srtp_err_status_ok);
  static const Case cm = { HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, FALSE },
                    cm_extras = { HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, TRUE },
                    gcm = { HARK_MEDIA_SRTP_AEAD_AES_256_GCM, FALSE },
                    gcm_extras = { HARK_MEDIA_SRTP_AEAD_AES_256_GCM, TRUE };
  g_test_add_func("/media-srtp/rfc3711/b2-keystream", test_rfc3711_b2);
  g_test_add_func("/media-srtp/rfc3711/b3-keys", test_rfc3711_keystream);
  g_test_add_data_func("/media-srtp/libsrtp/aes-cm", &cm, test_libsrtp);
  g_test_add_data_func("/media-srtp/libsrtp/aes-cm-csrcs-extension", &cm_extras, test_libsrtp);
  g_test_add_data_func("/media-srtp/libsrtp/aes-gcm", &gcm, test_libsrtp);
  g_test_add_data_func("/media-srtp/libsrtp/aes-gcm-csrcs-extension", &gcm_extras, test_libsrtp);
  g_test_add_data_func("/media-srtp/attacks/aes-cm",
                       GINT_TO_POINTER(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80), test_attacks);
  g_test_add_data_func("/media-srtp/attacks/aes-gcm",
                       GINT_TO_POINTER(HARK_MEDIA_SRTP_AEAD_AES_256_GCM), test_attacks);
  g_test_add_data_func("/media-srtp/carry-over/aes-cm",
                       GINT_TO_POINTER(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80),
                       test_windows_carry_over);
  g_test_add_data_func("/media-srtp/carry-over/aes-gcm",
                       GINT_TO_POINTER(HARK_MEDIA_SRTP_AEAD_AES_256_GCM), test_windows_carry_over);
  g_test_add_func("/media-srtp/wrong-key-length", test_wrong_key_length);
  int rc = g_test_run();
  srtp_shutdown();
  return rc;
}
