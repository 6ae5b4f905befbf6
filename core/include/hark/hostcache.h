/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hostcache.h: the super nodes (SNs) a node knows, to find the overlay when it starts.
 *
 * The paper's host cache: up to 200 SN addresses with what was learnt about each (the
 * transports it offers, when it last answered, how often it failed since, its measured
 * round trip), ranked so that joining tries the most promising first. The bootstrap SNs
 * of the configuration are always kept; the others age out or are evicted by better
 * ones. The cache is saved in the state directory (0600) and reloaded at start; a
 * damaged file is set aside and the cache starts again from the bootstrap list. */
#pragma once

#include "hark/export.h"

#include <glib.h>

#include "hark/config.h"

G_BEGIN_DECLS

#define HARK_HOST_CACHE_ERROR (hark_host_cache_error_quark())
HARK_API GQuark hark_host_cache_error_quark(void);

typedef enum {
  HARK_HOST_CACHE_ERROR_MISSING, /* there is no file */
  HARK_HOST_CACHE_ERROR_CORRUPT, /* the file is not a valid host cache: "path: what" */
  HARK_HOST_CACHE_ERROR_IO, /* cannot read or write the file */
} HarkHostCacheError;

#define HARK_HOST_CACHE_DEFAULT_CAPACITY 200 /* the paper's */
/* Entries heard of and not heard from (learnt_from set): at most this many from one
 * source, and at most capacity / HARK_HOST_CACHE_UNVERIFIED_SHARE in all. */
#define HARK_HOST_CACHE_MAX_PER_SOURCE 16
#define HARK_HOST_CACHE_UNVERIFIED_SHARE 4
/* Consecutive failures after which hark_host_cache_expire() drops an entry. */
#define HARK_HOST_CACHE_MAX_FAILURES 3
/* hark_host_cache_load() refuses a larger file without parsing it. */
#define HARK_HOST_CACHE_MAX_FILE_SIZE (1024 * 1024)

typedef struct {
  char *host; /* a host name or an IP address */
  guint16 port;
  char **transports; /* NULL-terminated names among "udp", "tcp", "tls443" */
  gint64 last_seen; /* unix time (s) of the last answer; 0: never */
  guint failures; /* consecutive failures since the last answer */
  gint64 rtt_us; /* last measured round trip (µs); -1: unknown */
  gboolean bootstrap; /* from the configuration: never expired or evicted */
  char *learnt_from; /* heard of from this source (hark_address_source_key of the peer
                       * that named it) and not heard from yet; NULL once it answered,
                       * and for bootstrap entries. last_seen is then when it was heard of. */
} HarkHostCacheEntry;

typedef struct _HarkHostCache HarkHostCache;

HARK_API HarkHostCacheEntry *hark_host_cache_entry_copy(const HarkHostCacheEntry *entry);
HARK_API void hark_host_cache_entry_free(HarkHostCacheEntry *entry);

/* An empty cache holding at most capacity (> 0) entries. */
HARK_API HarkHostCache *hark_host_cache_new(guint capacity);
HARK_API void hark_host_cache_free(HarkHostCache *cache);
HARK_API guint hark_host_cache_size(HarkHostCache *cache);

/* Adds a bootstrap SN, or marks a known one as bootstrap with the configured transports.
 * FALSE when the cache is full of bootstrap entries (nothing can be evicted). */
HARK_API gboolean hark_host_cache_add_bootstrap(HarkHostCache *cache,
                                                const HarkBootstrapConfig *bootstrap);

/* host:port answered at now (unix s): added, or refreshed with failures back to 0.
 * transports (may be NULL: keep what is known) replaces the known list; rtt_us < 0
 * keeps the last measure. An unverified entry is verified (learnt_from cleared). A new entry in a full cache evicts the worst non-bootstrap
 * one; FALSE when there is none to evict (the entry is not added). */
HARK_API gboolean hark_host_cache_seen(HarkHostCache *cache, const char *host, guint16 port,
                                       const char *const *transports, gint64 rtt_us, gint64 now);

/* host:port heard of from source (an SN list of a peer there), at now: added as
 * unverified unless it is known already (TRUE then, nothing changes). It ranks after
 * every entry that answered, may evict only another unverified entry, and counts
 * against source's HARK_HOST_CACHE_MAX_PER_SOURCE and the unverified share; FALSE when
 * either is reached or there is no room. hark_host_cache_seen() verifies it. */
HARK_API gboolean hark_host_cache_learn(HarkHostCache *cache, const char *host, guint16 port,
                                        const char *const *transports, const char *source,
                                        gint64 now);

/* host:port did not answer: one more consecutive failure. FALSE for an unknown SN.
 * now is not kept yet; it is there for the back-off joining will add (issue 4). */
HARK_API gboolean hark_host_cache_failed(HarkHostCache *cache, const char *host, guint16 port,
                                         gint64 now);

/* Drops the non-bootstrap entries whose host refuse(host, data) refuses (returns TRUE
 * for): what an older version let in and the checks of today would not. Returns how
 * many went. */
HARK_API guint hark_host_cache_forget_where(HarkHostCache *cache,
                                            gboolean (*refuse)(const char *host, gpointer data),
                                            gpointer data);

/* Drops the non-bootstrap entries last seen more than max_age_s before now (or never),
 * and those with HARK_HOST_CACHE_MAX_FAILURES failures or more. Returns how many went. */
HARK_API guint hark_host_cache_expire(HarkHostCache *cache, gint64 now, gint64 max_age_s);

/* The entry for host:port, owned by the cache and valid until it next changes; NULL
 * when there is none. */
HARK_API const HarkHostCacheEntry *hark_host_cache_lookup(HarkHostCache *cache, const char *host,
                                                          guint16 port);

/* Copies of the best n entries (HarkHostCacheEntry*, freed with the array), best first:
 * entries that answered (or are configured) before unverified ones, then fewer failures, then the shorter measured round trip (unknown last), then the more
 * recently seen; equal entries keep the order they were added in. */
HARK_API GPtrArray *hark_host_cache_best(HarkHostCache *cache, guint n);

/* Writes {"version": 1, "entries": [...]} to path atomically (a new 0600 file moved
 * over the old one), so a crash leaves the old cache or the new one, never a mixture. */
HARK_API gboolean hark_host_cache_save(HarkHostCache *cache, const char *path, GError **error);

/* Reads a saved cache, checking everything (at most HARK_HOST_CACHE_MAX_FILE_SIZE
 * bytes, types, ranges, transport names, at most capacity entries). Errors: MISSING,
 * CORRUPT (the message names the file and what is wrong), IO. */
HARK_API HarkHostCache *hark_host_cache_load(const char *path, guint capacity, GError **error);

/* The cache a node starts with; never NULL. Loads path; without a file, starts empty;
 * with a damaged or unreadable one, sets *warning for the caller to log, and starts
 * empty (a corrupt file is first renamed to "<path>.corrupt" for a person to look at).
 * Then the bootstrap SNs (HarkBootstrapConfig*, may be NULL) are added again; entries
 * the file marked bootstrap that the configuration no longer lists become ordinary. */
HARK_API HarkHostCache *hark_host_cache_open(const char *path, guint capacity, GPtrArray *bootstrap,
                                             GError **warning);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkHostCacheEntry, hark_host_cache_entry_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkHostCache, hark_host_cache_free)

G_END_DECLS
