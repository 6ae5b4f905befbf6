/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* contacts.c: contact requests and blocks (signed requests; docs/protocol.md, "Contact
 * requests").
 *
 * A user becomes another's buddy only by the other's answer: `send` leaves a request that
 * any device of the other user sees (GET /v1/contacts) and answers (`accept`: both lists
 * gain each other; `decline`). A block hides everything from the blocked user without
 * telling them: their requests are answered exactly like anyone's, stored, and never
 * shown; and asking again after a decline waits like after a block. */
#include "loginsrv.h"

#include <string.h>

typedef enum {
  CONTACT_SEND,
  CONTACT_ACCEPT,
  CONTACT_DECLINE,
  CONTACT_CANCEL,
  CONTACT_BLOCK,
  CONTACT_UNBLOCK,
} ContactOp;

static const char *const op_names[] = {
  [CONTACT_SEND] = "send",     [CONTACT_ACCEPT] = "accept", [CONTACT_DECLINE] = "decline",
  [CONTACT_CANCEL] = "cancel", [CONTACT_BLOCK] = "block",   [CONTACT_UNBLOCK] = "unblock",
};

typedef struct {
  LoginSigner *signer;
  ContactOp op;
  char *other; /* as given */
  char *other_key;
  char *message; /* send: NULL when none */
} ContactJob;

static void
contact_job_free(gpointer data)
{
  ContactJob *job = data;
  login_signer_free(job->signer);
  g_free(job->other);
  g_free(job->other_key);
  g_free(job->message);
  g_free(job);
}

static ContactJob *
contact_job_new(LoginRequest *req)
{
  ContactJob *job = g_new0(ContactJob, 1);
  job->signer = login_signer_new(req->device);
  return job;
}

/* ---- worker threads ---------------------------------------------------------------------- */

static gboolean
name_in(GPtrArray *names, const char *key)
{
  for (guint i = 0; i < names->len; i++)
    if (strcmp(names->pdata[i], key) == 0)
      return TRUE;
  return FALSE;
}

static JsonObject *
request_entry(const char *name, const HarkStoreRequest *request)
{
  JsonObject *entry = json_object_new();
  json_object_set_string_member(entry, "name", name);
  if (request->message != NULL)
    json_object_set_string_member(entry, "message", request->message);
  json_object_set_int_member(entry, "created", request->created);
  return entry;
}

/* {"incoming", "outgoing", "blocked", "revision"} of a user: pending requests only, and
 * none from a user they block. NULL with the reply set on a store failure. */
static JsonObject *
contacts_answer(LoginServer *s, const char *key, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  gint64 revision = 0;
  g_autoptr(GPtrArray) requests = s->store->requests_list(s->store_handle, key, &error);
  g_autoptr(GPtrArray) blocked =
    requests != NULL ? s->store->blocks_list(s->store_handle, key, &error) : NULL;
  g_autoptr(GPtrArray) buddies =
    blocked != NULL ? s->store->buddies_get(s->store_handle, key, &revision, &error) : NULL;
  if (buddies == NULL) {
    login_reply_store_failure(reply, "read contact requests", error);
    return NULL;
  }
  JsonArray *incoming = json_array_new(), *outgoing = json_array_new();
  for (guint i = 0; i < requests->len; i++) {
    const HarkStoreRequest *request = requests->pdata[i];
    if (request->answered != 0)
      continue;
    if (strcmp(request->from_key, key) == 0)
      json_array_add_object_element(outgoing, request_entry(request->to_key, request));
    else if (!name_in(blocked, request->from_key))
      json_array_add_object_element(incoming, request_entry(request->from_key, request));
  }
  JsonArray *blocks = json_array_new();
  for (guint i = 0; i < blocked->len; i++)
    json_array_add_string_element(blocks, blocked->pdata[i]);
  JsonObject *answer = json_object_new();
  json_object_set_array_member(answer, "incoming", incoming);
  json_object_set_array_member(answer, "outgoing", outgoing);
  json_object_set_array_member(answer, "blocked", blocks);
  json_object_set_int_member(answer, "revision", revision);
  return answer;
}

static void
list_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  ContactJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  JsonObject *answer = user != NULL ? contacts_answer(s, job->signer->key, reply) : NULL;
  if (answer != NULL)
    login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

/* The request from_key made to to_key (pending or declined), or NULL; FALSE with the
 * reply set on a store failure. */
static gboolean
find_request(LoginServer *s, const char *from_key, const char *to_key, HarkStoreRequest **found,
             LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) requests = s->store->requests_list(s->store_handle, from_key, &error);
  if (requests == NULL) {
    login_reply_store_failure(reply, "read contact requests", error);
    return FALSE;
  }
  *found = NULL;
  for (guint i = 0; i < requests->len && *found == NULL; i++) {
    HarkStoreRequest *request = requests->pdata[i];
    if (strcmp(request->from_key, from_key) == 0 && strcmp(request->to_key, to_key) == 0)
      *found = g_ptr_array_steal_index(requests, i);
  }
  return TRUE;
}

