/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-identity.c: the device key: created private (0600 file in a 0700 directory),
 * stable across loads, signs and verifies, and a damaged, foreign or readable key file
 * is refused and left exactly as it was. */
#include "test-files.h"
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <hark/identity.h>

typedef struct {
  char *dir; /* a fresh temporary directory */
  char *key_dir; /* dir/state, not created */
  char *key_path; /* dir/state/identity.pem */
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("hark-identity-XXXXXX", &error);
  g_assert_no_error(error);
  f->key_dir = g_build_filename(f->dir, "state", NULL);
  f->key_path = g_build_filename(f->key_dir, "identity.pem", NULL);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_assert_true(hark_test_remove_tree(f->dir));
  g_free(f->key_path);
  g_free(f->key_dir);
  g_free(f->dir);
}

static HarkIdentity *
create_or_die(const char *path)
{
  g_autoptr(GError) error = NULL;
  gboolean created = FALSE;
  HarkIdentity *identity = hark_identity_load_or_create(path, &created, &error);

  g_assert_no_error(error);
  g_assert_nonnull(identity);
  g_assert_true(created);
  return identity;
}

/* Writes contents to the key path, mode 0600, in a 0700 directory. */
static void
write_key_file(Fixture *f, const char *contents, gsize length)
{
  g_autoptr(GError) error = NULL;
  g_assert_cmpint(g_mkdir_with_parents(f->key_dir, 0700), ==, 0);
  g_file_set_contents_full(f->key_path, contents, (gssize)length, G_FILE_SET_CONTENTS_NONE, 0600,
                           &error);
  g_assert_no_error(error);
}

/* Loading (both ways) fails with code, and the file is byte for byte what it was. */
static void
assert_refused(Fixture *f, HarkIdentityError code, const char *message_part)
{
  g_autofree char *before = NULL;
  gsize before_length;
  g_assert_true(g_file_get_contents(f->key_path, &before, &before_length, NULL));

  for (int attempt = 0; attempt < 2; attempt++) {
    g_autoptr(GError) error = NULL;
    gboolean created = attempt == 1; /* load_or_create must reset it */
    g_autoptr(HarkIdentity) identity =
      attempt == 0 ? hark_identity_load(f->key_path, &error)
                   : hark_identity_load_or_create(f->key_path, &created, &error);
    g_assert_null(identity);
    g_assert_error(error, HARK_IDENTITY_ERROR, (gint)code);
    g_assert_nonnull(strstr(error->message, f->key_path));
    g_assert_nonnull(strstr(error->message, message_part));
    g_assert_false(created);
  }

  g_autofree char *after = NULL;
  gsize after_length;
  g_assert_true(g_file_get_contents(f->key_path, &after, &after_length, NULL));
  g_assert_cmpmem(before, before_length, after, after_length);
  g_autofree char *tmp_path = g_strconcat(f->key_path, ".tmp", NULL);
  g_assert_false(g_file_test(tmp_path, G_FILE_TEST_EXISTS));
}

static void
assert_corrupt(Fixture *f)
{
  assert_refused(f, HARK_IDENTITY_ERROR_CORRUPT, "NOT replaced");
}

/* ---- creating and loading --------------------------------------------------------- */

static void
test_create_private(Fixture *f, gconstpointer data)
{
  g_autoptr(HarkIdentity) identity = create_or_die(f->key_path);
  g_assert_nonnull(identity);

  g_assert_cmpuint(hark_test_file_mode(f->key_dir), ==, 0700);
  g_assert_cmpuint(hark_test_file_mode(f->key_path), ==, 0600);
  g_autofree char *tmp_path = g_strconcat(f->key_path, ".tmp", NULL);
  g_assert_false(g_file_test(tmp_path, G_FILE_TEST_EXISTS));

  g_autofree char *pem = NULL;
  g_assert_true(g_file_get_contents(f->key_path, &pem, NULL, NULL));
  g_assert_true(g_str_has_prefix(pem, "-----BEGIN PRIVATE KEY-----\n"));
}

static void
test_create_ignores_stale_tmp(Fixture *f, gconstpointer data)
{
  g_autofree char *tmp_path = g_strconcat(f->key_path, ".tmp", NULL);
  g_assert_cmpint(g_mkdir_with_parents(f->key_dir, 0700), ==, 0);
  g_assert_true(g_file_set_contents(tmp_path, "half a key", -1, NULL));

  g_autoptr(HarkIdentity) identity = create_or_die(f->key_path);
  g_assert_nonnull(identity);
  g_assert_false(g_file_test(tmp_path, G_FILE_TEST_EXISTS));
}

static void
test_load_same_identity(Fixture *f, gconstpointer data)
{
  g_autoptr(HarkIdentity) first = create_or_die(f->key_path);
  g_autoptr(GError) error = NULL;
  gboolean created = TRUE;

  g_autoptr(HarkIdentity) again = hark_identity_load_or_create(f->key_path, &created, &error);
  g_assert_no_error(error);
  g_assert_false(created);
  g_assert_cmpstr(hark_identity_get_fingerprint(again), ==, hark_identity_get_fingerprint(first));

  g_autoptr(HarkIdentity) loaded = hark_identity_load(f->key_path, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) key1 = hark_identity_get_public_key(first);
  g_autoptr(GBytes) key2 = hark_identity_get_public_key(loaded);
  g_assert_true(g_bytes_equal(key1, key2));
}

