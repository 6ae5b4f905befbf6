/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli.h: the cli frontend's private pieces, shared by its three files.
 *
 * cli.c      the plugin: settings, start/stop, one line -> one command, output;
 *            reads stdin line by line when it is not a terminal (scripts, tests)
 * terminal.c GNU readline when stdin is a terminal: prompt, history, completion,
 *            printing above the line being typed, and secrets asked without echo
 * render.c   answers, errors and events as text for people (never JSON) */
#pragma once

#include <hark/hark.h>

G_BEGIN_DECLS

typedef struct _HarkCli HarkCli;

struct _HarkCli {
  HarkContext *ctx;

  /* settings */
  char *prompt;
  int history_size; /* lines kept in <state dir>/cli_history; 0: keep none */

  gboolean interactive; /* stdin is a terminal: readline; otherwise plain lines */
  gboolean input_closed; /* end of input, node stopping, or stopped: read no more */

  /* Lines run one at a time, in order: a line waits here while a command is running. */
  GQueue waiting_lines;
  char *running_command; /* the command being answered (NULL when idle) */
  gboolean dispatching; /* inside cli_run_waiting_lines: answers now need no new run */

  /* A command whose line left out a secret (`login alice`): it runs once the secrets are
   * in. The next line is the secret: typed without echo at a prompt on a terminal, the
   * next input line otherwise. */
  char *asking_command;
  JsonObject *asking_args;
  gboolean warned_visible_secret; /* told once that a secret typed in a line was shown */

  /* stdin as a pipe or file */
  GDataInputStream *lines_in;
  GCancellable *read_cancellable;
  gboolean read_pending;

  /* stdin as a terminal (terminal.c) */
  GSource *terminal_source;
  gboolean readline_installed;
  gboolean in_line_handler; /* readline has moved past the prompt: print directly */
  char *typed_ahead; /* the half-typed line put aside while a secret is asked */
  char *history_path;
};

/* cli.c: for terminal.c */
/* A line the person (or script) entered; NULL at end of input. */
void cli_take_line(HarkCli *cli, const char *line);
/* The secret asked for (typed without echo); NULL when the person gave up (Ctrl-D). */
void cli_take_secret(HarkCli *cli, const char *secret);
/* Whether a typed line carries a secret (or may: it cannot be parsed and its command
 * has one): such a line is not kept in the history. */
gboolean cli_line_has_secret(HarkCli *cli, const char *line);

/* terminal.c */
gboolean cli_terminal_start(HarkCli *cli, GError **error);
/* Stop reading and hand the terminal back, leaving the cursor on an empty line. */
void cli_terminal_close_input(HarkCli *cli);
/* Save history and forget readline's state. */
void cli_terminal_stop(HarkCli *cli);
/* Print text (whole lines) without garbling the line being typed. */
void cli_terminal_print(HarkCli *cli, const char *text);
/* Show prompt and read the next line without echo; it goes to cli_take_secret(). */
void cli_terminal_ask_secret(HarkCli *cli, const char *prompt);

/* render.c: each returns whole lines, every one ending in '\n'. */
char *cli_render_result(const char *command, JsonNode *result);
char *cli_render_error(const GError *error);
char *cli_render_event(const char *name, JsonObject *data);

G_END_DECLS
