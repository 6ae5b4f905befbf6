/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* harness.c: temporary nodes, ctl clients and bounded waits for integration tests
 * (see harness.h). */
#include "test-files.h"
#include "harness.h"

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#define READY_TIMEOUT_MS 10000
#define EXIT_TIMEOUT_MS 10000

/* Details go to the log as they happen; the case's first failure is also what its "not ok"
 * line says (CI shows that line, not the log). */
static void fail(const char *format, ...) G_GNUC_PRINTF(1, 2);

static void
fail(const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_test_message("%s", message);
  if (!g_test_failed()) /* g_test_fail() would forget the first one's words */
    g_test_fail_printf("%s", message);
}

/* ---- waiting ---------------------------------------------------------------------------- */

static gint64
deadline_in(guint timeout_ms)
{
  return g_get_monotonic_time() + (gint64)hark_test_timeout(timeout_ms) * 1000;
}

static gboolean
flag_is_set(gpointer data)
{
  return *(gboolean *)data;
}

/* ---- files ---------------------------------------------------------------------------------- */

/* text into the log under "---- title (source) ----", a message per line; nothing when
 * it is empty. */
static void
show_text(const char *title, const char *source, const char *text)
{
  if (text == NULL || *text == '\0')
    return;
  g_test_message("---- %s (%s) ----", title, source);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (char **line = lines; *line != NULL; line++)
    if (**line != '\0')
      g_test_message("%s", *line);
}

void
hark_test_show_file(const char *title, const char *path)
{
  g_autofree char *text = NULL;
  if (g_file_get_contents(path, &text, NULL, NULL))
    show_text(title, path, text);
}

struct _HarkTestClient {
  GSocket *socket;
  GByteArray *input;
  guint last_id;
};

static HarkTestClient *client_new_unix(const char *path, GError **error);

/* ---- nodes ------------------------------------------------------------------------------ */

char *
hark_test_config_with_ctl(const char *node_name, const char *ctl_settings)
{
  return g_strdup_printf("node: { name = \"%s\"; };\n"
                         "plugins: { load = ( { name = \"ctl\"; settings = { %s }; } ); };\n",
                         node_name, ctl_settings ? ctl_settings : "");
}

HarkTestNode *
hark_test_node_new(const char *config_text)
{
  g_autoptr(GError) error = NULL;
  HarkTestNode *node = g_new0(HarkTestNode, 1);
  node->exit_status = -1;
  node->dir = g_dir_make_tmp("hark-test-XXXXXX", &error);
  g_assert_no_error(error);
  node->config_path = g_build_filename(node->dir, "hark.conf", NULL);
  node->state_dir = g_build_filename(node->dir, "state", NULL);
  node->socket_path = g_build_filename(node->state_dir, "ctl.sock", NULL);
  node->stdout_path = g_build_filename(node->dir, "stdout.log", NULL);
  node->stderr_path = g_build_filename(node->dir, "stderr.log", NULL);
  g_file_set_contents(node->config_path, config_text, -1, &error);
  g_assert_no_error(error);
  return node;
}

/* HARK_TEST_WRAPPER's words, then argv. */
static GPtrArray *
wrapped_argv(const char *const *argv)
{
  GPtrArray *full = g_ptr_array_new_with_free_func(g_free);
  const char *wrapper = g_getenv("HARK_TEST_WRAPPER");
  g_auto(GStrv) words = NULL;
  if (wrapper != NULL && *wrapper != '\0' && g_shell_parse_argv(wrapper, NULL, &words, NULL))
    for (char **w = words; *w != NULL; w++)
      g_ptr_array_add(full, g_strdup(*w));
  for (const char *const *a = argv; *a != NULL; a++)
    g_ptr_array_add(full, g_strdup(*a));
  g_ptr_array_add(full, NULL);
  return full;
}

