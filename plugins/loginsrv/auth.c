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

static gboolean
refuse(LoginRequest *req, const char *message)
{
  login_respond_error(req, "unauthenticated", "%s", message);
  return FALSE;
}

gboolean
login_authenticate(LoginRequest *req)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(req->msg);
  const char *nonce = soup_message_headers_get_one(headers, "Hark-Nonce");
  gint64 now = login_now_seconds(req->server);
  gint64 date = 0;
  g_autofree char *message = NULL;
  g_autoptr(HarkDeviceCertificate) device = login_signed_headers_check(
    req->server->ca_pem, soup_message_headers_get_one(headers, "Hark-Certificate"),
    soup_message_headers_get_one(headers, "Hark-Date"), nonce,
    soup_message_headers_get_one(headers, "Hark-Signature"),
    soup_server_message_get_method(req->msg), req->path, req->body, now, &date, &message);
  if (device == NULL)
    return refuse(req, message);
  /* Only now, signed: nobody else can fill the cache with keys of this device. Kept for as
   * long as the date would pass the skew check. */
  g_autofree char *key = g_strdup_printf("request:%s:%s", device->device_id, nonce);
  switch (login_replay_note(req->server->replays, key, date + LOGIN_MAX_SKEW, now)) {
  case LOGIN_REPLAY_SEEN:
    req->server->refused_replays++;
    g_message("refused a replayed signed request from %s for '%s' (%" G_GUINT64_FORMAT
              " replays so far)",
              req->address, device->user, req->server->refused_replays);
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
