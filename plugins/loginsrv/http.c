/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* http.c: the login server's requests: routing, the size limit, answers in the one
 * error shape of docs/protocol.md, jobs on worker threads, and the request log.
 *
 * Everything here runs on the node's main context. A handler either answers at once
 * (bad input, the version) or starts a job: the message is paused, the job's work runs
 * on a GTask worker thread (argon2 and every store call block), and its reply is sent
 * back on the main context, where the message is unpaused. The request log (debug
 * level) has method, path, status and time, never a body. */
#include "loginsrv.h"

#include <string.h>

#include <openssl/crypto.h>

/* RFC 6585; libsoup 3.2 has no name for it. */
#define LOGIN_STATUS_TOO_MANY_REQUESTS 429

/* Whether a route needs the signature headers (auth.c). A look-up may come signed or not:
 * signed, it counts against its account instead of its address, so users behind one NAT
 * do not share one budget. */
typedef enum {
  UNSIGNED,
  SIGNED,
  SIGNED_IF_SENT, /* checked when Hark-Signature is there; anonymous otherwise */
} RouteSigning;

typedef struct {
  const char *method;
  const char *path;
  gboolean prefix; /* path is a prefix ending in '/', followed by one segment */
  gboolean query; /* takes a query string */
  RouteSigning signing;
  void (*handle)(LoginRequest *req);
  const char *suffix; /* a prefix route's path after its segment (NULL: none) */
  gsize max_body; /* a larger body than the max_body setting (0: that setting) */
} Route;

static const Route routes[] = {
  { "POST", "/v1/register", FALSE, FALSE, UNSIGNED, login_handle_register },
  { "GET", "/v1/nonce", FALSE, FALSE, UNSIGNED, login_handle_nonce },
  { "POST", "/v1/login", FALSE, FALSE, UNSIGNED, login_handle_login },
  { "POST", "/v1/renew", FALSE, FALSE, SIGNED, login_handle_renew },
  { "POST", "/v1/password", FALSE, FALSE, UNSIGNED, login_handle_password },
  { "POST", "/v1/delete", FALSE, FALSE, UNSIGNED, login_handle_delete },
  { "GET", "/v1/buddies", FALSE, FALSE, SIGNED, login_handle_buddies_get },
  { "POST", "/v1/buddies", FALSE, FALSE, SIGNED, login_handle_buddies_change },
  { "GET", "/v1/contacts", FALSE, FALSE, SIGNED, login_handle_contacts_get },
  { "POST", "/v1/contacts", FALSE, FALSE, SIGNED, login_handle_contacts_change },
  { "GET", "/v1/devices", FALSE, FALSE, SIGNED, login_handle_devices_get },
  { "POST", "/v1/devices/remove", FALSE, FALSE, SIGNED, login_handle_devices_remove },
  { "GET", "/v1/users/", TRUE, FALSE, SIGNED, login_handle_user_devices, "/devices" },
  { "GET", "/v1/users/", TRUE, FALSE, SIGNED_IF_SENT, login_handle_user },
  { "GET", "/v1/users", FALSE, TRUE, SIGNED_IF_SENT, login_handle_users },
  { "GET", "/v1/version", FALSE, FALSE, UNSIGNED, login_handle_version },
  { "POST", "/v1/messages", FALSE, FALSE, SIGNED, login_handle_messages_hold, NULL,
    LOGIN_MESSAGES_BODY_MAX },
  { "GET", "/v1/messages", FALSE, FALSE, SIGNED, login_handle_messages_get },
  { "POST", "/v1/messages/ack", FALSE, FALSE, SIGNED, login_handle_messages_ack },
};

static const struct {
  const char *code;
  guint status;
} error_statuses[] = {
  { "bad-request", SOUP_STATUS_BAD_REQUEST },
  { "bad-name", SOUP_STATUS_BAD_REQUEST },
  { "weak-password", SOUP_STATUS_BAD_REQUEST },
  { "bad-key", SOUP_STATUS_BAD_REQUEST },
  { "bad-proof", SOUP_STATUS_BAD_REQUEST },
  { "unknown-user", SOUP_STATUS_NOT_FOUND },
  { "user-exists", SOUP_STATUS_CONFLICT },
  { "wrong-credentials", SOUP_STATUS_UNAUTHORIZED },
  { "locked-out", LOGIN_STATUS_TOO_MANY_REQUESTS },
  { "unauthenticated", SOUP_STATUS_UNAUTHORIZED },
  { "conflict", SOUP_STATUS_CONFLICT },
  { "buddy-exists", SOUP_STATUS_CONFLICT },
  { "not-found", SOUP_STATUS_NOT_FOUND },
  { "too-many-pending", LOGIN_STATUS_TOO_MANY_REQUESTS },
  { "bad-envelope", SOUP_STATUS_BAD_REQUEST },
  { "not-sender", SOUP_STATUS_FORBIDDEN },
  { "not-recipient", SOUP_STATUS_BAD_REQUEST },
  { "unknown-device", SOUP_STATUS_NOT_FOUND },
  { "over-quota", LOGIN_STATUS_TOO_MANY_REQUESTS },
  { "recipient-full", SOUP_STATUS_INSUFFICIENT_STORAGE },
  { "internal", SOUP_STATUS_INTERNAL_SERVER_ERROR },
};

