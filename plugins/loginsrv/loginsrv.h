/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* loginsrv.h: what the files of the loginsrv plugin share (never installed).
 *
 *   loginsrv.c  the plugin: settings, the store, the CA, start and stop
 *   tls.c       the listening socket and TLS 1.3 handshakes, handed to libsoup
 *   http.c      requests: routing, bodies, answers, jobs on worker threads, the log
 *   validate.c  strict JSON bodies, the name rules, the signed-request headers
 *   accounts.c  register, login, renew, password, delete, users, version
 *   buddies.c   the buddy list
 *   contacts.c  contact requests and blocks
 *   devices.c   the device list, revocation, and who may sign (account id, device)
 *   messages.c  messages held for offline devices, and users' device certificates
 *   envelope.c  the shape of a message envelope (what the server reads of it)
 *   auth.c      signed requests (hark/certificate.h)
 *   passwords.c argon2id hashes
 *   ratelimit.c failures per source address and the lock-outs per account and source
 *   tunnel.c    the preamble an SN sends before a tunnelled client's TLS bytes
 *   replay.c    nonces already used (signed requests, logins), against replays
 *
 * Threads: everything runs on the node's main context except a job's work function,
 * which runs on a GTask worker thread and sees only its job, the (thread-safe) store,
 * the (read-only) CA and the immutable settings. */
#pragma once

#include <hark/hark.h>
#include <hark/certificate.h>
#include <hark/store.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* The clock skew allowed for signed requests, and given to new certificates' start. */
#define LOGIN_MAX_SKEW 300
/* How long a login nonce (GET /v1/nonce) may be used, once, in seconds. */
#define LOGIN_NONCE_LIFETIME 120
#define LOGIN_USER_NAME_MIN 3
#define LOGIN_USER_NAME_MAX 32
#define LOGIN_PASSWORD_MIN 8
#define LOGIN_PASSWORD_MAX 1024

/* Every time the server decides by (lock-outs, rate windows, nonces, replays, certificate
 * times) is read from the node's clock, which a test can move (hark/clock.h); safe from
 * the worker threads too. */
#define login_now_seconds(server) hark_clock_now_seconds(hark_context_get_clock((server)->ctx))
#define login_now_monotonic(server) hark_clock_now_monotonic(hark_context_get_clock((server)->ctx))
#define LOGIN_LABEL_MAX 64 /* device names and aliases, in characters */
#define LOGIN_DEVICE_ID_LENGTH 64 /* a key fingerprint: lower-case hex SHA-256 */
#define LOGIN_USERS_LIMIT_MAX 100
#define LOGIN_USERS_LIMIT_DEFAULT 20
/* A user whose device logged in or renewed within this is "recently seen" (GET
 * /v1/users/NAME); the overlay's definite answer for a lookup uses the same window. */
#define LOGIN_RECENT_SECONDS (72 * 3600)

/* Object data on the remote GSocketAddress given to libsoup for a tunnelled connection:
 * the client's address as its SN stated it (tunnel.c, http.c). */
#define LOGIN_CLIENT_DATA "hark-login-client"

typedef struct _LoginAddressLimiter LoginAddressLimiter;
typedef struct _LoginLockTable LoginLockTable;
typedef struct _LoginListener LoginListener;

/* The first word of an SN's tunnel preamble (tunnel.c). */
#define LOGIN_TUNNEL_MAGIC "HARK-TUNNEL-1"
/* The longest preamble line accepted (a certificate is well under 2 KiB of base64). */
#define LOGIN_TUNNEL_PREAMBLE_MAX 8192
typedef struct _LoginReplayCache LoginReplayCache;

