/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-loginsrv.c: the login server (plugins/loginsrv) at the HTTP level, as a client
 * sees it: a real `hark run` node loading a store, loginsrv and ctl, spoken to over
 * HTTPS by a SoupSession that trusts only the node's own CA (<state>/ca.pem).
 *
 * Every case starts its own node (lab_login_server_start), once with the sqlite store
 * and, when HARK_TEST_PG_CONNINFO is set (make check sets it), once with postgres, each
 * case in a database of its own (test-pg.h). Bad input is checked to change nothing by
 * looking the account up afterwards. */
#include "lab.h"
#include "test-pg.h"
#include "test-isolate.h"
#include "test-envelope.h"

#include <glib/gstdio.h>
#include <hark/hark.h>
#include <libsoup/soup.h>
#include <string.h>

#define HTTP_TIMEOUT_SECONDS 30
#define TOOL_MS 30000
/* A cheap hash, so the many logins of the test are quick (the server's default is argon2id
 * with 19 MiB and 2 passes); a 4 s first lock-out, so a loaded machine still sees it
 * before it ends. */
#define TEST_HASH "hash_memory_kib = 1024; hash_iterations = 1; first_lock = 4;"
#define PASSWORD "correct horse"

typedef struct {
  const char *store; /* "sqlite" or "postgres" */
  LabLoginServer *server;
  HarkTestNode *node; /* server's, NULL when it did not start */
  HarkTestPgDatabase *database; /* postgres: this case's own database */
  guint16 port; /* server's */
  char *ca_pem;
  SoupSession *session;
  SoupSession *other; /* from another source address (127.0.0.2): see swap_source() */
  const char *hash_settings; /* the server's hash cost; TEST_HASH unless a case sets it */
  gboolean test_clock; /* node.test_clock: the server's time moves only by advance_clock() */
  gint64 clock_offset; /* seconds advance_clock() moved it: signed requests are dated so */
  char *keys_dir; /* device keys */
  guint devices;
} Fixture;

typedef struct {
  guint status;
  JsonObject *json; /* NULL when the body is not a JSON object */
  char *retry_after_header;
} Answer;

typedef struct {
  HarkIdentity *identity;
  char *certificate; /* PEM, from the login */
} Device;

/* ---- answers ------------------------------------------------------------------------------ */

static void
answer_free(Answer *answer)
{
  if (answer == NULL)
    return;
  g_clear_pointer(&answer->json, json_object_unref);
  g_free(answer->retry_after_header);
  g_free(answer);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Answer, answer_free)

static const char *
error_code(Answer *answer)
{
  if (answer == NULL || answer->json == NULL || !json_object_has_member(answer->json, "error"))
    return NULL;
  JsonObject *error = json_object_get_object_member(answer->json, "error");
  return json_object_get_string_member_with_default(error, "code", NULL);
}

static const char *
error_message(Answer *answer)
{
  if (error_code(answer) == NULL)
    return "";
  JsonObject *error = json_object_get_object_member(answer->json, "error");
  return json_object_get_string_member_with_default(error, "message", "");
}

/* Status and error code together, so a failure shows both. */
static gboolean
check_error(Answer *answer, guint status, const char *code)
{
  if (answer != NULL && answer->status == status && g_strcmp0(error_code(answer), code) == 0)
    return TRUE;
  g_autofree char *shown = answer && answer->json ? hark_test_json(answer->json) : NULL;
  g_test_message("expected %u %s, got %u %s", status, code, answer ? answer->status : 0,
                 shown ? shown : "(no JSON)");
  g_test_fail();
  return FALSE;
}

static gboolean
check_ok(Answer *answer, guint status)
{
  if (answer != NULL && answer->status == status && answer->json != NULL &&
      error_code(answer) == NULL)
    return TRUE;
  g_autofree char *shown = answer && answer->json ? hark_test_json(answer->json) : NULL;
  g_test_message("expected %u, got %u %s", status, answer ? answer->status : 0,
                 shown ? shown : "(no JSON)");
  g_test_fail();
  return FALSE;
}

static const char *
member(Answer *answer, const char *name)
{
  return answer && answer->json
           ? json_object_get_string_member_with_default(answer->json, name, NULL)
           : NULL;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static Answer *
send_message(Fixture *f, SoupMessage *msg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read(f->session, msg, NULL, &error);
  if (body == NULL) {
    g_test_fail_printf("HTTPS request failed: %s", error->message);
    return NULL;
  }
  Answer *answer = g_new0(Answer, 1);
  answer->status = soup_message_get_status(msg);
  answer->retry_after_header =
    g_strdup(soup_message_headers_get_one(soup_message_get_response_headers(msg), "Retry-After"));
  g_autoptr(JsonParser) parser = json_parser_new();
  gsize length;
  const char *data = g_bytes_get_data(body, &length);
  if (length > 0 && json_parser_load_from_data(parser, data, (gssize)length, NULL) &&
      JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
    answer->json = json_node_dup_object(json_parser_get_root(parser));
  return answer;
}

static SoupMessage *
new_message(Fixture *f, const char *method, const char *path, GBytes *body)
{
  g_autofree char *url = g_strdup_printf("https://127.0.0.1:%u%s", f->port, path);
  SoupMessage *msg = soup_message_new(method, url);
  g_assert_nonnull(msg);
  if (body != NULL)
    soup_message_set_request_body_from_bytes(msg, "application/json", body);
  return msg;
}

static Answer *
request_bytes(Fixture *f, const char *method, const char *path, GBytes *body)
{
  g_autoptr(SoupMessage) msg = new_message(f, method, path, body);
  return send_message(f, msg);
}

static Answer *
request(Fixture *f, const char *method, const char *path, const char *body)
{
  g_autoptr(GBytes) bytes = body ? g_bytes_new(body, strlen(body)) : NULL;
  return request_bytes(f, method, path, bytes);
}

static Answer *
get(Fixture *f, const char *path)
{
  return request(f, "GET", path, NULL);
}

/* POST of a JSON object built from name/value string pairs (NULL-terminated). */
static Answer *
post_strings(Fixture *f, const char *path, ...)
{
  g_autoptr(JsonObject) object = json_object_new();
  va_list args;
  va_start(args, path);
  const char *name;
  while ((name = va_arg(args, const char *)) != NULL)
    json_object_set_string_member(object, name, va_arg(args, const char *));
  va_end(args);
  g_autofree char *text = hark_test_json(object);
  return request(f, "POST", path, text);
}

static Answer *
register_user(Fixture *f, const char *user, const char *password)
{
  return post_strings(f, "/v1/register", "user", user, "password", password, NULL);
}

/* alice, bob and carol registered with PASSWORD; FALSE (the case failed) otherwise. */
static gboolean
register_alice_bob_carol(Fixture *f)
{
  const char *names[] = { "alice", "bob", "carol" };
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autoptr(Answer) created = register_user(f, names[i], PASSWORD);
    if (!check_ok(created, 201))
      return FALSE;
  }
  return TRUE;
}

static Answer *
user_lookup(Fixture *f, const char *name)
{
  g_autofree char *escaped = g_uri_escape_string(name, NULL, FALSE);
  g_autofree char *path = g_strdup_printf("/v1/users/%s", escaped);
  return get(f, path);
}

/* ---- devices and signed requests ----------------------------------------------------------- */

static Device *
device_new(Fixture *f)
{
  g_autofree char *name = g_strdup_printf("device-%u.pem", f->devices++);
  g_autofree char *path = g_build_filename(f->keys_dir, name, NULL);
  g_autoptr(GError) error = NULL;
  Device *device = g_new0(Device, 1);
  device->identity = hark_identity_load_or_create(path, NULL, &error);
  g_assert_no_error(error);
  return device;
}

static void
device_free(Device *device)
{
  if (device == NULL)
    return;
  hark_identity_free(device->identity);
  g_free(device->certificate);
  g_free(device);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Device, device_free)

/* A fresh nonce from GET /v1/nonce, or NULL (test failed). */
static char *
fetch_nonce(Fixture *f)
{
  g_autoptr(Answer) answer = get(f, "/v1/nonce");
  if (!check_ok(answer, 200))
    return NULL;
  g_assert_cmpint(json_object_get_int_member_with_default(answer->json, "expires_in", 0), ==, 120);
  return g_strdup(member(answer, "nonce"));
}

/* POST /v1/login for the key public_key with this nonce and proof (NULL: left out). */
static Answer *
post_login(Fixture *f, const char *user, const char *password, const char *public_key,
           const char *nonce, const char *proof)
{
  g_autoptr(JsonObject) object = json_object_new();
  json_object_set_string_member(object, "user", user);
  json_object_set_string_member(object, "password", password);
  json_object_set_string_member(object, "device", "laptop");
  json_object_set_string_member(object, "public_key", public_key);
  if (nonce != NULL)
    json_object_set_string_member(object, "nonce", nonce);
  if (proof != NULL)
    json_object_set_string_member(object, "proof", proof);
  g_autofree char *text = hark_test_json(object);
  return request(f, "POST", "/v1/login", text);
}

/* The proof that signer holds its key, for nonce and user. */
static char *
proof_by(Device *signer, const char *nonce, const char *user)
{
  g_autoptr(GError) error = NULL;
  char *proof = hark_login_proof_sign(signer->identity, nonce, user, &error);
  g_assert_no_error(error);
  return proof;
}

/* A login as the node does it: a nonce, then the login with the device's proof. */
static Answer *
login_named(Fixture *f, Device *device, const char *user, const char *password,
            const char *device_name)
{
  g_autofree char *key = hark_identity_get_public_pem(device->identity);
  g_autofree char *nonce = fetch_nonce(f);
  if (nonce == NULL)
    return NULL;
  g_autofree char *proof = proof_by(device, nonce, user);
  Answer *answer =
    post_strings(f, "/v1/login", "user", user, "password", password, "device", device_name,
                 "public_key", key, "nonce", nonce, "proof", proof, NULL);
  const char *certificate = member(answer, "certificate");
  if (certificate != NULL) {
    g_free(device->certificate);
    device->certificate = g_strdup(certificate);
  }
  return answer;
}

static Answer *
login(Fixture *f, Device *device, const char *user, const char *password)
{
  return login_named(f, device, user, password, "laptop");
}

static char *
certificate_header(const char *pem)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_pem(pem, -1, &error);
  g_assert_no_error(error);
  g_autoptr(GByteArray) der = NULL;
  g_object_get(certificate, "certificate", &der, NULL);
  return g_base64_encode(der->data, der->len);
}

/* The signature headers of one request. */
typedef struct {
  char *certificate;
  char *date;
  char *nonce;
  char *signature;
} Signature;

static void
signature_free(Signature *signature)
{
  g_free(signature->certificate);
  g_free(signature->date);
  g_free(signature->nonce);
  g_free(signature->signature);
  g_free(signature);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Signature, signature_free)

/* The headers device (with certificate, by default its own) signs a request with, dated
 * now + skew. */
static Signature *
sign(Device *device, const char *certificate, const char *method, const char *path, GBytes *body,
     gint64 skew)
{
  gint64 date = g_get_real_time() / G_USEC_PER_SEC + skew;
  g_autoptr(GError) error = NULL;
  Signature *signature = g_new0(Signature, 1);
  signature->nonce = hark_request_new_nonce();
  signature->signature =
    hark_request_sign(device->identity, method, path, date, signature->nonce, body, &error);
  g_assert_no_error(error);
  signature->certificate = certificate_header(certificate ? certificate : device->certificate);
  signature->date = g_strdup_printf("%" G_GINT64_FORMAT, date);
  return signature;
}

static Answer *
send_signed(Fixture *f, const char *method, const char *path, GBytes *body,
            const Signature *signature)
{
  g_autoptr(SoupMessage) msg = new_message(f, method, path, body);
  SoupMessageHeaders *headers = soup_message_get_request_headers(msg);
  soup_message_headers_append(headers, "Hark-Certificate", signature->certificate);
  soup_message_headers_append(headers, "Hark-Date", signature->date);
  soup_message_headers_append(headers, "Hark-Nonce", signature->nonce);
  soup_message_headers_append(headers, "Hark-Signature", signature->signature);
  return send_message(f, msg);
}

/* A request signed by device (with certificate, by default its own) dated now + skew. */
static Answer *
signed_request(Fixture *f, Device *device, const char *certificate, const char *method,
               const char *path, const char *body, gint64 skew)
{
  g_autoptr(GBytes) bytes = body ? g_bytes_new(body, strlen(body)) : NULL;
  g_autoptr(Signature) signature =
    sign(device, certificate, method, path, bytes, skew + f->clock_offset);
  return send_signed(f, method, path, bytes, signature);
}

/* POST /v1/buddies {"op", "name", "alias"?, "revision"? (< 0: none)}. */
static Answer *
buddy_change(Fixture *f, Device *device, const char *op, const char *name, const char *alias,
             gint64 revision)
{
  g_autoptr(JsonObject) object = json_object_new();
  json_object_set_string_member(object, "op", op);
  json_object_set_string_member(object, "name", name);
  if (alias != NULL)
    json_object_set_string_member(object, "alias", alias);
  if (revision >= 0)
    json_object_set_int_member(object, "revision", revision);
  g_autofree char *text = hark_test_json(object);
  return signed_request(f, device, NULL, "POST", "/v1/buddies", text, 0);
}

/* The buddy list of an answer as "name=alias,..." and its revision. */
static char *
buddies_text(JsonObject *list, gint64 *revision)
{
  *revision = json_object_get_int_member_with_default(list, "revision", -1);
  g_autoptr(GString) text = g_string_new(NULL);
  JsonArray *array = json_object_get_array_member(list, "buddies");
  for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
    JsonObject *buddy = json_array_get_object_element(array, i);
    g_string_append_printf(text, "%s%s=%s", i ? "," : "",
                           json_object_get_string_member(buddy, "name"),
                           json_object_get_string_member(buddy, "alias"));
  }
  return g_string_free(g_steal_pointer(&text), FALSE);
}

static gboolean
check_buddies(Answer *answer, gint64 revision, const char *expected)
{
  if (!check_ok(answer, 200))
    return FALSE;
  gint64 got_revision;
  g_autofree char *got = buddies_text(answer->json, &got_revision);
  if (got_revision == revision && strcmp(got, expected) == 0)
    return TRUE;
  g_test_message("expected revision %" G_GINT64_FORMAT " [%s], got %" G_GINT64_FORMAT " [%s]",
                 revision, expected, got_revision, got);
  g_test_fail();
  return FALSE;
}

/* ---- the node ------------------------------------------------------------------------------- */

static char *
store_options(Fixture *f)
{
  if (f->database == NULL)
    return g_strdup("path = \"accounts.db\";");
  return g_strdup_printf("conninfo = \"%s\";", f->database->conninfo);
}

