/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-private.h: what the conference layer's files share (see conferences.h). */
#pragma once

#include "conference-signal.h"
#include "conferences.h"

#include "hark/media.h"

G_BEGIN_DECLS

#define CONFERENCE_TICK_MS 20
#define CONFERENCE_MAX_MEMBERS (HARK_CONFERENCE_MAX_ROSTER - 1) /* besides the host */

/* One participant's input as the host mixes it (conference-speaker.c). */
typedef struct {
  gboolean muted_self; /* it muted itself (its MUTE signal; the host's own `mute`) */
  gboolean muted_host; /* the host muted it (`mute USER`) */
  double level; /* mean magnitude of its input (0-32768), smoothed over about 100 ms */
} ConferenceVoice;
typedef struct _ConferenceLegWatch ConferenceLegWatch; /* conference-handover.c */
typedef struct _ConferenceHandover ConferenceHandover;

/* A member of the conference this node hosts. */
typedef struct {
  char *user; /* canonical */
  char *call_id; /* the leg (32 hex) while it is called or connected; NULL once left */
  char *device; /* the device that answered, once connected */
  const char *state; /* "calling", "connected", "left" */
  HarkMediaPort *port; /* the leg's audio, while call_id is set */
  ConferenceVoice voice;
  /* conference-mixer.c: its leg sends the shared encoder's whole mix (it is silent), and
   * for how many ticks it has not been heard (up to MIXER_SHARE_AFTER_TICKS). */
  gboolean shared;
  guint quiet_ticks;
} ConferenceMember;

/* The conference this node hosts (one at a time). */
typedef struct {
  guint8 id[HARK_CONFERENCE_ID_SIZE];
  char id_hex[2 * HARK_CONFERENCE_ID_SIZE + 1];
  guint32 version; /* of the last roster sent */
  GPtrArray *members; /* ConferenceMember* */
  guint ports_made; /* for unique port names */
  /* the mixer (conference-mixer.c) */
  guint rate, frame; /* Hz, samples per tick */
  HarkMediaPort *local_port; /* the host's own source and sink, a participant too */
  HarkMediaLocal *local;
  GSource *tick;
  gint64 next_tick_us;
  guint64 ticks, late_ticks;
  guint64 silent_inputs; /* inputs with nothing to mix, over all ticks (left out of the sum) */
  gint16 *in; /* frame samples per input */
  gint32 *sum;
  gint16 *out;
  HarkMediaShared *shared; /* the whole mix, encoded once for the silent members */
  /* muting and the active speaker (conference-controls.c, conference-speaker.c) */
  HarkConferences *conferences; /* set by the mixer's start */
  ConferenceVoice host_voice; /* the host's own microphone */
  char *speaker; /* the active speaker announced last, or NULL */
  guint32 speaker_version;
  gint64 speaker_at_us; /* when it was announced */
  char *candidate; /* the loudest now, if not the speaker */
  guint candidate_ticks; /* how long it has been the loudest */
} ConferenceHosted;

/* A conference this node is a member of (another node hosts it). */
typedef struct {
  guint8 id[HARK_CONFERENCE_ID_SIZE];
  char id_hex[2 * HARK_CONFERENCE_ID_SIZE + 1];
  char *host, *host_device;
  char *call_id; /* our leg */
  guint32 version;
  HarkConferenceSignal *roster; /* the last ROSTER taken */
  guint32 speaker_version; /* of the last SPEAKER taken */
  ConferenceLegWatch *watch; /* conference-handover.c: the leg to the host watched */
} ConferenceJoined;

/* What the conferences took and refused: `roster`'s "counters". */
typedef struct {
  guint64 signals; /* conference signals taken */
  guint64 refused_malformed; /* did not parse */
  guint64 refused_sender; /* a roster or end from a device that does not host it */
  guint64 refused_stale; /* a roster version not above the last one */
  guint64 refused_joins; /* joins the host refused (not in the roster, no such conference) */
  guint64 refused_unasked; /* a refusal for a join this node did not ask for */
  guint64 refused_invites; /* invites from a non-member, or that conference.invite forbids */
  guint64 refused_mutes; /* a MUTE from a device that is no connected member */
  guint64 refused_takeover; /* of refused_sender: a newer roster from a device that is not
                             * the successor the last roster named (a false takeover) */
  guint64 handovers; /* a successor took over a conference this node is in */
} ConferenceCounters;