static void
test_fingerprint_and_public_pem(Fixture *f, gconstpointer data)
{
  g_autoptr(HarkIdentity) identity = create_or_die(f->key_path);
  g_autoptr(GBytes) public_key = hark_identity_get_public_key(identity);
  const char *fingerprint = hark_identity_get_fingerprint(identity);

  g_assert_cmpuint(g_bytes_get_size(public_key), ==, HARK_IDENTITY_PUBLIC_KEY_SIZE);
  g_assert_cmpuint(strlen(fingerprint), ==, 64);
  for (const char *p = fingerprint; *p != '\0'; p++)
    g_assert_true(g_ascii_isdigit(*p) || (*p >= 'a' && *p <= 'f'));
  g_autofree char *expected = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, public_key);
  g_assert_cmpstr(fingerprint, ==, expected);

  /* The PEM holds the same public key, and nothing private. */
  g_autofree char *pem = hark_identity_get_public_pem(identity);
  g_assert_true(g_str_has_prefix(pem, "-----BEGIN PUBLIC KEY-----\n"));
  g_assert_null(strstr(pem, "PRIVATE"));
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  g_assert_nonnull(key);
  guint8 raw[HARK_IDENTITY_PUBLIC_KEY_SIZE];
  size_t raw_length = sizeof raw;
  g_assert_cmpint(EVP_PKEY_get_raw_public_key(key, raw, &raw_length), ==, 1);
  EVP_PKEY_free(key);
  g_assert_cmpmem(raw, raw_length, g_bytes_get_data(public_key, NULL),
                  g_bytes_get_size(public_key));
}

static void
test_two_identities_differ(Fixture *f, gconstpointer data)
{
  g_autofree char *other_path = g_build_filename(f->dir, "other.pem", NULL);
  g_autoptr(HarkIdentity) one = create_or_die(f->key_path);
  g_autoptr(HarkIdentity) two = create_or_die(other_path);

  g_assert_cmpstr(hark_identity_get_fingerprint(one), !=, hark_identity_get_fingerprint(two));
}

static void
test_load_missing(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkIdentity) identity = hark_identity_load(f->key_path, &error);

  g_assert_null(identity);
  g_assert_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_IO);
  g_assert_false(g_file_test(f->key_path, G_FILE_TEST_EXISTS));
}

/* ---- signing ---------------------------------------------------------------------- */

static void
test_sign_verify(Fixture *f, gconstpointer data)
{
  g_autoptr(HarkIdentity) identity = create_or_die(f->key_path);
  g_autoptr(GBytes) public_key = hark_identity_get_public_key(identity);
  g_autoptr(GBytes) message = g_bytes_new_static("presence: alice@laptop", 22);
  g_autoptr(GError) error = NULL;

  g_autoptr(GBytes) signature = hark_identity_sign(identity, message, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(signature), ==, HARK_IDENTITY_SIGNATURE_SIZE);
  g_assert_true(hark_identity_verify(public_key, message, signature, &error));
  g_assert_no_error(error);

  /* Ed25519 is deterministic. */
  g_autoptr(GBytes) again = hark_identity_sign(identity, message, &error);
  g_assert_no_error(error);
  g_assert_true(g_bytes_equal(signature, again));

  /* Empty data signs too. */
  g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
  g_autoptr(GBytes) empty_signature = hark_identity_sign(identity, empty, &error);
  g_assert_no_error(error);
  g_assert_true(hark_identity_verify(public_key, empty, empty_signature, &error));
  g_assert_no_error(error);
}

static GBytes *
flip_bit(GBytes *bytes, gsize index)
{
  gsize length;
  guint8 *copy = g_memdup2(g_bytes_get_data(bytes, &length), g_bytes_get_size(bytes));
  copy[index] ^= 0x01;
  return g_bytes_new_take(copy, length);
}

static void
assert_bad_signature(GBytes *public_key, GBytes *message, GBytes *signature)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_identity_verify(public_key, message, signature, &error));
  g_assert_error(error, HARK_IDENTITY_ERROR, HARK_IDENTITY_ERROR_BAD_SIGNATURE);
}

static void
test_verify_refuses_tampering(Fixture *f, gconstpointer data)
{
  g_autofree char *other_path = g_build_filename(f->dir, "other.pem", NULL);
  g_autoptr(HarkIdentity) identity = create_or_die(f->key_path);
  g_autoptr(HarkIdentity) other = create_or_die(other_path);
  g_autoptr(GBytes) public_key = hark_identity_get_public_key(identity);
  g_autoptr(GBytes) other_key = hark_identity_get_public_key(other);
  g_autoptr(GBytes) message = g_bytes_new_static("call alice", 10);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) signature = hark_identity_sign(identity, message, &error);
  g_assert_no_error(error);

  g_autoptr(GBytes) tampered_message = flip_bit(message, 0);
  assert_bad_signature(public_key, tampered_message, signature);
  g_autoptr(GBytes) tampered_signature = flip_bit(signature, 17);
  assert_bad_signature(public_key, message, tampered_signature);
  assert_bad_signature(other_key, message, signature);

  g_autoptr(GBytes) short_signature = g_bytes_new_from_bytes(signature, 0, 63);
  assert_bad_signature(public_key, message, short_signature);
  g_autoptr(GBytes) short_key = g_bytes_new_from_bytes(public_key, 0, 31);
  assert_bad_signature(short_key, message, signature);
}

