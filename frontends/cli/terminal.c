/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* terminal.c: the cli on a terminal, with GNU readline in callback mode.
 *
 * readline never blocks the node: a watch on fd 0 in the node's main context feeds it
 * one character at a time. It gives a prompt, line editing, history kept in
 * <state dir>/cli_history (0600), and tab completion of command names (then of
 * argument names) from the node's command table, so commands that plugins add are
 * completed too. readline is one global state per process, so one cli at a time may
 * own the terminal.
 *
 * A secret the line left out (`login alice`) is asked for at its own prompt: readline
 * keeps the terminal's echo off anyway and draws the line itself, so while asking, its
 * redisplay function draws the prompt only. That line goes to cli_take_secret(), never
 * to the history, and neither does a line typed with the secret in it. */
#include "cli.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#define HISTORY_FILE "cli_history"

/* readline's callbacks take no user data: the cli that owns the terminal. */
static HarkCli *terminal_owner;

/* ---- history ---------------------------------------------------------------------- */

static void
history_start(HarkCli *cli)
{
  if (cli->history_size == 0)
    return;
  cli->history_path = g_build_filename(hark_context_state_dir(cli->ctx), HISTORY_FILE, NULL);
  using_history();
  stifle_history(cli->history_size);
  int rc = read_history(cli->history_path); /* an errno value */
  if (rc != 0 && rc != ENOENT)
    g_warning("cli: cannot read the history %s: %s", cli->history_path, g_strerror(rc));
}

/* A line starting with a space is not kept (the shell convention: for secrets), nor
 * one that repeats the line before it. */
static void
history_remember(HarkCli *cli, const char *line)
{
  if (cli->history_path == NULL || line[0] == '\0' || line[0] == ' ')
    return;
  HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
  if (last == NULL || strcmp(last->line, line) != 0)
    add_history(line);
}

static void
history_save(HarkCli *cli)
{
  if (cli->history_path == NULL)
    return;
  int rc = write_history(cli->history_path); /* an errno value; the file is made 0600 */
  if (rc != 0)
    g_warning("cli: cannot save the history %s: %s", cli->history_path, g_strerror(rc));
  else if (g_chmod(cli->history_path, 0600) != 0) /* an older file may have been wider */
    g_warning("cli: cannot make %s private: %s", cli->history_path, g_strerror(errno));
  clear_history();
}

/* ---- completion ------------------------------------------------------------------- */

/* What the word being completed may become; set around rl_completion_matches. */
static GStrv completion_candidates;

static char *
next_completion(const char *text, int state)
{
  static guint next;
  if (state == 0)
    next = 0;
  while (completion_candidates != NULL && completion_candidates[next] != NULL) {
    const char *candidate = completion_candidates[next++];
    if (g_str_has_prefix(candidate, text))
      return strdup(candidate); /* readline frees it with free() */
  }
  return NULL;
}

static GStrv
command_names(HarkContext *ctx)
{
  g_autoptr(GStrvBuilder) names = g_strv_builder_new();
  g_autoptr(GPtrArray) commands = hark_context_list_commands(ctx);
  for (guint i = 0; i < commands->len; i++)
    g_strv_builder_add(names, ((const HarkCommand *)commands->pdata[i])->name);
  return g_strv_builder_end(names);
}

/* "name=" for each argument of the line's command. */
static GStrv
argument_names(HarkContext *ctx, const char *line)
{
  line += strspn(line, " \t");
  g_autofree char *name = g_strndup(line, strcspn(line, " \t"));
  const HarkCommand *command = hark_context_find_command(ctx, name);
  g_autoptr(GStrvBuilder) names = g_strv_builder_new();
  for (const HarkCommandParam *p = command ? command->params : NULL; p && p->name; p++) {
    g_autofree char *word = g_strconcat(p->name, "=", NULL);
    g_strv_builder_add(names, word);
  }
  return g_strv_builder_end(names);
}

static char **
complete(const char *text, int start, int end)
{
  rl_attempted_completion_over = 1; /* never file names */
  if (terminal_owner->asking_command != NULL)
    return NULL; /* a secret: nothing to list */
  gboolean first_word = strspn(rl_line_buffer, " \t") >= (size_t)start;
  HarkContext *ctx = terminal_owner->ctx;
  completion_candidates = first_word ? command_names(ctx) : argument_names(ctx, rl_line_buffer);
  if (!first_word)
    rl_completion_append_character = '\0'; /* the value follows the '=' */
  char **matches = rl_completion_matches(text, next_completion);
  g_clear_pointer(&completion_candidates, g_strfreev);
  return matches;
}

/* ---- secrets ---------------------------------------------------------------------- */

/* The prompt without the line: what is typed stays in readline's buffer, off the screen
 * (and the cursor stays put after the prompt, so not even the length shows). */
static void
redisplay_prompt_only(void)
{
  int end = rl_end, point = rl_point;
  rl_end = rl_point = 0;
  rl_redisplay();
  rl_end = end;
  rl_point = point;
}

/* A startup hook, once: the line that was being typed when a secret was asked. */
static int
restore_typed_ahead(void)
{
  HarkCli *cli = terminal_owner;
  rl_startup_hook = NULL;
  if (cli != NULL && cli->typed_ahead != NULL) {
    rl_insert_text(cli->typed_ahead);
    g_clear_pointer(&cli->typed_ahead, g_free);
  }
  return 0;
}

