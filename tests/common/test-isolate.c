/* test-isolate.c: a subprocess per case (see test-isolate.h). */
#include "test-isolate.h"

#include "test-wait.h"

/* What one case runs in its child; lives as long as the test run. */
typedef struct {
  gsize fixture_size;
  gconstpointer data;
  GTestFixtureFunc setup, test, teardown;
  GTestFunc func;
  GTestDataFunc data_func;
} Isolated;

/* A whole case's time in its child: longer than any bounded wait of a unit test. */
#define CASE_MS 60000

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

static void
run_isolated(gconstpointer data)
{
  if (g_test_subprocess()) {
    run_in_child(data);
    return;
  }
  guint ms = hark_test_timeout(CASE_MS);
  g_test_trap_subprocess(NULL, (guint64)ms * 1000, G_TEST_SUBPROCESS_INHERIT_STDERR);
  /* Not g_test_trap_assert_passed: with fatal assertions the parent would abort, and a
   * crash would again cost every case after it. */
  if (g_test_trap_reached_timeout())
    g_test_fail_printf("the case's process ran past %u ms and was killed", ms);
  else if (!g_test_trap_has_passed())
    g_test_fail_printf("the case's process failed or crashed (its stderr is above)");
}

void
hark_test_init_isolated(int *argc, char ***argv)
{
  g_test_init(argc, argv, NULL);
  if (!g_test_subprocess())
    g_test_set_nonfatal_assertions();
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
  *c = (Isolated){ .fixture_size = fixture_size, .data = data, .setup = setup, .test = test,
                   .teardown = teardown };
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
