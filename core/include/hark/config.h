/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config.h: a node's configuration, read from a libconfig file.
 *
 * Every error names the file and line and says what was expected; keys the core does
 * not know are kept as warnings (with file:line) rather than refused, so a newer
 * configuration still starts an older node. Only the "plugins" settings groups are
 * free-form: they belong to the plugins, which get them as a{sv} at init. */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_CONFIG_ERROR (hark_config_error_quark())

/* media.jitter_min_ms and jitter_max_ms lie in this range (ms), in the file and in
 * `media-set` alike. */
#define HARK_CONFIG_JITTER_MIN 10
#define HARK_CONFIG_JITTER_MAX 2000
HARK_API GQuark hark_config_error_quark(void);

typedef enum {
  HARK_CONFIG_ERROR_IO, /* cannot read the file */
  HARK_CONFIG_ERROR_SYNTAX, /* libconfig parse error: message is "file:line: ..." */
  HARK_CONFIG_ERROR_INVALID, /* wrong type, bad value, missing key: "file:line: ..." */
} HarkConfigError;

typedef struct {
  char *name; /* plugin name, file <name>.so */
  gboolean optional; /* a failure to load is a warning, not fatal */
  int rank; /* -1: the plugin's own ranks; otherwise replaces them */
  GVariant *settings; /* a{sv}, never NULL */
} HarkPluginConfig;

typedef struct {
  char *host;
  guint16 port;
  char **transports; /* NULL-terminated, e.g. {"udp", "tcp"} */
} HarkBootstrapConfig;

typedef struct {
  char *path; /* the file it came from, NULL for defaults */

  /* node */
  char *node_name; /* default: the host name */
  char *state_dir; /* absolute, "~" expanded; default $XDG_STATE_HOME/hark */
  gboolean supernode; /* may this node become a super node (default TRUE) */

  /* plugins */
  char **plugin_path; /* extra directories searched first; NULL-terminated */
  GPtrArray *plugins; /* HarkPluginConfig*, in load order */

  /* network */
  char *listen_address; /* default "0.0.0.0" */
  guint16 port; /* overlay port, default 33033 (the paper's) */
  GPtrArray *bootstrap; /* HarkBootstrapConfig* */
  char *public_address; /* this node's public IP, when known better than by probing */
  char *public_address_alt; /* a second public IP of this host: an SN then serves RFC 5780
                              * (CHANGE-REQUEST) alone; needs public_address */
  int nat_probe_interval; /* s between NAT probes (also on address changes); 1800 */
  int keepalive; /* s of silence on the SN link before a PING; 20 (paper: 120) */
  int keepalive_timeout; /* s without anything arriving after it: the SN is dead; 8 */
  int keepalive_floor; /* s: the shortest JOIN_OK.keepalive a client takes from its SN (a
                        * hostile SN must not make it PING every second); 10 */
  int join_race_delay_ms; /* TLS connects start this long after the UDP probes; 150 */
  int join_fallback_delay_ms; /* the web-port fallback starts this long after; 1000 */
  int handshake_timeout_ms; /* a TLS handshake that takes longer is dropped; 10000 */
  int host_cache_max_age; /* s: SNs not seen for longer leave the host cache; 7 days */
  gboolean allow_loopback; /* loopback addresses may be SNs, peers and STUN destinations:
                              * for tests and demos on one machine; default FALSE */

  /* supernode: when this node serves as a super node (if node.supernode allows) */
  int sn_min_uptime; /* s running first; default 600 */
  int sn_max_load; /* % of all cores busy (load average) at most; default 70 */
  int sn_upload_kbps; /* this node's upload bandwidth as its owner knows it; 0 unknown */
  int sn_min_upload_kbps; /* required when upload_kbps is known; default 512 */
  int sn_max_clients; /* ordinary nodes served at most; more are redirected; 1000 */
  int sn_max_logging_in; /* of those, without a certificate yet (logging in); 64 */
  int sn_links; /* links to other SNs; default 3 */
  int sn_stun_alt_port; /* the SN's second STUN port (RFC 5780); 0: port + 1 */
  char *sn_turn_server; /* "IP:PORT" (a literal address; "[IPv6]:PORT") of a TURN server
                         * this SN hands its clients credentials for; NULL: none */
  char *sn_turn_secret_file; /* coturn's static-auth-secret (mode 0600 or stricter): absolute,
                              * "~" expanded, relative to the configuration file's directory;
                              * required with turn_server */
  gboolean sn_turn_tcp; /* the TURN server takes TURN over TCP on that port too; TRUE */
  int sn_turn_lifetime; /* s the credentials handed out are good for; 86400 */
  /* The SN's own TURN server (core/relay), when it has no turn_server of its own */
  gboolean sn_relay; /* relay for logged-in clients; TRUE */
  int sn_relay_port; /* UDP and TCP port of the TURN server; 3478 */
  int sn_relay_tls_port; /* its TURN over TLS port, 0: none; 5349 */
  int sn_relay_min_port, sn_relay_max_port; /* relayed addresses' UDP ports; 49152-65535 */
  int sn_relay_lifetime; /* s the credentials for it are good for; 600 */
  int sn_relay_max_allocations; /* allocations at once, all users; 1000 (then 508) */
  int sn_relay_max_allocations_per_user; /* 10 (then 486) */
  int sn_relay_bandwidth; /* bytes/s relayed in all, 0: no limit; 0 */
  int sn_relay_allocation_bandwidth; /* bytes/s one allocation relays; 262144 */
  char **sn_relay_allow; /* CIDRs of peers allowed despite the denied ranges; NULL-terminated */

  /* media */
  char **codecs; /* preference order, NULL-terminated; default {"opus", "g711"} */
  char *audio_source; /* as hark_media_source_check accepts; default "pulse" */
  char *audio_sink; /* as hark_media_sink_check accepts; default "pulse" */
  int jitter_min_ms; /* the adaptive jitter buffer's bounds: it never holds received */
  int jitter_max_ms; /* audio shorter or longer than these (ms); 10 and 200 */

  GPtrArray *warnings; /* char*, "file:line: unknown key 'x' in 'node'" */

  /* login: the login server this node logs in to. login_url is NULL when the
   * configuration has no login section (the node then does not log in). */
  char *login_url; /* "https://HOST[:PORT]" */
  char *login_ca; /* the pinned CA certificate (PEM): absolute, "~" expanded,
                              * relative to the configuration file's directory */
  char *login_device; /* this device's name as the user calls it; default node_name */
  int login_renew_margin; /* renew the certificate this many seconds before it
                              * expires; default 3600 */
  gboolean test_clock; /* node.test_clock: the node's clock stands still and the
                              * `clock` command moves it (tests only); default FALSE */

  /* directory */
  char **dir_search; /* search strategies, in the order tried; NULL-terminated;
                              * default {"gi", "loginsrv"} */
  int dir_refresh_interval; /* s between refreshes of this device's record; 600 */
  int dir_lookups_per_minute; /* an SN answers each client this many lookups a minute; 30 */
  int dir_max_records; /* presence records an SN keeps at most; 100000 */

  /* messages */
  gboolean msg_read_receipts; /* tell senders when a message was read; TRUE */
  gboolean msg_typing; /* send and show typing notifications; TRUE */

  /* calls */
  int call_ring_timeout; /* s an unanswered call rings before it ends "no answer"; 45 */
  int call_max; /* calls at once (ringing, held, active); one more is answered busy; 4 */

  /* conference */
  gboolean conf_host; /* this node hosts conferences (`conference USER...`); TRUE */
  int conf_rate; /* Hz the host mixes at (8000-48000, a multiple of 50); 16000 */
  char *conf_invite; /* whose `invite` the host follows: "host" (none), "members", "ask"
                      * (a `conference-invite` event for the host's user); "members" */
  int conf_dials_per_minute; /* members the host calls a minute once CONFERENCE_DIAL_BURST
                              * were called at once: each call is a lookup at the SN, which
                              * takes directory.lookups_per_minute (30); 30 */
} HarkConfig;