/* Whether the signer may ask job->other now: not a buddy already, and a declined request
 * is old enough. FALSE with the reply set otherwise. */
static gboolean
may_send(LoginServer *s, ContactJob *job, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) buddies =
    s->store->buddies_get(s->store_handle, job->signer->key, NULL, &error);
  if (buddies == NULL) {
    login_reply_store_failure(reply, "read a buddy list", error);
    return FALSE;
  }
  for (guint i = 0; i < buddies->len; i++)
    if (strcmp(((HarkStoreBuddy *)buddies->pdata[i])->name_key, job->other_key) == 0) {
      login_reply_error(reply, "buddy-exists", "'%s' is already a buddy", job->other);
      return FALSE;
    }
  g_autoptr(HarkStoreRequest) earlier = NULL;
  if (!find_request(s, job->signer->key, job->other_key, &earlier, reply))
    return FALSE;
  gint64 wait = earlier != NULL && earlier->answered != 0
                  ? earlier->answered + s->request_again_after - login_now_seconds(s)
                  : 0;
  if (wait > 0) {
    login_reply_error(reply, "locked-out",
                      "a request to '%s' was answered recently: try again in %" G_GINT64_FORMAT
                      " s",
                      job->other, wait);
    reply->retry_after = wait;
    return FALSE;
  }
  return TRUE;
}

/* The store's word on a change, as the API's. */
static void
reply_store_error(ContactJob *job, const GError *error, LoginReply *reply)
{
  if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_LIMIT))
    login_reply_error(reply, "too-many-pending",
                      "too many requests are waiting for an answer: cancel some first");
  else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND) &&
           job->op == CONTACT_UNBLOCK)
    login_reply_error(reply, "not-found", "'%s' is not blocked", job->other);
  else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    login_reply_error(reply, "not-found", "no pending request %s '%s'",
                      job->op == CONTACT_CANCEL ? "to" : "from", job->other);
  else
    login_reply_store_failure(reply, "change contact requests", error);
}

/* A request hidden by a block cannot be answered: it does not exist for its recipient. */
static gboolean
is_blocked(LoginServer *s, ContactJob *job, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) blocked = s->store->blocks_list(s->store_handle, job->signer->key, &error);
  if (blocked == NULL) {
    login_reply_store_failure(reply, "read blocks", error);
    return TRUE;
  }
  if (!name_in(blocked, job->other_key))
    return FALSE;
  login_reply_error(reply, "not-found", "no pending request from '%s'", job->other);
  return TRUE;
}

