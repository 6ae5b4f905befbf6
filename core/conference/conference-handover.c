/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-handover.c: when a conference's host goes, the successor its last signed
 * roster named hosts the same conference (same id, a higher roster version) and calls
 * the members still in it; they take that call without ringing, from that device only.
 *
 * Every member watches its leg to the host (every 100 ms, the authenticated packets the
 * leg received): the host is gone when the leg ends (the host left, or its node said so)
 * or when nothing came for HANDOVER_LOST_MS (its node died; HANDOVER_SETTLE_LOST_MS in
 * the first seconds of a host that just took over). The successor then takes over; the
 * others wait for its call (at most HANDOVER_WAIT_MS), answer it once their own leg is
 * over or quiet too, and follow that device as their host from then on. A roster from
 * any other device is a false takeover: refused and counted (`refused_takeover`,
 * conference.c). The gap (the old host's last packet to the new host's first) is
 * logged and shown as `roster`'s last_handover_ms. docs/protocol.md, "Conferences:
 * handover". */
#include "conference-private.h"

#include <string.h>

#define HANDOVER_POLL_MS 100
#define HANDOVER_LOST_MS 800 /* the successor's: nothing from the host for this long */
/* The first seconds after a takeover (the new host is still starting its pipelines, on a
 * node that may be busy): it counts as gone only after a longer silence. */
#define HANDOVER_SETTLE_MS 3000
#define HANDOVER_SETTLE_LOST_MS 2000
#define HANDOVER_ANSWER_MS 300 /* a member's: its leg quiet this long, the successor's call is taken */
#define HANDOVER_WAIT_MS 10000 /* a member waits this long for the successor's call */
/* The successor's rosters start this far above the last version it took: rosters the old
 * host sent just before it went may have reached the others and not the successor. */
#define HANDOVER_VERSION_STEP 8

struct _ConferenceLegWatch {
  guint64 packets; /* the leg's authenticated packets (packets_of), last seen */
  gint64 heard_us; /* when they last grew (monotonic) */
  gint64 settled_us; /* a new host's first seconds end then (HANDOVER_SETTLE_MS); 0 */
  gboolean settling; /* a new host's leg: its first seconds count from its first packet */
  gboolean leg_ended; /* the leg to the host is over */
  gint64 lost_us; /* the host is gone (leg ended or quiet) since; 0: it is not */
  gboolean leaving; /* this node leaves: no takeover, no waiting */
  gboolean facts_due; /* the host has not had our facts yet */
  char *successor_call; /* the named successor's call here, ringing or answered */
  gboolean answered;
  gint64 resume_from_us; /* the old host's last packet, until the new host's first; 0 */
  gint64 last_handover_ms; /* -1: none yet */
};

struct _ConferenceHandover {
  GSource *timer; /* the poll, while this node is a member of some conference */
  GSource *soon; /* an idle: a poll now, not at the next tick */
  /* The conference this node hosts since it took it over (NULL: none). */
  char *hosted_id;
  char *from_user, *from_device; /* the host it took over from */
  gint64 from_heard_us; /* that host's last packet; 0 once a leg is up */
  gint64 hosted_handover_ms; /* -1: not measured */
};

static ConferenceLegWatch *
watch_new(void)
{
  ConferenceLegWatch *w = g_new0(ConferenceLegWatch, 1);
  w->heard_us = g_get_monotonic_time();
  w->last_handover_ms = -1;
  return w;
}

void
hark_conference_watch_free(ConferenceLegWatch *watch)
{
  if (watch == NULL)
    return;
  g_free(watch->successor_call);
  g_free(watch);
}

/* The successor j's last roster named, or NULL. */
static const HarkConferenceSuccessor *
successor_of(const ConferenceJoined *j)
{
  const GArray *s = j->roster != NULL ? j->roster->succession : NULL;
  return s != NULL && s->len > 0 ? &g_array_index(s, HarkConferenceSuccessor, 0) : NULL;
}

static const char *
own_device(HarkConferences *conferences)
{
  return hark_identity_get_fingerprint(conferences->node->identity);
}

