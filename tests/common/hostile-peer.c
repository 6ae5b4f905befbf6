/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostile-peer.c: the in-process peers of the presence, directory and overlay tests
 * (hostile-peer.h): the steps each of them took alike, from the lab's CA to a JOINed link. */
#include "hostile-peer.h"

#include "test-wait.h"

#include <string.h>

#define PEER_OPEN_MS 5000

HarkCa *
hark_test_peer_ca(const char *state_dir)
{
  g_autofree char *dir = g_build_filename(state_dir, "ca", NULL);
  g_autoptr(GError) error = NULL;
  /* The CA exists: the name is only for a new one. */
  HarkCa *ca = hark_ca_load_or_create(dir, "unused: the CA exists", &error);
  if (ca == NULL)
    g_test_fail_printf("cannot read the lab's CA in %s: %s", dir, error->message);
  return ca;
}

HarkNode *
hark_test_peer_node(HarkTestNet *net, const char *name, HarkCa *ca)
{
  return hark_test_net_node(net, name, ca, ca, "plugins = { load = ( { name = \"tcp\"; } ); };\n");
}

char *
hark_test_peer_address(const char *host, guint last)
{
  const char *dot = strrchr(host, '.');
  g_assert_nonnull(dot);
  return g_strdup_printf("%.*s.%u", (int)(dot - host), host, last);
}

gboolean
hark_test_peer_listen(HarkNode *node, const char *host, guint16 port)
{
  HarkRegistration *tcp = hark_test_transport(node, "tcp");
  const HarkTransportInterface *iface = tcp->iface;
  g_autoptr(GError) error = NULL;
  if (iface->listen(tcp->instance, host, port, &error))
    return TRUE;
  g_test_fail_printf("cannot listen at %s:%u: %s", host, port, error->message);
  return FALSE;
}

HarkLink *
hark_test_peer_open(HarkTestNet *net, HarkNode *node, const char *host, guint16 port,
                    const HarkLinkHandler *handler, gpointer data)
{
  HarkRegistration *tcp = hark_test_transport(node, "tcp");
  const HarkTransportInterface *iface = tcp->iface;
  /* On the heap: an open that is still running when the wait gives up reports later,
   * and then into memory that is still there (it leaks, the case failed anyway). */
  HarkTestOpened *opened = g_new0(HarkTestOpened, 1);
  iface->open(tcp->instance, host, port, NULL, hark_test_on_opened, opened);
  if (!hark_test_wait_for(hark_test_opened_is_up, opened, hark_test_timeout(PEER_OPEN_MS))) {
    g_test_fail_printf("no link to %s:%u", host, port);
    return NULL;
  }
  HarkLink *link = opened->link;
  g_free(opened);
  g_ptr_array_add(net->links, link);
  hark_link_set_handler(link, handler, data);
  return link;
}

void
hark_test_peer_join(HarkLink *link, const char *name, const char *announced, guint16 port)
{
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string(name));
  g_variant_builder_add(&dict, "{sv}", "as",
                        g_variant_new_string(announced != NULL ? "peer" : "client"));
  if (announced != NULL) {
    const char *const tcp_only[] = { "tcp", NULL };
    g_variant_builder_add(&dict, "{sv}", "host", g_variant_new_string(announced));
    g_variant_builder_add(&dict, "{sv}", "port", g_variant_new_uint16(port));
    g_variant_builder_add(&dict, "{sv}", "transports", g_variant_new_strv(tcp_only, -1));
  }
  hark_link_send(link, HARK_MSG_JOIN, 1, g_variant_new("(a{sv})", &dict), NULL);
}

void
hark_test_peer_closed(HarkLink *link, const GError *error, gpointer data)
{
}

GSocket *
hark_test_peer_tarpit(guint16 *port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, &error);
  g_assert_no_error(error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  g_assert_true(g_socket_bind(socket, any, FALSE, &error));
  g_assert_true(g_socket_listen(socket, &error));
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address(socket, &error);
  g_assert_no_error(error);
  *port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  return g_steal_pointer(&socket);
}
