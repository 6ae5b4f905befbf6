/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* address.h: what a node accepts from other nodes as addresses and as text.
 *
 * Addresses: lists of SNs come from peers (SN_LIST, JOIN_OK, REDIRECT) and end up in
 * host caches, in connection attempts and in the lists handed to other nodes; only IP
 * literals a node could really reach are taken. Sources: what one sender is counted
 * under for caps (an IPv6 sender holds a /64 at least, so it counts by its /64).
 *
 * Text: anything a peer supplies is escaped before it reaches a log line, so it cannot
 * forge lines (a newline) or turn what follows around (a bidirectional override). */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>

G_BEGIN_DECLS

/* An SN list entry, JOIN_OK or REDIRECT names at most this many SNs; the rest is
 * ignored (and counted). */
#define HARK_ADDRESS_LIST_MAX 16

/* NULL when host is an IPv4 or IPv6 literal that another node may be reached at;
 * otherwise why not ("not an IP address", "unspecified", "loopback", "multicast",
 * "broadcast", "link-local", "reserved"). Loopback is accepted only with
 * allow_loopback (network.allow_loopback: nodes that all run on one machine). Private
 * ranges (RFC 1918, RFC 4193) are accepted: networks of a site use them. IPv4-mapped
 * IPv6 addresses are judged as the IPv4 address they carry. */
HARK_API const char *hark_address_refusal(const char *host, gboolean allow_loopback);
/* The same for an address already parsed: where an SN may send a STUN answer for a
 * partner, or open a link to check a peer's claim (never to the refused kinds, so that
 * neither can be aimed at a victim). */
HARK_API const char *hark_address_refusal_inet(GInetAddress *address, gboolean allow_loopback);
HARK_API gboolean hark_address_is_routable(const char *host, gboolean allow_loopback);

/* The key one sender is counted under: the address itself for IPv4 (and IPv4-mapped
 * IPv6), the /64 for IPv6 ("2001:db8:1:2::/64"), the text as it is otherwise. */
HARK_API char *hark_address_source_key(const char *host);

/* text (length bytes, -1: NUL-terminated) ready for a log line: printable characters
 * as they are; control characters, bidirectional formatting characters and bytes that
 * are not UTF-8 as \xNN or \u{NNNN}; at most max_chars characters of the input, then
 * "...". Never NULL (NULL text gives "(null)"). */
HARK_API char *hark_text_escape(const char *text, gssize length, gsize max_chars);

/* TRUE when text is UTF-8 without control characters (C0, DEL, C1) and without
 * bidirectional formatting characters (U+061C, U+200E/F, U+202A-E, U+2066-9): what a
 * node name shown to others may contain. */
HARK_API gboolean hark_text_is_clean(const char *text);

G_END_DECLS
