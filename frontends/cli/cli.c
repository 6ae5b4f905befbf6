/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli.c: the `cli` frontend plugin: the node's command table in a terminal or a script.
 *
 * Each line is split into words like a shell would (quotes work), the first word names
 * a command of the node's one table and the others become its arguments through
 * hark_command_parse_words(), so every command any plugin adds works here unchanged.
 * Lines run one at a time, in input order: the next line waits until the command
 * before it has answered, which may be later. End of input stops the node.
 *
 * On a terminal, terminal.c drives GNU readline; otherwise (a pipe or a file: scripts
 * and tests) lines are read asynchronously from stdin here, with no prompt.
 *
 * Secret parameters (passwords) may be left out of a line (`login alice`): the cli then
 * asks for each, without echo on a terminal, and takes the next input line as it
 * otherwise. A line that carries a secret is never kept in the history. */
#include "cli.h"

#include <gio/gunixinputstream.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PROMPT "hark> "
#define DEFAULT_HISTORY_SIZE 1000
#define MAX_HISTORY_SIZE 100000

static void cli_run_waiting_lines(HarkCli *cli);

/* ---- output ----------------------------------------------------------------------- */

/* Everything goes to stdout, errors too, so that answers keep the order of the lines. */
static void
cli_print(HarkCli *cli, const char *text)
{
  if (cli->readline_installed) {
    cli_terminal_print(cli, text);
    return;
  }
  fputs(text, stdout);
  fflush(stdout);
}

static void
cli_print_error(HarkCli *cli, const GError *error)
{
  g_autofree char *text = cli_render_error(error);
  cli_print(cli, text);
}

/* ---- stdin as a pipe or a file ---------------------------------------------------- */

static void
on_line_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  g_autofree char *line =
    g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source), result, &length, &error);
  /* Cancelled by stop(): the cli may be freed already, so touch nothing. */
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  HarkCli *cli = user_data;
  cli->read_pending = FALSE;
  if (error != NULL) {
    g_warning("cli: cannot read standard input: %s", error->message);
    cli_take_line(cli, NULL);
    return;
  }
  if (line != NULL && length > 0 && line[length - 1] == '\r')
    line[length - 1] = '\0'; /* a script written with CRLF line ends */
  if (line != NULL && !g_utf8_validate(line, -1, NULL)) {
    g_autoptr(GError) invalid = g_error_new_literal(
      G_CONVERT_ERROR, G_CONVERT_ERROR_ILLEGAL_SEQUENCE, "the line is not valid UTF-8; skipped");
    cli_print_error(cli, invalid);
    cli_run_waiting_lines(cli); /* reads the next one */
    return;
  }
  cli_take_line(cli, line);
}

static void
cli_read_next_line(HarkCli *cli)
{
  cli->read_pending = TRUE;
  /* The callback runs in the thread-default context of the caller: make it the node's. */
  GMainContext *main_context = hark_context_main_context(cli->ctx);
  g_main_context_push_thread_default(main_context);
  g_data_input_stream_read_line_async(cli->lines_in, G_PRIORITY_DEFAULT, cli->read_cancellable,
                                      on_line_read, cli);
  g_main_context_pop_thread_default(main_context);
}

static void
cli_lines_start(HarkCli *cli)
{
  g_autoptr(GInputStream) fd_stream = g_unix_input_stream_new(STDIN_FILENO, FALSE);
  cli->lines_in = g_data_input_stream_new(fd_stream);
  g_data_input_stream_set_newline_type(cli->lines_in, G_DATA_STREAM_NEWLINE_TYPE_LF);
  cli->read_cancellable = g_cancellable_new();
  cli_read_next_line(cli);
}

static void
cli_lines_close(HarkCli *cli)
{
  if (cli->read_cancellable != NULL)
    g_cancellable_cancel(cli->read_cancellable);
  g_clear_object(&cli->read_cancellable);
  g_clear_object(&cli->lines_in);
  cli->read_pending = FALSE;
}

/* ---- one line, one command -------------------------------------------------------- */

