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

/* A member of the conference this node hosts. */
typedef struct {
  char *user; /* canonical */
  char *call_id; /* the leg (32 hex) while it is called or connected; NULL once left */
  char *device; /* the device that answered, once connected */
  const char *state; /* "calling", "connected", "left" */
  HarkMediaPort *port; /* the leg's audio, while call_id is set */
  ConferenceVoice voice;
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
  gint16 *in; /* frame samples per input */
  gint32 *sum;
  gint16 *out;
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
/* The mixer read frame from the participant of voice: silenced when it is muted, and
 * its level measured. */
void hark_conference_voice_take(ConferenceVoice *voice, gint16 *frame, guint n);
/* After each tick's inputs: a new active speaker is announced (at most one change per
 * CONFERENCE_SPEAKER_HOLD_MS). */
void hark_conference_speaker_tick(ConferenceHosted *hosted);
void hark_conference_take_speaker(HarkConferences *conferences, const HarkConferenceSignal *s,
                                  const char *id_hex, const char *sender, const char *device);

/* conference-mixer.c */
gboolean hark_conference_mixer_start(HarkConferences *conferences, ConferenceHosted *hosted,
                                     GError **error);
void hark_conference_mixer_stop(ConferenceHosted *hosted);
/* A new port of the conference; *spec (may be NULL) the "port:NAME" a session finds it
 * by, as its source and sink. */
HarkMediaPort *hark_conference_mixer_port(ConferenceHosted *hosted, char **spec, GError **error);

G_END_DECLS
