/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-overlay.c: the overlay with real processes (issue 4's "done when").
 *
 * Every case has a lab of its own (overlay-lab.h): a login server and the bootstrap super
 * nodes (SNs) it needs, on loopback addresses 127.A.B.x of its own, in a process of its
 * own; ordinary nodes join them. This file: joining and serving. Five nodes join with an
 * empty host cache and log in; a warm cache; a corrupt cache; an SN killed (links close)
 * and an SN frozen (keep-alives go unanswered) with their clients re-attaching elsewhere;
 * a live move of the SN link to tls443; UDP dropped (an SN without UDP) and only the web
 * ports open, over TLS and over the WebSocket; a full SN redirecting; STUN and the NAT
 * probe against the SNs; certificates that end; and, as root, a node whose login server
 * is unreachable in its network namespace logging in through its SN.
 *
 * Strangers at an SN's doors: overlay-doors.c. Malicious SNs and SN peers: overlay-peers.c. */
#include "overlay-lab.h"
#include "overlay-cases.h"
#include "test-isolate.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static gboolean
attached_elsewhere(JsonObject *overlay, gconstpointer data)
{
  JsonObject *sn =
    olab_is_attached(overlay, NULL) ? json_object_get_object_member(overlay, "sn") : NULL;
  return sn != NULL && g_strcmp0(olab_member_string(sn, "name"), data) != 0;
}

/* A STUN binding request answered with our own address, XOR-ed (RFC 5389 §15.2). */
static void
check_stun(const char *host)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_from_string("127.0.0.1");
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  g_assert_true(g_socket_bind(socket, any, FALSE, &error));
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, &error);
  guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
  guint8 request[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42 };
  for (guint i = 8; i < 20; i++)
    request[i] = (guint8)g_random_int();
  g_autoptr(GInetAddress) sn = g_inet_address_new_from_string(host);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new(sn, OLAB_PORT);
  g_socket_set_timeout(socket, hark_test_timeout(5000) / 1000);
  g_assert_cmpint(g_socket_send_to(socket, to, (const char *)request, sizeof request, NULL, &error),
                  ==, sizeof request);
  guint8 answer[512];
  gssize n = g_socket_receive(socket, (char *)answer, sizeof answer, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpint(n, >=, 32);
  g_assert_cmpint(answer[0] << 8 | answer[1], ==, 0x0101); /* binding success */
  g_assert_cmpmem(answer + 8, 12, request + 8, 12); /* same transaction */
  gboolean found = FALSE;
  for (gssize at = 20; at + 4 <= n;) {
    guint type = answer[at] << 8 | answer[at + 1];
    guint length = answer[at + 2] << 8 | answer[at + 3];
    if (type == 0x0020 && length == 8) { /* XOR-MAPPED-ADDRESS, IPv4 */
      guint xport = (answer[at + 6] << 8 | answer[at + 7]) ^ 0x2112;
      guint8 a[4];
      for (guint i = 0; i < 4; i++)
        a[i] = answer[at + 8 + i] ^ request[4 + i];
      g_assert_cmpuint(xport, ==, port);
      g_assert_cmpmem(a, 4, ((guint8[]){ 127, 0, 0, 1 }), 4);
      found = TRUE;
    }
    at += 4 + ((length + 3) & ~3u);
  }
  g_assert_true(found);
}

static void
test_supernodes(OLab *lab)
{
  for (guint i = 0; i < lab->n_sns; i++) {
    /* Each SN links to the others it knows from its bootstrap list. */
    g_autoptr(JsonObject) overlay =
      lab_wait_overlay(lab->sns[i], olab_is_super, GUINT_TO_POINTER(lab->n_sns - 1), OLAB_JOIN_MS,
                       "linked to every other SN");
    HARK_REQUIRE(overlay != NULL);
  }
  g_autofree char *host = olab_sn_address(lab, 0);
  check_stun(host);
  g_autoptr(JsonObject) after = olab_overlay_of(lab->sns[0]);
  g_assert_cmpint(olab_dropped(after, "stun_answered"), >=, 1);
}

/* coturn's turnutils_stunclient against an SN, as a real STUN client sees it: the
 * mapped address it prints. With -f (RFC 5780) it also sends CHANGE-REQUESTs, which
 * the SN answers with its partner SN (STUN_RELAY). Prints nothing when coturn is not
 * installed (the case is skipped then). */
