/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nat-stun.c: the `stun` nat-probe plugin (hark/natprobe.h): RFC 5389 binding and RFC
 * 5780 behaviour discovery against super nodes, whose STUN servers answer CHANGE-REQUEST
 * from a second address of their own or with a partner SN (docs/protocol.md, "STUN").
 *
 * Test I goes to up to three servers at once; the first that answers with an
 * OTHER-ADDRESS (RFC 5780) is used, else the first that answers. No answer at all: UDP is
 * blocked. A mapped address that is one of this host's (and our port): no NAT.
 * Mapping (RFC 5780 4.3), on the socket of test I: test II to (other IP, primary port);
 * the same mapped address as test I is endpoint-independent, else test III to the other
 * address and port: the same as test II is address-dependent, else address-and-port-
 * dependent. Filtering (4.4) runs at the same time on a second socket, so that the
 * mapping tests' packets to the other address have not opened the NAT for it: test I
 * again, then "change IP and port" and "change port" at once: an answer to the first is
 * endpoint-independent filtering, else one to the second address-dependent, else
 * address-and-port-dependent. */
#include "nat-stun.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>

#define MAX_SERVERS 3

typedef struct {
  Stun *stun;
  GCancellable *cancellable;
  HarkNatProbeDone done;
  gpointer user_data;
  gint64 started_us;
  IoSocket *a, *b; /* mapping tests, filtering tests */
  GInetSocketAddress *servers[MAX_SERVERS];
  IoTest *first[MAX_SERVERS];
  guint n_servers, first_pending;
  GInetSocketAddress *server, *other, *mapped, *mapped2;
  HarkNatResult *result;
  gboolean mapping_done, filtering_done;
  GInetSocketAddress *fallback_mapped; /* test I of a server without RFC 5780 */
  guint fallback_index;
  GError *error; /* the probe could not run */
  IoTest *filter_change_both, *filter_change_port;
  guint filter_pending;
  gboolean filter_both_ok, filter_port_ok;
  GSource *finisher;
} Probe;

static char *
address_text(GInetSocketAddress *address)
{
  g_autofree char *ip = g_inet_address_to_string(g_inet_socket_address_get_address(address));
  return g_strdup_printf("%s:%u", ip, g_inet_socket_address_get_port(address));
}

static gboolean
same_address(GInetSocketAddress *a, GInetSocketAddress *b)
{
  return g_inet_socket_address_get_port(a) == g_inet_socket_address_get_port(b) &&
         g_inet_address_equal(g_inet_socket_address_get_address(a),
                              g_inet_socket_address_get_address(b));
}

static GInetSocketAddress *
with_port(GInetSocketAddress *address, guint16 port)
{
  return G_INET_SOCKET_ADDRESS(
    g_inet_socket_address_new(g_inet_socket_address_get_address(address), port));
}

/* Whether ip is an address of one of this host's interfaces. */
static gboolean
is_local(GInetAddress *ip)
{
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) != 0)
    return FALSE;
  gboolean found = FALSE;
  for (struct ifaddrs *ifa = list; ifa != NULL && !found; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET)
      continue;
    g_autoptr(GSocketAddress) address =
      g_socket_address_new_from_native(ifa->ifa_addr, sizeof(struct sockaddr_in));
    found =
      g_inet_address_equal(ip, g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(address)));
  }
  freeifaddrs(list);
  return found;
}

static void
probe_free(Probe *probe)
{
  io_socket_free(probe->a);
  io_socket_free(probe->b);
  for (guint i = 0; i < probe->n_servers; i++)
    g_object_unref(probe->servers[i]);
  g_clear_object(&probe->server);
  g_clear_object(&probe->other);
  g_clear_object(&probe->mapped);
  g_clear_object(&probe->mapped2);
  g_clear_object(&probe->fallback_mapped);
  g_clear_error(&probe->error);
  hark_nat_result_free(probe->result);
  if (probe->finisher != NULL) {
    g_source_destroy(probe->finisher);
    g_source_unref(probe->finisher);
  }
  g_clear_object(&probe->cancellable);
  g_free(probe);
}