static const char *
hark_bin(void)
{
  const char *bin = g_getenv("HARK_BIN");
  if (bin == NULL)
    g_error("HARK_BIN is not set (run the tests with `meson test`)");
  return bin;
}

/* In the child: if the test program dies (a crash, a sanitizer abort), its nodes get
 * SIGTERM instead of running on as orphans. */
static void
die_with_parent(gpointer data)
{
  prctl(PR_SET_PDEATHSIG, SIGTERM);
}

GSubprocess *
hark_test_spawn(const char *const *argv, const char *stdout_path, const char *stderr_path)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
  if (stdout_path != NULL)
    g_subprocess_launcher_set_stdout_file_path(launcher, stdout_path);
  if (stderr_path != NULL)
    g_subprocess_launcher_set_stderr_file_path(launcher, stderr_path);
  g_autoptr(GError) error = NULL;
  GSubprocess *process = g_subprocess_launcher_spawnv(launcher, argv, &error);
  if (process == NULL)
    fail("cannot run %s: %s", argv[0], error->message);
  return process;
}

gboolean
hark_test_node_spawn(HarkTestNode *node)
{
  const char *argv[] = { hark_bin(),    "run",           "-c", node->config_path,
                         "--state-dir", node->state_dir, NULL };
  g_autoptr(GPtrArray) full = wrapped_argv(argv);
  node->exit_status = -1;
  node->process =
    hark_test_spawn((const char *const *)full->pdata, node->stdout_path, node->stderr_path);
  return node->process != NULL;
}

static gboolean
can_connect(const char *path)
{
  g_autoptr(GSocket) probe = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
  return probe != NULL && g_socket_connect(probe, address, NULL, NULL);
}

static gboolean
process_gone(HarkTestNode *node)
{
  return node->process == NULL || g_subprocess_get_identifier(node->process) == NULL;
}

static gboolean
ready_or_gone(gpointer data)
{
  HarkTestNode *node = data;
  return process_gone(node) || can_connect(node->socket_path);
}

gboolean
hark_test_node_wait_ready(HarkTestNode *node)
{
  if (hark_test_wait_for(ready_or_gone, node, READY_TIMEOUT_MS) && !process_gone(node))
    return TRUE;
  fail("the node did not start serving %s", node->socket_path);
  hark_test_node_show_logs(node);
  return FALSE;
}

gboolean
hark_test_node_start(HarkTestNode *node)
{
  return hark_test_node_spawn(node) && hark_test_node_wait_ready(node);
}

gboolean
hark_test_node_wait_exit(HarkTestNode *node, guint timeout_ms)
{
  if (node->process == NULL)
    return TRUE;
  node->exit_status = hark_test_wait_process(node->process, timeout_ms);
  if (node->exit_status < 0)
    return FALSE;
  g_clear_object(&node->process);
  return TRUE;
}

char *
hark_test_node_read_stderr(HarkTestNode *node)
{
  char *text = NULL;
  if (!g_file_get_contents(node->stderr_path, &text, NULL, NULL))
    return g_strdup("");
  return text;
}

void
hark_test_node_show_logs(HarkTestNode *node)
{
  hark_test_show_file("node stdout", node->stdout_path);
  hark_test_show_file("node stderr", node->stderr_path);
}

typedef enum {
  READ_LINE,
  READ_TIMEOUT,
  READ_CLOSED
} ReadStatus;
static ReadStatus read_line(HarkTestClient *client, gint64 deadline, char **line);

/* Asks through ctl, as a frontend would; quietly FALSE when the node is not listening or
 * turns the connection away (a client of the test may not be noticed gone yet). */
static gboolean
try_shutdown(gpointer data)
{
  static const char request[] = "{\"command\": \"shutdown\"}\n";
  HarkTestNode *node = data;
  g_autoptr(HarkTestClient) client = client_new_unix(node->socket_path, NULL);
  g_autofree char *first = NULL;
  return client != NULL && read_line(client, deadline_in(1000), &first) == READ_LINE &&
         strstr(first, "\"hello\"") != NULL &&
         g_socket_send(client->socket, request, sizeof request - 1, NULL, NULL) > 0;
}

