/* context.c: the per-plugin handle through which plugins reach the node:
 * registrations of typed interfaces, events to frontends, the state snapshot. */
#include "hark-private.h"
#include "overlay.h"

#include <unistd.h>

G_DEFINE_QUARK(hark-context-error-quark, hark_context_error)

/* The newest interface-table version this core understands, per kind. A kind whose
 * interface has not been defined yet accepts no registration. Add a line when a kind's
 * header (codec.h, transport.h, ...) is written; raise it when a table grows. */
static const struct {
  HarkPluginKind kind;
  guint32 newest_version;
} interface_versions[] = {
  { HARK_KIND_FRONTEND, HARK_FRONTEND_INTERFACE_VERSION },
  { HARK_KIND_STORE, HARK_STORE_INTERFACE_VERSION },
  { HARK_KIND_TRANSPORT, HARK_TRANSPORT_INTERFACE_VERSION },
  { HARK_KIND_CODEC, HARK_CODEC_INTERFACE_VERSION },
  { HARK_KIND_NAT_PROBE, HARK_NAT_PROBE_INTERFACE_VERSION },
};

static guint32
newest_interface_version(HarkPluginKind kind)
{
  for (gsize i = 0; i < G_N_ELEMENTS(interface_versions); i++)
    if (interface_versions[i].kind == kind)
      return interface_versions[i].newest_version;
  return 0;
}

HarkContext *
hark_context_new(HarkNode *node, const char *plugin_name, guint32 kinds, int rank)
{
  HarkContext *ctx = g_new0(HarkContext, 1);
  ctx->node = node;
  ctx->plugin_name = g_strdup(plugin_name);
  ctx->declared_kinds = kinds;
  ctx->rank_override = rank;
  return ctx;
}

void
hark_context_free(HarkContext *ctx)
{
  if (ctx == NULL)
    return;
  g_free(ctx->plugin_name);
  g_free(ctx);
}

const char *
hark_context_plugin_name(HarkContext *ctx)
{
  return ctx->plugin_name;
}

void
hark_context_set_plugin_data(HarkContext *ctx, gpointer data)
{
  ctx->plugin_data = data;
}

gpointer
hark_context_get_plugin_data(HarkContext *ctx)
{
  return ctx->plugin_data;
}

const char *
hark_context_node_name(HarkContext *ctx)
{
  return ctx->node->config->node_name;
}

GMainContext *
hark_context_main_context(HarkContext *ctx)
{
  return ctx->node->main_context;
}

HarkClock *
hark_context_get_clock(HarkContext *ctx)
{
  return ctx->node->clock;
}

const char *
hark_context_state_dir(HarkContext *ctx)
{
  return ctx->node->config->state_dir;
}

static HarkRegistrationEntry *
find_registration(HarkNode *node, HarkPluginKind kind, const char *name)
{
  for (guint i = 0; i < node->registrations->len; i++) {
    HarkRegistrationEntry *entry = node->registrations->pdata[i];
    if (entry->pub.kind == kind && g_str_equal(entry->name, name))
      return entry;
  }
  return NULL;
}

static gboolean
check_registration(HarkContext *ctx, HarkPluginKind kind, const char *name,
                   gconstpointer iface, GError **error)
{
  const char *kind_name = hark_plugin_kind_to_string(kind);
  if (kind_name == NULL || name == NULL || *name == '\0' || iface == NULL) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INVALID,
                "plugin '%s': register needs one kind, a name and an interface table",
                ctx->plugin_name);
    return FALSE;
  }
  if ((ctx->declared_kinds & kind) == 0) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_KIND_NOT_DECLARED,
                "plugin '%s' registers a %s but its descriptor does not declare that kind",
                ctx->plugin_name, kind_name);
    return FALSE;
  }
  guint32 version = *(const guint32 *)iface;
  guint32 newest = newest_interface_version(kind);
  if (newest == 0) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INTERFACE_VERSION,
                "plugin '%s': this core has no %s interface yet (hark %s)", ctx->plugin_name,
                kind_name, HARK_VERSION);
    return FALSE;
  }
  if (version == 0 || version > newest) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INTERFACE_VERSION,
                "plugin '%s': %s interface version %u is not known to this core "
                "(it knows versions 1 to %u)",
                ctx->plugin_name, kind_name, version, newest);
    return FALSE;
  }
  HarkRegistrationEntry *existing = find_registration(ctx->node, kind, name);
  if (existing != NULL) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_DUPLICATE,
                "plugin '%s': a %s named '%s' is already registered by plugin '%s'",
                ctx->plugin_name, kind_name, name, existing->owner->plugin_name);
    return FALSE;
  }
  return TRUE;
}

