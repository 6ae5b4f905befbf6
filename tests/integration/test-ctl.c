/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-ctl.c: the ctl frontend and `hark ctl`, against real `hark run` processes.
 *
 * Each case starts its own node in its own temporary directory (harness.c), so the
 * cases are independent and can run in parallel with other test programs. */
#include "harness.h"
#include "test-isolate.h"

#include <gio/gunixsocketaddress.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ANSWER_MS 5000
#define EXIT_MS 10000
#define TOOL_MS 20000

/* ---- helpers ---------------------------------------------------------------------------- */

static HarkTestNode *
start_node(const char *name, const char *ctl_settings)
{
  g_autofree char *config = hark_test_config_with_ctl(name, ctl_settings);
  HarkTestNode *node = hark_test_node_new(config);
  if (!hark_test_node_start(node)) {
    hark_test_node_free(node);
    return NULL;
  }
  return node;
}

/* A client whose hello has been read (and checked). */
static HarkTestClient *
connect_client(HarkTestNode *node)
{
  HarkTestClient *client = hark_test_client_connect_unix(node->socket_path);
  if (client == NULL)
    return NULL;
  g_autoptr(JsonObject) hello = hark_test_client_read(client, ANSWER_MS);
  if (hello == NULL ||
      g_strcmp0(json_object_get_string_member_with_default(hello, "event", NULL), "hello") != 0) {
    g_test_fail_printf("the first line was not the hello event");
    hark_test_client_free(client);
    return NULL;
  }
  return client;
}

static JsonObject *
args_string(const char *name, const char *value)
{
  JsonObject *args = json_object_new();
  json_object_set_string_member(args, name, value);
  return args;
}

/* Sends a raw line and returns the error code of the answer (which must come). */
static char *
error_code_for_line(HarkTestClient *client, const char *line, JsonNode **id)
{
  if (!hark_test_client_send_line(client, line))
    return NULL;
  g_autoptr(JsonObject) answer = hark_test_client_read(client, ANSWER_MS);
  if (answer == NULL)
    return NULL;
  if (id != NULL)
    *id = json_node_copy(json_object_get_member(answer, "id"));
  return g_strdup(hark_test_answer_error_code(answer));
}

static gboolean
is_hex64(const char *text)
{
  if (text == NULL || strlen(text) != 64)
    return FALSE;
  for (const char *p = text; *p; p++)
    if (!g_ascii_isxdigit(*p))
      return FALSE;
  return TRUE;
}

static const char *
fingerprint_of(JsonObject *state)
{
  JsonObject *identity = json_object_get_object_member(state, "identity");
  return identity ? json_object_get_string_member_with_default(identity, "fingerprint", NULL)
                  : NULL;
}

static char *
fetch_fingerprint(HarkTestNode *node)
{
  g_autoptr(HarkTestClient) client = connect_client(node);
  if (client == NULL)
    return NULL;
  g_autoptr(JsonObject) answer = hark_test_client_call(client, "state", NULL);
  JsonObject *state = answer ? hark_test_answer_result(answer) : NULL;
  return state ? g_strdup(fingerprint_of(state)) : NULL;
}

static gboolean
shutdown_node(HarkTestNode *node)
{
  g_autoptr(HarkTestClient) client = connect_client(node);
  if (client == NULL)
    return FALSE;
  g_autoptr(JsonObject) answer = hark_test_client_call(client, "shutdown", NULL);
  if (answer == NULL || hark_test_answer_result(answer) == NULL)
    return FALSE;
  if (!hark_test_node_wait_exit(node, EXIT_MS)) {
    g_test_fail_printf("the node did not exit after shutdown");
    return FALSE;
  }
  return TRUE;
}

static JsonObject *
find_by_name(JsonArray *array, const char *name)
{
  for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
    JsonObject *o = json_array_get_object_element(array, i);
    if (g_strcmp0(json_object_get_string_member_with_default(o, "name", NULL), name) == 0)
      return o;
  }
  return NULL;
}

