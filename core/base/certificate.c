/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* certificate.c: the login server's CA, the certificates it issues (devices, its own
 * TLS server), their verification, and signed requests (hark/certificate.h), with
 * OpenSSL 3's EVP and X509 APIs.
 *
 * The CA key is written once (mode 0600 from the moment the file exists, O_EXCL, moved
 * into place without replacing anything) and never replaced: a damaged key is an error
 * for the operator, because a new CA would make every client's pinned certificate
 * useless. A HarkCa is read-only once loaded, so several threads may issue
 * certificates with it at once. Key material is never logged. */
#include "hark/certificate.h"
#include "file-util.h"
#include "openssl-errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* clang-format off */
G_DEFINE_QUARK(hark-certificate-error-quark, hark_certificate_error)
/* clang-format on */

#define CA_KEY_FILE "ca-key.pem"
#define CA_CERT_FILE "ca.pem"
/* A PEM key or certificate is a few hundred bytes; anything far larger is not one. */
#define MAX_PEM_FILE (64 * 1024)
#define MAX_CERTIFICATE_SIZE (16 * 1024)
#define DAY_SECONDS (24 * 3600)
#define CA_LIFETIME (3652 * DAY_SECONDS)
#define SERVER_LIFETIME (730 * DAY_SECONDS)
/* A server certificate this close to its end is replaced at the next start. */
#define SERVER_RENEW_BEFORE (30 * DAY_SECONDS)
/* The CA and server certificates start an hour early: clients' clocks differ. */
#define BACKDATE_SECONDS 3600
#define SERIAL_BITS 128
#define MAX_USER_LENGTH 64
#define DEVICE_URI_PREFIX "hark:device:"
#define FINGERPRINT_LENGTH 64
#define REQUEST_MAGIC "HARK-REQUEST-2"
#define NONCE_MIN_LENGTH 16
#define NONCE_MAX_LENGTH 64
#define NONCE_RANDOM_BYTES 16

#define LOGIN_PROOF_MAGIC "HARK-LOGIN-1"
#define LOGIN_NONCE_MAGIC "HARK-NONCE-1"
#define LOGIN_NONCE_KEY_INFO "hark login nonce key 1"
#define LOGIN_NONCE_KEY_SIZE 32
#define LOGIN_NONCE_RANDOM_BYTES 16
#define LOGIN_NONCE_MAC_BYTES 16
#define LOGIN_NONCE_MAX_LENGTH 128
/* A nonce dated this far ahead of the checking clock is still taken (several server
 * processes' clocks differ a little). */
#define LOGIN_NONCE_FUTURE_SKEW 30

struct _HarkCa {
  EVP_PKEY *key;
  X509 *cert;
  char *cert_pem;
  guint8 nonce_key[LOGIN_NONCE_KEY_SIZE]; /* HKDF of the CA key: login nonces' MAC key */
};

/* ---- errors ----------------------------------------------------------------------- */

/* OpenSSL's errors after message, as this module's error code. */
#define set_openssl_error(error, code, ...) \
  hark_set_openssl_error(error, HARK_CERTIFICATE_ERROR, code, __VA_ARGS__)

/* The errno of a failed file operation, as this module's IO error. */
static void
set_io_error(GError **error, const char *what, const char *path, int saved_errno)
{
  hark_set_errno_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_IO, what, path,
                       saved_errno);
}

static char *
format_time(gint64 unix_seconds)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(unix_seconds);
  return time != NULL ? g_date_time_format_iso8601(time) : g_strdup("(out of range)");
}

static gboolean
asn1_time_to_unix(const ASN1_TIME *time, gint64 *out)
{
  struct tm tm;
  if (time == NULL || ASN1_TIME_to_tm(time, &tm) != 1)
    return FALSE;
  *out = (gint64)timegm(&tm);
  return TRUE;
}

/* ---- files ------------------------------------------------------------------------ */

static void
cleanse_free(char *buffer, gsize length)
{
  if (buffer == NULL)
    return;
  OPENSSL_cleanse(buffer, length);
  g_free(buffer);
}

/* The whole file (at most MAX_PEM_FILE bytes), NUL-terminated. NULL with *missing set
 * and no error when there is no file. A private file that others may read is refused.
 * Key files: the caller cleanses the buffer. */
static char *
read_pem_file(const char *path, gboolean private_file, gsize *length, gboolean *missing,
              GError **error)
{
  *missing = FALSE;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT)
      *missing = TRUE;
    else
      set_io_error(error, "cannot open", path, errno);
    return NULL;
  }
  struct stat st;
  char *buffer = NULL;
  if (fstat(fd, &st) != 0) {
    set_io_error(error, "cannot stat", path, errno);
  } else if (!S_ISREG(st.st_mode) || st.st_size > MAX_PEM_FILE) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
                "%s: not a PEM file (not a regular file, or larger than %d bytes)", path,
                MAX_PEM_FILE);
  } else if (private_file && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_IO,
                "%s: mode %04o lets other users reach a private key; run 'chmod 600 %s'", path,
                (unsigned)(st.st_mode & 07777), path);
  } else {
    buffer = g_malloc0((gsize)st.st_size + 1);
    ssize_t n;
    do
      n = read(fd, buffer, (gsize)st.st_size);
    while (n < 0 && errno == EINTR);
    if (n != st.st_size) {
      set_io_error(error, "cannot read", path, n < 0 ? errno : EIO);
      cleanse_free(buffer, (gsize)st.st_size);
      buffer = NULL;
    }
    *length = (gsize)st.st_size;
  }
  close(fd);
  return buffer;
}

/* Writes data to a fresh temporary file next to path (created O_EXCL with mode, synced)
 * and moves it to path. Without replace, an existing path is left alone: FALSE, no
 * error, *exists set. */
static gboolean
write_file_atomically(const char *path, const char *data, gsize length, int mode, gboolean replace,
                      gboolean *exists, GError **error)
{
  g_autofree char *tmp_path = g_strconcat(path, ".XXXXXX", NULL);
  *exists = FALSE;
  int fd = g_mkstemp_full(tmp_path, O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0) {
    set_io_error(error, "cannot create a file next to", path, errno);
    return FALSE;
  }
  gboolean ok =
    fchmod(fd, (mode_t)mode) == 0 && hark_file_write_all(fd, data, length) && fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) {
    ok = FALSE;
    saved = errno;
  }
  if (ok && !hark_file_move_into_place(tmp_path, path, replace)) {
    ok = FALSE;
    saved = errno;
  }
  if (!ok) {
    unlink(tmp_path);
    if (saved == EEXIST && !replace)
      *exists = TRUE;
    else
      set_io_error(error, "cannot write", path, saved);
    return FALSE;
  }
  hark_file_sync_parent_dir(path);
  return TRUE;
}

