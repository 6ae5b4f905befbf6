/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* devices.c: who may sign, and the device list (docs/protocol.md, "Devices").
 *
 * A certificate names the account it was issued for by its account id, and the device by
 * its key's fingerprint. A signed request counts only while that account is still the
 * one registered under the name (not deleted, nor deleted and registered again by
 * someone else) and the device is one of its devices and not revoked: auth.c checks the
 * signature on the main context, login_signer_check() checks this in the store, on the
 * job's worker thread, before any signed endpoint does anything.
 *
 * The device list endpoints: GET /v1/devices and POST /v1/devices/remove (revocation,
 * by fingerprint or by name). */
#include "loginsrv.h"

#include <string.h>

LoginSigner *
login_signer_new(const HarkDeviceCertificate *device)
{
  LoginSigner *signer = g_new0(LoginSigner, 1);
  signer->user = g_strdup(device->user);
  signer->key = login_name_key(device->user);
  signer->account_id = g_strdup(device->account_id);
  signer->device_id = g_strdup(device->device_id);
  return signer;
}

void
login_signer_free(LoginSigner *signer)
{
  if (signer == NULL)
    return;
  g_free(signer->user);
  g_free(signer->key);
  g_free(signer->account_id);
  g_free(signer->device_id);
  g_free(signer);
}

/* An unauthenticated reply, and a line in the log (names and ids are from a certificate
 * of our own CA: ASCII name characters and hex, nothing that could forge a log line). */
static void
refuse_signer(const LoginSigner *signer, LoginReply *reply, const char *why, const char *message)
{
  g_message("refused a signed request of '%s' (device %.16s...): %s", signer->user,
            signer->device_id, why);
  login_reply_error(reply, "unauthenticated", "%s", message);
}

HarkStoreUser *
login_signer_check(LoginServer *s, const LoginSigner *signer, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStoreUser) user = s->store->user_get(s->store_handle, signer->key, &error);
  if (user == NULL && !g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND)) {
    login_reply_store_failure(reply, "read a user", error);
    return NULL;
  }
  g_autofree char *message = NULL;
  if (user == NULL || g_strcmp0(user->account_id, signer->account_id) != 0) {
    message = g_strdup_printf("the account '%s' this certificate was issued for no longer "
                              "exists",
                              signer->user);
    refuse_signer(signer, reply,
                  user == NULL ? "no such account"
                               : "a deleted account's "
                                 "certificate (the name was registered again)",
                  message);
    return NULL;
  }
  g_autoptr(HarkStoreDevice) device =
    s->store->device_get(s->store_handle, signer->key, signer->device_id, &error);
  if (device == NULL && !g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND)) {
    login_reply_store_failure(reply, "read a device", error);
    return NULL;
  }
  if (device == NULL || device->revoked != 0) {
    message =
      g_strdup_printf("this device was removed from the account '%s': log in again", user->name);
    refuse_signer(signer, reply, device == NULL ? "unknown device" : "revoked device", message);
    return NULL;
  }
  return g_steal_pointer(&user);
}

/* ---- the device list ------------------------------------------------------------------------ */

typedef struct {
  LoginSigner *signer;
  char *which; /* remove: a fingerprint or a device name */
} DeviceJob;

static void
device_job_free(gpointer data)
{
  DeviceJob *job = data;
  login_signer_free(job->signer);
  g_free(job->which);
  g_free(job);
}

static DeviceJob *
device_job_new(LoginRequest *req)
{
  DeviceJob *job = g_new0(DeviceJob, 1);
  job->signer = login_signer_new(req->device);
  return job;
}

static char *
iso_time(gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(unix_seconds);
  return time != NULL ? g_date_time_format_iso8601(time) : g_strdup("?");
}

static void
set_time(JsonObject *object, const char *member, gint64 unix_seconds)
{
  g_autofree char *text = iso_time(unix_seconds);
  json_object_set_string_member(object, member, text);
}

