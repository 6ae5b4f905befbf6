/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-im-sync.c: a new device's first history and typing notes, with real processes.
 * Each case makes its own lab in a process of its own (test-isolate.h): a login server
 * and one super node; alice has a laptop, bob a desk, and alice's phone comes later (or,
 * for typing, from the start, with `messages.typing = false`).
 *
 * What a user would notice: alice's new phone shows her past conversation with bob
 * exactly once, in order, not unread, and bob's device is told nothing by it (no
 * receipts); bob's next message reaches the phone once. A `history` envelope that bob (or
 * anyone but alice) seals for her phone, and a `history-request` he sends it, are refused
 * and counted: he can neither write into her past nor read it. bob's `typing alice`
 * shows on her laptop, not on the phone whose owner turned typing notes off, and a second
 * note within 3 s is not sent. */
#include "harness.h"
#include "lab.h"
#include "test-isolate.h"

#include "message-envelope.h"
#include "message-group.h"

#include "hark/certificate.h"
#include "hark/identity.h"

#include <sqlite3.h>
#include <string.h>

#define OVERLAY_PORT 33038
#define JOIN_MS 15000
#define ARRIVE_MS 10000

typedef struct {
  LabLoginServer *login;
  char *sn_host;
  LabNode *sn;
  LabNode *laptop; /* alice's */
  LabNode *bob;
  LabNode *phone; /* alice's new device */
} SyncLab;

/* ---- the lab -------------------------------------------------------------------------- */

static char *
login_section(SyncLab *lab)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab->login->url,
                         lab->login->ca_path);
}

static JsonObject *
wait_until(LabNode *node, const char *command, LabResultPredicate pred, const char *what)
{
  return lab_wait_command(node, command, pred, NULL, hark_test_timeout(JOIN_MS), what);
}

/* A client attached to the SN, logged in as user (registered first when asked) and
 * published in the directory; messages: more settings. */
static LabNode *
client_start(SyncLab *lab, const char *name, const char *user, gboolean register_first,
             const char *messages)
{
  g_autofree char *config =
    lab_client_config(name, lab->sn_host, OVERLAY_PORT, lab->login, messages);
  return lab_client_start(name, config, user, register_first, hark_test_timeout(JOIN_MS));
}

static void
lab_set_up(SyncLab *lab, gconstpointer data)
{
  const char *phone_messages = data; /* NULL: the phone comes later, in the case */
  lab->sn_host = g_strdup_printf("127.%u.%u.43", (guint)g_random_int_range(1, 255),
                                 (guint)g_random_int_range(0, 255));
  lab->login = lab_login_server_new();
  if (lab->login == NULL)
    return;
  g_autofree char *login = login_section(lab);
  g_autofree char *config =
    g_strdup_printf("node: { name = \"sync-sn\"; supernode = true; };\n"
                    "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                    "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
                    "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                    "  allow_loopback = true; bootstrap = ( ); };\n"
                    "supernode: { min_uptime = 0; max_load = 10000; links = 0; };\n%s",
                    lab->sn_host, OVERLAY_PORT, lab->sn_host, login);
  lab->sn = lab_node_new("sync-sn", config);
  if (!lab_node_start(lab->sn) || !lab_register_and_login(lab->sn, "sync-sn-user"))
    return;
  g_autoptr(JsonObject) super = wait_until(lab->sn, "overlay", lab_overlay_is_super, "serving");
  if (super == NULL)
    return;
  lab->laptop = client_start(lab, "alice-laptop", "alice", TRUE, "");
  if (lab->laptop != NULL)
    lab->bob = client_start(lab, "bob-desk", "bob", TRUE, "");
  if (lab->bob != NULL && phone_messages != NULL)
    lab->phone = client_start(lab, "alice-phone", "alice", FALSE, phone_messages);
}

static void
lab_tear_down(SyncLab *lab, gconstpointer data)
{
  LabNode **nodes[] = { &lab->phone, &lab->bob, &lab->laptop, &lab->sn };
  lab_nodes_kill_free(nodes, G_N_ELEMENTS(nodes));
  g_clear_pointer(&lab->login, lab_login_server_free);
  g_free(lab->sn_host);
}

#define LAB_UP(lab) HARK_REQUIRE((lab)->bob != NULL)

/* ---- asking the nodes ------------------------------------------------------------------- */

