/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-signal.h: what a conference's host and the others say to each other
 * (private to the conference layer): the a{sv} body of an end-to-end sealed messenger
 * signal of kind "conference". The envelope's signature by the sender's certified device
 * key says who sent it: a roster counts only from the device that hosts (the one that
 * called this device for the conference, or the successor its last roster named, once
 * it took over); a member's facts only from a connected member's device.
 * docs/protocol.md, "Conferences".
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
  HARK_CONFERENCE_SIGNAL_FACTS, /* member -> host: what makes it a good host (facts) */
} HarkConferenceSignalType;

#define HARK_CONFERENCE_SIGNAL_N_TYPES (HARK_CONFERENCE_SIGNAL_FACTS + 1)
#define HARK_CONFERENCE_DEVICE_HEX 64 /* a device id: its key's fingerprint, lower-case hex */
#define HARK_CONFERENCE_MAX_CORES 4096
#define HARK_CONFERENCE_MAX_LOAD 1000000 /* hundredths of a busy core */
#define HARK_CONFERENCE_MAX_RTT_MS 60000

/* How a member reaches the rest of the world, best first (conference-host.c ranks it). */
typedef enum {
  HARK_CONFERENCE_NAT_OPEN, /* no NAT: a public address */
  HARK_CONFERENCE_NAT_CONE, /* a NAT whose mapping is endpoint-independent */
  HARK_CONFERENCE_NAT_UNKNOWN, /* not probed, or the probe could not say */
  HARK_CONFERENCE_NAT_SYMMETRIC, /* a NAT whose mapping depends on the destination */
  HARK_CONFERENCE_NAT_UDP_BLOCKED, /* no UDP out: every leg through a relay, over TCP */
} HarkConferenceNat;

#define HARK_CONFERENCE_NAT_N (HARK_CONFERENCE_NAT_UDP_BLOCKED + 1)

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
  /* ROSTER: who hosts next if the host goes, in that order (HarkConferenceSuccessor, each
   * a roster member other than the host, at most once); NULL when none is named. */
  GArray *succession;
  /* FACTS: the sender's own. */
  gboolean has_facts;
  HarkConferenceNat nat;
  gboolean may_host; /* its conference.host */
  guint32 cores; /* processors, 1..HARK_CONFERENCE_MAX_CORES */
  guint32 load; /* its load average in hundredths (1.5 busy cores: 150) */
  guint32 rtt_ms; /* to the host, measured on its leg; 0: not known */
} HarkConferenceSignal;

typedef struct {
  char *user; /* canonical */
  char *device; /* HARK_CONFERENCE_DEVICE_HEX lower-case hex digits */
} HarkConferenceSuccessor;

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

/* Adds a successor (copied). */
void hark_conference_signal_add_successor(HarkConferenceSignal *signal, const char *user,
                                          const char *device);
/* "open", "cone", "unknown", "symmetric", "udp-blocked". */
const char *hark_conference_nat_name(HarkConferenceNat nat);

/* Same type, id, version, call, roster, muted, user, mute, reason, succession and facts. */
gboolean hark_conference_signal_equal(const HarkConferenceSignal *a, const HarkConferenceSignal *b);

/* The body (floating a{sv}). */
GVariant *hark_conference_signal_build(const HarkConferenceSignal *signal);
/* body: untrusted. NULL with an error (G_IO_ERROR_INVALID_DATA) naming the field. */
HarkConferenceSignal *hark_conference_signal_parse(GVariant *body, GError **error);
const char *hark_conference_signal_type_name(HarkConferenceSignalType type);

G_END_DECLS
