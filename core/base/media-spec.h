/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-spec.h (private): the parts of a source or sink name that media-io.c needs to
 * build its elements; media-spec.c. */
#pragma once

#include "hark/media-spec.h"

/* What is accepted, for error messages. */
#define HARK_MEDIA_SPEC_SOURCES \
  "tone, tone:HZ[:LEVEL], silence, wav:PATH (or file:PATH), pulse or pulse:DEVICE"
#define HARK_MEDIA_SPEC_SINKS "null, wav:PATH (or file:PATH), pulse or pulse:DEVICE"

/* The WAV file of "wav:PATH" or "file:PATH", else NULL. */
const char *hark_media_spec_wav_path(const char *spec);
/* The device of "pulse:DEVICE" ("" for "pulse"), else NULL. */
const char *hark_media_spec_pulse_device(const char *spec);
/* The frequency and level of "tone" or "tone:HZ[:LEVEL]" (440 Hz, 0.3 by default). */
gboolean hark_media_spec_tone(const char *spec, double *freq, double *level, GError **error);
