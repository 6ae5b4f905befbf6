/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-requests.c: the login client's operations on the wire: building (and signing)
 * each request, sending it, reading its answer up to MAX_ANSWER_BYTES, and turning a
 * missing answer into an error that says what happened (what an answer says is read by
 * login-answer.c). */
#include "login-impl.h"

#include "hark/certificate.h"

/* A certificate this close to its end is not used to sign what may go unsigned: the
 * server's clock may already be past it. */
#define SIGN_MARGIN_S 60

/* ---- errors ----------------------------------------------------------------------- */

static char *
describe_tls_failure(HarkLoginClient *client, GTlsCertificateFlags flags, const GError *error)
{
  if (flags & G_TLS_CERTIFICATE_UNKNOWN_CA)
    return g_strdup_printf("its TLS certificate is not trusted: it was not issued by the CA "
                           "in login.ca (%s), so login.ca does not match this server",
                           client->ca_path);
  if (flags & (G_TLS_CERTIFICATE_EXPIRED | G_TLS_CERTIFICATE_NOT_ACTIVATED))
    return g_strdup("its TLS certificate has expired or is not valid yet (check the clock)");
  g_autofree char *why = hark_login_trust_last_refusal(client->trust);
  if (flags & G_TLS_CERTIFICATE_BAD_IDENTITY)
    return g_strdup_printf("its TLS certificate is not for the host in login.url (%s)",
                           why != NULL ? why : error->message);
  if (flags != 0)
    return g_strdup_printf("its TLS certificate is not trusted (%s)",
                           why != NULL ? why : error->message);
  return g_strdup_printf("the TLS handshake failed: %s", error->message);
}

/* No HTTP answer at all. */
static GError *
unreachable_error(Op *op, const GError *error)
{
  g_autofree char *reason = NULL;
  if (error->domain == G_TLS_ERROR || op->tls_errors != 0)
    reason = describe_tls_failure(op->client, op->tls_errors, error);
  else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    reason = g_strdup("connection refused (is it running?)");
  else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    reason = g_strdup_printf("no answer within %d s", REQUEST_TIMEOUT_SECONDS);
  else
    reason = g_strdup(error->message);
  return g_error_new(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNREACHABLE,
                     "cannot reach the login server at %s: %s", op->client->url, reason);
}

/* An HTTP answer: the object of a success, else the error it stands for. */
static JsonObject *
read_answer(Op *op, GBytes *body, GError **error)
{
  HarkLoginAsk ask = { op->client->url, op->user, op->buddy_name, op->server_words };
  const char *retry_after =
    soup_message_headers_get_one(soup_message_get_response_headers(op->msg), "Retry-After");
  return hark_login_read_answer(&ask, soup_message_get_status(op->msg),
                                soup_message_get_reason_phrase(op->msg), retry_after, body, error);
}

/* ---- operations and requests ------------------------------------------------------ */

Op *
hark_login_op_new(HarkLoginClient *client, HarkLoginDone done, gpointer done_data)
{
  Op *op = g_new0(Op, 1);
  op->client = client;
  op->done = done;
  op->done_data = done_data;
  op->generation = client->generation;
  op->user = g_strdup(client->user);
  g_hash_table_add(client->ops, op);
  return op;
}

static void
op_drop_message(Op *op)
{
  if (op->msg != NULL)
    g_signal_handlers_disconnect_by_data(op->msg, op);
  g_clear_object(&op->msg);
  g_clear_object(&op->stream);
  g_clear_pointer(&op->answer, g_byte_array_unref);
  g_clear_object(&op->attempt);
  g_clear_handle_id(&op->patience_source, g_source_remove);
}

static void
op_free(Op *op)
{
  op_drop_message(op);
  g_free(op->user);
  hark_login_wipe_free(op->password);
  g_free(op->buddy_op);
  g_free(op->buddy_name);
  g_free(op->buddy_alias);
  g_clear_pointer(&op->contacts, json_object_unref);
  g_free(op->method);
  g_free(op->path);
  g_clear_pointer(&op->body, g_bytes_unref);
  g_free(op);
}

