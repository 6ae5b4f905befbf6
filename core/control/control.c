/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* control.c: the control protocol's requests and answers (docs/control-protocol.md),
 * shared by the ctl frontend (a line per request) and the web frontend (a WebSocket
 * message per request): what one request asks for (a command call {"id", "command",
 * "args"}, nothing for a blank one, or a bad request and why), running it through the
 * command table, and the JSON of the answers. No socket here, so that
 * tests/fuzz/fuzz-ctlline.c feeds it requests the way the frontends do. */
#include "hark/control.h"

#include <string.h>

#include "hark/command.h"
#include "hark/version.h"

/* ---- requests in --------------------------------------------------------------------- */

static gboolean
blank(const char *text, gsize length)
{
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isspace(text[i]))
      return FALSE;
  return TRUE;
}

/* The id is echoed as it came; only strings and numbers are ids. */
static gboolean
valid_id(JsonNode *id)
{
  if (!JSON_NODE_HOLDS_VALUE(id))
    return FALSE;
  GType type = json_node_get_value_type(id);
  return type == G_TYPE_STRING || type == G_TYPE_INT64 || type == G_TYPE_DOUBLE;
}

static HarkControlRequestKind
bad(HarkControlRequest *out, const char *message)
{
  out->error = g_strdup(message);
  return HARK_CONTROL_REQUEST_BAD;
}

static HarkControlRequestKind
read_request(JsonObject *request, HarkControlRequest *out)
{
  JsonNode *id = json_object_get_member(request, "id");
  if (id != NULL && !valid_id(id))
    return bad(out, "\"id\" must be a string or a number");
  out->id = id != NULL ? json_node_copy(id) : NULL;
  JsonNode *command = json_object_get_member(request, "command");
  if (command == NULL || !JSON_NODE_HOLDS_VALUE(command) ||
      json_node_get_value_type(command) != G_TYPE_STRING)
    return bad(out, "a request needs \"command\", a string");
  JsonNode *args = json_object_get_member(request, "args");
  if (args != NULL && !JSON_NODE_HOLDS_OBJECT(args))
    return bad(out, "\"args\" must be an object");
  out->command = g_strdup(json_node_get_string(command));
  out->args = args != NULL ? json_object_ref(json_node_get_object(args)) : NULL;
  return HARK_CONTROL_REQUEST_CALL;
}

HarkControlRequestKind
hark_control_request_parse(const char *text, gsize length, HarkControlRequest *out)
{
  memset(out, 0, sizeof *out);
  /* Blank lines are ignored: a person at socat pressed Enter. */
  if (blank(text, length))
    return HARK_CONTROL_REQUEST_BLANK;
  if (!g_utf8_validate_len(text, length, NULL))
    return bad(out, "the request is not valid UTF-8");
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) error = NULL;
  if (!json_parser_load_from_data(parser, text, (gssize)length, &error)) {
    /* json-glib quotes the bytes it stopped at, which need not be UTF-8 ("\ud800"). */
    g_autofree char *why = g_utf8_make_valid(error->message, -1);
    out->error = g_strdup_printf("the request is not JSON: %s", why);
    return HARK_CONTROL_REQUEST_BAD;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return bad(out, "a request is one JSON object");
  /* The id is echoed and the rest becomes a command's name and arguments: text. */
  if (!hark_json_is_text(root))
    return bad(out, "a string in the request is not UTF-8 (a lone \\uD800-\\uDFFF escape)");
  return read_request(json_node_get_object(root), out);
}

void
hark_control_request_clear(HarkControlRequest *request)
{
  g_clear_pointer(&request->id, json_node_unref);
  g_clear_pointer(&request->command, g_free);
  g_clear_pointer(&request->args, json_object_unref);
  g_clear_pointer(&request->error, g_free);
}

/* ---- answers out -------------------------------------------------------------------- */

GString *
hark_control_json_text(JsonNode *root)
{
  g_autoptr(JsonGenerator) generator = json_generator_new();
  json_generator_set_root(generator, root);
  GString *text = g_string_new(NULL);
  json_generator_to_gstring(generator, text);
  return text;
}

GString *
hark_control_object_text(JsonObject *object)
{
  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
  return hark_control_json_text(root);
}

JsonObject *
hark_control_answer_new(JsonNode *id, gboolean ok)
{
  JsonObject *answer = json_object_new();
  json_object_set_member(answer, "id", id ? json_node_copy(id) : json_node_new(JSON_NODE_NULL));
  json_object_set_boolean_member(answer, "ok", ok);
  return answer;
}

GString *
hark_control_error_text(JsonNode *id, const char *code, const char *message)
{
  g_autoptr(JsonObject) answer = hark_control_answer_new(id, FALSE);
  JsonObject *error = json_object_new();
  json_object_set_string_member(error, "code", code);
  json_object_set_string_member(error, "message", message);
  json_object_set_object_member(answer, "error", error);
  return hark_control_object_text(answer);
}

JsonObject *
hark_control_hello_new(HarkContext *ctx)
{
  JsonObject *hello = json_object_new();
  json_object_set_string_member(hello, "event", "hello");
  json_object_set_string_member(hello, "version", HARK_VERSION);
  json_object_set_int_member(hello, "protocol", HARK_CONTROL_PROTOCOL_VERSION);
  json_object_set_string_member(hello, "node", hark_context_node_name(ctx));
  return hello;
}

/* ---- running a request ------------------------------------------------------------------ */

typedef struct {
  JsonNode *id; /* NULL when the request had none */
  HarkControlReply reply;
  gpointer user_data;
} ControlCall;

static const char *
error_code(const GError *error)
{
  if (error->domain == HARK_COMMAND_ERROR)
    return hark_command_error_code_name(error->code);
  return hark_command_error_code_name(HARK_COMMAND_ERROR_FAILED);
}

/* The HarkCommandDone of every request: now, or later for commands that wait. */
static void
call_done(JsonNode *result, const GError *error, gpointer data)
{
  ControlCall *call = data;
  GString *answer;
  if (error != NULL) {
    answer = hark_control_error_text(call->id, error_code(error), error->message);
  } else {
    g_autoptr(JsonObject) object = hark_control_answer_new(call->id, TRUE);
    json_object_set_member(object, "result", json_node_ref(result));
    answer = hark_control_object_text(object);
  }
  call->reply(answer, call->user_data);
  g_clear_pointer(&call->id, json_node_unref);
  g_free(call);
}

void
hark_control_handle(HarkContext *ctx, const char *text, gsize length, HarkControlReply reply,
                    gpointer user_data)
{
  HarkControlRequest parsed;
  switch (hark_control_request_parse(text, length, &parsed)) {
  case HARK_CONTROL_REQUEST_BLANK:
    reply(NULL, user_data);
    break;
  case HARK_CONTROL_REQUEST_BAD:
    reply(hark_control_error_text(parsed.id, "bad-request", parsed.error), user_data);
    break;
  case HARK_CONTROL_REQUEST_CALL: {
    ControlCall *call = g_new0(ControlCall, 1);
    call->id = g_steal_pointer(&parsed.id);
    call->reply = reply;
    call->user_data = user_data;
    hark_context_run_command(ctx, parsed.command, parsed.args, call_done, call);
    break;
  }
  }
  hark_control_request_clear(&parsed);
}
