/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-message-envelope.c: end-to-end message envelopes (core/message/): an envelope
 * sealed for three devices opens on each of them and on no other; every envelope a hostile
 * node, stranger or user could make up is refused with the error that says why: a flipped
 * bit, a body or wrapped key taken from another envelope, a sender field that lies, a
 * certificate of another CA, an expired one, oversized fields. Also the Ed25519 -> X25519
 * map against libsodium's published vector, the inner kinds and the replay guard. */
#include "test-files.h"
#include "test-nodes.h"

#include "message-crypto.h"
#include "message-envelope.h"
#include "message-group.h"

#include <hark/certificate.h>
#include <hark/identity.h>

#include <string.h>

#include <openssl/evp.h>

#define DOMAIN "HARK-MSG-1\n"

typedef struct {
  char *dir;
  HarkCa *ca;
  HarkCa *other_ca;
  const char *ca_pem;
  HarkIdentity *alice; /* the sender */
  HarkIdentity *alice2; /* her other device */
  HarkIdentity *bob1, *bob2, *bob3; /* bob3 is never a recipient */
  HarkIdentity *carol;
  GBytes *alice_cert, *alice2_cert, *bob1_cert, *bob2_cert, *bob3_cert, *carol_cert;
  gint64 now;
} Fixture;

static void
set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("hark-message-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *ca_dir = g_build_filename(f->dir, "ca", NULL);
  g_autofree char *other_dir = g_build_filename(f->dir, "other", NULL);
  f->ca = hark_ca_load_or_create(ca_dir, "test CA", &error);
  g_assert_no_error(error);
  f->other_ca = hark_ca_load_or_create(other_dir, "test CA", &error);
  g_assert_no_error(error);
  f->ca_pem = hark_ca_get_certificate_pem(f->ca);
  f->now = 1900000000;
  f->alice = hark_test_identity_new(f->dir, "alice.pem");
  f->alice2 = hark_test_identity_new(f->dir, "alice2.pem");
  f->bob1 = hark_test_identity_new(f->dir, "bob1.pem");
  f->bob2 = hark_test_identity_new(f->dir, "bob2.pem");
  f->bob3 = hark_test_identity_new(f->dir, "bob3.pem");
  f->carol = hark_test_identity_new(f->dir, "carol.pem");
  f->alice_cert = hark_test_issue_device_der(f->ca, "Alice", f->alice, f->now - 3600, 86400);
  f->alice2_cert = hark_test_issue_device_der(f->ca, "alice", f->alice2, f->now - 3600, 86400);
  f->bob1_cert = hark_test_issue_device_der(f->ca, "bob", f->bob1, f->now - 3600, 86400);
  f->bob2_cert = hark_test_issue_device_der(f->ca, "bob", f->bob2, f->now - 3600, 86400);
  f->bob3_cert = hark_test_issue_device_der(f->ca, "bob", f->bob3, f->now - 3600, 86400);
  f->carol_cert = hark_test_issue_device_der(f->ca, "carol", f->carol, f->now - 3600, 86400);
}

static void
tear_down(Fixture *f, gconstpointer data)
{
  hark_ca_free(f->ca);
  hark_ca_free(f->other_ca);
  HarkIdentity *keys[] = { f->alice, f->alice2, f->bob1, f->bob2, f->bob3, f->carol };
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
    hark_identity_free(keys[i]);
  GBytes *certs[] = { f->alice_cert, f->alice2_cert, f->bob1_cert,
                      f->bob2_cert,  f->bob3_cert,   f->carol_cert };
  for (guint i = 0; i < G_N_ELEMENTS(certs); i++)
    g_bytes_unref(certs[i]);
  hark_test_remove_tree(f->dir);
  g_free(f->dir);
}

/* alice's params for a text to bob, sealed at f->now for recipients. */
static HarkMessageSealParams
alice_params(Fixture *f, GVariant *inner, const HarkMessageRecipient *recipients, guint n)
{
  return (HarkMessageSealParams){
    .identity = f->alice,
    .certificate = f->alice_cert,
    .sender = "Alice",
    .ca_pem = f->ca_pem,
    .to = "bob",
    .sequence = 3,
    .counter = 42,
    .time = f->now,
    .inner = inner,
    .recipients = recipients,
    .n_recipients = n,
  };
}

static HarkMessageRecipient
recipient(HarkIdentity *key, GBytes *cert)
{
  return (HarkMessageRecipient){ hark_identity_get_fingerprint(key), cert };
}

/* A text from alice to bob1, bob2 and alice2. */
static GBytes *
seal_text(Fixture *f, const char *text)
{
  HarkMessageRecipient r[] = { recipient(f->bob1, f->bob1_cert), recipient(f->bob2, f->bob2_cert),
                               recipient(f->alice2, f->alice2_cert) };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) inner = g_variant_ref_sink(hark_message_text_new(text, &error));
  g_assert_no_error(error);
  HarkMessageSealParams p = alice_params(f, inner, r, G_N_ELEMENTS(r));
  GBytes *bytes = hark_message_seal(&p, &error);
  g_assert_no_error(error);
  return bytes;
}

/* Parsed and verified at f->now, or NULL with the error. */
static HarkEnvelope *
receive(Fixture *f, GBytes *bytes, GError **error)
{
  g_autoptr(HarkEnvelope) e = hark_envelope_parse(bytes, error);
  if (e == NULL || !hark_envelope_verify(e, f->ca_pem, f->now, error))
    return NULL;
  return g_steal_pointer(&e);
}

static char *
open_text(HarkEnvelope *e, HarkIdentity *key, GError **error)
{
  g_autoptr(GVariant) inner = hark_envelope_open(e, key, error);
  if (inner == NULL)
    return NULL;
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(inner, error);
  g_assert_nonnull(parsed);
  g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_TEXT);
  return g_strdup(parsed->text);
}