static gboolean
has_registration(JsonObject *plugin, const char *kind, const char *name)
{
  JsonArray *registered = json_object_get_array_member(plugin, "registered");
  for (guint i = 0; registered != NULL && i < json_array_get_length(registered); i++) {
    JsonObject *r = json_array_get_object_element(registered, i);
    if (g_strcmp0(json_object_get_string_member_with_default(r, "kind", NULL), kind) == 0 &&
        g_strcmp0(json_object_get_string_member_with_default(r, "name", NULL), name) == 0)
      return TRUE;
  }
  return FALSE;
}

/* `$HARK_BIN ctl ARGS...` against node (its config and state dir first). */
static int
run_ctl_tool(HarkTestNode *node, const char *const *args, char **out, char **err)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer)g_getenv("HARK_BIN"));
  g_ptr_array_add(argv, "ctl");
  if (node != NULL) {
    g_ptr_array_add(argv, "-c");
    g_ptr_array_add(argv, node->config_path);
    g_ptr_array_add(argv, "--state-dir");
    g_ptr_array_add(argv, node->state_dir);
  }
  for (const char *const *a = args; *a != NULL; a++)
    g_ptr_array_add(argv, (gpointer)*a);
  g_ptr_array_add(argv, NULL);
  return hark_test_run((const char *const *)argv->pdata, out, err, TOOL_MS);
}

