/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conferences.h: the conferences of this node (private to libhark). A conference is a
 * host and a roster; every other member is in a normal call with the host (its keys,
 * SRTP, ICE path), so what protects a call protects the conference. The host mixes
 * (conference-mixer.c: one sum per 20 ms tick, each leg the sum less its own audio,
 * through that leg's own session and codec) and tells every member the roster in
 * signals of kind "conference" (conference-signal.h), which its device key signs.
 * docs/protocol.md, "Conferences"; docs/architecture.md, "Conferences".
 *
 * Files: conference.c (the object, hosting, the signals, events), conference-mixer.c,
 * conference-commands.c (`conference`, `roster`, `join`, `leave`, `end`, `kick`),
 * conference-signal.c, conference-mix.c (the arithmetic, hark/conference.h),
 * conference-host.c (the members' facts, who hosts next), conference-handover.c (a
 * successor takes over when the host goes). */
#pragma once

#include "call.h"

G_BEGIN_DECLS

typedef struct _HarkConferences HarkConferences;

/* calls and messenger: borrowed, must outlive it (the node frees it first). */
HarkConferences *hark_conferences_new(HarkNode *node, HarkCalls *calls, HarkMessenger *messenger);
/* A hosted conference ends (its members hear it), the rest are left. */
void hark_conferences_free(HarkConferences *conferences);

/* The commands answer about *conferences, which the node sets once it has one. */
void hark_conferences_commands_register(HarkContext *core_ctx, HarkConferences **conferences);

G_END_DECLS
