/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stun.c: STUN messages (RFC 5389, RFC 5780): the binding server super nodes run on
 * their UDP port, and the client side nat-probe plugins use (hark/stun.h). Requests and
 * responses come from anyone on the Internet, so the one parser checks every length
 * before reading and refuses rather than guesses; see stun.h for what callers do. */
#include "stun.h"

#include <string.h>

#include "hark/version.h"

/* clang-format off */
G_DEFINE_QUARK(hark-stun-error-quark, hark_stun_error)
/* clang-format on */

#define FINGERPRINT_XOR 0x5354554eu
#define MAX_TEXT 763 /* SOFTWARE, REALM, NONCE, reason phrases: < 128 characters */

enum {
  CLASS_REQUEST = HARK_STUN_CLASS_REQUEST,
  CLASS_INDICATION = HARK_STUN_CLASS_INDICATION,
  CLASS_SUCCESS = HARK_STUN_CLASS_SUCCESS,
  CLASS_ERROR = HARK_STUN_CLASS_ERROR
};
enum {
  METHOD_BINDING = HARK_STUN_METHOD_BINDING
};

/* What this module understands, with the lengths RFC 5389 and RFC 8445 allow. An
 * attribute of a known type with another length is malformed, not unknown. */
typedef enum {
  LEN_RANGE,
  LEN_ADDRESS,
  LEN_EVEN
} LengthRule;

static const struct {
  guint16 type;
  LengthRule rule;
  guint16 min, max;
  const char *name;
} known_attributes[] = {
  { HARK_STUN_ATTR_MAPPED_ADDRESS, LEN_ADDRESS, 8, 20, "MAPPED-ADDRESS" },
  { HARK_STUN_ATTR_CHANGE_REQUEST, LEN_RANGE, 4, 4, "CHANGE-REQUEST" },
  { HARK_STUN_ATTR_USERNAME, LEN_RANGE, 0, 512, "USERNAME" },
  { HARK_STUN_ATTR_MESSAGE_INTEGRITY, LEN_RANGE, 20, 20, "MESSAGE-INTEGRITY" },
  { HARK_STUN_ATTR_ERROR_CODE, LEN_RANGE, 4, 4 + MAX_TEXT, "ERROR-CODE" },
  { HARK_STUN_ATTR_UNKNOWN_ATTRIBUTES, LEN_EVEN, 0, 512, "UNKNOWN-ATTRIBUTES" },
  { HARK_STUN_ATTR_REALM, LEN_RANGE, 0, MAX_TEXT, "REALM" },
  { HARK_STUN_ATTR_NONCE, LEN_RANGE, 0, MAX_TEXT, "NONCE" },
  { HARK_STUN_ATTR_XOR_MAPPED_ADDRESS, LEN_ADDRESS, 8, 20, "XOR-MAPPED-ADDRESS" },
  { HARK_STUN_ATTR_PRIORITY, LEN_RANGE, 4, 4, "PRIORITY" },
  { HARK_STUN_ATTR_USE_CANDIDATE, LEN_RANGE, 0, 0, "USE-CANDIDATE" },
  { HARK_STUN_ATTR_PADDING, LEN_RANGE, 0, 65535, "PADDING" },
  { HARK_STUN_ATTR_RESPONSE_PORT, LEN_RANGE, 4, 4, "RESPONSE-PORT" },
  { HARK_STUN_ATTR_SOFTWARE, LEN_RANGE, 0, MAX_TEXT, "SOFTWARE" },
  { HARK_STUN_ATTR_ALTERNATE_SERVER, LEN_ADDRESS, 8, 20, "ALTERNATE-SERVER" },
  { HARK_STUN_ATTR_FINGERPRINT, LEN_RANGE, 4, 4, "FINGERPRINT" },
  { HARK_STUN_ATTR_ICE_CONTROLLED, LEN_RANGE, 8, 8, "ICE-CONTROLLED" },
  { HARK_STUN_ATTR_ICE_CONTROLLING, LEN_RANGE, 8, 8, "ICE-CONTROLLING" },
  { HARK_STUN_ATTR_RESPONSE_ORIGIN, LEN_ADDRESS, 8, 20, "RESPONSE-ORIGIN" },
  { HARK_STUN_ATTR_OTHER_ADDRESS, LEN_ADDRESS, 8, 20, "OTHER-ADDRESS" },
  /* TURN (RFC 8656) */
  { HARK_STUN_ATTR_CHANNEL_NUMBER, LEN_RANGE, 4, 4, "CHANNEL-NUMBER" },
  { HARK_STUN_ATTR_LIFETIME, LEN_RANGE, 4, 4, "LIFETIME" },
  { HARK_STUN_ATTR_XOR_PEER_ADDRESS, LEN_ADDRESS, 8, 20, "XOR-PEER-ADDRESS" },
  { HARK_STUN_ATTR_DATA, LEN_RANGE, 0, 65535, "DATA" },
  { HARK_STUN_ATTR_XOR_RELAYED_ADDRESS, LEN_ADDRESS, 8, 20, "XOR-RELAYED-ADDRESS" },
  { HARK_STUN_ATTR_REQUESTED_ADDRESS_FAMILY, LEN_RANGE, 4, 4, "REQUESTED-ADDRESS-FAMILY" },
  { HARK_STUN_ATTR_EVEN_PORT, LEN_RANGE, 1, 1, "EVEN-PORT" },
  { HARK_STUN_ATTR_REQUESTED_TRANSPORT, LEN_RANGE, 4, 4, "REQUESTED-TRANSPORT" },
  { HARK_STUN_ATTR_DONT_FRAGMENT, LEN_RANGE, 0, 0, "DONT-FRAGMENT" },
};

