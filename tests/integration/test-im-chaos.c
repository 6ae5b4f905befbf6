/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-im-chaos.c: instant messages under crashes, with real processes. A login server,
 * three linked super nodes, and three users on five devices (alice: laptop and phone, bob:
 * desk and phone, carol: laptop) write to each other from every device at once while a
 * seeded random schedule SIGKILLs devices and SNs and starts them again on the same state
 * (an SN at the same address). At the end everything comes back, every outbox empties,
 * and every history is checked.
 *
 * What a user would notice: a message the `msg` command answered ("sent") is never lost,
 * shows exactly once on every device of the addressee and on the sender's other devices,
 * and the messages of one sender device come in the order it wrote them, whatever crashed
 * when. A message whose `msg` answer was lost in a crash counts as sent if the sender's
 * own history has it (the user sees it there) and must then arrive as well.
 *
 * Two phases: first the three one-to-one conversations (60 % of the messages), then alice
 * makes a group of the three users and everyone writes to it under the same chaos (40 %);
 * both are checked at the end, each phase's counts printed.
 *
 * The run is repeatable: HARK_CHAOS_SEED=N gives the schedule and the messages (the seed
 * is printed first); HARK_CHAOS_MESSAGES changes how many are sent (1000 by default). */
#include "harness.h"
#include "lab.h"
#include "test-isolate.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERLAY_PORT 33037
#define N_SN 3
#define N_DEVICES 5
#define N_USERS 3
#define JOIN_MS 15000
#define SETTLE_MS 150000 /* the outboxes empty after the chaos ends */
#define GROUP_MS 60000 /* every device knows the new group (after the first phase's chaos) */
#define HISTORY_MAX 1000 /* the `history` command's most */
#define MAX_BATCH 4 /* msg commands in flight per device and round */
#define KILL_PERCENT 12 /* a round kills something with this chance */
#define MAX_DOWN_ROUNDS 12
#define MAX_DEVICES_DOWN 2

static const char *const users[N_USERS] = { "alice", "bob", "carol" };

typedef struct {
  const char *name;
  guint user; /* in users */
  guint sn; /* the SN it tries first */
} DeviceSpec;

static const DeviceSpec device_specs[N_DEVICES] = {
  { "alice-laptop", 0, 0 }, { "alice-phone", 0, 1 },  { "bob-desk", 1, 1 },
  { "bob-phone", 1, 2 },    { "carol-laptop", 2, 2 },
};

/* A conversation of the run: its members (bits over users). One-to-one: `msg to` the
 * other member, `history with` the other member. A group phase sets group (its id, the
 * `to` of msg and the `with` of history for every member). */
typedef struct {
  guint members;
  const char *group;
} ChaosConversation;

/* A message the test asked for, and what the sender's `msg` answered. */
typedef struct {
  guint device;
  const ChaosConversation *conversation;
  char *text;
  char *id; /* NULL until answered */
  gint64 sequence;
} ChaosSent;

/* A phase of the run: its conversations, the messages it asked for (lab->sent[from, to))
 * and what happened meanwhile. */
typedef struct {
  const char *name;
  const ChaosConversation *conversations;
  guint n_conversations;
  guint from, to;
  guint kills_device, kills_sn, lost_answers, refused;
  gint64 chaos_ms;
} ChaosPhase;

/* A node of the lab and how long it stays down (rounds; 0: running). */
typedef struct {
  LabNode *node;
  guint down_rounds;
  guint64 duplicates; /* the `messages` counter over earlier lives */
  guint64 duplicates_now; /* ... and in this one, last asked */
  char *device_id;
} ChaosNode;

typedef struct {
  LabLoginServer *login;
  char *sn_host[N_SN];
  ChaosNode sn[N_SN];
  ChaosNode device[N_DEVICES];
  guint64 seed;
  GRand *rand;
  GPtrArray *sent; /* ChaosSent*, in the order asked */
  GPtrArray *pending[N_DEVICES]; /* ChaosSent* asked of the device's current life */
  ChaosPhase *phase; /* the one running */
  ChaosConversation group; /* the second phase's conversation, once made */
  gint64 started;
} ChaosLab;

/* ---- configurations --------------------------------------------------------------- */

static char *
login_section(ChaosLab *lab)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab->login->url,
                         lab->login->ca_path);
}

static char *
peer_entry(const char *host)
{
  return g_strdup_printf("{ host = \"%s\"; port = %u; transports = [ \"udp\", \"tcp\" ]; }", host,
                         OVERLAY_PORT);
}

