/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* signed-variant.h: what every signed GVariant record of hark shares (presence records,
 * watches, message envelopes): the little-endian normal form that is signed and sent, the
 * reading of untrusted bytes in normal form only, and the domain-separated bytes a
 * signature covers. Not installed. */
#pragma once

#include <glib.h>

/* The little-endian normal form of value's data. */
GBytes *hark_variant_wire_bytes(GVariant *value);
/* bytes (little-endian) as a value of type in host order, or NULL when they are not its
 * normal form. */
GVariant *hark_variant_from_wire_bytes(const GVariantType *type, GBytes *bytes);
/* domain (a string, without its NUL) followed by payload: what a signature covers. */
GBytes *hark_signed_data(const char *domain, GBytes *payload);
/* A floating "ay" of bytes' data (copied). */
GVariant *hark_variant_new_bytes(GBytes *bytes);
/* TRUE when text is exactly length characters of 0-9 a-f (fingerprints, ids). */
gboolean hark_is_lower_hex(const char *text, gsize length);
