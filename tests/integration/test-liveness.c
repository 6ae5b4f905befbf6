/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-liveness.c: the SN link's liveness both ways with real processes (issue 12).
 *
 * A login server and two super nodes on this run's own loopback addresses 127.A.B.x;
 * clients join them. The keep-alive intervals are short here (1 s of silence before a
 * PING, 2 s for its answer) so that the cases stay fast; the defaults' worst cases are
 * checked by the unit suite's `keepalive` on the same code. Cases:
 *   silent-sn      an SN frozen with SIGSTOP keeps its sockets open (no reset, as a
 *                  crashed host or a cut cable): its client notices through the
 *                  keep-alive and re-attaches to the other SN within the bound;
 *   silent-client  a client frozen the same way: its SN drops it within its bound
 *                  (keepalive + 2 x keepalive_timeout, swept every keepalive_timeout) and
 *                  says so with an "overlay-client-left" event, which is what a directory
 *                  of where devices are listens to;
 *   idle-cost      an idle client sends one PING per keepalive and no more, stays
 *                  attached and served across several of the SN's bounds, and a probe
 *                  round costs what docs/benchmarks.md says (the numbers are printed). */
#include "lab.h"

#include <signal.h>
#include <string.h>

#define SN_COUNT 2
#define OVERLAY_PORT 33033
#define JOIN_MS 15000
/* The intervals of every node here (the SNs hand theirs to clients in JOIN_OK, which
 * they take only down to network.keepalive_floor: set as low here). */
#define KEEPALIVE_S 1
#define KEEPALIVE_TIMEOUT_S 2
/* The issue's bound on re-attaching after the SN went silent, with the defaults. */
#define ISSUE_FAILOVER_MS 30000
/* What a join takes on loopback, generously: UDP probes, TLS, JOIN (150 ms here). */
#define JOIN_ALLOWANCE_MS 3000

static struct {
  LabLoginServer *login;
  char *net; /* "127.A.B" */
  LabNode *sns[SN_COUNT];
  guint users;
} lab;

static char *
sn_address(guint index)
{
  return g_strdup_printf("%s.%u", lab.net, 21 + index);
}

static char *
bootstrap(void)
{
  GString *text = g_string_new(NULL);
  for (guint i = 0; i < SN_COUNT; i++) {
    g_autofree char *host = sn_address(i);
    g_string_append_printf(text,
                           "%s{ host = \"%s\"; port = %u; transports = [ \"udp\", \"tcp\" ]; }",
                           i > 0 ? ", " : "", host, OVERLAY_PORT);
  }
  return g_string_free(text, FALSE);
}

static char *
node_config(const char *name, gboolean super, const char *address)
{
  g_autofree char *list = bootstrap();
  g_autofree char *listen =
    address != NULL ? g_strdup_printf("listen = \"%s\"; port = %u; public_address = \"%s\";\n",
                                      address, OVERLAY_PORT, address)
                    : g_strdup("");
  return g_strdup_printf(
    "node: { name = \"%s\"; supernode = %s; };\n"
    "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; }, { name = \"ctl\"; } ); };\n"
    "network: { %s keepalive = %u; keepalive_timeout = %u; keepalive_floor = %u;\n"
    "  allow_loopback = true;\n"
    "  join_race_delay_ms = 100; bootstrap = ( %s ); };\n"
    "supernode: { min_uptime = 0; max_load = 10000; links = 1; };\n"
    "login: { url = \"%s\"; ca = \"%s\"; };\n",
    name, super ? "true" : "false", listen, KEEPALIVE_S, KEEPALIVE_TIMEOUT_S, KEEPALIVE_S, list,
    lab.login->url,
    lab.login->ca_path);
}

/* ---- overlay state ------------------------------------------------------------------ */

static const char *
member_string(JsonObject *object, const char *name)
{
  return object != NULL ? json_object_get_string_member_with_default(object, name, NULL) : NULL;
}

static JsonObject *
sn_of(JsonObject *overlay)
{
  if (g_strcmp0(member_string(overlay, "state"), "attached") != 0)
    return NULL;
  return json_object_get_object_member(overlay, "sn");
}

