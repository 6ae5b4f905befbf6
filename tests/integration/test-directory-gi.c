/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-directory-gi.c: the `gi` and `flood` search strategies on real super nodes. Four
 * SNs linked to each other (supernode.links = 3) load both; alice logs in on two devices
 * at SN1, bob on one at SN3. Her records reach the other SNs only over the SNs' TLS links
 * (gi: stored on the SNs closest to her key; flood: kept at SN1 and asked for in rings),
 * and bob finds both devices through his SN. A user registered on no device is not in
 * the index: the strategy cannot tell and the login server says "known". A hostile SN
 * (forged-store) sends gi records it forged and answers lookups with them: every one is
 * refused and counted, and bob still finds alice's two devices only. Each case runs its
 * own lab in its own process (test-isolate.h). */
#include "gi-engine.h"
#include "harness.h"
#include "lab.h"
#include "test-isolate.h"
#include "hostile-peer.h"

#include <hark/hark.h>
#include <string.h>

#define OVERLAY_PORT 33043
#define NSN 4
#define WAIT_MS 20000
#define CASE_MS 90000

typedef struct {
  LabLoginServer *login;
  char *hosts[NSN];
  LabNode *sn[NSN];
  LabNode *alice1;
  LabNode *alice2;
  LabNode *bob;
  const char *strategy; /* "gi" or "flood" */
} Lab;

static char *
login_section(Lab *lab)
{
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab->login->url,
                         lab->login->ca_path);
}

/* SN i, bootstrapping from every SN before it, keeping a link to each of the others. */
static char *
sn_config(Lab *lab, guint i)
{
  g_autofree char *login = login_section(lab);
  g_autoptr(GString) bootstrap = g_string_new(NULL);
  for (guint j = 0; j < i; j++)
    g_string_append_printf(bootstrap,
                           "%s{ host = \"%s\"; port = %u; transports = "
                           "[ \"udp\", \"tcp\" ]; }",
                           j > 0 ? ", " : "", lab->hosts[j], OVERLAY_PORT);
  return g_strdup_printf("node: { name = \"gi-sn%u\"; supernode = true; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"gi\"; }, { name = \"flood\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; bootstrap = ( %s ); };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = %u; };\n"
                         "directory: { lookups_per_minute = 600; };\n%s",
                         i + 1, lab->hosts[i], OVERLAY_PORT, lab->hosts[i], bootstrap->str, NSN - 1,
                         login);
}

/* A client of SN sn that searches with the lab's strategy, then the login server. */
static char *
client_config(Lab *lab, const char *name, guint sn)
{
  g_autofree char *login = login_section(lab);
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"search-loginsrv\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { allow_loopback = true; join_race_delay_ms = 100;\n"
                         "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"udp\", "
                         "\"tcp\" ]; } ); };\n"
                         "directory: { search = [ \"%s\", \"loginsrv\" ]; };\n%s",
                         name, lab->hosts[sn], OVERLAY_PORT, lab->strategy, login);
}

/* ---- waiting ---------------------------------------------------------------------- */

/* The command's result once pred holds (a new reference), or NULL (test failed). */
static JsonObject *
wait_until(LabNode *node, const char *command, LabResultPredicate pred, gconstpointer data,
           const char *what)
{
  return lab_wait_command(node, command, pred, data, hark_test_timeout(WAIT_MS), what);
}

/* The stats of strategy name in a `directory` answer, or NULL. */
static JsonObject *
strategy_stats(JsonObject *directory, const char *name)
{
  JsonArray *search = json_object_get_array_member(directory, "search");
  for (guint i = 0; search != NULL && i < json_array_get_length(search); i++) {
    JsonObject *s = json_array_get_object_element(search, i);
    if (g_strcmp0(json_object_get_string_member_with_default(s, "name", NULL), name) == 0)
      return json_object_has_member(s, "stats") ? json_object_get_object_member(s, "stats") : NULL;
  }
  return NULL;
}

static gint64
stat_of(JsonObject *directory, const char *strategy, const char *counter)
{
  JsonObject *stats = strategy_stats(directory, strategy);
  return stats != NULL ? json_object_get_int_member_with_default(stats, counter, -1) : -1;
}

/* Both strategies run and have every other SN as a contact (a verified link each). */
static gboolean
knows_every_sn(JsonObject *directory, gconstpointer data)
{
  return stat_of(directory, "gi", "contacts") == NSN - 1 &&
         stat_of(directory, "flood", "contacts") == NSN - 1;
}

