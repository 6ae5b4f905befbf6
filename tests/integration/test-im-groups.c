/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-im-groups.c: group conversations end to end with real processes. Each case makes
 * its own lab in a process of its own (test-isolate.h): a login server and one super
 * node; alice, bob and carol (and, for the attacks, mallory) have a device each.
 *
 * What a user would notice: alice makes a group with bob and carol; what each of them
 * writes reaches every other member once, in the order it was written; bob, away, gets
 * the group's messages when he comes back; carol leaves and gets nothing after; alice's
 * phone, logged in after the group was made, learns it from her next message. And the
 * attacks: bob (a member, not the admin) adds mallory from a hacked client: alice's and
 * carol's devices refuse the change (counted) and never seal for mallory; mallory, who
 * is not a member, posts to the group and changes its membership from a hacked client:
 * every member's device refuses both (counted). */
#include "harness.h"
#include "lab.h"
#include "test-isolate.h"

#include <signal.h>
#include <sqlite3.h>
#include <string.h>

#define OVERLAY_PORT 33038
#define JOIN_MS 15000
#define ARRIVE_MS 40000 /* a change held at the login server comes with the next fetch (30 s) */

typedef struct {
  LabLoginServer *login;
  char *sn_host;
  LabNode *sn;
  LabNode *alice;
  LabNode *bob;
  LabNode *carol;
  LabNode *mallory;
  char *group; /* "#" and its id */
} GroupLab;

static char *
login_section(GroupLab *lab)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab->login->url,
                         lab->login->ca_path);
}

static char *
sn_config(GroupLab *lab)
{
  g_autofree char *login = login_section(lab);
  return g_strdup_printf("node: { name = \"grp-sn\"; supernode = true; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = 0; };\n%s",
                         lab->sn_host, OVERLAY_PORT, lab->sn_host, login);
}

static char *
client_config(GroupLab *lab, const char *name)
{
  g_autofree char *login = login_section(lab);
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"search-loginsrv\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { allow_loopback = true; join_race_delay_ms = 100;\n"
                         "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"udp\", "
                         "\"tcp\" ]; } ); };\n%s",
                         name, lab->sn_host, OVERLAY_PORT, login);
}

static JsonObject *
wait_until(LabNode *node, const char *command, LabResultPredicate pred, gconstpointer data,
           const char *what)
{
  return lab_wait_command(node, command, pred, data, hark_test_timeout(JOIN_MS), what);
}

/* Where text is in node's conversation (its index), or -1; *n: how many times. */
static int
find_text(LabNode *node, const char *with, const char *text, guint *n)
{
  g_autoptr(GPtrArray) messages = lab_history(node, with);
  int at = -1;
  *n = 0;
  for (guint i = 0; i < messages->len; i++)
    if (g_strcmp0(json_object_get_string_member(messages->pdata[i], "text"), text) == 0) {
      at = at < 0 ? (int)i : at;
      (*n)++;
    }
  return at;
}

/* Polls history until the text is there (at most ARRIVE_MS); FALSE: the test failed. */
static gboolean
wait_text(LabNode *node, const char *with, const char *text)
{
  return lab_wait_text(node, with, text, ARRIVE_MS) >= 0;
}

/* Until node's counter is at least least (bounded); FALSE: the test failed. */
static gboolean
wait_counter(LabNode *node, const char *name, gint64 least)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  while (g_get_monotonic_time() < until) {
    if (lab_device_counter(node, name) >= least)
      return TRUE;
    g_usleep(50 * 1000);
  }
  g_test_fail_printf("%s: %s stayed at %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT, node->name,
                     name, lab_device_counter(node, name), least);
  hark_test_node_show_logs(node->node);
  return FALSE;
}

/* What a hacked client does: its own messages.sqlite says what it likes (the node is
 * stopped while it is changed). */
static gboolean
hack_history(LabNode *node, const char *sql)
{
  if (!lab_node_stop(node))
    return FALSE;
  g_autofree char *path = g_build_filename(node->node->state_dir, "messages.sqlite", NULL);
  sqlite3 *db = NULL;
  char *error = NULL;
  gboolean ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
                sqlite3_exec(db, sql, NULL, NULL, &error) == SQLITE_OK;
  if (!ok)
    g_test_fail_printf("%s: %s: %s", path, sql, error != NULL ? error : sqlite3_errmsg(db));
  sqlite3_free(error);
  sqlite3_close(db);
  return ok && lab_node_start(node);
}

