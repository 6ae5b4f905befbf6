/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-call-keys.c: a call's SRTP keys (core/call/call-keys.c). Caller and callee derive
 * crossed equal keys; any change of the transcript (call id, a nonce, a share, a device)
 * gives other keys, so a share or nonce replayed into another call is worth nothing; a
 * peer share that is a low-order point (all-zero secret) is refused; and a known-answer
 * vector: RFC 7748's X25519 keys through the HKDF of docs/protocol.md ("Calls: keys"),
 * whose expected output was computed apart from this code (Python's hmac/hashlib). */
#include "call-keys.h"

#include <string.h>

typedef struct {
  guint8 call_id[HARK_CALL_ID_SIZE];
  guint8 caller_nonce[HARK_CALL_NONCE_SIZE], callee_nonce[HARK_CALL_NONCE_SIZE];
  char caller_device[65], callee_device[65];
} Call;

static void
call_init(Call *c)
{
  for (guint i = 0; i < HARK_CALL_ID_SIZE; i++)
    c->call_id[i] = (guint8)i;
  memset(c->caller_nonce, 0x11, sizeof c->caller_nonce);
  memset(c->callee_nonce, 0x22, sizeof c->callee_nonce);
  memset(c->caller_device, 'a', 64);
  c->caller_device[64] = '\0';
  memset(c->callee_device, 'b', 64);
  c->callee_device[64] = '\0';
}

static HarkCallTranscript
transcript(const Call *c, const guint8 *caller_share, const guint8 *callee_share)
{
  return (HarkCallTranscript){ .call_id = c->call_id,
                               .caller_nonce = c->caller_nonce,
                               .callee_nonce = c->callee_nonce,
                               .caller_share = caller_share,
                               .callee_share = callee_share,
                               .caller_device = c->caller_device,
                               .callee_device = c->callee_device };
}

/* One side's keys (send, receive), as hex "SEND/RECEIVE". */
static char *
derive(const HarkCallKeyShare *ours, const HarkCallKeyShare *theirs, gboolean caller, const Call *c)
{
  const guint8 *mine = hark_call_key_share_public(ours), *peer = hark_call_key_share_public(theirs);
  HarkCallTranscript t = transcript(c, caller ? mine : peer, caller ? peer : mine);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) send = NULL, receive = NULL;
  g_assert_true(hark_call_keys_derive(ours, peer, caller, &t, &send, &receive, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(send), ==, 44);
  g_assert_cmpuint(g_bytes_get_size(receive), ==, 44);
  g_autofree char *s = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, send);
  g_autofree char *r = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, receive);
  g_assert_cmpstr(s, !=, r);
  GString *hex = g_string_new(NULL);
  gsize n = 0;
  const guint8 *data = g_bytes_get_data(send, &n);
  for (gsize i = 0; i < n; i++)
    g_string_append_printf(hex, "%02x", data[i]);
  g_string_append_c(hex, '/');
  data = g_bytes_get_data(receive, &n);
  for (gsize i = 0; i < n; i++)
    g_string_append_printf(hex, "%02x", data[i]);
  return g_string_free(hex, FALSE);
}

/* "SEND/RECEIVE" -> "RECEIVE/SEND" */
static char *
crossed(const char *keys)
{
  const char *slash = strchr(keys, '/');
  g_autofree char *send = g_strndup(keys, slash - keys);
  return g_strdup_printf("%s/%s", slash + 1, send);
}

static void
test_crossed(void)
{
  Call c;
  call_init(&c);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCallKeyShare) alice = hark_call_key_share_new(&error);
  g_assert_no_error(error);
  g_autoptr(HarkCallKeyShare) bob = hark_call_key_share_new(&error);
  g_assert_no_error(error);
  g_assert_true(memcmp(hark_call_key_share_public(alice), hark_call_key_share_public(bob),
                       HARK_CALL_SHARE_SIZE) != 0);
  g_autofree char *caller = derive(alice, bob, TRUE, &c);
  g_autofree char *callee = derive(bob, alice, FALSE, &c);
  g_autofree char *expected = crossed(caller);
  g_assert_cmpstr(callee, ==, expected);
}

