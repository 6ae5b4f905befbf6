/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gi engine (plugins/search-gi): ids, the message codec, the routing table, recursive
 * routing, replication after leaves, expiry, refusal of forged records and of replicas a
 * far SN pushes, lookups when the closest SN has left; and a 100-SN simulation with churn
 * (bench/directory-sim.c) that must find every user. The engines run on a tiny fabric
 * here: a queue of messages delivered in order, and time passed in by hand. */
#include "directory-sim.h"
#include "flood-engine.h"
#include "gi-engine.h"

#include <string.h>

#define HOUR_US ((gint64)3600 * G_USEC_PER_SEC)
#define T0 (100 * HOUR_US)

typedef struct {
  guint from, to;
  GBytes *msg;
} Packet;

typedef struct _Net Net;
typedef struct {
  Net *net;
  guint index;
  HarkGiId id;
  HarkGiEngine *engine;
  gboolean alive;
  guint64 stores; /* STOREs it sent */
} Node;

struct _Net {
  GArray *nodes; /* Node, fixed size */
  GQueue queue; /* Packet* */
  GHashTable *down; /* (sender << 16 | dead) reports still to deliver */
  gint64 now;
  guint64 messages;
  /* the last lookup's outcome */
  gboolean done, ok;
  guint found, hops;
  guint64 request;
};

static Node *
node(Net *net, guint i)
{
  return &g_array_index(net->nodes, Node, i);
}

static Node *
node_by_id(Net *net, const HarkGiId *id)
{
  for (guint i = 0; i < net->nodes->len; i++)
    if (memcmp(node(net, i)->id.b, id->b, HARK_GI_ID_LEN) == 0)
      return node(net, i);
  return NULL;
}

static void
net_send(gpointer user, const HarkGiId *peer, GBytes *addr, GBytes *message)
{
  Node *from = user;
  Node *to = node_by_id(from->net, peer);
  g_assert_nonnull(to);
  Packet *p = g_new0(Packet, 1);
  p->from = from->index;
  p->to = to->index;
  p->msg = g_bytes_ref(message);
  from->net->messages++;
  HarkGiMessage m;
  if (hark_gi_message_decode_bytes(message, &m, NULL)) {
    from->stores += m.kind == HARK_GI_STORE;
    hark_gi_message_clear(&m);
  }
  g_queue_push_tail(&from->net->queue, p);
}

/* A record is "signed" when its blob starts with "signed:" (the real check is the
 * presence record's signature, decided outside the engine). */
static gboolean
net_verify(gpointer user, const HarkGiRecord *r)
{
  gsize len = 0;
  const char *blob = g_bytes_get_data(r->blob, &len);
  return len >= 7 && memcmp(blob, "signed:", 7) == 0;
}

static void
net_done(gpointer user, guint64 request, gboolean ok, GPtrArray *records, guint hops)
{
  Net *net = ((Node *)user)->net;
  net->done = TRUE;
  net->request = request;
  net->ok = ok;
  net->found = records != NULL ? records->len : 0;
  net->hops = hops;
}

/* Delivers everything queued; a packet for a node that left is lost and its sender is
 * told the link went down (as a closed TLS link tells it). */
static void
net_run(Net *net)
{
  Packet *p;
  while ((p = g_queue_pop_head(&net->queue)) != NULL) {
    Node *to = node(net, p->to), *from = node(net, p->from);
    if (to->alive)
      hark_gi_engine_receive(to->engine, &from->id, p->msg, net->now);
    else if (from->alive)
      hark_gi_engine_peer_down(from->engine, &to->id, net->now);
    g_bytes_unref(p->msg);
    g_free(p);
  }
}

static void
net_tick(Net *net)
{
  for (guint i = 0; i < net->nodes->len; i++)
    if (node(net, i)->alive)
      hark_gi_engine_tick(node(net, i)->engine, net->now);
  net_run(net);
}

static Net *
net_new(guint n, const HarkGiParams *params)
{
  Net *net = g_new0(Net, 1);
  HarkGiCallbacks cb = { .send = net_send, .verify = net_verify, .done = net_done };
  net->nodes = g_array_sized_new(FALSE, TRUE, sizeof(Node), n);
  g_array_set_size(net->nodes, n);
  net->now = T0;
  g_queue_init(&net->queue);
  for (guint i = 0; i < n; i++) {
    Node *nd = node(net, i);
    guint32 raw[2] = { 0x5eed, i };
    nd->net = net;
    nd->index = i;
    nd->alive = TRUE;
    hark_gi_id_for_device_key((const guint8 *)raw, sizeof raw, &nd->id);
    nd->engine = hark_gi_engine_new(&nd->id, NULL, params, &cb, nd);
  }
  /* each joins through up to 2 that joined before, as an SN with a host cache does */
  for (guint i = 0; i < n; i++) {
    HarkGiContact known[2] = { { .id = node(net, 0)->id }, { .id = node(net, i / 2)->id } };
    hark_gi_engine_bootstrap(node(net, i)->engine, known, i == 0 ? 0 : 2, net->now);
    net_run(net);
    net_tick(net);
  }
  return net;
}

static void
net_free(Net *net)
{
  net_run(net);
  for (guint i = 0; i < net->nodes->len; i++)
    hark_gi_engine_free(node(net, i)->engine);
  g_array_unref(net->nodes);
  g_free(net);
}

/* The node leaves; every node that has a link to it notices. */
static void
net_leave(Net *net, guint i, gboolean tell_others)
{
  node(net, i)->alive = FALSE;
  for (guint j = 0; tell_others && j < net->nodes->len; j++)
    if (node(net, j)->alive)
      hark_gi_engine_peer_down(node(net, j)->engine, &node(net, i)->id, net->now);
  net_run(net);
}

