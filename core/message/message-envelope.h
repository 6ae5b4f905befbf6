/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-envelope.h: end-to-end message envelopes (docs/protocol.md, "Messages: the
 * envelope"): sealed by the sender's device for each recipient device, signed with the
 * sender's device key; read by super nodes and the login server only as far as their shape
 * and signature (hark_envelope_parse, hark_envelope_verify), opened by a recipient device
 * (hark_envelope_open). Also the inner plaintext kinds (text, receipt, typing,
 * history-request, history, group, signal) and the
 * replay guard a recipient keeps per sender device. Private to libhark's message layer. */
#pragma once

#include "hark/certificate.h"
#include "hark/identity.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_MESSAGE_ERROR (hark_message_error_quark())
GQuark hark_message_error_quark(void);

typedef enum {
  HARK_MESSAGE_ERROR_MALFORMED, /* not the envelope's (or a kind's) form, or a field out of limits */
  HARK_MESSAGE_ERROR_TOO_LARGE, /* over HARK_MESSAGE_MAX_ENVELOPE or a content limit */
  HARK_MESSAGE_ERROR_FORGED, /* the signature is not the certified device key's */
  HARK_MESSAGE_ERROR_FOREIGN, /* the certificate is not the CA's, or not sender's/sender_device's */
  HARK_MESSAGE_ERROR_EXPIRED, /* the certificate was not valid at the envelope's time, or
                               * that time is too old or too far ahead */
  HARK_MESSAGE_ERROR_NOT_FOR_US, /* this device is not among the recipients */
  HARK_MESSAGE_ERROR_UNDECRYPTABLE, /* the wrapped key or the body does not decrypt */
  HARK_MESSAGE_ERROR_REPLAYED, /* the replay guard has seen the counter, or it is too old */
  HARK_MESSAGE_ERROR_CRYPTO, /* OpenSSL failed (not the input's fault) */
  HARK_MESSAGE_ERROR_NOT_ALLOWED, /* a group's rules: not a member, or not the admin */
} HarkMessageError;

/* error = "<what> refused: <format...>"; returns FALSE. */
gboolean hark_message_refuse(GError **error, HarkMessageError code, const char *what,
                             const char *format, ...) G_GNUC_PRINTF(4, 5);

#define HARK_MESSAGE_SIGNED_TYPE "(ayay)"
#define HARK_MESSAGE_PAYLOAD_TYPE "(ayssaysttxaya(sayay))"
#define HARK_MESSAGE_INNER_TYPE "(sa{sv})"

#define HARK_MESSAGE_ID_SIZE 16
#define HARK_MESSAGE_KEY_SIZE 32 /* X25519 public keys, the content key */
#define HARK_MESSAGE_TAG_SIZE 16
#define HARK_MESSAGE_NONCE_SIZE 12
#define HARK_MESSAGE_WRAPPED_SIZE (HARK_MESSAGE_KEY_SIZE + HARK_MESSAGE_TAG_SIZE)
#define HARK_MESSAGE_MAX_CERTIFICATE 4096
#define HARK_MESSAGE_MAX_RECIPIENTS 1024
#define HARK_MESSAGE_MAX_PLAINTEXT (64 * 1024) /* the inner plaintext, serialised */
#define HARK_MESSAGE_MAX_BODY \
  (HARK_MESSAGE_NONCE_SIZE + HARK_MESSAGE_MAX_PLAINTEXT + HARK_MESSAGE_TAG_SIZE)
#define HARK_MESSAGE_MAX_ENVELOPE (256 * 1024) /* the signed envelope, every byte */
#define HARK_MESSAGE_MAX_TEXT 8192 /* bytes of UTF-8 in a text message */
#define HARK_MESSAGE_MAX_RECEIPT_IDS 256
#define HARK_MESSAGE_MAX_SIGNAL_BODY (16 * 1024) /* a signal's a{sv}, serialised */
#define HARK_MESSAGE_MAX_SIGNAL_AGE_S 60 /* a signal sealed longer ago is worth nothing */
#define HARK_MESSAGE_MAX_SKEW_S 300 /* how far ahead an envelope may be dated */
/* How old an envelope may be: the login server holds one for 30 days, plus a day. */
#define HARK_MESSAGE_MAX_AGE_S (31 * 24 * 3600)
/* A recipient's certificate may have expired this long ago (the login server's hold). */
#define HARK_MESSAGE_RECIPIENT_GRACE_S (30 * 24 * 3600)
#define HARK_MESSAGE_GROUP_ID_LENGTH 32 /* hex digits after the '#' */
#define HARK_MESSAGE_MAX_PAST 256 /* past messages in one `history` envelope */
/* What a `history` batch's serialised messages may take: under the 64 KiB plaintext with
 * room for one more message of the largest text and its fields (a batch is closed before
 * it passes this, so it never reaches HARK_MESSAGE_MAX_PLAINTEXT). */
#define HARK_MESSAGE_PAST_BATCH_BYTES (48 * 1024)

/* One recipient device of an envelope. */
typedef struct {
  char *device; /* the device id: its key's fingerprint, 64 lower-case hex */
  guint8 ephemeral[HARK_MESSAGE_KEY_SIZE]; /* the sender's one-time X25519 public key */
  guint8 wrapped[HARK_MESSAGE_WRAPPED_SIZE]; /* the content key, sealed for this device */
} HarkEnvelopeRecipient;

/* A parsed envelope: every field within its limits; verified (the certificate, the
 * signature) only once hark_envelope_verify said so. */
typedef struct {
  guint8 id[HARK_MESSAGE_ID_SIZE];
  char *sender; /* the user name, as in the certificate (case may differ) */
  char *sender_device;
  GBytes *certificate; /* DER */
  char *to; /* a user name, or '#' and a group id */
  guint64 sequence;
  guint64 counter;
  gint64 time;
  GBytes *body; /* nonce, ciphertext, tag */
  GPtrArray *recipients; /* of HarkEnvelopeRecipient */
  GBytes *bytes; /* the signed envelope as received: what an SN forwards */
  GBytes *payload; /* the signed bytes (without the domain) */
  GBytes *signature;
  gboolean verified;
} HarkEnvelope;

/* Who seals, and for whom. */
typedef struct {
  const char *recipient_device; /* 64 hex: must be the certificate's key */
  GBytes *certificate; /* the recipient device's certificate, PEM or DER */
} HarkMessageRecipient;

typedef struct {
  HarkIdentity *identity; /* the sender's device key */
  GBytes *certificate; /* its certificate, DER (the envelope carries it) */
  const char *sender; /* the certified user name */
  const char *ca_pem; /* every certificate is checked against it at time */
  const char *to;
  guint64 sequence;
  guint64 counter;
  gint64 time;
  GVariant *inner; /* HARK_MESSAGE_INNER_TYPE, one of the kinds below */
  const HarkMessageRecipient *recipients;
  guint n_recipients;
} HarkMessageSealParams;

/* The signed envelope's bytes. Each recipient's certificate must chain to ca_pem at
 * time and certify recipient_device; for a message to a user, every recipient must be a
 * device of that user or of the sender. The content key and the one-time keys are
 * wiped before it returns: the sender cannot open what it sealed. */
GBytes *hark_message_seal(const HarkMessageSealParams *params, GError **error);

/* Shape and limits only, no key needed: what a super node or the login server may check.
 * MALFORMED or TOO_LARGE otherwise. */
HarkEnvelope *hark_envelope_parse(GBytes *bytes, GError **error);
/* The certificate chains to ca_pem at the envelope's time and certifies sender and
 * sender_device; the time is within HARK_MESSAGE_MAX_AGE_S before now and
 * HARK_MESSAGE_MAX_SKEW_S after; the signature is the certified key's over the exact
 * payload bytes. FOREIGN, EXPIRED or FORGED otherwise. Sets envelope->verified. */
gboolean hark_envelope_verify(HarkEnvelope *envelope, const char *ca_pem, gint64 now,
                              GError **error);
/* The inner plaintext (HARK_MESSAGE_INNER_TYPE, normal form, its kind's limits checked)
 * for identity's device of a verified envelope. NOT_FOR_US when the device is not a
 * recipient, UNDECRYPTABLE when its wrapped key or the body does not decrypt, MALFORMED
 * when the plaintext is not a valid kind. */
GVariant *hark_envelope_open(HarkEnvelope *envelope, HarkIdentity *identity, GError **error);
const HarkEnvelopeRecipient *hark_envelope_find_recipient(HarkEnvelope *envelope,
                                                          const char *device);
void hark_envelope_free(HarkEnvelope *envelope);

/* ---- the inner plaintext ------------------------------------------------------------- */

typedef enum {
  HARK_MESSAGE_KIND_TEXT,
  HARK_MESSAGE_KIND_RECEIPT,
  HARK_MESSAGE_KIND_TYPING,
  HARK_MESSAGE_KIND_HISTORY_REQUEST, /* a new device of the user asks for past conversations */
  HARK_MESSAGE_KIND_HISTORY, /* a batch of them, from another device of the user */
  HARK_MESSAGE_KIND_GROUP, /* a membership change (message-group.h) */
  HARK_MESSAGE_KIND_SIGNAL, /* a note for a layer above (calls): never stored or held */
  HARK_MESSAGE_KIND_OTHER, /* a kind this version does not know (a newer sender's): ignore */
} HarkMessageKind;

/* One past message of a `history` batch, as the answering device stored it. */
typedef struct {
  guint8 id[HARK_MESSAGE_ID_SIZE];
  char *conversation; /* "u:" + canonical user name, or "g:" + 32 lower-case hex */
  char *sender; /* a user name */
  char *sender_device; /* 64 lower-case hex */
  guint64 sequence; /* 1 to 2^63 - 1 */
  gint64 time; /* the sender's unix seconds, after 1970 */
  char *text; /* as a text message's */
} HarkMessagePast;

void hark_message_past_free(HarkMessagePast *past);

typedef struct {
  HarkMessageKind kind;
  char *kind_name;
  char *text; /* text */
  GPtrArray *ids; /* receipt: of GBytes, HARK_MESSAGE_ID_SIZE each */
  char *state; /* receipt: "delivered" or "read" */
  gboolean on; /* typing */
  GPtrArray *past; /* history: of HarkMessagePast, 1-HARK_MESSAGE_MAX_PAST */
  struct _HarkMessageGroupChange *group; /* group */
  struct _HarkMessageGroup *group_state; /* text to a group, history of a group's
                                          * conversation: its state (NULL when absent) */
  char *signal_kind; /* signal: whose it is, [a-z-]{1,32} */
  GVariant *signal_body; /* signal: a{sv}, at most HARK_MESSAGE_MAX_SIGNAL_BODY (untrusted) */
} HarkMessageInner;

/* Floating references, NULL (and MALFORMED / TOO_LARGE) when out of limits. */
GVariant *hark_message_text_new(const char *text, GError **error);
/* A text with one more field (name: value, floating) beside `text`. */
GVariant *hark_message_text_new_with(const char *text, const char *name, GVariant *value,
                                     GError **error);
GVariant *hark_message_receipt_new(const guint8 (*ids)[HARK_MESSAGE_ID_SIZE], guint n_ids,
                                   const char *state, GError **error);
GVariant *hark_message_typing_new(gboolean on);
GVariant *hark_message_past_request_new(void);
/* A signal of kind ([a-z-]{1,32}) with body (a{sv}, floating or not; at most
 * HARK_MESSAGE_MAX_SIGNAL_BODY serialised). */
GVariant *hark_message_signal_new(const char *kind, GVariant *body, GError **error);
/* The serialised size one past message adds to a batch (to close it in time). */
gsize hark_message_past_size(const HarkMessagePast *past);
/* 1-HARK_MESSAGE_MAX_PAST messages, each within the limits above. */
GVariant *hark_message_past_new(HarkMessagePast *const *past, guint n_past, GError **error);
/* The same for a group's conversation: every message is of group's ("g:" + its id), and
 * the batch carries group's state (the `group` field, as a text to a group does). A
 * state adds at most about 4 KiB, so a batch closed at HARK_MESSAGE_PAST_BATCH_BYTES
 * stays under HARK_MESSAGE_MAX_PLAINTEXT. */
GVariant *hark_message_past_group_new(HarkMessagePast *const *past, guint n_past,
                                      const struct _HarkMessageGroup *group, GError **error);
HarkMessageInner *hark_message_inner_parse(GVariant *inner, GError **error);
void hark_message_inner_free(HarkMessageInner *inner);

/* ---- the replay guard ---------------------------------------------------------------- */

#define HARK_MESSAGE_REPLAY_WINDOW 1024
#define HARK_MESSAGE_REPLAY_BYTES (1 + 8 + HARK_MESSAGE_REPLAY_WINDOW / 8)

/* Per sender device: the highest counter taken and which of the WINDOW counters up to it
 * were (bit i: highest - i), as SRTP and IPsec keep them. Zeroed: nothing seen. */
typedef struct {
  guint64 highest;
  guint64 bitmap[HARK_MESSAGE_REPLAY_WINDOW / 64];
} HarkMessageReplay;

/* REPLAYED when counter was taken already or is older than the window; FALSE leaves the
 * guard as it was. _check_and_mark takes it. */
gboolean hark_message_replay_check(const HarkMessageReplay *guard, guint64 counter, GError **error);
gboolean hark_message_replay_check_and_mark(HarkMessageReplay *guard, guint64 counter,
                                            GError **error);
/* HARK_MESSAGE_REPLAY_BYTES: a version byte (1), highest (little-endian), the bitmap. */
GBytes *hark_message_replay_to_bytes(const HarkMessageReplay *guard);
gboolean hark_message_replay_from_bytes(HarkMessageReplay *guard, GBytes *bytes, GError **error);

/* ---- the key conversion (exposed for its tests) -------------------------------------- */

/* libsodium's crypto_sign_ed25519_pk_to_curve25519: u = (1 + y) / (1 - y) mod 2^255 - 19.
 * FALSE for a y that is not canonical or has no u (y = 1). */
gboolean hark_message_ed25519_pk_to_x25519(const guint8 ed[32], guint8 x[32]);
/* crypto_sign_ed25519_sk_to_curve25519: SHA-512 of the 32-byte seed, first half, clamped. */
gboolean hark_message_ed25519_seed_to_x25519(const guint8 seed[32], guint8 x[32]);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkEnvelope, hark_envelope_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMessageInner, hark_message_inner_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMessagePast, hark_message_past_free)

G_END_DECLS
