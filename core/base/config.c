/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config.c: reads a node's configuration file (libconfig syntax) into a HarkConfig.
 *
 * What the core knows is described by the static schema tables below (one line per
 * key); a single generic reader walks the file against them, so a new key or section
 * is one more line, not one more validator. Every error names file:line and the full
 * key path ("network.bootstrap[1].port"). Keys the schema does not know are kept as
 * warnings and otherwise ignored; the plugins' "settings" groups are free-form and
 * are handed to the plugins as a{sv}. */
#include "hark/config.h"
#include "cidr.h"
#include "hark/media-spec.h"

#include <errno.h>
#include <libconfig.h>
#include <stddef.h>
#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(hark-config-error-quark, hark_config_error)
/* clang-format on */

#define DEFAULT_PORT 33033
#define DEFAULT_LISTEN "0.0.0.0"
#define DEFAULT_RENEW_MARGIN 3600
#define DEVICE_NAME_MAX 64 /* characters, the login server's limit (docs/protocol.md) */

char *
hark_config_state_path(const char *state_dir, const char *path)
{
  if (g_str_has_prefix(path, "~/"))
    return g_build_filename(g_get_home_dir(), path + 2, NULL);
  if (g_path_is_absolute(path))
    return g_strdup(path);
  return g_build_filename(state_dir, path, NULL);
}

/* ---- schema ----------------------------------------------------------------------- */

typedef enum {
  KEY_STRING, /* char*, checked by key->check */
  KEY_BOOL, /* gboolean */
  KEY_INT, /* int within [min, max] */
  KEY_PORT, /* guint16 within [1, 65535] */
  KEY_STRV, /* char**, an array or list of strings (at least min), each checked */
  KEY_SETTINGS, /* GVariant* a{sv}: a free-form group handed to a plugin */
  KEY_SECTION, /* a group of known keys, stored into the same struct */
  KEY_GROUP_LIST, /* a list of groups, each a new element appended to a GPtrArray */
} KeyType;

typedef struct Loader Loader;
typedef struct ConfigKey ConfigKey;

/* Returns NULL when value is fine, else what was expected. */
typedef const char *(*ValueCheck)(const char *value);

typedef struct {
  gpointer (*element_new)(void); /* a new element holding its defaults */
  /* Checks a read element against the ones before it; NULL when there is nothing to check. */
  gboolean (*element_check)(Loader *loader, const config_setting_t *list, guint index,
                            GPtrArray *elements, const char *where);
} ConfigList;

struct ConfigKey {
  const char *name;
  KeyType type;
  gsize offset; /* of the field in the target struct */
  gboolean required;
  gint64 min, max; /* KEY_INT: the range; KEY_STRV: min is the fewest elements */
  ValueCheck check; /* KEY_STRING, and each element of a KEY_STRV */
  const ConfigKey *members; /* KEY_SECTION, KEY_GROUP_LIST: keys inside, ends with NULL */
  const ConfigList *list; /* KEY_GROUP_LIST */
};

static const char *check_not_empty(const char *value);
static const char *check_name(const char *value);
static const char *check_path(const char *value);
static const char *check_ip_address(const char *value);
static const char *check_host(const char *value);
static const char *check_transport(const char *value);
static const char *check_source(const char *value);
static const char *check_sink(const char *value);
static const char *check_https_url(const char *value);
static const char *check_device(const char *value);
static const char *check_ip_port(const char *value);
static const char *check_cidr(const char *value);
static const char *check_invite(const char *value);

static gpointer plugin_config_new(void);
static gpointer bootstrap_config_new(void);
static gboolean plugin_config_check_unique(Loader *loader, const config_setting_t *list,
                                           guint index, GPtrArray *elements, const char *where);

static const ConfigList plugin_list = { plugin_config_new, plugin_config_check_unique };
static const ConfigList bootstrap_list = { bootstrap_config_new, NULL };

static const ConfigKey node_keys[] = {
  { "name", KEY_STRING, offsetof(HarkConfig, node_name), .check = check_not_empty },
  { "state_dir", KEY_STRING, offsetof(HarkConfig, state_dir), .check = check_path },
  { "supernode", KEY_BOOL, offsetof(HarkConfig, supernode) },
  { "test_clock", KEY_BOOL, offsetof(HarkConfig, test_clock) },
  { NULL },
};

static const ConfigKey plugin_keys[] = {
  { "name", KEY_STRING, offsetof(HarkPluginConfig, name), .required = TRUE, .check = check_name },
  { "optional", KEY_BOOL, offsetof(HarkPluginConfig, optional) },
  { "rank", KEY_INT, offsetof(HarkPluginConfig, rank), .min = 0, .max = 1000000 },
  { "settings", KEY_SETTINGS, offsetof(HarkPluginConfig, settings) },
  { NULL },
};

static const ConfigKey plugins_keys[] = {
  { "path", KEY_STRV, offsetof(HarkConfig, plugin_path), .check = check_path },
  { "load", KEY_GROUP_LIST, offsetof(HarkConfig, plugins), .members = plugin_keys,
    .list = &plugin_list },
  { NULL },
};

static const ConfigKey bootstrap_keys[] = {
  { "host", KEY_STRING, offsetof(HarkBootstrapConfig, host), .required = TRUE,
    .check = check_host },
  { "port", KEY_PORT, offsetof(HarkBootstrapConfig, port), .required = TRUE },
  { "transports", KEY_STRV, offsetof(HarkBootstrapConfig, transports), .min = 1,
    .check = check_transport },
  { NULL },
};

