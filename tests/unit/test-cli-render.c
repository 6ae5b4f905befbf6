/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-cli-render.c: how the cli shows the instant messages' events to a person
 * (frontends/cli/render.c, compiled in): a chat line for `message`, a sentence for
 * `message-state`, `typing` and `requests-changed`, and another user's text escaped, so a message cannot
 * move the cursor, recolour the terminal or forge a line of its own. Other events keep
 * the generic "* name key=value" form. A `call` event is a sentence per state, with the
 * peer's words (its name, its device's name, a reason) escaped the same way. */
#include "cli.h"

static JsonObject *
object_of(const char *json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = json_from_string(json, &error);
  g_assert_no_error(error);
  return json_object_ref(json_node_get_object(node));
}

static void
assert_rendered(const char *event, const char *json, const char *expected)
{
  g_autoptr(JsonObject) data = object_of(json);
  g_autofree char *text = cli_render_event(event, data);
  g_assert_cmpstr(text, ==, expected);
}

static void
test_message(void)
{
  assert_rendered("message",
                  "{\"message_id\": \"00112233445566778899aabbccddeeff\", \"from\": \"bob\","
                  " \"direction\": \"in\", \"conversation\": \"u:bob\", \"text\": \"hello alice\"}",
                  "[bob] hello alice\n");
  /* What this user wrote on another device. */
  assert_rendered("message",
                  "{\"from\": \"alice\", \"direction\": \"out\", \"conversation\": \"u:bob\","
                  " \"text\": \"hi bob\"}",
                  "[you to bob] hi bob\n");
  assert_rendered("message",
                  "{\"from\": \"bob\", \"direction\": \"in\", \"conversation\": \"u:bob\","
                  " \"text\": \"later\", \"after_gap\": true}",
                  "* (some messages did not arrive)\n[bob] later\n");
}

/* A hostile sender's text: a newline that would forge a line "[alice] ...", an escape
 * sequence that clears the screen, a right-to-left override. None reaches the terminal
 * as it is, and the output stays one line. */
static void
test_message_escaped(void)
{
  g_autoptr(JsonObject) data = object_of(
    "{\"from\": \"bob\\u001b[2J\", \"direction\": \"in\", \"conversation\": \"u:bob\","
    " \"text\": \"ok\\n[alice] send me your password\\u001b[2J\\u202e\"}");
  g_autofree char *text = cli_render_event("message", data);
  g_assert_true(g_str_has_prefix(text, "[bob\\x1b[2J] ok\\x0a[alice]"));
  g_assert_null(strchr(text, '\x1b'));
  g_assert_null(strstr(text, "\xe2\x80\xae"));
  g_assert_true(strchr(text, '\n') == text + strlen(text) - 1);
}

static void
test_state_and_typing(void)
{
  assert_rendered("message-state",
                  "{\"message_id\": \"00112233445566778899aabbccddeeff\", \"device\":"
                  " \"9a8b7c6d5e4f9a8b7c6d5e4f9a8b7c6d5e4f9a8b7c6d5e4f9a8b7c6d5e4f1234\","
                  " \"state\": \"delivered\"}",
                  "* message 001122334455 delivered on device 9a8b7c6d5e4f\n");
  assert_rendered("typing", "{\"from\": \"bob\", \"device\": \"ab\", \"typing\": true}",
                  "* bob is typing\n");
  assert_rendered("typing", "{\"from\": \"bob\", \"device\": \"ab\", \"typing\": false}",
                  "* bob stopped typing\n");
  /* Any other event keeps the generic form. */
  assert_rendered("logged-in", "{\"user\": \"alice\"}", "* logged-in user=alice\n");
}

/* What is pending, as a sentence; the names escaped like a message's sender. */
static void
test_requests(void)
{
  assert_rendered("requests-changed",
                  "{\"user\": \"alice\", \"incoming\": [{\"name\": \"bob\", \"message\": \"hi\"},"
                  " {\"name\": \"carol\"}], \"outgoing\": [{\"name\": \"dave\"}],"
                  " \"blocked\": [\"eve\"]}",
                  "* contact requests: from bob, carol; to dave; blocked: eve\n");
  assert_rendered("requests-changed",
                  "{\"user\": \"alice\", \"incoming\": [], \"outgoing\": [{\"name\": \"dave\"}],"
                  " \"blocked\": []}",
                  "* contact requests: to dave\n");
  assert_rendered("requests-changed",
                  "{\"user\": \"alice\", \"incoming\": [], \"outgoing\": [], \"blocked\": []}",
                  "* contact requests: none waiting\n");
  assert_rendered("requests-changed",
                  "{\"incoming\": [{\"name\": \"bob\\n* forged\"}], \"outgoing\": [], \"blocked\": []}",
                  "* contact requests: from bob\\x0a* forged\n");
}

