/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-directory.c: the directory end to end with real processes: a login server, one
 * super node, alice logged in on two devices and bob on one, all attached to that SN.
 * Each device publishes its presence record to the SN; `search` finds every device of a
 * user, shows status only to a buddy, lists names by prefix through the login server,
 * tells a user who is not online from one who does not exist, and a client that floods
 * its SN with lookups is held to the SN's rate. A client built here on the core's links,
 * with a certificate from the lab's CA, publishes what a real node never would: a record
 * under another user's name, one with an expired certificate; the SN refuses and counts
 * them. (Every other refusal of the SN's store: the unit suite's `presence`.) */
#include "harness.h"
#include "lab.h"
#include "hostile-peer.h"

#include <hark/hark.h>

#include <string.h>

#define OVERLAY_PORT 33033
#define JOIN_MS 15000

typedef struct {
  LabLoginServer *login;
  char *sn_host;
  char *sn2_host;
  LabNode *sn;
  LabNode *sn2; /* a second SN, linked to the first: for strategy messages */
  LabNode *alice1;
  LabNode *alice2;
  LabNode *bob;
} Lab;

static Lab lab;

/* ---- configurations --------------------------------------------------------------- */

static char *
login_section(void)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab.login->url,
                         lab.login->ca_path);
}

/* An SN at host; bootstrap "" or an SN to link to (links: how many SN links it keeps). */
static char *
sn_config(const char *name, const char *host, const char *bootstrap, guint links)
{
  g_autofree char *login = login_section();
  return g_strdup_printf("node: { name = \"%s\"; supernode = true; };\n"
                         "plugins: { path = [ \"%s\" ];\n"
                         "  load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"search-fixed\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; bootstrap = ( %s ); };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = %u; };\n"
                         "directory: { lookups_per_minute = 600; };\n%s",
                         name, g_getenv("HARK_TEST_PLUGIN_DIR"), host, OVERLAY_PORT, host,
                         bootstrap, links, login);
}

static char *
client_config(const char *name)
{
  g_autofree char *login = login_section();
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"search-loginsrv\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { allow_loopback = true; join_race_delay_ms = 100;\n"
                         "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"udp\", "
                         "\"tcp\" ]; } ); };\n"
                         "directory: { search = [ \"gi\", \"fixed\", \"loginsrv\" ]; };\n%s",
                         name, lab.sn_host, OVERLAY_PORT, login);
}

/* ---- waiting ---------------------------------------------------------------------- */

typedef struct {
  LabNode *node;
  const char *command;
  JsonObject *args;
  gboolean (*pred)(JsonObject *result, gconstpointer data);
  gconstpointer data;
  JsonObject *last;
  gint64 asked_at; /* monotonic µs of the last ask */
} Wait;

/* A search costs a lookup at the SN (600 a minute in this lab, 10 at once): a poll asks
 * at most every 150 ms, so waiting never drains what the next case needs. */
#define POLL_EVERY_US (150 * G_TIME_SPAN_MILLISECOND)

static gboolean
holds(gpointer data)
{
  Wait *wait = data;
  gint64 now = g_get_monotonic_time();
  if (wait->asked_at != 0 && now - wait->asked_at < POLL_EVERY_US)
    return FALSE;
  wait->asked_at = now;
  g_clear_pointer(&wait->last, json_object_unref);
  g_autoptr(JsonObject) answer =
    lab_ask(wait->node, wait->command, wait->args != NULL ? json_object_ref(wait->args) : NULL);
  JsonObject *result =
    answer != NULL && json_object_get_boolean_member_with_default(answer, "ok", FALSE)
      ? json_object_get_object_member(answer, "result")
      : NULL;
  if (result == NULL)
    return FALSE;
  wait->last = json_object_ref(result);
  return wait->pred(wait->last, wait->data);
}

/* The command's result once pred holds (a new reference), or NULL (test failed). */
static JsonObject *
wait_until(LabNode *node, const char *command, JsonObject *args,
           gboolean (*pred)(JsonObject *, gconstpointer), gconstpointer data, const char *what)
{
  Wait wait = { node, command, args, pred, data, NULL, 0 };
  gboolean ok = hark_test_wait_for(holds, &wait, hark_test_timeout(JOIN_MS));
  if (args != NULL)
    json_object_unref(args);
  if (ok)
    return wait.last;
  g_autofree char *json = wait.last != NULL ? hark_test_json(wait.last) : g_strdup("none");
  g_test_fail_printf("%s: not %s in time; last %s: %s", node->name, what, command, json);
  hark_test_node_show_logs(node->node);
  g_clear_pointer(&wait.last, json_object_unref);
  return NULL;
}