/* ---- PEM and DER ------------------------------------------------------------------ */

static char *
bio_to_string(BIO *bio)
{
  char *data = NULL;
  long length = BIO_get_mem_data(bio, &data);
  return g_strndup(data, (gsize)length);
}

static char *
cert_to_pem(X509 *cert, GError **error)
{
  BIO *bio = BIO_new(BIO_s_mem());
  char *pem = NULL;
  if (bio != NULL && PEM_write_bio_X509(bio, cert) == 1)
    pem = bio_to_string(bio);
  else
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot encode a certificate");
  BIO_free(bio);
  return pem;
}

/* Writes the key as PKCS#8 PEM (mode 0600); the encoding lives in OpenSSL's secure heap
 * and is cleansed when freed. */
static gboolean
write_private_key(const char *path, EVP_PKEY *key, gboolean replace, gboolean *exists,
                  GError **error)
{
  BIO *bio = BIO_new(BIO_s_secmem());
  if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot encode a private key");
    BIO_free(bio);
    return FALSE;
  }
  char *pem = NULL;
  long length = BIO_get_mem_data(bio, &pem);
  gboolean ok = write_file_atomically(path, pem, (gsize)length, 0600, replace, exists, error);
  BIO_free(bio);
  return ok;
}

/* Never prompt for a passphrase: an encrypted key is not one hark made. */
static int
no_passphrase(char *buffer, int size, int rwflag, void *data)
{
  return -1;
}

static X509 *
cert_from_pem(const char *pem, gsize length)
{
  BIO *bio = BIO_new_mem_buf(pem, (int)length);
  X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, no_passphrase, NULL) : NULL;
  BIO_free(bio);
  return cert;
}

/* PEM when it looks like PEM, DER otherwise (all of it must be one certificate). */
static X509 *
cert_from_bytes(GBytes *bytes, GError **error)
{
  gsize length = 0;
  const guint8 *data = bytes != NULL ? g_bytes_get_data(bytes, &length) : NULL;
  X509 *cert = NULL;
  if (data != NULL && length > 0 && length <= MAX_CERTIFICATE_SIZE) {
    static const char pem_start[] = "-----BEGIN";
    if (length >= sizeof pem_start - 1 && memcmp(data, pem_start, sizeof pem_start - 1) == 0) {
      cert = cert_from_pem((const char *)data, length);
    } else {
      const unsigned char *p = data;
      cert = d2i_X509(NULL, &p, (long)length);
      if (cert != NULL && p != data + length)
        g_clear_pointer(&cert, X509_free);
    }
  }
  if (cert == NULL)
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_MALFORMED,
                      "not a certificate in PEM or DER form (%" G_GSIZE_FORMAT " bytes)", length);
  return cert;
}

static gboolean
is_p256(EVP_PKEY *key)
{
  char group[64];
  size_t length = 0;
  return EVP_PKEY_is_a(key, "EC") &&
         EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &length) == 1 &&
         (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
}

/* An ECDSA P-256 private key from PEM; NULL with a reason (no OpenSSL call fails loudly). */
static EVP_PKEY *
p256_key_from_pem(const char *pem, gsize length, const char **problem)
{
  BIO *bio = BIO_new_mem_buf(pem, (int)length);
  EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
  BIO_free(bio);
  ERR_clear_error();
  *problem = NULL;
  if (key == NULL)
    *problem = "not a private key in PEM form";
  else if (!is_p256(key))
    *problem = "not an ECDSA P-256 key";
  if (*problem != NULL)
    g_clear_pointer(&key, EVP_PKEY_free);
  return key;
}

static EVP_PKEY *
ed25519_public_key_from_pem(const char *pem, GError **error)
{
  gsize length = pem != NULL ? strnlen(pem, MAX_PEM_FILE + 1) : 0;
  BIO *bio = length > 0 && length <= MAX_PEM_FILE ? BIO_new_mem_buf(pem, (int)length) : NULL;
  EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL) : NULL;
  BIO_free(bio);
  if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_MALFORMED,
                      "the device key is not an Ed25519 public key (SubjectPublicKeyInfo PEM)");
    return NULL;
  }
  ERR_clear_error();
  return key;
}

/* The raw key and its fingerprint (lower-case hex SHA-256, as hark_identity's). */
static GBytes *
ed25519_raw_key(EVP_PKEY *key, char **fingerprint)
{
  guint8 raw[HARK_IDENTITY_PUBLIC_KEY_SIZE];
  size_t length = sizeof raw;
  if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(key, raw, &length) != 1 || length != sizeof raw) {
    ERR_clear_error();
    return NULL;
  }
  *fingerprint = g_compute_checksum_for_data(G_CHECKSUM_SHA256, raw, length);
  return g_bytes_new(raw, length);
}

/* ---- building certificates -------------------------------------------------------- */

typedef struct {
  const char *common_name;
  EVP_PKEY *subject_key; /* the key certified (its public half) */
  X509 *issuer; /* NULL: self-signed */
  EVP_PKEY *issuer_key;
  gint64 not_before;
  gint64 not_after;
  const char *const *extensions; /* name, value, name, value, ..., NULL */
} CertificateSpec;

static gboolean
set_random_serial(X509 *cert)
{
  BIGNUM *serial = BN_new();
  /* The top bit set: never zero, always exactly SERIAL_BITS long, and positive. */
  gboolean ok = serial != NULL &&
                BN_rand(serial, SERIAL_BITS, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
                BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) != NULL;
  BN_free(serial);
  return ok;
}

static gboolean
set_names_and_times(X509 *cert, const CertificateSpec *spec)
{
  X509_NAME *subject = X509_get_subject_name(cert);
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 (const unsigned char *)spec->common_name, -1, -1, 0) != 1)
    return FALSE;
  X509_NAME *issuer = spec->issuer != NULL ? X509_get_subject_name(spec->issuer) : subject;
  return X509_set_issuer_name(cert, issuer) == 1 &&
         ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)spec->not_before) != NULL &&
         ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)spec->not_after) != NULL;
}

