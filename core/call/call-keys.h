/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-keys.h: a call's end-to-end keys (private to the call layer). Each side makes a
 * fresh X25519 key share per call (and per re-key); the shares travel in the signed
 * INVITE and ANSWER; both sides derive the two SRTP keys (AEAD_AES_256_GCM, one per
 * direction) with HKDF-SHA256 over the shared secret and the call's transcript (call id,
 * both nonces, both shares, both device ids), so super nodes and relays, which see only
 * signed ciphertext and SRTP, learn nothing of them. docs/protocol.md, "Calls: keys". */
#pragma once

#include "call-signal.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HarkCallKeyShare HarkCallKeyShare;

/* A fresh X25519 key pair. */
HarkCallKeyShare *hark_call_key_share_new(GError **error);
const guint8 *hark_call_key_share_public(const HarkCallKeyShare *share); /* 32 bytes */
void hark_call_key_share_free(HarkCallKeyShare *share);
/* The key pair of a given X25519 private key (32 bytes): for known-answer tests. */
HarkCallKeyShare *hark_call_key_share_new_from_private(const guint8 private_key[32],
                                                       GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkCallKeyShare, hark_call_key_share_free)

typedef struct {
  const guint8 *call_id; /* HARK_CALL_ID_SIZE */
  const guint8 *caller_nonce, *callee_nonce; /* HARK_CALL_NONCE_SIZE each */
  const guint8 *caller_share, *callee_share; /* HARK_CALL_SHARE_SIZE each: the public keys */
  const char *caller_device, *callee_device; /* device ids (64 hex) */
} HarkCallTranscript;

/* The SRTP keys of this side (44 bytes each, for HARK_MEDIA_SRTP_AEAD_AES_256_GCM):
 * send_key protects what we send, receive_key what the peer sends. caller: whether this
 * side is the caller (the caller's send key is the callee's receive key). Fails with
 * HARK_CALL_ERROR_KEYS on a peer share that gives an all-zero secret (a low-order
 * point) or when OpenSSL fails. */
gboolean hark_call_keys_derive(const HarkCallKeyShare *ours, const guint8 *peer_share,
                               gboolean caller, const HarkCallTranscript *transcript,
                               GBytes **send_key, GBytes **receive_key, GError **error);

G_END_DECLS
