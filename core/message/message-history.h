/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-history.h: the device's own record of its instant messages (private): the
 * conversations, the messages shown and those held back for a gap in a sender's
 * sequence, the per-device states of what it sent, the outbox of envelopes still to
 * deliver, the replay guard's state per sender device and this device's counters. One
 * SQLite file, <state dir>/messages.sqlite (0600). It knows nothing of crypto or of the
 * network: it keeps what the message layer hands it. docs/protocol.md, "Messages:
 * history and outbox on the device".
 *
 * Files: message-history-db.c (the file, its schema, the statements),
 * message-history.c (messages, conversations, sequences), message-outbox.c (states, the
 * outbox, per sender device), message-history-groups.c (the groups this device knows). message-history-db.h is what they share.
 *
 * One thread at a time (the node's main context). Times are unix seconds of the clock
 * given at open (a test clock moves them), except a message's `time`, which is the
 * sender's. */
#pragma once

#include "hark/clock.h"
#include "message-group.h"

#include <gio/gio.h>

G_BEGIN_DECLS

#define HARK_MESSAGE_HISTORY_ERROR (hark_message_history_error_quark())
GQuark hark_message_history_error_quark(void);

typedef enum {
  HARK_MESSAGE_HISTORY_ERROR_IO, /* cannot create, open or read the file */
  HARK_MESSAGE_HISTORY_ERROR_PERMISSIONS, /* other users could read it */
  HARK_MESSAGE_HISTORY_ERROR_CORRUPT, /* not an SQLite file, damaged, or another program's */
  HARK_MESSAGE_HISTORY_ERROR_VERSION, /* written by a newer hark */
  HARK_MESSAGE_HISTORY_ERROR_DATABASE, /* anything else SQLite refused */
  HARK_MESSAGE_HISTORY_ERROR_INVALID, /* an argument out of its range (a caller's bug) */
  HARK_MESSAGE_HISTORY_ERROR_TOO_MANY_HELD, /* that sender device has too much held already */
} HarkMessageHistoryError;

/* At most this many messages held for a gap per sender device (over all conversations):
 * a sender that skips sequences on purpose cannot fill the disk with what is never shown. */
#define HARK_MESSAGE_HISTORY_MAX_HELD 1024
/* How long an outbox entry is kept trying when the caller gives no expiry. */
#define HARK_MESSAGE_HISTORY_OUTBOX_DAYS 30
/* Retries wait 2 s after the first failed attempt, doubling up to 10 min. */
#define HARK_MESSAGE_HISTORY_RETRY_FIRST 2
#define HARK_MESSAGE_HISTORY_RETRY_MAX 600

#define HARK_MESSAGE_ID_SIZE 16

typedef struct _HarkMessageHistory HarkMessageHistory;

typedef enum {
  HARK_MESSAGE_IN, /* received from another device */
  HARK_MESSAGE_OUT, /* written on this device */
} HarkMessageDirection;

/* One message. For add: every field but shown_at, received and after_gap. */
typedef struct {
  guint8 id[HARK_MESSAGE_ID_SIZE];
  char *conversation; /* "u:" + canonical user name, or "g:" + 32 lowercase hex (a group) */
  char *sender; /* the sender's user name */
  char *sender_device; /* the sender's device id (64 hex) */
  guint64 sequence; /* per (sender device, conversation), from 1 */
  gint64 time; /* unix seconds, as the sender sealed it */
  char *kind; /* "text", ... */
  char *text;
  HarkMessageDirection direction;
  gint64 received; /* when this device stored it (its clock) */
  gboolean after_gap; /* shown although messages before it never came */
} HarkHistoryMessage;

void hark_history_message_free(HarkHistoryMessage *message);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkHistoryMessage, hark_history_message_free)

typedef struct {
  char *key; /* "u:NAME" or "g:HEX" */
  char *title;
  gint64 last_activity;
  guint64 unread;
} HarkHistoryConversation;

void hark_history_conversation_free(HarkHistoryConversation *conversation);

typedef enum {
  HARK_MESSAGE_STATE_SENT = 1, /* handed to the network for that device */
  HARK_MESSAGE_STATE_DELIVERED = 2, /* that device said it has it */
  HARK_MESSAGE_STATE_READ = 3, /* that device's user has seen it */
} HarkMessageState;

typedef struct {
  char *device;
  HarkMessageState state;
  gint64 changed;
} HarkHistoryDeviceState;

void hark_history_device_state_free(HarkHistoryDeviceState *state);

