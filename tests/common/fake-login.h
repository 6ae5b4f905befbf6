/* fake-login.h: a small HTTPS login server in the test's process (libsoup 3), whose
 * certificate and answers the test chooses, to test the node's login client
 * (core/login.c) against what the real server never does (docs/testing.md, "Fakes").
 *
 * It makes its own CA (and a second one nobody pins) in a temporary directory, and
 * presents one of several TLS certificates. Unless scripted, it answers like the real
 * server enough for a login: GET /v1/nonce, POST /v1/login (a device certificate for the
 * body's public_key, from its CA) and POST /v1/renew (a new certificate for the key of
 * the Hark-Certificate header); nothing is checked (no password, proof or signature),
 * anything else is 404 not-found. A script replaces the answer of one path: a status and
 * a body, a closed connection, no answer at all, a truncated body or a huge one.
 *
 * It runs on the thread-default main context of the caller of hark_fake_login_new(). */
#pragma once

#include <gio/gio.h>
#include <hark/certificate.h>

G_BEGIN_DECLS

typedef enum {
  HARK_FAKE_TLS_SERVER, /* a proper server certificate of its CA for 127.0.0.1 */
  HARK_FAKE_TLS_OTHER_CA, /* the same from the CA nobody pins */
  HARK_FAKE_TLS_DEVICE, /* a device certificate of its CA (user "loginhost") */
  HARK_FAKE_TLS_WRONG_NAME, /* a server certificate of its CA for login.example only */
  HARK_FAKE_TLS_EXPIRED, /* a server certificate of its CA for 127.0.0.1, expired */
} HarkFakeTls;

typedef enum {
  HARK_FAKE_REPLY, /* status and body (application/json) */
  HARK_FAKE_CLOSE, /* the connection is closed without an answer */
  HARK_FAKE_HANG, /* no answer until the fake is freed */
  HARK_FAKE_TRUNCATED, /* status 200, a Content-Length larger than the body sent, closed */
  HARK_FAKE_HUGE, /* status 200 and a JSON object of `size` bytes */
} HarkFakeAnswerKind;

typedef struct {
  HarkFakeAnswerKind kind;
  guint status; /* REPLY */
  const char *body; /* REPLY, TRUNCATED (what is sent of it); copied */
  gsize size; /* HUGE */
} HarkFakeAnswer;

typedef struct _HarkFakeLogin HarkFakeLogin;

HarkFakeLogin *hark_fake_login_new(HarkFakeTls tls, GError **error);
/* Stops serving (hung requests are dropped) and removes its directory. */
void hark_fake_login_free(HarkFakeLogin *fake);

/* "https://127.0.0.1:PORT/" */
const char *hark_fake_login_url(HarkFakeLogin *fake);
/* The CA a client pins (login.ca), and the CA itself, to issue device certificates. */
const char *hark_fake_login_ca_path(HarkFakeLogin *fake);
HarkCa *hark_fake_login_ca(HarkFakeLogin *fake);
/* A directory of its own the test may use (removed with the fake). */
const char *hark_fake_login_dir(HarkFakeLogin *fake);

/* From now on, requests for path (e.g. "/v1/login", any method) get answer; NULL goes
 * back to the default answer. */
void hark_fake_login_script(HarkFakeLogin *fake, const char *path, const HarkFakeAnswer *answer);
/* Lifetime of the certificates the default login and renew answers issue (default 1 h). */
void hark_fake_login_set_lifetime(HarkFakeLogin *fake, gint64 seconds);
/* How many requests for path reached the HTTP layer (a refused TLS handshake sends none). */
guint hark_fake_login_requests(HarkFakeLogin *fake, const char *path);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkFakeLogin, hark_fake_login_free)

G_END_DECLS
