/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* main.c: the `hark` program: a thin command-line front over libhark. */
#include "hark/hark.h"
#include "ctl-client.h"
#include "media-test.h"

#include <glib-unix.h>
#include <openssl/crypto.h>
#include <locale.h>
#include <stdio.h>

#define SUMMARY                                                                          \
  "Commands:\n"                                                                          \
  "  run            start a node (frontends, plugins, identity) and run until stopped\n" \
  "  plugins        list plugins, their kinds, versions and what each registered\n"      \
  "  check-config   validate a configuration file without starting anything\n"           \
  "  ctl            send one command to a running node through its ctl socket\n"         \
  "  media-test     send a tone or a file between two local media endpoints\n"           \
  "\n"                                                                                   \
  "Run 'hark COMMAND --help' for the options of a command."

typedef struct {
  char *config_path;
  char *state_dir;
  char **plugin_dirs;
  gboolean verbose;
  gboolean json;
} Options;

static void
options_clear(Options *o)
{
  g_free(o->config_path);
  g_free(o->state_dir);
  g_strfreev(o->plugin_dirs);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Options, options_clear)

static GLogWriterOutput
timestamped_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                   gpointer user_data)
{
  const char *domain = "hark", *message = "";
  for (gsize i = 0; i < n_fields; i++) {
    if (g_str_equal(fields[i].key, "GLIB_DOMAIN"))
      domain = fields[i].value;
    else if (g_str_equal(fields[i].key, "MESSAGE"))
      message = fields[i].value;
  }
  /* By domain, so that G_MESSAGES_DEBUG=hark-opus shows one plugin's debug messages. */
  if (g_log_writer_default_would_drop(level, domain))
    return G_LOG_WRITER_HANDLED;
  const char *name = (level & G_LOG_LEVEL_ERROR)      ? "error"
                     : (level & G_LOG_LEVEL_CRITICAL) ? "critical"
                     : (level & G_LOG_LEVEL_WARNING)  ? "warning"
                     : (level & G_LOG_LEVEL_MESSAGE)  ? "message"
                     : (level & G_LOG_LEVEL_INFO)     ? "info"
                                                      : "debug";
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  g_autofree char *stamp = g_date_time_format(now, "%H:%M:%S.%f");
  stamp[12] = '\0'; /* milliseconds are enough */
  fprintf(stderr, "%s %s %s: %s\n", stamp, domain, name, message);
  fflush(stderr);
  return G_LOG_WRITER_HANDLED;
}

static GOptionContext *
option_context_new(const char *command, const char *summary, Options *o, gboolean with_json)
{
  GOptionEntry common[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config_path,
      "Configuration file (default ~/.config/hark/hark.conf)", "FILE" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->state_dir,
      "State directory, overriding the configuration", "DIR" },
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->plugin_dirs,
      "Look for plugins here first (repeatable)", "DIR" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose, "Log debug messages", NULL },
    { NULL },
  };
  GOptionEntry json[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &o->json, "Print JSON", NULL },
    { NULL },
  };
  g_autofree char *usage = g_strdup_printf("%s", command);
  GOptionContext *context = g_option_context_new(usage);
  g_option_context_set_summary(context, summary);
  g_option_context_add_main_entries(context, common, NULL);
  if (with_json)
    g_option_context_add_main_entries(context, json, NULL);
  return context;
}

/* Parse a command's options; on error print it and return FALSE. */
static gboolean
parse_options(GOptionContext *context, Options *o, int *argc, char ***argv)
{
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(context, argc, argv, &error)) {
    g_printerr("hark: %s\n", error->message);
    return FALSE;
  }
  if (o->verbose)
    g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
  return TRUE;
}

static void
print_config_warnings(HarkConfig *config)
{
  for (guint i = 0; i < config->warnings->len; i++)
    g_printerr("warning: %s\n", (const char *)config->warnings->pdata[i]);
}