static JsonObject *
parse_object(const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  if (text == NULL || !json_parser_load_from_data(parser, text, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
    g_test_fail_printf("not a JSON object: %s", text ? text : "(nothing)");
    return NULL;
  }
  return json_object_ref(json_node_get_object(json_parser_get_root(parser)));
}

/* ---- the protocol ------------------------------------------------------------------------ */

static void
test_hello(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = hark_test_client_connect_unix(node->socket_path);
  HARK_REQUIRE(client != NULL);
  g_autoptr(JsonObject) hello = hark_test_client_read(client, ANSWER_MS);
  HARK_REQUIRE(hello != NULL);
  g_assert_cmpstr(json_object_get_string_member_with_default(hello, "event", NULL), ==, "hello");
  g_assert_cmpint(json_object_get_int_member_with_default(hello, "protocol", 0), ==, 1);
  g_assert_cmpstr(json_object_get_string_member_with_default(hello, "node", NULL), ==, "alice");
  g_autoptr(JsonObject) answer = hark_test_client_call(client, "version", NULL);
  JsonObject *version = answer ? hark_test_answer_result(answer) : NULL;
  HARK_REQUIRE(version != NULL);
  g_assert_cmpstr(json_object_get_string_member_with_default(hello, "version", NULL), ==,
                  json_object_get_string_member_with_default(version, "version", "?"));
}

static void
test_state(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  g_autoptr(JsonObject) answer = hark_test_client_call(client, "state", NULL);
  JsonObject *state = answer ? hark_test_answer_result(answer) : NULL;
  HARK_REQUIRE(state != NULL);
  JsonObject *node_info = json_object_get_object_member(state, "node");
  HARK_REQUIRE(node_info != NULL);
  g_assert_cmpstr(json_object_get_string_member_with_default(node_info, "name", NULL), ==, "alice");
  g_assert_true(is_hex64(fingerprint_of(state)));
  JsonObject *ctl = find_by_name(json_object_get_array_member(state, "plugins"), "ctl");
  HARK_REQUIRE(ctl != NULL);
  g_assert_true(has_registration(ctl, "frontend", "ctl"));
}

static void
test_identity_survives_restart(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *first = fetch_fingerprint(node);
  HARK_REQUIRE(is_hex64(first));
  HARK_REQUIRE(shutdown_node(node));
  HARK_REQUIRE(hark_test_node_start(node));
  g_autofree char *second = fetch_fingerprint(node);
  g_assert_cmpstr(first, ==, second);
}

static void
test_version(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  g_autoptr(JsonObject) answer = hark_test_client_call(client, "version", NULL);
  JsonObject *version = answer ? hark_test_answer_result(answer) : NULL;
  HARK_REQUIRE(version != NULL);
  g_assert_nonnull(json_object_get_string_member_with_default(version, "version", NULL));
  g_assert_nonnull(json_object_get_string_member_with_default(version, "plugin_abi", NULL));
  g_assert_cmpint(json_object_get_int_member_with_default(version, "wire_version", 0), >, 0);
}

static void
test_command_with_args(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  g_autoptr(JsonObject) args = args_string("command", "state");
  g_autoptr(JsonObject) answer = hark_test_client_call(client, "help", args);
  JsonObject *result = answer ? hark_test_answer_result(answer) : NULL;
  HARK_REQUIRE(result != NULL);
  JsonArray *commands = json_object_get_array_member(result, "commands");
  HARK_REQUIRE(commands != NULL);
  g_assert_cmpuint(json_array_get_length(commands), ==, 1);
  g_assert_nonnull(find_by_name(commands, "state"));

  g_autoptr(JsonObject) all_answer = hark_test_client_call(client, "help", NULL);
  JsonObject *all = all_answer ? hark_test_answer_result(all_answer) : NULL;
  HARK_REQUIRE(all != NULL);
  const char *builtins[] = { "help", "version", "state", "plugins", "shutdown" };
  for (gsize i = 0; i < G_N_ELEMENTS(builtins); i++)
    g_assert_nonnull(find_by_name(json_object_get_array_member(all, "commands"), builtins[i]));
}

static void
test_unknown_command(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  g_autoptr(JsonObject) answer = hark_test_client_call(client, "nosuch", NULL);
  HARK_REQUIRE(answer != NULL);
  g_assert_cmpstr(hark_test_answer_error_code(answer), ==, "unknown-command");
}

static void
test_bad_arguments(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  const char *const lines[] = {
    "{\"id\": \"wrong-type\", \"command\": \"help\", \"args\": {\"command\": 5}}",
    "{\"id\": \"unknown-arg\", \"command\": \"help\", \"args\": {\"nosuch\": \"x\"}}",
    "{\"id\": \"no-args-taken\", \"command\": \"state\", \"args\": {\"x\": 1}}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(lines); i++) {
    g_autofree char *code = error_code_for_line(client, lines[i], NULL);
    g_assert_cmpstr(code, ==, "bad-arguments");
  }
}

static void
test_bad_request_keeps_connection(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  const struct {
    const char *line;
    const char *id; /* NULL: the answer's id is null */
  } cases[] = {
    { "this is not json", NULL },
    { "[1, 2, 3]", NULL },
    { "\"a string\"", NULL },
    { "{\"id\": \"m\"}", "m" },
    { "{\"id\": \"n\", \"command\": 7}", "n" },
    { "{\"id\": \"a\", \"command\": \"state\", \"args\": [1]}", "a" },
    { "{\"id\": {\"x\": 1}, \"command\": \"state\"}", NULL },
    { "{\"id\": \"u\", \"command\": \"state\"} trailing", NULL },
    { "\xff\xfe{}", NULL },
    /* Escapes json-glib turns into bytes that are not UTF-8: the answer must still be
     * UTF-8 JSON, and nothing of them reaches a command or comes back as the id. */
    { "{\"id\": \"\\ud800\", \"command\": \"state\"}", NULL },
    { "{\"id\": \"s\", \"command\": \"\\ud800\\n\"}", NULL },
    { "{\"id\": \"t\", \"command\": \"state\", \"args\": {\"\\udfff\\t\": 1}}", NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(JsonNode) id = NULL;
    g_autofree char *code = error_code_for_line(client, cases[i].line, &id);
    HARK_REQUIRE(code != NULL && id != NULL);
    g_assert_cmpstr(code, ==, "bad-request");
    if (cases[i].id == NULL)
      g_assert_true(JSON_NODE_HOLDS_NULL(id));
    else
      g_assert_cmpstr(json_node_get_string(id), ==, cases[i].id);
  }
  /* Still usable: a request with a numeric id, and one without any id. */
  HARK_REQUIRE(hark_test_client_send_line(client, "{\"id\": 42, \"command\": \"version\"}"));
  g_autoptr(JsonObject) numeric = hark_test_client_read(client, ANSWER_MS);
  HARK_REQUIRE(numeric != NULL && hark_test_answer_result(numeric) != NULL);
  g_assert_cmpint(json_object_get_int_member_with_default(numeric, "id", 0), ==, 42);
  HARK_REQUIRE(hark_test_client_send_line(client, "{\"command\": \"version\"}"));
  g_autoptr(JsonObject) anonymous = hark_test_client_read(client, ANSWER_MS);
  HARK_REQUIRE(anonymous != NULL && hark_test_answer_result(anonymous) != NULL);
  g_assert_true(json_object_get_null_member(anonymous, "id"));
}

static void
test_last_line_without_newline(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  const char request[] = "{\"id\": \"last\", \"command\": \"version\"}";
  HARK_REQUIRE(hark_test_client_send_raw(client, request, strlen(request), TRUE));
  g_autoptr(JsonObject) answer = hark_test_client_wait_response(client, "last", NULL, ANSWER_MS);
  HARK_REQUIRE(answer != NULL);
  g_assert_nonnull(hark_test_answer_result(answer));
  g_assert_true(hark_test_client_wait_closed(client, ANSWER_MS));
}

static void
test_long_line_closes_connection(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", "max_line = 1024;");
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) client = connect_client(node);
  HARK_REQUIRE(client != NULL);
  /* Just under the limit is fine (padding is JSON whitespace). */
  g_autofree char *padding = g_strnfill(900, ' ');
  g_autofree char *fits =
    g_strdup_printf("{\"id\": \"fits\", \"command\": \"version\"%s}", padding);
  HARK_REQUIRE(hark_test_client_send_line(client, fits));
  g_autoptr(JsonObject) fits_answer =
    hark_test_client_wait_response(client, "fits", NULL, ANSWER_MS);
  HARK_REQUIRE(fits_answer != NULL);
  g_assert_nonnull(hark_test_answer_result(fits_answer));

  g_autofree char *long_line = g_strnfill(2000, 'x');
  g_autofree char *code = error_code_for_line(client, long_line, NULL);
  g_assert_cmpstr(code, ==, "bad-request");
  g_assert_true(hark_test_client_wait_closed(client, ANSWER_MS));

  g_autoptr(HarkTestClient) next = connect_client(node);
  HARK_REQUIRE(next != NULL);
  g_autoptr(JsonObject) answer = hark_test_client_call(next, "version", NULL);
  HARK_REQUIRE(answer != NULL);
  g_assert_nonnull(hark_test_answer_result(answer));
}

static void
test_shutdown_reaches_every_client(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) a = connect_client(node);
  g_autoptr(HarkTestClient) b = connect_client(node);
  HARK_REQUIRE(a != NULL && b != NULL);
  HARK_REQUIRE(hark_test_client_send(b, "bye", "shutdown", NULL));
  g_autoptr(GPtrArray) events_before =
    g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  g_autoptr(JsonObject) answer = hark_test_client_wait_response(b, "bye", events_before, ANSWER_MS);
  HARK_REQUIRE(answer != NULL);
  g_assert_nonnull(hark_test_answer_result(answer));
  g_assert_cmpuint(events_before->len, ==, 0); /* the answer comes before node-stopping */
  g_autoptr(JsonObject) stopping_b = hark_test_client_wait_event(b, "node-stopping", ANSWER_MS);
  g_assert_nonnull(stopping_b);
  g_autoptr(JsonObject) stopping_a = hark_test_client_wait_event(a, "node-stopping", ANSWER_MS);
  g_assert_nonnull(stopping_a);
  g_assert_true(hark_test_client_wait_closed(a, ANSWER_MS));
  HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));
  g_assert_cmpint(node->exit_status, ==, 0);
  g_assert_false(g_file_test(node->socket_path, G_FILE_TEST_EXISTS));
}

