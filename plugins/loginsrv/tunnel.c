/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tunnel.c: the preamble an SN sends before the TLS bytes of a client it tunnels to the
 * login server (docs/protocol.md, "Overlay → Login tunnel"), so the limits follow the
 * client and not the SN whose address every tunnelled login shares.
 *
 *   HARK-TUNNEL-1 <client address> <unix seconds> <nonce: 32 hex> <certificate: base64 DER>
 *   <signature: base64>\r\n      (one line, fields separated by one space)
 *
 * The signature is the SN's device key over "HARK-TUNNEL-1\n<client>\n<seconds>\n<nonce>";
 * the certificate must be issued by this server's CA and valid now, the time within
 * LOGIN_MAX_SKEW of the server's clock, and the nonce not seen before in that time (a
 * preamble read off the wire cannot be replayed: replay.c, the cache of every nonce). Only the statement is believed, not
 * the sender's own address: the limits key on (the TCP peer, the stated client), and
 * the TCP peer has its own, larger, budget. */
#include "loginsrv.h"

#include <string.h>

#define NONCE_HEX 32
#define MAX_CERTIFICATE_BYTES 8192

static gboolean
fail(GError **error, const char *message)
{
  g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, message);
  return FALSE;
}

static gboolean
is_hex(const char *text, gsize length)
{
  if (strlen(text) != length)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isxdigit(*p) || g_ascii_isupper(*p))
      return FALSE;
  return TRUE;
}

static gboolean
parse_seconds(const char *text, gint64 *seconds)
{
  guint64 value = 0;
  if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXINT64, &value, NULL))
    return FALSE;
  *seconds = (gint64)value;
  return TRUE;
}

/* The signature's fields are checked for form; then the certificate, time and key; the
 * nonce is used up last, once everything else holds, so that nobody but the SN can fill
 * the cache with its keys. */
char *
login_tunnel_preamble_verify(const char *ca_pem, LoginReplayCache *replays, const char *line,
                             gint64 now, GError **error)
{
  if (!g_str_has_suffix(line, "\r\n"))
    return fail(error, "the preamble does not end in CRLF"), NULL;
  g_autofree char *text = g_strndup(line, strlen(line) - 2);
  g_auto(GStrv) fields = g_strsplit(text, " ", 0);
  if (g_strv_length(fields) != 6 || strcmp(fields[0], LOGIN_TUNNEL_MAGIC) != 0)
    return fail(error, "the preamble is not 6 fields starting with " LOGIN_TUNNEL_MAGIC), NULL;
  const char *client = fields[1], *nonce = fields[3];
  gint64 date = 0;
  if (!g_hostname_is_ip_address(client) || strlen(client) > 45)
    return fail(error, "the stated client is not an IP address"), NULL;
  if (!parse_seconds(fields[2], &date))
    return fail(error, "the preamble's time is not unix seconds"), NULL;
  if (!is_hex(nonce, NONCE_HEX))
    return fail(error, "the nonce is not 32 lower-case hex digits"), NULL;
  g_autoptr(GBytes) der = login_base64_decode_strict(fields[4], MAX_CERTIFICATE_BYTES);
  g_autoptr(GBytes) signature = login_base64_decode_strict(fields[5], HARK_IDENTITY_SIGNATURE_SIZE);
  if (der == NULL || signature == NULL)
    return fail(error, "the certificate or signature is not canonical base64"), NULL;
  if (date < now - LOGIN_MAX_SKEW || date > now + LOGIN_MAX_SKEW)
    return fail(error, "the preamble's time is more than 300 s from the server's clock"), NULL;
  g_autoptr(HarkDeviceCertificate) device = hark_certificate_verify(ca_pem, der, now, error);
  if (device == NULL) {
    g_prefix_error(error, "the SN's certificate is refused: ");
    return NULL;
  }
  g_autofree char *signed_text =
    g_strdup_printf(LOGIN_TUNNEL_MAGIC "\n%s\n%s\n%s", client, fields[2], nonce);
  g_autoptr(GBytes) data = g_bytes_new(signed_text, strlen(signed_text));
  if (!hark_identity_verify(device->public_key, data, signature, error)) {
    g_prefix_error(error, "the preamble's signature is refused: ");
    return NULL;
  }
  /* Kept for as long as the time would pass the skew check. */
  g_autofree char *key = g_strdup_printf("tunnel:%s:%s", device->device_id, nonce);
  switch (login_replay_note(replays, key, date + LOGIN_MAX_SKEW, now)) {
  case LOGIN_REPLAY_SEEN:
    return fail(error, "the preamble's nonce was used before (a replay)"), NULL;
  case LOGIN_REPLAY_FULL:
    return fail(error, "too many tunnels at once; try again later"), NULL;
  default:
    return g_strdup(client);
  }
}

char *
login_tunnel_preamble_check(LoginServer *s, const char *line, GError **error)
{
  return login_tunnel_preamble_verify(s->ca_pem, s->replays, line, login_now_seconds(s), error);
}
