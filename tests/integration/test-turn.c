/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-turn.c: TURN credentials from the overlay (docs/protocol.md, "Calls: TURN
 * credentials") with real processes: a login server, a super node that vouches for a
 * coturn started here on 127.0.0.1, its clients.
 *
 * What a user would notice: a logged-in client's `turn` names the SN's TURN server and a
 * username for its user that expires in a day; the password on the wire is the one coturn
 * takes (a relayed candidate is allocated with it through libnice, as a call will, and
 * not with a password one bit off); a client that is not logged in is told to log in
 * (401); an SN without a TURN server says so (404) and the client's error says so; a
 * client that asks too often is refused (429); a secret file others may read stops the
 * SN at start with an error naming the file's mode; neither the secret nor a password
 * ever appears in a log, debug level included. */
#include "harness.h"
#include "hostile-peer.h"
#include "lab.h"
#include "test-isolate.h"

#include "stun.h"

#include <agent.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERLAY_PORT 33037
#define JOIN_MS 15000
#define SECRET "turn-secret-7c1e9a55d2b0"
#define LIFETIME_S 86400

/* What the SN relays with: a coturn beside it, nothing, or its own TURN server. */
typedef enum {
  LAB_COTURN,
  LAB_NO_TURN,
  LAB_OWN_RELAY,
  LAB_TIGHT_RELAY, /* its own, with small bandwidth limits */
  LAB_WEB_RELAY, /* its own, and the tls443 transport on a web port of the lab's */
  LAB_STEER, /* relay = false, linked to a second SN (sn2) that relays */
  LAB_STEER_FULL, /* as LAB_STEER, but its own relay takes one allocation in all */
} LabKind;

typedef struct {
  LabKind kind;
  gboolean with_turn;
  guint16 relay_port;
  guint16 relay_tls_port;
  guint16 web_port, http_port; /* LAB_WEB_RELAY: tls443's tls_port and http_port */
  LabLoginServer *login;
  char *sn_host;
  char *dir; /* the secret file, coturn's files */
  char *secret_path;
  guint16 turn_port;
  GSubprocess *coturn;
  LabNode *sn;
  LabNode *alice;
  char *sn2_host; /* LAB_STEER: the second SN, its own relay at relay_port */
  LabNode *sn2;
} TurnLab;

static const LabKind WITH_TURN = LAB_COTURN, WITHOUT_TURN = LAB_NO_TURN, OWN_RELAY = LAB_OWN_RELAY,
                     TIGHT_RELAY = LAB_TIGHT_RELAY, WEB_RELAY = LAB_WEB_RELAY, STEER = LAB_STEER,
                     STEER_FULL = LAB_STEER_FULL;
#define TIGHT_ALLOCATION_BANDWIDTH 1000 /* bytes/s: supernode.relay_allocation_bandwidth */
#define TIGHT_BANDWIDTH 500 /* bytes/s: supernode.relay_bandwidth */
#define RELAY_PER_USER 3 /* supernode.relay_max_allocations_per_user of the lab */

/* ---- the lab ------------------------------------------------------------------------ */

static char *
write_secret(const char *dir, const char *name, int mode)
{
  char *path = g_build_filename(dir, name, NULL);
  g_assert_true(g_file_set_contents(path, SECRET "\n", -1, NULL));
  g_assert_cmpint(g_chmod(path, mode), ==, 0);
  return path;
}

static char *
sn_config(TurnLab *lab, const char *secret_path)
{
  g_autofree char *turn =
    secret_path != NULL ? g_strdup_printf("  turn_server = \"127.0.0.1:%u\"; turn_secret_file = "
                                          "\"%s\";\n",
                                          lab->turn_port, secret_path)
    : lab->kind == LAB_OWN_RELAY || lab->kind == LAB_WEB_RELAY
      ? g_strdup_printf("  relay_port = %u; relay_tls_port = %u;\n"
                        "  relay_allow = [ \"127.0.0.0/8\" ];\n"
                        "  relay_max_allocations_per_user = %d;\n",
                        lab->relay_port, lab->relay_tls_port, RELAY_PER_USER)
    : lab->kind == LAB_TIGHT_RELAY
      ? g_strdup_printf("  relay_port = %u; relay_allow = [ \"127.0.0.0/8\" ];\n"
                        "  relay_allocation_bandwidth = %d; relay_bandwidth = %d;\n",
                        lab->relay_port, TIGHT_ALLOCATION_BANDWIDTH, TIGHT_BANDWIDTH)
      : g_strdup("  relay = false;\n");
  g_autofree char *web =
    lab->kind == LAB_WEB_RELAY
      ? g_strdup_printf("  { name = \"tls443\"; settings = { tls_port = %u; http_port = %u; }; },\n",
                        lab->web_port, lab->http_port)
      : g_strdup("");
  return g_strdup_printf("node: { name = \"turn-sn\"; supernode = true; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "%s  { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = 0;\n%s};\n"
                         "login: { url = \"%s\"; ca = \"%s\"; };\n",
                         web, lab->sn_host, OVERLAY_PORT, lab->sn_host, turn, lab->login->url,
                         lab->login->ca_path);
}

/* Whether the overlay has a verified SN link named data. */
static gboolean
has_verified_sn(JsonObject *overlay, gconstpointer data)
{
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  for (guint i = 0; links != NULL && i < json_array_get_length(links); i++) {
    JsonObject *link = json_array_get_object_element(links, i);
    if (g_strcmp0(json_object_get_string_member_with_default(link, "name", NULL), data) == 0)
      return json_object_get_boolean_member_with_default(link, "verified", FALSE);
  }
  return FALSE;
}

/* LAB_STEER: starts sn2 (its own relay, at 127.a.b.52) and answers the first SN's
 * configuration: relay off, one SN link, bootstrapped with sn2. NULL: the case failed. */
static char *
steer_configs(TurnLab *lab)
{
  lab->sn2_host = hark_test_peer_address(lab->sn_host, 52);
  char *first_host = lab->sn_host;
  LabKind kind = lab->kind;
  lab->kind = LAB_OWN_RELAY;
  lab->sn_host = lab->sn2_host;
  g_autofree char *relaying = sn_config(lab, NULL);
  lab->sn_host = first_host;
  /* LAB_STEER_FULL: the first SN relays too, one allocation in all. */
  g_autofree char *first_relaying = sn_config(lab, NULL);
  lab->kind = kind;
  g_autoptr(GString) second = g_string_new(relaying);
  g_string_replace(second, "\"turn-sn\"", "\"turn-sn2\"", 1);
  lab->sn2 = lab_node_new("turn-sn2", second->str);
  if (!lab_node_start(lab->sn2) || !lab_register_and_login(lab->sn2, "turn-sn2-user"))
    return NULL;
  g_autoptr(JsonObject) serving = lab_wait_command(lab->sn2, "overlay", lab_overlay_is_super, NULL,
                                                   hark_test_timeout(JOIN_MS), "sn2 serving");
  if (serving == NULL)
    return NULL;
  g_autofree char *off = sn_config(lab, NULL);
  g_autoptr(GString) first = g_string_new(kind == LAB_STEER_FULL ? first_relaying : off);
  g_string_replace(first, "relay_max_allocations_per_user",
                   "relay_max_allocations = 1; "
                   "relay_max_allocations_per_user",
                   1);
  g_autofree char *bootstrap =
    g_strdup_printf("allow_loopback = true;\n  bootstrap = ( { host = \"%s\"; port = %u; "
                    "transports = [ \"tcp\" ]; } );",
                    lab->sn2_host, OVERLAY_PORT);
  g_string_replace(first, "allow_loopback = true;", bootstrap, 1);
  g_string_replace(first, "links = 0;", "links = 1;", 1);
  return g_string_free(g_steal_pointer(&first), FALSE);
}

static void
lab_set_up(TurnLab *lab, gconstpointer data)
{
  lab->kind = *(const LabKind *)data;
  lab->with_turn = lab->kind == LAB_COTURN;
  lab->relay_port = lab_free_udp_tcp_port();
  lab->relay_tls_port = lab_free_udp_tcp_port();
  if (lab->kind == LAB_WEB_RELAY) {
    lab->web_port = lab_free_udp_tcp_port();
    lab->http_port = lab_free_udp_tcp_port();
  }
  guint a = (guint)g_random_int_range(1, 255), b = (guint)g_random_int_range(0, 255);
  lab->sn_host = g_strdup_printf("127.%u.%u.51", a, b);
  lab->dir = g_dir_make_tmp("hark-turn-XXXXXX", NULL);
  lab->login = lab_login_server_new();
  if (lab->login == NULL)
    return;
  if (lab->with_turn) {
    lab->secret_path = write_secret(lab->dir, "turn-secret", 0600);
    /* coturn as the labs run it: REST-API credentials with the lab's secret. */
    if (!lab_coturn_installed())
      lab->turn_port = lab_free_port(); /* the SN vouches for it; nobody answers there */
    else if ((lab->coturn = lab_coturn_start(lab->dir, SECRET, &lab->turn_port)) == NULL)
      return;
  }
  g_autofree char *config = sn_config(lab, lab->secret_path);
  if (lab->kind == LAB_STEER || lab->kind == LAB_STEER_FULL) {
    g_free(config);
    config = steer_configs(lab);
    if (config == NULL)
      return;
  }
  lab->sn = lab_node_new("turn-sn", config);
  /* Debug logging on the SN (`hark run` takes "all" only): the secret must not show
   * even there. */
  g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
  gboolean started = lab_node_start(lab->sn);
  g_unsetenv("G_MESSAGES_DEBUG");
  if (!started || !lab_register_and_login(lab->sn, "turn-sn-user"))
    return;
  g_autoptr(JsonObject) super = lab_wait_command(lab->sn, "overlay", lab_overlay_is_super, NULL,
                                                 hark_test_timeout(JOIN_MS), "serving");
  if (super == NULL)
    return;
  if (lab->kind == LAB_STEER || lab->kind == LAB_STEER_FULL) {
    g_autoptr(JsonObject) linked = lab_wait_command(lab->sn, "overlay", has_verified_sn, "turn-sn2",
                                                    hark_test_timeout(JOIN_MS), "linked to sn2");
    if (linked == NULL)
      return;
  }
  g_autofree char *alice = lab_client_config("alice", lab->sn_host, OVERLAY_PORT, lab->login, NULL);
  lab->alice = lab_client_start("alice", alice, "alice", TRUE, hark_test_timeout(JOIN_MS));
}

static void
lab_tear_down(TurnLab *lab, gconstpointer data)
{
  LabNode **nodes[] = { &lab->alice, &lab->sn, &lab->sn2 };
  lab_nodes_kill_free(nodes, G_N_ELEMENTS(nodes));
  g_clear_pointer(&lab->login, lab_login_server_free);
  lab_coturn_stop(&lab->coturn);
  if (lab->dir != NULL) {
    const char *argv[] = { "rm", "-rf", lab->dir, NULL };
    hark_test_run(argv, NULL, NULL, 10000);
  }
  g_free(lab->dir);
  g_free(lab->secret_path);
  g_free(lab->sn_host);
  g_free(lab->sn2_host);
}

#define LAB_UP(lab) HARK_REQUIRE((lab)->alice != NULL)

/* ---- asking ------------------------------------------------------------------------- */

/* The error text of a `turn` that must fail, or NULL (test failed). */
static char *
turn_error(LabNode *node)
{
  g_autoptr(JsonObject) answer = lab_ask(node, "turn", NULL);
  if (answer == NULL)
    return NULL;
  JsonObject *error = json_object_get_object_member(answer, "error");
  if (error == NULL) {
    g_autofree char *text = hark_test_json(answer);
    g_test_fail_printf("`turn` on %s should have failed: %s", node->name, text);
    return NULL;
  }
  return g_strdup(json_object_get_string_member(error, "message"));
}

/* coturn's REST-API password for username, computed here from the secret. */
static char *
expected_password(const char *username)
{
  g_autoptr(GHmac) hmac = g_hmac_new(G_CHECKSUM_SHA1, (const guchar *)SECRET, strlen(SECRET));
  g_hmac_update(hmac, (const guchar *)username, -1);
  guint8 digest[20];
  gsize size = sizeof digest;
  g_hmac_get_digest(hmac, digest, &size);
  return g_base64_encode(digest, size);
}

/* ---- a client on the wire ----------------------------------------------------------- */

typedef struct {
  gboolean joined;
  GPtrArray *answers; /* HarkWireMessage-like: GVariant* (qv) type and body, by arrival */
} Mallet;

static void
mallet_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  Mallet *mallet = data;
  if (message->type == HARK_MSG_JOIN_OK)
    mallet->joined = TRUE;
  else if (message->type == HARK_MSG_TURN_CREDENTIALS || message->type == HARK_MSG_ERROR)
    g_ptr_array_add(mallet->answers,
                    g_variant_ref_sink(g_variant_new("(qv)", message->type, message->body)));
}

