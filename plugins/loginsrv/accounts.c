/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* accounts.c: the account endpoints: register, login, renew, password, delete, users,
 * version (docs/protocol.md).
 *
 * Each handler checks its input on the main context (cheap, and a refusal changes
 * nothing), then runs a job whose work function (a worker thread) does the store calls
 * and the password hashing. Failed password checks count per source, per account and
 * source, and per account, in memory (http.c, ratelimit.c); the store keeps the count of
 * an account's failures in a row. An unknown user and a wrong password get the same
 * answer (wrong-credentials) after the same work: an unknown user's password is checked
 * against a dummy hash of the server's cost, so neither the code nor the time tells
 * whether an account exists. */
#include "loginsrv.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

typedef struct {
  char *name; /* as given */
  char *key; /* canonical */
  char *password; /* cleansed when freed */
  char *new_password; /* cleansed when freed */
  char *device; /* login: the device's name */
  char *public_key; /* login, renew: PEM */
  char *device_id; /* login: the key's fingerprint */
  char *prefix_key; /* users: the prefix, canonical */
  guint limit;
  LoginSigner *signer; /* renew: who signed */
  gboolean revoke_others; /* password: revoke every device but keep_device */
  char *keep_device; /* password: a device id, or NULL */
} AccountJob;

static void
account_job_free(gpointer data)
{
  AccountJob *job = data;
  g_free(job->name);
  g_free(job->key);
  login_secret_free(job->password);
  login_secret_free(job->new_password);
  g_free(job->device);
  g_free(job->public_key);
  g_free(job->device_id);
  g_free(job->prefix_key);
  login_signer_free(job->signer);
  g_free(job->keep_device);
  g_free(job);
}

/* A job for the user name in name, or NULL after answering bad-name. */
static AccountJob *
account_job_for_name(LoginRequest *req, const char *name)
{
  g_autofree char *problem = login_name_problem(name);
  if (problem != NULL) {
    login_respond_error(req, "bad-name", "%s", problem);
    return NULL;
  }
  AccountJob *job = g_new0(AccountJob, 1);
  job->name = g_strdup(name);
  job->key = login_name_key(name);
  return job;
}

/* Parses a body of these fields, which include user and password; NULL after answering. */
static AccountJob *
account_job_from_body(LoginRequest *req, const LoginField *fields)
{
  if (!login_request_parse(req, fields))
    return NULL;
  AccountJob *job = account_job_for_name(req, json_object_get_string_member(req->json, "user"));
  if (job != NULL)
    job->password = login_take_secret(req->json, "password");
  return job;
}

/* ---- password checks (worker threads) -------------------------------------------------- */

/* Counts one failure in a row in the store, for the operator to see; the lock-outs
 * themselves are in memory (http.c), per source and account, so a stranger's guesses
 * cannot lock the owner out. */
static void
note_failure(LoginServer *s, HarkStoreUser *user)
{
  gint64 count = 0;
  g_autoptr(GError) error = NULL;
  if (!s->store->user_note_failure(s->store_handle, user->name_key, 0, &count, &error))
    g_warning("cannot count a failed login of '%s': %s", user->name, error->message);
}

static void
reply_wrong_credentials(LoginReply *reply)
{
  reply->failed_attempt = TRUE;
  login_reply_error(reply, "wrong-credentials", "wrong user name or password");
}

/* The user when the password is theirs; NULL with the reply set otherwise. Whether the
 * source may try at all was decided before (login_request_refuse_if_limited). */
