/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-media-jitter.c: the adaptive jitter-buffer policy (core/media-jitter.c) driven
 * with made-up observations: it starts where told, grows at once on a close call or a
 * late packet, stays within its bounds, shrinks only once things are calm, and then
 * comes back from a one-off stall within seconds, settles on a jittery link, shrinks
 * while sound plays only in a pause (or after 3 s without one); a loss keeps a packet's
 * room for a while; and the playback hears a change of its delay at once. */
#include "media-private.h"

/* n ticks in which every buffer came slack_ms early. */
static void
calm_ticks(HarkMediaJitter *j, guint n, double slack_ms)
{
  for (guint i = 0; i < n; i++) {
    hark_media_jitter_observe(j, slack_ms);
    hark_media_jitter_tick(j, j->late_seen);
  }
}

static void
test_grows_on_late_buffers(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 20, 10, 200);
  g_assert_cmpuint(j.target_ms, ==, 20);
  /* Buffers 15 ms early and one 13 ms late: grown by what it missed and headroom. */
  hark_media_jitter_observe(&j, 15);
  hark_media_jitter_observe(&j, -13);
  hark_media_jitter_observe(&j, 15);
  g_assert_true(hark_media_jitter_tick(&j, 0));
  g_assert_cmpuint(j.target_ms, >=, 20 + 13 + 2);
  g_assert_cmpuint(j.target_ms, <=, 20 + 13 + 2 + 10);
  /* A close call (1 ms early) also grows it. */
  guint before = j.target_ms;
  hark_media_jitter_observe(&j, 1);
  g_assert_true(hark_media_jitter_tick(&j, 0));
  g_assert_cmpuint(j.target_ms, >, before);
}

static void
test_grows_on_packets_given_up(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 20, 10, 200);
  hark_media_jitter_observe(&j, 10);
  g_assert_false(hark_media_jitter_tick(&j, 0));
  /* The jitter buffer counted 3 packets that came after it had given up on them. */
  hark_media_jitter_observe(&j, 10);
  g_assert_true(hark_media_jitter_tick(&j, 3));
  g_assert_cmpuint(j.target_ms, >, 20);
  /* The count is cumulative: the same total again is no news. */
  guint after = j.target_ms;
  hark_media_jitter_observe(&j, 10);
  hark_media_jitter_tick(&j, 3);
  g_assert_cmpuint(j.target_ms, ==, after);
}

static void
test_bounds(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 5, 10, 60);
  g_assert_cmpuint(j.target_ms, ==, 10); /* the start is clamped too */
  for (guint i = 0; i < 20; i++) {
    hark_media_jitter_observe(&j, -500);
    hark_media_jitter_tick(&j, 0);
  }
  g_assert_cmpuint(j.target_ms, ==, 60);
  calm_ticks(&j, 500, 1000);
  g_assert_cmpuint(j.target_ms, ==, 10);
  /* Fixed: min == max never moves. */
  hark_media_jitter_init(&j, 40, 40, 40);
  hark_media_jitter_observe(&j, -100);
  g_assert_false(hark_media_jitter_tick(&j, 99));
  g_assert_cmpuint(j.target_ms, ==, 40);
}

/* Every buffer of n ticks played slack_ms early plus whatever the target grew above base
 * (a steady stream: each buffer's room is what the target holds beyond its need). */
static void
steady_ticks(HarkMediaJitter *j, guint n, guint base, double slack_ms)
{
  for (guint i = 0; i < n; i++) {
    hark_media_jitter_observe(j, slack_ms + j->target_ms - (double)base);
    hark_media_jitter_tick(j, j->late_seen);
  }
}

