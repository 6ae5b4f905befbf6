/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* control.h: the control protocol (docs/control-protocol.md), shared by the frontends
 * that speak it (ctl over a unix socket, one request per line; web over a WebSocket,
 * one per message) and by its clients, such as `hark ctl`. What a request asks for,
 * running it through the node's command table and the answer's JSON are here, so both
 * frontends give the same answers and only frame them differently. */
#pragma once

#include "hark/export.h"

#include "hark/context.h"

G_BEGIN_DECLS

/* The "protocol" number in the hello event; raised when a client must change. */
#define HARK_CONTROL_PROTOCOL_VERSION 1

/* The ctl plugin's socket when its `socket` setting is not given, relative to the
 * node's state directory (see hark_config_state_path()). */
#define HARK_CONTROL_DEFAULT_SOCKET "ctl.sock"

/* What one request (a line, a message) asks for. */
typedef enum {
  HARK_CONTROL_REQUEST_BLANK, /* nothing but white space: it is ignored */
  HARK_CONTROL_REQUEST_CALL, /* run command with args */
  HARK_CONTROL_REQUEST_BAD, /* answer a bad-request error */
} HarkControlRequestKind;

typedef struct {
  JsonNode *id; /* the request's id, to echo; NULL when it had none (or a bad one) */
  char *command; /* CALL: the command's name */
  JsonObject *args; /* CALL: its arguments, NULL when none were given */
  char *error; /* BAD: why */
} HarkControlRequest;

/* Fills out (free it with hark_control_request_clear) and says which kind it is. The
 * text need not be UTF-8 or end in a NUL; length is its length in bytes. */
HARK_API HarkControlRequestKind hark_control_request_parse(const char *text, gsize length,
                                                           HarkControlRequest *out);
HARK_API void hark_control_request_clear(HarkControlRequest *request);

/* {"id": id, "ok": ok}: the start of every answer (a copy of id; NULL: null). */
HARK_API JsonObject *hark_control_answer_new(JsonNode *id, gboolean ok);
/* root as compact JSON on one line, without a newline. */
HARK_API GString *hark_control_json_text(JsonNode *root);
HARK_API GString *hark_control_object_text(JsonObject *object);
/* {"id": id, "ok": false, "error": {"code": code, "message": message}}. id may be NULL. */
HARK_API GString *hark_control_error_text(JsonNode *id, const char *code, const char *message);
/* The hello event every connection starts with. */
HARK_API JsonObject *hark_control_hello_new(HarkContext *ctx);

/* An answer (compact JSON, no newline); NULL when the request was blank. */
typedef void (*HarkControlReply)(GString *answer, gpointer user_data);

/* Read one request and run it through the node's command table; reply is called exactly
 * once, possibly before this returns (a blank or bad request, a command that answers at
 * once), or later (a command that waits for the network). reply owns the answer. */
HARK_API void hark_control_handle(HarkContext *ctx, const char *text, gsize length,
                                  HarkControlReply reply, gpointer user_data);

G_END_DECLS