/* This device's record was stored by its SN (at a sequence past *data when given). */
static gboolean
is_published(JsonObject *directory, gconstpointer data)
{
  JsonObject *publish = json_object_get_object_member(directory, "publish");
  if (publish == NULL || json_object_get_null_member(publish, "published_at"))
    return FALSE;
  return data == NULL || json_object_get_int_member(publish, "sequence") > *(const gint64 *)data;
}

static gboolean
has_devices(JsonObject *search, gconstpointer data)
{
  JsonArray *devices = json_object_get_array_member(search, "devices");
  return devices != NULL && json_array_get_length(devices) == GPOINTER_TO_UINT(data);
}

static gboolean
shows_presence(JsonObject *search, gconstpointer data)
{
  return g_strcmp0(json_object_get_string_member_with_default(search, "presence", NULL), data) == 0;
}

/* That presence, and every device's status shown (each a full form). */
static gboolean
shows_presence_everywhere(JsonObject *search, gconstpointer data)
{
  JsonArray *devices = json_object_get_array_member(search, "devices");
  for (guint i = 0; devices != NULL && i < json_array_get_length(devices); i++)
    if (!json_object_has_member(json_array_get_object_element(devices, i), "status"))
      return FALSE;
  return devices != NULL && shows_presence(search, data);
}

static LabNode *
client_start(const char *name, const char *user, gboolean register_first)
{
  g_autofree char *config = client_config(name);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autoptr(JsonObject) attached =
    wait_until(node, "overlay", NULL, lab_overlay_is_attached, NULL, "attached");
  if (attached == NULL)
    return NULL;
  g_autofree char *password = g_strdup_printf("%s-password-1", user);
  if (register_first && !lab_register_and_login(node, user))
    return NULL;
  if (!register_first) {
    g_autoptr(JsonObject) login =
      lab_call(node, "login", lab_args("user", user, "password", password, NULL));
    if (login == NULL)
      return NULL;
  }
  g_autoptr(JsonObject) published =
    wait_until(node, "directory", NULL, is_published, NULL, "published");
  return published != NULL ? g_steal_pointer(&node) : NULL;
}

static gboolean
lab_up(void)
{
  guint a = (guint)g_random_int_range(1, 255), b = (guint)g_random_int_range(0, 255);
  lab.sn_host = g_strdup_printf("127.%u.%u.21", a, b);
  lab.sn2_host = g_strdup_printf("127.%u.%u.22", a, b);
  lab.login = lab_login_server_new();
  if (lab.login == NULL)
    return FALSE;
  g_autofree char *config = sn_config("dir-sn", lab.sn_host, "", 0);
  lab.sn = lab_node_new("dir-sn", config);
  if (!lab_node_start(lab.sn) || !lab_register_and_login(lab.sn, "dir-sn-user"))
    return FALSE;
  g_autoptr(JsonObject) super =
    wait_until(lab.sn, "overlay", NULL, lab_overlay_is_super, NULL, "serving");
  if (super == NULL)
    return FALSE;
  g_autofree char *to_first = g_strdup_printf("{ host = \"%s\"; port = %u; transports = "
                                              "[ \"udp\", \"tcp\" ]; }",
                                              lab.sn_host, OVERLAY_PORT);
  g_autofree char *config2 = sn_config("dir-sn2", lab.sn2_host, to_first, 1);
  lab.sn2 = lab_node_new("dir-sn2", config2);
  if (!lab_node_start(lab.sn2) || !lab_register_and_login(lab.sn2, "dir-sn2-user"))
    return FALSE;
  g_autoptr(JsonObject) linked = wait_until(lab.sn, "overlay", NULL, lab_overlay_is_super,
                                            GUINT_TO_POINTER(1), "linked to dir-sn2, verified");
  if (linked == NULL)
    return FALSE;
  lab.alice1 = client_start("alice-laptop", "alice", TRUE);
  lab.alice2 = lab.alice1 != NULL ? client_start("alice-phone", "alice", FALSE) : NULL;
  lab.bob = lab.alice2 != NULL ? client_start("bob-desk", "bob", TRUE) : NULL;
  return lab.bob != NULL;
}

