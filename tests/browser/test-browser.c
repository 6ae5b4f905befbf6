/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-browser.c: the web frontend's page in a real browser. The lab (tests/integration's
 * harness) is a login server, one super node, bob (registered, logged in, driven over his
 * ctl socket) and alice, whose node loads the `web` frontend and is not logged in. The
 * case installs Playwright for Node.js into tests/browser/node_modules (npm ci from the
 * committed lock file: no browser is downloaded; Debian's /usr/bin/chromium is driven)
 * and runs web.test.mjs with alice's one-time link, bob's socket and alice's (to check
 * what her node says after a change made on the page): it signs alice in through the
 * page, takes bob's contact request, chats, takes his call, changes her media settings,
 * hosts a conference (mutes bob in it, sees who speaks, an invite refused), sees the page come back after her node restarted (which this file does when
 * the script asks) and checks the page's accessibility, all through the page's controls,
 * with a screenshot of each step in meson-logs/browser/. */
#include "harness.h"
#include "lab.h"
#include "test-files.h"
#include "test-isolate.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define OVERLAY_PORT 33061
#define JOIN_MS 15000
#define SCRIPT_S 150 /* the browser script's own bound is 120 s (both scaled) */

typedef struct {
  LabLoginServer *login;
  char *sn_host;
  char *dir;
  LabNode *sn;
  LabNode *alice;
  LabNode *bob;
  gboolean up;
} BrowserLab;

static char *
client_config(BrowserLab *lab, const char *name, guint hz, const char *more_plugins)
{
  g_autofree char *media = g_strdup_printf(
    "media: { codecs = [ \"opus\", \"g711\" ]; source = \"tone:%u\";\n"
    "  sink = \"wav:%s/%s.wav\"; };\n",
    hz, lab->dir, name);
  g_autofree char *plugins = g_strdup_printf(", { name = \"opus\"; }, { name = \"g711\"; }%s",
                                             more_plugins != NULL ? more_plugins : "");
  return lab_client_config_with_node(name, NULL, plugins, lab->sn_host, OVERLAY_PORT, lab->login,
                                     media);
}

static void
lab_set_up(BrowserLab *lab, gconstpointer data)
{
  (void)data;
  lab->sn_host = g_strdup_printf("127.%u.%u.61", (guint)g_random_int_range(1, 255),
                                 (guint)g_random_int_range(0, 255));
  lab->dir = g_dir_make_tmp("hark-browser-XXXXXX", NULL);
  lab->login = lab_login_server_new();
  if (lab->login == NULL || lab->dir == NULL)
    return;
  g_autofree char *sn = g_strdup_printf(
    "node: { name = \"web-sn\"; supernode = true; };\n"
    "plugins: { load = ( { name = \"udp\"; }, { name = \"tcp\"; },\n"
    "  { name = \"gi\"; }, { name = \"ctl\"; } ); };\n"
    "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
    "  allow_loopback = true; bootstrap = ( ); };\n"
    "supernode: { min_uptime = 0; max_load = 10000; links = 0; relay = false; };\n"
    "login: { url = \"%s\"; ca = \"%s\"; };\n",
    lab->sn_host, OVERLAY_PORT, lab->sn_host, lab->login->url, lab->login->ca_path);
  lab->sn = lab_node_new("web-sn", sn);
  if (!lab_node_start(lab->sn) || !lab_register_and_login(lab->sn, "web-sn-user"))
    return;
  g_autoptr(JsonObject) super = lab_wait_command(lab->sn, "overlay", lab_overlay_is_super, NULL,
                                                 hark_test_timeout(JOIN_MS), "serving");
  if (super == NULL)
    return;
  g_autofree char *bob = client_config(lab, "bob", 660, NULL);
  if ((lab->bob = lab_client_start("bob", bob, "bob", TRUE, hark_test_timeout(JOIN_MS))) == NULL)
    return;
  /* alice signs in through the page: her node only joins the overlay here. */
  g_autofree char *alice =
    client_config(lab, "alice", 440, ", { name = \"web\"; settings = { port = 0; }; }");
  lab->alice = lab_node_new("alice", alice);
  if (!lab_node_start(lab->alice))
    return;
  g_autoptr(JsonObject) attached = lab_wait_command(lab->alice, "overlay", lab_overlay_is_attached,
                                                    NULL, hark_test_timeout(JOIN_MS), "attached");
  lab->up = attached != NULL;
}

static void
lab_tear_down(BrowserLab *lab, gconstpointer data)
{
  (void)data;
  LabNode **nodes[] = { &lab->alice, &lab->bob, &lab->sn };
  lab_nodes_kill_free(nodes, G_N_ELEMENTS(nodes));
  g_clear_pointer(&lab->login, lab_login_server_free);
  if (lab->dir != NULL)
    hark_test_remove_tree(lab->dir);
  g_free(lab->dir);
  g_free(lab->sn_host);
}

/* ---- running npm and node ------------------------------------------------------------- */

/* While the script runs, it may ask for alice's node to be restarted: it creates the file
 * `restart` names, and the test restarts the node (shutdown, then `hark run` again on the
 * same state and port) and removes the file, which the script waits for. */
typedef struct {
  LabNode *node;
  const char *request;
} Restarts;

static void
child_exited(GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
  *(gboolean *)user_data = TRUE;
}

static gboolean
wake(gpointer user_data)
{
  (void)user_data;
  return G_SOURCE_CONTINUE;
}

/* Runs argv in cwd with env (NULL-terminated "NAME=VALUE"s added), its output in the test's
 * log (stderr: stdout carries TAP), answering its restart requests (restarts may be NULL);
 * its exit status, or -1 (test failed) when it did not run or end within seconds (then
 * killed), or a restart failed. */