static gboolean
is_self(HarkConferences *conferences, const HarkConferenceSuccessor *who)
{
  return who != NULL && strcmp(who->user, hark_conference_self(conferences)) == 0 &&
         g_strcmp0(who->device, own_device(conferences)) == 0;
}

/* What came from the host on a leg and passed SRTP: audio and hold keep-alives (not
 * the transport's count, which a stranger spraying the leg's port would raise). */
static guint64
packets_of(HarkConferences *conferences, const char *call_id)
{
  g_autoptr(JsonObject) stats = hark_calls_stats(conferences->calls, call_id);
  if (stats == NULL)
    return 0;
  return (guint64)json_object_get_int_member_with_default(stats, "rtp_received", 0) +
         (guint64)json_object_get_int_member_with_default(stats, "keepalives_received", 0);
}

static void
send_facts(HarkConferences *conferences, ConferenceJoined *j)
{
  g_autoptr(HarkConferenceSignal) facts = hark_conference_facts_own(conferences, j->id, j->call_id);
  hark_conference_send(conferences, j->host, j->host_device, facts);
}

static gboolean on_poll(gpointer data);

void
hark_conference_handover_roster(HarkConferences *conferences, ConferenceJoined *j)
{
  ConferenceHandover *ho = conferences->handover;
  if (j->watch == NULL) {
    j->watch = watch_new();
    j->watch->facts_due = TRUE;
  }
  if (ho->timer == NULL) {
    ho->timer = g_timeout_source_new(HANDOVER_POLL_MS);
    g_source_set_callback(ho->timer, on_poll, conferences, NULL);
    g_source_attach(ho->timer, hark_context_main_context(conferences->ctx));
  }
  /* Once per host, at its first roster: it counts us connected by then. */
  if (j->watch->facts_due) {
    j->watch->facts_due = FALSE;
    send_facts(conferences, j);
  }
}

void
hark_conference_handover_leaving(ConferenceJoined *j)
{
  if (j->watch != NULL)
    j->watch->leaving = TRUE;
}

/* ---- the legs ------------------------------------------------------------------------------ */

static gboolean
on_soon(gpointer data)
{
  HarkConferences *conferences = data;
  g_clear_pointer(&conferences->handover->soon, g_source_unref);
  on_poll(conferences);
  return G_SOURCE_REMOVE;
}

/* Something the poll acts on came (a leg ended, the successor's call rings): it runs
 * once the call layer is done, without waiting up to a tick. */
static void
poll_soon(HarkConferences *conferences)
{
  ConferenceHandover *ho = conferences->handover;
  if (ho->soon != NULL)
    return;
  ho->soon = g_idle_source_new();
  g_source_set_callback(ho->soon, on_soon, conferences, NULL);
  g_source_attach(ho->soon, hark_context_main_context(conferences->ctx));
}

void
hark_conference_handover_call(HarkConferences *conferences, const char *id_hex, const char *peer,
                              const char *peer_device, const char *state)
{
  ConferenceHandover *ho = conferences->handover;
  if (strcmp(state, "active") == 0 && ho->from_heard_us != 0 && conferences->hosted != NULL &&
      g_strcmp0(conferences->hosted->id_hex, ho->hosted_id) == 0) {
    /* The first leg of the conference taken over is up: the host hears someone again. */
    ho->hosted_handover_ms = (g_get_monotonic_time() - ho->from_heard_us) / 1000;
    ho->from_heard_us = 0;
    g_message("conference: %s: took over from %s: the first leg up %" G_GINT64_FORMAT
              " ms after its last packet",
              ho->hosted_id, ho->from_user, ho->hosted_handover_ms);
  }
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, conferences->joined);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    ConferenceJoined *j = value;
    ConferenceLegWatch *w = j->watch;
    const HarkConferenceSuccessor *next = successor_of(j);
    if (w == NULL || next == NULL)
      continue;
    if (strcmp(state, "ringing") == 0 && !w->answered && peer_device != NULL &&
        strcmp(peer, next->user) == 0 && strcmp(peer_device, next->device) == 0) {
      /* Answered (by the poll) once our own leg is over or quiet too. */
      g_free(w->successor_call);
      w->successor_call = g_strdup(id_hex);
      poll_soon(conferences);
    } else if (strcmp(state, "ended") == 0 && g_strcmp0(w->successor_call, id_hex) == 0) {
      g_clear_pointer(&w->successor_call, g_free);
      w->answered = FALSE;
    }
  }
}

