/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media.h: media sessions: one bidirectional, SRTP-protected RTP audio stream between
 * this node and one peer, over a packet transport the session's owner provides.
 *
 * The owner (a call, later; tests and `hark media-test` now) hands a session the codecs
 * (the first one is sent, all are accepted), a local source and sink, one SRTP key per
 * direction, and a HarkMediaTransport. Everything runs on the thread-default main context
 * of the caller; GStreamer's streaming threads only touch the transport's send path,
 * which serialises itself. */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "hark/codec.h"
#include "hark/context.h"
#include "hark/media-spec.h" /* HARK_MEDIA_ERROR, the source and sink checks */

G_BEGIN_DECLS

/* ---- packet transports ---------------------------------------------------------------- */

typedef struct _HarkMediaTransport HarkMediaTransport;

/* Called on the owner's main context with one received packet (RTP or RTCP, muxed). */
typedef void (*HarkMediaReceiveFunc)(const guint8 *data, gsize length, gpointer user_data);

/* What a transport implementation provides. send() may be called from any thread (the
 * session's streaming threads); the HarkMediaTransport wrapper serialises the calls. */
typedef struct {
  guint32 version; /* 1 */
  gboolean (*send)(gpointer impl, const guint8 *data, gsize length, GError **error);
  /* Start delivering packets to func on the thread-default main context. */
  void (*start)(gpointer impl, HarkMediaReceiveFunc func, gpointer user_data);
  void (*free)(gpointer impl);
  /* Bytes of headers below the packet the transport adds per packet (IP, UDP, framing),
   * so statistics can say what goes on the wire. */
  guint overhead;
} HarkMediaTransportInterface;

HARK_API HarkMediaTransport *hark_media_transport_new(const HarkMediaTransportInterface *iface,
                                                      gpointer impl);
/* Datagrams from local to remote on UDP (IPv4 or IPv6). local may have port 0; the bound
 * address is hark_media_transport_get_local(). remote may be NULL until
 * hark_media_transport_set_remote() (nothing is sent before); only packets from remote
 * are received. */
HARK_API HarkMediaTransport *
hark_media_transport_new_udp(GInetSocketAddress *local, GInetSocketAddress *remote, GError **error);
HARK_API gboolean hark_media_transport_set_remote(HarkMediaTransport *transport,
                                                  GInetSocketAddress *remote, GError **error);
/* RFC 4571 framing (a 16-bit length before each packet) over a connected stream. */
HARK_API HarkMediaTransport *hark_media_transport_new_stream(GIOStream *stream);
/* A new reference to the bound address of a UDP transport; NULL for others. */
HARK_API GInetSocketAddress *hark_media_transport_get_local(HarkMediaTransport *transport);
/* Drop this fraction (0..1) of outgoing packets, pseudo-randomly from seed: a test and
 * debugging aid for loss "on the wire". */
HARK_API void hark_media_transport_set_loss(HarkMediaTransport *transport, double fraction,
                                            guint32 seed);
HARK_API void hark_media_transport_free(HarkMediaTransport *transport);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMediaTransport, hark_media_transport_free)

/* ---- sessions --------------------------------------------------------------------------- */

typedef enum {
  HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, /* 30-byte key: 16 key + 14 salt */
  HARK_MEDIA_SRTP_AEAD_AES_256_GCM, /* 44-byte key: 32 key + 12 salt */
} HarkMediaSrtpSuite;

HARK_API gsize hark_media_srtp_key_length(HarkMediaSrtpSuite suite);

/* One codec of a session: a codec registration and its settings. */
typedef struct {
  const char *name; /* the registration's name, e.g. "opus" */
  const HarkCodecInterface *iface;
  gpointer instance;
  GVariant *settings; /* a{sv} or NULL */
  guint payload_type; /* 0: the codec's default (PCMU's 0 is its default anyway) */
} HarkMediaCodec;