static const ConfigKey network_keys[] = {
  { "listen", KEY_STRING, offsetof(HarkConfig, listen_address), .check = check_ip_address },
  { "port", KEY_PORT, offsetof(HarkConfig, port) },
  { "bootstrap", KEY_GROUP_LIST, offsetof(HarkConfig, bootstrap), .members = bootstrap_keys,
    .list = &bootstrap_list },
  { "public_address", KEY_STRING, offsetof(HarkConfig, public_address), .check = check_ip_address },
  { "public_address_alt", KEY_STRING, offsetof(HarkConfig, public_address_alt),
    .check = check_ip_address },
  { "nat_probe_interval", KEY_INT, offsetof(HarkConfig, nat_probe_interval), .min = 60,
    .max = 7 * 24 * 3600 },
  { "keepalive", KEY_INT, offsetof(HarkConfig, keepalive), .min = 1, .max = 3600 },
  { "keepalive_timeout", KEY_INT, offsetof(HarkConfig, keepalive_timeout), .min = 1, .max = 600 },
  { "keepalive_floor", KEY_INT, offsetof(HarkConfig, keepalive_floor), .min = 1, .max = 3600 },
  { "join_race_delay_ms", KEY_INT, offsetof(HarkConfig, join_race_delay_ms), .min = 0,
    .max = 10000 },
  { "join_fallback_delay_ms", KEY_INT, offsetof(HarkConfig, join_fallback_delay_ms), .min = 0,
    .max = 60000 },
  { "handshake_timeout_ms", KEY_INT, offsetof(HarkConfig, handshake_timeout_ms), .min = 100,
    .max = 120000 },
  { "host_cache_max_age", KEY_INT, offsetof(HarkConfig, host_cache_max_age), .min = 60,
    .max = 365 * 24 * 3600 },
  { "allow_loopback", KEY_BOOL, offsetof(HarkConfig, allow_loopback) },
  { NULL },
};

/* When a node may serve as a super node (node.supernode must allow it too). */
static const ConfigKey supernode_keys[] = {
  { "min_uptime", KEY_INT, offsetof(HarkConfig, sn_min_uptime), .min = 0, .max = 7 * 24 * 3600 },
  { "max_load", KEY_INT, offsetof(HarkConfig, sn_max_load), .min = 1, .max = 10000 },
  { "upload_kbps", KEY_INT, offsetof(HarkConfig, sn_upload_kbps), .min = 0, .max = 100000000 },
  { "min_upload_kbps", KEY_INT, offsetof(HarkConfig, sn_min_upload_kbps), .min = 0,
    .max = 100000000 },
  { "max_clients", KEY_INT, offsetof(HarkConfig, sn_max_clients), .min = 1, .max = 1000000 },
  { "max_logging_in", KEY_INT, offsetof(HarkConfig, sn_max_logging_in), .min = 1, .max = 1000000 },
  { "links", KEY_INT, offsetof(HarkConfig, sn_links), .min = 0, .max = 64 },
  { "stun_alt_port", KEY_INT, offsetof(HarkConfig, sn_stun_alt_port), .min = 0, .max = 65535 },
  /* A TURN server it vouches for (docs/protocol.md, "Calls: TURN credentials"). */
  { "turn_server", KEY_STRING, offsetof(HarkConfig, sn_turn_server), .check = check_ip_port },
  { "turn_secret_file", KEY_STRING, offsetof(HarkConfig, sn_turn_secret_file),
    .check = check_path },
  { "turn_tcp", KEY_BOOL, offsetof(HarkConfig, sn_turn_tcp) },
  { "turn_lifetime", KEY_INT, offsetof(HarkConfig, sn_turn_lifetime), .min = 600,
    .max = 7 * 24 * 3600 },
  /* Its own TURN server (docs/protocol.md, "TURN"). */
  { "relay", KEY_BOOL, offsetof(HarkConfig, sn_relay) },
  { "relay_port", KEY_INT, offsetof(HarkConfig, sn_relay_port), .min = 1, .max = 65535 },
  { "relay_tls_port", KEY_INT, offsetof(HarkConfig, sn_relay_tls_port), .min = 0, .max = 65535 },
  { "relay_min_port", KEY_INT, offsetof(HarkConfig, sn_relay_min_port), .min = 1, .max = 65535 },
  { "relay_max_port", KEY_INT, offsetof(HarkConfig, sn_relay_max_port), .min = 1, .max = 65535 },
  { "relay_lifetime", KEY_INT, offsetof(HarkConfig, sn_relay_lifetime), .min = 60,
    .max = 7 * 24 * 3600 },
  { "relay_max_allocations", KEY_INT, offsetof(HarkConfig, sn_relay_max_allocations), .min = 0,
    .max = 1000000 },
  { "relay_max_allocations_per_user", KEY_INT,
    offsetof(HarkConfig, sn_relay_max_allocations_per_user), .min = 0, .max = 1000000 },
  { "relay_bandwidth", KEY_INT, offsetof(HarkConfig, sn_relay_bandwidth), .min = 0,
    .max = G_MAXINT },
  { "relay_allocation_bandwidth", KEY_INT, offsetof(HarkConfig, sn_relay_allocation_bandwidth),
    .min = 0, .max = G_MAXINT },
  { "relay_allow", KEY_STRV, offsetof(HarkConfig, sn_relay_allow), .check = check_cidr },
  { NULL },
};

