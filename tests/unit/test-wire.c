/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-wire.c: the wire format's round trips, its refusals of bad input and a golden
 * vector that fails when the bytes on the wire change by accident. */
#include <string.h>

#include <hark/wire.h>

#include "test-bytes.h"
#include "test-isolate.h"

/* PING, id 0x0102030405060708, body (1000000,): written out by hand from the GVariant
 * serialisation rules, not produced by the encoder under test. */
static const guint8 golden_ping[] = {
  0x01, 0x00, /* version 1 */
  0x02, 0x00, /* type 2 (PING) */
  0x00, 0x00, 0x00, 0x00, /* padding to align the id */
  0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* id */
  0x40, 0x42, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, /* body (t): 1000000 */
  0x00, '(',  't',  ')', /* variant: separator, body type */
};
#define GOLDEN_ID G_GUINT64_CONSTANT(0x0102030405060708)
#define GOLDEN_TIME G_GUINT64_CONSTANT(1000000)

static GBytes *
golden_with_byte(gsize index, guint8 value)
{
  return hark_test_bytes_patched(golden_ping, sizeof golden_ping, index, value);
}

static void
assert_decode_fails(GBytes *bytes, HarkWireError code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkWireMessage) message = hark_wire_decode(bytes, &error);

  g_assert_null(message);
  g_assert_error(error, HARK_WIRE_ERROR, (gint)code);
  g_assert_nonnull(error->message);
  g_assert_cmpstr(error->message, !=, "");
}

static void
assert_decode_data_fails(const guint8 *data, gsize size, HarkWireError code)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  assert_decode_fails(bytes, code);
}

static GBytes *
encode_or_die(guint16 type, guint64 id, GVariant *body)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = hark_wire_encode(type, id, body, &error);

  g_assert_no_error(error);
  g_assert_nonnull(bytes);
  return bytes;
}

static HarkWireMessage *
decode_or_die(GBytes *bytes)
{
  g_autoptr(GError) error = NULL;
  HarkWireMessage *message = hark_wire_decode(bytes, &error);

  g_assert_no_error(error);
  g_assert_nonnull(message);
  return message;
}

static void
assert_round_trip(guint16 type, guint64 id, GVariant *body)
{
  g_autoptr(GVariant) expected = g_variant_ref_sink(body);
  g_autoptr(GBytes) bytes = encode_or_die(type, id, expected);
  g_autoptr(HarkWireMessage) message = decode_or_die(bytes);

  g_assert_cmpuint(message->version, ==, HARK_WIRE_VERSION);
  g_assert_cmpuint(message->type, ==, type);
  g_assert_cmpuint(message->id, ==, id);
  g_assert_true(g_variant_equal(message->body, expected));
}

static void
test_type_table(void)
{
  g_assert_cmpstr(hark_wire_type_name(HARK_MSG_ERROR), ==, "ERROR");
  g_assert_cmpstr(hark_wire_type_name(HARK_MSG_PING), ==, "PING");
  g_assert_cmpstr(hark_wire_type_name(HARK_MSG_PONG), ==, "PONG");
  g_assert_cmpstr(hark_wire_body_signature(HARK_MSG_ERROR), ==, "(us)");
  g_assert_cmpstr(hark_wire_body_signature(HARK_MSG_PING), ==, "(t)");
  g_assert_cmpstr(hark_wire_body_signature(HARK_MSG_PONG), ==, "(t)");
  g_assert_null(hark_wire_type_name(0));
  g_assert_null(hark_wire_body_signature(0));
  g_assert_null(hark_wire_type_name(G_MAXUINT16));
  g_assert_null(hark_wire_body_signature(G_MAXUINT16));
}

static void
test_round_trip_error(void)
{
  assert_round_trip(HARK_MSG_ERROR, 1, g_variant_new("(us)", 404, "no such peer"));
  assert_round_trip(HARK_MSG_ERROR, 2, g_variant_new("(us)", 0, ""));
  assert_round_trip(HARK_MSG_ERROR, 3, g_variant_new("(us)", G_MAXUINT32, "é ✓"));
}

static void
test_round_trip_ping(void)
{
  assert_round_trip(HARK_MSG_PING, 42, g_variant_new("(t)", GOLDEN_TIME));
  assert_round_trip(HARK_MSG_PING, 43, g_variant_new("(t)", G_MAXUINT64));
}

