/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-stun.c: the STUN binding server against RFC 5769's test vectors, the 420 answer,
 * RFC 5780's CHANGE-REQUEST, RESPONSE-ORIGIN and OTHER-ADDRESS, the client side
 * (hark/stun.h) against the server, and every kind of malformed request or response it
 * must refuse with a clear reason. */
#include <string.h>
#include <sys/socket.h>

#include "stun.h"
#include "stun-vectors.h"
#include "test-bytes.h"
#include "test-isolate.h"

/* The XOR-MAPPED-ADDRESS values of RFC 5769 2.2 (192.0.2.1:32853) and 2.3
 * ([2001:db8:1234:5678:11:2233:4455:6677]:32853), same transaction id. */
static const guint8 rfc5769_xor_v4[] = { 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 };
static const guint8 rfc5769_xor_v6[] = {
  0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3,
  0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
};

static GSocketAddress *
address(const char *ip, guint16 port)
{
  return g_inet_socket_address_new_from_string(ip, port);
}

static GBytes *
request_bytes(void)
{
  return g_bytes_new_static(rfc5769_request, sizeof rfc5769_request);
}

static void
test_rfc5769_request(void)
{
  g_autoptr(GBytes) bytes = request_bytes();
  g_assert_true(hark_stun_is_stun(bytes));
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunMessage) m = hark_stun_parse(bytes, &error);
  g_assert_no_error(error);
  g_assert_nonnull(m);
  g_assert_cmpuint(m->type, ==, HARK_STUN_BINDING_REQUEST);
  g_assert_true(m->has_fingerprint);
  g_assert_cmpuint(m->attributes->len, ==, 6);
  g_assert_cmpuint(m->unknown_required->len, ==, 0);
  const HarkStunAttribute *software = hark_stun_message_find(m, HARK_STUN_ATTR_SOFTWARE);
  g_assert_nonnull(software);
  g_assert_cmpmem(software->value, software->length, "STUN test client", 16);
  const HarkStunAttribute *username = hark_stun_message_find(m, HARK_STUN_ATTR_USERNAME);
  g_assert_cmpmem(username->value, username->length, "evtj:h6vY", 9);
}

/* Answers the RFC's request as if it came from `from`; returns the parsed answer. */
static HarkStunMessage *
answer_from(GBytes *request, const char *ip, guint16 port)
{
  g_autoptr(GSocketAddress) from = address(ip, port);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = hark_stun_answer(request, from, &error);
  g_assert_no_error(error);
  g_assert_true(hark_stun_is_stun(answer));
  HarkStunMessage *m = hark_stun_parse(answer, &error);
  g_assert_no_error(error);
  g_assert_true(m->has_fingerprint);
  return m;
}

static void
check_mapped(const HarkStunMessage *m, const guint8 *xor_value, gsize xor_size, const char *ip,
             guint16 port)
{
  g_assert_cmpuint(m->type, ==, HARK_STUN_BINDING_SUCCESS);
  g_assert_cmpmem(m->transaction_id, 12, rfc5769_request + 8, 12);
  const HarkStunAttribute *x = hark_stun_message_find(m, HARK_STUN_ATTR_XOR_MAPPED_ADDRESS);
  g_assert_nonnull(x);
  g_assert_cmpmem(x->value, x->length, xor_value, xor_size);

  const HarkStunAttribute *plain = hark_stun_message_find(m, HARK_STUN_ATTR_MAPPED_ADDRESS);
  g_assert_nonnull(plain);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetSocketAddress) decoded = hark_stun_decode_address(plain, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *text = g_inet_address_to_string(g_inet_socket_address_get_address(decoded));
  g_assert_cmpstr(text, ==, ip);
  g_assert_cmpuint(g_inet_socket_address_get_port(decoded), ==, port);

  g_autoptr(GInetSocketAddress) unxored = hark_stun_decode_address(x, m->transaction_id, &error);
  g_assert_no_error(error);
  g_autofree char *text2 = g_inet_address_to_string(g_inet_socket_address_get_address(unxored));
  g_assert_cmpstr(text2, ==, ip);

  const HarkStunAttribute *software = hark_stun_message_find(m, HARK_STUN_ATTR_SOFTWARE);
  g_assert_nonnull(software);
  g_assert_true(software->length > 5 && memcmp(software->value, "hark ", 5) == 0);
  /* FINGERPRINT last. */
  g_assert_cmpuint(g_array_index(m->attributes, HarkStunAttribute, m->attributes->len - 1).type, ==,
                   HARK_STUN_ATTR_FINGERPRINT);
}

