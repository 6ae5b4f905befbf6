/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-table.c: allocations, permissions, channels and quotas of the TURN server
 * (relay-table.h). Allocations are found by the client's transport address in a hash
 * table; an allocation's permissions and channels are short arrays scanned in order,
 * since a call has one or two peers. */
#include "relay-table.h"

#include <netinet/in.h>
#include <string.h>

struct _RelayTable {
  GHashTable *by_client; /* RelayAddr* (the allocation's own) -> RelayAllocation* */
  GHashTable *per_user; /* user -> GUINT_TO_POINTER(count) */
  guint max_total, max_per_user;
  GDestroyNotify free_owner;
};

static guint
addr_hash(gconstpointer key)
{
  const RelayAddr *a = key;
  guint h = (guint)a->family * 31u + a->transport;
  h = h * 31u + a->port;
  for (int i = 0; i < 16; i++)
    h = h * 31u + a->addr[i];
  return h;
}

static gboolean
addr_equal(gconstpointer a, gconstpointer b)
{
  return memcmp(a, b, sizeof(RelayAddr)) == 0;
}

static gboolean
same_ip(const RelayAddr *a, const RelayAddr *b)
{
  return a->family == b->family && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

static gboolean
same_transport_address(const RelayAddr *a, const RelayAddr *b)
{
  return same_ip(a, b) && a->port == b->port;
}

static void
allocation_free(RelayTable *table, RelayAllocation *allocation)
{
  if (table->free_owner != NULL && allocation->owner != NULL)
    table->free_owner(allocation->owner);
  g_array_unref(allocation->permissions);
  g_array_unref(allocation->channels);
  explicit_bzero(allocation->key, sizeof allocation->key);
  g_free(allocation->user);
  g_free(allocation->username);
  g_free(allocation);
}

RelayTable *
hark_relay_table_new(guint max_total, guint max_per_user, GDestroyNotify free_owner)
{
  RelayTable *table = g_new0(RelayTable, 1);
  table->by_client = g_hash_table_new(addr_hash, addr_equal);
  table->per_user = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  table->max_total = max_total;
  table->max_per_user = max_per_user;
  table->free_owner = free_owner;
  return table;
}

void
hark_relay_table_free(RelayTable *table)
{
  if (table == NULL)
    return;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, table->by_client);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    g_hash_table_iter_steal(&iter);
    allocation_free(table, value);
  }
  g_hash_table_unref(table->by_client);
  g_hash_table_unref(table->per_user);
  g_free(table);
}

guint
hark_relay_table_user_count(RelayTable *table, const char *user)
{
  return GPOINTER_TO_UINT(g_hash_table_lookup(table->per_user, user));
}

guint
hark_relay_table_size(RelayTable *table)
{
  return g_hash_table_size(table->by_client);
}

guint
hark_relay_table_admits(RelayTable *table, const char *user)
{
  if (table->max_per_user != 0 && hark_relay_table_user_count(table, user) >= table->max_per_user)
    return 486;
  if (table->max_total != 0 && hark_relay_table_size(table) >= table->max_total)
    return 508;
  return 0;
}

RelayAllocation *
hark_relay_table_add(RelayTable *table, const RelayAddr *client, const char *user,
                     const char *username, const guint8 key[16], const guint8 transaction_id[12],
                     guint lifetime, gint64 now)
{
  RelayAllocation *allocation = g_new0(RelayAllocation, 1);
  allocation->client = *client;
  allocation->user = g_strdup(user);
  allocation->username = g_strdup(username);
  memcpy(allocation->key, key, sizeof allocation->key);
  memcpy(allocation->transaction_id, transaction_id, sizeof allocation->transaction_id);
  allocation->expires = now + lifetime;
  allocation->permissions = g_array_new(FALSE, FALSE, sizeof(RelayPermission));
  allocation->channels = g_array_new(FALSE, FALSE, sizeof(RelayChannel));
  g_hash_table_insert(table->by_client, &allocation->client, allocation);
  g_hash_table_insert(table->per_user, g_strdup(user),
                      GUINT_TO_POINTER(hark_relay_table_user_count(table, user) + 1));
  return allocation;
}

RelayAllocation *
hark_relay_table_find(RelayTable *table, const RelayAddr *client)
{
  return g_hash_table_lookup(table->by_client, client);
}

