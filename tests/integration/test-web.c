/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-web.c: the web frontend's server (frontends/web, docs/web-frontend.md) as a browser
 * and an attacker meet it: a real `hark run` with the ctl and web plugins, driven over
 * HTTP and WebSocket with libsoup. The page is served with its CSP; a login link works
 * once; the WebSocket speaks the control protocol to the page's own origin with a valid
 * cookie, and to nobody else (another origin, no cookie, a forged or expired one, another
 * Host); the secret is private; a non-loopback address without TLS does not start. */
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "test-isolate.h"

#define ANSWER_MS 5000
#define EXIT_MS 10000

/* ---- a node with the web frontend ------------------------------------------------------ */

static char *
web_config(const char *node_settings, const char *web_settings)
{
  return g_strdup_printf("node: { name = \"alice\"; %s };\n"
                         "plugins: { load = ( { name = \"ctl\"; },\n"
                         "  { name = \"web\"; settings = { port = 0; %s }; } ); };\n",
                         node_settings ? node_settings : "", web_settings ? web_settings : "");
}

static HarkTestNode *
web_node_start(const char *node_settings)
{
  g_autofree char *config = web_config(node_settings, NULL);
  HarkTestNode *node = hark_test_node_new(config);
  if (!hark_test_node_start(node)) {
    hark_test_node_free(node);
    return NULL;
  }
  return node;
}

static JsonObject *
ctl_call(HarkTestNode *node, const char *command, JsonObject *args)
{
  g_autoptr(HarkTestClient) ctl = hark_test_client_connect_unix(node->socket_path);
  if (ctl == NULL)
    return NULL;
  return hark_test_client_call(ctl, command, args);
}

/* web-status's count of refusals of one kind. */
static gint64
refused(HarkTestNode *node, const char *kind)
{
  g_autoptr(JsonObject) answer = ctl_call(node, "web-status", NULL);
  JsonObject *result = answer ? hark_test_answer_result(answer) : NULL;
  if (result == NULL)
    return -1;
  return json_object_get_int_member(json_object_get_object_member(result, "refused"), kind);
}

/* A fresh login link from `web-url`: "http://127.0.0.1:PORT/login?token=T". */
static char *
login_url(HarkTestNode *node)
{
  g_autoptr(JsonObject) answer = ctl_call(node, "web-url", NULL);
  JsonObject *result = answer ? hark_test_answer_result(answer) : NULL;
  if (result == NULL)
    return NULL;
  g_assert_cmpint(json_object_get_int_member(result, "expires_in"), ==, 60);
  return g_strdup(json_object_get_string_member(result, "url"));
}

/* "http://127.0.0.1:PORT" of a login link. */
static char *
origin_of(const char *url)
{
  const char *login = strstr(url, "/login?token=");
  g_assert_nonnull(login);
  return g_strndup(url, login - url);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

typedef struct {
  guint status;
  SoupMessageHeaders *headers; /* the answer's */
  GBytes *body;
} Reply;

static void
reply_free(Reply *reply)
{
  g_clear_pointer(&reply->headers, soup_message_headers_unref);
  g_clear_pointer(&reply->body, g_bytes_unref);
  g_free(reply);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Reply, reply_free)

/* A client straight to the node: no proxy (GIO's libproxy resolver is C++ and throws
 * inside itself, which ASan cannot follow in a C program; scripts/check.sh). */
static SoupSession *
session_new(void)
{
  SoupSession *session = soup_session_new();
  soup_session_set_proxy_resolver(session, NULL);
  return session;
}

/* The TLS case's node has a self-signed certificate made by the test. */
static gboolean
accept_certificate(SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors,
                   gpointer data)
{
  return TRUE;
}

/* GET url as it is (no redirect followed, no cookie jar): cookie (the Cookie header) and
 * host (the Host header) may be NULL. */
static Reply *
http_get(const char *url, const char *cookie, const char *host)
{
  g_autoptr(SoupSession) session = session_new();
  g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_certificate), NULL);
  SoupMessageHeaders *headers = soup_message_get_request_headers(msg);
  if (cookie != NULL)
    soup_message_headers_replace(headers, "Cookie", cookie);
  if (host != NULL)
    soup_message_headers_replace(headers, "Host", host);
  g_autoptr(GError) error = NULL;
  GBytes *body = soup_session_send_and_read(session, msg, NULL, &error);
  if (body == NULL) {
    g_test_fail_printf("GET %s: %s", url, error->message);
    return NULL;
  }
  Reply *reply = g_new0(Reply, 1);
  reply->status = soup_message_get_status(msg);
  reply->headers = soup_message_headers_ref(soup_message_get_response_headers(msg));
  reply->body = body;
  return reply;
}

