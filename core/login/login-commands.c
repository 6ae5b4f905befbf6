/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-commands.c: the commands of the login client (register, login, logout, passwd,
 * delete-account, buddies, buddy-add, buddy-accept, buddy-decline, buddy-cancel, requests,
 * block, unblock, buddy-remove, buddy-rename, whoami, devices, device-remove).
 *
 * They are in the node's one command table whether or not the node is configured to
 * log in, so that every frontend of every node has the same commands; without a login
 * section they answer that login is not configured. Each only translates arguments for
 * login.c and its answer back; passwords are never logged (nor are any arguments). */
#include "login.h"
#include "hark/command.h"

/* Every password parameter is marked secret: `hark ctl` and the cli ask for it (without
 * echo) instead of taking it from a command line; its help says so. */
#define SECRET(what) what " (leave it out and it is asked for, without echo)", TRUE

/* A login.c answer becomes the command's. */
static void
answer(JsonObject *result, GError *error, gpointer data)
{
  HarkCommandCall *call = data;
  if (error != NULL)
    hark_command_call_return_error(call, error);
  else
    hark_command_call_return_object(call, result);
}

/* The node's login client, or NULL once the call has been answered that there is none. */
static HarkLoginClient *
client_of(HarkCommandCall *call, gpointer user_data)
{
  HarkLoginClient **client = user_data;
  if (*client != NULL)
    return *client;
  hark_command_call_return_error(call, g_error_new_literal(HARK_LOGIN_ERROR,
                                                           HARK_LOGIN_ERROR_NOT_CONFIGURED,
                                                           "login is not configured: set login.url "
                                                           "and login.ca"));
  return NULL;
}

static const char *
arg(JsonObject *args, const char *name)
{
  return json_object_get_string_member_with_default(args, name, NULL);
}

static void
run_register(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_register(client, arg(args, "user"), arg(args, "password"), answer, call);
}

static void
run_login(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_login(client, arg(args, "user"), arg(args, "password"), answer, call);
}

static void
run_logout(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_logout(client, answer, call);
}

static void
run_passwd(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_change_password(
      client, arg(args, "old"), arg(args, "new"),
      json_object_get_boolean_member_with_default(args, "revoke_others", TRUE), answer, call);
}

static void
run_delete_account(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_delete_account(client, arg(args, "password"), answer, call);
}

typedef struct {
  HarkCommandCall *call;
  HarkLoginClient *client;
} BuddiesCall;

/* The list, with what the layers above know of each buddy (their live presence). */
static void
answer_buddies(JsonObject *result, GError *error, gpointer data)
{
  g_autofree BuddiesCall *buddies = data;
  if (error == NULL)
    hark_login_client_describe_buddies(buddies->client, result);
  answer(result, error, buddies->call);
}

static void
run_buddies(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client == NULL)
    return;
  BuddiesCall *buddies = g_new(BuddiesCall, 1);
  buddies->call = call;
  buddies->client = client;
  hark_login_client_buddies(client, answer_buddies, buddies);
}

static void
change_buddy(HarkCommandCall *call, JsonObject *args, gpointer user_data, const char *op)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_change_buddy(client, op, arg(args, "name"), arg(args, "alias"), answer, call);
}

static void
change_contact(HarkCommandCall *call, JsonObject *args, gpointer user_data, const char *op)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_contact(client, op, arg(args, "name"), arg(args, "message"), answer, call);
}

/* A buddy is added by their consent: the command sends a contact request. */
static void
run_buddy_add(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_contact(call, args, user_data, "send");
}

static void
run_buddy_accept(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_contact(call, args, user_data, "accept");
}

static void
run_buddy_decline(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_contact(call, args, user_data, "decline");
}

static void
run_buddy_cancel(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_contact(call, args, user_data, "cancel");
}

static void
run_block(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_contact(call, args, user_data, "block");
}

static void
run_unblock(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_contact(call, args, user_data, "unblock");
}

static void
run_requests(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_requests(client, answer, call);
}

static void
run_buddy_remove(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_buddy(call, args, user_data, "remove");
}

static void
run_buddy_rename(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  change_buddy(call, args, user_data, "rename");
}

static void
run_whoami(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_whoami(client, answer, call);
}

static void
run_devices(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_devices(client, answer, call);
}

static void
run_device_remove(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkLoginClient *client = client_of(call, user_data);
  if (client != NULL)
    hark_login_client_remove_device(client, arg(args, "device"), answer, call);
}

#define USER_HELP "the user name: 3 to 32 letters, digits, '.', '_' or '-', starting with a letter"