void
cli_terminal_ask_secret(HarkCli *cli, const char *prompt)
{
  if (!cli->readline_installed)
    return;
  if (!cli->in_line_handler) {
    /* A line that waited for its turn: put aside what is being typed meanwhile. */
    rl_clear_visible_line();
    char *text = rl_copy_text(0, rl_end);
    g_free(cli->typed_ahead);
    cli->typed_ahead = g_strdup(text);
    free(text);
    rl_replace_line("", 1);
  }
  rl_redisplay_function = redisplay_prompt_only;
  rl_set_prompt(prompt);
  /* In the line handler, readline shows the new prompt when the handler returns. */
  if (!cli->in_line_handler) {
    rl_on_new_line();
    rl_redisplay_function();
  }
}

/* The command prompt again (without the line typed ahead: see on_readline_line). */
static void
secret_prompt_end(HarkCli *cli)
{
  rl_redisplay_function = rl_redisplay;
  rl_set_prompt(cli->prompt);
}

/* ---- input ------------------------------------------------------------------------ */

/* readline has a whole line (or NULL at Ctrl-D on an empty line); it has already moved
 * the cursor past the prompt and handed the terminal back, so output goes straight out. */
static void
on_readline_line(char *line)
{
  HarkCli *cli = terminal_owner;
  cli->in_line_handler = TRUE;
  if (cli->asking_command != NULL) {
    /* A secret, or at Ctrl-D none: the command is dropped, the cli goes on. */
    secret_prompt_end(cli);
    cli_take_secret(cli, line); /* may ask for the next one (passwd: old, new) */
    if (cli->asking_command == NULL && cli->typed_ahead != NULL && cli->readline_installed)
      rl_startup_hook = restore_typed_ahead; /* readline runs it as it shows the prompt */
    if (line != NULL)
      explicit_bzero(line, strlen(line));
#if RL_READLINE_VERSION >= 0x0801
    else
      rl_eof_found = 0; /* else readline ends every later line with one more newline */
#endif
    rl_free_undo_list(); /* the secret's keystrokes */
  } else {
    /* (at Ctrl-D readline itself has moved to a new line) */
    if (line != NULL && !cli_line_has_secret(cli, line))
      history_remember(cli, line);
    cli_take_line(cli, line);
  }
  cli->in_line_handler = FALSE;
  free(line);
}

static gboolean
on_terminal_input(int fd, GIOCondition condition, gpointer user_data)
{
  HarkCli *cli = user_data;
  if (condition & (G_IO_ERR | G_IO_NVAL))
    cli_take_line(cli, NULL); /* the terminal is gone: as if the input ended */
  else
    rl_callback_read_char();
  return G_SOURCE_CONTINUE; /* closing the input destroys this source */
}

gboolean
cli_terminal_start(HarkCli *cli, GError **error)
{
  if (terminal_owner != NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                "the terminal is already used by the cli of another node in this process");
    return FALSE;
  }
  terminal_owner = cli;
  rl_readline_name = "hark"; /* for $if hark in ~/.inputrc */
  rl_instream = stdin;
  rl_outstream = stdout;
  /* The node handles SIGINT and SIGTERM and stops cleanly; stop() restores the terminal. */
  rl_catch_signals = 0;
  rl_change_environment = 0; /* no setenv(LINES, COLUMNS) from a library */
  rl_attempted_completion_function = complete;
  history_start(cli);
  rl_callback_handler_install(cli->prompt, on_readline_line);
  cli->readline_installed = TRUE;
  cli->terminal_source = g_unix_fd_source_new(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback(cli->terminal_source, G_SOURCE_FUNC(on_terminal_input), cli, NULL);
  g_source_attach(cli->terminal_source, hark_context_main_context(cli->ctx));
  return TRUE;
}

void
cli_terminal_close_input(HarkCli *cli)
{
  if (cli->terminal_source != NULL) {
    g_source_destroy(cli->terminal_source);
    g_clear_pointer(&cli->terminal_source, g_source_unref);
  }
  if (cli->readline_installed) {
    if (!cli->in_line_handler)
      rl_clear_visible_line(); /* the prompt and any half-typed line */
    rl_callback_handler_remove(); /* also restores the terminal's modes */
    cli->readline_installed = FALSE;
    rl_redisplay_function = rl_redisplay; /* a secret may have been asked */
    rl_startup_hook = NULL;
  }
  g_clear_pointer(&cli->typed_ahead, g_free);
}

void
cli_terminal_stop(HarkCli *cli)
{
  if (terminal_owner != cli)
    return;
  cli_terminal_close_input(cli);
  history_save(cli);
  rl_attempted_completion_function = NULL;
  terminal_owner = NULL;
}

/* Above the prompt: clear the visible line, print, and draw prompt and line again. */
void
cli_terminal_print(HarkCli *cli, const char *text)
{
  gboolean prompt_shown = cli->readline_installed && !cli->in_line_handler;
  if (prompt_shown)
    rl_clear_visible_line();
  fputs(text, stdout);
  fflush(stdout);
  if (prompt_shown) {
    rl_on_new_line();
    rl_redisplay_function(); /* the prompt only while a secret is typed */
  }
}