/* ---- refusals --------------------------------------------------------------------- */

static void
test_corrupt_garbage(Fixture *f, gconstpointer data)
{
  static const char garbage[] = "this is not a key\n\x01\x02\xff";
  write_key_file(f, garbage, sizeof garbage - 1);
  assert_corrupt(f);
}

static void
test_corrupt_empty(Fixture *f, gconstpointer data)
{
  write_key_file(f, "", 0);
  assert_corrupt(f);
}

static void
test_corrupt_truncated(Fixture *f, gconstpointer data)
{
  g_autofree char *pem = NULL;
  gsize length;
  {
    g_autoptr(HarkIdentity) identity = create_or_die(f->key_path);
    g_assert_nonnull(identity);
  }
  g_assert_true(g_file_get_contents(f->key_path, &pem, &length, NULL));
  g_assert_cmpint(g_remove(f->key_path), ==, 0);

  write_key_file(f, pem, length / 2);
  assert_corrupt(f);
  write_key_file(f, pem, length - strlen("-----END PRIVATE KEY-----\n"));
  assert_corrupt(f);
}

static void
write_foreign_key(Fixture *f, const char *type, const char *parameter, size_t bits)
{
  EVP_PKEY *key = bits != 0 ? EVP_PKEY_Q_keygen(NULL, NULL, type, bits)
                            : EVP_PKEY_Q_keygen(NULL, NULL, type, parameter);
  g_assert_nonnull(key);
  BIO *bio = BIO_new(BIO_s_mem());
  g_assert_cmpint(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), ==, 1);
  char *pem = NULL;
  long length = BIO_get_mem_data(bio, &pem);
  write_key_file(f, pem, (gsize)length);
  BIO_free(bio);
  EVP_PKEY_free(key);
}

static void
test_corrupt_rsa(Fixture *f, gconstpointer data)
{
  write_foreign_key(f, "RSA", NULL, 1024);
  assert_refused(f, HARK_IDENTITY_ERROR_CORRUPT, "RSA key, expected Ed25519");
  assert_corrupt(f);
}

static void
test_corrupt_p256(Fixture *f, gconstpointer data)
{
  write_foreign_key(f, "EC", "P-256", 0);
  assert_refused(f, HARK_IDENTITY_ERROR_CORRUPT, "EC key, expected Ed25519");
  assert_corrupt(f);
}

static void
test_permissions(Fixture *f, gconstpointer data)
{
  {
    g_autoptr(HarkIdentity) identity = create_or_die(f->key_path);
    g_assert_nonnull(identity);
  }
  g_assert_cmpint(g_chmod(f->key_path, 0644), ==, 0);
  assert_refused(f, HARK_IDENTITY_ERROR_PERMISSIONS, "chmod 600");
  assert_refused(f, HARK_IDENTITY_ERROR_PERMISSIONS, "0644");
  g_assert_cmpuint(hark_test_file_mode(f->key_path), ==, 0644);

  g_assert_cmpint(g_chmod(f->key_path, 0620), ==, 0);
  assert_refused(f, HARK_IDENTITY_ERROR_PERMISSIONS, "0620");

  /* Fixed by the user: loads again. */
  g_assert_cmpint(g_chmod(f->key_path, 0600), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkIdentity) identity = hark_identity_load(f->key_path, &error);
  g_assert_nonnull(identity);
  g_assert_no_error(error);
}

static void
add_test(const char *path, void (*test)(Fixture *, gconstpointer))
{
  g_test_add(path, Fixture, NULL, fixture_set_up, test, fixture_tear_down);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);

  add_test("/identity/create/private", test_create_private);
  add_test("/identity/create/stale-tmp", test_create_ignores_stale_tmp);
  add_test("/identity/load/same-identity", test_load_same_identity);
  add_test("/identity/load/missing", test_load_missing);
  add_test("/identity/public/fingerprint-and-pem", test_fingerprint_and_public_pem);
  add_test("/identity/public/two-differ", test_two_identities_differ);
  add_test("/identity/sign/round-trip", test_sign_verify);
  add_test("/identity/sign/tampering", test_verify_refuses_tampering);
  add_test("/identity/refuse/garbage", test_corrupt_garbage);
  add_test("/identity/refuse/empty", test_corrupt_empty);
  add_test("/identity/refuse/truncated", test_corrupt_truncated);
  add_test("/identity/refuse/rsa", test_corrupt_rsa);
  add_test("/identity/refuse/p256", test_corrupt_p256);
  add_test("/identity/refuse/permissions", test_permissions);

  return g_test_run();
}
