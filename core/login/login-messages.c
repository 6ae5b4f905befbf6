/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-messages.c: the login client's part of messages held for offline devices
 * (docs/protocol.md, "Messages: held for offline devices"): a user's device certificates
 * to seal for, holding an envelope for a device, fetching this device's held envelopes
 * and acknowledging them. Signed requests through the client's one request path, so they
 * go through the super node's tunnel when the server cannot be reached directly.
 *
 * The server's answers are not trusted beyond what they are: a listed certificate counts
 * only when it verifies against the pinned CA now, names the user asked about and
 * certifies the listed device id; envelopes are handed on as bytes (the message layer
 * verifies and opens them) but only within the size an envelope may have. */
#include "login-impl.h"

#include "hark/certificate.h"

#include <string.h>

#define ENVELOPE_MAX (256 * 1024)
#define HELD_ID_LENGTH 32
#define ACK_MAX 100

void
hark_login_device_certificate_free(HarkLoginDeviceCertificate *certificate)
{
  if (certificate == NULL)
    return;
  g_free(certificate->device_id);
  g_bytes_unref(certificate->certificate);
  g_free(certificate);
}

void
hark_login_held_message_free(HarkLoginHeldMessage *message)
{
  if (message == NULL)
    return;
  g_free(message->id);
  g_bytes_unref(message->envelope);
  g_free(message);
}

static JsonArray *
member_array(JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  return node != NULL && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
}

static JsonObject *
element_object(JsonArray *array, guint index)
{
  JsonNode *node = json_array_get_element(array, index);
  return JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

/* Base64 text as bytes: 1 to max of them, else NULL. */
static GBytes *
decode_base64(const char *text, gsize max)
{
  gsize length = text != NULL ? strlen(text) : 0;
  if (length == 0 || length % 4 != 0 || length / 4 * 3 > max + 2 ||
      strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != length)
    return NULL;
  gsize size = 0;
  guchar *data = g_base64_decode(text, &size);
  if (size == 0 || size > max) {
    g_free(data);
    return NULL;
  }
  return g_bytes_new_take(data, size);
}

static gboolean
is_hex(const char *text, gsize length)
{
  return text != NULL && strlen(text) == length && strspn(text, "0123456789abcdef") == length;
}

static GError *
bad_answer(const char *what)
{
  return g_error_new(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER, "the login server's answer %s",
                     what);
}

/* A task for an op; NULL after failing it with NOT_LOGGED_IN when logged out. */
static GTask *
task_new(HarkLoginClient *client, GCancellable *cancellable, GAsyncReadyCallback callback,
         gpointer user_data, gpointer source_tag)
{
  GTask *task = g_task_new(NULL, cancellable, callback, user_data);
  g_task_set_source_tag(task, source_tag);
  if (client->user != NULL)
    return task;
  g_task_return_error(task, hark_login_not_logged_in_error());
  g_object_unref(task);
  return NULL;
}

/* The op's answer, or TRUE when the task was told the error (or cancelled) instead. */
static gboolean
task_failed(GTask *task, GError *error)
{
  if (g_task_return_error_if_cancelled(task)) {
    g_clear_error(&error);
    return TRUE;
  }
  if (error == NULL)
    return FALSE;
  g_task_return_error(task, error);
  return TRUE;
}

static Op *
message_op_new(HarkLoginClient *client, HarkLoginDone done, GTask *task)
{
  Op *op = hark_login_op_new(client, done, task);
  op->server_words = TRUE; /* quotas, rate limits, refused envelopes: the server's words */
  return op;
}

/* ---- a user's device certificates ------------------------------------------------------- */

/* A device offline since its certificate ran out is still listed (the server lists what it
 * has not revoked and issued within its hold), so messages can be sealed and held for it. */
#define DEVICE_CERTIFICATE_GRACE_S (30 * 24 * 3600)

typedef struct {
  char *ca_pem;
  char *user;
  gint64 now;
} DevicesAsk;

static void
devices_ask_free(DevicesAsk *ask)
{
  g_free(ask->ca_pem);
  g_free(ask->user);
  g_free(ask);
}

/* The entry when its certificate is what it says; NULL (and a line in the log) otherwise. */
static HarkLoginDeviceCertificate *
read_device(const DevicesAsk *ask, JsonObject *entry)
{
  const char *id = hark_login_member_string(entry, "id");
  g_autoptr(GBytes) der = decode_base64(hark_login_member_string(entry, "certificate"), 8192);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) certificate =
    der != NULL && is_hex(id, 64)
      ? hark_certificate_verify_recent(ask->ca_pem, der, ask->now, DEVICE_CERTIFICATE_GRACE_S,
                                       &error)
      : NULL;
  if (certificate == NULL || g_ascii_strcasecmp(certificate->user, ask->user) != 0 ||
      strcmp(certificate->device_id, id) != 0) {
    g_message("the login server listed a device of '%s' whose certificate does not hold: %s",
              ask->user, error != NULL ? error->message : "not that user's or not that device's");
    return NULL;
  }
  HarkLoginDeviceCertificate *device = g_new0(HarkLoginDeviceCertificate, 1);
  device->device_id = g_strdup(id);
  device->certificate = g_steal_pointer(&der);
  return device;
}