typedef struct {
  HarkContext *ctx;

  /* settings, fixed after init */
  char *listen;
  guint16 port;
  char *store_name;
  GVariant *store_options; /* a{sv} */
  char **hosts;
  gint64 certificate_lifetime;
  gint64 first_lock; /* seconds an account is locked at the 5th failure */
  guint relay_failures_per_minute; /* failures through one SN's tunnels (all its clients) */
  guint lookups_per_minute; /* unsigned GET /v1/users and /v1/users/NAME per source */
  guint user_lookups_per_minute; /* signed look-ups (and device lists) per account */
  guint signed_lookups_per_minute; /* signed look-ups per source, all accounts together */
  guint contact_requests_per_minute; /* contact requests sent, per account */
  guint max_pending_requests; /* outgoing requests waiting for an answer, per account */
  gint64 request_again_after; /* seconds before a declined request may be made again */
  guint handshake_timeout; /* seconds for the preamble and the TLS handshake */
  guint max_handshakes; /* in progress, in all */
  guint max_handshakes_per_source; /* in progress, from one address */
  char *latest_version;
  char *download_url;
  guint32 hash_memory_kib;
  guint32 hash_iterations;
  guint registrations_per_minute;
  gsize max_body;
  gint64 hold_seconds; /* messages.hold_days, in seconds */
  HarkStoreMessageLimits hold_limits; /* messages.* quotas */
  guint holds_per_minute; /* messages held, per account */

  /* while started */
  const HarkStoreInterface *store;
  gpointer store_handle;
  HarkCa *ca;
  const char *ca_pem; /* owned by ca */
  LoginListener *listener;
  SoupServer *soup;
  LoginAddressLimiter *addresses;
  LoginAddressLimiter *registrations; /* registrations per source address: each costs a hash */
  LoginAddressLimiter *relays; /* failures per SN address, over all its tunnelled clients */
  LoginAddressLimiter *lookups; /* unsigned user look-ups per source */
  LoginAddressLimiter *user_lookups; /* signed look-ups per account id */
  LoginAddressLimiter *signed_lookups; /* signed look-ups per source */
  LoginAddressLimiter *contact_requests; /* contact requests per account (canonical name) */
  LoginAddressLimiter *holds; /* messages held per account (canonical name) */
  gint last_purge; /* messages.c: when expired messages went last (minutes, atomic) */
  LoginLockTable *pair_locks; /* "account source": failures of one source for one account */
  LoginLockTable *account_locks; /* account: failures from everywhere (known or not) */
  char *dummy_hash; /* what an unknown user's password is checked against (same cost) */
  LoginReplayCache *replays; /* nonces used: signed requests, logins, tunnels */
  guint64 refused_proofs; /* logins refused bad-proof (replays included) */
  guint64 refused_replays; /* signed requests and logins refused as replays */
  guint jobs; /* worker jobs not yet completed on the main context */
  GHashTable *kept; /* LoginConn*: idle connections kept for a next request (keepalive.c) */
  guint64 connections_accepted; /* TLS connections handed to libsoup */
  guint64 connections_kept; /* answers after which the connection was kept */
  gboolean stopping;
} LoginServer;

/* A field of a JSON request body (validate.c). */
typedef enum {
  LOGIN_FIELD_STRING,
  LOGIN_FIELD_INT,
  LOGIN_FIELD_BOOL,
  LOGIN_FIELD_STRINGS, /* an array of strings (no deeper nesting) */
} LoginFieldType;

typedef struct {
  const char *name;
  LoginFieldType type;
  gboolean required;
} LoginField;

/* ---- keepalive.c ---- */

/* A connection is closed after this long without a request (the node's login client lets
 * its own go after LOGIN_KEEP_IDLE_SECONDS / 2, so that it is the one to close). */
#define LOGIN_KEEP_IDLE_SECONDS 30
#define LOGIN_KEEP_MAX_REQUESTS 100 /* on one connection */
#define LOGIN_KEEP_MAX_IDLE 256 /* idle connections kept, in all */
#define LOGIN_KEEP_MAX_IDLE_PER_SOURCE 4 /* from one source (tunnelled: one SN's client) */

typedef struct _LoginConn LoginConn;

void login_keepalive_start(LoginServer *s);
/* Forgets the idle connections (soup_server_disconnect closes them with the others). */
void login_keepalive_stop(LoginServer *s);
/* A TLS connection tls.c hands to libsoup: what it needs to hand it over again. */
void login_keepalive_track(LoginServer *s, GSocketAddress *local, GSocketAddress *remote,
                           const char *source);
/* A request's headers arrived (its connection is not idle any more). */
void login_keepalive_request_started(SoupServerMessage *msg);
/* The request's body was read in full: its connection may carry the next one. */
void login_keepalive_offer(SoupServerMessage *msg);
/* The answer is being set, its headers not yet written: whether the connection is kept
 * is decided now, and an answer after which it is closed says "Connection: close". */
void login_keepalive_answer(LoginServer *s, SoupServerMessage *msg);

/* ---- http.c ---- */

/* One request while it is being answered. */
typedef struct {
  LoginServer *server;
  SoupServerMessage *msg;
  char *address; /* the IP address of the TCP peer (an SN for a tunnelled login) */
  char *client; /* tunnelled: the client's address, as its SN stated it; else NULL */
  char *source; /* the key of the limits: address, or "SN>client" when tunnelled */
  char *account; /* password checks: the account's canonical name */
  char *path; /* with "?query" when there is one, as signed */
  gint64 started; /* monotonic µs */
  GBytes *body; /* the request body (may be empty) */
  char *tail; /* the segment after a prefix route's path (the NAME of users/NAME) */
  JsonObject *json; /* the parsed body, for routes that take one */
  HarkDeviceCertificate *device; /* signed routes: who signed */
} LoginRequest;

