/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login.c: the node's client of the login server (login.h; the HTTP contract is in
 * docs/protocol.md, "Login server API").
 *
 * One SoupSession talks HTTPS to login.url and trusts only the CA in login.ca. An
 * operation (Op) is a small state machine on the main loop: it sends one request at a
 * time and its step function decides what the answer means (a buddy change that meets a
 * `conflict` fetches the list and tries once more). What the device is given -- its
 * certificate and the buddy list -- is checked against the pinned CA and this device's
 * key, then kept in the state directory (0600) so that a restarted node is logged in
 * without the password, and the certificate is renewed before it expires. */
#include "login.h"

#include "hark/certificate.h"
#include "hark/version.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

G_DEFINE_QUARK(hark-login-error-quark, hark_login_error)

#define REQUEST_TIMEOUT_SECONDS 15
/* A direct request whose TCP connection is not up after this long goes through the super
 * node instead when there is one (a firewall that drops SYNs would otherwise cost the
 * whole REQUEST_TIMEOUT_SECONDS). Nothing has reached the server then, so nothing is
 * sent twice. */
#define DIRECT_CONNECT_PATIENCE_MS 2000
#define CERTIFICATE_FILE "certificate.pem"
#define BUDDIES_FILE "buddies.json"
/* After a failed renewal: 5 s, doubling up to 5 min (never past the expiry). */
#define RETRY_FIRST_SECONDS 5
#define RETRY_MAX_SECONDS 300
/* The largest answer read: certificates and buddy lists are kilobytes. A server that sends
 * more is refused before it fills this process's memory. */
#define MAX_ANSWER_BYTES (4 * 1024 * 1024)
#define READ_CHUNK_BYTES 65536

typedef struct Op Op;

/* What to do with the answer to the request in flight: exactly one of answer (borrowed)
 * and error (taken) is set. Must end the op (op_finish/op_fail) or send its next
 * request. */
typedef void (*OpStep)(Op *op, JsonObject *answer, GError *error);

struct Op {
  HarkLoginClient *client; /* NULL once the client is freed: the late answer is dropped */
  HarkLoginDone done;
  gpointer done_data;
  OpStep step;
  SoupMessage *msg;                /* the request in flight */
  GTlsCertificateFlags tls_errors; /* why the server's TLS certificate was refused */
  guint generation;                /* client->generation when the op began */
  char *user;                      /* whom the request is about, for messages */
  char *password;                  /* a login's, until its nonce comes (wiped) */
  char *buddy_op;
  char *buddy_name;
  char *buddy_alias;
  gboolean retried; /* a buddy change tries again once after a conflict */
  /* The request in flight, to send it again the other way (directly / through the SN). */
  char *method;
  char *path;
  GBytes *body;
  gboolean sign;
  gboolean other_way_tried;
  GCancellable *attempt;  /* of the message in flight, to give up on a direct one */
  guint patience_source;  /* while a direct message has no connection yet */
  gboolean connected;     /* the message in flight has a connection (new or pooled) */
  gint64 sent_at;         /* monotonic, of a direct message */
  gboolean gave_up;       /* attempt was cancelled to go through the super node */
  GInputStream *stream;   /* the answer's body, while it is read */
  GByteArray *answer;     /* what was read of it */
};

struct _HarkLoginClient {
  HarkContext *ctx; /* the core's, for events and the main context */
  HarkIdentity *identity;
  char *url;        /* as configured, for messages */
  char *base;       /* the same without a trailing '/', to append paths to */
  char *ca_path;
  char *ca_pem;     /* the pinned CA: every certificate of ours is checked against it */
  char *device;
  gint64 renew_margin;
  char *certificate_path;
  char *buddies_path;
  GTlsDatabase *trust; /* login-trust.c: the server's certificate only */
  SoupSession *session;
  GCancellable *cancellable;
  GHashTable *ops; /* Op* in flight */

  /* Logged in when user != NULL. */
  char *user;
  char *device_id;
  GBytes *certificate_der; /* for the Hark-Certificate header of signed requests */
  gint64 expires;
  JsonArray *buddies;      /* [{"name", "alias"}]; NULL when not known */
  gint64 revision;         /* of buddies; -1 when not known */
  guint generation;        /* bumped by every login and logout: answers to requests made
                            * for an earlier one are not applied */
  guint renew_source;
  guint retry_seconds;
  HarkLoginChanged changed;
  gpointer changed_data;
  /* The way through the overlay, when the server cannot be reached directly. */
  GProxyResolver *tunnel;
  gboolean (*tunnel_ready)(gpointer data);
  gpointer tunnel_data;
  gboolean via_tunnel; /* the last way that worked went through the tunnel */
};

/* ---- small helpers ---------------------------------------------------------------- */

/* The node's clock (a test moves it: docs/testing.md "Clocks"). */
static gint64
now_seconds(HarkLoginClient *client)
{
  return hark_clock_now_seconds(hark_context_get_clock(client->ctx));
}

static char *
iso_time(gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(unix_seconds);
  return time != NULL ? g_date_time_format_iso8601(time) : g_strdup("?");
}

/* Passwords do not linger in freed memory. */
static void
wipe_free(char *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero(secret, strlen(secret));
  g_free(secret);
}

/* JSON members of the expected type, NULL/FALSE otherwise (answers are not trusted to
 * have the right shape, and json-glib's getters complain loudly about wrong types). */
static const char *
member_string(JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(node);
}

static gboolean
member_int(JsonObject *object, const char *name, gint64 *value)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64)
    return FALSE;
  *value = json_node_get_int(node);
  return TRUE;
}

