/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-peers.c: a malicious super node and hostile SN peers (cases of test-overlay,
 * each with a lab of its own: overlay-lab.h). An SN built in this process redirects a
 * client to a thousand SNs and sends lists of bad and made-up hosts; a verified SN peer
 * floods a real SN with SN_LISTs; a node with an ordinary certificate claims to be an
 * SN; a verified SN device asks for STUN answers to addresses no SN may send to, and
 * over many links at once. */
#include "overlay-cases.h"
#include "overlay-lab.h"
#include "hostile-peer.h"

#include "link-private.h"
#include "hark/hark.h"

#include <hark/certificate.h>
#include <hark/identity.h>

#include <glib/gstdio.h>
#include <string.h>

#define EVIL_HOST 40
#define VICTIM_HOST 77
#define REDIRECT_ENTRIES 1000
#define SN_LISTS 14

/* An SN built in this process on libhark's links, with a certificate of its own test CA
 * (the client pins that CA): its first JOIN gets a REDIRECT naming REDIRECT_ENTRIES
 * SNs at a victim, the next a JOIN_OK whose list holds bad host strings, then
 * SN_LISTS SN_LISTs of fresh names. */
typedef struct {
  HarkTestNet *net; /* its links go there */
  const char *lab_net;
  guint joins;
  guint lists_sent;
  gboolean ponged; /* the client answered the PING sent after the lists: it read them */
} EvilSn;

/* SN entries at <lab_net>.VICTIM_HOST, ports 20000 + first on, after bad host strings. */
static GVariant *
evil_list(const char *lab_net, guint first, guint count, gboolean bad_hosts)
{
  static const char *const bad[] = { "localhost",   "0",         "-",
                                     "0.0.0.0",     "224.0.0.1", "255.255.255.255",
                                     "169.254.1.1", "::1x",      "sn\nforged" };
  GVariantBuilder builder;
  g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sqas)"));
  const char *const tcp_only[] = { "tcp", NULL };
  for (guint i = 0; bad_hosts && i < G_N_ELEMENTS(bad); i++)
    g_variant_builder_add(&builder, "(sq^as)", bad[i], OLAB_PORT, tcp_only);
  for (guint i = 0; i < count; i++) {
    g_autofree char *host = g_strdup_printf("%s.%u", lab_net, VICTIM_HOST);
    g_variant_builder_add(&builder, "(sq^as)", host, (guint16)(20000 + first + i), tcp_only);
  }
  return g_variant_builder_end(&builder);
}

static void
evil_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  EvilSn *evil = data;
  if (message->type == HARK_MSG_PONG)
    evil->ponged = TRUE;
  if (message->type != HARK_MSG_JOIN)
    return;
  if (evil->joins++ == 0) {
    hark_link_send(
      link, HARK_MSG_REDIRECT, message->id,
      g_variant_new("(@a(sqas))", evil_list(evil->lab_net, 0, REDIRECT_ENTRIES, FALSE)), NULL);
    return;
  }
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string("evil\nforged line"));
  g_variant_builder_add(&dict, "{sv}", "keepalive", g_variant_new_uint32(30));
  g_variant_builder_add(&dict, "{sv}", "authenticated", g_variant_new_boolean(TRUE));
  g_variant_builder_add(&dict, "{sv}", "sns", evil_list(evil->lab_net, 5000, 4, TRUE));
  hark_link_send(link, HARK_MSG_JOIN_OK, message->id, g_variant_new("(a{sv})", &dict), NULL);
  for (guint i = 0; i < SN_LISTS; i++, evil->lists_sent++)
    hark_link_send(
      link, HARK_MSG_SN_LIST, 0,
      g_variant_new("(@a(sqas))", evil_list(evil->lab_net, 10000 + i * 16, 16, i == 0)), NULL);
  hark_link_send(link, HARK_MSG_PING, 1, g_variant_new("(t)", (guint64)0), NULL);
}

static const HarkLinkHandler evil_handler = {
  .message = evil_message,
  .closed = hark_test_peer_closed,
};

static void
evil_accepted(HarkLink *link, gpointer data)
{
  EvilSn *evil = data;
  hark_link_set_handler(link, &evil_handler, data);
  g_ptr_array_add(evil->net->links, link);
}

typedef struct {
  HarkTestNode *node;
  const char *text;
} LogWait;

static gboolean
log_has(gpointer data)
{
  LogWait *wait = data;
  g_autofree char *log = hark_test_node_read_stderr(wait->node);
  return log != NULL && strstr(log, wait->text) != NULL;
}