/* Where each thread of a node that does not answer is (gdb, when installed): a hang is
 * seldom seen twice, and its stacks say more than its log. */
static void
show_stacks(HarkTestNode *node)
{
  const char *pid = g_subprocess_get_identifier(node->process);
  g_autofree char *gdb = g_find_program_in_path("gdb");
  if (pid == NULL || gdb == NULL)
    return;
  const char *argv[] = {
    "timeout", "30", gdb, "-p", pid, "-batch", "-nx", "-ex", "thread apply all bt", NULL
  };
  g_autofree char *out = NULL;
  g_autofree char *source = g_strdup_printf("gdb -p %s", pid);
  if (g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                   NULL, NULL, &out, NULL, NULL, NULL))
    show_text("the node's threads", source, out);
}

/* A node still running at the end of a test is shut down the orderly way, so that it
 * must exit 0 (and a wrapper such as valgrind gets to report); SIGKILL when that fails. */
static void
stop_leftover(HarkTestNode *node)
{
  if (hark_test_wait_for(try_shutdown, node, READY_TIMEOUT_MS) &&
      hark_test_node_wait_exit(node, EXIT_TIMEOUT_MS)) {
    if (node->exit_status != 0)
      fail("the node exited with status %d after shutdown", node->exit_status);
    return;
  }
  fail("the node could not be shut down; killing it");
  show_stacks(node);
  g_subprocess_force_exit(node->process);
  hark_test_node_wait_exit(node, EXIT_TIMEOUT_MS);
}

void
hark_test_node_free(HarkTestNode *node)
{
  if (node == NULL)
    return;
  if (node->process != NULL)
    stop_leftover(node);
  if (g_test_failed())
    hark_test_node_show_logs(node);
  hark_test_remove_tree(node->dir);
  g_free(node->dir);
  g_free(node->config_path);
  g_free(node->state_dir);
  g_free(node->socket_path);
  g_free(node->stdout_path);
  g_free(node->stderr_path);
  g_free(node);
}

/* ---- ctl clients ------------------------------------------------------------------------ */

static HarkTestClient *
client_new(GSocketFamily family, GSocketAddress *address, GError **error)
{
  g_autoptr(GSocket) socket = g_socket_new(family, G_SOCKET_TYPE_STREAM, 0, error);
  if (socket == NULL || !g_socket_connect(socket, address, NULL, error))
    return NULL;
  HarkTestClient *client = g_new0(HarkTestClient, 1);
  client->socket = g_steal_pointer(&socket);
  client->input = g_byte_array_new();
  return client;
}

static HarkTestClient *
client_new_unix(const char *path, GError **error)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
  return client_new(G_SOCKET_FAMILY_UNIX, address, error);
}

HarkTestClient *
hark_test_client_connect_unix(const char *path)
{
  g_autoptr(GError) error = NULL;
  HarkTestClient *client = client_new_unix(path, &error);
  if (client == NULL)
    fail("cannot connect to %s: %s", path, error->message);
  return client;
}

HarkTestClient *
hark_test_client_connect_tcp(guint16 port)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, port);
  g_autoptr(GError) error = NULL;
  HarkTestClient *client = client_new(G_SOCKET_FAMILY_IPV4, address, &error);
  if (client == NULL)
    fail("cannot connect to 127.0.0.1:%u: %s", port, error->message);
  return client;
}

