/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-command.c: the command table: argument checking, typed-word parsing, answers
 * that come later, and calls cancelled when the node goes away. */
#include "hark-private.h"
#include "hark/hark.h"

typedef struct {
  HarkNode *node;
  HarkContext *ctx;
  int answers;
  JsonNode *result;
  GError *error;
  HarkCommandCall *held; /* a call the "later" command keeps to answer afterwards */
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  f->node = hark_node_new(hark_config_new_default());
  f->ctx = hark_node_get_context(f->node);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_pointer(&f->node, hark_node_free);
  g_clear_pointer(&f->result, json_node_unref);
  g_clear_error(&f->error);
}

static void
on_done(JsonNode *result, const GError *error, gpointer data)
{
  Fixture *f = data;
  f->answers++;
  g_clear_pointer(&f->result, json_node_unref);
  g_clear_error(&f->error);
  if (result != NULL)
    f->result = json_node_ref(result);
  if (error != NULL)
    f->error = g_error_copy(error);
}

static void
run(Fixture *f, const char *name, const char *args_json)
{
  g_autoptr(JsonObject) args = NULL;
  if (args_json != NULL) {
    g_autoptr(JsonNode) node = json_from_string(args_json, NULL);
    g_assert_nonnull(node);
    args = json_object_ref(json_node_get_object(node));
  }
  hark_context_run_command(f->ctx, name, args, on_done, f);
}

static void
run_greet(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  const char *who = json_object_get_string_member(args, "who");
  gint64 times = json_object_get_int_member_with_default(args, "times", 1);
  gboolean loud = json_object_get_boolean_member_with_default(args, "loud", FALSE);
  g_autoptr(GString) text = g_string_new(NULL);
  for (gint64 i = 0; i < times; i++)
    g_string_append_printf(text, "%s%s", loud ? "HELLO " : "hello ", who);
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "text", text->str);
  hark_command_call_return_object(call, result);
}

static const HarkCommandParam greet_params[] = {
  { "who", HARK_PARAM_STRING, TRUE, "whom to greet" },
  { "times", HARK_PARAM_INT, FALSE, "how often" },
  { "loud", HARK_PARAM_BOOL, FALSE, "shout" },
  { NULL },
};

static const HarkCommand greet = { HARK_COMMAND_VERSION, "greet", "say hello", greet_params,
                                   run_greet };

static void
run_later(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  Fixture *f = user_data;
  f->held = call;
}

static const HarkCommand later = { HARK_COMMAND_VERSION, "later", "answer later", NULL, run_later };

static void
add_test_commands(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_context_add_command(f->ctx, &greet, NULL, &error));
  g_assert_true(hark_context_add_command(f->ctx, &later, f, &error));
  g_assert_no_error(error);
}

static const char *
result_string(Fixture *f, const char *member)
{
  g_assert_nonnull(f->result);
  return json_object_get_string_member(json_node_get_object(f->result), member);
}

static void
test_builtin_version(Fixture *f, gconstpointer data)
{
  run(f, "version", NULL);
  g_assert_cmpint(f->answers, ==, 1);
  g_assert_no_error(f->error);
  g_assert_cmpstr(result_string(f, "version"), ==, HARK_VERSION);
  g_assert_cmpstr(result_string(f, "plugin_abi"), ==, "1.0");
}

static void
test_unknown_command(Fixture *f, gconstpointer data)
{
  run(f, "frobnicate", NULL);
  g_assert_cmpint(f->answers, ==, 1);
  g_assert_error(f->error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_UNKNOWN_COMMAND);
  g_assert_nonnull(strstr(f->error->message, "frobnicate"));
  g_assert_cmpstr(hark_command_error_code_name(f->error->code), ==, "unknown-command");
}