static gboolean
add_extensions(X509 *cert, const CertificateSpec *spec)
{
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, spec->issuer != NULL ? spec->issuer : cert, cert, NULL, NULL, 0);
  for (const char *const *e = spec->extensions; *e != NULL; e += 2) {
    X509_EXTENSION *extension = X509V3_EXT_conf(NULL, &ctx, e[0], e[1]);
    gboolean ok = extension != NULL && X509_add_ext(cert, extension, -1) == 1;
    X509_EXTENSION_free(extension);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

static X509 *
build_certificate(const CertificateSpec *spec, GError **error)
{
  X509 *cert = X509_new();
  if (cert == NULL || X509_set_version(cert, X509_VERSION_3) != 1 || !set_random_serial(cert) ||
      !set_names_and_times(cert, spec) || X509_set_pubkey(cert, spec->subject_key) != 1 ||
      !add_extensions(cert, spec) || X509_sign(cert, spec->issuer_key, EVP_sha256()) <= 0) {
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot make a certificate for '%s'",
                      spec->common_name);
    X509_free(cert);
    return NULL;
  }
  return cert;
}

static EVP_PKEY *
generate_p256_key(GError **error)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (key == NULL)
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot generate a P-256 key");
  return key;
}

/* ---- checking a chain -------------------------------------------------------------- */

static HarkCertificateError
classify_verify_error(int code)
{
  switch (code) {
  case X509_V_ERR_CERT_HAS_EXPIRED:
  case X509_V_ERR_CERT_NOT_YET_VALID:
    return HARK_CERTIFICATE_ERROR_EXPIRED;
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
  case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
  case X509_V_ERR_CERT_SIGNATURE_FAILURE:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_CERT_UNTRUSTED:
  case X509_V_ERR_CERT_REJECTED:
  case X509_V_ERR_AKID_SKID_MISMATCH:
  case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
    return HARK_CERTIFICATE_ERROR_UNTRUSTED;
  default:
    return HARK_CERTIFICATE_ERROR_MALFORMED;
  }
}

static void
set_verify_error(GError **error, X509_STORE_CTX *ctx, gint64 now)
{
  int code = X509_STORE_CTX_get_error(ctx);
  HarkCertificateError kind = classify_verify_error(code);
  const char *which =
    X509_STORE_CTX_get_error_depth(ctx) > 0 ? "the CA certificate" : "the certificate";
  g_autofree char *when = format_time(now);
  const char *hint = kind == HARK_CERTIFICATE_ERROR_UNTRUSTED
                       ? " (it was not issued by the pinned login-server CA)"
                       : "";
  g_set_error(error, HARK_CERTIFICATE_ERROR, kind, "%s does not verify at %s: %s%s", which, when,
              X509_verify_cert_error_string(code), hint);
}

/* Verifies leaf against ca alone (no other trust anchor, no intermediates), with
 * X509_V_FLAG_X509_STRICT, at the time now. */
static gboolean
verify_chain(X509 *ca, X509 *leaf, gint64 now, GError **error)
{
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  gboolean ok = FALSE;
  if (store == NULL || ctx == NULL || X509_STORE_add_cert(store, ca) != 1 ||
      X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1) {
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot set up verification");
  } else {
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_time(param, (time_t)now);
    ok = X509_verify_cert(ctx) == 1;
    if (!ok)
      set_verify_error(error, ctx, now);
    ERR_clear_error();
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

/* ---- the CA ------------------------------------------------------------------------ */

static gboolean
ca_key_refuse(GError **error, const char *path, const char *problem)
{
  g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
              "%s: %s; the file was NOT replaced (a new CA would invalidate every client's "
              "pinned certificate): repair it or move it away",
              path, problem);
  return FALSE;
}

/* NULL with *missing (and no error) when there is no key file. */
static EVP_PKEY *
ca_key_load(const char *path, gboolean *missing, GError **error)
{
  gsize length = 0;
  char *pem = read_pem_file(path, TRUE, &length, missing, error);
  if (pem == NULL)
    return NULL;
  const char *problem;
  EVP_PKEY *key = p256_key_from_pem(pem, length, &problem);
  cleanse_free(pem, length);
  if (key == NULL)
    ca_key_refuse(error, path, problem);
  return key;
}

/* A key made now, or the one another process wrote at the same moment. */
static EVP_PKEY *
ca_key_create(const char *key_path, const char *cert_path, GError **error)
{
  if (g_file_test(cert_path, G_FILE_TEST_EXISTS)) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_IO,
                "%s exists but the CA key %s does not: the key is lost; move %s away to make "
                "a new CA (every client must then pin the new one)",
                cert_path, key_path, cert_path);
    return NULL;
  }
  EVP_PKEY *key = generate_p256_key(error);
  gboolean exists = FALSE;
  if (key != NULL && !write_private_key(key_path, key, FALSE, &exists, error)) {
    g_clear_pointer(&key, EVP_PKEY_free);
    gboolean missing = FALSE;
    if (exists)
      key = ca_key_load(key_path, &missing, error);
  }
  return key;
}

static X509 *
ca_cert_make(EVP_PKEY *key, const char *common_name, GError **error)
{
  static const char *const extensions[] = {
    "basicConstraints",
    "critical,CA:TRUE",
    "keyUsage",
    "critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier",
    "hash",
    NULL,
  };
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  CertificateSpec spec = {
    .common_name = common_name,
    .subject_key = key,
    .issuer_key = key,
    .not_before = now - BACKDATE_SECONDS,
    .not_after = now + CA_LIFETIME,
    .extensions = extensions,
  };
  return build_certificate(&spec, error);
}

/* The existing ca.pem, which must belong to key; NULL with *missing when absent. */
static X509 *
ca_cert_load(const char *path, EVP_PKEY *key, gboolean *missing, GError **error)
{
  gsize length = 0;
  g_autofree char *pem = read_pem_file(path, FALSE, &length, missing, error);
  if (pem == NULL)
    return NULL;
  X509 *cert = cert_from_pem(pem, length);
  if (cert == NULL || X509_check_private_key(cert, key) != 1 || X509_check_ca(cert) == 0) {
    ERR_clear_error();
    X509_free(cert);
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
                "%s: not the CA certificate of the key next to it; the file was NOT replaced",
                path);
    return NULL;
  }
  return cert;
}

/* Loads ca.pem, or makes it when only the key is there (a start interrupted between
 * writing the two, or the operator removed it): the key is what clients trust. */
static X509 *
ca_cert_load_or_make(const char *path, EVP_PKEY *key, const char *common_name, GError **error)
{
  gboolean missing = FALSE, exists = FALSE;
  X509 *cert = ca_cert_load(path, key, &missing, error);
  if (cert != NULL || !missing)
    return cert;
  cert = ca_cert_make(key, common_name, error);
  g_autofree char *pem = cert != NULL ? cert_to_pem(cert, error) : NULL;
  if (pem == NULL || !write_file_atomically(path, pem, strlen(pem), 0644, TRUE, &exists, error))
    g_clear_pointer(&cert, X509_free);
  return cert;
}