/* $XDG_CONFIG_HOME/hark/hark.conf (~/.config/hark/hark.conf). */
HARK_API char *hark_config_default_path(void);
/* $XDG_STATE_HOME/hark (~/.local/state/hark). */
HARK_API char *hark_config_default_state_dir(void);

/* A path from a setting, the way every part of hark reads one: "~/x" is in the home
 * directory, an absolute path is used as it is, anything else is relative to the
 * node's (private) state directory. */
HARK_API char *hark_config_state_path(const char *state_dir, const char *path);

/* The rules the configuration applies, for other readers of the same values (the host
 * cache file, say): a host name or IP address; a transport name (udp, tcp, tls443). */
HARK_API gboolean hark_config_is_host(const char *text);
HARK_API gboolean hark_config_is_transport(const char *name);
/* "IP:PORT" or "[IPv6]:PORT" with a literal address and a port of 1-65535: TRUE with the
 * address in *host (new; may be NULL) and the port in *port (may be NULL). */
HARK_API gboolean hark_config_parse_ip_port(const char *text, char **host, guint16 *port);

HARK_API HarkConfig *hark_config_new_default(void);
HARK_API HarkConfig *hark_config_load(const char *path, GError **error);
/* The same, from text (path is used in messages only and may be NULL). */
HARK_API HarkConfig *hark_config_load_from_string(const char *text, const char *path,
                                                  GError **error);
HARK_API const HarkPluginConfig *hark_config_find_plugin(const HarkConfig *config,
                                                         const char *name);
HARK_API void hark_config_free(HarkConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkConfig, hark_config_free)

G_END_DECLS
