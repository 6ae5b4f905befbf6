/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-private.h: what the overlay's files share (see overlay.h for which does what). */
#pragma once

#include "overlay.h"
#include "relay.h"

G_BEGIN_DECLS

#define OVERLAY_JOIN_TIMEOUT_MS 5000 /* JOIN -> JOIN_OK, and a new link's first JOIN */
#define OVERLAY_AUTH_TIMEOUT_S 120 /* an unauthenticated client must log in by then */
/* Accepted links that have not joined yet (TLS handshake, then JOIN): at most this many,
 * and this many from one IP address, so no stranger can hold every door of the SN. */
#define OVERLAY_MAX_UNJOINED 256
#define OVERLAY_MAX_UNJOINED_PER_SOURCE 32
#define OVERLAY_PROBE_TIMEOUT_MS 1500
/* A PROBE is padded to at least this many bytes, and an SN answers only a PROBE at least
 * as large as its PROBE_REPLY: the SN's UDP port must not amplify a spoofed request. */
#define OVERLAY_PROBE_SIZE 512
#define OVERLAY_JOIN_CANDIDATES 8 /* host-cache entries one join tries at most */
#define OVERLAY_SN_LIST_MAX HARK_ADDRESS_LIST_MAX /* entries in one SN_LIST, JOIN_OK or REDIRECT */
#define OVERLAY_RETRY_FIRST_MS 500
#define OVERLAY_RETRY_MAX_MS 30000
#define OVERLAY_TUNNELS_PER_LINK 4
#define OVERLAY_TUNNEL_IDLE_S 60
#define OVERLAY_SN_VERIFY_MS 10000 /* a peer's claim to be an SN is checked by then */
#define OVERLAY_SN_LINKS_PER_DEVICE 4 /* peer links one SN device may have open to us */
#define OVERLAY_LOG_TEXT_MAX 120 /* characters of peer-supplied text in one log line */

typedef enum {
  PEER_OPENED, /* we opened it (a join attempt or an SN link): waiting for JOIN_OK */
  PEER_PENDING, /* accepted: waiting for the opener's JOIN */
  PEER_CLIENT, /* accepted ordinary node */
  PEER_SN, /* a link to another SN, either direction, joined */
  PEER_MY_SN, /* the SN this ordinary node is attached to */
  PEER_PROBE, /* we opened it to the address a peer claims: closed once its TLS is up */
} PeerKind;

/* What an SN knows of a PEER_SN (see overlay-verify.c). */
typedef enum {
  SN_CLAIMED, /* it JOINed as a peer: no SN rights until we checked its address */
  SN_VERIFIED, /* a link we opened to its address showed its device key */
} SnTrust;

typedef struct _HarkJoin HarkJoin;
typedef struct _OverlayStun OverlayStun;
typedef struct _OverlayNat OverlayNat;

/* A token bucket (overlay-stun.c). */
typedef struct {
  double tokens;
  gint64 refilled_us;
} OverlayBucket;
/* Takes a token from a bucket refilled at per_second up to burst (full at first). */
gboolean hark_overlay_bucket_take(OverlayBucket *bucket, double per_second, double burst);
typedef struct _OverlayTurn OverlayTurn;
typedef struct _Peer Peer;