/* How many different "host:port" follow text in the log. */
static guint
count_distinct_after(const char *log, const char *text)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (const char *p = strstr(log, text); p != NULL; p = strstr(p + 1, text)) {
    const char *start = p + strlen(text);
    g_hash_table_add(seen, g_strndup(start, strcspn(start, " \n")));
  }
  return g_hash_table_size(seen);
}

static void
test_malicious_sn(OLab *lab)
{
  /* Cleared however the case returns: its links' handler points at evil, below. */
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-evil-XXXXXX");
  EvilSn evil = { .net = &net, .lab_net = lab->net };
  HarkNode *sn = hark_test_net_node(&net, "evil-sn", net.ca, net.ca,
                                    "plugins = { load = ( { name = \"tcp\"; } ); };\n");
  hark_link_set_network_handlers(sn, evil_accepted, NULL, &evil);
  HarkRegistration *tcp = hark_test_transport(sn, "tcp");
  const HarkTransportInterface *iface = tcp->iface;
  g_autofree char *evil_host = olab_host(lab, EVIL_HOST);
  g_autoptr(GError) error = NULL;
  HARK_REQUIRE(iface->listen(tcp->instance, evil_host, OLAB_PORT, &error));

  g_autofree char *config = g_strdup_printf(
    "node: { name = \"victim-of-evil\"; supernode = false; };\n"
    "plugins: { load = ( { name = \"tcp\"; }, { name = \"ctl\"; } ); };\n"
    "network: { keepalive = 30; allow_loopback = true; join_race_delay_ms = 100;\n"
    "  bootstrap = ( { host = \"%s\"; port = %u; transports = [ \"tcp\" ]; } ); };\n"
    "login: { url = \"https://127.0.0.1:9/\"; ca = \"%s\"; };\n",
    evil_host, OLAB_PORT, net.ca_path);
  g_autoptr(LabNode) client = lab_node_new("victim-of-evil", config);
  HARK_REQUIRE(lab_node_start(client));
  LogWait attached = { client->node, "joined: attached" };
  HARK_REQUIRE(hark_test_wait_for(log_has, &attached, OLAB_JOIN_MS));
  /* Every SN_LIST sent is read: they came before the PING it answered. */
  HARK_REQUIRE(hark_test_wait_for_flag(&evil.ponged, 5000));
  g_autoptr(JsonObject) overlay = olab_overlay_of(client);
  g_autofree char *log = hark_test_node_read_stderr(client->node);

  /* The REDIRECT of 1,000 SNs: at most 16 connection attempts at the victim. */
  g_autofree char *victim = g_strdup_printf("join: tcp to %s.%u:", lab->net, VICTIM_HOST);
  guint attempts = count_distinct_after(log, victim);
  g_test_message("%u SNs tried after a REDIRECT of %u", attempts, REDIRECT_ENTRIES);
  g_assert_cmpuint(attempts, >=, 1);
  g_assert_cmpuint(attempts, <=, 16);
  /* No log line carries the peer's lists or a forged line. */
  g_auto(GStrv) lines = g_strsplit(log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_assert_cmpuint(strlen(lines[i]), <, 1000);
    g_assert_false(g_str_has_prefix(lines[i], "forged"));
  }
  g_assert_nonnull(strstr(log, "evil\\x0aforged line"));

  /* The host cache: no bad host string, at most 16 entries from that SN, the bootstrap
   * SN still there and first. */
  g_autofree char *cache_path = g_build_filename(client->node->state_dir, "hostcache.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  HARK_REQUIRE(json_parser_load_from_file(parser, cache_path, NULL));
  JsonArray *entries =
    json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)), "entries");
  guint learnt = 0;
  for (guint i = 0; i < json_array_get_length(entries); i++) {
    JsonObject *entry = json_array_get_object_element(entries, i);
    const char *host = json_object_get_string_member(entry, "host");
    g_assert_true(g_str_has_prefix(host, lab->net));
    if (json_object_has_member(entry, "learnt_from"))
      learnt++;
  }
  g_assert_cmpuint(learnt, <=, 16);
  g_assert_cmpuint(json_array_get_length(entries), ==, learnt + 1);
  g_assert_cmpuint(evil.lists_sent, ==, SN_LISTS);
  g_assert_nonnull(overlay);
  g_assert_cmpint(json_object_get_int_member(overlay, "host_cache"), <=, 17);

  g_clear_pointer(&client, lab_node_free);
  iface->stop_listening(tcp->instance);
}