static char *
stunclient(const char *host, gboolean rfc5780, char **output)
{
  g_autofree char *port = g_strdup_printf("%u", OLAB_PORT);
  /* stunclient waits for ever for answers that do not come: always a timeout. */
  const char *argv[] = { "timeout",
                         "4",
                         "turnutils_stunclient",
                         "-p",
                         port,
                         "-L",
                         "127.0.0.1",
                         rfc5780 ? "-f" : host,
                         rfc5780 ? host : NULL,
                         NULL };
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                             &status, &error));
  g_assert_no_error(error);
  *output = g_strdup(out);
  g_autoptr(GRegex) regex = g_regex_new("UDP reflexive addr: *([0-9.]+):([0-9]+)", 0, 0, NULL);
  g_autoptr(GMatchInfo) match = NULL;
  if (!g_regex_match(regex, out, 0, &match))
    return NULL;
  return g_match_info_fetch(match, 1);
}

static gboolean
stun_flooded(JsonObject *overlay, gconstpointer unused)
{
  return olab_dropped(overlay, "stun_flood") > 0;
}

static void
test_stun_client(OLab *lab)
{
  g_autofree char *path = g_find_program_in_path("turnutils_stunclient");
  if (path == NULL) {
    g_test_skip("turnutils_stunclient (coturn) is not installed");
    return;
  }
  g_autofree char *host = olab_sn_address(lab, 0);
  g_autoptr(JsonObject) before = olab_overlay_of(lab->sns[0]);
  g_autofree char *out = NULL;
  g_autofree char *mapped = stunclient(host, FALSE, &out);
  g_test_message("stunclient: %s", out);
  g_assert_cmpstr(mapped, ==, "127.0.0.1");

  /* RFC 5780: the SN names its partner as the other address and the change requests
   * are answered (by the partner for a change of address). */
  g_autoptr(JsonObject) overlay = olab_overlay_of(lab->sns[0]);
  JsonObject *stun = json_object_get_object_member(overlay, "stun");
  g_assert_true(json_object_get_boolean_member(stun, "rfc5780"));
  g_autofree char *out5780 = NULL;
  g_autofree char *mapped5780 = stunclient(host, TRUE, &out5780);
  g_test_message("stunclient -f: %s", out5780);
  g_assert_cmpstr(mapped5780, ==, "127.0.0.1");
  /* Its second request asks for another address and port (and a RESPONSE-PORT): the
   * answer comes from the partner, the lowest other SN address, on the alternate port. */
  g_autofree char *partner_host = olab_sn_address(lab, 1);
  g_autofree char *from_partner = g_strdup_printf(
    "RFC 5780 response 2\n0: : IPv4. Response origin: : %s:%u", partner_host, OLAB_PORT + 1);
  if (strstr(out5780, from_partner) == NULL)
    g_error("expected '%s' in the output", from_partner);
  g_autoptr(JsonObject) after = olab_overlay_of(lab->sns[0]);
  g_autoptr(JsonObject) partner = olab_overlay_of(lab->sns[1]);
  g_assert_cmpint(olab_dropped(after, "stun_answered"), >, olab_dropped(before, "stun_answered"));
  g_assert_cmpint(olab_dropped(after, "stun_relayed"), >, olab_dropped(before, "stun_relayed"));
  g_assert_cmpint(olab_dropped(partner, "stun_relay_served"), >=, 1);

  /* A flood at the alternate STUN port, the core's own socket: over 200/s (burst 400)
   * it is dropped and counted, and a datagram there that is not STUN too. */
  g_autoptr(GSocket) flooder =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) sn_ip = g_inet_address_new_from_string(host);
  g_autoptr(GSocketAddress) alt = g_inet_socket_address_new(sn_ip, OLAB_PORT + 1);
  guint8 request[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42 };
  /* In rounds, so the SN's socket buffer does not overflow first: the pause paces the
   * sender (it waits for nothing). */
  for (guint i = 0; i < 800; i++) {
    g_socket_send_to(flooder, alt, (const char *)request, sizeof request, NULL, NULL);
    if (i % 100 == 99)
      g_usleep(10 * 1000);
  }
  g_socket_send_to(flooder, alt, "not stun", 8, NULL, NULL);
  g_autoptr(JsonObject) flooded =
    lab_wait_overlay(lab->sns[0], stun_flooded, NULL, 10000, "dropping the STUN flood");
  HARK_REQUIRE(flooded != NULL);
  g_assert_cmpint(olab_dropped(flooded, "stun_answered"), <,
                  olab_dropped(after, "stun_answered") + 800);
  g_assert_cmpint(olab_dropped(after, "stun_refused"), ==, olab_dropped(before, "stun_refused"));
}

static gboolean
nat_probed(gpointer data)
{
  g_autoptr(JsonObject) nat = lab_call(data, "nat", NULL);
  return nat != NULL && g_strcmp0(olab_member_string(nat, "verdict"), "unknown") != 0;
}

