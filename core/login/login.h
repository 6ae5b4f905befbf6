/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login.h: the client side of the login server (private to libhark, not installed).
 *
 * A node whose configuration has a `login` section owns one HarkLoginClient: it
 * registers and logs in over HTTPS (docs/protocol.md, "Login server API"), trusting only
 * the CA pinned by `login.ca`; keeps the device certificate and the buddy list in the
 * state directory; renews the certificate before it expires; and signs the requests
 * that need it with the node's identity. Everything runs on the node's main loop. */
#pragma once

#include "hark/config.h"
#include "hark/context.h"
#include "hark/identity.h"

G_BEGIN_DECLS

#define HARK_LOGIN_ERROR (hark_login_error_quark())
GQuark hark_login_error_quark(void);

typedef enum {
  HARK_LOGIN_ERROR_NOT_CONFIGURED, /* no login section */
  HARK_LOGIN_ERROR_NOT_LOGGED_IN,
  HARK_LOGIN_ERROR_UNREACHABLE, /* no HTTPS exchange: refused, timed out, TLS not trusted */
  HARK_LOGIN_ERROR_WRONG_PASSWORD,
  HARK_LOGIN_ERROR_UNKNOWN_USER,
  HARK_LOGIN_ERROR_USER_EXISTS,
  HARK_LOGIN_ERROR_LOCKED_OUT,
  HARK_LOGIN_ERROR_BAD_NAME,
  HARK_LOGIN_ERROR_WEAK_PASSWORD,
  HARK_LOGIN_ERROR_UNAUTHENTICATED, /* the server refused this device's certificate */
  HARK_LOGIN_ERROR_CONFLICT, /* the buddy list kept changing under us */
  HARK_LOGIN_ERROR_NOT_FOUND, /* no such buddy */
  HARK_LOGIN_ERROR_BAD_ANSWER, /* an answer we cannot accept (a certificate that does
                                     * not verify or bind this device, malformed JSON) */
  HARK_LOGIN_ERROR_SERVER, /* any other refusal; the message is the server's */
  HARK_LOGIN_ERROR_IO, /* the state directory could not be written */
  HARK_LOGIN_ERROR_OVER_QUOTA, /* this user holds too many messages for offline devices */
  HARK_LOGIN_ERROR_RECIPIENT_FULL, /* the recipient device has too many held (try later) */
} HarkLoginError;

typedef struct _HarkLoginClient HarkLoginClient;

/* login-trust.c: the TLS database of the login client, which takes only the login
 * server's certificate (hark_certificate_verify_server against the pinned ca_pem and
 * login.url's host), never a device's. */
#define HARK_TYPE_LOGIN_TRUST (hark_login_trust_get_type())
G_DECLARE_FINAL_TYPE(HarkLoginTrust, hark_login_trust, HARK, LOGIN_TRUST, GTlsDatabase)
GTlsDatabase *hark_login_trust_new(const char *ca_pem);
/* Why the last certificate was refused (NULL when none was). */
char *hark_login_trust_last_refusal(GTlsDatabase *database);

/* The answer of an operation, called exactly once (possibly before the operation
 * function returns, when there is nothing to ask the server): exactly one of result and
 * error is set, and the callee takes it. When the client is freed first, operations in
 * flight are told G_IO_ERROR_CANCELLED at once. */
typedef void (*HarkLoginDone)(JsonObject *result, GError *error, gpointer user_data);

/* A client for config->login_url (which must be set). Reads and pins login.ca, loads a
 * saved certificate that is still valid (the node is then logged in without a password)
 * and schedules its renewal. ctx is the core's context, for events. */
HarkLoginClient *hark_login_client_new(HarkContext *ctx, const HarkConfig *config,
                                       HarkIdentity *identity, GError **error);
/* Cancels what is in flight (their callbacks get G_IO_ERROR_CANCELLED) and the timers. */
void hark_login_client_free(HarkLoginClient *client);

/* The `login` member of the node's state: {"server", "user", "device", "expires",
 * "buddies_revision"}, or {"server", "user": null} when logged out. */
JsonObject *hark_login_client_snapshot(HarkLoginClient *client);

/* The seam for tunnels. All HTTPS requests go through one SoupSession whose connections
 * are made by GIO's GSocketClient; by default they go straight to login.url (no system
 * proxy). A tunnel (e.g. through a super node, later) sets a proxy resolver here that
 * sends the connection to a relay: typically a SOCKS5 endpoint it serves on loopback
 * ("socks5://127.0.0.1:PORT"), or a GProxy of its own. TLS still runs end to end with the
 * login server and is checked against the pinned CA and login.url's host, so the relay
 * sees only ciphertext. NULL goes back to direct connections. Applies to new
 * connections. */
void hark_login_client_set_proxy_resolver(HarkLoginClient *client, GProxyResolver *resolver);

/* For the overlay's links (core/link.c): the pinned CA (PEM), and this device's
 * certificate (DER) while logged in, NULL otherwise. */
const char *hark_login_client_ca_pem(HarkLoginClient *client);
GBytes *hark_login_client_certificate_der(HarkLoginClient *client);

