/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-certificate.c: the login server's CA and the certificates it issues: the CA is
 * made private and stays the same across loads (a damaged key is refused and left
 * alone); device certificates bind user, device id and key, and are refused when
 * expired, not yet valid, from another CA, tampered with, or inconsistent; the TLS
 * server certificate verifies as `openssl verify` would and names its hosts; signed
 * requests catch every change and stale dates. */
#include "test-files.h"
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <hark/certificate.h>
#include <hark/identity.h>

/* Any well-formed account id will do for certificates made here. */
#define TEST_ACCOUNT_ID "00112233445566778899aabbccddeeff"

#define DAY (24 * 3600)
#define NONCE "0123456789abcdef0123456789abcdef"

typedef struct {
  char *dir; /* a fresh temporary directory */
  char *ca_dir; /* dir/ca, made by the CA */
  HarkCa *ca;
  HarkIdentity *device;
  gint64 now;
} Fixture;

/* ---- helpers ---------------------------------------------------------------------------- */

static HarkIdentity *
new_identity(const char *dir, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename(dir, name, NULL);
  HarkIdentity *identity = hark_identity_load_or_create(path, NULL, &error);
  g_assert_no_error(error);
  return identity;
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("hark-certificate-XXXXXX", &error);
  g_assert_no_error(error);
  f->ca_dir = g_build_filename(f->dir, "ca", NULL);
  f->ca = hark_ca_load_or_create(f->ca_dir, "test CA", &error);
  g_assert_no_error(error);
  f->device = new_identity(f->dir, "device.pem");
  f->now = g_get_real_time() / G_USEC_PER_SEC;
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  hark_ca_free(f->ca);
  hark_identity_free(f->device);
  hark_test_remove_tree(f->dir);
  g_free(f->ca_dir);
  g_free(f->dir);
}

static char *
read_text(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  char *text = NULL;
  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  return text;
}

/* A device certificate for f->device, valid from not_before for lifetime seconds. */
static char *
issue(Fixture *f, const char *user, gint64 not_before, gint64 lifetime)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *key = hark_identity_get_public_pem(f->device);
  char *pem = hark_ca_issue_device(f->ca, user, TEST_ACCOUNT_ID, key, not_before, lifetime, &error);
  g_assert_no_error(error);
  g_assert_nonnull(pem);
  return pem;
}

static GBytes *
pem_bytes(const char *pem)
{
  return g_bytes_new(pem, strlen(pem));
}

static X509 *
parse_pem(const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  g_assert_nonnull(cert);
  return cert;
}

static GBytes *
pem_to_der(const char *pem)
{
  X509 *cert = parse_pem(pem);
  unsigned char *der = NULL;
  int length = i2d_X509(cert, &der);
  g_assert_cmpint(length, >, 0);
  GBytes *bytes = g_bytes_new(der, (gsize)length);
  OPENSSL_free(der);
  X509_free(cert);
  return bytes;
}

/* Verifies and expects the given error code. */
static void
assert_refused(const char *ca_pem, GBytes *cert, gint64 now, HarkCertificateError code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) device = hark_certificate_verify(ca_pem, cert, now, &error);
  g_assert_null(device);
  g_assert_error(error, HARK_CERTIFICATE_ERROR, (gint)code);
  g_test_message("refused as expected: %s", error->message);
}

/* ---- the CA ----------------------------------------------------------------------------- */

static void
test_ca_created_private(Fixture *f, gconstpointer data)
{
  g_autofree char *key_path = g_build_filename(f->ca_dir, "ca-key.pem", NULL);
  g_assert_cmpuint(hark_test_file_mode(f->ca_dir), ==, 0700);
  g_assert_cmpuint(hark_test_file_mode(key_path), ==, 0600);
  g_autofree char *on_disk = read_text(f->ca_dir, "ca.pem");
  g_assert_cmpstr(on_disk, ==, hark_ca_get_certificate_pem(f->ca));

  X509 *ca = parse_pem(on_disk);
  g_assert_cmpint(X509_check_ca(ca), ==, 1);
  BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
  g_assert_nonnull(bc);
  g_assert_true(bc->ca);
  BASIC_CONSTRAINTS_free(bc);
  g_assert_true((X509_get_key_usage(ca) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
                (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  g_assert_nonnull(X509_get0_subject_key_id(ca));
  X509_free(ca);
}

static void
test_ca_same_after_reload(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCa) again = hark_ca_load_or_create(f->ca_dir, "another name", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(hark_ca_get_certificate_pem(again), ==, hark_ca_get_certificate_pem(f->ca));
}

static void
test_ca_corrupt_key_refused(Fixture *f, gconstpointer data)
{
  g_autofree char *key_path = g_build_filename(f->ca_dir, "ca-key.pem", NULL);
  static const char garbage[] =
    "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  g_assert_true(
    g_file_set_contents_full(key_path, garbage, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL));
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCa) again = hark_ca_load_or_create(f->ca_dir, "test CA", &error);
  g_assert_null(again);
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED);
  g_assert_nonnull(strstr(error->message, "NOT replaced"));
  g_autofree char *after = read_text(f->ca_dir, "ca-key.pem");
  g_assert_cmpstr(after, ==, garbage);
}

