/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-directory-gi.c: the `gi` and `flood` search strategies on real super nodes. Four
 * SNs linked to each other (supernode.links = 3) load both; alice logs in on two devices
 * at SN1, bob on one at SN3. Her records reach the other SNs only over the SNs' TLS links
 * (gi: stored on the SNs closest to her key; flood: kept at SN1 and asked for in rings),
 * and bob finds both devices through his SN. A user registered on no device is not in
 * the index: the strategy cannot tell and the login server says "known". Each case runs
 * its own lab in its own process (test-isolate.h). */
#include "harness.h"
#include "lab.h"
#include "test-isolate.h"

#include <string.h>

#define OVERLAY_PORT 33043
#define NSN 4
#define WAIT_MS 20000
#define CASE_MS 90000

typedef struct {
  LabLoginServer *login;
  char *hosts[NSN];
  LabNode *sn[NSN];
  LabNode *alice1;
  LabNode *alice2;
  LabNode *bob;
  const char *strategy; /* "gi" or "flood" */
} Lab;

static char *
login_section(Lab *lab)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab->login->url,
                         lab->login->ca_path);
}

/* SN i, bootstrapping from every SN before it, keeping a link to each of the others. */
static char *
sn_config(Lab *lab, guint i)
{
  g_autofree char *login = login_section(lab);
  g_autoptr(GString) bootstrap = g_string_new(NULL);
  for (guint j = 0; j < i; j++)
    g_string_append_printf(bootstrap, "%s{ host = \"%s\"; port = %u; transports = "
                           "[ \"udp\", \"tcp\" ]; }", j > 0 ? ", " : "", lab->hosts[j],
                           OVERLAY_PORT);
  return g_strdup_printf("node: { name = \"gi-sn%u\"; supernode = true; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"gi\"; }, { name = \"flood\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; bootstrap = ( %s ); };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = %u; };\n"
                         "directory: { lookups_per_minute = 600; };\n%s",
                         i + 1, lab->hosts[i], OVERLAY_PORT, lab->hosts[i], bootstrap->str,
                         NSN - 1, login);
}

/* A client of SN sn that searches with the lab's strategy, then the login server. */
static char *
client_config(Lab *lab, const char *name, guint sn)
{
  g_autofree char *login = login_section(lab);
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"search-loginsrv\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { allow_loopback = true; join_race_delay_ms = 100;\n"
                         "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"udp\", "
                         "\"tcp\" ]; } ); };\n"
                         "directory: { search = [ \"%s\", \"loginsrv\" ]; };\n%s",
                         name, lab->hosts[sn], OVERLAY_PORT, lab->strategy, login);
}

/* ---- waiting ---------------------------------------------------------------------- */

typedef struct {
  LabNode *node;
  const char *command;
  gboolean (*pred)(JsonObject *result, gconstpointer data);
  gconstpointer data;
  JsonObject *last;
} Wait;

static gboolean
holds(gpointer data)
{
  Wait *wait = data;
  g_clear_pointer(&wait->last, json_object_unref);
  g_autoptr(JsonObject) answer = lab_ask(wait->node, wait->command, NULL);
  JsonObject *result = answer != NULL && json_object_get_boolean_member_with_default(answer, "ok", FALSE)
                         ? json_object_get_object_member(answer, "result")
                         : NULL;
  if (result == NULL)
    return FALSE;
  wait->last = json_object_ref(result);
  return wait->pred(wait->last, wait->data);
}

/* The command's result once pred holds (a new reference), or NULL (test failed). */
static JsonObject *
wait_until(LabNode *node, const char *command, gboolean (*pred)(JsonObject *, gconstpointer),
           gconstpointer data, const char *what)
{
  Wait wait = { node, command, pred, data, NULL };
  if (hark_test_wait_for(holds, &wait, hark_test_timeout(WAIT_MS)))
    return wait.last;
  g_autofree char *json = wait.last != NULL ? hark_test_json(wait.last) : g_strdup("none");
  g_test_fail_printf("%s: not %s in time; last %s: %s", node->name, what, command, json);
  hark_test_node_show_logs(node->node);
  g_clear_pointer(&wait.last, json_object_unref);
  return NULL;
}

