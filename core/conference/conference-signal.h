/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-signal.h: what a conference's host and the others say to each other
 * (private to the conference layer): the a{sv} body of an end-to-end sealed messenger
 * signal of kind "conference". The envelope's signature by the sender's certified device
 * key says who sent it: a roster counts only from the device that hosts (the one that
 * called this device for the conference). docs/protocol.md, "Conferences".
 *
 * Parsing checks every field's type and limits and refuses anything else with an error
 * that says what was wrong; what the values mean is checked by the conference layer. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HARK_CONFERENCE_ID_SIZE 16
#define HARK_CONFERENCE_MAX_ROSTER 64 /* members, the host included */
#define HARK_CONFERENCE_MAX_REASON 200 /* bytes of UTF-8 */

typedef enum {
  HARK_CONFERENCE_SIGNAL_ROSTER, /* host -> each member: the roster now (version, call) */
  HARK_CONFERENCE_SIGNAL_END, /* host -> each member: the conference is over (reason) */
  HARK_CONFERENCE_SIGNAL_JOIN, /* anyone -> host: let me (back) in */
  HARK_CONFERENCE_SIGNAL_REFUSED, /* host -> who asked to join: no (reason) */
  HARK_CONFERENCE_SIGNAL_INVITE, /* member -> host: please call user in */
  HARK_CONFERENCE_SIGNAL_MUTE, /* member -> host: I muted myself (mute) or not any more */
  HARK_CONFERENCE_SIGNAL_SPEAKER, /* host -> each member: the active speaker is user (version) */
} HarkConferenceSignalType;

#define HARK_CONFERENCE_SIGNAL_N_TYPES (HARK_CONFERENCE_SIGNAL_SPEAKER + 1)

typedef struct {
  char *user; /* canonical user name */
  char *state; /* "host", "calling", "connected", "left" */
} HarkConferenceMember;

typedef struct {
  HarkConferenceSignalType type;
  guint8 id[HARK_CONFERENCE_ID_SIZE];
  guint32 version; /* ROSTER, END: from 1, increasing per conference */
  /* ROSTER: the recipient's leg (the call the host made to it). */
  gboolean has_call;
  guint8 call[16];
  GArray *roster; /* ROSTER: HarkConferenceMember, 1..HARK_CONFERENCE_MAX_ROSTER; else NULL */
  char *reason; /* END, REFUSED: why; else NULL */
  /* ROSTER: the members muted (HarkConferenceMember: user, and "self" or "host", who
   * muted them), each in the roster; NULL when none is. */
  GArray *muted;
  char *user; /* INVITE: whom to call in (required); SPEAKER: who talks, NULL: nobody */
  gboolean mute; /* MUTE: muted (TRUE) or not */
} HarkConferenceSignal;

HarkConferenceSignal *hark_conference_signal_new(HarkConferenceSignalType type, const guint8 *id);
void hark_conference_signal_free(HarkConferenceSignal *signal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkConferenceSignal, hark_conference_signal_free)
/* Adds a member to the roster (copied). */
void hark_conference_signal_add(HarkConferenceSignal *signal, const char *user, const char *state);

/* Marks user of the roster muted by "self" or "host" (copied). */
void hark_conference_signal_add_muted(HarkConferenceSignal *signal, const char *user,
                                      const char *by);
/* Who muted user ("self", "host"), or NULL. */
const char *hark_conference_signal_muted_by(const HarkConferenceSignal *signal, const char *user);

/* Same type, id, version, call, roster, muted, user, mute and reason. */
gboolean hark_conference_signal_equal(const HarkConferenceSignal *a, const HarkConferenceSignal *b);

/* The body (floating a{sv}). */
GVariant *hark_conference_signal_build(const HarkConferenceSignal *signal);
/* body: untrusted. NULL with an error (G_IO_ERROR_INVALID_DATA) naming the field. */
HarkConferenceSignal *hark_conference_signal_parse(GVariant *body, GError **error);
const char *hark_conference_signal_type_name(HarkConferenceSignalType type);

G_END_DECLS
