/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger-commands.c: `msg`, `history`, `conversations` and `typing`, and the
 * messenger's counters in the router's `messages` answer. */
#include "messenger-private.h"

#include "hark/presence.h"

#include <openssl/rand.h>
#include <string.h>

#define HISTORY_DEFAULT 20
#define HISTORY_MAX 1000

static HarkMessenger *
messenger_of(HarkCommandCall *call, gpointer user_data)
{
  HarkMessenger *messenger = *(HarkMessenger **)user_data;
  if (messenger == NULL)
    hark_command_call_return_error(
      call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                "messages need a login section in the configuration"));
  else if (messenger->history == NULL)
    hark_command_call_return_error(call,
                                   g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                               "messages are off: %s", messenger->history_error));
  return messenger != NULL && messenger->history != NULL ? messenger : NULL;
}

static void
sent(HarkMessenger *messenger, JsonObject *answer, GError *error, gpointer data)
{
  HarkCommandCall *call = data;
  if (answer != NULL)
    hark_command_call_return_object(call, answer);
  else
    hark_command_call_return_error(call, error);
}

/* A group as the user names it: "#" and its id, or "#" and its name when exactly one
 * group this device knows has that name. */
static HarkMessageGroup *
group_named(HarkMessenger *messenger, const char *name, GError **error)
{
  if (name == NULL || name[0] != '#') {
    g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                "a group is written #ID or #NAME");
    return NULL;
  }
  if (hark_message_group_id_is_valid(name + 1)) {
    HarkMessageGroup *group = hark_message_history_group_get(messenger->history, name + 1, NULL);
    if (group != NULL)
      return group;
  }
  g_autoptr(GPtrArray) groups = hark_message_history_groups(messenger->history, error);
  if (groups == NULL)
    return NULL;
  HarkMessageGroup *found = NULL;
  guint n = 0;
  for (guint i = 0; i < groups->len; i++) {
    HarkMessageGroup *g = groups->pdata[i];
    if (strcmp(g->name, name + 1) == 0 && n++ == 0)
      found = g;
  }
  if (n != 1) {
    g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                n == 0 ? "no group %s here" : "several groups are called %s: give #ID (`groups`)",
                name);
    return NULL;
  }
  return hark_message_group_copy(found);
}