/* An SN peer (certified by the lab's CA, built in this process) floods a real SN with
 * SN_LISTs of SNs that do not exist: the SN keeps at most 16 of them, keeps every SN it
 * knew, and hands none of them to a new client. */
typedef struct {
  gboolean joined;
  gboolean ponged;
} FloodingPeer;

static void
flooding_peer_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  FloodingPeer *peer = data;
  if (message->type == HARK_MSG_JOIN_OK)
    peer->joined = TRUE;
  else if (message->type == HARK_MSG_PONG)
    peer->ponged = TRUE;
}

static const HarkLinkHandler flooding_peer_handler = {
  .message = flooding_peer_message,
  .closed = hark_test_peer_closed,
};

/* host:port strings of an a(sqas). */
static GHashTable *
list_members(GVariant *list)
{
  GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (gsize i = 0; list != NULL && i < g_variant_n_children(list); i++) {
    const char *host;
    guint16 port;
    g_variant_get_child(list, i, "(&sq@as)", &host, &port, NULL);
    g_hash_table_add(set, g_strdup_printf("%s:%u", host, port));
  }
  return set;
}

static GHashTable *
cache_members(LabNode *node)
{
  g_autofree char *path = g_build_filename(node->node->state_dir, "hostcache.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  if (!json_parser_load_from_file(parser, path, NULL))
    return set;
  JsonArray *entries =
    json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)), "entries");
  for (guint i = 0; i < json_array_get_length(entries); i++) {
    JsonObject *entry = json_array_get_object_element(entries, i);
    g_hash_table_add(set, g_strdup_printf("%s:%" G_GINT64_FORMAT,
                                          json_object_get_string_member(entry, "host"),
                                          json_object_get_int_member(entry, "port")));
  }
  return set;
}

/* The SN lists the link named data among its SN links, verified (a link of its own to
 * the address that link announced showed the same key). */
static gboolean
sn_peer_verified(JsonObject *overlay, gconstpointer data)
{
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  for (guint i = 0; links != NULL && i < json_array_get_length(links); i++) {
    JsonObject *link = json_array_get_object_element(links, i);
    if (g_strcmp0(olab_member_string(link, "name"), data) == 0)
      return json_object_get_boolean_member_with_default(link, "verified", FALSE);
  }
  return FALSE;
}

/* An SN peer the SN verified (it listens at the address it announces, with the lab CA's
 * certificate) floods it with SN_LISTs of SNs that do not exist: the SN keeps at most 16
 * of them, loses none it knew, and names none to a new client. */
