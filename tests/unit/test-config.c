/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-config.c: the configuration reader: the shipped examples load cleanly, every
 * refusal names file:line and the key, unknown keys become warnings, plugin settings
 * become the right GVariant types, defaults and paths (XDG, "~/", relative). */
#include <glib/gstdio.h>
#include <string.h>

#include <hark/config.h>

static HarkConfig *
load_or_die(const char *text, const char *path)
{
  g_autoptr(GError) error = NULL;
  HarkConfig *config = hark_config_load_from_string(text, path, &error);

  g_assert_no_error(error);
  g_assert_nonnull(config);
  return config;
}

static char *
write_temp_file(const char *dir, const char *name, const char *text)
{
  char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents(path, text, -1, &error);
  g_assert_no_error(error);
  return path;
}

static void
remove_temp_dir(const char *dir, const char *file)
{
  g_autofree char *path = g_build_filename(dir, file, NULL);
  g_assert_cmpint(g_remove(path), ==, 0);
  g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* ---- the shipped examples --------------------------------------------------------- */

static char *
conf_dir(void)
{
  const char *root = g_getenv("HARK_SOURCE_ROOT");
  if (root == NULL) {
    g_test_skip("HARK_SOURCE_ROOT is not set");
    return NULL;
  }
  return g_build_filename(root, "conf", NULL);
}

static void
test_examples_load_cleanly(void)
{
  g_autofree char *dir_path = conf_dir();
  g_autoptr(GError) error = NULL;
  guint count = 0;

  if (dir_path == NULL)
    return;
  g_autoptr(GDir) dir = g_dir_open(dir_path, 0, &error);
  g_assert_no_error(error);

  const char *name;
  while ((name = g_dir_read_name(dir)) != NULL) {
    if (!g_str_has_suffix(name, ".conf"))
      continue;
    g_autofree char *path = g_build_filename(dir_path, name, NULL);
    g_autoptr(HarkConfig) config = hark_config_load(path, &error);
    g_test_message("%s", path);
    g_assert_no_error(error);
    g_assert_nonnull(config);
    for (guint i = 0; i < config->warnings->len; i++)
      g_test_message("warning: %s", (char *)config->warnings->pdata[i]);
    g_assert_cmpuint(config->warnings->len, ==, 0);
    g_assert_cmpstr(config->path, ==, path);
    g_assert_true(g_path_is_absolute(config->state_dir));
    count++;
  }
  g_assert_cmpuint(count, >=, 3);
}

static void
test_example_hark_conf(void)
{
  g_autofree char *dir = conf_dir();
  g_autoptr(GError) error = NULL;

  if (dir == NULL)
    return;
  g_autofree char *path = g_build_filename(dir, "hark.conf", NULL);
  g_autoptr(HarkConfig) config = hark_config_load(path, &error);
  g_assert_no_error(error);

  g_assert_false(config->supernode);
  g_assert_cmpuint(config->bootstrap->len, ==, 3);
  for (guint i = 0; i < 3; i++) {
    const HarkBootstrapConfig *sn = config->bootstrap->pdata[i];
    g_assert_cmpstr(sn->host, ==, "127.0.0.1");
    g_assert_cmpuint(sn->port, ==, 33033 + i);
    g_assert_true(g_strv_contains((const char *const *)sn->transports, "udp"));
  }
  const HarkPluginConfig *cli = hark_config_find_plugin(config, "cli");
  g_assert_nonnull(cli);
  g_assert_true(cli->optional);
  const HarkPluginConfig *ctl = hark_config_find_plugin(config, "ctl");
  g_assert_nonnull(ctl);
  g_autoptr(GVariant) socket =
    g_variant_lookup_value(ctl->settings, "socket", G_VARIANT_TYPE_STRING);
  g_assert_nonnull(socket);
  g_assert_cmpstr(g_variant_get_string(socket, NULL), ==, "ctl.sock");
}

/* ---- syntax and I/O errors -------------------------------------------------------- */

static const char syntax_error_text[] = "node = {\n"
                                        "  name = \"a\";\n"
                                        "  supernode = ;\n" /* line 3 */
                                        "};\n";

static void
test_syntax_error_string(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config = hark_config_load_from_string(syntax_error_text, NULL, &error);

  g_assert_null(config);
  g_assert_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_SYNTAX);
  g_assert_true(g_str_has_prefix(error->message, "<string>:3: "));
  g_assert_cmpuint(strlen(error->message), >, strlen("<string>:3: "));
}

static void
test_syntax_error_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("hark-config-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *path = write_temp_file(dir, "bad.conf", syntax_error_text);
  g_autofree char *prefix = g_strconcat(path, ":3: ", NULL);

  g_autoptr(HarkConfig) config = hark_config_load(path, &error);
  g_assert_null(config);
  g_assert_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_SYNTAX);
  g_assert_true(g_str_has_prefix(error->message, prefix));
  remove_temp_dir(dir, "bad.conf");
}

static void
test_missing_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config = hark_config_load("/nonexistent/hark.conf", &error);

  g_assert_null(config);
  g_assert_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_IO);
  g_assert_true(g_str_has_prefix(error->message, "/nonexistent/hark.conf: "));
}

