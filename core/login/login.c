/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login.c: the node's client of the login server (login.h; the HTTP contract is in
 * docs/protocol.md, "Login server API").
 *
 * One SoupSession talks HTTPS to login.url and trusts only the CA in login.ca. An
 * operation (Op) is a small state machine on the main loop: it sends one request at a
 * time and its step function decides what the answer means (a buddy change that meets a
 * `conflict` fetches the list and tries once more). What the device is given -- its
 * certificate and the buddy list -- is checked against the pinned CA and this device's
 * key, then kept in the state directory (0600) so that a restarted node is logged in
 * without the password, and the certificate is renewed before it expires.
 *
 * This file holds the client, logging in and out, certificates and renewal; requests
 * are in login-requests.c, what answers say in login-answer.c, the buddy list in
 * login-buddies.c, the way through the super node in login-tunnel.c (login-impl.h: what
 * they share). */
#include "login-impl.h"

#include "hark/certificate.h"
#include "hark/version.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------------------- */

/* The node's clock (a test moves it: docs/testing.md "Clocks"). */
gint64
hark_login_now_seconds(HarkLoginClient *client)
{
  return hark_clock_now_seconds(hark_context_get_clock(client->ctx));
}

static char *
iso_time(gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(unix_seconds);
  return time != NULL ? g_date_time_format_iso8601(time) : g_strdup("?");
}

/* Passwords do not linger in freed memory. */
void
hark_login_wipe_free(char *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero(secret, strlen(secret));
  g_free(secret);
}

char *
hark_login_json_text(JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(node, object);
  return json_to_string(node, FALSE);
}

/* A request body; it may hold a password, so it is wiped when libsoup lets go of it. */
GBytes *
hark_login_json_body(JsonObject *object)
{
  char *text = hark_login_json_text(object);
  return g_bytes_new_with_free_func(text, strlen(text), (GDestroyNotify)hark_login_wipe_free, text);
}

GError *
hark_login_not_logged_in_error(void)
{
  return g_error_new_literal(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_NOT_LOGGED_IN,
                             "not logged in (use 'login USER')");
}

/* ---- files in the state directory ------------------------------------------------- */

gboolean
hark_login_save_private(const char *path, const char *text, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
    return TRUE;
  g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_IO, "cannot save %s: %s", path,
              local->message);
  return FALSE;
}

static void
remove_file(const char *path)
{
  if (g_unlink(path) != 0 && errno != ENOENT)
    g_warning("cannot remove %s: %s", path, g_strerror(errno));
}

/* ---- certificates ----------------------------------------------------------------- */

static GBytes *
pem_to_der(const char *pem, GError **error)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x509 = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  unsigned char *der = NULL;
  int length = x509 != NULL ? i2d_X509(x509, &der) : -1;
  X509_free(x509);
  if (length <= 0) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the certificate is not a PEM X.509 certificate");
    return NULL;
  }
  GBytes *bytes = g_bytes_new(der, (gsize)length);
  OPENSSL_free(der);
  return bytes;
}

/* A certificate is accepted only when the pinned CA issued it, it is valid now, it binds
 * this device's key and (when user is given) it is for that user. */
static HarkDeviceCertificate *
check_certificate(HarkLoginClient *client, const char *pem, const char *user, GError **error)
{
  g_autoptr(GBytes) bytes = g_bytes_new(pem, strlen(pem));
  g_autoptr(GError) local = NULL;
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(client->ca_pem, bytes, hark_login_now_seconds(client), &local);
  if (cert == NULL) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                "the device certificate does not check out against the CA in login.ca "
                "(%s): %s",
                client->ca_path, local->message);
    return NULL;
  }
  g_autoptr(GBytes) key = hark_identity_get_public_key(client->identity);
  if (!g_bytes_equal(cert->public_key, key) ||
      g_strcmp0(cert->device_id, hark_identity_get_fingerprint(client->identity)) != 0) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the device certificate does not bind this device's key");
    return NULL;
  }
  if (user != NULL && g_ascii_strcasecmp(cert->user, user) != 0) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                "the device certificate is for user '%s', not '%s'", cert->user, user);
    return NULL;
  }
  return g_steal_pointer(&cert);
}

