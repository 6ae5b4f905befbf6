/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-session-events.c: what a media session tells its owner (a call), on the owner's
 * main context: the DTMF digits the far end sent, and that the far end went silent
 * (nothing authenticated at all, not even RTCP or a hold keep-alive, for silence_ms: the
 * far end is gone or the path is dead).
 * Only packets that passed SRTP count, so a stranger's packets cannot keep a dead call
 * alive. */
#include "media-session-impl.h"

#include <string.h>

void
hark_media_session_heard(HarkMediaSession *s, gint64 now)
{
  s->last_heard = now;
  s->silent_fired = FALSE;
}

static gboolean
on_silence_watch(gpointer data)
{
  HarkMediaSession *s = data;
  gint64 now = g_get_monotonic_time();
  g_mutex_lock(&s->lock);
  gint64 quiet_ms = (now - s->last_heard) / 1000;
  gboolean fire = !s->silent_fired && quiet_ms >= (gint64)s->silence_ms;
  if (fire)
    s->silent_fired = TRUE; /* once, until something comes and stops again */
  HarkMediaSessionEvents events = s->events;
  gpointer events_data = s->events_data;
  g_mutex_unlock(&s->lock);
  if (fire && events.silent != NULL)
    events.silent(events_data, (guint)MIN(quiet_ms, G_MAXUINT));
  return G_SOURCE_CONTINUE;
}

void
hark_media_session_events_start(HarkMediaSession *s)
{
  g_mutex_lock(&s->lock);
  s->last_heard = g_get_monotonic_time();
  s->silent_fired = FALSE;
  g_mutex_unlock(&s->lock);
  /* A tenth of the silence time, so the event is at most 10% late; never busier than
   * every 20 ms, never lazier than every 250 ms. */
  s->silence_watch = g_timeout_source_new(CLAMP(s->silence_ms / 10, 20, 250));
  g_source_set_callback(s->silence_watch, on_silence_watch, s, NULL);
  g_source_attach(s->silence_watch, s->context);
}

/* Digits waiting for the owner: a flood of events from the far end is bounded here
 * (the far end is authenticated, but a buggy or hostile peer must not grow memory). */
#define DTMF_PENDING_MAX 64

static gboolean
deliver_dtmf(gpointer data)
{
  HarkMediaSession *s = data;
  g_mutex_lock(&s->lock);
  g_autofree char *digits = g_string_free(s->dtmf_heard, FALSE);
  s->dtmf_heard = g_string_new(NULL);
  g_clear_pointer(&s->dtmf_delivery, g_source_unref);
  HarkMediaSessionEvents events = s->events;
  gpointer events_data = s->events_data;
  g_mutex_unlock(&s->lock);
  for (const char *d = digits; events.dtmf != NULL && *d != '\0'; d++)
    events.dtmf(events_data, *d);
  return G_SOURCE_REMOVE;
}

void
hark_media_session_dtmf_heard(HarkMediaSession *s, const char *digits, int n)
{
  for (int i = 0; i < n; i++) {
    s->dtmf_received++;
    if (s->dtmf_heard->len < DTMF_PENDING_MAX)
      g_string_append_c(s->dtmf_heard, digits[i]);
  }
  if (n > 0 && s->dtmf_delivery == NULL) {
    s->dtmf_delivery = g_idle_source_new();
    g_source_set_callback(s->dtmf_delivery, deliver_dtmf, s, NULL);
    g_source_attach(s->dtmf_delivery, s->context);
  }
}

void
hark_media_session_events_stop(HarkMediaSession *s)
{
  if (s->silence_watch != NULL) {
    g_source_destroy(s->silence_watch);
    g_clear_pointer(&s->silence_watch, g_source_unref);
  }
  g_mutex_lock(&s->lock);
  if (s->dtmf_delivery != NULL) {
    g_source_destroy(s->dtmf_delivery);
    g_clear_pointer(&s->dtmf_delivery, g_source_unref);
  }
  g_mutex_unlock(&s->lock);
}

void
hark_media_session_set_events(HarkMediaSession *s, const HarkMediaSessionEvents *events,
                              gpointer data)
{
  g_mutex_lock(&s->lock);
  /* The silence counts from now: an owner that starts the session before its path works
   * (a call while ICE checks) sets the events once it does. */
  s->last_heard = g_get_monotonic_time();
  s->silent_fired = FALSE;
  if (events != NULL && events->version >= 1) {
    s->events = *events;
    s->events_data = data;
  } else {
    memset(&s->events, 0, sizeof s->events);
    s->events_data = NULL;
  }
  g_mutex_unlock(&s->lock);
}
