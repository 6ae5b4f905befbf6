/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-srtp.c: SRTP and SRTCP with OpenSSL (media-srtp.h).
 *
 * AES_CM_128_HMAC_SHA1_80 (RFC 3711): session keys from the AES-128 counter-mode PRF
 * (4.3.3), the payload XORed with AES-128-CTR keystream from the IV
 * (salt·2^16) XOR (SSRC·2^64) XOR (index·2^16), a tag of the first 10 bytes of
 * HMAC-SHA1 over the packet and the rollover counter (SRTCP: over the packet and its
 * E‖index word). AEAD_AES_256_GCM (RFC 7714): AES-256-GCM with the IV
 * (0 0 ‖ SSRC ‖ ROC ‖ SEQ) XOR salt, the header as associated data and a 16-byte tag;
 * SRTCP: IV (0 0 ‖ SSRC ‖ 0 0 ‖ index), the first 8 bytes and the E‖index word as
 * associated data, the word after the tag. Its session keys come from the AES-256 PRF
 * with the 12-byte master salt followed by two zero bytes, as libsrtp derives them (the
 * implementation the far end may run). */
#include "media-srtp.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define CM_TAG 10
#define GCM_TAG 16
#define WINDOW 64

/* Highest index seen (RTP: ROC·2^16 + SEQ; SRTCP: its index) and the 64 below it. */
typedef struct {
  guint32 ssrc;
  gboolean used;
  guint64 highest;
  guint64 seen; /* bit d: highest - d was seen */
} Window;

typedef struct {
  EVP_CIPHER_CTX *cipher;
  EVP_MAC_CTX *mac; /* AES-CM only */
  guint8 salt[14]; /* 14 bytes (AES-CM) or 12 (GCM) */
  Window windows[HARK_SRTP_MAX_SSRCS];
} Keys;

struct _HarkSrtp {
  GMutex lock;
  gboolean gcm, sender;
  Keys rtp, rtcp;
  guint32 rtcp_index; /* the last SRTCP index sent */
};

/* ---- keys --------------------------------------------------------------------------- */

/* n bytes of the key derivation PRF for label (RFC 3711 4.3.1, key_derivation_rate 0). */
static gboolean
derive(const EVP_CIPHER *prf, const guint8 *master_key, const guint8 salt14[14], guint8 label,
       guint8 *out, int n)
{
  guint8 iv[16] = { 0 };
  memcpy(iv, salt14, 14);
  iv[7] ^= label;
  memset(out, 0, n);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int done = 0;
  gboolean ok = ctx != NULL && EVP_EncryptInit_ex(ctx, prf, NULL, master_key, iv) == 1 &&
                EVP_EncryptUpdate(ctx, out, &done, out, n) == 1 && done == n;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

static gboolean
keys_init(Keys *k, gboolean gcm, gboolean sender, const guint8 *master_key, const guint8 salt14[14],
          guint8 first_label)
{
  const EVP_CIPHER *prf = gcm ? EVP_aes_256_ctr() : EVP_aes_128_ctr();
  int key_length = gcm ? 32 : 16, salt_length = gcm ? 12 : 14;
  guint8 key[32], auth[20];
  gboolean ok = derive(prf, master_key, salt14, first_label, key, key_length) &&
                derive(prf, master_key, salt14, first_label + 2, k->salt, salt_length);
  k->cipher = EVP_CIPHER_CTX_new();
  ok = ok && k->cipher != NULL &&
       EVP_CipherInit_ex(k->cipher, gcm ? EVP_aes_256_gcm() : EVP_aes_128_ctr(), NULL, key, NULL,
                         sender) == 1;
  if (ok && !gcm) {
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    k->mac = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
                            OSSL_PARAM_construct_end() };
    ok = k->mac != NULL && derive(prf, master_key, salt14, first_label + 1, auth, sizeof auth) &&
         EVP_MAC_init(k->mac, auth, sizeof auth, params) == 1;
  }
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(auth, sizeof auth);
  return ok;
}

static void
keys_clear(Keys *k)
{
  EVP_CIPHER_CTX_free(k->cipher);
  EVP_MAC_CTX_free(k->mac);
  OPENSSL_cleanse(k->salt, sizeof k->salt);
}

