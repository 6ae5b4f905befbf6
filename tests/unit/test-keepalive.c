/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-keepalive.c: the SN link's keep-alive decision (overlay-keepalive.c) on a simulated
 * clock: the client's timer wakes when the decision says, messages arrive and leave at
 * simulated times, an SN answers PINGs after a round trip until it vanishes. Cases: a
 * busy link sends no PING in an hour; an idle one one per keepalive; traffic one way
 * only still lets the SN hear from the client; a vanished SN is noticed within
 * keepalive + keepalive_timeout, which the defaults keep within the 30 s; the
 * SN's bound on a silent client is within 60 s and never shorter than a live client's
 * probing allows; an SN's JOIN_OK.keepalive below network.keepalive_floor (a hostile SN
 * asking for a PING every second) is raised to the floor, the client's own setting is
 * not, and an SN with a short keepalive of its own still keeps such clients. */
#include "overlay-private.h"

#define MS ((gint64)1000)
#define S ((gint64)G_USEC_PER_SEC)
#define TICK (10 * MS)
#define RTT (50 * MS)

typedef struct Sim Sim;
struct Sim {
  gint64 silence, timeout;
  gint64 last_in, last_out, probe_at;
  gint64 pong_at; /* a PONG on its way, 0 none */
  gint64 sn_gone_at; /* the SN answers nothing from then on (0: never) */
  guint probes;
  gint64 dead_at; /* when the client gave the SN up, 0 not */
  /* Called every tick: the traffic that flows anyway (may set last_in / last_out). */
  void (*traffic)(Sim *sim, gint64 now);
};

static gboolean
sn_alive(const Sim *sim, gint64 now)
{
  return sim->sn_gone_at == 0 || now < sim->sn_gone_at;
}

/* Runs the client's keep-alive from 0 to end; the link came up at 0 (JOIN, JOIN_OK). */
static void
sim_run(Sim *sim, gint64 end)
{
  gint64 next = 0; /* attached: the decision is taken at once */
  for (gint64 now = 0; now <= end && sim->dead_at == 0; now += TICK) {
    if (sim->traffic != NULL)
      sim->traffic(sim, now);
    if (sim->pong_at != 0 && now >= sim->pong_at) {
      sim->last_in = now;
      sim->pong_at = 0;
    }
    if (now < next)
      continue;
    switch (hark_overlay_keepalive_step(sim->silence, sim->timeout, sim->last_in, sim->last_out,
                                        &sim->probe_at, now, &next)) {
    case KEEPALIVE_WAIT:
      g_assert_cmpint(next, >, now);
      break;
    case KEEPALIVE_PROBE:
      sim->probes++;
      sim->last_out = now;
      sim->probe_at = now;
      if (sn_alive(sim, now + RTT / 2))
        sim->pong_at = now + RTT;
      g_assert_cmpint(next, >, now);
      break;
    case KEEPALIVE_DEAD:
      sim->dead_at = now;
      break;
    }
  }
}

static Sim
sim_default(void)
{
  g_autoptr(HarkConfig) config = hark_config_new_default();
  return (Sim){ .silence = config->keepalive * S, .timeout = config->keepalive_timeout * S };
}

/* A call's signalling or a chat: a message each way every 3 s. */
static void
busy_both_ways(Sim *sim, gint64 now)
{
  if (now % (3 * S) == 0) {
    sim->last_out = now;
    if (sn_alive(sim, now))
      sim->last_in = now;
  }
}

static void
test_busy_link_sends_no_ping(void)
{
  Sim sim = sim_default();
  sim.traffic = busy_both_ways;
  sim_run(&sim, 3600 * S);
  g_assert_cmpuint(sim.probes, ==, 0);
  g_assert_cmpint(sim.dead_at, ==, 0);
}

/* Idle: one PING (and its PONG) per keepalive, nothing more, never a false alarm. */
static void
test_idle_link_pings_once_per_interval(void)
{
  Sim sim = sim_default();
  sim_run(&sim, 3600 * S);
  g_assert_cmpint(sim.dead_at, ==, 0);
  guint expected = (guint)(3600 * S / sim.silence);
  g_test_message("idle hour: %u PINGs at keepalive %" G_GINT64_FORMAT " s", sim.probes,
                 sim.silence / S);
  g_assert_cmpuint(sim.probes, >=, expected - 1);
  g_assert_cmpuint(sim.probes, <=, expected);
}

/* The SN sends every second (SN lists, tunnel data), the client nothing: the client still
 * PINGs once per keepalive, so that the SN, which judges it by what it hears, keeps it. */