/* "hark_session=VALUE" from a login's Set-Cookie, for a Cookie header. */
static char *
session_cookie(Reply *reply)
{
  const char *set = soup_message_headers_get_one(reply->headers, "Set-Cookie");
  if (set == NULL)
    return NULL;
  const char *end = strchr(set, ';');
  return end ? g_strndup(set, end - set) : g_strdup(set);
}

/* Logs in with a fresh link: the Cookie header to send. */
static char *
log_in(HarkTestNode *node, char **origin)
{
  g_autofree char *url = login_url(node);
  if (url == NULL)
    return NULL;
  g_autoptr(Reply) reply = http_get(url, NULL, NULL);
  if (reply == NULL || reply->status != SOUP_STATUS_SEE_OTHER)
    return NULL;
  if (origin != NULL)
    *origin = origin_of(url);
  return session_cookie(reply);
}

/* A node started and logged in to: the Cookie header, with *node and *origin set. */
static char *
logged_in_node(HarkTestNode **node, char **origin)
{
  *node = web_node_start(NULL);
  return *node != NULL ? log_in(*node, origin) : NULL;
}

static void
assert_security_headers(Reply *reply)
{
  g_assert_cmpstr(soup_message_headers_get_one(reply->headers, "Content-Security-Policy"), ==,
                  "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                  "style-src 'self'; script-src 'self'; frame-ancestors 'none'");
  g_assert_cmpstr(soup_message_headers_get_one(reply->headers, "X-Content-Type-Options"), ==,
                  "nosniff");
  g_assert_cmpstr(soup_message_headers_get_one(reply->headers, "Referrer-Policy"), ==,
                  "no-referrer");
}

/* ---- WebSocket ------------------------------------------------------------------------------ */

typedef struct {
  SoupWebsocketConnection *connection;
  GError *error;
  guint status; /* of the handshake's answer */
  gboolean done;
  GQueue messages; /* JsonObject* received, oldest first */
  gboolean closed;
} Socket;

static void
socket_free(Socket *s)
{
  if (s->connection != NULL &&
      soup_websocket_connection_get_state(s->connection) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close(s->connection, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_clear_object(&s->connection);
  g_clear_error(&s->error);
  g_queue_clear_full(&s->messages, (GDestroyNotify)json_object_unref);
  g_free(s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Socket, socket_free)

static void
on_ws_message(SoupWebsocketConnection *connection, gint type, GBytes *message, gpointer data)
{
  Socket *s = data;
  g_autoptr(JsonParser) parser = json_parser_new();
  gsize size;
  const char *text = g_bytes_get_data(message, &size);
  g_assert_cmpint(type, ==, SOUP_WEBSOCKET_DATA_TEXT);
  g_assert_true(json_parser_load_from_data(parser, text, (gssize)size, NULL));
  JsonNode *root = json_parser_get_root(parser);
  g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
  g_queue_push_tail(&s->messages, json_object_ref(json_node_get_object(root)));
}

static void
on_ws_closed(SoupWebsocketConnection *connection, gpointer data)
{
  ((Socket *)data)->closed = TRUE;
}

static void
on_connected(GObject *source, GAsyncResult *result, gpointer data)
{
  Socket *s = data;
  s->connection = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &s->error);
  if (s->connection != NULL) {
    g_signal_connect(s->connection, "message", G_CALLBACK(on_ws_message), s);
    g_signal_connect(s->connection, "closed", G_CALLBACK(on_ws_closed), s);
  }
  s->done = TRUE;
}

/* Opens origin + "/ws" with an Origin header (may be NULL: none) and a Cookie header (may
 * be NULL). Check ->connection (NULL: refused, ->status says how). */
static Socket *
ws_open(const char *page_origin, const char *origin_header, const char *cookie)
{
  Socket *s = g_new0(Socket, 1);
  g_autofree char *url = g_strconcat(page_origin, "/ws", NULL);
  g_autoptr(SoupSession) session = session_new();
  g_autoptr(SoupMessage) msg = soup_message_new("GET", url);
  g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_certificate), NULL);
  if (cookie != NULL)
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Cookie", cookie);
  soup_session_websocket_connect_async(session, msg, origin_header, NULL, G_PRIORITY_DEFAULT,
                                       NULL, on_connected, s);
  if (!hark_test_wait_for_flag(&s->done, ANSWER_MS))
    g_test_fail_printf("the WebSocket handshake did not end");
  s->status = soup_message_get_status(msg);
  return s;
}

static gboolean
has_message(gpointer data)
{
  return !g_queue_is_empty(&((Socket *)data)->messages);
}

/* The next message, within the time; NULL (test failed) when none came. */
static JsonObject *
ws_next(Socket *s)
{
  if (!hark_test_wait_for(has_message, s, ANSWER_MS)) {
    g_test_fail_printf("no WebSocket message came");
    return NULL;
  }
  return g_queue_pop_head(&s->messages);
}

/* Sends {"id": id, "command": command} and returns the answer with that id (events
 * before it are skipped). */
static JsonObject *
ws_call(Socket *s, const char *id, const char *command)
{
  g_autofree char *request =
    g_strdup_printf("{\"id\": \"%s\", \"command\": \"%s\"}", id, command);
  soup_websocket_connection_send_text(s->connection, request);
  for (;;) {
    JsonObject *message = ws_next(s);
    if (message == NULL)
      return NULL;
    if (g_strcmp0(json_object_get_string_member_with_default(message, "id", NULL), id) == 0)
      return message;
    json_object_unref(message);
  }
}

/* ---- the cases ------------------------------------------------------------------------------ */

/* The page's files carry the CSP and their types; / without a session says how to log in. */
static void
test_page_headers(void)
{
  g_autoptr(HarkTestNode) node = web_node_start(NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *url = login_url(node);
  HARK_REQUIRE(url != NULL);
  g_autofree char *origin = origin_of(url);
  g_assert_true(g_str_has_prefix(origin, "http://127.0.0.1:"));

  g_autofree char *root = g_strconcat(origin, "/", NULL);
  g_autoptr(Reply) anonymous = http_get(root, NULL, NULL);
  HARK_REQUIRE(anonymous != NULL);
  g_assert_cmpuint(anonymous->status, ==, SOUP_STATUS_UNAUTHORIZED);
  assert_security_headers(anonymous);
  g_autofree char *text = g_strndup(g_bytes_get_data(anonymous->body, NULL),
                                    g_bytes_get_size(anonymous->body));
  g_assert_nonnull(strstr(text, "hark ctl web-url"));

  g_autofree char *script = g_strconcat(origin, "/app.js", NULL);
  g_autoptr(Reply) js = http_get(script, NULL, NULL);
  HARK_REQUIRE(js != NULL);
  g_assert_cmpuint(js->status, ==, SOUP_STATUS_OK);
  assert_security_headers(js);
  g_assert_true(g_str_has_prefix(soup_message_headers_get_content_type(js->headers, NULL),
                                 "text/javascript"));
  g_assert_cmpuint(g_bytes_get_size(js->body), >, 0);

  g_autofree char *missing = g_strconcat(origin, "/../web-secret", NULL);
  g_autoptr(Reply) none = http_get(missing, NULL, NULL);
  HARK_REQUIRE(none != NULL);
  g_assert_cmpuint(none->status, ==, SOUP_STATUS_NOT_FOUND);
}

/* A login link sets the session cookie once; the second use of the same link gets none. */
static void
test_login_link_works_once(void)
{
  g_autoptr(HarkTestNode) node = web_node_start(NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *url = login_url(node);
  HARK_REQUIRE(url != NULL);
  g_autofree char *origin = origin_of(url);

  g_autoptr(Reply) first = http_get(url, NULL, NULL);
  HARK_REQUIRE(first != NULL);
  g_assert_cmpuint(first->status, ==, SOUP_STATUS_SEE_OTHER);
  const char *set = soup_message_headers_get_one(first->headers, "Set-Cookie");
  HARK_REQUIRE(set != NULL);
  g_assert_true(g_str_has_prefix(set, "hark_session="));
  g_assert_nonnull(strstr(set, "; HttpOnly"));
  g_assert_nonnull(strstr(set, "; SameSite=Strict"));
  g_assert_nonnull(strstr(set, "; Path=/"));
  g_assert_null(strstr(set, "Secure")); /* plain HTTP on loopback: a Secure cookie is lost */
  g_autofree char *location_expected = g_strconcat(origin, "/", NULL);
  const char *location = soup_message_headers_get_one(first->headers, "Location");
  g_assert_true(g_strcmp0(location, "/") == 0 || g_strcmp0(location, location_expected) == 0);

  g_autoptr(Reply) again = http_get(url, NULL, NULL);
  HARK_REQUIRE(again != NULL);
  g_assert_cmpuint(again->status, ==, SOUP_STATUS_FORBIDDEN);
  g_assert_null(soup_message_headers_get_one(again->headers, "Set-Cookie"));

  /* The cookie opens the page. */
  g_autofree char *cookie = session_cookie(first);
  g_autoptr(Reply) page = http_get(location_expected, cookie, NULL);
  HARK_REQUIRE(page != NULL);
  g_assert_cmpuint(page->status, ==, SOUP_STATUS_OK);
  assert_security_headers(page);
  g_assert_true(g_str_has_prefix(soup_message_headers_get_content_type(page->headers, NULL),
                                 "text/html"));

  /* A made-up token, and one of another shape, are refused the same way. */
  g_autofree char *forged = g_strdup(url);
  char *digit = strstr(forged, "token=") + strlen("token=");
  *digit = *digit == '0' ? '1' : '0';
  g_autoptr(Reply) made_up = http_get(forged, NULL, NULL);
  HARK_REQUIRE(made_up != NULL);
  g_assert_cmpuint(made_up->status, ==, SOUP_STATUS_FORBIDDEN);
  g_autofree char *odd = g_strconcat(origin, "/login?token=%00%FF", NULL);
  g_autoptr(Reply) odd_reply = http_get(odd, NULL, NULL);
  HARK_REQUIRE(odd_reply != NULL);
  g_assert_cmpuint(odd_reply->status, ==, SOUP_STATUS_FORBIDDEN);
  g_assert_cmpint(refused(node, "login_links"), ==, 3);
}

/* A link not used within 60 s is dead, and a session 30 days old is over. */
static void
test_link_and_session_expire(void)
{
  g_autoptr(HarkTestNode) node = web_node_start("test_clock = true;");
  HARK_REQUIRE(node != NULL);
  g_autofree char *origin = NULL;
  g_autofree char *cookie = log_in(node, &origin);
  HARK_REQUIRE(cookie != NULL);
  g_autofree char *url = login_url(node);
  HARK_REQUIRE(url != NULL);

  g_autoptr(JsonObject) args = json_object_new();
  json_object_set_int_member(args, "advance", 61);
  g_autoptr(JsonObject) moved = ctl_call(node, "clock", args);
  HARK_REQUIRE(moved != NULL && hark_test_answer_result(moved) != NULL);
  g_autoptr(Reply) late = http_get(url, NULL, NULL);
  HARK_REQUIRE(late != NULL);
  g_assert_cmpuint(late->status, ==, SOUP_STATUS_FORBIDDEN);

  g_autoptr(Socket) fresh = ws_open(origin, origin, cookie);
  g_assert_nonnull(fresh->connection);

  json_object_set_int_member(args, "advance", 30 * 24 * 3600);
  g_autoptr(JsonObject) month = ctl_call(node, "clock", args);
  HARK_REQUIRE(month != NULL && hark_test_answer_result(month) != NULL);
  g_autoptr(Socket) stale = ws_open(origin, origin, cookie);
  g_assert_null(stale->connection);
  g_assert_cmpuint(stale->status, ==, SOUP_STATUS_FORBIDDEN);
}

/* The page's own origin with the cookie: hello first, then the control protocol's
 * commands and events. */
static void
test_websocket_speaks_ctl(void)
{
  g_autoptr(HarkTestNode) node = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *cookie = logged_in_node(&node, &origin);
  HARK_REQUIRE(cookie != NULL);
  g_autoptr(Socket) ws = ws_open(origin, origin, cookie);
  HARK_REQUIRE(ws->connection != NULL);

  g_autoptr(JsonObject) hello = ws_next(ws);
  HARK_REQUIRE(hello != NULL);
  g_assert_cmpstr(json_object_get_string_member(hello, "event"), ==, "hello");
  g_assert_cmpstr(json_object_get_string_member(hello, "node"), ==, "alice");
  g_assert_cmpint(json_object_get_int_member(hello, "protocol"), ==, 1);

  g_autoptr(JsonObject) state = ws_call(ws, "s1", "state");
  HARK_REQUIRE(state != NULL);
  g_assert_true(json_object_get_boolean_member(state, "ok"));
  JsonObject *result = json_object_get_object_member(state, "result");
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(result, "node"),
                                                "name"),
                  ==, "alice");

  g_autoptr(JsonObject) help = ws_call(ws, "h1", "help");
  HARK_REQUIRE(help != NULL);
  g_assert_true(json_object_get_boolean_member(help, "ok"));
  g_autofree char *listed = hark_test_json(help);
  g_assert_nonnull(strstr(listed, "\"name\":\"web-url\""));

  /* Errors as ctl gives them: a bad request keeps the connection. */
  soup_websocket_connection_send_text(ws->connection, "not json");
  g_autoptr(JsonObject) bad = ws_next(ws);
  HARK_REQUIRE(bad != NULL);
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(bad, "error"),
                                                "code"),
                  ==, "bad-request");
  g_autoptr(JsonObject) unknown = ws_call(ws, "u1", "no-such-command");
  HARK_REQUIRE(unknown != NULL);
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(unknown, "error"),
                                                "code"),
                  ==, "unknown-command");

  /* Events: shutdown is answered, then node-stopping comes, then the close. */
  g_autoptr(JsonObject) stopped = ws_call(ws, "x1", "shutdown");
  HARK_REQUIRE(stopped != NULL);
  g_assert_true(json_object_get_boolean_member(stopped, "ok"));
  g_autoptr(JsonObject) stopping = ws_next(ws);
  HARK_REQUIRE(stopping != NULL);
  g_assert_cmpstr(json_object_get_string_member(stopping, "event"), ==, "node-stopping");
  HARK_REQUIRE(hark_test_wait_for_flag(&ws->closed, ANSWER_MS));
  HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));
  g_assert_cmpint(node->exit_status, ==, 0);
}

