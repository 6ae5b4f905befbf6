/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call.h: the calls of this node (private to libhark): `call USER`, `answer`, `decline`,
 * `hangup`, `hold`, `resume`, `codec`, `calls`, `stats`, and the `call` event at every
 * state change. Signalling is the messenger's end-to-end sealed signals of kind "call"
 * (call-signal.h), the keys are agreed per call (call-keys.h), the media path is ICE
 * (media-ice.h) and the audio a media session shaped by the node's `media` section.
 * docs/protocol.md, "Calls: the call"; docs/architecture.md, "Calls".
 *
 * Files: call.c (the object, the signal handler, events, sending), call-session.c (one
 * call's state machine), call-media.c (keys, ICE, the media session), call-commands.c. */
#pragma once

#include "call-log.h"
#include "messenger.h"
#include "overlay.h"

G_BEGIN_DECLS

typedef struct _HarkCalls HarkCalls;

/* overlay and messenger: borrowed, must outlive it (the node frees it first). log: where
 * ended calls are kept, or NULL. */
HarkCalls *hark_calls_new(HarkNode *node, HarkOverlay *overlay, HarkMessenger *messenger,
                          HarkCallLog *log);
/* Every call still going ends (the peers are told, "hung up"). */
void hark_calls_free(HarkCalls *calls);

/* The commands answer about *calls, which the node sets once it has one. */
void hark_calls_commands_register(HarkContext *core_ctx, HarkCalls **calls);

G_END_DECLS
