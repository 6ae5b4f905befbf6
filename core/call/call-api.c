/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-api.c: what the layers above the calls (conferences) use: a watch on every call's
 * state, a call dialled with its own source and sink (a conference leg), a running call
 * given new ones, answer and hang-up, peer and stats by id (call.h). */
#include "call-private.h"

#include <string.h>

void
hark_calls_set_watch(HarkCalls *calls, HarkCallsWatch func, gpointer data)
{
  calls->watch = func;
  calls->watch_data = func != NULL ? data : NULL;
}

char *
hark_calls_dial_with(HarkCalls *calls, const char *user, const char *source, const char *sink,
                     GError **error)
{
  HarkCall *call = hark_call_dial(calls, user, error);
  if (call == NULL)
    return NULL;
  /* The session starts once the keys are agreed, well after this. */
  call->media_source = g_strdup(source);
  call->media_sink = g_strdup(sink);
  return g_strdup(call->id_hex);
}

const char *
hark_calls_plain_with(HarkCalls *calls, const char *user)
{
  HarkCall *found = NULL;
  for (guint i = 0; i < calls->order->len; i++) {
    HarkCall *call = calls->order->pdata[i];
    if (strcmp(call->peer, user) == 0 && call->media_source == NULL && call->session != NULL &&
        (call->state == CALL_ACTIVE || call->state == CALL_HELD))
      found = call;
  }
  return found != NULL ? found->id_hex : NULL;
}

gboolean
hark_calls_set_media(HarkCalls *calls, const char *id_hex, const char *source, const char *sink,
                     GError **error)
{
  HarkCall *call = hark_calls_find(calls, id_hex);
  if (call == NULL) {
    g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "no call %s", id_hex);
    return FALSE;
  }
  g_free(call->media_source);
  g_free(call->media_sink);
  call->media_source = g_strdup(source);
  call->media_sink = g_strdup(sink);
  g_autoptr(GError) local = NULL;
  if (hark_call_media_rebuild(call, &local))
    return TRUE;
  g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MEDIA, "%s", local->message);
  hark_call_end(call, "failed", local->message);
  return FALSE;
}

gboolean
hark_calls_answer_id(HarkCalls *calls, const char *id_hex, GError **error)
{
  HarkCall *call = hark_calls_find(calls, id_hex);
  if (call == NULL) {
    g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "no call %s", id_hex);
    return FALSE;
  }
  return hark_call_answer(call, error);
}

HarkOverlay *
hark_calls_overlay(HarkCalls *calls)
{
  return calls->overlay;
}

gboolean
hark_calls_hangup_id(HarkCalls *calls, const char *id_hex, GError **error)
{
  HarkCall *call = hark_calls_find(calls, id_hex);
  if (call == NULL) {
    g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "no call %s", id_hex);
    return FALSE;
  }
  return hark_call_hangup(call, error);
}

gboolean
hark_calls_get_peer(HarkCalls *calls, const char *id_hex, const char **peer,
                    const char **peer_device, const char **state)
{
  HarkCall *call = hark_calls_find(calls, id_hex);
  if (call == NULL)
    return FALSE;
  *peer = call->peer;
  *peer_device = call->peer_device;
  *state = hark_call_state_name(call->state);
  return TRUE;
}

JsonObject *
hark_calls_stats(HarkCalls *calls, const char *id_hex)
{
  HarkCall *call = hark_calls_find(calls, id_hex);
  return call != NULL ? hark_call_media_stats(call) : NULL;
}

static gboolean
plain(const HarkCall *call)
{
  return call->media_source == NULL && call->session != NULL &&
         (call->state == CALL_ACTIVE || call->state == CALL_HELD);
}

GPtrArray *
hark_calls_mergeable(HarkCalls *calls)
{
  GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < calls->order->len; i++) {
    HarkCall *call = calls->order->pdata[i];
    /* Established plain calls are the ones on hold and the current one. */
    if (plain(call))
      g_ptr_array_add(ids, g_strdup(call->id_hex));
  }
  return ids;
}

gboolean
hark_calls_hold_id(HarkCalls *calls, const char *id_hex, gboolean hold, GError **error)
{
  HarkCall *call = hark_calls_find(calls, id_hex);
  if (call == NULL) {
    g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "no call %s", id_hex);
    return FALSE;
  }
  return hark_call_hold(call, hold, error);
}

gboolean
hark_calls_mute_id(HarkCalls *calls, const char *id_hex, gboolean mute, GError **error)
{
  HarkCall *call = hark_calls_find(calls, id_hex);
  if (call == NULL) {
    g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_STATE, "no call %s", id_hex);
    return FALSE;
  }
  return hark_call_media_set_mute(call, mute, error);
}

void
hark_calls_set_mute_hook(HarkCalls *calls, HarkCallsMuteHook func, gpointer data)
{
  calls->mute_hook = func;
  calls->mute_hook_data = func != NULL ? data : NULL;
}
