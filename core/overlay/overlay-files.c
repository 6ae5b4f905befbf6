/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-files.c: join.json and nat.json from their text (overlay-files.h). Any damage
 * means no result: the node joins from its host cache, or probes its NAT again. */
#include "overlay-files.h"

#include "hark/config.h"

#include <string.h>

/* The object of text, or NULL. */
static JsonParser *
parse_object(const char *text, gsize size, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  if (size > OVERLAY_STATE_FILE_MAX || !g_utf8_validate_len(text, size, NULL)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not a short UTF-8 text");
    return NULL;
  }
  if (!json_parser_load_from_data(parser, text, (gssize)size, error))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not a JSON object");
    return NULL;
  }
  return g_steal_pointer(&parser);
}

/* A member of the type asked for, else NULL (json-glib's typed getters complain about a
 * member of another type). */
static JsonNode *
value_member(JsonObject *o, const char *name, GType type)
{
  JsonNode *node = json_object_get_member(o, name);
  return node != NULL && JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == type
           ? node
           : NULL;
}

static const char *
string_member(JsonObject *o, const char *name)
{
  JsonNode *node = value_member(o, name, G_TYPE_STRING);
  return node != NULL ? json_node_get_string(node) : NULL;
}

/* ---- join.json -------------------------------------------------------------------- */

gboolean
hark_overlay_way_parse(const char *text, gsize size, OverlayWay *way)
{
  g_autoptr(JsonParser) parser = parse_object(text, size, NULL);
  if (parser == NULL)
    return FALSE;
  JsonObject *object = json_node_get_object(json_parser_get_root(parser));
  const char *transport = string_member(object, "transport");
  const char *host = string_member(object, "host");
  JsonNode *port = value_member(object, "port", G_TYPE_INT64);
  JsonNode *udp_answered = json_object_get_member(object, "udp_answered");
  if (transport == NULL || !hark_config_is_transport(transport) || host == NULL ||
      !hark_config_is_host(host) || port == NULL || json_node_get_int(port) <= 0 ||
      json_node_get_int(port) > G_MAXUINT16)
    return FALSE;
  /* Absent, it is TRUE: a file saved before it was recorded. */
  if (udp_answered != NULL && value_member(object, "udp_answered", G_TYPE_BOOLEAN) == NULL)
    return FALSE;
  way->transport = g_strdup(transport);
  way->host = g_strdup(host);
  way->port = (guint16)json_node_get_int(port);
  way->udp_answered = udp_answered != NULL ? json_node_get_boolean(udp_answered) : TRUE;
  return TRUE;
}

void
hark_overlay_way_clear(OverlayWay *way)
{
  g_clear_pointer(&way->transport, g_free);
  g_clear_pointer(&way->host, g_free);
}

/* ---- nat.json --------------------------------------------------------------------- */

/* A string member that is absent, null, or an "ip:port" of at most 64 bytes. */
static gboolean
optional_address(JsonObject *o, const char *name, char **out)
{
  JsonNode *node = json_object_get_member(o, name);
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return TRUE;
  const char *text = string_member(o, name);
  if (text == NULL || strlen(text) > 64 || strchr(text, ':') == NULL)
    return FALSE;
  *out = g_strdup(text);
  return TRUE;
}

HarkNatResult *
hark_overlay_nat_parse(const char *text, gsize size, const char *path, gint64 *probed_at,
                       char **plugin, GError **error)
{
  g_autoptr(JsonParser) parser = parse_object(text, size, NULL);
  if (parser == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is not a NAT result", path);
    return NULL;
  }
  JsonObject *o = json_node_get_object(json_parser_get_root(parser));
  g_autoptr(HarkNatResult) r = g_new0(HarkNatResult, 1);
  const char *made_by = string_member(o, "plugin");
  JsonNode *at = value_member(o, "probed_at", G_TYPE_INT64);
  if (!hark_nat_verdict_from_string(string_member(o, "verdict"), &r->verdict) ||
      !hark_nat_behaviour_from_string(string_member(o, "mapping"), &r->mapping) ||
      !hark_nat_behaviour_from_string(string_member(o, "filtering"), &r->filtering) ||
      !optional_address(o, "mapped", &r->mapped) || !optional_address(o, "server", &r->server) ||
      !optional_address(o, "other", &r->other) || made_by == NULL || strlen(made_by) > 64 ||
      at == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: a member is missing or wrong",
                path);
    return NULL;
  }
  *probed_at = json_node_get_int(at);
  *plugin = g_strdup(made_by);
  return g_steal_pointer(&r);
}