static gboolean
load_ca(Fixture *f)
{
  g_autofree char *path = g_build_filename(f->node->state_dir, "ca.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_clear_pointer(&f->ca_pem, g_free);
  if (!g_file_get_contents(path, &f->ca_pem, NULL, &error)) {
    g_test_fail_printf("no CA certificate to pin: %s", error->message);
    return FALSE;
  }
  g_autoptr(GTlsDatabase) database = g_tls_file_database_new(path, &error);
  g_assert_no_error(error);
  g_clear_object(&f->session);
  g_clear_object(&f->other);
  f->session =
    soup_session_new_with_options("tls-database", database, "timeout", HTTP_TIMEOUT_SECONDS, NULL);
  /* Linux answers on all of 127.0.0.0/8: a second source address on the same machine. */
  g_autoptr(GSocketAddress) other = g_inet_socket_address_new_from_string("127.0.0.2", 0);
  f->other = soup_session_new_with_options("tls-database", database, "timeout",
                                           HTTP_TIMEOUT_SECONDS, "local-address", other, NULL);
  return TRUE;
}

static gboolean
start_node(Fixture *f)
{
  g_autofree char *options = store_options(f);
  g_autofree char *settings =
    g_strdup_printf("latest_version = \"9.9.9\"; download_url = \"https://example.org/hark\"; %s",
                    f->hash_settings ? f->hash_settings : TEST_HASH);
  LabLoginOptions login = { .store = f->store,
                            .store_options = options,
                            .settings = settings,
                            .node_settings = f->test_clock ? "test_clock = true;" : NULL };
  f->server = lab_login_server_start(&login);
  if (f->server == NULL)
    return FALSE;
  f->node = f->server->node->node;
  f->port = f->server->port;
  return load_ca(f);
}

/* The orderly way, through ctl (the node must exit 0), and up again on its state. */
static gboolean
restart_node(Fixture *f)
{
  return lab_node_restart(f->server->node) && load_ca(f);
}

/* The requests that follow come from the other source address (and back again). */
static void
swap_source(Fixture *f)
{
  SoupSession *current = f->session;
  f->session = f->other;
  f->other = current;
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  f->store = data;
  g_autoptr(GError) error = NULL;
  f->keys_dir = g_dir_make_tmp("hark-loginsrv-keys-XXXXXX", &error);
  g_assert_no_error(error);
  if (strcmp(f->store, "postgres") == 0 &&
      (f->database = hark_test_pg_database_new("hark_loginsrv")) == NULL)
    return;
  if (!start_node(f))
    f->node = NULL;
}

/* The server's clock stands still until the case moves it (docs/testing.md "Clocks"). */
static void
fixture_set_up_test_clock(Fixture *f, gconstpointer data)
{
  f->test_clock = TRUE;
  fixture_set_up(f, data);
}

/* Moves the server's test clock: its lock-outs, rate windows and nonces see the time
 * pass at once. */
static gboolean
advance_clock(Fixture *f, gint64 seconds)
{
  g_autoptr(HarkTestClient) client = hark_test_client_connect_unix(f->node->socket_path);
  g_autoptr(JsonObject) hello = client ? hark_test_client_read(client, 5000) : NULL;
  if (hello == NULL || !lab_clock_advance(client, seconds))
    return FALSE;
  f->clock_offset += seconds;
  return TRUE;
}

/* argon2id at 64 MiB, 3 passes: the hash, not TLS, is most of a login's time. */
static void
fixture_set_up_slow_hash(Fixture *f, gconstpointer data)
{
  f->hash_settings = "hash_memory_kib = 65536; hash_iterations = 3;";
  fixture_set_up(f, data);
}

static void
remove_keys(const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open(dir, 0, NULL);
  const char *name;
  while (listing != NULL && (name = g_dir_read_name(listing)) != NULL) {
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_remove(path);
  }
  g_rmdir(dir);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_object(&f->session);
  g_clear_object(&f->other);
  f->node = NULL;
  g_clear_pointer(&f->server, lab_login_server_free);
  g_clear_pointer(&f->database, hark_test_pg_database_free);
  remove_keys(f->keys_dir);
  g_free(f->keys_dir);
  g_free(f->ca_pem);
}

/* ---- accounts ------------------------------------------------------------------------------- */

static void
test_register(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_assert_cmpstr(member(created, "user"), ==, "Alice");
  /* Names are unique regardless of case; the name keeps the case it was registered with. */
  g_autoptr(Answer) again = register_user(f, "aLICE", "another password");
  HARK_REQUIRE(check_error(again, 409, "user-exists"));
  g_autoptr(Answer) found = user_lookup(f, "ALICE");
  HARK_REQUIRE(check_ok(found, 200));
  g_assert_cmpstr(member(found, "user"), ==, "Alice");
}

static void
test_bad_names(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  const char *names[] = {
    "ab",
    "abcdefghijklmnopqrstuvwxyz0123456",
    "1alice",
    "al ice",
    "alice!",
    "",
    "\xd0\xb0lice", /* Cyrillic а, then "lice": looks like alice */
    "a'; DROP TABLE users;--",
    "bob\"",
    "x%00y",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autoptr(Answer) answer = register_user(f, names[i], PASSWORD);
    HARK_REQUIRE(check_error(answer, 400, "bad-name"));
  }
  /* Nothing was stored: no user starts with any of the letters used. */
  const char *prefixes[] = { "a", "b", "x" };
  for (gsize i = 0; i < G_N_ELEMENTS(prefixes); i++) {
    g_autofree char *path = g_strdup_printf("/v1/users?prefix=%s", prefixes[i]);
    g_autoptr(Answer) found = get(f, path);
    HARK_REQUIRE(check_ok(found, 200));
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(found->json, "users")), ==,
                     0);
  }
  g_autoptr(Answer) lookup = user_lookup(f, "\xd0\xb0lice");
  HARK_REQUIRE(check_error(lookup, 400, "bad-name"));
}

static void
test_weak_password(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) short_one = register_user(f, "walter", "1234567");
  HARK_REQUIRE(check_error(short_one, 400, "weak-password"));
  g_autofree char *long_password = g_strnfill(1025, 'x');
  g_autoptr(Answer) long_one = register_user(f, "walter", long_password);
  HARK_REQUIRE(check_error(long_one, 400, "weak-password"));
  g_autoptr(Answer) lookup = user_lookup(f, "walter");
  HARK_REQUIRE(check_error(lookup, 404, "unknown-user"));
}

static void
test_login(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) answer = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(answer, 200));
  g_assert_cmpstr(member(answer, "user"), ==, "Alice");
  g_assert_cmpstr(member(answer, "ca"), ==, f->ca_pem);

  /* The certificate binds the user and the key sent, under the CA returned. */
  g_autoptr(GBytes) cert = g_bytes_new(device->certificate, strlen(device->certificate));
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) verified =
    hark_certificate_verify(member(answer, "ca"), cert, now, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(verified->user, ==, "Alice");
  g_assert_cmpstr(verified->device_id, ==, hark_identity_get_fingerprint(device->identity));
  g_autoptr(GBytes) key = hark_identity_get_public_key(device->identity);
  g_assert_true(g_bytes_equal(verified->public_key, key));
  g_autoptr(GDateTime) expires = g_date_time_new_from_iso8601(member(answer, "expires"), NULL);
  HARK_REQUIRE(expires != NULL);
  g_assert_cmpint(g_date_time_to_unix(expires), ==, verified->not_after);
  /* One hour by default: it bounds how long a revoked device keeps its SN links. */
  g_assert_cmpint(verified->not_after - now, >=, 3600 - 60);
  g_assert_cmpint(verified->not_after - now, <=, 3600 + 60);
  g_assert_true(hark_account_id_is_valid(verified->account_id));
}

/* A login must prove that the device holds the key it asks a certificate for: with a
 * nonce of the server's, used once and recently. */
static void
test_login_proof(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "mallory", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) mallory = device_new(f);
  g_autoptr(Device) victim = device_new(f);
  g_autofree char *victim_key = hark_identity_get_public_pem(victim->identity);

  /* mallory asks for a certificate for the victim's key: without a proof, or with one by
   * her own key, or with the victim's proof for another user, it is refused. */
  g_autofree char *nonce = fetch_nonce(f);
  HARK_REQUIRE(nonce != NULL);
  g_autoptr(Answer) no_proof = post_login(f, "mallory", PASSWORD, victim_key, NULL, NULL);
  HARK_REQUIRE(check_error(no_proof, 400, "bad-proof"));
  g_autoptr(Answer) no_nonce = post_login(f, "mallory", PASSWORD, victim_key, NULL, "AAAA");
  HARK_REQUIRE(check_error(no_nonce, 400, "bad-proof"));
  g_autofree char *own = proof_by(mallory, nonce, "mallory");
  g_autoptr(Answer) wrong_key = post_login(f, "mallory", PASSWORD, victim_key, nonce, own);
  HARK_REQUIRE(check_error(wrong_key, 400, "bad-proof"));
  g_autofree char *for_alice = proof_by(victim, nonce, "alice");
  g_autoptr(Answer) wrong_user = post_login(f, "mallory", PASSWORD, victim_key, nonce, for_alice);
  HARK_REQUIRE(check_error(wrong_user, 400, "bad-proof"));
  g_autoptr(Answer) made_up = post_login(f, "mallory", PASSWORD, victim_key,
                                         "1700000000-00000000000000000000000000000000-"
                                         "00000000000000000000000000000000",
                                         own);
  HARK_REQUIRE(check_error(made_up, 400, "bad-proof"));
  g_assert_null(member(wrong_key, "certificate"));

  /* Her own key, proven: accepted once; the same login again is a replay. */
  g_autofree char *mallory_key = hark_identity_get_public_pem(mallory->identity);
  g_autoptr(Answer) good = post_login(f, "mallory", PASSWORD, mallory_key, nonce, own);
  HARK_REQUIRE(check_ok(good, 200));
  g_autoptr(Answer) replayed = post_login(f, "mallory", PASSWORD, mallory_key, nonce, own);
  HARK_REQUIRE(check_error(replayed, 400, "bad-proof"));
  g_assert_nonnull(strstr(error_message(replayed), "replay"));

  /* A nonce is good for 120 s of the server's clock, to the second, and not after. */
  g_autofree char *kept = fetch_nonce(f);
  g_autofree char *old = fetch_nonce(f);
  HARK_REQUIRE(kept != NULL && old != NULL);
  HARK_REQUIRE(advance_clock(f, 120));
  g_autofree char *kept_proof = proof_by(mallory, kept, "mallory");
  g_autoptr(Answer) in_time = post_login(f, "mallory", PASSWORD, mallory_key, kept, kept_proof);
  HARK_REQUIRE(check_ok(in_time, 200));
  HARK_REQUIRE(advance_clock(f, 1));
  g_autofree char *old_proof = proof_by(mallory, old, "mallory");
  g_autoptr(Answer) expired = post_login(f, "mallory", PASSWORD, mallory_key, old, old_proof);
  HARK_REQUIRE(check_error(expired, 400, "bad-proof"));
  g_assert_nonnull(strstr(error_message(expired), "expired"));

  /* Each refusal is in the server's log, counted. */
  g_autofree char *log = hark_test_node_read_stderr(f->node);
  g_assert_nonnull(strstr(log, "refused a login of 'mallory' from 127.0.0.1 (1 so far)"));
  g_assert_nonnull(strstr(log, "(7 so far): the nonce has expired"));
}

static void
test_login_buddies_in_answer(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) answer = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(answer, 200));
  JsonObject *buddies = json_object_get_object_member(answer->json, "buddies");
  HARK_REQUIRE(buddies != NULL);
  gint64 revision;
  g_autofree char *text = buddies_text(buddies, &revision);
  g_assert_cmpint(revision, ==, 0);
  g_assert_cmpstr(text, ==, "");
}

static void
test_login_failures(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  /* A wrong password and an unknown user get one answer: nobody learns who has an account. */
  g_autoptr(Answer) wrong = login(f, device, "alice", "wrong password");
  HARK_REQUIRE(check_error(wrong, 401, "wrong-credentials"));
  g_autoptr(Answer) unknown = login(f, device, "nobody", PASSWORD);
  HARK_REQUIRE(check_error(unknown, 401, "wrong-credentials"));
  g_assert_cmpstr(
    json_object_get_string_member(json_object_get_object_member(wrong->json, "error"), "message"),
    ==,
    json_object_get_string_member(json_object_get_object_member(unknown->json, "error"),
                                  "message"));
  g_autoptr(Answer) bad_key = post_strings(
    f, "/v1/login", "user", "alice", "password", PASSWORD, "device", "laptop", "public_key",
    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", NULL);
  HARK_REQUIRE(check_error(bad_key, 400, "bad-key"));
  g_autofree char *key = hark_identity_get_public_pem(device->identity);
  g_autoptr(Answer) no_device = post_strings(f, "/v1/login", "user", "alice", "password", PASSWORD,
                                             "device", "", "public_key", key, NULL);
  HARK_REQUIRE(check_error(no_device, 400, "bad-request"));
}

/* A request refused as locked-out; its retry_after (also in the header), or 0. */
static gint64
check_locked(Answer *answer)
{
  if (!check_error(answer, 429, "locked-out"))
    return 0;
  JsonObject *error = json_object_get_object_member(answer->json, "error");
  gint64 retry_after = json_object_get_int_member_with_default(error, "retry_after", 0);
  g_autofree char *header = g_strdup_printf("%" G_GINT64_FORMAT, retry_after);
  g_assert_cmpint(retry_after, >=, 1);
  g_assert_cmpstr(answer->retry_after_header, ==, header);
  return retry_after;
}

/* Five failures from one source lock that source out of the account, even with the right
 * password, and on the schedule (first_lock, doubling), to the second of the server's
 * test clock. */
static void
test_lockout(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  for (int i = 0; i < 5; i++) {
    g_autoptr(Answer) wrong = login(f, device, "alice", "wrong password");
    HARK_REQUIRE(check_error(wrong, 401, "wrong-credentials"));
  }
  /* Locked (first_lock, 4 s): even the right password is refused, with the time to wait. */
  g_autoptr(Answer) locked = login(f, device, "alice", PASSWORD);
  g_assert_cmpint(check_locked(locked), ==, 4);
  g_autoptr(Answer) deleted =
    post_strings(f, "/v1/delete", "user", "alice", "password", PASSWORD, NULL);
  g_assert_cmpint(check_locked(deleted), ==, 4);
  /* A second before its end it still holds. */
  HARK_REQUIRE(advance_clock(f, 3));
  g_autoptr(Answer) nearly = login(f, device, "alice", PASSWORD);
  g_assert_cmpint(check_locked(nearly), ==, 1);
  /* After it, one more failure locks for twice as long. */
  HARK_REQUIRE(advance_clock(f, 1));
  g_autoptr(Answer) sixth = login(f, device, "alice", "wrong password");
  HARK_REQUIRE(check_error(sixth, 401, "wrong-credentials"));
  g_autoptr(Answer) again = login(f, device, "alice", PASSWORD);
  g_assert_cmpint(check_locked(again), ==, 8);
  /* Once the lock has passed the right password works, and resets the count. */
  HARK_REQUIRE(advance_clock(f, 8));
  g_autoptr(Answer) good = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(good, 200));
  g_autoptr(Answer) wrong_again = login(f, device, "alice", "wrong password");
  HARK_REQUIRE(check_error(wrong_again, 401, "wrong-credentials"));
  g_autoptr(Answer) good_again = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(good_again, 200));
}

/* A stranger guessing alice's password from one source: after 50 guesses that source is
 * still refused, but alice logs in from another source at once, and her device (holding
 * a certificate) renews regardless. Also a third source that has not failed is admitted
 * while the account is slowed down, and after one failure it is refused. */
static void
test_lockout_per_source(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) laptop = device_new(f);
  g_autoptr(Answer) first = login(f, laptop, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(first, 200));
  g_autoptr(Device) stranger = device_new(f);
  guint refused = 0;
  for (int i = 0; i < 50; i++) {
    g_autoptr(Answer) guess = login(f, stranger, "alice", "a wrong guess");
    HARK_REQUIRE(guess != NULL);
    if (guess->status == 429 && check_locked(guess) > 0)
      refused++;
  }
  /* 5 failures, then refused: the server's clock stands still, so the lock cannot end
   * half-way however slow the machine. */
  g_assert_cmpuint(refused, ==, 45);
  /* The signed renewal is not a password check: the guesses do not touch it. */
  g_autoptr(Answer) renewed = signed_request(f, laptop, NULL, "POST", "/v1/renew", "{}", 0);
  HARK_REQUIRE(check_ok(renewed, 200));
  swap_source(f);
  g_autoptr(Device) phone = device_new(f);
  g_autoptr(Answer) owner = login(f, phone, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(owner, 200));
  swap_source(f);
  /* The guessing source is still locked, even for the right password. */
  g_autoptr(Answer) still = login(f, stranger, "alice", PASSWORD);
  HARK_REQUIRE(check_locked(still) > 0);
}

static void
test_address_limit(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  for (int i = 0; i < 20; i++) {
    g_autofree char *name = g_strdup_printf("nobody%d", i);
    g_autoptr(Answer) unknown = login(f, device, name, PASSWORD);
    HARK_REQUIRE(check_error(unknown, 401, "wrong-credentials"));
  }
  /* 20 failures a minute from one source: the 21st attempt waits for the minute's end,
   * whatever the account. */
  g_autoptr(Answer) limited = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_error(limited, 429, "locked-out"));
  g_assert_cmpstr(limited->retry_after_header, ==, "60");
  /* Lookups are not password checks: still answered. */
  g_autoptr(Answer) found = user_lookup(f, "alice");
  HARK_REQUIRE(check_ok(found, 200));
  /* A window, not a ban: a minute later the source is heard again. */
  HARK_REQUIRE(advance_clock(f, 59));
  g_autoptr(Answer) early = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_error(early, 429, "locked-out"));
  g_assert_cmpstr(early->retry_after_header, ==, "1");
  HARK_REQUIRE(advance_clock(f, 1));
  g_autoptr(Answer) later = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(later, 200));
}