/* ---- round trip ------------------------------------------------------------------------ */

static void
test_round_trip(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) bytes = seal_text(f, "hello, bob ✓");
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkEnvelope) e = receive(f, bytes, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(e->sender, ==, "Alice");
  g_assert_cmpstr(e->sender_device, ==, hark_identity_get_fingerprint(f->alice));
  g_assert_cmpstr(e->to, ==, "bob");
  g_assert_cmpuint(e->sequence, ==, 3);
  g_assert_cmpuint(e->counter, ==, 42);
  g_assert_cmpint(e->time, ==, f->now);
  g_assert_cmpuint(e->recipients->len, ==, 3);
  HarkIdentity *devices[] = { f->bob1, f->bob2, f->alice2 };
  for (guint i = 0; i < G_N_ELEMENTS(devices); i++) {
    g_autofree char *text = open_text(e, devices[i], &error);
    g_assert_no_error(error);
    g_assert_cmpstr(text, ==, "hello, bob ✓");
  }
  /* A fourth device of bob's and the sending device itself hold no wrapped key. */
  HarkIdentity *others[] = { f->bob3, f->alice };
  for (guint i = 0; i < G_N_ELEMENTS(others); i++) {
    g_autoptr(GVariant) inner = hark_envelope_open(e, others[i], &error);
    g_assert_null(inner);
    g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_NOT_FOR_US);
    g_clear_error(&error);
  }
  /* Two seals of the same text differ everywhere it matters: id, keys, body. */
  g_autoptr(GBytes) again = seal_text(f, "hello, bob ✓");
  g_autoptr(HarkEnvelope) e2 = receive(f, again, &error);
  g_assert_no_error(error);
  g_assert_true(memcmp(e->id, e2->id, sizeof e->id) != 0);
  g_assert_false(g_bytes_equal(e->body, e2->body));
}

#define DEV64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A history batch as the answering device builds it: sealed, opened and parsed back
 * field for field; the request has no fields; a batch is 1-256 messages. */