/* A device of user, attached and published: a new user's first, or (register_first
 * FALSE) another device of a user who has one. */
static LabNode *
client_start(GroupLab *lab, const char *name, const char *user, gboolean register_first)
{
  g_autofree char *config = client_config(lab, name);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autoptr(JsonObject) attached =
    wait_until(node, "overlay", lab_overlay_is_attached, NULL, "attached");
  if (attached == NULL || (register_first && !lab_register_and_login(node, user)))
    return NULL;
  g_autofree char *password = g_strdup_printf("%s-password-1", user);
  g_autoptr(JsonObject) login =
    register_first ? NULL
                   : lab_call(node, "login", lab_args("user", user, "password", password, NULL));
  if (!register_first && login == NULL)
    return NULL;
  g_autoptr(JsonObject) published =
    wait_until(node, "directory", lab_directory_is_published, NULL, "published");
  return published != NULL ? g_steal_pointer(&node) : NULL;
}

#define CREATED "alice created the group \"friends\" with alice, bob, carol"

/* The lab, and alice's group "friends" with bob and carol, known to all three. */
static void
lab_set_up(GroupLab *lab, gconstpointer data)
{
  guint a = (guint)g_random_int_range(1, 255), b = (guint)g_random_int_range(0, 255);
  lab->sn_host = g_strdup_printf("127.%u.%u.43", a, b);
  lab->login = lab_login_server_new();
  if (lab->login == NULL)
    return;
  g_autofree char *config = sn_config(lab);
  lab->sn = lab_node_new("grp-sn", config);
  if (!lab_node_start(lab->sn) || !lab_register_and_login(lab->sn, "grp-sn-user"))
    return;
  g_autoptr(JsonObject) super =
    wait_until(lab->sn, "overlay", lab_overlay_is_super, NULL, "serving");
  if (super == NULL || (lab->alice = client_start(lab, "alice-grp", "alice", TRUE)) == NULL ||
      (lab->bob = client_start(lab, "bob-grp", "bob", TRUE)) == NULL ||
      (lab->carol = client_start(lab, "carol-grp", "carol", TRUE)) == NULL)
    return;
  g_autoptr(JsonObject) created =
    lab_call(lab->alice, "group-create", lab_args("name", "friends", "users", "bob, carol", NULL));
  if (created == NULL)
    return;
  g_assert_cmpint(json_object_get_int_member(created, "devices"), ==, 2);
  const char *group = json_object_get_string_member(created, "to");
  if (wait_text(lab->bob, group, CREATED) && wait_text(lab->carol, group, CREATED))
    lab->group = g_strdup(group);
}

static void
lab_tear_down(GroupLab *lab, gconstpointer data)
{
  LabNode **nodes[] = { &lab->mallory, &lab->carol, &lab->bob, &lab->alice, &lab->sn };
  lab_nodes_kill_free(nodes, G_N_ELEMENTS(nodes));
  g_clear_pointer(&lab->login, lab_login_server_free);
  g_free(lab->sn_host);
  g_free(lab->group);
}

#define LAB_UP(lab) HARK_REQUIRE((lab)->group != NULL)

/* Each member's two messages reach every member once, the second after the first. */
static void
assert_everyone_has(GroupLab *lab, const char *const texts[][2], guint n_senders)
{
  LabNode *members[] = { lab->alice, lab->bob, lab->carol };
  for (gsize m = 0; m < G_N_ELEMENTS(members); m++)
    for (guint s = 0; s < n_senders; s++) {
      HARK_REQUIRE(wait_text(members[m], lab->group, texts[s][1]));
      guint n1 = 0, n2 = 0;
      int first = find_text(members[m], lab->group, texts[s][0], &n1);
      int second = find_text(members[m], lab->group, texts[s][1], &n2);
      g_assert_cmpuint(n1, ==, 1);
      g_assert_cmpuint(n2, ==, 1);
      g_assert_cmpint(first, <, second);
    }
}

/* What every member writes reaches every member once and in order; bob, stopped, gets
 * the group's messages when he is back; carol leaves, and what is written after reaches
 * bob but not her. */