/* SN i bootstraps to the ones before it. */
static char *
sn_config(ChaosLab *lab, guint i)
{
  g_autofree char *login = login_section(lab);
  g_autoptr(GString) bootstrap = g_string_new("");
  for (guint j = 0; j < i; j++) {
    g_autofree char *entry = peer_entry(lab->sn_host[j]);
    g_string_append_printf(bootstrap, "%s%s", j > 0 ? ", " : "", entry);
  }
  return g_strdup_printf("node: { name = \"chaos-sn%u\"; supernode = true; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; bootstrap = ( %s ); };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = %u; };\n%s",
                         i + 1, lab->sn_host[i], OVERLAY_PORT, lab->sn_host[i], bootstrap->str,
                         N_SN - 1, login);
}

/* A device knows every SN, its own first: when that one is down it attaches to another. */
static char *
device_config(ChaosLab *lab, guint d)
{
  g_autofree char *login = login_section(lab);
  g_autoptr(GString) bootstrap = g_string_new("");
  for (guint k = 0; k < N_SN; k++) {
    g_autofree char *entry = peer_entry(lab->sn_host[(device_specs[d].sn + k) % N_SN]);
    g_string_append_printf(bootstrap, "%s%s", k > 0 ? ", " : "", entry);
  }
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"search-loginsrv\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { allow_loopback = true; join_race_delay_ms = 100;\n"
                         "  bootstrap = ( %s ); };\n%s",
                         device_specs[d].name, bootstrap->str, login);
}

/* ---- the lab ------------------------------------------------------------------------ */

static gboolean
wait_attached(LabNode *node)
{
  g_autoptr(JsonObject) attached = lab_wait_command(node, "overlay", lab_overlay_is_attached, NULL,
                                                    hark_test_timeout(JOIN_MS), "attached");
  return attached != NULL;
}

static gboolean
sn_start(ChaosLab *lab, guint i)
{
  g_autofree char *config = sn_config(lab, i);
  g_autofree char *name = g_strdup_printf("chaos-sn%u", i + 1);
  g_autofree char *user = g_strdup_printf("chaos-sn%u-user", i + 1);
  lab->sn[i].node = lab_node_new(name, config);
  if (!lab_node_start(lab->sn[i].node) || !lab_register_and_login(lab->sn[i].node, user))
    return FALSE;
  g_autoptr(JsonObject) linked =
    lab_wait_command(lab->sn[i].node, "overlay", lab_overlay_is_super, GUINT_TO_POINTER(i),
                     hark_test_timeout(JOIN_MS), "serving, linked to the SNs before it");
  return linked != NULL;
}

static gboolean
device_start(ChaosLab *lab, guint d)
{
  const DeviceSpec *spec = &device_specs[d];
  g_autofree char *config = device_config(lab, d);
  ChaosNode *device = &lab->device[d];
  device->node = lab_node_new(spec->name, config);
  if (!lab_node_start(device->node) || !wait_attached(device->node))
    return FALSE;
  const char *user = users[spec->user];
  /* The user's first device registers, the others log in. */
  gboolean first = TRUE;
  for (guint e = 0; e < d; e++)
    first = first && device_specs[e].user != spec->user;
  if (first && !lab_register_and_login(device->node, user))
    return FALSE;
  if (!first) {
    g_autofree char *password = g_strdup_printf("%s-password-1", user);
    g_autoptr(JsonObject) login =
      lab_call(device->node, "login", lab_args("user", user, "password", password, NULL));
    if (login == NULL)
      return FALSE;
  }
  g_autoptr(JsonObject) whoami = lab_call(device->node, "whoami", NULL);
  if (whoami == NULL)
    return FALSE;
  device->device_id = g_strdup(json_object_get_string_member(whoami, "device_id"));
  g_autoptr(JsonObject) published =
    lab_wait_command(device->node, "directory", lab_directory_is_published, NULL,
                     hark_test_timeout(JOIN_MS), "published");
  return published != NULL;
}

/* make check runs one schedule, the same every time (HARK_CHAOS_SEED=random draws one;
 * docs/testing.md, "Messages under crashes", lists seeds that found bugs). */
#define CHAOS_DEFAULT_SEED 12345

static guint64
chaos_seed(void)
{
  const char *given = g_getenv("HARK_CHAOS_SEED");
  if (g_strcmp0(given, "random") == 0)
    return ((guint64)g_random_int() << 32 | g_random_int()) % 1000000000000ULL;
  if (given != NULL && given[0] != '\0')
    return g_ascii_strtoull(given, NULL, 10);
  return CHAOS_DEFAULT_SEED;
}

