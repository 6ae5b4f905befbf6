/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-controls.c: what users do in a conference besides making it (conferences.h).
 * `merge` makes the calls on hold and the current one a conference this node hosts,
 * each call becoming its member's leg as it is (no ringing). `invite USER` at the host
 * calls USER in; at a member it asks the host (an INVITE signal), and the host follows
 * conference.invite: "members" (the default) calls USER in, "host" refuses, "ask" shows
 * its user a `conference-invite` event. `mute` silences oneself: a member's leg sends
 * silence and its MUTE signal tells the host, who shows it in the roster; the host's own
 * microphone leaves the mix. `mute USER` by the host takes USER's input out of the mix
 * (the roster says "host" muted them); nobody else can mute another. A signal from a
 * device that is no connected member of the conference is refused and counted. */
#include "conference-private.h"

#include "hark/presence.h"
#include "message-group.h"

#include <string.h>

/* A command's error: FALSE. */
#define CONTROLS_FAIL(error, code, ...) \
  (g_set_error((error), HARK_COMMAND_ERROR, (code), __VA_ARGS__), FALSE)

/* The one conference this node is a member of, or NULL (*count: how many). */
static ConferenceJoined *
joined_one(HarkConferences *conferences, guint *count)
{
  GHashTableIter iter;
  gpointer value, found = NULL;
  *count = 0;
  g_hash_table_iter_init(&iter, conferences->joined);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    found = value;
    (*count)++;
  }
  return *count == 1 ? found : NULL;
}

/* ---- merge ------------------------------------------------------------------------------ */

static gboolean
is_member_leg(HarkConferences *conferences, const char *call_id)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, conferences->joined);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    if (g_strcmp0(((ConferenceJoined *)value)->call_id, call_id) == 0)
      return TRUE;
  return FALSE;
}

/* The calls `merge` takes: ids NULL, every mergeable one; else each of ids (prefixes of
 * at least 4 hex digits) names exactly one. A member's leg of another host's conference
 * is never taken. */
static GPtrArray *
merge_pick(HarkConferences *conferences, const char *ids, GError **error)
{
  g_autoptr(GPtrArray) all = hark_calls_mergeable(conferences->calls);
  GPtrArray *picked = g_ptr_array_new_with_free_func(g_free);
  for (guint i = all->len; i-- > 0;)
    if (is_member_leg(conferences, all->pdata[i]))
      g_ptr_array_remove_index(all, i);
  if (ids == NULL) {
    for (guint i = 0; i < all->len; i++)
      g_ptr_array_add(picked, g_strdup(all->pdata[i]));
    return picked;
  }
  g_auto(GStrv) words = g_strsplit_set(ids, ", ", -1);
  for (char **w = words; *w != NULL; w++) {
    if (**w == '\0')
      continue;
    const char *found = NULL;
    guint matches = 0;
    for (guint i = 0; i < all->len; i++)
      if (strlen(*w) >= 4 && g_str_has_prefix(all->pdata[i], *w)) {
        found = all->pdata[i];
        matches++;
      }
    if (matches != 1) {
      g_autofree char *shown = hark_text_escape(*w, -1, 40);
      g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                  matches == 0 ? "%s names no call on hold or going on (`calls` lists them)"
                               : "%s names more than one call: give more of the id",
                  shown);
      g_ptr_array_unref(picked);
      return NULL;
    }
    if (!g_ptr_array_find_with_equal_func(picked, found, g_str_equal, NULL))
      g_ptr_array_add(picked, g_strdup(found));
  }
  return picked;
}

/* `merge [IDS]`: the calls' peers become members, each call its leg (the conference adds
 * a user by the plain call it has with them), then the calls held here are resumed: a
 * leg on hold would send the mix to nobody. */
static gboolean
conference_merge(HarkConferences *conferences, const char *ids, GError **error)
{
  g_autoptr(GPtrArray) picked = merge_pick(conferences, ids, error);
  if (picked == NULL)
    return FALSE;
  if (picked->len == 0)
    return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_FAILED, "no call on hold or going on to merge");
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < picked->len; i++) {
    const char *peer = NULL, *device = NULL, *state = NULL;
    if (!hark_calls_get_peer(conferences->calls, picked->pdata[i], &peer, &device, &state))
      continue;
    /* The conference takes a user's latest plain call: with two calls with one user,
     * which one became the leg would be a guess. */
    if (g_strcmp0(hark_calls_plain_with(conferences->calls, peer), picked->pdata[i]) != 0 ||
        g_ptr_array_find_with_equal_func(users, peer, g_str_equal, NULL))
      return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                           "more than one call with %s: merge one of them", peer);
    g_ptr_array_add(users, g_strdup(peer));
  }
  if (!hark_conference_add(conferences, users, error))
    return FALSE;
  for (guint i = 0; i < picked->len; i++) {
    g_autoptr(GError) local = NULL;
    const char *peer = NULL, *device = NULL, *state = NULL;
    if (hark_calls_get_peer(conferences->calls, picked->pdata[i], &peer, &device, &state) &&
        !hark_calls_hold_id(conferences->calls, picked->pdata[i], FALSE, &local))
      g_message("conference: the merged call %.8s stays on hold: %s",
                (const char *)picked->pdata[i], local->message);
  }
  return TRUE;
}

