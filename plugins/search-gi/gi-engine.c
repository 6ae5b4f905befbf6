/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gi engine: routing table, recursive routing, store, cache and replication of one
 * super node (docs/architecture.md, "Directory: the gi index"). A pure state machine: the
 * host gives it messages, link changes and the time, and carries what it sends. */
#include "gi-engine.h"

#include <string.h>

#define NBUCKETS (HARK_GI_ID_LEN * 8)
#define EXPIRY_PASS_US (60 * G_USEC_PER_SEC)
/* A bucket left with fewer contacts than this is refreshed soon, not at the next round:
 * greedy routing needs a contact in every bucket whose region holds SNs. */
#define THIN_BUCKET 2
#define SOON_US (5 * G_USEC_PER_SEC)
/* Losing this share of our contacts within a minute is a correlated failure (a data
 * centre, a network split): our clients' records may have lost all r replicas. */
#define MASS_LOSS_SHARE 0.05
#define MASS_WINDOW_US (60 * G_USEC_PER_SEC)
/* A lookup of ours that found nothing while SNs were failing (a mass loss noticed within
 * MASS_WINDOW_US, or the lookup itself waited out a timeout on its way) may have missed
 * records whose r replicas all went at once: their SNs store them again SOON_US after they
 * notice the loss (about when we did). It is asked again after that, at most this many
 * times; the first time within a client's 10 s wait when we noticed the loss already. */
#define LOOKUP_RETRIES 2
#define RETRY_MARGIN_US G_USEC_PER_SEC

typedef struct {
  GPtrArray *records; /* HarkGiRecord*, one per device */
  guint64 sent_digest; /* the replica set last sent to (republish sends only on change) */
} KeyEntry;

typedef struct {
  GPtrArray *records;
  gint64 expires_us;
} CacheEntry;

/* A lookup this SN started (hark_gi_engine_lookup), until its done. */
typedef struct {
  HarkGiId key;
  gint64 started_us; /* of the current try */
  gint64 again_us; /* when it is asked again (G_MAXINT64: it is under way) */
  guint tries;
} Ask;

typedef enum {
  PENDING_FORWARD,
  PENDING_LOCAL
} PendingState;

typedef struct {
  guint64 request;
  guint8 kind;
  HarkGiId key;
  gboolean has_upstream; /* FALSE: started here */
  HarkGiId upstream;
  gboolean bootstrap; /* our own NODES lookup of our id (joining, or the periodic one) */
  PendingState state;
  HarkGiId next;
  GArray *tried; /* HarkGiId: next hops tried, or (LOCAL) neighbours still to answer */
  GPtrArray *records; /* a STORE's records */
  gboolean have_hint; /* LOCAL: an SN closer to key than us that a replica named */
  HarkGiId hint;
  guint8 hops, ttl;
  guint attempts;
  gint64 deadline_us;
} Pending;

struct _HarkGiEngine {
  HarkGiId self;
  GBytes *self_addr;
  HarkGiParams p;
  HarkGiCallbacks cb;
  gpointer user;
  GArray *buckets[NBUCKETS]; /* of HarkGiContact, by common prefix with self; lazily made */
  gboolean thinned[NBUCKETS]; /* lost a contact since its last refresh */
  guint ncontacts;
  GHashTable *store; /* HarkGiId* -> KeyEntry* */
  GHashTable *cache; /* HarkGiId* -> CacheEntry* */
  GHashTable *pending; /* guint64* -> Pending* */
  GHashTable *own; /* "key/device" -> HarkGiRecord*: this SN's clients' records */
  GHashTable *asks; /* guint64* request -> Ask*: our lookups */
  guint nrecords;
  gint64 next_republish_us, next_refresh_us, next_expiry_us, next_own_us, next_thin_us;
  gboolean joining; /* the next self-lookup also looks into every bucket not yet full */
  HarkGiId nearest; /* our closest contact when the self-lookup started */
  gboolean have_nearest;
  guint self_rounds;
  gint64 loss_window_us; /* start of the minute losses are counted in */
  guint losses;
  gint64 mass_loss_us; /* when we last noticed a mass loss (G_MININT64: never) */
  GRand *rand;
  HarkGiStats stats;
};

static gboolean
id_eq(const HarkGiId *a, const HarkGiId *b)
{
  return memcmp(a->b, b->b, HARK_GI_ID_LEN) == 0;
}

static gboolean
ids_contain(GArray *ids, const HarkGiId *id)
{
  for (guint i = 0; ids != NULL && i < ids->len; i++)
    if (id_eq(&g_array_index(ids, HarkGiId, i), id))
      return TRUE;
  return FALSE;
}

static void
ids_remove(GArray *ids, const HarkGiId *id)
{
  for (guint i = 0; i < ids->len; i++)
    if (id_eq(&g_array_index(ids, HarkGiId, i), id)) {
      g_array_remove_index_fast(ids, i);
      return;
    }
}

void
hark_gi_params_init(HarkGiParams *p)
{
  *p = (HarkGiParams){
    .k = 8,
    .r = 3,
    .hop_limit = 0,
    .max_records_per_key = 16,
    .max_records = 1000000,
    .cache_ttl_us = 60 * G_USEC_PER_SEC,
    .record_life_us = (gint64)72 * 3600 * G_USEC_PER_SEC,
    .max_future_us = 5 * 60 * G_USEC_PER_SEC,
    .republish_us = 10 * 60 * G_USEC_PER_SEC,
    .refresh_us = 15 * 60 * G_USEC_PER_SEC,
    .request_timeout_us = 3 * G_USEC_PER_SEC,
    .max_attempts = 3,
    .learn_named = TRUE,
  };
}

static void
key_entry_free(gpointer p)
{
  KeyEntry *ke = p;
  g_ptr_array_unref(ke->records);
  g_free(ke);
}

static void
cache_entry_free(gpointer p)
{
  CacheEntry *ce = p;
  g_ptr_array_unref(ce->records);
  g_free(ce);
}

static void
pending_free(gpointer p)
{
  Pending *pd = p;
  g_array_unref(pd->tried);
  g_clear_pointer(&pd->records, g_ptr_array_unref);
  g_free(pd);
}

static GPtrArray *
records_new(void)
{
  return g_ptr_array_new_with_free_func((GDestroyNotify)hark_gi_record_free);
}

HarkGiEngine *
hark_gi_engine_new(const HarkGiId *self, GBytes *self_addr, const HarkGiParams *params,
                   const HarkGiCallbacks *callbacks, gpointer user)
{
  HarkGiEngine *e = g_new0(HarkGiEngine, 1);
  e->self = *self;
  e->self_addr = self_addr != NULL ? g_bytes_ref(self_addr) : g_bytes_new(NULL, 0);
  if (params != NULL)
    e->p = *params;
  else
    hark_gi_params_init(&e->p);
  e->p.k = CLAMP(e->p.k, 1, HARK_GI_MAX_CONTACTS);
  e->p.r = CLAMP(e->p.r, 1, HARK_GI_MAX_CONTACTS);
  e->p.max_attempts = MAX(e->p.max_attempts, 1);
  e->cb = *callbacks;
  e->user = user;
  e->store = g_hash_table_new_full(hark_gi_id_hash, hark_gi_id_equal, g_free, key_entry_free);
  e->cache = g_hash_table_new_full(hark_gi_id_hash, hark_gi_id_equal, g_free, cache_entry_free);
  e->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, pending_free);
  e->own =
    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)hark_gi_record_free);
  e->asks = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
  e->mass_loss_us = G_MININT64;
  guint32 seed[HARK_GI_ID_LEN / 4];
  memcpy(seed, self->b, sizeof seed);
  e->rand = g_rand_new_with_seed_array(seed, G_N_ELEMENTS(seed));
  e->next_republish_us = e->next_refresh_us = e->next_expiry_us = e->next_own_us = G_MAXINT64;
  e->next_thin_us = G_MAXINT64;
  return e;
}

