/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-presence.c: presence records (core/base/presence.c): a record signed by a device
 * verifies, and every record a hostile device or node could make up is refused with the
 * error that says why: a forged signature, another user's certificate, a certificate of
 * another CA, an expired certificate, a record too old or from the future, oversized or
 * malformed fields. And a super node's store of them (core/directory/directory-store.c):
 * what a client publishing through its SN link can and cannot get stored. */
#include "test-files.h"
#include "test-nodes.h"

#include "directory-private.h"

#include <hark/certificate.h>
#include <hark/identity.h>
#include <hark/presence.h>

#include <string.h>

typedef struct {
  char *dir;
  HarkCa *ca;
  HarkCa *other_ca;
  HarkIdentity *alice_key;
  HarkIdentity *bob_key;
  GBytes *alice_cert; /* DER-less: PEM bytes are taken as well by hark_certificate_verify */
  GBytes *bob_cert;
  gint64 now;
} Fixture;

static void
set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("hark-presence-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *ca_dir = g_build_filename(f->dir, "ca", NULL);
  g_autofree char *other_dir = g_build_filename(f->dir, "other", NULL);
  f->ca = hark_ca_load_or_create(ca_dir, "test CA", &error);
  g_assert_no_error(error);
  f->other_ca = hark_ca_load_or_create(other_dir, "test CA", &error);
  g_assert_no_error(error);
  f->alice_key = hark_test_identity_new(f->dir, "alice.pem");
  f->bob_key = hark_test_identity_new(f->dir, "bob.pem");
  f->now = 1900000000;
  f->alice_cert = hark_test_issue_device(f->ca, "Alice", f->alice_key, f->now - 3600, 86400);
  f->bob_cert = hark_test_issue_device(f->ca, "bob", f->bob_key, f->now - 3600, 86400);
}

static void
tear_down(Fixture *f, gconstpointer data)
{
  hark_ca_free(f->ca);
  hark_ca_free(f->other_ca);
  hark_identity_free(f->alice_key);
  hark_identity_free(f->bob_key);
  g_bytes_unref(f->alice_cert);
  g_bytes_unref(f->bob_cert);
  hark_test_remove_tree(f->dir);
  g_free(f->dir);
}

/* alice's full record, made at f->now, with her certificate and key. */
static HarkPresenceRecord *
alice_record(Fixture *f)
{
  HarkPresenceRecord *r = hark_presence_record_new();
  r->user = g_strdup("Alice");
  r->device = g_strdup(hark_identity_get_fingerprint(f->alice_key));
  r->certificate = g_bytes_ref(f->alice_cert);
  g_free(r->sn);
  r->sn = g_strdup("192.0.2.1:33033");
  hark_presence_record_add_address(r, "host", "10.0.0.5", 40000);
  hark_presence_record_add_address(r, "srflx", "203.0.113.9", 40001);
  g_free(r->nat);
  r->nat = g_strdup("nat");
  r->status = HARK_PRESENCE_AWAY;
  r->sequence = 7;
  r->time = f->now;
  return r;
}

static GVariant *
sign(HarkPresenceRecord *r, HarkIdentity *key)
{
  g_autoptr(GError) error = NULL;
  GVariant *signed_form = hark_presence_sign(r, key, &error);
  g_assert_no_error(error);
  return g_variant_ref(signed_form);
}

static void
assert_refused(Fixture *f, GVariant *signed_form, const char *user, gint64 now,
               HarkPresenceError code)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ca = g_strdup(hark_ca_get_certificate_pem(f->ca));
  g_autoptr(HarkPresenceRecord) r = hark_presence_verify(signed_form, ca, user, now, &error);
  g_assert_null(r);
  g_assert_error(error, HARK_PRESENCE_ERROR, (gint)code);
  g_test_message("refused: %s", error->message);
}

