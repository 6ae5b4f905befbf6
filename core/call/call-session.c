/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-session.c: one call's state machine (docs/protocol.md, "Calls: the call").
 *
 * Outgoing: dialing (INVITE to every online device of the callee) -> ringing (a device
 * said RINGING) -> connecting (the first ANSWER that echoes our nonce wins: ACK to it,
 * CANCEL "answered elsewhere" to the others) -> active (ICE connected, media flows) <->
 * held -> ended. A DECLINE ends the call as declined; a BUSY drops that device, and when
 * every device dropped out the caller hears why; unanswered, it ends "no answer" after
 * calls.ring_timeout. Incoming: ringing -> connecting (answered, until the caller's ACK
 * echoes our nonce and ICE connects) -> active <-> held -> ended. A second incoming call
 * rings beside the first (call waiting); answering it holds the first; over calls.max
 * calls an INVITE is answered busy. */
#include "call-private.h"

#include "hark/presence.h"

#include <openssl/crypto.h>
#include <string.h>

static gboolean fail(GError **error, HarkCallError code, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

static gboolean
fail(GError **error, HarkCallError code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error_literal(error, HARK_CALL_ERROR, code, message);
  return FALSE;
}

static gboolean
ringing_phase(const HarkCall *call)
{
  return call->state == CALL_DIALING || call->state == CALL_RINGING;
}

static gboolean
established(const HarkCall *call)
{
  return call->state == CALL_CONNECTING || call->state == CALL_ACTIVE || call->state == CALL_HELD;
}

/* CANCEL to every invited device still in (except keep, the one that answered). */
static void
cancel_devices(HarkCall *call, const char *keep, const char *reason)
{
  if (!call->invite_sent)
    return; /* nobody was called yet */
  if (!call->invite_answered && keep == NULL) {
    /* Where the INVITE went is not known yet: every online device hears it. */
    HarkCallSignal *cancel = hark_call_signal_for(call, HARK_CALL_SIGNAL_CANCEL);
    cancel->reason = g_strdup(reason);
    hark_call_send(call, NULL, cancel);
    return;
  }
  for (guint i = 0; i < call->devices->len; i++) {
    CallDevice *d = call->devices->pdata[i];
    if (d->out || g_strcmp0(d->device, keep) == 0)
      continue;
    d->out = TRUE;
    HarkCallSignal *cancel = hark_call_signal_for(call, HARK_CALL_SIGNAL_CANCEL);
    cancel->reason = g_strdup(reason);
    hark_call_send(call, d->device, cancel);
  }
}

static CallDevice *
device_of(HarkCall *call, const char *device, gboolean add)
{
  for (guint i = 0; i < call->devices->len; i++) {
    CallDevice *d = call->devices->pdata[i];
    if (strcmp(d->device, device) == 0)
      return d;
  }
  if (!add || call->devices->len >= CALL_MAX_INVITED)
    return NULL;
  CallDevice *d = g_new0(CallDevice, 1);
  d->device = g_strdup(device);
  g_ptr_array_add(call->devices, d);
  return d;
}

/* ---- outgoing ------------------------------------------------------------------------ */

static gboolean
on_ring_timeout(gpointer data)
{
  HarkCall *call = data;
  g_clear_pointer(&call->ring_timer, g_source_unref);
  if (call->outgoing && ringing_phase(call)) {
    cancel_devices(call, NULL, "no answer");
    hark_call_end(call, "no answer", "no answer");
  } else if (!call->outgoing && call->state == CALL_RINGING) {
    hark_call_end(call, "missed", "no answer");
  }
  return G_SOURCE_REMOVE;
}

static gboolean
on_connect_timeout(gpointer data)
{
  HarkCall *call = data;
  g_clear_pointer(&call->connect_timer, g_source_unref);
  if (call->state == CALL_CONNECTING) {
    HarkCallSignal *fail_signal = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
    fail_signal->reason = g_strdup("no media path");
    hark_call_send(call, call->peer_device, fail_signal);
    hark_call_end(call, "failed", "no media path (the connectivity checks found none in time)");
  }
  return G_SOURCE_REMOVE;
}

static void
connecting(HarkCall *call)
{
  hark_call_timer_stop(&call->ring_timer);
  call->answered_at = hark_clock_now_seconds(hark_context_get_clock(call->calls->ctx));
  call->answered_us = g_get_monotonic_time();
  call->connect_timer = hark_call_timer(call, CALL_CONNECT_S * 1000, on_connect_timeout);
  hark_call_set_state(call, CALL_CONNECTING);
}

/* The agent is there: the INVITE goes to every online device of the callee. */
static void
send_invite(HarkCall *call)
{
  HarkCallSignal *invite = hark_call_signal_for(call, HARK_CALL_SIGNAL_INVITE);
  invite->has_nonce = TRUE;
  memcpy(invite->nonce, call->nonce, sizeof call->nonce);
  invite->has_share = TRUE;
  memcpy(invite->share, hark_call_key_share_public(call->share), HARK_CALL_SHARE_SIZE);
  invite->codecs = g_array_ref(call->offered);
  invite->dtmf_payload_type = call->dtmf_pt;
  hark_call_media_fill_local(call, invite);
  call->invite_sent = TRUE;
  hark_call_send(call, NULL, invite);
}

HarkCall *
hark_call_dial(HarkCalls *calls, const char *user, GError **error)
{
  if (!hark_presence_name_is_valid(user)) {
    fail(error, HARK_CALL_ERROR_MALFORMED, "'%s' is not a user name", user);
    return NULL;
  }
  if (calls->order->len >= calls->max_calls) {
    fail(error, HARK_CALL_ERROR_STATE, "%u calls are going on already (calls.max)",
         calls->order->len);
    return NULL;
  }
  g_autoptr(GArray) offered = hark_call_media_local_codecs(calls);
  if (offered->len == 0) {
    fail(error, HARK_CALL_ERROR_MEDIA, "none of media.codecs is loaded (a codec plugin)");
    return NULL;
  }
  g_autoptr(HarkCallKeyShare) share = hark_call_key_share_new(error);
  if (share == NULL)
    return NULL;
  guint8 id[HARK_CALL_ID_SIZE];
  hark_call_random(id, sizeof id);
  HarkCall *call = hark_call_new(calls, id, TRUE, user);
  call->share = g_steal_pointer(&share);
  call->offered = g_steal_pointer(&offered);
  call->dtmf_pt = 101;
  hark_call_random(call->nonce, sizeof call->nonce);
  hark_call_emit(call);
  call->ring_timer = hark_call_timer(call, calls->ring_timeout_s * 1000, on_ring_timeout);
  hark_call_media_prepare(call, send_invite);
  return call;
}

void
hark_call_invite_sent(HarkCall *call, GPtrArray *delivered, const GError *error)
{
  call->invite_answered = TRUE;
  if (error != NULL) {
    if (ringing_phase(call))
      hark_call_end(call, "failed", error->message);
    return;
  }
  for (guint i = 0; i < delivered->len; i++)
    device_of(call, delivered->pdata[i], TRUE);
  /* Every device answered busy before the delivery was reported. */
  if (!ringing_phase(call) || call->devices->len == 0)
    return;
  for (guint i = 0; i < call->devices->len; i++)
    if (!((CallDevice *)call->devices->pdata[i])->out)
      return;
  g_autofree char *why = g_strdup_printf("%s is busy", call->peer);
  hark_call_end(call, "busy", why);
}

/* Every invited device is out (busy, failed): the caller hears why. */
static void
device_out(HarkCall *call, const char *device, const char *why)
{
  CallDevice *d = device_of(call, device, TRUE);
  if (d != NULL)
    d->out = TRUE;
  for (guint i = 0; i < call->devices->len; i++)
    if (!((CallDevice *)call->devices->pdata[i])->out)
      return;
  if (call->invite_answered)
    hark_call_end(call, "busy", why);
}

static gboolean
same_nonce(const guint8 *a, const guint8 *b)
{
  return CRYPTO_memcmp(a, b, HARK_CALL_NONCE_SIZE) == 0;
}

/* An ANSWER that proves nothing: incomplete, or not echoing the nonce of our INVITE (an
 * earlier call's, or made up). Checked in every state, so that one replayed into a call
 * that is up is counted too. TRUE: refused and counted. */
static gboolean
answer_unproven(HarkCall *call, const HarkCallSignal *signal, const char *device)
{
  HarkCalls *calls = call->calls;
  if (!signal->has_peer_nonce || !signal->has_nonce || !signal->has_share ||
      signal->codecs == NULL || signal->codecs->len == 0 || signal->ice_ufrag == NULL ||
      signal->ice_pwd == NULL) {
    calls->counters.refused_malformed++;
    g_message("calls: %s: an ANSWER from %.12s without its nonces, share, codec or ICE fields",
              call->id_hex, device);
    return TRUE;
  }
  if (!call->outgoing || !same_nonce(signal->peer_nonce, call->nonce)) {
    calls->counters.refused_proof++;
    g_message("calls: %s: an ANSWER from %.12s does not echo the nonce of our INVITE", call->id_hex,
              device);
    return TRUE;
  }
  return FALSE;
}

static void
take_answer(HarkCall *call, const HarkCallSignal *signal, const char *device)
{
  HarkCalls *calls = call->calls;
  const HarkCallCodec *chosen = &g_array_index(signal->codecs, HarkCallCodec, 0);
  gboolean offered = FALSE;
  for (guint i = 0; i < call->offered->len && !offered; i++)
    offered = strcmp(g_array_index(call->offered, HarkCallCodec, i).name, chosen->name) == 0;
  CallDevice *d = device_of(call, device, TRUE);
  if (d != NULL)
    d->out = FALSE;
  g_free(call->peer_device);
  call->peer_device = g_strdup(device);
  if (signal->device_name != NULL) {
    g_free(call->peer_device_name);
    call->peer_device_name = g_strdup(signal->device_name);
  }
  if (!offered) {
    calls->counters.no_common_codec++;
    HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
    f->reason = g_strdup("no common codec");
    hark_call_send(call, device, f);
    cancel_devices(call, device, "answered elsewhere");
    hark_call_end(call, "failed", "no common codec");
    return;
  }
  memcpy(call->peer_nonce, signal->nonce, HARK_CALL_NONCE_SIZE);
  call->has_peer_nonce = TRUE;
  memcpy(call->peer_share, signal->share, HARK_CALL_SHARE_SIZE);
  call->has_peer_share = TRUE;
  g_free(call->codec);
  call->codec = g_strdup(chosen->name);
  g_autoptr(GError) error = NULL;
  if (!hark_call_media_derive(call, &error)) {
    HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
    f->reason = g_strdup("the keys could not be agreed");
    hark_call_send(call, device, f);
    cancel_devices(call, device, "answered elsewhere");
    hark_call_end(call, "failed", error->message);
    return;
  }
  hark_call_media_take_remote(call, signal);
  HarkCallSignal *ack = hark_call_signal_for(call, HARK_CALL_SIGNAL_ACK);
  ack->has_peer_nonce = TRUE;
  memcpy(ack->peer_nonce, call->peer_nonce, HARK_CALL_NONCE_SIZE);
  hark_call_send(call, device, ack);
  cancel_devices(call, device, "answered elsewhere");
  connecting(call);
  call->acked = TRUE;
  hark_call_media_trickle(call);
  hark_call_media_maybe_start(call);
}

/* ---- incoming ------------------------------------------------------------------------ */

static void media_ready(HarkCall *call);

void
hark_calls_take_invite(HarkCalls *calls, const HarkCallSignal *signal, const char *sender,
                       const char *sender_device)
{
  if (!signal->has_nonce || !signal->has_share || signal->codecs == NULL ||
      signal->codecs->len == 0 || signal->ice_ufrag == NULL || signal->ice_pwd == NULL) {
    calls->counters.refused_malformed++;
    g_message("calls: an INVITE from %s (%.12s) without its nonce, share, codecs or ICE fields",
              sender, sender_device);
    return;
  }
  if (calls->order->len >= calls->max_calls) {
    calls->counters.busy_sent++;
    HarkCallSignal *busy = hark_call_signal_new(HARK_CALL_SIGNAL_BUSY, signal->call_id, 1);
    busy->reason = g_strdup("busy");
    hark_calls_send_to(calls, sender, sender_device, busy);
    g_message("calls: an INVITE from %s answered busy (%u calls, calls.max)", sender,
              calls->order->len);
    return;
  }
  HarkCall *call = hark_call_new(calls, signal->call_id, FALSE, sender);
  g_hash_table_replace(call->seq_in, g_strdup(sender_device), GUINT_TO_POINTER(signal->seq));
  call->peer_device = g_strdup(sender_device);
  memcpy(call->peer_nonce, signal->nonce, HARK_CALL_NONCE_SIZE);
  call->has_peer_nonce = TRUE;
  memcpy(call->peer_share, signal->share, HARK_CALL_SHARE_SIZE);
  call->has_peer_share = TRUE;
  call->offered = g_array_ref(signal->codecs);
  call->dtmf_pt = signal->dtmf_payload_type;
  call->remote_ufrag = g_strdup(signal->ice_ufrag);
  call->remote_pwd = g_strdup(signal->ice_pwd);
  call->early_candidates = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; signal->candidates != NULL && i < signal->candidates->len; i++)
    g_ptr_array_add(call->early_candidates, g_strdup(signal->candidates->pdata[i]));
  call->early_end_of_candidates = signal->end_of_candidates;
  /* The caller's CANCEL ends it at its ring timeout; this one is for a caller gone. */
  call->ring_timer = hark_call_timer(call, (calls->ring_timeout_s + 5) * 1000, on_ring_timeout);
  hark_call_emit(call);
  HarkCallSignal *ringing = hark_call_signal_for(call, HARK_CALL_SIGNAL_RINGING);
  ringing->device_name = g_strdup(hark_calls_device_name(calls));
  hark_call_send(call, call->peer_device, ringing);
  hark_call_media_prepare(call, media_ready);
}