HarkSrtp *
hark_srtp_new(HarkMediaSrtpSuite suite, GBytes *master, gboolean sender)
{
  gsize length = 0;
  const guint8 *bytes = g_bytes_get_data(master, &length);
  if (length != hark_media_srtp_key_length(suite))
    return NULL;
  HarkSrtp *srtp = g_new0(HarkSrtp, 1);
  g_mutex_init(&srtp->lock);
  srtp->gcm = suite == HARK_MEDIA_SRTP_AEAD_AES_256_GCM;
  srtp->sender = sender;
  gsize key_length = srtp->gcm ? 32 : 16;
  guint8 salt14[14] = { 0 };
  memcpy(salt14, bytes + key_length, length - key_length);
  gboolean ok = keys_init(&srtp->rtp, srtp->gcm, sender, bytes, salt14, 0) &&
                keys_init(&srtp->rtcp, srtp->gcm, sender, bytes, salt14, 3);
  OPENSSL_cleanse(salt14, sizeof salt14);
  if (!ok) {
    hark_srtp_free(srtp);
    return NULL;
  }
  return srtp;
}

void
hark_srtp_free(HarkSrtp *srtp)
{
  if (srtp == NULL)
    return;
  keys_clear(&srtp->rtp);
  keys_clear(&srtp->rtcp);
  g_mutex_clear(&srtp->lock);
  g_free(srtp);
}

/* ---- replay windows ------------------------------------------------------------------ */

static Window *
window_for(Keys *k, guint32 ssrc)
{
  Window *free_slot = NULL;
  for (guint i = 0; i < G_N_ELEMENTS(k->windows); i++) {
    if (k->windows[i].used && k->windows[i].ssrc == ssrc)
      return &k->windows[i];
    if (!k->windows[i].used && free_slot == NULL)
      free_slot = &k->windows[i];
  }
  return free_slot; /* not used yet: the caller marks it once a packet passed */
}

/* The packet's RTP index from its sequence number (RFC 3711 3.3.1 and appendix A): the
 * rollover counter that puts it nearest the highest seen. FALSE: it would be before 0. */
static gboolean
estimate_index(const Window *w, guint16 seq, guint64 *index)
{
  if (!w->used) {
    *index = seq;
    return TRUE;
  }
  gint64 roc = (gint64)(w->highest >> 16), s_l = (gint64)(w->highest & 0xffff), v = roc;
  if (s_l < 32768) {
    if ((gint64)seq - s_l > 32768)
      v = roc - 1;
  } else if (s_l - 32768 > (gint64)seq) {
    v = roc + 1;
  }
  if (v < 0 || v > G_MAXUINT32)
    return FALSE;
  *index = ((guint64)v << 16) | seq;
  return TRUE;
}

static gboolean
window_fresh(const Window *w, guint64 index)
{
  if (!w->used || index > w->highest)
    return TRUE;
  guint64 behind = w->highest - index;
  return behind < WINDOW && (w->seen & (G_GUINT64_CONSTANT(1) << behind)) == 0;
}

static void
window_add(Window *w, guint32 ssrc, guint64 index)
{
  if (!w->used) {
    *w = (Window){ .ssrc = ssrc, .used = TRUE, .highest = index, .seen = 1 };
  } else if (index > w->highest) {
    guint64 ahead = index - w->highest;
    w->seen = ahead >= WINDOW ? 1 : (w->seen << ahead) | 1;
    w->highest = index;
  } else {
    w->seen |= G_GUINT64_CONSTANT(1) << (w->highest - index);
  }
}

struct _HarkSrtpWindows {
  Window rtp[HARK_SRTP_MAX_SSRCS], rtcp[HARK_SRTP_MAX_SSRCS];
};

HarkSrtpWindows *
hark_srtp_save_windows(HarkSrtp *srtp)
{
  HarkSrtpWindows *w = g_new0(HarkSrtpWindows, 1);
  g_mutex_lock(&srtp->lock);
  memcpy(w->rtp, srtp->rtp.windows, sizeof w->rtp);
  memcpy(w->rtcp, srtp->rtcp.windows, sizeof w->rtcp);
  g_mutex_unlock(&srtp->lock);
  return w;
}

void
hark_srtp_restore_windows(HarkSrtp *srtp, const HarkSrtpWindows *windows)
{
  g_mutex_lock(&srtp->lock);
  memcpy(srtp->rtp.windows, windows->rtp, sizeof windows->rtp);
  memcpy(srtp->rtcp.windows, windows->rtcp, sizeof windows->rtcp);
  g_mutex_unlock(&srtp->lock);
}

void
hark_srtp_windows_free(HarkSrtpWindows *windows)
{
  g_free(windows);
}

