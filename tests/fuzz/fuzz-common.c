/* fuzz-common.c: the setup every fuzz target shares (fuzz-common.h). */
#include "fuzz-common.h"

#include <stdio.h>
#include <string.h>

static gboolean verbose;

void
fuzz_init(void)
{
  g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  verbose = g_getenv("FUZZ_VERBOSE") != NULL;
}

void
fuzz_say(const char *outcome, const char *why)
{
  if (verbose)
    fprintf(stderr, "%s%s%s\n", outcome, why != NULL ? ": " : "", why != NULL ? why : "");
}

static const HarkCommandParam params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "who" },
  { "seconds", HARK_PARAM_INT, FALSE, "how long" },
  { "video", HARK_PARAM_BOOL, FALSE, "with pictures" },
  { "password", HARK_PARAM_STRING, FALSE, "a secret", TRUE },
  { NULL },
};
static const HarkCommand call = { HARK_COMMAND_VERSION, "call", "fuzzed", params, NULL };
static const HarkCommand bare = { HARK_COMMAND_VERSION, "status", "no parameters", NULL, NULL };

const HarkCommand *
fuzz_command_named(const char *name)
{
  return strcmp(name, "status") == 0 ? &bare : &call;
}
