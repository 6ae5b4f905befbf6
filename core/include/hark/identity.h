/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* identity.h: this device's key pair (Ed25519), made on first start and kept 0600.
 *
 * A damaged key file is an error, never silently replaced: replacing it would change
 * who this device is. */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_IDENTITY_ERROR (hark_identity_error_quark())
HARK_API GQuark hark_identity_error_quark(void);

typedef enum {
  HARK_IDENTITY_ERROR_IO, /* cannot read or write the file */
  HARK_IDENTITY_ERROR_CORRUPT, /* the file is not an Ed25519 private key */
  HARK_IDENTITY_ERROR_PERMISSIONS, /* the file can be read by others */
  HARK_IDENTITY_ERROR_CRYPTO, /* OpenSSL failed */
  HARK_IDENTITY_ERROR_BAD_SIGNATURE,
} HarkIdentityError;

#define HARK_IDENTITY_PUBLIC_KEY_SIZE 32
#define HARK_IDENTITY_SIGNATURE_SIZE 64

typedef struct _HarkIdentity HarkIdentity;

/* Load the key at path, or create it (mode 0600, written atomically) when there is no
 * file. *created tells which (may be NULL). */
HARK_API HarkIdentity *hark_identity_load_or_create(const char *path, gboolean *created,
                                                    GError **error);
HARK_API HarkIdentity *hark_identity_load(const char *path, GError **error);

/* The raw 32-byte public key. */
HARK_API GBytes *hark_identity_get_public_key(HarkIdentity *identity);
/* SHA-256 of the raw public key, lower-case hex, 64 characters. Owned by identity. */
HARK_API const char *hark_identity_get_fingerprint(HarkIdentity *identity);
/* Public key as PEM (SubjectPublicKeyInfo), for certificate requests. */
HARK_API char *hark_identity_get_public_pem(HarkIdentity *identity);

HARK_API GBytes *hark_identity_sign(HarkIdentity *identity, GBytes *data, GError **error);
HARK_API gboolean hark_identity_verify(GBytes *public_key, GBytes *data, GBytes *signature,
                                       GError **error);

HARK_API void hark_identity_free(HarkIdentity *identity);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkIdentity, hark_identity_free)

G_END_DECLS
