/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* loginsrv.c: the login server plugin (docs/protocol.md, "Login server API"): its
 * settings, the account store it uses, its CA and TLS certificate, and start/stop.
 *
 * Why it registers a frontend: a descriptor must declare a kind it registers, and the
 * login server provides no transport, codec, search or store; it consumes a store.
 * It is, though, exactly what a frontend is: a way into the node from outside (HTTPS,
 * where ctl is a unix socket), started after every plugin is loaded and stopped before
 * any is unloaded. That ordering is what it needs: the store plugin it uses is loaded
 * (and registered) by the time start() looks it up, and is closed by stop() before the
 * store plugin's fini runs. Node events mean nothing to it. */
#include "loginsrv.h"

#define PLUGIN_NAME "loginsrv"
#define DEFAULT_PORT 8443
/* Device certificates live an hour: a revoked device, or one of a deleted account, cannot
 * renew, so super nodes drop its links within this long (docs/protocol.md, "Links"). */
#define DEFAULT_LIFETIME 3600
/* Shorter makes every device renew all the time; tests use a few seconds. */
#define MIN_LIFETIME 5
#define DEFAULT_HASH_MEMORY_KIB 19456 /* OWASP's minimum for argon2id: 19 MiB, t=2, p=1 */
#define DEFAULT_HASH_ITERATIONS 2
#define DEFAULT_MAX_BODY 16384
#define ADDRESS_MAX_FAILURES 20
#define ADDRESS_WINDOW_USEC (60 * G_USEC_PER_SEC)
#define ADDRESS_MAX_TRACKED 10000
#define LOCKS_MAX_TRACKED 100000
/* Only TLS 1.3, in the handshake itself (glib-networking's GnuTLS backend). */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3"
#define CA_DIR "ca"
#define SERVER_CERT_FILE "server.pem"
#define SERVER_KEY_FILE "server-key.pem"
#define PINNED_CA_FILE "ca.pem" /* in the state directory, for clients to pin */
/* Started before ctl (PRIMARY): once ctl accepts, the HTTPS server is up as well, and
 * scripts and tests wait for ctl. */
#define FRONTEND_RANK (HARK_RANK_PRIMARY + 1)

/* ---- settings --------------------------------------------------------------------------- */

static const char *const known_settings[] = {
  "listen",
  "port",
  "store",
  "store_options",
  "hosts",
  "certificate_lifetime",
  "latest_version",
  "download_url",
  "hash_memory_kib",
  "hash_iterations",
  "max_body",
  "first_lock",
  "registrations_per_minute",
  "relay_failures_per_minute",
  "lookups_per_minute",
  "user_lookups_per_minute",
  "signed_lookups_per_minute",
  "handshake_timeout",
  "max_handshakes",
  "max_handshakes_per_source",
  "contact_requests_per_minute",
  "max_pending_requests",
  "request_again_after",
  "messages",
  NULL,
};
static const char *const known_message_settings[] = {
  "hold_days",
  "holds_per_minute",
  "sender_max_messages",
  "sender_max_bytes",
  "device_max_messages",
  "device_max_bytes",
  NULL,
};

static const char *const default_hosts[] = { "localhost", "127.0.0.1", NULL };

static gboolean
wrong_type(GError **error, const char *key, const char *expected, GVariant *value)
{
  g_autofree char *shown = g_variant_print(value, FALSE);
  g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_TYPE,
              "setting '%s' must be %s, not %s", key, expected, shown);
  return FALSE;
}

/* A non-empty array of non-empty strings. */
static gboolean
read_strv(GVariant *settings, const char *key, const char *const *fallback, char ***out,
          GError **error)
{
  g_autoptr(GVariant) value = g_variant_lookup_value(settings, key, NULL);
  if (value == NULL) {
    *out = g_strdupv((char **)fallback);
    return TRUE;
  }
  if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING_ARRAY) || g_variant_n_children(value) == 0)
    return wrong_type(error, key, "a non-empty array of strings", value);
  *out = g_variant_dup_strv(value, NULL);
  for (char **s = *out; *s != NULL; s++)
    if (**s == '\0') {
      g_clear_pointer(out, g_strfreev);
      return wrong_type(error, key, "an array of non-empty strings", value);
    }
  return TRUE;
}

