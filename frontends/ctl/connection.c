/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* connection.c: one client of the ctl frontend.
 *
 * Reads newline-delimited JSON requests, runs them through the node's command table
 * and queues one answer per request; events are queued by ctl.c. The socket is
 * non-blocking and output goes through a per-connection queue written whenever the
 * socket can take it, so a slow reader never blocks the node's main loop. */
#include "ctl.h"

#define READ_CHUNK 65536

struct _CtlConnection {
  gint ref_count;
  CtlServer *server; /* NULL once closed */
  guint number; /* for log lines */
  GSocket *socket;
  GSource *read_source;
  GSource *write_source;
  GByteArray *input; /* received bytes not yet part of a complete line */
  GByteArray *output; /* queued bytes not yet written */
  gboolean eof; /* the client will send no more: close once answered and written */
  gboolean closing; /* close as soon as the output is written */
  gboolean deaf; /* the client stopped reading: output is dropped, input still read */
  guint pending; /* requests not yet answered */
};

static gboolean on_readable(GSocket *socket, GIOCondition condition, gpointer data);
static gboolean on_writable(GSocket *socket, GIOCondition condition, gpointer data);

/* ---- lines out ----------------------------------------------------------------- */

/* Takes text (one JSON object) and sends it as a line. */
static void
send_string(CtlConnection *c, GString *text)
{
  g_string_append_c(text, '\n');
  ctl_connection_send_text(c, text->str, text->len);
  g_string_free(text, TRUE);
}

static void
send_bad_request(CtlConnection *c, JsonNode *id, const char *message)
{
  send_string(c, hark_control_error_text(id, "bad-request", message));
}

/* ---- the write queue --------------------------------------------------------------- */

static void
detach_source(GSource **source)
{
  if (*source != NULL) {
    g_source_destroy(*source);
    g_clear_pointer(source, g_source_unref);
  }
}

static GSource *
attach_socket_source(CtlConnection *c, GIOCondition condition, GSocketSourceFunc func)
{
  GSource *source = g_socket_create_source(c->socket, condition, NULL);
  g_source_set_callback(source, G_SOURCE_FUNC(func), c, NULL);
  g_source_attach(source, hark_context_main_context(c->server->ctx));
  return source;
}

/* Close once there is nothing left to do for the client. */
static void
maybe_finish(CtlConnection *c)
{
  if (c->server == NULL || c->output->len > 0)
    return;
  if (c->closing || (c->eof && c->pending == 0))
    ctl_connection_close(c);
}

/* Write as much as the socket takes now. When the client has gone away, what it sent
 * before is still read and run (`echo '{"command": "shutdown"}' | nc -U ...` must
 * work), so a failed write only stops the writing. */
static void
write_some(CtlConnection *c)
{
  while (c->output->len > 0) {
    g_autoptr(GError) error = NULL;
    gssize sent =
      g_socket_send(c->socket, (const char *)c->output->data, c->output->len, NULL, &error);
    if (sent < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
      break;
    if (sent < 0) {
      g_debug("client %u: write failed (%s); dropping its output", c->number, error->message);
      c->deaf = TRUE;
      g_byte_array_set_size(c->output, 0);
      break;
    }
    g_byte_array_remove_range(c->output, 0, sent);
  }
}

static void
write_queue(CtlConnection *c)
{
  write_some(c);
  if (c->output->len > 0 && c->write_source == NULL)
    c->write_source = attach_socket_source(c, G_IO_OUT, on_writable);
  else if (c->output->len == 0)
    detach_source(&c->write_source);
  maybe_finish(c);
}

static gboolean
on_writable(GSocket *socket, GIOCondition condition, gpointer data)
{
  CtlConnection *c = ctl_connection_ref(data);
  write_queue(c);
  ctl_connection_unref(c);
  return G_SOURCE_CONTINUE; /* write_queue destroys the source when it is done */
}

void
ctl_connection_send_text(CtlConnection *c, const char *text, gsize length)
{
  if (c->server == NULL || c->deaf)
    return;
  if (c->output->len + length > CTL_MAX_QUEUED_BYTES) {
    g_warning("client %u does not read its output (more than %d bytes queued); "
              "disconnecting it",
              c->number, CTL_MAX_QUEUED_BYTES);
    ctl_connection_close(c);
    return;
  }
  g_byte_array_append(c->output, (const guint8 *)text, length);
  write_queue(c);
}

void
ctl_connection_flush(CtlConnection *c, gint64 deadline)
{
  while (c->server != NULL && c->output->len > 0) {
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0 || !g_socket_condition_timed_wait(c->socket, G_IO_OUT, left, NULL, NULL))
      return;
    write_some(c);
  }
}

/* ---- requests in --------------------------------------------------------------------- */