static void
test_members(GroupLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const char *const texts[][2] = {
    { "alice one (grp-4e1a)", "alice two (grp-4e1b)" },
    { "bob one (grp-77c0)", "bob two (grp-77c1)" },
    { "carol one (grp-09d2)", "carol two (grp-09d3)" },
  };
  LabNode *senders[] = { lab->alice, lab->bob, lab->carol };
  for (guint s = 0; s < G_N_ELEMENTS(senders); s++)
    for (guint i = 0; i < 2; i++) {
      g_autoptr(JsonObject) sent = lab_send_text(senders[s], lab->group, texts[s][i]);
      HARK_REQUIRE(sent != NULL);
      g_assert_cmpint(json_object_get_int_member(sent, "devices"), ==, 2);
      if (s == 0 && i == 0)
        g_test_message("a group text of %zu bytes for 2 devices (3 members): an envelope of "
                       "%" G_GINT64_FORMAT " bytes",
                       strlen(texts[s][i]), json_object_get_int_member(sent, "bytes"));
    }
  assert_everyone_has(lab, texts, G_N_ELEMENTS(senders));
  /* The group's name works as well as its id. */
  g_autoptr(JsonObject) by_name = lab_send_text(lab->alice, "#friends", "by name (grp-aa01)");
  HARK_REQUIRE(by_name != NULL && wait_text(lab->carol, lab->group, "by name (grp-aa01)"));

  /* bob is away: what alice and carol write is held for him. */
  HARK_REQUIRE(lab_node_stop(lab->bob));
  const char *away[] = { "while you were away, bob (grp-b0a1)", "carol too (grp-b0a2)" };
  g_autoptr(JsonObject) a1 = lab_send_text(lab->alice, lab->group, away[0]);
  g_autoptr(JsonObject) a2 = lab_send_text(lab->carol, lab->group, away[1]);
  HARK_REQUIRE(a1 != NULL && a2 != NULL);
  HARK_REQUIRE(wait_counter(lab->alice, "held", 1) && wait_counter(lab->carol, "held", 1));
  HARK_REQUIRE(lab_node_start(lab->bob));
  HARK_REQUIRE(wait_text(lab->bob, lab->group, away[0]) &&
               wait_text(lab->bob, lab->group, away[1]));
  g_assert_cmpuint(lab_count_text(lab->bob, lab->group, away[0]), ==, 1);

  /* carol leaves: alice's and bob's devices take it; she gets nothing after. */
  g_autoptr(JsonObject) left =
    lab_call(lab->carol, "group-leave", lab_args("group", lab->group, NULL));
  HARK_REQUIRE(left != NULL);
  HARK_REQUIRE(wait_text(lab->alice, lab->group, "carol left") &&
               wait_text(lab->bob, lab->group, "carol left"));
  const char *after = "carol is gone (grp-c0e1)";
  g_autoptr(JsonObject) sent = lab_send_text(lab->alice, lab->group, after);
  HARK_REQUIRE(sent != NULL);
  g_assert_cmpint(json_object_get_int_member(sent, "devices"), ==, 1); /* bob's only */
  HARK_REQUIRE(wait_text(lab->bob, lab->group, after));
  g_assert_cmpuint(lab_count_text(lab->carol, lab->group, after), ==, 0);
  /* And her device no longer writes to the group. */
  g_autoptr(JsonObject) refused =
    lab_ask(lab->carol, "msg", lab_args("to", lab->group, "text", "still here?", NULL));
  HARK_REQUIRE(refused != NULL);
  g_assert_true(json_object_has_member(refused, "error"));
}

/* A member without the right and a stranger, each with a hacked client (its own history
 * file edited): their changes and posts are refused by the members' devices and counted,
 * and nobody seals for mallory. */
