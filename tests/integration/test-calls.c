/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-calls.c: signals and calls end to end with real processes. Each case makes its own
 * lab in a process of its own (test-isolate.h): a login server, one super node, alice,
 * bob (on one or two devices) and, for the attacks, carol, whose node has a test clock
 * (so that it has the `signal` command and can send what no call would).
 *
 * What a user would notice: a signal reaches each online device of its user once, and
 * one of a kind nobody takes, or sealed too long ago, is dropped and counted. `call bob`
 * rings every device of bob's; the one that answers gets the call (the others stop with
 * "answered elsewhere"), and each side hears the other's tone (alice sends 440 Hz, bob
 * 1000 Hz; the frequency is measured in the WAV each wrote); decline, cancel and busy end
 * the call with a reason on both sides; a codec change and hold/resume keep the call; a
 * flood of INVITEs from one user is refused and counted while another user's call rings. */
#include "harness.h"
#include "lab.h"
#include "test-files.h"
#include "test-isolate.h"
#include "test-wav.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define OVERLAY_PORT 33039
#define CALL_MS 10000
#define JOIN_MS 15000
#define ARRIVE_MS 10000

typedef enum {
  LAB_BOB_PHONE = 1 << 0, /* bob on a second device */
  LAB_CAROL = 1 << 1, /* carol, with a test clock */
  LAB_BOB_ONE_CALL = 1 << 2, /* bob's calls.max = 1 */
  LAB_BOB_MANY_CALLS = 1 << 3, /* bob's calls.max = 16 */
  LAB_ALICE_RINGS_5S = 1 << 4, /* alice's calls.ring_timeout = 5 */
  LAB_TURN = 1 << 5, /* coturn, and the SN vouches for it */
  LAB_BOB_TEST_CLOCK = 1 << 6, /* bob's desk has a test clock */
  LAB_ALICE_TEST_CLOCK = 1 << 7, /* alice's node has a test clock (she forges signals too) */
  LAB_CAROL_PHONE = 1 << 8, /* carol on a second device too */
  LAB_SHORT_CERTIFICATES = 1 << 9, /* the login server's certificate_lifetime = 5 */
  LAB_NO_COMMON_CODEC = 1 << 10, /* bob's media.codecs are opus alone, carol's g711 alone */
  LAB_SN_RELAY = 1 << 11, /* the SN's own TURN server (loopback peers allowed), no coturn */
  LAB_STEERED = 1 << 12, /* the SN relays nothing; a second SN it links to (sn2) does */
  LAB_SN_FEW_LOOKUPS = 1 << 13, /* the SN's directory.lookups_per_minute = 12 */
  LAB_TURN_DEAD = 1 << 14, /* the SN vouches for a TURN server nobody answers for */
} LabFlags;

#define TURN_SECRET "calls-turn-secret-5e02b7"

typedef struct {
  LabLoginServer *login;
  char *sn_host;
  char *dir; /* where the nodes' received audio goes */
  LabNode *sn;
  LabNode *sn2; /* LAB_STEERED */
  char *sn2_host;
  LabNode *alice;
  LabNode *bob;
  LabNode *bob_phone;
  LabNode *carol;
  LabNode *carol_phone;
  GHashTable *logs; /* LabNode* -> LabEvents*: the `call` events each node's ctl client saw */
  GSubprocess *coturn; /* LAB_TURN, when turnserver is installed */
  guint16 turn_port;
  char *turn_secret_path;
  gboolean up;
  LabFlags flags;
} CallLab;

/* ---- the lab ------------------------------------------------------------------------ */

static char *
sn_config(CallLab *lab)
{
  g_autofree char *turn =
    lab->turn_secret_path != NULL
      ? g_strdup_printf(" turn_server = \"127.0.0.1:%u\"; turn_secret_file = \"%s\";",
                        lab->turn_port, lab->turn_secret_path)
    : (lab->flags & LAB_SN_RELAY)
      ? g_strdup_printf(" relay_port = %u; relay_tls_port = 0; relay_allow = [ \"127.0.0.0/8\" ];",
                        lab_free_port())
      : g_strdup(" relay = false;"); /* an SN without any TURN server (no relay of its own) */
  return g_strdup_printf(
    "node: { name = \"calls-sn\"; supernode = true; };\n"
    "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
    "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
    "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
    "  allow_loopback = true; bootstrap = ( ); };\n"
    "supernode: { min_uptime = 0; max_load = 10000; links = 0;%s };\n"
    "login: { url = \"%s\"; ca = \"%s\"; };\n%s",
    lab->sn_host, OVERLAY_PORT, lab->sn_host, turn, lab->login->url, lab->login->ca_path,
    (lab->flags & LAB_SN_FEW_LOOKUPS) ? "directory: { lookups_per_minute = 12; };\n" : "");
}

/* coturn with the lab's secret, which the SN vouches for (its file 0600). Without
 * turnserver installed, or with LAB_TURN_DEAD, the SN vouches for a port nobody answers
 * on. FALSE: the case failed. */
static gboolean
turn_start(CallLab *lab)
{
  lab->turn_secret_path = g_build_filename(lab->dir, "turn-secret", NULL);
  g_assert_true(g_file_set_contents(lab->turn_secret_path, TURN_SECRET "\n", -1, NULL));
  g_assert_cmpint(g_chmod(lab->turn_secret_path, 0600), ==, 0);
  if (!lab_coturn_installed() || (lab->flags & LAB_TURN_DEAD)) {
    lab->turn_port = lab_free_port();
    return TRUE;
  }
  lab->coturn = lab_coturn_start(lab->dir, TURN_SECRET, &lab->turn_port);
  return lab->coturn != NULL;
}

/* Every client sends a tone (alice 440 Hz, the others 1000 Hz) and writes what it hears
 * to <dir>/<name>.wav. */
static LabNode *
client_start(CallLab *lab, const char *name, const char *user, gboolean register_first,
             const char *node_extra, const char *calls)
{
  /* What a node answers with is what it has loaded (docs/protocol.md, "Calls: the call"),
   * so a node without a codec does not load its plugin. */
  const char *codecs = "\"opus\", \"g711\", \"g722\", \"l16\"";
  const char *plugins = ", { name = \"opus\"; }, { name = \"g711\"; }, "
                        "{ name = \"g722\"; }, { name = \"l16\"; }";
  if ((lab->flags & LAB_NO_COMMON_CODEC) && strcmp(user, "bob") == 0) {
    codecs = "\"opus\"";
    plugins = ", { name = \"opus\"; }";
  } else if ((lab->flags & LAB_NO_COMMON_CODEC) && strcmp(user, "carol") == 0) {
    codecs = "\"g711\"";
    plugins = ", { name = \"g711\"; }";
  }
  g_autofree char *media = g_strdup_printf("media: { codecs = [ %s ]; source = \"tone:%u\";\n"
                                           "  sink = \"wav:%s/%s.wav\"; };\n"
                                           "calls: { %s };\n",
                                           codecs, strcmp(user, "alice") == 0 ? 440 : 1000,
                                           lab->dir, name, calls != NULL ? calls : "");
  g_autofree char *config = lab_client_config_with_node(name, node_extra, plugins, lab->sn_host,
                                                        OVERLAY_PORT, lab->login, media);
  LabNode *node = lab_client_start(name, config, user, register_first, hark_test_timeout(JOIN_MS));
  if (node != NULL) {
    LabEvents *log = g_new0(LabEvents, 1);
    lab_events_init(log);
    g_hash_table_insert(lab->logs, node, log);
  }
  return node;
}

static void
event_log_free(gpointer data)
{
  LabEvents *log = data;
  lab_events_clear(log);
  g_free(log);
}

static gboolean
linked_to_sn2(JsonObject *overlay, gconstpointer data)
{
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  for (guint i = 0; links != NULL && i < json_array_get_length(links); i++) {
    JsonObject *link = json_array_get_object_element(links, i);
    if (g_strcmp0(json_object_get_string_member_with_default(link, "name", NULL), "calls-sn2") == 0)
      return json_object_get_boolean_member_with_default(link, "verified", FALSE);
  }
  return FALSE;
}

/* LAB_STEERED: starts sn2 (its own relay, at 127.a.b.52) and answers the first SN's
 * configuration (config: relay off) linked to it. NULL: the case failed. config is taken. */
static char *
steered_config(CallLab *lab, char *config)
{
  g_autofree char *off = config;
  lab->sn2_host = g_strdup(lab->sn_host);
  lab->sn2_host[strlen(lab->sn2_host) - 1] = '2';
  char *first_host = lab->sn_host;
  lab->sn_host = lab->sn2_host;
  lab->flags |= LAB_SN_RELAY;
  g_autofree char *relaying = sn_config(lab);
  lab->flags &= ~LAB_SN_RELAY;
  lab->sn_host = first_host;
  g_autoptr(GString) second = g_string_new(relaying);
  g_string_replace(second, "\"calls-sn\"", "\"calls-sn2\"", 1);
  lab->sn2 = lab_node_new("calls-sn2", second->str);
  if (!lab_node_start(lab->sn2) || !lab_register_and_login(lab->sn2, "calls-sn2-user"))
    return NULL;
  g_autoptr(GString) first = g_string_new(off);
  g_autofree char *bootstrap =
    g_strdup_printf("bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"tcp\" ]; } )",
                    lab->sn2_host, OVERLAY_PORT);
  g_string_replace(first, "bootstrap = ( )", bootstrap, 1);
  g_string_replace(first, "links = 0;", "links = 1;", 1);
  return g_string_free(g_steal_pointer(&first), FALSE);
}

static void
lab_set_up(CallLab *lab, gconstpointer data)
{
  LabFlags flags = GPOINTER_TO_UINT(data);
  lab->flags = flags;
  lab->sn_host = g_strdup_printf("127.%u.%u.51", (guint)g_random_int_range(1, 255),
                                 (guint)g_random_int_range(0, 255));
  lab->dir = g_dir_make_tmp("hark-calls-XXXXXX", NULL);
  lab->logs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, event_log_free);
  lab->login = (flags & LAB_SHORT_CERTIFICATES)
                 ? lab_login_server_new_with("certificate_lifetime = 5;")
                 : lab_login_server_new();
  if (lab->login == NULL || lab->dir == NULL)
    return;
  if ((flags & (LAB_TURN | LAB_TURN_DEAD)) && !turn_start(lab))
    return;
  g_autofree char *config = sn_config(lab);
  if ((flags & LAB_STEERED) && (config = steered_config(lab, config)) == NULL)
    return;
  lab->sn = lab_node_new("calls-sn", config);
  if (!lab_node_start(lab->sn) || !lab_register_and_login(lab->sn, "calls-sn-user"))
    return;
  g_autoptr(JsonObject) super = lab_wait_command(lab->sn, "overlay", lab_overlay_is_super, NULL,
                                                 hark_test_timeout(JOIN_MS), "serving");
  if (super == NULL)
    return;
  if (flags & LAB_STEERED) {
    g_autoptr(JsonObject) linked = lab_wait_command(lab->sn, "overlay", linked_to_sn2, NULL,
                                                    hark_test_timeout(JOIN_MS), "linked to sn2");
    if (linked == NULL)
      return;
  }
  const char *bob_calls = (flags & LAB_BOB_ONE_CALL)     ? "max = 1;"
                          : (flags & LAB_BOB_MANY_CALLS) ? "max = 16;"
                                                         : NULL;
  const char *alice_calls = (flags & LAB_ALICE_RINGS_5S) ? "ring_timeout = 5;" : NULL;
  if ((lab->alice = client_start(lab, "alice", "alice", TRUE,
                                 (flags & LAB_ALICE_TEST_CLOCK) ? "test_clock = true;" : NULL,
                                 alice_calls)) == NULL ||
      (lab->bob = client_start(lab, "bob-desk", "bob", TRUE,
                               (flags & LAB_BOB_TEST_CLOCK) ? "test_clock = true;" : NULL,
                               bob_calls)) == NULL)
    return;
  if ((flags & LAB_BOB_PHONE) &&
      (lab->bob_phone = client_start(lab, "bob-phone", "bob", FALSE, NULL, bob_calls)) == NULL)
    return;
  if ((flags & LAB_CAROL) &&
      (lab->carol = client_start(lab, "carol", "carol", TRUE, "test_clock = true;", NULL)) == NULL)
    return;
  if ((flags & LAB_CAROL_PHONE) &&
      (lab->carol_phone = client_start(lab, "carol-phone", "carol", FALSE, NULL, NULL)) == NULL)
    return;
  lab->up = TRUE;
}