/* Called after every change of this device's certificate: a login, a renewal, a
 * logout. One handler; NULL removes it. */
typedef void (*HarkLoginChanged)(gpointer user_data);
void hark_login_client_set_changed_handler(HarkLoginClient *client, HarkLoginChanged changed,
                                           gpointer user_data);

/* For the directory above (login never calls up): changed() after the buddy list changed
 * (with the `buddies-changed` event); describe() adds to the `buddies` command's answer
 * ({"revision", "buddies": [{"name", "alias"}]}) what it knows of each buddy (the live
 * presence); contacted() after this device sent, declined or withdrew a contact request
 * with user, or blocked or unblocked someone (user: this device's own user), which no buddy
 * list shows: the other devices concerned are to fetch their contacts (an acceptance
 * changes both lists, so changed() covers it). One set of hooks; NULL removes them.
 * hooks: borrowed, must outlive it. */
typedef struct {
  void (*changed)(gpointer data);
  void (*describe)(gpointer data, JsonObject *answer);
  void (*contacted)(gpointer data, const char *user);
} HarkLoginBuddyHooks;
void hark_login_client_set_buddy_hooks(HarkLoginClient *client, const HarkLoginBuddyHooks *hooks,
                                       gpointer data);
/* The `buddies` answer with the hooks' additions: for login-commands.c. */
void hark_login_client_describe_buddies(HarkLoginClient *client, JsonObject *answer);

/* The overlay's way to the login server (a SOCKS5 endpoint on loopback whose streams go
 * through the SN): a request that gets no answer directly is sent once more through it
 * when ready() says the SN link is up, and later requests keep going that way (and back,
 * once, when it fails). NULL removes it. The `login` snapshot says which path is used. */
void hark_login_client_set_tunnel(HarkLoginClient *client, GProxyResolver *resolver,
                                  gboolean (*ready)(gpointer data), gpointer data);

/* Fetch the buddy list in the background (a device started with a saved login may have
 * missed changes made on another). The overlay calls it once the node has a way to the
 * server (attached, or a few seconds after start), so it neither competes with joining
 * nor fails for want of the tunnel. Nothing when logged out. */
void hark_login_client_sync(HarkLoginClient *client);

/* The operations behind the commands. Results are what the commands answer. */
void hark_login_client_register(HarkLoginClient *client, const char *user, const char *password,
                                HarkLoginDone done, gpointer user_data);
/* {"user", "device", "expires", "revision", "buddies": [{"name", "alias"}]} */
void hark_login_client_login(HarkLoginClient *client, const char *user, const char *password,
                             HarkLoginDone done, gpointer user_data);
/* Forgets the certificate and the buddy list on this device; no request. */
void hark_login_client_logout(HarkLoginClient *client, HarkLoginDone done, gpointer user_data);
/* With revoke_others, every other device of the account is revoked (this one stays
 * logged in). Answers {"revoked": N}. */
void hark_login_client_change_password(HarkLoginClient *client, const char *old_password,
                                       const char *new_password, gboolean revoke_others,
                                       HarkLoginDone done, gpointer user_data);
/* Deletes the logged-in user's account, then logs out. */
void hark_login_client_delete_account(HarkLoginClient *client, const char *password,
                                      HarkLoginDone done, gpointer user_data);
/* {"revision", "buddies"}, fetched from the server; the saved list, with "synced": false
 * and the reason, when the server cannot be reached. */
void hark_login_client_buddies(HarkLoginClient *client, HarkLoginDone done, gpointer user_data);
/* op is "add", "remove" or "rename"; alias may be NULL. Answers like buddies. */
void hark_login_client_change_buddy(HarkLoginClient *client, const char *op, const char *name,
                                    const char *alias, HarkLoginDone done, gpointer user_data);
/* {"user", "device", "device_id", "server", "expires"}; NOT_LOGGED_IN when logged out. */
void hark_login_client_whoami(HarkLoginClient *client, HarkLoginDone done, gpointer user_data);
/* The buddy list's names, canonical (lower case); NULL-terminated, new. */
char **hark_login_client_buddy_names(HarkLoginClient *client);
/* The account's devices as the server lists them: {"devices": [...]}. */
void hark_login_client_devices(HarkLoginClient *client, HarkLoginDone done, gpointer user_data);
/* Revokes the device named by which (its id or its name): {"removed": {...}}. When that is
 * this device, it is logged out as well. */
void hark_login_client_remove_device(HarkLoginClient *client, const char *which, HarkLoginDone done,
                                     gpointer user_data);

/* login-contacts.c: contact requests. {"incoming": [{"name", "message", "created"}],
 * "outgoing": [...], "blocked": [names], "revision", "buddies"}; every incoming request
 * this device has not announced yet gets a `contact-request` event, and the buddy list
 * is fetched when the server's revision differs (a `buddies-changed` event). */
void hark_login_client_requests(HarkLoginClient *client, HarkLoginDone done, gpointer user_data);
/* op is "send" (message may be NULL; the answer has "status": "request sent"), "accept",
 * "decline", "cancel", "block" or "unblock"; answers like hark_login_client_requests. */
