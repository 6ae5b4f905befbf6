/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* context.h: the services the core hands to a plugin (and to its own subsystems).
 *
 * Each plugin gets its own HarkContext at init; it names the plugin, so everything
 * the plugin registers is attributed to it and removed when it unloads. There are
 * no globals: two nodes in one process are two sets of contexts. */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "hark/clock.h"
#include "hark/plugin.h"

G_BEGIN_DECLS

#define HARK_CONTEXT_ERROR (hark_context_error_quark())
HARK_API GQuark hark_context_error_quark(void);

/* A node (hark/node.h). It is declared here, with its error domain, because the
 * registry (contexts, the plugin loader) is the lowest layer that works on one. */
typedef struct _HarkNode HarkNode;

#define HARK_NODE_ERROR (hark_node_error_quark())
HARK_API GQuark hark_node_error_quark(void);

typedef enum {
  HARK_NODE_ERROR_STATE_DIR,
  HARK_NODE_ERROR_PLUGIN, /* a plugin could not be loaded; message names file and reason */
  HARK_NODE_ERROR_FRONTEND, /* a frontend could not start */
} HarkNodeError;

typedef enum {
  HARK_CONTEXT_ERROR_KIND_NOT_DECLARED, /* registering a kind the descriptor did not list */
  HARK_CONTEXT_ERROR_INTERFACE_VERSION, /* interface table version unknown to this core */
  HARK_CONTEXT_ERROR_DUPLICATE, /* a name already registered for that kind */
  HARK_CONTEXT_ERROR_INVALID, /* bad argument */
} HarkContextError;

/* A registration: one typed interface table of one kind, offered under a name. */
typedef struct {
  HarkPluginKind kind;
  const char *name; /* unique within the kind */
  const char *plugin; /* the plugin that registered it */
  guint rank; /* after any configured override */
  gconstpointer iface; /* the table; its first member is a guint32 version */
  gpointer instance; /* passed back to every function of the table */
} HarkRegistration;

HARK_API const char *hark_context_plugin_name(HarkContext *ctx);
/* The plugin's own state, kept by the core so a plugin needs no static variables (the
 * same .so may serve two nodes in one process). Set it in init, take it back in fini. */
HARK_API void hark_context_set_plugin_data(HarkContext *ctx, gpointer data);
HARK_API gpointer hark_context_get_plugin_data(HarkContext *ctx);

/* The node's display name, from the configuration. */
HARK_API const char *hark_context_node_name(HarkContext *ctx);
/* The main context every source of this node attaches to. */
HARK_API GMainContext *hark_context_main_context(HarkContext *ctx);
/* The node's clock: the real time, or a test clock (node.test_clock) that moves only
 * when a test advances it. What a test must be able to move (lock-outs, expiry,
 * renewal) reads this rather than g_get_real_time(). Owned by the node. */
HARK_API HarkClock *hark_context_get_clock(HarkContext *ctx);
/* The node's private state directory (mode 0700), created at start. */
HARK_API const char *hark_context_state_dir(HarkContext *ctx);

/* Register an interface table of one kind. iface must start with a guint32 version
 * that the core knows for that kind (see the kind's header), and must stay valid
 * until fini. The configured rank for this plugin, when there is one, replaces rank. */
HARK_API gboolean hark_context_register(HarkContext *ctx, HarkPluginKind kind, const char *name,
                                        guint rank, gconstpointer iface, gpointer instance,
                                        GError **error);
/* All registrations of a kind, highest rank first (ties: load order).
 * Free the array with g_ptr_array_unref; elements are owned by the core. */
HARK_API GPtrArray *hark_context_lookup(HarkContext *ctx, HarkPluginKind kind);

/* Broadcast an event to every frontend: {"event": name, ...data}. Takes data (may be NULL). */
HARK_API void hark_context_emit(HarkContext *ctx, const char *event, JsonObject *data);

/* A snapshot of the whole node, the answer of the `state` command. */
HARK_API JsonObject *hark_context_snapshot(HarkContext *ctx);

/* Ask the node to stop: frontends get a "node-stopping" event, then the main loop ends. */
HARK_API void hark_context_request_stop(HarkContext *ctx);

G_END_DECLS
