/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* node-private.h: the composition root's view of a node, shared by node.c, node-state.c
 * and builtins.c and never installed.
 *
 * hark_node_new allocates a HarkNodeRoot: the registry's HarkNode first (so a HarkNode*
 * of a node is its HarkNodeRoot*), then the subsystems the root wires together. The
 * layers below never see this struct: each is handed what it needs (the overlay its
 * login client, the link layer its credentials, the registry its hooks). */
#pragma once

#include "hark-private.h"
#include "link-private.h"
#include "login.h"
#include "overlay.h"
#include "directory.h"
#include "hark/hark.h"
#include "messenger.h"
#include "call.h"
#include "conferences.h"

typedef struct {
  HarkNode base;
  HarkLoginClient *login; /* when the configuration has a login section, from start */
  HarkOverlay *overlay; /* with a login section, from start */
  HarkDirectory *directory; /* with an overlay, from start */
  HarkMessenger *messenger; /* with a directory, from start */
  HarkCallLog *call_log; /* with a messenger and a state directory, from start */
  HarkCalls *calls; /* with a messenger, from start */
  HarkConferences *conferences; /* with calls, from start */
} HarkNodeRoot;

static inline HarkNodeRoot *
hark_node_root(HarkNode *node)
{
  return (HarkNodeRoot *)node;
}

/* node-state.c: the `state` command's snapshot of the whole node. */
JsonObject *hark_node_snapshot(HarkNode *node);
/* A JSON array of the strings of a NULL-terminated array (NULL: empty). */
JsonNode *hark_node_strv_json(char **strv);

/* media-settings.c: `media-set`, and the media settings `state` shows. */
JsonObject *hark_node_media_settings(HarkNode *node);
void hark_node_media_settings_register(HarkNode *node);

/* builtins.c */
void hark_builtins_register(HarkNodeRoot *root);
