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

#include <agent.h>
#include <glib/gstdio.h>
#include <string.h>

#define OVERLAY_PORT 33037
#define JOIN_MS 15000
#define SECRET "turn-secret-7c1e9a55d2b0"
#define LIFETIME_S 86400

typedef struct {
  gboolean with_turn;
  LabLoginServer *login;
  char *sn_host;
  char *dir; /* the secret file, coturn's files */
  char *secret_path;
  guint16 turn_port;
  GSubprocess *coturn;
  LabNode *sn;
  LabNode *alice;
} TurnLab;

static const gboolean WITH_TURN = TRUE, WITHOUT_TURN = FALSE;

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
                        : g_strdup("");
  return g_strdup_printf("node: { name = \"turn-sn\"; supernode = true; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = 0;\n%s};\n"
                         "login: { url = \"%s\"; ca = \"%s\"; };\n",
                         lab->sn_host, OVERLAY_PORT, lab->sn_host, turn, lab->login->url,
                         lab->login->ca_path);
}

static void
lab_set_up(TurnLab *lab, gconstpointer data)
{
  lab->with_turn = *(const gboolean *)data;
  guint a = (guint)g_random_int_range(1, 255), b = (guint)g_random_int_range(0, 255);
  lab->sn_host = g_strdup_printf("127.%u.%u.51", a, b);
  lab->dir = g_dir_make_tmp("hark-turn-XXXXXX", NULL);
  lab->turn_port = lab_free_port();
  lab->login = lab_login_server_new();
  if (lab->login == NULL)
    return;
  if (lab->with_turn) {
    lab->secret_path = write_secret(lab->dir, "turn-secret", 0600);
    /* coturn as the labs run it: REST-API credentials with the lab's secret. */
    lab->coturn = lab_coturn_start(lab->dir, lab->turn_port, SECRET);
  }
  g_autofree char *config = sn_config(lab, lab->secret_path);
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
  g_autofree char *alice = lab_client_config("alice", lab->sn_host, OVERLAY_PORT, lab->login, NULL);
  lab->alice = lab_client_start("alice", alice, "alice", TRUE, hark_test_timeout(JOIN_MS));
}

static void
lab_tear_down(TurnLab *lab, gconstpointer data)
{
  LabNode **nodes[] = { &lab->alice, &lab->sn };
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
allocates(const char *host, guint16 port, const char *username, const char *password,
          double *gather_ms)
{
  NiceAgent *agent = nice_agent_new(g_main_context_default(), NICE_COMPATIBILITY_RFC5245);
  g_object_set(agent, "ice-tcp", FALSE, "upnp", FALSE, NULL);
  NiceAddress local;
  nice_address_init(&local);
  g_assert_true(nice_address_set_from_string(&local, "127.0.0.1"));
  nice_agent_add_local_address(agent, &local);
  guint stream = nice_agent_add_stream(agent, 1);
  g_assert_true(nice_agent_set_relay_info(agent, stream, 1, host, port, username, password,
                                          NICE_RELAY_TYPE_TURN_UDP));
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

  if (lab->coturn == NULL) {
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

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 90000);
  hark_test_add_isolated("/turn/credentials", TurnLab, &WITH_TURN, lab_set_up, test_credentials,
                         lab_tear_down);
  hark_test_add_isolated("/turn/no-server", TurnLab, &WITHOUT_TURN, lab_set_up, test_no_server,
                         lab_tear_down);
  hark_test_add_isolated_func("/turn/secret-mode", test_secret_mode);
  return g_test_run();
}