/* The MAC key of login nonces, derived from the CA key (HKDF-SHA256): every login-server
 * process that holds the CA makes and takes the same nonces, with no file or state of
 * their own. */
static gboolean
derive_nonce_key(EVP_PKEY *key, guint8 *out, GError **error)
{
  unsigned char *der = NULL;
  int length = i2d_PrivateKey(key, &der);
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
  char digest[] = "SHA256";
  char info[] = LOGIN_NONCE_KEY_INFO;
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, der, length > 0 ? (size_t)length : 0),
    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, strlen(info)),
    OSSL_PARAM_construct_end(),
  };
  gboolean ok =
    length > 0 && ctx != NULL && EVP_KDF_derive(ctx, out, LOGIN_NONCE_KEY_SIZE, params) == 1;
  if (!ok)
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot derive the nonce key");
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (der != NULL)
    OPENSSL_clear_free(der, (size_t)length);
  return ok;
}

HarkCa *
hark_ca_load_or_create(const char *dir, const char *common_name, GError **error)
{
  g_return_val_if_fail(dir != NULL && common_name != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  if (g_mkdir_with_parents(dir, 0700) != 0) {
    set_io_error(error, "cannot create the directory", dir, errno);
    return NULL;
  }
  g_autofree char *key_path = g_build_filename(dir, CA_KEY_FILE, NULL);
  g_autofree char *cert_path = g_build_filename(dir, CA_CERT_FILE, NULL);
  gboolean missing = FALSE;
  GError *local = NULL;
  EVP_PKEY *key = ca_key_load(key_path, &missing, &local);
  if (key == NULL && missing)
    key = ca_key_create(key_path, cert_path, &local);
  X509 *cert = key != NULL ? ca_cert_load_or_make(cert_path, key, common_name, &local) : NULL;
  char *pem = cert != NULL ? cert_to_pem(cert, &local) : NULL;
  if (pem == NULL) {
    g_propagate_error(error, local);
    X509_free(cert);
    EVP_PKEY_free(key);
    return NULL;
  }
  HarkCa *ca = g_new0(HarkCa, 1);
  ca->key = key;
  ca->cert = cert;
  ca->cert_pem = pem;
  if (!derive_nonce_key(key, ca->nonce_key, error)) {
    hark_ca_free(ca);
    return NULL;
  }
  return ca;
}

const char *
hark_ca_get_certificate_pem(HarkCa *ca)
{
  g_return_val_if_fail(ca != NULL, NULL);
  return ca->cert_pem;
}

void
hark_ca_free(HarkCa *ca)
{
  if (ca == NULL)
    return;
  EVP_PKEY_free(ca->key);
  X509_free(ca->cert);
  g_free(ca->cert_pem);
  OPENSSL_cleanse(ca->nonce_key, sizeof ca->nonce_key);
  g_free(ca);
}

/* ---- device certificates ----------------------------------------------------------- */

/* A user name the certificate can carry unambiguously (the login server's own rules are
 * stricter): a ':' would make the device URI ambiguous. */
static gboolean
check_user(const char *user, GError **error)
{
  gsize length = strlen(user);
  gboolean ok = length > 0 && length <= MAX_USER_LENGTH && g_utf8_validate(user, -1, NULL);
  for (const char *p = user; ok && *p != '\0'; p++)
    ok = *p != ':' && !g_ascii_iscntrl(*p);
  if (!ok)
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
                "cannot certify the user name '%.64s': it must be 1-%d bytes of UTF-8 without "
                "':' or control characters",
                user, MAX_USER_LENGTH);
  return ok;
}

gboolean
hark_account_id_is_valid(const char *account_id)
{
  return account_id != NULL && strlen(account_id) == HARK_ACCOUNT_ID_LENGTH &&
         strspn(account_id, "0123456789abcdef") == HARK_ACCOUNT_ID_LENGTH;
}

char *
hark_account_id_new(GError **error)
{
  guint8 random[HARK_ACCOUNT_ID_LENGTH / 2];
  if (RAND_bytes(random, sizeof random) != 1) {
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot make an account id");
    return NULL;
  }
  GString *id = g_string_sized_new(HARK_ACCOUNT_ID_LENGTH);
  for (gsize i = 0; i < sizeof random; i++)
    g_string_append_printf(id, "%02x", random[i]);
  return g_string_free(id, FALSE);
}

char *
hark_ca_issue_device(HarkCa *ca, const char *user, const char *account_id,
                     const char *public_key_pem, gint64 not_before, gint64 lifetime_seconds,
                     GError **error)
{
  g_return_val_if_fail(ca != NULL && user != NULL && account_id != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  if (lifetime_seconds <= 0) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
                "a certificate lifetime must be positive, not %" G_GINT64_FORMAT, lifetime_seconds);
    return NULL;
  }
  if (!check_user(user, error))
    return NULL;
  if (!hark_account_id_is_valid(account_id)) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
                "cannot certify the account id '%.64s': it must be %d lower-case hex digits",
                account_id, HARK_ACCOUNT_ID_LENGTH);
    return NULL;
  }
  EVP_PKEY *key = ed25519_public_key_from_pem(public_key_pem, error);
  if (key == NULL)
    return NULL;
  g_autofree char *fingerprint = NULL;
  g_autoptr(GBytes) raw = ed25519_raw_key(key, &fingerprint);
  if (raw == NULL) {
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot read the device key");
    EVP_PKEY_free(key);
    return NULL;
  }
  g_autofree char *san =
    g_strdup_printf("URI:" DEVICE_URI_PREFIX "%s:%s:%s", user, account_id, fingerprint);
  const char *const extensions[] = {
    "basicConstraints",
    "critical,CA:FALSE",
    "keyUsage",
    "critical,digitalSignature",
    /* Only the device purpose: never serverAuth or clientAuth, so that no TLS client
     * takes a device for a web server (see hark_certificate_verify_server). */
    "extendedKeyUsage",
    "critical," HARK_CERTIFICATE_DEVICE_PURPOSE,
    "subjectKeyIdentifier",
    "hash",
    "authorityKeyIdentifier",
    "keyid:always",
    "subjectAltName",
    san,
    NULL,
  };
  CertificateSpec spec = {
    .common_name = user,
    .subject_key = key,
    .issuer = ca->cert,
    .issuer_key = ca->key,
    .not_before = not_before,
    .not_after = not_before + lifetime_seconds,
    .extensions = extensions,
  };
  X509 *cert = build_certificate(&spec, error);
  char *pem = cert != NULL ? cert_to_pem(cert, error) : NULL;
  X509_free(cert);
  EVP_PKEY_free(key);
  return pem;
}

/* ---- purposes (extended key usage) ------------------------------------------------- */

