/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* render.c: the cli's output for people: command answers, errors and events as text.
 *
 * Answers are generic (any command a plugin adds later prints sensibly with no change
 * here): an object is "key: value" lines indented by depth, an array of scalars is one
 * comma-joined line, an array of objects is a list of "- " items. Only `help` has its
 * own layout, a table, because it is what people read most. Events are "* name key=value"
 * lines, except the instant messages' (`message`, `message-state`, `typing`), which are
 * what a person reads as a chat: "* [bob] hello", and the calls' (`call`), a sentence per
 * state: "* incoming call from bob (desk) — type `answer` or `decline`". Text that came
 * from another user is escaped there (control and bidirectional characters as \xNN,
 * \u{NNNN}), so a message cannot move the cursor, recolour the terminal or forge a line. */
#include "cli.h"

#include <string.h>

#define INDENT "  "

/* ---- scalars ---------------------------------------------------------------------- */

static gboolean
is_scalar(JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE(node) || JSON_NODE_HOLDS_NULL(node);
}

static void
append_scalar(GString *out, JsonNode *node)
{
  if (JSON_NODE_HOLDS_NULL(node)) {
    g_string_append(out, "null");
    return;
  }
  GType type = json_node_get_value_type(node);
  if (type == G_TYPE_STRING) {
    g_string_append(out, json_node_get_string(node));
  } else if (type == G_TYPE_INT64) {
    g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
  } else if (type == G_TYPE_BOOLEAN) {
    g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
  } else {
    char buffer[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append(out, g_ascii_dtostr(buffer, sizeof buffer, json_node_get_double(node)));
  }
}

/* Something that fits after "key: " on one line: a scalar, an array of scalars, or an
 * empty container. */
static gboolean
fits_one_line(JsonNode *node)
{
  if (is_scalar(node))
    return TRUE;
  if (JSON_NODE_HOLDS_OBJECT(node))
    return json_object_get_size(json_node_get_object(node)) == 0;
  JsonArray *array = json_node_get_array(node);
  for (guint i = 0; i < json_array_get_length(array); i++)
    if (!is_scalar(json_array_get_element(array, i)))
      return FALSE;
  return TRUE;
}

static void
append_one_line(GString *out, JsonNode *node)
{
  if (is_scalar(node)) {
    append_scalar(out, node);
    return;
  }
  guint length = JSON_NODE_HOLDS_ARRAY(node) ? json_array_get_length(json_node_get_array(node)) : 0;
  if (length == 0)
    g_string_append(out, "(none)");
  for (guint i = 0; i < length; i++) {
    if (i > 0)
      g_string_append(out, ", ");
    append_scalar(out, json_array_get_element(json_node_get_array(node), i));
  }
}

/* ---- nested values ---------------------------------------------------------------- */

static void append_object(GString *out, JsonObject *object, const char *indent, gboolean bullet);

/* Elements of an array that does not fit one line, each a "- " item under indent. */
static void
append_items(GString *out, JsonArray *array, const char *indent)
{
  g_autofree char *deeper = g_strconcat(indent, INDENT, NULL);
  for (guint i = 0; i < json_array_get_length(array); i++) {
    JsonNode *element = json_array_get_element(array, i);
    if (JSON_NODE_HOLDS_OBJECT(element) &&
        json_object_get_size(json_node_get_object(element)) > 0) {
      append_object(out, json_node_get_object(element), indent, TRUE);
    } else if (JSON_NODE_HOLDS_ARRAY(element) && !fits_one_line(element)) {
      g_string_append_printf(out, "%s-\n", indent);
      append_items(out, json_node_get_array(element), deeper);
    } else {
      g_string_append_printf(out, "%s- ", indent);
      append_one_line(out, element);
      g_string_append_c(out, '\n');
    }
  }
}

/* One "key: value" line, or "key:" followed by the value nested one level deeper. */
static void
append_member(GString *out, const char *lead, const char *nested_indent, const char *key,
              JsonNode *value)
{
  g_string_append_printf(out, "%s%s:", lead, key);
  if (fits_one_line(value)) {
    g_string_append_c(out, ' ');
    append_one_line(out, value);
    g_string_append_c(out, '\n');
    return;
  }
  g_string_append_c(out, '\n');
  if (JSON_NODE_HOLDS_OBJECT(value))
    append_object(out, json_node_get_object(value), nested_indent, FALSE);
  else
    append_items(out, json_node_get_array(value), nested_indent);
}

/* The members of an object at indent; as a list item (bullet), the first member
 * carries the "- " and the others line up under it. */
static void
append_object(GString *out, JsonObject *object, const char *indent, gboolean bullet)
{
  g_autofree char *first_lead = g_strconcat(indent, bullet ? "- " : "", NULL);
  g_autofree char *lead = g_strconcat(indent, bullet ? INDENT : "", NULL);
  g_autofree char *nested = g_strconcat(lead, INDENT, NULL);
  g_autoptr(GList) members = json_object_get_members(object);
  for (GList *m = members; m; m = m->next)
    append_member(out, m == members ? first_lead : lead, nested, m->data,
                  json_object_get_member(object, m->data));
}

/* ---- help ------------------------------------------------------------------------- */

/* "<name>" for a required argument, "[name]" for an optional one. */
static char *
help_args(JsonArray *params)
{
  GString *args = g_string_new(NULL);
  for (guint i = 0; params && i < json_array_get_length(params); i++) {
    JsonObject *param = json_array_get_object_element(params, i);
    gboolean required = json_object_get_boolean_member_with_default(param, "required", FALSE);
    const char *name = json_object_get_string_member_with_default(param, "name", "?");
    g_string_append_printf(args, "%s%c%s%c", args->len ? " " : "", required ? '<' : '[', name,
                           required ? '>' : ']');
  }
  return g_string_free(args, FALSE);
}

static JsonArray *
command_params(JsonObject *command)
{
  JsonNode *params = json_object_get_member(command, "params");
  return params && JSON_NODE_HOLDS_ARRAY(params) ? json_node_get_array(params) : NULL;
}

static const char *
command_string(JsonObject *command, const char *member)
{
  JsonNode *node = json_object_get_member(command, member);
  if (node == NULL || json_node_get_value_type(node) != G_TYPE_STRING)
    return "";
  return json_node_get_string(node);
}

/* One line per argument, under the row of a command asked for by name. */
static void
append_param_details(GString *out, JsonArray *params)
{
  for (guint i = 0; params && i < json_array_get_length(params); i++) {
    JsonObject *param = json_array_get_object_element(params, i);
    g_string_append_printf(
      out, INDENT "%s (%s, %s)", command_string(param, "name"), command_string(param, "type"),
      json_object_get_boolean_member_with_default(param, "required", FALSE) ? "required"
                                                                            : "optional");
    const char *help = command_string(param, "help");
    g_string_append_printf(out, "%s%s\n", *help ? ": " : "", help);
  }
}

/* help's answer is {"commands": [{name, summary, params: [{name, type, required, help}]}]};
 * FALSE when it is not that shape (then the generic layout is used). */
static gboolean
is_help_answer(JsonNode *result)
{
  if (!JSON_NODE_HOLDS_OBJECT(result))
    return FALSE;
  JsonNode *commands = json_object_get_member(json_node_get_object(result), "commands");
  if (commands == NULL || !JSON_NODE_HOLDS_ARRAY(commands))
    return FALSE;
  JsonArray *array = json_node_get_array(commands);
  for (guint i = 0; i < json_array_get_length(array); i++)
    if (!JSON_NODE_HOLDS_OBJECT(json_array_get_element(array, i)))
      return FALSE;
  return TRUE;
}

/* A table, "name  args  summary"; asked about one command, its arguments in detail. */
static void
append_help(GString *out, JsonArray *commands)
{
  guint count = json_array_get_length(commands);
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
  int name_width = 0, args_width = 0;
  for (guint i = 0; i < count; i++) {
    JsonObject *command = json_array_get_object_element(commands, i);
    char *text = help_args(command_params(command));
    g_ptr_array_add(args, text);
    name_width = MAX(name_width, (int)strlen(command_string(command, "name")));
    args_width = MAX(args_width, (int)strlen(text));
  }
  for (guint i = 0; i < count; i++) {
    JsonObject *command = json_array_get_object_element(commands, i);
    /* No command with arguments: no empty column for them. */
    g_autofree char *row = g_strdup_printf(
      "%-*s  %-*s%s%s", name_width, command_string(command, "name"), args_width,
      (char *)args->pdata[i], args_width ? "  " : "", command_string(command, "summary"));
    g_string_append_printf(out, "%s\n", g_strchomp(row));
    if (count == 1)
      append_param_details(out, command_params(command));
  }
}

/* ---- entry points ----------------------------------------------------------------- */

char *
cli_render_result(const char *command, JsonNode *result)
{
  GString *out = g_string_new(NULL);
  if (result == NULL ||
      (JSON_NODE_HOLDS_OBJECT(result) && json_object_get_size(json_node_get_object(result)) == 0)) {
    g_string_append(out, "ok\n");
  } else if (g_strcmp0(command, "help") == 0 && is_help_answer(result)) {
    append_help(out, json_object_get_array_member(json_node_get_object(result), "commands"));
  } else if (JSON_NODE_HOLDS_OBJECT(result)) {
    append_object(out, json_node_get_object(result), "", FALSE);
  } else if (JSON_NODE_HOLDS_ARRAY(result) && !fits_one_line(result)) {
    append_items(out, json_node_get_array(result), "");
  } else {
    append_one_line(out, result);
    g_string_append_c(out, '\n');
  }
  return g_string_free(out, FALSE);
}

char *
cli_render_error(const GError *error)
{
  return g_strdup_printf("error: %s\n", error->message);
}

/* A value as one word of "key=value": a scalar as text, quoted when it has spaces (or
 * is empty); an object or an array as compact JSON, which keeps it on one word. */
static void
append_event_value(GString *out, JsonNode *value)
{
  if (!is_scalar(value)) {
    g_autofree char *json = json_to_string(value, FALSE);
    g_string_append(out, json);
    return;
  }
  g_autoptr(GString) text = g_string_new(NULL);
  append_scalar(text, value);
  if (text->len > 0 && strpbrk(text->str, " \t\n\"'\\") == NULL) {
    g_string_append(out, text->str);
    return;
  }
  g_autofree char *quoted = g_shell_quote(text->str);
  g_string_append(out, quoted);
}

/* ---- instant messages ------------------------------------------------------------- */

#define SHORT_ID 12 /* hex digits of a message or device id shown */
#define MAX_SHOWN_TEXT 8192 /* characters of a message (its limit in bytes) */

static const char *
member_string(JsonObject *data, const char *name)
{
  JsonNode *node = data != NULL ? json_object_get_member(data, name) : NULL;
  return node != NULL && json_node_get_value_type(node) == G_TYPE_STRING
           ? json_node_get_string(node)
           : NULL;
}

/* A peer-supplied string, safe on a terminal. */
static char *
shown(const char *text, gsize max_chars)
{
  return hark_text_escape(text != NULL ? text : "?", -1, max_chars);
}

/* "[bob] hello"; what this user wrote on another device: "[you to bob] hello". */
static char *
render_message(JsonObject *data)
{
  const char *conversation = member_string(data, "conversation");
  g_autofree char *from = shown(member_string(data, "from"), 64);
  g_autofree char *with =
    shown(conversation != NULL && strlen(conversation) > 2 ? conversation + 2 : NULL, 64);
  g_autofree char *text = shown(member_string(data, "text"), MAX_SHOWN_TEXT);
  gboolean out = g_strcmp0(member_string(data, "direction"), "out") == 0;
  JsonNode *gap = data != NULL ? json_object_get_member(data, "after_gap") : NULL;
  gboolean after_gap = gap != NULL && json_node_get_value_type(gap) == G_TYPE_BOOLEAN &&
                       json_node_get_boolean(gap);
  return g_strdup_printf("%s[%s%s] %s\n", after_gap ? "* (some messages did not arrive)\n" : "",
                         out ? "you to " : "", out ? with : from, text);
}

/* An id shown short: its first SHORT_ID characters, escaped. */
static char *
shown_id(const char *id)
{
  char *text = shown(id, SHORT_ID);
  /* hark_text_escape adds "..." past its limit: ids are shown short without it. */
  if (g_str_has_suffix(text, "..."))
    text[strlen(text) - 3] = '\0';
  return text;
}

/* "* message 3f2a9c1d0b4e delivered on device 9a8b7c6d5e4f". */
static char *
render_message_state(JsonObject *data)
{
  g_autofree char *id = shown_id(member_string(data, "message_id"));
  g_autofree char *device = shown_id(member_string(data, "device"));
  g_autofree char *state = shown(member_string(data, "state"), 16);
  return g_strdup_printf("* message %s %s on device %s\n", id, state, device);
}

/* "* bob is typing" / "* bob stopped typing". */
static char *
render_typing(JsonObject *data)
{
  g_autofree char *from = shown(member_string(data, "from"), 64);
  JsonNode *typing = data != NULL ? json_object_get_member(data, "typing") : NULL;
  gboolean on = typing != NULL && json_node_get_value_type(typing) == G_TYPE_BOOLEAN &&
                json_node_get_boolean(typing);
  return g_strdup_printf("* %s %s\n", from, on ? "is typing" : "stopped typing");
}

/* ---- contact requests ------------------------------------------------------------- */

/* The names of a `requests-changed` list, escaped and comma-separated, after label;
 * FALSE (nothing added) when it is empty. Entries are {"name"} objects or names. */
static gboolean
append_request_list(GString *out, JsonObject *data, const char *list, const char *label)
{
  JsonNode *node = data != NULL ? json_object_get_member(data, list) : NULL;
  JsonArray *array = node != NULL && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
  guint n = array != NULL ? json_array_get_length(array) : 0;
  for (guint i = 0; i < n; i++) {
    JsonNode *element = json_array_get_element(array, i);
    const char *name = JSON_NODE_HOLDS_OBJECT(element)
                         ? member_string(json_node_get_object(element), "name")
                         : json_node_get_value_type(element) == G_TYPE_STRING
                           ? json_node_get_string(element)
                           : NULL;
    g_autofree char *text = shown(name, 64);
    g_string_append_printf(out, "%s%s", i == 0 ? label : ", ", text);
  }
  return n > 0;
}

/* "* contact requests: from bob; to carol; blocked: dave" (none waiting: said so). */
static char *
render_requests(JsonObject *data)
{
  GString *out = g_string_new("* contact requests:");
  gboolean in = append_request_list(out, data, "incoming", " from ");
  gboolean sent = append_request_list(out, data, "outgoing", in ? "; to " : " to ");
  if (!in && !sent)
    g_string_append(out, " none waiting");
  append_request_list(out, data, "blocked", "; blocked: ");
  g_string_append_c(out, '\n');
  return g_string_free(out, FALSE);
}

/* ---- calls ------------------------------------------------------------------------ */

#define MAX_SHOWN_REASON 200 /* characters of a reason (its limit in bytes) */

/* A device as the call event names it: a device name as it is (escaped), an id short. */
static char *
shown_device(const char *device)
{
  if (device != NULL && strlen(device) == 64 && strspn(device, "0123456789abcdef") == 64)
    return shown_id(device);
  return shown(device, 64);
}

/* " (desk)" when the event names the peer's device, else "". */
static char *
device_part(JsonObject *data, const char *before, const char *after)
{
  const char *device = member_string(data, "peer_device");
  if (device == NULL || *device == '\0')
    return g_strdup("");
  g_autofree char *text = shown_device(device);
  return g_strconcat(before, text, after, NULL);
}

/* ": opus, relayed tcp" from the codec and path an active call reports, or "". */
static char *
media_part(JsonObject *data)
{
  const char *codec = member_string(data, "codec"), *path = member_string(data, "path");
  if (codec == NULL && path == NULL)
    return g_strdup("");
  g_autofree char *c = codec != NULL ? shown(codec, 32) : NULL;
  g_autofree char *p = path != NULL ? shown(path, 32) : NULL;
  return g_strdup_printf(": %s%s%s", c != NULL ? c : "", c != NULL && p != NULL ? ", " : "",
                         p != NULL ? p : "");
}

/* " (the move to relay failed: why)" when the call's last path change failed, or "": the
 * media stayed where it was, which the path alone would not tell. */
static char *
path_change_part(JsonObject *data)
{
  JsonNode *node = json_object_get_member(data, "path_change");
  JsonObject *change =
    node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
  if (change == NULL || g_strcmp0(member_string(change, "outcome"), "failed") != 0)
    return g_strdup("");
  g_autofree char *kind = shown(member_string(change, "kind"), 16);
  const char *reason = member_string(change, "reason");
  g_autofree char *why = reason != NULL ? shown(reason, MAX_SHOWN_REASON) : NULL;
  return g_strdup_printf(" (the move to %s failed%s%s)", kind, why != NULL ? ": " : "",
                         why != NULL ? why : "");
}

/* One sentence per state of a call ("call" event: docs/control-protocol.md): what a person
 * would say of it, with the command to type when one is expected. */
static char *
render_call(JsonObject *data)
{
  const char *state = member_string(data, "state");
  gboolean in = g_strcmp0(member_string(data, "direction"), "in") == 0;
  g_autofree char *peer = shown(member_string(data, "peer"), 64);
  g_autofree char *device = device_part(data, " (", ")");
  if (g_strcmp0(state, "dialing") == 0)
    return g_strdup_printf("* calling %s\u2026\n", peer);
  if (g_strcmp0(state, "ringing") == 0 && in)
    return g_strdup_printf("* incoming call from %s%s \u2014 type `answer` or `decline`\n", peer,
                           device);
  if (g_strcmp0(state, "ringing") == 0)
    return g_strdup_printf("* ringing %s%s\u2026\n", peer, device);
  if (g_strcmp0(state, "connecting") == 0 && !in) {
    g_autofree char *on = device_part(data, " on ", "");
    return g_strdup_printf("* %s answered%s\n", peer, on);
  }
  if (g_strcmp0(state, "connecting") == 0)
    return g_strdup_printf("* connecting the call with %s%s\u2026\n", peer, device);
  if (g_strcmp0(state, "active") == 0) {
    g_autofree char *media = media_part(data);
    g_autofree char *change = path_change_part(data);
    return g_strdup_printf("* in a call with %s%s%s%s\n", peer, device, media, change);
  }
  if (g_strcmp0(state, "held") == 0)
    return g_strdup_printf("* call with %s on hold\n", peer);
  const char *reason = member_string(data, "reason");
  g_autofree char *why = reason != NULL ? shown(reason, MAX_SHOWN_REASON) : NULL;
  if (g_strcmp0(state, "ended") == 0)
    return g_strdup_printf("* call with %s ended%s%s\n", peer, why != NULL ? ": " : "",
                           why != NULL ? why : "");
  /* A state this cli does not know (a newer node): said as it is. */
  g_autofree char *named = shown(state, 32);
  return g_strdup_printf("* call with %s: %s%s%s\n", peer, named, why != NULL ? ": " : "",
                         why != NULL ? why : "");
}

/* "alice (host), bob, carol (calling)": the roster of a `conference-roster` event. */
static char *
roster_part(JsonObject *data)
{
  JsonArray *roster = json_object_has_member(data, "roster")
                        ? json_object_get_array_member(data, "roster")
                        : NULL;
  GString *out = g_string_new(NULL);
  for (guint i = 0; roster != NULL && i < json_array_get_length(roster); i++) {
    JsonNode *node = json_array_get_element(roster, i);
    if (!JSON_NODE_HOLDS_OBJECT(node))
      continue;
    JsonObject *m = json_node_get_object(node);
    g_autofree char *user = shown(member_string(m, "user"), 64);
    const char *state = member_string(m, "state");
    g_autofree char *named = shown(state, 32);
    g_string_append_printf(out, "%s%s", out->len > 0 ? ", " : "", user);
    if (g_strcmp0(state, "connected") != 0)
      g_string_append_printf(out, " (%s)", named);
    const char *muted = member_string(m, "muted");
    g_autofree char *by = muted != NULL ? shown(muted, 16) : NULL;
    if (by != NULL)
      g_string_append_printf(out, " (muted by %s)",
                             g_strcmp0(muted, "self") == 0 ? "themselves" : by);
  }
  return g_string_free(out, FALSE);
}

/* The conference events (docs/control-protocol.md): who hosts, who is in, why it ended. */
static char *
render_conference(const char *name, JsonObject *data)
{
  g_autofree char *host = shown(member_string(data, "host"), 64);
  const char *reason = member_string(data, "reason");
  g_autofree char *why = reason != NULL ? shown(reason, MAX_SHOWN_REASON) : NULL;
  if (g_strcmp0(name, "conference-host") == 0)
    return json_object_get_boolean_member_with_default(data, "self", FALSE)
             ? g_strdup("* you host a conference: this node mixes it\n")
             : g_strdup_printf("* %s hosts the conference\n", host);
  if (g_strcmp0(name, "conference-refused") == 0)
    return g_strdup_printf("* %s did not let you in: %s\n", host, why != NULL ? why : "refused");
  if (g_strcmp0(name, "conference-invite") == 0) {
    g_autofree char *from = shown(member_string(data, "from"), 64);
    g_autofree char *user = shown(member_string(data, "user"), 64);
    return g_strdup_printf("* %s asks you to call %s in (conference %s)\n", from, user, user);
  }
  const char *state = member_string(data, "state");
  if (g_strcmp0(state, "ended") == 0 || g_strcmp0(state, "left") == 0)
    return g_strdup_printf("* conference of %s %s%s%s\n", host,
                           g_strcmp0(state, "ended") == 0 ? "ended" : "left",
                           why != NULL ? ": " : "", why != NULL ? why : "");
  g_autofree char *roster = roster_part(data);
  return g_strdup_printf("* conference of %s: %s\n", host, roster);
}

/* `active-speaker`: who talks now in the conference. */
static char *
render_speaker(JsonObject *data)
{
  const char *user = member_string(data, "user");
  g_autofree char *who = user != NULL ? shown(user, 64) : NULL;
  return who != NULL ? g_strdup_printf("* %s is speaking\n", who)
                     : g_strdup("* nobody is speaking\n");
}

char *
cli_render_event(const char *name, JsonObject *data)
{
  if (g_str_has_prefix(name, "conference-"))
    return render_conference(name, data);
  if (g_strcmp0(name, "active-speaker") == 0)
    return render_speaker(data);
  if (g_strcmp0(name, "call") == 0)
    return render_call(data);
  if (g_strcmp0(name, "message") == 0)
    return render_message(data);
  if (g_strcmp0(name, "message-state") == 0)
    return render_message_state(data);
  if (g_strcmp0(name, "typing") == 0)
    return render_typing(data);
  if (g_strcmp0(name, "requests-changed") == 0)
    return render_requests(data);
  GString *out = g_string_new("* ");
  g_string_append(out, name);
  g_autoptr(GList) members = data ? json_object_get_members(data) : NULL;
  for (GList *m = members; m; m = m->next) {
    if (g_str_equal(m->data, "event"))
      continue; /* already said, as the name */
    g_string_append_printf(out, " %s=", (const char *)m->data);
    append_event_value(out, json_object_get_member(data, m->data));
  }
  g_string_append_c(out, '\n');
  return g_string_free(out, FALSE);
}
