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
 * (join.json and nat.json read back), overlay-turn.c (TURN credentials for calls: an SN
 * mints them, a client asks its SN; what needs no link is in overlay-turn-parse.c),
 * overlay-commands.c (`overlay`, `transport`, `rejoin`, `nat`, `turn`). */
#pragma once

#include "hark-private.h"
#include "link-private.h"
#include "login.h"
#include "hark/address.h"
#include "hark/hostcache.h"
#include "hark/natprobe.h"
#include "hark/wire.h"
#include "hark/transport.h"
#include "overlay-turn-parse.h"

G_BEGIN_DECLS

typedef struct _HarkOverlay HarkOverlay;

/* Made at node start (the node has its identity, its login client, and the link layer
 * its credentials); NULL with no error when the node cannot take part (its links have no
 * CA to check peers against: no login section), and NULL with an error when its
 * supernode.turn_* settings cannot be used (a secret file others may read). The
 * overlay's own certificate is the one the link layer's credentials give. login:
 * borrowed, must outlive it; NULL (unit tests, which hand the link layer test
 * credentials) means no login sync, no announcement of a changed certificate and no
 * login tunnel on the node side. */
HarkOverlay *hark_overlay_new(HarkNode *node, HarkLoginClient *login, GError **error);
void hark_overlay_start(HarkOverlay *overlay);
void hark_overlay_free(HarkOverlay *overlay);

/* {"role", "state", "sn", "host_cache", ...}: the `overlay` command's answer, listing at
 * most max_clients of an SN's clients ("client_count" has them all). */
JsonObject *hark_overlay_snapshot(HarkOverlay *overlay, guint max_clients);

/* ---- for the layers above (the directory): a listener list -------------------------
 * The overlay never calls up: a higher layer registers the message types it handles and
 * hears the overlay's events, as c-toxcore's networking_registerhandler and PipeWire's
 * spa_hook_list do. Listeners are called in the order they were added. */
typedef enum {
  HARK_OVERLAY_FROM_MY_SN, /* the SN this ordinary node is attached to */
  HARK_OVERLAY_FROM_CLIENT, /* a client of this SN (authenticated or not: check) */
  HARK_OVERLAY_FROM_SN, /* a verified SN peer */
  HARK_OVERLAY_FROM_CLAIMED_SN, /* an SN peer whose claim is being checked: offered only
                                 * to listeners with claimed_sn_peers, and never in
                                 * link_closed */
} HarkOverlayFrom;

typedef struct {
  /* The message types it takes (other than ERROR), and whether ERRORs from our SN are
   * offered to it first (answers to its requests). */
  const guint16 *types;
  gsize n_types;
  gboolean errors_from_sn;
  /* A message of one of those types; TRUE when it was handled (an ERROR it did not
   * handle goes on to the overlay). */
  gboolean (*message)(gpointer data, HarkLink *link, HarkOverlayFrom from,
                      const HarkWireMessage *message);
  /* Every event the overlay emits ("overlay-attached", "overlay-detached",
   * "overlay-role", ...), with its data (borrowed), before the frontends get it. */
  void (*event)(gpointer data, const char *event, JsonObject *details);
  /* A client's or an SN peer's link is gone. */
  void (*link_closed)(gpointer data, HarkLink *link, HarkOverlayFrom from);
  /* Whether ERRORs from verified SN peers are offered to it too (answers to its requests
   * to them: MSG_FORWARD). Last, so listeners written before it leave it FALSE. */
  gboolean errors_from_sn_peers;
  /* Whether messages of its types from SN peers not verified yet are offered to it
   * (HARK_OVERLAY_FROM_CLAIMED_SN): an SN that linked to us sends at once, while we are
   * still checking its claim, and may be told to try again. */
  gboolean claimed_sn_peers;
} HarkOverlayListener;

/* listener: borrowed, must outlive the registration. Returns an id for removal. */
guint hark_overlay_add_listener(HarkOverlay *overlay, const HarkOverlayListener *listener,
                                gpointer data);