static void
lab_tear_down(CallLab *lab, gconstpointer data)
{
  LabNode **nodes[] = { &lab->carol_phone, &lab->carol, &lab->bob_phone, &lab->bob,
                        &lab->alice,       &lab->sn,    &lab->sn2 };
  lab_nodes_kill_free(nodes, G_N_ELEMENTS(nodes));
  g_clear_pointer(&lab->login, lab_login_server_free);
  g_clear_pointer(&lab->logs, g_hash_table_unref);
  lab_coturn_stop(&lab->coturn);
  g_free(lab->turn_secret_path);
  if (lab->dir != NULL)
    hark_test_remove_tree(lab->dir);
  g_free(lab->dir);
  g_free(lab->sn_host);
  g_free(lab->sn2_host);
}

#define LAB_UP(lab) HARK_REQUIRE((lab)->up)

/* ---- helpers ------------------------------------------------------------------------ */

static char *
device_id(LabNode *node)
{
  g_autoptr(JsonObject) whoami = lab_call(node, "whoami", NULL);
  return whoami != NULL ? g_strdup(json_object_get_string_member(whoami, "device_id")) : NULL;
}

/* Polls the messenger's counter name at node until it is at least value (bounded). */
static gboolean
wait_counter(LabNode *node, const char *name, gint64 value)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  gint64 now = -1;
  while ((now = lab_device_counter(node, name)) < value && g_get_monotonic_time() < until)
    g_usleep(50 * 1000);
  if (now >= value)
    return TRUE;
  g_test_fail_printf("%s: %s is %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT, node->name, name, now,
                     value);
  hark_test_node_show_logs(node->node);
  return FALSE;
}

static gboolean
array_has(JsonArray *array, const char *text)
{
  for (guint i = 0; array != NULL && i < json_array_get_length(array); i++)
    if (g_strcmp0(json_array_get_string_element(array, i), text) == 0)
      return TRUE;
  return FALSE;
}

/* ---- signals ------------------------------------------------------------------------ */

/* carol signals bob: both his devices get it once (delivered says so, each counts one),
 * and as nothing takes that kind each drops it and counts it. Another kind, another
 * signal: each counts exactly two then, not more. Sealed two minutes before the desk's
 * now (its clock moved on): dropped there as old. */
static void
test_signal_every_device_once(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *desk = device_id(lab->bob);
  g_autofree char *phone = device_id(lab->bob_phone);
  HARK_REQUIRE(desk != NULL && phone != NULL);
  g_autoptr(JsonObject) sent =
    lab_call(lab->carol, "signal", lab_args("to", "Bob", "kind", "nothing-here", NULL));
  HARK_REQUIRE(sent != NULL);
  JsonArray *delivered = json_object_get_array_member(sent, "delivered");
  g_assert_cmpuint(json_array_get_length(delivered), ==, 2);
  g_assert_true(array_has(delivered, desk));
  g_assert_true(array_has(delivered, phone));
  HARK_REQUIRE(wait_counter(lab->bob, "signals_refused", 1));
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", 1));

  g_autoptr(JsonObject) again =
    lab_call(lab->carol, "signal", lab_args("to", "bob", "kind", "nothing-else", NULL));
  HARK_REQUIRE(again != NULL);
  HARK_REQUIRE(wait_counter(lab->bob, "signals_refused", 2));
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", 2));
  g_assert_cmpint(lab_device_counter(lab->bob, "signals_refused"), ==, 2);
  g_assert_cmpint(lab_device_counter(lab->bob_phone, "signals_refused"), ==, 2);
  g_assert_cmpint(lab_device_counter(lab->bob, "signals_received"), ==, 0);
  g_assert_cmpint(lab_device_counter(lab->carol, "signals_sent"), ==, 2);

  /* To one device only. */
  g_autoptr(JsonObject) one = lab_call(
    lab->carol, "signal", lab_args("to", "bob", "kind", "nothing-here", "device", phone, NULL));
  HARK_REQUIRE(one != NULL);
  delivered = json_object_get_array_member(one, "delivered");
  g_assert_cmpuint(json_array_get_length(delivered), ==, 1);
  g_assert_true(array_has(delivered, phone));
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", 3));

  /* Seen from bob's desk two minutes on (its clock moved), carol's next signal was
   * sealed too long ago: the desk drops it before any handler (its phone, whose clock did
   * not move, hands it to the calls, which refuse its empty body). */
  HARK_REQUIRE(lab_clock_advance(lab->bob->ctl, 120));
  g_autoptr(JsonObject) old =
    lab_call(lab->carol, "signal", lab_args("to", "bob", "kind", "call", NULL));
  HARK_REQUIRE(old != NULL);
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(old, "delivered")), ==, 2);
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_received", 1));
  HARK_REQUIRE(wait_counter(lab->bob, "signals_refused", 3));
  g_assert_cmpint(lab_device_counter(lab->bob, "signals_received"), ==, 0);
  g_assert_cmpint(lab_device_counter(lab->bob_phone, "signals_refused"), ==, 3);

  /* Nobody online: an error the sender can read. */
  g_autoptr(JsonObject) nobody =
    lab_ask(lab->carol, "signal", lab_args("to", "nobody-here", "kind", "nothing-here", NULL));
  HARK_REQUIRE(nobody != NULL);
  g_assert_false(json_object_get_boolean_member_with_default(nobody, "ok", TRUE));
}

#define SIGNAL_FLOOD 90 /* over the SN's 50 at once and 20 a second */

/* carol sends SIGNAL_FLOOD signals to bob's phone at once, more than their SN takes from
 * her link at once: the refused ones go again a moment later, so every one is answered
 * delivered and the phone counts each (none is lost to the SN's 429, which before ended
 * a conference's tenth call). carol's signals_retried shows the rate was met. */
static void
test_signal_over_rate(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *phone = device_id(lab->bob_phone);
  HARK_REQUIRE(phone != NULL);
  for (guint i = 0; i < SIGNAL_FLOOD; i++) {
    g_autofree char *id = g_strdup_printf("flood-%u", i);
    HARK_REQUIRE(
      hark_test_client_send(lab->carol->ctl, id, "signal",
                            lab_args("to", "bob", "kind", "nothing-here", "device", phone, NULL)));
  }
  guint answered = 0, delivered = 0;
  while (answered < SIGNAL_FLOOD) {
    g_autoptr(JsonObject) line =
      hark_test_client_read(lab->carol->ctl, hark_test_timeout(ARRIVE_MS));
    HARK_REQUIRE(line != NULL);
    if (!g_str_has_prefix(json_object_get_string_member_with_default(line, "id", ""), "flood-"))
      continue; /* an event */
    answered++;
    if (json_object_get_boolean_member_with_default(line, "ok", FALSE)) {
      delivered++;
    } else {
      g_autofree char *text = hark_test_json(line);
      g_test_message("refused: %s", text);
    }
  }
  g_test_message("%u of %u signals delivered; carol sent %" G_GINT64_FORMAT " again", delivered,
                 SIGNAL_FLOOD, lab_device_counter(lab->carol, "signals_retried"));
  g_assert_cmpuint(delivered, ==, SIGNAL_FLOOD);
  g_assert_cmpint(lab_device_counter(lab->carol, "signals_retried"), >, 0);
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", SIGNAL_FLOOD));
  g_assert_cmpint(lab_device_counter(lab->bob_phone, "signals_refused"), ==, SIGNAL_FLOOD);
}

/* A counter of node's directory (its `directory` command: lookups made, refused, ...), or -1. */
static gint64
directory_counter(LabNode *node, const char *counter)
{
  g_autoptr(JsonObject) directory = lab_call(node, "directory", NULL);
  JsonObject *counters =
    directory != NULL ? json_object_get_object_member(directory, "counters") : NULL;
  return counters != NULL ? json_object_get_int_member_with_default(counters, counter, -1) : -1;
}

static gboolean
signal_delivered(LabNode *from, const char *user, const char *device, char **why)
{
  g_autoptr(JsonObject) answer =
    lab_ask(from, "signal",
            device != NULL ? lab_args("to", user, "kind", "nothing-here", "device", device, NULL)
                           : lab_args("to", user, "kind", "nothing-here", NULL));
  g_assert_nonnull(answer);
  if (why != NULL) {
    JsonObject *error = json_object_get_object_member(answer, "error");
    *why = error != NULL
             ? g_strdup(json_object_get_string_member_with_default(error, "message", ""))
             : NULL;
  }
  return json_object_get_boolean_member_with_default(answer, "ok", FALSE);
}

/* A call's later signals and a conference's rosters go to one device of a user that
 * this node has talked to. carol signals bob's phone once (a lookup), then twelve times
 * more, each after her clock moved past the online list's 10 s: where the phone was
 * serves, and she looks nobody up again (before, each cost a lookup at her SN, which
 * answers 30 a minute: a conference host's rosters to its members spent them all, and
 * its next call failed). When the phone is gone, its SN says so, carol looks bob up once
 * more, and her signal fails saying the device is not online. */
static void
test_signal_one_device_known(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *phone = device_id(lab->bob_phone);
  HARK_REQUIRE(phone != NULL);
  HARK_REQUIRE(signal_delivered(lab->carol, "bob", phone, NULL));
  gint64 first = directory_counter(lab->carol, "lookups");
  HARK_REQUIRE(first > 0);
  for (guint i = 0; i < 12; i++) {
    HARK_REQUIRE(lab_clock_advance(lab->carol->ctl, 11));
    g_assert_true(signal_delivered(lab->carol, "bob", phone, NULL));
  }
  g_test_message("carol's lookups: %" G_GINT64_FORMAT " after the first signal, %" G_GINT64_FORMAT
                 " after twelve more",
                 first, directory_counter(lab->carol, "lookups"));
  /* Before, each of the twelve was a lookup; now none is (one more is let pass, for
   * anything else of carol's that may look someone up meanwhile). */
  gint64 known = directory_counter(lab->carol, "lookups");
  g_assert_cmpint(known, <=, first + 1);

  HARK_REQUIRE(lab_node_stop(lab->bob_phone));
  g_autofree char *why = NULL;
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  while (signal_delivered(lab->carol, "bob", phone, &why) && g_get_monotonic_time() < until) {
    g_clear_pointer(&why, g_free);
    g_usleep(200 * 1000); /* until the SN has seen the phone's link go */
  }
  g_test_message("to the stopped phone: %s", why != NULL ? why : "(delivered)");
  g_assert_nonnull(why);
  g_assert_nonnull(strstr(why, "is not online"));
  g_assert_cmpint(directory_counter(lab->carol, "lookups"), >, known); /* looked up again */
}

/* carol signals all of bob's devices, her clock a second on each time so that each asks
 * the directory afresh, until her SN refuses one more lookup than before (bob's last known
 * devices serve meanwhile). FALSE if it never did. */