static void
test_hostile(GroupLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  lab->mallory = client_start(lab, "mallory-grp", "mallory", TRUE);
  HARK_REQUIRE(lab->mallory != NULL);
  const char *id = lab->group + 1;
  /* bob's client thinks he is the admin, and adds mallory. */
  g_autofree char *admin_bob =
    g_strdup_printf("UPDATE groups SET admin = 'bob' WHERE id = '%s'", id);
  HARK_REQUIRE(hack_history(lab->bob, admin_bob));
  g_autoptr(JsonObject) added =
    lab_call(lab->bob, "group-add", lab_args("group", lab->group, "users", "mallory", NULL));
  HARK_REQUIRE(added != NULL);
  HARK_REQUIRE(wait_counter(lab->alice, "refused_group", 1));
  HARK_REQUIRE(wait_counter(lab->carol, "refused_group", 1));
  g_autoptr(JsonObject) sent = lab_send_text(lab->alice, lab->group, "members only (grp-d00d)");
  HARK_REQUIRE(sent != NULL);
  g_assert_cmpint(json_object_get_int_member(sent, "devices"), ==, 2); /* not mallory's */
  HARK_REQUIRE(wait_text(lab->carol, lab->group, "members only (grp-d00d)"));
  g_assert_cmpuint(lab_count_text(lab->mallory, lab->group, "members only (grp-d00d)"), ==, 0);

  /* mallory's client claims the group with her as a member (and its admin): her post and
   * her change (removing carol) are refused by alice's and carol's devices. */
  g_autofree char *claim = g_strdup_printf(
    "INSERT INTO groups VALUES ('%s', 'friends', 'mallory', 5, 'alice bob carol mallory')"
    " ON CONFLICT DO UPDATE SET admin = 'mallory', version = 5,"
    " members = 'alice bob carol mallory'",
    id);
  HARK_REQUIRE(hack_history(lab->mallory, claim));
  gint64 alice_before = lab_device_counter(lab->alice, "refused_not_member");
  gint64 carol_before = lab_device_counter(lab->carol, "refused_not_member");
  g_autoptr(JsonObject) posted = lab_send_text(lab->mallory, lab->group, "let me in (grp-bad1)");
  HARK_REQUIRE(posted != NULL);
  HARK_REQUIRE(wait_counter(lab->alice, "refused_not_member", alice_before + 1));
  HARK_REQUIRE(wait_counter(lab->carol, "refused_not_member", carol_before + 1));
  gint64 changes_before = lab_device_counter(lab->alice, "refused_group");
  g_autoptr(JsonObject) removed =
    lab_call(lab->mallory, "group-remove", lab_args("group", lab->group, "users", "carol", NULL));
  HARK_REQUIRE(removed != NULL);
  HARK_REQUIRE(wait_counter(lab->alice, "refused_group", changes_before + 1));
  g_assert_cmpuint(lab_count_text(lab->alice, lab->group, "let me in (grp-bad1)"), ==, 0);
  g_assert_cmpuint(lab_count_text(lab->alice, lab->group, "mallory removed carol"), ==, 0);

  /* Nothing changed for the members: carol is still one, and hears alice. */
  g_autoptr(JsonObject) still = lab_send_text(lab->alice, lab->group, "all still here (grp-e0e0)");
  HARK_REQUIRE(still != NULL);
  g_assert_cmpint(json_object_get_int_member(still, "devices"), ==, 2);
  HARK_REQUIRE(wait_text(lab->carol, lab->group, "all still here (grp-e0e0)"));
  g_assert_cmpuint(lab_count_text(lab->mallory, lab->group, "all still here (grp-e0e0)"), ==, 0);
}

/* alice's phone logs in after the group was made: it learns the group from the next
 * message alice writes on her laptop (the state a group text carries, from its own
 * user) or from her laptop's history, and then shows what bob writes too. */
static void
test_new_device(GroupLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autoptr(LabNode) phone = client_start(lab, "alice-phone-grp", "alice", FALSE);
  HARK_REQUIRE(phone != NULL);
  /* The laptop and bob ask for alice's devices again (they keep a user's list 60 s). */
  HARK_REQUIRE(lab_node_restart(lab->alice) && lab_node_restart(lab->bob));
  const char *mine = "from my laptop (grp-f1a0)";
  const char *bobs = "hello both of alice's devices (grp-f1a1)";
  g_autoptr(JsonObject) sent = lab_send_text(lab->alice, lab->group, mine);
  HARK_REQUIRE(sent != NULL);
  g_assert_cmpint(json_object_get_int_member(sent, "devices"), ==, 3); /* bob, carol, phone */
  g_test_message("a group text of %zu bytes for 3 devices: an envelope of %" G_GINT64_FORMAT
                 " bytes",
                 strlen(mine), json_object_get_int_member(sent, "bytes"));
  HARK_REQUIRE(wait_text(phone, lab->group, mine));
  /* From that text's state, or from the laptop's history if it came first: once. */
  g_assert_cmpint(
    lab_device_counter(phone, "group_states") + lab_device_counter(phone, "history_groups"), ==, 1);
  g_autoptr(JsonObject) answer = lab_send_text(lab->bob, lab->group, bobs);
  HARK_REQUIRE(answer != NULL);
  HARK_REQUIRE(wait_text(phone, lab->group, bobs));
  g_assert_cmpuint(lab_count_text(phone, lab->group, mine), ==, 1);
  g_autoptr(JsonObject) groups = lab_call(phone, "groups", NULL);
  HARK_REQUIRE(groups != NULL);
  JsonArray *list = json_object_get_array_member(groups, "groups");
  g_assert_cmpuint(json_array_get_length(list), ==, 1);
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(list, 0), "admin"),
                  ==, "alice");
  lab_node_kill(phone);
}