static HarkGiRecord *
make_record(const char *user, const char *device, gint64 time_us, gboolean signed_ok)
{
  HarkGiId key;
  hark_gi_id_for_user(user, &key);
  g_autofree gchar *text =
    g_strdup_printf("%s:%s@%s", signed_ok ? "signed" : "forged", device, user);
  g_autoptr(GBytes) blob = g_bytes_new(text, strlen(text));
  return hark_gi_record_new(&key, device, time_us, blob);
}

static gboolean
lookup(Net *net, guint from, const char *user)
{
  HarkGiId key;
  hark_gi_id_for_user(user, &key);
  net->done = net->ok = FALSE;
  net->found = 0;
  hark_gi_engine_lookup(node(net, from)->engine, &key, net->now);
  net_run(net);
  g_assert_true(net->done);
  return net->ok && net->found > 0;
}

/* The alive nodes ordered by distance to key. */
static GArray *
true_closest(Net *net, const HarkGiId *key)
{
  GArray *order = g_array_new(FALSE, FALSE, sizeof(guint));
  for (guint i = 0; i < net->nodes->len; i++) {
    if (!node(net, i)->alive)
      continue;
    guint pos = 0;
    while (pos < order->len &&
           hark_gi_id_cmp_distance(&node(net, g_array_index(order, guint, pos))->id,
                                   &node(net, i)->id, key) < 0)
      pos++;
    g_array_insert_val(order, pos, i);
  }
  return order;
}

static guint
stored_count(Net *net, guint i, const HarkGiId *key)
{
  g_autoptr(GPtrArray) have = hark_gi_engine_stored(node(net, i)->engine, key);
  return have->len;
}

static void
test_ids(void)
{
  HarkGiId a, b, c;
  hark_gi_id_for_user("Alice", &a);
  hark_gi_id_for_user("alice", &b);
  g_assert_cmpmem(a.b, 32, b.b, 32); /* user names are looked up without case */
  hark_gi_id_for_user("bob", &c);
  g_assert_cmpuint(hark_gi_id_common_prefix(&a, &a), ==, 256);
  memset(a.b, 0, 32);
  memset(b.b, 0, 32);
  b.b[1] = 0x10; /* differs at bit 11 */
  g_assert_cmpuint(hark_gi_id_common_prefix(&a, &b), ==, 11);
  memset(c.b, 0, 32);
  c.b[31] = 1;
  g_assert_cmpint(hark_gi_id_cmp_distance(&c, &b, &a), <, 0);
  g_assert_cmpint(hark_gi_id_cmp_distance(&b, &c, &a), >, 0);
  g_assert_cmpint(hark_gi_id_cmp_distance(&b, &b, &a), ==, 0);
}

static void
test_codec(void)
{
  HarkGiMessage msg, back;
  HarkGiId key;
  hark_gi_id_for_user("carol", &key);
  hark_gi_message_init(&msg, HARK_GI_ANSWER, 42, &key);
  msg.flags = HARK_GI_FLAG_OK;
  msg.hops = 3;
  msg.ttl = 9;
  g_ptr_array_add(msg.records, make_record("carol", "phone", T0, TRUE));
  HarkGiContact c = { .id = key, .addr = g_bytes_new("10.0.0.1:4433", 13) };
  g_array_append_val(msg.contacts, c);
  g_autoptr(GBytes) bytes = hark_gi_message_encode_bytes(&msg);
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_gi_message_decode_bytes(bytes, &back, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(back.kind, ==, HARK_GI_ANSWER);
  g_assert_cmpuint(back.request, ==, 42);
  g_assert_cmpuint(back.hops, ==, 3);
  g_assert_cmpuint(back.records->len, ==, 1);
  g_assert_cmpstr(((HarkGiRecord *)g_ptr_array_index(back.records, 0))->device, ==, "phone");
  g_assert_cmpuint(back.contacts->len, ==, 1);
  hark_gi_message_clear(&back);

  /* a key of the wrong length, an unknown kind, too many records, another type */
  guint8 short_key[31] = { 0 };
  GVariant *bad = g_variant_new("(yyt@ayyya(ayay)a(aysxay))", 2, 0, (guint64)1,
                                g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, short_key, 31, 1), 0,
                                4, NULL, NULL);
  g_variant_ref_sink(bad);
  g_clear_error(&error);
  g_assert_false(hark_gi_message_decode(bad, &back, &error));
  g_assert_nonnull(error);
  g_variant_unref(bad);
  msg.kind = 99;
  g_autoptr(GVariant) unknown = g_variant_ref_sink(hark_gi_message_encode(&msg));
  g_clear_error(&error);
  g_assert_false(hark_gi_message_decode(unknown, &back, &error));
  msg.kind = HARK_GI_REPLICA;
  for (guint i = 0; i < HARK_GI_MAX_RECORDS; i++)
    g_ptr_array_add(msg.records, make_record("carol", "phone", T0, TRUE));
  g_autoptr(GVariant) many = g_variant_ref_sink(hark_gi_message_encode(&msg));
  g_clear_error(&error);
  g_assert_false(hark_gi_message_decode(many, &back, &error));
  g_autoptr(GVariant) other = g_variant_ref_sink(g_variant_new("(ss)", "a", "b"));
  g_clear_error(&error);
  g_assert_false(hark_gi_message_decode(other, &back, &error));
  /* bytes that are not a normal-form serialisation */
  g_autoptr(GBytes) junk = g_bytes_new("\x02\x00\xff\xff\xff", 5);
  g_clear_error(&error);
  g_assert_false(hark_gi_message_decode_bytes(junk, &back, &error));
  hark_gi_message_clear(&msg);
}

