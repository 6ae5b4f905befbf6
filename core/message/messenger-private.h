/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger-private.h: what the messenger's files share (see messenger.h). */
#pragma once

#include "message-envelope.h"
#include "message-history.h"
#include "message-route.h"
#include "messenger.h"

G_BEGIN_DECLS

#define MESSENGER_DEVICES_TTL_S 60 /* a user's device certificates are asked again after */
#define MESSENGER_ONLINE_TTL_S 10 /* a user's online devices are looked up again after */
#define MESSENGER_ONLINE_FRESH_MS 500 /* ... and, for a new message, after this */
#define MESSENGER_FETCH_S 30 /* held messages are fetched at least this often */
#define MESSENGER_PUMP_BATCH 64 /* outbox entries attempted at once */
#define MESSENGER_SYNC_FOLLOW_S 180 /* a new device is sent what others missed for it */
#define MESSENGER_GAP_GIVE_UP_S 3600 /* a gap not filled by then is shown as a gap */
#define MESSENGER_HOLD_DAYS 30 /* the login server's default: retry after it gave up */
#define MESSENGER_SYNC_CONVERSATIONS 20 /* a new device gets the last 20 conversations */
#define MESSENGER_SYNC_MESSAGES 200 /* with the last 200 messages of each */
#define MESSENGER_SYNC_COOLDOWN_S 600 /* one asking device is answered once in this long */
#define MESSENGER_TYPING_EVERY_S 3 /* typing notes sent per conversation, at most one in */

/* What the messenger refused or did: the `messages` command's "messenger" counters. */
typedef struct {
  guint64 sent; /* messages this device sealed (text) */
  guint64 received; /* new messages from other devices (text) */
  guint64 duplicates; /* envelopes whose id was here already (acknowledged again) */
  guint64 receipts; /* receipts taken */
  guint64 held; /* envelopes handed to the login server for an offline device */
  guint64 fetched; /* envelopes the login server held for this device */
  guint64 refused_malformed;
  guint64 refused_forged;
  guint64 refused_foreign; /* another CA, another user's name, not ours to read */
  guint64 refused_expired;
  guint64 refused_not_for_us;
  guint64 refused_undecryptable;
  guint64 refused_replayed;
  guint64 refused_rate; /* over a sender's rate at this device */
  guint64 refused_history; /* history-request or history from another user */
  guint64 history_requests; /* history-request envelopes this device sent (a new device) */
  guint64 history_requests_ignored; /* asked again within MESSENGER_SYNC_COOLDOWN_S */
  guint64 history_requests_again; /* asked again: that device had not answered */
  guint64 history_sent; /* history envelopes this device sent in answer */
  guint64 history_received; /* past messages stored from another device's history */
  guint64 history_refused; /* past messages that do not fit their conversation */
  guint64 history_groups; /* groups learnt from the state a history batch carried */
  guint64 history_groups_refused; /* such states against the group's rules */
  guint64 typing_received; /* typing notes taken (shown or not: messages.typing) */
  guint64 typing_sent; /* typing notes sent (each sealed once for the online devices) */
  guint64 typing_limited; /* typing notes not sent: one per conversation every 3 s */
  guint64 refused_not_member; /* to a group this device does not know, or from a non-member */
  guint64 refused_group; /* membership changes against the group's rules */
  guint64 group_changes; /* membership changes taken */
  guint64 group_states; /* groups learnt from a text's state (a new device of a member) */
  guint64 signals_sent; /* signals sealed and handed to an SN (once per signal) */
  guint64 signals_received; /* signals handed to their kind's handler */
  guint64 signals_refused; /* signals dropped: no handler, too old, held, replayed */
  guint64 signals_retried; /* envelopes of a signal sent again after the SN's 429 (rate) */
} MessengerCounters;

typedef enum {
  MESSENGER_SYNC_NONE, /* not asked yet in this run */
  MESSENGER_SYNC_ASKING, /* waiting for this user's device list */
  MESSENGER_SYNC_DONE, /* asked (or not new: its history was not empty) */
} MessengerSyncState;

