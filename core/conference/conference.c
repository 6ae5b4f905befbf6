/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference.c: the conferences of this node (conferences.h). As host it calls every
 * member with the leg's source and sink set to a mixer port, follows the legs through
 * the call layer's watch, and sends the roster to every connected member whenever it
 * changes. As a member it takes a roster only from the device that called it for that
 * conference (its leg), and only newer versions; a join from a user who is not in the
 * roster is refused with a reason. Events: `conference-host`, `conference-roster`,
 * `conference-refused`. Who hosts next is conference-host.c's, the takeover
 * conference-handover.c's. */
#include "conference-private.h"

#include "hark/address.h"
#include "hark/presence.h"
#include "message-group.h"

#include <openssl/rand.h>
#include <string.h>

void
hark_conference_id_hex(const guint8 *id, gsize size, char *out)
{
  for (gsize i = 0; i < size; i++)
    g_snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static gboolean
id_from_hex(const char *hex, guint8 *out, gsize size)
{
  if (hex == NULL || strlen(hex) != 2 * size)
    return FALSE;
  for (gsize i = 0; i < size; i++) {
    gint hi = g_ascii_xdigit_value(hex[2 * i]), lo = g_ascii_xdigit_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return FALSE;
    out[i] = (guint8)(hi << 4 | lo);
  }
  return TRUE;
}

static gboolean G_GNUC_PRINTF(3, 4)
fail(GError **error, HarkCommandError code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *text = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error_literal(error, HARK_COMMAND_ERROR, code, text);
  return FALSE;
}

/* ---- sending ---------------------------------------------------------------------------- */

static void
signal_sent(gpointer data, GPtrArray *delivered, const GError *error)
{
  char *what = data;
  if (error != NULL)
    g_message("conference: the %s did not arrive: %s", what, error->message);
  g_free(what);
}

static void
send_signal(HarkConferences *conferences, const char *user, const char *device,
            HarkConferenceSignal *signal)
{
  g_autofree char *id_hex = g_malloc(2 * HARK_CONFERENCE_ID_SIZE + 1);
  hark_conference_id_hex(signal->id, HARK_CONFERENCE_ID_SIZE, id_hex);
  char *what = g_strdup_printf("%s of %.8s to %s", hark_conference_signal_type_name(signal->type),
                               id_hex, user);
  hark_messenger_signal_send(conferences->messenger, user, device, "conference",
                             hark_conference_signal_build(signal), signal_sent, what);
}

void
hark_conference_send(HarkConferences *conferences, const char *user, const char *device,
                     HarkConferenceSignal *signal)
{
  send_signal(conferences, user, device, signal);
}

/* ---- events ------------------------------------------------------------------------------ */

static JsonArray *
roster_json(const HarkConferenceSignal *roster)
{
  JsonArray *a = json_array_new();
  for (guint i = 0; roster != NULL && roster->roster != NULL && i < roster->roster->len; i++) {
    const HarkConferenceMember *m = &g_array_index(roster->roster, HarkConferenceMember, i);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "user", m->user);
    json_object_set_string_member(o, "state", m->state);
    const char *muted = hark_conference_signal_muted_by(roster, m->user);
    if (muted != NULL)
      json_object_set_string_member(o, "muted", muted);
    json_array_add_object_element(a, o);
  }
  return a;
}

static void
emit_roster(HarkConferences *conferences, const char *id_hex, const char *host,
            const HarkConferenceSignal *roster, const char *state, const char *reason)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "conference_id", id_hex);
  json_object_set_string_member(o, "host", host);
  json_object_set_string_member(o, "state", state);
  if (roster != NULL)
    json_object_set_int_member(o, "version", roster->version);
  json_object_set_array_member(o, "roster", roster_json(roster));
  json_object_set_array_member(o, "succession", hark_conference_succession_json(roster));
  if (reason != NULL)
    json_object_set_string_member(o, "reason", reason);
  hark_context_emit(conferences->ctx, "conference-roster", o);
}

static void
emit_host(HarkConferences *conferences, const char *id_hex, const char *host, const char *device,
          gboolean self)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "conference_id", id_hex);
  json_object_set_string_member(o, "host", host);
  if (device != NULL)
    json_object_set_string_member(o, "host_device", device);
  json_object_set_boolean_member(o, "self", self);
  hark_context_emit(conferences->ctx, "conference-host", o);
}

/* ---- hosting -------------------------------------------------------------------------- */

/* This device's user, canonical (borrowed until the next call), "" when logged out. */
static const char *
own_user(HarkConferences *conferences)
{
  g_autofree char *user = NULL;
  g_free(conferences->self);
  conferences->self = NULL;
  if (!hark_messenger_whoami(conferences->messenger, &user, &conferences->self) ||
      conferences->self == NULL)
    conferences->self = g_strdup("");
  return conferences->self;
}

