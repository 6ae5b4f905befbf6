/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-plugin-loader.c: the loader accepts good plugins and refuses each broken one
 * with a message naming the file and the reason; ranks order registrations; frontends
 * start in rank order; plugins unload in reverse order. */
#include "test-files.h"
#include "hark-private.h"
#include "hark/hark.h"

#include <glib/gstdio.h>
#include <sys/stat.h>

typedef struct {
  char *tmp;
  char *log_path;
  HarkNode *node;
} Fixture;

static char *
test_plugin_path(const char *name)
{
  const char *dir = g_getenv("HARK_TEST_PLUGIN_DIR");
  g_assert_nonnull(dir);
  g_autofree char *file = g_strconcat(name, ".so", NULL);
  return g_build_filename(dir, file, NULL);
}

static GVariant *
settings_with_log(Fixture *f, gint64 rank)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&b, "{sv}", "log", g_variant_new_string(f->log_path));
  if (rank >= 0)
    g_variant_builder_add(&b, "{sv}", "rank", g_variant_new_int64(rank));
  return g_variant_ref_sink(g_variant_builder_end(&b));
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp("hark-loader-XXXXXX", NULL);
  f->log_path = g_build_filename(f->tmp, "log", NULL);
  HarkConfig *config = hark_config_new_default();
  g_free(config->state_dir);
  config->state_dir = g_build_filename(f->tmp, "state", NULL);
  f->node = hark_node_new(config);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_pointer(&f->node, hark_node_free);
  hark_test_remove_tree(f->tmp);
  g_free(f->log_path);
  g_free(f->tmp);
}

static char *
read_log(Fixture *f)
{
  char *text = NULL;
  if (!g_file_get_contents(f->log_path, &text, NULL, NULL))
    return g_strdup("");
  return text;
}

static gboolean
load(Fixture *f, const char *name, gint64 rank, int override, GError **error)
{
  g_autofree char *path = test_plugin_path(name);
  g_autoptr(GVariant) settings = settings_with_log(f, rank);
  return hark_node_load_plugin_file(f->node, path, settings, override, error);
}

/* The refusal names the file and contains the reason. */
static void
assert_refused(Fixture *f, const char *name, const char *reason)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(load(f, name, -1, -1, &error));
  g_assert_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_PLUGIN);
  g_autofree char *path = test_plugin_path(name);
  if (strstr(error->message, path) == NULL || strstr(error->message, reason) == NULL)
    g_error("refusal of %s was \"%s\"; expected the path and \"%s\"", name, error->message, reason);
  g_autoptr(JsonArray) plugins = hark_node_describe_plugins(f->node);
  for (guint i = 0; i < json_array_get_length(plugins); i++) {
    JsonObject *p = json_array_get_object_element(plugins, i);
    g_assert_cmpstr(json_object_get_string_member(p, "file"), !=, path);
  }
}

static void
test_good_load(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(load(f, "good-a", 77, -1, &error));
  g_assert_no_error(error);
  g_autoptr(JsonArray) plugins = hark_node_describe_plugins(f->node);
  g_assert_cmpuint(json_array_get_length(plugins), ==, 1);
  JsonObject *p = json_array_get_object_element(plugins, 0);
  g_assert_cmpstr(json_object_get_string_member(p, "name"), ==, "good-a");
  g_assert_cmpstr(json_object_get_string_member(p, "version"), ==, "1.2.3");
  g_assert_cmpstr(json_object_get_string_member(p, "license"), ==, "LGPL-2.1-or-later");
  JsonArray *kinds = json_object_get_array_member(p, "kinds");
  g_assert_cmpuint(json_array_get_length(kinds), ==, 1);
  g_assert_cmpstr(json_array_get_string_element(kinds, 0), ==, "frontend");
  JsonObject *reg = json_array_get_object_element(json_object_get_array_member(p, "registered"), 0);
  g_assert_cmpstr(json_object_get_string_member(reg, "name"), ==, "good-a");
  g_assert_cmpint(json_object_get_int_member(reg, "rank"), ==, 77);
  JsonArray *commands = json_object_get_array_member(p, "commands");
  g_assert_cmpstr(json_array_get_string_element(commands, 0), ==, "good-a-echo");
  g_autofree char *log = read_log(f);
  g_assert_cmpstr(log, ==, "init good-a\n");
}

static void
test_refuse_wrong_major(Fixture *f, gconstpointer data)
{
  assert_refused(f, "bad-major", "plugin ABI 2.0, but this hark speaks ABI 1.x");
}

static void
test_refuse_newer_minor(Fixture *f, gconstpointer data)
{
  assert_refused(f, "newer-minor", "needs ABI 1.1, but this hark has only 1.0");
}