/* TURN_REQUEST is the smallest message there is: an empty body. */
static void
test_round_trip_turn(void)
{
  assert_round_trip(HARK_MSG_TURN_REQUEST, 7, g_variant_new("()"));
  assert_round_trip(HARK_MSG_TURN_CREDENTIALS, 7,
                    g_variant_new("(sqssxb)", "192.0.2.5", 3478, "1767225600:alice",
                                  "q0DCmlkXVvOeEpkC2s2ls7wzyOo=", (gint64)1767225600, TRUE));
  assert_round_trip(HARK_MSG_TURN_FORWARD, 7, g_variant_new("(s)", "alice"));
  assert_round_trip(HARK_MSG_DIR_HINT, 8, g_variant_new("(s)", "bob"));
  g_assert_true(hark_wire_is_answer(HARK_MSG_TURN_CREDENTIALS));
  g_assert_false(hark_wire_is_answer(HARK_MSG_TURN_REQUEST));
  g_assert_false(hark_wire_is_answer(HARK_MSG_TURN_FORWARD));
  g_assert_false(hark_wire_is_answer(HARK_MSG_DIR_HINT));
}

static void
test_round_trip_pong(void)
{
  assert_round_trip(HARK_MSG_PONG, 42, g_variant_new("(t)", GOLDEN_TIME));
  assert_round_trip(HARK_MSG_PONG, 44, g_variant_new("(t)", (guint64)0));
}

static void
test_id_and_version_preserved(void)
{
  const guint64 ids[] = {
    0, 1, 0xff, G_GUINT64_CONSTANT(0x8000000000000000), G_MAXUINT64,
  };

  for (gsize i = 0; i < G_N_ELEMENTS(ids); i++)
    assert_round_trip(HARK_MSG_PING, ids[i], g_variant_new("(t)", (guint64)i));
}

static void
test_golden_ping_encode(void)
{
  g_autoptr(GBytes) bytes =
    encode_or_die(HARK_MSG_PING, GOLDEN_ID, g_variant_new("(t)", GOLDEN_TIME));
  g_autoptr(GBytes) golden = g_bytes_new_static(golden_ping, sizeof golden_ping);

  g_assert_cmpmem(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), golden_ping,
                  sizeof golden_ping);
  g_assert_true(g_bytes_equal(bytes, golden));
}

static void
test_golden_ping_decode(void)
{
  g_autoptr(GBytes) golden = g_bytes_new_static(golden_ping, sizeof golden_ping);
  g_autoptr(HarkWireMessage) message = decode_or_die(golden);
  guint64 time = 0;

  g_assert_cmpuint(message->version, ==, 1);
  g_assert_cmpuint(message->type, ==, HARK_MSG_PING);
  g_assert_cmpuint(message->id, ==, GOLDEN_ID);
  g_variant_get(message->body, "(t)", &time);
  g_assert_cmpuint(time, ==, GOLDEN_TIME);
}

/* Network buffers need not be 8-aligned, and GVariant must cope with that. */
static void
test_decode_misaligned(void)
{
  g_autofree guint8 *buffer = g_malloc(sizeof golden_ping + 1);
  memcpy(buffer + 1, golden_ping, sizeof golden_ping);
  g_autoptr(GBytes) bytes = g_bytes_new_static(buffer + 1, sizeof golden_ping);
  g_autoptr(HarkWireMessage) message = decode_or_die(bytes);

  g_assert_cmpuint(message->id, ==, GOLDEN_ID);
}

static gboolean input_released;

static void
poison_and_free(gpointer data)
{
  memset(data, 0xAA, sizeof golden_ping);
  g_free(data);
  input_released = TRUE;
}

static void
test_body_outlives_input(void)
{
  guint8 *data = g_memdup2(golden_ping, sizeof golden_ping);
  GBytes *input = g_bytes_new_with_free_func(data, sizeof golden_ping, poison_and_free, data);
  input_released = FALSE;
  HarkWireMessage *message = decode_or_die(input);
  guint64 time = 0;

  g_bytes_unref(input);
  g_variant_get(message->body, "(t)", &time);
  g_assert_cmpuint(time, ==, GOLDEN_TIME);
  hark_wire_message_free(message);
  g_assert_true(input_released);
}

static void
test_encode_unknown_type(void)
{
  const guint16 types[] = { 0, HARK_MSG_DIR_HINT + 1, 99, G_MAXUINT16 };

  for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
    g_autoptr(GError) error = NULL;
    /* Floating: a refused body must be consumed too, which ASan's leak check sees. */
    g_autoptr(GBytes) bytes =
      hark_wire_encode(types[i], 1, g_variant_new("(t)", (guint64)1), &error);
    g_assert_null(bytes);
    g_assert_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_UNKNOWN_TYPE);
  }
}

static void
test_encode_wrong_body_type(void)
{
  struct {
    guint16 type;
    const char *text;
  } cases[] = {
    { HARK_MSG_PING, "(uint32 1,)" },      { HARK_MSG_PING, "(uint64 1, uint64 2)" },
    { HARK_MSG_PING, "uint64 1" },         { HARK_MSG_PONG, "('x',)" },
    { HARK_MSG_ERROR, "('x', uint32 1)" }, { HARK_MSG_ERROR, "(uint64 1,)" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) body = g_variant_parse(NULL, cases[i].text, NULL, NULL, NULL);
    g_assert_nonnull(body);
    g_autoptr(GBytes) bytes = hark_wire_encode(cases[i].type, 1, body, &error);
    g_assert_null(bytes);
    g_assert_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_BODY_TYPE);
    g_assert_nonnull(strstr(error->message, hark_wire_body_signature(cases[i].type)));
  }
}

