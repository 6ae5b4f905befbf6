/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl-client.c: `hark ctl`, a one-shot client of a running node's ctl socket.
 *
 * It knows no command of its own: it asks the node `help` for the command's params and
 * lets hark_command_parse_words() turn the words typed into arguments, exactly as the
 * interactive cli does, so every command a node has works here too. It is synchronous
 * (a short-lived tool) with one deadline for the whole exchange.
 *
 * Secret parameters (passwords: "secret" in the command's help) are never taken from the
 * command line, which every local user can read (ps, /proc): on a terminal the tool asks
 * for each without echo, otherwise (or with --password-stdin) it reads one line per
 * secret from standard input.
 *
 * Exit status: 0 ok, 1 the node (or the words typed) said no, 2 no usable connection:
 * bad usage or configuration, nothing listening, no answer in time. */
#include "ctl-client.h"

#include "hark/hark.h"

#include <gio/gunixsocketaddress.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

enum {
  EXIT_OK = 0,
  EXIT_REFUSED = 1,
  EXIT_NO_NODE = 2
};

/* Longer than the login client's own 15 s, so its clearer error arrives first. */
#define DEFAULT_TIMEOUT_SECONDS 30
/* Passwords are at most 1024 bytes (docs/protocol.md); a longer line is cut here. */
#define SECRET_LINE_MAX 4096

typedef struct {
  char *config_file;
  char *socket_path;
  char *state_dir;
  gboolean json;
  gboolean watch;
  gboolean password_stdin;
  int timeout;
} Options;

typedef struct {
  char *path;
  GSocket *socket;
  GByteArray *input;
  gint64 deadline; /* monotonic µs; G_MAXINT64 for none */
  gint64 last_id;
} Session;

/* ---- where the socket is ------------------------------------------------------------- */

static HarkConfig *
load_config(const char *file, GError **error)
{
  if (file != NULL)
    return hark_config_load(file, error);
  g_autofree char *fallback = hark_config_default_path();
  if (g_file_test(fallback, G_FILE_TEST_EXISTS))
    return hark_config_load(fallback, error);
  return hark_config_new_default();
}

/* As the ctl plugin resolves it: its `socket` setting, relative to the state dir. */
static char *
resolve_socket_path(const Options *options, GError **error)
{
  if (options->socket_path != NULL)
    return g_strdup(options->socket_path);
  g_autoptr(HarkConfig) config = load_config(options->config_file, error);
  if (config == NULL)
    return NULL;
  const char *setting = HARK_CONTROL_DEFAULT_SOCKET;
  const HarkPluginConfig *ctl = hark_config_find_plugin(config, "ctl");
  if (ctl != NULL)
    g_variant_lookup(ctl->settings, "socket", "&s", &setting);
  g_autofree char *state_dir = options->state_dir != NULL
                                 ? g_canonicalize_filename(options->state_dir, NULL)
                                 : g_strdup(config->state_dir);
  return hark_config_state_path(state_dir, setting);
}

/* ---- lines on the socket ---------------------------------------------------------------- */

static gboolean
wait_readable(Session *s, GError **error)
{
  if (s->deadline == G_MAXINT64)
    return g_socket_condition_wait(s->socket, G_IO_IN, NULL, error);
  gint64 left = s->deadline - g_get_monotonic_time();
  if (left > 0 && g_socket_condition_timed_wait(s->socket, G_IO_IN, left, NULL, NULL))
    return TRUE;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "no answer from the node at %s in time",
              s->path);
  return FALSE;
}

/* The next line, without its newline; NULL at end of input (error set) or on timeout. */
static char *
read_line(Session *s, GError **error)
{
  for (;;) {
    guint8 *newline = s->input->len ? memchr(s->input->data, '\n', s->input->len) : NULL;
    if (newline != NULL) {
      gsize length = newline - s->input->data;
      char *line = g_strndup((const char *)s->input->data, length);
      g_byte_array_remove_range(s->input, 0, length + 1);
      return line;
    }
    if (!wait_readable(s, error))
      return NULL;
    char buffer[65536];
    gssize received = g_socket_receive(s->socket, buffer, sizeof buffer, NULL, error);
    if (received < 0)
      return NULL;
    if (received == 0) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                  "the node at %s closed the connection", s->path);
      return NULL;
    }
    g_byte_array_append(s->input, (const guint8 *)buffer, received);
  }
}

static JsonObject *
read_object(Session *s, GError **error)
{
  g_autofree char *line = read_line(s, error);
  if (line == NULL)
    return NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  if (!json_parser_load_from_data(parser, line, -1, error))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the node sent a non-object line");
    return NULL;
  }
  return json_object_ref(json_node_get_object(root));
}

