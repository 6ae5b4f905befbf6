/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-conference.c: conferences end to end with real processes. Each case makes its own
 * lab in a process of its own (test-isolate.h): a login server, one super node, alice
 * (who hosts), bob, carol, dave and, for the attacks, erin (a stranger with a test clock,
 * so that she has the `signal` command and can forge what no conference would send).
 * Each node's source is its own tone (alice 440 Hz, bob 660, carol 880, dave 1100, erin
 * 1320) and each writes what it hears to <dir>/<name>.wav.
 *
 * What a user would notice: in a four-party conference everyone hears the three others
 * and not themselves (the tones' levels measured by spectrum in the last two seconds of
 * each WAV, the host's own speaker included), with dave's leg on G.711 (PCMU: his node
 * has no Opus) and the others on Opus; the roster and the host reach every member as
 * events; a call going on becomes a leg without ringing again; in a conference of an Opus
 * member (bob) and a G.711 one (dave) alone, the two hear each other; bob muted with Opus
 * DTX is left out of the host's sum and still hears everyone. A stranger's join is
 * refused with a reason, and so is a kicked member's; a
 * roster forged by a stranger changes nothing and is counted; a node with
 * conference.host = false hosts none. */
#include "harness.h"
#include "lab.h"
#include "test-files.h"
#include "test-isolate.h"
#include "test-wav.h"

#include <string.h>

#define OVERLAY_PORT 33047
#define CALL_MS 15000
#define JOIN_MS 15000
#define HEARD_S 2.0
#define HEARD_LEVEL 3000 /* a tone of 0.3 of full scale is about 9800; one cut up by gaps, 5000 */
#define OWN_LEVEL 1000 /* what is left of one's own tone: codec noise (measured under 300) */

typedef enum {
  LAB_FOUR = 1 << 0, /* carol and dave too (dave: G.711 only) */
  LAB_ERIN = 1 << 1, /* erin, the stranger */
  LAB_QUIET = 1 << 2, /* carol too, and only she sends a tone: the others send silence */
  LAB_ASK = 1 << 3, /* alice asks her user about members' invites (conference.invite) */
  LAB_MANY = 1 << 4, /* MANY_MEMBERS more members (member01...), and alice's calls.max 40 */
  LAB_HOST_INVITES = 1 << 5, /* alice follows no member's invite (conference.invite) */
  LAB_CAROL = 1 << 6, /* carol too */
  LAB_CLOCKS = 1 << 7, /* every node has the test clock (the `signal` command: attackers) */
  LAB_DAVE = 1 << 8, /* dave alone besides alice and bob (G.711 only) */
  LAB_DTX = 1 << 9, /* carol too, and bob's Opus with DTX */
} LabFlags;

/* The many-member case's size: 10 (a host and 10 legs in CI: 8 called at once, 2 paced),
 * HARK_TEST_CONFERENCE_MEMBERS
 * (1-31) for a run by hand (32 participants: 31). Over 8, the host calls the rest at
 * conference.dials_per_minute (90 here, its SN taking 600 lookups a minute: the calls'
 * signals and the rosters stay within the 20 messages a second the SN forwards). */
#define MANY_MEMBERS 10
#define MANY_MAX 31

typedef struct {
  LabNode *node;
  const char *user;
  guint hz;
  LabEvents log; /* what its ctl client saw, and how far the test has read it */
} Party;

enum { ALICE, BOB, CAROL, DAVE, ERIN, N_PARTIES };

typedef struct {
  LabLoginServer *login;
  char *sn_host;
  char *dir;
  LabNode *sn;
  Party party[N_PARTIES];
  Party many[MANY_MAX]; /* LAB_MANY: their users are member01... */
  guint n_many;
  gboolean up;
} ConfLab;

static const char *const users[N_PARTIES] = { "alice", "bob", "carol", "dave", "erin" };
static const guint tones[N_PARTIES] = { 440, 660, 880, 1100, 1320 };

/* ---- the lab ------------------------------------------------------------------------ */

static gboolean
party_start(ConfLab *lab, guint i, LabFlags flags)
{
  Party *p = &lab->party[i];
  p->user = users[i];
  p->hz = tones[i];
  /* dave's node has G.711 alone: his leg is PCMU, the others' Opus. */
  gboolean g711 = i == DAVE;
  /* erin has opted out of hosting (conference.host = false). */
  g_autofree char *source = (flags & LAB_QUIET) && i != CAROL ? g_strdup("silence")
                                                                : g_strdup_printf("tone:%u", p->hz);
  g_autofree char *media = g_strdup_printf(
    "media: { codecs = [ %s ]; source = \"%s\";\n  sink = \"wav:%s/%s.wav\"; };\n%s",
    g711 ? "\"g711\"" : "\"opus\", \"g711\"", source, lab->dir, p->user,
    i == ERIN                           ? "conference: { host = false; };\n"
    : i == ALICE && (flags & LAB_ASK)  ? "conference: { invite = \"ask\"; };\n"
    : i == ALICE && (flags & LAB_HOST_INVITES) ? "conference: { invite = \"host\"; };\n"
    : i == ALICE && (flags & LAB_MANY)
      ? "calls: { max = 40; };\nconference: { dials_per_minute = 90; };\n"
                                       : "");
  /* bob with DTX (LAB_DTX): silent, he sends a comfort-noise frame every 400 ms;
   * complexity 10, or Opus would take his steady tone for noise too. */
  const char *plugins = g711 ? ", { name = \"g711\"; }"
                        : i == BOB && (flags & LAB_DTX)
                          ? ", { name = \"opus\"; settings = { dtx = true; complexity = 10; }; },"
                            " { name = \"g711\"; }"
                          : ", { name = \"opus\"; }, { name = \"g711\"; }";
  g_autofree char *config =
    lab_client_config_with_node(p->user,
                                i == ERIN || (flags & LAB_CLOCKS) ? "test_clock = true;" : NULL,
                                plugins,
                                lab->sn_host, OVERLAY_PORT, lab->login, media);
  p->node = lab_client_start(p->user, config, p->user, TRUE, hark_test_timeout(JOIN_MS));
  lab_events_init(&p->log);
  return p->node != NULL;
}

/* The k-th of the many members: member01 sends 660 Hz, the others silence (so that the
 * mix stays below clipping), each with its own WAV. */
static gboolean
many_start(ConfLab *lab, guint k)
{
  Party *p = &lab->many[k];
  p->user = g_strdup_printf("member%02u", k + 1);
  p->hz = k == 0 ? tones[BOB] : 0;
  g_autofree char *source = k == 0 ? g_strdup_printf("tone:%u", p->hz) : g_strdup("silence");
  g_autofree char *media = g_strdup_printf(
    "media: { codecs = [ \"opus\" ]; source = \"%s\";\n  sink = \"wav:%s/%s.wav\"; };\n",
    source, lab->dir, p->user);
  g_autofree char *config = lab_client_config_with_node(
    p->user, NULL, ", { name = \"opus\"; }", lab->sn_host, OVERLAY_PORT, lab->login, media);
  p->node = lab_client_start(p->user, config, p->user, TRUE, hark_test_timeout(JOIN_MS));
  lab_events_init(&p->log);
  return p->node != NULL;
}

static void
lab_set_up(ConfLab *lab, gconstpointer data)
{
  LabFlags flags = GPOINTER_TO_UINT(data);
  lab->sn_host = g_strdup_printf("127.%u.%u.52", (guint)g_random_int_range(1, 255),
                                 (guint)g_random_int_range(0, 255));
  lab->dir = g_dir_make_tmp("hark-conference-XXXXXX", NULL);
  /* Every node of the lab looks users up at the login server from 127.0.0.1, as users
   * behind one NAT do: their look-ups are signed, so each counts against its own
   * account, not against the one address's 60 a minute (docs/protocol.md, "Limits"). */
  lab->login = lab_login_server_new();
  if (lab->login == NULL || lab->dir == NULL)
    return;
  g_autofree char *config = g_strdup_printf(
    "node: { name = \"conf-sn\"; supernode = true; };\n"
    "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
    "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
    "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
    "  allow_loopback = true; bootstrap = ( ); };\n"
    "supernode: { min_uptime = 0; max_load = 10000; links = 0; };\n%s"
    "login: { url = \"%s\"; ca = \"%s\"; };\n",
    lab->sn_host, OVERLAY_PORT, lab->sn_host,
    /* Each of the host's calls is a lookup of the callee's devices at the SN, which takes
     * 10 at once from one client and then 30 a minute by default. */
    (flags & LAB_MANY) ? "directory: { lookups_per_minute = 600; };\n" : "", lab->login->url,
    lab->login->ca_path);
  lab->sn = lab_node_new("conf-sn", config);
  if (!lab_node_start(lab->sn) || !lab_register_and_login(lab->sn, "conf-sn-user"))
    return;
  g_autoptr(JsonObject) super = lab_wait_command(lab->sn, "overlay", lab_overlay_is_super, NULL,
                                                 hark_test_timeout(JOIN_MS), "serving");
  if (super == NULL || !party_start(lab, ALICE, flags) ||
      (!(flags & LAB_MANY) && !party_start(lab, BOB, flags)))
    return;
  if ((flags & (LAB_FOUR | LAB_QUIET | LAB_CAROL | LAB_DTX)) && !party_start(lab, CAROL, flags))
    return;
  if ((flags & (LAB_FOUR | LAB_DAVE)) && !party_start(lab, DAVE, flags))
    return;
  if ((flags & LAB_ERIN) && !party_start(lab, ERIN, flags))
    return;
  if (flags & LAB_MANY) {
    const char *asked = g_getenv("HARK_TEST_CONFERENCE_MEMBERS");
    lab->n_many = asked != NULL ? CLAMP((guint)g_ascii_strtoull(asked, NULL, 10), 1, MANY_MAX)
                                : MANY_MEMBERS;
    for (guint k = 0; k < lab->n_many; k++)
      if (!many_start(lab, k))
        return;
  }
  lab->up = TRUE;
}

static void
lab_tear_down(ConfLab *lab, gconstpointer data)
{
  for (guint k = 0; k < lab->n_many; k++) {
    LabNode **node = &lab->many[k].node;
    lab_nodes_kill_free(&node, 1);
    lab_events_clear(&lab->many[k].log);
    g_free((char *)lab->many[k].user);
  }
  LabNode **nodes[N_PARTIES + 1];
  for (guint i = 0; i < N_PARTIES; i++)
    nodes[i] = &lab->party[N_PARTIES - 1 - i].node;
  nodes[N_PARTIES] = &lab->sn;
  lab_nodes_kill_free(nodes, G_N_ELEMENTS(nodes));
  for (guint i = 0; i < N_PARTIES; i++)
    lab_events_clear(&lab->party[i].log);
  g_clear_pointer(&lab->login, lab_login_server_free);
  if (lab->dir != NULL)
    hark_test_remove_tree(lab->dir);
  g_free(lab->dir);
  g_free(lab->sn_host);
}

#define LAB_UP(lab) HARK_REQUIRE((lab)->up)

/* ---- asking, events ------------------------------------------------------------------ */

static const char *
str(JsonObject *o, const char *name)
{
  return o != NULL ? json_object_get_string_member_with_default(o, name, NULL) : NULL;
}

/* The first conference of a `roster` answer (the one hosted or joined), or NULL. */
static JsonObject *
first_conference(JsonObject *roster)
{
  JsonArray *list = roster != NULL ? json_object_get_array_member(roster, "conferences") : NULL;
  return list != NULL && json_array_get_length(list) > 0 ? json_array_get_object_element(list, 0)
                                                         : NULL;
}

/* The lab's asking and waiting (lab.h), on p's own event log. */
static JsonObject *
ask(Party *p, const char *command, JsonObject *args, char **error_text)
{
  return lab_events_ask(p->node, &p->log, command, args, error_text);
}

static JsonObject *
wait_event(Party *p, LabEventMatch match, gconstpointer data, const char *what, guint timeout_ms)
{
  return lab_events_wait(p->node, &p->log, match, data, what, timeout_ms);
}

static gboolean
is_ringing(JsonObject *e, gconstpointer data)
{
  return g_strcmp0(str(e, "event"), "call") == 0 && g_strcmp0(str(e, "state"), "ringing") == 0 &&
         g_strcmp0(str(e, "direction"), "in") == 0;
}

/* A `conference-roster` event in which every user of the NULL-terminated data is
 * connected (or hosts). */
static gboolean
roster_all_connected(JsonObject *e, gconstpointer data)
{
  if (g_strcmp0(str(e, "event"), "conference-roster") != 0)
    return FALSE;
  const char *const *want = data;
  JsonArray *roster = json_object_get_array_member(e, "roster");
  guint found = 0;
  for (guint i = 0; roster != NULL && i < json_array_get_length(roster); i++) {
    JsonObject *m = json_array_get_object_element(roster, i);
    if (g_strv_contains(want, str(m, "user")) &&
        (g_strcmp0(str(m, "state"), "connected") == 0 || g_strcmp0(str(m, "state"), "host") == 0))
      found++;
  }
  return found == g_strv_length((char **)want);
}

/* A `conference-roster` event in which the user data is `left`. */
static gboolean
roster_member_left(JsonObject *e, gconstpointer user)
{
  if (g_strcmp0(str(e, "event"), "conference-roster") != 0)
    return FALSE;
  JsonArray *roster = json_object_get_array_member(e, "roster");
  for (guint i = 0; roster != NULL && i < json_array_get_length(roster); i++) {
    JsonObject *m = json_array_get_object_element(roster, i);
    if (g_strcmp0(str(m, "user"), user) == 0)
      return g_strcmp0(str(m, "state"), "left") == 0;
  }
  return FALSE;
}

static gboolean
is_host_event(JsonObject *e, gconstpointer host)
{
  return g_strcmp0(str(e, "event"), "conference-host") == 0 && g_strcmp0(str(e, "host"), host) == 0;
}

static gboolean
roster_in_state(JsonObject *e, gconstpointer state)
{
  return g_strcmp0(str(e, "event"), "conference-roster") == 0 &&
         g_strcmp0(str(e, "state"), state) == 0;
}

static gboolean
is_refused(JsonObject *e, gconstpointer data)
{
  return g_strcmp0(str(e, "event"), "conference-refused") == 0;
}

/* p answers the call that rings there. */
static gboolean
answer_ringing(Party *p)
{
  g_autoptr(JsonObject) ringing = wait_event(p, is_ringing, NULL, "ringing", CALL_MS);
  if (ringing == NULL)
    return FALSE;
  g_autoptr(JsonObject) answered =
    ask(p, "answer", lab_args("id", str(ringing, "call_id"), NULL), NULL);
  return answered != NULL;
}

/* alice hosts a conference of her and the members (indexes, n of them), each of whom
 * answers; once every node's roster shows everyone connected. The conference's id in
 * *id. */
static gboolean
conference_up(ConfLab *lab, const guint *members, guint n, char **id)
{
  GString *list = g_string_new(NULL);
  const char *want[N_PARTIES + 1] = { "alice" };
  for (guint i = 0; i < n; i++) {
    g_string_append_printf(list, "%s%s", i > 0 ? " " : "", users[members[i]]);
    want[i + 1] = users[members[i]];
  }
  g_autoptr(JsonObject) made =
    ask(&lab->party[ALICE], "conference", lab_args("users", list->str, NULL), NULL);
  g_string_free(list, TRUE);
  if (made == NULL)
    return FALSE;
  JsonArray *conferences = json_object_get_array_member(made, "conferences");
  *id = g_strdup(str(json_array_get_object_element(conferences, 0), "id"));
  for (guint i = 0; i < n; i++)
    if (!answer_ringing(&lab->party[members[i]]))
      return FALSE;
  g_autoptr(JsonObject) hosting =
    wait_event(&lab->party[ALICE], roster_all_connected, want, "everyone connected", CALL_MS);
  if (hosting == NULL)
    return FALSE;
  for (guint i = 0; i < n; i++) {
    Party *p = &lab->party[members[i]];
    g_autoptr(JsonObject) host = wait_event(p, is_host_event, "alice", "alice hosts", CALL_MS);
    g_autoptr(JsonObject) all =
      host != NULL ? wait_event(p, roster_all_connected, want, "everyone connected", CALL_MS)
                   : NULL;
    if (all == NULL)
      return FALSE;
    g_assert_cmpstr(str(all, "conference_id"), ==, *id);
  }
  return TRUE;
}

/* ---- audio ---------------------------------------------------------------------------- */

/* The samples p's WAV holds now, or FALSE (test failed). */
static gboolean
read_heard(ConfLab *lab, Party *p, gint16 **samples, gsize *n, guint *rate)
{
  g_autofree char *path = g_strdup_printf("%s/%s.wav", lab->dir, p->user);
  g_autoptr(GError) error = NULL;
  if (!hark_test_wav_read(path, samples, n, rate, &error)) {
    g_test_fail_printf("%s: %s", path, error->message);
    return FALSE;
  }
  return TRUE;
}

/* Waits (bounded) until p's WAV holds at least seconds more than it did at from (samples). */
static gboolean
wait_heard_more(ConfLab *lab, Party *p, gsize from, double seconds)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  while (g_get_monotonic_time() < until) {
    g_autofree gint16 *samples = NULL;
    gsize n = 0;
    guint rate = 0;
    if (!read_heard(lab, p, &samples, &n, &rate))
      return FALSE;
    if (n >= from + (gsize)(seconds * rate))
      return TRUE;
    g_usleep(100 * 1000);
  }
  g_test_fail_printf("%s heard less than %.1f s more", p->user, seconds);
  return FALSE;
}

