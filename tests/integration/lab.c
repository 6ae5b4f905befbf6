/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lab.c: see lab.h. */
#include "lab.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>

LabNode *
lab_node_new(const char *name, const char *config_text)
{
  LabNode *node = g_new0(LabNode, 1);
  node->name = g_strdup(name);
  node->node = hark_test_node_new(config_text);
  return node;
}

gboolean
lab_start_with_ctl(HarkTestNode *node, HarkTestClient **ctl)
{
  if (!hark_test_node_start(node))
    return FALSE;
  *ctl = hark_test_client_connect_unix(node->socket_path);
  if (*ctl == NULL)
    return FALSE;
  g_autoptr(JsonObject) hello = hark_test_client_wait_event(*ctl, "hello", LAB_ANSWER_MS);
  if (hello == NULL)
    g_clear_pointer(ctl, hark_test_client_free);
  return *ctl != NULL;
}

gboolean
lab_restart_with_ctl(HarkTestNode *node, HarkTestClient **ctl)
{
  g_autoptr(JsonObject) answer = lab_ctl_ask(*ctl, "shutdown", NULL, NULL);
  g_clear_pointer(ctl, hark_test_client_free);
  if (answer == NULL || !hark_test_node_wait_exit(node, LAB_EXIT_MS) || node->exit_status != 0) {
    g_test_fail_printf("the node did not shut down cleanly (status %d)", node->exit_status);
    return FALSE;
  }
  return lab_start_with_ctl(node, ctl);
}

gboolean
lab_node_start(LabNode *node)
{
  return lab_start_with_ctl(node->node, &node->ctl);
}

gboolean
lab_node_restart(LabNode *node)
{
  return lab_restart_with_ctl(node->node, &node->ctl);
}

void
lab_node_kill(LabNode *node)
{
  g_clear_pointer(&node->ctl, hark_test_client_free);
  if (node->node->process != NULL) {
    g_subprocess_send_signal(node->node->process, SIGKILL);
    hark_test_node_wait_exit(node->node, LAB_EXIT_MS);
    g_clear_object(&node->node->process);
  }
}

gboolean
lab_node_stop(LabNode *node)
{
  g_autoptr(JsonObject) answer = lab_ctl_ask(node->ctl, "shutdown", NULL, NULL);
  g_clear_pointer(&node->ctl, hark_test_client_free);
  return answer != NULL && hark_test_node_wait_exit(node->node, LAB_EXIT_MS) &&
         node->node->exit_status == 0;
}

gint64
lab_device_counter(LabNode *node, const char *name)
{
  g_autoptr(JsonObject) messages = lab_call(node, "messages", NULL);
  JsonObject *device = messages != NULL ? json_object_get_object_member(messages, "device") : NULL;
  return device != NULL ? json_object_get_int_member_with_default(device, name, -1) : -1;
}

void
lab_node_free(LabNode *node)
{
  if (node == NULL)
    return;
  g_clear_pointer(&node->ctl, hark_test_client_free);
  g_clear_pointer(&node->node, hark_test_node_free);
  g_free(node->name);
  g_free(node);
}

void
lab_nodes_kill_free(LabNode **const *nodes, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (*nodes[i] != NULL) {
      lab_node_kill(*nodes[i]);
      g_clear_pointer(nodes[i], lab_node_free);
    }
}

JsonObject *
lab_args(const char *first_name, ...)
{
  JsonObject *args = json_object_new();
  va_list ap;
  va_start(ap, first_name);
  for (const char *name = first_name; name != NULL; name = va_arg(ap, const char *))
    json_object_set_string_member(args, name, va_arg(ap, const char *));
  va_end(ap);
  return args;
}

JsonObject *
lab_ctl_ask(HarkTestClient *ctl, const char *command, JsonObject *args, GPtrArray *events)
{
  static guint serial;
  g_autofree char *id = g_strdup_printf("lab-%u", ++serial);
  gboolean sent = ctl != NULL && hark_test_client_send(ctl, id, command, args);
  if (args != NULL)
    json_object_unref(args);
  return sent ? hark_test_client_wait_response(ctl, id, events, LAB_ANSWER_MS) : NULL;
}