static const HarkLinkHandler mallet_handler = {
  .message = mallet_message,
  .closed = hark_test_peer_closed,
};

/* ---- allocating at coturn, as a call will (libnice) --------------------------------- */

static void
on_gathered(NiceAgent *agent, guint stream, gpointer data)
{
  *(gboolean *)data = TRUE;
}

static void
on_closed(GObject *agent, GAsyncResult *result, gpointer data)
{
  *(gboolean *)data = TRUE;
}

static void
on_received(NiceAgent *agent, guint stream, guint component, guint length, gchar *buffer,
            gpointer data)
{
}

/* Whether libnice gets a relayed candidate from the TURN server with these credentials;
 * *gather_ms: how long gathering took (the allocation released afterwards, not counted). */
static gboolean
allocates_over(const char *host, guint16 port, const char *username, const char *password,
               NiceRelayType type, double *gather_ms)
{
  NiceAgent *agent = nice_agent_new(g_main_context_default(), NICE_COMPATIBILITY_RFC5245);
  g_object_set(agent, "ice-tcp", FALSE, "upnp", FALSE, NULL);
  NiceAddress local;
  nice_address_init(&local);
  g_assert_true(nice_address_set_from_string(&local, "127.0.0.1"));
  nice_agent_add_local_address(agent, &local);
  guint stream = nice_agent_add_stream(agent, 1);
  g_assert_true(
    nice_agent_set_relay_info(agent, stream, 1, host, port, username, password, type));
  gboolean gathered = FALSE;
  g_signal_connect(agent, "candidate-gathering-done", G_CALLBACK(on_gathered), &gathered);
  nice_agent_attach_recv(agent, stream, 1, g_main_context_default(), on_received, NULL);
  gint64 start = g_get_monotonic_time();
  g_assert_true(nice_agent_gather_candidates(agent, stream));
  gboolean done = hark_test_wait_for_flag(&gathered, 10000);
  *gather_ms = (double)(g_get_monotonic_time() - start) / 1000;
  gboolean relayed = FALSE;
  GSList *candidates = nice_agent_get_local_candidates(agent, stream, 1);
  for (GSList *l = candidates; l != NULL; l = l->next)
    relayed |= ((NiceCandidate *)l->data)->type == NICE_CANDIDATE_TYPE_RELAYED;
  g_slist_free_full(candidates, (GDestroyNotify)nice_candidate_free);
  nice_agent_attach_recv(agent, stream, 1, g_main_context_default(), NULL, NULL);
  /* An allocation is released (a refresh with lifetime 0) before the agent goes. */
  gboolean closed = FALSE;
  nice_agent_close_async(agent, on_closed, &closed);
  g_assert_true(hark_test_wait_for_flag(&closed, 5000));
  g_object_unref(agent);
  return done && relayed;
}

static gboolean
allocates(const char *host, guint16 port, const char *username, const char *password,
          double *gather_ms)
{
  return allocates_over(host, port, username, password, NICE_RELAY_TYPE_TURN_UDP, gather_ms);
}

/* coturn is up once it takes a credential at all: until then a gather may run before it
 * listens. Bounded: 10 tries of at most 10 s each. */
static gboolean
allocates_once_up(const char *host, guint16 port, const char *username, const char *password,
                  double *gather_ms)
{
  for (int i = 0; i < 10; i++)
    if (allocates(host, port, username, password, gather_ms))
      return TRUE;
  return FALSE;
}

/* ---- cases -------------------------------------------------------------------------- */

static gboolean
log_has(LabNode *node, const char *text)
{
  g_autofree char *err = hark_test_node_read_stderr(node->node);
  g_autofree char *out = NULL;
  g_file_get_contents(node->node->stdout_path, &out, NULL, NULL);
  return strstr(err, text) != NULL || (out != NULL && strstr(out, text) != NULL);
}

/* alice's `turn`; then the same request on the wire from mallet, whose password coturn
 * takes; a stranger's 401; too many requests' 429; the SN's own `turn`; clean logs. */
