/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* loader.c: finds plugin files, checks their descriptors, runs init and fini.
 *
 * Every refusal names the file and the reason, because the person reading it is
 * usually looking at a directory of .so files wondering which one is wrong. */
#include "hark-private.h"

#include <unistd.h>

#define PLUGIN_SUFFIX ".so"

static void
add_dir(GPtrArray *dirs, const char *dir)
{
  if (dir == NULL || *dir == '\0')
    return;
  for (guint i = 0; i < dirs->len; i++)
    if (g_str_equal(dirs->pdata[i], dir))
      return;
  g_ptr_array_add(dirs, g_strdup(dir));
}

/* <dir of the running program>/plugins: lets ./build/hark find ./build/plugins. */
static char *
program_plugin_dir(void)
{
  g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
  if (exe == NULL)
    return NULL;
  g_autofree char *dir = g_path_get_dirname(exe);
  return g_build_filename(dir, "plugins", NULL);
}

GPtrArray *
hark_loader_plugin_dirs(HarkNode *node)
{
  GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
  for (char **d = node->config->plugin_path; d && *d; d++)
    add_dir(dirs, *d);
  const char *env = g_getenv("HARK_PLUGIN_PATH");
  if (env != NULL) {
    g_auto(GStrv) parts = g_strsplit(env, ":", -1);
    for (char **d = parts; *d; d++)
      add_dir(dirs, *d);
  }
  g_autofree char *beside = program_plugin_dir();
  add_dir(dirs, beside);
  add_dir(dirs, HARK_PLUGINDIR);
  return dirs;
}

static HarkLoadedPlugin *
find_loaded(HarkNode *node, const char *name)
{
  for (guint i = 0; i < node->plugins->len; i++) {
    HarkLoadedPlugin *plugin = node->plugins->pdata[i];
    if (g_str_equal(plugin->descriptor->name, name))
      return plugin;
  }
  return NULL;
}

static gboolean
valid_plugin_name(const char *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-')
      return FALSE;
  return TRUE;
}

static gboolean refuse(GError **error, const char *path, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

static gboolean
refuse(GError **error, const char *path, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *reason = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_PLUGIN, "%s: %s", path, reason);
  return FALSE;
}

/* The ABI numbers first: nothing else in a descriptor of another major may be read. */
static gboolean
check_descriptor(HarkNode *node, const char *path, const HarkPluginDescriptor *d, GError **error)
{
  if (d->abi_major != HARK_PLUGIN_ABI_MAJOR)
    return refuse(error, path,
                  "plugin ABI %u.%u, but this hark speaks ABI %u.x: rebuild the plugin "
                  "against hark %s",
                  d->abi_major, d->abi_minor, HARK_PLUGIN_ABI_MAJOR, HARK_VERSION);
  if (d->abi_minor > HARK_PLUGIN_ABI_MINOR)
    return refuse(error, path, "plugin needs ABI %u.%u, but this hark has only %u.%u: update hark",
                  d->abi_major, d->abi_minor, HARK_PLUGIN_ABI_MAJOR, HARK_PLUGIN_ABI_MINOR);
  if (!valid_plugin_name(d->name))
    return refuse(error, path, "invalid plugin name '%s' (expected [a-z0-9-]+)",
                  d->name ? d->name : "(null)");
  g_autofree char *base = g_path_get_basename(path);
  if (!g_str_has_suffix(base, PLUGIN_SUFFIX) ||
      strlen(base) - strlen(PLUGIN_SUFFIX) != strlen(d->name) ||
      strncmp(base, d->name, strlen(d->name)) != 0)
    return refuse(error, path, "the plugin calls itself '%s', so its file must be named %s%s",
                  d->name, d->name, PLUGIN_SUFFIX);
  if (d->init == NULL)
    return refuse(error, path, "plugin '%s' has no init function", d->name);
  if (d->kinds == 0 || (d->kinds & ~HARK_KIND_ALL) != 0)
    return refuse(error, path, "plugin '%s' declares no known kind (kinds = 0x%x)", d->name,
                  d->kinds);
  HarkLoadedPlugin *other = find_loaded(node, d->name);
  if (other != NULL)
    return refuse(error, path, "a plugin named '%s' is already loaded from %s", d->name,
                  other->path);
  return TRUE;
}

static void
warn_unused_kinds(HarkLoadedPlugin *plugin)
{
  for (guint32 bit = 1; bit & HARK_KIND_ALL; bit <<= 1) {
    if ((plugin->descriptor->kinds & bit) &&
        hark_context_count_registrations(plugin->ctx, bit) == 0)
      g_debug("%s: plugin '%s' declares kind %s but registered none", plugin->path,
              plugin->descriptor->name, hark_plugin_kind_to_string(bit));
  }
}

