/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-gst.c: GStreamer started with only the plugins the engine uses. GStreamer's
 * registry describes every installed plugin (Debian's GStreamer packages: about 250)
 * and keeps that description on the heap of every process that initialises it: about
 * 4 MiB of each end's 8 MiB of anonymous memory in a call. After hark_media_prepare()
 * GStreamer starts without it, and each plugin is loaded when one of its elements is first made
 * (a table below maps element names to plugin files); an element the table does not
 * know (a codec plugin's own choice) makes the engine scan the plugin directory once,
 * as GStreamer would have at start. */
#include "media-session.h"

#include <string.h>

/* GStreamer's plugin directory (meson: gstreamer-1.0's pluginsdir). */
#ifndef HARK_GST_PLUGINSDIR
#define HARK_GST_PLUGINSDIR "/usr/lib/gstreamer-1.0"
#endif

/* Set by hark_media_prepare(): GStreamer starts without its registry. */
static gboolean lean;
static gboolean scanned, loaded;
static GMutex lock;

/* Element name (exact, or a prefix ending in '*') -> plugin file libgstNAME.so. */
static const struct {
  const char *element, *plugin;
} plugin_of[] = {
  { "capsfilter", "coreelements" },
  { "clocksync", "coreelements" },
  { "fakesink", "coreelements" },
  { "filesrc", "coreelements" },
  { "funnel", "coreelements" },
  { "identity", "coreelements" },
  { "queue", "coreelements" },
  { "appsink", "app" },
  { "appsrc", "app" },
  { "audioconvert", "audioconvert" },
  { "audioresample", "audioresample" },
  { "audiotestsrc", "audiotestsrc" },
  { "audiomixer", "audiomixer" },
  { "wavparse", "wavparse" },
  { "opus*", "opus" },
  { "pulse*", "pulseaudio" },
  { "rtpbin", "rtpmanager" },
  { "rtpjitterbuffer", "rtpmanager" },
  { "rtp*", "rtp" }, /* payloaders and depayloaders */
  { "mulaw*", "mulaw" },
  { "alaw*", "alaw" },
  { "av*", "libav" },
};

static const char *
plugin_for(const char *element)
{
  for (guint i = 0; i < G_N_ELEMENTS(plugin_of); i++) {
    const char *e = plugin_of[i].element;
    gsize n = strlen(e);
    if (e[n - 1] == '*' ? strncmp(element, e, n - 1) == 0 : strcmp(element, e) == 0)
      return plugin_of[i].plugin;
  }
  return NULL;
}

static void
load_plugin(const char *name)
{
  g_autofree char *file = g_strdup_printf("libgst%s.so", name);
  g_autofree char *path = g_build_filename(HARK_GST_PLUGINSDIR, file, NULL);
  g_autoptr(GError) error = NULL;
  GstPlugin *plugin = gst_plugin_load_file(path, &error);
  if (plugin != NULL)
    gst_object_unref(plugin);
  else
    g_debug("media: GStreamer plugin %s: %s", path, error->message);
}

void
hark_media_prepare(void)
{
  if (gst_is_initialized())
    return;
  /* Someone who points GStreamer at plugins or a registry of their own gets GStreamer as
   * configured. */
  const char *own[] = { "GST_PLUGIN_SYSTEM_PATH_1_0", "GST_PLUGIN_SYSTEM_PATH",
                        "GST_PLUGIN_PATH_1_0",        "GST_PLUGIN_PATH",
                        "GST_REGISTRY_1_0",           "GST_REGISTRY",
                        "GST_REGISTRY_DISABLE" };
  gboolean configured = !g_file_test(HARK_GST_PLUGINSDIR, G_FILE_TEST_IS_DIR);
  for (guint i = 0; i < G_N_ELEMENTS(own); i++)
    configured = configured || g_getenv(own[i]) != NULL;
  if (configured)
    return;
  /* Set here, before any thread (setenv is not safe beside a getenv in another), and
   * read by gst_init when the first session starts; GStreamer is not started now, so a
   * node that makes no call pays nothing for it. Processes the node starts inherit it. */
  g_setenv("GST_REGISTRY_DISABLE", "yes", TRUE);
  lean = TRUE;
}

gboolean
hark_media_gst_init(GError **error)
{
  if (!gst_init_check(NULL, NULL, error))
    return FALSE;
  g_mutex_lock(&lock);
  if (lean && !loaded) {
    /* rtpbin makes its parts (sessions, jitter buffers, storage) by name itself. */
    load_plugin("coreelements");
    load_plugin("rtpmanager");
    load_plugin("rtp");
    loaded = TRUE;
  }
  g_mutex_unlock(&lock);
  return TRUE;
}

/* The plugin that provides factory, loaded; or, for an element the table does not know,
 * every plugin of the directory (once). */
static void
find_factory(const char *factory)
{
  g_mutex_lock(&lock);
  const char *plugin = plugin_for(factory);
  g_autoptr(GstElementFactory) found = NULL;
  if (plugin != NULL) {
    load_plugin(plugin);
    found = gst_element_factory_find(factory);
  }
  if (found == NULL && !scanned) {
    scanned = TRUE;
    g_debug("media: GStreamer element %s is not in the engine's list: scanning %s", factory,
            HARK_GST_PLUGINSDIR);
    gst_registry_scan_path(gst_registry_get(), HARK_GST_PLUGINSDIR);
  }
  g_mutex_unlock(&lock);
}

GstElement *
hark_media_element_make(const char *factory, GError **error)
{
  if (lean) {
    /* Looked up first: a failed gst_element_factory_make logs a warning. */
    g_autoptr(GstElementFactory) known = gst_element_factory_find(factory);
    if (known == NULL)
      find_factory(factory);
  }
  GstElement *e = gst_element_factory_make(factory, NULL);
  if (e == NULL)
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "GStreamer element '%s' is missing (install the GStreamer plugins in "
                "deps/debian.txt)",
                factory);
  return e;
}

GstClockTime
hark_media_running_time(GstElement *element)
{
  g_autoptr(GstClock) clock = gst_element_get_clock(element);
  if (clock == NULL)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time(clock), base = gst_element_get_base_time(element);
  return now > base ? now - base : 0;
}

GstCaps *
hark_media_mono_caps(guint rate)
{
  return gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "S16LE", "layout",
                             G_TYPE_STRING, "interleaved", "rate", G_TYPE_INT, (gint)rate,
                             "channels", G_TYPE_INT, 1, NULL);
}
