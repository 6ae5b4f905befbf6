/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-speaker.c: what the host hears of each participant (conferences.h). The
 * mixer hands every input frame here: a muted participant's, or one of exact zeros, is
 * left out (of the sum and of its own mix-minus), and each one's level is measured (the mean
 * magnitude of the frame, smoothed over about 100 ms). After each tick the loudest
 * participant above a floor becomes the active speaker once it has led by SPEAKER_MARGIN for
 * SPEAKER_HOLD_MS, and no sooner than SPEAKER_HOLD_MS after the last change: at most a
 * few SPEAKER signals a second, none while the same person talks. Every member gets one
 * signal per change, and signals go through the host's super node, which forwards 20 a
 * second from one client (HARK_MESSAGE_ROUTE_RATE) for its calls and rosters too: a
 * change waits for the host's signal budget (conference-dial.c), so a large room hears
 * of a new speaker later rather than losing call signals. Members take a SPEAKER only
 * from their host's device and in version order, and emit `active-speaker`. */
#include "conference-private.h"

#include <string.h>

#define SPEAKER_FLOOR 300.0 /* mean magnitude under which nobody talks (about -40 dBFS) */
#define SPEAKER_MARGIN 1.5 /* how much louder than the speaker a new one must be */
#define SPEAKER_HOLD_MS 300
#define SPEAKER_SMOOTH 0.2 /* per 20 ms tick: a time constant of about 100 ms */

gboolean
hark_conference_voice_take(ConferenceVoice *voice, const gint16 *frame, guint n)
{
  gboolean muted = voice->muted_self || voice->muted_host;
  /* The mean magnitude: as good as the RMS for who is loudest, without a square root. */
  gint64 sum = 0;
  for (guint i = 0; !muted && i < n; i++)
    sum += ABS((gint32)frame[i]);
  double mean = !muted && n > 0 ? (double)sum / n : 0;
  voice->level += SPEAKER_SMOOTH * (mean - voice->level);
  /* Digital silence (a member without a microphone, a source of zeros) adds nothing to
   * any mix: left out, it changes no sample anyone hears, and its member hears the whole
   * mix like a muted one (so follows the shared encoder). Not a noise gate: a frame with
   * one sample of 1 is mixed. */
  return !muted && sum > 0;
}

static void
emit_speaker(HarkConferences *conferences, const char *id_hex, const char *host, const char *user)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "conference_id", id_hex);
  json_object_set_string_member(o, "host", host);
  if (user != NULL)
    json_object_set_string_member(o, "user", user);
  else
    json_object_set_null_member(o, "user");
  hark_context_emit(conferences->ctx, "active-speaker", o);
}

/* The new speaker (NULL: nobody) to every connected member and to the host's ctl. */
static void
announce(ConferenceHosted *h, const char *user)
{
  HarkConferences *conferences = h->conferences;
  g_free(h->speaker);
  h->speaker = g_strdup(user);
  h->speaker_version++;
  h->speaker_at_us = g_get_monotonic_time();
  g_clear_pointer(&h->candidate, g_free);
  h->candidate_ticks = 0;
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (g_strcmp0(m->state, "connected") != 0)
      continue;
    g_autoptr(HarkConferenceSignal) s =
      hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_SPEAKER, h->id);
    s->version = h->speaker_version;
    s->user = g_strdup(user);
    hark_conference_send(conferences, m->user, m->device, s);
  }
  emit_speaker(conferences, h->id_hex, hark_conference_self(conferences), user);
}

/* The level of user's input now; -1 when user is no longer in the mix. */
static double
level_of(ConferenceHosted *h, const char *self, const char *user)
{
  if (strcmp(user, self) == 0)
    return h->host_voice.level;
  ConferenceMember *m = hark_conference_member(h, user);
  return m != NULL && g_strcmp0(m->state, "connected") == 0 ? m->voice.level : -1;
}

void
hark_conference_speaker_tick(ConferenceHosted *h)
{
  if (h->conferences == NULL)
    return;
  const char *self = hark_conference_self(h->conferences);
  const char *loudest = h->host_voice.level > SPEAKER_FLOOR ? self : NULL;
  double top = loudest != NULL ? h->host_voice.level : SPEAKER_FLOOR;
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (g_strcmp0(m->state, "connected") == 0 && m->voice.level > top) {
      loudest = m->user;
      top = m->voice.level;
    }
  }
  gint64 now = g_get_monotonic_time();
  /* A roster waiting for the budget goes first. */
  gboolean held =
    now - h->speaker_at_us >= SPEAKER_HOLD_MS * 1000 && h->conferences->changed == NULL;
  double current = h->speaker != NULL ? level_of(h, self, h->speaker) : 0;
  if (current < 0) { /* the speaker left the mix */
    if (held && hark_conference_signals_take(h->conferences, hark_conference_connected(h)) == 0)
      announce(h, loudest);
    return;
  }
  if (loudest == NULL || g_strcmp0(loudest, h->speaker) == 0 ||
      (h->speaker != NULL && top < SPEAKER_MARGIN * current)) {
    g_clear_pointer(&h->candidate, g_free);
    h->candidate_ticks = 0;
    return;
  }
  if (g_strcmp0(h->candidate, loudest) != 0) {
    g_free(h->candidate);
    h->candidate = g_strdup(loudest);
    h->candidate_ticks = 0;
  }
  h->candidate_ticks++;
  if (held && h->candidate_ticks * CONFERENCE_TICK_MS >= SPEAKER_HOLD_MS &&
      hark_conference_signals_take(h->conferences, hark_conference_connected(h)) == 0) {
    g_autofree char *user = g_strdup(loudest);
    announce(h, user);
  }
}

void
hark_conference_take_speaker(HarkConferences *conferences, const HarkConferenceSignal *s,
                             const char *id_hex, const char *sender, const char *device)
{
  ConferenceJoined *j = g_hash_table_lookup(conferences->joined, id_hex);
  if (j == NULL || strcmp(sender, j->host) != 0 || strcmp(device, j->host_device) != 0) {
    hark_conference_refuse(conferences, &conferences->counters.refused_sender, sender, device,
                           "a speaker from a device that does not host the conference");
    return;
  }
  if (s->version <= j->speaker_version) {
    hark_conference_refuse(conferences, &conferences->counters.refused_stale, sender, device,
                           "a speaker version not above the last one");
    return;
  }
  conferences->counters.signals++;
  j->speaker_version = s->version;
  emit_speaker(conferences, id_hex, j->host, s->user);
}
