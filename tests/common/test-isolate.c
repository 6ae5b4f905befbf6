/* test-isolate.c: a subprocess per case (see test-isolate.h).
 *
 * Not g_test_trap_subprocess: its child runs quiet, so the case's messages (an
 * integration test's node logs, g_test_fail_printf's reason) would be lost. The child
 * here is the same binary run for the one case in TAP mode, marked by an environment
 * variable; the parent passes its "# " lines on as messages and judges it by its exit
 * status and its "ok"/"not ok" line. */
#include "test-isolate.h"

#include "test-wait.h"

#include <gio/gio.h>
#include <string.h>

#define CHILD_VARIABLE "HARK_TEST_CASE_CHILD"

/* What one case runs in its child; lives as long as the test run. */
typedef struct {
  gsize fixture_size;
  gconstpointer data;
  GTestFixtureFunc setup, test, teardown;
  GTestFunc func;
  GTestDataFunc data_func;
} Isolated;

static guint case_ms;
static char *program;
/* HARK_TEST_IN_PROCESS set (make check's sanitizer run): every case runs in the test's
 * own process, as without isolation, so that LeakSanitizer checks the cases' code once at
 * the end; its stop-the-world fails now and then in a process with GIO's threads, and
 * one short process per case would multiply that. The plain build isolates. */
static gboolean in_process;

void
hark_test_init_isolated(int *argc, char ***argv, guint milliseconds)
{
  program = g_file_read_link("/proc/self/exe", NULL);
  if (program == NULL)
    program = g_strdup((*argv)[0]);
  g_test_init(argc, argv, NULL);
  case_ms = milliseconds;
  in_process = g_getenv("HARK_TEST_IN_PROCESS") != NULL;
  if (g_getenv(CHILD_VARIABLE) == NULL && !in_process)
    g_test_set_nonfatal_assertions();
}

static void
run_in_child(const Isolated *c)
{
  if (c->func != NULL) {
    c->func();
  } else if (c->data_func != NULL) {
    c->data_func(c->data);
  } else {
    gpointer fixture = g_malloc0(MAX(c->fixture_size, 1));
    if (c->setup != NULL)
      c->setup(fixture, c->data);
    c->test(fixture, c->data);
    if (c->teardown != NULL)
      c->teardown(fixture, c->data);
    g_free(fixture);
  }
}

typedef struct {
  gboolean done;
  char *out;
} Output;

static void
on_output(GObject *source, GAsyncResult *result, gpointer data)
{
  Output *output = data;
  g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), result, &output->out, NULL, NULL);
  output->done = TRUE;
}

/* The child's TAP: messages passed on; TRUE when it said "ok" (and "# SKIP": *skip), its
 * reason for "not ok" (or its "Bail out!" line) or for the skip in *reason. */
static gboolean
read_child_tap(const char *tap, gboolean *skip, char **reason)
{
  gboolean ok = FALSE;
  g_auto(GStrv) lines = g_strsplit(tap != NULL ? tap : "", "\n", -1);
  for (char **line = lines; *line != NULL; line++) {
    if (g_str_has_prefix(*line, "# ")) {
      const char *text = *line + 2;
      if (!g_str_has_prefix(text, "random seed:") && !g_str_has_prefix(text, "Start of ") &&
          !g_str_has_prefix(text, "End of "))
        g_test_message("%s", text);
    } else if (g_str_has_prefix(*line, "ok ")) {
      const char *skipped = strstr(*line, " # SKIP");
      ok = TRUE;
      *skip = skipped != NULL;
      if (skipped != NULL) {
        g_free(*reason);
        *reason = g_strstrip(g_strdup(skipped + strlen(" # SKIP")));
      }
    } else if (g_str_has_prefix(*line, "not ok ")) {
      const char *dash = strstr(*line, " - ");
      g_free(*reason);
      *reason = g_strdup(dash != NULL ? dash + 3 : *line);
    } else if (g_str_has_prefix(*line, "Bail out! ")) {
      /* A failed g_assert (or a fatal critical) says what failed only here. */
      g_free(*reason);
      *reason = g_strdup(*line + strlen("Bail out! "));
    }
  }
  return ok;
}

static void
run_isolated(gconstpointer data)
{
  if (g_getenv(CHILD_VARIABLE) != NULL || in_process) {
    run_in_child(data);
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_setenv(launcher, CHILD_VARIABLE, "1", TRUE);
  g_autoptr(GSubprocess) child =
    g_subprocess_launcher_spawn(launcher, &error, program, "-p", g_test_get_path(), "--tap", NULL);
  if (child == NULL) {
    g_test_fail_printf("cannot run the case's process: %s", error->message);
    return;
  }
  /* Heap: if the child hangs, the callback comes after we gave up. */
  Output *output = g_new0(Output, 1);
  g_subprocess_communicate_utf8_async(child, NULL, NULL, on_output, output);
  if (!hark_test_wait_for_flag(&output->done, case_ms)) {
    g_subprocess_force_exit(child);
    g_test_fail_printf("the case's process ran past %u ms and was killed",
                       hark_test_timeout(case_ms));
    /* Its pipe closes with it: the callback comes at once, and nothing outlives the case
     * (if it did not come, the output is left to it rather than freed under it). */
    if (hark_test_wait_for_flag(&output->done, 5000)) {
      g_free(output->out);
      g_free(output);
    }
    return;
  }
  gboolean skip = FALSE;
  g_autofree char *reason = NULL;
  gboolean ok = read_child_tap(output->out, &skip, &reason);
  g_free(output->out);
  g_free(output);
  int status = hark_test_wait_process(child, 10000);
  if (status == 0 && ok && skip)
    g_test_skip(reason != NULL && *reason != '\0' ? reason : "skipped in the case's process");
  else if (status > 128)
    g_test_fail_printf("the case's process was killed by signal %d%s%s", status - 128,
                       reason != NULL ? " after: " : "", reason != NULL ? reason : "");
  else if (status != 0 || !ok)
    g_test_fail_printf("the case's process failed (exit status %d)%s%s", status,
                       reason != NULL ? ": " : "", reason != NULL ? reason : "");
}

static void
add(const char *path, Isolated *c)
{
  g_test_add_data_func_full(path, c, run_isolated, g_free);
}

void
hark_test_add_isolated_full(const char *path, gsize fixture_size, gconstpointer data,
                            GTestFixtureFunc setup, GTestFixtureFunc test,
                            GTestFixtureFunc teardown)
{
  Isolated *c = g_new0(Isolated, 1);
  *c = (Isolated){
    .fixture_size = fixture_size, .data = data, .setup = setup, .test = test, .teardown = teardown
  };
  add(path, c);
}

void
hark_test_add_isolated_func(const char *path, GTestFunc test)
{
  Isolated *c = g_new0(Isolated, 1);
  c->func = test;
  add(path, c);
}

void
hark_test_add_isolated_data_func(const char *path, gconstpointer data, GTestDataFunc test)
{
  Isolated *c = g_new0(Isolated, 1);
  c->data = data;
  c->data_func = test;
  add(path, c);
}