static gint64
sn_stat(LabNode *sn, const char *strategy, const char *counter)
{
  g_autoptr(JsonObject) directory = lab_call(sn, "directory", NULL);
  return directory != NULL ? stat_of(directory, strategy, counter) : -1;
}

/* ---- the lab ------------------------------------------------------------------------ */

static LabNode *
client_start(Lab *lab, const char *name, guint sn, const char *user, gboolean register_first)
{
  g_autofree char *config = client_config(lab, name, sn);
  return lab_client_start(name, config, user, register_first, hark_test_timeout(WAIT_MS));
}

static gboolean
lab_up(Lab *lab, const char *strategy)
{
  lab->strategy = strategy;
  guint a = (guint)g_random_int_range(1, 255), b = (guint)g_random_int_range(0, 255);
  lab->login = lab_login_server_new();
  if (lab->login == NULL)
    return FALSE;
  for (guint i = 0; i < NSN; i++) {
    lab->hosts[i] = g_strdup_printf("127.%u.%u.%u", a, b, 31 + i);
    g_autofree char *config = sn_config(lab, i);
    g_autofree char *name = g_strdup_printf("gi-sn%u", i + 1);
    g_autofree char *user = g_strdup_printf("gi-sn%u-user", i + 1);
    lab->sn[i] = lab_node_new(name, config);
    if (!lab_node_start(lab->sn[i]) || !lab_register_and_login(lab->sn[i], user))
      return FALSE;
  }
  for (guint i = 0; i < NSN; i++) {
    g_autoptr(JsonObject) ready =
      wait_until(lab->sn[i], "directory", knows_every_sn, NULL, "linked to every other SN");
    if (ready == NULL)
      return FALSE;
  }
  lab->alice1 = client_start(lab, "alice-laptop", 0, "alice", TRUE);
  lab->alice2 = lab->alice1 != NULL ? client_start(lab, "alice-phone", 0, "alice", FALSE) : NULL;
  lab->bob = lab->alice2 != NULL ? client_start(lab, "bob-desk", 2, "bob", TRUE) : NULL;
  return lab->bob != NULL;
}

static void
lab_down(Lab *lab)
{
  g_clear_pointer(&lab->bob, lab_node_free);
  g_clear_pointer(&lab->alice2, lab_node_free);
  g_clear_pointer(&lab->alice1, lab_node_free);
  for (guint i = 0; i < NSN; i++) {
    g_clear_pointer(&lab->sn[i], lab_node_free);
    g_free(lab->hosts[i]);
  }
  g_clear_pointer(&lab->login, lab_login_server_free);
}

static JsonObject *
search(LabNode *node, const char *name)
{
  return lab_call(node, "search", lab_args("name", name, NULL));
}

/* bob, at SN3, finds both of alice's devices, both at SN1. */
static void
assert_bob_finds_alice(Lab *lab)
{
  g_autoptr(JsonObject) found = search(lab->bob, "alice");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpstr(json_object_get_string_member(found, "answer"), ==, "found");
  JsonArray *devices = json_object_get_array_member(found, "devices");
  g_assert_cmpuint(json_array_get_length(devices), ==, 2);
  g_autofree char *sn1 = g_strdup_printf("%s:%u", lab->hosts[0], OVERLAY_PORT);
  for (guint i = 0; i < 2; i++) {
    JsonObject *d = json_array_get_object_element(devices, i);
    g_assert_cmpstr(json_object_get_string_member(d, "user"), ==, "alice");
    g_assert_cmpstr(json_object_get_string_member(d, "sn"), ==, sn1);
  }
  g_assert_cmpstr(
    json_object_get_string_member(json_array_get_object_element(devices, 0), "device"), !=,
    json_object_get_string_member(json_array_get_object_element(devices, 1), "device"));
}

/* ---- cases ------------------------------------------------------------------------ */

/* gi: alice's records are stored on the SNs closest to her key (SN1 sends them over its
 * links), SN3 finds them with a lookup of the index. */