/* ---- refusals --------------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *text;
  const char *message; /* exact */
} InvalidCase;

static const InvalidCase invalid_cases[] = {
  { "node-name-type",
    "node = {\n"
    "  name = 42;\n"
    "};\n",
    "<string>:2: node.name: expected a string, got an integer" },
  { "node-name-empty", "node = { name = \"\"; };\n",
    "<string>:1: node.name: bad value '': expected a non-empty string" },
  { "supernode-type",
    "node = {\n"
    "  supernode = \"yes\";\n"
    "};\n",
    "<string>:2: node.supernode: expected a boolean, got a string" },
  { "state-dir-other-user", "node = { state_dir = \"~bob/hark\"; };\n",
    "<string>:1: node.state_dir: bad value '~bob/hark': expected '~' or '~/...' ('~user' is not "
    "expanded)" },
  { "section-type",
    "\n"
    "node = 5;\n",
    "<string>:2: node: expected a group, got an integer" },
  { "port-out-of-range",
    "network = {\n"
    "  listen = \"::\";\n"
    "  port = 70000;\n"
    "};\n",
    "<string>:3: network.port: 70000 is out of range 1..65535" },
  { "listen-not-an-address", "network = { listen = \"localhost\"; };\n",
    "<string>:1: network.listen: bad value 'localhost': expected an IPv4 or IPv6 address" },
  { "bootstrap-port-zero",
    "network = {\n"
    "  bootstrap = (\n"
    "    { host = \"sn.example.org\";\n"
    "      port = 0; }\n"
    "  );\n"
    "};\n",
    "<string>:4: network.bootstrap[0].port: 0 is out of range 1..65535" },
  { "bootstrap-missing-port",
    "network = {\n"
    "  bootstrap = (\n"
    "    { host = \"10.0.0.1\"; port = 33033; },\n"
    "    { host = \"10.0.0.2\"; }\n"
    "  );\n"
    "};\n",
    "<string>:4: network.bootstrap[1]: missing required key 'port'" },
  { "bootstrap-bad-transport",
    "network = {\n"
    "  bootstrap = (\n"
    "    { host = \"10.0.0.1\"; port = 33033;\n"
    "      transports = [ \"udp\",\n"
    "                     \"sctp\" ]; }\n"
    "  );\n"
    "};\n",
    "<string>:5: network.bootstrap[0].transports[1]: bad value 'sctp': expected one of udp, tcp, "
    "tls443" },
  { "bootstrap-not-a-group",
    "network = {\n"
    "  bootstrap = ( \"10.0.0.1\" );\n"
    "};\n",
    "<string>:2: network.bootstrap[0]: expected a group, got a string" },
  { "load-not-a-list",
    "plugins = {\n"
    "  load = { name = \"ctl\"; };\n"
    "};\n",
    "<string>:2: plugins.load: expected a list of groups, got a group" },
  { "plugin-bad-name",
    "plugins = {\n"
    "  load = (\n"
    "    { name = \"My Plugin\"; }\n"
    "  );\n"
    "};\n",
    "<string>:3: plugins.load[0].name: bad value 'My Plugin': expected a name of lower-case "
    "letters, digits and '-'" },
  { "plugin-missing-name",
    "plugins = {\n"
    "  load = (\n"
    "    { optional = true; }\n"
    "  );\n"
    "};\n",
    "<string>:3: plugins.load[0]: missing required key 'name'" },
  { "plugin-duplicate",
    "plugins = {\n"
    "  load = (\n"
    "    { name = \"ctl\"; },\n"
    "    { name = \"cli\"; },\n"
    "    { name = \"ctl\"; optional = true; }\n"
    "  );\n"
    "};\n",
    "<string>:5: plugins.load[2].name: duplicate plugin 'ctl' (first at line 3)" },
  { "plugin-rank-out-of-range",
    "plugins = {\n"
    "  load = ( { name = \"ctl\";\n"
    "             rank = -5; } );\n"
    "};\n",
    "<string>:3: plugins.load[0].rank: -5 is out of range 0..1000000" },
  { "plugin-settings-not-a-group",
    "plugins = {\n"
    "  load = ( { name = \"ctl\"; settings = [ 1, 2 ]; } );\n"
    "};\n",
    "<string>:2: plugins.load[0].settings: expected a group, got an array" },
  { "plugin-path-element",
    "plugins = {\n"
    "  path = ( \"/opt/hark\", 7 );\n"
    "};\n",
    "<string>:2: plugins.path[1]: expected a string, got an integer" },
  { "codecs-not-an-array",
    "media = {\n"
    "  codecs = \"opus\";\n"
    "};\n",
    "<string>:2: media.codecs: expected an array of strings, got a string" },
  { "codecs-empty", "media = { codecs = [ ]; };\n",
    "<string>:1: media.codecs: expected at least 1 element(s)" },
  { "source-bad",
    "media = {\n"
    "  source = \"microphone\";\n"
    "};\n",
    "<string>:2: media.source: bad value 'microphone': expected tone, tone:HZ[:LEVEL], "
    "silence, wav:PATH, pulse or pulse:DEVICE" },
  { "source-bad-tone", "media = { source = \"tone:loud\"; };\n",
    "<string>:1: media.source: bad value 'tone:loud': expected tone, tone:HZ[:LEVEL], "
    "silence, wav:PATH, pulse or pulse:DEVICE" },
  { "source-pulse-without-device", "media = { source = \"pulse:\"; };\n",
    "<string>:1: media.source: bad value 'pulse:': expected tone, tone:HZ[:LEVEL], "
    "silence, wav:PATH, pulse or pulse:DEVICE" },
  { "sink-empty-file",
    "media = {\n"
    "  sink = \"file:\";\n"
    "};\n",
    "<string>:2: media.sink: bad value 'file:': expected null, wav:PATH, pulse or pulse:DEVICE" },
  { "sink-source-only", "media = { sink = \"tone\"; };\n",
    "<string>:1: media.sink: bad value 'tone': expected null, wav:PATH, pulse or pulse:DEVICE" },
  { "login-url-type",
    "login = {\n"
    "  url = 8443;\n"
    "  ca = \"ca.pem\";\n"
    "};\n",
    "<string>:2: login.url: expected a string, got an integer" },
  { "login-url-not-https",
    "login = {\n"
    "  ca = \"ca.pem\";\n"
    "  url = \"http://127.0.0.1:8443\";\n"
    "};\n",
    "<string>:3: login.url: bad value 'http://127.0.0.1:8443': expected https://HOST or "
    "https://HOST:PORT" },
  { "login-url-with-path",
    "login = { url = \"https://login.example.org/v1\"; ca = \"ca.pem\"; };\n",
    "<string>:1: login.url: bad value 'https://login.example.org/v1': expected https://HOST or "
    "https://HOST:PORT" },
  { "login-missing-ca",
    "\n"
    "login = { url = \"https://127.0.0.1:8443\"; };\n",
    "<string>:2: login: missing required key 'ca'" },
  { "login-ca-type",
    "login = { url = \"https://127.0.0.1:8443\";\n"
    "          ca = [ \"ca.pem\" ]; };\n",
    "<string>:2: login.ca: expected a string, got an array" },
  { "login-device-too-long",
    "login = { url = \"https://127.0.0.1\"; ca = \"ca.pem\";\n"
    "  device = \"d1234567890123456789012345678901234567890123456789012345678901234\"; };\n",
    "<string>:2: login.device: bad value "
    "'d1234567890123456789012345678901234567890123456789012345678901234': expected a device "
    "name of 1 to 64 characters" },
  { "login-renew-margin-type",
    "login = {\n"
    "  url = \"https://127.0.0.1:8443\";\n"
    "  ca = \"ca.pem\";\n"
    "  renew_margin = \"1h\";\n"
    "};\n",
    "<string>:4: login.renew_margin: expected an integer, got a string" },
  { "login-renew-margin-range",
    "login = { url = \"https://127.0.0.1:8443\"; ca = \"ca.pem\"; renew_margin = 5; };\n",
    "<string>:1: login.renew_margin: 5 is out of range 60..2592000" },
  { "login-not-a-group", "login = \"https://127.0.0.1:8443\";\n",
    "<string>:1: login: expected a group, got a string" },
  { "turn-server-host-name",
    "supernode = { turn_server = \"turn.example.org:3478\"; turn_secret_file = \"s\"; };\n",
    "<string>:1: supernode.turn_server: bad value 'turn.example.org:3478': expected IP:PORT or "
    "[IPv6]:PORT (a literal address, a port of 1-65535)" },
  { "turn-server-no-port", "supernode = { turn_server = \"192.0.2.5\"; };\n",
    "<string>:1: supernode.turn_server: bad value '192.0.2.5': expected IP:PORT or "
    "[IPv6]:PORT (a literal address, a port of 1-65535)" },
  { "turn-server-port-zero", "supernode = { turn_server = \"192.0.2.5:0\"; };\n",
    "<string>:1: supernode.turn_server: bad value '192.0.2.5:0': expected IP:PORT or "
    "[IPv6]:PORT (a literal address, a port of 1-65535)" },
  { "turn-ipv6-without-brackets", "supernode = { turn_server = \"2001:db8::5:3478\"; };\n",
    "<string>:1: supernode.turn_server: bad value '2001:db8::5:3478': expected IP:PORT or "
    "[IPv6]:PORT (a literal address, a port of 1-65535)" },
  { "turn-server-without-secret", "supernode = { turn_server = \"192.0.2.5:3478\"; };\n",
    "<string>: supernode.turn_server and supernode.turn_secret_file go together: one is set, "
    "the other is not" },
  { "turn-lifetime-range",
    "supernode = { turn_server = \"192.0.2.5:3478\"; turn_secret_file = \"s\";\n"
    "  turn_lifetime = 10; };\n",
    "<string>:2: supernode.turn_lifetime: 10 is out of range 600..604800" },
  { "relay-allow-host-bits", "supernode = { relay_allow = [ \"10.0.0.1/8\" ]; };\n",
    "<string>:1: supernode.relay_allow[0]: bad value '10.0.0.1/8': expected ADDRESS/BITS (a "
    "literal address, no bits set past the prefix)" },
  { "relay-ports-reversed", "supernode = { relay_min_port = 50000; relay_max_port = 40000; };\n",
    "<string>: supernode.relay_min_port (50000) is above supernode.relay_max_port (40000)" },
  { "relay-lifetime-range", "supernode = { relay_lifetime = 10; };\n",
    "<string>:1: supernode.relay_lifetime: 10 is out of range 60..604800" },
  { "jitter-reversed", "media = { jitter_min_ms = 300; jitter_max_ms = 100; };\n",
    "<string>: media.jitter_min_ms (300) is above media.jitter_max_ms (100)" },
  { "jitter-range", "media = { jitter_max_ms = 5000; };\n",
    "<string>:1: media.jitter_max_ms: 5000 is out of range 10..2000" },
  { "calls-ring-timeout-range", "calls = { ring_timeout = 2; };\n",
    "<string>:1: calls.ring_timeout: 2 is out of range 5..600" },
  { "calls-max-range", "calls = { max = 0; };\n",
    "<string>:1: calls.max: 0 is out of range 1..64" },
  { "conference-invite-value", "conference = { invite = \"anyone\"; };\n",
    "<string>:1: conference.invite: bad value 'anyone': expected one of host, members, ask" },
};