typedef enum {
  PURPOSES_NONE, /* no extended key usage at all */
  PURPOSES_DEVICE, /* the device purpose, and neither serverAuth nor clientAuth */
  PURPOSES_SERVER, /* serverAuth, and not the device purpose */
  PURPOSES_OTHER, /* anything else (both, or neither of them) */
} Purposes;

/* What cert's extended key usage makes it: a device, a TLS server, or neither. */
static Purposes
certificate_purposes(X509 *cert)
{
  int critical = 0;
  EXTENDED_KEY_USAGE *usage = X509_get_ext_d2i(cert, NID_ext_key_usage, &critical, NULL);
  if (usage == NULL)
    return critical == -1 ? PURPOSES_NONE : PURPOSES_OTHER; /* -1: absent; else unreadable */
  ASN1_OBJECT *device = OBJ_txt2obj(HARK_CERTIFICATE_DEVICE_PURPOSE, 1);
  gboolean is_device = FALSE, is_server = FALSE, is_client = FALSE, is_any = FALSE;
  for (int i = 0; i < sk_ASN1_OBJECT_num(usage); i++) {
    ASN1_OBJECT *purpose = sk_ASN1_OBJECT_value(usage, i);
    is_device = is_device || (device != NULL && OBJ_cmp(purpose, device) == 0);
    is_server = is_server || OBJ_obj2nid(purpose) == NID_server_auth;
    is_client = is_client || OBJ_obj2nid(purpose) == NID_client_auth;
    is_any = is_any || OBJ_obj2nid(purpose) == NID_anyExtendedKeyUsage;
  }
  ASN1_OBJECT_free(device);
  sk_ASN1_OBJECT_pop_free(usage, ASN1_OBJECT_free);
  if (is_device && !is_server && !is_client && !is_any)
    return PURPOSES_DEVICE;
  if (is_server && !is_device && !is_any)
    return PURPOSES_SERVER;
  return PURPOSES_OTHER;
}

/* ---- verifying device certificates -------------------------------------------------- */

static void
set_malformed(GError **error, const char *message)
{
  g_set_error_literal(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED, message);
}

/* The subject's only common name, as UTF-8. */
static char *
subject_common_name(X509 *cert)
{
  X509_NAME *subject = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0)
    return NULL;
  ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char *utf8 = NULL;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  char *name = NULL;
  if (length > 0 && (gsize)length == strnlen((char *)utf8, (gsize)length))
    name = g_strndup((char *)utf8, (gsize)length);
  OPENSSL_free(utf8);
  return name;
}

/* The one "hark:device:" URI among the subject alternative names; NULL when there is
 * none or more than one. */
static char *
device_uri(X509 *cert)
{
  GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  char *uri = NULL;
  gboolean ambiguous = FALSE;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
    GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI)
      continue;
    const char *text = (const char *)ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
    int length = ASN1_STRING_length(name->d.uniformResourceIdentifier);
    if (!g_str_has_prefix(text, DEVICE_URI_PREFIX) || strnlen(text, (gsize)length) != (gsize)length)
      continue;
    ambiguous = ambiguous || uri != NULL;
    g_free(uri);
    uri = g_strndup(text, (gsize)length);
  }
  GENERAL_NAMES_free(names);
  if (ambiguous)
    g_clear_pointer(&uri, g_free);
  return uri;
}

/* Checks that the device URI names user, an account id (copied to *account_id) and the
 * key's fingerprint: "<user>:<account id>:<fingerprint>" after the prefix. A user name
 * holds no ':', so the first ':' ends it. */
static gboolean
check_device_uri(const char *uri, const char *user, const char *fingerprint, char **account_id,
                 GError **error)
{
  const char *rest = uri + strlen(DEVICE_URI_PREFIX);
  const char *colon = strchr(rest, ':');
  if (colon == NULL || (gsize)(colon - rest) != strlen(user) ||
      strncmp(rest, user, strlen(user)) != 0) {
    set_malformed(error, "the certificate's device URI does not name its subject's user");
    return FALSE;
  }
  const char *account = colon + 1;
  const char *end = strchr(account, ':');
  g_autofree char *id = end != NULL ? g_strndup(account, (gsize)(end - account)) : NULL;
  if (!hark_account_id_is_valid(id)) {
    set_malformed(error, "the certificate's device URI names no account id (certificates "
                         "from before account ids are not accepted: log in again)");
    return FALSE;
  }
  const char *claimed = end + 1;
  if (strlen(claimed) != FINGERPRINT_LENGTH ||
      CRYPTO_memcmp(claimed, fingerprint, FINGERPRINT_LENGTH) != 0) {
    set_malformed(error, "the certificate's device id is not the fingerprint of the key it "
                         "certifies");
    return FALSE;
  }
  *account_id = g_steal_pointer(&id);
  return TRUE;
}

/* What an already verified certificate certifies, if it is a hark device certificate. */
static HarkDeviceCertificate *
describe_device(X509 *cert, GError **error)
{
  if (X509_check_ca(cert) != 0) {
    set_malformed(error, "a CA certificate is not a device certificate");
    return NULL;
  }
  /* Certificates from before the device purpose have no extended key usage at all; they
   * are still taken until they expire (the login server issues none since), so that an
   * upgrade does not log every device out. Anything else is not a device's. */
  Purposes purposes = certificate_purposes(cert);
  if (purposes != PURPOSES_DEVICE && purposes != PURPOSES_NONE) {
    g_set_error_literal(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_WRONG_PURPOSE,
                        "the certificate is not a device certificate (its extended key usage "
                        "is not the hark device purpose)");
    return NULL;
  }
  g_autoptr(HarkDeviceCertificate) device = g_new0(HarkDeviceCertificate, 1);
  device->public_key = ed25519_raw_key(X509_get0_pubkey(cert), &device->device_id);
  if (device->public_key == NULL) {
    set_malformed(error, "the certificate is not for an Ed25519 device key");
    return NULL;
  }
  device->user = subject_common_name(cert);
  g_autofree char *uri = device_uri(cert);
  if (device->user == NULL || uri == NULL) {
    set_malformed(error, "the certificate lacks its one user name (subject CN) or its one "
                         "device URI (subject alternative name)");
    return NULL;
  }
  if (!check_device_uri(uri, device->user, device->device_id, &device->account_id, error))
    return NULL;
  if (!asn1_time_to_unix(X509_get0_notBefore(cert), &device->not_before) ||
      !asn1_time_to_unix(X509_get0_notAfter(cert), &device->not_after)) {
    set_malformed(error, "the certificate's validity cannot be read");
    return NULL;
  }
  return g_steal_pointer(&device);
}