static void
test_gi(void)
{
  Lab lab = { 0 };
  HARK_REQUIRE(lab_up(&lab, "gi"));
  assert_bob_finds_alice(&lab);
  /* SN3 answered through gi (its own store has no record of alice: she is at SN1). */
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "found"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "flood", "lookups"), ==, 0);
  /* Each of her devices published at least once (again when its buddy list changed: the
   * SN's contact hints make devices fetch and republish). */
  g_assert_cmpint(sn_stat(lab.sn[0], "gi", "published"), >=, 2);
  /* Her two records and bob's went out over the links: replicas on other SNs. */
  gint64 elsewhere = 0;
  for (guint i = 1; i < NSN; i++)
    elsewhere += sn_stat(lab.sn[i], "gi", "records");
  g_assert_cmpint(elsewhere, >=, 2);
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "received"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "forged"), ==, 0);
  /* alice's phone leaves SN1, which stops storing its record again each period (gi's
   * `forgotten`; /gi/forget-stops-republish has what that means); alice is still found. */
  g_assert_cmpint(sn_stat(lab.sn[0], "gi", "forgotten"), ==, 0);
  HARK_REQUIRE(lab_node_stop(lab.alice2));
  gint64 until = g_get_monotonic_time() + hark_test_timeout(WAIT_MS) * 1000;
  while (sn_stat(lab.sn[0], "gi", "forgotten") < 1 && g_get_monotonic_time() < until)
    g_usleep(100 * 1000);
  g_assert_cmpint(sn_stat(lab.sn[0], "gi", "forgotten"), ==, 1);
  g_autoptr(JsonObject) found = search(lab.bob, "alice");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpstr(json_object_get_string_member(found, "answer"), ==, "found");
  lab_down(&lab);
}

/* flood: alice's records stay at SN1; SN3 asks its neighbours, SN1 answers. */
static void
test_flood(void)
{
  Lab lab = { 0 };
  HARK_REQUIRE(lab_up(&lab, "flood"));
  assert_bob_finds_alice(&lab);
  g_assert_cmpint(sn_stat(lab.sn[2], "flood", "found"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "flood", "routed"), >=, 1);
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "lookups"), ==, 0);
  /* Every SN keeps only the records of its own devices: its clients' and the one of its
   * own device (each SN is logged in as gi-snN-user, and an SN hands its own record to
   * its strategies as it does a client's, docs/protocol.md "Publishing"). SN1: alice's
   * two and its own; SN3: bob's and its own; SN2 and SN4: their own. A record that
   * spread to another SN would show here. */
  static const gint64 expected[NSN] = { 3, 1, 2, 1 };
  for (guint i = 0; i < NSN; i++)
    g_assert_cmpint(sn_stat(lab.sn[i], "flood", "records"), ==, expected[i]);
  lab_down(&lab);
}

/* A user registered on no device is in no SN's index: gi cannot tell, the login server
 * says she exists. */
static void
test_known_from_login_server(void)
{
  Lab lab = { 0 };
  HARK_REQUIRE(lab_up(&lab, "gi"));
  g_autoptr(JsonObject) reg =
    lab_call(lab.bob, "register", lab_args("user", "carol", "password", "carol-password-1", NULL));
  HARK_REQUIRE(reg != NULL);
  g_autoptr(JsonObject) known = search(lab.bob, "carol");
  HARK_REQUIRE(known != NULL);
  g_assert_cmpstr(json_object_get_string_member(known, "answer"), ==, "known");
  g_assert_cmpint(sn_stat(lab.sn[2], "gi", "not_found"), >=, 1);
  g_autoptr(JsonObject) unknown = search(lab.bob, "nobody-here");
  HARK_REQUIRE(unknown != NULL);
  g_assert_cmpstr(json_object_get_string_member(unknown, "answer"), ==, "unknown");
  lab_down(&lab);
}

/* ---- a hostile super node ------------------------------------------------------------ */

/* mallory: an in-process node with a device certificate of the lab's CA (anybody who
 * registers has one), listening where it says it is, so that the SNs verify it as an SN
 * peer (a probe of that address shows its key) and their gi engines take its messages. */
typedef struct {
  LabNode *sn;
  HarkLink *link;
  gboolean joined;
  guint answers; /* gi ANSWERs the SN sent it */
  guint refused_stores; /* of them: a STORE it refused */
  guint asked; /* gi LOOKUPs the SN routed to it */
  GArray *requests; /* guint64: the ids of those lookups */
  GPtrArray *forged; /* HarkGiRecord*: what it answers with */
} Hostile;

static guint64 hostile_ids = 100;

