/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-answer.c: the login client's reading of the login server's answers: the JSON
 * object of a success, a refusal ({"error": {"code", "message", "retry_after"}}) turned
 * into an error in words, and the members of the answers the client takes in (login,
 * renewal, nonce, buddy list). Everything a server sends is checked for shape here before
 * login.c and login-buddies.c act on it; it is fuzzed by tests/fuzz/fuzz-loginanswer.c. */
#include "login-answer.h"

#include "hark/address.h"
#include "hark/command.h"

/* clang-format off */
G_DEFINE_QUARK(hark-login-error-quark, hark_login_error)
/* clang-format on */

/* ---- JSON ------------------------------------------------------------------------- */

const char *
hark_login_member_string(JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
      json_node_get_value_type(node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(node);
}

gboolean
hark_login_member_int(JsonObject *object, const char *name, gint64 *value)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
      json_node_get_value_type(node) != G_TYPE_INT64)
    return FALSE;
  *value = json_node_get_int(node);
  return TRUE;
}

JsonObject *
hark_login_member_object(JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;
  return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

JsonObject *
hark_login_parse_object(GBytes *bytes)
{
  gsize size;
  const char *data = g_bytes_get_data(bytes, &size);
  g_autoptr(JsonParser) parser = json_parser_new();
  if (size == 0 || !g_utf8_validate_len(data, size, NULL) ||
      !json_parser_load_from_data(parser, data, (gssize)size, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  /* An escaped lone surrogate would otherwise reach the buddy list, the events and
   * every ctl client's JSON as bytes that are not UTF-8. */
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root) || !hark_json_is_text(root))
    return NULL;
  return json_object_ref(json_node_get_object(root));
}

char *
hark_login_format_wait(gint64 seconds)
{
  if (seconds < 120)
    return g_strdup_printf("%" G_GINT64_FORMAT " s", MAX(seconds, 1));
  return g_strdup_printf("%" G_GINT64_FORMAT " min", (seconds + 59) / 60);
}

/* ---- refusals --------------------------------------------------------------------- */

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
  { "over-quota", HARK_LOGIN_ERROR_OVER_QUOTA },
  { "recipient-full", HARK_LOGIN_ERROR_RECIPIENT_FULL },
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
retry_after_seconds(JsonObject *refusal, const char *header)
{
  gint64 seconds;
  if (hark_login_member_int(refusal, "retry_after", &seconds))
    return seconds;
  return header != NULL ? g_ascii_strtoll(header, NULL, 10) : 0;
}

/* A refusal in words about the request: the name it concerns is the buddy's for a buddy
 * change, else the user's. */
static GError *
refusal_error(const HarkLoginAsk *ask, JsonObject *refusal, const char *retry_after)
{
  const char *code = hark_login_member_string(refusal, "code");
  const char *message = hark_login_member_string(refusal, "message");
  const char *name = ask->buddy_name != NULL ? ask->buddy_name : ask->user;
  HarkLoginError kind = error_for_code(code);
  g_autofree char *wait = NULL;

  /* The directory part's refusals say more than a login's would: the server's words (a
   * recent decline, a flood of requests or of look-ups with the wait, no such request)
   * are the ones to show; "too many failed logins" would be wrong. */
  if ((ask->server_words &&
       (kind == HARK_LOGIN_ERROR_LOCKED_OUT || kind == HARK_LOGIN_ERROR_NOT_FOUND)) ||
      kind == HARK_LOGIN_ERROR_OVER_QUOTA || kind == HARK_LOGIN_ERROR_RECIPIENT_FULL) {
    g_autofree char *shown = message != NULL ? hark_text_escape(message, -1, 200) : NULL;
    return g_error_new(HARK_LOGIN_ERROR, kind, "%s",
                       shown != NULL ? shown : "the login server refused the request");
  }

  switch (kind) {
  case HARK_LOGIN_ERROR_WRONG_PASSWORD:
    return g_error_new(HARK_LOGIN_ERROR, kind, "wrong password for user '%s', or no such user",
                       ask->user);
  case HARK_LOGIN_ERROR_UNKNOWN_USER:
    return g_error_new(HARK_LOGIN_ERROR, kind, "unknown user '%s'", name);
  case HARK_LOGIN_ERROR_USER_EXISTS:
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "user '%s' exists already (user names are unique regardless of case)",
                       ask->user);
  case HARK_LOGIN_ERROR_LOCKED_OUT:
    wait = hark_login_format_wait(retry_after_seconds(refusal, retry_after));
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "locked out: too many failed logins, try again in %s", wait);
  case HARK_LOGIN_ERROR_BAD_NAME:
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "bad user name '%s': 3 to 32 letters, digits, '.', '_' or '-', "
                       "starting with a letter",
                       name);
  case HARK_LOGIN_ERROR_WEAK_PASSWORD:
    return g_error_new_literal(HARK_LOGIN_ERROR, kind, "the password must be 8 to 1024 bytes long");
  case HARK_LOGIN_ERROR_UNAUTHENTICATED:
    return g_error_new(HARK_LOGIN_ERROR, kind,
                       "the login server refused this device's certificate (%s): log in again",
                       message != NULL ? message : "no reason given");
  case HARK_LOGIN_ERROR_CONFLICT:
    return g_error_new_literal(HARK_LOGIN_ERROR, kind,
                               "the buddy list was changed on another device meanwhile; "
                               "try again");
  case HARK_LOGIN_ERROR_NOT_FOUND:
    if (ask->buddy_name != NULL)
      return g_error_new(HARK_LOGIN_ERROR, kind, "'%s' is not in the buddy list", name);
    break;
  default:
    break;
  }
  return g_error_new(HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_SERVER, "the login server refused: %s (%s)",
                     message != NULL ? message : "no reason given", code != NULL ? code : "?");
}