/* A message over 64 KiB, or a binary one, closes the connection; the node serves on. */
static void
test_websocket_oversize_and_binary_closed(void)
{
  g_autoptr(HarkTestNode) node = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *cookie = logged_in_node(&node, &origin);
  HARK_REQUIRE(cookie != NULL);

  g_autoptr(Socket) big = ws_open(origin, origin, cookie);
  HARK_REQUIRE(big->connection != NULL);
  g_autoptr(JsonObject) hello = ws_next(big);
  HARK_REQUIRE(hello != NULL);
  g_autofree char *huge = g_strnfill(70000, ' ');
  soup_websocket_connection_send_text(big->connection, huge);
  /* Closed: with 1009 when the close frame reaches us before the reset of a socket the
   * server stopped reading, 0 when not. */
  HARK_REQUIRE(hark_test_wait_for_flag(&big->closed, ANSWER_MS));
  gushort code = soup_websocket_connection_get_close_code(big->connection);
  g_assert_true(code == SOUP_WEBSOCKET_CLOSE_TOO_BIG || code == 0);

  g_autoptr(Socket) binary = ws_open(origin, origin, cookie);
  HARK_REQUIRE(binary->connection != NULL);
  soup_websocket_connection_send_binary(binary->connection, "{\"command\": \"shutdown\"}", 23);
  HARK_REQUIRE(hark_test_wait_for_flag(&binary->closed, ANSWER_MS));
  g_assert_cmpuint(soup_websocket_connection_get_close_code(binary->connection), ==,
                   SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA);

  g_assert_cmpint(refused(node, "messages"), ==, 1);
  /* Neither was run: the node still answers. */
  g_autoptr(Socket) after = ws_open(origin, origin, cookie);
  HARK_REQUIRE(after->connection != NULL);
  g_autoptr(JsonObject) state = ws_call(after, "s", "state");
  HARK_REQUIRE(state != NULL);
  g_assert_true(json_object_get_boolean_member(state, "ok"));
}