/* How many samples p's WAV holds now. A session that just started may not have written
 * its WAV's header yet (a leg that began after a handover): waited for, bounded. */
static gsize
heard_now(ConfLab *lab, Party *p)
{
  g_autofree char *path = g_strdup_printf("%s/%s.wav", lab->dir, p->user);
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  while (g_get_monotonic_time() < until) {
    g_autofree gint16 *samples = NULL;
    gsize n = 0;
    guint rate = 0;
    if (hark_test_wav_read(path, &samples, &n, &rate, NULL))
      return n;
    g_usleep(50 * 1000);
  }
  g_autofree gint16 *samples = NULL;
  gsize n = 0;
  guint rate = 0;
  return read_heard(lab, p, &samples, &n, &rate) ? n : 0;
}

/* In the last HEARD_S seconds of p's WAV, every tone of others is there (above
 * HEARD_LEVEL) and p's own is not (under OWN_LEVEL). */
static void
assert_hears_others(ConfLab *lab, Party *p, const guint *others, guint n_others)
{
  g_autofree gint16 *samples = NULL;
  gsize n = 0;
  guint rate = 0;
  HARK_REQUIRE(read_heard(lab, p, &samples, &n, &rate));
  gsize want = (gsize)(HEARD_S * rate);
  HARK_REQUIRE(n >= want);
  const gint16 *part = samples + n - want;
  double own = hark_test_wav_tone_level(part, want, rate, p->hz);
  GString *shown = g_string_new(NULL);
  for (guint i = 0; i < n_others; i++)
    g_string_append_printf(shown, " %u Hz %.0f", tones[others[i]],
                           hark_test_wav_tone_level(part, want, rate, tones[others[i]]));
  g_test_message("%s heard:%s; its own %u Hz %.0f; RMS %.0f, longest gap %.0f ms", p->user,
                 shown->str, p->hz, own, hark_test_wav_rms(part, want),
                 hark_test_wav_longest_gap_ms(part, want, rate, 300));
  g_string_free(shown, TRUE);
  for (guint i = 0; i < n_others; i++)
    g_assert_cmpfloat(hark_test_wav_tone_level(part, want, rate, tones[others[i]]), >,
                      HEARD_LEVEL);
  g_assert_cmpfloat(own, <, OWN_LEVEL);
}

