/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-impl.h: the login client's state and operations, shared by login.c (the client,
 * logging in and out, certificates, renewal), login-requests.c (sending a request and
 * reading its answer), login-buddies.c (the buddy list), login-contacts.c,
 * login-messages.c (messages held for offline devices) and login-tunnel.c (the way
 * through the super node). */
#pragma once

#include "login.h"
#include "login-answer.h"

#include <libsoup/soup.h>

#define REQUEST_TIMEOUT_SECONDS 15
/* A connection to the login server unused this long is closed: before the server's own
 * 30 s (LOGIN_KEEP_IDLE_SECONDS), so that a request never goes out on one it is closing. */
#define IDLE_CONNECTION_SECONDS 15
/* A direct request whose TCP connection is not up after this long goes through the super
 * node instead when there is one (a firewall that drops SYNs would otherwise cost the
 * whole REQUEST_TIMEOUT_SECONDS). Nothing has reached the server then, so nothing is
 * sent twice. */
#define DIRECT_CONNECT_PATIENCE_MS 2000
#define CERTIFICATE_FILE "certificate.pem"
#define BUDDIES_FILE "buddies.json"
/* After a failed renewal: 5 s, doubling up to 5 min (never past the expiry). */
#define RETRY_FIRST_SECONDS 5
#define RETRY_MAX_SECONDS 300
/* The largest answer read: certificates and buddy lists are kilobytes. A server that sends
 * more is refused before it fills this process's memory. */
#define MAX_ANSWER_BYTES (4 * 1024 * 1024)
#define READ_CHUNK_BYTES 65536

typedef struct Op Op;

/* What to do with the answer to the request in flight: exactly one of answer (borrowed)
 * and error (taken) is set. Must end the op (hark_login_op_finish/hark_login_op_fail) or
 * send its next request. */
typedef void (*OpStep)(Op *op, JsonObject *answer, GError *error);

struct Op {
  HarkLoginClient *client; /* NULL once the client is freed: the late answer is dropped */
  HarkLoginDone done;
  gpointer done_data;
  OpStep step;
  SoupMessage *msg; /* the request in flight */
  GTlsCertificateFlags tls_errors; /* why the server's TLS certificate was refused */
  guint generation; /* client->generation when the op began */
  char *user; /* whom the request is about, for messages */
  char *password; /* a login's, until its nonce comes (wiped) */
  char *buddy_op; /* a buddy change's op, or a contact change's (login-contacts.c) */
  char *buddy_name;
  char *buddy_alias;
  JsonObject *contacts; /* a contacts answer, kept while the buddy list follows it */
  gboolean server_words; /* a contact request or block, a lookup, a search: refusals in
                          * the server's words (login-answer.h) */
  gboolean retried; /* a buddy change tries again once after a conflict */
  /* The request in flight, to send it again the other way (directly / through the SN). */
  char *method;
  char *path;
  GBytes *body;
  gboolean sign;
  gboolean other_way_tried;
  gboolean via_tunnel; /* the way the message in flight went (the client's may change) */
  GCancellable *attempt; /* of the message in flight, to give up on a direct one */
  guint patience_source; /* while a direct message has no connection yet */
  gboolean connected; /* the message in flight has a connection (new or pooled) */
  gint64 sent_at; /* monotonic, when a direct message began its connection; 0 while queued */
  gboolean gave_up; /* attempt was cancelled to go through the super node */
  GInputStream *stream; /* the answer's body, while it is read */
  GByteArray *answer; /* what was read of it */
};

struct _HarkLoginClient {
  HarkContext *ctx; /* the core's, for events and the main context */
  HarkIdentity *identity;
  char *url; /* as configured, for messages */
  char *base; /* the same without a trailing '/', to append paths to */
  char *ca_path;
  char *ca_pem; /* the pinned CA: every certificate of ours is checked against it */
  char *device;
  gint64 renew_margin;
  char *certificate_path;
  char *buddies_path;
  GTlsDatabase *trust; /* login-trust.c: the server's certificate only */
  SoupSession *session;
  GCancellable *cancellable;
  GHashTable *ops; /* Op* in flight */

