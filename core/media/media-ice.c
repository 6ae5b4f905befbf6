/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-ice.c: ICE with libnice as a media transport (media-ice.h).
 *
 * Each generation of credentials is a NiceAgent of its own with one stream of one
 * component (RTP and RTCP muxed). A restart makes a new generation, gathering only what
 * the new path allows (libnice gathers once per stream, and "force-relay" or "ice-udp"
 * are properties of the whole agent), while the media keeps going over the old
 * generation's pair; the new one takes over once its pair is selected, and the old agent
 * is closed then. Everything runs on the creator's thread-default main context; only
 * the transport's send path runs on the session's streaming threads, under a lock. */
#include "media-ice.h"

#include <agent.h>
#include <interfaces.h>
#include <string.h>

#include "media-session.h"

/* A peer announces at most this many candidates per generation: a real host has a few
 * interfaces times UDP/TCP, plus one reflexive and two relayed ones. */
#define ICE_MAX_REMOTE_CANDIDATES 32
/* Longer than any candidate line libnice writes (foundation, address, ports, tcptype). */
#define ICE_MAX_LINE 512
/* A restart that found no working pair by then is given up (the old pair stays). */
#define ICE_RESTART_TIMEOUT_MS 15000
#define ICE_PACING_MS 5 /* between two connectivity checks (libnice: 20) */
/* How long a call's first checks go on without the peer's relayed candidates when a
 * punched path may work (hold_relayed): longer than libnice's first retransmission of a
 * check (its RTO floor, 500 ms) and a round trip. */
#define ICE_RELAY_HOLD_MS 1000
/* On a side whose UDP does not get out (config.udp_blocked): its UDP host candidate is
 * paired with the peer's addresses, and so are its ICE-TCP ones with the peer's private
 * and NAT-mapped TCP addresses (a SYN a NAT drops); those pairs rank above the relayed
 * pair that works, which regular nomination (ICE-TCP's) takes only once they have failed
 * when it is the only valid pair (both sides UDP-blocked). libnice gives a UDP check up
 * after 0.5 + 1 + 2 s at its 3 retransmissions (its RTO floor is 500 ms), after 0.5 s at
 * 1, and a TCP check after its reliable timeout, 2 s; 1 s still leaves a TCP handshake
 * and a check a round trip of up to half a second. Gathering requests use them too. */
#define ICE_BLOCKED_RETRANSMISSIONS 1
#define ICE_BLOCKED_RELIABLE_TIMEOUT_MS 1000

typedef struct _Generation Generation;

struct _Generation {
  HarkMediaIce *ice; /* not a reference: the generation lives inside it */
  NiceAgent *agent;
  guint stream;
  HarkMediaIcePath path;
  char *ufrag, *pwd;
  char *remote_ufrag; /* NULL until the peer's credentials came */
  guint remote_candidates;
  GPtrArray *local_lines; /* char* */
  guint announced; /* local_lines[0..announced) went to the callbacks */
  gboolean gathered, gathered_announced;
  gboolean hold; /* while made: the callbacks run from an idle, not inside the caller */
  gboolean selected; /* a pair is selected (libnice sends on it) */
  gboolean relay_tcp_only; /* every relayed candidate reaches its server over TCP */
  NiceComponentState nice_state;
  GSource *timeout; /* a restart's limit */
  gboolean peer_mapped; /* the peer gave a UDP candidate a NAT mapped, or a public host one */
  GSList *held; /* NiceCandidate*: the peer's relayed candidates, held back (hold_relayed) */
  GSource *release; /* when they go to libnice */
  gboolean eoc_held; /* the peer's end of candidates, given to libnice with them */
};

struct _HarkMediaIce {
  gint refs;
  HarkMediaIceConfig config; /* strings our own copies */
  const HarkMediaIceCallbacks *callbacks;
  gpointer data;
  GMainContext *context;
  GMutex lock; /* active and next: the streaming threads send on active */
  Generation *active; /* carries the media */
  Generation *next; /* a restart under way; NULL when none */
  HarkMediaIceState state;
  HarkMediaReceiveFunc receive;
  gpointer receive_data;
  guint64 refused; /* remote candidates refused as absurd */
  gint64 peer_restart_at; /* monotonic µs of the last restart the peer's credentials began */
  /* The last packet sent before the first pair was selected: it goes the moment one is,
   * so audio starts then and not a frame later (a session may start while ICE checks). */
  GBytes *early;
};

static void generation_free(Generation *g);
static void drop_next(HarkMediaIce *ice, const char *failure);

static HarkMediaIceState
state_from_nice(NiceComponentState s)
{
  switch (s) {
  case NICE_COMPONENT_STATE_CONNECTING:
    return HARK_MEDIA_ICE_CHECKING;
  case NICE_COMPONENT_STATE_CONNECTED:
  case NICE_COMPONENT_STATE_READY:
    return HARK_MEDIA_ICE_CONNECTED;
  case NICE_COMPONENT_STATE_FAILED:
    return HARK_MEDIA_ICE_FAILED;
  default:
    return HARK_MEDIA_ICE_GATHERING;
  }
}

static const char *
path_name(HarkMediaIcePath path)
{
  switch (path) {
  case HARK_MEDIA_ICE_PATH_UDP:
    return "udp";
  case HARK_MEDIA_ICE_PATH_TCP:
    return "tcp";
  case HARK_MEDIA_ICE_PATH_RELAY:
    return "relay";
  default:
    return "any";
  }
}

static Generation *
newest(HarkMediaIce *ice)
{
  return ice->next != NULL ? ice->next : ice->active;
}

