/* fake-login.c: see fake-login.h. The certificates come from hark's own CA code
 * (core/certificate.c), but for the expired one, which that code never makes: it is
 * built here with OpenSSL and signed with the fake's CA key. */
#include "fake-login.h"

#include "test-files.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#define ACCOUNT_ID "00112233445566778899aabbccddeeff"
#define DAY (24 * 3600)

typedef struct {
  HarkFakeAnswerKind kind;
  guint status;
  char *body;
  gsize size;
} Script;

struct _HarkFakeLogin {
  char *dir;
  char *ca_dir;
  HarkCa *ca, *other_ca;
  char *ca_path;
  char *url;
  SoupServer *server;
  GHashTable *scripts; /* path -> Script* */
  GHashTable *requests; /* path -> count */
  GPtrArray *hung; /* SoupServerMessage*, paused */
  gint64 lifetime;
};

static gint64
now_seconds(void)
{
  return g_get_real_time() / G_USEC_PER_SEC;
}

static void
script_free(gpointer data)
{
  Script *script = data;
  g_free(script->body);
  g_free(script);
}

/* ---- answers ---------------------------------------------------------------------- */

static void
reply_json(SoupServerMessage *msg, guint status, JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(node, object);
  char *text = json_to_string(node, FALSE);
  soup_server_message_set_status(msg, status, NULL);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, text, strlen(text));
}

static void
reply_error(SoupServerMessage *msg, guint status, const char *code, const char *message)
{
  g_autoptr(JsonObject) refusal = json_object_new();
  json_object_set_string_member(refusal, "code", code);
  json_object_set_string_member(refusal, "message", message);
  g_autoptr(JsonObject) answer = json_object_new();
  json_object_set_object_member(answer, "error", json_object_ref(refusal));
  reply_json(msg, status, answer);
}