static HarkStoreUser *
check_password(LoginServer *s, AccountJob *job, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStoreUser) user = s->store->user_get(s->store_handle, job->key, &error);
  if (user == NULL && !g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND)) {
    login_reply_store_failure(reply, "read a user", error);
    return NULL;
  }
  const char *problem = NULL;
  /* No such user: the same hash work as for a wrong password, then the same answer. */
  const char *hash = user != NULL ? user->password_hash : s->dummy_hash;
  LoginPasswordCheck check = login_password_verify(hash, job->password, &problem);
  if (user == NULL) {
    reply_wrong_credentials(reply);
    return NULL;
  }
  switch (check) {
  case LOGIN_PASSWORD_MATCH:
    reply->password_ok = TRUE;
    return g_steal_pointer(&user);
  case LOGIN_PASSWORD_MISMATCH:
    note_failure(s, user);
    reply_wrong_credentials(reply);
    return NULL;
  default:
    g_warning("cannot check the password of '%s': %s", user->name, problem);
    login_reply_error(reply, "internal", "cannot check the password; the server log says why");
    return NULL;
  }
}

/* ---- register ----------------------------------------------------------------------------- */

static void
register_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  AccountJob *job = data;
  g_autoptr(GError) error = NULL;
  /* Taken already: say so without spending a hash on it. */
  g_autoptr(HarkStoreUser) existing = s->store->user_get(s->store_handle, job->key, &error);
  if (existing != NULL || !g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND)) {
    if (existing != NULL)
      login_reply_error(reply, "user-exists", "the name '%s' is taken", job->name);
    else
      login_reply_store_failure(reply, "read a user", error);
    return;
  }
  g_clear_error(&error);
  g_autofree char *problem = NULL;
  g_autofree char *hash =
    login_password_hash(job->password, s->hash_memory_kib, s->hash_iterations, &problem);
  /* A new account id every time: a name registered again is another account, and the
   * certificates of the one before name a different id. */
  g_autofree char *account_id = hash != NULL ? hark_account_id_new(&error) : NULL;
  if (hash == NULL) {
    g_warning("cannot hash a password: %s", problem);
    login_reply_error(reply, "internal", "cannot hash the password; the server log says why");
  } else if (account_id == NULL) {
    g_warning("%s", error->message);
    login_reply_error(reply, "internal", "cannot make an account id; the server log says why");
  } else if (s->store->user_create(s->store_handle, job->name, job->key, account_id, hash,
                                   login_now_seconds(s), &error)) {
    JsonObject *body = json_object_new();
    json_object_set_string_member(body, "user", job->name);
    login_reply_ok(reply, SOUP_STATUS_CREATED, body);
  } else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_EXISTS)) {
    login_reply_error(reply, "user-exists", "the name '%s' is taken", job->name);
  } else {
    login_reply_store_failure(reply, "create a user", error);
  }
}

/* The body of register and delete. */
static const LoginField user_password_fields[] = {
  { "user", LOGIN_FIELD_STRING, TRUE },
  { "password", LOGIN_FIELD_STRING, TRUE },
  { NULL },
};

void
login_handle_register(LoginRequest *req)
{
  AccountJob *job = account_job_from_body(req, user_password_fields);
  if (job == NULL)
    return;
  g_autofree char *problem = login_password_problem(job->password);
  if (problem != NULL) {
    account_job_free(job);
    login_respond_error(req, "weak-password", "%s", problem);
    return;
  }
  /* Each registration costs a slow hash: one address may not make the server do many. */
  if (login_request_refuse_if_registering_too_much(req)) {
    account_job_free(job);
    return;
  }
  login_request_run(req, register_work, job, account_job_free);
}

/* ---- login and renew ----------------------------------------------------------------------- */

/* The raw bytes of an Ed25519 public key in PEM; NULL when it is not one. */
static GBytes *
device_key_raw(const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  guint8 raw[HARK_IDENTITY_PUBLIC_KEY_SIZE];
  size_t length = sizeof raw;
  GBytes *bytes = NULL;
  if (key != NULL && EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 &&
      EVP_PKEY_get_raw_public_key(key, raw, &length) == 1 && length == sizeof raw)
    bytes = g_bytes_new(raw, length);
  EVP_PKEY_free(key);
  ERR_clear_error();
  return bytes;
}

/* The PEM of a raw Ed25519 public key (from a verified certificate). */
static char *
device_key_pem(GBytes *raw)
{
  gsize length;
  const guint8 *data = g_bytes_get_data(raw, &length);
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, data, length);
  BIO *bio = BIO_new(BIO_s_mem());
  char *pem = NULL;
  if (key != NULL && bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1) {
    char *text = NULL;
    long size = BIO_get_mem_data(bio, &text);
    pem = g_strndup(text, (gsize)size);
  }
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