static void
on_command_done(JsonNode *result, const GError *error, gpointer user_data)
{
  HarkCli *cli = user_data;
  g_autofree char *command = g_steal_pointer(&cli->running_command);
  g_autofree char *text = error ? cli_render_error(error) : cli_render_result(command, result);
  cli_print(cli, text);
  /* An answer given while the line ran is picked up by the loop that ran it. */
  if (!cli->dispatching)
    cli_run_waiting_lines(cli);
}

/* quit and exit are not commands (unless a plugin adds them): say what is. */
static gboolean
cli_hint_for(HarkCli *cli, const char *word)
{
  if (hark_context_find_command(cli->ctx, word) != NULL ||
      (!g_str_equal(word, "quit") && !g_str_equal(word, "exit")))
    return FALSE;
  g_autofree char *hint =
    g_strdup_printf("'%s' is not a command: type 'shutdown' to stop the node, or end the "
                    "input (Ctrl-D)\n",
                    word);
  cli_print(cli, hint);
  return TRUE;
}

/* ---- secrets ---------------------------------------------------------------------- */

static gboolean
cli_command_has_secret(const HarkCommand *command)
{
  for (const HarkCommandParam *p = command ? command->params : NULL; p && p->name; p++)
    if (p->secret)
      return TRUE;
  return FALSE;
}

static gboolean
cli_args_have_secret(const HarkCommand *command, JsonObject *args)
{
  for (const HarkCommandParam *p = command->params; p && p->name; p++)
    if (p->secret && json_object_has_member(args, p->name))
      return TRUE;
  return FALSE;
}

/* The first required secret that args lack. NULL when there is none, and also when a
 * plain required argument is missing too: the command's own error then says so before
 * anyone types a password for nothing. */
static const HarkCommandParam *
cli_missing_secret(const HarkCommand *command, JsonObject *args)
{
  const HarkCommandParam *missing = NULL;
  for (const HarkCommandParam *p = command->params; p && p->name; p++) {
    if (!p->required || json_object_has_member(args, p->name))
      continue;
    if (!p->secret)
      return NULL;
    if (missing == NULL)
      missing = p;
  }
  return missing;
}

/* "password for alice: ", "new password: ": the param's help up to its first ',' or
 * '(' without a leading "the " (its name when there is no help), and the user that the
 * line names, if any. */
static char *
cli_secret_prompt(const HarkCommandParam *param, JsonObject *args)
{
  const char *help = param->help && *param->help ? param->help : param->name;
  if (g_str_has_prefix(help, "the "))
    help += strlen("the ");
  g_autofree char *what = g_strndup(help, strcspn(help, ",("));
  g_strchomp(what);
  const char *user = json_object_get_string_member_with_default(args, "user", NULL);
  if (user != NULL && *user != '\0')
    return g_strdup_printf("%s for %s: ", *what ? what : param->name, user);
  return g_strdup_printf("%s: ", *what ? what : param->name);
}

gboolean
cli_line_has_secret(HarkCli *cli, const char *line)
{
  g_auto(GStrv) words = NULL;
  if (!g_shell_parse_argv(line, NULL, &words, NULL)) {
    /* A quote left open, say: judge by the first word. */
    line += strspn(line, " \t");
    g_autofree char *name = g_strndup(line, strcspn(line, " \t"));
    return cli_command_has_secret(hark_context_find_command(cli->ctx, name));
  }
  const HarkCommand *command = hark_context_find_command(cli->ctx, words[0]);
  if (!cli_command_has_secret(command))
    return FALSE;
  g_autoptr(JsonObject) args =
    hark_command_parse_words(command, (const char *const *)words + 1, NULL);
  return args == NULL || cli_args_have_secret(command, args);
}

/* On a terminal, a secret typed in the line was on the screen: say so, once. */
static void
cli_warn_visible_secret(HarkCli *cli, const HarkCommand *command, JsonObject *args)
{
  if (!cli->interactive || cli->warned_visible_secret || !cli_args_have_secret(command, args))
    return;
  cli->warned_visible_secret = TRUE;
  cli_print(cli, "note: a password typed in the line shows on the screen (such a line is not "
                 "kept in the history); leave it out, as in 'login alice', and it is asked "
                 "for without echo\n");
}

