/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The directory simulation (directory-sim.h). One process, simulated time: a binary heap
 * of events (message deliveries, engine timers, joins, departures, publishes, lookups).
 * Each SN runs the real engine; the fabric models the SNs' TLS links: a message takes the
 * link's one-way delay, a lost segment is resent after rto_ms (so loss shows as delay, as
 * on TCP), and a link to an SN that left is reported down to the sender (at once when it
 * left in order, after keepalive_s when it crashed). */
#include "directory-sim.h"

#include "flood-engine.h"
#include "gi-engine.h"

#include <string.h>

#define US_PER_MS 1000
#define US_PER_S G_USEC_PER_SEC
#define BLOB_BYTES 400 /* about a signed presence record with its certificate chain */

enum {
  EV_DELIVER,
  EV_TIMER,
  EV_DOWN,
  EV_JOIN,
  EV_PUBLISH,
  EV_RECONNECT,
  EV_LOOKUP,
  EV_CHURN,
  EV_MASS,
  EV_ASK_AGAIN
};

typedef struct {
  gint64 t;
  guint64 seq;
  guint32 type, a, b, tag;
  GBytes *msg;
} Event;

typedef struct _Sim Sim;

typedef struct {
  Sim *sim;
  guint slot;
  HarkGiId id;
  gboolean alive, crashed;
  gint64 dead_at;
  HarkGiEngine *gi;
  HarkFloodEngine *flood;
  gint64 timer_t;
} Sn;

typedef struct {
  guint user;
  guint sn;
  gchar name[24];
} Device;

typedef struct {
  HarkGiId key;
  guint first_device, ndevices;
} User;

typedef struct {
  guint user, sn;
  gint64 start, end;
  gboolean done, found;
  guint hops;
  guint64 request;
  guint64 msgs;
  GString *trail; /* HARK_SIM_DEBUG: the messages the lookup caused */
} Lookup;

struct _Sim {
  HarkDirSimParams p;
  GRand *rand;
  gint64 now;
  guint64 seq;
  GArray *heap; /* Event */
  GPtrArray *sns; /* Sn* */
  GHashTable *by_id; /* HarkGiId* -> Sn* */
  GArray *devices, *users, *lookups;
  guint32 tag; /* the lookup (index + 1) the current event belongs to, or 0 */
  guint current_lookup; /* set while a lookup is being started (done may come at once) */
  GHashTable *by_request; /* guint64* (in lookups) -> lookup index + 1 */
  guint64 messages, idle_messages;
  gint64 idle_from, idle_to;
  guint departed, joined, forged, alive;
  guint asked_again; /* lookups whose SN left before the answer, asked again elsewhere */
};

/* ---- the event heap ---- */

static gboolean
earlier(const Event *a, const Event *b)
{
  return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void
push(Sim *s, gint64 t, guint32 type, guint32 a, guint32 b, GBytes *msg)
{
  Event ev = { .t = t,
               .seq = s->seq++,
               .type = type,
               .a = a,
               .b = b,
               .tag = s->tag,
               .msg = msg != NULL ? g_bytes_ref(msg) : NULL };
  g_array_append_val(s->heap, ev);
  Event *h = (Event *)s->heap->data;
  for (guint i = s->heap->len - 1; i > 0;) {
    guint up = (i - 1) / 2;
    if (!earlier(&h[i], &h[up]))
      break;
    Event tmp = h[i];
    h[i] = h[up];
    h[up] = tmp;
    i = up;
  }
}

static Event
pop(Sim *s)
{
  Event *h = (Event *)s->heap->data;
  Event top = h[0];
  h[0] = h[s->heap->len - 1];
  g_array_set_size(s->heap, s->heap->len - 1);
  h = (Event *)s->heap->data;
  guint n = s->heap->len;
  for (guint i = 0;;) {
    guint l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && earlier(&h[l], &h[m]))
      m = l;
    if (r < n && earlier(&h[r], &h[m]))
      m = r;
    if (m == i)
      break;
    Event tmp = h[i];
    h[i] = h[m];
    h[m] = tmp;
    i = m;
  }
  return top;
}

/* ---- the fabric ---- */