static void
set_state(HarkMediaIce *ice, HarkMediaIceState state)
{
  if (ice->state == state)
    return;
  ice->state = state;
  if (ice->callbacks->state_changed != NULL)
    ice->callbacks->state_changed(ice->data, state);
}

/* Hand the lines gathered since the last call (and the end of gathering) to the owner. */
static void
generation_announce(Generation *g)
{
  HarkMediaIce *ice = g->ice;
  while (g->announced < g->local_lines->len) {
    const char *line = g_ptr_array_index(g->local_lines, g->announced++);
    if (ice->callbacks->candidate != NULL)
      ice->callbacks->candidate(ice->data, line);
    if (g != newest(ice)) /* the callback restarted: g is gone */
      return;
  }
  if (g->gathered && !g->gathered_announced) {
    g->gathered_announced = TRUE;
    if (ice->callbacks->gathering_done != NULL)
      ice->callbacks->gathering_done(ice->data);
  }
}

static gboolean
announce_idle(gpointer data)
{
  HarkMediaIce *ice = data;
  Generation *g = newest(ice);
  if (g != NULL) {
    g->hold = FALSE;
    generation_announce(g);
  }
  return G_SOURCE_REMOVE;
}

static void
schedule_announce(HarkMediaIce *ice)
{
  GSource *idle = g_idle_source_new();
  g_source_set_callback(idle, announce_idle, hark_media_ice_ref(ice),
                        (GDestroyNotify)hark_media_ice_unref);
  g_source_attach(idle, ice->context);
  g_source_unref(idle);
}

/* ---- libnice's signals ---------------------------------------------------------------- */

/* The owner may let go of the object in a callback (a call that ends): the handlers of
 * libnice's signals hold a reference while they call out. */
static void
guarded_announce(Generation *g)
{
  HarkMediaIce *ice = hark_media_ice_ref(g->ice);
  generation_announce(g);
  hark_media_ice_unref(ice);
}

static void
on_new_candidate(NiceAgent *agent, NiceCandidate *candidate, gpointer data)
{
  Generation *g = data;
  char *sdp = nice_agent_generate_local_candidate_sdp(agent, candidate);
  if (sdp == NULL)
    return;
  /* The value of the SDP attribute, as WebRTC writes it: "candidate:..." */
  char *line = g_strdup(g_str_has_prefix(sdp, "a=") ? sdp + 2 : sdp);
  g_free(sdp);
  g_ptr_array_add(g->local_lines, line);
  if (!g->hold && g == newest(g->ice))
    guarded_announce(g);
}

static void
on_gathering_done(NiceAgent *agent, guint stream, gpointer data)
{
  Generation *g = data;
  g->gathered = TRUE;
  if (g == g->ice->next && g->local_lines->len == 0) {
    /* Nothing to check with (the relay did not answer): no reason to wait. */
    g_autofree char *failure =
      g->path == HARK_MEDIA_ICE_PATH_RELAY
        ? g_strdup("the relay path gathered no candidate (the TURN server did not answer)")
        : g_strdup_printf("the %s path gathered no candidate", path_name(g->path));
    HarkMediaIce *ice = hark_media_ice_ref(g->ice); /* the owner may let go in restart_done */
    drop_next(ice, failure); /* frees g */
    hark_media_ice_unref(ice);
    return;
  }
  if (!g->hold && g == newest(g->ice))
    guarded_announce(g);
}

static void
agent_close_done(GObject *source, GAsyncResult *result, gpointer data)
{
  g_object_unref(source);
}

static void
restart_done(HarkMediaIce *ice, HarkMediaIcePath path, const char *failure)
{
  if (ice->callbacks->version >= 2 && ice->callbacks->restart_done != NULL)
    ice->callbacks->restart_done(ice->data, path, failure);
}

/* The restart's pair works (or the old one died): media moves to the new generation,
 * the old agent goes (its TURN allocations are released by nice_agent_close_async). */
static void
promote_next(HarkMediaIce *ice)
{
  g_mutex_lock(&ice->lock);
  Generation *old = ice->active;
  ice->active = ice->next;
  ice->next = NULL;
  g_mutex_unlock(&ice->lock);
  if (ice->active->timeout != NULL) {
    g_source_destroy(ice->active->timeout);
    g_clear_pointer(&ice->active->timeout, g_source_unref);
  }
  g_message("ICE restart: the %s path took over", path_name(ice->active->path));
  generation_free(old);
}

/* A restart given up: the old pair carries on. failure: why, for the log and the owner
 * (NULL: a restart that gives way to another, told nothing). */
static void
drop_next(HarkMediaIce *ice, const char *failure)
{
  g_mutex_lock(&ice->lock);
  Generation *g = ice->next;
  ice->next = NULL;
  g_mutex_unlock(&ice->lock);
  if (g == NULL)
    return;
  HarkMediaIcePath path = g->path;
  generation_free(g);
  if (failure == NULL)
    return;
  g_message("ICE restart: %s; the media stays on the old pair", failure);
  restart_done(ice, path, failure);
}

static gboolean
on_restart_timeout(gpointer data)
{
  HarkMediaIce *ice = data;
  g_autofree char *failure =
    g_strdup_printf("no pair of the %s path worked within %d s", path_name(ice->next->path),
                    ICE_RESTART_TIMEOUT_MS / 1000);
  g_clear_pointer(&ice->next->timeout, g_source_unref); /* destroyed by returning REMOVE */
  hark_media_ice_ref(ice);
  drop_next(ice, failure);
  hark_media_ice_unref(ice);
  return G_SOURCE_REMOVE;
}

