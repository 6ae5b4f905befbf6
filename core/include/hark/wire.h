/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* wire.h: the overlay's wire format: one GVariant per message.
 *
 * A message is the GVariant (qqtv) = (protocol version, message type, message id,
 * body), serialised little-endian in normal form. Every message type has a fixed body
 * type, checked on decode. Stream transports add their own length framing; this module
 * only turns a message into bytes and back. Decoding takes untrusted bytes and never
 * crashes: truncated, oversized, wrongly typed or non-normal input and unknown
 * versions or types all return an error. docs/protocol.md describes every type. */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_WIRE_ERROR (hark_wire_error_quark())
HARK_API GQuark hark_wire_error_quark(void);

typedef enum {
  HARK_WIRE_ERROR_TOO_LARGE, /* more than HARK_WIRE_MAX_SIZE bytes */
  HARK_WIRE_ERROR_MALFORMED, /* not a normal-form (qqtv) */
  HARK_WIRE_ERROR_VERSION, /* protocol version not spoken here */
  HARK_WIRE_ERROR_UNKNOWN_TYPE, /* message type not known */
  HARK_WIRE_ERROR_BODY_TYPE, /* body does not have the type's signature */
} HarkWireError;

#define HARK_WIRE_VERSION 1
#define HARK_WIRE_MAX_SIZE (64 * 1024)