/* A job's answer, made on the worker thread and sent on the main context. */
typedef struct {
  guint status;
  JsonObject *body; /* success */
  const char *code; /* error code (static), or NULL */
  char *message; /* error message */
  gint64 retry_after; /* seconds, for locked-out */
  gboolean failed_attempt; /* a failed password check: counts against the address */
  gboolean password_ok; /* a password matched: the account's failures are forgotten */
} LoginReply;

typedef void (*LoginWorkFunc)(LoginServer *server, gpointer job, LoginReply *reply);

void login_http_setup(LoginServer *s);
/* Answers at once with an error (code from the table in docs/protocol.md). */
void login_respond_error(LoginRequest *req, const char *code, const char *format, ...)
  G_GNUC_PRINTF(3, 4);
void login_respond_json(LoginRequest *req, guint status, JsonObject *body);
/* Parses the body into req->json with exactly these fields; FALSE when it answered
 * bad-request instead. */
gboolean login_request_parse(LoginRequest *req, const LoginField *fields);
/* The same for a body whose required "name" member names a user: the name when it follows
 * the name rules; NULL when it answered bad-request or bad-name instead. */
const char *login_request_parse_named(LoginRequest *req, const LoginField *fields);
/* Before a password check of account (canonical name): TRUE when it answered locked-out
 * because the source used up its failures, or this source failed for this account too
 * often, or the account is slowed down and this source has failed for it before. Sets
 * req->account, so the job's outcome is counted. */
gboolean login_request_refuse_if_limited(LoginRequest *req, const char *account);
/* The same for user look-ups (every look-up counts): a signed one (req->device) against
 * its account (user_lookups_per_minute) and its source's signed_lookups_per_minute; any
 * other against its source's lookups_per_minute. */
gboolean login_request_refuse_if_looking_up_too_much(LoginRequest *req);
/* The same for messages held, per account (canonical name; every hold counts). */
gboolean login_request_refuse_if_holding_too_much(LoginRequest *req, const char *account);
/* The same for contact requests, per account (canonical name; every request counts). */
gboolean login_request_refuse_if_requesting_too_much(LoginRequest *req, const char *account);
/* The same for registrations: refused while the address used up its registrations. */
gboolean login_request_refuse_if_registering_too_much(LoginRequest *req);
/* Runs work(job) on a worker thread with the message paused, then answers with the reply
 * and frees job with job_free. Takes req. */
void login_request_run(LoginRequest *req, LoginWorkFunc work, gpointer job,
                       GDestroyNotify job_free);
/* Waits (dispatching the main context) until every job has completed. */
void login_http_drain(LoginServer *s);

void login_reply_ok(LoginReply *reply, guint status, JsonObject *body);
void login_reply_error(LoginReply *reply, const char *code, const char *format, ...)
  G_GNUC_PRINTF(3, 4);
/* A store failure: internal, with the details in the server log only. */
void login_reply_store_failure(LoginReply *reply, const char *what, const GError *error);

/* ---- validate.c ---- */

/* A JSON object with exactly these fields (name NULL ends the list); NULL and a
 * message saying what is wrong otherwise. */
JsonObject *login_parse_body(GBytes *body, const LoginField *fields, char **message);
/* NULL when name follows the rules; otherwise why not. */
char *login_name_problem(const char *name);
/* The canonical key of a valid name: ASCII lower case. */
char *login_name_key(const char *name);
/* For messages: at most 40 bytes of text, cut at a character boundary. */
char *login_shown(const char *text);
/* A copy of a string member that holds a secret; the parsed original is cleansed. */
char *login_take_secret(JsonObject *object, const char *member);
/* The bytes of text when it is exactly canonical base64 (at most max_length bytes
 * decoded); NULL otherwise. */
GBytes *login_base64_decode_strict(const char *text, gsize max_length);
/* A device id as certificates carry it: 64 lower-case hex digits. */
gboolean login_device_id_is_valid(const char *text);
/* Device names and aliases: 1-64 characters, no control or formatting characters (no
 * bidirectional overrides, which would make a name show as another). */