/* Whether a `groups` answer lists the group data names ("#" and its id). */
static gboolean
lists_group(JsonObject *result, gconstpointer data)
{
  JsonArray *list = json_object_get_array_member(result, "groups");
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++)
    if (g_strcmp0(json_object_get_string_member(json_array_get_object_element(list, i), "group"),
                  data) == 0)
      return TRUE;
  return FALSE;
}

/* The texts of node's conversation, in order, joined with "|". */
static char *
texts_of(LabNode *node, const char *with)
{
  g_autoptr(GPtrArray) messages = lab_history(node, with);
  GString *out = g_string_new(NULL);
  for (guint i = 0; i < messages->len; i++)
    g_string_append_printf(out, "%s%s", i > 0 ? "|" : "",
                           json_object_get_string_member(messages->pdata[i], "text"));
  return g_string_free(out, FALSE);
}

/* Until node's counter is at least least (bounded), keeping the events seen meanwhile. */
static gboolean
wait_counter_events(LabNode *node, const char *name, gint64 least, GPtrArray *events)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  gint64 value = -1;
  do {
    g_autoptr(JsonObject) messages = lab_ctl_call(node->ctl, "messages", NULL, events);
    JsonObject *device =
      messages != NULL ? json_object_get_object_member(messages, "device") : NULL;
    value = device != NULL ? json_object_get_int_member_with_default(device, name, -1) : -1;
    if (value >= least)
      return TRUE;
    g_usleep(50 * 1000);
  } while (g_get_monotonic_time() < until);
  g_test_fail_printf("%s: %s stayed at %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT, node->name,
                     name, value, least);
  hark_test_node_show_logs(node->node);
  return FALSE;
}

/* How many `message` events of events are in the conversation key. */
static guint
message_events_in(GPtrArray *events, const char *key)
{
  guint n = 0;
  for (guint i = 0; i < events->len; i++)
    n +=
      g_strcmp0(json_object_get_string_member_with_default(events->pdata[i], "event", NULL),
                "message") == 0 &&
      g_strcmp0(json_object_get_string_member_with_default(events->pdata[i], "conversation", NULL),
                key) == 0;
  return n;
}

/* The group's entry of node's `conversations` (a new reference), or NULL. */
static JsonObject *
conversation_of(LabNode *node, const char *group)
{
  g_autoptr(JsonObject) answer = lab_call(node, "conversations", NULL);
  JsonArray *list = answer != NULL ? json_object_get_array_member(answer, "conversations") : NULL;
  g_autofree char *key = g_strconcat("g:", group + 1, NULL);
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++) {
    JsonObject *c = json_array_get_object_element(list, i);
    if (g_strcmp0(json_object_get_string_member(c, "conversation"), key) == 0)
      return json_object_ref(c);
  }
  return NULL;
}

/* alice, bob and carol write in the group; alice then logs in on a new phone, and
 * nobody writes meanwhile. Her laptop's history gives the phone the group (its name,
 * admin, version and members) and its messages: `groups` lists it, `history` shows the
 * messages once each and in order, `conversations` lists the group with its last message
 * and nothing unread (a past conversation, not news), and no `message` event came for
 * them. The phone writes to the group at once: bob, carol and the laptop get it once. */