static const ConfigKey media_keys[] = {
  { "codecs", KEY_STRV, offsetof(HarkConfig, codecs), .min = 1, .check = check_name },
  { "source", KEY_STRING, offsetof(HarkConfig, audio_source), .check = check_source },
  { "sink", KEY_STRING, offsetof(HarkConfig, audio_sink), .check = check_sink },
  { "jitter_min_ms", KEY_INT, offsetof(HarkConfig, jitter_min_ms), .min = HARK_CONFIG_JITTER_MIN,
    .max = HARK_CONFIG_JITTER_MAX },
  { "jitter_max_ms", KEY_INT, offsetof(HarkConfig, jitter_max_ms), .min = HARK_CONFIG_JITTER_MIN,
    .max = HARK_CONFIG_JITTER_MAX },
  { NULL },
};

/* A login section without a server or without the CA to pin is a mistake, not a node
 * that does not log in: both are required once the section is there. The margin is at
 * least a minute, and a certificate is renewed halfway through its validity at the
 * latest (login.c), so a margin longer than the server's lifetime is harmless. */
static const ConfigKey login_keys[] = {
  { "url", KEY_STRING, offsetof(HarkConfig, login_url), .required = TRUE,
    .check = check_https_url },
  { "ca", KEY_STRING, offsetof(HarkConfig, login_ca), .required = TRUE, .check = check_path },
  { "device", KEY_STRING, offsetof(HarkConfig, login_device), .check = check_device },
  { "renew_margin", KEY_INT, offsetof(HarkConfig, login_renew_margin), .min = 60,
    .max = 30 * 24 * 3600 },
  { NULL },
};

/* The directory (docs/architecture.md, "Directory"): the search strategies in the order
 * they are tried, how often a device refreshes its presence record, and what an SN takes. */
static const ConfigKey directory_keys[] = {
  { "search", KEY_STRV, offsetof(HarkConfig, dir_search), .min = 1, .check = check_name },
  { "refresh_interval", KEY_INT, offsetof(HarkConfig, dir_refresh_interval), .min = 5,
    .max = 24 * 3600 },
  { "lookups_per_minute", KEY_INT, offsetof(HarkConfig, dir_lookups_per_minute), .min = 1,
    .max = 100000 },
  { "max_records", KEY_INT, offsetof(HarkConfig, dir_max_records), .min = 1, .max = 10000000 },
  { NULL },
};

/* Instant messages (docs/architecture.md, "Messages"): what this device tells others. */
static const ConfigKey messages_keys[] = {
  { "read_receipts", KEY_BOOL, offsetof(HarkConfig, msg_read_receipts) },
  { "typing", KEY_BOOL, offsetof(HarkConfig, msg_typing) },
  { NULL },
};

/* Calls (docs/architecture.md, "Calls"): how long an incoming call rings, and how many
 * calls (ringing, on hold or active) a device has at once before it answers busy. */
static const ConfigKey calls_keys[] = {
  { "ring_timeout", KEY_INT, offsetof(HarkConfig, call_ring_timeout), .min = 5, .max = 600 },
  { "max", KEY_INT, offsetof(HarkConfig, call_max), .min = 1, .max = 64 },
  { NULL },
};

/* Conferences (docs/architecture.md, "Conferences"): whether this node hosts them (an
 * opt-out, like node.supernode's), the rate its mixer runs at, whose invites it
 * follows, and how fast it calls members (each call is a lookup at its SN). */
static const ConfigKey conference_keys[] = {
  { "host", KEY_BOOL, offsetof(HarkConfig, conf_host) },
  { "rate", KEY_INT, offsetof(HarkConfig, conf_rate), .min = 8000, .max = 48000 },
  { "invite", KEY_STRING, offsetof(HarkConfig, conf_invite), .check = check_invite },
  { "dials_per_minute", KEY_INT, offsetof(HarkConfig, conf_dials_per_minute), .min = 1,
    .max = 6000 },
  { NULL },
};

static const ConfigKey root_keys[] = {
  { "node", KEY_SECTION, 0, .members = node_keys },
  { "plugins", KEY_SECTION, 0, .members = plugins_keys },
  { "network", KEY_SECTION, 0, .members = network_keys },
  { "supernode", KEY_SECTION, 0, .members = supernode_keys },
  { "media", KEY_SECTION, 0, .members = media_keys },
  { "login", KEY_SECTION, 0, .members = login_keys },
  { "directory", KEY_SECTION, 0, .members = directory_keys },
  { "messages", KEY_SECTION, 0, .members = messages_keys },
  { "calls", KEY_SECTION, 0, .members = calls_keys },
  { "conference", KEY_SECTION, 0, .members = conference_keys },
  { NULL },
};

/* What each key type expects, for "expected ..., got ..." messages. */
static const char *const key_type_expected[] = {
  [KEY_STRING] = "a string",          [KEY_BOOL] = "a boolean",
  [KEY_INT] = "an integer",           [KEY_PORT] = "an integer",
  [KEY_STRV] = "an array of strings", [KEY_SETTINGS] = "a group",
  [KEY_SECTION] = "a group",          [KEY_GROUP_LIST] = "a list of groups",
};

/* ---- value checks ----------------------------------------------------------------- */

static const char *
check_not_empty(const char *value)
{
  return value[0] == '\0' ? "expected a non-empty string" : NULL;
}

static const char *
check_name(const char *value)
{
  if (value[0] == '\0')
    return "expected a name of lower-case letters, digits and '-'";
  for (const char *p = value; *p != '\0'; p++)
    if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-')
      return "expected a name of lower-case letters, digits and '-'";
  return NULL;
}