JsonObject *
lab_ctl_call(HarkTestClient *ctl, const char *command, JsonObject *args, GPtrArray *events)
{
  g_autoptr(JsonObject) answer = lab_ctl_ask(ctl, command, args, events);
  JsonObject *result = answer != NULL ? hark_test_answer_result(answer) : NULL;
  if (result == NULL)
    g_test_message("(the answer to '%s')", command);
  return result != NULL ? json_object_ref(result) : NULL;
}

void
lab_events_init(LabEvents *log)
{
  log->events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  log->cursor = 0;
}

void
lab_events_clear(LabEvents *log)
{
  g_clear_pointer(&log->events, g_ptr_array_unref);
  log->cursor = 0;
}

JsonObject *
lab_events_ask(LabNode *node, LabEvents *log, const char *command, JsonObject *args,
               char **error_text)
{
  if (error_text == NULL) {
    JsonObject *result = lab_ctl_call(node->ctl, command, args, log->events);
    if (result == NULL)
      g_test_message("(asked of %s)", node->name);
    return result;
  }
  g_autoptr(JsonObject) answer = lab_ctl_ask(node->ctl, command, args, log->events);
  if (answer == NULL)
    return NULL;
  JsonNode *error = json_object_get_member(answer, "error");
  if (error != NULL && JSON_NODE_HOLDS_OBJECT(error)) {
    *error_text = g_strdup(
      json_object_get_string_member_with_default(json_node_get_object(error), "message", NULL));
    return NULL;
  }
  JsonObject *result = hark_test_answer_result(answer);
  return result != NULL ? json_object_ref(result) : NULL;
}

JsonObject *
lab_events_wait(LabNode *node, LabEvents *log, LabEventMatch match, gconstpointer data,
                const char *what, guint timeout_ms)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(timeout_ms) * 1000;
  for (;;) {
    for (guint i = log->cursor; i < log->events->len; i++)
      if (match(log->events->pdata[i], data)) {
        log->cursor = i + 1;
        return json_object_ref(log->events->pdata[i]);
      }
    if (g_get_monotonic_time() >= until)
      break;
    /* Events arrive with answers: a cheap question reads what came meanwhile. */
    g_autoptr(JsonObject) pong = lab_ctl_ask(node->ctl, "version", NULL, log->events);
    if (pong == NULL)
      break;
    g_usleep(30 * 1000);
  }
  for (guint i = 0; i < log->events->len; i++) {
    g_autofree char *shown = hark_test_json(log->events->pdata[i]);
    g_test_message("%s saw %s", node->name, shown);
  }
  g_test_fail_printf("%s: no event %s", node->name, what);
  hark_test_node_show_logs(node->node);
  return NULL;
}

gboolean
lab_clock_advance(HarkTestClient *ctl, gint64 seconds)
{
  JsonObject *args = json_object_new();
  json_object_set_int_member(args, "advance", seconds);
  g_autoptr(JsonObject) result = lab_ctl_call(ctl, "clock", args, NULL);
  return result != NULL;
}

JsonObject *
lab_ask(LabNode *node, const char *command, JsonObject *args)
{
  return lab_ctl_ask(node->ctl, command, args, NULL);
}

JsonObject *
lab_call(LabNode *node, const char *command, JsonObject *args)
{
  JsonObject *result = lab_ctl_call(node->ctl, command, args, NULL);
  if (result == NULL)
    g_test_message("(asked of %s)", node->name);
  return result;
}

typedef struct {
  LabNode *node;
  const char *command;
  LabResultPredicate pred;
  gconstpointer data;
  JsonObject *last;
} CommandWait;

static gboolean
command_holds(gpointer data)
{
  CommandWait *wait = data;
  g_clear_pointer(&wait->last, json_object_unref);
  wait->last = lab_call(wait->node, wait->command, NULL);
  return wait->last != NULL && wait->pred(wait->last, wait->data);
}

