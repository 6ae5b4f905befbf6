/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-reach.c: an SN finds the SNs of the users its clients watch or hint, so that
 * watches and contacts hints reach them when no link does yet (docs/protocol.md,
 * "Presence subscriptions", "Beyond the linked SNs").
 *
 * Per wanted user (watched by a client here, or named by a contacts hint) the SN keeps
 * the SNs its devices' public records name (the record's `sn`): from its own store, then
 * the SN-side search strategies in directory.search order. Where there is no verified
 * link to such an SN it opens one (hark_overlay_open_peer_link); every verified link gets
 * the clients' signed watches as it comes up (directory-presence.c forwards them to all
 * SN peers, and again every 60 s), and the hints waiting for that SN. Lookups are
 * rate-limited, a user is looked up again every REACH_REFRESH_S and soon after a device
 * of theirs went offline through a peer (it may have moved), and the links opened for
 * this are bounded. Nothing here is trusted more than before: the watches are still the
 * devices' own signed ones, checked by the receiving SN for this SN. */
#include "directory-private.h"

#include <string.h>

#define REACH_LOOKUPS_PER_MINUTE 60 /* lookups of watched users, all users together */
#define REACH_LOOKUP_BURST 10
#define REACH_MAX_LINKS 8 /* SN links opened for watches and hints, at most at a time */
#define REACH_MAX_USERS 4096 /* users whose SNs are kept */
#define REACH_MAX_SNS 16 /* SNs kept per user (a user has at most 16 devices) */
#define REACH_REFRESH_S 300 /* a user's SNs are looked up again this often */
#define REACH_MOVED_S 5 /* ... and this long after a device of theirs went offline */
#define REACH_RETRY_S 60 /* a lookup that found nothing, or a link that failed */
#define REACH_UNUSED_S 600 /* a user nobody watched or hinted this long is forgotten */
#define REACH_HINT_TTL_S 30 /* a hint waits this long for its SNs' links */
#define REACH_TICK_S 2
#define REACH_AGAIN_S 1 /* a peer still checking our claim (503): send again after */
#define REACH_SENT_KEPT_S 30 /* how long an id we sent is matched with a 503 */

typedef struct {
  char *user; /* canonical */
  GPtrArray *sns; /* char* "host:port" of its devices' SNs (not this one) */
  gint64 due_us; /* the next lookup (monotonic) */
  gint64 used_us; /* last wanted */
  gboolean resolving;
  char *hint_about; /* a contacts hint to pass on, or NULL */
  gint64 hint_until_us;
  GHashTable *hinted; /* the SNs the pending hint went to */
} Target;

typedef struct {
  HarkDirectory *directory;
  char *user;
  HarkPresenceQuery *query;
  char **strategies;
  guint next;
  GPtrArray *sns;
  GCancellable *cancellable;
} ReachJob;

struct _DirectoryReach {
  HarkDirectory *directory;
  GHashTable *targets; /* canonical user -> Target* */
  GHashTable *opened; /* "host:port" -> NULL: links this opened (REACH_MAX_LINKS) */
  GPtrArray *jobs; /* ReachJob* running */
  GHashTable *sent; /* guint64* id -> SentTo*: watches and hints sent to peers lately */
  GHashTable *again; /* peer HarkLink* -> Again*: sending to it again (it said 503) */
  DirectoryBucket lookups; /* REACH_LOOKUPS_PER_MINUTE, all users together */
  guint tick_source;
  struct {
    guint64 lookups;
    guint64 lookups_limited; /* a tick that had users due but no token */
    guint64 links_opened;
    guint64 links_refused; /* over REACH_MAX_LINKS, or the overlay said no */
    guint64 users_refused; /* over REACH_MAX_USERS */
    guint64 hints_sent;
  } counters;
};

typedef struct {
  guint64 id;
  HarkLink *link;
  gint64 at_us;
} SentTo;

typedef struct {
  DirectoryReach *reach;
  HarkLink *link;
  guint source;
} Again;

static void
again_free(gpointer data)
{
  Again *again = data;
  hark_directory_clear_source(again->reach->directory, &again->source);
  g_free(again);
}

static void
target_free(gpointer data)
{
  Target *target = data;
  g_free(target->user);
  g_ptr_array_unref(target->sns);
  g_free(target->hint_about);
  g_hash_table_unref(target->hinted);
  g_free(target);
}

static void
job_free(ReachJob *job)
{
  g_free(job->user);
  hark_presence_query_free(job->query);
  g_strfreev(job->strategies);
  g_ptr_array_unref(job->sns);
  g_object_unref(job->cancellable);
  g_free(job);
}