static JsonObject *
member_object(JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

static char *
json_text(JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(node, object);
  return json_to_string(node, FALSE);
}

/* A request body; it may hold a password, so it is wiped when libsoup lets go of it. */
static GBytes *
json_body(JsonObject *object)
{
  char *text = json_text(object);
  return g_bytes_new_with_free_func(text, strlen(text), (GDestroyNotify)wipe_free, text);
}

static JsonObject *
parse_object(GBytes *bytes)
{
  gsize size;
  const char *data = g_bytes_get_data(bytes, &size);
  g_autoptr(JsonParser) parser = json_parser_new();
  if (size == 0 || !json_parser_load_from_data(parser, data, (gssize)size, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  return root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_object_ref(json_node_get_object(root)) : NULL;
}

/* "8 s", or minutes for longer waits. */
static char *
format_wait(gint64 seconds)
{
  if (seconds < 120)
    return g_strdup_printf("%" G_GINT64_FORMAT " s", MAX(seconds, 1));
  return g_strdup_printf("%" G_GINT64_FORMAT " min", (seconds + 59) / 60);
}

static GError *
not_logged_in_error(void)
{
  return g_error_new_literal(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_NOT_LOGGED_IN,
                             "not logged in (use 'login USER')");
}

/* ---- files in the state directory ------------------------------------------------- */

static gboolean
save_private(const char *path, const char *text, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
    return TRUE;
  g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_IO, "cannot save %s: %s", path,
              local->message);
  return FALSE;
}

static void
remove_file(const char *path)
{
  if (g_unlink(path) != 0 && errno != ENOENT)
    g_warning("cannot remove %s: %s", path, g_strerror(errno));
}

static gboolean
save_buddies(HarkLoginClient *client, GError **error)
{
  g_autoptr(JsonObject) saved = json_object_new();
  json_object_set_string_member(saved, "user", client->user);
  json_object_set_int_member(saved, "revision", client->revision);
  json_object_set_array_member(saved, "buddies", json_array_ref(client->buddies));
  g_autofree char *text = json_text(saved);
  return save_private(client->buddies_path, text, error);
}

/* ---- certificates ----------------------------------------------------------------- */

static GBytes *
pem_to_der(const char *pem, GError **error)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x509 = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  unsigned char *der = NULL;
  int length = x509 != NULL ? i2d_X509(x509, &der) : -1;
  X509_free(x509);
  if (length <= 0) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the certificate is not a PEM X.509 certificate");
    return NULL;
  }
  GBytes *bytes = g_bytes_new(der, (gsize)length);
  OPENSSL_free(der);
  return bytes;
}

/* A certificate is accepted only when the pinned CA issued it, it is valid now, it binds
 * this device's key and (when user is given) it is for that user. */
static HarkDeviceCertificate *
check_certificate(HarkLoginClient *client, const char *pem, const char *user, GError **error)
{
  g_autoptr(GBytes) bytes = g_bytes_new(pem, strlen(pem));
  g_autoptr(GError) local = NULL;
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(client->ca_pem, bytes, now_seconds(client), &local);
  if (cert == NULL) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                "the device certificate does not check out against the CA in login.ca "
                "(%s): %s", client->ca_path, local->message);
    return NULL;
  }
  g_autoptr(GBytes) key = hark_identity_get_public_key(client->identity);
  if (!g_bytes_equal(cert->public_key, key) ||
      g_strcmp0(cert->device_id, hark_identity_get_fingerprint(client->identity)) != 0) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the device certificate does not bind this device's key");
    return NULL;
  }
  if (user != NULL && g_ascii_strcasecmp(cert->user, user) != 0) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                "the device certificate is for user '%s', not '%s'", cert->user, user);
    return NULL;
  }
  return g_steal_pointer(&cert);
}

/* Checks pem (see check_certificate), saves it and makes it this device's. */
static gboolean
take_certificate(HarkLoginClient *client, const char *pem, const char *user, gboolean save,
                 GError **error)
{
  g_autoptr(HarkDeviceCertificate) cert = check_certificate(client, pem, user, error);
  if (cert == NULL)
    return FALSE;
  g_autoptr(GBytes) der = pem_to_der(pem, error);
  if (der == NULL || (save && !save_private(client->certificate_path, pem, error)))
    return FALSE;
  if (g_strcmp0(client->user, cert->user) != 0) {
    g_free(client->user);
    client->user = g_strdup(cert->user);
  }
  g_free(client->device_id);
  client->device_id = g_strdup(cert->device_id);
  g_clear_pointer(&client->certificate_der, g_bytes_unref);
  client->certificate_der = g_steal_pointer(&der);
  client->expires = cert->not_after;
  if (client->changed != NULL)
    client->changed(client->changed_data);
  return TRUE;
}

/* ---- the buddy list --------------------------------------------------------------- */

/* {"revision", "buddies": [{"name", "alias"}]} -> a clean copy, or an error. */
static JsonArray *
read_buddy_list(JsonObject *list, gint64 *revision, GError **error)
{
  JsonNode *node = list != NULL ? json_object_get_member(list, "buddies") : NULL;
  if (!member_int(list, "revision", revision) || node == NULL || !JSON_NODE_HOLDS_ARRAY(node)) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the login server sent a buddy list without revision or buddies");
    return NULL;
  }
  g_autoptr(JsonArray) buddies = json_array_new();
  JsonArray *array = json_node_get_array(node);
  for (guint i = 0; i < json_array_get_length(array); i++) {
    JsonNode *element = json_array_get_element(array, i);
    JsonObject *buddy = JSON_NODE_HOLDS_OBJECT(element) ? json_node_get_object(element) : NULL;
    const char *name = member_string(buddy, "name");
    const char *alias = member_string(buddy, "alias");
    if (name == NULL) {
      g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                          "the login server sent a buddy without a name");
      return NULL;
    }
    JsonObject *clean = json_object_new();
    json_object_set_string_member(clean, "name", name);
    json_object_set_string_member(clean, "alias", alias != NULL ? alias : name);
    json_array_add_object_element(buddies, clean);
  }
  return g_steal_pointer(&buddies);
}

