/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call.c: the calls of this node. It takes the messenger's signals of kind "call"
 * (already verified: the sender's certified device key signed them, they are fresh and
 * not replayed), parses them, checks that they belong to a call of this device, come from
 * that call's peer and carry a seq above the sender's last one, and hands them to the
 * call (call-session.c). It sends the call's signals, emits the `call` event at every
 * state change and keeps what ended in the call log. */
#include "call-private.h"

#include "hark/address.h"
#include "hark/presence.h"

#include <openssl/rand.h>
#include <string.h>

typedef struct {
  double tokens;
  gint64 refilled_us;
} CallBucket;

static const char *const state_names[] = {
  [CALL_DIALING] = "dialing", [CALL_RINGING] = "ringing", [CALL_CONNECTING] = "connecting",
  [CALL_ACTIVE] = "active",   [CALL_HELD] = "held",       [CALL_ENDED] = "ended",
};

const char *
hark_call_state_name(CallState state)
{
  return state_names[state];
}

const char *
hark_calls_device_name(HarkCalls *calls)
{
  const HarkConfig *config = calls->node->config;
  return config->login_device != NULL ? config->login_device : config->node_name;
}

/* ---- the calls --------------------------------------------------------------------- */

static void
call_device_free(gpointer data)
{
  CallDevice *d = data;
  g_free(d->device);
  g_free(d->name);
  g_free(d);
}

HarkCall *
hark_call_new(HarkCalls *calls, const guint8 *id, gboolean outgoing, const char *peer)
{
  HarkCall *call = g_new0(HarkCall, 1);
  call->calls = calls;
  memcpy(call->id, id, HARK_CALL_ID_SIZE);
  for (guint i = 0; i < HARK_CALL_ID_SIZE; i++)
    g_snprintf(call->id_hex + 2 * i, 3, "%02x", id[i]);
  call->outgoing = outgoing;
  call->peer = hark_presence_name_key(peer);
  call->seq_in = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  call->devices = g_ptr_array_new_with_free_func(call_device_free);
  call->started_at = hark_clock_now_seconds(hark_context_get_clock(calls->ctx));
  call->dialled_us = g_get_monotonic_time();
  call->state = outgoing ? CALL_DIALING : CALL_RINGING;
  g_hash_table_insert(calls->calls, g_strdup(call->id_hex), call);
  g_ptr_array_add(calls->order, call);
  return call;
}

static void
call_free(HarkCall *call)
{
  hark_call_media_stop(call);
  hark_call_timer_stop(&call->ring_timer);
  hark_call_timer_stop(&call->connect_timer);
  g_free(call->remote_ufrag);
  g_free(call->remote_pwd);
  g_free(call->peer);
  g_free(call->peer_device);
  g_free(call->peer_device_name);
  g_hash_table_unref(call->seq_in);
  g_ptr_array_unref(call->devices);
  hark_call_key_share_free(call->share);
  g_clear_pointer(&call->offered, g_array_unref);
  g_free(call->codec);
  g_free(call->asked_codec);
  g_free(call->asked_path);
  g_free(call->path_change_kind);
  g_free(call->path_change_reason);
  g_free(call->reason);
  g_free(call->last_path);
  g_free(call->servers_from);
  g_clear_pointer(&call->early_candidates, g_ptr_array_unref);
  g_free(call->media_source);
  g_free(call->media_sink);
  g_free(call);
}

HarkCall *
hark_calls_find(HarkCalls *calls, const char *id_hex)
{
  return g_hash_table_lookup(calls->calls, id_hex);
}

JsonObject *
hark_call_json(HarkCall *call)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "id", call->id_hex);
  json_object_set_string_member(o, "peer", call->peer);
  if (call->peer_device != NULL)
    json_object_set_string_member(o, "peer_device", call->peer_device);
  if (call->peer_device_name != NULL)
    json_object_set_string_member(o, "peer_device_name", call->peer_device_name);
  json_object_set_string_member(o, "direction", call->outgoing ? "out" : "in");
  json_object_set_string_member(o, "state", hark_call_state_name(call->state));
  if (call->muted)
    json_object_set_boolean_member(o, "muted", TRUE);
  if (call->state == CALL_HELD) {
    json_object_set_boolean_member(o, "local_hold", call->local_hold);
    json_object_set_boolean_member(o, "remote_hold", call->remote_hold);
  }
  if (call->reason != NULL)
    json_object_set_string_member(o, "reason", call->reason);
  if (call->outcome != NULL)
    json_object_set_string_member(o, "outcome", call->outcome);
  if (call->codec != NULL && call->active_us != 0)
    json_object_set_string_member(o, "codec", call->codec);
  g_autofree char *path = hark_call_media_path(call);
  if (path == NULL)
    path = g_strdup(call->last_path);
  if (path != NULL)
    json_object_set_string_member(o, "path", path);
  if (call->path_change_kind != NULL)
    json_object_set_object_member(o, "path_change", hark_call_media_path_change_json(call));
  json_object_set_int_member(o, "started_at", call->started_at);
  if (call->answered_at != 0)
    json_object_set_int_member(o, "answered_at", call->answered_at);
  hark_call_json_times(call, o);
  return o;
}

