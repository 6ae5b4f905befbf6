/* test-ports.c: ports that cannot race (see test-ports.h). */
#include "test-ports.h"

GSocket *
hark_test_closed_port(guint16 *port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr(GInetAddress) any = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) where = g_inet_socket_address_new(any, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  /* allow_reuse FALSE: no SO_REUSEADDR, so nobody can bind the port beside us. */
  if (socket == NULL || !g_socket_bind(socket, where, FALSE, &error) ||
      (bound = g_socket_get_local_address(socket, &error)) == NULL) {
    g_test_fail_printf("cannot hold a TCP port: %s", error->message);
    return NULL;
  }
  *port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  return g_steal_pointer(&socket);
}