static gint64
link_delay(Sim *s, guint a, guint b)
{
  guint lo = MIN(a, b), hi = MAX(a, b);
  guint32 h = (lo * 2654435761u) ^ (hi * 40503u + s->p.seed);
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  guint span = s->p.delay_max_ms - s->p.delay_min_ms + 1;
  gint64 d = (gint64)(s->p.delay_min_ms + h % span) * US_PER_MS;
  while (s->p.loss > 0 && g_rand_double(s->rand) < s->p.loss)
    d += (gint64)s->p.rto_ms * US_PER_MS;
  return d;
}

static Sn *
sn_at(Sim *s, guint slot)
{
  return g_ptr_array_index(s->sns, slot);
}

/* from learns that its link to dead is gone. */
static void
report_down(Sim *s, Sn *from, Sn *dead)
{
  gint64 when = s->now + 2 * link_delay(s, from->slot, dead->slot);
  if (dead->crashed)
    when = MAX(when, dead->dead_at + (gint64)s->p.keepalive_s * US_PER_S);
  push(s, when, EV_DOWN, from->slot, dead->slot, NULL);
}

/* The request id of an encoded gi message without decoding it all (millions are sent):
 * in the serialised (yyt...) it is the native guint64 at offset 8, after the two bytes and
 * the padding to its alignment. */
static guint64
request_of(GBytes *message)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(message, &len);
  guint64 request = 0;
  if (len >= 16)
    memcpy(&request, data + 8, sizeof request);
  return request;
}

static void
sim_send(gpointer user, const HarkGiId *peer, GBytes *addr, GBytes *message)
{
  Sn *from = user;
  Sim *s = from->sim;
  Sn *to = g_hash_table_lookup(s->by_id, peer);
  guint32 tag = s->tag;
  s->messages++;
  if (tag == 0 && g_hash_table_size(s->by_request) > 0) {
    /* sent from an engine's timer (a timeout's next try, a lookup asked again): the
     * lookup whose request id it carries caused it */
    tag = GPOINTER_TO_UINT(g_hash_table_lookup(s->by_request, &(guint64){ request_of(message) }));
  }
  if (tag > 0) {
    Lookup *l = &g_array_index(s->lookups, Lookup, tag - 1);
    l->msgs++;
    if (g_getenv("HARK_SIM_DEBUG") != NULL && to != NULL) {
      HarkGiMessage m;
      if (l->trail == NULL)
        l->trail = g_string_new(NULL);
      if (hark_gi_message_decode_bytes(message, &m, NULL)) {
        g_string_append_printf(l->trail, " %u>%u:%u/%x/%u%s", from->slot, to->slot, m.kind,
                               m.flags, m.contacts->len, to->alive ? "" : "(dead)");
        hark_gi_message_clear(&m);
      }
    }
  }
  if (s->now >= s->idle_from && s->now < s->idle_to)
    s->idle_messages++;
  if (to == NULL)
    return; /* an id nobody has: the link cannot be made (the engine times out) */
  if (!to->alive) {
    report_down(s, from, to);
    return;
  }
  push(s, s->now + link_delay(s, from->slot, to->slot), EV_DELIVER, from->slot, to->slot, message);
}

static void
record_mac(const HarkGiRecord *r, guint8 out[32])
{
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  gsize len = 32;
  g_checksum_update(sum, (const guchar *)"sim-signing-key", 15);
  g_checksum_update(sum, r->key.b, HARK_GI_ID_LEN);
  g_checksum_update(sum, (const guchar *)r->device, (gssize)strlen(r->device));
  g_checksum_update(sum, (const guchar *)&r->time_us, sizeof r->time_us);
  g_checksum_get_digest(sum, out, &len);
}

/* Stands in for the signature check of a presence record. */
static gboolean
sim_verify(gpointer user, const HarkGiRecord *r)
{
  guint8 mac[32];
  gsize len = 0;
  const guint8 *blob = g_bytes_get_data(r->blob, &len);
  record_mac(r, mac);
  gboolean ok = len >= 32 && memcmp(blob, mac, 32) == 0;
  if (!ok)
    ((Sn *)user)->sim->forged++;
  return ok;
}

static void debug_failure(Sim *s, Lookup *l);