static gboolean
init_plugin(HarkNode *node, HarkLoadedPlugin *plugin, GVariant *settings, int rank, GError **error)
{
  const HarkPluginDescriptor *d = plugin->descriptor;
  plugin->ctx = hark_context_new(node, d->name, d->kinds, rank);
  g_autoptr(GVariant) empty = NULL;
  if (settings == NULL)
    settings = empty = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
  g_autoptr(GError) init_error = NULL;
  if (!d->init(plugin->ctx, settings, &init_error)) {
    hark_context_forget(plugin->ctx);
    hark_context_free(g_steal_pointer(&plugin->ctx));
    return refuse(error, plugin->path, "plugin '%s' refused to load: its init failed: %s", d->name,
                  init_error ? init_error->message : "init returned FALSE without a reason");
  }
  warn_unused_kinds(plugin);
  return TRUE;
}

static void
loaded_plugin_free(HarkLoadedPlugin *plugin)
{
  if (plugin->module != NULL)
    g_module_close(plugin->module);
  g_free(plugin->path);
  g_free(plugin);
}

gboolean
hark_loader_load_plugin_file(HarkNode *node, const char *path, GVariant *settings, int rank,
                             GError **error)
{
  /* BIND_LOCAL: one plugin's symbols never satisfy another's; an unresolved symbol
   * (say, one the plugin hoped to find in the program) fails here, not mid-call. */
  GModule *module = g_module_open(path, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    return refuse(error, path, "cannot load: %s", g_module_error());
  gpointer symbol = NULL;
  if (!g_module_symbol(module, HARK_PLUGIN_DESCRIPTOR_SYMBOL, &symbol) || symbol == NULL) {
    g_module_close(module);
    return refuse(error, path, "not a hark plugin: it exports no '%s'",
                  HARK_PLUGIN_DESCRIPTOR_SYMBOL);
  }
  if (!check_descriptor(node, path, symbol, error)) {
    g_module_close(module);
    return FALSE;
  }
  HarkLoadedPlugin *plugin = g_new0(HarkLoadedPlugin, 1);
  plugin->path = g_strdup(path);
  plugin->module = module;
  plugin->descriptor = symbol;
  if (!init_plugin(node, plugin, settings, rank, error)) {
    loaded_plugin_free(plugin);
    return FALSE;
  }
  /* Once its init ran, a plugin's code stays mapped until the process ends (as
   * GStreamer's plugins do): a GIO worker thread finishing a task, or a TLS handshake
   * thread, may still return into it after its fini, and unmapped code crashes the
   * process at shutdown instead of letting it exit. */
  g_module_make_resident(module);
  g_ptr_array_add(node->plugins, plugin);
  g_debug("loaded plugin '%s' %s from %s", plugin->descriptor->name, plugin->descriptor->version,
          path);
  return TRUE;
}

char *
hark_loader_find_plugin(HarkNode *node, const char *name, GError **error)
{
  g_autoptr(GPtrArray) dirs = hark_loader_plugin_dirs(node);
  g_autofree char *file = g_strconcat(name, PLUGIN_SUFFIX, NULL);
  for (guint i = 0; i < dirs->len; i++) {
    char *path = g_build_filename(dirs->pdata[i], file, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
      return path;
    g_free(path);
  }
  g_ptr_array_add(dirs, NULL);
  g_autofree char *looked = g_strjoinv(", ", (char **)dirs->pdata);
  g_set_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_PLUGIN,
              "plugin '%s' not found: no %s in %s (set plugins.path in the configuration "
              "or HARK_PLUGIN_PATH)",
              name, file, looked);
  return NULL;
}

static gboolean
load_configured(HarkNode *node, const HarkPluginConfig *pc, GError **error)
{
  g_autofree char *path = hark_loader_find_plugin(node, pc->name, error);
  if (path == NULL)
    return FALSE;
  return hark_loader_load_plugin_file(node, path, pc->settings, pc->rank, error);
}

gboolean
hark_loader_load_plugins(HarkNode *node, GError **error)
{
  for (guint i = 0; i < node->config->plugins->len; i++) {
    const HarkPluginConfig *pc = node->config->plugins->pdata[i];
    g_autoptr(GError) local = NULL;
    if (load_configured(node, pc, &local))
      continue;
    if (!pc->optional) {
      g_propagate_error(error, g_steal_pointer(&local));
      return FALSE;
    }
    g_warning("%s (optional plugin, carrying on without it)", local->message);
  }
  return TRUE;
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* <name>.so files of one directory, sorted, so that loading is the same on every run. */
static GPtrArray *
list_plugin_files(const char *dir)
{
  GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GDir) handle = g_dir_open(dir, 0, NULL);
  const char *entry;
  while (handle && (entry = g_dir_read_name(handle)) != NULL)
    if (g_str_has_suffix(entry, PLUGIN_SUFFIX))
      g_ptr_array_add(files, g_strdup(entry));
  g_ptr_array_sort(files, compare_strings);
  return files;
}

gboolean
hark_loader_load_all_plugins(HarkNode *node, GError **error)
{
  g_autoptr(GPtrArray) dirs = hark_loader_plugin_dirs(node);
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GString) refusals = g_string_new(NULL);
  for (guint i = 0; i < dirs->len; i++) {
    g_autoptr(GPtrArray) files = list_plugin_files(dirs->pdata[i]);
    for (guint j = 0; j < files->len; j++) {
      const char *file = files->pdata[j];
      if (g_hash_table_contains(seen, file))
        continue; /* an earlier directory overrides a later one, as for named loads */
      g_hash_table_add(seen, g_strdup(file));
      g_autofree char *name = g_strndup(file, strlen(file) - strlen(PLUGIN_SUFFIX));
      const HarkPluginConfig *pc = hark_config_find_plugin(node->config, name);
      g_autofree char *path = g_build_filename(dirs->pdata[i], file, NULL);
      g_autoptr(GError) local = NULL;
      if (!hark_loader_load_plugin_file(node, path, pc ? pc->settings : NULL, pc ? pc->rank : -1,
                                        &local))
        g_string_append_printf(refusals, "%s%s", refusals->len ? "\n" : "", local->message);
    }
  }
  if (refusals->len == 0)
    return TRUE;
  g_set_error_literal(error, HARK_NODE_ERROR, HARK_NODE_ERROR_PLUGIN, refusals->str);
  return FALSE;
}