#define BOB_DESK "\"peer\": \"bob\", \"peer_device\": \"desk\""

static void
test_call(void)
{
  assert_rendered("call",
                  "{\"id\": \"ab\", " BOB_DESK ", \"direction\": \"in\", \"state\": \"ringing\"}",
                  "* incoming call from bob (desk) \u2014 type `answer` or `decline`\n");
  assert_rendered("call", "{\"peer\": \"bob\", \"direction\": \"out\", \"state\": \"dialing\"}",
                  "* calling bob\u2026\n");
  assert_rendered("call", "{\"peer\": \"bob\", \"direction\": \"out\", \"state\": \"ringing\"}",
                  "* ringing bob\u2026\n");
  /* The caller sees which device answered; a device id is shown short. */
  assert_rendered("call", "{" BOB_DESK ", \"direction\": \"out\", \"state\": \"connecting\"}",
                  "* bob answered on desk\n");
  assert_rendered("call",
                  "{\"peer\": \"bob\", \"peer_device\":"
                  " \"9a8b7c6d5e4f9a8b7c6d5e4f9a8b7c6d5e4f9a8b7c6d5e4f9a8b7c6d5e4f1234\","
                  " \"direction\": \"out\", \"state\": \"connecting\"}",
                  "* bob answered on 9a8b7c6d5e4f\n");
  assert_rendered("call", "{" BOB_DESK ", \"direction\": \"in\", \"state\": \"connecting\"}",
                  "* connecting the call with bob (desk)\u2026\n");
  assert_rendered("call",
                  "{" BOB_DESK ", \"direction\": \"out\", \"state\": \"active\","
                  " \"codec\": \"opus\", \"path\": \"relayed tcp\"}",
                  "* in a call with bob (desk): opus, relayed tcp\n");
  assert_rendered("call", "{\"peer\": \"bob\", \"direction\": \"out\", \"state\": \"active\"}",
                  "* in a call with bob\n");
  /* A path change that failed is said (the media stayed); one under way or done is not. */
  assert_rendered("call",
                  "{\"peer\": \"bob\", \"direction\": \"out\", \"state\": \"active\","
                  " \"codec\": \"opus\", \"path\": \"host udp\", \"path_change\": {\"kind\":"
                  " \"relay\", \"outcome\": \"failed\", \"reason\": \"the TURN server did not"
                  " answer\"}}",
                  "* in a call with bob: opus, host udp (the move to relay failed: the TURN server"
                  " did not answer)\n");
  assert_rendered("call",
                  "{\"peer\": \"bob\", \"direction\": \"out\", \"state\": \"active\","
                  " \"path\": \"relayed udp\", \"path_change\": {\"kind\": \"relay\","
                  " \"outcome\": \"moved\"}}",
                  "* in a call with bob: relayed udp\n");
  assert_rendered("call",
                  "{\"peer\": \"bob\", \"direction\": \"out\", \"state\": \"active\","
                  " \"path_change\": \"bogus\"}",
                  "* in a call with bob\n");
  assert_rendered("call", "{" BOB_DESK ", \"direction\": \"in\", \"state\": \"held\"}",
                  "* call with bob on hold\n");
  assert_rendered("call",
                  "{" BOB_DESK ", \"direction\": \"out\", \"state\": \"ended\","
                  " \"reason\": \"declined\"}",
                  "* call with bob ended: declined\n");
  assert_rendered("call", "{\"peer\": \"bob\", \"direction\": \"in\", \"state\": \"ended\"}",
                  "* call with bob ended\n");
  /* A state a newer node may send: said as it is. */
  assert_rendered("call", "{\"peer\": \"bob\", \"direction\": \"in\", \"state\": \"parked\"}",
                  "* call with bob: parked\n");
}

