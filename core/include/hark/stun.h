/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stun.h: STUN messages (RFC 5389, RFC 5780) as a nat-probe plugin needs them: build a
 * binding request (with CHANGE-REQUEST), and read a binding response strictly. The
 * core's own binding server (core/stun.c) uses the same parser, so a client and the
 * server never disagree about what a well-formed message is. */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>

G_BEGIN_DECLS

#define HARK_STUN_ERROR (hark_stun_error_quark())
HARK_API GQuark hark_stun_error_quark(void);

typedef enum {
  HARK_STUN_ERROR_MALFORMED, /* not a well-formed STUN message */
  HARK_STUN_ERROR_UNSUPPORTED, /* well formed, but not what was expected */
} HarkStunError;

#define HARK_STUN_MAGIC_COOKIE 0x2112A442u
#define HARK_STUN_HEADER_SIZE 20
#define HARK_STUN_TRANSACTION_ID_SIZE 12

/* CHANGE-REQUEST flags (RFC 5780 7.2): answer from the other IP address, port, or both. */
enum {
  HARK_STUN_CHANGE_PORT = 0x02,
  HARK_STUN_CHANGE_IP = 0x04,
};

/* The first two bits are 0, the magic cookie is there and the length is a multiple of
 * 4 that matches the datagram: enough to demultiplex, not a full parse. */
HARK_API gboolean hark_stun_is_stun(GBytes *datagram);

/* A binding request with the given transaction id; change: HARK_STUN_CHANGE_* flags, 0
 * for none (then no CHANGE-REQUEST attribute is sent). With FINGERPRINT. */
HARK_API GBytes *
hark_stun_binding_request(const guint8 transaction_id[HARK_STUN_TRANSACTION_ID_SIZE], guint change);

/* What a binding response says. */
typedef struct {
  guint8 transaction_id[HARK_STUN_TRANSACTION_ID_SIZE];
  guint error_code; /* 0 for a success response, else 300-699 */
  GInetSocketAddress *mapped; /* XOR-MAPPED-ADDRESS (success only) */
  GInetSocketAddress *origin; /* RESPONSE-ORIGIN, or NULL */
  GInetSocketAddress *other; /* OTHER-ADDRESS, or NULL: the server has no RFC 5780 */
} HarkStunBindingResponse;

/* A strict read of a binding response: a well-formed STUN message (hark_stun_is_stun
 * and every attribute's length), a success or error response of the binding method, no
 * unknown comprehension-required attribute, a success with an XOR-MAPPED-ADDRESS, and
 * every address attribute of a family that fits its length. NULL with an error naming
 * what was wrong otherwise. The caller matches the transaction id and the source. */
HARK_API HarkStunBindingResponse *hark_stun_read_binding_response(GBytes *datagram, GError **error);
HARK_API void hark_stun_binding_response_free(HarkStunBindingResponse *response);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStunBindingResponse, hark_stun_binding_response_free)

G_END_DECLS