static void
take_over(HarkMediaIce *ice)
{
  HarkMediaIcePath path = ice->next->path;
  promote_next(ice);
  set_state(ice, state_from_nice(ice->active->nice_state));
  restart_done(ice, path, NULL);
}

static void
state_changed(Generation *g, NiceComponentState state);

static void
on_state_changed(NiceAgent *agent, guint stream, guint component, guint state, gpointer data)
{
  Generation *g = data;
  HarkMediaIce *ice = hark_media_ice_ref(g->ice);
  state_changed(g, state);
  hark_media_ice_unref(ice);
}

static void
state_changed(Generation *g, NiceComponentState state)
{
  HarkMediaIce *ice = g->ice;
  g->nice_state = state;
  HarkMediaIceState s = state_from_nice(state);
  if (g == ice->active) {
    if (s == HARK_MEDIA_ICE_FAILED && ice->next != NULL) {
      /* The old pair died during a restart: the new checks are all there is. */
      g_message("ICE: the old pair failed during a restart");
      promote_next(ice);
      set_state(ice, state_from_nice(ice->active->nice_state));
      return;
    }
    set_state(ice, s);
    return;
  }
  /* A restart's generation: it only shows when it takes over or fails. */
  if (s == HARK_MEDIA_ICE_CONNECTED && g->selected) {
    take_over(ice);
  } else if (s == HARK_MEDIA_ICE_FAILED) {
    g_autofree char *failure =
      g_strdup_printf("every check of the %s path failed", path_name(g->path));
    drop_next(ice, failure); /* frees g: nothing after this */
  }
}

static void
on_selected_pair(NiceAgent *agent, guint stream, guint component, NiceCandidate *local,
                 NiceCandidate *remote, gpointer data)
{
  Generation *g = data;
  HarkMediaIce *ice = g->ice;
  g_mutex_lock(&ice->lock);
  g->selected = TRUE;
  if (g == ice->active && ice->early != NULL) {
    gsize length = 0;
    const gchar *early = g_bytes_get_data(ice->early, &length);
    nice_agent_send(g->agent, g->stream, NICE_COMPONENT_TYPE_RTP, length, early);
  }
  g_clear_pointer(&ice->early, g_bytes_unref);
  g_mutex_unlock(&ice->lock);
  if (g == ice->next && state_from_nice(g->nice_state) == HARK_MEDIA_ICE_CONNECTED) {
    hark_media_ice_ref(ice);
    take_over(ice);
    hark_media_ice_unref(ice);
  }
}

static void
on_receive(NiceAgent *agent, guint stream, guint component, guint length, gchar *buffer,
           gpointer data)
{
  Generation *g = data;
  HarkMediaIce *ice = g->ice;
  if (ice->receive != NULL) {
    hark_media_ice_ref(ice);
    ice->receive((const guint8 *)buffer, length, ice->receive_data);
    hark_media_ice_unref(ice);
  }
}

/* ---- generations ---------------------------------------------------------------------- */

static void
generation_free(Generation *g)
{
  if (g == NULL)
    return;
  if (g->timeout != NULL) {
    g_source_destroy(g->timeout);
    g_source_unref(g->timeout);
  }
  if (g->release != NULL) {
    g_source_destroy(g->release);
    g_source_unref(g->release);
  }
  g_slist_free_full(g->held, (GDestroyNotify)nice_candidate_free);
  g_signal_handlers_disconnect_by_data(g->agent, g);
  nice_agent_attach_recv(g->agent, g->stream, NICE_COMPONENT_TYPE_RTP, g->ice->context, NULL,
                         NULL);
  nice_agent_close_async(g->agent, agent_close_done, NULL); /* the callback drops the agent */
  g_ptr_array_unref(g->local_lines);
  g_free(g->ufrag);
  g_free(g->pwd);
  g_free(g->remote_ufrag);
  g_free(g);
}

static void
set_relay_at(Generation *g, guint port, NiceRelayType type)
{
  const HarkMediaIceConfig *c = &g->ice->config;
  nice_agent_set_relay_info(g->agent, g->stream, NICE_COMPONENT_TYPE_RTP, c->turn_host, port,
                            c->turn_username ? c->turn_username : "",
                            c->turn_password ? c->turn_password : "", type);
}

static void
set_relay(Generation *g, NiceRelayType type)
{
  set_relay_at(g, g->ice->config.turn_port, type);
}

/* A path over TCP goes through the relay when the relay is reached over TCP, and
 * otherwise over ICE-TCP between the hosts. */
static gboolean
path_is_ice_tcp(const HarkMediaIceConfig *c, HarkMediaIcePath path)
{
  return path == HARK_MEDIA_ICE_PATH_TCP && !(c->turn_host != NULL && c->turn_tcp);
}

/* What a path gathers. libnice finds relayed candidates (over UDP or TCP to the server)
 * from its UDP host candidates only, so a relay needs "ice-udp"; "force-relay" then keeps
 * the host and reflexive ones out of the checks and the announcements. */
