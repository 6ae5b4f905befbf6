/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostile-peer.h: a node in the test's own process that talks to a real super node message
 * by message: a stranger, a hostile client or a hostile SN peer. It holds a device
 * certificate of the lab's CA, as anybody who registers does, so the SN takes its link;
 * what it then sends is the test's (docs/testing.md, "Hostile peers in the test's
 * process"). Its node and links belong to a HarkTestNet (test-nodes.h), so they go when
 * the net is cleared, however the case returns. */
#pragma once

#include "test-nodes.h"

#include <hark/certificate.h>

/* The CA in state_dir/ca (a login server's), as it issues device certificates; NULL (the
 * case failed) when it cannot be read. */
HarkCa *hark_test_peer_ca(const char *state_dir);
/* A node of net named name, certified by ca and pinning it, with the tcp transport. */
HarkNode *hark_test_peer_node(HarkTestNet *net, const char *name, HarkCa *ca);
/* host with its last number replaced by last ("127.4.5.21", 41: "127.4.5.41"): an
 * address of the lab's /24 for a peer to listen at. */
char *hark_test_peer_address(const char *host, guint last);
/* Listens at host:port on tcp, where a peer that claims to be an SN says it is (the SN
 * checks the claim with a link of its own there). FALSE: the case failed. */
gboolean hark_test_peer_listen(HarkNode *node, const char *host, guint16 port);
/* A link from node to host:port, up (bounded wait), owned by net, its messages going to
 * handler with data; NULL: the case failed. */
HarkLink *hark_test_peer_open(HarkTestNet *net, HarkNode *node, const char *host, guint16 port,
                              const HarkLinkHandler *handler, gpointer data);
/* Sends JOIN (id 1) named name: as a client when announced is NULL, else as an SN peer
 * at announced:port over tcp. */
void hark_test_peer_join(HarkLink *link, const char *name, const char *announced, guint16 port);
/* A TCP socket on 127.0.0.1 that takes connections into its backlog and never answers
 * (*port: where): an SN address claimed there stays unchecked. */
GSocket *hark_test_peer_tarpit(guint16 *port);
/* A HarkLinkHandler.closed for links whose end the test does not watch. */
void hark_test_peer_closed(HarkLink *link, const GError *error, gpointer data);