/* calls.*: as given, and the defaults (45 s of ringing, 4 calls). */
static void
test_calls_values(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config =
    hark_config_load_from_string("calls = { ring_timeout = 20; max = 1; };\n", NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpint(config->call_ring_timeout, ==, 20);
  g_assert_cmpint(config->call_max, ==, 1);
  g_autoptr(HarkConfig) defaults = hark_config_new_default();
  g_assert_cmpint(defaults->call_ring_timeout, ==, 45);
  g_assert_cmpint(defaults->call_max, ==, 4);
}

/* conference.invite and dials_per_minute: as given, and the defaults (members may
 * invite; 30 calls a minute, the SN's lookups). */
static void
test_conference_values(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config =
    hark_config_load_from_string("conference = { invite = \"ask\"; dials_per_minute = 90; };\n",
                                 NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(config->conf_invite, ==, "ask");
  g_assert_cmpint(config->conf_dials_per_minute, ==, 90);
  g_autoptr(HarkConfig) defaults = hark_config_new_default();
  g_assert_cmpstr(defaults->conf_invite, ==, "members");
  g_assert_cmpint(defaults->conf_dials_per_minute, ==, 30);
}

/* supernode.relay*: as given, and the defaults (on, 3478, 10 minutes, the limits). */
static void
test_relay_values(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config = hark_config_load_from_string(
    "supernode = { relay = false; relay_port = 3479; relay_allow = [ \"198.18.0.0/15\", "
    "\"fc00::/7\" ];\n  relay_max_allocations_per_user = 2; relay_bandwidth = 1000000; };\n",
    NULL, &error);
  g_assert_no_error(error);
  g_assert_false(config->sn_relay);
  g_assert_cmpint(config->sn_relay_port, ==, 3479);
  g_assert_cmpuint(g_strv_length(config->sn_relay_allow), ==, 2);
  g_assert_cmpstr(config->sn_relay_allow[1], ==, "fc00::/7");
  g_assert_cmpint(config->sn_relay_max_allocations_per_user, ==, 2);
  g_assert_cmpint(config->sn_relay_bandwidth, ==, 1000000);
  g_autoptr(HarkConfig) defaults = hark_config_new_default();
  g_assert_true(defaults->sn_relay);
  g_assert_cmpint(defaults->sn_relay_port, ==, 3478);
  g_assert_cmpint(defaults->sn_relay_tls_port, ==, 5349);
  g_assert_cmpint(defaults->sn_relay_min_port, ==, 49152);
  g_assert_cmpint(defaults->sn_relay_max_port, ==, 65535);
  g_assert_cmpint(defaults->sn_relay_lifetime, ==, 600);
  g_assert_cmpint(defaults->sn_relay_max_allocations, ==, 1000);
  g_assert_cmpint(defaults->sn_relay_max_allocations_per_user, ==, 10);
  g_assert_cmpint(defaults->sn_relay_bandwidth, ==, 0);
  g_assert_cmpint(defaults->sn_relay_allocation_bandwidth, ==, 262144);
  g_assert_cmpuint(g_strv_length(defaults->sn_relay_allow), ==, 0);
}

/* supernode.turn_*: the address as given, IPv6 in brackets, the secret file's path
 * resolved like login.ca's, and the defaults (TCP too, 24 h). */
static void
test_turn_values(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config = hark_config_load_from_string(
    "supernode = { turn_server = \"[2001:db8::5]:3478\"; turn_secret_file = \"turn.secret\"; };\n",
    "/etc/hark/sn.conf", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(config->sn_turn_server, ==, "[2001:db8::5]:3478");
  g_assert_cmpstr(config->sn_turn_secret_file, ==, "/etc/hark/turn.secret");
  g_assert_true(config->sn_turn_tcp);
  g_assert_cmpint(config->sn_turn_lifetime, ==, 86400);
  g_autofree char *host = NULL;
  guint16 port = 0;
  g_assert_true(hark_config_parse_ip_port(config->sn_turn_server, &host, &port));
  g_assert_cmpstr(host, ==, "2001:db8::5");
  g_assert_cmpuint(port, ==, 3478);

  g_autoptr(HarkConfig) none = hark_config_new_default();
  g_assert_null(none->sn_turn_server);
  g_assert_null(none->sn_turn_secret_file);
}

static void
test_invalid(gconstpointer data)
{
  const InvalidCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config = hark_config_load_from_string(c->text, NULL, &error);

  g_assert_null(config);
  g_assert_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_INVALID);
  g_assert_cmpstr(error->message, ==, c->message);
}

static void
test_invalid_names_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkConfig) config =
    hark_config_load_from_string("network = {\n port = 0;\n};\n", "/etc/hark/x.conf", &error);

  g_assert_null(config);
  g_assert_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_INVALID);
  g_assert_cmpstr(error->message, ==,
                  "/etc/hark/x.conf:2: network.port: 0 is out of range 1..65535");
}