static void
member_free(gpointer data)
{
  ConferenceMember *m = data;
  g_free(m->user);
  g_free(m->call_id);
  g_free(m->device);
  hark_media_port_free(m->port);
  g_free(m);
}

static ConferenceMember *
member_find(ConferenceHosted *h, const char *user)
{
  for (guint i = 0; i < h->members->len; i++)
    if (strcmp(((ConferenceMember *)h->members->pdata[i])->user, user) == 0)
      return h->members->pdata[i];
  return NULL;
}

static ConferenceMember *
member_by_call(ConferenceHosted *h, const char *call_id)
{
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (g_strcmp0(m->call_id, call_id) == 0)
      return m;
  }
  return NULL;
}

/* The roster as a signal for member (NULL: the host's own view), version set. */
static HarkConferenceSignal *
roster_signal(HarkConferences *conferences, ConferenceMember *member)
{
  ConferenceHosted *h = conferences->hosted;
  HarkConferenceSignal *s = hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_ROSTER, h->id);
  s->version = h->version;
  if (member != NULL) {
    s->has_call = id_from_hex(member->call_id, s->call, sizeof s->call);
  }
  hark_conference_signal_add(s, own_user(conferences), "host");
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    hark_conference_signal_add(s, m->user, m->state);
  }
  hark_conference_controls_roster(conferences, s);
  hark_conference_succession_fill(conferences, s);
  return s;
}

static gboolean
on_changed(gpointer data)
{
  HarkConferences *conferences = data;
  g_clear_pointer(&conferences->changed, g_source_unref);
  ConferenceHosted *h = conferences->hosted;
  if (h == NULL)
    return G_SOURCE_REMOVE;
  /* One signal per connected member: within the host's budget, else a little later
   * (with whatever changes meanwhile). */
  guint wait_ms = hark_conference_signals_take(conferences, hark_conference_connected(h));
  if (wait_ms > 0) {
    conferences->changed = g_timeout_source_new(wait_ms);
    g_source_set_callback(conferences->changed, on_changed, conferences, NULL);
    g_source_attach(conferences->changed, hark_context_main_context(conferences->ctx));
    return G_SOURCE_REMOVE;
  }
  h->version++;
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (g_strcmp0(m->state, "connected") != 0)
      continue;
    g_autoptr(HarkConferenceSignal) s = roster_signal(conferences, m);
    send_signal(conferences, m->user, m->device, s);
  }
  g_autoptr(HarkConferenceSignal) mine = roster_signal(conferences, NULL);
  emit_roster(conferences, h->id_hex, own_user(conferences), mine, "hosting", NULL);
  return G_SOURCE_REMOVE;
}

/* The roster changed: everyone hears once the call layer is done with what changed it. */
static void
roster_changed(HarkConferences *conferences)
{
  if (conferences->changed != NULL)
    return;
  conferences->changed = g_idle_source_new();
  g_source_set_callback(conferences->changed, on_changed, conferences, NULL);
  g_source_attach(conferences->changed, hark_context_main_context(conferences->ctx));
}

void
hark_conference_changed(HarkConferences *conferences)
{
  roster_changed(conferences);
}

ConferenceMember *
hark_conference_member(ConferenceHosted *hosted, const char *user)
{
  return member_find(hosted, user);
}

const char *
hark_conference_self(HarkConferences *conferences)
{
  return own_user(conferences);
}

static void
hosted_free(ConferenceHosted *h)
{
  hark_conference_mixer_stop(h);
  g_ptr_array_unref(h->members);
  g_free(h->speaker);
  g_free(h->candidate);
  g_free(h);
}

/* Calls member with a fresh port as its leg's source and sink. */
static gboolean
member_dial(HarkConferences *conferences, ConferenceMember *m, GError **error)
{
  g_autofree char *spec = NULL;
  HarkMediaPort *port = hark_conference_mixer_port(conferences->hosted, &spec, error);
  if (port == NULL)
    return FALSE;
  char *id = hark_calls_dial_with(conferences->calls, m->user, spec, spec, error);
  if (id == NULL) {
    hark_media_port_free(port);
    return FALSE;
  }
  g_free(m->call_id);
  m->call_id = id;
  g_clear_pointer(&m->device, g_free);
  hark_media_port_free(m->port);
  m->port = port;
  m->state = "calling";
  return TRUE;
}

gboolean
hark_conference_member_dial(HarkConferences *conferences, ConferenceMember *member,
                            GError **error)
{
  return member_dial(conferences, member, error);
}