static char *
device_id(LabNode *node)
{
  g_autoptr(JsonObject) whoami = lab_call(node, "whoami", NULL);
  return whoami != NULL ? g_strdup(json_object_get_string_member(whoami, "device_id")) : NULL;
}

/* The texts of node's conversation with user, in order, joined with "|" (marks it read). */
static char *
texts_with(LabNode *node, const char *user)
{
  g_autoptr(JsonObject) history = lab_call(node, "history", lab_args("with", user, NULL));
  JsonArray *list = history != NULL ? json_object_get_array_member(history, "messages") : NULL;
  GString *out = g_string_new(NULL);
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++)
    g_string_append_printf(
      out, "%s%s", i > 0 ? "|" : "",
      json_object_get_string_member(json_array_get_object_element(list, i), "text"));
  return g_string_free(out, FALSE);
}

/* A counter of the `messages` command's "device" part; events seen meanwhile go to events
 * (may be NULL). */
static gint64
counter_of(LabNode *node, const char *name, GPtrArray *events)
{
  g_autoptr(JsonObject) messages = lab_ctl_call(node->ctl, "messages", NULL, events);
  JsonObject *device = messages != NULL ? json_object_get_object_member(messages, "device") : NULL;
  return device != NULL ? json_object_get_int_member_with_default(device, name, -1) : -1;
}

/* Until node's counter is at least at_least (ARRIVE_MS at most). */
static gboolean
wait_counter(LabNode *node, const char *name, gint64 at_least, GPtrArray *events)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  gint64 value = -1;
  while ((value = counter_of(node, name, events)) < at_least && g_get_monotonic_time() < until)
    g_usleep(50 * 1000);
  if (value >= at_least)
    return TRUE;
  g_test_fail_printf("%s: %s is %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT " or more", node->name,
                     name, value, at_least);
  hark_test_node_show_logs(node->node);
  return FALSE;
}

/* Until node's conversation with user reads expected (ARRIVE_MS at most). */
static gboolean
wait_texts(LabNode *node, const char *user, const char *expected)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  g_autofree char *texts = NULL;
  do {
    g_free(texts);
    texts = texts_with(node, user);
    if (g_strcmp0(texts, expected) == 0)
      return TRUE;
    g_usleep(50 * 1000);
  } while (g_get_monotonic_time() < until);
  g_test_fail_printf("%s: the conversation with %s reads \"%s\", not \"%s\"", node->name, user,
                     texts, expected);
  hark_test_node_show_logs(node->node);
  return FALSE;
}

/* node's `conversations` entry for the conversation with user (a new reference), or NULL. */
static JsonObject *
conversation_with(LabNode *node, const char *user)
{
  g_autoptr(JsonObject) answer = lab_call(node, "conversations", NULL);
  JsonArray *list = answer != NULL ? json_object_get_array_member(answer, "conversations") : NULL;
  g_autofree char *key = g_strconcat("u:", user, NULL);
  for (guint i = 0; list != NULL && i < json_array_get_length(list); i++) {
    JsonObject *c = json_array_get_object_element(list, i);
    if (g_strcmp0(json_object_get_string_member(c, "conversation"), key) == 0)
      return json_object_ref(c);
  }
  return NULL;
}

static gboolean
send_text(LabNode *node, const char *to, const char *text)
{
  g_autoptr(JsonObject) sent = lab_send_text(node, to, text);
  return sent != NULL;
}

/* ---- a new device ----------------------------------------------------------------------- */

/* alice and bob write on her laptop; her new phone then shows the conversation once, in
 * order, with her own messages as hers, nothing unread, and bob's device hears nothing of
 * it (no receipt from the phone); bob's next message reaches the phone once, shown after
 * the past ones (its sequence is not taken for a gap). */