static void
test_ca_readable_key_refused(Fixture *f, gconstpointer data)
{
  g_autofree char *key_path = g_build_filename(f->ca_dir, "ca-key.pem", NULL);
  g_assert_cmpint(g_chmod(key_path, 0644), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCa) again = hark_ca_load_or_create(f->ca_dir, "test CA", &error);
  g_assert_null(again);
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_IO);
  g_assert_nonnull(strstr(error->message, "chmod 600"));
}

static void
test_ca_lost_key_refused(Fixture *f, gconstpointer data)
{
  g_autofree char *key_path = g_build_filename(f->ca_dir, "ca-key.pem", NULL);
  g_assert_cmpint(g_unlink(key_path), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCa) again = hark_ca_load_or_create(f->ca_dir, "test CA", &error);
  g_assert_null(again);
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_IO);
  g_assert_false(g_file_test(key_path, G_FILE_TEST_EXISTS));
}

/* ---- device certificates ------------------------------------------------------------------ */

static void
assert_certifies(Fixture *f, HarkDeviceCertificate *device, const char *user)
{
  g_assert_nonnull(device);
  g_assert_cmpstr(device->user, ==, user);
  g_assert_cmpstr(device->account_id, ==, TEST_ACCOUNT_ID);
  g_assert_cmpstr(device->device_id, ==, hark_identity_get_fingerprint(f->device));
  g_autoptr(GBytes) key = hark_identity_get_public_key(f->device);
  g_assert_true(g_bytes_equal(device->public_key, key));
}

static void
test_issue_verify_round_trip(Fixture *f, gconstpointer data)
{
  g_autofree char *pem = issue(f, "Alice", f->now - 300, DAY);
  g_autoptr(GBytes) bytes = pem_bytes(pem);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) device =
    hark_certificate_verify(hark_ca_get_certificate_pem(f->ca), bytes, f->now, &error);
  g_assert_no_error(error);
  assert_certifies(f, device, "Alice");
  g_assert_cmpint(device->not_before, ==, f->now - 300);
  g_assert_cmpint(device->not_after, ==, f->now - 300 + DAY);

  /* The same certificate as DER, the form the signed-request header carries. */
  g_autoptr(GBytes) der = pem_to_der(pem);
  g_autoptr(HarkDeviceCertificate) again =
    hark_certificate_verify(hark_ca_get_certificate_pem(f->ca), der, f->now, &error);
  g_assert_no_error(error);
  assert_certifies(f, again, "Alice");
}

static void
test_device_certificate_contents(Fixture *f, gconstpointer data)
{
  g_autofree char *pem = issue(f, "alice", f->now, DAY);
  g_autofree char *other = issue(f, "alice", f->now, DAY);
  X509 *cert = parse_pem(pem);
  X509 *cert2 = parse_pem(other);
  /* Random 128-bit serials: two certificates never share one. */
  g_assert_cmpint(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), X509_get0_serialNumber(cert2)), !=,
                  0);
  g_assert_cmpint(X509_check_ca(cert), ==, 0);
  g_assert_true(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
  g_autofree char *uri = g_strdup_printf("hark:device:alice:" TEST_ACCOUNT_ID ":%s",
                                         hark_identity_get_fingerprint(f->device));
  GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  g_assert_cmpint(sk_GENERAL_NAME_num(names), ==, 1);
  GENERAL_NAME *name = sk_GENERAL_NAME_value(names, 0);
  g_assert_cmpint(name->type, ==, GEN_URI);
  g_assert_cmpstr((const char *)ASN1_STRING_get0_data(name->d.uniformResourceIdentifier), ==, uri);
  GENERAL_NAMES_free(names);
  /* The device purpose is its only extended key usage, and it is critical. */
  int critical = 0;
  EXTENDED_KEY_USAGE *usage = X509_get_ext_d2i(cert, NID_ext_key_usage, &critical, NULL);
  g_assert_cmpint(critical, ==, 1);
  g_assert_cmpint(sk_ASN1_OBJECT_num(usage), ==, 1);
  char oid[128];
  OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(usage, 0), 1);
  g_assert_cmpstr(oid, ==, HARK_CERTIFICATE_DEVICE_PURPOSE);
  sk_ASN1_OBJECT_pop_free(usage, ASN1_OBJECT_free);
  X509_free(cert);
  X509_free(cert2);
}