static void
emit_buddies_changed(HarkLoginClient *client)
{
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", client->user);
  json_object_set_int_member(data, "revision", client->revision);
  json_object_set_array_member(data, "buddies", json_array_ref(client->buddies));
  hark_context_emit(client->ctx, "buddies-changed", data);
}

/* A checked list becomes ours (saved; an event when it changed). Takes buddies. */
static gboolean
install_buddies(HarkLoginClient *client, gint64 revision, JsonArray *buddies, GError **error)
{
  gboolean changed = revision != client->revision;
  g_clear_pointer(&client->buddies, json_array_unref);
  client->buddies = buddies;
  client->revision = revision;
  if (!save_buddies(client, error))
    return FALSE;
  if (changed)
    emit_buddies_changed(client);
  return TRUE;
}

/* The list the server sent becomes ours. */
static gboolean
take_buddy_list(HarkLoginClient *client, JsonObject *list, GError **error)
{
  gint64 revision;
  JsonArray *buddies = read_buddy_list(list, &revision, error);
  return buddies != NULL && install_buddies(client, revision, buddies, error);
}

/* The saved list, when it is this user's. */
static void
load_buddies(HarkLoginClient *client)
{
  char *text = NULL;
  gsize length = 0;
  if (!g_file_get_contents(client->buddies_path, &text, &length, NULL))
    return;
  g_autoptr(GBytes) bytes = g_bytes_new_take(text, length);
  g_autoptr(JsonObject) saved = parse_object(bytes);
  if (g_strcmp0(member_string(saved, "user"), client->user) != 0)
    return;
  gint64 revision;
  g_autoptr(JsonArray) buddies = read_buddy_list(saved, &revision, NULL);
  if (buddies == NULL)
    return;
  client->buddies = g_steal_pointer(&buddies);
  client->revision = revision;
}

/* ---- answers ---------------------------------------------------------------------- */

static JsonArray *
buddies_or_empty(HarkLoginClient *client)
{
  return client->buddies != NULL ? json_array_ref(client->buddies) : json_array_new();
}

static void
set_revision(JsonObject *object, const char *name, gint64 revision)
{
  if (revision >= 0)
    json_object_set_int_member(object, name, revision);
  else
    json_object_set_null_member(object, name);
}

/* Who is logged in, the way login, whoami and the events say it. */
static JsonObject *
describe_login(HarkLoginClient *client)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "user", client->user);
  json_object_set_string_member(o, "device", client->device);
  g_autofree char *expires = iso_time(client->expires);
  json_object_set_string_member(o, "expires", expires);
  return o;
}

static JsonObject *
login_result(HarkLoginClient *client)
{
  JsonObject *o = describe_login(client);
  set_revision(o, "revision", client->revision);
  json_object_set_array_member(o, "buddies", buddies_or_empty(client));
  return o;
}

/* sync_error: why the list could not be fetched (then it is the saved one), or NULL. */
static JsonObject *
buddies_result(HarkLoginClient *client, const char *sync_error)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "user", client->user);
  set_revision(o, "revision", client->revision);
  json_object_set_array_member(o, "buddies", buddies_or_empty(client));
  json_object_set_boolean_member(o, "synced", sync_error == NULL);
  if (sync_error != NULL)
    json_object_set_string_member(o, "sync_error", sync_error);
  return o;
}

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

static const struct {
  const char *code;
  HarkLoginError error;
} server_codes[] = {
  /* One answer for both, so the server does not tell whether an account exists. */
  { "wrong-credentials", HARK_LOGIN_ERROR_WRONG_PASSWORD },
  { "unknown-user", HARK_LOGIN_ERROR_UNKNOWN_USER },
  { "user-exists", HARK_LOGIN_ERROR_USER_EXISTS },
  { "locked-out", HARK_LOGIN_ERROR_LOCKED_OUT },
  { "bad-name", HARK_LOGIN_ERROR_BAD_NAME },
  { "weak-password", HARK_LOGIN_ERROR_WEAK_PASSWORD },
  { "unauthenticated", HARK_LOGIN_ERROR_UNAUTHENTICATED },
  { "conflict", HARK_LOGIN_ERROR_CONFLICT },
  { "not-found", HARK_LOGIN_ERROR_NOT_FOUND },
};

static HarkLoginError
error_for_code(const char *code)
{
  for (gsize i = 0; i < G_N_ELEMENTS(server_codes); i++)
    if (g_strcmp0(code, server_codes[i].code) == 0)
      return server_codes[i].error;
  return HARK_LOGIN_ERROR_SERVER;
}

/* The server's seconds to wait: the error's retry_after, else the Retry-After header. */
static gint64
retry_after(Op *op, JsonObject *refusal)
{
  gint64 seconds;
  if (member_int(refusal, "retry_after", &seconds))
    return seconds;
  const char *header =
    soup_message_headers_get_one(soup_message_get_response_headers(op->msg), "Retry-After");
  return header != NULL ? g_ascii_strtoll(header, NULL, 10) : 0;
}

/* A refusal in words about this op: the name it concerns is the buddy's for a buddy
 * change, else the user's. */
