/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opus-decoder.h: the Opus plugin's decoder element (opus-decoder.c says why it exists). */
#pragma once

#include <gst/gst.h>

/* The element's factory name, as the codec's descriptor gives it to the core. */
#define HARK_OPUS_DECODER_NAME "harkopusdec"

/* Registers the element with GStreamer (once per process; later calls do nothing).
 * FALSE if GStreamer refused it. */
gboolean hark_opus_decoder_register(void);
