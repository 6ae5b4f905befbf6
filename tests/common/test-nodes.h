/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-nodes.h: real nodes in one process for tests of links, transports and the
 * overlay, "logged in" without a login server or a login client: a test CA issues each
 * node's device certificate and the test hands the CA and the certificate to the link
 * layer through hark_link_set_credentials (docs/testing.md, "Unit tests of links and
 * the overlay"). */
#pragma once

#include <hark/hark.h>

typedef struct {
  char *dir; /* temporary; removed with everything below it */
  HarkCa *ca; /* the CA every node pins unless told otherwise */
  char *ca_path;
  HarkCa *other_ca; /* a CA nobody pins */
  char *other_ca_path;
  GPtrArray *nodes; /* HarkNode*, freed at the end */
  GPtrArray *links; /* HarkLink*, freed at the end (accepted ones are added) */
  GPtrArray *credentials; /* HarkTestCredentials*, freed after the nodes */
  HarkLink *accepted; /* the last link a node accepted */
} HarkTestNet;

/* template: for g_dir_make_tmp, e.g. "hark-link-XXXXXX". */
void hark_test_net_init(HarkTestNet *net, const char *template);
/* Frees every link, then every node, then the directory; nothing once cleared (or never
 * initialised: all zero). */
void hark_test_net_clear(HarkTestNet *net);
/* g_auto(HarkTestNet) net = { 0 }: cleared however the case returns, so that no node or
 * link of it, nor a handler pointing into the case's stack, outlives the case. */
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HarkTestNet, hark_test_net_clear)

/* What a node's links trust and show, as the test handed it in. */
typedef struct {
  char *ca_pem; /* the pinned CA */
  GBytes *certificate_der; /* this device's certificate; NULL: not logged in */
} HarkTestCredentials;

void hark_test_credentials_free(HarkTestCredentials *credentials);
/* A device certificate (PEM) for identity, user name user, valid for a day. */
char *hark_test_issue_pem(HarkCa *issuer, HarkIdentity *identity, const char *user);
/* The same, valid lifetime seconds from not_before, as bytes (PEM). */
GBytes *hark_test_issue_device(HarkCa *issuer, const char *user, HarkIdentity *identity,
                               gint64 not_before, gint64 lifetime);
/* The same as DER. */
GBytes *hark_test_issue_device_der(HarkCa *issuer, const char *user, HarkIdentity *identity,
                                   gint64 not_before, gint64 lifetime);
/* A new device key in dir/name (the test fails when it cannot be made). */
HarkIdentity *hark_test_identity_new(const char *dir, const char *name);
/* Hands node's link layer credentials: pinned's certificate as the CA, and (issuer not
 * NULL) a certificate issuer made for the node's identity and name. Owned by net; the
 * test may change the certificate later (a login, a renewal, a logout). */
HarkTestCredentials *hark_test_net_credentials(HarkTestNet *net, HarkNode *node, HarkCa *pinned,
                                               HarkCa *issuer);
/* pem NULL: logged out. */
void hark_test_credentials_set_certificate(HarkTestCredentials *credentials, const char *pem);

/* A started node named name, without a login section. pinned: the CA its links check
 * peers against (NULL: no credentials, the node makes no links). issuer: the CA that
 * certified it (NULL: not logged in). plugins: a plugins group of the configuration (or
 * NULL). Accepted links land in net->accepted. */
HarkNode *hark_test_net_node(HarkTestNet *net, const char *name, HarkCa *pinned, HarkCa *issuer,
                             const char *plugins);
/* The same with more keys in the node and network groups (e.g. "supernode = true;",
 * "port = 4000;") and more groups (plugins, supernode, ...); each may be NULL. */
HarkNode *hark_test_net_node_configured(HarkTestNet *net, const char *name, HarkCa *pinned,
                                        HarkCa *issuer, const char *node_keys,
                                        const char *network_keys, const char *groups);

/* The node's only transport registration, which must be called name. */
HarkRegistration *hark_test_transport(HarkNode *node, const char *name);
/* An integer member of the transport's stats. */
gint64 hark_test_transport_stat(const HarkRegistration *transport, const char *member);

/* What a transport's open() answered (HarkTransportOpened; the error is taken). */
typedef struct {
  int calls;
  HarkLink *link;
  GError *error;
} HarkTestOpened;

void hark_test_on_opened(HarkLink *link, GError *error, gpointer opened);
/* A HarkTestCondition: the link opened is up (data: HarkTestOpened*). */
gboolean hark_test_opened_is_up(gpointer opened);