gboolean
hark_test_client_send_raw(HarkTestClient *client, const char *data, gsize length,
                          gboolean close_write)
{
  g_autoptr(GError) error = NULL;
  for (gsize done = 0; done < length;) {
    gssize sent = g_socket_send(client->socket, data + done, length - done, NULL, &error);
    if (sent < 0) {
      fail("cannot send to the node: %s", error->message);
      return FALSE;
    }
    done += sent;
  }
  if (close_write && !g_socket_shutdown(client->socket, FALSE, TRUE, &error)) {
    fail("cannot shut down the connection: %s", error->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
hark_test_client_send_line(HarkTestClient *client, const char *line)
{
  g_autofree char *text = g_strconcat(line, "\n", NULL);
  return hark_test_client_send_raw(client, text, strlen(text), FALSE);
}

char *
hark_test_json(JsonObject *object)
{
  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
  return json_to_string(root, FALSE);
}

gboolean
hark_test_client_send(HarkTestClient *client, const char *id, const char *command, JsonObject *args)
{
  g_autoptr(JsonObject) request = json_object_new();
  json_object_set_string_member(request, "id", id);
  json_object_set_string_member(request, "command", command);
  if (args != NULL)
    json_object_set_object_member(request, "args", json_object_ref(args));
  g_autofree char *line = hark_test_json(request);
  return hark_test_client_send_line(client, line);
}

/* The next line (newline removed) into *line, by deadline (monotonic µs). */
static ReadStatus
read_line(HarkTestClient *client, gint64 deadline, char **line)
{
  for (;;) {
    guint8 *newline =
      client->input->len ? memchr(client->input->data, '\n', client->input->len) : NULL;
    if (newline != NULL) {
      gsize length = newline - client->input->data;
      *line = g_strndup((const char *)client->input->data, length);
      g_byte_array_remove_range(client->input, 0, length + 1);
      return READ_LINE;
    }
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0 || !g_socket_condition_timed_wait(client->socket, G_IO_IN, left, NULL, NULL))
      return READ_TIMEOUT;
    char buffer[65536];
    gssize received = g_socket_receive(client->socket, buffer, sizeof buffer, NULL, NULL);
    if (received <= 0)
      return READ_CLOSED; /* end of input, or reset by the node */
    g_byte_array_append(client->input, (const guint8 *)buffer, received);
  }
}

static JsonObject *
parse_object(const char *line)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) error = NULL;
  if (!json_parser_load_from_data(parser, line, -1, &error)) {
    fail("the node sent a line that is not JSON (%s): %s", error->message, line);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    fail("the node sent a line that is not an object: %s", line);
    return NULL;
  }
  return json_object_ref(json_node_get_object(root));
}

static JsonObject *
read_object(HarkTestClient *client, gint64 deadline)
{
  g_autofree char *line = NULL;
  switch (read_line(client, deadline, &line)) {
  case READ_LINE:
    return parse_object(line);
  case READ_TIMEOUT:
    fail("no line from the node in time");
    return NULL;
  case READ_CLOSED:
  default:
    fail("the node closed the connection");
    return NULL;
  }
}

JsonObject *
hark_test_client_read(HarkTestClient *client, guint timeout_ms)
{
  return read_object(client, deadline_in(timeout_ms));
}

static gboolean
is_event(JsonObject *line)
{
  return json_object_has_member(line, "event") && !json_object_has_member(line, "id");
}

static gboolean
has_id(JsonObject *line, const char *id)
{
  JsonNode *node = json_object_get_member(line, "id");
  return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
         json_node_get_value_type(node) == G_TYPE_STRING &&
         g_str_equal(json_node_get_string(node), id);
}

JsonObject *
hark_test_client_wait_response(HarkTestClient *client, const char *id, GPtrArray *events,
                               guint timeout_ms)
{
  gint64 deadline = deadline_in(timeout_ms);
  for (;;) {
    g_autoptr(JsonObject) line = read_object(client, deadline);
    if (line == NULL)
      return NULL;
    if (has_id(line, id))
      return g_steal_pointer(&line);
    if (!is_event(line)) {
      g_autofree char *text = hark_test_json(line);
      fail("waiting for the answer to '%s', got %s", id, text);
      return NULL;
    }
    if (events != NULL)
      g_ptr_array_add(events, g_steal_pointer(&line));
  }
}

