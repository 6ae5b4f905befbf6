/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-overlay.c: the overlay with real processes (issue 4's "done when").
 *
 * A login server and three bootstrap super nodes (SNs), each on its own loopback
 * address 127.A.B.x (random A.B per run, so parallel runs never meet) with the same
 * ports; ordinary nodes join them. Cases: five nodes join with an empty host cache and
 * log in; a warm cache; a corrupt cache; an SN killed (links close) and an SN frozen
 * (keep-alives go unanswered) with their clients re-attaching elsewhere; a live move of
 * the SN link to tls443; UDP dropped (an SN without UDP) and only the web ports open,
 * over TLS and over the WebSocket; a full SN redirecting; bad input of every kind at an
 * SN that keeps serving; and, as root, a node whose login server is unreachable in its
 * network namespace logging in through its SN.
 *
 * What the cases share, and why: one login server and the three lab SNs (`lab`), started
 * once for the binary. Starting them takes about 1.5 s here, so a lab per case would add
 * some 40 s to a run of 27 cases (77 s), and much more under valgrind. The rules that keep
 * the cases independent of one another and of their order: a case makes its own clients
 * (own_client) and, for anything that changes an SN (limits, floods of bad input, odd
 * configurations), its own SN (case_sn, at an address of its own); a case that must act
 * on a lab SN (failover: killed, frozen) puts it back and waits until it serves again;
 * and no case counts what the lab SNs hold in total (clients, host-cache entries), since
 * earlier cases leave entries behind: only its own. */
#include "attack.h"
#include "lab.h"
#include "test-nodes.h"

#include "link-private.h"
#include "hark/hark.h"

#include <hark/certificate.h>
#include <hark/identity.h>
#include <hark/wire.h>

#include <glib/gstdio.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define SN_COUNT 3
#define OVERLAY_PORT 33033
/* The web ports when 443 and 80 are not ours. Every SN listens on the same ports (a
 * client's tls443 settings name one pair for all), on this run's own addresses; below
 * the ephemeral range (32768-60999), so no port-0 bind anywhere is handed them. */
#define WEB_TLS_PORT 30443
#define WEB_HTTP_PORT 30080
#define JOIN_MS 15000
#define FAILOVER_MS 10000

typedef struct {
  LabLoginServer *login;
  char *net;          /* "127.A.B" */
  guint16 web_tls;    /* tls443's ports on every SN: 443 and 80 as root */
  guint16 web_http;
  LabNode *sns[SN_COUNT];
  guint users;        /* for unique user names */
} Lab;

static Lab lab;

/* ---- configurations ----------------------------------------------------------------- */

static char *
sn_address(guint index)
{
  return g_strdup_printf("%s.%u", lab.net, 11 + index);
}

/* "{ host = ...; port = ...; transports = [...]; }, ..." for the SNs in indexes. */
static char *
bootstrap_of(const guint *indexes, guint n)
{
  GString *text = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    g_autofree char *host = sn_address(indexes[i]);
    g_string_append_printf(text, "%s{ host = \"%s\"; port = %u; transports = [ \"udp\", "
                                 "\"tcp\", \"tls443\" ]; }",
                           i > 0 ? ", " : "", host, OVERLAY_PORT);
  }
  return g_string_free(text, FALSE);
}

static char *
main_bootstrap(void)
{
  static const guint all[SN_COUNT] = { 0, 1, 2 };
  return bootstrap_of(all, SN_COUNT);
}

/* The plugins group for the given transports ("udp tcp tls443"), then ctl. */
static char *
plugins_of(const char *transports, guint16 tls_port, guint16 http_port)
{
  g_auto(GStrv) names = g_strsplit(transports, " ", -1);
  GString *text = g_string_new("plugins: { load = (\n");
  for (char **name = names; *name != NULL; name++) {
    if (strcmp(*name, "tls443") == 0)
      g_string_append_printf(text, "  { name = \"tls443\"; settings = { tls_port = %u; "
                                   "http_port = %u; connect_timeout_ms = 2000; }; },\n",
                             tls_port, http_port);
    else
      g_string_append_printf(text, "  { name = \"%s\"; },\n", *name);
  }
  g_string_append(text, "  { name = \"ctl\"; }\n); };\n");
  return g_string_free(text, FALSE);
}

static char *
login_section(void)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab.login->url,
                         lab.login->ca_path);
}

/* The handshake timeout of the SNs made next, when not 0 (a case that must hold many
 * links open at once on a slow machine sets it, and puts it back to 0). */
static guint sn_handshake_timeout_ms;

/* An SN listening on address; extra goes into its supernode section. */
static char *
sn_config(const char *name, const char *address, const char *transports, const char *bootstrap,
          const char *extra)
{
  g_autofree char *plugins = plugins_of(transports, lab.web_tls, lab.web_http);
  g_autofree char *login = login_section();
  return g_strdup_printf("node: { name = \"%s\"; supernode = true; };\n%s"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true;\n"
                         "  keepalive = 2; keepalive_timeout = 2; handshake_timeout_ms = %u;\n"
                         "  bootstrap = ( %s ); };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = 2; %s };\n%s",
                         name, plugins, address, OVERLAY_PORT, address,
                         /* short, for the slow-loris case; longer under valgrind */
                         sn_handshake_timeout_ms ? sn_handshake_timeout_ms : hark_test_timeout(1500),
                         bootstrap,
                         extra != NULL ? extra : "", login);
}

static char *
client_config(const char *name, const char *transports, const char *bootstrap,
              guint16 tls_port)
{
  g_autofree char *plugins = plugins_of(transports, tls_port, lab.web_http);
  g_autofree char *login = login_section();
  /* The web-port fallback waits 3 s, so that a slow machine (valgrind) still joins over
   * tcp when tcp works; when every link failed it starts at once anyway. */
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; };\n%s"
                         "network: { keepalive = 1; keepalive_timeout = 2; allow_loopback = true;\n"
                         "  join_race_delay_ms = 100; join_fallback_delay_ms = 3000;\n"
                         "  bootstrap = ( %s ); };\n%s",
                         name, plugins, bootstrap, login);
}

/* ---- overlay state ------------------------------------------------------------------ */

static JsonObject *
overlay_of(LabNode *node)
{
  return lab_call(node, "overlay", NULL);
}

static const char *
member_string(JsonObject *object, const char *name)
{
  return object != NULL ? json_object_get_string_member_with_default(object, name, NULL) : NULL;
}

/* The overlay object once pred(overlay, data) holds; NULL (test failed) otherwise. */
typedef gboolean (*OverlayPredicate)(JsonObject *overlay, gconstpointer data);

typedef struct {
  LabNode *node;
  OverlayPredicate pred;
  gconstpointer data;
  JsonObject *last;
} OverlayWait;

static gboolean
overlay_holds(gpointer data)
{
  OverlayWait *wait = data;
  g_clear_pointer(&wait->last, json_object_unref);
  wait->last = overlay_of(wait->node);
  return wait->last != NULL && wait->pred(wait->last, wait->data);
}

static JsonObject *
wait_overlay(LabNode *node, OverlayPredicate pred, gconstpointer data, guint timeout_ms,
             const char *what)
{
  OverlayWait wait = { node, pred, data, NULL };
  if (hark_test_wait_for(overlay_holds, &wait, timeout_ms))
    return wait.last;
  g_autofree char *json = wait.last != NULL ? hark_test_json(wait.last) : g_strdup("none");
  g_test_fail_printf("%s: not %s within %u ms; overlay: %s", node->name, what, timeout_ms, json);
  hark_test_node_show_logs(node->node);
  g_clear_pointer(&wait.last, json_object_unref);
  return NULL;
}

static gboolean
is_attached(JsonObject *overlay, gconstpointer data)
{
  if (g_strcmp0(member_string(overlay, "state"), "attached") != 0)
    return FALSE;
  JsonObject *sn = json_object_get_object_member(overlay, "sn");
  return data == NULL || g_strcmp0(member_string(sn, "transport"), data) == 0;
}

/* Serving, with at least data verified SN links. */
static gboolean
is_super(JsonObject *overlay, gconstpointer data)
{
  if (g_strcmp0(member_string(overlay, "role"), "super") != 0)
    return FALSE;
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  guint verified = 0;
  for (guint i = 0; i < json_array_get_length(links); i++)
    verified += json_object_get_boolean_member_with_default(
      json_array_get_object_element(links, i), "verified", FALSE);
  return verified >= GPOINTER_TO_UINT(data);
}

static gboolean
attached_elsewhere(JsonObject *overlay, gconstpointer data)
{
  JsonObject *sn = is_attached(overlay, NULL) ? json_object_get_object_member(overlay, "sn") : NULL;
  return sn != NULL && g_strcmp0(member_string(sn, "name"), data) != 0;
}

static JsonObject *
wait_attached(LabNode *node, const char *transport)
{
  return wait_overlay(node, is_attached, transport, JOIN_MS, "attached");
}

static const char *
sn_name_of(JsonObject *overlay)
{
  return member_string(json_object_get_object_member(overlay, "sn"), "name");
}

static gint64
dropped(JsonObject *overlay, const char *counter)
{
  return json_object_get_int_member(json_object_get_object_member(overlay, "dropped"), counter);
}

/* Is user among the SN's clients (authenticated as that user)? */
static gboolean
serves_user(JsonObject *overlay, gconstpointer user)
{
  JsonArray *clients = json_object_get_array_member(overlay, "clients");
  for (guint i = 0; clients != NULL && i < json_array_get_length(clients); i++)
    if (g_strcmp0(member_string(json_array_get_object_element(clients, i), "user"), user) == 0)
      return TRUE;
  return FALSE;
}

static LabNode *
sn_named(const char *name)
{
  for (guint i = 0; i < SN_COUNT; i++)
    if (lab.sns[i] != NULL && g_strcmp0(lab.sns[i]->name, name) == 0)
      return lab.sns[i];
  return NULL;
}

static char *
next_user(void)
{
  return g_strdup_printf("user%u", ++lab.users);
}

/* A started client that joined and logged in as a fresh user. */
static LabNode *
client_new(const char *name, const char *transports, const char *bootstrap, guint16 tls_port,
           char **user)
{
  g_autofree char *config = client_config(name, transports, bootstrap, tls_port);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autoptr(JsonObject) attached = wait_attached(node, NULL);
  if (attached == NULL)
    return NULL;
  *user = next_user();
  if (!lab_register_and_login(node, *user))
    return NULL;
  return g_steal_pointer(&node);
}

/* An SN started, logged in and serving with at least links SN links. */
static LabNode *
sn_new(const char *name, const char *address, const char *transports, const char *bootstrap,
       const char *extra, guint links)
{
  g_autofree char *config = sn_config(name, address, transports, bootstrap, extra);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autofree char *user = g_strdup_printf("%s-%s", name, lab.net + 4);
  for (char *c = user; *c != '\0'; c++)
    if (*c == '.')
      *c = '-';
  if (!lab_register_and_login(node, user))
    return NULL;
  g_autoptr(JsonObject) super =
    wait_overlay(node, is_super, GUINT_TO_POINTER(links), JOIN_MS, "serving");
  return super != NULL ? g_steal_pointer(&node) : NULL;
}

/* ---- the lab ---------------------------------------------------------------------- */

/* Can this process listen on address:port (a port below 1024 needs root; a web server
 * listening on every address holds it too)? */
static gboolean
can_listen(const char *address, guint16 port)
{
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address);
  g_autoptr(GSocketAddress) where = g_inet_socket_address_new(inet, port);
  return socket != NULL && g_socket_bind(socket, where, TRUE, NULL) &&
         g_socket_listen(socket, NULL);
}

