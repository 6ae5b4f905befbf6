/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-private.h: what the TURN server's files share (relay.c: requests and the data
 * path over UDP; relay-tcp.c: clients over TCP and TLS). Not installed. */
#pragma once

#include "relay-auth.h"
#include "relay-peer.h"
#include "relay-table.h"
#include "relay.h"
#include "stun.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

G_BEGIN_DECLS

#define SWEEP_S 5 /* expired allocations, permissions and channels go this often */
#define HEADROOM 48 /* a Data indication's header for an IPv6 peer: 20 + 24 + 4 */
#define DATAGRAM_MAX 65535
#define BATCH 64 /* datagrams read per wake-up, so one socket cannot starve the others */
#define RECV_BATCH 16 /* datagrams per recvmmsg(); BATCH is a multiple of it */
#define SLOT_SIZE (HEADROOM + DATAGRAM_MAX + 4) /* a datagram, its header room, padding */
#define EPOLL_BATCH 256 /* ready relayed sockets taken per wake-up */
#define TCP_FRAME_MAX (HARK_STUN_HEADER_SIZE + 65535 + 4)
#define TCP_OUT_MAX (256 * 1024) /* bytes queued to a slow TCP client; more is dropped */
#define TCP_CONNECTIONS_EXTRA 64 /* TCP clients beyond the allocation limit (asking first) */
#define TCP_IDLE_S 30 /* a TCP client without an allocation by then is closed */
#define PORT_TRIES 32
#define LISTENER_BUFFER (4 * 1024 * 1024) /* bytes of the clients' UDP socket's buffers */
#define RELAYED_BUFFER (256 * 1024) /* of each relayed socket */
#define UNAUTHENTICATED_PER_S 1000 /* answers without MESSAGE-INTEGRITY over UDP */
#define SATURATED_US (2 * G_USEC_PER_SEC) /* 508 this long after the total bandwidth dropped */

/* Why requests were refused and datagrams dropped, counted (`overlay` → `relay`). */
typedef struct {
  guint64 malformed; /* not STUN/TURN, or broken: dropped */
  guint64 unauthenticated; /* 401 to a request without credentials (the first step) */
  guint64 wrong_credentials; /* 401: unknown, malformed or wrong username/password */
  guint64 expired_credentials; /* 401: the username's expiry has passed */
  guint64 stale_nonce; /* 438 */
  guint64 bad_request; /* 400 */
  guint64 unknown_attribute; /* 420 */
  guint64 forbidden; /* 403: a denied peer */
  guint64 mismatch; /* 437: no allocation, or one exists already */
  guint64 wrong_user; /* 441: not the allocation's username */
  guint64 unsupported_transport; /* 442 */
  guint64 unsupported_family; /* 440, 443 */
  guint64 quota; /* 486 */
  guint64 capacity; /* 508 */
  guint64 no_allocation; /* data from a client without allocation: dropped */
  guint64 unbound_channel; /* ChannelData on a channel not bound: dropped */
  guint64 no_permission; /* to or from a peer without permission: dropped */
  guint64 bandwidth; /* over the allocation's or the relay's bandwidth: dropped */
  guint64 tcp_idle; /* TCP connections closed without an allocation after TCP_IDLE_S */
  guint64 unanswered; /* unauthenticated requests over UDP past UNAUTHENTICATED_PER_S */
} RelayRefusals;

typedef struct _RelayTcp RelayTcp;

/* Where a message came from: the address, and the TCP connection when not UDP. */
typedef struct {
  RelayAddr addr;
  RelayTcp *tcp;
} RelayFrom;

/* The sockets of one allocation (RelayAllocation.owner). */
typedef struct {
  HarkRelay *relay;
  RelayAllocation *allocation;
  GSocket *socket;
  gboolean watched; /* in the relay's epoll set */
  int fd;
  guint16 port;
  RelayTcp *tcp; /* the connection it was made over, NULL over UDP */
  RelayBucket bucket;
} RelayOwner;

struct _RelayTcp {
  HarkRelay *relay;
  /* A connection of the relay's own listeners; or (stream NULL) one the overlay hands
   * over (hark_relay_stream_new: TURN over TLS on the SN's web port), written through
   * ops and fed by hark_relay_stream_feed. */
  const HarkRelayStreamOps *ops;
  gpointer ops_data;
  GIOStream *stream; /* a GSocketConnection, or a GTlsConnection over one */
  GPollableInputStream *input;
  GPollableOutputStream *output;
  GSource *source, *out_source;
  RelayAddr client;
  gint64 opened; /* monotonic s */
  guint8 *in; /* TCP_FRAME_MAX bytes */
  gsize in_len;
  GByteArray *out;
};