/* Checks pem (see check_certificate), saves it and makes it this device's. */
static gboolean
take_certificate(HarkLoginClient *client, const char *pem, const char *user, gboolean save,
                 GError **error)
{
  g_autoptr(HarkDeviceCertificate) cert = check_certificate(client, pem, user, error);
  if (cert == NULL)
    return FALSE;
  g_autoptr(GBytes) der = pem_to_der(pem, error);
  if (der == NULL || (save && !hark_login_save_private(client->certificate_path, pem, error)))
    return FALSE;
  if (g_strcmp0(client->user, cert->user) != 0) {
    g_free(client->user);
    client->user = g_strdup(cert->user);
  }
  g_free(client->device_id);
  client->device_id = g_strdup(cert->device_id);
  g_clear_pointer(&client->certificate_der, g_bytes_unref);
  client->certificate_der = g_steal_pointer(&der);
  client->expires = cert->not_after;
  if (client->changed != NULL)
    client->changed(client->changed_data);
  return TRUE;
}

/* ---- answers ---------------------------------------------------------------------- */

static JsonArray *
buddies_or_empty(HarkLoginClient *client)
{
  return client->buddies != NULL ? json_array_ref(client->buddies) : json_array_new();
}

static void
set_revision(JsonObject *object, const char *name, gint64 revision)
{
  if (revision >= 0)
    json_object_set_int_member(object, name, revision);
  else
    json_object_set_null_member(object, name);
}

/* Who is logged in, the way login, whoami and the events say it. */
static JsonObject *
describe_login(HarkLoginClient *client)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "user", client->user);
  json_object_set_string_member(o, "device", client->device);
  g_autofree char *expires = iso_time(client->expires);
  json_object_set_string_member(o, "expires", expires);
  return o;
}

static JsonObject *
login_result(HarkLoginClient *client)
{
  JsonObject *o = describe_login(client);
  set_revision(o, "revision", client->revision);
  json_object_set_array_member(o, "buddies", buddies_or_empty(client));
  return o;
}

/* sync_error: why the list could not be fetched (then it is the saved one), or NULL. */
JsonObject *
hark_login_buddies_result(HarkLoginClient *client, const char *sync_error)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "user", client->user);
  set_revision(o, "revision", client->revision);
  json_object_set_array_member(o, "buddies", buddies_or_empty(client));
  json_object_set_boolean_member(o, "synced", sync_error == NULL);
  if (sync_error != NULL)
    json_object_set_string_member(o, "sync_error", sync_error);
  return o;
}

/* ---- logging in and out ----------------------------------------------------------- */

static void schedule_renewal(HarkLoginClient *client, gint64 delay);

static gint64
renewal_delay(HarkLoginClient *client)
{
  /* renew_margin before the expiry, but not in the first half of what is left: a margin
   * longer than the server's certificate lifetime must not renew in a loop. */
  gint64 remaining = client->expires - hark_login_now_seconds(client);
  return MAX(remaining - client->renew_margin, remaining / 2);
}

static void
cancel_renewal(HarkLoginClient *client)
{
  if (client->renew_source != 0) {
    GSource *source = g_main_context_find_source_by_id(hark_context_main_context(client->ctx),
                                                       client->renew_source);
    if (source != NULL)
      g_source_destroy(source);
    client->renew_source = 0;
  }
  client->retry_seconds = RETRY_FIRST_SECONDS;
}

static void
clear_login(HarkLoginClient *client)
{
  g_clear_pointer(&client->user, g_free);
  g_clear_pointer(&client->device_id, g_free);
  g_clear_pointer(&client->certificate_der, g_bytes_unref);
  g_clear_pointer(&client->buddies, json_array_unref);
  client->expires = 0;
  client->revision = -1;
  hark_login_forget_contacts(client);
}

/* Logged out: this device forgets the certificate and the list. reason is for the event
 * and the log. */
static void
forget_login(HarkLoginClient *client, const char *reason)
{
  if (client->user == NULL)
    return;
  g_autofree char *user = g_strdup(client->user);
  remove_file(client->certificate_path);
  remove_file(client->buddies_path);
  cancel_renewal(client);
  clear_login(client);
  client->generation++;
  g_message("logged out of %s as %s: %s", client->url, user, reason);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", user);
  json_object_set_string_member(data, "reason", reason);
  hark_context_emit(client->ctx, "logged-out", data);
  if (client->changed != NULL)
    client->changed(client->changed_data);
}

/* A login answer {"user", "certificate", "expires", "buddies", ...} becomes this
 * device's login, saved, with its renewal scheduled. */
