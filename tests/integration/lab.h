/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lab.h: a small network of real nodes for integration tests: a login server and nodes
 * driven through ctl, with the few calls every such test makes.
 *
 * Built on harness.h; failures are reported the same way (test failed, NULL/FALSE). */
#pragma once

#include "harness.h"

G_BEGIN_DECLS

#define LAB_ANSWER_MS 20000
#define LAB_EXIT_MS 10000

/* For tests that keep a node and its ctl client apart: spawn node and connect *ctl (its
 * hello read: the node's loop runs, every frontend is up); ctl shutdown (the node must
 * exit 0) and start again on the same state. */
gboolean lab_start_with_ctl(HarkTestNode *node, HarkTestClient **ctl);
gboolean lab_restart_with_ctl(HarkTestNode *node, HarkTestClient **ctl);
/* The answer to command (args taken, may be NULL); events seen meanwhile into events
 * (may be NULL). */
JsonObject *lab_ctl_ask(HarkTestClient *ctl, const char *command, JsonObject *args,
                        GPtrArray *events);
/* The result of a command that must succeed (a new reference), or NULL (test failed). */
JsonObject *lab_ctl_call(HarkTestClient *ctl, const char *command, JsonObject *args,
                         GPtrArray *events);

/* Moves the test clock of a node started with `node: { test_clock = true; }` forward by
 * seconds (the `clock` command; docs/testing.md "Clocks"): its login server's lock-outs,
 * windows and nonces, and its login client's renewals, see that much time pass at once.
 * FALSE (test failed) when the node refuses. */
gboolean lab_clock_advance(HarkTestClient *ctl, gint64 seconds);

/* A node process and a ctl client whose hello has been read. */
typedef struct {
  char *name;
  HarkTestNode *node;
  HarkTestClient *ctl;
} LabNode;

/* The config text is taken as it is; the node is not started. */
LabNode *lab_node_new(const char *name, const char *config_text);
/* Spawns the node and connects ctl (the node's loop then runs, every frontend is up). */
gboolean lab_node_start(LabNode *node);
/* ctl shutdown (must exit 0), then start again on the same state. */
gboolean lab_node_restart(LabNode *node);
/* SIGKILL, no shutdown: a crash as the others see it. */
void lab_node_kill(LabNode *node);
/* ctl shutdown; TRUE when the node exited 0 (its state stays for a later lab_node_start). */
gboolean lab_node_stop(LabNode *node);
/* A counter of the `messages` command's "device" part (the messenger's), or -1. */
gint64 lab_device_counter(LabNode *node, const char *name);
void lab_node_free(LabNode *node);
/* A fixture's end: each of the n nodes that is there is killed (a stopped one too) and
 * freed, and its slot set to NULL. */
void lab_nodes_kill_free(LabNode **const *nodes, gsize n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LabNode, lab_node_free)

/* ---- events: what a node's ctl client saw while a test asked it things ---------------- */

/* The events (`call`, `conference-roster`, ...) a node's ctl client saw, and how far the
 * test has read them. */
typedef struct {
  GPtrArray *events; /* JsonObject* */
  guint cursor;
} LabEvents;

void lab_events_init(LabEvents *log);
void lab_events_clear(LabEvents *log);
/* The result of command at node (a new reference; args taken, may be NULL), the events
 * seen meanwhile kept in log. An error answer: NULL, its message in *error_text when
 * error_text is given (a refusal the test expects), else the test failed. */
JsonObject *lab_events_ask(LabNode *node, LabEvents *log, const char *command, JsonObject *args,
                           char **error_text);
typedef gboolean (*LabEventMatch)(JsonObject *event, gconstpointer data);
/* The next event in log after those read that match(event, data) takes (a new
 * reference; those before it count as read), the node asked again and again for more for
 * at most timeout_ms (scaled); NULL otherwise (test failed: what, every event the node
 * saw and its logs shown). */
JsonObject *lab_events_wait(LabNode *node, LabEvents *log, LabEventMatch match, gconstpointer data,
                            const char *what, guint timeout_ms);

/* The node's `overlay` (a new reference) once pred(overlay, data) holds, asked again and
 * again for at most timeout_ms; NULL (test failed: what it was not, the last answer and the
 * node's logs shown) otherwise. */
typedef gboolean (*LabOverlayPredicate)(JsonObject *overlay, gconstpointer data);
/* The same for any command without arguments (`buddies`, `directory`, ...): its result
 * once pred(result, data) holds. */
typedef gboolean (*LabResultPredicate)(JsonObject *result, gconstpointer data);
JsonObject *lab_wait_command(LabNode *node, const char *command, LabResultPredicate pred,
                             gconstpointer data, guint timeout_ms, const char *what);
JsonObject *lab_wait_overlay(LabNode *node, LabOverlayPredicate pred, gconstpointer data,
                             guint timeout_ms, const char *what);
/* Predicates: attached to an SN; serving as one with at least GPOINTER_TO_UINT(data)
 * verified SN links; (`directory`) this device's record stored by its SN. */
gboolean lab_overlay_is_attached(JsonObject *overlay, gconstpointer data);
gboolean lab_overlay_is_super(JsonObject *overlay, gconstpointer data);
gboolean lab_directory_is_published(JsonObject *directory, gconstpointer data);
/* A predicate: is the user (a string) among an SN's clients, authenticated as that user? */
gboolean lab_overlay_serves_user(JsonObject *overlay, gconstpointer user);