static void
sn_talks_alone(Sim *sim, gint64 now)
{
  if (now % S == 0 && sn_alive(sim, now))
    sim->last_in = now;
}

static void
test_one_way_traffic_still_probes(void)
{
  Sim sim = sim_default();
  sim.traffic = sn_talks_alone;
  sim_run(&sim, 600 * S);
  g_assert_cmpint(sim.dead_at, ==, 0);
  g_assert_cmpuint(sim.probes, >=, (guint)(600 * S / sim.silence) - 1);
}

/* The client talks, the SN vanished (its last message at 100 s): the client's own
 * messages do not hide the silence. */
static void
client_talks_alone(Sim *sim, gint64 now)
{
  if (now % S == 0)
    sim->last_out = now;
  busy_both_ways(sim, now);
}

/* The worst case: the SN's last message arrives, the SN vanishes right after. Whatever
 * the traffic before, the client gives it up within keepalive + keepalive_timeout. */
static void
check_vanished_sn(void (*traffic)(Sim *, gint64), gint64 gone_at)
{
  Sim sim = sim_default();
  sim.traffic = traffic;
  sim.sn_gone_at = gone_at;
  sim_run(&sim, gone_at + 120 * S);
  g_assert_cmpint(sim.dead_at, >, gone_at);
  gint64 took = sim.dead_at - MAX(sim.last_in, 0);
  g_test_message("SN gone at %.2f s, last message at %.2f s, given up at %.2f s", gone_at / 1e6,
                 sim.last_in / 1e6, sim.dead_at / 1e6);
  g_assert_cmpint(took, <=, sim.silence + sim.timeout + TICK);
  g_assert_cmpint(sim.dead_at - gone_at, <=, sim.silence + sim.timeout + TICK);
}

static void
test_vanished_sn_noticed(void)
{
  Sim defaults = sim_default();
  /* The bound: within 30 s the client has moved on (the join that follows takes
   * a round trip or two on top: see docs/architecture.md "Attached"). */
  g_assert_cmpint(defaults.silence + defaults.timeout, <=, 28 * S);
  check_vanished_sn(NULL, 100 * S); /* idle */
  check_vanished_sn(NULL, 100 * S + RTT); /* right after a PONG */
  check_vanished_sn(busy_both_ways, 100 * S + RTT); /* a busy link */
  check_vanished_sn(client_talks_alone, 100 * S); /* only the client still talks */
  check_vanished_sn(sn_talks_alone, 100 * S + 1); /* right after its last message */
}

/* A PING answered late, but within the timeout, is no failure; anything arriving counts
 * as the answer, the PONG or not. */
static void
test_answer_within_timeout(void)
{
  gint64 probe_at = 0, next = 0;
  gint64 silence = 20 * S, timeout = 8 * S;
  g_assert_cmpint(hark_overlay_keepalive_step(silence, timeout, 0, 0, &probe_at, 19 * S, &next), ==,
                  KEEPALIVE_WAIT);
  g_assert_cmpint(next, ==, 20 * S);
  g_assert_cmpint(hark_overlay_keepalive_step(silence, timeout, 0, 0, &probe_at, 20 * S, &next), ==,
                  KEEPALIVE_PROBE);
  probe_at = 20 * S;
  g_assert_cmpint(
    hark_overlay_keepalive_step(silence, timeout, 0, 20 * S, &probe_at, 25 * S, &next), ==,
    KEEPALIVE_WAIT);
  g_assert_cmpint(next, ==, 28 * S);
  /* An SN_LIST at 27.9 s, no PONG: alive; the next PING 20 s after the PING went. */
  gint64 last_in = 27 * S + 900 * MS;
  g_assert_cmpint(
    hark_overlay_keepalive_step(silence, timeout, last_in, 20 * S, &probe_at, 28 * S, &next), ==,
    KEEPALIVE_WAIT);
  g_assert_cmpint(probe_at, ==, 0);
  g_assert_cmpint(next, ==, 40 * S);
  /* Nothing after the next PING: dead exactly at its timeout, not before. */
  probe_at = 40 * S;
  g_assert_cmpint(
    hark_overlay_keepalive_step(silence, timeout, last_in, 40 * S, &probe_at, 48 * S - 1, &next),
    ==, KEEPALIVE_WAIT);
  g_assert_cmpint(
    hark_overlay_keepalive_step(silence, timeout, last_in, 40 * S, &probe_at, 48 * S, &next), ==,
    KEEPALIVE_DEAD);
}