static gboolean
take_login(HarkLoginClient *client, const char *user, JsonObject *answer, GError **error)
{
  /* Everything is checked before anything changes: a bad answer leaves the device as
   * it was. */
  const char *pem = NULL;
  gint64 revision;
  g_autoptr(JsonArray) buddies = hark_login_read_login(answer, &pem, &revision, error);
  g_autofree char *previous_user = g_strdup(client->user);
  if (buddies == NULL || !take_certificate(client, pem, user, TRUE, error))
    return FALSE;
  /* Another user's list must not survive a login as someone else. */
  if (g_strcmp0(previous_user, client->user) != 0) {
    g_clear_pointer(&client->buddies, json_array_unref);
    client->revision = -1;
    hark_login_forget_contacts(client);
  }
  client->generation++;
  cancel_renewal(client);
  schedule_renewal(client, renewal_delay(client));
  g_autofree char *expires = iso_time(client->expires);
  g_message("logged in to %s as %s until %s", client->url, client->user, expires);
  hark_context_emit(client->ctx, "logged-in", describe_login(client));
  return hark_login_install_buddies(client, revision, g_steal_pointer(&buddies), error);
}

static void
login_answered(Op *op, JsonObject *answer, GError *error)
{
  if (error == NULL)
    take_login(op->client, op->user, answer, &error);
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  HarkLoginClient *client = op->client;
  hark_login_op_finish(op, login_result(client), NULL);
  /* Requests made while this device was logged out are announced now. */
  hark_login_client_sync_contacts(client);
}

JsonObject *
hark_login_credentials(const char *user, const char *password)
{
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "user", user);
  json_object_set_string_member(body, "password", password);
  return body;
}

/* The nonce came: the login proper, with the proof that this device holds its key (a
 * signature over the nonce, the user and the key), so that nobody gets a certificate for
 * a key that is not theirs. */
static void
nonce_received(Op *op, JsonObject *answer, GError *error)
{
  HarkLoginClient *client = op->client;
  const char *nonce = error == NULL ? hark_login_read_nonce(answer, &error) : NULL;
  g_autofree char *proof =
    error == NULL ? hark_login_proof_sign(client->identity, nonce, op->user, &error) : NULL;
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  JsonObject *body = hark_login_credentials(op->user, op->password);
  g_clear_pointer(&op->password, hark_login_wipe_free);
  json_object_set_string_member(body, "device", client->device);
  g_autofree char *public_key = hark_identity_get_public_pem(client->identity);
  json_object_set_string_member(body, "public_key", public_key);
  json_object_set_string_member(body, "nonce", nonce);
  json_object_set_string_member(body, "proof", proof);
  hark_login_op_send(op, "POST", "/v1/login", body, FALSE, login_answered);
}

void
hark_login_client_login(HarkLoginClient *client, const char *user, const char *password,
                        HarkLoginDone done, gpointer user_data)
{
  Op *op = hark_login_op_new(client, done, user_data);
  g_free(op->user);
  op->user = g_strdup(user);
  op->password = g_strdup(password);
  hark_login_op_send(op, "GET", "/v1/nonce", NULL, FALSE, nonce_received);
}

static void
registered(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  const char *name = hark_login_member_string(answer, "user");
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "registered", name != NULL ? name : op->user);
  hark_login_op_finish(op, result, NULL);
}

void
hark_login_client_register(HarkLoginClient *client, const char *user, const char *password,
                           HarkLoginDone done, gpointer user_data)
{
  Op *op = hark_login_op_new(client, done, user_data);
  g_free(op->user);
  op->user = g_strdup(user);
  hark_login_op_send(op, "POST", "/v1/register", hark_login_credentials(user, password), FALSE,
                     registered);
}

void
hark_login_client_logout(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "logged_out", client->user);
  forget_login(client, "logged out");
  done(result, NULL, user_data);
}

/* The server's answer as the op's result ({"revoked"}, {"devices"}, ...). */
void
hark_login_op_answer(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL)
    hark_login_op_fail(op, error);
  else
    hark_login_op_finish(op, json_object_ref(answer), NULL);
}