static gboolean
send_request(Session *s, const char *command, JsonObject *args, GError **error)
{
  g_autoptr(JsonObject) request = json_object_new();
  json_object_set_int_member(request, "id", ++s->last_id);
  json_object_set_string_member(request, "command", command);
  if (args != NULL)
    json_object_set_object_member(request, "args", json_object_ref(args));
  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), request);
  g_autofree char *text = json_to_string(root, FALSE);
  g_autofree char *line = g_strconcat(text, "\n", NULL);
  for (gsize done = 0, length = strlen(line); done < length;) {
    gssize sent = g_socket_send(s->socket, line + done, length - done, NULL, error);
    if (sent < 0)
      return FALSE;
    done += sent;
  }
  return TRUE;
}

/* Sends one request and returns its answer, skipping events. */
static JsonObject *
call(Session *s, const char *command, JsonObject *args, GError **error)
{
  if (!send_request(s, command, args, error))
    return NULL;
  for (;;) {
    g_autoptr(JsonObject) line = read_object(s, error);
    if (line == NULL)
      return NULL;
    JsonNode *id = json_object_get_member(line, "id");
    if (id != NULL && JSON_NODE_HOLDS_VALUE(id) && json_node_get_value_type(id) == G_TYPE_INT64 &&
        json_node_get_int(id) == s->last_id)
      return g_steal_pointer(&line);
  }
}

/* ---- output -------------------------------------------------------------------------------- */

static void
print_json(JsonNode *node, const Options *options)
{
  g_autoptr(JsonGenerator) generator = json_generator_new();
  json_generator_set_root(generator, node);
  json_generator_set_pretty(generator, !options->json);
  json_generator_set_indent(generator, 2);
  g_autofree char *text = json_generator_to_data(generator, NULL);
  printf("%s\n", text);
  fflush(stdout);
}

static int
print_refusal(const char *code, const char *message)
{
  g_printerr("hark ctl: %s: %s\n", code, message);
  return EXIT_REFUSED;
}

static int
print_no_node(const GError *error)
{
  g_printerr("hark ctl: %s\n", error->message);
  return EXIT_NO_NODE;
}

/* An answer with "ok": false, as `hark ctl: <code>: <message>`. */
static int
print_error_answer(JsonObject *answer)
{
  JsonObject *error = json_object_get_object_member(answer, "error");
  const char *code = "failed", *message = "(no message)";
  if (error != NULL) {
    code = json_object_get_string_member_with_default(error, "code", code);
    message = json_object_get_string_member_with_default(error, "message", message);
  }
  return print_refusal(code, message);
}

static gboolean
answer_ok(JsonObject *answer)
{
  return json_object_get_boolean_member_with_default(answer, "ok", FALSE);
}

/* ---- the command, as the node describes it ----------------------------------------------- */

typedef struct {
  HarkCommand command;
  HarkCommandParam *params;
  JsonObject *description; /* owns the strings the above point to */
} RemoteCommand;

