/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-media.c: a call's media. The codecs a node offers come from its `media.codecs`
 * (a registration's name, or a plugin's: "g711" is pcmu and pcma) in that order; the
 * callee takes the first offered one it has. The keys are the call's own (call-keys.h:
 * X25519 shares in the signed INVITE and ANSWER, HKDF over the transcript). The path is
 * ICE (media-ice.h): the caller controls, the SN is the STUN server, candidates trickle
 * in CANDIDATES signals once the ANSWER is acknowledged. The caller makes its agent
 * before the INVITE (its candidates go in it), the callee while it rings (gathering
 * only: the caller's candidates go to it once answered), so an answer waits for neither
 * the TURN credentials nor the gathering. Once the keys are there a media session starts
 * (while ICE checks; the call is active once ICE is connected and, at the callee, the
 * caller's ACK came) with the node's source and sink, every common codec accepted and
 * the agreed one sent, SRTP AEAD_AES_256_GCM. */
#include "call-private.h"

#include "hark/address.h"
#include "hark/identity.h"

#include <string.h>

#define CALL_TRICKLE_MS 40 /* candidates gathered within this go in one signal */

/* ---- codecs -------------------------------------------------------------------------- */

const HarkRegistration *
hark_call_media_codec(HarkCalls *calls, const char *name)
{
  g_autoptr(GPtrArray) registrations = hark_context_lookup(calls->ctx, HARK_KIND_CODEC);
  for (guint i = 0; i < registrations->len; i++) {
    const HarkRegistration *r = registrations->pdata[i];
    if (strcmp(r->name, name) == 0)
      return r;
  }
  return NULL;
}

static gboolean
has_codec(GArray *codecs, const char *name)
{
  for (guint i = 0; i < codecs->len; i++)
    if (strcmp(g_array_index(codecs, HarkCallCodec, i).name, name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
has_payload_type(GArray *codecs, guint pt)
{
  for (guint i = 0; i < codecs->len; i++)
    if (g_array_index(codecs, HarkCallCodec, i).payload_type == pt)
      return TRUE;
  return FALSE;
}

static void
add_codec(GArray *codecs, const HarkRegistration *r)
{
  if (codecs->len >= HARK_CALL_MAX_CODECS || strlen(r->name) > HARK_CALL_MAX_CODEC_NAME ||
      has_codec(codecs, r->name))
    return;
  const HarkCodecInterface *iface = r->iface;
  HarkCallCodec c = { .payload_type = (guint8)iface->default_payload_type };
  g_strlcpy(c.name, r->name, sizeof c.name);
  /* Two codecs with the same dynamic default: the later one takes a free type (101 is
   * telephone-event's). */
  for (guint pt = 96; has_payload_type(codecs, c.payload_type) && pt < 128; pt++)
    if (pt != 101)
      c.payload_type = (guint8)pt;
  g_array_append_val(codecs, c);
}

GArray *
hark_call_media_local_codecs(HarkCalls *calls)
{
  GArray *codecs = g_array_new(FALSE, TRUE, sizeof(HarkCallCodec));
  g_autoptr(GPtrArray) registrations = hark_context_lookup(calls->ctx, HARK_KIND_CODEC);
  char **names = calls->node->config->codecs;
  for (guint n = 0; names != NULL && names[n] != NULL; n++) {
    /* A registration of that name, else every codec of the plugin of that name. */
    const HarkRegistration *exact = hark_call_media_codec(calls, names[n]);
    if (exact != NULL) {
      add_codec(codecs, exact);
      continue;
    }
    for (guint i = 0; i < registrations->len; i++) {
      const HarkRegistration *r = registrations->pdata[i];
      if (g_strcmp0(r->plugin, names[n]) == 0)
        add_codec(codecs, r);
    }
  }
  return codecs;
}

const char *
hark_call_media_resolve_codec(HarkCall *call, const char *name)
{
  for (guint i = 0; call->offered != NULL && i < call->offered->len; i++) {
    const HarkCallCodec *c = &g_array_index(call->offered, HarkCallCodec, i);
    const HarkRegistration *r = hark_call_media_codec(call->calls, c->name);
    if (r != NULL && (strcmp(c->name, name) == 0 || g_strcmp0(r->plugin, name) == 0))
      return c->name;
  }
  return NULL;
}

/* ---- keys ---------------------------------------------------------------------------- */

gboolean
hark_call_media_derive(HarkCall *call, GError **error)
{
  const char *own = hark_identity_get_fingerprint(call->calls->node->identity);
  const guint8 *ours = hark_call_key_share_public(call->share);
  HarkCallTranscript t = {
    .call_id = call->id,
    .caller_nonce = call->outgoing ? call->nonce : call->peer_nonce,
    .callee_nonce = call->outgoing ? call->peer_nonce : call->nonce,
    .caller_share = call->outgoing ? ours : call->peer_share,
    .callee_share = call->outgoing ? call->peer_share : ours,
    .caller_device = call->outgoing ? own : call->peer_device,
    .callee_device = call->outgoing ? call->peer_device : own,
  };
  g_clear_pointer(&call->send_key, g_bytes_unref);
  g_clear_pointer(&call->receive_key, g_bytes_unref);
  return hark_call_keys_derive(call->share, call->peer_share, call->outgoing, &t, &call->send_key,
                               &call->receive_key, error);
}

/* ---- ICE ----------------------------------------------------------------------------- */

/* The agent's callback data. The agent may call out after our last unref (an idle of its
 * own holds a reference until it ran), so its data is this handle, not the call: the
 * call lets go of it when it ends, and it is freed once the main loop has run what was
 * pending (a low-priority idle goes after the agent's). */
typedef struct _CallIceHandle {
  HarkCall *call;
} CallIceHandle;

static gboolean
handle_free(gpointer data)
{
  g_free(data);
  return G_SOURCE_REMOVE;
}

static void
handle_release(HarkCall *call)
{
  if (call->ice_handle == NULL)
    return;
  call->ice_handle->call = NULL;
  GSource *source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_LOW);
  g_source_set_callback(source, handle_free, call->ice_handle, NULL);
  g_source_attach(source, hark_context_main_context(call->calls->ctx));
  g_source_unref(source);
  call->ice_handle = NULL;
}

static void
send_candidates(HarkCall *call, GPtrArray *lines, gboolean end)
{
  guint at = 0;
  do {
    HarkCallSignal *signal = hark_call_signal_for(call, HARK_CALL_SIGNAL_CANDIDATES);
    signal->candidates = g_ptr_array_new_with_free_func(g_free);
    for (; lines != NULL && at < lines->len && signal->candidates->len < HARK_CALL_MAX_CANDIDATES;
         at++)
      g_ptr_array_add(signal->candidates, g_strdup(lines->pdata[at]));
    signal->end_of_candidates = end && (lines == NULL || at >= lines->len);
    hark_call_send(call, call->peer_device, signal);
  } while (lines != NULL && at < lines->len);
}

/* Forgets the candidates waiting to trickle (the whole list went, or a restart made them
 * stale, or the call's media ended). */
static void
trickle_drop(HarkCall *call)
{
  g_clear_pointer(&call->trickle_pending, g_ptr_array_unref);
  hark_call_timer_stop(&call->trickle_timer);
}

/* The candidates waiting, in one CANDIDATES signal (with end: the last one). */
static void
trickle_flush(HarkCall *call, gboolean end)
{
  g_autoptr(GPtrArray) lines = g_steal_pointer(&call->trickle_pending);
  trickle_drop(call);
  if (lines != NULL || end)
    send_candidates(call, lines, end);
}

static gboolean
on_trickle_timer(gpointer data)
{
  HarkCall *call = data;
  g_clear_pointer(&call->trickle_timer, g_source_unref); /* dispatched: returning removes it */
  trickle_flush(call, FALSE);
  return G_SOURCE_REMOVE;
}

/* A candidate gathered after the answer was acknowledged: it waits CALL_TRICKLE_MS for the
 * others gathered meanwhile, so that a call costs a few signals rather than one a
 * candidate (a conference host's ten calls made some 250 at once, far over its SN's
 * message rate: docs/protocol.md, "Calls: media path (ICE)"). */
static void
on_candidate(gpointer data, const char *line)
{
  HarkCall *call = ((CallIceHandle *)data)->call;
  if (call == NULL || !call->acked || call->ice == NULL)
    return; /* it goes with the whole list once the answer is acknowledged */
  if (call->trickle_pending == NULL)
    call->trickle_pending = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(call->trickle_pending, g_strdup(line));
  if (call->trickle_pending->len >= HARK_CALL_MAX_CANDIDATES) {
    trickle_flush(call, FALSE);
    return;
  }
  if (call->trickle_timer != NULL)
    return;
  call->trickle_timer = hark_call_timer(call, CALL_TRICKLE_MS, on_trickle_timer);
}

static void
on_gathering_done(gpointer data)
{
  HarkCall *call = ((CallIceHandle *)data)->call;
  if (call == NULL)
    return;
  call->local_gathering_done = TRUE;
  if (call->acked && call->ice != NULL)
    trickle_flush(call, TRUE);
}

static void
path_change_end(HarkCall *call, const char *outcome, const char *reason)
{
  call->path_change_outcome = outcome;
  g_free(call->path_change_reason);
  call->path_change_reason = g_strdup(reason);
}

static void
on_ice_state(gpointer data, HarkMediaIceState state)
{
  HarkCall *call = ((CallIceHandle *)data)->call;
  if (call == NULL)
    return;
  if (state == HARK_MEDIA_ICE_CONNECTED) {
    hark_call_media_maybe_start(call);
    hark_call_media_note_path(call);
    /* A restart before any pair worked, or one whose old pair died meanwhile, shows
     * here rather than in on_restart_done. */
    if (g_strcmp0(call->path_change_outcome, "moving") == 0)
      path_change_end(call, "moved", NULL);
    return;
  }
  if (state != HARK_MEDIA_ICE_FAILED || call->ice == NULL || !call->remote_credentials)
    return;
  HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
  f->reason = g_strdup("no media path");
  hark_call_send(call, call->peer_device, f);
  hark_call_end(call, "failed",
                call->session != NULL ? "the media path stopped working"
                                      : "no media path (the connectivity checks found none)");
}

/* A path change (`path`) ended: the new pair carries the media, or the old one still. */
static void
on_restart_done(gpointer data, HarkMediaIcePath path, const char *failure)
{
  HarkCall *call = ((CallIceHandle *)data)->call;
  if (call == NULL)
    return;
  gboolean flowing = hark_call_media_note_path(call);
  path_change_end(call, failure == NULL ? "moved" : "failed", failure);
  g_message("calls: %s: the path change %s; the media goes %s", call->id_hex,
            failure == NULL ? "worked" : failure, flowing ? call->last_path : "nowhere yet");
  hark_call_emit(call);
}

JsonObject *
hark_call_media_path_change_json(HarkCall *call)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "kind", call->path_change_kind);
  json_object_set_string_member(o, "outcome", call->path_change_outcome);
  if (call->path_change_reason != NULL)
    json_object_set_string_member(o, "reason", call->path_change_reason);
  return o;
}

static const HarkMediaIceCallbacks ice_callbacks = {
  .version = 2,
  .candidate = on_candidate,
  .gathering_done = on_gathering_done,
  .state_changed = on_ice_state,
  .restart_done = on_restart_done,
};

gboolean
hark_call_media_path_parse(const char *name, HarkMediaIcePath *path)
{
  static const struct {
    const char *name;
    HarkMediaIcePath path;
  } paths[] = {
    { "any", HARK_MEDIA_ICE_PATH_ANY },
    { "udp", HARK_MEDIA_ICE_PATH_UDP },
    { "tcp", HARK_MEDIA_ICE_PATH_TCP },
    { "relay", HARK_MEDIA_ICE_PATH_RELAY },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(paths); i++)
    if (g_strcmp0(name, paths[i].name) == 0) {
      *path = paths[i].path;
      return TRUE;
    }
  return FALSE;
}

gboolean
hark_call_media_restart(HarkCall *call, const char *name, HarkCallSignal *signal, GError **error)
{
  HarkMediaIcePath path;
  g_autoptr(GError) local = NULL;
  if (call->ice == NULL || !hark_call_media_path_parse(name, &path))
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MALFORMED,
                       "'%s' is not a path (any, udp, tcp, relay)", name),
           FALSE;
  trickle_drop(call);
  if (!hark_media_ice_restart(call->ice, path, &local))
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MEDIA, "ICE: %s", local->message),
           FALSE;
  /* The new candidates trickle once gathered (from the main loop, after this signal). */
  call->local_gathering_done = FALSE;
  g_free(call->path_change_kind);
  call->path_change_kind = g_strdup(name);
  path_change_end(call, "moving", NULL);
  signal->ice_ufrag = g_strdup(hark_media_ice_local_ufrag(call->ice));
  signal->ice_pwd = g_strdup(hark_media_ice_local_pwd(call->ice));
  signal->path = g_strdup(name);
  return TRUE;
}