static void
lab_down(void)
{
  g_clear_pointer(&lab.bob, lab_node_free);
  g_clear_pointer(&lab.alice2, lab_node_free);
  g_clear_pointer(&lab.alice1, lab_node_free);
  g_clear_pointer(&lab.sn2, lab_node_free);
  g_clear_pointer(&lab.sn, lab_node_free);
  g_clear_pointer(&lab.login, lab_login_server_free);
  g_free(lab.sn_host);
  g_free(lab.sn2_host);
}

static JsonObject *
search(LabNode *node, const char *name)
{
  return lab_call(node, "search", lab_args("name", name, NULL));
}

static const char *
answer_of(JsonObject *result)
{
  return json_object_get_string_member_with_default(result, "answer", NULL);
}

/* ---- cases ------------------------------------------------------------------------ */

/* bob finds both of alice's devices, each with its SN; as a stranger he sees no status. */
static void
test_two_devices(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(JsonObject) found = search(lab.bob, "alice");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpstr(answer_of(found), ==, "found");
  JsonArray *devices = json_object_get_array_member(found, "devices");
  g_assert_cmpuint(json_array_get_length(devices), ==, 2);
  JsonObject *a = json_array_get_object_element(devices, 0);
  JsonObject *b = json_array_get_object_element(devices, 1);
  g_assert_cmpstr(json_object_get_string_member(a, "user"), ==, "alice");
  g_assert_cmpstr(json_object_get_string_member(b, "user"), ==, "alice");
  g_assert_cmpstr(json_object_get_string_member(a, "device"), !=,
                  json_object_get_string_member(b, "device"));
  g_autofree char *sn = g_strdup_printf("%s:%u", lab.sn_host, OVERLAY_PORT);
  g_assert_cmpstr(json_object_get_string_member(a, "sn"), ==, sn);
  g_assert_false(json_object_has_member(a, "status"));
  g_assert_false(json_object_has_member(a, "addresses"));
  g_assert_false(json_object_has_member(found, "presence"));

  /* A name in another case finds the same user. */
  g_autoptr(JsonObject) upper = search(lab.bob, "ALICE");
  HARK_REQUIRE(upper != NULL);
  g_assert_cmpstr(answer_of(upper), ==, "found");
}

/* A super node's own user is found too, at that SN; and the SN finds its clients. */
static void
test_super_node_user(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(JsonObject) found = search(lab.bob, "dir-sn-user");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpstr(answer_of(found), ==, "found");
  JsonArray *devices = json_object_get_array_member(found, "devices");
  g_assert_cmpuint(json_array_get_length(devices), ==, 1);
  g_autofree char *sn = g_strdup_printf("%s:%u", lab.sn_host, OVERLAY_PORT);
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(devices, 0), "sn"),
                  ==, sn);
  g_autoptr(JsonObject) from_sn = search(lab.sn, "bob");
  HARK_REQUIRE(from_sn != NULL);
  g_assert_cmpstr(answer_of(from_sn), ==, "found");
}

/* Once alice and bob are buddies (a request, accepted), her devices show him their
 * status: each device's own, and the most available across them. */
static void
test_buddy_sees_status(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  /* A contact request, accepted by bob; alice's laptop then fetches the list it changed. */
  g_autoptr(JsonObject) asked = lab_call(lab.alice1, "buddy-add", lab_args("name", "bob", NULL));
  HARK_REQUIRE(asked != NULL);
  g_autoptr(JsonObject) accepted =
    lab_call(lab.bob, "buddy-accept", lab_args("name", "alice", NULL));
  HARK_REQUIRE(accepted != NULL);
  /* bob's desk published a list naming alice: their SN hints alice's devices, which
   * fetch theirs and publish records bob may see (test-presence.c has the pushes). */
  g_autoptr(JsonObject) phone_busy =
    lab_call(lab.alice2, "status", lab_args("status", "busy", NULL));
  HARK_REQUIRE(phone_busy != NULL);
  g_autoptr(JsonObject) busy = lab_call(lab.alice1, "status", lab_args("status", "busy", NULL));
  HARK_REQUIRE(busy != NULL);
  g_assert_cmpstr(json_object_get_string_member(busy, "status"), ==, "busy");
  g_autoptr(JsonObject) seen =
    wait_until(lab.bob, "search", lab_args("name", "alice", NULL), shows_presence_everywhere,
               "busy", "shown alice busy on both devices");
  HARK_REQUIRE(seen != NULL);

  /* A stranger with a name of its own learns nothing of it. */
  g_autoptr(JsonObject) away = lab_call(lab.alice1, "status", lab_args("status", "away", NULL));
  HARK_REQUIRE(away != NULL);
  g_autoptr(JsonObject) again = wait_until(lab.bob, "search", lab_args("name", "alice", NULL),
                                           shows_presence, "away", "shown alice away");
  HARK_REQUIRE(again != NULL);
  g_autoptr(JsonObject) bad = lab_ask(lab.alice1, "status", lab_args("status", "hidden", NULL));
  g_assert_cmpstr(hark_test_answer_error_code(bad), ==, "bad-arguments");
}

