/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link.h: an encrypted, authenticated message link between two nodes.
 *
 * A transport plugin makes the bytes flow (a TCP connection, TLS on port 443, a
 * WebSocket through an HTTP proxy); the core runs TLS 1.3 (OpenSSL) over them, frames
 * overlay messages (a 4-byte big-endian length, then one hark/wire.h message), checks
 * who the peer is and counts what passes. So every transport gets the same security and
 * the same statistics, and the overlay never sees a transport's socket.
 *
 * Peers: the accepting side (a super node) always presents its device certificate;
 * the opening side presents its own when it has one (it is logged in). Both are checked
 * against the login server's CA pinned by the configuration. A link whose opener had no
 * certificate is up but unauthenticated until the opener proves a certificate later
 * (hark_link_authenticate, with a signature over hark_link_channel_binding). */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>

#include "hark/certificate.h"
#include "hark/context.h"
#include "hark/wire.h"

G_BEGIN_DECLS

#define HARK_LINK_ERROR (hark_link_error_quark())
HARK_API GQuark hark_link_error_quark(void);

typedef enum {
  HARK_LINK_ERROR_CLOSED, /* the peer or the transport closed it */
  HARK_LINK_ERROR_HANDSHAKE, /* TLS failed, or took longer than the handshake timeout */
  HARK_LINK_ERROR_UNTRUSTED, /* the peer's certificate does not verify against the CA */
  HARK_LINK_ERROR_PROTOCOL, /* a frame larger than HARK_WIRE_MAX_SIZE, a bad length */
  HARK_LINK_ERROR_BACKLOG, /* the peer does not read: more than the write limit queued */
  HARK_LINK_ERROR_NO_CREDENTIALS, /* this node has no certificate to accept links with */
  HARK_LINK_ERROR_EXPIRED, /* accepting: the peer's certificate expired, not renewed */
} HarkLinkError;

typedef struct _HarkLink HarkLink;

typedef enum {
  HARK_LINK_HANDSHAKING, /* the TLS handshake runs */
  HARK_LINK_UP, /* messages flow */
  HARK_LINK_CLOSED, /* nothing more: the closed handler has been called */
} HarkLinkState;

typedef struct {
  guint64 bytes_in, bytes_out; /* on the transport, TLS and framing included */
  guint64 messages_in, messages_out;
  guint64 dropped; /* messages received and not delivered (undecodable) */
  gint64 opened_at; /* monotonic µs, when the transport handed it over */
  gint64 up_at; /* monotonic µs, end of the handshake; 0 before */
  gint64 rtt_us; /* set by its user (PING/PONG); -1 unknown */
  /* monotonic µs of the last message received / sent (0: none yet): what the overlay's
   * keep-alive counts as life, so that a busy link needs no PING */
  gint64 last_in_at, last_out_at;
} HarkLinkStats;

/* What the link's user (the overlay) hears. Every callback may close or free the link. */
typedef struct {
  /* The handshake is done and the peer's certificate (if any) checked. */
  void (*up)(HarkLink *link, gpointer user_data);
  /* One decoded message (the callee does not take it). Undecodable frames are counted
   * in stats.dropped and logged at a rate-limited level, never delivered. */
  void (*message)(HarkLink *link, const HarkWireMessage *message, gpointer user_data);
  /* Exactly once, at the end: error says why (HARK_LINK_ERROR_*, or NULL after
   * hark_link_close). The link stays valid until hark_link_free. */
  void (*closed)(HarkLink *link, const GError *error, gpointer user_data);
  /* Optional, accepting side: the peer speaks another protocol (TURN on the web port),
   * either over this TLS (the first bytes after the handshake cannot be framing: a
   * length over HARK_WIRE_MAX_SIZE) or with no TLS at all (the first byte is not a TLS
   * handshake record's). data: what arrived so far (at least 8 bytes). TRUE when the
   * callee took the stream with hark_link_divert; FALSE fails the link as before. */
  gboolean (*foreign)(HarkLink *link, const guint8 *data, gsize size, gpointer user_data);
} HarkLinkHandler;

/* From now on the link's decrypted bytes (its bytes as they come, when the peer started
 * no TLS) go to received, unframed, in order (those that arrived already first, before
 * this returns to the main loop); the handler's closed still comes at the end. Only
 * from the foreign callback. */
typedef void (*HarkLinkRawReceived)(HarkLink *link, const guint8 *data, gsize size,
                                    gpointer user_data);