JsonObject *
lab_wait_command(LabNode *node, const char *command, LabResultPredicate pred, gconstpointer data,
                 guint timeout_ms, const char *what)
{
  CommandWait wait = { node, command, pred, data, NULL };
  if (node != NULL && hark_test_wait_for(command_holds, &wait, timeout_ms))
    return wait.last;
  g_autofree char *json = wait.last != NULL ? hark_test_json(wait.last) : g_strdup("none");
  g_test_fail_printf("%s: not %s within %u ms; %s: %s", node != NULL ? node->name : "(none)", what,
                     timeout_ms, command, json);
  if (node != NULL)
    hark_test_node_show_logs(node->node);
  g_clear_pointer(&wait.last, json_object_unref);
  return NULL;
}

JsonObject *
lab_wait_overlay(LabNode *node, LabOverlayPredicate pred, gconstpointer data, guint timeout_ms,
                 const char *what)
{
  return lab_wait_command(node, "overlay", pred, data, timeout_ms, what);
}

gboolean
lab_overlay_is_attached(JsonObject *overlay, gconstpointer data)
{
  return g_strcmp0(json_object_get_string_member_with_default(overlay, "state", NULL),
                   "attached") == 0;
}

gboolean
lab_overlay_is_super(JsonObject *overlay, gconstpointer data)
{
  if (g_strcmp0(json_object_get_string_member_with_default(overlay, "role", NULL), "super") != 0)
    return FALSE;
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  guint verified = 0;
  for (guint i = 0; links != NULL && i < json_array_get_length(links); i++)
    verified += json_object_get_boolean_member_with_default(json_array_get_object_element(links, i),
                                                            "verified", FALSE);
  return verified >= GPOINTER_TO_UINT(data);
}

gboolean
lab_directory_is_published(JsonObject *directory, gconstpointer data)
{
  JsonObject *publish = json_object_get_object_member(directory, "publish");
  return publish != NULL && !json_object_get_null_member(publish, "published_at");
}

gboolean
lab_overlay_serves_user(JsonObject *overlay, gconstpointer user)
{
  JsonArray *clients = json_object_get_array_member(overlay, "clients");
  for (guint i = 0; clients != NULL && i < json_array_get_length(clients); i++) {
    JsonObject *client = json_array_get_object_element(clients, i);
    if (g_strcmp0(json_object_get_string_member_with_default(client, "user", NULL), user) == 0)
      return TRUE;
  }
  return FALSE;
}

static char *
login_server_config(const LabLoginOptions *options, guint16 port)
{
  const char *store = options->store != NULL ? options->store : "sqlite";
  g_autofree char *hosts =
    options->host != NULL ? g_strdup_printf("hosts = [ \"%s\" ];", options->host) : g_strdup("");
  return g_strdup_printf("node: { name = \"loginsrv\"; %s };\n"
                         "plugins: { load = (\n"
                         "  { name = \"%s\"; },\n"
                         "  { name = \"loginsrv\"; settings = {\n"
                         "      listen = \"127.0.0.1\"; port = %u; %s\n"
                         "      store = \"%s\"; store_options = { %s };\n"
                         "      %s }; },\n"
                         "  { name = \"ctl\"; }\n"
                         "); };\n",
                         options->node_settings != NULL ? options->node_settings : "", store, port,
                         hosts, store, options->store_options != NULL ? options->store_options : "",
                         options->settings != NULL ? options->settings : "");
}

/* The port in the server's "login server at https://127.0.0.1:PORT" line, 0 before. */
static guint16
logged_port(HarkTestNode *node)
{
  g_autofree char *log = hark_test_node_read_stderr(node);
  const char *line = log != NULL ? strstr(log, "login server at https://127.0.0.1:") : NULL;
  if (line == NULL)
    return 0;
  guint64 port = g_ascii_strtoull(line + strlen("login server at https://127.0.0.1:"), NULL, 10);
  return port <= G_MAXUINT16 ? (guint16)port : 0;
}

