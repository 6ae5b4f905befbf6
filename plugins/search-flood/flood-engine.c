/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The flood engine: records stay at the SN their device uses; a lookup asks rings of SNs
 * that double in size (8, 16, 32, ...) until one answers with records or max_asked SNs
 * were asked. See flood-engine.h. */
#include "flood-engine.h"

#include <string.h>

/* Request ids of LOOKUPs answered lately: a second copy is a replay (a search asks each
 * SN once), dropped and counted. */
#define ANSWERED_KEPT 1024

typedef struct {
  guint64 request;
  HarkGiId key;
  GHashTable *asked; /* HarkGiId* set */
  GArray *candidates; /* HarkGiId, not yet asked, in the order learned */
  GArray *waiting; /* HarkGiId asked this round, not yet answered */
  guint ring, rounds;
  gint64 deadline_us;
} Search;

struct _HarkFloodEngine {
  HarkGiId self;
  HarkFloodParams p;
  HarkGiCallbacks cb;
  gpointer user;
  GArray *neighbours; /* HarkGiId */
  GHashTable *store; /* HarkGiId* key -> GPtrArray of HarkGiRecord* */
  GHashTable *searches; /* guint64* -> Search* */
  GHashTable *answered; /* guint64* set: the last ANSWERED_KEPT LOOKUPs answered */
  GQueue answered_order; /* guint64*, oldest first (the keys of answered) */
  guint nrecords;
  GRand *rand;
  gint64 next_expiry_us;
  HarkGiStats stats;
};

static gint
find_id(GArray *ids, const HarkGiId *id)
{
  for (guint i = 0; i < ids->len; i++)
    if (hark_gi_id_equal(&g_array_index(ids, HarkGiId, i), id))
      return (gint)i;
  return -1;
}

void
hark_flood_params_init(HarkFloodParams *p)
{
  *p = (HarkFloodParams){
    .first_ring = 8,
    .max_asked = 512,
    .max_neighbours = 16,
    .round_timeout_us = G_USEC_PER_SEC,
    .record_life_us = (gint64)72 * 3600 * G_USEC_PER_SEC,
    .max_future_us = 5 * 60 * G_USEC_PER_SEC,
  };
}

static void
search_free(gpointer p)
{
  Search *s = p;
  g_hash_table_unref(s->asked);
  g_array_unref(s->candidates);
  g_array_unref(s->waiting);
  g_free(s);
}

HarkFloodEngine *
hark_flood_engine_new(const HarkGiId *self, const HarkFloodParams *params,
                      const HarkGiCallbacks *callbacks, gpointer user)
{
  HarkFloodEngine *e = g_new0(HarkFloodEngine, 1);
  e->self = *self;
  if (params != NULL)
    e->p = *params;
  else
    hark_flood_params_init(&e->p);
  e->p.first_ring = MAX(e->p.first_ring, 1);
  e->p.max_neighbours = CLAMP(e->p.max_neighbours, 1, HARK_GI_MAX_CONTACTS);
  e->cb = *callbacks;
  e->user = user;
  e->neighbours = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  e->store = g_hash_table_new_full(hark_gi_id_hash, hark_gi_id_equal, g_free,
                                   (GDestroyNotify)g_ptr_array_unref);
  e->searches = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, search_free);
  e->answered = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  g_queue_init(&e->answered_order);
  guint32 seed[HARK_GI_ID_LEN / 4];
  memcpy(seed, self->b, sizeof seed);
  e->rand = g_rand_new_with_seed_array(seed, G_N_ELEMENTS(seed));
  e->next_expiry_us = G_MAXINT64;
  return e;
}

void
hark_flood_engine_free(HarkFloodEngine *e)
{
  if (e == NULL)
    return;
  g_array_unref(e->neighbours);
  g_hash_table_unref(e->store);
  g_hash_table_unref(e->searches);
  g_queue_clear(&e->answered_order);
  g_hash_table_unref(e->answered);
  g_rand_free(e->rand);
  g_free(e);
}

guint
hark_flood_engine_neighbour_count(HarkFloodEngine *e)
{
  return e->neighbours->len;
}

gboolean
hark_flood_engine_has_neighbour(HarkFloodEngine *e, const HarkGiId *peer)
{
  return find_id(e->neighbours, peer) >= 0;
}