/* The call already going on with member becomes its leg: its session is made again with
 * a mixer port as source and sink (no ringing). */
static gboolean
member_adopt(HarkConferences *conferences, ConferenceMember *m, const char *call_id,
             GError **error)
{
  g_autofree char *spec = NULL;
  HarkMediaPort *port = hark_conference_mixer_port(conferences->hosted, &spec, error);
  if (port == NULL)
    return FALSE;
  const char *peer = NULL, *device = NULL, *state = NULL;
  g_autofree char *id = g_strdup(call_id);
  if (!hark_calls_get_peer(conferences->calls, id, &peer, &device, &state) ||
      !hark_calls_set_media(conferences->calls, id, spec, spec, error)) {
    hark_media_port_free(port);
    return FALSE;
  }
  g_free(m->call_id);
  m->call_id = g_steal_pointer(&id);
  g_free(m->device);
  m->device = g_strdup(device);
  hark_media_port_free(m->port);
  m->port = port;
  m->state = "connected";
  return TRUE;
}

/* id: the conference's (a successor's), or NULL for a new one. */
static ConferenceHosted *
host_new(HarkConferences *conferences, const guint8 *id, GError **error)
{
  if (!conferences->may_host) {
    fail(error, HARK_COMMAND_ERROR_FAILED,
         "this node does not host conferences (conference.host = false)");
    return NULL;
  }
  ConferenceHosted *h = g_new0(ConferenceHosted, 1);
  if (id != NULL)
    memcpy(h->id, id, sizeof h->id);
  else
    RAND_bytes(h->id, sizeof h->id);
  g_hash_table_remove_all(conferences->facts); /* of the members of the last one */
  hark_conference_id_hex(h->id, sizeof h->id, h->id_hex);
  h->members = g_ptr_array_new_with_free_func(member_free);
  h->rate = conferences->rate;
  h->frame = h->rate * CONFERENCE_TICK_MS / 1000;
  return h;
}

static void hosted_end(HarkConferences *conferences, const char *reason);

/* The mixer and the host's own audio start once the legs are made: a call that becomes
 * a leg lets go of the node's source and sink first (a WAV sink is one file). */
static gboolean
host_start(HarkConferences *conferences, GError **error)
{
  ConferenceHosted *h = conferences->hosted;
  g_autoptr(GError) local = NULL;
  if (!hark_conference_mixer_start(conferences, h, &local)) {
    fail(error, HARK_COMMAND_ERROR_FAILED, "the conference's audio: %s", local->message);
    hosted_end(conferences, "the host's audio failed");
    return FALSE;
  }
  g_message("conference: hosting %s at %u Hz", h->id_hex, h->rate);
  emit_host(conferences, h->id_hex, own_user(conferences), NULL, TRUE);
  return TRUE;
}

/* hark_conference_add, or (id) a successor's hosting of conference id from version on. */
static gboolean
conference_add(HarkConferences *conferences, GPtrArray *users, const guint8 *id, guint32 version,
               GError **error)
{
  const char *self = own_user(conferences);
  if (self[0] == '\0')
    return fail(error, HARK_COMMAND_ERROR_FAILED, "not logged in: log in first");
  for (guint i = 0; i < users->len; i++)
    if (strcmp(users->pdata[i], self) == 0)
      return fail(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "you host it: leave yourself out");
  gboolean fresh = conferences->hosted == NULL;
  if ((fresh ? 0 : conferences->hosted->members->len) + users->len > CONFERENCE_MAX_MEMBERS)
    return fail(error, HARK_COMMAND_ERROR_FAILED, "a conference has at most %d members",
                CONFERENCE_MAX_MEMBERS + 1);
  if (fresh && (conferences->hosted = host_new(conferences, id, error)) == NULL)
    return FALSE;
  ConferenceHosted *h = conferences->hosted;
  if (fresh)
    h->version = version;
  guint dialled = 0;
  for (guint i = 0; i < users->len; i++) {
    ConferenceMember *m = member_find(h, users->pdata[i]);
    if (m != NULL && m->call_id != NULL)
      continue; /* called or connected already */
    if (m == NULL) {
      m = g_new0(ConferenceMember, 1);
      m->user = g_strdup(users->pdata[i]);
      m->state = "left";
      g_ptr_array_add(h->members, m);
    }
    g_autoptr(GError) local = NULL;
    const char *going = hark_calls_plain_with(conferences->calls, m->user);
    if (going != NULL ? !member_adopt(conferences, m, going, &local)
                      : !hark_conference_dial_paced(conferences, m, &local)) {
      g_message("conference: %s: %s cannot be called: %s", h->id_hex, m->user, local->message);
      if (dialled == 0 && users->len == 1) {
        g_ptr_array_remove(h->members, m);
        if (fresh)
          g_clear_pointer(&conferences->hosted, hosted_free);
        return fail(error, HARK_COMMAND_ERROR_FAILED, "%s", local->message);
      }
      continue;
    }
    dialled++;
  }
  if (fresh && !host_start(conferences, error))
    return FALSE;
  roster_changed(conferences);
  return TRUE;
}