/* Prefixes go through the login server too: a user who never logged in is listed. */
static void
test_prefix(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(JsonObject) reg =
    lab_call(lab.bob, "register", lab_args("user", "alina", "password", "alina-password-1", NULL));
  HARK_REQUIRE(reg != NULL);
  g_autoptr(JsonObject) found = search(lab.bob, "ali*");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpstr(answer_of(found), ==, "found");
  g_assert_true(json_object_get_boolean_member(found, "prefix"));
  JsonArray *users = json_object_get_array_member(found, "users");
  gboolean alice = FALSE, alina = FALSE;
  for (guint i = 0; i < json_array_get_length(users); i++) {
    alice |= g_strcmp0(json_array_get_string_element(users, i), "alice") == 0;
    alina |= g_strcmp0(json_array_get_string_element(users, i), "alina") == 0;
  }
  g_assert_true(alice);
  g_assert_true(alina);
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(found, "devices")), ==, 2);

  g_autoptr(JsonObject) none = search(lab.bob, "zzq*");
  HARK_REQUIRE(none != NULL);
  g_assert_cmpstr(answer_of(none), ==, "unknown");
}

/* A user who exists but has no device online, and a name nobody has. */
static void
test_definite_answers(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(JsonObject) reg =
    lab_call(lab.bob, "register", lab_args("user", "carol", "password", "carol-password-1", NULL));
  HARK_REQUIRE(reg != NULL);
  g_autoptr(JsonObject) known = search(lab.bob, "carol");
  HARK_REQUIRE(known != NULL);
  g_assert_cmpstr(answer_of(known), ==, "known");
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(known, "devices")), ==, 0);

  g_autoptr(JsonObject) unknown = search(lab.bob, "nobody-here");
  HARK_REQUIRE(unknown != NULL);
  g_assert_cmpstr(answer_of(unknown), ==, "unknown");
  g_assert_cmpstr(json_object_get_string_member(unknown, "text"), ==, "no such user");

  /* Malformed names are refused before anything is sent. */
  const char *bad[] = { "", "*", "9lives", "al ice", "a\nb", "abcdefghijklmnopqrstuvwxyz0123456" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(JsonObject) answer = lab_ask(lab.bob, "search", lab_args("name", bad[i], NULL));
    g_assert_cmpstr(hark_test_answer_error_code(answer), ==, "bad-arguments");
  }
}

/* ---- a hostile client ---------------------------------------------------------------- */

typedef struct {
  gboolean joined;
  GPtrArray *errors; /* char*: ERROR texts, by arrival */
} Mallet;

static void
mallet_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  Mallet *mallet = data;
  if (message->type == HARK_MSG_JOIN_OK) {
    mallet->joined = TRUE;
  } else if (message->type == HARK_MSG_ERROR) {
    const char *text;
    g_variant_get(message->body, "(u&s)", NULL, &text);
    g_ptr_array_add(mallet->errors, g_strdup(text));
  }
}

static const HarkLinkHandler mallet_handler = {
  .message = mallet_message,
  .closed = hark_test_peer_closed,
};

static gboolean
is_true(gpointer data)
{
  return *(gboolean *)data;
}

static gboolean
has_errors(gpointer data)
{
  Mallet *mallet = data;
  return mallet->errors->len >= 2;
}

/* Both forms of a record of user, with certificate cert, signed by key. */
static GVariant *
publication(const char *user, HarkIdentity *key, GBytes *cert, gint64 now)
{
  g_autoptr(HarkPresenceRecord) full = hark_presence_record_new();
  full->user = g_strdup(user);
  full->device = g_strdup(hark_identity_get_fingerprint(key));
  full->certificate = g_bytes_ref(cert);
  full->status = HARK_PRESENCE_ONLINE;
  full->sequence = 1;
  full->time = now;
  g_autoptr(HarkPresenceRecord) pub = hark_presence_record_public(full);
  g_autoptr(GError) error = NULL;
  g_assert_nonnull(hark_presence_sign(full, key, &error));
  g_assert_nonnull(hark_presence_sign(pub, key, &error));
  const char *const none[] = { NULL };
  return g_variant_new("(@(ayay)@(ayay)^as)", pub->signed_form, full->signed_form, none);
}