typedef struct {
  LoginRequest *req;
  LoginWorkFunc work;
  gpointer job;
  GDestroyNotify job_free;
  LoginReply reply;
} Job;

/* ---- requests --------------------------------------------------------------------------------- */

static LoginRequest *
request_new(LoginServer *s, SoupServerMessage *msg)
{
  LoginRequest *req = g_new0(LoginRequest, 1);
  req->server = s;
  req->msg = g_object_ref(msg);
  req->started = g_get_monotonic_time();
  req->address = g_strdup(soup_server_message_get_remote_host(msg));
  if (req->address == NULL)
    req->address = g_strdup("?");
  /* tls.c marks the address of a connection an SN tunnelled with the client it stated. */
  GSocketAddress *remote = soup_server_message_get_remote_address(msg);
  const char *client =
    remote != NULL ? g_object_get_data(G_OBJECT(remote), LOGIN_CLIENT_DATA) : NULL;
  req->client = g_strdup(client);
  req->source =
    client != NULL ? g_strdup_printf("%s>%s", req->address, client) : g_strdup(req->address);
  GUri *uri = soup_server_message_get_uri(msg);
  const char *query = g_uri_get_query(uri);
  req->path = query != NULL ? g_strconcat(g_uri_get_path(uri), "?", query, NULL)
                            : g_strdup(g_uri_get_path(uri));
  return req;
}

/* The request body held passwords: it is cleansed, not only freed. */
static void
request_free(LoginRequest *req)
{
  if (req->body != NULL) {
    gsize length;
    gconstpointer data = g_bytes_get_data(req->body, &length);
    if (data != NULL)
      OPENSSL_cleanse((gpointer)data, length);
    g_bytes_unref(req->body);
  }
  g_clear_pointer(&req->json, json_object_unref);
  g_clear_pointer(&req->device, hark_device_certificate_free);
  g_object_unref(req->msg);
  g_free(req->address);
  g_free(req->client);
  g_free(req->source);
  g_free(req->account);
  g_free(req->path);
  g_free(req->tail);
  g_free(req);
}

/* ---- answers ---------------------------------------------------------------------------------- */

static char *
json_text(JsonObject *object, gsize *length)
{
  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), object);
  g_autoptr(JsonGenerator) generator = json_generator_new();
  json_generator_set_root(generator, root);
  return json_generator_to_data(generator, length);
}

/* Sets the answer, logs the request and frees it. Takes body. */
static void
respond(LoginRequest *req, guint status, JsonObject *body, gint64 retry_after)
{
  gsize length;
  char *text = json_text(body, &length);
  json_object_unref(body);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers(req->msg);
  soup_message_headers_replace(headers, "Cache-Control", "no-store");
  if (retry_after > 0) {
    g_autofree char *seconds = g_strdup_printf("%" G_GINT64_FORMAT, retry_after);
    soup_message_headers_replace(headers, "Retry-After", seconds);
  }
  login_keepalive_answer(req->server, req->msg);
  soup_server_message_set_status(req->msg, status, NULL);
  soup_server_message_set_response(req->msg, "application/json", SOUP_MEMORY_TAKE, text, length);
  g_debug("%s %s %u %.1f ms", soup_server_message_get_method(req->msg), req->path, status,
          (double)(g_get_monotonic_time() - req->started) / 1000.0);
  request_free(req);
}

static guint
status_for(const char *code)
{
  for (gsize i = 0; i < G_N_ELEMENTS(error_statuses); i++)
    if (strcmp(error_statuses[i].code, code) == 0)
      return error_statuses[i].status;
  g_return_val_if_reached(SOUP_STATUS_INTERNAL_SERVER_ERROR);
}