gboolean
hark_conference_add(HarkConferences *conferences, GPtrArray *users, GError **error)
{
  return conference_add(conferences, users, NULL, 0, error);
}

gboolean
hark_conference_host_again(HarkConferences *conferences, const guint8 *id, guint32 version,
                           GPtrArray *users, GError **error)
{
  if (conferences->hosted != NULL)
    return fail(error, HARK_COMMAND_ERROR_FAILED, "this node hosts a conference already");
  return conference_add(conferences, users, id, version, error);
}

/* The hosted conference stops here: tell (END) ends it for everyone, else (the host
 * leaves) the legs just hang up and the successor takes over. */
static void
hosted_stop(HarkConferences *conferences, const char *reason, gboolean tell)
{
  ConferenceHosted *h = conferences->hosted;
  h->version++;
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (m->call_id == NULL)
      continue;
    if (tell && g_strcmp0(m->state, "connected") == 0) {
      g_autoptr(HarkConferenceSignal) s =
        hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_END, h->id);
      s->version = h->version;
      s->reason = g_strdup(reason);
      send_signal(conferences, m->user, m->device, s);
    }
    g_autofree char *call_id = g_steal_pointer(&m->call_id);
    m->state = "left";
    hark_calls_hangup_id(conferences->calls, call_id, NULL);
  }
  g_message("conference: %s %s: %s", h->id_hex, tell ? "ended" : "left to the successor", reason);
  emit_roster(conferences, h->id_hex, own_user(conferences), NULL, tell ? "ended" : "left", reason);
  g_clear_pointer(&conferences->hosted, hosted_free);
}

static void
hosted_end(HarkConferences *conferences, const char *reason)
{
  hosted_stop(conferences, reason, TRUE);
}

void
hark_conference_host_leave(HarkConferences *conferences)
{
  hosted_stop(conferences, "the host left", FALSE);
}

gboolean
hark_conference_kick(HarkConferences *conferences, const char *user, GError **error)
{
  ConferenceHosted *h = conferences->hosted;
  if (h == NULL)
    return fail(error, HARK_COMMAND_ERROR_FAILED, "this node hosts no conference");
  g_autofree char *key = hark_presence_name_key(user);
  ConferenceMember *m = member_find(h, key);
  if (m == NULL)
    return fail(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "%s is not in the conference", key);
  if (g_strcmp0(m->state, "connected") == 0) {
    g_autoptr(HarkConferenceSignal) s = hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_END, h->id);
    s->version = ++h->version;
    s->reason = g_strdup("removed by the host");
    send_signal(conferences, m->user, m->device, s);
  }
  /* Out of the roster: a join of theirs is refused from now on. */
  g_autofree char *call_id = g_steal_pointer(&m->call_id);
  g_ptr_array_remove(h->members, m);
  if (call_id != NULL)
    hark_calls_hangup_id(conferences->calls, call_id, NULL);
  roster_changed(conferences);
  return TRUE;
}

gboolean
hark_conference_end(HarkConferences *conferences, const char *reason, GError **error)
{
  if (conferences->hosted == NULL)
    return fail(error, HARK_COMMAND_ERROR_FAILED, "this node hosts no conference");
  hosted_end(conferences, reason);
  return TRUE;
}

/* ---- the legs, as the call layer reports them ------------------------------------------ */

