/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* command.c: the node's one command table, argument checking, and the calls in
 * flight. Frontends (cli, ctl, ...) only translate; everything a command does and
 * every check of its arguments happens here, so all frontends behave alike. */
#include "hark-private.h"

#include <errno.h>
#include <stdlib.h>

/* clang-format off */
G_DEFINE_QUARK(hark-command-error-quark, hark_command_error)
/* clang-format on */

struct _HarkCommandCall {
  HarkNode *node; /* NULL once cancelled */
  HarkContext *owner;
  HarkCommandDone done;
  gpointer done_data;
};

static const char *const error_code_names[] = {
  [HARK_COMMAND_ERROR_UNKNOWN_COMMAND] = "unknown-command",
  [HARK_COMMAND_ERROR_BAD_ARGUMENTS] = "bad-arguments",
  [HARK_COMMAND_ERROR_FAILED] = "failed",
  [HARK_COMMAND_ERROR_CANCELLED] = "cancelled",
};

const char *
hark_command_error_code_name(HarkCommandError code)
{
  if ((guint)code < G_N_ELEMENTS(error_code_names))
    return error_code_names[code];
  return "failed";
}

void
hark_commands_init(HarkNode *node)
{
  node->commands = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
  node->pending_calls = g_hash_table_new(NULL, NULL);
}

static gboolean
valid_command_name(const char *name)
{
  if (name == NULL || !g_ascii_islower(name[0]))
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-')
      return FALSE;
  return TRUE;
}

gboolean
hark_context_add_command(HarkContext *ctx, const HarkCommand *command, gpointer user_data,
                         GError **error)
{
  if (command == NULL || command->version == 0 || command->version > HARK_COMMAND_VERSION ||
      !valid_command_name(command->name) || command->run == NULL) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INVALID,
                "plugin '%s': command '%s' is invalid (version %u, name [a-z][a-z0-9-]*, "
                "a run function)",
                ctx->plugin_name, command && command->name ? command->name : "(null)",
                command ? command->version : 0);
    return FALSE;
  }
  HarkCommandEntry *existing = g_hash_table_lookup(ctx->node->commands, command->name);
  if (existing != NULL) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_DUPLICATE,
                "plugin '%s': command '%s' already exists (from '%s')", ctx->plugin_name,
                command->name, existing->owner->plugin_name);
    return FALSE;
  }
  HarkCommandEntry *entry = g_new0(HarkCommandEntry, 1);
  entry->command = command;
  entry->user_data = user_data;
  entry->owner = ctx;
  g_hash_table_insert(ctx->node->commands, (gpointer)command->name, entry);
  return TRUE;
}

static gboolean
owned_by(gpointer key, gpointer value, gpointer owner)
{
  return ((HarkCommandEntry *)value)->owner == owner;
}

void
hark_commands_remove_owned(HarkNode *node, HarkContext *owner)
{
  g_hash_table_foreach_remove(node->commands, owned_by, owner);
}

static gint
compare_command_names(gconstpointer a, gconstpointer b)
{
  const HarkCommand *ca = *(const HarkCommand *const *)a;
  const HarkCommand *cb = *(const HarkCommand *const *)b;
  return strcmp(ca->name, cb->name);
}

GPtrArray *
hark_context_list_commands(HarkContext *ctx)
{
  GPtrArray *list = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, ctx->node->commands);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    g_ptr_array_add(list, (gpointer)((HarkCommandEntry *)value)->command);
  g_ptr_array_sort(list, compare_command_names);
  return list;
}

const HarkCommand *
hark_context_find_command(HarkContext *ctx, const char *name)
{
  HarkCommandEntry *entry = g_hash_table_lookup(ctx->node->commands, name);
  return entry ? entry->command : NULL;
}

static const HarkCommandParam *
find_param(const HarkCommand *command, const char *name)
{
  for (const HarkCommandParam *p = command->params; p && p->name; p++)
    if (g_str_equal(p->name, name))
      return p;
  return NULL;
}