static void
run_msg(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  GError *error = NULL;
  const char *to = json_object_get_string_member(args, "to");
  const char *text = json_object_get_string_member(args, "text");
  g_autoptr(HarkMessageGroup) group = to[0] == '#' ? group_named(messenger, to, &error) : NULL;
  if (to[0] == '#' && group == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  /* To a group, the text carries the group's state: a member's device that logged in
   * after the group was made learns it from its own user's or the admin's next message. */
  GVariant *inner = group != NULL ? hark_message_group_text_new(text, group, &error)
                                  : hark_message_text_new(text, &error);
  if (inner == NULL) {
    error->domain = HARK_COMMAND_ERROR;
    error->code = HARK_COMMAND_ERROR_BAD_ARGUMENTS;
    hark_command_call_return_error(call, error);
    return;
  }
  g_autofree char *group_to = group != NULL ? g_strconcat("#", group->id, NULL) : NULL;
  hark_messenger_send(messenger, group_to != NULL ? group_to : to, inner, sent, call);
}

/* ---- groups ---------------------------------------------------------------------------- */

static JsonObject *
group_json(const HarkMessageGroup *group, const char *me_key)
{
  JsonObject *o = json_object_new();
  g_autofree char *id = g_strconcat("#", group->id, NULL);
  g_autofree char *conversation = g_strconcat("g:", group->id, NULL);
  json_object_set_string_member(o, "group", id);
  json_object_set_string_member(o, "name", group->name);
  json_object_set_string_member(o, "admin", group->admin);
  json_object_set_int_member(o, "version", (gint64)group->version);
  json_object_set_string_member(o, "conversation", conversation);
  JsonArray *members = json_array_new();
  for (guint i = 0; i < group->members->len; i++)
    json_array_add_string_element(members, group->members->pdata[i]);
  json_object_set_array_member(o, "members", members);
  json_object_set_boolean_member(o, "member", hark_message_group_has(group, me_key));
  return o;
}

static void
group_sent(HarkMessenger *messenger, JsonObject *answer, GError *error, gpointer data)
{
  HarkCommandCall *call = data;
  if (answer == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  g_autofree char *me_key = NULL;
  hark_messenger_whoami(messenger, NULL, &me_key);
  const char *to = json_object_get_string_member(answer, "to");
  g_autoptr(HarkMessageGroup) group =
    hark_message_history_group_get(messenger->history, to + 1, NULL);
  if (group != NULL)
    json_object_set_object_member(answer, "state", group_json(group, me_key));
  hark_command_call_return_object(call, answer);
}

/* The change as this device's own rules see it (a user without the right is told so
 * here; the other devices would refuse it anyway), then sent. Takes change. */
static void
change_group(HarkCommandCall *call, HarkMessenger *messenger, const HarkMessageGroup *before,
             HarkMessageGroupChange *change)
{
  g_autoptr(HarkMessageGroupChange) owned = change;
  g_autofree char *me_key = NULL;
  if (!hark_messenger_whoami(messenger, NULL, &me_key)) {
    hark_command_call_return_error(call, g_error_new_literal(HARK_COMMAND_ERROR,
                                                             HARK_COMMAND_ERROR_FAILED,
                                                             "not logged in (`login USER`)"));
    return;
  }
  HarkMessageGroup *after = NULL;
  GError *error = NULL;
  if (hark_message_group_judge(before, me_key, me_key, change, &after, &error) !=
      HARK_MESSAGE_GROUP_TAKE) {
    GError *refused = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED, "%s",
                                  error != NULL ? error->message : "not now");
    g_clear_error(&error);
    hark_command_call_return_error(call, refused);
    return;
  }
  hark_messenger_send_change(messenger, before, owned, after, group_sent, call);
}

/* A change of op to before (users added or removed), with the state it claims after. */
static HarkMessageGroupChange *
change_new(const HarkMessageGroup *before, HarkMessageGroupOp op, GPtrArray *users,
           const char *me_key)
{
  HarkMessageGroupChange *change = g_new0(HarkMessageGroupChange, 1);
  change->op = op;
  change->users = users != NULL ? g_ptr_array_ref(users) : g_ptr_array_new_with_free_func(g_free);
  change->group = hark_message_group_copy(before);
  GPtrArray *members = change->group->members;
  if (op == HARK_MESSAGE_GROUP_ADD || op == HARK_MESSAGE_GROUP_REMOVE)
    change->group->version++;
  for (guint i = 0; i < change->users->len; i++)
    if (op == HARK_MESSAGE_GROUP_ADD)
      g_ptr_array_add(members, g_strdup(change->users->pdata[i]));
  for (guint m = members->len; m-- > 0;) {
    const char *member = members->pdata[m];
    gboolean goes = op == HARK_MESSAGE_GROUP_LEAVE && strcmp(member, me_key) == 0;
    for (guint i = 0; op == HARK_MESSAGE_GROUP_REMOVE && i < change->users->len; i++)
      goes = goes || strcmp(member, change->users->pdata[i]) == 0;
    if (goes)
      g_ptr_array_remove_index(members, m);
  }
  hark_message_group_normalise(members);
  return change;
}

static GPtrArray *
users_arg(HarkCommandCall *call, JsonObject *args, guint max)
{
  GError *error = NULL;
  GPtrArray *users =
    hark_message_group_users_parse(json_object_get_string_member(args, "users"), max, &error);
  if (users != NULL && users->len == 0) {
    g_ptr_array_unref(users);
    users = NULL;
    error =
      g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "no user named");
  }
  if (users == NULL) {
    error->domain = HARK_COMMAND_ERROR;
    error->code = HARK_COMMAND_ERROR_BAD_ARGUMENTS;
    hark_command_call_return_error(call, error);
  }
  return users;
}