void
hark_login_client_change_password(HarkLoginClient *client, const char *old_password,
                                  const char *new_password, gboolean revoke_others,
                                  HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  Op *op = hark_login_op_new(client, done, user_data);
  JsonObject *body = hark_login_credentials(client->user, old_password);
  json_object_set_string_member(body, "new_password", new_password);
  if (revoke_others) {
    json_object_set_boolean_member(body, "revoke_others", TRUE);
    json_object_set_string_member(body, "keep_device", client->device_id);
  }
  hark_login_op_send(op, "POST", "/v1/password", body, FALSE, hark_login_op_answer);
}

char **
hark_login_client_buddy_names(HarkLoginClient *client)
{
  GPtrArray *names = g_ptr_array_new();
  for (guint i = 0; client->buddies != NULL && i < json_array_get_length(client->buddies); i++) {
    const char *name =
      hark_login_member_string(json_array_get_object_element(client->buddies, i), "name");
    if (name != NULL)
      g_ptr_array_add(names, g_ascii_strdown(name, -1));
  }
  g_ptr_array_add(names, NULL);
  return (char **)g_ptr_array_free(names, FALSE);
}

/* The public directory endpoints (no signature, no login needed). name is checked by the
 * caller (a user name's characters need no escaping in a path or a query). */
void
hark_login_client_devices(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  hark_login_op_send(hark_login_op_new(client, done, user_data), "GET", "/v1/devices", NULL, TRUE,
                     hark_login_op_answer);
}

static void
device_removed(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  HarkLoginClient *client = op->client;
  const char *removed = hark_login_member_string(hark_login_member_object(answer, "removed"), "id");
  /* Its certificate is worth nothing now: do not wait for a refused renewal. */
  if (!hark_login_op_is_stale(op) && g_strcmp0(removed, client->device_id) == 0)
    forget_login(client, "this device was removed from the account");
  hark_login_op_finish(op, json_object_ref(answer), NULL);
}

void
hark_login_client_remove_device(HarkLoginClient *client, const char *which, HarkLoginDone done,
                                gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "device", which);
  hark_login_op_send(hark_login_op_new(client, done, user_data), "POST", "/v1/devices/remove", body,
                     TRUE, device_removed);
}

static void
account_deleted(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  HarkLoginClient *client = op->client;
  if (client->user != NULL && g_ascii_strcasecmp(client->user, op->user) == 0)
    forget_login(client, "account deleted");
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "deleted", op->user);
  hark_login_op_finish(op, result, NULL);
}

void
hark_login_client_delete_account(HarkLoginClient *client, const char *password, HarkLoginDone done,
                                 gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  Op *op = hark_login_op_new(client, done, user_data);
  hark_login_op_send(op, "POST", "/v1/delete", hark_login_credentials(client->user, password),
                     FALSE, account_deleted);
}

void
hark_login_client_whoami(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  JsonObject *result = describe_login(client);
  json_object_set_string_member(result, "device_id", client->device_id);
  json_object_set_string_member(result, "server", client->url);
  done(result, NULL, user_data);
}

/* ---- renewal and background sync -------------------------------------------------- */

/* Refusals that renewing or syncing again will not cure: the login is over. */
static gboolean
ends_login(const GError *error)
{
  return g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNAUTHENTICATED) ||
         g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNKNOWN_USER);
}

static void
retry_renewal(HarkLoginClient *client, const GError *error)
{
  gint64 remaining = client->expires - hark_login_now_seconds(client);
  if (remaining <= 0) {
    g_autofree char *reason =
      g_strdup_printf("the certificate expired and could not be renewed: %s", error->message);
    forget_login(client, reason);
    return;
  }
  gint64 delay = MIN((gint64)client->retry_seconds, remaining);
  g_message("renewing the certificate failed (%s); trying again in %" G_GINT64_FORMAT " s",
            error->message, delay);
  guint next = MIN(client->retry_seconds * 2, RETRY_MAX_SECONDS);
  schedule_renewal(client, delay);
  client->retry_seconds = next;
}

/* The end of a renewal (success was handled by its step). */
static void
renewal_done(JsonObject *result, GError *error, gpointer data)
{
  HarkLoginClient *client = data;
  if (result != NULL)
    json_object_unref(result);
  if (error == NULL)
    return;
  /* Cancelled: the client is gone, or the login it was for is over. */
  if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    if (ends_login(error))
      forget_login(client, error->message);
    else
      retry_renewal(client, error);
  }
  g_error_free(error);
}