static void
on_call(gpointer data, const char *id_hex, const char *peer, const char *peer_device,
        const char *state, const char *reason)
{
  HarkConferences *conferences = data;
  hark_conference_handover_call(conferences, id_hex, peer, peer_device, state);
  ConferenceHosted *h = conferences->hosted;
  ConferenceMember *m = h != NULL ? member_by_call(h, id_hex) : NULL;
  if (m != NULL && strcmp(state, "active") == 0 && g_strcmp0(m->state, "connected") != 0) {
    m->state = "connected";
    g_free(m->device);
    m->device = g_strdup(peer_device);
    roster_changed(conferences);
  } else if (m != NULL && strcmp(state, "ended") == 0) {
    /* The reason may be the peer's words (its FAIL): escaped. */
    g_autofree char *why = hark_text_escape(reason != NULL ? reason : "", -1, 200);
    g_message("conference: %s: %s left (%s)", h->id_hex, m->user, why);
    g_clear_pointer(&m->call_id, g_free);
    /* The session holding the port stops with the call; the port goes after it. */
    g_clear_pointer(&m->port, hark_media_port_free);
    m->state = "left";
    m->voice.muted_self = FALSE; /* a new leg starts unmuted at the member's */
    roster_changed(conferences);
  }
  if (strcmp(state, "ended") != 0)
    return;
  /* A member's leg ended: it is out of that conference. */
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, conferences->joined);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    ConferenceJoined *j = value;
    if (g_strcmp0(j->call_id, id_hex) != 0 ||
        hark_conference_handover_leg_ended(conferences, j, reason))
      continue;
    emit_roster(conferences, j->id_hex, j->host, j->roster, "left", reason);
    g_hash_table_iter_remove(&iter);
  }
}

/* ---- membership ------------------------------------------------------------------------- */

static void
joined_free(gpointer data)
{
  ConferenceJoined *j = data;
  g_free(j->host);
  g_free(j->host_device);
  g_free(j->call_id);
  hark_conference_signal_free(j->roster);
  hark_conference_watch_free(j->watch);
  g_free(j);
}

static void
refuse(HarkConferences *conferences, guint64 *counter, const char *sender, const char *device,
       const char *why)
{
  (*counter)++;
  g_autofree char *shown = hark_text_escape(why, -1, 200);
  g_message("conference: refused a signal from %s (%.12s): %s", sender, device, shown);
}

void
hark_conference_refuse(HarkConferences *conferences, guint64 *counter, const char *sender,
                       const char *device, const char *why)
{
  refuse(conferences, counter, sender, device, why);
}

/* A first roster opens a membership only when it comes from the device at the other end
 * of the leg it names: the host's call to us. */
static ConferenceJoined *
joined_open(HarkConferences *conferences, const HarkConferenceSignal *s, const char *id_hex,
            const char *sender, const char *device)
{
  char call_hex[33];
  hark_conference_id_hex(s->call, sizeof s->call, call_hex);
  const char *peer = NULL, *peer_device = NULL, *state = NULL;
  if (!hark_calls_get_peer(conferences->calls, call_hex, &peer, &peer_device, &state) ||
      strcmp(peer, sender) != 0 || (peer_device != NULL && strcmp(peer_device, device) != 0)) {
    refuse(conferences, &conferences->counters.refused_sender, sender, device,
           "a roster for a call this device has not with that device");
    return NULL;
  }
  ConferenceJoined *j = g_new0(ConferenceJoined, 1);
  memcpy(j->id, s->id, sizeof j->id);
  g_strlcpy(j->id_hex, id_hex, sizeof j->id_hex);
  j->host = g_strdup(sender);
  j->host_device = g_strdup(device);
  j->call_id = g_strdup(call_hex);
  g_hash_table_insert(conferences->joined, g_strdup(id_hex), j);
  g_message("conference: %s hosted by %s", id_hex, sender);
  emit_host(conferences, id_hex, sender, device, FALSE);
  return j;
}

/* *taken: a ROSTER is kept (stolen) as the membership's last. */
static void
take_roster(HarkConferences *conferences, HarkConferenceSignal **taken, const char *id_hex,
            const char *sender, const char *device)
{
  HarkConferenceSignal *s = *taken;
  ConferenceJoined *j = g_hash_table_lookup(conferences->joined, id_hex);
  if (j == NULL && s->type == HARK_CONFERENCE_SIGNAL_END &&
      hark_conference_handover_end(conferences, id_hex, sender, device))
    return;
  if (j != NULL && (strcmp(sender, j->host) != 0 || strcmp(device, j->host_device) != 0)) {
    if (s->type == HARK_CONFERENCE_SIGNAL_ROSTER && s->version > j->version)
      conferences->counters.refused_takeover++;
    refuse(conferences, &conferences->counters.refused_sender, sender, device,
           "a roster from a device that does not host the conference");
    return;
  }
  if (j != NULL && s->version <= j->version) {
    refuse(conferences, &conferences->counters.refused_stale, sender, device,
           "a roster version not above the last one");
    return;
  }
  if (j == NULL && (j = joined_open(conferences, s, id_hex, sender, device)) == NULL)
    return;
  conferences->counters.signals++;
  j->version = s->version;
  if (s->type == HARK_CONFERENCE_SIGNAL_END) {
    emit_roster(conferences, id_hex, j->host, j->roster, "ended", s->reason);
    g_hash_table_remove(conferences->joined, id_hex);
    return;
  }
  hark_conference_signal_free(j->roster);
  j->roster = g_steal_pointer(taken);
  emit_roster(conferences, id_hex, j->host, s, "member", NULL);
  hark_conference_handover_roster(conferences, j);
}

