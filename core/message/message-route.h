/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-route.h: instant messages delivered online through super nodes (private):
 * MSG_SEND from a client to its SN, MSG_DELIVER from the SN to the target device's link,
 * MSG_FORWARD between SNs when the device is a client of another SN, MSG_SENT or ERROR
 * back. docs/protocol.md, "Messages: routing through super nodes".
 *
 * The router takes part in the overlay only through its listener list, like the
 * directory. It never reads a message: an envelope is end to end encrypted and signed
 * (message-envelope), and the router sees it only through HarkMessageEnvelopeCheck,
 * handed in at creation, which says who signed it and for which devices. */
#pragma once

#include "overlay.h"

G_BEGIN_DECLS

typedef struct _HarkMessageRoute HarkMessageRoute;

/* ---- what the router needs to know of an envelope ------------------------------------- */

/* What parse() found in an envelope's shape (no key needed, nothing verified yet). */
typedef struct {
  char *sender; /* the sender's user name as the envelope states it */
  char *sender_device; /* the fingerprint of the sender's device key (64 hex) */
  char **recipients; /* the device ids (64 hex) it is sealed for, NULL-terminated */
  gpointer parsed; /* the checker's own parsed form, for verify(); may be NULL */
  GDestroyNotify parsed_free;
} HarkMessageEnvelopeInfo;

void hark_message_envelope_info_free(HarkMessageEnvelopeInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMessageEnvelopeInfo, hark_message_envelope_info_free)

/* How the router checks an envelope. The real one (message-envelope.c, plugged in by
 * the node) must:
 * - parse: check the signed envelope's shape and limits exactly as
 *   hark_envelope_parse() does (a (ayay) whose payload is the normal-form payload of
 *   docs/protocol.md, "Messages", ids of 64 hex, at most 1024 recipients, a certificate
 *   of at most 4096 bytes), refuse anything else with an error saying what was wrong, and
 *   fill in sender, sender_device and the recipients' device ids. It must not trust the
 *   sender fields yet: verify() does.
 * - verify: what hark_envelope_verify() does: the certificate in the envelope chains to
 *   the login server's CA and is valid at now (unix seconds), it certifies sender and
 *   its key's fingerprint is sender_device, and the signature over "HARK-MSG-1\n" and
 *   the payload is that key's. Any failure is an error.
 * Both may be called with untrusted bytes of any content and must never crash.
 * tests/common/fake-envelope.h is a test double with a made-up format and no crypto. */
typedef struct {
  HarkMessageEnvelopeInfo *(*parse)(gpointer data, GBytes *envelope, GError **error);
  gboolean (*verify)(gpointer data, const HarkMessageEnvelopeInfo *info, GBytes *envelope,
                     gint64 now, GError **error);
} HarkMessageEnvelopeCheck;

/* ---- the layer above: messages that arrived ------------------------------------------- */

typedef struct {
  /* An MSG_DELIVER from our SN: an envelope for this device (borrowed; ref to keep). The
   * router checked nothing in it: the layer above verifies and opens it. */
  void (*delivered)(gpointer data, GBytes *envelope);
  /* This node's own device id (an SN's own device has no SN link: envelopes for it are
   * handed up here, and its sends are served here); NULL when it has none. May be NULL. */
  const char *(*own_device)(gpointer data);
} HarkMessageRouteHooks;

/* ---- limits ----------------------------------------------------------------------------- */

#define HARK_MESSAGE_ROUTE_MAX_ENVELOPE (256 * 1024)
#define HARK_MESSAGE_ROUTE_RATE 20.0 /* messages a second, per client link or sender device */
#define HARK_MESSAGE_ROUTE_BURST 50.0
#define HARK_MESSAGE_ROUTE_FORWARD_MS 10000 /* a forward's answer (link + MSG_SENT) */
#define HARK_MESSAGE_ROUTE_SEND_MS 15000 /* the client's wait for its SN's answer */

typedef struct {
  gsize max_envelope; /* bytes; 0: HARK_MESSAGE_ROUTE_MAX_ENVELOPE */
  double rate; /* 0: HARK_MESSAGE_ROUTE_RATE */
  double burst; /* 0: HARK_MESSAGE_ROUTE_BURST */
  guint forward_ms; /* 0: HARK_MESSAGE_ROUTE_FORWARD_MS */
  guint send_ms; /* 0: HARK_MESSAGE_ROUTE_SEND_MS */
} HarkMessageRouteLimits;

/* ---- the router ------------------------------------------------------------------------- */

/* ctx: the core's (its main context for timers, its clock for verify()'s now and the
 * token buckets). overlay: borrowed, must outlive it. check and hooks: borrowed, must
 * outlive it; their data are check_data and hooks_data. limits: copied; NULL: the
 * defaults. */
HarkMessageRoute *hark_message_route_new(HarkContext *ctx, HarkOverlay *overlay,
                                         const HarkMessageEnvelopeCheck *check, gpointer check_data,
                                         const HarkMessageRouteHooks *hooks, gpointer hooks_data,
                                         const HarkMessageRouteLimits *limits);
/* Sends every send still waiting its answer HARK_MESSAGE_ROUTE_NO_SN_LINK ("stopped")
 * first. */
void hark_message_route_free(HarkMessageRoute *route);

typedef enum {
  HARK_MESSAGE_ROUTE_DELIVERED, /* handed to the target device's link */
  HARK_MESSAGE_ROUTE_NOT_ONLINE, /* 404: the device is not a client of that SN */
  HARK_MESSAGE_ROUTE_REFUSED, /* 400, 401, 413, 429: the text says why */
  HARK_MESSAGE_ROUTE_UNREACHABLE, /* 502: the target SN, or no answer in time */
  HARK_MESSAGE_ROUTE_NO_SN_LINK, /* not attached, or the SN link went before the answer */
} HarkMessageRouteResult;

const char *hark_message_route_result_name(HarkMessageRouteResult result);

/* code: the SN's ERROR code (0 when delivered or it never answered); text: why (the SN's
 * words, escaped), NULL when delivered. */
typedef void (*HarkMessageRouteSent)(HarkMessageRouteResult result, guint code, const char *text,
                                     gpointer data);

/* Client side: hands envelope to our SN for target_device, a client of the SN at
 * target_sn ("host:port", from the device's presence record). done is called exactly
 * once, never before this returns (NO_SN_LINK from an idle callback). A node serving as
 * an SN (no SN link of its own) does what its SN would: delivers to its own client or
 * forwards to target_sn. */
void hark_message_route_send(HarkMessageRoute *route, const char *target_device,
                             const char *target_sn, GBytes *envelope, HarkMessageRouteSent done,
                             gpointer data);

/* The counters, for the `messages` command (messenger-commands.c): {"role", "routed", "delivered", "forwarded",
 * "refused": {reason: n}, "waiting"}. */
JsonObject *hark_message_route_snapshot(HarkMessageRoute *route);

G_END_DECLS