static void
test_expired(Fixture *f, gconstpointer data)
{
  const char *ca = hark_ca_get_certificate_pem(f->ca);
  g_autofree char *short_lived = issue(f, "alice", f->now - 100, 10);
  g_autoptr(GBytes) bytes = pem_bytes(short_lived);
  assert_refused(ca, bytes, f->now, HARK_CERTIFICATE_ERROR_EXPIRED);

  /* A normal one, checked by a verifier whose clock is two days later. */
  g_autofree char *normal = issue(f, "alice", f->now, DAY);
  g_autoptr(GBytes) normal_bytes = pem_bytes(normal);
  assert_refused(ca, normal_bytes, f->now + 2 * DAY, HARK_CERTIFICATE_ERROR_EXPIRED);

  /* verify_recent takes one that expired within its grace (a device offline since), and
   * not one from further back, nor one not yet valid, nor another CA's. */
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) recent =
    hark_certificate_verify_recent(ca, normal_bytes, f->now + 2 * DAY, 2 * DAY, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(recent->user, ==, "alice");
  g_assert_null(
    hark_certificate_verify_recent(ca, normal_bytes, f->now + 3 * DAY + 1, 2 * DAY, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_EXPIRED);
  g_clear_error(&error);
  g_autofree char *future = issue(f, "alice", f->now + 3600, DAY);
  g_autoptr(GBytes) future_bytes = pem_bytes(future);
  g_assert_null(hark_certificate_verify_recent(ca, future_bytes, f->now, 2 * DAY, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_EXPIRED);
  g_clear_error(&error);
  g_autofree char *other_dir = g_build_filename(f->dir, "other-ca-recent", NULL);
  g_autoptr(HarkCa) other = hark_ca_load_or_create(other_dir, "test CA", &error);
  g_assert_no_error(error);
  g_assert_null(hark_certificate_verify_recent(hark_ca_get_certificate_pem(other), normal_bytes,
                                               f->now + 2 * DAY, 2 * DAY, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_UNTRUSTED);
}

static void
test_not_yet_valid(Fixture *f, gconstpointer data)
{
  g_autofree char *pem = issue(f, "alice", f->now + 3600, DAY);
  g_autoptr(GBytes) bytes = pem_bytes(pem);
  assert_refused(hark_ca_get_certificate_pem(f->ca), bytes, f->now, HARK_CERTIFICATE_ERROR_EXPIRED);
}

static void
test_other_ca_untrusted(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *other_dir = g_build_filename(f->dir, "other-ca", NULL);
  g_autoptr(HarkCa) other = hark_ca_load_or_create(other_dir, "test CA", &error);
  g_assert_no_error(error);
  g_autofree char *pem = issue(f, "alice", f->now, DAY);
  g_autoptr(GBytes) bytes = pem_bytes(pem);
  assert_refused(hark_ca_get_certificate_pem(other), bytes, f->now,
                 HARK_CERTIFICATE_ERROR_UNTRUSTED);
}

/* Every single-byte change is refused, whichever error it makes. */
static void
test_tampered(Fixture *f, gconstpointer data)
{
  g_autofree char *pem = issue(f, "alice", f->now, DAY);
  g_autoptr(GBytes) der = pem_to_der(pem);
  gsize length;
  const guint8 *original = g_bytes_get_data(der, &length);
  g_autofree guint8 *copy = g_memdup2(original, length);
  const gsize positions[] = { length - 1, length - 40, length / 2, 60, 30 };
  for (gsize i = 0; i < G_N_ELEMENTS(positions); i++) {
    copy[positions[i]] ^= 0x01;
    g_autoptr(GBytes) bytes = g_bytes_new(copy, length);
    g_autoptr(GError) error = NULL;
    g_autoptr(HarkDeviceCertificate) device =
      hark_certificate_verify(hark_ca_get_certificate_pem(f->ca), bytes, f->now, &error);
    g_assert_null(device);
    g_assert_nonnull(error);
    g_test_message("byte %" G_GSIZE_FORMAT ": %s", positions[i], error->message);
    copy[positions[i]] ^= 0x01;
  }
  g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
  assert_refused(hark_ca_get_certificate_pem(f->ca), empty, f->now,
                 HARK_CERTIFICATE_ERROR_MALFORMED);
}

static void
test_wrong_key_type(Fixture *f, gconstpointer data)
{
  EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  BIO *bio = BIO_new(BIO_s_mem());
  g_assert_cmpint(PEM_write_bio_PUBKEY(bio, p256), ==, 1);
  char *data_ptr = NULL;
  long length = BIO_get_mem_data(bio, &data_ptr);
  g_autofree char *ec_pem = g_strndup(data_ptr, (gsize)length);
  BIO_free(bio);
  EVP_PKEY_free(p256);

  const char *keys[] = { ec_pem, "",
                         "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" };
  for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *pem =
      hark_ca_issue_device(f->ca, "alice", TEST_ACCOUNT_ID, keys[i], f->now, DAY, &error);
    g_assert_null(pem);
    g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED);
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *device_key = hark_identity_get_public_pem(f->device);
  g_autofree char *pem =
    hark_ca_issue_device(f->ca, "a:b", TEST_ACCOUNT_ID, device_key, f->now, DAY, &error);
  g_assert_null(pem);
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_autofree char *no_account =
    hark_ca_issue_device(f->ca, "alice", "not-an-id", device_key, f->now, DAY, &error);
  g_assert_null(no_account);
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED);
  g_autofree char *id = hark_account_id_new(NULL);
  g_autofree char *other_id = hark_account_id_new(NULL);
  g_assert_true(hark_account_id_is_valid(id));
  g_assert_cmpstr(id, !=, other_id);
}

/* The CA's own key, read back from its directory, to forge what the CA would never issue. */
static EVP_PKEY *
ca_private_key(Fixture *f)
{
  g_autofree char *pem = read_text(f->ca_dir, "ca-key.pem");
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  g_assert_nonnull(key);
  return key;
}

static void
add_extension(X509 *cert, X509 *issuer, const char *name, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *extension = X509V3_EXT_conf(NULL, &ctx, name, value);
  g_assert_nonnull(extension);
  g_assert_cmpint(X509_add_ext(cert, extension, -1), ==, 1);
  X509_EXTENSION_free(extension);
}

/* A CA-signed certificate for f->device with these subject alternative names (OpenSSL's
 * syntax) and extended key usage (NULL: none). */
static GBytes *
forge_certificate(Fixture *f, const char *user, const char *san, const char *purposes)
{
  X509 *ca = parse_pem(hark_ca_get_certificate_pem(f->ca));
  EVP_PKEY *ca_key = ca_private_key(f);
  g_autofree char *key_pem = hark_identity_get_public_pem(f->device);
  BIO *bio = BIO_new_mem_buf(key_pem, -1);
  EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  X509 *cert = X509_new();
  X509_set_version(cert, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                             (const unsigned char *)user, -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(ca));
  ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)(f->now - 60));
  ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(f->now + DAY));
  X509_set_pubkey(cert, key);
  add_extension(cert, ca, "basicConstraints", "critical,CA:FALSE");
  add_extension(cert, ca, "keyUsage", "critical,digitalSignature");
  add_extension(cert, ca, "subjectKeyIdentifier", "hash");
  add_extension(cert, ca, "authorityKeyIdentifier", "keyid:always");
  add_extension(cert, ca, "subjectAltName", san);
  if (purposes != NULL)
    add_extension(cert, ca, "extendedKeyUsage", purposes);
  g_assert_cmpint(X509_sign(cert, ca_key, EVP_sha256()), >, 0);
  unsigned char *der = NULL;
  int length = i2d_X509(cert, &der);
  GBytes *bytes = g_bytes_new(der, (gsize)length);
  OPENSSL_free(der);
  X509_free(cert);
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  X509_free(ca);
  return bytes;
}