struct _HarkConferences {
  HarkNode *node;
  HarkContext *ctx;
  HarkCalls *calls;
  HarkMessenger *messenger;
  gboolean may_host; /* conference.host */
  guint rate; /* conference.rate */
  const char *invite; /* conference.invite: "host", "members" or "ask" */
  guint dials_per_minute; /* conference.dials_per_minute */
  /* the dials waiting for the host's budget of lookups (conference-dial.c) */
  GQueue dial_queue; /* ConferenceDial* */
  GSource *dial_timer;
  double dial_tokens;
  gint64 dial_refilled_us;
  /* the budget of rosters and speaker signals (conference-dial.c) */
  double signal_tokens;
  gint64 signal_refilled_us;
  ConferenceHosted *hosted;
  GHashTable *joined; /* id hex -> ConferenceJoined* */
  GHashTable *asked; /* id hex -> host user: joins asked for */
  GSource *changed; /* an idle: the roster changed, tell everyone */
  ConferenceCounters counters;
  char *self; /* own_user()'s last answer */
  GHashTable *facts; /* user -> HarkConferenceSignal* (FACTS): the hosted one's members' */
  /* conference-host.c: the succession ranked for the hosted one's roster version (each
   * member's roster names the same; ranking reads every leg's stats) */
  HarkConferenceSignal *succession;
  guint32 succession_version;
  ConferenceHandover *handover; /* conference-handover.c */
};

/* conference.c */
void hark_conference_id_hex(const guint8 *id, gsize size, char *out);
/* `conference USER...`: hosts (a new conference, or the one hosted) and calls each user
 * not in it yet. */
gboolean hark_conference_add(HarkConferences *conferences, GPtrArray *users, GError **error);
gboolean hark_conference_kick(HarkConferences *conferences, const char *user, GError **error);
/* Host: ends it for everyone. Member: leaves (hangs up its leg). */
gboolean hark_conference_end(HarkConferences *conferences, const char *reason, GError **error);
gboolean hark_conference_leave(HarkConferences *conferences, const char *id, GError **error);
gboolean hark_conference_join(HarkConferences *conferences, const char *host, const char *id,
                              GError **error);
/* The conferences of this node and the counters, for `roster`. */
JsonObject *hark_conference_json(HarkConferences *conferences);

/* What the files below use of conference.c. */
void hark_conference_send(HarkConferences *conferences, const char *user, const char *device,
                          HarkConferenceSignal *signal);
/* The roster changed: every member hears it (on an idle). */
void hark_conference_changed(HarkConferences *conferences);
ConferenceMember *hark_conference_member(ConferenceHosted *hosted, const char *user);
/* Calls member (its leg, with a fresh mixer port). */
gboolean hark_conference_member_dial(HarkConferences *conferences, ConferenceMember *member,
                                     GError **error);
/* This device's user, canonical (borrowed until the next call), "" when logged out. */
const char *hark_conference_self(HarkConferences *conferences);
/* A signal refused: counted, logged with the sender's words escaped. */
void hark_conference_refuse(HarkConferences *conferences, guint64 *counter, const char *sender,
                            const char *device, const char *why);

/* conference-commands.c: for the commands of the files below. The conferences of
 * user_data, or NULL after answering the command an error. */
HarkConferences *hark_conference_commands_target(HarkCommandCall *command, gpointer user_data);
/* The answer: `roster`'s, or error (taken). */
void hark_conference_commands_answer(HarkCommandCall *command, HarkConferences *conferences,
                                     gboolean ok, GError *error);

/* conference-controls.c: `merge`, `invite`, `mute`, the signals INVITE and MUTE. */
void hark_conference_controls_register(HarkContext *core_ctx, HarkConferences **conferences);
/* The host's roster: who is muted. */
void hark_conference_controls_roster(HarkConferences *conferences, HarkConferenceSignal *roster);
void hark_conference_take_invite(HarkConferences *conferences, const HarkConferenceSignal *s,
                                 const char *id_hex, const char *sender, const char *device);
void hark_conference_take_mute(HarkConferences *conferences, const HarkConferenceSignal *s,
                               const char *id_hex, const char *sender, const char *device);
/* The call layer's hook for `mute USER` and a conference member's own `mute`. */
JsonObject *hark_conference_mute_hook(gpointer data, const char *user, gboolean mute,
                                      gboolean *taken, GError **error);

/* conference-dial.c: the host's calls to members, paced. Calls member now when the
 * budget allows (conference.dials_per_minute, CONFERENCE_DIAL_BURST at once), else marks
 * it `calling` and calls it as soon as the budget does. FALSE: the call now failed. */
gboolean hark_conference_dial_paced(HarkConferences *conferences, ConferenceMember *member,
                                    GError **error);
void hark_conference_dials_clear(HarkConferences *conferences);
/* The host's rosters and speaker signals share its SN's message budget with its legs'
 * call signals: n signals are taken (0) when the budget allows, else the ms to wait. */
guint hark_conference_signals_take(HarkConferences *conferences, guint n);
/* The members connected now. */
guint hark_conference_connected(ConferenceHosted *hosted);