/* The first of the caller's codecs this node has, or NULL. */
static const HarkCallCodec *
pick_codec(HarkCall *call)
{
  for (guint i = 0; i < call->offered->len; i++) {
    const HarkCallCodec *c = &g_array_index(call->offered, HarkCallCodec, i);
    if (hark_call_media_codec(call->calls, c->name) != NULL)
      return c;
  }
  return NULL;
}

/* The agent is there: the ANSWER goes to the caller's device. */
static void
send_answer(HarkCall *call)
{
  HarkCallSignal *answer = hark_call_signal_for(call, HARK_CALL_SIGNAL_ANSWER);
  answer->has_nonce = TRUE;
  memcpy(answer->nonce, call->nonce, HARK_CALL_NONCE_SIZE);
  answer->has_peer_nonce = TRUE;
  memcpy(answer->peer_nonce, call->peer_nonce, HARK_CALL_NONCE_SIZE);
  answer->has_share = TRUE;
  memcpy(answer->share, hark_call_key_share_public(call->share), HARK_CALL_SHARE_SIZE);
  answer->codecs = g_array_new(FALSE, TRUE, sizeof(HarkCallCodec));
  for (guint i = 0; i < call->offered->len; i++)
    if (strcmp(g_array_index(call->offered, HarkCallCodec, i).name, call->codec) == 0)
      g_array_append_val(answer->codecs, g_array_index(call->offered, HarkCallCodec, i));
  answer->dtmf_payload_type = call->dtmf_pt;
  answer->device_name = g_strdup(hark_calls_device_name(call->calls));
  hark_call_media_take_early(call);
  hark_call_media_fill_local(call, answer);
  hark_call_send(call, call->peer_device, answer);
  hark_call_media_maybe_start(call);
}