typedef struct {
  const char *origin, *cookie;
} Attempt;

static gboolean
let_in(gpointer data)
{
  Attempt *attempt = data;
  g_autoptr(Socket) ws = ws_open(attempt->origin, attempt->origin, attempt->cookie);
  return ws->connection != NULL;
}

/* max_clients pages at once: one more is refused before the upgrade, and let in once a
 * page has gone. */
static void
test_max_clients(void)
{
  g_autofree char *config = web_config(NULL, "max_clients = 1;");
  g_autoptr(HarkTestNode) node = hark_test_node_new(config);
  HARK_REQUIRE(hark_test_node_start(node));
  g_autofree char *origin = NULL;
  g_autofree char *cookie = log_in(node, &origin);
  HARK_REQUIRE(cookie != NULL);
  Socket *first = ws_open(origin, origin, cookie);
  HARK_REQUIRE(first->connection != NULL);
  g_autoptr(Socket) second = ws_open(origin, origin, cookie);
  g_assert_null(second->connection);
  g_assert_cmpuint(second->status, ==, SOUP_STATUS_SERVICE_UNAVAILABLE);
  g_assert_cmpint(refused(node, "busy"), ==, 1);
  socket_free(first);
  /* The server sees the first one's close asynchronously: retry until a slot is free. */
  Attempt attempt = { origin, cookie };
  g_assert_true(hark_test_wait_for(let_in, &attempt, ANSWER_MS));
}

