/* test-loginclient.c: the node's login client (core/login.c) against the fake login
 * server (tests/common/fake-login.h), in this process: it refuses a server whose TLS
 * certificate is from another CA, is a device's, names another host or has expired,
 * before any request is sent; every kind of bad answer to a login (malformed JSON,
 * missing fields, wrong types, an error body, 500, a body over the 4 MiB limit, a
 * truncated body, a closed connection) is a clear error that changes nothing on disk; and
 * a failing renewal keeps the certificate while it is valid, says why, tries again, and
 * ends the login only when the server refuses the device (401 unauthenticated) or the
 * certificate has expired. */
#include <hark/hark.h>

#include <glib/gstdio.h>
#include <string.h>

#include "fake-login.h"
#include "hark-private.h"
#include "login.h"
#include "test-isolate.h"
#include "test-wait.h"

#define USER "alice"
#define PASSWORD "correct horse battery"
#define ACCOUNT_ID "00112233445566778899aabbccddeeff"
/* Bounds of the main-loop runs: a login on loopback takes milliseconds. */
#define ANSWER_BOUND_MS 5000
/* A saved certificate this close to its end is renewed after 1 s, then retried. */
#define SHORT_LIFE_SECONDS 3

typedef struct {
  HarkFakeLogin *fake;
  char *state_dir;
  char *certificate_path;
  HarkIdentity *identity;
  HarkNode *node;
  HarkLoginClient *client;
  gboolean done;
  JsonObject *result;
  GError *error;
} Fixture;

/* Everything logged, to check what the client says (a writer can be set only once). */
static GString *logged;

static GLogWriterOutput
record_log(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal(fields[i].key, "MESSAGE") && fields[i].length < 0)
      g_string_append_printf(logged, "%s\n", (const char *)fields[i].value);
  return g_log_writer_default(level, fields, n_fields, data);
}

typedef gboolean (*Condition)(Fixture *f);

typedef struct {
  Fixture *f;
  Condition condition;
} Until;

static gboolean
until_holds(gpointer data)
{
  const Until *until = data;
  return until->condition(until->f);
}

/* Runs the main loop until condition holds, within bound_ms (scaled); whether it holds. */
static gboolean
run_until(Fixture *f, Condition condition, guint bound_ms)
{
  Until until = { f, condition };
  return hark_test_wait_for(until_holds, &until, bound_ms);
}

static char *
saved_certificate(Fixture *f)
{
  char *text = NULL;
  return g_file_get_contents(f->certificate_path, &text, NULL, NULL) ? text : NULL;
}

