/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* identity.c: this device's Ed25519 key pair (OpenSSL 3 EVP).
 *
 * The key is made on first start and written as PKCS#8 PEM, mode 0600 from the moment
 * the file exists (path.tmp is created 0600 with O_EXCL, synced, then moved into place
 * without replacing anything). An existing file is never written to: a damaged or
 * foreign key is an error for the user to look at, because replacing it would change
 * who this device is. A key file others can read is refused. Key material is never
 * logged. */
#include "identity-private.h"
#include "file-util.h"
#include "openssl-errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* clang-format off */
G_DEFINE_QUARK(hark-identity-error-quark, hark_identity_error)
/* clang-format on */

/* A PEM Ed25519 key is about 120 bytes; anything much larger is not one. */
#define MAX_KEY_FILE_SIZE (64 * 1024)

struct _HarkIdentity {
  EVP_PKEY *key;
  guint8 public_key[HARK_IDENTITY_PUBLIC_KEY_SIZE];
  char *fingerprint;
};

/* ---- errors ----------------------------------------------------------------------- */

/* OpenSSL's errors after message, as this module's error code. */
#define set_openssl_error(error, code, ...) \
  hark_set_openssl_error(error, HARK_IDENTITY_ERROR, code, __VA_ARGS__)

/* The errno of a failed file operation, as this module's IO error. */
static void
set_io_error(GError **error, const char *what, const char *path, int saved_errno)
{
  hark_set_errno_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_IO, what, path, saved_errno);
}

static gboolean
identity_set_corrupt(GError **error, const char *path, const char *problem)
{
  g_set_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_CORRUPT,
              "%s: %s; the file was NOT replaced; move it away to create a new identity", path,
              problem);
  return FALSE;
}

/* ---- the identity from a key ------------------------------------------------------ */

static HarkIdentity *
identity_new(EVP_PKEY *key, GError **error)
{
  g_autoptr(HarkIdentity) identity = g_new0(HarkIdentity, 1);
  size_t length = sizeof identity->public_key;

  identity->key = key;
  if (EVP_PKEY_get_raw_public_key(key, identity->public_key, &length) != 1 ||
      length != sizeof identity->public_key) {
    set_openssl_error(error, HARK_IDENTITY_ERROR_CRYPTO, "cannot read the public key");
    return NULL;
  }
  identity->fingerprint =
    g_compute_checksum_for_data(G_CHECKSUM_SHA256, identity->public_key, length);
  return g_steal_pointer(&identity);
}

static EVP_PKEY *
identity_generate_key(GError **error)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (key == NULL)
    set_openssl_error(error, HARK_IDENTITY_ERROR_CRYPTO, "cannot generate an Ed25519 key");
  return key;
}

/* ---- loading ---------------------------------------------------------------------- */

static gboolean
identity_check_mode(int fd, const char *path, GError **error)
{
  struct stat st;
  if (fstat(fd, &st) != 0) {
    set_io_error(error, "cannot stat", path, errno);
    return FALSE;
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_IO, "%s: not a regular file", path);
    return FALSE;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    g_set_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_PERMISSIONS,
                "%s: mode %04o lets other users reach the device key; run 'chmod 600 %s'", path,
                (unsigned)(st.st_mode & 07777), path);
    return FALSE;
  }
  return TRUE;
}

/* Reads the whole file into a buffer the caller cleanses and frees. */
static char *
identity_read_fd(int fd, const char *path, gsize *length, GError **error)
{
  char *buffer = g_malloc(MAX_KEY_FILE_SIZE + 1);
  gsize done = 0;

  while (done <= MAX_KEY_FILE_SIZE) {
    ssize_t n = read(fd, buffer + done, MAX_KEY_FILE_SIZE + 1 - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      set_io_error(error, "cannot read", path, errno);
      OPENSSL_cleanse(buffer, done);
      g_free(buffer);
      return NULL;
    }
    if (n == 0)
      break;
    done += (gsize)n;
  }
  *length = done;
  return buffer;
}

/* Never prompt for a passphrase: an encrypted key is not one hark made. */
static int
identity_no_passphrase(char *buffer, int size, int rwflag, void *data)
{
  return -1;
}