HARK_API void hark_link_divert(HarkLink *link, HarkLinkRawReceived received, gpointer user_data);
/* Encrypt (unless the peer started no TLS) and queue bytes on a diverted link, unframed. FALSE when the link is not up or
 * its queue is over its limit (the bytes are not sent; the link stays up). */
HARK_API gboolean hark_link_write_raw(HarkLink *link, const guint8 *data, gsize size);

/* Byte pipes that are not GIOStreams (a WebSocket): the core calls write() with TLS
 * records to send (borrowed: ref them to keep them), close() once when it is done with
 * the pipe (the transport then frees its side; also when making the link failed). The transport calls hark_link_pipe_received() with what arrived and
 * hark_link_pipe_closed() when the pipe broke; never after close() was called. */
typedef struct {
  guint32 version; /* 1 */
  void (*write)(gpointer pipe, GBytes *bytes);
  void (*close)(gpointer pipe);
} HarkLinkPipe;

/* A transport hands over a connected byte stream; the link takes it (closes and unrefs
 * it at the end). transport is the transport's name ("tcp"), peer_host/peer_port where
 * the other end is. opener: TRUE on the side that opened the connection (TLS client).
 *
 * On the opening side the transport returns the link to whoever asked for it (see
 * hark/transport.h). On the accepting side the core hands the link to the node's overlay
 * itself; the transport keeps no reference (a pipe transport keeps its pipe until
 * close()), and must not use the pointer returned, which only says the link was made
 * (the overlay may have freed it already). Returns NULL with NO_CREDENTIALS when the
 * node has no login section, or when accepting and this node has no certificate; with
 * CLOSED when accepting and no overlay takes links. The stream is then closed. */
HARK_API HarkLink *hark_link_new_for_stream(HarkContext *ctx, const char *transport,
                                            GIOStream *stream, gboolean opener,
                                            const char *peer_host, guint16 peer_port,
                                            GError **error);
HARK_API HarkLink *hark_link_new_for_pipe(HarkContext *ctx, const char *transport,
                                          const HarkLinkPipe *pipe_iface, gpointer pipe,
                                          gboolean opener, const char *peer_host, guint16 peer_port,
                                          GError **error);
HARK_API void hark_link_pipe_received(HarkLink *link, GBytes *bytes);
HARK_API void hark_link_pipe_closed(HarkLink *link, const GError *error);

/* The user of the link sets its handler once, before returning to the main loop. */
HARK_API void hark_link_set_handler(HarkLink *link, const HarkLinkHandler *handler,
                                    gpointer user_data);

/* Encode, frame, encrypt and queue one message. FALSE when the link is not up, the
 * message does not encode, or the queue is over its limit (the link then closes with
 * BACKLOG). body: a floating reference is sunk. */
HARK_API gboolean hark_link_send(HarkLink *link, guint16 type, guint64 id, GVariant *body,
                                 GError **error);

/* Close now (queued data is flushed on a best-effort basis). The closed handler is
 * called with a NULL error, from an idle callback. Idempotent. */
HARK_API void hark_link_close(HarkLink *link);
/* Close if needed and free. Safe from inside any handler callback of this link. */
HARK_API void hark_link_free(HarkLink *link);

HARK_API HarkLinkState hark_link_get_state(HarkLink *link);
HARK_API const char *hark_link_get_transport(HarkLink *link);
HARK_API const char *hark_link_get_peer_host(HarkLink *link);
HARK_API guint16 hark_link_get_peer_port(HarkLink *link);
HARK_API gboolean hark_link_is_opener(HarkLink *link);
HARK_API const HarkLinkStats *hark_link_get_stats(HarkLink *link);
HARK_API void hark_link_set_rtt(HarkLink *link, gint64 rtt_us);

/* The peer's certificate once verified (at the handshake or by hark_link_authenticate);
 * NULL while the peer is unauthenticated. Owned by the link. */
HARK_API const HarkDeviceCertificate *hark_link_get_peer_certificate(HarkLink *link);

/* 32 bytes that both ends of this TLS session compute alike and nobody else can
 * (RFC 8446 exporter, label "EXPORTER-hark-link-auth"): the opener signs them with its
 * device key to prove a certificate after the handshake. NULL before UP. */
HARK_API GBytes *hark_link_channel_binding(HarkLink *link);
/* On the accepting side: check cert (PEM or DER, against the pinned CA) and signature
 * (by the certified key, over the channel binding); on success the peer is
 * authenticated. UNTRUSTED when anything does not hold. */
HARK_API gboolean hark_link_authenticate(HarkLink *link, GBytes *cert, GBytes *signature,
                                         GError **error);

G_END_DECLS