static void
test_socket_is_private(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  struct stat st;
  HARK_REQUIRE(lstat(node->socket_path, &st) == 0);
  g_assert_true(S_ISSOCK(st.st_mode));
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

/* A socket file left behind by a node that died: bound, never unlinked. */
static void
make_stale_socket(const char *path)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  g_strlcpy(address.sun_path, path, sizeof address.sun_path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  g_assert_cmpint(bind(fd, (struct sockaddr *)&address, sizeof address), ==, 0);
  close(fd);
}

static void
test_stale_socket_is_replaced(void)
{
  g_autofree char *config = hark_test_config_with_ctl("alice", NULL);
  g_autoptr(HarkTestNode) node = hark_test_node_new(config);
  HARK_REQUIRE(g_mkdir_with_parents(node->state_dir, 0700) == 0);
  make_stale_socket(node->socket_path);
  HARK_REQUIRE(hark_test_node_start(node));
  g_autoptr(HarkTestClient) client = connect_client(node);
  g_assert_nonnull(client);
}

static void
test_second_node_on_same_socket_fails(void)
{
  g_autoptr(HarkTestNode) first = start_node("alice", NULL);
  HARK_REQUIRE(first != NULL);
  g_autofree char *settings = g_strdup_printf("socket = \"%s\";", first->socket_path);
  g_autofree char *config = hark_test_config_with_ctl("bob", settings);
  g_autoptr(HarkTestNode) second = hark_test_node_new(config);
  HARK_REQUIRE(hark_test_node_spawn(second));
  HARK_REQUIRE(hark_test_node_wait_exit(second, EXIT_MS));
  g_assert_cmpint(second->exit_status, !=, 0);
  g_autofree char *log = hark_test_node_read_stderr(second);
  g_autofree char *expected =
    g_strdup_printf("another hark node is serving ctl at %s", first->socket_path);
  g_assert_nonnull(strstr(log, expected));
  g_autoptr(HarkTestClient) client = connect_client(first); /* the first one is untouched */
  g_assert_nonnull(client);
}

static void
test_bad_setting_is_refused(void)
{
  g_autofree char *config = hark_test_config_with_ctl("alice", "tcp_port = \"high\";");
  g_autoptr(HarkTestNode) node = hark_test_node_new(config);
  HARK_REQUIRE(hark_test_node_spawn(node));
  HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));
  g_assert_cmpint(node->exit_status, !=, 0);
  g_autofree char *log = hark_test_node_read_stderr(node);
  g_assert_nonnull(strstr(log, "tcp_port"));
}