void
hark_call_json_times(HarkCall *call, JsonObject *o)
{
  if (call->active_us == 0)
    return;
  json_object_set_int_member(o, "setup_ms", (call->active_us - call->dialled_us) / 1000);
  if (call->answered_us != 0)
    json_object_set_int_member(o, "connect_ms", (call->active_us - call->answered_us) / 1000);
}

/* The event names the call `call_id`: an `id` marks a ctl answer. */
static void
emit(HarkCall *call)
{
  JsonObject *o = hark_call_json(call);
  json_object_remove_member(o, "id");
  json_object_set_string_member(o, "call_id", call->id_hex);
  hark_context_emit(call->calls->ctx, "call", o);
  if (call->calls->watch != NULL)
    call->calls->watch(call->calls->watch_data, call->id_hex, call->peer, call->peer_device,
                       hark_call_state_name(call->state),
                       call->state == CALL_ENDED ? call->reason : NULL);
}

void
hark_call_emit(HarkCall *call)
{
  emit(call);
}

GSource *
hark_call_timer(HarkCall *call, guint ms, GSourceFunc func)
{
  /* Not g_timeout_source_new_seconds: it may fire up to a second early. */
  GSource *source = g_timeout_source_new(ms);
  g_source_set_callback(source, func, call, NULL);
  g_source_attach(source, hark_context_main_context(call->calls->ctx));
  return source;
}

void
hark_call_timer_stop(GSource **timer)
{
  if (*timer == NULL)
    return;
  g_source_destroy(*timer);
  g_clear_pointer(timer, g_source_unref);
}

void
hark_call_set_state(HarkCall *call, CallState state)
{
  if (call->state == CALL_ENDED)
    return;
  if (state == CALL_ACTIVE && (call->local_hold || call->remote_hold))
    state = CALL_HELD;
  if (state == CALL_ACTIVE && call->active_us == 0)
    call->active_us = g_get_monotonic_time();
  gboolean changed = call->state != state;
  call->state = state;
  if (changed)
    emit(call);
}

/* Every ended call is kept in the call log (when the node has one). */
static void
log_ended(HarkCall *call)
{
  if (call->calls->log == NULL)
    return;
  HarkCallLogEntry entry = {
    .id = call->id_hex,
    .peer = call->peer,
    .peer_device = call->peer_device,
    .outgoing = call->outgoing,
    .started_at = call->started_at,
    .answered_at = call->answered_at,
    .ended_at = call->ended_at,
    .outcome = (char *)call->outcome,
    .reason = call->reason,
    .codec = call->active_us != 0 ? call->codec : NULL,
    .path = call->last_path,
  };
  g_autoptr(GError) error = NULL;
  if (!hark_call_log_add(call->calls->log, &entry, &error))
    g_warning("calls: %s not logged: %s", call->id_hex, error->message);
}

void
hark_call_end(HarkCall *call, const char *outcome, const char *reason)
{
  HarkCalls *calls = call->calls;
  if (call->state == CALL_ENDED)
    return;
  call->outcome = outcome;
  g_free(call->reason);
  call->reason = g_strdup(reason);
  call->ended_at = hark_clock_now_seconds(hark_context_get_clock(calls->ctx));
  hark_call_media_note_path(call);
  hark_call_media_stop(call);
  call->state = CALL_ENDED;
  g_message("calls: %s %s %s ended: %s (%s)", call->id_hex, call->outgoing ? "to" : "from",
            call->peer, outcome, reason != NULL ? reason : "");
  emit(call);
  log_ended(call);
  g_ptr_array_remove(calls->order, call);
  g_hash_table_remove(calls->calls, call->id_hex);
  call_free(call);
}

/* ---- sending ------------------------------------------------------------------------- */

CallsAlive *
hark_calls_alive_ref(CallsAlive *alive)
{
  alive->refs++;
  return alive;
}

void
hark_calls_alive_unref(CallsAlive *alive)
{
  if (--alive->refs == 0)
    g_free(alive);
}

typedef struct {
  CallsAlive *alive;
  char id_hex[2 * HARK_CALL_ID_SIZE + 1];
  HarkCallSignalType type;
  char *device;
} CallSend;