gboolean
hark_conference_handover_leg_ended(HarkConferences *conferences, ConferenceJoined *j,
                                   const char *reason)
{
  ConferenceLegWatch *w = j->watch;
  /* Hung up here (`hangup` of the leg is a `leave`): no waiting for anyone. */
  if (w == NULL || w->leaving || (!w->answered && g_strcmp0(reason, "you hung up") == 0))
    return FALSE;
  if (w->answered)
    return TRUE; /* we hung it up ourselves, for the successor's */
  const HarkConferenceSuccessor *next = successor_of(j);
  if (next == NULL)
    return FALSE;
  w->leg_ended = TRUE;
  if (w->lost_us == 0)
    w->lost_us = g_get_monotonic_time();
  poll_soon(conferences);
  return TRUE;
}

/* j is over here: its event, its leg hung up, gone from the table. */
static void
membership_over(HarkConferences *conferences, ConferenceJoined *j, const char *reason)
{
  g_autofree char *id_hex = g_strdup(j->id_hex);
  g_autofree char *call_id =
    j->watch != NULL && j->watch->leg_ended ? NULL : g_strdup(j->call_id);
  if (j->watch != NULL)
    j->watch->leaving = TRUE;
  g_message("conference: %s: %s", id_hex, reason);
  hark_conference_emit_roster(conferences, id_hex, j->host, j->roster, "left", reason);
  g_hash_table_remove(conferences->joined, id_hex);
  if (call_id != NULL)
    hark_calls_hangup_id(conferences->calls, call_id, NULL);
}

/* ---- taking over ---------------------------------------------------------------------------- */

/* This node is j's successor and its host is gone: it hosts the same conference (its
 * rosters HANDOVER_VERSION_STEP versions on) and calls every member that was connected. */
static void
take_over(HarkConferences *conferences, ConferenceJoined *j)
{
  ConferenceHandover *ho = conferences->handover;
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; j->roster != NULL && i < j->roster->roster->len; i++) {
    const HarkConferenceMember *m = &g_array_index(j->roster->roster, HarkConferenceMember, i);
    if (strcmp(m->state, "connected") == 0 && strcmp(m->user, j->host) != 0 &&
        strcmp(m->user, hark_conference_self(conferences)) != 0)
      g_ptr_array_add(users, g_strdup(m->user));
  }
  if (users->len == 0) {
    membership_over(conferences, j, "the host is gone and nobody else is left");
    return;
  }
  guint8 id[HARK_CONFERENCE_ID_SIZE];
  memcpy(id, j->id, sizeof id);
  guint32 version = j->version + HANDOVER_VERSION_STEP;
  g_autofree char *id_hex = g_strdup(j->id_hex);
  g_autofree char *from_user = g_strdup(j->host), *from_device = g_strdup(j->host_device);
  g_autofree char *old_leg = j->watch->leg_ended ? NULL : g_strdup(j->call_id);
  gint64 heard_us = j->watch->heard_us;
  /* Out of the table first: the old leg's end finds no membership to wait in. */
  g_hash_table_remove(conferences->joined, id_hex);
  if (old_leg != NULL) /* it lets go of the node's source and sink, for the mixer's */
    hark_calls_hangup_id(conferences->calls, old_leg, NULL);
  g_message("conference: %s: %s is gone, taking over (%u members to call)", id_hex, from_user,
            users->len);
  g_autoptr(GError) error = NULL;
  if (!hark_conference_host_again(conferences, id, version, users, &error)) {
    g_message("conference: %s: cannot take over: %s", id_hex, error->message);
    hark_conference_emit_roster(conferences, id_hex, from_user, NULL, "left", error->message);
    return;
  }
  conferences->counters.handovers++;
  g_free(ho->hosted_id);
  g_free(ho->from_user);
  g_free(ho->from_device);
  ho->hosted_id = g_steal_pointer(&id_hex);
  ho->from_user = g_steal_pointer(&from_user);
  ho->from_device = g_steal_pointer(&from_device);
  ho->from_heard_us = heard_us;
  ho->hosted_handover_ms = -1;
}

