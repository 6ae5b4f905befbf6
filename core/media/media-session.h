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
/* The running time of element's pipeline now; NONE before it has a clock (plays). */
GstClockTime hark_media_running_time(GstElement *element);
/* 16-bit mono audio at rate, as ports, the mixer and the sound server hand it over. */
GstCaps *hark_media_mono_caps(guint rate);

/* media-push-src.c: a live source that pushes in the caller's thread (no queue, no
 * thread of its own); with timestamp, each buffer without one gets the running time it
 * came at. */
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

/* media-port.c: the session whose source is the port ("port:NAME"), which a shared
 * encoder sends to (media-shared.c); attached once built, detached when freed. Main
 * context only. */
HarkMediaPort *hark_media_port_attach_session(const char *spec, HarkMediaSession *session);
void hark_media_port_detach_session(HarkMediaPort *port, HarkMediaSession *session);
HarkMediaSession *hark_media_port_session(HarkMediaPort *port);
/* The writes to the port go on after a pause that was no gap (its session followed a
 * shared encoder): their timestamps continue, now that much behind the running time
 * (the lag). Returns where the next write starts (NONE before the first). */
GstClockTime hark_media_port_resume(HarkMediaPort *port);
/* How far the port's timestamps are behind the running time on purpose. Any thread. */
GstClockTime hark_media_port_lag(HarkMediaPort *port);

/* media-send.c: a send chain (audioresample, capsfilter, encoder, payloader) for codec,
 * not in a bin yet; and its disposal. */
gboolean hark_media_send_chain_make(const HarkMediaCodec *codec, guint32 ssrc, GstElement *chain[4],
                                    GError **error);
void hark_media_send_chain_discard(GstElement *chain[4]);
/* media-send.c, for media-shared.c (main context): whether the session can send a shared
 * encoder's packets now (started, not muted, on hold or swapping codecs); the codec and
 * settings its encoder codes with, as text (NULL: none); switching to the shared
 * encoder's packets (follow) or back to its own chain's, whose packets of the next
 * `primed` of what is written to its port are then dropped (they bring the own encoder
 * up to the mix: the shared encoder sent that much); and one shared packet to send
 * (taken). */
gboolean hark_media_session_can_follow(HarkMediaSession *s);
const char *hark_media_session_encoder_signature(HarkMediaSession *s);
void hark_media_session_follow(HarkMediaSession *s, gboolean follow, GstClockTime primed);
void hark_media_session_send_shared(HarkMediaSession *s, GstBuffer *packet);
/* A send chain like the session's (its codec, its encoder's settings) for a shared
 * encoder; an error when the settings could not all be copied. */
gboolean hark_media_session_shared_chain(HarkMediaSession *s, GstElement *chain[4], GError **error);
/* media-shared.c: codec's name, clock rate and every plain setting of encoder as text:
 * equal texts, equal streams from equal input; and those settings copied. */
char *hark_media_encoder_signature(const HarkMediaCodec *codec, GstElement *encoder);
void hark_media_encoder_copy_settings(GstElement *from, GstElement *to);
/* media-port.c: the shared encoder's group the port's session follows (main context);
 * media-shared.c: out of it, as the port is freed. */
gpointer hark_media_port_get_group(HarkMediaPort *port);
void hark_media_port_set_group(HarkMediaPort *port, gpointer group);
void hark_media_port_leave_group(HarkMediaPort *port);

/* From media-transport.c. */
gboolean hark_media_transport_send(HarkMediaTransport *t, const guint8 *data, gsize length,
                                   GError **error);
void hark_media_transport_start(HarkMediaTransport *t, HarkMediaReceiveFunc func,
                                gpointer user_data);
guint hark_media_transport_overhead(HarkMediaTransport *t);
