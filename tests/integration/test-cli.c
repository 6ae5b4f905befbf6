/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-cli.c: the cli frontend driven the way scripts drive it: lines on a pipe.
 *
 * Each case writes a configuration that loads the cli and nothing else (and a login
 * section when a case logs in to a lab login server) into a fresh temporary directory,
 * runs `$HARK_BIN run` with the lines on stdin, and reads what the node printed when it
 * exits at the end of the input. A node that hangs is killed after RUN_TIMEOUT_S, and
 * the case fails. The terminal path, readline, is driven through a pseudo-terminal in
 * the cases about secrets: what the screen shows and what the history keeps. */
#include "lab.h"
#include "test-files.h"
#include "test-isolate.h"
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <pty.h>
#include <string.h>
#include <unistd.h>

#define RUN_TIMEOUT_S 20
#define NODE_NAME "cli-test-node"
#define BUILTINS                                                                                   \
  "answer", "block", "buddies", "buddy-accept", "buddy-add", "buddy-cancel", "buddy-decline",      \
    "buddy-remove", "buddy-rename", "call", "call-log", "calls", "codec", "conference",            \
    "conversations", "decline", "delete-account", "device-remove", "devices", "directory", "dtmf", \
    "end", "group-add", "group-create", "group-leave", "group-remove", "groups", "hangup", "help", \
    "history", "hold", "invite", "join", "kick", "leave", "login", "logout", "media-set", "merge", \
    "messages", "msg", "mute",                                                                     \
    "nat", "overlay", "passwd", "path", "plugins", "register", "rejoin", "requests", "resume",     \
    "roster", "search", "shutdown", "state", "stats", "status", "transport", "turn", "typing",     \
    "unblock", "unmute", "version", "whoami"

typedef struct {
  char *dir; /* temporary, removed at the end */
  char *state_dir; /* dir/state */
  char *out;
  char *err;
  gboolean exited;
  int exit_status;
} Run;

/* ---- running a node --------------------------------------------------------------- */

static void
run_free(Run *run)
{
  if (run->dir != NULL)
    hark_test_remove_tree(run->dir);
  g_free(run->dir);
  g_free(run->state_dir);
  g_free(run->out);
  g_free(run->err);
  g_free(run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Run, run_free)

static const char *
hark_bin(void)
{
  const char *bin = g_getenv("HARK_BIN");
  g_assert_nonnull(bin); /* set by tests/meson.build */
  return bin;
}

/* extra: more configuration text (a login section), may be NULL. */
static char *
write_config(const char *dir, const char *cli_settings, const char *extra)
{
  g_autofree char *text =
    g_strdup_printf("node: { name = \"%s\"; };\n"
                    "plugins: { load = ( { name = \"cli\"; settings = { %s }; } ); };\n%s",
                    NODE_NAME, cli_settings ? cli_settings : "", extra ? extra : "");
  char *path = g_build_filename(dir, "hark.conf", NULL);
  g_autoptr(GError) error = NULL;
  g_file_set_contents(path, text, -1, &error);
  g_assert_no_error(error);
  return path;
}

typedef struct {
  gboolean done;
  char *out;
  char *err;
} Communication;

static void
on_communicated(GObject *source, GAsyncResult *result, gpointer data)
{
  Communication *c = data;
  g_autoptr(GError) error = NULL;
  g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), result, &c->out, &c->err, &error);
  if (error != NULL)
    g_test_message("communicate: %s", error->message);
  c->done = TRUE;
}

/* Wait for the output streams to close (the node has exited), within the bound. */
static void
communicate(GSubprocess *process, Run *run, const char *input)
{
  /* Heap: if the node hangs, the callback comes after we gave up (it then leaks). */
  Communication *c = g_new0(Communication, 1);
  g_subprocess_communicate_utf8_async(process, input, NULL, on_communicated, c);
  if (!hark_test_wait_for_flag(&c->done, RUN_TIMEOUT_S * 1000)) {
    g_subprocess_force_exit(process);
    g_test_fail_printf("hark run did not finish within %u ms",
                       hark_test_timeout(RUN_TIMEOUT_S * 1000));
    return;
  }
  run->out = g_steal_pointer(&c->out);
  run->err = g_steal_pointer(&c->err);
  g_free(c);
}