static int
run_logged(const char *const *argv, const char *cwd, const char *const *env, guint seconds,
           const Restarts *restarts)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_set_cwd(launcher, cwd);
  g_subprocess_launcher_take_stdout_fd(launcher, dup(STDERR_FILENO));
  for (guint i = 0; env != NULL && env[i] != NULL; i++) {
    g_auto(GStrv) pair = g_strsplit(env[i], "=", 2);
    g_subprocess_launcher_setenv(launcher, pair[0], pair[1], TRUE);
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) child = g_subprocess_launcher_spawnv(launcher, argv, &error);
  if (child == NULL) {
    g_test_message("cannot run %s: %s", argv[0], error->message);
    g_test_fail();
    return -1;
  }
  gboolean done = FALSE, failed = FALSE;
  g_subprocess_wait_async(child, NULL, child_exited, &done);
  guint ticker = g_timeout_add(50, wake, NULL); /* to look for a restart request */
  gint64 end = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;
  while (!done && !failed && g_get_monotonic_time() < end) {
    g_main_context_iteration(NULL, TRUE);
    if (restarts != NULL && g_file_test(restarts->request, G_FILE_TEST_EXISTS)) {
      g_test_message("restarting %s's node, as the script asked", restarts->node->name);
      failed = !lab_node_restart(restarts->node);
      g_unlink(restarts->request);
    }
  }
  g_source_remove(ticker);
  if (!done) {
    g_test_message("%s %s: killed", argv[0],
                   failed ? "asked for a restart that failed" : "did not end in time");
    g_subprocess_force_exit(child);
    g_subprocess_wait(child, NULL, NULL);
    g_test_fail();
    return -1;
  }
  return g_subprocess_get_if_exited(child) ? g_subprocess_get_exit_status(child) : -1;
}

/* The node serves its page on a port it took (port = 0); its configuration is rewritten
 * with that port, so that after a restart the page finds the node where it was. */
static gboolean
keep_web_port(LabNode *node, const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
  g_autofree char *text = NULL;
  if (uri == NULL || !g_file_get_contents(node->node->config_path, &text, NULL, NULL))
    return FALSE;
  g_autofree char *fixed = g_strdup_printf("settings = { port = %d; }", g_uri_get_port(uri));
  g_auto(GStrv) parts = g_strsplit(text, "settings = { port = 0; }", 2);
  if (g_strv_length(parts) != 2)
    return FALSE;
  g_autofree char *rewritten = g_strjoin(fixed, parts[0], parts[1], NULL);
  return g_file_set_contents(node->node->config_path, rewritten, -1, NULL);
}

/* ---- the case ------------------------------------------------------------------------- */

static void
test_page(BrowserLab *lab, gconstpointer data)
{
  (void)data;
  HARK_REQUIRE(lab->up);
  if (!g_file_test("/usr/bin/chromium", G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip("Debian's chromium is not installed (make deps installs it)");
    return;
  }
  const char *source = g_getenv("HARK_SOURCE_ROOT");
  const char *build = g_getenv("HARK_BUILD_ROOT");
  g_assert_nonnull(source);
  g_assert_nonnull(build);
  g_autofree char *here = g_build_filename(source, "tests", "browser", NULL);
  g_autofree char *shots = g_build_filename(build, "meson-logs", "browser", NULL);
  hark_test_remove_tree(shots); /* this run's screenshots only */
  g_assert_cmpint(g_mkdir_with_parents(shots, 0755), ==, 0);

  /* From the committed lock file, into a folder of the test's own; npm's cache makes a
   * second run quick. */
  const char *npm[] = { "npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", NULL };
  g_assert_cmpint(run_logged(npm, here, NULL, 300, NULL), ==, 0);

  g_autoptr(JsonObject) link = lab_call(lab->alice, "web-url", NULL);
  HARK_REQUIRE(link != NULL);
  const char *url = json_object_get_string_member(link, "url");
  g_assert_true(keep_web_port(lab->alice, url));
  g_autofree char *url_env = g_strconcat("HARK_WEB_URL=", url, NULL);
  g_autofree char *request = g_build_filename(lab->dir, "restart", NULL);
  g_autofree char *restart_env = g_strconcat("HARK_RESTART=", request, NULL);
  Restarts restarts = { lab->alice, request };
  g_autofree char *bob_env = g_strconcat("HARK_BOB_CTL=", lab->bob->node->socket_path, NULL);
  g_autofree char *alice_env = g_strconcat("HARK_ALICE_CTL=", lab->alice->node->socket_path, NULL);
  g_autofree char *shots_env = g_strconcat("HARK_SHOTS=", shots, NULL);
  const char *env[] = { url_env, bob_env, alice_env, shots_env, restart_env, NULL };
  const char *node[] = { "node", "web.test.mjs", NULL };
  int status = run_logged(node, here, env, hark_test_timeout(SCRIPT_S * 1000) / 1000, &restarts);
  if (status != 0) {
    hark_test_node_show_logs(lab->alice->node);
    hark_test_node_show_logs(lab->bob->node);
    g_autofree char *failure_path = g_build_filename(shots, "failure.txt", NULL);
    g_autofree char *failure = NULL;
    if (!g_file_get_contents(failure_path, &failure, NULL, NULL))
      failure = g_strdup_printf("exit status %d, no step named", status);
    g_error("web.test.mjs: %s", failure);
  }
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 240000);
  hark_test_add_isolated("/browser/page", BrowserLab, NULL, lab_set_up, test_page, lab_tear_down);
  return g_test_run();
}