/* j's host is the successor now, its leg the successor's call (answered): the device
 * its last signed roster named, so its rosters count from now on. */
static void
follow(HarkConferences *conferences, ConferenceJoined *j, gint64 quiet_ms)
{
  ConferenceLegWatch *w = j->watch;
  const HarkConferenceSuccessor *next = successor_of(j);
  g_message("conference: %s: %s hosts now (was %s, quiet for %" G_GINT64_FORMAT " ms)",
            j->id_hex, next->user, j->host, quiet_ms);
  g_free(j->host);
  g_free(j->host_device);
  g_free(j->call_id);
  j->host = g_strdup(next->user);
  j->host_device = g_strdup(next->device);
  j->call_id = g_steal_pointer(&w->successor_call);
  w->answered = FALSE;
  w->leg_ended = FALSE;
  w->lost_us = 0;
  w->packets = 0;
  w->heard_us = g_get_monotonic_time();
  w->settling = TRUE;
  w->facts_due = TRUE;
  conferences->counters.handovers++;
  hark_conference_emit_host(conferences, j->id_hex, j->host, j->host_device, FALSE);
}

/* The successor's call rang here: taken once our own leg is over or quiet too (a
 * successor whose own leg to a live host broke must not take the others away). */
static void
answer_successor(HarkConferences *conferences, ConferenceJoined *j, gint64 quiet_ms)
{
  ConferenceLegWatch *w = j->watch;
  if (!w->leg_ended && quiet_ms < HANDOVER_ANSWER_MS)
    return;
  w->answered = TRUE;
  w->resume_from_us = w->heard_us;
  g_autofree char *old_leg = w->leg_ended ? NULL : g_strdup(j->call_id);
  g_autofree char *call = g_strdup(w->successor_call);
  if (old_leg != NULL) /* the node's source and sink are the new leg's */
    hark_calls_hangup_id(conferences->calls, old_leg, NULL);
  w->leg_ended = TRUE;
  g_autoptr(GError) error = NULL;
  if (!hark_calls_answer_id(conferences->calls, call, &error)) {
    g_message("conference: %s: the successor's call: %s", j->id_hex, error->message);
    w->answered = FALSE;
    g_clear_pointer(&w->successor_call, g_free);
    return;
  }
  follow(conferences, j, quiet_ms);
}

/* One membership's look at its leg. FALSE: j is gone. */
static gboolean
poll_one(HarkConferences *conferences, ConferenceJoined *j, gint64 now)
{
  ConferenceLegWatch *w = j->watch;
  guint64 packets = w->leg_ended ? 0 : packets_of(conferences, j->call_id);
  if (packets > 0 && w->resume_from_us != 0) {
    /* The new host's first audio: the gap is over. */
    w->last_handover_ms = (now - w->resume_from_us) / 1000;
    w->resume_from_us = 0;
    g_message("conference: %s: no audio from a host for %" G_GINT64_FORMAT " ms (handover)",
              j->id_hex, w->last_handover_ms);
  }
  if (!w->leg_ended && packets > w->packets) {
    if (w->settling) {
      w->settling = FALSE;
      w->settled_us = now + HANDOVER_SETTLE_MS * 1000;
    }
    w->packets = packets;
    w->heard_us = now;
    w->lost_us = 0;
  }
  if (w->answered || w->leaving)
    return TRUE;
  gint64 quiet_ms = (now - w->heard_us) / 1000;
  /* A new host's leg that has not carried a packet yet is still being set up (the call
   * layer ends it if that fails): only its end counts. */
  gboolean lost = w->leg_ended ||
                  (!w->settling && quiet_ms >= (now < w->settled_us ? HANDOVER_SETTLE_LOST_MS
                                                                     : HANDOVER_LOST_MS));
  if (lost && w->lost_us == 0) {
    w->lost_us = now;
    g_message("conference: %s: nothing from the host %s for %" G_GINT64_FORMAT " ms", j->id_hex,
              j->host, quiet_ms);
  }
  const HarkConferenceSuccessor *next = successor_of(j);
  if (lost && is_self(conferences, next) && conferences->may_host) {
    take_over(conferences, j);
    return FALSE;
  }
  if (w->successor_call != NULL)
    answer_successor(conferences, j, quiet_ms);
  else if (w->lost_us != 0 && (now - w->lost_us) / 1000 >= HANDOVER_WAIT_MS) {
    membership_over(conferences, j, "the host is gone and its successor did not call");
    return FALSE;
  }
  return TRUE;
}