static void
test_table_keeps_old_contacts(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  params.k = 4;
  Net *net = net_new(1, &params);
  Node *self = node(net, 0);
  /* ids in the farthest bucket (first bit differs from ours): only k are kept, the
   * first ones, and a stranger connecting later does not push them out */
  guint kept = 0;
  HarkGiId first = { 0 };
  for (guint i = 0; i < 10; i++) {
    HarkGiId id;
    guint32 raw[2] = { 0xfa7, i };
    hark_gi_id_for_device_key((const guint8 *)raw, sizeof raw, &id);
    id.b[0] = (guint8)((id.b[0] & 0x7f) | (~self->id.b[0] & 0x80));
    if (hark_gi_engine_peer_up(self->engine, &id, NULL, net->now))
      kept++;
    if (i == 0)
      first = id;
  }
  g_assert_cmpuint(kept, ==, 4);
  g_assert_cmpuint(hark_gi_engine_contact_count(self->engine), ==, 4);
  g_assert_true(hark_gi_engine_has_contact(self->engine, &first));
  net_free(net);
}

static void
test_routing(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(64, &params);
  g_autoptr(HarkGiRecord) rec = NULL;
  rec = make_record("dave", "laptop", net->now, TRUE);
  net->done = FALSE;
  hark_gi_engine_publish(node(net, 5)->engine, rec, net->now);
  net_run(net);
  g_assert_true(net->done && net->ok);
  /* it is on the r closest SNs */
  g_autoptr(GArray) order = true_closest(net, &rec->key);
  for (guint i = 0; i < params.r; i++)
    g_assert_cmpuint(stored_count(net, g_array_index(order, guint, i), &rec->key), ==, 1);
  /* found from every SN, in few hops (log2 64 = 6) */
  guint max_hops = 0;
  guint64 before = net->messages;
  for (guint i = 0; i < 64; i++) {
    g_assert_true(lookup(net, i, "dave"));
    max_hops = MAX(max_hops, net->hops);
    net->now += 120 * G_USEC_PER_SEC; /* past the path caches */
    net_tick(net);
    before = net->messages;
  }
  (void)before;
  g_assert_cmpuint(max_hops, <=, 6);
  g_assert_false(lookup(net, 3, "nobody"));
  net_free(net);
}

static void
test_cache_on_path(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(64, &params);
  g_autoptr(HarkGiRecord) rec = make_record("erin", "desk", net->now, TRUE);
  hark_gi_engine_publish(node(net, 1)->engine, rec, net->now);
  net_run(net);
  /* find an SN whose lookup takes a hop or more, then ask again: answered sooner */
  for (guint i = 0; i < 64; i++) {
    g_assert_true(lookup(net, i, "erin"));
    if (net->hops == 0)
      continue;
    guint64 before = net->messages;
    g_assert_true(lookup(net, i, "erin"));
    g_assert_cmpuint(net->hops, ==, 0);
    g_assert_cmpuint(net->messages, ==, before);
    g_assert_cmpuint(hark_gi_engine_stats(node(net, i)->engine)->cache_hits, >=, 1);
    break;
  }
  net_free(net);
}

static void
test_replication_after_leaves(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(48, &params);
  g_autoptr(HarkGiRecord) rec = make_record("frank", "phone", net->now, TRUE);
  hark_gi_engine_publish(node(net, 7)->engine, rec, net->now);
  net_run(net);
  /* the two closest leave one after the other; each time the r closest left hold it */
  for (guint round = 0; round < 2; round++) {
    g_autoptr(GArray) before = true_closest(net, &rec->key);
    net_leave(net, g_array_index(before, guint, 0), TRUE);
    g_autoptr(GArray) order = true_closest(net, &rec->key);
    for (guint i = 0; i < params.r; i++)
      g_assert_cmpuint(stored_count(net, g_array_index(order, guint, i), &rec->key), ==, 1);
  }
  g_assert_true(lookup(net, 20, "frank"));
  net_free(net);
}

static void
test_lookup_when_closest_left(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(48, &params);
  g_autoptr(HarkGiRecord) rec = make_record("grace", "tablet", net->now, TRUE);
  hark_gi_engine_publish(node(net, 2)->engine, rec, net->now);
  net_run(net);
  /* the closest crashes and nobody has noticed yet: a lookup routed to it meets a dead
   * link, is rerouted, and the next replica answers */
  g_autoptr(GArray) order = true_closest(net, &rec->key);
  guint gone = g_array_index(order, guint, 0);
  net_leave(net, gone, FALSE);
  guint from = gone == 0 ? 1 : 0;
  g_assert_true(lookup(net, from, "grace"));
  for (guint i = 0; i < 48; i++)
    if (node(net, i)->alive && i != from) {
      net->now += 120 * G_USEC_PER_SEC;
      net_tick(net);
      g_assert_true(lookup(net, i, "grace"));
    }
  net_free(net);
}

static void
test_expiry_and_replacement(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(16, &params);
  g_autoptr(HarkGiRecord) old = make_record("heidi", "phone", net->now, TRUE);
  hark_gi_engine_publish(node(net, 3)->engine, old, net->now);
  net_run(net);
  g_autoptr(GArray) order = true_closest(net, &old->key);
  guint holder = g_array_index(order, guint, 0);
  /* a newer record of the same device replaces it; an older one does not */
  net->now += HOUR_US;
  g_autoptr(HarkGiRecord) newer = make_record("heidi", "phone", net->now, TRUE);
  hark_gi_engine_publish(node(net, 4)->engine, newer, net->now);
  net_run(net);
  hark_gi_engine_publish(node(net, 5)->engine, old, net->now);
  net_run(net);
  g_autoptr(GPtrArray) have = hark_gi_engine_stored(node(net, holder)->engine, &old->key);
  g_assert_cmpuint(have->len, ==, 1);
  g_assert_cmpint(((HarkGiRecord *)g_ptr_array_index(have, 0))->time_us, ==, newer->time_us);
  /* 72 h after its time it is gone everywhere and no longer found */
  net->now = newer->time_us + params.record_life_us + 2 * 60 * G_USEC_PER_SEC;
  net_tick(net);
  for (guint i = 0; i < 16; i++)
    g_assert_cmpuint(stored_count(net, i, &old->key), ==, 0);
  g_assert_false(lookup(net, 9, "heidi"));
  net_free(net);
}