static void
test_sn_list_flood(OLab *lab)
{
  g_autofree char *only = NULL;
  g_autoptr(LabNode) sn = olab_case_sn(lab, "sn-listening", 37, "udp tcp", NULL, "tcp", &only);
  HARK_REQUIRE(sn != NULL);
  g_autofree char *sn_host = olab_host(lab, 37);
  g_autoptr(GHashTable) known_before = cache_members(sn);
  HARK_REQUIRE(g_hash_table_size(known_before) >= lab->n_sns);

  /* Cleared however the case returns: its link's handler points at peer, below. */
  g_auto(HarkTestNet) net = { 0 };
  hark_test_net_init(&net, "hark-peer-XXXXXX");
  g_autoptr(HarkCa) lab_ca = hark_test_peer_ca(lab->login->node->node->state_dir);
  HARK_REQUIRE(lab_ca != NULL);
  HarkNode *node = hark_test_peer_node(&net, "flooding-peer", lab_ca);
  /* Where it says it is: the SN opens a link there to check the claim. */
  g_autofree char *announced = olab_host(lab, 41);
  HARK_REQUIRE(hark_test_peer_listen(node, announced, OLAB_PORT));
  FloodingPeer peer = { 0 };
  HarkLink *link =
    hark_test_peer_open(&net, node, sn_host, OLAB_PORT, &flooding_peer_handler, &peer);
  HARK_REQUIRE(link != NULL);
  {
    hark_test_peer_join(link, "flooding-peer", announced, OLAB_PORT);
    HARK_REQUIRE(hark_test_wait_for_flag(&peer.joined, 5000));
    /* Until verified, its SN_LISTs would be dropped whole: flood once it is an SN. */
    g_autoptr(JsonObject) verified =
      lab_wait_overlay(sn, sn_peer_verified, "flooding-peer", 5000, "verifying flooding-peer");
    HARK_REQUIRE(verified != NULL);
    for (guint i = 0; i < SN_LISTS; i++)
      hark_link_send(link, HARK_MSG_SN_LIST, 2 + i,
                     g_variant_new("(@a(sqas))", evil_list(lab->net, 30000 + i * 16, 16, TRUE)),
                     NULL);
    hark_link_send(link, HARK_MSG_PING, 99, g_variant_new("(t)", (guint64)0), NULL);
    HARK_REQUIRE(hark_test_wait_for_flag(&peer.ponged, 5000));
  }

  /* At most 16 names from that peer, none pushed out. */
  g_autoptr(GHashTable) known_after = cache_members(sn);
  g_autofree char *flooded = g_strdup_printf("%s.%u:", lab->net, VICTIM_HOST);
  guint from_flood = 0;
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, known_after);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    from_flood += g_str_has_prefix(key, flooded);
  g_test_message("host cache: %u entries before %u SN_LISTs of 16, %u after, %u of the flood's",
                 g_hash_table_size(known_before), SN_LISTS, g_hash_table_size(known_after),
                 from_flood);
  g_assert_cmpuint(from_flood, >=, 1);
  g_assert_cmpuint(from_flood, <=, 16);
  g_hash_table_iter_init(&iter, known_before);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    g_assert_true(g_hash_table_contains(known_after, key));
  g_hash_table_iter_init(&iter, known_after);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    g_assert_true(g_str_has_prefix(key, lab->net));

  /* A new client's JOIN_OK names none of them: they never answered. */
  g_autoptr(GIOStream) client = olab_tls_to(sn_host, OLAB_PORT, NULL);
  HARK_REQUIRE(client != NULL);
  olab_send_message(client, HARK_MSG_JOIN,
                    g_variant_new_parsed("({'name': <'fresh'>, 'as': <'client'>},)"));
  g_autoptr(HarkWireMessage) answer = olab_read_message(client);
  g_assert_nonnull(answer);
  g_assert_cmpuint(answer != NULL ? answer->type : 0, ==, HARK_MSG_JOIN_OK);
  if (answer != NULL && answer->type == HARK_MSG_JOIN_OK) {
    g_autoptr(GVariant) dict = g_variant_get_child_value(answer->body, 0);
    g_autoptr(GVariant) sns = g_variant_lookup_value(dict, "sns", G_VARIANT_TYPE("a(sqas)"));
    g_autoptr(GHashTable) handed = list_members(sns);
    g_test_message("a new client is told of %u SNs", g_hash_table_size(handed));
    g_hash_table_iter_init(&iter, handed);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
      g_autofree char *victim = g_strdup_printf("%s.%u:", lab->net, VICTIM_HOST);
      g_assert_false(g_str_has_prefix(key, victim));
    }
  }
}

/* ---- nodes that claim to be SNs ------------------------------------------------------- */

/* NULL after failing the case: what could not be made, and why. */
static char *
pem_failed(const char *what, const GError *error)
{
  g_test_fail_printf("cannot make %s: %s", what, error != NULL ? error->message : "?");
  return NULL;
}

/* Certificate and key (PEM, one text) of a new device of user, issued by the lab's CA as
 * the login server issues one to anybody who registers: an ordinary device. NULL (the
 * case failed) when that fails. */
static char *
ordinary_device_pem(OLab *lab, const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("hark-claim-XXXXXX", &error);
  if (dir == NULL)
    return pem_failed("a directory", error);
  g_autofree char *key_path = g_build_filename(dir, "identity.pem", NULL);
  g_autoptr(HarkIdentity) identity = hark_identity_load_or_create(key_path, NULL, &error);
  g_autofree char *key = NULL;
  if (identity != NULL)
    g_file_get_contents(key_path, &key, NULL, &error);
  g_unlink(key_path);
  g_rmdir(dir);
  if (key == NULL)
    return pem_failed("a key", error);
  g_autofree char *public_pem = hark_identity_get_public_pem(identity);
  g_autofree char *ca_dir = g_build_filename(lab->login->node->node->state_dir, "ca", NULL);
  g_autoptr(HarkCa) ca = hark_ca_load_or_create(ca_dir, "unused", &error);
  if (ca == NULL)
    return pem_failed("the lab's CA", error);
  g_autofree char *account_id = hark_account_id_new(&error);
  if (account_id == NULL)
    return pem_failed("an account id", error);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autofree char *cert =
    hark_ca_issue_device(ca, user, account_id, public_pem, now - 60, 3600, &error);
  if (cert == NULL)
    return pem_failed("a device certificate", error);
  return g_strconcat(cert, key, NULL);
}