/* A user's devices as this device knows them. */
typedef struct {
  char *user; /* canonical */
  GPtrArray *certificates; /* HarkLoginDeviceCertificate*, NULL until asked */
  gint64 certificates_at; /* monotonic s */
  GHashTable *online; /* device id -> SN "host:port", NULL until looked up */
  GError *online_error; /* why the last lookup went unanswered while nothing was known */
  gint64 online_at;
  gint64 online_at_us; /* the same, monotonic µs */
  GPtrArray *waiting_devices; /* MessengerWait*: want certificates */
  GPtrArray *waiting_online; /* MessengerWait*: want the online devices */
  gboolean asking_devices;
  gboolean asking_online;
} MessengerPeer;

typedef void (*MessengerPeerReady)(HarkMessenger *messenger, MessengerPeer *peer,
                                   const GError *error, gpointer data);

typedef struct {
  double tokens;
  gint64 refilled_us;
} MessengerBucket;

struct _HarkMessenger {
  HarkNode *node;
  HarkContext *ctx; /* the core's */
  HarkClock *clock;
  HarkOverlay *overlay;
  HarkDirectory *directory;
  HarkLoginClient *login;
  HarkMessageRoute *route;
  HarkMessageHistory *history; /* NULL when it could not be opened */
  char *history_error; /* why, then */
  guint listener;
  GCancellable *cancellable; /* login requests in flight */
  GHashTable *peers; /* canonical user -> MessengerPeer* */
  GHashTable *replay; /* sender device -> HarkMessageReplay* (loaded from the history) */
  GHashTable *attempts; /* "hex id/device" of outbox entries being tried now */
  GHashTable *buckets; /* sender device -> MessengerBucket*: envelopes taken from it */
  GHashTable *certificates; /* device id -> GBytes (DER): senders seen, for receipts */
  GPtrArray *ops; /* MessengerOp*: callbacks still owed to this messenger */
  gboolean stopping;
  guint pump_source;
  guint fetch_source;
  gboolean fetching;
  gboolean fetch_again;
  gpointer acking; /* while a fetch takes a held message: its batch (messenger-receive.c) */
  const char *acking_id; /* ... and that message's id, until its receipt owes it */
  gboolean typing_enabled; /* messages.typing */
  gboolean read_receipts; /* messages.read_receipts */
  MessengerSyncState sync_state;
  guint sync_source; /* the asker's fetch (and asking again) after asking */
  GHashTable *sync_unanswered; /* device asked -> GBytes certificate, until a batch comes */
  guint sync_rounds; /* times the unanswered were asked again */
  GHashTable *sync_answered; /* asking device -> monotonic s of the last answer */
  GHashTable *sync_followers; /* a device answered lately -> MessengerFollower* */
  GHashTable *typing_sent; /* canonical user -> TypingSent* (messenger-commands.c) */
  GHashTable *signal_handlers; /* kind -> MessengerSignalHandler* (messenger-signal.c) */
  MessengerCounters counters;
};

/* Every asynchronous step starts with this member: when the messenger goes first, it
 * sets messenger to NULL, and the late callback only frees its state. */
typedef struct {
  HarkMessenger *messenger;
} MessengerOp;

/* messenger.c */
/* A zeroed op of size bytes (its first member a MessengerOp), owed to messenger. */
gpointer hark_messenger_op_new(HarkMessenger *messenger, gsize size);
/* The op's callback came: the messenger, or NULL when it is gone (free the op then). */
HarkMessenger *hark_messenger_op_end(gpointer op);
gint64 hark_messenger_now(HarkMessenger *messenger);
/* Removes the timer or idle source *source_id (of the core's context), if any; sets it 0. */
void hark_messenger_source_stop(HarkMessenger *messenger, guint *source_id);
/* The device certificates of user (canonical), fresh within MESSENGER_DEVICES_TTL_S;
 * then ready. */
void hark_messenger_peer_devices(HarkMessenger *messenger, const char *user,
                                 MessengerPeerReady ready, gpointer data);