/* Cross-site WebSocket hijacking: a page of another origin, in a browser that has the
 * cookie, is refused before the upgrade; so is a request with no Origin at all. */
static void
test_websocket_other_origin_refused(void)
{
  g_autoptr(HarkTestNode) node = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *cookie = logged_in_node(&node, &origin);
  HARK_REQUIRE(cookie != NULL);
  const char *others[] = { "http://evil.example", "null", "https://127.0.0.1", NULL };
  for (guint i = 0; others[i] != NULL; i++) {
    g_autoptr(Socket) ws = ws_open(origin, others[i], cookie);
    g_assert_null(ws->connection);
    g_assert_cmpuint(ws->status, ==, SOUP_STATUS_FORBIDDEN);
  }
  /* The same origin with another port is another origin. */
  g_autofree char *other_port = g_strconcat(origin, "1", NULL);
  g_autoptr(Socket) port = ws_open(origin, other_port, cookie);
  g_assert_null(port->connection);
  g_autoptr(Socket) none = ws_open(origin, NULL, cookie);
  g_assert_null(none->connection);
  g_assert_cmpuint(none->status, ==, SOUP_STATUS_FORBIDDEN);
  g_autofree char *log = hark_test_node_read_stderr(node);
  g_assert_nonnull(strstr(log, "refused a WebSocket (Origin http://evil.example): another origin"));
  g_assert_cmpint(refused(node, "origins"), ==, 5);
  g_assert_cmpint(refused(node, "sessions"), ==, 0);
}

