/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-private.h: what the conference layer's files share (see conferences.h). */
#pragma once

#include "conference-signal.h"
#include "conferences.h"

#include "hark/media.h"

G_BEGIN_DECLS

#define CONFERENCE_TICK_MS 20
#define CONFERENCE_MAX_MEMBERS (HARK_CONFERENCE_MAX_ROSTER - 1) /* besides the host */

/* A member of the conference this node hosts. */
typedef struct {
  char *user; /* canonical */
  char *call_id; /* the leg (32 hex) while it is called or connected; NULL once left */
  char *device; /* the device that answered, once connected */
  const char *state; /* "calling", "connected", "left" */
  HarkMediaPort *port; /* the leg's audio, while call_id is set */
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
} ConferenceHosted;

/* A conference this node is a member of (another node hosts it). */
typedef struct {
  guint8 id[HARK_CONFERENCE_ID_SIZE];
  char id_hex[2 * HARK_CONFERENCE_ID_SIZE + 1];
  char *host, *host_device;
  char *call_id; /* our leg */
  guint32 version;
  HarkConferenceSignal *roster; /* the last ROSTER taken */
} ConferenceJoined;

/* What the conferences took and refused: `roster`'s "counters". */
typedef struct {
  guint64 signals; /* conference signals taken */
  guint64 refused_malformed; /* did not parse */
  guint64 refused_sender; /* a roster or end from a device that does not host it */
  guint64 refused_stale; /* a roster version not above the last one */
  guint64 refused_joins; /* joins the host refused (not in the roster, no such conference) */
  guint64 refused_unasked; /* a refusal for a join this node did not ask for */
} ConferenceCounters;

struct _HarkConferences {
  HarkNode *node;
  HarkContext *ctx;
  HarkCalls *calls;
  HarkMessenger *messenger;
  gboolean may_host; /* conference.host */
  guint rate; /* conference.rate */
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

/* conference-mixer.c */
gboolean hark_conference_mixer_start(HarkConferences *conferences, ConferenceHosted *hosted,
                                     GError **error);
void hark_conference_mixer_stop(ConferenceHosted *hosted);
/* A new port of the conference; *spec (may be NULL) the "port:NAME" a session finds it
 * by, as its source and sink. */
HarkMediaPort *hark_conference_mixer_port(ConferenceHosted *hosted, char **spec, GError **error);

G_END_DECLS
