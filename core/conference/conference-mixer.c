/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-mixer.c: the host's mixer. Every 20 ms it reads one frame from each input
 * (the host's own source, each connected leg's decoded audio, all at conference.rate),
 * sums them once and writes each input its mix-minus (the sum less its own frame,
 * clipped): O(N) per tick. Each leg's session encodes its mix with the leg's own codec.
 * An input with nothing this tick (a silent participant whose Opus DTX sends no packets,
 * a muted one, one whose frame is all zeros, a leg not primed yet) is left out of the
 * sum, and all such inputs hear the same whole mix: in a meeting most participants are
 * silent. Once a leg has not been heard for MIXER_SHARE_AFTER_TICKS it follows a shared
 * encoder (hark/media.h), which codes the whole mix once for all such legs with the same
 * codec settings; the first tick it is heard again, it is back on its own encoder with
 * its mix-minus (so nobody hears themselves). The wait keeps a talker's short pauses
 * from switching it back and forth, each switch costing a few frames' encoding.
 * The tick is a main-loop timer that catches up when the loop was late, so the audio
 * sent keeps its rate; more than 5 ticks behind, the lost time is skipped instead. */
#include "conference-private.h"

#include "hark/conference.h"

#define MIXER_MAX_CATCH_UP 5
#define MIXER_SHARE_AFTER_TICKS 10 /* 200 ms unheard */

HarkMediaPort *
hark_conference_mixer_port(ConferenceHosted *hosted, char **spec, GError **error)
{
  g_autofree char *name =
    g_strdup_printf("conference-%.8s-%u", hosted->id_hex, hosted->ports_made++);
  HarkMediaPort *port = hark_media_port_new(name, hosted->rate, error);
  if (port != NULL && spec != NULL)
    *spec = g_strdup_printf("port:%s", name);
  return port;
}

/* What member (NULL: the host's own sink) hears this tick when it was not heard: the
 * shared encoder's whole mix, or the whole mix written to its port. */
static void
hear_whole(ConferenceHosted *h, ConferenceMember *m, HarkMediaPort *port, const gint16 *whole)
{
  if (m != NULL && m->quiet_ticks < MIXER_SHARE_AFTER_TICKS)
    m->quiet_ticks++;
  if (m != NULL && m->quiet_ticks >= MIXER_SHARE_AFTER_TICKS)
    m->shared = hark_media_shared_follow(h->shared, port);
  if (m == NULL || !m->shared)
    hark_media_port_write(port, whole, h->frame);
}

static void
mix_once(ConferenceHosted *h)
{
  guint n = h->frame;
  GPtrArray *ports = g_ptr_array_sized_new(h->members->len + 1);
  ConferenceVoice **voices = g_newa(ConferenceVoice *, h->members->len + 1);
  ConferenceMember **owners = g_newa(ConferenceMember *, h->members->len + 1);
  voices[0] = &h->host_voice;
  owners[0] = NULL;
  g_ptr_array_add(ports, h->local_port);
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (m->port != NULL && g_strcmp0(m->state, "connected") == 0) {
      voices[ports->len] = &m->voice;
      owners[ports->len] = m;
      g_ptr_array_add(ports, m->port);
    }
  }
  const gint16 **inputs = g_newa(const gint16 *, ports->len);
  gboolean *heard = g_newa(gboolean, ports->len);
  guint n_heard = 0;
  for (guint k = 0; k < ports->len; k++) {
    gint16 *frame = h->in + (gsize)k * n;
    gsize got = hark_media_port_read(ports->pdata[k], frame, n);
    /* A muted input is left out like a silent one; its level is measured either way. */
    heard[k] = hark_conference_voice_take(voices[k], frame, n) && got > 0;
    if (heard[k])
      inputs[n_heard++] = frame;
  }
  hark_conference_mix_sum(inputs, n_heard, n, h->sum);
  gint16 *whole = h->out + n;
  hark_conference_mix_minus(h->sum, NULL, n, whole);
  for (guint k = 0; k < ports->len; k++) {
    ConferenceMember *m = owners[k];
    if (!heard[k]) {
      hear_whole(h, m, ports->pdata[k], whole);
      continue;
    }
    if (m != NULL && m->shared)
      hark_media_shared_leave(h->shared, m->port);
    if (m != NULL) {
      m->shared = FALSE;
      m->quiet_ticks = 0;
    }
    hark_conference_mix_minus(h->sum, h->in + (gsize)k * n, n, h->out);
    hark_media_port_write(ports->pdata[k], h->out, n);
  }
  /* Also with nobody following: the last frames prime a leg that goes back to its own. */
  hark_media_shared_write(h->shared, whole, n);
  h->silent_inputs += ports->len - n_heard;
  g_ptr_array_unref(ports);
  h->ticks++;
  hark_conference_speaker_tick(h);
}