typedef struct {
  guint8 message_id[HARK_MESSAGE_ID_SIZE];
  char *device; /* the target device id */
  char *user; /* its user */
  GBytes *envelope;
  gint64 next_attempt;
  guint attempts;
  gint64 expires;
} HarkOutboxEntry;

void hark_outbox_entry_free(HarkOutboxEntry *entry);

typedef enum {
  HARK_MESSAGE_HISTORY_ADDED, /* stored (shown or held) */
  HARK_MESSAGE_HISTORY_DUPLICATE, /* that device's message with that id was here already */
} HarkMessageHistoryAdd;

/* ---- the file -------------------------------------------------------------------------- */

/* Opens <state_dir>/messages.sqlite, creating it (0600) when missing and migrating an
 * older schema. Refuses a file other users can reach, one that is not an SQLite file or
 * is another program's, and one from a newer hark, each with its own error code. clock:
 * borrowed, must outlive the history (NULL: the real time). */
HarkMessageHistory *hark_message_history_open(const char *state_dir, HarkClock *clock,
                                              GError **error);
void hark_message_history_close(HarkMessageHistory *history);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMessageHistory, hark_message_history_close)

/* The schema version this hark writes (PRAGMA user_version). */
guint hark_message_history_schema_version(void);

/* Everything between begin and commit is kept together or not at all: a sender takes
 * the sequence and counter, seals, adds the message and its outbox entries, and commits,
 * so a crash never leaves a sequence taken that was not sent (the recipients would wait
 * for it). Not nested. rollback is safe to call when nothing was begun. */
gboolean hark_message_history_begin(HarkMessageHistory *history, GError **error);
gboolean hark_message_history_commit(HarkMessageHistory *history, GError **error);
void hark_message_history_rollback(HarkMessageHistory *history);

/* ---- messages and conversations -------------------------------------------------------- */

/* Stores a message. An outgoing one is shown at once. An incoming one is shown when its
 * sequence is the next expected from its (sender device, conversation) (or one already
 * passed: a late arrival after a gap was given up), and releases the held ones that
 * follow it; one further ahead is held back until the gap fills. *result says whether it
 * was new; *shown (may be NULL) gets the messages that became showable, in order (none
 * for a duplicate or a held one). A conversation that did not exist is made, titled
 * `title` (NULL: the name in its key). */
gboolean hark_message_history_add(HarkMessageHistory *history, const HarkHistoryMessage *message,
                                  const char *title, HarkMessageHistoryAdd *result,
                                  GPtrArray **shown, GError **error);

/* Stores a message another device of this user had (a new device's first history,
 * docs/protocol.md "Messages: history for a new device"): placed among the shown
 * messages of its conversation by its sender's time (after those of the same time), never
 * unread, no state kept. For an incoming one, the next sequence expected from its sender
 * device in that conversation moves past it, so the sender's next message is shown and
 * not held for a gap; held messages that this makes showable go to *shown (may be NULL),
 * in order. A message already stored (by sender device and id) is a duplicate and
 * changes nothing. */
gboolean hark_message_history_add_past(HarkMessageHistory *history,
                                       const HarkHistoryMessage *message, const char *title,
                                       HarkMessageHistoryAdd *result, GPtrArray **shown,
                                       GError **error);

/* The escape for a gap that never fills (the sender's hold expired, or it crashed before
 * sending): held messages stored more than max_age seconds ago are shown, skipping the
 * gap before them, the first after each gap marked after_gap. *released (may be NULL)
 * gets them, in order per sender. */
gboolean hark_message_history_release_held(HarkMessageHistory *history, gint64 max_age,
                                           GPtrArray **released, GError **error);

/* The next sequence for messages from device in conversation, taken (never handed out
 * again, restarts included). 0 on error. */
guint64 hark_message_history_take_sequence(HarkMessageHistory *history, const char *conversation,
                                           const char *device, GError **error);

/* The last n shown messages of a conversation, oldest first (array of HarkHistoryMessage). */
GPtrArray *hark_message_history_list(HarkMessageHistory *history, const char *conversation, guint n,
                                     GError **error);

/* One stored message by its sender device and id, shown or held; NULL without an error
 * when there is none. */
HarkHistoryMessage *hark_message_history_get(HarkMessageHistory *history, const char *sender_device,
                                             const guint8 *id, GError **error);

/* Conversations, most recent activity first (array of HarkHistoryConversation). */
GPtrArray *hark_message_history_conversations(HarkMessageHistory *history, GError **error);

/* A conversation made by its title alone (a group learnt before any of its messages is
 * here) has no activity yet: its first message shown or placed gives it its place. */