static const HarkCommandParam credentials_params[] = {
  { "user", HARK_PARAM_STRING, TRUE, USER_HELP },
  { "password", HARK_PARAM_STRING, TRUE, SECRET("the password, 8 to 1024 bytes") },
  { NULL },
};

static const HarkCommandParam passwd_params[] = {
  { "old", HARK_PARAM_STRING, TRUE, SECRET("the current password") },
  { "new", HARK_PARAM_STRING, TRUE, SECRET("the new password, 8 to 1024 bytes") },
  /* Default true: a password is changed when it may be known to someone else, and a
   * device certificate is what would outlive the change. */
  { "revoke_others", HARK_PARAM_BOOL, FALSE,
    "revoke every other device of the account, which then must log in with the new "
    "password (default true)" },
  { NULL },
};

static const HarkCommandParam device_remove_params[] = {
  { "device", HARK_PARAM_STRING, TRUE, "the device's name or id (see devices)" },
  { NULL },
};

static const HarkCommandParam delete_params[] = {
  { "password", HARK_PARAM_STRING, TRUE, SECRET("the account's password") },
  { NULL },
};

static const HarkCommandParam buddy_add_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "the user name of whom to ask" },
  { "message", HARK_PARAM_STRING, FALSE, "a note for them: 1 to 64 characters" },
  { NULL },
};

static const HarkCommandParam user_name_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "the user's name" },
  { NULL },
};

static const HarkCommandParam buddy_name_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "the buddy's user name" },
  { NULL },
};

static const HarkCommandParam buddy_rename_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "the buddy's user name" },
  { "alias", HARK_PARAM_STRING, TRUE, "what to call them from now on" },
  { NULL },
};

static const HarkCommand login_commands[] = {
  { HARK_COMMAND_VERSION, "register", "create an account on the login server", credentials_params,
    run_register },
  { HARK_COMMAND_VERSION, "login",
    "log this device in: a certificate for its key, and the buddy list", credentials_params,
    run_login },
  { HARK_COMMAND_VERSION, "logout", "log this device out (it forgets its certificate)", NULL,
    run_logout },
  { HARK_COMMAND_VERSION, "passwd", "change the logged-in user's password", passwd_params,
    run_passwd },
  { HARK_COMMAND_VERSION, "delete-account",
    "delete the logged-in user's account on the login server, then log out", delete_params,
    run_delete_account },
  { HARK_COMMAND_VERSION, "buddies", "the buddy list, as the login server has it", NULL,
    run_buddies },
  { HARK_COMMAND_VERSION, "buddy-add",
    "ask a user to become buddies: they accept or decline on any of their devices",
    buddy_add_params, run_buddy_add },
  { HARK_COMMAND_VERSION, "buddy-accept",
    "accept a user's contact request: each of you joins the other's buddy list", user_name_params,
    run_buddy_accept },
  { HARK_COMMAND_VERSION, "buddy-decline", "decline a user's contact request", user_name_params,
    run_buddy_decline },
  { HARK_COMMAND_VERSION, "buddy-cancel", "withdraw a contact request this user sent",
    user_name_params, run_buddy_cancel },
  { HARK_COMMAND_VERSION, "requests",
    "contact requests waiting for an answer (incoming and outgoing), and the blocked users", NULL,
    run_requests },
  { HARK_COMMAND_VERSION, "block",
    "block a user: their requests are never shown, a pending one and their buddy entry go",
    user_name_params, run_block },
  { HARK_COMMAND_VERSION, "unblock", "unblock a user (what the block removed does not come back)",
    user_name_params, run_unblock },
  { HARK_COMMAND_VERSION, "buddy-remove", "remove a buddy from the list", buddy_name_params,
    run_buddy_remove },
  { HARK_COMMAND_VERSION, "buddy-rename", "change what a buddy is called", buddy_rename_params,
    run_buddy_rename },
  { HARK_COMMAND_VERSION, "whoami", "who this device is logged in as, and until when", NULL,
    run_whoami },
  { HARK_COMMAND_VERSION, "devices",
    "the devices of the logged-in account: name, id, first and last seen, revoked", NULL,
    run_devices },
  { HARK_COMMAND_VERSION, "device-remove",
    "revoke a device of the account: its certificate stops working at once on the login "
    "server, and on super nodes when it expires",
    device_remove_params, run_device_remove },
};

void
hark_login_commands_register(HarkContext *core_ctx, HarkLoginClient **client)
{
  for (gsize i = 0; i < G_N_ELEMENTS(login_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &login_commands[i], client, &error))
      g_error("login command table is broken: %s", error->message);
  }
}