static void
devices_answered(JsonObject *result, GError *error, gpointer data)
{
  g_autoptr(GTask) task = data;
  JsonArray *list = error == NULL ? member_array(result, "devices") : NULL;
  if (!task_failed(task, error == NULL && list == NULL ? bad_answer("has no devices") : error)) {
    const DevicesAsk *ask = g_task_get_task_data(task);
    GPtrArray *devices =
      g_ptr_array_new_with_free_func((GDestroyNotify)hark_login_device_certificate_free);
    for (guint i = 0; i < json_array_get_length(list); i++) {
      HarkLoginDeviceCertificate *device = read_device(ask, element_object(list, i));
      if (device != NULL)
        g_ptr_array_add(devices, device);
    }
    g_task_return_pointer(task, devices, (GDestroyNotify)g_ptr_array_unref);
  }
  if (result != NULL)
    json_object_unref(result);
}

void
hark_login_client_device_certificates_async(HarkLoginClient *client, const char *user,
                                            GCancellable *cancellable, GAsyncReadyCallback callback,
                                            gpointer user_data)
{
  GTask *task =
    task_new(client, cancellable, callback, user_data, hark_login_client_device_certificates_async);
  if (task == NULL)
    return;
  if (!hark_login_is_name(user)) {
    g_task_return_new_error(task, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_NAME,
                            "not a user name: letters, digits, '.', '_' or '-'");
    g_object_unref(task);
    return;
  }
  DevicesAsk *ask = g_new0(DevicesAsk, 1);
  ask->ca_pem = g_strdup(client->ca_pem);
  ask->user = g_strdup(user);
  ask->now = hark_login_now_seconds(client);
  g_task_set_task_data(task, ask, (GDestroyNotify)devices_ask_free);
  Op *op = message_op_new(client, devices_answered, task);
  op->buddy_name = g_strdup(user); /* whom an unknown-user refusal is about */
  g_autofree char *path = g_strdup_printf("/v1/users/%s/devices", user);
  hark_login_op_send(op, "GET", path, NULL, TRUE, hark_login_op_answer);
}

GPtrArray *
hark_login_client_device_certificates_finish(GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
  return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- holding an envelope ---------------------------------------------------------------- */

static void
hold_answered(JsonObject *result, GError *error, gpointer data)
{
  g_autoptr(GTask) task = data;
  const char *id = error == NULL ? hark_login_member_string(result, "id") : NULL;
  gint64 expires = 0;
  if (error == NULL &&
      (!is_hex(id, HELD_ID_LENGTH) || !hark_login_member_int(result, "expires", &expires)))
    error = bad_answer("to a held message has no id or expires");
  if (!task_failed(task, error)) {
    gint64 *kept = g_new(gint64, 1);
    *kept = expires;
    g_task_set_task_data(task, kept, g_free);
    g_task_return_pointer(task, g_strdup(id), g_free);
  }
  if (result != NULL)
    json_object_unref(result);
}

void
hark_login_client_hold_message_async(HarkLoginClient *client, const char *device_id,
                                     GBytes *envelope, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task =
    task_new(client, cancellable, callback, user_data, hark_login_client_hold_message_async);
  if (task == NULL)
    return;
  gsize size = 0;
  gconstpointer data = g_bytes_get_data(envelope, &size);
  if (!is_hex(device_id, 64) || size == 0 || size > ENVELOPE_MAX) {
    g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "a held message needs a device id and an envelope of 1 to %d bytes",
                            ENVELOPE_MAX);
    g_object_unref(task);
    return;
  }
  g_autofree char *text = g_base64_encode(data, size);
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "device", device_id);
  json_object_set_string_member(body, "envelope", text);
  Op *op = message_op_new(client, hold_answered, task);
  hark_login_op_send(op, "POST", "/v1/messages", body, TRUE, hark_login_op_answer);
}