void
hark_gi_engine_free(HarkGiEngine *e)
{
  if (e == NULL)
    return;
  for (guint i = 0; i < NBUCKETS; i++)
    g_clear_pointer(&e->buckets[i], g_array_unref);
  g_hash_table_unref(e->store);
  g_hash_table_unref(e->cache);
  g_hash_table_unref(e->pending);
  g_hash_table_unref(e->own);
  g_hash_table_unref(e->asks);
  g_bytes_unref(e->self_addr);
  g_rand_free(e->rand);
  g_free(e);
}

const HarkGiId *
hark_gi_engine_self(HarkGiEngine *e)
{
  return &e->self;
}

const HarkGiStats *
hark_gi_engine_stats(HarkGiEngine *e)
{
  return &e->stats;
}

guint
hark_gi_engine_contact_count(HarkGiEngine *e)
{
  return e->ncontacts;
}

guint
hark_gi_engine_record_count(HarkGiEngine *e)
{
  return e->nrecords;
}

/* ---- the routing table ---- */

static void
contact_clear(gpointer p)
{
  HarkGiContact *c = p;
  g_clear_pointer(&c->addr, g_bytes_unref);
}

static HarkGiContact *
find_contact(HarkGiEngine *e, const HarkGiId *id)
{
  guint b = hark_gi_id_common_prefix(&e->self, id);
  GArray *bucket = b < NBUCKETS ? e->buckets[b] : NULL;
  for (guint i = 0; bucket != NULL && i < bucket->len; i++)
    if (id_eq(&g_array_index(bucket, HarkGiContact, i).id, id))
      return &g_array_index(bucket, HarkGiContact, i);
  return NULL;
}

gboolean
hark_gi_engine_has_contact(HarkGiEngine *e, const HarkGiId *peer)
{
  return find_contact(e, peer) != NULL;
}

/* The n ids closest to key among the contacts (and self when with_self), nearest first,
 * leaving out skip. Returns how many were written to out. */
static guint
closest(HarkGiEngine *e, const HarkGiId *key, guint n, gboolean with_self, const HarkGiId *skip,
        HarkGiId *out)
{
  guint have = 0;
  for (guint b = 0; b <= NBUCKETS; b++) {
    GArray *bucket = b < NBUCKETS ? e->buckets[b] : NULL;
    guint len = b < NBUCKETS ? (bucket != NULL ? bucket->len : 0) : (with_self ? 1 : 0);
    for (guint i = 0; i < len; i++) {
      const HarkGiId *id = b < NBUCKETS ? &g_array_index(bucket, HarkGiContact, i).id : &e->self;
      if (skip != NULL && id_eq(id, skip))
        continue;
      guint pos = have;
      while (pos > 0 && hark_gi_id_cmp_distance(id, &out[pos - 1], key) < 0)
        pos--;
      if (pos >= n)
        continue;
      memmove(&out[pos + 1], &out[pos], (MIN(have, n - 1) - pos) * sizeof *out);
      out[pos] = *id;
      have = MIN(have + 1, n);
    }
  }
  return have;
}

static gboolean
in_set(const HarkGiId *set, guint n, const HarkGiId *id)
{
  for (guint i = 0; i < n; i++)
    if (id_eq(&set[i], id))
      return TRUE;
  return FALSE;
}

/* The contact closest to key that is strictly closer than this SN (any: or not) and not
 * yet tried. A lookup of our own id (joining, refreshing) takes the closest contact to
 * start with, and a NODES lookup is never forwarded to the SN it looks for (that SN
 * started it). */
static gboolean
next_hop(HarkGiEngine *e, const HarkGiId *key, GArray *tried, gboolean any, HarkGiId *out)
{
  const HarkGiId *best = any || id_eq(key, &e->self) ? NULL : &e->self;
  const HarkGiId *pick = NULL;
  for (guint b = 0; b < NBUCKETS; b++) {
    GArray *bucket = e->buckets[b];
    for (guint i = 0; bucket != NULL && i < bucket->len; i++) {
      const HarkGiId *id = &g_array_index(bucket, HarkGiContact, i).id;
      if ((best == NULL || hark_gi_id_cmp_distance(id, best, key) < 0) && !id_eq(id, key) &&
          !ids_contain(tried, id)) {
        best = pick = id;
      }
    }
  }
  if (pick != NULL)
    *out = *pick;
  return pick != NULL;
}

/* 2*log2(N)+4, with log2(N) estimated as the deepest bucket that holds a contact. */
static guint8
hop_limit(HarkGiEngine *e)
{
  if (e->p.hop_limit > 0)
    return (guint8)MIN(e->p.hop_limit, 255);
  guint deepest = 0;
  for (guint b = 0; b < NBUCKETS; b++)
    if (e->buckets[b] != NULL && e->buckets[b]->len > 0)
      deepest = b;
  return (guint8)MIN(2 * (deepest + 1) + 4, 255);
}

static void send_message(HarkGiEngine *e, const HarkGiId *peer, HarkGiMessage *msg);

static void
send_records(HarkGiEngine *e, guint8 kind, const HarkGiId *to, const HarkGiId *key,
             GPtrArray *records)
{
  HarkGiMessage msg;
  hark_gi_message_init(&msg, kind, 0, key);
  for (guint i = 0; i < records->len && i < HARK_GI_MAX_RECORDS; i++)
    g_ptr_array_add(msg.records, hark_gi_record_copy(g_ptr_array_index(records, i)));
  send_message(e, to, &msg);
  hark_gi_message_clear(&msg);
}

/* A new contact may be among the r closest of keys we store: the closest holder (in our
 * view) hands it the records, so it is sent once and not by every holder. */
static void
replicate_to_new_contact(HarkGiEngine *e, const HarkGiId *peer)
{
  GHashTableIter it;
  gpointer k, v;
  HarkGiId set[HARK_GI_MAX_CONTACTS];
  g_hash_table_iter_init(&it, e->store);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    guint n = closest(e, k, e->p.r, TRUE, NULL, set);
    if (!in_set(set, n, peer))
      continue;
    n = closest(e, k, e->p.r, TRUE, peer, set);
    if (n > 0 && id_eq(&set[0], &e->self))
      send_records(e, HARK_GI_REPLICA, peer, k, ((KeyEntry *)v)->records);
  }
}

/* peer is leaving (still in the table): for the keys it was a replica of, the closest
 * holder left sends the records to the SN that takes its place. */