static gboolean
spend_lookups(CallLab *lab)
{
  gint64 refused = directory_counter(lab->sn, "lookups_limited");
  for (guint spent = 0; spent < 40; spent++) {
    if (!lab_clock_advance(lab->carol->ctl, 1))
      return FALSE;
    g_assert_true(signal_delivered(lab->carol, "bob", NULL, NULL));
    if (directory_counter(lab->sn, "lookups_limited") > refused) {
      g_test_message("the SN refused a lookup after %u signals to bob", spent + 1);
      return TRUE;
    }
  }
  return FALSE;
}

/* carol's SN answers her 12 lookups a minute (10 at once), and she has spent them. Her
 * signal to alice, never looked up, then fails saying that the directory did not answer,
 * not that alice has no device online (the SN's bucket may refill between its refusal
 * and alice's lookup: then she spends them again, up to three times). Once the SN
 * answers again (5 s), one of her next signals reaches alice: the refusal was not kept
 * as an empty answer. */
static void
test_signal_lookup_refused(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *why = NULL;
  gboolean refused = FALSE;
  for (guint round = 0; round < 3 && !refused; round++) {
    HARK_REQUIRE(spend_lookups(lab));
    g_clear_pointer(&why, g_free);
    refused = !signal_delivered(lab->carol, "alice", NULL, &why);
    if (!refused)
      g_test_message("alice's lookup came after the SN's bucket refilled: again");
  }
  HARK_REQUIRE(refused);
  g_test_message("to alice: %s", why);
  g_assert_nonnull(strstr(why, "the directory did not answer"));
  g_assert_nonnull(strstr(why, "too many lookups"));

  gboolean reached = FALSE;
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  while (!reached && g_get_monotonic_time() < until) {
    g_usleep(500 * 1000);
    reached = signal_delivered(lab->carol, "alice", NULL, NULL);
  }
  g_assert_true(reached);
}

/* ---- calls: asking, events, audio --------------------------------------------------- */

static const char *
str(JsonObject *o, const char *name)
{
  return o != NULL ? json_object_get_string_member_with_default(o, name, NULL) : NULL;
}

/* The lab's asking and waiting (lab.h), on node's event log: the result of command at
 * node, or NULL (test failed). */
static JsonObject *
ask(CallLab *lab, LabNode *node, const char *command, JsonObject *args)
{
  return lab_events_ask(node, g_hash_table_lookup(lab->logs, node), command, args, NULL);
}

static JsonObject *
wait_event(CallLab *lab, LabNode *node, LabEventMatch match, gconstpointer data, const char *what,
           guint timeout_ms)
{
  return lab_events_wait(node, g_hash_table_lookup(lab->logs, node), match, data, what, timeout_ms);
}

/* A `call` event: for call id (NULL: any) in state. */
typedef struct {
  const char *id;
  const char *state;
} CallWanted;

static gboolean
event_fits(JsonObject *e, gconstpointer data)
{
  const CallWanted *want = data;
  return g_strcmp0(json_object_get_string_member_with_default(e, "event", NULL), "call") == 0 &&
         (want->id == NULL ||
          g_strcmp0(json_object_get_string_member(e, "call_id"), want->id) == 0) &&
         g_strcmp0(json_object_get_string_member(e, "state"), want->state) == 0;
}

/* The next `call` event for call id (NULL: any) in state. */
static JsonObject *
wait_call(CallLab *lab, LabNode *node, const char *id, const char *state, guint timeout_ms)
{
  const CallWanted want = { id, state };
  g_autofree char *what = g_strdup_printf("call %s %s", id != NULL ? id : "", state);
  return wait_event(lab, node, event_fits, &want, what, timeout_ms);
}

/* node's `stats` for call id once pred holds (bounded), or NULL (test failed). */
typedef gboolean (*StatsPredicate)(JsonObject *stats, gconstpointer data);

static JsonObject *
wait_stats(CallLab *lab, LabNode *node, const char *id, StatsPredicate pred, gconstpointer data,
           const char *what)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  JsonObject *stats = NULL;
  while (g_get_monotonic_time() < until) {
    g_clear_pointer(&stats, json_object_unref);
    stats = ask(lab, node, "stats", lab_args("id", id, NULL));
    if (stats == NULL || pred(stats, data))
      return stats;
    g_usleep(100 * 1000);
  }
  g_autofree char *shown = stats != NULL ? hark_test_json(stats) : g_strdup("none");
  g_test_fail_printf("%s: the stats of %s never showed %s: %s", node->name, id, what, shown);
  g_clear_pointer(&stats, json_object_unref);
  return NULL;
}

/* At least GPOINTER_TO_UINT(data) ms of audio played. */
static gboolean
played_ms(JsonObject *stats, gconstpointer data)
{
  return json_object_get_int_member_with_default(stats, "played_samples", 0) >=
         (gint64)GPOINTER_TO_UINT(data) * 48;
}

static gboolean
sends_codec(JsonObject *stats, gconstpointer data)
{
  return g_strcmp0(json_object_get_string_member_with_default(stats, "codec", NULL), data) == 0;
}

static gboolean
has_keepalives(JsonObject *stats, gconstpointer data)
{
  return json_object_get_int_member_with_default(stats, "keepalives_received", 0) >= 1;
}

/* The WAV node wrote has the tone hz (the frequency with the most power, within 2 Hz) at
 * a level a listener hears, without a gap over 100 ms, in [from_ms, to_ms) of what it
 * played (negative: from the end, less the final 0.1 s, which the hang-up may cut). */
static void
assert_heard_in(CallLab *lab, LabNode *node, double hz, gint64 from_ms, gint64 to_ms)
{
  g_autofree char *path = g_strdup_printf("%s/%s.wav", lab->dir, node->name);
  g_autofree gint16 *samples = NULL;
  gsize n = 0;
  guint rate = 0;
  g_autoptr(GError) error = NULL;
  HARK_REQUIRE(hark_test_wav_read(path, &samples, &n, &rate, &error));
  gint64 end_ms = (gint64)(n * 1000 / rate) - 100;
  if (from_ms < 0)
    from_ms += end_ms;
  if (to_ms <= 0)
    to_ms += end_ms;
  g_test_message("%s: %" G_GSIZE_FORMAT " samples at %u Hz (%.2f s); checking %" G_GINT64_FORMAT
                 "-%" G_GINT64_FORMAT " ms",
                 path, n, rate, (double)n / rate, from_ms, to_ms);
  g_assert_cmpint(from_ms, >=, 0);
  g_assert_cmpint(to_ms, >, from_ms + 200);
  g_assert_cmpint(to_ms, <=, end_ms);
  const gint16 *part = samples + from_ms * rate / 1000;
  gsize want = (gsize)((to_ms - from_ms) * rate / 1000);
  double dominant = hark_test_wav_dominant_hz(part, want, rate);
  double rms = hark_test_wav_rms(part, want);
  double gap = hark_test_wav_longest_gap_ms(part, want, rate, 300);
  g_test_message("%s heard %.0f Hz (sent %.0f), RMS %.0f, longest gap %.0f ms", node->name,
                 dominant, hz, rms, gap);
  g_assert_cmpfloat(fabs(dominant - hz), <=, 2);
  g_assert_cmpfloat(rms, >, 2000);
  g_assert_cmpfloat(gap, <, 100);
}

/* The same for the last `seconds` node played. */
static void
assert_heard(CallLab *lab, LabNode *node, double hz, double seconds)
{
  assert_heard_in(lab, node, hz, -(gint64)(seconds * 1000), 0);
}

/* caller calls bob; the `ringing` event at callee (a device of bob's), *id the call's;
 * NULL (test failed) when it does not ring. */
static JsonObject *
dial(CallLab *lab, LabNode *caller, LabNode *callee, char **id)
{
  g_autoptr(JsonObject) dialled = ask(lab, caller, "call", lab_args("user", "bob", NULL));
  if (dialled == NULL)
    return NULL;
  *id = g_strdup(str(dialled, "id"));
  return wait_call(lab, callee, *id, "ringing", CALL_MS);
}

/* How many calls node has going on (`calls`), or -1 (test failed). */
static gint64
count_calls(CallLab *lab, LabNode *node)
{
  g_autoptr(JsonObject) calls = ask(lab, node, "calls", NULL);
  return calls != NULL ? (gint64)json_array_get_length(json_object_get_array_member(calls, "calls"))
                       : -1;
}

/* A counter of node's `calls` (what the call layer refused), or -1 (test failed). */
static gint64
calls_counter(CallLab *lab, LabNode *node, const char *name)
{
  g_autoptr(JsonObject) calls = ask(lab, node, "calls", NULL);
  return calls != NULL
           ? json_object_get_int_member(json_object_get_object_member(calls, "counters"), name)
           : -1;
}

/* Polls calls_counter until it is at least value (bounded). */
static gboolean
wait_calls_counter(CallLab *lab, LabNode *node, const char *name, gint64 value)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  gint64 now = -1;
  while ((now = calls_counter(lab, node, name)) < value && now >= 0 &&
         g_get_monotonic_time() < until)
    g_usleep(50 * 1000);
  if (now >= value)
    return TRUE;
  g_test_fail_printf("%s: calls counter %s is %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT,
                     node->name, name, now, value);
  return FALSE;
}

/* alice calls bob, bob's device `answerer` answers; both are active. *id: the call's. */
static gboolean
call_up(CallLab *lab, LabNode *caller, LabNode *answerer, char **id)
{
  g_autoptr(JsonObject) ringing = dial(lab, caller, answerer, id);
  if (ringing == NULL)
    return FALSE;
  g_autoptr(JsonObject) answered = ask(lab, answerer, "answer", lab_args("id", *id, NULL));
  if (answered == NULL)
    return FALSE;
  g_autoptr(JsonObject) up = wait_call(lab, caller, *id, "active", CALL_MS);
  g_autoptr(JsonObject) up2 = up != NULL ? wait_call(lab, answerer, *id, "active", CALL_MS) : NULL;
  return up2 != NULL;
}

/* ---- the cases ------------------------------------------------------------------------ */

/* alice calls bob, bob answers: both are active on a direct UDP path with opus; after 2 s
 * of audio alice hangs up; each WAV has the other's tone; both hear why it ended. */