/* The certificate and key of a running node (the test then is that device); NULL (the
 * case failed) when they cannot be read. */
static char *
device_pem_of(LabNode *node)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *cert_path = g_build_filename(node->node->state_dir, "certificate.pem", NULL);
  g_autofree char *key_path = g_build_filename(node->node->state_dir, "identity.pem", NULL);
  g_autofree char *cert = NULL, *key = NULL;
  if (!g_file_get_contents(cert_path, &cert, NULL, &error) ||
      !g_file_get_contents(key_path, &key, NULL, &error))
    return pem_failed(node->name, error);
  return g_strconcat(cert, key, NULL);
}

/* JOIN as a peer that claims to be the SN at claimed_host (the lab's ports); the type of
 * the answer (0: none, or no stream). */
static guint16
join_as_peer(GIOStream *stream, const char *name, const char *claimed_host)
{
  if (stream == NULL)
    return 0;
  olab_send_message(stream, HARK_MSG_JOIN,
                    g_variant_new_parsed("({'name': <%s>, 'as': <'peer'>, 'host': <%s>, "
                                         "'port': <%q>, 'stun_alt_port': <%q>, "
                                         "'transports': <['udp', 'tcp']>},)",
                                         name, claimed_host, (guint16)OLAB_PORT,
                                         (guint16)(OLAB_PORT + 1)));
  g_autoptr(HarkWireMessage) answer = olab_read_message(stream);
  return answer != NULL ? answer->type : 0;
}

/* STUN_RELAY: "send a binding success to host:port". */
static void
send_relay(GIOStream *stream, const char *host, guint16 port)
{
  guint8 tid[12];
  for (guint i = 0; i < sizeof tid; i++)
    tid[i] = (guint8)g_random_int();
  GVariant *id = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, tid, sizeof tid, 1);
  olab_send_message(stream, HARK_MSG_STUN_RELAY,
                    g_variant_new("(sqqb@ay)", host, port, (guint16)0, FALSE, id));
}

/* The sn_links entry of the overlay named name, or NULL. */
static JsonObject *
sn_link_named(JsonObject *overlay, const char *name)
{
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  for (guint i = 0; links != NULL && i < json_array_get_length(links); i++) {
    JsonObject *link = json_array_get_object_element(links, i);
    if (g_strcmp0(olab_member_string(link, "name"), name) == 0)
      return link;
  }
  return NULL;
}

static gboolean
link_verified(JsonObject *link)
{
  return link != NULL && json_object_get_boolean_member_with_default(link, "verified", FALSE);
}

/* Are the links named prefix1, prefix2, ... (up to data's count) that the SN lists all
 * verified, and at least one? */
typedef struct {
  const char *prefix;
  guint count;
} NamedLinks;

static gboolean
links_verified(JsonObject *overlay, gconstpointer data)
{
  const NamedLinks *want = data;
  guint seen = 0;
  for (guint i = 1; i <= want->count; i++) {
    g_autofree char *name = g_strdup_printf("%s%u", want->prefix, i);
    JsonObject *link = sn_link_named(overlay, name);
    if (link != NULL && !link_verified(link))
      return FALSE;
    seen += link != NULL;
  }
  return seen > 0;
}

static gboolean
link_gone(JsonObject *overlay, gconstpointer name)
{
  return sn_link_named(overlay, name) == NULL;
}

static gint64
relays_of(JsonObject *overlay)
{
  return olab_dropped(overlay, "stun_relay_served") + olab_dropped(overlay, "stun_relay_refused");
}

/* stun_relay_served + stun_relay_refused reached data's value. */
static gboolean
relays_counted(JsonObject *overlay, gconstpointer data)
{
  return relays_of(overlay) >= *(const gint64 *)data;
}

/* The SN's overlay once n more STUN_RELAYs than in before are counted (served or
 * refused); NULL (the case failed) otherwise. */
static JsonObject *
wait_relays(LabNode *sn, JsonObject *before, gint64 n)
{
  gint64 counted = relays_of(before) + n;
  return lab_wait_overlay(sn, relays_counted, &counted, 5000, "relays counted");
}