static void
test_shrinks_after_a_stall(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 20, 10, 200);
  /* A steady stream 8 ms early at 20 ms, then a stall of 60 ms grows it past 80. */
  steady_ticks(&j, 2, 20, 8);
  g_assert_cmpuint(j.target_ms, ==, 20);
  hark_media_jitter_observe(&j, -60);
  hark_media_jitter_tick(&j, 0);
  g_assert_cmpuint(j.target_ms, >=, 80);
  /* Calm again: nothing for two seconds, then back to within 10 ms of where it was 4 s
   * later (1 ms a second would take a minute; a quarter of the room after five calm
   * seconds, 15 s)... */
  steady_ticks(&j, 2, 20, 8);
  g_assert_cmpuint(j.target_ms, >=, 80);
  steady_ticks(&j, 4, 20, 8);
  g_assert_cmpuint(j.target_ms, <=, 30);
  /* ...never below what the stream's buffers need (8 ms early at 20 ms: none comes
   * closer to its time than a close call). */
  steady_ticks(&j, 60, 20, 8);
  g_assert_cmpuint(j.target_ms, >=, 20 - 8 + 2);
}

/* Steady jitter (each packet 0-40 ms late, uniformly, 50 a second, 8 ms of work): the
 * delay settles above the spread and stays, instead of shrinking back to the edge and
 * growing again every few seconds (33 moves a minute before; each move is a gap or a
 * cut in what plays), and it stays near what the jitter needs. */
static void
test_steady_jitter_settles(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 20, 10, 200);
  g_autoptr(GRand) rand = g_rand_new_with_seed(16);
  guint close_calls_late = 0;
  for (guint tick = 0; tick < 60; tick++) {
    double worst = G_MAXDOUBLE;
    for (guint i = 0; i < 50; i++) {
      double slack = j.target_ms - 8 - g_rand_double_range(rand, 0, 40);
      worst = MIN(worst, slack);
      hark_media_jitter_observe(&j, slack);
    }
    if (tick >= 30 && worst < 2)
      close_calls_late++;
    hark_media_jitter_tick(&j, 0);
  }
  g_assert_cmpuint(j.grown + j.shrunk, <=, 15);
  g_assert_cmpuint(close_calls_late, <=, 1);
  g_assert_cmpuint(j.target_ms, >=, 48);
  g_assert_cmpuint(j.target_ms, <=, 62);
}

/* Two one-off stalls far apart are not a jittery link: after each the delay comes back
 * down to what the stream needs. */
static void
test_stalls_far_apart_shrink_back(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 20, 10, 200);
  steady_ticks(&j, 5, 20, 8);
  for (guint stall = 0; stall < 2; stall++) {
    hark_media_jitter_observe(&j, -60);
    hark_media_jitter_tick(&j, 0);
    g_assert_cmpuint(j.target_ms, >=, 80);
    steady_ticks(&j, 40, 20, 8);
    g_assert_cmpuint(j.target_ms, <=, 20 - 8 + 2 + 2);
  }
}

/* Sound plays (no pause): a shrink waits, the delay it plays at stays, and a pause lets it
 * in at once; it is counted when it goes in, not when it is decided again each second. */
static void
test_shrink_waits_for_a_pause(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 80, 10, 200);
  hark_media_jitter_hear(&j, FALSE, 0);
  calm_ticks(&j, 6, 50);
  g_assert_cmpuint(j.target_ms, ==, 80);
  g_assert_cmpuint(j.pending_ms, >, 10);
  g_assert_cmpuint(j.pending_ms, <, 80);
  g_assert_cmpuint(j.shrunk, ==, 0);
  g_assert_false(hark_media_jitter_poll(&j)); /* still sound */
  guint pending = j.pending_ms;
  hark_media_jitter_hear(&j, TRUE, 500 * 1000);
  g_assert_true(hark_media_jitter_poll(&j));
  g_assert_cmpuint(j.target_ms, ==, pending);
  g_assert_cmpuint(j.pending_ms, ==, 0);
  g_assert_cmpuint(j.shrunk, ==, 1);
}

/* A growth does not wait for a pause, and a close call drops the shrink that waited. */
static void
test_growth_does_not_wait(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 80, 10, 200);
  hark_media_jitter_hear(&j, FALSE, 0);
  calm_ticks(&j, 6, 50);
  g_assert_cmpuint(j.pending_ms, >, 0);
  hark_media_jitter_observe(&j, -10);
  g_assert_true(hark_media_jitter_tick(&j, 0));
  g_assert_cmpuint(j.target_ms, >, 80);
  g_assert_cmpuint(j.pending_ms, ==, 0);
  hark_media_jitter_hear(&j, TRUE, 1000 * 1000);
  g_assert_false(hark_media_jitter_poll(&j));
}

