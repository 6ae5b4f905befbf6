/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-private.h: what the call layer's files share (see call.h). */
#pragma once

#include "call-keys.h"
#include "call-signal.h"
#include "call.h"
#include "overlay-turn-parse.h"
#include "media-ice.h"

#include "hark/media.h"

G_BEGIN_DECLS

#define CALL_INVITES_PER_MINUTE 10 /* INVITEs taken from one user in a minute, burst 10 */
#define CALL_MAX_SENDERS 1024 /* users whose INVITE rate is tracked (then it starts afresh) */
#define CALL_MAX_INVITED 16 /* devices of the callee one INVITE rings at most */
#define CALL_CONNECT_S 20 /* from an answer to media flowing, at most */

typedef enum {
  CALL_DIALING, /* outgoing: INVITE sent, no device rings yet */
  CALL_RINGING, /* outgoing: a device rings; incoming: this device rings */
  CALL_CONNECTING, /* answered; ICE checks, keys */
  CALL_ACTIVE, /* media flows */
  CALL_HELD, /* media held (this side and/or the other) */
  CALL_ENDED,
} CallState;

/* What the calls refused or did: the `calls` command's "counters". */
typedef struct {
  guint64 signals; /* call signals taken */
  guint64 refused_malformed; /* did not parse, or a field out of its limits */
  guint64 refused_unknown; /* for a call this device does not have */
  guint64 refused_sender; /* from a user or device that is not in the call */
  guint64 refused_stale; /* seq not above the last one of that sender and call */
  guint64 refused_proof; /* a nonce that does not echo ours */
  guint64 invites_limited; /* over CALL_INVITES_PER_MINUTE from one user */
  guint64 busy_sent; /* INVITEs answered busy (calls.max) */
  guint64 no_common_codec; /* calls that ended because the offer and our codecs share none */
} CallCounters;

/* The calls object as late callbacks see it: NULL once it is gone. */
typedef struct {
  gint refs;
  HarkCalls *calls;
} CallsAlive;

/* An invited device of the callee (outgoing calls). */
typedef struct {
  char *device; /* 64 hex */
  char *name; /* as its RINGING said, or NULL */
  gboolean ringing;
  gboolean out; /* busy, failed or cancelled: it takes no part any more */
} CallDevice;

typedef struct _HarkCall HarkCall;

struct _HarkCall {
  HarkCalls *calls;
  guint8 id[HARK_CALL_ID_SIZE];
  char id_hex[2 * HARK_CALL_ID_SIZE + 1];
  gboolean outgoing;
  char *peer; /* canonical user */
  char *peer_device; /* the caller's device, or the device that answered; NULL before */
  char *peer_device_name;
  CallState state;
  gboolean local_hold, remote_hold;
  gboolean muted;
  guint32 seq_out; /* the last seq this side sent */
  GHashTable *seq_in; /* device -> GUINT_TO_POINTER(last seq taken) */
  GPtrArray *devices; /* CallDevice*: outgoing, the devices the INVITE reached */
  gboolean invite_sent; /* outgoing: the INVITE left (ICE was ready) */
  gboolean invite_answered; /* outgoing: the INVITE's delivery is known */
  guint8 nonce[HARK_CALL_NONCE_SIZE]; /* ours (INVITE or ANSWER) */
  guint8 peer_nonce[HARK_CALL_NONCE_SIZE];
  gboolean has_peer_nonce;
  HarkCallKeyShare *share;
  guint8 peer_share[HARK_CALL_SHARE_SIZE];
  gboolean has_peer_share;
  GArray *offered; /* HarkCallCodec: the INVITE's codecs, in the caller's order */
  char *codec; /* the one sent now (a registration's name) */
  char *asked_codec; /* an UPDATE of ours waiting for its UPDATE_OK */
  char *asked_path; /* the same for a path (an ICE restart) */
  /* The last path change of either end: its kind, "moving" until it ends, then "moved"
   * or "failed" and why (both NULL before any). */
  char *path_change_kind;
  const char *path_change_outcome;
  char *path_change_reason;
  guint8 dtmf_pt;
  char *reason; /* why it ended */
  char *last_path; /* the media path last seen working ("host udp"), or NULL */
  const char *outcome; /* "answered", "missed", ... (HarkCallLogEntry's) */
  gint64 started_at, answered_at, ended_at; /* unix s */
  gint64 dialled_us, answered_us, active_us; /* monotonic, for the set-up times */
  GSource *ring_timer; /* ringing ends (no answer, missed) */
  GSource *connect_timer; /* answered, but no media path yet */
  /* media (call-media.c) */
  HarkMediaIce *ice;
  struct _CallIceHandle *ice_handle; /* the agent's callback data (it may outlive us) */
  HarkMediaSession *session;
  GPtrArray *session_codecs; /* char*: the session's codecs, in its order (for a swap) */
  GBytes *send_key, *receive_key;
  gboolean local_gathering_done;
  gboolean acked; /* caller: ACK sent; callee: ACK taken: candidates trickle now */
  GPtrArray *trickle_pending; /* char*: candidates gathered since the last CANDIDATES */
  GSource *trickle_timer; /* sends them (call-media.c, CALL_TRICKLE_MS) */
  gboolean remote_credentials;
  char *remote_ufrag, *remote_pwd; /* the INVITE's, until our agent exists */
  GPtrArray *early_candidates; /* char*: the peer's, before our agent existed */
  gboolean early_end_of_candidates;
  /* callee: the agent is made while ringing; an answer before it is there waits */
  gboolean media_ready, answer_waits;
  /* a conference host's leg: the session's source and sink instead of the node's */
  char *media_source, *media_sink;
  char *servers_from; /* the SN ("host:port") our STUN and TURN servers are from */
  gboolean following_sn; /* credentials asked of a new SN, for a restart on its relay */
};