struct _HarkRelay {
  char *host; /* what relayed addresses name */
  GInetAddress *public_ip;
  GInetAddress *bind_ip;
  gboolean v6_sockets; /* bind_ip is IPv6: IPv4 peers and clients are ::ffff:a.b.c.d */
  guint16 port;
  guint min_port, max_port;
  GBytes *secret;
  guint8 nonce_key[RELAY_NONCE_KEY_SIZE];
  RelayTable *table;
  HarkCidr *allow;
  gsize n_allow;
  guint64 allocation_rate, total_rate; /* bytes/s, 0: no limit */
  RelayBucket total_bucket;
  gint64 saturated_at_us; /* when the total bandwidth last dropped a datagram, 0: never */
  RelayBucket unauthenticated; /* answers without integrity over UDP (answer_send) */
  guint max_tcp;

  GSocket *udp;
  int udp_fd;
  GSource *udp_source;
  GSocket *tcp_listener;
  GSource *tcp_source;
  guint16 tls_port; /* 0: no TURN over TLS */
  GTlsCertificate *tls_certificate;
  GSocket *tls_listener;
  GSource *tls_source;
  GHashTable *tcp_clients; /* RelayTcp* set */
  int epoll_fd; /* the relayed sockets (RelayOwner as data), one source of the loop */
  GSource *peers_source;
  struct epoll_event events[EPOLL_BATCH];
  int n_events, event_next; /* of events, while on_peers_readable works through them */
  gpointer reading; /* the RelayOwner being read, NULL between batches */
  gboolean events_owner_gone; /* it was freed meanwhile: stop reading it */
  guint sweep_timer;

  guint64 allocations_made, datagrams_to_peers, datagrams_from_peers, bytes_to_peers,
    bytes_from_peers;
  RelayRefusals refused;

  /* Received datagrams (recvmmsg): RECV_BATCH slots of SLOT_SIZE bytes, each a datagram
   * at HEADROOM so a Data indication or ChannelData header is built in front of it. */
  guint8 *slots;
  struct mmsghdr messages[RECV_BATCH];
  struct iovec iov[RECV_BATCH];
  struct sockaddr_storage from[RECV_BATCH];
};

static inline gint64
now_s(void)
{
  return g_get_monotonic_time() / G_USEC_PER_SEC;
}

static inline guint16
get16(const guint8 *p)
{
  return (guint16)((p[0] << 8) | p[1]);
}

static inline void
put16(guint8 *p, guint16 v)
{
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
}

/* relay.c */
/* One message from a client (STUN or ChannelData), over any transport. */
void hark_relay_handle_message(HarkRelay *relay, const RelayFrom *from, const guint8 *data,
                               gsize size);
/* A refusal at debug level: the client's address, the user (escaped), what. */
void hark_relay_log_refusal(const RelayFrom *from, const char *user, const char *what);
/* An allocation made or ended, with its user (escaped) and the bytes it relayed. */
void hark_relay_log_allocation(RelayAllocation *allocation, const char *what);

/* relay-tcp.c */
/* Queues data to a TCP or TLS client (dropped past TCP_OUT_MAX: a client that does not
 * read). */
void hark_relay_tcp_send(RelayTcp *tcp, const guint8 *data, gsize size);
/* The relay's tcp_clients table's free function. */
void hark_relay_tcp_free(gpointer tcp);
/* Closes TCP clients without an allocation after TCP_IDLE_S. */
void hark_relay_tcp_close_idle(HarkRelay *relay, gint64 now);
/* The listeners' callbacks: plain TCP, and TLS. */
gboolean hark_relay_tcp_on_accept(GSocket *listener, GIOCondition condition, gpointer data);
gboolean hark_relay_tls_on_accept(GSocket *listener, GIOCondition condition, gpointer data);
/* A self-signed certificate of the node's key for TURN over TLS. */
GTlsCertificate *hark_relay_tls_certificate(HarkIdentity *identity, const char *host,
                                            GError **error);

G_END_DECLS