/* The tone hz is not in the last HEARD_S seconds of p's WAV. */
static void
assert_not_heard(ConfLab *lab, Party *p, guint hz)
{
  g_autofree gint16 *samples = NULL;
  gsize n = 0;
  guint rate = 0;
  HARK_REQUIRE(read_heard(lab, p, &samples, &n, &rate));
  gsize want = (gsize)(HEARD_S * rate);
  HARK_REQUIRE(n >= want);
  double level = hark_test_wav_tone_level(samples + n - want, want, rate, hz);
  g_test_message("%s: %u Hz at %.0f", p->user, hz, level);
  g_assert_cmpfloat(level, <, OWN_LEVEL);
}

/* alice, bob, carol and dave each hear the three others and not themselves in what they
 * hear from now on: the mix of a conference everyone is in. Half a second more than is
 * checked, for the jitter buffers to settle. */
static void
four_hear_each_other(ConfLab *lab)
{
  gsize from[N_PARTIES] = { 0 };
  for (guint i = ALICE; i <= DAVE; i++)
    from[i] = heard_now(lab, &lab->party[i]);
  for (guint i = ALICE; i <= DAVE; i++)
    HARK_REQUIRE(wait_heard_more(lab, &lab->party[i], from[i], HEARD_S + 0.5));
  for (guint i = ALICE; i <= DAVE; i++) {
    guint others[3], k = 0;
    for (guint j = ALICE; j <= DAVE; j++)
      if (j != i)
        others[k++] = j;
    assert_hears_others(lab, &lab->party[i], others, 3);
  }
}

/* ---- the cases ------------------------------------------------------------------------ */

/* The roster body a forger sends: conference id, version, the call it names, host as
 * host and member connected. */
static char *
forged_roster(const char *id, gint64 version, const char *call_id, const char *host,
              const char *member)
{
  GString *body = g_string_new("{'type': <'roster'>, 'id': <[byte ");
  for (guint i = 0; i < 16; i++)
    g_string_append_printf(body, "%s0x%.2s", i > 0 ? ", " : "", id + 2 * i);
  g_string_append_printf(body, "]>, 'version': <uint32 %" G_GINT64_FORMAT ">, 'call': <[byte ",
                         version);
  for (guint i = 0; i < 16; i++)
    g_string_append_printf(body, "%s0x%.2s", i > 0 ? ", " : "", call_id + 2 * i);
  g_string_append_printf(body, "]>, 'roster': <[('%s', 'host'), ('%s', 'connected')]>}", host,
                         member);
  return g_string_free(body, FALSE);
}


/* alice hosts bob, carol and dave: each of the four hears the three others and not
 * themselves; dave's leg is G.711 (PCMU), the others Opus, and they hear each other.
 * carol leaves: the others see it and bob no longer hears her; she asks back in and is
 * called again. alice ends it for everyone. */
static void
test_four_tones(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, CAROL, DAVE };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, G_N_ELEMENTS(members), &id));
  four_hear_each_other(lab);
  /* The host's legs: dave's on PCMU, the others on Opus; the mixer at 16 kHz. */
  g_autoptr(JsonObject) roster = ask(&lab->party[ALICE], "roster", NULL, NULL);
  HARK_REQUIRE(roster != NULL);
  JsonObject *c = first_conference(roster);
  g_assert_cmpint(json_object_get_int_member(c, "rate"), ==, 16000);
  g_autofree char *shown = hark_test_json(c);
  g_test_message("alice's roster: %s", shown);
  JsonArray *legs = json_object_get_array_member(c, "legs");
  g_assert_cmpint(json_array_get_length(legs), ==, 3);
  for (guint i = 0; i < 3; i++) {
    JsonObject *leg = json_array_get_object_element(legs, i);
    const char *want = g_strcmp0(str(leg, "user"), "dave") == 0 ? "pcmu" : "opus";
    g_assert_cmpstr(str(leg, "codec"), ==, want);
  }
  /* carol leaves: the others' rosters show her left, and bob stops hearing her tone
   * while alice's and dave's go on. */
  g_autoptr(JsonObject) left = ask(&lab->party[CAROL], "leave", NULL, NULL);
  HARK_REQUIRE(left != NULL);
  g_autoptr(JsonObject) gone = wait_event(&lab->party[CAROL], roster_in_state, "left", "left", CALL_MS);
  HARK_REQUIRE(gone != NULL);
  const char *without_carol[] = { "alice", "bob", "dave", NULL };
  g_autoptr(JsonObject) seen =
    wait_event(&lab->party[BOB], roster_member_left, "carol", "carol left", CALL_MS);
  HARK_REQUIRE(seen != NULL);
  g_assert_true(roster_all_connected(seen, without_carol));
  gsize bob_from = heard_now(lab, &lab->party[BOB]);
  HARK_REQUIRE(wait_heard_more(lab, &lab->party[BOB], bob_from, HEARD_S + 0.5));
  const guint bob_hears[] = { ALICE, DAVE };
  assert_hears_others(lab, &lab->party[BOB], bob_hears, 2);
  assert_not_heard(lab, &lab->party[BOB], tones[CAROL]);

  /* She asks back in: alice calls her again, and she is connected once she answers. */
  g_autoptr(JsonObject) back =
    ask(&lab->party[CAROL], "join", lab_args("host", "alice", "id", id, NULL), NULL);
  HARK_REQUIRE(back != NULL);
  HARK_REQUIRE(answer_ringing(&lab->party[CAROL]));
  const char *everyone[] = { "alice", "bob", "carol", "dave", NULL };
  g_autoptr(JsonObject) again =
    wait_event(&lab->party[CAROL], roster_all_connected, everyone, "back in", CALL_MS);
  HARK_REQUIRE(again != NULL);

  /* The host ends it: everyone hears so, and the legs end. */
  g_autoptr(JsonObject) ended = ask(&lab->party[ALICE], "end", NULL, NULL);
  HARK_REQUIRE(ended != NULL);
  for (guint i = BOB; i <= DAVE; i++) {
    g_autoptr(JsonObject) e = wait_event(&lab->party[i], roster_in_state, "ended", "ended", CALL_MS);
    HARK_REQUIRE(e != NULL);
  }
}

/* erin is not in alice's conference: her join is refused with a reason, and a roster she
 * forges for bob (naming bob's real leg) changes nothing at bob's and is counted, as is
 * a body that is not a conference signal. Then
 * alice kicks bob: he hears he was removed, and his join is refused as erin's was. */
static void
test_stranger_refused(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, 1, &id));
  Party *erin = &lab->party[ERIN], *bob = &lab->party[BOB], *alice = &lab->party[ALICE];

  g_autoptr(JsonObject) asked = ask(erin, "join", lab_args("host", "alice", "id", id, NULL), NULL);
  HARK_REQUIRE(asked != NULL);
  g_autoptr(JsonObject) no = wait_event(erin, is_refused, NULL, "conference-refused", CALL_MS);
  HARK_REQUIRE(no != NULL);
  g_assert_cmpstr(str(no, "reason"), ==, "not in the roster");
  g_autoptr(JsonObject) at_alice = ask(alice, "roster", NULL, NULL);
  HARK_REQUIRE(at_alice != NULL);
  g_assert_cmpint(
    json_object_get_int_member(json_object_get_object_member(at_alice, "counters"), "refused_joins"),
    ==, 1);

  /* erin forges alice's roster for bob, with erin in it and a version far ahead. */
  g_autoptr(JsonObject) bobs = ask(bob, "roster", NULL, NULL);
  HARK_REQUIRE(bobs != NULL);
  JsonObject *mine = first_conference(bobs);
  const char *call_id = str(mine, "call_id");
  g_autofree char *body = forged_roster(id, 1000, call_id, "erin", "bob");
  g_autoptr(JsonObject) sent =
    ask(erin, "signal", lab_args("to", "bob", "kind", "conference", "body", body, NULL), NULL);
  HARK_REQUIRE(sent != NULL);
  /* And a body that is no conference signal at all: refused whole, counted. */
  g_autoptr(JsonObject) junk = ask(erin, "signal",
                                   lab_args("to", "bob", "kind", "conference", "body",
                                            "{'type': <'roster'>, 'id': <'not bytes'>}", NULL),
                                   NULL);
  HARK_REQUIRE(junk != NULL);
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  gint64 refused = 0, malformed = 0;
  while ((refused < 1 || malformed < 1) && g_get_monotonic_time() < until) {
    g_autoptr(JsonObject) now = ask(bob, "roster", NULL, NULL);
    HARK_REQUIRE(now != NULL);
    JsonObject *counters = json_object_get_object_member(now, "counters");
    refused = json_object_get_int_member(counters, "refused_sender");
    malformed = json_object_get_int_member(counters, "refused_malformed");
    JsonObject *c = first_conference(now);
    g_assert_cmpstr(str(c, "host"), ==, "alice");
    g_assert_cmpint(json_object_get_int_member(c, "version"), <, 1000);
    g_usleep(50 * 1000);
  }
  g_assert_cmpint(refused, ==, 1);
  g_assert_cmpint(malformed, ==, 1);

  /* Kicked, bob is out: his leg ends, and a join of his is refused too. */
  g_autoptr(JsonObject) kicked = ask(alice, "kick", lab_args("user", "bob", NULL), NULL);
  HARK_REQUIRE(kicked != NULL);
  g_autoptr(JsonObject) out = wait_event(bob, roster_in_state, "ended", "removed", CALL_MS);
  HARK_REQUIRE(out != NULL);
  g_assert_cmpstr(str(out, "reason"), ==, "removed by the host");
  g_autoptr(JsonObject) again = ask(bob, "join", lab_args("host", "alice", "id", id, NULL), NULL);
  HARK_REQUIRE(again != NULL);
  g_autoptr(JsonObject) no2 = wait_event(bob, is_refused, NULL, "conference-refused", CALL_MS);
  HARK_REQUIRE(no2 != NULL);
  g_assert_cmpstr(str(no2, "reason"), ==, "not in the roster");

  /* erin opted out of hosting: her `conference` says so and calls nobody. */
  g_autofree char *why = NULL;
  g_autoptr(JsonObject) hosted = ask(erin, "conference", lab_args("users", "bob", NULL), &why);
  g_assert_null(hosted);
  g_assert_cmpstr(why, ==, "this node does not host conferences (conference.host = false)");
}