static void
test_new_device(SyncLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  const char *past[] = { "bob: first (sync-3e1a)", "alice: answer (sync-77c0)",
                         "bob: second (sync-0b5d)" };
  HARK_REQUIRE(send_text(lab->bob, "alice", past[0]));
  HARK_REQUIRE(wait_texts(lab->laptop, "bob", past[0]));
  HARK_REQUIRE(send_text(lab->laptop, "bob", past[1]));
  HARK_REQUIRE(send_text(lab->bob, "alice", past[2]));
  g_autofree char *all = g_strjoin("|", past[0], past[1], past[2], NULL);
  HARK_REQUIRE(wait_texts(lab->laptop, "bob", all));

  gint64 start = g_get_monotonic_time();
  lab->phone = client_start(lab, "alice-phone", "alice", FALSE, "");
  HARK_REQUIRE(lab->phone != NULL);
  HARK_REQUIRE(wait_counter(lab->phone, "history_received", 3, NULL));
  g_test_message("the phone had the past 3 messages %" G_GINT64_FORMAT " ms after its node started",
                 (g_get_monotonic_time() - start) / 1000);
  /* Listed as a past conversation: nothing unread, bob's last message under the title. */
  g_autoptr(JsonObject) listed = conversation_with(lab->phone, "bob");
  HARK_REQUIRE(listed != NULL && json_object_has_member(listed, "last"));
  g_assert_cmpint(json_object_get_int_member(listed, "unread"), ==, 0);
  JsonObject *last = json_object_get_object_member(listed, "last");
  g_assert_cmpstr(json_object_get_string_member(last, "text"), ==, past[2]);
  g_assert_cmpstr(json_object_get_string_member(last, "from"), ==, "bob");
  g_autofree char *texts = texts_with(lab->phone, "bob");
  g_assert_cmpstr(texts, ==, all);
  g_autoptr(JsonObject) history = lab_call(lab->phone, "history", lab_args("with", "bob", NULL));
  HARK_REQUIRE(history != NULL);
  JsonArray *list = json_object_get_array_member(history, "messages");
  g_assert_cmpstr(
    json_object_get_string_member(json_array_get_object_element(list, 1), "direction"), ==, "out");
  g_assert_cmpstr(
    json_object_get_string_member(json_array_get_object_element(list, 0), "direction"), ==, "in");

  const char *live = "bob: after the phone came (sync-c4f2)";
  HARK_REQUIRE(send_text(lab->bob, "alice", live));
  g_autofree char *with_live = g_strjoin("|", all, live, NULL);
  HARK_REQUIRE(wait_texts(lab->phone, "bob", with_live));
  /* Answers from every device and retries have settled: still once. */
  HARK_REQUIRE(wait_texts(lab->laptop, "bob", with_live));
  g_autofree char *again = texts_with(lab->phone, "bob");
  g_assert_cmpstr(again, ==, with_live);

  /* bob's device has states only from the devices his messages were sealed for: the
   * phone said nothing about the past ones. */
  g_autofree char *phone_device = device_id(lab->phone);
  g_autoptr(JsonObject) bobs = lab_call(lab->bob, "history", lab_args("with", "alice", NULL));
  HARK_REQUIRE(bobs != NULL && phone_device != NULL);
  JsonArray *sent = json_object_get_array_member(bobs, "messages");
  for (guint i = 0; i < json_array_get_length(sent); i++) {
    JsonObject *m = json_array_get_object_element(sent, i);
    JsonObject *states =
      json_object_has_member(m, "states") ? json_object_get_object_member(m, "states") : NULL;
    const char *text = json_object_get_string_member(m, "text");
    if (states != NULL && g_strcmp0(text, live) != 0)
      g_assert_false(json_object_has_member(states, phone_device));
  }
  g_assert_cmpint(counter_of(lab->phone, "history_sent", NULL), ==, 0);
  g_assert_cmpint(counter_of(lab->laptop, "history_sent", NULL), >=, 1);
}

/* ---- from another user ------------------------------------------------------------------ */

/* The DER of the first certificate in a PEM file. */
static GBytes *
pem_file_to_der(const char *path)
{
  g_autofree char *pem = NULL;
  if (!g_file_get_contents(path, &pem, NULL, NULL))
    return NULL;
  const char *begin = strstr(pem, "-----BEGIN CERTIFICATE-----");
  const char *end = begin != NULL ? strstr(begin, "-----END CERTIFICATE-----") : NULL;
  if (end == NULL)
    return NULL;
  begin += strlen("-----BEGIN CERTIFICATE-----");
  g_autofree char *body = g_strndup(begin, (gsize)(end - begin));
  gsize size = 0;
  guchar *der = g_base64_decode(g_strstrip(body), &size);
  return g_bytes_new_take(der, size);
}