HarkDeviceCertificate *
hark_certificate_verify(const char *ca_pem, GBytes *cert, gint64 now, GError **error)
{
  g_return_val_if_fail(ca_pem != NULL && cert != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  X509 *ca = cert_from_pem(ca_pem, strlen(ca_pem));
  if (ca == NULL) {
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_MALFORMED,
                      "the pinned CA certificate is not a PEM certificate");
    return NULL;
  }
  X509 *leaf = cert_from_bytes(cert, error);
  HarkDeviceCertificate *device = NULL;
  if (leaf != NULL && verify_chain(ca, leaf, now, error))
    device = describe_device(leaf, error);
  X509_free(leaf);
  X509_free(ca);
  return device;
}

HarkDeviceCertificate *
hark_certificate_verify_recent(const char *ca_pem, GBytes *cert, gint64 now, gint64 grace,
                               GError **error)
{
  g_return_val_if_fail(ca_pem != NULL && cert != NULL, NULL);
  GError *local = NULL;
  HarkDeviceCertificate *device = hark_certificate_verify(ca_pem, cert, now, &local);
  if (device != NULL ||
      !g_error_matches(local, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_EXPIRED)) {
    if (local != NULL)
      g_propagate_error(error, local);
    return device;
  }
  /* Expired: was it valid, for this CA, within the grace before now? */
  X509 *leaf = cert_from_bytes(cert, NULL);
  gint64 not_after = 0;
  gboolean recent = leaf != NULL && asn1_time_to_unix(X509_get0_notAfter(leaf), &not_after) &&
                    not_after <= now && now - not_after <= grace;
  X509_free(leaf);
  if (!recent) {
    g_propagate_error(error, local);
    return NULL;
  }
  g_clear_error(&local);
  return hark_certificate_verify(ca_pem, cert, not_after - 1, error);
}

void
hark_device_certificate_free(HarkDeviceCertificate *cert)
{
  if (cert == NULL)
    return;
  g_free(cert->user);
  g_free(cert->account_id);
  g_free(cert->device_id);
  g_clear_pointer(&cert->public_key, g_bytes_unref);
  g_free(cert);
}

/* ---- verifying the login server's certificate --------------------------------------- */

/* The host in login.url against the certificate's subject alternative names only (an IP
 * address against its IP names, a host name against its DNS names, without case): never
 * against the subject's common name, which for a device is a user's name. */
static gboolean
names_host(X509 *cert, const char *host)
{
  if (g_hostname_is_ip_address(host))
    return X509_check_ip_asc(cert, host, 0) == 1;
  unsigned int flags = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
  return X509_check_host(cert, host, 0, flags, NULL) == 1;
}

/* Why cert (already verified against the CA) cannot be a login server's; NULL when it
 * can. */
static const char *
server_certificate_problem(X509 *cert)
{
  if (X509_check_ca(cert) != 0)
    return "it is a CA certificate";
  switch (certificate_purposes(cert)) {
  case PURPOSES_SERVER:
    break;
  case PURPOSES_DEVICE:
  case PURPOSES_NONE: /* device certificates from before the device purpose */
    return "it is a device certificate (a user's), not the login server's";
  default:
    return "its extended key usage is not serverAuth alone";
  }
  return NULL;
}

gboolean
hark_certificate_verify_server(const char *ca_pem, GBytes *cert, const char *host, gint64 now,
                               GError **error)
{
  g_return_val_if_fail(ca_pem != NULL && cert != NULL && host != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

  X509 *ca = cert_from_pem(ca_pem, strlen(ca_pem));
  if (ca == NULL) {
    set_openssl_error(error, HARK_CERTIFICATE_ERROR_MALFORMED,
                      "the pinned CA certificate is not a PEM certificate");
    return FALSE;
  }
  X509 *leaf = cert_from_bytes(cert, error);
  gboolean ok = leaf != NULL && verify_chain(ca, leaf, now, error);
  const char *problem = ok ? server_certificate_problem(leaf) : NULL;
  if (problem != NULL) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_WRONG_PURPOSE,
                "the certificate is not a login server's: %s", problem);
    ok = FALSE;
  } else if (ok && !names_host(leaf, host)) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_WRONG_HOST,
                "the certificate is not for %s: none of its subject alternative names is", host);
    ok = FALSE;
  }
  ERR_clear_error();
  X509_free(leaf);
  X509_free(ca);
  return ok;
}

/* ---- the TLS server certificate ------------------------------------------------------ */

/* "DNS:a,IP:b" for the hosts; NULL (error set) for anything that is neither. */
static char *
server_alt_names(const char *const *hosts, GError **error)
{
  g_autoptr(GString) names = g_string_new(NULL);
  for (const char *const *h = hosts; *h != NULL; h++) {
    g_autofree char *ascii = g_hostname_is_ip_address(*h) ? NULL : g_hostname_to_ascii(*h);
    gboolean dns = ascii != NULL && *ascii != '\0' &&
                   strspn(ascii, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789.-*") == strlen(ascii);
    if (!dns && !g_hostname_is_ip_address(*h)) {
      g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
                  "'%s' is neither a host name nor an IP address", *h);
      return NULL;
    }
    g_string_append_printf(names, "%s%s:%s", names->len > 0 ? "," : "", dns ? "DNS" : "IP",
                           dns ? ascii : *h);
  }
  return g_string_free(g_steal_pointer(&names), FALSE);
}

static gboolean
covers_hosts(X509 *cert, const char *const *hosts)
{
  for (const char *const *h = hosts; *h != NULL; h++)
    if (!names_host(cert, *h))
      return FALSE;
  return TRUE;
}

/* NULL when the files at cert_path and key_path make a server certificate this CA
 * issued for these hosts, good for SERVER_RENEW_BEFORE more; otherwise why not. */
static const char *
server_certificate_unfit(HarkCa *ca, const char *const *hosts, const char *cert_path,
                         const char *key_path)
{
  gsize cert_length = 0, key_length = 0;
  gboolean missing_cert = FALSE, missing_key = FALSE;
  g_autofree char *cert_pem = read_pem_file(cert_path, FALSE, &cert_length, &missing_cert, NULL);
  char *key_pem = read_pem_file(key_path, TRUE, &key_length, &missing_key, NULL);
  const char *problem = NULL;
  EVP_PKEY *key = key_pem != NULL ? p256_key_from_pem(key_pem, key_length, &problem) : NULL;
  X509 *cert = cert_pem != NULL ? cert_from_pem(cert_pem, cert_length) : NULL;
  gint64 soon = g_get_real_time() / G_USEC_PER_SEC + SERVER_RENEW_BEFORE;
  const char *why = NULL;
  if (missing_cert && missing_key)
    why = "there is none";
  else if (cert == NULL || key == NULL || X509_check_private_key(cert, key) != 1)
    why = "the certificate or its key is unreadable, or they do not match";
  else if (!verify_chain(ca->cert, cert, soon, NULL))
    why = "it was not issued by this CA, or it expires within 30 days";
  else if (server_certificate_problem(cert) != NULL)
    why = "it is not a TLS server certificate (serverAuth alone)";
  else if (!covers_hosts(cert, hosts))
    why = "it does not name every configured host (in its subject alternative names)";
  ERR_clear_error();
  X509_free(cert);
  EVP_PKEY_free(key);
  cleanse_free(key_pem, key_length);
  return why;
}