static void
test_call_answered(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  g_autofree char *bob_device = device_id(lab->bob);
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) at_alice =
    wait_stats(lab, lab->alice, id, played_ms, GUINT_TO_POINTER(2000), "2 s of audio played");
  g_autoptr(JsonObject) at_bob =
    wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER(2000), "2 s of audio played");
  HARK_REQUIRE(at_alice != NULL && at_bob != NULL);
  g_assert_cmpstr(str(at_alice, "codec"), ==, "opus");
  JsonObject *path = json_object_get_object_member(at_alice, "path");
  HARK_REQUIRE(path != NULL);
  g_assert_cmpstr(str(path, "kind"), ==, "host");
  g_assert_cmpstr(str(path, "transport"), ==, "udp");
  /* Dial to media includes the test's own answer; answer to media is the call's. */
  g_test_message("set-up: dial to media %" G_GINT64_FORMAT " ms, answer to media %" G_GINT64_FORMAT
                 " ms (alice), %" G_GINT64_FORMAT " ms (bob)",
                 json_object_get_int_member_with_default(at_alice, "setup_ms", -1),
                 json_object_get_int_member_with_default(at_alice, "connect_ms", -1),
                 json_object_get_int_member_with_default(at_bob, "connect_ms", -1));
  g_assert_cmpint(json_object_get_int_member_with_default(at_alice, "connect_ms", -1), >=, 0);
  /* What the set-up cost the SN's message rate (candidates found after the answer trickle,
   * those found within 40 ms of each other in one signal). */
  g_test_message("signals for the set-up: alice %" G_GINT64_FORMAT ", bob %" G_GINT64_FORMAT,
                 lab_device_counter(lab->alice, "signals_sent"),
                 lab_device_counter(lab->bob, "signals_sent"));
  g_autoptr(JsonObject) calls = ask(lab, lab->alice, "calls", NULL);
  HARK_REQUIRE(calls != NULL);
  JsonObject *row = json_array_get_object_element(json_object_get_array_member(calls, "calls"), 0);
  g_assert_cmpstr(str(row, "peer_device"), ==, bob_device);

  g_autoptr(JsonObject) hung = ask(lab, lab->alice, "hangup", NULL);
  HARK_REQUIRE(hung != NULL);
  g_autoptr(JsonObject) ended_a = wait_call(lab, lab->alice, id, "ended", CALL_MS);
  g_autoptr(JsonObject) ended_b = wait_call(lab, lab->bob, id, "ended", CALL_MS);
  HARK_REQUIRE(ended_a != NULL && ended_b != NULL);
  g_assert_cmpstr(str(ended_a, "outcome"), ==, "answered");
  g_assert_cmpstr(str(ended_b, "outcome"), ==, "answered");
  g_assert_cmpstr(str(ended_b, "reason"), ==, "alice hung up");
  g_assert_cmpstr(str(ended_a, "path"), ==, "host udp");
  /* Both keep it in their call log. */
  g_autoptr(JsonObject) log = ask(lab, lab->bob, "call-log", NULL);
  HARK_REQUIRE(log != NULL);
  JsonObject *kept = json_array_get_object_element(json_object_get_array_member(log, "calls"), 0);
  HARK_REQUIRE(kept != NULL);
  g_assert_cmpstr(str(kept, "id"), ==, id);
  g_assert_cmpstr(str(kept, "outcome"), ==, "answered");
  g_assert_cmpstr(str(kept, "direction"), ==, "in");
  g_assert_cmpstr(str(kept, "codec"), ==, "opus");
  g_assert_cmpstr(str(kept, "path"), ==, "host udp");
  assert_heard(lab, lab->bob, 440, 1.0);
  assert_heard(lab, lab->alice, 1000, 1.0);
}

/* bob declines: the call ends for alice as declined, with who declined. */
static void
test_call_declined(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  g_autoptr(JsonObject) ringing = dial(lab, lab->alice, lab->bob, &id);
  HARK_REQUIRE(ringing != NULL);
  g_assert_cmpstr(str(ringing, "peer"), ==, "alice");
  g_autoptr(JsonObject) rings_there = wait_call(lab, lab->alice, id, "ringing", CALL_MS);
  HARK_REQUIRE(rings_there != NULL);
  g_autoptr(JsonObject) declined = ask(lab, lab->bob, "decline", NULL);
  HARK_REQUIRE(declined != NULL);
  g_autoptr(JsonObject) ended = wait_call(lab, lab->alice, id, "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  g_assert_cmpstr(str(ended, "outcome"), ==, "declined");
  g_assert_cmpstr(str(ended, "reason"), ==, "bob declined");
  g_assert_cmpint(count_calls(lab, lab->alice), ==, 0);
}

/* alice hangs up while bob's device rings: it stops ringing, "cancelled". */
static void
test_call_cancelled(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  g_autoptr(JsonObject) ringing = dial(lab, lab->alice, lab->bob, &id);
  HARK_REQUIRE(ringing != NULL);
  g_autoptr(JsonObject) hung = ask(lab, lab->alice, "hangup", NULL);
  HARK_REQUIRE(hung != NULL);
  g_autoptr(JsonObject) mine = wait_call(lab, lab->alice, id, "ended", CALL_MS);
  g_autoptr(JsonObject) his = wait_call(lab, lab->bob, id, "ended", CALL_MS);
  HARK_REQUIRE(mine != NULL && his != NULL);
  g_assert_cmpstr(str(mine, "outcome"), ==, "cancelled");
  g_assert_cmpstr(str(his, "outcome"), ==, "missed");
  g_assert_cmpstr(str(his, "reason"), ==, "cancelled");
  g_autoptr(JsonObject) log = ask(lab, lab->bob, "call-log", NULL);
  HARK_REQUIRE(log != NULL);
  g_assert_cmpint(json_object_get_int_member(log, "missed"), ==, 1);
}

/* Both of bob's devices ring; the phone answers: alice's call is with the phone, the
 * desk stops ringing with "answered elsewhere". */
static void
test_every_device_rings(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *phone = device_id(lab->bob_phone);
  g_autoptr(JsonObject) dialled = ask(lab, lab->alice, "call", lab_args("user", "bob", NULL));
  HARK_REQUIRE(dialled != NULL);
  const char *id = str(dialled, "id");
  g_autoptr(JsonObject) desk_rings = wait_call(lab, lab->bob, id, "ringing", CALL_MS);
  g_autoptr(JsonObject) phone_rings = wait_call(lab, lab->bob_phone, id, "ringing", CALL_MS);
  HARK_REQUIRE(desk_rings != NULL && phone_rings != NULL);
  g_autoptr(JsonObject) answered = ask(lab, lab->bob_phone, "answer", NULL);
  HARK_REQUIRE(answered != NULL);
  g_autoptr(JsonObject) desk_ends = wait_call(lab, lab->bob, id, "ended", CALL_MS);
  HARK_REQUIRE(desk_ends != NULL);
  g_assert_cmpstr(str(desk_ends, "outcome"), ==, "answered elsewhere");
  g_autoptr(JsonObject) up = wait_call(lab, lab->alice, id, "active", CALL_MS);
  HARK_REQUIRE(up != NULL);
  g_assert_cmpstr(str(up, "peer_device"), ==, phone);
  g_assert_cmpstr(str(up, "peer_device_name"), ==, "bob-phone");
  g_autoptr(JsonObject) played =
    wait_stats(lab, lab->bob_phone, id, played_ms, GUINT_TO_POINTER(500), "audio played");
  HARK_REQUIRE(played != NULL);
  /* The desk never took part: no call there. */
  g_assert_cmpint(count_calls(lab, lab->bob), ==, 0);
}

/* bob takes one call at a time (calls.max = 1): in a call with alice, carol's call to him
 * ends busy, and alice's call goes on. */
static void
test_busy(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) dialled = ask(lab, lab->carol, "call", lab_args("user", "bob", NULL));
  HARK_REQUIRE(dialled != NULL);
  g_autoptr(JsonObject) ended = wait_call(lab, lab->carol, str(dialled, "id"), "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  g_assert_cmpstr(str(ended, "outcome"), ==, "busy");
  g_assert_cmpstr(str(ended, "reason"), ==, "bob is busy");
  g_autoptr(JsonObject) calls = ask(lab, lab->bob, "calls", NULL);
  HARK_REQUIRE(calls != NULL);
  JsonArray *list = json_object_get_array_member(calls, "calls");
  g_assert_cmpuint(json_array_get_length(list), ==, 1);
  g_assert_cmpstr(str(json_array_get_object_element(list, 0), "state"), ==, "active");
  g_assert_cmpint(
    json_object_get_int_member(json_object_get_object_member(calls, "counters"), "busy_sent"), ==,
    1);
}

/* Mid-call, alice changes to g711: both ends send PCMU, and bob still hears 440 Hz
 * after the change. */
static void
test_codec_swap(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) before =
    wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER(500), "audio played");
  HARK_REQUIRE(before != NULL);
  g_assert_cmpstr(str(before, "codec"), ==, "opus");
  g_autoptr(JsonObject) asked = ask(lab, lab->alice, "codec", lab_args("name", "g711", NULL));
  HARK_REQUIRE(asked != NULL);
  g_assert_cmpstr(str(asked, "asked"), ==, "pcmu");
  g_autoptr(JsonObject) a = wait_stats(lab, lab->alice, id, sends_codec, "pcmu", "pcmu sent");
  g_autoptr(JsonObject) b = wait_stats(lab, lab->bob, id, sends_codec, "pcmu", "pcmu sent");
  HARK_REQUIRE(a != NULL && b != NULL);
  gint64 played = json_object_get_int_member(b, "played_samples") / 48;
  g_autoptr(JsonObject) after =
    wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER((guint)played + 1500),
               "1.5 s more audio after the change");
  HARK_REQUIRE(after != NULL);
  g_autoptr(JsonObject) hung = ask(lab, lab->bob, "hangup", NULL);
  HARK_REQUIRE(hung != NULL);
  g_autoptr(JsonObject) ended = wait_call(lab, lab->alice, id, "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  assert_heard(lab, lab->bob, 440, 1.0);
  assert_heard(lab, lab->alice, 1000, 1.0);
}

/* ---- media-set ---------------------------------------------------------------------- */

/* node's media settings, as `state` shows them (a new reference), or NULL (test failed). */
static JsonObject *
media_settings(CallLab *lab, LabNode *node)
{
  g_autoptr(JsonObject) state = ask(lab, node, "state", NULL);
  return state != NULL ? json_object_ref(json_object_get_object_member(state, "media")) : NULL;
}

/* `media-set` with args (taken) is refused with words containing expected. */
static void
assert_media_refused(CallLab *lab, JsonObject *args, const char *expected)
{
  g_autofree char *shown = hark_test_json(args);
  g_autofree char *message = NULL;
  g_autoptr(JsonObject) result = lab_events_ask(
    lab->alice, g_hash_table_lookup(lab->logs, lab->alice), "media-set", args, &message);
  g_test_message("media-set %s: %s", shown, message != NULL ? message : "(accepted)");
  g_assert_null(result);
  g_assert_nonnull(message);
  g_assert_nonnull(strstr(message, expected));
  g_assert_null(strchr(message, '\n'));
}

static JsonObject *
jitter_args(gint64 min_ms, gint64 max_ms)
{
  JsonObject *args = json_object_new();
  if (min_ms >= 0)
    json_object_set_int_member(args, "jitter_min_ms", min_ms);
  if (max_ms >= 0)
    json_object_set_int_member(args, "jitter_max_ms", max_ms);
  return args;
}

static gboolean
is_media_settings(JsonObject *e, gconstpointer data)
{
  return g_strcmp0(json_object_get_string_member_with_default(e, "event", NULL),
                   "media-settings") == 0;
}

/* The jitter buffer holds at least GPOINTER_TO_UINT(data) ms once audio plays. */
static gboolean
buffers_at_least(JsonObject *stats, gconstpointer data)
{
  return json_object_get_int_member_with_default(stats, "played_samples", 0) >= 500 * 48 &&
         json_object_get_int_member_with_default(stats, "jitter_buffer_ms", 0) >=
           (gint64)GPOINTER_TO_UINT(data);
}

/* Bad media settings are refused with words saying why, and change nothing (not even the
 * good values sent with a bad one). `media-set codecs=pcmu,opus` then makes alice's next
 * call offer PCMU first, so bob answers with it; her jitter buffer keeps to the new
 * least delay. A change during the call leaves that call as it is and applies to the
 * next one. */