/* A node with an ordinary certificate claims to be an SN at an address where a port is
 * open but no SN answers (the lab's lowest address, so it would be the RFC 5780
 * partner): it is not taken as an SN (no STUN_RELAY served, never the partner), and
 * once the SN's own link there fails, the claim is refused and the link closed. So is
 * a claim of a real SN's address. */
static void
test_sn_claim_unverified(OLab *lab)
{
  LabNode *sn = lab->sns[0];
  g_autofree char *host = olab_sn_address(lab, 0);
  g_autofree char *claimed = olab_host(lab, 10);
  g_autoptr(GSocketListener) silent = g_socket_listener_new();
  g_autoptr(GInetAddress) claimed_ip = g_inet_address_new_from_string(claimed);
  g_autoptr(GSocketAddress) claimed_at = g_inet_socket_address_new(claimed_ip, OLAB_PORT);
  HARK_REQUIRE(g_socket_listener_add_address(silent, claimed_at, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL, NULL, NULL));
  g_autofree char *pem = ordinary_device_pem(lab, "mallory");
  HARK_REQUIRE(pem != NULL);
  g_autoptr(JsonObject) before = olab_overlay_of(sn);
  HARK_REQUIRE(before != NULL);

  g_autoptr(GIOStream) mallory = olab_tls_to(host, OLAB_PORT, pem);
  HARK_REQUIRE(join_as_peer(mallory, "mallory-sn", claimed) == HARK_MSG_JOIN_OK);
  for (guint i = 0; i < 5; i++)
    send_relay(mallory, "127.0.0.1", 9);
  g_autoptr(JsonObject) after = wait_relays(sn, before, 5);
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(olab_dropped(after, "stun_relay_served"), ==,
                  olab_dropped(before, "stun_relay_served"));
  g_assert_cmpint(olab_dropped(after, "stun_relay_refused"), ==,
                  olab_dropped(before, "stun_relay_refused") + 5);
  JsonObject *link = sn_link_named(after, "mallory-sn");
  g_assert_nonnull(link);
  g_assert_false(link_verified(link));
  JsonObject *stun = json_object_get_object_member(after, "stun");
  g_autofree char *fake_other = g_strdup_printf("%s:%u", claimed, OLAB_PORT + 1);
  g_assert_cmpstr(olab_member_string(stun, "other_address"), !=, fake_other);
  g_assert_cmpstr(olab_member_string(stun, "partner"), !=, "mallory-sn");

  /* The SN's link to the claimed address never finishes its handshake: refused, closed. */
  g_autoptr(HarkWireMessage) refusal = olab_read_message(mallory);
  g_assert_nonnull(refusal);
  g_assert_cmpuint(refusal != NULL ? refusal->type : 0, ==, HARK_MSG_ERROR);
  g_autoptr(HarkWireMessage) end = olab_read_message(mallory);
  g_assert_null(end);
  g_autoptr(JsonObject) closed = lab_wait_overlay(sn, link_gone, "mallory-sn", 5000, "closed");
  HARK_REQUIRE(closed != NULL);
  g_assert_cmpint(olab_dropped(closed, "sn_claims_refused"), ==,
                  olab_dropped(before, "sn_claims_refused") + 1);
  g_assert_cmpstr(
    olab_member_string(json_object_get_object_member(closed, "stun"), "other_address"), !=,
    fake_other);

  /* Claiming a real SN's address (sn2's): sn1's link there shows sn2's key, not this one. */
  g_autofree char *sn2 = olab_sn_address(lab, 1);
  g_autoptr(GIOStream) impostor = olab_tls_to(host, OLAB_PORT, pem);
  HARK_REQUIRE(join_as_peer(impostor, "impostor-sn", sn2) == HARK_MSG_JOIN_OK);
  g_autoptr(HarkWireMessage) refused = olab_read_message(impostor);
  g_assert_cmpuint(refused != NULL ? refused->type : 0, ==, HARK_MSG_ERROR);
  g_autoptr(JsonObject) last = lab_wait_overlay(sn, link_gone, "impostor-sn", 5000, "closed");
  HARK_REQUIRE(last != NULL);
  g_assert_cmpint(olab_dropped(last, "sn_claims_refused"), ==,
                  olab_dropped(before, "sn_claims_refused") + 2);
}

/* A verified SN device (the test holds sn2's certificate and key) asks sn1 for answers
 * to addresses no SN may send to: the unspecified, link-local, multicast and broadcast
 * addresses and sn1's own are refused; loopback is served here (network.allow_loopback
 * is set in this lab, the nodes all run on 127.x). */