/* `hark run -c config --state-dir state_dir`, under $HARK_TEST_WRAPPER if set. */
static GStrv
node_argv(const char *config, const char *state_dir)
{
  g_autoptr(GError) error = NULL;
  const char *wrapper = g_getenv("HARK_TEST_WRAPPER"); /* e.g. "valgrind --leak-check=full" */
  g_autoptr(GStrvBuilder) argv = g_strv_builder_new();
  if (wrapper != NULL && *wrapper != '\0') {
    g_auto(GStrv) words = NULL;
    g_shell_parse_argv(wrapper, NULL, &words, &error);
    g_assert_no_error(error);
    g_strv_builder_addv(argv, (const char **)words);
  }
  const char *tail[] = { hark_bin(), "run", "-c", config, "--state-dir", state_dir, NULL };
  g_strv_builder_addv(argv, tail);
  return g_strv_builder_end(argv);
}

/* `hark run` with input on its stdin, a config whose cli has these settings, and
 * extra configuration text (may be NULL). */
static Run *
run_node_with(const char *input, const char *cli_settings, const char *extra)
{
  Run *run = g_new0(Run, 1);
  g_autoptr(GError) error = NULL;
  run->dir = g_dir_make_tmp("hark-cli-XXXXXX", &error);
  g_assert_no_error(error);
  run->state_dir = g_build_filename(run->dir, "state", NULL);
  g_autofree char *config = write_config(run->dir, cli_settings, extra);

  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                              G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_auto(GStrv) args = node_argv(config, run->state_dir);
  g_autoptr(GSubprocess) process =
    g_subprocess_launcher_spawnv(launcher, (const char *const *)args, &error);
  g_assert_no_error(error);

  communicate(process, run, input);
  g_assert_cmpint(hark_test_wait_process(process, RUN_TIMEOUT_S * 1000), >=, 0);
  run->exited = g_subprocess_get_if_exited(process);
  run->exit_status = run->exited ? g_subprocess_get_exit_status(process) : -1;
  if (run->err != NULL && *run->err != '\0')
    g_test_message("stderr of hark:\n%s", run->err);
  g_test_message("stdout of hark:\n%s", run->out ? run->out : "");
  return run;
}

static Run *
run_node(const char *input, const char *cli_settings)
{
  return run_node_with(input, cli_settings, NULL);
}

/* The run of a node that must go well: exit status 0, and output. */
static Run *
run_ok(const char *input)
{
  Run *run = run_node(input, NULL);
  g_assert_true(run->exited);
  g_assert_cmpint(run->exit_status, ==, 0);
  g_assert_nonnull(run->out);
  return run;
}

/* ---- reading the output ----------------------------------------------------------- */

/* Where a line starting with prefix begins in text, or -1. */
static gssize
line_offset(const char *text, const char *prefix)
{
  for (const char *line = text; line && *line;
       line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (g_str_has_prefix(line, prefix))
      return line - text;
  return -1;
}

static void
assert_has_line(const char *text, const char *prefix)
{
  if (line_offset(text, prefix) < 0)
    g_error("no line starting with '%s' in:\n%s", prefix, text);
}

static void
assert_no_line(const char *text, const char *prefix)
{
  if (line_offset(text, prefix) >= 0)
    g_error("a line starting with '%s' should not be in:\n%s", prefix, text);
}

/* The output without the lines of events ("* name ..."). */
static char *
without_events(const char *text)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_autoptr(GString) kept = g_string_new(NULL);
  for (char **l = lines; *l; l++)
    if (!g_str_has_prefix(*l, "* ") && **l != '\0')
      g_string_append_printf(kept, "%s\n", *l);
  return g_string_free(g_steal_pointer(&kept), FALSE);
}

/* The first word of each row of help's table (rows are not indented). */
static GPtrArray *
help_rows(const char *text)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *answer = without_events(text);
  g_auto(GStrv) lines = g_strsplit(answer, "\n", -1);
  for (char **l = lines; *l; l++)
    if (**l != '\0' && !g_ascii_isspace(**l))
      g_ptr_array_add(names, g_strndup(*l, strcspn(*l, " ")));
  return names;
}