/* The `stun` nat-probe plugin in a client, against the SNs: on loopback there is no NAT,
 * and the filtering test with a change of address and port is answered (by the partner
 * SN), so the node is "open" with endpoint-independent filtering. The result is kept
 * across a restart (nat.json) and `nat probe` runs it again. */
static void
test_nat_probe(OLab *lab)
{
  g_autofree char *bootstrap = olab_bootstrap(lab);
  g_autofree char *user = NULL;
  g_autoptr(LabNode) node =
    olab_client_new(lab, "natprobe", "udp tcp stun", bootstrap, lab->web_tls, &user);
  HARK_REQUIRE(node != NULL);
  HARK_REQUIRE(hark_test_wait_for(nat_probed, node, 15000));
  g_autoptr(JsonObject) nat = lab_call(node, "nat", NULL);
  g_assert_cmpstr(olab_member_string(nat, "verdict"), ==, "open");
  g_assert_cmpstr(olab_member_string(nat, "filtering"), ==, "endpoint-independent");
  g_assert_cmpstr(olab_member_string(nat, "plugin"), ==, "stun");
  g_assert_true(g_str_has_prefix(olab_member_string(nat, "mapped"), "127.0.0.1:"));
  g_autofree char *sn_prefix = g_strdup_printf("%s.", lab->net);
  g_assert_true(g_str_has_prefix(olab_member_string(nat, "server"), sn_prefix));
  g_assert_nonnull(olab_member_string(nat, "other"));
  gint64 probed_at = json_object_get_int_member(nat, "probed_at");

  HARK_REQUIRE(lab_node_restart(node));
  g_autoptr(JsonObject) kept = lab_call(node, "nat", NULL);
  g_assert_cmpstr(olab_member_string(kept, "verdict"), ==, "open");
  g_assert_cmpint(json_object_get_int_member(kept, "probed_at"), ==, probed_at);

  g_autoptr(JsonObject) again = lab_call(node, "nat", lab_args("action", "probe", NULL));
  g_assert_nonnull(again);
  g_assert_cmpstr(olab_member_string(again, "verdict"), ==, "open");
  JsonObject *stats = json_object_get_object_member(again, "probe");
  g_assert_cmpint(json_object_get_int_member(stats, "probes"), >=, 1);
  g_assert_cmpint(json_object_get_int_member(stats, "dropped_malformed"), ==, 0);
}

typedef struct {
  OLabClient clients[5];
} Five;

static void
five_clear(Five *five)
{
  for (guint i = 0; i < G_N_ELEMENTS(five->clients); i++)
    olab_client_clear(&five->clients[i]);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Five, five_clear)

/* Five clients join at once over tcp, each served by an SN that knows its user. */
static void
test_join_five(OLab *lab)
{
  g_auto(Five) five = { 0 };
  for (guint i = 0; i < 5; i++) {
    g_autofree char *name = g_strdup_printf("node%u", i + 1);
    HARK_REQUIRE(olab_own_client(lab, &five.clients[i], name));
  }
  for (guint i = 0; i < 5; i++) {
    g_autoptr(JsonObject) overlay = olab_overlay_of(five.clients[i].node);
    g_assert_cmpstr(olab_member_string(json_object_get_object_member(overlay, "sn"), "transport"),
                    ==, "tcp");
    g_assert_cmpint(json_object_get_int_member(overlay, "host_cache"), >=, lab->n_sns);
    LabNode *sn = olab_sn_named(lab, olab_sn_name_of(overlay));
    HARK_REQUIRE(sn != NULL);
    /* The SN knows this client by the certificate it proved after logging in. */
    g_autoptr(JsonObject) at_sn = lab_wait_overlay(
      sn, lab_overlay_serves_user, five.clients[i].user, OLAB_JOIN_MS, "serving the user");
    HARK_REQUIRE(at_sn != NULL);
  }
  /* Each is served once, by one SN. */
  for (guint i = 0; i < 5; i++) {
    guint served = 0;
    for (guint j = 0; j < lab->n_sns; j++) {
      g_autoptr(JsonObject) overlay = olab_overlay_of(lab->sns[j]);
      served += overlay != NULL && lab_overlay_serves_user(overlay, five.clients[i].user);
    }
    g_assert_cmpuint(served, ==, 1);
  }
}