static gboolean
is_call_state(JsonObject *e, gconstpointer state)
{
  return g_strcmp0(str(e, "event"), "call") == 0 && g_strcmp0(str(e, "state"), state) == 0;
}

/* alice is in a call with bob when she makes it a conference with carol: bob's call
 * becomes his leg without ringing again, carol is called; then bob hears alice and carol,
 * carol hears alice and bob, alice hears both, nobody themselves. */
static void
test_from_a_call(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  Party *alice = &lab->party[ALICE], *bob = &lab->party[BOB], *carol = &lab->party[CAROL];
  g_autoptr(JsonObject) dialled = ask(alice, "call", lab_args("user", "bob", NULL), NULL);
  HARK_REQUIRE(dialled != NULL);
  HARK_REQUIRE(answer_ringing(bob));
  g_autoptr(JsonObject) up = wait_event(alice, is_call_state, "active", "the call active", CALL_MS);
  HARK_REQUIRE(up != NULL);
  g_autoptr(JsonObject) made = ask(alice, "conference", lab_args("users", "bob carol", NULL), NULL);
  HARK_REQUIRE(made != NULL);
  HARK_REQUIRE(answer_ringing(carol));
  const char *everyone[] = { "alice", "bob", "carol", NULL };
  for (guint i = ALICE; i <= CAROL; i++) {
    g_autoptr(JsonObject) all =
      wait_event(&lab->party[i], roster_all_connected, everyone, "everyone connected", CALL_MS);
    HARK_REQUIRE(all != NULL);
  }
  /* bob's node never rang again: one ringing call in its events, the first. */
  guint rang = 0;
  for (guint i = 0; i < bob->log.events->len; i++)
    rang += is_ringing(bob->log.events->pdata[i], NULL);
  g_assert_cmpuint(rang, ==, 1);
  gsize from[N_PARTIES] = { 0 };
  for (guint i = ALICE; i <= CAROL; i++)
    from[i] = heard_now(lab, &lab->party[i]);
  for (guint i = ALICE; i <= CAROL; i++)
    HARK_REQUIRE(wait_heard_more(lab, &lab->party[i], from[i], HEARD_S + 0.5));
  const guint alice_hears[] = { BOB, CAROL }, bob_hears[] = { ALICE, CAROL },
              carol_hears[] = { ALICE, BOB };
  assert_hears_others(lab, alice, alice_hears, 2);
  assert_hears_others(lab, bob, bob_hears, 2);
  assert_hears_others(lab, carol, carol_hears, 2);
}

/* How many calls rang at p (incoming) in what its ctl client saw so far. */
static guint
times_rung(Party *p)
{
  guint rang = 0;
  for (guint i = 0; i < p->log.events->len; i++)
    rang += is_ringing(p->log.events->pdata[i], NULL);
  return rang;
}

/* alice is in a call with bob, holds it, and answers carol's call; `merge` makes both
 * calls legs of a conference she hosts: nobody rings again, and each hears the others.
 * bob, a member, invites dave: alice calls him in (conference.invite = "members", the
 * default), and then all four hear each other. */
static void
test_merge_invite(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  Party *alice = &lab->party[ALICE], *bob = &lab->party[BOB], *carol = &lab->party[CAROL],
        *dave = &lab->party[DAVE];
  g_autoptr(JsonObject) dialled = ask(alice, "call", lab_args("user", "bob", NULL), NULL);
  HARK_REQUIRE(dialled != NULL);
  HARK_REQUIRE(answer_ringing(bob));
  g_autoptr(JsonObject) up = wait_event(alice, is_call_state, "active", "bob's call", CALL_MS);
  HARK_REQUIRE(up != NULL);
  g_autoptr(JsonObject) held = ask(alice, "hold", NULL, NULL);
  HARK_REQUIRE(held != NULL);
  g_autoptr(JsonObject) to_alice = ask(carol, "call", lab_args("user", "alice", NULL), NULL);
  HARK_REQUIRE(to_alice != NULL);
  HARK_REQUIRE(answer_ringing(alice));
  g_autoptr(JsonObject) up2 = wait_event(alice, is_call_state, "active", "carol's call", CALL_MS);
  HARK_REQUIRE(up2 != NULL);

  g_autofree char *no_such = NULL;
  g_autoptr(JsonObject) wrong =
    ask(alice, "merge", lab_args("ids", "0000ffff0000ffff", NULL), &no_such);
  g_assert_null(wrong);
  g_assert_cmpstr(no_such, ==,
                  "0000ffff0000ffff names no call on hold or going on (`calls` lists them)");
  g_autoptr(JsonObject) merged = ask(alice, "merge", NULL, NULL);
  HARK_REQUIRE(merged != NULL);
  const char *three[] = { "alice", "bob", "carol", NULL };
  for (guint i = ALICE; i <= CAROL; i++) {
    g_autoptr(JsonObject) all =
      wait_event(&lab->party[i], roster_all_connected, three, "everyone connected", CALL_MS);
    HARK_REQUIRE(all != NULL);
  }
  /* The calls became legs as they were: bob rang once (alice's call), carol never. */
  g_assert_cmpuint(times_rung(bob), ==, 1);
  g_assert_cmpuint(times_rung(carol), ==, 0);
  g_assert_cmpuint(times_rung(alice), ==, 1);
  /* Nothing is left to merge now: the calls are legs. */
  g_autofree char *why = NULL;
  g_autoptr(JsonObject) again = ask(alice, "merge", NULL, &why);
  g_assert_null(again);
  g_assert_cmpstr(why, ==, "no call on hold or going on to merge");

  g_autoptr(JsonObject) invited = ask(bob, "invite", lab_args("user", "dave", NULL), NULL);
  HARK_REQUIRE(invited != NULL);
  HARK_REQUIRE(answer_ringing(dave));
  const char *four[] = { "alice", "bob", "carol", "dave", NULL };
  for (guint i = ALICE; i <= DAVE; i++) {
    g_autoptr(JsonObject) all =
      wait_event(&lab->party[i], roster_all_connected, four, "everyone connected", CALL_MS);
    HARK_REQUIRE(all != NULL);
  }
  four_hear_each_other(lab);
}

/* A `conference-roster` event in which data ("user:by") is muted by by. */
static gboolean
roster_muted(JsonObject *e, gconstpointer data)
{
  if (g_strcmp0(str(e, "event"), "conference-roster") != 0)
    return FALSE;
  g_auto(GStrv) want = g_strsplit(data, ":", 2);
  JsonArray *roster = json_object_get_array_member(e, "roster");
  for (guint i = 0; roster != NULL && i < json_array_get_length(roster); i++) {
    JsonObject *m = json_array_get_object_element(roster, i);
    if (g_strcmp0(str(m, "user"), want[0]) == 0)
      return g_strcmp0(str(m, "muted"), want[1]) == 0;
  }
  return FALSE;
}

/* alice's `roster` leg of user. */
static JsonObject *
leg_of(JsonObject *roster, const char *user)
{
  JsonObject *c = first_conference(roster);
  JsonArray *legs = json_object_get_array_member(c, "legs");
  for (guint i = 0; legs != NULL && i < json_array_get_length(legs); i++)
    if (g_strcmp0(str(json_array_get_object_element(legs, i), "user"), user) == 0)
      return json_array_get_object_element(legs, i);
  return NULL;
}

/* Waits until each of the parties (indexes, n) has heard HEARD_S + 0.5 s more. */
static gboolean
all_hear_more(ConfLab *lab, const guint *who, guint n)
{
  gsize from[N_PARTIES] = { 0 };
  for (guint i = 0; i < n; i++)
    from[who[i]] = heard_now(lab, &lab->party[who[i]]);
  for (guint i = 0; i < n; i++)
    if (!wait_heard_more(lab, &lab->party[who[i]], from[who[i]], HEARD_S + 0.5))
      return FALSE;
  return TRUE;
}

/* alice hosts bob, carol and dave. bob's `mute carol` is refused (he does not host).
 * alice's `mute carol`: carol's roster says the host muted her, and alice, bob and dave
 * no longer hear her tone but still hear each other; alice's roster shows carol's leg
 * muted with no level, bob's with his tone's. dave mutes himself: alice's roster says
 * so, and bob hears alice alone. alice unmutes carol: bob hears her again. alice mutes
 * herself: bob's roster shows it and he hears carol alone. */