/* What was dropped and why: the "bad input" counters of `overlay`. */
typedef struct {
  guint64 unauthenticated; /* messages a peer may not send before it proved who it is */
  guint64 unexpected; /* messages of a type that makes no sense on that link */
  guint64 bad_messages; /* frames that did not decode (sum over closed links) */
  guint64 bad_frames; /* links closed for an oversized or bad length */
  guint64 handshake_failures; /* TLS failed or timed out (slow-loris) */
  guint64 too_many_handshakes; /* accepted links refused at once: OVERLAY_MAX_UNJOINED */
  guint64 too_many_from_source; /* refused: OVERLAY_MAX_UNJOINED_PER_SOURCE from its address */
  guint64 bad_datagrams; /* UDP datagrams that are neither STUN nor a probe we serve */
  guint64 stun_answered;
  guint64 stun_refused;
  guint64 probes_answered;
  guint64 probes_too_small; /* PROBEs smaller than their answer would be (not answered) */
  guint64 stun_flood; /* STUN on the core's own STUN sockets over their rate */
  guint64 stun_relayed; /* CHANGE-REQUESTs handed to the partner SN (STUN_RELAY) */
  guint64 certificates_expired; /* links ended: the peer's certificate expired unrenewed */
  guint64 stun_relay_served; /* answers sent for a partner SN */
  guint64 stun_relay_refused; /* STUN_RELAYs refused (rate, bad address, no RFC 5780) */
  guint64 redirected; /* clients sent elsewhere because this SN was full */
  guint64 sn_claims_refused; /* peers that JOINed as SNs and were not (see overlay-verify.c) */
  guint64 too_many_logging_in; /* clients without a certificate over supernode.max_logging_in */
  guint64 sn_keepalive_raised; /* JOIN_OKs whose keepalive was below network.keepalive_floor */
  guint64 turn_answered; /* TURN credentials handed out (overlay-turn.c) */
  guint64 turn_refused; /* TURN_REQUESTs refused: not logged in (401) or too many (429) */
  guint64 turn_forwarded; /* TURN_FORWARDs sent to SN peers (steering) */
  guint64 turn_forward_served; /* TURN_FORWARDs of SN peers answered with credentials */
  guint64 turn_forward_refused; /* TURN_FORWARDs refused: not a verified SN, rate, user */
  guint64 turn_forward_bad; /* SN peers' answers to our TURN_FORWARD not passed on */
} OverlayCounters;

struct _Peer {
  HarkOverlay *overlay;
  HarkLink *link;
  PeerKind kind;
  char *name; /* from JOIN / JOIN_OK */
  char *host; /* an SN peer's address as it announces it (links come from any) */
  guint16 port; /* an SN peer's overlay port (from its JOIN or the join target) */
  char **transports; /* an SN peer's transports */
  gint64 since; /* monotonic µs of the JOIN */
  guint64 request_id; /* our JOIN's id while PEER_OPENED; a claimed SN's JOIN id */
  guint timer; /* JOIN deadline / auth deadline */
  gboolean listeners_told; /* the higher layers heard that its link is gone */
  HarkJoin *join; /* the join attempt this link belongs to, while PEER_OPENED */
  GHashTable *tunnels; /* guint64 id -> SnTunnel*: tunnels this SN carries for it */
  guint16 stun_alt_port; /* an SN peer's second STUN port (JOIN / JOIN_OK), 0 unknown */
  SnTrust trust; /* PEER_SN: claimed or verified */
  guint64 claim; /* PEER_SN claimed: its id; PEER_PROBE: the claim it checks */
  char *admitted_from; /* set while it holds an admission slot: the source address it
                          * is counted under (accepted, not joined yet) */
  OverlayBucket turn_bucket; /* the TURN_REQUESTs a client may send (overlay-turn.c) */
  HarkRelayStream *relay_stream; /* a TURN client on the web port: its link is the relay's */
};

struct _HarkOverlay {
  HarkNode *node;
  HarkLoginClient *login; /* borrowed from the node */
  HarkContext *ctx; /* the core's */
  HarkHostCache *cache;
  char *cache_path;
  char *way_path; /* what worked last time (join.json) */
  guint64 next_id;
  OverlayCounters counters;
  GHashTable *peers; /* HarkLink* -> Peer*: every link of this node */
  guint unjoined; /* accepted links holding an admission slot */
  GHashTable *unjoined_by_source; /* source address -> how many of those (GUINT_TO_POINTER) */
  gint64 last_drop_log; /* monotonic µs of the last drop logged at message level */
  gboolean stopping;

