/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-api.c: what the layers above the calls (conferences) use: a watch on every call's
 * state, a call dialled with its own source and sink (a conference leg), hang-up, peer
 * and stats by id (call.h). */
#include "call-private.h"

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