static gboolean
generation_configure(Generation *g, GError **error)
{
  const HarkMediaIceConfig *c = &g->ice->config;
  gboolean turn = c->turn_host != NULL;
  gboolean udp = TRUE, tcp = c->ice_tcp, force_relay = FALSE, stun = c->stun_host != NULL;
  gboolean turn_udp = turn && (c->turn_udp || !c->turn_tcp), turn_tcp = turn && c->turn_tcp;
  switch (g->path) {
  case HARK_MEDIA_ICE_PATH_ANY:
    break;
  case HARK_MEDIA_ICE_PATH_UDP:
    tcp = turn_udp = turn_tcp = FALSE;
    break;
  case HARK_MEDIA_ICE_PATH_TCP:
    if (path_is_ice_tcp(c, g->path)) {
      udp = stun = turn_udp = turn_tcp = FALSE;
      tcp = TRUE;
    } else { /* every packet over TCP to the relay */
      force_relay = TRUE;
      tcp = stun = turn_udp = FALSE;
    }
    break;
  case HARK_MEDIA_ICE_PATH_RELAY:
    if (!turn) {
      g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                  "ICE: a relayed path needs a TURN server");
      return FALSE;
    }
    force_relay = TRUE;
    tcp = stun = FALSE;
    break;
  }
  g_object_set(g->agent, "controlling-mode", c->controlling, "ice-udp", udp, "ice-tcp", tcp,
               "force-relay", force_relay, NULL);
  /* Checks paced at ICE_PACING_MS, not libnice's 20 ms (RFC 5245's floor for a
   * stream's own rate): a call has a handful of pairs, and with aggressive nomination
   * the pair is nominated on its next check, so the pace is what a call waits for. */
  g_object_set(g->agent, "stun-pacing-timer", ICE_PACING_MS, NULL);
  if (c->udp_blocked)
    g_object_set(g->agent, "stun-max-retransmissions", ICE_BLOCKED_RETRANSMISSIONS,
                 "stun-reliable-timeout", ICE_BLOCKED_RELIABLE_TIMEOUT_MS, NULL);
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(g->agent), "upnp") != NULL)
    g_object_set(g->agent, "upnp", FALSE, NULL); /* no router probing: it only delays */
  if (stun)
    g_object_set(g->agent, "stun-server", c->stun_host, "stun-server-port", c->stun_port, NULL);
  if (turn_udp)
    set_relay(g, NICE_RELAY_TYPE_TURN_UDP);
  if (turn_tcp)
    set_relay(g, NICE_RELAY_TYPE_TURN_TCP);
  /* UDP does not get out: the relay's web port may, where only the web ports do. TURN
   * over plain TCP there (libnice's TURN_TLS is plain TCP in RFC 5245 mode too). */
  gboolean web = turn && c->udp_blocked && c->turn_web_port != 0 &&
                 c->turn_web_port != c->turn_port && g->path != HARK_MEDIA_ICE_PATH_UDP;
  if (web)
    set_relay_at(g, c->turn_web_port, NICE_RELAY_TYPE_TURN_TCP);
  g->relay_tcp_only = (turn_tcp || web) && !turn_udp;
  return TRUE;
}

/* libnice leaves loopback out of its host candidates, and any address given explicitly
 * replaces its own list: so the loopback comes with the ordinary addresses. */
static void
add_local_addresses(NiceAgent *agent)
{
  GList *ips = nice_interfaces_get_local_ips(FALSE);
  ips = g_list_prepend(ips, g_strdup("127.0.0.1"));
  for (GList *l = ips; l != NULL; l = l->next) {
    NiceAddress address;
    nice_address_init(&address);
    if (nice_address_set_from_string(&address, l->data))
      nice_agent_add_local_address(agent, &address);
  }
  g_list_free_full(ips, g_free);
}

static Generation *
generation_new(HarkMediaIce *ice, HarkMediaIcePath path, GError **error)
{
  Generation *g = g_new0(Generation, 1);
  g->ice = ice;
  g->path = path;
  g->hold = TRUE;
  g->local_lines = g_ptr_array_new_with_free_func(g_free);
  /* Consent freshness (RFC 7675): a pair whose far end stopped answering turns FAILED
   * (after 30 s) instead of being kept alive by indications nobody answers. libnice
   * before 0.1.22 gives up after 10 s: two checks lost in a row (4-6 s apart, not
   * retransmitted), which a link that drops most packets until the codec has stepped
   * down to fit it (docs/protocol.md "A link too narrow") does more often than not.
   * There the pair is kept by binding requests that need answers instead
   * (keepalive-conncheck: the same checks, given up after 50 s), and a call whose far
   * end is gone ends sooner by its session's `silent` (7 s without an authenticated
   * packet, a proof of the far end's consent no stranger can forge). */
  NiceAgentOption options = NICE_AGENT_OPTION_ICE_TRICKLE;
  if (HARK_NICE_CONSENT_TIMEOUT_S >= 30)
    options |= NICE_AGENT_OPTION_CONSENT_FRESHNESS;
  /* ICE-TCP needs regular nomination (RFC 6544). libnice switches to it when the first
   * TCP candidate arrives, but only if no check has started: in a restart the peer's
   * checks often come before its trickled candidates, and libnice then drops them all,
   * leaving a pair with a peer-reflexive candidate it cannot name a host for. */
  if (path_is_ice_tcp(&ice->config, path))
    options |= NICE_AGENT_OPTION_REGULAR_NOMINATION;
  g->agent = nice_agent_new_full(ice->context, NICE_COMPATIBILITY_RFC5245, options);
  if (!(options & NICE_AGENT_OPTION_CONSENT_FRESHNESS))
    g_object_set(g->agent, "keepalive-conncheck", TRUE, NULL);
  if (ice->config.allow_loopback)
    add_local_addresses(g->agent);
  g->stream = nice_agent_add_stream(g->agent, 1);
  if (g->stream == 0) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "ICE: libnice refused the stream");
    goto fail;
  }
  if (!generation_configure(g, error))
    goto fail;
  g_signal_connect(g->agent, "new-candidate-full", G_CALLBACK(on_new_candidate), g);
  g_signal_connect(g->agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), g);
  g_signal_connect(g->agent, "component-state-changed", G_CALLBACK(on_state_changed), g);
  g_signal_connect(g->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), g);
  nice_agent_attach_recv(g->agent, g->stream, NICE_COMPONENT_TYPE_RTP, ice->context, on_receive,
                         g);
  if (!nice_agent_get_local_credentials(g->agent, g->stream, &g->ufrag, &g->pwd) ||
      !nice_agent_gather_candidates(g->agent, g->stream)) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "ICE: libnice could not gather candidates (no usable local address?)");
    goto fail;
  }
  return g;