static void
sim_done(gpointer user, guint64 request, gboolean ok, GPtrArray *records, guint hops)
{
  Sim *s = ((Sn *)user)->sim;
  guint idx = s->current_lookup;
  if (idx == G_MAXUINT) {
    /* a lookup that was started earlier: find it by its request id */
    guint found = GPOINTER_TO_UINT(g_hash_table_lookup(s->by_request, &request));
    if (found == 0)
      return; /* a publish */
    idx = found - 1;
    if (g_array_index(s->lookups, Lookup, idx).sn != ((Sn *)user)->slot)
      return;
  }
  Lookup *l = &g_array_index(s->lookups, Lookup, idx);
  l->done = TRUE;
  l->end = s->now;
  l->hops = hops;
  const User *u = &g_array_index(s->users, User, l->user);
  for (guint i = 0; ok && records != NULL && i < records->len; i++)
    if (memcmp(((HarkGiRecord *)g_ptr_array_index(records, i))->key.b, u->key.b, HARK_GI_ID_LEN) ==
        0)
      l->found = TRUE;
  if (!l->found && g_getenv("HARK_SIM_DEBUG") != NULL) {
    g_printerr("at %.1f s (%.0f ms after start): ", (double)s->now / US_PER_S,
               (double)(s->now - l->start) / US_PER_MS);
    debug_failure(s, l);
  }
}

static void
schedule_timer(Sim *s, Sn *sn)
{
  if (!sn->alive)
    return;
  gint64 d = sn->gi != NULL ? hark_gi_engine_next_deadline(sn->gi)
                            : hark_flood_engine_next_deadline(sn->flood);
  if (d >= sn->timer_t)
    return;
  sn->timer_t = MAX(d, s->now);
  push(s, sn->timer_t, EV_TIMER, sn->slot, 0, NULL);
}

/* ---- super nodes ---- */

static guint
random_alive(Sim *s, guint avoid)
{
  for (;;) {
    guint slot = g_rand_int_range(s->rand, 0, (gint32)s->sns->len);
    Sn *sn = sn_at(s, slot);
    if (sn->alive && slot != avoid)
      return slot;
  }
}

static guint alive_count(Sim *s);

static Sn *
sn_new(Sim *s)
{
  Sn *sn = g_new0(Sn, 1);
  sn->sim = s;
  sn->slot = s->sns->len;
  guint32 raw[2] = { s->p.seed, sn->slot };
  hark_gi_id_for_device_key((const guint8 *)raw, sizeof raw, &sn->id);
  sn->timer_t = G_MAXINT64;
  g_ptr_array_add(s->sns, sn);
  g_hash_table_insert(s->by_id, &sn->id, sn);
  return sn;
}

static void
link_flood(Sim *s, Sn *a, Sn *b)
{
  if (hark_flood_engine_peer_up(a->flood, &b->id))
    hark_flood_engine_peer_up(b->flood, &a->id);
}

static void
sn_join(Sim *s, Sn *sn)
{
  HarkGiCallbacks cb = { .send = sim_send, .verify = sim_verify, .done = sim_done };
  guint alive = alive_count(s);
  sn->alive = TRUE;
  s->alive++;
  s->joined++;
  if (s->p.strategy == HARK_DIRSIM_GI) {
    HarkGiParams gp;
    hark_gi_params_init(&gp);
    if (s->p.gi_k > 0)
      gp.k = s->p.gi_k;
    if (s->p.gi_r > 0)
      gp.r = s->p.gi_r;
    gp.cache_ttl_us = (gint64)s->p.cache_ttl_s * US_PER_S;
    sn->gi = hark_gi_engine_new(&sn->id, NULL, &gp, &cb, sn);
    HarkGiContact known[3];
    guint n = MIN(alive, 3);
    for (guint i = 0; i < n; i++) {
      known[i].id = sn_at(s, random_alive(s, sn->slot))->id;
      known[i].addr = NULL;
    }
    hark_gi_engine_bootstrap(sn->gi, known, n, s->now);
  } else {
    HarkFloodParams fp;
    hark_flood_params_init(&fp);
    sn->flood = hark_flood_engine_new(&sn->id, &fp, &cb, sn);
    for (guint i = 0; i < MIN(alive, 8); i++)
      link_flood(s, sn, sn_at(s, random_alive(s, sn->slot)));
  }
  schedule_timer(s, sn);
}