static void
test_history_kinds(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  HarkMessagePast past[2] = {
    { .conversation = "u:bob", .sender = "Bob", .sender_device = DEV64, .sequence = 7,
      .time = 1700000000, .text = "hello ✓" },
    { .conversation = "g:0123456789abcdef0123456789abcdef", .sender = "alice",
      .sender_device = DEV64, .sequence = 1, .time = 1700000001, .text = "" },
  };
  memset(past[0].id, 0x31, HARK_MESSAGE_ID_SIZE);
  memset(past[1].id, 0x32, HARK_MESSAGE_ID_SIZE);
  HarkMessagePast *list[] = { &past[0], &past[1] };
  HarkMessageRecipient r[] = { recipient(f->alice2, f->alice2_cert) };
  GVariant *kinds[] = { hark_message_past_new(list, 2, &error), hark_message_past_request_new() };
  g_assert_no_error(error);
  for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
    g_autoptr(GVariant) inner = g_variant_ref_sink(kinds[k]);
    HarkMessageSealParams p = alice_params(f, inner, r, 1);
    p.to = "alice";
    g_autoptr(GBytes) bytes = hark_message_seal(&p, &error);
    g_assert_no_error(error);
    g_autoptr(HarkEnvelope) e = receive(f, bytes, &error);
    g_assert_no_error(error);
    g_autoptr(GVariant) opened = hark_envelope_open(e, f->alice2, &error);
    g_assert_no_error(error);
    g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(opened, &error);
    g_assert_no_error(error);
    if (k == 1) {
      g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_HISTORY_REQUEST);
      continue;
    }
    g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_HISTORY);
    g_assert_cmpuint(parsed->past->len, ==, 2);
    for (guint i = 0; i < 2; i++) {
      const HarkMessagePast *got = parsed->past->pdata[i];
      g_assert_cmpmem(got->id, HARK_MESSAGE_ID_SIZE, past[i].id, HARK_MESSAGE_ID_SIZE);
      g_assert_cmpstr(got->conversation, ==, past[i].conversation);
      g_assert_cmpstr(got->sender, ==, past[i].sender);
      g_assert_cmpstr(got->sender_device, ==, past[i].sender_device);
      g_assert_cmpuint(got->sequence, ==, past[i].sequence);
      g_assert_cmpint(got->time, ==, past[i].time);
      g_assert_cmpstr(got->text, ==, past[i].text);
    }
  }
  /* The builder keeps the limits too: no empty batch, none over 256, no bad field. */
  g_assert_null(hark_message_past_new(list, 0, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_autofree HarkMessagePast **many = g_new(HarkMessagePast *, HARK_MESSAGE_MAX_PAST + 1);
  for (guint i = 0; i <= HARK_MESSAGE_MAX_PAST; i++)
    many[i] = &past[0];
  g_assert_null(hark_message_past_new(many, HARK_MESSAGE_MAX_PAST + 1, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_TOO_LARGE);
  g_clear_error(&error);
  past[1].conversation = "u:Alice";
  g_assert_null(hark_message_past_new(list, 2, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  g_clear_error(&error);
  /* A full batch of the longest texts stays within the plaintext limit: the answering
   * device closes a batch before HARK_MESSAGE_PAST_BATCH_BYTES. */
  g_autofree char *longest = g_strnfill(HARK_MESSAGE_MAX_TEXT, 'x');
  past[0].text = longest;
  g_assert_cmpuint(HARK_MESSAGE_PAST_BATCH_BYTES + hark_message_past_size(&past[0]) + 64, <,
                   HARK_MESSAGE_MAX_PLAINTEXT);
}

#define GROUP_ID "0123456789abcdef0123456789abcdef"

/* A group as large as the rules allow: 100 members of 32 characters, a 64-byte name. */
static HarkMessageGroup *
largest_group(void)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < HARK_MESSAGE_GROUP_MAX_MEMBERS; i++)
    g_ptr_array_add(names, g_strdup_printf("member%026u", i));
  g_ptr_array_add(names, NULL);
  g_autofree char *name = g_strnfill(HARK_MESSAGE_GROUP_MAX_NAME, 'n');
  return hark_message_group_new(GROUP_ID, name, "member00000000000000000000000000", 7,
                                (const char *const *)names->pdata);
}

/* A history batch of a group's conversation carries the group's state: it parses back
 * whole; a batch with a state holds that group's messages only (built or parsed); a bad
 * state makes the batch malformed; the largest state and a full batch of the longest
 * texts stay within the plaintext limit. */
static void
test_history_group(Fixture *f, gconstpointer data)
{
  (void)f;
  (void)data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageGroup) group = largest_group();
  g_autofree char *longest = g_strnfill(HARK_MESSAGE_MAX_TEXT, 'x');
  HarkMessagePast past[2] = {
    { .conversation = "g:" GROUP_ID,
      .sender = "Member00000000000000000000000001",
      .sender_device = DEV64,
      .sequence = 3,
      .time = 1700000000,
      .text = longest },
    { .conversation = "u:bob",
      .sender = "bob",
      .sender_device = DEV64,
      .sequence = 1,
      .time = 1700000001,
      .text = "hi" },
  };
  memset(past[0].id, 0x41, HARK_MESSAGE_ID_SIZE);
  memset(past[1].id, 0x42, HARK_MESSAGE_ID_SIZE);
  HarkMessagePast *list[] = { &past[0], &past[1] };

  g_autoptr(GVariant) batch =
    g_variant_ref_sink(hark_message_past_group_new(list, 1, group, &error));
  g_assert_no_error(error);
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(batch, &error);
  g_assert_no_error(error);
  g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_HISTORY);
  g_assert_cmpuint(parsed->past->len, ==, 1);
  g_assert_nonnull(parsed->group_state);
  g_assert_cmpstr(parsed->group_state->id, ==, GROUP_ID);
  g_assert_cmpstr(parsed->group_state->name, ==, group->name);
  g_assert_cmpstr(parsed->group_state->admin, ==, group->admin);
  g_assert_cmpuint(parsed->group_state->version, ==, 7);
  g_assert_cmpuint(parsed->group_state->members->len, ==, HARK_MESSAGE_GROUP_MAX_MEMBERS);
  /* Without a state, as before. */
  g_autoptr(GVariant) plain = g_variant_ref_sink(hark_message_past_new(list, 2, &error));
  g_autoptr(HarkMessageInner) plain_parsed = hark_message_inner_parse(plain, &error);
  g_assert_no_error(error);
  g_assert_null(plain_parsed->group_state);

  /* The largest state with a batch closed at its limit fits the plaintext. */
  g_assert_cmpuint(HARK_MESSAGE_PAST_BATCH_BYTES + g_variant_get_size(batch), <,
                   HARK_MESSAGE_MAX_PLAINTEXT);

  /* With a state, another conversation's message is refused, built or parsed. */
  g_assert_null(hark_message_past_group_new(list, 2, group, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  g_clear_error(&error);
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  g_autoptr(GVariant) plain_fields = g_variant_get_child_value(plain, 1);
  g_autoptr(GVariant) messages =
    g_variant_lookup_value(plain_fields, "messages", G_VARIANT_TYPE("a(ayssstxs)"));
  g_variant_builder_add(&fields, "{sv}", "messages", messages);
  g_variant_builder_add(&fields, "{sv}", "group", hark_message_group_state_new(group));
  g_autoptr(GVariant) mixed = g_variant_ref_sink(g_variant_new("(sa{sv})", "history", &fields));
  g_assert_null(hark_message_inner_parse(mixed, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  g_clear_error(&error);

  /* A state out of the rules' limits (version 0) makes the batch malformed. */
  group->version = 0;
  g_autoptr(GVariant) bad = g_variant_ref_sink(hark_message_past_group_new(list, 1, group, &error));
  g_assert_no_error(error);
  g_assert_null(hark_message_inner_parse(bad, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
}

static void
test_kinds(Fixture *f, gconstpointer data)
{
  guint8 ids[2][HARK_MESSAGE_ID_SIZE];
  memset(ids[0], 0x11, sizeof ids[0]);
  memset(ids[1], 0x22, sizeof ids[1]);
  g_autoptr(GError) error = NULL;
  GVariant *kinds[] = { hark_message_receipt_new((const guint8(*)[16])ids, 2, "read", &error),
                        hark_message_typing_new(TRUE) };
  g_assert_no_error(error);
  HarkMessageRecipient r[] = { recipient(f->bob1, f->bob1_cert) };
  for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
    g_autoptr(GVariant) inner = g_variant_ref_sink(kinds[k]);
    HarkMessageSealParams p = alice_params(f, inner, r, 1);
    g_autoptr(GBytes) bytes = hark_message_seal(&p, &error);
    g_assert_no_error(error);
    g_autoptr(HarkEnvelope) e = receive(f, bytes, &error);
    g_assert_no_error(error);
    g_autoptr(GVariant) opened = hark_envelope_open(e, f->bob1, &error);
    g_assert_no_error(error);
    g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(opened, &error);
    g_assert_no_error(error);
    if (k == 0) {
      g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_RECEIPT);
      g_assert_cmpstr(parsed->state, ==, "read");
      g_assert_cmpuint(parsed->ids->len, ==, 2);
      g_assert_cmpmem(g_bytes_get_data(parsed->ids->pdata[1], NULL), 16, ids[1], 16);
    } else {
      g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_TYPING);
      g_assert_true(parsed->on);
    }
  }
  /* A newer sender's kind is passed on as OTHER, not refused. */
  g_autoptr(GVariant) other = g_variant_ref_sink(g_variant_new_parsed("('poll', @a{sv} {})"));
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(other, &error);
  g_assert_no_error(error);
  g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_OTHER);
  /* A known kind without its fields, or with the wrong type, is refused. */
  const char *bad[] = { "('text', @a{sv} {})",
                        "('text', {'text': <42>})",
                        "('receipt', {'ids': <@aay []>, 'state': <'read'>})",
                        "('receipt', {'ids': <[b'short']>, 'state': <'read'>})",
                        "('receipt', {'ids': <[b'0123456789abcdef']>, 'state': <'seen'>})",
                        "('typing', {'on': <'yes'>})",
                        "('history', @a{sv} {})",
                        "('history', {'messages': <@a(ayssstxs) []>})",
                        /* an id of 5 bytes; a conversation that is not u:USER or g:HEX; a
                         * user name that is not canonical; a device that is not 64 hex;
                         * sequence 0; a time before 1970 */
                        "('history', {'messages': <[(b'short', 'u:bob', 'bob', '" DEV64
                        "', uint64 1, int64 5, 'hi')]>})",
                        "('history', {'messages': <[(b'0123456789abcdef', 'bob', 'bob', '" DEV64
                        "', uint64 1, int64 5, 'hi')]>})",
                        "('history', {'messages': <[(b'0123456789abcdef', 'u:Bob', 'bob', '" DEV64
                        "', uint64 1, int64 5, 'hi')]>})",
                        "('history', {'messages': <[(b'0123456789abcdef', 'u:bob', 'bob', 'ab',"
                        " uint64 1, int64 5, 'hi')]>})",
                        "('history', {'messages': <[(b'0123456789abcdef', 'u:bob', 'bob', '" DEV64
                        "', uint64 0, int64 5, 'hi')]>})",
                        "('history', {'messages': <[(b'0123456789abcdef', 'u:bob', 'bob', '" DEV64
                        "', uint64 1, int64 -5, 'hi')]>})",
                        "('group', @a{sv} {})",
                        "('signal', @a{sv} {})",
                        "('signal', {'kind': <'call'>})",
                        "('signal', {'kind': <'Call'>, 'body': <@a{sv} {}>})",
                        "('signal', {'kind': <'call'>, 'body': <'invite'>})",
                        "('Text!', @a{sv} {})" };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(bad[i]));
    g_autoptr(HarkMessageInner) refused = hark_message_inner_parse(v, &error);
    g_assert_null(refused);
    g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
    g_clear_error(&error);
  }
}

