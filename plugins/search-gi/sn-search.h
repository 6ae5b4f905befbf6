/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sn-search.h: what the `gi` and `flood` plugins share: a node-free engine run on a
 * super node's verified SN links (docs/architecture.md, "Directory: gi on real links").
 * The engine's messages travel in DIR_STRATEGY envelopes, its timer is a GLib timeout on
 * the node's main context, its ids are device fingerprints the links proved, and every
 * record it takes is checked with the node's record verification. */
#pragma once

#include <hark/hark.h>

#include "gi-engine.h"

G_BEGIN_DECLS

/* One engine kind (gi or flood) behind the same calls. */
typedef struct {
  gpointer (*create)(const HarkGiId *self, const HarkGiCallbacks *callbacks, gpointer user);
  void (*destroy)(gpointer engine);
  void (*peer_up)(gpointer engine, const HarkGiId *peer, gint64 now_us);
  void (*peer_down)(gpointer engine, const HarkGiId *peer, gint64 now_us);
  void (*receive)(gpointer engine, const HarkGiId *from, GBytes *message, gint64 now_us);
  guint64 (*lookup)(gpointer engine, const HarkGiId *key, gint64 now_us);
  guint64 (*publish)(gpointer engine, const HarkGiRecord *record, gint64 now_us);
  void (*tick)(gpointer engine, gint64 now_us);
  gint64 (*next_deadline)(gpointer engine);
  const HarkGiStats *(*stats)(gpointer engine);
  guint (*contacts)(gpointer engine);
  guint (*records)(gpointer engine);
  /* A client's device left this SN: its record is not stored again each period. May be
   * NULL (an engine that keeps no such duty). */
  void (*forget)(gpointer engine, const HarkGiId *key, const char *device);
} HarkSnEngineOps;

/* Registers the strategy name (kind search) run by ops in ctx; the plugin's data is
 * the strategy, freed by hark_sn_search_free in the plugin's fini. */
gboolean hark_sn_search_register(HarkContext *ctx, const char *name, const HarkSnEngineOps *ops,
                                 GError **error);
void hark_sn_search_free(gpointer search);

G_END_DECLS