static gint64
login_micros(Fixture *f, Device *device, const char *user)
{
  gint64 start = g_get_monotonic_time();
  g_autoptr(Answer) answer = login(f, device, user, "a wrong guess");
  gint64 took = g_get_monotonic_time() - start;
  check_error(answer, 401, "wrong-credentials");
  return took;
}

static int
compare_micros(gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

static gint64
median(gint64 *values, guint n)
{
  qsort(values, n, sizeof *values, compare_micros);
  return values[n / 2];
}

/* An unknown user costs the server the same hash as a wrong password: the medians of a
 * few tries are alike (a wide band: an unknown user at least half as slow). The server
 * hashes with a cost that dominates the rest of a request. */
static void
test_unknown_user_timing(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  enum {
    TRIES = 5
  }; /* alice's source is locked out after the 5th */
  gint64 wrong[TRIES], unknown[TRIES];
  for (int i = 0; i < TRIES; i++) {
    g_autofree char *name = g_strdup_printf("nobody%d", i);
    wrong[i] = login_micros(f, device, "alice");
    unknown[i] = login_micros(f, device, name);
  }
  gint64 wrong_median = median(wrong, TRIES), unknown_median = median(unknown, TRIES);
  g_test_message("medians: wrong password %.1f ms, unknown user %.1f ms", wrong_median / 1000.0,
                 unknown_median / 1000.0);
  g_assert_cmpint(unknown_median * 2, >=, wrong_median);
}

/* Names that would show as another one in a device list are refused: control characters,
 * bidirectional overrides and isolates, direction marks. */
static void
test_device_names(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  g_autofree char *key = hark_identity_get_public_pem(device->identity);
  static const char *const refused[] = {
    "laptop\n",
    "\xe2\x80\xaepot-pal", /* U+202E RIGHT-TO-LEFT OVERRIDE */
    "a\xe2\x80\xaa"
    "b",
    "a\xe2\x80\xac"
    "b", /* U+202A, U+202C */
    "a\xe2\x81\xa6"
    "b",
    "a\xe2\x81\xa9"
    "b", /* U+2066, U+2069 */
    "a\xe2\x80\x8e"
    "b",
    "a\xe2\x80\x8f"
    "b", /* U+200E, U+200F */
  };
  for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
    g_autoptr(Answer) answer = post_strings(f, "/v1/login", "user", "alice", "password", PASSWORD,
                                            "device", refused[i], "public_key", key, NULL);
    HARK_REQUIRE(check_error(answer, 400, "bad-request"));
  }
  g_autofree char *nonce = fetch_nonce(f);
  HARK_REQUIRE(nonce != NULL);
  g_autofree char *proof = proof_by(device, nonce, "alice");
  g_autoptr(Answer) accepted = post_strings(
    f, "/v1/login", "user", "alice", "password", PASSWORD, "device",
    "Jörg's Läptop \xf0\x9f\x92\xbb", "public_key", key, "nonce", nonce, "proof", proof, NULL);
  HARK_REQUIRE(check_ok(accepted, 200));
}

/* Look-ups answer anyone, but 60 a minute from one source (the default). */
static void
test_lookups_limited(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  for (int i = 0; i < 60; i++) {
    g_autoptr(Answer) found = i % 2 ? user_lookup(f, "alice") : get(f, "/v1/users?prefix=al");
    HARK_REQUIRE(check_ok(found, 200));
  }
  g_autoptr(Answer) refused = user_lookup(f, "alice");
  HARK_REQUIRE(check_locked(refused) > 0);
  g_autoptr(Answer) listed = get(f, "/v1/users?prefix=al");
  HARK_REQUIRE(check_locked(listed) > 0);
  swap_source(f);
  g_autoptr(Answer) elsewhere = user_lookup(f, "alice");
  HARK_REQUIRE(check_ok(elsewhere, 200));
}

/* n look-ups of carol signed by device (the user, the prefix search and her device list in
 * turn), each served; FALSE (the case failed) at the first that is not. */
static gboolean
signed_lookups_served(Fixture *f, Device *device, int n)
{
  const char *paths[] = { "/v1/users/carol", "/v1/users?prefix=ca", "/v1/users/carol/devices" };
  for (int i = 0; i < n; i++) {
    g_autoptr(Answer) found = signed_request(f, device, NULL, "GET", paths[i % 3], NULL, 0);
    if (!check_ok(found, 200))
      return FALSE;
  }
  return TRUE;
}

/* A look-up signed by a device counts against its account, not its address: users
 * behind one NAT do not share 60 look-ups a minute. alice and bob sign from the address
 * whose unsigned look-ups are spent: alice gets 120 a minute (the default), and the
 * address 150 signed ones of all accounts together (this fixture's
 * signed_lookups_per_minute), so bob gets the other 30. A look-up whose signature is not
 * the certificate's key, or a signed one replayed, is refused, not served as an
 * anonymous one. */
static void
test_lookups_per_account(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  HARK_REQUIRE(register_alice_bob_carol(f));
  g_autoptr(Device) laptop = device_new(f);
  g_autoptr(Device) desk = device_new(f);
  g_autoptr(Answer) alice_in = login(f, laptop, "alice", PASSWORD);
  g_autoptr(Answer) bob_in = login(f, desk, "bob", PASSWORD);
  HARK_REQUIRE(check_ok(alice_in, 200) && check_ok(bob_in, 200));
  for (int i = 0; i < 60; i++) {
    g_autoptr(Answer) found = user_lookup(f, "carol");
    HARK_REQUIRE(check_ok(found, 200));
  }
  g_autoptr(Answer) anonymous = user_lookup(f, "carol");
  HARK_REQUIRE(check_locked(anonymous) > 0);

  /* bob's key with alice's certificate: refused; bob's own, once and replayed. */
  g_autoptr(Answer) forged =
    signed_request(f, desk, laptop->certificate, "GET", "/v1/users/carol", NULL, 0);
  HARK_REQUIRE(check_error(forged, 401, "unauthenticated"));
  g_autoptr(Signature) once = sign(desk, NULL, "GET", "/v1/users/carol", NULL, 0);
  g_autoptr(Answer) first = send_signed(f, "GET", "/v1/users/carol", NULL, once);
  HARK_REQUIRE(check_ok(first, 200));
  g_autoptr(Answer) replayed = send_signed(f, "GET", "/v1/users/carol", NULL, once);
  HARK_REQUIRE(check_error(replayed, 401, "unauthenticated"));
  g_assert_nonnull(strstr(error_message(replayed), "replay"));

  HARK_REQUIRE(signed_lookups_served(f, laptop, 120));
  g_autoptr(Answer) spent = signed_request(f, laptop, NULL, "GET", "/v1/users/carol", NULL, 0);
  HARK_REQUIRE(check_locked(spent) > 0);
  g_assert_true(
    g_str_has_prefix(error_message(spent), "too many user look-ups from this account: "));
  HARK_REQUIRE(signed_lookups_served(f, desk, 29));
  g_autoptr(Answer) full = signed_request(f, desk, NULL, "GET", "/v1/users?prefix=ca", NULL, 0);
  HARK_REQUIRE(check_locked(full) > 0);
  g_assert_true(
    g_str_has_prefix(error_message(full), "too many signed user look-ups from this address: "));
}

static void
test_password_change(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Answer) wrong = post_strings(f, "/v1/password", "user", "alice", "password", "nope",
                                         "new_password", "a new password", NULL);
  HARK_REQUIRE(check_error(wrong, 401, "wrong-credentials"));
  g_autoptr(Answer) weak = post_strings(f, "/v1/password", "user", "alice", "password", PASSWORD,
                                        "new_password", "short", NULL);
  HARK_REQUIRE(check_error(weak, 400, "weak-password"));
  g_autoptr(Answer) changed = post_strings(f, "/v1/password", "user", "alice", "password", PASSWORD,
                                           "new_password", "a new password", NULL);
  HARK_REQUIRE(check_ok(changed, 200));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) old = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_error(old, 401, "wrong-credentials"));
  g_autoptr(Answer) new_one = login(f, device, "alice", "a new password");
  HARK_REQUIRE(check_ok(new_one, 200));
}

static void
test_delete(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) alice = register_user(f, "Alice", PASSWORD);
  g_autoptr(Answer) bob = register_user(f, "Bob", PASSWORD);
  HARK_REQUIRE(check_ok(alice, 201) && check_ok(bob, 201));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, device, "bob", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));
  g_autoptr(Answer) added = buddy_change(f, device, "add", "alice", NULL, -1);
  HARK_REQUIRE(check_buddies(added, 1, "alice=Alice"));

  g_autoptr(Answer) wrong =
    post_strings(f, "/v1/delete", "user", "alice", "password", "nope", NULL);
  HARK_REQUIRE(check_error(wrong, 401, "wrong-credentials"));
  g_autoptr(Answer) deleted =
    post_strings(f, "/v1/delete", "user", "alice", "password", PASSWORD, NULL);
  HARK_REQUIRE(check_ok(deleted, 200));
  g_autoptr(Answer) lookup = user_lookup(f, "alice");
  HARK_REQUIRE(check_error(lookup, 404, "unknown-user"));
  g_autoptr(Answer) login_again = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_error(login_again, 401, "wrong-credentials"));
  g_autoptr(Answer) delete_again =
    post_strings(f, "/v1/delete", "user", "alice", "password", PASSWORD, NULL);
  HARK_REQUIRE(check_error(delete_again, 401, "wrong-credentials"));
  /* Gone from bob's list too; and the name is free again. */
  g_autoptr(Answer) list = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_ok(list, 200));
  gint64 revision;
  g_autofree char *text = buddies_text(list->json, &revision);
  g_assert_cmpstr(text, ==, "");
  g_autoptr(Answer) again = register_user(f, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(again, 201));
}

/* ---- buddies ------------------------------------------------------------------------------- */

/* alice logged in on two devices: a change on one is seen on the other, at one revision. */
static void
test_buddies(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  const char *users[] = { "Alice", "Bob", "Carol" };
  for (gsize i = 0; i < G_N_ELEMENTS(users); i++) {
    g_autoptr(Answer) created = register_user(f, users[i], PASSWORD);
    HARK_REQUIRE(check_ok(created, 201));
  }
  g_autoptr(Device) one = device_new(f);
  g_autoptr(Device) two = device_new(f);
  g_autoptr(Answer) login_one = login(f, one, "alice", PASSWORD);
  g_autoptr(Answer) login_two = login(f, two, "ALICE", PASSWORD);
  HARK_REQUIRE(check_ok(login_one, 200) && check_ok(login_two, 200));

  g_autoptr(Answer) empty = signed_request(f, one, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_buddies(empty, 0, ""));
  g_autoptr(Answer) added = buddy_change(f, one, "add", "bob", NULL, 0);
  HARK_REQUIRE(check_buddies(added, 1, "bob=Bob"));
  g_autoptr(Answer) seen = signed_request(f, two, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_buddies(seen, 1, "bob=Bob"));
  g_autoptr(Answer) renamed = buddy_change(f, two, "rename", "bob", "Bobby", 1);
  HARK_REQUIRE(check_buddies(renamed, 2, "bob=Bobby"));
  /* Device one still thinks the list is at revision 1. */
  g_autoptr(Answer) stale = buddy_change(f, one, "add", "carol", NULL, 1);
  HARK_REQUIRE(check_error(stale, 409, "conflict"));
  g_autoptr(Answer) carol = buddy_change(f, one, "add", "Carol", "C.", 2);
  HARK_REQUIRE(check_buddies(carol, 3, "bob=Bobby,carol=C."));
  g_autoptr(Answer) twice = buddy_change(f, one, "add", "bob", NULL, -1);
  HARK_REQUIRE(check_error(twice, 409, "buddy-exists"));
  g_autoptr(Answer) nobody = buddy_change(f, one, "add", "nobody", NULL, -1);
  HARK_REQUIRE(check_error(nobody, 404, "unknown-user"));
  g_autoptr(Answer) removed = buddy_change(f, two, "remove", "bob", NULL, 3);
  HARK_REQUIRE(check_buddies(removed, 4, "carol=C."));
  g_autoptr(Answer) removed_again = buddy_change(f, two, "remove", "bob", NULL, -1);
  HARK_REQUIRE(check_error(removed_again, 404, "not-found"));

  /* A device logging in later gets the newest list with its certificate. */
  g_autoptr(Device) three = device_new(f);
  g_autoptr(Answer) login_three = login(f, three, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(login_three, 200));
  gint64 revision;
  g_autofree char *text =
    buddies_text(json_object_get_object_member(login_three->json, "buddies"), &revision);
  g_assert_cmpint(revision, ==, 4);
  g_assert_cmpstr(text, ==, "carol=C.");
}

static void
test_buddies_bad_changes(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  g_autoptr(Answer) bob = register_user(f, "Bob", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201) && check_ok(bob, 201));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));
  struct {
    const char *body;
    const char *code;
  } cases[] = {
    { "{\"op\": \"steal\", \"name\": \"bob\"}", "bad-request" },
    { "{\"op\": \"rename\", \"name\": \"bob\"}", "bad-request" },
    { "{\"op\": \"remove\", \"name\": \"bob\", \"alias\": \"x\"}", "bad-request" },
    { "{\"op\": \"add\", \"name\": \"bob\", \"revision\": -1}", "bad-request" },
    { "{\"op\": \"add\", \"name\": \"bob\", \"revision\": \"0\"}", "bad-request" },
    { "{\"op\": \"add\", \"name\": \"bob\", \"revision\": 0.5}", "bad-request" },
    { "{\"op\": \"add\", \"name\": \"b'; --\"}", "bad-name" },
    { "{\"op\": \"add\", \"name\": \"bob\", \"alias\": \"\"}", "bad-request" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(Answer) answer =
      signed_request(f, device, NULL, "POST", "/v1/buddies", cases[i].body, 0);
    HARK_REQUIRE(check_error(answer, 400, cases[i].code));
  }
  g_autoptr(Answer) list = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_buddies(list, 0, ""));
}

/* ---- signed requests ----------------------------------------------------------------------- */

/* A certificate for device's key from a CA that is not the server's. */
static char *
foreign_certificate(Fixture *f, Device *device)
{
  g_autofree char *dir = g_build_filename(f->keys_dir, "foreign-ca", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCa) ca = hark_ca_load_or_create(dir, "not the login server", &error);
  g_assert_no_error(error);
  g_autofree char *key = hark_identity_get_public_pem(device->identity);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  char *pem = hark_ca_issue_device(ca, "Alice", "00112233445566778899aabbccddeeff", key, now - 60,
                                   3600, &error);
  g_assert_no_error(error);
  g_autofree char *ca_key = g_build_filename(dir, "ca-key.pem", NULL);
  g_autofree char *ca_cert = g_build_filename(dir, "ca.pem", NULL);
  g_remove(ca_key);
  g_remove(ca_cert);
  g_rmdir(dir);
  return pem;
}

static void
test_signed_refused(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));
  g_autoptr(Answer) good = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_ok(good, 200));

  /* Another device's key with alice's certificate: the signature does not match. */
  g_autoptr(Device) thief = device_new(f);
  g_autoptr(Answer) stolen =
    signed_request(f, thief, device->certificate, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_error(stolen, 401, "unauthenticated"));
  g_autofree char *foreign = foreign_certificate(f, device);
  g_autoptr(Answer) other_ca = signed_request(f, device, foreign, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_error(other_ca, 401, "unauthenticated"));
  g_autoptr(Answer) stale = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, -1000);
  HARK_REQUIRE(check_error(stale, 401, "unauthenticated"));
  g_autoptr(Answer) unsigned_one = get(f, "/v1/buddies");
  HARK_REQUIRE(check_error(unsigned_one, 401, "unauthenticated"));

  /* A signature for one request does not carry over to another body. */
  g_autoptr(SoupMessage) msg = new_message(f, "POST", "/v1/renew", NULL);
  g_autoptr(GBytes) empty = g_bytes_new_static("{}", 2);
  g_autoptr(GBytes) other = g_bytes_new_static("{ }", 3);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *nonce = hark_request_new_nonce();
  g_autofree char *signature =
    hark_request_sign(device->identity, "POST", "/v1/renew", now, nonce, empty, NULL);
  g_autofree char *cert = certificate_header(device->certificate);
  g_autofree char *date = g_strdup_printf("%" G_GINT64_FORMAT, now);
  soup_message_set_request_body_from_bytes(msg, "application/json", other);
  SoupMessageHeaders *headers = soup_message_get_request_headers(msg);
  soup_message_headers_append(headers, "Hark-Certificate", cert);
  soup_message_headers_append(headers, "Hark-Date", date);
  soup_message_headers_append(headers, "Hark-Nonce", nonce);
  soup_message_headers_append(headers, "Hark-Signature", signature);
  g_autoptr(Answer) tampered = send_message(f, msg);
  HARK_REQUIRE(check_error(tampered, 401, "unauthenticated"));
}