/* An SN stores its clients' records again each period while they stay (a record whose
 * replicas all crashed comes back); once a client left (hark_gi_engine_forget) it does
 * not, and what it stored stays found until it expires. The publishing SN is the
 * farthest from the key: it holds no replica and forwards no other store of it. */
static void
test_forget_stops_republish(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(16, &params);
  g_autoptr(HarkGiRecord) rec = make_record("ivan", "laptop", net->now, TRUE);
  g_autoptr(GArray) order = true_closest(net, &rec->key);
  Node *sn = node(net, g_array_index(order, guint, order->len - 1));
  hark_gi_engine_publish(sn->engine, rec, net->now);
  net_run(net);
  g_assert_cmpuint(stored_count(net, sn->index, &rec->key), ==, 0);
  guint64 stored[2];
  for (guint round = 0; round < 2; round++) {
    if (round == 1)
      hark_gi_engine_forget(sn->engine, &rec->key, "laptop");
    net->now += params.republish_us + G_USEC_PER_SEC;
    guint64 before = sn->stores;
    net_tick(net);
    stored[round] = sn->stores - before;
  }
  g_test_message("the SN's stores in a period: %" G_GUINT64_FORMAT " while its client stayed, "
                 "%" G_GUINT64_FORMAT " after it left",
                 stored[0], stored[1]);
  g_assert_cmpuint(stored[0], >=, 1);
  g_assert_cmpuint(stored[1], ==, 0);
  g_assert_true(lookup(net, 7, "ivan"));
  net_free(net);
}

/* A message as a hostile SN sends it: any kind, flags and request id, 10 hops left, the
 * record rec (or none). */
static GBytes *
message_bytes(guint8 kind, guint8 flags, guint64 request, const HarkGiId *key,
              const HarkGiRecord *rec)
{
  HarkGiMessage msg;
  hark_gi_message_init(&msg, kind, request, key);
  msg.flags = flags;
  msg.ttl = 10;
  if (rec != NULL)
    g_ptr_array_add(msg.records, hark_gi_record_copy(rec));
  GBytes *bytes = hark_gi_message_encode_bytes(&msg);
  hark_gi_message_clear(&msg);
  return bytes;
}

static GBytes *
hostile_message(guint8 kind, const HarkGiId *key, HarkGiRecord *rec)
{
  return message_bytes(kind, 0, 77, key, rec);
}

static void
test_forged_records_refused(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(24, &params);
  g_autoptr(HarkGiRecord) forged = make_record("ivan", "phone", net->now, FALSE);
  g_autoptr(GArray) order = true_closest(net, &forged->key);
  guint closest = g_array_index(order, guint, 0);
  guint far = g_array_index(order, guint, order->len - 1);
  HarkGiEngine *target = node(net, closest)->engine;
  /* an ordinary node's forged record, a hostile SN's STORE and REPLICA of it */
  net->done = FALSE;
  hark_gi_engine_publish(node(net, 0)->engine, forged, net->now);
  g_assert_true(net->done && !net->ok);
  g_autoptr(GBytes) store = hostile_message(HARK_GI_STORE, &forged->key, forged);
  g_autoptr(GBytes) replica = hostile_message(HARK_GI_REPLICA, &forged->key, forged);
  guint64 forged_before = hark_gi_engine_stats(target)->forged;
  hark_gi_engine_receive(target, &node(net, far)->id, store, net->now);
  hark_gi_engine_receive(target, &node(net, far)->id, replica, net->now);
  net_run(net);
  g_assert_cmpuint(hark_gi_engine_stats(target)->forged, >=, forged_before + 2);
  for (guint i = 0; i < 24; i++)
    g_assert_cmpuint(stored_count(net, i, &forged->key), ==, 0);
  g_assert_false(lookup(net, far, "ivan"));
  /* a record whose key is not the message's key is refused too */
  g_autoptr(HarkGiRecord) other = make_record("judy", "phone", net->now, TRUE);
  g_autoptr(GBytes) wrong = hostile_message(HARK_GI_REPLICA, &forged->key, other);
  hark_gi_engine_receive(target, &node(net, far)->id, wrong, net->now);
  g_assert_cmpuint(stored_count(net, closest, &forged->key), ==, 0);
  g_assert_cmpuint(stored_count(net, closest, &other->key), ==, 0);
  /* a record dated far in the future (never replaced, never expiring) is refused */
  g_autoptr(HarkGiRecord) future = make_record("ivan", "phone", net->now + 10 * HOUR_US, TRUE);
  g_autoptr(GBytes) ahead = hostile_message(HARK_GI_REPLICA, &future->key, future);
  hark_gi_engine_receive(target, &node(net, far)->id, ahead, net->now);
  g_assert_cmpuint(stored_count(net, closest, &future->key), ==, 0);
  /* a malformed message is counted and changes nothing */
  g_autoptr(GBytes) junk = g_bytes_new("junk", 4);
  hark_gi_engine_receive(target, &node(net, far)->id, junk, net->now);
  g_assert_cmpuint(hark_gi_engine_stats(target)->malformed, ==, 1);
  net_free(net);
}