static void
test_mute(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  Party *alice = &lab->party[ALICE], *bob = &lab->party[BOB], *carol = &lab->party[CAROL],
        *dave = &lab->party[DAVE];
  const guint members[] = { BOB, CAROL, DAVE };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, G_N_ELEMENTS(members), &id));

  g_autofree char *why = NULL;
  g_autoptr(JsonObject) not_host = ask(bob, "mute", lab_args("user", "carol", NULL), &why);
  g_assert_null(not_host);
  g_assert_cmpstr(why, ==, "only the conference's host (alice) mutes others");

  g_autoptr(JsonObject) muted = ask(alice, "mute", lab_args("id", "carol", NULL), NULL);
  HARK_REQUIRE(muted != NULL);
  g_autoptr(JsonObject) told = wait_event(carol, roster_muted, "carol:host", "muted", CALL_MS);
  HARK_REQUIRE(told != NULL);
  const guint listeners[] = { ALICE, BOB, DAVE };
  HARK_REQUIRE(all_hear_more(lab, listeners, 3));
  const guint alice_hears[] = { BOB, DAVE }, bob_hears[] = { ALICE, DAVE },
              dave_hears[] = { ALICE, BOB };
  assert_hears_others(lab, alice, alice_hears, 2);
  assert_hears_others(lab, bob, bob_hears, 2);
  assert_hears_others(lab, dave, dave_hears, 2);
  for (guint i = 0; i < 3; i++)
    assert_not_heard(lab, &lab->party[listeners[i]], tones[CAROL]);
  g_autoptr(JsonObject) stats = ask(alice, "roster", NULL, NULL);
  HARK_REQUIRE(stats != NULL);
  g_autofree char *shown = hark_test_json(stats);
  g_test_message("alice's roster: %s", shown);
  JsonObject *carol_leg = leg_of(stats, "carol"), *bob_leg = leg_of(stats, "bob");
  HARK_REQUIRE(carol_leg != NULL && bob_leg != NULL);
  g_assert_cmpstr(str(carol_leg, "muted_by"), ==, "host");
  g_assert_cmpint(json_object_get_int_member(carol_leg, "level"), <, 100);
  g_assert_cmpint(json_object_get_int_member(bob_leg, "level"), >, 1000);
  g_assert_true(json_object_has_member(bob_leg, "lost"));
  g_assert_true(json_object_has_member(bob_leg, "jitter_ms"));

  /* dave mutes himself: his leg sends silence and alice shows him muted by himself. */
  g_autoptr(JsonObject) self = ask(dave, "mute", NULL, NULL);
  HARK_REQUIRE(self != NULL);
  g_autoptr(JsonObject) shown_self =
    wait_event(alice, roster_muted, "dave:self", "dave muted", CALL_MS);
  HARK_REQUIRE(shown_self != NULL);
  const guint bob_only[] = { BOB };
  HARK_REQUIRE(all_hear_more(lab, bob_only, 1));
  const guint alice_only[] = { ALICE };
  assert_hears_others(lab, bob, alice_only, 1);
  assert_not_heard(lab, bob, tones[DAVE]);
  assert_not_heard(lab, bob, tones[CAROL]);

  /* alice lets carol speak again. */
  g_autoptr(JsonObject) unmuted = ask(alice, "unmute", lab_args("user", "carol", NULL), NULL);
  HARK_REQUIRE(unmuted != NULL);
  HARK_REQUIRE(all_hear_more(lab, bob_only, 1));
  const guint alice_carol[] = { ALICE, CAROL };
  assert_hears_others(lab, bob, alice_carol, 2);

  /* The host mutes herself: her microphone leaves the mix, and the members see so. */
  g_autoptr(JsonObject) host_self = ask(alice, "mute", NULL, NULL);
  HARK_REQUIRE(host_self != NULL);
  g_autoptr(JsonObject) host_shown =
    wait_event(bob, roster_muted, "alice:self", "alice muted", CALL_MS);
  HARK_REQUIRE(host_shown != NULL);
  HARK_REQUIRE(all_hear_more(lab, bob_only, 1));
  const guint carol_only[] = { CAROL };
  assert_hears_others(lab, bob, carol_only, 1);
  assert_not_heard(lab, bob, tones[ALICE]);
}

static gboolean
is_speaker(JsonObject *e, gconstpointer user)
{
  return g_strcmp0(str(e, "event"), "active-speaker") == 0 && g_strcmp0(str(e, "user"), user) == 0;
}

static gboolean
is_any_speaker(JsonObject *e, gconstpointer user)
{
  return g_strcmp0(str(e, "event"), "active-speaker") == 0;
}

/* Only carol sends a tone (the others silence): alice (the host), bob and carol are each
 * told carol is the active speaker, once, and never anyone else. alice follows no
 * member's invite (conference.invite = "host"): bob's is refused with the reason and
 * counted. */
static void
test_active_speaker(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, CAROL };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, G_N_ELEMENTS(members), &id));
  for (guint i = ALICE; i <= CAROL; i++) {
    Party *p = &lab->party[i];
    g_autoptr(JsonObject) e = wait_event(p, is_speaker, "carol", "carol speaks", CALL_MS);
    HARK_REQUIRE(e != NULL);
    g_assert_cmpstr(str(e, "host"), ==, "alice");
    g_assert_cmpstr(str(e, "conference_id"), ==, id);
  }
  /* Two more seconds of carol alone: nobody hears of another speaker. */
  const guint bob_only[] = { BOB };
  HARK_REQUIRE(all_hear_more(lab, bob_only, 1));
  for (guint i = ALICE; i <= CAROL; i++) {
    Party *p = &lab->party[i];
    g_autoptr(JsonObject) any = ask(p, "roster", NULL, NULL); /* reads the events meanwhile */
    HARK_REQUIRE(any != NULL);
    guint speakers = 0;
    for (guint k = 0; k < p->log.events->len; k++)
      if (is_any_speaker(p->log.events->pdata[k], NULL)) {
        g_assert_true(is_speaker(p->log.events->pdata[k], "carol"));
        speakers++;
      }
    g_assert_cmpuint(speakers, ==, 1);
  }

  Party *bob = &lab->party[BOB];
  g_autoptr(JsonObject) invited = ask(bob, "invite", lab_args("user", "dave", NULL), NULL);
  HARK_REQUIRE(invited != NULL);
  g_autoptr(JsonObject) no = wait_event(bob, is_refused, NULL, "conference-refused", CALL_MS);
  HARK_REQUIRE(no != NULL);
  g_assert_cmpstr(str(no, "reason"), ==, "the host alone invites (conference.invite)");
  g_autoptr(JsonObject) at_alice = ask(&lab->party[ALICE], "roster", NULL, NULL);
  HARK_REQUIRE(at_alice != NULL);
  g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(at_alice, "counters"),
                                             "refused_invites"),
                  ==, 1);
}

static gboolean
is_invite(JsonObject *e, gconstpointer data)
{
  return g_strcmp0(str(e, "event"), "conference-invite") == 0;
}

/* alice asks her user about invites (conference.invite = "ask"): bob's invite of erin
 * reaches her as `conference-invite` and nobody is called. The attacks a stranger can
 * make on the controls: erin, in no conference, signs an invite of herself to alice's
 * conference, a mute for it, and a speaker announcement to bob (a member). alice
 * refuses and counts the invite and the mute (erin is never called, nobody is muted),
 * bob refuses and counts the speaker and emits no `active-speaker` naming erin. erin's
 * own `invite` and `mute bob` are refused by her node. */
static void
test_forged_controls(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, 1, &id));
  Party *erin = &lab->party[ERIN], *bob = &lab->party[BOB], *alice = &lab->party[ALICE];
  g_autoptr(JsonObject) invited = ask(bob, "invite", lab_args("user", "erin", NULL), NULL);
  HARK_REQUIRE(invited != NULL);
  g_autoptr(JsonObject) asked_host = wait_event(alice, is_invite, NULL, "bob's invite", CALL_MS);
  HARK_REQUIRE(asked_host != NULL);
  g_assert_cmpstr(str(asked_host, "from"), ==, "bob");
  g_assert_cmpstr(str(asked_host, "user"), ==, "erin");
  g_assert_cmpstr(str(asked_host, "conference_id"), ==, id);

  GString *bytes = g_string_new("[byte ");
  for (guint i = 0; i < 16; i++)
    g_string_append_printf(bytes, "%s0x%.2s", i > 0 ? ", " : "", id + 2 * i);
  g_string_append(bytes, "]");
  g_autofree char *invite =
    g_strdup_printf("{'type': <'invite'>, 'id': <%s>, 'user': <'erin'>}", bytes->str);
  g_autofree char *mute =
    g_strdup_printf("{'type': <'mute'>, 'id': <%s>, 'mute': <true>}", bytes->str);
  g_autofree char *speaker = g_strdup_printf(
    "{'type': <'speaker'>, 'id': <%s>, 'version': <uint32 1000>, 'user': <'erin'>}", bytes->str);
  g_string_free(bytes, TRUE);
  const char *bodies[][2] = { { "alice", invite }, { "alice", mute }, { "bob", speaker } };
  for (guint i = 0; i < G_N_ELEMENTS(bodies); i++) {
    g_autoptr(JsonObject) sent = ask(
      erin, "signal",
      lab_args("to", bodies[i][0], "kind", "conference", "body", bodies[i][1], NULL), NULL);
    HARK_REQUIRE(sent != NULL);
  }
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  gint64 invites = 0, mutes = 0, speakers = 0;
  while ((invites < 1 || mutes < 1 || speakers < 1) && g_get_monotonic_time() < until) {
    g_autoptr(JsonObject) at_alice = ask(alice, "roster", NULL, NULL);
    g_autoptr(JsonObject) at_bob = ask(bob, "roster", NULL, NULL);
    HARK_REQUIRE(at_alice != NULL && at_bob != NULL);
    JsonObject *k = json_object_get_object_member(at_alice, "counters");
    invites = json_object_get_int_member(k, "refused_invites");
    mutes = json_object_get_int_member(k, "refused_mutes");
    speakers = json_object_get_int_member(json_object_get_object_member(at_bob, "counters"),
                                          "refused_sender");
    g_usleep(50 * 1000);
  }
  g_assert_cmpint(invites, ==, 1);
  g_assert_cmpint(mutes, ==, 1);
  g_assert_cmpint(speakers, ==, 1);
  /* The host went on as before: erin is not in the roster, nobody is muted. */
  g_autoptr(JsonObject) roster = ask(alice, "roster", NULL, NULL);
  HARK_REQUIRE(roster != NULL);
  JsonObject *c = first_conference(roster);
  JsonArray *members_now = json_object_get_array_member(c, "roster");
  g_assert_cmpuint(json_array_get_length(members_now), ==, 2);
  for (guint i = 0; i < 2; i++) {
    JsonObject *m = json_array_get_object_element(members_now, i);
    g_assert_cmpstr(str(m, "user"), !=, "erin");
    g_assert_false(json_object_has_member(m, "muted"));
  }
  for (guint i = 0; i < bob->log.events->len; i++)
    g_assert_false(is_speaker(bob->log.events->pdata[i], "erin"));
  g_assert_cmpuint(times_rung(erin), ==, 0);

  g_autofree char *why = NULL;
  g_autoptr(JsonObject) asked = ask(erin, "invite", lab_args("user", "bob", NULL), &why);
  g_assert_null(asked);
  g_assert_cmpstr(why, ==, "not in a conference");
  g_clear_pointer(&why, g_free);
  g_autoptr(JsonObject) muted = ask(erin, "mute", lab_args("user", "bob", NULL), &why);
  g_assert_null(muted);
  g_assert_cmpstr(why, ==, "this node hosts no conference: only a host mutes others");
}