/* A signed request sent again as it was (captured on the way) is refused and changes
 * nothing; the same change signed anew goes through. */
static void
test_signed_replay(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  HARK_REQUIRE(register_alice_bob_carol(f));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));

  static const char add_bob[] = "{\"op\":\"add\",\"name\":\"bob\"}";
  g_autoptr(GBytes) body = g_bytes_new_static(add_bob, strlen(add_bob));
  g_autoptr(Signature) signature = sign(device, NULL, "POST", "/v1/buddies", body, 0);
  g_autoptr(Answer) first = send_signed(f, "POST", "/v1/buddies", body, signature);
  HARK_REQUIRE(check_buddies(first, 1, "bob=bob"));
  g_autoptr(Answer) removed = buddy_change(f, device, "remove", "bob", NULL, -1);
  HARK_REQUIRE(check_buddies(removed, 2, ""));
  g_autoptr(Answer) again = send_signed(f, "POST", "/v1/buddies", body, signature);
  HARK_REQUIRE(check_error(again, 401, "unauthenticated"));
  g_assert_nonnull(strstr(error_message(again), "replay"));
  g_autoptr(Answer) list = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_buddies(list, 2, ""));

  /* A renewal replayed: refused too. */
  g_autoptr(GBytes) empty = g_bytes_new_static("{}", 2);
  g_autoptr(Signature) renewal = sign(device, NULL, "POST", "/v1/renew", empty, 0);
  g_autoptr(Answer) renewed = send_signed(f, "POST", "/v1/renew", empty, renewal);
  HARK_REQUIRE(check_ok(renewed, 200));
  g_autoptr(Answer) renewed_again = send_signed(f, "POST", "/v1/renew", empty, renewal);
  HARK_REQUIRE(check_error(renewed_again, 401, "unauthenticated"));
  g_autofree char *log = hark_test_node_read_stderr(f->node);
  g_assert_nonnull(strstr(log, "refused a replayed signed request from 127.0.0.1 for 'alice' "
                               "(2 replays so far)"));

  /* The same request signed anew (another nonce) is no replay. */
  g_autoptr(Answer) fresh = buddy_change(f, device, "add", "carol", NULL, -1);
  HARK_REQUIRE(check_buddies(fresh, 3, "carol=carol"));
  g_autoptr(Answer) list1 = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  g_autoptr(Answer) list2 = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_buddies(list1, 3, "carol=carol") && check_buddies(list2, 3, "carol=carol"));
}

static void
test_renew(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));
  g_autoptr(Answer) renewed = signed_request(f, device, NULL, "POST", "/v1/renew", "{}", 0);
  HARK_REQUIRE(check_ok(renewed, 200));
  g_assert_nonnull(member(renewed, "expires"));
  const char *pem = member(renewed, "certificate");
  HARK_REQUIRE(pem != NULL);
  g_assert_cmpstr(pem, !=, device->certificate);
  g_autoptr(GBytes) cert = g_bytes_new(pem, strlen(pem));
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) verified =
    hark_certificate_verify(f->ca_pem, cert, g_get_real_time() / G_USEC_PER_SEC, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(verified->user, ==, "Alice");
  g_assert_cmpstr(verified->device_id, ==, hark_identity_get_fingerprint(device->identity));
  g_autoptr(Answer) with_field =
    signed_request(f, device, NULL, "POST", "/v1/renew", "{\"x\": 1}", 0);
  HARK_REQUIRE(check_error(with_field, 400, "bad-request"));
}

/* ---- accounts and devices: what a certificate still speaks for ------------------------------- */

static Answer *
renew(Fixture *f, Device *device)
{
  return signed_request(f, device, NULL, "POST", "/v1/renew", "{}", 0);
}

/* Every signed endpoint refuses device's certificate. */
static gboolean
check_signed_refused(Fixture *f, Device *device)
{
  g_autoptr(Answer) list = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  g_autoptr(Answer) change = buddy_change(f, device, "add", "carol", NULL, -1);
  g_autoptr(Answer) devices = signed_request(f, device, NULL, "GET", "/v1/devices", NULL, 0);
  g_autoptr(Answer) renewed = renew(f, device);
  return check_error(list, 401, "unauthenticated") && check_error(change, 401, "unauthenticated") &&
         check_error(devices, 401, "unauthenticated") &&
         check_error(renewed, 401, "unauthenticated");
}

/* alice deletes her account and someone registers "Alice": alice's old device certificate
 * (still within its validity) reads and changes nothing of the new account, and does not
 * renew into a certificate for it. */
static void
test_reregistered_name(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) alice = register_user(f, "alice", PASSWORD);
  g_autoptr(Answer) carol = register_user(f, "carol", PASSWORD);
  HARK_REQUIRE(check_ok(alice, 201) && check_ok(carol, 201));
  g_autoptr(Device) old_device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, old_device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));
  g_autoptr(Answer) deleted =
    post_strings(f, "/v1/delete", "user", "alice", "password", PASSWORD, NULL);
  HARK_REQUIRE(check_ok(deleted, 200));
  /* Deleted: the certificate is for nobody now. */
  g_autoptr(Answer) after_delete = renew(f, old_device);
  HARK_REQUIRE(check_error(after_delete, 401, "unauthenticated"));

  g_autoptr(Answer) new_owner = register_user(f, "Alice", "another password");
  HARK_REQUIRE(check_ok(new_owner, 201));
  g_autoptr(Device) new_device = device_new(f);
  g_autoptr(Answer) new_login = login(f, new_device, "Alice", "another password");
  HARK_REQUIRE(check_ok(new_login, 200));
  g_autoptr(Answer) added = buddy_change(f, new_device, "add", "carol", "C", -1);
  HARK_REQUIRE(check_buddies(added, 1, "carol=C"));

  HARK_REQUIRE(check_signed_refused(f, old_device));
  /* The new owner's list is as they left it. */
  g_autoptr(Answer) list = signed_request(f, new_device, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_buddies(list, 1, "carol=C"));
  /* The two certificates name different accounts. */
  g_autoptr(GBytes) old_pem = g_bytes_new(old_device->certificate, strlen(old_device->certificate));
  g_autoptr(GBytes) new_pem = g_bytes_new(new_device->certificate, strlen(new_device->certificate));
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(HarkDeviceCertificate) old_cert =
    hark_certificate_verify(f->ca_pem, old_pem, now, NULL);
  g_autoptr(HarkDeviceCertificate) new_cert =
    hark_certificate_verify(f->ca_pem, new_pem, now, NULL);
  HARK_REQUIRE(old_cert != NULL && new_cert != NULL);
  g_assert_cmpstr(old_cert->account_id, !=, new_cert->account_id);
}

/* The entry of a device list answer for device (NULL when absent). */
static JsonObject *
find_device(Answer *list, Device *device)
{
  JsonArray *devices =
    list && list->json ? json_object_get_array_member(list->json, "devices") : NULL;
  const char *id = hark_identity_get_fingerprint(device->identity);
  for (guint i = 0; devices != NULL && i < json_array_get_length(devices); i++) {
    JsonObject *entry = json_array_get_object_element(devices, i);
    if (g_strcmp0(json_object_get_string_member_with_default(entry, "id", NULL), id) == 0)
      return entry;
  }
  g_test_fail_printf("device %s is not in the list", id);
  return NULL;
}

/* The device list, and a device removed from it: it can neither renew nor sign. */
static void
test_devices(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  g_autoptr(Answer) carol = register_user(f, "carol", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201) && check_ok(carol, 201));
  g_autoptr(Device) laptop = device_new(f);
  g_autoptr(Device) phone = device_new(f);
  g_autoptr(Answer) on_laptop = login_named(f, laptop, "alice", PASSWORD, "laptop");
  g_autoptr(Answer) on_phone = login_named(f, phone, "alice", PASSWORD, "phone");
  HARK_REQUIRE(check_ok(on_laptop, 200) && check_ok(on_phone, 200));

  g_autoptr(Answer) list = signed_request(f, laptop, NULL, "GET", "/v1/devices", NULL, 0);
  HARK_REQUIRE(check_ok(list, 200));
  JsonArray *devices = json_object_get_array_member(list->json, "devices");
  HARK_REQUIRE(devices != NULL && json_array_get_length(devices) == 2);
  JsonObject *first = find_device(list, laptop);
  HARK_REQUIRE(first != NULL);
  g_assert_cmpstr(json_object_get_string_member(first, "name"), ==, "laptop");
  g_assert_true(json_object_get_boolean_member(first, "this"));
  g_assert_false(json_object_get_boolean_member(first, "revoked"));
  g_assert_nonnull(json_object_get_string_member(first, "first_seen"));
  g_assert_nonnull(json_object_get_string_member(first, "last_seen"));

  /* Bad names and unknown devices change nothing. */
  g_autoptr(Answer) unknown =
    signed_request(f, laptop, NULL, "POST", "/v1/devices/remove", "{\"device\": \"fridge\"}", 0);
  HARK_REQUIRE(check_error(unknown, 404, "not-found"));
  g_autoptr(Answer) bad =
    signed_request(f, laptop, NULL, "POST", "/v1/devices/remove", "{\"device\": \"\"}", 0);
  HARK_REQUIRE(check_error(bad, 400, "bad-request"));
  g_autoptr(Answer) unsigned_one = post_strings(f, "/v1/devices/remove", "device", "phone", NULL);
  HARK_REQUIRE(check_error(unsigned_one, 401, "unauthenticated"));
  g_autoptr(Answer) phone_works = renew(f, phone);
  HARK_REQUIRE(check_ok(phone_works, 200));

  /* Removed by name from the laptop: the phone's certificate is worth nothing now. */
  g_autoptr(Answer) removed =
    signed_request(f, laptop, NULL, "POST", "/v1/devices/remove", "{\"device\": \"phone\"}", 0);
  HARK_REQUIRE(check_ok(removed, 200));
  JsonObject *gone = json_object_get_object_member(removed->json, "removed");
  g_assert_cmpstr(json_object_get_string_member(gone, "id"), ==,
                  hark_identity_get_fingerprint(phone->identity));
  g_assert_true(json_object_get_boolean_member(gone, "revoked"));
  HARK_REQUIRE(check_signed_refused(f, phone));
  g_autoptr(Answer) laptop_works = renew(f, laptop);
  HARK_REQUIRE(check_ok(laptop_works, 200));
  g_autoptr(Answer) listed = signed_request(f, laptop, NULL, "GET", "/v1/devices", NULL, 0);
  HARK_REQUIRE(check_ok(listed, 200));
  JsonObject *second = find_device(listed, phone);
  HARK_REQUIRE(second != NULL);
  g_assert_false(json_object_get_boolean_member(find_device(listed, laptop), "revoked"));
  g_assert_true(json_object_get_boolean_member(second, "revoked"));
  g_assert_nonnull(json_object_get_string_member(second, "revoked_at"));

  /* The password makes it a device of the account again. */
  g_autoptr(Answer) back = login_named(f, phone, "alice", PASSWORD, "phone");
  HARK_REQUIRE(check_ok(back, 200));
  g_autoptr(Answer) renewed = renew(f, phone);
  HARK_REQUIRE(check_ok(renewed, 200));

  /* By fingerprint, and a device may remove itself. */
  g_autofree char *body =
    g_strdup_printf("{\"device\": \"%s\"}", hark_identity_get_fingerprint(laptop->identity));
  g_autoptr(Answer) self = signed_request(f, laptop, NULL, "POST", "/v1/devices/remove", body, 0);
  HARK_REQUIRE(check_ok(self, 200));
  HARK_REQUIRE(check_signed_refused(f, laptop));
}

/* A password change with revoke_others: only the device that asked (keep_device) renews. */
static void
test_password_revokes_others(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Device) mine = device_new(f);
  g_autoptr(Device) stolen = device_new(f);
  g_autoptr(Device) spare = device_new(f);
  g_autoptr(Answer) a = login_named(f, mine, "alice", PASSWORD, "mine");
  g_autoptr(Answer) b = login_named(f, stolen, "alice", PASSWORD, "stolen");
  g_autoptr(Answer) c = login_named(f, spare, "alice", PASSWORD, "spare");
  HARK_REQUIRE(check_ok(a, 200) && check_ok(b, 200) && check_ok(c, 200));

  /* Without revoke_others (the API's default) every device goes on. */
  g_autoptr(Answer) kept = post_strings(f, "/v1/password", "user", "alice", "password", PASSWORD,
                                        "new_password", "second password", NULL);
  HARK_REQUIRE(check_ok(kept, 200));
  g_assert_cmpint(json_object_get_int_member(kept->json, "revoked"), ==, 0);
  g_autoptr(Answer) still = renew(f, stolen);
  HARK_REQUIRE(check_ok(still, 200));

  g_autoptr(Answer) bad_keep = request(f, "POST", "/v1/password",
                                       "{\"user\": \"alice\", \"password\": \"second password\", "
                                       "\"new_password\": \"third password\", "
                                       "\"revoke_others\": true, \"keep_device\": \"mine\"}");
  HARK_REQUIRE(check_error(bad_keep, 400, "bad-request"));
  g_autofree char *body =
    g_strdup_printf("{\"user\": \"alice\", \"password\": \"second password\", \"new_password\": "
                    "\"third password\", \"revoke_others\": true, \"keep_device\": \"%s\"}",
                    hark_identity_get_fingerprint(mine->identity));
  g_autoptr(Answer) changed = request(f, "POST", "/v1/password", body);
  HARK_REQUIRE(check_ok(changed, 200));
  g_assert_cmpint(json_object_get_int_member(changed->json, "revoked"), ==, 2);
  HARK_REQUIRE(check_signed_refused(f, stolen));
  HARK_REQUIRE(check_signed_refused(f, spare));
  g_autoptr(Answer) mine_renews = renew(f, mine);
  HARK_REQUIRE(check_ok(mine_renews, 200));
}

/* ---- lookups and the version ---------------------------------------------------------------- */

/* Each registration costs the server a slow hash: 10 a minute from one address (the
 * default), then locked-out with the time to wait. */
static void
test_registrations_limited(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  for (int i = 0; i < 10; i++) {
    g_autofree char *name = g_strdup_printf("user%02d", i);
    g_autoptr(Answer) created = register_user(f, name, PASSWORD);
    HARK_REQUIRE(check_ok(created, 201));
  }
  g_autoptr(Answer) refused = register_user(f, "one-more", PASSWORD);
  HARK_REQUIRE(check_locked(refused) > 0);
  g_autoptr(Answer) lookup = user_lookup(f, "one-more");
  HARK_REQUIRE(check_error(lookup, 404, "unknown-user"));
}

static void
test_users(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  const char *users[] = { "carlos", "Carl", "carla", "dave" };
  for (gsize i = 0; i < G_N_ELEMENTS(users); i++) {
    g_autoptr(Answer) created = register_user(f, users[i], PASSWORD);
    HARK_REQUIRE(check_ok(created, 201));
  }
  g_autoptr(Answer) two = get(f, "/v1/users?prefix=CARL&limit=2");
  HARK_REQUIRE(check_ok(two, 200));
  g_autofree char *two_text = hark_test_json(two->json);
  g_assert_cmpstr(two_text, ==, "{\"users\":[\"Carl\",\"carla\"]}");
  g_autoptr(Answer) all = get(f, "/v1/users?prefix=carl");
  HARK_REQUIRE(check_ok(all, 200));
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(all->json, "users")), ==, 3);
  const char *bad[] = { "/v1/users?prefix=carl&limit=0",
                        "/v1/users?prefix=carl&limit=101",
                        "/v1/users?prefix=carl&limit=x",
                        "/v1/users",
                        "/v1/users?prefix=",
                        "/v1/users?prefix=c%25",
                        "/v1/users?prefix=c&sort=desc",
                        "/v1/version?x=1" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(Answer) answer = get(f, bad[i]);
    HARK_REQUIRE(check_error(answer, 400, "bad-request"));
  }
  g_autoptr(Answer) one = user_lookup(f, "CARL");
  HARK_REQUIRE(check_ok(one, 200));
  g_assert_cmpstr(member(one, "user"), ==, "Carl");
  g_autoptr(Answer) none = user_lookup(f, "carlo");
  HARK_REQUIRE(check_error(none, 404, "unknown-user"));
}

