/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-ice.h: ICE (RFC 8445) with libnice as a media transport (private to libhark):
 * one stream of one component (RTP and RTCP muxed), gathering host, server-reflexive
 * (STUN at the super node) and relayed (TURN, over UDP or TCP) candidates, on the
 * thread-default main context of its creator (the node's). The call layer exchanges
 * credentials and candidates in its signalling; the session on top only sees a
 * HarkMediaTransport. Direct UDP is preferred, then a punched (server/peer-reflexive)
 * path, then a relay; TCP only when UDP does not get through. */
#pragma once

#include "hark/media.h"

G_BEGIN_DECLS

typedef struct _HarkMediaIce HarkMediaIce;

/* Which candidates a check (or a restart) may use: `path udp|tcp|relay` of a call. */
typedef enum {
  HARK_MEDIA_ICE_PATH_ANY, /* every kind, by ICE's priorities */
  HARK_MEDIA_ICE_PATH_UDP, /* UDP only, no relay: direct or punched */
  HARK_MEDIA_ICE_PATH_TCP, /* TCP only: ICE-TCP or TURN over TCP */
  HARK_MEDIA_ICE_PATH_RELAY, /* relayed candidates only (TURN, UDP or TCP to the relay) */
} HarkMediaIcePath;

typedef enum {
  HARK_MEDIA_ICE_GATHERING, /* before the checks */
  HARK_MEDIA_ICE_CHECKING,
  HARK_MEDIA_ICE_CONNECTED, /* a pair works; packets flow (it may still improve) */
  HARK_MEDIA_ICE_FAILED, /* no pair works, or the chosen one stopped answering */
} HarkMediaIceState;

typedef struct {
  gboolean controlling; /* the caller controls */
  const char *stun_host; /* a literal IP address; NULL: no server-reflexive candidates */
  guint stun_port;
  const char *turn_host; /* a literal IP address; NULL: no relayed candidates */
  guint turn_port;
  const char *turn_username, *turn_password;
  gboolean turn_udp, turn_tcp; /* which ways to reach the TURN server (both: both) */
  /* The TURN server's web port (TURN over TCP there too; the SN's tls443 port), 0: none.
   * Used only when udp_blocked: a node whose firewall lets only the web ports out
   * reaches the relay there (docs/protocol.md, "TURN over TLS on the web port"). */
  guint turn_web_port;
  gboolean allow_loopback; /* gather 127.0.0.1 / ::1 host candidates (tests, demos) */
  gboolean ice_tcp; /* gather ICE-TCP host candidates too */
  HarkMediaIcePath path; /* what to gather and check first */
  /* controlling: in the first checks, hold the peer's relayed candidates back for a
   * second when both sides have mapped UDP (a punched pair may need a retransmitted
   * check; see media-ice.c, hold_relayed). For a side whose NAT drops a first check from
   * a new mapping (address-dependent filtering) or makes one (symmetric mapping). */
  gboolean hold_relayed;
  /* This side's UDP does not get out (its NAT probe had no answer over UDP): checks give up
   * sooner (see media-ice.c, ICE_BLOCKED_RETRANSMISSIONS). */
  gboolean udp_blocked;
} HarkMediaIceConfig;

typedef struct {
  guint32 version; /* 1 */
  /* A new local candidate line (trickle): send it to the peer. */
  void (*candidate)(gpointer data, const char *line);
  /* Every local candidate is known. */
  void (*gathering_done)(gpointer data);
  void (*state_changed)(gpointer data, HarkMediaIceState state);
  /* version >= 2 (added by the ICE implementation): a restart begun while a pair carried
   * the media ended: failure NULL, the new pair carries it now; or failure says why not
   * (the new path gathered nothing, no pair worked within 15 s, every check failed), and
   * the old pair still does. */
  void (*restart_done)(gpointer data, HarkMediaIcePath path, const char *failure);
} HarkMediaIceCallbacks;

/* Makes the agent and starts gathering. Errors: a host that is not a literal address,
 * libnice refusing the stream. callbacks and data must outlive the object. */
HarkMediaIce *hark_media_ice_new(const HarkMediaIceConfig *config,
                                 const HarkMediaIceCallbacks *callbacks, gpointer data,
                                 GError **error);
HarkMediaIce *hark_media_ice_ref(HarkMediaIce *ice);
/* The last reference stops the agent. */
void hark_media_ice_unref(HarkMediaIce *ice);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMediaIce, hark_media_ice_unref)