static void
test_warm_cache(OLab *lab)
{
  g_auto(OLabClient) me = { 0 };
  HARK_REQUIRE(olab_own_client(lab, &me, "warm"));
  HARK_REQUIRE(lab_node_restart(me.node));
  g_autoptr(JsonObject) overlay = olab_wait_attached(me.node, NULL);
  HARK_REQUIRE(overlay != NULL);
  g_autofree char *log = hark_test_node_read_stderr(me.node->node);
  g_assert_nonnull(strstr(log, "first the way that worked: tcp"));
  /* Logged in from the saved certificate: the SN knows the user without a password. */
  LabNode *sn = olab_sn_named(lab, olab_sn_name_of(overlay));
  HARK_REQUIRE(sn != NULL);
  g_autoptr(JsonObject) at_sn =
    lab_wait_overlay(sn, lab_overlay_serves_user, me.user, OLAB_JOIN_MS, "serving the user");
  g_assert_nonnull(at_sn);
}

static void
test_corrupt_cache(OLab *lab)
{
  g_auto(OLabClient) me = { 0 };
  HARK_REQUIRE(olab_own_client(lab, &me, "corrupt"));
  g_autoptr(JsonObject) stopped = lab_call(me.node, "shutdown", NULL);
  HARK_REQUIRE(stopped != NULL);
  HARK_REQUIRE(hark_test_node_wait_exit(me.node->node, LAB_EXIT_MS));
  g_clear_pointer(&me.node->ctl, hark_test_client_free);
  g_autofree char *path = g_build_filename(me.node->node->state_dir, "hostcache.json", NULL);
  g_autofree char *corrupt = g_strconcat(path, ".corrupt", NULL);
  g_autofree char *way = g_build_filename(me.node->node->state_dir, "join.json", NULL);
  g_assert_true(
    g_file_set_contents(path, "{\"version\": 1, \"entries\": [ {\"host\": 7", -1, NULL));
  g_unlink(way); /* nothing but the bootstrap list to go on */
  HARK_REQUIRE(lab_node_start(me.node));
  g_autoptr(JsonObject) overlay = olab_wait_attached(me.node, NULL);
  HARK_REQUIRE(overlay != NULL);
  g_autofree char *log = hark_test_node_read_stderr(me.node->node);
  g_assert_nonnull(strstr(log, "hostcache.json"));
  g_assert_true(g_file_test(corrupt, G_FILE_TEST_IS_REGULAR));
  g_assert_cmpint(json_object_get_int_member(overlay, "host_cache"), >=, lab->n_sns);
}

/* The client, whose SN was `name`, is attached elsewhere and served there, within the
 * bound; FALSE (the case failed) otherwise. */
static gboolean
moved_away(OLab *lab, OLabClient *client, const char *name, guint timeout_ms)
{
  g_autoptr(JsonObject) overlay =
    lab_wait_overlay(client->node, attached_elsewhere, name, timeout_ms, "attached to another SN");
  LabNode *sn = overlay != NULL ? olab_sn_named(lab, olab_sn_name_of(overlay)) : NULL;
  if (sn == NULL)
    return FALSE;
  g_autoptr(JsonObject) at_sn = lab_wait_overlay(sn, lab_overlay_serves_user, client->user,
                                                 timeout_ms, "serving the user again");
  return at_sn != NULL;
}

static void
test_failover_killed(OLab *lab)
{
  g_auto(OLabClient) me = { 0 };
  HARK_REQUIRE(olab_own_client(lab, &me, "killed"));
  g_autoptr(JsonObject) before = olab_overlay_of(me.node);
  g_autofree char *name = g_strdup(olab_sn_name_of(before));
  LabNode *sn = olab_sn_named(lab, name);
  HARK_REQUIRE(sn != NULL);
  lab_node_kill(sn);
  g_assert_true(moved_away(lab, &me, name, OLAB_FAILOVER_MS));
}

static void
test_failover_frozen(OLab *lab)
{
  g_auto(OLabClient) me = { 0 };
  HARK_REQUIRE(olab_own_client(lab, &me, "frozen"));
  g_autoptr(JsonObject) before = olab_overlay_of(me.node);
  g_autofree char *name = g_strdup(olab_sn_name_of(before));
  LabNode *sn = olab_sn_named(lab, name);
  HARK_REQUIRE(sn != NULL);
  /* A frozen SN keeps its sockets open: only the missed keep-alive (1 s + 2 s) tells. */
  g_subprocess_send_signal(sn->node->process, SIGSTOP);
  gboolean moved = moved_away(lab, &me, name, OLAB_FAILOVER_MS);
  /* Thawed whatever happened, so that the teardown's shutdown reaches it. */
  g_subprocess_send_signal(sn->node->process, SIGCONT);
  HARK_REQUIRE(moved);
  g_autoptr(JsonObject) after = olab_overlay_of(me.node);
  g_assert_cmpstr(olab_sn_name_of(after), !=, name);
}