static void
test_version_and_routes(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) version = get(f, "/v1/version");
  HARK_REQUIRE(check_ok(version, 200));
  g_assert_cmpstr(member(version, "latest"), ==, "9.9.9");
  g_assert_cmpstr(member(version, "url"), ==, "https://example.org/hark");
  g_autoptr(Answer) nowhere = get(f, "/v1/nowhere");
  HARK_REQUIRE(check_error(nowhere, 404, "not-found"));
  g_autoptr(Answer) wrong_method = get(f, "/v1/register");
  HARK_REQUIRE(check_error(wrong_method, 404, "not-found"));
  g_autoptr(Answer) with_body = request(f, "GET", "/v1/version", "{}");
  HARK_REQUIRE(check_error(with_body, 400, "bad-request"));
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void
test_bad_input(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  const char *bodies[] = {
    "not json",
    "[\"alice\", \"" PASSWORD "\"]",
    "\"alice\"",
    "{\"user\": \"alice\"}",
    "{\"user\": \"alice\", \"password\": \"" PASSWORD "\", \"admin\": true}",
    "{\"user\": 42, \"password\": \"" PASSWORD "\"}",
    "{\"user\": \"alice\", \"password\": null}",
    "{\"user\": [\"alice\"], \"password\": \"" PASSWORD "\"}",
    "{\"user\": \"alice\\u0000x\", \"password\": \"" PASSWORD "\"}",
    "{\"user\": \"alice\", \"password\": \"" PASSWORD "\"",
    "{\"user\": \"x\", \"user\": \"alice\", \"password\": \"" PASSWORD "\"}",
    "{\"user\": \"alice\", \"password\": \"" PASSWORD "\"} {}",
    "{\"user\": \"al\xff\xfe\", \"password\": \"" PASSWORD "\"}",
    "",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bodies); i++) {
    g_autoptr(Answer) answer = request(f, "POST", "/v1/register", bodies[i]);
    HARK_REQUIRE(check_error(answer, 400, "bad-request"));
  }
  g_autoptr(GString) big = g_string_new("{\"user\": \"alice\", \"password\": \"");
  while (big->len < 20 * 1024)
    g_string_append_c(big, 'x');
  g_string_append(big, "\"}");
  g_autoptr(Answer) too_big = request(f, "POST", "/v1/register", big->str);
  HARK_REQUIRE(check_error(too_big, 413, "bad-request"));
  /* None of it stored anything; the server still works. */
  g_autoptr(Answer) lookup = user_lookup(f, "alice");
  HARK_REQUIRE(check_error(lookup, 404, "unknown-user"));
  g_autoptr(Answer) created = register_user(f, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
}

/* ---- restart and TLS ------------------------------------------------------------------------ */

static void
test_restart_keeps_everything(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) alice = register_user(f, "Alice", PASSWORD);
  g_autoptr(Answer) bob = register_user(f, "Bob", PASSWORD);
  HARK_REQUIRE(check_ok(alice, 201) && check_ok(bob, 201));
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));
  g_autoptr(Answer) added = buddy_change(f, device, "add", "bob", "Robert", 0);
  HARK_REQUIRE(check_buddies(added, 1, "bob=Robert"));
  g_autofree char *ca_before = g_strdup(f->ca_pem);

  HARK_REQUIRE(restart_node(f));
  g_assert_cmpstr(f->ca_pem, ==, ca_before);
  /* The certificate from before the restart still signs requests. */
  g_autoptr(Answer) list = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  HARK_REQUIRE(check_buddies(list, 1, "bob=Robert"));
  g_autoptr(Answer) again = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(again, 200));
  g_assert_cmpstr(member(again, "ca"), ==, ca_before);
  g_autoptr(Answer) found = user_lookup(f, "bob");
  HARK_REQUIRE(check_ok(found, 200));
}

/* Through `openssl s_client`: TLS 1.3 gets an answer; TLS 1.2 fails in the handshake itself
 * (no ServerHello: the server read the ClientHello and refused it). */
static char *
s_client(Fixture *f, const char *version)
{
  g_autofree char *ca = g_build_filename(f->node->state_dir, "ca.pem", NULL);
  g_autofree char *script = g_strdup_printf(
    "printf 'GET /v1/version HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' | "
    "openssl s_client -ign_eof %s -connect 127.0.0.1:%u -CAfile '%s' -verify_return_error 2>&1",
    version, f->port, ca);
  const char *argv[] = { "sh", "-c", script, NULL };
  char *out = NULL;
  hark_test_run(argv, &out, NULL, TOOL_MS);
  return out;
}

static void
test_tls_versions(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autofree char *tls13 = s_client(f, "-tls1_3");
  HARK_REQUIRE(tls13 != NULL);
  g_test_message("TLS 1.3: %s", tls13);
  g_assert_nonnull(strstr(tls13, "HTTP/1.1 200"));
  g_autofree char *tls12 = s_client(f, "-tls1_2");
  HARK_REQUIRE(tls12 != NULL);
  g_test_message("TLS 1.2: %s", tls12);
  g_assert_null(strstr(tls12, "HTTP/1.1"));
  g_assert_nonnull(strstr(tls12, "SSL handshake has read 0 bytes"));
  g_autofree char *tls11 = s_client(f, "-tls1_1");
  HARK_REQUIRE(tls11 != NULL);
  g_assert_null(strstr(tls11, "HTTP/1.1"));
}

/* ---- connections that say nothing ------------------------------------------------------------ */

static GSocketConnection *
tcp_connect(Fixture *f)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_autoptr(GError) error = NULL;
  g_autofree char *host = g_strdup_printf("127.0.0.1:%u", f->port);
  return g_socket_client_connect_to_host(client, host, 0, NULL, &error);
}

/* Whether the server has closed the connection (EOF, or reset) by now. */
static gboolean
closed_by_server(GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket(connection);
  char byte;
  g_autoptr(GError) error = NULL;
  gssize n = g_socket_receive_with_blocking(socket, &byte, 1, FALSE, NULL, &error);
  return n == 0 || (n < 0 && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK));
}

typedef struct {
  Fixture *f;
  gint stop;
  guint opened;
} Churn;

/* Opens a connection every 10 ms (100 a second) and leaves it idle, until told to stop. */
static gpointer
churn_thread(gpointer data)
{
  Churn *churn = data;
  GPtrArray *held = g_ptr_array_new_with_free_func(g_object_unref);
  while (!g_atomic_int_get(&churn->stop)) {
    GSocketConnection *connection = tcp_connect(churn->f);
    if (connection != NULL) {
      g_ptr_array_add(held, connection);
      churn->opened++;
    }
    g_usleep(10000);
  }
  g_ptr_array_unref(held);
  return NULL;
}

/* 300 idle connections, all from 127.0.0.1, as is the legitimate client. The server holds
 * at most 32 handshakes from one address and closes the oldest for a newer one, so the
 * idle ones push out each other and the login, newest of all, is handshaken at once;
 * the test tells them apart only by age. Then the same while 100 new idle connections a
 * second keep coming. */
static void
test_idle_connections(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(GPtrArray) idle = g_ptr_array_new_with_free_func(g_object_unref);
  for (int i = 0; i < 300; i++) {
    GSocketConnection *connection = tcp_connect(f);
    HARK_REQUIRE(connection != NULL);
    g_ptr_array_add(idle, connection);
  }
  g_autoptr(Device) device = device_new(f);
  gint64 start = g_get_monotonic_time();
  g_autoptr(Answer) answer = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(answer, 200));
  g_test_message("login during 300 idle connections: %.0f ms",
                 (g_get_monotonic_time() - start) / 1000.0);
  guint closed = 0;
  for (guint i = 0; i < idle->len; i++)
    closed += closed_by_server(idle->pdata[i]);
  g_test_message("%u of the 300 idle connections closed by the server", closed);
  g_assert_cmpuint(closed, >=, 300 - 32);

  Churn churn = { f, 0, 0 };
  GThread *thread = g_thread_new("churn", churn_thread, &churn);
  gboolean logged_in = TRUE;
  for (int i = 0; i < 5 && logged_in; i++) {
    g_autoptr(Answer) again = login(f, device, "alice", PASSWORD);
    logged_in = check_ok(again, 200);
  }
  /* The thread reads churn on this stack: it stops before the case may return. */
  g_atomic_int_set(&churn.stop, 1);
  g_thread_join(thread);
  g_test_message("%u connections opened meanwhile", churn.opened);
  HARK_REQUIRE(logged_in);
}

/* ---- connections kept between requests ------------------------------------------------------- */

static void
count_connect(SoupMessage *msg, GSocketClientEvent event, GIOStream *connection, gpointer data)
{
  if (event == G_SOCKET_CLIENT_CONNECTED)
    (*(guint *)data)++;
}

static gboolean
says_close(SoupMessage *msg)
{
  return soup_message_headers_header_contains(soup_message_get_response_headers(msg), "Connection",
                                              "close");
}

/* method path on f->session (body: NULL or text; close: say "Connection: close"), counting
 * the TCP connections it made into *connects; the answer's status. *closing (unless NULL):
 * whether the answer said the server closes the connection. */
static guint
send_counting(Fixture *f, const char *method, const char *path, const char *body, gboolean close,
              guint *connects, gboolean *closing)
{
  g_autoptr(GBytes) bytes = body != NULL ? g_bytes_new(body, strlen(body)) : NULL;
  g_autoptr(SoupMessage) msg = new_message(f, method, path, bytes);
  if (close)
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Connection", "close");
  g_signal_connect(msg, "network-event", G_CALLBACK(count_connect), connects);
  g_autoptr(Answer) answer = send_message(f, msg);
  if (closing != NULL)
    *closing = says_close(msg);
  return answer != NULL ? answer->status : 0;
}

/* GET /v1/version on session, counting the TCP connections it made into *connects;
 * whether the answer said the server closes the connection. */
static gboolean
version_closes(Fixture *f, SoupSession *session, guint *connects)
{
  g_autoptr(SoupMessage) msg = new_message(f, "GET", "/v1/version", NULL);
  g_signal_connect(msg, "network-event", G_CALLBACK(count_connect), connects);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read(session, msg, NULL, &error);
  g_assert_no_error(error);
  g_assert_nonnull(body);
  g_assert_cmpuint(soup_message_get_status(msg), ==, 200);
  return says_close(msg);
}

/* Requests in a row share one TLS connection; the server lets a connection go when the
 * client says "Connection: close", and after a body it refused unread (the rest of that
 * body must never be read as a request). Each step starts with no connection left open:
 * the one before said close. (libsoup sends a POST on a new connection anyway.) */
static void
test_keep_alive(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  guint connects = 0;
  g_assert_cmpuint(send_counting(f, "GET", "/v1/users/alice", NULL, TRUE, &connects, NULL), ==,
                   200);

  connects = 0;
  for (int i = 0; i < 5; i++)
    g_assert_cmpuint(send_counting(f, "GET", "/v1/users/alice", NULL, i == 4, &connects, NULL), ==,
                     200);
  g_test_message("5 look-ups in a row: %u connection(s)", connects);
  g_assert_cmpuint(connects, ==, 1);

  /* A body refused before it was read: that connection is not kept. */
  g_autofree char *large = g_strnfill(20000, 'a');
  connects = 0;
  gboolean closing = FALSE;
  g_assert_cmpuint(send_counting(f, "POST", "/v1/register", large, FALSE, &connects, &closing), ==,
                   413);
  g_assert_true(closing);
  g_assert_cmpuint(send_counting(f, "GET", "/v1/users/alice", NULL, FALSE, &connects, NULL), ==,
                   200);
  g_assert_cmpuint(connects, ==, 2);
}

/* An answer after which the server closes the connection says "Connection: close", or
 * the client pools the connection and sends its next request into the close (a POST,
 * which libsoup does not send again, is then lost): past 4 idle connections from one
 * source, and after a connection's 100th request. The others say nothing of the kind. */
static void
test_keep_alive_bounds(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autofree char *ca = g_build_filename(f->node->state_dir, "ca.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsDatabase) database = g_tls_file_database_new(ca, &error);
  g_assert_no_error(error);
  SoupSession *sessions[5];
  guint connects = 0;
  for (guint i = 0; i < G_N_ELEMENTS(sessions); i++) {
    sessions[i] = soup_session_new_with_options("tls-database", database, "timeout",
                                                HTTP_TIMEOUT_SECONDS, NULL);
    gboolean closing = version_closes(f, sessions[i], &connects);
    g_test_message("connection %u from 127.0.0.1: %s", i + 1, closing ? "closed" : "kept");
    g_assert_cmpint(closing, ==, i == 4);
  }
  /* The fifth goes on a new connection (and is closed again); the first reuses its own. */
  connects = 0;
  g_assert_true(version_closes(f, sessions[4], &connects));
  g_assert_cmpuint(connects, ==, 1);
  connects = 0;
  g_assert_false(version_closes(f, sessions[0], &connects));
  g_assert_cmpuint(connects, ==, 0);
  /* The first connection has carried 2 requests: the 100th is its last. */
  for (guint n = 3; n <= 100; n++) {
    gboolean closing = version_closes(f, sessions[0], &connects);
    if (closing != (n == 100))
      g_test_fail_printf("request %u on one connection: %s", n, closing ? "closed" : "kept");
  }
  g_assert_cmpuint(connects, ==, 0);
  g_assert_false(version_closes(f, sessions[0], &connects));
  g_assert_cmpuint(connects, ==, 1);
  for (guint i = 0; i < G_N_ELEMENTS(sessions); i++)
    g_object_unref(sessions[i]);
}

/* ---- the login tunnel's preamble ---------------------------------------------------------------- */

/* The line an SN sends before a tunnelled client's bytes (docs/protocol.md), signed with
 * the SN device's key. */
static char *
preamble_for(Device *sn, const char *client, const char *nonce)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *text =
    g_strdup_printf("HARK-TUNNEL-1\n%s\n%" G_GINT64_FORMAT "\n%s", client, now, nonce);
  g_autoptr(GBytes) data = g_bytes_new(text, strlen(text));
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) signature = hark_identity_sign(sn->identity, data, &error);
  g_assert_no_error(error);
  g_autofree char *cert = certificate_header(sn->certificate);
  g_autofree char *sig =
    g_base64_encode(g_bytes_get_data(signature, NULL), g_bytes_get_size(signature));
  return g_strdup_printf("HARK-TUNNEL-1 %s %" G_GINT64_FORMAT " %s %s %s\r\n", client, now, nonce,
                         cert, sig);
}

static char *
fresh_nonce(void)
{
  return g_strdup_printf("%08x%08x%08x%08x", g_random_int(), g_random_int(), g_random_int(),
                         g_random_int());
}

/* A TLS connection to the server as an SN opens it for a client: the preamble, then the
 * handshake (pinning the server's CA); NULL when the server refused it. */
static GIOStream *
tunnel_open(Fixture *f, const char *preamble)
{
  g_autoptr(GSocketConnection) tcp = tcp_connect(f);
  g_assert_nonnull(tcp);
  g_autoptr(GError) error = NULL;
  GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(tcp));
  g_assert_true(g_output_stream_write_all(out, preamble, strlen(preamble), NULL, NULL, &error));
  g_autoptr(GSocketConnectable) identity = g_network_address_new("127.0.0.1", f->port);
  g_autoptr(GIOStream) tls = g_tls_client_connection_new(G_IO_STREAM(tcp), identity, &error);
  g_assert_no_error(error);
  g_autofree char *ca = g_build_filename(f->node->state_dir, "ca.pem", NULL);
  g_autoptr(GTlsDatabase) database = g_tls_file_database_new(ca, &error);
  g_assert_no_error(error);
  g_tls_connection_set_database(G_TLS_CONNECTION(tls), database);
  if (!g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &error))
    return NULL;
  return g_steal_pointer(&tls);
}

