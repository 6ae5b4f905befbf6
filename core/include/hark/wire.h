/* wire.h: the overlay's wire format: one GVariant per message.
 *
 * A message is the GVariant (qqtv) = (protocol version, message type, message id,
 * body), serialised little-endian in normal form. Every message type has a fixed body
 * type, checked on decode. Stream transports add their own length framing; this module
 * only turns a message into bytes and back. Decoding takes untrusted bytes and never
 * crashes: truncated, oversized, wrongly typed or non-normal input and unknown
 * versions or types all return an error. docs/protocol.md describes every type. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HARK_WIRE_ERROR (hark_wire_error_quark())
GQuark hark_wire_error_quark(void);

typedef enum {
  HARK_WIRE_ERROR_TOO_LARGE,    /* more than HARK_WIRE_MAX_SIZE bytes */
  HARK_WIRE_ERROR_MALFORMED,    /* not a normal-form (qqtv) */
  HARK_WIRE_ERROR_VERSION,      /* protocol version not spoken here */
  HARK_WIRE_ERROR_UNKNOWN_TYPE, /* message type not known */
  HARK_WIRE_ERROR_BODY_TYPE,    /* body does not have the type's signature */
} HarkWireError;

#define HARK_WIRE_VERSION 1
#define HARK_WIRE_MAX_SIZE (64 * 1024)

typedef enum {
  HARK_MSG_ERROR = 1, /* (us): code, text: the answer to a request that failed */
  HARK_MSG_PING = 2,  /* (t): sender's monotonic time in µs, echoed by PONG */
  HARK_MSG_PONG = 3,  /* (t): the PING's time, unchanged */
} HarkMessageType;

typedef struct {
  guint16 version;
  guint16 type;    /* HarkMessageType */
  guint64 id;      /* chosen by the sender; an answer carries the request's id */
  GVariant *body;  /* of the type's signature, owned */
} HarkWireMessage;

/* The body signature of a type ("(t)"), or NULL when unknown. */
const char *hark_wire_body_signature(guint16 type);
const char *hark_wire_type_name(guint16 type);

/* body: floating references are sunk. */
GBytes *hark_wire_encode(guint16 type, guint64 id, GVariant *body, GError **error);
HarkWireMessage *hark_wire_decode(GBytes *bytes, GError **error);
void hark_wire_message_free(HarkWireMessage *message);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkWireMessage, hark_wire_message_free)

G_END_DECLS
