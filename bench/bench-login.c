/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-login.c: how many logins a second a login server takes, and how many bytes one
 * login costs on the wire (TLS included).
 *
 *   bench-login URL CA_PEM [--users N] [--seconds S] [--parallel P]
 *
 * It registers N users, then keeps P logins in flight for S seconds, each the way a
 * device logs in (GET /v1/nonce, then POST /v1/login with the proof of its key, each on
 * its own connection), and prints JSON: logins per second, the median and
 * 95th-percentile login time (both requests), and the bytes each way of one login on
 * fresh connections, counted by a relay in this process between the client and the
 * server. */
#include <hark/hark.h>

#include <libsoup/soup.h>
#include <glib/gstdio.h>
#include <stdio.h>

typedef struct {
  const char *url;
  GTlsDatabase *ca;
  HarkIdentity *identity;
  char *public_key_pem;
  int users;
  int seconds;
  int parallel;
  GMainLoop *loop;
  gint64 deadline;
  GArray *durations; /* gint64 µs */
  int in_flight;
  int failures;
  int next_user;
} Bench;

static SoupSession *
session_new(Bench *b)
{
  SoupSession *session = soup_session_new_with_options("tls-database", b->ca, "timeout", 30,
                                                       "max-conns-per-host", 1, NULL);
  return session;
}

static SoupMessage *
json_request(const char *base, const char *path, JsonBuilder *builder)
{
  g_autofree char *uri = g_strconcat(base, path, NULL);
  SoupMessage *msg = soup_message_new("POST", uri);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  g_autoptr(JsonNode) root = json_builder_get_root(builder);
  json_generator_set_root(gen, root);
  gsize length;
  char *text = json_generator_to_data(gen, &length);
  g_autoptr(GBytes) body = g_bytes_new_take(text, length);
  soup_message_set_request_body_from_bytes(msg, "application/json", body);
  return msg;
}

static char *
user_name(int i)
{
  return g_strdup_printf("bench%05d", i);
}

static SoupMessage *
login_request(Bench *b, const char *base, int i, const char *nonce)
{
  g_autofree char *name = user_name(i);
  g_autoptr(GError) error = NULL;
  g_autofree char *proof = hark_login_proof_sign(b->identity, nonce, name, &error);
  if (proof == NULL)
    g_error("cannot sign the login proof: %s", error->message);
  g_autoptr(JsonBuilder) jb = json_builder_new();
  json_builder_begin_object(jb);
  json_builder_set_member_name(jb, "user");
  json_builder_add_string_value(jb, name);
  json_builder_set_member_name(jb, "password");
  json_builder_add_string_value(jb, "correct horse battery");
  json_builder_set_member_name(jb, "device");
  json_builder_add_string_value(jb, "bench");
  json_builder_set_member_name(jb, "public_key");
  json_builder_add_string_value(jb, b->public_key_pem);
  json_builder_set_member_name(jb, "nonce");
  json_builder_add_string_value(jb, nonce);
  json_builder_set_member_name(jb, "proof");
  json_builder_add_string_value(jb, proof);
  json_builder_end_object(jb);
  return json_request(base, "/v1/login", jb);
}

/* ---- one login: the nonce, then the login ---- */

typedef struct Login Login;
struct Login {
  Bench *bench;
  SoupSession *session;
  SoupMessage *msg; /* in flight */
  char *base;
  int user;
  gboolean logging_in; /* the nonce came; msg is the login */
  gboolean ok;
  GError *error;
  void (*finished)(Login *login);
  gpointer data;
};