/* ---- packets ----------------------------------------------------------------------------- */

static guint32
read32(const guint8 *p)
{
  return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

static void
write32(guint8 *p, guint32 v)
{
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

/* The RTP header's length (fixed part, CSRCs, extension), or 0 if it overruns length. */
static gsize
rtp_header_length(const guint8 *p, gsize length)
{
  if (length < 12 || (p[0] >> 6) != 2)
    return 0;
  gsize header = 12 + 4 * (gsize)(p[0] & 0x0f);
  if (p[0] & 0x10) {
    if (header + 4 > length)
      return 0;
    header += 4 + 4 * (gsize)((p[header + 2] << 8) | p[header + 3]);
  }
  return header <= length ? header : 0;
}

/* AES-CM: the counter block for (ssrc, index); index is 48 bits (RTP) or 31 (SRTCP). */
static void
cm_iv(const Keys *k, guint32 ssrc, guint64 index, guint8 iv[16])
{
  memcpy(iv, k->salt, 14);
  iv[14] = iv[15] = 0;
  for (int i = 0; i < 4; i++)
    iv[4 + i] ^= ssrc >> (24 - 8 * i);
  for (int i = 0; i < 6; i++)
    iv[8 + i] ^= index >> (40 - 8 * i);
}

/* AES-GCM: the 12-byte IV (0 0 ‖ SSRC ‖ high ‖ low) XOR salt, where high‖low is ROC‖SEQ
 * (RTP) or 0 0 ‖ index (SRTCP). */
static void
gcm_iv(const Keys *k, guint32 ssrc, guint32 high, guint16 low, guint8 iv[12])
{
  guint8 block[12] = { 0 };
  write32(block + 2, ssrc);
  write32(block + 6, high);
  block[10] = low >> 8, block[11] = low;
  for (int i = 0; i < 12; i++)
    iv[i] = block[i] ^ k->salt[i];
}

static gboolean
ctr(Keys *k, const guint8 iv[16], const guint8 *in, guint8 *out, gsize n)
{
  int done = 0;
  return EVP_CipherInit_ex(k->cipher, NULL, NULL, NULL, iv, -1) == 1 &&
         (n == 0 || (EVP_CipherUpdate(k->cipher, out, &done, in, (int)n) == 1 && done == (int)n));
}

/* The first 10 bytes of HMAC-SHA1 over a then b. */
static gboolean
cm_tag(Keys *k, const guint8 *a, gsize a_length, const guint8 *b, gsize b_length,
       guint8 tag[CM_TAG])
{
  guint8 full[EVP_MAX_MD_SIZE];
  gsize full_length = 0;
  gboolean ok =
    EVP_MAC_init(k->mac, NULL, 0, NULL) == 1 && EVP_MAC_update(k->mac, a, a_length) == 1 &&
    (b_length == 0 || EVP_MAC_update(k->mac, b, b_length) == 1) &&
    EVP_MAC_final(k->mac, full, &full_length, sizeof full) == 1 && full_length >= CM_TAG;
  if (ok)
    memcpy(tag, full, CM_TAG);
  return ok;
}

/* GCM over in (n bytes) with aad; the tag is written (sender) or checked (receiver). */
static gboolean
gcm(Keys *k, gboolean sender, const guint8 iv[12], const guint8 *aad, gsize aad_length,
    const guint8 *aad2, gsize aad2_length, const guint8 *in, guint8 *out, gsize n, guint8 *tag)
{
  int done = 0, last = 0;
  if (EVP_CipherInit_ex(k->cipher, NULL, NULL, NULL, iv, -1) != 1 ||
      EVP_CipherUpdate(k->cipher, NULL, &done, aad, (int)aad_length) != 1 ||
      (aad2_length > 0 && EVP_CipherUpdate(k->cipher, NULL, &done, aad2, (int)aad2_length) != 1) ||
      (n > 0 && EVP_CipherUpdate(k->cipher, out, &done, in, (int)n) != 1))
    return FALSE;
  if (!sender && EVP_CIPHER_CTX_ctrl(k->cipher, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) != 1)
    return FALSE;
  if (EVP_CipherFinal_ex(k->cipher, out + n, &last) != 1)
    return FALSE;
  return !sender || EVP_CIPHER_CTX_ctrl(k->cipher, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag) == 1;
}

/* Where an RTP packet of `length` bytes (its tag left out) stands: its header's length,
 * sequence number, SSRC, the SSRC's window, its index. */
typedef struct {
  gsize header;
  guint16 seq;
  guint32 ssrc;
  Window *w;
  guint64 index;
} RtpAt;

static HarkSrtpResult
rtp_locate(Keys *k, const guint8 *p, gsize length, RtpAt *at)
{
  at->header = rtp_header_length(p, length);
  if (at->header == 0)
    return HARK_SRTP_MALFORMED;
  at->seq = (guint16)(p[2] << 8 | p[3]);
  at->ssrc = read32(p + 8);
  at->w = window_for(k, at->ssrc);
  if (at->w == NULL)
    return HARK_SRTP_TOO_MANY_SSRCS;
  return estimate_index(at->w, at->seq, &at->index) ? HARK_SRTP_OK : HARK_SRTP_REPLAY;
}

static HarkSrtpResult
protect_rtp(HarkSrtp *s, const guint8 *p, gsize length, guint8 *out, gsize *out_length)
{
  RtpAt at;
  HarkSrtpResult found = rtp_locate(&s->rtp, p, length, &at);
  if (found != HARK_SRTP_OK)
    return found;
  gsize header = at.header;
  memcpy(out, p, header);
  gboolean ok;
  if (s->gcm) {
    guint8 iv[12];
    gcm_iv(&s->rtp, at.ssrc, (guint32)(at.index >> 16), at.seq, iv);
    ok = gcm(&s->rtp, TRUE, iv, p, header, NULL, 0, p + header, out + header, length - header,
             out + length);
    *out_length = length + GCM_TAG;
  } else {
    guint8 iv[16], roc[4];
    cm_iv(&s->rtp, at.ssrc, at.index, iv);
    write32(roc, (guint32)(at.index >> 16));
    ok = ctr(&s->rtp, iv, p + header, out + header, length - header) &&
         cm_tag(&s->rtp, out, length, roc, 4, out + length);
    *out_length = length + CM_TAG;
  }
  if (!ok)
    return HARK_SRTP_MALFORMED;
  /* The sender's own window only follows the rollover counter; a packet sent again
   * (the same index) is protected again the same way. */
  if (window_fresh(at.w, at.index))
    window_add(at.w, at.ssrc, at.index);
  return HARK_SRTP_OK;
}

static HarkSrtpResult
unprotect_rtp(HarkSrtp *s, const guint8 *p, gsize length, guint8 *out, gsize *out_length)
{
  gsize tag_length = s->gcm ? GCM_TAG : CM_TAG;
  if (length < 12 + tag_length)
    return HARK_SRTP_MALFORMED;
  gsize plain = length - tag_length;
  RtpAt at;
  HarkSrtpResult found = rtp_locate(&s->rtp, p, plain, &at);
  if (found != HARK_SRTP_OK)
    return found;
  gsize header = at.header;
  if (!window_fresh(at.w, at.index))
    return HARK_SRTP_REPLAY;
  memcpy(out, p, header);
  if (s->gcm) {
    guint8 iv[12], tag[GCM_TAG];
    memcpy(tag, p + plain, GCM_TAG);
    gcm_iv(&s->rtp, at.ssrc, (guint32)(at.index >> 16), at.seq, iv);
    if (!gcm(&s->rtp, FALSE, iv, p, header, NULL, 0, p + header, out + header, plain - header, tag))
      return HARK_SRTP_AUTH;
  } else {
    guint8 iv[16], roc[4], tag[CM_TAG];
    write32(roc, (guint32)(at.index >> 16));
    if (!cm_tag(&s->rtp, p, plain, roc, 4, tag) || CRYPTO_memcmp(tag, p + plain, CM_TAG) != 0)
      return HARK_SRTP_AUTH;
    cm_iv(&s->rtp, at.ssrc, at.index, iv);
    if (!ctr(&s->rtp, iv, p + header, out + header, plain - header))
      return HARK_SRTP_MALFORMED;
  }
  window_add(at.w, at.ssrc, at.index);
  *out_length = plain;
  return HARK_SRTP_OK;
}

static HarkSrtpResult
protect_rtcp(HarkSrtp *s, const guint8 *p, gsize length, guint8 *out, gsize *out_length)
{
  if (length < 8 || (p[0] >> 6) != 2)
    return HARK_SRTP_MALFORMED;
  guint32 ssrc = read32(p + 4);
  guint32 index = s->rtcp_index = (s->rtcp_index + 1) & 0x7fffffff;
  guint8 word[4];
  write32(word, 0x80000000u | index);
  memcpy(out, p, 8);
  gboolean ok;
  if (s->gcm) {
    guint8 iv[12];
    gcm_iv(&s->rtcp, ssrc, index >> 16, index & 0xffff, iv);
    ok = gcm(&s->rtcp, TRUE, iv, p, 8, word, 4, p + 8, out + 8, length - 8, out + length);
    memcpy(out + length + GCM_TAG, word, 4);
    *out_length = length + GCM_TAG + 4;
  } else {
    guint8 iv[16];
    cm_iv(&s->rtcp, ssrc, index, iv);
    ok = ctr(&s->rtcp, iv, p + 8, out + 8, length - 8);
    memcpy(out + length, word, 4);
    ok = ok && cm_tag(&s->rtcp, out, length + 4, NULL, 0, out + length + 4);
    *out_length = length + 4 + CM_TAG;
  }
  return ok ? HARK_SRTP_OK : HARK_SRTP_MALFORMED;
}

static HarkSrtpResult
unprotect_rtcp(HarkSrtp *s, const guint8 *p, gsize length, guint8 *out, gsize *out_length)
{
  gsize tag_length = s->gcm ? GCM_TAG : CM_TAG;
  if (length < 8 + 4 + tag_length || (p[0] >> 6) != 2)
    return HARK_SRTP_MALFORMED;
  gsize plain = length - 4 - tag_length;
  const guint8 *word = s->gcm ? p + length - 4 : p + plain;
  guint32 trailer = read32(word), index = trailer & 0x7fffffff;
  if (!(trailer & 0x80000000u))
    return HARK_SRTP_MALFORMED;
  guint32 ssrc = read32(p + 4);
  Window *w = window_for(&s->rtcp, ssrc);
  if (w == NULL)
    return HARK_SRTP_TOO_MANY_SSRCS;
  if (!window_fresh(w, index))
    return HARK_SRTP_REPLAY;
  memcpy(out, p, 8);
  if (s->gcm) {
    guint8 iv[12], tag[GCM_TAG];
    memcpy(tag, p + plain, GCM_TAG);
    gcm_iv(&s->rtcp, ssrc, index >> 16, index & 0xffff, iv);
    if (!gcm(&s->rtcp, FALSE, iv, p, 8, word, 4, p + 8, out + 8, plain - 8, tag))
      return HARK_SRTP_AUTH;
  } else {
    guint8 iv[16], tag[CM_TAG];
    if (!cm_tag(&s->rtcp, p, plain + 4, NULL, 0, tag) ||
        CRYPTO_memcmp(tag, p + plain + 4, CM_TAG) != 0)
      return HARK_SRTP_AUTH;
    cm_iv(&s->rtcp, ssrc, index, iv);
    if (!ctr(&s->rtcp, iv, p + 8, out + 8, plain - 8))
      return HARK_SRTP_MALFORMED;
  }
  window_add(w, ssrc, index);
  *out_length = plain;
  return HARK_SRTP_OK;
}

typedef HarkSrtpResult (*Step)(HarkSrtp *s, const guint8 *p, gsize length, guint8 *out,
                               gsize *out_length);

static HarkSrtpResult
locked(HarkSrtp *srtp, Step step, const guint8 *packet, gsize length, guint8 *out,
       gsize *out_length)
{
  if (length > G_MAXINT / 2) /* OpenSSL counts in int */
    return HARK_SRTP_MALFORMED;
  g_mutex_lock(&srtp->lock);
  HarkSrtpResult r = step(srtp, packet, length, out, out_length);
  g_mutex_unlock(&srtp->lock);
  return r;
}

HarkSrtpResult
hark_srtp_protect(HarkSrtp *srtp, gboolean rtcp, const guint8 *packet, gsize length, guint8 *out,
                  gsize *out_length)
{
  g_return_val_if_fail(srtp->sender, HARK_SRTP_MALFORMED);
  return locked(srtp, rtcp ? protect_rtcp : protect_rtp, packet, length, out, out_length);
}

HarkSrtpResult
hark_srtp_unprotect(HarkSrtp *srtp, gboolean rtcp, const guint8 *packet, gsize length, guint8 *out,
                    gsize *out_length)
{
  g_return_val_if_fail(!srtp->sender, HARK_SRTP_MALFORMED);
  return locked(srtp, rtcp ? unprotect_rtcp : unprotect_rtp, packet, length, out, out_length);
}
