/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* flood-plugin.c: the `flood` search strategy, the paper's expanding-ring search
 * (flood-engine.h) run on a super node's verified SN links (sn-search.c carries it), kept
 * to compare with gi on real links. Each SN keeps its own clients' records. */
#include "flood-engine.h"
#include "sn-search.h"

static gpointer
flood_create(const HarkGiId *self, const HarkGiCallbacks *callbacks, gpointer user)
{
  HarkFloodParams params;
  hark_flood_params_init(&params);
  return hark_flood_engine_new(self, &params, callbacks, user);
}

static void
flood_destroy(gpointer engine)
{
  hark_flood_engine_free(engine);
}

static void
flood_peer_up(gpointer engine, const HarkGiId *peer, gint64 now_us)
{
  (void)now_us;
  hark_flood_engine_peer_up(engine, peer);
}

/* The engine's functions as the glue calls them (an opaque engine). */
static void
flood_peer_down(gpointer engine, const HarkGiId *peer, gint64 now_us)
{
  hark_flood_engine_peer_down(engine, peer, now_us);
}

static void
flood_receive(gpointer engine, const HarkGiId *from, GBytes *message, gint64 now_us)
{
  hark_flood_engine_receive(engine, from, message, now_us);
}

static guint64
flood_lookup(gpointer engine, const HarkGiId *key, gint64 now_us)
{
  return hark_flood_engine_lookup(engine, key, now_us);
}

static guint64
flood_publish(gpointer engine, const HarkGiRecord *record, gint64 now_us)
{
  return hark_flood_engine_publish(engine, record, now_us);
}

static void
flood_tick(gpointer engine, gint64 now_us)
{
  hark_flood_engine_tick(engine, now_us);
}

static gint64
flood_next_deadline(gpointer engine)
{
  return hark_flood_engine_next_deadline(engine);
}

static const HarkGiStats *
flood_stats(gpointer engine)
{
  return hark_flood_engine_stats(engine);
}

static guint
flood_contacts(gpointer engine)
{
  return hark_flood_engine_neighbour_count(engine);
}

static guint
flood_records(gpointer engine)
{
  return hark_flood_engine_record_count(engine);
}

static const HarkSnEngineOps flood_ops = {
  .create = flood_create,
  .destroy = flood_destroy,
  .peer_up = flood_peer_up,
  .peer_down = flood_peer_down,
  .receive = flood_receive,
  .lookup = flood_lookup,
  .publish = flood_publish,
  .tick = flood_tick,
  .next_deadline = flood_next_deadline,
  .stats = flood_stats,
  .contacts = flood_contacts,
  .records = flood_records,
};

static gboolean
flood_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { NULL };
  hark_settings_warn_unknown(settings, "flood", known);
  return hark_sn_search_register(ctx, "flood", &flood_ops, error);
}

static void
flood_fini(HarkContext *ctx)
{
  hark_sn_search_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "flood", .version = HARK_VERSION,
                   .description = "search strategy: expanding rings of super nodes asked over "
                                  "their links (to compare with gi)",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_SEARCH, .init = flood_init,
                   .fini = flood_fini);