static void
on_login_answer(GObject *source, GAsyncResult *result, gpointer data)
{
  Login *l = data;
  g_autoptr(GBytes) reply = soup_session_send_and_read_finish(l->session, result, &l->error);
  guint status = soup_message_get_status(l->msg);
  if (reply != NULL && status == 200 && !l->logging_in) {
    g_autoptr(JsonParser) parser = json_parser_new();
    gsize length;
    const char *text = g_bytes_get_data(reply, &length);
    JsonNode *root = json_parser_load_from_data(parser, text, (gssize)length, NULL)
                       ? json_parser_get_root(parser)
                       : NULL;
    const char *nonce =
      root != NULL && JSON_NODE_HOLDS_OBJECT(root)
        ? json_object_get_string_member_with_default(json_node_get_object(root), "nonce", NULL)
        : NULL;
    if (nonce != NULL) {
      g_object_unref(l->msg);
      l->msg = login_request(l->bench, l->base, l->user, nonce);
      l->logging_in = TRUE;
      soup_session_send_and_read_async(l->session, l->msg, G_PRIORITY_DEFAULT, NULL,
                                       on_login_answer, l);
      return;
    }
  }
  l->ok = reply != NULL && status == 200 && l->logging_in;
  if (!l->ok && l->error == NULL)
    g_set_error(&l->error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: HTTP %u",
                l->logging_in ? "login" : "nonce", status);
  l->finished(l);
}

static Login *
login_start(Bench *b, SoupSession *session, const char *base, int user,
            void (*finished)(Login *login), gpointer data)
{
  Login *l = g_new0(Login, 1);
  l->bench = b;
  l->session = session;
  l->base = g_strdup(base);
  l->user = user;
  l->finished = finished;
  l->data = data;
  g_autofree char *uri = g_strconcat(base, "/v1/nonce", NULL);
  l->msg = soup_message_new("GET", uri);
  soup_session_send_and_read_async(session, l->msg, G_PRIORITY_DEFAULT, NULL, on_login_answer, l);
  return l;
}

static void
login_free(Login *l)
{
  g_object_unref(l->msg);
  g_clear_error(&l->error);
  g_free(l->base);
  g_free(l);
}

static gboolean
register_users(Bench *b, GError **error)
{
  g_autoptr(SoupSession) session = session_new(b);
  for (int i = 0; i < b->users; i++) {
    g_autofree char *name = user_name(i);
    g_autoptr(JsonBuilder) jb = json_builder_new();
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "user");
    json_builder_add_string_value(jb, name);
    json_builder_set_member_name(jb, "password");
    json_builder_add_string_value(jb, "correct horse battery");
    json_builder_end_object(jb);
    g_autoptr(SoupMessage) msg = json_request(b->url, "/v1/register", jb);
    g_autoptr(GBytes) reply = soup_session_send_and_read(session, msg, NULL, error);
    if (reply == NULL)
      return FALSE;
    guint status = soup_message_get_status(msg);
    if (status != 201 && status != 409) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "register %s: HTTP %u: %.*s", name, status,
                  (int)g_bytes_get_size(reply), (const char *)g_bytes_get_data(reply, NULL));
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- the load: P logins in flight, each on a new session (a new TLS connection) ---- */

typedef struct {
  Bench *bench;
  SoupSession *session;
  gint64 started;
} Attempt;

static void start_attempt(Bench *b);

static void
on_login_done(Login *l)
{
  Attempt *a = l->data;
  Bench *b = a->bench;
  if (l->ok) {
    gint64 took = g_get_monotonic_time() - a->started;
    g_array_append_val(b->durations, took);
  } else {
    b->failures++;
    if (b->failures <= 3)
      g_printerr("login failed: %s\n", l->error->message);
  }
  login_free(l);
  g_object_unref(a->session);
  g_free(a);
  b->in_flight--;
  if (g_get_monotonic_time() < b->deadline)
    start_attempt(b);
  else if (b->in_flight == 0)
    g_main_loop_quit(b->loop);
}

static void
start_attempt(Bench *b)
{
  Attempt *a = g_new0(Attempt, 1);
  a->bench = b;
  a->session = session_new(b);
  a->started = g_get_monotonic_time();
  b->in_flight++;
  login_start(b, a->session, b->url, b->next_user++ % b->users, on_login_done, a);
}