static void
replicate_on_leave(HarkGiEngine *e, const HarkGiId *peer)
{
  GHashTableIter it;
  gpointer k, v;
  HarkGiId before[HARK_GI_MAX_CONTACTS], after[HARK_GI_MAX_CONTACTS + 1];
  g_hash_table_iter_init(&it, e->store);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    guint nb = closest(e, k, e->p.r, TRUE, NULL, before);
    if (!in_set(before, nb, peer))
      continue;
    guint na = closest(e, k, e->p.r, TRUE, peer, after);
    if (na < e->p.r || !in_set(after, na, &e->self))
      continue;
    const HarkGiId *newcomer = &after[na - 1];
    if (in_set(before, nb, newcomer) || id_eq(newcomer, &e->self))
      continue;
    /* the closest holder other than the newcomer sends */
    if (id_eq(&after[0], &e->self) ||
        (id_eq(&after[0], newcomer) && na > 1 && id_eq(&after[1], &e->self)))
      send_records(e, HARK_GI_REPLICA, newcomer, k, ((KeyEntry *)v)->records);
  }
}

static gboolean
add_contact(HarkGiEngine *e, const HarkGiId *peer, GBytes *addr)
{
  if (id_eq(peer, &e->self))
    return FALSE;
  guint b = hark_gi_id_common_prefix(&e->self, peer);
  HarkGiContact *known = find_contact(e, peer);
  if (known != NULL) {
    if (addr != NULL && g_bytes_get_size(addr) > 0 && !g_bytes_equal(addr, known->addr)) {
      g_bytes_unref(known->addr);
      known->addr = g_bytes_ref(addr);
    }
    return FALSE;
  }
  if (e->buckets[b] == NULL) {
    e->buckets[b] = g_array_sized_new(FALSE, TRUE, sizeof(HarkGiContact), 2);
    g_array_set_clear_func(e->buckets[b], contact_clear);
  }
  /* A full bucket keeps its old contacts: a long-lived link is the better bet, and a
   * stranger cannot push them out by connecting (Kademlia's rule). */
  if (e->buckets[b]->len >= e->p.k)
    return FALSE;
  HarkGiContact c = { .id = *peer,
                      .addr = addr != NULL ? g_bytes_ref(addr) : g_bytes_new(NULL, 0) };
  g_array_append_val(e->buckets[b], c);
  if (e->ncontacts++ == 0 && e->next_refresh_us != G_MAXINT64) {
    /* we were alone (the first SN, or cut off): join through this one */
    e->joining = TRUE;
    e->next_refresh_us = 0;
  }
  replicate_to_new_contact(e, peer);
  return TRUE;
}

/* ---- sending ---- */

static void
send_message(HarkGiEngine *e, const HarkGiId *peer, HarkGiMessage *msg)
{
  HarkGiContact *c = find_contact(e, peer);
  g_autoptr(GBytes) bytes = hark_gi_message_encode_bytes(msg);
  e->stats.sent++;
  e->cb.send(e->user, peer, c != NULL ? c->addr : NULL, bytes);
}

static void
send_ping(HarkGiEngine *e, const HarkGiId *peer)
{
  HarkGiMessage msg;
  hark_gi_message_init(&msg, HARK_GI_PING, 0, peer);
  send_message(e, peer, &msg);
  hark_gi_message_clear(&msg);
}

gboolean
hark_gi_engine_peer_up(HarkGiEngine *e, const HarkGiId *peer, GBytes *addr, gint64 now_us)
{
  add_contact(e, peer, addr);
  return find_contact(e, peer) != NULL;
}

/* ---- the store and the cache ---- */

static gboolean
record_fresh(HarkGiEngine *e, const HarkGiRecord *r, gint64 now_us)
{
  return hark_gi_record_fresh(r, e->p.record_life_us, e->p.max_future_us, now_us);
}

/* A record of a message for key is filed under key and its time is neither past its life
 * nor too far ahead; what is not is refused before its signature is checked, and counted
 * (a peer that sends them is broken or hostile). */
static gboolean
record_usable(HarkGiEngine *e, const HarkGiId *key, const HarkGiRecord *r, gint64 now_us)
{
  if (!id_eq(&r->key, key)) {
    e->stats.misfiled++;
    return FALSE;
  }
  if (!record_fresh(e, r, now_us)) {
    e->stats.stale++;
    return FALSE;
  }
  return TRUE;
}

/* Verifies (unless this SN did already: checked) and keeps records for key; a newer record
 * of a device replaces the older one. Returns the number refused (forged, stale, for
 * another key, or over a limit). */
static guint
store_records(HarkGiEngine *e, const HarkGiId *key, GPtrArray *records, gboolean checked,
              gint64 now_us)
{
  guint refused = 0;
  for (guint i = 0; i < records->len; i++) {
    const HarkGiRecord *r = g_ptr_array_index(records, i);
    if (!record_usable(e, key, r, now_us)) {
      refused++;
      continue;
    }
    if (!checked && !e->cb.verify(e->user, r)) {
      e->stats.forged++;
      refused++;
      continue;
    }
    KeyEntry *ke = g_hash_table_lookup(e->store, key);
    if (ke == NULL) {
      ke = g_new0(KeyEntry, 1);
      ke->records = records_new();
      g_hash_table_insert(e->store, g_memdup2(key, sizeof *key), ke);
    }
    guint j = 0;
    while (j < ke->records->len &&
           strcmp(((HarkGiRecord *)g_ptr_array_index(ke->records, j))->device, r->device) != 0)
      j++;
    if (j < ke->records->len) {
      HarkGiRecord *old = g_ptr_array_index(ke->records, j);
      if (old->time_us < r->time_us) {
        hark_gi_record_free(old);
        g_ptr_array_index(ke->records, j) = hark_gi_record_copy(r);
        ke->sent_digest = 0;
      }
      continue;
    }
    if (ke->records->len >= e->p.max_records_per_key || e->nrecords >= e->p.max_records) {
      e->stats.stored_refused++;
      refused++;
      continue;
    }
    g_ptr_array_add(ke->records, hark_gi_record_copy(r));
    ke->sent_digest = 0;
    e->nrecords++;
  }
  if (e->next_expiry_us == G_MAXINT64 && e->nrecords > 0) {
    e->next_expiry_us = now_us + EXPIRY_PASS_US;
    e->next_republish_us = MIN(e->next_republish_us, now_us + e->p.republish_us);
  }
  return refused;
}

/* Copies of what this SN knows of key: its store, else a fresh cache entry. */
static GPtrArray *
local_records(HarkGiEngine *e, const HarkGiId *key, gint64 now_us, gboolean *from_cache)
{
  GPtrArray *out = records_new();
  KeyEntry *ke = g_hash_table_lookup(e->store, key);
  CacheEntry *ce = g_hash_table_lookup(e->cache, key);
  GPtrArray *src =
    ke != NULL ? ke->records : (ce != NULL && ce->expires_us > now_us ? ce->records : NULL);
  for (guint i = 0; src != NULL && i < src->len; i++) {
    const HarkGiRecord *r = g_ptr_array_index(src, i);
    if (record_fresh(e, r, now_us))
      g_ptr_array_add(out, hark_gi_record_copy(r));
  }
  if (from_cache != NULL)
    *from_cache = ke == NULL && out->len > 0;
  return out;
}

GPtrArray *
hark_gi_engine_stored(HarkGiEngine *e, const HarkGiId *key)
{
  GPtrArray *out = records_new();
  KeyEntry *ke = g_hash_table_lookup(e->store, key);
  for (guint i = 0; ke != NULL && i < ke->records->len; i++)
    g_ptr_array_add(out, hark_gi_record_copy(g_ptr_array_index(ke->records, i)));
  return out;
}