static void
test_sn_relay_targets(OLab *lab)
{
  LabNode *sn = lab->sns[0];
  g_autofree char *host = olab_sn_address(lab, 0);
  g_autofree char *twin_of = olab_sn_address(lab, 1);
  g_autofree char *pem = device_pem_of(lab->sns[1]);
  HARK_REQUIRE(pem != NULL);
  g_autoptr(GIOStream) twin = olab_tls_to(host, OLAB_PORT, pem);
  HARK_REQUIRE(join_as_peer(twin, "twin1", twin_of) == HARK_MSG_JOIN_OK);
  NamedLinks one = { "twin", 1 };
  g_autoptr(JsonObject) before = lab_wait_overlay(sn, links_verified, &one, 5000, "verified");
  HARK_REQUIRE(before != NULL);
  static const char *const refused[] = {
    "0.0.0.0", "169.254.10.20", "224.0.0.1",          "255.255.255.255",
    "fe80::1", "ff02::1",       "::ffff:169.254.1.1", NULL
  };
  for (guint i = 0; refused[i] != NULL; i++)
    send_relay(twin, refused[i], 9);
  send_relay(twin, host, 9); /* sn1 itself */
  send_relay(twin, "127.0.0.1", 9);
  gint64 n = g_strv_length((char **)refused) + 2;
  g_autoptr(JsonObject) after = wait_relays(sn, before, n);
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(olab_dropped(after, "stun_relay_served"), ==,
                  olab_dropped(before, "stun_relay_served") + 1);
  g_assert_cmpint(olab_dropped(after, "stun_relay_refused"), ==,
                  olab_dropped(before, "stun_relay_refused") + n - 1);
  g_clear_object(&twin);
  g_autoptr(JsonObject) gone = lab_wait_overlay(sn, link_gone, "twin1", 5000, "closed");
  g_assert_nonnull(gone);
}

/* The same with network.allow_loopback false, on an SN of its own (bootstrapped with
 * sn1 alone, so it links to sn1 itself and so knows sn1's key at sn1's address):
 * loopback, as IPv4, IPv6 and IPv4-mapped, and link-local addresses are refused; an
 * ordinary address is served. */
static void
test_sn_relay_strict(OLab *lab)
{
  g_autofree char *host = olab_host(lab, 36);
  g_autofree char *bootstrap = olab_bootstrap(lab);
  g_autofree char *loose = olab_sn_config(lab, "sn-strict", host, "udp tcp", bootstrap, NULL);
  g_autoptr(GString) config = g_string_new(loose);
  HARK_REQUIRE(g_string_replace(config, "allow_loopback = true", "allow_loopback = false", 0) == 1);
  g_autoptr(LabNode) sn = lab_node_new("sn-strict", config->str);
  HARK_REQUIRE(lab_node_start(sn));
  HARK_REQUIRE(lab_register_and_login(sn, "sn-strict-user"));
  g_autoptr(JsonObject) serving = lab_wait_overlay(sn, olab_is_super, GUINT_TO_POINTER(1),
                                                   OLAB_JOIN_MS, "serving, linked to sn1");
  HARK_REQUIRE(serving != NULL);

  g_autofree char *twin_of = olab_sn_address(lab, 0);
  g_autofree char *pem = device_pem_of(lab->sns[0]);
  HARK_REQUIRE(pem != NULL);
  g_autoptr(GIOStream) twin = olab_tls_to(host, OLAB_PORT, pem);
  HARK_REQUIRE(join_as_peer(twin, "strict-twin1", twin_of) == HARK_MSG_JOIN_OK);
  NamedLinks one = { "strict-twin", 1 };
  g_autoptr(JsonObject) before = lab_wait_overlay(sn, links_verified, &one, 5000, "verified");
  HARK_REQUIRE(before != NULL);
  static const char *const refused[] = { "127.0.0.1", "::1",         "::ffff:127.0.0.1",
                                         "127.1.2.3", "169.254.1.1", NULL };
  for (guint i = 0; refused[i] != NULL; i++)
    send_relay(twin, refused[i], 9);
  send_relay(twin, host, 9); /* itself */
  send_relay(twin, "192.0.2.1", 9); /* TEST-NET-1: served (nothing leaves a loopback socket) */
  gint64 n = g_strv_length((char **)refused) + 2;
  g_autoptr(JsonObject) after = wait_relays(sn, before, n);
  HARK_REQUIRE(after != NULL);
  g_assert_cmpint(olab_dropped(after, "stun_relay_served"), ==,
                  olab_dropped(before, "stun_relay_served") + 1);
  g_assert_cmpint(olab_dropped(after, "stun_relay_refused"), ==,
                  olab_dropped(before, "stun_relay_refused") + n - 1);
}