static void
test_round_trip(Fixture *f, gconstpointer data)
{
  g_autoptr(HarkPresenceRecord) r = alice_record(f);
  g_autoptr(GVariant) signed_form = sign(r, f->alice_key);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkPresenceRecord) back = hark_presence_verify(
    signed_form, hark_ca_get_certificate_pem(f->ca), "alice", f->now + 60, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(back->user, ==, "Alice");
  g_assert_cmpstr(back->device, ==, r->device);
  g_assert_cmpstr(back->sn, ==, "192.0.2.1:33033");
  g_assert_cmpuint(back->addresses->len, ==, 2);
  g_assert_cmpstr(((HarkPresenceAddress *)back->addresses->pdata[1])->host, ==, "203.0.113.9");
  g_assert_cmpint(back->status, ==, HARK_PRESENCE_AWAY);
  g_assert_cmpuint(back->sequence, ==, 7);
  g_assert_false(back->is_public);
  g_assert_true(g_variant_equal(back->signed_form, signed_form));

  /* The public form tells neither addresses nor status, and verifies on its own. */
  g_autoptr(HarkPresenceRecord) pub = hark_presence_record_public(r);
  g_autoptr(GVariant) pub_signed = sign(pub, f->alice_key);
  g_autoptr(HarkPresenceRecord) pub_back =
    hark_presence_verify(pub_signed, hark_ca_get_certificate_pem(f->ca), NULL, f->now, &error);
  g_assert_no_error(error);
  g_assert_true(pub_back->is_public);
  g_assert_cmpuint(pub_back->addresses->len, ==, 0);
  g_assert_cmpint(pub_back->status, ==, HARK_PRESENCE_HIDDEN);
}

