/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store.c: the small helpers every store plugin and the login server share. */
#include "hark/store.h"

/* clang-format off */
G_DEFINE_QUARK(hark-store-error-quark, hark_store_error)
/* clang-format on */

void
hark_store_set_no_user(GError **error, const char *name_key)
{
  g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND, "no user '%s'", name_key);
}

void
hark_store_set_no_device(GError **error, const char *name_key, const char *device_id)
{
  g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND, "no device '%s' of '%s'",
              device_id, name_key);
}

void
hark_store_reword_exists(GError **error, const char *format, ...)
{
  if (error == NULL || !g_error_matches(*error, HARK_STORE_ERROR, HARK_STORE_ERROR_EXISTS))
    return;
  va_list args;
  va_start(args, format);
  g_free((*error)->message);
  (*error)->message = g_strdup_vprintf(format, args);
  va_end(args);
}

gboolean
hark_store_check_revision(gint64 current, gint64 expected, const char *name_key, GError **error)
{
  if (expected < 0 || expected == current)
    return TRUE;
  g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_CONFLICT,
              "the buddy list of '%s' is at revision %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT,
              name_key, current, expected);
  return FALSE;
}

gboolean
hark_store_buddy_change_result(gint64 changed, const char *name_key, const char *buddy_key,
                               GError **error)
{
  if (changed < 0)
    hark_store_reword_exists(error, "'%s' is already in the buddy list of '%s'", buddy_key,
                             name_key);
  else if (changed == 0)
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND,
                "'%s' is not in the buddy list of '%s'", buddy_key, name_key);
  return changed > 0;
}

void
hark_store_user_free(HarkStoreUser *user)
{
  if (user == NULL)
    return;
  g_free(user->name);
  g_free(user->name_key);
  g_free(user->password_hash);
  g_free(user->account_id);
  g_free(user);
}

void
hark_store_device_free(HarkStoreDevice *device)
{
  if (device == NULL)
    return;
  g_free(device->device_id);
  g_free(device->name);
  g_free(device);
}

HarkStoreBuddy *
hark_store_buddy_new(const char *name_key, const char *alias)
{
  HarkStoreBuddy *buddy = g_new0(HarkStoreBuddy, 1);
  buddy->name_key = g_strdup(name_key);
  buddy->alias = g_strdup(alias != NULL ? alias : name_key);
  return buddy;
}

void
hark_store_buddy_free(HarkStoreBuddy *buddy)
{
  if (buddy == NULL)
    return;
  g_free(buddy->name_key);
  g_free(buddy->alias);
  g_free(buddy);
}

HarkStoreRequest *
hark_store_request_new(const char *from_key, const char *to_key, const char *message,
                       gint64 created, gint64 answered)
{
  HarkStoreRequest *request = g_new0(HarkStoreRequest, 1);
  request->from_key = g_strdup(from_key);
  request->to_key = g_strdup(to_key);
  request->message = g_strdup(message);
  request->created = created;
  request->answered = answered;
  return request;
}

void
hark_store_request_free(HarkStoreRequest *request)
{
  if (request == NULL)
    return;
  g_free(request->from_key);
  g_free(request->to_key);
  g_free(request->message);
  g_free(request);
}

void
hark_store_set_no_request(GError **error, const char *from_key, const char *to_key)
{
  g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND,
              "no pending request from '%s' to '%s'", from_key, to_key);
}

void
hark_store_set_request_pending(GError **error, const char *from_key, const char *to_key)
{
  g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_EXISTS,
              "a request from '%s' to '%s' is pending already", from_key, to_key);
}

HarkStoreCertificate *
hark_store_certificate_new(const char *device_id, const char *certificate, gint64 expires)
{
  HarkStoreCertificate *entry = g_new0(HarkStoreCertificate, 1);
  entry->device_id = g_strdup(device_id);
  entry->certificate = g_strdup(certificate);
  entry->expires = expires;
  return entry;
}

void
hark_store_certificate_free(HarkStoreCertificate *certificate)
{
  if (certificate == NULL)
    return;
  g_free(certificate->device_id);
  g_free(certificate->certificate);
  g_free(certificate);
}

HarkStoreMessage *
hark_store_message_new(const char *id, const char *device_id, const char *user_key,
                       const char *sender_key, const char *sender_device, GBytes *envelope,
                       gint64 held_at, gint64 expires)
{
  HarkStoreMessage *message = g_new0(HarkStoreMessage, 1);
  message->id = g_strdup(id);
  message->device_id = g_strdup(device_id);
  message->user_key = g_strdup(user_key);
  message->sender_key = g_strdup(sender_key);
  message->sender_device = g_strdup(sender_device);
  message->envelope = envelope != NULL ? g_bytes_ref(envelope) : g_bytes_new(NULL, 0);
  message->held_at = held_at;
  message->expires = expires;
  return message;
}

void
hark_store_message_free(HarkStoreMessage *message)
{
  if (message == NULL)
    return;
  g_free(message->id);
  g_free(message->device_id);
  g_free(message->user_key);
  g_free(message->sender_key);
  g_free(message->sender_device);
  g_bytes_unref(message->envelope);
  g_free(message);
}

gboolean
hark_store_check_message_limits(const HarkStoreMessageLimits *limits, const HarkStoreUsage *sender,
                                const HarkStoreUsage *device, gsize size, GError **error)
{
  gint64 bytes = (gint64)size;
  if (sender->count + 1 > limits->sender.count || sender->bytes + bytes > limits->sender.bytes) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_LIMIT,
                "the sender has %" G_GINT64_FORMAT " messages (%" G_GINT64_FORMAT
                " bytes) held; at most %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT " bytes)",
                sender->count, sender->bytes, limits->sender.count, limits->sender.bytes);
    return FALSE;
  }
  if (device->count + 1 > limits->device.count || device->bytes + bytes > limits->device.bytes) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_FULL,
                "the device has %" G_GINT64_FORMAT " messages (%" G_GINT64_FORMAT
                " bytes) held; at most %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT " bytes)",
                device->count, device->bytes, limits->device.count, limits->device.bytes);
    return FALSE;
  }
  return TRUE;
}
