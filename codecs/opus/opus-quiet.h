/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-quiet.h: digital silence (a source muted in the sound server, a silent file, the
 * quiet side of a call whose microphone gives exact zeros) encoded at complexity 0.
 * libopus spends nearly as much on a frame of zeros as on a frame of speech at the
 * default complexity 10 (its tonality analysis and SILK's search run all the same), and
 * what comes out is silence either way. The first block that is not silent puts the
 * configured complexity back before the encoder sees it, so speech is never coded at 0. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* Watch the encoder's input (it has opusenc's "complexity" property); complexity is the
 * configured one (0-10). Calling it again on the same encoder only sets the configured
 * complexity. */
void hark_opus_quiet_attach(GstElement *encoder, int complexity);

/* The configured complexity changed while running (a live setting). */
void hark_opus_quiet_set_complexity(GstElement *encoder, int complexity);

/* Whether the encoder is coding at complexity 0 for silence now (for tests). */
gboolean hark_opus_quiet_is_lowered(GstElement *encoder);

G_END_DECLS
