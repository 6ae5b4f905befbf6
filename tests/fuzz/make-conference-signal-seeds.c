/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-conference-signal-seeds.c: writes fuzz-conference-signal's seeds, one body of each
 * signal type with every field it carries, into the directory given; each is parsed
 * first, so only signals the parser takes become seeds:
 *   ninja -C build tests/fuzz/make-conference-signal-seeds
 *   build/tests/fuzz/make-conference-signal-seeds tests/fuzz/corpus/conference-signal */
#include "conference-signal.h"

#define ID "'id': <[byte 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]>"
#define DEVICE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CALL "'call': <[byte 9, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8]>"

static const char *const seeds[HARK_CONFERENCE_SIGNAL_N_TYPES] = {
  [HARK_CONFERENCE_SIGNAL_ROSTER] = "{'type': <'roster'>, " ID ", 'version': <uint32 3>, " CALL
    ", 'roster': <[('alice', 'host'), ('bob', 'connected'), ('carol', 'calling'), "
    "('dave', 'left')]>, 'muted': <[('bob', 'self'), ('alice', 'host')]>, "
    "'succession': <[('bob', '" DEVICE "')]>}",
  [HARK_CONFERENCE_SIGNAL_END] = "{'type': <'end'>, " ID ", 'version': <uint32 4>, "
    "'reason': <'ended by the host'>}",
  [HARK_CONFERENCE_SIGNAL_JOIN] = "{'type': <'join'>, " ID "}",
  [HARK_CONFERENCE_SIGNAL_REFUSED] = "{'type': <'refused'>, " ID ", 'reason': <'not in the roster'>}",
  [HARK_CONFERENCE_SIGNAL_INVITE] = "{'type': <'invite'>, " ID ", 'user': <'dave'>}",
  [HARK_CONFERENCE_SIGNAL_MUTE] = "{'type': <'mute'>, " ID ", 'mute': <true>}",
  [HARK_CONFERENCE_SIGNAL_SPEAKER] = "{'type': <'speaker'>, " ID ", 'version': <uint32 7>, "
    "'user': <'carol'>}",
  [HARK_CONFERENCE_SIGNAL_FACTS] = "{'type': <'facts'>, " ID ", 'nat': <'cone'>, "
    "'may_host': <true>, 'cores': <uint32 4>, 'load': <uint32 150>, 'rtt_ms': <uint32 23>}",
};

int
main(int argc, char **argv)
{
  if (argc != 2)
    g_error("usage: make-conference-signal-seeds DIR");
  for (guint t = 0; t < HARK_CONFERENCE_SIGNAL_N_TYPES; t++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) parsed = g_variant_ref_sink(
      g_variant_parse(G_VARIANT_TYPE_VARDICT, seeds[t], NULL, NULL, &error));
    if (parsed == NULL)
      g_error("%s: %s", hark_conference_signal_type_name(t), error->message);
    g_autoptr(GVariant) body = g_variant_get_normal_form(parsed);
    g_autoptr(HarkConferenceSignal) signal = hark_conference_signal_parse(body, &error);
    if (signal == NULL || signal->type != t)
      g_error("%s: %s", hark_conference_signal_type_name(t),
              error != NULL ? error->message : "other type");
    g_autofree char *path =
      g_build_filename(argv[1], hark_conference_signal_type_name(t), NULL);
    if (!g_file_set_contents(path, g_variant_get_data(body), (gssize)g_variant_get_size(body),
                             &error))
      g_error("%s", error->message);
  }
  return 0;
}