static gboolean
on_tick(gpointer data)
{
  ConferenceHosted *h = data;
  gint64 now = g_get_monotonic_time();
  guint due = 0;
  while (h->next_tick_us <= now && due < MIXER_MAX_CATCH_UP) {
    mix_once(h);
    h->next_tick_us += CONFERENCE_TICK_MS * 1000;
    due++;
  }
  if (due > 1)
    h->late_ticks += due - 1;
  if (h->next_tick_us <= now) /* far behind: skip, rather than send a burst */
    h->next_tick_us = now + CONFERENCE_TICK_MS * 1000;
  g_source_set_ready_time(h->tick, h->next_tick_us);
  return G_SOURCE_CONTINUE;
}

static gboolean
tick_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
  return callback(data);
}

static GSourceFuncs tick_funcs = { .dispatch = tick_dispatch };

gboolean
hark_conference_mixer_start(HarkConferences *conferences, ConferenceHosted *h, GError **error)
{
  const HarkConfig *config = conferences->node->config;
  h->conferences = conferences;
  if ((h->local_port = hark_conference_mixer_port(h, NULL, error)) == NULL)
    return FALSE;
  /* The host's own microphone and speaker are a participant like the others. */
  h->local = hark_media_local_new(config->audio_source, config->audio_sink, h->local_port, error);
  if (h->local == NULL)
    return FALSE;
  h->in = g_new0(gint16, (gsize)h->frame * (CONFERENCE_MAX_MEMBERS + 1));
  h->sum = g_new0(gint32, h->frame);
  h->out = g_new0(gint16, 2 * (gsize)h->frame); /* a mix-minus, then the whole mix */
  h->shared = hark_media_shared_new(h->rate);
  /* A ready-time source: a plain 20 ms timeout drifts by its dispatch delay every tick. */
  h->tick = g_source_new(&tick_funcs, sizeof(GSource));
  g_source_set_priority(h->tick, G_PRIORITY_HIGH);
  g_source_set_callback(h->tick, on_tick, h, NULL);
  h->next_tick_us = g_get_monotonic_time() + CONFERENCE_TICK_MS * 1000;
  g_source_set_ready_time(h->tick, h->next_tick_us);
  g_source_attach(h->tick, hark_context_main_context(conferences->ctx));
  return TRUE;
}

void
hark_conference_mixer_stop(ConferenceHosted *h)
{
  if (h->tick != NULL) {
    g_source_destroy(h->tick);
    g_clear_pointer(&h->tick, g_source_unref);
  }
  /* Legs that outlive the mixer (a handover) send their own encoder's audio again. */
  for (guint i = 0; h->shared != NULL && i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (m->shared && m->port != NULL)
      hark_media_shared_leave(h->shared, m->port);
    m->shared = FALSE;
    m->quiet_ticks = 0;
  }
  g_clear_pointer(&h->shared, hark_media_shared_free);
  g_clear_pointer(&h->local, hark_media_local_free);
  g_clear_pointer(&h->local_port, hark_media_port_free);
  g_clear_pointer(&h->in, g_free);
  g_clear_pointer(&h->sum, g_free);
  g_clear_pointer(&h->out, g_free);
}