static JsonObject *
request_object(SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  g_autoptr(JsonParser) parser = json_parser_new();
  if (body->length == 0 ||
      !json_parser_load_from_data(parser, body->data, (gssize)body->length, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  return JSON_NODE_HOLDS_OBJECT(root) ? json_object_ref(json_node_get_object(root)) : NULL;
}

static void
serve_nonce(HarkFakeLogin *fake, SoupServerMessage *msg)
{
  g_autofree char *nonce = hark_ca_make_nonce(fake->ca, now_seconds());
  g_autoptr(JsonObject) answer = json_object_new();
  json_object_set_string_member(answer, "nonce", nonce);
  reply_json(msg, SOUP_STATUS_OK, answer);
}

static void
reply_certificate(HarkFakeLogin *fake, SoupServerMessage *msg, const char *user,
                  const char *public_pem, gboolean with_buddies)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *pem = hark_ca_issue_device(fake->ca, user, ACCOUNT_ID, public_pem,
                                              now_seconds() - 60, fake->lifetime + 60, &error);
  if (pem == NULL) {
    reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", error->message);
    return;
  }
  g_autoptr(JsonObject) answer = json_object_new();
  json_object_set_string_member(answer, "user", user);
  json_object_set_string_member(answer, "certificate", pem);
  if (with_buddies) {
    JsonObject *buddies = json_object_new();
    json_object_set_int_member(buddies, "revision", 1);
    json_object_set_array_member(buddies, "buddies", json_array_new());
    json_object_set_object_member(answer, "buddies", buddies);
  }
  reply_json(msg, SOUP_STATUS_OK, answer);
}

static void
serve_login(HarkFakeLogin *fake, SoupServerMessage *msg)
{
  g_autoptr(JsonObject) body = request_object(msg);
  const char *user =
    body != NULL ? json_object_get_string_member_with_default(body, "user", NULL) : NULL;
  const char *key =
    body != NULL ? json_object_get_string_member_with_default(body, "public_key", NULL) : NULL;
  if (user == NULL || key == NULL) {
    reply_error(msg, SOUP_STATUS_BAD_REQUEST, "bad-request", "no user or public_key");
    return;
  }
  reply_certificate(fake, msg, user, key, TRUE);
}

/* The raw Ed25519 key as a SubjectPublicKeyInfo PEM, what hark_ca_issue_device takes. */
static char *
public_pem_of(GBytes *raw)
{
  gsize size;
  const guint8 *data = g_bytes_get_data(raw, &size);
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, data, size);
  BIO *bio = BIO_new(BIO_s_mem());
  char *pem = NULL;
  if (key != NULL && bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1) {
    char *text = NULL;
    long length = BIO_get_mem_data(bio, &text);
    pem = g_strndup(text, (gsize)length);
  }
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

/* A new certificate for whoever the Hark-Certificate header names (not checked further). */
static void
serve_renew(HarkFakeLogin *fake, SoupServerMessage *msg)
{
  const char *header =
    soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Hark-Certificate");
  gsize size = 0;
  g_autofree guint8 *der = header != NULL ? g_base64_decode(header, &size) : NULL;
  g_autoptr(GBytes) bytes = g_bytes_new(der, size);
  g_autoptr(HarkDeviceCertificate) cert =
    size > 0
      ? hark_certificate_verify(hark_ca_get_certificate_pem(fake->ca), bytes, now_seconds(), NULL)
      : NULL;
  g_autofree char *public_pem = cert != NULL ? public_pem_of(cert->public_key) : NULL;
  if (public_pem == NULL) {
    reply_error(msg, SOUP_STATUS_UNAUTHORIZED, "unauthenticated", "no valid certificate");
    return;
  }
  reply_certificate(fake, msg, cert->user, public_pem, FALSE);
}

/* Takes the connection from libsoup and writes `raw` (may be NULL) on it, then closes it. */
static void
answer_raw(SoupServerMessage *msg, const char *raw)
{
  g_autoptr(GIOStream) stream = soup_server_message_steal_connection(msg);
  if (stream == NULL)
    return;
  if (raw != NULL)
    g_output_stream_write_all(g_io_stream_get_output_stream(stream), raw, strlen(raw), NULL, NULL,
                              NULL);
  g_io_stream_close(stream, NULL, NULL);
}

static void
serve_script(HarkFakeLogin *fake, SoupServerMessage *msg, const Script *script)
{
  switch (script->kind) {
  case HARK_FAKE_REPLY:
    soup_server_message_set_status(msg, script->status, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY,
                                     script->body != NULL ? script->body : "",
                                     script->body != NULL ? strlen(script->body) : 0);
    break;
  case HARK_FAKE_CLOSE:
    answer_raw(msg, NULL);
    break;
  case HARK_FAKE_HANG:
    soup_server_message_pause(msg);
    g_ptr_array_add(fake->hung, g_object_ref(msg));
    break;
  case HARK_FAKE_TRUNCATED: {
    const char *body = script->body != NULL ? script->body : "";
    g_autofree char *raw = g_strdup_printf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                           "Content-Length: %zu\r\n\r\n%s",
                                           strlen(body) + 1000, body);
    answer_raw(msg, raw);
    break;
  }
  case HARK_FAKE_HUGE: {
    gsize size = MAX(script->size, 16);
    char *body = g_malloc(size);
    memset(body, 'x', size);
    memcpy(body, "{\"pad\":\"", 8);
    memcpy(body + size - 2, "\"}", 2);
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, body, size);
    break;
  }
  }
}

static void
on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer data)
{
  HarkFakeLogin *fake = data;
  guint count = GPOINTER_TO_UINT(g_hash_table_lookup(fake->requests, path));
  g_hash_table_insert(fake->requests, g_strdup(path), GUINT_TO_POINTER(count + 1));
  const Script *script = g_hash_table_lookup(fake->scripts, path);
  if (script != NULL)
    serve_script(fake, msg, script);
  else if (g_str_equal(path, "/v1/nonce"))
    serve_nonce(fake, msg);
  else if (g_str_equal(path, "/v1/login"))
    serve_login(fake, msg);
  else if (g_str_equal(path, "/v1/renew"))
    serve_renew(fake, msg);
  else
    reply_error(msg, SOUP_STATUS_NOT_FOUND, "not-found", "the fake serves no such path");
}

/* ---- certificates ----------------------------------------------------------------- */

static char *
read_text(const char *dir, const char *name, GError **error)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  char *text = NULL;
  return g_file_get_contents(path, &text, NULL, error) ? text : NULL;
}

