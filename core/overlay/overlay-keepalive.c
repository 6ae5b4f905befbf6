/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-keepalive.c: is the other end of an SN link still there? Both ways, because a
 * crashed host or a cut cable closes nothing: no reset arrives, the link just falls silent.
 *
 * The client: every message that arrives on the SN link is a sign of life. When nothing
 * has gone either way for network.keepalive s it sends a PING, and when nothing at all
 * arrives within network.keepalive_timeout s after it, the SN is gone: the node counts it
 * failed in the host cache and joins another at once. From the SN's last message to the
 * failover: at most keepalive + keepalive_timeout (20 + 8 = 28 s by default). A link
 * with traffic both ways sends no PING; an idle one costs one PING and one PONG per
 * keepalive.
 *
 * The super node: it sends no PINGs (it may hold thousands of clients); a client's own
 * PINGs are its sign of life, and they come at least every keepalive s of the SN's own
 * settings (the client takes the smaller of its own and JOIN_OK.keepalive, but no SN value
 * below network.keepalive_floor, 10 s: a hostile SN must not make its clients PING every
 * second; the SN's sweep counts with the same floor). A client
 * heard from for no longer than keepalive + 2 × keepalive_timeout is dropped (the
 * client's own deadline, and as much again for queues and timers), checked every
 * keepalive_timeout s: at most 20 + 16 + 8 = 44 s after the client vanished by default.
 * The "overlay-client-left" event tells (overlay.c), as for any client that leaves. */
#include "overlay-private.h"

OverlayKeepaliveAction
hark_overlay_keepalive_step(gint64 silence_us, gint64 timeout_us, gint64 last_in, gint64 last_out,
                            gint64 *probe_at, gint64 now, gint64 *next)
{
  if (*probe_at != 0 && last_in >= *probe_at)
    *probe_at = 0; /* anything that arrived after the PING answers it */
  if (*probe_at != 0) {
    if (now >= *probe_at + timeout_us)
      return KEEPALIVE_DEAD;
    *next = *probe_at + timeout_us;
    return KEEPALIVE_WAIT;
  }
  /* Both ways count: the SN judges us by what it hears from us. */
  gint64 due = MIN(last_in, last_out) + silence_us;
  if (now >= due) {
    /* Look again when the answer is late, or when the next PING is due if that is
     * sooner (a timeout longer than the silence). */
    *next = now + MIN(silence_us, timeout_us);
    return KEEPALIVE_PROBE;
  }
  *next = due;
  return KEEPALIVE_WAIT;
}

gint64
hark_overlay_client_silence_limit_us(const HarkConfig *config)
{
  /* A client that keeps the default floor PINGs after at least that much silence, however
   * short this SN's own keepalive is. */
  gint64 keepalive = MAX(config->keepalive, config->keepalive_floor);
  return (keepalive + 2 * (gint64)config->keepalive_timeout) * G_USEC_PER_SEC;
}

guint
hark_overlay_keepalive_choose(const HarkConfig *config, guint32 sn_s)
{
  guint own = (guint)config->keepalive;
  if (sn_s == 0)
    return own;
  /* The user's own setting may be below the floor (a test on loopback); the SN's not. */
  return MIN(own, MAX(sn_s, (guint)config->keepalive_floor));
}

/* ---- the client ------------------------------------------------------------------- */

static gboolean on_keepalive(gpointer data);

static void
keepalive_at(HarkOverlay *overlay, gint64 now, gint64 when)
{
  gint64 ms = (when - now + 999) / 1000;
  overlay->keepalive_source =
    hark_overlay_add_timer(overlay, (guint)CLAMP(ms, 1, G_MAXUINT), on_keepalive, overlay);
}

static void
keepalive_missed(HarkOverlay *overlay)
{
  Peer *sn = overlay->sn;
  g_autofree char *why =
    g_strdup_printf("nothing arrived within %d s of the keep-alive (after %u s of silence)",
                    overlay->node->config->keepalive_timeout, overlay->keepalive_s);
  /* As a failed join attempt would: the next joins try it after the others. */
  hark_host_cache_failed(overlay->cache, hark_link_get_peer_host(sn->link),
                         sn->port != 0 ? sn->port : hark_link_get_peer_port(sn->link),
                         g_get_real_time() / G_USEC_PER_SEC);
  hark_overlay_drop_peer(overlay, sn, why);
  overlay->sn = NULL;
  hark_overlay_sn_lost(overlay, why);
}

static gboolean
on_keepalive(gpointer data)
{
  HarkOverlay *overlay = data;
  overlay->keepalive_source = 0;
  if (overlay->sn == NULL)
    return G_SOURCE_REMOVE;
  const HarkLinkStats *stats = hark_link_get_stats(overlay->sn->link);
  gint64 silence = (gint64)overlay->keepalive_s * G_USEC_PER_SEC;
  gint64 timeout = (gint64)overlay->node->config->keepalive_timeout * G_USEC_PER_SEC;
  gint64 now = g_get_monotonic_time();
  gint64 next = 0;
  switch (hark_overlay_keepalive_step(silence, timeout, stats->last_in_at, stats->last_out_at,
                                      &overlay->probe_at, now, &next)) {
  case KEEPALIVE_WAIT:
    keepalive_at(overlay, now, next);
    break;
  case KEEPALIVE_PROBE:
    hark_link_send(overlay->sn->link, HARK_MSG_PING, hark_overlay_next_id(overlay),
                   g_variant_new("(t)", (guint64)now), NULL);
    overlay->probe_at = now;
    overlay->pings_sent++;
    keepalive_at(overlay, now, next);
    break;
  case KEEPALIVE_DEAD:
    keepalive_missed(overlay);
    break;
  }
  return G_SOURCE_REMOVE;
}

void
hark_overlay_keepalive_start(HarkOverlay *overlay)
{
  hark_overlay_keepalive_stop(overlay);
  overlay->pings_sent = 0;
  on_keepalive(overlay);
}

void
hark_overlay_keepalive_stop(HarkOverlay *overlay)
{
  hark_overlay_clear_source(overlay, &overlay->keepalive_source);
  overlay->probe_at = 0;
}

/* ---- the super node --------------------------------------------------------------- */

static gboolean
on_client_sweep(gpointer data)
{
  HarkOverlay *overlay = data;
  gint64 limit = hark_overlay_client_silence_limit_us(overlay->node->config);
  gint64 now = g_get_monotonic_time();
  GList *peers = g_hash_table_get_values(overlay->peers);
  for (GList *l = peers; l != NULL; l = l->next) {
    Peer *peer = l->data;
    const HarkLinkStats *stats = hark_link_get_stats(peer->link);
    gint64 heard = MAX(stats->last_in_at, peer->since);
    if (peer->kind != PEER_CLIENT || now - heard <= limit)
      continue;
    g_autofree char *why =
      g_strdup_printf("silent for %" G_GINT64_FORMAT " s", (now - heard) / G_USEC_PER_SEC);
    hark_overlay_drop_peer(overlay, peer, why);
  }
  g_list_free(peers);
  return G_SOURCE_CONTINUE;
}

void
hark_overlay_keepalive_serve_start(HarkOverlay *overlay)
{
  hark_overlay_clear_source(overlay, &overlay->client_sweep_source);
  overlay->client_sweep_source = hark_overlay_add_timer(
    overlay, (guint)overlay->node->config->keepalive_timeout * 1000, on_client_sweep, overlay);
}

void
hark_overlay_keepalive_serve_stop(HarkOverlay *overlay)
{
  hark_overlay_clear_source(overlay, &overlay->client_sweep_source);
}
