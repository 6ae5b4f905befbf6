/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl.h: what the parts of the ctl frontend share. ctl.c is the plugin itself
 * (settings, the listening sockets, start/stop, events); connection.c is one
 * connected client (line framing, requests and answers, the write queue); line.c reads
 * what one line asks for. */
#pragma once

#include <hark/hark.h>

/* A client that lets this much output pile up unread is disconnected. */
#define CTL_MAX_QUEUED_BYTES (1024 * 1024)

typedef struct _CtlConnection CtlConnection;

typedef struct {
  HarkContext *ctx;
  /* settings */
  char *socket_setting;
  guint max_clients;
  gsize max_line;
  /* while started */
  char *socket_path; /* set once we have bound it: the file is ours to remove */
  GPtrArray *listeners; /* CtlListener*, see ctl.c */
  GPtrArray *connections; /* CtlConnection*, one reference each */
  guint connection_seq; /* numbers connections in log lines */
} CtlServer;

/* Takes socket (non-blocking, connected); queues the hello and starts reading.
 * The server's connections array holds the returned reference. */
CtlConnection *ctl_connection_new(CtlServer *server, GSocket *socket);
CtlConnection *ctl_connection_ref(CtlConnection *connection);
void ctl_connection_unref(CtlConnection *connection);
/* Queue one complete line (ending in '\n'); drops it once the connection is closed. */
void ctl_connection_send_text(CtlConnection *connection, const char *text, gsize length);
/* Write what is queued, waiting (in this thread) no later than deadline (monotonic µs). */
void ctl_connection_flush(CtlConnection *connection, gint64 deadline);
/* Detach from the main loop, close the socket and leave the server's list. */
void ctl_connection_close(CtlConnection *connection);

/* {"id": id, "ok": ok}: the start of every answer (a copy of id; NULL: null). */
JsonObject *ctl_answer_new(JsonNode *id, gboolean ok);
/* object as one compact line, "\n" included. */
GString *ctl_object_line(JsonObject *object);
/* {"id": id, "ok": false, "error": {"code": code, "message": message}} + "\n". id may be NULL. */
GString *ctl_error_line(JsonNode *id, const char *code, const char *message);
/* root as one compact line, "\n" included. */
GString *ctl_json_line(JsonNode *root);

/* What one line (without its '\n') asks for. */
typedef enum {
  CTL_LINE_BLANK, /* nothing: it is ignored */
  CTL_LINE_CALL, /* run command with args */
  CTL_LINE_BAD, /* answer a bad-request error */
} CtlLineKind;

typedef struct {
  JsonNode *id; /* the request's id, to echo; NULL when it had none (or a bad one) */
  char *command; /* CTL_LINE_CALL: the command's name */
  JsonObject *args; /* CTL_LINE_CALL: its arguments, NULL when none were given */
  char *error; /* CTL_LINE_BAD: why */
} CtlLine;

/* Fills out (free it with ctl_line_clear) and says which kind of line it is. */
CtlLineKind ctl_line_parse(const char *line, gsize length, CtlLine *out);
void ctl_line_clear(CtlLine *line);