static const char *
check_path(const char *value)
{
  if (value[0] == '\0')
    return "expected a non-empty path";
  if (value[0] == '~' && value[1] != '\0' && value[1] != '/')
    return "expected '~' or '~/...' ('~user' is not expanded)";
  return NULL;
}

static const char *
check_ip_address(const char *value)
{
  return g_hostname_is_ip_address(value) ? NULL : "expected an IPv4 or IPv6 address";
}

static const char *
check_host(const char *value)
{
  return hark_config_is_host(value) ? NULL : "expected a host name or an IP address";
}

gboolean
hark_config_is_host(const char *text)
{
  if (g_hostname_is_ip_address(text))
    return TRUE;
  if (text[0] == '\0' || strlen(text) > 253)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_')
      return FALSE;
  return TRUE;
}

gboolean
hark_config_is_transport(const char *name)
{
  static const char *const transports[] = { "udp", "tcp", "tls443", NULL };
  return g_strv_contains(transports, name);
}

gboolean
hark_config_parse_ip_port(const char *text, char **host, guint16 *port)
{
  g_return_val_if_fail(text != NULL, FALSE);
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text)
    return FALSE;
  g_autofree char *address = NULL;
  if (text[0] == '[') {
    if (colon[-1] != ']')
      return FALSE;
    address = g_strndup(text + 1, (gsize)(colon - text - 2));
    if (strchr(address, ':') == NULL) /* brackets are for IPv6 only */
      return FALSE;
  } else {
    address = g_strndup(text, (gsize)(colon - text));
    if (strchr(address, ':') != NULL) /* an IPv6 address needs its brackets */
      return FALSE;
  }
  guint64 number = 0;
  if (!g_hostname_is_ip_address(address) ||
      !g_ascii_string_to_unsigned(colon + 1, 10, 1, G_MAXUINT16, &number, NULL))
    return FALSE;
  if (host != NULL)
    *host = g_steal_pointer(&address);
  if (port != NULL)
    *port = (guint16)number;
  return TRUE;
}

static const char *
check_ip_port(const char *value)
{
  return hark_config_parse_ip_port(value, NULL, NULL)
           ? NULL
           : "expected IP:PORT or [IPv6]:PORT (a literal address, a port of 1-65535)";
}

static const char *
check_cidr(const char *value)
{
  HarkCidr cidr;
  return hark_cidr_parse(value, &cidr)
           ? NULL
           : "expected ADDRESS/BITS (a literal address, no bits set past the prefix)";
}

static const char *
check_transport(const char *value)
{
  return hark_config_is_transport(value) ? NULL : "expected one of udp, tcp, tls443";
}

/* conference.invite: who may have the host call someone in. */
static const char *
check_invite(const char *value)
{
  return g_str_equal(value, "host") || g_str_equal(value, "members") || g_str_equal(value, "ask")
           ? NULL
           : "expected one of host, members, ask";
}

/* The media engine's own checks, so the file and the sessions agree. */
static const char *
check_source(const char *value)
{
  return hark_media_source_check(value, NULL)
           ? NULL
           : "expected tone, tone:HZ[:LEVEL], silence, wav:PATH, pulse or pulse:DEVICE";
}

static const char *
check_sink(const char *value)
{
  return hark_media_sink_check(value, NULL) ? NULL
                                            : "expected null, wav:PATH, pulse or pulse:DEVICE";
}

/* The login server's base: https only (the password travels in it), a host, an optional
 * port, and nothing after it (the API's paths are fixed, see docs/protocol.md). */
static const char *
check_https_url(const char *value)
{
  static const char *const expected = "expected https://HOST or https://HOST:PORT";
  g_autoptr(GUri) uri = g_uri_parse(value, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_strcmp0(g_uri_get_scheme(uri), "https") != 0)
    return expected;
  const char *host = g_uri_get_host(uri);
  const char *path = g_uri_get_path(uri);
  if (host == NULL || *host == '\0' || g_uri_get_userinfo(uri) != NULL ||
      g_uri_get_query(uri) != NULL || g_uri_get_fragment(uri) != NULL ||
      (*path != '\0' && !g_str_equal(path, "/")))
    return expected;
  return NULL;
}