  /* ordinary node */
  HarkJoin *join; /* running, or NULL */
  Peer *sn; /* PEER_MY_SN, or NULL */
  guint retry_source;
  guint retry_ms;
  guint keepalive_source; /* overlay-keepalive.c */
  gint64 probe_at; /* monotonic µs of the PING nothing has answered yet, or 0 */
  guint64 pings_sent; /* on the current SN link: none while traffic flows */
  guint keepalive_s; /* ours, or less when the SN asks for it */
  gboolean synced; /* the login client's start-up sync was asked for */
  guint sync_source;
  char *last_error; /* why the last join failed, for `overlay` */

  /* super node */
  gboolean is_sn;
  char *sn_refusal; /* why this node is not an SN (for `overlay`) */
  gint64 started_at; /* monotonic µs */
  guint eligibility_source;
  guint sn_links_source;
  guint sn_rounds; /* of SN-link upkeep, to announce every few */
  guint client_sweep_source; /* drops silent clients (overlay-keepalive.c) */
  char *public_host; /* the address announced to others */
  OverlayStun *stun; /* the RFC 5780 STUN server, while serving */
  OverlayNat *nat; /* the NAT probe's result and schedule */
  GHashTable *relay_buckets; /* device id -> OverlayBucket*: STUN_RELAYs each SN device may ask */

  /* login tunnel (node side) */
  struct _TunnelClient *tunnel;

  /* TURN credentials: an SN's TURN server and secret, a client's cache (overlay-turn.c) */
  OverlayTurn *turn;
  HarkRelay *relay; /* the SN's own TURN server while it serves (core/relay) */

  /* higher layers' listeners (overlay.h): OverlayListenerEntry* */
  GPtrArray *listeners;
  guint next_listener;
};

/* overlay.c */
guint64 hark_overlay_next_id(HarkOverlay *overlay);
/* A timeout on the node's context; returns its id. */
guint hark_overlay_add_timer(HarkOverlay *overlay, guint ms, GSourceFunc func, gpointer data);
/* Destroys the source *source (an id on the node's context) if any; *source = 0. */
void hark_overlay_clear_source(HarkOverlay *overlay, guint *source);
/* Once per run: the login client's background sync, when the node has a way to the
 * login server (attached) or gave up waiting for one. */
void hark_overlay_sync_login(HarkOverlay *overlay);
void hark_overlay_save_cache(HarkOverlay *overlay);
Peer *hark_overlay_add_peer(HarkOverlay *overlay, HarkLink *link, PeerKind kind);
void hark_overlay_drop_peer(HarkOverlay *overlay, Peer *peer, const char *why);
Peer *hark_overlay_peer_of(HarkOverlay *overlay, HarkLink *link);
/* Admission slots: an accepted link holds one from accept until its JOIN is handled or
 * it goes, whichever comes first. take: FALSE (counted, logged) when the caps are
 * reached; release is idempotent. */
gboolean hark_overlay_admit(HarkOverlay *overlay, Peer *peer);
void hark_overlay_release_admission(HarkOverlay *overlay, Peer *peer);
/* Logs (g_message, rate-limited for floods) and counts one dropped message. */
void hark_overlay_note_drop(HarkOverlay *overlay, guint64 *counter, const char *format, ...)
  G_GNUC_PRINTF(3, 4);
void hark_overlay_emit(HarkOverlay *overlay, const char *event, JsonObject *data);
/* "ip:port" of an inet socket address, "?" for anything else (new). */
char *hark_overlay_address_text(GSocketAddress *address);
/* Registered transports of the given flags, best rank first (HarkRegistration*). */
GPtrArray *hark_overlay_transports(HarkOverlay *overlay, guint32 flags);
const HarkRegistration *hark_overlay_transport(HarkOverlay *overlay, const char *name);
/* Answers a PING, notes the round trip of a PONG; TRUE when it was a PING or PONG. */
gboolean hark_overlay_handle_keepalive(HarkOverlay *overlay, Peer *peer,
                                       const HarkWireMessage *message);