/* From an idle: the sockets whose callbacks got us here are freed outside them. */
static gboolean
on_finish(gpointer data)
{
  Probe *probe = data;
  g_clear_pointer(&probe->finisher, g_source_unref);
  HarkNatResult *result = g_steal_pointer(&probe->result);
  if (g_cancellable_is_cancelled(probe->cancellable)) {
    hark_nat_result_free(result);
  } else if (probe->error != NULL) {
    hark_nat_result_free(result);
    probe->done(NULL, probe->error, probe->user_data);
  } else {
    result->duration_ms = (g_get_monotonic_time() - probe->started_us) / 1000;
    probe->done(result, NULL, probe->user_data);
  }
  probe_free(probe);
  return G_SOURCE_REMOVE;
}

static void
finish_soon(Probe *probe)
{
  if (probe->finisher != NULL)
    return;
  probe->finisher = g_idle_source_new();
  g_source_set_callback(probe->finisher, on_finish, probe, NULL);
  g_source_attach(probe->finisher, hark_context_main_context(probe->stun->ctx));
}

static void
maybe_finish(Probe *probe)
{
  if (probe->mapping_done && probe->filtering_done)
    finish_soon(probe);
}

/* ---- mapping ---------------------------------------------------------------------- */

static void
mapping_is(Probe *probe, HarkNatBehaviour behaviour)
{
  probe->result->mapping = behaviour;
  probe->mapping_done = TRUE;
  maybe_finish(probe);
}

static void
on_mapping_iii(HarkStunBindingResponse *response, gpointer data)
{
  Probe *probe = data;
  if (response == NULL)
    mapping_is(probe, HARK_NAT_BEHAVIOUR_UNKNOWN);
  else if (same_address(response->mapped, probe->mapped2))
    mapping_is(probe, HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT);
  else
    mapping_is(probe, HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT);
}

static void
on_mapping_ii(HarkStunBindingResponse *response, gpointer data)
{
  Probe *probe = data;
  if (response == NULL) {
    mapping_is(probe, HARK_NAT_BEHAVIOUR_UNKNOWN);
  } else if (same_address(response->mapped, probe->mapped)) {
    mapping_is(probe, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT);
  } else {
    probe->mapped2 = g_object_ref(response->mapped);
    io_test_start(probe->a, probe->other, 0, probe->other, on_mapping_iii, probe);
  }
}

/* ---- filtering -------------------------------------------------------------------- */

static void
filtering_is(Probe *probe, HarkNatBehaviour behaviour)
{
  if (probe->filtering_done)
    return;
  probe->result->filtering = behaviour;
  probe->filtering_done = TRUE;
  maybe_finish(probe);
}

static void
filter_answer(Probe *probe, gboolean change_both, gboolean answered)
{
  if (change_both)
    probe->filter_both_ok = answered;
  else
    probe->filter_port_ok = answered;
  probe->filter_pending--;
  if (probe->filter_both_ok) {
    io_test_cancel(probe->filter_change_port);
    filtering_is(probe, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT);
  } else if (probe->filter_pending == 0) {
    filtering_is(probe, probe->filter_port_ok ? HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT
                                              : HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT);
  }
}

static void
on_filter_both(HarkStunBindingResponse *response, gpointer data)
{
  filter_answer(data, TRUE, response != NULL);
}

static void
on_filter_port(HarkStunBindingResponse *response, gpointer data)
{
  filter_answer(data, FALSE, response != NULL);
}

static void
on_filter_i(HarkStunBindingResponse *response, gpointer data)
{
  Probe *probe = data;
  if (response == NULL) {
    filtering_is(probe, HARK_NAT_BEHAVIOUR_UNKNOWN);
    return;
  }
  g_autoptr(GInetSocketAddress) port_changed =
    with_port(probe->server, g_inet_socket_address_get_port(probe->other));
  probe->filter_pending = 2;
  probe->filter_change_both =
    io_test_start(probe->b, probe->server, HARK_STUN_CHANGE_IP | HARK_STUN_CHANGE_PORT,
                  probe->other, on_filter_both, probe);
  probe->filter_change_port = io_test_start(probe->b, probe->server, HARK_STUN_CHANGE_PORT,
                                            port_changed, on_filter_port, probe);
}