static guint16
get16(const guint8 *p)
{
  return (guint16)((p[0] << 8) | p[1]);
}

static guint32
get32(const guint8 *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static void
put16(guint8 *p, guint16 v)
{
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
}

static void
put32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

static int
message_class(guint16 type)
{
  return ((type >> 7) & 2) | ((type >> 4) & 1);
}

static guint16
message_method(guint16 type)
{
  return (guint16)((type & 0x000F) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0F80));
}

/* CRC-32 (ISO 3309, as zlib), bitwise: messages are at most a datagram long, and a
 * table would be one more thing to get wrong. */
static guint32
crc32_of(const guint8 *data, gsize size)
{
  guint32 crc = 0xFFFFFFFFu;
  for (gsize i = 0; i < size; i++) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; bit++)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static int
find_known(guint16 type)
{
  for (gsize i = 0; i < G_N_ELEMENTS(known_attributes); i++)
    if (known_attributes[i].type == type)
      return (int)i;
  return -1;
}

static gboolean
check_known_length(int known, guint16 length, GError **error)
{
  gboolean ok;
  switch (known_attributes[known].rule) {
  case LEN_ADDRESS:
    ok = length == 8 || length == 20;
    break;
  case LEN_EVEN:
    ok = length % 2 == 0 && length <= known_attributes[known].max;
    break;
  default:
    ok = length >= known_attributes[known].min && length <= known_attributes[known].max;
  }
  if (!ok)
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                "attribute %s has a bad length (%u bytes)", known_attributes[known].name, length);
  return ok;
}

gboolean
hark_stun_is_stun(GBytes *datagram)
{
  gsize size;
  const guint8 *p = g_bytes_get_data(datagram, &size);
  return size >= HARK_STUN_HEADER_SIZE && (p[0] & 0xC0) == 0 &&
         get32(p + 4) == HARK_STUN_MAGIC_COOKIE && get16(p + 2) % 4 == 0 &&
         get16(p + 2) == size - HARK_STUN_HEADER_SIZE;
}

static gboolean
parse_header(const guint8 *p, gsize size, GError **error)
{
  if (size < HARK_STUN_HEADER_SIZE) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                "%" G_GSIZE_FORMAT " bytes: shorter than a STUN header (20)", size);
    return FALSE;
  }
  if ((p[0] & 0xC0) != 0) {
    g_set_error_literal(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                        "the first two bits of a STUN message must be zero");
    return FALSE;
  }
  if (get32(p + 4) != HARK_STUN_MAGIC_COOKIE) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                "wrong magic cookie 0x%08x (RFC 3489 clients are not served)", get32(p + 4));
    return FALSE;
  }
  guint16 length = get16(p + 2);
  if (length % 4 != 0 || length != size - HARK_STUN_HEADER_SIZE) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                "message length %u does not match the %" G_GSIZE_FORMAT
                " bytes after the header (or is not a multiple of 4)",
                length, size - HARK_STUN_HEADER_SIZE);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_fingerprint(const guint8 *p, gsize offset, const guint8 *value, GError **error)
{
  guint32 expected = crc32_of(p, offset) ^ FINGERPRINT_XOR;
  if (get32(value) != expected) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                "FINGERPRINT 0x%08x is wrong (the message's CRC gives 0x%08x)", get32(value),
                expected);
    return FALSE;
  }
  return TRUE;
}