fail:
  g_signal_handlers_disconnect_by_data(g->agent, g);
  g_object_unref(g->agent);
  g_ptr_array_unref(g->local_lines);
  g_free(g->ufrag);
  g_free(g->pwd);
  g_free(g);
  return NULL;
}

/* ---- the object ----------------------------------------------------------------------- */

static gboolean
check_host(const char *what, const char *host, GError **error)
{
  if (host == NULL || g_hostname_is_ip_address(host))
    return TRUE;
  g_autofree char *escaped = g_strescape(host, NULL);
  g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
              "ICE: the %s server \"%s\" is not a literal IP address", what, escaped);
  return FALSE;
}

/* The STUN and TURN servers of config: literal addresses, with ports. */
static gboolean
check_servers(const HarkMediaIceConfig *config, GError **error)
{
  if (!check_host("STUN", config->stun_host, error) ||
      !check_host("TURN", config->turn_host, error))
    return FALSE;
  if ((config->stun_host != NULL && (config->stun_port == 0 || config->stun_port > 65535)) ||
      (config->turn_host != NULL &&
       (config->turn_port == 0 || config->turn_port > 65535 || config->turn_web_port > 65535))) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "ICE: a STUN or TURN server without a valid port");
    return FALSE;
  }
  return TRUE;
}

static void
free_servers(HarkMediaIceConfig *c)
{
  g_free((char *)c->stun_host);
  g_free((char *)c->turn_host);
  g_free((char *)c->turn_username);
  if (c->turn_password != NULL)
    memset((char *)c->turn_password, 0, strlen(c->turn_password));
  g_free((char *)c->turn_password);
}

/* ice's copy of the servers of from (the strings its own). */
static void
copy_servers(HarkMediaIceConfig *to, const HarkMediaIceConfig *from)
{
  to->stun_host = g_strdup(from->stun_host);
  to->stun_port = from->stun_port;
  to->turn_host = g_strdup(from->turn_host);
  to->turn_port = from->turn_port;
  to->turn_username = g_strdup(from->turn_username);
  to->turn_password = g_strdup(from->turn_password);
  to->turn_udp = from->turn_udp;
  to->turn_tcp = from->turn_tcp;
  to->turn_web_port = from->turn_web_port;
}

HarkMediaIce *
hark_media_ice_new(const HarkMediaIceConfig *config, const HarkMediaIceCallbacks *callbacks,
                   gpointer data, GError **error)
{
  g_return_val_if_fail(config != NULL && callbacks != NULL, NULL);
  if (!check_servers(config, error))
    return NULL;
  HarkMediaIce *ice = g_new0(HarkMediaIce, 1);
  ice->refs = 1;
  ice->config = *config;
  copy_servers(&ice->config, config);
  ice->callbacks = callbacks;
  ice->data = data;
  ice->context = g_main_context_ref_thread_default();
  g_mutex_init(&ice->lock);
  ice->state = HARK_MEDIA_ICE_GATHERING;
  ice->active = generation_new(ice, config->path, error);
  if (ice->active == NULL) {
    hark_media_ice_unref(ice);
    return NULL;
  }
  schedule_announce(ice);
  return ice;
}

HarkMediaIce *
hark_media_ice_ref(HarkMediaIce *ice)
{
  g_atomic_int_inc(&ice->refs);
  return ice;
}

void
hark_media_ice_unref(HarkMediaIce *ice)
{
  if (ice == NULL || !g_atomic_int_dec_and_test(&ice->refs))
    return;
  generation_free(ice->next);
  generation_free(ice->active);
  g_clear_pointer(&ice->early, g_bytes_unref);
  g_mutex_clear(&ice->lock);
  g_main_context_unref(ice->context);
  free_servers(&ice->config);
  g_free(ice);
}

gboolean
hark_media_ice_set_servers(HarkMediaIce *ice, const HarkMediaIceConfig *servers, GError **error)
{
  if (!check_servers(servers, error))
    return FALSE;
  free_servers(&ice->config);
  copy_servers(&ice->config, servers);
  return TRUE;
}

const char *
hark_media_ice_local_ufrag(HarkMediaIce *ice)
{
  return newest(ice)->ufrag;
}

const char *
hark_media_ice_local_pwd(HarkMediaIce *ice)
{
  return newest(ice)->pwd;
}

GPtrArray *
hark_media_ice_local_candidates(HarkMediaIce *ice)
{
  Generation *g = newest(ice);
  GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < g->local_lines->len; i++)
    g_ptr_array_add(lines, g_strdup(g_ptr_array_index(g->local_lines, i)));
  return lines;
}

HarkMediaIceState
hark_media_ice_get_state(HarkMediaIce *ice)
{
  return ice->state;
}

guint64
hark_media_ice_refused_candidates(HarkMediaIce *ice)
{
  return ice->refused;
}

/* ---- the peer's side ------------------------------------------------------------------ */

static gboolean
credential_ok(const char *s, gsize min, gsize max)
{
  gsize n = s != NULL ? strlen(s) : 0;
  if (n < min || n > max)
    return FALSE;
  for (gsize i = 0; i < n; i++) /* ice-char: ALPHA / DIGIT / "+" / "/" (RFC 8839) */
    if (!g_ascii_isalnum(s[i]) && s[i] != '+' && s[i] != '/')
      return FALSE;
  return TRUE;
}

