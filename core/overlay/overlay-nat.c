/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-nat.c: the node's view of its NAT. It runs the highest-ranked nat-probe
 * registration (hark/natprobe.h) against super nodes of the host cache, keeps the result
 * with the time and the SN it came from in <state dir>/nat.json (0600, loaded at start),
 * probes again every network.nat_probe_interval and when the local addresses change
 * (GNetworkMonitor), and emits `nat-probed`. The overlay reads the verdict: only a node
 * with no NAT (or a configured public address) may serve as an SN, and a join skips UDP
 * when UDP is blocked. The `nat` command shows it; `nat probe` runs it now. */
#include "overlay-private.h"
#include "overlay-files.h"

#include <string.h>

#define NAT_FILE "nat.json"
#define NAT_SERVERS 8 /* host-cache entries handed to the probe */
#define CHANGE_SETTLE_MS 2000 /* addresses come and go in bursts */
#define FIRST_PROBE_MS 1000 /* at start: let the host cache and the SN links settle */

struct _OverlayNat {
  HarkOverlay *overlay;
  char *path;
  HarkNatResult *result; /* the last result, or NULL */
  gint64 probed_at; /* unix s of the result */
  char *plugin; /* the registration that made it */
  GCancellable *running; /* a probe in flight, or NULL */
  GPtrArray *waiting; /* HarkCommandCall*: `nat probe` calls waiting for it */
  guint timer;
  guint settle; /* the first probe, or one after an address change */
  GNetworkMonitor *monitor;
  gulong monitor_handler;
};

/* ---- nat.json --------------------------------------------------------------------- */

static JsonObject *
result_to_json(const HarkNatResult *r, gint64 probed_at, const char *plugin)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "verdict", hark_nat_verdict_to_string(r->verdict));
  json_object_set_string_member(o, "mapping", hark_nat_behaviour_to_string(r->mapping));
  json_object_set_string_member(o, "filtering", hark_nat_behaviour_to_string(r->filtering));
  json_object_set_string_member(o, "mapped", r->mapped);
  json_object_set_string_member(o, "server", r->server);
  json_object_set_string_member(o, "other", r->other);
  json_object_set_int_member(o, "duration_ms", r->duration_ms);
  json_object_set_int_member(o, "probed_at", probed_at);
  json_object_set_string_member(o, "plugin", plugin);
  return o;
}

static void
save(OverlayNat *nat)
{
  g_autoptr(JsonNode) root = json_node_init_object(
    json_node_alloc(), result_to_json(nat->result, nat->probed_at, nat->plugin));
  json_object_set_int_member(json_node_get_object(root), "version", 1);
  g_autofree char *text = json_to_string(root, TRUE);
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents_full(nat->path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
    g_warning("cannot save the NAT probe's result: %s", error->message);
}

/* nat.json is read as untrusted input (overlay-files.c): any damage means no result
 * (probe again). */
static gboolean
load(OverlayNat *nat, GError **error)
{
  g_autofree char *text = NULL;
  gsize size;
  if (!g_file_get_contents(nat->path, &text, &size, error))
    return FALSE;
  nat->result = hark_overlay_nat_parse(text, size, nat->path, &nat->probed_at, &nat->plugin, error);
  return nat->result != NULL;
}

/* ---- probing ---------------------------------------------------------------------- */

static const HarkRegistration *
probe_plugin(HarkOverlay *overlay)
{
  g_autoptr(GPtrArray) all = hark_context_lookup(overlay->ctx, HARK_KIND_NAT_PROBE);
  return all->len > 0 ? all->pdata[0] : NULL;
}

/* "host:port" of the best SNs that serve UDP, not this node itself. */
static GStrv
servers(HarkOverlay *overlay)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
  g_autoptr(GPtrArray) best =
    hark_host_cache_best(overlay->cache, HARK_HOST_CACHE_DEFAULT_CAPACITY);
  guint n = 0;
  for (guint i = 0; i < best->len && n < NAT_SERVERS; i++) {
    const HarkHostCacheEntry *entry = best->pdata[i];
    gboolean self = overlay->is_sn && entry->port == overlay->node->config->port &&
                    g_strcmp0(entry->host, overlay->public_host) == 0;
    if (self || (entry->transports != NULL &&
                 !g_strv_contains((const char *const *)entry->transports, "udp")))
      continue;
    g_autofree char *text = g_strdup_printf("%s:%u", entry->host, entry->port);
    g_strv_builder_add(builder, text);
    n++;
  }
  return g_strv_builder_end(builder);
}