/* The SN's address when it is a literal IP address: our STUN server. */
static char *
stun_host(HarkCall *call, guint *port)
{
  g_autofree char *sn = hark_overlay_sn_address(call->calls->overlay);
  const char *colon = sn != NULL ? strrchr(sn, ':') : NULL;
  if (colon == NULL)
    return NULL;
  g_autofree char *host = g_strndup(sn, colon - sn);
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    char *inner = g_strndup(host + 1, strlen(host) - 2);
    g_free(host);
    host = inner;
  }
  guint64 value = g_ascii_strtoull(colon + 1, NULL, 10);
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string(host);
  if (address == NULL || value == 0 || value > 65535)
    return NULL;
  *port = (guint)value;
  return g_steal_pointer(&host);
}

static void
take_candidate(HarkCall *call, const char *line)
{
  g_autoptr(GError) error = NULL;
  if (!hark_media_ice_add_remote_candidate(call->ice, line, &error) && error != NULL) {
    g_autofree char *shown = hark_text_escape(error->message, -1, 200);
    g_message("calls: %s: a candidate of %s refused: %s", call->id_hex, call->peer, shown);
  }
}

static void
take_credentials(HarkCall *call, const char *ufrag, const char *pwd)
{
  g_autoptr(GError) error = NULL;
  if (hark_media_ice_set_remote_credentials(call->ice, ufrag, pwd, &error)) {
    call->remote_credentials = TRUE;
    return;
  }
  g_autofree char *shown = hark_text_escape(error->message, -1, 200);
  g_message("calls: %s: the ICE credentials of %s refused: %s", call->id_hex, call->peer, shown);
}