HarkStunMessage *
hark_stun_parse(GBytes *bytes, GError **error)
{
  gsize size;
  const guint8 *p = g_bytes_get_data(bytes, &size);
  if (!parse_header(p, size, error))
    return NULL;

  g_autoptr(HarkStunMessage) m = g_new0(HarkStunMessage, 1);
  m->bytes = g_bytes_ref(bytes);
  m->type = get16(p);
  memcpy(m->transaction_id, p + 8, sizeof m->transaction_id);
  m->attributes = g_array_new(FALSE, FALSE, sizeof(HarkStunAttribute));
  m->unknown_required = g_array_new(FALSE, FALSE, sizeof(guint16));

  gboolean after_integrity = FALSE;
  gsize offset = HARK_STUN_HEADER_SIZE;
  while (offset < size) {
    if (size - offset < 4) {
      g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                  "truncated attribute header at offset %" G_GSIZE_FORMAT, offset);
      return NULL;
    }
    HarkStunAttribute a = { get16(p + offset), get16(p + offset + 2), p + offset + 4 };
    gsize padded = ((gsize)a.length + 3) & ~(gsize)3;
    if (padded > size - offset - 4) {
      g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                  "attribute 0x%04x at offset %" G_GSIZE_FORMAT
                  " claims %u bytes (with padding %" G_GSIZE_FORMAT "), past the end",
                  a.type, offset, a.length, padded);
      return NULL;
    }
    int known = find_known(a.type);
    if (known >= 0 && !check_known_length(known, a.length, error))
      return NULL;
    if (a.type == HARK_STUN_ATTR_FINGERPRINT) {
      if (offset + 4 + padded != size) {
        g_set_error_literal(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                            "FINGERPRINT is not the last attribute");
        return NULL;
      }
      if (!check_fingerprint(p, offset, a.value, error))
        return NULL;
      m->has_fingerprint = TRUE;
    }
    /* RFC 5389 15.4: what follows MESSAGE-INTEGRITY (but FINGERPRINT) is ignored. */
    if (!after_integrity || a.type == HARK_STUN_ATTR_FINGERPRINT) {
      g_array_append_val(m->attributes, a);
      if (known < 0 && a.type < 0x8000)
        g_array_append_val(m->unknown_required, a.type);
    }
    if (a.type == HARK_STUN_ATTR_MESSAGE_INTEGRITY)
      after_integrity = TRUE;
    offset += 4 + padded;
  }
  return g_steal_pointer(&m);
}

void
hark_stun_message_free(HarkStunMessage *message)
{
  if (message == NULL)
    return;
  g_bytes_unref(message->bytes);
  if (message->attributes != NULL)
    g_array_unref(message->attributes);
  if (message->unknown_required != NULL)
    g_array_unref(message->unknown_required);
  g_free(message);
}

const HarkStunAttribute *
hark_stun_message_find(const HarkStunMessage *message, guint16 type)
{
  for (guint i = 0; i < message->attributes->len; i++) {
    const HarkStunAttribute *a = &g_array_index(message->attributes, HarkStunAttribute, i);
    if (a->type == type)
      return a;
  }
  return NULL;
}

/* Building messages: a header whose length grows with each attribute. */

GByteArray *
hark_stun_builder_new(guint16 type, const guint8 transaction_id[12])
{
  GByteArray *b = g_byte_array_sized_new(128);
  guint8 header[HARK_STUN_HEADER_SIZE];
  put16(header, type);
  put16(header + 2, 0);
  put32(header + 4, HARK_STUN_MAGIC_COOKIE);
  memcpy(header + 8, transaction_id, 12);
  g_byte_array_append(b, header, sizeof header);
  return b;
}

void
hark_stun_builder_add(GByteArray *b, guint16 type, const void *value, guint16 length)
{
  static const guint8 zeros[3] = { 0 };
  guint8 head[4];
  put16(head, type);
  put16(head + 2, length);
  g_byte_array_append(b, head, sizeof head);
  g_byte_array_append(b, value, length);
  g_byte_array_append(b, zeros, (4 - length % 4) % 4);
  put16(b->data + 2, (guint16)(b->len - HARK_STUN_HEADER_SIZE));
}