typedef enum {
  HARK_MSG_ERROR = 1, /* (us): code, text: the answer to a request that failed */
  HARK_MSG_PING = 2, /* (t): sender's monotonic time in µs, echoed by PONG */
  HARK_MSG_PONG = 3, /* (t): the PING's time, unchanged */
  /* The overlay (docs/protocol.md, "Overlay"). SN lists are a(sqas): host, port,
   * transports. Dictionaries are a{sv}; unknown keys are ignored, missing or mistyped
   * known keys make the message invalid. */
  HARK_MSG_PROBE = 4, /* (a{sv}) over UDP, node -> SN: {"name": s, "pad": ay} */
  HARK_MSG_PROBE_REPLY = 5, /* (a{sv}) SN -> node: name, role, accepting, clients,
                              * transports, observed ("host:port" the probe came from) */
  HARK_MSG_JOIN = 6, /* (a{sv}) opener -> SN: {"name", "as": "client"|"peer",
                              * peers add "port", "transports"} */
  HARK_MSG_JOIN_OK = 7, /* (a{sv}) SN -> opener: name, keepalive (s), observed, sns */
  HARK_MSG_REDIRECT = 8, /* (a(sqas)) SN -> opener: full, try these instead */
  HARK_MSG_AUTH = 9, /* (ayay) opener -> SN: certificate (DER), signature over the
                              * link's channel binding */
  HARK_MSG_AUTH_OK = 10, /* (s) SN -> opener: the user the SN now knows it as */
  HARK_MSG_SN_LIST = 11, /* (a(sqas)) SNs the sender knows (announcements) */
  HARK_MSG_TUNNEL_OPEN = 12, /* (sq) node -> SN: carry a stream to the login server */
  HARK_MSG_TUNNEL_OK = 13, /* (t) SN -> node: the tunnel id (the TUNNEL_OPEN's id) */
  HARK_MSG_TUNNEL_DATA = 14, /* (tay) either way: tunnel id, bytes */
  HARK_MSG_TUNNEL_CLOSE = 15, /* (ts) either way: tunnel id, reason ("" when normal) */
  HARK_MSG_STUN_RELAY = 16, /* (sqqbay) SN -> SN: answer the STUN binding request of
                               * client host:port from your address: client host, port,
                               * RESPONSE-PORT (0: none), from your alternate STUN port,
                               * transaction id (12 bytes) */
  /* The directory (docs/protocol.md, "Directory"). Records are signed (ayay)
   * (hark/presence.h). */
  HARK_MSG_DIR_PUBLISH = 17, /* ((ayay)(ayay)as) device -> its SN: the public form, the
                                 * full form, the users (canonical) the full form may go to */
  HARK_MSG_DIR_PUBLISH_OK = 18, /* (tu) SN -> device: the sequence stored, the refresh
                                 * interval (s) the SN wants */
  HARK_MSG_DIR_LOOKUP = 19, /* (sbas) client -> its SN: name (or prefix), prefix,
                                 * strategies to try */
  HARK_MSG_DIR_RESULT = 20, /* (sasa(ayay)) SN -> client: answer ("found", "known",
                                 * "unknown", "not-found"), names (a prefix's), records */
  HARK_MSG_DIR_SUBSCRIBE = 21, /* (sas) device -> its SN: "" and the users (its buddies)
                                 * whose presence it wants pushed; SN -> SN peer: the
                                 * watching user and what its clients of that name watch */
  HARK_MSG_DIR_PRESENCE = 22, /* (ssa(ayay)as) SN -> device or SN peer: watcher, user, the
                                 * full forms the watcher may see, devices now offline */
  HARK_MSG_DIR_STRATEGY = 23, /* (sv) SN <-> SN: a search strategy's name and its own
                                 * message, handed to that strategy */
  HARK_MSG_DIR_WATCH = 24, /* (sa(ayay)) device -> its SN: "" and its signed watch; SN ->
                                 * SN peer: the watcher and its clients' signed watches */
  /* Messages (docs/protocol.md, "Messages"): signed envelopes, end to end encrypted. */
  HARK_MSG_MSG_SEND = 25, /* (ssay) client -> its SN: target device id, that device's SN
                           * ("host:port"), signed envelope */
  HARK_MSG_MSG_SENT = 26, /* (s) SN -> sender: "delivered" (handed to the device's link) */
  HARK_MSG_MSG_DELIVER = 27, /* (ay) SN -> client: an envelope for it. No answer */
  HARK_MSG_MSG_FORWARD = 28, /* (say) SN -> verified SN: target device id, envelope;
                              * answered as MSG_SEND */
  /* Calls (docs/protocol.md, "Calls: TURN credentials"). */
  HARK_MSG_TURN_REQUEST = 29, /* () client -> its SN: time-limited TURN credentials, please */
  HARK_MSG_TURN_CREDENTIALS = 30, /* (sqssxb) SN -> client: the TURN server's address (a
                                   * literal IP) and port, username, password, expiry
                                   * (unix s), whether it takes TURN over TCP too; or an
                                   * ERROR (401, 404, 429) */
  HARK_MSG_TURN_FORWARD = 31, /* (s) SN -> verified SN: credentials for your relay for this
                               * user (its client's link proved it), please: answered by
                               * TURN_CREDENTIALS or an ERROR (400, 403, 404, 429) */
  /* Contact requests (docs/protocol.md, "Contacts hint"). */
  HARK_MSG_DIR_HINT = 32, /* (s) client -> its SN: a contact request with this user (or this
                           * device's own user) changed here: hint their devices. No answer */
} HarkMessageType;

/* Whether a message of this type answers a request (carries the request's id):
 * PONG, PROBE_REPLY, JOIN_OK, REDIRECT, AUTH_OK, TUNNEL_OK, DIR_PUBLISH_OK, DIR_RESULT,
 * MSG_SENT, TURN_CREDENTIALS and ERROR. */
HARK_API gboolean hark_wire_is_answer(guint16 type);

typedef struct {
  guint16 version;
  guint16 type; /* HarkMessageType */
  guint64 id; /* chosen by the sender; an answer carries the request's id */
  GVariant *body; /* of the type's signature, owned */
} HarkWireMessage;

/* The body signature of a type ("(t)"), or NULL when unknown. */
HARK_API const char *hark_wire_body_signature(guint16 type);
HARK_API const char *hark_wire_type_name(guint16 type);

/* body: floating references are sunk. */
HARK_API GBytes *hark_wire_encode(guint16 type, guint64 id, GVariant *body, GError **error);
HARK_API HarkWireMessage *hark_wire_decode(GBytes *bytes, GError **error);
HARK_API void hark_wire_message_free(HarkWireMessage *message);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkWireMessage, hark_wire_message_free)

G_END_DECLS
