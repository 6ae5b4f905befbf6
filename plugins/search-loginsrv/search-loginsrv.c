/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* search-loginsrv.c: the `loginsrv` search strategy. The overlay knows who is online;
 * only the login server knows who exists. So this strategy, tried after the overlay's,
 * turns "no online device" into a definite answer: the user exists (known, not online)
 * or there is no such user; and for a prefix it lists the registered names. It asks
 * through the node's services (GET /v1/users/NAME, /v1/users?prefix=), which go the way
 * the login client goes (directly or through the SN's tunnel). */
#include <hark/hark.h>

typedef struct {
  const HarkSearchServices *services;
  gpointer host;
  guint64 asked;
  guint64 failed;
} LoginSearch;

typedef struct {
  LoginSearch *search;
  HarkSearchDone done;
  gpointer user_data;
} Ask;

static void
attach(gpointer instance, const HarkSearchServices *services, gpointer host)
{
  LoginSearch *search = instance;
  search->services = services;
  search->host = host;
}

static void
detach(gpointer instance)
{
  LoginSearch *search = instance;
  search->services = NULL;
  search->host = NULL;
}

static void
answered(HarkSearchResult *result, const GError *error, gpointer data)
{
  Ask *ask = data;
  if (result == NULL)
    ask->search->failed++;
  ask->done(result, error, ask->user_data);
  g_free(ask);
}

static void
lookup(gpointer instance, const HarkPresenceQuery *query, GCancellable *cancellable,
       HarkSearchDone done, gpointer user_data)
{
  LoginSearch *search = instance;
  if (search->services == NULL) {
    g_autoptr(GError) error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                                                  "the loginsrv strategy is not attached");
    done(NULL, error, user_data);
    return;
  }
  search->asked++;
  Ask *ask = g_new0(Ask, 1);
  ask->search = search;
  ask->done = done;
  ask->user_data = user_data;
  search->services->login_lookup(search->host, query, cancellable, answered, ask);
}

static JsonObject *
stats(gpointer instance)
{
  LoginSearch *search = instance;
  JsonObject *o = json_object_new();
  json_object_set_int_member(o, "asked", (gint64)search->asked);
  json_object_set_int_member(o, "failed", (gint64)search->failed);
  return o;
}

static const HarkSearchInterface loginsrv_search = {
  .version = HARK_SEARCH_INTERFACE_VERSION,
  .attach = attach,
  .detach = detach,
  .lookup = lookup,
  .stats = stats,
};

static gboolean
search_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { NULL };
  hark_settings_warn_unknown(settings, "search-loginsrv", known);
  LoginSearch *search = g_new0(LoginSearch, 1);
  if (!hark_context_register(ctx, HARK_KIND_SEARCH, "loginsrv", HARK_RANK_PRIMARY, &loginsrv_search,
                             search, error)) {
    g_free(search);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, search);
  return TRUE;
}

/* The core detaches every strategy and answers its lookups before plugins unload. */
static void
search_fini(HarkContext *ctx)
{
  g_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "search-loginsrv", .version = HARK_VERSION,
                   .description = "search strategy: the login server tells whether a name "
                                  "exists, and which names start with a prefix",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_SEARCH, .init = search_init,
                   .fini = search_fini);
