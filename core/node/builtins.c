/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* builtins.c: the commands the core itself answers, in every frontend (the login
 * commands are in login-commands.c). */
#include "node-private.h"

static JsonArray *
describe_params(const HarkCommand *command)
{
  static const char *const type_names[] = { "string", "int", "bool" };
  JsonArray *array = json_array_new();
  for (const HarkCommandParam *p = command->params; p && p->name; p++) {
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "name", p->name);
    json_object_set_string_member(o, "type", type_names[p->type]);
    json_object_set_boolean_member(o, "required", p->required);
    json_object_set_string_member(o, "help", p->help);
    if (p->secret)
      json_object_set_boolean_member(o, "secret", TRUE);
    json_array_add_object_element(array, o);
  }
  return array;
}

static JsonObject *
describe_command(const HarkCommand *command)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "name", command->name);
  json_object_set_string_member(o, "summary", command->summary);
  json_object_set_array_member(o, "params", describe_params(command));
  return o;
}

static void
run_help(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkContext *ctx = hark_command_call_get_context(call);
  const char *only = json_object_get_string_member_with_default(args, "command", NULL);
  JsonArray *array = json_array_new();
  g_autoptr(GPtrArray) commands = hark_context_list_commands(ctx);
  for (guint i = 0; i < commands->len; i++) {
    const HarkCommand *command = commands->pdata[i];
    if (only == NULL || g_str_equal(only, command->name))
      json_array_add_object_element(array, describe_command(command));
  }
  if (only != NULL && json_array_get_length(array) == 0) {
    json_array_unref(array);
    hark_command_call_return_error(call, g_error_new(HARK_COMMAND_ERROR,
                                                     HARK_COMMAND_ERROR_UNKNOWN_COMMAND,
                                                     "unknown command '%s' (try 'help')", only));
    return;
  }
  JsonObject *result = json_object_new();
  json_object_set_array_member(result, "commands", array);
  hark_command_call_return_object(call, result);
}

static void
run_version(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "version", HARK_VERSION);
  g_autofree char *abi = g_strdup_printf("%d.%d", HARK_PLUGIN_ABI_MAJOR, HARK_PLUGIN_ABI_MINOR);
  json_object_set_string_member(result, "plugin_abi", abi);
  json_object_set_int_member(result, "wire_version", HARK_WIRE_VERSION);
  hark_command_call_return_object(call, result);
}

static void
run_state(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  hark_command_call_return_object(call, hark_context_snapshot(hark_command_call_get_context(call)));
}

static void
run_plugins(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkNode *node = user_data;
  JsonObject *result = json_object_new();
  json_object_set_array_member(result, "plugins", hark_loader_describe_plugins(node));
  hark_command_call_return_object(call, result);
}

static void
run_shutdown(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkContext *ctx = hark_command_call_get_context(call);
  hark_command_call_return(call, NULL);
  hark_context_request_stop(ctx);
}

/* Only on a node with node.test_clock: a test moves the login server's and the login
 * client's time instead of waiting for it. Answers the clock's time after the move. */
static void
run_clock(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkClock *clock = hark_context_get_clock(hark_command_call_get_context(call));
  gint64 seconds = json_object_get_int_member_with_default(args, "advance", 0);
  if (seconds < 0 || seconds > 10 * 365 * 24 * 3600) {
    hark_command_call_return_error(
      call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "advance must be 0 to 315360000 seconds, not %" G_GINT64_FORMAT, seconds));
    return;
  }
  if (seconds > 0)
    hark_clock_advance(clock, seconds * G_USEC_PER_SEC);
  JsonObject *result = json_object_new();
  json_object_set_int_member(result, "now", hark_clock_now_seconds(clock));
  hark_command_call_return_object(call, result);
}

static const HarkCommandParam clock_params[] = {
  { "advance", HARK_PARAM_INT, FALSE, "seconds to move the test clock forward" },
  { NULL },
};

static const HarkCommand clock_command = {
  HARK_COMMAND_VERSION, "clock",   "move the test clock (only with node.test_clock)",
  clock_params,         run_clock,
};

static const HarkCommandParam help_params[] = {
  { "command", HARK_PARAM_STRING, FALSE, "show only this command" },
  { NULL },
};

static const HarkCommand builtin_commands[] = {
  { HARK_COMMAND_VERSION, "help", "list the commands and their arguments", help_params, run_help },
  { HARK_COMMAND_VERSION, "version", "hark, plugin ABI and wire versions", NULL, run_version },
  { HARK_COMMAND_VERSION, "state", "a snapshot of the whole node", NULL, run_state },
  { HARK_COMMAND_VERSION, "plugins", "loaded plugins and what each registered", NULL, run_plugins },
  { HARK_COMMAND_VERSION, "shutdown", "stop the node", NULL, run_shutdown },
};

void
hark_builtins_register(HarkNodeRoot *root)
{
  HarkContext *core_ctx = root->base.core_ctx;
  for (gsize i = 0; i < G_N_ELEMENTS(builtin_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &builtin_commands[i], core_ctx->node, &error))
      g_error("built-in command table is broken: %s", error->message);
  }
  hark_login_commands_register(core_ctx, &root->login);
  hark_overlay_commands_register(core_ctx, &root->overlay);
  hark_directory_commands_register(core_ctx, &root->directory);
  hark_messenger_commands_register(core_ctx, &root->messenger);
  hark_calls_commands_register(core_ctx, &root->calls);
  hark_conferences_commands_register(core_ctx, &root->conferences);
  hark_call_log_commands_register(core_ctx, &root->call_log);
  hark_node_media_settings_register(core_ctx->node);
  if (hark_clock_is_test(hark_context_get_clock(core_ctx))) {
    g_message("node.test_clock is set: this node's login time stands still until the "
              "`clock` command moves it (for tests only)");
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &clock_command, NULL, &error))
      g_error("the clock command is broken: %s", error->message);
  }
}