static void
chaos_sent_free(ChaosSent *sent)
{
  g_free(sent->text);
  g_free(sent->id);
  g_free(sent);
}

static void
lab_set_up(ChaosLab *lab, gconstpointer data)
{
  lab->seed = chaos_seed();
  g_test_message("chaos seed %" G_GUINT64_FORMAT " (repeat with HARK_CHAOS_SEED=%" G_GUINT64_FORMAT
                 ")",
                 lab->seed, lab->seed);
  g_printerr("# chaos seed %" G_GUINT64_FORMAT "\n", lab->seed);
  lab->rand = g_rand_new_with_seed_array(
    (const guint32[]){ (guint32)lab->seed, (guint32)(lab->seed >> 32) }, 2);
  lab->sent = g_ptr_array_new_with_free_func((GDestroyNotify)chaos_sent_free);
  for (guint d = 0; d < N_DEVICES; d++)
    lab->pending[d] = g_ptr_array_new();
  lab->started = g_get_monotonic_time();
  /* Addresses from the seed too: a repeated run is the same run. */
  guint a = (guint)g_rand_int_range(lab->rand, 1, 255),
        b = (guint)g_rand_int_range(lab->rand, 0, 255);
  for (guint i = 0; i < N_SN; i++)
    lab->sn_host[i] = g_strdup_printf("127.%u.%u.%u", a, b, 51 + i);
  /* Every device holds for the others while they are down: more than 120 holds a minute.
   * (The five devices and three SNs are one address to the server, 127.0.0.1, but their
   * look-ups are signed and count per account: docs/protocol.md, "Limits".) */
  lab->login = lab_login_server_new_with("messages = { holds_per_minute = 100000; };");
  if (lab->login == NULL)
    return;
  for (guint i = 0; i < N_SN; i++)
    if (!sn_start(lab, i))
      return;
  for (guint d = 0; d < N_DEVICES; d++)
    if (!device_start(lab, d))
      return;
}

static void
lab_tear_down(ChaosLab *lab, gconstpointer data)
{
  for (guint d = 0; d < N_DEVICES; d++) {
    if (lab->device[d].node != NULL)
      lab_node_kill(lab->device[d].node);
    g_clear_pointer(&lab->device[d].node, lab_node_free);
    g_free(lab->device[d].device_id);
    g_clear_pointer(&lab->pending[d], g_ptr_array_unref);
  }
  for (guint i = 0; i < N_SN; i++) {
    if (lab->sn[i].node != NULL)
      lab_node_kill(lab->sn[i].node);
    g_clear_pointer(&lab->sn[i].node, lab_node_free);
    g_free(lab->sn_host[i]);
  }
  g_clear_pointer(&lab->login, lab_login_server_free);
  g_clear_pointer(&lab->sent, g_ptr_array_unref);
  g_clear_pointer(&lab->rand, g_rand_free);
  g_free((char *)lab->group.group);
}

#define LAB_UP(lab) HARK_REQUIRE((lab)->device[N_DEVICES - 1].device_id != NULL)

/* ---- the chaos ---------------------------------------------------------------------- */

static gboolean
is_member(const ChaosConversation *c, guint user)
{
  return (c->members & (1u << user)) != 0;
}

/* What `msg to` and `history with` take for user in c. */
static const char *
addressee(const ChaosConversation *c, guint user)
{
  if (c->group != NULL)
    return c->group;
  for (guint u = 0; u < N_USERS; u++)
    if (u != user && is_member(c, u))
      return users[u];
  return users[user];
}

static gboolean
is_running(const ChaosNode *n)
{
  return n->down_rounds == 0;
}

/* Asks device d for up to MAX_BATCH messages in conversations of its user, without waiting
 * for the answers. */
static void
send_batch(ChaosLab *lab, guint d, const ChaosConversation *conversations, guint n)
{
  ChaosNode *device = &lab->device[d];
  guint user = device_specs[d].user;
  guint batch = (guint)g_rand_int_range(lab->rand, 1, MAX_BATCH + 1);
  for (guint k = 0; k < batch; k++) {
    const ChaosConversation *c;
    do
      c = &conversations[g_rand_int_range(lab->rand, 0, (gint32)n)];
    while (!is_member(c, user));
    ChaosSent *sent = g_new0(ChaosSent, 1);
    sent->device = d;
    sent->conversation = c;
    sent->text = g_strdup_printf("chaos %" G_GUINT64_FORMAT " #%u from %s", lab->seed,
                                 lab->sent->len, device_specs[d].name);
    g_ptr_array_add(lab->sent, sent);
    g_autoptr(JsonObject) args = lab_args("to", addressee(c, user), "text", sent->text, NULL);
    g_autofree char *id = g_strdup_printf("chaos-%u", lab->sent->len - 1);
    if (hark_test_client_send(device->node->ctl, id, "msg", args))
      g_ptr_array_add(lab->pending[d], sent);
  }
}

