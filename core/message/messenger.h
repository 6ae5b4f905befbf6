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
 * receipts, what the login server held), messenger-commands.c (the commands). */
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

/* The commands answer about *messenger, which the node sets once it has one. */
void hark_messenger_commands_register(HarkContext *core_ctx, HarkMessenger **messenger);

G_END_DECLS