static void
test_transport_switch(OLab *lab)
{
  g_auto(OLabClient) me = { 0 };
  HARK_REQUIRE(olab_own_client(lab, &me, "switch"));
  g_autoptr(JsonObject) before = olab_overlay_of(me.node);
  HARK_REQUIRE(before != NULL);
  g_autofree char *name = g_strdup(olab_sn_name_of(before));
  g_autoptr(JsonObject) moved = lab_call(me.node, "transport", lab_args("name", "tls443", NULL));
  HARK_REQUIRE(moved != NULL);
  g_autoptr(JsonObject) after = olab_overlay_of(me.node);
  g_assert_true(olab_is_attached(after, "tls443"));
  g_assert_cmpstr(olab_sn_name_of(after), ==, name); /* the same SN, another transport */
  g_autoptr(JsonObject) whoami = lab_call(me.node, "whoami", NULL);
  g_assert_cmpstr(olab_member_string(whoami, "user"), ==, me.user);
  LabNode *sn = olab_sn_named(lab, name);
  HARK_REQUIRE(sn != NULL);
  g_autoptr(JsonObject) at_sn = lab_wait_overlay(sn, lab_overlay_serves_user, me.user, OLAB_JOIN_MS,
                                                 "serving the user over tls443");
  g_assert_nonnull(at_sn);
  g_autoptr(JsonObject) refused = lab_ask(me.node, "transport", lab_args("name", "tls443", NULL));
  g_assert_cmpstr(hark_test_answer_error_code(refused), ==, "failed");
}

static void
test_udp_blocked(OLab *lab)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = olab_case_sn(lab, "sn-noudp", 31, "tcp tls443", NULL, "udp tcp", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *user = NULL;
  g_autoptr(LabNode) node =
    olab_client_new(lab, "behind-udp-block", "udp tcp", only, lab->web_tls, &user);
  HARK_REQUIRE(node != NULL);
  g_autoptr(JsonObject) overlay = olab_overlay_of(node);
  g_assert_true(olab_is_attached(overlay, "tcp"));
  g_assert_cmpstr(olab_sn_name_of(overlay), ==, "sn-noudp");
  g_autofree char *way_path = g_build_filename(node->node->state_dir, "join.json", NULL);
  g_autofree char *way = NULL;
  g_assert_true(g_file_get_contents(way_path, &way, NULL, NULL));
  g_assert_nonnull(strstr(way, "\"udp_answered\" : false"));
  /* Remembered: the next join opens TCP at once instead of waiting for UDP answers. */
  HARK_REQUIRE(lab_node_restart(node));
  g_autoptr(JsonObject) again = olab_wait_attached(node, "tcp");
  HARK_REQUIRE(again != NULL);
  g_autofree char *log = hark_test_node_read_stderr(node->node);
  g_assert_nonnull(strstr(log, "no UDP answer last time: no waiting for UDP"));
}

static void
test_web_only(OLab *lab)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = olab_case_sn(lab, "sn-web", 32, "tls443", NULL, "udp tcp tls443", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *user = NULL;
  g_autoptr(LabNode) tls =
    olab_client_new(lab, "web-tls", "udp tcp tls443", only, lab->web_tls, &user);
  HARK_REQUIRE(tls != NULL);
  g_autoptr(JsonObject) overlay = olab_overlay_of(tls);
  g_assert_true(olab_is_attached(overlay, "tls443"));
  g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(overlay, "sn"), "port"),
                  ==, OLAB_PORT);
  /* TLS on the web port closed too (as an HTTP proxy would): the WebSocket on port 80. */
  guint16 closed = 0;
  g_autoptr(GSocket) held = hark_test_closed_port(&closed);
  HARK_REQUIRE(held != NULL);
  g_autofree char *user2 = NULL;
  g_autoptr(LabNode) ws = olab_client_new(lab, "web-ws", "udp tcp tls443", only, closed, &user2);
  HARK_REQUIRE(ws != NULL);
  g_autoptr(JsonObject) over_ws = olab_overlay_of(ws);
  g_assert_true(olab_is_attached(over_ws, "tls443"));
  g_autoptr(JsonObject) at_sn =
    lab_wait_overlay(sn, lab_overlay_serves_user, user2, OLAB_JOIN_MS, "serving web-ws");
  g_assert_nonnull(at_sn);
}