static void
test_refuse_missing_descriptor(Fixture *f, gconstpointer data)
{
  assert_refused(f, "no-descriptor", "not a hark plugin: it exports no 'hark_plugin_descriptor'");
}

static void
test_refuse_undefined_symbol(Fixture *f, gconstpointer data)
{
  assert_refused(f, "undefined-symbol", "hark_symbol_nobody_defines");
}

static void
test_refuse_bad_name(Fixture *f, gconstpointer data)
{
  assert_refused(f, "Bad_Name", "invalid plugin name 'Bad_Name'");
}

static void
test_refuse_failing_init(Fixture *f, gconstpointer data)
{
  assert_refused(f, "init-fails",
                 "refused to load: its init failed: this plugin always fails (init-fails)");
  /* What it registered before failing is gone: the command and the frontend. */
  g_assert_null(hark_context_find_command(hark_node_get_context(f->node), "init-fails-echo"));
  g_autoptr(GPtrArray) frontends =
    hark_context_lookup(hark_node_get_context(f->node), HARK_KIND_FRONTEND);
  g_assert_cmpuint(frontends->len, ==, 0);
}

static void
test_refuse_undeclared_kind(Fixture *f, gconstpointer data)
{
  assert_refused(f, "undeclared-kind", "registers a codec but its descriptor does not declare");
}

static void
test_refuse_unknown_interface_version(Fixture *f, gconstpointer data)
{
  /* Every kind has its interface now (search was the last); a table of a version this
   * core does not know yet is refused the same way. */
  HarkContext *ctx = hark_node_get_context(f->node);
  static const guint32 table_v2 = HARK_SEARCH_INTERFACE_VERSION + 1;
  ctx->declared_kinds = HARK_KIND_SEARCH;
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_context_register(ctx, HARK_KIND_SEARCH, "flood", 0, &table_v2, NULL, &error));
  g_assert_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INTERFACE_VERSION);
  g_assert_nonnull(strstr(error->message, "is not known to this core"));
  ctx->declared_kinds = 0;
}

static void
test_refuse_duplicate_name(Fixture *f, gconstpointer data)
{
  g_assert_true(load(f, "good-a", -1, -1, NULL));
  g_autofree char *dup =
    g_build_filename(g_getenv("HARK_TEST_PLUGIN_DIR"), "dup", "good-a.so", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_node_load_plugin_file(f->node, dup, NULL, -1, &error));
  g_assert_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_PLUGIN);
  g_assert_nonnull(strstr(error->message, dup));
  g_assert_nonnull(strstr(error->message, "a plugin named 'good-a' is already loaded from"));
}

static void
test_refuse_misnamed_file(Fixture *f, gconstpointer data)
{
  g_autofree char *good = test_plugin_path("good-a");
  g_autofree char *copy = g_build_filename(f->tmp, "other.so", NULL);
  g_autofree char *bytes = NULL;
  gsize length;
  g_assert_true(g_file_get_contents(good, &bytes, &length, NULL));
  g_assert_true(g_file_set_contents(copy, bytes, length, NULL));
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_node_load_plugin_file(f->node, copy, NULL, -1, &error));
  g_assert_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_PLUGIN);
  g_assert_cmpstr(strstr(error->message, copy), ==, error->message);
  g_assert_nonnull(
    strstr(error->message, "calls itself 'good-a', so its file must be named good-a.so"));
}

static void
test_refuse_missing_file(Fixture *f, gconstpointer data)
{
  g_autofree char *path = test_plugin_path("does-not-exist");
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_node_load_plugin_file(f->node, path, NULL, -1, &error));
  g_assert_nonnull(strstr(error->message, path));
  g_assert_nonnull(strstr(error->message, "cannot load"));
}

static char *
names_in_order(GPtrArray *registrations)
{
  g_autoptr(GString) s = g_string_new(NULL);
  for (guint i = 0; i < registrations->len; i++) {
    HarkRegistration *r = registrations->pdata[i];
    g_string_append_printf(s, "%s%s:%u", i ? " " : "", r->name, r->rank);
  }
  return g_strdup(s->str);
}

static void
test_rank_order(Fixture *f, gconstpointer data)
{
  g_assert_true(load(f, "good-a", 100, -1, NULL));
  g_assert_true(load(f, "good-b", 200, -1, NULL));
  g_autoptr(GPtrArray) regs =
    hark_context_lookup(hark_node_get_context(f->node), HARK_KIND_FRONTEND);
  g_autofree char *order = names_in_order(regs);
  g_assert_cmpstr(order, ==, "good-b:200 good-a:100");
}