static void
test_forged(Fixture *f, gconstpointer data)
{
  /* alice's certificate, bob's key: the signature is not the certified key's. */
  g_autoptr(HarkPresenceRecord) r = alice_record(f);
  g_autoptr(GVariant) signed_form = sign(r, f->bob_key);
  assert_refused(f, signed_form, NULL, f->now, HARK_PRESENCE_ERROR_FORGED);

  /* One bit of the payload changed after signing (the status: away -> busy is the same
   * length, so the form stays valid). */
  g_autoptr(HarkPresenceRecord) good = alice_record(f);
  g_autoptr(GVariant) good_signed = sign(good, f->alice_key);
  g_autoptr(GVariant) payload_v = g_variant_get_child_value(good_signed, 0);
  g_autoptr(GVariant) sig_v = g_variant_get_child_value(good_signed, 1);
  gsize size = 0;
  const guint8 *bytes = g_variant_get_fixed_array(payload_v, &size, 1);
  g_autofree guint8 *copy = g_memdup2(bytes, size);
  guint8 *at = memmem(copy, size, "away", 4);
  g_assert_nonnull(at);
  memcpy(at, "busy", 4);
  g_autoptr(GVariant) tampered = g_variant_ref_sink(g_variant_new(
    "(@ay@ay)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, copy, size, 1), sig_v));
  assert_refused(f, tampered, NULL, f->now, HARK_PRESENCE_ERROR_FORGED);
}

static void
test_other_user(Fixture *f, gconstpointer data)
{
  /* bob publishes a record under alice's name, with his own certificate and key. */
  g_autoptr(HarkPresenceRecord) r = alice_record(f);
  g_bytes_unref(r->certificate);
  r->certificate = g_bytes_ref(f->bob_cert);
  g_free(r->device);
  r->device = g_strdup(hark_identity_get_fingerprint(f->bob_key));
  g_autoptr(GVariant) signed_form = sign(r, f->bob_key);
  assert_refused(f, signed_form, NULL, f->now, HARK_PRESENCE_ERROR_FOREIGN);

  /* His own record, sent where alice's is due (an SN filing it under alice). */
  g_autoptr(HarkPresenceRecord) own = alice_record(f);
  g_free(own->user);
  own->user = g_strdup("bob");
  g_bytes_unref(own->certificate);
  own->certificate = g_bytes_ref(f->bob_cert);
  g_free(own->device);
  own->device = g_strdup(hark_identity_get_fingerprint(f->bob_key));
  g_autoptr(GVariant) own_signed = sign(own, f->bob_key);
  assert_refused(f, own_signed, "alice", f->now, HARK_PRESENCE_ERROR_FOREIGN);

  /* alice's certificate with another device id. */
  g_autoptr(HarkPresenceRecord) wrong = alice_record(f);
  g_free(wrong->device);
  wrong->device = g_strdup(hark_identity_get_fingerprint(f->bob_key));
  g_autoptr(GVariant) wrong_signed = sign(wrong, f->alice_key);
  assert_refused(f, wrong_signed, NULL, f->now, HARK_PRESENCE_ERROR_FOREIGN);
}

static void
test_other_ca(Fixture *f, gconstpointer data)
{
  g_autoptr(HarkPresenceRecord) r = alice_record(f);
  g_bytes_unref(r->certificate);
  r->certificate = hark_test_issue_device(f->other_ca, "Alice", f->alice_key, f->now - 3600, 86400);
  g_autoptr(GVariant) signed_form = sign(r, f->alice_key);
  assert_refused(f, signed_form, NULL, f->now, HARK_PRESENCE_ERROR_FOREIGN);
}

static void
test_expired(Fixture *f, gconstpointer data)
{
  /* Its certificate ended an hour before the record was signed. */
  g_autoptr(HarkPresenceRecord) r = alice_record(f);
  g_bytes_unref(r->certificate);
  r->certificate = hark_test_issue_device(f->ca, "Alice", f->alice_key, f->now - 7200, 3600);
  g_autoptr(GVariant) signed_form = sign(r, f->alice_key);
  assert_refused(f, signed_form, NULL, f->now, HARK_PRESENCE_ERROR_EXPIRED);

  /* A good record, 72 h and a second later: forgotten. Just inside: still good. */
  g_autoptr(HarkPresenceRecord) good = alice_record(f);
  g_autoptr(GVariant) good_signed = sign(good, f->alice_key);
  assert_refused(f, good_signed, NULL, f->now + HARK_PRESENCE_LIFETIME_S + 1,
                 HARK_PRESENCE_ERROR_EXPIRED);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkPresenceRecord) still =
    hark_presence_verify(good_signed, hark_ca_get_certificate_pem(f->ca), NULL,
                         f->now + HARK_PRESENCE_LIFETIME_S, &error);
  g_assert_no_error(error);
  g_assert_nonnull(still);
}

static void
test_future(Fixture *f, gconstpointer data)
{
  g_autoptr(HarkPresenceRecord) r = alice_record(f);
  r->time = f->now + HARK_PRESENCE_MAX_SKEW_S + 1;
  g_autoptr(GVariant) signed_form = sign(r, f->alice_key);
  assert_refused(f, signed_form, NULL, f->now, HARK_PRESENCE_ERROR_FUTURE);
}

static void
test_malformed(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  /* Limits the signer checks too: it never signs what a verifier would refuse. */
  g_autoptr(HarkPresenceRecord) many = alice_record(f);
  for (int i = 0; i < HARK_PRESENCE_MAX_ADDRESSES; i++)
    hark_presence_record_add_address(many, "host", "10.0.0.1", 1000 + i);
  g_assert_null(hark_presence_sign(many, f->alice_key, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED);
  g_clear_error(&error);

  g_autoptr(HarkPresenceRecord) long_name = alice_record(f);
  g_free(long_name->user);
  long_name->user = g_strnfill(HARK_PRESENCE_NAME_MAX + 1, 'a');
  g_assert_null(hark_presence_sign(long_name, f->alice_key, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED);
  g_clear_error(&error);

  g_autoptr(HarkPresenceRecord) leaky = alice_record(f);
  leaky->is_public = TRUE; /* a public form with addresses */
  g_assert_null(hark_presence_sign(leaky, f->alice_key, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED);
  g_clear_error(&error);

  /* What a hostile node could send: an oversized payload, a short signature, another
   * type, a payload that is not the record's type, a log-forging name. */
  g_autofree guint8 *big = g_malloc0(HARK_PRESENCE_MAX_PAYLOAD + 1);
  guint8 sig[HARK_IDENTITY_SIGNATURE_SIZE] = { 0 };
  GVariant *cases[] = {
    g_variant_new(
      "(@ay@ay)",
      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, big, HARK_PRESENCE_MAX_PAYLOAD + 1, 1),
      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, sig, sizeof sig, 1)),
    g_variant_new("(@ay@ay)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, sig, 10, 1),
                  g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, sig, 10, 1)),
    g_variant_new("(ss)", "a", "b"),
    g_variant_new("(@ay@ay)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, sig, 3, 1),
                  g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, sig, sizeof sig, 1)),
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GVariant) v = g_variant_ref_sink(cases[i]);
    g_autoptr(HarkPresenceRecord) r = hark_presence_parse(v, &error);
    g_assert_null(r);
    g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED);
    g_clear_error(&error);
  }
}

