/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-session.h: what the media engine's files share inside libhark (GStreamer side). */
#pragma once

#include <gst/gst.h>

#include "hark/media.h"
#include "media-private.h"

/* The payload type of hark's keep-alive on hold: empty RTP packets (RFC 6263 §4.6) with
 * a type from the unassigned range of RFC 3551, which a receiver counts and drops. */
#define HARK_MEDIA_KEEPALIVE_PT 20

typedef struct _HarkMediaWav HarkMediaWav;

/* media-gst.c: gst_init, and after hark_media_prepare() the plugins every session needs. */
gboolean hark_media_gst_init(GError **error);
/* gst_element_factory_make, loading the element's plugin first if need be, with an error
 * that says which package to install. */
GstElement *hark_media_element_make(const char *factory, GError **error);

/* media-push-src.c: a live source that pushes in the caller's thread (no queue, no
 * thread of its own); with timestamp, each buffer gets the running time it came at. */
typedef struct _HarkMediaPushSrc HarkMediaPushSrc;
typedef struct {
  GstElementClass parent_class;
} HarkMediaPushSrcClass;
GType hark_media_push_src_get_type(void);
GstElement *hark_media_push_src_new(const char *name, GstCaps *caps, gboolean timestamp);
/* Takes the buffer; dropped (GST_FLOW_FLUSHING) unless the element is playing. */
GstFlowReturn hark_media_push_src_push(GstElement *push_src, GstBuffer *buffer);

typedef struct _HarkMediaPulseCapture HarkMediaPulseCapture;

/* A bin with a "src" ghost pad giving 48 kHz mono S16LE; *capture is set for the sound
 * server (started by the session, freed by the caller). */
GstElement *hark_media_source_new(const char *spec, guint pulse_buffer_ms,
                                  HarkMediaPulseCapture **capture, GError **error);

/* media-pulse.c: the sound server's capture, pushed into a push source (above) in blocks
 * of block_ms from libpulse's thread. */
HarkMediaPulseCapture *hark_media_pulse_capture_new(const char *device, guint block_ms,
                                                    GstElement *push_src);
/* Connects (HARK_MEDIA_ERROR_NO_SOUND with the server's reason when it cannot) and starts
 * reading. */
gboolean hark_media_pulse_capture_start(HarkMediaPulseCapture *capture, GError **error);
void hark_media_pulse_capture_stop(HarkMediaPulseCapture *capture);
void hark_media_pulse_capture_free(HarkMediaPulseCapture *capture);
/* media-pulse-playback.c: a sink that plays 48 kHz mono S16LE to the sound server's
 * device (NULL or "": the default) in periods of period_ms; each buffer is
 * written, from the thread that renders it, where it is heard at its running time + the
 * pipeline's latency. */
GstElement *hark_media_pulse_sink_new(const char *device, guint period_ms);
/* How long before it is due a buffer must reach that sink (the device's latency, as
 * the server's timing says, and a margin). */
GstClockTime hark_media_pulse_sink_delay(GstElement *sink);
/* A bin with a "sink" ghost pad taking 48 kHz mono S16LE; *wav is set for file sinks. */
GstElement *hark_media_sink_new(const char *spec, guint pulse_buffer_ms, HarkMediaWav **wav,
                                GError **error);
/* Completes the header; later samples are ignored. */
void hark_media_wav_close(HarkMediaWav *wav);
void hark_media_wav_free(HarkMediaWav *wav);

/* media-port.c: the elements of "port:NAME" (a source's appsrc at the port's rate, a
 * sink bin resampling to it); an error when there is no such port. */
GstElement *hark_media_port_source_new(const char *spec, GError **error);
GstElement *hark_media_port_sink_new(const char *spec, GError **error);

/* From media-transport.c. */
gboolean hark_media_transport_send(HarkMediaTransport *t, const guint8 *data, gsize length,
                                   GError **error);
void hark_media_transport_start(HarkMediaTransport *t, HarkMediaReceiveFunc func,
                                gpointer user_data);
guint hark_media_transport_overhead(HarkMediaTransport *t);