/* conference-speaker.c: levels and the active speaker. */
/* The mixer read frame from the participant of voice: its level measured (0 while muted);
 * FALSE when it is muted or the frame is all zeros, and its frame is left out of the mix. */
gboolean hark_conference_voice_take(ConferenceVoice *voice, const gint16 *frame, guint n);
/* After each tick's inputs: a new active speaker is announced (at most one change per
 * CONFERENCE_SPEAKER_HOLD_MS). */
void hark_conference_speaker_tick(ConferenceHosted *hosted);
void hark_conference_take_speaker(HarkConferences *conferences, const HarkConferenceSignal *s,
                                  const char *id_hex, const char *sender, const char *device);
/* What conference-host.c and conference-handover.c use of conference.c besides. */
void hark_conference_emit_host(HarkConferences *conferences, const char *id_hex, const char *host,
                               const char *device, gboolean self);
void hark_conference_emit_roster(HarkConferences *conferences, const char *id_hex,
                                 const char *host, const HarkConferenceSignal *roster,
                                 const char *state, const char *reason);
/* A successor hosts conference id (its roster's last version) again: calls each user. */
gboolean hark_conference_host_again(HarkConferences *conferences, const guint8 *id,
                                    guint32 version, GPtrArray *users, GError **error);
/* The host leaves: every leg hangs up without an END, so that the successor takes over. */
void hark_conference_host_leave(HarkConferences *conferences);

/* conference-host.c: the host's facts, the succession */
/* This node's facts for the host of conference id (leg_call_id: our leg, for its RTT). */
HarkConferenceSignal *hark_conference_facts_own(HarkConferences *conferences, const guint8 *id,
                                                const char *leg_call_id);
/* A member's facts, at the host. */
void hark_conference_facts_take(HarkConferences *conferences, HarkConferenceSignal **taken,
                                const char *id_hex, const char *sender, const char *device);
/* A member as the succession ranks it (all borrowed). */
typedef struct {
  const char *user, *device;
  const HarkConferenceSignal *facts; /* its FACTS, or NULL when none came */
  guint32 rtt_ms; /* the host's leg's RTT to it (RTCP); 0: not known */
} ConferenceCandidate;
/* Sorts candidates (ConferenceCandidate) best first, as docs/protocol.md "Conferences:
 * the host and its succession" says, and drops those that opted out of hosting. */
void hark_conference_succession_order(GArray *candidates);
/* Adds the succession to a roster the hosted conference sends. */
void hark_conference_succession_fill(HarkConferences *conferences, HarkConferenceSignal *roster);
/* [{user, device}] of a roster's succession. */
JsonArray *hark_conference_succession_json(const HarkConferenceSignal *roster);

/* conference-handover.c: a host that goes, a successor that takes over */
void hark_conference_handover_init(HarkConferences *conferences);
void hark_conference_handover_free(HarkConferences *conferences);
void hark_conference_watch_free(ConferenceLegWatch *watch);
/* j took a roster from its host: its leg is watched, a new host hears our facts. */
void hark_conference_handover_roster(HarkConferences *conferences, ConferenceJoined *j);
/* From the call watch: every call's change (a successor's call rings here; a hosted
 * leg connects). */
void hark_conference_handover_call(HarkConferences *conferences, const char *id_hex,
                                   const char *peer, const char *peer_device,
                                   const char *state);
/* j's leg to its host ended (reason: the call layer's): TRUE when j stays (a successor
 * is awaited or this node takes over), FALSE when the membership is over. */
gboolean hark_conference_handover_leg_ended(HarkConferences *conferences, ConferenceJoined *j,
                                            const char *reason);
/* An END from the host this node took the hosted conference over from (it had ended it
 * for everyone): TRUE when so (the hosted one ends too). */
gboolean hark_conference_handover_end(HarkConferences *conferences, const char *id_hex,
                                      const char *sender, const char *device);
/* We leave j ourselves: no takeover, no waiting. */
void hark_conference_handover_leaving(ConferenceJoined *j);
/* `roster`'s "last_handover_ms" (and "succession") of a conference. */
void hark_conference_handover_json(HarkConferences *conferences, const char *id_hex,
                                   JsonObject *c);

/* conference-mixer.c */
gboolean hark_conference_mixer_start(HarkConferences *conferences, ConferenceHosted *hosted,
                                     GError **error);
void hark_conference_mixer_stop(ConferenceHosted *hosted);
/* A new port of the conference; *spec (may be NULL) the "port:NAME" a session finds it
 * by, as its source and sink. */
HarkMediaPort *hark_conference_mixer_port(ConferenceHosted *hosted, char **spec, GError **error);

G_END_DECLS
