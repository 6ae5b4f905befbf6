/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-auth.h: who may relay (docs/protocol.md, "TURN"). Credentials are coturn's REST
 * API ones: username "EXPIRY:USER", password base64(HMAC-SHA1(secret, username)); the
 * overlay mints them for its logged-in clients and the TURN server recomputes the
 * password from the username and the same secret, so neither keeps a list of users.
 * The secret lives in a file only its owner may read. Nonces are stateless: an expiry
 * and a MAC over it and the client's address. Private to the core. */
#pragma once

#include "relay-table.h"

G_BEGIN_DECLS

#define RELAY_SECRET_MAX 4096 /* bytes of a secret file */
#define RELAY_NONCE_S 600 /* a nonce is stale after this long (438) */
#define RELAY_NONCE_KEY_SIZE 32

/* The secret a file holds, without trailing white space, in memory wiped when freed.
 * The file must be a regular file only its owner may read; what: its name for errors
 * ("supernode.turn_secret_file"). Never logged. */
GBytes *hark_relay_secret_read(const char *path, const char *what, GError **error);
/* The secret of this SN's own relay: state_dir/relay-secret, made (32 random bytes as
 * hex, mode 0600) the first time. */
GBytes *hark_relay_secret_load(const char *state_dir, GError **error);

/* base64(HMAC-SHA1(secret, username)): the password that goes with username. */
char *hark_relay_password(GBytes *secret, const char *username);

typedef enum {
  RELAY_CREDENTIAL_OK,
  RELAY_CREDENTIAL_MALFORMED, /* not "EXPIRY:USER" */
  RELAY_CREDENTIAL_EXPIRED,
} RelayCredential;

/* Reads username as "EXPIRY:USER" (EXPIRY unix seconds, USER not empty): expired when
 * EXPIRY <= now_s. On OK: *user the USER part (new string) and key the long-term key
 * MD5(username:realm:password) to check MESSAGE-INTEGRITY with. */
RelayCredential hark_relay_credential_read(GBytes *secret, const char *username, gsize length,
                                           const char *realm, gint64 now_s, char **user,
                                           guint8 key[16]);

/* A nonce for client good until now_s + RELAY_NONCE_S; and whether one is still good
 * (made by this key for this client, not stale). */
char *hark_relay_nonce_make(const guint8 key[RELAY_NONCE_KEY_SIZE], const RelayAddr *client,
                            gint64 now_s);
gboolean hark_relay_nonce_check(const guint8 key[RELAY_NONCE_KEY_SIZE], const RelayAddr *client,
                                const char *nonce, gsize length, gint64 now_s);

G_END_DECLS