/* The answers to what device d was asked; FALSE (test failed) when one does not come. */
static gboolean
collect_answers(ChaosLab *lab, guint d)
{
  ChaosNode *device = &lab->device[d];
  GPtrArray *pending = lab->pending[d];
  while (pending->len > 0) {
    g_autoptr(JsonObject) line =
      hark_test_client_read(device->node->ctl, hark_test_timeout(LAB_ANSWER_MS));
    if (line == NULL) {
      g_test_message("(%s, waiting for %u msg answers)", device_specs[d].name, pending->len);
      return FALSE;
    }
    const char *id = json_object_get_string_member_with_default(line, "id", NULL);
    if (id == NULL || !g_str_has_prefix(id, "chaos-"))
      continue; /* an event */
    ChaosSent *sent = lab->sent->pdata[g_ascii_strtoull(id + 6, NULL, 10)];
    g_ptr_array_remove(pending, sent);
    JsonObject *result =
      json_object_has_member(line, "result") ? json_object_get_object_member(line, "result") : NULL;
    if (result == NULL) {
      g_autofree char *shown = hark_test_json(line);
      g_test_message("%s refused to send: %s", device_specs[d].name, shown);
      lab->phase->refused++;
      continue;
    }
    sent->id = g_strdup(json_object_get_string_member(result, "id"));
    sent->sequence = json_object_get_int_member(result, "sequence");
  }
  return TRUE;
}

/* The device's duplicates counter in this life (kept over its lives). */
static void
note_duplicates(ChaosNode *device)
{
  g_autoptr(JsonObject) messages = lab_call(device->node, "messages", NULL);
  JsonObject *counters =
    messages != NULL ? json_object_get_object_member(messages, "device") : NULL;
  if (counters != NULL)
    device->duplicates_now = (guint64)json_object_get_int_member(counters, "duplicates");
}

static void
kill_node(ChaosLab *lab, ChaosNode *n, gboolean is_sn, guint d)
{
  g_test_message("%.3f s: SIGKILL %s", (g_get_monotonic_time() - lab->started) / 1e6,
                 n->node->name);
  lab_node_kill(n->node);
  n->duplicates += n->duplicates_now;
  n->duplicates_now = 0;
  n->down_rounds = (guint)g_rand_int_range(lab->rand, 1, MAX_DOWN_ROUNDS + 1);
  if (is_sn) {
    lab->phase->kills_sn++;
  } else {
    /* Its msg answers are lost with it: the sender's history says later what was sent. */
    lab->phase->lost_answers += lab->pending[d]->len;
    g_ptr_array_set_size(lab->pending[d], 0);
    lab->phase->kills_device++;
  }
}

/* Perhaps kills a device or an SN: at most one SN and MAX_DEVICES_DOWN devices are down
 * at a time. Called while msg answers are on their way. From the middle of a phase on, a
 * run that has not killed an SN yet (or a device, from a third on) kills one now, so that
 * no seed tests nothing. */
static void
maybe_kill(ChaosLab *lab, guint done, guint count)
{
  gboolean sn_owed = lab->phase->kills_sn == 0 && done >= count / 2;
  gboolean device_owed = lab->phase->kills_device == 0 && done >= count / 3;
  if (!sn_owed && !device_owed && g_rand_int_range(lab->rand, 0, 100) >= KILL_PERCENT)
    return;
  guint target = sn_owed       ? (guint)g_rand_int_range(lab->rand, 0, N_SN)
                 : device_owed ? (guint)g_rand_int_range(lab->rand, N_SN, N_SN + N_DEVICES)
                               : (guint)g_rand_int_range(lab->rand, 0, N_SN + N_DEVICES);
  if (target < N_SN) {
    for (guint i = 0; i < N_SN; i++)
      if (!is_running(&lab->sn[i]))
        return;
    kill_node(lab, &lab->sn[target], TRUE, 0);
    return;
  }
  guint d = target - N_SN, down = 0;
  for (guint e = 0; e < N_DEVICES; e++)
    down += !is_running(&lab->device[e]);
  if (is_running(&lab->device[d]) && down < MAX_DEVICES_DOWN)
    kill_node(lab, &lab->device[d], FALSE, d);
}

