/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-turn-parse.h: TURN credentials with no link or overlay (overlay-turn-parse.c):
 * how an SN makes them (coturn's REST API: use-auth-secret) and how a client checks the
 * TURN_CREDENTIALS its SN sent, so that the fuzz target tests/fuzz/fuzz-turn.c feeds the
 * check what a hostile SN could send. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HARK_TURN_TEXT_MAX 512 /* bytes of a username or password we take */
/* The longest a client takes credentials for (supernode.turn_lifetime's own bound): an
 * SN's answer beyond it is refused rather than cached for ever. */
#define HARK_TURN_LIFETIME_MAX (7 * 24 * 3600)

typedef struct {
  char *host; /* the TURN server's literal IP address */
  guint16 port;
  char *username; /* "EXPIRY:USER" */
  char *password; /* base64(HMAC-SHA1(secret, username)): never logged */
  gint64 expires_at; /* unix s */
  gboolean tcp; /* the server takes TURN over TCP on that port too */
  /* Not in TURN_CREDENTIALS: the web port where the SN that handed them takes TURN over
   * TLS and TCP too (its JOIN_OK's "turn_web_port"), 0 when none. */
  guint16 web_port;
} HarkTurnCredentials;

void hark_turn_credentials_free(HarkTurnCredentials *credentials);
HarkTurnCredentials *hark_turn_credentials_copy(const HarkTurnCredentials *credentials);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkTurnCredentials, hark_turn_credentials_free)

/* coturn's REST-API credentials for user until expires_at: username "EXPIRY:USER",
 * password base64(HMAC-SHA1(secret, username)). */
HarkTurnCredentials *hark_overlay_turn_make(const char *host, guint16 port, gboolean tcp,
                                            GBytes *secret, const char *user, gint64 expires_at);
/* The TURN_CREDENTIALS body, (sqssxb). */
GVariant *hark_overlay_turn_to_variant(const HarkTurnCredentials *credentials);
/* A TURN_CREDENTIALS body (sqssxb) from an SN we do not trust, at now (unix s): a
 * literal address a TURN server may be at (hark_address_refusal), a port of 1-65535, a
 * username and password of 1-HARK_TURN_TEXT_MAX clean bytes, an expiry after now and at
 * most HARK_TURN_LIFETIME_MAX after it. NULL with an error saying which is wrong. */
HarkTurnCredentials *hark_overlay_turn_parse(GVariant *body, gint64 now, gboolean allow_loopback,
                                             GError **error);

G_END_DECLS
