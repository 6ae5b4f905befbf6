/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* validate.c: what the login server accepts as input: JSON bodies with exactly the
 * expected fields and types, the user-name rules of docs/protocol.md, and the headers of
 * a signed request (auth.c adds the replay check).
 *
 * Every check says what was wrong, for the developer of a client; nothing here touches
 * the store or reads a clock (the caller gives the time), so a refused request changes
 * nothing and tests/fuzz/fuzz-loginsrv.c can call these as the server does. */
#include "loginsrv.h"

#include <openssl/crypto.h>
#include <string.h>

#define SHOWN_MAX 40
/* A DER certificate is well under this; the header is refused beyond it. */
#define MAX_CERTIFICATE_BYTES 8192

/* ---- JSON bodies ------------------------------------------------------------------------- */

static const char *
type_name(LoginFieldType type)
{
  static const char *const names[] = {
    [LOGIN_FIELD_STRING] = "a string",
    [LOGIN_FIELD_INT] = "an integer",
    [LOGIN_FIELD_BOOL] = "true or false",
    [LOGIN_FIELD_STRINGS] = "an array of strings",
  };
  return names[type];
}

static gboolean
is_string(JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
}

static gboolean
has_type(JsonNode *node, LoginFieldType type)
{
  if (type == LOGIN_FIELD_STRINGS) {
    JsonArray *array = JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
    for (guint i = 0; array != NULL && i < json_array_get_length(array); i++)
      if (!is_string(json_array_get_element(array, i)))
        return FALSE;
    return array != NULL;
  }
  if (!JSON_NODE_HOLDS_VALUE(node))
    return FALSE;
  static const GType types[] = {
    [LOGIN_FIELD_STRING] = G_TYPE_STRING,
    [LOGIN_FIELD_INT] = G_TYPE_INT64,
    [LOGIN_FIELD_BOOL] = G_TYPE_BOOLEAN,
  };
  return json_node_get_value_type(node) == types[type];
}

static const LoginField *
find_field(const LoginField *fields, const char *name)
{
  for (const LoginField *f = fields; f->name != NULL; f++)
    if (strcmp(f->name, name) == 0)
      return f;
  return NULL;
}

/* Every member known and of its type, every required field there. */
static gboolean
check_fields(JsonObject *object, const LoginField *fields, char **message)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init(&iter, object);
  while (json_object_iter_next(&iter, &name, &node)) {
    const LoginField *field = find_field(fields, name);
    g_autofree char *shown = login_shown(name);
    if (field == NULL) {
      *message = g_strdup_printf("unknown field '%s'", shown);
      return FALSE;
    }
    if (!has_type(node, field->type)) {
      *message = g_strdup_printf("field '%s' must be %s", name, type_name(field->type));
      return FALSE;
    }
  }
  for (const LoginField *f = fields; f->name != NULL; f++)
    if (f->required && !json_object_has_member(object, f->name)) {
      *message = g_strdup_printf("missing field '%s' (%s)", f->name, type_name(f->type));
      return FALSE;
    }
  return TRUE;
}

/* The text checks json-glib does not make: UTF-8 all through, and no escaped NUL (it
 * would cut a string short after parsing, so "alice\u0000x" would become "alice"). */
static gboolean
check_text(const char *data, gsize length, char **message)
{
  if (length == 0) {
    *message = g_strdup("the request needs a JSON object as its body");
    return FALSE;
  }
  if (!g_utf8_validate_len(data, length, NULL)) {
    *message = g_strdup("the body is not UTF-8 text");
    return FALSE;
  }
  if (memmem(data, length, "\\u0000", 6) != NULL) {
    *message = g_strdup("the body contains \\u0000, which no field may hold");
    return FALSE;
  }
  return TRUE;
}

typedef struct {
  guint members;
  guint containers; /* objects and arrays */
} ParseCounts;

static void
count_member(JsonParser *parser, JsonObject *object, const char *name, gpointer data)
{
  ((ParseCounts *)data)->members++;
}

static void
count_container(JsonParser *parser, gpointer data)
{
  ((ParseCounts *)data)->containers++;
}