guint
hark_flood_engine_record_count(HarkFloodEngine *e)
{
  return e->nrecords;
}

const HarkGiStats *
hark_flood_engine_stats(HarkFloodEngine *e)
{
  return &e->stats;
}

gboolean
hark_flood_engine_peer_up(HarkFloodEngine *e, const HarkGiId *peer)
{
  if (hark_gi_id_equal(peer, &e->self) || find_id(e->neighbours, peer) >= 0)
    return FALSE;
  if (e->neighbours->len >= e->p.max_neighbours)
    return FALSE;
  g_array_append_val(e->neighbours, *peer);
  return TRUE;
}

static void
send_message(HarkFloodEngine *e, const HarkGiId *peer, HarkGiMessage *msg)
{
  g_autoptr(GBytes) bytes = hark_gi_message_encode_bytes(msg);
  e->stats.sent++;
  e->cb.send(e->user, peer, NULL, bytes);
}

static gboolean
record_fresh(HarkFloodEngine *e, const HarkGiRecord *r, gint64 now_us)
{
  return hark_gi_record_fresh(r, e->p.record_life_us, e->p.max_future_us, now_us);
}

static void
finish(HarkFloodEngine *e, Search *s, GPtrArray *records)
{
  guint64 request = s->request;
  guint rounds = s->rounds;
  g_hash_table_remove(e->searches, &request);
  if (e->cb.done != NULL)
    e->cb.done(e->user, request, records != NULL && records->len > 0, records, rounds);
}

/* Asks the next ring of candidates; ends the search when there are none left to ask. */
static void
next_round(HarkFloodEngine *e, Search *s, gint64 now_us)
{
  guint asked = g_hash_table_size(s->asked);
  guint n = MIN(s->ring, MIN(s->candidates->len, e->p.max_asked - MIN(asked, e->p.max_asked)));
  if (n == 0) {
    finish(e, s, NULL);
    return;
  }
  s->rounds++;
  for (guint i = 0; i < n; i++) {
    HarkGiId to = g_array_index(s->candidates, HarkGiId, 0);
    g_array_remove_index(s->candidates, 0);
    g_hash_table_add(s->asked, g_memdup2(&to, sizeof to));
    g_array_append_val(s->waiting, to);
    HarkGiMessage msg;
    hark_gi_message_init(&msg, HARK_GI_LOOKUP, s->request, &s->key);
    msg.flags = HARK_GI_FLAG_LOCAL;
    msg.hops = (guint8)MIN(s->rounds, 255);
    send_message(e, &to, &msg);
    hark_gi_message_clear(&msg);
  }
  s->ring *= 2;
  s->deadline_us = now_us + e->p.round_timeout_us;
}

static void
add_candidate(Search *s, const HarkGiId *self, const HarkGiId *id)
{
  if (!hark_gi_id_equal(id, self) && !g_hash_table_contains(s->asked, id) &&
      find_id(s->candidates, id) < 0)
    g_array_append_val(s->candidates, *id);
}

static GPtrArray *
local_records(HarkFloodEngine *e, const HarkGiId *key, gint64 now_us)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hark_gi_record_free);
  GPtrArray *have = g_hash_table_lookup(e->store, key);
  for (guint i = 0; have != NULL && i < have->len; i++)
    if (record_fresh(e, g_ptr_array_index(have, i), now_us))
      g_ptr_array_add(out, hark_gi_record_copy(g_ptr_array_index(have, i)));
  return out;
}

guint64
hark_flood_engine_lookup(HarkFloodEngine *e, const HarkGiId *key, gint64 now_us)
{
  Search *s = g_new0(Search, 1);
  do
    s->request = ((guint64)g_rand_int(e->rand) << 32) | g_rand_int(e->rand);
  while (s->request == 0 || g_hash_table_contains(e->searches, &s->request));
  s->key = *key;
  s->asked = g_hash_table_new_full(hark_gi_id_hash, hark_gi_id_equal, g_free, NULL);
  s->candidates = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  s->waiting = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  s->ring = e->p.first_ring;
  g_hash_table_insert(e->searches, &s->request, s);
  guint64 request = s->request;
  g_autoptr(GPtrArray) here = local_records(e, key, now_us);
  if (here->len > 0) {
    finish(e, s, here);
    return request;
  }
  for (guint i = 0; i < e->neighbours->len; i++)
    add_candidate(s, &e->self, &g_array_index(e->neighbours, HarkGiId, i));
  next_round(e, s, now_us);
  return request;
}