static void
test_far_replica_refused(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(24, &params);
  /* a hostile SN fills another's store with genuine records of keys far from it */
  g_autoptr(HarkGiRecord) rec = make_record("mallory-target", "phone", net->now, TRUE);
  g_autoptr(GArray) order = true_closest(net, &rec->key);
  guint far = g_array_index(order, guint, order->len - 1);
  g_autoptr(GBytes) replica = hostile_message(HARK_GI_REPLICA, &rec->key, rec);
  hark_gi_engine_receive(node(net, far)->engine, &node(net, 0)->id, replica, net->now);
  g_assert_cmpuint(stored_count(net, far, &rec->key), ==, 0);
  g_assert_cmpuint(hark_gi_engine_stats(node(net, far)->engine)->refused_replicas, ==, 1);
  net_free(net);
}

static void
test_forged_answer_ignored(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(2, &params);
  /* node 0 asks node 1 (its only contact); a forged answer from node 1 is dropped */
  HarkGiId key;
  hark_gi_id_for_user("oscar", &key);
  net->done = FALSE;
  HarkGiEngine *asker = node(net, 0)->engine;
  /* make node 1 the closer one: ask for node 1's own id region */
  g_autoptr(HarkGiRecord) forged = make_record("oscar", "phone", net->now, FALSE);
  gboolean one_is_closer = hark_gi_id_cmp_distance(&node(net, 1)->id, &node(net, 0)->id, &key) < 0;
  guint a = one_is_closer ? 0 : 1, b = one_is_closer ? 1 : 0;
  asker = node(net, a)->engine;
  guint64 req = hark_gi_engine_lookup(asker, &key, net->now);
  Packet *p = g_queue_pop_head(&net->queue);
  g_assert_nonnull(p);
  g_bytes_unref(p->msg);
  g_free(p);
  HarkGiMessage msg;
  hark_gi_message_init(&msg, HARK_GI_ANSWER, req, &key);
  msg.flags = HARK_GI_FLAG_OK;
  g_ptr_array_add(msg.records, hark_gi_record_copy(forged));
  g_autoptr(GBytes) bytes = hark_gi_message_encode_bytes(&msg);
  hark_gi_message_clear(&msg);
  hark_gi_engine_receive(asker, &node(net, b)->id, bytes, net->now);
  g_assert_true(net->done);
  g_assert_false(net->ok);
  g_assert_cmpuint(net->found, ==, 0);
  g_assert_cmpuint(hark_gi_engine_stats(asker)->forged, ==, 1);
  net_free(net);
}

static void
test_stranger_answer_and_duplicates(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(16, &params);
  HarkGiId key;
  hark_gi_id_for_user("peggy", &key);
  g_autoptr(GArray) order = true_closest(net, &key);
  /* the SN farthest from the key looks up: the request is routed to a next hop */
  guint a = g_array_index(order, guint, order->len - 1);
  net->done = FALSE;
  guint64 req = hark_gi_engine_lookup(node(net, a)->engine, &key, net->now);
  Packet *p = g_queue_peek_head(&net->queue);
  g_assert_nonnull(p);
  guint next = p->to, stranger = 0;
  while (stranger == a || stranger == next)
    stranger++;
  /* an SN that is not that hop answers with a genuine record: ignored, only the hop the
   * request went to may answer it */
  g_autoptr(HarkGiRecord) rec = make_record("peggy", "phone", net->now, TRUE);
  HarkGiMessage msg;
  hark_gi_message_init(&msg, HARK_GI_ANSWER, req, &key);
  msg.flags = HARK_GI_FLAG_OK;
  g_ptr_array_add(msg.records, hark_gi_record_copy(rec));
  g_autoptr(GBytes) spoof = hark_gi_message_encode_bytes(&msg);
  hark_gi_message_clear(&msg);
  hark_gi_engine_receive(node(net, a)->engine, &node(net, stranger)->id, spoof, net->now);
  g_assert_false(net->done);
  net_run(net);
  g_assert_true(net->done);
  g_assert_false(net->ok);
  /* the same routed request twice while the first waits for its answer: the second copy
   * is dropped and counted */
  HarkGiMessage look;
  hark_gi_message_init(&look, HARK_GI_LOOKUP, 99, &key);
  look.ttl = 8;
  g_autoptr(GBytes) twice = hark_gi_message_encode_bytes(&look);
  hark_gi_message_clear(&look);
  HarkGiEngine *b = node(net, a)->engine;
  hark_gi_engine_receive(b, &node(net, stranger)->id, twice, net->now);
  guint64 dups = hark_gi_engine_stats(b)->duplicates;
  hark_gi_engine_receive(b, &node(net, stranger)->id, twice, net->now);
  g_assert_cmpuint(hark_gi_engine_stats(b)->duplicates, ==, dups + 1);
  net_free(net);
}

static void
test_devices_per_user_capped(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(8, &params);
  /* a user (or an SN on its behalf) publishing 40 devices keeps at most 16 per SN */
  for (guint d = 0; d < 40; d++) {
    g_autofree gchar *name = g_strdup_printf("device-%u", d);
    g_autoptr(HarkGiRecord) rec = make_record("trent", name, net->now, TRUE);
    hark_gi_engine_publish(node(net, 1)->engine, rec, net->now);
    net_run(net);
  }
  HarkGiId key;
  hark_gi_id_for_user("trent", &key);
  for (guint i = 0; i < 8; i++)
    g_assert_cmpuint(stored_count(net, i, &key), <=, params.max_records_per_key);
  g_autoptr(GArray) order = true_closest(net, &key);
  g_assert_cmpuint(stored_count(net, g_array_index(order, guint, 0), &key), ==,
                   params.max_records_per_key);
  net_free(net);
}