static gint
compare_i64(gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

/* ---- bytes of one login: a relay that counts ---- */

typedef struct {
  GSocketService *service;
  GSocketConnectable *upstream;
  guint64 up, down;
  guint16 port;
  int open_pipes;
} Relay;

typedef struct {
  Relay *relay;
  GInputStream *in;
  GOutputStream *out;
  guint64 *counter;
  char buffer[16384];
  GIOStream *keep_a, *keep_b;
} Pipe;

static void pump(Pipe *p);

static void
on_written(GObject *source, GAsyncResult *result, gpointer data)
{
  Pipe *p = data;
  if (!g_output_stream_write_all_finish(p->out, result, NULL, NULL)) {
    p->relay->open_pipes--;
    g_object_unref(p->keep_a);
    g_object_unref(p->keep_b);
    g_free(p);
    return;
  }
  pump(p);
}

static void
on_read(GObject *source, GAsyncResult *result, gpointer data)
{
  Pipe *p = data;
  gssize n = g_input_stream_read_finish(p->in, result, NULL);
  if (n <= 0) {
    g_io_stream_close(p->keep_b, NULL, NULL);
    p->relay->open_pipes--;
    g_object_unref(p->keep_a);
    g_object_unref(p->keep_b);
    g_free(p);
    return;
  }
  *p->counter += n;
  g_output_stream_write_all_async(p->out, p->buffer, n, G_PRIORITY_DEFAULT, NULL, on_written, p);
}

static void
pump(Pipe *p)
{
  g_input_stream_read_async(p->in, p->buffer, sizeof p->buffer, G_PRIORITY_DEFAULT, NULL, on_read,
                            p);
}

static void
pipe_start(Relay *relay, GIOStream *from, GIOStream *to, guint64 *counter)
{
  Pipe *p = g_new0(Pipe, 1);
  p->relay = relay;
  p->in = g_io_stream_get_input_stream(from);
  p->out = g_io_stream_get_output_stream(to);
  p->counter = counter;
  p->keep_a = g_object_ref(from);
  p->keep_b = g_object_ref(to);
  relay->open_pipes++;
  pump(p);
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *client, GObject *source, gpointer data)
{
  Relay *relay = data;
  g_autoptr(GSocketClient) connector = g_socket_client_new();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) server =
    g_socket_client_connect(connector, relay->upstream, NULL, &error);
  if (server == NULL) {
    g_printerr("relay: %s\n", error->message);
    return FALSE;
  }
  pipe_start(relay, G_IO_STREAM(client), G_IO_STREAM(server), &relay->up);
  pipe_start(relay, G_IO_STREAM(server), G_IO_STREAM(client), &relay->down);
  return TRUE;
}

static gboolean
relay_start(Relay *relay, const char *url, GError **error)
{
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, error);
  if (uri == NULL)
    return FALSE;
  relay->upstream = g_network_address_new(g_uri_get_host(uri), g_uri_get_port(uri));
  relay->service = g_socket_service_new();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  if (!g_socket_listener_add_address(G_SOCKET_LISTENER(relay->service), any, G_SOCKET_TYPE_STREAM,
                                     G_SOCKET_PROTOCOL_TCP, NULL, &bound, error))
    return FALSE;
  relay->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_signal_connect(relay->service, "incoming", G_CALLBACK(on_incoming), relay);
  g_socket_service_start(relay->service);
  return TRUE;
}

static void
on_one_login(Login *l)
{
  *(gboolean *)l->data = TRUE;
}

/* One login through the relay on fresh connections; the server's host name is kept
 * (the certificate names it), only the port changes. Asynchronous, because the relay
 * runs on this thread's main context too. */
