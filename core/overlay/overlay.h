/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay.h: the overlay inside libhark (private): joining super nodes, serving as one,
 * keep-alive and failover, the login tunnel. See docs/architecture.md, "Overlay".
 *
 * Files: overlay.c (the object, its state, counters, snapshot, events), overlay-join.c
 * (an ordinary node finds its SN), overlay-keepalive.c (is the other end of an SN link
 * still there: the client's PINGs after silence, the SN's sweep of silent clients),
 * overlay-serve.c (a super node: accepted links, clients, peers, probes),
 * overlay-verify.c (which peers are SNs: a claim is checked over a link of our own),
 * overlay-stun.c (its STUN server, RFC 5780 with a second address or a partner SN),
 * overlay-nat.c (the NAT probe's result and schedule), overlay-tunnel.c (the login server
 * reached through the SN; what it parses is in overlay-tunnel-parse.c), overlay-files.c
 * (join.json and nat.json read back), overlay-commands.c (`overlay`, `transport`,
 * `rejoin`, `nat`). */
#pragma once

#include "hark-private.h"
#include "link-private.h"
#include "login.h"
#include "hark/address.h"
#include "hark/hostcache.h"
#include "hark/natprobe.h"
#include "hark/wire.h"
#include "hark/transport.h"

G_BEGIN_DECLS

typedef struct _HarkOverlay HarkOverlay;

/* Made at node start (the node has its identity, its login client, and the link layer
 * its credentials); NULL with no error when the node cannot take part (its links have no
 * CA to check peers against: no login section). The overlay's own certificate is the
 * one the link layer's credentials give. login: borrowed, must outlive it; NULL (unit
 * tests, which hand the link layer test credentials) means no login sync, no
 * announcement of a changed certificate and no login tunnel on the node side. */
HarkOverlay *hark_overlay_new(HarkNode *node, HarkLoginClient *login, GError **error);
void hark_overlay_start(HarkOverlay *overlay);
void hark_overlay_free(HarkOverlay *overlay);

/* {"role", "state", "sn", "host_cache", ...}: the `overlay` command's answer, listing at
 * most max_clients of an SN's clients ("client_count" has them all). */
JsonObject *hark_overlay_snapshot(HarkOverlay *overlay, guint max_clients);

/* The commands answer about *overlay, which the node sets once it has one (they are in
 * every node's table; without an overlay they say so). */
void hark_overlay_commands_register(HarkContext *core_ctx, HarkOverlay **overlay);

G_END_DECLS
