/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transport.h: the interface of a transport plugin (kind HARK_KIND_TRANSPORT).
 *
 * A transport moves overlay traffic between nodes. Stream transports (tcp, tls443)
 * open and accept byte streams and hand each to the core as a HarkLink (hark/link.h),
 * which runs TLS and framing over it. Datagram transports (udp) send and receive
 * single datagrams: probes, STUN, and the few small requests that need an answer, which
 * the transport retransmits until the answer comes.
 *
 * The core picks among registered transports by rank and configuration; it calls every
 * function on the node's main loop. */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "hark/context.h"
#include "hark/link.h"

G_BEGIN_DECLS

#define HARK_TRANSPORT_INTERFACE_VERSION 1

#define HARK_TRANSPORT_ERROR (hark_transport_error_quark())
HARK_API GQuark hark_transport_error_quark(void);

typedef enum {
  HARK_TRANSPORT_ERROR_UNREACHABLE, /* refused, no route, or every port tried failed */
  HARK_TRANSPORT_ERROR_TIMEOUT, /* no connection or no answer in time */
  HARK_TRANSPORT_ERROR_LISTEN, /* cannot listen where configured */
  HARK_TRANSPORT_ERROR_UNSUPPORTED, /* a stream call on a datagram transport, or back */
} HarkTransportError;

typedef enum {
  HARK_TRANSPORT_STREAM = 1u << 0, /* open/listen give HarkLinks */
  HARK_TRANSPORT_DATAGRAM = 1u << 1, /* send_to/request */
} HarkTransportFlags;

/* opened: exactly once; either link (in HARK_LINK_HANDSHAKING; the caller owns it and
 * sets its handler) or error (the callee takes it). Not called after the cancellable was
 * cancelled (the transport then frees what it made). */
typedef void (*HarkTransportOpened)(HarkLink *link, GError *error, gpointer user_data);

/* answered: exactly once; reply (the answer's bytes) with the round trip of the
 * transmission that was answered, or error (TIMEOUT); both borrowed. Not called after
 * cancel. */
typedef void (*HarkTransportAnswered)(GBytes *reply, gint64 rtt_us, const GError *error,
                                      gpointer user_data);

typedef struct {
  guint32 version; /* HARK_TRANSPORT_INTERFACE_VERSION; new members go at the end */
  guint32 flags; /* HarkTransportFlags */

  /* Start accepting on address (e.g. "0.0.0.0") and port (the overlay port; 0: any).
   * A transport with ports of its own (tls443: 443 and 80) takes them from its settings
   * and ignores port. Accepted streams become links the core gives the overlay.
   * Calling it again while listening is an error. */
  gboolean (*listen)(gpointer instance, const char *address, guint16 port, GError **error);
  /* Stop accepting; links already made stay up. */
  void (*stop_listening)(gpointer instance);
  /* The port actually listened on (after port 0), 0 when not listening. */
  guint16 (*local_port)(gpointer instance);

  /* Stream transports: open a link to the node at host, whose overlay port is port
   * (tls443 uses its own ports and tries them in order). */
  void (*open)(gpointer instance, const char *host, guint16 port, GCancellable *cancellable,
               HarkTransportOpened opened, gpointer user_data);

  /* Datagram transports: one datagram, no answer expected. */
  gboolean (*send_to)(gpointer instance, GSocketAddress *to, GBytes *datagram, GError **error);
  /* A wire message (hark/wire.h) with the given id that expects an answer from the same
   * address carrying the same id: sent, and resent with a growing interval until the
   * answer comes or timeout_ms has passed. */
  void (*request)(gpointer instance, GSocketAddress *to, GBytes *message, guint64 id,
                  guint timeout_ms, GCancellable *cancellable, HarkTransportAnswered answered,
                  gpointer user_data);

  /* Counters and state for `overlay` and `state`: at least "listening" (port or null);
   * datagram transports add "datagrams_in", "datagrams_out", "retransmissions",
   * "dropped". A new object. */
  JsonObject *(*stats)(gpointer instance);
} HarkTransportInterface;

/* For datagram transports: a datagram that is not the answer to one of its requests
 * arrived from `from` (a STUN request, a probe, ...). The core decides what it is; the
 * transport answers through its own send_to when the core asks it to. The core may
 * drop it (counted, logged at a rate-limited level). */
HARK_API void hark_transport_datagram_received(HarkContext *ctx, const char *transport,
                                               GSocketAddress *from, GBytes *datagram);

G_END_DECLS