struct _HarkCalls {
  HarkNode *node;
  HarkContext *ctx; /* the core's */
  HarkOverlay *overlay;
  HarkMessenger *messenger;
  HarkCallLog *log;
  CallsAlive *alive;
  GHashTable *calls; /* id hex -> HarkCall* */
  GPtrArray *order; /* HarkCall*, oldest first (borrowed from calls) */
  GHashTable *invite_buckets; /* sender user -> CallBucket* */
  guint ring_timeout_s;
  guint max_calls;
  CallCounters counters;
  HarkCallsWatch watch; /* the layer above's (conferences), or NULL */
  gpointer watch_data;
  HarkCallsMuteHook mute_hook; /* the same layer's, for `mute USER` */
  gpointer mute_hook_data;
  guint listener; /* the overlay's events (a new SN) */
};

/* call.c */
CallsAlive *hark_calls_alive_ref(CallsAlive *alive);
void hark_calls_alive_unref(CallsAlive *alive);
HarkCall *hark_call_new(HarkCalls *calls, const guint8 *id, gboolean outgoing, const char *peer);
HarkCall *hark_calls_find(HarkCalls *calls, const char *id_hex);
/* state changes: the `call` event */
void hark_call_set_state(HarkCall *call, CallState state);
/* The call ends: the event, the log, the media stopped; the call is freed. */
void hark_call_end(HarkCall *call, const char *outcome, const char *reason);
const char *hark_call_state_name(CallState state);
/* A signal of type for this call, with the next seq (fill it, then hark_call_send). */
HarkCallSignal *hark_call_signal_for(HarkCall *call, HarkCallSignalType type);
/* Sends signal (taken) to device of the peer (NULL: every online device). */
void hark_call_send(HarkCall *call, const char *device, HarkCallSignal *signal);
/* The `call` event now (hark_call_set_state emits on a change only). */
void hark_call_emit(HarkCall *call);
/* A timer of seconds on the node's main context (call-owned: destroy it). */
GSource *hark_call_timer(HarkCall *call, guint ms, GSourceFunc func);
void hark_call_timer_stop(GSource **timer);
/* Sends signal (taken) for a call this device keeps no state for (BUSY to an INVITE). */
void hark_calls_send_to(HarkCalls *calls, const char *user, const char *device,
                        HarkCallSignal *signal);
/* setup_ms (dial or INVITE to media) and connect_ms (answer to media) into o, once known. */
void hark_call_json_times(HarkCall *call, JsonObject *o);
/* The event's fields for call (also the `calls` rows). */
JsonObject *hark_call_json(HarkCall *call);
/* A fresh random call id or nonce. */
void hark_call_random(guint8 *out, gsize size);
/* This device's name as its user calls it. */
const char *hark_calls_device_name(HarkCalls *calls);

/* call-session.c */
HarkCall *hark_call_dial(HarkCalls *calls, const char *user, GError **error);
/* A parsed signal from sender_device of the call's peer (already checked: the sender
 * belongs to the call, seq increased). FALSE: refused as unproven or incomplete (an ANSWER
 * or ACK that does not echo our nonce, in any state): nothing changed, so the caller puts
 * the sender's seq back and a refused signal cannot make the real next one look stale. */
gboolean hark_call_take(HarkCall *call, const HarkCallSignal *signal, const char *sender_device);
/* INVITE: a new incoming call (or busy, or refused). */
void hark_calls_take_invite(HarkCalls *calls, const HarkCallSignal *signal, const char *sender,
                            const char *sender_device);
