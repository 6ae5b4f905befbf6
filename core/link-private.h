/* link-private.h: what link.c (the byte pumps, framing and life cycle) and link-tls.c
 * (OpenSSL: credentials, peer checks, channel binding) share about a HarkLink, and the
 * test hook for the handshake timeout. Private to libhark, never installed. */
#pragma once

#include "hark-private.h"
#include "hark/link.h"

#include <openssl/ssl.h>

#define HARK_LINK_HANDSHAKE_TIMEOUT_MS 10000
/* Encrypted bytes waiting for the transport; a peer that lets more pile up does not read. */
#define HARK_LINK_WRITE_LIMIT (1024 * 1024)
#define HARK_LINK_BINDING_SIZE 32
#define HARK_LINK_BINDING_LABEL "EXPORTER-hark-link-auth"

struct _HarkLink {
  guint refs;        /* the user's, plus one per async operation or source in flight */
  gboolean freed;    /* hark_link_free was called: no more handler callbacks */
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

  GByteArray *plaintext; /* decrypted bytes not yet framed into messages */
  gboolean advancing;    /* TLS is being run: bytes fed meanwhile are read by that loop */
  gint64 last_drop_logged; /* monotonic µs of the last g_message about a dropped frame */

  guint handshake_timeout_ms;
  GSource *handshake_timer;
  GSource *closed_idle;  /* delivers the closed handler */
  GError *close_error;

  /* Byte pump 1: a GIOStream. */
  GIOStream *stream;
  GCancellable *read_cancellable;
  GCancellable *write_cancellable;
  guint8 *read_buffer;
  gboolean read_pending;
  GBytes *writing;       /* in flight */
  GByteArray *to_write;  /* waiting behind it */
  GSource *flush_timer;  /* bounds the best-effort flush after a close */
  gboolean stream_closing;

  /* Byte pump 2: a pipe of the transport's. */
  const HarkLinkPipe *pipe_iface;
  gpointer pipe;
};

/* link-tls.c */
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
