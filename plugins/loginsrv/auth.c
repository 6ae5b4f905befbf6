/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* auth.c: signed requests (docs/protocol.md, "Signed requests"): a logged-in device
 * proves itself with its certificate and a signature over the request, so any
 * login-server process sharing the store can check it without a session. Each request
 * carries a nonce of its own, which this process then refuses to see again (replay.c).
 *
 * This runs on the main context: a certificate check and an Ed25519 verification take
 * a fraction of a millisecond and touch no store. Whether the account still exists is
 * checked by each job, in the store. */
#include "loginsrv.h"

#include <string.h>

/* A DER certificate is well under this; the header is refused beyond it. */
#define MAX_CERTIFICATE_BYTES 8192

static gboolean
refuse(LoginRequest *req, const char *message)
{
  login_respond_error(req, "unauthenticated", "%s", message);
  return FALSE;
}

static gboolean
parse_date(const char *text, gint64 *date)
{
  if (text == NULL || *text == '\0' || strlen(text) > 18 ||
      strspn(text, "0123456789") != strlen(text))
    return FALSE;
  *date = g_ascii_strtoll(text, NULL, 10);
  return TRUE;
}

gboolean
login_authenticate(LoginRequest *req)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(req->msg);
  const char *certificate = soup_message_headers_get_one(headers, "Hark-Certificate");
  const char *date_text = soup_message_headers_get_one(headers, "Hark-Date");
  const char *nonce = soup_message_headers_get_one(headers, "Hark-Nonce");
  const char *signature = soup_message_headers_get_one(headers, "Hark-Signature");
  if (certificate == NULL || date_text == NULL || nonce == NULL || signature == NULL)
    return refuse(req, "a signed request needs the headers Hark-Certificate, Hark-Date, "
                       "Hark-Nonce and Hark-Signature");
  g_autoptr(GBytes) der = login_base64_decode_strict(certificate, MAX_CERTIFICATE_BYTES);
  gint64 date = 0;
  if (der == NULL)
    return refuse(req, "Hark-Certificate is not the base64 of a certificate");
  if (!parse_date(date_text, &date))
    return refuse(req, "Hark-Date is not a time in unix seconds");

  gint64 now = login_now_seconds(req->server);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) device =
    hark_certificate_verify(req->server->ca_pem, der, now, &error);
  if (device == NULL) {
    g_autofree char *message = g_strdup_printf("the certificate is refused: %s", error->message);
    return refuse(req, message);
  }
  const char *method = soup_server_message_get_method(req->msg);
  if (!hark_request_verify(device->public_key, method, req->path, date, nonce, req->body,
                           signature, now, LOGIN_MAX_SKEW, &error))
    return refuse(req, error->message);
  /* Only now, signed: nobody else can fill the cache with keys of this device. Kept for as
   * long as the date would pass the skew check. */
  g_autofree char *key = g_strdup_printf("request:%s:%s", device->device_id, nonce);
  switch (login_replay_note(req->server->replays, key, date + LOGIN_MAX_SKEW, now)) {
  case LOGIN_REPLAY_SEEN:
    req->server->refused_replays++;
    g_message("refused a replayed signed request from %s for '%s' (%" G_GUINT64_FORMAT
              " replays so far)", req->address, device->user, req->server->refused_replays);
    return refuse(req, "a replay: this signed request (its Hark-Nonce) was accepted before");
  case LOGIN_REPLAY_FULL:
    login_respond_error(req, "internal", "too many signed requests at once; try again later");
    return FALSE;
  default:
    break;
  }
  req->device = g_steal_pointer(&device);
  return TRUE;
}