static void
renewed(Op *op, JsonObject *answer, GError *error)
{
  HarkLoginClient *client = op->client;
  if (error == NULL && hark_login_op_is_stale(op))
    error = hark_login_stale_error();
  if (error == NULL) {
    const char *pem = hark_login_read_renewal(answer, &error);
    if (pem != NULL)
      take_certificate(client, pem, client->user, TRUE, &error);
  }
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  cancel_renewal(client);
  schedule_renewal(client, renewal_delay(client));
  g_autofree char *expires = iso_time(client->expires);
  g_message("certificate renewed until %s", expires);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", client->user);
  json_object_set_string_member(data, "expires", expires);
  hark_context_emit(client->ctx, "certificate-renewed", data);
  hark_login_op_finish(op, json_object_new(), NULL);
  /* Renewals are the devices' regular contact with the server: requests made or accepted
   * elsewhere meanwhile come with them. */
  hark_login_client_sync_contacts(client);
}

static gboolean
renewal_due(gpointer data)
{
  HarkLoginClient *client = data;
  client->renew_source = 0;
  Op *op = hark_login_op_new(client, renewal_done, client);
  hark_login_op_send(op, "POST", "/v1/renew", json_object_new(), TRUE, renewed);
  return G_SOURCE_REMOVE;
}

static void
schedule_renewal(HarkLoginClient *client, gint64 delay)
{
  client->renew_source = hark_clock_add_seconds(
    hark_context_get_clock(client->ctx), (guint)CLAMP(delay, 1, G_MAXINT32), renewal_due, client);
}

/* A node that starts logged in fetches the list in the background: another device may
 * have changed it while this one was off. */
static void
background_sync_done(JsonObject *result, GError *error, gpointer data)
{
  HarkLoginClient *client = data;
  if (result != NULL) {
    const char *offline = hark_login_member_string(result, "sync_error");
    if (offline != NULL)
      g_message("could not sync the buddy list: %s", offline);
    json_object_unref(result);
  }
  if (error == NULL)
    return;
  if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    if (ends_login(error))
      forget_login(client, error->message);
    else
      g_message("could not sync the buddy list: %s", error->message);
  }
  g_error_free(error);
}

/* ---- the client ------------------------------------------------------------------- */

/* A saved certificate that is still valid and binds this device logs the node in. */
static void
load_saved_login(HarkLoginClient *client)
{
  g_autofree char *pem = NULL;
  g_autoptr(GError) error = NULL;
  if (!g_file_get_contents(client->certificate_path, &pem, NULL, NULL))
    return;
  if (!take_certificate(client, pem, NULL, FALSE, &error)) {
    g_message("the saved certificate %s cannot be used (%s): log in again",
              client->certificate_path, error->message);
    remove_file(client->certificate_path);
    remove_file(client->buddies_path);
    clear_login(client);
    return;
  }
  hark_login_load_buddies(client);
  schedule_renewal(client, renewal_delay(client));
  g_autofree char *expires = iso_time(client->expires);
  g_message("logged in to %s as %s until %s (saved certificate)", client->url, client->user,
            expires);
}

void
hark_login_client_sync(HarkLoginClient *client)
{
  if (client->user == NULL)
    return;
  hark_login_fetch_buddies(hark_login_op_new(client, background_sync_done, client),
                           hark_login_buddies_fetched);
  hark_login_client_sync_contacts(client);
}

static SoupSession *
new_session(GTlsDatabase *database)
{
  SoupSession *session =
    soup_session_new_with_options("tls-database", database, "timeout", REQUEST_TIMEOUT_SECONDS,
                                  "idle-timeout", IDLE_CONNECTION_SECONDS, "user-agent",
                                  "hark/" HARK_VERSION, NULL);
  /* Direct connections unless a tunnel says otherwise: not the system's proxy settings,
   * which would send the password's connection somewhere nobody configured for it. */
  soup_session_set_proxy_resolver(session, NULL);
  return session;
}

