/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stun.h: the STUN (RFC 5389, RFC 5780) binding server of libhark, private to the core.
 *
 * Super nodes answer STUN binding requests on the UDP port their overlay messages use,
 * so clients learn their reflexive address; with an alternate address and port they
 * also serve RFC 5780's CHANGE-REQUEST (core/overlay-stun.c). hark_stun_is_stun()
 * (hark/stun.h) tells a STUN message from a hark wire message on the same socket;
 * hark_stun_read_request() parses a request strictly and hark_stun_answer_request()
 * builds the answer. The client side (hark/stun.h) uses the same parser. */
#pragma once

#include "hark/stun.h"

G_BEGIN_DECLS

enum {
  HARK_STUN_BINDING_REQUEST = 0x0001,
  HARK_STUN_BINDING_SUCCESS = 0x0101,
  HARK_STUN_BINDING_ERROR = 0x0111,
};

enum {
  HARK_STUN_ATTR_MAPPED_ADDRESS = 0x0001,
  HARK_STUN_ATTR_CHANGE_REQUEST = 0x0003,
  HARK_STUN_ATTR_USERNAME = 0x0006,
  HARK_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
  HARK_STUN_ATTR_ERROR_CODE = 0x0009,
  HARK_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
  HARK_STUN_ATTR_REALM = 0x0014,
  HARK_STUN_ATTR_NONCE = 0x0015,
  HARK_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
  HARK_STUN_ATTR_PRIORITY = 0x0024,
  HARK_STUN_ATTR_PADDING = 0x0026,
  HARK_STUN_ATTR_RESPONSE_PORT = 0x0027,
  HARK_STUN_ATTR_USE_CANDIDATE = 0x0025,
  HARK_STUN_ATTR_SOFTWARE = 0x8022,
  HARK_STUN_ATTR_ALTERNATE_SERVER = 0x8023,
  HARK_STUN_ATTR_FINGERPRINT = 0x8028,
  HARK_STUN_ATTR_ICE_CONTROLLED = 0x8029,
  HARK_STUN_ATTR_ICE_CONTROLLING = 0x802A,
  HARK_STUN_ATTR_RESPONSE_ORIGIN = 0x802B,
  HARK_STUN_ATTR_OTHER_ADDRESS = 0x802C,
  /* TURN (RFC 8656 18) */
  HARK_STUN_ATTR_CHANNEL_NUMBER = 0x000C,
  HARK_STUN_ATTR_LIFETIME = 0x000D,
  HARK_STUN_ATTR_XOR_PEER_ADDRESS = 0x0012,
  HARK_STUN_ATTR_DATA = 0x0013,
  HARK_STUN_ATTR_XOR_RELAYED_ADDRESS = 0x0016,
  HARK_STUN_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017,
  HARK_STUN_ATTR_EVEN_PORT = 0x0018,
  HARK_STUN_ATTR_REQUESTED_TRANSPORT = 0x0019,
  HARK_STUN_ATTR_DONT_FRAGMENT = 0x001A,
};

/* Message classes (RFC 8489 5) and the TURN methods (RFC 8656 17). */
enum {
  HARK_STUN_CLASS_REQUEST = 0,
  HARK_STUN_CLASS_INDICATION = 1,
  HARK_STUN_CLASS_SUCCESS = 2,
  HARK_STUN_CLASS_ERROR = 3,
};
enum {
  HARK_STUN_METHOD_BINDING = 0x001,
  HARK_STUN_METHOD_ALLOCATE = 0x003,
  HARK_STUN_METHOD_REFRESH = 0x004,
  HARK_STUN_METHOD_SEND = 0x006,
  HARK_STUN_METHOD_DATA = 0x007,
  HARK_STUN_METHOD_CREATE_PERMISSION = 0x008,
  HARK_STUN_METHOD_CHANNEL_BIND = 0x009,
};

typedef struct {
  guint16 type;
  guint16 length; /* without padding */
  const guint8 *value; /* points into the message's bytes */
} HarkStunAttribute;

typedef struct {
  GBytes *bytes; /* the whole message, owned */
  guint16 type; /* method and class, e.g. HARK_STUN_BINDING_REQUEST */
  guint8 transaction_id[12];
  GArray *attributes; /* HarkStunAttribute, in message order */
  GArray *unknown_required; /* guint16: comprehension-required types not understood */
  gboolean has_fingerprint; /* present (and then correct and last) */
} HarkStunMessage;

/* A strict parse of any STUN message: header, every attribute's length and padding, the
 * lengths of the attributes this module knows, FINGERPRINT correct and last. Unknown
 * comprehension-required attributes are not an error here: they are listed in
 * unknown_required, for the caller to answer 420. */