static gint64
now_us(DirectoryReach *reach)
{
  return hark_clock_now_monotonic(reach->directory->clock);
}

static gboolean on_tick(gpointer data);

DirectoryReach *
hark_directory_reach_new(HarkDirectory *directory)
{
  DirectoryReach *reach = g_new0(DirectoryReach, 1);
  reach->directory = directory;
  reach->targets = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, target_free);
  reach->opened = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  reach->jobs = g_ptr_array_new();
  reach->sent = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
  reach->again = g_hash_table_new_full(NULL, NULL, NULL, again_free);
  return reach;
}

/* Serving: the lookups due run every REACH_TICK_S (a device has no such timer). */
void
hark_directory_reach_start(HarkDirectory *directory)
{
  DirectoryReach *reach = directory->reach;
  if (reach->tick_source == 0)
    reach->tick_source = hark_clock_add_seconds(directory->clock, REACH_TICK_S, on_tick, reach);
}

static void
cancel_jobs(DirectoryReach *reach)
{
  for (guint i = 0; i < reach->jobs->len; i++) {
    ReachJob *job = reach->jobs->pdata[i];
    /* A strategy calls no done after its cancellable was cancelled. */
    g_cancellable_cancel(job->cancellable);
    job_free(job);
  }
  g_ptr_array_set_size(reach->jobs, 0);
}

void
hark_directory_reach_free(DirectoryReach *reach)
{
  if (reach == NULL)
    return;
  hark_directory_clear_source(reach->directory, &reach->tick_source);
  cancel_jobs(reach);
  g_ptr_array_unref(reach->jobs);
  g_hash_table_unref(reach->again);
  g_hash_table_unref(reach->sent);
  g_hash_table_unref(reach->targets);
  g_hash_table_unref(reach->opened);
  g_free(reach);
}

static gboolean
split_sn(const char *sn, char **host, guint16 *port)
{
  g_autoptr(GSocketConnectable) address = g_network_address_parse(sn, 0, NULL);
  if (address == NULL)
    return FALSE;
  *port = g_network_address_get_port(G_NETWORK_ADDRESS(address));
  *host = g_strdup(g_network_address_get_hostname(G_NETWORK_ADDRESS(address)));
  return *port != 0 && hark_text_is_clean(*host);
}

/* "host:port" as records name SNs ("[v6]:port"). */
static char *
sn_text(const char *host, guint16 port)
{
  return strchr(host, ':') != NULL ? g_strdup_printf("[%s]:%u", host, port)
                                   : g_strdup_printf("%s:%u", host, port);
}

/* The verified link to the SN at sn ("host:port"), or NULL. */
static HarkLink *
link_to(DirectoryReach *reach, const char *sn)
{
  g_autofree char *host = NULL;
  guint16 port = 0;
  if (!split_sn(sn, &host, &port))
    return NULL;
  return hark_overlay_peer_link(reach->directory->overlay, host, port);
}

static guint
links_opened(DirectoryReach *reach)
{
  /* Links that came up or failed no longer count as being opened by us once gone. */
  GHashTableIter iter;
  gpointer sn;
  g_hash_table_iter_init(&iter, reach->opened);
  while (g_hash_table_iter_next(&iter, &sn, NULL))
    if (link_to(reach, sn) == NULL && GPOINTER_TO_INT(g_hash_table_lookup(reach->opened, sn)) == 1)
      g_hash_table_iter_remove(&iter);
  return g_hash_table_size(reach->opened);
}

/* Makes sure a verified link to sn is there or coming: FALSE when it cannot be. */
static gboolean
open_link(DirectoryReach *reach, const char *sn)
{
  if (link_to(reach, sn) != NULL)
    return TRUE;
  if (g_hash_table_contains(reach->opened, sn))
    return TRUE; /* on its way */
  g_autofree char *host = NULL;
  guint16 port = 0;
  g_autoptr(GError) error = NULL;
  if (links_opened(reach) >= REACH_MAX_LINKS) {
    reach->counters.links_refused++;
    g_debug("directory: no link to the SN at %s for presence: %u opened already", sn,
            REACH_MAX_LINKS);
    return FALSE;
  }
  if (!split_sn(sn, &host, &port) ||
      !hark_overlay_open_peer_link(reach->directory->overlay, host, port, &error)) {
    reach->counters.links_refused++;
    g_debug("directory: no link for presence: %s", error != NULL ? error->message : sn);
    return FALSE;
  }
  reach->counters.links_opened++;
  g_hash_table_insert(reach->opened, g_strdup(sn), GINT_TO_POINTER(0)); /* 0: on its way */
  return TRUE;
}