static void
run_group_create(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  const char *name = json_object_get_string_member(args, "name");
  g_autofree char *me_key = NULL;
  if (!hark_message_group_name_is_valid(name)) {
    hark_command_call_return_error(
      call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "a group's name is 1-%d bytes without control characters",
                        HARK_MESSAGE_GROUP_MAX_NAME));
    return;
  }
  g_autoptr(GPtrArray) users = users_arg(call, args, HARK_MESSAGE_GROUP_MAX_MEMBERS - 1);
  if (users == NULL)
    return;
  if (!hark_messenger_whoami(messenger, NULL, &me_key)) {
    hark_command_call_return_error(call, g_error_new_literal(HARK_COMMAND_ERROR,
                                                             HARK_COMMAND_ERROR_FAILED,
                                                             "not logged in (`login USER`)"));
    return;
  }
  guint8 id[HARK_MESSAGE_GROUP_ID_SIZE];
  if (RAND_bytes(id, sizeof id) != 1) {
    hark_command_call_return_error(call, g_error_new_literal(HARK_COMMAND_ERROR,
                                                             HARK_COMMAND_ERROR_FAILED,
                                                             "no random bytes for a group id"));
    return;
  }
  g_autofree char *hex = hark_messenger_id_hex(id);
  g_ptr_array_add(users, g_strdup(me_key));
  g_ptr_array_add(users, NULL);
  g_autoptr(HarkMessageGroup) group =
    hark_message_group_new(hex, name, me_key, 1, (const char *const *)users->pdata);
  if (group->members->len > HARK_MESSAGE_GROUP_MAX_MEMBERS) {
    hark_command_call_return_error(
      call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "a group has at most %d members", HARK_MESSAGE_GROUP_MAX_MEMBERS));
    return;
  }
  HarkMessageGroupChange *change = change_new(group, HARK_MESSAGE_GROUP_CREATE, NULL, me_key);
  change_group(call, messenger, NULL, change);
}

static void
run_group_change(HarkCommandCall *call, JsonObject *args, gpointer user_data, HarkMessageGroupOp op)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  GError *error = NULL;
  g_autoptr(HarkMessageGroup) before =
    group_named(messenger, json_object_get_string_member(args, "group"), &error);
  if (before == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  g_autoptr(GPtrArray) users =
    op != HARK_MESSAGE_GROUP_LEAVE ? users_arg(call, args, HARK_MESSAGE_GROUP_MAX_MEMBERS) : NULL;
  if (op != HARK_MESSAGE_GROUP_LEAVE && users == NULL)
    return;
  g_autofree char *me_key = NULL;
  hark_messenger_whoami(messenger, NULL, &me_key);
  change_group(call, messenger, before, change_new(before, op, users, me_key ? me_key : ""));
}

static void
run_group_add(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  run_group_change(call, args, user_data, HARK_MESSAGE_GROUP_ADD);
}

static void
run_group_remove(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  run_group_change(call, args, user_data, HARK_MESSAGE_GROUP_REMOVE);
}

static void
run_group_leave(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  run_group_change(call, args, user_data, HARK_MESSAGE_GROUP_LEAVE);
}

