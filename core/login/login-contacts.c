/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-contacts.c: contact requests and blocks (docs/protocol.md, "Contact requests"),
 * and asking the login server about a user (lookup, prefix search).
 *
 * Every device of a user sees the same requests: the server keeps them, and a device
 * fetches them when it logs in, at each renewal, on `requests` and `buddies`, and when the
 * directory tells it to (hark_login_client_sync_contacts). A request not seen before on
 * this device is announced with a `contact-request` event; when the answer's buddy-list
 * revision is not the one this device has (a request was accepted, here or on another
 * device), the list is fetched, which emits `buddies-changed`. Whenever what is pending
 * (incoming, outgoing, blocked) differs from what this device last announced, a
 * `requests-changed` event carries all of it. A request this device sent, declined or
 * withdrew, and a block, is passed to the directory (the buddy hooks' contacted), whose SN
 * tells the other user's devices and ours to fetch. */
#include "login-impl.h"

#include <string.h>

/* ---- the answer {"incoming", "outgoing", "blocked", "revision"} --------------------- */

static JsonArray *
member_array(JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  return node != NULL && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
}

/* The names of the incoming requests; NULL with error when the answer is malformed. */
static GPtrArray *
incoming_names(JsonObject *answer, gint64 *revision, GError **error)
{
  JsonArray *incoming = member_array(answer, "incoming");
  if (incoming == NULL || member_array(answer, "outgoing") == NULL ||
      member_array(answer, "blocked") == NULL ||
      !hark_login_member_int(answer, "revision", revision)) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the login server sent contact requests without incoming, outgoing, "
                        "blocked or revision");
    return NULL;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < json_array_get_length(incoming); i++) {
    JsonNode *element = json_array_get_element(incoming, i);
    JsonObject *request = JSON_NODE_HOLDS_OBJECT(element) ? json_node_get_object(element) : NULL;
    const char *name = hark_login_member_string(request, "name");
    if (name == NULL) {
      g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                          "the login server sent a contact request without a name");
      return NULL;
    }
    g_ptr_array_add(names, g_strdup(name));
  }
  return g_steal_pointer(&names);
}

/* The names of one of the answer's lists ("incoming", "outgoing": objects with a name;
 * "blocked": names), one a line: what the `requests-changed` event compares. */
static void
append_names(GString *key, JsonObject *answer, const char *list)
{
  JsonArray *array = member_array(answer, list);
  g_string_append_printf(key, "%s:", list);
  for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
    JsonNode *element = json_array_get_element(array, i);
    const char *name = JSON_NODE_HOLDS_OBJECT(element)
                         ? hark_login_member_string(json_node_get_object(element), "name")
                         : JSON_NODE_HOLDS_VALUE(element) &&
                               json_node_get_value_type(element) == G_TYPE_STRING
                           ? json_node_get_string(element)
                           : NULL;
    g_string_append_printf(key, "%s\n", name != NULL ? name : "");
  }
}

/* `requests-changed` when what is pending differs from what this device last announced
 * (the first fetch after a login announces it all). */
static void
emit_requests_changed(HarkLoginClient *client, JsonObject *answer)
{
  g_autoptr(GString) key = g_string_new(NULL);
  append_names(key, answer, "incoming");
  append_names(key, answer, "outgoing");
  append_names(key, answer, "blocked");
  if (g_strcmp0(client->requests_shown, key->str) == 0)
    return;
  g_free(client->requests_shown);
  client->requests_shown = g_strdup(key->str);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", client->user);
  const char *lists[] = { "incoming", "outgoing", "blocked" };
  for (gsize i = 0; i < G_N_ELEMENTS(lists); i++)
    json_object_set_member(data, lists[i], json_object_dup_member(answer, lists[i]));
  hark_context_emit(client->ctx, "requests-changed", data);
}

static void
emit_contact_request(HarkLoginClient *client, JsonObject *request)
{
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", client->user);
  json_object_set_string_member(data, "from", hark_login_member_string(request, "name"));
  const char *message = hark_login_member_string(request, "message");
  if (message != NULL)
    json_object_set_string_member(data, "message", message);
  hark_context_emit(client->ctx, "contact-request", data);
}

/* The requests the server listed become what this device has seen; each one it had not
 * seen yet is announced. *revision gets the buddy list's revision on the server. */
static gboolean
take_contacts(HarkLoginClient *client, JsonObject *answer, gint64 *revision, GError **error)
{
  g_autoptr(GPtrArray) names = incoming_names(answer, revision, error);
  if (names == NULL)
    return FALSE;
  JsonArray *incoming = member_array(answer, "incoming");
  GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < names->len; i++) {
    if (!g_hash_table_contains(client->requests_seen, names->pdata[i]))
      emit_contact_request(client, json_array_get_object_element(incoming, i));
    g_hash_table_add(seen, g_strdup(names->pdata[i]));
  }
  g_hash_table_unref(client->requests_seen);
  client->requests_seen = seen;
  emit_requests_changed(client, answer);
  return TRUE;
}