static void
test_media_set(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autoptr(JsonObject) before = media_settings(lab, lab->alice);
  HARK_REQUIRE(before != NULL);
  g_autofree char *before_text = hark_test_json(before);
  assert_media_refused(lab, lab_args("codecs", "nosuch", NULL), "'nosuch' is not a codec loaded");
  assert_media_refused(lab, lab_args("codecs", " , ", NULL), "name at least one codec");
  assert_media_refused(lab, lab_args("codecs", "pcmu,opus,pcmu", NULL), "named twice");
  assert_media_refused(lab, lab_args("codecs", "opus,op\x1b[2Jus", NULL),
                       "'op\\033[2Jus' is not a codec loaded");
  assert_media_refused(lab, lab_args("source", "wav:x\nhark-Message: forged", NULL),
                       "source 'wav:x\\nhark-Message: forged': control characters");
  assert_media_refused(lab, lab_args("source", "speaker", NULL), "source 'speaker': expected");
  assert_media_refused(lab, lab_args("sink", "wav:", NULL), "the file or device name is missing");
  assert_media_refused(lab, lab_args("codecs", "pcmu", "sink", "loud", NULL), "sink 'loud'");
  assert_media_refused(lab, jitter_args(5, -1), "jitter_min_ms: 5 is outside 10 to 2000 ms");
  assert_media_refused(lab, jitter_args(-1, 100000), "jitter_max_ms: 100000 is outside");
  assert_media_refused(lab, jitter_args(300, -1), "jitter_min_ms (300) is above jitter_max_ms");
  g_autoptr(JsonObject) unchanged = media_settings(lab, lab->alice);
  HARK_REQUIRE(unchanged != NULL);
  g_autofree char *unchanged_text = hark_test_json(unchanged);
  g_assert_cmpstr(unchanged_text, ==, before_text);

  JsonObject *args = jitter_args(60, 300);
  json_object_set_string_member(args, "codecs", "pcmu, opus");
  g_autoptr(JsonObject) set = ask(lab, lab->alice, "media-set", args);
  HARK_REQUIRE(set != NULL);
  g_autoptr(JsonObject) told =
    wait_event(lab, lab->alice, is_media_settings, NULL, "media-settings event", ARRIVE_MS);
  HARK_REQUIRE(told != NULL);
  g_autoptr(JsonObject) now = media_settings(lab, lab->alice);
  HARK_REQUIRE(now != NULL);
  JsonArray *codecs = json_object_get_array_member(now, "codecs");
  g_assert_cmpuint(json_array_get_length(codecs), ==, 2);
  g_assert_cmpstr(json_array_get_string_element(codecs, 0), ==, "pcmu");
  g_assert_cmpstr(json_array_get_string_element(codecs, 1), ==, "opus");
  g_assert_cmpint(json_object_get_int_member(now, "jitter_min_ms"), ==, 60);
  g_assert_cmpint(json_object_get_int_member(now, "jitter_max_ms"), ==, 300);

  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) a = wait_stats(lab, lab->alice, id, sends_codec, "pcmu", "pcmu sent");
  g_autoptr(JsonObject) b = wait_stats(lab, lab->bob, id, sends_codec, "pcmu", "pcmu sent");
  HARK_REQUIRE(a != NULL && b != NULL);
  g_autoptr(JsonObject) held_back = wait_stats(lab, lab->alice, id, buffers_at_least,
                                               GUINT_TO_POINTER(60), "a jitter buffer of 60 ms");
  HARK_REQUIRE(held_back != NULL);
  /* Changed during the call: this call keeps PCMU. */
  g_autoptr(JsonObject) opus = ask(lab, lab->alice, "media-set", lab_args("codecs", "opus", NULL));
  HARK_REQUIRE(opus != NULL);
  g_autoptr(JsonObject) still =
    wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER(1500), "1.5 s of audio");
  HARK_REQUIRE(still != NULL);
  g_assert_cmpstr(str(still, "codec"), ==, "pcmu");
  g_autoptr(JsonObject) hung = ask(lab, lab->alice, "hangup", NULL);
  HARK_REQUIRE(hung != NULL);
  g_autoptr(JsonObject) ended = wait_call(lab, lab->bob, id, "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  /* The next call offers opus alone. */
  g_autofree char *next = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &next));
  g_autoptr(JsonObject) c = wait_stats(lab, lab->bob, next, sends_codec, "opus", "opus sent");
  HARK_REQUIRE(c != NULL);
}

/* alice holds: both see the call held, bob gets keep-alives, no audio; resumed, audio
 * plays again on both sides. */
static void
test_hold_resume(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) held = ask(lab, lab->alice, "hold", NULL);
  HARK_REQUIRE(held != NULL);
  g_autoptr(JsonObject) held_a = wait_call(lab, lab->alice, id, "held", CALL_MS);
  g_autoptr(JsonObject) held_b = wait_call(lab, lab->bob, id, "held", CALL_MS);
  HARK_REQUIRE(held_a != NULL && held_b != NULL);
  g_assert_true(json_object_get_boolean_member(held_b, "remote_hold"));
  g_autoptr(JsonObject) kept =
    wait_stats(lab, lab->bob, id, has_keepalives, NULL, "a keep-alive received");
  HARK_REQUIRE(kept != NULL);
  g_assert_true(json_object_get_boolean_member(kept, "on_hold"));
  g_autoptr(JsonObject) resumed = ask(lab, lab->alice, "resume", NULL);
  HARK_REQUIRE(resumed != NULL);
  g_autoptr(JsonObject) up_a = wait_call(lab, lab->alice, id, "active", CALL_MS);
  g_autoptr(JsonObject) up_b = wait_call(lab, lab->bob, id, "active", CALL_MS);
  HARK_REQUIRE(up_a != NULL && up_b != NULL);
  gint64 played = json_object_get_int_member(kept, "played_samples") / 48;
  g_autoptr(JsonObject) again =
    wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER((guint)played + 500),
               "audio again after the resume");
  HARK_REQUIRE(again != NULL);
}

/* carol calls bob again and again (calling and hanging up): over 10 INVITEs a minute bob
 * refuses hers and counts them, and alice's call still rings at bob's. An empty call
 * signal (malformed) is refused and counted too. */
static void
test_invite_flood(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  /* Each INVITE leaves (carol's messenger sealed it) before its call is hung up. */
  for (guint i = 0; i < 14; i++) {
    g_autoptr(JsonObject) dialled = ask(lab, lab->carol, "call", lab_args("user", "bob", NULL));
    HARK_REQUIRE(dialled != NULL);
    HARK_REQUIRE(wait_counter(lab->carol, "signals_sent", 2 * i + 1));
    g_autoptr(JsonObject) hung = ask(lab, lab->carol, "hangup", NULL);
    HARK_REQUIRE(hung != NULL);
  }
  HARK_REQUIRE(wait_calls_counter(lab, lab->bob, "invites_limited", 4));
  g_assert_cmpint(calls_counter(lab, lab->bob, "invites_limited"), ==, 4);

  g_autofree char *id = NULL;
  g_autoptr(JsonObject) ringing = dial(lab, lab->alice, lab->bob, &id);
  HARK_REQUIRE(ringing != NULL);
  g_assert_cmpstr(str(ringing, "peer"), ==, "alice");

  g_autoptr(JsonObject) sent =
    ask(lab, lab->carol, "signal", lab_args("to", "bob", "kind", "call", NULL));
  HARK_REQUIRE(sent != NULL);
  HARK_REQUIRE(wait_calls_counter(lab, lab->bob, "refused_malformed", 1));
  g_assert_cmpint(calls_counter(lab, lab->bob, "refused_malformed"), ==, 1);
}

/* Nobody answers: after calls.ring_timeout (5 s here) alice's call ends "no answer" and
 * bob's device stops ringing, a missed call. */
static void
test_no_answer(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  gint64 start = g_get_monotonic_time();
  g_autofree char *id = NULL;
  g_autoptr(JsonObject) ringing = dial(lab, lab->alice, lab->bob, &id);
  HARK_REQUIRE(ringing != NULL);
  g_autoptr(JsonObject) mine = wait_call(lab, lab->alice, id, "ended", CALL_MS);
  g_autoptr(JsonObject) his = wait_call(lab, lab->bob, id, "ended", CALL_MS);
  HARK_REQUIRE(mine != NULL && his != NULL);
  gint64 rang_ms = (g_get_monotonic_time() - start) / 1000;
  g_test_message("rang for %" G_GINT64_FORMAT " ms", rang_ms);
  g_assert_cmpint(rang_ms, >=, 4900);
  g_assert_cmpstr(str(mine, "outcome"), ==, "no answer");
  g_assert_cmpstr(str(his, "outcome"), ==, "missed");
  g_assert_cmpstr(str(his, "reason"), ==, "no answer");
}

/* Call waiting: bob is in a call with alice when carol calls: it rings; answering it puts
 * alice's call on hold (alice sees it held by bob); `calls` lists both; carol hears bob. */
static void
test_call_waiting(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *first = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &first));
  g_autofree char *second = NULL;
  g_autoptr(JsonObject) ringing = dial(lab, lab->carol, lab->bob, &second);
  HARK_REQUIRE(ringing != NULL);
  g_autoptr(JsonObject) answered = ask(lab, lab->bob, "answer", NULL);
  HARK_REQUIRE(answered != NULL);
  g_assert_cmpstr(str(answered, "id"), ==, second);
  g_autoptr(JsonObject) held = wait_call(lab, lab->alice, first, "held", CALL_MS);
  HARK_REQUIRE(held != NULL);
  g_assert_true(json_object_get_boolean_member(held, "remote_hold"));
  g_autoptr(JsonObject) up = wait_call(lab, lab->carol, second, "active", CALL_MS);
  HARK_REQUIRE(up != NULL);
  g_autoptr(JsonObject) calls = ask(lab, lab->bob, "calls", NULL);
  HARK_REQUIRE(calls != NULL);
  JsonArray *list = json_object_get_array_member(calls, "calls");
  g_assert_cmpuint(json_array_get_length(list), ==, 2);
  g_assert_cmpstr(str(json_array_get_object_element(list, 0), "state"), ==, "held");
  g_assert_cmpstr(str(json_array_get_object_element(list, 1), "peer"), ==, "carol");
  g_autoptr(JsonObject) played =
    wait_stats(lab, lab->carol, second, played_ms, GUINT_TO_POINTER(500), "audio from bob");
  HARK_REQUIRE(played != NULL);
}

/* Mid-call, alice moves the media to TCP (an ICE restart limited to TCP candidates): the
 * path becomes TCP at both ends and bob still hears her tone after the move. */
static gboolean
path_is_tcp(JsonObject *stats, gconstpointer data)
{
  JsonObject *path = json_object_get_object_member(stats, "path");
  return path != NULL && g_strcmp0(str(path, "transport"), "tcp") == 0;
}

/* alice moves the call's media to a path of kind (`path KIND`): both ends' stats show
 * moved, bob hears 1.5 s more of her tone after it, and the call ends on a path starting
 * with prefix. */
static void
move_path(CallLab *lab, const char *kind, StatsPredicate moved, const char *prefix)
{
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) asked = ask(lab, lab->alice, "path", lab_args("kind", kind, NULL));
  HARK_REQUIRE(asked != NULL);
  g_autoptr(JsonObject) a = wait_stats(lab, lab->alice, id, moved, NULL, kind);
  g_autoptr(JsonObject) b = wait_stats(lab, lab->bob, id, moved, NULL, kind);
  HARK_REQUIRE(a != NULL && b != NULL);
  gint64 played = json_object_get_int_member(b, "played_samples") / 48;
  g_autoptr(JsonObject) after =
    wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER((guint)played + 1500),
               "1.5 s more audio after the move");
  HARK_REQUIRE(after != NULL);
  g_autoptr(JsonObject) hung = ask(lab, lab->bob, "hangup", NULL);
  HARK_REQUIRE(hung != NULL);
  g_autoptr(JsonObject) ended = wait_call(lab, lab->alice, id, "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  if (!g_str_has_prefix(str(ended, "path"), prefix)) {
    hark_test_node_show_logs(lab->alice->node);
    hark_test_node_show_logs(lab->bob->node);
    g_error("alice's ended call names the path '%s', not '%s...'", str(ended, "path"), prefix);
  }
  assert_heard(lab, lab->bob, 440, 1.0);
}

static void
test_path_swap(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  move_path(lab, "tcp", path_is_tcp, "host tcp");
}