/* A group of settings, handed on as it is (an empty one when absent). */
static gboolean
read_group(GVariant *settings, const char *key, GVariant **out, GError **error)
{
  g_autoptr(GVariant) value = g_variant_lookup_value(settings, key, NULL);
  if (value != NULL && !g_variant_is_of_type(value, G_VARIANT_TYPE_VARDICT))
    return wrong_type(error, key, "a group ({ key = value; ... })", value);
  *out = value != NULL ? g_variant_ref(value)
                       : g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
  return TRUE;
}

/* What bounds one source, one SN and the connections in progress. */
static gboolean
read_limits(LoginServer *s, GVariant *settings, GError **error)
{
  gint64 relay, lookups, user_lookups, signed_lookups, timeout, handshakes, per_source, requests,
    pending, again;
  if (!hark_settings_get_int(settings, "relay_failures_per_minute", 200, 1, 1000000, &relay,
                             error) ||
      !hark_settings_get_int(settings, "lookups_per_minute", 60, 1, 1000000, &lookups, error) ||
      !hark_settings_get_int(settings, "user_lookups_per_minute", 120, 1, 1000000, &user_lookups,
                             error) ||
      !hark_settings_get_int(settings, "signed_lookups_per_minute", 1200, 1, 10000000,
                             &signed_lookups, error) ||
      !hark_settings_get_int(settings, "handshake_timeout", 10, 1, 60, &timeout, error) ||
      !hark_settings_get_int(settings, "max_handshakes", 256, 1, 100000, &handshakes, error) ||
      !hark_settings_get_int(settings, "max_handshakes_per_source", 32, 1, 100000, &per_source,
                             error) ||
      !hark_settings_get_int(settings, "contact_requests_per_minute", 10, 1, 1000000, &requests,
                             error) ||
      !hark_settings_get_int(settings, "max_pending_requests", 100, 1, 100000, &pending, error) ||
      !hark_settings_get_int(settings, "request_again_after", 86400, 0, G_MAXINT32, &again, error))
    return FALSE;
  s->contact_requests_per_minute = (guint)requests;
  s->max_pending_requests = (guint)pending;
  s->request_again_after = again;
  s->relay_failures_per_minute = (guint)relay;
  s->lookups_per_minute = (guint)lookups;
  s->user_lookups_per_minute = (guint)user_lookups;
  s->signed_lookups_per_minute = (guint)signed_lookups;
  s->handshake_timeout = (guint)timeout;
  s->max_handshakes = (guint)handshakes;
  s->max_handshakes_per_source = (guint)per_source;
  return TRUE;
}

/* The `messages` group: how long and how much is held for offline devices. The
 * defaults: a month; per recipient device 1000 messages or 16 MiB (a month of a busy
 * conversation's text, and a few full-size envelopes), per sending user 5000 or 64 MiB
 * (one user cannot fill the server for everyone); 120 holds a minute per account. */
static gboolean
read_message_settings(LoginServer *s, GVariant *settings, GError **error)
{
  g_autoptr(GVariant) group = NULL;
  gint64 days, per_minute;
  HarkStoreMessageLimits *limits = &s->hold_limits;
  if (!read_group(settings, "messages", &group, error))
    return FALSE;
  if (!hark_settings_get_int(group, "hold_days", 30, 1, 3650, &days, error) ||
      !hark_settings_get_int(group, "holds_per_minute", 120, 1, 1000000, &per_minute, error) ||
      !hark_settings_get_int(group, "sender_max_messages", 5000, 1, G_MAXINT32,
                             &limits->sender.count, error) ||
      !hark_settings_get_int(group, "sender_max_bytes", 64 * 1024 * 1024, 1, G_MAXINT64,
                             &limits->sender.bytes, error) ||
      !hark_settings_get_int(group, "device_max_messages", 1000, 1, G_MAXINT32,
                             &limits->device.count, error) ||
      !hark_settings_get_int(group, "device_max_bytes", 16 * 1024 * 1024, 1, G_MAXINT64,
                             &limits->device.bytes, error)) {
    g_prefix_error(error, "messages: ");
    return FALSE;
  }
  hark_settings_warn_unknown(group, PLUGIN_NAME ".messages", known_message_settings);
  s->hold_seconds = days * 24 * 3600;
  s->holds_per_minute = (guint)per_minute;
  return TRUE;
}