JsonObject *
hark_login_read_answer(const HarkLoginAsk *ask, guint status, const char *reason,
                       const char *retry_after, GBytes *body, GError **error)
{
  g_autoptr(JsonObject) object = hark_login_parse_object(body);
  JsonObject *refusal = hark_login_member_object(object, "error");
  if (status >= 200 && status < 300 && object != NULL && refusal == NULL)
    return g_steal_pointer(&object);
  if (status >= 400 && refusal != NULL) {
    g_propagate_error(error, refusal_error(ask, refusal, retry_after));
    return NULL;
  }
  g_set_error(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
              "the login server at %s answered HTTP %u %s, which is not a hark answer", ask->url,
              status, reason);
  return NULL;
}

/* ---- what the client takes in ----------------------------------------------------- */

JsonArray *
hark_login_read_buddy_list(JsonObject *list, gint64 *revision, GError **error)
{
  JsonNode *node = list != NULL ? json_object_get_member(list, "buddies") : NULL;
  if (!hark_login_member_int(list, "revision", revision) || node == NULL ||
      !JSON_NODE_HOLDS_ARRAY(node)) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the login server sent a buddy list without revision or buddies");
    return NULL;
  }
  g_autoptr(JsonArray) buddies = json_array_new();
  JsonArray *array = json_node_get_array(node);
  for (guint i = 0; i < json_array_get_length(array); i++) {
    JsonNode *element = json_array_get_element(array, i);
    JsonObject *buddy = JSON_NODE_HOLDS_OBJECT(element) ? json_node_get_object(element) : NULL;
    const char *name = hark_login_member_string(buddy, "name");
    const char *alias = hark_login_member_string(buddy, "alias");
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

JsonArray *
hark_login_read_login(JsonObject *answer, const char **pem, gint64 *revision, GError **error)
{
  *pem = hark_login_member_string(answer, "certificate");
  JsonObject *list = hark_login_member_object(answer, "buddies");
  if (*pem == NULL || list == NULL) {
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER,
                        "the login server's answer has no certificate or no buddy list");
    return NULL;
  }
  return hark_login_read_buddy_list(list, revision, error);
}

/* The string member name of answer (borrowed), or NULL and a bad answer that says why. */
static const char *
required_string(JsonObject *answer, const char *name, const char *missing, GError **error)
{
  const char *text = hark_login_member_string(answer, name);
  if (text == NULL)
    g_set_error_literal(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_BAD_ANSWER, missing);
  return text;
}

const char *
hark_login_read_renewal(JsonObject *answer, GError **error)
{
  return required_string(answer, "certificate", "the login server's renewal has no certificate",
                         error);
}

const char *
hark_login_read_nonce(JsonObject *answer, GError **error)
{
  return required_string(answer, "nonce", "the login server sent no nonce", error);
}