/* A signal carries its layer's kind and a{sv} body, bounded in size both ways. */
static void
test_signal_kind(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) signal = g_variant_ref_sink(
    hark_message_signal_new("call", g_variant_new_parsed("{'seq': <@u 7>}"), &error));
  g_assert_no_error(error);
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(signal, &error);
  g_assert_no_error(error);
  g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_SIGNAL);
  g_assert_cmpstr(parsed->signal_kind, ==, "call");
  guint32 seq = 0;
  g_assert_true(g_variant_lookup(parsed->signal_body, "seq", "u", &seq));
  g_assert_cmpuint(seq, ==, 7);
  g_assert_null(hark_message_signal_new("no_underscores", g_variant_new_parsed("@a{sv} {}"), &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  g_clear_error(&error);
  /* One byte over the body's limit, built and received. */
  g_autofree char *big = g_malloc0(HARK_MESSAGE_MAX_SIGNAL_BODY + 1);
  memset(big, 'x', HARK_MESSAGE_MAX_SIGNAL_BODY);
  GVariant *body = g_variant_new_parsed("{'pad': <%s>}", big);
  g_assert_null(hark_message_signal_new("call", body, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_TOO_LARGE);
  g_clear_error(&error);
  g_autoptr(GVariant) large = g_variant_ref_sink(g_variant_new_parsed(
    "('signal', {'kind': <'call'>, 'body': <{'pad': <%s>}>})", big));
  g_autoptr(HarkMessageInner) refused = hark_message_inner_parse(large, &error);
  g_assert_null(refused);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_TOO_LARGE);
}

/* ---- what others could make up --------------------------------------------------------- */

static gboolean
is_refusal(const GError *error)
{
  return error != NULL && error->domain == HARK_MESSAGE_ERROR &&
         (error->code == HARK_MESSAGE_ERROR_MALFORMED ||
          error->code == HARK_MESSAGE_ERROR_TOO_LARGE || error->code == HARK_MESSAGE_ERROR_FORGED ||
          error->code == HARK_MESSAGE_ERROR_FOREIGN || error->code == HARK_MESSAGE_ERROR_EXPIRED);
}

/* One bit flipped in every byte (a different bit each time) of the envelope: payload,
 * certificate, body, recipients, signature. Nothing may verify. */
static void
test_bit_flips(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) bytes = seal_text(f, "flip me");
  gsize size = 0;
  const guint8 *original = g_bytes_get_data(bytes, &size);
  guint counts[HARK_MESSAGE_ERROR_CRYPTO + 1] = { 0 };
  for (gsize i = 0; i < size; i++) {
    guint8 *copy = g_memdup2(original, size);
    copy[i] ^= (guint8)(1u << (i % 8));
    g_autoptr(GBytes) flipped = g_bytes_new_take(copy, size);
    g_autoptr(GError) error = NULL;
    g_autoptr(HarkEnvelope) e = receive(f, flipped, &error);
    if (e != NULL)
      g_error("a flipped bit at byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " verified", i, size);
    g_assert_true(is_refusal(error));
    counts[error->code]++;
  }
  /* Each layer of checks caught some: the form, the certificate, the signature. */
  g_assert_cmpuint(counts[HARK_MESSAGE_ERROR_MALFORMED], >, 0);
  g_assert_cmpuint(counts[HARK_MESSAGE_ERROR_FOREIGN], >, 0);
  g_assert_cmpuint(counts[HARK_MESSAGE_ERROR_FORGED], >, size / 4);
}

/* The envelope's payload as a value, to make a hostile one from. */
static GVariant *
payload_of(GBytes *bytes)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkEnvelope) e = hark_envelope_parse(bytes, &error);
  g_assert_no_error(error);
  return g_variant_ref_sink(
    g_variant_new_from_bytes(G_VARIANT_TYPE(HARK_MESSAGE_PAYLOAD_TYPE), e->payload, TRUE));
}

