/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-signal.h: what one device says to another about a call (private to the call
 * layer). A signal is the body (a{sv}) of an end-to-end sealed messenger signal of kind
 * "call" (messenger.h, hark_messenger_signal_send): the envelope's signature by the
 * sender's certified device key says who sent it, so a signal that echoes the other
 * side's fresh nonce is that side's proof of its key, bound to the call (no replay).
 * docs/protocol.md, "Calls: signalling".
 *
 * Parsing checks every field's type and limits and refuses anything else with an error
 * that says what was wrong; it never trusts the values (the call layer checks them
 * against the call they name). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HARK_CALL_ERROR (hark_call_error_quark())
GQuark hark_call_error_quark(void);

typedef enum {
  HARK_CALL_ERROR_MALFORMED, /* not a signal's form, or a field out of its limits */
  HARK_CALL_ERROR_KEYS, /* the key agreement failed (a bad public key, OpenSSL) */
  HARK_CALL_ERROR_STATE, /* not possible in the call's state (answer a call that rings no more) */
  HARK_CALL_ERROR_NOT_FOUND, /* no such call */
  HARK_CALL_ERROR_REFUSED, /* the peer or the network refused: the text says why */
  HARK_CALL_ERROR_MEDIA, /* the media path or session failed */
} HarkCallError;

#define HARK_CALL_ID_SIZE 16
#define HARK_CALL_NONCE_SIZE 32
#define HARK_CALL_SHARE_SIZE 32 /* an X25519 public key */
#define HARK_CALL_MAX_CODECS 16
#define HARK_CALL_MAX_CODEC_NAME 31
#define HARK_CALL_MAX_CANDIDATES 32
#define HARK_CALL_MAX_CANDIDATE 256 /* bytes of one candidate line */
#define HARK_CALL_MAX_ICE_TEXT 256 /* ufrag and pwd */
#define HARK_CALL_MAX_REASON 200 /* bytes of UTF-8 */
#define HARK_CALL_MAX_DEVICE_NAME 64

typedef enum {
  HARK_CALL_SIGNAL_INVITE, /* caller -> every online device of the callee */
  HARK_CALL_SIGNAL_RINGING, /* a callee device rings (device_name) */
  HARK_CALL_SIGNAL_ANSWER, /* a callee device took the call */
  HARK_CALL_SIGNAL_ACK, /* caller -> the answering device: its nonce echoed, media may flow */
  HARK_CALL_SIGNAL_DECLINE, /* a callee device declined: the whole call ends as declined */
  HARK_CALL_SIGNAL_BUSY, /* a callee device cannot take it: that device drops out */
  HARK_CALL_SIGNAL_CANCEL, /* caller -> callee devices: stop ringing (reason says why:
                            * "cancelled", "answered elsewhere", "no answer") */
  HARK_CALL_SIGNAL_HANGUP, /* either side ends an established call */
  HARK_CALL_SIGNAL_HOLD, /* either side: hold TRUE (on hold) or FALSE (resumed) */
  HARK_CALL_SIGNAL_UPDATE, /* re-negotiation: a codec (codecs[0]) and/or an ICE restart
                            * (ice_ufrag, ice_pwd, candidates, path) */
  HARK_CALL_SIGNAL_UPDATE_OK, /* the answer to an UPDATE, same fields */
  HARK_CALL_SIGNAL_CANDIDATES, /* trickled ICE candidates (and/or end_of_candidates) */
  HARK_CALL_SIGNAL_FAIL, /* either side: the call cannot go on (reason), e.g. "no common codec" */
} HarkCallSignalType;

#define HARK_CALL_SIGNAL_N_TYPES (HARK_CALL_SIGNAL_FAIL + 1)

typedef struct {
  char name[HARK_CALL_MAX_CODEC_NAME + 1]; /* a codec registration's name: [a-z0-9_-]+ */
  guint8 payload_type; /* 0..127 */
} HarkCallCodec;

typedef struct {
  HarkCallSignalType type;
  guint8 call_id[HARK_CALL_ID_SIZE];
  guint32 seq; /* per sender and call, from 1, increasing: an older one is dropped */
  /* INVITE: the caller's nonce; ANSWER: the callee's; UPDATE: a fresh one. */
  gboolean has_nonce;
  guint8 nonce[HARK_CALL_NONCE_SIZE];
  /* ANSWER: the caller's nonce echoed; ACK: the callee's; UPDATE_OK: the UPDATE's. */
  gboolean has_peer_nonce;
  guint8 peer_nonce[HARK_CALL_NONCE_SIZE];
  /* INVITE, ANSWER: the sender's ephemeral X25519 public key (call-keys.h). */
  gboolean has_share;
  guint8 share[HARK_CALL_SHARE_SIZE];
  /* INVITE: offered, in the caller's order; ANSWER, UPDATE, UPDATE_OK: the one chosen
   * first. At most HARK_CALL_MAX_CODECS. */
  GArray *codecs; /* HarkCallCodec; NULL when absent */
  guint8 dtmf_payload_type; /* INVITE, ANSWER: RFC 4733 telephone-event; 0: absent */
  char *ice_ufrag, *ice_pwd; /* INVITE, ANSWER, UPDATE/UPDATE_OK with a restart; NULL: absent */
  GPtrArray *candidates; /* char*: candidate lines (hark_media_ice's form); NULL: none;
                          * freed with the signal: give it g_free as its free func */
  gboolean end_of_candidates;
  char *path; /* UPDATE: "any", "udp", "tcp", "relay"; NULL: no path change */
  gboolean hold; /* HOLD */
  char *reason; /* DECLINE, BUSY, CANCEL, HANGUP, FAIL: words a user can read; may be NULL */
  char *device_name; /* RINGING, ANSWER: the device's name as its user calls it */
} HarkCallSignal;

HarkCallSignal *hark_call_signal_new(HarkCallSignalType type, const guint8 call_id[HARK_CALL_ID_SIZE],
                                     guint32 seq);
void hark_call_signal_free(HarkCallSignal *signal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkCallSignal, hark_call_signal_free)

const char *hark_call_signal_type_name(HarkCallSignalType type); /* "invite", ... */

/* The a{sv} body (floating, normal form). Only the fields the type uses are written. */
GVariant *hark_call_signal_build(const HarkCallSignal *signal);
/* Any bytes a hostile peer can send (untrusted a{sv}, possibly not in normal form): a
 * signal whose fields fit its type and limits, or NULL with HARK_CALL_ERROR_MALFORMED
 * saying which field was wrong. Unknown keys are ignored (a newer sender's). */
HarkCallSignal *hark_call_signal_parse(GVariant *body, GError **error);
/* Whether a and b say the same (an absent list and an empty one are the same). */
gboolean hark_call_signal_equal(const HarkCallSignal *a, const HarkCallSignal *b);

G_END_DECLS