static gboolean
digit_fits(JsonObject *e, gconstpointer digit)
{
  return g_strcmp0(str(e, "event"), "call-dtmf") == 0 && g_strcmp0(str(e, "digit"), digit) == 0;
}

/* The next `call-dtmf` event of node with digit, within timeout_ms. */
static gboolean
wait_digit(CallLab *lab, LabNode *node, const char *digit, guint timeout_ms)
{
  g_autoptr(JsonObject) e = wait_event(lab, node, digit_fits, digit, "call-dtmf", timeout_ms);
  return e != NULL;
}

/* alice keys 1, 2 and # mid-call: bob's node shows each digit once, in order. Muted, her
 * session sends silence and says so; unmuted, her voice again. */
static void
test_dtmf_and_mute(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) sent = ask(lab, lab->alice, "dtmf", lab_args("digits", "12#", NULL));
  HARK_REQUIRE(sent != NULL);
  HARK_REQUIRE(wait_digit(lab, lab->bob, "1", CALL_MS));
  HARK_REQUIRE(wait_digit(lab, lab->bob, "2", CALL_MS));
  HARK_REQUIRE(wait_digit(lab, lab->bob, "#", CALL_MS));
  g_autoptr(JsonObject) stats = ask(lab, lab->bob, "stats", NULL);
  HARK_REQUIRE(stats != NULL);
  g_assert_cmpint(json_object_get_int_member(stats, "dtmf_received"), ==, 3);
  g_autoptr(JsonObject) bad =
    lab_ctl_ask(lab->alice->ctl, "dtmf", lab_args("digits", "9x", NULL), NULL);
  HARK_REQUIRE(bad != NULL);
  g_assert_false(json_object_get_boolean_member_with_default(bad, "ok", TRUE));

  g_autoptr(JsonObject) muted = ask(lab, lab->alice, "mute", NULL);
  HARK_REQUIRE(muted != NULL);
  g_assert_true(json_object_get_boolean_member_with_default(muted, "muted", FALSE));
  g_autoptr(JsonObject) quiet = ask(lab, lab->alice, "stats", NULL);
  HARK_REQUIRE(quiet != NULL);
  g_assert_true(json_object_get_boolean_member(quiet, "muted"));
  g_autoptr(JsonObject) unmuted = ask(lab, lab->alice, "unmute", NULL);
  HARK_REQUIRE(unmuted != NULL);
  g_autoptr(JsonObject) loud = ask(lab, lab->alice, "stats", NULL);
  HARK_REQUIRE(loud != NULL);
  g_assert_false(json_object_get_boolean_member(loud, "muted"));
}

/* bob's node is killed mid-call: nothing comes from it any more, and alice's call ends
 * with a reason within about 10 s (the session's 7 s of silence). */
static void
test_peer_killed(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) played =
    wait_stats(lab, lab->alice, id, played_ms, GUINT_TO_POINTER(500), "audio played");
  HARK_REQUIRE(played != NULL);
  gint64 killed = g_get_monotonic_time();
  lab_node_kill(lab->bob);
  g_autoptr(JsonObject) ended = wait_call(lab, lab->alice, id, "ended", 15000);
  HARK_REQUIRE(ended != NULL);
  gint64 took_ms = (g_get_monotonic_time() - killed) / 1000;
  g_test_message("alice's call ended %" G_GINT64_FORMAT " ms after bob's node was killed: %s",
                 took_ms, str(ended, "reason"));
  g_assert_cmpint(took_ms, <, 11000);
  g_assert_cmpstr(str(ended, "outcome"), ==, "failed");
  g_assert_nonnull(strstr(str(ended, "reason"), "bob"));
}

/* With a TURN server the SN vouches for, alice moves the call to the relay mid-call
 * (`path relay`): both ends go through coturn ("relayed"), and bob still hears her. */
static gboolean
path_is_relayed(JsonObject *stats, gconstpointer data)
{
  JsonObject *path = json_object_get_object_member(stats, "path");
  return path != NULL && g_strcmp0(str(path, "kind"), "relayed") == 0;
}

static void
test_path_relay(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  if (!lab_coturn_installed()) {
    g_test_skip("turnserver (coturn) is not installed");
    return;
  }
  move_path(lab, "relay", path_is_relayed, "relayed ");
}

/* The relay the SN vouches for does not answer: alice's `path relay` fails on both ends
 * with the reason in their `call` events, and the call goes on over the host pair, bob
 * still hearing her. */
static gboolean
path_change_failed(JsonObject *e, gconstpointer data)
{
  JsonObject *change = json_object_get_object_member(e, "path_change");
  return g_strcmp0(str(e, "event"), "call") == 0 && change != NULL &&
         g_strcmp0(str(change, "outcome"), "failed") == 0;
}

static void
test_path_relay_unreachable(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autoptr(JsonObject) asked = ask(lab, lab->alice, "path", lab_args("kind", "relay", NULL));
  HARK_REQUIRE(asked != NULL);
  JsonObject *moving = json_object_get_object_member(asked, "path_change");
  HARK_REQUIRE(moving != NULL);
  g_assert_cmpstr(str(moving, "kind"), ==, "relay");
  g_assert_cmpstr(str(moving, "outcome"), ==, "moving");
  LabNode *ends[] = { lab->alice, lab->bob };
  for (gsize i = 0; i < G_N_ELEMENTS(ends); i++) {
    g_autoptr(JsonObject) failed =
      wait_event(lab, ends[i], path_change_failed, NULL, "the path change failed", CALL_MS);
    HARK_REQUIRE(failed != NULL);
    JsonObject *change = json_object_get_object_member(failed, "path_change");
    g_test_message("%s: %s", ends[i]->name, str(change, "reason"));
    g_assert_cmpstr(str(change, "kind"), ==, "relay");
    g_assert_nonnull(strstr(str(change, "reason"), "TURN server did not answer"));
    g_assert_cmpstr(str(failed, "state"), ==, "active");
    g_assert_true(g_str_has_prefix(str(failed, "path"), "host "));
  }
  g_autoptr(JsonObject) now = ask(lab, lab->bob, "stats", lab_args("id", id, NULL));
  HARK_REQUIRE(now != NULL);
  gint64 played = json_object_get_int_member(now, "played_samples") / 48;
  g_autoptr(JsonObject) after =
    wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER((guint)played + 1500),
               "1.5 s more audio after the failed change");
  HARK_REQUIRE(after != NULL);
  g_assert_cmpstr(str(json_object_get_object_member(after, "path"), "kind"), ==, "host");
  g_assert_cmpstr(str(after, "state"), ==, "active");
  assert_heard(lab, lab->bob, 440, 1.0);
}

/* The same through the SN's own TURN server (core/relay): libnice on both ends gets a
 * relayed candidate from it with the overlay's credentials, and the call goes on. */
static void
test_path_relay_sn(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  move_path(lab, "relay", path_is_relayed, "relayed ");
  g_autoptr(JsonObject) overlay = lab_call(lab->sn, "overlay", NULL);
  HARK_REQUIRE(overlay != NULL);
  JsonObject *relay =
    json_object_get_object_member(json_object_get_object_member(overlay, "turn"), "relay");
  g_assert_nonnull(relay);
  g_assert_cmpint(json_object_get_int_member(relay, "datagrams_to_peers"), >, 50);
}

/* The same when the SN relays nothing (relay = false): it steers its clients to the
 * relay of the SN it links to (TURN_FORWARD), and the call relays through that one. */
static void
test_path_relay_steered(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  move_path(lab, "relay", path_is_relayed, "relayed ");
  g_autoptr(JsonObject) overlay = lab_call(lab->sn2, "overlay", NULL);
  HARK_REQUIRE(overlay != NULL);
  JsonObject *relay =
    json_object_get_object_member(json_object_get_object_member(overlay, "turn"), "relay");
  g_assert_nonnull(relay);
  g_assert_cmpint(json_object_get_int_member(relay, "datagrams_to_peers"), >, 50);
  g_autoptr(JsonObject) first = lab_call(lab->sn, "overlay", NULL);
  HARK_REQUIRE(first != NULL);
  g_assert_false(json_object_has_member(json_object_get_object_member(first, "turn"), "relay"));
}

/* alice changes the call's codec to each of the others in turn: both ends send it, and
 * bob hears her tone through each (a stretch of his WAV per codec). */
static void
test_every_codec(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  const char *codecs[] = { "pcmu", "pcma", "g722", "l16", "opus" };
  gint64 from_ms[G_N_ELEMENTS(codecs)], to_ms[G_N_ELEMENTS(codecs)];
  for (gsize i = 0; i < G_N_ELEMENTS(codecs); i++) {
    g_autoptr(JsonObject) asked = ask(lab, lab->alice, "codec", lab_args("name", codecs[i], NULL));
    HARK_REQUIRE(asked != NULL);
    g_autoptr(JsonObject) a = wait_stats(lab, lab->alice, id, sends_codec, codecs[i], codecs[i]);
    g_autoptr(JsonObject) b = wait_stats(lab, lab->bob, id, sends_codec, codecs[i], codecs[i]);
    HARK_REQUIRE(a != NULL && b != NULL);
    /* What bob played from now on came in that codec, less what was on the way. */
    from_ms[i] = json_object_get_int_member(b, "played_samples") / 48 + 300;
    to_ms[i] = from_ms[i] + 700;
    g_autoptr(JsonObject) played =
      wait_stats(lab, lab->bob, id, played_ms, GUINT_TO_POINTER((guint)to_ms[i]), codecs[i]);
    HARK_REQUIRE(played != NULL);
  }
  /* Half a second more, so that the last stretch is written before the hang-up. */
  g_autoptr(JsonObject) more =
    wait_stats(lab, lab->bob, id, played_ms,
               GUINT_TO_POINTER((guint)to_ms[G_N_ELEMENTS(codecs) - 1] + 500), "0.5 s more");
  HARK_REQUIRE(more != NULL);
  g_autoptr(JsonObject) hung = ask(lab, lab->alice, "hangup", NULL);
  HARK_REQUIRE(hung != NULL);
  g_autoptr(JsonObject) ended = wait_call(lab, lab->bob, id, "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  for (gsize i = 0; i < G_N_ELEMENTS(codecs); i++) {
    g_test_message("through %s:", codecs[i]);
    assert_heard_in(lab, lab->bob, 440, from_ms[i], to_ms[i]);
  }
}

/* bob stops his node (`shutdown`) mid-call: alice hears that he hung up, at once rather
 * than after the silence. */