typedef struct {
  HarkTestNode *node;
  JsonObject *first_line;
} Attempt;

/* The server notices a closed client asynchronously: retry until a slot is free. */
static gboolean
got_hello(gpointer data)
{
  Attempt *attempt = data;
  g_autoptr(HarkTestClient) client = hark_test_client_connect_unix(attempt->node->socket_path);
  if (client == NULL)
    return FALSE;
  g_clear_pointer(&attempt->first_line, json_object_unref);
  attempt->first_line = hark_test_client_read(client, ANSWER_MS);
  return attempt->first_line != NULL && json_object_has_member(attempt->first_line, "event");
}

static void
test_max_clients(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", "max_clients = 2;");
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestClient) a = connect_client(node);
  g_autoptr(HarkTestClient) b = connect_client(node);
  HARK_REQUIRE(a != NULL && b != NULL);
  g_autoptr(HarkTestClient) c = hark_test_client_connect_unix(node->socket_path);
  HARK_REQUIRE(c != NULL);
  g_autoptr(JsonObject) refusal = hark_test_client_read(c, ANSWER_MS);
  HARK_REQUIRE(refusal != NULL);
  g_assert_cmpstr(hark_test_answer_error_code(refusal), ==, "too-many-clients");
  g_assert_true(hark_test_client_wait_closed(c, ANSWER_MS));

  g_clear_pointer(&a, hark_test_client_free);
  Attempt attempt = { node, NULL };
  g_assert_true(hark_test_wait_for(got_hello, &attempt, ANSWER_MS));
  g_clear_pointer(&attempt.first_line, json_object_unref);
}

static gboolean
stderr_mentions_slow_reader(gpointer data)
{
  g_autofree char *log = hark_test_node_read_stderr(data);
  return strstr(log, "does not read its output") != NULL;
}

/* A client that sends and never reads: its answers pile up until the node drops it
 * (1 MiB), while the node goes on serving others. Raw socket: our sends may fail once
 * the node has let go. */