static void
test_simulation_100_churn(void)
{
  HarkDirSimParams p;
  HarkDirSimResult r;
  hark_dirsim_params_init(&p);
  p.sns = 100;
  p.users = 200;
  p.lookups = 400;
  p.churn_minutes = 6;
  p.idle_minutes = 1;
  hark_dirsim_run(&p, &r);
  g_test_message("gi, 100 SNs, churn: %u/%u found, %.1f messages per lookup, %u departed", r.found,
                 r.lookups, r.msgs_per_lookup, r.departed);
  g_assert_cmpuint(r.departed, >=, 10 + 5); /* the 10 % crash and 1 % a minute */
  g_assert_cmpuint(r.found, ==, r.lookups);
  g_assert_cmpfloat(r.msgs_per_lookup, <, 10);
}

static gboolean
in_first(GArray *order, guint n, guint i)
{
  for (guint j = 0; j < n && j < order->len; j++)
    if (g_array_index(order, guint, j) == i)
      return TRUE;
  return FALSE;
}

/* All r replicas of a record crash at once: a lookup made before its SN stores it again is
 * not answered "not found" but asked again after the repair, and finds it. */
static void
test_lookup_during_triple_crash(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(48, &params);
  g_autoptr(HarkGiRecord) rec = make_record("heidi", "phone", net->now, TRUE);
  g_autoptr(GArray) order = true_closest(net, &rec->key);
  guint owner = g_array_index(order, guint, order->len - 1);
  hark_gi_engine_publish(node(net, owner)->engine, rec, net->now);
  net_run(net);
  /* the lookup starts at an SN that had links to two of them: it notices the loss (the
   * 10 % crash of the simulation takes several links of every SN) */
  guint from = G_MAXUINT;
  for (guint j = 0; j < 48 && from == G_MAXUINT; j++) {
    guint links = 0;
    for (guint i = 0; i < params.r; i++)
      links += hark_gi_engine_has_contact(node(net, j)->engine,
                                          &node(net, g_array_index(order, guint, i))->id);
    if (links >= 2 && j != owner && !in_first(order, params.r, j))
      from = j;
  }
  g_assert_cmpuint(from, !=, G_MAXUINT);
  /* they crash together; then every SN with a link to them notices */
  for (guint i = 0; i < params.r; i++)
    net_leave(net, g_array_index(order, guint, i), FALSE);
  for (guint i = 0; i < params.r; i++)
    for (guint j = 0; j < 48; j++)
      if (node(net, j)->alive)
        hark_gi_engine_peer_down(node(net, j)->engine, &node(net, g_array_index(order, guint, i))->id,
                                 net->now);
  net_run(net);
  for (guint i = 0; i < 48; i++)
    if (node(net, i)->alive)
      g_assert_cmpuint(stored_count(net, i, &rec->key), ==, 0);
  net->done = FALSE;
  guint64 req = hark_gi_engine_lookup(node(net, from)->engine, &rec->key, net->now);
  net_run(net);
  g_assert_false(net->done);
  /* the owner's SN stores its client's record again 5 s after it noticed the loss (its
   * own done comes then); the lookup is asked again 8 s after its first answer */
  for (guint s = 0; s < 10 && !(net->done && net->request == req); s++) {
    net->now += G_USEC_PER_SEC;
    net_tick(net);
  }
  g_assert_true(net->done && net->request == req && net->ok);
  g_assert_cmpuint(net->found, ==, 1);
  /* a lookup of nobody in quiet times is answered at once */
  net->now += 120 * G_USEC_PER_SEC;
  net_tick(net);
  g_assert_false(lookup(net, from, "nobody-at-all"));
  net_free(net);
}

/* Every SN looks into the region of each bucket above its deepest: none keeps a bucket
 * empty whose region holds SNs (a lookup or store for a key there would end at it, short
 * of the closest SNs). The late joiners used to: a look into an empty bucket's region
 * ended at once at the SN itself (no contact was closer to it). */
static void
test_no_holes(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(128, &params);
  guint holes = 0;
  for (guint i = 0; i < 128; i++) {
    HarkGiEngine *e = node(net, i)->engine;
    guint deepest = 0, have[HARK_GI_ID_LEN * 8 + 1] = { 0 }, exist[HARK_GI_ID_LEN * 8 + 1] = { 0 };
    for (guint j = 0; j < 128; j++) {
      if (j == i)
        continue;
      guint b = hark_gi_id_common_prefix(&node(net, i)->id, &node(net, j)->id);
      exist[b]++;
      if (hark_gi_engine_has_contact(e, &node(net, j)->id)) {
        have[b]++;
        deepest = MAX(deepest, b);
      }
    }
    for (guint b = 0; b < deepest; b++)
      holes += exist[b] > 0 && have[b] == 0;
  }
  g_assert_cmpuint(holes, ==, 0);
  net_free(net);
}

/* Packets the SN under test sent, in order (the next hop of a STORE it forwards). */
static guint
queued_of_kind(Net *net, guint from, guint8 kind, guint8 *flags)
{
  guint n = 0;
  for (GList *l = net->queue.head; l != NULL; l = l->next) {
    Packet *p = l->data;
    HarkGiMessage msg;
    if (p->from != from || !hark_gi_message_decode_bytes(p->msg, &msg, NULL))
      continue;
    if (msg.kind == kind) {
      n++;
      if (flags != NULL)
        *flags = msg.flags;
    }
    hark_gi_message_clear(&msg);
  }
  return n;
}