static gboolean
generation_set_remote(Generation *g, const char *ufrag, const char *pwd, GError **error)
{
  if (g->remote_ufrag != NULL)
    return TRUE; /* the same again: not a new generation, the count of candidates stays */
  if (!nice_agent_set_remote_credentials(g->agent, g->stream, ufrag, pwd)) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "ICE: libnice refused the peer's credentials");
    return FALSE;
  }
  g->remote_ufrag = g_strdup(ufrag);
  return TRUE;
}

gboolean
hark_media_ice_set_remote_credentials(HarkMediaIce *ice, const char *ufrag, const char *pwd,
                                      GError **error)
{
  /* RFC 8839: ufrag 4-256, pwd 22-256 ice-chars. */
  if (!credential_ok(ufrag, 4, 256) || !credential_ok(pwd, 22, 256)) {
    ice->refused++;
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "ICE: the peer's ufrag or password is not 4/22 to 256 ICE characters");
    return FALSE;
  }
  Generation *g = newest(ice);
  if (g->remote_ufrag != NULL && strcmp(g->remote_ufrag, ufrag) != 0) {
    /* The peer restarted (new credentials): so do we, on the newest path asked for. Each
     * costs an agent and a gathering: a peer gets one a second. */
    gint64 now = g_get_monotonic_time();
    if (ice->peer_restart_at != 0 && now - ice->peer_restart_at < G_USEC_PER_SEC) {
      ice->refused++;
      g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                  "ICE: the peer restarts more often than once a second");
      g_message("%s", (*error)->message);
      return FALSE;
    }
    ice->peer_restart_at = now;
    g_message("ICE: the peer restarted");
    if (!hark_media_ice_restart(ice, g->path, error))
      return FALSE;
    g = newest(ice);
  }
  return generation_set_remote(g, ufrag, pwd, error);
}

static gboolean
refuse(HarkMediaIce *ice, GError **error, const char *line, const char *why)
{
  ice->refused++;
  g_autofree char *escaped = g_strescape(line, NULL);
  if (strlen(escaped) > 120)
    escaped[120] = '\0';
  g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
              "ICE: refused the peer's candidate \"%s\": %s", escaped, why);
  g_message("%s", (*error)->message);
  return FALSE;
}

/* What the current path lets in: no relay and no TCP on a UDP path; on a TCP path
 * without a relay only the peer's TCP candidates (a relay of ours reaches anything). */
static gboolean
path_admits(Generation *g, const NiceCandidate *c)
{
  gboolean tcp = c->transport != NICE_CANDIDATE_TRANSPORT_UDP;
  switch (g->path) {
  case HARK_MEDIA_ICE_PATH_UDP:
    return !tcp && c->type != NICE_CANDIDATE_TYPE_RELAYED;
  case HARK_MEDIA_ICE_PATH_TCP:
    return tcp || g->relay_tcp_only;
  default:
    return TRUE;
  }
}

static const char *
candidate_absurd(HarkMediaIce *ice, const NiceCandidate *c)
{
  if (!nice_address_is_valid(&c->addr))
    return "no valid address";
  if (nice_address_get_port(&c->addr) == 0 && c->transport != NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE)
    return "port 0";
  if (c->component_id != NICE_COMPONENT_TYPE_RTP)
    return "not component 1 (RTP and RTCP are muxed)";
  if (c->transport > NICE_CANDIDATE_TRANSPORT_TCP_SO)
    return "unknown transport";
  if (c->type > NICE_CANDIDATE_TYPE_RELAYED)
    return "unknown type";
  char text[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&c->addr, text);
  g_autoptr(GInetAddress) a = g_inet_address_new_from_string(text);
  if (a == NULL)
    return "no valid address";
  if (g_inet_address_get_is_any(a) || g_inet_address_get_is_multicast(a) ||
      strcmp(text, "255.255.255.255") == 0)
    return "a wildcard, multicast or broadcast address";
  /* Checks to our own loopback would reach this machine's local services. */
  if (g_inet_address_get_is_loopback(a) && !ice->config.allow_loopback)
    return "a loopback address";
  return NULL;
}

/* libnice's parser reads the port into an integer without a range (70000 would become
 * 4464) and passes transports it does not know: those fields are checked here first.
 * "candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE ..." */
static const char *
fields_absurd(const char *sdp)
{
  for (const char *p = sdp; *p != '\0'; p++)
    if ((guchar)*p < 0x20 || (guchar)*p == 0x7f)
      return "a control character";
  g_auto(GStrv) f = g_strsplit(sdp, " ", 8);
  if (g_strv_length(f) < 8)
    return "not a candidate line";
  if (g_ascii_strcasecmp(f[2], "UDP") != 0 && g_ascii_strcasecmp(f[2], "TCP") != 0)
    return "unknown transport";
  guint64 port = 0;
  if (!g_ascii_string_to_unsigned(f[5], 10, 0, 65535, &port, NULL))
    return "a port that is not 0 to 65535";
  return NULL;
}

/* A UDP candidate another side's checks might reach directly: one a NAT mapped, or a
 * host candidate on a public address. */
static gboolean
is_mapped_udp(const NiceCandidate *c)
{
  if (c->transport != NICE_CANDIDATE_TRANSPORT_UDP)
    return FALSE;
  if (c->type == NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE)
    return TRUE;
  if (c->type != NICE_CANDIDATE_TYPE_HOST)
    return FALSE;
  char ip[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&c->addr, ip);
  g_autoptr(GInetAddress) a = g_inet_address_new_from_string(ip);
  return a != NULL && !g_inet_address_get_is_site_local(a) &&
         !g_inet_address_get_is_loopback(a) && !g_inet_address_get_is_link_local(a);
}