static gboolean
port_logged(gpointer node)
{
  return logged_port(node) != 0;
}

LabLoginServer *
lab_login_server_start(const LabLoginOptions *options)
{
  g_autoptr(LabLoginServer) server = g_new0(LabLoginServer, 1);
  g_autofree char *config = login_server_config(options, 0);
  server->node = lab_node_new("loginsrv", config);
  HarkTestNode *node = server->node->node;
  server->ca_path = g_build_filename(node->state_dir, "ca.pem", NULL);
  if (!lab_node_start(server->node))
    return NULL;
  /* loginsrv starts before ctl: the line is there once ctl answered; the wait only
   * covers a slow write of the log. */
  if (!hark_test_wait_for(port_logged, node, LAB_ANSWER_MS)) {
    g_test_fail_printf("the login server did not log the port it bound");
    return NULL;
  }
  server->port = logged_port(node);
  server->url = g_strdup_printf("https://%s:%u",
                                options->host != NULL ? options->host : "127.0.0.1", server->port);
  g_autofree char *bound = login_server_config(options, server->port);
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents(node->config_path, bound, -1, &error)) {
    g_test_fail_printf("cannot rewrite %s: %s", node->config_path, error->message);
    return NULL;
  }
  if (!g_file_test(server->ca_path, G_FILE_TEST_IS_REGULAR)) {
    g_test_fail_printf("the login server wrote no %s", server->ca_path);
    return NULL;
  }
  return g_steal_pointer(&server);
}

LabLoginServer *
lab_login_server_new(void)
{
  return lab_login_server_new_with("");
}

LabLoginServer *
lab_login_server_new_with(const char *settings)
{
  g_autofree char *all = g_strdup_printf("registrations_per_minute = 100000; "
                                         "hash_memory_kib = 64; hash_iterations = 1; %s",
                                         settings);
  LabLoginOptions options = { .host = "127.0.0.1", .settings = all };
  return lab_login_server_start(&options);
}

void
lab_login_server_free(LabLoginServer *server)
{
  if (server == NULL)
    return;
  lab_node_free(server->node);
  g_free(server->url);
  g_free(server->ca_path);
  g_free(server);
}

gboolean
lab_register_and_login(LabNode *node, const char *user)
{
  g_autofree char *password = g_strdup_printf("%s-password-1", user);
  g_autoptr(JsonObject) registered =
    lab_call(node, "register", lab_args("user", user, "password", password, NULL));
  if (registered == NULL)
    return FALSE;
  g_autoptr(JsonObject) login =
    lab_call(node, "login", lab_args("user", user, "password", password, NULL));
  return login != NULL;
}

char *
lab_client_config(const char *name, const char *sn_host, guint16 port, const LabLoginServer *login,
                  const char *extra)
{
  return lab_client_config_with_node(name, NULL, NULL, sn_host, port, login, extra);
}

char *
lab_client_config_with_node(const char *name, const char *node_extra, const char *plugins_extra,
                            const char *sn_host, guint16 port, const LabLoginServer *login,
                            const char *extra)
{
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; %s };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"search-loginsrv\"; }, { name = \"ctl\"; }%s ); };\n"
                         "network: { allow_loopback = true; join_race_delay_ms = 100;\n"
                         "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"udp\", "
                         "\"tcp\" ]; } ); };\n"
                         "login: { url = \"%s\"; ca = \"%s\"; };\n%s",
                         name, node_extra != NULL ? node_extra : "",
                         plugins_extra != NULL ? plugins_extra : "", sn_host, port, login->url,
                         login->ca_path, extra != NULL ? extra : "");
}