/* ---- the cases -------------------------------------------------------------------- */

static void
test_version(void)
{
  /* The version `hark --version` states, the first word after "hark ". */
  g_autofree char *stdout_text = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { hark_bin(), "--version", NULL };
  g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &stdout_text, NULL, NULL,
               &error);
  g_assert_no_error(error);
  g_assert_true(g_str_has_prefix(stdout_text, "hark "));
  g_autofree char *version = g_strndup(stdout_text + 5, strcspn(stdout_text + 5, " \n"));

  g_autoptr(Run) run = run_ok("version\n");
  g_autofree char *expected = g_strdup_printf("version: %s\n", version);
  assert_has_line(run->out, expected);
  assert_has_line(run->out, "plugin_abi: ");
  g_assert_null(strstr(run->out, "{")); /* text for people, not JSON */
}

static void
test_help_lists_builtins(void)
{
  g_autoptr(Run) run = run_ok("help\n");
  const char *const builtins[] = { BUILTINS, NULL };
  g_autoptr(GPtrArray) rows = help_rows(run->out);
  /* Every builtin, and nothing else: only the cli is loaded and it adds no commands. */
  g_assert_cmpuint(rows->len, ==, g_strv_length((char **)builtins));
  for (guint i = 0; i < rows->len; i++)
    if (!g_strv_contains(builtins, rows->pdata[i]))
      g_error("help lists '%s', which is no builtin", (char *)rows->pdata[i]);
  for (const char *const *b = builtins; *b; b++)
    g_assert_true(g_ptr_array_find_with_equal_func(rows, *b, g_str_equal, NULL));
  /* help's one optional argument is shown as [command]. */
  g_autofree char *answer = without_events(run->out);
  g_assert_true(
    g_regex_match_simple("^help +\\[command\\] +list the commands", answer, G_REGEX_MULTILINE, 0));
}

static void
test_unknown_command_goes_on(void)
{
  g_autoptr(Run) run = run_ok("bogus\nversion\n");
  assert_has_line(run->out, "error: unknown command 'bogus'");
  g_assert_cmpint(line_offset(run->out, "error: unknown command"), <,
                  line_offset(run->out, "version: "));
}

static void
test_help_named_and_positional(void)
{
  g_autoptr(Run) positional = run_ok("help state\n");
  g_autoptr(Run) named = run_ok("help command=state\n");
  g_autoptr(Run) quoted = run_ok("help \"state\"\n");
  g_autofree char *a = without_events(positional->out);
  g_autofree char *b = without_events(named->out);
  g_autofree char *c = without_events(quoted->out);
  g_assert_cmpstr(a, ==, b);
  g_assert_cmpstr(a, ==, c);
  g_assert_true(g_str_has_prefix(a, "state "));
  g_assert_nonnull(strstr(a, "snapshot"));
}

