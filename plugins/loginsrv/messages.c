/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messages.c: messages held for offline devices, and the device certificates a sender
 * seals for (signed requests; docs/protocol.md, "Messages: held for offline devices").
 *
 *   GET  /v1/users/NAME/devices  the last certificates of NAME's devices
 *   POST /v1/messages            hold an envelope for one device
 *   GET  /v1/messages            the requesting device's held envelopes, oldest first
 *   POST /v1/messages/ack        delete some of them
 *
 * The server sees only envelopes, end to end encrypted and signed; it reads their shape
 * (envelope.c) to refuse holding in another device's name or for a device the envelope is
 * not for, and keeps them at most messages.hold_days, within quotas per sending user (429
 * over-quota) and per recipient device (507 recipient-full). It does not verify the
 * envelope's signature: the recipient does, whatever the server says. A user who blocks
 * the sender is not told apart from anyone: their device list comes back empty, and what
 * is held for them is answered like any hold and dropped. */
#include "loginsrv.h"

#include <string.h>

#include <openssl/rand.h>

#define HELD_ID_BYTES 16

typedef struct {
  LoginSigner *signer;
  char *name; /* devices: the user asked about, as given */
  char *name_key;
  char *device; /* hold: the recipient device */
  GBytes *envelope; /* hold */
  char **ids; /* ack */
} MessageJob;

static void
message_job_free(gpointer data)
{
  MessageJob *job = data;
  login_signer_free(job->signer);
  g_free(job->name);
  g_free(job->name_key);
  g_free(job->device);
  g_clear_pointer(&job->envelope, g_bytes_unref);
  g_strfreev(job->ids);
  g_free(job);
}

static MessageJob *
message_job_new(LoginRequest *req)
{
  MessageJob *job = g_new0(MessageJob, 1);
  job->signer = login_signer_new(req->device);
  return job;
}

/* ---- worker threads ---------------------------------------------------------------------- */

void
login_messages_purge_if_due(LoginServer *s)
{
  gint minute = (gint)(login_now_seconds(s) / 60);
  gint last = g_atomic_int_get(&s->last_purge);
  if ((last != 0 && minute == last) ||
      !g_atomic_int_compare_and_exchange(&s->last_purge, last, minute))
    return;
  gint64 deleted = 0;
  g_autoptr(GError) error = NULL;
  if (!s->store->messages_expire(s->store_handle, login_now_seconds(s), &deleted, &error))
    g_warning("the store failed to delete expired messages: %s", error->message);
  else if (deleted > 0)
    g_message("deleted %" G_GINT64_FORMAT " expired held messages", deleted);
}

gboolean
login_record_certificate(LoginServer *s, const char *name_key, const char *device_id,
                         JsonObject *answer, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  const char *certificate = json_object_get_string_member(answer, "certificate");
  if (s->store->device_set_certificate(s->store_handle, name_key, device_id, certificate,
                                       login_now_seconds(s) + s->certificate_lifetime, &error))
    return TRUE;
  login_reply_store_failure(reply, "record a certificate", error);
  return FALSE;
}

/* The DER of a PEM certificate, in base64: the PEM's own base64, checked and unwrapped. */
static char *
der_base64(const char *pem)
{
  g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_pem(pem, -1, NULL);
  g_autoptr(GByteArray) der = NULL;
  if (certificate != NULL)
    g_object_get(certificate, "certificate", &der, NULL);
  return der != NULL ? g_base64_encode(der->data, der->len) : NULL;
}

static gboolean
key_in(GPtrArray *keys, const char *key)
{
  for (guint i = 0; i < keys->len; i++)
    if (strcmp(keys->pdata[i], key) == 0)
      return TRUE;
  return FALSE;
}

/* Whether name_key blocks the signer; FALSE with the reply set on a failure (not_found:
 * there is no such user). */