static void
run_groups(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  GError *error = NULL;
  g_autoptr(GPtrArray) groups = hark_message_history_groups(messenger->history, &error);
  if (groups == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  g_autofree char *me_key = NULL;
  hark_messenger_whoami(messenger, NULL, &me_key);
  JsonArray *list = json_array_new();
  for (guint i = 0; i < groups->len; i++)
    json_array_add_object_element(list, group_json(groups->pdata[i], me_key ? me_key : ""));
  JsonObject *o = json_object_new();
  json_object_set_array_member(o, "groups", list);
  hark_command_call_return_object(call, o);
}

/* The last typing note sent to a user: one per conversation every
 * MESSENGER_TYPING_EVERY_S, except that an "off" after an "on" always goes (once). */
typedef struct {
  gint64 at; /* monotonic s */
  gboolean on;
} TypingSent;

static gboolean
typing_may_send(HarkMessenger *messenger, const char *user_key, gboolean on)
{
  gint64 now = hark_clock_now_monotonic(messenger->clock) / G_USEC_PER_SEC;
  TypingSent *last = g_hash_table_lookup(messenger->typing_sent, user_key);
  if (last != NULL && now - last->at < MESSENGER_TYPING_EVERY_S && (on || !last->on))
    return FALSE;
  if (last == NULL) {
    if (g_hash_table_size(messenger->typing_sent) >= 1024)
      g_hash_table_remove_all(messenger->typing_sent);
    last = g_new0(TypingSent, 1);
    g_hash_table_insert(messenger->typing_sent, g_strdup(user_key), last);
  }
  last->at = now;
  last->on = on;
  return TRUE;
}

static void
typing_sent(HarkMessenger *messenger, JsonObject *answer, GError *error, gpointer data)
{
  if (answer != NULL) {
    messenger->counters.typing_sent++;
    json_object_set_boolean_member(answer, "sent", TRUE);
  }
  sent(messenger, answer, error, data);
}

static void
run_typing(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  const char *to = json_object_get_string_member(args, "to");
  const char *state = json_object_get_string_member_with_default(args, "state", "on");
  g_autofree char *me_key = NULL;
  GError *error = NULL;
  if (!hark_presence_name_is_valid(to) ||
      (g_strcmp0(state, "on") != 0 && g_strcmp0(state, "off") != 0))
    error = g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                                "typing: USER (a user name) and on or off");
  else if (!messenger->typing_enabled)
    error = g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                "typing notes are off on this node (messages.typing)");
  else if (!hark_messenger_whoami(messenger, NULL, &me_key))
    error = g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                "not logged in (`login USER`)");
  if (error != NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  gboolean on = g_strcmp0(state, "on") == 0;
  g_autofree char *to_key = hark_presence_name_key(to);
  if (!typing_may_send(messenger, to_key, on)) {
    messenger->counters.typing_limited++;
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "to", to_key);
    json_object_set_boolean_member(o, "sent", FALSE);
    json_object_set_string_member(o, "why", "one typing note every 3 s per conversation");
    hark_command_call_return_object(call, o);
    return;
  }
  hark_messenger_send_online(messenger, to, hark_message_typing_new(on), typing_sent, call);
}

static JsonObject *
message_json(HarkMessenger *messenger, const HarkHistoryMessage *message)
{
  JsonObject *o = hark_messenger_message_json(message, "id");
  if (message->direction == HARK_MESSAGE_OUT &&
      g_strcmp0(message->sender_device, hark_identity_get_fingerprint(messenger->node->identity)) ==
        0) {
    g_autoptr(GPtrArray) states =
      hark_message_history_states(messenger->history, message->id, NULL);
    JsonObject *by_device = json_object_new();
    for (guint i = 0; states != NULL && i < states->len; i++) {
      const HarkHistoryDeviceState *s = states->pdata[i];
      json_object_set_string_member(by_device, s->device, hark_messenger_state_name(s->state));
    }
    json_object_set_object_member(o, "states", by_device);
  }
  return o;
}

/* Read receipts for what the user now saw: one per sender device, for its messages. */
static void
send_read_receipts(HarkMessenger *messenger, GPtrArray *messages)
{
  g_autoptr(GHashTable) by_device =
    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_array_unref);
  g_autoptr(GHashTable) user_of = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < messages->len; i++) {
    const HarkHistoryMessage *m = messages->pdata[i];
    if (m->direction != HARK_MESSAGE_IN)
      continue;
    GArray *ids = g_hash_table_lookup(by_device, m->sender_device);
    if (ids == NULL) {
      ids = g_array_new(FALSE, FALSE, HARK_MESSAGE_ID_SIZE);
      g_hash_table_insert(by_device, m->sender_device, ids);
      g_hash_table_insert(user_of, m->sender_device, m->sender);
    }
    if (ids->len < HARK_MESSAGE_MAX_RECEIPT_IDS)
      g_array_append_vals(ids, m->id, 1);
  }
  GHashTableIter iter;
  gpointer device, value;
  g_hash_table_iter_init(&iter, by_device);
  while (g_hash_table_iter_next(&iter, &device, &value)) {
    GArray *ids = value;
    const char *user = g_hash_table_lookup(user_of, device);
    GVariant *receipt = hark_message_receipt_new((const guint8(*)[HARK_MESSAGE_ID_SIZE])ids->data,
                                                 ids->len, "read", NULL);
    GBytes *certificate = hark_messenger_certificate_of(messenger, user, device);
    if (receipt != NULL && certificate != NULL)
      hark_messenger_send_once(messenger, user, device, certificate, receipt);
    else if (receipt != NULL)
      g_variant_unref(g_variant_ref_sink(receipt));
  }
}

