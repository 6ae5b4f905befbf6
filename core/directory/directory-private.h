/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-private.h: what the directory's files share (see directory.h). */
#pragma once

#include "directory.h"
#include "hark/presence.h"
#include "hark/search.h"

G_BEGIN_DECLS

#define DIRECTORY_MAX_PER_USER 16 /* devices of one user an SN keeps records of */
#define DIRECTORY_MAX_BUDDIES 1000 /* names a DIR_PUBLISH may list */
#define DIRECTORY_MAX_RESULTS 64 /* records in one DIR_RESULT */
#define DIRECTORY_EXPIRE_S 60 /* how often an SN forgets records older than 72 h */
#define DIRECTORY_LOOKUP_BURST 10 /* lookups a client may make at once */
#define DIRECTORY_LOOKUP_TIMEOUT_S 10 /* a client waits this long for its SN's answer */
/* An SN with records of a user waits this long for its strategies' records of the user's
 * devices on other SNs before it answers its own alone (well within a client's wait). */
#define DIRECTORY_SERVE_WAIT_S 2

/* What the directory refused and why: the `directory` command's counters. */
typedef struct {
  guint64 records_forged; /* bad signature */
  guint64 records_foreign; /* another CA, another user's name, another device */
  guint64 records_expired; /* old, or a certificate not valid when signed */
  guint64 records_future;
  guint64 records_malformed; /* form, limits, a publication that is not two forms of one */
  guint64 records_stale; /* a sequence not newer than the one stored (a replay) */
  guint64 records_full; /* refused: the store or the user's share is full */
  guint64 publish_unauthenticated; /* DIR_PUBLISH from a client without a certificate */
  guint64 lookups_limited; /* DIR_LOOKUPs over a client's rate */
  guint64 lookups_malformed;
  guint64 strategy_unknown; /* DIR_STRATEGY for a strategy not loaded here */
  guint64 results_refused; /* records in our SN's DIR_RESULT that did not verify */
  guint64 published; /* records stored (an SN) / publications answered (a client) */
  guint64 lookups; /* DIR_LOOKUPs answered (an SN) / searches (a client) */
  guint64 lookups_local_only; /* answered from the store: the strategies took too long */
} DirectoryCounters;

typedef struct _DirectoryStore DirectoryStore;
typedef struct _DirectoryPresence DirectoryPresence;
typedef struct _DirectoryReach DirectoryReach;

typedef struct {
  guint id;
  gboolean started; /* FALSE: new, full at its first take */
  double tokens;
  gint64 refilled_us;
} DirectoryBucket;

struct _HarkDirectory {
  HarkNode *node;
  HarkOverlay *overlay;
  HarkLoginClient *login;
  HarkContext *ctx; /* the core's */
  HarkClock *clock;
  guint listener;
  DirectoryCounters counters;
  gint64 last_log_us; /* refusals are logged at message level once a second */
  guint64 refused_since_log;
  GPtrArray *strategies; /* HarkRegistration* of HARK_KIND_SEARCH, attached */
  GPtrArray *strategy_hosts; /* what each was handed (services naming it), same order */

  DirectoryPresence *presence; /* subscriptions (an SN), buddies' presence (a device) */
  DirectoryReach *reach; /* an SN: where its clients' watched users are */

  /* super node */
  DirectoryStore *store;
  GHashTable *buckets; /* HarkLink* -> DirectoryBucket*: each client's lookups */
  GPtrArray *serving; /* the lookups being served (directory-lookup.c), not owned */
  guint next_bucket;
  guint expire_source;

  /* this device */
  HarkPresenceStatus status;
  guint64 sequence;
  guint refresh_source;
  guint64 publish_id; /* the DIR_PUBLISH in flight, 0 none */
  gint64 published_at; /* unix s of the last DIR_PUBLISH_OK, 0 never */
  char *last_publish_error;
  GHashTable *searches; /* guint64* message id -> SearchJob* waiting for our SN */
  GPtrArray *searches_running; /* every SearchJob not answered yet */
};

/* directory.c */
/* A token bucket: takes a token (TRUE) or says there is none; refills per_minute, holds
 * burst at most (a new, zeroed one starts full). */
gboolean hark_directory_bucket_take(DirectoryBucket *bucket, gint64 now_us, double per_minute,
                                    double burst);
/* Counts a refused record by its error and logs it (message level at most once a second,
 * debug otherwise); what is peer text in the error is escaped already. */
