/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-spec.c: the names of a media session's local ends (see hark/media-spec.h),
 * checked without GStreamer; media-io.c builds the elements they name. */
#include "media-spec.h"

#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(hark-media-error-quark, hark_media_error)
/* clang-format on */

/* The WAV file of "wav:PATH" or "file:PATH", else NULL. */
const char *
hark_media_spec_wav_path(const char *spec)
{
  if (g_str_has_prefix(spec, "wav:"))
    return spec + strlen("wav:");
  if (g_str_has_prefix(spec, "file:"))
    return spec + strlen("file:");
  return NULL;
}

/* The device of "pulse:DEVICE" ("" for "pulse"), else NULL. */
const char *
hark_media_spec_pulse_device(const char *spec)
{
  if (g_str_equal(spec, "pulse"))
    return "";
  return g_str_has_prefix(spec, "pulse:") ? spec + strlen("pulse:") : NULL;
}

gboolean
hark_media_spec_tone(const char *spec, double *freq, double *level, GError **error)
{
  *freq = 440;
  *level = 0.3;
  if (g_str_equal(spec, "tone"))
    return TRUE;
  g_auto(GStrv) parts = g_strsplit(spec + strlen("tone:"), ":", 3);
  char *end = NULL;
  guint n = g_strv_length(parts);
  if (n >= 1)
    *freq = g_ascii_strtod(parts[0], &end);
  gboolean ok =
    n >= 1 && n <= 2 && end != parts[0] && *end == '\0' && *freq >= 20 && *freq <= 23000;
  if (ok && n == 2) {
    *level = g_ascii_strtod(parts[1], &end);
    ok = end != parts[1] && *end == '\0' && *level > 0 && *level <= 1;
  }
  if (!ok)
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "source '%s': expected tone, tone:HZ (20-23000) or tone:HZ:LEVEL (0-1]", spec);
  return ok;
}

static gboolean
named_ok(const char *spec, const char *what, const char *expected, GError **error)
{
  const char *path = hark_media_spec_wav_path(spec);
  const char *device = hark_media_spec_pulse_device(spec);
  if ((path != NULL && path[0] == '\0') ||
      (device != NULL && device[0] == '\0' && !g_str_equal(spec, "pulse"))) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "%s '%s': the file or device name is missing; expected %s", what, spec, expected);
    return FALSE;
  }
  return TRUE;
}

gboolean
hark_media_source_check(const char *spec, GError **error)
{
  double freq, level;
  if (g_str_equal(spec, "tone") || g_str_has_prefix(spec, "tone:"))
    return hark_media_spec_tone(spec, &freq, &level, error);
  if (g_str_equal(spec, "silence") || hark_media_spec_wav_path(spec) != NULL ||
      hark_media_spec_pulse_device(spec) != NULL)
    return named_ok(spec, "source", HARK_MEDIA_SPEC_SOURCES, error);
  g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "source '%s': expected %s", spec,
              HARK_MEDIA_SPEC_SOURCES);
  return FALSE;
}

gboolean
hark_media_sink_check(const char *spec, GError **error)
{
  if (g_str_equal(spec, "null") || hark_media_spec_wav_path(spec) != NULL ||
      hark_media_spec_pulse_device(spec) != NULL)
    return named_ok(spec, "sink", HARK_MEDIA_SPEC_SINKS, error);
  g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID, "sink '%s': expected %s", spec,
              HARK_MEDIA_SPEC_SINKS);
  return FALSE;
}
