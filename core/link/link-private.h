/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link-private.h: what the three files of a link share about a HarkLink: link.c (life
 * cycle, framing, the pipe pump), link-stream.c (the GIOStream pump) and link-tls.c
 * (OpenSSL: credentials, peer checks, channel binding); and the test hook for the
 * handshake timeout. Private to libhark, never installed. */
#pragma once

#include "hark-private.h"
#include "hark/link.h"

#include <openssl/ssl.h>

typedef struct _HarkLinkTlsCache HarkLinkTlsCache; /* link-tls.c */
typedef struct _HarkLinkPoller HarkLinkPoller; /* link-poller.c */

/* Where links accepted by transports and datagrams that are not answers go. The layer
 * above (the overlay) sets them when it starts; tests of the link layer set their own. */
typedef void (*HarkLinkAccepted)(HarkLink *link, gpointer data);
typedef void (*HarkDatagramReceived)(const char *transport, GSocketAddress *from, GBytes *datagram,
                                     gpointer data);

/* The credentials of this node's links, asked for at each link's TLS setup: the pinned
 * CA (PEM; NULL: the node cannot make links) and this device's certificate (DER; NULL
 * while it has none, e.g. logged out). The composition root hands in the login
 * client's; tests hand in their own. Both borrowed. */
typedef struct {
  const char *(*ca_pem)(gpointer data);
  GBytes *(*certificate_der)(gpointer data);
} HarkLinkCredentials;

/* The link layer's state of a node (HarkNode.links), made on first use. */
struct _HarkNodeLinks {
  HarkLinkTlsCache *tls_cache; /* TLS contexts shared by this node's links */
  HarkLinkPoller *poller; /* the epoll set of its stream links' sockets */
  HarkLinkAccepted link_accepted;
  HarkDatagramReceived datagram_received;
  gpointer network_handler_data;
  const HarkLinkCredentials *credentials;
  gpointer credentials_data;
};

/* link.c */
HarkNodeLinks *hark_node_links(HarkNode *node);
/* Called by the node as it is freed. */
void hark_node_links_free(HarkNode *node);
/* link.c calls link_accepted with each accepted link (or frees the link when there is
 * none); hark_transport_datagram_received calls datagram_received. */
void hark_link_set_network_handlers(HarkNode *node, HarkLinkAccepted link_accepted,
                                    HarkDatagramReceived datagram_received, gpointer data);
/* credentials NULL: the node makes no links (NO_CREDENTIALS). */
void hark_link_set_credentials(HarkNode *node, const HarkLinkCredentials *credentials,
                               gpointer data);
/* Whether the credentials name a CA, i.e. the node can make links at all. */
gboolean hark_link_has_credentials(HarkNode *node);
/* This device's certificate as the credentials give it (DER, borrowed; NULL: none). */
GBytes *hark_link_local_certificate(HarkNode *node);

#define HARK_LINK_HANDSHAKE_TIMEOUT_MS 10000
/* Encrypted bytes waiting for the transport; a peer that lets more pile up does not read. */
#define HARK_LINK_WRITE_LIMIT (1024 * 1024)
/* One read from the transport, one decrypted chunk: a TLS record's worth. */
#define HARK_LINK_READ_CHUNK 16384
#define HARK_LINK_BINDING_SIZE 32
#define HARK_LINK_BINDING_LABEL "EXPORTER-hark-link-auth"

struct _HarkLink {
  guint refs; /* the user's, plus one per async operation or source in flight */
  gboolean freed; /* hark_link_free was called: no more handler callbacks */
  GMainContext *main_context;
  char *transport;
  char *peer_host;
  guint16 peer_port;
  gboolean opener;
  HarkLinkState state;
  HarkLinkStats stats;
  HarkLinkHandler handler;
  gpointer user_data;

  /* TLS over two memory BIOs: what arrives is written into rbio, what SSL produces is
   * read from wbio and handed to the byte pump. */
  char *ca_pem;
  SSL_CTX *ssl_ctx;
  SSL *ssl;
  BIO *rbio;
  BIO *wbio;
  HarkDeviceCertificate *peer_certificate;
  GSource *expiry_timer; /* accepting: ends the link when the peer's certificate expires */

  GByteArray *plaintext; /* decrypted bytes not yet framed into messages */
  HarkLinkRawReceived raw_received; /* hark_link_divert: the bytes go there unframed */
  gboolean plain; /* diverted before TLS: the peer never started a handshake */
  gboolean tls_seen; /* accepting: the first byte was a TLS handshake record's */
  gpointer raw_data;
  gboolean advancing; /* TLS is being run: bytes fed meanwhile are read by that loop */
  gint64 last_drop_logged; /* monotonic µs of the last g_message about a dropped frame */

