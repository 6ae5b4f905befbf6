/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gi: the Global Index of the directory (docs/architecture.md, "Directory: the gi index").
 * The super nodes form a Kademlia-style table over 32-byte ids (XOR metric, k-buckets);
 * a lookup or store is routed recursively over the links an SN keeps to its contacts,
 * one message per hop, and the answer comes back along the path. This is the node-free
 * engine: no main loop, no sockets, no clock of its own. The host passes time in (now_us),
 * schedules a timer for hark_gi_engine_next_deadline() and carries the messages that the
 * send callback hands it; records are opaque signed blobs that the verify callback judges.
 * The message codec (gi-message.c) is shared with the flood strategy (plugins/search-flood). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HARK_GI_ID_LEN 32

/* An SN id (SHA-256 of the SN's device key) or a record key (SHA-256 of "hark-user:" and
 * the lower-case user name): both live in the same 256-bit XOR space. */
typedef struct {
  guint8 b[HARK_GI_ID_LEN];
} HarkGiId;

void hark_gi_id_for_user(const char *user, HarkGiId *out);
void hark_gi_id_for_device_key(const guint8 *key_der, gsize len, HarkGiId *out);
/* <0 when a is closer to target than b, 0 when equal, >0 when farther. */
int hark_gi_id_cmp_distance(const HarkGiId *a, const HarkGiId *b, const HarkGiId *target);
/* The length of the common prefix of a and b in bits (256 when equal). */
guint hark_gi_id_common_prefix(const HarkGiId *a, const HarkGiId *b);
gchar *hark_gi_id_to_hex(const HarkGiId *id, guint bytes);
/* GHashTable functions for HarkGiId* keys. */
guint hark_gi_id_hash(gconstpointer id);
gboolean hark_gi_id_equal(gconstpointer a, gconstpointer b);

/* One presence record of one device. key, device and time_us are what the engine needs to
 * place, replace and expire it; the verify callback checks that the signed blob says the
 * same, so a hostile SN cannot change them without the record being refused. */
typedef struct {
  HarkGiId key;
  gchar *device;
  gint64 time_us;
  GBytes *blob;
} HarkGiRecord;

HarkGiRecord *hark_gi_record_new(const HarkGiId *key, const char *device, gint64 time_us,
                                 GBytes *blob);
HarkGiRecord *hark_gi_record_copy(const HarkGiRecord *record);
void hark_gi_record_free(HarkGiRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkGiRecord, hark_gi_record_free)
/* Not expired (younger than life_us) and not dated more than max_future_us ahead. */
gboolean hark_gi_record_fresh(const HarkGiRecord *record, gint64 life_us, gint64 max_future_us,
                              gint64 now_us);

/* Message kinds. */
typedef enum {
  HARK_GI_PING = 1, /* a new link: "add me" (no payload) */
  HARK_GI_LOOKUP = 2, /* routed towards key; LOCAL: answer from store and cache only */
  HARK_GI_ANSWER = 3, /* back along the path: records, or contacts for NODES */
  HARK_GI_STORE = 4, /* routed towards key, carrying records */
  HARK_GI_REPLICA = 5, /* records for an SN among the r closest, not routed, not answered */
  HARK_GI_NODES = 6, /* routed towards key; the last SN answers with its closest contacts */
} HarkGiKind;

#define HARK_GI_FLAG_LOCAL 0x01 /* LOOKUP: do not route further */
#define HARK_GI_FLAG_OK 0x02 /* ANSWER: the STORE was kept / the LOOKUP found records */
#define HARK_GI_FLAG_REFUSED 0x04 /* ANSWER: a record of the STORE was refused */

/* Limits of what decode accepts (strict: a message over them is refused, not cut). */
#define HARK_GI_MAX_CONTACTS 64
#define HARK_GI_MAX_RECORDS 64
#define HARK_GI_MAX_ADDR 256
#define HARK_GI_MAX_DEVICE 128
#define HARK_GI_MAX_BLOB 8192

typedef struct {
  HarkGiId id;
  GBytes *addr; /* how the host reaches it (opaque to the engine), may be empty */
} HarkGiContact;

typedef struct {
  guint8 kind;
  guint8 flags;
  guint64 request;
  HarkGiId key;
  guint8 hops; /* SN-to-SN hops so far (ANSWER: of the request's path) */
  guint8 ttl; /* hops left */
  GArray *contacts; /* of HarkGiContact */
  GPtrArray *records; /* of HarkGiRecord* */
} HarkGiMessage;

/* The GVariant of a message, type HARK_GI_MESSAGE_TYPE (floating reference). */
#define HARK_GI_MESSAGE_TYPE "(yytayyya(ayay)a(aysxay))"
void hark_gi_message_init(HarkGiMessage *msg, guint8 kind, guint64 request, const HarkGiId *key);
void hark_gi_message_clear(HarkGiMessage *msg);
GVariant *hark_gi_message_encode(const HarkGiMessage *msg);
GBytes *hark_gi_message_encode_bytes(const HarkGiMessage *msg);
/* Strict: the type, normal form, kind, lengths and limits are checked; on failure msg is
 * left cleared. */
gboolean hark_gi_message_decode(GVariant *variant, HarkGiMessage *msg, GError **error);
gboolean hark_gi_message_decode_bytes(GBytes *bytes, HarkGiMessage *msg, GError **error);