static JsonObject *
describe_device(const HarkStoreDevice *device, const LoginSigner *signer)
{
  JsonObject *entry = json_object_new();
  json_object_set_string_member(entry, "id", device->device_id);
  json_object_set_string_member(entry, "name", device->name);
  set_time(entry, "first_seen", device->first_seen);
  set_time(entry, "last_seen", device->last_seen);
  json_object_set_boolean_member(entry, "revoked", device->revoked != 0);
  if (device->revoked != 0)
    set_time(entry, "revoked_at", device->revoked);
  json_object_set_boolean_member(entry, "this", strcmp(device->device_id, signer->device_id) == 0);
  return entry;
}

/* The signer's devices, or NULL with the reply set. */
static GPtrArray *
list_devices(LoginServer *s, const LoginSigner *signer, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *devices = s->store->devices_list(s->store_handle, signer->key, &error);
  if (devices == NULL)
    login_reply_store_failure(reply, "list devices", error);
  return devices;
}

static void
devices_get_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  DeviceJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  g_autoptr(GPtrArray) devices = user != NULL ? list_devices(s, job->signer, reply) : NULL;
  if (devices == NULL)
    return;
  JsonArray *list = json_array_new();
  for (guint i = 0; i < devices->len; i++)
    json_array_add_object_element(list, describe_device(devices->pdata[i], job->signer));
  JsonObject *answer = json_object_new();
  json_object_set_array_member(answer, "devices", list);
  login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

void
login_handle_devices_get(LoginRequest *req)
{
  login_request_run(req, devices_get_work, device_job_new(req), device_job_free);
}

/* The one device that which names: its fingerprint, else the name of exactly one device
 * (not revoked ones, when some are). NULL with the reply set otherwise. */
static const HarkStoreDevice *
pick_device(GPtrArray *devices, const char *which, LoginReply *reply)
{
  const HarkStoreDevice *named = NULL, *named_live = NULL;
  guint n_named = 0, n_live = 0;
  for (guint i = 0; i < devices->len; i++) {
    const HarkStoreDevice *device = devices->pdata[i];
    if (strcmp(device->device_id, which) == 0)
      return device;
    if (strcmp(device->name, which) != 0)
      continue;
    named = device;
    n_named++;
    if (device->revoked == 0) {
      named_live = device;
      n_live++;
    }
  }
  if (n_live == 1)
    return named_live;
  if (n_named == 1)
    return named;
  g_autofree char *shown = login_shown(which);
  if (n_named == 0)
    login_reply_error(reply, "not-found", "no device of this account has the id or name '%s'",
                      shown);
  else
    login_reply_error(reply, "bad-request",
                      "%u devices are called '%s': name the one to "
                      "remove by its id",
                      n_live > 0 ? n_live : n_named, shown);
  return NULL;
}

static void
devices_remove_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  DeviceJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  g_autoptr(GPtrArray) devices = user != NULL ? list_devices(s, job->signer, reply) : NULL;
  const HarkStoreDevice *device = devices != NULL ? pick_device(devices, job->which, reply) : NULL;
  if (device == NULL)
    return;
  g_autoptr(GError) error = NULL;
  gint64 now = login_now_seconds(s);
  g_autoptr(HarkStoreDevice) revoked = NULL;
  if (!s->store->device_revoke(s->store_handle, job->signer->key, device->device_id, now, &error) ||
      (revoked = s->store->device_get(s->store_handle, job->signer->key, device->device_id,
                                      &error)) == NULL) {
    login_reply_store_failure(reply, "revoke a device", error);
    return;
  }
  g_message("'%s' removed the device %.16s... ('%s')", user->name, revoked->device_id,
            revoked->name);
  JsonObject *answer = json_object_new();
  json_object_set_object_member(answer, "removed", describe_device(revoked, job->signer));
  login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

void
login_handle_devices_remove(LoginRequest *req)
{
  static const LoginField fields[] = {
    { "device", LOGIN_FIELD_STRING, TRUE },
    { NULL },
  };
  if (!login_request_parse(req, fields))
    return;
  const char *which = json_object_get_string_member(req->json, "device");
  if (!login_device_id_is_valid(which) && !login_label_is_valid(which)) {
    login_respond_error(req, "bad-request",
                        "device must be a device id (64 hex digits) or a "
                        "device name (1 to %d characters, none of them a control character)",
                        LOGIN_LABEL_MAX);
    return;
  }
  DeviceJob *job = device_job_new(req);
  job->which = g_strdup(which);
  login_request_run(req, devices_remove_work, job, device_job_free);
}