  guint handshake_timeout_ms;
  GSource *handshake_timer;
  GSource *closed_idle; /* delivers the closed handler */
  GError *close_error;

  /* Byte pump 1: a GIOStream. */
  GIOStream *stream;
  GCancellable *read_cancellable;
  GCancellable *write_cancellable;
  guint8 *read_buffer; /* for GIO's async reads; NULL while the node's poller reads */
  gboolean read_pending;
  HarkNode *node; /* borrowed, for its poller at the start */
  HarkLinkPoller *poller; /* a reference while this link's socket is in its epoll set */
  gboolean polled;
  GBytes *writing; /* in flight */
  GByteArray *to_write; /* waiting behind it */
  GSource *flush_timer; /* bounds the best-effort flush after a close */
  gboolean stream_closing;

  /* Byte pump 2: a pipe of the transport's. */
  const HarkLinkPipe *pipe_iface;
  gpointer pipe;
};

/* link.c */
/* After link->peer_certificate was set (at the handshake or by a later proof): on the
 * accepting side, (re)arms the timer that ends the link when that certificate expires.
 * A certificate is renewed only while its account and device are in good standing, so
 * this bounds how long a revoked device or a deleted account keeps a link. */
void hark_link_watch_peer_certificate(HarkLink *link);

/* link-tls.c */
/* The node's TLS contexts (HarkNodeLinks.tls_cache), freed with the node. */
void hark_link_tls_cache_free(HarkLinkTlsCache *cache);
/* A TLS 1.3 endpoint for link->opener with this node's credentials: the CA pinned by the
 * login section, and this device's certificate and key when logged in. NO_CREDENTIALS
 * when the node cannot make (or, accepting, cannot serve) links. */
gboolean hark_link_tls_setup(HarkLink *link, HarkNode *node, GError **error);
/* After the handshake: the peer's certificate checked against the CA and read into
 * link->peer_certificate. UNTRUSTED when it does not hold or a server showed none. */
gboolean hark_link_tls_check_peer(HarkLink *link, GError **error);
/* Why a handshake that OpenSSL gave up on failed: UNTRUSTED when the peer's certificate
 * did not verify, else HANDSHAKE with OpenSSL's words. Empties the error queue. */
GError *hark_link_tls_handshake_error(HarkLink *link);

/* link.c */
/* Shorter handshake timeouts for tests; counted from the link's creation. */
void hark_link_set_handshake_timeout(HarkLink *link, guint ms);
/* The internal reference count (see link.c). */
HarkLink *hark_link_hold(HarkLink *link);
void hark_link_release(HarkLink *link);
/* A source on the node's context whose callback gets the link; it holds a reference. */
GSource *hark_link_attach_source(HarkLink *link, GSource *source, GSourceFunc callback);
void hark_link_destroy_source(GSource **source);
/* Bytes from the transport into TLS; may call every handler. */
void hark_link_feed(HarkLink *link, const guint8 *data, gsize size);
/* End the link with this error (the closed handler hears it), saying goodbye in TLS. */
void hark_link_fail(HarkLink *link, HarkLinkError code, const char *format, ...)
  G_GNUC_PRINTF(3, 4);
/* HANDSHAKE while handshaking, else CLOSED: what the transport going away means. */
HarkLinkError hark_link_gone_code(HarkLink *link);

/* link-poller.c: the node's epoll set for the sockets of stream links. add: FALSE when
 * the stream is not a socket or there is no epoll (then read through GIO). */
gboolean hark_link_poller_add(HarkLink *link);
void hark_link_poller_remove(HarkLink *link);
void hark_link_poller_free(HarkLinkPoller *poller);

/* link-stream.c */
/* What a read gave: n > 0 bytes in buffer, 0 at the end of the stream, < 0 with error. */
void hark_link_stream_got(HarkLink *link, const guint8 *buffer, gssize n, const GError *error);
/* Start reading (again, unless a read is in flight or the link has ended). */
void hark_link_stream_read(HarkLink *link);
/* What TLS produced (in wbio) goes to the write queue. */
void hark_link_stream_queue(HarkLink *link);
/* Bytes queued and in flight. */
gsize hark_link_stream_queued(HarkLink *link);
/* The link ended: stop reading; flush (bounded in time) or drop what is queued; close. */
void hark_link_stream_end(HarkLink *link, gboolean flush);