static gboolean
lab_up(void)
{
  lab.net = g_strdup_printf("127.%u.%u", g_random_int_range(1, 255), g_random_int_range(0, 255));
  /* The real web ports when they are free to us, as on a super node; others otherwise. */
  g_autofree char *first = sn_address(0);
  gboolean web_ports = can_listen(first, 443) && can_listen(first, 80);
  lab.web_tls = web_ports ? 443 : WEB_TLS_PORT;
  lab.web_http = web_ports ? 80 : WEB_HTTP_PORT;
  g_test_message("lab %s.x, web ports %u and %u", lab.net, lab.web_tls, lab.web_http);
  lab.login = lab_login_server_new();
  if (lab.login == NULL)
    return FALSE;
  g_autofree char *bootstrap = main_bootstrap();
  for (guint i = 0; i < SN_COUNT; i++) {
    g_autofree char *name = g_strdup_printf("sn%u", i + 1);
    g_autofree char *address = sn_address(i);
    lab.sns[i] = sn_new(name, address, "udp tcp tls443", bootstrap, NULL, 0);
    if (lab.sns[i] == NULL)
      return FALSE;
  }
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

/* ---- cases -------------------------------------------------------------------------- */

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
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new(sn, OVERLAY_PORT);
  g_socket_set_timeout(socket, hark_test_timeout(5000) / 1000);
  g_assert_cmpint(g_socket_send_to(socket, to, (const char *)request, sizeof request, NULL,
                                   &error), ==, sizeof request);
  guint8 answer[512];
  gssize n = g_socket_receive(socket, (char *)answer, sizeof answer, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpint(n, >=, 32);
  g_assert_cmpint(answer[0] << 8 | answer[1], ==, 0x0101); /* binding success */
  g_assert_cmpmem(answer + 8, 12, request + 8, 12);         /* same transaction */
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
test_supernodes(void)
{
  HARK_REQUIRE(lab.sns[SN_COUNT - 1] != NULL);
  for (guint i = 0; i < SN_COUNT; i++) {
    /* Each SN links to the others it knows from its bootstrap list. */
    g_autoptr(JsonObject) overlay =
      wait_overlay(lab.sns[i], is_super, GUINT_TO_POINTER(2), JOIN_MS, "linked to 2 SNs");
    HARK_REQUIRE(overlay != NULL);
  }
  g_autofree char *host = sn_address(0);
  check_stun(host);
  g_autoptr(JsonObject) after = overlay_of(lab.sns[0]);
  g_assert_cmpint(dropped(after, "stun_answered"), >=, 1);
}

/* coturn's turnutils_stunclient against an SN, as a real STUN client sees it: the
 * mapped address it prints. With -f (RFC 5780) it also sends CHANGE-REQUESTs, which
 * the SN answers with its partner SN (STUN_RELAY). Prints nothing when coturn is not
 * installed (the case is skipped then). */
static char *
stunclient(const char *host, gboolean rfc5780, char **output)
{
  g_autofree char *port = g_strdup_printf("%u", OVERLAY_PORT);
  /* stunclient waits for ever for answers that do not come: always a timeout. */
  const char *argv[] = { "timeout", "4", "turnutils_stunclient", "-p", port, "-L", "127.0.0.1",
                         rfc5780 ? "-f" : host, rfc5780 ? host : NULL, NULL };
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                             NULL, &status, &error));
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
  return dropped(overlay, "stun_flood") > 0;
}

static void
test_stun_client(void)
{
  HARK_REQUIRE(lab.sns[SN_COUNT - 1] != NULL);
  g_autofree char *path = g_find_program_in_path("turnutils_stunclient");
  if (path == NULL) {
    g_test_skip("turnutils_stunclient (coturn) is not installed");
    return;
  }
  g_autofree char *host = sn_address(0);
  g_autoptr(JsonObject) before = overlay_of(lab.sns[0]);
  g_autofree char *out = NULL;
  g_autofree char *mapped = stunclient(host, FALSE, &out);
  g_test_message("stunclient: %s", out);
  g_assert_cmpstr(mapped, ==, "127.0.0.1");

  /* RFC 5780: the SN names its partner as the other address and the change requests
   * are answered (by the partner for a change of address). */
  g_autoptr(JsonObject) overlay = overlay_of(lab.sns[0]);
  JsonObject *stun = json_object_get_object_member(overlay, "stun");
  g_assert_true(json_object_get_boolean_member(stun, "rfc5780"));
  g_autofree char *out5780 = NULL;
  g_autofree char *mapped5780 = stunclient(host, TRUE, &out5780);
  g_test_message("stunclient -f: %s", out5780);
  g_assert_cmpstr(mapped5780, ==, "127.0.0.1");
  /* Its second request asks for another address and port (and a RESPONSE-PORT): the
   * answer comes from the partner, the lowest other SN address, on the alternate port. */
  g_autofree char *partner_host = sn_address(1);
  g_autofree char *from_partner =
    g_strdup_printf("RFC 5780 response 2\n0: : IPv4. Response origin: : %s:%u", partner_host,
                    OVERLAY_PORT + 1);
  if (strstr(out5780, from_partner) == NULL)
    g_error("expected '%s' in the output", from_partner);
  g_autoptr(JsonObject) after = overlay_of(lab.sns[0]);
  g_autoptr(JsonObject) partner = overlay_of(lab.sns[1]);
  g_assert_cmpint(dropped(after, "stun_answered"), >, dropped(before, "stun_answered"));
  g_assert_cmpint(dropped(after, "stun_relayed"), >, dropped(before, "stun_relayed"));
  g_assert_cmpint(dropped(partner, "stun_relay_served"), >=, 1);

  /* A flood at the alternate STUN port, the core's own socket: over 200/s (burst 400)
   * it is dropped and counted, and a datagram there that is not STUN too. */
  g_autoptr(GSocket) flooder =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) sn_ip = g_inet_address_new_from_string(host);
  g_autoptr(GSocketAddress) alt = g_inet_socket_address_new(sn_ip, OVERLAY_PORT + 1);
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
    wait_overlay(lab.sns[0], stun_flooded, NULL, 10000, "dropping the STUN flood");
  HARK_REQUIRE(flooded != NULL);
  g_assert_cmpint(dropped(flooded, "stun_answered"), <, dropped(after, "stun_answered") + 800);
  g_assert_cmpint(dropped(after, "stun_refused"), ==, dropped(before, "stun_refused"));
}

static gboolean
nat_probed(gpointer data)
{
  g_autoptr(JsonObject) nat = lab_call(data, "nat", NULL);
  return nat != NULL && g_strcmp0(member_string(nat, "verdict"), "unknown") != 0;
}

/* The `stun` nat-probe plugin in a client, against the SNs: on loopback there is no NAT,
 * and the filtering test with a change of address and port is answered (by the partner
 * SN), so the node is "open" with endpoint-independent filtering. The result is kept
 * across a restart (nat.json) and `nat probe` runs it again. */
static void
test_nat_probe(void)
{
  HARK_REQUIRE(lab.sns[SN_COUNT - 1] != NULL);
  g_autofree char *bootstrap = main_bootstrap();
  g_autofree char *user = NULL;
  g_autoptr(LabNode) node = client_new("natprobe", "udp tcp stun", bootstrap, lab.web_tls, &user);
  HARK_REQUIRE(node != NULL);
  g_assert_true(hark_test_wait_for(nat_probed, node, 15000));
  g_autoptr(JsonObject) nat = lab_call(node, "nat", NULL);
  g_assert_cmpstr(member_string(nat, "verdict"), ==, "open");
  g_assert_cmpstr(member_string(nat, "filtering"), ==, "endpoint-independent");
  g_assert_cmpstr(member_string(nat, "plugin"), ==, "stun");
  g_assert_true(g_str_has_prefix(member_string(nat, "mapped"), "127.0.0.1:"));
  g_autofree char *sn_prefix = g_strdup_printf("%s.", lab.net);
  g_assert_true(g_str_has_prefix(member_string(nat, "server"), sn_prefix));
  g_assert_nonnull(member_string(nat, "other"));
  gint64 probed_at = json_object_get_int_member(nat, "probed_at");

  HARK_REQUIRE(lab_node_restart(node));
  g_autoptr(JsonObject) kept = lab_call(node, "nat", NULL);
  g_assert_cmpstr(member_string(kept, "verdict"), ==, "open");
  g_assert_cmpint(json_object_get_int_member(kept, "probed_at"), ==, probed_at);

  g_autoptr(JsonObject) again = lab_call(node, "nat", lab_args("action", "probe", NULL));
  g_assert_nonnull(again);
  g_assert_cmpstr(member_string(again, "verdict"), ==, "open");
  JsonObject *stats = json_object_get_object_member(again, "probe");
  g_assert_cmpint(json_object_get_int_member(stats, "probes"), >=, 1);
  g_assert_cmpint(json_object_get_int_member(stats, "dropped_malformed"), ==, 0);
}

/* A client of a case's own, joined through the lab's SNs and logged in. */
typedef struct {
  LabNode *node;
  char *user;
} LabClient;