typedef struct {
  const HarkMediaCodec *codecs; /* codecs[0] is sent; every one is accepted */
  guint n_codecs;
  /* "tone", "tone:HZ", "tone:HZ:LEVEL" (LEVEL 0..1 of full scale, default 0.3), "silence",
   * "wav:PATH" or "file:PATH" (a WAV file, played once), "pulse" or "pulse:DEVICE" (the
   * sound server; PULSE_SERVER and PULSE_SOURCE in the environment choose too). */
  const char *source;
  /* "null", "wav:PATH" or "file:PATH" (a WAV file, 16-bit mono 48 kHz), "pulse" or
   * "pulse:DEVICE". */
  const char *sink;
  HarkMediaSrtpSuite srtp_suite;
  GBytes *send_key; /* protects what this side sends */
  GBytes *receive_key; /* the far end's send key */
  guint32 ssrc; /* 0: random */
  /* Jitter buffer: how long received audio is held before it plays. 0: adaptive, from
   * jitter_start_ms (0: 20, one frame) within [jitter_min_ms (0: 10), jitter_max_ms
   * (0: 200)], grown at once when audio reaches the sink late or close to late, shrunk
   * after 3 calm seconds by half the room the worst buffer of each second left (keeping
   * some headroom on a link whose jitter made it grow twice within 30 s), each shrink in
   * a pause of what plays (3 s at most). Non-zero: fixed at that. */
  guint jitter_ms;
  guint jitter_start_ms, jitter_min_ms, jitter_max_ms;
  guint pulse_buffer_ms; /* sound-server capture block and playback period; 0: 10 ms */
  guint keepalive_ms; /* on hold; 0: 3000 */
  guint dtmf_payload_type; /* RFC 4733 telephone-event; 0: 101 */
  /* The `silent` event fires when nothing at all (media, RTCP, keep-alive) came from the
   * far end for this long; 0: 7000 (two keep-alive periods and a second). */
  guint silence_ms;
  HarkMediaTransport *transport; /* taken, also when hark_media_session_new fails */
} HarkMediaConfig;

typedef struct _HarkMediaSession HarkMediaSession;

typedef struct {
  char codec[32]; /* the codec sent now (its registration's name) */
  guint payload_type;
  guint64 packets_sent, bytes_sent; /* RTP and RTCP, as handed to the transport */
  guint64 packets_received, bytes_received; /* as the transport delivered them */
  guint transport_overhead; /* bytes per packet below that (IP, UDP) */
  guint64 rtp_received; /* RTP packets that passed every check */
  gint64 lost; /* RTP packets the far end sent that never came */
  double jitter_ms; /* interarrival jitter of what we receive */
  double rtt_ms; /* from RTCP; negative until known */
  double remote_loss_fraction; /* what the far end says it lost of our stream */
  guint64 concealed_samples; /* samples the decoder made up for lost packets */
  guint64 played_samples; /* samples handed to the sink */
  guint jitter_buffer_ms; /* the jitter-buffer delay now (adaptive: it moves) */
  guint64 late_packets; /* came after the jitter buffer gave up on them */
  guint64 late_buffers; /* reached the sink after their playing time */
  guint64 dropped_srtp; /* failed authentication or decryption */
  guint64 dropped_malformed; /* too short, not RTP version 2, bad RTCP */
  guint64 dropped_unknown_pt; /* a payload type the session does not accept */
  guint64 dropped_timestamp; /* an absurd timestamp jump */
  guint64 keepalives_sent, keepalives_received;
  gint encoder_bitrate; /* bits/s the encoder is set to; 0 when fixed */
  gboolean on_hold;
  guint64 dtmf_sent, dtmf_received; /* RFC 4733 digits: sent whole, reported */
  gboolean muted;
  /* Receive side: the longest gap in played audio around the far end's last codec
   * change (ms); 0 before one. */
  guint last_swap_gap_ms;
  double send_bitrate, receive_bitrate; /* bits/s over the last 5 s (SRTP and SRTCP) */
  gboolean fec; /* the encoder adds in-band FEC now */
  guint ptime_ms; /* the audio in the last packet sent (ms): the packet time, which Opus
                   * lengthens on a narrow link; 0 before the first */
  double remote_jitter_ms; /* the jitter the far end says our stream arrives with */
  /* How often the adaptive jitter-buffer delay grew and shrank: each move is a short gap
   * or cut in what plays. */
  guint jitter_buffer_grown, jitter_buffer_shrunk;
  /* How often a lost packet raised the delay to a packet time and a little, so that the
   * packet after a loss is there to rebuild it from (Opus's in-band FEC). */
  guint jitter_buffer_raised;
} HarkMediaStats;

/* Builds the pipelines (nothing flows yet). Errors: a bad source or sink, a missing
 * element, a key of the wrong length. */
HARK_API HarkMediaSession *hark_media_session_new(const HarkMediaConfig *config, GError **error);
/* Call first thing in main(), before any thread: GStreamer will start (with the first
 * session) without its registry of every installed plugin and load only the plugins
 * the sessions use (about 4 MiB less heap per process). It sets GST_REGISTRY_DISABLE in
 * the environment, unless GStreamer's plugin path or registry are configured there. */