static void
hostile_send_gi(HarkLink *link, const HarkGiMessage *msg)
{
  hark_link_send(link, HARK_MSG_DIR_STRATEGY, hostile_ids++,
                 g_variant_new("(sv)", "gi", hark_gi_message_encode(msg)), NULL);
}

/* Its forged records as the answer to request (what an SN on the path could say). */
static void
hostile_answer(Hostile *h, guint64 request, const HarkGiId *key)
{
  HarkGiMessage answer;
  hark_gi_message_init(&answer, HARK_GI_ANSWER, request, key);
  answer.flags = HARK_GI_FLAG_OK;
  for (guint i = 0; i < h->forged->len; i++)
    g_ptr_array_add(answer.records, hark_gi_record_copy(h->forged->pdata[i]));
  hostile_send_gi(h->link, &answer);
  hark_gi_message_clear(&answer);
}

static void
hostile_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  Hostile *h = data;
  if (message->type == HARK_MSG_JOIN_OK)
    h->joined = TRUE;
  if (message->type != HARK_MSG_DIR_STRATEGY)
    return;
  const char *name;
  g_autoptr(GVariant) inner = NULL;
  g_variant_get(message->body, "(&sv)", &name, &inner);
  HarkGiMessage msg;
  if (g_strcmp0(name, "gi") != 0 || !hark_gi_message_decode(inner, &msg, NULL))
    return;
  if (msg.kind == HARK_GI_ANSWER) {
    h->answers++;
    h->refused_stores += (msg.flags & HARK_GI_FLAG_REFUSED) != 0;
  } else if (msg.kind == HARK_GI_LOOKUP) {
    h->asked++;
    g_array_append_val(h->requests, msg.request);
    hostile_answer(h, msg.request, &msg.key);
  }
  hark_gi_message_clear(&msg);
}

static const HarkLinkHandler hostile_handler = {
  .message = hostile_message,
  .closed = hark_test_peer_closed,
};

static gboolean
hostile_joined(gpointer data)
{
  return ((Hostile *)data)->joined;
}

static gboolean
stores_refused(gpointer data)
{
  return ((Hostile *)data)->refused_stores > 0;
}

/* Every SN link up and verified: the gi strategy counts one peer more than the lab's. */
static gboolean
has_extra_peer(JsonObject *directory, gconstpointer data)
{
  return stat_of(directory, "gi", "peers") == NSN;
}

/* h's link to SN sn, JOINed as the SN at announced:OVERLAY_PORT and verified there. */
static gboolean
hostile_link(HarkTestNet *net, HarkNode *node, Lab *lab, guint sn, const char *announced,
             Hostile *h)
{
  h->sn = lab->sn[sn];
  h->link = hark_test_peer_open(net, node, lab->hosts[sn], OVERLAY_PORT, &hostile_handler, h);
  if (h->link == NULL)
    return FALSE;
  hark_test_peer_join(h->link, "mallory-sn", announced, OVERLAY_PORT);
  if (!hark_test_wait_for(hostile_joined, h, hark_test_timeout(5000)))
    return FALSE;
  g_autoptr(JsonObject) verified =
    wait_until(lab->sn[sn], "directory", has_extra_peer, NULL, "linked to mallory-sn");
  return verified != NULL;
}

/* ---- forged records ------------------------------------------------------------------ */

/* The signed public form of a record of user, device key key (its fingerprint unless
 * device says otherwise), certificate cert, dated time (unix s). */
static GBytes *
signed_record(const char *user, HarkIdentity *key, const char *device, GBytes *cert, gint64 time)
{
  g_autoptr(HarkPresenceRecord) r = hark_presence_record_new();
  r->is_public = TRUE;
  r->user = g_strdup(user);
  r->device = g_strdup(device != NULL ? device : hark_identity_get_fingerprint(key));
  r->certificate = g_bytes_ref(cert);
  r->sn = g_strdup("");
  r->nat = g_strdup("unknown");
  r->status = HARK_PRESENCE_HIDDEN;
  r->sequence = 1;
  r->time = time;
  g_autoptr(GError) error = NULL;
  GVariant *v = hark_presence_sign(r, key, &error);
  g_assert_no_error(error);
  return g_variant_get_data_as_bytes(v);
}

/* A gi record filed under user's key, saying device and time (in s) to the engine. */
static HarkGiRecord *
gi_record(const char *user, const char *device, gint64 time, GBytes *blob)
{
  HarkGiId key;
  hark_gi_id_for_user(user, &key);
  return hark_gi_record_new(&key, device, time * G_USEC_PER_SEC, blob);
}

