/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-buddies.c: the buddy list of the login client: checked and kept in the state
 * directory (buddies.json), fetched, and changed on the server (a change that meets a
 * `conflict` fetches the list and tries once more). */
#include "login-impl.h"

static gboolean
save_buddies(HarkLoginClient *client, GError **error)
{
  g_autoptr(JsonObject) saved = json_object_new();
  json_object_set_string_member(saved, "user", client->user);
  json_object_set_int_member(saved, "revision", client->revision);
  json_object_set_array_member(saved, "buddies", json_array_ref(client->buddies));
  g_autofree char *text = hark_login_json_text(saved);
  return hark_login_save_private(client->buddies_path, text, error);
}

/* ---- the buddy list --------------------------------------------------------------- */

static void
emit_buddies_changed(HarkLoginClient *client)
{
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", client->user);
  json_object_set_int_member(data, "revision", client->revision);
  json_object_set_array_member(data, "buddies", json_array_ref(client->buddies));
  hark_context_emit(client->ctx, "buddies-changed", data);
  if (client->buddy_hooks != NULL && client->buddy_hooks->changed != NULL)
    client->buddy_hooks->changed(client->buddy_hooks_data);
}

/* A checked list becomes ours (saved; an event when it changed). Takes buddies. */
gboolean
hark_login_install_buddies(HarkLoginClient *client, gint64 revision, JsonArray *buddies,
                           GError **error)
{
  gboolean changed = revision != client->revision;
  g_clear_pointer(&client->buddies, json_array_unref);
  client->buddies = buddies;
  client->revision = revision;
  if (!save_buddies(client, error))
    return FALSE;
  if (changed)
    emit_buddies_changed(client);
  return TRUE;
}

/* The list the server sent becomes ours. */
static gboolean
take_buddy_list(HarkLoginClient *client, JsonObject *list, GError **error)
{
  gint64 revision;
  JsonArray *buddies = hark_login_read_buddy_list(list, &revision, error);
  return buddies != NULL && hark_login_install_buddies(client, revision, buddies, error);
}

/* The saved list, when it is this user's. */
void
hark_login_load_buddies(HarkLoginClient *client)
{
  char *text = NULL;
  gsize length = 0;
  if (!g_file_get_contents(client->buddies_path, &text, &length, NULL))
    return;
  g_autoptr(GBytes) bytes = g_bytes_new_take(text, length);
  g_autoptr(JsonObject) saved = hark_login_parse_object(bytes);
  if (g_strcmp0(hark_login_member_string(saved, "user"), client->user) != 0)
    return;
  gint64 revision;
  g_autoptr(JsonArray) buddies = hark_login_read_buddy_list(saved, &revision, NULL);
  if (buddies == NULL)
    return;
  client->buddies = g_steal_pointer(&buddies);
  client->revision = revision;
}

/* ---- the buddy list --------------------------------------------------------------- */

/* Takes a buddy-list answer into the client; FALSE when the op has been failed (and
 * freed) instead. Takes error. */
static gboolean
op_take_buddies(Op *op, JsonObject *answer, GError *error)
{
  if (error == NULL && hark_login_op_is_stale(op))
    error = hark_login_stale_error();
  if (error == NULL)
    take_buddy_list(op->client, answer, &error);
  if (error != NULL) {
    hark_login_op_fail(op, error);
    return FALSE;
  }
  return TRUE;
}

void
hark_login_buddies_fetched(Op *op, JsonObject *answer, GError *error)
{
  /* Offline, the saved list is still worth showing, marked as not synced. */
  if (g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNREACHABLE) &&
      !hark_login_op_is_stale(op)) {
    JsonObject *result = hark_login_buddies_result(op->client, error->message);
    g_error_free(error);
    hark_login_op_finish(op, result, NULL);
    return;
  }
  if (op_take_buddies(op, answer, error))
    hark_login_op_finish(op, hark_login_buddies_result(op->client, NULL), NULL);
}

void
hark_login_fetch_buddies(Op *op, OpStep step)
{
  hark_login_op_send(op, "GET", "/v1/buddies", NULL, TRUE, step);
}

void
hark_login_client_buddies(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return;
  }
  hark_login_fetch_buddies(hark_login_op_new(client, done, user_data), hark_login_buddies_fetched);
  /* Whoever looks at the list wants to know who asks to be on it, too. */
  hark_login_client_sync_contacts(client);
}

Op *
hark_login_change_op_new(HarkLoginClient *client, const char *op_name, const char *name,
                         HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, hark_login_not_logged_in_error(), user_data);
    return NULL;
  }
  Op *op = hark_login_op_new(client, done, user_data);
  op->buddy_op = g_strdup(op_name);
  op->buddy_name = g_strdup(name);
  return op;
}

static void buddy_changed(Op *op, JsonObject *answer, GError *error);

/* The change, based on the revision this device knows, so that a change made meanwhile
 * on another device is detected (`conflict`) rather than overwritten. */
static void
send_buddy_change(Op *op)
{
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "op", op->buddy_op);
  json_object_set_string_member(body, "name", op->buddy_name);
  if (op->buddy_alias != NULL)
    json_object_set_string_member(body, "alias", op->buddy_alias);
  if (op->client->revision >= 0)
    json_object_set_int_member(body, "revision", op->client->revision);
  hark_login_op_send(op, "POST", "/v1/buddies", body, TRUE, buddy_changed);
}

static void
buddies_refetched(Op *op, JsonObject *answer, GError *error)
{
  if (op_take_buddies(op, answer, error))
    send_buddy_change(op);
}

static void
buddy_changed(Op *op, JsonObject *answer, GError *error)
{
  if (g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_CONFLICT) && !op->retried &&
      !hark_login_op_is_stale(op)) {
    op->retried = TRUE;
    g_error_free(error);
    hark_login_fetch_buddies(op, buddies_refetched);
    return;
  }
  if (op_take_buddies(op, answer, error))
    hark_login_op_finish(op, hark_login_buddies_result(op->client, NULL), NULL);
}

void
hark_login_client_change_buddy(HarkLoginClient *client, const char *op_name, const char *name,
                               const char *alias, HarkLoginDone done, gpointer user_data)
{
  Op *op = hark_login_change_op_new(client, op_name, name, done, user_data);
  if (op == NULL)
    return;
  op->buddy_alias = g_strdup(alias);
  send_buddy_change(op);
}