/* The agent made while ringing is there: an answer given meanwhile goes now. */
static void
media_ready(HarkCall *call)
{
  call->media_ready = TRUE;
  if (call->answer_waits)
    send_answer(call);
}

gboolean
hark_call_answer(HarkCall *call, GError **error)
{
  HarkCalls *calls = call->calls;
  if (call->outgoing || call->state != CALL_RINGING)
    return fail(error, HARK_CALL_ERROR_STATE, "call %s is not ringing here", call->id_hex);
  const HarkCallCodec *codec = pick_codec(call);
  if (codec == NULL) {
    calls->counters.no_common_codec++;
    g_message("calls: %s: no common codec: %s offers none of ours", call->id_hex, call->peer);
    HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
    f->reason = g_strdup("no common codec");
    hark_call_send(call, call->peer_device, f);
    hark_call_end(call, "failed", "no common codec");
    return fail(error, HARK_CALL_ERROR_MEDIA, "no common codec: the caller offers none of ours");
  }
  call->codec = g_strdup(codec->name);
  call->share = hark_call_key_share_new(error);
  hark_call_random(call->nonce, sizeof call->nonce);
  if (call->share == NULL || !hark_call_media_derive(call, error)) {
    HarkCallSignal *f = hark_call_signal_for(call, HARK_CALL_SIGNAL_FAIL);
    f->reason = g_strdup("the call could not be set up");
    hark_call_send(call, call->peer_device, f);
    hark_call_end(call, "failed", (*error)->message);
    return FALSE;
  }
  /* Call waiting: the call(s) this user was in go on hold. */
  for (guint i = 0; i < calls->order->len; i++) {
    HarkCall *other = calls->order->pdata[i];
    if (other != call && established(other) && !other->local_hold)
      hark_call_hold(other, TRUE, NULL);
  }
  connecting(call);
  if (call->media_ready)
    send_answer(call);
  else
    call->answer_waits = TRUE;
  return TRUE;
}