/* The level of the tone hz in the last HEARD_S seconds of p's WAV (logged), or -1. */
static double
heard_level(ConfLab *lab, Party *p, guint hz)
{
  g_autofree gint16 *samples = NULL;
  gsize n = 0;
  guint rate = 0;
  if (!read_heard(lab, p, &samples, &n, &rate) || n < (gsize)(HEARD_S * rate))
    return -1;
  gsize want = (gsize)(HEARD_S * rate);
  const gint16 *part = samples + n - want;
  double level = hark_test_wav_tone_level(part, want, rate, hz);
  g_test_message("%s: %u Hz at %.0f; RMS %.0f, longest gap %.0f ms", p->user, hz, level,
                 hark_test_wav_rms(part, want),
                 hark_test_wav_longest_gap_ms(part, want, rate, 300));
  return level;
}

/* alice hosts the many members at once (member01 sends 660 Hz, the others silence):
 * every leg connects (calls.max 40; over 8 members the calls are paced) and every member
 * sees everyone connected (the rosters stay within the SN's message rate), every member
 * hears alice's tone through its own leg, and alice's mixer has every leg and hears
 * member01 (its leg's level). The levels of member01's tone at the others are logged:
 * on a loaded machine a host of many legs runs late (its mixer's late_ticks) and cuts
 * backlogs, which four-tones measures on a smaller room. */
static void
test_many(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  Party *alice = &lab->party[ALICE];
  GString *list = g_string_new(NULL);
  const char *want[MANY_MAX + 2] = { "alice" };
  for (guint k = 0; k < lab->n_many; k++) {
    g_string_append_printf(list, "%s%s", k > 0 ? " " : "", lab->many[k].user);
    want[k + 1] = lab->many[k].user;
  }
  gint64 started = g_get_monotonic_time();
  g_autoptr(JsonObject) made = ask(alice, "conference", lab_args("users", list->str, NULL), NULL);
  g_string_free(list, TRUE);
  HARK_REQUIRE(made != NULL);
  for (guint k = 0; k < lab->n_many; k++)
    HARK_REQUIRE(answer_ringing(&lab->many[k]));
  g_autoptr(JsonObject) all = wait_event(alice, roster_all_connected, want, "everyone", CALL_MS);
  HARK_REQUIRE(all != NULL);
  g_test_message("%u members connected %.1f s after `conference`", lab->n_many,
                 (double)(g_get_monotonic_time() - started) / G_USEC_PER_SEC);
  for (guint k = 0; k < lab->n_many; k++) {
    g_autoptr(JsonObject) seen =
      wait_event(&lab->many[k], roster_all_connected, want, "everyone", CALL_MS);
    HARK_REQUIRE(seen != NULL);
  }
  gsize from[MANY_MAX] = { 0 };
  for (guint k = 0; k < lab->n_many; k++)
    from[k] = heard_now(lab, &lab->many[k]);
  gsize alice_from = heard_now(lab, alice);
  for (guint k = 0; k < lab->n_many; k++)
    HARK_REQUIRE(wait_heard_more(lab, &lab->many[k], from[k], HEARD_S + 0.5));
  HARK_REQUIRE(wait_heard_more(lab, alice, alice_from, HEARD_S + 0.5));
  /* Every level first (logged), then the verdict. */
  heard_level(lab, alice, tones[BOB]);
  double lowest = G_MAXDOUBLE;
  for (guint k = 0; k < lab->n_many; k++) {
    lowest = MIN(lowest, heard_level(lab, &lab->many[k], tones[ALICE]));
    if (k > 0)
      heard_level(lab, &lab->many[k], tones[BOB]);
  }
  g_autoptr(JsonObject) roster = ask(alice, "roster", NULL, NULL);
  HARK_REQUIRE(roster != NULL);
  g_autofree char *shown = hark_test_json(roster);
  g_test_message("alice's roster: %s", shown);
  g_assert_cmpfloat(lowest, >, HEARD_LEVEL);
  JsonObject *c = first_conference(roster);
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(c, "legs")), ==,
                   lab->n_many);
  /* member01's level at the mixer is smoothed over 100 ms: a moment of underrun on a
   * loaded machine lowers it, so it is looked at until it shows the tone (bounded). */
  gint64 level = 0, until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  while (level <= 1000 && g_get_monotonic_time() < until) {
    g_autoptr(JsonObject) now = ask(alice, "roster", NULL, NULL);
    JsonObject *first = now != NULL ? leg_of(now, "member01") : NULL;
    HARK_REQUIRE(first != NULL);
    level = json_object_get_int_member(first, "level");
    if (level <= 1000)
      g_usleep(100 * 1000);
  }
  g_assert_cmpint(level, >, 1000);
  g_test_message("mixer ticks %" G_GINT64_FORMAT ", late %" G_GINT64_FORMAT,
                 json_object_get_int_member(c, "ticks"),
                 json_object_get_int_member(c, "late_ticks"));
}

/* ---- the host goes -------------------------------------------------------------------- */

/* The first conference in p's `roster` (a new reference), or NULL. */
static JsonObject *
conference_at(Party *p)
{
  g_autoptr(JsonObject) roster = ask(p, "roster", NULL, NULL);
  JsonArray *list = roster != NULL ? json_object_get_array_member(roster, "conferences") : NULL;
  if (list == NULL || json_array_get_length(list) == 0)
    return NULL;
  return json_object_ref(json_array_get_object_element(list, 0));
}

static gint64
counter_at(Party *p, const char *name)
{
  g_autoptr(JsonObject) roster = ask(p, "roster", NULL, NULL);
  return roster != NULL
           ? json_object_get_int_member(json_object_get_object_member(roster, "counters"), name)
           : -1;
}

static guint
party_of(const char *user)
{
  for (guint i = 0; i < N_PARTIES; i++)
    if (g_strcmp0(users[i], user) == 0)
      return i;
  g_assert_not_reached();
}

/* Whether conference c's succession names exactly the users of want (n, in that order). */
static gboolean
succession_is(JsonObject *c, const char *const *want, guint n)
{
  JsonArray *a = c != NULL ? json_object_get_array_member(c, "succession") : NULL;
  if (a == NULL || json_array_get_length(a) != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (g_strcmp0(str(json_array_get_object_element(a, i), "user"), want[i]) != 0)
      return FALSE;
  return TRUE;
}

/* Waits (bounded) until the host has every member's facts and each member holds the
 * host's last roster (its version and succession): the succession, as parties, in
 * order[n]. */
static gboolean
succession_settled(ConfLab *lab, guint host, const guint *members, guint n, guint *order)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  while (g_get_monotonic_time() < until) {
    g_autoptr(JsonObject) h = conference_at(&lab->party[host]);
    if (h == NULL) {
      g_test_fail_printf("%s hosts no conference", users[host]);
      return FALSE;
    }
    JsonArray *a = json_object_get_array_member(h, "succession");
    const char *want[N_PARTIES] = { NULL };
    for (guint i = 0; a != NULL && i < json_array_get_length(a) && i < N_PARTIES; i++)
      want[i] = str(json_array_get_object_element(a, i), "user");
    gboolean settled = json_object_get_int_member(h, "facts_from") == n && succession_is(h, want, n);
    for (guint i = 0; settled && i < n; i++) {
      g_autoptr(JsonObject) c = conference_at(&lab->party[members[i]]);
      settled = c != NULL &&
                json_object_get_int_member(c, "version") == json_object_get_int_member(h, "version") &&
                succession_is(c, want, n);
    }
    if (settled) {
      for (guint i = 0; i < n; i++)
        order[i] = party_of(want[i]);
      g_test_message("succession: %s %s %s", want[0], n > 1 ? want[1] : "", n > 2 ? want[2] : "");
      return TRUE;
    }
    g_usleep(100 * 1000);
  }
  g_test_fail_printf("the succession did not settle");
  return FALSE;
}

/* conference_up, then succession_settled: the succession in order[n]. */
static gboolean
conference_settled(ConfLab *lab, const guint *members, guint n, char **id, guint *order)
{
  return conference_up(lab, members, n, id) && succession_settled(lab, ALICE, members, n, order);
}

/* After a handover: each of parties (n) sees next host and everyone of them connected,
 * then hears the others and neither itself nor gone (the old host's tone). */
static void
assert_taken_over(ConfLab *lab, const guint *parties, guint n, Party *next, guint gone)
{
  const char *want[N_PARTIES + 1] = { NULL };
  for (guint i = 0; i < n; i++)
    want[i] = users[parties[i]];
  for (guint i = 0; i < n; i++) {
    Party *p = &lab->party[parties[i]];
    g_autoptr(JsonObject) host =
      wait_event(p, is_host_event, next->user, "the successor hosts", hark_test_timeout(10000));
    HARK_REQUIRE(host != NULL);
    g_autoptr(JsonObject) all =
      wait_event(p, roster_all_connected, want, "everyone connected again", CALL_MS);
    HARK_REQUIRE(all != NULL);
    g_assert_cmpstr(str(all, "host"), ==, next->user);
  }
  gsize from[N_PARTIES] = { 0 };
  for (guint i = 0; i < n; i++)
    from[i] = heard_now(lab, &lab->party[parties[i]]);
  for (guint i = 0; i < n; i++)
    HARK_REQUIRE(wait_heard_more(lab, &lab->party[parties[i]], from[i], HEARD_S + 0.5));
  for (guint i = 0; i < n; i++) {
    guint others[N_PARTIES], k = 0;
    for (guint j = 0; j < n; j++)
      if (j != i)
        others[k++] = parties[j];
    assert_hears_others(lab, &lab->party[parties[i]], others, k);
    assert_not_heard(lab, &lab->party[parties[i]], tones[gone]);
    g_autoptr(JsonObject) c = conference_at(&lab->party[parties[i]]);
    HARK_REQUIRE(c != NULL);
    g_assert_cmpstr(str(c, "host"), ==, next->user);
    g_test_message("%s: last handover %" G_GINT64_FORMAT " ms", users[parties[i]],
                   json_object_get_int_member_with_default(c, "last_handover_ms", -1));
  }
}

/* alice hosts bob, carol and dave, each sending a tone; alice's node is killed (SIGKILL):
 * the successor her last roster named hosts the same conference, calls the two others,
 * who take its call without anyone answering, and each of the three hears the other
 * two, neither itself nor alice. */