static GError *
refusal_error(Op *op, JsonObject *refusal)
{
  const char *code = member_string(refusal, "code");
  const char *message = member_string(refusal, "message");
  const char *name = op->buddy_name != NULL ? op->buddy_name : op->user;
  HarkLoginError kind = error_for_code(code);
  g_autofree char *wait = NULL;

  switch (kind) {
  case HARK_LOGIN_ERROR_WRONG_PASSWORD:
    return g_error_new(HARK_LOGIN_ERROR, kind, "wrong password for user '%s', or no such user",
                       op->user);
  case HARK_LOGIN_ERROR_UNKNOWN_USER:
    return g_error_new(HARK_LOGIN_ERROR, kind, "unknown user '%s'", name);
  case HARK_LOGIN_ERROR_USER_EXISTS:
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "user '%s' exists already (user names are unique regardless of case)",
                       op->user);
  case HARK_LOGIN_ERROR_LOCKED_OUT:
    wait = format_wait(retry_after(op, refusal));
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "locked out: too many failed logins, try again in %s", wait);
  case HARK_LOGIN_ERROR_BAD_NAME:
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "bad user name '%s': 3 to 32 letters, digits, '.', '_' or '-', "
                       "starting with a letter", name);
  case HARK_LOGIN_ERROR_WEAK_PASSWORD:
    return g_error_new_literal(HARK_LOGIN_ERROR, kind,
                               "the password must be 8 to 1024 bytes long");
  case HARK_LOGIN_ERROR_UNAUTHENTICATED:
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "the login server refused this device's certificate (%s): log in again",
                       message != NULL ? message : "no reason given");
  case HARK_LOGIN_ERROR_CONFLICT:
    return g_error_new_literal(HARK_LOGIN_ERROR, kind,
                               "the buddy list was changed on another device meanwhile; "
                               "try again");
  case HARK_LOGIN_ERROR_NOT_FOUND:
    if (op->buddy_name != NULL)
      return g_error_new(HARK_LOGIN_ERROR, kind, "'%s' is not in the buddy list", name);
    break;
  default:
    break;
  }
  return g_error_new(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_SERVER, "the login server refused: %s (%s)",
                     message != NULL ? message : "no reason given", code != NULL ? code : "?");
}

/* An HTTP answer: the object of a success, else the error it stands for. */
static JsonObject *
read_answer(Op *op, GBytes *body, GError **error)
{
  guint status = soup_message_get_status(op->msg);
  g_autoptr(JsonObject) object = parse_object(body);
  JsonObject *refusal = member_object(object, "error");
  if (SOUP_STATUS_IS_SUCCESSFUL(status) && object != NULL && refusal == NULL)
    return g_steal_pointer(&object);
  if (status >= 400 && refusal != NULL) {
    *error = refusal_error(op, refusal);
    return NULL;
  }
  g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
              "the login server at %s answered HTTP %u %s, which is not a hark answer",
              op->client->url, status, soup_message_get_reason_phrase(op->msg));
  return NULL;
}

/* ---- operations and requests ------------------------------------------------------ */

static Op *
op_new(HarkLoginClient *client, HarkLoginDone done, gpointer done_data)
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
  wipe_free(op->password);
  g_free(op->buddy_op);
  g_free(op->buddy_name);
  g_free(op->buddy_alias);
  g_free(op->method);
  g_free(op->path);
  g_clear_pointer(&op->body, g_bytes_unref);
  g_free(op);
}

/* Ends the op with its answer (takes result or error). */
static void
op_finish(Op *op, JsonObject *result, GError *error)
{
  HarkLoginDone done = op->done;
  gpointer done_data = op->done_data;
  if (op->client != NULL)
    g_hash_table_remove(op->client->ops, op);
  op_free(op);
  done(result, error, done_data);
}

static void
op_fail(Op *op, GError *error)
{
  op_finish(op, NULL, error);
}

/* Did the login this op was made for end (a logout, another login) while it waited? */
static gboolean
op_is_stale(Op *op)
{
  return op->generation != op->client->generation;
}

static GError *
stale_error(void)
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
    g_propagate_error(error, not_logged_in_error());
    return FALSE;
  }
  gint64 date = now_seconds(client);
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
on_accept_certificate(SoupMessage *msg, GTlsCertificate *certificate,
                      GTlsCertificateFlags errors, gpointer data)
{
  Op *op = data;
  op->tls_errors = errors;
  return FALSE;
}

static gboolean op_try_other_way(Op *op, const GError *error);

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
  if (body == NULL && op_try_other_way(op, error)) {
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
                     "a hark answer", op->client->url, MAX_ANSWER_BYTES);
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
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), result, &error);
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

static void
on_network_event(SoupMessage *msg, GSocketClientEvent event, GIOStream *connection, gpointer data)
{
  if (event == G_SOCKET_CLIENT_CONNECTED)
    ((Op *)data)->connected = TRUE;
}

/* A pooled connection sends no network events; writing the headers proves it is up. */
static void
on_wrote_headers(SoupMessage *msg, gpointer data)
{
  ((Op *)data)->connected = TRUE;
}

/* Every half second while a direct message has no connection: after
 * DIRECT_CONNECT_PATIENCE_MS, give it up as soon as the super node's way is ready. */
static gboolean
on_direct_patience(gpointer data)
{
  Op *op = data;
  HarkLoginClient *client = op->client;
  if (op->connected) {
    op->patience_source = 0;
    return G_SOURCE_REMOVE;
  }
  if (g_get_monotonic_time() - op->sent_at < DIRECT_CONNECT_PATIENCE_MS * 1000 ||
      client->tunnel == NULL || client->via_tunnel || !client->tunnel_ready(client->tunnel_data))
    return G_SOURCE_CONTINUE;
  op->patience_source = 0;
  op->gave_up = TRUE;
  g_cancellable_cancel(op->attempt);
  return G_SOURCE_REMOVE;
}

/* Only the first direct attempt: once the other way was tried, each way gets its full time. */
static void
watch_direct_connection(Op *op)
{
  if (op->client->via_tunnel || op->other_way_tried)
    return;
  op->sent_at = g_get_monotonic_time();
  g_signal_connect(op->msg, "network-event", G_CALLBACK(on_network_event), op);
  g_signal_connect(op->msg, "wrote-headers", G_CALLBACK(on_wrote_headers), op);
  op->patience_source = g_timeout_add(500, on_direct_patience, op);
}

/* Sends (again) the request saved in op. */
static void
op_transmit(Op *op)
{
  HarkLoginClient *client = op->client;
  GError *error = NULL;
  op_drop_message(op);
  op->msg = build_request(client, op->method, op->path, op->body, op->sign, &error);
  if (op->msg == NULL) {
    op_fail(op, error);
    return;
  }
  op->tls_errors = 0;
  op->connected = FALSE;
  op->gave_up = FALSE;
  op->attempt = g_cancellable_new();
  g_signal_connect(op->msg, "accept-certificate", G_CALLBACK(on_accept_certificate), op);
  watch_direct_connection(op);
  soup_session_send_async(client->session, op->msg, G_PRIORITY_DEFAULT, op->attempt, on_sent, op);
}

