/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ratelimit.c: failed password checks per source address (in memory, a sliding window)
 * and the schedule of account lock-outs (the counts are kept in the store; accounts.c).
 *
 * Only the main context touches the limiter. Per address it keeps the times of the last
 * max_failures failures in a ring: the address is refused while the oldest of them is
 * less than a window old. At most max_addresses are tracked; when that many are, the
 * address whose last failure is oldest is forgotten first, and addresses without a
 * failure in the window are forgotten as they age (they would not be refused anyway). */
#include "loginsrv.h"

#define LOCK_THRESHOLD 5
#define LOCK_MAX_SECONDS (15 * 60)

typedef struct {
  char *address;
  gint64 *times; /* ring of max_failures, monotonic µs */
  guint count;
  guint next; /* where the next failure goes; the oldest when the ring is full */
  GList *link; /* in limiter->order */
} AddressEntry;

struct _LoginAddressLimiter {
  guint max_failures;
  gint64 window;
  guint max_addresses;
  GHashTable *entries; /* address -> AddressEntry* (owned) */
  GQueue order; /* AddressEntry*, least recently failed first */
};

static void
entry_free(gpointer data)
{
  AddressEntry *entry = data;
  g_free(entry->address);
  g_free(entry->times);
  g_free(entry);
}

LoginAddressLimiter *
login_limiter_new(guint max_failures, gint64 window_usec, guint max_addresses)
{
  LoginAddressLimiter *limiter = g_new0(LoginAddressLimiter, 1);
  limiter->max_failures = max_failures;
  limiter->window = window_usec;
  limiter->max_addresses = max_addresses;
  limiter->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, entry_free);
  g_queue_init(&limiter->order);
  return limiter;
}

void
login_limiter_free(LoginAddressLimiter *limiter)
{
  g_queue_clear(&limiter->order);
  g_hash_table_unref(limiter->entries);
  g_free(limiter);
}

static gint64
newest(LoginAddressLimiter *limiter, AddressEntry *entry)
{
  return entry->times[(entry->next + limiter->max_failures - 1) % limiter->max_failures];
}

static void
forget(LoginAddressLimiter *limiter, AddressEntry *entry)
{
  g_queue_delete_link(&limiter->order, entry->link);
  g_hash_table_remove(limiter->entries, entry->address);
}

/* Forgets addresses whose last failure left the window, and the oldest when full. */
static void
prune(LoginAddressLimiter *limiter, gint64 now)
{
  AddressEntry *head;
  while ((head = g_queue_peek_head(&limiter->order)) != NULL &&
         (newest(limiter, head) + limiter->window <= now ||
          g_hash_table_size(limiter->entries) >= limiter->max_addresses))
    forget(limiter, head);
}

