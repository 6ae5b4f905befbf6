/* fake-stun.c: see fake-stun.h. The answers are built with the core's own STUN encoder
 * (core/stun.h), the one super nodes answer with; what is fake is the NAT in between. */
#include "fake-stun.h"

#include "stun.h"

#define FIRST_PUBLIC_PORT 40000
#define BIND_TRIES 20

/* Sockets by index: bit 1 the alternate IP, bit 0 the alternate port. */
#define N_SOCKETS 4
#define CHANGE_TO(index, change) \
  ((index) ^ (((change)&HARK_STUN_CHANGE_IP) ? 2 : 0) ^ (((change)&HARK_STUN_CHANGE_PORT) ? 1 : 0))

typedef struct {
  HarkFakeStun *owner;
  guint index;
  GSocket *socket;
  GSource *source;
  GInetSocketAddress *address;
} FakeSocket;

struct _HarkFakeStun {
  FakeSocket sockets[N_SOCKETS];
  HarkFakeNat nat;
  HarkFakeStunHooks hooks;
  gboolean has_hooks;
  GHashTable *mappings; /* "client|key" -> public port */
  GHashTable *contacted; /* "client|server ip:port" -> present: the client sent there */
  guint next_port;
  HarkFakeStunCounters counters;
};

static char *
text_of(GInetSocketAddress *address)
{
  g_autofree char *ip = g_inet_address_to_string(g_inet_socket_address_get_address(address));
  return g_strdup_printf("%s:%u", ip, g_inet_socket_address_get_port(address));
}

static char *
ip_of(GInetSocketAddress *address)
{
  return g_inet_address_to_string(g_inet_socket_address_get_address(address));
}

/* ---- the NAT model ---------------------------------------------------------------- */

/* The part of the destination a mapping depends on. */
static char *
mapping_key(HarkFakeStun *stun, GInetSocketAddress *client, GInetSocketAddress *asked)
{
  g_autofree char *who = text_of(client);
  switch (stun->nat.mapping) {
  case HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT: {
    g_autofree char *ip = ip_of(asked);
    return g_strdup_printf("%s|%s", who, ip);
  }
  case HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT: {
    g_autofree char *where = text_of(asked);
    return g_strdup_printf("%s|%s", who, where);
  }
  default:
    return g_strdup(who);
  }
}

static GInetSocketAddress *
model_map(HarkFakeStun *stun, GInetSocketAddress *client, GInetSocketAddress *asked)
{
  if (!stun->nat.nat)
    return g_object_ref(client);
  char *key = mapping_key(stun, client, asked);
  guint port = GPOINTER_TO_UINT(g_hash_table_lookup(stun->mappings, key));
  if (port == 0) {
    port = stun->next_port++;
    g_hash_table_insert(stun->mappings, key, GUINT_TO_POINTER(port));
  } else {
    g_free(key);
  }
  return G_INET_SOCKET_ADDRESS(
    g_inet_socket_address_new_from_string(HARK_FAKE_STUN_PUBLIC_IP, port));
}

static void
model_remember(HarkFakeStun *stun, GInetSocketAddress *client, GInetSocketAddress *asked)
{
  g_autofree char *who = text_of(client);
  g_autofree char *where = text_of(asked);
  g_hash_table_add(stun->contacted, g_strdup_printf("%s|%s", who, where));
}

/* Would the NAT's filter let an answer from `from` in to this client? */
static gboolean
model_lets_in(HarkFakeStun *stun, GInetSocketAddress *client, GInetSocketAddress *from)
{
  if (!stun->nat.nat || stun->nat.filtering == HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT)
    return TRUE;
  g_autofree char *who = text_of(client);
  if (stun->nat.filtering == HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT) {
    /* Any port of an address the client has sent to. */
    for (guint i = 0; i < N_SOCKETS; i++) {
      GInetSocketAddress *other = stun->sockets[i].address;
      if (!g_inet_address_equal(g_inet_socket_address_get_address(other),
                                g_inet_socket_address_get_address(from)))
        continue;
      g_autofree char *where = text_of(other);
      g_autofree char *key = g_strdup_printf("%s|%s", who, where);
      if (g_hash_table_contains(stun->contacted, key))
        return TRUE;
    }
    return FALSE;
  }
  /* Address and port dependent (and UNKNOWN, the strictest). */
  g_autofree char *where = text_of(from);
  g_autofree char *key = g_strdup_printf("%s|%s", who, where);
  return g_hash_table_contains(stun->contacted, key);
}