/* The empty DIR_PRESENCE, SN to SN: the devices of target's user there fetch their
 * contacts. */
static void
send_hint(DirectoryReach *reach, Target *target, HarkLink *link, const char *sn)
{
  HarkDirectory *directory = reach->directory;
  reach->counters.hints_sent++;
  g_hash_table_add(target->hinted, g_strdup(sn));
  guint64 id = hark_overlay_new_message_id(directory->overlay);
  hark_directory_reach_sent(directory, link, id);
  hark_link_send(link, HARK_MSG_DIR_PRESENCE, id,
                 g_variant_new("(ssa(ayay)as)", target->user, target->hint_about, NULL, NULL),
                 NULL);
}

/* Passes the target's hint on to each of its SNs linked now; opens links to the others. */
static void
deliver_hints(DirectoryReach *reach, Target *target)
{
  if (target->hint_about == NULL)
    return;
  if (now_us(reach) > target->hint_until_us) {
    g_clear_pointer(&target->hint_about, g_free);
    return;
  }
  for (guint i = 0; i < target->sns->len; i++) {
    const char *sn = target->sns->pdata[i];
    if (g_hash_table_contains(target->hinted, sn))
      continue;
    HarkLink *link = link_to(reach, sn);
    if (link != NULL)
      send_hint(reach, target, link, sn);
    else
      open_link(reach, sn);
  }
}

static void
reach_sns(DirectoryReach *reach, Target *target)
{
  for (guint i = 0; i < target->sns->len; i++)
    open_link(reach, target->sns->pdata[i]);
  deliver_hints(reach, target);
}

/* Adds the SNs records name (not this SN, each once) to sns. */
static void
add_sns(DirectoryReach *reach, GPtrArray *sns, GPtrArray *records)
{
  g_autofree char *own = hark_overlay_own_address(reach->directory->overlay);
  for (guint i = 0; i < records->len && sns->len < REACH_MAX_SNS; i++) {
    const char *sn = ((HarkPresenceRecord *)records->pdata[i])->sn;
    if (sn == NULL || *sn == '\0' || g_strcmp0(sn, own) == 0 ||
        g_ptr_array_find_with_equal_func(sns, sn, g_str_equal, NULL))
      continue;
    g_ptr_array_add(sns, g_strdup(sn));
  }
}

static void
job_done(ReachJob *job)
{
  DirectoryReach *reach = job->directory->reach;
  g_ptr_array_remove(reach->jobs, job);
  Target *target = g_hash_table_lookup(reach->targets, job->user);
  if (target != NULL) {
    target->resolving = FALSE;
    target->due_us =
      now_us(reach) + (job->sns->len > 0 ? REACH_REFRESH_S : REACH_RETRY_S) * G_USEC_PER_SEC;
    g_ptr_array_set_size(target->sns, 0);
    for (guint i = 0; i < job->sns->len; i++)
      g_ptr_array_add(target->sns, g_strdup(job->sns->pdata[i]));
    g_debug("directory: %s's devices are at %u other SNs", target->user, target->sns->len);
    reach_sns(reach, target);
  }
  job_free(job);
}

static void job_next(ReachJob *job);

static void
job_answered(HarkSearchResult *result, const GError *error, gpointer data)
{
  ReachJob *job = data;
  if (result != NULL && result->answer == HARK_SEARCH_FOUND) {
    add_sns(job->directory->reach, job->sns, result->records);
    hark_search_result_free(result);
    job_done(job);
    return;
  }
  if (error != NULL)
    g_debug("directory: a strategy could not find a watched user: %s", error->message);
  hark_search_result_free(result);
  job_next(job);
}

static void
job_next(ReachJob *job)
{
  const HarkRegistration *reg =
    hark_directory_next_sn_strategy(job->directory, job->strategies, &job->next);
  if (reg != NULL)
    ((const HarkSearchInterface *)reg->iface)
      ->serve_lookup(reg->instance, job->query, job->cancellable, job_answered, job);
  else
    job_done(job);
}

