/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-relay.c: the SN's TURN server's parts without sockets (core/relay): the STUN
 * codec's MESSAGE-INTEGRITY (RFC 5769's vector) and TURN messages, the allocation table
 * with time moved by hand (lifetimes of allocations, permissions and channels; quotas),
 * the denied peers and the allow list, credentials as the overlay mints them, nonces,
 * and the relay's secret file. The server itself: tests/integration/test-turn.c. */
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "cidr.h"
#include "overlay-turn-parse.h"
#include "relay-auth.h"
#include "relay-peer.h"
#include "relay-table.h"
#include "stun.h"
#include "stun-vectors.h"
#include "test-isolate.h"

#include <glib/gstdio.h>

static void
test_integrity_vector(void)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static(rfc5769_request, sizeof rfc5769_request);
  g_autoptr(HarkStunMessage) m = hark_stun_parse(bytes, NULL);
  g_assert_nonnull(m);
  g_assert_true(
    hark_stun_check_integrity(m, (const guint8 *)rfc5769_password, strlen(rfc5769_password)));
  g_assert_false(hark_stun_check_integrity(m, (const guint8 *)"VOkJxbRl1RmTxUk/WvJxBu", 22));
  /* One bit of the message changed (its PRIORITY): the MAC no longer matches. The
   * FINGERPRINT is recomputed so that only the integrity check can tell. */
  guint8 copy[sizeof rfc5769_request];
  memcpy(copy, rfc5769_request, sizeof copy);
  copy[47] ^= 1;
  GByteArray *b = hark_stun_builder_new(0x0001, copy + 8);
  g_byte_array_set_size(b, 0);
  g_byte_array_append(b, copy, sizeof copy - 8);
  g_autoptr(GBytes) changed = hark_stun_builder_finish(b);
  g_autoptr(HarkStunMessage) c = hark_stun_parse(changed, NULL);
  g_assert_nonnull(c);
  g_assert_false(
    hark_stun_check_integrity(c, (const guint8 *)rfc5769_password, strlen(rfc5769_password)));
}

/* A TURN request as a client builds it: parsed back, with its attributes and a long-term
 * MESSAGE-INTEGRITY that checks; the type's class and method both ways. */