/* The caller's NAT drops a first check from a mapping it has not sent to (address-dependent
 * filtering) or gives each destination a mapping of its own (symmetric): the pair of these
 * two has a punched path that needs a check repeated, which the relays must not outrun. */
static gboolean
hold_relayed(HarkCall *call)
{
  HarkNatBehaviour mapping, filtering;
  if (!call->outgoing || !hark_overlay_nat_behaviours(call->calls->overlay, &mapping, &filtering))
    return FALSE;
  return mapping == HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT ||
         (mapping == HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT &&
          filtering == HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT);
}

/* This node's UDP does not get out (its NAT probe had no answer over UDP). */
static gboolean
udp_blocked(HarkCall *call)
{
  return hark_overlay_nat_verdict(call->calls->overlay) == HARK_NAT_VERDICT_UDP_BLOCKED;
}

static gboolean
start_ice(HarkCall *call, const HarkTurnCredentials *turn, GError **error)
{
  guint port = 0;
  g_autofree char *host = stun_host(call, &port);
  HarkMediaIceConfig config = {
    .controlling = call->outgoing,
    .stun_host = host,
    .stun_port = port,
    .turn_host = turn != NULL ? turn->host : NULL,
    .turn_port = turn != NULL ? turn->port : 0,
    .turn_username = turn != NULL ? turn->username : NULL,
    .turn_password = turn != NULL ? turn->password : NULL,
    .turn_udp = turn != NULL,
    .turn_tcp = turn != NULL && turn->tcp,
    .allow_loopback = call->calls->node->config->allow_loopback,
    .ice_tcp = TRUE, /* so that `path tcp` has host candidates to go to */
    .path = HARK_MEDIA_ICE_PATH_ANY,
    .hold_relayed = hold_relayed(call),
    .udp_blocked = udp_blocked(call),
    .turn_web_port = turn != NULL && udp_blocked(call) ? turn->web_port : 0,
  };
  g_autoptr(GError) local = NULL;
  call->ice_handle = g_new0(CallIceHandle, 1);
  call->ice_handle->call = call;
  HarkMediaIce *ice = hark_media_ice_new(&config, &ice_callbacks, call->ice_handle, &local);
  if (ice == NULL) {
    handle_release(call);
    g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MEDIA, "ICE: %s", local->message);
    return FALSE;
  }
  call->ice = ice;
  return TRUE;
}