/* SN lists: a(sqas) <-> host cache. */
GVariant *hark_overlay_sn_list(HarkOverlay *overlay, const char *except_host, guint16 except_port);
/* A peer's list (SN_LIST, JOIN_OK.sns, REDIRECT; a(sqas)) from the peer at address from:
 * the first HARK_ADDRESS_LIST_MAX entries are checked, the good ones learnt (unverified,
 * counted against from's share) and returned (HarkHostCacheEntry*); the rest is
 * counted as `unexpected`. */
GPtrArray *hark_overlay_learn_sn_list(HarkOverlay *overlay, GVariant *list, const char *from);
gboolean hark_overlay_send_error(Peer *peer, guint64 id, guint code, const char *text);
char *hark_overlay_peer_describe(Peer *peer);
/* Peer-supplied text for a log line or a stored name: escaped and bounded (new). */
char *hark_overlay_peer_text(const char *text);

/* overlay-keepalive.c */
typedef enum {
  KEEPALIVE_WAIT, /* nothing to do before *next */
  KEEPALIVE_PROBE, /* send a PING now */
  KEEPALIVE_DEAD, /* the PING at *probe_at went unanswered: the SN is gone */
} OverlayKeepaliveAction;
/* The client's keep-alive decision at now (all monotonic µs): last_in and last_out are
 * the SN link's last message each way, *probe_at the unanswered PING's time (0: none;
 * cleared once anything arrived after it). A PING after silence_us without a message in
 * either direction; the SN is dead when nothing arrived timeout_us after the PING.
 * *next: when to decide again (after WAIT and PROBE). */
OverlayKeepaliveAction hark_overlay_keepalive_step(gint64 silence_us, gint64 timeout_us,
                                                   gint64 last_in, gint64 last_out,
                                                   gint64 *probe_at, gint64 now, gint64 *next);
/* How long an SN keeps a client it hears nothing from: keepalive + 2 x keepalive_timeout,
 * with keepalive at least keepalive_floor (clients PING no more often than that). */
gint64 hark_overlay_client_silence_limit_us(const HarkConfig *config);
/* The client's silence before a PING, in s: its own keepalive, or the SN's JOIN_OK value
 * (sn_s, 0: none) when smaller, but never an SN's value below keepalive_floor. */
guint hark_overlay_keepalive_choose(const HarkConfig *config, guint32 sn_s);
/* The client's watch over its SN link (attached) and its end. */
void hark_overlay_keepalive_start(HarkOverlay *overlay);
void hark_overlay_keepalive_stop(HarkOverlay *overlay);
/* The SN's sweep of silent clients, while it serves. */
void hark_overlay_keepalive_serve_start(HarkOverlay *overlay);
void hark_overlay_keepalive_serve_stop(HarkOverlay *overlay);

/* overlay-listeners.c: the higher layers' listeners (overlay.h). message: TRUE when one
 * of them handled it. */
gboolean hark_overlay_listeners_message(HarkOverlay *overlay, Peer *peer,
                                        const HarkWireMessage *message);
void hark_overlay_listeners_event(HarkOverlay *overlay, const char *event, JsonObject *details);
void hark_overlay_listeners_link_closed(HarkOverlay *overlay, Peer *peer);
void hark_overlay_listeners_free(HarkOverlay *overlay);