/* A server certificate of ca for hosts, as "certificate + key" PEM. */
static char *
server_pem(HarkFakeLogin *fake, HarkCa *ca, const char *const *hosts, const char *name,
           GError **error)
{
  g_autofree char *cert_name = g_strconcat(name, ".pem", NULL);
  g_autofree char *key_name = g_strconcat(name, "-key.pem", NULL);
  g_autofree char *cert_path = g_build_filename(fake->dir, cert_name, NULL);
  g_autofree char *key_path = g_build_filename(fake->dir, key_name, NULL);
  if (!hark_ca_ensure_server_certificate(ca, hosts, cert_path, key_path, error))
    return NULL;
  g_autofree char *cert = read_text(fake->dir, cert_name, error);
  g_autofree char *key = cert != NULL ? read_text(fake->dir, key_name, error) : NULL;
  return key != NULL ? g_strconcat(cert, key, NULL) : NULL;
}

/* A device certificate (and its Ed25519 key) presented as the server's. */
static char *
device_pem(HarkFakeLogin *fake, GError **error)
{
  g_autofree char *key_path = g_build_filename(fake->dir, "device-identity.pem", NULL);
  g_autoptr(HarkIdentity) identity = hark_identity_load_or_create(key_path, NULL, error);
  if (identity == NULL)
    return NULL;
  g_autofree char *public_pem = hark_identity_get_public_pem(identity);
  g_autofree char *cert = hark_ca_issue_device(fake->ca, "loginhost", ACCOUNT_ID, public_pem,
                                               now_seconds() - 60, DAY, error);
  g_autofree char *key = cert != NULL ? read_text(fake->dir, "device-identity.pem", error) : NULL;
  return key != NULL ? g_strconcat(cert, key, NULL) : NULL;
}

/* A server certificate for 127.0.0.1 that expired yesterday, signed by the fake's CA. */
static char *
expired_pem(HarkFakeLogin *fake, GError **error)
{
  g_autofree char *ca_text = read_text(fake->ca_dir, "ca.pem", error);
  g_autofree char *ca_key_text =
    ca_text != NULL ? read_text(fake->ca_dir, "ca-key.pem", error) : NULL;
  if (ca_key_text == NULL)
    return NULL;
  BIO *bio = BIO_new_mem_buf(ca_text, -1);
  X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  bio = BIO_new_mem_buf(ca_key_text, -1);
  EVP_PKEY *ca_key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = X509_new();
  gint64 now = now_seconds();
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca, cert, NULL, NULL, 0);
  const char *const extensions[] = {
    "basicConstraints",
    "critical,CA:FALSE",
    "keyUsage",
    "critical,digitalSignature",
    "extendedKeyUsage",
    "serverAuth",
    "subjectAltName",
    "IP:127.0.0.1",
    "subjectKeyIdentifier",
    "hash",
    "authorityKeyIdentifier",
    "keyid:always",
    NULL,
  };
  gboolean ok = ca != NULL && ca_key != NULL && key != NULL && cert != NULL &&
                X509_set_version(cert, X509_VERSION_3) == 1 &&
                ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)now) == 1 &&
                X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"127.0.0.1", -1, -1, 0) == 1 &&
                X509_set_issuer_name(cert, X509_get_subject_name(ca)) == 1 &&
                ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)(now - 2 * DAY)) != NULL &&
                ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(now - DAY)) != NULL &&
                X509_set_pubkey(cert, key) == 1;
  for (const char *const *e = extensions; ok && *e != NULL; e += 2) {
    X509_EXTENSION *extension = X509V3_EXT_conf(NULL, &ctx, e[0], e[1]);
    ok = extension != NULL && X509_add_ext(cert, extension, -1) == 1;
    X509_EXTENSION_free(extension);
  }
  ok = ok && X509_sign(cert, ca_key, EVP_sha256()) > 0;
  char *pem = NULL;
  bio = BIO_new(BIO_s_mem());
  if (ok && bio != NULL && PEM_write_bio_X509(bio, cert) == 1 &&
      PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
    char *text = NULL;
    long length = BIO_get_mem_data(bio, &text);
    pem = g_strndup(text, (gsize)length);
  } else {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "fake-login: cannot make the expired certificate");
  }
  BIO_free(bio);
  X509_free(cert);
  X509_free(ca);
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  return pem;
}

static char *
tls_pem(HarkFakeLogin *fake, HarkFakeTls tls, GError **error)
{
  static const char *const loopback[] = { "127.0.0.1", NULL };
  static const char *const elsewhere[] = { "login.example", NULL };
  switch (tls) {
  case HARK_FAKE_TLS_SERVER:
    return server_pem(fake, fake->ca, loopback, "server", error);
  case HARK_FAKE_TLS_OTHER_CA:
    return server_pem(fake, fake->other_ca, loopback, "other-server", error);
  case HARK_FAKE_TLS_DEVICE:
    return device_pem(fake, error);
  case HARK_FAKE_TLS_WRONG_NAME:
    return server_pem(fake, fake->ca, elsewhere, "wrong-name", error);
  case HARK_FAKE_TLS_EXPIRED:
    return expired_pem(fake, error);
  }
  g_assert_not_reached();
}