/* Sends one request of op; step gets the answer. Takes body (may be NULL). */
static void
op_send(Op *op, const char *method, const char *path, JsonObject *body, gboolean sign,
        OpStep step)
{
  g_free(op->method);
  g_free(op->path);
  g_clear_pointer(&op->body, g_bytes_unref);
  op->method = g_strdup(method);
  op->path = g_strdup(path);
  op->body = body != NULL ? json_body(body) : NULL;
  op->sign = sign;
  op->other_way_tried = FALSE;
  op->step = step;
  if (body != NULL)
    json_object_unref(body);
  op_transmit(op);
}

/* No answer: when the overlay offers a tunnel, try the other way once (through the SN
 * when direct failed, directly when the tunnel failed). A TLS failure is not a blocked
 * path but a wrong server, and is not retried. */
static gboolean
op_try_other_way(Op *op, const GError *error)
{
  HarkLoginClient *client = op->client;
  if (op->other_way_tried || client->tunnel == NULL || error->domain == G_TLS_ERROR ||
      op->tls_errors != 0 || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;
  gboolean to_tunnel = !client->via_tunnel;
  if (to_tunnel && !client->tunnel_ready(client->tunnel_data))
    return FALSE;
  op->other_way_tried = TRUE;
  client->via_tunnel = to_tunnel;
  soup_session_set_proxy_resolver(client->session, to_tunnel ? client->tunnel : NULL);
  if (to_tunnel)
    g_message("the login server cannot be reached directly (%s): trying through the super node",
              error->message);
  else
    g_message("the way through the super node failed (%s): trying the login server directly",
              error->message);
  op_transmit(op);
  return TRUE;
}

/* ---- logging in and out ----------------------------------------------------------- */

static void schedule_renewal(HarkLoginClient *client, gint64 delay);

static gint64
renewal_delay(HarkLoginClient *client)
{
  /* renew_margin before the expiry, but not in the first half of what is left: a margin
   * longer than the server's certificate lifetime must not renew in a loop. */
  gint64 remaining = client->expires - now_seconds(client);
  return MAX(remaining - client->renew_margin, remaining / 2);
}

static void
cancel_renewal(HarkLoginClient *client)
{
  if (client->renew_source != 0) {
    GSource *source = g_main_context_find_source_by_id(hark_context_main_context(client->ctx),
                                                       client->renew_source);
    if (source != NULL)
      g_source_destroy(source);
    client->renew_source = 0;
  }
  client->retry_seconds = RETRY_FIRST_SECONDS;
}

static void
clear_login(HarkLoginClient *client)
{
  g_clear_pointer(&client->user, g_free);
  g_clear_pointer(&client->device_id, g_free);
  g_clear_pointer(&client->certificate_der, g_bytes_unref);
  g_clear_pointer(&client->buddies, json_array_unref);
  client->expires = 0;
  client->revision = -1;
}

/* Logged out: this device forgets the certificate and the list. reason is for the event
 * and the log. */
static void
forget_login(HarkLoginClient *client, const char *reason)
{
  if (client->user == NULL)
    return;
  g_autofree char *user = g_strdup(client->user);
  remove_file(client->certificate_path);
  remove_file(client->buddies_path);
  cancel_renewal(client);
  clear_login(client);
  client->generation++;
  g_message("logged out of %s as %s: %s", client->url, user, reason);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", user);
  json_object_set_string_member(data, "reason", reason);
  hark_context_emit(client->ctx, "logged-out", data);
  if (client->changed != NULL)
    client->changed(client->changed_data);
}

/* A login answer {"user", "certificate", "expires", "buddies", ...} becomes this
 * device's login, saved, with its renewal scheduled. */
static gboolean
take_login(HarkLoginClient *client, const char *user, JsonObject *answer, GError **error)
{
  const char *pem = member_string(answer, "certificate");
  JsonObject *list = member_object(answer, "buddies");
  if (pem == NULL || list == NULL) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the login server's answer has no certificate or no buddy list");
    return FALSE;
  }
  /* Everything is checked before anything changes: a bad answer leaves the device as
   * it was. */
  gint64 revision;
  g_autoptr(JsonArray) buddies = read_buddy_list(list, &revision, error);
  g_autofree char *previous_user = g_strdup(client->user);
  if (buddies == NULL || !take_certificate(client, pem, user, TRUE, error))
    return FALSE;
  /* Another user's list must not survive a login as someone else. */
  if (g_strcmp0(previous_user, client->user) != 0) {
    g_clear_pointer(&client->buddies, json_array_unref);
    client->revision = -1;
  }
  client->generation++;
  cancel_renewal(client);
  schedule_renewal(client, renewal_delay(client));
  g_autofree char *expires = iso_time(client->expires);
  g_message("logged in to %s as %s until %s", client->url, client->user, expires);
  hark_context_emit(client->ctx, "logged-in", describe_login(client));
  return install_buddies(client, revision, g_steal_pointer(&buddies), error);
}

static void
login_answered(Op *op, JsonObject *answer, GError *error)
{
  if (error == NULL)
    take_login(op->client, op->user, answer, &error);
  if (error != NULL)
    op_fail(op, error);
  else
    op_finish(op, login_result(op->client), NULL);
}

static JsonObject *
credentials(const char *user, const char *password)
{
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "user", user);
  json_object_set_string_member(body, "password", password);
  return body;
}

/* The nonce came: the login proper, with the proof that this device holds its key (a
 * signature over the nonce, the user and the key), so that nobody gets a certificate for
 * a key that is not theirs. */