gboolean
hark_call_decline(HarkCall *call, GError **error)
{
  if (call->outgoing || call->state != CALL_RINGING)
    return fail(error, HARK_CALL_ERROR_STATE, "call %s is not ringing here", call->id_hex);
  HarkCallSignal *decline = hark_call_signal_for(call, HARK_CALL_SIGNAL_DECLINE);
  decline->reason = g_strdup("declined");
  hark_call_send(call, call->peer_device, decline);
  hark_call_end(call, "declined", "you declined");
  return TRUE;
}

gboolean
hark_call_hangup(HarkCall *call, GError **error)
{
  if (call->state == CALL_ENDED)
    return fail(error, HARK_CALL_ERROR_STATE, "call %s has ended", call->id_hex);
  if (!call->outgoing && call->state == CALL_RINGING)
    return hark_call_decline(call, error);
  if (call->outgoing && ringing_phase(call)) {
    cancel_devices(call, NULL, "cancelled");
    hark_call_end(call, "cancelled", "you cancelled");
    return TRUE;
  }
  HarkCallSignal *hangup = hark_call_signal_for(call, HARK_CALL_SIGNAL_HANGUP);
  hangup->reason = g_strdup("hung up");
  hark_call_send(call, call->peer_device, hangup);
  hark_call_end(call, "answered", "you hung up");
  return TRUE;
}

