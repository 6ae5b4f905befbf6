/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-settings.c: a plugin's settings read with their types: absent gives the
 * fallback, a wrong type or range is an error naming the key, unknown keys are counted. */
#include <hark/hark.h>

static GVariant *
parse(const char *text)
{
  g_autoptr(GError) error = NULL;
  GVariant *v = g_variant_parse(G_VARIANT_TYPE("a{sv}"), text, NULL, NULL, &error);
  g_assert_no_error(error);
  return g_variant_ref_sink(v);
}

static void
test_present_and_absent(void)
{
  g_autoptr(GVariant) s = parse("{'name': <'ctl.sock'>, 'port': <int64 8080>, 'on': <true>}");
  g_autofree char *name = NULL, *missing = NULL;
  gint64 port = 0, size = 0;
  gboolean on = FALSE, off = TRUE;
  g_assert_true(hark_settings_get_string(s, "name", "x", &name, NULL));
  g_assert_cmpstr(name, ==, "ctl.sock");
  g_assert_true(hark_settings_get_string(s, "other", "fallback", &missing, NULL));
  g_assert_cmpstr(missing, ==, "fallback");
  g_assert_true(hark_settings_get_int(s, "port", 0, 0, 65535, &port, NULL));
  g_assert_cmpint(port, ==, 8080);
  g_assert_true(hark_settings_get_int(s, "size", 16, 1, 100, &size, NULL));
  g_assert_cmpint(size, ==, 16);
  g_assert_true(hark_settings_get_bool(s, "on", FALSE, &on, NULL));
  g_assert_true(on);
  g_assert_true(hark_settings_get_bool(s, "off", FALSE, &off, NULL));
  g_assert_false(off);
}

static void
test_wrong_type_and_range(void)
{
  g_autoptr(GVariant) s =
    parse("{'name': <int64 5>, 'port': <'80'>, 'big': <int64 70000>, 'on': <'yes'>}");
  g_autoptr(GError) error = NULL;
  char *name = NULL;
  gint64 number = -1;
  gboolean flag = FALSE;
  g_assert_false(hark_settings_get_string(s, "name", "x", &name, &error));
  g_assert_null(name);
  g_assert_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_TYPE);
  g_assert_cmpstr(error->message, ==, "setting 'name' must be a string, not 5");
  g_clear_error(&error);
  g_assert_false(hark_settings_get_int(s, "port", 0, 0, 65535, &number, &error));
  g_assert_cmpstr(error->message, ==, "setting 'port' must be an integer, not '80'");
  g_clear_error(&error);
  g_assert_false(hark_settings_get_int(s, "big", 0, 0, 65535, &number, &error));
  g_assert_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE);
  g_assert_cmpstr(error->message, ==, "setting 'big' must be between 0 and 65535, not 70000");
  g_assert_cmpint(number, ==, -1);
  g_clear_error(&error);
  g_assert_false(hark_settings_get_bool(s, "on", FALSE, &flag, &error));
  g_assert_cmpstr(error->message, ==, "setting 'on' must be true or false, not 'yes'");
}

static void
test_unknown_keys(void)
{
  g_autoptr(GVariant) s = parse("{'socket': <'a'>, 'sokcet': <'b'>}");
  const char *const known[] = { "socket", "tcp_port", NULL };
  g_test_expect_message(
    "hark", G_LOG_LEVEL_WARNING,
    "plugin 'ctl': unknown setting 'sokcet' ignored (it knows: socket, tcp_port)");
  g_assert_cmpuint(hark_settings_warn_unknown(s, "ctl", known), ==, 1);
  g_test_assert_expected_messages();
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/settings/present-and-absent", test_present_and_absent);
  g_test_add_func("/settings/wrong-type-and-range", test_wrong_type_and_range);
  g_test_add_func("/settings/unknown-keys", test_unknown_keys);
  return g_test_run();
}