static void
lab_client_clear(LabClient *client)
{
  g_clear_pointer(&client->node, lab_node_free);
  g_clear_pointer(&client->user, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LabClient, lab_client_clear)

static gboolean
own_client(LabClient *client, const char *name)
{
  g_autofree char *bootstrap = main_bootstrap();
  client->node = client_new(name, "udp tcp tls443", bootstrap, lab.web_tls, &client->user);
  return client->node != NULL;
}

typedef struct {
  LabClient clients[5];
} Five;

static void
five_clear(Five *five)
{
  for (guint i = 0; i < G_N_ELEMENTS(five->clients); i++)
    lab_client_clear(&five->clients[i]);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Five, five_clear)

/* Five clients join at once over tcp, each served by an SN that knows its user. */
static void
test_join_five(void)
{
  g_auto(Five) five = { 0 };
  for (guint i = 0; i < 5; i++) {
    g_autofree char *name = g_strdup_printf("node%u", i + 1);
    HARK_REQUIRE(own_client(&five.clients[i], name));
  }
  for (guint i = 0; i < 5; i++) {
    g_autoptr(JsonObject) overlay = overlay_of(five.clients[i].node);
    g_assert_cmpstr(member_string(json_object_get_object_member(overlay, "sn"), "transport"), ==,
                    "tcp");
    g_assert_cmpint(json_object_get_int_member(overlay, "host_cache"), >=, SN_COUNT);
    LabNode *sn = sn_named(sn_name_of(overlay));
    HARK_REQUIRE(sn != NULL);
    /* The SN knows this client by the certificate it proved after logging in. */
    g_autoptr(JsonObject) at_sn = wait_overlay(sn, serves_user, five.clients[i].user, JOIN_MS,
                                               "serving the user");
    HARK_REQUIRE(at_sn != NULL);
  }
  /* Each is served once, by one SN (the SNs may still hold clients of earlier cases that
   * are on their way out: only these five are counted). */
  for (guint i = 0; i < 5; i++) {
    guint served = 0;
    for (guint j = 0; j < SN_COUNT; j++) {
      g_autoptr(JsonObject) overlay = overlay_of(lab.sns[j]);
      served += overlay != NULL && serves_user(overlay, five.clients[i].user);
    }
    g_assert_cmpuint(served, ==, 1);
  }
}

static void
test_warm_cache(void)
{
  g_auto(LabClient) me = { 0 };
  HARK_REQUIRE(own_client(&me, "warm"));
  HARK_REQUIRE(lab_node_restart(me.node));
  g_autoptr(JsonObject) overlay = wait_attached(me.node, NULL);
  HARK_REQUIRE(overlay != NULL);
  g_autofree char *log = hark_test_node_read_stderr(me.node->node);
  g_assert_nonnull(strstr(log, "first the way that worked: tcp"));
  /* Logged in from the saved certificate: the SN knows the user without a password. */
  LabNode *sn = sn_named(sn_name_of(overlay));
  HARK_REQUIRE(sn != NULL);
  g_autoptr(JsonObject) at_sn =
    wait_overlay(sn, serves_user, me.user, JOIN_MS, "serving the user");
  g_assert_nonnull(at_sn);
}

static void
test_corrupt_cache(void)
{
  g_auto(LabClient) me = { 0 };
  HARK_REQUIRE(own_client(&me, "corrupt"));
  g_autoptr(JsonObject) stopped = lab_call(me.node, "shutdown", NULL);
  HARK_REQUIRE(stopped != NULL);
  HARK_REQUIRE(hark_test_node_wait_exit(me.node->node, LAB_EXIT_MS));
  g_clear_pointer(&me.node->ctl, hark_test_client_free);
  g_autofree char *path = g_build_filename(me.node->node->state_dir, "hostcache.json", NULL);
  g_autofree char *corrupt = g_strconcat(path, ".corrupt", NULL);
  g_autofree char *way = g_build_filename(me.node->node->state_dir, "join.json", NULL);
  g_assert_true(g_file_set_contents(path, "{\"version\": 1, \"entries\": [ {\"host\": 7", -1, NULL));
  g_unlink(way); /* nothing but the bootstrap list to go on */
  HARK_REQUIRE(lab_node_start(me.node));
  g_autoptr(JsonObject) overlay = wait_attached(me.node, NULL);
  HARK_REQUIRE(overlay != NULL);
  g_autofree char *log = hark_test_node_read_stderr(me.node->node);
  g_assert_nonnull(strstr(log, "hostcache.json"));
  g_assert_true(g_file_test(corrupt, G_FILE_TEST_IS_REGULAR));
  g_assert_cmpint(json_object_get_int_member(overlay, "host_cache"), >=, SN_COUNT);
}

/* The client, whose SN was `name`, is attached elsewhere and served there, within the
 * bound; FALSE (the case failed) otherwise. */
static gboolean
moved_away(LabClient *client, const char *name, guint timeout_ms)
{
  g_autoptr(JsonObject) overlay =
    wait_overlay(client->node, attached_elsewhere, name, timeout_ms, "attached to another SN");
  LabNode *sn = overlay != NULL ? sn_named(sn_name_of(overlay)) : NULL;
  if (sn == NULL)
    return FALSE;
  g_autoptr(JsonObject) at_sn =
    wait_overlay(sn, serves_user, client->user, timeout_ms, "serving the user again");
  return at_sn != NULL;
}

static void
test_failover_killed(void)
{
  g_auto(LabClient) me = { 0 };
  HARK_REQUIRE(own_client(&me, "killed"));
  g_autoptr(JsonObject) before = overlay_of(me.node);
  g_autofree char *name = g_strdup(sn_name_of(before));
  LabNode *sn = sn_named(name);
  HARK_REQUIRE(sn != NULL);
  lab_node_kill(sn);
  gboolean moved = moved_away(&me, name, FAILOVER_MS);
  /* Back on its saved certificate, the SN serves again and links with the others (the
   * lab's SNs are shared: the next cases need all of them). */
  HARK_REQUIRE(lab_node_start(sn));
  g_autoptr(JsonObject) again = wait_overlay(sn, is_super, GUINT_TO_POINTER(1), JOIN_MS,
                                             "serving again");
  g_assert_nonnull(again);
  g_assert_true(moved);
}

static void
test_failover_frozen(void)
{
  g_auto(LabClient) me = { 0 };
  HARK_REQUIRE(own_client(&me, "frozen"));
  g_autoptr(JsonObject) before = overlay_of(me.node);
  g_autofree char *name = g_strdup(sn_name_of(before));
  LabNode *sn = sn_named(name);
  HARK_REQUIRE(sn != NULL);
  /* A frozen SN keeps its sockets open: only the missed keep-alive (1 s + 2 s) tells. */
  g_subprocess_send_signal(sn->node->process, SIGSTOP);
  gboolean moved = moved_away(&me, name, FAILOVER_MS);
  /* Thawed whatever happened, and serving with its SN links again before the next case
   * (the lab's SNs are shared). */
  g_subprocess_send_signal(sn->node->process, SIGCONT);
  HARK_REQUIRE(moved);
  g_autoptr(JsonObject) after = overlay_of(me.node);
  g_assert_cmpstr(sn_name_of(after), !=, name);
  g_autoptr(JsonObject) again = wait_overlay(sn, is_super, GUINT_TO_POINTER(1), JOIN_MS,
                                             "serving again");
  g_assert_nonnull(again);
}

static void
test_transport_switch(void)
{
  g_auto(LabClient) me = { 0 };
  HARK_REQUIRE(own_client(&me, "switch"));
  g_autoptr(JsonObject) before = overlay_of(me.node);
  HARK_REQUIRE(before != NULL);
  g_autofree char *name = g_strdup(sn_name_of(before));
  g_autoptr(JsonObject) moved = lab_call(me.node, "transport", lab_args("name", "tls443", NULL));
  HARK_REQUIRE(moved != NULL);
  g_autoptr(JsonObject) after = overlay_of(me.node);
  g_assert_true(is_attached(after, "tls443"));
  g_assert_cmpstr(sn_name_of(after), ==, name); /* the same SN, another transport */
  g_autoptr(JsonObject) whoami = lab_call(me.node, "whoami", NULL);
  g_assert_cmpstr(member_string(whoami, "user"), ==, me.user);
  LabNode *sn = sn_named(name);
  g_autoptr(JsonObject) at_sn = wait_overlay(sn, serves_user, me.user, JOIN_MS,
                                             "serving the user over tls443");
  g_assert_nonnull(at_sn);
  g_autoptr(JsonObject) refused = lab_ask(me.node, "transport", lab_args("name", "tls443", NULL));
  g_assert_cmpstr(hark_test_answer_error_code(refused), ==, "failed");
}

/* One more SN for a case, at lab.net.<host> with these transports, linked to the lab's;
 * *only is a bootstrap list naming it alone, offering what clients may try. */
static LabNode *
case_sn(const char *name, guint host, const char *transports, const char *extra,
        const char *offered, char **only)
{
  g_autofree char *address = g_strdup_printf("%s.%u", lab.net, host);
  g_autofree char *bootstrap = main_bootstrap();
  g_auto(GStrv) names = g_strsplit(offered, " ", -1);
  g_autofree char *list = g_strjoinv("\", \"", names);
  *only = g_strdup_printf("{ host = \"%s\"; port = %u; transports = [ \"%s\" ]; }", address,
                          OVERLAY_PORT, list);
  return sn_new(name, address, transports, bootstrap, extra, 1);
}

static void
test_udp_blocked(void)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = case_sn("sn-noudp", 31, "tcp tls443", NULL, "udp tcp", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *user = NULL;
  g_autoptr(LabNode) node = client_new("behind-udp-block", "udp tcp", only, lab.web_tls, &user);
  HARK_REQUIRE(node != NULL);
  g_autoptr(JsonObject) overlay = overlay_of(node);
  g_assert_true(is_attached(overlay, "tcp"));
  g_assert_cmpstr(sn_name_of(overlay), ==, "sn-noudp");
  g_autofree char *way_path = g_build_filename(node->node->state_dir, "join.json", NULL);
  g_autofree char *way = NULL;
  g_assert_true(g_file_get_contents(way_path, &way, NULL, NULL));
  g_assert_nonnull(strstr(way, "\"udp_answered\" : false"));
  /* Remembered: the next join opens TCP at once instead of waiting for UDP answers. */
  HARK_REQUIRE(lab_node_restart(node));
  g_autoptr(JsonObject) again = wait_attached(node, "tcp");
  HARK_REQUIRE(again != NULL);
  g_autofree char *log = hark_test_node_read_stderr(node->node);
  g_assert_nonnull(strstr(log, "no UDP answer last time: no waiting for UDP"));
}

static void
test_web_only(void)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = case_sn("sn-web", 32, "tls443", NULL, "udp tcp tls443", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *user = NULL;
  g_autoptr(LabNode) tls = client_new("web-tls", "udp tcp tls443", only, lab.web_tls, &user);
  HARK_REQUIRE(tls != NULL);
  g_autoptr(JsonObject) overlay = overlay_of(tls);
  g_assert_true(is_attached(overlay, "tls443"));
  g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(overlay, "sn"),
                                             "port"), ==, OVERLAY_PORT);
  /* TLS on the web port closed too (as an HTTP proxy would): the WebSocket on port 80. */
  guint16 closed = 0;
  g_autoptr(GSocket) held = hark_test_closed_port(&closed);
  HARK_REQUIRE(held != NULL);
  g_autofree char *user2 = NULL;
  g_autoptr(LabNode) ws = client_new("web-ws", "udp tcp tls443", only, closed, &user2);
  HARK_REQUIRE(ws != NULL);
  g_autoptr(JsonObject) over_ws = overlay_of(ws);
  g_assert_true(is_attached(over_ws, "tls443"));
  g_autoptr(JsonObject) at_sn = wait_overlay(sn, serves_user, user2, JOIN_MS, "serving web-ws");
  g_assert_nonnull(at_sn);
}

static void
test_redirect(void)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn =
    case_sn("sn-small", 33, "udp tcp tls443", "max_clients = 1;", "tcp", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *user1 = NULL, *user2 = NULL;
  g_autoptr(LabNode) first = client_new("first", "tcp", only, lab.web_tls, &user1);
  HARK_REQUIRE(first != NULL);
  g_assert_cmpstr(sn_name_of(overlay_of(first)), ==, "sn-small");
  g_autoptr(LabNode) second = client_new("second", "tcp", only, lab.web_tls, &user2);
  HARK_REQUIRE(second != NULL);
  g_autoptr(JsonObject) overlay = overlay_of(second);
  g_assert_cmpstr(sn_name_of(overlay), !=, "sn-small");
  g_autoptr(JsonObject) at_small = overlay_of(sn);
  g_assert_cmpint(dropped(at_small, "redirected"), >=, 1);
  g_assert_cmpint(json_object_get_int_member(at_small, "client_count"), ==, 1);
}

/* ---- bad input ------------------------------------------------------------------------ */

static GSocketConnection *
tcp_to(const char *host, guint16 port)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_timeout(client, 5);
  g_socket_client_set_enable_proxy(client, FALSE); /* straight to the SN, as nodes do */
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection = g_socket_client_connect_to_host(client, host, port, NULL, &error);
  g_assert_no_error(error);
  return connection;
}

static gboolean
accept_any(GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors, gpointer data)
{
  return TRUE;
}

/* A TLS 1.3 client without a certificate (GIO's, not ours), for speaking bad frames. */
static GIOStream *
tls_to(const char *host, guint16 port)
{
  g_autoptr(GSocketConnection) tcp = tcp_to(host, port);
  g_autoptr(GError) error = NULL;
  GIOStream *tls = g_tls_client_connection_new(G_IO_STREAM(tcp), NULL, &error);
  g_assert_no_error(error);
  g_signal_connect(tls, "accept-certificate", G_CALLBACK(accept_any), NULL);
  g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &error);
  g_assert_no_error(error);
  return tls;
}

static void
send_frame(GIOStream *stream, guint32 length, gconstpointer data, gsize size)
{
  guint8 header[4] = { length >> 24, length >> 16, length >> 8, length };
  GOutputStream *out = g_io_stream_get_output_stream(stream);
  g_output_stream_write_all(out, header, 4, NULL, NULL, NULL);
  if (size > 0)
    g_output_stream_write_all(out, data, size, NULL, NULL, NULL);
  g_output_stream_flush(out, NULL, NULL);
}

static void
send_message(GIOStream *stream, guint16 type, GVariant *body)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = hark_wire_encode(type, 1, body, &error);
  g_assert_no_error(error);
  gsize size;
  gconstpointer data = g_bytes_get_data(bytes, &size);
  send_frame(stream, (guint32)size, data, size);
}

typedef struct {
  const char *counter;
  gint64 above;
} CounterAbove;

static gboolean
counter_above(JsonObject *overlay, gconstpointer data)
{
  const CounterAbove *want = data;
  return dropped(overlay, want->counter) > want->above;
}

static void
expect_counter_rise(LabNode *sn, JsonObject *before, const char *counter)
{
  CounterAbove want = { counter, dropped(before, counter) };
  g_autoptr(JsonObject) after = wait_overlay(sn, counter_above, &want, 5000, counter);
  g_assert_nonnull(after);
}

