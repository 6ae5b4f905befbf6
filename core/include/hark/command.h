/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* command.h: the one command table that every frontend (cli, ctl, web) serves.
 *
 * A command is registered once, by the core or by a plugin, and then exists in every
 * frontend: the ctl frontend passes a JSON object of arguments, the cli turns the
 * words a person typed into the same object with hark_command_parse_words(). A command
 * answers exactly once, now or later (so it may wait for the network), with a JSON
 * result or an error. */
#pragma once

#include "hark/export.h"

#include "hark/context.h"

G_BEGIN_DECLS

#define HARK_COMMAND_ERROR (hark_command_error_quark())
HARK_API GQuark hark_command_error_quark(void);

typedef enum {
  HARK_COMMAND_ERROR_UNKNOWN_COMMAND, /* "unknown-command" */
  HARK_COMMAND_ERROR_BAD_ARGUMENTS, /* "bad-arguments" */
  HARK_COMMAND_ERROR_FAILED, /* "failed" */
  HARK_COMMAND_ERROR_CANCELLED, /* "cancelled": the node stopped before the answer */
} HarkCommandError;

/* The stable string for an error code, as sent by ctl ("bad-arguments", ...). */
HARK_API const char *hark_command_error_code_name(HarkCommandError code);

typedef enum {
  HARK_PARAM_STRING,
  HARK_PARAM_INT,
  HARK_PARAM_BOOL,
} HarkParamType;

typedef struct {
  const char *name;
  HarkParamType type;
  gboolean required;
  const char *help;
  /* A password or the like: `hark ctl` never takes it from its command line (every local
   * user can read that), it asks for it; `help` says "secret": true. */
  gboolean secret;
} HarkCommandParam;

typedef struct _HarkCommandCall HarkCommandCall;

/* args has been checked against the params: required ones are there with the right
 * JSON type, and there are no others. Answer with hark_command_call_return*(). */
typedef void (*HarkCommandFunc)(HarkCommandCall *call, JsonObject *args, gpointer user_data);

#define HARK_COMMAND_VERSION 1

typedef struct {
  guint32 version; /* HARK_COMMAND_VERSION */
  const char *name; /* [a-z][a-z0-9-]* */
  const char *summary;
  const HarkCommandParam *params; /* ends with an entry whose name is NULL; may be NULL */
  HarkCommandFunc run;
} HarkCommand;

/* The table must stay valid while registered (a static const is usual). */
HARK_API gboolean hark_context_add_command(HarkContext *ctx, const HarkCommand *command,
                                           gpointer user_data, GError **error);

/* Every registered command, sorted by name; elements owned by the core. */
HARK_API GPtrArray *hark_context_list_commands(HarkContext *ctx);
HARK_API const HarkCommand *hark_context_find_command(HarkContext *ctx, const char *name);

/* The answer: result may be NULL (then the result is an empty object). */
typedef void (*HarkCommandDone)(JsonNode *result, const GError *error, gpointer user_data);

/* Check args (may be NULL for none) and run the command; done is called exactly once,
 * possibly before this returns. */
HARK_API void hark_context_run_command(HarkContext *ctx, const char *name, JsonObject *args,
                                       HarkCommandDone done, gpointer user_data);

/* Words typed after the command name -> args: positional words fill the params in
 * order, NAME=VALUE sets one by name; values are converted to the param's type. */
HARK_API JsonObject *hark_command_parse_words(const HarkCommand *command, const char *const *words,
                                              GError **error);

/* Every string and member name in node is UTF-8. json-glib does not make sure of it (an
 * escaped lone surrogate, "\ud800", becomes bytes that are not UTF-8), so JSON a client
 * or a server sent is checked with this before its strings are used as text: in
 * arguments, answers, events and log lines. */
HARK_API gboolean hark_json_is_text(JsonNode *node);

HARK_API HarkContext *hark_command_call_get_context(HarkCommandCall *call);
/* Takes result (may be NULL). Ends the call. */
HARK_API void hark_command_call_return(HarkCommandCall *call, JsonNode *result);
HARK_API void hark_command_call_return_object(HarkCommandCall *call, JsonObject *result);
/* Takes error. Ends the call. */
HARK_API void hark_command_call_return_error(HarkCommandCall *call, GError *error);

/* A call is freed only by one of the hark_command_call_return*() functions. When the
 * node stops before a command answered, the caller is told "cancelled" at once, but
 * the command must still return the call (at the latest in its plugin's fini); that
 * late answer goes nowhere. */

G_END_DECLS