/* No cookie, a made-up one, one with a changed MAC, one of another node: refused. */
static void
test_websocket_bad_cookie_refused(void)
{
  g_autoptr(HarkTestNode) node = web_node_start(NULL);
  HARK_REQUIRE(node != NULL);
  g_autoptr(HarkTestNode) other = web_node_start(NULL);
  HARK_REQUIRE(other != NULL);
  g_autofree char *origin = NULL;
  g_autofree char *cookie = log_in(node, &origin);
  HARK_REQUIRE(cookie != NULL);
  g_autofree char *foreign = log_in(other, NULL);
  HARK_REQUIRE(foreign != NULL);

  g_autofree char *changed = g_strdup(cookie);
  char *last = changed + strlen(changed) - 1;
  *last = *last == '0' ? '1' : '0';
  g_autofree char *doubled = g_strdup_printf("%s; %s", foreign, cookie);
  const char *bad[] = { NULL, "hark_session=", "hark_session=v1.1.2.3", changed, foreign,
                        "other=1", doubled, NULL };
  for (guint i = 0; i < G_N_ELEMENTS(bad) - 1; i++) {
    g_autoptr(Socket) ws = ws_open(origin, origin, bad[i]);
    if (ws->connection != NULL)
      g_test_fail_printf("a WebSocket with Cookie '%s' was let in", bad[i] ? bad[i] : "(none)");
    g_assert_cmpuint(ws->status, ==, SOUP_STATUS_FORBIDDEN);
  }
  g_assert_cmpint(refused(node, "sessions"), ==, G_N_ELEMENTS(bad) - 1);
  /* And the good one, with other cookies around it, is let in. */
  g_autofree char *among = g_strdup_printf("a=b; %s; c=d", cookie);
  g_autoptr(Socket) good = ws_open(origin, origin, among);
  g_assert_nonnull(good->connection);
}

