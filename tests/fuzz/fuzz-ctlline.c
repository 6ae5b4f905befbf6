/* fuzz-ctlline.c: libFuzzer target for what a ctl client's bytes become (frontends/ctl):
 * the input is cut into lines as connection.c cuts them ('\n', a '\r' before it dropped,
 * the rest after the last '\n' as a last line), each line read by
 * hark_control_request_parse (core/control/control.c; the web frontend reads each
 * WebSocket message with it too)
 * and, when it is a call, its arguments checked by hark_command_check_args
 * (core/registry/command.c) as hark_context_run_command checks them, for
 * fuzz_command_named's command (fuzz-common.c). The error answers are then written as
 * the client would get them (hark_control_error_text). */
#include <stdlib.h>
#include <string.h>

#include "hark/control.h"
#include "hark-private.h"
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

/* An answer is one line of UTF-8 JSON (the ctl frontend adds the '\n'). */
static void
check_answer(GString *answer)
{
  if (answer->len == 0 || memchr(answer->str, '\n', answer->len) != NULL ||
      !g_utf8_validate_len(answer->str, answer->len, NULL))
    abort();
  g_string_free(answer, TRUE);
}

static void
one_line(const char *line, gsize length)
{
  HarkControlRequest parsed;
  HarkControlRequestKind kind = hark_control_request_parse(line, length, &parsed);
  switch (kind) {
  case HARK_CONTROL_REQUEST_BLANK:
    if (parsed.id || parsed.command || parsed.args || parsed.error)
      abort();
    break;
  case HARK_CONTROL_REQUEST_BAD:
    if (parsed.error == NULL || parsed.command != NULL)
      abort();
    fuzz_say("bad request", parsed.error);
    check_answer(hark_control_error_text(parsed.id, "bad-request", parsed.error));
    break;
  case HARK_CONTROL_REQUEST_CALL: {
    if (parsed.command == NULL || parsed.error != NULL)
      abort();
    const HarkCommand *command = fuzz_command_named(parsed.command);
    g_autoptr(JsonObject) args = parsed.args ? json_object_ref(parsed.args) : json_object_new();
    g_autoptr(GError) error = NULL;
    gboolean ok = hark_command_check_args(command, args, &error);
    if (ok == (error != NULL))
      abort();
    fuzz_say(ok ? "call" : "call refused", error ? error->message : parsed.command);
    if (error != NULL)
      check_answer(hark_control_error_text(parsed.id, "bad-arguments", error->message));
    break;
  }
  default:
    abort();
  }
  hark_control_request_clear(&parsed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *newline = memchr(p, '\n', (gsize)(end - p));
    gsize length = (gsize)((newline != NULL ? newline : end) - p);
    if (newline != NULL && length > 0 && p[length - 1] == '\r')
      length--;
    one_line(p, length);
    p = newline != NULL ? newline + 1 : end;
  }
  return 0;
}