/* ---- serving ---------------------------------------------------------------------- */

static void
send_answer(FakeSocket *out, GInetSocketAddress *client, GBytes *answer)
{
  gsize size;
  const char *data = g_bytes_get_data(answer, &size);
  g_autoptr(GError) error = NULL;
  if (g_socket_send_to(out->socket, G_SOCKET_ADDRESS(client), data, size, NULL, &error) < 0)
    g_debug("fake-stun: cannot send: %s", error->message);
}

static void
serve(FakeSocket *in, GInetSocketAddress *client, GBytes *datagram)
{
  HarkFakeStun *stun = in->owner;
  HarkStunRequest request;
  g_autoptr(GError) error = NULL;
  if (!hark_stun_read_request(datagram, TRUE, &request, &error)) {
    stun->counters.malformed++;
    return;
  }
  stun->counters.requests++;
  if (stun->nat.blocked) {
    stun->counters.dropped++;
    return;
  }
  model_remember(stun, client, in->address);
  FakeSocket *out = &stun->sockets[CHANGE_TO(in->index, request.change)];
  FakeSocket *other = &stun->sockets[out->index ^ 3];
  gboolean lets_in =
    stun->has_hooks && stun->hooks.answer != NULL
      ? stun->hooks.answer(client, in->address, out->address, request.change, stun->hooks.data)
      : model_lets_in(stun, client, out->address);
  if (!lets_in) {
    stun->counters.dropped++;
    return;
  }
  g_autoptr(GInetSocketAddress) mapped = stun->has_hooks && stun->hooks.map != NULL
                                           ? stun->hooks.map(client, in->address, stun->hooks.data)
                                           : NULL;
  if (mapped == NULL)
    mapped = model_map(stun, client, in->address);
  g_autoptr(GBytes) answer =
    hark_stun_answer_request(&request, G_SOCKET_ADDRESS(mapped), G_SOCKET_ADDRESS(out->address),
                             G_SOCKET_ADDRESS(other->address), &error);
  g_assert_no_error(error);
  send_answer(out, client, answer);
  stun->counters.answers++;
}

static gboolean
on_readable(GSocket *socket, GIOCondition condition, gpointer data)
{
  FakeSocket *in = data;
  for (;;) {
    guint8 buffer[1500];
    GSocketAddress *from_raw = NULL;
    gssize n = g_socket_receive_from(socket, &from_raw, (char *)buffer, sizeof buffer, NULL, NULL);
    g_autoptr(GSocketAddress) from = from_raw;
    if (n < 0)
      break;
    if (from == NULL || !G_IS_INET_SOCKET_ADDRESS(from))
      continue;
    g_autoptr(GBytes) datagram = g_bytes_new(buffer, (gsize)n);
    serve(in, G_INET_SOCKET_ADDRESS(from), datagram);
  }
  return G_SOURCE_CONTINUE;
}

/* ---- sockets ---------------------------------------------------------------------- */

static GSocket *
bound_socket(const char *ip, guint16 port, GError **error)
{
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string(ip, port);
  if (socket == NULL || !g_socket_bind(socket, address, FALSE, error))
    return NULL;
  g_socket_set_blocking(socket, FALSE);
  return g_steal_pointer(&socket);
}

static guint16
port_of(GSocket *socket)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, NULL);
  return local != NULL ? g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local)) : 0;
}