guint64
hark_flood_engine_publish(HarkFloodEngine *e, const HarkGiRecord *record, gint64 now_us)
{
  guint64 request = ((guint64)g_rand_int(e->rand) << 32) | g_rand_int(e->rand);
  gboolean ok = record_fresh(e, record, now_us) && e->cb.verify(e->user, record);
  if (!ok) {
    e->stats.forged++;
  } else {
    GPtrArray *have = g_hash_table_lookup(e->store, &record->key);
    if (have == NULL) {
      have = g_ptr_array_new_with_free_func((GDestroyNotify)hark_gi_record_free);
      g_hash_table_insert(e->store, g_memdup2(&record->key, sizeof record->key), have);
    }
    guint i = 0;
    while (i < have->len &&
           strcmp(((HarkGiRecord *)g_ptr_array_index(have, i))->device, record->device) != 0)
      i++;
    if (i < have->len) {
      g_ptr_array_remove_index_fast(have, i);
      e->nrecords--;
    }
    g_ptr_array_add(have, hark_gi_record_copy(record));
    e->nrecords++;
    if (e->next_expiry_us == G_MAXINT64)
      e->next_expiry_us = now_us + 60 * G_USEC_PER_SEC;
  }
  if (e->cb.done != NULL)
    e->cb.done(e->user, request, ok, NULL, 0);
  return request;
}

/* FALSE when request was answered lately (a replay); else it is remembered. */
static gboolean
first_copy(HarkFloodEngine *e, guint64 request)
{
  if (g_hash_table_contains(e->answered, &request))
    return FALSE;
  guint64 *id = g_memdup2(&request, sizeof request);
  g_hash_table_add(e->answered, id);
  g_queue_push_tail(&e->answered_order, id);
  if (e->answered_order.length > ANSWERED_KEPT)
    g_hash_table_remove(e->answered, g_queue_pop_head(&e->answered_order));
  return TRUE;
}

static void
answer(HarkFloodEngine *e, const HarkGiId *from, HarkGiMessage *msg, gint64 now_us)
{
  g_autoptr(GPtrArray) have = local_records(e, &msg->key, now_us);
  HarkGiMessage out;
  hark_gi_message_init(&out, HARK_GI_ANSWER, msg->request, &msg->key);
  out.hops = msg->hops;
  out.flags = have->len > 0 ? HARK_GI_FLAG_OK : 0;
  for (guint i = 0; i < have->len && i < HARK_GI_MAX_RECORDS; i++)
    g_ptr_array_add(out.records, hark_gi_record_copy(g_ptr_array_index(have, i)));
  if (have->len == 0)
    for (guint i = 0; i < e->neighbours->len; i++) {
      HarkGiContact c = { .id = g_array_index(e->neighbours, HarkGiId, i),
                          .addr = g_bytes_new(NULL, 0) };
      g_array_append_val(out.contacts, c);
    }
  send_message(e, from, &out);
  hark_gi_message_clear(&out);
}

static void
take_answer(HarkFloodEngine *e, const HarkGiId *from, HarkGiMessage *msg, gint64 now_us)
{
  Search *s = g_hash_table_lookup(e->searches, &msg->request);
  gint at = s != NULL ? find_id(s->waiting, from) : -1;
  /* late (its round is over), a second copy, or from an SN this search did not ask */
  if (at < 0 || !hark_gi_id_equal(&s->key, &msg->key)) {
    e->stats.unsolicited++;
    return;
  }
  g_array_remove_index_fast(s->waiting, (guint)at);
  g_autoptr(GPtrArray) good = g_ptr_array_new_with_free_func((GDestroyNotify)hark_gi_record_free);
  for (guint i = 0; i < msg->records->len; i++) {
    const HarkGiRecord *r = g_ptr_array_index(msg->records, i);
    if (!hark_gi_id_equal(&r->key, &s->key)) {
      e->stats.misfiled++;
      continue;
    }
    if (!record_fresh(e, r, now_us)) {
      e->stats.stale++;
      continue;
    }
    if (!e->cb.verify(e->user, r)) {
      e->stats.forged++;
      continue;
    }
    g_ptr_array_add(good, hark_gi_record_copy(r));
  }
  if (good->len > 0) {
    finish(e, s, good);
    return;
  }
  for (guint i = 0; i < msg->contacts->len; i++)
    add_candidate(s, &e->self, &g_array_index(msg->contacts, HarkGiContact, i).id);
  if (s->waiting->len == 0)
    next_round(e, s, now_us);
}

