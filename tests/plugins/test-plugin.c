/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-plugin.c: one source, built into many small plugins (see meson.build), each
 * broken in one way the loader must refuse, or good, to test ranks and ordering.
 * A plugin appends what happens to it ("init NAME", "start NAME", ...) to the file
 * named by its "log" setting, so a test can read the order back. */
#include <hark/hark.h>

#include <stdio.h>

#ifndef TEST_ABI_MAJOR
#define TEST_ABI_MAJOR HARK_PLUGIN_ABI_MAJOR
#endif
#ifndef TEST_ABI_MINOR
#define TEST_ABI_MINOR HARK_PLUGIN_ABI_MINOR
#endif
#ifndef TEST_REGISTER_KIND
#define TEST_REGISTER_KIND HARK_KIND_FRONTEND
#endif

typedef struct {
  HarkContext *ctx;
  char *log_path;
} TestPlugin;

static void
note(TestPlugin *self, const char *what)
{
  if (self->log_path == NULL)
    return;
  FILE *f = fopen(self->log_path, "a");
  if (f == NULL)
    return;
  fprintf(f, "%s %s\n", what, TEST_PLUGIN_NAME);
  fclose(f);
}

static gboolean
test_start(gpointer instance, GError **error)
{
  note(instance, "start");
  return TRUE;
}

static void
test_stop(gpointer instance)
{
  note(instance, "stop");
}

static void
test_event(gpointer instance, const char *name, JsonObject *data)
{
  g_autofree char *what = g_strdup_printf("event:%s", name);
  note(instance, what);
}

static const HarkFrontendInterface test_iface = {
  .version = HARK_FRONTEND_INTERFACE_VERSION,
  .start = test_start,
  .stop = test_stop,
  .event = test_event,
};

static void
run_echo(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "plugin", TEST_PLUGIN_NAME);
  hark_command_call_return_object(call, result);
}

static const HarkCommand echo_command = {
  HARK_COMMAND_VERSION, TEST_PLUGIN_NAME "-echo", "say which plugin answered", NULL, run_echo,
};

#ifdef TEST_UNDEFINED_SYMBOL
/* Nothing defines this: the loader must refuse the file at load, naming the symbol. */
extern int hark_symbol_nobody_defines(void);
#endif

static gboolean
register_all(TestPlugin *self, GVariant *settings, GError **error)
{
  gint64 rank = HARK_RANK_SECONDARY;
  g_variant_lookup(settings, "rank", "x", &rank);
  if (!hark_context_register(self->ctx, TEST_REGISTER_KIND, TEST_PLUGIN_NAME, (guint)rank,
                             &test_iface, self, error))
    return FALSE;
  if (!hark_context_add_command(self->ctx, &echo_command, self, error))
    return FALSE;
#ifdef TEST_INIT_FAILS
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "this plugin always fails (%s)",
              hark_context_plugin_name(self->ctx));
  return FALSE;
#endif
  return TRUE;
}

static void
test_plugin_free(TestPlugin *self)
{
  g_free(self->log_path);
  g_free(self);
}

static gboolean
test_init(HarkContext *ctx, GVariant *settings, GError **error)
{
#ifdef TEST_UNDEFINED_SYMBOL
  if (hark_symbol_nobody_defines() != 0)
    return FALSE;
#endif
  TestPlugin *self = g_new0(TestPlugin, 1);
  self->ctx = ctx;
  g_variant_lookup(settings, "log", "s", &self->log_path);
  note(self, "init");
  /* On failure there is no fini: the core drops what was registered, we drop the rest. */
  if (!register_all(self, settings, error)) {
    test_plugin_free(self);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, self);
  return TRUE;
}

static void
test_fini(HarkContext *ctx)
{
  TestPlugin *self = hark_context_get_plugin_data(ctx);
  note(self, "fini");
  test_plugin_free(self);
}

#ifndef TEST_NO_DESCRIPTOR
G_MODULE_EXPORT const HarkPluginDescriptor hark_plugin_descriptor = {
  .abi_major = TEST_ABI_MAJOR,
  .abi_minor = TEST_ABI_MINOR,
  .name = TEST_PLUGIN_NAME,
  .version = "1.2.3",
  .description = "a plugin for the loader's tests",
  .license = "LGPL-2.1-or-later",
  .kinds = HARK_KIND_FRONTEND,
  .init = test_init,
  .fini = test_fini,
};
#else
/* Exports something, just not a descriptor. */
G_MODULE_EXPORT const HarkFrontendInterface *not_a_descriptor = &test_iface;
G_MODULE_EXPORT gboolean (*unused_init)(HarkContext *, GVariant *, GError **) = test_init;
G_MODULE_EXPORT void (*unused_fini)(HarkContext *) = test_fini;
#endif
