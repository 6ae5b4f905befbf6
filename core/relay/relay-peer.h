/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-peer.h: where a relay may never send (docs/protocol.md, "TURN: denied peers"):
 * loopback, private, link-local, the cloud metadata address, multicast, broadcast and
 * reserved ranges, 0.0.0.0/8 and ::, unless supernode.relay_allow opens a range.
 * Private to the core. */
#pragma once

#include "cidr.h"
#include "relay-table.h"

G_BEGIN_DECLS

/* NULL when the relay may send to peer, else why not ("loopback", "private"...). An
 * IPv4-mapped IPv6 peer must have been turned into its IPv4 address first
 * (hark_relay_addr_unmap). allow: n ranges let through despite the denied ones. */
const char *hark_relay_peer_refusal(const RelayAddr *peer, const HarkCidr *allow, gsize n);

/* ::ffff:a.b.c.d as the IPv4 address it carries (in place); other addresses unchanged. */
void hark_relay_addr_unmap(RelayAddr *addr);

G_END_DECLS
