/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-conference-signal.c: conference signals (core/conference/conference-signal.c) as
 * a hostile peer could send them, for the fields of the host's succession and the
 * members' facts: a roster with a succession and a facts signal go through build and
 * parse unchanged; a succession that names a non-member, the host, someone twice or a
 * device that is not 64 lower-case hex digits is refused, as is one outside a roster;
 * a facts signal missing a required field, with a value beyond its limit or an unknown
 * NAT is refused naming the field, and facts in another type of signal are refused. */
#include "conference-signal-check.h"

#define DEV_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DEV_C "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define ROSTER "{'type': <'roster'>, " ID ", 'version': <uint32 3>, " CALL ", " \
  "'roster': <[('alice', 'host'), ('bob', 'connected'), ('carol', 'connected')]>"
#define FACTS "{'type': <'facts'>, " ID

static void
test_round_trip(void)
{
  g_autoptr(HarkConferenceSignal) roster =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_ROSTER, conf_id);
  roster->version = 4;
  roster->has_call = TRUE;
  memset(roster->call, 7, sizeof roster->call);
  hark_conference_signal_add(roster, "alice", "host");
  hark_conference_signal_add(roster, "bob", "connected");
  hark_conference_signal_add(roster, "carol", "connected");
  hark_conference_signal_add_successor(roster, "carol", DEV_C);
  hark_conference_signal_add_successor(roster, "bob", DEV_B);
  assert_round_trip(roster);

  g_autoptr(HarkConferenceSignal) facts = hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_FACTS, conf_id);
  facts->has_facts = TRUE;
  facts->nat = HARK_CONFERENCE_NAT_SYMMETRIC;
  facts->may_host = TRUE;
  facts->cores = 8;
  facts->load = 375;
  facts->rtt_ms = 42;
  assert_round_trip(facts);
  /* A different order is another succession. */
  g_autoptr(HarkConferenceSignal) other = parse_text(
    ROSTER ", 'succession': <[('bob', '" DEV_B "'), ('carol', '" DEV_C "')]>}", NULL);
  g_assert_nonnull(other);
  other->version = 4;
  memset(other->call, 7, sizeof other->call);
  g_assert_false(hark_conference_signal_equal(roster, other));
}

static void
test_succession_refused(void)
{
  /* Names are taken canonical: BOB is bob. */
  g_autoptr(HarkConferenceSignal) ok = parse_text(
    ROSTER ", 'succession': <[('BOB', '" DEV_B "')]>}", NULL);
  g_assert_nonnull(ok);
  g_assert_cmpstr(g_array_index(ok->succession, HarkConferenceSuccessor, 0).user, ==, "bob");
  assert_refused(ROSTER ", 'succession': <[('dave', '" DEV_B "')]>}", "succession");
  assert_refused(ROSTER ", 'succession': <[('alice', '" DEV_B "')]>}", "succession");
  assert_refused(ROSTER ", 'succession': <[('bob', '" DEV_B "'), ('bob', '" DEV_C "')]>}",
                 "succession");
  assert_refused(ROSTER ", 'succession': <[('bob', '0123')]>}", "succession");
  assert_refused(ROSTER ", 'succession': <[('bob', '" "0123456789ABCDEF0123456789abcdef"
                        "0123456789abcdef0123456789abcdef" "')]>}",
                 "succession");
  assert_refused(ROSTER ", 'succession': <[('bob\\n', '" DEV_B "')]>}", "succession");
  assert_refused(ROSTER ", 'succession': <['bob']>}", "succession");
  assert_refused("{'type': <'join'>, " ID ", 'succession': <@a(ss) []>}", "succession");
}

static void
test_facts_refused(void)
{
  g_autoptr(HarkConferenceSignal) ok = parse_text(
    FACTS ", 'nat': <'open'>, 'may_host': <false>, 'cores': <uint32 1>, 'load': <uint32 0>}",
    NULL);
  g_assert_nonnull(ok);
  g_assert_true(ok->has_facts);
  g_assert_false(ok->may_host);
  g_assert_cmpuint(ok->rtt_ms, ==, 0);
  assert_refused(FACTS ", 'may_host': <true>, 'cores': <uint32 1>, 'load': <uint32 0>}", "nat");
  assert_refused(FACTS ", 'nat': <'open'>, 'cores': <uint32 1>, 'load': <uint32 0>}", "may_host");
  assert_refused(FACTS ", 'nat': <'open'>, 'may_host': <true>, 'load': <uint32 0>}", "cores");
  assert_refused(FACTS ", 'nat': <'open'>, 'may_host': <true>, 'cores': <uint32 1>}", "load");
  assert_refused(FACTS ", 'nat': <'full-cone'>, 'may_host': <true>, 'cores': <uint32 1>, "
                       "'load': <uint32 0>}",
                 "nat");
  assert_refused(FACTS ", 'nat': <'open'>, 'may_host': <true>, 'cores': <uint32 0>, "
                       "'load': <uint32 0>}",
                 "cores");
  assert_refused(FACTS ", 'nat': <'open'>, 'may_host': <true>, 'cores': <uint32 4097>, "
                       "'load': <uint32 0>}",
                 "cores");
  assert_refused(FACTS ", 'nat': <'open'>, 'may_host': <true>, 'cores': <uint32 1>, "
                       "'load': <uint32 1000001>}",
                 "load");
  assert_refused(FACTS ", 'nat': <'open'>, 'may_host': <true>, 'cores': <uint32 1>, "
                       "'load': <uint32 0>, 'rtt_ms': <uint32 60001>}",
                 "rtt_ms");
  assert_refused(FACTS ", 'nat': <'open'>, 'may_host': <'yes'>, 'cores': <uint32 1>, "
                       "'load': <uint32 0>}",
                 "may_host");
  /* Facts belong in a facts signal only. */
  assert_refused(ROSTER ", 'nat': <'open'>}", "nat");
  assert_refused(ROSTER ", 'cores': <uint32 2>}", "nat");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/conference-signal/round-trip", test_round_trip);
  g_test_add_func("/conference-signal/succession-refused", test_succession_refused);
  g_test_add_func("/conference-signal/facts-refused", test_facts_refused);
  return g_test_run();
}