static void
test_encode_too_large(void)
{
  g_autofree char *text = g_strnfill(HARK_WIRE_MAX_SIZE, 'x');
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes =
    hark_wire_encode(HARK_MSG_ERROR, 1, g_variant_new("(us)", 1, text), &error);

  g_assert_null(bytes);
  g_assert_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_TOO_LARGE);
}

/* A body built from a peer's bytes may be in non-normal form; what the encoder sends
 * must still be something every decoder accepts. */
static void
test_encode_non_normal_body(void)
{
  /* (us) whose string lacks its terminating nul. */
  static const guint8 unterminated[] = { 0x01, 0x00, 0x00, 0x00, 'a', 'b' };
  g_autoptr(GVariant) body = g_variant_ref_sink(g_variant_new_from_data(
    G_VARIANT_TYPE("(us)"), unterminated, sizeof unterminated, FALSE, NULL, NULL));
  g_autoptr(GBytes) bytes = encode_or_die(HARK_MSG_ERROR, 5, body);
  g_autoptr(HarkWireMessage) message = decode_or_die(bytes);

  g_assert_true(g_variant_equal(message->body, body));
}

static void
test_decode_empty(void)
{
  g_autoptr(GBytes) bytes = g_bytes_new(NULL, 0);
  g_autoptr(GError) error = NULL;

  assert_decode_fails(bytes, HARK_WIRE_ERROR_MALFORMED);
  g_assert_null(hark_wire_decode(bytes, &error));
  g_assert_cmpstr(error->message, ==, "message is empty");
}

/* A prefix may be refused or, should it happen to be a whole message, accepted; then
 * it must be exactly what encoding that message gives back. */
static void
check_prefixes(GBytes *whole)
{
  gsize size = 0;
  const guint8 *data = g_bytes_get_data(whole, &size);

  for (gsize length = 0; length < size; length++) {
    g_autoptr(GError) error = NULL;
    /* A copy, so that ASan sees a read past the prefix. */
    g_autoptr(GBytes) prefix = g_bytes_new(data, length);
    g_autoptr(HarkWireMessage) message = hark_wire_decode(prefix, &error);

    if (message == NULL) {
      g_assert_nonnull(error);
      g_assert_true(error->domain == HARK_WIRE_ERROR);
      continue;
    }
    g_assert_no_error(error);
    g_autoptr(GBytes) again = encode_or_die(message->type, message->id, message->body);
    g_assert_true(g_bytes_equal(again, prefix));
  }
}

static void
test_decode_truncated(void)
{
  g_autoptr(GBytes) error_message =
    encode_or_die(HARK_MSG_ERROR, 7, g_variant_new("(us)", 500, "something went wrong"));
  g_autoptr(GBytes) ping = encode_or_die(HARK_MSG_PING, 8, g_variant_new("(t)", (guint64)9));
  g_autoptr(GBytes) pong = encode_or_die(HARK_MSG_PONG, 8, g_variant_new("(t)", (guint64)9));

  check_prefixes(error_message);
  check_prefixes(ping);
  check_prefixes(pong);
}

static void
test_decode_too_large(void)
{
  g_autofree guint8 *zeros = g_malloc0(HARK_WIRE_MAX_SIZE + 1);
  g_autoptr(GBytes) too_large = g_bytes_new_static(zeros, HARK_WIRE_MAX_SIZE + 1);
  g_autoptr(GBytes) at_limit = g_bytes_new_static(zeros, HARK_WIRE_MAX_SIZE);
  g_autoptr(GError) error = NULL;

  g_assert_null(hark_wire_decode(too_large, &error));
  g_assert_error(error, HARK_WIRE_ERROR, HARK_WIRE_ERROR_TOO_LARGE);
  g_assert_nonnull(strstr(error->message, "65537 bytes"));
  g_assert_nonnull(strstr(error->message, "65536-byte limit"));
  /* At the limit it is the content, not the size, that is wrong. */
  assert_decode_fails(at_limit, HARK_WIRE_ERROR_MALFORMED);
}

static void
test_decode_wrong_version(void)
{
  g_autoptr(GBytes) version_0 = golden_with_byte(0, 0);
  g_autoptr(GBytes) version_2 = golden_with_byte(0, 2);
  g_autoptr(GBytes) version_257 = golden_with_byte(1, 1);

  assert_decode_fails(version_0, HARK_WIRE_ERROR_VERSION);
  assert_decode_fails(version_2, HARK_WIRE_ERROR_VERSION);
  assert_decode_fails(version_257, HARK_WIRE_ERROR_VERSION);
}

