/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* identity-private.h: what libhark's own TLS code needs of the device key (not
 * installed: plugins sign through hark_identity_sign and never touch the key). */
#pragma once

#include "hark/identity.h"

#include <openssl/evp.h>

/* The Ed25519 private key, owned by the identity. */
EVP_PKEY *hark_identity_get_private_key(HarkIdentity *identity);
