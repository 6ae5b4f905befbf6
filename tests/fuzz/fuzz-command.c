/* fuzz-command.c: libFuzzer target for a line typed at the cli (frontends/cli/cli.c,
 * cli_run_line): split into words like a shell would (g_shell_parse_argv), then the words
 * after the command's name turned into its JSON arguments by hark_command_parse_words
 * (core/command.c), for fuzz_command_named's command (fuzz-common.c). The
 * input is the line, up to its first NUL. The ctl frontend's JSON lines are `ctlline`'s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hark/command.h>
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static gboolean
holds(JsonNode *node, HarkParamType type)
{
  static const GType types[] = {
    [HARK_PARAM_STRING] = G_TYPE_STRING,
    [HARK_PARAM_INT] = G_TYPE_INT64,
    [HARK_PARAM_BOOL] = G_TYPE_BOOLEAN,
  };
  return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == types[type];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *line = g_strndup((const char *)data, size);
  g_auto(GStrv) words = NULL;
  if (!g_shell_parse_argv(line, NULL, &words, NULL))
    return 0;
  const HarkCommand *which = fuzz_command_named(words[0]);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) args =
    hark_command_parse_words(which, (const char *const *)words + 1, &error);
  if ((args == NULL) == (error == NULL))
    abort();
  if (args == NULL)
    return 0;
  /* Only the command's parameters, each of its type, each from one word. */
  guint known = 0;
  for (const HarkCommandParam *p = which->params; p != NULL && p->name != NULL; p++) {
    JsonNode *value = json_object_get_member(args, p->name);
    if (value != NULL && !holds(value, p->type))
      abort();
    known += value != NULL;
  }
  if (json_object_get_size(args) != known || known > g_strv_length(words) - 1)
    abort();
  return 0;
}