/* POST /v1/login as the SN would carry it: the preamble, then TLS and HTTP/1.1 by hand.
 * The answer's status and error code ("" for none); status 0 when the server closed the
 * connection without an answer. */
static guint
tunnelled_login(Fixture *f, const char *preamble, Device *device, const char *user,
                const char *password, char **code)
{
  *code = NULL;
  g_autoptr(GIOStream) tls = tunnel_open(f, preamble);
  if (tls == NULL)
    return 0;
  g_autoptr(GError) error = NULL;
  g_autofree char *key = hark_identity_get_public_pem(device->identity);
  g_autofree char *nonce = fetch_nonce(f);
  g_assert_nonnull(nonce);
  g_autofree char *proof = proof_by(device, nonce, user);
  g_autoptr(JsonObject) object = json_object_new();
  json_object_set_string_member(object, "user", user);
  json_object_set_string_member(object, "password", password);
  json_object_set_string_member(object, "device", "laptop");
  json_object_set_string_member(object, "public_key", key);
  json_object_set_string_member(object, "nonce", nonce);
  json_object_set_string_member(object, "proof", proof);
  g_autofree char *body = hark_test_json(object);
  g_autofree char *request = g_strdup_printf(
    "POST /v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
    strlen(body), body);
  GOutputStream *tls_out = g_io_stream_get_output_stream(tls);
  if (!g_output_stream_write_all(tls_out, request, strlen(request), NULL, NULL, &error))
    return 0;
  g_autoptr(GString) response = g_string_new(NULL);
  char buffer[4096];
  gssize n;
  while ((n = g_input_stream_read(g_io_stream_get_input_stream(tls), buffer, sizeof buffer, NULL,
                                  NULL)) > 0)
    g_string_append_len(response, buffer, n);
  guint status = 0;
  if (sscanf(response->str, "HTTP/1.1 %u", &status) != 1)
    return 0;
  const char *json = strstr(response->str, "\r\n\r\n");
  g_autoptr(JsonParser) parser = json_parser_new();
  if (json != NULL && json_parser_load_from_data(parser, json + 4, -1, NULL) &&
      JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
    JsonObject *root = json_node_get_object(json_parser_get_root(parser));
    JsonObject *err =
      json_object_has_member(root, "error") ? json_object_get_object_member(root, "error") : NULL;
    *code = g_strdup(err ? json_object_get_string_member(err, "code") : "");
  }
  return status;
}

/* Alice registered, and an SN's device (user snnode) logged in to sign preambles; NULL
 * (the case failed) otherwise. */
static Device *
tunnel_lab(Fixture *f)
{
  g_autoptr(Answer) created = register_user(f, "Alice", PASSWORD);
  g_autoptr(Answer) sn_user = register_user(f, "snnode", PASSWORD);
  if (!check_ok(created, 201) || !check_ok(sn_user, 201))
    return NULL;
  g_autoptr(Device) sn = device_new(f);
  g_autoptr(Answer) sn_login = login(f, sn, "snnode", PASSWORD);
  return check_ok(sn_login, 200) ? g_steal_pointer(&sn) : NULL;
}

/* A stranger behind an SN fails 22 logins; another client behind the same SN logs in at
 * once, and so does the SN's own address, while the stranger stays limited. A preamble
 * with a wrong signature or used a second time gets no answer at all. */
static void
test_tunnel_origin(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Device) sn = tunnel_lab(f);
  HARK_REQUIRE(sn != NULL);
  g_autoptr(Device) device = device_new(f);
  guint limited = 0;
  for (int i = 0; i < 22; i++) {
    g_autofree char *nonce = fresh_nonce();
    g_autofree char *preamble = preamble_for(sn, "198.51.100.66", nonce);
    g_autofree char *name = g_strdup_printf("nobody%d", i);
    g_autofree char *code = NULL;
    guint status = tunnelled_login(f, preamble, device, name, "a wrong guess", &code);
    HARK_REQUIRE(status == 401 || status == 429);
    limited += status == 429;
  }
  g_assert_cmpuint(limited, >=, 2);
  g_autofree char *nonce = fresh_nonce();
  g_autofree char *preamble = preamble_for(sn, "198.51.100.7", nonce);
  g_autofree char *code = NULL;
  g_assert_cmpuint(tunnelled_login(f, preamble, device, "alice", PASSWORD, &code), ==, 200);
  g_autoptr(Answer) direct = login(f, device, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(direct, 200));
  g_autofree char *stranger_nonce = fresh_nonce();
  g_autofree char *stranger = preamble_for(sn, "198.51.100.66", stranger_nonce);
  g_autofree char *stranger_code = NULL;
  g_assert_cmpuint(tunnelled_login(f, stranger, device, "alice", PASSWORD, &stranger_code), ==,
                   429);
  g_assert_cmpstr(stranger_code, ==, "locked-out");

  /* The same preamble again: a replay, refused before TLS. */
  g_autofree char *replay_code = NULL;
  g_assert_cmpuint(tunnelled_login(f, preamble, device, "alice", PASSWORD, &replay_code), ==, 0);
  /* Another client stated with the first one's signature. */
  g_autofree char *forged = g_strdup(preamble);
  char *at = strstr(forged, "198.51.100.7 ");
  HARK_REQUIRE(at != NULL);
  memcpy(at, "198.51.100.8", 12);
  g_autofree char *forged_code = NULL;
  g_assert_cmpuint(tunnelled_login(f, forged, device, "alice", PASSWORD, &forged_code), ==, 0);
}

/* GET path on an open connection, by hand: its status, 0 when the server closed the
 * connection instead of answering. Reads exactly the answer (its Content-Length), so the
 * next request can follow on the same connection. */
static guint
get_on(GIOStream *stream, const char *path)
{
  g_autofree char *request = g_strdup_printf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  if (!g_output_stream_write_all(g_io_stream_get_output_stream(stream), request, strlen(request),
                                 NULL, NULL, NULL))
    return 0;
  GInputStream *in = g_io_stream_get_input_stream(stream);
  g_autoptr(GString) head = g_string_new(NULL);
  char c;
  while (!g_str_has_suffix(head->str, "\r\n\r\n") && head->len < 8192) {
    if (g_input_stream_read(in, &c, 1, NULL, NULL) != 1)
      return 0;
    g_string_append_c(head, c);
  }
  guint status = 0;
  const char *length = strstr(head->str, "Content-Length: ");
  if (sscanf(head->str, "HTTP/1.1 %u", &status) != 1 || length == NULL)
    return 0;
  gsize body = (gsize)g_ascii_strtoull(length + strlen("Content-Length: "), NULL, 10);
  g_autofree char *skip = g_malloc(body + 1);
  gsize got = 0;
  if (body > 0 && !g_input_stream_read_all(in, skip, body, &got, NULL, NULL))
    return 0;
  return got == body ? status : 0;
}

/* A kept tunnelled connection still counts for the client its SN stated: 60 look-ups a
 * minute on one connection exhaust that client's look-ups (the 61st: 429), while the
 * SN's own address, which the connection comes from, still looks up. */
static void
test_keep_alive_tunnelled(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Device) sn = tunnel_lab(f);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *nonce = fresh_nonce();
  g_autofree char *preamble = preamble_for(sn, "198.51.100.9", nonce);
  g_autoptr(GIOStream) tls = tunnel_open(f, preamble);
  HARK_REQUIRE(tls != NULL);
  for (int i = 0; i < 60; i++)
    HARK_REQUIRE(get_on(tls, "/v1/users/alice") == 200);
  g_assert_cmpuint(get_on(tls, "/v1/users/alice"), ==, 429);
  g_autoptr(Answer) direct = user_lookup(f, "alice");
  HARK_REQUIRE(direct != NULL);
  g_assert_cmpuint(direct->status, ==, 200);
}

/* ---- contact requests and blocks --------------------------------------------------------- */

/* POST /v1/contacts {"op", "name", "message"?} signed by device. */
static Answer *
contact(Fixture *f, Device *device, const char *op, const char *name, const char *message)
{
  g_autoptr(JsonObject) object = json_object_new();
  json_object_set_string_member(object, "op", op);
  json_object_set_string_member(object, "name", name);
  if (message != NULL)
    json_object_set_string_member(object, "message", message);
  g_autofree char *text = hark_test_json(object);
  return signed_request(f, device, NULL, "POST", "/v1/contacts", text, 0);
}

static Answer *
contacts_get(Fixture *f, Device *device)
{
  return signed_request(f, device, NULL, "GET", "/v1/contacts", NULL, 0);
}

/* The names of one list of a contacts answer ("incoming", "outgoing", "blocked"), joined
 * with ',' (requests as name or name:message). */
static char *
contact_names(Answer *answer, const char *which)
{
  g_autoptr(GString) text = g_string_new(NULL);
  JsonArray *array =
    answer && answer->json ? json_object_get_array_member(answer->json, which) : NULL;
  for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
    JsonNode *node = json_array_get_element(array, i);
    if (i > 0)
      g_string_append_c(text, ',');
    if (JSON_NODE_HOLDS_VALUE(node)) {
      g_string_append(text, json_node_get_string(node));
      continue;
    }
    JsonObject *request = json_node_get_object(node);
    g_string_append(text, json_object_get_string_member(request, "name"));
    const char *message = json_object_get_string_member_with_default(request, "message", NULL);
    if (message != NULL)
      g_string_append_printf(text, ":%s", message);
  }
  return g_string_free(g_steal_pointer(&text), FALSE);
}

static gboolean
check_contacts(Answer *answer, const char *incoming, const char *outgoing, const char *blocked)
{
  if (!check_ok(answer, 200))
    return FALSE;
  g_autofree char *in = contact_names(answer, "incoming");
  g_autofree char *out = contact_names(answer, "outgoing");
  g_autofree char *blocks = contact_names(answer, "blocked");
  if (strcmp(in, incoming) == 0 && strcmp(out, outgoing) == 0 && strcmp(blocks, blocked) == 0)
    return TRUE;
  g_test_message("expected in [%s] out [%s] blocked [%s], got [%s] [%s] [%s]", incoming, outgoing,
                 blocked, in, out, blocks);
  g_test_fail();
  return FALSE;
}

/* Registers each user (a name given twice is one user with two devices) and logs a new
 * device in as them. */
static void
users_with_devices(Fixture *f, Device **devices, const char *const *users, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    g_autoptr(Answer) created = register_user(f, users[i], PASSWORD);
    g_assert_true(created->status == 201 || g_strcmp0(error_code(created), "user-exists") == 0);
    devices[i] = device_new(f);
    g_autoptr(Answer) answer = login(f, devices[i], users[i], PASSWORD);
    g_assert_true(check_ok(answer, 200));
  }
}

static gboolean
check_list(Fixture *f, Device *device, gint64 revision, const char *expected)
{
  g_autoptr(Answer) list = signed_request(f, device, NULL, "GET", "/v1/buddies", NULL, 0);
  return check_buddies(list, revision, expected);
}

/* Alice asks Bob; each of Bob's two devices sees it; one accepts and both users' lists,
 * on every device, have the other. Nobody else can answer it, and nobody can answer for
 * another user with that user's certificate. */
static void
test_contact_request_accept(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob", "Bob", "Carol" };
  Device *d[4] = { NULL };
  users_with_devices(f, d, users, 4);
  g_autoptr(Device) alice = d[0], bob1 = d[1], bob2 = d[2], carol = d[3];

  g_autoptr(Answer) sent = contact(f, alice, "send", "BOB", "hi, it's Alice");
  HARK_REQUIRE(check_contacts(sent, "", "bob:hi, it's Alice", ""));
  g_autoptr(Answer) seen1 = contacts_get(f, bob1);
  g_autoptr(Answer) seen2 = contacts_get(f, bob2);
  HARK_REQUIRE(check_contacts(seen1, "alice:hi, it's Alice", "", ""));
  HARK_REQUIRE(check_contacts(seen2, "alice:hi, it's Alice", "", ""));

  /* Carol answers a request that was not made to her; Alice answers her own; Carol signs
   * with Bob's certificate: none of it works, and the request still waits for Bob. */
  g_autoptr(Answer) not_hers = contact(f, carol, "accept", "alice", NULL);
  HARK_REQUIRE(check_error(not_hers, 404, "not-found"));
  g_autoptr(Answer) own = contact(f, alice, "accept", "bob", NULL);
  HARK_REQUIRE(check_error(own, 404, "not-found"));
  static const char accept_alice[] = "{\"op\":\"accept\",\"name\":\"alice\"}";
  g_autoptr(Answer) forged =
    signed_request(f, carol, bob1->certificate, "POST", "/v1/contacts", accept_alice, 0);
  HARK_REQUIRE(check_error(forged, 401, "unauthenticated"));
  g_autoptr(Answer) self = contact(f, alice, "send", "Alice", NULL);
  HARK_REQUIRE(check_error(self, 400, "bad-request"));
  g_autoptr(Answer) nobody = contact(f, alice, "send", "nobody", NULL);
  HARK_REQUIRE(check_error(nobody, 404, "unknown-user"));
  g_autoptr(Answer) long_note = contact(f, carol, "send", "bob",
                                        "0123456789012345678901234567890123456789"
                                        "0123456789012345678901234567890123456789");
  HARK_REQUIRE(check_error(long_note, 400, "bad-request"));
  g_autoptr(Answer) control_note = contact(f, carol, "send", "bob", "line\nbreak");
  HARK_REQUIRE(check_error(control_note, 400, "bad-request"));
  HARK_REQUIRE(check_list(f, alice, 0, "") && check_list(f, bob2, 0, ""));

  g_autoptr(Answer) accepted = contact(f, bob1, "accept", "alice", NULL);
  HARK_REQUIRE(check_contacts(accepted, "", "", ""));
  HARK_REQUIRE(check_list(f, bob1, 1, "alice=Alice"));
  HARK_REQUIRE(check_list(f, bob2, 1, "alice=Alice"));
  HARK_REQUIRE(check_list(f, alice, 1, "bob=Bob"));
  g_autoptr(Answer) after = contacts_get(f, alice);
  HARK_REQUIRE(check_contacts(after, "", "", ""));
  /* Answered once: there is nothing to answer again, and asking a buddy is refused. */
  g_autoptr(Answer) again = contact(f, bob2, "accept", "alice", NULL);
  HARK_REQUIRE(check_error(again, 404, "not-found"));
  g_autoptr(Answer) buddy = contact(f, alice, "send", "bob", NULL);
  HARK_REQUIRE(check_error(buddy, 409, "buddy-exists"));
}

/* Declined: the request goes, and asking again waits request_again_after (the test clock
 * moves past it). Cancelled: it goes from both sides. */
static void
test_contact_request_decline(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob" };
  Device *d[2] = { NULL };
  users_with_devices(f, d, users, 2);
  g_autoptr(Device) alice = d[0], bob = d[1];

  g_autoptr(Answer) sent = contact(f, alice, "send", "bob", NULL);
  HARK_REQUIRE(check_contacts(sent, "", "bob", ""));
  g_autoptr(Answer) declined = contact(f, bob, "decline", "alice", NULL);
  HARK_REQUIRE(check_contacts(declined, "", "", ""));
  g_autoptr(Answer) mine = contacts_get(f, alice);
  HARK_REQUIRE(check_contacts(mine, "", "", ""));
  HARK_REQUIRE(check_list(f, alice, 0, "") && check_list(f, bob, 0, ""));
  g_autoptr(Answer) too_soon = contact(f, alice, "send", "bob", NULL);
  HARK_REQUIRE(check_locked(too_soon) > 86000);
  HARK_REQUIRE(advance_clock(f, 86401));
  /* The certificates of the test are long past: log in again a day later. */
  g_autoptr(Answer) relogin = login(f, alice, "alice", PASSWORD);
  HARK_REQUIRE(check_ok(relogin, 200));
  g_autoptr(Answer) later = contact(f, alice, "send", "bob", "once more");
  HARK_REQUIRE(check_contacts(later, "", "bob:once more", ""));
  g_autoptr(Answer) cancelled = contact(f, alice, "cancel", "bob", NULL);
  HARK_REQUIRE(check_contacts(cancelled, "", "", ""));
  g_autoptr(Answer) relogin_bob = login(f, bob, "bob", PASSWORD);
  HARK_REQUIRE(check_ok(relogin_bob, 200));
  g_autoptr(Answer) gone = contacts_get(f, bob);
  HARK_REQUIRE(check_contacts(gone, "", "", ""));
  g_autoptr(Answer) cancel_twice = contact(f, alice, "cancel", "bob", NULL);
  HARK_REQUIRE(check_error(cancel_twice, 404, "not-found"));
}

