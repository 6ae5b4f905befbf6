/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-commands.c: the overlay's commands: `overlay` (where this node is attached, or
 * whom it serves, and what it dropped), `transport` (move the SN link to another
 * transport without logging out), `rejoin` (drop the SN link and join again) and `nat`
 * (the NAT probe's result; `nat probe` runs it now) and `turn` (the TURN credentials the
 * SN hands this node, without the password). */
#include "overlay-private.h"

static HarkOverlay *
overlay_of(HarkCommandCall *call, gpointer user_data)
{
  HarkOverlay **overlay = user_data;
  if (*overlay != NULL)
    return *overlay;
  hark_command_call_return_error(
    call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                              "this node takes no part in the overlay: it needs a login "
                              "section (links are checked against login.ca)"));
  return NULL;
}

static void
run_overlay(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkOverlay *overlay = overlay_of(call, user_data);
  gint64 clients = json_object_get_int_member_with_default(args, "clients", 50);
  if (overlay != NULL)
    hark_command_call_return_object(call,
                                    hark_overlay_snapshot(overlay, (guint)CLAMP(clients, 0, 1000)));
}

static void
run_transport(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkOverlay *overlay = overlay_of(call, user_data);
  if (overlay != NULL)
    hark_overlay_switch_transport(overlay, json_object_get_string_member(args, "name"), call);
}

static void
run_rejoin(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkOverlay *overlay = overlay_of(call, user_data);
  if (overlay == NULL)
    return;
  if (overlay->is_sn) {
    hark_command_call_return_error(
      call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                "this node is a super node: it joins no other"));
    return;
  }
  if (overlay->sn != NULL) {
    Peer *old = overlay->sn;
    overlay->sn = NULL;
    hark_overlay_drop_peer(overlay, old, "rejoin asked for");
    hark_overlay_sn_lost(overlay, "rejoin asked for");
  } else {
    hark_overlay_join_start(overlay);
  }
  hark_command_call_return(call, NULL);
}

static void
run_nat(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkOverlay *overlay = overlay_of(call, user_data);
  if (overlay == NULL)
    return;
  const char *action = json_object_get_string_member_with_default(args, "action", NULL);
  if (action == NULL)
    hark_command_call_return_object(call, hark_overlay_nat_describe(overlay));
  else if (g_str_equal(action, "probe"))
    hark_overlay_nat_probe(overlay, call);
  else
    hark_command_call_return_error(
      call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "nat: unknown action '%s' (the only one is 'probe')", action));
}

static void
on_turn_credentials(GObject *source, GAsyncResult *result, gpointer data)
{
  HarkCommandCall *call = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkTurnCredentials) credentials =
    hark_overlay_turn_credentials_finish(NULL, result, &error);
  if (credentials == NULL) {
    hark_command_call_return_error(
      call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED, error->message));
    return;
  }
  /* The password stays inside the node: whoever reads a command's answer (a log, a
   * terminal) does not get a working credential. */
  JsonObject *object = json_object_new();
  json_object_set_string_member(object, "host", credentials->host);
  json_object_set_int_member(object, "port", credentials->port);
  json_object_set_string_member(object, "username", credentials->username);
  json_object_set_int_member(object, "expires_at", credentials->expires_at);
  json_object_set_boolean_member(object, "tcp", credentials->tcp);
  if (credentials->web_port != 0)
    json_object_set_int_member(object, "web_port", credentials->web_port);
  hark_command_call_return_object(call, object);
}

static void
run_turn(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkOverlay *overlay = overlay_of(call, user_data);
  if (overlay != NULL)
    hark_overlay_turn_credentials_async(overlay, NULL, on_turn_credentials, call);
}

static const HarkCommandParam nat_params[] = {
  { "action", HARK_PARAM_STRING, FALSE, "probe: run the NAT probe now, answer with its result" },
  { NULL },
};

static const HarkCommandParam overlay_params[] = {
  { "clients", HARK_PARAM_INT, FALSE, "list at most this many of an SN's clients (50; 0-1000)" },
  { NULL },
};

static const HarkCommandParam transport_params[] = {
  { "name", HARK_PARAM_STRING, TRUE, "a loaded stream transport: tcp, tls443" },
  { NULL },
};

static const HarkCommand overlay_commands[] = {
  { HARK_COMMAND_VERSION, "overlay",
    "the super node, transport, round trip, host cache, role, clients and drop counters",
    overlay_params, run_overlay },
  { HARK_COMMAND_VERSION, "transport", "move the link to the super node to another transport",
    transport_params, run_transport },
  { HARK_COMMAND_VERSION, "rejoin", "leave the super node and join again", NULL, run_rejoin },
  { HARK_COMMAND_VERSION, "nat",
    "the NAT probe's verdict, mapped address, behaviours, time and server; 'nat probe' runs it",
    nat_params, run_nat },
  { HARK_COMMAND_VERSION, "turn",
    "the TURN server the super node vouches for: host, port, username, expiry (not the password)",
    NULL, run_turn },
};

void
hark_overlay_commands_register(HarkContext *core_ctx, HarkOverlay **overlay)
{
  for (gsize i = 0; i < G_N_ELEMENTS(overlay_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &overlay_commands[i], overlay, &error))
      g_error("overlay command table is broken: %s", error->message);
  }
}