/* Anything of the transcript changed on one side: keys that do not match the other's. */
static void
test_bound_to_transcript(void)
{
  g_autoptr(HarkCallKeyShare) alice = hark_call_key_share_new(NULL);
  g_autoptr(HarkCallKeyShare) bob = hark_call_key_share_new(NULL);
  g_autoptr(HarkCallKeyShare) mallory = hark_call_key_share_new(NULL);
  Call c;
  call_init(&c);
  g_autofree char *reference = derive(alice, bob, TRUE, &c);
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
  for (guint change = 0; change < 6; change++) {
    Call other;
    call_init(&other);
    switch (change) {
    case 0: other.call_id[15] ^= 1; break;
    case 1: other.caller_nonce[0] ^= 0x80; break;
    case 2: other.callee_nonce[31] ^= 1; break;
    case 3: other.caller_device[63] = 'c'; break;
    case 4: other.callee_device[0] = 'c'; break;
    case 5: other.caller_device[63] = '\0'; break; /* a shorter id: the length is bound too */
    }
    g_autofree char *keys = derive(alice, bob, TRUE, &other);
    g_assert_cmpstr(keys, !=, reference);
    for (guint i = 0; i < seen->len; i++)
      g_assert_cmpstr(keys, !=, seen->pdata[i]);
    g_ptr_array_add(seen, g_steal_pointer(&keys));
  }
  /* Another share (a new call, or a man in the middle's) gives other keys. */
  g_autofree char *with_mallory = derive(alice, mallory, TRUE, &c);
  g_assert_cmpstr(with_mallory, !=, reference);
  /* The roles are bound: two callers derive what no callee would. */
  g_autofree char *both_callers = derive(bob, alice, TRUE, &c);
  g_autofree char *reference_crossed = crossed(reference);
  g_assert_cmpstr(both_callers, !=, reference_crossed);
}

static void
from_hex(const char *hex, guint8 out[32])
{
  for (guint j = 0; j < 32; j++)
    out[j] = (guint8)(g_ascii_xdigit_value(hex[2 * j]) << 4 | g_ascii_xdigit_value(hex[2 * j + 1]));
}

/* The points of small order (and their non-canonical encodings): X25519 with any of them
 * is all zero, whatever our key, so a peer sending one would fix the keys. */
static void
test_low_order_refused(void)
{
  static const char *const points[] = {
    "0000000000000000000000000000000000000000000000000000000000000000", /* 0 */
    "0100000000000000000000000000000000000000000000000000000000000000", /* 1 */
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", /* order 8 */
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", /* order 8 */
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p - 1 */
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p (= 0) */
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p + 1 (= 1) */
    "0000000000000000000000000000000000000000000000000000000000000080", /* 0, top bit set */
  };
  g_autoptr(HarkCallKeyShare) alice = hark_call_key_share_new(NULL);
  Call c;
  call_init(&c);
  for (guint i = 0; i < G_N_ELEMENTS(points); i++) {
    guint8 peer[32];
    from_hex(points[i], peer);
    HarkCallTranscript t = transcript(&c, hark_call_key_share_public(alice), peer);
    g_autoptr(GError) error = NULL;
    GBytes *send = NULL, *receive = NULL;
    g_assert_false(hark_call_keys_derive(alice, peer, TRUE, &t, &send, &receive, &error));
    g_assert_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_KEYS);
    g_assert_null(send);
    g_assert_null(receive);
  }
}

static HarkCallKeyShare *
share_from_hex(const char *hex)
{
  guint8 key[32];
  from_hex(hex, key);
  g_autoptr(GError) error = NULL;
  HarkCallKeyShare *share = hark_call_key_share_new_from_private(key, &error);
  g_assert_no_error(error);
  return share;
}

static char *
public_hex(const HarkCallKeyShare *share)
{
  GString *hex = g_string_new(NULL);
  for (guint i = 0; i < HARK_CALL_SHARE_SIZE; i++)
    g_string_append_printf(hex, "%02x", hark_call_key_share_public(share)[i]);
  return g_string_free(hex, FALSE);
}

/* RFC 7748 section 6.1's key pairs; call id 00..0f, caller nonce 0x11 * 32, callee nonce
 * 0x22 * 32, caller device "a" * 64, callee device "b" * 64. */
static void
test_known_answer(void)
{
  g_autoptr(HarkCallKeyShare) alice =
    share_from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  g_autoptr(HarkCallKeyShare) bob =
    share_from_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  g_autofree char *alice_public = public_hex(alice);
  g_autofree char *bob_public = public_hex(bob);
  g_assert_cmpstr(alice_public, ==, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  g_assert_cmpstr(bob_public, ==, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  Call c;
  call_init(&c);
  g_autofree char *caller = derive(alice, bob, TRUE, &c);
  g_assert_cmpstr(caller, ==,
                  "d51ef8bd667e16e349a9d0d162f800a3803c8548953b28f595eca74c65dc099c949e9d30fe54014079fb508c"
                  "/"
                  "a74210fa48d92006957b9a26a67ec71cb17d3ae993cba2df781e9fa7a1a330f0b7867faeabfb7a02b711b8de");
  g_autofree char *callee = derive(bob, alice, FALSE, &c);
  g_autofree char *expected = crossed(caller);
  g_assert_cmpstr(callee, ==, expected);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/call-keys/crossed", test_crossed);
  g_test_add_func("/call-keys/bound-to-transcript", test_bound_to_transcript);
  g_test_add_func("/call-keys/low-order-refused", test_low_order_refused);
  g_test_add_func("/call-keys/known-answer", test_known_answer);
  return g_test_run();
}