/* The configuration named by -c, the default file when it exists, or the defaults. */
static HarkConfig *
load_config(Options *o, gboolean must_exist, GError **error)
{
  g_autofree char *path = o->config_path ? g_strdup(o->config_path) : hark_config_default_path();
  HarkConfig *config;
  if (o->config_path == NULL && !must_exist && !g_file_test(path, G_FILE_TEST_EXISTS))
    config = hark_config_new_default();
  else if ((config = hark_config_load(path, error)) == NULL)
    return NULL;
  print_config_warnings(config);
  if (o->state_dir != NULL) {
    g_free(config->state_dir);
    config->state_dir = g_canonicalize_filename(o->state_dir, NULL);
  }
  if (o->plugin_dirs != NULL) {
    g_auto(GStrv) old = config->plugin_path;
    g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
    g_strv_builder_addv(builder, (const char **)o->plugin_dirs);
    if (old != NULL)
      g_strv_builder_addv(builder, (const char **)old);
    config->plugin_path = g_strv_builder_end(builder);
  }
  return config;
}

static gboolean
on_signal(gpointer data)
{
  g_message("signal received, stopping");
  hark_node_request_stop(data);
  return G_SOURCE_CONTINUE;
}

static int
command_run(int argc, char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GOptionContext) context =
    option_context_new("run", "Start a node and run it until it is stopped.", &o, FALSE);
  if (!parse_options(context, &o, &argc, &argv))
    return 2;
  g_autoptr(GError) error = NULL;
  HarkConfig *config = load_config(&o, TRUE, &error);
  if (config == NULL) {
    g_printerr("hark: %s\n", error->message);
    return 1;
  }
  g_autoptr(HarkNode) node = hark_node_new(config);
  /* Before start: a signal that comes once frontends listen must still stop cleanly. */
  guint sigint = g_unix_signal_add(SIGINT, on_signal, node);
  guint sigterm = g_unix_signal_add(SIGTERM, on_signal, node);
  if (!hark_node_load_plugins(node, &error) || !hark_node_start(node, &error)) {
    g_printerr("hark: %s\n", error->message);
    g_source_remove(sigint);
    g_source_remove(sigterm);
    return 1;
  }
  hark_node_run(node);
  g_source_remove(sigint);
  g_source_remove(sigterm);
  return 0;
}

static void
print_plugin(JsonObject *plugin)
{
  JsonArray *kinds = json_object_get_array_member(plugin, "kinds");
  g_autoptr(GString) kind_text = g_string_new(NULL);
  for (guint i = 0; i < json_array_get_length(kinds); i++)
    g_string_append_printf(kind_text, "%s%s", i ? "," : "",
                           json_array_get_string_element(kinds, i));
  g_print("%-12s %-8s %-4s %-22s %s\n", json_object_get_string_member(plugin, "name"),
          json_object_get_string_member(plugin, "version"),
          json_object_get_string_member(plugin, "abi"), kind_text->str,
          json_object_get_string_member(plugin, "file"));
  JsonArray *registered = json_object_get_array_member(plugin, "registered");
  for (guint i = 0; i < json_array_get_length(registered); i++) {
    JsonObject *r = json_array_get_object_element(registered, i);
    g_print("    registers %s '%s' at rank %" G_GINT64_FORMAT "\n",
            json_object_get_string_member(r, "kind"), json_object_get_string_member(r, "name"),
            json_object_get_int_member(r, "rank"));
  }
  JsonArray *commands = json_object_get_array_member(plugin, "commands");
  for (guint i = 0; i < json_array_get_length(commands); i++)
    g_print("    adds command '%s'\n", json_array_get_string_element(commands, i));
}

static void
print_plugins(JsonArray *plugins, gboolean json)
{
  if (json) {
    g_autoptr(JsonNode) root = json_node_new(JSON_NODE_ARRAY);
    json_node_set_array(root, plugins);
    g_autofree char *text = json_to_string(root, TRUE);
    g_print("%s\n", text);
    return;
  }
  g_print("%-12s %-8s %-4s %-22s %s\n", "NAME", "VERSION", "ABI", "KINDS", "FILE");
  for (guint i = 0; i < json_array_get_length(plugins); i++)
    print_plugin(json_array_get_object_element(plugins, i));
}