/* ACTIVE or HELD as the holds and the media say (CONNECTING until media flows). */
static void
update_hold_state(HarkCall *call)
{
  hark_call_media_set_hold(call);
  if (call->session == NULL)
    return;
  if (call->local_hold || call->remote_hold) {
    if (call->state != CALL_HELD) {
      hark_call_set_state(call, CALL_HELD);
    } else {
      hark_call_emit(call); /* who holds changed */
    }
  } else {
    hark_call_set_state(call, CALL_ACTIVE);
  }
}

gboolean
hark_call_hold(HarkCall *call, gboolean hold, GError **error)
{
  if (!established(call))
    return fail(error, HARK_CALL_ERROR_STATE, "call %s is not connected", call->id_hex);
  if (call->local_hold == hold)
    return TRUE;
  call->local_hold = hold;
  HarkCallSignal *signal = hark_call_signal_for(call, HARK_CALL_SIGNAL_HOLD);
  signal->hold = hold;
  hark_call_send(call, call->peer_device, signal);
  update_hold_state(call);
  return TRUE;
}

gboolean
hark_call_change_codec(HarkCall *call, const char *name, GError **error)
{
  if (call->state != CALL_ACTIVE && call->state != CALL_HELD)
    return fail(error, HARK_CALL_ERROR_STATE, "call %s has no media yet", call->id_hex);
  const char *codec = hark_call_media_resolve_codec(call, name);
  if (codec == NULL)
    return fail(error, HARK_CALL_ERROR_MEDIA, "'%s' is not a codec of this call's offer", name);
  if (g_strcmp0(codec, call->codec) == 0)
    return fail(error, HARK_CALL_ERROR_STATE, "the call uses %s already", codec);
  g_free(call->asked_codec);
  call->asked_codec = g_strdup(codec);
  HarkCallSignal *update = hark_call_signal_for(call, HARK_CALL_SIGNAL_UPDATE);
  update->codecs = g_array_new(FALSE, TRUE, sizeof(HarkCallCodec));
  for (guint i = 0; i < call->offered->len; i++)
    if (strcmp(g_array_index(call->offered, HarkCallCodec, i).name, codec) == 0)
      g_array_append_val(update->codecs, g_array_index(call->offered, HarkCallCodec, i));
  hark_call_random(call->nonce, sizeof call->nonce);
  update->has_nonce = TRUE;
  memcpy(update->nonce, call->nonce, HARK_CALL_NONCE_SIZE);
  hark_call_send(call, call->peer_device, update);
  return TRUE;
}

