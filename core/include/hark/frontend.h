/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* frontend.h: the interface a frontend plugin (cli, ctl, web, your own) registers.
 *
 * Frontends are started after every plugin is loaded, in rank order, and stopped in
 * reverse before plugins are unloaded. Every event the node emits is offered to every
 * started frontend. Commands come from command.h; a frontend adds no commands of its
 * own to the node, so a command exists in every frontend or in none. */
#pragma once

#include "hark/context.h"

G_BEGIN_DECLS

#define HARK_FRONTEND_INTERFACE_VERSION 1

typedef struct {
  guint32 version; /* HARK_FRONTEND_INTERFACE_VERSION; new members go at the end */
  /* Attach sources to the node's main context. Return FALSE to make `hark run` fail. */
  gboolean (*start)(gpointer instance, GError **error);
  /* Detach everything start attached. May be called without a successful start. */
  void (*stop)(gpointer instance);
  /* name is the event's type; data is the whole event object including "event". */
  void (*event)(gpointer instance, const char *name, JsonObject *data);
} HarkFrontendInterface;

G_END_DECLS