static void
test_args_checked(Fixture *f, gconstpointer data)
{
  add_test_commands(f);
  static const struct {
    const char *args;
    const char *message;
  } bad[] = {
    { "{}", "greet: missing argument 'who' (whom to greet)" },
    { "{\"who\": 5}", "greet: argument 'who' must be a string" },
    { "{\"who\": \"x\", \"times\": \"2\"}", "greet: argument 'times' must be an integer" },
    { "{\"who\": \"x\", \"loud\": 1}", "greet: argument 'loud' must be true or false" },
    { "{\"who\": \"x\", \"volume\": 3}", "greet: no argument named 'volume'" },
    { "{\"who\": [\"x\"]}", "greet: argument 'who' must be a string" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    run(f, "greet", bad[i].args);
    g_assert_error(f->error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS);
    g_assert_cmpstr(f->error->message, ==, bad[i].message);
  }
  g_assert_cmpint(f->answers, ==, G_N_ELEMENTS(bad));
  run(f, "greet", "{\"who\": \"bob\", \"times\": 2}");
  g_assert_no_error(f->error);
  g_assert_cmpstr(result_string(f, "text"), ==, "hello bobhello bob");
}

static JsonObject *
parse(const char *const *words, GError **error)
{
  return hark_command_parse_words(&greet, words, error);
}

static void
test_parse_words(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  const char *positional[] = { "bob", "3", "yes", NULL };
  g_autoptr(JsonObject) a = parse(positional, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(json_object_get_string_member(a, "who"), ==, "bob");
  g_assert_cmpint(json_object_get_int_member(a, "times"), ==, 3);
  g_assert_true(json_object_get_boolean_member(a, "loud"));

  /* A named one, then positional words fill what is left, in order. */
  const char *mixed[] = { "times=2", "alice", NULL };
  g_autoptr(JsonObject) b = parse(mixed, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(json_object_get_string_member(b, "who"), ==, "alice");
  g_assert_cmpint(json_object_get_int_member(b, "times"), ==, 2);

  /* '=' in a value that names no parameter is just text. */
  const char *text[] = { "a=b", NULL };
  g_autoptr(JsonObject) c = parse(text, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(json_object_get_string_member(c, "who"), ==, "a=b");
}

static void
test_parse_words_errors(Fixture *f, gconstpointer data)
{
  static const struct {
    const char *words[5];
    const char *message;
  } bad[] = {
    { { "bob", "many", NULL }, "greet: argument 'times' must be an integer, not 'many'" },
    { { "bob", "1", "maybe", NULL }, "greet: argument 'loud' must be true or false, not 'maybe'" },
    { { "bob", "1", "no", "extra", NULL },
      "greet: too many arguments ('extra' is one more than it takes)" },
    { { "times=99999999999999999999", NULL },
      "greet: argument 'times' must be an integer, not '99999999999999999999'" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) args = parse(bad[i].words, &error);
    g_assert_null(args);
    g_assert_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS);
    g_assert_cmpstr(error->message, ==, bad[i].message);
  }
}

static void
test_registration_refused(Fixture *f, gconstpointer data)
{
  add_test_commands(f);
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_context_add_command(f->ctx, &greet, NULL, &error));
  g_assert_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_DUPLICATE);
  g_clear_error(&error);
  static const HarkCommand bad_name = { HARK_COMMAND_VERSION, "Greet Me", "x", NULL, run_greet };
  g_assert_false(hark_context_add_command(f->ctx, &bad_name, NULL, &error));
  g_assert_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INVALID);
  g_clear_error(&error);
  static const HarkCommand future = { HARK_COMMAND_VERSION + 1, "future", "x", NULL, run_greet };
  g_assert_false(hark_context_add_command(f->ctx, &future, NULL, &error));
  g_assert_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INVALID);
}

static void
test_answer_later(Fixture *f, gconstpointer data)
{
  add_test_commands(f);
  run(f, "later", NULL);
  g_assert_cmpint(f->answers, ==, 0);
  g_assert_nonnull(f->held);
  hark_command_call_return(g_steal_pointer(&f->held), NULL);
  g_assert_cmpint(f->answers, ==, 1);
  g_assert_no_error(f->error);
  g_assert_true(JSON_NODE_HOLDS_OBJECT(f->result));
}

static void
test_cancelled_when_node_goes(Fixture *f, gconstpointer data)
{
  add_test_commands(f);
  run(f, "later", NULL);
  HarkCommandCall *held = g_steal_pointer(&f->held);
  g_clear_pointer(&f->node, hark_node_free);
  g_assert_cmpint(f->answers, ==, 1);
  g_assert_error(f->error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_CANCELLED);
  /* The command's late answer is dropped, not delivered twice. */
  hark_command_call_return(held, NULL);
  g_assert_cmpint(f->answers, ==, 1);
}

static void
test_help_lists_table(Fixture *f, gconstpointer data)
{
  add_test_commands(f);
  run(f, "help", NULL);
  JsonArray *commands = json_object_get_array_member(json_node_get_object(f->result), "commands");
  g_autoptr(GString) names = g_string_new(NULL);
  for (guint i = 0; i < json_array_get_length(commands); i++)
    g_string_append_printf(
      names, "%s ",
      json_object_get_string_member(json_array_get_object_element(commands, i), "name"));
  g_assert_cmpstr(names->str, ==,
                  "answer block buddies buddy-accept buddy-add buddy-cancel buddy-decline "
                  "buddy-remove buddy-rename call call-log calls codec conference "
                  "conversations decline delete-account device-remove devices directory dtmf "
                  "end greet group-add group-create group-leave group-remove groups hangup "
                  "help history hold invite join kick later leave login logout media-set merge "
                  "messages msg mute nat "
                  "overlay passwd path plugins register rejoin requests resume roster search "
                  "shutdown state stats status transport turn typing unblock unmute version "
                  "whoami ");
  run(f, "help", "{\"command\": \"nope\"}");
  g_assert_error(f->error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_UNKNOWN_COMMAND);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD("/command/builtin-version", test_builtin_version);
  ADD("/command/unknown", test_unknown_command);
  ADD("/command/args-checked", test_args_checked);
  ADD("/command/parse-words", test_parse_words);
  ADD("/command/parse-words-errors", test_parse_words_errors);
  ADD("/command/registration-refused", test_registration_refused);
  ADD("/command/answer-later", test_answer_later);
  ADD("/command/cancelled-when-node-goes", test_cancelled_when_node_goes);
  ADD("/command/help-lists-table", test_help_lists_table);
  return g_test_run();
}
