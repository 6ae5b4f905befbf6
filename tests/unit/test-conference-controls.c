/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-conference-controls.c: the conference signals of the controls (INVITE, MUTE,
 * SPEAKER, a ROSTER's "muted"; core/conference/conference-signal.c) as a hostile peer
 * could send them. Each goes through build and parse unchanged; a field a type needs,
 * taken away, is refused with an error naming it, and so is a field the type does not
 * carry, a muted member who is not in the roster or is named twice, a muter other than
 * "self" or "host", and a user that is no user name. */
#include "conference-signal-check.h"

#define ROSTER "'roster': <[('alice', 'host'), ('bob', 'connected')]>"

static void
test_round_trip(void)
{
  g_autoptr(HarkConferenceSignal) roster =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_ROSTER, conf_id);
  roster->version = 3;
  roster->has_call = TRUE;
  hark_conference_signal_add(roster, "alice", "host");
  hark_conference_signal_add(roster, "bob", "connected");
  hark_conference_signal_add(roster, "carol", "connected");
  hark_conference_signal_add_muted(roster, "carol", "host");
  hark_conference_signal_add_muted(roster, "alice", "self");
  assert_round_trip(roster);
  g_assert_cmpstr(hark_conference_signal_muted_by(roster, "carol"), ==, "host");
  g_assert_null(hark_conference_signal_muted_by(roster, "bob"));

  g_autoptr(HarkConferenceSignal) invite =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_INVITE, conf_id);
  invite->user = g_strdup("dave");
  assert_round_trip(invite);
  g_autoptr(HarkConferenceSignal) mute =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_MUTE, conf_id);
  assert_round_trip(mute); /* unmuted: "mute" false is sent all the same */
  mute->mute = TRUE;
  assert_round_trip(mute);
  g_autoptr(HarkConferenceSignal) speaker =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_SPEAKER, conf_id);
  speaker->version = 9;
  assert_round_trip(speaker); /* nobody talks */
  speaker->user = g_strdup("bob");
  assert_round_trip(speaker);
}

static void
test_refused(void)
{
  /* what a type needs */
  assert_refused("{'type': <'invite'>, " ID "}", "user");
  assert_refused("{'type': <'mute'>, " ID "}", "mute");
  assert_refused("{'type': <'speaker'>, " ID ", 'user': <'bob'>}", "version");
  /* what a type does not carry */
  assert_refused("{'type': <'join'>, " ID ", 'user': <'bob'>}", "user");
  assert_refused("{'type': <'invite'>, " ID ", 'user': <'bob'>, 'mute': <true>}", "mute");
  assert_refused("{'type': <'end'>, " ID ", 'version': <uint32 2>, 'muted': <[('bob', 'host')]>}",
                 "muted");
  /* values */
  assert_refused("{'type': <'invite'>, " ID ", 'user': <'not a name!'>}", "user");
  assert_refused("{'type': <'invite'>, " ID ", 'user': <uint32 5>}", "user");
  assert_refused("{'type': <'mute'>, " ID ", 'mute': <'yes'>}", "mute");
  const char *roster = "{'type': <'roster'>, " ID ", 'version': <uint32 2>, " CALL ", " ROSTER;
  g_autofree char *stranger = g_strdup_printf("%s, 'muted': <[('erin', 'host')]>}", roster);
  assert_refused(stranger, "muted");
  g_autofree char *twice =
    g_strdup_printf("%s, 'muted': <[('bob', 'host'), ('bob', 'self')]>}", roster);
  assert_refused(twice, "muted");
  g_autofree char *by = g_strdup_printf("%s, 'muted': <[('bob', 'erin')]>}", roster);
  assert_refused(by, "muted");
  g_autofree char *empty = g_strdup_printf("%s, 'muted': <@a(ss) []>}", roster);
  assert_refused(empty, "muted");
  /* and what is fine: a muted member's name is canonical as the roster's */
  g_autofree char *fine = g_strdup_printf("%s, 'muted': <[('Bob', 'self')]>}", roster);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConferenceSignal) s = parse_text(fine, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(hark_conference_signal_muted_by(s, "bob"), ==, "self");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/conference-controls/round-trip", test_round_trip);
  g_test_add_func("/conference-controls/refused", test_refused);
  return g_test_run();
}