/* The caller names its own device and writes the reason of its decline: a newline that
 * would forge a line of the cli's own, an escape sequence, a right-to-left override. */
static void
test_call_escaped(void)
{
  g_autoptr(JsonObject) data = object_of(
    "{\"peer\": \"bob\", \"peer_device\": \"desk\\n* incoming call from alice\\u001b[2J\","
    " \"direction\": \"in\", \"state\": \"ringing\"}");
  g_autofree char *text = cli_render_event("call", data);
  g_assert_true(g_str_has_prefix(text, "* incoming call from bob (desk\\x0a* incoming"));
  g_assert_null(strchr(text, '\x1b'));
  g_assert_true(strchr(text, '\n') == text + strlen(text) - 1);

  g_autoptr(JsonObject) ended =
    object_of("{\"peer\": \"bob\\u202e\", \"direction\": \"out\", \"state\": \"ended\","
              " \"reason\": \"busy\\r\\n[alice] hi\"}");
  g_autofree char *line = cli_render_event("call", ended);
  g_assert_null(strstr(line, "\xe2\x80\xae"));
  g_assert_null(strchr(line, '\r'));
  g_assert_true(strchr(line, '\n') == line + strlen(line) - 1);
  g_assert_nonnull(strstr(line, "ended: busy\\x0d\\x0a[alice] hi"));
}

/* The conference events as sentences: who hosts, who is in (connected members named
 * alone, the muted said so), why it ended, a member's invite, who speaks; a hostile
 * host's reason escaped. */
static void
test_conference(void)
{
  assert_rendered("conference-host", "{\"conference_id\": \"ab\", \"host\": \"alice\", \"self\": false}",
                  "* alice hosts the conference\n");
  assert_rendered("conference-host", "{\"conference_id\": \"ab\", \"host\": \"bob\", \"self\": true}",
                  "* you host a conference: this node mixes it\n");
  assert_rendered("conference-roster",
                  "{\"host\": \"alice\", \"state\": \"member\", \"roster\": [{\"user\": \"alice\", "
                  "\"state\": \"host\"}, {\"user\": \"bob\", \"state\": \"connected\"}, "
                  "{\"user\": \"carol\", \"state\": \"calling\"}]}",
                  "* conference of alice: alice (host), bob, carol (calling)\n");
  assert_rendered("conference-roster",
                  "{\"host\": \"alice\", \"state\": \"ended\", \"reason\": \"removed by the host\"}",
                  "* conference of alice ended: removed by the host\n");
  assert_rendered("conference-refused",
                  "{\"host\": \"alice\", \"reason\": \"not in\\nthe roster\"}",
                  "* alice did not let you in: not in\\x0athe roster\n");
  assert_rendered("conference-roster",
                  "{\"host\": \"alice\", \"state\": \"member\", \"roster\": [{\"user\": \"alice\", "
                  "\"state\": \"host\"}, {\"user\": \"bob\", \"state\": \"connected\", "
                  "\"muted\": \"self\"}, {\"user\": \"carol\", \"state\": \"connected\", "
                  "\"muted\": \"host\"}]}",
                  "* conference of alice: alice (host), bob (muted by themselves), carol (muted by "
                  "host)\n");
  assert_rendered("conference-invite",
                  "{\"conference_id\": \"ab\", \"from\": \"bob\", \"user\": \"dave\"}",
                  "* bob asks you to call dave in (conference dave)\n");
  assert_rendered("active-speaker",
                  "{\"conference_id\": \"ab\", \"host\": \"alice\", \"user\": \"carol\"}",
                  "* carol is speaking\n");
  assert_rendered("active-speaker",
                  "{\"conference_id\": \"ab\", \"host\": \"alice\", \"user\": null}",
                  "* nobody is speaking\n");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/cli-render/message", test_message);
  g_test_add_func("/cli-render/message-escaped", test_message_escaped);
  g_test_add_func("/cli-render/state-and-typing", test_state_and_typing);
  g_test_add_func("/cli-render/requests", test_requests);
  g_test_add_func("/cli-render/call", test_call);
  g_test_add_func("/cli-render/call-escaped", test_call_escaped);
  g_test_add_func("/cli-render/conference", test_conference);
  return g_test_run();
}