gboolean
hark_context_register(HarkContext *ctx, HarkPluginKind kind, const char *name, guint rank,
                      gconstpointer iface, gpointer instance, GError **error)
{
  if (!check_registration(ctx, kind, name, iface, error))
    return FALSE;
  HarkRegistrationEntry *entry = g_new0(HarkRegistrationEntry, 1);
  entry->name = g_strdup(name);
  entry->owner = ctx;
  entry->seq = ctx->node->registration_seq++;
  entry->pub.kind = kind;
  entry->pub.name = entry->name;
  entry->pub.plugin = ctx->plugin_name;
  entry->pub.rank = ctx->rank_override >= 0 ? (guint)ctx->rank_override : rank;
  entry->pub.iface = iface;
  entry->pub.instance = instance;
  g_ptr_array_add(ctx->node->registrations, entry);
  g_debug("plugin '%s' registered %s '%s' at rank %u", ctx->plugin_name,
          hark_plugin_kind_to_string(kind), name, entry->pub.rank);
  return TRUE;
}

static gint
compare_by_rank(gconstpointer a, gconstpointer b)
{
  const HarkRegistrationEntry *ea = *(HarkRegistrationEntry *const *)a;
  const HarkRegistrationEntry *eb = *(HarkRegistrationEntry *const *)b;
  if (ea->pub.rank != eb->pub.rank)
    return ea->pub.rank > eb->pub.rank ? -1 : 1;
  return ea->seq < eb->seq ? -1 : (ea->seq > eb->seq);
}

/* Entries (not the public structs), for the core's own use. */
static GPtrArray *
lookup_entries(HarkNode *node, HarkPluginKind kind)
{
  GPtrArray *found = g_ptr_array_new();
  for (guint i = 0; i < node->registrations->len; i++) {
    HarkRegistrationEntry *entry = node->registrations->pdata[i];
    if (entry->pub.kind == kind)
      g_ptr_array_add(found, entry);
  }
  g_ptr_array_sort(found, compare_by_rank);
  return found;
}

GPtrArray *
hark_context_lookup(HarkContext *ctx, HarkPluginKind kind)
{
  GPtrArray *entries = lookup_entries(ctx->node, kind);
  GPtrArray *result = g_ptr_array_sized_new(entries->len);
  for (guint i = 0; i < entries->len; i++)
    g_ptr_array_add(result, &((HarkRegistrationEntry *)entries->pdata[i])->pub);
  g_ptr_array_unref(entries);
  return result;
}

guint
hark_context_count_registrations(HarkContext *ctx, HarkPluginKind kind)
{
  guint count = 0;
  for (guint i = 0; i < ctx->node->registrations->len; i++) {
    HarkRegistrationEntry *entry = ctx->node->registrations->pdata[i];
    count += entry->owner == ctx && entry->pub.kind == kind;
  }
  return count;
}

void
hark_context_forget(HarkContext *ctx)
{
  HarkNode *node = ctx->node;
  for (guint i = node->registrations->len; i > 0; i--) {
    HarkRegistrationEntry *entry = node->registrations->pdata[i - 1];
    if (entry->owner == ctx)
      g_ptr_array_remove_index(node->registrations, i - 1);
  }
  hark_commands_remove_owned(node, ctx);
}

void
hark_context_emit(HarkContext *ctx, const char *event, JsonObject *data)
{
  JsonObject *object = data != NULL ? data : json_object_new();
  json_object_set_string_member(object, "event", event);
  /* A copy of the list: a frontend may stop (and leave it) while handling the event. */
  GPtrArray *frontends = g_ptr_array_copy(ctx->node->frontends, NULL, NULL);
  for (guint i = 0; i < frontends->len; i++) {
    HarkRegistrationEntry *entry = frontends->pdata[i];
    const HarkFrontendInterface *iface = entry->pub.iface;
    if (iface->event != NULL)
      iface->event(entry->pub.instance, event, object);
  }
  g_ptr_array_unref(frontends);
  json_object_unref(object);
}

static JsonNode *
strv_to_json(char **strv)
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
    json_object_set_member(entry, "transports", strv_to_json(b->transports));
    json_array_add_object_element(bootstrap, entry);
  }
  json_object_set_array_member(o, "bootstrap", bootstrap);
  return o;
}

static JsonObject *
snapshot_media(HarkConfig *config)
{
  JsonObject *o = json_object_new();
  json_object_set_member(o, "codecs", strv_to_json(config->codecs));
  json_object_set_string_member(o, "source", config->audio_source);
  json_object_set_string_member(o, "sink", config->audio_sink);
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
hark_context_snapshot(HarkContext *ctx)
{
  HarkNode *node = ctx->node;
  JsonObject *state = json_object_new();
  json_object_set_object_member(state, "node", snapshot_node(node));
  if (node->identity != NULL)
    json_object_set_object_member(state, "identity", snapshot_identity(node));
  json_object_set_array_member(state, "plugins", hark_node_describe_plugins(node));
  json_object_set_array_member(state, "frontends", snapshot_frontends(node));
  json_object_set_object_member(state, "network", snapshot_network(node->config));
  json_object_set_object_member(state, "media", snapshot_media(node->config));
  if (node->login != NULL)
    json_object_set_object_member(state, "login", hark_login_client_snapshot(node->login));
  if (node->overlay != NULL)
    json_object_set_object_member(state, "overlay", hark_overlay_snapshot(node->overlay, 20));
  return state;
}

void
hark_context_request_stop(HarkContext *ctx)
{
  hark_node_request_stop(ctx->node);
}
