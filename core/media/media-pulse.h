/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-pulse.h: what the sound server's capture (media-pulse.c) and playback
 * (media-pulse-playback.c) share: one connection each, with libpulse's own thread. */
#pragma once
#include "media-session.h"

#include <pulse/pulseaudio.h>

typedef struct {
  pa_threaded_mainloop *loop; /* NULL: closed */
  pa_context *context;
  pa_stream *stream;
} HarkMediaPulseLink;

/* Called with the loop locked once the context is ready: make l->stream, set its
 * callbacks (its state callback must signal l->loop) and connect it; FALSE on failure. */
typedef gboolean (*HarkMediaPulseStreamFunc)(HarkMediaPulseLink *l, gpointer data);

/* Start libpulse's thread, connect to the server and the stream, and wait until both
 * are ready; HARK_MEDIA_ERROR_NO_SOUND with the server's reason when they cannot. */
gboolean hark_media_pulse_link_open(HarkMediaPulseLink *l, HarkMediaPulseStreamFunc connect_stream,
                                    gpointer data, GError **error);
/* Disconnect (no callback runs after it) and stop the thread; a closed link is left as is. */
void hark_media_pulse_link_close(HarkMediaPulseLink *l);