gboolean login_label_is_valid(const char *text);
/* NULL when a new password is acceptable; otherwise why not. */
char *login_password_problem(const char *password);
/* The signer of a request, from its headers Hark-Certificate, Hark-Date, Hark-Nonce and
 * Hark-Signature (any may be NULL: missing): the certificate issued by ca_pem and valid at
 * now, the date within LOGIN_MAX_SKEW of now (set in *date), the signature its key's over
 * method, path, date, nonce and body. NULL and why not otherwise. Replays are auth.c's. */
HarkDeviceCertificate *login_signed_headers_check(const char *ca_pem, const char *certificate,
                                                  const char *date_text, const char *nonce,
                                                  const char *signature, const char *method,
                                                  const char *path, GBytes *body, gint64 now,
                                                  gint64 *date, char **message);

/* ---- passwords.c ---- */

/* An argon2id encoded hash (random 16-byte salt); NULL and a message on failure. */
char *login_password_hash(const char *password, guint32 memory_kib, guint32 iterations,
                          char **problem);
typedef enum {
  LOGIN_PASSWORD_MATCH,
  LOGIN_PASSWORD_MISMATCH,
  LOGIN_PASSWORD_ERROR, /* not an argon2id hash, or argon2 failed: *problem says which */
} LoginPasswordCheck;
LoginPasswordCheck login_password_verify(const char *encoded, const char *password,
                                         const char **problem);
/* Cleanses and frees a string that held a password. */
void login_secret_free(char *secret);

/* ---- ratelimit.c ---- */

LoginAddressLimiter *login_limiter_new(guint max_failures, gint64 window_usec, guint max_addresses);
void login_limiter_free(LoginAddressLimiter *limiter);
/* Seconds until address may try again; 0 when it may now. */
gint64 login_limiter_retry_after(LoginAddressLimiter *limiter, const char *address, gint64 now);
void login_limiter_note_failure(LoginAddressLimiter *limiter, const char *address, gint64 now);
/* How long an account is locked after this many failures in a row (0: not locked). */
gint64 login_lock_seconds(gint64 failures, gint64 first_lock);
LoginLockTable *login_locks_new(gint64 first_lock, guint max_entries);
void login_locks_free(LoginLockTable *table);
/* Seconds until key is unlocked; 0 when it is not locked. */
gint64 login_locks_retry_after(LoginLockTable *table, const char *key, gint64 now);
/* Whether key has failed (and is not forgotten yet). */
gboolean login_locks_has_failures(LoginLockTable *table, const char *key, gint64 now);
void login_locks_note_failure(LoginLockTable *table, const char *key, gint64 now);
void login_locks_forget(LoginLockTable *table, const char *key);

/* ---- replay.c ---- */

/* Keys remembered at most: a key lives 10 minutes at most (a signed request's window), so
 * this allows about 400 signed requests and logins a second, sustained, per process. */
#define LOGIN_REPLAY_MAX 262144

typedef enum {
  LOGIN_REPLAY_NEW, /* first use: remembered now */
  LOGIN_REPLAY_SEEN, /* used before: a replay */
  LOGIN_REPLAY_FULL, /* the cache is full of live keys: refuse, try later */
} LoginReplayVerdict;

LoginReplayCache *login_replay_new(guint max_keys);
void login_replay_free(LoginReplayCache *cache);
/* Notes key as used until keep_until (unix seconds), unless it is already. */
LoginReplayVerdict login_replay_note(LoginReplayCache *cache, const char *key, gint64 keep_until,
                                     gint64 now);
guint login_replay_size(LoginReplayCache *cache);

/* ---- auth.c ---- */

/* Checks the signature headers; on success sets req->device and returns TRUE, otherwise
 * answers unauthenticated and returns FALSE. */
gboolean login_authenticate(LoginRequest *req);

/* ---- accounts.c ---- */

void login_handle_register(LoginRequest *req);
void login_handle_nonce(LoginRequest *req);
void login_handle_login(LoginRequest *req);
void login_handle_renew(LoginRequest *req);
void login_handle_password(LoginRequest *req);
void login_handle_delete(LoginRequest *req);
void login_handle_user(LoginRequest *req);
void login_handle_users(LoginRequest *req);
void login_handle_version(LoginRequest *req);
/* Whether a device that is not revoked was seen within LOGIN_RECENT_SECONDS of now. */
gboolean login_devices_recent(GPtrArray *devices, gint64 now);
/* The certificate and its expiry for a device key of the account (worker threads). */
gboolean login_issue_certificate(LoginServer *s, const HarkStoreUser *user,
                                 const char *public_key_pem, JsonObject *answer, LoginReply *reply);

/* ---- buddies.c ---- */

void login_handle_buddies_get(LoginRequest *req);
void login_handle_buddies_change(LoginRequest *req);
/* {"revision", "buddies": [...]} for a user (worker threads); NULL with reply set. */
JsonObject *login_buddy_list(LoginServer *s, const char *name_key, LoginReply *reply);