/* ---- unknown keys ----------------------------------------------------------------- */

static void
test_unknown_keys_warn(void)
{
  static const char text[] =
    "colour = \"blue\";\n" /* 1 */
    "node = {\n" /* 2 */
    "  name = \"n\";\n" /* 3 */
    "  nickname = \"x\";\n" /* 4 */
    "};\n" /* 5 */
    "plugins = {\n" /* 6 */
    "  load = ( { name = \"ctl\";\n" /* 7 */
    "             priority = 3;\n" /* 8 */
    "             settings = { anything = 1; nested = { deeper = true; }; }; } );\n"
    "};\n" /* 10 */
    "network = { bootstrap = ( { host = \"10.0.0.1\"; port = 1;\n"
    "                            weight = 2; } ); };\n"; /* 12 */
  g_autoptr(HarkConfig) config = load_or_die(text, "w.conf");
  const char *expected[] = {
    "w.conf:1: unknown key 'colour' at top level (ignored)",
    "w.conf:4: unknown key 'nickname' in 'node' (ignored)",
    "w.conf:8: unknown key 'priority' in 'plugins.load[0]' (ignored)",
    "w.conf:12: unknown key 'weight' in 'network.bootstrap[0]' (ignored)",
  };

  g_assert_cmpuint(config->warnings->len, ==, G_N_ELEMENTS(expected));
  for (guint i = 0; i < G_N_ELEMENTS(expected); i++)
    g_assert_cmpstr(config->warnings->pdata[i], ==, expected[i]);
  /* The known keys around them were read. */
  g_assert_cmpstr(config->node_name, ==, "n");
  g_assert_nonnull(hark_config_find_plugin(config, "ctl"));
  g_assert_cmpuint(config->bootstrap->len, ==, 1);
}