static void
test_bad_arguments(void)
{
  g_autoptr(Run) run = run_ok("help state version\n"
                              "help nosuch\n"
                              "help \"unterminated\n"
                              "version\n");
  /* The builtins take no integer or boolean: these are the argument errors they can give. */
  assert_has_line(run->out, "error: help: too many arguments ('version'");
  assert_has_line(run->out, "error: unknown command 'nosuch'");
  g_autofree char *answer = without_events(run->out);
  g_auto(GStrv) lines = g_strsplit(answer, "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), >=, 4);
  g_assert_true(g_str_has_prefix(lines[2], "error: ")); /* the quote: a parse error */
  g_assert_true(g_str_has_prefix(lines[3], "version: ")); /* and the node went on */
}

static void
test_state(void)
{
  g_autoptr(Run) run = run_ok("state\n");
  assert_has_line(run->out, "node:\n  name: " NODE_NAME "\n");
  g_assert_true(
    g_regex_match_simple("^  fingerprint: [0-9a-f]{64}$", run->out, G_REGEX_MULTILINE, 0));
  assert_has_line(run->out, "frontends: cli\n");
  assert_has_line(run->out, "plugins:\n  - name: cli\n"); /* an array of objects as items */
}

static void
test_eof_stops(void)
{
  g_autoptr(Run) run = run_ok("");
  assert_has_line(run->out, "* node-started name=" NODE_NAME "\n");
  assert_has_line(run->out, "* node-stopping\n");
  g_assert_true(g_file_test(run->state_dir, G_FILE_TEST_IS_DIR));
}

static void
test_lines_in_order(void)
{
  g_autoptr(Run) run = run_ok("version\nbogus\nstate\nhelp version\n");
  gssize version = line_offset(run->out, "version: ");
  gssize bogus = line_offset(run->out, "error: unknown command 'bogus'");
  gssize state = line_offset(run->out, "node:");
  gssize help = line_offset(run->out, "version  ");
  g_assert_cmpint(line_offset(run->out, "* node-started"), ==, 0);
  g_assert_cmpint(version, >, 0);
  g_assert_cmpint(version, <, bogus);
  g_assert_cmpint(bogus, <, state);
  g_assert_cmpint(state, <, help);
  g_assert_cmpint(help, <, line_offset(run->out, "* node-stopping"));
}

static void
test_blank_and_comments(void)
{
  g_autoptr(Run) run = run_ok("\n   \n# a comment\n  # indented comment\nversion # trailing\n\r\n");
  g_autofree char *answer = without_events(run->out);
  g_assert_true(g_str_has_prefix(answer, "version: "));
  g_assert_null(strstr(answer, "error"));
}

static void
test_crlf_lines(void)
{
  g_autoptr(Run) run = run_ok("help state\r\nversion\r\n");
  assert_has_line(run->out, "state ");
  assert_has_line(run->out, "version: ");
  g_assert_null(strstr(run->out, "error"));
}

static void
test_quit_hints(void)
{
  g_autoptr(Run) run = run_ok("quit\nexit\nversion\n");
  assert_has_line(run->out, "'quit' is not a command: type 'shutdown'");
  assert_has_line(run->out, "'exit' is not a command: type 'shutdown'");
  assert_has_line(run->out, "version: "); /* still running */
}

static void
test_shutdown_ends_input(void)
{
  g_autoptr(Run) run = run_ok("shutdown\nversion\n");
  g_autofree char *answer = without_events(run->out);
  g_assert_cmpstr(answer, ==, "ok\n"); /* an empty answer */
  assert_no_line(run->out, "version: "); /* the line after shutdown is not run */
  g_assert_cmpint(line_offset(run->out, "ok\n"), <, line_offset(run->out, "* node-stopping"));
}

static void
test_no_history_without_terminal(void)
{
  g_autoptr(Run) run = run_ok("version\n");
  g_autofree char *history = g_build_filename(run->state_dir, "cli_history", NULL);
  g_assert_false(g_file_test(history, G_FILE_TEST_EXISTS));
}

static void
test_settings(void)
{
  g_autoptr(Run) good = run_node("version\n", "prompt = \"x> \"; history_size = 10;");
  g_assert_cmpint(good->exit_status, ==, 0);
  g_assert_null(strstr(good->out, "x> ")); /* no prompt without a terminal */

  g_autoptr(Run) wrong_type = run_node("version\n", "prompt = 5;");
  g_assert_cmpint(wrong_type->exit_status, !=, 0);
  g_assert_nonnull(strstr(wrong_type->err, "setting 'prompt' must be a string"));

  g_autoptr(Run) negative = run_node("version\n", "history_size = -1;");
  g_assert_cmpint(negative->exit_status, !=, 0);
  g_assert_nonnull(strstr(negative->err, "history_size"));
}

/* ---- secrets ---------------------------------------------------------------------- */

#define PASSWORD "hunter2-secret-pw"

/* The login section for a node of the lab login server's. */
static char *
login_config(LabLoginServer *server)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", server->url, server->ca_path);
}