typedef struct {
  guint k; /* bucket size (8) */
  guint r; /* replicas per record (3) */
  guint hop_limit; /* 0: 2*log2(N)+4 from the table's estimate of N */
  guint max_records_per_key; /* devices per user kept (16) */
  guint max_records; /* records one SN keeps at most (1,000,000) */
  gint64 cache_ttl_us; /* answers cached on the path (60 s) */
  gint64 record_life_us; /* records expire this long after their time (72 h) */
  gint64 max_future_us; /* a record's time may be this far ahead of ours (5 min) */
  gint64 republish_us; /* the periodic replication pass (10 min) */
  gint64 refresh_us; /* self-lookup and refresh of thinned buckets (15 min) */
  gint64 request_timeout_us; /* a hop's answer; then the next contact is tried (3 s) */
  guint max_attempts; /* next hops tried per request and SN (3) */
  /* Contacts an answer names (another SN's word only) are kept (TRUE, the simulation).
   * FALSE on real links: only SNs the host reports by peer_up, or that sent a message
   * over their own authenticated link, become contacts, so a hostile SN cannot fill the
   * buckets with made-up ids. */
  gboolean learn_named;
} HarkGiParams;

void hark_gi_params_init(HarkGiParams *params);

typedef struct {
  /* Hand message to peer (addr: how to reach it, may be NULL when a link exists). */
  void (*send)(gpointer user, const HarkGiId *peer, GBytes *addr, GBytes *message);
  /* TRUE when the record's blob is validly signed and says record's key, device and time. */
  gboolean (*verify)(gpointer user, const HarkGiRecord *record);
  /* A lookup or publish started here ended: ok (found / stored), the records found
   * (verified; NULL for a publish), the SN hops of the path. */
  void (*done)(gpointer user, guint64 request, gboolean ok, GPtrArray *records, guint hops);
} HarkGiCallbacks;

/* misfiled: a record under another key than its message's; stale: a record's time past
 * its life or too far ahead (both refused before verify, so not in forged). refused_stores:
 * STOREs from another SN refused whole (a record misfiled, stale or forged, or none) and
 * answered REFUSED instead of forwarded or kept. unsolicited: ANSWERs to no request of ours
 * waiting on that SN (late, replayed, or to a request never sent to it). unexpected:
 * messages of a kind the engine does not take (flood: all but LOCAL LOOKUP and ANSWER). */
typedef struct {
  guint64 sent, received, malformed, forged, duplicates, refused_replicas, cache_hits, expired,
    timeouts, rerouted, stored_refused, misfiled, stale, refused_stores, unsolicited, unexpected;
} HarkGiStats;

typedef struct _HarkGiEngine HarkGiEngine;

HarkGiEngine *hark_gi_engine_new(const HarkGiId *self, GBytes *self_addr,
                                 const HarkGiParams *params, const HarkGiCallbacks *callbacks,
                                 gpointer user);
void hark_gi_engine_free(HarkGiEngine *engine);
const HarkGiId *hark_gi_engine_self(HarkGiEngine *engine);

/* Joins: adds the known SNs and looks up its own id and the far buckets' regions. */
void hark_gi_engine_bootstrap(HarkGiEngine *engine, const HarkGiContact *known, guint n,
                              gint64 now_us);
/* A link to peer is up (the host authenticated peer's id): keep it as a contact if its
 * bucket has room. Returns TRUE when it is a contact now. */
gboolean hark_gi_engine_peer_up(HarkGiEngine *engine, const HarkGiId *peer, GBytes *addr,
                                gint64 now_us);
/* The link to peer is gone: drop it, reroute what waited on it, re-replicate. */
void hark_gi_engine_peer_down(HarkGiEngine *engine, const HarkGiId *peer, gint64 now_us);
/* A message from peer over an authenticated link. */
void hark_gi_engine_receive(HarkGiEngine *engine, const HarkGiId *from, GBytes *message,
                            gint64 now_us);
/* Starts a lookup of key (done is called, maybe before this returns). */
guint64 hark_gi_engine_lookup(HarkGiEngine *engine, const HarkGiId *key, gint64 now_us);
/* Stores a record (from one of this SN's ordinary nodes) on the r SNs closest to its key. */
guint64 hark_gi_engine_publish(HarkGiEngine *engine, const HarkGiRecord *record, gint64 now_us);
/* The device left this SN: its record is no longer stored again each period (what is
 * stored stays until it expires, so a user online within 72 h is still found). */
void hark_gi_engine_forget(HarkGiEngine *engine, const HarkGiId *key, const char *device);
void hark_gi_engine_tick(HarkGiEngine *engine, gint64 now_us);
gint64 hark_gi_engine_next_deadline(HarkGiEngine *engine);

const HarkGiStats *hark_gi_engine_stats(HarkGiEngine *engine);
guint hark_gi_engine_contact_count(HarkGiEngine *engine);
gboolean hark_gi_engine_has_contact(HarkGiEngine *engine, const HarkGiId *peer);
guint hark_gi_engine_record_count(HarkGiEngine *engine);
/* The records this SN stores for key (not the cache), newest first; free with
 * g_ptr_array_unref. */
GPtrArray *hark_gi_engine_stored(HarkGiEngine *engine, const HarkGiId *key);
/* Bytes the store holds (records, blobs, tables), for the memory-per-record figure. */
gsize hark_gi_engine_store_bytes(HarkGiEngine *engine);

G_END_DECLS