static void
test_host_killed(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, CAROL, DAVE };
  g_autofree char *id = NULL;
  guint order[3];
  HARK_REQUIRE(conference_settled(lab, members, G_N_ELEMENTS(members), &id, order));
  lab_node_kill(lab->party[ALICE].node);
  Party *next = &lab->party[order[0]];
  assert_taken_over(lab, members, 3, next, ALICE);
  g_autoptr(JsonObject) c = conference_at(next);
  HARK_REQUIRE(c != NULL);
  g_assert_cmpstr(str(c, "id"), ==, id); /* the same conference */
  g_assert_cmpstr(str(c, "taken_over_from"), ==, "alice");
  for (guint i = 1; i < 3; i++)
    g_assert_cmpint(counter_at(&lab->party[order[i]], "handovers"), ==, 1);
}

/* alice hosts bob and carol and leaves (`leave`, not `end`): the successor hosts, the
 * other hears it and nobody rings; alice is in no conference. */
static void
test_host_leaves(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, CAROL };
  g_autofree char *id = NULL;
  guint order[2];
  HARK_REQUIRE(conference_settled(lab, members, G_N_ELEMENTS(members), &id, order));
  Party *alice = &lab->party[ALICE];
  g_autoptr(JsonObject) left = ask(alice, "leave", NULL, NULL);
  HARK_REQUIRE(left != NULL);
  g_autoptr(JsonObject) gone = wait_event(alice, roster_in_state, "left", "alice left", CALL_MS);
  HARK_REQUIRE(gone != NULL);
  assert_taken_over(lab, members, 2, &lab->party[order[0]], ALICE);
  g_autoptr(JsonObject) at_alice = conference_at(alice);
  g_assert_null(at_alice);
}

/* alice hosts bob, carol and dave. The second in the succession (a member, not the
 * successor) claims to host: it calls the last one and sends it a roster, a version
 * ahead, naming itself host and that call; erin (a stranger) claims the same on the
 * victim's leg. The victim keeps alice as host, counts both claims, and the member's
 * call rings there unanswered (no takeover leg is taken from anyone but the successor). */
static void
test_false_successor(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, CAROL, DAVE };
  g_autofree char *id = NULL;
  guint order[3];
  HARK_REQUIRE(conference_settled(lab, members, G_N_ELEMENTS(members), &id, order));
  Party *attacker = &lab->party[order[1]], *victim = &lab->party[order[2]];
  Party *erin = &lab->party[ERIN];
  g_autoptr(JsonObject) before = conference_at(victim);
  HARK_REQUIRE(before != NULL);
  gint64 version = json_object_get_int_member(before, "version");
  g_autofree char *leg = g_strdup(str(before, "call_id"));

  g_autoptr(JsonObject) dialled = ask(attacker, "call", lab_args("user", victim->user, NULL), NULL);
  HARK_REQUIRE(dialled != NULL);
  g_autoptr(JsonObject) ringing = wait_event(victim, is_ringing, NULL, "the claim rings", CALL_MS);
  HARK_REQUIRE(ringing != NULL);
  g_assert_cmpstr(str(ringing, "peer"), ==, attacker->user);
  g_autofree char *claim_call = g_strdup(str(ringing, "call_id"));
  g_autofree char *body = forged_roster(id, version + 5, claim_call, attacker->user, victim->user);
  g_autoptr(JsonObject) sent = ask(attacker, "signal",
                                   lab_args("to", victim->user, "kind", "conference", "body", body, NULL),
                                   NULL);
  HARK_REQUIRE(sent != NULL);
  g_autofree char *stranger = forged_roster(id, version + 6, leg, "erin", victim->user);
  g_autoptr(JsonObject) sent2 = ask(
    erin, "signal", lab_args("to", victim->user, "kind", "conference", "body", stranger, NULL), NULL);
  HARK_REQUIRE(sent2 != NULL);

  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  gint64 claims = 0;
  while (claims < 2 && g_get_monotonic_time() < until) {
    claims = counter_at(victim, "refused_takeover");
    g_autoptr(JsonObject) c = conference_at(victim);
    HARK_REQUIRE(c != NULL);
    g_assert_cmpstr(str(c, "host"), ==, "alice");
    g_usleep(50 * 1000);
  }
  g_assert_cmpint(claims, ==, 2);
  g_autoptr(JsonObject) after = conference_at(victim);
  HARK_REQUIRE(after != NULL);
  g_assert_cmpstr(str(after, "host"), ==, "alice");
  g_assert_cmpstr(str(after, "call_id"), ==, leg);
  g_assert_cmpint(json_object_get_int_member(after, "version"), <, version + 5);
  g_assert_cmpint(counter_at(victim, "handovers"), ==, 0);
  /* The claimant's call was not taken: it still rings at the victim's. */
  g_autoptr(JsonObject) calls = ask(victim, "calls", NULL, NULL);
  HARK_REQUIRE(calls != NULL);
  JsonArray *list = json_object_get_array_member(calls, "calls");
  const char *state = NULL;
  for (guint i = 0; i < json_array_get_length(list); i++) {
    JsonObject *call = json_array_get_object_element(list, i);
    if (g_strcmp0(str(call, "id"), claim_call) == 0)
      state = str(call, "state");
  }
  g_assert_cmpstr(state, ==, "ringing");
}

/* The legs of alice's conference by user: each leg's codec, from her `roster`. */
static void
assert_leg_codecs(ConfLab *lab, const char *const *want_users, const char *const *want_codecs)
{
  g_autoptr(JsonObject) roster = ask(&lab->party[ALICE], "roster", NULL, NULL);
  HARK_REQUIRE(roster != NULL);
  JsonObject *c = first_conference(roster);
  JsonArray *legs = json_object_get_array_member(c, "legs");
  g_assert_cmpuint(json_array_get_length(legs), ==, g_strv_length((char **)want_users));
  for (guint i = 0; i < json_array_get_length(legs); i++) {
    JsonObject *leg = json_array_get_object_element(legs, i);
    guint k = 0;
    while (want_users[k] != NULL && g_strcmp0(want_users[k], str(leg, "user")) != 0)
      k++;
    HARK_REQUIRE(want_users[k] != NULL);
    g_assert_cmpstr(str(leg, "codec"), ==, want_codecs[k]);
  }
}

/* alice hosts bob, whose leg is Opus (16 kHz like the mixer), and dave, whose node has
 * G.711 alone (PCMU, 8 kHz: resampled both ways at the host): bob hears dave's tone and
 * dave bob's, each with alice's and without their own. */
static void
test_mixed_codecs(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, DAVE };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, G_N_ELEMENTS(members), &id));
  const char *const legs[] = { "bob", "dave", NULL }, *const codecs[] = { "opus", "pcmu", NULL };
  assert_leg_codecs(lab, legs, codecs);
  gsize from[N_PARTIES] = { 0 };
  for (guint i = 0; i < G_N_ELEMENTS(members); i++)
    from[members[i]] = heard_now(lab, &lab->party[members[i]]);
  for (guint i = 0; i < G_N_ELEMENTS(members); i++)
    HARK_REQUIRE(wait_heard_more(lab, &lab->party[members[i]], from[members[i]], HEARD_S + 0.5));
  const guint bob_hears[] = { ALICE, DAVE }, dave_hears[] = { ALICE, BOB };
  assert_hears_others(lab, &lab->party[BOB], bob_hears, 2);
  assert_hears_others(lab, &lab->party[DAVE], dave_hears, 2);
}

/* alice's roster's "shared" object (the shared encoder of the whole mix), or NULL. */
static JsonObject *
shared_of(JsonObject *roster)
{
  JsonObject *c = first_conference(roster);
  return c != NULL ? json_object_get_object_member(c, "shared") : NULL;
}

static gint64
count(JsonObject *o, const char *name)
{
  return o != NULL ? json_object_get_int_member_with_default(o, name, -1) : -1;
}

/* A `roster` of alice's once `want` legs follow `encoders` shared encoders (bounded wait:
 * a leg whose Opus adapted to a loss for a while has other settings, so its own encoder). */
static JsonObject *
wait_followers(ConfLab *lab, gint64 want, gint64 encoders)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(CALL_MS) * 1000;
  while (g_get_monotonic_time() < until) {
    g_autoptr(JsonObject) roster = ask(&lab->party[ALICE], "roster", NULL, NULL);
    JsonObject *shared = roster != NULL ? shared_of(roster) : NULL;
    if (count(shared, "followers") == want && count(shared, "encoders") == encoders)
      return g_steal_pointer(&roster);
    g_usleep(100 * 1000);
  }
  g_test_fail_printf("alice's roster never showed %" G_GINT64_FORMAT " legs on %" G_GINT64_FORMAT
                     " shared encoders",
                     want, encoders);
  return NULL;
}

/* Only alice talks: bob, carol (Opus) and dave (G.711) are muted by the host, so all three
 * hear the same whole mix. bob's and carol's legs follow one shared Opus encoder and
 * dave's a G.711 one: two encoders for three legs, each frame sent about 1.5 times; each
 * of them still hears alice. carol unmuted is back on her own encoder with her mix-minus:
 * she hears alice and not herself, with no gap across the switch, and bob and dave hear
 * her. */