/* ---- test I ----------------------------------------------------------------------- */

/* Test I answered by servers[index]: the rest of the probe runs against it. */
static void
chosen(Probe *probe, guint index, HarkStunBindingResponse *response)
{
  for (guint i = 0; i < probe->n_servers; i++)
    if (probe->first[i] != NULL)
      io_test_cancel(probe->first[i]);
  HarkNatResult *result = probe->result;
  probe->server = g_object_ref(probe->servers[index]);
  probe->mapped = g_object_ref(response->mapped);
  result->server = address_text(probe->server);
  result->mapped = address_text(probe->mapped);
  gboolean open = g_inet_socket_address_get_port(probe->mapped) == io_socket_port(probe->a) &&
                  is_local(g_inet_socket_address_get_address(probe->mapped));
  result->verdict = open ? HARK_NAT_VERDICT_OPEN : HARK_NAT_VERDICT_NAT;
  if (response->other == NULL) {
    g_message("stun: %s serves no RFC 5780: no mapping or filtering behaviour", result->server);
    finish_soon(probe);
    return;
  }
  probe->other = g_object_ref(response->other);
  result->other = address_text(probe->other);
  if (open) {
    probe->mapping_done = TRUE; /* no NAT, no mapping */
  } else {
    g_autoptr(GInetSocketAddress) alternate_ip =
      with_port(probe->other, g_inet_socket_address_get_port(probe->server));
    io_test_start(probe->a, alternate_ip, 0, alternate_ip, on_mapping_ii, probe);
  }
  g_autoptr(GError) error = NULL;
  probe->b = io_socket_new(probe->stun, &error);
  if (probe->b == NULL) {
    g_message("stun: no socket for the filtering tests: %s", error->message);
    filtering_is(probe, HARK_NAT_BEHAVIOUR_UNKNOWN);
    return;
  }
  io_test_start(probe->b, probe->server, 0, probe->server, on_filter_i, probe);
}

/* Test I ended for servers[index] (response NULL: no answer). */
static void
on_first(Probe *probe, guint index, HarkStunBindingResponse *response)
{
  probe->first[index] = NULL;
  probe->first_pending--;
  if (probe->server != NULL)
    return;
  /* Prefer a server with RFC 5780; take another only when every test I has ended. */
  if (response != NULL && response->other != NULL) {
    chosen(probe, index, response);
    return;
  }
  if (response != NULL && probe->fallback_mapped == NULL) {
    probe->fallback_mapped = g_object_ref(response->mapped);
    probe->fallback_index = index;
  }
  if (probe->first_pending > 0)
    return;
  if (probe->fallback_mapped == NULL) {
    probe->result->verdict = HARK_NAT_VERDICT_UDP_BLOCKED;
    finish_soon(probe);
    return;
  }
  /* Only RFC 5389 servers answered: the first of them. */
  HarkStunBindingResponse plain = { .mapped = probe->fallback_mapped };
  chosen(probe, probe->fallback_index, &plain);
}

static void
on_first_0(HarkStunBindingResponse *r, gpointer data)
{
  on_first(data, 0, r);
}
static void
on_first_1(HarkStunBindingResponse *r, gpointer data)
{
  on_first(data, 1, r);
}
static void
on_first_2(HarkStunBindingResponse *r, gpointer data)
{
  on_first(data, 2, r);
}
static const IoTestDone first_done[MAX_SERVERS] = { on_first_0, on_first_1, on_first_2 };

/* "a.b.c.d:port" (an IP address: SNs announce theirs) or NULL. */
static GInetSocketAddress *
parse_server(const char *text)
{
  const char *colon = strrchr(text, ':');
  if (colon == NULL)
    return NULL;
  g_autofree char *host = g_strndup(text, (gsize)(colon - text));
  g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(host);
  char *end = NULL;
  guint64 port = g_ascii_strtoull(colon + 1, &end, 10);
  if (ip == NULL || g_inet_address_get_family(ip) != G_SOCKET_FAMILY_IPV4 || end == colon + 1 ||
      *end != '\0' || port == 0 || port > G_MAXUINT16)
    return NULL;
  return G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(ip, (guint16)port));
}