static JsonObject *
error_body(const char *code, const char *message, gint64 retry_after)
{
  JsonObject *error = json_object_new();
  json_object_set_string_member(error, "code", code);
  json_object_set_string_member(error, "message", message);
  if (retry_after > 0)
    json_object_set_int_member(error, "retry_after", retry_after);
  JsonObject *body = json_object_new();
  json_object_set_object_member(body, "error", error);
  return body;
}

static void
respond_error_status(LoginRequest *req, guint status, const char *code, const char *message,
                     gint64 retry_after)
{
  respond(req, status, error_body(code, message, retry_after), retry_after);
}

void
login_respond_error(LoginRequest *req, const char *code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  respond_error_status(req, status_for(code), code, message, 0);
}

void
login_respond_json(LoginRequest *req, guint status, JsonObject *body)
{
  respond(req, status, body, 0);
}

gboolean
login_request_parse(LoginRequest *req, const LoginField *fields)
{
  g_autofree char *problem = NULL;
  req->json = login_parse_body(req->body, fields, &problem);
  if (req->json != NULL)
    return TRUE;
  login_respond_error(req, "bad-request", "%s", problem);
  return FALSE;
}

const char *
login_request_parse_named(LoginRequest *req, const LoginField *fields)
{
  if (!login_request_parse(req, fields))
    return NULL;
  const char *name = json_object_get_string_member(req->json, "name");
  g_autofree char *problem = login_name_problem(name);
  if (problem == NULL)
    return name;
  login_respond_error(req, "bad-name", "%s", problem);
  return NULL;
}

static gboolean
refuse_for(LoginRequest *req, gint64 wait, const char *message)
{
  if (wait == 0)
    return FALSE;
  g_autofree char *text = g_strdup_printf("%s: try again in %" G_GINT64_FORMAT " s", message, wait);
  respond_error_status(req, LOGIN_STATUS_TOO_MANY_REQUESTS, "locked-out", text, wait);
  return TRUE;
}

/* The source's own budget, and for a tunnelled request the SN's (a larger one, shared by
 * every client that comes through it). */
static gboolean
refuse_if_limited_by(LoginRequest *req, LoginAddressLimiter *limiter, const char *what)
{
  gint64 now = login_now_monotonic(req->server);
  g_autofree char *own = g_strdup_printf("too many %s from this address", what);
  if (refuse_for(req, login_limiter_retry_after(limiter, req->source, now), own))
    return TRUE;
  if (req->client != NULL && limiter == req->server->addresses)
    return refuse_for(req, login_limiter_retry_after(req->server->relays, req->address, now),
                      "too many failed attempts through this super node");
  return FALSE;
}

static char *
pair_key(const char *account, const char *source)
{
  return g_strdup_printf("%s %s", account, source);
}

gboolean
login_request_refuse_if_limited(LoginRequest *req, const char *account)
{
  LoginServer *s = req->server;
  gint64 now = login_now_monotonic(s);
  g_free(req->account);
  req->account = g_strdup(account);
  if (refuse_if_limited_by(req, s->addresses, "failed attempts"))
    return TRUE;
  g_autofree char *pair = pair_key(account, req->source);
  if (refuse_for(req, login_locks_retry_after(s->pair_locks, pair, now),
                 "too many failed attempts for this account from this address"))
    return TRUE;
  /* The account is slowed down for every source that has failed for it; one that has
   * not (its owner, most likely) still gets its password checked. */
  if (login_locks_has_failures(s->pair_locks, pair, now))
    return refuse_for(req, login_locks_retry_after(s->account_locks, account, now),
                      "too many failed attempts for this account");
  return FALSE;
}

gboolean
login_request_refuse_if_registering_too_much(LoginRequest *req)
{
  if (refuse_if_limited_by(req, req->server->registrations, "registrations"))
    return TRUE;
  login_limiter_note_failure(req->server->registrations, req->source,
                             login_now_monotonic(req->server));
  return FALSE;
}

gboolean
login_request_refuse_if_looking_up_too_much(LoginRequest *req)
{
  LoginServer *s = req->server;
  gint64 now = login_now_monotonic(s);
  if (req->device == NULL) {
    if (refuse_if_limited_by(req, s->lookups, "user look-ups"))
      return TRUE;
    login_limiter_note_failure(s->lookups, req->source, now);
    return FALSE;
  }
  /* The account's id, not its name: a certificate of a deleted account whose name was
   * registered again cannot spend the new owner's look-ups. And the source still bounds
   * them all (a larger budget, for the users behind one NAT): accounts cost a
   * registration each, which one address gets 10 a minute. */
  const char *account = req->device->account_id;
  if (refuse_for(req, login_limiter_retry_after(s->user_lookups, account, now),
                 "too many user look-ups from this account") ||
      refuse_if_limited_by(req, s->signed_lookups, "signed user look-ups"))
    return TRUE;
  login_limiter_note_failure(s->user_lookups, account, now);
  login_limiter_note_failure(s->signed_lookups, req->source, now);
  return FALSE;
}