static void
test_new_device_history(GroupLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const char *past[] = { "alice: who is in? (grp-h001)", "bob: me (grp-h002)",
                         "carol: me too (grp-h003)", "alice: good (grp-h004)" };
  LabNode *writers[] = { lab->alice, lab->bob, lab->carol, lab->alice };
  for (guint i = 0; i < G_N_ELEMENTS(past); i++) {
    g_autoptr(JsonObject) sent = lab_send_text(writers[i], lab->group, past[i]);
    HARK_REQUIRE(sent != NULL);
    /* Each waits for the one before at every member: the order is the same everywhere. */
    HARK_REQUIRE(wait_text(lab->alice, lab->group, past[i]) &&
                 wait_text(lab->bob, lab->group, past[i]) &&
                 wait_text(lab->carol, lab->group, past[i]));
  }
  g_autofree char *expected = g_strjoin("|", CREATED, past[0], past[1], past[2], past[3], NULL);
  g_autofree char *on_laptop = texts_of(lab->alice, lab->group);
  g_assert_cmpstr(on_laptop, ==, expected);

  gint64 start = g_get_monotonic_time();
  g_autoptr(LabNode) phone = client_start(lab, "alice-phone-grp", "alice", FALSE);
  HARK_REQUIRE(phone != NULL);
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  HARK_REQUIRE(wait_counter_events(phone, "history_received", G_N_ELEMENTS(past) + 1, events));
  g_autoptr(JsonObject) groups = lab_wait_command(phone, "groups", lists_group, lab->group,
                                                  hark_test_timeout(ARRIVE_MS), "the group");
  HARK_REQUIRE(groups != NULL);
  g_test_message("the phone had the group and its %zu messages %" G_GINT64_FORMAT
                 " ms after its node started",
                 G_N_ELEMENTS(past) + 1, (g_get_monotonic_time() - start) / 1000);
  JsonObject *group =
    json_array_get_object_element(json_object_get_array_member(groups, "groups"), 0);
  g_assert_cmpstr(json_object_get_string_member(group, "group"), ==, lab->group);
  g_assert_cmpstr(json_object_get_string_member(group, "name"), ==, "friends");
  g_assert_cmpstr(json_object_get_string_member(group, "admin"), ==, "alice");
  g_assert_cmpint(json_object_get_int_member(group, "version"), ==, 1);
  g_assert_true(json_object_get_boolean_member(group, "member"));
  JsonArray *members = json_object_get_array_member(group, "members");
  g_assert_cmpuint(json_array_get_length(members), ==, 3);
  const char *names[] = { "alice", "bob", "carol" };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    g_assert_cmpstr(json_array_get_string_element(members, i), ==, names[i]);
  g_assert_cmpint(lab_device_counter(phone, "history_groups"), ==, 1);
  g_assert_cmpint(lab_device_counter(phone, "history_groups_refused"), ==, 0);
  /* Nothing of it came as news: no `message` event (in what the phone said since
   * client_start returned) and nothing taken live (from its start). */
  g_autofree char *key = g_strconcat("g:", lab->group + 1, NULL);
  g_assert_cmpuint(message_events_in(events, key), ==, 0);
  g_assert_cmpint(lab_device_counter(phone, "received"), ==, 0);

  /* Shown like the rest of a past conversation: read, its last message on top. Asked
   * before `history`, which marks a conversation read. */
  g_autoptr(JsonObject) conversation = conversation_of(phone, lab->group);
  HARK_REQUIRE(conversation != NULL);
  g_assert_cmpint(json_object_get_int_member(conversation, "unread"), ==, 0);
  g_assert_cmpstr(json_object_get_string_member(conversation, "title"), ==, "friends");
  JsonObject *last = json_object_get_object_member(conversation, "last");
  g_assert_nonnull(last);
  g_assert_cmpstr(json_object_get_string_member(last, "text"), ==, past[3]);
  g_assert_cmpstr(json_object_get_string_member(last, "direction"), ==, "out");
  g_autofree char *on_phone = texts_of(phone, lab->group);
  g_assert_cmpstr(on_phone, ==, expected);

  /* The phone writes to the group at once. */
  const char *post = "alice, from her new phone (grp-h005)";
  g_autoptr(JsonObject) sent = lab_send_text(phone, lab->group, post);
  HARK_REQUIRE(sent != NULL);
  g_assert_cmpint(json_object_get_int_member(sent, "devices"), ==, 3); /* bob, carol, laptop */
  HARK_REQUIRE(wait_text(lab->bob, lab->group, post) && wait_text(lab->carol, lab->group, post) &&
               wait_text(lab->alice, lab->group, post));
  g_assert_cmpuint(lab_count_text(lab->bob, lab->group, post), ==, 1);
  g_assert_cmpuint(lab_count_text(lab->carol, lab->group, post), ==, 1);
  /* Answers from every device and retries have settled: each past message still once. */
  g_autofree char *with_post = g_strjoin("|", expected, post, NULL);
  g_autofree char *again = texts_of(phone, lab->group);
  g_assert_cmpstr(again, ==, with_post);
  lab_node_kill(phone);
}