static void
cli_forget_question(HarkCli *cli)
{
  g_clear_pointer(&cli->asking_command, g_free);
  g_clear_pointer(&cli->asking_args, json_object_unref);
}

/* The command is not run: its secret did not come. */
static void
cli_drop_question(HarkCli *cli, const char *why)
{
  g_autoptr(GError) error =
    g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                "%s: %s; the command was not run", cli->asking_command, why);
  cli_print_error(cli, error);
  cli_forget_question(cli);
}

/* ---- one line, one command (continued) -------------------------------------------- */

/* Run the command (args taken, may be NULL), or first ask for a secret its line left
 * out. It answers through on_command_done, now or later. */
static void
cli_start_command(HarkCli *cli, const char *name, JsonObject *args)
{
  const HarkCommand *command = hark_context_find_command(cli->ctx, name);
  const HarkCommandParam *secret = command && args ? cli_missing_secret(command, args) : NULL;
  if (secret != NULL) {
    cli->asking_command = g_strdup(name);
    cli->asking_args = args;
    if (cli->interactive) {
      g_autofree char *prompt = cli_secret_prompt(secret, args);
      cli_terminal_ask_secret(cli, prompt);
    }
    return;
  }
  cli->running_command = g_strdup(name);
  hark_context_run_command(cli->ctx, name, args, on_command_done, cli);
  if (args != NULL)
    json_object_unref(args);
}

void
cli_take_secret(HarkCli *cli, const char *secret)
{
  if (cli->asking_command == NULL)
    return;
  const HarkCommand *command = hark_context_find_command(cli->ctx, cli->asking_command);
  const HarkCommandParam *param = command ? cli_missing_secret(command, cli->asking_args) : NULL;
  if (secret == NULL || param == NULL) {
    cli_drop_question(cli, "no password given");
  } else {
    g_autofree char *name = g_steal_pointer(&cli->asking_command);
    JsonObject *args = g_steal_pointer(&cli->asking_args);
    json_object_set_string_member(args, param->name, secret);
    cli_start_command(cli, name, args); /* asks for the next secret, or runs */
  }
  if (!cli->dispatching)
    cli_run_waiting_lines(cli);
}

/* Start the line's command (or ask for its secrets first). */
static void
cli_run_line(HarkCli *cli, const char *line)
{
  g_auto(GStrv) words = NULL;
  g_autoptr(GError) error = NULL;
  if (!g_shell_parse_argv(line, NULL, &words, &error)) {
    /* Blank lines and lines that are only a # comment parse to nothing: not an error. */
    if (!g_error_matches(error, G_SHELL_ERROR, G_SHELL_ERROR_EMPTY_STRING))
      cli_print_error(cli, error);
    return;
  }
  if (cli_hint_for(cli, words[0]))
    return;
  /* An unknown command goes to the core anyway: its error message is the same for all
   * frontends. */
  const HarkCommand *command = hark_context_find_command(cli->ctx, words[0]);
  g_autoptr(JsonObject) args = NULL;
  if (command != NULL) {
    args = hark_command_parse_words(command, (const char *const *)words + 1, &error);
    if (args == NULL) {
      cli_print_error(cli, error);
      return;
    }
    cli_warn_visible_secret(cli, command, args);
  }
  cli_start_command(cli, words[0], g_steal_pointer(&args));
}

/* Run waiting lines until one has to wait for its answer; with none left, read on.
 * Without a terminal, the line after one that left out a secret is that secret; on a
 * terminal the secret is typed at its own prompt, and lines typed ahead wait. */
static void
cli_run_waiting_lines(HarkCli *cli)
{
  cli->dispatching = TRUE;
  while (cli->running_command == NULL && !cli->input_closed &&
         !(cli->interactive && cli->asking_command != NULL)) {
    g_autofree char *line = g_queue_pop_head(&cli->waiting_lines);
    if (line == NULL)
      break;
    if (cli->asking_command != NULL) {
      cli_take_secret(cli, line);
      explicit_bzero(line, strlen(line));
    } else {
      cli_run_line(cli, line);
    }
  }
  cli->dispatching = FALSE;
  if (cli->running_command == NULL && !cli->input_closed && cli->lines_in != NULL &&
      !cli->read_pending)
    cli_read_next_line(cli);
}