static void
nonce_received(Op *op, JsonObject *answer, GError *error)
{
  HarkLoginClient *client = op->client;
  const char *nonce = member_string(answer, "nonce");
  if (error == NULL && nonce == NULL)
    error = g_error_new_literal(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                                "the login server sent no nonce");
  g_autofree char *proof =
    error == NULL ? hark_login_proof_sign(client->identity, nonce, op->user, &error) : NULL;
  if (error != NULL) {
    op_fail(op, error);
    return;
  }
  JsonObject *body = credentials(op->user, op->password);
  g_clear_pointer(&op->password, wipe_free);
  json_object_set_string_member(body, "device", client->device);
  g_autofree char *public_key = hark_identity_get_public_pem(client->identity);
  json_object_set_string_member(body, "public_key", public_key);
  json_object_set_string_member(body, "nonce", nonce);
  json_object_set_string_member(body, "proof", proof);
  op_send(op, "POST", "/v1/login", body, FALSE, login_answered);
}

void
hark_login_client_login(HarkLoginClient *client, const char *user, const char *password,
                        HarkLoginDone done, gpointer user_data)
{
  Op *op = op_new(client, done, user_data);
  g_free(op->user);
  op->user = g_strdup(user);
  op->password = g_strdup(password);
  op_send(op, "GET", "/v1/nonce", NULL, FALSE, nonce_received);
}

static void
registered(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL) {
    op_fail(op, error);
    return;
  }
  const char *name = member_string(answer, "user");
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "registered", name != NULL ? name : op->user);
  op_finish(op, result, NULL);
}

void
hark_login_client_register(HarkLoginClient *client, const char *user, const char *password,
                           HarkLoginDone done, gpointer user_data)
{
  Op *op = op_new(client, done, user_data);
  g_free(op->user);
  op->user = g_strdup(user);
  op_send(op, "POST", "/v1/register", credentials(user, password), FALSE, registered);
}

void
hark_login_client_logout(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "logged_out", client->user);
  forget_login(client, "logged out");
  done(result, NULL, user_data);
}

/* The server's answer as the op's result ({"revoked"}, {"devices"}, ...). */
static void
answer_as_result(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL)
    op_fail(op, error);
  else
    op_finish(op, json_object_ref(answer), NULL);
}

void
hark_login_client_change_password(HarkLoginClient *client, const char *old_password,
                                  const char *new_password, gboolean revoke_others,
                                  HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  Op *op = op_new(client, done, user_data);
  JsonObject *body = credentials(client->user, old_password);
  json_object_set_string_member(body, "new_password", new_password);
  if (revoke_others) {
    json_object_set_boolean_member(body, "revoke_others", TRUE);
    json_object_set_string_member(body, "keep_device", client->device_id);
  }
  op_send(op, "POST", "/v1/password", body, FALSE, answer_as_result);
}

void
hark_login_client_devices(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  op_send(op_new(client, done, user_data), "GET", "/v1/devices", NULL, TRUE, answer_as_result);
}

static void
device_removed(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL) {
    op_fail(op, error);
    return;
  }
  HarkLoginClient *client = op->client;
  const char *removed = member_string(member_object(answer, "removed"), "id");
  /* Its certificate is worth nothing now: do not wait for a refused renewal. */
  if (!op_is_stale(op) && g_strcmp0(removed, client->device_id) == 0)
    forget_login(client, "this device was removed from the account");
  op_finish(op, json_object_ref(answer), NULL);
}

void
hark_login_client_remove_device(HarkLoginClient *client, const char *which,
                                HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "device", which);
  op_send(op_new(client, done, user_data), "POST", "/v1/devices/remove", body, TRUE,
          device_removed);
}

static void
account_deleted(Op *op, JsonObject *answer, GError *error)
{
  if (error != NULL) {
    op_fail(op, error);
    return;
  }
  HarkLoginClient *client = op->client;
  if (client->user != NULL && g_ascii_strcasecmp(client->user, op->user) == 0)
    forget_login(client, "account deleted");
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "deleted", op->user);
  op_finish(op, result, NULL);
}

void
hark_login_client_delete_account(HarkLoginClient *client, const char *password,
                                 HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  Op *op = op_new(client, done, user_data);
  op_send(op, "POST", "/v1/delete", credentials(client->user, password), FALSE, account_deleted);
}

void
hark_login_client_whoami(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  JsonObject *result = describe_login(client);
  json_object_set_string_member(result, "device_id", client->device_id);
  json_object_set_string_member(result, "server", client->url);
  done(result, NULL, user_data);
}

/* ---- the buddy list --------------------------------------------------------------- */

/* Takes a buddy-list answer into the client; FALSE when the op has been failed (and
 * freed) instead. Takes error. */
static gboolean
op_take_buddies(Op *op, JsonObject *answer, GError *error)
{
  if (error == NULL && op_is_stale(op))
    error = stale_error();
  if (error == NULL)
    take_buddy_list(op->client, answer, &error);
  if (error != NULL) {
    op_fail(op, error);
    return FALSE;
  }
  return TRUE;
}

static void
buddies_fetched(Op *op, JsonObject *answer, GError *error)
{
  /* Offline, the saved list is still worth showing, marked as not synced. */
  if (g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNREACHABLE) && !op_is_stale(op)) {
    JsonObject *result = buddies_result(op->client, error->message);
    g_error_free(error);
    op_finish(op, result, NULL);
    return;
  }
  if (op_take_buddies(op, answer, error))
    op_finish(op, buddies_result(op->client, NULL), NULL);
}

static void
fetch_buddies(Op *op, OpStep step)
{
  op_send(op, "GET", "/v1/buddies", NULL, TRUE, step);
}

void
hark_login_client_buddies(HarkLoginClient *client, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  fetch_buddies(op_new(client, done, user_data), buddies_fetched);
}

static void buddy_changed(Op *op, JsonObject *answer, GError *error);