/* Starts n again on its state when its time is up (now, when force). */
static gboolean
maybe_restart(ChaosLab *lab, ChaosNode *n, gboolean force)
{
  if (is_running(n) || (!force && --n->down_rounds > 0))
    return TRUE;
  n->down_rounds = 0;
  g_test_message("%.3f s: start %s again", (g_get_monotonic_time() - lab->started) / 1e6,
                 n->node->name);
  return lab_node_start(n->node);
}

static gboolean
restart_due(ChaosLab *lab, gboolean force)
{
  for (guint i = 0; i < N_SN; i++)
    if (!maybe_restart(lab, &lab->sn[i], force))
      return FALSE;
  for (guint d = 0; d < N_DEVICES; d++)
    if (!maybe_restart(lab, &lab->device[d], force))
      return FALSE;
  return TRUE;
}

/* Rounds until count messages were asked for in the phase's conversations: every running
 * device gets a batch, then perhaps something is killed (answers still on their way), then
 * the answers are read and whatever's downtime is over starts again. At the end everything
 * is started again. */
static gboolean
chaos_phase(ChaosLab *lab, ChaosPhase *phase, guint count)
{
  gint64 start = g_get_monotonic_time();
  lab->phase = phase;
  phase->from = lab->sent->len;
  while (lab->sent->len < phase->from + count) {
    for (guint d = 0; d < N_DEVICES; d++)
      if (is_running(&lab->device[d]))
        send_batch(lab, d, phase->conversations, phase->n_conversations);
    maybe_kill(lab, lab->sent->len - phase->from, count);
    for (guint d = 0; d < N_DEVICES; d++)
      if (is_running(&lab->device[d])) {
        if (!collect_answers(lab, d))
          return FALSE;
        note_duplicates(&lab->device[d]);
      }
    if (!restart_due(lab, FALSE))
      return FALSE;
  }
  phase->to = lab->sent->len;
  gboolean restarted = restart_due(lab, TRUE);
  phase->chaos_ms = (g_get_monotonic_time() - start) / 1000;
  return restarted;
}

/* ---- the group ---------------------------------------------------------------------- */

static gboolean
knows_group(JsonObject *result, gconstpointer group)
{
  JsonArray *groups = json_object_get_array_member(result, "groups");
  for (guint i = 0; groups != NULL && i < json_array_get_length(groups); i++) {
    JsonObject *g = json_array_get_object_element(groups, i);
    if (g_strcmp0(json_object_get_string_member(g, "group"), group) == 0 &&
        json_object_get_boolean_member_with_default(g, "member", FALSE))
      return TRUE;
  }
  return FALSE;
}

/* alice's laptop makes a group of the three users, right after the first phase (every
 * node just started again, outboxes still full); FALSE (test failed) unless every device
 * knows it within GROUP_MS. */
static gboolean
make_group(ChaosLab *lab)
{
  for (guint d = 0; d < N_DEVICES; d++)
    if (!wait_attached(lab->device[d].node))
      return FALSE;
  g_autoptr(JsonObject) created = lab_call(
    lab->device[0].node, "group-create", lab_args("name", "chaos", "users", "bob, carol", NULL));
  if (created == NULL)
    return FALSE;
  g_assert_cmpint(json_object_get_int_member(created, "devices"), ==, N_DEVICES - 1);
  const char *group = json_object_get_string_member(created, "to");
  g_test_message("%.3f s: alice-laptop made the group %s", 
                 (g_get_monotonic_time() - lab->started) / 1e6, group);
  for (guint d = 0; d < N_DEVICES; d++) {
    g_autoptr(JsonObject) known = lab_wait_command(lab->device[d].node, "groups", knows_group,
                                                   group, hark_test_timeout(GROUP_MS),
                                                   "knows the group");
    if (known == NULL)
      return FALSE;
  }
  g_test_message("%.3f s: every device knows it", (g_get_monotonic_time() - lab->started) / 1e6);
  lab->group.members = (1u << N_USERS) - 1;
  lab->group.group = g_strdup(group);
  return TRUE;
}

/* ---- the end ------------------------------------------------------------------------ */

