/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-commands.c: `conference USERS`, `roster`, `join HOST ID`, `leave`, `end`,
 * `kick USER` (conferences.h). */
#include "conference-private.h"

#include "message-group.h"

static HarkConferences *
conferences_of(HarkCommandCall *command, gpointer user_data)
{
  HarkConferences *conferences = *(HarkConferences **)user_data;
  if (conferences == NULL)
    hark_command_call_return_error(
      command, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                   "conferences need a login section in the configuration"));
  return conferences;
}

/* The answer: the conferences now, or error. */
static void
answer(HarkCommandCall *command, HarkConferences *conferences, gboolean ok, GError *error)
{
  if (!ok)
    hark_command_call_return_error(command, error);
  else
    hark_command_call_return_object(command, hark_conference_json(conferences));
}

HarkConferences *
hark_conference_commands_target(HarkCommandCall *command, gpointer user_data)
{
  return conferences_of(command, user_data);
}

void
hark_conference_commands_answer(HarkCommandCall *command, HarkConferences *conferences,
                                gboolean ok, GError *error)
{
  answer(command, conferences, ok, error);
}

static void
run_conference(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = conferences_of(command, user_data);
  if (conferences == NULL)
    return;
  GError *error = NULL;
  g_autoptr(GPtrArray) users = hark_message_group_users_parse(
    json_object_get_string_member(args, "users"), CONFERENCE_MAX_MEMBERS, &error);
  if (users == NULL) {
    hark_command_call_return_error(
      command, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                                   error->message));
    g_error_free(error);
    return;
  }
  gboolean ok = hark_conference_add(conferences, users, &error);
  answer(command, conferences, ok, error);
}

static void
run_roster(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = conferences_of(command, user_data);
  if (conferences != NULL)
    answer(command, conferences, TRUE, NULL);
}

static void
run_join(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = conferences_of(command, user_data);
  if (conferences == NULL)
    return;
  GError *error = NULL;
  gboolean ok = hark_conference_join(conferences, json_object_get_string_member(args, "host"),
                                     json_object_get_string_member(args, "id"), &error);
  answer(command, conferences, ok, error);
}

static void
run_leave(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = conferences_of(command, user_data);
  if (conferences == NULL)
    return;
  GError *error = NULL;
  gboolean ok = hark_conference_leave(
    conferences, json_object_get_string_member_with_default(args, "id", NULL), &error);
  answer(command, conferences, ok, error);
}

static void
run_end(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = conferences_of(command, user_data);
  if (conferences == NULL)
    return;
  GError *error = NULL;
  gboolean ok = hark_conference_end(conferences, "ended by the host", &error);
  answer(command, conferences, ok, error);
}

static void
run_kick(HarkCommandCall *command, JsonObject *args, gpointer user_data)
{
  HarkConferences *conferences = conferences_of(command, user_data);
  if (conferences == NULL)
    return;
  GError *error = NULL;
  gboolean ok = hark_conference_kick(conferences, json_object_get_string_member(args, "user"),
                                     &error);
  answer(command, conferences, ok, error);
}

static const HarkCommandParam conference_params[] = {
  { "users", HARK_PARAM_STRING, TRUE, "the users to call in, separated by commas or spaces" },
  { NULL },
};

static const HarkCommandParam join_params[] = {
  { "host", HARK_PARAM_STRING, TRUE, "the user who hosts the conference" },
  { "id", HARK_PARAM_STRING, TRUE, "the conference's id (32 hex digits)" },
  { NULL },
};

static const HarkCommandParam leave_params[] = {
  { "id", HARK_PARAM_STRING, FALSE, "the conference (its id or a prefix); none: the one" },
  { NULL },
};

static const HarkCommandParam kick_params[] = {
  { "user", HARK_PARAM_STRING, TRUE, "the member to remove (a join of theirs is refused)" },
  { NULL },
};

static const HarkCommand conference_commands[] = {
  { HARK_COMMAND_VERSION, "conference",
    "host a conference (or add to the one hosted here): each user is called, this node mixes",
    conference_params, run_conference },
  { HARK_COMMAND_VERSION, "roster",
    "the conferences of this node: host, members and their state, what was refused", NULL,
    run_roster },
  { HARK_COMMAND_VERSION, "join", "ask a conference's host to let you (back) in", join_params,
    run_join },
  { HARK_COMMAND_VERSION, "leave", "leave a conference (its host: end it)", leave_params,
    run_leave },
  { HARK_COMMAND_VERSION, "end", "end the conference hosted here, for everyone", NULL, run_end },
  { HARK_COMMAND_VERSION, "kick", "remove a member from the conference hosted here",
    kick_params, run_kick },
};

void
hark_conferences_commands_register(HarkContext *core_ctx, HarkConferences **conferences)
{
  for (gsize i = 0; i < G_N_ELEMENTS(conference_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &conference_commands[i], conferences, &error))
      g_error("conference command table is broken: %s", error->message);
  }
  hark_conference_controls_register(core_ctx, conferences);
}