  /* Logged in when user != NULL. */
  char *user;
  char *device_id;
  GBytes *certificate_der; /* for the Hark-Certificate header of signed requests */
  gint64 expires;
  JsonArray *buddies; /* [{"name", "alias"}]; NULL when not known */
  GHashTable *requests_seen; /* names of incoming contact requests already announced */
  char *requests_shown; /* the pending requests and blocks last announced (a key), or NULL */
  gint64 revision; /* of buddies; -1 when not known */
  guint generation; /* bumped by every login and logout: answers to requests made
                            * for an earlier one are not applied */
  guint renew_source;
  guint retry_seconds;
  HarkLoginChanged changed;
  gpointer changed_data;
  const HarkLoginBuddyHooks *buddy_hooks;
  gpointer buddy_hooks_data;
  /* The way through the overlay, when the server cannot be reached directly. */
  GProxyResolver *tunnel;
  gboolean (*tunnel_ready)(gpointer data);
  gpointer tunnel_data;
  gboolean via_tunnel; /* the last way that worked went through the tunnel */
};

/* login.c: small helpers and the parts of the client the others use. */
gint64 hark_login_now_seconds(HarkLoginClient *client);
void hark_login_wipe_free(char *secret);
char *hark_login_json_text(JsonObject *object);
GBytes *hark_login_json_body(JsonObject *object);
GError *hark_login_not_logged_in_error(void);
gboolean hark_login_save_private(const char *path, const char *text, GError **error);
JsonObject *hark_login_buddies_result(HarkLoginClient *client, const char *sync_error);
JsonObject *hark_login_credentials(const char *user, const char *password);

/* login-requests.c: operations, their requests and answers. */
Op *hark_login_op_new(HarkLoginClient *client, HarkLoginDone done, gpointer done_data);
/* Ends the op with its answer (takes result or error). */
void hark_login_op_finish(Op *op, JsonObject *result, GError *error);
void hark_login_op_fail(Op *op, GError *error);
/* Did the login this op was made for end (a logout, another login) while it waited? */
gboolean hark_login_op_is_stale(Op *op);
GError *hark_login_stale_error(void);
/* Sends (again) the request saved in op. */
void hark_login_op_transmit(Op *op);
/* Whether a request can be signed now: logged in, with a certificate valid for more than
 * a minute. A look-up is signed when it can be, so it counts against this account at the
 * server and not against an address that other users may share (a NAT). */
gboolean hark_login_can_sign(HarkLoginClient *client);
/* Sends one request of op; step gets the answer. Takes body (may be NULL). */
void hark_login_op_send(Op *op, const char *method, const char *path, JsonObject *body,
                        gboolean sign, OpStep step);

/* The server's answer as the op's result. */
void hark_login_op_answer(Op *op, JsonObject *answer, GError *error);

/* login-contacts.c: this device no longer knows which requests it has announced. */
void hark_login_forget_contacts(HarkLoginClient *client);
/* A name goes into a path only when it is a name (1 to 64 name characters): anything else
 * is no such user. */
gboolean hark_login_is_name(const char *text);

/* login-buddies.c: the buddy list, kept and asked for. */
gboolean hark_login_install_buddies(HarkLoginClient *client, gint64 revision, JsonArray *buddies,
                                    GError **error);
void hark_login_load_buddies(HarkLoginClient *client);
void hark_login_buddies_fetched(Op *op, JsonObject *answer, GError *error);
void hark_login_fetch_buddies(Op *op, OpStep step);
/* An op changing something about the user name (op_name: its kind); NULL once done has
 * been told NOT_LOGGED_IN. */
Op *hark_login_change_op_new(HarkLoginClient *client, const char *op_name, const char *name,
                             HarkLoginDone done, gpointer user_data);

/* login-tunnel.c: the way through the super node when the direct one is blocked. */
void hark_login_watch_direct_connection(Op *op);
gboolean hark_login_op_try_other_way(Op *op, const GError *error);
