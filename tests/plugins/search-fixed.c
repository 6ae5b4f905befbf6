/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* search-fixed.c: a super-node-side search strategy for the directory's tests: it
 * answers "no such user" for every name that starts with "ghost" and leaves the rest to
 * the next strategy, so a test can tell that an SN asked its strategies, in the order
 * the lookup named, before the client asked the login server. For a name that starts
 * with "relay" it sends the name to every SN peer (DIR_STRATEGY), whose copy counts
 * what it received: the way strategies talk between SNs. */
#include <hark/hark.h>

typedef struct {
  const HarkSearchServices *services;
  gpointer host;
  guint64 served;
  guint64 sent;
  guint64 received;
  guint64 refused; /* messages of another type */
} Fixed;

static void
attach(gpointer instance, const HarkSearchServices *services, gpointer host)
{
  ((Fixed *)instance)->services = services;
  ((Fixed *)instance)->host = host;
}

static void
relay(Fixed *fixed, const char *key)
{
  g_autoptr(GPtrArray) peers = fixed->services->sn_peers(fixed->host);
  for (guint i = 0; i < peers->len; i++)
    if (fixed->services->send(fixed->host, peers->pdata[i], g_variant_new("(s)", key), NULL))
      fixed->sent++;
}

static void
message(gpointer instance, const char *peer, GVariant *message)
{
  Fixed *fixed = instance;
  if (g_variant_is_of_type(message, G_VARIANT_TYPE("(s)")))
    fixed->received++;
  else
    fixed->refused++;
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
  if (g_str_has_prefix(query->key, "relay") && fixed->services != NULL)
    relay(fixed, query->key);
  g_autoptr(HarkSearchResult) result = hark_search_result_new(
    g_str_has_prefix(query->key, "ghost") ? HARK_SEARCH_UNKNOWN : HARK_SEARCH_UNDECIDED);
  done(g_steal_pointer(&result), NULL, user_data);
}

static JsonObject *
stats(gpointer instance)
{
  JsonObject *o = json_object_new();
  Fixed *fixed = instance;
  json_object_set_int_member(o, "served", (gint64)fixed->served);
  json_object_set_int_member(o, "sent", (gint64)fixed->sent);
  json_object_set_int_member(o, "received", (gint64)fixed->received);
  json_object_set_int_member(o, "refused", (gint64)fixed->refused);
  return o;
}

static const HarkSearchInterface fixed_search = {
  .version = HARK_SEARCH_INTERFACE_VERSION,
  .attach = attach,
  .detach = detach,
  .serve_lookup = serve_lookup,
  .message = message,
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

HARK_PLUGIN_DEFINE(.name = "search-fixed", .version = HARK_VERSION,
                   .description = "test search strategy: ghost* are unknown",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_SEARCH, .init = fixed_init,
                   .fini = fixed_fini);