static gboolean
apply(LoginServer *s, ContactJob *job, LoginReply *reply)
{
  const char *key = job->signer->key;
  gint64 now = login_now_seconds(s);
  g_autoptr(GError) error = NULL;
  gboolean ok = FALSE;
  switch (job->op) {
  case CONTACT_SEND:
    if (!may_send(s, job, reply))
      return FALSE;
    ok = s->store->request_send(s->store_handle, key, job->other_key, job->message,
                                s->max_pending_requests, now, &error);
    /* Asking again while the request waits changes nothing, and says so alike. */
    if (!ok && g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_EXISTS))
      return TRUE;
    break;
  case CONTACT_ACCEPT:
  case CONTACT_DECLINE:
    if (is_blocked(s, job, reply))
      return FALSE;
    ok = s->store->request_answer(s->store_handle, key, job->other_key, job->op == CONTACT_ACCEPT,
                                  now, &error);
    break;
  case CONTACT_CANCEL:
    ok = s->store->request_cancel(s->store_handle, key, job->other_key, &error);
    break;
  case CONTACT_BLOCK:
  case CONTACT_UNBLOCK:
    ok = s->store->block_set(s->store_handle, key, job->other_key, job->op == CONTACT_BLOCK, now,
                             &error);
    break;
  }
  if (!ok)
    reply_store_error(job, error, reply);
  return ok;
}

/* The other user, who must exist; NULL with the reply set otherwise. */
static gboolean
other_exists(LoginServer *s, ContactJob *job, LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStoreUser) other = s->store->user_get(s->store_handle, job->other_key, &error);
  if (other == NULL && g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    login_reply_error(reply, "unknown-user", "there is no user '%s'", job->other);
  else if (other == NULL)
    login_reply_store_failure(reply, "read a user", error);
  return other != NULL;
}

static void
change_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  ContactJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  if (user == NULL || !other_exists(s, job, reply) || !apply(s, job, reply))
    return;
  JsonObject *answer = contacts_answer(s, job->signer->key, reply);
  if (answer != NULL)
    login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

/* ---- the main context ---------------------------------------------------------------------- */

void
login_handle_contacts_get(LoginRequest *req)
{
  login_request_run(req, list_work, contact_job_new(req), contact_job_free);
}

static gboolean
parse_op(const char *text, ContactOp *op)
{
  for (gsize i = 0; i < G_N_ELEMENTS(op_names); i++)
    if (strcmp(text, op_names[i]) == 0) {
      *op = (ContactOp)i;
      return TRUE;
    }
  return FALSE;
}

/* op, name and message make sense together; the reason when they do not. */
static const char *
change_problem(ContactJob *job, JsonObject *body)
{
  if (!parse_op(json_object_get_string_member(body, "op"), &job->op))
    return "op must be \"send\", \"accept\", \"decline\", \"cancel\", \"block\" or \"unblock\"";
  if (job->message != NULL && job->op != CONTACT_SEND)
    return "only send takes a message";
  if (job->message != NULL && !login_label_is_valid(job->message))
    return "a message needs 1 to 64 characters, none of them a control character";
  if (strcmp(job->other_key, job->signer->key) == 0)
    return "that is your own name";
  return NULL;
}

void
login_handle_contacts_change(LoginRequest *req)
{
  static const LoginField fields[] = {
    { "op", LOGIN_FIELD_STRING, TRUE },
    { "name", LOGIN_FIELD_STRING, TRUE },
    { "message", LOGIN_FIELD_STRING, FALSE },
    { NULL },
  };
  const char *name = login_request_parse_named(req, fields);
  if (name == NULL)
    return;
  ContactJob *job = contact_job_new(req);
  job->other = g_strdup(name);
  job->other_key = login_name_key(name);
  job->message = g_strdup(json_object_get_string_member_with_default(req->json, "message", NULL));
  const char *problem = change_problem(job, req->json);
  if (problem != NULL) {
    login_respond_error(req, "bad-request", "%s", problem);
    contact_job_free(job);
    return;
  }
  /* Every request counts, refused or not: a flood costs the flooder, not the store. */
  if (job->op == CONTACT_SEND &&
      login_request_refuse_if_requesting_too_much(req, job->signer->key)) {
    contact_job_free(job);
    return;
  }
  login_request_run(req, change_work, job, contact_job_free);
}