static void
uncount_user(RelayTable *table, const char *user)
{
  guint count = hark_relay_table_user_count(table, user);
  if (count <= 1)
    g_hash_table_remove(table->per_user, user);
  else
    g_hash_table_insert(table->per_user, g_strdup(user), GUINT_TO_POINTER(count - 1));
}

void
hark_relay_table_remove(RelayTable *table, RelayAllocation *allocation)
{
  if (!g_hash_table_remove(table->by_client, &allocation->client))
    return;
  uncount_user(table, allocation->user);
  allocation_free(table, allocation);
}

static void
forget_expired(GArray *array, gsize element, gsize expires_offset, gint64 now)
{
  for (guint i = array->len; i-- > 0;) {
    const guint8 *item = (const guint8 *)array->data + i * element;
    gint64 expires;
    memcpy(&expires, item + expires_offset, sizeof expires);
    if (expires <= now)
      g_array_remove_index_fast(array, i);
  }
}

guint
hark_relay_table_expire(RelayTable *table, gint64 now)
{
  g_autoptr(GPtrArray) gone = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, table->by_client);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    RelayAllocation *allocation = value;
    if (allocation->expires <= now) {
      g_ptr_array_add(gone, allocation);
      continue;
    }
    forget_expired(allocation->permissions, sizeof(RelayPermission),
                   G_STRUCT_OFFSET(RelayPermission, expires), now);
    forget_expired(allocation->channels, sizeof(RelayChannel),
                   G_STRUCT_OFFSET(RelayChannel, expires), now);
  }
  for (guint i = 0; i < gone->len; i++)
    hark_relay_table_remove(table, gone->pdata[i]);
  return gone->len;
}

void
hark_relay_table_foreach(RelayTable *table, GFunc func, gpointer data)
{
  g_autoptr(GList) all = g_hash_table_get_values(table->by_client);
  for (GList *l = all; l != NULL; l = l->next)
    func(l->data, data);
}

guint
hark_relay_lifetime_granted(gint64 requested, gboolean refresh)
{
  if (requested == 0 && refresh)
    return 0;
  if (requested < 0)
    return RELAY_LIFETIME_DEFAULT_S;
  return (guint)CLAMP(requested, RELAY_LIFETIME_DEFAULT_S, RELAY_LIFETIME_MAX_S);
}

void
hark_relay_allocation_refresh(RelayAllocation *allocation, guint lifetime, gint64 now)
{
  allocation->expires = now + lifetime;
}

gboolean
hark_relay_allocation_permit(RelayAllocation *allocation, const RelayAddr *peer, gint64 now)
{
  for (guint i = 0; i < allocation->permissions->len; i++) {
    RelayPermission *p = &g_array_index(allocation->permissions, RelayPermission, i);
    if (same_ip(&p->peer, peer)) {
      p->expires = now + RELAY_PERMISSION_S;
      return TRUE;
    }
  }
  if (allocation->permissions->len >= RELAY_PERMISSIONS_MAX)
    return FALSE;
  RelayPermission p = { *peer, now + RELAY_PERMISSION_S };
  p.peer.port = 0;
  g_array_append_val(allocation->permissions, p);
  return TRUE;
}

gboolean
hark_relay_allocation_permitted(const RelayAllocation *allocation, const RelayAddr *peer,
                                gint64 now)
{
  for (guint i = 0; i < allocation->permissions->len; i++) {
    const RelayPermission *p = &g_array_index(allocation->permissions, RelayPermission, i);
    if (same_ip(&p->peer, peer))
      return p->expires > now;
  }
  return FALSE;
}

guint
hark_relay_allocation_bind(RelayAllocation *allocation, guint16 number, const RelayAddr *peer,
                           gint64 now)
{
  RelayChannel *found = NULL;
  for (guint i = 0; i < allocation->channels->len; i++) {
    RelayChannel *c = &g_array_index(allocation->channels, RelayChannel, i);
    gboolean same_number = c->number == number;
    gboolean same_peer = same_transport_address(&c->peer, peer);
    if (same_number != same_peer)
      return 400;
    if (same_number)
      found = c;
  }
  if (found == NULL && allocation->channels->len >= RELAY_CHANNELS_MAX)
    return 508;
  if (!hark_relay_allocation_permit(allocation, peer, now))
    return 508;
  if (found != NULL) {
    found->expires = now + RELAY_CHANNEL_S;
    return 0;
  }
  RelayChannel c = { number, *peer, now + RELAY_CHANNEL_S };
  g_array_append_val(allocation->channels, c);
  return 0;
}