static void
cache_put(HarkGiEngine *e, const HarkGiId *key, GPtrArray *records, gint64 now_us)
{
  if (e->p.cache_ttl_us <= 0 || records->len == 0 || g_hash_table_contains(e->store, key))
    return;
  CacheEntry *ce = g_new0(CacheEntry, 1);
  ce->records = records_new();
  for (guint i = 0; i < records->len; i++)
    g_ptr_array_add(ce->records, hark_gi_record_copy(g_ptr_array_index(records, i)));
  ce->expires_us = now_us + e->p.cache_ttl_us;
  g_hash_table_replace(e->cache, g_memdup2(key, sizeof *key), ce);
  if (e->next_expiry_us == G_MAXINT64)
    e->next_expiry_us = now_us + EXPIRY_PASS_US;
}

/* The records of msg that are for key, fresh and pass verify (the others are counted). */
static GPtrArray *
verified_records(HarkGiEngine *e, const HarkGiId *key, GPtrArray *records, gint64 now_us)
{
  GPtrArray *out = records_new();
  for (guint i = 0; i < records->len; i++) {
    const HarkGiRecord *r = g_ptr_array_index(records, i);
    if (!record_usable(e, key, r, now_us))
      continue;
    if (!e->cb.verify(e->user, r)) {
      e->stats.forged++;
      continue;
    }
    g_ptr_array_add(out, hark_gi_record_copy(r));
  }
  return out;
}

gsize
hark_gi_engine_store_bytes(HarkGiEngine *e)
{
  /* what the allocations hold: hash table slots, entries, records, names and blobs */
  gsize bytes = 0;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, e->store);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    KeyEntry *ke = v;
    bytes += 3 * sizeof(gpointer) + sizeof(guint) + sizeof(HarkGiId) + sizeof(KeyEntry) +
             sizeof(GPtrArray) + 2 * sizeof(gpointer) + ke->records->len * sizeof(gpointer);
    for (guint i = 0; i < ke->records->len; i++) {
      const HarkGiRecord *r = g_ptr_array_index(ke->records, i);
      bytes += sizeof *r + strlen(r->device) + 1 + 32 /* GBytes */ + g_bytes_get_size(r->blob);
    }
  }
  return bytes;
}

/* ---- requests ---- */

static guint64
new_request(HarkGiEngine *e)
{
  guint64 id;
  do
    id = ((guint64)g_rand_int(e->rand) << 32) | g_rand_int(e->rand);
  while (id == 0 || g_hash_table_contains(e->pending, &id));
  return id;
}

static Pending *
pending_new(HarkGiEngine *e, guint8 kind, guint64 request, const HarkGiId *key,
            const HarkGiId *upstream, guint8 hops, guint8 ttl)
{
  Pending *p = g_new0(Pending, 1);
  p->request = request;
  p->kind = kind;
  p->key = *key;
  p->has_upstream = upstream != NULL;
  if (upstream != NULL)
    p->upstream = *upstream;
  p->tried = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  p->hops = hops;
  p->ttl = ttl;
  g_hash_table_insert(e->pending, &p->request, p);
  return p;
}

static void lookup_nodes(HarkGiEngine *e, const HarkGiId *target, gboolean bootstrap,
                         gint64 now_us);
static void finish(HarkGiEngine *e, Pending *p, guint8 flags, GPtrArray *records, GArray *contacts,
                   guint hops, gint64 now_us);

/* A random id whose common prefix with ours is exactly bucket b bits long. */
static void
bucket_target(HarkGiEngine *e, guint b, HarkGiId *out)
{
  guint byte = b / 8;
  guint8 bit = (guint8)(0x80 >> (b % 8));
  guint8 above = (guint8) ~((bit << 1) - 1);
  *out = e->self;
  for (guint i = byte + 1; i < HARK_GI_ID_LEN; i++)
    out->b[i] = (guint8)g_rand_int(e->rand);
  out->b[byte] = (guint8)((e->self.b[byte] & above) | (~e->self.b[byte] & bit) |
                          ((guint8)g_rand_int(e->rand) & (bit - 1)));
}

/* Looks into the region of every bucket marked thinned that is not full. */
static void
refresh_buckets(HarkGiEngine *e, gint64 now_us)
{
  for (guint b = 0; b < NBUCKETS; b++)
    if (e->thinned[b]) {
      HarkGiId target;
      e->thinned[b] = FALSE;
      if (e->buckets[b] != NULL && e->buckets[b]->len >= e->p.k)
        continue;
      bucket_target(e, b, &target);
      lookup_nodes(e, &target, FALSE, now_us);
    }
  e->next_thin_us = G_MAXINT64;
}

/* Our neighbourhood now tells how deep the table is (about log2 N buckets): a joining SN
 * looks into every bucket above that depth that is not full, an SN in service only into
 * the empty ones (SNs there joined after us and did not pick us). */
static gboolean
nearest_contact(HarkGiEngine *e, HarkGiId *out)
{
  return closest(e, &e->self, 1, FALSE, NULL, out) == 1;
}

static void
start_self_lookup(HarkGiEngine *e, gint64 now_us)
{
  e->have_nearest = nearest_contact(e, &e->nearest);
  lookup_nodes(e, &e->self, TRUE, now_us);
}

/* Asks our r closest contacts directly (NODES, LOCAL) for their closest to our id. */
static void
ask_nearest(HarkGiEngine *e, gint64 now_us)
{
  HarkGiId set[HARK_GI_MAX_CONTACTS];
  guint n = closest(e, &e->self, e->p.r, FALSE, NULL, set);
  HarkGiMessage msg;
  hark_gi_message_init(&msg, HARK_GI_NODES, new_request(e), &e->self);
  msg.flags = HARK_GI_FLAG_LOCAL;
  Pending *p = pending_new(e, HARK_GI_NODES, msg.request, &e->self, NULL, 0, 0);
  p->bootstrap = TRUE;
  p->state = PENDING_LOCAL;
  p->deadline_us = now_us + e->p.request_timeout_us;
  for (guint i = 0; i < n; i++) {
    g_array_append_val(p->tried, set[i]);
    send_message(e, &set[i], &msg);
  }
  hark_gi_message_clear(&msg);
  if (n == 0)
    finish(e, p, 0, NULL, NULL, 0, now_us);
}

static void
after_self_lookup(HarkGiEngine *e, gint64 now_us)
{
  /* The SN that answered may itself have a thin table (it joined a moment ago): while an
   * answer brings a closer SN than we knew, ask again from there (a recursive lookup's
   * version of Kademlia's iterative convergence). */
  HarkGiId now_nearest;
  if (nearest_contact(e, &now_nearest) && e->self_rounds < 4 &&
      (!e->have_nearest || hark_gi_id_cmp_distance(&now_nearest, &e->nearest, &e->self) < 0)) {
    e->self_rounds++;
    e->nearest = now_nearest;
    e->have_nearest = TRUE;
    ask_nearest(e, now_us);
    return;
  }
  e->self_rounds = 0;
  guint depth = (guint)(hop_limit(e) - 4) / 2;
  for (guint b = 0; b + 1 < depth && b < NBUCKETS; b++) {
    guint len = e->buckets[b] != NULL ? e->buckets[b]->len : 0;
    if (len == 0 || (e->joining && len < e->p.k))
      e->thinned[b] = TRUE;
  }
  e->joining = FALSE;
  refresh_buckets(e, now_us);
}