static gboolean
on_poll(gpointer data)
{
  HarkConferences *conferences = data;
  gint64 now = g_get_monotonic_time();
  /* By id: a takeover or a membership's end changes the table. */
  g_autoptr(GPtrArray) copies = g_ptr_array_new_with_free_func(g_free);
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, conferences->joined);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    g_ptr_array_add(copies, g_strdup(key));
  for (guint i = 0; i < copies->len; i++) {
    ConferenceJoined *j = g_hash_table_lookup(conferences->joined, copies->pdata[i]);
    if (j != NULL && j->watch != NULL)
      poll_one(conferences, j, now);
  }
  ConferenceHandover *ho = conferences->handover;
  if (g_hash_table_size(conferences->joined) > 0 || ho->timer == NULL)
    return G_SOURCE_CONTINUE;
  /* A member of nothing: no waking up every 100 ms for it. */
  g_source_destroy(ho->timer);
  g_clear_pointer(&ho->timer, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* ---- an end after a takeover -------------------------------------------------------------- */

gboolean
hark_conference_handover_end(HarkConferences *conferences, const char *id_hex, const char *sender,
                             const char *device)
{
  ConferenceHandover *ho = conferences->handover;
  if (conferences->hosted == NULL || g_strcmp0(ho->hosted_id, id_hex) != 0 ||
      g_strcmp0(ho->from_user, sender) != 0 || g_strcmp0(ho->from_device, device) != 0)
    return FALSE;
  /* The old host had ended it for everyone, and its END came after its leg's end. */
  conferences->counters.signals++;
  hark_conference_end(conferences, "ended by the host", NULL);
  return TRUE;
}

/* ---- `roster`, the object ---------------------------------------------------------------- */

void
hark_conference_handover_json(HarkConferences *conferences, const char *id_hex, JsonObject *c)
{
  ConferenceHandover *ho = conferences->handover;
  ConferenceJoined *j = g_hash_table_lookup(conferences->joined, id_hex);
  gint64 ms = -1;
  gboolean hosting = conferences->hosted != NULL && strcmp(conferences->hosted->id_hex, id_hex) == 0;
  if (hosting) {
    /* What the members' rosters are compared with: the version sent last, and how many
     * members' facts the succession was ranked by. */
    json_object_set_int_member(c, "version", conferences->hosted->version);
    json_object_set_int_member(c, "facts_from", g_hash_table_size(conferences->facts));
  }
  if (hosting && g_strcmp0(ho->hosted_id, id_hex) == 0) {
    ms = ho->hosted_handover_ms;
    json_object_set_string_member(c, "taken_over_from", ho->from_user);
  } else if (j != NULL && j->watch != NULL) {
    ms = j->watch->last_handover_ms;
    json_object_set_boolean_member(c, "host_lost", j->watch->lost_us != 0);
  }
  if (ms >= 0)
    json_object_set_int_member(c, "last_handover_ms", ms);
}

void
hark_conference_handover_init(HarkConferences *conferences)
{
  ConferenceHandover *ho = g_new0(ConferenceHandover, 1);
  ho->hosted_handover_ms = -1;
  conferences->handover = ho;
}

void
hark_conference_handover_free(HarkConferences *conferences)
{
  ConferenceHandover *ho = conferences->handover;
  if (ho == NULL)
    return;
  if (ho->timer != NULL) {
    g_source_destroy(ho->timer);
    g_source_unref(ho->timer);
  }
  if (ho->soon != NULL) {
    g_source_destroy(ho->soon);
    g_source_unref(ho->soon);
  }
  g_free(ho->hosted_id);
  g_free(ho->from_user);
  g_free(ho->from_device);
  g_free(ho);
  conferences->handover = NULL;
}