/* inner sealed by node's device (its own key and certificate, from its state directory)
 * as user to alice, for her phone alone: what that device could really send. */
static GBytes *
seal_as(SyncLab *lab, LabNode *node, const char *user, GVariant *inner)
{
  g_autofree char *ca_pem = NULL;
  g_autofree char *key_path = g_build_filename(node->node->state_dir, "identity.pem", NULL);
  g_autofree char *bob_cert_path = g_build_filename(node->node->state_dir, "certificate.pem", NULL);
  g_autofree char *phone_cert_path =
    g_build_filename(lab->phone->node->state_dir, "certificate.pem", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkIdentity) bob = hark_identity_load(key_path, &error);
  g_autoptr(GBytes) bob_cert = pem_file_to_der(bob_cert_path);
  g_autoptr(GBytes) phone_cert = pem_file_to_der(phone_cert_path);
  g_autofree char *phone = device_id(lab->phone);
  if (bob == NULL || bob_cert == NULL || phone_cert == NULL || phone == NULL ||
      !g_file_get_contents(lab->login->ca_path, &ca_pem, NULL, &error)) {
    g_test_fail_printf("%s's key, its certificate, the phone's or the CA: %s", node->name,
                       error != NULL ? error->message : "missing");
    return NULL;
  }
  g_autoptr(GVariant) owned = g_variant_ref_sink(inner);
  HarkMessageRecipient recipient = { .recipient_device = phone, .certificate = phone_cert };
  static guint64 counter = 1000000; /* above anything the node took */
  HarkMessageSealParams params = {
    .identity = bob,
    .certificate = bob_cert,
    .sender = user,
    .ca_pem = ca_pem,
    .to = "alice",
    .sequence = 1,
    .counter = counter++,
    .time = g_get_real_time() / G_USEC_PER_SEC,
    .inner = owned,
    .recipients = &recipient,
    .n_recipients = 1,
  };
  GBytes *sealed = hark_message_seal(&params, &error);
  if (sealed == NULL)
    g_test_fail_printf("sealing as %s: %s", user, error->message);
  return sealed;
}

static GBytes *
seal_from_bob(SyncLab *lab, GVariant *inner)
{
  return seal_as(lab, lab->bob, "bob", inner);
}

/* Holds envelope at the login server for the phone, as the device bob of user sender
 * (straight into its database: the same row a hold makes). */
