/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-envelope.c: the end-to-end envelope (message-envelope.h; docs/protocol.md,
 * "Messages: the envelope"): sealing for each recipient device, parsing (shape and limits,
 * what a super node or the login server does), verifying (certificate and signature) and
 * opening.
 *
 * Envelopes come from strangers through nodes we trust less, so, as with presence records
 * (core/base/presence.c), the payload is read only from bytes in normal form, every field is
 * bounded before use, and the signature is checked over the exact bytes that were signed,
 * under a domain of its own. The content key and the one-time keys live only inside
 * hark_message_seal and are wiped there. */
#include "message-crypto.h"
#include "message-envelope.h"

#include "hark/address.h"
#include "hark/presence.h"
#include "identity-private.h"
#include "signed-variant.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* clang-format off */
G_DEFINE_QUARK(hark-message-error-quark, hark_message_error)
/* clang-format on */

#define SIGNATURE_DOMAIN "HARK-MSG-1\n"
#define BODY_AAD "HARK-MSG-1 body"
#define WRAP_INFO "HARK-MSG-1 wrap"
#define FINGERPRINT_LENGTH 64
#define LOG_TEXT_MAX 64
#define DER_SEQUENCE 0x30
#define MIN_BODY (HARK_MESSAGE_NONCE_SIZE + HARK_MESSAGE_TAG_SIZE)

#define set_error(error, code, ...) \
  hark_message_refuse(error, code, "message envelope", __VA_ARGS__)

/* ---- limits ---------------------------------------------------------------------------- */

static gboolean
is_recipient_name(const char *to)
{
  if (to[0] == '#')
    return hark_is_lower_hex(to + 1, HARK_MESSAGE_GROUP_ID_LENGTH);
  return hark_presence_name_is_valid(to);
}

static gboolean
check_header(const HarkEnvelope *e, GError **error)
{
  if (!hark_presence_name_is_valid(e->sender))
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the sender is not a valid user name");
  if (!hark_is_lower_hex(e->sender_device, FINGERPRINT_LENGTH))
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                     "the sender device is not 64 lower-case hex digits");
  gsize cert_size = g_bytes_get_size(e->certificate);
  if (cert_size == 0 || cert_size > HARK_MESSAGE_MAX_CERTIFICATE)
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                     "the certificate has %" G_GSIZE_FORMAT " bytes (1-%d)", cert_size,
                     HARK_MESSAGE_MAX_CERTIFICATE);
  /* DER only (a SEQUENCE): one encoding for one certificate. */
  if (*(const guint8 *)g_bytes_get_data(e->certificate, NULL) != DER_SEQUENCE)
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the certificate is not DER");
  if (!is_recipient_name(e->to))
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                     "'to' is neither a user name nor '#' and 32 lower-case hex digits");
  if (e->sequence == 0 || e->counter == 0)
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the sequence or the counter is 0");
  if (e->time <= 0)
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the time is not after 1970");
  gsize body_size = g_bytes_get_size(e->body);
  if (body_size < MIN_BODY)
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                     "the body has %" G_GSIZE_FORMAT " bytes (at least %d)", body_size, MIN_BODY);
  if (body_size > HARK_MESSAGE_MAX_BODY)
    return set_error(error, HARK_MESSAGE_ERROR_TOO_LARGE,
                     "the body has %" G_GSIZE_FORMAT " bytes (at most %d)", body_size,
                     HARK_MESSAGE_MAX_BODY);
  return TRUE;
}

/* ---- the envelope ---------------------------------------------------------------------- */

static void
recipient_free(gpointer data)
{
  HarkEnvelopeRecipient *r = data;
  g_free(r->device);
  g_free(r);
}

static HarkEnvelope *
envelope_new(void)
{
  HarkEnvelope *e = g_new0(HarkEnvelope, 1);
  e->recipients = g_ptr_array_new_with_free_func(recipient_free);
  return e;
}