static void
test_decode_unknown_type(void)
{
  g_autoptr(GBytes) type_0 = golden_with_byte(2, 0);
  g_autoptr(GBytes) type_99 = golden_with_byte(2, 99);
  g_autoptr(GBytes) type_258 = golden_with_byte(3, 1);

  assert_decode_fails(type_0, HARK_WIRE_ERROR_UNKNOWN_TYPE);
  assert_decode_fails(type_99, HARK_WIRE_ERROR_UNKNOWN_TYPE);
  assert_decode_fails(type_258, HARK_WIRE_ERROR_UNKNOWN_TYPE);
}

static void
test_decode_wrong_body_type(void)
{
  /* Normal-form messages of known types whose bodies have another type. */
  static const guint8 ping_with_u[] = {
    0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, '(',  'u',  ')',
  };
  static const guint8 ping_with_bare_t[] = {
    0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 't',
  };
  static const guint8 error_with_t[] = {
    0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, '(',  't',  ')',
  };

  assert_decode_data_fails(ping_with_u, sizeof ping_with_u, HARK_WIRE_ERROR_BODY_TYPE);
  assert_decode_data_fails(ping_with_bare_t, sizeof ping_with_bare_t, HARK_WIRE_ERROR_BODY_TYPE);
  assert_decode_data_fails(error_with_t, sizeof error_with_t, HARK_WIRE_ERROR_BODY_TYPE);
}

static void
test_decode_not_normal_form(void)
{
  /* Each is the golden PING with one flaw that GVariant would otherwise paper over. */
  g_autoptr(GBytes) padding = golden_with_byte(5, 0x01);
  g_autoptr(GBytes) bad_signature = golden_with_byte(sizeof golden_ping - 1, 'x');
  g_autoptr(GBytes) no_separator = golden_with_byte(24, 'z');
  /* A (u) body with 8 bytes of data where a u has 4. */
  g_autoptr(GBytes) oversized_body = golden_with_byte(sizeof golden_ping - 2, 'u');
  guint8 trailing[sizeof golden_ping + 1];

  memcpy(trailing, golden_ping, sizeof golden_ping);
  trailing[sizeof golden_ping] = 0;

  assert_decode_fails(padding, HARK_WIRE_ERROR_MALFORMED);
  assert_decode_fails(bad_signature, HARK_WIRE_ERROR_MALFORMED);
  assert_decode_fails(no_separator, HARK_WIRE_ERROR_MALFORMED);
  assert_decode_fails(oversized_body, HARK_WIRE_ERROR_MALFORMED);
  assert_decode_data_fails(trailing, sizeof trailing, HARK_WIRE_ERROR_MALFORMED);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);

  hark_test_add_isolated_func("/wire/type-table", test_type_table);
  hark_test_add_isolated_func("/wire/round-trip/error", test_round_trip_error);
  hark_test_add_isolated_func("/wire/round-trip/ping", test_round_trip_ping);
  hark_test_add_isolated_func("/wire/round-trip/pong", test_round_trip_pong);
  hark_test_add_isolated_func("/wire/round-trip/turn", test_round_trip_turn);
  hark_test_add_isolated_func("/wire/round-trip/id-and-version", test_id_and_version_preserved);
  hark_test_add_isolated_func("/wire/golden/ping-encode", test_golden_ping_encode);
  hark_test_add_isolated_func("/wire/golden/ping-decode", test_golden_ping_decode);
  hark_test_add_isolated_func("/wire/decode/misaligned", test_decode_misaligned);
  hark_test_add_isolated_func("/wire/decode/body-outlives-input", test_body_outlives_input);
  hark_test_add_isolated_func("/wire/encode/unknown-type", test_encode_unknown_type);
  hark_test_add_isolated_func("/wire/encode/wrong-body-type", test_encode_wrong_body_type);
  hark_test_add_isolated_func("/wire/encode/too-large", test_encode_too_large);
  hark_test_add_isolated_func("/wire/encode/non-normal-body", test_encode_non_normal_body);
  hark_test_add_isolated_func("/wire/decode/empty", test_decode_empty);
  hark_test_add_isolated_func("/wire/decode/truncated", test_decode_truncated);
  hark_test_add_isolated_func("/wire/decode/too-large", test_decode_too_large);
  hark_test_add_isolated_func("/wire/decode/wrong-version", test_decode_wrong_version);
  hark_test_add_isolated_func("/wire/decode/unknown-type", test_decode_unknown_type);
  hark_test_add_isolated_func("/wire/decode/wrong-body-type", test_decode_wrong_body_type);
  hark_test_add_isolated_func("/wire/decode/not-normal-form", test_decode_not_normal_form);

  return g_test_run();
}
