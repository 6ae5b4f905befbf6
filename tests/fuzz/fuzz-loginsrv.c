/* fuzz-loginsrv.c: libFuzzer target for what the login server does with a stranger's
 * bytes before a handler looks at the store, calling the functions the server calls:
 *
 *   'B' TABLE BODY     login_parse_body (validate.c) with the field table of one route
 *                      (TABLE picks it), then the checks the handlers make on the strings
 *                      it let through (names, labels, device ids, passwords);
 *   'S' CERT\nDATE\nNONCE\nSIGNATURE\nMETHOD\nPATH\nBODY
 *                      login_signed_headers_check (validate.c): the headers of a signed
 *                      request, as login_authenticate reads them (fewer lines: missing);
 *   'T' LINE           login_tunnel_preamble_verify (tunnel.c): an SN's
 *                      "HARK-TUNNEL-1 ..." preamble line, up to its first NUL.
 *
 * The handlers themselves need a running server (a SoupServerMessage and a store), so this
 * fuzzes the layer below them; login_authenticate and login_tunnel_preamble_check only add
 * the clock and the server's replay cache. The clock is FUZZ_NOW and the CA fuzz-keys.h's, so the
 * signed seeds (make-login-seeds.py) get past the signature checks on every run. */
#include <stdlib.h>
#include <string.h>

#include "../../plugins/loginsrv/loginsrv.h"
#include "fuzz-common.h"
#include "fuzz-keys.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

/* The field tables of the routes that take a body (accounts.c, buddies.c, devices.c,
 * contacts.c: a copy of each handler's table). */
static const LoginField user_password[] = {
  { "user", LOGIN_FIELD_STRING, TRUE },
  { "password", LOGIN_FIELD_STRING, TRUE },
  { NULL },
};
static const LoginField login[] = {
  { "user", LOGIN_FIELD_STRING, TRUE },   { "password", LOGIN_FIELD_STRING, TRUE },
  { "device", LOGIN_FIELD_STRING, TRUE }, { "public_key", LOGIN_FIELD_STRING, TRUE },
  { "nonce", LOGIN_FIELD_STRING, FALSE }, { NULL },
};
static const LoginField password[] = {
  { "user", LOGIN_FIELD_STRING, TRUE },         { "password", LOGIN_FIELD_STRING, TRUE },
  { "new_password", LOGIN_FIELD_STRING, TRUE }, { "revoke_others", LOGIN_FIELD_BOOL, FALSE },
  { "keep_device", LOGIN_FIELD_STRING, FALSE }, { NULL },
};
static const LoginField buddy_change[] = {
  { "op", LOGIN_FIELD_STRING, TRUE },
  { "name", LOGIN_FIELD_STRING, TRUE },
  { "alias", LOGIN_FIELD_STRING, FALSE },
  { "revision", LOGIN_FIELD_INT, FALSE },
  { NULL },
};
static const LoginField device[] = {
  { "device", LOGIN_FIELD_STRING, TRUE },
  { NULL },
};
static const LoginField contacts_change[] = {
  { "op", LOGIN_FIELD_STRING, TRUE },
  { "name", LOGIN_FIELD_STRING, TRUE },
  { "message", LOGIN_FIELD_STRING, FALSE },
  { NULL },
};
static const LoginField none[] = { { NULL } };
/* Append only: a seed's first byte picks its table. */
static const LoginField *const tables[] = { login,    user_password, buddy_change,   device,
                                            password, none,          contacts_change };

