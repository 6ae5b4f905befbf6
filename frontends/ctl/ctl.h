/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl.h: what the parts of the ctl frontend share. ctl.c is the plugin itself
 * (settings, the listening sockets, start/stop, events); connection.c is one
 * connected client (line framing, the write queue). What a line asks for, running it
 * and the answer's JSON are the core's (hark/control.h), shared with the web frontend. */
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
