/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-nodes.c: see test-nodes.h. */
#include "test-nodes.h"

#include "node-private.h"
#include "test-files.h"
#include "test-wait.h"

#include <glib/gstdio.h>
#include <string.h>

/* Any well-formed account id will do for certificates made here. */
#define TEST_ACCOUNT_ID "00112233445566778899aabbccddeeff"


#define DAY (24 * 3600)

static char *
write_ca(HarkCa *ca, const char *dir)
{
  g_autofree char *path = g_build_filename(dir, "ca.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_set_contents(path, hark_ca_get_certificate_pem(ca), -1, &error));
  return g_steal_pointer(&path);
}

void
hark_test_net_init(HarkTestNet *net, const char *template)
{
  g_autoptr(GError) error = NULL;
  net->dir = g_dir_make_tmp(template, &error);
  g_assert_no_error(error);
  g_autofree char *ca_dir = g_build_filename(net->dir, "ca", NULL);
  g_autofree char *other_dir = g_build_filename(net->dir, "other-ca", NULL);
  net->ca = hark_ca_load_or_create(ca_dir, "test CA", &error);
  g_assert_no_error(error);
  net->other_ca = hark_ca_load_or_create(other_dir, "other CA", &error);
  g_assert_no_error(error);
  net->ca_path = write_ca(net->ca, ca_dir);
  net->other_ca_path = write_ca(net->other_ca, other_dir);
  net->nodes = g_ptr_array_new();
  net->links = g_ptr_array_new();
  net->accepted = NULL;
}

void
hark_test_net_clear(HarkTestNet *net)
{
  if (net->nodes == NULL)
    return;
  for (guint i = 0; i < net->links->len; i++)
    hark_link_free(net->links->pdata[i]);
  g_ptr_array_unref(net->links);
  /* Closing streams and idles hold the links until they have run: no condition to wait
   * for is visible from here, so give them a moment (cleanup only, no check follows). */
  hark_test_let_time_pass(20);
  for (guint i = 0; i < net->nodes->len; i++)
    hark_node_free(net->nodes->pdata[i]);
  g_ptr_array_unref(net->nodes);
  hark_test_iterate();
  hark_ca_free(net->ca);
  hark_ca_free(net->other_ca);
  hark_test_remove_tree(net->dir);
  g_free(net->ca_path);
  g_free(net->other_ca_path);
  g_free(net->dir);
  memset(net, 0, sizeof *net);
}

static void
on_accepted(HarkLink *link, gpointer data)
{
  HarkTestNet *net = data;
  net->accepted = link;
  g_ptr_array_add(net->links, link);
}

HarkNode *
hark_test_net_node(HarkTestNet *net, const char *name, const char *ca_path, HarkCa *issuer,
                   const char *plugins)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *state = g_build_filename(net->dir, name, NULL);
  g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
  if (issuer != NULL) {
    g_autofree char *key_path = g_build_filename(state, "identity.pem", NULL);
    g_autoptr(HarkIdentity) identity = hark_identity_load_or_create(key_path, NULL, &error);
    g_assert_no_error(error);
    g_autofree char *public_pem = hark_identity_get_public_pem(identity);
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_autofree char *cert =
      hark_ca_issue_device(issuer, name, TEST_ACCOUNT_ID, public_pem, now - 60, DAY, &error);
    g_assert_no_error(error);
    g_autofree char *cert_path = g_build_filename(state, "certificate.pem", NULL);
    g_assert_true(g_file_set_contents_full(cert_path, cert, -1, G_FILE_SET_CONTENTS_NONE,
                                           0600, &error));
  }
  g_autofree char *login = ca_path == NULL ? g_strdup("") :
    g_strdup_printf("login = { url = \"https://127.0.0.1:9/\"; ca = \"%s\"; };\n", ca_path);
  /* Every node of a test runs on 127.0.0.1: loopback addresses are SNs and peers here. */
  g_autofree char *text = g_strdup_printf("node = { name = \"%s\"; state_dir = \"%s\"; };\n"
                                          "network = { allow_loopback = true; };\n%s%s",
                                          name, state, login, plugins != NULL ? plugins : "");
  HarkConfig *config = hark_config_load_from_string(text, NULL, &error);
  g_assert_no_error(error);
  HarkNode *node = hark_node_new(config);
  g_ptr_array_add(net->nodes, node);
  g_assert_true(hark_node_load_plugins(node, &error));
  g_assert_no_error(error);
  g_assert_true(hark_node_start(node, &error));
  g_assert_no_error(error);
  HarkLoginClient *client = hark_node_root(node)->login;
  g_assert_true((issuer != NULL) ==
                (client != NULL && hark_login_client_certificate_der(client) != NULL));
  hark_link_set_network_handlers(node, on_accepted, NULL, net);
  return node;
}

HarkRegistration *
hark_test_transport(HarkNode *node, const char *name)
{
  g_autoptr(GPtrArray) found = hark_context_lookup(hark_node_get_context(node),
                                                   HARK_KIND_TRANSPORT);
  g_assert_cmpuint(found->len, ==, 1);
  HarkRegistration *reg = found->pdata[0];
  g_assert_cmpstr(reg->name, ==, name);
  return reg;
}

gint64
hark_test_transport_stat(const HarkRegistration *transport, const char *member)
{
  const HarkTransportInterface *iface = transport->iface;
  g_autoptr(JsonObject) stats = iface->stats(transport->instance);
  return json_object_get_int_member(stats, member);
}

void
hark_test_on_opened(HarkLink *link, GError *error, gpointer data)
{
  HarkTestOpened *o = data;
  o->calls++;
  o->link = link;
  o->error = error;
}