static guint
alive_count(Sim *s)
{
  return s->alive;
}

static void
sn_leave(Sim *s, Sn *sn, gboolean crash)
{
  sn->alive = FALSE;
  s->alive--;
  sn->crashed = crash;
  sn->dead_at = s->now;
  s->departed++;
  for (guint i = 0; i < s->sns->len; i++) {
    Sn *x = sn_at(s, i);
    if (!x->alive)
      continue;
    if (x->gi != NULL ? hark_gi_engine_has_contact(x->gi, &sn->id)
                      : hark_flood_engine_has_neighbour(x->flood, &sn->id))
      report_down(s, x, sn);
  }
  for (guint i = 0; i < s->devices->len; i++) {
    Device *d = &g_array_index(s->devices, Device, i);
    if (d->sn == sn->slot) {
      gint64 back = (gint64)(s->p.reconnect_s * (0.5 + g_rand_double(s->rand))) * US_PER_S;
      push(s, s->now + back, EV_RECONNECT, i, 0, NULL);
    }
  }
  /* A lookup under way at the SN that left: its client, back through another SN, asks
   * again there (its time counts from the first ask). */
  for (guint i = 0; i < s->lookups->len; i++) {
    Lookup *l = &g_array_index(s->lookups, Lookup, i);
    if (l->request != 0 && !l->done && l->sn == sn->slot) {
      gint64 back = (gint64)(s->p.reconnect_s * (0.5 + g_rand_double(s->rand))) * US_PER_S;
      push(s, s->now + back, EV_ASK_AGAIN, i, 0, NULL);
      s->asked_again++;
    }
  }
  g_clear_pointer(&sn->gi, hark_gi_engine_free);
  g_clear_pointer(&sn->flood, hark_flood_engine_free);
}

/* ---- devices and lookups ---- */

static void
publish(Sim *s, guint device)
{
  Device *d = &g_array_index(s->devices, Device, device);
  Sn *sn = sn_at(s, d->sn);
  if (!sn->alive)
    return;
  const User *u = &g_array_index(s->users, User, d->user);
  guint8 blob[BLOB_BYTES];
  memset(blob, 0xab, sizeof blob);
  HarkGiRecord r = { .key = u->key, .device = d->name, .time_us = s->now };
  record_mac(&r, blob);
  g_autoptr(GBytes) bytes = g_bytes_new(blob, sizeof blob);
  r.blob = bytes;
  if (sn->gi != NULL)
    hark_gi_engine_publish(sn->gi, &r, s->now);
  else
    hark_flood_engine_publish(sn->flood, &r, s->now);
  schedule_timer(s, sn);
}

static void
start_lookup(Sim *s, guint idx, gboolean again)
{
  Lookup *l = &g_array_index(s->lookups, Lookup, idx);
  l->sn = random_alive(s, G_MAXUINT);
  if (again)
    g_hash_table_remove(s->by_request, &l->request);
  else
    l->start = s->now;
  Sn *sn = sn_at(s, l->sn);
  const User *u = &g_array_index(s->users, User, l->user);
  s->tag = idx + 1;
  s->current_lookup = idx;
  guint64 req = sn->gi != NULL ? hark_gi_engine_lookup(sn->gi, &u->key, s->now)
                               : hark_flood_engine_lookup(sn->flood, &u->key, s->now);
  l = &g_array_index(s->lookups, Lookup, idx);
  l->request = req;
  if (!l->done)
    g_hash_table_insert(s->by_request, &l->request, GUINT_TO_POINTER(idx + 1));
  s->current_lookup = G_MAXUINT;
  schedule_timer(s, sn);
}

static void
churn(Sim *s, double share, gboolean crash)
{
  guint alive = alive_count(s);
  guint n = (guint)(alive * share + 0.5);
  for (guint i = 0; i < n; i++)
    sn_leave(s, sn_at(s, random_alive(s, G_MAXUINT)), crash);
  if (!crash)
    for (guint i = 0; i < n; i++) {
      Sn *sn = sn_new(s);
      push(s, s->now + g_rand_int_range(s->rand, 0, 60) * US_PER_S, EV_JOIN, sn->slot, 0, NULL);
    }
}