static void
test_forged_store_not_forwarded(void)
{
  HarkGiParams params;
  hark_gi_params_init(&params);
  Net *net = net_new(24, &params);
  g_autoptr(HarkGiRecord) forged = make_record("victor", "phone", net->now, FALSE);
  g_autoptr(HarkGiRecord) genuine = make_record("victor", "phone", net->now, TRUE);
  g_autoptr(GArray) order = true_closest(net, &forged->key);
  /* the SN farthest from the key is an intermediate one: a STORE it takes goes on */
  guint mid = g_array_index(order, guint, order->len - 1);
  guint sender = g_array_index(order, guint, order->len - 2);
  HarkGiEngine *e = node(net, mid)->engine;
  g_autoptr(GBytes) good = hostile_message(HARK_GI_STORE, &genuine->key, genuine);
  hark_gi_engine_receive(e, &node(net, sender)->id, good, net->now);
  g_assert_cmpuint(queued_of_kind(net, mid, HARK_GI_STORE, NULL), ==, 1);
  net_run(net);
  /* a hostile SN's STOREs through it, each with another request id: a forged record, a
   * stale one, one filed under another key, and none */
  const HarkGiStats *st = hark_gi_engine_stats(e);
  HarkGiStats before = *st;
  g_autoptr(HarkGiRecord) stale = make_record("victor", "phone", net->now - 100 * HOUR_US, TRUE);
  g_autoptr(HarkGiRecord) other = make_record("wendy", "phone", net->now, TRUE);
  HarkGiRecord *bad[] = { forged, stale, other, NULL };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GBytes) bytes = message_bytes(HARK_GI_STORE, 0, 1000 + i, &forged->key, bad[i]);
    hark_gi_engine_receive(e, &node(net, sender)->id, bytes, net->now);
    /* refused there: answered REFUSED to the sender, not forwarded */
    guint8 flags = 0;
    g_assert_cmpuint(queued_of_kind(net, mid, HARK_GI_STORE, NULL), ==, 0);
    g_assert_cmpuint(queued_of_kind(net, mid, HARK_GI_ANSWER, &flags), ==, 1);
    g_assert_cmpuint(flags, ==, HARK_GI_FLAG_REFUSED);
    net_run(net);
  }
  g_assert_cmpuint(st->refused_stores, ==, before.refused_stores + 4);
  g_assert_cmpuint(st->forged, ==, before.forged + 1);
  g_assert_cmpuint(st->stale, ==, before.stale + 1);
  g_assert_cmpuint(st->misfiled, ==, before.misfiled + 1);
  /* no SN keeps or counts what it was never sent */
  for (guint i = 0; i < 24; i++) {
    g_autoptr(GPtrArray) have = hark_gi_engine_stored(node(net, i)->engine, &forged->key);
    for (guint j = 0; j < have->len; j++)
      g_assert_true(net_verify(NULL, g_ptr_array_index(have, j)));
    if (i != mid)
      g_assert_cmpuint(hark_gi_engine_stats(node(net, i)->engine)->forged, ==, 0);
  }
  net_free(net);
}

/* ---- flood's refusals ---- */

typedef struct {
  GPtrArray *sent; /* GBytes*, what the engine sent */
  GArray *to; /* HarkGiId, to whom */
  gboolean done, ok;
} FloodBox;

static void
flood_send(gpointer user, const HarkGiId *peer, GBytes *addr, GBytes *message)
{
  FloodBox *box = user;
  g_ptr_array_add(box->sent, g_bytes_ref(message));
  g_array_append_val(box->to, *peer);
}

static void
flood_done(gpointer user, guint64 request, gboolean ok, GPtrArray *records, guint hops)
{
  FloodBox *box = user;
  box->done = TRUE;
  box->ok = ok && records != NULL && records->len > 0;
}

static HarkGiId
flood_peer(guint i)
{
  HarkGiId id;
  guint32 raw[2] = { 0xf100d, i };
  hark_gi_id_for_device_key((const guint8 *)raw, sizeof raw, &id);
  return id;
}

/* Every kind of message a hostile SN can send a flood SN is refused and counted, and
 * changes nothing: malformed and over a limit, kinds flood does not take, a replayed
 * LOOKUP, answers nobody asked for (a made-up request, an SN not asked, a second copy) and
 * records forged, stale or filed under another key. */