void
hark_call_media_take_early(HarkCall *call)
{
  if (call->remote_ufrag != NULL)
    take_credentials(call, call->remote_ufrag, call->remote_pwd);
  for (guint i = 0; call->early_candidates != NULL && i < call->early_candidates->len; i++)
    take_candidate(call, call->early_candidates->pdata[i]);
  if (call->early_end_of_candidates)
    hark_media_ice_remote_gathering_done(call->ice);
  g_clear_pointer(&call->early_candidates, g_ptr_array_unref);
}

typedef struct {
  CallsAlive *alive;
  char id_hex[2 * HARK_CALL_ID_SIZE + 1];
  CallReady ready;
} TurnWait;

static void
turn_answered(GObject *source, GAsyncResult *result, gpointer data)
{
  TurnWait *wait = data;
  HarkCalls *calls = wait->alive->calls;
  HarkCall *call = calls != NULL ? hark_calls_find(calls, wait->id_hex) : NULL;
  CallReady ready = wait->ready;
  hark_calls_alive_unref(wait->alive);
  g_free(wait);
  if (call == NULL)
    return; /* the call ended meanwhile (or the node stops) */
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkTurnCredentials) turn =
    hark_overlay_turn_credentials_finish(calls->overlay, result, &error);
  /* No relay is not the end of a call: direct and punched paths are tried anyway. */
  if (turn == NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    g_message("calls: %s: no TURN relay for this call: %s", call->id_hex, error->message);
  g_clear_error(&error);
  g_free(call->servers_from);
  call->servers_from = hark_overlay_sn_address(calls->overlay);
  if (!start_ice(call, turn, &error)) {
    HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
    f->reason = g_strdup("the call could not be set up");
    if (call->peer_device != NULL)
      hark_call_send(call, call->peer_device, f);
    else
      hark_call_signal_free(f);
    hark_call_end(call, "failed", error->message);
    return;
  }
  ready(call);
}