gboolean
login_issue_certificate(LoginServer *s, const HarkStoreUser *user, const char *public_key_pem,
                        JsonObject *answer, LoginReply *reply)
{
  gint64 now = login_now_seconds(s);
  g_autoptr(GError) error = NULL;
  /* Valid from a little earlier, for devices whose clocks run behind. */
  g_autofree char *certificate =
    hark_ca_issue_device(s->ca, user->name, user->account_id, public_key_pem, now - LOGIN_MAX_SKEW,
                         s->certificate_lifetime + LOGIN_MAX_SKEW, &error);
  if (certificate == NULL) {
    g_warning("cannot issue a certificate for '%s': %s", user->name, error->message);
    login_reply_error(reply, "internal", "cannot issue the certificate; the server log says why");
    return FALSE;
  }
  g_autoptr(GDateTime) expires = g_date_time_new_from_unix_utc(now + s->certificate_lifetime);
  g_autofree char *expires_text = g_date_time_format_iso8601(expires);
  json_object_set_string_member(answer, "certificate", certificate);
  json_object_set_string_member(answer, "expires", expires_text);
  return TRUE;
}

static void
login_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  AccountJob *job = data;
  g_autoptr(HarkStoreUser) user = check_password(s, job, reply);
  if (user == NULL)
    return;
  g_autoptr(JsonObject) answer = json_object_new();
  json_object_set_string_member(answer, "user", user->name);
  if (!login_issue_certificate(s, user, job->public_key, answer, reply))
    return;
  json_object_set_string_member(answer, "ca", s->ca_pem);
  g_autoptr(GError) error = NULL;
  if (!s->store->user_note_login(s->store_handle, job->key, job->device_id, job->device,
                                 login_now_seconds(s), &error)) {
    login_reply_store_failure(reply, "record a login", error);
    return;
  }
  if (!login_record_certificate(s, job->key, job->device_id, answer, reply))
    return;
  JsonObject *buddies = login_buddy_list(s, job->key, reply);
  if (buddies == NULL)
    return;
  json_object_set_object_member(answer, "buddies", buddies);
  login_reply_ok(reply, SOUP_STATUS_OK, g_steal_pointer(&answer));
}

void
login_handle_nonce(LoginRequest *req)
{
  g_autofree char *nonce = hark_ca_make_nonce(req->server->ca, login_now_seconds(req->server));
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "nonce", nonce);
  json_object_set_int_member(body, "expires_in", LOGIN_NONCE_LIFETIME);
  login_respond_json(req, SOUP_STATUS_OK, body);
}

/* Answers bad-proof, and logs and counts it: a login for a key its sender does not hold
 * is an attack or a broken client. user has passed the name rules (safe to log). */
static void
refuse_proof(LoginRequest *req, const char *user, const char *why)
{
  req->server->refused_proofs++;
  g_message("refused a login of '%s' from %s (%" G_GUINT64_FORMAT " so far): %s", user,
            req->address, req->server->refused_proofs, why);
  login_respond_error(req, "bad-proof", "%s", why);
}

/* The login's proof that the device holds the key it wants certified: a signature with
 * that key over a nonce of ours, used once, and the user name. FALSE when it answered
 * bad-proof instead. */