static void
test_flood_refusals_counted(void)
{
  FloodBox box = { .sent = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref),
                   .to = g_array_new(FALSE, FALSE, sizeof(HarkGiId)) };
  HarkGiCallbacks cb = { .send = flood_send, .verify = net_verify, .done = flood_done };
  HarkGiId self = flood_peer(0), a = flood_peer(1), b = flood_peer(2), stranger = flood_peer(3);
  HarkFloodEngine *e = hark_flood_engine_new(&self, NULL, &cb, &box);
  const HarkGiStats *st = hark_flood_engine_stats(e);
  gint64 now = T0;
  g_assert_true(hark_flood_engine_peer_up(e, &a));
  g_assert_true(hark_flood_engine_peer_up(e, &b));
  g_autoptr(HarkGiRecord) genuine = make_record("xena", "phone", now, TRUE);
  const HarkGiId *key = &genuine->key;

  /* malformed: junk, and a message over a limit (65 records) */
  g_autoptr(GBytes) junk = g_bytes_new_static("junk", 4);
  hark_flood_engine_receive(e, &a, junk, now);
  HarkGiMessage big;
  hark_gi_message_init(&big, HARK_GI_ANSWER, 1, key);
  for (guint i = 0; i <= HARK_GI_MAX_RECORDS; i++)
    g_ptr_array_add(big.records, hark_gi_record_copy(genuine));
  g_autoptr(GBytes) over = hark_gi_message_encode_bytes(&big);
  hark_gi_message_clear(&big);
  hark_flood_engine_receive(e, &a, over, now);
  g_assert_cmpuint(st->malformed, ==, 2);

  /* kinds flood does not take: a STORE and a REPLICA pushing a genuine record, NODES, PING
   * and a routed (not LOCAL) LOOKUP; none is kept or answered */
  guint8 kinds[] = { HARK_GI_STORE, HARK_GI_REPLICA, HARK_GI_NODES, HARK_GI_PING,
                     HARK_GI_LOOKUP };
  for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
    g_autoptr(GBytes) m = message_bytes(kinds[i], 0, 10 + i, key, genuine);
    hark_flood_engine_receive(e, &a, m, now);
  }
  g_assert_cmpuint(st->unexpected, ==, G_N_ELEMENTS(kinds));
  g_assert_cmpuint(hark_flood_engine_record_count(e), ==, 0);
  g_assert_cmpuint(box.sent->len, ==, 0);

  /* a LOCAL LOOKUP is answered once; its replay is dropped */
  g_autoptr(GBytes) ask = message_bytes(HARK_GI_LOOKUP, HARK_GI_FLAG_LOCAL, 42, key, NULL);
  hark_flood_engine_receive(e, &a, ask, now);
  g_assert_cmpuint(box.sent->len, ==, 1);
  hark_flood_engine_receive(e, &a, ask, now);
  g_assert_cmpuint(box.sent->len, ==, 1);
  g_assert_cmpuint(st->duplicates, ==, 1);

  /* our search asks a and b */
  guint64 req = hark_flood_engine_lookup(e, key, now);
  g_assert_cmpuint(box.sent->len, ==, 3);
  /* answers to a request we never made, and from an SN we did not ask, with a genuine
   * record: neither ends the search */
  g_autoptr(GBytes) madeup = message_bytes(HARK_GI_ANSWER, HARK_GI_FLAG_OK, req + 1, key, genuine);
  hark_flood_engine_receive(e, &a, madeup, now);
  g_autoptr(GBytes) spoof = message_bytes(HARK_GI_ANSWER, HARK_GI_FLAG_OK, req, key, genuine);
  hark_flood_engine_receive(e, &stranger, spoof, now);
  g_assert_cmpuint(st->unsolicited, ==, 2);
  g_assert_false(box.done);
  /* a answers with a forged, a stale and a misfiled record (one message each would be a
   * second copy: all three in one) */
  g_autoptr(HarkGiRecord) forged = make_record("xena", "phone", now, FALSE);
  g_autoptr(HarkGiRecord) stale = make_record("xena", "phone", now - 100 * HOUR_US, TRUE);
  g_autoptr(HarkGiRecord) other = make_record("yuri", "phone", now, TRUE);
  HarkGiMessage bad;
  hark_gi_message_init(&bad, HARK_GI_ANSWER, req, key);
  bad.flags = HARK_GI_FLAG_OK;
  g_ptr_array_add(bad.records, hark_gi_record_copy(forged));
  g_ptr_array_add(bad.records, hark_gi_record_copy(stale));
  g_ptr_array_add(bad.records, hark_gi_record_copy(other));
  g_autoptr(GBytes) bad_bytes = hark_gi_message_encode_bytes(&bad);
  hark_gi_message_clear(&bad);
  hark_flood_engine_receive(e, &a, bad_bytes, now);
  g_assert_cmpuint(st->forged, ==, 1);
  g_assert_cmpuint(st->stale, ==, 1);
  g_assert_cmpuint(st->misfiled, ==, 1);
  g_assert_false(box.done);
  /* a again, now with the genuine record: a second answer from a is refused */
  hark_flood_engine_receive(e, &a, spoof, now);
  g_assert_cmpuint(st->unsolicited, ==, 3);
  g_assert_false(box.done);
  /* b, asked, answers with it: found */
  hark_flood_engine_receive(e, &b, spoof, now);
  g_assert_true(box.done && box.ok);
  g_assert_cmpuint(st->unsolicited, ==, 3);
  hark_flood_engine_free(e);
  g_ptr_array_unref(box.sent);
  g_array_unref(box.to);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/gi/ids", test_ids);
  g_test_add_func("/gi/codec", test_codec);
  g_test_add_func("/gi/table-keeps-old-contacts", test_table_keeps_old_contacts);
  g_test_add_func("/gi/routing", test_routing);
  g_test_add_func("/gi/cache-on-path", test_cache_on_path);
  g_test_add_func("/gi/replication-after-leaves", test_replication_after_leaves);
  g_test_add_func("/gi/lookup-when-closest-left", test_lookup_when_closest_left);
  g_test_add_func("/gi/lookup-during-triple-crash", test_lookup_during_triple_crash);
  g_test_add_func("/gi/no-holes", test_no_holes);
  g_test_add_func("/gi/expiry-and-replacement", test_expiry_and_replacement);
  g_test_add_func("/gi/forget-stops-republish", test_forget_stops_republish);
  g_test_add_func("/gi/forged-records-refused", test_forged_records_refused);
  g_test_add_func("/gi/far-replica-refused", test_far_replica_refused);
  g_test_add_func("/gi/forged-answer-ignored", test_forged_answer_ignored);
  g_test_add_func("/gi/stranger-answer-and-duplicates", test_stranger_answer_and_duplicates);
  g_test_add_func("/gi/devices-per-user-capped", test_devices_per_user_capped);
  g_test_add_func("/gi/forged-store-not-forwarded", test_forged_store_not_forwarded);
  g_test_add_func("/gi/flood-refusals-counted", test_flood_refusals_counted);
  g_test_add_func("/gi/simulation-100-churn", test_simulation_100_churn);
  return g_test_run();
}
