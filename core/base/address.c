/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* address.c: which addresses and text from other nodes are taken (hark/address.h). */
#include "hark/address.h"

#include <gio/gio.h>
#include <string.h>

static const char *
ipv4_refusal(const guint8 *b, gboolean allow_loopback)
{
  if (b[0] == 0)
    return "unspecified"; /* 0.0.0.0/8: "this network" */
  if (b[0] == 127)
    return allow_loopback ? NULL : "loopback";
  if (b[0] == 169 && b[1] == 254)
    return "link-local";
  if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
    return "broadcast";
  if (b[0] >= 224 && b[0] <= 239)
    return "multicast";
  if (b[0] >= 240)
    return "reserved";
  return NULL;
}

const char *
hark_address_refusal_inet(GInetAddress *inet, gboolean allow_loopback)
{
  const guint8 *b = g_inet_address_to_bytes(inet);
  if (g_inet_address_get_family(inet) == G_SOCKET_FAMILY_IPV4)
    return ipv4_refusal(b, allow_loopback);
  static const guint8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  if (memcmp(b, mapped, sizeof mapped) == 0)
    return ipv4_refusal(b + 12, allow_loopback);
  if (g_inet_address_get_is_any(inet))
    return "unspecified";
  if (g_inet_address_get_is_loopback(inet))
    return allow_loopback ? NULL : "loopback";
  if (g_inet_address_get_is_multicast(inet))
    return "multicast";
  if (g_inet_address_get_is_link_local(inet))
    return "link-local";
  return NULL;
}

const char *
hark_address_refusal(const char *host, gboolean allow_loopback)
{
  if (host == NULL || !g_hostname_is_ip_address(host))
    return "not an IP address";
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(host);
  if (inet == NULL)
    return "not an IP address";
  return hark_address_refusal_inet(inet, allow_loopback);
}

gboolean
hark_address_is_routable(const char *host, gboolean allow_loopback)
{
  return hark_address_refusal(host, allow_loopback) == NULL;
}

char *
hark_address_source_key(const char *host)
{
  g_autoptr(GInetAddress) inet = host != NULL ? g_inet_address_new_from_string(host) : NULL;
  if (inet == NULL)
    return g_strdup(host != NULL ? host : "");
  const guint8 *b = g_inet_address_to_bytes(inet);
  if (g_inet_address_get_family(inet) == G_SOCKET_FAMILY_IPV4)
    return g_inet_address_to_string(inet);
  static const guint8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  if (memcmp(b, mapped, sizeof mapped) == 0)
    return g_strdup_printf("%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
  guint8 prefix[16] = { 0 };
  memcpy(prefix, b, 8);
  g_autoptr(GInetAddress) net = g_inet_address_new_from_bytes(prefix, G_SOCKET_FAMILY_IPV6);
  g_autofree char *text = g_inet_address_to_string(net);
  return g_strdup_printf("%s/64", text);
}

static gboolean
is_bidi_format(gunichar c)
{
  return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

static gboolean
is_control(gunichar c)
{
  return c < 0x20 || (c >= 0x7f && c < 0xa0);
}

char *
hark_text_escape(const char *text, gssize length, gsize max_chars)
{
  if (text == NULL)
    return g_strdup("(null)");
  gsize size = length < 0 ? strlen(text) : (gsize)length;
  GString *out = g_string_sized_new(MIN(size, max_chars) + 8);
  const char *p = text, *end = text + size;
  gsize chars = 0;
  while (p < end && chars < max_chars) {
    gunichar c = g_utf8_get_char_validated(p, end - p);
    if (c == (gunichar)-1 || c == (gunichar)-2) {
      g_string_append_printf(out, "\\x%02x", (guint8)*p);
      p++;
    } else {
      const char *next = g_utf8_next_char(p);
      if (c == '\\')
        g_string_append(out, "\\\\");
      else if (c < 0x80 && is_control(c))
        g_string_append_printf(out, "\\x%02x", c);
      else if (is_control(c) || is_bidi_format(c))
        g_string_append_printf(out, "\\u{%04x}", c);
      else
        g_string_append_len(out, p, next - p);
      p = next;
    }
    chars++;
  }
  if (p < end)
    g_string_append(out, "...");
  return g_string_free(out, FALSE);
}

gboolean
hark_text_is_clean(const char *text)
{
  if (text == NULL || !g_utf8_validate(text, -1, NULL))
    return FALSE;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (is_control(c) || is_bidi_format(c))
      return FALSE;
  }
  return TRUE;
}