static void
send_answer(HarkGiEngine *e, const HarkGiId *to, guint64 request, const HarkGiId *key, guint8 flags,
            guint hops, GPtrArray *records, GArray *contacts)
{
  HarkGiMessage msg;
  hark_gi_message_init(&msg, HARK_GI_ANSWER, request, key);
  msg.flags = flags;
  msg.hops = (guint8)MIN(hops, 255);
  for (guint i = 0; records != NULL && i < records->len && i < HARK_GI_MAX_RECORDS; i++)
    g_ptr_array_add(msg.records, hark_gi_record_copy(g_ptr_array_index(records, i)));
  for (guint i = 0; contacts != NULL && i < contacts->len && i < HARK_GI_MAX_CONTACTS; i++) {
    HarkGiContact c = g_array_index(contacts, HarkGiContact, i);
    c.addr = g_bytes_ref(c.addr);
    g_array_append_val(msg.contacts, c);
  }
  send_message(e, to, &msg);
  hark_gi_message_clear(&msg);
}

/* Contacts an answer named: kept if their buckets have room, and told (a real SN opens
 * a link, which is how the other side learns us). */
static void
learn_contacts(HarkGiEngine *e, GArray *contacts)
{
  for (guint i = 0; e->p.learn_named && contacts != NULL && i < contacts->len && i < e->p.k; i++) {
    HarkGiContact *c = &g_array_index(contacts, HarkGiContact, i);
    if (add_contact(e, &c->id, c->addr))
      send_ping(e, &c->id);
  }
}

/* Our lookup request ended (found: ok). TRUE when it is to be asked again later (see
 * LOOKUP_RETRIES); else it is forgotten and the caller says done. */
static gboolean
ask_again_later(HarkGiEngine *e, guint64 request, gboolean ok, gint64 now_us)
{
  Ask *ask = g_hash_table_lookup(e->asks, &request);
  if (ask == NULL)
    return FALSE;
  gboolean mass = e->mass_loss_us != G_MININT64 && now_us - e->mass_loss_us < MASS_WINDOW_US;
  if (ok || ask->tries >= LOOKUP_RETRIES ||
      (!mass && now_us - ask->started_us < e->p.request_timeout_us)) {
    g_hash_table_remove(e->asks, &request);
    return FALSE;
  }
  ask->tries++;
  /* after the others' repair: SOON_US after the loss we noticed, or (none noticed yet: the
   * links to crashed SNs are not known dead yet) a timeout later than that */
  ask->again_us = mass ? MAX(now_us + RETRY_MARGIN_US, e->mass_loss_us + SOON_US + RETRY_MARGIN_US)
                       : now_us + SOON_US + e->p.request_timeout_us;
  return TRUE;
}

static void
finish(HarkGiEngine *e, Pending *p, guint8 flags, GPtrArray *records, GArray *contacts, guint hops,
       gint64 now_us)
{
  if (p->has_upstream) {
    send_answer(e, &p->upstream, p->request, &p->key, flags, hops, records, contacts);
    g_hash_table_remove(e->pending, &p->request);
    return;
  }
  guint64 request = p->request;
  guint8 kind = p->kind;
  gboolean bootstrap = p->bootstrap;
  g_hash_table_remove(e->pending, &request);
  if (kind == HARK_GI_NODES) {
    learn_contacts(e, contacts);
    if (bootstrap)
      after_self_lookup(e, now_us);
    return;
  }
  if (kind == HARK_GI_LOOKUP && ask_again_later(e, request, (flags & HARK_GI_FLAG_OK) != 0, now_us))
    return;
  if (e->cb.done != NULL)
    e->cb.done(e->user, request, (flags & HARK_GI_FLAG_OK) != 0, records, hops);
}

static GArray *
closest_contacts(HarkGiEngine *e, const HarkGiId *key, guint n)
{
  HarkGiId ids[HARK_GI_MAX_CONTACTS];
  guint got = closest(e, key, MIN(n, HARK_GI_MAX_CONTACTS), TRUE, NULL, ids);
  GArray *out = g_array_new(FALSE, TRUE, sizeof(HarkGiContact));
  g_array_set_clear_func(out, contact_clear);
  for (guint i = 0; i < got; i++) {
    HarkGiContact *known = find_contact(e, &ids[i]);
    HarkGiContact c = { .id = ids[i],
                        .addr = g_bytes_ref(known != NULL ? known->addr : e->self_addr) };
    g_array_append_val(out, c);
  }
  return out;
}

/* The request ends here: no contact is closer to its key than this SN. */
static void
terminal(HarkGiEngine *e, Pending *p, gint64 now_us)
{
  if (p->kind == HARK_GI_NODES) {
    g_autoptr(GArray) contacts = closest_contacts(e, &p->key, e->p.k);
    finish(e, p, HARK_GI_FLAG_OK, NULL, contacts, p->hops, now_us);
  } else if (p->kind == HARK_GI_STORE) {
    /* p's records were checked here: on arrival (route) or when our client published */
    guint refused = store_records(e, &p->key, p->records, TRUE, now_us);
    HarkGiId set[HARK_GI_MAX_CONTACTS];
    guint n = closest(e, &p->key, e->p.r - 1, FALSE, NULL, set);
    KeyEntry *ke = g_hash_table_lookup(e->store, &p->key);
    for (guint i = 0; ke != NULL && i < n; i++)
      send_records(e, HARK_GI_REPLICA, &set[i], &p->key, ke->records);
    finish(e, p, refused == 0 ? HARK_GI_FLAG_OK : HARK_GI_FLAG_REFUSED, NULL, NULL, p->hops,
           now_us);
  } else {
    g_autoptr(GPtrArray) have = local_records(e, &p->key, now_us, NULL);
    if (have->len > 0) {
      finish(e, p, HARK_GI_FLAG_OK, have, NULL, p->hops, now_us);
      return;
    }
    /* Not here: the closest SN may have just left or joined; ask the other replicas. */
    HarkGiId set[HARK_GI_MAX_CONTACTS];
    guint n = closest(e, &p->key, MAX(e->p.r - 1, 1), FALSE, NULL, set);
    g_array_set_size(p->tried, 0);
    p->state = PENDING_LOCAL;
    p->deadline_us = now_us + e->p.request_timeout_us;
    for (guint i = 0; i < n; i++) {
      HarkGiMessage msg;
      hark_gi_message_init(&msg, HARK_GI_LOOKUP, p->request, &p->key);
      msg.flags = HARK_GI_FLAG_LOCAL;
      msg.hops = p->hops + 1;
      g_array_append_val(p->tried, set[i]);
      send_message(e, &set[i], &msg);
      hark_gi_message_clear(&msg);
    }
    if (n == 0)
      finish(e, p, 0, NULL, NULL, p->hops, now_us);
  }
}

/* Sends p on to the closest untried contact closer to its key, or ends it here. */
static void
forward(HarkGiEngine *e, Pending *p, gint64 now_us)
{
  HarkGiId next;
  /* Our own look into a bucket's region starts at our contact closest to it even when that
   * is not closer than we are: none is when the bucket is empty (the hole it looks for),
   * and ending here would teach us nothing. */
  gboolean any = p->kind == HARK_GI_NODES && !p->has_upstream && p->attempts == 0;
  if (p->ttl > 0 && p->attempts < e->p.max_attempts && next_hop(e, &p->key, p->tried, any, &next)) {
    HarkGiMessage msg;
    hark_gi_message_init(&msg, p->kind, p->request, &p->key);
    msg.hops = p->hops + 1;
    msg.ttl = p->ttl - 1;
    for (guint i = 0; p->records != NULL && i < p->records->len; i++)
      g_ptr_array_add(msg.records, hark_gi_record_copy(g_ptr_array_index(p->records, i)));
    p->state = PENDING_FORWARD;
    p->next = next;
    g_array_append_val(p->tried, next);
    p->attempts++;
    p->deadline_us = now_us + e->p.request_timeout_us;
    send_message(e, &next, &msg);
    hark_gi_message_clear(&msg);
    return;
  }
  terminal(e, p, now_us);
}

