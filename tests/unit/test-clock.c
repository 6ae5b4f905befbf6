/* test-clock.c: the node's clock (core/clock.c): the real one cannot be moved; a test
 * clock stands still, moves by exactly what it is told, and runs its timeouts when (and
 * only when) it has been moved past them; the `clock` command exists only on a node
 * configured with node.test_clock. */
#include <hark/hark.h>

static gboolean
count_call(gpointer data)
{
  (*(guint *)data)++;
  return G_SOURCE_REMOVE;
}

/* Runs whatever is ready now, without blocking. */
static void
drain(GMainContext *context)
{
  while (g_main_context_iteration(context, FALSE))
    ;
}

static void
test_real_clock(void)
{
  g_autoptr(HarkClock) clock = hark_clock_new(FALSE, NULL);
  g_assert_false(hark_clock_is_test(clock));
  gint64 real = g_get_real_time();
  g_assert_cmpint(ABS(hark_clock_now_real(clock) - real), <, 5 * G_USEC_PER_SEC);
  g_assert_false(hark_clock_advance(clock, G_USEC_PER_SEC));
  g_assert_cmpint(ABS(hark_clock_now_real(clock) - g_get_real_time()), <, 5 * G_USEC_PER_SEC);
}

static void
test_test_clock_stands_still(void)
{
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(HarkClock) clock = hark_clock_new(TRUE, context);
  g_assert_true(hark_clock_is_test(clock));
  gint64 real = hark_clock_now_real(clock), mono = hark_clock_now_monotonic(clock);
  g_usleep(20000); /* real time passes; the test clock's does not */
  g_assert_cmpint(hark_clock_now_real(clock), ==, real);
  g_assert_cmpint(hark_clock_now_monotonic(clock), ==, mono);
  g_assert_true(hark_clock_advance(clock, 1500000));
  g_assert_cmpint(hark_clock_now_real(clock), ==, real + 1500000);
  g_assert_cmpint(hark_clock_now_monotonic(clock), ==, mono + 1500000);
  g_assert_cmpint(hark_clock_now_seconds(clock), ==, (real + 1500000) / G_USEC_PER_SEC);
  g_assert_false(hark_clock_advance(clock, 0));
  g_assert_false(hark_clock_advance(clock, -1));
}

static void
test_test_clock_timeouts(void)
{
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(HarkClock) clock = hark_clock_new(TRUE, context);
  guint calls = 0, other = 0;
  hark_clock_add_seconds(clock, 10, count_call, &calls);
  guint removed = hark_clock_add_seconds(clock, 5, count_call, &other);
  drain(context);
  g_assert_cmpuint(calls, ==, 0);
  /* A timeout removed before it is due never runs. */
  g_source_destroy(g_main_context_find_source_by_id(context, removed));
  hark_clock_advance(clock, 9 * G_USEC_PER_SEC);
  drain(context);
  g_assert_cmpuint(calls, ==, 0);
  hark_clock_advance(clock, G_USEC_PER_SEC);
  drain(context);
  g_assert_cmpuint(calls, ==, 1);
  g_assert_cmpuint(other, ==, 0);
  hark_clock_advance(clock, 100 * G_USEC_PER_SEC);
  drain(context);
  g_assert_cmpuint(calls, ==, 1); /* once: the callback removed it */
}

/* The command is there only when the configuration asks for a test clock. */
static void
test_clock_command(void)
{
  for (int test = 0; test <= 1; test++) {
    HarkConfig *config = hark_config_new_default();
    config->test_clock = test;
    g_autoptr(HarkNode) node = hark_node_new(config);
    HarkContext *ctx = hark_node_get_context(node);
    g_autoptr(GPtrArray) commands = hark_context_list_commands(ctx);
    gboolean found = FALSE;
    for (guint i = 0; i < commands->len; i++)
      found |= g_str_equal(((const HarkCommand *)commands->pdata[i])->name, "clock");
    g_assert_cmpint(found, ==, test);
    g_assert_cmpint(hark_clock_is_test(hark_context_get_clock(ctx)), ==, test);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/clock/real-cannot-be-moved", test_real_clock);
  g_test_add_func("/clock/test-stands-still", test_test_clock_stands_still);
  g_test_add_func("/clock/test-timeouts-run-when-moved", test_test_clock_timeouts);
  g_test_add_func("/clock/command-only-with-test-clock", test_clock_command);
  return g_test_run();
}