/* Sound without a pause (a tone, music): the shrink goes in 3 s after it was first
 * wanted, so the delay still comes down after a stall. */
static void
test_shrink_without_a_pause(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 80, 10, 200);
  gint64 now = 0;
  guint first_wanted = 0, went_in = 0;
  for (guint tick = 1; tick <= 10 && went_in == 0; tick++, now += G_USEC_PER_SEC) {
    hark_media_jitter_hear(&j, FALSE, now);
    calm_ticks(&j, 1, 50);
    if (first_wanted == 0 && j.pending_ms != 0)
      first_wanted = tick;
    if (j.target_ms < 80)
      went_in = tick;
  }
  g_assert_cmpuint(first_wanted, >, 0);
  g_assert_cmpuint(went_in, ==, first_wanted + 3);
  g_assert_cmpuint(j.shrunk, ==, 1);
}

static void
test_shrinks_slowly(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 80, 10, 200);
  /* Two calm seconds change nothing; then by a part of the room left. */
  calm_ticks(&j, 2, 50);
  g_assert_cmpuint(j.target_ms, ==, 80);
  calm_ticks(&j, 10, 50);
  g_assert_cmpuint(j.target_ms, <, 80);
  /* Not while buffers come close to their time... */
  guint now = j.target_ms;
  calm_ticks(&j, 10, 2.5);
  g_assert_cmpuint(j.target_ms, ==, now);
  /* ...and a close call restarts the calm count. */
  hark_media_jitter_observe(&j, 0.5);
  hark_media_jitter_tick(&j, 0);
  now = j.target_ms;
  calm_ticks(&j, 2, 50);
  g_assert_cmpuint(j.target_ms, ==, now);
  /* No observations (nothing received): nothing changes. */
  for (guint i = 0; i < 20; i++)
    g_assert_false(hark_media_jitter_tick(&j, 0));
}

/* The playback keeps its audio whole while the delay holds (a buffer due a few samples
 * off where the last one ended goes right after it: no click), and plays a new delay at
 * once: a shrink of 2 ms is 2 ms less delay now, not once it has added up to 5. */
static void
test_playback_follows_the_delay(void)
{
  const gint64 align = 240; /* 5 ms at 48 kHz */
  /* The first buffer, and one after a gap: where due. */
  g_assert_cmpint(hark_media_pulse_place(1000, FALSE, 0, align, FALSE), ==, 1000);
  g_assert_cmpint(hark_media_pulse_place(5000, TRUE, 1960, align, FALSE), ==, 5000);
  /* The clocks a little apart: right after the last buffer, either way. */
  g_assert_cmpint(hark_media_pulse_place(1950, TRUE, 1960, align, FALSE), ==, 1960);
  g_assert_cmpint(hark_media_pulse_place(1970, TRUE, 1960, align, FALSE), ==, 1960);
  /* The jitter buffer's delay shrank by 2 ms (96 samples): due earlier, and played so. */
  g_assert_cmpint(hark_media_pulse_place(1960 - 96, TRUE, 1960, align, TRUE), ==, 1960 - 96);
  /* ...or grew by 2 ms: a gap of 2 ms, where due. */
  g_assert_cmpint(hark_media_pulse_place(1960 + 96, TRUE, 1960, align, TRUE), ==, 1960 + 96);
}

/* calm_ticks() one a second from second `from`, the policy's clock moving with them. */
static void
calm_seconds(HarkMediaJitter *j, int from, int n, double slack_ms)
{
  for (int i = from; i < from + n; i++) {
    hark_media_jitter_hear(j, TRUE, (gint64)i * G_USEC_PER_SEC);
    calm_ticks(j, 1, slack_ms);
  }
}