void hark_directory_refused(HarkDirectory *directory, const GError *error, const char *from);
/* The same for a refusal counted by the caller: logs text (escaped already). */
void hark_directory_refused_text(HarkDirectory *directory, const char *text);
/* A stored record (a client's, or the SN's own) to the strategies that spread records. */
void hark_directory_published_to_strategies(HarkDirectory *directory,
                                            const HarkPresenceRecord *record);
/* A registration of that name among the search strategies, or NULL. */
const HarkRegistration *hark_directory_strategy(HarkDirectory *directory, const char *name);
const char *hark_directory_ca_pem(HarkDirectory *directory);
gint64 hark_directory_now(HarkDirectory *directory);
char *hark_directory_link_text(HarkLink *link);
/* Destroys the source *source_id (on the node's context) if any; *source_id = 0. */
void hark_directory_clear_source(HarkDirectory *directory, guint *source_id);

/* directory-store.c: an SN's records, by user and device. */
DirectoryStore *hark_directory_store_new(guint max_records);
void hark_directory_store_free(DirectoryStore *store);
/* Verify a publication (the public and the full form of one record of the device
 * certified as cert_user/cert_device: NULL for a record from another SN, public form
 * only) and keep it; buddies: the names the full form may go to. Refusals as
 * HARK_PRESENCE_ERROR (MALFORMED for a mismatch, FOREIGN for another user or device)
 * or G_IO_ERROR_EXISTS (stale: not newer) / G_IO_ERROR_NO_SPACE (full). from: the link it
 * came on (forgotten with it), may be NULL. */
const HarkPresenceRecord *hark_directory_store_put(DirectoryStore *store, const char *ca_pem,
                                                   gint64 now, GVariant *public_form,
                                                   GVariant *full_form, char **buddies,
                                                   const char *cert_user, const char *cert_device,
                                                   gpointer from, GError **error);
/* Records for query: a new array of HarkPresenceRecord* (copies; the full form for asker
 * when asker is among the record's buddies, else the public form). */
GPtrArray *hark_directory_store_find(DirectoryStore *store, const HarkPresenceQuery *query,
                                     const char *asker, guint max);
/* Forget what came on a link that closed; records older than 72 h at now. Counts. */
guint hark_directory_store_forget_from(DirectoryStore *store, gpointer from);
guint hark_directory_store_expire(DirectoryStore *store, gint64 now);
guint hark_directory_store_size(DirectoryStore *store);
/* Copies of the full forms of user's (canonical) records watcher (canonical) may see (it
 * is among their buddies): HarkPresenceRecord* with signed_form set. */
GPtrArray *hark_directory_store_visible(DirectoryStore *store, const char *user,
                                        const char *watcher);
/* The buddy names (canonical) stored with a device's record, or NULL (borrowed). */
const char *const *hark_directory_store_buddies(DirectoryStore *store, const char *user,
                                                const char *device);
/* The links (gpointer from) a user's records came on: a new array of borrowed pointers. */
GPtrArray *hark_directory_store_links_of(DirectoryStore *store, const char *user);
/* The users (canonical) with a record that came on from; NULL-terminated, new. */
char **hark_directory_store_users_from(DirectoryStore *store, gpointer from);
/* The public records that came from `from` (borrowed: valid until the store changes). */
GPtrArray *hark_directory_store_records_from(DirectoryStore *store, gpointer from);

/* directory-publish.c */
void hark_directory_publish_start(HarkDirectory *directory);
void hark_directory_publish_stop(HarkDirectory *directory);
/* Sign and send this device's record now (attached and logged in), else nothing. */
void hark_directory_publish(HarkDirectory *directory, const char *why);
gboolean hark_directory_publish_answer(HarkDirectory *directory, const HarkWireMessage *message);
JsonObject *hark_directory_publish_describe(HarkDirectory *directory);

/* directory-lookup.c */
/* The next registration of names (from *next on) that serves lookups among SNs, or NULL;
 * *next moves past it. */
const HarkRegistration *hark_directory_next_sn_strategy(HarkDirectory *directory,
                                                        char **names, guint *next);
/* An SN: a client's DIR_LOOKUP. */
void hark_directory_serve_lookup(HarkDirectory *directory, HarkLink *link,
                                 const HarkWireMessage *message);
