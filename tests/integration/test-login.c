/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-login.c: nodes logging in to a real login server (issue 3's "done when").
 *
 * A login-server node (a store plugin, loginsrv, ctl) and client nodes configured with
 * its URL and CA, all real `hark run` processes driven through ctl: alice registers and
 * logs in on two devices, adds bob on the first and sees him on the second; her device
 * certificate is checked with `openssl verify` and hark_certificate_verify; wrong
 * password or unknown user (one answer), a name taken in another case, a lock-out and an untrusted CA
 * each give a clear error; the server restarts on its state without losing anything,
 * and a restarted device is still logged in. One behaviour per case, each with a login
 * server of its own (lab_login_server_start). The cases that touch the store run against
 * sqlite, and against postgres when HARK_TEST_PG_CONNINFO names a server (`make check`
 * starts a throw-away one; without it they are skipped). */
#include "lab.h"
#include "test-pg.h"
#include "test-ports.h"
#include "test-isolate.h"
#include "test-envelope.h"

#include <hark/certificate.h>
#include <hark/identity.h>

#include <hark/hark.h>

#include "hark-private.h"
#include "login.h"
#include "test-files.h"
#include "test-wait.h"

#include <glib/gstdio.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_MS 10000
#define TOOL_MS 20000
#define LIFETIME_DAY (24 * 3600)
#define LIFETIME_SHORT 60 /* the server's minimum: renewal after 30 s (login.c) */
#define RENEWAL_MS 10000 /* a renewal's round trip, once the device's clock is moved */

#define ALICE_PASSWORD "alice-secret-1"
#define BOB_PASSWORD "bob-secret-22"

typedef enum {
  STORE_SQLITE,
  STORE_POSTGRES
} Store;

static const char *const store_names[] = {
  [STORE_SQLITE] = "sqlite", [STORE_POSTGRES] = "postgres"
};

/* ---- the login server ------------------------------------------------------------------- */

/* lab_login_server_start's server, on a database of its own for postgres. */
typedef struct {
  HarkTestPgDatabase *database; /* postgres: made for this case, dropped after it */
  LabLoginServer *login;
  /* Shortcuts into login. */
  const char *url;
  const char *ca_path; /* <state>/ca.pem, which clients pin */
  guint16 port;
  LabNode *node;
} Server;

static void
server_free(Server *server)
{
  if (server == NULL)
    return;
  g_clear_pointer(&server->login, lab_login_server_free);
  g_clear_pointer(&server->database, hark_test_pg_database_free);
  g_free(server);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Server, server_free)

/* A running login server, known to clients as host, or NULL (skipped, or the test
 * failed). The hash is made cheap (64 KiB, one pass): these tests are about the protocol,
 * and the lock-out case makes a dozen logins. */
static Server *
server_new_full(Store store, int lifetime, const char *host, gboolean test_clock)
{
  g_autoptr(Server) server = g_new0(Server, 1);
  g_autofree char *options = NULL;
  if (store == STORE_POSTGRES) {
    server->database = hark_test_pg_database_new("login");
    if (server->database == NULL)
      return NULL;
    options = g_strdup_printf("conninfo = \"%s\";", server->database->conninfo);
  }
  /* Room for two held messages per device: held-messages fills it. */
  g_autofree char *settings =
    g_strdup_printf("certificate_lifetime = %d; hash_memory_kib = 64; hash_iterations = 1;"
                    " messages = { device_max_messages = 2; };",
                    lifetime);
  LabLoginOptions login = { .store = store_names[store],
                            .store_options = options,
                            .host = host,
                            .settings = settings,
                            .node_settings = test_clock ? "test_clock = true;" : NULL };
  server->login = lab_login_server_start(&login);
  if (server->login == NULL)
    return NULL;
  server->url = server->login->url;
  server->ca_path = server->login->ca_path;
  server->port = server->login->port;
  server->node = server->login->node;
  return g_steal_pointer(&server);
}

static Server *
server_new_at(Store store, int lifetime, const char *host)
{
  return server_new_full(store, lifetime, host, FALSE);
}

static Server *
server_new(Store store, int lifetime)
{
  return server_new_at(store, lifetime, "127.0.0.1");
}

/* ---- devices (client nodes) ------------------------------------------------------------ */

typedef struct {
  HarkTestNode *node;
  HarkTestClient *ctl;
} Device;

static void
device_free(Device *device)
{
  if (device == NULL)
    return;
  g_clear_pointer(&device->ctl, hark_test_client_free);
  g_clear_pointer(&device->node, hark_test_node_free);
  g_free(device);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Device, device_free)

/* test_clock: the device's time stands still until lab_clock_advance moves it. */
static char *
device_config(const char *name, const char *url, const char *ca, gboolean test_clock)
{
  return g_strdup_printf("node: { name = \"%s\";%s };\n"
                         "plugins: { load = ( { name = \"ctl\"; } ); };\n"
                         "login: { url = \"%s\"; ca = \"%s\"; };\n",
                         name, test_clock ? " test_clock = true;" : "", url, ca);
}

static Device *
device_new_full(const char *name, const char *url, const char *ca, gboolean test_clock)
{
  g_autofree char *config = device_config(name, url, ca, test_clock);
  Device *device = g_new0(Device, 1);
  device->node = hark_test_node_new(config);
  return device;
}

static Device *
device_new(const char *name, const char *url, const char *ca)
{
  return device_new_full(name, url, ca, FALSE);
}

static gboolean
device_start(Device *device)
{
  return lab_start_with_ctl(device->node, &device->ctl);
}

/* A device pinning the server's CA, running; NULL when it did not start. */
static Device *
device_for(Server *server, const char *name)
{
  g_autoptr(Device) device = device_new(name, server->url, server->ca_path);
  return device_start(device) ? g_steal_pointer(&device) : NULL;
}

static char *
state_file(Device *device, const char *name)
{
  return g_build_filename(device->node->state_dir, name, NULL);
}

/* A CA of nobody we know (for the untrusted-server cases), written to path. */
static gboolean
make_foreign_ca(const char *path)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *key = g_build_filename(dir, "foreign-ca-key.pem", NULL);
  const char *argv[] = {
    "openssl", "req",     "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
    "-nodes",  "-keyout", key,     "-out",    path, "-subj",    "/CN=someone else's CA",
    "-days",   "1",       NULL
  };
  g_autofree char *out = NULL, *err = NULL;
  int status = hark_test_run(argv, &out, &err, TOOL_MS);
  if (status != 0)
    g_test_fail_printf("openssl req failed (%d): %s", status, err);
  return status == 0;
}

/* ---- a fake login server ---------------------------------------------------------------- */

/* An HTTPS server on 127.0.0.1:port presenting a given certificate and key (a user's
 * device certificate): it counts the connections it took, the TLS handshakes that
 * completed and the bytes of request (headers and body) it received. A thread of its own,
 * since ctl calls block the test's thread. */
typedef struct {
  SSL_CTX *ssl_ctx;
  int listen_fd;
  GThread *thread;
  gint stop;
  gint connections;
  gint handshakes;
  gint request_bytes;
  gint saw_password;
} FakeServer;

/* TRUE once request holds the headers and as many body bytes as they announce. */
static gboolean
request_complete(GString *request)
{
  const char *end = strstr(request->str, "\r\n\r\n");
  if (end == NULL)
    return FALSE;
  const char *length = strcasestr(request->str, "content-length:");
  gsize body = length != NULL && length < end ? g_ascii_strtoull(length + 15, NULL, 10) : 0;
  return request->len >= (gsize)(end + 4 - request->str) + body;
}