const RelayChannel *
hark_relay_allocation_channel(const RelayAllocation *allocation, guint16 number, gint64 now)
{
  for (guint i = 0; i < allocation->channels->len; i++) {
    const RelayChannel *c = &g_array_index(allocation->channels, RelayChannel, i);
    if (c->number == number)
      return c->expires > now ? c : NULL;
  }
  return NULL;
}

const RelayChannel *
hark_relay_allocation_channel_to(const RelayAllocation *allocation, const RelayAddr *peer,
                                 gint64 now)
{
  for (guint i = 0; i < allocation->channels->len; i++) {
    const RelayChannel *c = &g_array_index(allocation->channels, RelayChannel, i);
    if (same_transport_address(&c->peer, peer))
      return c->expires > now ? c : NULL;
  }
  return NULL;
}

gboolean
hark_relay_bucket_take(RelayBucket *bucket, guint64 rate, gsize bytes, gint64 now_us)
{
  if (rate == 0)
    return TRUE;
  double refill = (double)(now_us - bucket->last_us) * (double)rate / G_USEC_PER_SEC;
  bucket->tokens = MIN((double)rate, bucket->tokens + refill);
  bucket->last_us = now_us;
  if (bucket->tokens < (double)bytes)
    return FALSE;
  bucket->tokens -= (double)bytes;
  return TRUE;
}

/* ---- addresses ---------------------------------------------------------------------- */

gboolean
hark_relay_addr_from_sockaddr(const struct sockaddr *sa, guint8 transport, RelayAddr *out)
{
  static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
  memset(out, 0, sizeof *out);
  out->transport = transport;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    out->family = 4;
    out->port = ntohs(in->sin_port);
    memcpy(out->addr, &in->sin_addr, 4);
    return TRUE;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    out->port = ntohs(in6->sin6_port);
    if (memcmp(&in6->sin6_addr, v4_mapped, sizeof v4_mapped) == 0) {
      out->family = 4;
      memcpy(out->addr, (const guint8 *)&in6->sin6_addr + 12, 4);
    } else {
      out->family = 6;
      memcpy(out->addr, &in6->sin6_addr, 16);
    }
    return TRUE;
  }
  return FALSE;
}

gsize
hark_relay_addr_to_sockaddr(const RelayAddr *addr, gboolean v6_socket, struct sockaddr_storage *out)
{
  memset(out, 0, sizeof *out);
  if (addr->family == 4 && v6_socket) {
    /* A dual-stack socket (network.listen "::") reaches IPv4 as ::ffff:a.b.c.d. */
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(addr->port);
    guint8 *bytes = (guint8 *)&in6->sin6_addr;
    bytes[10] = bytes[11] = 0xFF;
    memcpy(bytes + 12, addr->addr, 4);
    return sizeof *in6;
  }
  if (addr->family == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    in->sin_family = AF_INET;
    in->sin_port = htons(addr->port);
    memcpy(&in->sin_addr, addr->addr, 4);
    return sizeof *in;
  }
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(addr->port);
  memcpy(&in6->sin6_addr, addr->addr, 16);
  return sizeof *in6;
}

gboolean
hark_relay_addr_from_inet(GInetSocketAddress *address, guint8 transport, RelayAddr *out)
{
  struct sockaddr_storage storage;
  if (!g_socket_address_to_native(G_SOCKET_ADDRESS(address), &storage, sizeof storage, NULL))
    return FALSE;
  return hark_relay_addr_from_sockaddr((struct sockaddr *)&storage, transport, out);
}

GSocketAddress *
hark_relay_addr_to_inet(const RelayAddr *addr)
{
  struct sockaddr_storage storage;
  gsize size = hark_relay_addr_to_sockaddr(addr, FALSE, &storage);
  return g_socket_address_new_from_native(&storage, size);
}

char *
hark_relay_addr_text(const RelayAddr *addr)
{
  g_autoptr(GInetAddress) ip = g_inet_address_new_from_bytes(
    addr->addr, addr->family == 4 ? G_SOCKET_FAMILY_IPV4 : G_SOCKET_FAMILY_IPV6);
  g_autofree char *text = g_inet_address_to_string(ip);
  return addr->family == 4 ? g_strdup_printf("%s:%u", text, addr->port)
                           : g_strdup_printf("[%s]:%u", text, addr->port);
}