/* Five links from one verified SN device (sn2's certificate and key again): links past
 * the per-device limit are refused, and the ones taken share one STUN_RELAY budget
 * (20 a second, burst 40), not one each. */
static void
test_sn_relay_budget(OLab *lab)
{
  LabNode *sn = lab->sns[0];
  g_autofree char *host = olab_sn_address(lab, 0);
  g_autofree char *twin_of = olab_sn_address(lab, 1);
  g_autofree char *pem = device_pem_of(lab->sns[1]);
  HARK_REQUIRE(pem != NULL);
  g_autoptr(GSocket) target =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_from_string("127.0.0.1");
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
  HARK_REQUIRE(g_socket_bind(target, any, FALSE, NULL));
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(target, NULL);
  guint16 target_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
  g_autoptr(JsonObject) start = olab_overlay_of(sn);
  HARK_REQUIRE(start != NULL);

  GIOStream *links[5] = { NULL };
  gboolean taken[5] = { FALSE };
  guint n_taken = 0;
  for (guint i = 0; i < 5; i++) {
    g_autofree char *name = g_strdup_printf("budget%u", i + 1);
    links[i] = olab_tls_to(host, OLAB_PORT, pem);
    taken[i] = join_as_peer(links[i], name, twin_of) == HARK_MSG_JOIN_OK;
    n_taken += taken[i];
  }
  /* sn2's own link to sn1 counts too: at most 4 a device. */
  g_assert_cmpuint(n_taken, >=, 3);
  g_assert_cmpuint(n_taken, <=, 4);
  NamedLinks five_links = { "budget", 5 };
  g_autoptr(JsonObject) before =
    lab_wait_overlay(sn, links_verified, &five_links, 5000, "verified");
  HARK_REQUIRE(before != NULL);
  g_assert_cmpint(olab_dropped(before, "sn_claims_refused"), ==,
                  olab_dropped(start, "sn_claims_refused") + 5 - n_taken);

  gint64 t0 = g_get_monotonic_time();
  guint sent = 0;
  for (guint i = 0; i < 5; i++)
    for (guint k = 0; taken[i] && k < 40; k++, sent++)
      send_relay(links[i], "127.0.0.1", target_port);
  g_autoptr(JsonObject) after = wait_relays(sn, before, sent);
  HARK_REQUIRE(after != NULL);
  double seconds = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
  gint64 served =
    olab_dropped(after, "stun_relay_served") - olab_dropped(before, "stun_relay_served");
  g_test_message("%u STUN_RELAYs over %u links in %.2f s: %" G_GINT64_FORMAT " served", sent,
                 n_taken, seconds, served);
  g_assert_cmpint(served, >=, 1);
  g_assert_cmpint(served, <=, 40 + (gint64)(20 * seconds) + 1);
  /* What was served arrived, from sn1. */
  guint8 buffer[256];
  g_socket_set_timeout(target, hark_test_timeout(5000) / 1000);
  gssize got = g_socket_receive(target, (char *)buffer, sizeof buffer, NULL, NULL);
  g_assert_cmpint(got, >=, 20);
  g_assert_cmpint(buffer[0] << 8 | buffer[1], ==, 0x0101); /* binding success */
  for (guint i = 0; i < 5; i++)
    g_clear_object(&links[i]);
}

static const OLabCase peers_cases[] = {
  { "/overlay/malicious-sn", test_malicious_sn, .sns = 0, .no_login = TRUE },
  { "/overlay/sn-list-flood", test_sn_list_flood, .sns = 1 },
  { "/overlay/sn-claim-unverified", test_sn_claim_unverified, .sns = 2 },
  { "/overlay/sn-relay-targets", test_sn_relay_targets, .sns = 2 },
  { "/overlay/sn-relay-strict", test_sn_relay_strict, .sns = 1 },
  { "/overlay/sn-relay-budget", test_sn_relay_budget, .sns = 2 },
};

void
overlay_peers_add_cases(void)
{
  olab_add_cases(peers_cases, G_N_ELEMENTS(peers_cases));
}