static void
remote_command_free(RemoteCommand *remote)
{
  g_free(remote->params);
  json_object_unref(remote->description);
  g_free(remote);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(RemoteCommand, remote_command_free)

static HarkParamType
param_type(const char *name)
{
  if (g_strcmp0(name, "int") == 0)
    return HARK_PARAM_INT;
  if (g_strcmp0(name, "bool") == 0)
    return HARK_PARAM_BOOL;
  return HARK_PARAM_STRING; /* and any type a newer node may add */
}

/* One element of help's "commands" -> a HarkCommand that parse_words understands. */
static RemoteCommand *
remote_command_new(JsonObject *description)
{
  RemoteCommand *remote = g_new0(RemoteCommand, 1);
  remote->description = json_object_ref(description);
  JsonArray *params = json_object_get_array_member(description, "params");
  guint n = params ? json_array_get_length(params) : 0;
  remote->params = g_new0(HarkCommandParam, n + 1);
  for (guint i = 0; i < n; i++) {
    JsonObject *p = json_array_get_object_element(params, i);
    remote->params[i].name = json_object_get_string_member_with_default(p, "name", "");
    remote->params[i].type =
      param_type(json_object_get_string_member_with_default(p, "type", NULL));
    remote->params[i].required = json_object_get_boolean_member_with_default(p, "required", FALSE);
    remote->params[i].help = json_object_get_string_member_with_default(p, "help", NULL);
    remote->params[i].secret = json_object_get_boolean_member_with_default(p, "secret", FALSE);
    /* Asked for after the words are parsed (ask_secrets), not looked for among them. */
    if (remote->params[i].secret)
      remote->params[i].required = FALSE;
  }
  remote->command.version = HARK_COMMAND_VERSION;
  remote->command.name = json_object_get_string_member_with_default(description, "name", "");
  remote->command.summary = json_object_get_string_member_with_default(description, "summary", "");
  remote->command.params = remote->params;
  return remote;
}

/* Asks `help command=NAME`. NULL with *status set when there is no such command. */
static RemoteCommand *
describe_command(Session *s, const char *name, int *status)
{
  g_autoptr(JsonObject) args = json_object_new();
  json_object_set_string_member(args, "command", name);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer = call(s, "help", args, &error);
  if (answer == NULL) {
    *status = print_no_node(error);
    return NULL;
  }
  if (!answer_ok(answer)) {
    *status = print_error_answer(answer);
    return NULL;
  }
  JsonObject *result = json_object_get_object_member(answer, "result");
  JsonArray *commands = result ? json_object_get_array_member(result, "commands") : NULL;
  if (commands == NULL || json_array_get_length(commands) != 1) {
    *status = print_refusal("failed", "the node's help answer does not describe the command");
    return NULL;
  }
  return remote_command_new(json_array_get_object_element(commands, 0));
}

/* ---- secrets -------------------------------------------------------------------------------- */

/* One line from standard input, without its line end; NULL at its end. */
static char *
read_secret_line(void)
{
  char buffer[SECRET_LINE_MAX];
  if (fgets(buffer, sizeof buffer, stdin) == NULL)
    return NULL;
  buffer[strcspn(buffer, "\r\n")] = '\0';
  char *secret = g_strdup(buffer);
  explicit_bzero(buffer, sizeof buffer);
  return secret;
}

/* Asks on the terminal with echo off. */
static char *
prompt_secret(const char *name)
{
  struct termios saved, quiet;
  gboolean restore = tcgetattr(STDIN_FILENO, &saved) == 0;
  if (restore) {
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  g_printerr("%s: ", name);
  char *secret = read_secret_line();
  if (restore)
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  return secret;
}

static void
secret_free(char *secret)
{
  if (secret != NULL)
    explicit_bzero(secret, strlen(secret));
  g_free(secret);
}

/* Refuses a secret given among the words; asks for each secret the command needs. */
static gboolean
ask_secrets(RemoteCommand *remote, JsonObject *args, const Options *options, GError **error)
{
  JsonArray *described = json_object_get_array_member(remote->description, "params");
  gboolean ask = !options->password_stdin && isatty(STDIN_FILENO);
  for (guint i = 0; remote->params[i].name != NULL; i++) {
    const HarkCommandParam *param = &remote->params[i];
    if (!param->secret)
      continue;
    if (json_object_has_member(args, param->name)) {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                  "%s is not taken from the command line, where every local user can read it "
                  "(ps): leave it out and type it when asked, or give it on standard input "
                  "(--password-stdin)",
                  param->name);
      return FALSE;
    }
    JsonObject *p = json_array_get_object_element(described, i);
    if (!json_object_get_boolean_member_with_default(p, "required", FALSE))
      continue;
    char *secret = ask ? prompt_secret(param->name) : read_secret_line();
    if (secret == NULL) {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "no %s on standard input",
                  param->name);
      return FALSE;
    }
    json_object_set_string_member(args, param->name, secret);
    secret_free(secret);
  }
  return TRUE;
}

/* ---- what the tool does ---------------------------------------------------------------------- */

static int
run_command(Session *s, const char *name, const char *const *words, const Options *options)
{
  int status = EXIT_OK;
  g_autoptr(RemoteCommand) remote = describe_command(s, name, &status);
  if (remote == NULL)
    return status;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) args = hark_command_parse_words(&remote->command, words, &error);
  if (args == NULL)
    return print_refusal(hark_command_error_code_name(error->code), error->message);
  if (!ask_secrets(remote, args, options, &error))
    return print_refusal("bad-args", error->message);
  g_autoptr(JsonObject) answer = call(s, name, args, &error);
  if (answer == NULL)
    return print_no_node(error);
  if (!answer_ok(answer))
    return print_error_answer(answer);
  JsonNode *result = json_object_get_member(answer, "result");
  if (result != NULL)
    print_json(result, options);
  return EXIT_OK;
}

/* Every event, one after another, until the node goes away. */
static int
watch(Session *s, JsonObject *hello, const Options *options)
{
  s->deadline = G_MAXINT64;
  g_autoptr(JsonObject) event = json_object_ref(hello);
  while (event != NULL) {
    g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), event);
    print_json(root, options);
    g_clear_pointer(&event, json_object_unref);
    g_autoptr(GError) error = NULL;
    event = read_object(s, &error);
    if (event == NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
      return print_no_node(error);
  }
  return EXIT_OK;
}

