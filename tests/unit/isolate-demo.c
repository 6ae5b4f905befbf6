/* isolate-demo.c: a test binary whose cases crash, fail, hang and pass, each in a process
 * of its own (test-isolate.h), for test-isolate to run and read. Not a test by itself. */
#include "test-isolate.h"

static void
crash(void)
{
  volatile int *nowhere = NULL;
  *nowhere = 1;
}

static void
fail_softly(void)
{
  g_test_message("said before failing");
  g_test_fail_printf("failed on purpose");
}

static void
hang(void)
{
  for (;;)
    g_usleep(G_USEC_PER_SEC); /* never ends: the parent must kill it */
}

static void
skip(void)
{
  g_test_skip("skipped on purpose");
}

static void
pass(void)
{
  g_test_message("passing");
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 1000);
  hark_test_add_isolated_func("/demo/crash", crash);
  hark_test_add_isolated_func("/demo/after-crash", pass);
  hark_test_add_isolated_func("/demo/fail", fail_softly);
  hark_test_add_isolated_func("/demo/hang", hang);
  hark_test_add_isolated_func("/demo/skip", skip);
  hark_test_add_isolated_func("/demo/last", pass);
  return g_test_run();
}