static void
test_credentials(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(JsonObject) turn = lab_call(lab->alice, "turn", NULL);
  HARK_REQUIRE(turn != NULL);
  g_assert_cmpstr(json_object_get_string_member(turn, "host"), ==, "127.0.0.1");
  g_assert_cmpint(json_object_get_int_member(turn, "port"), ==, lab->turn_port);
  g_assert_true(json_object_get_boolean_member(turn, "tcp"));
  gint64 expires_at = json_object_get_int_member(turn, "expires_at");
  g_assert_cmpint(expires_at, >=, now + LIFETIME_S - 5);
  g_assert_cmpint(expires_at, <=, now + LIFETIME_S + 60);
  g_autofree char *username = g_strdup_printf("%" G_GINT64_FORMAT ":alice", expires_at);
  g_assert_cmpstr(json_object_get_string_member(turn, "username"), ==, username);
  g_assert_false(json_object_has_member(turn, "password"));
  /* Asked again: the same credentials, from the cache. */
  g_autoptr(JsonObject) again = lab_call(lab->alice, "turn", NULL);
  HARK_REQUIRE(again != NULL);
  g_assert_cmpstr(json_object_get_string_member(again, "username"), ==, username);

  /* The SN's own device answers from its configuration. */
  g_autoptr(JsonObject) own = lab_call(lab->sn, "turn", NULL);
  HARK_REQUIRE(own != NULL);
  g_assert_true(g_str_has_suffix(json_object_get_string_member(own, "username"), ":turn-sn-user"));

  /* On the wire: mallet, a client with a certificate of the lab's CA. */
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-turn-mallet-XXXXXX");
  g_autoptr(HarkCa) lab_ca = hark_test_peer_ca(lab->login->node->node->state_dir);
  HARK_REQUIRE(lab_ca != NULL);
  HarkNode *node = hark_test_peer_node(&net, "mallet", lab_ca);
  g_autoptr(GPtrArray) answers = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
  Mallet mallet = { FALSE, answers };
  HarkLink *link =
    hark_test_peer_open(&net, node, lab->sn_host, OVERLAY_PORT, &mallet_handler, &mallet);
  HARK_REQUIRE(link != NULL);
  hark_test_peer_join(link, "mallet", NULL, 0);
  HARK_REQUIRE(hark_test_wait_for_flag(&mallet.joined, 5000));
  g_assert_true(hark_link_send(link, HARK_MSG_TURN_REQUEST, 2, g_variant_new("()"), NULL));
  HARK_REQUIRE(hark_test_wait_for_uint(&answers->len, 1, 5000));
  guint16 type;
  g_autoptr(GVariant) body = NULL;
  g_variant_get(answers->pdata[0], "(qv)", &type, &body);
  g_assert_cmpuint(type, ==, HARK_MSG_TURN_CREDENTIALS);
  const char *host, *wire_user, *password;
  guint16 port;
  gint64 wire_expiry;
  gboolean tcp;
  g_variant_get(body, "(&sq&s&sxb)", &host, &port, &wire_user, &password, &wire_expiry, &tcp);
  g_autofree char *mallet_user = g_strdup_printf("%" G_GINT64_FORMAT ":mallet", wire_expiry);
  g_assert_cmpstr(wire_user, ==, mallet_user);
  g_autofree char *expected = expected_password(wire_user);
  g_assert_cmpstr(password, ==, expected);

  if (!lab_coturn_installed()) {
    g_test_message("turnserver is not installed: the allocation with these credentials is "
                   "not tried");
  } else {
    double ms = 0;
    g_assert_true(allocates_once_up(host, port, wire_user, password, &ms));
    /* Once more, coturn surely up: how long a call would wait for its relayed candidate. */
    g_assert_true(allocates(host, port, wire_user, password, &ms));
    g_test_message("libnice gathered with a relayed candidate from coturn in %.1f ms", ms);
    /* One character off: coturn refuses, so the allocation above proves the password. */
    g_autofree char *wrong = g_strdup(password);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    g_assert_false(allocates(host, port, wire_user, wrong, &ms));
    g_test_message("with one character of the password changed: no relayed candidate (%.1f ms)",
                   ms);
  }

  /* 6 a minute: mallet's first took one; six more and the last is refused. */
  for (guint64 id = 3; id < 9; id++)
    g_assert_true(hark_link_send(link, HARK_MSG_TURN_REQUEST, id, g_variant_new("()"), NULL));
  HARK_REQUIRE(hark_test_wait_for_uint(&answers->len, 7, 5000));
  g_autoptr(GVariant) last = NULL;
  g_variant_get(answers->pdata[6], "(qv)", &type, &last);
  g_assert_cmpuint(type, ==, HARK_MSG_ERROR);
  guint32 code;
  g_variant_get(last, "(u&s)", &code, NULL);
  g_assert_cmpuint(code, ==, 429);
  g_variant_get(answers->pdata[5], "(qv)", &type, NULL);
  g_assert_cmpuint(type, ==, HARK_MSG_TURN_CREDENTIALS);

  /* A client that has not logged in is told to. */
  g_autofree char *config =
    lab_client_config("stranger", lab->sn_host, OVERLAY_PORT, lab->login, NULL);
  g_autoptr(LabNode) stranger = lab_node_new("stranger", config);
  HARK_REQUIRE(lab_node_start(stranger));
  g_autoptr(JsonObject) attached = lab_wait_command(stranger, "overlay", lab_overlay_is_attached,
                                                    NULL, hark_test_timeout(JOIN_MS), "attached");
  HARK_REQUIRE(attached != NULL);
  g_autofree char *refused = turn_error(stranger);
  HARK_REQUIRE(refused != NULL);
  g_test_message("not logged in: %s", refused);
  g_assert_nonnull(strstr(refused, "401"));
  g_assert_nonnull(strstr(refused, "log in"));

  g_autoptr(JsonObject) overlay = lab_call(lab->sn, "overlay", NULL);
  HARK_REQUIRE(overlay != NULL);
  JsonObject *dropped = json_object_get_object_member(overlay, "dropped");
  g_assert_cmpint(json_object_get_int_member(dropped, "turn_refused"), ==, 2);
  g_assert_cmpint(json_object_get_int_member(dropped, "turn_answered"), >=, 7);

  /* The SN logged at debug level; neither the secret nor a password it minted shows. */
  LabNode *logs[] = { lab->sn, lab->alice, stranger };
  g_autofree char *alice_password = expected_password(username);
  for (gsize i = 0; i < G_N_ELEMENTS(logs); i++) {
    g_assert_false(log_has(logs[i], SECRET));
    g_assert_false(log_has(logs[i], password));
    g_assert_false(log_has(logs[i], alice_password));
  }
  g_assert_true(log_has(lab->sn, "TURN credentials for"));
}

/* An SN without a TURN server answers 404, and the client's error says what it means. */
static void
test_no_server(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *error = turn_error(lab->alice);
  HARK_REQUIRE(error != NULL);
  g_test_message("no TURN server: %s", error);
  g_assert_nonnull(strstr(error, "the super node has no TURN server"));
  g_assert_nonnull(strstr(error, "404"));
  /* Asked again (as every call does before its INVITE): answered from what the SN said,
   * with no request on the wire. */
  g_autofree char *again = turn_error(lab->alice);
  HARK_REQUIRE(again != NULL);
  g_assert_nonnull(strstr(again, "the super node has no TURN server (it said so lately)"));
  g_autofree char *own = turn_error(lab->sn);
  HARK_REQUIRE(own != NULL);
  g_assert_nonnull(strstr(own, "no TURN server"));
}

/* A secret file others may read: the SN does not start, and says why. */
static void
test_secret_mode(void)
{
  /* A CA to pin (any: the node stops before it logs in), and the secret beside it. */
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-turn-mode-XXXXXX");
  g_autofree char *secret = write_secret(net.dir, "turn-secret", 0644);
  g_autofree char *config =
    g_strdup_printf("node: { name = \"turn-sn\"; supernode = true; };\n"
                    "plugins: { load = ( { name = \"ctl\"; } ); };\n"
                    "supernode: { turn_server = \"127.0.0.1:3478\"; turn_secret_file = \"%s\"; };\n"
                    "login: { url = \"https://127.0.0.1:1\"; ca = \"%s\"; };\n",
                    secret, net.ca_path);
  g_autoptr(HarkTestNode) node = hark_test_node_new(config);
  HARK_REQUIRE(hark_test_node_spawn(node));
  HARK_REQUIRE(hark_test_node_wait_exit(node, hark_test_timeout(10000)));
  g_assert_cmpint(node->exit_status, !=, 0);
  g_autofree char *err = hark_test_node_read_stderr(node);
  g_test_message("refused: %s", err);
  g_assert_nonnull(strstr(err, "supernode.turn_secret_file"));
  g_assert_nonnull(strstr(err, "mode 0644"));
  g_assert_null(strstr(err, SECRET));
}

/* ---- the SN's own TURN server ---------------------------------------------------------- */

/* Credentials as the overlay hands them to a logged-in client: mallet, a client with a
 * certificate of the lab's CA, asks the SN on its link. */
static gboolean
wire_credentials(TurnLab *lab, char **username, char **password, char **host, guint16 *port)
{
  g_auto(HarkTestNet) net_storage = { 0 };
  HarkTestNet *net = &net_storage;
  hark_test_net_init(net, "hark-relay-XXXXXX");
  g_autoptr(HarkCa) lab_ca = hark_test_peer_ca(lab->login->node->node->state_dir);
  if (lab_ca == NULL)
    return FALSE;
  HarkNode *node = hark_test_peer_node(net, "mallet", lab_ca);
  g_autoptr(GPtrArray) answers = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
  Mallet mallet = { FALSE, answers };
  HarkLink *link =
    hark_test_peer_open(net, node, lab->sn_host, OVERLAY_PORT, &mallet_handler, &mallet);
  if (link == NULL)
    return FALSE;
  hark_test_peer_join(link, "mallet", NULL, 0);
  if (!hark_test_wait_for_flag(&mallet.joined, 5000))
    return FALSE;
  g_assert_true(hark_link_send(link, HARK_MSG_TURN_REQUEST, 2, g_variant_new("()"), NULL));
  if (!hark_test_wait_for_uint(&answers->len, 1, 5000))
    return FALSE;
  guint16 type;
  g_autoptr(GVariant) body = NULL;
  g_variant_get(answers->pdata[0], "(qv)", &type, &body);
  if (type != HARK_MSG_TURN_CREDENTIALS) {
    g_autofree char *text = g_variant_print(body, FALSE);
    g_autofree char *log = hark_test_node_read_stderr(lab->sn->node);
    g_test_fail_printf("the SN answered %s; its log:\n%s", text, log);
    return FALSE;
  }
  gint64 expiry;
  gboolean tcp;
  g_variant_get(body, "(sqssxb)", host, port, username, password, &expiry, &tcp);
  g_assert_true(tcp);
  return TRUE;
}

/* A TURN client on the wire, one UDP socket: what a hostile user sends. */
typedef struct {
  GSocket *socket;
  GSocketAddress *server;
  char *nonce;
  guint8 last_id[12];
} Raw;

static Raw *
raw_new(const char *host, guint16 port)
{
  Raw *raw = g_new0(Raw, 1);
  raw->socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_from_string("127.0.0.1");
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new(loopback, 0);
  g_assert_true(g_socket_bind(raw->socket, local, FALSE, NULL));
  g_socket_set_timeout(raw->socket, 5); /* a bounded wait for each answer */
  raw->server = g_inet_socket_address_new_from_string(host, port);
  return raw;
}

static void
raw_free(Raw *raw)
{
  g_object_unref(raw->socket);
  g_object_unref(raw->server);
  g_free(raw->nonce);
  g_free(raw);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Raw, raw_free)

static void
raw_send(Raw *raw, const void *data, gsize size)
{
  g_assert_cmpint(g_socket_send_to(raw->socket, raw->server, data, size, NULL, NULL), ==,
                  (gssize)size);
}