gint64
login_limiter_retry_after(LoginAddressLimiter *limiter, const char *address, gint64 now)
{
  AddressEntry *entry = g_hash_table_lookup(limiter->entries, address);
  if (entry == NULL || entry->count < limiter->max_failures)
    return 0;
  gint64 free_at = entry->times[entry->next] + limiter->window;
  if (free_at <= now)
    return 0;
  return (free_at - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
}

void
login_limiter_note_failure(LoginAddressLimiter *limiter, const char *address, gint64 now)
{
  AddressEntry *entry = g_hash_table_lookup(limiter->entries, address);
  if (entry == NULL) {
    prune(limiter, now);
    entry = g_new0(AddressEntry, 1);
    entry->address = g_strdup(address);
    entry->times = g_new0(gint64, limiter->max_failures);
    g_hash_table_insert(limiter->entries, entry->address, entry);
  } else {
    g_queue_unlink(&limiter->order, entry->link);
    g_list_free(entry->link);
  }
  entry->times[entry->next] = now;
  entry->next = (entry->next + 1) % limiter->max_failures;
  entry->count = MIN(entry->count + 1, limiter->max_failures);
  g_queue_push_tail(&limiter->order, entry);
  entry->link = g_queue_peek_tail_link(&limiter->order);
}

/* first_lock (1 s by default) at the 5th failure in a row, doubling with each further
 * one, at most 15 min. */
gint64
login_lock_seconds(gint64 failures, gint64 first_lock)
{
  if (failures < LOCK_THRESHOLD)
    return 0;
  gint64 shift = failures - LOCK_THRESHOLD;
  return shift >= 20 ? LOCK_MAX_SECONDS : MIN(first_lock << shift, LOCK_MAX_SECONDS);
}

/* ---- lock-outs by key ------------------------------------------------------------------------
 *
 * A key (an account, or an account together with a source) is locked on the schedule of
 * login_lock_seconds() by its failures in a row; a success forgets it. An entry is
 * forgotten once its lock is over and its last failure is LOCK_MAX_SECONDS old (a quiet
 * quarter of an hour starts the count afresh); when max_entries are kept, the one whose
 * last failure is oldest goes first. Main context only, like the address limiter. */

typedef struct {
  char *key;
  gint64 failures; /* in a row */
  gint64 last_failure; /* monotonic µs */
  gint64 locked_until; /* monotonic µs */
  GList *link; /* in table->order */
} LockEntry;

struct _LoginLockTable {
  gint64 first_lock; /* seconds */
  guint max_entries;
  GHashTable *entries; /* key -> LockEntry* (owned) */
  GQueue order; /* LockEntry*, least recently failed first */
};

static void
lock_entry_free(gpointer data)
{
  LockEntry *entry = data;
  g_free(entry->key);
  g_free(entry);
}

LoginLockTable *
login_locks_new(gint64 first_lock, guint max_entries)
{
  LoginLockTable *table = g_new0(LoginLockTable, 1);
  table->first_lock = first_lock;
  table->max_entries = max_entries;
  table->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, lock_entry_free);
  g_queue_init(&table->order);
  return table;
}

void
login_locks_free(LoginLockTable *table)
{
  g_queue_clear(&table->order);
  g_hash_table_unref(table->entries);
  g_free(table);
}

static void
lock_forget(LoginLockTable *table, LockEntry *entry)
{
  g_queue_delete_link(&table->order, entry->link);
  g_hash_table_remove(table->entries, entry->key);
}

static void
lock_prune(LoginLockTable *table, gint64 now)
{
  LockEntry *head;
  while (
    (head = g_queue_peek_head(&table->order)) != NULL &&
    ((head->locked_until <= now && head->last_failure + LOCK_MAX_SECONDS * G_USEC_PER_SEC <= now) ||
     g_hash_table_size(table->entries) >= table->max_entries))
    lock_forget(table, head);
}

gint64
login_locks_retry_after(LoginLockTable *table, const char *key, gint64 now)
{
  LockEntry *entry = g_hash_table_lookup(table->entries, key);
  if (entry == NULL || entry->locked_until <= now)
    return 0;
  return (entry->locked_until - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
}

gboolean
login_locks_has_failures(LoginLockTable *table, const char *key, gint64 now)
{
  lock_prune(table, now);
  return g_hash_table_contains(table->entries, key);
}

void
login_locks_note_failure(LoginLockTable *table, const char *key, gint64 now)
{
  LockEntry *entry = g_hash_table_lookup(table->entries, key);
  if (entry == NULL) {
    lock_prune(table, now);
    entry = g_new0(LockEntry, 1);
    entry->key = g_strdup(key);
    g_hash_table_insert(table->entries, entry->key, entry);
  } else {
    g_queue_unlink(&table->order, entry->link);
    g_list_free(entry->link);
  }
  entry->failures++;
  entry->last_failure = now;
  gint64 lock = login_lock_seconds(entry->failures, table->first_lock);
  if (lock > 0)
    entry->locked_until = MAX(entry->locked_until, now + lock * G_USEC_PER_SEC);
  g_queue_push_tail(&table->order, entry);
  entry->link = g_queue_peek_tail_link(&table->order);
}

void
login_locks_forget(LoginLockTable *table, const char *key)
{
  LockEntry *entry = g_hash_table_lookup(table->entries, key);
  if (entry != NULL)
    lock_forget(table, entry);
}
