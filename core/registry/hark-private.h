/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hark-private.h: the registry layer's structures behind HarkNode and HarkContext,
 * shared by the files of libhark and never installed.
 *
 * This is the lowest place a HarkNode is known, so it holds only what the registry
 * (context, loader, commands) works on. The layers above keep their own state: the link
 * layer behind the opaque `links` (link-private.h), the login client and the overlay in
 * the composition root's HarkNodeRoot (node-private.h). What the registry must ask of
 * the node as a whole (its snapshot, a stop) goes through the hooks the root sets. */
#pragma once

#include "hark/command.h"
#include "hark/config.h"
#include "hark/context.h"
#include "hark/frontend.h"
#include "hark/identity.h"
#include "hark/plugin.h"
#include "hark/version.h"

#include <gmodule.h>

typedef struct _HarkNodeLinks HarkNodeLinks; /* link-private.h */

typedef struct {
  HarkPluginKind kind;
  guint32 newest_version;
} HarkInterfaceVersion;

/* What the registry cannot answer alone, set by the composition root (node.c) when it
 * makes the node: hark_context_snapshot and hark_context_request_stop call these, and
 * registrations are checked against the interface versions of the kinds it knows. */
typedef struct {
  JsonObject *(*snapshot)(HarkNode *node);
  void (*request_stop)(HarkNode *node);
  const HarkInterfaceVersion *interface_versions;
  gsize n_interface_versions;
} HarkNodeHooks;

typedef struct {
  char *path;
  GModule *module;
  const HarkPluginDescriptor *descriptor;
  HarkContext *ctx;
} HarkLoadedPlugin;

typedef struct {
  HarkRegistration pub;
  char *name;
  HarkContext *owner;
  guint seq; /* load order, to keep equal ranks stable */
} HarkRegistrationEntry;

typedef struct {
  const HarkCommand *command;
  gpointer user_data;
  HarkContext *owner;
} HarkCommandEntry;

struct _HarkContext {
  HarkNode *node;
  char *plugin_name; /* "core" for the core's own context */
  guint32 declared_kinds; /* what the descriptor allows it to register */
  int rank_override; /* -1: none */
  gpointer plugin_data;
};

struct _HarkNode {
  HarkConfig *config;
  GMainContext *main_context;
  gboolean owns_context; /* this node's thread acquired main_context (node.c) */
  GMainLoop *loop;
  HarkIdentity *identity;
  HarkContext *core_ctx;
  GPtrArray *plugins; /* HarkLoadedPlugin*, load order */
  GPtrArray *registrations; /* HarkRegistrationEntry* */
  GHashTable *commands; /* name -> HarkCommandEntry* */
  GPtrArray *frontends; /* HarkRegistrationEntry* of started frontends, start order */
  GHashTable *pending_calls; /* HarkCommandCall* not yet answered */
  guint registration_seq;
  gint64 started_at; /* wall clock, µs; 0 before start */
  HarkClock *clock; /* what the login server and client read (hark/clock.h) */
  guint stop_source;
  gboolean stopping;
  HarkNodeHooks hooks;
  HarkNodeLinks *links; /* the link layer's, made on first use (link-private.h) */
};

/* context.c */
HarkContext *hark_context_new(HarkNode *node, const char *plugin_name, guint32 kinds, int rank);
void hark_context_free(HarkContext *ctx);
/* Drop every registration and command made through ctx. */
void hark_context_forget(HarkContext *ctx);
guint hark_context_count_registrations(HarkContext *ctx, HarkPluginKind kind);

/* command.c */
void hark_commands_init(HarkNode *node);
void hark_commands_cancel_pending(HarkNode *node);
void hark_commands_remove_owned(HarkNode *node, HarkContext *owner);
/* The checks every call's arguments meet before the command runs (only its parameters,
 * each of its type, the required ones present), whichever frontend it came from. */
gboolean hark_command_check_args(const HarkCommand *command, JsonObject *args, GError **error);

/* loader.c: what hark/node.h's plugin functions do (hark_node_load_plugins and the
 * others are the node's public names for these; see there). */
GPtrArray *hark_loader_plugin_dirs(HarkNode *node);
char *hark_loader_find_plugin(HarkNode *node, const char *name, GError **error);
gboolean hark_loader_load_plugins(HarkNode *node, GError **error);
gboolean hark_loader_load_all_plugins(HarkNode *node, GError **error);
gboolean hark_loader_load_plugin_file(HarkNode *node, const char *path, GVariant *settings,
                                      int rank, GError **error);
JsonArray *hark_loader_describe_plugins(HarkNode *node);
void hark_loader_unload_all(HarkNode *node);