static gint64
outbox_size(ChaosNode *device)
{
  g_autofree char *path = g_build_filename(device->node->node->state_dir, "messages.sqlite", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 n = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
      n = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

/* What is left in device's outbox, for a run that did not settle: to whom, how often
 * tried, and when it is due (node clock, unix s) against now. */
static void
show_outbox(ChaosNode *device)
{
  g_autofree char *path = g_build_filename(device->node->node->state_dir, "messages.sqlite", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db,
                         "SELECT hex(message_id), substr(device, 1, 12), user, attempts,"
                         " next_attempt - unixepoch() FROM outbox LIMIT 20",
                         -1, &stmt, NULL) == SQLITE_OK)
    while (sqlite3_step(stmt) == SQLITE_ROW)
      g_test_message("  %s for %s (%s): %d attempts, due in %lld s", sqlite3_column_text(stmt, 0),
                     sqlite3_column_text(stmt, 1), sqlite3_column_text(stmt, 2),
                     sqlite3_column_int(stmt, 3), (long long)sqlite3_column_int64(stmt, 4));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

static gboolean
outboxes_empty(gpointer data)
{
  ChaosLab *lab = data;
  for (guint d = 0; d < N_DEVICES; d++)
    if (outbox_size(&lab->device[d]) != 0)
      return FALSE;
  return TRUE;
}

/* The conversation's messages on device d, in the order shown. */
static JsonArray *
history_on(ChaosLab *lab, guint d, const ChaosConversation *c, JsonObject **holder)
{
  JsonObject *args = lab_args("with", addressee(c, device_specs[d].user), NULL);
  json_object_set_int_member(args, "n", HISTORY_MAX);
  *holder = lab_call(lab->device[d].node, "history", args);
  return *holder != NULL ? json_object_get_array_member(*holder, "messages") : NULL;
}

typedef struct {
  guint delivered[N_DEVICES]; /* messages from other devices in its histories */
  guint written; /* messages in the senders' own histories */
  guint problems; /* each shown as a message; the case fails once with their number */
} ChaosCounts;

static void G_GNUC_PRINTF(2, 3) problem(ChaosCounts *counts, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  g_autofree char *text = g_strdup_vprintf(format, ap);
  va_end(ap);
  if (counts->problems++ < 50)
    g_test_message("problem: %s", text);
}

/* Key of a message: sender device and id (ids are unique per sender device). */
static char *
message_key(const char *device, const char *id)
{
  return g_strdup_printf("%s/%s", device, id);
}

/* The check of one conversation: what the senders' own histories hold is what was sent
 * (a superset of what `msg` answered); every member device holds each of those exactly
 * once, nothing else, and each sender device's in its sequence order without a gap. */
static void
check_conversation(ChaosLab *lab, const ChaosConversation *c, ChaosCounts *counts)
{
  g_autoptr(GHashTable) sent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) per_device = g_hash_table_new(g_str_hash, g_str_equal);
  JsonObject *holders[N_DEVICES] = { NULL };
  JsonArray *histories[N_DEVICES] = { NULL };
  for (guint d = 0; d < N_DEVICES; d++) {
    if (!is_member(c, device_specs[d].user))
      continue;
    histories[d] = history_on(lab, d, c, &holders[d]);
    if (histories[d] == NULL)
      goto out;
    g_assert_cmpuint(json_array_get_length(histories[d]), <, HISTORY_MAX); /* all of it */
    for (guint i = 0; i < json_array_get_length(histories[d]); i++) {
      JsonObject *m = json_array_get_object_element(histories[d], i);
      const char *from = json_object_get_string_member(m, "device");
      if (g_strcmp0(from, lab->device[d].device_id) != 0)
        continue;
      g_hash_table_insert(sent, message_key(from, json_object_get_string_member(m, "id")),
                          GSIZE_TO_POINTER((gsize)json_object_get_int_member(m, "sequence")));
      g_hash_table_insert(
        per_device, (gpointer)from,
        GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(per_device, from)) + 1));
      counts->written++;
    }
  }
  /* Nothing the user was told was sent is missing from the sender's own history. */
  for (guint i = 0; i < lab->sent->len; i++) {
    ChaosSent *s = lab->sent->pdata[i];
    if (s->conversation != c || s->id == NULL)
      continue;
    g_autofree char *key = message_key(lab->device[s->device].device_id, s->id);
    gpointer sequence = NULL;
    if (!g_hash_table_lookup_extended(sent, key, NULL, &sequence))
      problem(counts, "%s: \"%s\" (%s) was answered sent but is not in its history",
              device_specs[s->device].name, s->text, s->id);
    else if (GPOINTER_TO_SIZE(sequence) != (gsize)s->sequence)
      problem(counts,
              "%s: \"%s\" was answered sequence %" G_GINT64_FORMAT
              ", its history says %" G_GSIZE_FORMAT,
              device_specs[s->device].name, s->text, s->sequence, GPOINTER_TO_SIZE(sequence));
  }
  for (guint d = 0; d < N_DEVICES; d++) {
    if (histories[d] == NULL)
      continue;
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) last_sequence = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < json_array_get_length(histories[d]); i++) {
      JsonObject *m = json_array_get_object_element(histories[d], i);
      const char *from = json_object_get_string_member(m, "device");
      char *key = message_key(from, json_object_get_string_member(m, "id"));
      gint64 sequence = json_object_get_int_member(m, "sequence");
      gint64 last = GPOINTER_TO_SIZE(g_hash_table_lookup(last_sequence, from));
      gboolean after_gap = json_object_get_boolean_member_with_default(m, "after_gap", FALSE);
      if (!g_hash_table_contains(sent, key))
        problem(counts, "%s shows \"%s\", which its sender's history does not have",
                device_specs[d].name, json_object_get_string_member(m, "text"));
      if (g_hash_table_contains(seen, key))
        problem(counts, "%s shows \"%s\" twice", device_specs[d].name,
                json_object_get_string_member(m, "text"));
      if (sequence != last + 1 || after_gap)
        problem(counts,
                "%s shows \"%s\" (sequence %" G_GINT64_FORMAT ") after sequence %" G_GINT64_FORMAT
                " of the same device%s",
                device_specs[d].name, json_object_get_string_member(m, "text"), sequence, last,
                after_gap ? " (after a gap)" : "");
      g_hash_table_insert(last_sequence, (gpointer)from, GSIZE_TO_POINTER((gsize)sequence));
      g_hash_table_add(seen, key);
      if (g_strcmp0(from, lab->device[d].device_id) != 0)
        counts->delivered[d]++;
    }
    /* Everything sent, from every sender device, and its last sequence is their count. */
    GHashTableIter iter;
    gpointer key, n;
    g_hash_table_iter_init(&iter, sent);
    while (g_hash_table_iter_next(&iter, &key, NULL))
      if (!g_hash_table_contains(seen, key))
        problem(counts, "%s lacks %s (with %s)", device_specs[d].name, (const char *)key,
                addressee(c, device_specs[d].user));
    g_hash_table_iter_init(&iter, per_device);
    while (g_hash_table_iter_next(&iter, &key, &n)) {
      gsize shown = GPOINTER_TO_SIZE(g_hash_table_lookup(last_sequence, key));
      if (shown != GPOINTER_TO_UINT(n))
        problem(counts,
                "%s shows up to sequence %" G_GSIZE_FORMAT " of the %u messages %.12s sent with %s",
                device_specs[d].name, shown, GPOINTER_TO_UINT(n), (const char *)key,
                addressee(c, device_specs[d].user));
    }
  }