/* Looks target's user up: this SN's store, then the SN-side strategies. */
static void
resolve(DirectoryReach *reach, Target *target)
{
  HarkDirectory *directory = reach->directory;
  reach->counters.lookups++;
  target->resolving = TRUE;
  ReachJob *job = g_new0(ReachJob, 1);
  job->directory = directory;
  job->user = g_strdup(target->user);
  job->query = g_new0(HarkPresenceQuery, 1);
  job->query->key = g_strdup(target->user);
  job->query->strategies = g_new0(char *, 1);
  job->strategies = g_strdupv(directory->node->config->dir_search);
  job->sns = g_ptr_array_new_with_free_func(g_free);
  job->cancellable = g_cancellable_new();
  g_ptr_array_add(reach->jobs, job);
  g_autoptr(GPtrArray) stored =
    hark_directory_store_find(directory->store, job->query, NULL, DIRECTORY_MAX_RESULTS);
  add_sns(reach, job->sns, stored);
  job_next(job);
}

static gboolean
take_token(DirectoryReach *reach)
{
  return hark_directory_bucket_take(&reach->lookups, now_us(reach), REACH_LOOKUPS_PER_MINUTE,
                                    REACH_LOOKUP_BURST);
}

/* Looks up the users due, as the rate allows, and forgets those nobody wants. */
static void
run_due(DirectoryReach *reach)
{
  if (reach->directory->store == NULL)
    return;
  gint64 now = now_us(reach);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, reach->targets);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Target *target = value;
    if (target->resolving)
      continue;
    if (now - target->used_us > REACH_UNUSED_S * G_USEC_PER_SEC) {
      g_hash_table_iter_remove(&iter);
      continue;
    }
    deliver_hints(reach, target);
    if (target->due_us > now)
      continue;
    if (!take_token(reach)) {
      reach->counters.lookups_limited++;
      return;
    }
    resolve(reach, target);
  }
}

static gboolean
on_tick(gpointer data)
{
  DirectoryReach *reach = data;
  reach->tick_source = 0;
  gint64 old = now_us(reach) - REACH_SENT_KEPT_S * G_USEC_PER_SEC;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, reach->sent);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    if (((SentTo *)value)->at_us < old)
      g_hash_table_iter_remove(&iter);
  run_due(reach);
  reach->tick_source =
    hark_clock_add_seconds(reach->directory->clock, REACH_TICK_S, on_tick, reach);
  return G_SOURCE_REMOVE;
}

static Target *
want(DirectoryReach *reach, const char *user)
{
  Target *target = g_hash_table_lookup(reach->targets, user);
  if (target == NULL) {
    if (g_hash_table_size(reach->targets) >= REACH_MAX_USERS) {
      reach->counters.users_refused++;
      return NULL;
    }
    target = g_new0(Target, 1);
    target->user = g_strdup(user);
    target->sns = g_ptr_array_new_with_free_func(g_free);
    target->hinted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    target->due_us = now_us(reach);
    g_hash_table_insert(reach->targets, target->user, target);
  }
  target->used_us = now_us(reach);
  return target;
}

void
hark_directory_reach_want(HarkDirectory *directory, const char *user)
{
  DirectoryReach *reach = directory->reach;
  Target *target = want(reach, user);
  if (target != NULL && target->due_us <= now_us(reach) && !target->resolving && take_token(reach))
    resolve(reach, target);
}

void
hark_directory_reach_moved(HarkDirectory *directory, const char *user)
{
  DirectoryReach *reach = directory->reach;
  Target *target = g_hash_table_lookup(reach->targets, user);
  gint64 soon = now_us(reach) + REACH_MOVED_S * G_USEC_PER_SEC;
  if (target != NULL && target->due_us > soon)
    target->due_us = soon;
}

void
hark_directory_reach_hint(HarkDirectory *directory, const char *user, const char *about)
{
  DirectoryReach *reach = directory->reach;
  Target *target = want(reach, user);
  if (target == NULL)
    return;
  g_free(target->hint_about);
  target->hint_about = g_strdup(about);
  target->hint_until_us = now_us(reach) + REACH_HINT_TTL_S * G_USEC_PER_SEC;
  g_hash_table_remove_all(target->hinted);
  /* What it knows may be old, the hint is worth a fresh look. */
  target->due_us = MIN(target->due_us, now_us(reach));
  deliver_hints(reach, target);
  hark_directory_reach_want(directory, user);
}

/* A verified SN link came up (either end): the hints waiting for it go. */
void
hark_directory_reach_linked(HarkDirectory *directory, const char *host, guint16 port)
{
  DirectoryReach *reach = directory->reach;
  g_autofree char *sn = sn_text(host, port);
  if (g_hash_table_contains(reach->opened, sn))
    g_hash_table_insert(reach->opened, g_strdup(sn), GINT_TO_POINTER(1)); /* up */
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, reach->targets);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    deliver_hints(reach, value);
}