/* Last: the CRC covers the header with a length that already counts FINGERPRINT. */
GBytes *
hark_stun_builder_finish(GByteArray *b)
{
  put16(b->data + 2, (guint16)(b->len + 8 - HARK_STUN_HEADER_SIZE));
  guint8 value[4];
  put32(value, crc32_of(b->data, b->len) ^ FINGERPRINT_XOR);
  hark_stun_builder_add(b, HARK_STUN_ATTR_FINGERPRINT, value, sizeof value);
  return g_byte_array_free_to_bytes(b);
}

void
hark_stun_builder_add_software(GByteArray *b)
{
  const char *software = "hark " HARK_VERSION;
  hark_stun_builder_add(b, HARK_STUN_ATTR_SOFTWARE, (const guint8 *)software,
                        (guint16)strlen(software));
}

void
hark_stun_builder_add_u32(GByteArray *b, guint16 type, guint32 value)
{
  guint8 bytes[4];
  put32(bytes, value);
  hark_stun_builder_add(b, type, bytes, sizeof bytes);
}

void
hark_stun_builder_add_error(GByteArray *b, guint code, const char *reason)
{
  gsize length = MIN(strlen(reason), 127);
  guint8 value[4 + 127] = { 0, 0, (guint8)(code / 100), (guint8)(code % 100) };
  memcpy(value + 4, reason, length);
  hark_stun_builder_add(b, HARK_STUN_ATTR_ERROR_CODE, value, (guint16)(4 + length));
}

/* RFC 8489 14.5: the HMAC covers the message up to MESSAGE-INTEGRITY with a header length
 * that already counts it (and not what follows, FINGERPRINT). */
static void
integrity_of(const guint8 *message, gsize before, const guint8 *key, gsize key_size, guint8 out[20])
{
  guint8 header[HARK_STUN_HEADER_SIZE];
  memcpy(header, message, sizeof header);
  put16(header + 2, (guint16)(before + 24 - HARK_STUN_HEADER_SIZE));
  g_autoptr(GHmac) hmac = g_hmac_new(G_CHECKSUM_SHA1, key, key_size);
  g_hmac_update(hmac, header, sizeof header);
  g_hmac_update(hmac, message + HARK_STUN_HEADER_SIZE, before - HARK_STUN_HEADER_SIZE);
  gsize size = 20;
  g_hmac_get_digest(hmac, out, &size);
}

void
hark_stun_builder_add_integrity(GByteArray *b, const guint8 *key, gsize key_size)
{
  guint8 digest[20];
  integrity_of(b->data, b->len, key, key_size, digest);
  hark_stun_builder_add(b, HARK_STUN_ATTR_MESSAGE_INTEGRITY, digest, sizeof digest);
}

gboolean
hark_stun_check_integrity(const HarkStunMessage *message, const guint8 *key, gsize key_size)
{
  const HarkStunAttribute *a = hark_stun_message_find(message, HARK_STUN_ATTR_MESSAGE_INTEGRITY);
  if (a == NULL)
    return FALSE;
  const guint8 *p = g_bytes_get_data(message->bytes, NULL);
  guint8 digest[20];
  integrity_of(p, (gsize)(a->value - 4 - p), key, key_size, digest);
  /* Constant time: a byte-by-byte early exit would tell an attacker how much matched. */
  guint8 diff = 0;
  for (int i = 0; i < 20; i++)
    diff |= (guint8)(digest[i] ^ a->value[i]);
  return diff == 0;
}

void
hark_stun_long_term_key(const char *username, const char *realm, const char *password,
                        guint8 key[16])
{
  g_autoptr(GChecksum) md5 = g_checksum_new(G_CHECKSUM_MD5);
  g_checksum_update(md5, (const guchar *)username, -1);
  g_checksum_update(md5, (const guchar *)":", 1);
  g_checksum_update(md5, (const guchar *)realm, -1);
  g_checksum_update(md5, (const guchar *)":", 1);
  g_checksum_update(md5, (const guchar *)password, -1);
  gsize size = 16;
  g_checksum_get_digest(md5, key, &size);
}