static gboolean
session_connect(Session *s, GError **error)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new(s->path);
  g_autoptr(GError) local = NULL;
  s->socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, &local);
  if (s->socket != NULL && g_socket_connect(s->socket, address, NULL, &local))
    return TRUE;
  g_set_error(error, local->domain, local->code,
              "cannot connect to %s: %s (is the node running? start it with `hark run`)", s->path,
              local->message);
  return FALSE;
}

/* The first line is the hello event; anything else (a too-many-clients refusal, or
 * something that is not a hark node) ends here. */
static JsonObject *
read_hello(Session *s, int *status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) hello = read_object(s, &error);
  if (hello == NULL) {
    *status = print_no_node(error);
    return NULL;
  }
  if (g_strcmp0(json_object_get_string_member_with_default(hello, "event", NULL), "hello") != 0) {
    print_error_answer(hello);
    *status = EXIT_NO_NODE;
    return NULL;
  }
  return g_steal_pointer(&hello);
}

static int
session_run(Session *s, char **words, const Options *options)
{
  g_autoptr(GError) error = NULL;
  if (!session_connect(s, &error))
    return print_no_node(error);
  int status = EXIT_OK;
  g_autoptr(JsonObject) hello = read_hello(s, &status);
  if (hello == NULL)
    return status;
  if (options->watch)
    return watch(s, hello, options);
  return run_command(s, words[0], (const char *const *)words + 1, options);
}

static gboolean
parse_options(Options *options, char ***words, GError **error)
{
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &options->config_file,
      "configuration file (default: ~/.config/hark/hark.conf)", "FILE" },
    { "socket", 0, 0, G_OPTION_ARG_FILENAME, &options->socket_path,
      "the ctl socket (default: from the configuration)", "PATH" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &options->state_dir,
      "the node's state directory (overrides the configuration)", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &options->json, "compact JSON output", NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &options->timeout,
      "give up after this many seconds (default 30; 0: never)", "SECONDS" },
    { "watch", 0, 0, G_OPTION_ARG_NONE, &options->watch, "print events until the node stops",
      NULL },
    { "password-stdin", 0, 0, G_OPTION_ARG_NONE, &options->password_stdin,
      "read passwords from standard input, one line each (also when it is a terminal); "
      "without it they are asked for on a terminal, and read from standard input otherwise",
      NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new("COMMAND [ARGS...] | --watch");
  g_option_context_set_summary(context,
                               "Run one command on a running hark node and print its answer.\n"
                               "ARGS are WORD (the next parameter) or NAME=VALUE; "
                               "`hark ctl help` lists the commands.");
  g_option_context_add_main_entries(context, entries, NULL);
  /* Options end at COMMAND: what follows belongs to the command (values like "-5"). */
  g_option_context_set_strict_posix(context, TRUE);
  if (!g_option_context_parse_strv(context, words, error))
    return FALSE;
  guint count = g_strv_length(*words) - 1; /* words[0] is the program */
  if (options->watch ? count != 0 : count == 0) {
    g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                        options->watch ? "--watch takes no COMMAND"
                                       : "which command? (try `hark ctl help`)");
    return FALSE;
  }
  if (options->timeout < 0) {
    g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--timeout must be 0 or more seconds");
    return FALSE;
  }
  return TRUE;
}

static void
options_clear(Options *options)
{
  g_free(options->config_file);
  g_free(options->socket_path);
  g_free(options->state_dir);
}

int
hark_ctl_client_main(int argc, char **argv)
{
  Options options = { .timeout = DEFAULT_TIMEOUT_SECONDS };
  g_auto(GStrv) words = g_new0(char *, MAX(argc, 1) + 1);
  words[0] = g_strdup("hark ctl"); /* for --help's usage line */
  for (int i = 1; i < argc; i++)
    words[i] = g_strdup(argv[i]);
  g_autoptr(GError) error = NULL;
  Session session = { 0 };
  int status = EXIT_NO_NODE;
  if (!parse_options(&options, &words, &error)) {
    g_printerr("hark ctl: %s\n", error->message);
  } else if ((session.path = resolve_socket_path(&options, &error)) == NULL) {
    print_no_node(error);
  } else {
    session.input = g_byte_array_new();
    session.deadline =
      options.timeout > 0 ? g_get_monotonic_time() + options.timeout * G_USEC_PER_SEC : G_MAXINT64;
    status = session_run(&session, words + 1, &options);
  }
  g_clear_object(&session.socket);
  g_clear_pointer(&session.input, g_byte_array_unref);
  g_free(session.path);
  options_clear(&options);
  return status;
}
