/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* presence.h: presence records, the directory's unit (docs/protocol.md, "Directory").
 *
 * Each logged-in device publishes a record of itself: its user, its device id (the
 * fingerprint of its key), its device certificate, its super node, its addresses, its NAT
 * verdict, its status, the time and a sequence number, signed with the device key. A
 * record comes in two forms, each signed on its own: the FULL form (addresses and status:
 * for the user's buddies) and the PUBLIC form (no addresses, status "hidden": what the
 * directory stores and strangers see).
 *
 * On the wire a signed record is the GVariant (ayay): the payload (the normal-form,
 * little-endian serialisation of HARK_PRESENCE_PAYLOAD_TYPE) and the Ed25519 signature
 * of "HARK-PRESENCE-1\n" followed by the payload's bytes. The payload's bytes are what is
 * signed and what is forwarded, so every node checks exactly what the device signed.
 *
 * Every node that stores or forwards a record checks it with hark_presence_verify():
 * the payload's form and limits, the certificate's chain to the pinned CA, that the
 * certified user and key are the record's, the signature, and the time. */
#pragma once

#include "hark/export.h"
#include "hark/identity.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_PRESENCE_ERROR (hark_presence_error_quark())
HARK_API GQuark hark_presence_error_quark(void);

typedef enum {
  HARK_PRESENCE_ERROR_MALFORMED, /* not a record: form, field or limit */
  HARK_PRESENCE_ERROR_FORGED, /* the signature is not the certified key's */
  HARK_PRESENCE_ERROR_FOREIGN, /* certificate not from the CA, or of another user/device */
  HARK_PRESENCE_ERROR_EXPIRED, /* older than HARK_PRESENCE_LIFETIME_S, or its
                                  * certificate was not valid when it was signed */
  HARK_PRESENCE_ERROR_FUTURE, /* dated more than HARK_PRESENCE_MAX_SKEW_S ahead */
} HarkPresenceError;

/* (payload form, user, device id, certificate DER, SN "host:port", addresses
 * (kind "host"|"srflx", host, port), NAT verdict, status, sequence, time in unix s). */
#define HARK_PRESENCE_PAYLOAD_TYPE "(sssaysa(ssq)sstx)"
#define HARK_PRESENCE_SIGNED_TYPE "(ayay)"
#define HARK_PRESENCE_LIFETIME_S (72 * 3600) /* forgotten this long after its time */
#define HARK_PRESENCE_MAX_SKEW_S 300 /* how far ahead a record may be dated */
#define HARK_PRESENCE_MAX_PAYLOAD 4096 /* bytes of a payload */
#define HARK_PRESENCE_MAX_ADDRESSES 8
#define HARK_PRESENCE_NAME_MAX 32 /* a user name: as the login server's */

typedef enum {
  HARK_PRESENCE_ONLINE,
  HARK_PRESENCE_AWAY,
  HARK_PRESENCE_BUSY,
  HARK_PRESENCE_INVISIBLE, /* shown to buddies as offline; calls still reach the device */
  HARK_PRESENCE_HIDDEN, /* the public form: the status is not told */
} HarkPresenceStatus;

typedef struct {
  char *kind; /* "host" (an address of the device) or "srflx" (as the NAT probe saw it) */
  char *host; /* an IP address */
  guint16 port;
} HarkPresenceAddress;

typedef struct {
  gboolean is_public; /* the PUBLIC form: no addresses, status HIDDEN */
  char *user; /* as the certificate names it */
  char *device; /* the device key's fingerprint, 64 lower-case hex digits */
  GBytes *certificate; /* DER */
  char *sn; /* "host:port" of the device's super node ("" when none) */
  GPtrArray *addresses; /* HarkPresenceAddress* */
  char *nat; /* the NAT verdict's name ("unknown", "open", ...) */
  HarkPresenceStatus status;
  guint64 sequence; /* grows with every record the device signs */
  gint64 time; /* unix seconds when it was signed */
  GVariant *signed_form; /* (ayay), set by sign and verify: what is sent on */
} HarkPresenceRecord;

HARK_API HarkPresenceRecord *hark_presence_record_new(void);
HARK_API void hark_presence_record_free(HarkPresenceRecord *record);
HARK_API void hark_presence_record_add_address(HarkPresenceRecord *record, const char *kind,
                                               const char *host, guint16 port);
