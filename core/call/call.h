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

/* ---- for the layers above (conferences) ------------------------------------------------ */

/* Called at every `call` event (state: "dialing" ... "ended"; reason: why it ended, or
 * NULL; peer_device NULL before it is known), from inside the call layer: note what
 * changed and act later (an idle), never end or dial calls from here. */
typedef void (*HarkCallsWatch)(gpointer data, const char *id_hex, const char *peer,
                               const char *peer_device, const char *state, const char *reason);
/* One watcher; func NULL removes it. */
void hark_calls_set_watch(HarkCalls *calls, HarkCallsWatch func, gpointer data);
/* `call USER`, with source and sink (media session specs, "port:NAME") in place of the
 * node's media.source and media.sink: the new call's id (g_free it). */
char *hark_calls_dial_with(HarkCalls *calls, const char *user, const char *source,
                           const char *sink, GError **error);
/* The one active (or held) call with user that has the node's own source and sink, or
 * NULL: a call that can become a conference leg. */
const char *hark_calls_plain_with(HarkCalls *calls, const char *user);
/* Call id_hex takes source and sink from now on: its media session is made again (a
 * new SSRC; keys, path and codec stay), so the peer hears no ringing, only the new
 * audio. The call ends "failed" when the new session cannot start. */
gboolean hark_calls_set_media(HarkCalls *calls, const char *id_hex, const char *source,
                              const char *sink, GError **error);
/* `answer ID`: an incoming call that rings here (a conference's successor's leg). */
gboolean hark_calls_answer_id(HarkCalls *calls, const char *id_hex, GError **error);
/* The overlay the calls go over (borrowed): what it knows of this node's NAT. */
HarkOverlay *hark_calls_overlay(HarkCalls *calls);
/* `hangup ID` (a cancel while it rings). */
gboolean hark_calls_hangup_id(HarkCalls *calls, const char *id_hex, GError **error);
/* The peer, its device (NULL before an answer) and the state of call id_hex: FALSE when
 * this node has no such call. Borrowed until the call changes. */
gboolean hark_calls_get_peer(HarkCalls *calls, const char *id_hex, const char **peer,
                             const char **peer_device, const char **state);
/* The call's `stats` ({codec, path, state, ...}), or NULL. */
JsonObject *hark_calls_stats(HarkCalls *calls, const char *id_hex);
/* What `merge` takes: the ids (g_free them) of the plain calls (the node's own source
 * and sink) on hold here and of the one active and not on hold here, oldest first. */
GPtrArray *hark_calls_mergeable(HarkCalls *calls);
/* `hold ID` (hold TRUE) or `resume ID`. */
gboolean hark_calls_hold_id(HarkCalls *calls, const char *id_hex, gboolean hold, GError **error);
/* `mute` and `unmute` of call id_hex: it sends silence (or the voice again). */
gboolean hark_calls_mute_id(HarkCalls *calls, const char *id_hex, gboolean mute, GError **error);

/* `mute`/`unmute` given a user (`mute USER`, `mute user=NAME`), or given no call on a
 * node in a conference: the layer above (conferences) takes it. user: NULL (oneself) or
 * as typed. Sets *taken FALSE to leave it to the calls (a plain call's mute); else
 * returns the answer, or NULL with error set. */
typedef JsonObject *(*HarkCallsMuteHook)(gpointer data, const char *user, gboolean mute,
                                         gboolean *taken, GError **error);
/* One hook; func NULL removes it. */
void hark_calls_set_mute_hook(HarkCalls *calls, HarkCallsMuteHook func, gpointer data);

/* The commands answer about *calls, which the node sets once it has one. */
void hark_calls_commands_register(HarkContext *core_ctx, HarkCalls **calls);

G_END_DECLS