static gint64
counter(JsonObject *directory, const char *name)
{
  return json_object_get_int_member(json_object_get_object_member(directory, "counters"), name);
}

static void
test_forged_records(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(JsonObject) before = lab_call(lab.sn, "directory", NULL);
  HARK_REQUIRE(before != NULL);
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-mallet-XXXXXX");
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCa) lab_ca = hark_test_peer_ca(lab.login->node->node->state_dir);
  HARK_REQUIRE(lab_ca != NULL);
  /* Its link's certificate names it "mallet", from the lab's own CA. */
  HarkNode *node = hark_test_peer_node(&net, "mallet", lab_ca);
  g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
  Mallet mallet = { FALSE, errors };
  HarkLink *link =
    hark_test_peer_open(&net, node, lab.sn_host, OVERLAY_PORT, &mallet_handler, &mallet);
  HARK_REQUIRE(link != NULL);
  hark_test_peer_join(link, "mallet", NULL, 0);
  HARK_REQUIRE(hark_test_wait_for(is_true, &mallet.joined, hark_test_timeout(5000)));

  g_autofree char *key_path = g_build_filename(net.dir, "records.pem", NULL);
  g_autoptr(HarkIdentity) key = hark_identity_load_or_create(key_path, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *public_pem = hark_identity_get_public_pem(key);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  /* Under alice's name, with a certificate of its own. */
  g_autofree char *own = hark_ca_issue_device(lab_ca, "mallet", "0123456789abcdef0123456789abcdef",
                                              public_pem, now - 60, 3600, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) own_cert = g_bytes_new(own, strlen(own));
  hark_link_send(link, HARK_MSG_DIR_PUBLISH, 2, publication("alice", key, own_cert, now),
                 NULL);
  /* Its own name, with a certificate that ended an hour ago. */
  g_autofree char *old = hark_ca_issue_device(lab_ca, "mallet", "0123456789abcdef0123456789abcdef",
                                              public_pem, now - 7200, 3600, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) old_cert = g_bytes_new(old, strlen(old));
  hark_link_send(link, HARK_MSG_DIR_PUBLISH, 3, publication("mallet", key, old_cert, now),
                 NULL);
  HARK_REQUIRE(hark_test_wait_for(has_errors, &mallet, hark_test_timeout(5000)));
  g_test_message("refused: %s | %s", (char *)errors->pdata[0], (char *)errors->pdata[1]);
  g_assert_nonnull(strstr(errors->pdata[0], "certificate of user 'mallet'"));
  g_assert_nonnull(strstr(errors->pdata[1], "was not valid when the record was signed"));

  g_autoptr(JsonObject) after = lab_call(lab.sn, "directory", NULL);
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(counter(after, "records_foreign"), ==, counter(before, "records_foreign") + 1);
  g_assert_cmpint(counter(after, "records_expired"), ==, counter(before, "records_expired") + 1);
  /* alice's devices are what they were. */
  g_autoptr(JsonObject) found = search(lab.bob, "alice");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(found, "devices")), ==, 2);
}

/* A counter of the "fixed" test strategy on an SN (-1 when it is not there). */
static gint64
fixed_stat(LabNode *sn, const char *name)
{
  g_autoptr(JsonObject) directory = lab_call(sn, "directory", NULL);
  JsonArray *strategies =
    directory != NULL ? json_object_get_array_member(directory, "search") : NULL;
  for (guint i = 0; strategies != NULL && i < json_array_get_length(strategies); i++) {
    JsonObject *s = json_array_get_object_element(strategies, i);
    if (g_strcmp0(json_object_get_string_member(s, "name"), "fixed") == 0)
      return json_object_get_int_member(json_object_get_object_member(s, "stats"), name);
  }
  return -1;
}

static gboolean
sn2_received(gpointer data)
{
  return fixed_stat(lab.sn2, "received") == 1;
}

/* The SN asks its own strategies, in the lookup's order, before the client asks the
 * login server: search-fixed (loaded on the SN only) calls every ghost* unknown, even one
 * the login server knows. */