/* overlay-join.c */
void hark_overlay_join_start(HarkOverlay *overlay);
/* A PROBE with this id, padded to OVERLAY_PROBE_SIZE (new). */
GBytes *hark_overlay_probe_encode(HarkOverlay *overlay, guint64 id);
void hark_overlay_join_free(HarkJoin *join);
/* A message on a link this join opened. */
void hark_overlay_join_message(HarkJoin *join, Peer *peer, const HarkWireMessage *message);
void hark_overlay_join_link_closed(HarkJoin *join, Peer *peer, const GError *error);
void hark_overlay_join_link_up(HarkJoin *join, Peer *peer);
JsonArray *hark_overlay_join_describe(HarkJoin *join);
/* The SN link is gone: find another within the join's bounds. */
void hark_overlay_sn_lost(HarkOverlay *overlay, const char *why);
/* Our certificate changed (login, renewal, logout): prove it on the SN link. */
void hark_overlay_send_auth(HarkOverlay *overlay, Peer *peer);
/* Move the SN link to another transport (the `transport` command). */
void hark_overlay_switch_transport(HarkOverlay *overlay, const char *transport,
                                   HarkCommandCall *call);
void hark_overlay_client_message(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message);

/* overlay-serve.c */
void hark_overlay_link_accepted(HarkLink *link, gpointer data);
void hark_overlay_datagram_received(const char *transport, GSocketAddress *from, GBytes *datagram,
                                    gpointer data);
void hark_overlay_serve_message(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message);
void hark_overlay_check_eligibility(HarkOverlay *overlay);
/* One datagram through a datagram transport (failures are logged at debug level). */
void hark_overlay_send_datagram(HarkOverlay *overlay, const char *transport, GSocketAddress *to,
                                GBytes *bytes);
void hark_overlay_sn_peer_closed(HarkOverlay *overlay, Peer *peer);
/* Names of the transports this node listens on (NULL-terminated, new). */
char **hark_overlay_own_transports(HarkOverlay *overlay);
/* A link to another SN that we opened is up: send our JOIN as a peer. */
void hark_overlay_sn_link_up(HarkOverlay *overlay, Peer *peer);
void hark_overlay_stop_serving(HarkOverlay *overlay, const char *why);
/* The listeners' "sn-peer-linked" (a peer just became a verified SN) and
 * "sn-peer-link-failed" (a link we opened to an SN failed before it was one). */
void hark_overlay_sn_peer_ready(HarkOverlay *overlay, Peer *peer);
void hark_overlay_sn_link_failed(HarkOverlay *overlay, const char *host, guint16 port,
                                 const char *why);

/* overlay-verify.c */
/* A JOIN as a peer was accepted (PEER_SN, SN_CLAIMED): check the claimed address. */
void hark_overlay_verify_claim(HarkOverlay *overlay, Peer *peer);
/* Why this device may not open another peer link (OVERLAY_SN_LINKS_PER_DEVICE), or NULL. */
const char *hark_overlay_verify_device_limit(HarkOverlay *overlay,
                                             const HarkDeviceCertificate *cert);
/* A link we opened to an SN became PEER_SN: it is verified, and so are claims it proves. */
void hark_overlay_verify_opened(HarkOverlay *overlay, Peer *peer);
/* PEER_PROBE: its TLS is up / it closed or failed. */
void hark_overlay_verify_probe_up(HarkOverlay *overlay, Peer *peer);
void hark_overlay_verify_probe_closed(HarkOverlay *overlay, Peer *peer, const char *why);
/* A peer with SN rights: PEER_SN and verified. */
gboolean hark_overlay_is_verified_sn(Peer *peer);

/* overlay-stun.c */
void hark_overlay_stun_start(HarkOverlay *overlay);
void hark_overlay_stun_stop(HarkOverlay *overlay);
/* A STUN datagram that came to the udp transport's port. */
void hark_overlay_stun_datagram(HarkOverlay *overlay, GSocketAddress *from, GBytes *datagram);
/* STUN_RELAY from an SN peer. */
void hark_overlay_stun_relay(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message);
guint16 hark_overlay_stun_alt_port(HarkOverlay *overlay);
const char *hark_overlay_stun_udp_address(HarkOverlay *overlay);
JsonObject *hark_overlay_stun_describe(HarkOverlay *overlay);

