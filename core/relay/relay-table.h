/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-table.h: the TURN server's allocations (RFC 8656), their permissions and
 * channels, and the per-user and total quotas, as plain data: every function that
 * needs the time takes it (monotonic seconds), so the unit tests move time by hand
 * (tests/unit/test-relay.c). The sockets live in relay-server.c. Private to the core. */
#pragma once

#include <gio/gio.h>
#include <sys/socket.h>

G_BEGIN_DECLS

#define RELAY_LIFETIME_DEFAULT_S 600 /* RFC 8656 2.2 */
#define RELAY_LIFETIME_MAX_S 3600
#define RELAY_PERMISSION_S 300 /* RFC 8656 9 */
#define RELAY_CHANNEL_S 600 /* RFC 8656 12 */
#define RELAY_CHANNEL_MIN 0x4000
#define RELAY_CHANNEL_MAX \
  0x7FFF /* RFC 5766's range, which coturn's clients use; RFC 8656 says 0x4FFF */
#define RELAY_PERMISSIONS_MAX 64 /* per allocation: more is a scan, not a call */
#define RELAY_CHANNELS_MAX 64

enum {
  RELAY_UDP = 17,
  RELAY_TCP = 6
};

/* A transport address as a fixed-size, hashable value (no allocation per datagram). */
typedef struct {
  guint8 family; /* 4 or 6 */
  guint8 transport; /* RELAY_UDP or RELAY_TCP: how the client reaches the server */
  guint16 port;
  guint8 addr[16]; /* 4 or 16 bytes used, the rest zero */
} RelayAddr;

typedef struct {
  RelayAddr peer; /* the port is not part of a permission (RFC 8656 9) */
  gint64 expires;
} RelayPermission;

typedef struct {
  guint16 number;
  RelayAddr peer;
  gint64 expires;
} RelayChannel;

typedef struct _RelayAllocation RelayAllocation;
struct _RelayAllocation {
  RelayAddr client;
  char *user; /* the name after "EXPIRY:" in the username: quotas and logs */
  char *username; /* the whole username the allocation was made with */
  guint8 key[16]; /* its long-term key */
  guint8 transaction_id[12]; /* of the Allocate: a retransmission gets the same answer */
  gint64 expires;
  GArray *permissions; /* RelayPermission */
  GArray *channels; /* RelayChannel */
  gpointer owner; /* relay-server.c's state for it (sockets), freed by the table's notify */
  guint64 bytes_to_peers, bytes_from_peers;
};

typedef struct _RelayTable RelayTable;

/* max_total, max_per_user: 0 for no limit. free_owner: called on an allocation's owner
 * when it leaves the table. */
RelayTable *hark_relay_table_new(guint max_total, guint max_per_user, GDestroyNotify free_owner);
void hark_relay_table_free(RelayTable *table);

/* 0 when user may make one more allocation, else the TURN error: 486 (the user's quota)
 * or 508 (the server's). */
guint hark_relay_table_admits(RelayTable *table, const char *user);
/* A new allocation in the table (the caller checked admits and that the client has none). */
RelayAllocation *hark_relay_table_add(RelayTable *table, const RelayAddr *client, const char *user,
                                      const char *username, const guint8 key[16],
                                      const guint8 transaction_id[12], guint lifetime, gint64 now);
RelayAllocation *hark_relay_table_find(RelayTable *table, const RelayAddr *client);
void hark_relay_table_remove(RelayTable *table, RelayAllocation *allocation);
/* Removes expired allocations and forgets expired permissions and channels of the rest;
 * returns how many allocations went. */
guint hark_relay_table_expire(RelayTable *table, gint64 now);
guint hark_relay_table_size(RelayTable *table);
guint hark_relay_table_user_count(RelayTable *table, const char *user);
/* Calls func for each allocation. */
void hark_relay_table_foreach(RelayTable *table, GFunc func, gpointer data);

/* The lifetime a request asks for (LIFETIME, or -1 when absent) as RFC 8656 7.2 and
 * 8 grant it: at most 3600 s, at least the default 600 s; 0 only for a Refresh (delete). */
guint hark_relay_lifetime_granted(gint64 requested, gboolean refresh);

void hark_relay_allocation_refresh(RelayAllocation *allocation, guint lifetime, gint64 now);
/* Installs or refreshes a permission for peer's IP (300 s); FALSE when the allocation
 * already has RELAY_PERMISSIONS_MAX others. */
gboolean hark_relay_allocation_permit(RelayAllocation *allocation, const RelayAddr *peer,
                                      gint64 now);
gboolean hark_relay_allocation_permitted(const RelayAllocation *allocation, const RelayAddr *peer,
                                         gint64 now);
/* Binds (or refreshes) channel number to peer for 600 s, and refreshes the permission:
 * 0, or 400 when the number is bound to another peer or the peer to another number (RFC
 * 8656 11.2), or 508 when the allocation has RELAY_CHANNELS_MAX channels already. */
guint hark_relay_allocation_bind(RelayAllocation *allocation, guint16 number, const RelayAddr *peer,
                                 gint64 now);
/* The live channel with that number / to that peer (address and port), or NULL. */
const RelayChannel *hark_relay_allocation_channel(const RelayAllocation *allocation, guint16 number,
                                                  gint64 now);
const RelayChannel *hark_relay_allocation_channel_to(const RelayAllocation *allocation,
                                                     const RelayAddr *peer, gint64 now);

/* A token bucket of bytes: rate bytes/s, at most one second's worth saved (start it
 * full: tokens = rate). */
typedef struct {
  double tokens;
  gint64 last_us;
} RelayBucket;

/* Whether bytes may pass at now_us (monotonic µs), taking them; always with rate 0. */
gboolean hark_relay_bucket_take(RelayBucket *bucket, guint64 rate, gsize bytes, gint64 now_us);

/* RelayAddr from/to socket addresses (IPv4-mapped IPv6 as IPv4); FALSE when not IP. */
gboolean hark_relay_addr_from_sockaddr(const struct sockaddr *sa, guint8 transport, RelayAddr *out);
/* v6_socket: for an IPv6 (dual-stack) socket, which takes IPv4 as ::ffff:a.b.c.d. */
gsize hark_relay_addr_to_sockaddr(const RelayAddr *addr, gboolean v6_socket,
                                  struct sockaddr_storage *out);
gboolean hark_relay_addr_from_inet(GInetSocketAddress *address, guint8 transport, RelayAddr *out);
GSocketAddress *hark_relay_addr_to_inet(const RelayAddr *addr);
/* "1.2.3.4:5" or "[::1]:5" for logs. */
char *hark_relay_addr_text(const RelayAddr *addr);

G_END_DECLS