static gboolean
check_proof(LoginRequest *req, GBytes *key)
{
  const char *user = json_object_get_string_member(req->json, "user");
  const char *nonce = json_object_get_string_member_with_default(req->json, "nonce", NULL);
  const char *proof = json_object_get_string_member_with_default(req->json, "proof", NULL);
  if (nonce == NULL || proof == NULL) {
    refuse_proof(req, user,
                 "a login needs a nonce (GET /v1/nonce) and the proof that the "
                 "device holds its key (nodes from before login proofs must be upgraded)");
    return FALSE;
  }
  gint64 now = login_now_seconds(req->server), issued = 0;
  g_autoptr(GError) error = NULL;
  if (!hark_ca_check_nonce(req->server->ca, nonce, now, LOGIN_NONCE_LIFETIME, &issued, &error) ||
      !hark_login_proof_verify(key, nonce, user, proof, &error)) {
    refuse_proof(req, user, error->message);
    return FALSE;
  }
  /* Last, once everything else holds: only a proven login uses the nonce up. */
  g_autofree char *used = g_strconcat("login:", nonce, NULL);
  switch (login_replay_note(req->server->replays, used, issued + LOGIN_NONCE_LIFETIME, now)) {
  case LOGIN_REPLAY_SEEN:
    req->server->refused_replays++;
    refuse_proof(req, user, "the nonce was used before (a replay): fetch a new one");
    return FALSE;
  case LOGIN_REPLAY_FULL:
    login_respond_error(req, "internal", "too many logins at once; try again later");
    return FALSE;
  default:
    return TRUE;
  }
}

void
login_handle_login(LoginRequest *req)
{
  static const LoginField fields[] = {
    { "user", LOGIN_FIELD_STRING, TRUE },
    { "password", LOGIN_FIELD_STRING, TRUE },
    { "device", LOGIN_FIELD_STRING, TRUE },
    { "public_key", LOGIN_FIELD_STRING, TRUE },
    /* Required, but checked by check_proof: a node that sends none is told to upgrade. */
    { "nonce", LOGIN_FIELD_STRING, FALSE },
    { "proof", LOGIN_FIELD_STRING, FALSE },
    { NULL },
  };
  AccountJob *job = account_job_from_body(req, fields);
  if (job == NULL)
    return;
  job->device = g_strdup(json_object_get_string_member(req->json, "device"));
  job->public_key = g_strdup(json_object_get_string_member(req->json, "public_key"));
  g_autoptr(GBytes) key = device_key_raw(job->public_key);
  job->device_id = key != NULL ? g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, key) : NULL;
  if (!login_label_is_valid(job->device))
    login_respond_error(req, "bad-request",
                        "the device name needs 1 to %d characters, none of "
                        "them a control or formatting character (such as a bidirectional "
                        "override)",
                        LOGIN_LABEL_MAX);
  else if (key == NULL)
    login_respond_error(req, "bad-key",
                        "public_key is not an Ed25519 public key in PEM "
                        "(SubjectPublicKeyInfo)");
  else if (!login_request_refuse_if_limited(req, job->key) && check_proof(req, key)) {
    login_request_run(req, login_work, job, account_job_free);
    return;
  }
  account_job_free(job);
}

/* Only for the account and device the certificate was issued for, while that device is
 * not revoked (login_signer_check): a renewal is how a certificate outlives its hour. */
static void
renew_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  AccountJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  if (user == NULL)
    return;
  g_autoptr(GError) error = NULL;
  if (!s->store->device_seen(s->store_handle, job->key, job->signer->device_id,
                             login_now_seconds(s), &error)) {
    login_reply_store_failure(reply, "record a renewal", error);
    return;
  }
  g_autoptr(JsonObject) answer = json_object_new();
  if (login_issue_certificate(s, user, job->public_key, answer, reply) &&
      login_record_certificate(s, job->key, job->signer->device_id, answer, reply))
    login_reply_ok(reply, SOUP_STATUS_OK, g_steal_pointer(&answer));
}

void
login_handle_renew(LoginRequest *req)
{
  static const LoginField no_fields[] = { { NULL } };
  if (!login_request_parse(req, no_fields))
    return;
  AccountJob *job = g_new0(AccountJob, 1);
  job->name = g_strdup(req->device->user);
  job->key = login_name_key(req->device->user);
  job->public_key = device_key_pem(req->device->public_key);
  job->signer = login_signer_new(req->device);
  login_request_run(req, renew_work, job, account_job_free);
}

/* ---- password and delete ------------------------------------------------------------------- */