LabNode *
lab_client_start(const char *name, const char *config, const char *user, gboolean register_first,
                 guint timeout_ms)
{
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autoptr(JsonObject) attached =
    lab_wait_command(node, "overlay", lab_overlay_is_attached, NULL, timeout_ms, "attached");
  if (attached == NULL)
    return NULL;
  if (register_first && !lab_register_and_login(node, user))
    return NULL;
  if (!register_first) {
    g_autofree char *password = g_strdup_printf("%s-password-1", user);
    g_autoptr(JsonObject) login =
      lab_call(node, "login", lab_args("user", user, "password", password, NULL));
    if (login == NULL)
      return NULL;
  }
  g_autoptr(JsonObject) published =
    lab_wait_command(node, "directory", lab_directory_is_published, NULL, timeout_ms, "published");
  return published != NULL ? g_steal_pointer(&node) : NULL;
}

/* ---- messages ---------------------------------------------------------------------- */

GPtrArray *
lab_history(LabNode *node, const char *with)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  g_autoptr(JsonObject) answer = lab_ask(node, "history", lab_args("with", with, NULL));
  JsonObject *result = answer != NULL && json_object_has_member(answer, "result")
                         ? json_object_get_object_member(answer, "result")
                         : NULL;
  JsonArray *list = result != NULL ? json_object_get_array_member(result, "messages") : NULL;
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++)
    g_ptr_array_add(out, json_object_ref(json_array_get_object_element(list, i)));
  return out;
}

guint
lab_count_text(LabNode *node, const char *with, const char *text)
{
  g_autoptr(GPtrArray) messages = lab_history(node, with);
  guint n = 0;
  for (guint i = 0; i < messages->len; i++)
    if (g_strcmp0(json_object_get_string_member(messages->pdata[i], "text"), text) == 0)
      n++;
  return n;
}

gint64
lab_wait_text(LabNode *node, const char *with, const char *text, guint timeout_ms)
{
  gint64 start = g_get_monotonic_time();
  gint64 until = start + (gint64)hark_test_timeout(timeout_ms) * 1000;
  while (g_get_monotonic_time() < until) {
    if (lab_count_text(node, with, text) > 0)
      return (g_get_monotonic_time() - start) / 1000;
    g_usleep(50 * 1000);
  }
  g_test_fail_printf("%s: \"%s\" did not arrive in the conversation with %s within %u ms",
                     node->name, text, with, hark_test_timeout(timeout_ms));
  hark_test_node_show_logs(node->node);
  return -1;
}

JsonObject *
lab_send_text(LabNode *node, const char *to, const char *text)
{
  return lab_call(node, "msg", lab_args("to", to, "text", text, NULL));
}

/* ---- a TURN server ----------------------------------------------------------------- */

guint16
lab_free_port(void)
{
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  g_assert_true(g_socket_bind(socket, any, FALSE, NULL));
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address(socket, NULL);
  return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

guint16
lab_free_udp_tcp_port(void)
{
  for (int i = 0; i < 20; i++) {
    guint16 port = lab_free_port();
    g_autoptr(GSocket) tcp =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) any = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) address = g_inet_socket_address_new(any, port);
    if (g_socket_bind(tcp, address, FALSE, NULL))
      return port;
  }
  g_error("no port free for both UDP and TCP in 20 tries");
}

gboolean
lab_coturn_installed(void)
{
  g_autofree char *turnserver = g_find_program_in_path("turnserver");
  return turnserver != NULL;
}

/* One STUN Binding request (RFC 5389) to 127.0.0.1:port over type; TRUE when a Binding
 * success with its transaction id comes back within 500 ms. */
