/* fuzz-loginanswer.c: libFuzzer target for the login client's reading of what the login
 * server answers (core/login/login-answer.c), as login-requests.c and the steps of
 * login.c and login-buddies.c read it. An input is
 *
 *   KIND STATUS '\n' RETRY-AFTER '\n' BODY
 *
 * KIND a letter for the request the answer is to, STATUS three digits (the HTTP status),
 * RETRY-AFTER the header's value (empty: no header), BODY the answer's body. Every answer
 * goes through hark_login_read_answer (a success's object, or a refusal in words); a
 * success then through what the client takes from it:
 *
 *   'L' login        hark_login_read_login (certificate and buddy list)
 *   'R' renew        hark_login_read_renewal
 *   'N' nonce        hark_login_read_nonce
 *   'B' buddies      hark_login_read_buddy_list; also a buddy change ('C'), whose
 *                    refusals name the buddy
 *   'D' devices      handed to the frontend as it is: it must serialise
 *   'X' device-remove  {"removed": {"id"}}
 *   'S' the directory part (a lookup, a search, a contact request): refusals in the
 *                    server's words
 *
 * The certificates in these answers are checked by hark_certificate_verify, which the
 * `certificate` target fuzzes. */
#include <stdlib.h>
#include <string.h>

#include "../../core/login/login-answer.h"
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

/* What reaches a user (the cli, a ctl client's JSON) must be text. */
static void
check_text(const char *text)
{
  if (text != NULL && !g_utf8_validate(text, -1, NULL))
    abort();
}

static void
check_buddies(JsonArray *buddies)
{
  for (guint i = 0; i < json_array_get_length(buddies); i++) {
    JsonObject *buddy = json_array_get_object_element(buddies, i);
    const char *name = json_object_get_string_member(buddy, "name");
    const char *alias = json_object_get_string_member(buddy, "alias");
    if (name == NULL || alias == NULL || json_object_get_size(buddy) != 2)
      abort();
    check_text(name);
    check_text(alias);
  }
}

/* What the step of kind takes from a success; FALSE with error when it refuses it. */
static gboolean
take(char kind, JsonObject *answer, GError **error)
{
  g_autoptr(JsonArray) buddies = NULL;
  const char *text = NULL;
  gint64 revision = -1;
  switch (kind) {
  case 'L':
    buddies = hark_login_read_login(answer, &text, &revision, error);
    if (buddies != NULL && text == NULL)
      abort();
    break;
  case 'B':
  case 'C':
    buddies = hark_login_read_buddy_list(answer, &revision, error);
    break;
  case 'R':
    return hark_login_read_renewal(answer, error) != NULL;
  case 'N':
    return hark_login_read_nonce(answer, error) != NULL;
  case 'D': {
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), answer);
    g_autofree char *json = json_to_string(node, FALSE);
    check_text(json);
    return TRUE;
  }
  case 'X':
    check_text(hark_login_member_string(hark_login_member_object(answer, "removed"), "id"));
    return TRUE;
  default:
    return TRUE;
  }
  if (buddies == NULL)
    return FALSE;
  check_buddies(buddies);
  return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data, *end = p + size;
  if (size < 5 || !g_ascii_isdigit(p[1]) || !g_ascii_isdigit(p[2]) || !g_ascii_isdigit(p[3]) ||
      p[4] != '\n')
    return 0;
  char kind = p[0];
  guint status = (guint)((p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0'));
  p += 5;
  const char *newline = memchr(p, '\n', (gsize)(end - p));
  if (newline == NULL)
    return 0;
  g_autofree char *retry_after = newline > p ? g_strndup(p, (gsize)(newline - p)) : NULL;
  g_autoptr(GBytes) body = g_bytes_new(newline + 1, (gsize)(end - newline - 1));

  HarkLoginAsk ask = { "https://login.example", "alice", kind == 'C' ? "bob" : NULL, kind == 'S' };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) answer =
    hark_login_read_answer(&ask, status, "Reason", retry_after, body, &error);
  if ((answer == NULL) == (error == NULL))
    abort();
  /* A success is a 2xx; a refusal is never taken for one. */
  if (answer != NULL && (status < 200 || status > 299 || hark_login_member_object(answer, "error")))
    abort();
  if (answer != NULL) {
    gboolean taken = take(kind, answer, &error);
    if (taken == (error != NULL))
      abort();
  }
  if (error != NULL) {
    if (error->domain != HARK_LOGIN_ERROR)
      abort();
    check_text(error->message);
  }
  fuzz_say(error == NULL ? "answer taken" : "answer refused", error ? error->message : NULL);
  return 0;
}