/* Our UDP gets out: gathering found a mapped or public UDP candidate (so far: where UDP
 * is blocked, the STUN request only times out, and nothing is held meanwhile). */
static gboolean
local_mapped(Generation *g)
{
  GSList *ours = nice_agent_get_local_candidates(g->agent, g->stream, NICE_COMPONENT_TYPE_RTP);
  gboolean mapped = FALSE;
  for (GSList *l = ours; l != NULL && !mapped; l = l->next)
    mapped = is_mapped_udp(l->data);
  g_slist_free_full(ours, (GDestroyNotify)nice_candidate_free);
  return mapped;
}

/* The peer's relayed candidates wait a while in a call's first checks (config.hold_relayed:
 * the controlling side's NAT may drop the peer's first punched check, or make the peer's
 * checks come from a new mapping) when both sides have UDP that a punched path could use.
 * libnice's regular nomination (ICE-TCP candidates impose it, RFC 6544) nominates the best
 * pair once two are valid, and keeps it: pairs through a relay answer within about 0.15 s,
 * while a punched pair whose first check a NAT dropped (a restricted cone's, before its
 * side had sent to the symmetric side's address) succeeds only at libnice's retransmission,
 * 0.5 s later. Not in a restart: the media flows, and a relay that carried it (a dead
 * SN's) is why. */
static gboolean
hold_relayed(Generation *g, const NiceCandidate *c)
{
  return g->ice->config.hold_relayed && c->type == NICE_CANDIDATE_TYPE_RELAYED &&
         g->path == HARK_MEDIA_ICE_PATH_ANY && g == g->ice->active && !g->selected &&
         g->peer_mapped && local_mapped(g);
}

static gboolean
add_to_agent(Generation *g, NiceCandidate *c)
{
  GSList *list = g_slist_prepend(NULL, c);
  int added = nice_agent_set_remote_candidates(g->agent, g->stream, c->component_id, list);
  g_slist_free(list);
  return added >= 1;
}

static gboolean
on_release(gpointer data)
{
  Generation *g = data;
  g_clear_pointer(&g->release, g_source_unref); /* destroyed by returning REMOVE */
  HarkMediaIce *ice = hark_media_ice_ref(g->ice); /* libnice's signals may call out */
  GSList *held = g_slist_reverse(g->held);
  g->held = NULL;
  for (GSList *l = held; l != NULL; l = l->next)
    add_to_agent(g, l->data);
  g_slist_free_full(held, (GDestroyNotify)nice_candidate_free);
  if (g->eoc_held)
    nice_agent_peer_candidate_gathering_done(g->agent, g->stream);
  hark_media_ice_unref(ice);
  return G_SOURCE_REMOVE;
}

gboolean
hark_media_ice_add_remote_candidate(HarkMediaIce *ice, const char *line, GError **error)
{
  Generation *g = newest(ice);
  if (line == NULL || strlen(line) > ICE_MAX_LINE)
    return refuse(ice, error, line ? "(too long)" : "(none)", "no line of at most 512 bytes");
  if (g->remote_candidates >= ICE_MAX_REMOTE_CANDIDATES)
    return refuse(ice, error, line, "more than 32 candidates in one generation");
  g_autofree char *sdp =
    g_str_has_prefix(line, "a=") ? g_strdup(line) : g_strconcat("a=", line, NULL);
  const char *bad = fields_absurd(sdp);
  if (bad != NULL)
    return refuse(ice, error, line, bad);
  NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(g->agent, g->stream, sdp);
  if (c == NULL)
    return refuse(ice, error, line, "not a candidate line");
  const char *why = candidate_absurd(ice, c);
  if (why != NULL) {
    nice_candidate_free(c);
    return refuse(ice, error, line, why);
  }
  g->remote_candidates++;
  if (!path_admits(g, c)) {
    nice_candidate_free(c);
    return FALSE; /* ignored, not an error */
  }
  if (is_mapped_udp(c))
    g->peer_mapped = TRUE;
  if (hold_relayed(g, c)) {
    g->held = g_slist_prepend(g->held, c);
    if (g->release == NULL) {
      g->release = g_timeout_source_new(ICE_RELAY_HOLD_MS);
      g_source_set_callback(g->release, on_release, g, NULL);
      g_source_attach(g->release, ice->context);
    }
    return TRUE;
  }
  gboolean added = add_to_agent(g, c);
  nice_candidate_free(c);
  if (!added)
    return refuse(ice, error, line, "libnice did not take it");
  return TRUE;
}

void
hark_media_ice_remote_gathering_done(HarkMediaIce *ice)
{
  Generation *g = newest(ice);
  /* With candidates held back, libnice must not think it has them all (and give up). */
  if (g->held != NULL) {
    g->eoc_held = TRUE;
    return;
  }
  nice_agent_peer_candidate_gathering_done(g->agent, g->stream);
}

/* ---- restart and path ----------------------------------------------------------------- */

gboolean
hark_media_ice_restart(HarkMediaIce *ice, HarkMediaIcePath path, GError **error)
{
  /* A restart already under way gives way to this one. */
  drop_next(ice, NULL);
  Generation *g = generation_new(ice, path, error);
  if (g == NULL)
    return FALSE;
  g_mutex_lock(&ice->lock);
  if (ice->active->selected) {
    ice->next = g; /* the old pair carries the media until this one works */
    g->timeout = g_timeout_source_new(ICE_RESTART_TIMEOUT_MS);
    g_source_set_callback(g->timeout, on_restart_timeout, ice, NULL);
    g_source_attach(g->timeout, ice->context);
  } else { /* nothing flows yet: no reason to keep the old checks */
    Generation *old = ice->active;
    ice->active = g;
    g_mutex_unlock(&ice->lock);
    generation_free(old);
    set_state(ice, HARK_MEDIA_ICE_GATHERING);
    g_mutex_lock(&ice->lock);
  }
  g_mutex_unlock(&ice->lock);
  schedule_announce(ice);
  return TRUE;
}