static void
test_shared_mix(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  Party *alice = &lab->party[ALICE], *bob = &lab->party[BOB], *carol = &lab->party[CAROL],
        *dave = &lab->party[DAVE];
  const guint members[] = { BOB, CAROL, DAVE };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, G_N_ELEMENTS(members), &id));
  const char *muted[] = { "bob", "carol", "dave" };
  for (guint i = 0; i < G_N_ELEMENTS(muted); i++) {
    g_autoptr(JsonObject) done = ask(alice, "mute", lab_args("user", muted[i], NULL), NULL);
    HARK_REQUIRE(done != NULL);
  }
  g_autoptr(JsonObject) before = wait_followers(lab, 3, 2);
  HARK_REQUIRE(before != NULL);
  g_assert_true(json_object_get_boolean_member(leg_of(before, "carol"), "shared"));
  const guint listeners[] = { BOB, CAROL, DAVE };
  HARK_REQUIRE(all_hear_more(lab, listeners, 3));
  g_autoptr(JsonObject) after = ask(alice, "roster", NULL, NULL);
  HARK_REQUIRE(after != NULL);
  gint64 frames =
    count(shared_of(after), "frames_encoded") - count(shared_of(before), "frames_encoded");
  gint64 packets =
    count(shared_of(after), "packets_sent") - count(shared_of(before), "packets_sent");
  g_test_message("shared: %" G_GINT64_FORMAT " frames encoded, %" G_GINT64_FORMAT " sent", frames,
                 packets);
  g_assert_cmpint(frames, >, 100); /* 2.5 s are 125 ticks, for each of the two encoders */
  g_assert_cmpint(packets * 10, >=, frames * 14);
  const guint alice_only[] = { ALICE };
  for (guint i = 0; i < G_N_ELEMENTS(listeners); i++)
    assert_hears_others(lab, &lab->party[listeners[i]], alice_only, 1);

  gsize carol_from = heard_now(lab, carol);
  g_autoptr(JsonObject) unmuted = ask(alice, "unmute", lab_args("user", "carol", NULL), NULL);
  HARK_REQUIRE(unmuted != NULL);
  HARK_REQUIRE(wait_heard_more(lab, carol, carol_from, HEARD_S + 1.0));
  HARK_REQUIRE(all_hear_more(lab, listeners, 3));
  g_autoptr(JsonObject) back = ask(alice, "roster", NULL, NULL);
  HARK_REQUIRE(back != NULL);
  g_assert_false(json_object_get_boolean_member(leg_of(back, "carol"), "shared"));
  g_assert_cmpint(count(shared_of(back), "followers"), ==, 2);
  const guint alice_carol[] = { ALICE, CAROL };
  assert_hears_others(lab, carol, alice_only, 1);
  assert_hears_others(lab, bob, alice_carol, 2);
  assert_hears_others(lab, dave, alice_carol, 2);
  /* carol's audio across her switch back: alice's tone without a hole. */
  g_autofree gint16 *samples = NULL;
  gsize n = 0;
  guint rate = 0;
  HARK_REQUIRE(read_heard(lab, carol, &samples, &n, &rate));
  gsize span = MIN(n - carol_from, (gsize)((HEARD_S + 1.0) * rate));
  gsize start = 0;
  double gap = hark_test_wav_longest_gap_at(samples + carol_from, span, rate, 300, &start);
  g_test_message("carol across the switch: longest gap %.0f ms", gap);
  if (gap >= 60) {
    /* Where it was, and what carol's jitter buffer saw: a stall, or the switch. */
    g_autoptr(JsonObject) stats = ask(carol, "stats", NULL, NULL);
    g_autofree char *shown = stats != NULL ? hark_test_json(stats) : g_strdup("none");
    g_test_fail_printf("carol across the switch: a gap of %.0f ms, %.0f ms into the %.0f ms "
                       "after the unmute; her stats: %s",
                       gap, start * 1000.0 / rate, span * 1000.0 / rate, shown);
  }
}

/* bob has no microphone (his source sends zeros) and is not muted; carol sends a tone.
 * His zeros change nothing anyone hears, so the host leaves them out of its sum and bob
 * hears the whole mix from the shared encoder, still hearing carol; carol's leg, heard,
 * keeps its own encoder with her mix-minus. (Before, zeros were mixed as sound: bob's
 * leg coded its own copy of the whole mix.) */
static void
test_shared_silent_source(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, CAROL };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, G_N_ELEMENTS(members), &id));
  g_autoptr(JsonObject) roster = wait_followers(lab, 1, 1);
  HARK_REQUIRE(roster != NULL);
  g_assert_true(json_object_get_boolean_member(leg_of(roster, "bob"), "shared"));
  g_assert_false(json_object_get_boolean_member(leg_of(roster, "carol"), "shared"));
  g_assert_false(json_object_has_member(leg_of(roster, "bob"), "muted_by"));
  const guint bob_only[] = { BOB }, carol_only[] = { CAROL };
  HARK_REQUIRE(all_hear_more(lab, bob_only, 1));
  assert_hears_others(lab, &lab->party[BOB], carol_only, 1);
}

/* The mixer's count of inputs that had nothing to mix (summed over its ticks). */
static gint64
silent_inputs(ConfLab *lab)
{
  g_autoptr(JsonObject) roster = ask(&lab->party[ALICE], "roster", NULL, NULL);
  JsonObject *c = first_conference(roster);
  return c != NULL ? json_object_get_int_member(c, "silent_inputs") : -1;
}

/* bob's Opus uses DTX: muted, he sends next to nothing, and the host leaves him out of
 * its sum instead of decoding silence (its `silent_inputs` grows by about a tick's worth
 * every 20 ms), while carol hears alice without him and bob, silent, still hears both
 * others whole. Unmuted, he is heard again. */
static void
test_dtx_silent(ConfLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const guint members[] = { BOB, CAROL };
  g_autofree char *id = NULL;
  HARK_REQUIRE(conference_up(lab, members, G_N_ELEMENTS(members), &id));
  Party *bob = &lab->party[BOB], *carol = &lab->party[CAROL];
  g_autoptr(JsonObject) muted = ask(bob, "mute", NULL, NULL);
  HARK_REQUIRE(muted != NULL);
  /* Half a second for what bob sent before to be played out. */
  HARK_REQUIRE(wait_heard_more(lab, carol, heard_now(lab, carol), 0.5));
  gint64 silent_from = silent_inputs(lab);
  gsize carol_from = heard_now(lab, carol), bob_from = heard_now(lab, bob);
  HARK_REQUIRE(wait_heard_more(lab, carol, carol_from, HEARD_S + 0.5));
  HARK_REQUIRE(wait_heard_more(lab, bob, bob_from, HEARD_S + 0.5));
  gint64 silent = silent_inputs(lab) - silent_from;
  g_test_message("bob muted under DTX: %" G_GINT64_FORMAT " silent inputs in %.1f s", silent,
                 HEARD_S + 0.5);
  /* 2.5 s are 125 ticks, of which bob's comfort-noise frames (one in 20) fill a few. */
  g_assert_cmpint(silent_from, >=, 0);
  g_assert_cmpint(silent, >, 90);
  const guint carol_hears[] = { ALICE }, bob_hears[] = { ALICE, CAROL };
  assert_hears_others(lab, carol, carol_hears, 1);
  assert_not_heard(lab, carol, tones[BOB]);
  assert_hears_others(lab, bob, bob_hears, 2);
  g_autoptr(JsonObject) unmuted = ask(bob, "unmute", NULL, NULL);
  HARK_REQUIRE(unmuted != NULL);
  HARK_REQUIRE(wait_heard_more(lab, carol, heard_now(lab, carol), 0.5));
  carol_from = heard_now(lab, carol);
  HARK_REQUIRE(wait_heard_more(lab, carol, carol_from, HEARD_S + 0.5));
  const guint carol_hears_all[] = { ALICE, BOB };
  assert_hears_others(lab, carol, carol_hears_all, 2);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 120000);
  hark_test_add_isolated("/conference/four-tones", ConfLab, GUINT_TO_POINTER(LAB_FOUR),
                         lab_set_up, test_four_tones, lab_tear_down);
  hark_test_add_isolated("/conference/from-a-call", ConfLab, GUINT_TO_POINTER(LAB_FOUR),
                         lab_set_up, test_from_a_call, lab_tear_down);
  hark_test_add_isolated("/conference/mixed-codecs", ConfLab, GUINT_TO_POINTER(LAB_DAVE),
                         lab_set_up, test_mixed_codecs, lab_tear_down);
  hark_test_add_isolated("/conference/dtx-silent", ConfLab, GUINT_TO_POINTER(LAB_DTX), lab_set_up,
                         test_dtx_silent, lab_tear_down);
  hark_test_add_isolated("/conference/attack/stranger-refused", ConfLab,
                         GUINT_TO_POINTER(LAB_ERIN), lab_set_up, test_stranger_refused,
                         lab_tear_down);
  hark_test_add_isolated("/conference/merge-invite", ConfLab, GUINT_TO_POINTER(LAB_FOUR),
                         lab_set_up, test_merge_invite, lab_tear_down);
  hark_test_add_isolated("/conference/shared-mix", ConfLab, GUINT_TO_POINTER(LAB_FOUR), lab_set_up,
                         test_shared_mix, lab_tear_down);
  hark_test_add_isolated("/conference/shared-silent-source", ConfLab, GUINT_TO_POINTER(LAB_QUIET),
                         lab_set_up, test_shared_silent_source, lab_tear_down);
  hark_test_add_isolated("/conference/mute", ConfLab, GUINT_TO_POINTER(LAB_FOUR), lab_set_up,
                         test_mute, lab_tear_down);
  hark_test_add_isolated("/conference/active-speaker", ConfLab,
                         GUINT_TO_POINTER(LAB_QUIET | LAB_HOST_INVITES),
                         lab_set_up, test_active_speaker, lab_tear_down);
  hark_test_add_isolated("/conference/attack/forged-controls", ConfLab,
                         GUINT_TO_POINTER(LAB_ERIN | LAB_ASK), lab_set_up, test_forged_controls,
                         lab_tear_down);
  hark_test_add_isolated("/conference/many", ConfLab, GUINT_TO_POINTER(LAB_MANY), lab_set_up,
                         test_many, lab_tear_down);
  hark_test_add_isolated("/conference/host-killed", ConfLab, GUINT_TO_POINTER(LAB_FOUR),
                         lab_set_up, test_host_killed, lab_tear_down);
  hark_test_add_isolated("/conference/host-leaves", ConfLab, GUINT_TO_POINTER(LAB_CAROL),
                         lab_set_up, test_host_leaves, lab_tear_down);
  hark_test_add_isolated("/conference/attack/false-successor", ConfLab,
                         GUINT_TO_POINTER(LAB_FOUR | LAB_ERIN | LAB_CLOCKS), lab_set_up,
                         test_false_successor, lab_tear_down);
  return g_test_run();
}