JsonObject *
hark_test_client_wait_event(HarkTestClient *client, const char *name, guint timeout_ms)
{
  gint64 deadline = deadline_in(timeout_ms);
  for (;;) {
    g_autoptr(JsonObject) line = read_object(client, deadline);
    if (line == NULL)
      return NULL;
    if (is_event(line) &&
        g_strcmp0(json_object_get_string_member_with_default(line, "event", NULL), name) == 0)
      return g_steal_pointer(&line);
  }
}

JsonObject *
hark_test_client_call(HarkTestClient *client, const char *command, JsonObject *args)
{
  g_autofree char *id = g_strdup_printf("call-%u", ++client->last_id);
  if (!hark_test_client_send(client, id, command, args))
    return NULL;
  return hark_test_client_wait_response(client, id, NULL, 5000);
}

gboolean
hark_test_client_wait_closed(HarkTestClient *client, guint timeout_ms)
{
  gint64 deadline = deadline_in(timeout_ms);
  for (;;) {
    g_autofree char *line = NULL;
    ReadStatus status = read_line(client, deadline, &line);
    if (status != READ_LINE)
      return status == READ_CLOSED;
  }
}

void
hark_test_client_free(HarkTestClient *client)
{
  if (client == NULL)
    return;
  g_socket_close(client->socket, NULL);
  g_object_unref(client->socket);
  g_byte_array_unref(client->input);
  g_free(client);
}

/* ---- answers -------------------------------------------------------------------------------- */

JsonObject *
hark_test_answer_result(JsonObject *answer)
{
  JsonNode *result = json_object_get_member(answer, "result");
  if (json_object_get_boolean_member_with_default(answer, "ok", FALSE) && result != NULL &&
      JSON_NODE_HOLDS_OBJECT(result))
    return json_node_get_object(result);
  g_autofree char *text = hark_test_json(answer);
  fail("expected an ok answer with a result object, got %s", text);
  return NULL;
}

const char *
hark_test_answer_error_code(JsonObject *answer)
{
  JsonNode *error = json_object_get_member(answer, "error");
  if (!json_object_get_boolean_member_with_default(answer, "ok", TRUE) && error != NULL &&
      JSON_NODE_HOLDS_OBJECT(error))
    return json_object_get_string_member_with_default(json_node_get_object(error), "code", "");
  g_autofree char *text = hark_test_json(answer);
  fail("expected an error answer, got %s", text);
  return NULL;
}

/* ---- other programs ---------------------------------------------------------------------- */

typedef struct {
  gboolean done;
  char *out;
  char *err;
} Communication;

static void
on_communicated(GObject *source, GAsyncResult *result, gpointer data)
{
  Communication *c = data;
  g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), result, &c->out, &c->err, NULL);
  c->done = TRUE;
}

int
hark_test_run(const char *const *argv, char **out, char **err, guint timeout_ms)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) process = g_subprocess_newv(
    argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  if (process == NULL) {
    fail("cannot run %s: %s", argv[0], error->message);
    return -1;
  }
  /* Heap: if the program hangs, the callback comes after we return. */
  Communication *c = g_new0(Communication, 1);
  g_subprocess_communicate_utf8_async(process, NULL, NULL, on_communicated, c);
  if (!hark_test_wait_for(flag_is_set, &c->done, timeout_ms)) {
    fail("%s did not finish within %u ms", argv[0], hark_test_timeout(timeout_ms));
    g_subprocess_force_exit(process);
    return -1;
  }
  int status = g_subprocess_get_if_exited(process) ? g_subprocess_get_exit_status(process) : -1;
  if (out != NULL)
    *out = g_steal_pointer(&c->out);
  if (err != NULL)
    *err = g_steal_pointer(&c->err);
  g_free(c->out);
  g_free(c->err);
  g_free(c);
  return status;
}