/* ---- invite ----------------------------------------------------------------------------- */

static gboolean
add_one(HarkConferences *conferences, const char *user, GError **error)
{
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(users, g_strdup(user));
  return hark_conference_add(conferences, users, error);
}

/* `invite USER`: the host calls USER in; a member asks its host to. */
static gboolean
conference_invite(HarkConferences *conferences, const char *user, GError **error)
{
  if (user == NULL || !hark_presence_name_is_valid(user)) {
    g_autofree char *shown = hark_text_escape(user != NULL ? user : "", -1, 40);
    return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "'%s' is not a user name", shown);
  }
  g_autofree char *key = hark_presence_name_key(user);
  if (conferences->hosted != NULL)
    return add_one(conferences, key, error);
  guint count = 0;
  ConferenceJoined *j = joined_one(conferences, &count);
  if (j == NULL)
    return CONTROLS_FAIL(error,
                         count == 0 ? HARK_COMMAND_ERROR_FAILED : HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                         count == 0 ? "not in a conference" : "in %u conferences", count);
  g_autoptr(HarkConferenceSignal) s =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_INVITE, j->id);
  s->user = g_strdup(key);
  /* A refusal of it is one this node asked for. */
  g_hash_table_replace(conferences->asked, g_strdup(j->id_hex), g_strdup(j->host));
  hark_conference_send(conferences, j->host, j->host_device, s);
  return TRUE;
}

/* The member that sender's device is in the conference this node hosts, or NULL with
 * *why. */
static ConferenceMember *
connected_member(HarkConferences *conferences, const char *id_hex, const char *sender,
                 const char *device, const char **why)
{
  ConferenceHosted *h = conferences->hosted;
  ConferenceMember *m = NULL;
  if (h == NULL || strcmp(h->id_hex, id_hex) != 0)
    *why = "no such conference here";
  else if ((m = hark_conference_member(h, sender)) == NULL ||
           g_strcmp0(m->state, "connected") != 0 || g_strcmp0(m->device, device) != 0)
    *why = "not in the conference";
  return *why == NULL ? m : NULL;
}

static void
invite_refuse(HarkConferences *conferences, const HarkConferenceSignal *s, const char *sender,
              const char *device, const char *why)
{
  hark_conference_refuse(conferences, &conferences->counters.refused_invites, sender, device, why);
  g_autoptr(HarkConferenceSignal) no =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_REFUSED, s->id);
  no->reason = g_strdup(why);
  hark_conference_send(conferences, sender, device, no);
}

void
hark_conference_take_invite(HarkConferences *conferences, const HarkConferenceSignal *s,
                            const char *id_hex, const char *sender, const char *device)
{
  const char *why = NULL;
  if (connected_member(conferences, id_hex, sender, device, &why) == NULL) {
    invite_refuse(conferences, s, sender, device, why);
    return;
  }
  if (strcmp(conferences->invite, "host") == 0) {
    invite_refuse(conferences, s, sender, device, "the host alone invites (conference.invite)");
    return;
  }
  conferences->counters.signals++;
  if (strcmp(conferences->invite, "ask") == 0) {
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "conference_id", id_hex);
    json_object_set_string_member(o, "from", sender);
    json_object_set_string_member(o, "user", s->user);
    hark_context_emit(conferences->ctx, "conference-invite", o);
    return;
  }
  g_autoptr(GError) error = NULL;
  if (strcmp(s->user, hark_conference_self(conferences)) == 0)
    return; /* the host is in it */
  g_message("conference: %s: %s invites %s", id_hex, sender, s->user);
  if (!add_one(conferences, s->user, &error)) {
    hark_conference_refuse(conferences, &conferences->counters.refused_invites, sender, device,
                           error->message);
    g_autoptr(HarkConferenceSignal) no =
      hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_REFUSED, s->id);
    no->reason = g_strdup_printf("%s cannot be called in", s->user);
    hark_conference_send(conferences, sender, device, no);
  }
}

/* ---- mute ------------------------------------------------------------------------------- */

void
hark_conference_controls_roster(HarkConferences *conferences, HarkConferenceSignal *roster)
{
  ConferenceHosted *h = conferences->hosted;
  const ConferenceVoice *host = &h->host_voice;
  if (host->muted_self)
    hark_conference_signal_add_muted(roster, hark_conference_self(conferences), "self");
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (m->voice.muted_host || m->voice.muted_self)
      hark_conference_signal_add_muted(roster, m->user, m->voice.muted_host ? "host" : "self");
  }
}