static void
test_bad_input(void)
{
  LabNode *sn = lab.sns[0];
  HARK_REQUIRE(sn != NULL && sn->ctl != NULL);
  g_autofree char *host = sn_address(0);
  g_autoptr(JsonObject) before = overlay_of(sn);

  /* Not TLS at all. */
  g_autoptr(GSocketConnection) junk = tcp_to(host, OVERLAY_PORT);
  g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(junk)),
                            "GET / HTTP/1.0\r\n\r\n", 18, NULL, NULL, NULL);
  /* Slow-loris: connects and says nothing; dropped after handshake_timeout_ms. */
  g_autoptr(GSocketConnection) silent = tcp_to(host, OVERLAY_PORT);
  g_assert_nonnull(silent);
  expect_counter_rise(sn, before, "handshake_failures");

  /* TLS, then messages before JOIN, an undecodable frame and an oversized one. */
  g_autoptr(GIOStream) early = tls_to(host, OVERLAY_PORT);
  send_message(early, HARK_MSG_SN_LIST, g_variant_new_parsed("(@a(sqas) [],)"));
  expect_counter_rise(sn, before, "unauthenticated");
  send_frame(early, 6, "\x01\x00\x63\x00\x00\x00", 6);
  expect_counter_rise(sn, before, "undecodable");
  send_frame(early, 10 * 1024 * 1024, NULL, 0);
  expect_counter_rise(sn, before, "bad_frames");

  /* A flood of UDP junk: dropped and counted. */
  g_autoptr(GSocket) udp =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string(host);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new(address, OVERLAY_PORT);
  for (guint i = 0; i < 500; i++)
    g_socket_send_to(udp, to, "flood", 5, NULL, NULL);
  expect_counter_rise(sn, before, "bad_datagrams");
  g_autoptr(JsonObject) after = overlay_of(sn);
  JsonObject *udp_stats =
    json_object_get_object_member(json_object_get_object_member(after, "transports"), "udp");
  g_assert_cmpint(json_object_get_int_member(udp_stats, "dropped"), >, 0);

  /* And it still serves: a new node joins it and logs in. */
  static const guint first[] = { 0 };
  g_autofree char *bootstrap = bootstrap_of(first, 1);
  g_autofree char *user = NULL;
  g_autoptr(LabNode) node = client_new("after-the-flood", "udp tcp", bootstrap, lab.web_tls, &user);
  g_assert_nonnull(node);
}

/* The next message on a TLS stream of the test's own, or NULL at the end or on error. */
static HarkWireMessage *
read_message(GIOStream *stream)
{
  GInputStream *in = g_io_stream_get_input_stream(stream);
  guint8 header[4];
  gsize got = 0;
  if (!g_input_stream_read_all(in, header, 4, &got, NULL, NULL) || got != 4)
    return NULL;
  guint32 length = (guint32)header[0] << 24 | header[1] << 16 | header[2] << 8 | header[3];
  if (length == 0 || length > HARK_WIRE_MAX_SIZE)
    return NULL;
  g_autofree guint8 *body = g_malloc(length);
  if (!g_input_stream_read_all(in, body, length, &got, NULL, NULL) || got != length)
    return NULL;
  g_autoptr(GBytes) bytes = g_bytes_new(body, length);
  return hark_wire_decode(bytes, NULL);
}

/* Nodes without a certificate (logging in) may hold only max_logging_in places: the next
 * one is refused at once, so strangers cannot fill an SN with unproven links. */
static void
test_logging_in_cap(void)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = case_sn("sn-guarded", 34, "udp tcp", "max_logging_in = 2;", "tcp", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *host = g_strdup_printf("%s.%u", lab.net, 34);
  GIOStream *strangers[3];
  guint16 answers[3];
  for (guint i = 0; i < 3; i++) {
    strangers[i] = tls_to(host, OVERLAY_PORT);
    send_message(strangers[i], HARK_MSG_JOIN,
                 g_variant_new_parsed("({'name': <'stranger'>, 'as': <'client'>},)"));
    g_autoptr(HarkWireMessage) answer = read_message(strangers[i]);
    answers[i] = answer != NULL ? answer->type : 0;
  }
  g_assert_cmpuint(answers[0], ==, HARK_MSG_JOIN_OK);
  g_assert_cmpuint(answers[1], ==, HARK_MSG_JOIN_OK);
  g_assert_cmpuint(answers[2], ==, HARK_MSG_ERROR);
  g_autoptr(HarkWireMessage) after = read_message(strangers[2]);
  g_assert_null(after); /* and closed */
  g_autoptr(JsonObject) overlay = overlay_of(sn);
  g_assert_cmpint(dropped(overlay, "too_many_logging_in"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(overlay, "client_count"), ==, 2);
  for (guint i = 0; i < 3; i++)
    g_object_unref(strangers[i]);
}

/* ---- the SN's doors ------------------------------------------------------------------ */

#define FAILED_HANDSHAKES 1000 /* of each kind, on each port (the SN has 256 slots) */
#define SLOW_SOURCES 8         /* addresses the slow-loris case comes from */
#define SLOW_PER_SOURCE 32
#define SLOW_ROUNDS_OVERLAY 4  /* 4 x 256: 1,024 timed-out handshakes on the overlay port */

static gboolean
nothing_unjoined(JsonObject *overlay, gconstpointer data)
{
  return json_object_get_int_member_with_default(overlay, "unjoined", -1) == 0;
}

/* Silent connections (no TLS at all) from SLOW_SOURCES addresses, SLOW_PER_SOURCE each;
 * every one must be closed by the SN's handshake timeout. */
static gboolean
slow_loris_round(AttackCarrier carrier, const char *host, guint16 port)
{
  g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func((GDestroyNotify)attack_conn_free);
  for (guint s = 0; s < SLOW_SOURCES; s++) {
    g_autofree char *source = g_strdup_printf("%s.%u", lab.net, 200 + s);
    for (guint i = 0; i < SLOW_PER_SOURCE; i++) {
      AttackConn *conn = attack_connect(carrier, source, host, port, "/hark");
      if (conn == NULL)
        return FALSE;
      g_ptr_array_add(conns, conn);
    }
  }
  for (guint i = 0; i < conns->len; i++)
    if (!attack_wait_closed(conns->pdata[i], hark_test_timeout(10000)))
      return FALSE;
  return TRUE;
}

/* Failed handshakes of every kind used to leak one of the SN's 256 handshake slots each,
 * until it refused everyone. Now, after 1,000 of each kind on every port, and 1,024
 * timed-out ones on the overlay port (256 on each web port), a client still joins over
 * each of them. */
static void
test_failed_handshakes(void)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = case_sn("sn-doors", 35, "udp tcp tls443", NULL, "tcp tls443", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *host = g_strdup_printf("%s.%u", lab.net, 35);
  g_autofree char *source = g_strdup_printf("%s.%u", lab.net, 199);
  const struct {
    AttackCarrier carrier;
    guint16 port;
  } doors[] = {
    { ATTACK_TCP, OVERLAY_PORT },
    { ATTACK_TCP, lab.web_tls },
    { ATTACK_WEBSOCKET, lab.web_http },
  };
  static const AttackKind kinds[] = { ATTACK_CLOSE, ATTACK_GARBAGE, ATTACK_ABORT,
                                      ATTACK_UNTRUSTED };
  const guint count = FAILED_HANDSHAKES;
  gint64 started = g_get_monotonic_time();
  guint failed = 0, slow = 0;
  for (guint d = 0; d < G_N_ELEMENTS(doors); d++) {
    for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
      for (guint i = 0; i < count; i++)
        if (!attack_failed_handshake(kinds[k], doors[d].carrier, source, host, doors[d].port,
                                     "/hark"))
          failed++;
    }
    /* Timed-out handshakes: at most 256 can be in progress at once (32 from each of 8
     * addresses), so 1,024 take four rounds on the overlay port; one round on each web
     * port shows those doors give their slots back too. */
    guint rounds = d == 0 ? SLOW_ROUNDS_OVERLAY : 1;
    for (guint r = 0; r < rounds; r++)
      g_assert_true(slow_loris_round(doors[d].carrier, host, doors[d].port));
    slow += rounds * SLOW_SOURCES * SLOW_PER_SOURCE;
  }
  g_test_message("%u failed handshakes in %.1f s, %u of them timed out (%u did not end as "
                 "expected)", (guint)(G_N_ELEMENTS(doors) * G_N_ELEMENTS(kinds) * count + slow),
                 (g_get_monotonic_time() - started) / 1e6, slow, failed);
  g_assert_cmpuint(failed, ==, 0);
  g_autoptr(JsonObject) quiet = wait_overlay(sn, nothing_unjoined, NULL, 5000, "without unjoined links");
  HARK_REQUIRE(quiet != NULL);
  g_assert_cmpint(dropped(quiet, "handshake_failures"), >=,
                  (gint64)(G_N_ELEMENTS(doors) * 3 * count));
  /* And every door still opens: tcp, TLS on the web port, the WebSocket. */
  g_autofree char *user1 = NULL, *user2 = NULL, *user3 = NULL;
  g_autoptr(LabNode) over_tcp = client_new("after-doors-tcp", "tcp", only, lab.web_tls, &user1);
  HARK_REQUIRE(over_tcp != NULL);
  g_autoptr(LabNode) over_tls = client_new("after-doors-tls", "tls443", only, lab.web_tls, &user2);
  HARK_REQUIRE(over_tls != NULL);
  g_assert_true(is_attached(overlay_of(over_tls), "tls443"));
  guint16 closed = 0;
  g_autoptr(GSocket) held = hark_test_closed_port(&closed);
  HARK_REQUIRE(held != NULL);
  g_autoptr(LabNode) over_ws = client_new("after-doors-ws", "tls443", only, closed, &user3);
  HARK_REQUIRE(over_ws != NULL);
  g_autoptr(JsonObject) at_sn = wait_overlay(sn, serves_user, user3, JOIN_MS, "serving the ws client");
  g_assert_nonnull(at_sn);
}

/* A TLS link from source that never sends JOIN; NULL when the SN refuses it (it does
 * so on accepting, before any TLS). */
static GIOStream *
idle_tls_from(const char *source, const char *host, guint16 port)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_timeout(client, 5);
  g_socket_client_set_enable_proxy(client, FALSE);
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(source);
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new(inet, 0);
  g_socket_client_set_local_address(client, local);
  g_autoptr(GSocketConnection) tcp = g_socket_client_connect_to_host(client, host, port, NULL, NULL);
  if (tcp == NULL)
    return NULL;
  g_autoptr(GIOStream) tls = g_tls_client_connection_new(G_IO_STREAM(tcp), NULL, NULL);
  g_signal_connect(tls, "accept-certificate", G_CALLBACK(accept_any), NULL);
  if (!g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, NULL))
    return NULL;
  return g_steal_pointer(&tls);
}

static gint64
unjoined_of(JsonObject *overlay)
{
  return json_object_get_int_member_with_default(overlay, "unjoined", -1);
}

/* Links that are up but never JOIN used to be held without a cap: now at most 32 from
 * one address and 256 in all, and a client from elsewhere still joins. */
static void
test_unjoined_cap(void)
{
  g_autofree char *only = NULL;
  /* 257 links are opened one after another (TLS handshakes each): under a sanitizer that
   * takes longer than the usual JOIN deadline, which would free places as it goes. */
  sn_handshake_timeout_ms = 60000;
  g_autoptr(LabNode) sn = case_sn("sn-unjoined", 36, "udp tcp", NULL, "tcp", &only);
  sn_handshake_timeout_ms = 0;
  HARK_REQUIRE(sn != NULL);
  g_autofree char *host = g_strdup_printf("%s.%u", lab.net, 36);
  g_autoptr(GPtrArray) idle = g_ptr_array_new_with_free_func(g_object_unref);
  g_autofree char *first = g_strdup_printf("%s.%u", lab.net, 210);
  for (guint i = 0; i < 32; i++) {
    GIOStream *tls = idle_tls_from(first, host, OVERLAY_PORT);
    HARK_REQUIRE(tls != NULL);
    g_ptr_array_add(idle, tls);
  }
  g_autoptr(GIOStream) one_more = idle_tls_from(first, host, OVERLAY_PORT);
  g_assert_null(one_more);
  g_autoptr(JsonObject) per_source = overlay_of(sn);
  g_assert_cmpint(dropped(per_source, "too_many_from_source"), ==, 1);
  g_assert_cmpint(unjoined_of(per_source), ==, 32);
  g_autofree char *user1 = NULL;
  g_autoptr(LabNode) client = client_new("beside-idle-links", "tcp", only, lab.web_tls, &user1);
  HARK_REQUIRE(client != NULL);

  /* Seven more addresses fill the 256; the 257th link is refused from anywhere. */
  for (guint s = 1; s < 8; s++) {
    g_autofree char *source = g_strdup_printf("%s.%u", lab.net, 210 + s);
    for (guint i = 0; i < 32; i++) {
      GIOStream *tls = idle_tls_from(source, host, OVERLAY_PORT);
      HARK_REQUIRE(tls != NULL);
      g_ptr_array_add(idle, tls);
    }
  }
  g_autofree char *ninth = g_strdup_printf("%s.%u", lab.net, 218);
  g_autoptr(GIOStream) refused = idle_tls_from(ninth, host, OVERLAY_PORT);
  g_assert_null(refused);
  g_autoptr(JsonObject) full = overlay_of(sn);
  g_assert_cmpint(dropped(full, "too_many_handshakes"), ==, 1);
  g_assert_cmpint(unjoined_of(full), ==, 256);

  /* They go (closed here, or at the SN's JOIN deadline): the places are free again. */
  g_ptr_array_set_size(idle, 0);
  g_autoptr(JsonObject) freed = wait_overlay(sn, nothing_unjoined, NULL, 10000, "without unjoined links");
  HARK_REQUIRE(freed != NULL);
  g_autofree char *user2 = NULL;
  g_autoptr(LabNode) later = client_new("after-idle-links", "tcp", only, lab.web_tls, &user2);
  g_assert_nonnull(later);
}

