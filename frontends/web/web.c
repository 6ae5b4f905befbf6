/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* web.c: the web frontend plugin: the softphone as a page in a browser, served by the
 * node (docs/web-frontend.md). This file holds the settings, the frontend interface
 * (start, stop, events to every WebSocket client) and two commands the plugin adds to the
 * node's one command table (so they are in every frontend): `web-url` (`hark ctl web-url`
 * asks the running node, which alone holds the one-time tokens) and `web-status`. http.c
 * is the server, auth.c the secret, tokens and cookies. */
#include "web.h"

#define FRONTEND_NAME "web"
#define DEFAULT_ADDRESS "127.0.0.1"
#define DEFAULT_PORT 8480
#define DEFAULT_MAX_CLIENTS 16

/* ---- settings --------------------------------------------------------------------------- */

static const char *const known_settings[] = { "address", "port", "tls_cert", "tls_key",
                                              "max_clients", NULL };

GInetAddress *
web_address(WebServer *s, GError **error)
{
  GInetAddress *address = g_inet_address_new_from_string(s->address_setting);
  if (address == NULL)
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "setting 'address' must be an IP address (such as 127.0.0.1 or ::1), not '%s'",
                s->address_setting);
  return address;
}

static gboolean
check_tls(WebServer *s, GError **error)
{
  if ((s->tls_cert == NULL) != (s->tls_key == NULL)) {
    g_set_error_literal(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                        "settings 'tls_cert' and 'tls_key' go together: give both or neither");
    return FALSE;
  }
  g_autoptr(GInetAddress) address = web_address(s, error);
  if (address == NULL)
    return FALSE;
  /* Anyone on the network could sniff the login link, the cookie and every message. */
  if (!g_inet_address_get_is_loopback(address) && s->tls_cert == NULL) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "listening on %s needs tls_cert and tls_key: without TLS anyone on the "
                "network could read the login link, the session cookie and every message; "
                "use a loopback address (127.0.0.1, the default) or give a certificate",
                s->address_setting);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_settings(WebServer *s, GVariant *settings, GError **error)
{
  gint64 port, max_clients;
  if (!hark_settings_get_string(settings, "address", DEFAULT_ADDRESS, &s->address_setting,
                                error) ||
      !hark_settings_get_int(settings, "port", DEFAULT_PORT, 0, 65535, &port, error) ||
      !hark_settings_get_string(settings, "tls_cert", NULL, &s->tls_cert, error) ||
      !hark_settings_get_string(settings, "tls_key", NULL, &s->tls_key, error) ||
      !hark_settings_get_int(settings, "max_clients", DEFAULT_MAX_CLIENTS, 1, 1024, &max_clients,
                             error))
    return FALSE;
  hark_settings_warn_unknown(settings, hark_context_plugin_name(s->ctx), known_settings);
  s->port_setting = (guint)port;
  s->max_clients = (guint)max_clients;
  return check_tls(s, error);
}

/* ---- the commands: web-url, web-status ------------------------------------------------------------------- */

static void
run_web_url(HarkCommandCall *call, JsonObject *args, gpointer data)
{
  WebServer *s = data;
  GError *error = NULL;
  g_autofree char *url = web_login_url(s, &error);
  if (url == NULL) {
    hark_command_call_return_error(call, error);
    return;
  }
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "url", url);
  json_object_set_int_member(result, "expires_in", WEB_TOKEN_LIFETIME_SECONDS);
  hark_command_call_return_object(call, result);
}

static const HarkCommand web_url_command = {
  .version = HARK_COMMAND_VERSION,
  .name = "web-url",
  .summary = "a link that opens the web frontend's page in a browser (once, within 60 s)",
  .run = run_web_url,
};

static void
run_web_status(HarkCommandCall *call, JsonObject *args, gpointer data)
{
  WebServer *s = data;
  JsonObject *result = json_object_new();
  json_object_set_boolean_member(result, "serving", s->server != NULL);
  if (s->origin != NULL)
    json_object_set_string_member(result, "origin", s->origin);
  json_object_set_int_member(result, "clients", s->clients->len);
  json_object_set_int_member(result, "logins", (gint64)s->logins);
  JsonObject *refused = json_object_new();
  json_object_set_int_member(refused, "login_links", (gint64)s->refused.login_links);
  json_object_set_int_member(refused, "hosts", (gint64)s->refused.hosts);
  json_object_set_int_member(refused, "origins", (gint64)s->refused.origins);
  json_object_set_int_member(refused, "sessions", (gint64)s->refused.sessions);
  json_object_set_int_member(refused, "busy", (gint64)s->refused.busy);
  json_object_set_int_member(refused, "messages", (gint64)s->refused.messages);
  json_object_set_object_member(result, "refused", refused);
  hark_command_call_return_object(call, result);
}

static const HarkCommand web_status_command = {
  .version = HARK_COMMAND_VERSION,
  .name = "web-status",
  .summary = "the web frontend: where it serves, its clients, and what it refused",
  .run = run_web_status,
};

/* ---- the frontend interface ---------------------------------------------------------------- */

static gboolean
web_start(gpointer instance, GError **error)
{
  WebServer *s = instance;
  g_autofree char *path = hark_config_state_path(hark_context_state_dir(s->ctx), WEB_SECRET_FILE);
  if (!web_auth_init(&s->auth, path, error))
    return FALSE;
  s->auth_ready = TRUE;
  if (!web_http_start(s, error))
    return FALSE;
  g_message("serving the web frontend at %s", s->origin);
  /* A token good once and for a minute: the only thing of the secret ever logged. */
  g_autoptr(GError) url_error = NULL;
  g_autofree char *url = web_login_url(s, &url_error);
  if (url != NULL)
    g_message("open %s in a browser (once, within %d s; `hark ctl web-url` makes another)", url,
              WEB_TOKEN_LIFETIME_SECONDS);
  return TRUE;
}

static void
web_stop(gpointer instance)
{
  WebServer *s = instance;
  web_http_stop(s);
  if (s->auth_ready)
    web_auth_clear(&s->auth);
  s->auth_ready = FALSE;
}

static void
web_event(gpointer instance, const char *name, JsonObject *data)
{
  WebServer *s = instance;
  if (s->clients->len == 0)
    return;
  g_autoptr(GString) text = hark_control_object_text(data);
  web_http_broadcast(s, text->str);
}

static const HarkFrontendInterface web_frontend = {
  .version = HARK_FRONTEND_INTERFACE_VERSION,
  .start = web_start,
  .stop = web_stop,
  .event = web_event,
};

/* ---- the plugin ------------------------------------------------------------------------------ */

static void
server_free(WebServer *s)
{
  web_stop(s);
  g_ptr_array_unref(s->clients);
  g_free(s->address_setting);
  g_free(s->tls_cert);
  g_free(s->tls_key);
  g_free(s);
}

static gboolean
web_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  WebServer *s = g_new0(WebServer, 1);
  s->ctx = ctx;
  s->clients = web_clients_new();
  if (!read_settings(s, settings, error) ||
      !hark_context_register(ctx, HARK_KIND_FRONTEND, FRONTEND_NAME, HARK_RANK_SECONDARY,
                             &web_frontend, s, error) ||
      !hark_context_add_command(ctx, &web_url_command, s, error) ||
      !hark_context_add_command(ctx, &web_status_command, s, error)) {
    server_free(s);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, s);
  return TRUE;
}

static void
web_fini(HarkContext *ctx)
{
  server_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "web", .version = HARK_VERSION,
                   .description = "the softphone as a page in a browser, served by the node",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_FRONTEND, .init = web_init,
                   .fini = web_fini);
