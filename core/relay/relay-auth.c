/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-auth.c: the relay's secret, REST-API credentials and nonces (relay-auth.h). */
#include "relay-auth.h"

#include "stun.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_MAC_HEX 24 /* hex digits of the MAC kept in a nonce (96 bits) */

/* Secrets are read into buffers of this size, and wiped when they go. */
static void
secret_free(gpointer data)
{
  explicit_bzero(data, RELAY_SECRET_MAX + 1);
  g_free(data);
}

GBytes *
hark_relay_secret_read(const char *path, const char *what, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int saved = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s %s: cannot open: %s", what,
                path, g_strerror(saved));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s %s is not a regular file", what,
                path);
    return NULL;
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                "%s %s has mode %04o: it holds the TURN server's secret, so others may not "
                "read it (chmod 600 %s)",
                what, path, (unsigned)(st.st_mode & 07777), path);
    return NULL;
  }
  guint8 *data = g_malloc(RELAY_SECRET_MAX + 1);
  gsize size = 0;
  ssize_t n;
  while (size <= RELAY_SECRET_MAX &&
         (n = read(fd, data + size, RELAY_SECRET_MAX + 1 - size)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      close(fd);
      secret_free(data);
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s %s: cannot read: %s", what,
                  path, g_strerror(saved));
      return NULL;
    }
    size += (gsize)n;
  }
  close(fd);
  while (size > 0 && g_ascii_isspace(data[size - 1]))
    size--;
  if (size == 0 || size > RELAY_SECRET_MAX) {
    secret_free(data);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "%s %s must hold the secret (1-%d bytes)", what, path, RELAY_SECRET_MAX);
    return NULL;
  }
  return g_bytes_new_with_free_func(data, size, secret_free, data);
}

/* A new secret file, written whole before anyone can open it by name. */
static gboolean
make_secret(const char *path, GError **error)
{
  guint8 random[32];
  if (RAND_bytes(random, sizeof random) != 1) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "no random bytes for the relay's secret (OpenSSL RAND_bytes failed)");
    return FALSE;
  }
  char hex[2 * sizeof random + 2];
  for (gsize i = 0; i < sizeof random; i++)
    g_snprintf(hex + 2 * i, 3, "%02x", random[i]);
  hex[2 * sizeof random] = '\n';
  explicit_bzero(random, sizeof random);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int saved = errno;
    explicit_bzero(hex, sizeof hex);
    if (saved == EEXIST)
      return TRUE; /* made meanwhile: read what is there */
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                "cannot create the relay's secret %s: %s", path, g_strerror(saved));
    return FALSE;
  }
  gsize length = 2 * sizeof random + 1;
  gboolean ok = write(fd, hex, length) == (ssize_t)length && fsync(fd) == 0;
  int saved = errno;
  explicit_bzero(hex, sizeof hex);
  close(fd);
  if (!ok) {
    unlink(path);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                "cannot write the relay's secret %s: %s", path, g_strerror(saved));
  }
  return ok;
}

GBytes *
hark_relay_secret_load(const char *state_dir, GError **error)
{
  g_autofree char *path = g_build_filename(state_dir, "relay-secret", NULL);
  if (g_mkdir_with_parents(state_dir, 0700) != 0) {
    int saved = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "cannot create %s: %s", state_dir,
                g_strerror(saved));
    return NULL;
  }
  if (!g_file_test(path, G_FILE_TEST_EXISTS) && !make_secret(path, error))
    return NULL;
  return hark_relay_secret_read(path, "the relay's secret", error);
}

char *
hark_relay_password(GBytes *secret, const char *username)
{
  gsize secret_size = 0;
  const guint8 *key = g_bytes_get_data(secret, &secret_size);
  guint8 mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  if (HMAC(EVP_sha1(), key, (int)secret_size, (const guint8 *)username, strlen(username), mac,
           &mac_size) == NULL)
    g_error("HMAC-SHA1 failed"); /* only when OpenSSL itself is broken */
  return g_base64_encode(mac, mac_size);
}

RelayCredential
hark_relay_credential_read(GBytes *secret, const char *username, gsize length, const char *realm,
                           gint64 now_s, char **user, guint8 key[16])
{
  const char *colon = memchr(username, ':', length);
  if (colon == NULL || colon == username || colon - username > 18 || colon + 1 == username + length)
    return RELAY_CREDENTIAL_MALFORMED;
  gint64 expiry = 0;
  for (const char *p = username; p < colon; p++) {
    if (!g_ascii_isdigit(*p))
      return RELAY_CREDENTIAL_MALFORMED;
    expiry = expiry * 10 + (*p - '0');
  }
  if (memchr(username, '\0', length) != NULL)
    return RELAY_CREDENTIAL_MALFORMED;
  if (expiry <= now_s)
    return RELAY_CREDENTIAL_EXPIRED;
  g_autofree char *whole = g_strndup(username, length);
  g_autofree char *password = hark_relay_password(secret, whole);
  hark_stun_long_term_key(whole, realm, password, key);
  explicit_bzero(password, strlen(password));
  *user = g_strndup(colon + 1, (gsize)(username + length - colon - 1));
  return RELAY_CREDENTIAL_OK;
}

/* The MAC part of a nonce, as hex. */
static void
nonce_mac(const guint8 key[RELAY_NONCE_KEY_SIZE], const RelayAddr *client, const char *expiry_hex,
          char out[NONCE_MAC_HEX + 1])
{
  guint8 mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  guint8 input[8 + sizeof(RelayAddr)];
  memcpy(input, expiry_hex, 8);
  memcpy(input + 8, client, sizeof *client);
  HMAC(EVP_sha256(), key, RELAY_NONCE_KEY_SIZE, input, sizeof input, mac, &mac_size);
  for (int i = 0; i < NONCE_MAC_HEX / 2; i++)
    g_snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

char *
hark_relay_nonce_make(const guint8 key[RELAY_NONCE_KEY_SIZE], const RelayAddr *client, gint64 now_s)
{
  char expiry[9];
  g_snprintf(expiry, sizeof expiry, "%08x", (guint32)(now_s + RELAY_NONCE_S));
  char mac[NONCE_MAC_HEX + 1];
  nonce_mac(key, client, expiry, mac);
  return g_strconcat(expiry, mac, NULL);
}

gboolean
hark_relay_nonce_check(const guint8 key[RELAY_NONCE_KEY_SIZE], const RelayAddr *client,
                       const char *nonce, gsize length, gint64 now_s)
{
  if (length != 8 + NONCE_MAC_HEX)
    return FALSE;
  char expiry[9];
  memcpy(expiry, nonce, 8);
  expiry[8] = '\0';
  char mac[NONCE_MAC_HEX + 1];
  nonce_mac(key, client, expiry, mac);
  guint8 diff = 0;
  for (int i = 0; i < NONCE_MAC_HEX; i++)
    diff |= (guint8)(mac[i] ^ nonce[8 + i]);
  if (diff != 0)
    return FALSE;
  char *end = NULL;
  guint64 until = g_ascii_strtoull(expiry, &end, 16);
  return end == expiry + 8 && (gint64)until > (now_s & 0xFFFFFFFF);
}