static GBytes *
file_bytes(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_file_get_contents(path, &text, &len, &error);
  g_assert_no_error(error);
  return g_bytes_new_take(g_steal_pointer(&text), len);
}

static HarkIdentity *
identity_of(LabNode *node)
{
  g_autofree char *path = g_build_filename(node->node->state_dir, "identity.pem", NULL);
  g_autoptr(GError) error = NULL;
  HarkIdentity *identity = hark_identity_load_or_create(path, NULL, &error);
  g_assert_no_error(error);
  return identity;
}

/* The SN's gi counters and the directory's refusal counters a hostile SN moves. */
typedef struct {
  gint64 stale, misfiled, mismatched, forged, malformed, envelopes, records, refused_stores;
  gint64 records_forged, records_foreign, records_expired;
} Refusals;

static void
refusals_read(LabNode *sn, Refusals *r)
{
  g_autoptr(JsonObject) directory = lab_call(sn, "directory", NULL);
  HARK_REQUIRE(directory != NULL);
  r->stale = stat_of(directory, "gi", "stale");
  r->misfiled = stat_of(directory, "gi", "misfiled");
  r->mismatched = stat_of(directory, "gi", "mismatched");
  r->forged = stat_of(directory, "gi", "forged");
  r->malformed = stat_of(directory, "gi", "malformed");
  r->envelopes = stat_of(directory, "gi", "malformed_envelopes");
  r->records = stat_of(directory, "gi", "records");
  r->refused_stores = stat_of(directory, "gi", "refused_stores");
  JsonObject *c = json_object_get_object_member(directory, "counters");
  r->records_forged = json_object_get_int_member(c, "records_forged");
  r->records_foreign = json_object_get_int_member(c, "records_foreign");
  r->records_expired = json_object_get_int_member(c, "records_expired");
}

/* The last of the attack (a malformed envelope after a malformed message) was taken:
 * a link delivers in order, so everything before it was too. */
static gboolean
took_the_last(JsonObject *directory, gconstpointer data)
{
  const Refusals *before = data;
  return stat_of(directory, "gi", "malformed_envelopes") == before->envelopes + 1 &&
         stat_of(directory, "gi", "malformed") == before->malformed + 1;
}

/* bob's search for alice finds exactly her two devices: fingerprints devices[0..1]. */
static void
assert_bob_finds_only(Lab *lab, const char *const devices[2])
{
  g_autoptr(JsonObject) found = search(lab->bob, "alice");
  HARK_REQUIRE(found != NULL);
  g_assert_cmpstr(json_object_get_string_member(found, "answer"), ==, "found");
  JsonArray *list = json_object_get_array_member(found, "devices");
  g_assert_cmpuint(json_array_get_length(list), ==, 2);
  for (guint i = 0; i < 2; i++) {
    const char *device =
      json_object_get_string_member(json_array_get_object_element(list, i), "device");
    g_assert_true(g_strcmp0(device, devices[0]) == 0 || g_strcmp0(device, devices[1]) == 0);
  }
}

/* A hostile SN sends SN1 gi REPLICA and STORE messages with records it forged, a stale
 * and a future one, and malformed ones; then answers the lookups the SNs route to it with
 * forged records, and sends answers nobody asked it for. */