HarkLoginClient *
hark_login_client_new(HarkContext *ctx, const HarkConfig *config, HarkIdentity *identity,
                      GError **error)
{
  g_return_val_if_fail(config->login_url != NULL && config->login_ca != NULL, NULL);
  g_autofree char *ca_pem = NULL;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents(config->login_ca, &ca_pem, NULL, &local)) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_IO,
                "login.ca: cannot read the login server's CA certificate: %s", local->message);
    return NULL;
  }
  g_autoptr(GTlsCertificate) ca = g_tls_certificate_new_from_pem(ca_pem, -1, &local);
  if (ca == NULL) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_IO,
                "login.ca: %s holds no usable CA certificate: %s", config->login_ca,
                local->message);
    return NULL;
  }

  HarkLoginClient *client = g_new0(HarkLoginClient, 1);
  client->ctx = ctx;
  client->identity = identity;
  client->url = g_strdup(config->login_url);
  client->base = g_strdup(config->login_url);
  if (g_str_has_suffix(client->base, "/"))
    client->base[strlen(client->base) - 1] = '\0';
  client->ca_path = g_strdup(config->login_ca);
  client->ca_pem = g_steal_pointer(&ca_pem);
  client->device =
    g_strdup(config->login_device != NULL ? config->login_device : config->node_name);
  client->renew_margin = config->login_renew_margin;
  client->certificate_path = g_build_filename(config->state_dir, CERTIFICATE_FILE, NULL);
  client->buddies_path = g_build_filename(config->state_dir, BUDDIES_FILE, NULL);
  /* Only this CA, and only its server certificate: never the system's store, which
   * trusts far more than one server, nor a device certificate of the same CA. */
  client->trust = hark_login_trust_new(client->ca_pem);
  client->session = new_session(client->trust);
  client->cancellable = g_cancellable_new();
  client->ops = g_hash_table_new(NULL, NULL);
  client->requests_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  client->revision = -1;
  client->retry_seconds = RETRY_FIRST_SECONDS;
  load_saved_login(client);
  return client;
}

const char *
hark_login_client_ca_pem(HarkLoginClient *client)
{
  return client->ca_pem;
}

GBytes *
hark_login_client_certificate_der(HarkLoginClient *client)
{
  return client->user != NULL ? client->certificate_der : NULL;
}

void
hark_login_client_set_changed_handler(HarkLoginClient *client, HarkLoginChanged changed,
                                      gpointer user_data)
{
  client->changed = changed;
  client->changed_data = user_data;
}

void
hark_login_client_set_buddy_hooks(HarkLoginClient *client, const HarkLoginBuddyHooks *hooks,
                                  gpointer data)
{
  client->buddy_hooks = hooks;
  client->buddy_hooks_data = data;
}

void
hark_login_client_describe_buddies(HarkLoginClient *client, JsonObject *answer)
{
  if (client->buddy_hooks != NULL && client->buddy_hooks->describe != NULL && answer != NULL)
    client->buddy_hooks->describe(client->buddy_hooks_data, answer);
}

JsonObject *
hark_login_client_snapshot(HarkLoginClient *client)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "server", client->url);
  json_object_set_string_member(o, "path", client->via_tunnel ? "super node" : "direct");
  if (client->user == NULL) {
    json_object_set_null_member(o, "user");
    return o;
  }
  json_object_set_string_member(o, "user", client->user);
  json_object_set_string_member(o, "device", client->device);
  g_autofree char *expires = iso_time(client->expires);
  json_object_set_string_member(o, "expires", expires);
  set_revision(o, "buddies_revision", client->revision);
  return o;
}

void
hark_login_client_free(HarkLoginClient *client)
{
  if (client == NULL)
    return;
  g_cancellable_cancel(client->cancellable);
  cancel_renewal(client);
  /* Answer what is in flight now. Each op stays allocated until libsoup calls back (with
   * "cancelled"), and then only frees itself, since its client is gone. */
  GList *ops = g_hash_table_get_keys(client->ops);
  g_hash_table_remove_all(client->ops);
  for (GList *l = ops; l != NULL; l = l->next) {
    Op *op = l->data;
    op->client = NULL;
    g_clear_handle_id(&op->patience_source, g_source_remove);
    if (op->attempt != NULL)
      g_cancellable_cancel(op->attempt);
    op->done(NULL, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "the node is stopping"),
             op->done_data);
  }
  g_list_free(ops);
  g_hash_table_unref(client->ops);
  g_object_unref(client->session);
  g_object_unref(client->trust);
  g_object_unref(client->cancellable);
  g_clear_object(&client->tunnel);
  clear_login(client);
  g_hash_table_unref(client->requests_seen);
  g_free(client->requests_shown);
  g_free(client->url);
  g_free(client->base);
  g_free(client->ca_path);
  g_free(client->ca_pem);
  g_free(client->device);
  g_free(client->certificate_path);
  g_free(client->buddies_path);
  g_free(client);
}