static guint64
unread_in(HarkMessenger *messenger, const char *conversation)
{
  g_autoptr(GPtrArray) list = hark_message_history_conversations(messenger->history, NULL);
  for (guint i = 0; list != NULL && i < list->len; i++) {
    const HarkHistoryConversation *c = list->pdata[i];
    if (g_strcmp0(c->key, conversation) == 0)
      return c->unread;
  }
  return 0;
}

static void
run_history(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  const char *with = json_object_get_string_member(args, "with");
  gint64 n = json_object_get_int_member_with_default(args, "n", HISTORY_DEFAULT);
  GError *error = NULL;
  g_autoptr(HarkMessageGroup) group = with[0] == '#' ? group_named(messenger, with, &error) : NULL;
  if (with[0] == '#' && group == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  if ((group == NULL && !hark_presence_name_is_valid(with)) || n < 1 || n > HISTORY_MAX) {
    hark_command_call_return_error(
      call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "history: USER (a user name) or #GROUP, and N from 1 to %d", HISTORY_MAX));
    return;
  }
  g_autofree char *conversation =
    group != NULL ? g_strconcat("g:", group->id, NULL) : hark_messenger_conversation_of(with);
  g_autoptr(GPtrArray) messages =
    hark_message_history_list(messenger->history, conversation, (guint)n, &error);
  if (messages == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "conversation", conversation);
  JsonArray *list = json_array_new();
  for (guint i = 0; i < messages->len; i++)
    json_array_add_object_element(list, message_json(messenger, messages->pdata[i]));
  json_object_set_array_member(o, "messages", list);
  guint64 unread = unread_in(messenger, conversation);
  hark_message_history_mark_seen(messenger->history, conversation, NULL);
  /* Read receipts for what was unread until now (the last ones shown), once. */
  if (messenger->read_receipts && unread > 0) {
    guint first = messages->len > unread ? messages->len - (guint)unread : 0;
    g_autoptr(GPtrArray) seen = g_ptr_array_new();
    for (guint i = first; i < messages->len; i++)
      g_ptr_array_add(seen, messages->pdata[i]);
    send_read_receipts(messenger, seen);
  }
  hark_command_call_return_object(call, o);
}

/* The conversation's last shown message (as a list shows it under the title), when it
 * has one: the last in its order, which for past messages from another device is by
 * their senders' times, not by when they came. */
static void
add_last(HarkMessenger *messenger, JsonObject *o, const char *conversation)
{
  g_autoptr(GPtrArray) last = hark_message_history_list(messenger->history, conversation, 1, NULL);
  if (last == NULL || last->len == 0)
    return;
  json_object_set_object_member(o, "last", hark_messenger_message_json(last->pdata[0], "id"));
}

static void
run_conversations(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  GError *error = NULL;
  g_autoptr(GPtrArray) list = hark_message_history_conversations(messenger->history, &error);
  if (list == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  JsonArray *out = json_array_new();
  for (guint i = 0; i < list->len; i++) {
    const HarkHistoryConversation *c = list->pdata[i];
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "conversation", c->key);
    json_object_set_string_member(o, "title", c->title);
    json_object_set_int_member(o, "last_activity", c->last_activity);
    json_object_set_int_member(o, "unread", (gint64)c->unread);
    add_last(messenger, o, c->key);
    json_array_add_object_element(out, o);
  }
  JsonObject *o = json_object_new();
  json_object_set_array_member(o, "conversations", out);
  hark_command_call_return_object(call, o);
}

