/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* presence-watch.c: a device's signed watch, the proof an SN peer asks before it pushes a
 * watcher's buddies' full forms across SNs (hark/presence.h, docs/protocol.md "Presence
 * subscriptions"). An SN could otherwise claim any watcher name: only the watcher's own
 * device key, certified by the CA for that user, can make one.
 *
 * Encoded like a record: a normal-form payload signed after a domain of its own, so a
 * watch's signature can never pass for a record's or the other way round. */
#include "hark/presence.h"
#include "hark/certificate.h"
#include "hark/address.h"

#include "signed-variant.h"

#include <string.h>

#define WATCH_DOMAIN "HARK-WATCH-1\n"
#define WATCH_PAYLOAD_TYPE "(sassayx)" /* user, watched users, SN, certificate, time */
#define LOG_TEXT_MAX 64

GVariant *
hark_presence_watch_sign(const char *user, const char *const *users, const char *sn, gint64 time,
                         GBytes *certificate, HarkIdentity *identity, GError **error)
{
  g_return_val_if_fail(user != NULL && sn != NULL && certificate != NULL && identity != NULL, NULL);
  const char *const none[] = { NULL };
  g_autoptr(GVariant) payload =
    g_variant_ref_sink(g_variant_new("(s^ass@ayx)", user, users != NULL ? users : none, sn,
                                     hark_variant_new_bytes(certificate), time));
  g_autoptr(GBytes) bytes = hark_variant_wire_bytes(payload);
  if (g_bytes_get_size(bytes) > HARK_PRESENCE_WATCH_MAX_PAYLOAD) {
    g_set_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                "a watch of %" G_GSIZE_FORMAT " bytes (at most %d)", g_bytes_get_size(bytes),
                HARK_PRESENCE_WATCH_MAX_PAYLOAD);
    return NULL;
  }
  g_autoptr(GBytes) to_sign = hark_signed_data(WATCH_DOMAIN, bytes);
  g_autoptr(GBytes) signature = hark_identity_sign(identity, to_sign, error);
  if (signature == NULL)
    return NULL;
  return g_variant_ref_sink(
    g_variant_new("(@ay@ay)", hark_variant_new_bytes(bytes), hark_variant_new_bytes(signature)));
}

static void watch_error(GError **error, HarkPresenceError code, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

static void
watch_error(GError **error, HarkPresenceError code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, HARK_PRESENCE_ERROR, code, "watch refused: %s", message);
}

/* The payload of signed (its bytes in *payload_bytes, the signature in *signature), parsed
 * from normal form only; NULL when it is not one. */
static GVariant *
watch_payload(GVariant *signed_watch, GBytes **payload_bytes, GBytes **signature, GError **error)
{
  if (!g_variant_is_of_type(signed_watch, G_VARIANT_TYPE("(ayay)"))) {
    watch_error(error, HARK_PRESENCE_ERROR_MALFORMED, "it is not (ayay)");
    return NULL;
  }
  g_autoptr(GVariant) payload_v = g_variant_get_child_value(signed_watch, 0);
  g_autoptr(GVariant) signature_v = g_variant_get_child_value(signed_watch, 1);
  g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(payload_v);
  g_autoptr(GBytes) sig = g_variant_get_data_as_bytes(signature_v);
  gsize size = g_bytes_get_size(bytes);
  if (g_bytes_get_size(sig) != HARK_IDENTITY_SIGNATURE_SIZE || size == 0 ||
      size > HARK_PRESENCE_WATCH_MAX_PAYLOAD) {
    watch_error(error, HARK_PRESENCE_ERROR_MALFORMED,
                "a payload of %" G_GSIZE_FORMAT " bytes or a signature of %" G_GSIZE_FORMAT, size,
                g_bytes_get_size(sig));
    return NULL;
  }
  GVariant *payload = hark_variant_from_wire_bytes(G_VARIANT_TYPE(WATCH_PAYLOAD_TYPE), bytes);
  if (payload == NULL) {
    watch_error(error, HARK_PRESENCE_ERROR_MALFORMED, "the payload is not a normal-form %s",
                WATCH_PAYLOAD_TYPE);
    return NULL;
  }
  *payload_bytes = g_steal_pointer(&bytes);
  *signature = g_steal_pointer(&sig);
  return payload;
}