void hark_overlay_remove_listener(HarkOverlay *overlay, guint id);
/* The link to our SN while attached, else NULL; its "host:port" (new) or NULL. */
HarkLink *hark_overlay_sn_link(HarkOverlay *overlay);
char *hark_overlay_sn_address(HarkOverlay *overlay);
gboolean hark_overlay_is_super_node(HarkOverlay *overlay);
/* An SN's own "host:port" as it announces it (new), or NULL. */
char *hark_overlay_own_address(HarkOverlay *overlay);
/* An SN's verified SN peers: a new array of HarkLink* (borrowed links). */
GPtrArray *hark_overlay_sn_peer_links(HarkOverlay *overlay);
/* An SN's client whose link proved the certificate of that device (64 hex), or NULL. */
HarkLink *hark_overlay_client_link(HarkOverlay *overlay, const char *device_id);
/* The verified SN peer at host:port (as it announces itself, or as we reached it), or
 * NULL. */
HarkLink *hark_overlay_peer_link(HarkOverlay *overlay, const char *host, guint16 port);
/* An SN makes sure a verified link to the SN at host:port exists or is on its way: TRUE
 * when there is one, one is being opened, or one is opened now; FALSE with an error when
 * this node is no SN, the address is one no SN may be at (hark_address_refusal), is this
 * node, or too many such links are being opened already. The listeners then hear the
 * event "sn-peer-linked" ({"host", "port"}: hark_overlay_peer_link finds it) or
 * "sn-peer-link-failed" ({"host", "port", "error"}); these go to the listeners only, not
 * to the frontends. The link stays as one of the SN's peer links. */
gboolean hark_overlay_open_peer_link(HarkOverlay *overlay, const char *host, guint16 port,
                                     GError **error);
/* "host:port" an SN peer announced (its id for the search strategies; new), or NULL. */
char *hark_overlay_peer_id(HarkOverlay *overlay, HarkLink *link);
/* The next message id on this node's links. */
guint64 hark_overlay_new_message_id(HarkOverlay *overlay);
/* The NAT probe's verdict and the mapped address it saw ("ip:port" or NULL, new). */
HarkNatVerdict hark_overlay_nat_verdict(HarkOverlay *overlay);
char *hark_overlay_nat_mapped(HarkOverlay *overlay);
/* The mapping and filtering behaviours the last probe found; FALSE unless it found a NAT. */
gboolean hark_overlay_nat_behaviours(HarkOverlay *overlay, HarkNatBehaviour *mapping,
                                     HarkNatBehaviour *filtering);
/* Counts and logs (rate-limited) a message a higher layer refused, in `overlay`'s
 * counters as `unexpected`. */
void hark_overlay_count_refused(HarkOverlay *overlay, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* ---- TURN credentials for calls (overlay-turn.c; docs/protocol.md, "Calls: TURN
 * credentials") -------------------------------------------------------------------------
 * Time-limited credentials for the TURN server this node's SN vouches for (an SN answers
 * from its own configuration), cached until an hour before they expire. Fails with
 * G_IO_ERROR_NOT_CONNECTED (not attached), G_IO_ERROR_NOT_FOUND (the SN has no TURN
 * server), G_IO_ERROR_PERMISSION_DENIED (not logged in), G_IO_ERROR_BUSY (asked too
 * often), G_IO_ERROR_TIMED_OUT (no answer within 5 s), G_IO_ERROR_INVALID_DATA (the SN's
 * answer was refused) or G_IO_ERROR_CANCELLED (cancellable cancelled before the call, or
 * before the answer or the 5 s bound completed it: the request itself is not withdrawn,
 * its answer serves the others waiting). The callback runs in the node's context, never
 * before this returns. */
void hark_overlay_turn_credentials_async(HarkOverlay *overlay, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer data);
/* A new copy (hark_turn_credentials_free), or NULL with the error. */
HarkTurnCredentials *hark_overlay_turn_credentials_finish(HarkOverlay *overlay,
                                                          GAsyncResult *result, GError **error);

/* The commands answer about *overlay, which the node sets once it has one (they are in
 * every node's table; without an overlay they say so). */
void hark_overlay_commands_register(HarkContext *core_ctx, HarkOverlay **overlay);

G_END_DECLS
