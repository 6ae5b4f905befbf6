/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* auth.c: who may drive the page (docs/web-frontend.md, "The security model"): the node's
 * secret (a file of the state directory, 0600), the one-time login tokens that
 * `web-url` mints (random, kept in memory as their SHA-256, good once and for 60 s), and
 * the session cookies, which carry their own HMAC under the secret so the node keeps no
 * session table and a cookie outlives a restart. The parsers of what a browser sends
 * (the Cookie header, a cookie's value, a token) are here too, without sockets, so that
 * tests/fuzz/fuzz-webauth.c feeds them. */
#include "web.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION_VERSION "v1"
#define NONCE_BYTES 16
/* A cookie's issue time may be this far ahead of the node's clock (it moved back). */
#define SESSION_SKEW_SECONDS 300

/* ---- small helpers ------------------------------------------------------------------ */

static gboolean
random_bytes(guint8 *out, gsize length, GError **error)
{
  gsize done = 0;
  while (done < length) {
    ssize_t got = getrandom(out + done, length - done, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      int saved = errno;
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "getrandom: %s",
                  g_strerror(saved));
      return FALSE;
    }
    done += (gsize)got;
  }
  return TRUE;
}

static char *
to_hex(const guint8 *bytes, gsize length)
{
  static const char digits[] = "0123456789abcdef";
  char *hex = g_malloc(2 * length + 1);
  for (gsize i = 0; i < length; i++) {
    hex[2 * i] = digits[bytes[i] >> 4];
    hex[2 * i + 1] = digits[bytes[i] & 15];
  }
  hex[2 * length] = '\0';
  return hex;
}

static gboolean
is_lower_hex(const char *text, gsize length)
{
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isdigit(text[i]) && !(text[i] >= 'a' && text[i] <= 'f'))
      return FALSE;
  return TRUE;
}

static gboolean
from_hex(const char *hex, guint8 *out, gsize length)
{
  if (strlen(hex) != 2 * length || !is_lower_hex(hex, 2 * length))
    return FALSE;
  for (gsize i = 0; i < length; i++)
    out[i] = (guint8)(g_ascii_xdigit_value(hex[2 * i]) << 4 | g_ascii_xdigit_value(hex[2 * i + 1]));
  return TRUE;
}

/* Constant time: how much of a guessed MAC was right must not show in the answer's timing. */
static gboolean
same_text(const char *a, const char *b, gsize length)
{
  guint8 diff = 0;
  for (gsize i = 0; i < length; i++)
    diff |= (guint8)(a[i] ^ b[i]);
  return diff == 0;
}

static char *
sha256_hex(const char *text)
{
  return g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, -1);
}

/* ---- the secret ----------------------------------------------------------------------- */

static gboolean
create_secret(WebAuth *auth, const char *path, GError **error)
{
  if (!random_bytes(auth->secret, sizeof auth->secret, error))
    return FALSE;
  g_autofree char *hex = to_hex(auth->secret, sizeof auth->secret);
  g_autofree char *text = g_strconcat(hex, "\n", NULL);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int saved = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "cannot create %s: %s", path,
                g_strerror(saved));
    return FALSE;
  }
  gsize length = strlen(text);
  gboolean ok = write(fd, text, length) == (ssize_t)length && fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (!ok) {
    g_unlink(path);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "cannot write %s: %s", path,
                g_strerror(saved));
    return FALSE;
  }
  g_message("created the web frontend's secret %s", path);
  return TRUE;
}

static gboolean
read_secret(WebAuth *auth, const char *path, const GStatBuf *st, GError **error)
{
  if (!S_ISREG(st->st_mode) || st->st_uid != geteuid() || (st->st_mode & 077) != 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                "%s must be a regular file of this user that nobody else may read or write "
                "(mode 0600); fix it, or remove it to make a new one (which logs every browser "
                "out)",
                path);
    return FALSE;
  }
  g_autofree char *text = NULL;
  gsize length;
  if (!g_file_get_contents(path, &text, &length, error))
    return FALSE;
  g_strchomp(text);
  if (!from_hex(text, auth->secret, sizeof auth->secret)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "%s is not %d hex digits; remove it to make a new one", path,
                2 * WEB_SECRET_BYTES);
    return FALSE;
  }
  return TRUE;
}

gboolean
web_auth_init(WebAuth *auth, const char *path, GError **error)
{
  memset(auth, 0, sizeof *auth);
  auth->tokens = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  GStatBuf st;
  if (g_lstat(path, &st) != 0)
    return create_secret(auth, path, error);
  return read_secret(auth, path, &st, error);
}

void
web_auth_clear(WebAuth *auth)
{
  g_clear_pointer(&auth->tokens, g_hash_table_unref);
  memset(auth->secret, 0, sizeof auth->secret);
}

/* ---- one-time tokens ------------------------------------------------------------------ */

static gboolean
expired(gpointer key, gpointer value, gpointer now)
{
  return *(gint64 *)value <= *(gint64 *)now;
}