/* payload, signed by key: what a sender (or a thief of its key) can make. */
static GBytes *
resign(GVariant *payload, HarkIdentity *key)
{
  g_autoptr(GVariant) normal = g_variant_get_normal_form(payload);
  GByteArray *data = g_byte_array_new();
  g_byte_array_append(data, (const guint8 *)DOMAIN, strlen(DOMAIN));
  g_byte_array_append(data, g_variant_get_data(normal), g_variant_get_size(normal));
  g_autoptr(GBytes) signed_data = g_byte_array_free_to_bytes(data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) signature = hark_identity_sign(key, signed_data, &error);
  g_assert_no_error(error);
  g_autoptr(GVariant) outer = g_variant_ref_sink(g_variant_new(
    "(@ay@ay)",
    g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, g_variant_get_data(normal),
                              g_variant_get_size(normal), 1),
    g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, g_bytes_get_data(signature, NULL), 64, 1)));
  return g_variant_get_data_as_bytes(outer);
}

/* payload with child index replaced by value. */
static GVariant *
with_child(GVariant *payload, gsize index, GVariant *value)
{
  gsize n = g_variant_n_children(payload);
  GVariant **children = g_new(GVariant *, n);
  for (gsize i = 0; i < n; i++)
    children[i] = i == index ? value : g_variant_get_child_value(payload, i);
  GVariant *tuple = g_variant_ref_sink(g_variant_new_tuple(children, n));
  for (gsize i = 0; i < n; i++)
    if (i != index)
      g_variant_unref(children[i]);
  g_free(children);
  return tuple;
}

enum {
  P_ID,
  P_SENDER,
  P_DEVICE,
  P_CERT,
  P_TO,
  P_SEQ,
  P_COUNTER,
  P_TIME,
  P_BODY,
  P_RECIPIENTS
};

/* The body, or the recipients' wrapped keys, of one envelope in another: refused on the
 * wire (the signature), and still undecryptable when the sender re-signs the mix (the id
 * is in the body's AAD and in every wrap key's derivation). */
static void
test_swapped_parts(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) a = seal_text(f, "first");
  g_autoptr(GBytes) b = seal_text(f, "second");
  g_autoptr(GVariant) pa = payload_of(a);
  g_autoptr(GVariant) pb = payload_of(b);
  const gsize parts[] = { P_BODY, P_RECIPIENTS };
  for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
    g_autoptr(GVariant) mixed = with_child(pa, parts[i], g_variant_get_child_value(pb, parts[i]));
    g_autoptr(GError) error = NULL;
    /* Spliced in by a node: the old signature no longer fits. */
    g_autoptr(GVariant) outer_a = g_variant_ref_sink(
      g_variant_new_from_bytes(G_VARIANT_TYPE(HARK_MESSAGE_SIGNED_TYPE), a, TRUE));
    g_autoptr(GVariant) sig = g_variant_get_child_value(outer_a, 1);
    g_autoptr(GVariant) spliced_v = g_variant_ref_sink(
      g_variant_new("(@ay@ay)",
                    g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, g_variant_get_data(mixed),
                                              g_variant_get_size(mixed), 1),
                    sig));
    g_autoptr(GBytes) spliced = g_variant_get_data_as_bytes(spliced_v);
    g_autoptr(HarkEnvelope) refused = receive(f, spliced, &error);
    g_assert_null(refused);
    g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_FORGED);
    g_clear_error(&error);
    /* Re-signed by the sender: it verifies, but no recipient can open it. */
    g_autoptr(GBytes) resigned = resign(mixed, f->alice);
    g_autoptr(HarkEnvelope) e = receive(f, resigned, &error);
    g_assert_no_error(error);
    g_autoptr(GVariant) inner = hark_envelope_open(e, f->bob1, &error);
    g_assert_null(inner);
    g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_UNDECRYPTABLE);
    /* Another envelope's wrapped keys do not even unwrap here: the id is in their keys. */
    g_assert_nonnull(strstr(error->message, parts[i] == P_BODY ? "body" : "unwrap"));
  }
}

/* A wrapped key or a body damaged by its own sender: a clear error, not garbage. */
static void
test_undecryptable(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) bytes = seal_text(f, "damaged");
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkEnvelope) e = receive(f, bytes, &error);
  g_assert_no_error(error);
  HarkEnvelopeRecipient *r = e->recipients->pdata[0];
  r->wrapped[5] ^= 1;
  g_autoptr(GVariant) none = hark_envelope_open(e, f->bob1, &error);
  g_assert_null(none);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_UNDECRYPTABLE);
  g_assert_nonnull(strstr(error->message, "unwrap"));
  g_clear_error(&error);
  r->wrapped[5] ^= 1;
  gsize size = 0;
  guint8 *body = g_bytes_unref_to_data(g_steal_pointer(&e->body), &size);
  body[size - 1] ^= 0x80;
  e->body = g_bytes_new_take(body, size);
  g_autoptr(GVariant) none2 = hark_envelope_open(e, f->bob1, &error);
  g_assert_null(none2);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_UNDECRYPTABLE);
  g_assert_nonnull(strstr(error->message, "body"));
}

/* The sender field names another user than the certificate, or another device; or
 * mallory signs in alice's name with her own certificate. */