guint32
hark_stun_attribute_u32(const HarkStunAttribute *attribute)
{
  return attribute->length >= 4 ? get32(attribute->value) : 0;
}

int
hark_stun_message_class(guint16 type)
{
  return message_class(type);
}

guint16
hark_stun_message_method(guint16 type)
{
  return message_method(type);
}

guint16
hark_stun_message_type(guint16 method, int cls)
{
  return (guint16)((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) |
                   ((cls & 1) << 4) | ((cls & 2) << 7));
}

/* An (XOR-)MAPPED-ADDRESS value; xor_id: the transaction id for the XOR form, else NULL.
 * An IPv4-mapped IPv6 address (a dual-stack socket) is reported as the IPv4 it is. */
static gboolean
encode_address(GSocketAddress *address, const guint8 *xor_id, guint8 out[20], guint16 *length,
               GError **error)
{
  if (!G_IS_INET_SOCKET_ADDRESS(address)) {
    g_set_error_literal(error, HARK_STUN_ERROR, HARK_STUN_ERROR_UNSUPPORTED,
                        "the request did not come from an IP address");
    return FALSE;
  }
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS(address);
  GInetAddress *ip = g_inet_socket_address_get_address(inet);
  guint16 port = g_inet_socket_address_get_port(inet);
  const guint8 *raw = g_inet_address_to_bytes(ip);
  gsize raw_size = g_inet_address_get_native_size(ip);
  static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
  if (raw_size == 16 && memcmp(raw, v4_mapped, 12) == 0) {
    raw += 12;
    raw_size = 4;
  }
  guint8 mask[16];
  put32(mask, HARK_STUN_MAGIC_COOKIE);
  if (xor_id != NULL)
    memcpy(mask + 4, xor_id, 12);
  else
    memset(mask, 0, sizeof mask);

  out[0] = 0;
  out[1] = raw_size == 4 ? 0x01 : 0x02;
  put16(out + 2, (guint16)(port ^ (mask[0] << 8 | mask[1])));
  for (gsize i = 0; i < raw_size; i++)
    out[4 + i] = raw[i] ^ mask[i];
  *length = (guint16)(4 + raw_size);
  return TRUE;
}

GInetSocketAddress *
hark_stun_decode_address(const HarkStunAttribute *attribute, const guint8 *xor_with_transaction_id,
                         GError **error)
{
  const guint8 *v = attribute->value;
  gsize raw_size = attribute->length == 8 ? 4 : 16;
  if ((attribute->length != 8 && attribute->length != 20) ||
      v[1] != (raw_size == 4 ? 0x01 : 0x02)) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                "address attribute 0x%04x: family 0x%02x does not fit its %u bytes",
                attribute->type, attribute->length >= 2 ? v[1] : 0, attribute->length);
    return NULL;
  }
  guint8 mask[16] = { 0 };
  if (xor_with_transaction_id != NULL) {
    put32(mask, HARK_STUN_MAGIC_COOKIE);
    memcpy(mask + 4, xor_with_transaction_id, 12);
  }
  guint8 raw[16];
  for (gsize i = 0; i < raw_size; i++)
    raw[i] = v[4 + i] ^ mask[i];
  guint16 port = get16(v + 2) ^ (guint16)(mask[0] << 8 | mask[1]);
  g_autoptr(GInetAddress) ip =
    g_inet_address_new_from_bytes(raw, raw_size == 4 ? G_SOCKET_FAMILY_IPV4 : G_SOCKET_FAMILY_IPV6);
  return G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(ip, port));
}

gboolean
hark_stun_builder_add_address(GByteArray *b, guint16 type, GSocketAddress *address,
                              const guint8 *xor_id, GError **error)
{
  guint8 value[20];
  guint16 length;
  if (!encode_address(address, xor_id, value, &length, error))
    return FALSE;
  hark_stun_builder_add(b, type, value, length);
  return TRUE;
}