static gboolean
read_numbers(LoginServer *s, GVariant *settings, GError **error)
{
  gint64 port, lifetime, memory, iterations, max_body, first_lock, registrations;
  if (!hark_settings_get_int(settings, "port", DEFAULT_PORT, 0, 65535, &port, error) ||
      !hark_settings_get_int(settings, "certificate_lifetime", DEFAULT_LIFETIME, MIN_LIFETIME,
                             366 * 24 * 3600, &lifetime, error) ||
      !hark_settings_get_int(settings, "hash_memory_kib", DEFAULT_HASH_MEMORY_KIB, 8,
                             4 * 1024 * 1024, &memory, error) ||
      !hark_settings_get_int(settings, "hash_iterations", DEFAULT_HASH_ITERATIONS, 1, 1000,
                             &iterations, error) ||
      !hark_settings_get_int(settings, "max_body", DEFAULT_MAX_BODY, 1024, 1024 * 1024, &max_body,
                             error) ||
      !hark_settings_get_int(settings, "first_lock", 1, 1, 3600, &first_lock, error) ||
      !hark_settings_get_int(settings, "registrations_per_minute", 10, 1, 100000, &registrations,
                             error) ||
      !read_limits(s, settings, error) || !read_message_settings(s, settings, error))
    return FALSE;
  s->registrations_per_minute = (guint)registrations;
  s->first_lock = first_lock;
  s->port = (guint16)port;
  s->certificate_lifetime = lifetime;
  s->hash_memory_kib = (guint32)memory;
  s->hash_iterations = (guint32)iterations;
  s->max_body = (gsize)max_body;
  return TRUE;
}

static gboolean
read_settings(LoginServer *s, GVariant *settings, GError **error)
{
  if (!hark_settings_get_string(settings, "listen", "0.0.0.0", &s->listen, error) ||
      !hark_settings_get_string(settings, "store", "sqlite", &s->store_name, error) ||
      !hark_settings_get_string(settings, "latest_version", HARK_VERSION, &s->latest_version,
                                error) ||
      !hark_settings_get_string(settings, "download_url", "", &s->download_url, error) ||
      !read_group(settings, "store_options", &s->store_options, error) ||
      !read_strv(settings, "hosts", default_hosts, &s->hosts, error) ||
      !read_numbers(s, settings, error))
    return FALSE;
  if (!g_hostname_is_ip_address(s->listen)) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_TYPE,
                "setting 'listen' must be an IP address (\"0.0.0.0\", \"::\", \"127.0.0.1\"), "
                "not '%s'",
                s->listen);
    return FALSE;
  }
  hark_settings_warn_unknown(settings, PLUGIN_NAME, known_settings);
  return TRUE;
}

/* ---- the store -------------------------------------------------------------------------- */

static const HarkRegistration *
find_store(LoginServer *s, GPtrArray *stores, GError **error)
{
  for (guint i = 0; i < stores->len; i++) {
    const HarkRegistration *reg = stores->pdata[i];
    if (g_strcmp0(reg->name, s->store_name) == 0)
      return reg;
  }
  g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INVALID,
              "store '%s' is not loaded; add it to plugins.load before loginsrv", s->store_name);
  return NULL;
}

static gboolean
open_store(LoginServer *s, GError **error)
{
  g_autoptr(GPtrArray) stores = hark_context_lookup(s->ctx, HARK_KIND_STORE);
  const HarkRegistration *reg = find_store(s, stores, error);
  if (reg == NULL)
    return FALSE;
  const HarkStoreInterface *iface = reg->iface;
  if (iface->version < 4 || iface->open == NULL) {
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INTERFACE_VERSION,
                "store '%s' has an interface this login server cannot use", s->store_name);
    return FALSE;
  }
  s->store_handle =
    iface->open(reg->instance, hark_context_state_dir(s->ctx), s->store_options, error);
  if (s->store_handle == NULL) {
    g_prefix_error(error, "cannot open the store '%s': ", s->store_name);
    return FALSE;
  }
  s->store = iface;
  login_messages_purge_if_due(s);
  return TRUE;
}