/* Without a terminal, the line after one that leaves out a secret is that secret. */
static void
test_secret_on_next_line(void)
{
  g_autoptr(LabLoginServer) server = lab_login_server_new();
  g_assert_nonnull(server);
  g_autofree char *login = login_config(server);
  g_autoptr(Run) run = run_node_with("register alice\n" PASSWORD "\n"
                                     "login alice\n" PASSWORD "\n"
                                     "whoami\n",
                                     NULL, login);
  g_assert_cmpint(run->exit_status, ==, 0);
  assert_has_line(run->out, "registered: alice\n");
  /* whoami answers only on a logged-in device */
  g_assert_cmpint(line_offset(run->out, "device_id: "), >, line_offset(run->out, "registered: "));
  g_autofree char *answers = without_events(run->out); /* (overlay events name errors) */
  g_assert_null(strstr(answers, "error"));
  g_assert_null(strstr(run->out, PASSWORD)); /* not echoed, not run as a command */
}

/* Each secret left out takes one line (passwd: the old, then the new); the input
 * ending before it drops the command. */
static void
test_secret_lines_counted(void)
{
  g_autoptr(Run) run = run_ok("passwd\nold-password\nnew-password\n"
                              "version\n"
                              "login alice\n");
  g_autofree char *answer = without_events(run->out);
  g_auto(GStrv) lines = g_strsplit(answer, "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), >=, 5);
  g_assert_true(g_str_has_prefix(lines[0], "error: login is not configured"));
  g_assert_true(g_str_has_prefix(lines[1], "version: "));
  assert_has_line(answer, "error: login: the input ended before the password; the command "
                          "was not run\n");
  g_assert_null(strstr(run->out, "unknown command"));
  g_assert_null(strstr(run->out, "password:")); /* no prompt without a terminal */
}

/* A cli on a pseudo-terminal: what it showed, read from the master side. */
typedef struct {
  int master;
  GString *shown;
  gsize seen; /* what has been waited for ends here */
  const char *want; /* for shows() */
} Screen;

static gboolean
shows(gpointer data)
{
  Screen *screen = data;
  char buffer[4096];
  ssize_t n;
  while ((n = read(screen->master, buffer, sizeof buffer)) > 0)
    g_string_append_len(screen->shown, buffer, n);
  return strstr(screen->shown->str + screen->seen, screen->want) != NULL;
}

/* Waits until the terminal shows text after what was waited for before. */
static gboolean
screen_wait(Screen *screen, const char *text)
{
  screen->want = text;
  if (!hark_test_wait_for(shows, screen, RUN_TIMEOUT_S * 1000)) {
    g_test_message("the terminal never showed '%s'; it shows:\n%s", text, screen->shown->str);
    return FALSE;
  }
  screen->seen =
    strstr(screen->shown->str + screen->seen, text) - screen->shown->str + strlen(text);
  return TRUE;
}

static void
screen_type(Screen *screen, const char *keys)
{
  gsize length = strlen(keys);
  while (length > 0) {
    ssize_t n = write(screen->master, keys, length);
    g_assert_cmpint(n, >, 0);
    keys += n;
    length -= (gsize)n;
  }
}

/* A person at a terminal: a secret left out of the line is asked for at its own
 * prompt and never shows; neither it nor a line that carried one goes into the
 * history. */
static void
test_terminal_secret_hidden(void)
{
  g_autoptr(LabLoginServer) server = lab_login_server_new();
  g_assert_nonnull(server);
  g_autofree char *login = login_config(server);
  g_autoptr(GError) error = NULL;
  g_autoptr(Run) run = g_new0(Run, 1);
  run->dir = g_dir_make_tmp("hark-cli-XXXXXX", &error);
  g_assert_no_error(error);
  run->state_dir = g_build_filename(run->dir, "state", NULL);
  g_autofree char *config = write_config(run->dir, NULL, login);
  g_autofree char *err_path = g_build_filename(run->dir, "stderr", NULL);

  int master, slave;
  struct winsize size = { .ws_row = 24, .ws_col = 250 }; /* no line wraps */
  g_assert_cmpint(openpty(&master, &slave, NULL, NULL, &size), ==, 0);
  g_assert_true(g_unix_set_fd_nonblocking(master, TRUE, NULL));
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_take_stdout_fd(launcher, dup(slave));
  g_subprocess_launcher_take_stdin_fd(launcher, slave);
  g_subprocess_launcher_set_stderr_file_path(launcher, err_path);
  g_subprocess_launcher_setenv(launcher, "TERM", "dumb", TRUE);
  g_subprocess_launcher_setenv(launcher, "INPUTRC", "/dev/null", TRUE);
  g_auto(GStrv) args = node_argv(config, run->state_dir);
  g_autoptr(GSubprocess) process =
    g_subprocess_launcher_spawnv(launcher, (const char *const *)args, &error);
  g_assert_no_error(error);
  g_clear_object(&launcher); /* closes our copies of the slave side */

  Screen screen = { master, g_string_new(NULL), 0, NULL };
  gboolean ok = screen_wait(&screen, "* node-started");
  if (ok) {
    screen_type(&screen, "register alice\r");
    ok = screen_wait(&screen, "password for alice: ");
  }
  if (ok) {
    screen_type(&screen, PASSWORD "\r");
    ok = screen_wait(&screen, "registered: alice");
  }
  if (ok) {
    screen_type(&screen, "login alice\r");
    ok = screen_wait(&screen, "password for alice: ");
  }
  if (ok) {
    screen_type(&screen, PASSWORD "\r");
    ok = screen_wait(&screen, "user: alice");
  }
  if (ok) {
    g_assert_null(strstr(screen.shown->str, PASSWORD)); /* no echo */
    /* Typed in the line, it shows: the cli says so, once, and keeps the line out of the
     * history. */
    screen_type(&screen, "login alice " PASSWORD "\r");
    ok = screen_wait(&screen, "note: a password typed in the line shows on the screen") &&
         screen_wait(&screen, "user: alice");
  }
  if (ok)
    screen_type(&screen, "\004"); /* Ctrl-D: the node stops, the history is saved */
  int status = ok ? hark_test_wait_process(process, RUN_TIMEOUT_S * 1000) : -1;
  if (status != 0)
    g_subprocess_force_exit(process);
  g_autofree char *err = NULL;
  g_file_get_contents(err_path, &err, NULL, NULL);
  g_test_message("the terminal showed:\n%s\nstderr of hark:\n%s", screen.shown->str,
                 err ? err : "");
  close(master);
  g_string_free(screen.shown, TRUE);
  g_assert_true(ok);
  g_assert_cmpint(status, ==, 0);

  g_autofree char *history_path = g_build_filename(run->state_dir, "cli_history", NULL);
  g_autofree char *history = NULL;
  g_file_get_contents(history_path, &history, NULL, &error);
  g_assert_no_error(error);
  g_test_message("cli_history:\n%s", history);
  g_assert_true(g_str_has_prefix(history, "register alice\nlogin alice\n"));
  g_assert_null(strstr(history, PASSWORD));
}

int
main(int argc, char **argv)
{
  /* A case in a process of its own: a crash or a hang costs that case only. */
  hark_test_init_isolated(&argc, &argv, 90000);
  hark_test_add_isolated_func("/cli/version", test_version);
  hark_test_add_isolated_func("/cli/help-lists-builtins", test_help_lists_builtins);
  hark_test_add_isolated_func("/cli/unknown-command-goes-on", test_unknown_command_goes_on);
  hark_test_add_isolated_func("/cli/help-named-and-positional", test_help_named_and_positional);
  hark_test_add_isolated_func("/cli/bad-arguments", test_bad_arguments);
  hark_test_add_isolated_func("/cli/state", test_state);
  hark_test_add_isolated_func("/cli/eof-stops", test_eof_stops);
  hark_test_add_isolated_func("/cli/lines-in-order", test_lines_in_order);
  hark_test_add_isolated_func("/cli/blank-and-comments", test_blank_and_comments);
  hark_test_add_isolated_func("/cli/crlf-lines", test_crlf_lines);
  hark_test_add_isolated_func("/cli/quit-hints", test_quit_hints);
  hark_test_add_isolated_func("/cli/shutdown-ends-input", test_shutdown_ends_input);
  hark_test_add_isolated_func("/cli/no-history-without-terminal", test_no_history_without_terminal);
  hark_test_add_isolated_func("/cli/settings", test_settings);
  hark_test_add_isolated_func("/cli/secret-on-next-line", test_secret_on_next_line);
  hark_test_add_isolated_func("/cli/secret-lines-counted", test_secret_lines_counted);
  hark_test_add_isolated_func("/cli/terminal-secret-hidden", test_terminal_secret_hidden);
  return g_test_run();
}