/* Adds the watched names (canonical) to users; FALSE when one is not a user name or there
 * are too many. */
static gboolean
watch_users(GVariant *list, GHashTable *users, GError **error)
{
  if (g_variant_n_children(list) > HARK_PRESENCE_WATCH_MAX_USERS) {
    watch_error(error, HARK_PRESENCE_ERROR_MALFORMED, "it names more than %d users",
                HARK_PRESENCE_WATCH_MAX_USERS);
    return FALSE;
  }
  GVariantIter iter;
  const char *name;
  g_variant_iter_init(&iter, list);
  while (g_variant_iter_next(&iter, "&s", &name))
    if (!hark_presence_name_is_valid(name)) {
      watch_error(error, HARK_PRESENCE_ERROR_MALFORMED, "it names something not a user name");
      return FALSE;
    }
  g_variant_iter_init(&iter, list);
  while (g_variant_iter_next(&iter, "&s", &name))
    if (users != NULL)
      g_hash_table_add(users, hark_presence_name_key(name));
  return TRUE;
}

gboolean
hark_presence_watch_verify(GVariant *signed_watch, const char *ca_pem, const char *watcher,
                           const char *sn, gint64 now, GHashTable *users, GError **error)
{
  g_return_val_if_fail(signed_watch != NULL && ca_pem != NULL && watcher != NULL && sn != NULL,
                       FALSE);
  g_autoptr(GBytes) bytes = NULL, signature = NULL;
  g_autoptr(GVariant) payload = watch_payload(signed_watch, &bytes, &signature, error);
  if (payload == NULL)
    return FALSE;
  const char *user, *signed_sn;
  g_autoptr(GVariant) list = NULL, cert_v = NULL;
  gint64 time;
  g_variant_get(payload, "(&s@as&s@ayx)", &user, &list, &signed_sn, &cert_v, &time);
  if (!hark_presence_name_is_valid(user) || g_ascii_strcasecmp(user, watcher) != 0) {
    g_autofree char *shown = hark_text_escape(user, -1, LOG_TEXT_MAX);
    watch_error(error, HARK_PRESENCE_ERROR_FOREIGN, "it is '%s''s, not the watcher's", shown);
    return FALSE;
  }
  if (strcmp(signed_sn, sn) != 0) {
    /* Made for another SN: a peer that was forwarded it cannot pass it on as its own. */
    watch_error(error, HARK_PRESENCE_ERROR_FOREIGN, "it was made for another super node");
    return FALSE;
  }
  if (time > now + HARK_PRESENCE_MAX_SKEW_S) {
    watch_error(error, HARK_PRESENCE_ERROR_FUTURE, "it is dated %" G_GINT64_FORMAT " s ahead",
                time - now);
    return FALSE;
  }
  if (time < now - HARK_PRESENCE_WATCH_MAX_AGE_S) {
    watch_error(error, HARK_PRESENCE_ERROR_EXPIRED, "it is %" G_GINT64_FORMAT " s old (at most %d)",
                now - time, HARK_PRESENCE_WATCH_MAX_AGE_S);
    return FALSE;
  }
  g_autoptr(GBytes) der = g_variant_get_data_as_bytes(cert_v);
  g_autoptr(GError) local = NULL;
  g_autoptr(HarkDeviceCertificate) cert = hark_certificate_verify(ca_pem, der, time, &local);
  if (cert == NULL) {
    watch_error(error, HARK_PRESENCE_ERROR_FOREIGN, "its certificate is not the CA's: %s",
                local->message);
    return FALSE;
  }
  if (g_ascii_strcasecmp(cert->user, user) != 0) {
    watch_error(error, HARK_PRESENCE_ERROR_FOREIGN, "its certificate is another user's");
    return FALSE;
  }
  g_autoptr(GBytes) to_verify = hark_signed_data(WATCH_DOMAIN, bytes);
  if (!hark_identity_verify(cert->public_key, to_verify, signature, NULL)) {
    watch_error(error, HARK_PRESENCE_ERROR_FORGED, "its signature is not the certified key's");
    return FALSE;
  }
  return watch_users(list, users, error);
}