/* The answer to one line (NULL for a blank one): now, or later for commands that wait. */
static void
line_done(GString *answer, gpointer data)
{
  CtlConnection *c = data;
  c->pending--;
  if (answer != NULL)
    send_string(c, answer);
  maybe_finish(c);
  ctl_connection_unref(c);
}

/* One line, without its '\n'. */
static void
handle_line(CtlConnection *c, const char *line, gsize length)
{
  c->pending++;
  hark_control_handle(c->server->ctx, line, length, line_done, ctl_connection_ref(c));
}

/* A line longer than max_line is refused and the connection closed: reading on would
 * mean buffering without bound, or resynchronising in the middle of someone's JSON. */
static void
refuse_long_line(CtlConnection *c)
{
  g_autofree char *message = g_strdup_printf(
    "line longer than %" G_GSIZE_FORMAT " bytes; closing the connection", c->server->max_line);
  g_message("client %u sent a line longer than %" G_GSIZE_FORMAT " bytes; closing it", c->number,
            c->server->max_line);
  detach_source(&c->read_source);
  g_byte_array_set_size(c->input, 0);
  c->closing = TRUE;
  send_bad_request(c, NULL, message);
  maybe_finish(c);
}

static void
handle_input(CtlConnection *c)
{
  gsize start = 0;
  while (c->server != NULL && !c->closing) {
    const guint8 *line = c->input->data + start;
    const guint8 *newline = memchr(line, '\n', c->input->len - start);
    gsize length = newline ? (gsize)(newline - line) : c->input->len - start;
    if (length > c->server->max_line) {
      refuse_long_line(c);
      return;
    }
    if (newline == NULL)
      break;
    if (length > 0 && line[length - 1] == '\r')
      length--; /* CRLF from telnet-like tools */
    handle_line(c, (const char *)line, length);
    start = newline + 1 - c->input->data;
  }
  if (c->server != NULL)
    g_byte_array_remove_range(c->input, 0, MIN(start, c->input->len));
}

/* `printf '{"command":"state"}' | socat ...` sends no final newline: take the rest. */
static void
handle_last_line(CtlConnection *c)
{
  if (c->server != NULL && !c->closing && c->input->len > 0)
    handle_line(c, (const char *)c->input->data, c->input->len);
  g_byte_array_set_size(c->input, 0);
}

static gboolean
on_readable(GSocket *socket, GIOCondition condition, gpointer data)
{
  CtlConnection *c = ctl_connection_ref(data);
  guint8 buffer[READ_CHUNK];
  g_autoptr(GError) error = NULL;
  gssize received = g_socket_receive(socket, (char *)buffer, sizeof buffer, NULL, &error);
  if (received > 0) {
    g_byte_array_append(c->input, buffer, received);
    handle_input(c);
  } else if (received == 0 || !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
    g_debug("client %u: %s", c->number, received == 0 ? "end of input" : error->message);
    detach_source(&c->read_source);
    c->eof = TRUE;
    handle_last_line(c);
    maybe_finish(c);
  }
  ctl_connection_unref(c);
  return G_SOURCE_CONTINUE; /* on end of input, detach_source has destroyed it */
}

/* ---- life ------------------------------------------------------------------------------- */

static void
send_hello(CtlConnection *c)
{
  g_autoptr(JsonObject) hello = hark_control_hello_new(c->server->ctx);
  send_string(c, hark_control_object_text(hello));
}

CtlConnection *
ctl_connection_new(CtlServer *server, GSocket *socket)
{
  CtlConnection *c = g_new0(CtlConnection, 1);
  c->ref_count = 1;
  c->server = server;
  c->number = ++server->connection_seq;
  c->socket = socket;
  c->input = g_byte_array_new();
  c->output = g_byte_array_new();
  g_ptr_array_add(server->connections, c);
  g_debug("client %u connected", c->number);
  c->read_source = attach_socket_source(c, G_IO_IN, on_readable);
  send_hello(c);
  return c;
}

CtlConnection *
ctl_connection_ref(CtlConnection *c)
{
  g_atomic_int_inc(&c->ref_count);
  return c;
}

void
ctl_connection_unref(CtlConnection *c)
{
  if (!g_atomic_int_dec_and_test(&c->ref_count))
    return;
  detach_source(&c->read_source);
  detach_source(&c->write_source);
  g_clear_object(&c->socket);
  g_byte_array_unref(c->input);
  g_byte_array_unref(c->output);
  g_free(c);
}

void
ctl_connection_close(CtlConnection *c)
{
  CtlServer *server = c->server;
  if (server == NULL)
    return;
  c->server = NULL;
  g_debug("client %u disconnected", c->number);
  detach_source(&c->read_source);
  detach_source(&c->write_source);
  g_socket_close(c->socket, NULL);
  g_byte_array_set_size(c->output, 0);
  /* Last: the server's reference may be the last one. */
  g_ptr_array_remove(server->connections, c);
}
