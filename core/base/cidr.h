/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cidr.h: address ranges ("10.0.0.0/8", "fc00::/7") for lists in the configuration
 * (supernode.relay_allow) and for the relay's denied peers. Private to the core. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  int family; /* G_SOCKET_FAMILY_IPV4 or _IPV6 */
  guint prefix; /* bits that must match: 0-32 or 0-128 */
  guint8 bytes[16]; /* the network, 4 or 16 bytes used; bits past prefix are zero */
} HarkCidr;

/* "ADDRESS/BITS" or a single "ADDRESS" (all bits). FALSE for anything else, including
 * host bits set past the prefix ("10.0.0.1/8": a typo more often than a wish). */
gboolean hark_cidr_parse(const char *text, HarkCidr *out);

/* Whether the address (4 or 16 raw bytes of family) lies in the range. */
gboolean hark_cidr_contains(const HarkCidr *cidr, int family, const guint8 *bytes);

G_END_DECLS
