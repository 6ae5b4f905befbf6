/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-calls.c: signals and calls end to end with real processes. Each case makes its own
 * lab in a process of its own (test-isolate.h): a login server, one super node, alice,
 * bob (on one or two devices) and, for the attacks, carol, whose node has a test clock
 * (so that it has the `signal` command and can send what no call would).
 *
 * What a user would notice: a signal reaches each online device of its user once, and
 * one of a kind nobody takes, or sealed too long ago, is dropped and counted. */
#include "harness.h"
#include "lab.h"
#include "test-files.h"
#include "test-isolate.h"

#include <string.h>

#define OVERLAY_PORT 33039
#define JOIN_MS 15000
#define ARRIVE_MS 10000

typedef enum {
  LAB_BOB_PHONE = 1 << 0, /* bob on a second device */
  LAB_CAROL = 1 << 1, /* carol, with a test clock */
} LabFlags;

typedef struct {
  LabLoginServer *login;
  char *sn_host;
  char *dir; /* where the nodes' received audio goes */
  LabNode *sn;
  LabNode *alice;
  LabNode *bob;
  LabNode *bob_phone;
  LabNode *carol;
  gboolean up;
} CallLab;

/* ---- the lab ------------------------------------------------------------------------ */

static char *
sn_config(CallLab *lab)
{
  return g_strdup_printf("node: { name = \"calls-sn\"; supernode = true; };\n"
                         "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
                         "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true; bootstrap = ( ); };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = 0; };\n"
                         "login: { url = \"%s\"; ca = \"%s\"; };\n",
                         lab->sn_host, OVERLAY_PORT, lab->sn_host, lab->login->url,
                         lab->login->ca_path);
}

static LabNode *
client_start(CallLab *lab, const char *name, const char *user, gboolean register_first,
             const char *node_extra)
{
  g_autofree char *config = lab_client_config_with_node(name, node_extra, NULL, lab->sn_host,
                                                        OVERLAY_PORT, lab->login, NULL);
  return lab_client_start(name, config, user, register_first, hark_test_timeout(JOIN_MS));
}

static void
lab_set_up(CallLab *lab, gconstpointer data)
{
  LabFlags flags = GPOINTER_TO_UINT(data);
  lab->sn_host = g_strdup_printf("127.%u.%u.51", (guint)g_random_int_range(1, 255),
                                 (guint)g_random_int_range(0, 255));
  lab->dir = g_dir_make_tmp("hark-calls-XXXXXX", NULL);
  lab->login = lab_login_server_new();
  if (lab->login == NULL || lab->dir == NULL)
    return;
  g_autofree char *config = sn_config(lab);
  lab->sn = lab_node_new("calls-sn", config);
  if (!lab_node_start(lab->sn) || !lab_register_and_login(lab->sn, "calls-sn-user"))
    return;
  g_autoptr(JsonObject) super = lab_wait_command(lab->sn, "overlay", lab_overlay_is_super, NULL,
                                                 hark_test_timeout(JOIN_MS), "serving");
  if (super == NULL)
    return;
  if ((lab->alice = client_start(lab, "alice", "alice", TRUE, NULL)) == NULL ||
      (lab->bob = client_start(lab, "bob-desk", "bob", TRUE, NULL)) == NULL)
    return;
  if ((flags & LAB_BOB_PHONE) &&
      (lab->bob_phone = client_start(lab, "bob-phone", "bob", FALSE, NULL)) == NULL)
    return;
  if ((flags & LAB_CAROL) &&
      (lab->carol = client_start(lab, "carol", "carol", TRUE, "test_clock = true;")) == NULL)
    return;
  lab->up = TRUE;
}

static void
lab_tear_down(CallLab *lab, gconstpointer data)
{
  LabNode **nodes[] = { &lab->carol, &lab->bob_phone, &lab->bob, &lab->alice, &lab->sn };
  for (gsize i = 0; i < G_N_ELEMENTS(nodes); i++)
    if (*nodes[i] != NULL) {
      lab_node_kill(*nodes[i]);
      g_clear_pointer(nodes[i], lab_node_free);
    }
  g_clear_pointer(&lab->login, lab_login_server_free);
  if (lab->dir != NULL)
    hark_test_remove_tree(lab->dir);
  g_free(lab->dir);
  g_free(lab->sn_host);
}

#define LAB_UP(lab) HARK_REQUIRE((lab)->up)

/* ---- helpers ------------------------------------------------------------------------ */