static JsonObject *
counters_json(const MessengerCounters *c)
{
  JsonObject *o = json_object_new();
  const struct {
    const char *name;
    guint64 value;
  } rows[] = {
    { "sent", c->sent },
    { "received", c->received },
    { "duplicates", c->duplicates },
    { "receipts", c->receipts },
    { "held", c->held },
    { "fetched", c->fetched },
    { "refused_malformed", c->refused_malformed },
    { "refused_forged", c->refused_forged },
    { "refused_foreign", c->refused_foreign },
    { "refused_expired", c->refused_expired },
    { "refused_not_for_us", c->refused_not_for_us },
    { "refused_undecryptable", c->refused_undecryptable },
    { "refused_replayed", c->refused_replayed },
    { "refused_rate", c->refused_rate },
    { "refused_history", c->refused_history },
    { "history_requests", c->history_requests },
    { "history_requests_ignored", c->history_requests_ignored },
    { "history_requests_again", c->history_requests_again },
    { "history_sent", c->history_sent },
    { "history_received", c->history_received },
    { "history_refused", c->history_refused },
    { "history_groups", c->history_groups },
    { "history_groups_refused", c->history_groups_refused },
    { "typing_received", c->typing_received },
    { "typing_sent", c->typing_sent },
    { "typing_limited", c->typing_limited },
    { "refused_not_member", c->refused_not_member },
    { "refused_group", c->refused_group },
    { "group_changes", c->group_changes },
    { "group_states", c->group_states },
    { "signals_sent", c->signals_sent },
    { "signals_received", c->signals_received },
    { "signals_refused", c->signals_refused },
    { "signals_retried", c->signals_retried },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
    json_object_set_int_member(o, rows[i].name, (gint64)rows[i].value);
  return o;
}

/* The router's counters (an SN's routing, a client's sends) and this device's. */
static void
run_messages(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = *(HarkMessenger **)user_data;
  if (messenger == NULL) {
    hark_command_call_return_error(
      call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                "messages need a login section in the configuration"));
    return;
  }
  JsonObject *o = hark_message_route_snapshot(messenger->route);
  json_object_set_object_member(o, "device", counters_json(&messenger->counters));
  if (messenger->history_error != NULL)
    json_object_set_string_member(o, "history_error", messenger->history_error);
  hark_command_call_return_object(call, o);
}

static const HarkCommandParam msg_params[] = {
  { "to", HARK_PARAM_STRING, TRUE, "the user to write to, or #GROUP (its #id or #name)" },
  { "text", HARK_PARAM_STRING, TRUE, "the message (quote it; at most 8192 bytes)" },
  { NULL },
};

static const HarkCommandParam history_params[] = {
  { "with", HARK_PARAM_STRING, TRUE, "the user the conversation is with, or #GROUP" },
  { "n", HARK_PARAM_INT, FALSE, "how many of the last messages (20)" },
  { NULL },
};

static const HarkCommandParam typing_params[] = {
  { "to", HARK_PARAM_STRING, TRUE, "the user you are writing to" },
  { "state", HARK_PARAM_STRING, FALSE, "on (typing, the default) or off (stopped)" },
  { NULL },
};

static const HarkCommandParam group_create_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "the group's name (1-64 bytes)" },
  { "users", HARK_PARAM_STRING, TRUE, "its other members, separated by commas or spaces" },
  { NULL },
};

static const HarkCommandParam group_users_params[] = {
  { "group", HARK_PARAM_STRING, TRUE, "the group: #id or #name" },
  { "users", HARK_PARAM_STRING, TRUE, "users, separated by commas or spaces" },
  { NULL },
};

static const HarkCommandParam group_params[] = {
  { "group", HARK_PARAM_STRING, TRUE, "the group: #id or #name" },
  { NULL },
};

