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