/* Every record of a STORE from another SN is for its key, fresh and verified (each one
 * that is not is counted); a STORE without records carries nothing to keep. */
static gboolean
store_acceptable(HarkGiEngine *e, HarkGiMessage *msg, gint64 now_us)
{
  gboolean ok = msg->records->len > 0;
  for (guint i = 0; i < msg->records->len; i++) {
    const HarkGiRecord *r = g_ptr_array_index(msg->records, i);
    if (!record_usable(e, &msg->key, r, now_us)) {
      ok = FALSE;
    } else if (!e->cb.verify(e->user, r)) {
      e->stats.forged++;
      ok = FALSE;
    }
  }
  return ok;
}

static void
route(HarkGiEngine *e, HarkGiMessage *msg, const HarkGiId *from, gint64 now_us)
{
  if (g_hash_table_contains(e->pending, &msg->request)) {
    e->stats.duplicates++;
    return;
  }
  /* Checked at every hop, not only at the last: an honest SN does not carry a hostile
   * one's forged records on to the SNs that store them. Refused whole (an honest SN's
   * STORE holds one record of its own client). */
  if (msg->kind == HARK_GI_STORE && from != NULL && !store_acceptable(e, msg, now_us)) {
    g_autofree gchar *hex = hark_gi_id_to_hex(from, 8);
    e->stats.refused_stores++;
    g_debug("gi: refused a STORE from SN %s: a record is forged, stale or misfiled", hex);
    send_answer(e, from, msg->request, &msg->key, HARK_GI_FLAG_REFUSED, msg->hops, NULL, NULL);
    return;
  }
  if (msg->kind == HARK_GI_LOOKUP) {
    gboolean cached = FALSE;
    g_autoptr(GPtrArray) have = local_records(e, &msg->key, now_us, &cached);
    if (have->len > 0) {
      Pending *p = pending_new(e, msg->kind, msg->request, &msg->key, from, msg->hops, 0);
      e->stats.cache_hits += cached;
      finish(e, p, HARK_GI_FLAG_OK, have, NULL, msg->hops, now_us);
      return;
    }
  }
  Pending *p = pending_new(e, msg->kind, msg->request, &msg->key, from, msg->hops,
                           MIN(msg->ttl, hop_limit(e)));
  if (msg->kind == HARK_GI_STORE) {
    p->records = msg->records;
    msg->records = records_new();
  }
  forward(e, p, now_us);
}

static gchar *
own_name(const HarkGiId *key, const char *device)
{
  g_autofree gchar *hex = hark_gi_id_to_hex(key, HARK_GI_ID_LEN);
  return g_strdup_printf("%s/%s", hex, device);
}

static guint64
start_request(HarkGiEngine *e, guint8 kind, guint64 request, const HarkGiId *key,
              GPtrArray *records, gint64 now_us)
{
  HarkGiMessage msg;
  hark_gi_message_init(&msg, kind, request, key);
  msg.ttl = hop_limit(e);
  for (guint i = 0; records != NULL && i < records->len; i++)
    g_ptr_array_add(msg.records, hark_gi_record_copy(g_ptr_array_index(records, i)));
  route(e, &msg, NULL, now_us);
  hark_gi_message_clear(&msg);
  return request;
}

static guint64
start(HarkGiEngine *e, guint8 kind, const HarkGiId *key, GPtrArray *records, gint64 now_us)
{
  return start_request(e, kind, new_request(e), key, records, now_us);
}

guint64
hark_gi_engine_lookup(HarkGiEngine *e, const HarkGiId *key, gint64 now_us)
{
  guint64 request = new_request(e);
  Ask *ask = g_new0(Ask, 1);
  ask->key = *key;
  ask->started_us = now_us;
  ask->again_us = G_MAXINT64;
  g_hash_table_insert(e->asks, g_memdup2(&request, sizeof request), ask);
  return start_request(e, HARK_GI_LOOKUP, request, key, NULL, now_us);
}

/* Our lookups whose time to be asked again came (their request ids stay the same). */
static void
ask_again(HarkGiEngine *e, gint64 now_us)
{
  g_autoptr(GArray) due = g_array_new(FALSE, FALSE, sizeof(guint64));
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, e->asks);
  while (g_hash_table_iter_next(&it, &k, &v))
    if (((Ask *)v)->again_us <= now_us)
      g_array_append_val(due, *(guint64 *)k);
  for (guint i = 0; i < due->len; i++) {
    guint64 request = g_array_index(due, guint64, i);
    Ask *ask = g_hash_table_lookup(e->asks, &request);
    if (ask == NULL || g_hash_table_contains(e->pending, &request))
      continue;
    ask->again_us = G_MAXINT64;
    ask->started_us = now_us;
    start_request(e, HARK_GI_LOOKUP, request, &ask->key, NULL, now_us);
  }
}

guint64
hark_gi_engine_publish(HarkGiEngine *e, const HarkGiRecord *record, gint64 now_us)
{
  g_autoptr(GPtrArray) records = records_new();
  g_ptr_array_add(records, hark_gi_record_copy(record));
  if (!record_fresh(e, record, now_us) || !e->cb.verify(e->user, record)) {
    e->stats.forged++;
    guint64 request = new_request(e);
    if (e->cb.done != NULL)
      e->cb.done(e->user, request, FALSE, NULL, 0);
    return request;
  }
  g_hash_table_replace(e->own, own_name(&record->key, record->device), hark_gi_record_copy(record));
  e->next_own_us = MIN(e->next_own_us, now_us + e->p.republish_us);
  return start(e, HARK_GI_STORE, &record->key, records, now_us);
}

void
hark_gi_engine_forget(HarkGiEngine *e, const HarkGiId *key, const char *device)
{
  g_autofree gchar *name = own_name(key, device);
  g_hash_table_remove(e->own, name);
}

/* The records of this SN's clients are stored again each republish period while their
 * devices stay: a record whose r replicas all crashed at once comes back within it. */
static void
republish_own(HarkGiEngine *e, gint64 now_us)
{
  g_autoptr(GPtrArray) again = records_new();
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, e->own);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    if (record_fresh(e, v, now_us))
      g_ptr_array_add(again, hark_gi_record_copy(v));
    else
      g_hash_table_iter_remove(&it);
  }
  for (guint i = 0; i < again->len; i++) {
    g_autoptr(GPtrArray) one = records_new();
    HarkGiRecord *r = g_ptr_array_index(again, i);
    g_ptr_array_add(one, hark_gi_record_copy(r));
    start(e, HARK_GI_STORE, &r->key, one, now_us);
  }
  e->next_own_us = g_hash_table_size(e->own) > 0 ? now_us + e->p.republish_us : G_MAXINT64;
}