/* A change this device made that no buddy list shows: the directory's SN tells the
 * devices concerned (an acceptance changes both lists, which tells them already). */
static void
tell_contacted(Op *op)
{
  HarkLoginClient *client = op->client;
  const char *op_name = op->buddy_op;
  const char *user = NULL;
  if (g_strcmp0(op_name, "send") == 0 || g_strcmp0(op_name, "decline") == 0 ||
      g_strcmp0(op_name, "cancel") == 0)
    user = op->buddy_name;
  else if (g_strcmp0(op_name, "block") == 0 || g_strcmp0(op_name, "unblock") == 0)
    user = client->user;
  if (user != NULL && client->buddy_hooks != NULL && client->buddy_hooks->contacted != NULL)
    client->buddy_hooks->contacted(client->buddy_hooks_data, user);
}

/* ---- operations ---------------------------------------------------------------------- */

/* The op's result: the contacts answer, and the buddy list as this device has it now. */
static JsonObject *
contacts_result(Op *op)
{
  JsonObject *result = json_object_ref(op->contacts);
  json_object_remove_member(result, "revision");
  JsonObject *buddies = hark_login_buddies_result(op->client, NULL);
  json_object_set_member(result, "revision", json_object_dup_member(buddies, "revision"));
  json_object_set_member(result, "buddies", json_object_dup_member(buddies, "buddies"));
  json_object_unref(buddies);
  if (g_strcmp0(op->buddy_op, "send") == 0)
    json_object_set_string_member(result, "status", "request sent");
  return result;
}

static void
buddies_followed(Op *op, JsonObject *answer, GError *error)
{
  if (error == NULL && hark_login_op_is_stale(op))
    error = hark_login_stale_error();
  if (error == NULL) {
    gint64 revision;
    JsonArray *buddies = hark_login_read_buddy_list(answer, &revision, &error);
    if (buddies != NULL)
      hark_login_install_buddies(op->client, revision, buddies, &error);
  }
  if (error != NULL)
    hark_login_op_fail(op, error);
  else
    hark_login_op_finish(op, contacts_result(op), NULL);
}

/* A contacts answer came: requests announced, and the buddy list fetched when it is not
 * the one the server has. */
static void
contacts_answered(Op *op, JsonObject *answer, GError *error)
{
  if (error == NULL && hark_login_op_is_stale(op))
    error = hark_login_stale_error();
  gint64 revision = -1;
  if (error == NULL)
    take_contacts(op->client, answer, &revision, &error);
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  op->contacts = json_object_ref(answer);
  tell_contacted(op);
  if (revision != op->client->revision)
    hark_login_fetch_buddies(op, buddies_followed);
  else
    hark_login_op_finish(op, contacts_result(op), NULL);
}

void
hark_login_client_requests(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  Op *op = hark_login_op_new(client, done, user_data);
  hark_login_op_send(op, "GET", "/v1/contacts", NULL, TRUE, contacts_answered);
}

void
hark_login_client_contact(HarkLoginClient *client, const char *op_name, const char *name,
                          const char *message, HarkLoginDone done, gpointer user_data)
{
  Op *op = hark_login_change_op_new(client, op_name, name, done, user_data);
  if (op == NULL)
    return;
  op->server_words = TRUE;
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "op", op_name);
  json_object_set_string_member(body, "name", name);
  if (message != NULL)
    json_object_set_string_member(body, "message", message);
  hark_login_op_send(op, "POST", "/v1/contacts", body, TRUE, contacts_answered);
}

static void
background_done(JsonObject *result, GError *error, gpointer data)
{
  if (result != NULL)
    json_object_unref(result);
  if (error != NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_message("could not fetch contact requests: %s", error->message);
  g_clear_error(&error);
}

void
hark_login_client_sync_contacts(HarkLoginClient *client)
{
  if (client->user != NULL)
    hark_login_client_requests(client, background_done, NULL);
}

void
hark_login_forget_contacts(HarkLoginClient *client)
{
  g_hash_table_remove_all(client->requests_seen);
  g_clear_pointer(&client->requests_shown, g_free);
}

/* ---- asking about a user ---------------------------------------------------------------- */

static void
lookup_answered(JsonObject *result, GError *error, gpointer data)
{
  g_autoptr(GTask) task = data;
  if (g_task_return_error_if_cancelled(task)) {
    g_clear_error(&error);
  } else if (g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNKNOWN_USER)) {
    g_error_free(error);
    g_task_return_int(task, HARK_LOGIN_LOOKUP_NO_SUCH_USER);
  } else if (error != NULL) {
    g_task_return_error(task, error);
  } else {
    JsonObject *last_seen = hark_login_member_object(result, "last_seen");
    const char *user = hark_login_member_string(result, "user");
    JsonNode *recent = last_seen != NULL ? json_object_get_member(last_seen, "recent") : NULL;
    if (user == NULL || recent == NULL || json_node_get_value_type(recent) != G_TYPE_BOOLEAN)
      g_task_return_new_error(task, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                              "the login server's answer about a user has no user or last_seen");
    else {
      g_task_set_task_data(task, g_strdup(user), g_free);
      g_task_return_int(task, json_node_get_boolean(recent) ? HARK_LOGIN_LOOKUP_RECENT
                                                            : HARK_LOGIN_LOOKUP_NOT_RECENT);
    }
  }
  if (result != NULL)
    json_object_unref(result);
}