/* The router's counter name of node (the `messages` answer's top level), -1 without. */
static gint64
route_counter(LabNode *node, const char *name)
{
  g_autoptr(JsonObject) messages = lab_call(node, "messages", NULL);
  return messages != NULL ? json_object_get_int_member_with_default(messages, name, -1) : -1;
}

typedef struct {
  LabNode *node;
  gint64 least;
} RouteWait;

static gboolean
route_sent(gpointer data)
{
  RouteWait *wait = data;
  return route_counter(wait->node, "sent") >= wait->least;
}

/* alice's laptop freezes (SIGSTOP) and her new phone logs in: its history request is
 * handed to the laptop's link by the SN ("delivered"), but the laptop dies (SIGKILL)
 * without reading it, and comes back. Its next group text reaches the phone (which holds
 * it until the past it follows, the group's creation, has come: its sequence is 2):
 * the phone asks again the device that has not answered once that is online. It used to
 * ask once a run, so the text waited for its gap for an hour. */
static void
test_new_device_request_lost(GroupLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_subprocess_send_signal(lab->alice->node->process, SIGSTOP);
  g_autoptr(LabNode) phone = client_start(lab, "alice-phone-lost", "alice", FALSE);
  HARK_REQUIRE(phone != NULL);
  RouteWait handed = { phone, 1 }; /* the request, handed to the frozen laptop's link */
  if (!hark_test_wait_for(route_sent, &handed, hark_test_timeout(JOIN_MS))) {
    g_test_fail_printf("the phone's history request was not handed to the laptop's link");
    return;
  }
  lab_node_kill(lab->alice);
  HARK_REQUIRE(lab_node_start(lab->alice) && lab_node_restart(lab->bob));
  const char *mine = "after the laptop came back (grp-f1b0)";
  gint64 start = g_get_monotonic_time();
  g_autoptr(JsonObject) sent = lab_send_text(lab->alice, lab->group, mine);
  HARK_REQUIRE(sent != NULL);
  g_assert_cmpint(json_object_get_int_member(sent, "devices"), ==, 3); /* bob, carol, phone */
  HARK_REQUIRE(wait_text(phone, lab->group, mine));
  g_test_message("the laptop's text was shown on the phone %" G_GINT64_FORMAT " ms after it "
                 "was sent; the phone asked again %" G_GINT64_FORMAT " times",
                 (g_get_monotonic_time() - start) / 1000,
                 lab_device_counter(phone, "history_requests_again"));
  g_assert_cmpint(lab_device_counter(phone, "history_requests_again"), >=, 1);
  g_assert_cmpuint(lab_count_text(phone, lab->group, mine), ==, 1);
  g_autofree char *on_phone = texts_of(phone, lab->group);
  g_autofree char *expected = g_strjoin("|", CREATED, mine, NULL);
  g_assert_cmpstr(on_phone, ==, expected);
  lab_node_kill(phone);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 120000);
  hark_test_add_isolated("/im-groups/members", GroupLab, NULL, lab_set_up, test_members,
                         lab_tear_down);
  hark_test_add_isolated("/im-groups/new-device", GroupLab, NULL, lab_set_up, test_new_device,
                         lab_tear_down);
  hark_test_add_isolated("/im-groups/hostile", GroupLab, NULL, lab_set_up, test_hostile,
                         lab_tear_down);
  hark_test_add_isolated("/im-groups/new-device-history", GroupLab, NULL, lab_set_up,
                         test_new_device_history, lab_tear_down);
  hark_test_add_isolated("/im-groups/new-device-request-lost", GroupLab, NULL, lab_set_up,
                         test_new_device_request_lost, lab_tear_down);
  return g_test_run();
}
