/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* wire.c: the overlay's wire format, one (qqtv) GVariant per message.
 *
 * Decoded bytes come from peers we do not trust, so nothing reads a field before the
 * size, the serialised form, the version, the type and the body type have all been
 * checked; every refusal says in words what was wrong, because these errors end up in
 * logs read by someone debugging another implementation. */
#include "hark/wire.h"

#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(hark-wire-error-quark, hark_wire_error)
/* clang-format on */

#define ENVELOPE_TYPE G_VARIANT_TYPE("(qqtv)")
/* q, q, 4 bytes of padding, t, then the smallest v: an empty body, '\0', "()". */
#define MIN_MESSAGE_SIZE 19
#define READ_SLACK 8

typedef struct {
  guint16 type;
  const char *name;
  const char *body_signature;
  gboolean answer; /* carries the id of the request it answers */
} MessageKind;

/* Adding a message type is one line here, plus its entry in docs/protocol.md. */
static const MessageKind message_kinds[] = {
  { HARK_MSG_ERROR, "ERROR", "(us)", TRUE },
  { HARK_MSG_PING, "PING", "(t)" },
  { HARK_MSG_PONG, "PONG", "(t)", TRUE },
  { HARK_MSG_PROBE, "PROBE", "(a{sv})" },
  { HARK_MSG_PROBE_REPLY, "PROBE_REPLY", "(a{sv})", TRUE },
  { HARK_MSG_JOIN, "JOIN", "(a{sv})" },
  { HARK_MSG_JOIN_OK, "JOIN_OK", "(a{sv})", TRUE },
  { HARK_MSG_REDIRECT, "REDIRECT", "(a(sqas))", TRUE },
  { HARK_MSG_AUTH, "AUTH", "(ayay)" },
  { HARK_MSG_AUTH_OK, "AUTH_OK", "(s)", TRUE },
  { HARK_MSG_SN_LIST, "SN_LIST", "(a(sqas))" },
  { HARK_MSG_TUNNEL_OPEN, "TUNNEL_OPEN", "(sq)" },
  { HARK_MSG_TUNNEL_OK, "TUNNEL_OK", "(t)", TRUE },
  { HARK_MSG_TUNNEL_DATA, "TUNNEL_DATA", "(tay)" },
  { HARK_MSG_TUNNEL_CLOSE, "TUNNEL_CLOSE", "(ts)" },
  { HARK_MSG_STUN_RELAY, "STUN_RELAY", "(sqqbay)" },
  { HARK_MSG_DIR_PUBLISH, "DIR_PUBLISH", "((ayay)(ayay)as)" },
  { HARK_MSG_DIR_PUBLISH_OK, "DIR_PUBLISH_OK", "(tu)", TRUE },
  { HARK_MSG_DIR_LOOKUP, "DIR_LOOKUP", "(sbas)" },
  { HARK_MSG_DIR_RESULT, "DIR_RESULT", "(sasa(ayay))", TRUE },
  { HARK_MSG_DIR_SUBSCRIBE, "DIR_SUBSCRIBE", "(sas)" },
  { HARK_MSG_DIR_PRESENCE, "DIR_PRESENCE", "(ssa(ayay)as)" },
  { HARK_MSG_DIR_STRATEGY, "DIR_STRATEGY", "(sv)" },
  { HARK_MSG_DIR_WATCH, "DIR_WATCH", "(sa(ayay))" },
  { HARK_MSG_MSG_SEND, "MSG_SEND", "(ssay)" },
  { HARK_MSG_MSG_SENT, "MSG_SENT", "(s)", TRUE },
  { HARK_MSG_MSG_DELIVER, "MSG_DELIVER", "(ay)" },
  { HARK_MSG_MSG_FORWARD, "MSG_FORWARD", "(say)" },
  { HARK_MSG_TURN_REQUEST, "TURN_REQUEST", "()" },
  { HARK_MSG_TURN_CREDENTIALS, "TURN_CREDENTIALS", "(sqssxb)", TRUE },
  { HARK_MSG_TURN_FORWARD, "TURN_FORWARD", "(s)" },
  { HARK_MSG_DIR_HINT, "DIR_HINT", "(s)" },
};

static const MessageKind *
find_kind(guint16 type)
{
  for (gsize i = 0; i < G_N_ELEMENTS(message_kinds); i++) {
    if (message_kinds[i].type == type)
      return &message_kinds[i];
  }
  return NULL;
}

const char *
hark_wire_body_signature(guint16 type)
{
  const MessageKind *kind = find_kind(type);
  return kind != NULL ? kind->body_signature : NULL;
}

gboolean
hark_wire_is_answer(guint16 type)
{
  const MessageKind *kind = find_kind(type);
  return kind != NULL && kind->answer;
}

const char *
hark_wire_type_name(guint16 type)
{
  const MessageKind *kind = find_kind(type);
  return kind != NULL ? kind->name : NULL;
}

/* Shared by both directions so that what the encoder refuses is exactly what the
 * decoder would refuse. */
static const MessageKind *
check_type_and_body(guint16 type, GVariant *body, const char *verb, GError **error)
{
  const MessageKind *kind = find_kind(type);

  if (kind == NULL) {
    g_set_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_UNKNOWN_TYPE,
                "cannot %s message type %u: no such type in protocol version %d", verb, type,
                HARK_WIRE_VERSION);
    return NULL;
  }
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE(kind->body_signature))) {
    g_set_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_BODY_TYPE,
                "cannot %s %s message: its body has type %s but %s bodies have type %s", verb,
                kind->name, g_variant_get_type_string(body), kind->name, kind->body_signature);
    return NULL;
  }
  return kind;
}