static X509 *
server_certificate_make(HarkCa *ca, EVP_PKEY *key, const char *const *hosts, GError **error)
{
  g_autofree char *alt_names = server_alt_names(hosts, error);
  if (alt_names == NULL)
    return NULL;
  const char *const extensions[] = {
    "basicConstraints",
    "critical,CA:FALSE",
    "keyUsage",
    "critical,digitalSignature",
    "extendedKeyUsage",
    "serverAuth",
    "subjectKeyIdentifier",
    "hash",
    "authorityKeyIdentifier",
    "keyid:always",
    "subjectAltName",
    alt_names,
    NULL,
  };
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  CertificateSpec spec = {
    .common_name = hosts[0],
    .subject_key = key,
    .issuer = ca->cert,
    .issuer_key = ca->key,
    .not_before = now - BACKDATE_SECONDS,
    .not_after = now + SERVER_LIFETIME,
    .extensions = extensions,
  };
  return build_certificate(&spec, error);
}

/* Keeps a certificate that still fits (see server_certificate_unfit), so that clients
 * and logs see the same one across restarts; replaces one that does not. */
gboolean
hark_ca_ensure_server_certificate(HarkCa *ca, const char *const *hosts, const char *cert_path,
                                  const char *key_path, GError **error)
{
  g_return_val_if_fail(ca != NULL && cert_path != NULL && key_path != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

  if (hosts == NULL || hosts[0] == NULL) {
    set_malformed(error, "a server certificate needs at least one host name or address");
    return FALSE;
  }
  const char *why = server_certificate_unfit(ca, hosts, cert_path, key_path);
  if (why == NULL)
    return TRUE;
  g_message("making the TLS server certificate %s: %s", cert_path, why);
  EVP_PKEY *key = generate_p256_key(error);
  X509 *cert = key != NULL ? server_certificate_make(ca, key, hosts, error) : NULL;
  g_autofree char *pem = cert != NULL ? cert_to_pem(cert, error) : NULL;
  gboolean exists = FALSE;
  /* The key first: a crash in between leaves a pair that does not match, replaced next time. */
  gboolean ok = pem != NULL && write_private_key(key_path, key, TRUE, &exists, error) &&
                write_file_atomically(cert_path, pem, strlen(pem), 0644, TRUE, &exists, error);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok;
}

/* ---- signed requests ---------------------------------------------------------------- */

static GBytes *
request_to_sign(const char *method, const char *path, gint64 date, const char *nonce, GBytes *body)
{
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  g_autofree char *digest = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, body ? body : empty);
  char *text = g_strdup_printf(REQUEST_MAGIC "\n%s\n%s\n%" G_GINT64_FORMAT "\n%s\n%s", method, path,
                               date, nonce, digest);
  return g_bytes_new_take(text, strlen(text));
}

/* The identity's signature over data, in base64, as the HTTP headers and JSON carry it. */
static char *
sign_base64(HarkIdentity *identity, GBytes *data, const char *what, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GBytes) signature = hark_identity_sign(identity, data, &local);
  if (signature == NULL) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_CRYPTO, "cannot sign %s: %s",
                what, local->message);
    return NULL;
  }
  gsize length;
  const guint8 *bytes = g_bytes_get_data(signature, &length);
  return g_base64_encode(bytes, length);
}

gboolean
hark_request_nonce_is_valid(const char *nonce)
{
  if (nonce == NULL)
    return FALSE;
  gsize length = strnlen(nonce, NONCE_MAX_LENGTH + 1);
  return length >= NONCE_MIN_LENGTH && length <= NONCE_MAX_LENGTH &&
         strspn(nonce, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
           length;
}

char *
hark_request_new_nonce(void)
{
  guint8 random[NONCE_RANDOM_BYTES];
  if (RAND_bytes(random, sizeof random) != 1)
    g_error("the system's random number generator failed");
  GString *hex = g_string_sized_new(2 * sizeof random);
  for (gsize i = 0; i < sizeof random; i++)
    g_string_append_printf(hex, "%02x", random[i]);
  return g_string_free(hex, FALSE);
}

char *
hark_request_sign(HarkIdentity *identity, const char *method, const char *path, gint64 date,
                  const char *nonce, GBytes *body, GError **error)
{
  g_return_val_if_fail(identity != NULL && method != NULL && path != NULL, NULL);
  g_return_val_if_fail(hark_request_nonce_is_valid(nonce), NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  g_autoptr(GBytes) data = request_to_sign(method, path, date, nonce, body);
  return sign_base64(identity, data, "the request", error);
}

/* The signature's bytes when text is exactly the canonical base64 of 64 bytes:
 * g_base64_decode() skips what it does not know, so check by encoding back. */
static GBytes *
decode_signature(const char *text)
{
  gsize length = 0;
  guint8 *bytes =
    text != NULL && *text != '\0' && strlen(text) < 256 ? g_base64_decode(text, &length) : NULL;
  g_autofree char *again = bytes != NULL ? g_base64_encode(bytes, length) : NULL;
  if (again == NULL || length != HARK_IDENTITY_SIGNATURE_SIZE || strcmp(again, text) != 0) {
    g_free(bytes);
    return NULL;
  }
  return g_bytes_new_take(bytes, length);
}

gboolean
hark_request_verify(GBytes *public_key, const char *method, const char *path, gint64 date,
                    const char *nonce, GBytes *body, const char *signature_b64, gint64 now,
                    gint64 max_skew, GError **error)
{
  g_return_val_if_fail(public_key != NULL && method != NULL && path != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

  if (!hark_request_nonce_is_valid(nonce)) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED,
                "the request nonce is not %d to %d characters of A-Z, a-z, 0-9, '_' or '-'",
                NONCE_MIN_LENGTH, NONCE_MAX_LENGTH);
    return FALSE;
  }
  if (date < now - max_skew || date > now + max_skew) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_STALE,
                "the request is dated %" G_GINT64_FORMAT " s from the server's clock (at most "
                "%" G_GINT64_FORMAT " s allowed): check the device's clock",
                date - now, max_skew);
    return FALSE;
  }
  g_autoptr(GBytes) signature = decode_signature(signature_b64);
  if (signature == NULL) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_BAD_SIGNATURE,
                "the request signature is not the base64 of a %d-byte Ed25519 signature",
                HARK_IDENTITY_SIGNATURE_SIZE);
    return FALSE;
  }
  g_autoptr(GBytes) data = request_to_sign(method, path, date, nonce, body);
  g_autoptr(GError) local = NULL;
  if (hark_identity_verify(public_key, data, signature, &local))
    return TRUE;
  gboolean bad = g_error_matches(local, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_BAD_SIGNATURE);
  g_set_error(error, HARK_CERTIFICATE_ERROR,
              bad ? HARK_CERTIFICATE_ERROR_BAD_SIGNATURE : HARK_CERTIFICATE_ERROR_CRYPTO,
              "the request signature does not verify: %s", local->message);
  return FALSE;
}