static gboolean
measure_one_login(Bench *b, guint64 *up, guint64 *down, GError **error)
{
  Relay relay = { 0 };
  if (!relay_start(&relay, b->url, error))
    return FALSE;
  g_autoptr(GUri) uri = g_uri_parse(b->url, G_URI_FLAGS_NONE, NULL);
  g_autofree char *base = g_strdup_printf("https://%s:%u", g_uri_get_host(uri), relay.port);
  SoupSession *session = session_new(b);
  gboolean done = FALSE;
  Login *l = login_start(b, session, base, 0, on_one_login, &done);
  while (!done)
    g_main_context_iteration(NULL, TRUE);
  gboolean ok = l->ok;
  g_object_unref(session); /* closes the connection, so the TLS close is counted too */
  while (relay.open_pipes > 0)
    g_main_context_iteration(NULL, TRUE);
  g_socket_service_stop(relay.service);
  g_object_unref(relay.service);
  g_object_unref(relay.upstream);
  *up = relay.up;
  *down = relay.down;
  if (!ok)
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "login through the relay failed: %s",
                l->error->message);
  login_free(l);
  return ok;
}

int
main(int argc, char **argv)
{
  Bench b = { .users = 20, .seconds = 10, .parallel = 4 };
  GOptionEntry entries[] = {
    { "users", 0, 0, G_OPTION_ARG_INT, &b.users, "users to register (default 20)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &b.seconds, "how long to log in (default 10)", "S" },
    { "parallel", 0, 0, G_OPTION_ARG_INT, &b.parallel, "logins in flight (default 4)", "P" },
    { NULL },
  };
  g_autoptr(GOptionContext) options = g_option_context_new("URL CA_PEM");
  g_option_context_add_main_entries(options, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(options, &argc, &argv, &error) || argc != 3 || b.users < 1) {
    g_printerr("usage: bench-login URL CA_PEM [--users N] [--seconds S] [--parallel P]%s%s\n",
               error ? ": " : "", error ? error->message : "");
    return 2;
  }
  b.url = argv[1];
  g_autoptr(GTlsDatabase) ca = g_tls_file_database_new(argv[2], &error);
  g_autofree char *tmp = g_dir_make_tmp("hark-bench-XXXXXX", NULL);
  g_autofree char *key_path = g_build_filename(tmp, "identity.pem", NULL);
  g_autoptr(HarkIdentity) identity =
    ca ? hark_identity_load_or_create(key_path, NULL, &error) : NULL;
  if (identity == NULL) {
    g_printerr("bench-login: %s\n", error->message);
    return 1;
  }
  b.ca = ca;
  b.identity = identity;
  b.public_key_pem = hark_identity_get_public_pem(identity);
  g_unlink(key_path);
  g_rmdir(tmp);
  if (!register_users(&b, &error)) {
    g_printerr("bench-login: %s\n", error->message);
    return 1;
  }
  guint64 up = 0, down = 0;
  if (!measure_one_login(&b, &up, &down, &error)) {
    g_printerr("bench-login: %s\n", error->message);
    return 1;
  }
  b.loop = g_main_loop_new(NULL, FALSE);
  b.durations = g_array_new(FALSE, FALSE, sizeof(gint64));
  gint64 started = g_get_monotonic_time();
  b.deadline = started + (gint64)b.seconds * G_USEC_PER_SEC;
  for (int i = 0; i < b.parallel; i++)
    start_attempt(&b);
  g_main_loop_run(b.loop);
  double elapsed = (g_get_monotonic_time() - started) / 1e6;
  g_array_sort(b.durations, compare_i64);
  guint n = b.durations->len;
  double median = n ? g_array_index(b.durations, gint64, n / 2) / 1000.0 : 0;
  double p95 = n ? g_array_index(b.durations, gint64, (n * 95) / 100) / 1000.0 : 0;
  printf("{\"logins\": %u, \"failures\": %d, \"seconds\": %.2f, \"logins_per_second\": %.1f, "
         "\"median_ms\": %.1f, \"p95_ms\": %.1f, \"parallel\": %d, "
         "\"bytes_client_to_server\": %" G_GUINT64_FORMAT
         ", \"bytes_server_to_client\": %" G_GUINT64_FORMAT "}\n",
         n, b.failures, elapsed, n / elapsed, median, p95, b.parallel, up, down);
  g_array_unref(b.durations);
  g_main_loop_unref(b.loop);
  g_free(b.public_key_pem);
  return b.failures == 0 ? 0 : 1;
}
