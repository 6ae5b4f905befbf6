/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store.h: the interface of a store plugin (kind HARK_KIND_STORE): where the login
 * server keeps accounts, devices and buddy lists.
 *
 * A store is opened once by its user (the login server) and then called from worker
 * threads: every function of an opened store must be safe to call from any thread, one
 * call at a time or concurrently (a store serialises internally as it needs). Calls are
 * blocking; the caller keeps them off the main loop. Names given to a store are already
 * canonical ("name keys": checked and lower-cased by the login server); a store never
 * interprets them, it only compares them for equality and prefix. Several login-server
 * processes may share one store (PostgreSQL): every change is one transaction, and
 * counters (failed logins, buddy revisions) are updated atomically in the database. */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

/* 2: accounts have an immutable account id; devices have first/last seen and can be
 * revoked (device_get, devices_list, device_seen, device_revoke); user_create takes the
 * account id and user_set_password can revoke the other devices. */
/* 3: contact requests (requests_list, request_send, request_answer, request_cancel) and
 * blocks (block_set, blocks_list); a user's requests and blocks go with the user. */
/* 4: messages held for offline devices (message_hold, messages_list, messages_delete,
 * messages_usage, messages_expire), the last certificate issued to each device
 * (device_set_certificate, device_certificates) and finding a device by its id alone
 * (device_find). Held messages go with their recipient user. */
#define HARK_STORE_INTERFACE_VERSION 4

#define HARK_STORE_ERROR (hark_store_error_quark())
HARK_API GQuark hark_store_error_quark(void);

typedef enum {
  HARK_STORE_ERROR_NOT_FOUND, /* no such user (or buddy, or device) */
  HARK_STORE_ERROR_EXISTS, /* the user (or buddy) exists already */
  HARK_STORE_ERROR_CONFLICT, /* the buddy list changed since the revision given */
  HARK_STORE_ERROR_BACKEND, /* the database failed: the message says how */
  HARK_STORE_ERROR_LIMIT, /* a limit the caller gave was reached (pending requests; the
                           * sender's limits of held messages) */
  HARK_STORE_ERROR_FULL, /* the recipient device's limit of held messages was reached */
} HarkStoreError;

typedef struct {
  char *name; /* as registered, e.g. "Alice" */
  char *name_key; /* canonical, e.g. "alice" */
  char *password_hash; /* an encoded hash string (argon2id), opaque to the store */
  gint64 created; /* unix seconds */
  gint64 failed_logins; /* consecutive failures since the last success */
  gint64 locked_until; /* unix seconds; 0 when not locked */
  char *account_id; /* random, never reused: certificates name it (hark/certificate.h) */
} HarkStoreUser;

/* A device a user logged in from, by its key's fingerprint. */
typedef struct {
  char *device_id; /* the key's fingerprint */
  char *name; /* as the user calls it (the latest login's name) */
  gint64 first_seen; /* unix seconds: its first login */
  gint64 last_seen; /* unix seconds: its latest login or renewal */
  gint64 revoked; /* unix seconds of its revocation; 0 while it is not revoked */
} HarkStoreDevice;

typedef struct {
  char *name_key; /* the buddy's canonical name */
  char *alias; /* what this user calls them; never NULL (default: their name) */
} HarkStoreBuddy;

/* A contact request: from_key asks to_key to become buddies. Pending until answered;
 * a declined one stays (answered set) so that the login server can slow down asking
 * again; an accepted one goes (the two are buddies then). */
typedef struct {
  char *from_key;
  char *to_key;
  char *message; /* the requester's short note; NULL when none */
  gint64 created; /* unix seconds of the (latest) request */
  gint64 answered; /* unix seconds of the decline; 0 while pending */
} HarkStoreRequest;

/* The last certificate issued to a device (version 4). */
typedef struct {
  char *device_id;
  char *certificate; /* PEM, as issued */
  gint64 expires; /* unix seconds: its notAfter */
} HarkStoreCertificate;

