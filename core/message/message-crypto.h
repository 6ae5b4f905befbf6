/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-crypto.h: the primitives of the envelope (OpenSSL 3 only): X25519 agreement,
 * HKDF-SHA256, ChaCha20-Poly1305, and the Ed25519 -> X25519 key map. Private to the
 * message layer; errors are HARK_MESSAGE_ERROR_CRYPTO unless said otherwise. */
#pragma once

#include "message-envelope.h"

#include <openssl/evp.h>

/* A fresh X25519 key pair; its public key in public_key. */
EVP_PKEY *hark_message_x25519_generate(guint8 public_key[32], GError **error);
/* The X25519 private key of an Ed25519 device key (the seed's SHA-512, clamped). */
EVP_PKEY *hark_message_x25519_from_ed25519(EVP_PKEY *ed25519, GError **error);
/* shared = X25519(private_key, peer_public). UNDECRYPTABLE when the peer's key is one
 * of the few whose result is all zero (a low-order point). */
gboolean hark_message_x25519_agree(EVP_PKEY *private_key, const guint8 peer_public[32],
                                   guint8 shared[32], GError **error);
/* out (32 bytes) = HKDF-SHA256(ikm, salt, info). */
gboolean hark_message_hkdf(const guint8 *ikm, gsize ikm_size, const guint8 *salt, gsize salt_size,
                           const guint8 *info, gsize info_size, guint8 out[32], GError **error);
/* The same with out_size bytes of output (at most 255 * 32). */
gboolean hark_message_hkdf_sized(const guint8 *ikm, gsize ikm_size, const guint8 *salt,
                                 gsize salt_size, const guint8 *info, gsize info_size, guint8 *out,
                                 gsize out_size, GError **error);
/* out = ciphertext (in_size bytes) then the 16-byte tag. */
gboolean hark_message_aead_seal(const guint8 key[32], const guint8 nonce[12], const guint8 *aad,
                                gsize aad_size, const guint8 *in, gsize in_size, guint8 *out,
                                GError **error);
/* in = ciphertext then tag (in_size >= 16); out gets in_size - 16 bytes. FALSE without an
 * error when the tag does not match (the caller says what did not decrypt). */
gboolean hark_message_aead_open(const guint8 key[32], const guint8 nonce[12], const guint8 *aad,
                                gsize aad_size, const guint8 *in, gsize in_size, guint8 *out,
                                GError **error);
