/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-peer.c: the denied peer ranges (relay-peer.h). coturn's CVE-2020-26262 came from
 * a missing 0.0.0.0: the list covers whole ranges, IPv4-mapped IPv6 is judged as IPv4,
 * and IPv6 forms that reach IPv4 (NAT64's 64:ff9b::/96) are denied with it. */
#include "relay-peer.h"

#include <string.h>

static const struct {
  const char *range;
  const char *why;
} denied[] = {
  { "0.0.0.0/8", "this network (0.0.0.0/8)" },
  { "10.0.0.0/8", "private (RFC 1918)" },
  { "100.64.0.0/10", "shared address space (CGNAT)" },
  { "127.0.0.0/8", "loopback" },
  { "169.254.0.0/16", "link-local (and the cloud metadata address)" },
  { "172.16.0.0/12", "private (RFC 1918)" },
  { "192.0.0.0/24", "IETF protocol assignments" },
  { "192.168.0.0/16", "private (RFC 1918)" },
  { "198.18.0.0/15", "benchmarking (RFC 2544)" },
  { "224.0.0.0/4", "multicast" },
  { "240.0.0.0/4", "reserved (and broadcast)" },
  { "::/96", "unspecified, loopback or IPv4-compatible" },
  { "64:ff9b::/96", "NAT64 (reaches IPv4 inside)" },
  { "fc00::/7", "unique local" },
  { "fe80::/10", "link-local" },
  { "ff00::/8", "multicast" },
};

void
hark_relay_addr_unmap(RelayAddr *addr)
{
  static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
  if (addr->family == 6 && memcmp(addr->addr, v4_mapped, sizeof v4_mapped) == 0) {
    addr->family = 4;
    memmove(addr->addr, addr->addr + 12, 4);
    memset(addr->addr + 4, 0, 12);
  }
}

const char *
hark_relay_peer_refusal(const RelayAddr *peer, const HarkCidr *allow, gsize n)
{
  int family = peer->family == 4 ? G_SOCKET_FAMILY_IPV4 : G_SOCKET_FAMILY_IPV6;
  for (gsize i = 0; i < n; i++)
    if (hark_cidr_contains(&allow[i], family, peer->addr))
      return NULL;
  /* Parsed once: the table is constant. */
  static HarkCidr ranges[G_N_ELEMENTS(denied)];
  static gsize parsed = 0;
  if (g_once_init_enter(&parsed)) {
    for (gsize i = 0; i < G_N_ELEMENTS(denied); i++)
      if (!hark_cidr_parse(denied[i].range, &ranges[i]))
        g_error("relay-peer.c: bad range %s", denied[i].range);
    g_once_init_leave(&parsed, 1);
  }
  for (gsize i = 0; i < G_N_ELEMENTS(denied); i++)
    if (hark_cidr_contains(&ranges[i], family, peer->addr))
      return denied[i].why;
  return NULL;
}