static void
test_peer_stops(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  gint64 stopped = g_get_monotonic_time();
  HARK_REQUIRE(lab_node_stop(lab->bob));
  g_autoptr(JsonObject) ended = wait_call(lab, lab->alice, id, "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  gint64 took_ms = (g_get_monotonic_time() - stopped) / 1000;
  g_test_message("alice's call ended %" G_GINT64_FORMAT " ms after bob's node stopped: %s", took_ms,
                 str(ended, "reason"));
  g_assert_cmpstr(str(ended, "reason"), ==, "bob hung up");
}

/* ---- attacks (issue 14 point 10): signals a peer forges with the `signal` command ------ */

/* GVariant text of n bytes: those of hex (2n hex digits), or each `fill` when hex is NULL. */
static char *
bytes_text(const char *hex, guint n, guint fill)
{
  GString *text = g_string_new("[byte ");
  for (guint i = 0; i < n; i++) {
    guint value = fill;
    if (hex != NULL)
      value = (guint)(g_ascii_xdigit_value(hex[2 * i]) * 16 + g_ascii_xdigit_value(hex[2 * i + 1]));
    g_string_append_printf(text, "%s0x%02x", i > 0 ? ", " : "", value);
  }
  g_string_append_c(text, ']');
  return g_string_free(text, FALSE);
}

/* A call signal's body in GVariant text: type t for call id_hex with seq, then more
 * ("'hold': <true>", ...; may be NULL). */
static char *
call_body(const char *t, const char *id_hex, guint seq, const char *more)
{
  g_autofree char *id = bytes_text(id_hex, 16, 0);
  return g_strdup_printf("{'t': <'%s'>, 'id': <%s>, 'seq': <uint32 %u>%s%s}", t, id, seq,
                         more != NULL ? ", " : "", more != NULL ? more : "");
}

/* The fields of an ANSWER (or INVITE: without peer-nonce) with made-up values: nonces of
 * `fill` bytes, a share, one codec, ICE credentials. */
static char *
answer_fields(guint fill, gboolean with_peer_nonce)
{
  g_autofree char *nonce = bytes_text(NULL, 32, fill);
  g_autofree char *share = bytes_text(NULL, 32, 9);
  return g_strdup_printf("'nonce': <%s>, %s%s%s'share': <%s>, 'codecs': <[('opus', byte 111)]>, "
                         "'ufrag': <'abcd'>, 'pwd': <'abcdabcdabcdabcdabcdabcd'>",
                         nonce, with_peer_nonce ? "'peer-nonce': <" : "",
                         with_peer_nonce ? nonce : "", with_peer_nonce ? ">, " : "", share);
}

/* from (a node with a test clock) sends user's devices the call signal body. */
static gboolean
forge(CallLab *lab, LabNode *from, const char *user, const char *body)
{
  g_autoptr(JsonObject) sent =
    ask(lab, from, "signal", lab_args("to", user, "kind", "call", "body", body, NULL));
  return sent != NULL;
}

/* The state of call id in node's `calls`, or NULL (not there). */
static char *
call_state(CallLab *lab, LabNode *node, const char *id)
{
  g_autoptr(JsonObject) calls = ask(lab, node, "calls", NULL);
  JsonArray *list = calls != NULL ? json_object_get_array_member(calls, "calls") : NULL;
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++) {
    JsonObject *row = json_array_get_object_element(list, i);
    if (g_strcmp0(str(row, "id"), id) == 0)
      return g_strdup(str(row, "state"));
  }
  return NULL;
}

/* Audio still arrives at node in call id: a second more than it had played. */
static gboolean
audio_goes_on(CallLab *lab, LabNode *node, const char *id)
{
  g_autoptr(JsonObject) now = ask(lab, node, "stats", lab_args("id", id, NULL));
  if (now == NULL)
    return FALSE;
  gint64 played = json_object_get_int_member(now, "played_samples") / 48;
  g_autoptr(JsonObject) later =
    wait_stats(lab, node, id, played_ms, GUINT_TO_POINTER((guint)played + 1000), "1 s more audio");
  return later != NULL;
}

/* Replayed challenges. bob's device answers alice's ringing call with a nonce that is not
 * her INVITE's (as an earlier call's ANSWER would be): refused as unproven, her call still
 * rings, and bob's real ANSWER after it is taken (the refused one did not use up its seq).
 * An ANSWER for an earlier call is for no call. Once the call is up, an ANSWER or an ACK
 * replayed into it (alice's ACK without bob's nonce) is refused and counted; carol, not in
 * the call, is refused her ACK and ANSWER; the call goes on. */
static void
test_attack_replayed_challenge(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *old = NULL;
  g_autoptr(JsonObject) rang = dial(lab, lab->alice, lab->bob, &old);
  HARK_REQUIRE(rang != NULL);
  g_autoptr(JsonObject) declined = ask(lab, lab->bob, "decline", NULL);
  HARK_REQUIRE(declined != NULL);
  g_autoptr(JsonObject) over = wait_call(lab, lab->alice, old, "ended", CALL_MS);
  HARK_REQUIRE(over != NULL);

  g_autofree char *id = NULL;
  g_autoptr(JsonObject) ringing = dial(lab, lab->alice, lab->bob, &id);
  HARK_REQUIRE(ringing != NULL);
  g_autoptr(JsonObject) rings_there = wait_call(lab, lab->alice, id, "ringing", CALL_MS);
  HARK_REQUIRE(rings_there != NULL);
  g_autofree char *fields = answer_fields(0x5a, TRUE);
  g_autofree char *replayed = call_body("answer", id, 2, fields);
  HARK_REQUIRE(forge(lab, lab->bob, "alice", replayed));
  HARK_REQUIRE(wait_calls_counter(lab, lab->alice, "refused_proof", 1));
  g_autofree char *state = call_state(lab, lab->alice, id);
  g_assert_cmpstr(state, ==, "ringing");
  g_autofree char *earlier = call_body("answer", old, 3, fields);
  HARK_REQUIRE(forge(lab, lab->bob, "alice", earlier));
  HARK_REQUIRE(wait_calls_counter(lab, lab->alice, "refused_unknown", 1));

  g_autoptr(JsonObject) answered = ask(lab, lab->bob, "answer", lab_args("id", id, NULL));
  HARK_REQUIRE(answered != NULL);
  g_autoptr(JsonObject) up = wait_call(lab, lab->alice, id, "active", CALL_MS);
  g_autoptr(JsonObject) up2 = wait_call(lab, lab->bob, id, "active", CALL_MS);
  HARK_REQUIRE(up != NULL && up2 != NULL);

  g_autofree char *again = call_body("answer", id, 100, fields);
  HARK_REQUIRE(forge(lab, lab->bob, "alice", again));
  HARK_REQUIRE(wait_calls_counter(lab, lab->alice, "refused_proof", 2));
  g_autofree char *nonce = bytes_text(NULL, 32, 0x5a);
  g_autofree char *ack_fields = g_strdup_printf("'peer-nonce': <%s>", nonce);
  g_autofree char *ack = call_body("ack", id, 100, ack_fields);
  HARK_REQUIRE(forge(lab, lab->alice, "bob", ack));
  HARK_REQUIRE(wait_calls_counter(lab, lab->bob, "refused_proof", 1));

  g_autofree char *stranger_ack = call_body("ack", id, 1, ack_fields);
  HARK_REQUIRE(forge(lab, lab->carol, "bob", stranger_ack));
  HARK_REQUIRE(forge(lab, lab->carol, "alice", replayed));
  HARK_REQUIRE(wait_calls_counter(lab, lab->bob, "refused_sender", 1));
  HARK_REQUIRE(wait_calls_counter(lab, lab->alice, "refused_sender", 1));

  g_autofree char *at_alice = call_state(lab, lab->alice, id);
  g_autofree char *at_bob = call_state(lab, lab->bob, id);
  g_assert_cmpstr(at_alice, ==, "active");
  g_assert_cmpstr(at_bob, ==, "active");
  HARK_REQUIRE(audio_goes_on(lab, lab->bob, id));
  HARK_REQUIRE(audio_goes_on(lab, lab->alice, id));
}

/* carol, who is not in alice's call with bob, sends HANGUP, HOLD and UPDATE with its id to
 * bob and a HANGUP to alice: each refused and counted, the call goes on (not held, same
 * codec, audio arriving). A reason that would start a log line of its own is refused as
 * malformed, and no such line appears in bob's log. */
static void
test_attack_stranger_signals(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *id = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &id));
  g_autofree char *hangup = call_body("hangup", id, 1, "'reason': <'hung up'>");
  g_autofree char *hold = call_body("hold", id, 2, "'hold': <true>");
  g_autofree char *nonce = bytes_text(NULL, 32, 7);
  g_autofree char *update_fields =
    g_strdup_printf("'nonce': <%s>, 'codecs': <[('pcmu', byte 0)]>", nonce);
  g_autofree char *update = call_body("update", id, 3, update_fields);
  HARK_REQUIRE(forge(lab, lab->carol, "bob", hangup));
  HARK_REQUIRE(forge(lab, lab->carol, "bob", hold));
  HARK_REQUIRE(forge(lab, lab->carol, "bob", update));
  HARK_REQUIRE(forge(lab, lab->carol, "alice", hangup));
  g_autofree char *forged_line =
    call_body("hangup", id, 4, "'reason': <'x\\ncalls: forged line from bob'>");
  HARK_REQUIRE(forge(lab, lab->carol, "bob", forged_line));
  HARK_REQUIRE(wait_calls_counter(lab, lab->bob, "refused_sender", 3));
  HARK_REQUIRE(wait_calls_counter(lab, lab->alice, "refused_sender", 1));
  HARK_REQUIRE(wait_calls_counter(lab, lab->bob, "refused_malformed", 1));
  g_assert_cmpint(calls_counter(lab, lab->bob, "refused_sender"), ==, 3);

  g_autoptr(JsonObject) stats = ask(lab, lab->bob, "stats", lab_args("id", id, NULL));
  HARK_REQUIRE(stats != NULL);
  g_assert_cmpstr(str(stats, "codec"), ==, "opus");
  g_autofree char *at_alice = call_state(lab, lab->alice, id);
  g_autofree char *at_bob = call_state(lab, lab->bob, id);
  g_assert_cmpstr(at_alice, ==, "active");
  g_assert_cmpstr(at_bob, ==, "active");
  HARK_REQUIRE(audio_goes_on(lab, lab->bob, id));
  g_autofree char *log = hark_test_node_read_stderr(lab->bob->node);
  HARK_REQUIRE(log != NULL);
  g_assert_nonnull(strstr(log, "calls: refused a signal from carol"));
  g_assert_null(strstr(log, "\ncalls: forged line"));
}

/* GVariant text of n candidate lines of printable garbage. */
static char *
garbage_candidates(guint n)
{
  GString *text = g_string_new("[");
  for (guint i = 0; i < n; i++)
    g_string_append_printf(text, "%s'garbage %u <>!&*()[]{} udp 0 0 not a candidate'",
                           i > 0 ? ", " : "", i);
  g_string_append_c(text, ']');
  return g_string_free(text, FALSE);
}

/* carol offers bob absurd calls while he talks with alice: a payload type for a codec and
 * DTMF at once, 33 candidates, a 257-byte ufrag (each refused as malformed, none rings);
 * then codecs bob has none of, with 32 candidates of garbage and a 256-byte ufrag (the
 * limits): it rings, and answering it ends it "no common codec", counted; so does a real
 * call from carol's g711-only node to bob's opus-only one, for both. alice's call goes on,
 * not held, its audio arriving. */
