/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-keys.c: a call's SRTP keys from an X25519 agreement (call-keys.h; docs/protocol.md,
 * "Calls: keys"). The primitives are the message layer's (message-crypto.h, OpenSSL 3):
 *   okm = HKDF-SHA256(ikm = X25519 secret, salt = call id,
 *                     info = "hark-call-srtp-1" || each transcript field length-prefixed)
 * and okm's 88 bytes are the caller -> callee key (44) then the callee -> caller key (44).
 * The transcript binds the keys to this call, both fresh nonces, both shares and both
 * devices, so a share replayed from another call or device gives other keys. */
#include "call-keys.h"

#include "message-crypto.h"

#include <string.h>

#include <openssl/crypto.h>

#define KEY_SIZE 44 /* HARK_MEDIA_SRTP_AEAD_AES_256_GCM: 32-byte key, 12-byte salt */
#define LABEL "hark-call-srtp-1"

struct _HarkCallKeyShare {
  EVP_PKEY *key;
  guint8 public_key[HARK_CALL_SHARE_SIZE];
};

static void
keys_error(GError **error, const GError *cause, const char *what)
{
  g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_KEYS, "%s: %s", what,
              cause != NULL ? cause->message : "OpenSSL failed");
}

HarkCallKeyShare *
hark_call_key_share_new(GError **error)
{
  g_autoptr(GError) local = NULL;
  HarkCallKeyShare *share = g_new0(HarkCallKeyShare, 1);
  share->key = hark_message_x25519_generate(share->public_key, &local);
  if (share->key == NULL) {
    keys_error(error, local, "no key share for the call");
    g_free(share);
    return NULL;
  }
  return share;
}

HarkCallKeyShare *
hark_call_key_share_new_from_private(const guint8 private_key[32], GError **error)
{
  HarkCallKeyShare *share = g_new0(HarkCallKeyShare, 1);
  size_t length = sizeof share->public_key;
  share->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, private_key, 32);
  if (share->key == NULL ||
      EVP_PKEY_get_raw_public_key(share->key, share->public_key, &length) != 1 ||
      length != sizeof share->public_key) {
    keys_error(error, NULL, "no key share from that private key");
    hark_call_key_share_free(share);
    return NULL;
  }
  return share;
}

const guint8 *
hark_call_key_share_public(const HarkCallKeyShare *share)
{
  return share->public_key;
}

void
hark_call_key_share_free(HarkCallKeyShare *share)
{
  if (share == NULL)
    return;
  EVP_PKEY_free(share->key); /* OpenSSL wipes the private key */
  g_free(share);
}

/* A 4-byte big-endian length, then the bytes. */
static void
append_field(GByteArray *info, const void *data, gsize size)
{
  guint32 length = GUINT32_TO_BE((guint32)size);
  g_byte_array_append(info, (const guint8 *)&length, sizeof length);
  g_byte_array_append(info, data, (guint)size);
}

static GByteArray *
transcript_info(const HarkCallTranscript *t)
{
  GByteArray *info = g_byte_array_new();
  g_byte_array_append(info, (const guint8 *)LABEL, strlen(LABEL));
  append_field(info, t->caller_nonce, HARK_CALL_NONCE_SIZE);
  append_field(info, t->callee_nonce, HARK_CALL_NONCE_SIZE);
  append_field(info, t->caller_share, HARK_CALL_SHARE_SIZE);
  append_field(info, t->callee_share, HARK_CALL_SHARE_SIZE);
  append_field(info, t->caller_device, strlen(t->caller_device));
  append_field(info, t->callee_device, strlen(t->callee_device));
  return info;
}

static void
wipe_free(gpointer key)
{
  OPENSSL_cleanse(key, KEY_SIZE);
  g_free(key);
}

/* A GBytes holding a copy of the key that wipes it when the last reference goes. */
static GBytes *
key_bytes(const guint8 *key)
{
  guint8 *copy = g_memdup2(key, KEY_SIZE);
  return g_bytes_new_with_free_func(copy, KEY_SIZE, wipe_free, copy);
}

static gboolean
is_all_zero(const guint8 *data, gsize size)
{
  guint8 zero[32] = { 0 };
  g_assert(size <= sizeof zero);
  return CRYPTO_memcmp(data, zero, size) == 0;
}

gboolean
hark_call_keys_derive(const HarkCallKeyShare *ours, const guint8 *peer_share, gboolean caller,
                      const HarkCallTranscript *t, GBytes **send_key, GBytes **receive_key,
                      GError **error)
{
  g_return_val_if_fail(ours != NULL && peer_share != NULL && t != NULL, FALSE);
  g_return_val_if_fail(t->call_id != NULL && t->caller_nonce != NULL && t->callee_nonce != NULL &&
                         t->caller_share != NULL && t->callee_share != NULL &&
                         t->caller_device != NULL && t->callee_device != NULL,
                       FALSE);
  g_return_val_if_fail(send_key != NULL && receive_key != NULL, FALSE);
  /* The keys are bound to the shares the transcript names: they must be the ones used. */
  g_return_val_if_fail(memcmp(caller ? t->caller_share : t->callee_share, ours->public_key,
                              HARK_CALL_SHARE_SIZE) == 0 &&
                         memcmp(caller ? t->callee_share : t->caller_share, peer_share,
                                HARK_CALL_SHARE_SIZE) == 0,
                       FALSE);
  g_autoptr(GError) local = NULL;
  guint8 shared[32], okm[2 * KEY_SIZE];
  /* OpenSSL refuses an all-zero secret already; checked again, as the keys hang on it. */
  if (!hark_message_x25519_agree(ours->key, peer_share, shared, &local) ||
      is_all_zero(shared, sizeof shared)) {
    OPENSSL_cleanse(shared, sizeof shared);
    keys_error(error, local, "the peer's key share gives no secret (a low-order point?)");
    return FALSE;
  }
  g_autoptr(GByteArray) info = transcript_info(t);
  gboolean ok = hark_message_hkdf_sized(shared, sizeof shared, t->call_id, HARK_CALL_ID_SIZE,
                                        info->data, info->len, okm, sizeof okm, &local);
  OPENSSL_cleanse(shared, sizeof shared);
  if (!ok) {
    keys_error(error, local, "no call keys");
    return FALSE;
  }
  const guint8 *caller_to_callee = okm, *callee_to_caller = okm + KEY_SIZE;
  *send_key = key_bytes(caller ? caller_to_callee : callee_to_caller);
  *receive_key = key_bytes(caller ? callee_to_caller : caller_to_callee);
  OPENSSL_cleanse(okm, sizeof okm);
  return TRUE;
}