static void
close_sockets(GSocket **sockets)
{
  for (guint i = 0; i < N_SOCKETS; i++)
    g_clear_object(&sockets[i]);
}

/* Two ephemeral ports on 127.0.0.2, then the same two on 127.0.0.3 (tried again with
 * others when another process holds one there). */
static gboolean
bind_all(GSocket **sockets, GError **error)
{
  for (int attempt = 0; attempt < BIND_TRIES; attempt++) {
    g_autoptr(GError) local = NULL;
    sockets[0] = bound_socket("127.0.0.2", 0, error);
    sockets[1] = sockets[0] != NULL ? bound_socket("127.0.0.2", 0, error) : NULL;
    if (sockets[1] == NULL) {
      close_sockets(sockets);
      return FALSE;
    }
    sockets[2] = bound_socket("127.0.0.3", port_of(sockets[0]), &local);
    if (sockets[2] != NULL)
      sockets[3] = bound_socket("127.0.0.3", port_of(sockets[1]), &local);
    if (sockets[3] != NULL)
      return TRUE;
    close_sockets(sockets);
    if (!g_error_matches(local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) {
      g_propagate_error(error, g_steal_pointer(&local));
      return FALSE;
    }
  }
  g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                      "fake-stun: no two ports free on both 127.0.0.2 and 127.0.0.3");
  return FALSE;
}

HarkFakeStun *
hark_fake_stun_new(GError **error)
{
  GSocket *sockets[N_SOCKETS] = { NULL };
  if (!bind_all(sockets, error))
    return NULL;
  HarkFakeStun *stun = g_new0(HarkFakeStun, 1);
  stun->mappings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  stun->contacted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  stun->next_port = FIRST_PUBLIC_PORT;
  for (guint i = 0; i < N_SOCKETS; i++) {
    FakeSocket *s = &stun->sockets[i];
    s->owner = stun;
    s->index = i;
    s->socket = sockets[i];
    g_autoptr(GSocketAddress) local = g_socket_get_local_address(s->socket, NULL);
    s->address = G_INET_SOCKET_ADDRESS(g_object_ref(local));
    s->source = g_socket_create_source(s->socket, G_IO_IN, NULL);
    g_source_set_callback(s->source, G_SOURCE_FUNC(on_readable), s, NULL);
    g_source_attach(s->source, g_main_context_get_thread_default());
  }
  return stun;
}

void
hark_fake_stun_free(HarkFakeStun *stun)
{
  if (stun == NULL)
    return;
  for (guint i = 0; i < N_SOCKETS; i++) {
    FakeSocket *s = &stun->sockets[i];
    g_source_destroy(s->source);
    g_source_unref(s->source);
    g_socket_close(s->socket, NULL);
    g_object_unref(s->socket);
    g_object_unref(s->address);
  }
  g_hash_table_unref(stun->mappings);
  g_hash_table_unref(stun->contacted);
  g_free(stun);
}

void
hark_fake_stun_set_nat(HarkFakeStun *stun, const HarkFakeNat *nat)
{
  stun->nat = *nat;
  g_hash_table_remove_all(stun->mappings);
  g_hash_table_remove_all(stun->contacted);
}

void
hark_fake_stun_set_hooks(HarkFakeStun *stun, const HarkFakeStunHooks *hooks)
{
  stun->has_hooks = hooks != NULL;
  if (hooks != NULL)
    stun->hooks = *hooks;
}

char *
hark_fake_stun_primary(HarkFakeStun *stun)
{
  return text_of(stun->sockets[0].address);
}

GInetSocketAddress *
hark_fake_stun_address(HarkFakeStun *stun, gboolean alternate_ip, gboolean alternate_port)
{
  return stun->sockets[(alternate_ip ? 2 : 0) | (alternate_port ? 1 : 0)].address;
}

const HarkFakeStunCounters *
hark_fake_stun_counters(HarkFakeStun *stun)
{
  return &stun->counters;
}