/* A JOIN name with a newline once forged a line in the SN's log: such names (and
 * bidirectional overrides) are refused with 400, and nothing of them is logged raw. */
static void
test_join_name_injection(void)
{
  LabNode *sn = lab.sns[0];
  HARK_REQUIRE(sn != NULL && sn->ctl != NULL);
  g_autofree char *host = sn_address(0);
  static const char *const names[] = {
    "x\n12:00:00.000 hark message: client joined: forged-admin",
    "\xe2\x80\xae" "nimda-degrof",
  };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autoptr(GIOStream) tls = tls_to(host, OVERLAY_PORT);
    GVariantBuilder dict;
    g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string(names[i]));
    g_variant_builder_add(&dict, "{sv}", "as", g_variant_new_string("client"));
    send_message(tls, HARK_MSG_JOIN, g_variant_new("(a{sv})", &dict));
    g_autoptr(HarkWireMessage) answer = read_message(tls);
    g_assert_nonnull(answer);
    g_assert_cmpuint(answer != NULL ? answer->type : 0, ==, HARK_MSG_ERROR);
    guint32 code = 0;
    if (answer != NULL)
      g_variant_get(answer->body, "(u&s)", &code, NULL);
    g_assert_cmpuint(code, ==, 400);
  }
  g_autofree char *log = hark_test_node_read_stderr(sn->node);
  g_auto(GStrv) lines = g_strsplit(log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_assert_false(g_str_has_prefix(lines[i], "12:00:00.000"));
    g_assert_null(strstr(lines[i], "forged-admin"));
    g_assert_null(strstr(lines[i], "\xe2\x80\xae"));
  }
}

/* ---- UDP amplification ------------------------------------------------------------------ */

static GSocket *
udp_from(const char *source)
{
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(source);
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new(inet, 0);
  if (socket == NULL || !g_socket_bind(socket, local, FALSE, NULL))
    return NULL;
  return g_steal_pointer(&socket);
}

/* The size of the next datagram within timeout_ms, or -1. */
static gssize
udp_answer(GSocket *socket, guint timeout_ms)
{
  if (!g_socket_condition_timed_wait(socket, G_IO_IN, (gint64)timeout_ms * 1000, NULL, NULL))
    return -1;
  guint8 buffer[2048];
  return g_socket_receive(socket, (char *)buffer, sizeof buffer, NULL, NULL);
}

static GBytes *
probe_bytes(gsize pad)
{
  g_autofree guint8 *zeros = g_malloc0(pad + 1);
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string("x"));
  if (pad > 0)
    g_variant_builder_add(&dict, "{sv}", "pad",
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, zeros, pad, 1));
  return hark_wire_encode(HARK_MSG_PROBE, 7, g_variant_new("(a{sv})", &dict), NULL);
}

/* A spoofed PROBE must not make the SN send more than it got: a small one goes
 * unanswered, a padded one gets an answer no larger. */
static void
test_probe_amplification(void)
{
  LabNode *sn = lab.sns[0];
  HARK_REQUIRE(sn != NULL && sn->ctl != NULL);
  g_autofree char *host = sn_address(0);
  g_autofree char *source = g_strdup_printf("%s.%u", lab.net, 160);
  g_autoptr(GSocket) socket = udp_from(source);
  HARK_REQUIRE(socket != NULL);
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(host);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new(inet, OVERLAY_PORT);
  g_autoptr(JsonObject) before = overlay_of(sn);

  g_autoptr(GBytes) small = probe_bytes(0);
  gsize small_size = g_bytes_get_size(small);
  g_socket_send_to(socket, to, g_bytes_get_data(small, NULL), small_size, NULL, NULL);
  g_assert_cmpint(udp_answer(socket, 500), ==, -1);
  expect_counter_rise(sn, before, "probes_too_small");

  g_autoptr(GBytes) padded = probe_bytes(480);
  gsize padded_size = g_bytes_get_size(padded);
  g_socket_send_to(socket, to, g_bytes_get_data(padded, NULL), padded_size, NULL, NULL);
  gssize answer = udp_answer(socket, 2000);
  g_test_message("PROBE of %zu bytes: no answer; of %zu bytes: %zd bytes back (x%.2f)",
                 small_size, padded_size, answer, (double)answer / (double)padded_size);
  g_assert_cmpint(answer, >, 0);
  g_assert_cmpint(answer, <=, (gssize)padded_size);
}

/* One source flooding the SN's second STUN port used to empty the bucket that port
 * shares with everyone: now each source has its own. */
static void
test_stun_flood_per_source(void)
{
  LabNode *sn = lab.sns[1];
  HARK_REQUIRE(sn != NULL && sn->ctl != NULL);
  g_autofree char *host = sn_address(1);
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(host);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new(inet, OVERLAY_PORT + 1);
  g_autofree char *flooder_address = g_strdup_printf("%s.%u", lab.net, 161);
  g_autofree char *other_address = g_strdup_printf("%s.%u", lab.net, 162);
  g_autoptr(GSocket) flooder = udp_from(flooder_address);
  g_autoptr(GSocket) other = udp_from(other_address);
  HARK_REQUIRE(flooder != NULL && other != NULL);
  guint8 request[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42 };
  for (guint i = 8; i < 20; i++)
    request[i] = (guint8)g_random_int();
  g_autoptr(JsonObject) before = overlay_of(sn);
  for (guint i = 0; i < 2000; i++)
    g_socket_send_to(flooder, to, (const char *)request, sizeof request, NULL, NULL);
  expect_counter_rise(sn, before, "stun_flood");
  /* The flood is still being dropped; another source is answered. Its request may be
   * lost with the flood's in the socket's full receive queue when the SN is slow (a
   * sanitizer build): a few tries, as any STUN client makes. */
  gssize answer = -1;
  for (guint attempt = 0; attempt < 5 && answer < 0; attempt++) {
    for (guint i = 0; i < 40; i++)
      g_socket_send_to(flooder, to, (const char *)request, sizeof request, NULL, NULL);
    g_socket_send_to(other, to, (const char *)request, sizeof request, NULL, NULL);
    answer = udp_answer(other, 1000);
  }
  g_assert_cmpint(answer, >=, 32);
  guint flood_answers = 0;
  while (udp_answer(flooder, 0) > 0)
    flood_answers++;
  g_test_message("the flooder got %u answers to 2000-2200 requests; the other source was answered "
                 "(%zd bytes)", flood_answers, answer);
  g_assert_cmpuint(flood_answers, <, 200);
}

/* ---- a malicious SN ------------------------------------------------------------------- */

#define EVIL_HOST 40
#define VICTIM_HOST 77
#define REDIRECT_ENTRIES 1000
#define SN_LISTS 14

/* An SN built in this process on libhark's links, with a certificate of its own test CA
 * (the client pins that CA): its first JOIN gets a REDIRECT naming REDIRECT_ENTRIES
 * SNs at a victim, the next a JOIN_OK whose list holds bad host strings, then
 * SN_LISTS SN_LISTs of fresh names. */
typedef struct {
  guint joins;
  guint lists_sent;
  gboolean ponged; /* the client answered the PING sent after the lists: it read them */
} EvilSn;

static GVariant *
evil_list(guint first, guint count, gboolean bad_hosts)
{
  static const char *const bad[] = { "localhost", "0", "-", "0.0.0.0", "224.0.0.1",
                                     "255.255.255.255", "169.254.1.1", "::1x", "sn\nforged" };
  GVariantBuilder builder;
  g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sqas)"));
  const char *const tcp_only[] = { "tcp", NULL };
  for (guint i = 0; bad_hosts && i < G_N_ELEMENTS(bad); i++)
    g_variant_builder_add(&builder, "(sq^as)", bad[i], OVERLAY_PORT, tcp_only);
  for (guint i = 0; i < count; i++) {
    g_autofree char *host = g_strdup_printf("%s.%u", lab.net, VICTIM_HOST);
    g_variant_builder_add(&builder, "(sq^as)", host, (guint16)(20000 + first + i), tcp_only);
  }
  return g_variant_builder_end(&builder);
}

static void
evil_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  EvilSn *evil = data;
  if (message->type == HARK_MSG_PONG)
    evil->ponged = TRUE;
  if (message->type != HARK_MSG_JOIN)
    return;
  if (evil->joins++ == 0) {
    hark_link_send(link, HARK_MSG_REDIRECT, message->id,
                   g_variant_new("(@a(sqas))", evil_list(0, REDIRECT_ENTRIES, FALSE)), NULL);
    return;
  }
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string("evil\nforged line"));
  g_variant_builder_add(&dict, "{sv}", "keepalive", g_variant_new_uint32(30));
  g_variant_builder_add(&dict, "{sv}", "authenticated", g_variant_new_boolean(TRUE));
  g_variant_builder_add(&dict, "{sv}", "sns", evil_list(5000, 4, TRUE));
  hark_link_send(link, HARK_MSG_JOIN_OK, message->id, g_variant_new("(a{sv})", &dict), NULL);
  for (guint i = 0; i < SN_LISTS; i++, evil->lists_sent++)
    hark_link_send(link, HARK_MSG_SN_LIST, 0,
                   g_variant_new("(@a(sqas))", evil_list(10000 + i * 16, 16, i == 0)), NULL);
  hark_link_send(link, HARK_MSG_PING, 1, g_variant_new("(t)", (guint64)0), NULL);
}

static void
evil_closed(HarkLink *link, const GError *error, gpointer data)
{
}

static const HarkLinkHandler evil_handler = {
  .message = evil_message,
  .closed = evil_closed,
};

static GPtrArray *evil_links;

static void
evil_accepted(HarkLink *link, gpointer data)
{
  hark_link_set_handler(link, &evil_handler, data);
  g_ptr_array_add(evil_links, link);
}

typedef struct {
  HarkTestNode *node;
  const char *text;
} LogWait;

static gboolean
log_has(gpointer data)
{
  LogWait *wait = data;
  g_autofree char *log = hark_test_node_read_stderr(wait->node);
  return log != NULL && strstr(log, wait->text) != NULL;
}

static gboolean
flag_set(gpointer data)
{
  return *(gboolean *)data;
}

/* How many different "host:port" follow text in the log. */
static guint
count_distinct_after(const char *log, const char *text)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (const char *p = strstr(log, text); p != NULL; p = strstr(p + 1, text)) {
    const char *start = p + strlen(text);
    g_hash_table_add(seen, g_strndup(start, strcspn(start, " \n")));
  }
  return g_hash_table_size(seen);
}