static gboolean
stun_binding_answered(GSocketType type, guint16 port)
{
  GSocketProtocol protocol =
    type == G_SOCKET_TYPE_STREAM ? G_SOCKET_PROTOCOL_TCP : G_SOCKET_PROTOCOL_UDP;
  g_autoptr(GSocket) socket = g_socket_new(G_SOCKET_FAMILY_IPV4, type, protocol, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new(loopback, port);
  if (socket == NULL || !g_socket_connect(socket, to, NULL, NULL))
    return FALSE;
  g_socket_set_timeout(socket, 1);
  guint8 request[20] = { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42 };
  for (gsize i = 8; i < sizeof request; i++)
    request[i] = (guint8)g_random_int();
  if (g_socket_send(socket, (const char *)request, sizeof request, NULL, NULL) !=
      (gssize)sizeof request)
    return FALSE;
  guint8 answer[512];
  gint64 until = g_get_monotonic_time() + 500 * 1000;
  gsize have = 0;
  while (
    have < 20 && g_get_monotonic_time() < until &&
    g_socket_condition_timed_wait(socket, G_IO_IN, until - g_get_monotonic_time(), NULL, NULL)) {
    gssize n = g_socket_receive(socket, (char *)answer + have, sizeof answer - have, NULL, NULL);
    if (n <= 0)
      return FALSE;
    have += (gsize)n;
  }
  return have >= 20 && answer[0] == 0x01 && answer[1] == 0x01 &&
         memcmp(answer + 4, request + 4, 16) == 0;
}

/* What coturn has answered on its port so far (one that exited answers nothing). */
typedef struct {
  guint16 port;
  gboolean udp, tcp;
} CoturnProbe;

static gboolean
coturn_answers(gpointer data)
{
  CoturnProbe *probe = data;
  probe->udp = probe->udp || stun_binding_answered(G_SOCKET_TYPE_DATAGRAM, probe->port);
  probe->tcp = probe->tcp || stun_binding_answered(G_SOCKET_TYPE_STREAM, probe->port);
  return probe->udp && probe->tcp;
}

static GSubprocess *
coturn_spawn(const char *turnserver, const char *dir, guint16 port, const char *secret,
             const char *log)
{
  g_autofree char *port_text = g_strdup_printf("%u", port);
  g_autofree char *secret_arg = g_strdup_printf("--static-auth-secret=%s", secret);
  g_autofree char *pid = g_build_filename(dir, "turnserver.pid", NULL);
  g_autofree char *db = g_build_filename(dir, "turndb", NULL);
  const char *argv[] = { turnserver,
                         "-n",
                         "--listening-ip",
                         "127.0.0.1",
                         "--relay-ip",
                         "127.0.0.1",
                         "--use-auth-secret",
                         secret_arg,
                         "--realm",
                         "hark",
                         "--no-tls",
                         "--no-dtls",
                         "--allow-loopback-peers",
                         "--no-cli",
                         "-p",
                         port_text,
                         "--pidfile",
                         pid,
                         "--userdb",
                         db,
                         "--log-file",
                         "stdout",
                         NULL };
  return hark_test_spawn(argv, log, log);
}

GSubprocess *
lab_coturn_start(const char *dir, const char *secret, guint16 *port)
{
  g_autofree char *turnserver = g_find_program_in_path("turnserver");
  if (turnserver == NULL)
    return NULL;
  g_autofree char *log = g_build_filename(dir, "turnserver.log", NULL);
  for (int attempt = 1; attempt <= LAB_COTURN_TRIES; attempt++) {
    *port = lab_free_udp_tcp_port();
    GSubprocess *coturn = coturn_spawn(turnserver, dir, *port, secret, log);
    CoturnProbe probe = { .port = *port };
    if (coturn != NULL && hark_test_wait_for(coturn_answers, &probe, LAB_COTURN_UP_MS))
      return coturn;
    g_test_message("coturn did not answer STUN on 127.0.0.1:%u (UDP and TCP) within %u ms "
                   "(try %d of %d)",
                   *port, hark_test_timeout(LAB_COTURN_UP_MS), attempt, LAB_COTURN_TRIES);
    hark_test_show_file("coturn", log);
    lab_coturn_stop(&coturn);
  }
  g_test_fail_printf("coturn never answered STUN on a port of its own (%d tries)",
                     LAB_COTURN_TRIES);
  return NULL;
}

void
lab_coturn_stop(GSubprocess **coturn)
{
  if (*coturn == NULL)
    return;
  g_subprocess_force_exit(*coturn);
  hark_test_wait_process(*coturn, 5000);
  g_clear_object(coturn);
}