void
hark_flood_engine_receive(HarkFloodEngine *e, const HarkGiId *from, GBytes *bytes, gint64 now_us)
{
  HarkGiMessage msg;
  g_autoptr(GError) error = NULL;
  e->stats.received++;
  if (!hark_gi_message_decode_bytes(bytes, &msg, &error)) {
    g_autofree gchar *hex = hark_gi_id_to_hex(from, 8);
    e->stats.malformed++;
    g_debug("flood: refused a message from SN %s: %s", hex, error->message);
    return;
  }
  /* flood asks only LOCAL LOOKUPs and takes their ANSWERs; whatever else an SN sends it
   * (a routed request, a STORE or REPLICA pushing records, NODES, PING) is refused */
  if (msg.kind == HARK_GI_LOOKUP && (msg.flags & HARK_GI_FLAG_LOCAL) != 0) {
    if (first_copy(e, msg.request))
      answer(e, from, &msg, now_us);
    else
      e->stats.duplicates++;
  } else if (msg.kind == HARK_GI_ANSWER) {
    take_answer(e, from, &msg, now_us);
  } else {
    e->stats.unexpected++;
  }
  hark_gi_message_clear(&msg);
}

static GArray *
search_ids(HarkFloodEngine *e)
{
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint64));
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init(&it, e->searches);
  while (g_hash_table_iter_next(&it, &k, NULL))
    g_array_append_val(ids, *(guint64 *)k);
  return ids;
}

void
hark_flood_engine_peer_down(HarkFloodEngine *e, const HarkGiId *peer, gint64 now_us)
{
  gint at = find_id(e->neighbours, peer);
  if (at >= 0)
    g_array_remove_index_fast(e->neighbours, (guint)at);
  g_autoptr(GArray) ids = search_ids(e);
  for (guint i = 0; i < ids->len; i++) {
    Search *s = g_hash_table_lookup(e->searches, &g_array_index(ids, guint64, i));
    gint w = s != NULL ? find_id(s->waiting, peer) : -1;
    if (w < 0)
      continue;
    g_array_remove_index_fast(s->waiting, (guint)w);
    if (s->waiting->len == 0)
      next_round(e, s, now_us);
  }
}

void
hark_flood_engine_tick(HarkFloodEngine *e, gint64 now_us)
{
  g_autoptr(GArray) ids = search_ids(e);
  for (guint i = 0; i < ids->len; i++) {
    Search *s = g_hash_table_lookup(e->searches, &g_array_index(ids, guint64, i));
    if (s != NULL && s->deadline_us <= now_us) {
      e->stats.timeouts++;
      g_array_set_size(s->waiting, 0);
      next_round(e, s, now_us);
    }
  }
  if (e->next_expiry_us > now_us)
    return;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, e->store);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    GPtrArray *have = v;
    for (guint i = have->len; i-- > 0;)
      if (!record_fresh(e, g_ptr_array_index(have, i), now_us)) {
        g_ptr_array_remove_index_fast(have, i);
        e->nrecords--;
        e->stats.expired++;
      }
    if (have->len == 0)
      g_hash_table_iter_remove(&it);
  }
  e->next_expiry_us = e->nrecords > 0 ? now_us + 60 * G_USEC_PER_SEC : G_MAXINT64;
}

gint64
hark_flood_engine_next_deadline(HarkFloodEngine *e)
{
  gint64 next = e->next_expiry_us;
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, e->searches);
  while (g_hash_table_iter_next(&it, NULL, &v))
    next = MIN(next, ((Search *)v)->deadline_us);
  return next;
}