static gboolean
check_size(gsize size, const char *what, GError **error)
{
  if (size <= HARK_WIRE_MAX_SIZE)
    return TRUE;
  g_set_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_TOO_LARGE,
              "%s of %" G_GSIZE_FORMAT " bytes exceeds the %d-byte limit", what, size,
              HARK_WIRE_MAX_SIZE);
  return FALSE;
}

/* The wire is little-endian; GVariant serialises in host order. Swapping is its own
 * inverse, so encode and decode both use this. Takes ownership of value. */
static GVariant *
to_or_from_wire_order(GVariant *value)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  GVariant *swapped = g_variant_byteswap(value);
  g_variant_unref(value);
  return swapped;
#else
  return value;
#endif
}

static GBytes *
serialise(guint16 type, guint64 id, GVariant *body, GError **error)
{
  g_autoptr(GVariant) envelope =
    g_variant_ref_sink(g_variant_new("(qqtv)", (guint16)HARK_WIRE_VERSION, type, id, body));
  /* The body may come from a peer's non-normal data; normal form makes the encoding
   * of a message unique, which is what lets the fuzzer compare bytes. */
  GVariant *wire = to_or_from_wire_order(g_variant_get_normal_form(envelope));
  GBytes *bytes = g_variant_get_data_as_bytes(wire);

  g_variant_unref(wire);
  if (!check_size(g_bytes_get_size(bytes), "encoded message", error))
    g_clear_pointer(&bytes, g_bytes_unref);
  return bytes;
}

GBytes *
hark_wire_encode(guint16 type, guint64 id, GVariant *body, GError **error)
{
  g_return_val_if_fail(body != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  /* Sunk before any check so a floating body is consumed on failure too. */
  g_autoptr(GVariant) owned_body = g_variant_ref_sink(body);

  if (check_type_and_body(type, owned_body, "encode", error) == NULL)
    return NULL;
  return serialise(type, id, owned_body, error);
}

/* Returns the envelope, trusted and in host order, or NULL. Anything not in normal
 * form is refused rather than normalised: two peers must never read one message
 * differently, and GVariant only defines what non-normal data means loosely. */
static GVariant *
parse_envelope(GBytes *bytes, GError **error)
{
  gsize size = g_bytes_get_size(bytes);

  if (!check_size(size, "message", error))
    return NULL;
  if (size == 0) {
    g_set_error_literal(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_MALFORMED, "message is empty");
    return NULL;
  }
  if (size < MIN_MESSAGE_SIZE) {
    g_set_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_MALFORMED,
                "message of %" G_GSIZE_FORMAT " bytes is shorter than the smallest "
                "(qqtv), %d bytes",
                size, MIN_MESSAGE_SIZE);
    return NULL;
  }

  /* GLib 2.74's normal-form check reads a byte past the end of some malformed input
   * (valgrind shows it on a 6-byte frame): the data is checked in a copy with zeroed
   * slack behind it, so such a read stays in our memory and means nothing. */
  gsize slack_size = size + READ_SLACK;
  guint8 *copy = g_malloc0(slack_size);
  memcpy(copy, g_bytes_get_data(bytes, NULL), size);
  g_autoptr(GBytes) padded = g_bytes_new_with_free_func(copy, size, g_free, copy);
  g_autoptr(GVariant) envelope =
    g_variant_ref_sink(g_variant_new_from_bytes(ENVELOPE_TYPE, padded, FALSE));
  if (!g_variant_is_normal_form(envelope)) {
    g_set_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_MALFORMED,
                "message of %" G_GSIZE_FORMAT " bytes is not a normal-form (qqtv) "
                "GVariant (truncated, corrupted or not a hark message)",
                size);
    return NULL;
  }
  return to_or_from_wire_order(g_steal_pointer(&envelope));
}

static gboolean
check_version(guint16 version, GError **error)
{
  if (version == HARK_WIRE_VERSION)
    return TRUE;
  g_set_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_VERSION,
              "message is protocol version %u but this node speaks only version %d", version,
              HARK_WIRE_VERSION);
  return FALSE;
}

HarkWireMessage *
hark_wire_decode(GBytes *bytes, GError **error)
{
  g_return_val_if_fail(bytes != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  g_autoptr(GVariant) envelope = parse_envelope(bytes, error);
  if (envelope == NULL)
    return NULL;

  g_autoptr(HarkWireMessage) message = g_new0(HarkWireMessage, 1);
  /* The body keeps a reference on the input's GBytes, so it stays valid after the
   * caller drops theirs; messages are at most 64 KiB, so copying would buy nothing. */
  g_variant_get(envelope, "(qqtv)", &message->version, &message->type, &message->id,
                &message->body);

  if (!check_version(message->version, error) ||
      check_type_and_body(message->type, message->body, "decode", error) == NULL)
    return NULL;
  return g_steal_pointer(&message);
}

void
hark_wire_message_free(HarkWireMessage *message)
{
  if (message == NULL)
    return;
  g_clear_pointer(&message->body, g_variant_unref);
  g_free(message);
}
