/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay.h: the TURN server (RFC 8656) every super node runs for its logged-in users
 * (docs/protocol.md, "TURN"). The overlay starts it when the node becomes an SN (and
 * supernode.relay allows, and no supernode.turn_server names another), and hands its
 * clients credentials for it over their links (core/overlay/overlay-turn.c) with the
 * secret it keeps here. Clients reach it over UDP and TCP on supernode.relay_port; it
 * relays to peers over UDP from ports of supernode.relay_min_port..relay_max_port on the
 * SN's address. Everything runs on the node's main loop. Private to the core. */
#pragma once

#include "hark/config.h"
#include "hark/identity.h"

#include <json-glib/json-glib.h>
#include <sys/socket.h>

G_BEGIN_DECLS

typedef struct _HarkRelay HarkRelay;

/* Listens on config->listen_address:sn_relay_port (UDP and TCP) and, with identity
 * (the node's key, for a self-signed certificate) and sn_relay_tls_port not 0, TLS on
 * that port; public_host: the address clients and peers reach this SN at (the relayed
 * addresses name it). NULL with an error when the secret cannot be had or the ports are
 * taken. */
HarkRelay *hark_relay_new(const HarkConfig *config, HarkIdentity *identity, const char *public_host,
                          GError **error);
void hark_relay_free(HarkRelay *relay);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkRelay, hark_relay_free)

/* The secret credentials are minted with (relay-auth.h); owned by the relay. */
GBytes *hark_relay_get_secret(HarkRelay *relay);
guint16 hark_relay_get_port(HarkRelay *relay);
/* 0 when it takes no TURN over TLS. */
guint16 hark_relay_get_tls_port(HarkRelay *relay);
const char *hark_relay_get_host(HarkRelay *relay);
/* Whether a new Allocate would get 508 now: supernode.relay_max_allocations reached, or
 * the total bandwidth used up within the last 2 s. The overlay then hands its clients
 * another SN's relay (docs/protocol.md, "TURN: steering"). */
gboolean hark_relay_is_full(HarkRelay *relay);

/* The realm it names in its 401 answers. */
#define HARK_RELAY_REALM "hark"

/* The counters, for `overlay` → `relay`: allocations now and per user, bytes and
 * datagrams relayed, refusals by reason. */
JsonObject *hark_relay_describe(HarkRelay *relay);

/* One datagram from a client over UDP, as the server's socket would hand it (the fuzz
 * target feeds it directly). from: a struct sockaddr of that size. */
void hark_relay_receive_udp(HarkRelay *relay, const guint8 *data, gsize size,
                            const struct sockaddr *from);

/* A decrypted byte stream the layer above accepted and found to carry TURN (the SN's web
 * port, docs/protocol.md "TURN over TLS on the web port"), served like a connection to
 * relay_tls_port. The relay writes to the client with send (FALSE: the bytes could not
 * be queued; the client then loses them, as a slow TCP client does) and calls close
 * once when it ends the connection (an error in the stream, its allocation's end by
 * idleness); never after hark_relay_stream_closed. */
typedef struct {
  gboolean (*send)(gpointer data, const guint8 *bytes, gsize size);
  void (*close)(gpointer data);
} HarkRelayStreamOps;

typedef struct _RelayTcp HarkRelayStream;

/* NULL when the client's address is not one or the relay has no connection slot left
 * (counted as a refusal for capacity). */
HarkRelayStream *hark_relay_stream_new(HarkRelay *relay, const char *client_host, guint16 client_port,
                                       const HarkRelayStreamOps *ops, gpointer data);
/* The bytes the client sent, in order, any amount at a time. */
void hark_relay_stream_feed(HarkRelayStream *stream, const guint8 *data, gsize size);
/* The stream ended on the other side: its allocation ends, and stream is freed (close is
 * not called). */
void hark_relay_stream_closed(HarkRelayStream *stream);

G_END_DECLS
