/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-jitter.c: the adaptive jitter-buffer policy of a media session: how long the
 * receive side holds audio before playing it. It starts small (about one frame) and
 * follows what it sees: every buffer that reaches the sink tells how early it came
 * before its playing time (its slack), and the jitter buffer tells how many packets came
 * after it had given up on them. A close call or a late packet grows the delay at once;
 * a calm stretch shrinks it by half the room the earliest-played buffers left each
 * second beyond a close call, so after a one-off stall (a busy machine's scheduler, a
 * burst) the delay is back within a few seconds instead of keeping its high-water mark
 * (and a call's start, which assumes more than it needs, comes down as fast), while a
 * link with real jitter, whose worst buffer of each second leaves little room, keeps
 * its audio whole. A link that makes it grow again soon after the last growth has real
 * jitter: for a while the shrinking then keeps the growth's headroom instead of going
 * back to the edge, where the next spread of the jitter would make it grow again (a
 * sawtooth whose every step is a gap or a cut in the audio). A shrink waits for a pause
 * in what plays (the session says when, hark_media_jitter_hear()). Kept free of
 * GStreamer so the unit test drives it with made-up observations. */
#include "media-private.h"

/* A buffer that reaches the sink less than this before its time is a close call. */
#define GUARD_MS 2.0
/* Grown by what the worst buffer missed plus this, so one more such buffer fits. */
#define HEADROOM_MS 5
/* What a packet the jitter buffer gave up on costs: its lateness is unknown. */
#define LATE_STEP_MS 10
/* Shrinking starts after this many calm ticks (on the loaded bench machine the sound
 * server stalled for 30-290 ms a few times within 2-3 s, then not for many seconds: three
 * rides out such a cluster, five kept half of a 10 s call at the stall's level) and goes
 * at least this far per tick... */
#define CALM_TICKS 3
#define SHRINK_MS 1
/* ...or this part of the room the worst buffer of the tick left beyond a close call:
 * halving it converges in a few ticks and never overshoots into one. (A quarter of the
 * room beyond the close call and the growth's headroom, at least 1 ms a tick, left the
 * clean-link bench's calls 3-7 ms above what their buffers needed, 10-20 s in.) */
#define SHRINK_SHARE 2
/* A growth within this many ticks of the one before says the jitter is the link's, not a
 * one-off stall's, and for JITTERY_TICKS the shrinking keeps HEADROOM_MS of room. (With
 * uniform jitter of 0-40 ms the buffer grew every 5-10 ticks and shrank in between: 33
 * moves a minute in the policy's simulation with the benchmark's spread, 9 with this.) */
#define JITTERY_WITHIN 30
#define JITTERY_TICKS 60
/* A shrink cuts a little of what plays, so while the far end's sound plays it waits for a
 * pause (the classic adjustment between talkspurts, Ramjee et al. 1994); a growth cannot
 * wait. Sound without pauses (music, a tone) gets it after this all the same. */
#define SHRINK_WAIT_US (3 * G_USEC_PER_SEC)

/* A loss holds the delay at a packet time and HEADROOM_MS for this long after it: at 5 %
 * random loss one comes every 0.4 s on average, at 1 % every 2 s. */
#define LOSS_HOLD_US (10 * G_USEC_PER_SEC)
/* Stretches up to this long set the floor. */
#define LOSS_FLOOR_PACKET_MS 40

void
hark_media_jitter_init(HarkMediaJitter *j, guint start_ms, guint min_ms, guint max_ms)
{
  *j = (HarkMediaJitter){ .min_ms = MIN(min_ms, max_ms), .max_ms = max_ms, .pause = TRUE };
  j->target_ms = CLAMP(start_ms, j->min_ms, j->max_ms);
}

void
hark_media_jitter_hear(HarkMediaJitter *j, gboolean pause, gint64 now_us)
{
  j->pause = pause;
  j->now_us = now_us;
}

/* The least delay a recent loss asks for; 0: none. */
static guint
loss_floor(const HarkMediaJitter *j)
{
  return j->now_us < j->loss_until_us ? j->loss_floor_ms : 0;
}

void
hark_media_jitter_lost(HarkMediaJitter *j, guint packet_ms, gint64 now_us)
{
  if (packet_ms == 0 || packet_ms > LOSS_FLOOR_PACKET_MS)
    return;
  j->loss_floor_ms = MIN(j->max_ms, packet_ms + HEADROOM_MS);
  j->loss_until_us = now_us + LOSS_HOLD_US;
}

gboolean
hark_media_jitter_poll(HarkMediaJitter *j)
{
  if (j->pending_ms == 0 || !(j->pause || j->now_us >= j->pending_deadline_us))
    return FALSE;
  /* A loss since the shrink was decided may want more room than it leaves. */
  guint to = MAX(j->pending_ms, MIN(loss_floor(j), j->target_ms));
  j->pending_ms = 0;
  if (to >= j->target_ms)
    return FALSE;
  j->target_ms = to;
  j->shrunk++;
  return TRUE;
}

/* A shrink to pending_ms (0: none this tick), in now or at the next pause. */
static void
want_shrink(HarkMediaJitter *j, guint pending_ms)
{
  if (pending_ms == 0) {
    j->pending_ms = 0;
    return;
  }
  if (j->pending_ms == 0)
    j->pending_deadline_us = j->now_us + SHRINK_WAIT_US;
  j->pending_ms = pending_ms;
  hark_media_jitter_poll(j);
}

void
hark_media_jitter_observe(HarkMediaJitter *j, double slack_ms)
{
  if (!j->have_slack || slack_ms < j->worst_slack_ms)
    j->worst_slack_ms = slack_ms;
  j->have_slack = TRUE;
}

static void
note_growth(HarkMediaJitter *j)
{
  if (j->grown > 0 && j->ticks - j->grown_at <= JITTERY_WITHIN)
    j->jittery_until = j->ticks + JITTERY_TICKS;
  j->grown++;
  j->grown_at = j->ticks;
}

gboolean
hark_media_jitter_tick(HarkMediaJitter *j, guint64 late_total)
{
  guint64 late = late_total >= j->late_seen ? late_total - j->late_seen : 0;
  j->late_seen = late_total;
  j->ticks++;
  guint before = j->target_ms, target = before, shrink_to = 0;
  if (late > 0 || (j->have_slack && j->worst_slack_ms < GUARD_MS)) {
    double missed = j->have_slack ? GUARD_MS - j->worst_slack_ms : 0;
    guint step =
      MAX(missed > 0 ? (guint)(missed + 0.999) + HEADROOM_MS : 0, late ? LATE_STEP_MS : 0);
    target = (guint)MIN((guint64)j->max_ms, (guint64)target + step);
    j->calm = 0;
    if (target != before)
      note_growth(j);
    j->target_ms = target;
  } else if (j->have_slack) {
    /* Never below what the worst buffer of this tick needed (and, on a jittery link, its
     * headroom). */
    double keep = j->ticks < j->jittery_until ? HEADROOM_MS : 0;
    double room = j->worst_slack_ms - GUARD_MS - keep;
    guint step = room > SHRINK_SHARE * SHRINK_MS ? (guint)(room / SHRINK_SHARE) : SHRINK_MS;
    if (++j->calm >= CALM_TICKS && room > SHRINK_MS && target > j->min_ms)
      shrink_to = MAX(j->min_ms, target - MIN(step, target));
  }
  j->have_slack = FALSE;
  guint floor = loss_floor(j);
  if (j->target_ms < floor) {
    j->target_ms = floor;
    j->raised++;
    shrink_to = 0;
  } else if (shrink_to != 0 && shrink_to < floor) {
    shrink_to = floor < j->target_ms ? floor : 0;
  }
  want_shrink(j, shrink_to);
  return j->target_ms != before;
}