/* The client of a node with nothing but a login section, for the fake. */
static void
start_client(Fixture *f)
{
  g_autofree char *text =
    g_strdup_printf("node = { name = \"phone\"; state_dir = \"%s\"; };\n"
                    "login = { url = \"%s\"; ca = \"%s\"; renew_margin = 60; };\n",
                    f->state_dir, hark_fake_login_url(f->fake), hark_fake_login_ca_path(f->fake));
  g_autoptr(GError) error = NULL;
  HarkConfig *config = hark_config_load_from_string(text, "loginclient.conf", &error);
  g_assert_no_error(error);
  f->node = hark_node_new(config);
  f->client = hark_login_client_new(f->node->core_ctx, f->node->config, f->identity, &error);
  g_assert_no_error(error);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->fake = hark_fake_login_new(GPOINTER_TO_INT(data), &error);
  g_assert_no_error(error);
  f->state_dir = g_build_filename(hark_fake_login_dir(f->fake), "state", NULL);
  g_assert_cmpint(g_mkdir(f->state_dir, 0700), ==, 0);
  f->certificate_path = g_build_filename(f->state_dir, "certificate.pem", NULL);
  g_autofree char *key_path = g_build_filename(f->state_dir, "identity.pem", NULL);
  f->identity = hark_identity_load_or_create(key_path, NULL, &error);
  g_assert_no_error(error);
  g_string_truncate(logged, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  hark_login_client_free(f->client);
  hark_node_free(f->node);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  hark_fake_login_free(f->fake);
  hark_identity_free(f->identity);
  g_clear_pointer(&f->result, json_object_unref);
  g_clear_error(&f->error);
  g_free(f->state_dir);
  g_free(f->certificate_path);
}

static void
on_done(JsonObject *result, GError *error, gpointer data)
{
  Fixture *f = data;
  g_clear_pointer(&f->result, json_object_unref);
  g_clear_error(&f->error);
  f->result = result;
  f->error = error;
  f->done = TRUE;
}

static gboolean
is_done(Fixture *f)
{
  return f->done;
}

static void
login(Fixture *f)
{
  f->done = FALSE;
  hark_login_client_login(f->client, USER, PASSWORD, on_done, f);
  g_assert_true(run_until(f, is_done, ANSWER_BOUND_MS));
}

static const char *
logged_in_user(Fixture *f)
{
  static char user[64];
  g_autoptr(JsonObject) snapshot = hark_login_client_snapshot(f->client);
  const char *name = json_object_get_string_member_with_default(snapshot, "user", NULL);
  if (name == NULL)
    return NULL;
  g_strlcpy(user, name, sizeof user);
  return user;
}

/* The error is of that code and says `says`; the password is never in it. */
static void
assert_error(Fixture *f, HarkLoginError code, const char *says)
{
  g_assert_null(f->result);
  g_assert_nonnull(f->error);
  g_test_message("error: %s", f->error->message);
  g_assert_error(f->error, HARK_LOGIN_ERROR, (gint)code);
  g_assert_nonnull(strstr(f->error->message, says));
  g_assert_null(strstr(f->error->message, PASSWORD));
}

/* ---- the fake works ---------------------------------------------------------------- */

static void
test_login(Fixture *f, gconstpointer data)
{
  start_client(f);
  login(f);
  g_assert_no_error(f->error);
  g_assert_cmpstr(logged_in_user(f), ==, USER);
  g_autofree char *saved = saved_certificate(f);
  g_assert_nonnull(saved);
  g_assert_cmpuint(hark_fake_login_requests(f->fake, "/v1/nonce"), ==, 1);
  g_assert_cmpuint(hark_fake_login_requests(f->fake, "/v1/login"), ==, 1);
}

/* As in `hark run` (hark_tls_prepare): the login works, and GIO's default database, which
 * libsoup's connections consult while they are made, is not the system's trust store (a
 * store of every CA, about 7 MiB of heap for as long as the node runs): a root CA the
 * system trusts is unknown to it. */
static void
test_login_tls_prepared(Fixture *f, gconstpointer data)
{
  hark_tls_prepare();
  test_login(f, data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) root =
    g_tls_certificate_new_from_file("/etc/ssl/certs/ca-certificates.crt", &error);
  if (root == NULL) {
    g_test_skip("no system trust store to compare with");
    return;
  }
  g_autoptr(GTlsDatabase) database =
    g_tls_backend_get_default_database(g_tls_backend_get_default());
  GTlsCertificateFlags flags =
    g_tls_database_verify_chain(database, root, G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER, NULL,
                                NULL, G_TLS_DATABASE_VERIFY_NONE, NULL, NULL);
  g_assert_cmpint(flags & G_TLS_CERTIFICATE_UNKNOWN_CA, !=, 0);
}

/* ---- the server's certificate ------------------------------------------------------ */

typedef struct {
  HarkFakeTls tls;
  const char *says;
} TlsCase;

static const TlsCase tls_cases[] = {
  { HARK_FAKE_TLS_OTHER_CA, "not issued by the CA in login.ca" },
  { HARK_FAKE_TLS_DEVICE, "it is a device certificate" },
  { HARK_FAKE_TLS_WRONG_NAME, "not for the host in login.url" },
  { HARK_FAKE_TLS_EXPIRED, "has expired or is not valid yet" },
};

static void
test_tls_refused(Fixture *f, gconstpointer data)
{
  start_client(f);
  login(f);
  const TlsCase *c = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(tls_cases); i++)
    if ((gint)tls_cases[i].tls == GPOINTER_TO_INT(data))
      c = &tls_cases[i];
  assert_error(f, HARK_LOGIN_ERROR_UNREACHABLE, c->says);
  /* Refused in the handshake: not even the nonce was asked for, no password sent. */
  g_assert_cmpuint(hark_fake_login_requests(f->fake, "/v1/nonce"), ==, 0);
  g_assert_cmpuint(hark_fake_login_requests(f->fake, "/v1/login"), ==, 0);
  g_assert_null(logged_in_user(f));
  g_assert_false(g_file_test(f->certificate_path, G_FILE_TEST_EXISTS));
}

/* ---- bad answers ------------------------------------------------------------------- */

typedef struct {
  const char *name;
  HarkFakeAnswer answer;
  HarkLoginError error;
  const char *says;
} BadAnswer;