void
hark_directory_reach_link_failed(HarkDirectory *directory, const char *host, guint16 port)
{
  DirectoryReach *reach = directory->reach;
  g_autofree char *sn = sn_text(host, port);
  if (!g_hash_table_remove(reach->opened, sn))
    return;
  /* Its users may have moved: look again, not at once. */
  gint64 retry = now_us(reach) + REACH_RETRY_S * G_USEC_PER_SEC;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, reach->targets);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Target *target = value;
    if (g_ptr_array_find_with_equal_func(target->sns, sn, g_str_equal, NULL))
      target->due_us = MIN(target->due_us, retry);
  }
}

/* ---- a peer that has not finished checking us --------------------------------------- */

void
hark_directory_reach_sent(HarkDirectory *directory, HarkLink *link, guint64 id)
{
  DirectoryReach *reach = directory->reach;
  SentTo *sent = g_new0(SentTo, 1);
  sent->id = id;
  sent->link = link;
  sent->at_us = now_us(reach);
  g_hash_table_insert(reach->sent, &sent->id, sent);
}

static gboolean
on_again(gpointer data)
{
  Again *again = data;
  DirectoryReach *reach = again->reach;
  HarkLink *link = again->link;
  again->source = 0;
  g_hash_table_remove(reach->again, link);
  g_autoptr(GPtrArray) peers = hark_overlay_sn_peer_links(reach->directory->overlay);
  if (!g_ptr_array_find(peers, link, NULL))
    return G_SOURCE_REMOVE;
  hark_directory_presence_forward_to(reach->directory, link);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, reach->targets);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Target *target = value;
    for (guint i = 0; i < target->sns->len; i++)
      if (link_to(reach, target->sns->pdata[i]) == link)
        g_hash_table_remove(target->hinted, target->sns->pdata[i]);
    deliver_hints(reach, target);
  }
  return G_SOURCE_REMOVE;
}

/* An ERROR from a verified SN peer: TRUE when it answered a watch or a hint of ours with
 * 503 (it had not finished checking that we are an SN, as we had of it): all we sent it
 * goes again in a second. */
gboolean
hark_directory_reach_error(HarkDirectory *directory, HarkLink *link, const HarkWireMessage *message)
{
  DirectoryReach *reach = directory->reach;
  SentTo *sent = reach != NULL ? g_hash_table_lookup(reach->sent, &message->id) : NULL;
  if (sent == NULL || sent->link != link)
    return FALSE;
  guint32 code = 0;
  if (g_variant_is_of_type(message->body, G_VARIANT_TYPE("(us)")))
    g_variant_get(message->body, "(u&s)", &code, NULL);
  g_hash_table_remove(reach->sent, &message->id);
  if (code == 503 && !g_hash_table_contains(reach->again, link)) {
    Again *again = g_new0(Again, 1);
    again->reach = reach;
    again->link = link;
    again->source = hark_clock_add_seconds(directory->clock, REACH_AGAIN_S, on_again, again);
    g_hash_table_insert(reach->again, link, again);
  }
  return TRUE;
}

void
hark_directory_reach_peer_closed(HarkDirectory *directory, HarkLink *link)
{
  DirectoryReach *reach = directory->reach;
  if (reach == NULL)
    return;
  g_hash_table_remove(reach->again, link);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, reach->sent);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    if (((SentTo *)value)->link == link)
      g_hash_table_iter_remove(&iter);
}

/* No longer serving: what it knew was for the clients it had. */
void
hark_directory_reach_reset(HarkDirectory *directory)
{
  hark_directory_clear_source(directory, &directory->reach->tick_source);
  cancel_jobs(directory->reach);
  g_hash_table_remove_all(directory->reach->sent);
  g_hash_table_remove_all(directory->reach->again);
  g_hash_table_remove_all(directory->reach->targets);
  g_hash_table_remove_all(directory->reach->opened);
}

JsonObject *
hark_directory_reach_describe(HarkDirectory *directory)
{
  DirectoryReach *reach = directory->reach;
  JsonObject *o = json_object_new();
  json_object_set_int_member(o, "users", g_hash_table_size(reach->targets));
  json_object_set_int_member(o, "lookups", (gint64)reach->counters.lookups);
  json_object_set_int_member(o, "lookups_limited", (gint64)reach->counters.lookups_limited);
  json_object_set_int_member(o, "links_opened", (gint64)reach->counters.links_opened);
  json_object_set_int_member(o, "links_refused", (gint64)reach->counters.links_refused);
  json_object_set_int_member(o, "users_refused", (gint64)reach->counters.users_refused);
  json_object_set_int_member(o, "hints_sent", (gint64)reach->counters.hints_sent);
  return o;
}
