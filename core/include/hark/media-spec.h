/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-spec.h: the media error domain and the names of a media session's local ends
 * ("tone:440", "wav:PATH", "pulse:DEVICE", ...), as the configuration gives them.
 *
 * Plain string checks with no GStreamer in them, so the configuration (which checks
 * media.source and media.sink when it is read) does not depend on the media layer.
 * Included by hark/media.h. */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_MEDIA_ERROR (hark_media_error_quark())
HARK_API GQuark hark_media_error_quark(void);

typedef enum {
  HARK_MEDIA_ERROR_INVALID, /* a bad argument: the message names it */
  HARK_MEDIA_ERROR_GSTREAMER, /* a GStreamer element is missing or failed */
  HARK_MEDIA_ERROR_NO_SOUND, /* no sound server: the message names the settings to use */
  HARK_MEDIA_ERROR_FILE, /* a WAV file could not be read or written */
  HARK_MEDIA_ERROR_TRANSPORT, /* the packet transport failed */
} HarkMediaError;

/* Is spec a source (or sink) a session accepts? The configuration's media.source and
 * media.sink are checked with these, so a mistake shows when the file is read. The
 * error names what is accepted. */
HARK_API gboolean hark_media_source_check(const char *spec, GError **error);
HARK_API gboolean hark_media_sink_check(const char *spec, GError **error);

G_END_DECLS
