/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* search.h: the interface of a search strategy (kind HARK_KIND_SEARCH).
 *
 * A strategy finds the presence records of a user, or the users whose names start with
 * a prefix. The node tries the registrations named by directory.search in that order
 * (default "gi", then "loginsrv"; docs/architecture.md, "Directory") until one gives a
 * definite answer. A strategy may work on either side:
 *
 * - client side (`lookup`): the node asks it directly; the `loginsrv` strategy asks the
 *   login server whether the name exists;
 * - super-node side (`serve_lookup`, `message`, `tick`): the client's DIR_LOOKUP reaches
 *   its SN, which asks the strategies that work among SNs (`gi`, `flood`) and merges what
 *   they find with the records of its own store (its clients' devices; a user's other
 *   devices may be on other SNs). Their messages between SNs travel
 *   in DIR_STRATEGY envelopes; the SN hands each to the registration of that name.
 *
 * A strategy reaches the node only through the HarkSearchServices handed to `attach`:
 * its SN peers, the local store, the clock, record verification, the login server. The
 * core calls every function on the node's main loop. */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "hark/clock.h"
#include "hark/context.h"
#include "hark/presence.h"

G_BEGIN_DECLS

/* 2: HarkSearchServices.self_device and .peer_device, HarkSearchInterface.record_published
 * (the core takes version 1 tables too, and hands version 2 services to every strategy:
 * a strategy reads a member past the ones of its version only when services->version
 * says it is there). 3: HarkSearchInterface.client_left. */
#define HARK_SEARCH_INTERFACE_VERSION 3

typedef enum {
  HARK_SEARCH_UNDECIDED, /* this strategy cannot tell: the next one is asked */
  HARK_SEARCH_FOUND, /* online devices of the user (records), or names (a prefix) */
  HARK_SEARCH_KNOWN, /* the user exists, but no device was online in the last 72 h */
  HARK_SEARCH_UNKNOWN, /* there is no such user */
} HarkSearchAnswer;

/* "not-found", "found", "known", "unknown"; and back. */
HARK_API const char *hark_search_answer_to_string(HarkSearchAnswer answer);
HARK_API gboolean hark_search_answer_from_string(const char *text, HarkSearchAnswer *answer);

typedef struct {
  HarkSearchAnswer answer;
  GPtrArray *records; /* HarkPresenceRecord*, verified; one per device */
  GPtrArray *names; /* char*: for a prefix, the names found (as registered) */
} HarkSearchResult;

HARK_API HarkSearchResult *hark_search_result_new(HarkSearchAnswer answer);
HARK_API void hark_search_result_free(HarkSearchResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkSearchResult, hark_search_result_free)

/* Exactly once: a result (the callee gives it, the receiver frees it) or an error
 * (borrowed), never after the lookup's cancellable was cancelled. */
typedef void (*HarkSearchDone)(HarkSearchResult *result, const GError *error, gpointer user_data);

/* What the node offers a strategy; host is passed back to each. Valid from attach to
 * detach. */
typedef struct {
  guint32 version; /* HARK_SEARCH_INTERFACE_VERSION */
  /* This node serves as a super node (the SN-side functions are called only then). */
  gboolean (*is_super_node)(gpointer host);
  /* Ids of the verified SNs this SN has links to ("host:port"); a new array of char*. */
  GPtrArray *(*sn_peers)(gpointer host);
  /* Send message to the SN peer of that id in a DIR_STRATEGY envelope under this
   * strategy's name. FALSE (and error) when there is no such peer. */
  gboolean (*send)(gpointer host, const char *peer, GVariant *message, GError **error);
  /* Public records of the local store for query (verified when stored), new array of
   * HarkPresenceRecord* owned by the caller. */
  GPtrArray *(*store_find)(gpointer host, const HarkPresenceQuery *query);
  /* Verify (hark_presence_verify against the pinned CA and the clock) and, when store,
   * keep a record that came from another SN. The record, or NULL and error. */
  HarkPresenceRecord *(*verify)(gpointer host, GVariant *signed_record, gboolean store,
                                GError **error);
  HarkClock *(*clock)(gpointer host);
  /* Ask the login server whether query names a user (or which names start with it):
   * done gets FOUND with names, UNKNOWN, or an error (the server cannot be reached). */
  void (*login_lookup)(gpointer host, const HarkPresenceQuery *query, GCancellable *cancellable,
                       HarkSearchDone done, gpointer user_data);
  /* Version 2. */
  /* This node's device fingerprint (SHA-256 of its device key, 64 lower-case hex
   * digits): an SN's id among SNs. Borrowed, valid while attached. */
  const char *(*self_device)(gpointer host);
  /* The device fingerprint the verified link to that SN peer ("host:port") proved with
   * its certificate (new), or NULL when there is no such link. */
  char *(*peer_device)(gpointer host, const char *peer);
} HarkSearchServices;

typedef struct {
  guint32 version; /* HARK_SEARCH_INTERFACE_VERSION; new members go at the end */

  /* The node hands over its services once its directory runs, and takes them back
   * before it stops (detach). Either may be NULL. */
  void (*attach)(gpointer instance, const HarkSearchServices *services, gpointer host);
  void (*detach)(gpointer instance);

  /* Client side (may be NULL): answer query. */
  void (*lookup)(gpointer instance, const HarkPresenceQuery *query, GCancellable *cancellable,
                 HarkSearchDone done, gpointer user_data);
  /* SN side (may be NULL): answer a client's query (a name, also when the SN's store has
   * records of it; a prefix only when the store has none). The core may cancel the
   * lookup when it answers its store's records alone after waiting. */
  void (*serve_lookup)(gpointer instance, const HarkPresenceQuery *query, GCancellable *cancellable,
                       HarkSearchDone done, gpointer user_data);
  /* SN side (may be NULL): a DIR_STRATEGY message for this strategy from the SN peer of
   * that id (its contents are untrusted: check them). */
  void (*message)(gpointer instance, const char *peer, GVariant *message);
  /* SN side (may be NULL): every few seconds while the node serves. */
  void (*tick)(gpointer instance);
  /* Counters for the `directory` command (may be NULL). A new object. */
  JsonObject *(*stats)(gpointer instance);
  /* Version 2, SN side (may be NULL): a client of this SN published record (verified,
   * the PUBLIC form, borrowed), for a strategy that spreads records among SNs. */
  void (*record_published)(gpointer instance, const HarkPresenceRecord *record);
  /* Version 3, SN side (may be NULL): the device of user (as its record names it, the
   * record given to record_published) that published here
   * left this SN (its link closed), for a strategy that stores its clients' records again
   * each period: it stops doing so (what it stored elsewhere stays until it expires). */
  void (*client_left)(gpointer instance, const char *user, const char *device);
} HarkSearchInterface;

G_END_DECLS