HarkCallSignal *
hark_call_signal_for(HarkCall *call, HarkCallSignalType type)
{
  return hark_call_signal_new(type, call->id, ++call->seq_out);
}

static void
call_sent(gpointer data, GPtrArray *delivered, const GError *error)
{
  CallSend *send = data;
  HarkCalls *calls = send->alive->calls;
  HarkCall *call = calls != NULL ? hark_calls_find(calls, send->id_hex) : NULL;
  if (call != NULL && send->type == HARK_CALL_SIGNAL_INVITE) {
    hark_call_invite_sent(call, delivered, error);
  } else if (call != NULL && error != NULL) {
    g_message("calls: %s: the %s to %.12s did not arrive: %s", call->id_hex,
              hark_call_signal_type_name(send->type), send->device != NULL ? send->device : "",
              error->message);
    /* Without these the other side never knows the call goes on. */
    if (send->type == HARK_CALL_SIGNAL_ANSWER || send->type == HARK_CALL_SIGNAL_ACK) {
      g_autofree char *why = g_strdup_printf("%s cannot be reached", call->peer);
      hark_call_end(call, "failed", why);
    }
  }
  hark_calls_alive_unref(send->alive);
  g_free(send->device);
  g_free(send);
}

void
hark_calls_send_to(HarkCalls *calls, const char *user, const char *device, HarkCallSignal *signal)
{
  g_autoptr(HarkCallSignal) owned = signal;
  CallSend *send = g_new0(CallSend, 1);
  send->alive = hark_calls_alive_ref(calls->alive);
  for (guint i = 0; i < HARK_CALL_ID_SIZE; i++)
    g_snprintf(send->id_hex + 2 * i, 3, "%02x", owned->call_id[i]);
  send->type = owned->type;
  send->device = g_strdup(device);
  hark_messenger_signal_send(calls->messenger, user, device, "call", hark_call_signal_build(owned),
                             call_sent, send);
}

void
hark_call_send(HarkCall *call, const char *device, HarkCallSignal *signal)
{
  hark_calls_send_to(call->calls, call->peer, device, signal);
}

/* ---- receiving ----------------------------------------------------------------------- */

static gboolean
invite_allowed(HarkCalls *calls, const char *sender)
{
  gint64 now = g_get_monotonic_time();
  CallBucket *bucket = g_hash_table_lookup(calls->invite_buckets, sender);
  if (bucket == NULL) {
    if (g_hash_table_size(calls->invite_buckets) >= CALL_MAX_SENDERS)
      g_hash_table_remove_all(calls->invite_buckets);
    bucket = g_new0(CallBucket, 1);
    bucket->tokens = CALL_INVITES_PER_MINUTE;
    bucket->refilled_us = now;
    g_hash_table_insert(calls->invite_buckets, g_strdup(sender), bucket);
  }
  bucket->tokens = MIN(CALL_INVITES_PER_MINUTE,
                       bucket->tokens + (double)(now - bucket->refilled_us) *
                                          CALL_INVITES_PER_MINUTE / (60.0 * G_USEC_PER_SEC));
  bucket->refilled_us = now;
  if (bucket->tokens < 1.0)
    return FALSE;
  bucket->tokens -= 1.0;
  return TRUE;
}

static void
refuse(HarkCalls *calls, guint64 *counter, const char *sender, const char *device, const char *why)
{
  (*counter)++;
  g_autofree char *shown = hark_text_escape(why, -1, 200);
  g_message("calls: refused a signal from %s (%.12s): %s", sender, device, shown);
}

/* Whether sender/device may speak in call: its peer user, and once the peer device is
 * known (the caller's, the one that answered) that device only. */
static gboolean
belongs(HarkCall *call, const char *sender, const char *device)
{
  if (strcmp(sender, call->peer) != 0)
    return FALSE;
  if (call->peer_device != NULL)
    return strcmp(device, call->peer_device) == 0;
  for (guint i = 0; i < call->devices->len; i++)
    if (strcmp(((CallDevice *)call->devices->pdata[i])->device, device) == 0)
      return TRUE;
  /* The INVITE's delivery may be reported after a fast device's answer. */
  return call->outgoing && !call->invite_answered;
}