/* This side's ufrag and password (new ones after a restart). */
const char *hark_media_ice_local_ufrag(HarkMediaIce *ice);
const char *hark_media_ice_local_pwd(HarkMediaIce *ice);
/* The local candidate lines gathered so far (char*, a new array). */
GPtrArray *hark_media_ice_local_candidates(HarkMediaIce *ice);

/* The peer's credentials; the checks start once they and a candidate are known. */
gboolean hark_media_ice_set_remote_credentials(HarkMediaIce *ice, const char *ufrag,
                                               const char *pwd, GError **error);
/* A peer's candidate line: refused with an error when it does not parse, has absurd
 * values, or is of a kind the current path excludes (then it is not an error: FALSE
 * with no error set means "ignored"). */
gboolean hark_media_ice_add_remote_candidate(HarkMediaIce *ice, const char *line, GError **error);
void hark_media_ice_remote_gathering_done(HarkMediaIce *ice);
/* How many of the peer's candidates and credentials were refused as absurd (added to the
 * header by the ICE implementation, for a call's statistics). */
guint64 hark_media_ice_refused_candidates(HarkMediaIce *ice);

HarkMediaIceState hark_media_ice_get_state(HarkMediaIce *ice);

/* An ICE restart limited to path: new local credentials and candidates (announced
 * through the callbacks); the media keeps flowing on the old pair until the new one
 * works.
 * (Notes from the implementation.) The callbacks of a new agent or generation never run
 * inside the call that made it but from the main loop, so the new ufrag and password
 * (hark_media_ice_local_ufrag/pwd) can be signalled before its candidate lines. The
 * other side passes the new credentials to hark_media_ice_set_remote_credentials: new
 * credentials mean a restart of the peer, so it restarts too (on the newest path it was
 * given) and must then signal its own new ufrag and password, read the same way; or it
 * calls hark_media_ice_restart itself first, and the credentials go to that
 * generation. Candidate lines belong to the newest remote credentials. */
gboolean hark_media_ice_restart(HarkMediaIce *ice, HarkMediaIcePath path, GError **error);

/* The STUN and TURN servers of the generations made from now on (restarts), from the
 * stun_* and turn_* fields of servers (the others are not read): the node moved to another
 * super node, and its relay goes with it. Errors as hark_media_ice_new's for them; then
 * the old servers stay. */
gboolean hark_media_ice_set_servers(HarkMediaIce *ice, const HarkMediaIceConfig *servers,
                                    GError **error);

/* The selected pair, for a call's statistics: kind "host", "punched" (server- or
 * peer-reflexive), "relayed"; transport "udp" or "tcp"; the two addresses. */
typedef struct {
  char kind[16];
  char transport[8];
  char local[64], remote[64]; /* "ip:port" */
  gboolean local_relayed; /* the local candidate is relayed: our TURN server carries it */
} HarkMediaIcePathInfo;
/* FALSE before a pair is selected. */
gboolean hark_media_ice_get_path(HarkMediaIce *ice, HarkMediaIcePathInfo *info);

/* A transport over the selected pair for a media session: it holds a reference on ice;
 * packets from anything but the selected pair's remote are dropped (libnice delivers
 * only what came on a validated pair). */
HarkMediaTransport *hark_media_ice_new_transport(HarkMediaIce *ice);

G_END_DECLS