void hark_login_client_contact(HarkLoginClient *client, const char *op, const char *name,
                               const char *message, HarkLoginDone done, gpointer user_data);
/* Fetch the contact requests now, in the background (and the buddy list when it changed):
 * for whoever learns that something changed on the server (the directory, when another
 * device or user says so). Nothing when logged out. */
void hark_login_client_sync_contacts(HarkLoginClient *client);

/* What the login server says about a user name: always one of these (or an error when it
 * could not be asked). */
typedef enum {
  HARK_LOGIN_LOOKUP_NO_SUCH_USER,
  HARK_LOGIN_LOOKUP_NOT_RECENT, /* exists; no device of theirs was seen in the last 72 h */
  HARK_LOGIN_LOOKUP_RECENT, /* exists; a device of theirs was seen in the last 72 h */
} HarkLoginLookup;
#define HARK_LOGIN_SEARCH_LIMIT_MAX 100

/* Ask the login server about name (GET /v1/users/NAME; needs no login). A name that is
 * not a valid user name is NO_SUCH_USER without asking. */
void hark_login_client_lookup_async(HarkLoginClient *client, const char *name,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
/* The answer; *user (may be NULL) gets the name as registered when the user exists. */
HarkLoginLookup hark_login_client_lookup_finish(GAsyncResult *result, char **user, GError **error);
/* Users whose name starts with prefix, at most limit (1 to HARK_LOGIN_SEARCH_LIMIT_MAX),
 * sorted: GET /v1/users?prefix=&limit=. */
void hark_login_client_search_async(HarkLoginClient *client, const char *prefix, guint limit,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
/* The names as registered (char*), or NULL with error. */
GPtrArray *hark_login_client_search_finish(GAsyncResult *result, GError **error);

/* login-messages.c: messages held for offline devices (docs/protocol.md, "Messages: held
 * for offline devices"). Each needs a login (else NOT_LOGGED_IN) and signs its request. */

/* A device of a user, with its current certificate (verified against the pinned CA, for
 * that user and that device). */
typedef struct {
  char *device_id; /* 64 hex */
  GBytes *certificate; /* DER */
} HarkLoginDeviceCertificate;
void hark_login_device_certificate_free(HarkLoginDeviceCertificate *certificate);

/* GET /v1/users/NAME/devices: user's devices that are not revoked and whose last
 * certificate is still valid (entries whose certificate does not verify are left out). A
 * user who blocks this one answers an empty list. UNKNOWN_USER when there is none. */
void hark_login_client_device_certificates_async(HarkLoginClient *client, const char *user,
                                                 GCancellable *cancellable,
                                                 GAsyncReadyCallback callback, gpointer user_data);
/* HarkLoginDeviceCertificate*, or NULL with error. */
GPtrArray *hark_login_client_device_certificates_finish(GAsyncResult *result, GError **error);

/* POST /v1/messages: the login server holds envelope (a signed envelope this device
 * sealed, naming device_id among its recipients) until device_id fetches it or it
 * expires. OVER_QUOTA, RECIPIENT_FULL, or SERVER (with the server's words: a refused
 * envelope) when refused. */
void hark_login_client_hold_message_async(HarkLoginClient *client, const char *device_id,
                                          GBytes *envelope, GCancellable *cancellable,
                                          GAsyncReadyCallback callback, gpointer user_data);
/* The server's id for the held message (32 hex) and when it expires (unix seconds). */
char *hark_login_client_hold_message_finish(GAsyncResult *result, gint64 *expires, GError **error);

/* A message held for this device. */
typedef struct {
  char *id; /* the server's id, to acknowledge it */
  GBytes *envelope; /* as the sender gave it: verify and open it (core/message) */
  gint64 held_at; /* unix seconds, by the server's clock */
} HarkLoginHeldMessage;
void hark_login_held_message_free(HarkLoginHeldMessage *message);

/* GET /v1/messages: up to 100 messages held for this device, oldest first; *more tells
 * whether more wait (acknowledge these, then fetch again). */
void hark_login_client_fetch_messages_async(HarkLoginClient *client, GCancellable *cancellable,
                                            GAsyncReadyCallback callback, gpointer user_data);
/* HarkLoginHeldMessage*, or NULL with error. */
GPtrArray *hark_login_client_fetch_messages_finish(GAsyncResult *result, gboolean *more,
                                                   GError **error);

/* POST /v1/messages/ack: deletes the held messages ids names (1 to 100, NULL-terminated)
 * once this device has them safe; ids not held for this device are ignored. */
void hark_login_client_ack_messages_async(HarkLoginClient *client, const char *const *ids,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data);
/* How many were deleted, or -1 with error. */
gint64 hark_login_client_ack_messages_finish(GAsyncResult *result, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkLoginDeviceCertificate, hark_login_device_certificate_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkLoginHeldMessage, hark_login_held_message_free)

/* login-commands.c: register, login, logout, passwd, ... in the node's one command table;
 * they answer about *client, which the node sets once it has one, and NOT_CONFIGURED on
 * a node without a login section. */
void hark_login_commands_register(HarkContext *core_ctx, HarkLoginClient **client);

G_END_DECLS