char *
hark_login_client_hold_message_finish(GAsyncResult *result, gint64 *expires, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
  char *id = g_task_propagate_pointer(G_TASK(result), error);
  if (id != NULL && expires != NULL)
    *expires = *(gint64 *)g_task_get_task_data(G_TASK(result));
  return id;
}

/* ---- fetching and acknowledging --------------------------------------------------------- */

static HarkLoginHeldMessage *
read_held(JsonObject *entry)
{
  const char *id = hark_login_member_string(entry, "id");
  gint64 held_at = 0;
  g_autoptr(GBytes) envelope =
    decode_base64(hark_login_member_string(entry, "envelope"), ENVELOPE_MAX);
  if (!is_hex(id, HELD_ID_LENGTH) || envelope == NULL ||
      !hark_login_member_int(entry, "held_at", &held_at))
    return NULL;
  HarkLoginHeldMessage *message = g_new0(HarkLoginHeldMessage, 1);
  message->id = g_strdup(id);
  message->envelope = g_steal_pointer(&envelope);
  message->held_at = held_at;
  return message;
}

static void
fetch_answered(JsonObject *result, GError *error, gpointer data)
{
  g_autoptr(GTask) task = data;
  JsonArray *list = error == NULL ? member_array(result, "messages") : NULL;
  JsonNode *more = result != NULL ? json_object_get_member(result, "more") : NULL;
  if (error == NULL &&
      (list == NULL || more == NULL || json_node_get_value_type(more) != G_TYPE_BOOLEAN))
    error = bad_answer("has no messages or more");
  g_autoptr(GPtrArray) messages =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_login_held_message_free);
  for (guint i = 0; error == NULL && i < json_array_get_length(list); i++) {
    HarkLoginHeldMessage *message = read_held(element_object(list, i));
    if (message == NULL)
      error = bad_answer("has a held message without id, envelope or held_at");
    else
      g_ptr_array_add(messages, message);
  }
  if (!task_failed(task, error)) {
    g_task_set_task_data(task, GINT_TO_POINTER(json_node_get_boolean(more)), NULL);
    g_task_return_pointer(task, g_steal_pointer(&messages), (GDestroyNotify)g_ptr_array_unref);
  }
  if (result != NULL)
    json_object_unref(result);
}

void
hark_login_client_fetch_messages_async(HarkLoginClient *client, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task =
    task_new(client, cancellable, callback, user_data, hark_login_client_fetch_messages_async);
  if (task == NULL)
    return;
  Op *op = message_op_new(client, fetch_answered, task);
  hark_login_op_send(op, "GET", "/v1/messages", NULL, TRUE, hark_login_op_answer);
}

GPtrArray *
hark_login_client_fetch_messages_finish(GAsyncResult *result, gboolean *more, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
  GPtrArray *messages = g_task_propagate_pointer(G_TASK(result), error);
  if (messages != NULL && more != NULL)
    *more = GPOINTER_TO_INT(g_task_get_task_data(G_TASK(result)));
  return messages;
}

static void
ack_answered(JsonObject *result, GError *error, gpointer data)
{
  g_autoptr(GTask) task = data;
  gint64 deleted = -1;
  if (error == NULL && (!hark_login_member_int(result, "deleted", &deleted) || deleted < 0))
    error = bad_answer("to an ack has no deleted");
  if (!task_failed(task, error))
    g_task_return_int(task, deleted);
  if (result != NULL)
    json_object_unref(result);
}

void
hark_login_client_ack_messages_async(HarkLoginClient *client, const char *const *ids,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data)
{
  GTask *task =
    task_new(client, cancellable, callback, user_data, hark_login_client_ack_messages_async);
  if (task == NULL)
    return;
  guint n = ids != NULL ? g_strv_length((char **)ids) : 0;
  gboolean valid = n > 0 && n <= ACK_MAX;
  for (guint i = 0; valid && i < n; i++)
    valid = is_hex(ids[i], HELD_ID_LENGTH);
  if (!valid) {
    g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "an ack names 1 to %d held message ids", ACK_MAX);
    g_object_unref(task);
    return;
  }
  JsonArray *array = json_array_new();
  for (guint i = 0; i < n; i++)
    json_array_add_string_element(array, ids[i]);
  JsonObject *body = json_object_new();
  json_object_set_array_member(body, "ids", array);
  Op *op = message_op_new(client, ack_answered, task);
  hark_login_op_send(op, "POST", "/v1/messages/ack", body, TRUE, hark_login_op_answer);
}

gint64
hark_login_client_ack_messages_finish(GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, NULL), -1);
  return g_task_propagate_int(G_TASK(result), error);
}
