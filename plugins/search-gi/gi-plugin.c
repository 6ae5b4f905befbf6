/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gi-plugin.c: the `gi` search strategy, the directory's Global Index (gi-engine.h) run
 * on a super node's verified SN links (sn-search.c carries it). Contacts an answer only
 * names are not kept (learn_named off): only SNs with a verified link are contacts. */
#include "sn-search.h"

static gpointer
gi_create(const HarkGiId *self, const HarkGiCallbacks *callbacks, gpointer user)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  params.learn_named = FALSE;
  return hark_gi_engine_new(self, NULL, &params, callbacks, user);
}

static void
gi_destroy(gpointer engine)
{
  hark_gi_engine_free(engine);
}

static void
gi_peer_up(gpointer engine, const HarkGiId *peer, gint64 now_us)
{
  hark_gi_engine_peer_up(engine, peer, NULL, now_us);
}

/* The engine's functions as the glue calls them (an opaque engine). */
static void
gi_peer_down(gpointer engine, const HarkGiId *peer, gint64 now_us)
{
  hark_gi_engine_peer_down(engine, peer, now_us);
}

static void
gi_receive(gpointer engine, const HarkGiId *from, GBytes *message, gint64 now_us)
{
  hark_gi_engine_receive(engine, from, message, now_us);
}

static guint64
gi_lookup(gpointer engine, const HarkGiId *key, gint64 now_us)
{
  return hark_gi_engine_lookup(engine, key, now_us);
}

static guint64
gi_publish(gpointer engine, const HarkGiRecord *record, gint64 now_us)
{
  return hark_gi_engine_publish(engine, record, now_us);
}

static void
gi_tick(gpointer engine, gint64 now_us)
{
  hark_gi_engine_tick(engine, now_us);
}

static gint64
gi_next_deadline(gpointer engine)
{
  return hark_gi_engine_next_deadline(engine);
}

static const HarkGiStats *
gi_stats(gpointer engine)
{
  return hark_gi_engine_stats(engine);
}

static guint
gi_contacts(gpointer engine)
{
  return hark_gi_engine_contact_count(engine);
}

static guint
gi_records(gpointer engine)
{
  return hark_gi_engine_record_count(engine);
}

static void
gi_forget(gpointer engine, const HarkGiId *key, const char *device)
{
  hark_gi_engine_forget(engine, key, device);
}

static const HarkSnEngineOps gi_ops = {
  .create = gi_create,
  .destroy = gi_destroy,
  .peer_up = gi_peer_up,
  .peer_down = gi_peer_down,
  .receive = gi_receive,
  .lookup = gi_lookup,
  .publish = gi_publish,
  .tick = gi_tick,
  .next_deadline = gi_next_deadline,
  .stats = gi_stats,
  .contacts = gi_contacts,
  .records = gi_records,
  .forget = gi_forget,
};

static gboolean
gi_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { NULL };
  hark_settings_warn_unknown(settings, "gi", known);
  return hark_sn_search_register(ctx, "gi", &gi_ops, error);
}

static void
gi_fini(HarkContext *ctx)
{
  hark_sn_search_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "gi", .version = HARK_VERSION,
                   .description = "search strategy: the Global Index, a Kademlia-style table "
                                  "of the super nodes, routed over their links",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_SEARCH, .init = gi_init,
                   .fini = gi_fini);