static gboolean
blocks_signer(LoginServer *s, const char *name_key, const char *shown, const LoginSigner *signer,
              gboolean *blocked, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) blocks = s->store->blocks_list(s->store_handle, name_key, &error);
  if (blocks == NULL && g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    login_reply_error(reply, "unknown-user", "there is no user '%s'", shown);
  else if (blocks == NULL)
    login_reply_store_failure(reply, "read blocks", error);
  *blocked = blocks != NULL && key_in(blocks, signer->key);
  return blocks != NULL;
}

static JsonObject *
certificates_answer(GPtrArray *certificates)
{
  JsonArray *list = json_array_new();
  for (guint i = 0; i < certificates->len; i++) {
    const HarkStoreCertificate *entry = certificates->pdata[i];
    g_autofree char *der = der_base64(entry->certificate);
    if (der == NULL) {
      g_warning("the stored certificate of device %.16s... is not PEM", entry->device_id);
      continue;
    }
    JsonObject *device = json_object_new();
    json_object_set_string_member(device, "id", entry->device_id);
    json_object_set_string_member(device, "certificate", der);
    json_array_add_object_element(list, device);
  }
  JsonObject *answer = json_object_new();
  json_object_set_array_member(answer, "devices", list);
  return answer;
}

/* A device offline since its certificate ran out is still listed while messages are held
 * for it (at most 30 days, which is what senders accept: core/message): it is the user's
 * until revoked, and a sender seals for it. */
static gint64
certificate_grace(LoginServer *s)
{
  return MIN(s->hold_seconds, 30 * 24 * 3600);
}

static void
devices_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  MessageJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  gboolean blocked = FALSE;
  if (user == NULL || !blocks_signer(s, job->name_key, job->name, job->signer, &blocked, reply))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) certificates =
    blocked ? g_ptr_array_new()
            : s->store->device_certificates(s->store_handle, job->name_key,
                                            login_now_seconds(s) - certificate_grace(s), &error);
  if (certificates == NULL && g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    login_reply_error(reply, "unknown-user", "there is no user '%s'", job->name);
  else if (certificates == NULL)
    login_reply_store_failure(reply, "read certificates", error);
  else
    login_reply_ok(reply, SOUP_STATUS_OK, certificates_answer(certificates));
}

static char *
held_id_new(void)
{
  guint8 bytes[HELD_ID_BYTES];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    return NULL;
  GString *id = g_string_sized_new(2 * HELD_ID_BYTES);
  for (gsize i = 0; i < sizeof bytes; i++)
    g_string_append_printf(id, "%02x", bytes[i]);
  return g_string_free(id, FALSE);
}

static void
reply_hold_error(MessageJob *job, const GError *error, LoginReply *reply)
{
  if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_LIMIT))
    login_reply_error(reply, "over-quota",
                      "you have too many messages waiting for offline devices (%s): wait "
                      "until some are fetched or expire",
                      error->message);
  else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_FULL))
    login_reply_error(reply, "recipient-full",
                      "the device %.16s... has too many messages waiting (%s): try again "
                      "once it has fetched them",
                      job->device, error->message);
  else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    login_reply_error(reply, "unknown-device", "no current device has the id %s", job->device);
  else
    login_reply_store_failure(reply, "hold a message", error);
}

static void
hold_answer(LoginReply *reply, const char *id, gint64 expires)
{
  JsonObject *answer = json_object_new();
  json_object_set_string_member(answer, "id", id);
  json_object_set_int_member(answer, "expires", expires);
  login_reply_ok(reply, SOUP_STATUS_CREATED, answer);
}