/* Bob blocks Mallory: her pending request goes and her buddy entry too; what she sends
 * afterwards is answered exactly as Dave's request to Bob is, and Bob never sees it, nor
 * can he answer it; unblocking restores nothing. */
static void
test_contact_block(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Bob", "Mallory", "Dave" };
  Device *d[3] = { NULL };
  users_with_devices(f, d, users, 3);
  g_autoptr(Device) bob = d[0], mallory = d[1], dave = d[2];

  g_autoptr(Answer) friends = buddy_change(f, bob, "add", "mallory", NULL, -1);
  HARK_REQUIRE(check_buddies(friends, 1, "mallory=Mallory"));
  g_autoptr(Answer) pending = contact(f, mallory, "send", "bob", NULL);
  HARK_REQUIRE(check_contacts(pending, "", "bob", ""));
  g_autoptr(Answer) blocked = contact(f, bob, "block", "mallory", NULL);
  HARK_REQUIRE(check_contacts(blocked, "", "", "mallory"));
  HARK_REQUIRE(check_list(f, bob, 2, ""));
  g_autoptr(Answer) hers = contacts_get(f, mallory);
  HARK_REQUIRE(check_contacts(hers, "", "", ""));

  /* A day later she may ask again, as after any decline; the answer is Dave's. */
  HARK_REQUIRE(advance_clock(f, 86401));
  for (gsize i = 0; i < 3; i++) {
    g_autoptr(Answer) again = login(f, d[i], users[i], PASSWORD);
    HARK_REQUIRE(check_ok(again, 200));
  }
  g_autoptr(Answer) from_mallory = contact(f, mallory, "send", "bob", "please");
  g_autoptr(Answer) from_dave = contact(f, dave, "send", "bob", "please");
  HARK_REQUIRE(check_contacts(from_mallory, "", "bob:please", ""));
  HARK_REQUIRE(check_contacts(from_dave, "", "bob:please", ""));
  g_assert_cmpuint(from_mallory->status, ==, from_dave->status);
  g_autoptr(Answer) inbox = contacts_get(f, bob);
  HARK_REQUIRE(check_contacts(inbox, "dave:please", "", "mallory"));
  g_autoptr(Answer) accept_hidden = contact(f, bob, "accept", "mallory", NULL);
  HARK_REQUIRE(check_error(accept_hidden, 404, "not-found"));
  HARK_REQUIRE(check_list(f, mallory, 0, "") && check_list(f, bob, 2, ""));

  g_autoptr(Answer) unblocked = contact(f, bob, "unblock", "mallory", NULL);
  HARK_REQUIRE(check_contacts(unblocked, "dave:please", "", ""));
  HARK_REQUIRE(check_list(f, bob, 2, ""));
  g_autoptr(Answer) unblock_twice = contact(f, bob, "unblock", "mallory", NULL);
  HARK_REQUIRE(check_error(unblock_twice, 404, "not-found"));
}

/* A flood of requests from one account is refused after contact_requests_per_minute
 * (10), whoever it goes to; and at most max_pending_requests (2 here) wait at once. */
static void
test_contact_limits(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob", "Carol", "Dave" };
  Device *d[4] = { NULL };
  users_with_devices(f, d, users, 4);
  g_autoptr(Device) alice = d[0], bob = d[1], carol = d[2], dave = d[3];

  g_autoptr(Answer) to_bob = contact(f, alice, "send", "bob", NULL);
  g_autoptr(Answer) to_carol = contact(f, alice, "send", "carol", NULL);
  HARK_REQUIRE(check_ok(to_bob, 200) && check_ok(to_carol, 200));
  g_autoptr(Answer) to_dave = contact(f, alice, "send", "dave", NULL);
  HARK_REQUIRE(check_error(to_dave, 429, "too-many-pending"));
  g_autoptr(Answer) cancelled = contact(f, alice, "cancel", "carol", NULL);
  HARK_REQUIRE(check_ok(cancelled, 200));
  g_autoptr(Answer) now_dave = contact(f, alice, "send", "dave", NULL);
  HARK_REQUIRE(check_contacts(now_dave, "", "bob,dave", ""));
  /* 4 requests so far; 6 more fill the minute (asking again is a request too). */
  for (int i = 0; i < 6; i++) {
    g_autoptr(Answer) repeat = contact(f, alice, "send", "bob", NULL);
    HARK_REQUIRE(check_ok(repeat, 200));
  }
  g_autoptr(Answer) flood = contact(f, alice, "send", "bob", NULL);
  HARK_REQUIRE(check_locked(flood) > 0);
  /* Another account is not slowed down by Alice's flood, and Alice's answers still work. */
  g_autoptr(Answer) from_carol = contact(f, carol, "send", "bob", NULL);
  HARK_REQUIRE(check_ok(from_carol, 200));
  g_autoptr(Answer) answered = contact(f, bob, "accept", "alice", NULL);
  HARK_REQUIRE(check_ok(answered, 200));
  HARK_REQUIRE(advance_clock(f, 61));
  g_autoptr(Answer) later = contact(f, alice, "send", "carol", NULL);
  HARK_REQUIRE(check_ok(later, 200));
  (void)dave;
}

/* GET /v1/users/NAME: exists or not, and whether seen within 72 h, never when. */
static void
test_users_last_seen(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  g_autoptr(Answer) created = register_user(f, "Bob", PASSWORD);
  HARK_REQUIRE(check_ok(created, 201));
  g_autoptr(Answer) never = user_lookup(f, "bob");
  HARK_REQUIRE(check_ok(never, 200));
  JsonObject *seen = json_object_get_object_member(never->json, "last_seen");
  g_assert_false(json_object_get_boolean_member(seen, "recent"));
  g_assert_cmpint(json_object_get_int_member(seen, "within_hours"), ==, 72);
  g_assert_cmpuint(json_object_get_size(seen), ==, 2); /* no time in it */
  g_autoptr(Device) device = device_new(f);
  g_autoptr(Answer) logged_in = login(f, device, "bob", PASSWORD);
  HARK_REQUIRE(check_ok(logged_in, 200));
  g_autoptr(Answer) recent = user_lookup(f, "BOB");
  HARK_REQUIRE(check_ok(recent, 200));
  g_assert_cmpstr(member(recent, "user"), ==, "Bob");
  g_assert_true(json_object_get_boolean_member(
    json_object_get_object_member(recent->json, "last_seen"), "recent"));
  HARK_REQUIRE(advance_clock(f, 73 * 3600));
  g_autoptr(Answer) old = user_lookup(f, "bob");
  HARK_REQUIRE(check_ok(old, 200));
  g_assert_false(json_object_get_boolean_member(
    json_object_get_object_member(old->json, "last_seen"), "recent"));
  g_autoptr(Answer) unknown = user_lookup(f, "nobody");
  HARK_REQUIRE(check_error(unknown, 404, "unknown-user"));
}

/* ---- messages held for offline devices -------------------------------------------------------- */

/* An envelope in shape (test-envelope.h), sealed by sender for the devices in to
 * (NULL-terminated), with a body of body_size bytes. */
static GBytes *
envelope_for(Device *sender, Device *const *to, gsize body_size)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new();
  for (gsize i = 0; to[i] != NULL; i++)
    g_ptr_array_add(ids, (gpointer)hark_identity_get_fingerprint(to[i]->identity));
  g_ptr_array_add(ids, NULL);
  return hark_test_envelope_new(hark_identity_get_fingerprint(sender->identity),
                                (const char *const *)ids->pdata, body_size);
}

/* POST /v1/messages {"device": device_id, "envelope": base64} signed by sender. */
static Answer *
hold_bytes(Fixture *f, Device *sender, const char *device_id, gconstpointer data, gsize size)
{
  g_autofree char *text = g_base64_encode(data, size);
  g_autoptr(JsonObject) object = json_object_new();
  json_object_set_string_member(object, "device", device_id);
  json_object_set_string_member(object, "envelope", text);
  g_autofree char *body = hark_test_json(object);
  return signed_request(f, sender, NULL, "POST", "/v1/messages", body, 0);
}

static Answer *
hold(Fixture *f, Device *sender, Device *recipient, GBytes *envelope)
{
  return hold_bytes(f, sender, hark_identity_get_fingerprint(recipient->identity),
                    g_bytes_get_data(envelope, NULL), g_bytes_get_size(envelope));
}

static Answer *
fetch_held(Fixture *f, Device *device)
{
  return signed_request(f, device, NULL, "GET", "/v1/messages", NULL, 0);
}

/* POST /v1/messages/ack {"ids": [ids...]} (a NULL-terminated list). */
static Answer *
ack_held(Fixture *f, Device *device, const char *const *ids)
{
  g_autoptr(JsonObject) object = json_object_new();
  JsonArray *array = json_array_new();
  for (gsize i = 0; ids[i] != NULL; i++)
    json_array_add_string_element(array, ids[i]);
  json_object_set_array_member(object, "ids", array);
  g_autofree char *body = hark_test_json(object);
  return signed_request(f, device, NULL, "POST", "/v1/messages/ack", body, 0);
}

/* The ids of a GET /v1/messages answer joined with ','; each envelope checked against
 * the expected ones (same order) when expected is not NULL. */
static char *
held_ids(Answer *answer, GBytes *const *expected)
{
  g_autoptr(GString) text = g_string_new(NULL);
  JsonArray *list =
    answer && answer->json ? json_object_get_array_member(answer->json, "messages") : NULL;
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++) {
    JsonObject *entry = json_array_get_object_element(list, i);
    g_string_append_printf(text, "%s%s", i ? "," : "", json_object_get_string_member(entry, "id"));
    g_assert_cmpint(json_object_get_int_member(entry, "held_at"), >, 0);
    if (expected == NULL)
      continue;
    g_assert_nonnull(expected[i]);
    gsize length = 0;
    g_autofree guint8 *bytes =
      g_base64_decode(json_object_get_string_member(entry, "envelope"), &length);
    g_assert_cmpmem(bytes, length, g_bytes_get_data(expected[i], NULL),
                    g_bytes_get_size(expected[i]));
  }
  return g_string_free(g_steal_pointer(&text), FALSE);
}

/* The number of messages device has waiting (and that the answer says no more). */
static guint
held_count(Fixture *f, Device *device)
{
  g_autoptr(Answer) answer = fetch_held(f, device);
  if (!check_ok(answer, 200))
    return G_MAXUINT;
  g_assert_false(json_object_get_boolean_member(answer->json, "more"));
  return json_array_get_length(json_object_get_array_member(answer->json, "messages"));
}

static gboolean
check_deleted(Answer *answer, gint64 deleted)
{
  if (!check_ok(answer, 200))
    return FALSE;
  g_assert_cmpint(json_object_get_int_member(answer->json, "deleted"), ==, deleted);
  return json_object_get_int_member(answer->json, "deleted") == deleted;
}

/* Alice holds an envelope for Bob's phone: only the phone fetches it, byte for byte, and
 * only the phone's ack deletes it. Nobody else learns it is there. */
static void
test_messages_hold_fetch_ack(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob", "Bob" };
  Device *d[3] = { NULL };
  users_with_devices(f, d, users, 3);
  g_autoptr(Device) alice = d[0], phone = d[1], tablet = d[2];
  Device *const both[] = { phone, tablet, NULL };
  g_autoptr(GBytes) first = envelope_for(alice, both, 100);
  g_autoptr(GBytes) second = envelope_for(alice, both, 2000);

  g_autoptr(Answer) held = hold(f, alice, phone, first);
  HARK_REQUIRE(check_ok(held, 201));
  const char *id = member(held, "id");
  HARK_REQUIRE(id != NULL && strlen(id) == 32);
  gint64 expires = json_object_get_int_member(held->json, "expires");
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_assert_cmpint(expires, >=, now + 30 * 86400 - 60);
  g_assert_cmpint(expires, <=, now + 30 * 86400 + 60);
  g_autoptr(Answer) held_second = hold(f, alice, phone, second);
  HARK_REQUIRE(check_ok(held_second, 201));

  /* The tablet (same user, not the recipient) and the sender see nothing of it. */
  g_assert_cmpuint(held_count(f, tablet), ==, 0);
  g_assert_cmpuint(held_count(f, alice), ==, 0);
  g_autoptr(Answer) fetched = fetch_held(f, phone);
  HARK_REQUIRE(check_ok(fetched, 200));
  GBytes *const expected[] = { first, second, NULL };
  g_autofree char *ids = held_ids(fetched, expected);
  g_autofree char *both_ids = g_strdup_printf("%s,%s", id, member(held_second, "id"));
  g_assert_cmpstr(ids, ==, both_ids);

  /* Acks of others delete nothing, and say so like an unknown id does. */
  const char *const one[] = { id, NULL };
  g_autoptr(Answer) by_tablet = ack_held(f, tablet, one);
  g_autoptr(Answer) by_alice = ack_held(f, alice, one);
  HARK_REQUIRE(check_deleted(by_tablet, 0) && check_deleted(by_alice, 0));
  g_assert_cmpuint(held_count(f, phone), ==, 2);

  g_autoptr(Answer) acked = ack_held(f, phone, one);
  HARK_REQUIRE(check_deleted(acked, 1));
  g_autoptr(Answer) again = ack_held(f, phone, one);
  HARK_REQUIRE(check_deleted(again, 0));
  g_autoptr(Answer) rest = fetch_held(f, phone);
  g_autofree char *rest_ids = held_ids(rest, expected + 1);
  g_assert_cmpstr(rest_ids, ==, member(held_second, "id"));

  /* Malformed acks and unsigned requests are refused. */
  const char *const bad[] = { "not-an-id", NULL };
  g_autoptr(Answer) bad_ack = ack_held(f, phone, bad);
  HARK_REQUIRE(check_error(bad_ack, 400, "bad-request"));
  g_autoptr(Answer) unsigned_get = get(f, "/v1/messages");
  HARK_REQUIRE(check_error(unsigned_get, 401, "unauthenticated"));
}

/* What a hostile sender tries: holding in another device's name, for a device the
 * envelope is not for, for a revoked or unknown device, or bytes that are no envelope.
 * Each is refused with its own code and nothing is held. */