void
hark_conference_take_mute(HarkConferences *conferences, const HarkConferenceSignal *s,
                          const char *id_hex, const char *sender, const char *device)
{
  const char *why = NULL;
  ConferenceMember *m = connected_member(conferences, id_hex, sender, device, &why);
  if (m == NULL) {
    hark_conference_refuse(conferences, &conferences->counters.refused_mutes, sender, device, why);
    return;
  }
  conferences->counters.signals++;
  if (m->voice.muted_self != s->mute) {
    m->voice.muted_self = s->mute;
    hark_conference_changed(conferences);
  }
}

/* A member's own `mute`: its leg sends silence, and the host hears so (for the roster). */
static gboolean
mute_self_member(HarkConferences *conferences, ConferenceJoined *j, gboolean mute, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (!hark_calls_mute_id(conferences->calls, j->call_id, mute, &local))
    return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_FAILED, "%s", local->message);
  g_autoptr(HarkConferenceSignal) s =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_MUTE, j->id);
  s->mute = mute;
  hark_conference_send(conferences, j->host, j->host_device, s);
  return TRUE;
}

static gboolean
mute_other(HarkConferences *conferences, const char *user, gboolean mute, GError **error)
{
  ConferenceHosted *h = conferences->hosted;
  guint count = 0;
  ConferenceJoined *j = joined_one(conferences, &count);
  if (h == NULL && j != NULL)
    return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_FAILED,
                         "only the conference's host (%s) mutes others", j->host);
  if (h == NULL)
    return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_FAILED,
                         "this node hosts no conference: only a host mutes others");
  if (!hark_presence_name_is_valid(user))
    return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "no call or member '%.40s'",
                         user);
  g_autofree char *key = hark_presence_name_key(user);
  if (strcmp(key, hark_conference_self(conferences)) == 0) {
    h->host_voice.muted_self = mute;
    hark_conference_changed(conferences);
    return TRUE;
  }
  ConferenceMember *m = hark_conference_member(h, key);
  if (m == NULL)
    return CONTROLS_FAIL(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "%s is not in the conference",
                         key);
  if (m->voice.muted_host != mute) {
    m->voice.muted_host = mute;
    g_message("conference: %s: %s %s by the host", h->id_hex, key, mute ? "muted" : "unmuted");
    hark_conference_changed(conferences);
  }
  return TRUE;
}

JsonObject *
hark_conference_mute_hook(gpointer data, const char *user, gboolean mute, gboolean *taken,
                          GError **error)
{
  HarkConferences *conferences = data;
  guint count = 0;
  ConferenceJoined *j = joined_one(conferences, &count);
  gboolean ok;
  *taken = TRUE;
  if (user != NULL) {
    ok = mute_other(conferences, user, mute, error);
  } else if (conferences->hosted != NULL) {
    conferences->hosted->host_voice.muted_self = mute;
    hark_conference_changed(conferences);
    ok = TRUE;
  } else if (j != NULL) {
    ok = mute_self_member(conferences, j, mute, error);
  } else {
    *taken = FALSE; /* a plain call's mute */
    return NULL;
  }
  if (!ok)
    return NULL;
  JsonObject *o = hark_conference_json(conferences);
  json_object_set_boolean_member(o, "muted", mute);
  if (user != NULL)
    json_object_set_string_member(o, "user", user);
  return o;
}

/* ---- the commands ----------------------------------------------------------------------- */

static void
run_merge(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = hark_conference_commands_target(command, user_data);
  if (conferences == NULL)
    return;
  GError *error = NULL;
  gboolean ok = conference_merge(
    conferences, json_object_get_string_member_with_default(args, "ids", NULL), &error);
  hark_conference_commands_answer(command, conferences, ok, error);
}

static void
run_invite(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = hark_conference_commands_target(command, user_data);
  if (conferences == NULL)
    return;
  GError *error = NULL;
  gboolean ok = conference_invite(conferences, json_object_get_string_member(args, "user"), &error);
  hark_conference_commands_answer(command, conferences, ok, error);
}

static const HarkCommandParam merge_params[] = {
  { "ids", HARK_PARAM_STRING, FALSE,
    "the calls (ids or prefixes, separated by commas or spaces); none: every call on hold "
    "and the current one" },
  { NULL },
};

static const HarkCommandParam invite_params[] = {
  { "user", HARK_PARAM_STRING, TRUE, "whom to call in (a member asks the host to)" },
  { NULL },
};

static const HarkCommand controls_commands[] = {
  { HARK_COMMAND_VERSION, "merge",
    "make calls on hold and the current one a conference hosted here (no one is called again)",
    merge_params, run_merge },
  { HARK_COMMAND_VERSION, "invite",
    "call a user into the conference (a member asks the host, who follows conference.invite)",
    invite_params, run_invite },
};

void
hark_conference_controls_register(HarkContext *core_ctx, HarkConferences **conferences)
{
  for (gsize i = 0; i < G_N_ELEMENTS(controls_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &controls_commands[i], conferences, &error))
      g_error("conference control table is broken: %s", error->message);
  }
}