/* A copy in the PUBLIC form (no addresses, HIDDEN, not signed: signed_form is NULL). */
HARK_API HarkPresenceRecord *hark_presence_record_public(const HarkPresenceRecord *record);

/* Signs record with identity (which must be the certified key) and sets its signed_form;
 * returns it (borrowed). MALFORMED when the record breaks a limit. */
HARK_API GVariant *hark_presence_sign(HarkPresenceRecord *record, HarkIdentity *identity,
                                      GError **error);
/* The structure of a signed record, its form and limits, without its signature or
 * certificate: for a node that only looks at one. MALFORMED otherwise. */
HARK_API HarkPresenceRecord *hark_presence_parse(GVariant *signed_form, GError **error);
/* Everything: parse, the certificate against ca_pem at the record's time, the certified
 * user equal to the record's (case-insensitive) and, when user is not NULL, to that
 * user too; the fingerprint; the signature; time within [now - LIFETIME, now + SKEW].
 * The error's code says which check failed; its message is safe to log (peer text is
 * escaped). */
HARK_API HarkPresenceRecord *hark_presence_verify(GVariant *signed_form, const char *ca_pem,
                                                  const char *user, gint64 now, GError **error);

/* A device's signed watch: its user watches these users, at time (unix s), through the SN
 * whose device id (certified key's fingerprint) is sn, proved by its device key and
 * certificate (docs/protocol.md, "Presence subscriptions"). An SN peer pushes a watcher's
 * buddies' full forms only over the link to that SN and only for a watch that verifies. */
#define HARK_PRESENCE_WATCH_MAX_AGE_S 600 /* a watch older than this is stale */
#define HARK_PRESENCE_WATCH_MAX_USERS 1000
#define HARK_PRESENCE_WATCH_MAX_PAYLOAD 40000 /* bytes: 1000 names and a certificate */

/* The signed watch ((ayay), full reference), or NULL with error. */
HARK_API GVariant *hark_presence_watch_sign(const char *user, const char *const *users,
                                            const char *sn, gint64 time, GBytes *certificate,
                                            HarkIdentity *identity, GError **error);

/* Whether signed_watch is watcher's (its certificate the CA's, of that user; signed by the
 * certified key), made for the SN sn, dated at most HARK_PRESENCE_WATCH_MAX_AGE_S before now and at most
 * HARK_PRESENCE_MAX_SKEW_S after. Adds the watched users (canonical) to users (may be
 * NULL). The error's message is safe to log. */
HARK_API gboolean hark_presence_watch_verify(GVariant *signed_watch, const char *ca_pem,
                                             const char *watcher, const char *sn, gint64 now,
                                             GHashTable *users, GError **error);

/* "online", "away", "busy", "invisible", "hidden"; and back (FALSE for anything else). */
HARK_API const char *hark_presence_status_to_string(HarkPresenceStatus status);
HARK_API gboolean hark_presence_status_from_string(const char *text, HarkPresenceStatus *status);
/* The most available status among records (HarkPresenceRecord*): online before away
 * before busy; INVISIBLE when every device is invisible, HIDDEN when no record tells
 * (public forms only, or none). */
HARK_API HarkPresenceStatus hark_presence_most_available(GPtrArray *records);

/* A user name as the login server takes it (1-32 of A-Z a-z 0-9 . _ -, a letter first). */
HARK_API gboolean hark_presence_name_is_valid(const char *name);
/* The canonical key of a name (ASCII lower case), the form records are filed under. */
HARK_API char *hark_presence_name_key(const char *name);

/* A directory lookup (the body of DIR_LOOKUP, (sbas)): a name or, with prefix, the
 * start of names; the search strategies to try, in order (empty: the SN's own order). */
#define HARK_PRESENCE_QUERY_TYPE "(sbas)"
#define HARK_PRESENCE_MAX_STRATEGIES 8
typedef struct {
  char *key; /* canonical (lower case) */
  gboolean prefix;
  char **strategies; /* NULL-terminated */
} HarkPresenceQuery;

/* MALFORMED unless the body is a query: a valid name (a prefix: 1-32 name characters,
 * a letter first), at most HARK_PRESENCE_MAX_STRATEGIES strategy names of 1-32
 * characters a-z 0-9 '-'. */
HARK_API HarkPresenceQuery *hark_presence_query_parse(GVariant *body, GError **error);
HARK_API void hark_presence_query_free(HarkPresenceQuery *query);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkPresenceQuery, hark_presence_query_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkPresenceRecord, hark_presence_record_free)

G_END_DECLS