out:
  for (guint d = 0; d < N_DEVICES; d++)
    if (holders[d] != NULL)
      json_object_unref(holders[d]);
}

/* One line a phase (what it asked, what was answered and what its senders' histories
 * hold, its kills), then the settling, then per device what it was delivered in each
 * phase and the duplicates it dropped over the run. */
static void
print_phase(ChaosLab *lab, const ChaosPhase *phase, const ChaosCounts *counts)
{
  guint answered = 0;
  for (guint i = phase->from; i < phase->to; i++)
    answered += ((ChaosSent *)lab->sent->pdata[i])->id != NULL;
  g_autofree char *line = g_strdup_printf(
    "%s: asked %u, answered sent %u, answers lost in a crash %u, refused %u; in the senders' "
    "histories %u; kills: %u devices, %u SNs; chaos %.1f s",
    phase->name, phase->to - phase->from, answered, phase->lost_answers, phase->refused,
    counts->written, phase->kills_device, phase->kills_sn, phase->chaos_ms / 1e3);
  g_test_message("%s", line);
  g_printerr("# %s\n", line);
}

static void
print_counts(ChaosLab *lab, const ChaosPhase *phases, const ChaosCounts *counts, guint n,
             gint64 settle_ms)
{
  guint asked = 0, written = 0;
  for (guint p = 0; p < n; p++) {
    print_phase(lab, &phases[p], &counts[p]);
    asked += phases[p].to - phases[p].from;
    written += counts[p].written;
  }
  g_autofree char *line =
    g_strdup_printf("seed %" G_GUINT64_FORMAT ": asked %u, in the senders' histories %u; "
                    "settling %.1f s, total %.1f s",
                    lab->seed, asked, written, settle_ms / 1e3,
                    (g_get_monotonic_time() - lab->started) / 1e6);
  g_test_message("%s", line);
  g_printerr("# %s\n", line);
  for (guint d = 0; d < N_DEVICES; d++) {
    ChaosNode *device = &lab->device[d];
    note_duplicates(device);
    g_autoptr(GString) delivered = g_string_new("");
    for (guint p = 0; p < n; p++)
      g_string_append_printf(delivered, "%s%s %u", p > 0 ? ", " : "", phases[p].name,
                             counts[p].delivered[d]);
    g_autofree char *device_line =
      g_strdup_printf("%s: delivered %s; duplicates dropped %" G_GUINT64_FORMAT " (at least)",
                      device_specs[d].name, delivered->str,
                      device->duplicates + device->duplicates_now);
    g_test_message("%s", device_line);
    g_printerr("# %s\n", device_line);
  }
}

