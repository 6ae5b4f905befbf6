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

#include <string.h>

#define WATCH_DOMAIN "HARK-WATCH-1\n"
#define WATCH_PAYLOAD_TYPE "(sassayx)" /* user, watched users, SN, certificate, time */
#define READ_SLACK 8 /* see wire.c: GLib's normal-form check may read a byte past the end */
#define LOG_TEXT_MAX 64

static GBytes *
watch_signed_data(gconstpointer payload, gsize size)
{
  GByteArray *bytes = g_byte_array_sized_new(sizeof WATCH_DOMAIN - 1 + size);
  g_byte_array_append(bytes, (const guint8 *)WATCH_DOMAIN, sizeof WATCH_DOMAIN - 1);
  g_byte_array_append(bytes, payload, size);
  return g_byte_array_free_to_bytes(bytes);
}

static GVariant *
bytes_variant(GBytes *bytes)
{
  gsize size = 0;
  gconstpointer data = g_bytes_get_data(bytes, &size);
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

GVariant *
hark_presence_watch_sign(const char *user, const char *const *users, const char *sn, gint64 time,
                         GBytes *certificate, HarkIdentity *identity, GError **error)
{
  g_return_val_if_fail(user != NULL && sn != NULL && certificate != NULL && identity != NULL, NULL);
  const char *const none[] = { NULL };
  g_autoptr(GVariant) payload = g_variant_ref_sink(g_variant_new(
    "(s^ass@ayx)", user, users != NULL ? users : none, sn, bytes_variant(certificate), time));
  g_autoptr(GVariant) normal = g_variant_get_normal_form(payload);
#if G_BYTE_ORDER == G_BIG_ENDIAN
  g_autoptr(GVariant) swapped = g_variant_byteswap(normal);
  g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(swapped);
#else
  g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(normal);
#endif
  if (g_bytes_get_size(bytes) > HARK_PRESENCE_WATCH_MAX_PAYLOAD) {
    g_set_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                "a watch of %" G_GSIZE_FORMAT " bytes (at most %d)", g_bytes_get_size(bytes),
                HARK_PRESENCE_WATCH_MAX_PAYLOAD);
    return NULL;
  }
  gsize size = 0;
  gconstpointer data = g_bytes_get_data(bytes, &size);
  g_autoptr(GBytes) to_sign = watch_signed_data(data, size);
  g_autoptr(GBytes) signature = hark_identity_sign(identity, to_sign, error);
  if (signature == NULL)
    return NULL;
  return g_variant_ref_sink(
    g_variant_new("(@ay@ay)", bytes_variant(bytes), bytes_variant(signature)));
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
  guint8 *copy = g_malloc0(size + READ_SLACK);
  memcpy(copy, g_bytes_get_data(bytes, NULL), size);
  g_autoptr(GBytes) padded = g_bytes_new_with_free_func(copy, size, g_free, copy);
  g_autoptr(GVariant) payload =
    g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(WATCH_PAYLOAD_TYPE), padded, FALSE));
  if (!g_variant_is_normal_form(payload)) {
    watch_error(error, HARK_PRESENCE_ERROR_MALFORMED, "the payload is not a normal-form %s",
                WATCH_PAYLOAD_TYPE);
    return NULL;
  }
  *payload_bytes = g_steal_pointer(&bytes);
  *signature = g_steal_pointer(&sig);
#if G_BYTE_ORDER == G_BIG_ENDIAN
  return g_variant_byteswap(payload);
#else
  return g_steal_pointer(&payload);
#endif
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
  gsize size = 0;
  gconstpointer data = g_bytes_get_data(bytes, &size);
  g_autoptr(GBytes) to_verify = watch_signed_data(data, size);
  if (!hark_identity_verify(cert->public_key, to_verify, signature, NULL)) {
    watch_error(error, HARK_PRESENCE_ERROR_FORGED, "its signature is not the certified key's");
    return FALSE;
  }
  return watch_users(list, users, error);
}