gboolean
login_request_refuse_if_holding_too_much(LoginRequest *req, const char *account)
{
  LoginServer *s = req->server;
  gint64 now = login_now_monotonic(s);
  if (refuse_for(req, login_limiter_retry_after(s->holds, account, now),
                 "too many messages held from this account"))
    return TRUE;
  login_limiter_note_failure(s->holds, account, now);
  return FALSE;
}

gboolean
login_request_refuse_if_requesting_too_much(LoginRequest *req, const char *account)
{
  LoginServer *s = req->server;
  gint64 now = login_now_monotonic(s);
  if (refuse_for(req, login_limiter_retry_after(s->contact_requests, account, now),
                 "too many contact requests from this account"))
    return TRUE;
  login_limiter_note_failure(s->contact_requests, account, now);
  return FALSE;
}

/* A password check's outcome, in the limits (main context). */
static void
count_attempt(LoginRequest *req, const LoginReply *reply)
{
  LoginServer *s = req->server;
  gint64 now = login_now_monotonic(s);
  g_autofree char *pair = req->account != NULL ? pair_key(req->account, req->source) : NULL;
  if (reply->failed_attempt) {
    login_limiter_note_failure(s->addresses, req->source, now);
    if (req->client != NULL)
      login_limiter_note_failure(s->relays, req->address, now);
    if (pair != NULL) {
      login_locks_note_failure(s->pair_locks, pair, now);
      login_locks_note_failure(s->account_locks, req->account, now);
    }
  } else if (reply->password_ok && pair != NULL) {
    login_locks_forget(s->pair_locks, pair);
    login_locks_forget(s->account_locks, req->account);
  }
}

/* ---- replies made on worker threads ----------------------------------------------------------- */

void
login_reply_ok(LoginReply *reply, guint status, JsonObject *body)
{
  reply->status = status;
  reply->body = body;
}

void
login_reply_error(LoginReply *reply, const char *code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_free(reply->message);
  reply->message = g_strdup_vprintf(format, args);
  va_end(args);
  reply->code = code;
  reply->status = status_for(code);
}

void
login_reply_store_failure(LoginReply *reply, const char *what, const GError *error)
{
  g_warning("the store failed to %s: %s", what, error != NULL ? error->message : "no reason");
  login_reply_error(reply, "internal", "the account store failed; the server log says why");
}

/* ---- jobs ----------------------------------------------------------------------------------- */

static void
job_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Job *job = data;
  job->work(job->req->server, job->job, &job->reply);
  g_task_return_boolean(task, TRUE);
}