static char *
device_id(LabNode *node)
{
  g_autoptr(JsonObject) whoami = lab_call(node, "whoami", NULL);
  return whoami != NULL ? g_strdup(json_object_get_string_member(whoami, "device_id")) : NULL;
}

/* Polls the messenger's counter name at node until it is at least value (bounded). */
static gboolean
wait_counter(LabNode *node, const char *name, gint64 value)
{
  gint64 until = g_get_monotonic_time() + hark_test_timeout(ARRIVE_MS) * 1000;
  gint64 now = -1;
  while ((now = lab_device_counter(node, name)) < value && g_get_monotonic_time() < until)
    g_usleep(50 * 1000);
  if (now >= value)
    return TRUE;
  g_test_fail_printf("%s: %s is %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT, node->name, name,
                     now, value);
  hark_test_node_show_logs(node->node);
  return FALSE;
}

static gboolean
array_has(JsonArray *array, const char *text)
{
  for (guint i = 0; array != NULL && i < json_array_get_length(array); i++)
    if (g_strcmp0(json_array_get_string_element(array, i), text) == 0)
      return TRUE;
  return FALSE;
}

/* ---- signals ------------------------------------------------------------------------ */

/* carol signals bob: both his devices get it once (delivered says so, each counts one),
 * and as nothing takes that kind each drops it and counts it. Another kind, another
 * signal: each counts exactly two then, not more. Sealed two minutes ago (carol's clock
 * moved on): dropped as old. */
static void
test_signal_every_device_once(CallLab *lab, gconstpointer data)
{
  LAB_UP(lab);
  g_autofree char *desk = device_id(lab->bob);
  g_autofree char *phone = device_id(lab->bob_phone);
  HARK_REQUIRE(desk != NULL && phone != NULL);
  g_autoptr(JsonObject) sent =
    lab_call(lab->carol, "signal", lab_args("to", "Bob", "kind", "nothing-here", NULL));
  HARK_REQUIRE(sent != NULL);
  JsonArray *delivered = json_object_get_array_member(sent, "delivered");
  g_assert_cmpuint(json_array_get_length(delivered), ==, 2);
  g_assert_true(array_has(delivered, desk));
  g_assert_true(array_has(delivered, phone));
  HARK_REQUIRE(wait_counter(lab->bob, "signals_refused", 1));
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", 1));

  g_autoptr(JsonObject) again =
    lab_call(lab->carol, "signal", lab_args("to", "bob", "kind", "nothing-else", NULL));
  HARK_REQUIRE(again != NULL);
  HARK_REQUIRE(wait_counter(lab->bob, "signals_refused", 2));
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", 2));
  g_assert_cmpint(lab_device_counter(lab->bob, "signals_refused"), ==, 2);
  g_assert_cmpint(lab_device_counter(lab->bob_phone, "signals_refused"), ==, 2);
  g_assert_cmpint(lab_device_counter(lab->bob, "signals_received"), ==, 0);
  g_assert_cmpint(lab_device_counter(lab->carol, "signals_sent"), ==, 2);

  /* To one device only. */
  g_autoptr(JsonObject) one = lab_call(
    lab->carol, "signal", lab_args("to", "bob", "kind", "nothing-here", "device", phone, NULL));
  HARK_REQUIRE(one != NULL);
  delivered = json_object_get_array_member(one, "delivered");
  g_assert_cmpuint(json_array_get_length(delivered), ==, 1);
  g_assert_true(array_has(delivered, phone));
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", 3));

  /* A minute and more later (carol's clock moved): worth nothing, dropped. */
  HARK_REQUIRE(lab_clock_advance(lab->carol->ctl, 120));
  g_autoptr(JsonObject) old =
    lab_call(lab->carol, "signal", lab_args("to", "bob", "kind", "nothing-here", NULL));
  HARK_REQUIRE(old != NULL);
  HARK_REQUIRE(wait_counter(lab->bob, "signals_refused", 3));
  HARK_REQUIRE(wait_counter(lab->bob_phone, "signals_refused", 4));

  /* Nobody online: an error the sender can read. */
  g_autoptr(JsonObject) nobody =
    lab_ask(lab->carol, "signal", lab_args("to", "nobody-here", "kind", "nothing-here", NULL));
  HARK_REQUIRE(nobody != NULL);
  g_assert_false(json_object_get_boolean_member_with_default(nobody, "ok", TRUE));
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 90000);
  hark_test_add_isolated("/calls/signal-every-device-once", CallLab,
                         GUINT_TO_POINTER(LAB_BOB_PHONE | LAB_CAROL), lab_set_up,
                         test_signal_every_device_once, lab_tear_down);
  return g_test_run();
}