static EVP_PKEY *
identity_parse_key(const char *pem, gsize length, const char *path, GError **error)
{
  if (length == 0) {
    identity_set_corrupt(error, path, "the key file is empty");
    return NULL;
  }
  if (length > MAX_KEY_FILE_SIZE) {
    identity_set_corrupt(error, path, "too large to be an Ed25519 key");
    return NULL;
  }

  BIO *bio = BIO_new_mem_buf(pem, (int)length);
  if (bio == NULL) {
    set_openssl_error(error, HARK_IDENTITY_ERROR_CRYPTO, "%s: cannot read the key", path);
    return NULL;
  }
  EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, identity_no_passphrase, NULL);
  BIO_free(bio);

  if (key == NULL) {
    g_autofree char *details = hark_openssl_take_errors();
    g_autofree char *problem =
      g_strdup_printf("not an Ed25519 private key in PEM form (%s)", details);
    identity_set_corrupt(error, path, problem);
    return NULL;
  }
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    g_autofree char *problem =
      g_strdup_printf("is a %s key, expected Ed25519", EVP_PKEY_get0_type_name(key));
    identity_set_corrupt(error, path, problem);
    EVP_PKEY_free(key);
    return NULL;
  }
  return key;
}

static HarkIdentity *
identity_load_fd(int fd, const char *path, GError **error)
{
  gsize length = 0;

  if (!identity_check_mode(fd, path, error))
    return NULL;
  char *pem = identity_read_fd(fd, path, &length, error);
  if (pem == NULL)
    return NULL;
  EVP_PKEY *key = identity_parse_key(pem, length, path, error);
  OPENSSL_cleanse(pem, length);
  g_free(pem);
  if (key == NULL)
    return NULL;
  return identity_new(key, error);
}

HarkIdentity *
hark_identity_load(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_io_error(error, "cannot open", path, errno);
    return NULL;
  }
  HarkIdentity *identity = identity_load_fd(fd, path, error);
  close(fd);
  return identity;
}

/* ---- creating --------------------------------------------------------------------- */

/* The private key as PKCS#8 PEM, in a BIO the caller frees (it cleanses on free). */
static BIO *
identity_key_to_pem(EVP_PKEY *key, GError **error)
{
  BIO *bio = BIO_new(BIO_s_secmem());
  if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
    set_openssl_error(error, HARK_IDENTITY_ERROR_CRYPTO, "cannot encode the key");
    BIO_free(bio);
    return NULL;
  }
  return bio;
}

/* Creates tmp_path (0600, must not exist; a leftover of an interrupted start is
 * removed once: it never was the identity) and writes the key to it, synced. */
static gboolean
identity_write_new_file(EVP_PKEY *key, const char *tmp_path, GError **error)
{
  BIO *bio = identity_key_to_pem(key, error);
  if (bio == NULL)
    return FALSE;

  int fd = open(tmp_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == EEXIST && unlink(tmp_path) == 0)
    fd = open(tmp_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    set_io_error(error, "cannot create", tmp_path, errno);
    BIO_free(bio);
    return FALSE;
  }

  char *pem = NULL;
  long length = BIO_get_mem_data(bio, &pem);
  gboolean ok =
    fchmod(fd, 0600) == 0 && hark_file_write_all(fd, pem, (gsize)length) && fsync(fd) == 0;
  int saved_errno = errno;
  BIO_free(bio);
  if (close(fd) != 0 && ok) {
    ok = FALSE;
    saved_errno = errno;
  }
  if (!ok) {
    set_io_error(error, "cannot write", tmp_path, saved_errno);
    unlink(tmp_path);
  }
  return ok;
}

/* Returns the new identity; *lost_race is set when another process created path first. */
static HarkIdentity *
identity_create(const char *path, gboolean *lost_race, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *tmp_path = g_strconcat(path, ".tmp", NULL);

  *lost_race = FALSE;
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    set_io_error(error, "cannot create the directory", dir, errno);
    return NULL;
  }
  EVP_PKEY *key = identity_generate_key(error);
  if (key == NULL)
    return NULL;
  if (!identity_write_new_file(key, tmp_path, error)) {
    EVP_PKEY_free(key);
    return NULL;
  }
  if (!hark_file_move_into_place(tmp_path, path, FALSE)) {
    int saved_errno = errno;
    unlink(tmp_path);
    EVP_PKEY_free(key);
    if (saved_errno == EEXIST)
      *lost_race = TRUE;
    else
      set_io_error(error, "cannot move the new key into place", path, saved_errno);
    return NULL;
  }
  hark_file_sync_parent_dir(path);
  return identity_new(key, error);
}

HarkIdentity *
hark_identity_load_or_create(const char *path, gboolean *created, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  if (created != NULL)
    *created = FALSE;

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT) {
    set_io_error(error, "cannot open", path, errno);
    return NULL;
  }
  if (fd < 0) {
    gboolean lost_race;
    HarkIdentity *identity = identity_create(path, &lost_race, error);
    if (!lost_race) {
      if (created != NULL)
        *created = identity != NULL;
      return identity;
    }
    /* Another process made the key between our open() and our rename: use theirs. */
    return hark_identity_load(path, error);
  }
  HarkIdentity *identity = identity_load_fd(fd, path, error);
  close(fd);
  return identity;
}