/* The answer to the last request (skipping strays), NULL when none within 5 s. */
static HarkStunMessage *
raw_answer(Raw *raw)
{
  for (int i = 0; i < 20; i++) {
    char buffer[2048];
    gssize n = g_socket_receive(raw->socket, buffer, sizeof buffer, NULL, NULL);
    if (n <= 0)
      return NULL;
    g_autoptr(GBytes) bytes = g_bytes_new(buffer, (gsize)n);
    HarkStunMessage *m = hark_stun_parse(bytes, NULL);
    if (m != NULL && memcmp(m->transaction_id, raw->last_id, 12) == 0)
      return m;
    g_clear_pointer(&m, hark_stun_message_free);
  }
  return NULL;
}

typedef void (*RawAdd)(GByteArray *b, const guint8 *id, gpointer data);

/* A request of method, authenticated when username is given (with the nonce of the last
 * challenge); its answer's error code, 0 for a success; *answer the answer. */
static guint
raw_request(Raw *raw, guint16 method, const char *username, const char *password, RawAdd add,
            gpointer data, HarkStunMessage **answer)
{
  for (int i = 0; i < 12; i++)
    raw->last_id[i] = (guint8)g_random_int();
  GByteArray *b =
    hark_stun_builder_new(hark_stun_message_type(method, HARK_STUN_CLASS_REQUEST), raw->last_id);
  if (add != NULL)
    add(b, raw->last_id, data);
  if (username != NULL) {
    hark_stun_builder_add(b, HARK_STUN_ATTR_USERNAME, username, (guint16)strlen(username));
    hark_stun_builder_add(b, HARK_STUN_ATTR_REALM, "hark", 4);
    hark_stun_builder_add(b, HARK_STUN_ATTR_NONCE, raw->nonce, (guint16)strlen(raw->nonce));
    guint8 key[16];
    hark_stun_long_term_key(username, "hark", password, key);
    hark_stun_builder_add_integrity(b, key, sizeof key);
  }
  g_autoptr(GBytes) request = hark_stun_builder_finish(b);
  raw_send(raw, g_bytes_get_data(request, NULL), g_bytes_get_size(request));
  g_autoptr(HarkStunMessage) m = raw_answer(raw);
  g_assert_nonnull(m);
  const HarkStunAttribute *nonce = hark_stun_message_find(m, HARK_STUN_ATTR_NONCE);
  if (nonce != NULL) {
    g_free(raw->nonce);
    raw->nonce = g_strndup((const char *)nonce->value, nonce->length);
  }
  guint code = 0;
  if (hark_stun_message_class(m->type) == HARK_STUN_CLASS_ERROR) {
    const HarkStunAttribute *error = hark_stun_message_find(m, HARK_STUN_ATTR_ERROR_CODE);
    g_assert_nonnull(error);
    code = (error->value[2] & 7u) * 100 + error->value[3];
  }
  if (answer != NULL)
    *answer = g_steal_pointer(&m);
  return code;
}

static void
add_udp_transport(GByteArray *b, const guint8 *id, gpointer data)
{
  hark_stun_builder_add_u32(b, HARK_STUN_ATTR_REQUESTED_TRANSPORT, 17u << 24);
}

static void
add_lifetime_zero(GByteArray *b, const guint8 *id, gpointer data)
{
  hark_stun_builder_add_u32(b, HARK_STUN_ATTR_LIFETIME, 0);
}

/* data: "IP:PORT" of the peer. */
static void
add_peer(GByteArray *b, const guint8 *id, gpointer data)
{
  g_autoptr(GSocketAddress) peer = g_inet_socket_address_new_from_string(data, 5000);
  if (strchr(data, '|') != NULL) {
    g_auto(GStrv) parts = g_strsplit(data, "|", 2);
    g_clear_object(&peer);
    peer = g_inet_socket_address_new_from_string(parts[0], (guint)atoi(parts[1]));
  }
  g_assert_nonnull(peer);
  g_assert_true(hark_stun_builder_add_address(b, HARK_STUN_ATTR_XOR_PEER_ADDRESS, peer, id, NULL));
}

static void
add_channel_and_peer(GByteArray *b, const guint8 *id, gpointer data)
{
  hark_stun_builder_add_u32(b, HARK_STUN_ATTR_CHANNEL_NUMBER, 0x4001u << 16);
  add_peer(b, id, data);
}

/* A peer on loopback (the labs' supernode.relay_allow), reading with a 5 s timeout;
 * *text its address as add_peer takes it. */