static void
test_malicious_sn(void)
{
  HarkTestNet net;
  hark_test_net_init(&net, "hark-evil-XXXXXX");
  evil_links = g_ptr_array_new_with_free_func((GDestroyNotify)hark_link_free);
  EvilSn evil = { 0 };
  HarkNode *sn = hark_test_net_node(&net, "evil-sn", net.ca, net.ca,
                                    "plugins = { load = ( { name = \"tcp\"; } ); };\n");
  hark_link_set_network_handlers(sn, evil_accepted, NULL, &evil);
  HarkRegistration *tcp = hark_test_transport(sn, "tcp");
  const HarkTransportInterface *iface = tcp->iface;
  g_autofree char *evil_host = g_strdup_printf("%s.%u", lab.net, EVIL_HOST);
  g_autoptr(GError) error = NULL;
  g_assert_true(iface->listen(tcp->instance, evil_host, OVERLAY_PORT, &error));
  g_assert_no_error(error);

  g_autofree char *config = g_strdup_printf(
    "node: { name = \"victim-of-evil\"; supernode = false; };\n"
    "plugins: { load = ( { name = \"tcp\"; }, { name = \"ctl\"; } ); };\n"
    "network: { keepalive = 30; allow_loopback = true; join_race_delay_ms = 100;\n"
    "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"tcp\" ]; } ); };\n"
    "login: { url = \"https://127.0.0.1:9/\"; ca = \"%s\"; };\n",
    evil_host, OVERLAY_PORT, net.ca_path);
  g_autoptr(LabNode) client = lab_node_new("victim-of-evil", config);
  gboolean started = lab_node_start(client);
  g_assert_true(started);
  LogWait attached = { client->node, "joined: attached" };
  gboolean joined = started && hark_test_wait_for(log_has, &attached, JOIN_MS);
  g_assert_true(joined);
  /* Every SN_LIST sent is read: they came before the PING it answered. */
  g_assert_true(hark_test_wait_for(flag_set, &evil.ponged, 5000));
  g_autoptr(JsonObject) overlay = joined ? overlay_of(client) : NULL;
  g_autofree char *log = hark_test_node_read_stderr(client->node);

  /* The REDIRECT of 1,000 SNs: at most 16 connection attempts at the victim. */
  g_autofree char *victim = g_strdup_printf("join: tcp to %s.%u:", lab.net, VICTIM_HOST);
  guint attempts = count_distinct_after(log, victim);
  g_test_message("%u SNs tried after a REDIRECT of %u", attempts, REDIRECT_ENTRIES);
  g_assert_cmpuint(attempts, >=, 1);
  g_assert_cmpuint(attempts, <=, 16);
  /* No log line carries the peer's lists or a forged line. */
  g_auto(GStrv) lines = g_strsplit(log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_assert_cmpuint(strlen(lines[i]), <, 1000);
    g_assert_false(g_str_has_prefix(lines[i], "forged"));
  }
  g_assert_nonnull(strstr(log, "evil\\x0aforged line"));

  /* The host cache: no bad host string, at most 16 entries from that SN, the bootstrap
   * SN still there and first. */
  g_autofree char *cache_path = g_build_filename(client->node->state_dir, "hostcache.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  g_assert_true(json_parser_load_from_file(parser, cache_path, NULL));
  JsonArray *entries =
    json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)), "entries");
  guint learnt = 0;
  for (guint i = 0; i < json_array_get_length(entries); i++) {
    JsonObject *entry = json_array_get_object_element(entries, i);
    const char *host = json_object_get_string_member(entry, "host");
    g_assert_true(g_str_has_prefix(host, lab.net));
    if (json_object_has_member(entry, "learnt_from"))
      learnt++;
  }
  g_assert_cmpuint(learnt, <=, 16);
  g_assert_cmpuint(json_array_get_length(entries), ==, learnt + 1);
  g_assert_cmpuint(evil.lists_sent, ==, SN_LISTS);
  g_assert_nonnull(overlay);
  g_assert_cmpint(json_object_get_int_member(overlay, "host_cache"), <=, 17);

  g_clear_pointer(&client, lab_node_free);
  iface->stop_listening(tcp->instance);
  g_ptr_array_unref(evil_links);
  net.links->len = 0; /* freed above */
  hark_test_net_clear(&net);
}

/* An SN peer (certified by the lab's CA, built in this process) floods a real SN with
 * SN_LISTs of SNs that do not exist: the SN keeps at most 16 of them, keeps every SN it
 * knew, and hands none of them to a new client. */
typedef struct {
  gboolean joined;
  gboolean ponged;
} FloodingPeer;

static void
flooding_peer_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  FloodingPeer *peer = data;
  if (message->type == HARK_MSG_JOIN_OK)
    peer->joined = TRUE;
  else if (message->type == HARK_MSG_PONG)
    peer->ponged = TRUE;
}

static const HarkLinkHandler flooding_peer_handler = {
  .message = flooding_peer_message,
  .closed = evil_closed,
};

static gboolean
link_is_up(gpointer data)
{
  HarkTestOpened *opened = data;
  return opened->link != NULL && hark_link_get_state(opened->link) == HARK_LINK_UP;
}

/* host:port strings of an a(sqas). */
static GHashTable *
list_members(GVariant *list)
{
  GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (gsize i = 0; list != NULL && i < g_variant_n_children(list); i++) {
    const char *host;
    guint16 port;
    g_variant_get_child(list, i, "(&sq@as)", &host, &port, NULL);
    g_hash_table_add(set, g_strdup_printf("%s:%u", host, port));
  }
  return set;
}

static GHashTable *
cache_members(LabNode *node)
{
  g_autofree char *path = g_build_filename(node->node->state_dir, "hostcache.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  if (!json_parser_load_from_file(parser, path, NULL))
    return set;
  JsonArray *entries =
    json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)), "entries");
  for (guint i = 0; i < json_array_get_length(entries); i++) {
    JsonObject *entry = json_array_get_object_element(entries, i);
    g_hash_table_add(set, g_strdup_printf("%s:%" G_GINT64_FORMAT,
                                          json_object_get_string_member(entry, "host"),
                                          json_object_get_int_member(entry, "port")));
  }
  return set;
}

/* The SN lists the link named data among its SN links, verified (a link of its own to
 * the address that link announced showed the same key). */
static gboolean
sn_peer_verified(JsonObject *overlay, gconstpointer data)
{
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  for (guint i = 0; links != NULL && i < json_array_get_length(links); i++) {
    JsonObject *link = json_array_get_object_element(links, i);
    if (g_strcmp0(member_string(link, "name"), data) == 0)
      return json_object_get_boolean_member_with_default(link, "verified", FALSE);
  }
  return FALSE;
}

/* An SN peer the SN verified (it listens at the address it announces, with the lab CA's
 * certificate) floods it with SN_LISTs of SNs that do not exist: the SN keeps at most 16
 * of them, loses none it knew, and names none to a new client. */
static void
test_sn_list_flood(void)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = case_sn("sn-listening", 37, "udp tcp", NULL, "tcp", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *sn_host = g_strdup_printf("%s.%u", lab.net, 37);
  g_autoptr(GHashTable) known_before = cache_members(sn);
  HARK_REQUIRE(g_hash_table_size(known_before) >= SN_COUNT);

  /* Cleared however the case returns: its link's handler points at peer, below. */
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-peer-XXXXXX");
  g_autoptr(GError) error = NULL;
  g_autofree char *ca_dir = g_build_filename(lab.login->node->node->state_dir, "ca", NULL);
  g_autoptr(HarkCa) lab_ca = hark_ca_load_or_create(ca_dir, "unused: the CA exists", &error);
  g_assert_no_error(error);
  HarkNode *node = hark_test_net_node(&net, "flooding-peer", lab_ca, lab_ca,
                                      "plugins = { load = ( { name = \"tcp\"; } ); };\n");
  HarkRegistration *tcp = hark_test_transport(node, "tcp");
  const HarkTransportInterface *iface = tcp->iface;
  /* Where it says it is: the SN opens a link there to check the claim. */
  g_autofree char *announced = g_strdup_printf("%s.%u", lab.net, 41);
  g_assert_true(iface->listen(tcp->instance, announced, OVERLAY_PORT, &error));
  g_assert_no_error(error);
  HarkTestOpened opened = { 0 };
  iface->open(tcp->instance, sn_host, OVERLAY_PORT, NULL, hark_test_on_opened, &opened);
  gboolean up = hark_test_wait_for(link_is_up, &opened, 5000);
  g_assert_true(up);
  FloodingPeer peer = { 0 };
  if (up) {
    g_ptr_array_add(net.links, opened.link);
    hark_link_set_handler(opened.link, &flooding_peer_handler, &peer);
    const char *const tcp_only[] = { "tcp", NULL };
    GVariantBuilder dict;
    g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string("flooding-peer"));
    g_variant_builder_add(&dict, "{sv}", "as", g_variant_new_string("peer"));
    g_variant_builder_add(&dict, "{sv}", "host", g_variant_new_string(announced));
    g_variant_builder_add(&dict, "{sv}", "port", g_variant_new_uint16(OVERLAY_PORT));
    g_variant_builder_add(&dict, "{sv}", "transports", g_variant_new_strv(tcp_only, -1));
    hark_link_send(opened.link, HARK_MSG_JOIN, 1, g_variant_new("(a{sv})", &dict), NULL);
    g_assert_true(hark_test_wait_for(flag_set, &peer.joined, 5000));
    /* Until verified, its SN_LISTs would be dropped whole: flood once it is an SN. */
    g_autoptr(JsonObject) verified =
      wait_overlay(sn, sn_peer_verified, "flooding-peer", 5000, "verifying flooding-peer");
    HARK_REQUIRE(verified != NULL);
    for (guint i = 0; i < SN_LISTS; i++)
      hark_link_send(opened.link, HARK_MSG_SN_LIST, 2 + i,
                     g_variant_new("(@a(sqas))", evil_list(30000 + i * 16, 16, TRUE)), NULL);
    hark_link_send(opened.link, HARK_MSG_PING, 99, g_variant_new("(t)", (guint64)0), NULL);
    g_assert_true(hark_test_wait_for(flag_set, &peer.ponged, 5000));
  }

  /* At most 16 names from that peer, none pushed out. (The lab's real SNs may tell of
   * the other cases' SNs meanwhile: only the flood's names are counted.) */
  g_autoptr(GHashTable) known_after = cache_members(sn);
  g_autofree char *flooded = g_strdup_printf("%s.%u:", lab.net, VICTIM_HOST);
  guint from_flood = 0;
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, known_after);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    from_flood += g_str_has_prefix(key, flooded);
  g_test_message("host cache: %u entries before %u SN_LISTs of 16, %u after, %u of the flood's",
                 g_hash_table_size(known_before), SN_LISTS, g_hash_table_size(known_after),
                 from_flood);
  g_assert_cmpuint(from_flood, >=, 1);
  g_assert_cmpuint(from_flood, <=, 16);
  g_hash_table_iter_init(&iter, known_before);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    g_assert_true(g_hash_table_contains(known_after, key));
  g_hash_table_iter_init(&iter, known_after);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    g_assert_true(g_str_has_prefix(key, lab.net));

  /* A new client's JOIN_OK names none of them: they never answered. */
  g_autoptr(GIOStream) client = tls_to(sn_host, OVERLAY_PORT);
  send_message(client, HARK_MSG_JOIN,
               g_variant_new_parsed("({'name': <'fresh'>, 'as': <'client'>},)"));
  g_autoptr(HarkWireMessage) answer = read_message(client);
  g_assert_nonnull(answer);
  g_assert_cmpuint(answer != NULL ? answer->type : 0, ==, HARK_MSG_JOIN_OK);
  if (answer != NULL && answer->type == HARK_MSG_JOIN_OK) {
    g_autoptr(GVariant) dict = g_variant_get_child_value(answer->body, 0);
    g_autoptr(GVariant) sns = g_variant_lookup_value(dict, "sns", G_VARIANT_TYPE("a(sqas)"));
    g_autoptr(GHashTable) handed = list_members(sns);
    g_test_message("a new client is told of %u SNs", g_hash_table_size(handed));
    g_hash_table_iter_init(&iter, handed);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
      g_autofree char *victim = g_strdup_printf("%s.%u:", lab.net, VICTIM_HOST);
      g_assert_false(g_str_has_prefix(key, victim));
    }
  }
}


/* ---- nodes that claim to be SNs ------------------------------------------------------- */

/* Certificate and key (PEM, one text) of a new device of user, issued by the lab's CA as
 * the login server issues one to anybody who registers: an ordinary device. */