static void
test_slow_reader_is_dropped(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(GSocket) greedy = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new(node->socket_path);
  HARK_REQUIRE(g_socket_connect(greedy, address, NULL, NULL));
  g_autoptr(GString) requests = g_string_new(NULL);
  for (int i = 0; i < 4000; i++)
    g_string_append(requests, "{\"command\": \"state\"}\n");
  g_socket_set_timeout(greedy, hark_test_timeout(10000) / 1000);
  for (gsize sent = 0; sent < requests->len;) {
    gssize n = g_socket_send(greedy, requests->str + sent, requests->len - sent, NULL, NULL);
    if (n <= 0)
      break;
    sent += n;
  }
  g_assert_true(hark_test_wait_for(stderr_mentions_slow_reader, node, ANSWER_MS));
  g_autoptr(HarkTestClient) other = connect_client(node);
  HARK_REQUIRE(other != NULL);
  g_autoptr(JsonObject) answer = hark_test_client_call(other, "version", NULL);
  HARK_REQUIRE(answer != NULL);
  g_assert_nonnull(hark_test_answer_result(answer));
}

/* There is no TCP listener: any local user could connect to one and shut the node down.
 * A configuration that asks for one is refused, and nothing answers on the port. */
static void
test_tcp_port_refused(void)
{
  /* Held by the test, so that nothing else answers there either. */
  guint16 port = 0;
  g_autoptr(GSocket) held = hark_test_closed_port(&port);
  HARK_REQUIRE(held != NULL);
  g_autofree char *settings = g_strdup_printf("tcp_port = %u;", port);
  g_autofree char *config = hark_test_config_with_ctl("alice", settings);
  g_autoptr(HarkTestNode) node = hark_test_node_new(config);
  HARK_REQUIRE(hark_test_node_spawn(node));
  HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));
  g_assert_cmpint(node->exit_status, !=, 0);
  g_autofree char *log = hark_test_node_read_stderr(node);
  g_assert_nonnull(strstr(log, "'tcp_port' is no longer supported"));
  g_autoptr(GSocket) probe =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, port);
  g_assert_false(g_socket_connect(probe, address, NULL, NULL));
}

/* ---- `hark ctl` ------------------------------------------------------------------------------ */

static void
test_tool_state(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *expected = fetch_fingerprint(node);
  HARK_REQUIRE(expected != NULL);
  g_autofree char *out = NULL, *err = NULL;
  const char *args[] = { "state", NULL };
  g_assert_cmpint(run_ctl_tool(node, args, &out, &err), ==, 0);
  g_autoptr(JsonObject) state = parse_object(out);
  HARK_REQUIRE(state != NULL);
  g_assert_cmpstr(fingerprint_of(state), ==, expected);
}

static void
test_tool_words_and_json(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *out = NULL, *err = NULL;
  const char *args[] = { "--json", "help", "command=version", NULL };
  g_assert_cmpint(run_ctl_tool(node, args, &out, &err), ==, 0);
  HARK_REQUIRE(out != NULL);
  g_assert_cmpint(strchr(out, '\n') - out, ==, (gssize)strlen(out) - 1); /* one line */
  g_autoptr(JsonObject) result = parse_object(out);
  HARK_REQUIRE(result != NULL);
  JsonArray *commands = json_object_get_array_member(result, "commands");
  HARK_REQUIRE(commands != NULL);
  g_assert_cmpuint(json_array_get_length(commands), ==, 1);
  g_assert_nonnull(find_by_name(commands, "version"));
}

static void
test_tool_unknown_command(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *out = NULL, *err = NULL;
  const char *args[] = { "nosuch", NULL };
  g_assert_cmpint(run_ctl_tool(node, args, &out, &err), ==, 1);
  g_assert_true(g_str_has_prefix(err, "hark ctl: unknown-command: "));
  g_free(g_steal_pointer(&err));
  const char *bad_words[] = { "help", "state", "extra", NULL };
  g_assert_cmpint(run_ctl_tool(node, bad_words, NULL, &err), ==, 1);
  g_assert_true(g_str_has_prefix(err, "hark ctl: bad-arguments: "));
}

static void
test_tool_cannot_connect(void)
{
  g_autofree char *err = NULL;
  const char *args[] = { "--socket", "/nonexistent", "state", NULL };
  g_assert_cmpint(run_ctl_tool(NULL, args, NULL, &err), ==, 2);
  g_assert_nonnull(strstr(err, "/nonexistent"));
  g_assert_nonnull(strstr(err, "hark run"));
}