/* A loss holds the delay at a packet and the headroom (20 + 5 ms) for 10 s, so that the
 * packet after it is in the buffer when the loss is declared and the rebuild from its
 * FEC plays in time; calm seconds meanwhile shrink it no further, and once the losses
 * stop it comes back down. Stretches longer than two 20 ms packets set nothing, and a
 * fixed delay stays fixed. */
static void
test_loss_keeps_a_packet_of_room(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 10, 10, 200);
  hark_media_jitter_hear(&j, TRUE, 0);
  hark_media_jitter_lost(&j, 20, 0);
  g_assert_true(hark_media_jitter_tick(&j, 0));
  g_assert_cmpuint(j.target_ms, ==, 25);
  g_assert_cmpuint(j.raised, ==, 1);
  calm_seconds(&j, 1, 8, 60);
  g_assert_cmpuint(j.target_ms, ==, 25);
  hark_media_jitter_lost(&j, 20, 8 * G_USEC_PER_SEC); /* the losses go on */
  calm_seconds(&j, 9, 9, 60);
  g_assert_cmpuint(j.target_ms, ==, 25);
  calm_seconds(&j, 18, 10, 60); /* 10 s after the last */
  g_assert_cmpuint(j.target_ms, ==, 10);

  hark_media_jitter_init(&j, 10, 10, 200);
  hark_media_jitter_hear(&j, TRUE, 0);
  hark_media_jitter_lost(&j, 60, 0);
  g_assert_false(hark_media_jitter_tick(&j, 0));
  g_assert_cmpuint(j.target_ms, ==, 10);

  hark_media_jitter_init(&j, 15, 15, 15);
  hark_media_jitter_hear(&j, TRUE, 0);
  hark_media_jitter_lost(&j, 20, 0);
  g_assert_false(hark_media_jitter_tick(&j, 0));
  g_assert_cmpuint(j.target_ms, ==, 15);
}

/* A shrink decided before a loss, waiting for a pause, goes in no further than the loss's
 * floor. */
static void
test_shrink_stops_at_the_loss_floor(void)
{
  HarkMediaJitter j;
  hark_media_jitter_init(&j, 80, 10, 200);
  hark_media_jitter_hear(&j, FALSE, 0); /* sound plays: a shrink waits */
  calm_ticks(&j, 6, 150);
  g_assert_cmpuint(j.pending_ms, ==, 10);
  hark_media_jitter_lost(&j, 20, 0);
  hark_media_jitter_hear(&j, TRUE, G_USEC_PER_SEC);
  g_assert_true(hark_media_jitter_poll(&j));
  g_assert_cmpuint(j.target_ms, ==, 25);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/media-jitter/grows-on-late-buffers", test_grows_on_late_buffers);
  g_test_add_func("/media-jitter/grows-on-packets-given-up", test_grows_on_packets_given_up);
  g_test_add_func("/media-jitter/bounds", test_bounds);
  g_test_add_func("/media-jitter/shrinks-slowly", test_shrinks_slowly);
  g_test_add_func("/media-jitter/shrinks-after-a-stall", test_shrinks_after_a_stall);
  g_test_add_func("/media-jitter/steady-jitter-settles", test_steady_jitter_settles);
  g_test_add_func("/media-jitter/shrink-waits-for-a-pause", test_shrink_waits_for_a_pause);
  g_test_add_func("/media-jitter/growth-does-not-wait", test_growth_does_not_wait);
  g_test_add_func("/media-jitter/shrink-without-a-pause", test_shrink_without_a_pause);
  g_test_add_func("/media-jitter/stalls-far-apart-shrink-back", test_stalls_far_apart_shrink_back);
  g_test_add_func("/media-jitter/playback-follows-the-delay", test_playback_follows_the_delay);
  g_test_add_func("/media-jitter/loss-keeps-a-packet-of-room", test_loss_keeps_a_packet_of_room);
  g_test_add_func("/media-jitter/shrink-stops-at-the-loss-floor",
                  test_shrink_stops_at_the_loss_floor);
  return g_test_run();
}