HARK_API void hark_media_prepare(void);
/* Start sending and receiving. With a "pulse" source or sink and no sound server this
 * fails with HARK_MEDIA_ERROR_NO_SOUND. */
HARK_API gboolean hark_media_session_start(HarkMediaSession *session, GError **error);
/* Stops (a WAV sink is completed) and frees. */
HARK_API void hark_media_session_free(HarkMediaSession *session);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMediaSession, hark_media_session_free)

HARK_API void hark_media_session_get_stats(HarkMediaSession *session, HarkMediaStats *stats);
HARK_API JsonObject *hark_media_stats_to_json(const HarkMediaStats *stats);

/* Switch the sent codec to config->codecs[index] while running: SSRC, sequence numbers
 * and timestamps stay continuous; the far end follows the payload type. Completes on
 * the main context; done (may be NULL) is called then. */
HARK_API gboolean hark_media_session_swap_codec(HarkMediaSession *session, guint index,
                                                GError **error);
/* Change one codec setting live (e.g. opus "bitrate"). */
HARK_API gboolean hark_media_session_set_codec_setting(HarkMediaSession *session, const char *key,
                                                       GVariant *value, GError **error);
/* Hold: stop sending media; a keep-alive packet goes out every keepalive_ms. */
HARK_API void hark_media_session_set_hold(HarkMediaSession *session, gboolean hold);
/* Mute: the source is replaced by silence; packets keep flowing. */
HARK_API void hark_media_session_set_mute(HarkMediaSession *session, gboolean mute);

/* RFC 4733 telephone-events for digits of "0123456789*#ABCD", queued (at most 64): each
 * lasts 100 ms (its end packet sent 3 times), the next starts 50 ms after, in the
 * session's RTP stream (its SSRC and sequence numbers, the sent codec's clock) with
 * payload type config->dtmf_payload_type, each in place of an audio frame. FALSE with
 * HARK_MEDIA_ERROR for another character, no digits, a full queue, or while on hold
 * (going on hold drops what is queued). */
HARK_API gboolean hark_media_session_send_dtmf(HarkMediaSession *session, const char *digits,
                                               GError **error);

/* Where a session's receiving is: the far end's key and, per SSRC of the far end, the
 * SRTP rollover counter and replay window. For a session made again for the same call
 * (new source and sink, the same keys: a conference host adopting a call as a leg), whose
 * far end's stream goes on: a fresh session would guess that stream's rollover counter
 * as 0 and refuse every packet once it is past 65,536 (22 minutes at 20 ms), and would
 * take a replay of anything it sent before. */
typedef struct _HarkMediaReceiving HarkMediaReceiving;
HARK_API HarkMediaReceiving *hark_media_session_save_receiving(HarkMediaSession *session);
/* Before hark_media_session_start: session goes on from receiving. FALSE, and nothing
 * changes, when session's receive key or SRTP suite is not receiving's. */
HARK_API gboolean hark_media_session_restore_receiving(HarkMediaSession *session,
                                                       const HarkMediaReceiving *receiving);
HARK_API void hark_media_receiving_free(HarkMediaReceiving *receiving);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMediaReceiving, hark_media_receiving_free)

/* What a session tells its owner, on the main context the session was made on. */
typedef struct {
  guint32 version; /* 1 */
  /* A received telephone-event ended (once per digit, however often its end packet is
   * repeated). May be NULL. */
  void (*dtmf)(gpointer data, char digit);
  /* Nothing at all (media, RTCP, keep-alive) came from the far end for silence_ms (how
   * long it has been quiet is passed); fires once, and again only after something came
   * and then stopped again. May be NULL. */
  void (*silent)(gpointer data, guint silence_ms);
} HarkMediaSessionEvents;
/* events is copied; NULL stops them. The silence (`silent`) is counted from this call. */
HARK_API void hark_media_session_set_events(HarkMediaSession *session,
                                            const HarkMediaSessionEvents *events, gpointer data);

/* ---- ports: audio between sessions and their owner in this process --------------------- */

/* A conference host's mixer feeds and drains its legs' sessions through ports: a session
 * made with sink "port:NAME" queues what it plays into the port (mono S16 at the port's
 * rate, at most 200 ms kept, a backlog over 60 ms cut to 40 ms when read; reading starts,
 * and starts again after a read found too little, once a read and 10 ms more are there);
 * one made with
 * source "port:NAME" sends what is written to the port. */