static const char *
check_device(const char *value)
{
  static const char *const expected = "expected a device name of 1 to 64 characters";
  if (value[0] == '\0' || !g_utf8_validate(value, -1, NULL) ||
      g_utf8_strlen(value, -1) > DEVICE_NAME_MAX)
    return expected;
  for (const char *p = value; *p != '\0'; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return expected;
  return NULL;
}

/* ---- elements of the lists -------------------------------------------------------- */

static GVariant *
empty_settings(void)
{
  return g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
}

static gpointer
plugin_config_new(void)
{
  HarkPluginConfig *plugin = g_new0(HarkPluginConfig, 1);
  plugin->rank = -1;
  plugin->settings = empty_settings();
  return plugin;
}

static void
plugin_config_free(gpointer data)
{
  HarkPluginConfig *plugin = data;
  g_free(plugin->name);
  g_variant_unref(plugin->settings);
  g_free(plugin);
}

/* A bootstrap SN without "transports" is tried over UDP and TCP on its port. */
static gpointer
bootstrap_config_new(void)
{
  HarkBootstrapConfig *bootstrap = g_new0(HarkBootstrapConfig, 1);
  const char *const transports[] = { "udp", "tcp", NULL };
  bootstrap->transports = g_strdupv((char **)transports);
  return bootstrap;
}

static void
bootstrap_config_free(gpointer data)
{
  HarkBootstrapConfig *bootstrap = data;
  g_free(bootstrap->host);
  g_strfreev(bootstrap->transports);
  g_free(bootstrap);
}

/* ---- plugin settings -> GVariant -------------------------------------------------- */

static GVariant *settings_value(const config_setting_t *setting);

/* A group becomes a{sv}. */
static GVariant *
settings_group(const config_setting_t *group)
{
  GVariantBuilder builder;
  g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
  for (int i = 0; i < config_setting_length(group); i++) {
    const config_setting_t *member = config_setting_get_elem(group, i);
    g_variant_builder_add(&builder, "{sv}", config_setting_name(member), settings_value(member));
  }
  return g_variant_builder_end(&builder);
}

/* An array of scalars becomes "as", "ax", "ad" or "ab" ("as" when empty); a list
 * (whose elements may differ) becomes "av". */
static GVariant *
settings_sequence(const config_setting_t *sequence)
{
  int n = config_setting_length(sequence);
  GVariant **children = g_new(GVariant *, MAX(n, 1));
  const GVariantType *type = G_VARIANT_TYPE_STRING;
  gboolean uniform = config_setting_is_array(sequence);

  for (int i = 0; i < n; i++) {
    children[i] = settings_value(config_setting_get_elem(sequence, i));
    if (i == 0)
      type = g_variant_get_type(children[0]);
    else if (!g_variant_type_equal(type, g_variant_get_type(children[i])))
      uniform = FALSE;
  }
  if (!uniform) {
    type = G_VARIANT_TYPE_VARIANT;
    for (int i = 0; i < n; i++)
      children[i] = g_variant_new_variant(children[i]);
  }
  GVariant *array = g_variant_new_array(type, children, n);
  g_free(children);
  return array;
}

/* Returns a floating reference. */
static GVariant *
settings_value(const config_setting_t *setting)
{
  switch (config_setting_type(setting)) {
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    return g_variant_new_int64(config_setting_get_int64(setting));
  case CONFIG_TYPE_FLOAT:
    return g_variant_new_double(config_setting_get_float(setting));
  case CONFIG_TYPE_BOOL:
    return g_variant_new_boolean(config_setting_get_bool(setting));
  case CONFIG_TYPE_STRING:
    return g_variant_new_string(config_setting_get_string(setting));
  case CONFIG_TYPE_GROUP:
    return settings_group(setting);
  case CONFIG_TYPE_ARRAY:
  case CONFIG_TYPE_LIST:
    return settings_sequence(setting);
  default:
    g_assert_not_reached();
  }
}

/* ---- the reader ------------------------------------------------------------------- */

struct Loader {
  HarkConfig *config;
  const char *file; /* for messages when libconfig knows no file (text) */
  GError **error;
};

static const char *
loader_file(Loader *loader, const config_setting_t *setting)
{
  const char *file = config_setting_source_file(setting);
  return file != NULL ? file : loader->file;
}

static gboolean G_GNUC_PRINTF(4, 5) loader_fail(Loader *loader, const config_setting_t *setting,
                                                const char *where, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(loader->error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_INVALID, "%s:%u: %s: %s",
              loader_file(loader, setting), config_setting_source_line(setting), where, message);
  return FALSE;
}

static void
loader_warn_unknown(Loader *loader, const config_setting_t *setting, const char *where)
{
  const char *name = config_setting_name(setting);
  char *warning;
  if (where == NULL)
    warning =
      g_strdup_printf("%s:%u: unknown key '%s' at top level (ignored)",
                      loader_file(loader, setting), config_setting_source_line(setting), name);
  else
    warning =
      g_strdup_printf("%s:%u: unknown key '%s' in '%s' (ignored)", loader_file(loader, setting),
                      config_setting_source_line(setting), name, where);
  g_ptr_array_add(loader->config->warnings, warning);
}

static const char *
setting_type_name(const config_setting_t *setting)
{
  switch (config_setting_type(setting)) {
  case CONFIG_TYPE_GROUP:
    return "a group";
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    return "an integer";
  case CONFIG_TYPE_FLOAT:
    return "a float";
  case CONFIG_TYPE_STRING:
    return "a string";
  case CONFIG_TYPE_BOOL:
    return "a boolean";
  case CONFIG_TYPE_ARRAY:
    return "an array";
  case CONFIG_TYPE_LIST:
    return "a list";
  default:
    return "nothing";
  }
}

static gboolean
loader_fail_type(Loader *loader, const config_setting_t *setting, const char *where,
                 const char *expected)
{
  return loader_fail(loader, setting, where, "expected %s, got %s", expected,
                     setting_type_name(setting));
}

static gboolean
loader_check_string(Loader *loader, const config_setting_t *setting, const char *where,
                    ValueCheck check)
{
  const char *value = config_setting_get_string(setting);
  const char *expected = check != NULL ? check(value) : NULL;
  if (expected != NULL)
    return loader_fail(loader, setting, where, "bad value '%s': %s", value, expected);
  return TRUE;
}

static gboolean
loader_read_integer(Loader *loader, const config_setting_t *setting, const char *where, gint64 min,
                    gint64 max, gint64 *value)
{
  int type = config_setting_type(setting);
  if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
    return loader_fail_type(loader, setting, where, "an integer");
  *value = config_setting_get_int64(setting);
  if (*value < min || *value > max)
    return loader_fail(loader, setting, where,
                       "%" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT
                       "..%" G_GINT64_FORMAT,
                       *value, min, max);
  return TRUE;
}

static gboolean
loader_read_strv(Loader *loader, const config_setting_t *setting, const char *where,
                 const ConfigKey *key, char ***field)
{
  int n = config_setting_length(setting);
  if (n < key->min)
    return loader_fail(loader, setting, where, "expected at least %" G_GINT64_FORMAT " element(s)",
                       key->min);
  for (int i = 0; i < n; i++) {
    const config_setting_t *element = config_setting_get_elem(setting, i);
    g_autofree char *element_where = g_strdup_printf("%s[%d]", where, i);
    if (config_setting_type(element) != CONFIG_TYPE_STRING)
      return loader_fail_type(loader, element, element_where, "a string");
    if (!loader_check_string(loader, element, element_where, key->check))
      return FALSE;
  }
  char **strv = g_new0(char *, n + 1);
  for (int i = 0; i < n; i++)
    strv[i] = g_strdup(config_setting_get_string_elem(setting, i));
  g_strfreev(*field);
  *field = strv;
  return TRUE;
}

static gboolean loader_read_group(Loader *loader, const config_setting_t *group, const char *where,
                                  const ConfigKey *keys, gpointer target);

static gboolean
loader_read_group_list(Loader *loader, const config_setting_t *setting, const char *where,
                       const ConfigKey *key, GPtrArray *elements)
{
  for (int i = 0; i < config_setting_length(setting); i++) {
    const config_setting_t *element = config_setting_get_elem(setting, i);
    g_autofree char *element_where = g_strdup_printf("%s[%d]", where, i);
    if (!config_setting_is_group(element))
      return loader_fail_type(loader, element, element_where, "a group");
    gpointer target = key->list->element_new();
    g_ptr_array_add(elements, target);
    if (!loader_read_group(loader, element, element_where, key->members, target))
      return FALSE;
    if (key->list->element_check != NULL &&
        !key->list->element_check(loader, setting, (guint)i, elements, element_where))
      return FALSE;
  }
  return TRUE;
}

/* Is the setting of the kind the key expects? (Values are checked afterwards.) */
static gboolean
key_accepts(const ConfigKey *key, const config_setting_t *setting)
{
  int type = config_setting_type(setting);
  switch (key->type) {
  case KEY_STRING:
    return type == CONFIG_TYPE_STRING;
  case KEY_BOOL:
    return type == CONFIG_TYPE_BOOL;
  case KEY_INT:
  case KEY_PORT:
    return TRUE; /* loader_read_integer says what is wrong */
  case KEY_STRV:
    return type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST;
  case KEY_SETTINGS:
  case KEY_SECTION:
    return type == CONFIG_TYPE_GROUP;
  /* "[]" is an empty array, which libconfig cannot turn into a list; accept it. */
  case KEY_GROUP_LIST:
    return type == CONFIG_TYPE_LIST ||
           (type == CONFIG_TYPE_ARRAY && config_setting_length(setting) == 0);
  }
  return FALSE;
}

static gboolean
loader_read_value(Loader *loader, const config_setting_t *setting, const char *where,
                  const ConfigKey *key, gpointer target)
{
  gpointer field = (char *)target + key->offset;
  gint64 number;

  if (!key_accepts(key, setting))
    return loader_fail_type(loader, setting, where, key_type_expected[key->type]);

  switch (key->type) {
  case KEY_STRING:
    if (!loader_check_string(loader, setting, where, key->check))
      return FALSE;
    g_free(*(char **)field);
    *(char **)field = g_strdup(config_setting_get_string(setting));
    return TRUE;
  case KEY_BOOL:
    *(gboolean *)field = config_setting_get_bool(setting) ? TRUE : FALSE;
    return TRUE;
  case KEY_INT:
    if (!loader_read_integer(loader, setting, where, key->min, key->max, &number))
      return FALSE;
    *(int *)field = (int)number;
    return TRUE;
  case KEY_PORT:
    if (!loader_read_integer(loader, setting, where, 1, G_MAXUINT16, &number))
      return FALSE;
    *(guint16 *)field = (guint16)number;
    return TRUE;
  case KEY_STRV:
    return loader_read_strv(loader, setting, where, key, (char ***)field);
  case KEY_SETTINGS:
    g_variant_unref(*(GVariant **)field);
    *(GVariant **)field = g_variant_ref_sink(settings_group(setting));
    return TRUE;
  case KEY_SECTION:
    return loader_read_group(loader, setting, where, key->members, target);
  case KEY_GROUP_LIST:
    return loader_read_group_list(loader, setting, where, key, *(GPtrArray **)field);
  }
  g_assert_not_reached();
}

static const ConfigKey *
schema_find(const ConfigKey *keys, const char *name)
{
  for (const ConfigKey *key = keys; key->name != NULL; key++)
    if (g_str_equal(key->name, name))
      return key;
  return NULL;
}

/* where is the path of the group ("network.bootstrap[0]"), NULL for the top level. */
static gboolean
loader_read_group(Loader *loader, const config_setting_t *group, const char *where,
                  const ConfigKey *keys, gpointer target)
{
  for (int i = 0; i < config_setting_length(group); i++) {
    const config_setting_t *member = config_setting_get_elem(group, i);
    const ConfigKey *key = schema_find(keys, config_setting_name(member));
    if (key == NULL) {
      loader_warn_unknown(loader, member, where);
      continue;
    }
    g_autofree char *member_where =
      where != NULL ? g_strconcat(where, ".", key->name, NULL) : g_strdup(key->name);
    if (!loader_read_value(loader, member, member_where, key, target))
      return FALSE;
  }
  for (const ConfigKey *key = keys; key->name != NULL; key++)
    if (key->required && config_setting_get_member(group, key->name) == NULL)
      return loader_fail(loader, group, where, "missing required key '%s'", key->name);
  return TRUE;
}

static gboolean
plugin_config_check_unique(Loader *loader, const config_setting_t *list, guint index,
                           GPtrArray *elements, const char *where)
{
  const HarkPluginConfig *plugin = elements->pdata[index];
  for (guint i = 0; i < index; i++) {
    const HarkPluginConfig *earlier = elements->pdata[i];
    if (g_str_equal(earlier->name, plugin->name)) {
      const config_setting_t *first = config_setting_get_elem(list, i);
      const config_setting_t *current = config_setting_get_elem(list, index);
      g_autofree char *name_where = g_strconcat(where, ".name", NULL);
      return loader_fail(loader, config_setting_get_member(current, "name"), name_where,
                         "duplicate plugin '%s' (first at line %u)", plugin->name,
                         config_setting_source_line(config_setting_get_member(first, "name")));
    }
  }
  return TRUE;
}

/* ---- paths ------------------------------------------------------------------------ */

char *
hark_config_default_path(void)
{
  return g_build_filename(g_get_user_config_dir(), "hark", "hark.conf", NULL);
}

char *
hark_config_default_state_dir(void)
{
  return g_build_filename(g_get_user_state_dir(), "hark", NULL);
}

/* state_dir, plugins.path and login.ca: "~" and "~/..." are in the home
 * directory; any other relative path is relative to the directory of the
 * configuration file (the current directory for text without a path), so a
 * configuration and its state can be moved together. The result is absolute. */
static char *
config_resolve_path(const char *value, const char *config_path)
{
  if (g_str_equal(value, "~"))
    return g_strdup(g_get_home_dir());
  if (g_str_has_prefix(value, "~/")) {
    g_autofree char *path = g_build_filename(g_get_home_dir(), value + 2, NULL);
    return g_canonicalize_filename(path, NULL);
  }
  g_autofree char *dir = config_path != NULL ? g_path_get_dirname(config_path) : g_strdup(".");
  g_autofree char *base = g_canonicalize_filename(dir, NULL);
  return g_canonicalize_filename(value, base);
}

/* ---- public ----------------------------------------------------------------------- */

HarkConfig *
hark_config_new_default(void)
{
  static const char *const codecs[] = { "opus", "g711", NULL };
  static const char *const search[] = { "gi", "loginsrv", NULL };
  HarkConfig *config = g_new0(HarkConfig, 1);

  config->node_name = g_strdup(g_get_host_name());
  config->state_dir = hark_config_default_state_dir();
  config->supernode = TRUE;
  config->plugin_path = g_new0(char *, 1);
  config->plugins = g_ptr_array_new_with_free_func(plugin_config_free);
  config->listen_address = g_strdup(DEFAULT_LISTEN);
  config->port = DEFAULT_PORT;
  config->bootstrap = g_ptr_array_new_with_free_func(bootstrap_config_free);
  config->keepalive = 20;
  config->keepalive_timeout = 8;
  config->keepalive_floor = 10;
  config->join_race_delay_ms = 150;
  config->join_fallback_delay_ms = 1000;
  config->handshake_timeout_ms = 10000;
  config->host_cache_max_age = 7 * 24 * 3600;
  config->sn_min_uptime = 600;
  config->sn_max_load = 70;
  config->sn_upload_kbps = 0;
  config->sn_min_upload_kbps = 512;
  config->sn_max_clients = 1000;
  config->sn_max_logging_in = 64;
  config->sn_links = 3;
  config->sn_turn_tcp = TRUE;
  config->sn_turn_lifetime = 24 * 3600;
  config->sn_relay = TRUE;
  config->sn_relay_port = 3478;
  config->sn_relay_tls_port = 5349;
  config->sn_relay_min_port = 49152;
  config->sn_relay_max_port = 65535;
  config->sn_relay_lifetime = 600;
  config->sn_relay_max_allocations = 1000;
  config->sn_relay_max_allocations_per_user = 10;
  config->sn_relay_bandwidth = 0;
  config->sn_relay_allocation_bandwidth = 256 * 1024;
  config->sn_relay_allow = g_new0(char *, 1);
  config->nat_probe_interval = 1800;
  config->codecs = g_strdupv((char **)codecs);
  config->audio_source = g_strdup("pulse");
  config->audio_sink = g_strdup("pulse");
  config->jitter_min_ms = 10;
  config->jitter_max_ms = 200;
  config->warnings = g_ptr_array_new_with_free_func(g_free);
  config->login_device = g_strdup(config->node_name);
  config->login_renew_margin = DEFAULT_RENEW_MARGIN;
  config->dir_search = g_strdupv((char **)search);
  config->dir_refresh_interval = 600;
  config->dir_lookups_per_minute = 30;
  config->dir_max_records = 100000;
  config->msg_read_receipts = TRUE;
  config->msg_typing = TRUE;
  config->call_ring_timeout = 45;
  config->conf_host = TRUE;
  config->conf_rate = 16000;
  config->conf_invite = g_strdup("members");
  config->conf_dials_per_minute = 30;
  config->call_max = 4;
  return config;
}

/* Reads the parsed tree over the defaults. */
static HarkConfig *
config_from_tree(config_t *tree, const char *path, const char *file, GError **error)
{
  g_autoptr(HarkConfig) config = hark_config_new_default();
  const config_setting_t *root = config_root_setting(tree);
  Loader loader = { config, file, error };
  g_autofree char *state_dir = NULL;

  config->path = g_strdup(path);
  if (!loader_read_group(&loader, root, NULL, root_keys, config))
    return NULL;
  if (config_lookup(tree, "node.state_dir") != NULL) {
    state_dir = config->state_dir;
    config->state_dir = config_resolve_path(state_dir, path);
  }
  for (char **dir = config->plugin_path; *dir != NULL; dir++) {
    g_autofree char *value = *dir;
    *dir = config_resolve_path(value, path);
  }
  if (config->login_ca != NULL) {
    g_autofree char *ca = config->login_ca;
    config->login_ca = config_resolve_path(ca, path);
  }
  if (config->sn_turn_secret_file != NULL) {
    g_autofree char *secret = config->sn_turn_secret_file;
    config->sn_turn_secret_file = config_resolve_path(secret, path);
  }
  if ((config->sn_turn_server == NULL) != (config->sn_turn_secret_file == NULL)) {
    g_set_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_INVALID,
                "%s: supernode.turn_server and supernode.turn_secret_file go together: "
                "one is set, the other is not",
                file);
    return NULL;
  }
  if (config->sn_relay_min_port > config->sn_relay_max_port) {
    g_set_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_INVALID,
                "%s: supernode.relay_min_port (%d) is above supernode.relay_max_port (%d)", file,
                config->sn_relay_min_port, config->sn_relay_max_port);
    return NULL;
  }
  if (config->jitter_min_ms > config->jitter_max_ms) {
    g_set_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_INVALID,
                "%s: media.jitter_min_ms (%d) is above media.jitter_max_ms (%d)", file,
                config->jitter_min_ms, config->jitter_max_ms);
    return NULL;
  }
  /* The device is called after the node unless it has a name of its own. */
  if (config_lookup(tree, "login.device") == NULL) {
    g_free(config->login_device);
    config->login_device = g_strdup(config->node_name);
  }
  return g_steal_pointer(&config);
}

