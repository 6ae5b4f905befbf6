/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-turn-parse.c: TURN credentials as coturn's REST API makes them, and the check a
 * client makes of the ones its SN hands it.
 *
 * coturn with use-auth-secret takes any username "EXPIRY:NAME" whose password is
 * base64(HMAC-SHA1(static-auth-secret, username)) until EXPIRY (unix s): the SN that
 * knows the secret mints them, the TURN server needs no user list, and the secret never
 * leaves the SN. The client's check is all it can do against a hostile SN: take nothing
 * it could not use or that could hurt it later (an address no server may be at, huge
 * strings, control characters it would log, an expiry it would cache for ever). */
#include "overlay-turn-parse.h"

#include "hark/address.h"
#include "relay-auth.h"

#include <string.h>

void
hark_turn_credentials_free(HarkTurnCredentials *credentials)
{
  if (credentials == NULL)
    return;
  g_free(credentials->host);
  g_free(credentials->username);
  if (credentials->password != NULL) {
    explicit_bzero(credentials->password, strlen(credentials->password));
    g_free(credentials->password);
  }
  g_free(credentials);
}

HarkTurnCredentials *
hark_turn_credentials_copy(const HarkTurnCredentials *credentials)
{
  HarkTurnCredentials *copy = g_new0(HarkTurnCredentials, 1);
  copy->host = g_strdup(credentials->host);
  copy->port = credentials->port;
  copy->username = g_strdup(credentials->username);
  copy->password = g_strdup(credentials->password);
  copy->expires_at = credentials->expires_at;
  copy->tcp = credentials->tcp;
  copy->web_port = credentials->web_port;
  return copy;
}

HarkTurnCredentials *
hark_overlay_turn_make(const char *host, guint16 port, gboolean tcp, GBytes *secret,
                       const char *user, gint64 expires_at)
{
  HarkTurnCredentials *credentials = g_new0(HarkTurnCredentials, 1);
  credentials->host = g_strdup(host);
  credentials->port = port;
  credentials->tcp = tcp;
  credentials->expires_at = expires_at;
  credentials->username = g_strdup_printf("%" G_GINT64_FORMAT ":%s", expires_at, user);
  credentials->password = hark_relay_password(secret, credentials->username);
  return credentials;
}

GVariant *
hark_overlay_turn_to_variant(const HarkTurnCredentials *credentials)
{
  return g_variant_new("(sqssxb)", credentials->host, credentials->port, credentials->username,
                       credentials->password, credentials->expires_at, credentials->tcp);
}

static gboolean
check_text(const char *what, const char *text, GError **error)
{
  gsize length = strlen(text);
  if (length == 0 || length > HARK_TURN_TEXT_MAX) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the super node's TURN %s is %" G_GSIZE_FORMAT " bytes long (1-%d taken)", what,
                length, HARK_TURN_TEXT_MAX);
    return FALSE;
  }
  if (!hark_text_is_clean(text)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the super node's TURN %s holds control or formatting characters", what);
    return FALSE;
  }
  return TRUE;
}

HarkTurnCredentials *
hark_overlay_turn_parse(GVariant *body, gint64 now, gboolean allow_loopback, GError **error)
{
  g_return_val_if_fail(body != NULL, NULL);
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE("(sqssxb)"))) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the super node's TURN credentials have type %s, not (sqssxb)",
                g_variant_get_type_string(body));
    return NULL;
  }
  const char *host, *username, *password;
  guint16 port;
  gint64 expires_at;
  gboolean tcp;
  g_variant_get(body, "(&sq&s&sxb)", &host, &port, &username, &password, &expires_at, &tcp);
  const char *refusal = hark_address_refusal(host, allow_loopback);
  if (refusal != NULL) {
    g_autofree char *shown = hark_text_escape(host, -1, 64);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the super node's TURN server \"%s\" is no address to use: %s", shown, refusal);
    return NULL;
  }
  if (port == 0) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "the super node's TURN server has port 0");
    return NULL;
  }
  if (!check_text("username", username, error) || !check_text("password", password, error))
    return NULL;
  if (expires_at <= now || expires_at - now > HARK_TURN_LIFETIME_MAX) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the super node's TURN credentials expire at %" G_GINT64_FORMAT
                ", %" G_GINT64_FORMAT " s from now (taken: 1 to %d s from now)",
                expires_at, expires_at - now, HARK_TURN_LIFETIME_MAX);
    return NULL;
  }
  HarkTurnCredentials *credentials = g_new0(HarkTurnCredentials, 1);
  credentials->host = g_strdup(host);
  credentials->port = port;
  credentials->username = g_strdup(username);
  credentials->password = g_strdup(password);
  credentials->expires_at = expires_at;
  credentials->tcp = tcp;
  return credentials;
}