/* ---- contacts.c ---- */

void login_handle_contacts_get(LoginRequest *req);
void login_handle_contacts_change(LoginRequest *req);

/* ---- messages.c ---- */

/* A message envelope is at most this many bytes (docs/protocol.md, "Messages"). */
#define LOGIN_ENVELOPE_MAX (256 * 1024)
/* The body of POST /v1/messages: the envelope in base64 and a little JSON around it. */
#define LOGIN_MESSAGES_BODY_MAX ((LOGIN_ENVELOPE_MAX + 2) / 3 * 4 + 1024)
/* GET /v1/messages gives at most this many, and stops before this many envelope bytes
 * (one at least), so that an answer stays well under a client's 4 MiB. */
#define LOGIN_MESSAGES_PAGE 100
#define LOGIN_MESSAGES_PAGE_BYTES (2 * 1024 * 1024)

void login_handle_user_devices(LoginRequest *req);
void login_handle_messages_hold(LoginRequest *req);
void login_handle_messages_get(LoginRequest *req);
void login_handle_messages_ack(LoginRequest *req);
/* The certificate just issued (answer's "certificate", PEM) as the device's last one,
 * for GET /v1/users/NAME/devices (worker threads); FALSE with the reply set. */
gboolean login_record_certificate(LoginServer *s, const char *name_key, const char *device_id,
                                  JsonObject *answer, LoginReply *reply);
/* Deletes expired messages when the last purge is a minute old or more (any thread). */
void login_messages_purge_if_due(LoginServer *s);

/* ---- envelope.c ---- */

/* What the server reads of an envelope: who sealed it and for which devices. */
typedef struct {
  char *sender_device; /* the payload's sender_device: 64 hex */
  char **recipients; /* the recipients' device ids, NULL-terminated */
} LoginEnvelopeShape;

/* The shape of a signed envelope when it is one: (ayay) in normal form, at most
 * LOGIN_ENVELOPE_MAX bytes, a 64-byte signature, a payload (ayssaysttxaya(sayay)) in
 * normal form with a 16-byte id, a device id as sender_device, a certificate of 1 to 4096
 * bytes and 1 to 1024 recipients (device id, 32-byte ephemeral key, 48-byte wrapped key).
 * NULL and why not (for the client's developer) otherwise. The signature is not checked:
 * that is the recipient's. */
LoginEnvelopeShape *login_envelope_shape_read(GBytes *bytes, char **problem);
void login_envelope_shape_free(LoginEnvelopeShape *shape);
gboolean login_envelope_shape_names(const LoginEnvelopeShape *shape, const char *device_id);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LoginEnvelopeShape, login_envelope_shape_free)

/* ---- tunnel.c ---- */

/* The client address a preamble line (with its CRLF) states, when its SN's certificate,
 * time, nonce and signature check out (its nonce is then noted in the server's replay
 * cache); NULL and why not otherwise. */
char *login_tunnel_preamble_check(LoginServer *s, const char *line, GError **error);
/* The same against ca_pem and replays at now (unix seconds), which the check reads from
 * the server and its clock. */
char *login_tunnel_preamble_verify(const char *ca_pem, LoginReplayCache *replays, const char *line,
                                   gint64 now, GError **error);

/* ---- devices.c ---- */

/* Who signed a request, copied from its certificate for a job on a worker thread. */
typedef struct {
  char *user; /* as in the certificate */
  char *key; /* canonical */
  char *account_id;
  char *device_id;
} LoginSigner;

LoginSigner *login_signer_new(const HarkDeviceCertificate *device);
void login_signer_free(LoginSigner *signer);
/* The signer's account when the certificate still speaks for it (worker threads): the
 * name's current account is the one the certificate was issued for (not deleted, nor
 * deleted and registered again), and the device is one of its devices and not revoked.
 * NULL with the reply set (unauthenticated, or a store failure) otherwise. */
HarkStoreUser *login_signer_check(LoginServer *s, const LoginSigner *signer, LoginReply *reply);

void login_handle_devices_get(LoginRequest *req);
void login_handle_devices_remove(LoginRequest *req);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LoginSigner, login_signer_free)

/* ---- tls.c ---- */

LoginListener *login_listener_start(LoginServer *s, GTlsCertificate *certificate, GError **error);
guint16 login_listener_port(LoginListener *listener);
/* Stops accepting and cancels handshakes in progress; returns once none is left. */
void login_listener_stop(LoginListener *listener);

G_END_DECLS