/* What the handlers do with the strings of an accepted body. */
static void
check_strings(JsonObject *object)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init(&iter, object);
  while (json_object_iter_next(&iter, &name, &node)) {
    if (json_node_get_value_type(node) != G_TYPE_STRING)
      continue;
    const char *text = json_node_get_string(node);
    g_free(login_name_problem(text));
    g_free(login_name_key(text));
    g_free(login_password_problem(text));
    (void)login_label_is_valid(text);
    (void)login_device_id_is_valid(text);
    g_autofree char *shown = login_shown(text);
    if (!g_utf8_validate(shown, -1, NULL) || strlen(shown) > 40 + strlen("…"))
      abort();
  }
  /* The parsed original of a secret is wiped when it is taken. */
  char *secret = login_take_secret(object, "password");
  if (secret != NULL) {
    const char *original = json_object_get_string_member(object, "password");
    for (gsize i = 0; secret[i] != '\0'; i++)
      if (original[i] != '\0')
        abort();
  }
  login_secret_free(secret);
}

static void
fuzz_body(const uint8_t *data, size_t size)
{
  if (size < 1)
    return;
  const LoginField *fields = tables[data[0] % G_N_ELEMENTS(tables)];
  g_autoptr(GBytes) body = g_bytes_new(data + 1, size - 1);
  g_autofree char *message = NULL;
  g_autoptr(JsonObject) object = login_parse_body(body, fields, &message);
  if ((object == NULL) == (message == NULL))
    abort();
  fuzz_say(object != NULL ? "body accepted" : "body refused", message);
  if (object != NULL)
    check_strings(object);
}

static void
fuzz_signed(const uint8_t *data, size_t size)
{
  /* Six header lines, then the body (which may hold newlines). */
  char *lines[6] = { NULL };
  const char *p = (const char *)data, *end = p + size;
  guint n = 0;
  for (; n < G_N_ELEMENTS(lines) && p < end; n++) {
    const char *newline = memchr(p, '\n', (gsize)(end - p));
    const char *stop = newline != NULL ? newline : end;
    lines[n] = g_strndup(p, (gsize)(stop - p));
    p = newline != NULL ? newline + 1 : end;
  }
  g_autoptr(GBytes) body = g_bytes_new(p, (gsize)(end - p));
  gint64 date = 0;
  g_autofree char *message = NULL;
  g_autoptr(HarkDeviceCertificate) signer = login_signed_headers_check(
    FUZZ_CA_PEM, lines[0], lines[1], lines[2], lines[3], lines[4] ? lines[4] : "GET",
    lines[5] ? lines[5] : "/", body, FUZZ_NOW, &date, &message);
  if ((signer == NULL) == (message == NULL))
    abort();
  fuzz_say(signer != NULL ? "signed request accepted" : "signed request refused", message);
  if (signer != NULL && (date < FUZZ_NOW - LOGIN_MAX_SKEW || date > FUZZ_NOW + LOGIN_MAX_SKEW))
    abort();
  for (guint i = 0; i < G_N_ELEMENTS(lines); i++)
    g_free(lines[i]);
}

static void
fuzz_preamble(const uint8_t *data, size_t size)
{
  g_autofree char *line = g_strndup((const char *)data, size);
  LoginReplayCache *replays = login_replay_new(LOGIN_REPLAY_MAX);
  g_autoptr(GError) error = NULL;
  g_autofree char *client =
    login_tunnel_preamble_verify(FUZZ_CA_PEM, replays, line, FUZZ_NOW, &error);
  if ((client == NULL) == (error == NULL))
    abort();
  fuzz_say(client != NULL ? "preamble accepted" : "preamble refused",
           error ? error->message : NULL);
  if (client != NULL) {
    if (!g_hostname_is_ip_address(client))
      abort();
    /* The same line again is a replay. */
    g_autoptr(GError) again = NULL;
    g_autofree char *replayed =
      login_tunnel_preamble_verify(FUZZ_CA_PEM, replays, line, FUZZ_NOW + 1, &again);
    if (replayed != NULL)
      abort();
  }
  login_replay_free(replays);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  switch (data[0]) {
  case 'B':
    fuzz_body(data + 1, size - 1);
    break;
  case 'S':
    fuzz_signed(data + 1, size - 1);
    break;
  case 'T':
    fuzz_preamble(data + 1, size - 1);
    break;
  default:
    break;
  }
  return 0;
}