static const HarkCommand messenger_commands[] = {
  { HARK_COMMAND_VERSION, "group-create",
    "make a group conversation (at most 100 members) with you as its admin", group_create_params,
    run_group_create },
  { HARK_COMMAND_VERSION, "group-add", "add users to a group you are the admin of",
    group_users_params, run_group_add },
  { HARK_COMMAND_VERSION, "group-remove", "remove users from a group you are the admin of",
    group_users_params, run_group_remove },
  { HARK_COMMAND_VERSION, "group-leave", "leave a group: its messages stop coming", group_params,
    run_group_leave },
  { HARK_COMMAND_VERSION, "groups", "the groups this device knows, with their members", NULL,
    run_groups },
  { HARK_COMMAND_VERSION, "msg",
    "send USER a message, end to end, to every device of theirs and of yours", msg_params,
    run_msg },
  { HARK_COMMAND_VERSION, "history",
    "the last messages with USER, with what each device of theirs got (marks them read)",
    history_params, run_history },
  { HARK_COMMAND_VERSION, "messages",
    "instant messages: what this node routed as an SN, and what this device sent, received and "
    "refused, by reason",
    NULL, run_messages },
  { HARK_COMMAND_VERSION, "typing",
    "tell USER's online devices that you are typing (on) or stopped (off); never held, at "
    "most one every 3 s",
    typing_params, run_typing },
  { HARK_COMMAND_VERSION, "conversations",
    "conversations, the most recent first, with unread counts", NULL, run_conversations },
};

/* ---- `signal`: for tests only ----------------------------------------------------------- */

static void
signal_sent(gpointer data, GPtrArray *delivered, const GError *error)
{
  HarkCommandCall *call = data;
  if (error != NULL) {
    hark_command_call_return_error(call, g_error_copy(error));
    return;
  }
  JsonArray *devices = json_array_new();
  for (guint i = 0; i < delivered->len; i++)
    json_array_add_string_element(devices, delivered->pdata[i]);
  JsonObject *o = json_object_new();
  json_object_set_array_member(o, "delivered", devices);
  hark_command_call_return_object(call, o);
}

/* A signal of any kind with any a{sv} body (empty when none is given), so that a test can
 * send what the layers above would not: a kind nobody takes, a malformed call signal, a
 * call signal with another call's id or a nonce that is not the one asked for. */
static void
run_signal(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkMessenger *messenger = messenger_of(call, user_data);
  if (messenger == NULL)
    return;
  const char *text = json_object_get_string_member_with_default(args, "body", NULL);
  GVariantBuilder body;
  g_variant_builder_init(&body, G_VARIANT_TYPE_VARDICT);
  if (text != NULL) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) parsed = g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL, NULL, &error);
    if (parsed == NULL) {
      g_variant_builder_clear(&body);
      hark_command_call_return_error(
        call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                          "'body' is not an a{sv} in GVariant text: %s", error->message));
      return;
    }
    /* Copied entry by entry: the messenger takes a floating body. */
    for (gsize i = 0; i < g_variant_n_children(parsed); i++) {
      g_autoptr(GVariant) entry = g_variant_get_child_value(parsed, i);
      g_variant_builder_add_value(&body, entry);
    }
  }
  hark_messenger_signal_send(messenger, json_object_get_string_member(args, "to"),
                             json_object_get_string_member_with_default(args, "device", NULL),
                             json_object_get_string_member(args, "kind"),
                             g_variant_builder_end(&body), signal_sent, call);
}

static const HarkCommandParam signal_params[] = {
  { "to", HARK_PARAM_STRING, TRUE, "the user" },
  { "kind", HARK_PARAM_STRING, TRUE, "the signal's kind ([a-z-]+)" },
  { "device", HARK_PARAM_STRING, FALSE, "only this device (64 hex)" },
  { "body", HARK_PARAM_STRING, FALSE, "the body, an a{sv} in GVariant text (none: empty)" },
  { NULL },
};

static const HarkCommand signal_command = {
  HARK_COMMAND_VERSION, "signal",
  "send USER's online devices a signal of KIND with BODY (only with node.test_clock: tests)",
  signal_params, run_signal,
};

void
hark_messenger_commands_register(HarkContext *core_ctx, HarkMessenger **messenger)
{
  for (gsize i = 0; i < G_N_ELEMENTS(messenger_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &messenger_commands[i], messenger, &error))
      g_error("messenger command table is broken: %s", error->message);
  }
  /* Only a test node has it: it sends what no layer above would. */
  if (hark_clock_is_test(hark_context_get_clock(core_ctx))) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &signal_command, messenger, &error))
      g_error("the signal command is broken: %s", error->message);
  }
}
