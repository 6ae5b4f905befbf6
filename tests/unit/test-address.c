/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-address.c: which addresses from other nodes are taken (routable IP literals,
 * loopback only when allowed, private ranges yes), what one source is counted under,
 * and peer text made safe for a log line. */
#include <hark/address.h>

#include "test-isolate.h"

static void
test_routable(void)
{
  static const char *const good[] = { "192.0.2.1",   "10.1.2.3",   "172.16.0.1",
                                      "192.168.1.1", "100.64.0.1", "2001:db8::1",
                                      "fd00::1",     "8.8.8.8",    NULL };
  static const struct {
    const char *host;
    const char *why;
  } bad[] = {
    { "localhost", "not an IP address" },
    { "0", "not an IP address" },
    { "-", "not an IP address" },
    { "", "not an IP address" },
    { "sn.example", "not an IP address" },
    { "1.2.3.4.5", "not an IP address" },
    { "0.0.0.0", "unspecified" },
    { "0.1.2.3", "unspecified" },
    { "::", "unspecified" },
    { "127.0.0.1", "loopback" },
    { "127.9.9.9", "loopback" },
    { "::1", "loopback" },
    { "::ffff:127.0.0.1", "loopback" },
    { "224.0.0.1", "multicast" },
    { "239.255.255.250", "multicast" },
    { "ff02::1", "multicast" },
    { "255.255.255.255", "broadcast" },
    { "169.254.1.1", "link-local" },
    { "fe80::1", "link-local" },
    { "240.0.0.1", "reserved" },
  };
  for (guint i = 0; good[i] != NULL; i++)
    g_assert_null(hark_address_refusal(good[i], FALSE));
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
    g_assert_cmpstr(hark_address_refusal(bad[i].host, FALSE), ==, bad[i].why);
  g_assert_cmpstr(hark_address_refusal(NULL, TRUE), ==, "not an IP address");
  g_assert_true(hark_address_is_routable("127.0.0.1", TRUE));
  g_assert_true(hark_address_is_routable("::1", TRUE));
  g_assert_false(hark_address_is_routable("0.0.0.0", TRUE));
}

static void
test_source_key(void)
{
  static const char *const cases[][2] = {
    { "192.0.2.1", "192.0.2.1" },
    { "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
    { "2001:db8:1:2::99", "2001:db8:1:2::/64" },
    { "::ffff:192.0.2.1", "192.0.2.1" },
    { "not-an-address", "not-an-address" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *key = hark_address_source_key(cases[i][0]);
    g_assert_cmpstr(key, ==, cases[i][1]);
  }
}

static void
test_escape(void)
{
  static const char *const cases[][2] = {
    { "alice", "alice" },
    { "a\nb", "a\\x0ab" },
    { "x\r\n12:00:00.000 hark message: forged", "x\\x0d\\x0a12:00:00.000 hark message: forged" },
    { "\xe2\x80\xae"
      "evil",
      "\\u{202e}evil" },
    { "caf\xc3\xa9", "caf\xc3\xa9" },
    { "bad\xff", "bad\\xff" },
    { "back\\slash", "back\\\\slash" },
    { "\xc2\x85", "\\u{0085}" },
    { "\t\x7f", "\\x09\\x7f" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *escaped = hark_text_escape(cases[i][0], -1, 100);
    g_assert_cmpstr(escaped, ==, cases[i][1]);
  }
  g_autofree char *cut = hark_text_escape("0123456789", -1, 4);
  g_assert_cmpstr(cut, ==, "0123...");
  g_autofree char *with_nul = hark_text_escape("a\0b", 3, 10);
  g_assert_cmpstr(with_nul, ==, "a\\x00b");
  g_autofree char *null = hark_text_escape(NULL, -1, 10);
  g_assert_cmpstr(null, ==, "(null)");
}

static void
test_clean(void)
{
  g_assert_true(hark_text_is_clean("alice-phone"));
  g_assert_true(hark_text_is_clean("Zoë's phone 电话"));
  g_assert_false(hark_text_is_clean("a\nb"));
  g_assert_false(hark_text_is_clean("\xe2\x80\xae"
                                    "enohp"));
  g_assert_false(hark_text_is_clean("\xe2\x81\xa6"
                                    "x"));
  g_assert_false(hark_text_is_clean("bad\xff"));
  g_assert_false(hark_text_is_clean("\x7f"));
  g_assert_false(hark_text_is_clean(NULL));
}

/* Parsed addresses (where STUN answers for a partner may go, where an SN checks a
 * claim) are judged the same, IPv4-mapped ones as the IPv4 they carry. */
static void
test_refusal_inet(void)
{
  static const char *const never[] = {
    "0.0.0.0",        "0.1.2.3",   "::",      "169.254.1.2",     "fe80::1",
    "224.0.0.1",      "239.1.2.3", "ff02::1", "255.255.255.255", "::ffff:169.254.1.2",
    "::ffff:0.0.0.0", NULL
  };
  static const char *const loopback[] = { "127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1",
                                          NULL };
  static const char *const fine[] = { "192.0.2.1", "10.1.2.3", "2001:db8::1", "::ffff:192.0.2.1",
                                      NULL };
  for (guint i = 0; never[i] != NULL; i++) {
    g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(never[i]);
    g_assert_nonnull(hark_address_refusal_inet(ip, FALSE));
    g_assert_nonnull(hark_address_refusal_inet(ip, TRUE));
  }
  for (guint i = 0; loopback[i] != NULL; i++) {
    g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(loopback[i]);
    g_assert_cmpstr(hark_address_refusal_inet(ip, FALSE), ==, "loopback");
    g_assert_null(hark_address_refusal_inet(ip, TRUE));
  }
  for (guint i = 0; fine[i] != NULL; i++) {
    g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(fine[i]);
    g_assert_null(hark_address_refusal_inet(ip, FALSE));
  }
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
  hark_test_add_isolated_func("/address/routable", test_routable);
  hark_test_add_isolated_func("/address/refusal-inet", test_refusal_inet);
  hark_test_add_isolated_func("/address/source-key", test_source_key);
  hark_test_add_isolated_func("/address/escape", test_escape);
  hark_test_add_isolated_func("/address/clean", test_clean);
  return g_test_run();
}
