/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-encoder.h: the Opus plugin's encoder element (opus-encoder.c says why it exists). */
#pragma once

#include <gst/gst.h>

/* The element's factory name, as the plugin makes it for the core. */
#define HARK_OPUS_ENCODER_NAME "harkopusenc"

/* Registers the element with GStreamer (once per process; later calls do nothing).
 * FALSE if GStreamer refused it. */
gboolean hark_opus_encoder_register(void);

/* Whether encoder (an element of this kind) is coding digital silence its own way now:
 * at complexity 0, and in CELT unless DTX is on or the bitrate is constant (for tests). */
gboolean hark_opus_encoder_is_quiet(GstElement *encoder);
