/* stun.h: the STUN (RFC 5389) binding server of libhark, private to the core.
 *
 * Super nodes answer STUN binding requests on the UDP port their overlay messages use,
 * so clients learn their reflexive address. hark_stun_is_stun() tells a STUN message
 * from a hark wire message on the same socket; hark_stun_answer() parses a request
 * strictly and builds the answer. The parser is generic (any class, any method) so the
 * RFC 5780 attributes and a client can be added on top of it. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HARK_STUN_ERROR (hark_stun_error_quark())
GQuark hark_stun_error_quark(void);

typedef enum {
  HARK_STUN_ERROR_MALFORMED,   /* not a well-formed STUN message */
  HARK_STUN_ERROR_UNSUPPORTED, /* well formed, but nothing a binding server answers */
} HarkStunError;

#define HARK_STUN_MAGIC_COOKIE 0x2112A442u
#define HARK_STUN_HEADER_SIZE 20

enum {
  HARK_STUN_BINDING_REQUEST = 0x0001,
  HARK_STUN_BINDING_SUCCESS = 0x0101,
  HARK_STUN_BINDING_ERROR = 0x0111,
};

enum {
  HARK_STUN_ATTR_MAPPED_ADDRESS = 0x0001,
  HARK_STUN_ATTR_USERNAME = 0x0006,
  HARK_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
  HARK_STUN_ATTR_ERROR_CODE = 0x0009,
  HARK_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
  HARK_STUN_ATTR_REALM = 0x0014,
  HARK_STUN_ATTR_NONCE = 0x0015,
  HARK_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
  HARK_STUN_ATTR_PRIORITY = 0x0024,
  HARK_STUN_ATTR_USE_CANDIDATE = 0x0025,
  HARK_STUN_ATTR_SOFTWARE = 0x8022,
  HARK_STUN_ATTR_ALTERNATE_SERVER = 0x8023,
  HARK_STUN_ATTR_FINGERPRINT = 0x8028,
  HARK_STUN_ATTR_ICE_CONTROLLED = 0x8029,
  HARK_STUN_ATTR_ICE_CONTROLLING = 0x802A,
};

typedef struct {
  guint16 type;
  guint16 length;     /* without padding */
  const guint8 *value; /* points into the message's bytes */
} HarkStunAttribute;

typedef struct {
  GBytes *bytes;       /* the whole message, owned */
  guint16 type;        /* method and class, e.g. HARK_STUN_BINDING_REQUEST */
  guint8 transaction_id[12];
  GArray *attributes;  /* HarkStunAttribute, in message order */
  GArray *unknown_required; /* guint16: comprehension-required types not understood */
  gboolean has_fingerprint; /* present (and then correct and last) */
} HarkStunMessage;

/* The first two bits are 0, the magic cookie is there and the length is a multiple of
 * 4 that matches the datagram: enough to demultiplex, not a full parse. */
gboolean hark_stun_is_stun(GBytes *datagram);

/* A strict parse of any STUN message: header, every attribute's length and padding, the
 * lengths of the attributes this module knows, FINGERPRINT correct and last. Unknown
 * comprehension-required attributes are not an error here: they are listed in
 * unknown_required, for the caller to answer 420. */
HarkStunMessage *hark_stun_parse(GBytes *bytes, GError **error);
void hark_stun_message_free(HarkStunMessage *message);
/* The first attribute of that type, or NULL. */
const HarkStunAttribute *hark_stun_message_find(const HarkStunMessage *message, guint16 type);

/* The answer to a binding request from `from`: a success response with XOR-MAPPED-
 * ADDRESS, MAPPED-ADDRESS, SOFTWARE and FINGERPRINT, or a 420 error response listing
 * unknown comprehension-required attributes. NULL with an error saying what was wrong
 * for anything malformed or that is not a binding request (the caller drops it). */
GBytes *hark_stun_answer(GBytes *request, GSocketAddress *from, GError **error);

/* Decode an (XOR-)MAPPED-ADDRESS value; xor_with_transaction_id: of the message it
 * came in (NULL for MAPPED-ADDRESS). */
GInetSocketAddress *hark_stun_decode_address(const HarkStunAttribute *attribute,
                                             const guint8 *xor_with_transaction_id,
                                             GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStunMessage, hark_stun_message_free)

G_END_DECLS