/* The change, based on the revision this device knows, so that a change made meanwhile
 * on another device is detected (`conflict`) rather than overwritten. */
static void
send_buddy_change(Op *op)
{
  JsonObject *body = json_object_new();
  json_object_set_string_member(body, "op", op->buddy_op);
  json_object_set_string_member(body, "name", op->buddy_name);
  if (op->buddy_alias != NULL)
    json_object_set_string_member(body, "alias", op->buddy_alias);
  if (op->client->revision >= 0)
    json_object_set_int_member(body, "revision", op->client->revision);
  op_send(op, "POST", "/v1/buddies", body, TRUE, buddy_changed);
}

static void
buddies_refetched(Op *op, JsonObject *answer, GError *error)
{
  if (op_take_buddies(op, answer, error))
    send_buddy_change(op);
}

static void
buddy_changed(Op *op, JsonObject *answer, GError *error)
{
  if (g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_CONFLICT) && !op->retried &&
      !op_is_stale(op)) {
    op->retried = TRUE;
    g_error_free(error);
    fetch_buddies(op, buddies_refetched);
    return;
  }
  if (op_take_buddies(op, answer, error))
    op_finish(op, buddies_result(op->client, NULL), NULL);
}

void
hark_login_client_change_buddy(HarkLoginClient *client, const char *op_name, const char *name,
                               const char *alias, HarkLoginDone done, gpointer user_data)
{
  if (client->user == NULL) {
    done(NULL, not_logged_in_error(), user_data);
    return;
  }
  Op *op = op_new(client, done, user_data);
  op->buddy_op = g_strdup(op_name);
  op->buddy_name = g_strdup(name);
  op->buddy_alias = g_strdup(alias);
  send_buddy_change(op);
}

/* ---- renewal and background sync -------------------------------------------------- */

/* Refusals that renewing or syncing again will not cure: the login is over. */
static gboolean
ends_login(const GError *error)
{
  return g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNAUTHENTICATED) ||
         g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_UNKNOWN_USER);
}

static void
retry_renewal(HarkLoginClient *client, const GError *error)
{
  gint64 remaining = client->expires - now_seconds(client);
  if (remaining <= 0) {
    g_autofree char *reason =
      g_strdup_printf("the certificate expired and could not be renewed: %s", error->message);
    forget_login(client, reason);
    return;
  }
  gint64 delay = MIN((gint64)client->retry_seconds, remaining);
  g_message("renewing the certificate failed (%s); trying again in %" G_GINT64_FORMAT " s",
            error->message, delay);
  guint next = MIN(client->retry_seconds * 2, RETRY_MAX_SECONDS);
  schedule_renewal(client, delay);
  client->retry_seconds = next;
}

/* The end of a renewal (success was handled by its step). */
static void
renewal_done(JsonObject *result, GError *error, gpointer data)
{
  HarkLoginClient *client = data;
  if (result != NULL)
    json_object_unref(result);
  if (error == NULL)
    return;
  /* Cancelled: the client is gone, or the login it was for is over. */
  if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    if (ends_login(error))
      forget_login(client, error->message);
    else
      retry_renewal(client, error);
  }
  g_error_free(error);
}

static void
renewed(Op *op, JsonObject *answer, GError *error)
{
  HarkLoginClient *client = op->client;
  if (error == NULL && op_is_stale(op))
    error = stale_error();
  if (error == NULL) {
    const char *pem = member_string(answer, "certificate");
    if (pem == NULL)
      g_set_error_literal(&error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                          "the login server's renewal has no certificate");
    else
      take_certificate(client, pem, client->user, TRUE, &error);
  }
  if (error != NULL) {
    op_fail(op, error);
    return;
  }
  cancel_renewal(client);
  schedule_renewal(client, renewal_delay(client));
  g_autofree char *expires = iso_time(client->expires);
  g_message("certificate renewed until %s", expires);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", client->user);
  json_object_set_string_member(data, "expires", expires);
  hark_context_emit(client->ctx, "certificate-renewed", data);
  op_finish(op, json_object_new(), NULL);
}

static gboolean
renewal_due(gpointer data)
{
  HarkLoginClient *client = data;
  client->renew_source = 0;
  Op *op = op_new(client, renewal_done, client);
  op_send(op, "POST", "/v1/renew", json_object_new(), TRUE, renewed);
  return G_SOURCE_REMOVE;
}

static void
schedule_renewal(HarkLoginClient *client, gint64 delay)
{
  client->renew_source = hark_clock_add_seconds(hark_context_get_clock(client->ctx),
                                                (guint)CLAMP(delay, 1, G_MAXINT32),
                                                renewal_due, client);
}

/* A node that starts logged in fetches the list in the background: another device may
 * have changed it while this one was off. */
static void
background_sync_done(JsonObject *result, GError *error, gpointer data)
{
  HarkLoginClient *client = data;
  if (result != NULL) {
    const char *offline = member_string(result, "sync_error");
    if (offline != NULL)
      g_message("could not sync the buddy list: %s", offline);
    json_object_unref(result);
  }
  if (error == NULL)
    return;
  if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    if (ends_login(error))
      forget_login(client, error->message);
    else
      g_message("could not sync the buddy list: %s", error->message);
  }
  g_error_free(error);
}

/* ---- the client ------------------------------------------------------------------- */

/* A saved certificate that is still valid and binds this device logs the node in. */
static void
load_saved_login(HarkLoginClient *client)
{
  g_autofree char *pem = NULL;
  g_autoptr(GError) error = NULL;
  if (!g_file_get_contents(client->certificate_path, &pem, NULL, NULL))
    return;
  if (!take_certificate(client, pem, NULL, FALSE, &error)) {
    g_message("the saved certificate %s cannot be used (%s): log in again",
              client->certificate_path, error->message);
    remove_file(client->certificate_path);
    remove_file(client->buddies_path);
    clear_login(client);
    return;
  }
  load_buddies(client);
  schedule_renewal(client, renewal_delay(client));
  g_autofree char *expires = iso_time(client->expires);
  g_message("logged in to %s as %s until %s (saved certificate)", client->url, client->user,
            expires);
}