static void
test_forged_store(void)
{
  Lab lab = { 0 };
  HARK_REQUIRE(lab_up(&lab, "gi"));
  g_autoptr(HarkIdentity) alice_key = identity_of(lab.alice1);
  g_autoptr(HarkIdentity) alice2_key = identity_of(lab.alice2);
  const char *const devices[2] = { hark_identity_get_fingerprint(alice_key),
                                   hark_identity_get_fingerprint(alice2_key) };
  assert_bob_finds_only(&lab, devices);

  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-mallory-XXXXXX");
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCa) lab_ca = hark_test_peer_ca(lab.login->node->node->state_dir);
  HARK_REQUIRE(lab_ca != NULL);
  HarkNode *node = hark_test_peer_node(&net, "mallory", lab_ca);
  g_autofree char *announced = hark_test_peer_address(lab.hosts[0], 41);
  HARK_REQUIRE(hark_test_peer_listen(node, announced, OVERLAY_PORT));
  g_autoptr(GPtrArray) forged = g_ptr_array_new_with_free_func((GDestroyNotify)hark_gi_record_free);
  g_autoptr(GArray) requests1 = g_array_new(FALSE, FALSE, sizeof(guint64));
  g_autoptr(GArray) requests3 = g_array_new(FALSE, FALSE, sizeof(guint64));
  Hostile to_sn1 = { .requests = requests1, .forged = forged };
  Hostile to_sn3 = { .requests = requests3, .forged = forged };
  HARK_REQUIRE(hostile_link(&net, node, &lab, 0, announced, &to_sn1));
  HARK_REQUIRE(hostile_link(&net, node, &lab, 2, announced, &to_sn3));

  /* Its own key, certified by the lab's CA for user mallory. */
  g_autofree char *key_path = g_build_filename(net.dir, "mallory-records.pem", NULL);
  g_autoptr(HarkIdentity) key = hark_identity_load_or_create(key_path, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *public_pem = hark_identity_get_public_pem(key);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *own_pem = hark_ca_issue_device(
    lab_ca, "mallory", "0123456789abcdef0123456789abcdef", public_pem, now - 60, 3600, &error);
  g_assert_no_error(error);
  g_autoptr(GBytes) own_cert = g_bytes_new(own_pem, strlen(own_pem));
  g_autoptr(GBytes) alice_cert = file_bytes(lab.alice1->node->state_dir, "certificate.pem");
  const char *mallory = hark_identity_get_fingerprint(key);
  gint64 old = now - HARK_PRESENCE_LIFETIME_S - 3600;
  /* (a) alice's laptop, her certificate, signed with mallory's key: forged. */
  g_autoptr(GBytes) a = signed_record("alice", key, devices[0], alice_cert, now);
  g_ptr_array_add(forged, gi_record("alice", devices[0], now, a));
  /* (b) under alice's name with mallory's certificate: foreign. */
  g_autoptr(GBytes) b = signed_record("alice", key, NULL, own_cert, now);
  g_ptr_array_add(forged, gi_record("alice", mallory, now, b));
  /* (b') mallory's own, valid record filed under alice's key: mismatched. */
  g_autoptr(GBytes) own = signed_record("mallory", key, NULL, own_cert, now);
  g_ptr_array_add(forged, gi_record("alice", mallory, now, own));
  g_autoptr(GPtrArray) timed = g_ptr_array_new_with_free_func((GDestroyNotify)hark_gi_record_free);
  /* (c) alice's own key, as a replay: dated past the records' life, dated an hour ahead,
   * and an old one the engine is told is new (its blob is expired). */
  g_autoptr(GBytes) stale = signed_record("alice", alice_key, NULL, alice_cert, old);
  g_autoptr(GBytes) ahead = signed_record("alice", alice_key, NULL, alice_cert, now + 3600);
  g_ptr_array_add(timed, gi_record("alice", devices[0], old, stale));
  g_ptr_array_add(timed, gi_record("alice", devices[0], now + 3600, ahead));
  g_ptr_array_add(timed, gi_record("alice", devices[0], now, stale));
  /* (d) a blob that is no signed record, and a record filed under bob's key. */
  static const char junk[] = "not a record";
  g_autoptr(GBytes) junk_blob = g_bytes_new_static(junk, sizeof junk);
  g_ptr_array_add(timed, gi_record("alice", mallory, now, junk_blob));
  g_ptr_array_add(timed, gi_record("bob", mallory, now, own));

  Refusals before1 = { 0 };
  refusals_read(lab.sn[0], &before1);
  gint64 records_before[NSN], forged_before[NSN];
  for (guint i = 0; i < NSN; i++) {
    records_before[i] = sn_stat(lab.sn[i], "gi", "records");
    forged_before[i] = sn_stat(lab.sn[i], "gi", "forged");
  }

  HarkGiId alice_id;
  hark_gi_id_for_user("alice", &alice_id);
  /* A REPLICA (SN1 is among the closest to alice's key in every view of five SNs), then a
   * STORE with hops left (SN1 checks it before it would route it on), each with every
   * record. */
  guint8 kinds[] = { HARK_GI_REPLICA, HARK_GI_STORE };
  for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
    HarkGiMessage msg;
    hark_gi_message_init(&msg, kinds[k], 0x7e57000 + k, &alice_id);
    msg.ttl = kinds[k] == HARK_GI_STORE ? 8 : 0;
    for (guint i = 0; i < forged->len; i++)
      g_ptr_array_add(msg.records, hark_gi_record_copy(forged->pdata[i]));
    for (guint i = 0; i < timed->len; i++)
      g_ptr_array_add(msg.records, hark_gi_record_copy(timed->pdata[i]));
    hostile_send_gi(to_sn1.link, &msg);
    hark_gi_message_clear(&msg);
  }
  /* (d) a gi message whose key is 5 bytes, then an envelope that is no gi message. */
  static const guint8 short_key[5] = { 1, 2, 3, 4, 5 };
  hark_link_send(
    to_sn1.link, HARK_MSG_DIR_STRATEGY, hostile_ids++,
    g_variant_new("(sv)", "gi",
                  g_variant_new("(yyt@ayyya(ayay)a(aysxay))", HARK_GI_STORE, 0, (guint64)1,
                                g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, short_key, 5, 1), 0,
                                8, NULL, NULL)),
    NULL);
  hark_link_send(to_sn1.link, HARK_MSG_DIR_STRATEGY, hostile_ids++,
                 g_variant_new("(sv)", "gi", g_variant_new_string("STORE alice")), NULL);
  g_autoptr(JsonObject) taken =
    wait_until(lab.sn[0], "directory", took_the_last, &before1, "through the attack");
  HARK_REQUIRE(taken != NULL);

  Refusals after1 = { 0 };
  refusals_read(lab.sn[0], &after1);
  /* Twice (REPLICA and STORE) each: refused before verify for their time (2) or key (1);
   * refused by verify: a, b, b', the old blob told as new, the junk (5). */
  g_assert_cmpint(after1.stale, ==, before1.stale + 2 * 2);
  g_assert_cmpint(after1.misfiled, ==, before1.misfiled + 2 * 1);
  g_assert_cmpint(after1.forged, ==, before1.forged + 2 * 5);
  g_assert_cmpint(after1.mismatched, ==, before1.mismatched + 2 * 1);
  g_assert_cmpint(after1.records_forged, ==, before1.records_forged + 2 * 1);
  g_assert_cmpint(after1.records_foreign, ==, before1.records_foreign + 2 * 1);
  g_assert_cmpint(after1.records_expired, ==, before1.records_expired + 2 * 1);
  /* The STORE was refused whole where it arrived, before it could be forwarded (each SN
   * on a STORE's path checks it), and answered: refused. */
  g_assert_cmpint(after1.refused_stores, ==, before1.refused_stores + 1);
  for (guint i = 1; i < NSN; i++)
    g_assert_cmpint(sn_stat(lab.sn[i], "gi", "forged"), ==, forged_before[i]);
  HARK_REQUIRE(hark_test_wait_for(stores_refused, &to_sn1, hark_test_timeout(5000)));
  g_assert_cmpuint(to_sn1.refused_stores, ==, 1);

  /* (e) The SNs route lookups for alice to mallory when it is their closest contact to
   * her key: it answers them with its forged records, and sends each SN answers to
   * requests it was not asked (the ids of those it saw, a made-up one). bob's search
   * still finds alice's two devices and no other. */
  assert_bob_finds_only(&lab, devices);
  Hostile *both[] = { &to_sn1, &to_sn3 };
  for (guint i = 0; i < G_N_ELEMENTS(both); i++) {
    for (guint j = 0; j < both[i]->requests->len; j++)
      hostile_answer(both[i], g_array_index(both[i]->requests, guint64, j), &alice_id);
    hostile_answer(both[i], 0x5eed, &alice_id);
  }
  assert_bob_finds_only(&lab, devices);
  g_test_message("mallory was asked %u lookups by SN1, %u by SN3", to_sn1.asked, to_sn3.asked);
  /* No SN keeps a forged record: what each stores is what it stored before. */
  for (guint i = 0; i < NSN; i++)
    g_assert_cmpint(sn_stat(lab.sn[i], "gi", "records"), ==, records_before[i]);
  lab_down(&lab);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, CASE_MS);
  hark_test_add_isolated_func("/directory-gi/gi", test_gi);
  hark_test_add_isolated_func("/directory-gi/flood", test_flood);
  hark_test_add_isolated_func("/directory-gi/known", test_known_from_login_server);
  hark_test_add_isolated_func("/directory-gi/forged-store", test_forged_store);
  return g_test_run();
}
