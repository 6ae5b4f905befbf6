/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl.c: the ctl frontend plugin: a JSON control socket for custom frontends, scripts
 * and the integration tests (docs/control-protocol.md).
 *
 * This file holds the settings, the listening socket (a unix socket in the state
 * directory: its file mode is the access control; there is no TCP listener, since any
 * local user could connect to one and run `shutdown`) and the frontend interface; connection.c
 * holds what happens on one connection. Every source is attached to the node's own
 * main context, and every socket is non-blocking. */
#include "ctl.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <sys/un.h>

#define FRONTEND_NAME "ctl"
#define DEFAULT_MAX_CLIENTS 16
#define DEFAULT_MAX_LINE 65536
/* How long stop() may spend writing what clients have not yet read. */
#define STOP_FLUSH_USEC (2 * G_USEC_PER_SEC)

typedef struct {
  CtlServer *server;
  GSocket *socket;
  GSource *source;
} CtlListener;

/* ---- settings ------------------------------------------------------------------------- */

static const char *const known_settings[] = { "socket", "tcp_port", "max_clients", "max_line",
                                              NULL };

static gboolean
read_settings(CtlServer *s, GVariant *settings, GError **error)
{
  gint64 tcp_port, max_clients, max_line;
  if (!hark_settings_get_string(settings, "socket", HARK_CONTROL_DEFAULT_SOCKET, &s->socket_setting,
                                error) ||
      !hark_settings_get_int(settings, "tcp_port", 0, 0, 65535, &tcp_port, error) ||
      !hark_settings_get_int(settings, "max_clients", DEFAULT_MAX_CLIENTS, 1, 4096, &max_clients,
                             error) ||
      !hark_settings_get_int(settings, "max_line", DEFAULT_MAX_LINE, 64, CTL_MAX_QUEUED_BYTES,
                             &max_line, error))
    return FALSE;
  if (tcp_port != 0) {
    g_set_error_literal(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                        "setting 'tcp_port' is no longer supported: any local user could "
                        "control the node (even shut it down) over TCP; use the unix socket, "
                        "whose file mode says who may");
    return FALSE;
  }
  if (*s->socket_setting == '\0') {
    g_set_error_literal(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                        "setting 'socket' must not be empty");
    return FALSE;
  }
  hark_settings_warn_unknown(settings, hark_context_plugin_name(s->ctx), known_settings);
  s->max_clients = max_clients;
  s->max_line = max_line;
  return TRUE;
}

/* ---- accepting ------------------------------------------------------------------------- */

/* Beyond max_clients: one error line, written if the socket takes it now, then close. */
static void
turn_away(CtlServer *s, GSocket *socket)
{
  g_autofree char *message =
    g_strdup_printf("too many clients (max_clients is %u)", s->max_clients);
  g_autoptr(GString) line = hark_control_error_text(NULL, "too-many-clients", message);
  g_string_append_c(line, '\n');
  g_socket_send(socket, line->str, line->len, NULL, NULL);
  g_socket_close(socket, NULL);
  g_message("refused a client: %s", message);
}

static gboolean
on_incoming(GSocket *listening, GIOCondition condition, gpointer data)
{
  CtlListener *listener = data;
  CtlServer *s = listener->server;
  g_autoptr(GError) error = NULL;
  GSocket *socket = g_socket_accept(listening, NULL, &error);
  if (socket == NULL) {
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
      g_warning("accept failed: %s", error->message);
    return G_SOURCE_CONTINUE;
  }
  g_socket_set_blocking(socket, FALSE);
  if (s->connections->len >= s->max_clients) {
    turn_away(s, socket);
    g_object_unref(socket);
    return G_SOURCE_CONTINUE;
  }
  ctl_connection_new(s, socket);
  return G_SOURCE_CONTINUE;
}

static void
listener_free(gpointer data)
{
  CtlListener *listener = data;
  g_source_destroy(listener->source);
  g_source_unref(listener->source);
  g_socket_close(listener->socket, NULL);
  g_object_unref(listener->socket);
  g_free(listener);
}

/* Bind, make private (before listen(), so nobody can connect in between), listen. */
static gboolean
listen_on(CtlServer *s, GSocket *socket, GSocketAddress *address, const char *path, GError **error)
{
  if (!g_socket_bind(socket, address, TRUE, error))
    return FALSE;
  if (path != NULL) {
    s->socket_path = g_strdup(path);
    if (g_chmod(path, 0600) != 0) {
      int saved = errno;
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "cannot make %s private: %s",
                  path, g_strerror(saved));
      return FALSE;
    }
  }
  if (!g_socket_listen(socket, error))
    return FALSE;
  g_socket_set_blocking(socket, FALSE);
  CtlListener *listener = g_new0(CtlListener, 1);
  listener->server = s;
  listener->socket = g_object_ref(socket);
  listener->source = g_socket_create_source(socket, G_IO_IN, NULL);
  g_source_set_callback(listener->source, G_SOURCE_FUNC(on_incoming), listener, NULL);
  g_source_attach(listener->source, hark_context_main_context(s->ctx));
  g_ptr_array_add(s->listeners, listener);
  return TRUE;
}

