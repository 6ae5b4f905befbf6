/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-crypto.c: the envelope's primitives with OpenSSL 3 alone (message-crypto.h).
 *
 * A device has one key, Ed25519, certified by the CA; to seal for it we use the same key as
 * X25519, by the birational map between the two curves, exactly as libsodium's
 * crypto_sign_ed25519_pk_to_curve25519 and _sk_to_curve25519 do (so a device's X25519 key
 * is the one any libsodium implementation would compute). OpenSSL has no such call, so the
 * public map is written with BIGNUM; the private one is SHA-512 of the seed, clamped. */
#include "message-crypto.h"
#include "openssl-errors.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>

#define crypto_error(error, ...) \
  hark_set_openssl_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_CRYPTO, __VA_ARGS__)

/* ---- Ed25519 -> X25519 ----------------------------------------------------------------- */

gboolean
hark_message_ed25519_pk_to_x25519(const guint8 ed[32], guint8 x[32])
{
  guint8 y_bytes[32];
  memcpy(y_bytes, ed, 32);
  y_bytes[31] &= 0x7f; /* the top bit is x's sign, not part of y */
  BN_CTX *ctx = BN_CTX_new();
  BIGNUM *p = BN_new(), *y = BN_lebin2bn(y_bytes, 32, NULL), *one = BN_new();
  BIGNUM *num = BN_new(), *den = BN_new(), *u = BN_new();
  gboolean ok = FALSE;
  if (ctx == NULL || p == NULL || y == NULL || one == NULL || num == NULL || den == NULL ||
      u == NULL)
    goto out;
  /* p = 2^255 - 19 */
  if (!BN_set_bit(p, 255) || !BN_sub_word(p, 19) || !BN_one(one))
    goto out;
  if (BN_cmp(y, p) >= 0) /* not canonical: libsodium refuses it too */
    goto out;
  if (!BN_mod_add(num, one, y, p, ctx) || !BN_mod_sub(den, one, y, p, ctx))
    goto out;
  if (BN_is_zero(den)) /* y = 1: the neutral point, no u */
    goto out;
  if (BN_mod_inverse(den, den, p, ctx) == NULL || !BN_mod_mul(u, num, den, p, ctx))
    goto out;
  ok = BN_bn2lebinpad(u, x, 32) == 32;
out:
  BN_free(p);
  BN_free(y);
  BN_free(one);
  BN_free(num);
  BN_free(den);
  BN_free(u);
  BN_CTX_free(ctx);
  return ok;
}

gboolean
hark_message_ed25519_seed_to_x25519(const guint8 seed[32], guint8 x[32])
{
  guint8 hash[SHA512_DIGEST_LENGTH];
  if (SHA512(seed, 32, hash) == NULL)
    return FALSE;
  memcpy(x, hash, 32);
  OPENSSL_cleanse(hash, sizeof hash);
  x[0] &= 248;
  x[31] &= 127;
  x[31] |= 64;
  return TRUE;
}

EVP_PKEY *
hark_message_x25519_from_ed25519(EVP_PKEY *ed25519, GError **error)
{
  guint8 seed[32], x[32];
  size_t length = sizeof seed;
  EVP_PKEY *key = NULL;
  if (EVP_PKEY_get_raw_private_key(ed25519, seed, &length) == 1 && length == sizeof seed &&
      hark_message_ed25519_seed_to_x25519(seed, x))
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, x, sizeof x);
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(x, sizeof x);
  if (key == NULL)
    crypto_error(error, "cannot derive the device's X25519 key");
  return key;
}

/* ---- X25519 ---------------------------------------------------------------------------- */

EVP_PKEY *
hark_message_x25519_generate(guint8 public_key[32], GError **error)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
  size_t length = 32;
  if (key == NULL || EVP_PKEY_get_raw_public_key(key, public_key, &length) != 1 || length != 32) {
    EVP_PKEY_free(key);
    crypto_error(error, "cannot make a one-time X25519 key");
    return NULL;
  }
  return key;
}

