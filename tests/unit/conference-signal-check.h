/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-signal-check.h: what the unit tests of the conference signal's parser share
 * (test-conference-signal.c, test-conference-controls.c): a signal written as GVariant
 * text, parsed as a peer's would be; a refusal that must name its field; a round trip
 * through build and parse. */
#pragma once

#include "conference-signal.h"

#include <gio/gio.h>
#include <string.h>

#define ID "'id': <[byte 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]>"
#define CALL "'call': <[byte 9, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8]>"

static const guint8 conf_id[HARK_CONFERENCE_ID_SIZE] = { 1, 2,  3,  4,  5,  6,  7,  8,
                                                         9, 10, 11, 12, 13, 14, 15, 16 };

/* text (GVariant text of an a{sv}) parsed as a signal: the signal, or NULL with *error. */
static HarkConferenceSignal *
parse_text(const char *text, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) body =
    g_variant_ref_sink(g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL, NULL, &local));
  g_assert_no_error(local);
  return hark_conference_signal_parse(body, error);
}

/* text is refused with an error that names field (quoted, as the parser names it). */
static void
assert_refused(const char *text, const char *field)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConferenceSignal) s = parse_text(text, &error);
  g_assert_null(s);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_autofree char *quoted = g_strdup_printf("'%s'", field);
  if (strstr(error->message, quoted) == NULL)
    g_error("'%s' refused for: %s (not naming %s)", text, error->message, field);
}

/* s goes through build and parse unchanged. */
static void
assert_round_trip(HarkConferenceSignal *s)
{
  g_autoptr(GVariant) body = g_variant_ref_sink(hark_conference_signal_build(s));
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConferenceSignal) back = hark_conference_signal_parse(body, &error);
  g_assert_no_error(error);
  g_assert_true(hark_conference_signal_equal(s, back));
}