/* ---- values ----------------------------------------------------------------------- */

static void
test_values_read(void)
{
  static const char text[] =
    "node = { name = \"alice-laptop\"; state_dir = \"/var/lib/hark\"; supernode = false; };\n"
    "plugins = {\n"
    "  path = [ \"/opt/hark/plugins\" ];\n"
    "  load = ( { name = \"udp\"; rank = 300; },\n"
    "           { name = \"cli\"; optional = true; } );\n"
    "};\n"
    "network = {\n"
    "  listen = \"::\";\n"
    "  port = 40000;\n"
    "  bootstrap = ( { host = \"sn.example.org\"; port = 443; transports = [ \"tls443\" ]; },\n"
    "                { host = \"10.0.0.1\"; port = 33033; } );\n"
    "};\n"
    "media = { codecs = [ \"g722\", \"opus\" ]; source = \"tone:440:0.5\"; sink = "
    "\"pulse:speakers\"; };\n";
  g_autoptr(HarkConfig) config = load_or_die(text, NULL);

  g_assert_null(config->path);
  g_assert_cmpstr(config->node_name, ==, "alice-laptop");
  g_assert_cmpstr(config->state_dir, ==, "/var/lib/hark");
  g_assert_false(config->supernode);
  g_assert_cmpstrv(config->plugin_path, ((const char *[]){ "/opt/hark/plugins", NULL }));

  g_assert_cmpuint(config->plugins->len, ==, 2);
  const HarkPluginConfig *udp = config->plugins->pdata[0];
  const HarkPluginConfig *cli = config->plugins->pdata[1];
  g_assert_cmpstr(udp->name, ==, "udp");
  g_assert_cmpint(udp->rank, ==, 300);
  g_assert_false(udp->optional);
  g_assert_cmpstr(cli->name, ==, "cli");
  g_assert_cmpint(cli->rank, ==, -1);
  g_assert_true(cli->optional);
  g_assert_true(g_variant_is_of_type(cli->settings, G_VARIANT_TYPE_VARDICT));
  g_assert_cmpuint(g_variant_n_children(cli->settings), ==, 0);
  g_assert_true(hark_config_find_plugin(config, "cli") == cli);
  g_assert_null(hark_config_find_plugin(config, "web"));

  g_assert_cmpstr(config->listen_address, ==, "::");
  g_assert_cmpuint(config->port, ==, 40000);
  g_assert_cmpuint(config->bootstrap->len, ==, 2);
  const HarkBootstrapConfig *first = config->bootstrap->pdata[0];
  const HarkBootstrapConfig *second = config->bootstrap->pdata[1];
  g_assert_cmpstr(first->host, ==, "sn.example.org");
  g_assert_cmpuint(first->port, ==, 443);
  g_assert_cmpstrv(first->transports, ((const char *[]){ "tls443", NULL }));
  g_assert_cmpstrv(second->transports, ((const char *[]){ "udp", "tcp", NULL }));

  g_assert_cmpstrv(config->codecs, ((const char *[]){ "g722", "opus", NULL }));
  g_assert_cmpstr(config->audio_source, ==, "tone:440:0.5");
  g_assert_cmpstr(config->audio_sink, ==, "pulse:speakers");
  g_assert_cmpuint(config->warnings->len, ==, 0);
}