/* The INVITE's delivery: the devices it reached, or why none. */
void hark_call_invite_sent(HarkCall *call, GPtrArray *delivered, const GError *error);
gboolean hark_call_answer(HarkCall *call, GError **error);
gboolean hark_call_decline(HarkCall *call, GError **error);
gboolean hark_call_hangup(HarkCall *call, GError **error);
gboolean hark_call_hold(HarkCall *call, gboolean hold, GError **error);
gboolean hark_call_change_codec(HarkCall *call, const char *name, GError **error);
/* `path udp|tcp|relay|any`: an ICE restart limited to that path, both ends. */
gboolean hark_call_change_path(HarkCall *call, const char *name, GError **error);

/* call-media.c */
/* This node's codecs in the order of media.codecs (names expanded: "g711" is pcmu and
 * pcma), each with its payload type: what an INVITE offers. */
GArray *hark_call_media_local_codecs(HarkCalls *calls);
/* The registration of codec name (a registration's name), or NULL. */
const HarkRegistration *hark_call_media_codec(HarkCalls *calls, const char *name);
/* name as the user gives it ("opus", "pcmu", or a plugin's name "g711") for a codec of
 * the call's offer this node has: the registration's name, or NULL. */
const char *hark_call_media_resolve_codec(HarkCall *call, const char *name);
/* Asks the overlay for TURN credentials (cached there; none when the SN vouches for no
 * TURN server), makes the ICE agent (controlling: the caller) and then calls ready, from
 * the main loop; the call ends "failed" instead when the agent cannot be made. The call
 * may end meanwhile: then ready is not called. */
typedef void (*CallReady)(HarkCall *call);
void hark_call_media_prepare(HarkCall *call, CallReady ready);
/* Callee, once answered: the INVITE's credentials and candidates go to the agent made
 * while ringing (not before the answer: checks would show the caller where we are). */
void hark_call_media_take_early(HarkCall *call);
/* Keys from both shares and nonces. */
gboolean hark_call_media_derive(HarkCall *call, GError **error);
/* The peer's ICE fields of a signal (credentials, candidates, end of candidates). */
void hark_call_media_take_remote(HarkCall *call, const HarkCallSignal *signal);
/* The ICE fields of ours for an INVITE or ANSWER. */
void hark_call_media_fill_local(HarkCall *call, HarkCallSignal *signal);
/* From now on candidates trickle to the peer; every one known so far goes now. */
void hark_call_media_trickle(HarkCall *call);
/* The session starts once ICE is connected and the call may (keys, ACK). */
void hark_call_media_maybe_start(HarkCall *call);
void hark_call_media_set_hold(HarkCall *call);
/* `mute`/`unmute`: silence instead of the source, packets keep flowing. */
gboolean hark_call_media_set_mute(HarkCall *call, gboolean mute, GError **error);
/* `dtmf DIGITS`: RFC 4733 events in the call's RTP stream. */
gboolean hark_call_media_send_dtmf(HarkCall *call, const char *digits, GError **error);
gboolean hark_call_media_swap(HarkCall *call, const char *codec, GError **error);
/* "any", "udp", "tcp", "relay": FALSE for another name. */
gboolean hark_call_media_path_parse(const char *name, HarkMediaIcePath *path);
/* Restarts ICE on path and puts the new credentials in signal (an UPDATE or UPDATE_OK). */
gboolean hark_call_media_restart(HarkCall *call, const char *name, HarkCallSignal *signal,
                                 GError **error);
/* {codec, path, state, ...session stats} */
JsonObject *hark_call_media_stats(HarkCall *call);
/* The path as the event shows it ("host udp"), or NULL. */
char *hark_call_media_path(HarkCall *call);
/* Remembers the path the media takes now as last_path (kept after the pair is gone);
 * FALSE, last_path untouched, when no pair carries the media now. */
gboolean hark_call_media_note_path(HarkCall *call);
/* The call's last path change for its JSON: {"kind", "outcome" (moving, moved, failed),
 * "reason" (a failure's)}. Only when path_change_kind is set. */
JsonObject *hark_call_media_path_change_json(HarkCall *call);
/* The node attached to another SN: when our relay (the old SN's) carries the call's media,
 * ask the new SN for TURN credentials and restart ICE on its STUN and relay (`path any`,
 * both ends), so the call outlives a relay that died with its SN. */
void hark_call_media_follow_sn(HarkCall *call);
void hark_call_media_stop(HarkCall *call);
/* The session made again with the call's media_source and media_sink (a call becoming a
 * conference leg); nothing when there is no session yet. */
gboolean hark_call_media_rebuild(HarkCall *call, GError **error);

G_END_DECLS