/* ---- login nonces and proofs --------------------------------------------------------- */

static char *
hex_encode(const guint8 *data, gsize length)
{
  GString *hex = g_string_sized_new(2 * length);
  for (gsize i = 0; i < length; i++)
    g_string_append_printf(hex, "%02x", data[i]);
  return g_string_free(hex, FALSE);
}

/* The MAC of "<issued>-<random hex>", as hex. */
static char *
nonce_mac(HarkCa *ca, const char *issued_and_random)
{
  g_autofree char *text = g_strconcat(LOGIN_NONCE_MAGIC "\n", issued_and_random, NULL);
  guint8 mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), ca->nonce_key, sizeof ca->nonce_key, (const guint8 *)text, strlen(text),
           mac, &length) == NULL)
    return NULL;
  return hex_encode(mac, LOGIN_NONCE_MAC_BYTES);
}

char *
hark_ca_make_nonce(HarkCa *ca, gint64 now)
{
  g_return_val_if_fail(ca != NULL, NULL);
  guint8 random[LOGIN_NONCE_RANDOM_BYTES];
  if (RAND_bytes(random, sizeof random) != 1)
    g_error("the system's random number generator failed");
  g_autofree char *random_hex = hex_encode(random, sizeof random);
  g_autofree char *body = g_strdup_printf("%" G_GINT64_FORMAT "-%s", now, random_hex);
  g_autofree char *mac = nonce_mac(ca, body);
  if (mac == NULL)
    g_error("HMAC-SHA256 failed");
  return g_strconcat(body, "-", mac, NULL);
}

static gboolean
is_lower_hex(const char *text, gsize length)
{
  return strlen(text) == length && strspn(text, "0123456789abcdef") == length;
}

gboolean
hark_ca_check_nonce(HarkCa *ca, const char *nonce, gint64 now, gint64 lifetime, gint64 *issued,
                    GError **error)
{
  g_return_val_if_fail(ca != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

  g_auto(GStrv) parts =
    nonce != NULL && strnlen(nonce, LOGIN_NONCE_MAX_LENGTH + 1) <= LOGIN_NONCE_MAX_LENGTH
      ? g_strsplit(nonce, "-", 4)
      : NULL;
  gint64 when = 0;
  if (parts == NULL || g_strv_length(parts) != 3 || *parts[0] == '\0' || strlen(parts[0]) > 18 ||
      strspn(parts[0], "0123456789") != strlen(parts[0]) ||
      !is_lower_hex(parts[1], 2 * LOGIN_NONCE_RANDOM_BYTES) ||
      !is_lower_hex(parts[2], 2 * LOGIN_NONCE_MAC_BYTES)) {
    set_malformed(error, "the nonce is not one the login server gives (GET /v1/nonce)");
    return FALSE;
  }
  when = g_ascii_strtoll(parts[0], NULL, 10);
  g_autofree char *body = g_strdup_printf("%s-%s", parts[0], parts[1]);
  g_autofree char *mac = nonce_mac(ca, body);
  if (mac == NULL || CRYPTO_memcmp(mac, parts[2], strlen(mac)) != 0) {
    g_set_error_literal(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_BAD_SIGNATURE,
                        "the nonce was not made by this login server");
    return FALSE;
  }
  if (when < now - lifetime || when > now + LOGIN_NONCE_FUTURE_SKEW) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_STALE,
                "the nonce has expired (it was made %" G_GINT64_FORMAT
                " s ago, it lasts %" G_GINT64_FORMAT " s): fetch a new one",
                now - when, lifetime);
    return FALSE;
  }
  if (issued != NULL)
    *issued = when;
  return TRUE;
}

static GBytes *
login_proof_text(const char *nonce, const char *user, GBytes *public_key)
{
  g_autofree char *fingerprint = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, public_key);
  char *text = g_strdup_printf(LOGIN_PROOF_MAGIC "\n%s\n%s\n%s", nonce, user, fingerprint);
  return g_bytes_new_take(text, strlen(text));
}

char *
hark_login_proof_sign(HarkIdentity *identity, const char *nonce, const char *user, GError **error)
{
  g_return_val_if_fail(identity != NULL && nonce != NULL && user != NULL, NULL);
  g_return_val_if_fail(error == NULL || *error == NULL, NULL);

  g_autoptr(GBytes) key = hark_identity_get_public_key(identity);
  g_autoptr(GBytes) data = login_proof_text(nonce, user, key);
  return sign_base64(identity, data, "the login proof", error);
}

gboolean
hark_login_proof_verify(GBytes *public_key, const char *nonce, const char *user,
                        const char *proof_b64, GError **error)
{
  g_return_val_if_fail(public_key != NULL && nonce != NULL && user != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

  g_autoptr(GBytes) signature = decode_signature(proof_b64);
  if (signature == NULL) {
    g_set_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_BAD_SIGNATURE,
                "the proof is not the base64 of a %d-byte Ed25519 signature",
                HARK_IDENTITY_SIGNATURE_SIZE);
    return FALSE;
  }
  g_autoptr(GBytes) data = login_proof_text(nonce, user, public_key);
  g_autoptr(GError) local = NULL;
  if (hark_identity_verify(public_key, data, signature, &local))
    return TRUE;
  gboolean bad = g_error_matches(local, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_BAD_SIGNATURE);
  g_set_error(error, HARK_CERTIFICATE_ERROR,
              bad ? HARK_CERTIFICATE_ERROR_BAD_SIGNATURE : HARK_CERTIFICATE_ERROR_CRYPTO,
              "the proof was not made with the key to certify: %s", local->message);
  return FALSE;
}
