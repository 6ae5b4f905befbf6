/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-commands.c: `call`, `answer`, `decline`, `hangup`, `hold`, `resume`, `codec`,
 * `path`, `mute`, `unmute`, `dtmf`, `calls` and `stats`. A command that takes an ID may leave it out when exactly one call
 * fits (the one ringing here, for `answer`); an ID may be shortened to a unique prefix. */
#include "call-private.h"

#include <string.h>

typedef gboolean (*CallFits)(HarkCall *call);

static HarkCalls *
calls_of(HarkCommandCall *command, gpointer user_data)
{
  HarkCalls *calls = *(HarkCalls **)user_data;
  if (calls == NULL)
    hark_command_call_return_error(
      command, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                   "calls need a login section in the configuration"));
  return calls;
}

/* The call args' "id" names (a unique prefix of at least 4 hex digits), or the one call
 * that fits when there is no id; NULL after answering the command with why not. */
static HarkCall *
pick(HarkCalls *calls, HarkCommandCall *command, JsonObject *args, CallFits fits, const char *what)
{
  const char *id = json_object_get_string_member_with_default(args, "id", NULL);
  HarkCall *found = NULL;
  guint matches = 0;
  for (guint i = 0; i < calls->order->len; i++) {
    HarkCall *call = calls->order->pdata[i];
    gboolean named = id != NULL && strlen(id) >= 4 && g_str_has_prefix(call->id_hex, id);
    if ((id != NULL && named) || (id == NULL && fits(call))) {
      found = call;
      matches++;
    }
  }
  if (matches == 1)
    return found;
  GError *error = NULL;
  if (id != NULL && matches == 0)
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "no call %s here (`calls` lists them)", id);
  else if (id != NULL)
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "%s names %u calls: give more of the id", id, matches);
  else if (matches == 0)
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED, "no call %s", what);
  else
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "%u calls %s: say which (`calls` lists their ids)", matches, what);
  hark_command_call_return_error(command, error);
  return NULL;
}

static void
answer_error(HarkCommandCall *command, GError *error)
{
  HarkCommandError code = error->code == HARK_CALL_ERROR_MALFORMED
                            ? HARK_COMMAND_ERROR_BAD_ARGUMENTS
                            : HARK_COMMAND_ERROR_FAILED;
  hark_command_call_return_error(command,
                                 g_error_new_literal(HARK_COMMAND_ERROR, code, error->message));
  g_error_free(error);
}

static void
answer_call(HarkCommandCall *command, HarkCall *call, const char *id_hex)
{
  /* The call may have ended (and be gone) by now: say so. */
  JsonObject *o = call != NULL ? hark_call_json(call) : json_object_new();
  if (call == NULL) {
    json_object_set_string_member(o, "id", id_hex);
    json_object_set_string_member(o, "state", "ended");
  }
  hark_command_call_return_object(command, o);
}

static gboolean
fits_ringing_here(HarkCall *call)
{
  return !call->outgoing && call->state == CALL_RINGING;
}

static gboolean
fits_any(HarkCall *call)
{
  return TRUE;
}

static gboolean
fits_holdable(HarkCall *call)
{
  return (call->state == CALL_CONNECTING || call->state == CALL_ACTIVE ||
          call->state == CALL_HELD) &&
         !call->local_hold;
}

static gboolean
fits_held(HarkCall *call)
{
  return call->local_hold;
}

static gboolean
fits_media(HarkCall *call)
{
  return call->state == CALL_ACTIVE || call->state == CALL_HELD;
}

static void
run_call(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkCalls *calls = calls_of(command, user_data);
  if (calls == NULL)
    return;
  GError *error = NULL;
  HarkCall *call = hark_call_dial(calls, json_object_get_string_member(args, "user"), &error);
  if (call == NULL) {
    answer_error(command, error);
    return;
  }
  answer_call(command, call, NULL);
}

typedef gboolean (*CallAction)(HarkCall *call, GError **error);

static void
run_action(HarkCommandCall *command, JsonObject *args, gpointer user_data, CallFits fits,
           const char *what, CallAction action)
{
  HarkCalls *calls = calls_of(command, user_data);
  HarkCall *call = calls != NULL ? pick(calls, command, args, fits, what) : NULL;
  if (call == NULL)
    return;
  char id_hex[sizeof call->id_hex];
  memcpy(id_hex, call->id_hex, sizeof id_hex);
  GError *error = NULL;
  if (!action(call, &error)) {
    answer_error(command, error);
    return;
  }
  answer_call(command, hark_calls_find(calls, id_hex), id_hex);
}

static void
run_answer(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  run_action(command, args, user_data, fits_ringing_here, "rings here", hark_call_answer);
}

static void
run_decline(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  run_action(command, args, user_data, fits_ringing_here, "rings here", hark_call_decline);
}