/* DNS rebinding: a name that resolves to 127.0.0.1 does not make the page someone else's. */
static void
test_other_host_refused(void)
{
  g_autoptr(HarkTestNode) node = web_node_start(NULL);
  HARK_REQUIRE(node != NULL);
  g_autofree char *url = login_url(node);
  HARK_REQUIRE(url != NULL);
  g_autoptr(Reply) reply = http_get(url, NULL, "evil.example");
  HARK_REQUIRE(reply != NULL);
  g_assert_cmpuint(reply->status, ==, SOUP_STATUS_MISDIRECTED_REQUEST);
  g_assert_null(soup_message_headers_get_one(reply->headers, "Set-Cookie"));
  /* libsoup sends a request answered 421 once more, on a new connection. */
  g_assert_cmpint(refused(node, "hosts"), >=, 1);
  /* The token was not spent on it. */
  g_autoptr(Reply) real = http_get(url, NULL, NULL);
  HARK_REQUIRE(real != NULL);
  g_assert_cmpuint(real->status, ==, SOUP_STATUS_SEE_OTHER);
}

/* The secret is 0600, a secret others may read stops the node, and the session cookie
 * outlives a restart (the page reconnects by itself). */
static void
test_secret_file(void)
{
  g_autoptr(HarkTestNode) node = web_node_start(NULL);
  HARK_REQUIRE(node != NULL);
  /* An answer over ctl: every frontend has started (written its secret and logged its link)
   * by then; the control socket itself opens before the frontends start. */
  g_autofree char *url = login_url(node);
  HARK_REQUIRE(url != NULL);
  g_autofree char *path = g_build_filename(node->state_dir, "web-secret", NULL);
  struct stat st;
  HARK_REQUIRE(stat(path, &st) == 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
  g_autofree char *log = hark_test_node_read_stderr(node);
  g_autofree char *secret = NULL;
  HARK_REQUIRE(g_file_get_contents(path, &secret, NULL, NULL));
  g_strchomp(secret);
  g_assert_cmpuint(strlen(secret), ==, 64);
  g_assert_null(strstr(log, secret)); /* the secret is never logged ... */
  g_assert_nonnull(strstr(log, "/login?token=")); /* ... a one-time link is */

  g_autofree char *origin = NULL;
  g_autofree char *cookie = log_in(node, &origin);
  HARK_REQUIRE(cookie != NULL);
  g_autoptr(JsonObject) bye = ctl_call(node, "shutdown", NULL);
  HARK_REQUIRE(bye != NULL);
  HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));

  /* Restarted on another port (port = 0): the cookie is still good. */
  HARK_REQUIRE(hark_test_node_start(node));
  g_autofree char *new_url = login_url(node);
  HARK_REQUIRE(new_url != NULL);
  g_autofree char *new_origin = origin_of(new_url);
  g_autoptr(Socket) again = ws_open(new_origin, new_origin, cookie);
  g_assert_nonnull(again->connection);
  g_autoptr(JsonObject) bye_again = ctl_call(node, "shutdown", NULL);
  HARK_REQUIRE(bye_again != NULL);
  HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));

  /* Readable by the group: the node does not start. */
  HARK_REQUIRE(chmod(path, 0640) == 0);
  HARK_REQUIRE(hark_test_node_spawn(node));
  HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));
  g_assert_cmpint(node->exit_status, !=, 0);
  g_autofree char *refused = hark_test_node_read_stderr(node);
  g_assert_nonnull(strstr(refused, "nobody else may read"));
}

/* Anything but loopback without TLS: the node refuses to start, and says why. */
static void
test_non_loopback_needs_tls(void)
{
  const char *addresses[] = { "0.0.0.0", "192.0.2.7", "::", NULL };
  for (guint i = 0; addresses[i] != NULL; i++) {
    g_autofree char *settings = g_strdup_printf("address = \"%s\";", addresses[i]);
    g_autofree char *config = web_config(NULL, settings);
    g_autoptr(HarkTestNode) node = hark_test_node_new(config);
    HARK_REQUIRE(hark_test_node_spawn(node));
    HARK_REQUIRE(hark_test_node_wait_exit(node, EXIT_MS));
    g_assert_cmpint(node->exit_status, !=, 0);
    g_autofree char *log = hark_test_node_read_stderr(node);
    g_assert_nonnull(strstr(log, "needs tls_cert and tls_key"));
  }
  g_autofree char *config = web_config(NULL, "address = \"localhost\";");
  g_autoptr(HarkTestNode) named = hark_test_node_new(config);
  HARK_REQUIRE(hark_test_node_spawn(named));
  HARK_REQUIRE(hark_test_node_wait_exit(named, EXIT_MS));
  g_assert_cmpint(named->exit_status, !=, 0);
  g_autofree char *log = hark_test_node_read_stderr(named);
  g_assert_nonnull(strstr(log, "must be an IP address"));
}