void
hark_loader_unload_all(HarkNode *node)
{
  while (node->plugins->len > 0) {
    HarkLoadedPlugin *plugin = g_ptr_array_steal_index(node->plugins, node->plugins->len - 1);
    if (plugin->descriptor->fini != NULL)
      plugin->descriptor->fini(plugin->ctx);
    hark_context_forget(plugin->ctx);
    hark_context_free(plugin->ctx);
    loaded_plugin_free(plugin);
  }
}

static JsonArray *
describe_registrations(HarkNode *node, HarkContext *ctx)
{
  JsonArray *array = json_array_new();
  for (guint i = 0; i < node->registrations->len; i++) {
    HarkRegistrationEntry *entry = node->registrations->pdata[i];
    if (entry->owner != ctx)
      continue;
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "kind", hark_plugin_kind_to_string(entry->pub.kind));
    json_object_set_string_member(o, "name", entry->name);
    json_object_set_int_member(o, "rank", entry->pub.rank);
    json_array_add_object_element(array, o);
  }
  return array;
}

static JsonArray *
describe_commands(HarkNode *node, HarkContext *ctx)
{
  g_autoptr(GPtrArray) commands = hark_context_list_commands(node->core_ctx);
  JsonArray *array = json_array_new();
  for (guint i = 0; i < commands->len; i++) {
    const HarkCommand *command = commands->pdata[i];
    HarkCommandEntry *entry = g_hash_table_lookup(node->commands, command->name);
    if (entry->owner == ctx)
      json_array_add_string_element(array, command->name);
  }
  return array;
}

static JsonArray *
describe_kinds(guint32 kinds)
{
  JsonArray *array = json_array_new();
  for (guint32 bit = 1; bit & HARK_KIND_ALL; bit <<= 1)
    if (kinds & bit)
      json_array_add_string_element(array, hark_plugin_kind_to_string(bit));
  return array;
}

JsonArray *
hark_loader_describe_plugins(HarkNode *node)
{
  JsonArray *array = json_array_new();
  for (guint i = 0; i < node->plugins->len; i++) {
    HarkLoadedPlugin *plugin = node->plugins->pdata[i];
    const HarkPluginDescriptor *d = plugin->descriptor;
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "name", d->name);
    json_object_set_string_member(o, "version", d->version);
    json_object_set_string_member(o, "description", d->description);
    json_object_set_string_member(o, "license", d->license);
    g_autofree char *abi = g_strdup_printf("%u.%u", d->abi_major, d->abi_minor);
    json_object_set_string_member(o, "abi", abi);
    json_object_set_string_member(o, "file", plugin->path);
    json_object_set_array_member(o, "kinds", describe_kinds(d->kinds));
    json_object_set_array_member(o, "registered", describe_registrations(node, plugin->ctx));
    json_object_set_array_member(o, "commands", describe_commands(node, plugin->ctx));
    json_array_add_object_element(array, o);
  }
  return array;
}
