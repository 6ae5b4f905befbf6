/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* replay.c: what was used once and must not be accepted again (docs/protocol.md,
 * "Replays"): the nonces of signed requests, of logins and of tunnel preambles. Each is remembered until the
 * moment it would be refused anyway (a signed request as stale, a login nonce as
 * expired, a preamble as stale), so a request captured on the way cannot be sent a
 * second time.
 *
 * In memory, per server process, at most LOGIN_REPLAY_MAX keys: several processes
 * sharing a store each keep their own (a replay to another process is not caught; see
 * the threat model). When the cache is full of keys still live, new ones are refused
 * rather than old ones forgotten, which would open the door to replays. Main context
 * only. */
#include "loginsrv.h"

/* Expired keys are swept at most this often (seconds), and when the cache is full. */
#define SWEEP_INTERVAL_SECONDS 10

struct _LoginReplayCache {
  GHashTable *seen; /* key -> gint64* (seconds after which it may go) */
  guint max_keys;
  gint64 last_sweep;
};

LoginReplayCache *
login_replay_new(guint max_keys)
{
  LoginReplayCache *cache = g_new0(LoginReplayCache, 1);
  cache->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  cache->max_keys = max_keys;
  return cache;
}

void
login_replay_free(LoginReplayCache *cache)
{
  if (cache == NULL)
    return;
  g_hash_table_unref(cache->seen);
  g_free(cache);
}

static gboolean
is_expired(gpointer key, gpointer value, gpointer now)
{
  return *(gint64 *)value < *(gint64 *)now;
}

static void
sweep(LoginReplayCache *cache, gint64 now)
{
  g_hash_table_foreach_remove(cache->seen, is_expired, &now);
  cache->last_sweep = now;
}

LoginReplayVerdict
login_replay_note(LoginReplayCache *cache, const char *key, gint64 keep_until, gint64 now)
{
  if (now - cache->last_sweep >= SWEEP_INTERVAL_SECONDS ||
      g_hash_table_size(cache->seen) >= cache->max_keys)
    sweep(cache, now);
  gint64 *until = g_hash_table_lookup(cache->seen, key);
  if (until != NULL && *until >= now)
    return LOGIN_REPLAY_SEEN;
  if (until == NULL && g_hash_table_size(cache->seen) >= cache->max_keys)
    return LOGIN_REPLAY_FULL;
  g_hash_table_replace(cache->seen, g_strdup(key), g_memdup2(&keep_until, sizeof keep_until));
  return LOGIN_REPLAY_NEW;
}

guint
login_replay_size(LoginReplayCache *cache)
{
  return g_hash_table_size(cache->seen);
}