static void
test_turn_round_trip(void)
{
  static const guint16 methods[] = {
    HARK_STUN_METHOD_ALLOCATE, HARK_STUN_METHOD_REFRESH,           HARK_STUN_METHOD_SEND,
    HARK_STUN_METHOD_DATA,     HARK_STUN_METHOD_CREATE_PERMISSION, HARK_STUN_METHOD_CHANNEL_BIND
  };
  for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
    for (int cls = 0; cls < 4; cls++) {
      guint16 type = hark_stun_message_type(methods[i], cls);
      g_assert_cmpuint(hark_stun_message_method(type), ==, methods[i]);
      g_assert_cmpint(hark_stun_message_class(type), ==, cls);
    }
  g_assert_cmphex(hark_stun_message_type(HARK_STUN_METHOD_ALLOCATE, HARK_STUN_CLASS_ERROR), ==,
                  0x0113);
  g_assert_cmphex(hark_stun_message_type(HARK_STUN_METHOD_DATA, HARK_STUN_CLASS_INDICATION), ==,
                  0x0017);

  const guint8 id[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
  GByteArray *b = hark_stun_builder_new(
    hark_stun_message_type(HARK_STUN_METHOD_CHANNEL_BIND, HARK_STUN_CLASS_REQUEST), id);
  hark_stun_builder_add_u32(b, HARK_STUN_ATTR_CHANNEL_NUMBER, 0x40010000u);
  g_autoptr(GSocketAddress) peer = g_inet_socket_address_new_from_string("192.0.2.7", 4242);
  g_assert_true(hark_stun_builder_add_address(b, HARK_STUN_ATTR_XOR_PEER_ADDRESS, peer, id, NULL));
  hark_stun_builder_add(b, HARK_STUN_ATTR_USERNAME, "1:u", 3);
  guint8 key[16];
  hark_stun_long_term_key("1:u", "hark", "pw", key);
  hark_stun_builder_add_integrity(b, key, sizeof key);
  g_autoptr(GBytes) bytes = hark_stun_builder_finish(b);
  g_autoptr(HarkStunMessage) m = hark_stun_parse(bytes, NULL);
  g_assert_nonnull(m);
  g_assert_true(m->has_fingerprint);
  g_assert_cmpuint(m->unknown_required->len, ==, 0);
  g_assert_true(hark_stun_check_integrity(m, key, sizeof key));
  key[0] ^= 1;
  g_assert_false(hark_stun_check_integrity(m, key, sizeof key));
  g_assert_cmphex(hark_stun_attribute_u32(hark_stun_message_find(m, HARK_STUN_ATTR_CHANNEL_NUMBER)),
                  ==, 0x40010000u);
  g_autoptr(GInetSocketAddress) back =
    hark_stun_decode_address(hark_stun_message_find(m, HARK_STUN_ATTR_XOR_PEER_ADDRESS), id, NULL);
  g_autofree char *text = g_inet_address_to_string(g_inet_socket_address_get_address(back));
  g_assert_cmpstr(text, ==, "192.0.2.7");
  g_assert_cmpuint(g_inet_socket_address_get_port(back), ==, 4242);
  /* The key is MD5("1:u:hark:pw"). */
  g_autofree char *md5 = g_compute_checksum_for_string(G_CHECKSUM_MD5, "1:u:hark:pw", -1);
  guint8 expected[16];
  hark_stun_long_term_key("1:u", "hark", "pw", expected);
  char hex[33];
  for (int i = 0; i < 16; i++)
    g_snprintf(hex + 2 * i, 3, "%02x", expected[i]);
  g_assert_cmpstr(hex, ==, md5);
}

static RelayAddr
addr(const char *ip, guint16 port)
{
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string(ip, port);
  RelayAddr out;
  g_assert_true(hark_relay_addr_from_inet(G_INET_SOCKET_ADDRESS(address), RELAY_UDP, &out));
  return out;
}

static const guint8 KEY[16] = { 0 };
static const guint8 ID[12] = { 0 };

/* Allocations, permissions and channels expire at their lifetimes' ends (a clock moved
 * by hand: the table takes the time as an argument), and refreshes move the ends. */
static void
test_table_lifetimes(void)
{
  RelayTable *table = hark_relay_table_new(0, 0, NULL);
  RelayAddr client = addr("192.0.2.1", 1000);
  RelayAddr peer = addr("192.0.2.9", 2000);
  RelayAddr peer_other_port = addr("192.0.2.9", 2001);
  RelayAllocation *a = hark_relay_table_add(table, &client, "alice", "9:alice", KEY, ID, 600, 0);
  g_assert_true(hark_relay_table_find(table, &client) == a);

  g_assert_true(hark_relay_allocation_permit(a, &peer, 0));
  g_assert_true(hark_relay_allocation_permitted(a, &peer_other_port, 299)); /* the IP counts */
  g_assert_false(hark_relay_allocation_permitted(a, &peer, 300));
  g_assert_cmpuint(hark_relay_allocation_bind(a, 0x4001, &peer, 100), ==, 0);
  /* The bind refreshed the permission: until 400 now. */
  g_assert_true(hark_relay_allocation_permitted(a, &peer, 399));
  g_assert_false(hark_relay_allocation_permitted(a, &peer, 400));
  g_assert_nonnull(hark_relay_allocation_channel(a, 0x4001, 699));
  g_assert_null(hark_relay_allocation_channel(a, 0x4001, 700));
  g_assert_nonnull(hark_relay_allocation_channel_to(a, &peer, 699));
  g_assert_null(hark_relay_allocation_channel_to(a, &peer_other_port, 699));
  /* A number is bound to one peer, a peer to one number. */
  g_assert_cmpuint(hark_relay_allocation_bind(a, 0x4002, &peer, 150), ==, 400);
  g_assert_cmpuint(hark_relay_allocation_bind(a, 0x4001, &peer_other_port, 150), ==, 400);
  g_assert_cmpuint(hark_relay_allocation_bind(a, 0x4001, &peer, 500), ==, 0); /* refresh */
  g_assert_nonnull(hark_relay_allocation_channel(a, 0x4001, 1099));

  g_assert_cmpuint(hark_relay_table_expire(table, 599), ==, 0);
  g_assert_nonnull(hark_relay_table_find(table, &client));
  hark_relay_allocation_refresh(a, 600, 500); /* until 1100 */
  g_assert_cmpuint(hark_relay_table_expire(table, 1000), ==, 0);
  g_assert_cmpuint(a->permissions->len, ==, 0); /* expired at 800: forgotten */
  g_assert_cmpuint(a->channels->len, ==, 1);
  g_assert_cmpuint(hark_relay_table_expire(table, 1100), ==, 1);
  g_assert_null(hark_relay_table_find(table, &client));
  g_assert_cmpuint(hark_relay_table_user_count(table, "alice"), ==, 0);
  hark_relay_table_free(table);
}

static void
test_table_quota(void)
{
  RelayTable *table = hark_relay_table_new(3, 2, NULL);
  RelayAddr c1 = addr("192.0.2.1", 1), c2 = addr("192.0.2.1", 2), c3 = addr("192.0.2.1", 3);
  g_assert_cmpuint(hark_relay_table_admits(table, "alice"), ==, 0);
  hark_relay_table_add(table, &c1, "alice", "9:alice", KEY, ID, 600, 0);
  RelayAllocation *second = hark_relay_table_add(table, &c2, "alice", "9:alice", KEY, ID, 600, 0);
  g_assert_cmpuint(hark_relay_table_admits(table, "alice"), ==, 486);
  g_assert_cmpuint(hark_relay_table_admits(table, "bob"), ==, 0);
  hark_relay_table_add(table, &c3, "bob", "9:bob", KEY, ID, 600, 0);
  g_assert_cmpuint(hark_relay_table_admits(table, "carol"), ==, 508);
  hark_relay_table_remove(table, second);
  g_assert_cmpuint(hark_relay_table_admits(table, "alice"), ==, 0);
  g_assert_cmpuint(hark_relay_table_user_count(table, "alice"), ==, 1);
  g_assert_cmpuint(hark_relay_table_size(table), ==, 2);
  hark_relay_table_free(table);
}

static void
test_lifetime_granted(void)
{
  g_assert_cmpuint(hark_relay_lifetime_granted(-1, FALSE), ==, 600);
  g_assert_cmpuint(hark_relay_lifetime_granted(0, TRUE), ==, 0);
  g_assert_cmpuint(hark_relay_lifetime_granted(0, FALSE), ==, 600);
  g_assert_cmpuint(hark_relay_lifetime_granted(100, TRUE), ==, 600);
  g_assert_cmpuint(hark_relay_lifetime_granted(1800, FALSE), ==, 1800);
  g_assert_cmpuint(hark_relay_lifetime_granted(4000000000, FALSE), ==, 3600);
}

/* Addresses to and from socket addresses; an IPv6 (dual-stack) socket reaches IPv4 as
 * ::ffff:a.b.c.d, and what comes from it so is taken as the IPv4 address. */
static void
test_addresses(void)
{
  RelayAddr v4 = addr("192.0.2.1", 3478);
  struct sockaddr_storage sa;
  g_assert_cmpuint(hark_relay_addr_to_sockaddr(&v4, FALSE, &sa), ==, sizeof(struct sockaddr_in));
  g_assert_cmpint(sa.ss_family, ==, AF_INET);
  g_assert_cmpuint(hark_relay_addr_to_sockaddr(&v4, TRUE, &sa), ==, sizeof(struct sockaddr_in6));
  g_assert_cmpint(sa.ss_family, ==, AF_INET6);
  RelayAddr back;
  g_assert_true(hark_relay_addr_from_sockaddr((struct sockaddr *)&sa, RELAY_UDP, &back));
  g_assert_cmpmem(&back, sizeof back, &v4, sizeof v4);
  g_autofree char *text = hark_relay_addr_text(&back);
  g_assert_cmpstr(text, ==, "192.0.2.1:3478");
  RelayAddr v6 = addr("2001:db8::1", 5);
  g_autofree char *text6 = hark_relay_addr_text(&v6);
  g_assert_cmpstr(text6, ==, "[2001:db8::1]:5");
}

/* The bandwidth limits' bucket: a second's worth at once, then the rate. */
static void
test_bucket(void)
{
  RelayBucket bucket = { 1000, 0 };
  g_assert_true(hark_relay_bucket_take(&bucket, 1000, 600, 0));
  g_assert_false(hark_relay_bucket_take(&bucket, 1000, 600, 0));
  g_assert_true(hark_relay_bucket_take(&bucket, 1000, 400, 0));
  g_assert_false(hark_relay_bucket_take(&bucket, 1000, 1, 0));
  g_assert_true(hark_relay_bucket_take(&bucket, 1000, 500, G_USEC_PER_SEC / 2));
  /* Idle for a minute: still one second's worth, not sixty. */
  g_assert_true(hark_relay_bucket_take(&bucket, 1000, 1000, 61 * G_USEC_PER_SEC));
  g_assert_false(hark_relay_bucket_take(&bucket, 1000, 100, 61 * G_USEC_PER_SEC));
  RelayBucket unlimited = { 0, 0 };
  g_assert_true(hark_relay_bucket_take(&unlimited, 0, 1000000, 0));
}

static void
test_peer_refusal(void)
{
  const char *denied[] = { "0.0.0.0",
                           "0.1.2.3",
                           "10.0.0.1",
                           "100.64.0.1",
                           "127.0.0.1",
                           "127.255.0.9",
                           "169.254.169.254",
                           "172.16.0.1",
                           "172.31.255.255",
                           "192.168.0.1",
                           "198.18.0.1",
                           "198.19.255.1",
                           "224.0.0.1",
                           "239.1.1.1",
                           "240.0.0.1",
                           "255.255.255.255",
                           "::",
                           "::1",
                           "::127.0.0.1",
                           "::ffff:127.0.0.1",
                           "::ffff:169.254.169.254",
                           "64:ff9b::a00:1",
                           "fc00::1",
                           "fd12::1",
                           "fe80::1",
                           "ff02::1" };
  for (gsize i = 0; i < G_N_ELEMENTS(denied); i++) {
    RelayAddr peer = addr(denied[i], 5000);
    hark_relay_addr_unmap(&peer);
    const char *why = hark_relay_peer_refusal(&peer, NULL, 0);
    if (why == NULL)
      g_test_fail_printf("%s should be denied", denied[i]);
  }
  const char *allowed[] = { "8.8.8.8",     "192.0.2.1",   "172.32.0.1",
                            "100.128.0.1", "2001:db8::1", "::ffff:8.8.8.8" };
  for (gsize i = 0; i < G_N_ELEMENTS(allowed); i++) {
    RelayAddr peer = addr(allowed[i], 5000);
    hark_relay_addr_unmap(&peer);
    g_assert_null(hark_relay_peer_refusal(&peer, NULL, 0));
  }
  /* The lab's allow list opens loopback, and nothing else. */
  HarkCidr allow[1];
  g_assert_true(hark_cidr_parse("127.0.0.0/8", &allow[0]));
  RelayAddr loopback = addr("127.0.0.1", 1), mapped = addr("::ffff:127.0.0.1", 1);
  RelayAddr metadata = addr("169.254.169.254", 80);
  hark_relay_addr_unmap(&mapped);
  g_assert_null(hark_relay_peer_refusal(&loopback, allow, 1));
  g_assert_null(hark_relay_peer_refusal(&mapped, allow, 1));
  g_assert_nonnull(hark_relay_peer_refusal(&metadata, allow, 1));
}

static void
test_cidr(void)
{
  HarkCidr c;
  g_assert_true(hark_cidr_parse("10.0.0.0/8", &c));
  g_assert_cmpuint(c.prefix, ==, 8);
  g_assert_true(hark_cidr_parse("1.2.3.4", &c));
  g_assert_cmpuint(c.prefix, ==, 32);
  g_assert_true(hark_cidr_parse("::/0", &c));
  g_assert_true(hark_cidr_parse("fc00::/7", &c));
  const char *bad[] = { "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/",
                        "10.0.0.0/x", "abc",         "10.0.0.0/8/8",
                        "",           "fc00::/129",  "10.0.0.0/-1" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
    if (hark_cidr_parse(bad[i], &c))
      g_test_fail_printf("'%s' should not parse", bad[i]);
  g_assert_true(hark_cidr_parse("198.18.0.0/15", &c));
  const guint8 in[4] = { 198, 19, 1, 1 }, out[4] = { 198, 20, 0, 0 };
  g_assert_true(hark_cidr_contains(&c, G_SOCKET_FAMILY_IPV4, in));
  g_assert_false(hark_cidr_contains(&c, G_SOCKET_FAMILY_IPV4, out));
}

/* What the overlay mints, the relay takes: the same user, and the key of its password. */
static void
test_credentials(void)
{
  g_autoptr(GBytes) secret = g_bytes_new_static("s3cret", 6);
  gint64 now = 1700000000;
  g_autoptr(HarkTurnCredentials) minted =
    hark_overlay_turn_make("192.0.2.1", 3478, TRUE, secret, "alice", now + 600);
  g_autofree char *user = NULL;
  guint8 key[16], expected[16];
  g_assert_cmpint(hark_relay_credential_read(secret, minted->username, strlen(minted->username),
                                             "hark", now, &user, key),
                  ==, RELAY_CREDENTIAL_OK);
  g_assert_cmpstr(user, ==, "alice");
  hark_stun_long_term_key(minted->username, "hark", minted->password, expected);
  g_assert_cmpmem(key, 16, expected, 16);
  g_autofree char *unused = NULL;
  g_assert_cmpint(hark_relay_credential_read(secret, minted->username, strlen(minted->username),
                                             "hark", now + 600, &unused, key),
                  ==, RELAY_CREDENTIAL_EXPIRED);
  const char *bad[] = { "alice", ":alice", "12a:alice", "123:", "99999999999999999999:a" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
    g_assert_cmpint(
      hark_relay_credential_read(secret, bad[i], strlen(bad[i]), "hark", now, &unused, key), ==,
      RELAY_CREDENTIAL_MALFORMED);
  g_assert_null(unused);
}

static void
test_nonce(void)
{
  guint8 key[RELAY_NONCE_KEY_SIZE] = { 7 };
  RelayAddr client = addr("192.0.2.1", 1000), other = addr("192.0.2.1", 1001);
  gint64 now = 1700000000;
  g_autofree char *nonce = hark_relay_nonce_make(key, &client, now);
  gsize length = strlen(nonce);
  g_assert_true(hark_relay_nonce_check(key, &client, nonce, length, now + 599));
  g_assert_false(hark_relay_nonce_check(key, &client, nonce, length, now + 600));
  g_assert_false(hark_relay_nonce_check(key, &other, nonce, length, now));
  g_assert_false(hark_relay_nonce_check(key, &client, nonce, length - 1, now));
  nonce[length - 1] = nonce[length - 1] == '0' ? '1' : '0';
  g_assert_false(hark_relay_nonce_check(key, &client, nonce, length, now));
}

/* Made once (0600, 64 hex digits), then read as it is; refused once others may read it. */
static void
test_secret_file(void)
{
  g_autofree char *dir = g_dir_make_tmp("hark-relay-secret-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) first = hark_relay_secret_load(dir, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(first), ==, 64);
  g_autofree char *path = g_build_filename(dir, "relay-secret", NULL);
  struct stat st;
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
  g_autoptr(GBytes) again = hark_relay_secret_load(dir, &error);
  g_assert_no_error(error);
  g_assert_true(g_bytes_equal(first, again));
  g_assert_cmpint(g_chmod(path, 0644), ==, 0);
  g_autoptr(GBytes) refused = hark_relay_secret_load(dir, &error);
  g_assert_null(refused);
  g_assert_nonnull(strstr(error->message, "mode 0644"));
  g_unlink(path);
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 30000);
  hark_test_add_isolated_func("/relay/stun/integrity-rfc5769", test_integrity_vector);
  hark_test_add_isolated_func("/relay/stun/turn-round-trip", test_turn_round_trip);
  hark_test_add_isolated_func("/relay/table/lifetimes", test_table_lifetimes);
  hark_test_add_isolated_func("/relay/table/quota", test_table_quota);
  hark_test_add_isolated_func("/relay/table/lifetime-granted", test_lifetime_granted);
  hark_test_add_isolated_func("/relay/addresses", test_addresses);
  hark_test_add_isolated_func("/relay/bucket", test_bucket);
  hark_test_add_isolated_func("/relay/peer-refusal", test_peer_refusal);
  hark_test_add_isolated_func("/relay/cidr", test_cidr);
  hark_test_add_isolated_func("/relay/credentials", test_credentials);
  hark_test_add_isolated_func("/relay/nonce", test_nonce);
  hark_test_add_isolated_func("/relay/secret-file", test_secret_file);
  return g_test_run();
}