gboolean hark_message_history_set_title(HarkMessageHistory *history, const char *conversation,
                                        const char *title, GError **error);
/* The user has seen the conversation: its unread count goes to 0. */
gboolean hark_message_history_mark_seen(HarkMessageHistory *history, const char *conversation,
                                        GError **error);

/* ---- per-device states of a message ---------------------------------------------------- */

/* Moves the state of message id at device forward (sent, delivered, read); an older
 * state than the one recorded is ignored. *changed (may be NULL) says whether it moved. */
gboolean hark_message_history_set_state(HarkMessageHistory *history, const guint8 *id,
                                        const char *device, HarkMessageState state,
                                        gboolean *changed, GError **error);
/* The states of message id per device, by device id (array of HarkHistoryDeviceState). */
GPtrArray *hark_message_history_states(HarkMessageHistory *history, const guint8 *id,
                                       GError **error);

/* ---- the outbox ------------------------------------------------------------------------ */

/* Keeps envelope for device (of user) until it is done or expires (unix seconds; 0:
 * HARK_MESSAGE_HISTORY_OUTBOX_DAYS from now). Due at once. The same (id, device) again
 * replaces the entry. */
gboolean hark_message_history_outbox_add(HarkMessageHistory *history, const guint8 *id,
                                         const char *device, const char *user, GBytes *envelope,
                                         gint64 expires, GError **error);
/* Entries due now and not expired, longest waiting first, at most limit (array of
 * HarkOutboxEntry). */
GPtrArray *hark_message_history_outbox_due(HarkMessageHistory *history, guint limit,
                                           GError **error);
/* When the outbox next needs the caller: the earliest retry or expiry of its entries
 * (unix seconds, possibly past). FALSE without an error when the outbox is empty. */
gboolean hark_message_history_outbox_next(HarkMessageHistory *history, gint64 *when,
                                          GError **error);
/* The device acknowledged the message end to end: the entry goes. *found (may be NULL)
 * says whether there was one. */
gboolean hark_message_history_outbox_done(HarkMessageHistory *history, const guint8 *id,
                                          const char *device, gboolean *found, GError **error);
/* An attempt failed: tried again after 2 s, 4 s, ... up to 10 min. INVALID when there
 * is no such entry. */
gboolean hark_message_history_outbox_retry(HarkMessageHistory *history, const guint8 *id,
                                           const char *device, GError **error);
/* A way out came back (a new SN link): entries waiting out a retry backoff of at most
 * horizon seconds are due now; those waiting for a hold's end (further away) stay. */
gboolean hark_message_history_outbox_hurry(HarkMessageHistory *history, gint64 horizon,
                                           GError **error);
/* The envelope is in safe hands (the login server holds it for the device): the next
 * attempt waits until until (unix seconds; the hold's end), unless the entry is done
 * first. INVALID when there is no such entry. */
gboolean hark_message_history_outbox_postpone(HarkMessageHistory *history, const guint8 *id,
                                              const char *device, gint64 until, GError **error);
/* Removes the expired entries; *expired (may be NULL) gets them, to tell the user. */
gboolean hark_message_history_outbox_expire(HarkMessageHistory *history, GPtrArray **expired,
                                            GError **error);

/* ---- per sender device ----------------------------------------------------------------- */

/* The replay guard's state for a sender device, opaque here (the envelope code owns its
 * format): *state is NULL when none was saved. */
gboolean hark_message_history_replay_get(HarkMessageHistory *history, const char *device,
                                         GBytes **state, GError **error);
gboolean hark_message_history_replay_set(HarkMessageHistory *history, const char *device,
                                         GBytes *state, GError **error);

/* The next counter for envelopes device seals (this device), taken: from 1, never
 * handed out again. 0 on error. */
guint64 hark_message_history_take_counter(HarkMessageHistory *history, const char *device,
                                          GError **error);

/* ---- groups ------------------------------------------------------------------------------ */

/* The group with id (32 lower-case hex) as this device knows it; NULL and no error when
 * it knows none. */
HarkMessageGroup *hark_message_history_group_get(HarkMessageHistory *history, const char *id,
                                                 GError **error);
/* Keeps group (new, or replacing what was known), and titles its conversation by its name. */
gboolean hark_message_history_group_put(HarkMessageHistory *history, const HarkMessageGroup *group,
                                        GError **error);
/* Every group this device knows, by name (HarkMessageGroup*). */
GPtrArray *hark_message_history_groups(HarkMessageHistory *history, GError **error);

G_END_DECLS