/* ---- certificates ---------------------------------------------------------------------- */

/* The CA (made on first start), the TLS certificate it issues for the configured hosts,
 * and a copy of the CA certificate where clients and operators can find it to pin. */
static GTlsCertificate *
load_certificates(LoginServer *s, GError **error)
{
  const char *state_dir = hark_context_state_dir(s->ctx);
  g_autofree char *ca_dir = g_build_filename(state_dir, CA_DIR, NULL);
  g_autofree char *common_name =
    g_strdup_printf("hark login server CA (%s)", hark_context_node_name(s->ctx));
  s->ca = hark_ca_load_or_create(ca_dir, common_name, error);
  if (s->ca == NULL)
    return NULL;
  s->ca_pem = hark_ca_get_certificate_pem(s->ca);
  g_autofree char *cert_path = g_build_filename(ca_dir, SERVER_CERT_FILE, NULL);
  g_autofree char *key_path = g_build_filename(ca_dir, SERVER_KEY_FILE, NULL);
  g_autofree char *pinned = g_build_filename(state_dir, PINNED_CA_FILE, NULL);
  if (!hark_ca_ensure_server_certificate(s->ca, (const char *const *)s->hosts, cert_path, key_path,
                                         error) ||
      !g_file_set_contents_full(pinned, s->ca_pem, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, error))
    return NULL;
  return g_tls_certificate_new_from_files(cert_path, key_path, error);
}

/* ---- the frontend interface ---------------------------------------------------------------- */

static void
loginsrv_stop(gpointer instance)
{
  LoginServer *s = instance;
  s->stopping = TRUE;
  g_clear_pointer(&s->listener, login_listener_stop);
  /* Jobs run plugin code on worker threads: all must be done before fini unloads us. */
  login_http_drain(s);
  login_keepalive_stop(s);
  if (s->soup != NULL)
    soup_server_disconnect(s->soup);
  g_clear_object(&s->soup);
  if (s->store_handle != NULL)
    s->store->close(s->store_handle);
  s->store_handle = NULL;
  s->store = NULL;
  g_clear_pointer(&s->addresses, login_limiter_free);
  g_clear_pointer(&s->registrations, login_limiter_free);
  g_clear_pointer(&s->relays, login_limiter_free);
  g_clear_pointer(&s->lookups, login_limiter_free);
  g_clear_pointer(&s->user_lookups, login_limiter_free);
  g_clear_pointer(&s->signed_lookups, login_limiter_free);
  g_clear_pointer(&s->contact_requests, login_limiter_free);
  g_clear_pointer(&s->holds, login_limiter_free);
  g_clear_pointer(&s->pair_locks, login_locks_free);
  g_clear_pointer(&s->account_locks, login_locks_free);
  g_clear_pointer(&s->dummy_hash, g_free);
  g_clear_pointer(&s->replays, login_replay_free);
  g_clear_pointer(&s->ca, hark_ca_free);
  s->ca_pem = NULL;
  s->stopping = FALSE;
}

/* A hash of a random password at the configured cost: an unknown user's password is
 * checked against it, so that takes as long as a wrong password of a real user. */
static gboolean
make_dummy_hash(LoginServer *s, GError **error)
{
  g_autofree char *random = g_uuid_string_random();
  g_autofree char *problem = NULL;
  s->dummy_hash = login_password_hash(random, s->hash_memory_kib, s->hash_iterations, &problem);
  if (s->dummy_hash == NULL)
    g_set_error(error, HARK_CONTEXT_ERROR, HARK_CONTEXT_ERROR_INVALID, "cannot hash a password: %s",
                problem);
  return s->dummy_hash != NULL;
}