static void
run_hangup(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  run_action(command, args, user_data, fits_any, "is going on", hark_call_hangup);
}

static gboolean
hold_on(HarkCall *call, GError **error)
{
  return hark_call_hold(call, TRUE, error);
}

static gboolean
hold_off(HarkCall *call, GError **error)
{
  return hark_call_hold(call, FALSE, error);
}

static void
run_hold(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  run_action(command, args, user_data, fits_holdable, "is connected and not on hold", hold_on);
}

static void
run_resume(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  run_action(command, args, user_data, fits_held, "is on hold here", hold_off);
}

static gboolean
fits_connected(HarkCall *call)
{
  return call->state == CALL_CONNECTING || call->state == CALL_ACTIVE || call->state == CALL_HELD;
}

static gboolean
mute_on(HarkCall *call, GError **error)
{
  return hark_call_media_set_mute(call, TRUE, error);
}

static gboolean
mute_off(HarkCall *call, GError **error)
{
  return hark_call_media_set_mute(call, FALSE, error);
}

/* `mute USER` (an id that is not hex is a user) or a `mute` with no call named: the
 * conference layer's hook may take it (a member muted by the host, oneself in a
 * conference); else it is the call's mute. */
static gboolean
mute_hooked(HarkCommandCall *command, JsonObject *args, gpointer user_data, gboolean mute)
{
  HarkCalls *calls = *(HarkCalls **)user_data;
  const char *id = json_object_get_string_member_with_default(args, "id", NULL);
  const char *user = json_object_get_string_member_with_default(args, "user", NULL);
  if (user == NULL && id != NULL && id[strspn(id, "0123456789abcdefABCDEF")] != '\0')
    user = id;
  if (calls == NULL || (id != NULL && user == NULL))
    return FALSE;
  if (calls->mute_hook == NULL) {
    if (user == NULL)
      return FALSE;
    hark_command_call_return_error(
      command, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                           "no conference here: only a conference's host mutes %s", user));
    return TRUE;
  }
  gboolean taken = TRUE;
  GError *error = NULL;
  JsonObject *answer = calls->mute_hook(calls->mute_hook_data, user, mute, &taken, &error);
  if (!taken)
    return FALSE;
  if (answer != NULL)
    hark_command_call_return_object(command, answer);
  else
    hark_command_call_return_error(command, error);
  return TRUE;
}

static void
run_mute(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  if (!mute_hooked(command, args, user_data, TRUE))
    run_action(command, args, user_data, fits_connected, "is connected", mute_on);
}

static void
run_unmute(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  if (!mute_hooked(command, args, user_data, FALSE))
    run_action(command, args, user_data, fits_connected, "is connected", mute_off);
}

static void
run_dtmf(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkCalls *calls = calls_of(command, user_data);
  HarkCall *call = calls != NULL ? pick(calls, command, args, fits_media, "has media") : NULL;
  if (call == NULL)
    return;
  GError *error = NULL;
  if (!hark_call_media_send_dtmf(call, json_object_get_string_member(args, "digits"), &error)) {
    answer_error(command, error);
    return;
  }
  JsonObject *o = hark_call_json(call);
  json_object_set_string_member(o, "sent", json_object_get_string_member(args, "digits"));
  hark_command_call_return_object(command, o);
}

static void
run_codec(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkCalls *calls = calls_of(command, user_data);
  HarkCall *call = calls != NULL ? pick(calls, command, args, fits_media, "has media") : NULL;
  if (call == NULL)
    return;
  GError *error = NULL;
  if (!hark_call_change_codec(call, json_object_get_string_member(args, "name"), &error)) {
    answer_error(command, error);
    return;
  }
  JsonObject *o = hark_call_json(call);
  json_object_set_string_member(o, "asked", call->asked_codec);
  hark_command_call_return_object(command, o);
}

static void
run_path(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkCalls *calls = calls_of(command, user_data);
  HarkCall *call = calls != NULL ? pick(calls, command, args, fits_media, "has media") : NULL;
  if (call == NULL)
    return;
  GError *error = NULL;
  if (!hark_call_change_path(call, json_object_get_string_member(args, "kind"), &error)) {
    answer_error(command, error);
    return;
  }
  JsonObject *o = hark_call_json(call);
  json_object_set_string_member(o, "asked", call->asked_path);
  hark_command_call_return_object(command, o);
}