static void
password_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  AccountJob *job = data;
  g_autoptr(HarkStoreUser) user = check_password(s, job, reply);
  if (user == NULL)
    return;
  g_autofree char *problem = NULL;
  g_autofree char *hash =
    login_password_hash(job->new_password, s->hash_memory_kib, s->hash_iterations, &problem);
  g_autoptr(GError) error = NULL;
  gint64 revoked = 0;
  if (hash == NULL) {
    g_warning("cannot hash a password: %s", problem);
    login_reply_error(reply, "internal", "cannot hash the password; the server log says why");
  } else if (!s->store->user_set_password(s->store_handle, job->key, hash, job->revoke_others,
                                          job->keep_device, login_now_seconds(s), &revoked,
                                          &error)) {
    login_reply_store_failure(reply, "change a password", error);
  } else {
    JsonObject *answer = json_object_new();
    json_object_set_int_member(answer, "revoked", revoked);
    login_reply_ok(reply, SOUP_STATUS_OK, answer);
  }
}

void
login_handle_password(LoginRequest *req)
{
  static const LoginField fields[] = {
    { "user", LOGIN_FIELD_STRING, TRUE },         { "password", LOGIN_FIELD_STRING, TRUE },
    { "new_password", LOGIN_FIELD_STRING, TRUE }, { "revoke_others", LOGIN_FIELD_BOOL, FALSE },
    { "keep_device", LOGIN_FIELD_STRING, FALSE }, { NULL },
  };
  AccountJob *job = account_job_from_body(req, fields);
  if (job == NULL)
    return;
  job->new_password = login_take_secret(req->json, "new_password");
  /* Absent: false, what clients that predate it meant. keep_device is the device that
   * asks (it stays logged in); the password proves the right to name it. */
  job->revoke_others =
    json_object_get_boolean_member_with_default(req->json, "revoke_others", FALSE);
  job->keep_device =
    g_strdup(json_object_get_string_member_with_default(req->json, "keep_device", NULL));
  g_autofree char *problem = login_password_problem(job->new_password);
  if (problem != NULL)
    login_respond_error(req, "weak-password", "%s", problem);
  else if (job->keep_device != NULL && !login_device_id_is_valid(job->keep_device))
    login_respond_error(req, "bad-request", "keep_device must be a device id (64 hex digits)");
  else if (job->keep_device != NULL && !job->revoke_others)
    login_respond_error(req, "bad-request", "keep_device goes with revoke_others: true");
  else if (!login_request_refuse_if_limited(req, job->key)) {
    login_request_run(req, password_work, job, account_job_free);
    return;
  }
  account_job_free(job);
}

static void
delete_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  AccountJob *job = data;
  g_autoptr(HarkStoreUser) user = check_password(s, job, reply);
  g_autoptr(GError) error = NULL;
  if (user == NULL)
    return;
  if (s->store->user_delete(s->store_handle, job->key, &error))
    login_reply_ok(reply, SOUP_STATUS_OK, json_object_new());
  else
    login_reply_store_failure(reply, "delete a user", error);
}

void
login_handle_delete(LoginRequest *req)
{
  AccountJob *job = account_job_from_body(req, user_password_fields);
  if (job == NULL)
    return;
  if (login_request_refuse_if_limited(req, job->key)) {
    account_job_free(job);
    return;
  }
  login_request_run(req, delete_work, job, account_job_free);
}

/* ---- users and version --------------------------------------------------------------------- */

gboolean
login_devices_recent(GPtrArray *devices, gint64 now)
{
  for (guint i = 0; i < devices->len; i++) {
    const HarkStoreDevice *device = devices->pdata[i];
    if (device->revoked == 0 && device->last_seen >= now - LOGIN_RECENT_SECONDS)
      return TRUE;
  }
  return FALSE;
}

