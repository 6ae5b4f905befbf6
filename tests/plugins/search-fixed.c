/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* search-fixed.c: a super-node-side search strategy for the directory's tests: it
 * answers "no such user" for every name that starts with "ghost" and leaves the rest to
 * the next strategy, so a test can tell that an SN asked its strategies, in the order
 * the lookup named, before the client asked the login server. */
#include <hark/hark.h>

typedef struct {
  const HarkSearchServices *services;
  guint64 served;
} Fixed;

static void
attach(gpointer instance, const HarkSearchServices *services, gpointer host)
{
  ((Fixed *)instance)->services = services;
}

static void
detach(gpointer instance)
{
  ((Fixed *)instance)->services = NULL;
}

static void
serve_lookup(gpointer instance, const HarkPresenceQuery *query, GCancellable *cancellable,
             HarkSearchDone done, gpointer user_data)
{
  Fixed *fixed = instance;
  fixed->served++;
  g_autoptr(HarkSearchResult) result = hark_search_result_new(
    g_str_has_prefix(query->key, "ghost") ? HARK_SEARCH_UNKNOWN : HARK_SEARCH_UNDECIDED);
  done(g_steal_pointer(&result), NULL, user_data);
}

static JsonObject *
stats(gpointer instance)
{
  JsonObject *o = json_object_new();
  json_object_set_int_member(o, "served", (gint64)((Fixed *)instance)->served);
  return o;
}

static const HarkSearchInterface fixed_search = {
  .version = HARK_SEARCH_INTERFACE_VERSION,
  .attach = attach,
  .detach = detach,
  .serve_lookup = serve_lookup,
  .stats = stats,
};

static gboolean
fixed_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  Fixed *fixed = g_new0(Fixed, 1);
  if (!hark_context_register(ctx, HARK_KIND_SEARCH, "fixed", HARK_RANK_PRIMARY, &fixed_search,
                             fixed, error)) {
    g_free(fixed);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, fixed);
  return TRUE;
}

static void
fixed_fini(HarkContext *ctx)
{
  g_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "search-fixed",
                   .version = HARK_VERSION,
                   .description = "test search strategy: ghost* are unknown",
                   .license = "LGPL-2.1-or-later",
                   .kinds = HARK_KIND_SEARCH,
                   .init = fixed_init,
                   .fini = fixed_fini);