static void
test_answer_ipv4(void)
{
  g_autoptr(GBytes) request = request_bytes();
  g_autoptr(HarkStunMessage) m = answer_from(request, "192.0.2.1", 32853);
  check_mapped(m, rfc5769_xor_v4, sizeof rfc5769_xor_v4, "192.0.2.1", 32853);
  /* A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d: reported as IPv4. */
  g_autoptr(HarkStunMessage) mapped = answer_from(request, "::ffff:192.0.2.1", 32853);
  check_mapped(mapped, rfc5769_xor_v4, sizeof rfc5769_xor_v4, "192.0.2.1", 32853);
}

static void
test_answer_ipv6(void)
{
  g_autoptr(GBytes) request = request_bytes();
  g_autoptr(HarkStunMessage) m =
    answer_from(request, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
  check_mapped(m, rfc5769_xor_v6, sizeof rfc5769_xor_v6, "2001:db8:1234:5678:11:2233:4455:6677",
               32853);
}

/* A minimal request: header, then attributes given as raw bytes; with_fingerprint adds
 * a correct FINGERPRINT computed the RFC's way. */
static GBytes *
make_request(guint16 type, const guint8 *attrs, gsize attrs_size)
{
  GByteArray *b = g_byte_array_new();
  guint8 header[20] = { (guint8)(type >> 8),
                        (guint8)type,
                        (guint8)(attrs_size >> 8),
                        (guint8)attrs_size,
                        0x21,
                        0x12,
                        0xa4,
                        0x42,
                        1,
                        2,
                        3,
                        4,
                        5,
                        6,
                        7,
                        8,
                        9,
                        10,
                        11,
                        12 };
  g_byte_array_append(b, header, sizeof header);
  g_byte_array_append(b, attrs, (guint)attrs_size);
  return g_byte_array_free_to_bytes(b);
}

static void
test_unknown_required(void)
{
  /* 0x7777 and 0x0003 (CHANGE-REQUEST: not served by a server without RFC 5780) are comprehension-
   * required; 0xC001 is optional and ignored. */
  static const guint8 attrs[] = { 0x77, 0x77, 0x00, 0x01, 0xAA, 0,    0, 0, 0xC0, 0x01,
                                  0x00, 0x00, 0x00, 0x03, 0x00, 0x04, 0, 0, 0,    6 };
  g_autoptr(GBytes) request = make_request(HARK_STUN_BINDING_REQUEST, attrs, sizeof attrs);
  g_autoptr(GSocketAddress) from = address("198.51.100.7", 4000);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = hark_stun_answer(request, from, &error);
  g_assert_no_error(error);
  g_autoptr(HarkStunMessage) m = hark_stun_parse(answer, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(m->type, ==, HARK_STUN_BINDING_ERROR);
  g_assert_true(m->has_fingerprint);
  const HarkStunAttribute *code = hark_stun_message_find(m, HARK_STUN_ATTR_ERROR_CODE);
  g_assert_nonnull(code);
  g_assert_cmpuint(code->value[2], ==, 4);
  g_assert_cmpuint(code->value[3], ==, 20);
  g_assert_cmpmem(code->value + 4, code->length - 4, "Unknown Attribute", 17);
  const HarkStunAttribute *list = hark_stun_message_find(m, HARK_STUN_ATTR_UNKNOWN_ATTRIBUTES);
  static const guint8 expected[] = { 0x77, 0x77, 0x00, 0x03 };
  g_assert_cmpmem(list->value, list->length, expected, sizeof expected);
  g_assert_null(hark_stun_message_find(m, HARK_STUN_ATTR_XOR_MAPPED_ADDRESS));
}

static void
test_optional_unknown_ignored(void)
{
  static const guint8 attrs[] = { 0xC0, 0x01, 0x00, 0x02, 0xAA, 0xBB, 0, 0 };
  g_autoptr(GBytes) request = make_request(HARK_STUN_BINDING_REQUEST, attrs, sizeof attrs);
  g_autoptr(HarkStunMessage) m = answer_from(request, "192.0.2.1", 1);
  g_assert_cmpuint(m->type, ==, HARK_STUN_BINDING_SUCCESS);
}

typedef struct {
  const char *name;
  guint16 type;
  const guint8 *attrs;
  gsize attrs_size;
  const char *message; /* a part of the error's message */
} Malformed;

static void
check_refused(GBytes *bytes, const char *expected)
{
  g_autoptr(GSocketAddress) from = address("192.0.2.1", 32853);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = hark_stun_answer(bytes, from, &error);
  g_assert_null(answer);
  g_assert_nonnull(error);
  g_assert_true(error->domain == HARK_STUN_ERROR);
  if (strstr(error->message, expected) == NULL)
    g_error("expected '%s' in '%s'", expected, error->message);
}

static void
test_malformed_variants(void)
{
  static const guint8 truncated_header[] = { 0x00, 0x01, 0x00 };
  static const guint8 past_end[] = { 0x80, 0x22, 0x00, 0x10, 'a', 'b', 'c', 'd' };
  static const guint8 padding_past_end[] = { 0x80, 0x22, 0x00, 0x05, 'a', 'b', 'c', 'd' };
  static const guint8 bad_priority[] = { 0x00, 0x24, 0x00, 0x02, 0, 1, 0, 0 };
  static const guint8 bad_xor[] = { 0x00, 0x20, 0x00, 0x0C, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  static const guint8 bad_integrity[] = { 0x00, 0x08, 0x00, 0x04, 0, 0, 0, 0 };
  static const guint8 bad_fp_length[] = { 0x80, 0x28, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0 };
  static const guint8 wrong_fp[] = { 0x80, 0x28, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef };
  static const guint8 long_software[4 + 764] = { 0x80, 0x22, 0x02, 0xFC };
  static const guint8 odd_unknown[] = { 0x00, 0x0A, 0x00, 0x03, 0, 1, 0, 0 };
  static const Malformed cases[] = {
    { "truncated attribute", HARK_STUN_BINDING_REQUEST, truncated_header, sizeof truncated_header,
      "" }, /* length 3: not a multiple of 4 */
    { "past end", HARK_STUN_BINDING_REQUEST, past_end, sizeof past_end, "past the end" },
    { "padding past end", HARK_STUN_BINDING_REQUEST, padding_past_end, sizeof padding_past_end,
      "past the end" },
    { "priority length", HARK_STUN_BINDING_REQUEST, bad_priority, sizeof bad_priority,
      "PRIORITY has a bad length" },
    { "xor length", HARK_STUN_BINDING_REQUEST, bad_xor, sizeof bad_xor,
      "XOR-MAPPED-ADDRESS has a bad length" },
    { "integrity length", HARK_STUN_BINDING_REQUEST, bad_integrity, sizeof bad_integrity,
      "MESSAGE-INTEGRITY has a bad length" },
    { "fingerprint length", HARK_STUN_BINDING_REQUEST, bad_fp_length, sizeof bad_fp_length,
      "FINGERPRINT has a bad length" },
    { "fingerprint wrong", HARK_STUN_BINDING_REQUEST, wrong_fp, sizeof wrong_fp,
      "FINGERPRINT 0xdeadbeef is wrong" },
    { "software too long", HARK_STUN_BINDING_REQUEST, long_software, sizeof long_software,
      "SOFTWARE has a bad length" },
    { "unknown-attributes odd", HARK_STUN_BINDING_REQUEST, odd_unknown, sizeof odd_unknown,
      "UNKNOWN-ATTRIBUTES has a bad length" },
    { "indication", 0x0011, NULL, 0, "an indication of method 0x001" },
    { "success response", HARK_STUN_BINDING_SUCCESS, NULL, 0, "a success response" },
    { "error response", HARK_STUN_BINDING_ERROR, NULL, 0, "an error response" },
    { "other method", 0x0003, NULL, 0, "a request of method 0x003" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_test_message("case: %s", cases[i].name);
    g_autoptr(GBytes) bytes = make_request(cases[i].type, cases[i].attrs, cases[i].attrs_size);
    if (i == 0)
      check_refused(bytes, "message length 3 does not match");
    else
      check_refused(bytes, cases[i].message);
  }
}

static GBytes *
patched_request(gsize offset, guint8 value)
{
  return hark_test_bytes_patched(rfc5769_request, sizeof rfc5769_request, offset, value);
}

static void
test_malformed_header(void)
{
  g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
  check_refused(empty, "shorter than a STUN header");
  g_autoptr(GBytes) short_one = g_bytes_new(rfc5769_request, 19);
  check_refused(short_one, "shorter than a STUN header");
  g_autoptr(GBytes) high_bits = patched_request(0, 0x40);
  g_assert_false(hark_stun_is_stun(high_bits));
  check_refused(high_bits, "first two bits");
  g_autoptr(GBytes) cookie = patched_request(4, 0x22);
  g_assert_false(hark_stun_is_stun(cookie));
  check_refused(cookie, "wrong magic cookie 0x2212a442");
  g_autoptr(GBytes) length = patched_request(3, 0x54);
  g_assert_false(hark_stun_is_stun(length));
  check_refused(length, "message length 84 does not match the 88 bytes");
  g_autoptr(GBytes) cut = g_bytes_new(rfc5769_request, sizeof rfc5769_request - 4);
  g_assert_false(hark_stun_is_stun(cut));
  check_refused(cut, "message length 88 does not match the 84 bytes");
  /* One bit flipped in the username: the FINGERPRINT no longer matches. */
  g_autoptr(GBytes) flipped = patched_request(66, 0x66);
  g_assert_true(hark_stun_is_stun(flipped));
  check_refused(flipped, "FINGERPRINT");
  /* Something after FINGERPRINT: move it forward by appending an attribute. */
  static const guint8 after_fp[] = { 0x80, 0x28, 0x00, 0x04, 0, 0, 0, 0, 0x80, 0x22, 0x00, 0x00 };
  g_autoptr(GBytes) trailing = make_request(HARK_STUN_BINDING_REQUEST, after_fp, sizeof after_fp);
  check_refused(trailing, "FINGERPRINT is not the last attribute");
}

static void
test_fingerprint_not_last(void)
{
  /* A correct FINGERPRINT followed by one more attribute. */
  guint8 bytes[sizeof rfc5769_request + 4];
  memcpy(bytes, rfc5769_request, sizeof rfc5769_request);
  static const guint8 extra[] = { 0x80, 0x22, 0x00, 0x00 };
  memcpy(bytes + sizeof rfc5769_request, extra, sizeof extra);
  bytes[3] = 0x5C;
  g_autoptr(GBytes) b = g_bytes_new(bytes, sizeof bytes);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunMessage) m = hark_stun_parse(b, &error);
  g_assert_null(m);
  g_assert_nonnull(error);
  g_assert_cmpstr(error->message, ==, "FINGERPRINT is not the last attribute");
}

static void
test_not_inet(void)
{
  g_autoptr(GBytes) request = request_bytes();
  struct sockaddr unspecified = { .sa_family = AF_UNSPEC };
  g_autoptr(GSocketAddress) from = g_native_socket_address_new(&unspecified, sizeof unspecified);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = hark_stun_answer(request, from, &error);
  g_assert_null(answer);
  g_assert_error(error, HARK_STUN_ERROR, HARK_STUN_ERROR_UNSUPPORTED);
}

static void
test_wire_is_not_stun(void)
{
  /* A hark wire message starts with its version (1, little-endian) ... the demultiplexer
   * must not take it for STUN. */
  static const guint8 wire[] = { 0x01, 0x00, 0x04, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
                                 0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0 };
  g_autoptr(GBytes) b = g_bytes_new_static(wire, sizeof wire);
  g_assert_false(hark_stun_is_stun(b));
}

static char *
address_string(GInetSocketAddress *address)
{
  g_assert_nonnull(address);
  g_autofree char *ip = g_inet_address_to_string(g_inet_socket_address_get_address(address));
  return g_strdup_printf("%s:%u", ip, g_inet_socket_address_get_port(address));
}

static const guint8 tid[12] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2 };

/* The client's request, read by the server with and without RFC 5780. */
static void
test_change_request(void)
{
  g_autoptr(GBytes) request =
    hark_stun_binding_request(tid, HARK_STUN_CHANGE_IP | HARK_STUN_CHANGE_PORT);
  g_assert_true(hark_stun_is_stun(request));
  HarkStunRequest read;
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_stun_read_request(request, TRUE, &read, &error));
  g_assert_no_error(error);
  g_assert_cmpmem(read.transaction_id, 12, tid, 12);
  g_assert_cmpuint(read.change, ==, HARK_STUN_CHANGE_IP | HARK_STUN_CHANGE_PORT);
  g_assert_cmpuint(read.n_unknown, ==, 0);

  /* Without RFC 5780 it is an unknown comprehension-required attribute: 420. */
  g_assert_true(hark_stun_read_request(request, FALSE, &read, &error));
  g_assert_cmpuint(read.n_unknown, ==, 1);
  g_assert_cmpuint(read.unknown[0], ==, HARK_STUN_ATTR_CHANGE_REQUEST);
  g_autoptr(GSocketAddress) to = address("198.51.100.7", 4000);
  g_autoptr(GBytes) answer = hark_stun_answer_request(&read, to, NULL, NULL, &error);
  g_autoptr(HarkStunBindingResponse) r = hark_stun_read_binding_response(answer, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(r->error_code, ==, 420);
  g_assert_null(r->mapped);

  /* No CHANGE-REQUEST at all when nothing is asked. */
  g_autoptr(GBytes) plain = hark_stun_binding_request(tid, 0);
  g_autoptr(HarkStunMessage) m = hark_stun_parse(plain, &error);
  g_assert_no_error(error);
  g_assert_null(hark_stun_message_find(m, HARK_STUN_ATTR_CHANGE_REQUEST));
  g_assert_true(m->has_fingerprint);
}

/* RESPONSE-PORT and PADDING (RFC 5780): served with RFC 5780, unknown (420) without. */
static void
test_response_port_and_padding(void)
{
  static const guint8 attrs[] = { 0x00, 0x27, 0x00, 0x04, 0x12, 0x34, 0, 0, 0x00, 0x26,
                                  0x00, 0x05, 1,    2,    3,    4,    5, 0, 0,    0 };
  g_autoptr(GBytes) request = make_request(HARK_STUN_BINDING_REQUEST, attrs, sizeof attrs);
  HarkStunRequest read;
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_stun_read_request(request, TRUE, &read, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(read.response_port, ==, 0x1234);
  g_assert_cmpuint(read.n_unknown, ==, 0);
  g_assert_true(hark_stun_read_request(request, FALSE, &read, &error));
  g_assert_cmpuint(read.response_port, ==, 0);
  g_assert_cmpuint(read.n_unknown, ==, 2);
  g_assert_cmpuint(read.unknown[0], ==, HARK_STUN_ATTR_RESPONSE_PORT);
  g_assert_cmpuint(read.unknown[1], ==, HARK_STUN_ATTR_PADDING);
  /* A RESPONSE-PORT of another length is malformed, not unknown. */
  static const guint8 bad[] = { 0x00, 0x27, 0x00, 0x02, 0x12, 0x34, 0, 0 };
  g_autoptr(GBytes) bad_request = make_request(HARK_STUN_BINDING_REQUEST, bad, sizeof bad);
  g_assert_false(hark_stun_read_request(bad_request, TRUE, &read, &error));
  g_assert_nonnull(strstr(error->message, "RESPONSE-PORT has a bad length"));
}

/* A success with RESPONSE-ORIGIN and OTHER-ADDRESS, read back by the client side. */
static void
test_rfc5780_answer(void)
{
  g_autoptr(GBytes) request = hark_stun_binding_request(tid, HARK_STUN_CHANGE_PORT);
  HarkStunRequest read;
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_stun_read_request(request, TRUE, &read, &error));
  g_autoptr(GSocketAddress) to = address("203.0.113.9", 61000);
  g_autoptr(GSocketAddress) origin = address("198.18.0.20", 4701);
  g_autoptr(GSocketAddress) other = address("198.18.0.21", 4701);
  g_autoptr(GBytes) answer = hark_stun_answer_request(&read, to, origin, other, &error);
  g_assert_no_error(error);
  g_autoptr(HarkStunBindingResponse) r = hark_stun_read_binding_response(answer, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(r->error_code, ==, 0);
  g_assert_cmpmem(r->transaction_id, 12, tid, 12);
  g_autofree char *mapped = address_string(r->mapped);
  g_autofree char *o = address_string(r->origin);
  g_autofree char *x = address_string(r->other);
  g_assert_cmpstr(mapped, ==, "203.0.113.9:61000");
  g_assert_cmpstr(o, ==, "198.18.0.20:4701");
  g_assert_cmpstr(x, ==, "198.18.0.21:4701");

  /* Without them (a plain server): the client still gets its mapped address. */
  g_autoptr(GBytes) basic = hark_stun_answer(request, to, &error); /* 420: no RFC 5780 */
  g_autoptr(GBytes) plain_request = hark_stun_binding_request(tid, 0);
  g_autoptr(GBytes) plain = hark_stun_answer(plain_request, to, &error);
  g_assert_no_error(error);
  g_autoptr(HarkStunBindingResponse) p = hark_stun_read_binding_response(plain, &error);
  g_assert_no_error(error);
  g_assert_null(p->origin);
  g_assert_null(p->other);
  g_assert_nonnull(basic);
}

/* A response built by hand: header, attributes, no FINGERPRINT. */
static GBytes *
make_response(guint16 type, const guint8 *attrs, gsize attrs_size, guint32 cookie)
{
  g_autoptr(GBytes) bytes = make_request(type, attrs, attrs_size);
  gsize size;
  guint8 *data = g_bytes_unref_to_data(g_steal_pointer(&bytes), &size);
  data[4] = (guint8)(cookie >> 24);
  data[5] = (guint8)(cookie >> 16);
  data[6] = (guint8)(cookie >> 8);
  data[7] = (guint8)cookie;
  return g_bytes_new_take(data, size);
}

static void
check_response_refused(GBytes *bytes, const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunBindingResponse) r = hark_stun_read_binding_response(bytes, &error);
  g_assert_null(r);
  g_assert_nonnull(error);
  g_assert_true(error->domain == HARK_STUN_ERROR);
  if (strstr(error->message, expected) == NULL)
    g_error("expected '%s' in '%s'", expected, error->message);
}

/* Bad input to the client: every response it must refuse, with the reason. */
static void
test_bad_responses(void)
{
  static const guint8 good_xor[] = { 0x00, 0x20, 0x00, 0x08, 0,    1,
                                     0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 };
  static const guint8 bad_family[] = { 0x00, 0x20, 0x00, 0x08, 0,    2,
                                       0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 };
  static const guint8 family_v6_short[] = { 0x80, 0x2C, 0x00, 0x08, 0,    7,    0,    1,
                                            1,    2,    3,    4,    0x00, 0x20, 0x00, 0x08,
                                            0,    1,    0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 };
  static const guint8 unknown_required[] = { 0x00, 0x20, 0x00, 0x08, 0,    1,    0xa1, 0x47,
                                             0xe1, 0x12, 0xa6, 0x43, 0x77, 0x77, 0x00, 0x00 };
  static const guint8 bad_length[] = { 0x00, 0x20, 0x00, 0x0C, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  static const guint8 no_code[] = { 0x80, 0x22, 0x00, 0x00 };

  g_autoptr(GBytes) ok =
    make_response(HARK_STUN_BINDING_SUCCESS, good_xor, sizeof good_xor, HARK_STUN_MAGIC_COOKIE);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunBindingResponse) r = hark_stun_read_binding_response(ok, &error);
  g_assert_no_error(error);
  g_assert_nonnull(r->mapped);

  g_autoptr(GBytes) cookie =
    make_response(HARK_STUN_BINDING_SUCCESS, good_xor, sizeof good_xor, 0x2112A443u);
  check_response_refused(cookie, "not a STUN message");
  g_autoptr(GBytes) family =
    make_response(HARK_STUN_BINDING_SUCCESS, bad_family, sizeof bad_family, HARK_STUN_MAGIC_COOKIE);
  check_response_refused(family, "family 0x02 does not fit its 8 bytes");
  g_autoptr(GBytes) other = make_response(HARK_STUN_BINDING_SUCCESS, family_v6_short,
                                          sizeof family_v6_short, HARK_STUN_MAGIC_COOKIE);
  check_response_refused(other, "address attribute 0x802c: family 0x07");
  g_autoptr(GBytes) unknown = make_response(HARK_STUN_BINDING_SUCCESS, unknown_required,
                                            sizeof unknown_required, HARK_STUN_MAGIC_COOKIE);
  check_response_refused(unknown, "unknown comprehension-required attribute 0x7777");
  g_autoptr(GBytes) length =
    make_response(HARK_STUN_BINDING_SUCCESS, bad_length, sizeof bad_length, HARK_STUN_MAGIC_COOKIE);
  check_response_refused(length, "XOR-MAPPED-ADDRESS has a bad length");
  g_autoptr(GBytes) missing =
    make_response(HARK_STUN_BINDING_SUCCESS, no_code, sizeof no_code, HARK_STUN_MAGIC_COOKIE);
  check_response_refused(missing, "without XOR-MAPPED-ADDRESS");
  g_autoptr(GBytes) error_without_code =
    make_response(HARK_STUN_BINDING_ERROR, no_code, sizeof no_code, HARK_STUN_MAGIC_COOKIE);
  check_response_refused(error_without_code, "without a valid ERROR-CODE");
  g_autoptr(GBytes) request =
    make_response(HARK_STUN_BINDING_REQUEST, good_xor, sizeof good_xor, HARK_STUN_MAGIC_COOKIE);
  check_response_refused(request, "not a binding response: a request");
  g_autoptr(GBytes) truncated = g_bytes_new_from_bytes(ok, 0, g_bytes_get_size(ok) - 4);
  check_response_refused(truncated, "not a STUN message");
}

/* Where an answer may go: no unspecified, link-local, multicast or broadcast address,
 * loopback only with network.allow_loopback, mapped IPv4 judged as IPv4. */
int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
  hark_test_add_isolated_func("/stun/rfc5769-request", test_rfc5769_request);
  hark_test_add_isolated_func("/stun/answer-ipv4", test_answer_ipv4);
  hark_test_add_isolated_func("/stun/answer-ipv6", test_answer_ipv6);
  hark_test_add_isolated_func("/stun/unknown-required", test_unknown_required);
  hark_test_add_isolated_func("/stun/optional-unknown-ignored", test_optional_unknown_ignored);
  hark_test_add_isolated_func("/stun/malformed-variants", test_malformed_variants);
  hark_test_add_isolated_func("/stun/malformed-header", test_malformed_header);
  hark_test_add_isolated_func("/stun/fingerprint-not-last", test_fingerprint_not_last);
  hark_test_add_isolated_func("/stun/not-inet", test_not_inet);
  hark_test_add_isolated_func("/stun/wire-is-not-stun", test_wire_is_not_stun);
  hark_test_add_isolated_func("/stun/change-request", test_change_request);
  hark_test_add_isolated_func("/stun/rfc5780-answer", test_rfc5780_answer);
  hark_test_add_isolated_func("/stun/response-port-and-padding", test_response_port_and_padding);
  hark_test_add_isolated_func("/stun/bad-responses", test_bad_responses);
  return g_test_run();
}