static void
fail_soon(Probe *probe, GError *error, HarkNatProbeDone done, gpointer user_data)
{
  /* Called back from an idle, as the interface promises (never inside probe()). */
  probe->error = error;
  probe->done = done;
  probe->user_data = user_data;
  finish_soon(probe);
}

static void
stun_probe(gpointer instance, const char *const *servers, GCancellable *cancellable,
           HarkNatProbeDone done, gpointer user_data)
{
  Stun *stun = instance;
  stun->counters.probes++;
  Probe *probe = g_new0(Probe, 1);
  probe->stun = stun;
  probe->cancellable = cancellable != NULL ? g_object_ref(cancellable) : g_cancellable_new();
  probe->done = done;
  probe->user_data = user_data;
  probe->started_us = g_get_monotonic_time();
  probe->result = g_new0(HarkNatResult, 1);
  for (guint i = 0; servers != NULL && servers[i] != NULL && probe->n_servers < MAX_SERVERS; i++) {
    GInetSocketAddress *server = parse_server(servers[i]);
    if (server != NULL)
      probe->servers[probe->n_servers++] = server;
  }
  if (probe->n_servers == 0) {
    fail_soon(probe,
              g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                  "stun: no super node with an IPv4 address to ask"),
              done, user_data);
    return;
  }
  GError *error = NULL;
  probe->a = io_socket_new(stun, &error);
  if (probe->a == NULL) {
    fail_soon(probe, error, done, user_data);
    return;
  }
  probe->first_pending = probe->n_servers;
  for (guint i = 0; i < probe->n_servers; i++)
    probe->first[i] =
      io_test_start(probe->a, probe->servers[i], 0, probe->servers[i], first_done[i], probe);
}

static JsonObject *
stun_stats(gpointer instance)
{
  const StunCounters *c = &((Stun *)instance)->counters;
  JsonObject *object = json_object_new();
  json_object_set_int_member(object, "probes", (gint64)c->probes);
  json_object_set_int_member(object, "requests", (gint64)c->requests);
  json_object_set_int_member(object, "retransmissions", (gint64)c->retransmissions);
  json_object_set_int_member(object, "responses", (gint64)c->responses);
  json_object_set_int_member(object, "timeouts", (gint64)c->timeouts);
  json_object_set_int_member(object, "dropped_malformed", (gint64)c->dropped_malformed);
  json_object_set_int_member(object, "dropped_unexpected", (gint64)c->dropped_unexpected);
  json_object_set_int_member(object, "dropped_wrong_source", (gint64)c->dropped_wrong_source);
  json_object_set_int_member(object, "dropped_error", (gint64)c->dropped_error);
  return object;
}

static const HarkNatProbeInterface stun_interface = {
  .version = HARK_NAT_PROBE_INTERFACE_VERSION,
  .probe = stun_probe,
  .stats = stun_stats,
};

static gboolean
stun_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { "timeout_ms", "initial_rto_ms", NULL };
  gint64 timeout, rto;
  if (!hark_settings_get_int(settings, "timeout_ms", 2500, 100, 60000, &timeout, error) ||
      !hark_settings_get_int(settings, "initial_rto_ms", 250, 10, 5000, &rto, error))
    return FALSE;
  hark_settings_warn_unknown(settings, "stun", known);
  Stun *stun = g_new0(Stun, 1);
  stun->ctx = ctx;
  stun->timeout_ms = (guint)timeout;
  stun->initial_rto_ms = (guint)rto;
  if (!hark_context_register(ctx, HARK_KIND_NAT_PROBE, "stun", HARK_RANK_PRIMARY, &stun_interface,
                             stun, error)) {
    g_free(stun);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, stun);
  return TRUE;
}

/* The core cancels its probe before it unloads plugins, and a cancelled probe ends from
 * an idle of its own; nothing of a probe outlives the node's loop. */
static void
stun_fini(HarkContext *ctx)
{
  g_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "stun", .version = HARK_VERSION,
                   .description = "nat probe: STUN binding and RFC 5780 NAT behaviour discovery "
                                  "against super nodes",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_NAT_PROBE, .init = stun_init,
                   .fini = stun_fini);