static void
answer_waiting(OverlayNat *nat, const GError *error)
{
  g_autoptr(GPtrArray) calls = g_steal_pointer(&nat->waiting);
  nat->waiting = g_ptr_array_new();
  for (guint i = 0; i < calls->len; i++) {
    if (error != NULL)
      hark_command_call_return_error(calls->pdata[i], g_error_copy(error));
    else
      hark_command_call_return_object(calls->pdata[i], hark_overlay_nat_describe(nat->overlay));
  }
}

static void
on_probed(HarkNatResult *result, const GError *error, gpointer data)
{
  OverlayNat *nat = data;
  g_clear_object(&nat->running);
  if (result == NULL) {
    g_message("NAT probe failed: %s", error->message);
    answer_waiting(nat, error);
    return;
  }
  hark_nat_result_free(nat->result);
  nat->result = result;
  nat->probed_at = g_get_real_time() / G_USEC_PER_SEC;
  save(nat);
  g_message(
    "NAT probe: %s, mapping %s, filtering %s, mapped %s (server %s, other %s) in %" G_GINT64_FORMAT
    " ms",
    hark_nat_verdict_to_string(result->verdict), hark_nat_behaviour_to_string(result->mapping),
    hark_nat_behaviour_to_string(result->filtering),
    result->mapped != NULL ? result->mapped : "none",
    result->server != NULL ? result->server : "none",
    result->other != NULL ? result->other : "none", result->duration_ms);
  hark_overlay_emit(nat->overlay, "nat-probed",
                    result_to_json(result, nat->probed_at, nat->plugin));
  answer_waiting(nat, NULL);
  hark_overlay_check_eligibility(nat->overlay);
}

/* Starts a probe unless one runs; FALSE with an error when none can run. */
static gboolean
probe_now(OverlayNat *nat, GError **error)
{
  if (nat->running != NULL)
    return TRUE;
  HarkOverlay *overlay = nat->overlay;
  const HarkRegistration *reg = probe_plugin(overlay);
  if (reg == NULL) {
    g_set_error_literal(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                        "no nat-probe plugin is loaded (load the 'stun' plugin)");
    return FALSE;
  }
  g_auto(GStrv) list = servers(overlay);
  if (list[0] == NULL) {
    g_set_error_literal(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                        "no super node with UDP to probe against: the host cache is empty");
    return FALSE;
  }
  const HarkNatProbeInterface *iface = reg->iface;
  g_free(nat->plugin);
  nat->plugin = g_strdup(reg->name);
  nat->running = g_cancellable_new();
  g_debug("NAT probe with '%s' against %u super nodes", reg->name, g_strv_length(list));
  iface->probe(reg->instance, (const char *const *)list, nat->running, on_probed, nat);
  return TRUE;
}