static int
command_plugins(int argc, char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GOptionContext) context = option_context_new(
    "plugins",
    "Without -c: load every plugin found in the plugin directories and list it.\n"
    "With -c FILE: load the plugins that configuration names, with its settings.",
    &o, TRUE);
  if (!parse_options(context, &o, &argc, &argv))
    return 2;
  gboolean from_config = o.config_path != NULL;
  g_autoptr(GError) error = NULL;
  HarkConfig *config = from_config ? load_config(&o, TRUE, &error) : hark_config_new_default();
  if (config == NULL) {
    g_printerr("hark: %s\n", error->message);
    return 1;
  }
  if (!from_config && o.plugin_dirs != NULL)
    config->plugin_path = g_strdupv(o.plugin_dirs);
  g_autoptr(HarkNode) node = hark_node_new(config);
  gboolean ok =
    from_config ? hark_node_load_plugins(node, &error) : hark_node_load_all_plugins(node, &error);
  g_autoptr(JsonArray) plugins = hark_node_describe_plugins(node);
  print_plugins(plugins, o.json);
  if (!ok)
    g_printerr("hark: refused:\n%s\n", error->message);
  return ok ? 0 : 1;
}

/* A configuration is only usable when every plugin it names can be found. */
static gboolean
check_plugins_present(HarkConfig *config)
{
  g_autoptr(HarkNode) node = hark_node_new(config);
  gboolean ok = TRUE;
  for (guint i = 0; i < config->plugins->len; i++) {
    const HarkPluginConfig *pc = config->plugins->pdata[i];
    g_autoptr(GError) error = NULL;
    g_autofree char *path = hark_node_find_plugin(node, pc->name, &error);
    if (path != NULL)
      continue;
    g_printerr("%s: %s\n", pc->optional ? "warning" : "error", error->message);
    ok = ok && pc->optional;
  }
  return ok;
}

static int
command_check_config(int argc, char **argv)
{
  g_auto(Options) o = { 0 };
  g_autoptr(GOptionContext) context =
    option_context_new("check-config [FILE]",
                       "Check a configuration file: syntax, types, values, plugins.", &o, FALSE);
  if (!parse_options(context, &o, &argc, &argv))
    return 2;
  if (argc > 1) {
    g_free(o.config_path);
    o.config_path = g_strdup(argv[1]);
  }
  g_autoptr(GError) error = NULL;
  HarkConfig *config = load_config(&o, TRUE, &error);
  if (config == NULL) {
    g_printerr("%s\n", error->message);
    return 1;
  }
  g_autofree char *path = g_strdup(config->path);
  if (!check_plugins_present(config))
    return 1;
  g_print("%s: ok\n", path);
  return 0;
}

static int
usage(int status)
{
  (status == 0 ? g_print : g_printerr)("Usage: hark COMMAND [OPTION...]\n\n%s\n", SUMMARY);
  return status;
}

int
main(int argc, char **argv)
{
  /* OpenSSL frees its global state in an atexit handler, while a GIO TLS thread may
   * still be checking the login server's certificate with it (a login under way when the
   * node stops): that crashed nodes at exit now and then. The process ends anyway. */
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
  setlocale(LC_ALL, "");
  g_log_set_writer_func(timestamped_writer, NULL, NULL);
  if (argc < 2)
    return usage(2);
  const char *command = argv[1];
  if (g_str_equal(command, "--help") || g_str_equal(command, "-h") || g_str_equal(command, "help"))
    return usage(0);
  if (g_str_equal(command, "--version") || g_str_equal(command, "-V")) {
    g_print("hark %s (plugin ABI %d.%d, wire protocol %d)\n", HARK_VERSION, HARK_PLUGIN_ABI_MAJOR,
            HARK_PLUGIN_ABI_MINOR, HARK_WIRE_VERSION);
    return 0;
  }
  /* Before any thread starts (it sets the environment). */
  if (g_str_equal(command, "run") || g_str_equal(command, "media-test"))
    hark_media_prepare();
  if (g_str_equal(command, "run")) {
    hark_tls_prepare(); /* the system's trust store is not loaded: 7 MiB of heap */
    return command_run(argc - 1, argv + 1);
  }
  if (g_str_equal(command, "plugins"))
    return command_plugins(argc - 1, argv + 1);
  if (g_str_equal(command, "check-config"))
    return command_check_config(argc - 1, argv + 1);
  if (g_str_equal(command, "ctl"))
    return hark_ctl_client_main(argc - 1, argv + 1);
  if (g_str_equal(command, "media-test"))
    return hark_media_test_main(argc - 1, argv + 1);
  g_printerr("hark: unknown command '%s'\n\n", command);
  return usage(2);
}