static void
run_calls(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkCalls *calls = calls_of(command, user_data);
  if (calls == NULL)
    return;
  JsonArray *list = json_array_new();
  for (guint i = 0; i < calls->order->len; i++)
    json_array_add_object_element(list, hark_call_json(calls->order->pdata[i]));
  const CallCounters *c = &calls->counters;
  JsonObject *counters = json_object_new();
  const struct {
    const char *name;
    guint64 value;
  } rows[] = {
    { "signals", c->signals },
    { "refused_malformed", c->refused_malformed },
    { "refused_unknown", c->refused_unknown },
    { "refused_sender", c->refused_sender },
    { "refused_stale", c->refused_stale },
    { "refused_proof", c->refused_proof },
    { "invites_limited", c->invites_limited },
    { "busy_sent", c->busy_sent },
    { "no_common_codec", c->no_common_codec },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
    json_object_set_int_member(counters, rows[i].name, (gint64)rows[i].value);
  JsonObject *o = json_object_new();
  json_object_set_array_member(o, "calls", list);
  json_object_set_object_member(o, "counters", counters);
  hark_command_call_return_object(command, o);
}

static void
run_stats(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkCalls *calls = calls_of(command, user_data);
  HarkCall *call = calls != NULL ? pick(calls, command, args, fits_media, "has media") : NULL;
  if (call != NULL)
    hark_command_call_return_object(command, hark_call_media_stats(call));
}

static const HarkCommandParam call_params[] = {
  { "user", HARK_PARAM_STRING, TRUE, "the user to call (every online device of theirs rings)" },
  { NULL },
};

static const HarkCommandParam id_params[] = {
  { "id", HARK_PARAM_STRING, FALSE, "the call (its id or a prefix); none: the one that fits" },
  { NULL },
};

static const HarkCommandParam mute_params[] = {
  { "id", HARK_PARAM_STRING, FALSE,
    "the call (its id or a prefix) or a conference member; none: yourself" },
  { "user", HARK_PARAM_STRING, FALSE, "a conference member (the host mutes them for everyone)" },
  { NULL },
};

static const HarkCommandParam codec_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "a codec of the call's offer (opus, pcmu, g711, ...)" },
  { "id", HARK_PARAM_STRING, FALSE, "the call (its id or a prefix); none: the one with media" },
  { NULL },
};

static const HarkCommandParam path_params[] = {
  { "kind", HARK_PARAM_STRING, TRUE,
    "udp (direct or punched), tcp, relay, or any: where the media may go" },
  { "id", HARK_PARAM_STRING, FALSE, "the call (its id or a prefix); none: the one with media" },
  { NULL },
};

static const HarkCommandParam dtmf_params[] = {
  { "digits", HARK_PARAM_STRING, TRUE, "of 0123456789*#ABCD (RFC 4733 events, 100 ms each)" },
  { "id", HARK_PARAM_STRING, FALSE, "the call (its id or a prefix); none: the one with media" },
  { NULL },
};

static const HarkCommand call_commands[] = {
  { HARK_COMMAND_VERSION, "call", "call USER: every online device of theirs rings", call_params,
    run_call },
  { HARK_COMMAND_VERSION, "answer", "answer the call ringing here (holds the one you are in)",
    id_params, run_answer },
  { HARK_COMMAND_VERSION, "decline", "decline the call ringing here: it ends for the caller",
    id_params, run_decline },
  { HARK_COMMAND_VERSION, "hangup", "end a call (or stop calling, or decline)", id_params,
    run_hangup },
  { HARK_COMMAND_VERSION, "hold", "put a call on hold (a keep-alive every 3 s, no audio)",
    id_params, run_hold },
  { HARK_COMMAND_VERSION, "resume", "take a call off hold", id_params, run_resume },
  { HARK_COMMAND_VERSION, "mute",
    "send silence instead of your voice (the call goes on); mute USER: a conference's host "
    "stops mixing that member",
    mute_params, run_mute },
  { HARK_COMMAND_VERSION, "unmute", "send your voice again; unmute USER: the host mixes them again",
    mute_params, run_unmute },
  { HARK_COMMAND_VERSION, "dtmf", "send keypad digits (RFC 4733 events in the audio stream)",
    dtmf_params, run_dtmf },
  { HARK_COMMAND_VERSION, "codec", "change a call's codec; both ends send it once the other agrees",
    codec_params, run_codec },
  { HARK_COMMAND_VERSION, "path",
    "move a call's media to another path (an ICE restart); the old one carries it meanwhile",
    path_params, run_path },
  { HARK_COMMAND_VERSION, "calls", "the calls going on, and what calls refused", NULL, run_calls },
  { HARK_COMMAND_VERSION, "stats",
    "a call's media: codec, path, RTT, jitter, loss, bytes, jitter-buffer delay", id_params,
    run_stats },
};

void
hark_calls_commands_register(HarkContext *core_ctx, HarkCalls **calls)
{
  for (gsize i = 0; i < G_N_ELEMENTS(call_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &call_commands[i], calls, &error))
      g_error("call command table is broken: %s", error->message);
  }
}
