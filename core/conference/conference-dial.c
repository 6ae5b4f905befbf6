/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-dial.c: the host calls its members, and tells them things, at a pace its
 * super node takes. Each call
 * starts with a lookup of the callee's devices at the host's SN, which serves a client 10
 * lookups at once and then directory.lookups_per_minute (30 by default); a lookup it
 * refuses fails the call ("the directory did not answer"). Signals to members already
 * connected go where their devices are known to be, with no lookup (messenger-signal.c),
 * so that budget is the calls'. So the host calls
 * CONFERENCE_DIAL_BURST members at once and the others at conference.dials_per_minute,
 * each shown `calling` meanwhile: `conference` with 31 users calls them all, the last
 * some 45 s later with the defaults, sooner where the SN and conference.dials_per_minute
 * allow more. A member called meanwhile some other way (a `join`, `conference` again) or
 * removed is skipped.
 *
 * The SN forwards 20 messages a second from one client (burst 50) and refuses the rest
 * ("over this link's message rate"). A roster round is one signal per connected member,
 * as is a speaker change: 16 members connecting one after another cost 136 rosters,
 * and a refused one was lost (measured: members missed the last rosters); the messenger
 * now sends a refused signal again (messenger-signal.c), but late, and its retries cost
 * the same rate. So rosters and
 * speaker signals together take at most CONFERENCE_SIGNAL_RATE a second (a round that
 * does not fit waits, gathering the changes meanwhile), which leaves the rest of the
 * SN's rate to the legs' call signals. */
#include "conference-private.h"

#include <string.h>

#define CONFERENCE_DIAL_BURST 8 /* below the SN's 10, for the host's other lookups */
#define CONFERENCE_SIGNAL_RATE 10.0 /* rosters and speakers a second: half the SN's */
#define CONFERENCE_SIGNAL_BURST 20.0

typedef struct {
  char id_hex[2 * HARK_CONFERENCE_ID_SIZE + 1];
  char *user;
} ConferenceDial;

static void
dial_free(gpointer data)
{
  ConferenceDial *d = data;
  g_free(d->user);
  g_free(d);
}

/* A token bucket (full at first) refilled to now at per_s up to cap: its tokens. */
static double
bucket_fill(double *tokens, gint64 *refilled_us, double per_s, double cap)
{
  gint64 now = g_get_monotonic_time();
  *tokens = *refilled_us == 0
              ? cap
              : MIN(cap, *tokens + (double)(now - *refilled_us) * per_s / G_USEC_PER_SEC);
  *refilled_us = now;
  return *tokens;
}

/* Whether a call may start now (and if so, it is spent). */
static gboolean
dial_budget(HarkConferences *conferences)
{
  if (bucket_fill(&conferences->dial_tokens, &conferences->dial_refilled_us,
                  conferences->dials_per_minute / 60.0, CONFERENCE_DIAL_BURST) < 1.0)
    return FALSE;
  conferences->dial_tokens -= 1.0;
  return TRUE;
}

/* The next waiting dial's member, if it still waits in the conference hosted now. */
static ConferenceMember *
dial_target(HarkConferences *conferences, const ConferenceDial *d)
{
  ConferenceHosted *h = conferences->hosted;
  ConferenceMember *m =
    h != NULL && strcmp(h->id_hex, d->id_hex) == 0 ? hark_conference_member(h, d->user) : NULL;
  return m != NULL && m->call_id == NULL && g_strcmp0(m->state, "calling") == 0 ? m : NULL;
}

static gboolean
on_dial_timer(gpointer data)
{
  HarkConferences *conferences = data;
  gboolean changed = FALSE;
  while (!g_queue_is_empty(&conferences->dial_queue)) {
    ConferenceDial *d = g_queue_peek_head(&conferences->dial_queue);
    ConferenceMember *m = dial_target(conferences, d);
    if (m != NULL && !dial_budget(conferences))
      break;
    g_queue_pop_head(&conferences->dial_queue);
    g_autoptr(GError) error = NULL;
    if (m != NULL && !hark_conference_member_dial(conferences, m, &error)) {
      g_message("conference: %s: %s cannot be called: %s", d->id_hex, m->user, error->message);
      m->state = "left";
    }
    changed |= m != NULL;
    dial_free(d);
  }
  if (changed)
    hark_conference_changed(conferences);
  if (!g_queue_is_empty(&conferences->dial_queue))
    return G_SOURCE_CONTINUE;
  g_clear_pointer(&conferences->dial_timer, g_source_unref);
  return G_SOURCE_REMOVE;
}

gboolean
hark_conference_dial_paced(HarkConferences *conferences, ConferenceMember *member,
                           GError **error)
{
  if (g_queue_is_empty(&conferences->dial_queue) && dial_budget(conferences))
    return hark_conference_member_dial(conferences, member, error);
  ConferenceDial *d = g_new0(ConferenceDial, 1);
  g_strlcpy(d->id_hex, conferences->hosted->id_hex, sizeof d->id_hex);
  d->user = g_strdup(member->user);
  g_queue_push_tail(&conferences->dial_queue, d);
  member->state = "calling";
  if (conferences->dial_timer == NULL) {
    /* Looked at once per dial's worth of budget. */
    guint ms = MAX(10u, 60000u / conferences->dials_per_minute);
    conferences->dial_timer = g_timeout_source_new(ms);
    g_source_set_callback(conferences->dial_timer, on_dial_timer, conferences, NULL);
    g_source_attach(conferences->dial_timer, hark_context_main_context(conferences->ctx));
  }
  return TRUE;
}

void
hark_conference_dials_clear(HarkConferences *conferences)
{
  if (conferences->dial_timer != NULL) {
    g_source_destroy(conferences->dial_timer);
    g_clear_pointer(&conferences->dial_timer, g_source_unref);
  }
  g_queue_clear_full(&conferences->dial_queue, dial_free);
}

guint
hark_conference_connected(ConferenceHosted *hosted)
{
  guint n = 0;
  for (guint i = 0; i < hosted->members->len; i++)
    n += g_strcmp0(((ConferenceMember *)hosted->members->pdata[i])->state, "connected") == 0;
  return n;
}

guint
hark_conference_signals_take(HarkConferences *conferences, guint n)
{
  /* A round larger than the burst fits once the bucket is full. */
  if (bucket_fill(&conferences->signal_tokens, &conferences->signal_refilled_us,
                  CONFERENCE_SIGNAL_RATE, MAX(CONFERENCE_SIGNAL_BURST, (double)n)) >= n) {
    conferences->signal_tokens -= n;
    return 0;
  }
  return (guint)((n - conferences->signal_tokens) * 1000 / CONFERENCE_SIGNAL_RATE) + 1;
}