static void
assert_setting_type(GVariant *settings, const char *key, const char *type)
{
  g_autoptr(GVariant) value = g_variant_lookup_value(settings, key, NULL);
  g_assert_nonnull(value);
  g_assert_cmpstr(g_variant_get_type_string(value), ==, type);
}

static void
test_settings_types(void)
{
  static const char text[] =
    "plugins = { load = ( { name = \"p\"; settings = {\n"
    "  s = \"text\"; i = 42; big = 5000000000L; f = 0.5; b = true;\n"
    "  strings = [ \"a\", \"b\" ]; ints = [ 1, 2, 3 ]; floats = [ 1.5 ]; bools = [ false ];\n"
    "  empty = [ ];\n"
    "  group = { port = 8443; inner = { deep = \"yes\"; }; };\n"
    "  mixed = ( 1, \"two\", { three = 3; } );\n"
    "}; } ); };\n";
  g_autoptr(HarkConfig) config = load_or_die(text, NULL);
  GVariant *settings = hark_config_find_plugin(config, "p")->settings;

  g_assert_true(g_variant_is_of_type(settings, G_VARIANT_TYPE_VARDICT));
  g_assert_false(g_variant_is_floating(settings));
  assert_setting_type(settings, "s", "s");
  assert_setting_type(settings, "i", "x");
  assert_setting_type(settings, "big", "x");
  assert_setting_type(settings, "f", "d");
  assert_setting_type(settings, "b", "b");
  assert_setting_type(settings, "strings", "as");
  assert_setting_type(settings, "ints", "ax");
  assert_setting_type(settings, "floats", "ad");
  assert_setting_type(settings, "bools", "ab");
  assert_setting_type(settings, "empty", "as");
  assert_setting_type(settings, "group", "a{sv}");
  assert_setting_type(settings, "mixed", "av");

  gint64 big = 0;
  g_assert_true(g_variant_lookup(settings, "big", "x", &big));
  g_assert_cmpint(big, ==, G_GINT64_CONSTANT(5000000000));
  gint64 i = 0;
  g_assert_true(g_variant_lookup(settings, "i", "x", &i));
  g_assert_cmpint(i, ==, 42);

  g_autoptr(GVariant) group = g_variant_lookup_value(settings, "group", G_VARIANT_TYPE_VARDICT);
  gint64 port = 0;
  g_assert_true(g_variant_lookup(group, "port", "x", &port));
  g_assert_cmpint(port, ==, 8443);
  g_autoptr(GVariant) inner = g_variant_lookup_value(group, "inner", G_VARIANT_TYPE_VARDICT);
  const char *deep = NULL;
  g_assert_true(g_variant_lookup(inner, "deep", "&s", &deep));
  g_assert_cmpstr(deep, ==, "yes");

  g_autoptr(GVariant) mixed = g_variant_lookup_value(settings, "mixed", G_VARIANT_TYPE("av"));
  g_assert_cmpuint(g_variant_n_children(mixed), ==, 3);
  g_autoptr(GVariant) third = g_variant_get_child_value(mixed, 2);
  g_autoptr(GVariant) third_value = g_variant_get_variant(third);
  g_assert_cmpstr(g_variant_get_type_string(third_value), ==, "a{sv}");
}

/* The login section: the CA path is relative to the configuration file like state_dir,
 * the device is called after the node unless it is named. */