static void
test_messages_refused(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob", "Bob", "Mallory" };
  Device *d[4] = { NULL };
  users_with_devices(f, d, users, 4);
  g_autoptr(Device) alice = d[0], phone = d[1], tablet = d[2], mallory = d[3];
  g_autoptr(Device) stranger = device_new(f); /* never logged in */
  Device *const to_phone[] = { phone, NULL };
  Device *const to_tablet[] = { tablet, NULL };
  Device *const to_stranger[] = { stranger, NULL };

  g_autoptr(GBytes) alices = envelope_for(alice, to_phone, 10);
  g_autoptr(Answer) forged = hold(f, mallory, phone, alices);
  HARK_REQUIRE(check_error(forged, 403, "not-sender"));
  g_autoptr(Answer) not_for_it = hold(f, alice, tablet, alices);
  HARK_REQUIRE(check_error(not_for_it, 400, "not-recipient"));
  g_autoptr(GBytes) for_stranger = envelope_for(alice, to_stranger, 10);
  g_autoptr(Answer) unknown = hold(f, alice, stranger, for_stranger);
  HARK_REQUIRE(check_error(unknown, 404, "unknown-device"));

  /* Bad bytes: not base64, not a GVariant, a short signature, too large. */
  const char *phone_id = hark_identity_get_fingerprint(phone->identity);
  g_autofree char *body = g_strdup_printf("{\"device\": \"%s\", \"envelope\": \"@@@\"}", phone_id);
  g_autoptr(Answer) not_base64 = signed_request(f, alice, NULL, "POST", "/v1/messages", body, 0);
  HARK_REQUIRE(check_error(not_base64, 400, "bad-envelope"));
  g_autoptr(Answer) garbage = hold_bytes(f, alice, phone_id, "garbage!", 8);
  HARK_REQUIRE(check_error(garbage, 400, "bad-envelope"));
  g_assert_nonnull(strstr(error_message(garbage), "normal form"));
  static const guint8 short_signature[] = { 1, 0, 0, 0, 0, 0, 0, 0 };
  g_autoptr(Answer) short_one =
    hold_bytes(f, alice, phone_id, short_signature, sizeof short_signature);
  HARK_REQUIRE(check_error(short_one, 400, "bad-envelope"));
  g_autoptr(GBytes) huge = envelope_for(alice, to_phone, 256 * 1024);
  g_autoptr(Answer) too_large = hold(f, alice, phone, huge);
  HARK_REQUIRE(check_error(too_large, 400, "bad-envelope"));
  g_assert_nonnull(strstr(error_message(too_large), "262144"));

  /* A revoked device gets nothing held, even by an envelope made for it. */
  g_autoptr(GBytes) for_tablet = envelope_for(alice, to_tablet, 10);
  g_autofree char *revoke =
    g_strdup_printf("{\"device\": \"%s\"}", hark_identity_get_fingerprint(tablet->identity));
  g_autoptr(Answer) revoked =
    signed_request(f, phone, NULL, "POST", "/v1/devices/remove", revoke, 0);
  HARK_REQUIRE(check_ok(revoked, 200));
  g_autoptr(Answer) to_revoked = hold(f, alice, tablet, for_tablet);
  HARK_REQUIRE(check_error(to_revoked, 404, "unknown-device"));

  g_assert_cmpuint(held_count(f, phone), ==, 0);
  /* The one good hold still works after all that. */
  g_autoptr(Answer) good = hold(f, alice, phone, alices);
  HARK_REQUIRE(check_ok(good, 201));
  g_assert_cmpuint(held_count(f, phone), ==, 1);
}

/* messages.device_max_messages = 2, sender_max_messages = 3: the recipient's device is
 * full (507), then the sender is over (429); what was accepted is all there, in order. */
static void
test_messages_quotas(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob", "Bob", "Carol" };
  Device *d[4] = { NULL };
  users_with_devices(f, d, users, 4);
  g_autoptr(Device) alice = d[0], phone = d[1], tablet = d[2], carol = d[3];
  Device *const both[] = { phone, tablet, NULL };
  GBytes *sent[3] = { NULL };
  g_autoptr(GString) accepted = g_string_new(NULL);
  for (gsize i = 0; i < 3; i++) {
    sent[i] = envelope_for(alice, both, 10 + i);
    g_autoptr(Answer) answer = hold(f, alice, phone, sent[i]);
    if (i < 2) {
      HARK_REQUIRE(check_ok(answer, 201));
      g_string_append_printf(accepted, "%s%s", i ? "," : "", member(answer, "id"));
    } else {
      HARK_REQUIRE(check_error(answer, 507, "recipient-full"));
    }
  }
  g_autoptr(Answer) to_tablet = hold(f, alice, tablet, sent[2]);
  HARK_REQUIRE(check_ok(to_tablet, 201));
  g_autoptr(Answer) over = hold(f, alice, tablet, sent[2]);
  HARK_REQUIRE(check_error(over, 429, "over-quota"));
  /* Another sender is not held back by Alice's quota. */
  g_autoptr(GBytes) carols = envelope_for(carol, both, 10);
  g_autoptr(Answer) from_carol = hold(f, carol, tablet, carols);
  HARK_REQUIRE(check_ok(from_carol, 201));

  g_autoptr(Answer) fetched = fetch_held(f, phone);
  HARK_REQUIRE(check_ok(fetched, 200));
  g_autofree char *ids = held_ids(fetched, sent);
  g_assert_cmpstr(ids, ==, accepted->str);
  g_assert_cmpuint(held_count(f, tablet), ==, 2);

  /* Fetched and acked, the room is there again. */
  g_auto(GStrv) split = g_strsplit(ids, ",", -1);
  g_autoptr(Answer) acked = ack_held(f, phone, (const char *const *)split);
  HARK_REQUIRE(check_deleted(acked, 2));
  g_autoptr(Answer) again = hold(f, alice, phone, sent[2]);
  HARK_REQUIRE(check_ok(again, 201));
  for (gsize i = 0; i < 3; i++)
    g_bytes_unref(sent[i]);
}

/* Held 30 days (messages.hold_days), by the server's clock; then gone, and out of the
 * sender's quota. */
static void
test_messages_expiry(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob" };
  Device *d[2] = { NULL };
  users_with_devices(f, d, users, 2);
  g_autoptr(Device) alice = d[0], bob = d[1];
  Device *const to_bob[] = { bob, NULL };
  g_autoptr(GBytes) envelope = envelope_for(alice, to_bob, 10);
  g_autoptr(Answer) held = hold(f, alice, bob, envelope);
  HARK_REQUIRE(check_ok(held, 201));

  HARK_REQUIRE(advance_clock(f, 29 * 86400));
  for (gsize i = 0; i < 2; i++) {
    g_autoptr(Answer) again = login(f, d[i], users[i], PASSWORD);
    HARK_REQUIRE(check_ok(again, 200));
  }
  g_assert_cmpuint(held_count(f, bob), ==, 1);
  HARK_REQUIRE(advance_clock(f, 86400 + 1));
  for (gsize i = 0; i < 2; i++) {
    g_autoptr(Answer) again = login(f, d[i], users[i], PASSWORD);
    HARK_REQUIRE(check_ok(again, 200));
  }
  g_assert_cmpuint(held_count(f, bob), ==, 0);
  /* device_max_messages is 2 here: the expired one no longer counts. */
  for (gsize i = 0; i < 3; i++) {
    g_autoptr(Answer) more = hold(f, alice, bob, envelope);
    HARK_REQUIRE(i < 2 ? check_ok(more, 201) : check_error(more, 507, "recipient-full"));
  }
}

/* The entry of a devices answer for device, or NULL. */
static JsonObject *
listed_device(Answer *answer, Device *device)
{
  JsonArray *list =
    answer && answer->json ? json_object_get_array_member(answer->json, "devices") : NULL;
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++) {
    JsonObject *entry = json_array_get_object_element(list, i);
    if (g_strcmp0(json_object_get_string_member(entry, "id"),
                  hark_identity_get_fingerprint(device->identity)) == 0)
      return entry;
  }
  return NULL;
}

static guint
devices_listed(Answer *answer)
{
  JsonArray *list = json_object_get_array_member(answer->json, "devices");
  return json_array_get_length(list);
}

/* GET /v1/users/NAME/devices: the last certificate of each device that is not revoked
 * and whose certificate is still valid; nothing for a user who blocks the asker. */
static void
test_user_devices(Fixture *f, gconstpointer data)
{
  HARK_REQUIRE(f->node != NULL);
  static const char *const users[] = { "Alice", "Bob", "Bob", "Carol" };
  Device *d[4] = { NULL };
  users_with_devices(f, d, users, 4);
  g_autoptr(Device) alice = d[0], phone = d[1], tablet = d[2], carol = d[3];

  g_autoptr(Answer) renewed = renew(f, phone);
  HARK_REQUIRE(check_ok(renewed, 200));
  g_autoptr(Answer) listed =
    signed_request(f, alice, NULL, "GET", "/v1/users/BOB/devices", NULL, 0);
  HARK_REQUIRE(check_ok(listed, 200));
  g_assert_cmpuint(devices_listed(listed), ==, 2);
  JsonObject *on_phone = listed_device(listed, phone);
  JsonObject *on_tablet = listed_device(listed, tablet);
  HARK_REQUIRE(on_phone != NULL && on_tablet != NULL);
  g_autofree char *phone_der = certificate_header(member(renewed, "certificate"));
  g_autofree char *tablet_der = certificate_header(tablet->certificate);
  g_assert_cmpstr(json_object_get_string_member(on_phone, "certificate"), ==, phone_der);
  g_assert_cmpstr(json_object_get_string_member(on_tablet, "certificate"), ==, tablet_der);

  /* Revoked: gone from the list. */
  g_autofree char *revoke =
    g_strdup_printf("{\"device\": \"%s\"}", hark_identity_get_fingerprint(tablet->identity));
  g_autoptr(Answer) revoked =
    signed_request(f, phone, NULL, "POST", "/v1/devices/remove", revoke, 0);
  HARK_REQUIRE(check_ok(revoked, 200));
  g_autoptr(Answer) after = signed_request(f, alice, NULL, "GET", "/v1/users/bob/devices", NULL, 0);
  HARK_REQUIRE(check_ok(after, 200));
  g_assert_cmpuint(devices_listed(after), ==, 1);
  g_assert_nonnull(listed_device(after, phone));

  /* Bob blocks Alice: her answer is an empty list; Carol's is not. */
  g_autoptr(Answer) blocked = contact(f, phone, "block", "alice", NULL);
  HARK_REQUIRE(check_ok(blocked, 200));
  g_autoptr(Answer) for_alice =
    signed_request(f, alice, NULL, "GET", "/v1/users/bob/devices", NULL, 0);
  g_autoptr(Answer) for_carol =
    signed_request(f, carol, NULL, "GET", "/v1/users/bob/devices", NULL, 0);
  HARK_REQUIRE(check_ok(for_alice, 200) && check_ok(for_carol, 200));
  g_assert_cmpuint(devices_listed(for_alice), ==, 0);
  g_assert_cmpuint(devices_listed(for_carol), ==, 1);
  /* And what she holds for him is answered like any hold, and never reaches him. */
  Device *const to_phone[] = { phone, NULL };
  g_autoptr(GBytes) envelope = envelope_for(alice, to_phone, 10);
  g_autoptr(Answer) held = hold(f, alice, phone, envelope);
  HARK_REQUIRE(check_ok(held, 201));
  g_assert_cmpuint(held_count(f, phone), ==, 0);

  g_autoptr(Answer) nobody =
    signed_request(f, alice, NULL, "GET", "/v1/users/nobody/devices", NULL, 0);
  HARK_REQUIRE(check_error(nobody, 404, "unknown-user"));
  g_autoptr(Answer) unsigned_one = get(f, "/v1/users/bob/devices");
  HARK_REQUIRE(check_error(unsigned_one, 401, "unauthenticated"));

  /* An hour and a bit later the phone's certificate has expired, but the phone is still
   * bob's (offline, not revoked): it is listed, so messages can be held for it... */
  HARK_REQUIRE(advance_clock(f, 3600 + 301));
  g_autoptr(Answer) again = login(f, carol, "Carol", PASSWORD);
  HARK_REQUIRE(check_ok(again, 200));
  g_autoptr(Answer) expired =
    signed_request(f, carol, NULL, "GET", "/v1/users/bob/devices", NULL, 0);
  HARK_REQUIRE(check_ok(expired, 200));
  g_assert_cmpuint(devices_listed(expired), ==, 1);
  /* ... until it has been away longer than the hold (30 days): then no device. */
  HARK_REQUIRE(advance_clock(f, 30 * 24 * 3600));
  g_autoptr(Answer) later = login(f, carol, "Carol", PASSWORD);
  HARK_REQUIRE(check_ok(later, 200));
  g_autoptr(Answer) gone = signed_request(f, carol, NULL, "GET", "/v1/users/bob/devices", NULL, 0);
  HARK_REQUIRE(check_ok(gone, 200));
  g_assert_cmpuint(devices_listed(gone), ==, 0);
}

/* With the test clock and small message quotas. */
static void
fixture_set_up_message_quotas(Fixture *f, gconstpointer data)
{
  f->hash_settings = TEST_HASH " messages = { device_max_messages = 2; sender_max_messages = 3; };";
  fixture_set_up_test_clock(f, data);
}

static void
add_message_quotas(const char *store, const char *name, void (*test)(Fixture *, gconstpointer))
{
  g_autofree char *path = g_strdup_printf("/loginsrv/%s/%s", store, name);
  hark_test_add_isolated(path, Fixture, store, fixture_set_up_message_quotas, test,
                         fixture_tear_down);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void
add(const char *store, const char *name, void (*test)(Fixture *, gconstpointer))
{
  g_autofree char *path = g_strdup_printf("/loginsrv/%s/%s", store, name);
  hark_test_add_isolated(path, Fixture, store, fixture_set_up, test, fixture_tear_down);
}

/* A case that moves the server's clock rather than waiting for it. */
static void
add_clocked(const char *store, const char *name, void (*test)(Fixture *, gconstpointer))
{
  g_autofree char *path = g_strdup_printf("/loginsrv/%s/%s", store, name);
  hark_test_add_isolated(path, Fixture, store, fixture_set_up_test_clock, test, fixture_tear_down);
}

/* With the test clock, at most 2 pending requests per account and 150 signed look-ups a
 * minute per source. */
static void
fixture_set_up_small_limits(Fixture *f, gconstpointer data)
{
  f->hash_settings = TEST_HASH " max_pending_requests = 2; signed_lookups_per_minute = 150;";
  fixture_set_up_test_clock(f, data);
}

static void
add_limited(const char *store, const char *name, void (*test)(Fixture *, gconstpointer))
{
  g_autofree char *path = g_strdup_printf("/loginsrv/%s/%s", store, name);
  hark_test_add_isolated(path, Fixture, store, fixture_set_up_small_limits, test,
                         fixture_tear_down);
}

static void
add_all(const char *store)
{
  add(store, "register", test_register);
  add(store, "bad-names", test_bad_names);
  add(store, "weak-password", test_weak_password);
  add(store, "login", test_login);
  add_clocked(store, "login-proof", test_login_proof);
  add(store, "login-buddies", test_login_buddies_in_answer);
  add(store, "login-failures", test_login_failures);
  add_clocked(store, "lockout", test_lockout);
  add_clocked(store, "lockout-per-source", test_lockout_per_source);
  add(store, "idle-connections", test_idle_connections);
  add(store, "keep-alive", test_keep_alive);
  add(store, "keep-alive-bounds", test_keep_alive_bounds);
  add(store, "keep-alive-tunnelled", test_keep_alive_tunnelled);
  add(store, "tunnel-origin", test_tunnel_origin);
  add(store, "device-names", test_device_names);
  add(store, "lookups-limited", test_lookups_limited);
  add_limited(store, "lookups-per-account", test_lookups_per_account);
  add_clocked(store, "address-limit", test_address_limit);
  add(store, "password", test_password_change);
  add(store, "delete", test_delete);
  add(store, "buddies", test_buddies);
  add(store, "buddies-bad", test_buddies_bad_changes);
  add(store, "signed-refused", test_signed_refused);
  add(store, "renew", test_renew);
  add(store, "signed-replay", test_signed_replay);
  add(store, "reregistered-name", test_reregistered_name);
  add(store, "devices", test_devices);
  add(store, "password-revokes-others", test_password_revokes_others);
  add(store, "users", test_users);
  add(store, "registrations-limited", test_registrations_limited);
  add(store, "version", test_version_and_routes);
  add(store, "bad-input", test_bad_input);
  add(store, "restart", test_restart_keeps_everything);
  add(store, "contact-accept", test_contact_request_accept);
  add_clocked(store, "contact-decline", test_contact_request_decline);
  add_clocked(store, "contact-block", test_contact_block);
  add_limited(store, "contact-limits", test_contact_limits);
  add_clocked(store, "users-last-seen", test_users_last_seen);
  add_message_quotas(store, "messages-hold-fetch-ack", test_messages_hold_fetch_ack);
  add_message_quotas(store, "messages-refused", test_messages_refused);
  add_message_quotas(store, "messages-quotas", test_messages_quotas);
  add_message_quotas(store, "messages-expiry", test_messages_expiry);
  add_clocked(store, "user-devices", test_user_devices);
}

int
main(int argc, char **argv)
{
  /* A case in a process of its own: a crash or a hang costs that case only. */
  hark_test_init_isolated(&argc, &argv, 90000);
  g_test_set_nonfatal_assertions();
  add_all("sqlite");
  add("sqlite", "tls-versions", test_tls_versions);
  hark_test_add_isolated("/loginsrv/sqlite/unknown-user-timing", Fixture, "sqlite",
                         fixture_set_up_slow_hash, test_unknown_user_timing, fixture_tear_down);
  if (g_getenv("HARK_TEST_PG_CONNINFO") != NULL)
    add_all("postgres");
  return g_test_run();
}