static void
fake_server_serve(FakeServer *fake, int fd)
{
  struct timeval patience = { .tv_sec = 2 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  SSL *ssl = SSL_new(fake->ssl_ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    g_atomic_int_inc(&fake->handshakes);
    g_autoptr(GString) request = g_string_new(NULL);
    char buffer[4096];
    int n;
    while (!request_complete(request) && request->len < 65536 &&
           (n = SSL_read(ssl, buffer, sizeof buffer)) > 0) {
      g_string_append_len(request, buffer, n);
      g_atomic_int_add(&fake->request_bytes, n);
    }
    if (strstr(request->str, "\"password\"") != NULL)
      g_atomic_int_set(&fake->saw_password, 1);
    static const char answer[] = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n";
    SSL_write(ssl, answer, sizeof answer - 1);
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  close(fd);
}

static gpointer
fake_server_run(gpointer data)
{
  FakeServer *fake = data;
  while (!g_atomic_int_get(&fake->stop)) {
    struct pollfd pfd = { .fd = fake->listen_fd, .events = POLLIN };
    if (poll(&pfd, 1, 50) <= 0)
      continue;
    int fd = accept(fake->listen_fd, NULL, NULL);
    if (fd < 0)
      continue;
    g_atomic_int_inc(&fake->connections);
    fake_server_serve(fake, fd);
  }
  return NULL;
}

static void
fake_server_free(FakeServer *fake)
{
  if (fake == NULL)
    return;
  g_atomic_int_set(&fake->stop, 1);
  if (fake->thread != NULL)
    g_thread_join(fake->thread);
  if (fake->listen_fd >= 0)
    close(fake->listen_fd);
  SSL_CTX_free(fake->ssl_ctx);
  g_free(fake);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FakeServer, fake_server_free)

static FakeServer *
fake_server_new(guint16 port, const char *cert_path, const char *key_path)
{
  g_autoptr(FakeServer) fake = g_new0(FakeServer, 1);
  fake->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  fake->ssl_ctx = SSL_CTX_new(TLS_server_method());
  int one = 1;
  struct sockaddr_in address = { .sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (fake->listen_fd < 0 || fake->ssl_ctx == NULL ||
      setsockopt(fake->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fake->listen_fd, (struct sockaddr *)&address, sizeof address) != 0 ||
      listen(fake->listen_fd, 8) != 0 ||
      SSL_CTX_use_certificate_chain_file(fake->ssl_ctx, cert_path) != 1 ||
      SSL_CTX_use_PrivateKey_file(fake->ssl_ctx, key_path, SSL_FILETYPE_PEM) != 1) {
    g_test_fail_printf("cannot start a fake login server on port %u with %s", port, cert_path);
    return NULL;
  }
  fake->thread = g_thread_new("fake-login-server", fake_server_run, fake);
  return g_steal_pointer(&fake);
}

/* ---- commands ------------------------------------------------------------------------ */

/* The message of the error a command must answer, or NULL (test failed). */
static char *
call_fails(HarkTestClient *ctl, const char *command, JsonObject *args)
{
  g_autoptr(JsonObject) answer = lab_ctl_ask(ctl, command, args, NULL);
  if (answer == NULL || hark_test_answer_error_code(answer) == NULL)
    return NULL;
  JsonObject *error = json_object_get_object_member(answer, "error");
  return g_strdup(json_object_get_string_member_with_default(error, "message", ""));
}

static void
assert_message_has(const char *message, const char *part)
{
  if (message == NULL || strstr(message, part) == NULL)
    g_test_fail_printf("error message '%s' does not say '%s'", message, part);
}

static gboolean
has_buddy(JsonObject *result, const char *name)
{
  JsonArray *buddies = result != NULL ? json_object_get_array_member(result, "buddies") : NULL;
  for (guint i = 0; buddies != NULL && i < json_array_get_length(buddies); i++) {
    JsonObject *buddy = json_array_get_object_element(buddies, i);
    if (g_strcmp0(json_object_get_string_member_with_default(buddy, "name", NULL), name) == 0)
      return TRUE;
  }
  return FALSE;
}

static JsonObject *
find_event(GPtrArray *events, const char *name)
{
  for (guint i = 0; i < events->len; i++) {
    JsonObject *event = events->pdata[i];
    if (g_strcmp0(json_object_get_string_member_with_default(event, "event", NULL), name) == 0)
      return event;
  }
  return NULL;
}

/* login, checked: who, which device, until when, the list; and the logged-in event. */
static JsonObject *
login_as(Device *device, const char *user, const char *password, const char *device_name)
{
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  JsonObject *result =
    lab_ctl_call(device->ctl, "login", lab_args("user", user, "password", password, NULL), events);
  if (result == NULL)
    return NULL;
  g_assert_cmpstr(json_object_get_string_member_with_default(result, "user", NULL), ==, user);
  g_assert_cmpstr(json_object_get_string_member_with_default(result, "device", NULL), ==,
                  device_name);
  g_autoptr(GDateTime) expires = g_date_time_new_from_iso8601(
    json_object_get_string_member_with_default(result, "expires", ""), NULL);
  g_assert_nonnull(expires);
  g_assert_true(json_object_has_member(result, "buddies"));
  JsonObject *event = find_event(events, "logged-in");
  g_assert_nonnull(event);
  if (event != NULL)
    g_assert_cmpstr(json_object_get_string_member_with_default(event, "user", NULL), ==, user);
  return result;
}

static const char *
result_string(JsonObject *result, const char *member)
{
  return result != NULL ? json_object_get_string_member_with_default(result, member, NULL) : NULL;
}

/* ---- checks of what a device keeps ------------------------------------------------------ */

static void
assert_private_file(const char *path)
{
  struct stat st;
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

/* The chain with OpenSSL's own tool, then with hark's check: issued by the pinned CA,
 * for this user, binding this device's key. */
static gboolean
check_device_certificate(Server *server, Device *device, const char *user)
{
  g_autofree char *cert_path = state_file(device, "certificate.pem");
  assert_private_file(cert_path);
  const char *argv[] = { "openssl", "verify", "-CAfile", server->ca_path, cert_path, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint(hark_test_run(argv, &out, &err, TOOL_MS), ==, 0);
  g_assert_nonnull(strstr(out, ": OK"));

  g_autofree char *ca_pem = NULL, *cert_pem = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(server->ca_path, &ca_pem, NULL, &error));
  g_assert_true(g_file_get_contents(cert_path, &cert_pem, NULL, &error));
  g_autoptr(GBytes) cert_bytes = g_bytes_new(cert_pem, strlen(cert_pem));
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(ca_pem, cert_bytes, g_get_real_time() / G_USEC_PER_SEC, &error);
  g_assert_no_error(error);
  if (cert == NULL)
    return FALSE;
  g_assert_cmpstr(cert->user, ==, user);

  g_autofree char *key_path = state_file(device, "identity.pem");
  g_autoptr(HarkIdentity) identity = hark_identity_load(key_path, &error);
  g_assert_no_error(error);
  if (identity == NULL)
    return FALSE;
  g_autoptr(GBytes) key = hark_identity_get_public_key(identity);
  g_assert_true(g_bytes_equal(cert->public_key, key));
  g_assert_cmpstr(cert->device_id, ==, hark_identity_get_fingerprint(identity));
  return !g_test_failed();
}

static void
assert_logged_in_as(Device *device, const char *user)
{
  g_autoptr(JsonObject) whoami = lab_ctl_call(device->ctl, "whoami", NULL, NULL);
  g_assert_cmpstr(result_string(whoami, "user"), ==, user);
  g_autoptr(JsonObject) state = lab_ctl_call(device->ctl, "state", NULL, NULL);
  JsonObject *login = state != NULL ? json_object_get_object_member(state, "login") : NULL;
  g_assert_nonnull(login);
  if (login != NULL)
    g_assert_cmpstr(result_string(login, "user"), ==, user);
}

/* ---- the cases ------------------------------------------------------------------------ */

/* FALSE (the case failed) when the server did not register user: callers stop. */
static gboolean
register_user(Device *device, const char *user, const char *password)
{
  g_autoptr(JsonObject) result =
    lab_ctl_call(device->ctl, "register", lab_args("user", user, "password", password, NULL), NULL);
  g_assert_cmpstr(result_string(result, "registered"), ==, user);
  return g_strcmp0(result_string(result, "registered"), user) == 0;
}

/* The case's server and devices (names, NULL-terminated), each started, and user
 * registered from the first and logged in on each; FALSE when the case cannot go on:
 * skipped (no PostgreSQL) or failed, either way marked, so the case just returns. */
typedef struct {
  Server *server;
  Device *devices[3];
} Account;

static void
account_clear(Account *account)
{
  for (guint i = 0; i < G_N_ELEMENTS(account->devices); i++)
    g_clear_pointer(&account->devices[i], device_free);
  g_clear_pointer(&account->server, server_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Account, account_clear)

static gboolean
account_up(Account *account, Store store, const char *user, const char *password,
           const char *first_device, ...)
{
  account->server = server_new(store, LIFETIME_DAY);
  if (account->server == NULL)
    return FALSE;
  va_list ap;
  va_start(ap, first_device);
  guint n = 0;
  for (const char *name = first_device; name != NULL && n < G_N_ELEMENTS(account->devices);
       name = va_arg(ap, const char *)) {
    account->devices[n] = device_for(account->server, name);
    if (account->devices[n] == NULL) {
      va_end(ap);
      return FALSE;
    }
    if (n == 0 && !register_user(account->devices[0], user, password)) {
      va_end(ap);
      return FALSE;
    }
    g_autoptr(JsonObject) login = login_as(account->devices[n], user, password, name);
    if (login == NULL) {
      va_end(ap);
      return FALSE;
    }
    n++;
  }
  va_end(ap);
  return TRUE;
}

/* user registered on the server from a device of their own (stopped again). */
static gboolean
user_exists(Server *server, const char *user, const char *password)
{
  g_autofree char *name = g_strdup_printf("%s-registers", user);
  g_autoptr(Device) device = device_for(server, name);
  return device != NULL && register_user(device, user, password);
}

/* The names in a list member of a `requests` answer ("incoming", "outgoing"), joined. */
static char *
request_names(JsonObject *result, const char *which)
{
  g_autoptr(GString) text = g_string_new(NULL);
  JsonArray *array = result != NULL ? json_object_get_array_member(result, which) : NULL;
  for (guint i = 0; array != NULL && i < json_array_get_length(array); i++)
    g_string_append_printf(
      text, "%s%s", i ? "," : "",
      json_object_get_string_member(json_array_get_object_element(array, i), "name"));
  return g_string_free(g_steal_pointer(&text), FALSE);
}

static gboolean
names_are(JsonObject *result, const char *which, const char *expected)
{
  g_autofree char *names = request_names(result, which);
  if (strcmp(names, expected) == 0)
    return TRUE;
  g_test_fail_printf("%s: expected [%s], got [%s]", which, expected, names);
  return FALSE;
}

/* device asks name, who accepts on a device of their own (started and logged in for it,
 * stopped again); device then has them on its list. */
static gboolean
befriend(Server *server, Device *device, const char *name, const char *password)
{
  g_autoptr(JsonObject) sent =
    lab_ctl_call(device->ctl, "buddy-add", lab_args("name", name, NULL), NULL);
  g_assert_cmpstr(result_string(sent, "status"), ==, "request sent");
  g_autofree char *device_name = g_strdup_printf("%s-answers", name);
  g_autoptr(Device) other = device_for(server, device_name);
  g_autoptr(JsonObject) login = other ? login_as(other, name, password, device_name) : NULL;
  g_autoptr(JsonObject) mine = lab_ctl_call(device->ctl, "whoami", NULL, NULL);
  g_autoptr(JsonObject) accepted =
    login != NULL && mine != NULL
      ? lab_ctl_call(other->ctl, "buddy-accept",
                     lab_args("name", result_string(mine, "user"), NULL), NULL)
      : NULL;
  g_autoptr(JsonObject) list = lab_ctl_call(device->ctl, "buddies", NULL, NULL);
  g_assert_true(has_buddy(list, name));
  return accepted != NULL && has_buddy(list, name);
}

/* Alice asks bob (the command says "request sent", nothing is on her list yet); bob's
 * two devices each announce the request; he accepts on one; both of his devices and
 * alice's list then have the other, each saying its list changed. */
static void
test_buddy_sync(gconstpointer data)
{
  g_auto(Account) account = { 0 };
  if (!account_up(&account, GPOINTER_TO_INT(data), "bob", BOB_PASSWORD, "bob-1", "bob-2", NULL))
    return; /* skipped, or failed */
  Device *bob1 = account.devices[0], *bob2 = account.devices[1];
  g_autoptr(Device) alice = device_for(account.server, "alice-1");
  HARK_REQUIRE(alice != NULL && register_user(alice, "alice", ALICE_PASSWORD));
  g_autoptr(JsonObject) alice_in = login_as(alice, "alice", ALICE_PASSWORD, "alice-1");
  HARK_REQUIRE(alice_in != NULL);

  g_autoptr(JsonObject) sent = lab_ctl_call(
    alice->ctl, "buddy-add", lab_args("name", "bob", "message", "it's Alice", NULL), NULL);
  HARK_REQUIRE(sent != NULL);
  g_assert_cmpstr(result_string(sent, "status"), ==, "request sent");
  g_assert_false(has_buddy(sent, "bob"));
  HARK_REQUIRE(names_are(sent, "outgoing", "bob"));

  Device *bobs[] = { bob1, bob2 };
  for (gsize i = 0; i < G_N_ELEMENTS(bobs); i++) {
    g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(JsonObject) requests = lab_ctl_call(bobs[i]->ctl, "requests", NULL, events);
    HARK_REQUIRE(names_are(requests, "incoming", "alice"));
    JsonObject *event = find_event(events, "contact-request");
    HARK_REQUIRE(event != NULL);
    g_assert_cmpstr(result_string(event, "from"), ==, "alice");
    g_assert_cmpstr(result_string(event, "message"), ==, "it's Alice");
    /* Announced once per device: asking again shows it, without a new event. */
    g_autoptr(GPtrArray) again_events =
      g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(JsonObject) again = lab_ctl_call(bobs[i]->ctl, "requests", NULL, again_events);
    HARK_REQUIRE(names_are(again, "incoming", "alice"));
    g_assert_null(find_event(again_events, "contact-request"));
  }

  g_autoptr(GPtrArray) accept_events =
    g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  g_autoptr(JsonObject) accepted =
    lab_ctl_call(bob1->ctl, "buddy-accept", lab_args("name", "alice", NULL), accept_events);
  HARK_REQUIRE(accepted != NULL);
  g_assert_true(has_buddy(accepted, "alice"));
  g_assert_nonnull(find_event(accept_events, "buddies-changed"));
  gint64 revision = json_object_get_int_member_with_default(accepted, "revision", -1);
  g_assert_cmpint(revision, >, 0);

  Device *others[] = { bob2, alice };
  const char *expected[] = { "alice", "bob" };
  for (gsize i = 0; i < G_N_ELEMENTS(others); i++) {
    g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    g_autoptr(JsonObject) synced = lab_ctl_call(others[i]->ctl, "buddies", NULL, events);
    HARK_REQUIRE(synced != NULL);
    g_assert_true(has_buddy(synced, expected[i]));
    g_assert_true(json_object_get_boolean_member_with_default(synced, "synced", FALSE));
    g_assert_nonnull(find_event(events, "buddies-changed"));
  }
  g_autoptr(JsonObject) left = lab_ctl_call(bob2->ctl, "requests", NULL, NULL);
  HARK_REQUIRE(names_are(left, "incoming", ""));

  /* A rename on bob's device 2 made against the revision it knows; device 1's next change
   * is based on an older one, meets `conflict`, fetches and goes through. */
  g_autoptr(JsonObject) renamed =
    lab_ctl_call(bob2->ctl, "buddy-rename", lab_args("name", "alice", "alias", "Al", NULL), NULL);
  g_assert_true(has_buddy(renamed, "alice"));
  g_autoptr(JsonObject) again =
    lab_ctl_call(bob1->ctl, "buddy-rename", lab_args("name", "alice", "alias", "Ally", NULL), NULL);
  g_assert_true(has_buddy(again, "alice"));
  g_assert_cmpint(json_object_get_int_member_with_default(again, "revision", -1), >,
                  json_object_get_int_member_with_default(renamed, "revision", -1));
  /* The list a device keeps is for its user only. */
  g_autofree char *buddies_path = state_file(bob1, "buddies.json");
  assert_private_file(buddies_path);
}

/* Bob blocks mallory: what she sends then is "request sent" as for anyone, and never
 * reaches any of his devices; a request to nobody, and to oneself, are refused; a
 * declined request is gone from both sides. */
static void
test_contact_block(gconstpointer data)
{
  g_auto(Account) account = { 0 };
  if (!account_up(&account, GPOINTER_TO_INT(data), "bob", BOB_PASSWORD, "bob-1", NULL))
    return; /* skipped, or failed */
  Device *bob = account.devices[0];
  g_autoptr(Device) mallory = device_for(account.server, "mallory-1");
  HARK_REQUIRE(mallory != NULL && register_user(mallory, "mallory", "mallory-secret"));
  g_autoptr(JsonObject) in = login_as(mallory, "mallory", "mallory-secret", "mallory-1");
  HARK_REQUIRE(in != NULL);

  g_autoptr(JsonObject) blocked =
    lab_ctl_call(bob->ctl, "block", lab_args("name", "mallory", NULL), NULL);
  HARK_REQUIRE(blocked != NULL);
  JsonArray *blocks = json_object_get_array_member(blocked, "blocked");
  g_assert_cmpuint(json_array_get_length(blocks), ==, 1);
  g_autoptr(JsonObject) sent =
    lab_ctl_call(mallory->ctl, "buddy-add", lab_args("name", "bob", "message", "hi", NULL), NULL);
  HARK_REQUIRE(sent != NULL);
  g_assert_cmpstr(result_string(sent, "status"), ==, "request sent");
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  g_autoptr(JsonObject) inbox = lab_ctl_call(bob->ctl, "requests", NULL, events);
  HARK_REQUIRE(names_are(inbox, "incoming", ""));
  g_assert_null(find_event(events, "contact-request"));
  g_autofree char *hidden = call_fails(bob->ctl, "buddy-accept", lab_args("name", "mallory", NULL));
  assert_message_has(hidden, "no pending request from 'mallory'");

  g_autofree char *nobody = call_fails(bob->ctl, "buddy-add", lab_args("name", "nobody", NULL));
  assert_message_has(nobody, "unknown user 'nobody'");
  g_autofree char *self = call_fails(bob->ctl, "buddy-add", lab_args("name", "Bob", NULL));
  assert_message_has(self, "your own name");

  g_autoptr(JsonObject) unblocked =
    lab_ctl_call(bob->ctl, "unblock", lab_args("name", "mallory", NULL), NULL);
  HARK_REQUIRE(names_are(unblocked, "incoming", ""));
  g_autoptr(JsonObject) asked =
    lab_ctl_call(bob->ctl, "buddy-add", lab_args("name", "mallory", NULL), NULL);
  HARK_REQUIRE(asked != NULL);
  g_autoptr(JsonObject) declined =
    lab_ctl_call(mallory->ctl, "buddy-decline", lab_args("name", "bob", NULL), NULL);
  HARK_REQUIRE(names_are(declined, "incoming", ""));
  g_autoptr(JsonObject) after = lab_ctl_call(bob->ctl, "requests", NULL, NULL);
  HARK_REQUIRE(names_are(after, "outgoing", ""));
}

/* The device certificate a login leaves, checked by openssl and by hark. */
static void
test_device_certificate(gconstpointer data)
{
  g_auto(Account) account = { 0 };
  if (!account_up(&account, GPOINTER_TO_INT(data), "alice", ALICE_PASSWORD, "alice-1", NULL))
    return; /* skipped, or failed */
  HARK_REQUIRE(check_device_certificate(account.server, account.devices[0], "alice"));
}

/* The refusals a person meets, each with a message that says what happened. */
static void
test_refusals(gconstpointer data)
{
  g_auto(Account) account = { 0 };
  if (!account_up(&account, GPOINTER_TO_INT(data), "alice", ALICE_PASSWORD, "alice-2", NULL))
    return; /* skipped, or failed */
  Device *alice2 = account.devices[0];
  g_autoptr(Device) bob = device_for(account.server, "bob");
  HARK_REQUIRE(bob != NULL);
  HARK_REQUIRE(register_user(bob, "bob", BOB_PASSWORD));
  g_autoptr(JsonObject) login_bob = login_as(bob, "bob", BOB_PASSWORD, "bob");
  HARK_REQUIRE(login_bob != NULL);
  g_autofree char *wrong = call_fails(
    alice2->ctl, "login", lab_args("user", "alice", "password", "not-her-password", NULL));
  assert_message_has(wrong, "wrong password for user 'alice'");
  g_autofree char *unknown =
    call_fails(alice2->ctl, "login", lab_args("user", "carol", "password", "whatever-1", NULL));
  /* The server does not say whether carol exists. */
  assert_message_has(unknown, "wrong password for user 'carol', or no such user");
  g_autofree char *taken =
    call_fails(bob->ctl, "register", lab_args("user", "ALICE", "password", "another-one", NULL));
  assert_message_has(taken, "user 'ALICE' exists already");
  g_autofree char *bad_name =
    call_fails(bob->ctl, "register", lab_args("user", "9lives", "password", "another-one", NULL));
  assert_message_has(bad_name, "bad user name '9lives'");
  g_autofree char *no_buddy = call_fails(bob->ctl, "buddy-remove", lab_args("name", "alice", NULL));
  assert_message_has(no_buddy, "'alice' is not in the buddy list");
  /* After all that, alice is still logged in on device 2. */
  assert_logged_in_as(alice2, "alice");
}

/* Wrong passwords for eve until the server locks her out; it then says for how long.
 * (After 5 failures she is locked for 1 s, doubling: a dozen tries always get there.) */
static void
test_lock_out(gconstpointer data)
{
  g_autoptr(Server) server = server_new(GPOINTER_TO_INT(data), LIFETIME_DAY);
  if (server == NULL)
    return; /* skipped, or failed */
  g_autoptr(Device) device = device_for(server, "eve-1");
  HARK_REQUIRE(device != NULL);
  HARK_REQUIRE(register_user(device, "eve", "eve-password-1"));
  g_autofree char *message = NULL;
  for (int i = 0; i < 12 && (message == NULL || !g_str_has_prefix(message, "locked out")); i++) {
    g_free(message);
    message =
      call_fails(device->ctl, "login", lab_args("user", "eve", "password", "guess-guess", NULL));
    HARK_REQUIRE(message != NULL);
  }
  g_assert_true(g_regex_match_simple("^locked out: too many failed logins, try again in [0-9]+ s$",
                                     message, 0, 0));
}

/* passwd and delete-account on an account of their own. */
static void
test_password_and_delete(gconstpointer data)
{
  g_autoptr(Server) server = server_new(GPOINTER_TO_INT(data), LIFETIME_DAY);
  if (server == NULL)
    return; /* skipped, or failed */
  g_autoptr(Device) dave = device_for(server, "dave-1");
  HARK_REQUIRE(dave != NULL);
  HARK_REQUIRE(register_user(dave, "dave", "dave-password-1"));
  g_autoptr(JsonObject) first = login_as(dave, "dave", "dave-password-1", "dave-1");
  HARK_REQUIRE(first != NULL);
  g_autoptr(JsonObject) changed = lab_ctl_call(
    dave->ctl, "passwd", lab_args("old", "dave-password-1", "new", "dave-password-2", NULL), NULL);
  g_assert_nonnull(changed);
  g_autofree char *old =
    call_fails(dave->ctl, "login", lab_args("user", "dave", "password", "dave-password-1", NULL));
  assert_message_has(old, "wrong password");
  g_autoptr(JsonObject) second = login_as(dave, "dave", "dave-password-2", "dave-1");
  HARK_REQUIRE(second != NULL);
  g_autoptr(JsonObject) deleted =
    lab_ctl_call(dave->ctl, "delete-account", lab_args("password", "dave-password-2", NULL), NULL);
  g_assert_cmpstr(result_string(deleted, "deleted"), ==, "dave");
  g_autofree char *gone = call_fails(dave->ctl, "whoami", NULL);
  assert_message_has(gone, "not logged in");
  g_autofree char *unknown =
    call_fails(dave->ctl, "login", lab_args("user", "dave", "password", "dave-password-2", NULL));
  assert_message_has(unknown, "wrong password for user 'dave', or no such user");
}

/* `hark ctl` with stdin: the exit status, stdout and stderr of `printf INPUT | hark ctl
 * --socket SOCKET ARGS`. */
static int
ctl_tool(Device *device, const char *input, const char *args, char **out, char **err)
{
  g_autofree char *script = g_strdup_printf("printf '%s' | \"$HARK_BIN\" ctl --socket '%s' %s",
                                            input, device->node->socket_path, args);
  const char *argv[] = { "sh", "-c", script, NULL };
  return hark_test_run(argv, out, err, 30000);
}

/* Passwords reach `hark ctl` on standard input, never on its command line (which every
 * local user can read): one there is refused before anything is sent. */
static void
test_ctl_tool_passwords(gconstpointer data)
{
  g_autoptr(Server) server = server_new(GPOINTER_TO_INT(data), LIFETIME_DAY);
  if (server == NULL)
    return; /* skipped, or failed */
  g_autoptr(Device) frank = device_for(server, "frank-1");
  HARK_REQUIRE(frank != NULL);
  g_autofree char *out1 = NULL, *err1 = NULL, *out2 = NULL, *err2 = NULL, *out3 = NULL,
                  *err3 = NULL, *out4 = NULL, *err4 = NULL;
  g_assert_cmpint(ctl_tool(frank, "frank-password-1\\n", "register frank", &out1, &err1), ==, 0);
  g_assert_cmpint(ctl_tool(frank, "", "login frank frank-password-1", &out2, &err2), ==, 1);
  assert_message_has(err2, "password is not taken from the command line");
  assert_message_has(err2, "bad-args");
  g_autofree char *who = call_fails(frank->ctl, "whoami", NULL);
  assert_message_has(who, "not logged in");
  g_assert_cmpint(ctl_tool(frank, "frank-password-1\\n", "login frank", &out3, &err3), ==, 0);
  assert_logged_in_as(frank, "frank");
  /* passwd: the old password, then the new one, a line each. */
  g_assert_cmpint(ctl_tool(frank, "frank-password-1\\nfrank-password-2\\n", "passwd", &out4, &err4),
                  ==, 0);
  g_autoptr(JsonObject) second = login_as(frank, "frank", "frank-password-2", "frank-1");
  g_assert_nonnull(second);
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The devices of the answer to `devices`, as "name:ok|revoked,..." sorted by name (devices
 * that logged in within the same second have no order of their own). */
static char *
devices_text(JsonObject *result)
{
  JsonArray *devices = result != NULL ? json_object_get_array_member(result, "devices") : NULL;
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; devices != NULL && i < json_array_get_length(devices); i++) {
    JsonObject *device = json_array_get_object_element(devices, i);
    g_ptr_array_add(
      entries,
      g_strdup_printf("%s:%s", json_object_get_string_member(device, "name"),
                      json_object_get_boolean_member(device, "revoked") ? "revoked" : "ok"));
  }
  g_ptr_array_sort(entries, compare_strings);
  g_ptr_array_add(entries, NULL);
  return g_strjoinv(",", (char **)entries->pdata);
}

/* devices, passwd (revoking the other devices by default) and device-remove: a revoked
 * device's certificate is refused, the device that acted goes on. */
static void
test_device_revocation(gconstpointer data)
{
  g_autoptr(Server) server = server_new(GPOINTER_TO_INT(data), LIFETIME_DAY);
  if (server == NULL)
    return; /* skipped, or failed */
  g_autoptr(Device) erin1 = device_for(server, "erin-1");
  g_autoptr(Device) erin2 = device_for(server, "erin-2");
  HARK_REQUIRE(erin1 != NULL && erin2 != NULL);
  HARK_REQUIRE(register_user(erin1, "erin", "erin-password-1"));
  g_autoptr(JsonObject) first = login_as(erin1, "erin", "erin-password-1", "erin-1");
  HARK_REQUIRE(first != NULL);
  g_autoptr(JsonObject) second = login_as(erin2, "erin", "erin-password-1", "erin-2");
  HARK_REQUIRE(second != NULL);
  g_autoptr(JsonObject) listed = lab_ctl_call(erin1->ctl, "devices", NULL, NULL);
  g_autofree char *both = devices_text(listed);
  g_assert_cmpstr(both, ==, "erin-1:ok,erin-2:ok");

  g_autoptr(JsonObject) changed = lab_ctl_call(
    erin1->ctl, "passwd", lab_args("old", "erin-password-1", "new", "erin-password-2", NULL), NULL);
  HARK_REQUIRE(changed != NULL);
  g_assert_cmpint(json_object_get_int_member(changed, "revoked"), ==, 1);
  g_autofree char *refused = call_fails(erin2->ctl, "buddies", NULL);
  assert_message_has(refused, "removed from the account");
  g_autoptr(JsonObject) still = lab_ctl_call(erin1->ctl, "buddies", NULL, NULL);
  g_assert_nonnull(still);
  g_autoptr(JsonObject) after = lab_ctl_call(erin1->ctl, "devices", NULL, NULL);
  g_autofree char *one_revoked = devices_text(after);
  g_assert_cmpstr(one_revoked, ==, "erin-1:ok,erin-2:revoked");

  /* Back with the new password, erin-2 removes erin-1 by name, then itself. */
  g_autoptr(JsonObject) again = login_as(erin2, "erin", "erin-password-2", "erin-2");
  HARK_REQUIRE(again != NULL);
  g_autoptr(JsonObject) removed =
    lab_ctl_call(erin2->ctl, "device-remove", lab_args("device", "erin-1", NULL), NULL);
  HARK_REQUIRE(removed != NULL);
  g_autofree char *gone = call_fails(erin1->ctl, "devices", NULL);
  assert_message_has(gone, "removed from the account");
  g_autofree char *unknown =
    call_fails(erin2->ctl, "device-remove", lab_args("device", "toaster", NULL));
  assert_message_has(unknown, "toaster");
  g_autoptr(JsonObject) self =
    lab_ctl_call(erin2->ctl, "device-remove", lab_args("device", "erin-2", NULL), NULL);
  HARK_REQUIRE(self != NULL);
  g_autofree char *logged_out = call_fails(erin2->ctl, "whoami", NULL);
  assert_message_has(logged_out, "not logged in");
}

/* A device pinning another CA refuses the server, and says login.ca is why. */
static void
test_untrusted_server(void)
{
  g_autoptr(Server) server = server_new(STORE_SQLITE, LIFETIME_DAY);
  HARK_REQUIRE(server != NULL);
  g_autoptr(Device) mallory = device_new("mallory", server->url, "foreign-ca.pem");
  g_autofree char *ca = g_build_filename(mallory->node->dir, "foreign-ca.pem", NULL);
  HARK_REQUIRE(make_foreign_ca(ca));
  HARK_REQUIRE(device_start(mallory));
  g_autofree char *message =
    call_fails(mallory->ctl, "login", lab_args("user", "alice", "password", ALICE_PASSWORD, NULL));
  assert_message_has(message, server->url);
  assert_message_has(message, "not issued by the CA in login.ca");
}

/* The server restarts on its state: the accounts and the list are still there, and the
 * certificates it issued before still check out (same CA). */
static void
test_server_restart(gconstpointer data)
{
  g_auto(Account) account = { 0 };
  if (!account_up(&account, GPOINTER_TO_INT(data), "alice", ALICE_PASSWORD, "alice-1", "alice-2",
                  NULL))
    return; /* skipped, or failed */
  Device *alice1 = account.devices[0], *alice2 = account.devices[1];
  HARK_REQUIRE(user_exists(account.server, "bob", BOB_PASSWORD));
  HARK_REQUIRE(befriend(account.server, alice1, "bob", BOB_PASSWORD));
  HARK_REQUIRE(lab_node_restart(account.server->node));
  g_autoptr(JsonObject) relogin = login_as(alice2, "alice", ALICE_PASSWORD, "alice-2");
  g_assert_true(has_buddy(relogin, "bob"));
  g_autoptr(JsonObject) signed_list = lab_ctl_call(alice1->ctl, "buddies", NULL, NULL);
  g_assert_true(has_buddy(signed_list, "bob"));
}

/* A restarted device is still logged in, from its saved certificate. */
static void
test_device_restart(gconstpointer data)
{
  g_auto(Account) account = { 0 };
  if (!account_up(&account, GPOINTER_TO_INT(data), "alice", ALICE_PASSWORD, "alice-1", NULL))
    return; /* skipped, or failed */
  Device *alice1 = account.devices[0];
  HARK_REQUIRE(user_exists(account.server, "bob", BOB_PASSWORD));
  HARK_REQUIRE(befriend(account.server, alice1, "bob", BOB_PASSWORD));
  HARK_REQUIRE(lab_restart_with_ctl(alice1->node, &alice1->ctl));
  assert_logged_in_as(alice1, "alice");
  g_autoptr(JsonObject) after_restart = lab_ctl_call(alice1->ctl, "buddies", NULL, NULL);
  g_assert_true(has_buddy(after_restart, "bob"));
}

/* logout forgets the certificate on this device only. */
static void
test_logout(void)
{
  g_auto(Account) account = { 0 };
  HARK_REQUIRE(
    account_up(&account, STORE_SQLITE, "alice", ALICE_PASSWORD, "alice-1", "alice-2", NULL));
  Device *alice1 = account.devices[0], *alice2 = account.devices[1];
  g_autoptr(JsonObject) out = lab_ctl_call(alice1->ctl, "logout", NULL, NULL);
  g_assert_cmpstr(result_string(out, "logged_out"), ==, "alice");
  g_autofree char *cert_path = state_file(alice1, "certificate.pem");
  g_assert_false(g_file_test(cert_path, G_FILE_TEST_EXISTS));
  g_autofree char *whoami = call_fails(alice1->ctl, "whoami", NULL);
  assert_message_has(whoami, "not logged in");
  assert_logged_in_as(alice2, "alice");
}

/* A device certificate for user and the key in <device state>/identity.pem, from the CA in
 * the server's state directory: what the server gives whoever registers that name. */
static char *
issue_for(Server *server, Device *device, const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ca_dir = g_build_filename(server->node->node->state_dir, "ca", NULL);
  g_autoptr(HarkCa) ca = hark_ca_load_or_create(ca_dir, "unused", &error);
  g_assert_no_error(error);
  g_autofree char *key_path = state_file(device, "identity.pem");
  g_autoptr(HarkIdentity) identity = hark_identity_load(key_path, &error);
  g_assert_no_error(error);
  if (ca == NULL || identity == NULL)
    return NULL;
  g_autofree char *public_pem = hark_identity_get_public_pem(identity);
  g_autofree char *account_id = hark_account_id_new(&error);
  g_assert_no_error(error);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *pem =
    hark_ca_issue_device(ca, user, account_id, public_pem, now - 60, 3600, &error);
  g_assert_no_error(error);
  g_autofree char *name = g_strdup_printf("device-%s.pem", user);
  char *path = state_file(device, name);
  g_assert_true(g_file_set_contents(path, pem, -1, NULL));
  return path;
}

/* mallory, on the path to the login server, presents her device certificate (made for a
 * user named like the server's host) at the server's address: the victim's node must
 * refuse the connection before it sends anything, its password above all. */
static gboolean
check_impersonation(Server *server, Device *victim, const char *cert_path, const char *key_path)
{
  g_autoptr(FakeServer) fake = fake_server_new(server->port, cert_path, key_path);
  if (fake == NULL)
    return FALSE;
  g_autofree char *login =
    call_fails(victim->ctl, "login", lab_args("user", "alice", "password", ALICE_PASSWORD, NULL));
  g_autofree char *registered = call_fails(
    victim->ctl, "register", lab_args("user", "alice2", "password", ALICE_PASSWORD, NULL));
  g_test_message("refused: %s", login);
  assert_message_has(login, "cannot reach the login server");
  assert_message_has(login, "TLS certificate");
  assert_message_has(registered, "TLS certificate");
  g_assert_cmpint(g_atomic_int_get(&fake->connections), >, 0);
  g_assert_cmpint(g_atomic_int_get(&fake->handshakes), ==, 0);
  g_assert_cmpint(g_atomic_int_get(&fake->request_bytes), ==, 0);
  g_assert_cmpint(g_atomic_int_get(&fake->saw_password), ==, 0);
  return TRUE;
}

/* Device certificates and the server's come from one CA. A user named like the host in
 * login.url (any case) must not be able to pass for the server. */
static void
test_impersonation(void)
{
  g_autoptr(Server) server = server_new_at(STORE_SQLITE, LIFETIME_DAY, "localhost");
  HARK_REQUIRE(server != NULL);
  g_autoptr(Device) mallory = device_for(server, "mallory");
  g_autoptr(Device) alice = device_for(server, "alice-1");
  HARK_REQUIRE(mallory != NULL && alice != NULL);
  /* The real server is accepted under its host name (its certificate's DNS name). */
  HARK_REQUIRE(register_user(mallory, "LocalHost", BOB_PASSWORD));
  g_autoptr(JsonObject) login = login_as(mallory, "LocalHost", BOB_PASSWORD, "mallory");
  HARK_REQUIRE(login != NULL);
  HARK_REQUIRE(register_user(alice, "alice", ALICE_PASSWORD));
  g_autofree char *issued = state_file(mallory, "certificate.pem");
  g_autofree char *key = state_file(mallory, "identity.pem");
  g_autofree char *lower = issue_for(server, mallory, "localhost");
  g_autofree char *upper = issue_for(server, mallory, "LOCALHOST");
  HARK_REQUIRE(lower != NULL && upper != NULL);

  /* The login server goes away; mallory takes its address. */
  g_autoptr(JsonObject) answer = lab_ctl_ask(server->node->ctl, "shutdown", NULL, NULL);
  g_clear_pointer(&server->node->ctl, hark_test_client_free);
  HARK_REQUIRE(answer != NULL && hark_test_node_wait_exit(server->node->node, EXIT_MS));
  HARK_REQUIRE(check_impersonation(server, alice, issued, key));
  HARK_REQUIRE(check_impersonation(server, alice, lower, key));
  HARK_REQUIRE(check_impersonation(server, alice, upper, key));
}

/* With a short certificate lifetime the device renews on its own, with no password,
 * half-way through the certificate's life: the device's clock is moved there rather than
 * waited for (docs/testing.md "Clocks"). */
static void
test_renewal(void)
{
  g_autoptr(Server) server = server_new_full(STORE_SQLITE, LIFETIME_SHORT, "127.0.0.1", TRUE);
  HARK_REQUIRE(server != NULL);
  g_autoptr(Device) alice = device_new_full("alice-1", server->url, server->ca_path, TRUE);
  HARK_REQUIRE(device_start(alice));
  /* A node whose time a test moves says so. */
  g_autoptr(JsonObject) state = lab_ctl_call(alice->ctl, "state", NULL, NULL);
  HARK_REQUIRE(state != NULL);
  g_assert_true(json_object_get_boolean_member_with_default(
    json_object_get_object_member(state, "node"), "test_clock", FALSE));
  HARK_REQUIRE(register_user(alice, "alice", ALICE_PASSWORD));
  g_autoptr(JsonObject) login = login_as(alice, "alice", ALICE_PASSWORD, "alice-1");
  HARK_REQUIRE(login != NULL);
  g_autofree char *cert_path = state_file(alice, "certificate.pem");
  g_autofree char *first = NULL;
  g_assert_true(g_file_get_contents(cert_path, &first, NULL, NULL));

  /* 60 s certificates renew after 30 s (the default margin, an hour, is longer than the
   * lifetime). Both clocks move, the server's first: the device's started a moment after
   * it, so its renewal is never dated ahead of the server. */
  gint64 started = g_get_monotonic_time();
  HARK_REQUIRE(lab_clock_advance(server->node->ctl, 31));
  HARK_REQUIRE(lab_clock_advance(alice->ctl, 31));
  g_autoptr(JsonObject) renewed =
    hark_test_client_wait_event(alice->ctl, "certificate-renewed", RENEWAL_MS);
  HARK_REQUIRE(renewed != NULL);
  g_autoptr(GDateTime) before = g_date_time_new_from_iso8601(result_string(login, "expires"), NULL);
  g_autoptr(GDateTime) after =
    g_date_time_new_from_iso8601(result_string(renewed, "expires"), NULL);
  HARK_REQUIRE(before != NULL && after != NULL);
  g_assert_cmpint(g_date_time_compare(after, before), >, 0);
  g_autofree char *second = NULL;
  g_assert_true(g_file_get_contents(cert_path, &second, NULL, NULL));
  g_assert_cmpstr(first, !=, second);
  HARK_REQUIRE(check_device_certificate(server, alice, "alice"));
  g_test_message("renewed %.1f s (real time) after the clock was moved",
                 (g_get_monotonic_time() - started) / 1e6);
}

/* No login section: the commands are there all the same, and say what is missing. */
static void
test_not_configured(void)
{
  g_autofree char *config = hark_test_config_with_ctl("plain", NULL);
  g_autoptr(HarkTestNode) node = hark_test_node_new(config);
  g_autoptr(HarkTestClient) ctl = NULL;
  HARK_REQUIRE(lab_start_with_ctl(node, &ctl));
  g_autofree char *message =
    call_fails(ctl, "login", lab_args("user", "alice", "password", ALICE_PASSWORD, NULL));
  g_assert_cmpstr(message, ==, "login is not configured: set login.url and login.ca");
  g_autofree char *buddies = call_fails(ctl, "buddies", NULL);
  g_assert_cmpstr(buddies, ==, "login is not configured: set login.url and login.ca");
  g_autoptr(JsonObject) state = lab_ctl_call(ctl, "state", NULL, NULL);
  g_assert_false(state == NULL || json_object_has_member(state, "login"));
}

/* Nobody listening at login.url: the error names the URL and the reason. */
static void
test_unreachable(void)
{
  guint16 port = 0;
  g_autoptr(GSocket) nobody = hark_test_closed_port(&port);
  HARK_REQUIRE(nobody != NULL);
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%u", port);
  g_autoptr(Device) device = device_new("alice-1", url, "ca.pem");
  g_autofree char *ca = g_build_filename(device->node->dir, "ca.pem", NULL);
  HARK_REQUIRE(make_foreign_ca(ca));
  HARK_REQUIRE(device_start(device));
  g_autofree char *message = call_fails(
    device->ctl, "register", lab_args("user", "alice", "password", ALICE_PASSWORD, NULL));
  g_autofree char *expected =
    g_strdup_printf("cannot reach the login server at %s: connection refused", url);
  assert_message_has(message, expected);
  g_autofree char *whoami = call_fails(device->ctl, "whoami", NULL);
  assert_message_has(whoami, "not logged in");
}

/* A login.ca that cannot be read stops the node at start, naming the setting. */
static void
test_missing_ca_file(void)
{
  g_autoptr(Device) device = device_new("alice-1", "https://127.0.0.1:1", "no-such-ca.pem");
  HARK_REQUIRE(hark_test_node_spawn(device->node));
  HARK_REQUIRE(hark_test_node_wait_exit(device->node, EXIT_MS));
  g_assert_cmpint(device->node->exit_status, !=, 0);
  g_autofree char *log = hark_test_node_read_stderr(device->node);
  g_assert_nonnull(strstr(log, "login.ca: cannot read the login server's CA certificate"));
}

/* ---- asking the login server about a user, in this process -------------------------------- */

/* The node's login client in this process, pinning server's CA (nobody logged in). */
typedef struct {
  char *dir;
  HarkIdentity *identity;
  HarkNode *node;
  HarkLoginClient *client;
  gboolean done;
  GAsyncResult *result;
  JsonObject *answer; /* of a HarkLoginDone operation */
} InProcess;

static void
in_process_free(InProcess *p)
{
  if (p == NULL)
    return;
  hark_login_client_free(p->client);
  hark_node_free(p->node);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  hark_identity_free(p->identity);
  g_clear_object(&p->result);
  g_clear_pointer(&p->answer, json_object_unref);
  hark_test_remove_tree(p->dir);
  g_free(p->dir);
  g_free(p);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(InProcess, in_process_free)

static InProcess *
in_process_new(Server *server)
{
  InProcess *p = g_new0(InProcess, 1);
  g_autoptr(GError) error = NULL;
  p->dir = g_dir_make_tmp("hark-login-lookup-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *key_path = g_build_filename(p->dir, "identity.pem", NULL);
  p->identity = hark_identity_load_or_create(key_path, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *text = g_strdup_printf("node = { name = \"lookup\"; state_dir = \"%s\"; };\n"
                                          "login = { url = \"%s\"; ca = \"%s\"; };\n",
                                          p->dir, server->url, server->ca_path);
  HarkConfig *config = hark_config_load_from_string(text, "lookup.conf", &error);
  g_assert_no_error(error);
  p->node = hark_node_new(config);
  p->client = hark_login_client_new(p->node->core_ctx, p->node->config, p->identity, &error);
  g_assert_no_error(error);
  return p;
}

static void
on_async(GObject *source, GAsyncResult *result, gpointer data)
{
  InProcess *p = data;
  g_set_object(&p->result, result);
  p->done = TRUE;
}

static void
on_login_done(JsonObject *result, GError *error, gpointer data)
{
  InProcess *p = data;
  g_assert_no_error(error);
  g_clear_error(&error);
  g_clear_pointer(&p->answer, json_object_unref);
  p->answer = result;
  p->done = TRUE;
}

static gboolean
is_done(gpointer data)
{
  return ((InProcess *)data)->done;
}

/* Runs the main loop until the operation started last has answered. */
static gboolean
wait_done(InProcess *p)
{
  gboolean done = hark_test_wait_for(is_done, p, LAB_ANSWER_MS);
  p->done = FALSE;
  return done;
}

static HarkLoginLookup
lookup(InProcess *p, const char *name, GCancellable *cancellable, char **user, GError **error)
{
  hark_login_client_lookup_async(p->client, name, cancellable, on_async, p);
  if (!wait_done(p))
    return HARK_LOGIN_LOOKUP_NO_SUCH_USER;
  return hark_login_client_lookup_finish(p->result, user, error);
}

static char *
search(InProcess *p, const char *prefix, guint limit)
{
  hark_login_client_search_async(p->client, prefix, limit, NULL, on_async, p);
  if (!wait_done(p))
    return NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) names = hark_login_client_search_finish(p->result, &error);
  g_assert_no_error(error);
  if (names == NULL)
    return NULL;
  g_ptr_array_add(names, NULL);
  return g_strjoinv(",", (char **)names->pdata);
}

/* A lookup always ends with one of three answers: no such user, known but no device seen
 * in 72 h (the server's clock moved 73 h), or seen recently; and prefix search honours
 * its limit. After the clock's move bob's certificate has expired at the server, so his
 * lookups go again unsigned (they still answer) and count against the address. */
static void
test_lookup(void)
{
  g_autoptr(Server) server = server_new_full(STORE_SQLITE, LIFETIME_DAY, "127.0.0.1", TRUE);
  HARK_REQUIRE(server != NULL);
  g_autoptr(InProcess) p = in_process_new(server);
  const char *names[] = { "Bob", "Bobby", "Carol" };
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    hark_login_client_register(p->client, names[i], BOB_PASSWORD, on_login_done, p);
    HARK_REQUIRE(wait_done(p));
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *user = NULL;
  g_assert_cmpint(lookup(p, "bob", NULL, &user, &error), ==, HARK_LOGIN_LOOKUP_NOT_RECENT);
  g_assert_no_error(error);
  g_assert_cmpstr(user, ==, "Bob");
  hark_login_client_login(p->client, "bob", BOB_PASSWORD, on_login_done, p);
  HARK_REQUIRE(wait_done(p));
  g_assert_cmpint(lookup(p, "BOB", NULL, NULL, &error), ==, HARK_LOGIN_LOOKUP_RECENT);
  g_assert_no_error(error);
  g_assert_cmpint(lookup(p, "bobby", NULL, NULL, &error), ==, HARK_LOGIN_LOOKUP_NOT_RECENT);
  g_assert_cmpint(lookup(p, "nobody", NULL, NULL, &error), ==, HARK_LOGIN_LOOKUP_NO_SUCH_USER);
  g_assert_no_error(error);
  /* Not a name: no such user, without asking (nothing of it reaches a path). */
  g_assert_cmpint(lookup(p, "../v1/version", NULL, NULL, &error), ==,
                  HARK_LOGIN_LOOKUP_NO_SUCH_USER);
  g_assert_no_error(error);
  HARK_REQUIRE(lab_clock_advance(server->node->ctl, 73 * 3600));
  g_assert_cmpint(lookup(p, "bob", NULL, NULL, &error), ==, HARK_LOGIN_LOOKUP_NOT_RECENT);
  g_assert_no_error(error);

  g_autofree char *two = search(p, "bo", 5);
  g_assert_cmpstr(two, ==, "Bob,Bobby");
  g_autofree char *one = search(p, "b", 1);
  g_assert_cmpstr(one, ==, "Bob");
  g_autofree char *none = search(p, "z", 5);
  g_assert_cmpstr(none, ==, "");

  /* A cancelled lookup says so, whatever the server answers. */
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_cancellable_cancel(cancellable);
  lookup(p, "bob", cancellable, NULL, &error);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&error);

  /* Over the server's look-ups a minute (60 from one address), a lookup and a search are
   * refused in the server's words with the wait: a user who searched too much is not
   * told about failed logins. */
  for (int i = 0; i < 80 && error == NULL; i++)
    lookup(p, "bob", NULL, NULL, &error);
  g_assert_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_LOCKED_OUT);
  const char *limited = "^too many user look-ups from this address: try again in [0-9]+ s$";
  g_assert_true(g_regex_match_simple(limited, error->message, 0, 0));
  g_clear_error(&error);
  hark_login_client_search_async(p->client, "bo", 5, NULL, on_async, p);
  HARK_REQUIRE(wait_done(p));
  g_autoptr(GPtrArray) refused = hark_login_client_search_finish(p->result, &error);
  g_assert_null(refused);
  g_assert_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_LOCKED_OUT);
  g_assert_true(g_regex_match_simple(limited, error->message, 0, 0));
}

/* ---- messages held for offline devices (login-messages.c) ---------------------------------- */

static void
log_in(InProcess *p, const char *user)
{
  hark_login_client_register(p->client, user, BOB_PASSWORD, on_login_done, p);
  g_assert_true(wait_done(p));
  hark_login_client_login(p->client, user, BOB_PASSWORD, on_login_done, p);
  g_assert_true(wait_done(p));
}

/* Logged in, a lookup and a search are signed and count against the account (120 a
 * minute), not the address: alice and bob on one address (a NAT) look up 100 times
 * and more, where the address alone gets 60; alice's 121st is refused in the server's
 * words, and bob still looks up. */
static void
test_lookup_signed(void)
{
  g_autoptr(Server) server = server_new_full(STORE_SQLITE, LIFETIME_DAY, "127.0.0.1", TRUE);
  HARK_REQUIRE(server != NULL);
  g_autoptr(InProcess) alice = in_process_new(server);
  g_autoptr(InProcess) bob = in_process_new(server);
  log_in(alice, "alice");
  log_in(bob, "bob");
  g_autoptr(GError) error = NULL;
  for (int i = 0; i < 100 && error == NULL; i++) {
    HarkLoginLookup found = lookup(bob, "alice", NULL, NULL, &error);
    if (error == NULL)
      g_assert_cmpint(found, ==, HARK_LOGIN_LOOKUP_RECENT);
  }
  g_assert_no_error(error);
  /* alice: 10 searches, then lookups until one is refused: the 121st. */
  for (int i = 0; i < 10; i++) {
    g_autofree char *names = search(alice, "bo", 5);
    g_assert_cmpstr(names, ==, "bob");
  }
  guint served = 10;
  while (served < 200 && lookup(alice, "bob", NULL, NULL, &error) == HARK_LOGIN_LOOKUP_RECENT)
    served++;
  g_assert_cmpuint(served, ==, 120);
  g_assert_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_LOCKED_OUT);
  const char *limited = "^too many user look-ups from this account: try again in [0-9]+ s$";
  g_assert_true(g_regex_match_simple(limited, error->message, 0, 0));
  g_clear_error(&error);
  g_assert_cmpint(lookup(bob, "alice", NULL, NULL, &error), ==, HARK_LOGIN_LOOKUP_RECENT);
  g_assert_no_error(error);
}

static char *
hold_message(InProcess *p, const char *device_id, GBytes *envelope, GError **error)
{
  hark_login_client_hold_message_async(p->client, device_id, envelope, NULL, on_async, p);
  if (!wait_done(p))
    return NULL;
  gint64 expires = 0;
  char *id = hark_login_client_hold_message_finish(p->result, &expires, error);
  if (id != NULL)
    g_assert_cmpint(expires, >, g_get_real_time() / G_USEC_PER_SEC + 29 * 86400);
  return id;
}

static GPtrArray *
fetch_messages(InProcess *p, gboolean *more)
{
  hark_login_client_fetch_messages_async(p->client, NULL, on_async, p);
  if (!wait_done(p))
    return NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *messages = hark_login_client_fetch_messages_finish(p->result, more, &error);
  g_assert_no_error(error);
  return messages;
}

/* The client's side of offline messages: Alice finds Bob's device and its certificate,
 * holds an envelope for it; Bob fetches it byte for byte and acknowledges it. The
 * server's refusals come back as errors a caller can tell apart. */
static void
test_held_messages(void)
{
  g_autoptr(Server) server = server_new(STORE_SQLITE, LIFETIME_DAY);
  HARK_REQUIRE(server != NULL);
  g_autoptr(InProcess) alice = in_process_new(server);
  g_autoptr(InProcess) bob = in_process_new(server);
  log_in(alice, "alice");
  log_in(bob, "bob");
  const char *bob_id = hark_identity_get_fingerprint(bob->identity);
  const char *alice_id = hark_identity_get_fingerprint(alice->identity);

  hark_login_client_device_certificates_async(alice->client, "Bob", NULL, on_async, alice);
  HARK_REQUIRE(wait_done(alice));
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) devices =
    hark_login_client_device_certificates_finish(alice->result, &error);
  g_assert_no_error(error);
  HARK_REQUIRE(devices != NULL && devices->len == 1);
  const HarkLoginDeviceCertificate *device = devices->pdata[0];
  g_assert_cmpstr(device->device_id, ==, bob_id);
  g_autoptr(HarkDeviceCertificate) checked =
    hark_certificate_verify(hark_login_client_ca_pem(alice->client), device->certificate,
                            g_get_real_time() / G_USEC_PER_SEC, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(checked->user, ==, "bob");
  hark_login_client_device_certificates_async(alice->client, "nobody", NULL, on_async, alice);
  HARK_REQUIRE(wait_done(alice));
  g_autoptr(GPtrArray) none = hark_login_client_device_certificates_finish(alice->result, &error);
  g_assert_null(none);
  g_assert_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNKNOWN_USER);
  g_assert_nonnull(error != NULL ? strstr(error->message, "'nobody'") : NULL);
  g_clear_error(&error);

  const char *const to_bob[] = { bob_id, NULL };
  g_autoptr(GBytes) envelope = hark_test_envelope_new(alice_id, to_bob, 100);
  g_autofree char *id = hold_message(alice, bob_id, envelope, &error);
  g_assert_no_error(error);
  HARK_REQUIRE(id != NULL);
  /* Sealed by Bob's device, sent by Alice's: refused in the server's words. */
  g_autoptr(GBytes) forged = hark_test_envelope_new(bob_id, to_bob, 100);
  g_autofree char *refused = hold_message(alice, bob_id, forged, &error);
  g_assert_null(refused);
  g_assert_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_SERVER);
  g_assert_nonnull(strstr(error->message, "sealed by another device"));
  g_clear_error(&error);
  g_autofree char *second = hold_message(alice, bob_id, envelope, &error);
  g_assert_no_error(error);
  g_autofree char *third = hold_message(alice, bob_id, envelope, &error);
  g_assert_null(third);
  g_assert_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_RECIPIENT_FULL);
  g_clear_error(&error);

  gboolean more = TRUE;
  g_autoptr(GPtrArray) held = fetch_messages(bob, &more);
  HARK_REQUIRE(held != NULL && held->len == 2);
  g_assert_false(more);
  const HarkLoginHeldMessage *first = held->pdata[0];
  g_assert_cmpstr(first->id, ==, id);
  g_assert_true(g_bytes_equal(first->envelope, envelope));
  const char *ids[] = { id, second, NULL };
  hark_login_client_ack_messages_async(bob->client, ids, NULL, on_async, bob);
  HARK_REQUIRE(wait_done(bob));
  g_assert_cmpint(hark_login_client_ack_messages_finish(bob->result, &error), ==, 2);
  g_assert_no_error(error);
  g_autoptr(GPtrArray) after = fetch_messages(bob, &more);
  HARK_REQUIRE(after != NULL);
  g_assert_cmpuint(after->len, ==, 0);
}