/* A message held for a device (version 4): an envelope the store keeps as opaque bytes. */
typedef struct {
  char *id; /* the server's id for it: 32 lower-case hex digits, random */
  char *device_id; /* the recipient device */
  char *user_key; /* the recipient device's user */
  char *sender_key; /* the sending user */
  char *sender_device; /* the sending device's id */
  GBytes *envelope;
  gint64 held_at; /* unix seconds */
  gint64 expires; /* unix seconds: gone from then on */
} HarkStoreMessage;

/* How much is held: messages and envelope bytes. */
typedef struct {
  gint64 count;
  gint64 bytes;
} HarkStoreUsage;

/* The most that may be held for one sending user, and for one recipient device. */
typedef struct {
  HarkStoreUsage sender;
  HarkStoreUsage device;
} HarkStoreMessageLimits;

typedef enum {
  HARK_BUDDY_ADD,
  HARK_BUDDY_REMOVE,
  HARK_BUDDY_RENAME,
} HarkBuddyOp;

typedef struct {
  guint32 version; /* HARK_STORE_INTERFACE_VERSION; new members go at the end */

  /* Open (and create or migrate the schema of) a store. settings are the store's part
   * of its user's configuration (e.g. {"path": ...} or {"conninfo": ...}); state_dir is
   * the node's state directory for relative paths. Returns the opened store. */
  gpointer (*open)(gpointer instance, const char *state_dir, GVariant *settings, GError **error);
  void (*close)(gpointer store);

  /* EXISTS when name_key (or, never in practice, account_id) is taken. account_id is
   * the caller's new random id (hark_account_id_new). */
  gboolean (*user_create)(gpointer store, const char *name, const char *name_key,
                          const char *account_id, const char *password_hash, gint64 now,
                          GError **error);
  /* NULL and NOT_FOUND when there is no such user. Free with hark_store_user_free. */
  HarkStoreUser *(*user_get)(gpointer store, const char *name_key, GError **error);
  /* The new hash; with revoke_others, in the same transaction every device of the user
   * but keep_device_id (NULL: none) that is not revoked yet is revoked at now, and
   * *revoked (may be NULL) gets how many were. */
  gboolean (*user_set_password)(gpointer store, const char *name_key, const char *password_hash,
                                gboolean revoke_others, const char *keep_device_id, gint64 now,
                                gint64 *revoked, GError **error);
  /* Also removes the user's buddies, devices, and the user from others' lists. */
  gboolean (*user_delete)(gpointer store, const char *name_key, GError **error);
  /* A failed login: failed_logins += 1 and locked_until = lock_until (when larger), in one
   * statement; *failed_logins gets the new count. */
  gboolean (*user_note_failure)(gpointer store, const char *name_key, gint64 lock_until,
                                gint64 *failed_logins, GError **error);
  /* A good login: failed_logins = 0, locked_until = 0, and the device is recorded
   * (device_id is the key fingerprint; device_name as the user calls it): first_seen
   * at its first login, last_seen now, and no longer revoked (the password is the
   * account's authority; a revocation ends what a device holds without it). */
  gboolean (*user_note_login)(gpointer store, const char *name_key, const char *device_id,
                              const char *device_name, gint64 now, GError **error);
  /* Names (as registered) of users whose name_key starts with prefix_key, sorted by
   * name_key, at most limit. */
  GPtrArray *(*users_find)(gpointer store, const char *prefix_key, guint limit, GError **error);

  /* The buddy list and its revision (0 for a user who never changed it). */
  GPtrArray *(*buddies_get)(gpointer store, const char *name_key, gint64 *revision, GError **error);
  /* One change. When expected_revision >= 0 and differs from the current one: CONFLICT.
   * ADD of a present buddy or REMOVE/RENAME of an absent one: EXISTS / NOT_FOUND. On
   * success the revision goes up by one and *new_revision has it. */
  gboolean (*buddies_change)(gpointer store, const char *name_key, HarkBuddyOp op,
                             const char *buddy_key, const char *alias, gint64 expected_revision,
                             gint64 *new_revision, GError **error);

  /* ---- version 2 ---- */

  /* The user's devices, revoked ones too, oldest first (HarkStoreDevice*; free with
   * hark_store_device_free); NOT_FOUND when there is no such user. */
  GPtrArray *(*devices_list)(gpointer store, const char *name_key, GError **error);
  /* One device; NOT_FOUND when the user has no such device (or there is no user). */
  HarkStoreDevice *(*device_get)(gpointer store, const char *name_key, const char *device_id,
                                 GError **error);
  /* last_seen = now (a renewal); NOT_FOUND when there is no such device. */
  gboolean (*device_seen)(gpointer store, const char *name_key, const char *device_id, gint64 now,
                          GError **error);
  /* revoked = now unless it is revoked already; NOT_FOUND when there is no such device. */
  gboolean (*device_revoke)(gpointer store, const char *name_key, const char *device_id, gint64 now,
                            GError **error);

  /* ---- version 3 ---- */

  /* Every request from or to the user, pending and declined, oldest first
   * (HarkStoreRequest*; free with hark_store_request_free); NOT_FOUND when there is no
   * such user. Blocks do not filter it: the caller hides what a block hides. */
  GPtrArray *(*requests_list)(gpointer store, const char *name_key, GError **error);
  /* A pending request from_key -> to_key made at now (message may be NULL), replacing a
   * declined one. EXISTS when one is pending already (whatever the limit); LIMIT when
   * from_key has max_pending pending requests; NOT_FOUND when either user does not exist. */
  gboolean (*request_send)(gpointer store, const char *from_key, const char *to_key,
                           const char *message, guint max_pending, gint64 now, GError **error);
  /* Answers the pending request from_key -> to_key. accept: in one transaction each user's
   * list gains the other (alias: their name as registered; an entry present stays as it
   * is), both revisions go up by one, and requests between the two either way go.
   * Otherwise the request is declined at now. NOT_FOUND when none is pending. */
  gboolean (*request_answer)(gpointer store, const char *to_key, const char *from_key,
                             gboolean accept, gint64 now, GError **error);
  /* Withdraws from_key's pending request to to_key; NOT_FOUND when none is pending. */
  gboolean (*request_cancel)(gpointer store, const char *from_key, const char *to_key,
                             GError **error);
  /* blocked: name_key blocks other_key (again: no change), in one transaction with: a
   * pending request other -> name is declined at now, name's pending request to other is
   * withdrawn, and other leaves name's buddy list (its revision goes up when other was
   * there). Not blocked: the block goes (NOT_FOUND when there was none) and requests
   * other made meanwhile are declined at now; nothing the block removed comes back. */
  gboolean (*block_set)(gpointer store, const char *name_key, const char *other_key,
                        gboolean blocked, gint64 now, GError **error);
  /* The name keys name_key blocks, sorted (char*); NOT_FOUND when there is no user. */
  GPtrArray *(*blocks_list)(gpointer store, const char *name_key, GError **error);

  /* ---- version 4 ---- */

  /* The certificate just issued to a device (at login and renewal) replaces the one
   * before; NOT_FOUND when there is no such device. */
  gboolean (*device_set_certificate)(gpointer store, const char *name_key, const char *device_id,
                                     const char *certificate, gint64 expires, GError **error);
  /* The last certificates of the user's devices that are not revoked and whose certificate
   * expires after now, oldest device first (HarkStoreCertificate*; free with
   * hark_store_certificate_free); NOT_FOUND when there is no such user. */
  GPtrArray *(*device_certificates)(gpointer store, const char *name_key, gint64 now,
                                    GError **error);
  /* The device with this id that is not revoked, and its user's name key in *name_key
   * (when the same key is a device of two accounts: the one seen last). NOT_FOUND when no
   * user has it, or only revoked. */
  HarkStoreDevice *(*device_find)(gpointer store, const char *device_id, char **name_key,
                                  GError **error);
  /* Holds a message, in one transaction with the check of the limits against what is
   * held and not expired at message->held_at: LIMIT when the sender's count or bytes
   * would pass limits->sender, FULL when the device's would pass limits->device (the
   * sender's checked first); NOT_FOUND when the recipient user does not exist; EXISTS
   * when the id is taken. */
  gboolean (*message_hold)(gpointer store, const HarkStoreMessage *message,
                           const HarkStoreMessageLimits *limits, GError **error);
  /* Up to limit messages held for device_id that have not expired at now, oldest first
   * (held_at, then the order they were held in) (HarkStoreMessage*; free with hark_store_message_free); *more
   * (may be NULL) tells whether there are more. */
  GPtrArray *(*messages_list)(gpointer store, const char *device_id, gint64 now, guint limit,
                              gboolean *more, GError **error);
  /* Deletes those of ids (n_ids of them) held for device_id; ids held for others, or
   * unknown, are left alone. *deleted (may be NULL) gets how many went. */
  gboolean (*messages_delete)(gpointer store, const char *device_id, const char *const *ids,
                              guint n_ids, gint64 *deleted, GError **error);
  /* What is held, not expired at now, from sender_key (into *sender) and for device_id
   * (into *device); either name may be NULL (its usage is then zero). */
  gboolean (*messages_usage)(gpointer store, const char *sender_key, const char *device_id,
                             gint64 now, HarkStoreUsage *sender, HarkStoreUsage *device,
                             GError **error);
  /* Deletes every message expired at now; *deleted (may be NULL) gets how many. */
  gboolean (*messages_expire)(gpointer store, gint64 now, gint64 *deleted, GError **error);
} HarkStoreInterface;

