/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-nodes.c: see test-nodes.h. */
#include "test-nodes.h"

#include "link-private.h"
#include "test-files.h"
#include "test-wait.h"

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
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
  net->credentials = g_ptr_array_new_with_free_func((GDestroyNotify)hark_test_credentials_free);
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
  /* After the nodes: each borrowed its credentials to the end. */
  g_ptr_array_unref(net->credentials);
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

/* ---- credentials handed to the link layer ------------------------------------------- */

static GBytes *
pem_to_der(const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  g_assert_nonnull(x509);
  unsigned char *der = NULL;
  int size = i2d_X509(x509, &der);
  X509_free(x509);
  g_assert_cmpint(size, >, 0);
  GBytes *bytes = g_bytes_new(der, (gsize)size);
  OPENSSL_free(der);
  return bytes;
}

static const char *
credentials_ca_pem(gpointer data)
{
  return ((HarkTestCredentials *)data)->ca_pem;
}

static GBytes *
credentials_certificate_der(gpointer data)
{
  return ((HarkTestCredentials *)data)->certificate_der;
}

static const HarkLinkCredentials test_credentials = {
  .ca_pem = credentials_ca_pem,
  .certificate_der = credentials_certificate_der,
};

void
hark_test_credentials_free(HarkTestCredentials *credentials)
{
  g_free(credentials->ca_pem);
  g_clear_pointer(&credentials->certificate_der, g_bytes_unref);
  g_free(credentials);
}

char *
hark_test_issue_pem(HarkCa *issuer, HarkIdentity *identity, const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *public_pem = hark_identity_get_public_pem(identity);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  char *cert =
    hark_ca_issue_device(issuer, user, TEST_ACCOUNT_ID, public_pem, now - 60, DAY, &error);
  g_assert_no_error(error);
  return cert;
}

GBytes *
hark_test_issue_device(HarkCa *issuer, const char *user, HarkIdentity *identity, gint64 not_before,
                       gint64 lifetime)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *public_pem = hark_identity_get_public_pem(identity);
  char *pem =
    hark_ca_issue_device(issuer, user, TEST_ACCOUNT_ID, public_pem, not_before, lifetime, &error);
  g_assert_no_error(error);
  return g_bytes_new_take(pem, strlen(pem));
}

GBytes *
hark_test_issue_device_der(HarkCa *issuer, const char *user, HarkIdentity *identity,
                           gint64 not_before, gint64 lifetime)
{
  g_autoptr(GBytes) pem = hark_test_issue_device(issuer, user, identity, not_before, lifetime);
  return pem_to_der(g_bytes_get_data(pem, NULL));
}

HarkIdentity *
hark_test_identity_new(const char *dir, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename(dir, name, NULL);
  HarkIdentity *identity = hark_identity_load_or_create(path, NULL, &error);
  g_assert_no_error(error);
  return identity;
}

HarkTestCredentials *
hark_test_net_credentials(HarkTestNet *net, HarkNode *node, HarkCa *pinned, HarkCa *issuer)
{
  HarkTestCredentials *credentials = g_new0(HarkTestCredentials, 1);
  credentials->ca_pem = g_strdup(hark_ca_get_certificate_pem(pinned));
  if (issuer != NULL) {
    g_autofree char *pem = hark_test_issue_pem(issuer, node->identity, node->config->node_name);
    credentials->certificate_der = pem_to_der(pem);
  }
  g_ptr_array_add(net->credentials, credentials);
  hark_link_set_credentials(node, &test_credentials, credentials);
  return credentials;
}

void
hark_test_credentials_set_certificate(HarkTestCredentials *credentials, const char *pem)
{
  g_clear_pointer(&credentials->certificate_der, g_bytes_unref);
  if (pem != NULL)
    credentials->certificate_der = pem_to_der(pem);
}

/* ---- nodes ------------------------------------------------------------------------------ */

static HarkNode *
start_node(HarkTestNet *net, const char *name, const char *node_keys, const char *network_keys,
           const char *groups)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *state = g_build_filename(net->dir, name, NULL);
  g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
  /* Every node of a test runs on 127.0.0.1: loopback addresses are SNs and peers here. */
  g_autofree char *text =
    g_strdup_printf("node = { name = \"%s\"; state_dir = \"%s\"; %s };\n"
                    "network = { allow_loopback = true; %s };\n%s",
                    name, state, node_keys != NULL ? node_keys : "",
                    network_keys != NULL ? network_keys : "", groups != NULL ? groups : "");
  HarkConfig *config = hark_config_load_from_string(text, NULL, &error);
  g_assert_no_error(error);
  HarkNode *node = hark_node_new(config);
  g_ptr_array_add(net->nodes, node);
  g_assert_true(hark_node_load_plugins(node, &error));
  g_assert_no_error(error);
  g_assert_true(hark_node_start(node, &error));
  g_assert_no_error(error);
  return node;
}

HarkNode *
hark_test_net_node(HarkTestNet *net, const char *name, HarkCa *pinned, HarkCa *issuer,
                   const char *plugins)
{
  return hark_test_net_node_configured(net, name, pinned, issuer, NULL, NULL, plugins);
}

HarkNode *
hark_test_net_node_configured(HarkTestNet *net, const char *name, HarkCa *pinned, HarkCa *issuer,
                              const char *node_keys, const char *network_keys, const char *groups)
{
  /* No login section: no login client and no overlay; the link layer gets its
   * credentials from the test. */
  HarkNode *node = start_node(net, name, node_keys, network_keys, groups);
  if (pinned != NULL)
    hark_test_net_credentials(net, node, pinned, issuer);
  else
    g_assert_null(issuer);
  hark_link_set_network_handlers(node, on_accepted, NULL, net);
  return node;
}

HarkRegistration *
hark_test_transport(HarkNode *node, const char *name)
{
  g_autoptr(GPtrArray) found =
    hark_context_lookup(hark_node_get_context(node), HARK_KIND_TRANSPORT);
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

gboolean
hark_test_opened_is_up(gpointer data)
{
  HarkTestOpened *opened = data;
  return opened->link != NULL && hark_link_get_state(opened->link) == HARK_LINK_UP;
}