/* The same, but a device the directory shows online now and the cached list lacks (a
 * device that has just logged in) makes the list be asked again: a message is sealed for
 * a new device from its first minute on, not only once the cache runs out. */
void hark_messenger_peer_devices_current(HarkMessenger *messenger, const char *user,
                                         MessengerPeerReady ready, gpointer data);
/* The online devices of user with their SNs, fresh within MESSENGER_ONLINE_TTL_S. A
 * lookup the directory did not answer (the SN's lookup rate, say) leaves what was known
 * serving; when nothing was, peer->online stays NULL and peer->online_error says why. */
void hark_messenger_peer_online(HarkMessenger *messenger, const char *user,
                                MessengerPeerReady ready, gpointer data);
/* The same for one device: where it was last known to be serves, whatever its age, until
 * its SN says it is not there (hark_messenger_peer_forget_device). A call's later signals
 * and a conference's rosters go to a device they have been talking to; a lookup each
 * would spend the SN's lookup rate on what is known, and leave none for new calls. */
void hark_messenger_peer_online_device(HarkMessenger *messenger, const char *user,
                                       const char *device, MessengerPeerReady ready, gpointer data);
/* A device's certificate (DER, borrowed) as its envelopes or its user's device list
 * showed it, or NULL. Remember: from a verified envelope. */
GBytes *hark_messenger_certificate_of(HarkMessenger *messenger, const char *user,
                                      const char *device);
void hark_messenger_remember_certificate(HarkMessenger *messenger, const char *device,
                                         GBytes *certificate);
/* What was learnt of a device's SN is stale (the SN said it is not there). */
void hark_messenger_peer_forget_online(HarkMessenger *messenger, const char *user);
/* The same, and that device is no longer taken to be where it was. */
void hark_messenger_peer_forget_device(HarkMessenger *messenger, const char *user,
                                       const char *device);
char *hark_messenger_id_hex(const guint8 *id);
gboolean hark_messenger_id_from_hex(const char *hex, guint8 *id);
/* "u:" + the canonical user. */
char *hark_messenger_conversation_of(const char *user);
/* A message as `history` and the `message` event show it; its id under id_name. */
JsonObject *hark_messenger_message_json(const HarkHistoryMessage *message, const char *id_name);
void hark_messenger_emit_message(HarkMessenger *messenger, const HarkHistoryMessage *message);
/* state: "sent", "delivered", "read", "expired" or "failed". */
void hark_messenger_emit_state(HarkMessenger *messenger, const guint8 *id, const char *device,
                               const char *state);
const char *hark_messenger_state_name(HarkMessageState state);

/* messenger-send.c */
typedef void (*MessengerSent)(HarkMessenger *messenger, JsonObject *answer, GError *error,
                              gpointer data);
/* Seals inner (a kind of message-envelope.h) to `to` (a user, or "#" and the id of a group
 * this user is a member of) for every device of that user (of every member) and this
 * user's other devices, stores it (text: in the history) and its outbox
 * entries, and starts delivering. done: the message's id and devices, or why not. */
void hark_messenger_send(HarkMessenger *messenger, const char *to, GVariant *inner,
                         MessengerSent done, gpointer data);
/* Seals a membership change for every device of the group's members before and after it
 * and this user's, and keeps after (this device's new state of the group) with it in one
 * transaction. Takes after. */
void hark_messenger_send_change(HarkMessenger *messenger, const HarkMessageGroup *before,
                                const HarkMessageGroupChange *change, HarkMessageGroup *after,
                                MessengerSent done, gpointer data);
/* Seals inner (a receipt, typing) for one device whose certificate is known (from its
 * envelope) and delivers it once: online, else held; nothing is kept (a lost receipt
 * is sent again when its message comes again). */
void hark_messenger_send_once(HarkMessenger *messenger, const char *user, const char *device,
                              GBytes *certificate, GVariant *inner);