static void
test_most_available(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) records =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  g_assert_cmpint(hark_presence_most_available(records), ==, HARK_PRESENCE_HIDDEN);
  HarkPresenceStatus statuses[] = { HARK_PRESENCE_INVISIBLE, HARK_PRESENCE_BUSY,
                                    HARK_PRESENCE_AWAY };
  HarkPresenceStatus expected[] = { HARK_PRESENCE_INVISIBLE, HARK_PRESENCE_BUSY,
                                    HARK_PRESENCE_AWAY };
  for (gsize i = 0; i < G_N_ELEMENTS(statuses); i++) {
    HarkPresenceRecord *r = hark_presence_record_new();
    r->status = statuses[i];
    g_ptr_array_add(records, r);
    g_assert_cmpint(hark_presence_most_available(records), ==, expected[i]);
  }
  HarkPresenceStatus status;
  g_assert_true(hark_presence_status_from_string("busy", &status));
  g_assert_cmpint(status, ==, HARK_PRESENCE_BUSY);
  g_assert_false(hark_presence_status_from_string("Busy", &status));
  g_assert_true(hark_presence_name_is_valid("alice.B-2_x"));
  g_assert_false(hark_presence_name_is_valid("2alice"));
  g_assert_false(hark_presence_name_is_valid("ali\nce"));
  g_assert_false(hark_presence_name_is_valid(""));
}

/* ---- an SN's store ------------------------------------------------------------------- */

/* The two signed forms of r (signed by key), as a DIR_PUBLISH carries them. */
static void
publication(HarkPresenceRecord *r, HarkIdentity *key, GVariant **pub, GVariant **full)
{
  g_autoptr(HarkPresenceRecord) public_form = hark_presence_record_public(r);
  *full = sign(r, key);
  *pub = sign(public_form, key);
}

static const HarkPresenceRecord *
put(Fixture *f, DirectoryStore *store, HarkPresenceRecord *r, HarkIdentity *key,
    const char *cert_user, const char *cert_device, char **buddies, gpointer from, GError **error)
{
  g_autoptr(GVariant) pub = NULL;
  g_autoptr(GVariant) full = NULL;
  publication(r, key, &pub, &full);
  return hark_directory_store_put(store, hark_ca_get_certificate_pem(f->ca), f->now, pub, full,
                                  buddies, cert_user, cert_device, from, error);
}

static HarkPresenceQuery *
query(const char *key, gboolean prefix)
{
  HarkPresenceQuery *q = g_new0(HarkPresenceQuery, 1);
  q->key = g_strdup(key);
  q->prefix = prefix;
  q->strategies = g_new0(char *, 1);
  return q;
}