static const BadAnswer bad_answers[] = {
  { "malformed-json",
    { HARK_FAKE_REPLY, 200, "{\"certificate\": \"-----BEGIN" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "answered HTTP 200 OK, which is not a hark answer" },
  { "not-an-object",
    { HARK_FAKE_REPLY, 200, "[1, 2, 3]" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "not a hark answer" },
  { "missing-fields",
    { HARK_FAKE_REPLY, 200, "{\"user\": \"alice\"}" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "has no certificate or no buddy list" },
  { "wrong-types",
    { HARK_FAKE_REPLY, 200, "{\"certificate\": 42, \"buddies\": [\"x\"]}" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "has no certificate or no buddy list" },
  { "not-a-certificate",
    { HARK_FAKE_REPLY, 200,
      "{\"certificate\": \"hello\", "
      "\"buddies\": {\"revision\": 1, \"buddies\": []}}" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "does not check out against the CA in login.ca" },
  { "bad-buddies",
    { HARK_FAKE_REPLY, 200,
      "{\"certificate\": \"x\", "
      "\"buddies\": {\"revision\": \"1\", \"buddies\": []}}" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "buddy list without revision or buddies" },
  /* json-glib makes bytes that are not UTF-8 of an escaped lone surrogate: they must not
   * reach the buddy list, buddies.json, the events or a ctl client. */
  { "lone-surrogate",
    { HARK_FAKE_REPLY, 200,
      "{\"certificate\": \"x\", \"buddies\": {\"revision\": 1, "
      "\"buddies\": [{\"name\": \"bob\", \"alias\": \"\\ud800\\n\"}]}}" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "answered HTTP 200 OK, which is not a hark answer" },
  { "error-body",
    { HARK_FAKE_REPLY, 403, "{\"error\": {\"code\": \"wrong-credentials\", \"message\": \"no\"}}" },
    HARK_LOGIN_ERROR_WRONG_PASSWORD,
    "wrong password for user 'alice'" },
  { "unknown-error-code",
    { HARK_FAKE_REPLY, 418, "{\"error\": {\"code\": \"teapot\", \"message\": \"I am one\"}}" },
    HARK_LOGIN_ERROR_SERVER,
    "the login server refused: I am one (teapot)" },
  { "status-500",
    { HARK_FAKE_REPLY, 500, "<html>Internal Server Error</html>" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "answered HTTP 500 Internal Server Error" },
  { "empty-200",
    { HARK_FAKE_REPLY, 200, "" },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "answered HTTP 200 OK, which is not a hark answer" },
  /* Under the client's limit of 4 MiB: read, and found wanting. */
  { "large-body",
    { HARK_FAKE_HUGE, .size = 3 << 20 },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "has no certificate or no buddy list" },
  /* Over it: refused before it is all read. */
  { "huge-body",
    { HARK_FAKE_HUGE, .size = 64 << 20 },
    HARK_LOGIN_ERROR_BAD_ANSWER,
    "sent an answer of more than 4194304 bytes" },
  { "truncated-body",
    { HARK_FAKE_TRUNCATED, .body = "{\"certificate\": \"-----BEGIN" },
    HARK_LOGIN_ERROR_UNREACHABLE,
    "cannot reach the login server" },
  { "closed-connection",
    { HARK_FAKE_CLOSE },
    HARK_LOGIN_ERROR_UNREACHABLE,
    "cannot reach the login server" },
};

/* Logged in once, then a second login meets the bad answer: the error is clear and the
 * device keeps its certificate and list, on disk and in memory. */
static void
test_bad_answer(Fixture *f, gconstpointer data)
{
  const BadAnswer *c = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(bad_answers); i++)
    if (g_str_has_suffix(g_test_get_path(), bad_answers[i].name))
      c = &bad_answers[i];
  g_assert_nonnull(c);
  start_client(f);
  login(f);
  g_assert_no_error(f->error);
  g_autofree char *before = saved_certificate(f);
  g_autofree char *buddies_path = g_build_filename(f->state_dir, "buddies.json", NULL);
  g_autofree char *buddies_before = NULL;
  g_assert_true(g_file_get_contents(buddies_path, &buddies_before, NULL, NULL));

  hark_fake_login_script(f->fake, "/v1/login", &c->answer);
  login(f);
  assert_error(f, c->error, c->says);
  g_assert_cmpuint(hark_fake_login_requests(f->fake, "/v1/login"), ==, 2);
  g_autofree char *after = saved_certificate(f);
  g_assert_cmpstr(after, ==, before);
  g_autofree char *buddies_after = NULL;
  g_assert_true(g_file_get_contents(buddies_path, &buddies_after, NULL, NULL));
  g_assert_cmpstr(buddies_after, ==, buddies_before);
  g_assert_cmpstr(logged_in_user(f), ==, USER);
}

/* A certificate of the right CA for another device's key. */
static void
test_certificate_for_another_key(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *other_path = g_build_filename(hark_fake_login_dir(f->fake), "other.pem", NULL);
  g_autoptr(HarkIdentity) other = hark_identity_load_or_create(other_path, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *other_key = hark_identity_get_public_pem(other);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *pem = hark_ca_issue_device(hark_fake_login_ca(f->fake), USER, ACCOUNT_ID,
                                              other_key, now - 60, 3600, &error);
  g_assert_no_error(error);
  g_autoptr(JsonObject) answer = json_object_new();
  json_object_set_string_member(answer, "certificate", pem);
  JsonObject *list = json_object_new();
  json_object_set_int_member(list, "revision", 1);
  json_object_set_array_member(list, "buddies", json_array_new());
  json_object_set_object_member(answer, "buddies", list);
  g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), answer);
  g_autofree char *body = json_to_string(node, FALSE);
  hark_fake_login_script(f->fake, "/v1/login", &(HarkFakeAnswer){ HARK_FAKE_REPLY, 200, body });
  start_client(f);
  login(f);
  assert_error(f, HARK_LOGIN_ERROR_BAD_ANSWER, "does not bind this device's key");
  g_assert_null(logged_in_user(f));
  g_assert_false(g_file_test(f->certificate_path, G_FILE_TEST_EXISTS));
}

/* The server never answers and the node stops: the login is answered "cancelled" at
 * once, not after the request's 15 s timeout, and the late end of the request is safe. */
static gboolean
nonce_asked(Fixture *f)
{
  return hark_fake_login_requests(f->fake, "/v1/nonce") >= 1;
}

static void
test_hang_then_stop(Fixture *f, gconstpointer data)
{
  hark_fake_login_script(f->fake, "/v1/nonce", &(HarkFakeAnswer){ HARK_FAKE_HANG });
  start_client(f);
  hark_login_client_login(f->client, USER, PASSWORD, on_done, f);
  g_assert_true(run_until(f, nonce_asked, ANSWER_BOUND_MS));
  g_assert_false(f->done);
  g_clear_pointer(&f->client, hark_login_client_free);
  g_assert_true(f->done);
  g_assert_error(f->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false(g_file_test(f->certificate_path, G_FILE_TEST_EXISTS));
}

/* ---- renewal ----------------------------------------------------------------------- */

/* A saved certificate that ends in SHORT_LIFE_SECONDS: the client renews it after 1 s
 * (half of what is left: renew_margin is longer than that) and retries 2 s later. */
static void
start_with_short_certificate(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *public_pem = hark_identity_get_public_pem(f->identity);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  /* Scaled like every bound: under a sanitizer and load, the first renewal's round trip
   * must not outlast the certificate it renews. */
  gint64 life = hark_test_timeout(SHORT_LIFE_SECONDS * 1000) / 1000;
  g_autofree char *pem = hark_ca_issue_device(hark_fake_login_ca(f->fake), USER, ACCOUNT_ID,
                                              public_pem, now - 60, 60 + life, &error);
  g_assert_no_error(error);
  g_assert_true(
    g_file_set_contents_full(f->certificate_path, pem, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error));
  start_client(f);
  g_assert_cmpstr(logged_in_user(f), ==, USER);
}

static gboolean
renewal_asked(Fixture *f)
{
  return hark_fake_login_requests(f->fake, "/v1/renew") >= 1;
}

static gboolean
renewal_asked_again(Fixture *f)
{
  return hark_fake_login_requests(f->fake, "/v1/renew") >= 2;
}

static gboolean
logged_out(Fixture *f)
{
  return logged_in_user(f) == NULL;
}

static gboolean
renewal_logged(Fixture *f)
{
  return strstr(logged->str, "certificate renewed until") != NULL;
}

static gboolean
renewal_failed(Fixture *f)
{
  return strstr(logged->str, "renewing the certificate failed") != NULL;
}

static void
test_renewal_works(Fixture *f, gconstpointer data)
{
  start_with_short_certificate(f);
  g_autofree char *before = saved_certificate(f);
  g_assert_true(run_until(f, renewal_asked, ANSWER_BOUND_MS));
  g_assert_true(run_until(f, renewal_logged, ANSWER_BOUND_MS));
  g_autofree char *after = saved_certificate(f);
  g_assert_nonnull(after);
  g_assert_cmpstr(after, !=, before);
  g_assert_cmpstr(logged_in_user(f), ==, USER);
}

/* 401 unauthenticated: the device was revoked; renewing again will not help, the login
 * ends at once (certificate removed), without waiting for the expiry. */
static void
test_renewal_unauthenticated(Fixture *f, gconstpointer data)
{
  hark_fake_login_script(
    f->fake, "/v1/renew",
    &(HarkFakeAnswer){
      HARK_FAKE_REPLY, 401,
      "{\"error\": {\"code\": \"unauthenticated\", \"message\": \"device revoked\"}}" });
  start_with_short_certificate(f);
  g_assert_true(run_until(f, logged_out, ANSWER_BOUND_MS));
  g_assert_cmpuint(hark_fake_login_requests(f->fake, "/v1/renew"), ==, 1);
  g_assert_false(g_file_test(f->certificate_path, G_FILE_TEST_EXISTS));
  g_assert_nonnull(strstr(logged->str, "the login server refused this device's certificate "
                                       "(device revoked)"));
}

/* Any other failure: the certificate is kept while it is valid, the failure is logged,
 * the renewal is tried again; only the expiry ends the login. */
static void
renewal_fails(Fixture *f, const HarkFakeAnswer *answer)
{
  hark_fake_login_script(f->fake, "/v1/renew", answer);
  start_with_short_certificate(f);
  g_autofree char *before = saved_certificate(f);
  g_assert_true(run_until(f, renewal_failed, ANSWER_BOUND_MS));
  g_assert_cmpstr(logged_in_user(f), ==, USER);
  g_autofree char *kept = saved_certificate(f);
  g_assert_cmpstr(kept, ==, before);
  g_assert_nonnull(strstr(logged->str, "trying again in"));
  g_assert_true(run_until(f, renewal_asked_again, ANSWER_BOUND_MS));
  g_assert_true(run_until(f, logged_out, ANSWER_BOUND_MS));
  g_assert_nonnull(strstr(logged->str, "the certificate expired and could not be renewed"));
  g_assert_false(g_file_test(f->certificate_path, G_FILE_TEST_EXISTS));
}

static void
test_renewal_500(Fixture *f, gconstpointer data)
{
  renewal_fails(
    f, &(HarkFakeAnswer){ HARK_FAKE_REPLY, 500,
                          "{\"error\": {\"code\": \"internal\", \"message\": \"db down\"}}" });
}

static void
test_renewal_closed(Fixture *f, gconstpointer data)
{
  renewal_fails(f, &(HarkFakeAnswer){ HARK_FAKE_CLOSE });
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
  logged = g_string_new(NULL);
  g_log_set_writer_func(record_log, NULL, NULL);
#define ADD(path, tls, fn) \
  hark_test_add_isolated(path, Fixture, GINT_TO_POINTER(tls), fixture_set_up, fn, fixture_tear_down)
  ADD("/loginclient/login", HARK_FAKE_TLS_SERVER, test_login);
  ADD("/loginclient/login/tls-prepared", HARK_FAKE_TLS_SERVER, test_login_tls_prepared);
  ADD("/loginclient/tls/other-ca", HARK_FAKE_TLS_OTHER_CA, test_tls_refused);
  ADD("/loginclient/tls/device-certificate", HARK_FAKE_TLS_DEVICE, test_tls_refused);
  ADD("/loginclient/tls/wrong-name", HARK_FAKE_TLS_WRONG_NAME, test_tls_refused);
  ADD("/loginclient/tls/expired", HARK_FAKE_TLS_EXPIRED, test_tls_refused);
  for (gsize i = 0; i < G_N_ELEMENTS(bad_answers); i++) {
    g_autofree char *path = g_strconcat("/loginclient/bad-answer/", bad_answers[i].name, NULL);
    ADD(path, HARK_FAKE_TLS_SERVER, test_bad_answer);
  }
  ADD("/loginclient/bad-answer/certificate-for-another-key", HARK_FAKE_TLS_SERVER,
      test_certificate_for_another_key);
  ADD("/loginclient/hang-then-stop", HARK_FAKE_TLS_SERVER, test_hang_then_stop);
  ADD("/loginclient/renewal/works", HARK_FAKE_TLS_SERVER, test_renewal_works);
  ADD("/loginclient/renewal/unauthenticated", HARK_FAKE_TLS_SERVER, test_renewal_unauthenticated);
  ADD("/loginclient/renewal/status-500", HARK_FAKE_TLS_SERVER, test_renewal_500);
  ADD("/loginclient/renewal/closed-connection", HARK_FAKE_TLS_SERVER, test_renewal_closed);
  return g_test_run();
}