static gboolean
is_attached(JsonObject *overlay, gconstpointer data)
{
  return g_strcmp0(json_object_get_string_member_with_default(overlay, "state", NULL),
                   "attached") == 0;
}

static gboolean
is_published(JsonObject *directory, gconstpointer data)
{
  JsonObject *publish = json_object_get_object_member(directory, "publish");
  return publish != NULL && !json_object_get_null_member(publish, "published_at");
}

/* The stats of strategy name in a `directory` answer, or NULL. */
static JsonObject *
strategy_stats(JsonObject *directory, const char *name)
{
  JsonArray *search = json_object_get_array_member(directory, "search");
  for (guint i = 0; search != NULL && i < json_array_get_length(search); i++) {
    JsonObject *s = json_array_get_object_element(search, i);
    if (g_strcmp0(json_object_get_string_member_with_default(s, "name", NULL), name) == 0)
      return json_object_has_member(s, "stats") ? json_object_get_object_member(s, "stats")
                                                : NULL;
  }
  return NULL;
}

static gint64
stat_of(JsonObject *directory, const char *strategy, const char *counter)
{
  JsonObject *stats = strategy_stats(directory, strategy);
  return stats != NULL ? json_object_get_int_member_with_default(stats, counter, -1) : -1;
}

/* Both strategies run and have every other SN as a contact (a verified link each). */
static gboolean
knows_every_sn(JsonObject *directory, gconstpointer data)
{
  return stat_of(directory, "gi", "contacts") == NSN - 1 &&
         stat_of(directory, "flood", "contacts") == NSN - 1;
}

static gint64
sn_stat(LabNode *sn, const char *strategy, const char *counter)
{
  g_autoptr(JsonObject) directory = lab_call(sn, "directory", NULL);
  return directory != NULL ? stat_of(directory, strategy, counter) : -1;
}

/* ---- the lab ------------------------------------------------------------------------ */

static LabNode *
client_start(Lab *lab, const char *name, guint sn, const char *user, gboolean register_first)
{
  g_autofree char *config = client_config(lab, name, sn);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autoptr(JsonObject) attached = wait_until(node, "overlay", is_attached, NULL, "attached");
  if (attached == NULL)
    return NULL;
  if (register_first && !lab_register_and_login(node, user))
    return NULL;
  if (!register_first) {
    g_autofree char *password = g_strdup_printf("%s-password-1", user);
    g_autoptr(JsonObject) login =
      lab_call(node, "login", lab_args("user", user, "password", password, NULL));
    if (login == NULL)
      return NULL;
  }
  g_autoptr(JsonObject) published =
    wait_until(node, "directory", is_published, NULL, "published");
  return published != NULL ? g_steal_pointer(&node) : NULL;
}

static gboolean
lab_up(Lab *lab, const char *strategy)
{
  lab->strategy = strategy;
  guint a = (guint)g_random_int_range(1, 255), b = (guint)g_random_int_range(0, 255);
  lab->login = lab_login_server_new();
  if (lab->login == NULL)
    return FALSE;
  for (guint i = 0; i < NSN; i++) {
    lab->hosts[i] = g_strdup_printf("127.%u.%u.%u", a, b, 31 + i);
    g_autofree char *config = sn_config(lab, i);
    g_autofree char *name = g_strdup_printf("gi-sn%u", i + 1);
    g_autofree char *user = g_strdup_printf("gi-sn%u-user", i + 1);
    lab->sn[i] = lab_node_new(name, config);
    if (!lab_node_start(lab->sn[i]) || !lab_register_and_login(lab->sn[i], user))
      return FALSE;
  }
  for (guint i = 0; i < NSN; i++) {
    g_autoptr(JsonObject) ready =
      wait_until(lab->sn[i], "directory", knows_every_sn, NULL, "linked to every other SN");
    if (ready == NULL)
      return FALSE;
  }
  lab->alice1 = client_start(lab, "alice-laptop", 0, "alice", TRUE);
  lab->alice2 = lab->alice1 != NULL ? client_start(lab, "alice-phone", 0, "alice", FALSE) : NULL;
  lab->bob = lab->alice2 != NULL ? client_start(lab, "bob-desk", 2, "bob", TRUE) : NULL;
  return lab->bob != NULL;
}