static void
test_attack_absurd_offers(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *first = NULL;
  HARK_REQUIRE(call_up(lab, lab->alice, lab->bob, &first));
  g_autofree char *nonce = bytes_text(NULL, 32, 3);
  g_autofree char *share = bytes_text(NULL, 32, 9);
  g_autofree char *head = g_strdup_printf("'nonce': <%s>, 'share': <%s>", nonce, share);
  g_autofree char *many = garbage_candidates(33);
  g_autofree char *thirty_two = garbage_candidates(32);
  g_autofree char *ufrag_256 = g_strnfill(256, 'u');
  g_autofree char *ufrag_257 = g_strnfill(257, 'u');
  const char *ice = "'pwd': <'abcdabcdabcdabcdabcdabcd'>";
  g_autofree char *clash = g_strdup_printf(
    "%s, 'codecs': <[('opus', byte 111)]>, 'dtmf-pt': <byte 111>, 'ufrag': <'abcd'>, %s", head,
    ice);
  g_autofree char *too_many = g_strdup_printf(
    "%s, 'codecs': <[('opus', byte 111)]>, 'ufrag': <'abcd'>, %s, 'candidates': <%s>", head, ice,
    many);
  g_autofree char *long_ufrag = g_strdup_printf(
    "%s, 'codecs': <[('opus', byte 111)]>, 'ufrag': <'%s'>, %s", head, ufrag_257, ice);
  const char *bad[] = { clash, too_many, long_ufrag };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *id_hex = g_strnfill(32, "012"[i]);
    g_autofree char *body = call_body("invite", id_hex, 1, bad[i]);
    HARK_REQUIRE(forge(lab, lab->carol, "bob", body));
  }
  HARK_REQUIRE(wait_calls_counter(lab, lab->bob, "refused_malformed", 3));
  g_assert_cmpint(count_calls(lab, lab->bob), ==, 1);

  g_autofree char *foreign = g_strdup_printf(
    "%s, 'codecs': <[('speex', byte 96), ('amr-wb', byte 97)]>, 'ufrag': <'%s'>, %s, "
    "'candidates': <%s>",
    head, ufrag_256, ice, thirty_two);
  const char *id = "abababababababababababababababab";
  g_autofree char *offer = call_body("invite", id, 1, foreign);
  HARK_REQUIRE(forge(lab, lab->carol, "bob", offer));
  g_autoptr(JsonObject) rings = wait_call(lab, lab->bob, id, "ringing", CALL_MS);
  HARK_REQUIRE(rings != NULL);
  LabEvents *log = g_hash_table_lookup(lab->logs, lab->bob);
  g_autoptr(JsonObject) refused =
    lab_ctl_ask(lab->bob->ctl, "answer", lab_args("id", id, NULL), log->events);
  HARK_REQUIRE(refused != NULL);
  g_assert_false(json_object_get_boolean_member_with_default(refused, "ok", TRUE));
  g_autoptr(JsonObject) ended = wait_call(lab, lab->bob, id, "ended", CALL_MS);
  HARK_REQUIRE(ended != NULL);
  g_assert_cmpstr(str(ended, "outcome"), ==, "failed");
  g_assert_cmpstr(str(ended, "reason"), ==, "no common codec");
  g_assert_cmpint(calls_counter(lab, lab->bob, "no_common_codec"), ==, 1);

  /* A real call whose offer (carol's g711) has nothing bob's opus-only node has: it ends
   * for both, each with a reason to read. */
  g_autofree char *real = NULL;
  g_autoptr(JsonObject) rings_too = dial(lab, lab->carol, lab->bob, &real);
  HARK_REQUIRE(rings_too != NULL);
  g_autoptr(JsonObject) refused_too =
    lab_ctl_ask(lab->bob->ctl, "answer", lab_args("id", real, NULL), log->events);
  HARK_REQUIRE(refused_too != NULL);
  g_assert_false(json_object_get_boolean_member_with_default(refused_too, "ok", TRUE));
  g_autoptr(JsonObject) his = wait_call(lab, lab->bob, real, "ended", CALL_MS);
  g_autoptr(JsonObject) hers = wait_call(lab, lab->carol, real, "ended", CALL_MS);
  HARK_REQUIRE(his != NULL && hers != NULL);
  g_assert_cmpstr(str(his, "reason"), ==, "no common codec");
  g_assert_cmpstr(str(hers, "outcome"), ==, "failed");
  g_assert_cmpstr(str(hers, "reason"), ==, "bob: no common codec");
  g_assert_cmpint(calls_counter(lab, lab->bob, "no_common_codec"), ==, 2);

  g_autofree char *at_bob = call_state(lab, lab->bob, first);
  g_assert_cmpstr(at_bob, ==, "active");
  HARK_REQUIRE(audio_goes_on(lab, lab->bob, first));
  HARK_REQUIRE(audio_goes_on(lab, lab->alice, first));
}

/* The SN refused the node's link: its certificate expired. */
static gboolean
refused_expired_fits(JsonObject *e, gconstpointer unused)
{
  return g_strcmp0(str(e, "event"), "overlay-join-failed") == 0 &&
         strstr(str(e, "error") != NULL ? str(e, "error") : "", "certificate expired") != NULL;
}

/* carol's phone removes her other device (a stolen one, say) while its node runs: within
 * one certificate lifetime (5 s here) that device cannot renew, the SN closes its link and
 * refuses it again (its certificate expired), and its `call bob` fails with a reason; bob's
 * device never rings. (Within the lifetime the removed device still speaks for carol:
 * docs/protocol.md, "Calls (a hostile stranger, user or super node)".) */
static void
test_attack_removed_device(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *stolen = device_id(lab->carol);
  HARK_REQUIRE(stolen != NULL);
  gint64 removed_at = g_get_monotonic_time();
  g_autoptr(JsonObject) removed =
    ask(lab, lab->carol_phone, "device-remove", lab_args("device", stolen, NULL));
  HARK_REQUIRE(removed != NULL);
  g_autoptr(JsonObject) out = wait_event(lab, lab->carol, refused_expired_fits, NULL,
                                         "the SN refusing its certificate", 20000);
  HARK_REQUIRE(out != NULL);
  g_test_message("the SN refused the removed device %.1f s after the removal",
                 (g_get_monotonic_time() - removed_at) / 1e6);
  /* It dials (it still thinks itself logged in); the call fails with a reason. */
  LabEvents *carols = g_hash_table_lookup(lab->logs, lab->carol);
  g_autoptr(JsonObject) dialled =
    lab_ctl_ask(lab->carol->ctl, "call", lab_args("user", "bob", NULL), carols->events);
  HARK_REQUIRE(dialled != NULL);
  if (json_object_get_boolean_member_with_default(dialled, "ok", FALSE)) {
    const char *id = str(hark_test_answer_result(dialled), "id");
    g_autoptr(JsonObject) ended = wait_call(lab, lab->carol, id, "ended", CALL_MS);
    HARK_REQUIRE(ended != NULL);
    g_test_message("the removed device's call: %s (%s)", str(ended, "outcome"),
                   str(ended, "reason"));
    g_assert_cmpstr(str(ended, "outcome"), ==, "failed");
  }
  /* What bob's node saw meanwhile: no call at all. */
  g_assert_cmpint(count_calls(lab, lab->bob), ==, 0);
  LabEvents *log = g_hash_table_lookup(lab->logs, lab->bob);
  for (guint i = 0; i < log->events->len; i++)
    g_assert_cmpstr(str(log->events->pdata[i], "event"), !=, "call");
  g_assert_cmpint(calls_counter(lab, lab->bob, "signals"), ==, 0);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 90000);
  hark_test_add_isolated("/calls/signal-every-device-once", CallLab,
                         GUINT_TO_POINTER(LAB_BOB_PHONE | LAB_CAROL | LAB_BOB_TEST_CLOCK),
                         lab_set_up, test_signal_every_device_once, lab_tear_down);
  hark_test_add_isolated("/calls/signal-over-rate", CallLab,
                         GUINT_TO_POINTER(LAB_BOB_PHONE | LAB_CAROL), lab_set_up,
                         test_signal_over_rate, lab_tear_down);
  hark_test_add_isolated("/calls/signal-one-device-known", CallLab,
                         GUINT_TO_POINTER(LAB_BOB_PHONE | LAB_CAROL), lab_set_up,
                         test_signal_one_device_known, lab_tear_down);
  hark_test_add_isolated("/calls/signal-lookup-refused", CallLab,
                         GUINT_TO_POINTER(LAB_CAROL | LAB_SN_FEW_LOOKUPS), lab_set_up,
                         test_signal_lookup_refused, lab_tear_down);
  hark_test_add_isolated("/calls/answered", CallLab, NULL, lab_set_up, test_call_answered,
                         lab_tear_down);
  hark_test_add_isolated("/calls/declined", CallLab, NULL, lab_set_up, test_call_declined,
                         lab_tear_down);
  hark_test_add_isolated("/calls/cancelled", CallLab, NULL, lab_set_up, test_call_cancelled,
                         lab_tear_down);
  hark_test_add_isolated("/calls/every-device-rings", CallLab, GUINT_TO_POINTER(LAB_BOB_PHONE),
                         lab_set_up, test_every_device_rings, lab_tear_down);
  hark_test_add_isolated("/calls/busy", CallLab, GUINT_TO_POINTER(LAB_CAROL | LAB_BOB_ONE_CALL),
                         lab_set_up, test_busy, lab_tear_down);
  hark_test_add_isolated("/calls/codec-swap", CallLab, NULL, lab_set_up, test_codec_swap,
                         lab_tear_down);
  hark_test_add_isolated("/calls/media-set", CallLab, NULL, lab_set_up, test_media_set,
                         lab_tear_down);
  hark_test_add_isolated("/calls/hold-resume", CallLab, NULL, lab_set_up, test_hold_resume,
                         lab_tear_down);
  hark_test_add_isolated("/calls/invite-flood", CallLab,
                         GUINT_TO_POINTER(LAB_CAROL | LAB_BOB_MANY_CALLS), lab_set_up,
                         test_invite_flood, lab_tear_down);
  hark_test_add_isolated("/calls/no-answer", CallLab, GUINT_TO_POINTER(LAB_ALICE_RINGS_5S),
                         lab_set_up, test_no_answer, lab_tear_down);
  hark_test_add_isolated("/calls/call-waiting", CallLab, GUINT_TO_POINTER(LAB_CAROL), lab_set_up,
                         test_call_waiting, lab_tear_down);
  hark_test_add_isolated("/calls/path-swap", CallLab, NULL, lab_set_up, test_path_swap,
                         lab_tear_down);
  hark_test_add_isolated("/calls/dtmf-and-mute", CallLab, NULL, lab_set_up, test_dtmf_and_mute,
                         lab_tear_down);
  hark_test_add_isolated("/calls/peer-killed", CallLab, NULL, lab_set_up, test_peer_killed,
                         lab_tear_down);
  hark_test_add_isolated("/calls/path-relay", CallLab, GUINT_TO_POINTER(LAB_TURN), lab_set_up,
                         test_path_relay, lab_tear_down);
  hark_test_add_isolated("/calls/path-relay-unreachable", CallLab, GUINT_TO_POINTER(LAB_TURN_DEAD),
                         lab_set_up, test_path_relay_unreachable, lab_tear_down);
  hark_test_add_isolated("/calls/path-relay-sn", CallLab, GUINT_TO_POINTER(LAB_SN_RELAY),
                         lab_set_up, test_path_relay_sn, lab_tear_down);
  hark_test_add_isolated("/calls/path-relay-steered", CallLab, GUINT_TO_POINTER(LAB_STEERED),
                         lab_set_up, test_path_relay_steered, lab_tear_down);
  hark_test_add_isolated("/calls/every-codec", CallLab, NULL, lab_set_up, test_every_codec,
                         lab_tear_down);
  hark_test_add_isolated("/calls/peer-stops", CallLab, NULL, lab_set_up, test_peer_stops,
                         lab_tear_down);
  hark_test_add_isolated("/calls/attack/replayed-challenge", CallLab,
                         GUINT_TO_POINTER(LAB_CAROL | LAB_BOB_TEST_CLOCK | LAB_ALICE_TEST_CLOCK),
                         lab_set_up, test_attack_replayed_challenge, lab_tear_down);
  hark_test_add_isolated("/calls/attack/stranger-signals", CallLab, GUINT_TO_POINTER(LAB_CAROL),
                         lab_set_up, test_attack_stranger_signals, lab_tear_down);
  hark_test_add_isolated("/calls/attack/absurd-offers", CallLab,
                         GUINT_TO_POINTER(LAB_CAROL | LAB_NO_COMMON_CODEC), lab_set_up,
                         test_attack_absurd_offers, lab_tear_down);
  hark_test_add_isolated("/calls/attack/removed-device", CallLab,
                         GUINT_TO_POINTER(LAB_CAROL | LAB_CAROL_PHONE | LAB_SHORT_CERTIFICATES),
                         lab_set_up, test_attack_removed_device, lab_tear_down);
  return g_test_run();
}