static void
test_redirect(OLab *lab)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn =
    olab_case_sn(lab, "sn-small", 33, "udp tcp tls443", "max_clients = 1;", "tcp", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *user1 = NULL, *user2 = NULL;
  g_autoptr(LabNode) first = olab_client_new(lab, "first", "tcp", only, lab->web_tls, &user1);
  HARK_REQUIRE(first != NULL);
  g_assert_cmpstr(olab_sn_name_of(olab_overlay_of(first)), ==, "sn-small");
  g_autoptr(LabNode) second = olab_client_new(lab, "second", "tcp", only, lab->web_tls, &user2);
  HARK_REQUIRE(second != NULL);
  g_autoptr(JsonObject) overlay = olab_overlay_of(second);
  g_assert_cmpstr(olab_sn_name_of(overlay), !=, "sn-small");
  g_autoptr(JsonObject) at_small = olab_overlay_of(sn);
  g_assert_cmpint(olab_dropped(at_small, "redirected"), >=, 1);
  g_assert_cmpint(json_object_get_int_member(at_small, "client_count"), ==, 1);
}

/* ---- certificates that end -------------------------------------------------------------- */

#define SHORT_LIFETIME_S 5

typedef struct {
  const char *user;
  gint64 until; /* unix seconds */
} ServedUntil;

/* The SN still serves the user and keeps its link with the other SN, and the time is
 * past until. */
static gboolean
served_past(JsonObject *overlay, gconstpointer data)
{
  const ServedUntil *wait = data;
  if (!lab_overlay_serves_user(overlay, wait->user) ||
      json_array_get_length(json_object_get_array_member(overlay, "sn_links")) < 1) {
    g_test_fail_printf("the SN dropped %s or its SN link while certificates were renewed",
                       wait->user);
    return TRUE;
  }
  return g_get_real_time() / G_USEC_PER_SEC > wait->until;
}

/* Is the client node called name among the SN's clients with a certificate? */
static gboolean
serves_client(JsonObject *overlay, const char *name)
{
  JsonArray *clients = json_object_get_array_member(overlay, "clients");
  for (guint i = 0; clients != NULL && i < json_array_get_length(clients); i++) {
    JsonObject *client = json_array_get_object_element(clients, i);
    if (g_strcmp0(olab_member_string(client, "name"), name) == 0 &&
        olab_member_string(client, "user") != NULL)
      return TRUE;
  }
  return FALSE;
}

/* short-1's link closed for its expired certificate (short-2, the same user, stays). */
static gboolean
dropped_expired(JsonObject *overlay, gconstpointer data)
{
  return !serves_client(overlay, "short-1") && olab_dropped(overlay, "certificates_expired") >= 1;
}

/* The unix time of an ISO 8601 "expires" member. */
static gint64
expiry_of(JsonObject *object)
{
  g_autoptr(GDateTime) time =
    g_date_time_new_from_iso8601(olab_member_string(object, "expires"), NULL);
  return time != NULL ? g_date_time_to_unix(time) : 0;
}

/* With certificates of a few seconds (certificate_lifetime = 5): a client that renews
 * stays linked well past its first certificate's end (it proves each renewed one to its
 * SN), and so does a link between two SNs (the opener proves its renewed certificates);
 * once its device is removed from the account (from another device) it cannot renew,
 * and its SN closes its link when the certificate it holds expires. */