gboolean
hark_call_change_path(HarkCall *call, const char *name, GError **error)
{
  HarkMediaIcePath path;
  if (!hark_call_media_path_parse(name, &path))
    return fail(error, HARK_CALL_ERROR_MALFORMED, "'%s' is not a path (any, udp, tcp, relay)",
                name);
  if (call->state != CALL_ACTIVE && call->state != CALL_HELD)
    return fail(error, HARK_CALL_ERROR_STATE, "call %s has no media yet", call->id_hex);
  HarkCallSignal *update = hark_call_signal_for(call, HARK_CALL_SIGNAL_UPDATE);
  if (!hark_call_media_restart(call, name, update, error)) {
    hark_call_signal_free(update);
    return FALSE;
  }
  g_free(call->asked_path);
  call->asked_path = g_strdup(name);
  hark_call_random(call->nonce, sizeof call->nonce);
  update->has_nonce = TRUE;
  memcpy(update->nonce, call->nonce, HARK_CALL_NONCE_SIZE);
  hark_call_send(call, call->peer_device, update);
  return TRUE;
}

/* The peer restarts ICE on a path: so do we, on the same path, then its credentials. */
static void
take_restart(HarkCall *call, const HarkCallSignal *signal, HarkCallSignal *ok)
{
  g_autoptr(GError) error = NULL;
  if (!hark_call_media_restart(call, signal->path != NULL ? signal->path : "any", ok, &error)) {
    g_message("calls: %s: cannot restart ICE as asked: %s", call->id_hex, error->message);
    return;
  }
  hark_call_media_take_remote(call, signal);
}

/* The peer asks for a codec and/or a path: both ends use it from now on, or ours stays. */
static void
take_update(HarkCall *call, const HarkCallSignal *signal)
{
  HarkCallSignal *ok = hark_call_signal_for(call, HARK_CALL_SIGNAL_UPDATE_OK);
  ok->codecs = g_array_new(FALSE, TRUE, sizeof(HarkCallCodec));
  if (signal->has_nonce) {
    ok->has_peer_nonce = TRUE;
    memcpy(ok->peer_nonce, signal->nonce, HARK_CALL_NONCE_SIZE);
  }
  if (signal->ice_ufrag != NULL && signal->ice_pwd != NULL)
    take_restart(call, signal, ok);
  const char *asked = signal->codecs != NULL && signal->codecs->len > 0
                        ? g_array_index(signal->codecs, HarkCallCodec, 0).name
                        : NULL;
  const char *codec = asked != NULL ? hark_call_media_resolve_codec(call, asked) : NULL;
  g_autoptr(GError) error = NULL;
  if (codec != NULL && g_strcmp0(codec, call->codec) != 0 &&
      !hark_call_media_swap(call, codec, &error)) {
    g_message("calls: %s: cannot change to %s: %s", call->id_hex, codec, error->message);
    codec = NULL;
  }
  const char *now = codec != NULL ? codec : call->codec;
  for (guint i = 0; now != NULL && i < call->offered->len; i++)
    if (strcmp(g_array_index(call->offered, HarkCallCodec, i).name, now) == 0)
      g_array_append_val(ok->codecs, g_array_index(call->offered, HarkCallCodec, i));
  hark_call_send(call, call->peer_device, ok);
  hark_call_emit(call);
}

static void
take_update_ok(HarkCall *call, const HarkCallSignal *signal)
{
  g_autofree char *asked_path = g_steal_pointer(&call->asked_path);
  if (signal->ice_ufrag != NULL && signal->ice_pwd != NULL && asked_path != NULL)
    hark_call_media_take_remote(call, signal);
  if (call->asked_codec == NULL)
    return;
  g_autofree char *asked = g_steal_pointer(&call->asked_codec);
  const char *agreed = signal->codecs != NULL && signal->codecs->len > 0
                         ? g_array_index(signal->codecs, HarkCallCodec, 0).name
                         : NULL;
  if (asked == NULL || g_strcmp0(agreed, asked) != 0) {
    g_message("calls: %s: the other side stays with %s", call->id_hex,
              agreed != NULL ? agreed : "its codec");
    return;
  }
  g_autoptr(GError) error = NULL;
  if (!hark_call_media_swap(call, asked, &error))
    g_message("calls: %s: cannot change to %s: %s", call->id_hex, asked, error->message);
  hark_call_emit(call);
}