static void
test_sn_strategies(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(JsonObject) reg = lab_call(
    lab.bob, "register", lab_args("user", "ghost-one", "password", "ghost-password-1", NULL));
  HARK_REQUIRE(reg != NULL);
  g_autoptr(JsonObject) ghost = search(lab.bob, "ghost-one");
  HARK_REQUIRE(ghost != NULL);
  g_assert_cmpstr(answer_of(ghost), ==, "unknown");
  /* Undecided there, the login server answers. */
  g_autoptr(JsonObject) alina = search(lab.bob, "alina");
  HARK_REQUIRE(alina != NULL);
  g_assert_cmpstr(answer_of(alina), ==, "known");
  g_assert_cmpint(fixed_stat(lab.sn, "served"), >=, 2);

  /* A relay* lookup makes dir-sn's strategy send to its SN peer, whose copy of the same
   * strategy gets it: DIR_STRATEGY carried and handed over by name. */
  g_autoptr(JsonObject) relayed = search(lab.bob, "relay-me");
  HARK_REQUIRE(relayed != NULL);
  g_assert_cmpint(fixed_stat(lab.sn, "sent"), ==, 1);
  HARK_REQUIRE(hark_test_wait_for(sn2_received, NULL, hark_test_timeout(5000)));
  g_assert_cmpint(fixed_stat(lab.sn2, "refused"), ==, 0);
}

/* A device that leaves is no longer found; its other device still is. */
static void
test_device_leaves(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(JsonObject) bye = lab_ask(lab.alice2, "shutdown", NULL);
  HARK_REQUIRE(bye != NULL && hark_test_node_wait_exit(lab.alice2->node, LAB_EXIT_MS));
  g_autoptr(JsonObject) one = wait_until(lab.bob, "search", lab_args("name", "alice", NULL),
                                         has_devices, GUINT_TO_POINTER(1), "one alice device");
  HARK_REQUIRE(one != NULL);
  g_assert_cmpstr(answer_of(one), ==, "found");
}

/* One client asking too often is refused by the SN, and counted there; its earlier
 * answers were good. The lab's SN takes 600 a minute (10 a second) from each client, so
 * the other cases' polls stay under it; a client asking back to back goes over. */
static void
test_lookup_flood(void)
{
  HARK_REQUIRE(lab.bob != NULL);
  g_autoptr(LabNode) mallory = client_start("mallory-box", "mallory", TRUE);
  HARK_REQUIRE(mallory != NULL);
  guint answered = 0, refused = 0;
  for (guint i = 0; i < 40 && refused == 0; i++) {
    g_autoptr(JsonObject) answer = lab_ask(mallory, "search", lab_args("name", "bob", NULL));
    HARK_REQUIRE(answer != NULL);
    if (json_object_get_boolean_member(answer, "ok"))
      answered++;
    else if (strstr(json_object_get_string_member(json_object_get_object_member(answer, "error"),
                                                  "message"),
                    "too many lookups") != NULL)
      refused++;
  }
  g_test_message("%u lookups answered before the first refusal", answered);
  g_assert_cmpuint(refused, ==, 1);
  g_assert_cmpuint(answered, >=, 10);
  g_autoptr(JsonObject) directory = lab_call(lab.sn, "directory", NULL);
  HARK_REQUIRE(directory != NULL);
  JsonObject *counters = json_object_get_object_member(directory, "counters");
  g_assert_cmpint(json_object_get_int_member(counters, "lookups_limited"), >=, 1);
  /* Another client is not held to mallory's rate. */
  g_autoptr(JsonObject) fine = search(lab.alice1, "bob");
  HARK_REQUIRE(fine != NULL);
  g_assert_cmpstr(answer_of(fine), ==, "found");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/directory/two-devices", test_two_devices);
  g_test_add_func("/directory/super-node-user", test_super_node_user);
  g_test_add_func("/directory/buddy-sees-status", test_buddy_sees_status);
  g_test_add_func("/directory/prefix", test_prefix);
  g_test_add_func("/directory/definite-answers", test_definite_answers);
  g_test_add_func("/directory/lookup-flood", test_lookup_flood);
  g_test_add_func("/directory/forged-records", test_forged_records);
  g_test_add_func("/directory/sn-strategies", test_sn_strategies);
  g_test_add_func("/directory/device-leaves", test_device_leaves);
  gboolean up = lab_up();
  int status = up ? g_test_run() : 1;
  if (!up)
    g_printerr("the directory lab did not come up\n");
  lab_down();
  return status;
}