typedef struct _HarkMediaPort HarkMediaPort;

/* name: unique in the process; rate: 8000-48000 Hz, a multiple of 50 (a 20 ms tick is a
 * whole number of samples). */
HARK_API HarkMediaPort *hark_media_port_new(const char *name, guint rate, GError **error);
/* The name is free again; sessions still using the port keep it alive until they stop. */
HARK_API void hark_media_port_free(HarkMediaPort *port);
HARK_API guint hark_media_port_rate(HarkMediaPort *port);
/* The oldest n samples received (the rest of samples zero when fewer are there): how many
 * were real. Any thread. */
HARK_API gsize hark_media_port_read(HarkMediaPort *port, gint16 *samples, gsize n);
/* n samples for the session whose source is this port to send, right after the last
 * ones written (the writes are one steady stream from the first on); nothing when there
 * is no such session. Any thread. */
HARK_API void hark_media_port_write(HarkMediaPort *port, const gint16 *samples, gsize n);
/* Samples received in all and dropped as backlog; reads that found too little. */
HARK_API void hark_media_port_get_counts(HarkMediaPort *port, guint64 *received,
                                         guint64 *dropped, guint64 *underruns);
/* The delay the port holds, in ms: what waited in its queue when the last read came, the
 * mean of that over all reads, and what the sending session's source has not taken yet. */
HARK_API void hark_media_port_get_queued(HarkMediaPort *port, guint *last_ms, guint *mean_ms,
                                         guint *send_ms);

/* ---- a shared encoder: one encoding of a mix for every port's session that hears it -- */

/* A conference host's silent members all hear the same whole mix: the sessions of their
 * ports whose encoders have the same codec and settings follow one shared encoder, which
 * codes the mix once; each session sends the packets as its own (its sequence numbers,
 * timestamps, SSRC, payload type and SRTP key). A session goes back to its own encoder
 * primed with the last 60 ms of the mix, so its far end hears no click. rate: of the
 * mix, as of the ports. Main context only. */
typedef struct _HarkMediaShared HarkMediaShared;
typedef struct {
  guint encoders; /* shared encoders running (one per distinct codec settings) */
  guint followers; /* sessions following one now */
  guint64 frames_encoded; /* frames the shared encoders coded */
  guint64 packets_sent; /* their packets the followers sent */
  guint64 switches; /* sessions moved to a shared encoder or back */
} HarkMediaSharedCounts;

HARK_API HarkMediaShared *hark_media_shared_new(guint rate);
HARK_API void hark_media_shared_free(HarkMediaShared *shared);
/* For this write and the following ones, port's session takes the shared encoder's
 * packets: TRUE, and the caller writes nothing to port. FALSE when it cannot (no session
 * yet, muted, on hold, changing codec, or settings no shared encoder has and no new one
 * can be made for): the session is on its own encoder, and the caller writes to port.
 * Call it for each port that hears the whole mix, before each write. */
HARK_API gboolean hark_media_shared_follow(HarkMediaShared *shared, HarkMediaPort *port);
/* port's session back on its own encoder (primed); the caller writes to port again. */
HARK_API void hark_media_shared_leave(HarkMediaShared *shared, HarkMediaPort *port);
/* The mix, coded once per shared encoder with followers and sent by each of them. */
HARK_API void hark_media_shared_write(HarkMediaShared *shared, const gint16 *samples, gsize n);
HARK_API void hark_media_shared_get_counts(HarkMediaShared *shared, HarkMediaSharedCounts *counts);

/* The owner's own audio as a port's far end: source (a session source spec) is queued
 * into port, and what is written to port plays on sink (a session sink spec). */
typedef struct _HarkMediaLocal HarkMediaLocal;
HARK_API HarkMediaLocal *hark_media_local_new(const char *source, const char *sink,
                                              HarkMediaPort *port, GError **error);
HARK_API void hark_media_local_free(HarkMediaLocal *local);

/* ---- codecs from plugins ------------------------------------------------------------------ */

/* From registrations of kind HARK_KIND_CODEC (hark_context_lookup: highest rank first),
 * the first one whose name is in preference, in preference's order; without a preference
 * (NULL or empty) the highest-ranked. NULL with an error naming the preference when none. */
HARK_API const HarkRegistration *
hark_media_codec_choose(GPtrArray *registrations, const char *const *preference, GError **error);

G_END_DECLS