HarkStunMessage *hark_stun_parse(GBytes *bytes, GError **error);
void hark_stun_message_free(HarkStunMessage *message);
/* The first attribute of that type, or NULL. */
const HarkStunAttribute *hark_stun_message_find(const HarkStunMessage *message, guint16 type);

/* The class (HARK_STUN_CLASS_*) and method of a message type, and back. */
int hark_stun_message_class(guint16 type);
guint16 hark_stun_message_method(guint16 type);
guint16 hark_stun_message_type(guint16 method, int cls);
/* A 4-byte attribute's value (LIFETIME, CHANNEL-NUMBER, REQUESTED-TRANSPORT...). */
guint32 hark_stun_attribute_u32(const HarkStunAttribute *attribute);

/* Building a message: the header, then attributes in order (each padded to 4, the
 * header's length kept right), MESSAGE-INTEGRITY when keyed, FINGERPRINT last
 * (hark_stun_builder_finish, which frees b). */
GByteArray *hark_stun_builder_new(guint16 type, const guint8 transaction_id[12]);
void hark_stun_builder_add(GByteArray *b, guint16 type, const void *value, guint16 length);
void hark_stun_builder_add_u32(GByteArray *b, guint16 type, guint32 value);
void hark_stun_builder_add_software(GByteArray *b);
/* ERROR-CODE: code 300-699 and a reason phrase (cut at 127 bytes). */
void hark_stun_builder_add_error(GByteArray *b, guint code, const char *reason);
/* An address attribute; xor_id: the transaction id for the XOR- forms, NULL for plain. */
gboolean hark_stun_builder_add_address(GByteArray *b, guint16 type, GSocketAddress *address,
                                       const guint8 *xor_id, GError **error);
void hark_stun_builder_add_integrity(GByteArray *b, const guint8 *key, gsize key_size);
GBytes *hark_stun_builder_finish(GByteArray *b);

/* MESSAGE-INTEGRITY (RFC 8489 14.5, HMAC-SHA1) of a parsed message checked with key
 * (compared in constant time); FALSE when absent or wrong. */
gboolean hark_stun_check_integrity(const HarkStunMessage *message, const guint8 *key,
                                   gsize key_size);
/* The long-term credential key (RFC 8489 9.2.2): MD5(username ":" realm ":" password). */
void hark_stun_long_term_key(const char *username, const char *realm, const char *password,
                             guint8 key[16]);

#define HARK_STUN_MAX_UNKNOWN 32 /* listed in one 420 answer */

/* A binding request as the server sees it. */
typedef struct {
  guint8 transaction_id[12];
  guint change; /* HARK_STUN_CHANGE_* asked for (RFC 5780) */
  guint16 response_port; /* RESPONSE-PORT (RFC 5780): answer to this port, 0: none */
  guint16 unknown[HARK_STUN_MAX_UNKNOWN]; /* comprehension-required types not served */
  guint n_unknown;
} HarkStunRequest;

/* Parses a binding request. rfc5780: whether CHANGE-REQUEST, RESPONSE-PORT and PADDING
 * are served (otherwise they are unknown attributes, answered 420 as RFC 5780 expects of
 * a server without it; PADDING is accepted and the answer is not padded). FALSE
 * with an error for anything malformed or that is not a binding request (dropped). */
gboolean hark_stun_read_request(GBytes *datagram, gboolean rfc5780, HarkStunRequest *out,
                                GError **error);

/* The answer to a request read above from `mapped` (the address it came from): a 420
 * error response listing the unknown attributes when there are any, else a success
 * response with XOR-MAPPED-ADDRESS and MAPPED-ADDRESS (both `mapped`), RESPONSE-ORIGIN
 * (origin, the address the answer leaves from, when given), OTHER-ADDRESS (other, when
 * given), SOFTWARE and FINGERPRINT. NULL with an error when `mapped` is not an IP address. */
GBytes *hark_stun_answer_request(const HarkStunRequest *request, GSocketAddress *mapped,
                                 GSocketAddress *origin, GSocketAddress *other, GError **error);

/* Both steps for a server without RFC 5780: the answer to a datagram from `from`. */
GBytes *hark_stun_answer(GBytes *request, GSocketAddress *from, GError **error);

/* Decode an (XOR-)MAPPED-ADDRESS value; xor_with_transaction_id: of the message it
 * came in (NULL for MAPPED-ADDRESS and the other plain address attributes). */
GInetSocketAddress *hark_stun_decode_address(const HarkStunAttribute *attribute,
                                             const guint8 *xor_with_transaction_id, GError **error);

/* ::ffff:a.b.c.d as the IPv4 address it carries; any other address as it is (new ref). */
GInetAddress *hark_stun_address_unmapped(GInetAddress *address);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStunMessage, hark_stun_message_free)

G_END_DECLS
