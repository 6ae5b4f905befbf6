/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cidr.c: address ranges, parsed strictly and matched bit by bit (cidr.h). */
#include "cidr.h"

#include <string.h>

static gboolean
prefix_matches(const guint8 *a, const guint8 *b, guint bits)
{
  guint whole = bits / 8, rest = bits % 8;
  if (memcmp(a, b, whole) != 0)
    return FALSE;
  if (rest == 0)
    return TRUE;
  guint8 mask = (guint8)(0xFF << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

gboolean
hark_cidr_parse(const char *text, HarkCidr *out)
{
  memset(out, 0, sizeof *out);
  const char *slash = strchr(text, '/');
  g_autofree char *host = slash != NULL ? g_strndup(text, (gsize)(slash - text)) : g_strdup(text);
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string(host);
  if (address == NULL)
    return FALSE;
  out->family = g_inet_address_get_family(address);
  gsize size = g_inet_address_get_native_size(address);
  memcpy(out->bytes, g_inet_address_to_bytes(address), size);
  out->prefix = (guint)size * 8;
  if (slash != NULL) {
    char *end = NULL;
    if (!g_ascii_isdigit(slash[1]))
      return FALSE;
    guint64 bits = g_ascii_strtoull(slash + 1, &end, 10);
    if (*end != '\0' || bits > size * 8)
      return FALSE;
    out->prefix = (guint)bits;
  }
  /* Every bit past the prefix must be zero. */
  for (guint bit = out->prefix; bit < size * 8; bit++)
    if (out->bytes[bit / 8] & (0x80 >> (bit % 8)))
      return FALSE;
  return TRUE;
}

gboolean
hark_cidr_contains(const HarkCidr *cidr, int family, const guint8 *bytes)
{
  return cidr->family == family && prefix_matches(cidr->bytes, bytes, cidr->prefix);
}