/* handed_on: its SN took it for the device (or refused it for good), or the login server
 * holds it; FALSE: it is lost (no way out, the hold failed, the messenger stopped). */
typedef void (*MessengerHanded)(gpointer data, gboolean handed_on);
/* The same; done (may be NULL) is called exactly once when the envelope was handed on or
 * lost, perhaps before this returns. */
void hark_messenger_send_once_then(HarkMessenger *messenger, const char *user, const char *device,
                                   GBytes *certificate, GVariant *inner, MessengerHanded done,
                                   gpointer data);
/* The same, always held at the login server (never through the SN): handed_on only once
 * the server keeps it, from where the device fetches it whatever crashes meanwhile. */
void hark_messenger_hold_once_then(HarkMessenger *messenger, const char *user, const char *device,
                                   GBytes *certificate, GVariant *inner, MessengerHanded done,
                                   gpointer data);
/* Seals inner (a typing note) once for the online devices of user and sends it to each:
 * never held, never kept (a late note would mislead). done: how many devices it went to
 * (0: none online), or why not. */
void hark_messenger_send_online(HarkMessenger *messenger, const char *user, GVariant *inner,
                                MessengerSent done, gpointer data);
/* Takes a counter and seals inner (sequence 1: not shown, so not ordered) to the user
 * `to` (canonical) for recipients. */
GBytes *hark_messenger_seal_note(HarkMessenger *messenger, const char *to, GVariant *inner,
                                 const HarkMessageRecipient *recipients, guint n, GError **error);
/* The outbox is tried now (a receipt emptied it, the SN link came back, ...). */
void hark_messenger_pump_soon(HarkMessenger *messenger);
void hark_messenger_pump_stop(HarkMessenger *messenger);

/* messenger-receive.c */
#define MESSENGER_VIA_LOGIN "the login server" /* what it held; never a signal */
typedef enum {
  MESSENGER_TAKEN, /* new: stored, shown or held for a gap, acknowledged */
  MESSENGER_DUPLICATE, /* had it: acknowledged again */
  MESSENGER_REFUSED, /* counted, dropped for good */
  MESSENGER_LATER, /* not now (over the sender's rate, the disk): let it come again */
} MessengerTaken;
/* An envelope from our SN (MSG_DELIVER) or held by the login server. */
MessengerTaken hark_messenger_take(HarkMessenger *messenger, GBytes *bytes, const char *via);
/* Ask the login server for what it holds for this device, now (and again until empty). */
void hark_messenger_fetch(HarkMessenger *messenger);
void hark_messenger_fetch_stop(HarkMessenger *messenger);

/* messenger-signal.c */
/* A signal messenger-receive.c checked (verified, opened, fresh, not replayed): to the
 * handler of its kind, or dropped and counted. */
void hark_messenger_signal_deliver(HarkMessenger *messenger, const HarkEnvelope *envelope,
                                   const HarkMessageInner *inner, const char *via);
void hark_messenger_signal_handlers_free(HarkMessenger *messenger);

/* messenger-sync.c */
/* A device logged in with an empty history asks its user's other devices, once a run. */
void hark_messenger_sync_start(HarkMessenger *messenger);
void hark_messenger_sync_stop(HarkMessenger *messenger);
/* A history-request from another device of this user (checked by the caller). */
void hark_messenger_sync_answer(HarkMessenger *messenger, const HarkEnvelope *request);
/* A message this device just stored: each of its user's devices answered in the last
 * MESSENGER_SYNC_FOLLOW_S that the sender did not seal for (it did not know the device
 * yet) gets it as history, so nothing sent around a new device's first login misses it. */
void hark_messenger_sync_follow(HarkMessenger *messenger, const HarkEnvelope *envelope,
                                const HarkHistoryMessage *message);
void hark_messenger_sync_followers_free(gpointer data);
/* A history batch from another device of this user, sender_device (checked by the
 * caller). */
void hark_messenger_sync_take(HarkMessenger *messenger, const HarkMessageInner *inner,
                              const char *sender_device, const char *me_key);

G_END_DECLS