/* Stop reading: at end of input, when the node stops, and in stop(). */
static void
cli_close_input(HarkCli *cli)
{
  cli->input_closed = TRUE;
  cli_forget_question(cli);
  g_queue_clear_full(&cli->waiting_lines, g_free);
  cli_lines_close(cli);
  cli_terminal_close_input(cli);
}

void
cli_take_line(HarkCli *cli, const char *line)
{
  if (cli->input_closed)
    return;
  if (line == NULL) {
    if (cli->asking_command != NULL)
      cli_drop_question(cli, "the input ended before the password");
    cli_close_input(cli);
    hark_context_request_stop(cli->ctx);
    return;
  }
  g_queue_push_tail(&cli->waiting_lines, g_strdup(line));
  if (!cli->dispatching)
    cli_run_waiting_lines(cli);
}

/* ---- the frontend interface ------------------------------------------------------- */

static gboolean
cli_start(gpointer instance, GError **error)
{
  HarkCli *cli = instance;
  cli->interactive = isatty(STDIN_FILENO);
  if (cli->interactive)
    return cli_terminal_start(cli, error);
  cli_lines_start(cli);
  return TRUE;
}

static void
cli_stop(gpointer instance)
{
  HarkCli *cli = instance;
  cli_close_input(cli);
  cli_terminal_stop(cli);
}

static void
cli_event(gpointer instance, const char *name, JsonObject *data)
{
  HarkCli *cli = instance;
  g_autofree char *text = cli_render_event(name, data);
  cli_print(cli, text);
  /* Lines after `shutdown` (or typed while the node winds down) are not run. */
  if (g_str_equal(name, "node-stopping"))
    cli_close_input(cli);
}

static const HarkFrontendInterface cli_frontend = {
  .version = HARK_FRONTEND_INTERFACE_VERSION,
  .start = cli_start,
  .stop = cli_stop,
  .event = cli_event,
};

/* ---- settings --------------------------------------------------------------------- */

static const char *const known_settings[] = { "prompt", "history_size", NULL };

static gboolean
cli_apply_settings(HarkCli *cli, GVariant *settings, GError **error)
{
  gint64 lines;
  g_free(cli->prompt);
  if (!hark_settings_get_string(settings, "prompt", DEFAULT_PROMPT, &cli->prompt, error) ||
      !hark_settings_get_int(settings, "history_size", DEFAULT_HISTORY_SIZE, 0, MAX_HISTORY_SIZE,
                             &lines, error))
    return FALSE;
  cli->history_size = (int)lines;
  hark_settings_warn_unknown(settings, hark_context_plugin_name(cli->ctx), known_settings);
  return TRUE;
}

/* ---- the plugin ------------------------------------------------------------------- */

static void
cli_free(HarkCli *cli)
{
  g_queue_clear_full(&cli->waiting_lines, g_free);
  cli_forget_question(cli);
  g_free(cli->running_command);
  g_free(cli->prompt);
  g_free(cli->history_path);
  g_free(cli);
}

static gboolean
cli_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  HarkCli *cli = g_new0(HarkCli, 1);
  cli->ctx = ctx;
  g_queue_init(&cli->waiting_lines);
  if (!cli_apply_settings(cli, settings, error) ||
      !hark_context_register(ctx, HARK_KIND_FRONTEND, "cli", HARK_RANK_PRIMARY, &cli_frontend, cli,
                             error)) {
    cli_free(cli);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, cli);
  return TRUE;
}

static void
cli_fini(HarkContext *ctx)
{
  cli_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "cli", .version = HARK_VERSION,
                   .description = "interactive terminal (GNU readline), or commands from a script",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_FRONTEND, .init = cli_init,
                   .fini = cli_fini);