static char *
ordinary_device_pem(const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("hark-claim-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *key_path = g_build_filename(dir, "identity.pem", NULL);
  g_autoptr(HarkIdentity) identity = hark_identity_load_or_create(key_path, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *public_pem = hark_identity_get_public_pem(identity);
  g_autofree char *ca_dir = g_build_filename(lab.login->node->node->state_dir, "ca", NULL);
  g_autoptr(HarkCa) ca = hark_ca_load_or_create(ca_dir, "unused", &error);
  g_assert_no_error(error);
  g_autofree char *account_id = hark_account_id_new(&error);
  g_assert_no_error(error);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *cert = hark_ca_issue_device(ca, user, account_id, public_pem, now - 60, 3600, &error);
  g_assert_no_error(error);
  g_autofree char *key = NULL;
  g_assert_true(g_file_get_contents(key_path, &key, NULL, &error));
  g_unlink(key_path);
  g_rmdir(dir);
  return g_strconcat(cert, key, NULL);
}

/* The certificate and key of a running node: the test then is that device. */
static char *
device_pem_of(LabNode *node)
{
  g_autofree char *cert_path = g_build_filename(node->node->state_dir, "certificate.pem", NULL);
  g_autofree char *key_path = g_build_filename(node->node->state_dir, "identity.pem", NULL);
  g_autofree char *cert = NULL, *key = NULL;
  g_assert_true(g_file_get_contents(cert_path, &cert, NULL, NULL));
  g_assert_true(g_file_get_contents(key_path, &key, NULL, NULL));
  return g_strconcat(cert, key, NULL);
}

/* A TLS link (GIO's TLS, the frames by hand) that shows the device certificate in pem. */
static GIOStream *
tls_as(const char *host, guint16 port, const char *pem)
{
  g_autoptr(GSocketConnection) tcp = tcp_to(host, port);
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) cert = g_tls_certificate_new_from_pem(pem, -1, &error);
  g_assert_no_error(error);
  GIOStream *tls = g_tls_client_connection_new(G_IO_STREAM(tcp), NULL, &error);
  g_assert_no_error(error);
  g_tls_connection_set_certificate(G_TLS_CONNECTION(tls), cert);
  g_signal_connect(tls, "accept-certificate", G_CALLBACK(accept_any), NULL);
  g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &error);
  g_assert_no_error(error);
  return tls;
}

/* JOIN as a peer that claims to be the SN at claimed_host (the lab's ports); the type of
 * the answer (0: none). */
static guint16
join_as_peer(GIOStream *stream, const char *name, const char *claimed_host)
{
  send_message(stream, HARK_MSG_JOIN,
               g_variant_new_parsed("({'name': <%s>, 'as': <'peer'>, 'host': <%s>, "
                                    "'port': <%q>, 'stun_alt_port': <%q>, "
                                    "'transports': <['udp', 'tcp']>},)",
                                    name, claimed_host, (guint16)OVERLAY_PORT,
                                    (guint16)(OVERLAY_PORT + 1)));
  g_autoptr(HarkWireMessage) answer = read_message(stream);
  return answer != NULL ? answer->type : 0;
}

/* STUN_RELAY: "send a binding success to host:port". */
static void
send_relay(GIOStream *stream, const char *host, guint16 port)
{
  guint8 tid[12];
  for (guint i = 0; i < sizeof tid; i++)
    tid[i] = (guint8)g_random_int();
  GVariant *id = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, tid, sizeof tid, 1);
  send_message(stream, HARK_MSG_STUN_RELAY,
               g_variant_new("(sqqb@ay)", host, port, (guint16)0, FALSE, id));
}

/* The sn_links entry of the overlay named name, or NULL. */
static JsonObject *
sn_link_named(JsonObject *overlay, const char *name)
{
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  for (guint i = 0; links != NULL && i < json_array_get_length(links); i++) {
    JsonObject *link = json_array_get_object_element(links, i);
    if (g_strcmp0(member_string(link, "name"), name) == 0)
      return link;
  }
  return NULL;
}

static gboolean
link_verified(JsonObject *link)
{
  return link != NULL && json_object_get_boolean_member_with_default(link, "verified", FALSE);
}

/* Are the links named prefix1, prefix2, ... (up to data's count) that the SN lists all
 * verified, and at least one? */
typedef struct {
  const char *prefix;
  guint count;
} NamedLinks;

static gboolean
links_verified(JsonObject *overlay, gconstpointer data)
{
  const NamedLinks *want = data;
  guint seen = 0;
  for (guint i = 1; i <= want->count; i++) {
    g_autofree char *name = g_strdup_printf("%s%u", want->prefix, i);
    JsonObject *link = sn_link_named(overlay, name);
    if (link != NULL && !link_verified(link))
      return FALSE;
    seen += link != NULL;
  }
  return seen > 0;
}

static gboolean
link_gone(JsonObject *overlay, gconstpointer name)
{
  return sn_link_named(overlay, name) == NULL;
}

/* stun_relay_served + stun_relay_refused reached data's value. */
static gboolean
relays_counted(JsonObject *overlay, gconstpointer data)
{
  return dropped(overlay, "stun_relay_served") + dropped(overlay, "stun_relay_refused") >=
         *(const gint64 *)data;
}

/* A node with an ordinary certificate claims to be an SN at an address where a port is
 * open but no SN answers (the lab's lowest address, so it would be the RFC 5780
 * partner): it is not taken as an SN (no STUN_RELAY served, never the partner), and
 * once the SN's own link there fails, the claim is refused and the link closed. So is
 * a claim of a real SN's address. */
static void
test_sn_claim_unverified(void)
{
  LabNode *sn = lab.sns[0];
  HARK_REQUIRE(sn != NULL && sn->ctl != NULL);
  g_autofree char *host = sn_address(0);
  g_autofree char *claimed = g_strdup_printf("%s.%u", lab.net, 10);
  g_autoptr(GSocketListener) silent = g_socket_listener_new();
  g_autoptr(GInetAddress) claimed_ip = g_inet_address_new_from_string(claimed);
  g_autoptr(GSocketAddress) claimed_at = g_inet_socket_address_new(claimed_ip, OVERLAY_PORT);
  HARK_REQUIRE(g_socket_listener_add_address(silent, claimed_at, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL, NULL, NULL));
  g_autofree char *pem = ordinary_device_pem("mallory");
  g_autoptr(JsonObject) before = overlay_of(sn);
  HARK_REQUIRE(before != NULL);

  g_autoptr(GIOStream) mallory = tls_as(host, OVERLAY_PORT, pem);
  HARK_REQUIRE(join_as_peer(mallory, "mallory-sn", claimed) == HARK_MSG_JOIN_OK);
  for (guint i = 0; i < 5; i++)
    send_relay(mallory, "127.0.0.1", 9);
  gint64 counted = dropped(before, "stun_relay_served") + dropped(before, "stun_relay_refused") + 5;
  g_autoptr(JsonObject) after = wait_overlay(sn, relays_counted, &counted, 5000, "relays counted");
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(dropped(after, "stun_relay_served"), ==, dropped(before, "stun_relay_served"));
  g_assert_cmpint(dropped(after, "stun_relay_refused"), ==,
                  dropped(before, "stun_relay_refused") + 5);
  JsonObject *link = sn_link_named(after, "mallory-sn");
  g_assert_nonnull(link);
  g_assert_false(link_verified(link));
  JsonObject *stun = json_object_get_object_member(after, "stun");
  g_autofree char *fake_other = g_strdup_printf("%s:%u", claimed, OVERLAY_PORT + 1);
  g_assert_cmpstr(member_string(stun, "other_address"), !=, fake_other);
  g_assert_cmpstr(member_string(stun, "partner"), !=, "mallory-sn");

  /* The SN's link to the claimed address never finishes its handshake: refused, closed. */
  g_autoptr(HarkWireMessage) refusal = read_message(mallory);
  g_assert_nonnull(refusal);
  g_assert_cmpuint(refusal != NULL ? refusal->type : 0, ==, HARK_MSG_ERROR);
  g_autoptr(HarkWireMessage) end = read_message(mallory);
  g_assert_null(end);
  g_autoptr(JsonObject) closed = wait_overlay(sn, link_gone, "mallory-sn", 5000, "closed");
  HARK_REQUIRE(closed != NULL);
  g_assert_cmpint(dropped(closed, "sn_claims_refused"), ==, dropped(before, "sn_claims_refused") + 1);
  g_assert_cmpstr(member_string(json_object_get_object_member(closed, "stun"), "other_address"),
                  !=, fake_other);

  /* Claiming a real SN's address (sn2's): sn1's link there shows sn2's key, not this one. */
  g_autofree char *sn2 = sn_address(1);
  g_autoptr(GIOStream) impostor = tls_as(host, OVERLAY_PORT, pem);
  HARK_REQUIRE(join_as_peer(impostor, "impostor-sn", sn2) == HARK_MSG_JOIN_OK);
  g_autoptr(HarkWireMessage) refused = read_message(impostor);
  g_assert_cmpuint(refused != NULL ? refused->type : 0, ==, HARK_MSG_ERROR);
  g_autoptr(JsonObject) last = wait_overlay(sn, link_gone, "impostor-sn", 5000, "closed");
  HARK_REQUIRE(last != NULL);
  g_assert_cmpint(dropped(last, "sn_claims_refused"), ==, dropped(before, "sn_claims_refused") + 2);
}

/* A verified SN device (the test holds sn3's certificate and key) asks sn1 for answers
 * to addresses no SN may send to: the unspecified, link-local, multicast and broadcast
 * addresses and sn1's own are refused; loopback is served here (network.allow_loopback
 * is set in this lab, the nodes all run on 127.x). */
static void
test_sn_relay_targets(void)
{
  LabNode *sn = lab.sns[0];
  HARK_REQUIRE(sn != NULL && lab.sns[2] != NULL);
  g_autofree char *host = sn_address(0);
  g_autofree char *twin_of = sn_address(2);
  g_autofree char *pem = device_pem_of(lab.sns[2]);
  g_autoptr(GIOStream) twin = tls_as(host, OVERLAY_PORT, pem);
  HARK_REQUIRE(join_as_peer(twin, "twin1", twin_of) == HARK_MSG_JOIN_OK);
  NamedLinks one = { "twin", 1 };
  g_autoptr(JsonObject) before = wait_overlay(sn, links_verified, &one, 5000, "verified");
  HARK_REQUIRE(before != NULL);
  static const char *const refused[] = { "0.0.0.0", "169.254.10.20", "224.0.0.1",
                                         "255.255.255.255", "fe80::1", "ff02::1",
                                         "::ffff:169.254.1.1", NULL };
  for (guint i = 0; refused[i] != NULL; i++)
    send_relay(twin, refused[i], 9);
  send_relay(twin, host, 9); /* sn1 itself */
  send_relay(twin, "127.0.0.1", 9);
  gint64 n = g_strv_length((char **)refused) + 2;
  gint64 counted = dropped(before, "stun_relay_served") + dropped(before, "stun_relay_refused") + n;
  g_autoptr(JsonObject) after = wait_overlay(sn, relays_counted, &counted, 5000, "relays counted");
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(dropped(after, "stun_relay_served"), ==, dropped(before, "stun_relay_served") + 1);
  g_assert_cmpint(dropped(after, "stun_relay_refused"), ==,
                  dropped(before, "stun_relay_refused") + n - 1);
  g_clear_object(&twin);
  g_autoptr(JsonObject) gone = wait_overlay(sn, link_gone, "twin1", 5000, "closed");
  g_assert_nonnull(gone);
}

/* The same with network.allow_loopback false, on an SN of its own (bootstrapped with
 * sn3 alone, so it links to sn3 itself and so knows sn3's key at sn3's address):
 * loopback, as IPv4, IPv6 and IPv4-mapped, and link-local addresses are refused; an
 * ordinary address is served. */
static void
test_sn_relay_strict(void)
{
  HARK_REQUIRE(lab.sns[2] != NULL);
  g_autofree char *host = g_strdup_printf("%s.%u", lab.net, 36);
  static const guint third[] = { 2 };
  g_autofree char *bootstrap = bootstrap_of(third, 1);
  g_autofree char *loose = sn_config("sn-strict", host, "udp tcp", bootstrap, NULL);
  g_autoptr(GString) config = g_string_new(loose);
  HARK_REQUIRE(g_string_replace(config, "allow_loopback = true", "allow_loopback = false", 0) == 1);
  g_autoptr(LabNode) sn = lab_node_new("sn-strict", config->str);
  HARK_REQUIRE(lab_node_start(sn));
  g_autofree char *user = g_strdup_printf("sn-strict-%u", g_random_int());
  HARK_REQUIRE(lab_register_and_login(sn, user));
  g_autoptr(JsonObject) serving =
    wait_overlay(sn, is_super, GUINT_TO_POINTER(1), JOIN_MS, "serving, linked to sn3");
  HARK_REQUIRE(serving != NULL);

  g_autofree char *twin_of = sn_address(2);
  g_autofree char *pem = device_pem_of(lab.sns[2]);
  g_autoptr(GIOStream) twin = tls_as(host, OVERLAY_PORT, pem);
  HARK_REQUIRE(join_as_peer(twin, "strict-twin1", twin_of) == HARK_MSG_JOIN_OK);
  NamedLinks one = { "strict-twin", 1 };
  g_autoptr(JsonObject) before = wait_overlay(sn, links_verified, &one, 5000, "verified");
  HARK_REQUIRE(before != NULL);
  static const char *const refused[] = { "127.0.0.1", "::1", "::ffff:127.0.0.1", "127.1.2.3",
                                         "169.254.1.1", NULL };
  for (guint i = 0; refused[i] != NULL; i++)
    send_relay(twin, refused[i], 9);
  send_relay(twin, host, 9);         /* itself */
  send_relay(twin, "192.0.2.1", 9);  /* TEST-NET-1: served (nothing leaves a loopback socket) */
  gint64 n = g_strv_length((char **)refused) + 2;
  gint64 counted = dropped(before, "stun_relay_served") + dropped(before, "stun_relay_refused") + n;
  g_autoptr(JsonObject) after = wait_overlay(sn, relays_counted, &counted, 5000, "relays counted");
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(dropped(after, "stun_relay_served"), ==, dropped(before, "stun_relay_served") + 1);
  g_assert_cmpint(dropped(after, "stun_relay_refused"), ==,
                  dropped(before, "stun_relay_refused") + n - 1);
}