/* A join: the host lets a roster member who left back in (calls it again); anyone else
 * hears no, with why. */
static void
take_join(HarkConferences *conferences, const HarkConferenceSignal *s, const char *id_hex,
          const char *sender, const char *device)
{
  ConferenceHosted *h = conferences->hosted;
  ConferenceMember *m = h != NULL && strcmp(h->id_hex, id_hex) == 0 ? member_find(h, sender) : NULL;
  const char *why = h == NULL || strcmp(h->id_hex, id_hex) != 0 ? "no such conference here"
                    : m == NULL                                 ? "not in the roster"
                                                                : NULL;
  if (why == NULL) {
    conferences->counters.signals++;
    g_autoptr(GError) error = NULL;
    if (m->call_id == NULL && !member_dial(conferences, m, &error))
      g_message("conference: %s: %s cannot be called back: %s", id_hex, m->user, error->message);
    roster_changed(conferences);
    return;
  }
  refuse(conferences, &conferences->counters.refused_joins, sender, device, why);
  g_autoptr(HarkConferenceSignal) no = hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_REFUSED, s->id);
  no->reason = g_strdup(why);
  send_signal(conferences, sender, device, no);
}

static void
take_refused(HarkConferences *conferences, const HarkConferenceSignal *s, const char *id_hex,
             const char *sender, const char *device)
{
  const char *asked = g_hash_table_lookup(conferences->asked, id_hex);
  if (asked == NULL || strcmp(asked, sender) != 0) {
    refuse(conferences, &conferences->counters.refused_unasked, sender, device,
           "a refusal of a join this device did not ask for");
    return;
  }
  conferences->counters.signals++;
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "conference_id", id_hex);
  json_object_set_string_member(o, "host", sender);
  json_object_set_string_member(o, "reason", s->reason != NULL ? s->reason : "refused");
  hark_context_emit(conferences->ctx, "conference-refused", o);
  g_hash_table_remove(conferences->asked, id_hex);
}

static void
on_signal(gpointer data, const char *sender, const char *sender_device, GVariant *body,
          gint64 sealed_at)
{
  HarkConferences *conferences = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConferenceSignal) s = hark_conference_signal_parse(body, &error);
  if (s == NULL) {
    refuse(conferences, &conferences->counters.refused_malformed, sender, sender_device,
           error->message);
    return;
  }
  char id_hex[2 * HARK_CONFERENCE_ID_SIZE + 1];
  hark_conference_id_hex(s->id, sizeof s->id, id_hex);
  switch (s->type) {
  case HARK_CONFERENCE_SIGNAL_ROSTER:
  case HARK_CONFERENCE_SIGNAL_END:
    take_roster(conferences, &s, id_hex, sender, sender_device);
    break;
  case HARK_CONFERENCE_SIGNAL_JOIN:
    take_join(conferences, s, id_hex, sender, sender_device);
    break;
  case HARK_CONFERENCE_SIGNAL_REFUSED:
    take_refused(conferences, s, id_hex, sender, sender_device);
    break;
  case HARK_CONFERENCE_SIGNAL_INVITE:
    hark_conference_take_invite(conferences, s, id_hex, sender, sender_device);
    break;
  case HARK_CONFERENCE_SIGNAL_MUTE:
    hark_conference_take_mute(conferences, s, id_hex, sender, sender_device);
    break;
  case HARK_CONFERENCE_SIGNAL_SPEAKER:
    hark_conference_take_speaker(conferences, s, id_hex, sender, sender_device);
    break;
  case HARK_CONFERENCE_SIGNAL_FACTS:
    hark_conference_facts_take(conferences, &s, id_hex, sender, sender_device);
    break;
  }
}

gboolean
hark_conference_join(HarkConferences *conferences, const char *host, const char *id,
                     GError **error)
{
  guint8 raw[HARK_CONFERENCE_ID_SIZE];
  if (!hark_presence_name_is_valid(host))
    return fail(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "'%s' is not a user name", host);
  if (!id_from_hex(id, raw, sizeof raw))
    return fail(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS, "a conference id is 32 hex digits");
  char id_hex[2 * HARK_CONFERENCE_ID_SIZE + 1];
  hark_conference_id_hex(raw, sizeof raw, id_hex);
  g_hash_table_replace(conferences->asked, g_strdup(id_hex), hark_presence_name_key(host));
  g_autoptr(HarkConferenceSignal) s = hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_JOIN, raw);
  g_autofree char *key = hark_presence_name_key(host);
  send_signal(conferences, key, NULL, s);
  return TRUE;
}