char *
web_auth_mint_token(WebAuth *auth, gint64 now_us, GError **error)
{
  g_hash_table_foreach_remove(auth->tokens, expired, &now_us);
  if (g_hash_table_size(auth->tokens) >= WEB_MAX_TOKENS) {
    g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                "%d login links are open and unused; wait until they expire (%d s)",
                WEB_MAX_TOKENS, WEB_TOKEN_LIFETIME_SECONDS);
    return NULL;
  }
  guint8 bytes[WEB_TOKEN_BYTES];
  if (!random_bytes(bytes, sizeof bytes, error))
    return NULL;
  char *token = to_hex(bytes, sizeof bytes);
  gint64 *expiry = g_new(gint64, 1);
  *expiry = now_us + (gint64)WEB_TOKEN_LIFETIME_SECONDS * G_USEC_PER_SEC;
  /* Kept as its hash: the lookup's timing says nothing about the tokens themselves. */
  g_hash_table_insert(auth->tokens, sha256_hex(token), expiry);
  return token;
}

gboolean
web_auth_take_token(WebAuth *auth, const char *token, gint64 now_us)
{
  if (!web_token_is_valid(token))
    return FALSE;
  g_autofree char *key = sha256_hex(token);
  gint64 *expiry = g_hash_table_lookup(auth->tokens, key);
  gboolean good = expiry != NULL && *expiry > now_us;
  g_hash_table_remove(auth->tokens, key);
  return good;
}

gboolean
web_token_is_valid(const char *token)
{
  return token != NULL && strlen(token) == 2 * WEB_TOKEN_BYTES &&
         is_lower_hex(token, 2 * WEB_TOKEN_BYTES);
}

/* ---- session cookies ------------------------------------------------------------------- */

/* HMAC-SHA256 under the secret of "v1.ISSUED.NONCE", as hex. */
static char *
session_mac(const guint8 *secret, const char *body, gsize length)
{
  return g_compute_hmac_for_data(G_CHECKSUM_SHA256, secret, WEB_SECRET_BYTES,
                                 (const guchar *)body, length);
}

char *
web_session_new(const WebAuth *auth, gint64 now)
{
  guint8 nonce[NONCE_BYTES];
  if (!random_bytes(nonce, sizeof nonce, NULL))
    return NULL;
  g_autofree char *nonce_hex = to_hex(nonce, sizeof nonce);
  g_autofree char *body =
    g_strdup_printf(SESSION_VERSION ".%" G_GINT64_FORMAT ".%s", now, nonce_hex);
  g_autofree char *mac = session_mac(auth->secret, body, strlen(body));
  return g_strconcat(body, ".", mac, NULL);
}

/* "v1." DIGITS{1,12} "." HEX{32} "." HEX{64}: the issue time in *issued, the length of the
 * part the MAC covers in *body_length. */
static gboolean
session_parse(const char *value, gint64 *issued, gsize *body_length)
{
  const char *prefix = SESSION_VERSION ".";
  if (!g_str_has_prefix(value, prefix))
    return FALSE;
  const char *p = value + strlen(prefix);
  gsize digits = 0;
  gint64 number = 0;
  while (g_ascii_isdigit(p[digits]) && digits < 12)
    number = number * 10 + (p[digits++] - '0');
  if (digits == 0 || p[digits] != '.')
    return FALSE;
  p += digits + 1;
  if (strlen(p) != 2 * NONCE_BYTES + 1 + 64 || !is_lower_hex(p, 2 * NONCE_BYTES) ||
      p[2 * NONCE_BYTES] != '.' || !is_lower_hex(p + 2 * NONCE_BYTES + 1, 64))
    return FALSE;
  *issued = number;
  *body_length = (gsize)(p + 2 * NONCE_BYTES - value);
  return TRUE;
}

gboolean
web_session_check(const guint8 *secret, const char *value, gint64 now)
{
  gint64 issued;
  gsize body_length;
  if (value == NULL || !session_parse(value, &issued, &body_length))
    return FALSE;
  g_autofree char *mac = session_mac(secret, value, body_length);
  if (!same_text(mac, value + body_length + 1, 64))
    return FALSE;
  return issued <= now + SESSION_SKEW_SECONDS && now - issued <= WEB_SESSION_LIFETIME_SECONDS;
}

/* ---- the Cookie header -------------------------------------------------------------------- */

char *
web_cookie_find(const char *header, const char *name)
{
  if (header == NULL)
    return NULL;
  g_auto(GStrv) pairs = g_strsplit(header, ";", 64);
  char *found = NULL;
  for (guint i = 0; pairs[i] != NULL; i++) {
    char *pair = g_strstrip(pairs[i]);
    char *equals = strchr(pair, '=');
    if (equals == NULL)
      continue;
    *equals = '\0';
    if (strcmp(g_strstrip(pair), name) != 0)
      continue;
    if (found != NULL) {
      g_free(found);
      return NULL;
    }
    found = g_strdup(g_strstrip(equals + 1));
  }
  return found;
}