void
hark_call_media_prepare(HarkCall *call, CallReady ready)
{
  TurnWait *wait = g_new0(TurnWait, 1);
  wait->alive = hark_calls_alive_ref(call->calls->alive);
  memcpy(wait->id_hex, call->id_hex, sizeof wait->id_hex);
  wait->ready = ready;
  hark_overlay_turn_credentials_async(call->calls->overlay, NULL, turn_answered, wait);
}

/* ---- our SN changed ------------------------------------------------------------------- */

static void
follow_answered(GObject *source, GAsyncResult *result, gpointer data)
{
  TurnWait *wait = data;
  HarkCalls *calls = wait->alive->calls;
  HarkCall *call = calls != NULL ? hark_calls_find(calls, wait->id_hex) : NULL;
  hark_calls_alive_unref(wait->alive);
  g_free(wait);
  if (call == NULL)
    return; /* the call ended meanwhile (or the node stops) */
  call->following_sn = FALSE;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkTurnCredentials) turn =
    hark_overlay_turn_credentials_finish(calls->overlay, result, &error);
  if (turn == NULL) {
    g_message("calls: %s: no relay at the new super node (%s); the call stays on its path",
              call->id_hex, error->message);
    return;
  }
  guint port = 0;
  g_autofree char *host = stun_host(call, &port);
  HarkMediaIceConfig servers = {
    .stun_host = host,
    .stun_port = port,
    .turn_host = turn->host,
    .turn_port = turn->port,
    .turn_username = turn->username,
    .turn_password = turn->password,
    .turn_udp = TRUE,
    .turn_tcp = turn->tcp,
    .turn_web_port = udp_blocked(call) ? turn->web_port : 0,
  };
  if (call->ice == NULL || !hark_media_ice_set_servers(call->ice, &servers, &error)) {
    g_message("calls: %s: the new super node's relay cannot be used: %s", call->id_hex,
              error != NULL ? error->message : "the media stopped");
    return;
  }
  g_free(call->servers_from);
  call->servers_from = hark_overlay_sn_address(calls->overlay);
  if (!hark_call_change_path(call, "any", &error)) {
    g_message("calls: %s: no ICE restart on the new relay: %s", call->id_hex, error->message);
    return;
  }
  g_message("calls: %s: its relay's super node is gone: ICE restarts on the relay of %s",
            call->id_hex, call->servers_from);
}