/* ---- the fake --------------------------------------------------------------------- */

static gboolean
start(HarkFakeLogin *fake, HarkFakeTls tls, GError **error)
{
  fake->ca_dir = g_build_filename(fake->dir, "ca", NULL);
  g_autofree char *other_dir = g_build_filename(fake->dir, "other-ca", NULL);
  fake->ca = hark_ca_load_or_create(fake->ca_dir, "fake login CA", error);
  if (fake->ca == NULL)
    return FALSE;
  fake->other_ca = hark_ca_load_or_create(other_dir, "another CA", error);
  if (fake->other_ca == NULL)
    return FALSE;
  fake->ca_path = g_build_filename(fake->ca_dir, "ca.pem", NULL);
  g_autofree char *pem = tls_pem(fake, tls, error);
  if (pem == NULL)
    return FALSE;
  g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_pem(pem, -1, error);
  if (certificate == NULL)
    return FALSE;
  fake->server = soup_server_new("tls-certificate", certificate, NULL);
  soup_server_add_handler(fake->server, NULL, on_request, fake, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
  if (!soup_server_listen(fake->server, address, SOUP_SERVER_LISTEN_HTTPS, error))
    return FALSE;
  GSList *uris = soup_server_get_uris(fake->server);
  g_assert_nonnull(uris);
  fake->url = g_strdup_printf("https://127.0.0.1:%d/", g_uri_get_port(uris->data));
  g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
  return TRUE;
}

HarkFakeLogin *
hark_fake_login_new(HarkFakeTls tls, GError **error)
{
  HarkFakeLogin *fake = g_new0(HarkFakeLogin, 1);
  fake->scripts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, script_free);
  fake->requests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  fake->hung = g_ptr_array_new_with_free_func(g_object_unref);
  fake->lifetime = 3600;
  fake->dir = g_dir_make_tmp("hark-fake-login-XXXXXX", error);
  if (fake->dir == NULL || !start(fake, tls, error)) {
    hark_fake_login_free(fake);
    return NULL;
  }
  return fake;
}

void
hark_fake_login_free(HarkFakeLogin *fake)
{
  if (fake == NULL)
    return;
  if (fake->server != NULL) {
    soup_server_disconnect(fake->server);
    g_object_unref(fake->server);
  }
  g_ptr_array_unref(fake->hung);
  g_hash_table_unref(fake->scripts);
  g_hash_table_unref(fake->requests);
  if (fake->ca != NULL)
    hark_ca_free(fake->ca);
  if (fake->other_ca != NULL)
    hark_ca_free(fake->other_ca);
  if (fake->dir != NULL)
    hark_test_remove_tree(fake->dir);
  g_free(fake->dir);
  g_free(fake->ca_dir);
  g_free(fake->ca_path);
  g_free(fake->url);
  g_free(fake);
}

const char *
hark_fake_login_url(HarkFakeLogin *fake)
{
  return fake->url;
}

const char *
hark_fake_login_ca_path(HarkFakeLogin *fake)
{
  return fake->ca_path;
}

HarkCa *
hark_fake_login_ca(HarkFakeLogin *fake)
{
  return fake->ca;
}

const char *
hark_fake_login_dir(HarkFakeLogin *fake)
{
  return fake->dir;
}

void
hark_fake_login_script(HarkFakeLogin *fake, const char *path, const HarkFakeAnswer *answer)
{
  if (answer == NULL) {
    g_hash_table_remove(fake->scripts, path);
    return;
  }
  Script *script = g_new0(Script, 1);
  script->kind = answer->kind;
  script->status = answer->status;
  script->body = g_strdup(answer->body);
  script->size = answer->size;
  g_hash_table_replace(fake->scripts, g_strdup(path), script);
}

void
hark_fake_login_set_lifetime(HarkFakeLogin *fake, gint64 seconds)
{
  fake->lifetime = seconds;
}

guint
hark_fake_login_requests(HarkFakeLogin *fake, const char *path)
{
  return GPOINTER_TO_UINT(g_hash_table_lookup(fake->requests, path));
}
