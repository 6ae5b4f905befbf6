/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* line.c: the lines of the ctl protocol: what one line a client sent asks for (a command
 * call {"id", "command", "args"}, nothing for a blank line, or a bad request and why),
 * and the JSON lines of the answers. No socket and no node here, so that
 * tests/fuzz/fuzz-ctlline.c feeds it lines the way connection.c does. */
#include "ctl.h"

#include <string.h>

/* ---- lines in --------------------------------------------------------------------- */

static gboolean
blank(const char *line, gsize length)
{
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isspace(line[i]))
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

static CtlLineKind
bad(CtlLine *out, const char *message)
{
  out->error = g_strdup(message);
  return CTL_LINE_BAD;
}

static CtlLineKind
read_request(JsonObject *request, CtlLine *out)
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
  return CTL_LINE_CALL;
}

CtlLineKind
ctl_line_parse(const char *line, gsize length, CtlLine *out)
{
  memset(out, 0, sizeof *out);
  /* Blank lines are ignored: a person at socat pressed Enter. */
  if (blank(line, length))
    return CTL_LINE_BLANK;
  if (!g_utf8_validate_len(line, length, NULL))
    return bad(out, "the line is not valid UTF-8");
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) error = NULL;
  if (!json_parser_load_from_data(parser, line, (gssize)length, &error)) {
    /* json-glib quotes the bytes it stopped at, which need not be UTF-8 ("\ud800"). */
    g_autofree char *why = g_utf8_make_valid(error->message, -1);
    out->error = g_strdup_printf("the line is not JSON: %s", why);
    return CTL_LINE_BAD;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return bad(out, "a request is one JSON object on one line");
  /* The id is echoed and the rest becomes a command's name and arguments: text. */
  if (!hark_json_is_text(root))
    return bad(out, "a string in the line is not UTF-8 (a lone \\uD800-\\uDFFF escape)");
  return read_request(json_node_get_object(root), out);
}

void
ctl_line_clear(CtlLine *line)
{
  g_clear_pointer(&line->id, json_node_unref);
  g_clear_pointer(&line->command, g_free);
  g_clear_pointer(&line->args, json_object_unref);
  g_clear_pointer(&line->error, g_free);
}

/* ---- lines out -------------------------------------------------------------------- */

GString *
ctl_json_line(JsonNode *root)
{
  g_autoptr(JsonGenerator) generator = json_generator_new();
  json_generator_set_root(generator, root);
  GString *line = g_string_new(NULL);
  json_generator_to_gstring(generator, line);
  g_string_append_c(line, '\n');
  return line;
}

GString *
ctl_object_line(JsonObject *object)
{
  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
  return ctl_json_line(root);
}

JsonObject *
ctl_answer_new(JsonNode *id, gboolean ok)
{
  JsonObject *answer = json_object_new();
  json_object_set_member(answer, "id", id ? json_node_copy(id) : json_node_new(JSON_NODE_NULL));
  json_object_set_boolean_member(answer, "ok", ok);
  return answer;
}

GString *
ctl_error_line(JsonNode *id, const char *code, const char *message)
{
  g_autoptr(JsonObject) answer = ctl_answer_new(id, FALSE);
  JsonObject *error = json_object_new();
  json_object_set_string_member(error, "code", code);
  json_object_set_string_member(error, "message", message);
  json_object_set_object_member(answer, "error", error);
  return ctl_object_line(answer);
}
