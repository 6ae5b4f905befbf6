/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-conference-host.c: the succession's order (core/conference/conference-host.c,
 * docs/protocol.md "Conferences: the host and its succession"): a member that opted out
 * is never named; one whose facts came goes before one whose did not; then the NAT
 * (open, cone, unknown, symmetric, UDP blocked), the idle cores (whole cores, at most 8
 * counted), the RTT in 50 ms steps (the host's leg's, else the member's own, unknown as
 * 100-149 ms) and the name decide, and small differences within a step do not reorder.
 * The same facts in any order give the same list. */
#include "conference-private.h"

#include <string.h>

static const guint8 id[HARK_CONFERENCE_ID_SIZE] = { 0 };

static HarkConferenceSignal *
facts(HarkConferenceNat nat, gboolean may_host, guint32 cores, guint32 load, guint32 rtt_ms)
{
  HarkConferenceSignal *s = hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_FACTS, id);
  s->has_facts = TRUE;
  s->nat = nat;
  s->may_host = may_host;
  s->cores = cores;
  s->load = load;
  s->rtt_ms = rtt_ms;
  return s;
}

typedef struct {
  const char *user;
  HarkConferenceSignal *facts; /* owned; NULL: none came */
  guint32 rtt_ms; /* the host's leg's */
} Member;

/* The users of members (n), ranked, as one space-separated string; the input is taken
 * in the given order and again reversed, which must give the same. */
static char *
ranked(const Member *members, guint n)
{
  char *orders[2];
  for (guint pass = 0; pass < 2; pass++) {
    g_autoptr(GArray) candidates = g_array_new(FALSE, TRUE, sizeof(ConferenceCandidate));
    for (guint i = 0; i < n; i++) {
      const Member *m = &members[pass == 0 ? i : n - 1 - i];
      ConferenceCandidate c = { m->user, "00", m->facts, m->rtt_ms };
      g_array_append_val(candidates, c);
    }
    hark_conference_succession_order(candidates);
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < candidates->len; i++)
      g_string_append_printf(out, "%s%s", i > 0 ? " " : "",
                             g_array_index(candidates, ConferenceCandidate, i).user);
    orders[pass] = g_string_free(out, FALSE);
  }
  g_assert_cmpstr(orders[0], ==, orders[1]);
  g_free(orders[1]);
  return orders[0];
}

static void
members_clear(Member *members, guint n)
{
  for (guint i = 0; i < n; i++)
    hark_conference_signal_free(members[i].facts);
}

static void
test_keys_in_order(void)
{
  Member m[] = {
    /* opted out: never named, however good */
    { "amy", facts(HARK_CONFERENCE_NAT_OPEN, FALSE, 16, 0, 1), 1 },
    /* no facts: last */
    { "ben", NULL, 1 },
    /* the NAT first: udp-blocked and symmetric after unknown, cone, open */
    { "cat", facts(HARK_CONFERENCE_NAT_UDP_BLOCKED, TRUE, 16, 0, 1), 1 },
    { "dan", facts(HARK_CONFERENCE_NAT_SYMMETRIC, TRUE, 16, 0, 1), 1 },
    { "eve", facts(HARK_CONFERENCE_NAT_UNKNOWN, TRUE, 1, 0, 400), 400 },
    { "fay", facts(HARK_CONFERENCE_NAT_CONE, TRUE, 2, 150, 10), 10 },
    /* open: then the idle cores (4 - 1.2 = 2 whole cores beats 1), then the RTT */
    { "gus", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 4, 120, 300), 300 },
    { "hal", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 2, 50, 5), 5 },
    { "ivy", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 4, 150, 20), 20 },
  };
  g_autofree char *order = ranked(m, G_N_ELEMENTS(m));
  /* gus and ivy both have 2 idle cores: ivy's RTT (20 ms) is in a lower step. */
  g_assert_cmpstr(order, ==, "ivy gus hal fay eve dan cat ben");
  members_clear(m, G_N_ELEMENTS(m));
}

static void
test_coarse_steps(void)
{
  /* Within one RTT step (0-49 ms) and one whole idle core, the name decides: noise in
   * the load or the RTT does not reorder the list. */
  Member m[] = {
    { "zed", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 2, 90, 3), 3 },
    { "bob", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 2, 10, 48), 48 },
    { "kim", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 2, 50, 0), 0 }, /* RTT unknown: 100-149 */
    { "lea", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 2, 50, 120), 0 }, /* the host's unknown: hers */
    { "max", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 64, 0, 1), 1 }, /* 64 idle count as 8 */
    { "ned", facts(HARK_CONFERENCE_NAT_OPEN, TRUE, 9, 50, 1), 1 }, /* 8.5 idle: 8 */
  };
  g_autofree char *order = ranked(m, G_N_ELEMENTS(m));
  g_assert_cmpstr(order, ==, "max ned bob zed kim lea");
  members_clear(m, G_N_ELEMENTS(m));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/conference-host/keys-in-order", test_keys_in_order);
  g_test_add_func("/conference-host/coarse-steps", test_coarse_steps);
  return g_test_run();
}