static void
config_set_include_dir_of(config_t *tree, const char *path, char **dir)
{
  if (path == NULL)
    return;
  *dir = g_path_get_dirname(path);
  config_set_include_dir(tree, *dir);
}

static void
config_set_syntax_error(const config_t *tree, const char *file, GError **error)
{
  const char *error_file = config_error_file(tree);
  g_set_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_SYNTAX, "%s:%d: %s",
              error_file != NULL ? error_file : file, config_error_line(tree),
              config_error_text(tree));
}

HarkConfig *
hark_config_load(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  config_t tree;
  g_autofree char *include_dir = NULL;
  HarkConfig *config = NULL;

  config_init(&tree);
  config_set_include_dir_of(&tree, path, &include_dir);
  errno = 0;
  if (config_read_file(&tree, path)) {
    config = config_from_tree(&tree, path, path, error);
  } else if (config_error_type(&tree) == CONFIG_ERR_FILE_IO) {
    int saved_errno = errno;
    g_set_error(error, HARK_CONFIG_ERROR, HARK_CONFIG_ERROR_IO, "%s: cannot read: %s", path,
                saved_errno != 0 ? g_strerror(saved_errno) : config_error_text(&tree));
  } else {
    config_set_syntax_error(&tree, path, error);
  }
  config_destroy(&tree);
  return config;
}