/* A CA-signed certificate for f->device whose device URI is san_uri, without extended
 * key usage (as the CA issued them before the device purpose). */
static GBytes *
forge_device_certificate(Fixture *f, const char *user, const char *san_uri)
{
  g_autofree char *san = g_strdup_printf("URI:%s", san_uri);
  return forge_certificate(f, user, san, NULL);
}

static void
test_inconsistent_device_refused(Fixture *f, gconstpointer data)
{
  const char *ca = hark_ca_get_certificate_pem(f->ca);
  const char *fingerprint = hark_identity_get_fingerprint(f->device);
  /* The forging itself is right: the same certificate with the true URI verifies. */
  g_autofree char *good_uri =
    g_strdup_printf("hark:device:alice:" TEST_ACCOUNT_ID ":%s", fingerprint);
  g_autoptr(GBytes) good = forge_device_certificate(f, "alice", good_uri);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) device = hark_certificate_verify(ca, good, f->now, &error);
  g_assert_no_error(error);
  g_assert_nonnull(device);

  g_autoptr(HarkIdentity) stranger = new_identity(f->dir, "stranger.pem");
  g_autofree char *wrong_key = g_strdup_printf("hark:device:alice:" TEST_ACCOUNT_ID ":%s",
                                               hark_identity_get_fingerprint(stranger));
  g_autoptr(GBytes) bad_key = forge_device_certificate(f, "alice", wrong_key);
  assert_refused(ca, bad_key, f->now, HARK_CERTIFICATE_ERROR_MALFORMED);

  g_autofree char *wrong_user =
    g_strdup_printf("hark:device:bob:" TEST_ACCOUNT_ID ":%s", fingerprint);
  g_autoptr(GBytes) bad_user = forge_device_certificate(f, "alice", wrong_user);
  assert_refused(ca, bad_user, f->now, HARK_CERTIFICATE_ERROR_MALFORMED);

  /* Without an account id (as issued before account ids), or with a malformed one, a
   * certificate binds no account: refused. */
  static const char *const bad_accounts[] = { "", "00112233", "0011223344556677889900AABBCCDDEEFF",
                                              "00112233445566778899aabbccddeeXX" };
  g_autofree char *old_form = g_strdup_printf("hark:device:alice:%s", fingerprint);
  g_autoptr(GBytes) old = forge_device_certificate(f, "alice", old_form);
  assert_refused(ca, old, f->now, HARK_CERTIFICATE_ERROR_MALFORMED);
  for (gsize i = 0; i < G_N_ELEMENTS(bad_accounts); i++) {
    g_autofree char *uri = g_strdup_printf("hark:device:alice:%s:%s", bad_accounts[i], fingerprint);
    g_autoptr(GBytes) bad = forge_device_certificate(f, "alice", uri);
    assert_refused(ca, bad, f->now, HARK_CERTIFICATE_ERROR_MALFORMED);
  }

  /* The CA certificate is trusted, but it is no device certificate. */
  g_autoptr(GBytes) ca_itself = pem_bytes(ca);
  assert_refused(ca, ca_itself, f->now, HARK_CERTIFICATE_ERROR_MALFORMED);
}