static void
job_done(GObject *source, GAsyncResult *result, gpointer data)
{
  Job *job = g_task_get_task_data(G_TASK(result));
  LoginRequest *req = job->req;
  LoginServer *s = req->server;
  SoupServerMessage *msg = g_object_ref(req->msg);
  LoginReply *reply = &job->reply;
  count_attempt(req, reply);
  if (reply->code != NULL)
    respond_error_status(req, reply->status, reply->code, reply->message, reply->retry_after);
  else if (reply->body != NULL)
    respond(req, reply->status, g_steal_pointer(&reply->body), 0);
  else
    respond_error_status(req, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal", "no answer", 0);
  soup_server_message_unpause(msg);
  g_object_unref(msg);
  job->job_free(job->job);
  g_free(reply->message);
  g_free(job);
  s->jobs--;
}

void
login_request_run(LoginRequest *req, LoginWorkFunc work, gpointer job_data, GDestroyNotify job_free)
{
  Job *job = g_new0(Job, 1);
  job->req = req;
  job->work = work;
  job->job = job_data;
  job->job_free = job_free;
  req->server->jobs++;
  soup_server_message_pause(req->msg);
  GTask *task = g_task_new(NULL, NULL, job_done, NULL);
  g_task_set_task_data(task, job, NULL);
  g_task_run_in_thread(task, job_thread);
  g_object_unref(task);
}

void
login_http_drain(LoginServer *s)
{
  GMainContext *context = hark_context_main_context(s->ctx);
  while (s->jobs > 0)
    g_main_context_iteration(context, TRUE);
}

/* ---- routing -------------------------------------------------------------------------------- */

/* The route for method and path; for a prefix route, *tail gets (a copy of) the segment
 * after its prefix. */
static const Route *
find_route(const char *method, const char *path, char **tail)
{
  for (gsize i = 0; i < G_N_ELEMENTS(routes); i++) {
    const Route *r = &routes[i];
    if (strcmp(r->method, method) != 0)
      continue;
    if (!r->prefix && strcmp(path, r->path) == 0)
      return r;
    if (!r->prefix || !g_str_has_prefix(path, r->path))
      continue;
    const char *segment = path + strlen(r->path);
    gsize length = strcspn(segment, "/");
    if (length > 0 && strcmp(segment + length, r->suffix != NULL ? r->suffix : "") == 0) {
      *tail = g_strndup(segment, length);
      return r;
    }
  }
  return NULL;
}

/* The largest body a request to path may have. */
static gsize
body_limit(LoginServer *s, const char *method, const char *path)
{
  g_autofree char *tail = NULL;
  const Route *route = find_route(method, path, &tail);
  return route != NULL ? MAX(s->max_body, route->max_body) : s->max_body;
}

/* The body rules every route shares; FALSE when it answered. */
static gboolean
check_shape(LoginRequest *req, const Route *route)
{
  GUri *uri = soup_server_message_get_uri(req->msg);
  gsize length = g_bytes_get_size(req->body);
  if (length > MAX(req->server->max_body, route->max_body)) {
    respond_error_status(req, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "bad-request",
                         "the request body is too large", 0);
    return FALSE;
  }
  if (!route->query && g_uri_get_query(uri) != NULL) {
    login_respond_error(req, "bad-request", "%s takes no query string", route->path);
    return FALSE;
  }
  if (strcmp(route->method, "GET") == 0 && length > 0) {
    login_respond_error(req, "bad-request", "a GET request has no body");
    return FALSE;
  }
  return TRUE;
}

static gboolean
needs_signature(LoginRequest *req, const Route *route)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(req->msg);
  return route->signing == SIGNED ||
         (route->signing == SIGNED_IF_SENT &&
          soup_message_headers_get_one(headers, "Hark-Signature") != NULL);
}

static void
dispatch(LoginServer *s, SoupServerMessage *msg)
{
  LoginRequest *req = request_new(s, msg);
  g_autoptr(GBytes) body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
  req->body = g_bytes_ref(body);
  login_keepalive_offer(msg);
  if (s->stopping) {
    login_respond_error(req, "internal", "the login server is stopping");
    return;
  }
  const char *method = soup_server_message_get_method(msg);
  const Route *route =
    find_route(method, g_uri_get_path(soup_server_message_get_uri(msg)), &req->tail);
  if (route == NULL) {
    login_respond_error(req, "not-found", "no endpoint %s %s", method,
                        g_uri_get_path(soup_server_message_get_uri(msg)));
    return;
  }
  if (check_shape(req, route) && (!needs_signature(req, route) || login_authenticate(req)))
    route->handle(req);
}

static void
on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer data)
{
  LoginServer *s = data;
  /* Jobs' completions go to the thread-default context: make sure it is the node's. */
  GMainContext *context = hark_context_main_context(s->ctx);
  g_main_context_push_thread_default(context);
  dispatch(s, msg);
  g_main_context_pop_thread_default(context);
}

/* Before the body is read: refuse one that is too large, or has no length, without
 * reading it (libsoup then skips it and closes the connection). */
static void
on_headers(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer data)
{
  LoginServer *s = data;
  login_keepalive_request_started(msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(msg);
  SoupEncoding encoding = soup_message_headers_get_encoding(headers);
  if (encoding == SOUP_ENCODING_CHUNKED) {
    respond_error_status(request_new(s, msg), SOUP_STATUS_LENGTH_REQUIRED, "bad-request",
                         "a request body needs a Content-Length", 0);
    return;
  }
  gsize limit = body_limit(s, soup_server_message_get_method(msg),
                           g_uri_get_path(soup_server_message_get_uri(msg)));
  if (encoding == SOUP_ENCODING_CONTENT_LENGTH &&
      soup_message_headers_get_content_length(headers) > (goffset)limit) {
    g_autofree char *message = g_strdup_printf(
      "the request body is %" G_GOFFSET_FORMAT " bytes; at most %" G_GSIZE_FORMAT " are accepted",
      soup_message_headers_get_content_length(headers), limit);
    respond_error_status(request_new(s, msg), SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "bad-request",
                         message, 0);
  }
}

void
login_http_setup(LoginServer *s)
{
  soup_server_add_early_handler(s->soup, NULL, on_headers, s, NULL);
  soup_server_add_handler(s->soup, NULL, on_request, s, NULL);
}
