/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger.h: instant messages for the node (private): `msg`, `history`,
 * `conversations` and `typing`, and the `message`, `message-state` and `typing` events.
 * It seals each message for every device of the recipient and of this user
 * (message-envelope), keeps it in the history and the outbox (message-history), hands
 * it to the recipient's SN (message-route) or, for a device that is not online, to the
 * login server to hold, and retries until every device acknowledged it or it expired.
 * docs/protocol.md, "Messages"; docs/architecture.md, "Messages".
 *
 * Files: messenger.c (the object, its events, the devices of a user), messenger-send.c
 * (sealing, the outbox and its attempts), messenger-receive.c (opening, ordering,
 * receipts, what the login server held), messenger-signal.c (signals for the layers
 * above), messenger-commands.c (the commands). */
#pragma once

#include "directory.h"
#include "login.h"
#include "overlay.h"

G_BEGIN_DECLS

typedef struct _HarkMessenger HarkMessenger;

/* overlay, directory and login: borrowed, must outlive it. Opens the history in the
 * state directory; when it cannot, it says why in the log and its commands answer that. */
HarkMessenger *hark_messenger_new(HarkNode *node, HarkOverlay *overlay, HarkDirectory *directory,
                                  HarkLoginClient *login);
void hark_messenger_free(HarkMessenger *messenger);

/* This device's certified user (as certified, and canonical), or NULL when logged out. */
gboolean hark_messenger_whoami(HarkMessenger *messenger, char **user, char **key);

/* ---- signals: sealed notes for the layers above (calls), never stored, held or retried */

/* sender_user: canonical; sender_device: 64 hex; body: a{sv}, untrusted (its size is
 * bounded, nothing else); sealed_at: the envelope's time (unix s). The envelope was
 * verified (the sender's certified device key signed it), opened for this device, is
 * not a replay and is at most HARK_MESSAGE_MAX_SIGNAL_AGE_S old. */
typedef void (*HarkMessengerSignalFunc)(gpointer data, const char *sender_user,
                                        const char *sender_device, GVariant *body,
                                        gint64 sealed_at);
/* One handler per kind (a name of [a-z-]+, not a messenger kind); func NULL removes it. */
void hark_messenger_set_signal_handler(HarkMessenger *messenger, const char *kind,
                                       HarkMessengerSignalFunc func, gpointer data);
/* done: the device ids the signal was delivered to (their SN answered "delivered"),
 * or error (nobody online: "USER has no device online"; not logged in; ...). */
typedef void (*HarkMessengerSignalSent)(gpointer data, GPtrArray *delivered /* char* */,
                                        const GError *error);
/* Seals kind/body once for the user's online devices (device NULL; the device list is
 * refreshed as for a new message) or for that one device, and hands it to their SNs.
 * done is called exactly once, never before this returns (with an error when the
 * messenger goes first). body: floating or not. */
void hark_messenger_signal_send(HarkMessenger *messenger, const char *user, const char *device,
                                const char *kind, GVariant *body, HarkMessengerSignalSent done,
                                gpointer data);

/* The commands answer about *messenger, which the node sets once it has one. */
void hark_messenger_commands_register(HarkContext *core_ctx, HarkMessenger **messenger);

G_END_DECLS