static gboolean
hold_from(SyncLab *lab, const char *phone, const char *sender, const char *bob, GBytes *envelope)
{
  g_autofree char *path = g_build_filename(lab->login->node->node->state_dir, "accounts.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *id = g_strdup_printf("%08x%08x%08x%08x", g_random_int(), g_random_int(),
                                        g_random_int(), g_random_int());
  gboolean ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
                sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
                sqlite3_prepare_v2(db,
                                   "INSERT INTO held_messages (id, device_id, user_key, sender_key,"
                                   " sender_device, envelope, size, held_at, expires)"
                                   " VALUES (?1, ?2, 'alice', ?7, ?3, ?4, length(?4), ?5, ?6)",
                                   -1, &stmt, NULL) == SQLITE_OK &&
                sqlite3_bind_text(stmt, 1, id, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                sqlite3_bind_text(stmt, 2, phone, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                sqlite3_bind_text(stmt, 3, bob, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                sqlite3_bind_blob(stmt, 4, g_bytes_get_data(envelope, NULL),
                                  (int)g_bytes_get_size(envelope), SQLITE_TRANSIENT) == SQLITE_OK &&
                sqlite3_bind_int64(stmt, 5, now) == SQLITE_OK &&
                sqlite3_bind_int64(stmt, 6, now + 86400) == SQLITE_OK &&
                sqlite3_bind_text(stmt, 7, sender, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
                sqlite3_step(stmt) == SQLITE_DONE;
  if (!ok)
    g_test_fail_printf("holding for the phone in %s: %s", path,
                       db != NULL ? sqlite3_errmsg(db) : "no memory");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return ok;
}

static gboolean
hold_for_phone(SyncLab *lab, const char *phone, const char *bob, GBytes *envelope)
{
  return hold_from(lab, phone, "bob", bob, envelope);
}

/* A history batch of one message from bob in the group id, carrying group's state (may
 * be NULL). */
static GVariant *
group_batch(const char *id, const HarkMessageGroup *group, const char *device, const char *text)
{
  g_autofree char *conversation = g_strconcat("g:", id, NULL);
  HarkMessagePast past = { .conversation = conversation,
                           .sender = (char *)"bob",
                           .sender_device = (char *)device,
                           .sequence = 1,
                           .time = g_get_real_time() / G_USEC_PER_SEC - 60,
                           .text = (char *)text };
  memset(past.id, text[0], sizeof past.id);
  HarkMessagePast *list[] = { &past };
  g_autoptr(GError) error = NULL;
  GVariant *batch = hark_message_past_group_new(list, 1, group, &error);
  g_assert_no_error(error);
  return batch;
}

/* bob seals a `history` batch with a message "from alice" into her conversation with him,
 * a `history-request`, and a `history` batch of a group (its state naming alice and bob,
 * bob its admin, and a message of his), each for alice's phone only, and has them held
 * for it. The phone refuses all three and counts them: the made-up messages are not in
 * its history, it knows no group, and it sent bob no history. And what alice's own
 * laptop could hand it against the group rules is refused too: a group state that does
 * not name alice, and a group message without a state for a group the phone does not
 * know. */
static void
test_from_another_user(SyncLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  lab->phone = client_start(lab, "alice-phone", "alice", FALSE, "");
  HARK_REQUIRE(lab->phone != NULL);
  const char *forged = "alice never wrote this (sync-9d14)";
  g_autofree char *phone = device_id(lab->phone);
  HarkMessagePast past = { .conversation = (char *)"u:bob",
                           .sender = (char *)"alice",
                           .sender_device = phone,
                           .sequence = 1,
                           .time = g_get_real_time() / G_USEC_PER_SEC - 60,
                           .text = (char *)forged };
  memset(past.id, 0x66, sizeof past.id);
  HarkMessagePast *list[] = { &past };
  g_autoptr(GError) error = NULL;
  GVariant *batch = hark_message_past_new(list, 1, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) history = seal_from_bob(lab, batch);
  g_autoptr(GBytes) request = seal_from_bob(lab, hark_message_past_request_new());
  g_autofree char *bob = device_id(lab->bob);
  g_autofree char *laptop = device_id(lab->laptop);
  HARK_REQUIRE(bob != NULL && laptop != NULL);
  const char *id = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
  const char *both[] = { "alice", "bob", NULL }, *not_alice[] = { "bob", "mallory", NULL };
  g_autoptr(HarkMessageGroup) bobs_group = hark_message_group_new(id, "bob's", "bob", 1, both);
  g_autoptr(HarkMessageGroup) without =
    hark_message_group_new(id, "not alice's", "bob", 1, not_alice);
  const char *in_group = "bob's group talk (sync-5a01)";
  const char *not_hers = "in a group she is not in (sync-5a02)";
  const char *no_state = "in a group she never heard of (sync-5a03)";
  g_autoptr(GBytes) group_history = seal_from_bob(lab, group_batch(id, bobs_group, bob, in_group));
  g_autoptr(GBytes) own_bad_state =
    seal_as(lab, lab->laptop, "alice", group_batch(id, without, bob, not_hers));
  g_autoptr(GBytes) own_no_state =
    seal_as(lab, lab->laptop, "alice", group_batch(id, NULL, bob, no_state));
  HARK_REQUIRE(history != NULL && request != NULL && group_history != NULL &&
               own_bad_state != NULL && own_no_state != NULL);
  /* The phone fetches what is held at start: stopped while the rows go in. */
  g_autoptr(JsonObject) stopped = lab_ctl_ask(lab->phone->ctl, "shutdown", NULL, NULL);
  g_clear_pointer(&lab->phone->ctl, hark_test_client_free);
  HARK_REQUIRE(stopped != NULL && hark_test_node_wait_exit(lab->phone->node, LAB_EXIT_MS));
  HARK_REQUIRE(hold_for_phone(lab, phone, bob, history) &&
               hold_for_phone(lab, phone, bob, request) &&
               hold_for_phone(lab, phone, bob, group_history) &&
               hold_from(lab, phone, "alice", laptop, own_bad_state) &&
               hold_from(lab, phone, "alice", laptop, own_no_state));
  HARK_REQUIRE(lab_node_start(lab->phone));

  HARK_REQUIRE(wait_counter(lab->phone, "refused_history", 3, NULL));
  HARK_REQUIRE(wait_counter(lab->phone, "history_refused", 2, NULL));
  g_autofree char *texts = texts_with(lab->phone, "bob");
  g_assert_null(strstr(texts, forged));
  g_assert_cmpint(counter_of(lab->phone, "history_received", NULL), ==, 0);
  g_assert_cmpint(counter_of(lab->phone, "history_sent", NULL), ==, 0);
  g_assert_cmpint(counter_of(lab->phone, "history_groups", NULL), ==, 0);
  g_assert_cmpint(counter_of(lab->phone, "history_groups_refused", NULL), ==, 1);
  g_autoptr(JsonObject) groups = lab_call(lab->phone, "groups", NULL);
  HARK_REQUIRE(groups != NULL);
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(groups, "groups")), ==, 0);
  g_autoptr(JsonObject) conversations = lab_call(lab->phone, "conversations", NULL);
  HARK_REQUIRE(conversations != NULL);
  g_assert_cmpuint(
    json_array_get_length(json_object_get_array_member(conversations, "conversations")), ==, 0);
}

/* ---- typing ----------------------------------------------------------------------------- */

/* Whether events hold one named name. */
static gboolean
has_event(GPtrArray *events, const char *name)
{
  for (guint i = 0; i < events->len; i++)
    if (g_strcmp0(json_object_get_string_member_with_default(events->pdata[i], "event", NULL),
                  name) == 0)
      return TRUE;
  return FALSE;
}

/* bob types to alice: her laptop shows it (from bob, on); her phone, whose owner turned
 * typing notes off, takes the note and shows nothing. A second note within 3 s is not
 * sent; "off" after "on" is. */
static void
test_typing(SyncLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  HARK_REQUIRE(lab->phone != NULL);
  g_autoptr(JsonObject) typed = lab_call(lab->bob, "typing", lab_args("to", "alice", NULL));
  HARK_REQUIRE(typed != NULL);
  g_assert_true(json_object_get_boolean_member(typed, "sent"));
  g_assert_cmpint(json_object_get_int_member(typed, "devices"), ==, 2);
  g_autoptr(JsonObject) event =
    hark_test_client_wait_event(lab->laptop->ctl, "typing", hark_test_timeout(ARRIVE_MS));
  HARK_REQUIRE(event != NULL);
  JsonObject *details = event; /* an event's members are its own (control-protocol.md) */
  g_assert_cmpstr(json_object_get_string_member(details, "from"), ==, "bob");
  g_assert_true(json_object_get_boolean_member(details, "typing"));

  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
  HARK_REQUIRE(wait_counter(lab->phone, "typing_received", 1, events));
  g_assert_false(has_event(events, "typing"));

  g_autoptr(JsonObject) again =
    lab_call(lab->bob, "typing", lab_args("to", "alice", "state", "on", NULL));
  HARK_REQUIRE(again != NULL);
  g_assert_false(json_object_get_boolean_member(again, "sent"));
  g_assert_cmpint(counter_of(lab->bob, "typing_limited", NULL), ==, 1);
  g_autoptr(JsonObject) off =
    lab_call(lab->bob, "typing", lab_args("to", "alice", "state", "off", NULL));
  HARK_REQUIRE(off != NULL);
  g_assert_true(json_object_get_boolean_member(off, "sent"));
  g_autoptr(JsonObject) stopped =
    hark_test_client_wait_event(lab->laptop->ctl, "typing", hark_test_timeout(ARRIVE_MS));
  HARK_REQUIRE(stopped != NULL);
  details = stopped;
  g_assert_false(json_object_get_boolean_member(details, "typing"));
  g_assert_cmpint(counter_of(lab->phone, "typing_received", events), >=, 1);
  g_assert_false(has_event(events, "typing"));
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 120000);
  hark_test_add_isolated("/im-sync/new-device", SyncLab, NULL, lab_set_up, test_new_device,
                         lab_tear_down);
  hark_test_add_isolated("/im-sync/from-another-user", SyncLab, NULL, lab_set_up,
                         test_from_another_user, lab_tear_down);
  hark_test_add_isolated("/im-sync/typing", SyncLab, "messages: { typing = false; };\n", lab_set_up,
                         test_typing, lab_tear_down);
  return g_test_run();
}