/* Ends the op with its answer (takes result or error). */
void
hark_login_op_finish(Op *op, JsonObject *result, GError *error)
{
  HarkLoginDone done = op->done;
  gpointer done_data = op->done_data;
  if (op->client != NULL)
    g_hash_table_remove(op->client->ops, op);
  op_free(op);
  done(result, error, done_data);
}

void
hark_login_op_fail(Op *op, GError *error)
{
  hark_login_op_finish(op, NULL, error);
}

/* Did the login this op was made for end (a logout, another login) while it waited? */
gboolean
hark_login_op_is_stale(Op *op)
{
  return op->generation != op->client->generation;
}

GError *
hark_login_stale_error(void)
{
  return g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "the login changed while the request was in flight");
}

/* Hark-Certificate, Hark-Date, Hark-Nonce and Hark-Signature (docs/protocol.md, "Signed
 * requests"). */
static gboolean
sign_request(HarkLoginClient *client, SoupMessage *msg, const char *method, const char *path,
             GBytes *body, GError **error)
{
  if (client->certificate_der == NULL) {
    g_propagate_error(error, hark_login_not_logged_in_error());
    return FALSE;
  }
  gint64 date = hark_login_now_seconds(client);
  /* New for every message, also when the same request is sent again: the server refuses
   * a nonce it has seen (a replay). */
  g_autofree char *nonce = hark_request_new_nonce();
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  g_autofree char *signature = hark_request_sign(client->identity, method, path, date, nonce,
                                                 body != NULL ? body : empty, error);
  if (signature == NULL)
    return FALSE;
  gsize size;
  const guchar *der = g_bytes_get_data(client->certificate_der, &size);
  g_autofree char *certificate = g_base64_encode(der, size);
  g_autofree char *date_text = g_strdup_printf("%" G_GINT64_FORMAT, date);
  SoupMessageHeaders *headers = soup_message_get_request_headers(msg);
  soup_message_headers_replace(headers, "Hark-Certificate", certificate);
  soup_message_headers_replace(headers, "Hark-Date", date_text);
  soup_message_headers_replace(headers, "Hark-Nonce", nonce);
  soup_message_headers_replace(headers, "Hark-Signature", signature);
  return TRUE;
}

/* Every request to the login server is made here and nowhere else, from a method, a
 * path of the API and a body: so whatever carries the connection (directly, or a tunnel
 * through the proxy resolver, see login.h) gets the same requests. */
static SoupMessage *
build_request(HarkLoginClient *client, const char *method, const char *path, GBytes *body,
              gboolean sign, GError **error)
{
  g_autofree char *uri = g_strconcat(client->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new(method, uri);
  if (msg == NULL) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNREACHABLE, "bad login URL %s", uri);
    return NULL;
  }
  if (body != NULL)
    soup_message_set_request_body_from_bytes(msg, "application/json", body);
  if (sign && !sign_request(client, msg, method, path, body, error))
    return NULL;
  return g_steal_pointer(&msg);
}

/* The pinned database (login-trust.c) has already refused the certificate; this only
 * records why, so the error can say it. */
static gboolean
on_accept_certificate(SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors,
                      gpointer data)
{
  Op *op = data;
  op->tls_errors = errors;
  return FALSE;
}

/* The whole answer (body), or why there is none (error, taken). */
static void
on_answer(Op *op, GBytes *body, GError *error)
{
  GError *failure = NULL;
  JsonObject *answer = NULL;
  if (body == NULL && op->gave_up) {
    g_clear_error(&error);
    error = g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "no connection within %d ms",
                        DIRECT_CONNECT_PATIENCE_MS);
  }
  if (body == NULL && hark_login_op_try_other_way(op, error)) {
    g_error_free(error);
    return;
  }
  if (body == NULL)
    failure = unreachable_error(op, error);
  else
    answer = read_answer(op, body, &failure);
  op->step(op, answer, failure);
  if (answer != NULL)
    json_object_unref(answer);
  g_clear_error(&error);
}

static GError *
too_large_error(Op *op)
{
  return g_error_new(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                     "the login server at %s sent an answer of more than %d bytes, which is not "
                     "a hark answer",
                     op->client->url, MAX_ANSWER_BYTES);
}