/* ---- the TLS server certificate ------------------------------------------------------------ */

/* What `openssl verify -CAfile ca.pem -purpose sslserver server.pem` does. */
static int
openssl_verify(const char *ca_pem, const char *cert_pem)
{
  X509 *ca = parse_pem(ca_pem);
  X509 *cert = parse_pem(cert_pem);
  X509_STORE *store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert, NULL);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  int result = X509_verify_cert(ctx);
  if (result != 1)
    g_test_message("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(cert);
  X509_free(ca);
  return result;
}

static void
test_server_certificate(Fixture *f, gconstpointer data)
{
  const char *hosts[] = { "localhost", "127.0.0.1", "::1", "login.example.org", NULL };
  g_autofree char *cert_path = g_build_filename(f->dir, "server.pem", NULL);
  g_autofree char *key_path = g_build_filename(f->dir, "server-key.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_ca_ensure_server_certificate(f->ca, hosts, cert_path, key_path, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(hark_test_file_mode(key_path), ==, 0600);
  g_autofree char *pem = read_text(f->dir, "server.pem");
  g_assert_cmpint(openssl_verify(hark_ca_get_certificate_pem(f->ca), pem), ==, 1);

  X509 *cert = parse_pem(pem);
  g_assert_cmpint(X509_check_host(cert, "localhost", 0, 0, NULL), ==, 1);
  g_assert_cmpint(X509_check_host(cert, "login.example.org", 0, 0, NULL), ==, 1);
  g_assert_cmpint(X509_check_ip_asc(cert, "127.0.0.1", 0), ==, 1);
  g_assert_cmpint(X509_check_ip_asc(cert, "::1", 0), ==, 1);
  g_assert_cmpint(X509_check_host(cert, "example.org", 0, 0, NULL), !=, 1);
  g_assert_true(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);
  X509_free(cert);

  /* Kept as it is while it fits; made anew for another host. */
  g_assert_true(hark_ca_ensure_server_certificate(f->ca, hosts, cert_path, key_path, &error));
  g_autofree char *same = read_text(f->dir, "server.pem");
  g_assert_cmpstr(same, ==, pem);
  const char *more[] = { "localhost", "10.0.0.1", NULL };
  g_assert_true(hark_ca_ensure_server_certificate(f->ca, more, cert_path, key_path, &error));
  g_autofree char *changed = read_text(f->dir, "server.pem");
  g_assert_cmpstr(changed, !=, pem);

  const char *bad[] = { "not a host!", NULL };
  g_assert_false(hark_ca_ensure_server_certificate(f->ca, bad, cert_path, key_path, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED);
}

/* ---- device and server certificates are not interchangeable ------------------------------ */

static void
assert_not_server(Fixture *f, GBytes *cert, const char *host, HarkCertificateError code)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(
    hark_certificate_verify_server(hark_ca_get_certificate_pem(f->ca), cert, host, f->now, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, (gint)code);
  g_test_message("not the server for %s: %s", host, error->message);
}

/* A user registered under the login host's name gets a device certificate with that
 * name as its common name: it must not pass for the server, by hark's check nor by a
 * stock TLS verifier (serverAuth). */
static void
test_device_is_not_server(Fixture *f, gconstpointer data)
{
  const char *names[] = { "localhost", "LocalHost", "login.example.org", NULL };
  for (const char *const *name = names; *name != NULL; name++) {
    g_autofree char *pem = issue(f, *name, f->now - 60, DAY);
    g_autoptr(GBytes) cert = pem_bytes(pem);
    assert_not_server(f, cert, "localhost", HARK_CERTIFICATE_ERROR_WRONG_PURPOSE);
    assert_not_server(f, cert, *name, HARK_CERTIFICATE_ERROR_WRONG_PURPOSE);
    g_assert_cmpint(openssl_verify(hark_ca_get_certificate_pem(f->ca), pem), !=, 1);
    X509 *x509 = parse_pem(pem);
    g_assert_false(X509_get_extended_key_usage(x509) & (XKU_SSL_SERVER | XKU_SSL_CLIENT));
    X509_free(x509);
  }
  /* A device certificate from before the device purpose (no extended key usage). */
  g_autofree char *uri =
    g_strdup_printf("URI:hark:device:localhost:%s", hark_identity_get_fingerprint(f->device));
  g_autoptr(GBytes) legacy = forge_certificate(f, "localhost", uri, NULL);
  assert_not_server(f, legacy, "localhost", HARK_CERTIFICATE_ERROR_WRONG_PURPOSE);
  /* Both purposes at once is neither. */
  g_autofree char *both_eku = g_strdup("serverAuth," HARK_CERTIFICATE_DEVICE_PURPOSE);
  g_autofree char *both_san = g_strdup_printf("%s,DNS:localhost", uri);
  g_autoptr(GBytes) both = forge_certificate(f, "localhost", both_san, both_eku);
  assert_not_server(f, both, "localhost", HARK_CERTIFICATE_ERROR_WRONG_PURPOSE);
  assert_refused(hark_ca_get_certificate_pem(f->ca), both, f->now,
                 HARK_CERTIFICATE_ERROR_WRONG_PURPOSE);
  /* serverAuth, but the host only in the common name: names are subject alternative
   * names only. */
  g_autoptr(GBytes) cn_only =
    forge_certificate(f, "localhost", "DNS:elsewhere.example", "serverAuth");
  assert_not_server(f, cn_only, "localhost", HARK_CERTIFICATE_ERROR_WRONG_HOST);
}

/* The server's certificate passes for its hosts (DNS without case, IP), for no other,
 * and never for a device. */
static void
test_server_is_not_device(Fixture *f, gconstpointer data)
{
  const char *hosts[] = { "localhost", "127.0.0.1", NULL };
  g_autofree char *cert_path = g_build_filename(f->dir, "server.pem", NULL);
  g_autofree char *key_path = g_build_filename(f->dir, "server-key.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_ca_ensure_server_certificate(f->ca, hosts, cert_path, key_path, &error));
  g_autofree char *pem = read_text(f->dir, "server.pem");
  g_autoptr(GBytes) cert = pem_bytes(pem);
  const char *ca = hark_ca_get_certificate_pem(f->ca);
  const char *good[] = { "localhost", "LOCALHOST", "127.0.0.1", NULL };
  for (const char *const *host = good; *host != NULL; host++) {
    g_assert_true(hark_certificate_verify_server(ca, cert, *host, f->now, &error));
    g_assert_no_error(error);
  }
  assert_not_server(f, cert, "127.0.0.2", HARK_CERTIFICATE_ERROR_WRONG_HOST);
  assert_not_server(f, cert, "login.example.org", HARK_CERTIFICATE_ERROR_WRONG_HOST);
  assert_refused(ca, cert, f->now, HARK_CERTIFICATE_ERROR_WRONG_PURPOSE);
  g_autoptr(GBytes) ca_itself = pem_bytes(ca);
  assert_not_server(f, ca_itself, "localhost", HARK_CERTIFICATE_ERROR_WRONG_PURPOSE);
}

/* ---- signed requests ----------------------------------------------------------------------- */

static void
assert_request_refused(Fixture *f, GBytes *key, const char *method, const char *path, gint64 date,
                       GBytes *body, const char *signature, HarkCertificateError code)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(
    hark_request_verify(key, method, path, date, NONCE, body, signature, f->now, 300, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, (gint)code);
}

static void
test_request_signatures(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) key = hark_identity_get_public_key(f->device);
  g_autoptr(GBytes) body = g_bytes_new_static("{\"op\":\"add\"}", 12);
  g_autoptr(GBytes) other_body = g_bytes_new_static("{\"op\":\"del\"}", 12);
  const char *path = "/v1/buddies?x=1";
  g_autofree char *signature =
    hark_request_sign(f->device, "POST", path, f->now, NONCE, body, &error);
  g_assert_no_error(error);
  g_assert_true(
    hark_request_verify(key, "POST", path, f->now, NONCE, body, signature, f->now, 300, &error));
  g_assert_no_error(error);

  assert_request_refused(f, key, "POST", path, f->now, other_body, signature,
                         HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  assert_request_refused(f, key, "POST", "/v1/buddies?x=2", f->now, body, signature,
                         HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  assert_request_refused(f, key, "GET", path, f->now, body, signature,
                         HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  assert_request_refused(f, key, "POST", path, f->now + 1, body, signature,
                         HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  assert_request_refused(f, key, "POST", path, f->now, body, "AAAA",
                         HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  g_autofree char *mangled = g_strdup(signature);
  mangled[3] = mangled[3] == 'A' ? 'B' : 'A';
  assert_request_refused(f, key, "POST", path, f->now, body, mangled,
                         HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);

  g_autoptr(HarkIdentity) stranger = new_identity(f->dir, "stranger.pem");
  g_autoptr(GBytes) stranger_key = hark_identity_get_public_key(stranger);
  assert_request_refused(f, stranger_key, "POST", path, f->now, body, signature,
                         HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);

  /* The nonce is signed: another one does not verify, and a malformed one is refused. */
  g_assert_false(hark_request_verify(key, "POST", path, f->now, "0123456789abcdef0123456789abcdee",
                                     body, signature, f->now, 300, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  g_clear_error(&error);
  const char *bad_nonces[] = {
    "", "short", "0123456789abcdef\n0123456789", "0123456789abcdef:x",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad_nonces); i++) {
    g_assert_false(hark_request_nonce_is_valid(bad_nonces[i]));
    g_assert_false(hark_request_verify(key, "POST", path, f->now, bad_nonces[i], body, signature,
                                       f->now, 300, &error));
    g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_MALFORMED);
    g_clear_error(&error);
  }
  g_autofree char *fresh = hark_request_new_nonce();
  g_autofree char *fresh2 = hark_request_new_nonce();
  g_assert_true(hark_request_nonce_is_valid(fresh));
  g_assert_cmpstr(fresh, !=, fresh2);
}

static void
test_request_stale(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) key = hark_identity_get_public_key(f->device);
  const gint64 dates[] = { f->now - 301, f->now + 301 };
  for (gsize i = 0; i < G_N_ELEMENTS(dates); i++) {
    g_autofree char *signature =
      hark_request_sign(f->device, "GET", "/v1/buddies", dates[i], NONCE, NULL, &error);
    g_assert_no_error(error);
    assert_request_refused(f, key, "GET", "/v1/buddies", dates[i], NULL, signature,
                           HARK_CERTIFICATE_ERROR_STALE);
  }
  /* At the edge of the allowed skew, and with no body (the empty body's digest). */
  g_autofree char *signature =
    hark_request_sign(f->device, "GET", "/v1/buddies", f->now - 300, NONCE, NULL, &error);
  g_assert_true(hark_request_verify(key, "GET", "/v1/buddies", f->now - 300, NONCE, NULL, signature,
                                    f->now, 300, &error));
  g_assert_no_error(error);
}

/* ---- login nonces and proofs -------------------------------------------------------------- */

static void
assert_nonce_refused(HarkCa *ca, const char *nonce, gint64 now, HarkCertificateError code)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_ca_check_nonce(ca, nonce, now, 120, NULL, &error));
  g_assert_error(error, HARK_CERTIFICATE_ERROR, (gint)code);
  g_test_message("nonce refused as expected: %s", error->message);
}

static void
test_login_nonces(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *nonce = hark_ca_make_nonce(f->ca, f->now);
  g_autofree char *other = hark_ca_make_nonce(f->ca, f->now);
  g_assert_cmpstr(nonce, !=, other);
  gint64 issued = 0;
  g_assert_true(hark_ca_check_nonce(f->ca, nonce, f->now + 120, 120, &issued, &error));
  g_assert_no_error(error);
  g_assert_cmpint(issued, ==, f->now);
  /* Another process with the same CA takes it; another CA does not. */
  g_autoptr(HarkCa) same = hark_ca_load_or_create(f->ca_dir, "test CA", &error);
  g_assert_true(hark_ca_check_nonce(same, nonce, f->now, 120, NULL, &error));
  g_autofree char *other_dir = g_build_filename(f->dir, "other-ca", NULL);
  g_autoptr(HarkCa) stranger = hark_ca_load_or_create(other_dir, "other CA", &error);
  assert_nonce_refused(stranger, nonce, f->now, HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  /* Too old, from the future, changed, or not a nonce at all. */
  assert_nonce_refused(f->ca, nonce, f->now + 121, HARK_CERTIFICATE_ERROR_STALE);
  assert_nonce_refused(f->ca, nonce, f->now - 31, HARK_CERTIFICATE_ERROR_STALE);
  g_autofree char *tampered = g_strdup(nonce);
  char *digit = strchr(tampered, '-') - 1;
  *digit = *digit == '0' ? '1' : '0';
  assert_nonce_refused(f->ca, tampered, f->now, HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
  const char *junk[] = { "", "1-2-3", "abc", "1700000000-00-00", NULL };
  for (const char *const *j = junk; *j != NULL; j++)
    assert_nonce_refused(f->ca, *j, f->now, HARK_CERTIFICATE_ERROR_MALFORMED);
}

static void
test_login_proofs(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) key = hark_identity_get_public_key(f->device);
  g_autofree char *nonce = hark_ca_make_nonce(f->ca, f->now);
  g_autofree char *proof = hark_login_proof_sign(f->device, nonce, "alice", &error);
  g_assert_no_error(error);
  g_assert_true(hark_login_proof_verify(key, nonce, "alice", proof, &error));
  g_assert_no_error(error);

  g_autoptr(HarkIdentity) stranger = new_identity(f->dir, "stranger.pem");
  g_autoptr(GBytes) stranger_key = hark_identity_get_public_key(stranger);
  g_autofree char *other_nonce = hark_ca_make_nonce(f->ca, f->now);
  struct {
    GBytes *key;
    const char *nonce;
    const char *user;
    const char *proof;
  } refused[] = {
    { stranger_key, nonce, "alice", proof }, /* a proof for another key */
    { key, other_nonce, "alice", proof }, /* another nonce */
    { key, nonce, "bob", proof }, /* another user */
    { key, nonce, "alice", "AAAA" }, /* not a signature */
    { key, nonce, "alice", "" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
    g_assert_false(hark_login_proof_verify(refused[i].key, refused[i].nonce, refused[i].user,
                                           refused[i].proof, &error));
    g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_BAD_SIGNATURE);
    g_clear_error(&error);
  }
}

/* ---- main -------------------------------------------------------------------------------- */

static void
add(const char *path, void (*test)(Fixture *, gconstpointer))
{
  g_test_add(path, Fixture, NULL, fixture_set_up, test, fixture_tear_down);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  add("/certificate/ca/created-private", test_ca_created_private);
  add("/certificate/ca/same-after-reload", test_ca_same_after_reload);
  add("/certificate/ca/corrupt-key-refused", test_ca_corrupt_key_refused);
  add("/certificate/ca/readable-key-refused", test_ca_readable_key_refused);
  add("/certificate/ca/lost-key-refused", test_ca_lost_key_refused);
  add("/certificate/device/round-trip", test_issue_verify_round_trip);
  add("/certificate/device/contents", test_device_certificate_contents);
  add("/certificate/device/expired", test_expired);
  add("/certificate/device/not-yet-valid", test_not_yet_valid);
  add("/certificate/device/other-ca", test_other_ca_untrusted);
  add("/certificate/device/tampered", test_tampered);
  add("/certificate/device/wrong-key-type", test_wrong_key_type);
  add("/certificate/device/inconsistent", test_inconsistent_device_refused);
  add("/certificate/server", test_server_certificate);
  add("/certificate/purposes/device-is-not-server", test_device_is_not_server);
  add("/certificate/purposes/server-is-not-device", test_server_is_not_device);
  add("/certificate/request/signatures", test_request_signatures);
  add("/certificate/request/stale", test_request_stale);
  add("/certificate/login/nonces", test_login_nonces);
  add("/certificate/login/proofs", test_login_proofs);
  return g_test_run();
}