void
hark_envelope_free(HarkEnvelope *e)
{
  if (e == NULL)
    return;
  g_free(e->sender);
  g_free(e->sender_device);
  g_free(e->to);
  g_clear_pointer(&e->certificate, g_bytes_unref);
  g_clear_pointer(&e->body, g_bytes_unref);
  g_ptr_array_unref(e->recipients);
  g_clear_pointer(&e->bytes, g_bytes_unref);
  g_clear_pointer(&e->payload, g_bytes_unref);
  g_clear_pointer(&e->signature, g_bytes_unref);
  g_free(e);
}

const HarkEnvelopeRecipient *
hark_envelope_find_recipient(HarkEnvelope *e, const char *device)
{
  for (guint i = 0; i < e->recipients->len; i++) {
    const HarkEnvelopeRecipient *r = e->recipients->pdata[i];
    if (strcmp(r->device, device) == 0)
      return r;
  }
  return NULL;
}

/* ---- encoding -------------------------------------------------------------------------- */

static GVariant *
bytes_variant(gconstpointer data, gsize size)
{
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

static GVariant *
payload_variant(const HarkEnvelope *e)
{
  GVariantBuilder recipients;
  g_variant_builder_init(&recipients, G_VARIANT_TYPE("a(sayay)"));
  for (guint i = 0; i < e->recipients->len; i++) {
    const HarkEnvelopeRecipient *r = e->recipients->pdata[i];
    g_variant_builder_add(&recipients, "(s@ay@ay)", r->device,
                          bytes_variant(r->ephemeral, sizeof r->ephemeral),
                          bytes_variant(r->wrapped, sizeof r->wrapped));
  }
  return g_variant_ref_sink(
    g_variant_new("(@ayss@aysttx@aya(sayay))", bytes_variant(e->id, sizeof e->id), e->sender,
                  e->sender_device, hark_variant_new_bytes(e->certificate), e->to, e->sequence,
                  e->counter, e->time, hark_variant_new_bytes(e->body), &recipients));
}

/* ---- parsing --------------------------------------------------------------------------- */

static gboolean
read_fixed(GVariant *value, guint8 *out, gsize size)
{
  gsize n = 0;
  gconstpointer data = g_variant_get_fixed_array(value, &n, 1);
  if (n != size)
    return FALSE;
  memcpy(out, data, size);
  return TRUE;
}

static gboolean
read_recipients(HarkEnvelope *e, GVariant *list, GError **error)
{
  gsize n = g_variant_n_children(list);
  if (n == 0 || n > HARK_MESSAGE_MAX_RECIPIENTS)
    return set_error(error, n == 0 ? HARK_MESSAGE_ERROR_MALFORMED : HARK_MESSAGE_ERROR_TOO_LARGE,
                     "%" G_GSIZE_FORMAT " recipients (1-%d)", n, HARK_MESSAGE_MAX_RECIPIENTS);
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GVariant) item = g_variant_get_child_value(list, i);
    g_autoptr(GVariant) ephemeral = NULL, wrapped = NULL;
    const char *device;
    g_variant_get(item, "(&s@ay@ay)", &device, &ephemeral, &wrapped);
    HarkEnvelopeRecipient *r = g_new0(HarkEnvelopeRecipient, 1);
    r->device = g_strdup(device);
    g_ptr_array_add(e->recipients, r);
    if (!hark_is_lower_hex(device, FINGERPRINT_LENGTH))
      return set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a recipient device is not 64 lower-case hex digits");
    if (!g_hash_table_add(seen, r->device))
      return set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a recipient device appears twice");
    if (!read_fixed(ephemeral, r->ephemeral, sizeof r->ephemeral) ||
        !read_fixed(wrapped, r->wrapped, sizeof r->wrapped))
      return set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a recipient's key is not %d bytes or its wrapped key not %d",
                       HARK_MESSAGE_KEY_SIZE, HARK_MESSAGE_WRAPPED_SIZE);
  }
  return TRUE;
}

