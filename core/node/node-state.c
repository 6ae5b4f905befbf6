/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* node-state.c: the snapshot of the whole node that `state` answers and frontends
 * show: node, identity, plugins, frontends, network and media settings, and the login
 * client's and overlay's own parts. */
#include "node-private.h"
#include "hark/clock.h"

#include <unistd.h>

JsonNode *
hark_node_strv_json(char **strv)
{
  JsonArray *array = json_array_new();
  for (char **s = strv; s != NULL && *s != NULL; s++)
    json_array_add_string_element(array, *s);
  JsonNode *node = json_node_new(JSON_NODE_ARRAY);
  json_node_take_array(node, array);
  return node;
}

static JsonObject *
snapshot_node(HarkNode *node)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "name", node->config->node_name);
  json_object_set_string_member(o, "version", HARK_VERSION);
  json_object_set_int_member(o, "pid", getpid());
  json_object_set_string_member(o, "state_dir", node->config->state_dir);
  json_object_set_string_member(o, "config", node->config->path);
  json_object_set_boolean_member(o, "supernode_allowed", node->config->supernode);
  if (hark_clock_is_test(node->clock))
    json_object_set_boolean_member(o, "test_clock", TRUE); /* its login time is a test's */
  if (node->started_at > 0) {
    g_autoptr(GDateTime) started = g_date_time_new_from_unix_utc(node->started_at / G_USEC_PER_SEC);
    g_autofree char *iso = g_date_time_format_iso8601(started);
    json_object_set_string_member(o, "started", iso);
    json_object_set_int_member(o, "uptime_seconds",
                               (g_get_real_time() - node->started_at) / G_USEC_PER_SEC);
  }
  return o;
}

static JsonObject *
snapshot_identity(HarkNode *node)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "algorithm", "ed25519");
  json_object_set_string_member(o, "fingerprint", hark_identity_get_fingerprint(node->identity));
  return o;
}

static JsonObject *
snapshot_network(HarkConfig *config)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "listen", config->listen_address);
  json_object_set_int_member(o, "port", config->port);
  JsonArray *bootstrap = json_array_new();
  for (guint i = 0; i < config->bootstrap->len; i++) {
    HarkBootstrapConfig *b = config->bootstrap->pdata[i];
    JsonObject *entry = json_object_new();
    json_object_set_string_member(entry, "host", b->host);
    json_object_set_int_member(entry, "port", b->port);
    json_object_set_member(entry, "transports", hark_node_strv_json(b->transports));
    json_array_add_object_element(bootstrap, entry);
  }
  json_object_set_array_member(o, "bootstrap", bootstrap);
  return o;
}

static JsonArray *
snapshot_frontends(HarkNode *node)
{
  JsonArray *array = json_array_new();
  for (guint i = 0; i < node->frontends->len; i++) {
    HarkRegistrationEntry *entry = node->frontends->pdata[i];
    json_array_add_string_element(array, entry->name);
  }
  return array;
}

JsonObject *
hark_node_snapshot(HarkNode *node)
{
  HarkNodeRoot *root = hark_node_root(node);
  JsonObject *state = json_object_new();
  json_object_set_object_member(state, "node", snapshot_node(node));
  if (node->identity != NULL)
    json_object_set_object_member(state, "identity", snapshot_identity(node));
  json_object_set_array_member(state, "plugins", hark_loader_describe_plugins(node));
  json_object_set_array_member(state, "frontends", snapshot_frontends(node));
  json_object_set_object_member(state, "network", snapshot_network(node->config));
  json_object_set_object_member(state, "media", hark_node_media_settings(node));
  if (root->login != NULL)
    json_object_set_object_member(state, "login", hark_login_client_snapshot(root->login));
  if (root->overlay != NULL)
    json_object_set_object_member(state, "overlay", hark_overlay_snapshot(root->overlay, 20));
  return state;
}
