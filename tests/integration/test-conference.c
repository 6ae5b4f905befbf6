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
  LAB_DAVE = 1 << 2, /* dave alone besides alice and bob (G.711 only) */
  LAB_DTX = 1 << 3, /* carol too, and bob's Opus with DTX */
} LabFlags;

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
  g_autofree char *media = g_strdup_printf(
    "media: { codecs = [ %s ]; source = \"tone:%u\";\n  sink = \"wav:%s/%s.wav\"; };\n%s",
    g711 ? "\"g711\"" : "\"opus\", \"g711\"", p->hz, lab->dir, p->user,
    i == ERIN ? "conference: { host = false; };\n" : "");
  /* bob with DTX (LAB_DTX): silent, he sends a comfort-noise frame every 400 ms;
   * complexity 10, or Opus would take his steady tone for noise too. */
  const char *plugins = g711 ? ", { name = \"g711\"; }"
                        : i == BOB && (flags & LAB_DTX)
                          ? ", { name = \"opus\"; settings = { dtx = true; complexity = 10; }; },"
                            " { name = \"g711\"; }"
                          : ", { name = \"opus\"; }, { name = \"g711\"; }";
  g_autofree char *config =
    lab_client_config_with_node(p->user, i == ERIN ? "test_clock = true;" : NULL, plugins,
                                lab->sn_host, OVERLAY_PORT, lab->login, media);
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
  lab->login = lab_login_server_new();
  if (lab->login == NULL || lab->dir == NULL)
    return;
  g_autofree char *config = g_strdup_printf(
    "node: { name = \"conf-sn\"; supernode = true; };\n"
    "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
    "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
    "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
    "  allow_loopback = true; bootstrap = ( ); };\n"
    "supernode: { min_uptime = 0; max_load = 10000; links = 0; };\n"
    "login: { url = \"%s\"; ca = \"%s\"; };\n",
    lab->sn_host, OVERLAY_PORT, lab->sn_host, lab->login->url, lab->login->ca_path);
  lab->sn = lab_node_new("conf-sn", config);
  if (!lab_node_start(lab->sn) || !lab_register_and_login(lab->sn, "conf-sn-user"))
    return;
  g_autoptr(JsonObject) super = lab_wait_command(lab->sn, "overlay", lab_overlay_is_super, NULL,
                                                 hark_test_timeout(JOIN_MS), "serving");
  if (super == NULL || !party_start(lab, ALICE, flags) || !party_start(lab, BOB, flags))
    return;
  if ((flags & (LAB_FOUR | LAB_DTX)) && !party_start(lab, CAROL, flags))
    return;
  if ((flags & (LAB_FOUR | LAB_DAVE)) && !party_start(lab, DAVE, flags))
    return;
  if ((flags & LAB_ERIN) && !party_start(lab, ERIN, flags))
    return;
  lab->up = TRUE;
}

static void
lab_tear_down(ConfLab *lab, gconstpointer data)
{
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

static gsize
heard_now(ConfLab *lab, Party *p)
{
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

/* ---- the cases ------------------------------------------------------------------------ */

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
  gsize from[N_PARTIES] = { 0 };
  for (guint i = ALICE; i <= DAVE; i++)
    from[i] = heard_now(lab, &lab->party[i]);
  /* What each heard from now on: the mix of a conference everyone is in. Half a second
   * more than is checked, for the jitter buffers to settle. */
  for (guint i = ALICE; i <= DAVE; i++)
    HARK_REQUIRE(wait_heard_more(lab, &lab->party[i], from[i], HEARD_S + 0.5));
  for (guint i = ALICE; i <= DAVE; i++) {
    guint others[3], k = 0;
    for (guint j = ALICE; j <= DAVE; j++)
      if (j != i)
        others[k++] = j;
    assert_hears_others(lab, &lab->party[i], others, 3);
  }
  /* The host's legs: dave's on PCMU, the others on Opus; the mixer at 16 kHz. */
  g_autoptr(JsonObject) roster = ask(&lab->party[ALICE], "roster", NULL, NULL);
  HARK_REQUIRE(roster != NULL);
  JsonObject *c =
    json_array_get_object_element(json_object_get_array_member(roster, "conferences"), 0);
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
  JsonObject *mine =
    json_array_get_object_element(json_object_get_array_member(bobs, "conferences"), 0);
  const char *call_id = str(mine, "call_id");
  GString *body = g_string_new("{'type': <'roster'>, 'id': <[byte ");
  for (guint i = 0; i < 16; i++)
    g_string_append_printf(body, "%s0x%.2s", i > 0 ? ", " : "", id + 2 * i);
  g_string_append(body, "]>, 'version': <uint32 1000>, 'call': <[byte ");
  for (guint i = 0; i < 16; i++)
    g_string_append_printf(body, "%s0x%.2s", i > 0 ? ", " : "", call_id + 2 * i);
  g_string_append(body, "]>, 'roster': <[('erin', 'host'), ('bob', 'connected')]>}");
  g_autoptr(JsonObject) sent =
    ask(erin, "signal", lab_args("to", "bob", "kind", "conference", "body", body->str, NULL), NULL);
  g_string_free(body, TRUE);
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
    JsonObject *c = json_array_get_object_element(json_object_get_array_member(now, "conferences"), 0);
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

/* The legs of alice's conference by user: each leg's codec, from her `roster`. */
static void
assert_leg_codecs(ConfLab *lab, const char *const *want_users, const char *const *want_codecs)
{
  g_autoptr(JsonObject) roster = ask(&lab->party[ALICE], "roster", NULL, NULL);
  HARK_REQUIRE(roster != NULL);
  JsonObject *c =
    json_array_get_object_element(json_object_get_array_member(roster, "conferences"), 0);
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

/* The mixer's count of inputs that had nothing to mix (summed over its ticks). */
static gint64
silent_inputs(ConfLab *lab)
{
  g_autoptr(JsonObject) roster = ask(&lab->party[ALICE], "roster", NULL, NULL);
  JsonObject *c = roster != NULL ? json_array_get_object_element(
                                     json_object_get_array_member(roster, "conferences"), 0)
                                 : NULL;
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
  return g_test_run();
}