static void
lookup_nodes(HarkGiEngine *e, const HarkGiId *target, gboolean bootstrap, gint64 now_us)
{
  HarkGiMessage msg;
  hark_gi_message_init(&msg, HARK_GI_NODES, new_request(e), target);
  msg.ttl = hop_limit(e);
  Pending *p = pending_new(e, msg.kind, msg.request, target, NULL, 0, msg.ttl);
  p->bootstrap = bootstrap;
  hark_gi_message_clear(&msg);
  forward(e, p, now_us);
}

void
hark_gi_engine_bootstrap(HarkGiEngine *e, const HarkGiContact *known, guint n, gint64 now_us)
{
  for (guint i = 0; i < n; i++)
    if (add_contact(e, &known[i].id, known[i].addr))
      send_ping(e, &known[i].id);
  e->joining = TRUE;
  start_self_lookup(e, now_us);
  e->next_refresh_us = MIN(e->next_refresh_us, now_us + e->p.refresh_us);
}

/* ---- receiving ---- */

/* A replica that has nothing names its closest contacts: one closer to the key than we
 * are means our table missed it (it joined after us); routing goes on from there. */
static void
take_hint(HarkGiEngine *e, Pending *p, GArray *contacts)
{
  for (guint i = 0; contacts != NULL && i < contacts->len; i++) {
    const HarkGiId *id = &g_array_index(contacts, HarkGiContact, i).id;
    const HarkGiId *best = p->have_hint ? &p->hint : &e->self;
    if (hark_gi_id_cmp_distance(id, best, &p->key) < 0) {
      p->hint = *id;
      p->have_hint = TRUE;
    }
  }
}

static void
local_done(HarkGiEngine *e, Pending *p, gint64 now_us)
{
  if (!p->have_hint || p->ttl == 0) {
    finish(e, p, 0, NULL, NULL, p->hops, now_us);
    return;
  }
  HarkGiContact c = { .id = p->hint, .addr = NULL };
  if (e->p.learn_named && add_contact(e, &c.id, NULL))
    send_ping(e, &c.id);
  HarkGiMessage msg;
  hark_gi_message_init(&msg, p->kind, p->request, &p->key);
  msg.hops = p->hops + 1;
  msg.ttl = p->ttl - 1;
  p->state = PENDING_FORWARD;
  p->next = p->hint;
  p->have_hint = FALSE;
  g_array_append_val(p->tried, p->next);
  p->deadline_us = now_us + e->p.request_timeout_us;
  e->stats.rerouted++;
  send_message(e, &p->next, &msg);
  hark_gi_message_clear(&msg);
}

static void
handle_answer(HarkGiEngine *e, const HarkGiId *from, HarkGiMessage *msg, gint64 now_us)
{
  Pending *p = g_hash_table_lookup(e->pending, &msg->request);
  /* late (we gave up on it or asked another SN since), a second copy, or not ours */
  if (p == NULL || !id_eq(&p->key, &msg->key) ||
      (p->state == PENDING_FORWARD && !id_eq(&p->next, from)) ||
      (p->state == PENDING_LOCAL && !ids_contain(p->tried, from))) {
    e->stats.unsolicited++;
    return;
  }
  g_autoptr(GPtrArray) records = verified_records(e, &p->key, msg->records, now_us);
  if (p->state == PENDING_LOCAL && p->kind == HARK_GI_NODES) {
    ids_remove(p->tried, from);
    learn_contacts(e, msg->contacts);
    if (p->tried->len == 0)
      finish(e, p, HARK_GI_FLAG_OK, NULL, NULL, p->hops, now_us);
    return;
  }
  if (p->state == PENDING_LOCAL) {
    ids_remove(p->tried, from);
    if (records->len > 0) {
      /* we are the closest SN now: keep the records (the repair of a lost replica) */
      store_records(e, &p->key, records, TRUE, now_us);
      finish(e, p, HARK_GI_FLAG_OK, records, NULL, p->hops + 1, now_us);
      return;
    }
    take_hint(e, p, msg->contacts);
    if (p->tried->len == 0)
      local_done(e, p, now_us);
    return;
  }
  if (p->kind == HARK_GI_LOOKUP)
    cache_put(e, &p->key, records, now_us);
  guint8 flags = msg->flags & (HARK_GI_FLAG_OK | HARK_GI_FLAG_REFUSED);
  if (p->kind == HARK_GI_LOOKUP && records->len == 0)
    flags &= ~HARK_GI_FLAG_OK;
  GArray *contacts = p->kind == HARK_GI_NODES ? msg->contacts : NULL;
  if (contacts != NULL && contacts->len > e->p.k)
    g_array_set_size(contacts, e->p.k);
  finish(e, p, flags, p->kind == HARK_GI_LOOKUP ? records : NULL, contacts, msg->hops, now_us);
}

static void
handle_local_nodes(HarkGiEngine *e, const HarkGiId *from, HarkGiMessage *msg)
{
  g_autoptr(GArray) contacts = closest_contacts(e, &msg->key, e->p.k);
  send_answer(e, from, msg->request, &msg->key, HARK_GI_FLAG_OK, 0, NULL, contacts);
}

static void
handle_local_lookup(HarkGiEngine *e, const HarkGiId *from, HarkGiMessage *msg, gint64 now_us)
{
  g_autoptr(GPtrArray) have = local_records(e, &msg->key, now_us, NULL);
  /* nothing here: hints for the asker, our k closest to the key (the asker's table may
   * have a hole where ours has not; it takes the closest that is closer than itself) */
  g_autoptr(GArray) near = have->len == 0 ? closest_contacts(e, &msg->key, e->p.k) : NULL;
  send_answer(e, from, msg->request, &msg->key, have->len > 0 ? HARK_GI_FLAG_OK : 0, msg->hops,
              have, near);
}

/* A replica is kept only by an SN that is among the 2r closest to its key in its own
 * view: an SN cannot fill another's store with records of keys far from it. */
static void
handle_replica(HarkGiEngine *e, const HarkGiId *from, HarkGiMessage *msg, gint64 now_us)
{
  HarkGiId set[HARK_GI_MAX_CONTACTS];
  guint n = closest(e, &msg->key, MIN(2 * e->p.r, HARK_GI_MAX_CONTACTS), TRUE, NULL, set);
  if (in_set(set, n, &e->self)) {
    store_records(e, &msg->key, msg->records, FALSE, now_us);
    return;
  }
  e->stats.refused_replicas++;
  /* The sender took itself for one of the closest (its table missed SNs that joined after
   * it): genuine records walk on, one message, to our contact closest to the key if that is
   * closer than the sender. Each step is strictly closer, so the walk ends. */
  HarkGiId next;
  g_autoptr(GArray) tried = g_array_new(FALSE, FALSE, sizeof(HarkGiId));
  g_array_append_val(tried, *from);
  if (!next_hop(e, &msg->key, tried, FALSE, &next) ||
      hark_gi_id_cmp_distance(&next, from, &msg->key) >= 0)
    return;
  g_autoptr(GPtrArray) good = verified_records(e, &msg->key, msg->records, now_us);
  if (good->len > 0)
    send_records(e, HARK_GI_REPLICA, &next, &msg->key, good);
}