static gboolean
on_timer(gpointer data)
{
  OverlayNat *nat = data;
  g_autoptr(GError) error = NULL;
  if (!probe_now(nat, &error))
    g_debug("no NAT probe: %s", error->message);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_settled(gpointer data)
{
  OverlayNat *nat = data;
  nat->settle = 0;
  g_message("the local addresses changed: probing the NAT again");
  on_timer(nat);
  return G_SOURCE_REMOVE;
}

static void
on_network_changed(GNetworkMonitor *monitor, gboolean available, gpointer data)
{
  OverlayNat *nat = data;
  hark_overlay_clear_source(nat->overlay, &nat->settle);
  nat->settle = hark_overlay_add_timer(nat->overlay, CHANGE_SETTLE_MS, on_settled, nat);
}

static gboolean
on_first(gpointer data)
{
  OverlayNat *nat = data;
  nat->settle = 0;
  on_timer(nat);
  return G_SOURCE_REMOVE;
}

/* ---- the overlay's side ----------------------------------------------------------- */

void
hark_overlay_nat_start(HarkOverlay *overlay)
{
  HarkConfig *config = overlay->node->config;
  OverlayNat *nat = g_new0(OverlayNat, 1);
  nat->overlay = overlay;
  nat->path = g_build_filename(config->state_dir, NAT_FILE, NULL);
  nat->waiting = g_ptr_array_new();
  overlay->nat = nat;
  g_autoptr(GError) error = NULL;
  if (!load(nat, &error) && !g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    g_warning("NAT result not used: %s", error->message);
  if (probe_plugin(overlay) == NULL)
    return; /* nothing to run; a stored result still counts */
  gint64 age = g_get_real_time() / G_USEC_PER_SEC - nat->probed_at;
  if (nat->result == NULL || age < 0 || age >= config->nat_probe_interval)
    nat->settle = hark_overlay_add_timer(overlay, FIRST_PROBE_MS, on_first, nat);
  nat->timer =
    hark_overlay_add_timer(overlay, (guint)config->nat_probe_interval * 1000, on_timer, nat);
  nat->monitor = g_object_ref(g_network_monitor_get_default());
  nat->monitor_handler =
    g_signal_connect(nat->monitor, "network-changed", G_CALLBACK(on_network_changed), nat);
}

void
hark_overlay_nat_free(HarkOverlay *overlay)
{
  OverlayNat *nat = g_steal_pointer(&overlay->nat);
  if (nat == NULL)
    return;
  if (nat->running != NULL) {
    g_cancellable_cancel(nat->running);
    g_clear_object(&nat->running);
  }
  g_autoptr(GError) cancelled =
    g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "the node is stopping");
  answer_waiting(nat, cancelled);
  g_ptr_array_unref(nat->waiting);
  hark_overlay_clear_source(overlay, &nat->timer);
  hark_overlay_clear_source(overlay, &nat->settle);
  if (nat->monitor != NULL) {
    g_signal_handler_disconnect(nat->monitor, nat->monitor_handler);
    g_object_unref(nat->monitor);
  }
  hark_nat_result_free(nat->result);
  g_free(nat->plugin);
  g_free(nat->path);
  g_free(nat);
}

HarkNatVerdict
hark_overlay_nat_verdict(HarkOverlay *overlay)
{
  OverlayNat *nat = overlay->nat;
  return nat != NULL && nat->result != NULL ? nat->result->verdict : HARK_NAT_VERDICT_UNKNOWN;
}

gboolean
hark_overlay_nat_behaviours(HarkOverlay *overlay, HarkNatBehaviour *mapping,
                            HarkNatBehaviour *filtering)
{
  OverlayNat *nat = overlay->nat;
  if (nat == NULL || nat->result == NULL || nat->result->verdict != HARK_NAT_VERDICT_NAT)
    return FALSE;
  *mapping = nat->result->mapping;
  *filtering = nat->result->filtering;
  return TRUE;
}

char *
hark_overlay_nat_mapped(HarkOverlay *overlay)
{
  OverlayNat *nat = overlay->nat;
  return nat != NULL && nat->result != NULL ? g_strdup(nat->result->mapped) : NULL;
}

JsonObject *
hark_overlay_nat_describe(HarkOverlay *overlay)
{
  OverlayNat *nat = overlay->nat;
  JsonObject *o = nat != NULL && nat->result != NULL
                    ? result_to_json(nat->result, nat->probed_at, nat->plugin)
                    : json_object_new();
  if (nat == NULL || nat->result == NULL)
    json_object_set_string_member(o, "verdict", "unknown");
  json_object_set_boolean_member(o, "probing", nat != NULL && nat->running != NULL);
  const HarkRegistration *reg = probe_plugin(overlay);
  if (reg != NULL) {
    const HarkNatProbeInterface *iface = reg->iface;
    json_object_set_object_member(o, "probe", iface->stats(reg->instance));
  }
  return o;
}

void
hark_overlay_nat_probe(HarkOverlay *overlay, HarkCommandCall *call)
{
  OverlayNat *nat = overlay->nat;
  g_autoptr(GError) error = NULL;
  if (nat == NULL || !probe_now(nat, &error)) {
    hark_command_call_return_error(
      call, error != NULL ? g_steal_pointer(&error)
                          : g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                                "the overlay is not running"));
    return;
  }
  g_ptr_array_add(nat->waiting, call);
}