static void
hold_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  MessageJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  if (user == NULL)
    return;
  login_messages_purge_if_due(s);
  g_autoptr(GError) error = NULL;
  g_autofree char *user_key = NULL;
  g_autoptr(HarkStoreDevice) device =
    s->store->device_find(s->store_handle, job->device, &user_key, &error);
  gboolean blocked = FALSE;
  if (device == NULL) {
    reply_hold_error(job, error, reply);
    return;
  }
  if (!blocks_signer(s, user_key, user_key, job->signer, &blocked, reply))
    return;
  gint64 now = login_now_seconds(s);
  g_autofree char *id = held_id_new();
  if (id == NULL) {
    login_reply_error(reply, "internal", "cannot make a message id; the server log says why");
    g_warning("RAND_bytes failed: no message id");
    return;
  }
  /* Answered like any hold, and not kept: the sender cannot tell that they are blocked. */
  if (blocked) {
    hold_answer(reply, id, now + s->hold_seconds);
    return;
  }
  g_autoptr(HarkStoreMessage) message =
    hark_store_message_new(id, job->device, user_key, job->signer->key, job->signer->device_id,
                           job->envelope, now, now + s->hold_seconds);
  if (!s->store->message_hold(s->store_handle, message, &s->hold_limits, &error)) {
    if (!g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND))
      g_message("refused to hold a message of '%s' for device %.16s...: %s", job->signer->user,
                job->device, error->message);
    reply_hold_error(job, error, reply);
    return;
  }
  hold_answer(reply, id, message->expires);
}

/* The page: at most LOGIN_MESSAGES_PAGE_BYTES of envelopes (one at least). */
static JsonArray *
page_of(GPtrArray *messages, gboolean *more)
{
  JsonArray *list = json_array_new();
  gsize bytes = 0;
  for (guint i = 0; i < messages->len; i++) {
    const HarkStoreMessage *message = messages->pdata[i];
    gsize size = 0;
    gconstpointer data = g_bytes_get_data(message->envelope, &size);
    if (i > 0 && bytes + size > LOGIN_MESSAGES_PAGE_BYTES) {
      *more = TRUE;
      break;
    }
    bytes += size;
    g_autofree char *envelope = g_base64_encode(data, size);
    JsonObject *entry = json_object_new();
    json_object_set_string_member(entry, "id", message->id);
    json_object_set_string_member(entry, "envelope", envelope);
    json_object_set_int_member(entry, "held_at", message->held_at);
    json_array_add_object_element(list, entry);
  }
  return list;
}

static void
fetch_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  MessageJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  if (user == NULL)
    return;
  login_messages_purge_if_due(s);
  gboolean more = FALSE;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) messages =
    s->store->messages_list(s->store_handle, job->signer->device_id, login_now_seconds(s),
                            LOGIN_MESSAGES_PAGE, &more, &error);
  if (messages == NULL) {
    login_reply_store_failure(reply, "list held messages", error);
    return;
  }
  JsonArray *list = page_of(messages, &more);
  JsonObject *answer = json_object_new();
  json_object_set_array_member(answer, "messages", list);
  json_object_set_boolean_member(answer, "more", more);
  login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

static void
ack_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  MessageJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  if (user == NULL)
    return;
  gint64 deleted = 0;
  g_autoptr(GError) error = NULL;
  if (!s->store->messages_delete(s->store_handle, job->signer->device_id,
                                 (const char *const *)job->ids, g_strv_length(job->ids), &deleted,
                                 &error)) {
    login_reply_store_failure(reply, "delete held messages", error);
    return;
  }
  JsonObject *answer = json_object_new();
  json_object_set_int_member(answer, "deleted", deleted);
  login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

/* ---- the main context ---------------------------------------------------------------------- */

void
login_handle_user_devices(LoginRequest *req)
{
  g_autofree char *problem = login_name_problem(req->tail);
  if (problem != NULL) {
    login_respond_error(req, "bad-name", "%s", problem);
    return;
  }
  /* A look-up like GET /v1/users/NAME, and limited alike. */
  if (login_request_refuse_if_looking_up_too_much(req))
    return;
  MessageJob *job = message_job_new(req);
  job->name = g_strdup(req->tail);
  job->name_key = login_name_key(req->tail);
  login_request_run(req, devices_work, job, message_job_free);
}

