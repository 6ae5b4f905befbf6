/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-nodes.h: real nodes in one process for tests of links and transports, "logged in"
 * without a login server: a test CA issues each node's device certificate and leaves it
 * as certificate.pem in the node's state directory, where the login client loads it. */
#pragma once

#include <hark/hark.h>

typedef struct {
  char *dir;            /* temporary; removed with everything below it */
  HarkCa *ca;           /* the CA every node pins unless told otherwise */
  char *ca_path;
  HarkCa *other_ca;     /* a CA nobody pins */
  char *other_ca_path;
  GPtrArray *nodes;     /* HarkNode*, freed at the end */
  GPtrArray *links;     /* HarkLink*, freed at the end (accepted ones are added) */
  HarkLink *accepted;   /* the last link a node accepted */
} HarkTestNet;

/* template: for g_dir_make_tmp, e.g. "hark-link-XXXXXX". */
void hark_test_net_init(HarkTestNet *net, const char *template);
/* Frees every link, then every node, then the directory; nothing once cleared (or never
 * initialised: all zero). */
void hark_test_net_clear(HarkTestNet *net);
/* g_auto(HarkTestNet) net = { 0 }: cleared however the case returns, so that no node or
 * link of it, nor a handler pointing into the case's stack, outlives the case. */
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HarkTestNet, hark_test_net_clear)

/* A started node named name. ca_path: what its login section pins (NULL: no login
 * section). issuer: the CA that certified it (NULL: not logged in). plugins: a plugins
 * group of the configuration (or NULL). Accepted links land in net->accepted. */
HarkNode *hark_test_net_node(HarkTestNet *net, const char *name, const char *ca_path,
                             HarkCa *issuer, const char *plugins);

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
