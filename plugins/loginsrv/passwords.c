/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* passwords.c: password hashes, argon2id (libargon2) with a 16-byte salt from OpenSSL's
 * RNG and a 32-byte tag, kept as argon2's encoded string ("$argon2id$v=19$m=...,t=...,
 * p=1$salt$tag"), so the cost it was made with travels with it and a later change of
 * the configured cost does not lock anyone out. Verification (argon2id_verify) compares
 * in constant time. Passwords and hashes are never logged; buffers that held a password
 * are cleansed before they are freed. */
#include "loginsrv.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#define SALT_BYTES 16
#define TAG_BYTES 32
/* One lane: the server's parallelism is across requests, not within one. */
#define PARALLELISM 1

char *
login_password_hash(const char *password, guint32 memory_kib, guint32 iterations, char **problem)
{
  guint8 salt[SALT_BYTES];
  if (RAND_bytes(salt, sizeof salt) != 1) {
    *problem = g_strdup("the random number generator failed");
    return NULL;
  }
  gsize length =
    argon2_encodedlen(iterations, memory_kib, PARALLELISM, SALT_BYTES, TAG_BYTES, Argon2_id);
  char *encoded = g_malloc0(length);
  int result =
    argon2id_hash_encoded(iterations, memory_kib, PARALLELISM, password, strlen(password), salt,
                          sizeof salt, TAG_BYTES, encoded, length);
  OPENSSL_cleanse(salt, sizeof salt);
  if (result != ARGON2_OK) {
    *problem = g_strdup_printf("argon2id failed: %s", argon2_error_message(result));
    g_free(encoded);
    return NULL;
  }
  return encoded;
}

LoginPasswordCheck
login_password_verify(const char *encoded, const char *password, const char **problem)
{
  if (!g_str_has_prefix(encoded, "$argon2id$")) {
    *problem = "the stored hash is not an argon2id hash";
    return LOGIN_PASSWORD_ERROR;
  }
  int result = argon2id_verify(encoded, password, strlen(password));
  if (result == ARGON2_OK)
    return LOGIN_PASSWORD_MATCH;
  if (result == ARGON2_VERIFY_MISMATCH)
    return LOGIN_PASSWORD_MISMATCH;
  *problem = argon2_error_message(result);
  return LOGIN_PASSWORD_ERROR;
}

void
login_secret_free(char *secret)
{
  if (secret == NULL)
    return;
  OPENSSL_cleanse(secret, strlen(secret));
  g_free(secret);
}