static gboolean
is_attached(JsonObject *overlay, gconstpointer data)
{
  return sn_of(overlay) != NULL;
}

static gboolean
attached_elsewhere(JsonObject *overlay, gconstpointer name)
{
  JsonObject *sn = sn_of(overlay);
  return sn != NULL && g_strcmp0(member_string(sn, "name"), name) != 0;
}

static gboolean
is_super(JsonObject *overlay, gconstpointer data)
{
  return g_strcmp0(member_string(overlay, "role"), "super") == 0;
}

/* More PINGs sent than data->pings, the last one answered: every snapshot so taken is at
 * the same point of a probe round. */
typedef struct {
  gint64 pings;
} Probes;

static gboolean
pinged_beyond(JsonObject *overlay, gconstpointer data)
{
  JsonObject *sn = sn_of(overlay);
  return sn != NULL &&
         json_object_get_int_member(sn, "pings_sent") > ((const Probes *)data)->pings &&
         !json_object_get_boolean_member(sn, "awaiting_answer");
}

static LabNode *
sn_named(const char *name)
{
  for (guint i = 0; i < SN_COUNT; i++)
    if (lab.sns[i] != NULL && g_strcmp0(lab.sns[i]->name, name) == 0)
      return lab.sns[i];
  return NULL;
}

/* ---- the lab ------------------------------------------------------------------------ */

static LabNode *
sn_new(guint index)
{
  g_autofree char *name = g_strdup_printf("sn%u", index + 1);
  g_autofree char *address = sn_address(index);
  g_autofree char *config = node_config(name, TRUE, address);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autofree char *user = g_strdup_printf("live-%s-%s", name, lab.net + 4);
  g_strdelimit(user, ".", '-');
  if (!lab_register_and_login(node, user))
    return NULL;
  g_autoptr(JsonObject) super = lab_wait_overlay(node, is_super, NULL, JOIN_MS, "serving");
  return super != NULL ? g_steal_pointer(&node) : NULL;
}

static gboolean
lab_up(void)
{
  lab.net = g_strdup_printf("127.%u.%u", g_random_int_range(1, 255), g_random_int_range(0, 255));
  lab.login = lab_login_server_new();
  if (lab.login == NULL)
    return FALSE;
  for (guint i = 0; i < SN_COUNT; i++)
    if ((lab.sns[i] = sn_new(i)) == NULL)
      return FALSE;
  return TRUE;
}

static void
lab_down(void)
{
  for (guint i = 0; i < SN_COUNT; i++)
    g_clear_pointer(&lab.sns[i], lab_node_free);
  g_clear_pointer(&lab.login, lab_login_server_free);
  g_free(lab.net);
}

/* A started client, attached and logged in as a fresh user (*user); its SN in *sn. */
static LabNode *
client_new(const char *name, char **user, LabNode **sn)
{
  g_autofree char *config = node_config(name, FALSE, NULL);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  *user = g_strdup_printf("liveuser%u", ++lab.users);
  if (!lab_register_and_login(node, *user))
    return NULL;
  g_autoptr(JsonObject) overlay = lab_wait_overlay(node, is_attached, NULL, JOIN_MS, "attached");
  *sn = overlay != NULL ? sn_named(member_string(sn_of(overlay), "name")) : NULL;
  if (*sn == NULL)
    return NULL;
  g_autoptr(JsonObject) at_sn =
    lab_wait_overlay(*sn, lab_overlay_serves_user, *user, JOIN_MS, "serving the user");
  return at_sn != NULL ? g_steal_pointer(&node) : NULL;
}

/* SIGSTOP: the process answers nothing, its kernel keeps its sockets open. Returns when. */
static gint64
freeze(LabNode *node)
{
  g_subprocess_send_signal(node->node->process, SIGSTOP);
  return g_get_monotonic_time();
}

static gint64
elapsed_ms(gint64 since)
{
  return (g_get_monotonic_time() - since) / 1000;
}

/* ---- cases -------------------------------------------------------------------------- */