static void on_read(GObject *source, GAsyncResult *result, gpointer data);

static void
read_more(Op *op)
{
  g_input_stream_read_bytes_async(op->stream, READ_CHUNK_BYTES, G_PRIORITY_DEFAULT, op->attempt,
                                  on_read, op);
}

/* The body is read a chunk at a time, up to MAX_ANSWER_BYTES. */
static void
on_read(GObject *source, GAsyncResult *result, gpointer data)
{
  Op *op = data;
  GError *error = NULL;
  g_autoptr(GBytes) chunk =
    g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), result, &error);
  if (op->client == NULL) { /* answered "cancelled" when the client was freed */
    g_clear_error(&error);
    op_free(op);
    return;
  }
  if (chunk == NULL) {
    on_answer(op, NULL, error);
    return;
  }
  gsize size = g_bytes_get_size(chunk);
  if (size == 0) {
    g_autoptr(GBytes) body = g_byte_array_free_to_bytes(g_steal_pointer(&op->answer));
    on_answer(op, body, NULL);
    return;
  }
  if (op->answer->len + size > MAX_ANSWER_BYTES) {
    op->step(op, NULL, too_large_error(op));
    return;
  }
  g_byte_array_append(op->answer, g_bytes_get_data(chunk, NULL), (guint)size);
  read_more(op);
}

static void
on_sent(GObject *source, GAsyncResult *result, gpointer data)
{
  Op *op = data;
  GError *error = NULL;
  GInputStream *stream = soup_session_send_finish(SOUP_SESSION(source), result, &error);
  if (op->client == NULL) {
    g_clear_object(&stream);
    g_clear_error(&error);
    op_free(op);
    return;
  }
  if (stream == NULL) {
    on_answer(op, NULL, error);
    return;
  }
  op->stream = stream;
  op->answer = g_byte_array_new();
  read_more(op);
}

/* Sends (again) the request saved in op. */
void
hark_login_op_transmit(Op *op)
{
  HarkLoginClient *client = op->client;
  GError *error = NULL;
  op_drop_message(op);
  op->msg = build_request(client, op->method, op->path, op->body, op->sign, &error);
  if (op->msg == NULL) {
    hark_login_op_fail(op, error);
    return;
  }
  /* A direct request takes a connection of an earlier one when there is one (the server
   * keeps them, plugins/loginsrv/keepalive.c). Through the super node a connection
   * carries one request, as the tunnel is one stream over one SN link; and a request
   * sent the other way after a failure never takes a pooled connection of the first. */
  if (client->via_tunnel)
    soup_message_headers_replace(soup_message_get_request_headers(op->msg), "Connection",
                                 "close");
  if (client->via_tunnel || op->other_way_tried)
    soup_message_add_flags(op->msg, SOUP_MESSAGE_NEW_CONNECTION);
  op->tls_errors = 0;
  op->via_tunnel = client->via_tunnel;
  op->connected = FALSE;
  op->gave_up = FALSE;
  op->attempt = g_cancellable_new();
  g_signal_connect(op->msg, "accept-certificate", G_CALLBACK(on_accept_certificate), op);
  hark_login_watch_direct_connection(op);
  soup_session_send_async(client->session, op->msg, G_PRIORITY_DEFAULT, op->attempt, on_sent, op);
}

gboolean
hark_login_can_sign(HarkLoginClient *client)
{
  return client->certificate_der != NULL &&
         client->expires - hark_login_now_seconds(client) > SIGN_MARGIN_S;
}

/* Sends one request of op; step gets the answer. Takes body (may be NULL). */
void
hark_login_op_send(Op *op, const char *method, const char *path, JsonObject *body, gboolean sign,
                   OpStep step)
{
  g_free(op->method);
  g_free(op->path);
  g_clear_pointer(&op->body, g_bytes_unref);
  op->method = g_strdup(method);
  op->path = g_strdup(path);
  op->body = body != NULL ? hark_login_json_body(body) : NULL;
  op->sign = sign;
  op->other_way_tried = FALSE;
  op->step = step;
  if (body != NULL)
    json_object_unref(body);
  hark_login_op_transmit(op);
}