void hark_directory_forget_client(HarkDirectory *directory, HarkLink *link);
/* A client: the `search` command, and the answers (DIR_RESULT, ERROR) from our SN. */
void hark_directory_search(HarkDirectory *directory, const char *text, HarkCommandCall *call);
gboolean hark_directory_search_answer(HarkDirectory *directory, const HarkWireMessage *message);
void hark_directory_searches_free(HarkDirectory *directory);
/* The lookups being served, cancelled (their strategies answer no more) and freed. */
void hark_directory_serving_free(HarkDirectory *directory);
/* Verified records of a DIR_RESULT's a(ayay), refused ones counted; user may be NULL. */
GPtrArray *hark_directory_records_of(HarkDirectory *directory, GVariant *records, const char *user);
/* JSON of a record for `search`: user, device, sn, time, and status and addresses for
 * a full form. */
JsonObject *hark_directory_record_json(const HarkPresenceRecord *record);

/* directory-presence.c: subscriptions and pushes (an SN), buddies' presence (a device). */
DirectoryPresence *hark_directory_presence_new(HarkDirectory *directory);
void hark_directory_presence_free(DirectoryPresence *presence);
/* DIR_SUBSCRIBE and DIR_PRESENCE; FALSE when not for this node's role. */
gboolean hark_directory_presence_message(HarkDirectory *directory, HarkLink *link,
                                         HarkOverlayFrom from, const HarkWireMessage *message);
/* An SN: a record of user was stored; a link closed (a client's records are forgotten
 * here, and its watchers told); every DIRECTORY_EXPIRE_S (watches forwarded again). */
void hark_directory_presence_changed(HarkDirectory *directory, const char *user);
/* An SN: a client's record was stored (link: where it came from; NULL: the SN's own):
 * its watchers are pushed it, and when its buddy names changed, the user's other
 * devices and the named users' devices here are told to fetch their contacts. */
void hark_directory_presence_published(HarkDirectory *directory, HarkLink *link,
                                       const HarkPresenceRecord *stored);
void hark_directory_presence_link_closed(HarkDirectory *directory, HarkLink *link,
                                         HarkOverlayFrom from);
void hark_directory_presence_tick(HarkDirectory *directory);
/* A device: (re)send the buddy list to its SN; forget what the last SN pushed. */
void hark_directory_presence_subscribe(HarkDirectory *directory, const char *why);
/* A device: DIR_HINT to its SN, a contact request with user changed here (protocol.md,
 * "Contacts hint"); nothing without an SN link or a certificate. */
void hark_directory_presence_hint(HarkDirectory *directory, const char *user);
void hark_directory_presence_reset(HarkDirectory *directory);
/* The `buddies` answer gets "presence" and "devices" per buddy; the `directory` answer's
 * "presence". */
void hark_directory_presence_describe_buddies(HarkDirectory *directory, JsonObject *answer);
JsonObject *hark_directory_presence_describe(HarkDirectory *directory);

/* An SN's clients' watched users can sit on SNs this one has no link to: a client's
 * watch or its hints make this SN look them up and link to their SNs. */
void hark_directory_presence_forward_to(HarkDirectory *directory, HarkLink *peer);

/* directory-reach.c: the SNs of the users this SN's clients watch or hint (an SN). */
DirectoryReach *hark_directory_reach_new(HarkDirectory *directory);
void hark_directory_reach_free(DirectoryReach *reach);
/* Serving (its timer runs) / no longer (what it knew goes). */
void hark_directory_reach_start(HarkDirectory *directory);
void hark_directory_reach_reset(HarkDirectory *directory);
/* A client watches user (canonical): find its SNs (rate-limited) and link to them. */
void hark_directory_reach_want(HarkDirectory *directory, const char *user);
/* A device of user went offline through a peer: it may have moved, look again soon. */
void hark_directory_reach_moved(HarkDirectory *directory, const char *user);
/* Pass a contacts hint for user's devices (about: whose list changed) to user's SNs. */
void hark_directory_reach_hint(HarkDirectory *directory, const char *user, const char *about);
/* The overlay's "sn-peer-linked" / "sn-peer-link-failed". */
void hark_directory_reach_linked(HarkDirectory *directory, const char *host, guint16 port);
void hark_directory_reach_link_failed(HarkDirectory *directory, const char *host, guint16 port);
/* A watch or hint sent to a peer (id), matched with its ERROR 503 (the peer is still
 * checking us: it goes again); an ERROR from a verified SN peer: TRUE when it was ours. */
void hark_directory_reach_sent(HarkDirectory *directory, HarkLink *link, guint64 id);
gboolean hark_directory_reach_error(HarkDirectory *directory, HarkLink *link,
                                    const HarkWireMessage *message);
void hark_directory_reach_peer_closed(HarkDirectory *directory, HarkLink *link);
JsonObject *hark_directory_reach_describe(HarkDirectory *directory);

G_END_DECLS