/* The first phase's share of the messages; the group's conversation (and its creation
 * line) must stay under HISTORY_MAX, so at most 2400 in all. */
#define ONE_TO_ONE_PERCENT 60

static guint
messages_wanted(void)
{
  const char *given = g_getenv("HARK_CHAOS_MESSAGES");
  guint64 n = given != NULL ? g_ascii_strtoull(given, NULL, 10) : 0;
  return n > 0 ? (guint)MIN(n, 2400) : 1000;
}

/* ---- the case ----------------------------------------------------------------------- */

/* Every pair of users writes under crashes, then alice makes a group and all write to it
 * under crashes; then everything comes back and settles, and both phases are checked. */
static void
test_chaos(ChaosLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  static const ChaosConversation one_to_one[] = {
    { .members = 1u << 0 | 1u << 1 },
    { .members = 1u << 0 | 1u << 2 },
    { .members = 1u << 1 | 1u << 2 },
  };
  ChaosPhase phases[] = {
    { .name = "one-to-one", .conversations = one_to_one, .n_conversations = 3 },
    { .name = "group", .conversations = &lab->group, .n_conversations = 1 },
  };
  guint wanted = messages_wanted();
  guint first = wanted * ONE_TO_ONE_PERCENT / 100;
  HARK_REQUIRE(chaos_phase(lab, &phases[0], first));
  HARK_REQUIRE(make_group(lab));
  HARK_REQUIRE(chaos_phase(lab, &phases[1], wanted - first));

  gint64 start = g_get_monotonic_time();
  gboolean settled = hark_test_wait_for(outboxes_empty, lab, SETTLE_MS);
  gint64 settle_ms = (g_get_monotonic_time() - start) / 1000;
  if (!settled) {
    for (guint d = 0; d < N_DEVICES; d++) {
      g_test_message("%s: %" G_GINT64_FORMAT " outbox entries left", device_specs[d].name,
                     outbox_size(&lab->device[d]));
      show_outbox(&lab->device[d]);
    }
    g_test_fail_printf("the outboxes did not empty within %u ms (seed %" G_GUINT64_FORMAT ")",
                       hark_test_timeout(SETTLE_MS), lab->seed);
  }
  ChaosCounts counts[G_N_ELEMENTS(phases)] = { { { 0 } } };
  guint problems = 0;
  for (guint p = 0; p < G_N_ELEMENTS(phases); p++) {
    for (guint i = 0; i < phases[p].n_conversations; i++)
      check_conversation(lab, &phases[p].conversations[i], &counts[p]);
    problems += counts[p].problems;
  }
  print_counts(lab, phases, counts, G_N_ELEMENTS(phases), settle_ms);
  if (problems > 0)
    g_test_fail_printf("%u problems in the histories (the first 50 of each phase shown; seed "
                       "%" G_GUINT64_FORMAT ")",
                       problems, lab->seed);
  g_assert_cmpuint(lab->sent->len, >=, wanted);
  for (guint p = 0; p < G_N_ELEMENTS(phases); p++) {
    g_assert_cmpuint(phases[p].kills_sn, >=, 1);
    g_assert_cmpuint(phases[p].kills_device, >=, 1);
  }
}

int
main(int argc, char **argv)
{
  /* The whole run, chaos and settling, in one case. */
  hark_test_init_isolated(&argc, &argv, 360000);
  hark_test_add_isolated("/im-chaos/one-to-one-and-group", ChaosLab, NULL, lab_set_up, test_chaos,
                         lab_tear_down);
  return g_test_run();
}