/* For store plugins, so every store words its errors alike: NOT_FOUND "no user 'x'". */
HARK_API void hark_store_set_no_user(GError **error, const char *name_key);
/* NOT_FOUND "no device 'fp' of 'x'". */
HARK_API void hark_store_set_no_device(GError **error, const char *name_key, const char *device_id);
/* When *error is EXISTS, replace the database's words with these. */
HARK_API void hark_store_reword_exists(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* CONFLICT unless expected is negative (no check) or equals current. */
HARK_API gboolean hark_store_check_revision(gint64 current, gint64 expected, const char *name_key,
                                            GError **error);
/* What one buddy-list statement did: changed rows > 0 is success; 0 is NOT_FOUND; < 0 is
 * the statement's error (an EXISTS reworded for the buddy). */
HARK_API gboolean hark_store_buddy_change_result(gint64 changed, const char *name_key,
                                                 const char *buddy_key, GError **error);

HARK_API void hark_store_user_free(HarkStoreUser *user);
HARK_API void hark_store_device_free(HarkStoreDevice *device);
HARK_API void hark_store_buddy_free(HarkStoreBuddy *buddy);
HARK_API HarkStoreRequest *hark_store_request_new(const char *from_key, const char *to_key,
                                                  const char *message, gint64 created,
                                                  gint64 answered);
HARK_API void hark_store_request_free(HarkStoreRequest *request);
/* NOT_FOUND "no pending request from 'a' to 'b'". */
HARK_API void hark_store_set_no_request(GError **error, const char *from_key, const char *to_key);
/* EXISTS "a request from 'a' to 'b' is pending already". */
HARK_API void hark_store_set_request_pending(GError **error, const char *from_key,
                                             const char *to_key);
HARK_API HarkStoreBuddy *hark_store_buddy_new(const char *name_key, const char *alias);
HARK_API HarkStoreCertificate *hark_store_certificate_new(const char *device_id,
                                                          const char *certificate, gint64 expires);
HARK_API void hark_store_certificate_free(HarkStoreCertificate *certificate);
/* Takes nothing: copies the strings and refs envelope. */
HARK_API HarkStoreMessage *hark_store_message_new(const char *id, const char *device_id,
                                                  const char *user_key, const char *sender_key,
                                                  const char *sender_device, GBytes *envelope,
                                                  gint64 held_at, gint64 expires);
HARK_API void hark_store_message_free(HarkStoreMessage *message);
/* The limits check of message_hold, for store plugins, on what is held (not counting the
 * new message): LIMIT or FULL with a message saying which, or TRUE when it fits. */
HARK_API gboolean hark_store_check_message_limits(const HarkStoreMessageLimits *limits,
                                                  const HarkStoreUsage *sender,
                                                  const HarkStoreUsage *device, gsize size,
                                                  GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStoreUser, hark_store_user_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStoreDevice, hark_store_device_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStoreRequest, hark_store_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStoreCertificate, hark_store_certificate_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkStoreMessage, hark_store_message_free)

G_END_DECLS