gboolean
hark_message_x25519_agree(EVP_PKEY *private_key, const guint8 peer_public[32], guint8 shared[32],
                          GError **error)
{
  EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_public, 32);
  EVP_PKEY_CTX *ctx = peer != NULL ? EVP_PKEY_CTX_new(private_key, NULL) : NULL;
  size_t length = 32;
  gboolean ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
                EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
                EVP_PKEY_derive(ctx, shared, &length) == 1 && length == 32;
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer);
  if (!ok) {
    /* OpenSSL refuses an all-zero result: the peer key is a low-order point. */
    g_autofree char *why = hark_openssl_take_errors();
    g_set_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_UNDECRYPTABLE,
                "no X25519 agreement with that key (a low-order point?): %s", why);
  }
  return ok;
}

/* ---- HKDF ------------------------------------------------------------------------------ */

gboolean
hark_message_hkdf(const guint8 *ikm, gsize ikm_size, const guint8 *salt, gsize salt_size,
                  const guint8 *info, gsize info_size, guint8 out[32], GError **error)
{
  return hark_message_hkdf_sized(ikm, ikm_size, salt, salt_size, info, info_size, out, 32, error);
}

gboolean
hark_message_hkdf_sized(const guint8 *ikm, gsize ikm_size, const guint8 *salt, gsize salt_size,
                        const guint8 *info, gsize info_size, guint8 *out, gsize out_size,
                        GError **error)
{
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_size),
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_size),
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_size),
    OSSL_PARAM_construct_end(),
  };
  gboolean ok = ctx != NULL && EVP_KDF_derive(ctx, out, out_size, params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok)
    crypto_error(error, "HKDF-SHA256 failed");
  return ok;
}

/* ---- ChaCha20-Poly1305 ----------------------------------------------------------------- */

static EVP_CIPHER_CTX *
aead_init(const guint8 key[32], const guint8 nonce[12], gboolean encrypt)
{
  EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
  EVP_CIPHER_CTX *ctx = cipher != NULL ? EVP_CIPHER_CTX_new() : NULL;
  if (ctx == NULL || EVP_CipherInit_ex2(ctx, cipher, key, nonce, encrypt ? 1 : 0, NULL) != 1)
    g_clear_pointer(&ctx, EVP_CIPHER_CTX_free);
  EVP_CIPHER_free(cipher);
  return ctx;
}

/* The AAD, then size bytes of in to out. */
static gboolean
aead_update(EVP_CIPHER_CTX *ctx, const guint8 *aad, gsize aad_size, const guint8 *in, gsize size,
            guint8 *out)
{
  int length = 0;
  if (aad_size > G_MAXINT || size > G_MAXINT)
    return FALSE;
  if (aad_size > 0 && EVP_CipherUpdate(ctx, NULL, &length, aad, (int)aad_size) != 1)
    return FALSE;
  return size == 0 ||
         (EVP_CipherUpdate(ctx, out, &length, in, (int)size) == 1 && (gsize)length == size);
}

gboolean
hark_message_aead_seal(const guint8 key[32], const guint8 nonce[12], const guint8 *aad,
                       gsize aad_size, const guint8 *in, gsize in_size, guint8 *out, GError **error)
{
  EVP_CIPHER_CTX *ctx = aead_init(key, nonce, TRUE);
  int length = 0;
  gboolean ok =
    ctx != NULL && aead_update(ctx, aad, aad_size, in, in_size, out) &&
    EVP_CipherFinal_ex(ctx, out + in_size, &length) == 1 &&
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, HARK_MESSAGE_TAG_SIZE, out + in_size) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok)
    crypto_error(error, "ChaCha20-Poly1305 encryption failed");
  return ok;
}

gboolean
hark_message_aead_open(const guint8 key[32], const guint8 nonce[12], const guint8 *aad,
                       gsize aad_size, const guint8 *in, gsize in_size, guint8 *out, GError **error)
{
  if (in_size < HARK_MESSAGE_TAG_SIZE)
    return FALSE;
  gsize size = in_size - HARK_MESSAGE_TAG_SIZE;
  EVP_CIPHER_CTX *ctx = aead_init(key, nonce, FALSE);
  if (ctx == NULL) {
    crypto_error(error, "ChaCha20-Poly1305 is not available");
    return FALSE;
  }
  int length = 0;
  gboolean ok = aead_update(ctx, aad, aad_size, in, size, out) &&
                EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, HARK_MESSAGE_TAG_SIZE,
                                    (void *)(in + size)) == 1 &&
                EVP_CipherFinal_ex(ctx, out + size, &length) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    OPENSSL_cleanse(out, size);
    ERR_clear_error();
  }
  return ok;
}