/* ---- using it --------------------------------------------------------------------- */

GBytes *
hark_identity_get_public_key(HarkIdentity *identity)
{
  g_return_val_if_fail(identity != NULL, NULL);
  return g_bytes_new(identity->public_key, sizeof identity->public_key);
}

EVP_PKEY *
hark_identity_get_private_key(HarkIdentity *identity)
{
  g_return_val_if_fail(identity != NULL, NULL);
  return identity->key;
}

const char *
hark_identity_get_fingerprint(HarkIdentity *identity)
{
  g_return_val_if_fail(identity != NULL, NULL);
  return identity->fingerprint;
}

char *
hark_identity_get_public_pem(HarkIdentity *identity)
{
  g_return_val_if_fail(identity != NULL, NULL);

  BIO *bio = BIO_new(BIO_s_mem());
  char *pem = NULL;
  if (bio != NULL && PEM_write_bio_PUBKEY(bio, identity->key) == 1) {
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    pem = g_strndup(data, (gsize)length);
  } else {
    g_autofree char *details = hark_openssl_take_errors();
    g_critical("cannot encode the public key: %s", details);
  }
  BIO_free(bio);
  return pem;
}

/* data may be empty, and then g_bytes_get_data() may give NULL. */
static const guint8 *
bytes_data(GBytes *bytes, gsize *length)
{
  static const guint8 empty[1];
  const guint8 *data = g_bytes_get_data(bytes, length);
  return data != NULL ? data : empty;
}

GBytes *
hark_identity_sign(HarkIdentity *identity, GBytes *data, GError **error)
{
  g_return_val_if_fail(identity != NULL, NULL);
  g_return_val_if_fail(data != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  gsize length;
  const guint8 *message = bytes_data(data, &length);
  guint8 signature[HARK_IDENTITY_SIGNATURE_SIZE];
  size_t signature_length = sizeof signature;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();

  if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, identity->key) != 1 ||
      EVP_DigestSign(ctx, signature, &signature_length, message, length) != 1) {
    set_openssl_error(error, HARK_IDENTITY_ERROR_CRYPTO, "cannot sign");
    EVP_MD_CTX_free(ctx);
    return NULL;
  }
  EVP_MD_CTX_free(ctx);
  return g_bytes_new(signature, signature_length);
}

gboolean
hark_identity_verify(GBytes *public_key, GBytes *data, GBytes *signature, GError **error)
{
  g_return_val_if_fail(public_key != NULL, FALSE);
  g_return_val_if_fail(data != NULL, FALSE);
  g_return_val_if_fail(signature != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

  gsize key_length, length, signature_length;
  const guint8 *raw_key = bytes_data(public_key, &key_length);
  const guint8 *message = bytes_data(data, &length);
  const guint8 *sig = bytes_data(signature, &signature_length);

  if (key_length != HARK_IDENTITY_PUBLIC_KEY_SIZE) {
    g_set_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_BAD_SIGNATURE,
                "the public key is %" G_GSIZE_FORMAT " bytes, expected %d", key_length,
                HARK_IDENTITY_PUBLIC_KEY_SIZE);
    return FALSE;
  }
  if (signature_length != HARK_IDENTITY_SIGNATURE_SIZE) {
    g_set_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_BAD_SIGNATURE,
                "the signature is %" G_GSIZE_FORMAT " bytes, expected %d", signature_length,
                HARK_IDENTITY_SIGNATURE_SIZE);
    return FALSE;
  }

  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw_key, key_length);
  if (key == NULL) {
    set_openssl_error(error, HARK_IDENTITY_ERROR_BAD_SIGNATURE, "not an Ed25519 public key");
    return FALSE;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int result = -1;
  if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1)
    result = EVP_DigestVerify(ctx, sig, signature_length, message, length);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);

  if (result == 1) {
    ERR_clear_error();
    return TRUE;
  }
  if (result == 0) {
    ERR_clear_error();
    g_set_error_literal(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_BAD_SIGNATURE,
                        "the signature does not match the data and key");
  } else {
    set_openssl_error(error, HARK_IDENTITY_ERROR_CRYPTO, "cannot verify");
  }
  return FALSE;
}

void
hark_identity_free(HarkIdentity *identity)
{
  if (identity == NULL)
    return;
  EVP_PKEY_free(identity->key);
  g_free(identity->fingerprint);
  g_free(identity);
}
