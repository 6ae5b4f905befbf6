/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-webauth.c: libFuzzer target for what a browser sends the web frontend before it is
 * let in (frontends/web/auth.c): the input is a Cookie header, whose hark_session value
 * web_cookie_find finds and web_session_check checks against a fixed secret at a fixed
 * time; the input itself is also checked as a session value and taken as a login token
 * (against a store with one token minted). Invariants: a found value is a part of the
 * header without ';' or white space at its ends; a session is only accepted in its one
 * shape; no token but the minted one is ever taken. Seeds: corpus/webauth (a good cookie
 * among others made by make-webauth-seeds.py). */
#include <stdlib.h>
#include <string.h>

#include "../../frontends/web/web.h"
#include "fuzz-common.h"

/* The secret of the seeds: bytes 0, 1, ..., 31; the time: 2027-01-15 (the seeds' cookie
 * was issued a day before). */
#define FUZZ_WEB_NOW 1800000000

static WebAuth auth;
static char *minted;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  auth.tokens = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < WEB_SECRET_BYTES; i++)
    auth.secret[i] = (guint8)i;
  return 0;
}

/* Accepted: "v1." digits "." 32 hex "." 64 hex, nothing else. */
static void
check_accepted_shape(const char *value)
{
  g_auto(GStrv) parts = g_strsplit(value, ".", -1);
  if (g_strv_length(parts) != 4 || strcmp(parts[0], "v1") != 0 || strlen(parts[2]) != 32 ||
      strlen(parts[3]) != 64)
    abort();
}

static void
check_session(const char *value)
{
  if (web_session_check(auth.secret, value, FUZZ_WEB_NOW)) {
    check_accepted_shape(value);
    fuzz_say("session accepted", NULL);
  }
}

static void
check_cookie(const char *header)
{
  g_autofree char *value = web_cookie_find(header, WEB_SESSION_COOKIE);
  if (value == NULL)
    return;
  gsize length = strlen(value);
  if (strchr(value, ';') != NULL || strstr(header, value) == NULL ||
      (length > 0 && (g_ascii_isspace(value[0]) || g_ascii_isspace(value[length - 1]))))
    abort();
  fuzz_say("cookie", value);
  check_session(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup((const char *)data, size); /* as a header: up to a NUL */
  check_cookie(text);
  check_session(text);
  /* A fresh store each time, with one token in it: only that one may be taken. */
  g_hash_table_remove_all(auth.tokens);
  g_clear_pointer(&minted, g_free);
  minted = web_auth_mint_token(&auth, 0, NULL);
  if (minted == NULL || !web_token_is_valid(minted))
    abort();
  gboolean taken = web_auth_take_token(&auth, text, 1);
  if (taken != (strcmp(text, minted) == 0))
    abort();
  if (web_token_is_valid(text) && strlen(text) != 64)
    abort();
  return 0;
}