static void
lab_down(Lab *lab)
{
  g_clear_pointer(&lab->bob, lab_node_free);
  g_clear_pointer(&lab->alice2, lab_node_free);
  g_clear_pointer(&lab->alice1, lab_node_free);
  for (guint i = 0; i < NSN; i++) {
    g_clear_pointer(&lab->sn[i], lab_node_free);
    g_free(lab->hosts[i]);
  }
  g_clear_pointer(&lab->login, lab_login_server_free);
}

static JsonObject *
search(LabNode *node, const char *name)
{
  return lab_call(node, "search", lab_args("name", name, NULL));
}

/* bob, at SN3, finds both of alice's devices, both at SN1. */
static void
assert_bob_finds_alice(Lab *lab)
{
  g_autoptr(JsonObject) found = search(lab->bob, "alice");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpstr(json_object_get_string_member(found, "answer"), ==, "found");
  JsonArray *devices = json_object_get_array_member(found, "devices");
  g_assert_cmpuint(json_array_get_length(devices), ==, 2);
  g_autofree char *sn1 = g_strdup_printf("%s:%u", lab->hosts[0], OVERLAY_PORT);
  for (guint i = 0; i < 2; i++) {
    JsonObject *d = json_array_get_object_element(devices, i);
    g_assert_cmpstr(json_object_get_string_member(d, "user"), ==, "alice");
    g_assert_cmpstr(json_object_get_string_member(d, "sn"), ==, sn1);
  }
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(devices, 0),
                                                "device"),
                  !=,
                  json_object_get_string_member(json_array_get_object_element(devices, 1),
                                                "device"));
}

/* ---- cases ------------------------------------------------------------------------ */

/* gi: alice's records are stored on the SNs closest to her key (SN1 sends them over its
 * links), SN3 finds them with a lookup of the index. */
static void
test_gi(void)
{
  Lab lab = { 0 };
  HARK_REQUIRE(lab_up(&lab, "gi"));
  assert_bob_finds_alice(&lab);
  /* SN3 answered through gi (its own store has no record of alice: she is at SN1). */
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "found"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "flood", "lookups"), ==, 0);
  g_assert_cmpint(sn_stat(lab.sn[0], "gi", "published"), ==, 2);
  /* Her two records and bob's went out over the links: replicas on other SNs. */
  gint64 elsewhere = 0;
  for (guint i = 1; i < NSN; i++)
    elsewhere += sn_stat(lab.sn[i], "gi", "records");
  g_assert_cmpint(elsewhere, >=, 2);
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "received"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "forged"), ==, 0);
  lab_down(&lab);
}

/* flood: alice's records stay at SN1; SN3 asks its neighbours, SN1 answers. */
static void
test_flood(void)
{
  Lab lab = { 0 };
  HARK_REQUIRE(lab_up(&lab, "flood"));
  assert_bob_finds_alice(&lab);
  g_assert_cmpint(sn_stat(lab.sn[2], "flood", "found"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "flood", "routed"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "lookups"), ==, 0);
  g_assert_cmpint(sn_stat(lab.sn[0], "flood", "records"), ==, 2);
  lab_down(&lab);
}

/* A user registered on no device is in no SN's index: gi cannot tell, the login server
 * says she exists. */
static void
test_known_from_login_server(void)
{
  Lab lab = { 0 };
  HARK_REQUIRE(lab_up(&lab, "gi"));
  g_autoptr(JsonObject) reg =
    lab_call(lab.bob, "register", lab_args("user", "carol", "password", "carol-password-1", NULL));
  HARK_REQUIRE(reg != NULL);
  g_autoptr(JsonObject) known = search(lab.bob, "carol");
  HARK_REQUIRE(known != NULL);
  g_assert_cmpstr(json_object_get_string_member(known, "answer"), ==, "known");
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "not_found"), >=, 1);
  g_autoptr(JsonObject) unknown = search(lab.bob, "nobody-here");
  HARK_REQUIRE(unknown != NULL);
  g_assert_cmpstr(json_object_get_string_member(unknown, "answer"), ==, "unknown");
  lab_down(&lab);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, CASE_MS);
  hark_test_add_isolated_func("/directory-gi/gi", test_gi);
  hark_test_add_isolated_func("/directory-gi/flood", test_flood);
  hark_test_add_isolated_func("/directory-gi/known", test_known_from_login_server);
  return g_test_run();
}