static HarkEnvelope *
envelope_from_payload(GVariant *payload, GError **error)
{
  g_autoptr(HarkEnvelope) e = envelope_new();
  g_autoptr(GVariant) id = NULL, cert = NULL, body = NULL, recipients = NULL;
  const char *sender, *sender_device, *to;
  g_variant_get(payload, "(@ay&s&s@ay&sttx@ay@a(sayay))", &id, &sender, &sender_device, &cert, &to,
                &e->sequence, &e->counter, &e->time, &body, &recipients);
  e->sender = g_strdup(sender);
  e->sender_device = g_strdup(sender_device);
  e->to = g_strdup(to);
  e->certificate = g_variant_get_data_as_bytes(cert);
  e->body = g_variant_get_data_as_bytes(body);
  if (!read_fixed(id, e->id, sizeof e->id)) {
    set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the id is not %d bytes", HARK_MESSAGE_ID_SIZE);
    return NULL;
  }
  if (!check_header(e, error) || !read_recipients(e, recipients, error))
    return NULL;
  return g_steal_pointer(&e);
}

HarkEnvelope *
hark_envelope_parse(GBytes *bytes, GError **error)
{
  g_return_val_if_fail(bytes != NULL, NULL);
  gsize size = g_bytes_get_size(bytes);
  if (size > HARK_MESSAGE_MAX_ENVELOPE) {
    set_error(error, HARK_MESSAGE_ERROR_TOO_LARGE, "it has %" G_GSIZE_FORMAT " bytes (at most %d)",
              size, HARK_MESSAGE_MAX_ENVELOPE);
    return NULL;
  }
  g_autoptr(GVariant) outer =
    hark_variant_from_wire_bytes(G_VARIANT_TYPE(HARK_MESSAGE_SIGNED_TYPE), bytes);
  if (outer == NULL) {
    set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "it is not a normal-form %s",
              HARK_MESSAGE_SIGNED_TYPE);
    return NULL;
  }
  g_autoptr(GVariant) payload_v = g_variant_get_child_value(outer, 0);
  g_autoptr(GVariant) signature_v = g_variant_get_child_value(outer, 1);
  g_autoptr(GBytes) payload_b = g_variant_get_data_as_bytes(payload_v);
  g_autoptr(GBytes) signature = g_variant_get_data_as_bytes(signature_v);
  if (g_bytes_get_size(signature) != HARK_IDENTITY_SIGNATURE_SIZE) {
    set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
              "the signature has %" G_GSIZE_FORMAT " bytes, not %d", g_bytes_get_size(signature),
              HARK_IDENTITY_SIGNATURE_SIZE);
    return NULL;
  }
  g_autoptr(GVariant) payload =
    hark_variant_from_wire_bytes(G_VARIANT_TYPE(HARK_MESSAGE_PAYLOAD_TYPE), payload_b);
  if (payload == NULL) {
    set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the payload is not a normal-form %s",
              HARK_MESSAGE_PAYLOAD_TYPE);
    return NULL;
  }
  HarkEnvelope *e = envelope_from_payload(payload, error);
  if (e == NULL)
    return NULL;
  e->bytes = g_bytes_ref(bytes);
  e->payload = g_steal_pointer(&payload_b);
  e->signature = g_steal_pointer(&signature);
  return e;
}

/* ---- verifying ------------------------------------------------------------------------- */

/* Errors of verify name the (escaped) sender, so a log line says whose envelope it was. */
static gboolean verify_error(GError **error, HarkMessageError code, const HarkEnvelope *e,
                             const char *format, ...) G_GNUC_PRINTF(4, 5);

static gboolean
verify_error(GError **error, HarkMessageError code, const HarkEnvelope *e, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_autofree char *shown = hark_text_escape(e->sender, -1, LOG_TEXT_MAX);
  return set_error(error, code, "from '%s': %s", shown, message);
}

/* The certified key of e's sender, or NULL. */
static GBytes *
check_sender_certificate(const HarkEnvelope *e, const char *ca_pem, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(ca_pem, e->certificate, e->time, &local);
  if (cert == NULL) {
    gboolean expired =
      g_error_matches(local, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_EXPIRED);
    verify_error(error, expired ? HARK_MESSAGE_ERROR_EXPIRED : HARK_MESSAGE_ERROR_FOREIGN, e,
                 "its certificate %s: %s",
                 expired ? "was not valid when it was sealed" : "is not the CA's", local->message);
    return NULL;
  }
  if (g_ascii_strcasecmp(cert->user, e->sender) != 0) {
    g_autofree char *certified = hark_text_escape(cert->user, -1, LOG_TEXT_MAX);
    verify_error(error, HARK_MESSAGE_ERROR_FOREIGN, e,
                 "it is sent under that name with a certificate of user '%s'", certified);
    return NULL;
  }
  if (strcmp(cert->device_id, e->sender_device) != 0) {
    verify_error(error, HARK_MESSAGE_ERROR_FOREIGN, e,
                 "its sender device is not the certified key's");
    return NULL;
  }
  return g_bytes_ref(cert->public_key);
}