/* {name: value, ...} from NULL-terminated pairs of strings. */
JsonObject *lab_args(const char *first_name, ...) G_GNUC_NULL_TERMINATED;
/* The answer to command (args taken, may be NULL). */
JsonObject *lab_ask(LabNode *node, const char *command, JsonObject *args);
/* The result of a command that must succeed (a new reference), or NULL (test failed). */
JsonObject *lab_call(LabNode *node, const char *command, JsonObject *args);

/* The one way a test starts a login server: a `hark run` node loading a store, loginsrv
 * and ctl, listening on 127.0.0.1. It is given port 0 and the port it bound is read back
 * from its log, so no other process can take the port first; the configuration is then
 * rewritten with that port, so a restart (lab_node_restart) comes back where clients
 * expect it. */
typedef struct {
  const char *store; /* "sqlite" when NULL, or "postgres" */
  const char *store_options; /* inside store_options = { } (a conninfo); may be NULL */
  const char *host; /* in the URL and the server's hosts; none and 127.0.0.1 when NULL */
  const char *settings; /* more loginsrv settings ("certificate_lifetime = 5;") */
  const char *node_settings; /* more settings of its node group ("test_clock = true;") */
} LabLoginOptions;

typedef struct {
  LabNode *node;
  guint16 port;
  char *url; /* https://<host>:<port> */
  char *ca_path; /* what clients pin */
} LabLoginServer;

/* A running server that wrote its CA, or NULL (the case failed, logs shown). */
LabLoginServer *lab_login_server_start(const LabLoginOptions *options);
/* sqlite, a cheap password hash, no registration limit worth the name. */
LabLoginServer *lab_login_server_new(void);
/* The same with more loginsrv settings ("certificate_lifetime = 5;"). */
LabLoginServer *lab_login_server_new_with(const char *settings);
void lab_login_server_free(LabLoginServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LabLoginServer, lab_login_server_free)

/* register + login as user (password derived from it). */
gboolean lab_register_and_login(LabNode *node, const char *user);

/* A client's configuration as the messaging labs write it: udp, tcp, search-loginsrv and
 * ctl, loopback allowed, bootstrapping from sn_host:port over udp and tcp, login's
 * section, then extra (more settings; may be NULL). */
char *lab_client_config(const char *name, const char *sn_host, guint16 port,
                        const LabLoginServer *login, const char *extra);
/* The same with more settings of the node group (node_extra: "test_clock = true;") and
 * more plugins (plugins_extra: ", { name = \"opus\"; }"); either may be NULL. */
char *lab_client_config_with_node(const char *name, const char *node_extra,
                                  const char *plugins_extra, const char *sn_host, guint16 port,
                                  const LabLoginServer *login, const char *extra);
/* A node started with config, attached to its SN, logged in as user (registered first
 * when register_first; the password lab_register_and_login gives) and published in the
 * directory, each waited for at most timeout_ms; NULL (test failed) otherwise. */
LabNode *lab_client_start(const char *name, const char *config, const char *user,
                          gboolean register_first, guint timeout_ms);

/* ---- a TURN server ------------------------------------------------------------------- */

/* A UDP port of 127.0.0.1 that was free a moment ago. */
guint16 lab_free_port(void);
/* A port of 127.0.0.1 that was free for both UDP and TCP a moment ago. */
guint16 lab_free_udp_tcp_port(void);
/* Whether Debian's coturn (turnserver) is installed. */
gboolean lab_coturn_installed(void);
/* How long coturn has to answer STUN on its port, and how many ports are tried: a port
 * found free can be taken by another program before coturn binds it. */
#define LAB_COTURN_UP_MS 5000
#define LAB_COTURN_TRIES 3
/* Debian's coturn on 127.0.0.1:*port (a free port it chooses), relaying on 127.0.0.1 to
 * loopback peers, with the REST-API credentials of secret (what an SN's
 * supernode.turn_secret_file holds); its pid file, user database and log in dir. Returned
 * once it answers a STUN Binding over UDP and over TCP. NULL when turnserver is not
 * installed (lab_coturn_installed), or, with the case failed and coturn's log shown,
 * when it answered on none of LAB_COTURN_TRIES ports. */
GSubprocess *lab_coturn_start(const char *dir, const char *secret, guint16 *port);
/* Stops it (SIGKILL, waited for) and clears *coturn; nothing when NULL. */
void lab_coturn_stop(GSubprocess **coturn);

/* ---- messages (the `msg` and `history` commands) ------------------------------------ */

/* The messages of node's conversation `with` (a user, or #group; none when the node does
 * not know it): a new array of JsonObject*. */
GPtrArray *lab_history(LabNode *node, const char *with);
/* How many messages with this text that conversation holds. */
guint lab_count_text(LabNode *node, const char *with, const char *text);
/* Polls the conversation until the text is there, at most timeout_ms (scaled): the
 * milliseconds it took, or -1 (test failed, the node's logs shown). */
gint64 lab_wait_text(LabNode *node, const char *with, const char *text, guint timeout_ms);
/* `msg` to (a user or #group): its result, or NULL (test failed). */
JsonObject *lab_send_text(LabNode *node, const char *to, const char *text);

G_END_DECLS