void
hark_login_client_sync(HarkLoginClient *client)
{
  if (client->user != NULL)
    fetch_buddies(op_new(client, background_sync_done, client), buddies_fetched);
}

static SoupSession *
new_session(GTlsDatabase *database)
{
  SoupSession *session =
    soup_session_new_with_options("tls-database", database, "timeout", REQUEST_TIMEOUT_SECONDS,
                                  "user-agent", "hark/" HARK_VERSION, NULL);
  /* Direct connections unless a tunnel says otherwise: not the system's proxy settings,
   * which would send the password's connection somewhere nobody configured for it. */
  soup_session_set_proxy_resolver(session, NULL);
  return session;
}

HarkLoginClient *
hark_login_client_new(HarkContext *ctx, const HarkConfig *config, HarkIdentity *identity,
                      GError **error)
{
  g_return_val_if_fail(config->login_url != NULL && config->login_ca != NULL, NULL);
  g_autofree char *ca_pem = NULL;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents(config->login_ca, &ca_pem, NULL, &local)) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_IO,
                "login.ca: cannot read the login server's CA certificate: %s", local->message);
    return NULL;
  }
  g_autoptr(GTlsCertificate) ca = g_tls_certificate_new_from_pem(ca_pem, -1, &local);
  if (ca == NULL) {
    g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_IO,
                "login.ca: %s holds no usable CA certificate: %s", config->login_ca,
                local->message);
    return NULL;
  }

  HarkLoginClient *client = g_new0(HarkLoginClient, 1);
  client->ctx = ctx;
  client->identity = identity;
  client->url = g_strdup(config->login_url);
  client->base = g_strdup(config->login_url);
  if (g_str_has_suffix(client->base, "/"))
    client->base[strlen(client->base) - 1] = '\0';
  client->ca_path = g_strdup(config->login_ca);
  client->ca_pem = g_steal_pointer(&ca_pem);
  client->device = g_strdup(config->login_device != NULL ? config->login_device
                                                         : config->node_name);
  client->renew_margin = config->login_renew_margin;
  client->certificate_path = g_build_filename(config->state_dir, CERTIFICATE_FILE, NULL);
  client->buddies_path = g_build_filename(config->state_dir, BUDDIES_FILE, NULL);
  /* Only this CA, and only its server certificate: never the system's store, which
   * trusts far more than one server, nor a device certificate of the same CA. */
  client->trust = hark_login_trust_new(client->ca_pem);
  client->session = new_session(client->trust);
  client->cancellable = g_cancellable_new();
  client->ops = g_hash_table_new(NULL, NULL);
  client->revision = -1;
  client->retry_seconds = RETRY_FIRST_SECONDS;
  load_saved_login(client);
  return client;
}

const char *
hark_login_client_ca_pem(HarkLoginClient *client)
{
  return client->ca_pem;
}

GBytes *
hark_login_client_certificate_der(HarkLoginClient *client)
{
  return client->user != NULL ? client->certificate_der : NULL;
}

void
hark_login_client_set_changed_handler(HarkLoginClient *client, HarkLoginChanged changed,
                                      gpointer user_data)
{
  client->changed = changed;
  client->changed_data = user_data;
}

void
hark_login_client_set_tunnel(HarkLoginClient *client, GProxyResolver *resolver,
                             gboolean (*ready)(gpointer data), gpointer data)
{
  g_clear_object(&client->tunnel);
  client->tunnel = resolver != NULL ? g_object_ref(resolver) : NULL;
  client->tunnel_ready = ready;
  client->tunnel_data = data;
  if (resolver == NULL && client->via_tunnel) {
    client->via_tunnel = FALSE;
    soup_session_set_proxy_resolver(client->session, NULL);
  }
}

void
hark_login_client_set_proxy_resolver(HarkLoginClient *client, GProxyResolver *resolver)
{
  soup_session_set_proxy_resolver(client->session, resolver);
}

JsonObject *
hark_login_client_snapshot(HarkLoginClient *client)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "server", client->url);
  json_object_set_string_member(o, "path", client->via_tunnel ? "super node" : "direct");
  if (client->user == NULL) {
    json_object_set_null_member(o, "user");
    return o;
  }
  json_object_set_string_member(o, "user", client->user);
  json_object_set_string_member(o, "device", client->device);
  g_autofree char *expires = iso_time(client->expires);
  json_object_set_string_member(o, "expires", expires);
  set_revision(o, "buddies_revision", client->revision);
  return o;
}

void
hark_login_client_free(HarkLoginClient *client)
{
  if (client == NULL)
    return;
  g_cancellable_cancel(client->cancellable);
  cancel_renewal(client);
  /* Answer what is in flight now. Each op stays allocated until libsoup calls back (with
   * "cancelled"), and then only frees itself, since its client is gone. */
  GList *ops = g_hash_table_get_keys(client->ops);
  g_hash_table_remove_all(client->ops);
  for (GList *l = ops; l != NULL; l = l->next) {
    Op *op = l->data;
    op->client = NULL;
    g_clear_handle_id(&op->patience_source, g_source_remove);
    if (op->attempt != NULL)
      g_cancellable_cancel(op->attempt);
    op->done(NULL, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "the node is stopping"),
             op->done_data);
  }
  g_list_free(ops);
  g_hash_table_unref(client->ops);
  g_object_unref(client->session);
  g_object_unref(client->trust);
  g_object_unref(client->cancellable);
  g_clear_object(&client->tunnel);
  clear_login(client);
  g_free(client->url);
  g_free(client->base);
  g_free(client->ca_path);
  g_free(client->ca_pem);
  g_free(client->device);
  g_free(client->certificate_path);
  g_free(client->buddies_path);
  g_free(client);
}
