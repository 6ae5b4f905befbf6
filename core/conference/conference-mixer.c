/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-mixer.c: the host's mixer. Every 20 ms it reads one frame from each input
 * (the host's own source, each connected leg's decoded audio, all at conference.rate),
 * sums them once and writes each input its mix-minus (the sum less its own frame,
 * clipped): O(N) per tick. Each leg's session encodes its mix with the leg's own codec.
 * An input with nothing this tick (a silent participant whose Opus DTX sends no packets,
 * a leg not primed yet) is left out of the sum, and all such inputs are written the same
 * whole mix, made once: in a meeting most participants are silent, and they all hear the
 * same thing.
 * The tick is a main-loop timer that catches up when the loop was late, so the audio
 * sent keeps its rate; more than 5 ticks behind, the lost time is skipped instead. */
#include "conference-private.h"

#include "hark/conference.h"

#define MIXER_MAX_CATCH_UP 5

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

static void
mix_once(ConferenceHosted *h)
{
  guint n = h->frame;
  GPtrArray *ports = g_ptr_array_sized_new(h->members->len + 1);
  ConferenceVoice **voices = g_newa(ConferenceVoice *, h->members->len + 1);
  voices[0] = &h->host_voice;
  g_ptr_array_add(ports, h->local_port);
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (m->port != NULL && g_strcmp0(m->state, "connected") == 0) {
      voices[ports->len] = &m->voice;
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
  gboolean whole_made = FALSE;
  for (guint k = 0; k < ports->len; k++) {
    if (heard[k]) {
      hark_conference_mix_minus(h->sum, h->in + (gsize)k * n, n, h->out);
      hark_media_port_write(ports->pdata[k], h->out, n);
      continue;
    }
    if (!whole_made) {
      hark_conference_mix_minus(h->sum, NULL, n, whole);
      whole_made = TRUE;
    }
    hark_media_port_write(ports->pdata[k], whole, n);
  }
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
  g_clear_pointer(&h->local, hark_media_local_free);
  g_clear_pointer(&h->local_port, hark_media_port_free);
  g_clear_pointer(&h->in, g_free);
  g_clear_pointer(&h->sum, g_free);
  g_clear_pointer(&h->out, g_free);
}
