/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* flood: the paper's expanding-ring search, kept to compare with gi. Each SN keeps the
 * records of its own ordinary nodes; a lookup asks 8 SNs (its neighbours first, then the
 * neighbours the answers name), then 16, doubling up to a limit of SNs asked. Node-free
 * like the gi engine, and it speaks gi's message format (LOOKUP with the LOCAL flag, ANSWER
 * with records and the answering SN's neighbours). */
#pragma once

#include "gi-engine.h"

G_BEGIN_DECLS

typedef struct {
  guint first_ring; /* SNs asked in the first round (8) */
  guint max_asked; /* SNs asked at most per lookup (512) */
  guint max_neighbours; /* neighbour links kept and named in answers (16) */
  gint64 round_timeout_us; /* a round's answers (1 s) */
  gint64 record_life_us; /* 72 h */
  gint64 max_future_us; /* 5 min */
} HarkFloodParams;

void hark_flood_params_init(HarkFloodParams *params);

typedef struct _HarkFloodEngine HarkFloodEngine;

HarkFloodEngine *hark_flood_engine_new(const HarkGiId *self, const HarkFloodParams *params,
                                       const HarkGiCallbacks *callbacks, gpointer user);
void hark_flood_engine_free(HarkFloodEngine *engine);
gboolean hark_flood_engine_peer_up(HarkFloodEngine *engine, const HarkGiId *peer);
void hark_flood_engine_peer_down(HarkFloodEngine *engine, const HarkGiId *peer, gint64 now_us);
void hark_flood_engine_receive(HarkFloodEngine *engine, const HarkGiId *from, GBytes *message,
                               gint64 now_us);
/* done(ok) is called before this returns: the record is kept here, at the client's SN. */
guint64 hark_flood_engine_publish(HarkFloodEngine *engine, const HarkGiRecord *record,
                                  gint64 now_us);
guint64 hark_flood_engine_lookup(HarkFloodEngine *engine, const HarkGiId *key, gint64 now_us);
void hark_flood_engine_tick(HarkFloodEngine *engine, gint64 now_us);
gint64 hark_flood_engine_next_deadline(HarkFloodEngine *engine);
guint hark_flood_engine_neighbour_count(HarkFloodEngine *engine);
gboolean hark_flood_engine_has_neighbour(HarkFloodEngine *engine, const HarkGiId *peer);
guint hark_flood_engine_record_count(HarkFloodEngine *engine);
const HarkGiStats *hark_flood_engine_stats(HarkFloodEngine *engine);

G_END_DECLS