static void
test_sender_lies(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) bytes = seal_text(f, "it is me, bob");
  g_autoptr(GVariant) payload = payload_of(bytes);
  g_autoptr(GError) error = NULL;
  struct {
    gsize index;
    GVariant *value;
    HarkIdentity *key;
  } lies[] = {
    { P_SENDER, g_variant_new_string("bob"), f->alice },
    { P_DEVICE, g_variant_new_string(hark_identity_get_fingerprint(f->alice2)), f->alice },
    { P_CERT,
      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, g_bytes_get_data(f->carol_cert, NULL),
                                g_bytes_get_size(f->carol_cert), 1),
      f->carol },
  };
  for (guint i = 0; i < G_N_ELEMENTS(lies); i++) {
    g_autoptr(GVariant) lie = with_child(payload, lies[i].index, lies[i].value);
    g_autoptr(GBytes) resigned = resign(lie, lies[i].key);
    g_autoptr(HarkEnvelope) e = receive(f, resigned, &error);
    g_assert_null(e);
    g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_FOREIGN);
    g_clear_error(&error);
  }
  /* Signed by another device key than the certified one. */
  g_autoptr(GBytes) stolen_name = resign(payload, f->alice2);
  g_autoptr(HarkEnvelope) e = receive(f, stolen_name, &error);
  g_assert_null(e);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_FORGED);
}

static void
test_other_ca(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) cert =
    hark_test_issue_device_der(f->other_ca, "Alice", f->alice, f->now - 3600, 86400);
  g_autoptr(GBytes) bob_cert =
    hark_test_issue_device_der(f->other_ca, "bob", f->bob1, f->now - 3600, 86400);
  HarkMessageRecipient r[] = { recipient(f->bob1, bob_cert) };
  g_autoptr(GVariant) inner = g_variant_ref_sink(hark_message_typing_new(FALSE));
  HarkMessageSealParams p = alice_params(f, inner, r, 1);
  p.certificate = cert;
  p.ca_pem = hark_ca_get_certificate_pem(f->other_ca);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = hark_message_seal(&p, &error);
  g_assert_no_error(error);
  g_autoptr(HarkEnvelope) e = receive(f, bytes, &error);
  g_assert_null(e);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_FOREIGN);
  g_clear_error(&error);
  /* And the sender will not seal for a device of another CA. */
  p.ca_pem = f->ca_pem;
  p.certificate = f->alice_cert;
  g_autoptr(GBytes) refused = hark_message_seal(&p, &error);
  g_assert_null(refused);
  g_assert_error(error, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_UNTRUSTED);
}

static void
test_times(Fixture *f, gconstpointer data)
{
  HarkMessageRecipient r[] = { recipient(f->bob1, f->bob1_cert) };
  g_autoptr(GVariant) inner = g_variant_ref_sink(hark_message_typing_new(TRUE));
  HarkMessageSealParams p = alice_params(f, inner, r, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = hark_message_seal(&p, &error);
  g_assert_no_error(error);
  g_autoptr(HarkEnvelope) e = hark_envelope_parse(bytes, &error);
  g_assert_no_error(error);
  /* Held for 30 days: still good; a year later, or dated 10 minutes ahead: not. */
  g_assert_true(hark_envelope_verify(e, f->ca_pem, f->now + 30 * 86400, &error));
  gint64 wrong[] = { f->now + 365 * 86400, f->now - 600 };
  for (guint i = 0; i < G_N_ELEMENTS(wrong); i++) {
    g_assert_false(hark_envelope_verify(e, f->ca_pem, wrong[i], &error));
    g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_EXPIRED);
    g_assert_false(e->verified);
    g_clear_error(&error);
  }
  /* Backdated by a stolen key to a time its certificate did not cover. */
  g_autoptr(GVariant) payload = payload_of(bytes);
  g_autoptr(GVariant) backdated = with_child(payload, P_TIME, g_variant_new_int64(f->now - 7200));
  g_autoptr(GBytes) resigned = resign(backdated, f->alice);
  g_autoptr(HarkEnvelope) old = receive(f, resigned, &error);
  g_assert_null(old);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_EXPIRED);
}

/* ---- limits ---------------------------------------------------------------------------- */

static void
expect_parse_error(GBytes *bytes, int code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkEnvelope) e = hark_envelope_parse(bytes, &error);
  g_assert_null(e);
  g_assert_error(error, HARK_MESSAGE_ERROR, code);
}

static GVariant *
recipients_value(guint n, const char *device_of_all)
{
  GVariantBuilder list;
  g_variant_builder_init(&list, G_VARIANT_TYPE("a(sayay)"));
  guint8 key[32] = { 9 }, wrapped[48] = { 0 };
  for (guint i = 0; i < n; i++) {
    g_autofree char *device =
      device_of_all != NULL ? g_strdup(device_of_all) : g_strdup_printf("%064x", i + 1);
    g_variant_builder_add(&list, "(s@ay@ay)", device,
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, key, 32, 1),
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, wrapped, 48, 1));
  }
  return g_variant_builder_end(&list);
}