gboolean
hark_envelope_verify(HarkEnvelope *e, const char *ca_pem, gint64 now, GError **error)
{
  g_return_val_if_fail(e != NULL && ca_pem != NULL, FALSE);
  e->verified = FALSE;
  if (e->time > now + HARK_MESSAGE_MAX_SKEW_S)
    return verify_error(error, HARK_MESSAGE_ERROR_EXPIRED, e,
                        "it is dated %" G_GINT64_FORMAT " s ahead (at most %d)", e->time - now,
                        HARK_MESSAGE_MAX_SKEW_S);
  if (e->time < now - HARK_MESSAGE_MAX_AGE_S)
    return verify_error(error, HARK_MESSAGE_ERROR_EXPIRED, e,
                        "it is %" G_GINT64_FORMAT " s old (at most %d)", now - e->time,
                        HARK_MESSAGE_MAX_AGE_S);
  g_autoptr(GBytes) public_key = check_sender_certificate(e, ca_pem, error);
  if (public_key == NULL)
    return FALSE;
  g_autoptr(GBytes) data = hark_signed_data(SIGNATURE_DOMAIN, e->payload);
  if (!hark_identity_verify(public_key, data, e->signature, NULL))
    return verify_error(error, HARK_MESSAGE_ERROR_FORGED, e,
                        "its signature is not the certified device key's");
  e->verified = TRUE;
  return TRUE;
}

/* ---- the keys -------------------------------------------------------------------------- */

/* The wrap key for device: HKDF-SHA256(shared, salt = ephemeral || device's X25519 key,
 * info = WRAP_INFO || id || device). */
static gboolean
wrap_key(const guint8 shared[32], const guint8 ephemeral[32], const guint8 device_x[32],
         const guint8 id[HARK_MESSAGE_ID_SIZE], const char *device, guint8 key[32], GError **error)
{
  guint8 salt[64];
  memcpy(salt, ephemeral, 32);
  memcpy(salt + 32, device_x, 32);
  guint8 info[sizeof WRAP_INFO - 1 + HARK_MESSAGE_ID_SIZE + FINGERPRINT_LENGTH];
  memcpy(info, WRAP_INFO, sizeof WRAP_INFO - 1);
  memcpy(info + sizeof WRAP_INFO - 1, id, HARK_MESSAGE_ID_SIZE);
  memcpy(info + sizeof WRAP_INFO - 1 + HARK_MESSAGE_ID_SIZE, device, FINGERPRINT_LENGTH);
  return hark_message_hkdf(shared, 32, salt, sizeof salt, info, sizeof info, key, error);
}

static void
body_aad(const guint8 id[HARK_MESSAGE_ID_SIZE],
         guint8 aad[sizeof BODY_AAD - 1 + HARK_MESSAGE_ID_SIZE])
{
  memcpy(aad, BODY_AAD, sizeof BODY_AAD - 1);
  memcpy(aad + sizeof BODY_AAD - 1, id, HARK_MESSAGE_ID_SIZE);
}

static const guint8 zero_nonce[HARK_MESSAGE_NONCE_SIZE]; /* a wrap key is used once */

/* ---- sealing --------------------------------------------------------------------------- */

/* Checks the sender's side of params: its certificate is the CA's for sender and the
 * identity's key. */