static void
test_silent_sn(void)
{
  g_autofree char *user = NULL;
  LabNode *sn = NULL;
  g_autoptr(LabNode) client = client_new("live-client-a", &user, &sn);
  HARK_REQUIRE(client != NULL);
  g_autofree char *name = g_strdup(sn->name);
  /* Frozen, the SN's kernel keeps its sockets open: no reset, no FIN, only silence. */
  gint64 frozen = freeze(sn);
  g_autoptr(JsonObject) moved =
    lab_wait_overlay(client, attached_elsewhere, name, hark_test_timeout(ISSUE_FAILOVER_MS),
                     "attached to the other SN");
  gint64 took = elapsed_ms(frozen);
  g_subprocess_send_signal(sn->node->process, SIGCONT);
  HARK_REQUIRE(moved != NULL);
  g_test_message("frozen SN %s: re-attached to %s after %" G_GINT64_FORMAT " ms", name,
                 member_string(sn_of(moved), "name"), took);
  /* Noticed by the keep-alive (silence, then an unanswered PING), not by anything else. */
  g_autofree char *log = hark_test_node_read_stderr(client->node);
  g_assert_nonnull(strstr(log, "nothing arrived within 2 s of the keep-alive"));
  g_assert_cmpint(
    took, <=, hark_test_timeout((KEEPALIVE_S + KEEPALIVE_TIMEOUT_S) * 1000 + JOIN_ALLOWANCE_MS));
  LabNode *other = sn_named(member_string(sn_of(moved), "name"));
  HARK_REQUIRE(other != NULL);
  g_autoptr(JsonObject) served =
    lab_wait_overlay(other, lab_overlay_serves_user, user, JOIN_MS, "serving the user");
  g_assert_nonnull(served);
  /* Thawed, the SN serves again (the next cases need both). */
  g_autoptr(JsonObject) again = lab_wait_overlay(sn, is_super, NULL, JOIN_MS, "serving again");
  g_assert_nonnull(again);
}

/* The SN's event that user's device left, within timeout_ms; NULL (test failed) otherwise.
 * Events of other clients are skipped. */
static JsonObject *
wait_client_left(LabNode *sn, const char *user, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  for (;;) {
    gint64 left = (deadline - g_get_monotonic_time()) / 1000;
    if (left <= 0)
      break;
    g_autoptr(JsonObject) event =
      hark_test_client_wait_event(sn->ctl, "overlay-client-left", (guint)left);
    if (event == NULL)
      return NULL;
    if (g_strcmp0(member_string(event, "user"), user) == 0)
      return g_steal_pointer(&event);
  }
  g_test_fail_printf("%s: no overlay-client-left for %s within %u ms", sn->name, user, timeout_ms);
  return NULL;
}

static void
test_silent_client(void)
{
  g_autofree char *user = NULL;
  LabNode *sn = NULL;
  g_autoptr(LabNode) client = client_new("live-client-b", &user, &sn);
  HARK_REQUIRE(client != NULL);
  gint64 frozen = freeze(client);
  /* The SN's bound: keepalive + 2 x timeout of silence, swept every timeout. */
  guint bound_ms = (KEEPALIVE_S + 3 * KEEPALIVE_TIMEOUT_S) * 1000;
  g_autoptr(JsonObject) left = wait_client_left(sn, user, hark_test_timeout(bound_ms + 2000));
  gint64 took = elapsed_ms(frozen);
  g_subprocess_send_signal(client->node->process, SIGCONT);
  HARK_REQUIRE(left != NULL);
  g_test_message("frozen client: dropped by %s after %" G_GINT64_FORMAT " ms (%s)", sn->name, took,
                 member_string(left, "reason"));
  g_assert_nonnull(strstr(member_string(left, "reason"), "silent for"));
  g_assert_nonnull(member_string(left, "device"));
  /* Not before the client could have been alive: its last PING left at most a keepalive
   * before the freeze, and the SN waits keepalive + 2 x timeout after it. */
  g_assert_cmpint(took, >=, (KEEPALIVE_S + 2 * KEEPALIVE_TIMEOUT_S - KEEPALIVE_S) * 1000);
  g_assert_cmpint(took, <=, hark_test_timeout(bound_ms + 1000));
  g_autoptr(JsonObject) overlay = lab_call(sn, "overlay", NULL);
  HARK_REQUIRE(overlay != NULL);
  g_assert_false(lab_overlay_serves_user(overlay, user));
  /* Thawed, it finds its link closed and joins again. */
  g_autoptr(JsonObject) back =
    lab_wait_overlay(client, is_attached, NULL, JOIN_MS, "attached again");
  g_assert_nonnull(back);
}

