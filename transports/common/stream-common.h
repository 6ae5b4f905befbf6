/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stream-common.h: what the stream transports (tcp, tls443) share, compiled into each
 * plugin, since a plugin cannot use another's symbols: a TCP listener whose connections
 * become links, and connection attempts with a timeout that the caller may cancel. */
#pragma once

#include <hark/hark.h>

typedef struct {
  HarkContext *ctx;
  const char *transport; /* the registration's name, static */
  GSocketService *service; /* while listening */
  guint16 port; /* the port listened on, 0 when not */
  guint64 accepted, failed; /* connections made links / turned away */
} HarkStreamListener;

/* Accept on address:port (0: any) on the node's main context; every connection becomes
 * a link (hark_link_new_for_stream, accepting side) with TCP_NODELAY set. */
gboolean hark_stream_listener_start(HarkStreamListener *listener, const char *address, guint16 port,
                                    GError **error);
void hark_stream_listener_stop(HarkStreamListener *listener);

/* host (new string, NULL when not an IP address) and port of a peer's address. */
void hark_stream_peer_of(GSocketAddress *address, char **host, guint16 *port);

/* Overlay messages are small and latency matters more than packet count. */
void hark_stream_set_nodelay(GSocketConnection *connection);

/* One asynchronous connection attempt: run it with `cancellable`, which the caller's
 * cancellable, the timeout and hark_stream_attempt_abandon() cancel. */
typedef struct {
  GCancellable *cancellable;
  GCancellable *caller;
  gulong caller_handler;
  GSource *timeout;
  gboolean timed_out;
} HarkStreamAttempt;

void hark_stream_attempt_init(HarkStreamAttempt *attempt, GCancellable *caller);
/* (Re)arm: a fresh cancellable and timeout_ms on context, for each try. */
void hark_stream_attempt_arm(HarkStreamAttempt *attempt, GMainContext *context, guint timeout_ms);
/* Cancelled by the caller or abandoned (not by the timeout): nobody is to be told. */
gboolean hark_stream_attempt_abandoned(HarkStreamAttempt *attempt);
void hark_stream_attempt_abandon(HarkStreamAttempt *attempt);
void hark_stream_attempt_clear(HarkStreamAttempt *attempt);

/* At unload: abandon every attempt in the set (whose elements start with their
 * HarkStreamAttempt) and run context until their callbacks, which are plugin code, have
 * all run and emptied the set. */
void hark_stream_attempts_drain(GHashTable *set, GMainContext *context);