static GSocket *
loopback_peer(char **text)
{
  GSocket *peer =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new_from_string("127.0.0.1", 0);
  g_assert_true(g_socket_bind(peer, local, FALSE, NULL));
  g_socket_set_timeout(peer, 5);
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address(peer, NULL);
  *text =
    g_strdup_printf("127.0.0.1|%u", g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
  return peer;
}

/* Allocates (401 first, for the nonce); the answer's code. */
static guint
raw_allocate(Raw *raw, const char *username, const char *password)
{
  if (raw->nonce == NULL)
    g_assert_cmpuint(
      raw_request(raw, HARK_STUN_METHOD_ALLOCATE, NULL, NULL, add_udp_transport, NULL, NULL), ==,
      401);
  return raw_request(raw, HARK_STUN_METHOD_ALLOCATE, username, password, add_udp_transport, NULL,
                     NULL);
}

/* The relay's counters from the SN's `overlay`. */
static JsonObject *
relay_counters(TurnLab *lab)
{
  g_autoptr(JsonObject) overlay = lab_call(lab->sn, "overlay", NULL);
  if (overlay == NULL)
    return NULL;
  JsonObject *turn = json_object_get_object_member(overlay, "turn");
  JsonObject *relay = json_object_get_object_member(turn, "relay");
  return relay != NULL ? json_object_ref(relay) : NULL;
}

/* (lab_wait_overlay) The SN's relay holds no TCP or TLS client connection. */
static gboolean
relay_has_no_tcp(JsonObject *overlay, gconstpointer data)
{
  JsonObject *turn = json_object_get_object_member(overlay, "turn");
  JsonObject *relay = turn != NULL ? json_object_get_object_member(turn, "relay") : NULL;
  return relay != NULL && json_object_get_int_member(relay, "tcp_connections") == 0;
}

/* The relay's secret as the SN keeps it (the test owns the SN's state directory). */
static GBytes *
relay_secret(TurnLab *lab)
{
  g_autofree char *path = g_build_filename(lab->sn->node->state_dir, "relay-secret", NULL);
  struct stat st;
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
  char *text = NULL;
  gsize size = 0;
  g_assert_true(g_file_get_contents(path, &text, &size, NULL));
  while (size > 0 && g_ascii_isspace(text[size - 1]))
    size--;
  return g_bytes_new_take(text, size);
}

static char *
password_for(GBytes *secret, const char *username)
{
  g_autoptr(GHmac) hmac =
    g_hmac_new(G_CHECKSUM_SHA1, g_bytes_get_data(secret, NULL), g_bytes_get_size(secret));
  g_hmac_update(hmac, (const guchar *)username, -1);
  guint8 digest[20];
  gsize size = sizeof digest;
  g_hmac_get_digest(hmac, digest, &size);
  return g_base64_encode(digest, size);
}

/* Waits until something listens on 127.0.0.1:port over UDP (binding it fails). */
static gboolean
udp_port_taken(gpointer data)
{
  guint16 port = (guint16)GPOINTER_TO_UINT(data);
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string("127.0.0.1", port);
  return !g_socket_bind(socket, address, FALSE, NULL);
}

/* coturn's echoing peer on a free UDP port of 127.0.0.1, ready; NULL when it did not come
 * up. */
static GSubprocess *
start_echo_peer(TurnLab *lab, guint16 *peer_port)
{
  *peer_port = lab_free_port();
  g_autofree char *peer_port_text = g_strdup_printf("%u", *peer_port);
  g_autofree char *peer_log = g_build_filename(lab->dir, "peer.log", NULL);
  const char *peer_argv[] = { "turnutils_peer", "-L", "127.0.0.1", "-p", peer_port_text, NULL };
  g_autoptr(GSubprocess) echo = hark_test_spawn(peer_argv, peer_log, peer_log);
  if (echo == NULL || !hark_test_wait_for(udp_port_taken, GUINT_TO_POINTER(*peer_port), 5000))
    return NULL;
  return g_steal_pointer(&echo);
}

/* turnutils_uclient against the SN's relay with the overlay's credentials; its output. */
typedef enum {
  OVER_UDP,
  OVER_TCP,
  OVER_TLS,
  OVER_WEB, /* TLS to the SN's web port (tls443's) */
} Over;

static const char *const over_names[] = { "UDP", "TCP", "TLS", "TLS on the web port" };

static char *
run_uclient(TurnLab *lab, const char *username, const char *password, guint16 peer_port, Over over,
            int *status)
{
  g_autofree char *relay_port =
    g_strdup_printf("%u", over == OVER_TLS   ? lab->relay_tls_port
                          : over == OVER_WEB ? lab->web_port
                                             : lab->relay_port);
  g_autofree char *peer = g_strdup_printf("%u", peer_port);
  const char *argv[] = { "turnutils_uclient",
                         "-c",
                         "-n",
                         "20",
                         "-m",
                         "1",
                         "-l",
                         "100",
                         "-e",
                         "127.0.0.1",
                         "-r",
                         peer,
                         "-u",
                         username,
                         "-w",
                         password,
                         "-p",
                         relay_port,
                         over == OVER_UDP ? "-c" : "-t",
                         over >= OVER_TLS ? "-S" : "-c",
                         lab->sn_host,
                         NULL };
  char *out = NULL, *err = NULL;
  *status = hark_test_run(argv, &out, &err, hark_test_timeout(30000));
  char *both = g_strconcat(out != NULL ? out : "", err != NULL ? err : "", NULL);
  g_free(out);
  g_free(err);
  return both;
}

/* The first promise: coturn's own client completes sessions (UDP and TCP to the
 * server) through the SN's relay with the credentials the overlay hands out, and libnice
 * (a call's ICE) gets a relayed candidate from it; one character off, neither works. */
static void
test_relay_uclient(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *username = NULL, *password = NULL, *host = NULL;
  guint16 port = 0;
  HARK_REQUIRE(wire_credentials(lab, &username, &password, &host, &port));
  g_assert_cmpstr(host, ==, lab->sn_host);
  g_assert_cmpuint(port, ==, lab->relay_port);
  g_assert_true(g_str_has_suffix(username, ":mallet"));
  /* No tls443 on this SN: no web port named. */
  g_autoptr(JsonObject) alice_turn = lab_call(lab->alice, "turn", NULL);
  HARK_REQUIRE(alice_turn != NULL);
  g_assert_false(json_object_has_member(alice_turn, "web_port"));
  /* The built-in relay's credentials last 10 minutes (supernode.relay_lifetime). */
  gint64 expiry = g_ascii_strtoll(username, NULL, 10);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_assert_cmpint(expiry, >=, now + 600 - 5);
  g_assert_cmpint(expiry, <=, now + 600 + 60);

  if (g_find_program_in_path("turnutils_uclient") == NULL) {
    g_test_skip("turnutils_uclient (coturn) is not installed");
    return;
  }
  guint16 peer_port = 0;
  g_autoptr(GSubprocess) echo = start_echo_peer(lab, &peer_port);
  HARK_REQUIRE(echo != NULL);

  for (Over over = OVER_UDP; over <= OVER_TLS; over++) {
    int status = -1;
    g_autofree char *output = run_uclient(lab, username, password, peer_port, over, &status);
    g_test_message("turnutils_uclient over %s: exit %d\n%s", over_names[over], status, output);
    g_assert_cmpint(status, ==, 0);
    g_assert_nonnull(strstr(output, "Total lost packets 0 (0.000000%)"));
    if (over == OVER_TLS)
      g_assert_nonnull(strstr(output, "tls_connect: client session connected"));
  }
  /* With a password one character off: refused (401), no packet gets through. */
  g_autofree char *wrong = g_strdup(password);
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  int status = -1;
  g_autofree char *refused = run_uclient(lab, username, wrong, peer_port, OVER_UDP, &status);
  g_test_message("with a wrong password: exit %d\n%s", status, refused);
  g_assert_null(strstr(refused, "Total lost packets 0 (0.000000%)"));

  double ms = 0;
  g_assert_true(allocates(host, port, username, password, &ms));
  g_test_message("libnice gathered a relayed candidate from the SN's relay in %.1f ms", ms);
  g_assert_false(allocates(host, port, username, wrong, &ms));

  g_autoptr(JsonObject) relay = relay_counters(lab);
  HARK_REQUIRE(relay != NULL);
  g_autofree char *shown = hark_test_json(relay);
  g_test_message("relay: %s", shown);
  g_assert_cmpint(json_object_get_int_member(relay, "allocations_made"), >=, 3);
  g_assert_cmpint(json_object_get_int_member(relay, "datagrams_to_peers"), >=, 40);
  g_assert_cmpint(json_object_get_int_member(relay, "datagrams_from_peers"), >=, 40);
  JsonObject *why = json_object_get_object_member(relay, "refused");
  g_assert_cmpint(json_object_get_int_member(why, "wrong_credentials"), >=, 2);
  g_subprocess_force_exit(echo);
  hark_test_wait_process(echo, 5000);
  /* The SN logs per user, never the secret nor a password. */
  g_autoptr(GBytes) secret = relay_secret(lab);
  g_autofree char *secret_text =
    g_strndup(g_bytes_get_data(secret, NULL), g_bytes_get_size(secret));
  g_assert_false(log_has(lab->sn, secret_text));
  g_assert_false(log_has(lab->sn, password));
  g_assert_true(log_has(lab->sn, "relay: allocated for mallet"));
}

/* What a stranger sends the web port with no TLS: data, then whether the SN closed the
 * connection within 5 s (it read nothing back but the close). */
static gboolean
web_port_closes(TurnLab *lab, const guint8 *data, gsize size)
{
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string(lab->sn_host, lab->web_port);
  if (!g_socket_connect(socket, address, NULL, NULL) ||
      g_socket_send(socket, (const char *)data, size, NULL, NULL) != (gssize)size)
    return FALSE;
  g_socket_set_timeout(socket, 5);
  char buffer[512];
  gssize n;
  while ((n = g_socket_receive(socket, buffer, sizeof buffer, NULL, NULL)) > 0)
    ;
  return n == 0;
}

/* TURN over TLS on the SN's web port, for clients whose firewall lets only the web ports
 * out: coturn's client completes a session with TLS to the port the tls443 transport
 * listens on (refused with a password one character off), libnice gets a relayed
 * candidate there, and an overlay client that knows only tls443 still attaches through
 * that same port. */
static void
test_relay_web_port(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *username = NULL, *password = NULL, *host = NULL;
  guint16 port = 0;
  HARK_REQUIRE(wire_credentials(lab, &username, &password, &host, &port));
  /* The SN tells its clients where its relay takes TURN on the web port (JOIN_OK's
   * turn_web_port), and their credentials carry it. */
  g_autoptr(JsonObject) alice_turn = lab_call(lab->alice, "turn", NULL);
  HARK_REQUIRE(alice_turn != NULL);
  g_assert_cmpint(json_object_get_int_member_with_default(alice_turn, "web_port", 0), ==,
                  lab->web_port);
  if (g_find_program_in_path("turnutils_uclient") == NULL) {
    g_test_skip("turnutils_uclient (coturn) is not installed");
    return;
  }
  guint16 peer_port = 0;
  g_autoptr(GSubprocess) echo = start_echo_peer(lab, &peer_port);
  HARK_REQUIRE(echo != NULL);

  int status = -1;
  g_autofree char *output = run_uclient(lab, username, password, peer_port, OVER_WEB, &status);
  g_test_message("turnutils_uclient over TLS to the web port: exit %d\n%s", status, output);
  g_assert_cmpint(status, ==, 0);
  g_assert_nonnull(strstr(output, "tls_connect: client session connected"));
  g_assert_nonnull(strstr(output, "Total lost packets 0 (0.000000%)"));
  g_autofree char *wrong = g_strdup(password);
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  g_autofree char *refused = run_uclient(lab, username, wrong, peer_port, OVER_WEB, &status);
  g_assert_null(strstr(refused, "Total lost packets 0 (0.000000%)"));
  g_subprocess_force_exit(echo);
  hark_test_wait_process(echo, 5000);

  g_autoptr(JsonObject) relay = relay_counters(lab);
  HARK_REQUIRE(relay != NULL);
  g_assert_cmpint(json_object_get_int_member(relay, "allocations_made"), >=, 1);
  g_assert_cmpint(json_object_get_int_member(relay, "datagrams_to_peers"), >=, 20);
  JsonObject *why = json_object_get_object_member(relay, "refused");
  g_assert_cmpint(json_object_get_int_member(why, "wrong_credentials"), >=, 1);
  /* libnice (a call's ICE) gets a relayed candidate from the web port with its
   * NICE_RELAY_TYPE_TURN_TLS, which in RFC 5245 mode is TURN over plain TCP (no TLS):
   * the link takes a stream that starts with no TLS handshake for TURN too. */
  double ms = 0;
  g_assert_true(allocates_over(host, lab->web_port, username, password, NICE_RELAY_TYPE_TURN_TLS, &ms));
  g_test_message("libnice: a relayed candidate over TCP to the web port in %.1f ms", ms);
  g_assert_false(
    allocates_over(host, lab->web_port, username, wrong, NICE_RELAY_TYPE_TURN_TLS, &ms));

  /* A stranger on the web port: bytes that are neither TLS nor STUN end the connection
   * before the relay sees them; a STUN header followed by what is no frame at all is
   * refused by the relay (counted malformed) and closed. */
  static const guint8 junk[] = "GET / HTTP/1.1\r\n\r\n";
  g_assert_true(web_port_closes(lab, junk, sizeof junk - 1));
  g_autoptr(JsonObject) before = relay_counters(lab);
  HARK_REQUIRE(before != NULL);
  gint64 malformed =
    json_object_get_int_member(json_object_get_object_member(before, "refused"), "malformed");
  static const guint8 stun_then_junk[] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42,
                                           1,    2,    3,    4,    5,    6,    7,    8,
                                           9,    10,   11,   12,   0xFF, 0xFF, 0xFF, 0xFF };
  g_assert_true(web_port_closes(lab, stun_then_junk, sizeof stun_then_junk));
  g_autoptr(JsonObject) after = relay_counters(lab);
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(
    json_object_get_int_member(json_object_get_object_member(after, "refused"), "malformed"), ==,
    malformed + 1);
  /* Every connection above is closed at the relay too (libnice's and the strangers' close
   * reaches the SN's main loop a moment after the client sees it). */
  g_autoptr(JsonObject) drained = lab_wait_overlay(lab->sn, relay_has_no_tcp, NULL, 5000,
                                                   "the relay's TCP connections all closed");
  HARK_REQUIRE(drained != NULL);

  /* The overlay's own clients on that port keep working: bob knows only tls443. */
  g_autofree char *bob = g_strdup_printf(
    "node: { name = \"bob\"; supernode = false; };\n"
    "plugins: { load = ( { name = \"tls443\"; settings = { tls_port = %u; http_port = %u; }; },\n"
    "  { name = \"search-loginsrv\"; }, { name = \"ctl\"; } ); };\n"
    "network: { allow_loopback = true;\n"
    "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"tls443\" ]; } ); };\n"
    "login: { url = \"%s\"; ca = \"%s\"; };\n",
    lab->web_port, lab->http_port, lab->sn_host, OVERLAY_PORT, lab->login->url,
    lab->login->ca_path);
  g_autoptr(LabNode) bob_node = lab_client_start("bob", bob, "bob", TRUE, hark_test_timeout(JOIN_MS));
  g_assert_nonnull(bob_node);
  lab_node_kill(bob_node);
}