gboolean
hark_conference_leave(HarkConferences *conferences, const char *id, GError **error)
{
  ConferenceJoined *found = NULL;
  guint matches = 0;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, conferences->joined);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    ConferenceJoined *j = value;
    if (id == NULL || g_str_has_prefix(j->id_hex, id)) {
      found = j;
      matches++;
    }
  }
  if (matches == 0 && conferences->hosted != NULL &&
      (id == NULL || g_str_has_prefix(conferences->hosted->id_hex, id))) {
    /* The successor the last roster named takes over; with none, it ends for all. */
    g_autoptr(HarkConferenceSignal) last = roster_signal(conferences, NULL);
    if (last->succession == NULL || last->succession->len == 0)
      return hark_conference_end(conferences, "the host left", error);
    hark_conference_host_leave(conferences);
    return TRUE;
  }
  if (matches != 1)
    return fail(error, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                matches == 0 ? "not in a conference" : "in %u conferences: say which", matches);
  hark_conference_handover_leaving(found);
  /* Hanging up our leg is leaving: the host sees the call end and tells the others. */
  g_autofree char *call_id = g_strdup(found->call_id);
  return hark_calls_hangup_id(conferences->calls, call_id, error);
}

/* ---- `roster` ------------------------------------------------------------------------------ */

/* The shared encoder of the whole mix (conference-mixer.c). */
static JsonObject *
shared_json(HarkMediaShared *shared)
{
  HarkMediaSharedCounts counts;
  hark_media_shared_get_counts(shared, &counts);
  JsonObject *o = json_object_new();
  json_object_set_int_member(o, "encoders", counts.encoders);
  json_object_set_int_member(o, "followers", counts.followers);
  json_object_set_int_member(o, "frames_encoded", (gint64)counts.frames_encoded);
  json_object_set_int_member(o, "packets_sent", (gint64)counts.packets_sent);
  json_object_set_int_member(o, "switches", (gint64)counts.switches);
  return o;
}

JsonObject *
hark_conference_json(HarkConferences *conferences)
{
  JsonObject *o = json_object_new();
  JsonArray *list = json_array_new();
  ConferenceHosted *h = conferences->hosted;
  if (h != NULL) {
    g_autoptr(HarkConferenceSignal) mine = roster_signal(conferences, NULL);
    JsonObject *c = json_object_new();
    json_object_set_string_member(c, "id", h->id_hex);
    json_object_set_string_member(c, "host", own_user(conferences));
    json_object_set_boolean_member(c, "hosting", TRUE);
    json_object_set_array_member(c, "roster", roster_json(mine));
    json_object_set_int_member(c, "rate", h->rate);
    json_object_set_int_member(c, "ticks", (gint64)h->ticks);
    json_object_set_int_member(c, "late_ticks", (gint64)h->late_ticks);
    json_object_set_int_member(c, "silent_inputs", (gint64)h->silent_inputs);
    if (h->shared != NULL)
      json_object_set_object_member(c, "shared", shared_json(h->shared));
    json_object_set_array_member(c, "succession", hark_conference_succession_json(mine));
    hark_conference_handover_json(conferences, h->id_hex, c);
    JsonArray *legs = json_array_new();
    for (guint i = 0; i < h->members->len; i++) {
      ConferenceMember *m = h->members->pdata[i];
      JsonObject *leg = m->call_id != NULL ? hark_calls_stats(conferences->calls, m->call_id) : NULL;
      if (leg == NULL)
        continue;
      json_object_set_string_member(leg, "user", m->user);
      guint64 received = 0, dropped = 0, underruns = 0;
      if (m->port != NULL)
        hark_media_port_get_counts(m->port, &received, &dropped, &underruns);
      json_object_set_int_member(leg, "mixed_samples", (gint64)received);
      json_object_set_int_member(leg, "backlog_dropped", (gint64)dropped);
      json_object_set_int_member(leg, "underruns", (gint64)underruns);
      guint queued = 0, queued_mean = 0, send_queued = 0;
      if (m->port != NULL)
        hark_media_port_get_queued(m->port, &queued, &queued_mean, &send_queued);
      json_object_set_int_member(leg, "queued_ms", queued);
      json_object_set_int_member(leg, "queued_mean_ms", queued_mean);
      json_object_set_int_member(leg, "send_queued_ms", send_queued);
      /* What the host mixes of this member: its level (mean magnitude, 0-32768) and who
       * muted it. */
      json_object_set_int_member(leg, "level", (gint64)m->voice.level);
      json_object_set_boolean_member(leg, "shared", m->shared);
      if (m->voice.muted_host || m->voice.muted_self)
        json_object_set_string_member(leg, "muted_by", m->voice.muted_host ? "host" : "self");
      json_array_add_object_element(legs, leg);
    }
    json_object_set_array_member(c, "legs", legs);
    json_array_add_object_element(list, c);
  }
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, conferences->joined);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    ConferenceJoined *j = value;
    JsonObject *c = json_object_new();
    json_object_set_string_member(c, "id", j->id_hex);
    json_object_set_string_member(c, "host", j->host);
    json_object_set_boolean_member(c, "hosting", FALSE);
    json_object_set_string_member(c, "call_id", j->call_id);
    json_object_set_int_member(c, "version", j->version);
    json_object_set_array_member(c, "roster", roster_json(j->roster));
    json_object_set_array_member(c, "succession", hark_conference_succession_json(j->roster));
    hark_conference_handover_json(conferences, j->id_hex, c);
    json_array_add_object_element(list, c);
  }
  json_object_set_array_member(o, "conferences", list);
  JsonObject *k = json_object_new();
  const ConferenceCounters *n = &conferences->counters;
  json_object_set_int_member(k, "signals", (gint64)n->signals);
  json_object_set_int_member(k, "refused_malformed", (gint64)n->refused_malformed);
  json_object_set_int_member(k, "refused_sender", (gint64)n->refused_sender);
  json_object_set_int_member(k, "refused_stale", (gint64)n->refused_stale);
  json_object_set_int_member(k, "refused_joins", (gint64)n->refused_joins);
  json_object_set_int_member(k, "refused_unasked", (gint64)n->refused_unasked);
  json_object_set_int_member(k, "refused_invites", (gint64)n->refused_invites);
  json_object_set_int_member(k, "refused_mutes", (gint64)n->refused_mutes);
  json_object_set_int_member(k, "refused_takeover", (gint64)n->refused_takeover);
  json_object_set_int_member(k, "handovers", (gint64)n->handovers);
  json_object_set_object_member(o, "counters", k);
  return o;
}