static GBytes *
build_success(const HarkStunRequest *request, GSocketAddress *to, GSocketAddress *origin,
              GSocketAddress *other, GError **error)
{
  GByteArray *b = hark_stun_builder_new(HARK_STUN_BINDING_SUCCESS, request->transaction_id);
  if (!hark_stun_builder_add_address(b, HARK_STUN_ATTR_XOR_MAPPED_ADDRESS, to,
                                     request->transaction_id, error) ||
      !hark_stun_builder_add_address(b, HARK_STUN_ATTR_MAPPED_ADDRESS, to, NULL, error) ||
      (origin != NULL &&
       !hark_stun_builder_add_address(b, HARK_STUN_ATTR_RESPONSE_ORIGIN, origin, NULL, error)) ||
      (other != NULL &&
       !hark_stun_builder_add_address(b, HARK_STUN_ATTR_OTHER_ADDRESS, other, NULL, error))) {
    g_byte_array_unref(b);
    return NULL;
  }
  hark_stun_builder_add_software(b);
  return hark_stun_builder_finish(b);
}

/* RFC 5389 15.6 and 15.9: 420 with the types the request used that we do not know. */
static GBytes *
build_unknown_attributes(const HarkStunRequest *request)
{
  static const char reason[] = "Unknown Attribute";
  guint8 code[4 + sizeof reason - 1] = { 0, 0, 4, 20 };
  memcpy(code + 4, reason, sizeof reason - 1);

  guint8 list[2 * HARK_STUN_MAX_UNKNOWN];
  for (guint i = 0; i < request->n_unknown; i++)
    put16(list + 2 * i, request->unknown[i]);

  GByteArray *b = hark_stun_builder_new(HARK_STUN_BINDING_ERROR, request->transaction_id);
  hark_stun_builder_add(b, HARK_STUN_ATTR_ERROR_CODE, code, sizeof code);
  hark_stun_builder_add(b, HARK_STUN_ATTR_UNKNOWN_ATTRIBUTES, list,
                        (guint16)(2 * request->n_unknown));
  hark_stun_builder_add_software(b);
  return hark_stun_builder_finish(b);
}

static const char *const class_names[] = { "a request", "an indication", "a success response",
                                           "an error response" };

gboolean
hark_stun_read_request(GBytes *datagram, gboolean rfc5780, HarkStunRequest *out, GError **error)
{
  g_autoptr(HarkStunMessage) m = hark_stun_parse(datagram, error);
  if (m == NULL)
    return FALSE;
  int cls = message_class(m->type);
  guint16 method = message_method(m->type);
  if (cls != CLASS_REQUEST || method != METHOD_BINDING) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_UNSUPPORTED,
                "not a binding request: %s of method 0x%03x", class_names[cls], method);
    return FALSE;
  }
  memset(out, 0, sizeof *out);
  memcpy(out->transaction_id, m->transaction_id, sizeof out->transaction_id);
  for (guint i = 0; i < m->attributes->len; i++) {
    const HarkStunAttribute *a = &g_array_index(m->attributes, HarkStunAttribute, i);
    gboolean rfc5780_only = a->type == HARK_STUN_ATTR_CHANGE_REQUEST ||
                            a->type == HARK_STUN_ATTR_RESPONSE_PORT ||
                            a->type == HARK_STUN_ATTR_PADDING;
    gboolean unknown = rfc5780_only && !rfc5780;
    for (guint j = 0; j < m->unknown_required->len && !unknown; j++)
      unknown = g_array_index(m->unknown_required, guint16, j) == a->type;
    if (unknown && out->n_unknown < HARK_STUN_MAX_UNKNOWN)
      out->unknown[out->n_unknown++] = a->type;
    else if (a->type == HARK_STUN_ATTR_CHANGE_REQUEST)
      out->change = a->value[3] & (HARK_STUN_CHANGE_IP | HARK_STUN_CHANGE_PORT);
    else if (a->type == HARK_STUN_ATTR_RESPONSE_PORT)
      out->response_port = get16(a->value);
  }
  return TRUE;
}

GBytes *
hark_stun_answer_request(const HarkStunRequest *request, GSocketAddress *mapped,
                         GSocketAddress *origin, GSocketAddress *other, GError **error)
{
  if (request->n_unknown > 0)
    return build_unknown_attributes(request);
  return build_success(request, mapped, origin, other, error);
}

GBytes *
hark_stun_answer(GBytes *request, GSocketAddress *from, GError **error)
{
  HarkStunRequest parsed;
  if (!hark_stun_read_request(request, FALSE, &parsed, error))
    return NULL;
  return hark_stun_answer_request(&parsed, from, NULL, NULL, error);
}

/* ---- the client side (hark/stun.h) ------------------------------------------------ */