static gboolean
check_seal_sender(const HarkMessageSealParams *p, GError **error)
{
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(p->ca_pem, p->certificate, p->time, error);
  if (cert == NULL)
    return FALSE;
  if (g_ascii_strcasecmp(cert->user, p->sender) != 0 ||
      strcmp(cert->device_id, hark_identity_get_fingerprint(p->identity)) != 0)
    return set_error(error, HARK_MESSAGE_ERROR_FOREIGN,
                     "the sender's certificate is not for this user and device key");
  if (!is_recipient_name(p->to))
    return set_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                     "'to' is neither a user name nor '#' and 32 lower-case hex digits");
  if (p->n_recipients == 0 || p->n_recipients > HARK_MESSAGE_MAX_RECIPIENTS)
    return set_error(error, HARK_MESSAGE_ERROR_TOO_LARGE, "%u recipients (1-%d)", p->n_recipients,
                     HARK_MESSAGE_MAX_RECIPIENTS);
  return TRUE;
}

/* The recipient's X25519 public key from its certificate, after the same checks a
 * sender's certificate gets; a message to a user goes to that user's devices and the
 * sender's own, nobody else's. */
static gboolean
recipient_key(const HarkMessageSealParams *p, const HarkMessageRecipient *r, guint8 x[32],
              GError **error)
{
  /* A device offline since its certificate ran out is still sealed for (its messages are
   * held for it): the login server lists a user's devices until it revokes them. */
  g_autoptr(HarkDeviceCertificate) cert = hark_certificate_verify_recent(
    p->ca_pem, r->certificate, p->time, HARK_MESSAGE_RECIPIENT_GRACE_S, error);
  if (cert == NULL)
    return FALSE;
  if (r->recipient_device == NULL || strcmp(cert->device_id, r->recipient_device) != 0)
    return set_error(error, HARK_MESSAGE_ERROR_FOREIGN,
                     "a recipient's certificate is not for its device id");
  if (p->to[0] != '#' && g_ascii_strcasecmp(cert->user, p->to) != 0 &&
      g_ascii_strcasecmp(cert->user, p->sender) != 0)
    return set_error(error, HARK_MESSAGE_ERROR_FOREIGN,
                     "a recipient device is neither the addressee's nor the sender's");
  if (!hark_message_ed25519_pk_to_x25519(g_bytes_get_data(cert->public_key, NULL), x))
    return set_error(error, HARK_MESSAGE_ERROR_FOREIGN, "a recipient's key has no X25519 form");
  return TRUE;
}