static void
test_rank_override(Fixture *f, gconstpointer data)
{
  /* The configuration's rank beats the plugin's own. */
  g_assert_true(load(f, "good-a", 100, 300, NULL));
  g_assert_true(load(f, "good-b", 200, -1, NULL));
  g_autoptr(GPtrArray) regs =
    hark_context_lookup(hark_node_get_context(f->node), HARK_KIND_FRONTEND);
  g_autofree char *order = names_in_order(regs);
  g_assert_cmpstr(order, ==, "good-a:300 good-b:200");
}

static void
test_life_cycle_order(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(load(f, "good-a", 100, -1, NULL));
  g_assert_true(load(f, "good-b", 200, -1, NULL));
  g_assert_true(hark_node_start(f->node, &error));
  g_assert_no_error(error);
  hark_node_request_stop(f->node);
  hark_node_run(f->node); /* returns at once: the stop was requested */
  g_clear_pointer(&f->node, hark_node_free);
  g_autofree char *log = read_log(f);
  /* Start by rank (b first), events to both, stop in reverse start order, then fini in
   * reverse load order (b was loaded last). */
  g_assert_cmpstr(log, ==,
                  "init good-a\ninit good-b\n"
                  "start good-b\nstart good-a\n"
                  "event:node-started good-b\nevent:node-started good-a\n"
                  "event:node-stopping good-b\nevent:node-stopping good-a\n"
                  "stop good-a\nstop good-b\n"
                  "fini good-b\nfini good-a\n");
}

static void
test_state_dir_private(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_node_start(f->node, &error));
  g_assert_no_error(error);
  const char *dir = hark_context_state_dir(hark_node_get_context(f->node));
  GStatBuf st;
  g_assert_cmpint(g_stat(dir, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0700);
  g_autofree char *key = g_build_filename(dir, "identity.pem", NULL);
  g_assert_cmpint(g_stat(key, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

static void
test_configured_missing(Fixture *f, gconstpointer data)
{
  g_autofree char *conf = g_strdup_printf(
    "plugins: { path = [\"%s\"]; load = ( { name = \"good-a\"; settings = { log = \"%s\"; }; },\n"
    "  { name = \"absent\"; optional = true; } ); };\n",
    g_getenv("HARK_TEST_PLUGIN_DIR"), f->log_path);
  g_autoptr(GError) error = NULL;
  HarkConfig *config = hark_config_load_from_string(conf, "test.conf", &error);
  g_assert_no_error(error);
  hark_node_free(f->node);
  f->node = hark_node_new(config);
  /* An optional plugin that is missing is a warning; the rest loads. */
  g_test_expect_message("hark", G_LOG_LEVEL_WARNING, "plugin 'absent' not found*");
  g_assert_true(hark_node_load_plugins(f->node, &error));
  g_test_assert_expected_messages();
  g_assert_no_error(error);
  g_autofree char *log = read_log(f);
  g_assert_cmpstr(log, ==, "init good-a\n");
}

static void
test_not_found_lists_dirs(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = hark_node_find_plugin(f->node, "nowhere", &error);
  g_assert_null(path);
  g_assert_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_PLUGIN);
  g_assert_nonnull(strstr(error->message, "plugin 'nowhere' not found"));
  g_assert_nonnull(strstr(error->message, HARK_PLUGINDIR_FOR_TESTS));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD("/loader/good", test_good_load);
  ADD("/loader/refuse/wrong-major", test_refuse_wrong_major);
  ADD("/loader/refuse/newer-minor", test_refuse_newer_minor);
  ADD("/loader/refuse/missing-descriptor", test_refuse_missing_descriptor);
  ADD("/loader/refuse/undefined-symbol", test_refuse_undefined_symbol);
  ADD("/loader/refuse/bad-name", test_refuse_bad_name);
  ADD("/loader/refuse/failing-init", test_refuse_failing_init);
  ADD("/loader/refuse/undeclared-kind", test_refuse_undeclared_kind);
  ADD("/loader/refuse/unknown-interface-version", test_refuse_unknown_interface_version);
  ADD("/loader/refuse/duplicate-name", test_refuse_duplicate_name);
  ADD("/loader/refuse/missing-file", test_refuse_missing_file);
  ADD("/loader/refuse/misnamed-file", test_refuse_misnamed_file);
  ADD("/loader/rank/order", test_rank_order);
  ADD("/loader/rank/override", test_rank_override);
  ADD("/loader/life-cycle-order", test_life_cycle_order);
  ADD("/loader/state-dir-private", test_state_dir_private);
  ADD("/loader/configured/optional-missing", test_configured_missing);
  ADD("/loader/not-found-lists-dirs", test_not_found_lists_dirs);
  return g_test_run();
}