static const char *
param_type_name(HarkParamType type)
{
  switch (type) {
  case HARK_PARAM_INT:
    return "an integer";
  case HARK_PARAM_BOOL:
    return "true or false";
  case HARK_PARAM_STRING:
  default:
    return "a string";
  }
}

static gboolean
json_matches_param(JsonNode *value, HarkParamType type)
{
  if (!JSON_NODE_HOLDS_VALUE(value))
    return FALSE;
  GType held = json_node_get_value_type(value);
  switch (type) {
  case HARK_PARAM_INT:
    return held == G_TYPE_INT64;
  case HARK_PARAM_BOOL:
    return held == G_TYPE_BOOLEAN;
  case HARK_PARAM_STRING:
  default:
    return held == G_TYPE_STRING;
  }
}

gboolean
hark_command_check_args(const HarkCommand *command, JsonObject *args, GError **error)
{
  g_autoptr(GList) members = json_object_get_members(args);
  for (GList *m = members; m; m = m->next) {
    const HarkCommandParam *param = find_param(command, m->data);
    if (param == NULL) {
      g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                  "%s: no argument named '%s'", command->name, (const char *)m->data);
      return FALSE;
    }
    if (!json_matches_param(json_object_get_member(args, m->data), param->type)) {
      g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                  "%s: argument '%s' must be %s", command->name, param->name,
                  param_type_name(param->type));
      return FALSE;
    }
  }
  for (const HarkCommandParam *p = command->params; p && p->name; p++) {
    if (p->required && !json_object_has_member(args, p->name)) {
      g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                  "%s: missing argument '%s' (%s)", command->name, p->name,
                  p->help ? p->help : param_type_name(p->type));
      return FALSE;
    }
  }
  return TRUE;
}

void
hark_context_run_command(HarkContext *ctx, const char *name, JsonObject *args, HarkCommandDone done,
                         gpointer user_data)
{
  HarkNode *node = ctx->node;
  HarkCommandEntry *entry = name ? g_hash_table_lookup(node->commands, name) : NULL;
  g_autoptr(GError) error = NULL;
  if (entry == NULL) {
    g_set_error(&error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_UNKNOWN_COMMAND,
                "unknown command '%s' (try 'help')", name ? name : "");
    done(NULL, error, user_data);
    return;
  }
  g_autoptr(JsonObject) checked = args ? json_object_ref(args) : json_object_new();
  if (!hark_command_check_args(entry->command, checked, &error)) {
    done(NULL, error, user_data);
    return;
  }
  HarkCommandCall *call = g_new0(HarkCommandCall, 1);
  call->node = node;
  call->owner = entry->owner;
  call->done = done;
  call->done_data = user_data;
  g_hash_table_add(node->pending_calls, call);
  entry->command->run(call, checked, entry->user_data);
}

gboolean
hark_json_is_text(JsonNode *node)
{
  if (JSON_NODE_HOLDS_VALUE(node))
    return json_node_get_value_type(node) != G_TYPE_STRING ||
           g_utf8_validate(json_node_get_string(node), -1, NULL);
  if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *array = json_node_get_array(node);
    for (guint i = 0; i < json_array_get_length(array); i++)
      if (!hark_json_is_text(json_array_get_element(array, i)))
        return FALSE;
  } else if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObjectIter iter;
    const char *name;
    JsonNode *member;
    json_object_iter_init(&iter, json_node_get_object(node));
    while (json_object_iter_next(&iter, &name, &member))
      if (!g_utf8_validate(name, -1, NULL) || !hark_json_is_text(member))
        return FALSE;
  }
  return TRUE;
}

HarkContext *
hark_command_call_get_context(HarkCommandCall *call)
{
  return call->owner;
}