/* The envelope of a hold, checked against the signer and the device; NULL after
 * answering otherwise. */
static GBytes *
hold_envelope(LoginRequest *req, const char *device)
{
  const char *text = json_object_get_string_member(req->json, "envelope");
  g_autoptr(GBytes) envelope = login_base64_decode_strict(text, LOGIN_ENVELOPE_MAX);
  g_autofree char *problem = NULL;
  g_autoptr(LoginEnvelopeShape) shape =
    envelope != NULL ? login_envelope_shape_read(envelope, &problem) : NULL;
  if (envelope == NULL)
    login_respond_error(req, "bad-envelope", "envelope must be canonical base64 of 1 to %d bytes",
                        LOGIN_ENVELOPE_MAX);
  else if (shape == NULL)
    login_respond_error(req, "bad-envelope", "%s", problem);
  else if (strcmp(shape->sender_device, req->device->device_id) != 0)
    login_respond_error(req, "not-sender",
                        "the envelope was sealed by another device (%.16s...), not by the "
                        "one that signed this request",
                        shape->sender_device);
  else if (!login_envelope_shape_names(shape, device))
    login_respond_error(req, "not-recipient", "the envelope is not for the device %s", device);
  else
    return g_steal_pointer(&envelope);
  return NULL;
}

void
login_handle_messages_hold(LoginRequest *req)
{
  static const LoginField fields[] = {
    { "device", LOGIN_FIELD_STRING, TRUE },
    { "envelope", LOGIN_FIELD_STRING, TRUE },
    { NULL },
  };
  if (!login_request_parse(req, fields))
    return;
  const char *device = json_object_get_string_member(req->json, "device");
  if (!login_device_id_is_valid(device)) {
    login_respond_error(req, "bad-request",
                        "device must be a device id (64 lower-case hex digits)");
    return;
  }
  g_autoptr(GBytes) envelope = hold_envelope(req, device);
  if (envelope == NULL)
    return;
  g_autofree char *key = login_name_key(req->device->user);
  /* Every hold counts, kept or not: a flood costs the flooder, not the store. */
  if (login_request_refuse_if_holding_too_much(req, key))
    return;
  MessageJob *job = message_job_new(req);
  job->device = g_strdup(device);
  job->envelope = g_steal_pointer(&envelope);
  login_request_run(req, hold_work, job, message_job_free);
}

void
login_handle_messages_get(LoginRequest *req)
{
  login_request_run(req, fetch_work, message_job_new(req), message_job_free);
}

static gboolean
is_held_id(const char *text)
{
  return strlen(text) == 2 * HELD_ID_BYTES && strspn(text, "0123456789abcdef") == 2 * HELD_ID_BYTES;
}

void
login_handle_messages_ack(LoginRequest *req)
{
  static const LoginField fields[] = {
    { "ids", LOGIN_FIELD_STRINGS, TRUE },
    { NULL },
  };
  if (!login_request_parse(req, fields))
    return;
  JsonArray *ids = json_object_get_array_member(req->json, "ids");
  guint n = json_array_get_length(ids);
  if (n == 0 || n > LOGIN_MESSAGES_PAGE) {
    login_respond_error(req, "bad-request", "ids holds 1 to %d message ids", LOGIN_MESSAGES_PAGE);
    return;
  }
  MessageJob *job = message_job_new(req);
  job->ids = g_new0(char *, n + 1);
  for (guint i = 0; i < n; i++) {
    const char *id = json_array_get_string_element(ids, i);
    if (!is_held_id(id)) {
      login_respond_error(req, "bad-request",
                          "ids[%u] is not a message id (%d lower-case hex digits)", i,
                          2 * HELD_ID_BYTES);
      message_job_free(job);
      return;
    }
    job->ids[i] = g_strdup(id);
  }
  login_request_run(req, ack_work, job, message_job_free);
}