static void
test_login_values(void)
{
  static const char text[] = "node = { name = \"alice-laptop\"; };\n"
                             "login = {\n"
                             "  url = \"https://login.example.org:8443\";\n"
                             "  ca = \"certs/login-ca.pem\";\n"
                             "  renew_margin = 600;\n"
                             "};\n";
  g_autoptr(HarkConfig) config = load_or_die(text, "/etc/hark/hark.conf");

  g_assert_cmpstr(config->login_url, ==, "https://login.example.org:8443");
  g_assert_cmpstr(config->login_ca, ==, "/etc/hark/certs/login-ca.pem");
  g_assert_cmpstr(config->login_device, ==, "alice-laptop");
  g_assert_cmpint(config->login_renew_margin, ==, 600);
  g_assert_cmpuint(config->warnings->len, ==, 0);

  static const char named[] =
    "login = { url = \"https://127.0.0.1/\"; ca = \"~/ca.pem\"; device = \"Küche 2\"; };\n";
  g_autoptr(HarkConfig) device = load_or_die(named, "/etc/hark/hark.conf");
  g_autofree char *home_ca = g_build_filename(g_get_home_dir(), "ca.pem", NULL);
  g_assert_cmpstr(device->login_ca, ==, home_ca);
  g_assert_cmpstr(device->login_device, ==, "Küche 2");
  g_assert_cmpint(device->login_renew_margin, ==, 3600);
}

/* ---- defaults and paths ----------------------------------------------------------- */

static void
test_defaults(void)
{
  g_autoptr(HarkConfig) config = hark_config_new_default();
  g_autofree char *state_dir = hark_config_default_state_dir();

  g_assert_null(config->path);
  g_assert_cmpstr(config->node_name, ==, g_get_host_name());
  g_assert_cmpstr(config->state_dir, ==, state_dir);
  g_assert_true(config->supernode);
  g_assert_nonnull(config->plugin_path);
  g_assert_null(config->plugin_path[0]);
  g_assert_cmpuint(config->plugins->len, ==, 0);
  g_assert_cmpstr(config->listen_address, ==, "0.0.0.0");
  g_assert_cmpuint(config->port, ==, 33033);
  g_assert_cmpuint(config->bootstrap->len, ==, 0);
  g_assert_cmpstrv(config->codecs, ((const char *[]){ "opus", "g711", NULL }));
  g_assert_cmpstr(config->audio_source, ==, "pulse");
  g_assert_cmpstr(config->audio_sink, ==, "pulse");
  g_assert_cmpuint(config->warnings->len, ==, 0);
  /* No login section: the node does not log in. */
  g_assert_null(config->login_url);
  g_assert_null(config->login_ca);
  g_assert_cmpstr(config->login_device, ==, g_get_host_name());
  g_assert_cmpint(config->login_renew_margin, ==, 3600);

  /* An empty file is the defaults. */
  g_autoptr(HarkConfig) empty = load_or_die("", NULL);
  g_assert_cmpstr(empty->node_name, ==, g_get_host_name());
  g_assert_cmpstr(empty->state_dir, ==, state_dir);
  g_assert_cmpuint(empty->port, ==, 33033);
}

/* G_TEST_OPTION_ISOLATE_DIRS gives every test its own user directories and HOME. */
static void
test_xdg_paths_isolated(void)
{
  g_autofree char *path = hark_config_default_path();
  g_autofree char *expected_path =
    g_build_filename(g_get_user_config_dir(), "hark", "hark.conf", NULL);
  g_assert_cmpstr(path, ==, expected_path);

  g_autofree char *state_dir = hark_config_default_state_dir();
  g_autofree char *expected_state = g_build_filename(g_get_user_state_dir(), "hark", NULL);
  g_assert_cmpstr(state_dir, ==, expected_state);
}

/* GLib reads XDG_* once, on first use, and the isolation above replaces them: so the
 * environment is checked in a fresh copy of this program (see main). */
#define PRINT_PATHS_ARG "--print-default-paths"
static const char *self_path;

static void
print_default_paths(void)
{
  g_autofree char *path = hark_config_default_path();
  g_autofree char *state_dir = hark_config_default_state_dir();
  g_print("%s\n%s\n", path, state_dir);
}