/* The SN's side: a client that vanished is dropped within 60 s (the limit, plus the sweep
 * every keepalive_timeout), and a live client, which sends a PING after keepalive s of
 * silence and may wait keepalive_timeout for its answer, is never dropped. */
/* A timeout longer than the silence (as the integration tests configure): still one PING
 * per silence on an idle link, not one per timeout. */
static void
test_timeout_longer_than_silence(void)
{
  Sim sim = { .silence = 1 * S, .timeout = 2 * S };
  sim_run(&sim, 60 * S);
  g_assert_cmpint(sim.dead_at, ==, 0);
  g_assert_cmpuint(sim.probes, >=, 59);
  g_assert_cmpuint(sim.probes, <=, 60);
}

static void
test_sn_bound(void)
{
  g_autoptr(HarkConfig) config = hark_config_new_default();
  gint64 limit = hark_overlay_client_silence_limit_us(config);
  gint64 sweep = config->keepalive_timeout * S;
  g_assert_cmpint(limit + sweep, <=, 60 * S);
  g_assert_cmpint(limit, >=, (config->keepalive + config->keepalive_timeout) * S);
  /* A client with a longer keepalive of its own takes the SN's (JOIN_OK): the bound
   * holds for it too. */
  g_assert_cmpint(limit, >, config->keepalive * S);
}

/* A hostile SN answers JOIN_OK with keepalive 1: an idle hour costs the client one PING
 * per floor (10 s), not one a second. */
static void
test_sn_keepalive_floored(void)
{
  g_autoptr(HarkConfig) config = hark_config_new_default();
  g_assert_cmpint(config->keepalive_floor, ==, 10);
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 1), ==, 10);
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 9), ==, 10);
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 15), ==, 15);
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 300), ==, 20);
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 0), ==, 20);
  Sim sim = { .silence = hark_overlay_keepalive_choose(config, 1) * S,
              .timeout = config->keepalive_timeout * S };
  sim_run(&sim, 3600 * S);
  g_test_message("idle hour behind an SN asking for 1 s: %u PINGs", sim.probes);
  g_assert_cmpuint(sim.probes, <=, 360);
  g_assert_cmpuint(sim.probes, >=, 359);
  g_assert_cmpint(sim.dead_at, ==, 0);
}

/* The floor is on what the SN asks, not on the user's own choice (the loopback tests
 * PING every second on purpose). */
static void
test_own_keepalive_below_floor_kept(void)
{
  g_autoptr(HarkConfig) config = hark_config_new_default();
  config->keepalive = 2;
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 1), ==, 2);
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 30), ==, 2);
  config->keepalive_floor = 1;
  g_assert_cmpuint(hark_overlay_keepalive_choose(config, 1), ==, 1);
}

/* An SN whose own keepalive is below the floor hands it in JOIN_OK, but its clients PING
 * only every floor s: its sweep must wait for that, or it would drop every live client. */
static void
test_sn_bound_with_short_keepalive(void)
{
  g_autoptr(HarkConfig) sn = hark_config_new_default();
  sn->keepalive = 2;
  g_autoptr(HarkConfig) client = hark_config_new_default();
  guint client_s = hark_overlay_keepalive_choose(client, (guint32)sn->keepalive);
  gint64 limit = hark_overlay_client_silence_limit_us(sn);
  g_assert_cmpint(limit, >=, ((gint64)client_s + client->keepalive_timeout) * S);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/keepalive/busy-link-sends-no-ping", test_busy_link_sends_no_ping);
  g_test_add_func("/keepalive/idle-link-pings-once-per-interval",
                  test_idle_link_pings_once_per_interval);
  g_test_add_func("/keepalive/one-way-traffic-still-probes", test_one_way_traffic_still_probes);
  g_test_add_func("/keepalive/vanished-sn-noticed", test_vanished_sn_noticed);
  g_test_add_func("/keepalive/answer-within-timeout", test_answer_within_timeout);
  g_test_add_func("/keepalive/timeout-longer-than-silence", test_timeout_longer_than_silence);
  g_test_add_func("/keepalive/sn-bound", test_sn_bound);
  g_test_add_func("/keepalive/sn-keepalive-floored", test_sn_keepalive_floored);
  g_test_add_func("/keepalive/own-keepalive-below-floor-kept", test_own_keepalive_below_floor_kept);
  g_test_add_func("/keepalive/sn-bound-with-short-keepalive", test_sn_bound_with_short_keepalive);
  return g_test_run();
}