/* ---- the object ---------------------------------------------------------------------------- */

HarkConferences *
hark_conferences_new(HarkNode *node, HarkCalls *calls, HarkMessenger *messenger)
{
  HarkConferences *conferences = g_new0(HarkConferences, 1);
  conferences->node = node;
  conferences->ctx = node->core_ctx;
  conferences->calls = calls;
  conferences->messenger = messenger;
  conferences->may_host = node->config->conf_host;
  conferences->rate = (guint)node->config->conf_rate;
  conferences->invite = node->config->conf_invite;
  conferences->dials_per_minute = (guint)node->config->conf_dials_per_minute;
  conferences->joined = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, joined_free);
  conferences->asked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  conferences->facts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify)hark_conference_signal_free);
  hark_conference_handover_init(conferences);
  hark_calls_set_watch(calls, on_call, conferences);
  hark_messenger_set_signal_handler(messenger, "conference", on_signal, conferences);
  hark_calls_set_mute_hook(calls, hark_conference_mute_hook, conferences);
  return conferences;
}

void
hark_conferences_free(HarkConferences *conferences)
{
  if (conferences == NULL)
    return;
  hark_messenger_set_signal_handler(conferences->messenger, "conference", NULL, NULL);
  if (conferences->hosted != NULL)
    hosted_end(conferences, "the host stopped");
  hark_calls_set_watch(conferences->calls, NULL, NULL);
  hark_calls_set_mute_hook(conferences->calls, NULL, NULL);
  hark_conference_dials_clear(conferences);
  if (conferences->changed != NULL) {
    g_source_destroy(conferences->changed);
    g_clear_pointer(&conferences->changed, g_source_unref);
  }
  g_hash_table_unref(conferences->joined);
  g_hash_table_unref(conferences->asked);
  g_hash_table_unref(conferences->facts);
  hark_conference_signal_free(conferences->succession);
  hark_conference_handover_free(conferences);
  g_free(conferences->self);
  g_free(conferences);
}

/* ---- for conference-host.c and conference-handover.c ------------------------------------ */

void
hark_conference_emit_host(HarkConferences *conferences, const char *id_hex, const char *host,
                          const char *device, gboolean self)
{
  emit_host(conferences, id_hex, host, device, self);
}

void
hark_conference_emit_roster(HarkConferences *conferences, const char *id_hex, const char *host,
                            const HarkConferenceSignal *roster, const char *state,
                            const char *reason)
{
  emit_roster(conferences, id_hex, host, roster, state, reason);
}