static const char *
text_or(const char *reason, const char *otherwise)
{
  return reason != NULL ? reason : otherwise;
}

/* An ACK that does not echo the nonce of our ANSWER (an earlier call's, or made up), in
 * any state. TRUE: refused and counted. */
static gboolean
ack_unproven(HarkCall *call, const HarkCallSignal *signal, const char *device)
{
  if (!call->outgoing && call->state != CALL_RINGING && signal->has_peer_nonce &&
      same_nonce(signal->peer_nonce, call->nonce))
    return FALSE;
  call->calls->counters.refused_proof++;
  g_message("calls: %s: an ACK from %.12s that does not echo the nonce of our ANSWER", call->id_hex,
            device);
  return TRUE;
}

gboolean
hark_call_take(HarkCall *call, const HarkCallSignal *signal, const char *device)
{
  g_autofree char *why = NULL;
  if ((signal->type == HARK_CALL_SIGNAL_ANSWER && answer_unproven(call, signal, device)) ||
      (signal->type == HARK_CALL_SIGNAL_ACK && ack_unproven(call, signal, device)))
    return FALSE;
  switch (signal->type) {
  case HARK_CALL_SIGNAL_RINGING:
    if (call->outgoing && ringing_phase(call)) {
      CallDevice *d = device_of(call, device, TRUE);
      if (d != NULL) {
        d->ringing = TRUE;
        g_free(d->name);
        d->name = g_strdup(signal->device_name);
      }
      hark_call_set_state(call, CALL_RINGING);
    }
    break;
  case HARK_CALL_SIGNAL_ANSWER:
    if (call->outgoing && ringing_phase(call))
      take_answer(call, signal, device);
    break;
  case HARK_CALL_SIGNAL_ACK:
    if (call->state != CALL_CONNECTING || call->acked)
      break;
    call->acked = TRUE;
    hark_call_media_trickle(call);
    hark_call_media_maybe_start(call);
    break;
  case HARK_CALL_SIGNAL_DECLINE:
    if (call->outgoing && ringing_phase(call)) {
      cancel_devices(call, device, "declined");
      why = g_strdup_printf("%s declined", call->peer);
      hark_call_end(call, "declined", why);
    }
    break;
  case HARK_CALL_SIGNAL_BUSY:
    if (call->outgoing && ringing_phase(call)) {
      why = g_strdup_printf("%s is busy", call->peer);
      device_out(call, device, why);
    }
    break;
  case HARK_CALL_SIGNAL_CANCEL:
    if (!call->outgoing && (call->state == CALL_RINGING || call->state == CALL_CONNECTING)) {
      const char *reason = text_or(signal->reason, "cancelled");
      hark_call_end(
        call, strcmp(reason, "answered elsewhere") == 0 ? "answered elsewhere" : "missed", reason);
    }
    break;
  case HARK_CALL_SIGNAL_HANGUP:
    why = g_strdup_printf("%s hung up", call->peer);
    hark_call_end(call, call->state == CALL_RINGING ? "missed" : "answered", why);
    break;
  case HARK_CALL_SIGNAL_HOLD:
    if (established(call) && call->remote_hold != signal->hold) {
      call->remote_hold = signal->hold;
      update_hold_state(call);
    }
    break;
  case HARK_CALL_SIGNAL_UPDATE:
    if (call->state == CALL_ACTIVE || call->state == CALL_HELD)
      take_update(call, signal);
    break;
  case HARK_CALL_SIGNAL_UPDATE_OK:
    if (call->state == CALL_ACTIVE || call->state == CALL_HELD)
      take_update_ok(call, signal);
    break;
  case HARK_CALL_SIGNAL_CANDIDATES:
    if (established(call))
      hark_call_media_take_remote(call, signal);
    break;
  case HARK_CALL_SIGNAL_FAIL:
    why = g_strdup_printf("%s: %s", call->peer, text_or(signal->reason, "the call failed"));
    hark_call_end(call, "failed", why);
    break;
  case HARK_CALL_SIGNAL_INVITE:
    break; /* call.c takes INVITEs */
  }
  return TRUE;
}