static void
test_limits(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  /* Text: 8192 bytes is the limit, and it must be UTF-8. */
  g_autofree char *longest = g_strnfill(HARK_MESSAGE_MAX_TEXT, 'a');
  g_autoptr(GVariant) ok = g_variant_ref_sink(hark_message_text_new(longest, &error));
  g_assert_no_error(error);
  g_autofree char *too_long = g_strnfill(HARK_MESSAGE_MAX_TEXT + 1, 'a');
  g_assert_null(hark_message_text_new(too_long, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_TOO_LARGE);
  g_clear_error(&error);
  g_assert_null(hark_message_text_new("bad \xff byte", &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  g_clear_error(&error);
  guint8 ids[HARK_MESSAGE_MAX_RECEIPT_IDS + 1][16] = { { 0 } };
  g_assert_null(
    hark_message_receipt_new((const guint8(*)[16])ids, G_N_ELEMENTS(ids), "read", &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_TOO_LARGE);
  g_clear_error(&error);

  /* Over 256 KiB, not even looked at. */
  g_autoptr(GBytes) huge =
    g_bytes_new_take(g_malloc0(HARK_MESSAGE_MAX_ENVELOPE + 1), HARK_MESSAGE_MAX_ENVELOPE + 1);
  expect_parse_error(huge, HARK_MESSAGE_ERROR_TOO_LARGE);
  g_autoptr(GBytes) nothing = g_bytes_new_static("", 0);
  expect_parse_error(nothing, HARK_MESSAGE_ERROR_MALFORMED);

  /* Hand-made payloads (parse reads no signature): 1025 recipients, one twice, none; a
   * bad device id; a 4097-byte certificate, a PEM one; a bad 'to'; counter 0; a short id
   * or body. */
  g_autoptr(GBytes) sealed = seal_text(f, "limits");
  g_autoptr(GVariant) payload = payload_of(sealed);
  const char *bob1 = hark_identity_get_fingerprint(f->bob1);
  guint8 big_cert[HARK_MESSAGE_MAX_CERTIFICATE + 1] = { 0x30 };
  struct {
    gsize index;
    GVariant *value;
    int code;
  } cases[] = {
    { P_RECIPIENTS, recipients_value(HARK_MESSAGE_MAX_RECIPIENTS + 1, NULL),
      HARK_MESSAGE_ERROR_TOO_LARGE },
    { P_RECIPIENTS, recipients_value(2, bob1), HARK_MESSAGE_ERROR_MALFORMED },
    { P_RECIPIENTS, recipients_value(0, NULL), HARK_MESSAGE_ERROR_MALFORMED },
    { P_RECIPIENTS, recipients_value(1, "ABC"), HARK_MESSAGE_ERROR_MALFORMED },
    { P_CERT, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, big_cert, sizeof big_cert, 1),
      HARK_MESSAGE_ERROR_MALFORMED },
    { P_CERT, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "-----BEGIN CERTIFICATE", 22, 1),
      HARK_MESSAGE_ERROR_MALFORMED },
    { P_TO, g_variant_new_string("#abc"), HARK_MESSAGE_ERROR_MALFORMED },
    { P_TO, g_variant_new_string("bob\n"), HARK_MESSAGE_ERROR_MALFORMED },
    { P_COUNTER, g_variant_new_uint64(0), HARK_MESSAGE_ERROR_MALFORMED },
    { P_ID, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "short", 5, 1),
      HARK_MESSAGE_ERROR_MALFORMED },
    { P_BODY, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "tiny", 4, 1),
      HARK_MESSAGE_ERROR_MALFORMED },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GVariant) changed = with_child(payload, cases[i].index, cases[i].value);
    g_autoptr(GBytes) resigned = resign(changed, f->alice);
    expect_parse_error(resigned, cases[i].code);
  }
  /* A group id is '#' and 32 lower-case hex digits. */
  g_autoptr(GVariant) group =
    with_child(payload, P_TO, g_variant_new_string("#0123456789abcdef0123456789abcdef"));
  g_autoptr(GBytes) group_bytes = resign(group, f->alice);
  g_autoptr(HarkEnvelope) group_e = hark_envelope_parse(group_bytes, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(group_e->to, ==, "#0123456789abcdef0123456789abcdef");

  /* The sealing side: too many recipients; a device of a third user in a one-to-one
   * message; a certificate that is not the named device's. */
  HarkMessageRecipient carol[] = { recipient(f->carol, f->carol_cert) };
  HarkMessageSealParams p = alice_params(f, ok, carol, 1);
  g_assert_null(hark_message_seal(&p, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_FOREIGN);
  g_clear_error(&error);
  HarkMessageRecipient mislabelled[] = { { hark_identity_get_fingerprint(f->bob2), f->bob1_cert } };
  p = alice_params(f, ok, mislabelled, 1);
  g_assert_null(hark_message_seal(&p, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_FOREIGN);
  g_clear_error(&error);
  p = alice_params(f, ok, carol, HARK_MESSAGE_MAX_RECIPIENTS + 1);
  g_assert_null(hark_message_seal(&p, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_TOO_LARGE);
}

/* ---- the key map ----------------------------------------------------------------------- */

static void
unhex(const char *hex, guint8 *out, gsize size)
{
  g_assert_cmpuint(strlen(hex), ==, 2 * size);
  for (gsize i = 0; i < size; i++)
    out[i] = (guint8)(g_ascii_xdigit_value(hex[2 * i]) << 4 | g_ascii_xdigit_value(hex[2 * i + 1]));
}

/* libsodium's test/default/ed25519_convert.c and .exp: the seed's key pair maps to these
 * X25519 keys. */
static void
test_convert_libsodium(void)
{
  guint8 seed[32], expected_pk[32], expected_sk[32], ed_pk[32], x_pk[32], x_sk[32];
  unhex("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee", seed, 32);
  unhex("f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50", expected_pk, 32);
  unhex("8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166", expected_sk, 32);
  EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  g_assert_nonnull(ed);
  size_t length = 32;
  g_assert_cmpint(EVP_PKEY_get_raw_public_key(ed, ed_pk, &length), ==, 1);
  g_assert_true(hark_message_ed25519_pk_to_x25519(ed_pk, x_pk));
  g_assert_cmpmem(x_pk, 32, expected_pk, 32);
  g_assert_true(hark_message_ed25519_seed_to_x25519(seed, x_sk));
  g_assert_cmpmem(x_sk, 32, expected_sk, 32);
  /* The converted private key's own public key is the converted public key. */
  g_autoptr(GError) error = NULL;
  EVP_PKEY *x = hark_message_x25519_from_ed25519(ed, &error);
  g_assert_no_error(error);
  guint8 derived[32];
  length = 32;
  g_assert_cmpint(EVP_PKEY_get_raw_public_key(x, derived, &length), ==, 1);
  g_assert_cmpmem(derived, 32, expected_pk, 32);
  EVP_PKEY_free(x);
  EVP_PKEY_free(ed);
  /* y = 1 (the neutral point) has no u; y >= p is not canonical. */
  guint8 one[32] = { 1 }, big[32];
  memset(big, 0xff, 32);
  big[31] = 0x7f;
  g_assert_false(hark_message_ed25519_pk_to_x25519(one, x_pk));
  g_assert_false(hark_message_ed25519_pk_to_x25519(big, x_pk));
}

/* DH(a, conv(B)) == DH(b, conv(A)) for fresh device keys. */
static void
test_convert_dh_symmetry(void)
{
  for (int round = 0; round < 8; round++) {
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    guint8 a_pk[32], b_pk[32], a_x[32], b_x[32], ab[32], ba[32];
    size_t length = 32;
    g_assert_cmpint(EVP_PKEY_get_raw_public_key(a, a_pk, &length), ==, 1);
    g_assert_cmpint(EVP_PKEY_get_raw_public_key(b, b_pk, &length), ==, 1);
    g_assert_true(hark_message_ed25519_pk_to_x25519(a_pk, a_x));
    g_assert_true(hark_message_ed25519_pk_to_x25519(b_pk, b_x));
    g_autoptr(GError) error = NULL;
    EVP_PKEY *ax = hark_message_x25519_from_ed25519(a, &error);
    EVP_PKEY *bx = hark_message_x25519_from_ed25519(b, &error);
    g_assert_no_error(error);
    g_assert_true(hark_message_x25519_agree(ax, b_x, ab, &error));
    g_assert_true(hark_message_x25519_agree(bx, a_x, ba, &error));
    g_assert_cmpmem(ab, 32, ba, 32);
    EVP_PKEY_free(ax);
    EVP_PKEY_free(bx);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
  }
  /* A low-order peer key (u = 0) gives no agreement. */
  EVP_PKEY *e = hark_message_x25519_generate((guint8[32]){ 0 }, NULL);
  guint8 zero[32] = { 0 }, out[32];
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_message_x25519_agree(e, zero, out, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_UNDECRYPTABLE);
  EVP_PKEY_free(e);
}

/* ---- the replay guard ------------------------------------------------------------------ */

static gboolean
take(HarkMessageReplay *g, guint64 counter)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = hark_message_replay_check_and_mark(g, counter, &error);
  g_assert_true(ok == (error == NULL));
  if (!ok)
    g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_REPLAYED);
  return ok;
}

static void
test_replay(void)
{
  HarkMessageReplay g = { 0 };
  g_assert_true(take(&g, 1));
  g_assert_false(take(&g, 1)); /* duplicate */
  g_assert_true(take(&g, 5));
  g_assert_true(take(&g, 3)); /* out of order, within the window: once */
  g_assert_false(take(&g, 3));
  g_assert_true(take(&g, 2));
  g_assert_true(take(&g, 4));
  g_assert_false(take(&g, 5));
  /* Jump ahead by a bit more than one word, then by most of the window. */
  g_assert_true(take(&g, 70));
  g_assert_false(take(&g, 4));
  g_assert_true(take(&g, 69));
  g_assert_true(take(&g, 1000));
  g_assert_false(take(&g, 70)); /* still remembered across the shift */
  g_assert_true(take(&g, 71));
  g_assert_true(take(&g, 2000));
  /* The window holds 2000 - 1023 .. 2000: one older is too old even if never seen. */
  g_assert_false(take(&g, 2000 - HARK_MESSAGE_REPLAY_WINDOW)); /* too old */
  g_assert_true(take(&g, 2000 - HARK_MESSAGE_REPLAY_WINDOW + 1)); /* the oldest it holds */
  g_assert_false(take(&g, 1000)); /* taken, and now too old anyway */
  /* Counter 0 is never sent. */
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_message_replay_check(&g, 0, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  g_clear_error(&error);

  /* Saved and read back: the same answers. */
  g_autoptr(GBytes) bytes = hark_message_replay_to_bytes(&g);
  g_assert_cmpuint(g_bytes_get_size(bytes), ==, HARK_MESSAGE_REPLAY_BYTES);
  HarkMessageReplay back;
  g_assert_true(hark_message_replay_from_bytes(&back, bytes, &error));
  g_assert_no_error(error);
  g_assert_false(take(&back, 2000));
  g_assert_false(take(&back, 2000 - HARK_MESSAGE_REPLAY_WINDOW + 1));
  g_assert_true(take(&back, 1999));
  g_autoptr(GBytes) short_state = g_bytes_new_static("\1abc", 4);
  g_assert_false(hark_message_replay_from_bytes(&back, short_state, &error));
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, set_up, fn, tear_down)
  ADD("/message/envelope/round-trip", test_round_trip);
  ADD("/message/envelope/kinds", test_kinds);
  ADD("/message/envelope/history-kinds", test_history_kinds);
  ADD("/message/envelope/history-group", test_history_group);
  ADD("/message/envelope/bit-flips", test_bit_flips);
  ADD("/message/envelope/swapped-parts", test_swapped_parts);
  ADD("/message/envelope/undecryptable", test_undecryptable);
  ADD("/message/envelope/sender-lies", test_sender_lies);
  ADD("/message/envelope/other-ca", test_other_ca);
  ADD("/message/envelope/times", test_times);
  ADD("/message/envelope/limits", test_limits);
#undef ADD
  g_test_add_func("/message/convert/libsodium", test_convert_libsodium);
  g_test_add_func("/message/convert/dh-symmetry", test_convert_dh_symmetry);
  g_test_add_func("/message/replay", test_replay);
  g_test_add_func("/message/inner/signal", test_signal_kind);
  return g_test_run();
}