static void
test_store_refusals(Fixture *f, gconstpointer data)
{
  DirectoryStore *store = hark_directory_store_new(2);
  const char *alice_device = hark_identity_get_fingerprint(f->alice_key);
  const char *bob_device = hark_identity_get_fingerprint(f->bob_key);
  g_autoptr(GError) error = NULL;

  /* bob, logged in on his link as bob, publishes a record under alice's name: signed by
   * his key with his certificate (refused: the certified user is bob), or with alice's
   * certificate he copied (refused: not his link's user, and not her key's signature). */
  g_autoptr(HarkPresenceRecord) as_alice = alice_record(f);
  g_bytes_unref(as_alice->certificate);
  as_alice->certificate = g_bytes_ref(f->bob_cert);
  g_free(as_alice->device);
  as_alice->device = g_strdup(bob_device);
  g_assert_null(put(f, store, as_alice, f->bob_key, "bob", bob_device, NULL, NULL, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_FOREIGN);
  g_clear_error(&error);
  g_autoptr(HarkPresenceRecord) copied = alice_record(f);
  g_assert_null(put(f, store, copied, f->bob_key, "bob", bob_device, NULL, NULL, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_FOREIGN);
  g_clear_error(&error);
  /* alice's record, validly signed by her, sent on another device's link of hers. */
  g_assert_null(put(f, store, copied, f->alice_key, "alice", bob_device, NULL, NULL, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_FOREIGN);
  g_clear_error(&error);

  /* A certificate that had expired when the record was signed. */
  g_autoptr(HarkPresenceRecord) expired = alice_record(f);
  g_bytes_unref(expired->certificate);
  expired->certificate = hark_test_issue_device(f->ca, "Alice", f->alice_key, f->now - 7200, 3600);
  g_assert_null(put(f, store, expired, f->alice_key, "alice", alice_device, NULL, NULL, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_EXPIRED);
  g_clear_error(&error);

  /* Two forms that are not one record. */
  g_autoptr(HarkPresenceRecord) one = alice_record(f);
  g_autoptr(GVariant) pub = NULL;
  g_autoptr(GVariant) full = NULL;
  publication(one, f->alice_key, &pub, &full);
  g_assert_null(hark_directory_store_put(store, hark_ca_get_certificate_pem(f->ca), f->now, full,
                                         pub, NULL, "alice", alice_device, NULL, &error));
  g_assert_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_assert_cmpuint(hark_directory_store_size(store), ==, 0);

  /* The good one is kept; the same again (a replay) and an older one are stale. */
  g_assert_nonnull(put(f, store, one, f->alice_key, "alice", alice_device, NULL, NULL, &error));
  g_assert_no_error(error);
  g_assert_null(hark_directory_store_put(store, hark_ca_get_certificate_pem(f->ca), f->now, pub,
                                         full, NULL, "alice", alice_device, NULL, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_clear_error(&error);
  one->sequence = 3;
  g_assert_null(put(f, store, one, f->alice_key, "alice", alice_device, NULL, NULL, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_clear_error(&error);

  /* bob's own fills the store (2); a third device is refused, a newer record of one
   * already kept is not. */
  g_autoptr(HarkPresenceRecord) bob = alice_record(f);
  g_free(bob->user);
  bob->user = g_strdup("bob");
  g_bytes_unref(bob->certificate);
  bob->certificate = g_bytes_ref(f->bob_cert);
  g_free(bob->device);
  bob->device = g_strdup(bob_device);
  g_assert_nonnull(put(f, store, bob, f->bob_key, "bob", bob_device, NULL, NULL, &error));
  g_autoptr(HarkIdentity) third_key = hark_test_identity_new(f->dir, "third.pem");
  g_autoptr(HarkPresenceRecord) third = alice_record(f);
  g_bytes_unref(third->certificate);
  third->certificate = hark_test_issue_device(f->ca, "alice", third_key, f->now - 3600, 86400);
  g_free(third->device);
  third->device = g_strdup(hark_identity_get_fingerprint(third_key));
  g_assert_null(put(f, store, third, third_key, "alice", third->device, NULL, NULL, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  g_clear_error(&error);
  one->sequence = 100;
  g_assert_nonnull(put(f, store, one, f->alice_key, "alice", alice_device, NULL, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(hark_directory_store_size(store), ==, 2);
  hark_directory_store_free(store);
}

static void
test_store_find(Fixture *f, gconstpointer data)
{
  DirectoryStore *store = hark_directory_store_new(100);
  g_autoptr(GError) error = NULL;
  int link_a = 0, link_b = 0;
  g_autoptr(HarkPresenceRecord) laptop = alice_record(f);
  char *buddies[] = { "Bob", "not a name!", NULL };
  g_assert_nonnull(put(f, store, laptop, f->alice_key, "alice",
                       hark_identity_get_fingerprint(f->alice_key), buddies, &link_a, &error));
  g_autoptr(HarkIdentity) phone_key = hark_test_identity_new(f->dir, "phone.pem");
  g_autoptr(HarkPresenceRecord) phone = alice_record(f);
  g_bytes_unref(phone->certificate);
  phone->certificate = hark_test_issue_device(f->ca, "alice", phone_key, f->now - 3600, 86400);
  g_free(phone->device);
  phone->device = g_strdup(hark_identity_get_fingerprint(phone_key));
  phone->status = HARK_PRESENCE_BUSY;
  g_assert_nonnull(put(f, store, phone, phone_key, "alice", phone->device, NULL, &link_b, &error));
  g_assert_no_error(error);

  /* A stranger gets the public forms of both devices; bob, the laptop's buddy, its full
   * form; the most available status he can see is the laptop's. */
  g_autoptr(HarkPresenceQuery) alice = query("alice", FALSE);
  g_autoptr(GPtrArray) stranger = hark_directory_store_find(store, alice, "carol", 10);
  g_assert_cmpuint(stranger->len, ==, 2);
  for (guint i = 0; i < stranger->len; i++)
    g_assert_true(((HarkPresenceRecord *)stranger->pdata[i])->is_public);
  g_autoptr(GPtrArray) buddy = hark_directory_store_find(store, alice, "BOB", 10);
  g_assert_cmpuint(buddy->len, ==, 2);
  g_autoptr(GPtrArray) full = g_ptr_array_new();
  for (guint i = 0; i < buddy->len; i++)
    if (!((HarkPresenceRecord *)buddy->pdata[i])->is_public)
      g_ptr_array_add(full, buddy->pdata[i]);
  g_assert_cmpuint(full->len, ==, 1);
  g_assert_cmpint(hark_presence_most_available(full), ==, HARK_PRESENCE_AWAY);

  g_autoptr(HarkPresenceQuery) prefix = query("ali", TRUE);
  g_autoptr(GPtrArray) by_prefix = hark_directory_store_find(store, prefix, NULL, 10);
  g_assert_cmpuint(by_prefix->len, ==, 2);
  g_autoptr(GPtrArray) capped = hark_directory_store_find(store, prefix, NULL, 1);
  g_assert_cmpuint(capped->len, ==, 1);

  /* The laptop's link closes: only the phone is left; 72 h on, nothing. */
  g_assert_cmpuint(hark_directory_store_forget_from(store, &link_a), ==, 1);
  g_autoptr(GPtrArray) left = hark_directory_store_find(store, alice, NULL, 10);
  g_assert_cmpuint(left->len, ==, 1);
  g_assert_cmpuint(hark_directory_store_expire(store, f->now + HARK_PRESENCE_LIFETIME_S), ==, 0);
  g_assert_cmpuint(hark_directory_store_expire(store, f->now + HARK_PRESENCE_LIFETIME_S + 1), ==,
                   1);
  g_assert_cmpuint(hark_directory_store_size(store), ==, 0);
  hark_directory_store_free(store);
}

static void
add(const char *path, void (*test)(Fixture *, gconstpointer))
{
  g_test_add(path, Fixture, NULL, set_up, test, tear_down);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  add("/presence/round-trip", test_round_trip);
  add("/presence/forged", test_forged);
  add("/presence/other-user", test_other_user);
  add("/presence/other-ca", test_other_ca);
  add("/presence/expired", test_expired);
  add("/presence/future", test_future);
  add("/presence/malformed", test_malformed);
  add("/presence/most-available", test_most_available);
  add("/directory-store/refusals", test_store_refusals);
  add("/directory-store/find", test_store_find);
  return g_test_run();
}