int
main(int argc, char **argv)
{
  /* A case in a process of its own: a crash or a hang costs that case (bound: the
   * longest case, renewal, takes some 35 s). */
  hark_test_init_isolated(&argc, &argv, 90000);
  g_test_set_nonfatal_assertions();
  /* The cases that touch the store, once per store. */
  static const struct {
    const char *name;
    GTestDataFunc func;
  } per_store[] = {
    { "buddy-sync", test_buddy_sync },
    { "contact-block", test_contact_block },
    { "device-certificate", test_device_certificate },
    { "refusals", test_refusals },
    { "lock-out", test_lock_out },
    { "password-and-delete", test_password_and_delete },
    { "ctl-tool-passwords", test_ctl_tool_passwords },
    { "device-revocation", test_device_revocation },
    { "server-restart", test_server_restart },
    { "device-restart", test_device_restart },
  };
  for (Store store = STORE_SQLITE; store <= STORE_POSTGRES; store++)
    for (guint i = 0; i < G_N_ELEMENTS(per_store); i++) {
      g_autofree char *path =
        g_strdup_printf("/login/%s/%s", store_names[store], per_store[i].name);
      hark_test_add_isolated_data_func(path, GINT_TO_POINTER(store), per_store[i].func);
    }
  hark_test_add_isolated_func("/login/untrusted-server", test_untrusted_server);
  hark_test_add_isolated_func("/login/logout", test_logout);
  hark_test_add_isolated_func("/login/lookup", test_lookup);
  hark_test_add_isolated_func("/login/lookup-signed", test_lookup_signed);
  hark_test_add_isolated_func("/login/held-messages", test_held_messages);
  hark_test_add_isolated_func("/login/renewal", test_renewal);
  hark_test_add_isolated_func("/login/impersonation", test_impersonation);
  hark_test_add_isolated_func("/login/not-configured", test_not_configured);
  hark_test_add_isolated_func("/login/unreachable", test_unreachable);
  hark_test_add_isolated_func("/login/missing-ca-file", test_missing_ca_file);
  return g_test_run();
}