void
hark_call_media_follow_sn(HarkCall *call)
{
  if (call->ice == NULL || call->following_sn ||
      (call->state != CALL_ACTIVE && call->state != CALL_HELD))
    return;
  g_autofree char *sn = hark_overlay_sn_address(call->calls->overlay);
  HarkMediaIcePathInfo info;
  /* A direct path, or the peer's relay, needs nothing of our SN (the peer moves its own). */
  if (sn == NULL || g_strcmp0(sn, call->servers_from) == 0 ||
      !hark_media_ice_get_path(call->ice, &info) || !info.local_relayed)
    return;
  call->following_sn = TRUE;
  TurnWait *wait = g_new0(TurnWait, 1);
  wait->alive = hark_calls_alive_ref(call->calls->alive);
  memcpy(wait->id_hex, call->id_hex, sizeof wait->id_hex);
  hark_overlay_turn_credentials_async(call->calls->overlay, NULL, follow_answered, wait);
}

void
hark_call_media_take_remote(HarkCall *call, const HarkCallSignal *signal)
{
  if (call->ice == NULL)
    return;
  if (signal->ice_ufrag != NULL && signal->ice_pwd != NULL)
    take_credentials(call, signal->ice_ufrag, signal->ice_pwd);
  for (guint i = 0; signal->candidates != NULL && i < signal->candidates->len; i++)
    take_candidate(call, signal->candidates->pdata[i]);
  if (signal->end_of_candidates)
    hark_media_ice_remote_gathering_done(call->ice);
}

void
hark_call_media_fill_local(HarkCall *call, HarkCallSignal *signal)
{
  signal->ice_ufrag = g_strdup(hark_media_ice_local_ufrag(call->ice));
  signal->ice_pwd = g_strdup(hark_media_ice_local_pwd(call->ice));
  g_autoptr(GPtrArray) lines = hark_media_ice_local_candidates(call->ice);
  signal->candidates = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < lines->len && i < HARK_CALL_MAX_CANDIDATES; i++)
    g_ptr_array_add(signal->candidates, g_strdup(lines->pdata[i]));
  signal->end_of_candidates = call->local_gathering_done && lines->len <= HARK_CALL_MAX_CANDIDATES;
}

void
hark_call_media_trickle(HarkCall *call)
{
  if (call->ice == NULL)
    return;
  trickle_drop(call);
  g_autoptr(GPtrArray) lines = hark_media_ice_local_candidates(call->ice);
  send_candidates(call, lines, call->local_gathering_done);
}

/* ---- the session --------------------------------------------------------------------- */

/* The session's codecs: the agreed one first (it is sent), then every other codec of the
 * offer this node has (each is accepted, and a swap picks among them). */
static GArray *
session_codecs(HarkCall *call)
{
  GArray *codecs = g_array_new(FALSE, TRUE, sizeof(HarkMediaCodec));
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < call->offered->len; i++) {
      const HarkCallCodec *c = &g_array_index(call->offered, HarkCallCodec, i);
      gboolean agreed = g_strcmp0(c->name, call->codec) == 0;
      const HarkRegistration *r = hark_call_media_codec(call->calls, c->name);
      if (r == NULL || agreed != (pass == 0))
        continue;
      HarkMediaCodec m = {
        .name = c->name, .iface = r->iface, .instance = r->instance, .payload_type = c->payload_type
      };
      g_array_append_val(codecs, m);
    }
  return codecs;
}

/* A digit the peer sent (RFC 4733): the `call-dtmf` event. */
static void
on_dtmf(gpointer data, char digit)
{
  HarkCall *call = data;
  char text[2] = { digit, '\0' };
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "call_id", call->id_hex);
  json_object_set_string_member(o, "peer", call->peer);
  json_object_set_string_member(o, "digit", text);
  hark_context_emit(call->calls->ctx, "call-dtmf", o);
}

/* Nothing from the peer for the session's silence time (media, RTCP and the keep-alives
 * of a hold all count): its node is gone, or the path is. The call ends; the peer is
 * told in case it is only the path. */
