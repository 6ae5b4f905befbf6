/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* plugin.h: what a hark plugin exports (one descriptor) and what it may register.
 *
 * A plugin is a shared object with exactly one exported symbol,
 * HARK_PLUGIN_DESCRIPTOR_SYMBOL, a HarkPluginDescriptor made with HARK_PLUGIN_DEFINE.
 * The core checks the ABI numbers before it reads anything else, then calls init()
 * with the plugin's own HarkContext; everything the plugin needs from the core is
 * reached through that context. */
#pragma once

#include "hark/export.h"

#include <glib.h>
#include <gmodule.h> /* G_MODULE_EXPORT, used by HARK_PLUGIN_DEFINE */

G_BEGIN_DECLS

/* Bump MAJOR when a change breaks existing plugins (the core then refuses them);
 * bump MINOR when something is added at the end of a table (older plugins keep
 * working; a plugin built with a newer MINOR than the core is refused, because
 * it may call what this core lacks). */
#define HARK_PLUGIN_ABI_MAJOR 1
#define HARK_PLUGIN_ABI_MINOR 0

#define HARK_PLUGIN_DESCRIPTOR_SYMBOL "hark_plugin_descriptor"

typedef enum {
  HARK_KIND_TRANSPORT = 1u << 0,
  HARK_KIND_NAT_PROBE = 1u << 1,
  HARK_KIND_CODEC = 1u << 2,
  HARK_KIND_SEARCH = 1u << 3,
  HARK_KIND_STORE = 1u << 4,
  HARK_KIND_FRONTEND = 1u << 5,
} HarkPluginKind;

#define HARK_KIND_ALL ((1u << 6) - 1)

/* Ranks order competing registrations of one kind, highest first (as in GStreamer). */
enum {
  HARK_RANK_NONE = 0,
  HARK_RANK_MARGINAL = 64,
  HARK_RANK_SECONDARY = 128,
  HARK_RANK_PRIMARY = 256,
};

typedef struct _HarkContext HarkContext;

typedef struct {
  /* These two stay first in every ABI version: the core reads them before anything else. */
  guint32 abi_major;
  guint32 abi_minor;
  const char *name; /* unique, [a-z0-9-]+, also the file name: <name>.so */
  const char *version; /* the plugin's own version */
  const char *description; /* one line */
  const char *license; /* SPDX identifier */
  guint32 kinds; /* HarkPluginKind bits this plugin may register */
  /* settings: the plugin's settings group from the configuration, an a{sv}
   * dictionary (never NULL; empty when there is none). Return FALSE and set
   * error to refuse loading. */
  gboolean (*init)(HarkContext *ctx, GVariant *settings, GError **error);
  /* Called once, in reverse load order, before the object is unloaded.
   * Registrations are removed by the core after fini returns. May be NULL. */
  void (*fini)(HarkContext *ctx);
} HarkPluginDescriptor;

#define HARK_PLUGIN_DEFINE(...)                                                         \
  G_MODULE_EXPORT const HarkPluginDescriptor hark_plugin_descriptor = {                 \
    .abi_major = HARK_PLUGIN_ABI_MAJOR, .abi_minor = HARK_PLUGIN_ABI_MINOR, __VA_ARGS__ \
  }

/* "transport", "nat-probe", "codec", "search", "store", "frontend"; NULL for
 * anything that is not exactly one kind. */
HARK_API const char *hark_plugin_kind_to_string(HarkPluginKind kind);
HARK_API gboolean hark_plugin_kind_from_string(const char *text, HarkPluginKind *kind);

G_END_DECLS
