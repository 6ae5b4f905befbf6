/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* node.h: a hark node: configuration, identity, plugins and commands on one main loop.
 *
 * For programs that embed hark (the `hark` program is one). A plugin never sees a
 * HarkNode: it gets a HarkContext. */
#pragma once

#include "hark/export.h"

#include "hark/config.h"
#include "hark/context.h" /* HarkNode, HARK_NODE_ERROR */

G_BEGIN_DECLS

/* Takes config. Nothing is touched on disk until hark_node_start(). */
HARK_API HarkNode *hark_node_new(HarkConfig *config);

/* Directories searched for <name>.so, in order: the configuration's plugin_path,
 * $HARK_PLUGIN_PATH (colon-separated), <program dir>/plugins (a build tree),
 * the install directory. */
HARK_API GPtrArray *hark_node_plugin_dirs(HarkNode *node);

/* The file <name>.so would be loaded from, or NULL with an error listing where it looked. */
HARK_API char *hark_node_find_plugin(HarkNode *node, const char *name, GError **error);

/* Load the configured plugins (not optional: fail; optional: warn and go on). */
HARK_API gboolean hark_node_load_plugins(HarkNode *node, GError **error);
/* Load every <name>.so found in the plugin directories (for `hark plugins`). Each one
 * that loads stays loaded; FALSE when any was refused, with one line per refusal. */
HARK_API gboolean hark_node_load_all_plugins(HarkNode *node, GError **error);
/* Load one plugin file by path, with these settings (a{sv}, or NULL). */
HARK_API gboolean hark_node_load_plugin_file(HarkNode *node, const char *path, GVariant *settings,
                                             int rank, GError **error);

/* Create the state directory (0700), load or create the identity, start frontends. */
HARK_API gboolean hark_node_start(HarkNode *node, GError **error);
/* Run the main loop until a stop is requested. */
HARK_API void hark_node_run(HarkNode *node);
HARK_API void hark_node_request_stop(HarkNode *node);

/* The loaded plugins as the `plugins` command reports them. */
HARK_API JsonArray *hark_node_describe_plugins(HarkNode *node);
/* The core's own context (for programs that embed a node). */
HARK_API HarkContext *hark_node_get_context(HarkNode *node);

/* Stops frontends, unloads plugins in reverse order. */
HARK_API void hark_node_free(HarkNode *node);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkNode, hark_node_free)

G_END_DECLS