/* ---- the run ---- */

static void
dispatch(Sim *s, Event *ev)
{
  s->tag = ev->tag;
  switch (ev->type) {
  case EV_DELIVER: {
    Sn *from = sn_at(s, ev->a), *to = sn_at(s, ev->b);
    if (!to->alive) {
      if (from->alive)
        report_down(s, from, to);
    } else if (to->gi != NULL) {
      hark_gi_engine_receive(to->gi, &from->id, ev->msg, s->now);
    } else {
      hark_flood_engine_receive(to->flood, &from->id, ev->msg, s->now);
    }
    schedule_timer(s, to);
    break;
  }
  case EV_TIMER: {
    Sn *sn = sn_at(s, ev->a);
    if (!sn->alive || ev->t != sn->timer_t)
      break;
    sn->timer_t = G_MAXINT64;
    s->tag = 0;
    if (sn->gi != NULL)
      hark_gi_engine_tick(sn->gi, s->now);
    else
      hark_flood_engine_tick(sn->flood, s->now);
    schedule_timer(s, sn);
    break;
  }
  case EV_DOWN: {
    Sn *sn = sn_at(s, ev->a), *dead = sn_at(s, ev->b);
    if (!sn->alive)
      break;
    if (sn->gi != NULL) {
      hark_gi_engine_peer_down(sn->gi, &dead->id, s->now);
    } else {
      hark_flood_engine_peer_down(sn->flood, &dead->id, s->now);
      /* a real SN replaces a lost neighbour link from its host cache */
      if (hark_flood_engine_neighbour_count(sn->flood) < 8)
        link_flood(s, sn, sn_at(s, random_alive(s, sn->slot)));
    }
    schedule_timer(s, sn);
    break;
  }
  case EV_JOIN:
    s->tag = 0;
    sn_join(s, sn_at(s, ev->a));
    break;
  case EV_RECONNECT:
    g_array_index(s->devices, Device, ev->a).sn = random_alive(s, G_MAXUINT);
    publish(s, ev->a);
    break;
  case EV_PUBLISH:
    publish(s, ev->a);
    break;
  case EV_LOOKUP:
    start_lookup(s, ev->a, FALSE);
    break;
  case EV_ASK_AGAIN:
    start_lookup(s, ev->a, TRUE);
    break;
  case EV_CHURN:
    churn(s, s->p.churn_per_minute, FALSE);
    break;
  case EV_MASS:
    churn(s, s->p.mass_departure, TRUE);
    break;
  }
  g_clear_pointer(&ev->msg, g_bytes_unref);
}

void
hark_dirsim_params_init(HarkDirSimParams *p)
{
  *p = (HarkDirSimParams){
    .strategy = HARK_DIRSIM_GI,
    .sns = 100,
    .users = 200,
    .lookups = 500,
    .seed = 1,
    .delay_min_ms = 5,
    .delay_max_ms = 50,
    .loss = 0.01,
    .rto_ms = 200,
    .churn_per_minute = 0.01,
    .mass_departure = 0.10,
    .keepalive_s = 10,
    .reconnect_s = 20,
    .churn_minutes = 10,
    .idle_minutes = 30,
    .cache_ttl_s = 60,
  };
}