static void
test_xdg_paths_environment(void)
{
  const char *argv[] = { self_path, PRINT_PATHS_ARG, NULL };
  g_auto(GStrv) envp = g_get_environ();
  g_autofree char *output = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  envp = g_environ_setenv(envp, "XDG_CONFIG_HOME", "/xdg/config", TRUE);
  envp = g_environ_setenv(envp, "XDG_STATE_HOME", "/xdg/state", TRUE);
  g_spawn_sync(NULL, (char **)argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &output, NULL, &status,
               &error);
  g_assert_no_error(error);
  g_spawn_check_wait_status(status, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(output, ==, "/xdg/config/hark/hark.conf\n/xdg/state/hark\n");

  /* Without XDG_STATE_HOME: ~/.local/state. */
  g_autofree char *default_output = NULL;
  envp = g_environ_unsetenv(envp, "XDG_STATE_HOME");
  envp = g_environ_setenv(envp, "HOME", "/home/someone", TRUE);
  g_spawn_sync(NULL, (char **)argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &default_output, NULL,
               &status, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(default_output, ==,
                  "/xdg/config/hark/hark.conf\n/home/someone/.local/state/hark\n");
}

static char *
state_dir_of(const char *value, const char *path)
{
  g_autofree char *text = g_strdup_printf("node = { state_dir = \"%s\"; };\n", value);
  g_autoptr(HarkConfig) config = load_or_die(text, path);
  return g_strdup(config->state_dir);
}

static void
test_state_dir_home(void)
{
  g_autofree char *tilde_slash = state_dir_of("~/state/hark", "/etc/hark/hark.conf");
  g_autofree char *expected = g_build_filename(g_get_home_dir(), "state", "hark", NULL);
  g_assert_cmpstr(tilde_slash, ==, expected);

  g_autofree char *tilde = state_dir_of("~", NULL);
  g_assert_cmpstr(tilde, ==, g_get_home_dir());
}

static void
test_state_dir_relative(void)
{
  g_autofree char *beside = state_dir_of("state", "/etc/hark/hark.conf");
  g_assert_cmpstr(beside, ==, "/etc/hark/state");

  g_autofree char *up = state_dir_of("../var/./hark", "/etc/hark/hark.conf");
  g_assert_cmpstr(up, ==, "/etc/var/hark");

  g_autofree char *absolute = state_dir_of("/srv/hark", "/etc/hark/hark.conf");
  g_assert_cmpstr(absolute, ==, "/srv/hark");

  /* Text without a path: relative to the current directory. */
  g_autofree char *cwd = g_get_current_dir();
  g_autofree char *expected = g_build_filename(cwd, "state", NULL);
  g_autofree char *no_path = state_dir_of("state", NULL);
  g_assert_cmpstr(no_path, ==, expected);
}

static void
test_state_dir_relative_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("hark-config-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *path = write_temp_file(dir, "node.conf",
                                          "node = { state_dir = \"state\"; };\n"
                                          "plugins = { path = [ \"plugins\", \"~/p\" ]; };\n");

  g_autoptr(HarkConfig) config = hark_config_load(path, &error);
  g_assert_no_error(error);
  g_autofree char *expected = g_build_filename(dir, "state", NULL);
  g_assert_cmpstr(config->state_dir, ==, expected);
  g_autofree char *plugins = g_build_filename(dir, "plugins", NULL);
  g_autofree char *home_plugins = g_build_filename(g_get_home_dir(), "p", NULL);
  g_assert_cmpstrv(config->plugin_path, ((const char *[]){ plugins, home_plugins, NULL }));
  remove_temp_dir(dir, "node.conf");
}

/* Settings that name files (the ctl socket, say) resolve the same way everywhere. */
static void
test_state_path(void)
{
  g_autofree char *relative = hark_config_state_path("/var/lib/hark", "ctl.sock");
  g_autofree char *absolute = hark_config_state_path("/var/lib/hark", "/run/hark.sock");
  g_autofree char *home = hark_config_state_path("/var/lib/hark", "~/hark.sock");
  g_autofree char *expected_home = g_build_filename(g_get_home_dir(), "hark.sock", NULL);
  g_assert_cmpstr(relative, ==, "/var/lib/hark/ctl.sock");
  g_assert_cmpstr(absolute, ==, "/run/hark.sock");
  g_assert_cmpstr(home, ==, expected_home);
}

int
main(int argc, char **argv)
{
  if (argc == 2 && g_str_equal(argv[1], PRINT_PATHS_ARG)) {
    print_default_paths();
    return 0;
  }
  self_path = argv[0];
  g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func("/config/examples/load-cleanly", test_examples_load_cleanly);
  g_test_add_func("/config/examples/hark-conf", test_example_hark_conf);
  g_test_add_func("/config/syntax-error/string", test_syntax_error_string);
  g_test_add_func("/config/syntax-error/file", test_syntax_error_file);
  g_test_add_func("/config/io-error/missing-file", test_missing_file);
  for (gsize i = 0; i < G_N_ELEMENTS(invalid_cases); i++) {
    g_autofree char *name = g_strconcat("/config/invalid/", invalid_cases[i].name, NULL);
    g_test_add_data_func(name, &invalid_cases[i], test_invalid);
  }
  g_test_add_func("/config/invalid/names-file", test_invalid_names_file);
  g_test_add_func("/config/unknown-keys/warn", test_unknown_keys_warn);
  g_test_add_func("/config/values/read", test_values_read);
  g_test_add_func("/config/values/settings-types", test_settings_types);
  g_test_add_func("/config/values/login", test_login_values);
  g_test_add_func("/config/values/turn", test_turn_values);
  g_test_add_func("/config/values/relay", test_relay_values);
  g_test_add_func("/config/values/calls", test_calls_values);
  g_test_add_func("/config/values/conference", test_conference_values);
  g_test_add_func("/config/defaults/values", test_defaults);
  g_test_add_func("/config/defaults/xdg-paths-isolated", test_xdg_paths_isolated);
  g_test_add_func("/config/defaults/xdg-paths-environment", test_xdg_paths_environment);
  g_test_add_func("/config/state-dir/home", test_state_dir_home);
  g_test_add_func("/config/state-dir/relative", test_state_dir_relative);
  g_test_add_func("/config/state-dir/relative-to-file", test_state_dir_relative_file);
  g_test_add_func("/config/state-path", test_state_path);

  return g_test_run();
}
