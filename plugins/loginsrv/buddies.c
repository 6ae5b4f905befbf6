/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* buddies.c: the buddy list endpoints (signed requests; docs/protocol.md).
 *
 * The list lives in the store with a revision that goes up by one with every change,
 * so every device of a user sees the same list, and a change based on an old revision
 * is refused (conflict) instead of overwriting what another device did. */
#include "loginsrv.h"

#include <string.h>

typedef struct {
  LoginSigner *signer;
  char *user; /* the signer, as in the certificate */
  char *key; /* the signer's canonical name */
  HarkBuddyOp op;
  char *buddy; /* as given */
  char *buddy_key;
  char *alias; /* NULL: the default (the buddy's name as registered) */
  gint64 revision; /* -1: any */
} BuddyJob;

static void
buddy_job_free(gpointer data)
{
  BuddyJob *job = data;
  login_signer_free(job->signer);
  g_free(job->user);
  g_free(job->key);
  g_free(job->buddy);
  g_free(job->buddy_key);
  g_free(job->alias);
  g_free(job);
}

static BuddyJob *
buddy_job_new(LoginRequest *req)
{
  BuddyJob *job = g_new0(BuddyJob, 1);
  job->signer = login_signer_new(req->device);
  job->user = g_strdup(req->device->user);
  job->key = login_name_key(req->device->user);
  job->revision = -1;
  return job;
}

/* ---- worker threads ---------------------------------------------------------------------- */

JsonObject *
login_buddy_list(LoginServer *s, const char *name_key, LoginReply *reply)
{
  gint64 revision = 0;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) buddies =
    s->store->buddies_get(s->store_handle, name_key, &revision, &error);
  if (buddies == NULL) {
    login_reply_store_failure(reply, "read a buddy list", error);
    return NULL;
  }
  JsonArray *list = json_array_new();
  for (guint i = 0; i < buddies->len; i++) {
    const HarkStoreBuddy *buddy = buddies->pdata[i];
    JsonObject *entry = json_object_new();
    json_object_set_string_member(entry, "name", buddy->name_key);
    json_object_set_string_member(entry, "alias", buddy->alias);
    json_array_add_object_element(list, entry);
  }
  JsonObject *answer = json_object_new();
  json_object_set_int_member(answer, "revision", revision);
  json_object_set_array_member(answer, "buddies", list);
  return answer;
}

/* The user named in the store, or NULL with the reply set (missing_code when absent). */
static HarkStoreUser *
get_user(LoginServer *s, const char *key, const char *shown, const char *missing_code,
         LoginReply *reply)
{
  g_autoptr(GError) error = NULL;
  HarkStoreUser *user = s->store->user_get(s->store_handle, key, &error);
  if (user == NULL && g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    login_reply_error(reply, missing_code, "there is no user '%s'", shown);
  else if (user == NULL)
    login_reply_store_failure(reply, "read a user", error);
  return user;
}

static void
list_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  BuddyJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  JsonObject *answer = user != NULL ? login_buddy_list(s, job->key, reply) : NULL;
  if (answer != NULL)
    login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

static void
reply_change_error(BuddyJob *job, const GError *error, LoginReply *reply)
{
  if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_CONFLICT))
    login_reply_error(reply, "conflict",
                      "the buddy list changed since revision %" G_GINT64_FORMAT
                      ": fetch it and try again",
                      job->revision);
  else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_EXISTS))
    login_reply_error(reply, "buddy-exists", "'%s' is already a buddy", job->buddy);
  else if (g_error_matches(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    login_reply_error(reply, "not-found", "'%s' is not a buddy", job->buddy);
  else
    login_reply_store_failure(reply, "change a buddy list", error);
}

static void
change_work(LoginServer *s, gpointer data, LoginReply *reply)
{
  BuddyJob *job = data;
  g_autoptr(HarkStoreUser) user = login_signer_check(s, job->signer, reply);
  if (user == NULL)
    return;
  if (job->op == HARK_BUDDY_ADD) {
    g_autoptr(HarkStoreUser) buddy = get_user(s, job->buddy_key, job->buddy, "unknown-user", reply);
    if (buddy == NULL)
      return;
    if (job->alias == NULL)
      job->alias = g_strdup(buddy->name);
  }
  gint64 revision = 0;
  g_autoptr(GError) error = NULL;
  if (!s->store->buddies_change(s->store_handle, job->key, job->op, job->buddy_key, job->alias,
                                job->revision, &revision, &error)) {
    reply_change_error(job, error, reply);
    return;
  }
  JsonObject *answer = login_buddy_list(s, job->key, reply);
  if (answer != NULL)
    login_reply_ok(reply, SOUP_STATUS_OK, answer);
}

/* ---- the main context ---------------------------------------------------------------------- */

void
login_handle_buddies_get(LoginRequest *req)
{
  login_request_run(req, list_work, buddy_job_new(req), buddy_job_free);
}

static gboolean
parse_op(const char *text, HarkBuddyOp *op)
{
  static const struct {
    const char *name;
    HarkBuddyOp op;
  } ops[] = { { "add", HARK_BUDDY_ADD },
              { "remove", HARK_BUDDY_REMOVE },
              { "rename", HARK_BUDDY_RENAME } };
  for (gsize i = 0; i < G_N_ELEMENTS(ops); i++)
    if (strcmp(text, ops[i].name) == 0) {
      *op = ops[i].op;
      return TRUE;
    }
  return FALSE;
}

/* op, alias and revision make sense together; the reason when they do not. */
static const char *
change_problem(BuddyJob *job, JsonObject *body)
{
  if (!parse_op(json_object_get_string_member(body, "op"), &job->op))
    return "op must be \"add\", \"remove\" or \"rename\"";
  if (job->op == HARK_BUDDY_RENAME && job->alias == NULL)
    return "rename needs an alias";
  if (job->op == HARK_BUDDY_REMOVE && job->alias != NULL)
    return "remove takes no alias";
  if (job->alias != NULL && !login_label_is_valid(job->alias))
    return "an alias needs 1 to 64 characters, none of them a control character";
  if (json_object_has_member(body, "revision") && job->revision < 0)
    return "revision must not be negative";
  return NULL;
}

void
login_handle_buddies_change(LoginRequest *req)
{
  static const LoginField fields[] = {
    { "op", LOGIN_FIELD_STRING, TRUE },
    { "name", LOGIN_FIELD_STRING, TRUE },
    { "alias", LOGIN_FIELD_STRING, FALSE },
    { "revision", LOGIN_FIELD_INT, FALSE },
    { NULL },
  };
  const char *name = login_request_parse_named(req, fields);
  if (name == NULL)
    return;
  BuddyJob *job = buddy_job_new(req);
  job->buddy = g_strdup(name);
  job->buddy_key = login_name_key(name);
  job->alias = g_strdup(json_object_get_string_member_with_default(req->json, "alias", NULL));
  job->revision = json_object_get_int_member_with_default(req->json, "revision", -1);
  const char *problem = change_problem(job, req->json);
  if (problem != NULL) {
    login_respond_error(req, "bad-request", "%s", problem);
    buddy_job_free(job);
    return;
  }
  login_request_run(req, change_work, job, buddy_job_free);
}