/* The arrays the object holds (only LOGIN_FIELD_STRINGS fields may, each one level). */
static guint
count_arrays(JsonObject *object)
{
  guint arrays = 0;
  JsonObjectIter iter;
  JsonNode *node;
  json_object_iter_init(&iter, object);
  while (json_object_iter_next(&iter, NULL, &node))
    arrays += JSON_NODE_HOLDS_ARRAY(node) ? 1 : 0;
  return arrays;
}

/* json-glib keeps the last of repeated members ("user" twice would be ambiguous) and
 * accepts a second value after the first ("{...} {...}"). Counting what the parser saw
 * catches both: a body is one object, its members all scalars (no field takes more but
 * an array of strings), each member once. */
static gboolean
check_flat(JsonObject *object, const ParseCounts *counts, char **message)
{
  if (counts->containers != 1 + count_arrays(object)) {
    *message = g_strdup("the body must be one JSON object whose fields are strings or "
                        "integers");
    return FALSE;
  }
  if (json_object_get_size(object) != counts->members) {
    *message = g_strdup("a field appears more than once");
    return FALSE;
  }
  return TRUE;
}

JsonObject *
login_parse_body(GBytes *body, const LoginField *fields, char **message)
{
  gsize length = 0;
  const char *data = body != NULL ? g_bytes_get_data(body, &length) : NULL;
  if (!check_text(data, length, message))
    return NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  ParseCounts counts = { 0, 0 };
  g_signal_connect(parser, "object-member", G_CALLBACK(count_member), &counts);
  g_signal_connect(parser, "object-start", G_CALLBACK(count_container), &counts);
  g_signal_connect(parser, "array-start", G_CALLBACK(count_container), &counts);
  g_autoptr(GError) error = NULL;
  if (!json_parser_load_from_data(parser, data, (gssize)length, &error)) {
    *message = g_strdup_printf("malformed JSON: %s", error->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    *message = g_strdup("the body must be a JSON object");
    return NULL;
  }
  JsonObject *object = json_node_dup_object(root);
  if (!check_flat(object, &counts, message) || !check_fields(object, fields, message))
    g_clear_pointer(&object, json_object_unref);
  return object;
}

char *
login_take_secret(JsonObject *object, const char *member)
{
  const char *value = json_object_get_string_member_with_default(object, member, NULL);
  if (value == NULL)
    return NULL;
  char *copy = g_strdup(value);
  OPENSSL_cleanse((char *)value, strlen(value));
  return copy;
}

GBytes *
login_base64_decode_strict(const char *text, gsize max_length)
{
  if (text == NULL || *text == '\0' || strlen(text) > (max_length / 3 + 1) * 4)
    return NULL;
  gsize length = 0;
  guint8 *data = g_base64_decode(text, &length);
  /* g_base64_decode() skips what is not base64: only a canonical text encodes back. */
  g_autofree char *again = g_base64_encode(data, length);
  if (length == 0 || length > max_length || strcmp(again, text) != 0) {
    g_free(data);
    return NULL;
  }
  return g_bytes_new_take(data, length);
}

/* ---- signed requests -------------------------------------------------------------------- */

static gboolean
parse_date(const char *text, gint64 *date)
{
  if (text == NULL || *text == '\0' || strlen(text) > 18 ||
      strspn(text, "0123456789") != strlen(text))
    return FALSE;
  *date = g_ascii_strtoll(text, NULL, 10);
  return TRUE;
}

HarkDeviceCertificate *
login_signed_headers_check(const char *ca_pem, const char *certificate, const char *date_text,
                           const char *nonce, const char *signature, const char *method,
                           const char *path, GBytes *body, gint64 now, gint64 *date, char **message)
{
  if (certificate == NULL || date_text == NULL || nonce == NULL || signature == NULL) {
    *message = g_strdup("a signed request needs the headers Hark-Certificate, Hark-Date, "
                        "Hark-Nonce and Hark-Signature");
    return NULL;
  }
  g_autoptr(GBytes) der = login_base64_decode_strict(certificate, MAX_CERTIFICATE_BYTES);
  if (der == NULL) {
    *message = g_strdup("Hark-Certificate is not the base64 of a certificate");
    return NULL;
  }
  if (!parse_date(date_text, date)) {
    *message = g_strdup("Hark-Date is not a time in unix seconds");
    return NULL;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) device = hark_certificate_verify(ca_pem, der, now, &error);
  if (device == NULL) {
    *message = g_strdup_printf("the certificate is refused: %s", error->message);
    return NULL;
  }
  if (!hark_request_verify(device->public_key, method, path, *date, nonce, body, signature, now,
                           LOGIN_MAX_SKEW, &error)) {
    *message = g_strdup(error->message);
    return NULL;
  }
  return g_steal_pointer(&device);
}

/* ---- names ------------------------------------------------------------------------------- */

char *
login_shown(const char *text)
{
  g_autofree char *valid = g_utf8_make_valid(text, -1);
  if (strlen(valid) <= SHOWN_MAX)
    return g_steal_pointer(&valid);
  const char *end = g_utf8_find_prev_char(valid, valid + SHOWN_MAX + 1);
  return g_strdup_printf("%.*s…", (int)(end - valid), valid);
}

static gboolean
is_name_char(char c)
{
  return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
}

char *
login_name_problem(const char *name)
{
  g_autofree char *shown = login_shown(name);
  for (const char *p = name; *p != '\0'; p++)
    if (!is_name_char(*p))
      return g_strdup_printf("the user name '%s' has a character other than the ASCII letters, "
                             "digits, '.', '_' and '-' (look-alike letters from other scripts "
                             "are not allowed)",
                             shown);
  gsize length = strlen(name);
  if (length < LOGIN_USER_NAME_MIN || length > LOGIN_USER_NAME_MAX)
    return g_strdup_printf("the user name '%s' has %" G_GSIZE_FORMAT " characters; it needs "
                           "%d to %d",
                           shown, length, LOGIN_USER_NAME_MIN, LOGIN_USER_NAME_MAX);
  if (!g_ascii_isalpha(name[0]))
    return g_strdup_printf("the user name '%s' does not start with a letter", shown);
  return NULL;
}

char *
login_name_key(const char *name)
{
  return g_ascii_strdown(name, -1);
}

/* Control characters, and the invisible formatting ones (Unicode category Cf: the
 * bidirectional embeddings, overrides and isolates U+202A-202E and U+2066-2069, the marks
 * U+200E/U+200F and U+061C, zero-width spaces), which would let a name show as another
 * in a device list; also line and paragraph separators. The zero-width joiner stays:
 * emoji sequences need it, and it changes no direction. */
static gboolean
label_char_is_allowed(gunichar c)
{
  switch (g_unichar_type(c)) {
  case G_UNICODE_CONTROL:
  case G_UNICODE_LINE_SEPARATOR:
  case G_UNICODE_PARAGRAPH_SEPARATOR:
    return FALSE;
  case G_UNICODE_FORMAT:
    return c == 0x200D;
  default:
    return TRUE;
  }
}

gboolean
login_device_id_is_valid(const char *text)
{
  return strlen(text) == LOGIN_DEVICE_ID_LENGTH &&
         strspn(text, "0123456789abcdef") == LOGIN_DEVICE_ID_LENGTH;
}

gboolean
login_label_is_valid(const char *text)
{
  glong length = g_utf8_strlen(text, -1);
  if (length < 1 || length > LOGIN_LABEL_MAX)
    return FALSE;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p))
    if (!label_char_is_allowed(g_utf8_get_char(p)))
      return FALSE;
  return TRUE;
}

char *
login_password_problem(const char *password)
{
  gsize length = strlen(password);
  if (length < LOGIN_PASSWORD_MIN)
    return g_strdup_printf("the password is too short: it needs at least %d bytes",
                           LOGIN_PASSWORD_MIN);
  if (length > LOGIN_PASSWORD_MAX)
    return g_strdup_printf("the password is too long: at most %d bytes", LOGIN_PASSWORD_MAX);
  return NULL;
}