static void
on_signal(gpointer data, const char *sender, const char *sender_device, GVariant *body,
          gint64 sealed_at)
{
  HarkCalls *calls = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCallSignal) signal = hark_call_signal_parse(body, &error);
  if (signal == NULL) {
    refuse(calls, &calls->counters.refused_malformed, sender, sender_device, error->message);
    return;
  }
  char id_hex[2 * HARK_CALL_ID_SIZE + 1];
  for (guint i = 0; i < HARK_CALL_ID_SIZE; i++)
    g_snprintf(id_hex + 2 * i, 3, "%02x", signal->call_id[i]);
  HarkCall *call = hark_calls_find(calls, id_hex);
  if (signal->type == HARK_CALL_SIGNAL_INVITE) {
    if (call != NULL) {
      refuse(calls, &calls->counters.refused_stale, sender, sender_device,
             "an INVITE for a call that exists");
      return;
    }
    if (!invite_allowed(calls, sender)) {
      refuse(calls, &calls->counters.invites_limited, sender, sender_device,
             "over " G_STRINGIFY(CALL_INVITES_PER_MINUTE) " INVITEs a minute from that user");
      return;
    }
    calls->counters.signals++;
    hark_calls_take_invite(calls, signal, sender, sender_device);
    return;
  }
  if (call == NULL) {
    /* A CANCEL or HANGUP for a call that ended here already is normal, not an attack. */
    if (signal->type != HARK_CALL_SIGNAL_CANCEL && signal->type != HARK_CALL_SIGNAL_HANGUP &&
        signal->type != HARK_CALL_SIGNAL_FAIL)
      refuse(calls, &calls->counters.refused_unknown, sender, sender_device,
             "for a call this device does not have");
    return;
  }
  if (!belongs(call, sender, sender_device)) {
    refuse(calls, &calls->counters.refused_sender, sender, sender_device,
           "from a user or device that is not in the call");
    return;
  }
  guint32 last = GPOINTER_TO_UINT(g_hash_table_lookup(call->seq_in, sender_device));
  if (signal->seq <= last) {
    refuse(calls, &calls->counters.refused_stale, sender, sender_device,
           "its seq is not above the last one");
    return;
  }
  g_hash_table_replace(call->seq_in, g_strdup(sender_device), GUINT_TO_POINTER(signal->seq));
  if (!hark_call_take(call, signal, sender_device)) {
    /* Refused unproven (the call is untouched): the real signal after it still counts. */
    g_hash_table_replace(call->seq_in, g_strdup(sender_device), GUINT_TO_POINTER(last));
    return;
  }
  calls->counters.signals++;
}

/* ---- the object ---------------------------------------------------------------------- */

/* A relay dies with its super node (the SN's TURN server, or one beside it): once the
 * node is attached to another SN, the calls that went through the old one's relay move. */
static void
on_overlay_event(gpointer data, const char *event, JsonObject *details)
{
  HarkCalls *calls = data;
  if (g_strcmp0(event, "overlay-attached") != 0)
    return;
  for (guint i = 0; i < calls->order->len; i++)
    hark_call_media_follow_sn(calls->order->pdata[i]);
}

static const HarkOverlayListener calls_listener = {
  .event = on_overlay_event,
};

HarkCalls *
hark_calls_new(HarkNode *node, HarkOverlay *overlay, HarkMessenger *messenger, HarkCallLog *log)
{
  HarkCalls *calls = g_new0(HarkCalls, 1);
  calls->node = node;
  calls->ctx = node->core_ctx;
  calls->overlay = overlay;
  calls->messenger = messenger;
  calls->log = log;
  calls->alive = g_new0(CallsAlive, 1);
  calls->alive->refs = 1;
  calls->alive->calls = calls;
  calls->calls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  calls->order = g_ptr_array_new();
  calls->invite_buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  calls->ring_timeout_s = (guint)node->config->call_ring_timeout;
  calls->max_calls = (guint)node->config->call_max;
  hark_messenger_set_signal_handler(messenger, "call", on_signal, calls);
  calls->listener = hark_overlay_add_listener(overlay, &calls_listener, calls);
  return calls;
}

void
hark_calls_free(HarkCalls *calls)
{
  if (calls == NULL)
    return;
  hark_messenger_set_signal_handler(calls->messenger, "call", NULL, NULL);
  hark_overlay_remove_listener(calls->overlay, calls->listener);
  /* The peers hear of it (the node stops): each call ends as a hang-up would end it. */
  while (calls->order->len > 0) {
    HarkCall *call = calls->order->pdata[calls->order->len - 1];
    if (!hark_call_hangup(call, NULL))
      hark_call_end(call, "failed", "this node stopped");
  }
  calls->alive->calls = NULL;
  hark_calls_alive_unref(calls->alive);
  g_hash_table_unref(calls->calls);
  g_ptr_array_unref(calls->order);
  g_hash_table_unref(calls->invite_buckets);
  g_free(calls);
}

void
hark_call_random(guint8 *out, gsize size)
{
  if (RAND_bytes(out, (int)size) != 1)
    g_error("calls: no randomness from OpenSSL");
}
