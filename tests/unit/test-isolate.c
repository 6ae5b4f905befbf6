/* test-isolate.c: a case in a process of its own (tests/common/test-isolate.c) costs only
 * itself when it crashes, fails or hangs, and what it says reaches the log: isolate-demo's
 * TAP, read line by line. */
#include "test-wait.h"

#include <glib/gstdio.h>
#include <string.h>

static char *
demo_tap(void)
{
  g_autofree char *demo =
    g_build_filename(g_getenv("HARK_BUILD_ROOT"), "tests", "isolate-demo", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("hark-isolate-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *out_path = g_build_filename(dir, "tap", NULL);
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_unsetenv(launcher, "HARK_TEST_IN_PROCESS"); /* the demo isolates */
  g_subprocess_launcher_set_stdout_file_path(launcher, out_path);
  g_autoptr(GSubprocess) process =
    g_subprocess_launcher_spawn(launcher, &error, demo, "--tap", NULL);
  g_assert_no_error(error);
  g_assert_cmpint(hark_test_wait_process(process, 30000), ==, 1); /* some cases failed */
  char *out = NULL;
  g_assert_true(g_file_get_contents(out_path, &out, NULL, NULL));
  g_unlink(out_path);
  g_rmdir(dir);
  return out;
}

static void
assert_line(const char *tap, const char *pattern)
{
  g_auto(GStrv) lines = g_strsplit(tap, "\n", -1);
  for (char **line = lines; *line != NULL; line++)
    if (g_pattern_match_simple(pattern, *line))
      return;
  g_error("no line '%s' in:\n%s", pattern, tap);
}

static void
test_each_case_alone(void)
{
  g_autofree char *tap = demo_tap();
  assert_line(tap, "1..6");
  /* Killed by SIGSEGV; under AddressSanitizer, which catches the signal, by its abort
   * (abort_on_error) or with its exit status 1. */
  g_assert_true(
    g_strrstr(tap, "not ok 1 /demo/crash - the case's process was killed by signal 11") ||
    g_strrstr(tap, "not ok 1 /demo/crash - the case's process was killed by signal 6") ||
    g_strrstr(tap, "not ok 1 /demo/crash - the case's process failed (exit status 1)"));
  assert_line(tap, "ok 2 /demo/after-crash");
  assert_line(tap, "# said before failing");
  assert_line(tap, "not ok 3 /demo/fail - *failed on purpose");
  assert_line(tap, "not ok 4 /demo/hang - *ran past * ms and was killed"); /* 1000, scaled */
  assert_line(tap, "ok 5 /demo/skip # SKIP skipped on purpose");
  assert_line(tap, "ok 6 /demo/last");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/isolate/each-case-alone", test_each_case_alone);
  return g_test_run();
}