static gboolean
file_contains_hello(gpointer path)
{
  g_autofree char *text = NULL;
  return g_file_get_contents(path, &text, NULL, NULL) && strstr(text, "\"hello\"") != NULL;
}

static void
test_tool_watch(void)
{
  g_autoptr(HarkTestNode) node = start_node("alice", NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *out_path = g_build_filename(node->dir, "watch.out", NULL);
  const char *argv[] = { g_getenv("HARK_BIN"),
                         "ctl",
                         "-c",
                         node->config_path,
                         "--state-dir",
                         node->state_dir,
                         "--json",
                         "--watch",
                         NULL };
  g_autoptr(GSubprocess) watch = hark_test_spawn(argv, out_path, NULL);
  HARK_REQUIRE(watch != NULL);
  HARK_REQUIRE(hark_test_wait_for(file_contains_hello, out_path, ANSWER_MS));
  HARK_REQUIRE(shutdown_node(node));
  g_assert_cmpint(hark_test_wait_process(watch, EXIT_MS), ==, 0);
  g_autofree char *text = NULL;
  HARK_REQUIRE(g_file_get_contents(out_path, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit(g_strstrip(text), "\n", -1);
  HARK_REQUIRE(g_strv_length(lines) == 2);
  g_autoptr(JsonObject) last = parse_object(lines[1]);
  HARK_REQUIRE(last != NULL);
  g_assert_cmpstr(json_object_get_string_member_with_default(last, "event", NULL), ==,
                  "node-stopping");
}

int
main(int argc, char **argv)
{
  /* A case in a process of its own: a crash or a hang costs that case only. */
  hark_test_init_isolated(&argc, &argv, 90000);
  g_test_set_nonfatal_assertions();
  hark_test_add_isolated_func("/ctl/hello", test_hello);
  hark_test_add_isolated_func("/ctl/state", test_state);
  hark_test_add_isolated_func("/ctl/identity-survives-restart", test_identity_survives_restart);
  hark_test_add_isolated_func("/ctl/version", test_version);
  hark_test_add_isolated_func("/ctl/command-with-args", test_command_with_args);
  hark_test_add_isolated_func("/ctl/unknown-command", test_unknown_command);
  hark_test_add_isolated_func("/ctl/bad-arguments", test_bad_arguments);
  hark_test_add_isolated_func("/ctl/bad-request-keeps-connection",
                              test_bad_request_keeps_connection);
  hark_test_add_isolated_func("/ctl/last-line-without-newline", test_last_line_without_newline);
  hark_test_add_isolated_func("/ctl/long-line-closes-connection", test_long_line_closes_connection);
  hark_test_add_isolated_func("/ctl/shutdown-reaches-every-client",
                              test_shutdown_reaches_every_client);
  hark_test_add_isolated_func("/ctl/socket-is-private", test_socket_is_private);
  hark_test_add_isolated_func("/ctl/stale-socket-is-replaced", test_stale_socket_is_replaced);
  hark_test_add_isolated_func("/ctl/second-node-on-same-socket-fails",
                              test_second_node_on_same_socket_fails);
  hark_test_add_isolated_func("/ctl/bad-setting-is-refused", test_bad_setting_is_refused);
  hark_test_add_isolated_func("/ctl/max-clients", test_max_clients);
  hark_test_add_isolated_func("/ctl/slow-reader-is-dropped", test_slow_reader_is_dropped);
  hark_test_add_isolated_func("/ctl/tcp-port-refused", test_tcp_port_refused);
  hark_test_add_isolated_func("/ctl/tool/state", test_tool_state);
  hark_test_add_isolated_func("/ctl/tool/words-and-json", test_tool_words_and_json);
  hark_test_add_isolated_func("/ctl/tool/unknown-command", test_tool_unknown_command);
  hark_test_add_isolated_func("/ctl/tool/cannot-connect", test_tool_cannot_connect);
  hark_test_add_isolated_func("/ctl/tool/watch", test_tool_watch);
  return g_test_run();
}