static int
cmp_double(gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double
percentile(GArray *values, double q)
{
  if (values->len == 0)
    return 0;
  g_array_sort(values, cmp_double);
  guint i = (guint)(q * (values->len - 1) + 0.5);
  return g_array_index(values, double, i);
}

static void
schedule_scenario(Sim *s, gint64 *end)
{
  const HarkDirSimParams *p = &s->p;
  gint64 minute = 60 * US_PER_S;
  gint64 join_window = 5 * minute;
  for (guint i = 0; i < p->sns; i++) {
    Sn *sn = sn_new(s);
    push(s, i == 0 ? 0 : join_window * i / p->sns, EV_JOIN, sn->slot, 0, NULL);
  }
  gint64 t_pub = join_window + 2 * minute;
  for (guint u = 0; u < p->users; u++) {
    User user = { .first_device = s->devices->len, .ndevices = 1 + (g_rand_int(s->rand) % 2) };
    g_autofree gchar *name = g_strdup_printf("user%u", u);
    hark_gi_id_for_user(name, &user.key);
    for (guint d = 0; d < user.ndevices; d++) {
      Device dev = { .user = u, .sn = 0 };
      g_snprintf(dev.name, sizeof dev.name, "dev%u-%u", u, d);
      g_array_append_val(s->devices, dev);
      push(s, t_pub + (gint64)(g_rand_double(s->rand) * 5 * minute), EV_RECONNECT,
           s->devices->len - 1, 0, NULL);
    }
    g_array_append_val(s->users, user);
  }
  gint64 t_churn = t_pub + 6 * minute;
  gint64 span = (gint64)p->churn_minutes * minute;
  for (guint m = 0; m < p->churn_minutes; m++)
    push(s, t_churn + m * minute, EV_CHURN, 0, 0, NULL);
  if (p->mass_departure > 0)
    push(s, t_churn + span / 2 + 30 * US_PER_S, EV_MASS, 0, 0, NULL);
  g_array_set_size(s->lookups, p->lookups);
  for (guint i = 0; i < p->lookups; i++) {
    Lookup *l = &g_array_index(s->lookups, Lookup, i);
    l->user = g_rand_int_range(s->rand, 0, (gint32)p->users);
    push(s, t_churn + (gint64)(g_rand_double(s->rand) * span), EV_LOOKUP, i, 0, NULL);
  }
  /* the idle cost: a quiet stretch after the churn has settled */
  s->idle_from = t_churn + span + 5 * minute;
  s->idle_to = s->idle_from + (gint64)p->idle_minutes * minute;
  *end = s->idle_to;
}

/* HARK_SIM_DEBUG=1: a lookup that found nothing, with who stores the key and the SNs
 * closest to it (rank 0 is the closest alive). */
static void
debug_failure(Sim *s, Lookup *l)
{
  const User *u = &g_array_index(s->users, User, l->user);
  GString *out = g_string_new(NULL);
  g_string_append_printf(out, "lookup user %u from sn %u%s done=%d hops=%u msgs=%" G_GUINT64_FORMAT ":",
                         l->user, l->sn, sn_at(s, l->sn)->alive ? "" : " (left)", l->done, l->hops,
                         l->msgs);
  for (guint i = 0; i < s->sns->len; i++) {
    Sn *sn = sn_at(s, i);
    if (!sn->alive || sn->gi == NULL)
      continue;
    guint rank = 0;
    for (guint j = 0; j < s->sns->len; j++) {
      Sn *o = sn_at(s, j);
      if (o->alive && hark_gi_id_cmp_distance(&o->id, &sn->id, &u->key) < 0)
        rank++;
    }
    g_autoptr(GPtrArray) st = hark_gi_engine_stored(sn->gi, &u->key);
    if (rank < 3 || st->len > 0) {
      g_autofree gchar *hex = hark_gi_id_to_hex(&sn->id, 4);
      g_string_append_printf(out, " [sn %u %s cpl %u rank %u stores %u]", i, hex,
                             hark_gi_id_common_prefix(&sn->id, &u->key), rank, st->len);
    }
  }
  if (l->trail != NULL)
    g_string_append_printf(out, "\n  trail:%s", l->trail->str);
  g_printerr("%s\n", out->str);
  g_string_free(out, TRUE);
}

static void
summarise(Sim *s, HarkDirSimResult *res)
{
  g_autoptr(GArray) hops = g_array_new(FALSE, FALSE, sizeof(double));
  g_autoptr(GArray) times = g_array_new(FALSE, FALSE, sizeof(double));
  g_autoptr(GArray) per_lookup = g_array_new(FALSE, FALSE, sizeof(double));
  guint64 msgs = 0;
  for (guint i = 0; i < s->lookups->len; i++) {
    Lookup *l = &g_array_index(s->lookups, Lookup, i);
    double m = (double)l->msgs;
    msgs += l->msgs;
    g_array_append_val(per_lookup, m);
    if (!l->found) {
      if (g_getenv("HARK_SIM_DEBUG") != NULL)
        debug_failure(s, l);
      continue;
    }
    res->found++;
    double h = l->hops, t = (double)(l->end - l->start) / US_PER_MS;
    g_array_append_val(hops, h);
    g_array_append_val(times, t);
  }
  res->lookups = s->lookups->len;
  res->success = res->lookups > 0 ? 100.0 * res->found / res->lookups : 0;
  res->hops_median = percentile(hops, 0.5);
  res->hops_p95 = percentile(hops, 0.95);
  res->hops_p99 = percentile(hops, 0.99);
  res->msgs_median = percentile(per_lookup, 0.5);
  res->msgs_p99 = percentile(per_lookup, 0.99);
  res->time_median_ms = percentile(times, 0.5);
  res->time_p95_ms = percentile(times, 0.95);
  res->msgs_per_lookup = res->lookups > 0 ? (double)msgs / res->lookups : 0;
  guint alive = alive_count(s);
  double idle_s = (double)(s->idle_to - s->idle_from) / US_PER_S;
  res->idle_msgs_per_sn_s = alive > 0 && idle_s > 0 ? s->idle_messages / (alive * idle_s) : 0;
  gsize bytes = 0;
  guint records = 0;
  for (guint i = 0; i < s->sns->len; i++) {
    Sn *sn = sn_at(s, i);
    if (sn->gi != NULL) {
      bytes += hark_gi_engine_store_bytes(sn->gi);
      records += hark_gi_engine_record_count(sn->gi);
    } else if (sn->flood != NULL) {
      records += hark_flood_engine_record_count(sn->flood);
    }
  }
  res->bytes_per_record = records > 0 && bytes > 0 ? (double)bytes / records : 0;
  res->records_per_sn = alive > 0 ? (double)records / alive : 0;
  res->sns = s->p.sns;
  res->users = s->p.users;
  res->messages_total = s->messages;
  res->departed = s->departed;
  res->joined = s->joined;
  res->forged_refused = s->forged;
  res->asked_again = s->asked_again;
}

void
hark_dirsim_run(const HarkDirSimParams *params, HarkDirSimResult *res)
{
  gint64 wall = g_get_monotonic_time();
  Sim *s = g_new0(Sim, 1);
  s->p = *params;
  s->rand = g_rand_new_with_seed(params->seed);
  s->heap = g_array_new(FALSE, FALSE, sizeof(Event));
  s->sns = g_ptr_array_new();
  s->by_id = g_hash_table_new(hark_gi_id_hash, hark_gi_id_equal);
  s->devices = g_array_new(FALSE, FALSE, sizeof(Device));
  s->users = g_array_new(FALSE, FALSE, sizeof(User));
  s->lookups = g_array_new(FALSE, TRUE, sizeof(Lookup));
  s->current_lookup = G_MAXUINT;
  s->by_request = g_hash_table_new(g_int64_hash, g_int64_equal);
  memset(res, 0, sizeof *res);
  gint64 end = 0;
  schedule_scenario(s, &end);
  while (s->heap->len > 0) {
    Event ev = pop(s);
    if (ev.t > end) {
      g_clear_pointer(&ev.msg, g_bytes_unref);
      continue;
    }
    s->now = ev.t;
    dispatch(s, &ev);
  }
  summarise(s, res);
  for (guint i = 0; i < s->sns->len; i++) {
    Sn *sn = sn_at(s, i);
    hark_gi_engine_free(sn->gi);
    hark_flood_engine_free(sn->flood);
    g_free(sn);
  }
  g_ptr_array_unref(s->sns);
  g_hash_table_unref(s->by_id);
  g_hash_table_unref(s->by_request);
  g_array_unref(s->heap);
  g_array_unref(s->devices);
  g_array_unref(s->users);
  for (guint i = 0; i < s->lookups->len; i++) {
    GString *trail = g_array_index(s->lookups, Lookup, i).trail;
    if (trail != NULL)
      g_string_free(trail, TRUE);
  }
  g_array_unref(s->lookups);
  g_rand_free(s->rand);
  g_free(s);
  res->wall_s = (double)(g_get_monotonic_time() - wall) / US_PER_S;
}
