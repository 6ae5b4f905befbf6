/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* harness.h: helpers for integration tests that drive real `hark` processes.
 *
 * A HarkTestNode is one `$HARK_BIN run` in its own temporary directory (config file,
 * state directory, captured stdout/stderr), so tests running in parallel never share a
 * socket, a port or a key. A HarkTestClient speaks the ctl protocol (one JSON object per
 * line) with a timeout on every read. Nothing sleeps for a fixed time: every wait polls
 * (about every 20 ms) up to a bound.
 *
 * Failures are reported (g_test_message, and the first as the "not ok" line's reason) with
 * a NULL/FALSE return, so a test stops with HARK_REQUIRE and its nodes are still cleaned
 * up (and their logs shown) by hark_test_node_free(). Call g_test_set_nonfatal_assertions()
 * in main().
 *
 * Set HARK_TEST_WRAPPER to run each node under a wrapper; timeouts then grow by
 * HARK_TEST_TIMEOUT_SCALE (default 20 with a wrapper). With valgrind, give it
 * --error-exitcode so that a leak or bad read fails the test through the exit status:
 *   HARK_TEST_WRAPPER="valgrind --leak-check=full --errors-for-leak-kinds=definite
 *                      --error-exitcode=99" */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "test-ports.h" /* hark_test_closed_port */
#include "test-wait.h" /* hark_test_timeout, hark_test_wait_for */

G_BEGIN_DECLS

/* Stop the current test (the caller returns) when expr is false. The "not ok" line keeps
 * the case's first failure (what the harness saw go wrong); this one is logged then. */
#define HARK_REQUIRE(expr)                                                              \
  G_STMT_START                                                                          \
  {                                                                                     \
    if (!(expr)) {                                                                      \
      if (g_test_failed())                                                              \
        g_test_message("%s:%d: requirement failed: %s", __FILE__, __LINE__, #expr);     \
      else                                                                              \
        g_test_fail_printf("%s:%d: requirement failed: %s", __FILE__, __LINE__, #expr); \
      return;                                                                           \
    }                                                                                   \
  }                                                                                     \
  G_STMT_END

/* ---- nodes ---- */

typedef struct {
  char *dir; /* temporary, removed by hark_test_node_free */
  char *config_path; /* dir/hark.conf */
  char *state_dir; /* dir/state */
  char *socket_path; /* where the ctl socket is expected: state_dir/ctl.sock by default */
  char *stdout_path;
  char *stderr_path;
  GSubprocess *process; /* NULL when not running */
  int exit_status; /* after hark_test_node_wait_exit; -1 before */
} HarkTestNode;

/* A configuration that loads the ctl plugin with extra settings (libconfig text inside
 * the settings group, e.g. "tcp_port = 4000; max_line = 1024;"; may be NULL). */
char *hark_test_config_with_ctl(const char *node_name, const char *ctl_settings);

/* Makes the temporary directory and writes config_text to dir/hark.conf. */
HarkTestNode *hark_test_node_new(const char *config_text);
/* `$HARK_BIN run -c CONF --state-dir DIR`; FALSE (test failed) if it cannot be spawned. */
gboolean hark_test_node_spawn(HarkTestNode *node);
/* Waits until the ctl socket accepts a connection; FALSE (test failed, logs shown) when
 * the process exits first or the time runs out. */
gboolean hark_test_node_wait_ready(HarkTestNode *node);
/* spawn + wait_ready. */
gboolean hark_test_node_start(HarkTestNode *node);
/* Waits for the process to exit; FALSE on timeout. Sets node->exit_status. */
gboolean hark_test_node_wait_exit(HarkTestNode *node, guint timeout_ms);
/* The node's captured stderr so far (for checking log lines). */
char *hark_test_node_read_stderr(HarkTestNode *node);
/* Both captured streams into the test log. */
void hark_test_node_show_logs(HarkTestNode *node);
/* Stops a process still running (`shutdown` through ctl: it must then exit 0; SIGKILL
 * when that fails), shows the logs if the test failed, removes the directory. */
void hark_test_node_free(HarkTestNode *node);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkTestNode, hark_test_node_free)

/* ---- ctl clients ---- */

typedef struct _HarkTestClient HarkTestClient;

HarkTestClient *hark_test_client_connect_unix(const char *path);
HarkTestClient *hark_test_client_connect_tcp(guint16 port);
/* One line as it is; the newline is added. */
gboolean hark_test_client_send_line(HarkTestClient *client, const char *line);
/* {"id": id, "command": command, "args": args}; args may be NULL and is not taken. */
gboolean hark_test_client_send(HarkTestClient *client, const char *id, const char *command,
                               JsonObject *args);
/* Bytes as they are (no newline added), then, if close_write, end of input as
 * `printf ... | socat` gives it. */
gboolean hark_test_client_send_raw(HarkTestClient *client, const char *data, gsize length,
                                   gboolean close_write);
/* The next line as an object; NULL (test failed) on timeout, end of input or bad JSON. */
JsonObject *hark_test_client_read(HarkTestClient *client, guint timeout_ms);
/* The answer whose "id" is the string id; every event seen meanwhile is appended to
 * events (JsonObject*, may be NULL). Other answers are a failure. */
JsonObject *hark_test_client_wait_response(HarkTestClient *client, const char *id,
                                           GPtrArray *events, guint timeout_ms);
/* The next event named name, skipping others; NULL (test failed) when it does not come. */
JsonObject *hark_test_client_wait_event(HarkTestClient *client, const char *name, guint timeout_ms);
/* send (with a fresh id) + wait_response. */
JsonObject *hark_test_client_call(HarkTestClient *client, const char *command, JsonObject *args);
/* TRUE when the server closes the connection within the time (lines before are skipped). */
gboolean hark_test_client_wait_closed(HarkTestClient *client, guint timeout_ms);
void hark_test_client_free(HarkTestClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkTestClient, hark_test_client_free)

/* ---- answers ---- */

/* "result" of an ok answer; NULL (test failed, answer shown) otherwise. Owned by answer. */
JsonObject *hark_test_answer_result(JsonObject *answer);
/* error.code of a failed answer; NULL (test failed) for an ok one. Owned by answer. */
const char *hark_test_answer_error_code(JsonObject *answer);
/* Compact JSON, for messages. */
char *hark_test_json(JsonObject *object);

/* ---- other programs ---- */

/* The file at path into the log, a message per line under "---- title (path) ----";
 * nothing when it is missing or empty. */
void hark_test_show_file(const char *title, const char *path);

/* Starts argv with stdout and stderr into files (either path may be NULL: inherited). */
GSubprocess *hark_test_spawn(const char *const *argv, const char *stdout_path,
                             const char *stderr_path);

/* Runs argv (argv[0] is looked up in PATH) to completion within timeout_ms; returns the
 * exit status, or -1 (test failed) when it could not run or did not end in time. */
int hark_test_run(const char *const *argv, char **out, char **err, guint timeout_ms);

G_END_DECLS