/* What a hostile user tries: no, a wrong or an expired credential (401); denied peers
 * (403: the metadata address, 0.0.0.0, private and link-local ranges), nothing sent to a
 * peer without permission; ChannelData on an unbound channel and garbage (dropped,
 * counted); an allocation flood (486 past the user's quota); a request for a released
 * allocation (437). The SN keeps serving throughout. */
static void
test_relay_refused(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *username = NULL, *password = NULL, *host = NULL;
  guint16 port = 0;
  HARK_REQUIRE(wire_credentials(lab, &username, &password, &host, &port));
  g_autoptr(Raw) raw = raw_new(lab->sn_host, lab->relay_port);

  /* No credential: 401 with the realm and a nonce. */
  g_autoptr(HarkStunMessage) challenge = NULL;
  g_assert_cmpuint(
    raw_request(raw, HARK_STUN_METHOD_ALLOCATE, NULL, NULL, add_udp_transport, NULL, &challenge),
    ==, 401);
  g_assert_nonnull(hark_stun_message_find(challenge, HARK_STUN_ATTR_REALM));
  g_assert_nonnull(raw->nonce);
  /* A wrong password. */
  g_autofree char *wrong = g_strdup(password);
  wrong[1] = wrong[1] == 'A' ? 'B' : 'A';
  g_assert_cmpuint(raw_allocate(raw, username, wrong), ==, 401);
  /* An expired credential with the right password for it (the SN's own secret): 401. */
  g_autoptr(GBytes) secret = relay_secret(lab);
  const char *expired = "1000000:mallet";
  g_autofree char *expired_password = password_for(secret, expired);
  g_assert_cmpuint(raw_allocate(raw, expired, expired_password), ==, 401);
  /* A forged nonce: 438 and a fresh one. */
  g_free(raw->nonce);
  raw->nonce = g_strdup("00000000aaaaaaaaaaaaaaaaaaaaaaaa");
  g_assert_cmpuint(raw_allocate(raw, username, password), ==, 438);
  /* The good one. */
  g_autoptr(HarkStunMessage) allocated = NULL;
  g_assert_cmpuint(raw_request(raw, HARK_STUN_METHOD_ALLOCATE, username, password,
                               add_udp_transport, NULL, &allocated),
                   ==, 0);
  const HarkStunAttribute *relayed_attribute =
    hark_stun_message_find(allocated, HARK_STUN_ATTR_XOR_RELAYED_ADDRESS);
  g_assert_nonnull(relayed_attribute);
  g_autoptr(GInetSocketAddress) relayed =
    hark_stun_decode_address(relayed_attribute, allocated->transaction_id, NULL);
  g_autofree char *relayed_host =
    g_inet_address_to_string(g_inet_socket_address_get_address(relayed));
  g_assert_cmpstr(relayed_host, ==, lab->sn_host);

  /* Denied peers. */
  const char *denied[] = { "169.254.169.254", "0.0.0.0",    "10.1.2.3",  "192.168.1.1",
                           "172.16.0.1",      "100.64.0.1", "224.0.0.1", "255.255.255.255" };
  for (gsize i = 0; i < G_N_ELEMENTS(denied); i++) {
    g_assert_cmpuint(raw_request(raw, HARK_STUN_METHOD_CREATE_PERMISSION, username, password,
                                 add_peer, (gpointer)denied[i], NULL),
                     ==, 403);
    g_assert_cmpuint(raw_request(raw, HARK_STUN_METHOD_CHANNEL_BIND, username, password,
                                 add_channel_and_peer, (gpointer)denied[i], NULL),
                     ==, 403);
  }

  /* A peer on loopback (supernode.relay_allow of the lab): channel 0x4001 to it. */
  g_autofree char *peer_text = NULL;
  g_autoptr(GSocket) peer = loopback_peer(&peer_text);
  g_assert_cmpuint(raw_request(raw, HARK_STUN_METHOD_CHANNEL_BIND, username, password,
                               add_channel_and_peer, peer_text, NULL),
                   ==, 0);
  /* ChannelData on channel 0x4002 (unbound): dropped; then on 0x4001: arrives. */
  const guint8 unbound[] = { 0x40, 0x02, 0x00, 0x04, 'l', 'o', 's', 't' };
  raw_send(raw, unbound, sizeof unbound);
  /* Garbage: not STUN, a truncated header, a STUN header whose length lies. */
  const guint8 garbage[] = { 0xFF, 0x00, 0x12, 0x34, 0x56 };
  const guint8 truncated[] = { 0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42 };
  guint8 liar[20] = { 0x00, 0x03, 0x01, 0x00, 0x21, 0x12, 0xA4, 0x42 };
  raw_send(raw, garbage, sizeof garbage);
  raw_send(raw, truncated, sizeof truncated);
  raw_send(raw, liar, sizeof liar);
  const guint8 bound[] = { 0x40, 0x01, 0x00, 0x04, 'h', 'e', 'r', 'e' };
  raw_send(raw, bound, sizeof bound);
  char received[64];
  gssize n = g_socket_receive(peer, received, sizeof received, NULL, NULL);
  g_assert_cmpint(n, ==, 4);
  g_assert_cmpmem(received, 4, "here", 4);

  /* The flood: the user's quota is RELAY_PER_USER allocations; raw has one. */
  g_autoptr(GPtrArray) more = g_ptr_array_new_with_free_func((GDestroyNotify)raw_free);
  for (int i = 1; i < RELAY_PER_USER; i++) {
    Raw *other = raw_new(lab->sn_host, lab->relay_port);
    g_ptr_array_add(more, other);
    g_assert_cmpuint(raw_allocate(other, username, password), ==, 0);
  }
  g_autoptr(Raw) over = raw_new(lab->sn_host, lab->relay_port);
  g_assert_cmpuint(raw_allocate(over, username, password), ==, 486);

  /* A flood of unauthenticated requests from one (forgeable) source: at most 1000 a
   * second are answered, so the relay is no amplifier for a forged victim. Sent in
   * bursts of 300 until 2000 have arrived (the kernel drops what overflows the SN's
   * socket buffer; the counters say what arrived). How many bursts that takes depends
   * on how fast the SN reads: under the sanitizers 30 bursts once brought 1989, so the
   * bound is a time, not a count. */
  g_autoptr(Raw) flood = raw_new(lab->sn_host, lab->relay_port);
  guint8 bare[20] = { 0x00, 0x03, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42 };
  gint64 flood_start = g_get_monotonic_time();
  gint64 flood_until = flood_start + hark_test_timeout(20000) * 1000;
  gint64 arrived = 0;
  for (int burst = 0; arrived < 2000 && g_get_monotonic_time() < flood_until; burst++) {
    for (int i = 0; i < 300; i++) {
      bare[8] = (guint8)i;
      bare[9] = (guint8)burst;
      raw_send(flood, bare, sizeof bare);
    }
    g_autoptr(JsonObject) counters = relay_counters(lab);
    HARK_REQUIRE(counters != NULL);
    arrived = json_object_get_int_member(json_object_get_object_member(counters, "refused"),
                                         "unauthenticated");
  }
  g_assert_cmpint(arrived, >=, 2000);

  /* Released (lifetime 0), then a permission for it: 437. */
  g_assert_cmpuint(
    raw_request(raw, HARK_STUN_METHOD_REFRESH, username, password, add_lifetime_zero, NULL, NULL),
    ==, 0);
  g_assert_cmpuint(raw_request(raw, HARK_STUN_METHOD_CREATE_PERMISSION, username, password,
                               add_peer, peer_text, NULL),
                   ==, 437);
  /* And now the quota has room again. */
  g_assert_cmpuint(raw_allocate(over, username, password), ==, 0);

  g_autoptr(JsonObject) relay = relay_counters(lab);
  HARK_REQUIRE(relay != NULL);
  double flood_s = (double)(g_get_monotonic_time() - flood_start) / G_USEC_PER_SEC;
  g_autofree char *shown = hark_test_json(relay);
  g_test_message("relay: %s", shown);
  JsonObject *why = json_object_get_object_member(relay, "refused");
  g_assert_cmpint(json_object_get_int_member(why, "wrong_credentials"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(why, "expired_credentials"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(why, "stale_nonce"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(why, "forbidden"), ==, 2 * G_N_ELEMENTS(denied));
  g_assert_cmpint(json_object_get_int_member(why, "unbound_channel"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(why, "malformed"), ==, 3);
  g_assert_cmpint(json_object_get_int_member(why, "quota"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(why, "mismatch"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(relay, "allocations"), ==, RELAY_PER_USER);
  JsonObject *users = json_object_get_object_member(relay, "users");
  g_assert_cmpint(json_object_get_int_member(users, "mallet"), ==, RELAY_PER_USER);
  g_assert_cmpint(json_object_get_int_member(relay, "datagrams_to_peers"), ==, 1);
  /* At most a second's worth (1000) and 1000 a second since were answered (the case's
   * own few besides); whatever else of the 3000 arrived was counted, not answered. */
  gint64 unanswered = json_object_get_int_member(why, "unanswered");
  gint64 answered = json_object_get_int_member(why, "unauthenticated") - unanswered;
  g_test_message("flood: %" G_GINT64_FORMAT " answered, %" G_GINT64_FORMAT " not, within %.2f s",
                 answered, unanswered, flood_s);
  g_assert_cmpint(answered, <=, 1000 + (gint64)(1000 * flood_s) + 20);
}

/* The owner's bandwidth limits: a client sending 30 datagrams of 100 bytes at once
 * through an allocation allowed 1000 bytes/s on a relay allowed 500 bytes/s in all gets
 * about a second's worth of the smaller through (the rest dropped and counted), and
 * while the relay's total is used up, a new allocation is refused 508. The allocation's
 * own limit: tests/unit/test-relay.c (the bucket), and the same code path. */
static void
test_relay_bandwidth(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *username = NULL, *password = NULL, *host = NULL;
  guint16 port = 0;
  HARK_REQUIRE(wire_credentials(lab, &username, &password, &host, &port));
  g_autoptr(Raw) raw = raw_new(lab->sn_host, lab->relay_port);
  g_assert_cmpuint(raw_allocate(raw, username, password), ==, 0);
  g_autofree char *peer_text = NULL;
  g_autoptr(GSocket) peer = loopback_peer(&peer_text);
  (void)peer; /* bound while the case runs: the channel's peer exists */
  g_assert_cmpuint(raw_request(raw, HARK_STUN_METHOD_CHANNEL_BIND, username, password,
                               add_channel_and_peer, peer_text, NULL),
                   ==, 0);
  guint8 datagram[4 + 100] = { 0x40, 0x01, 0x00, 100 };
  for (int i = 0; i < 30; i++)
    raw_send(raw, datagram, sizeof datagram);
  /* The last one sent is the marker: the relay has handled all 30 once its counters say
   * so (they are read through the SN's control socket, after the datagrams). */
  g_autoptr(JsonObject) relay = NULL;
  for (int i = 0; i < 50; i++) {
    g_clear_pointer(&relay, json_object_unref);
    relay = relay_counters(lab);
    HARK_REQUIRE(relay != NULL);
    JsonObject *why = json_object_get_object_member(relay, "refused");
    if (json_object_get_int_member(relay, "datagrams_to_peers") +
          json_object_get_int_member(why, "bandwidth") >=
        30)
      break;
  }
  g_autofree char *shown = hark_test_json(relay);
  g_test_message("relay: %s", shown);
  gint64 through = json_object_get_int_member(relay, "datagrams_to_peers");
  JsonObject *why = json_object_get_object_member(relay, "refused");
  g_assert_cmpint(through + json_object_get_int_member(why, "bandwidth"), ==, 30);
  /* A bucket of one second: 5 datagrams, and a few more for the time the burst took. */
  g_assert_cmpint(through, >=, 5);
  g_assert_cmpint(through, <=, 8);
  g_assert_cmpint(json_object_get_int_member(relay, "bytes_to_peers"), ==, through * 100);
  /* The relay's total is used up: no new allocation for now. */
  g_autoptr(Raw) second = raw_new(lab->sn_host, lab->relay_port);
  g_assert_cmpuint(raw_allocate(second, username, password), ==, 508);
}

/* ---- steering: an SN without a relay hands out another SN's ------------------------ */

static gint64
dropped_of(LabNode *node, const char *counter)
{
  g_autoptr(JsonObject) overlay = lab_call(node, "overlay", NULL);
  if (overlay == NULL)
    return -1;
  return json_object_get_int_member(json_object_get_object_member(overlay, "dropped"), counter);
}

/* alice's SN relays nothing (relay = false): her `turn` names sn2's relay, for her user,
 * and those credentials (on the wire, from her SN) allocate there as a call would. */
static void
test_steer_relay_off(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autoptr(JsonObject) turn = lab_call(lab->alice, "turn", NULL);
  HARK_REQUIRE(turn != NULL);
  g_assert_cmpstr(json_object_get_string_member(turn, "host"), ==, lab->sn2_host);
  g_assert_cmpint(json_object_get_int_member(turn, "port"), ==, lab->relay_port);
  g_assert_true(g_str_has_suffix(json_object_get_string_member(turn, "username"), ":alice"));
  /* sn2's web port (it has none) is not confused with the first SN's. */
  g_assert_false(json_object_has_member(turn, "web_port"));

  g_autofree char *username = NULL, *password = NULL, *host = NULL;
  guint16 port = 0;
  HARK_REQUIRE(wire_credentials(lab, &username, &password, &host, &port));
  g_assert_cmpstr(host, ==, lab->sn2_host);
  g_assert_cmpint(port, ==, lab->relay_port);
  g_assert_true(g_str_has_suffix(username, ":mallet"));
  double gather_ms = 0;
  g_assert_true(allocates(host, port, username, password, &gather_ms));
  g_assert_cmpint(dropped_of(lab->sn, "turn_forwarded"), >=, 2);
  g_assert_cmpint(dropped_of(lab->sn2, "turn_forward_served"), >=, 2);
}

/* alice's SN relays, one allocation in all: credentials name it while it has room, and
 * sn2's relay once an allocation holds its only one (508 to the next Allocate). */
static void
test_steer_full(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *username = NULL, *password = NULL, *host = NULL;
  guint16 port = 0;
  HARK_REQUIRE(wire_credentials(lab, &username, &password, &host, &port));
  g_assert_cmpstr(host, ==, lab->sn_host);
  g_autoptr(Raw) raw = raw_new(host, port);
  g_assert_cmpuint(raw_allocate(raw, username, password), ==, 0);

  g_autofree char *username2 = NULL, *password2 = NULL, *host2 = NULL;
  guint16 port2 = 0;
  HARK_REQUIRE(wire_credentials(lab, &username2, &password2, &host2, &port2));
  g_assert_cmpstr(host2, ==, lab->sn2_host);
  g_assert_cmpint(dropped_of(lab->sn, "turn_forwarded"), ==, 1);
  double gather_ms = 0;
  g_assert_true(allocates(host2, port2, username2, password2, &gather_ms));
}

/* The code of an ERROR answer (0 for TURN_CREDENTIALS) number index, waited for. */
static guint32
answer_code(Mallet *mallet, guint index)
{
  if (!hark_test_wait_for_uint(&mallet->answers->len, index + 1, 5000)) {
    g_test_fail_printf("no answer %u in 5 s", index);
    return G_MAXUINT32;
  }
  guint16 type;
  g_autoptr(GVariant) body = NULL;
  g_variant_get(mallet->answers->pdata[index], "(qv)", &type, &body);
  if (type == HARK_MSG_TURN_CREDENTIALS)
    return 0;
  guint32 code = 0;
  g_variant_get(body, "(u&s)", &code, NULL);
  return code;
}

typedef struct {
  Mallet mallet;
  HarkLink *link;
} Mallory;

/* mallory's link to host, joined as a client (announced NULL) or an SN peer. */
static gboolean
mallory_join(HarkTestNet *net, HarkNode *node, Mallory *m, const char *host, const char *name,
             const char *announced, guint16 port)
{
  m->mallet.answers = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
  m->link = hark_test_peer_open(net, node, host, OVERLAY_PORT, &mallet_handler, &m->mallet);
  if (m->link == NULL)
    return FALSE;
  hark_test_peer_join(m->link, name, announced, port);
  return hark_test_wait_for_flag(&m->mallet.joined, 5000);
}

static guint32
forward(Mallory *m, guint64 id, const char *user)
{
  guint index = m->mallet.answers->len;
  g_assert_true(
    hark_link_send(m->link, HARK_MSG_TURN_FORWARD, id, g_variant_new("(s)", user), NULL));
  return answer_code(&m->mallet, index);
}

/* What a hostile node tries with TURN_FORWARD: as a client (403), as an SN peer whose
 * address is not checked (403), as a verified SN peer with names that are no user's
 * (400) and too fast (429); and a verified peer asking an SN whose relay is off gets
 * 404: a forwarded request is never forwarded again. */
static void
test_steer_hostile(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-steer-XXXXXX");
  g_autoptr(HarkCa) lab_ca = hark_test_peer_ca(lab->login->node->node->state_dir);
  HARK_REQUIRE(lab_ca != NULL);
  HarkNode *node = hark_test_peer_node(&net, "mallory", lab_ca);
  Mallory client = { 0 }, claimed = { 0 }, peer = { 0 }, chained = { 0 };

  HARK_REQUIRE(mallory_join(&net, node, &client, lab->sn2_host, "mallory", NULL, 0));
  g_assert_cmpuint(forward(&client, 2, "alice"), ==, 403);

  guint16 tarpit_port = 0;
  g_autoptr(GSocket) tarpit = hark_test_peer_tarpit(&tarpit_port);
  (void)tarpit; /* listening while mallory claims its address */
  HARK_REQUIRE(
    mallory_join(&net, node, &claimed, lab->sn2_host, "mallory-claimed", "127.0.0.1", tarpit_port));
  g_assert_cmpuint(forward(&claimed, 2, "alice"), ==, 403);

  g_autofree char *announced = hark_test_peer_address(lab->sn_host, 53);
  HARK_REQUIRE(hark_test_peer_listen(node, announced, OVERLAY_PORT));
  HARK_REQUIRE(
    mallory_join(&net, node, &peer, lab->sn2_host, "mallory-sn", announced, OVERLAY_PORT));
  g_autoptr(JsonObject) verified =
    lab_wait_command(lab->sn2, "overlay", has_verified_sn, "mallory-sn", 5000, "mallory verified");
  HARK_REQUIRE(verified != NULL);
  const char *not_users[] = { "",
                              "Alice",
                              "al ice",
                              "alice\nforged: line",
                              "9lives",
                              ("a234567890123456789012345678901234567890123456789012345678901234"
                               "5") };
  for (guint i = 0; i < G_N_ELEMENTS(not_users); i++)
    g_assert_cmpuint(forward(&peer, 10 + i, not_users[i]), ==, 400);
  g_assert_cmpuint(forward(&peer, 20, "alice"), ==, 0);
  gint64 refused = dropped_of(lab->sn2, "turn_forward_refused");
  g_assert_cmpint(refused, >=, (gint64)G_N_ELEMENTS(not_users) + 2);

  /* A burst of 100 a peer, 10 a second after it (7 used above): of 120 more at once,
   * the last are refused. */
  guint base = peer.mallet.answers->len;
  for (guint i = 0; i < 120; i++)
    hark_link_send(peer.link, HARK_MSG_TURN_FORWARD, 100 + i, g_variant_new("(s)", "alice"), NULL);
  HARK_REQUIRE(hark_test_wait_for_uint(&peer.mallet.answers->len, base + 120, 10000));
  guint too_many = 0;
  for (guint i = 0; i < 120; i++)
    too_many += answer_code(&peer.mallet, base + i) == 429;
  g_assert_cmpuint(too_many, >=, 1);
  g_assert_cmpuint(too_many, <=, 40); /* the burst itself is served */

  /* The first SN relays nothing: it answers 404 and asks nobody else. */
  gint64 forwarded = dropped_of(lab->sn, "turn_forwarded");
  HARK_REQUIRE(
    mallory_join(&net, node, &chained, lab->sn_host, "mallory-sn2", announced, OVERLAY_PORT));
  g_autoptr(JsonObject) verified1 =
    lab_wait_command(lab->sn, "overlay", has_verified_sn, "mallory-sn2", 5000, "verified at sn1");
  HARK_REQUIRE(verified1 != NULL);
  g_assert_cmpuint(forward(&chained, 2, "alice"), ==, 404);
  g_assert_cmpint(dropped_of(lab->sn, "turn_forwarded"), ==, forwarded);

  Mallory *all[] = { &client, &claimed, &peer, &chained };
  for (guint i = 0; i < G_N_ELEMENTS(all); i++)
    g_ptr_array_unref(all[i]->mallet.answers);
}

/* A verified SN peer that answers the TURN_FORWARDs it gets as the case says. */
typedef enum {
  FORGE_OTHER_USER, /* credentials naming another user than the one asked for */
  FORGE_BAD_HOST, /* the right user at 0.0.0.0 */
  FORGE_SILENT, /* no answer */
  FORGE_GOOD, /* the right user at a usable address: passed on */
} ForgeMode;

typedef struct {
  gboolean joined;
  ForgeMode mode;
  guint asked;
} Forger;

static void
forger_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  Forger *forger = data;
  if (message->type == HARK_MSG_JOIN_OK)
    forger->joined = TRUE;
  if (message->type != HARK_MSG_TURN_FORWARD)
    return;
  forger->asked++;
  if (forger->mode == FORGE_SILENT)
    return;
  const char *user = NULL;
  g_variant_get(message->body, "(&s)", &user);
  gint64 expiry = g_get_real_time() / G_USEC_PER_SEC + 600;
  g_autofree char *username = g_strdup_printf("%" G_GINT64_FORMAT ":%s", expiry,
                                              forger->mode == FORGE_OTHER_USER ? "bob" : user);
  const char *host = forger->mode == FORGE_BAD_HOST ? "0.0.0.0" : "127.0.0.1";
  hark_link_send(link, HARK_MSG_TURN_CREDENTIALS, message->id,
                 g_variant_new("(sqssxb)", host, 3478, username, "forged-password", expiry, TRUE),
                 NULL);
}

static const HarkLinkHandler forger_handler = {
  .message = forger_message,
  .closed = hark_test_peer_closed,
};

static gboolean
no_verified_sn(JsonObject *overlay, gconstpointer data)
{
  return !has_verified_sn(overlay, data);
}

/* The TURN_REQUEST of victim (a client of the first SN) number index: its answer's code. */
static guint32
victim_asks(Mallory *victim, guint64 id)
{
  guint index = victim->mallet.answers->len;
  g_assert_true(hark_link_send(victim->link, HARK_MSG_TURN_REQUEST, id, g_variant_new("()"), NULL));
  return answer_code(&victim->mallet, index);
}

/* The first SN (relay off) has only a hostile verified peer left to ask (sn2 is gone):
 * its answers naming another user or an unusable address never reach the client, who
 * hears 404 (counted turn_forward_bad); its silence ends in 404 after 4 s, within the
 * client's 5 s; a good answer is handed on under the client's request. */
static void
test_steer_hostile_answers(TurnLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  lab_node_kill(lab->sn2);
  g_autoptr(JsonObject) alone = lab_wait_command(lab->sn, "overlay", no_verified_sn, "turn-sn2",
                                                 hark_test_timeout(15000), "sn2 gone");
  HARK_REQUIRE(alone != NULL);
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-forger-XXXXXX");
  g_autoptr(HarkCa) lab_ca = hark_test_peer_ca(lab->login->node->node->state_dir);
  HARK_REQUIRE(lab_ca != NULL);
  HarkNode *node = hark_test_peer_node(&net, "forger", lab_ca);
  g_autofree char *announced = hark_test_peer_address(lab->sn_host, 54);
  HARK_REQUIRE(hark_test_peer_listen(node, announced, OVERLAY_PORT));
  Forger forger = { FALSE, FORGE_OTHER_USER, 0 };
  HarkLink *link =
    hark_test_peer_open(&net, node, lab->sn_host, OVERLAY_PORT, &forger_handler, &forger);
  HARK_REQUIRE(link != NULL);
  hark_test_peer_join(link, "forger", announced, OVERLAY_PORT);
  HARK_REQUIRE(hark_test_wait_for_flag(&forger.joined, 5000));
  g_autoptr(JsonObject) verified =
    lab_wait_command(lab->sn, "overlay", has_verified_sn, "forger", 5000, "forger verified");
  HARK_REQUIRE(verified != NULL);

  HarkNode *victim_node = hark_test_peer_node(&net, "victim", lab_ca);
  Mallory victim = { 0 };
  HARK_REQUIRE(mallory_join(&net, victim_node, &victim, lab->sn_host, "victim", NULL, 0));
  gint64 bad = dropped_of(lab->sn, "turn_forward_bad");
  g_assert_cmpuint(victim_asks(&victim, 2), ==, 404);
  g_assert_cmpuint(forger.asked, ==, 1);
  forger.mode = FORGE_BAD_HOST;
  g_assert_cmpuint(victim_asks(&victim, 3), ==, 404);
  g_assert_cmpuint(forger.asked, ==, 2);
  g_assert_cmpint(dropped_of(lab->sn, "turn_forward_bad"), ==, bad + 2);

  forger.mode = FORGE_SILENT;
  gint64 start = g_get_monotonic_time();
  g_assert_cmpuint(victim_asks(&victim, 4), ==, 404);
  gint64 waited_ms = (g_get_monotonic_time() - start) / 1000;
  g_assert_cmpint(waited_ms, >=, 3900);
  g_assert_cmpint(waited_ms, <, 5000);

  forger.mode = FORGE_GOOD;
  guint index = victim.mallet.answers->len;
  g_assert_cmpuint(victim_asks(&victim, 5), ==, 0);
  guint16 type;
  g_autoptr(GVariant) body = NULL;
  g_variant_get(victim.mallet.answers->pdata[index], "(qv)", &type, &body);
  const char *username = NULL;
  g_variant_get(body, "(&sq&s&sxb)", NULL, NULL, &username, NULL, NULL, NULL);
  g_assert_true(g_str_has_suffix(username, ":victim"));
  g_ptr_array_unref(victim.mallet.answers);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 90000);
  hark_test_add_isolated("/turn/credentials", TurnLab, &WITH_TURN, lab_set_up, test_credentials,
                         lab_tear_down);
  hark_test_add_isolated("/turn/no-server", TurnLab, &WITHOUT_TURN, lab_set_up, test_no_server,
                         lab_tear_down);
  hark_test_add_isolated_func("/turn/secret-mode", test_secret_mode);
  hark_test_add_isolated("/turn/relay/uclient", TurnLab, &OWN_RELAY, lab_set_up, test_relay_uclient,
                         lab_tear_down);
  hark_test_add_isolated("/turn/relay/web-port", TurnLab, &WEB_RELAY, lab_set_up,
                         test_relay_web_port, lab_tear_down);
  hark_test_add_isolated("/turn/relay/refused", TurnLab, &OWN_RELAY, lab_set_up, test_relay_refused,
                         lab_tear_down);
  hark_test_add_isolated("/turn/relay/bandwidth", TurnLab, &TIGHT_RELAY, lab_set_up,
                         test_relay_bandwidth, lab_tear_down);
  hark_test_add_isolated("/turn/steer/relay-off", TurnLab, &STEER, lab_set_up, test_steer_relay_off,
                         lab_tear_down);
  hark_test_add_isolated("/turn/steer/hostile", TurnLab, &STEER, lab_set_up, test_steer_hostile,
                         lab_tear_down);
  hark_test_add_isolated("/turn/steer/full", TurnLab, &STEER_FULL, lab_set_up, test_steer_full,
                         lab_tear_down);
  hark_test_add_isolated("/turn/steer/hostile-answers", TurnLab, &STEER, lab_set_up,
                         test_steer_hostile_answers, lab_tear_down);
  return g_test_run();
}