static void
user_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  AccountJob *job = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStoreUser) user = s->store->user_get(s->store_handle, job->key, &error);
  g_autoptr(GPtrArray) devices =
    user != NULL ? s->store->devices_list(s->store_handle, job->key, &error) : NULL;
  if (devices != NULL) {
    /* A class, never the time itself: a stranger learns that the user exists and whether
     * the account is in use, not when its owner was last online. */
    JsonObject *last_seen = json_object_new();
    json_object_set_boolean_member(last_seen, "recent",
                                   login_devices_recent(devices, login_now_seconds(s)));
    json_object_set_int_member(last_seen, "within_hours", LOGIN_RECENT_SECONDS / 3600);
    JsonObject *body = json_object_new();
    json_object_set_string_member(body, "user", user->name);
    json_object_set_object_member(body, "last_seen", last_seen);
    login_reply_ok(reply, SOUP_STATUS_OK, body);
  } else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND)) {
    login_reply_error(reply, "unknown-user", "there is no user '%s'", job->name);
  } else {
    login_reply_store_failure(reply, "read a user", error);
  }
}

void
login_handle_user(LoginRequest *req)
{
  if (login_request_refuse_if_looking_up_too_much(req))
    return;
  AccountJob *job = account_job_for_name(req, req->tail);
  if (job != NULL)
    login_request_run(req, user_work, job, account_job_free);
}

static void
users_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  AccountJob *job = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) names =
    s->store->users_find(s->store_handle, job->prefix_key, job->limit, &error);
  if (names == NULL) {
    login_reply_store_failure(reply, "find users", error);
    return;
  }
  JsonArray *users = json_array_new();
  for (guint i = 0; i < names->len; i++)
    json_array_add_string_element(users, names->pdata[i]);
  JsonObject *body = json_object_new();
  json_object_set_array_member(body, "users", users);
  login_reply_ok(reply, SOUP_STATUS_OK, body);
}

/* prefix: 1-32 name characters; limit: 1-100 (default 20); nothing else. */
static char *
users_query_problem(GHashTable *params, const char **prefix, guint *limit)
{
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, params);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    if (strcmp(key, "prefix") != 0 && strcmp(key, "limit") != 0)
      return g_strdup("the users query takes only 'prefix' and 'limit'");
  *prefix = g_hash_table_lookup(params, "prefix");
  const char *limit_text = g_hash_table_lookup(params, "limit");
  guint64 number = LOGIN_USERS_LIMIT_DEFAULT;
  if (limit_text != NULL &&
      !g_ascii_string_to_unsigned(limit_text, 10, 1, LOGIN_USERS_LIMIT_MAX, &number, NULL))
    return g_strdup_printf("limit must be a number from 1 to %d", LOGIN_USERS_LIMIT_MAX);
  *limit = (guint)number;
  gsize length = *prefix != NULL ? strlen(*prefix) : 0;
  if (length < 1 || length > LOGIN_USER_NAME_MAX)
    return g_strdup_printf("prefix needs 1 to %d characters", LOGIN_USER_NAME_MAX);
  if (strspn(*prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
      length)
    return g_strdup("prefix may hold only what user names hold (ASCII letters, digits, '.', "
                    "'_', '-')");
  return NULL;
}

void
login_handle_users(LoginRequest *req)
{
  if (login_request_refuse_if_looking_up_too_much(req))
    return;
  const char *query = g_uri_get_query(soup_server_message_get_uri(req->msg));
  g_autoptr(GHashTable) params =
    g_uri_parse_params(query != NULL ? query : "", -1, "&", G_URI_PARAMS_NONE, NULL);
  const char *prefix = NULL;
  guint limit = 0;
  g_autofree char *problem = params != NULL ? users_query_problem(params, &prefix, &limit)
                                            : g_strdup("the query string is malformed");
  if (problem != NULL) {
    login_respond_error(req, "bad-request", "%s", problem);
    return;
  }
  AccountJob *job = g_new0(AccountJob, 1);
  job->prefix_key = login_name_key(prefix);
  job->limit = limit;
  login_request_run(req, users_work, job, account_job_free);
}

void
login_handle_version(LoginRequest *req)
{
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "latest", req->server->latest_version);
  json_object_set_string_member(body, "url", req->server->download_url);
  login_respond_json(req, SOUP_STATUS_OK, body);
}