static void
test_certificate_expiry(OLab *lab)
{
  g_autofree char *address = olab_host(lab, 35);
  g_autofree char *address2 = olab_host(lab, 36);
  g_autofree char *only =
    g_strdup_printf("{ host = \"%s\"; port = %u; transports = [ \"tcp\" ]; }", address, OLAB_PORT);
  g_autofree char *both = g_strdup_printf("%s, { host = \"%s\"; port = %u; transports = "
                                          "[ \"tcp\" ]; }",
                                          only, address2, OLAB_PORT);
  g_autoptr(LabNode) sn = olab_sn_new(lab, "sn-short", address, "tcp", only, NULL, 0);
  g_autoptr(LabNode) sn2 =
    sn != NULL ? olab_sn_new(lab, "sn-short2", address2, "tcp", both, NULL, 1) : NULL;
  g_autofree char *user = NULL;
  g_autoptr(LabNode) client =
    sn != NULL ? olab_client_new(lab, "short-1", "tcp", only, 0, &user) : NULL;
  g_autofree char *other_config = olab_client_config(lab, "short-2", "tcp", only, 0);
  HARK_REQUIRE(sn != NULL && sn2 != NULL && client != NULL);
  g_autoptr(JsonObject) served =
    lab_wait_overlay(sn, lab_overlay_serves_user, user, OLAB_JOIN_MS, "serving the user");
  g_autoptr(JsonObject) linked =
    lab_wait_overlay(sn, olab_is_super, GUINT_TO_POINTER(1), OLAB_JOIN_MS, "linked");
  HARK_REQUIRE(linked != NULL);
  HARK_REQUIRE(served != NULL);

  g_autoptr(JsonObject) whoami = lab_call(client, "whoami", NULL);
  ServedUntil past_first = { user, expiry_of(whoami) + 1 };
  HARK_REQUIRE(past_first.until > 1);
  g_autoptr(JsonObject) still =
    lab_wait_overlay(sn, served_past, &past_first, (SHORT_LIFETIME_S + 10) * 1000,
                     "serving the user past its first certificate");
  HARK_REQUIRE(still != NULL);
  g_assert_cmpint(olab_dropped(still, "certificates_expired"), ==, 0);

  /* Another device of the same account removes this one. */
  g_autoptr(LabNode) other = lab_node_new("short-2", other_config);
  HARK_REQUIRE(lab_node_start(other));
  g_autofree char *password = g_strdup_printf("%s-password-1", user);
  g_autoptr(JsonObject) logged_in =
    lab_call(other, "login", lab_args("user", user, "password", password, NULL));
  HARK_REQUIRE(logged_in != NULL);
  gint64 removed_at = g_get_monotonic_time();
  g_autoptr(JsonObject) removed =
    lab_call(other, "device-remove", lab_args("device", "short-1", NULL));
  HARK_REQUIRE(removed != NULL);

  /* Within one certificate lifetime (and a renewal interval, and slack for a loaded
   * machine) the SN has closed the link. */
  guint bound_ms = hark_test_timeout((2 * SHORT_LIFETIME_S + 5) * 1000);
  g_autoptr(JsonObject) dropped_link =
    lab_wait_overlay(sn, dropped_expired, NULL, bound_ms, "dropping the revoked device");
  HARK_REQUIRE(dropped_link != NULL);
  g_test_message("the SN closed the revoked device's link %.1f s after the revocation "
                 "(certificate lifetime %d s)",
                 (g_get_monotonic_time() - removed_at) / 1e6, SHORT_LIFETIME_S);
  g_autofree char *log = hark_test_node_read_stderr(sn->node);
  g_assert_nonnull(strstr(log, "expired at"));
}

/* ---- login through the SN --------------------------------------------------------------- */

static gboolean
run_ip(const char *command)
{
  g_auto(GStrv) argv = g_strsplit(command, " ", -1);
  g_autofree char *out = NULL, *err = NULL;
  int status = hark_test_run((const char *const *)argv, &out, &err, 10000);
  if (status != 0)
    g_test_message("%s: %s", command, err);
  return status == 0;
}

/* Namespaces of earlier runs that were killed before they could clean up (their veth
 * goes with them). */
static void
remove_stale_namespaces(void)
{
  g_autoptr(GDir) dir = g_dir_open("/run/netns", 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
    if (!g_str_has_prefix(name, "hark-ovl-"))
      continue;
    pid_t pid = (pid_t)g_ascii_strtoll(name + strlen("hark-ovl-"), NULL, 10);
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
      g_autofree char *del = g_strdup_printf("ip netns del %s", name);
      run_ip(del);
    }
  }
}

static gboolean
is_logged_in_via_sn(JsonObject *state)
{
  JsonObject *login =
    json_object_has_member(state, "login") ? json_object_get_object_member(state, "login") : NULL;
  return g_strcmp0(olab_member_string(login, "path"), "super node") == 0;
}