/* Bytes of the SN link (both ways, TLS included) in one probe round: the PING and its
 * PONG, the smallest of several rounds (an SN_LIST, every 60 s, may fall into one). */
static void
test_idle_cost(void)
{
  g_autofree char *user = NULL;
  LabNode *sn = NULL;
  g_autoptr(LabNode) client = client_new("live-client-c", &user, &sn);
  HARK_REQUIRE(client != NULL);
  const guint rounds = 8;
  Probes probes = { 0 };
  g_autoptr(JsonObject) first =
    lab_wait_overlay(client, pinged_beyond, &probes, JOIN_MS, "attached, a PING answered");
  HARK_REQUIRE(first != NULL);
  g_autofree char *name = g_strdup(member_string(sn_of(first), "name"));
  probes.pings = json_object_get_int_member(sn_of(first), "pings_sent");
  gint64 bytes = json_object_get_int_member(sn_of(first), "bytes_in") +
                 json_object_get_int_member(sn_of(first), "bytes_out");
  gint64 smallest = G_MAXINT64;
  gint64 started = g_get_monotonic_time();
  gint64 start_pings = probes.pings;
  for (guint i = 0; i < rounds; i++) {
    /* Right after the next PING's answer. */
    g_autoptr(JsonObject) now =
      lab_wait_overlay(client, pinged_beyond, &probes, hark_test_timeout(KEEPALIVE_S * 1000 + 3000),
                       "sending the next PING");
    HARK_REQUIRE(now != NULL);
    JsonObject *link = sn_of(now);
    gint64 total =
      json_object_get_int_member(link, "bytes_in") + json_object_get_int_member(link, "bytes_out");
    gint64 pings = json_object_get_int_member(link, "pings_sent");
    if (pings == probes.pings + 1)
      smallest = MIN(smallest, total - bytes);
    bytes = total;
    probes.pings = pings;
    /* The `overlay` calls are traffic too, but of ctl, not of the SN link. */
    g_assert_cmpstr(member_string(link, "name"), ==, name);
  }
  gint64 took_ms = elapsed_ms(started);
  gint64 sent = probes.pings - start_pings;
  g_test_message("idle: %" G_GINT64_FORMAT " PINGs in %" G_GINT64_FORMAT " ms; one round "
                 "(PING + PONG, framing and TLS): %" G_GINT64_FORMAT " bytes; at the defaults "
                 "(one round per 20 s) %" G_GINT64_FORMAT " bytes of TLS per idle hour",
                 sent, took_ms, smallest, smallest * 180);
  /* One PING per keepalive of silence: no more, and no fewer (the SN hears the client). */
  g_assert_cmpint(took_ms, >=, (sent - 1) * KEEPALIVE_S * 1000);
  g_assert_cmpint(took_ms, <=, hark_test_timeout((sent + 1) * KEEPALIVE_S * 1000 + 1000));
  /* A PING and a PONG are 28-byte messages: 4 bytes of framing and 22 of TLS 1.3 each. */
  g_assert_cmpint(smallest, ==, 2 * (28 + 4 + 22));
  /* Idle for several of the SN's bounds, and never dropped. */
  g_autoptr(JsonObject) at_sn = lab_call(sn, "overlay", NULL);
  HARK_REQUIRE(at_sn != NULL);
  g_assert_true(lab_overlay_serves_user(at_sn, user));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_set_nonfatal_assertions();
  if (!lab_up())
    g_test_message("the lab did not come up; every case fails");
  g_test_add_func("/liveness/silent-sn", test_silent_sn);
  g_test_add_func("/liveness/silent-client", test_silent_client);
  g_test_add_func("/liveness/idle-cost", test_idle_cost);
  int status = g_test_run();
  lab_down();
  return status;
}