void
hark_gi_engine_receive(HarkGiEngine *e, const HarkGiId *from, GBytes *bytes, gint64 now_us)
{
  HarkGiMessage msg;
  g_autoptr(GError) error = NULL;
  e->stats.received++;
  if (!hark_gi_message_decode_bytes(bytes, &msg, &error)) {
    g_autofree gchar *hex = hark_gi_id_to_hex(from, 8);
    e->stats.malformed++;
    g_debug("gi: refused a message from SN %s: %s", hex, error->message);
    return;
  }
  add_contact(e, from, NULL); /* the link authenticated it */
  switch (msg.kind) {
  case HARK_GI_PING:
    break;
  case HARK_GI_LOOKUP:
    if (msg.flags & HARK_GI_FLAG_LOCAL)
      handle_local_lookup(e, from, &msg, now_us);
    else
      route(e, &msg, from, now_us);
    break;
  case HARK_GI_NODES:
    if (msg.flags & HARK_GI_FLAG_LOCAL) {
      handle_local_nodes(e, from, &msg);
      break;
    }
    route(e, &msg, from, now_us);
    break;
  case HARK_GI_STORE:
    route(e, &msg, from, now_us);
    break;
  case HARK_GI_ANSWER:
    handle_answer(e, from, &msg, now_us);
    break;
  case HARK_GI_REPLICA:
    handle_replica(e, from, &msg, now_us);
    break;
  }
  hark_gi_message_clear(&msg);
}

/* ---- link loss and time ---- */

static GArray *
pending_ids(HarkGiEngine *e)
{
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint64));
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init(&it, e->pending);
  while (g_hash_table_iter_next(&it, &k, NULL))
    g_array_append_val(ids, *(guint64 *)k);
  return ids;
}

static void
note_loss(HarkGiEngine *e, gint64 now_us)
{
  if (now_us - e->loss_window_us > MASS_WINDOW_US) {
    e->loss_window_us = now_us;
    e->losses = 0;
  }
  e->losses++;
  if (e->losses < MAX(2, (guint)((e->ncontacts + e->losses) * MASS_LOSS_SHARE)))
    return;
  e->mass_loss_us = now_us;
  if (g_hash_table_size(e->own) > 0)
    e->next_own_us = MIN(e->next_own_us, now_us + SOON_US);
}

void
hark_gi_engine_peer_down(HarkGiEngine *e, const HarkGiId *peer, gint64 now_us)
{
  if (find_contact(e, peer) != NULL) {
    replicate_on_leave(e, peer);
    guint b = hark_gi_id_common_prefix(&e->self, peer);
    GArray *bucket = e->buckets[b];
    for (guint i = 0; i < bucket->len; i++)
      if (id_eq(&g_array_index(bucket, HarkGiContact, i).id, peer)) {
        g_array_remove_index_fast(bucket, i);
        break;
      }
    e->ncontacts--;
    e->thinned[b] = TRUE;
    if (bucket->len < THIN_BUCKET)
      e->next_thin_us = MIN(e->next_thin_us, now_us + SOON_US);
    note_loss(e, now_us);
  }
  g_autoptr(GArray) ids = pending_ids(e);
  for (guint i = 0; i < ids->len; i++) {
    Pending *p = g_hash_table_lookup(e->pending, &g_array_index(ids, guint64, i));
    if (p == NULL)
      continue;
    if (p->has_upstream && id_eq(&p->upstream, peer)) {
      g_hash_table_remove(e->pending, &p->request); /* nobody left to answer */
    } else if (p->state == PENDING_FORWARD && id_eq(&p->next, peer)) {
      e->stats.rerouted++;
      forward(e, p, now_us);
    } else if (p->state == PENDING_LOCAL && ids_contain(p->tried, peer)) {
      ids_remove(p->tried, peer);
      if (p->tried->len == 0)
        local_done(e, p, now_us);
    }
  }
}

static void
expire(HarkGiEngine *e, gint64 now_us)
{
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, e->store);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    GPtrArray *records = ((KeyEntry *)v)->records;
    for (guint i = records->len; i-- > 0;)
      if (!record_fresh(e, g_ptr_array_index(records, i), now_us)) {
        g_ptr_array_remove_index_fast(records, i);
        e->nrecords--;
        e->stats.expired++;
      }
    if (records->len == 0)
      g_hash_table_iter_remove(&it);
  }
  g_hash_table_iter_init(&it, e->cache);
  while (g_hash_table_iter_next(&it, &k, &v))
    if (((CacheEntry *)v)->expires_us <= now_us)
      g_hash_table_iter_remove(&it);
  e->next_expiry_us =
    e->nrecords > 0 || g_hash_table_size(e->cache) > 0 ? now_us + EXPIRY_PASS_US : G_MAXINT64;
}

/* Sends each key's records to its r closest SNs when that set changed since the last
 * pass (a quiet network costs nothing); a key we are no longer close to is handed on. */
static void
republish(HarkGiEngine *e, gint64 now_us)
{
  GHashTableIter it;
  gpointer k, v;
  HarkGiId set[HARK_GI_MAX_CONTACTS];
  g_hash_table_iter_init(&it, e->store);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    KeyEntry *ke = v;
    guint n = closest(e, k, e->p.r, TRUE, NULL, set);
    if (!in_set(set, n, &e->self))
      n = closest(e, k, e->p.r, FALSE, NULL, set);
    guint64 digest = 1469598103934665603ull;
    for (guint i = 0; i < n; i++)
      for (guint j = 0; j < 8; j++)
        digest = (digest ^ set[i].b[j]) * 1099511628211ull;
    if (digest == ke->sent_digest)
      continue;
    ke->sent_digest = digest;
    for (guint i = 0; i < n; i++)
      if (!id_eq(&set[i], &e->self))
        send_records(e, HARK_GI_REPLICA, &set[i], k, ke->records);
  }
  e->next_republish_us = e->nrecords > 0 ? now_us + e->p.republish_us : G_MAXINT64;
}

void
hark_gi_engine_tick(HarkGiEngine *e, gint64 now_us)
{
  g_autoptr(GArray) ids = pending_ids(e);
  for (guint i = 0; i < ids->len; i++) {
    Pending *p = g_hash_table_lookup(e->pending, &g_array_index(ids, guint64, i));
    if (p == NULL || p->deadline_us > now_us)
      continue;
    e->stats.timeouts++;
    if (p->state == PENDING_FORWARD)
      forward(e, p, now_us);
    else
      local_done(e, p, now_us);
  }
  ask_again(e, now_us);
  if (e->next_expiry_us <= now_us)
    expire(e, now_us);
  if (e->next_republish_us <= now_us)
    republish(e, now_us);
  if (e->next_own_us <= now_us)
    republish_own(e, now_us);
  if (e->next_thin_us <= now_us)
    refresh_buckets(e, now_us);
  if (e->next_refresh_us <= now_us) {
    /* the neighbourhood is what routing needs right: look ourselves up each round */
    e->next_refresh_us = now_us + e->p.refresh_us;
    start_self_lookup(e, now_us);
  }
}

gint64
hark_gi_engine_next_deadline(HarkGiEngine *e)
{
  gint64 next = MIN(MIN(e->next_expiry_us, e->next_own_us),
                    MIN(e->next_republish_us, MIN(e->next_refresh_us, e->next_thin_us)));
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, e->pending);
  while (g_hash_table_iter_next(&it, NULL, &v))
    next = MIN(next, ((Pending *)v)->deadline_us);
  g_hash_table_iter_init(&it, e->asks);
  while (g_hash_table_iter_next(&it, NULL, &v))
    next = MIN(next, ((Ask *)v)->again_us);
  return next;
}
