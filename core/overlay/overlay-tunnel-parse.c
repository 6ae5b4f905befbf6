/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-tunnel-parse.c: the login tunnel's parsing (overlay-tunnel-parse.h): the
 * SOCKS5 greeting and CONNECT request that any local process may send to the loopback
 * endpoint (RFC 1928, only what GIO's SOCKS5 client sends: no authentication, CONNECT,
 * IPv4, IPv6 or a name), and the SN's check of a TUNNEL_OPEN's destination. */
#include "overlay-tunnel-parse.h"

#include <gio/gio.h>
#include <string.h>

/* How long the CONNECT request in the buffer is; 0 when incomplete; -1 when invalid. */
static gssize
request_length(const guint8 *b, gsize have)
{
  if (have < 5)
    return 0;
  if (b[0] != 5 || b[1] != 1 || b[2] != 0)
    return -1;
  switch (b[3]) {
  case 1:
    return have >= 10 ? 10 : 0;
  case 4:
    return have >= 22 ? 22 : 0;
  case 3: /* a name: not empty, and no NUL, which would cut it short */
    if (b[4] == 0 || memchr(b + 5, 0, MIN(b[4], have - 5)) != NULL)
      return -1;
    return have >= 7u + b[4] ? 7 + b[4] : 0;
  default:
    return -1;
  }
}

static char *
request_host(const guint8 *b)
{
  if (b[3] == 3)
    return g_strndup((const char *)b + 5, b[4]);
  g_autoptr(GInetAddress) address =
    g_inet_address_new_from_bytes(b + 4, b[3] == 1 ? G_SOCKET_FAMILY_IPV4 : G_SOCKET_FAMILY_IPV6);
  return g_inet_address_to_string(address);
}

HarkSocksStep
hark_overlay_socks_step(HarkSocksState *state, char **host, guint16 *port)
{
  const guint8 *b = state->request;
  if (!state->greeted) {
    if (state->have < 2 || state->have < 2u + b[1])
      return HARK_SOCKS_MORE;
    if (b[0] != 5 || memchr(b + 2, 0, b[1]) == NULL)
      return HARK_SOCKS_NO_METHOD;
    gsize used = 2u + b[1];
    memmove(state->request, b + used, state->have - used);
    state->have -= used;
    state->greeted = TRUE;
  }
  gssize length = request_length(b, state->have);
  if (length < 0 || (length == 0 && state->have == sizeof state->request))
    return HARK_SOCKS_UNSUPPORTED;
  if (length == 0)
    return HARK_SOCKS_MORE;
  *host = request_host(b);
  *port = (guint16)(b[length - 2] << 8 | b[length - 1]);
  return HARK_SOCKS_CONNECT;
}

gboolean
hark_overlay_tunnel_allowed(const char *login_url, const char *host, guint16 port)
{
  g_autoptr(GUri) uri = login_url != NULL ? g_uri_parse(login_url, G_URI_FLAGS_NONE, NULL) : NULL;
  /* "file:///..." has an empty host, which is nobody's. */
  if (uri == NULL || g_uri_get_host(uri) == NULL || *g_uri_get_host(uri) == '\0')
    return FALSE;
  int own_port = g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 443;
  return own_port == port && g_ascii_strcasecmp(g_uri_get_host(uri), host) == 0;
}