/* One recipient entry: a fresh one-time key, the agreement, K wrapped. */
static gboolean
wrap_for(const HarkMessageSealParams *p, const HarkMessageRecipient *r, const HarkEnvelope *e,
         const guint8 content_key[32], HarkEnvelopeRecipient *out, GError **error)
{
  guint8 device_x[32], shared[32], key[32];
  if (!recipient_key(p, r, device_x, error))
    return FALSE;
  EVP_PKEY *ephemeral = hark_message_x25519_generate(out->ephemeral, error);
  if (ephemeral == NULL)
    return FALSE;
  gboolean ok =
    hark_message_x25519_agree(ephemeral, device_x, shared, error) &&
    wrap_key(shared, out->ephemeral, device_x, e->id, r->recipient_device, key, error) &&
    hark_message_aead_seal(key, zero_nonce, NULL, 0, content_key, 32, out->wrapped, error);
  EVP_PKEY_free(ephemeral); /* forward secrecy: the sender keeps nothing to unwrap with */
  OPENSSL_cleanse(shared, sizeof shared);
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

static GBytes *
seal_body(const HarkEnvelope *e, GBytes *plaintext, const guint8 content_key[32], GError **error)
{
  gsize size = 0;
  const guint8 *data = g_bytes_get_data(plaintext, &size);
  guint8 *body = g_malloc(HARK_MESSAGE_NONCE_SIZE + size + HARK_MESSAGE_TAG_SIZE);
  guint8 aad[sizeof BODY_AAD - 1 + HARK_MESSAGE_ID_SIZE];
  body_aad(e->id, aad);
  if (RAND_bytes(body, HARK_MESSAGE_NONCE_SIZE) != 1 ||
      !hark_message_aead_seal(content_key, body, aad, sizeof aad, data, size,
                              body + HARK_MESSAGE_NONCE_SIZE, error)) {
    if (error != NULL && *error == NULL)
      set_error(error, HARK_MESSAGE_ERROR_CRYPTO, "no random nonce");
    g_free(body);
    return NULL;
  }
  return g_bytes_new_take(body, HARK_MESSAGE_NONCE_SIZE + size + HARK_MESSAGE_TAG_SIZE);
}

/* The inner plaintext's bytes, after its kind's checks. */
static GBytes *
inner_bytes(GVariant *inner, GError **error)
{
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(inner, error);
  if (parsed == NULL)
    return NULL;
  g_autoptr(GBytes) bytes = hark_variant_wire_bytes(inner);
  if (g_bytes_get_size(bytes) > HARK_MESSAGE_MAX_PLAINTEXT) {
    set_error(error, HARK_MESSAGE_ERROR_TOO_LARGE,
              "the plaintext has %" G_GSIZE_FORMAT " bytes (at most %d)", g_bytes_get_size(bytes),
              HARK_MESSAGE_MAX_PLAINTEXT);
    return NULL;
  }
  return g_steal_pointer(&bytes);
}

/* The header fields of params and a new id. */
static HarkEnvelope *
seal_header(const HarkMessageSealParams *p, GError **error)
{
  g_autoptr(HarkEnvelope) e = envelope_new();
  if (RAND_bytes(e->id, sizeof e->id) != 1) {
    set_error(error, HARK_MESSAGE_ERROR_CRYPTO, "no random message id");
    return NULL;
  }
  e->sender = g_strdup(p->sender);
  e->sender_device = g_strdup(hark_identity_get_fingerprint(p->identity));
  e->to = g_strdup(p->to);
  e->sequence = p->sequence;
  e->counter = p->counter;
  e->time = p->time;
  e->certificate = g_bytes_ref(p->certificate);
  return g_steal_pointer(&e);
}

static GBytes *
sign_envelope(HarkEnvelope *e, HarkIdentity *identity, GError **error)
{
  if (!check_header(e, error))
    return NULL;
  g_autoptr(GVariant) payload = payload_variant(e);
  g_autoptr(GBytes) payload_b = hark_variant_wire_bytes(payload);
  g_autoptr(GBytes) data = hark_signed_data(SIGNATURE_DOMAIN, payload_b);
  g_autoptr(GError) local = NULL;
  g_autoptr(GBytes) signature = hark_identity_sign(identity, data, &local);
  if (signature == NULL) {
    set_error(error, HARK_MESSAGE_ERROR_CRYPTO, "cannot sign: %s", local->message);
    return NULL;
  }
  g_autoptr(GVariant) outer = g_variant_ref_sink(g_variant_new(
    "(@ay@ay)", hark_variant_new_bytes(payload_b), hark_variant_new_bytes(signature)));
  GBytes *bytes = hark_variant_wire_bytes(outer);
  if (g_bytes_get_size(bytes) > HARK_MESSAGE_MAX_ENVELOPE) {
    set_error(error, HARK_MESSAGE_ERROR_TOO_LARGE,
              "it would have %" G_GSIZE_FORMAT " bytes (at most %d)", g_bytes_get_size(bytes),
              HARK_MESSAGE_MAX_ENVELOPE);
    g_bytes_unref(bytes);
    return NULL;
  }
  return bytes;
}

GBytes *
hark_message_seal(const HarkMessageSealParams *p, GError **error)
{
  g_return_val_if_fail(p != NULL && p->identity != NULL && p->certificate != NULL, NULL);
  g_return_val_if_fail(p->sender != NULL && p->ca_pem != NULL && p->to != NULL, NULL);
  g_return_val_if_fail(p->inner != NULL && (p->recipients != NULL || p->n_recipients == 0), NULL);
  if (!check_seal_sender(p, error))
    return NULL;
  g_autoptr(GBytes) plaintext = inner_bytes(p->inner, error);
  g_autoptr(HarkEnvelope) e = plaintext != NULL ? seal_header(p, error) : NULL;
  if (e == NULL)
    return NULL;
  guint8 content_key[32];
  if (RAND_bytes(content_key, sizeof content_key) != 1) {
    set_error(error, HARK_MESSAGE_ERROR_CRYPTO, "no random content key");
    return NULL;
  }
  e->body = seal_body(e, plaintext, content_key, error);
  gboolean ok = e->body != NULL;
  for (guint i = 0; ok && i < p->n_recipients; i++) {
    HarkEnvelopeRecipient *r = g_new0(HarkEnvelopeRecipient, 1);
    r->device = g_strdup(p->recipients[i].recipient_device);
    g_ptr_array_add(e->recipients, r);
    ok = wrap_for(p, &p->recipients[i], e, content_key, r, error);
  }
  OPENSSL_cleanse(content_key, sizeof content_key);
  return ok ? sign_envelope(e, p->identity, error) : NULL;
}

/* ---- opening --------------------------------------------------------------------------- */

/* The content key from r, with identity's device key. */
static gboolean
unwrap(const HarkEnvelope *e, const HarkEnvelopeRecipient *r, HarkIdentity *identity,
       guint8 content_key[32], GError **error)
{
  guint8 own_x[32], shared[32], key[32];
  g_autoptr(GBytes) own_ed = hark_identity_get_public_key(identity);
  if (!hark_message_ed25519_pk_to_x25519(g_bytes_get_data(own_ed, NULL), own_x))
    return set_error(error, HARK_MESSAGE_ERROR_CRYPTO, "this device's key has no X25519 form");
  EVP_PKEY *own = hark_message_x25519_from_ed25519(hark_identity_get_private_key(identity), error);
  if (own == NULL)
    return FALSE;
  gboolean ok = hark_message_x25519_agree(own, r->ephemeral, shared, error) &&
                wrap_key(shared, r->ephemeral, own_x, e->id, r->device, key, error);
  EVP_PKEY_free(own);
  if (ok && !hark_message_aead_open(key, zero_nonce, NULL, 0, r->wrapped, sizeof r->wrapped,
                                    content_key, error)) {
    if (error == NULL || *error == NULL)
      set_error(error, HARK_MESSAGE_ERROR_UNDECRYPTABLE,
                "the content key for this device does not unwrap");
    ok = FALSE;
  }
  OPENSSL_cleanse(shared, sizeof shared);
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

static GBytes *
open_body(const HarkEnvelope *e, const guint8 content_key[32], GError **error)
{
  gsize size = 0;
  const guint8 *body = g_bytes_get_data(e->body, &size);
  gsize plain_size = size - MIN_BODY;
  guint8 *plain = g_malloc(plain_size + 1);
  guint8 aad[sizeof BODY_AAD - 1 + HARK_MESSAGE_ID_SIZE];
  body_aad(e->id, aad);
  if (!hark_message_aead_open(content_key, body, aad, sizeof aad, body + HARK_MESSAGE_NONCE_SIZE,
                              size - HARK_MESSAGE_NONCE_SIZE, plain, error)) {
    if (error == NULL || *error == NULL)
      set_error(error, HARK_MESSAGE_ERROR_UNDECRYPTABLE,
                "the body does not decrypt under its content key");
    g_free(plain);
    return NULL;
  }
  return g_bytes_new_take(plain, plain_size);
}

GVariant *
hark_envelope_open(HarkEnvelope *e, HarkIdentity *identity, GError **error)
{
  g_return_val_if_fail(e != NULL && identity != NULL, NULL);
  g_return_val_if_fail(e->verified, NULL);
  const HarkEnvelopeRecipient *r =
    hark_envelope_find_recipient(e, hark_identity_get_fingerprint(identity));
  if (r == NULL) {
    set_error(error, HARK_MESSAGE_ERROR_NOT_FOR_US, "this device is not among its %u recipients",
              e->recipients->len);
    return NULL;
  }
  guint8 content_key[32];
  if (!unwrap(e, r, identity, content_key, error))
    return NULL;
  g_autoptr(GBytes) plain = open_body(e, content_key, error);
  OPENSSL_cleanse(content_key, sizeof content_key);
  if (plain == NULL)
    return NULL;
  g_autoptr(GVariant) inner =
    hark_variant_from_wire_bytes(G_VARIANT_TYPE(HARK_MESSAGE_INNER_TYPE), plain);
  if (inner == NULL) {
    set_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the plaintext is not a normal-form %s",
              HARK_MESSAGE_INNER_TYPE);
    return NULL;
  }
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(inner, error);
  if (parsed == NULL)
    return NULL;
  return g_steal_pointer(&inner);
}