/* Five links from one verified SN device (sn3's certificate and key again): links past
 * the per-device limit are refused, and the ones taken share one STUN_RELAY budget
 * (20 a second, burst 40), not one each. */
static void
test_sn_relay_budget(void)
{
  LabNode *sn = lab.sns[0];
  HARK_REQUIRE(sn != NULL && lab.sns[2] != NULL);
  g_autofree char *host = sn_address(0);
  g_autofree char *twin_of = sn_address(2);
  g_autofree char *pem = device_pem_of(lab.sns[2]);
  g_autoptr(GSocket) target =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_from_string("127.0.0.1");
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  HARK_REQUIRE(g_socket_bind(target, any, FALSE, NULL));
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(target, NULL);
  guint16 target_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
  g_autoptr(JsonObject) start = overlay_of(sn);
  HARK_REQUIRE(start != NULL);

  GIOStream *links[5] = { NULL };
  gboolean taken[5] = { FALSE };
  guint n_taken = 0;
  for (guint i = 0; i < 5; i++) {
    g_autofree char *name = g_strdup_printf("budget%u", i + 1);
    links[i] = tls_as(host, OVERLAY_PORT, pem);
    taken[i] = join_as_peer(links[i], name, twin_of) == HARK_MSG_JOIN_OK;
    n_taken += taken[i];
  }
  /* sn3's own link (if it opened one to sn1) counts too: at most 4 a device. */
  g_assert_cmpuint(n_taken, >=, 3);
  g_assert_cmpuint(n_taken, <=, 4);
  NamedLinks five_links = { "budget", 5 };
  g_autoptr(JsonObject) before = wait_overlay(sn, links_verified, &five_links, 5000, "verified");
  HARK_REQUIRE(before != NULL);
  g_assert_cmpint(dropped(before, "sn_claims_refused"), ==,
                  dropped(start, "sn_claims_refused") + 5 - n_taken);

  gint64 t0 = g_get_monotonic_time();
  guint sent = 0;
  for (guint i = 0; i < 5; i++)
    for (guint k = 0; taken[i] && k < 40; k++, sent++)
      send_relay(links[i], "127.0.0.1", target_port);
  gint64 counted = dropped(before, "stun_relay_served") + dropped(before, "stun_relay_refused") + sent;
  g_autoptr(JsonObject) after = wait_overlay(sn, relays_counted, &counted, 5000, "relays counted");
  HARK_REQUIRE(after != NULL);
  double seconds = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
  gint64 served = dropped(after, "stun_relay_served") - dropped(before, "stun_relay_served");
  g_test_message("%u STUN_RELAYs over %u links in %.2f s: %" G_GINT64_FORMAT " served", sent,
                 n_taken, seconds, served);
  g_assert_cmpint(served, >=, 1);
  g_assert_cmpint(served, <=, 40 + (gint64)(20 * seconds) + 1);
  /* What was served arrived, from sn1. */
  guint8 buffer[256];
  g_socket_set_timeout(target, hark_test_timeout(5000) / 1000);
  gssize got = g_socket_receive(target, (char *)buffer, sizeof buffer, NULL, NULL);
  g_assert_cmpint(got, >=, 20);
  g_assert_cmpint(buffer[0] << 8 | buffer[1], ==, 0x0101); /* binding success */
  for (guint i = 0; i < 5; i++)
    g_clear_object(&links[i]);
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
  if (!serves_user(overlay, wait->user) ||
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
    if (g_strcmp0(member_string(client, "name"), name) == 0 &&
        member_string(client, "user") != NULL)
      return TRUE;
  }
  return FALSE;
}

/* short-1's link closed for its expired certificate (short-2, the same user, stays). */
static gboolean
dropped_expired(JsonObject *overlay, gconstpointer data)
{
  return !serves_client(overlay, "short-1") && dropped(overlay, "certificates_expired") >= 1;
}

/* The unix time of an ISO 8601 "expires" member. */
static gint64
expiry_of(JsonObject *object)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_iso8601(member_string(object, "expires"), NULL);
  return time != NULL ? g_date_time_to_unix(time) : 0;
}

/* With certificates of a few seconds (certificate_lifetime = 5): a client that renews
 * stays linked well past its first certificate's end (it proves each renewed one to its
 * SN), and so does a link between two SNs (the opener proves its renewed certificates);
 * once its device is removed from the account (from another device) it cannot renew,
 * and its SN closes its link when the certificate it holds expires. */
static void
test_certificate_expiry(void)
{
  g_autofree char *settings =
    g_strdup_printf("certificate_lifetime = %d;", SHORT_LIFETIME_S);
  g_autoptr(LabLoginServer) short_login = lab_login_server_new_with(settings);
  HARK_REQUIRE(short_login != NULL);
  LabLoginServer *main_login = lab.login;
  lab.login = short_login; /* for the configurations made here */
  g_autofree char *address = g_strdup_printf("%s.%u", lab.net, 35);
  g_autofree char *address2 = g_strdup_printf("%s.%u", lab.net, 36);
  g_autofree char *only = g_strdup_printf("{ host = \"%s\"; port = %u; transports = [ \"tcp\" ]; }",
                                          address, OVERLAY_PORT);
  g_autofree char *both = g_strdup_printf("%s, { host = \"%s\"; port = %u; transports = "
                                          "[ \"tcp\" ]; }", only, address2, OVERLAY_PORT);
  g_autoptr(LabNode) sn = sn_new("sn-short", address, "tcp", only, NULL, 0);
  g_autoptr(LabNode) sn2 = sn != NULL ? sn_new("sn-short2", address2, "tcp", both, NULL, 1) : NULL;
  g_autofree char *user = NULL;
  g_autoptr(LabNode) client = sn != NULL ? client_new("short-1", "tcp", only, 0, &user) : NULL;
  g_autofree char *other_config = client_config("short-2", "tcp", only, 0);
  lab.login = main_login;
  HARK_REQUIRE(sn != NULL && sn2 != NULL && client != NULL);
  g_autoptr(JsonObject) served = wait_overlay(sn, serves_user, user, JOIN_MS, "serving the user");
  g_autoptr(JsonObject) linked = wait_overlay(sn, is_super, GUINT_TO_POINTER(1), JOIN_MS, "linked");
  HARK_REQUIRE(linked != NULL);
  HARK_REQUIRE(served != NULL);

  g_autoptr(JsonObject) whoami = lab_call(client, "whoami", NULL);
  ServedUntil past_first = { user, expiry_of(whoami) + 1 };
  HARK_REQUIRE(past_first.until > 1);
  g_autoptr(JsonObject) still =
    wait_overlay(sn, served_past, &past_first, (SHORT_LIFETIME_S + 10) * 1000,
                 "serving the user past its first certificate");
  HARK_REQUIRE(still != NULL);
  g_assert_cmpint(dropped(still, "certificates_expired"), ==, 0);

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
    wait_overlay(sn, dropped_expired, NULL, bound_ms, "dropping the revoked device");
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
  JsonObject *login = json_object_has_member(state, "login")
                        ? json_object_get_object_member(state, "login") : NULL;
  return g_strcmp0(member_string(login, "path"), "super node") == 0;
}

static void
test_login_tunnel(void)
{
  if (geteuid() != 0) {
    g_test_skip("needs root for a network namespace");
    return;
  }
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
  gboolean up = run_ip(c1) && run_ip(c2) && run_ip(c3) && run_ip(c4) && run_ip(c5) &&
                run_ip(c6) && run_ip(c7) && run_ip(c8);
  g_autoptr(LabNode) sn = NULL;
  g_autoptr(LabNode) node = NULL;
  if (up) {
    g_autofree char *bootstrap = main_bootstrap();
    sn = sn_new("sn-gateway", sn_host, "udp tcp", bootstrap, NULL, 1);
  }
  if (sn != NULL) {
    g_autofree char *only = g_strdup_printf("{ host = \"%s\"; port = %u; transports = [ \"udp\", "
                                            "\"tcp\" ]; }", sn_host, OVERLAY_PORT);
    g_autofree char *config = client_config("in-a-namespace", "udp tcp", only, lab.web_tls);
    node = lab_node_new("in-a-namespace", config);
    g_autofree char *wrapper = g_strdup_printf("ip netns exec %s", ns);
    g_setenv("HARK_TEST_WRAPPER", wrapper, TRUE);
    g_setenv("HARK_TEST_TIMEOUT_SCALE", "1", TRUE);
    gboolean started = lab_node_start(node);
    g_unsetenv("HARK_TEST_WRAPPER");
    g_unsetenv("HARK_TEST_TIMEOUT_SCALE");
    g_autoptr(JsonObject) attached = started ? wait_attached(node, "tcp") : NULL;
    g_autofree char *user = next_user();
    if (attached != NULL && lab_register_and_login(node, user)) {
      g_autoptr(JsonObject) whole = lab_call(node, "state", NULL);
      g_assert_true(whole != NULL && is_logged_in_via_sn(whole));
      g_autoptr(JsonObject) at_sn = wait_overlay(sn, serves_user, user, JOIN_MS, "serving it");
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

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_set_nonfatal_assertions();
  gboolean up = lab_up();
  if (!up)
    g_test_message("the lab did not come up; every case fails");
  g_test_add_func("/overlay/supernodes", test_supernodes);
  g_test_add_func("/overlay/stun-client", test_stun_client);
  g_test_add_func("/overlay/nat-probe", test_nat_probe);
  g_test_add_func("/overlay/join-five", test_join_five);
  g_test_add_func("/overlay/warm-cache", test_warm_cache);
  g_test_add_func("/overlay/corrupt-cache", test_corrupt_cache);
  g_test_add_func("/overlay/failover-killed", test_failover_killed);
  g_test_add_func("/overlay/failover-frozen", test_failover_frozen);
  g_test_add_func("/overlay/transport-switch", test_transport_switch);
  g_test_add_func("/overlay/udp-blocked", test_udp_blocked);
  g_test_add_func("/overlay/web-only", test_web_only);
  g_test_add_func("/overlay/redirect", test_redirect);
  g_test_add_func("/overlay/bad-input", test_bad_input);
  g_test_add_func("/overlay/logging-in-cap", test_logging_in_cap);
  g_test_add_func("/overlay/failed-handshakes", test_failed_handshakes);
  g_test_add_func("/overlay/unjoined-cap", test_unjoined_cap);
  g_test_add_func("/overlay/malicious-sn", test_malicious_sn);
  g_test_add_func("/overlay/sn-list-flood", test_sn_list_flood);
  g_test_add_func("/overlay/join-name-injection", test_join_name_injection);
  g_test_add_func("/overlay/probe-amplification", test_probe_amplification);
  g_test_add_func("/overlay/stun-flood-per-source", test_stun_flood_per_source);
  g_test_add_func("/overlay/sn-claim-unverified", test_sn_claim_unverified);
  g_test_add_func("/overlay/sn-relay-targets", test_sn_relay_targets);
  g_test_add_func("/overlay/sn-relay-strict", test_sn_relay_strict);
  g_test_add_func("/overlay/sn-relay-budget", test_sn_relay_budget);
  g_test_add_func("/overlay/certificate-expiry", test_certificate_expiry);
  g_test_add_func("/overlay/login-tunnel", test_login_tunnel);
  int status = g_test_run();
  lab_down();
  return status;
}