/* ---- the unix socket file ---------------------------------------------------------------- */

static gboolean
socket_is_served(const char *path)
{
  g_autoptr(GSocket) probe = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
  g_autoptr(GError) error = NULL;
  if (probe == NULL)
    return FALSE;
  if (g_socket_connect(probe, address, NULL, &error))
    return TRUE;
  /* Refused: a file left by a node that died. Anything else (a full backlog, say)
   * may be a live node; do not take its socket away. */
  return !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

/* Make the path free for bind(): replace a stale socket, refuse anything else. */
static gboolean
claim_socket_path(const char *path, GError **error)
{
  GStatBuf st;
  if (g_lstat(path, &st) != 0)
    return TRUE;
  if (!S_ISSOCK(st.st_mode)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                "%s exists and is not a socket; not replacing it", path);
    return FALSE;
  }
  if (socket_is_served(path)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                "another hark node is serving ctl at %s", path);
    return FALSE;
  }
  g_message("replacing the stale socket %s", path);
  if (g_unlink(path) != 0 && errno != ENOENT) {
    int saved = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "cannot remove %s: %s", path,
                g_strerror(saved));
    return FALSE;
  }
  return TRUE;
}

static gboolean
listen_unix(CtlServer *s, GError **error)
{
  g_autofree char *path = hark_config_state_path(hark_context_state_dir(s->ctx), s->socket_setting);
  if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
                "the socket path %s is too long for a unix socket (%zu bytes at most); "
                "set a shorter 'socket'",
                path, sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
    return FALSE;
  }
  if (!claim_socket_path(path, error))
    return FALSE;
  g_autoptr(GSocket) socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, error);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
  if (socket == NULL || !listen_on(s, socket, address, path, error)) {
    g_prefix_error(error, "cannot listen at %s: ", path);
    return FALSE;
  }
  g_message("serving ctl at %s", path);
  return TRUE;
}

/* ---- the frontend interface ----------------------------------------------------------------- */

static gboolean
ctl_start(gpointer instance, GError **error)
{
  CtlServer *s = instance;
  return listen_unix(s, error);
}

/* Best effort within STOP_FLUSH_USEC: the answer to `shutdown` and the node-stopping
 * event are usually written already, but a client slow to read still gets them. */
static void
ctl_stop(gpointer instance)
{
  CtlServer *s = instance;
  g_ptr_array_set_size(s->listeners, 0);
  gint64 deadline = g_get_monotonic_time() + STOP_FLUSH_USEC;
  while (s->connections->len > 0) {
    CtlConnection *c = ctl_connection_ref(s->connections->pdata[0]);
    ctl_connection_flush(c, deadline);
    ctl_connection_close(c);
    ctl_connection_unref(c);
  }
  if (s->socket_path != NULL && g_unlink(s->socket_path) != 0 && errno != ENOENT) {
    int saved = errno;
    g_warning("cannot remove %s: %s", s->socket_path, g_strerror(saved));
  }
  g_clear_pointer(&s->socket_path, g_free);
}

static void
ctl_event(gpointer instance, const char *name, JsonObject *data)
{
  CtlServer *s = instance;
  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), data);
  g_autoptr(GString) line = hark_control_json_text(root);
  g_string_append_c(line, '\n');
  /* A copy: a client may be disconnected (and leave the list) while we send. */
  g_autoptr(GPtrArray) connections =
    g_ptr_array_new_with_free_func((GDestroyNotify)ctl_connection_unref);
  for (guint i = 0; i < s->connections->len; i++)
    g_ptr_array_add(connections, ctl_connection_ref(s->connections->pdata[i]));
  for (guint i = 0; i < connections->len; i++)
    ctl_connection_send_text(connections->pdata[i], line->str, line->len);
}

static const HarkFrontendInterface ctl_frontend = {
  .version = HARK_FRONTEND_INTERFACE_VERSION,
  .start = ctl_start,
  .stop = ctl_stop,
  .event = ctl_event,
};

/* ---- the plugin -------------------------------------------------------------------------- */

static void
server_free(CtlServer *s)
{
  ctl_stop(s);
  g_ptr_array_unref(s->listeners);
  g_ptr_array_unref(s->connections);
  g_free(s->socket_setting);
  g_free(s);
}

static gboolean
ctl_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  CtlServer *s = g_new0(CtlServer, 1);
  s->ctx = ctx;
  s->listeners = g_ptr_array_new_with_free_func(listener_free);
  s->connections = g_ptr_array_new_with_free_func((GDestroyNotify)ctl_connection_unref);
  if (!read_settings(s, settings, error) ||
      !hark_context_register(ctx, HARK_KIND_FRONTEND, FRONTEND_NAME, HARK_RANK_PRIMARY,
                             &ctl_frontend, s, error)) {
    server_free(s);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, s);
  return TRUE;
}

/* The server is this context's plugin data, not a global: two nodes in one process
 * share this code but not their servers. */
static void
ctl_fini(HarkContext *ctx)
{
  server_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "ctl", .version = HARK_VERSION,
                   .description = "JSON control socket for custom frontends and scripts",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_FRONTEND, .init = ctl_init,
                   .fini = ctl_fini);