/* With a certificate: HTTPS, a Secure cookie, the https origin; and then any address may
 * be listened on (here every address, reached at 127.0.0.1). */
static void
test_tls(void)
{
  g_autofree char *dir = g_dir_make_tmp("hark-web-tls-XXXXXX", NULL);
  g_autofree char *cert = g_build_filename(dir, "cert.pem", NULL);
  g_autofree char *key = g_build_filename(dir, "key.pem", NULL);
  const char *const openssl[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                                  "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                                  "-addext", "subjectAltName=IP:127.0.0.1", NULL };
  HARK_REQUIRE(hark_test_run(openssl, NULL, NULL, 30000) == 0);
  g_autofree char *settings = g_strdup_printf("address = \"0.0.0.0\"; tls_cert = \"%s\"; "
                                              "tls_key = \"%s\";",
                                              cert, key);
  g_autofree char *config = web_config(NULL, settings);
  g_autoptr(HarkTestNode) node = hark_test_node_new(config);
  HARK_REQUIRE(hark_test_node_start(node));

  g_autofree char *url = login_url(node);
  HARK_REQUIRE(url != NULL);
  g_assert_true(g_str_has_prefix(url, "https://127.0.0.1:"));
  g_autofree char *origin = origin_of(url);
  g_autoptr(Reply) login = http_get(url, NULL, NULL);
  HARK_REQUIRE(login != NULL);
  g_assert_cmpuint(login->status, ==, SOUP_STATUS_SEE_OTHER);
  const char *set = soup_message_headers_get_one(login->headers, "Set-Cookie");
  HARK_REQUIRE(set != NULL);
  g_assert_nonnull(strstr(set, "; Secure"));
  g_autofree char *cookie = session_cookie(login);

  g_autoptr(Socket) ws = ws_open(origin, origin, cookie);
  HARK_REQUIRE(ws->connection != NULL);
  g_autoptr(JsonObject) hello = ws_next(ws);
  HARK_REQUIRE(hello != NULL);
  g_assert_cmpstr(json_object_get_string_member(hello, "event"), ==, "hello");
  /* The plain-HTTP origin of the same host and port is another origin. */
  g_autofree char *plain = g_strconcat("http://", origin + strlen("https://"), NULL);
  g_autoptr(Socket) downgraded = ws_open(origin, plain, cookie);
  g_assert_null(downgraded->connection);
  g_assert_cmpuint(downgraded->status, ==, SOUP_STATUS_FORBIDDEN);

  g_unlink(cert);
  g_unlink(key);
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 90000);
  g_test_set_nonfatal_assertions();
  hark_test_add_isolated_func("/web/page-headers", test_page_headers);
  hark_test_add_isolated_func("/web/login-link-works-once", test_login_link_works_once);
  hark_test_add_isolated_func("/web/link-and-session-expire", test_link_and_session_expire);
  hark_test_add_isolated_func("/web/websocket-speaks-ctl", test_websocket_speaks_ctl);
  hark_test_add_isolated_func("/web/websocket-oversize-and-binary-closed",
                              test_websocket_oversize_and_binary_closed);
  hark_test_add_isolated_func("/web/max-clients", test_max_clients);
  hark_test_add_isolated_func("/web/websocket-other-origin-refused",
                              test_websocket_other_origin_refused);
  hark_test_add_isolated_func("/web/websocket-bad-cookie-refused",
                              test_websocket_bad_cookie_refused);
  hark_test_add_isolated_func("/web/other-host-refused", test_other_host_refused);
  hark_test_add_isolated_func("/web/secret-file", test_secret_file);
  hark_test_add_isolated_func("/web/non-loopback-needs-tls", test_non_loopback_needs_tls);
  hark_test_add_isolated_func("/web/tls", test_tls);
  return g_test_run();
}