static gboolean
start_serving(LoginServer *s, GError **error)
{
  g_autoptr(GTlsCertificate) certificate = load_certificates(s, error);
  if (certificate == NULL)
    return FALSE;
  s->addresses = login_limiter_new(ADDRESS_MAX_FAILURES, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->registrations =
    login_limiter_new(s->registrations_per_minute, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->relays =
    login_limiter_new(s->relay_failures_per_minute, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->lookups = login_limiter_new(s->lookups_per_minute, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->user_lookups =
    login_limiter_new(s->user_lookups_per_minute, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->signed_lookups =
    login_limiter_new(s->signed_lookups_per_minute, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->contact_requests =
    login_limiter_new(s->contact_requests_per_minute, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->holds = login_limiter_new(s->holds_per_minute, ADDRESS_WINDOW_USEC, ADDRESS_MAX_TRACKED);
  s->pair_locks = login_locks_new(s->first_lock, LOCKS_MAX_TRACKED);
  s->account_locks = login_locks_new(s->first_lock, LOCKS_MAX_TRACKED);
  if (!make_dummy_hash(s, error))
    return FALSE;
  s->replays = login_replay_new(LOGIN_REPLAY_MAX);
  s->soup = soup_server_new(NULL, NULL);
  login_http_setup(s);
  login_keepalive_start(s);
  s->listener = login_listener_start(s, certificate, error);
  if (s->listener == NULL)
    return FALSE;
  g_message("login server at https://%s:%u (store '%s', CA certificate %s/" PINNED_CA_FILE ")",
            s->listen, login_listener_port(s->listener), s->store_name,
            hark_context_state_dir(s->ctx));
  return TRUE;
}

static gboolean
loginsrv_start(gpointer instance, GError **error)
{
  LoginServer *s = instance;
  /* libsoup attaches its sources to the thread-default context: make it the node's. */
  GMainContext *context = hark_context_main_context(s->ctx);
  g_main_context_push_thread_default(context);
  gboolean ok = open_store(s, error) && start_serving(s, error);
  g_main_context_pop_thread_default(context);
  return ok;
}

static const HarkFrontendInterface loginsrv_frontend = {
  .version = HARK_FRONTEND_INTERFACE_VERSION,
  .start = loginsrv_start,
  .stop = loginsrv_stop,
  .event = NULL,
};

/* ---- the plugin -------------------------------------------------------------------------- */

static void
server_free(LoginServer *s)
{
  loginsrv_stop(s);
  g_free(s->listen);
  g_free(s->store_name);
  g_clear_pointer(&s->store_options, g_variant_unref);
  g_strfreev(s->hosts);
  g_free(s->latest_version);
  g_free(s->download_url);
  g_free(s);
}

/* glib-networking reads G_TLS_GNUTLS_PRIORITY once, when the first GIO TLS connection of
 * the process is made; plugins are initialised before anything connects, so setting it
 * here makes TLS 1.2 and older fail in the handshake. An operator's own setting is kept
 * (tls.c still closes a connection that negotiated less than 1.3). */
static void
require_tls13(void)
{
  if (g_getenv("G_TLS_GNUTLS_PRIORITY") != NULL) {
    g_message("G_TLS_GNUTLS_PRIORITY is set; the login server keeps it");
    return;
  }
  g_setenv("G_TLS_GNUTLS_PRIORITY", TLS_PRIORITY, TRUE);
}

static gboolean
loginsrv_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  require_tls13();
  LoginServer *s = g_new0(LoginServer, 1);
  s->ctx = ctx;
  if (!read_settings(s, settings, error) ||
      !hark_context_register(ctx, HARK_KIND_FRONTEND, PLUGIN_NAME, FRONTEND_RANK,
                             &loginsrv_frontend, s, error)) {
    server_free(s);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, s);
  return TRUE;
}

static void
loginsrv_fini(HarkContext *ctx)
{
  server_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = PLUGIN_NAME, .version = HARK_VERSION,
                   .description = "login server: accounts, device certificates, buddy lists, "
                                  "messages held for offline devices (HTTPS)",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_FRONTEND,
                   .init = loginsrv_init, .fini = loginsrv_fini);
