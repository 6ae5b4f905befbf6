/* test-natclassify.c: the `stun` nat-probe plugin's verdict behind every kind of NAT,
 * against the fake STUN server (tests/common/fake-stun.h), which pretends to stand
 * behind the NAT each case asks for: open (no NAT), full cone (endpoint-independent
 * mapping and filtering), restricted cone (address-dependent filtering), port-restricted
 * cone (address-and-port-dependent filtering), symmetric (address- and address-and-port-
 * dependent mapping), UDP blocked, and a NAT that loses the filtering tests' answers.
 * No root, no namespaces: everything runs on 127.0.0.x in this process. Needs stun.so
 * ($HARK_PLUGIN_PATH). */
#include <hark/hark.h>

#include "fake-stun.h"
#include "hark-private.h"
#include "test-isolate.h"
#include "test-wait.h"

/* The probe's timeouts, short: a dropped answer costs a test TIMEOUT_MS. */
#define TIMEOUT_MS 200
#define RTO_MS 40
/* The most a probe may take here: its tests run at most three timeouts one after another. */
#define PROBE_BOUND_MS 3000

typedef struct {
  HarkNode *node;
  const HarkNatProbeInterface *iface;
  gpointer instance;
  HarkFakeStun *stun;
  HarkNatResult *result;
  gboolean done;
  guint first_client_port; /* for the hook that loses the filtering tests' answers */
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autofree char *conf =
    g_strdup_printf("plugins: { load = ( { name = \"stun\"; settings = { timeout_ms = %d; "
                    "initial_rto_ms = %d; }; } ); };\n",
                    TIMEOUT_MS, RTO_MS);
  g_autoptr(GError) error = NULL;
  HarkConfig *config = hark_config_load_from_string(conf, "natclassify.conf", &error);
  g_assert_no_error(error);
  f->node = hark_node_new(config);
  g_assert_true(hark_node_load_plugins(f->node, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) probes = hark_context_lookup(f->node->core_ctx, HARK_KIND_NAT_PROBE);
  g_assert_cmpuint(probes->len, ==, 1);
  const HarkRegistration *reg = probes->pdata[0];
  g_assert_cmpstr(reg->name, ==, "stun");
  f->iface = reg->iface;
  f->instance = reg->instance;
  f->stun = hark_fake_stun_new(&error);
  g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  hark_nat_result_free(f->result);
  hark_fake_stun_free(f->stun);
  hark_node_free(f->node);
  while (g_main_context_iteration(NULL, FALSE))
    ;
}

static void
on_done(HarkNatResult *result, const GError *error, gpointer data)
{
  Fixture *f = data;
  g_assert_no_error(error);
  f->result = result;
  f->done = TRUE;
}

/* Probes the fake behind nat; the main loop runs until the verdict, within a bound. */
static void
probe_behind(Fixture *f, const HarkFakeNat *nat)
{
  hark_fake_stun_set_nat(f->stun, nat);
  g_autofree char *server = hark_fake_stun_primary(f->stun);
  const char *const servers[] = { server, NULL };
  f->iface->probe(f->instance, servers, NULL, on_done, f);
  g_assert_true(hark_test_wait_for_flag(&f->done, PROBE_BOUND_MS));
  if (!nat->blocked)
    g_assert_cmpstr(f->result->server, ==, server);
}

static void
assert_nat(Fixture *f, HarkNatBehaviour mapping, HarkNatBehaviour filtering)
{
  g_assert_cmpstr(hark_nat_verdict_to_string(f->result->verdict), ==,
                  hark_nat_verdict_to_string(HARK_NAT_VERDICT_NAT));
  g_assert_cmpstr(hark_nat_behaviour_to_string(f->result->mapping), ==,
                  hark_nat_behaviour_to_string(mapping));
  g_assert_cmpstr(hark_nat_behaviour_to_string(f->result->filtering), ==,
                  hark_nat_behaviour_to_string(filtering));
  /* The first mapping the NAT made is what test I reports. */
  g_assert_cmpstr(f->result->mapped, ==, HARK_FAKE_STUN_PUBLIC_IP ":40000");
}

static char *
other_text(Fixture *f)
{
  GInetSocketAddress *other = hark_fake_stun_address(f->stun, TRUE, TRUE);
  return g_strdup_printf("127.0.0.3:%u", g_inet_socket_address_get_port(other));
}

/* No NAT: the server sees the probe's own address; filtering is still tested (a firewall
 * could filter without translating), and nothing filters here. */
static void
test_open(Fixture *f, gconstpointer data)
{
  probe_behind(f, &(HarkFakeNat){ .nat = FALSE });
  g_assert_cmpint(f->result->verdict, ==, HARK_NAT_VERDICT_OPEN);
  g_assert_true(g_str_has_prefix(f->result->mapped, "127.0.0.1:"));
  g_autofree char *other = other_text(f);
  g_assert_cmpstr(f->result->other, ==, other);
  g_assert_cmpint(f->result->mapping, ==, HARK_NAT_BEHAVIOUR_UNKNOWN);
  g_assert_cmpint(f->result->filtering, ==, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT);
  g_assert_cmpuint(hark_fake_stun_counters(f->stun)->dropped, ==, 0);
}

static void
test_full_cone(Fixture *f, gconstpointer data)
{
  probe_behind(f, &(HarkFakeNat){ .nat = TRUE,
                                  .mapping = HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT,
                                  .filtering = HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT });
  assert_nat(f, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT);
  g_autofree char *other = other_text(f);
  g_assert_cmpstr(f->result->other, ==, other);
  g_assert_cmpuint(hark_fake_stun_counters(f->stun)->dropped, ==, 0);
}

/* Answers from the other IP are filtered: "change IP and port" is lost, "change port"
 * gets through. */
static void
test_restricted_cone(Fixture *f, gconstpointer data)
{
  probe_behind(f, &(HarkFakeNat){ .nat = TRUE,
                                  .mapping = HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT,
                                  .filtering = HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT });
  assert_nat(f, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT, HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT);
  g_assert_cmpuint(hark_fake_stun_counters(f->stun)->dropped, >=, 1);
}

static void
test_port_restricted_cone(Fixture *f, gconstpointer data)
{
  probe_behind(f, &(HarkFakeNat){ .nat = TRUE,
                                  .mapping = HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT,
                                  .filtering = HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT });
  assert_nat(f, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT,
             HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT);
  g_assert_cmpuint(hark_fake_stun_counters(f->stun)->dropped, >=, 2);
}

/* A new mapping for every destination address and port (the classic symmetric NAT). */
static void
test_symmetric(Fixture *f, gconstpointer data)
{
  probe_behind(f, &(HarkFakeNat){ .nat = TRUE,
                                  .mapping = HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT,
                                  .filtering = HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT });
  assert_nat(f, HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT,
             HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT);
}

/* A new mapping for every destination address, the same for its ports. */
static void
test_symmetric_by_address(Fixture *f, gconstpointer data)
{
  probe_behind(f, &(HarkFakeNat){ .nat = TRUE,
                                  .mapping = HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT,
                                  .filtering = HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT });
  assert_nat(f, HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT, HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT);
}

/* No answer at all: UDP blocked, after the requests were sent again. */
static void
test_udp_blocked(Fixture *f, gconstpointer data)
{
  probe_behind(f, &(HarkFakeNat){ .blocked = TRUE });
  g_assert_cmpint(f->result->verdict, ==, HARK_NAT_VERDICT_UDP_BLOCKED);
  g_assert_null(f->result->mapped);
  g_assert_cmpint(f->result->mapping, ==, HARK_NAT_BEHAVIOUR_UNKNOWN);
  g_assert_cmpint(f->result->filtering, ==, HARK_NAT_BEHAVIOUR_UNKNOWN);
  const HarkFakeStunCounters *counters = hark_fake_stun_counters(f->stun);
  g_assert_cmpuint(counters->requests, >=, 2); /* retransmitted */
  g_assert_cmpuint(counters->answers, ==, 0);
}

/* Only the probe's first socket gets answers (the hook loses the rest): the mapping is
 * still found, the filtering is unknown rather than guessed. */
static gboolean
only_first_client(GInetSocketAddress *client, GInetSocketAddress *asked, GInetSocketAddress *from,
                  guint change, gpointer data)
{
  Fixture *f = data;
  guint port = g_inet_socket_address_get_port(client);
  if (f->first_client_port == 0)
    f->first_client_port = port;
  return port == f->first_client_port;
}

static void
test_filtering_lost(Fixture *f, gconstpointer data)
{
  hark_fake_stun_set_hooks(f->stun, &(HarkFakeStunHooks){ .answer = only_first_client, .data = f });
  probe_behind(f, &(HarkFakeNat){ .nat = TRUE,
                                  .mapping = HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT,
                                  .filtering = HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT });
  assert_nat(f, HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT, HARK_NAT_BEHAVIOUR_UNKNOWN);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
#define ADD(path, fn) \
  hark_test_add_isolated(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD("/natclassify/open", test_open);
  ADD("/natclassify/full-cone", test_full_cone);
  ADD("/natclassify/restricted-cone", test_restricted_cone);
  ADD("/natclassify/port-restricted-cone", test_port_restricted_cone);
  ADD("/natclassify/symmetric", test_symmetric);
  ADD("/natclassify/symmetric-by-address", test_symmetric_by_address);
  ADD("/natclassify/udp-blocked", test_udp_blocked);
  ADD("/natclassify/filtering-lost", test_filtering_lost);
  return g_test_run();
}