static void
on_silent(gpointer data, guint silence_ms)
{
  HarkCall *call = data;
  g_autofree char *why =
    g_strdup_printf("nothing came from %s for %.0f s", call->peer, silence_ms / 1000.0);
  HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
  f->reason = g_strdup("no audio came for too long");
  hark_call_send(call, call->peer_device, f);
  hark_call_end(call, "failed", why);
}

static const HarkMediaSessionEvents session_events = {
  .version = 1,
  .dtmf = on_dtmf,
  .silent = on_silent,
};

/* receiving: where the session this one replaces left its receiving (NULL: none). */
static gboolean
start_session(HarkCall *call, const HarkMediaReceiving *receiving, GError **error)
{
  const HarkConfig *config = call->calls->node->config;
  g_autoptr(GArray) codecs = session_codecs(call);
  if (codecs->len == 0 ||
      g_strcmp0(g_array_index(codecs, HarkMediaCodec, 0).name, call->codec) != 0)
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MEDIA, "no common codec"), FALSE;
  HarkMediaConfig media = {
    .codecs = (const HarkMediaCodec *)codecs->data,
    .n_codecs = codecs->len,
    .source = call->media_source != NULL ? call->media_source : config->audio_source,
    .sink = call->media_sink != NULL ? call->media_sink : config->audio_sink,
    .srtp_suite = HARK_MEDIA_SRTP_AEAD_AES_256_GCM,
    .send_key = call->send_key,
    .receive_key = call->receive_key,
    .dtmf_payload_type = call->dtmf_pt,
    .jitter_min_ms = (guint)config->jitter_min_ms,
    .jitter_max_ms = (guint)config->jitter_max_ms,
    .transport = hark_media_ice_new_transport(call->ice),
  };
  g_autoptr(GError) local = NULL;
  HarkMediaSession *session = hark_media_session_new(&media, &local);
  if (session != NULL && receiving != NULL)
    hark_media_session_restore_receiving(session, receiving); /* the keys are the call's */
  if (session == NULL || !hark_media_session_start(session, &local)) {
    g_clear_pointer(&session, hark_media_session_free);
    g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MEDIA, "media: %s", local->message);
    return FALSE;
  }
  call->session = session;
  hark_media_session_set_mute(session, call->muted);
  call->session_codecs = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < codecs->len; i++)
    g_ptr_array_add(call->session_codecs, g_strdup(g_array_index(codecs, HarkMediaCodec, i).name));
  return TRUE;
}

/* The session starts as soon as the keys are there, while ICE still checks: its pipelines
 * are running (and the first packet encoded) by the time a pair is selected, and the
 * transport drops what comes before. The call is active once the path works (and, at
 * the callee, the caller's ACK came). */
void
hark_call_media_maybe_start(HarkCall *call)
{
  if (call->ice == NULL || call->send_key == NULL || call->state != CALL_CONNECTING)
    return;
  g_autoptr(GError) error = NULL;
  if (call->session == NULL && !start_session(call, NULL, &error)) {
    HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
    f->reason = g_strdup(error->message);
    hark_call_send(call, call->peer_device, f);
    hark_call_end(call, "failed", error->message);
    return;
  }
  if (!call->acked || hark_media_ice_get_state(call->ice) != HARK_MEDIA_ICE_CONNECTED)
    return;
  /* The session is freed before the call: its events never outlive it. Set now, so that
   * its silence counts from when the path works (the connect timer covers the checks). */
  hark_media_session_set_events(call->session, &session_events, call);
  hark_call_timer_stop(&call->connect_timer);
  hark_call_media_set_hold(call);
  hark_call_set_state(call, CALL_ACTIVE);
}

void
hark_call_media_set_hold(HarkCall *call)
{
  if (call->session != NULL)
    hark_media_session_set_hold(call->session, call->local_hold || call->remote_hold);
}

gboolean
hark_call_media_set_mute(HarkCall *call, gboolean mute, GError **error)
{
  if (call->state == CALL_ENDED ||
      (call->state != CALL_CONNECTING && call->state != CALL_ACTIVE && call->state != CALL_HELD))
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "call %s is not connected",
                       call->id_hex),
           FALSE;
  call->muted = mute;
  if (call->session != NULL)
    hark_media_session_set_mute(call->session, mute);
  return TRUE;
}