static void
test_login_tunnel(OLab *lab)
{
  /* The node lives in a namespace with a veth to the SN: 127.0.0.1, where the login
   * server is, is the namespace's own loopback there, and nothing listens on it. The
   * namespace is named after this process, so one a killed run left behind is known. */
  remove_stale_namespaces();
  guint tag = (guint)getpid() & 0xffff;
  g_autofree char *ns = g_strdup_printf("hark-ovl-%u", (guint)getpid());
  g_autofree char *outer = g_strdup_printf("hov%04xa", tag);
  g_autofree char *inner = g_strdup_printf("hov%04xb", tag);
  g_autofree char *net = g_strdup_printf("10.%u.%u", 200 + (tag >> 12), tag & 0xff);
  g_autofree char *sn_host = g_strdup_printf("%s.1", net);
  g_autofree char *c1 = g_strdup_printf("ip netns add %s", ns);
  g_autofree char *c2 = g_strdup_printf("ip link add %s type veth peer name %s", outer, inner);
  g_autofree char *c3 = g_strdup_printf("ip link set %s netns %s", inner, ns);
  g_autofree char *c4 = g_strdup_printf("ip addr add %s.1/24 dev %s", net, outer);
  g_autofree char *c5 = g_strdup_printf("ip link set %s up", outer);
  g_autofree char *c6 = g_strdup_printf("ip -n %s addr add %s.2/24 dev %s", ns, net, inner);
  g_autofree char *c7 = g_strdup_printf("ip -n %s link set %s up", ns, inner);
  g_autofree char *c8 = g_strdup_printf("ip -n %s link set lo up", ns);
  gboolean up = run_ip(c1) && run_ip(c2) && run_ip(c3) && run_ip(c4) && run_ip(c5) && run_ip(c6) &&
                run_ip(c7) && run_ip(c8);
  g_autoptr(LabNode) sn = NULL;
  g_autoptr(LabNode) node = NULL;
  if (up) {
    g_autofree char *bootstrap = olab_bootstrap(lab);
    sn = olab_sn_new(lab, "sn-gateway", sn_host, "udp tcp", bootstrap, NULL, 1);
  }
  if (sn != NULL) {
    g_autofree char *only = g_strdup_printf("{ host = \"%s\"; port = %u; transports = [ \"udp\", "
                                            "\"tcp\" ]; }",
                                            sn_host, OLAB_PORT);
    g_autofree char *config =
      olab_client_config(lab, "in-a-namespace", "udp tcp", only, lab->web_tls);
    node = lab_node_new("in-a-namespace", config);
    g_autofree char *wrapper = g_strdup_printf("ip netns exec %s", ns);
    g_setenv("HARK_TEST_WRAPPER", wrapper, TRUE);
    g_setenv("HARK_TEST_TIMEOUT_SCALE", "1", TRUE);
    gboolean started = lab_node_start(node);
    g_unsetenv("HARK_TEST_WRAPPER");
    g_unsetenv("HARK_TEST_TIMEOUT_SCALE");
    g_autoptr(JsonObject) attached = started ? olab_wait_attached(node, "tcp") : NULL;
    g_autofree char *user = olab_next_user(lab);
    if (attached != NULL && lab_register_and_login(node, user)) {
      g_autoptr(JsonObject) whole = lab_call(node, "state", NULL);
      g_assert_true(whole != NULL && is_logged_in_via_sn(whole));
      g_autoptr(JsonObject) at_sn =
        lab_wait_overlay(sn, lab_overlay_serves_user, user, OLAB_JOIN_MS, "serving it");
      g_assert_nonnull(at_sn);
      g_autofree char *log = hark_test_node_read_stderr(node->node);
      g_assert_nonnull(strstr(log, "trying through the super node"));
    } else {
      g_test_fail_printf("the node in the namespace did not join and log in");
    }
  } else {
    g_test_fail_printf("cannot build the namespace %s or its SN", ns);
  }
  g_clear_pointer(&node, lab_node_free);
  g_clear_pointer(&sn, lab_node_free);
  g_autofree char *d1 = g_strdup_printf("ip link del %s", outer);
  g_autofree char *d2 = g_strdup_printf("ip netns del %s", ns);
  run_ip(d1);
  run_ip(d2);
}

/* What each case's lab holds: only what it uses (a login server costs about 0.3 s, an SN
 * about 0.5 s). Two SNs where a case needs a partner (RFC 5780) or another SN to move to. */
static const OLabCase join_cases[] = {
  { "/overlay/supernodes", test_supernodes, .sns = 3 },
  { "/overlay/stun-client", test_stun_client, .sns = 2 },
  { "/overlay/nat-probe", test_nat_probe, .sns = 2 },
  { "/overlay/join-five", test_join_five, .sns = 2 },
  { "/overlay/warm-cache", test_warm_cache, .sns = 1 },
  { "/overlay/corrupt-cache", test_corrupt_cache, .sns = 1 },
  { "/overlay/failover-killed", test_failover_killed, .sns = 2 },
  { "/overlay/failover-frozen", test_failover_frozen, .sns = 2 },
  { "/overlay/transport-switch", test_transport_switch, .sns = 1 },
  { "/overlay/udp-blocked", test_udp_blocked, .sns = 0 },
  { "/overlay/web-only", test_web_only, .sns = 0 },
  { "/overlay/redirect", test_redirect, .sns = 1 },
  { "/overlay/certificate-expiry", test_certificate_expiry, .sns = 0,
    .login_settings = "certificate_lifetime = " G_STRINGIFY(SHORT_LIFETIME_S) ";" },
  { "/overlay/login-tunnel", test_login_tunnel, .sns = 1, .needs_root = TRUE },
};

int
main(int argc, char **argv)
{
  /* 90 s for a case's process, as the other integration tests: the longest case
   * (failed-handshakes) takes about 15 s here. */
  hark_test_init_isolated(&argc, &argv, 90000);
  g_test_set_nonfatal_assertions();
  olab_add_cases(join_cases, G_N_ELEMENTS(join_cases));
  overlay_doors_add_cases();
  overlay_peers_add_cases();
  overlay_tunnels_add_cases();
  return g_test_run();
}