static void
address_text(const NiceAddress *a, char *out, gsize size)
{
  char ip[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(a, ip);
  if (nice_address_ip_version(a) == 6)
    g_snprintf(out, size, "[%s]:%u", ip, nice_address_get_port(a));
  else
    g_snprintf(out, size, "%s:%u", ip, nice_address_get_port(a));
}

/* A reflexive candidate on an address of one of that side's host candidates is no NAT's
 * doing: an ICE-TCP connection's own source port (the active side announces port 9)
 * shows as peer-reflexive, and that is still a direct path. */
static gboolean
is_punched(const Generation *g, const NiceCandidate *c, gboolean local)
{
  if (c->type != NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE &&
      c->type != NICE_CANDIDATE_TYPE_PEER_REFLEXIVE)
    return FALSE;
  GSList *list = local ? nice_agent_get_local_candidates(g->agent, g->stream, 1)
                       : nice_agent_get_remote_candidates(g->agent, g->stream, 1);
  gboolean on_a_host = FALSE;
  for (GSList *l = list; l != NULL; l = l->next) {
    const NiceCandidate *h = l->data;
    if (h->type == NICE_CANDIDATE_TYPE_HOST && nice_address_equal_no_port(&h->addr, &c->addr))
      on_a_host = TRUE;
  }
  g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
  return !on_a_host;
}

/* libnice ranks a relayed candidate reached over UDP above one reached over TCP (its
 * type preference is 30 rather than 20 in RFC 5245 mode); the candidate itself does
 * not say which way it reaches its server. */
static gboolean
relay_over_tcp(const Generation *g, const NiceCandidate *local)
{
  if (g->relay_tcp_only)
    return TRUE;
  return (local->priority >> 24) < 30;
}

gboolean
hark_media_ice_get_path(HarkMediaIce *ice, HarkMediaIcePathInfo *info)
{
  Generation *g = ice->active;
  NiceCandidate *local = NULL, *remote = NULL;
  if (!g->selected ||
      !nice_agent_get_selected_pair(g->agent, g->stream, NICE_COMPONENT_TYPE_RTP, &local, &remote))
    return FALSE;
  memset(info, 0, sizeof *info);
  const char *kind = "host";
  if (local->type == NICE_CANDIDATE_TYPE_RELAYED || remote->type == NICE_CANDIDATE_TYPE_RELAYED)
    kind = "relayed";
  else if (is_punched(g, local, TRUE) || is_punched(g, remote, FALSE))
    kind = "punched";
  g_strlcpy(info->kind, kind, sizeof info->kind);
  info->local_relayed = local->type == NICE_CANDIDATE_TYPE_RELAYED;
  gboolean tcp = local->type == NICE_CANDIDATE_TYPE_RELAYED
                   ? relay_over_tcp(g, local)
                   : local->transport != NICE_CANDIDATE_TRANSPORT_UDP;
  g_strlcpy(info->transport, tcp ? "tcp" : "udp", sizeof info->transport);
  address_text(&local->addr, info->local, sizeof info->local);
  address_text(&remote->addr, info->remote, sizeof info->remote);
  return TRUE;
}

/* ---- the transport -------------------------------------------------------------------- */

static gboolean
ice_send(gpointer impl, const guint8 *data, gsize length, GError **error)
{
  HarkMediaIce *ice = impl;
  g_mutex_lock(&ice->lock);
  Generation *g = ice->active;
  /* Before a pair is selected, or when a stream transport's buffer is full, the packet
   * is lost as it would be on the wire: the session must not stop over it. */
  if (g->selected) {
    nice_agent_send(g->agent, g->stream, NICE_COMPONENT_TYPE_RTP, length, (const gchar *)data);
  } else if (ice->next == NULL) {
    g_clear_pointer(&ice->early, g_bytes_unref);
    ice->early = g_bytes_new(data, length);
  }
  g_mutex_unlock(&ice->lock);
  return TRUE;
}

static void
ice_start(gpointer impl, HarkMediaReceiveFunc func, gpointer user_data)
{
  HarkMediaIce *ice = impl;
  ice->receive = func;
  ice->receive_data = user_data;
}

static void
ice_free(gpointer impl)
{
  HarkMediaIce *ice = impl;
  ice->receive = NULL;
  ice->receive_data = NULL;
  hark_media_ice_unref(ice);
}

/* IPv4 20 + UDP 8; a TCP pair adds TCP's 20 and RFC 4571's 2 instead of UDP's 8. */
static const HarkMediaTransportInterface ice_udp_interface = {
  .version = 1, .send = ice_send, .start = ice_start, .free = ice_free, .overhead = 28
};
static const HarkMediaTransportInterface ice_tcp_interface = {
  .version = 1, .send = ice_send, .start = ice_start, .free = ice_free, .overhead = 42
};

HarkMediaTransport *
hark_media_ice_new_transport(HarkMediaIce *ice)
{
  HarkMediaIcePathInfo info;
  gboolean tcp = hark_media_ice_get_path(ice, &info) && strcmp(info.transport, "tcp") == 0;
  return hark_media_transport_new(tcp ? &ice_tcp_interface : &ice_udp_interface,
                                  hark_media_ice_ref(ice));
}
