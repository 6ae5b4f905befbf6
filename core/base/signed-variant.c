/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* signed-variant.c: the encoding shared by hark's signed records (signed-variant.h).
 *
 * Two nodes must read the same bytes the same way and a signature must cover exactly the
 * bytes sent, so records are always sent in normal form, little-endian, and untrusted
 * bytes are taken only when they are a normal form (GVariant would read anything else
 * "somehow"). */
#include "signed-variant.h"

#include <string.h>

#define READ_SLACK 8 /* see wire.c: GLib's normal-form check may read a byte past the end */

GBytes *
hark_variant_wire_bytes(GVariant *value)
{
  g_autoptr(GVariant) normal = g_variant_get_normal_form(value);
#if G_BYTE_ORDER == G_BIG_ENDIAN
  g_autoptr(GVariant) swapped = g_variant_byteswap(normal);
  return g_variant_get_data_as_bytes(swapped);
#else
  return g_variant_get_data_as_bytes(normal);
#endif
}

GVariant *
hark_variant_from_wire_bytes(const GVariantType *type, GBytes *bytes)
{
  gsize size = g_bytes_get_size(bytes);
  guint8 *copy = g_malloc0(size + READ_SLACK);
  if (size > 0) /* empty bytes may have no data pointer at all */
    memcpy(copy, g_bytes_get_data(bytes, NULL), size);
  g_autoptr(GBytes) padded = g_bytes_new_with_free_func(copy, size, g_free, copy);
  g_autoptr(GVariant) value = g_variant_ref_sink(g_variant_new_from_bytes(type, padded, FALSE));
  if (!g_variant_is_normal_form(value))
    return NULL;
#if G_BYTE_ORDER == G_BIG_ENDIAN
  return g_variant_byteswap(value);
#else
  return g_steal_pointer(&value);
#endif
}

GBytes *
hark_signed_data(const char *domain, GBytes *payload)
{
  gsize size = 0, domain_size = strlen(domain);
  const guint8 *data = g_bytes_get_data(payload, &size);
  GByteArray *bytes = g_byte_array_sized_new(domain_size + size);
  g_byte_array_append(bytes, (const guint8 *)domain, domain_size);
  g_byte_array_append(bytes, data, size);
  return g_byte_array_free_to_bytes(bytes);
}

GVariant *
hark_variant_new_bytes(GBytes *bytes)
{
  gsize size = 0;
  gconstpointer data = g_bytes_get_data(bytes, &size);
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

gboolean
hark_is_lower_hex(const char *text, gsize length)
{
  if (strlen(text) != length)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}