HarkConfig *
hark_config_load_from_string(const char *text, const char *path, GError **error)
{
  g_return_val_if_fail(text != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  config_t tree;
  const char *file = path != NULL ? path : "<string>";
  g_autofree char *include_dir = NULL;
  HarkConfig *config = NULL;

  config_init(&tree);
  config_set_include_dir_of(&tree, path, &include_dir);
  if (config_read_string(&tree, text))
    config = config_from_tree(&tree, path, file, error);
  else
    config_set_syntax_error(&tree, file, error);
  config_destroy(&tree);
  return config;
}

const HarkPluginConfig *
hark_config_find_plugin(const HarkConfig *config, const char *name)
{
  g_return_val_if_fail(config != NULL, NULL);
  g_return_val_if_fail(name != NULL, NULL);

  for (guint i = 0; i < config->plugins->len; i++) {
    const HarkPluginConfig *plugin = config->plugins->pdata[i];
    if (g_str_equal(plugin->name, name))
      return plugin;
  }
  return NULL;
}

void
hark_config_free(HarkConfig *config)
{
  if (config == NULL)
    return;
  g_free(config->path);
  g_free(config->node_name);
  g_free(config->state_dir);
  g_strfreev(config->plugin_path);
  g_ptr_array_unref(config->plugins);
  g_free(config->listen_address);
  g_ptr_array_unref(config->bootstrap);
  g_free(config->public_address);
  g_free(config->public_address_alt);
  g_strfreev(config->codecs);
  g_strfreev(config->dir_search);
  g_free(config->audio_source);
  g_free(config->audio_sink);
  g_ptr_array_unref(config->warnings);
  g_free(config->login_url);
  g_free(config->login_ca);
  g_free(config->sn_turn_server);
  g_free(config->sn_turn_secret_file);
  g_strfreev(config->sn_relay_allow);
  g_free(config->login_device);
  g_free(config->conf_invite);
  g_free(config);
}
