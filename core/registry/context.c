/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* context.c: the per-plugin handle through which plugins reach the node:
 * registrations of typed interfaces, events to frontends, the state snapshot. */
#include "hark-private.h"

/* clang-format off */
G_DEFINE_QUARK(hark-context-error-quark, hark_context_error)
/* clang-format on */
/* clang-format off */
G_DEFINE_QUARK(hark-node-error-quark, hark_node_error)
/* clang-format on */

/* The newest interface-table version this core understands for kind (0: none yet). The
 * table is the composition root's (node.c), which sees every kind's header. */
static guint32
newest_interface_version(HarkNode *node, HarkPluginKind kind)
{
  for (gsize i = 0; i < node->hooks.n_interface_versions; i++)
    if (node->hooks.interface_versions[i].kind == kind)
      return node->hooks.interface_versions[i].newest_version;
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
check_registration(HarkContext *ctx, HarkPluginKind kind, const char *name, gconstpointer iface,
                   GError **error)
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
  guint32 newest = newest_interface_version(ctx->node, kind);
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

/* The node as a whole is the composition root's to describe and to stop. */
JsonObject *
hark_context_snapshot(HarkContext *ctx)
{
  return ctx->node->hooks.snapshot(ctx->node);
}

void
hark_context_request_stop(HarkContext *ctx)
{
  ctx->node->hooks.request_stop(ctx->node);
}