/* A cancelled call has already been answered; the command's late answer is dropped. */
static gboolean
finish_call(HarkCommandCall *call)
{
  gboolean live = call->node != NULL;
  if (live)
    g_hash_table_remove(call->node->pending_calls, call);
  return live;
}

void
hark_command_call_return(HarkCommandCall *call, JsonNode *result)
{
  if (finish_call(call)) {
    if (result == NULL) {
      result = json_node_new(JSON_NODE_OBJECT);
      json_node_take_object(result, json_object_new());
    }
    call->done(result, NULL, call->done_data);
  }
  if (result != NULL)
    json_node_unref(result);
  g_free(call);
}

void
hark_command_call_return_object(HarkCommandCall *call, JsonObject *result)
{
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(node, result);
  hark_command_call_return(call, node);
}

void
hark_command_call_return_error(HarkCommandCall *call, GError *error)
{
  if (finish_call(call))
    call->done(NULL, error, call->done_data);
  g_error_free(error);
  g_free(call);
}

void
hark_commands_cancel_pending(HarkNode *node)
{
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, node->pending_calls);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    HarkCommandCall *call = key;
    g_autoptr(GError) error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_CANCELLED,
                                          "the node stopped before the command finished");
    call->node = NULL;
    g_hash_table_iter_remove(&iter);
    call->done(NULL, error, call->done_data);
  }
}

/* ---- words typed in a terminal -> JSON arguments ---- */

static JsonNode *
convert_word(const HarkCommand *command, const HarkCommandParam *param, const char *word,
             GError **error)
{
  JsonNode *value = json_node_new(JSON_NODE_VALUE);
  if (param->type == HARK_PARAM_STRING) {
    json_node_set_string(value, word);
    return value;
  }
  if (param->type == HARK_PARAM_INT) {
    gint64 number;
    if (g_ascii_string_to_signed(word, 10, G_MININT64, G_MAXINT64, &number, NULL)) {
      json_node_set_int(value, number);
      return value;
    }
  } else if (g_ascii_strcasecmp(word, "true") == 0 || g_str_equal(word, "on") ||
             g_str_equal(word, "yes") || g_str_equal(word, "1")) {
    json_node_set_boolean(value, TRUE);
    return value;
  } else if (g_ascii_strcasecmp(word, "false") == 0 || g_str_equal(word, "off") ||
             g_str_equal(word, "no") || g_str_equal(word, "0")) {
    json_node_set_boolean(value, FALSE);
    return value;
  }
  json_node_unref(value);
  g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
              "%s: argument '%s' must be %s, not '%s'", command->name, param->name,
              param_type_name(param->type), word);
  return NULL;
}

/* NAME=VALUE names its parameter; any other word fills the first parameter not yet set. */
static const HarkCommandParam *
param_for_word(const HarkCommand *command, JsonObject *args, const char *word, const char **text,
               GError **error)
{
  const char *equals = strchr(word, '=');
  if (equals != NULL) {
    g_autofree char *key = g_strndup(word, equals - word);
    const HarkCommandParam *param = find_param(command, key);
    if (param != NULL) {
      *text = equals + 1;
      return param;
    }
  }
  for (const HarkCommandParam *p = command->params; p && p->name; p++) {
    if (!json_object_has_member(args, p->name)) {
      *text = word;
      return p;
    }
  }
  g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
              "%s: too many arguments ('%s' is one more than it takes)", command->name, word);
  return NULL;
}

JsonObject *
hark_command_parse_words(const HarkCommand *command, const char *const *words, GError **error)
{
  g_autoptr(JsonObject) args = json_object_new();
  for (const char *const *w = words; w && *w; w++) {
    const char *text = NULL;
    const HarkCommandParam *param = param_for_word(command, args, *w, &text, error);
    if (param == NULL)
      return NULL;
    JsonNode *value = convert_word(command, param, text, error);
    if (value == NULL)
      return NULL;
    json_object_set_member(args, param->name, value);
  }
  return g_steal_pointer(&args);
}