GBytes *
hark_stun_binding_request(const guint8 transaction_id[HARK_STUN_TRANSACTION_ID_SIZE], guint change)
{
  GByteArray *b = hark_stun_builder_new(HARK_STUN_BINDING_REQUEST, transaction_id);
  if (change != 0) {
    guint8 value[4];
    put32(value, change & (HARK_STUN_CHANGE_IP | HARK_STUN_CHANGE_PORT));
    hark_stun_builder_add(b, HARK_STUN_ATTR_CHANGE_REQUEST, value, sizeof value);
  }
  hark_stun_builder_add_software(b);
  return hark_stun_builder_finish(b);
}

void
hark_stun_binding_response_free(HarkStunBindingResponse *response)
{
  if (response == NULL)
    return;
  g_clear_object(&response->mapped);
  g_clear_object(&response->origin);
  g_clear_object(&response->other);
  g_free(response);
}

/* An optional address attribute; FALSE (with error) only when present and bad. */
static gboolean
read_address(const HarkStunMessage *m, guint16 type, gboolean xored, GInetSocketAddress **out,
             GError **error)
{
  const HarkStunAttribute *a = hark_stun_message_find(m, type);
  if (a == NULL)
    return TRUE;
  *out = hark_stun_decode_address(a, xored ? m->transaction_id : NULL, error);
  return *out != NULL;
}

HarkStunBindingResponse *
hark_stun_read_binding_response(GBytes *datagram, GError **error)
{
  if (!hark_stun_is_stun(datagram)) {
    g_set_error_literal(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                        "not a STUN message (first bits, magic cookie or length)");
    return NULL;
  }
  g_autoptr(HarkStunMessage) m = hark_stun_parse(datagram, error);
  if (m == NULL)
    return NULL;
  int cls = message_class(m->type);
  guint16 method = message_method(m->type);
  if ((cls != CLASS_SUCCESS && cls != CLASS_ERROR) || method != METHOD_BINDING) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_UNSUPPORTED,
                "not a binding response: %s of method 0x%03x", class_names[cls], method);
    return NULL;
  }
  /* RFC 5389 7.3.3 and 7.3.4: unknown comprehension-required attributes void it. */
  if (m->unknown_required->len > 0) {
    g_set_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_UNSUPPORTED,
                "the response has the unknown comprehension-required attribute 0x%04x",
                g_array_index(m->unknown_required, guint16, 0));
    return NULL;
  }
  g_autoptr(HarkStunBindingResponse) r = g_new0(HarkStunBindingResponse, 1);
  memcpy(r->transaction_id, m->transaction_id, sizeof r->transaction_id);
  if (cls == CLASS_ERROR) {
    const HarkStunAttribute *code = hark_stun_message_find(m, HARK_STUN_ATTR_ERROR_CODE);
    guint value = code != NULL ? (code->value[2] & 7u) * 100 + code->value[3] : 0;
    if (value < 300 || value > 699 || code->value[3] > 99) {
      g_set_error_literal(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                          "an error response without a valid ERROR-CODE (300-699)");
      return NULL;
    }
    r->error_code = value;
    return g_steal_pointer(&r);
  }
  if (hark_stun_message_find(m, HARK_STUN_ATTR_XOR_MAPPED_ADDRESS) == NULL) {
    g_set_error_literal(error, HARK_STUN_ERROR, HARK_STUN_ERROR_MALFORMED,
                        "a success response without XOR-MAPPED-ADDRESS");
    return NULL;
  }
  if (!read_address(m, HARK_STUN_ATTR_XOR_MAPPED_ADDRESS, TRUE, &r->mapped, error) ||
      !read_address(m, HARK_STUN_ATTR_RESPONSE_ORIGIN, FALSE, &r->origin, error) ||
      !read_address(m, HARK_STUN_ATTR_OTHER_ADDRESS, FALSE, &r->other, error))
    return NULL;
  return g_steal_pointer(&r);
}

/* ---- where answers may go --------------------------------------------------------- */

GInetAddress *
hark_stun_address_unmapped(GInetAddress *address)
{
  if (g_inet_address_get_family(address) == G_SOCKET_FAMILY_IPV6) {
    const guint8 *b = g_inet_address_to_bytes(address);
    static const guint8 prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(b, prefix, sizeof prefix) == 0)
      return g_inet_address_new_from_bytes(b + 12, G_SOCKET_FAMILY_IPV4);
  }
  return g_object_ref(address);
}