gboolean
hark_login_is_name(const char *text)
{
  gsize length = text != NULL ? strlen(text) : 0;
  return length >= 1 && length <= 64 &&
         strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
           length;
}

/* A look-up is signed when it can be (hark_login_can_sign). One whose certificate the
 * server refuses (its clock already past the certificate's end, say) is asked again
 * unsigned: a look-up needs no account, only the address's budget then. */
static void
lookup_answer(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL && op->sign &&
      g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNAUTHENTICATED)) {
    g_debug("login: a signed look-up was refused (%s); asking unsigned", error->message);
    g_error_free(error);
    g_autofree char *path = g_strdup(op->path);
    hark_login_op_send(op, "GET", path, NULL, FALSE, hark_login_op_answer);
    return;
  }
  hark_login_op_answer(op, answer, error);
}

void
hark_login_client_lookup_async(HarkLoginClient *client, const char *name, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new(NULL, cancellable, callback, user_data);
  g_task_set_source_tag(task, hark_login_client_lookup_async);
  if (!hark_login_is_name(name)) {
    g_task_return_int(task, HARK_LOGIN_LOOKUP_NO_SUCH_USER);
    g_object_unref(task);
    return;
  }
  Op *op = hark_login_op_new(client, lookup_answered, task);
  op->server_words = TRUE; /* its rate limit is on look-ups, not on failed logins */
  g_autofree char *path = g_strdup_printf("/v1/users/%s", name);
  hark_login_op_send(op, "GET", path, NULL, hark_login_can_sign(client), lookup_answer);
}

HarkLoginLookup
hark_login_client_lookup_finish(GAsyncResult *result, char **user, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, NULL), HARK_LOGIN_LOOKUP_NO_SUCH_USER);
  GTask *task = G_TASK(result);
  gssize answer = g_task_propagate_int(task, error);
  if (answer < 0)
    return HARK_LOGIN_LOOKUP_NO_SUCH_USER;
  if (user != NULL)
    *user = g_strdup(g_task_get_task_data(task));
  return (HarkLoginLookup)answer;
}

static void
search_answered(JsonObject *result, GError *error, gpointer data)
{
  g_autoptr(GTask) task = data;
  JsonArray *users = error == NULL ? member_array(result, "users") : NULL;
  if (g_task_return_error_if_cancelled(task)) {
    g_clear_error(&error);
  } else if (error != NULL) {
    g_task_return_error(task, error);
  } else if (users == NULL) {
    g_task_return_new_error(task, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                            "the login server's search answer has no users");
  } else {
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < json_array_get_length(users); i++) {
      JsonNode *node = json_array_get_element(users, i);
      if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
        g_ptr_array_add(names, g_strdup(json_node_get_string(node)));
    }
    g_task_return_pointer(task, names, (GDestroyNotify)g_ptr_array_unref);
  }
  if (result != NULL)
    json_object_unref(result);
}

void
hark_login_client_search_async(HarkLoginClient *client, const char *prefix, guint limit,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  GTask *task = g_task_new(NULL, cancellable, callback, user_data);
  g_task_set_source_tag(task, hark_login_client_search_async);
  if (!hark_login_is_name(prefix)) {
    g_task_return_new_error(task, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_NAME,
                            "a search prefix holds only what user names hold");
    g_object_unref(task);
    return;
  }
  Op *op = hark_login_op_new(client, search_answered, task);
  op->server_words = TRUE;
  g_autofree char *path = g_strdup_printf("/v1/users?prefix=%s&limit=%u", prefix,
                                          CLAMP(limit, 1, HARK_LOGIN_SEARCH_LIMIT_MAX));
  hark_login_op_send(op, "GET", path, NULL, hark_login_can_sign(client), lookup_answer);
}

GPtrArray *
hark_login_client_search_finish(GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
  return g_task_propagate_pointer(G_TASK(result), error);
}