/* overlay-nat.c */
void hark_overlay_nat_start(HarkOverlay *overlay);
void hark_overlay_nat_free(HarkOverlay *overlay);
/* The `nat` command's answer. */
JsonObject *hark_overlay_nat_describe(HarkOverlay *overlay);
/* `nat probe`: answered with the new result when the probe ends. */
void hark_overlay_nat_probe(HarkOverlay *overlay, HarkCommandCall *call);

/* overlay-turn.c */
/* supernode.turn_*: the secret file read (refused unless 0600 or stricter); a node with
 * no TURN server gets its client side only. NULL with an error. */
OverlayTurn *hark_overlay_turn_new(const HarkConfig *config, GError **error);
void hark_overlay_turn_free(HarkOverlay *overlay);
/* SN side: a client's TURN_REQUEST. */
void hark_overlay_turn_serve(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message);
/* Client side: TRUE when message (TURN_CREDENTIALS or ERROR) answers our TURN_REQUEST. */
gboolean hark_overlay_turn_client_message(HarkOverlay *overlay, const HarkWireMessage *message);
/* The SN link is gone: requests waiting on it fail, its credentials are forgotten. */
void hark_overlay_turn_link_lost(HarkOverlay *overlay);
/* {"server": "IP:PORT" or null, "tcp", "lifetime_s"} for `overlay`. */
JsonObject *hark_overlay_turn_describe(HarkOverlay *overlay);
/* The SN's own TURN server, started when it becomes an SN (supernode.relay, and no
 * supernode.turn_server) and stopped when it stops serving: its credentials then name it. */
void hark_overlay_turn_relay_start(HarkOverlay *overlay);
void hark_overlay_turn_relay_stop(HarkOverlay *overlay);
/* An accepted link whose first bytes are not framing (HarkLinkHandler.foreign): TRUE
 * when they are a STUN header on the tls443 transport and the SN's relay took the
 * stream (TURN over TLS on the web port). */
gboolean hark_overlay_turn_foreign(HarkOverlay *overlay, Peer *peer, const guint8 *data,
                                   gsize size);
/* The port of the SN's tls443 transport when its relay takes TURN there (JOIN_OK's
 * "turn_web_port"), 0 when not. */
guint16 hark_overlay_turn_web_port(HarkOverlay *overlay);
/* Client: what its SN's JOIN_OK said (0: nothing); credentials from it then carry it. */
void hark_overlay_turn_set_sn_web_port(HarkOverlay *overlay, guint16 port);
/* The peer's link ends: so does its relayed stream, if it has one. */
void hark_overlay_turn_stream_end(Peer *peer);
/* Steering (SN side): a TURN_FORWARD from a peer (served from this SN's own relay only);
 * TRUE when message (TURN_CREDENTIALS or ERROR from an SN peer) answers one of ours;
 * a link went: forwards for its client end, those waiting on it ask the next SN. */
void hark_overlay_turn_serve_forward(HarkOverlay *overlay, Peer *peer,
                                     const HarkWireMessage *message);
gboolean hark_overlay_turn_forward_answer(HarkOverlay *overlay, Peer *peer,
                                          const HarkWireMessage *message);
void hark_overlay_turn_peer_gone(HarkOverlay *overlay, Peer *peer);

/* overlay-tunnel.c */
/* Node side: a loopback SOCKS5 endpoint whose streams go through the SN link; the login
 * client uses it when the login server cannot be reached directly. */
void hark_overlay_tunnel_client_start(HarkOverlay *overlay);
void hark_overlay_tunnel_client_free(HarkOverlay *overlay);
void hark_overlay_tunnel_client_message(HarkOverlay *overlay, const HarkWireMessage *message);
void hark_overlay_tunnel_client_link_lost(HarkOverlay *overlay);
/* SN side: TUNNEL_OPEN/DATA/CLOSE from a peer. */
void hark_overlay_tunnel_serve(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message);
void hark_overlay_tunnel_serve_close_all(Peer *peer);

G_END_DECLS