gboolean
hark_call_media_send_dtmf(HarkCall *call, const char *digits, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (call->session == NULL)
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "call %s has no media yet",
                       call->id_hex),
           FALSE;
  if (!hark_media_session_send_dtmf(call->session, digits, &local))
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MALFORMED, "%s", local->message),
           FALSE;
  return TRUE;
}

gboolean
hark_call_media_swap(HarkCall *call, const char *codec, GError **error)
{
  if (call->session == NULL)
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "no media yet"), FALSE;
  guint index = 0;
  if (!g_ptr_array_find_with_equal_func(call->session_codecs, codec, g_str_equal, &index))
    return g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MEDIA,
                       "%s is not among this call's codecs", codec),
           FALSE;
  if (!hark_media_session_swap_codec(call->session, index, error))
    return FALSE;
  g_free(call->codec);
  call->codec = g_strdup(codec);
  return TRUE;
}

char *
hark_call_media_path(HarkCall *call)
{
  HarkMediaIcePathInfo info;
  if (call->ice == NULL || call->session == NULL || !hark_media_ice_get_path(call->ice, &info))
    return NULL;
  return g_strdup_printf("%s %s", info.kind, info.transport);
}

/* Kept, because libnice forgets a TCP pair as soon as the far end closes it, and that
 * can come before the hangup that ends the call: the ended call still names its path. */
gboolean
hark_call_media_note_path(HarkCall *call)
{
  char *now = hark_call_media_path(call);
  if (now == NULL)
    return FALSE;
  g_free(call->last_path);
  call->last_path = now;
  return TRUE;
}

JsonObject *
hark_call_media_stats(HarkCall *call)
{
  JsonObject *o = NULL;
  if (call->session != NULL) {
    HarkMediaStats stats;
    hark_media_session_get_stats(call->session, &stats);
    o = hark_media_stats_to_json(&stats);
  } else {
    o = json_object_new();
  }
  json_object_set_string_member(o, "id", call->id_hex);
  json_object_set_string_member(o, "state", hark_call_state_name(call->state));
  if (call->codec != NULL && call->session == NULL)
    json_object_set_string_member(o, "codec", call->codec);
  HarkMediaIcePathInfo info;
  if (call->ice != NULL && hark_media_ice_get_path(call->ice, &info)) {
    hark_call_media_note_path(call);
    JsonObject *path = json_object_new();
    json_object_set_string_member(path, "kind", info.kind);
    json_object_set_string_member(path, "transport", info.transport);
    json_object_set_string_member(path, "local", info.local);
    json_object_set_string_member(path, "remote", info.remote);
    json_object_set_object_member(o, "path", path);
  }
  hark_call_json_times(call, o);
  return o;
}

gboolean
hark_call_media_rebuild(HarkCall *call, GError **error)
{
  if (call->session == NULL)
    return TRUE;
  /* A new session, a new SSRC: the far end's rtpbin takes it as a new stream (its own
   * jitter buffer and decoder, into the same sink), and SRTP's replay window is per
   * SSRC, so the fresh sequence numbers are not refused. The far end's stream goes on
   * as it was: the new session receives it where the old one was (its rollover counter
   * after 65,536 packets, and its replay window). */
  g_autoptr(HarkMediaReceiving) receiving = hark_media_session_save_receiving(call->session);
  g_clear_pointer(&call->session, hark_media_session_free);
  g_clear_pointer(&call->session_codecs, g_ptr_array_unref);
  if (!start_session(call, receiving, error))
    return FALSE;
  if (call->state == CALL_ACTIVE || call->state == CALL_HELD)
    hark_media_session_set_events(call->session, &session_events, call);
  hark_call_media_set_hold(call);
  return TRUE;
}

void
hark_call_media_stop(HarkCall *call)
{
  g_clear_pointer(&call->session, hark_media_session_free);
  g_clear_pointer(&call->session_codecs, g_ptr_array_unref);
  g_clear_pointer(&call->ice, hark_media_ice_unref);
  trickle_drop(call);
  handle_release(call);
  g_clear_pointer(&call->send_key, g_bytes_unref);
  g_clear_pointer(&call->receive_key, g_bytes_unref);
}
