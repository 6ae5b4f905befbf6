/* test-wait.c: bounded, scaled waits (see test-wait.h). */
#include "test-wait.h"

#define POLL_MS 20
#define DEFAULT_WRAPPED_SCALE 20

guint
hark_test_timeout(guint milliseconds)
{
  const char *scale = g_getenv("HARK_TEST_TIMEOUT_SCALE");
  guint64 factor = 1;
  if (scale != NULL)
    factor = MAX(g_ascii_strtoull(scale, NULL, 10), 1);
  else if (g_getenv("HARK_TEST_WRAPPER") != NULL)
    factor = DEFAULT_WRAPPED_SCALE;
  return (guint)MIN(milliseconds * factor, G_MAXUINT);
}

void
hark_test_iterate(void)
{
  while (g_main_context_iteration(NULL, FALSE))
    ;
}

static gboolean
tick(gpointer unused)
{
  return G_SOURCE_REMOVE;
}

/* One blocking dispatch, woken by the test's own sources or after at most wait_ms. The
 * tick source is gone when this returns: nothing holds the caller's stack. */
static void
dispatch_once(gint64 wait_ms)
{
  GSource *source = g_timeout_source_new((guint)CLAMP(wait_ms, 1, POLL_MS));
  g_source_set_callback(source, tick, NULL, NULL);
  g_source_attach(source, NULL);
  g_main_context_iteration(NULL, TRUE);
  g_source_destroy(source);
  g_source_unref(source);
}

gboolean
hark_test_wait_for(HarkTestCondition condition, gpointer data, guint timeout_ms)
{
  guint scaled = hark_test_timeout(timeout_ms);
  gint64 deadline = g_get_monotonic_time() + (gint64)scaled * 1000;
  /* The condition is checked before each dispatch and after each one, never after a
   * drain of everything ready: a test that sets a handler once the wait returns must not
   * miss the callbacks that follow the one it waited for. */
  for (;;) {
    if (condition(data))
      return TRUE;
    gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
    if (left_ms <= 0) {
      g_test_message("the condition did not hold within %u ms (%u ms scaled)", timeout_ms, scaled);
      return FALSE;
    }
    dispatch_once(left_ms);
  }
}

static gboolean
flag_is_set(gpointer flag)
{
  return *(const gboolean *)flag;
}

gboolean
hark_test_wait_for_flag(const gboolean *flag, guint timeout_ms)
{
  return hark_test_wait_for(flag_is_set, (gpointer)flag, timeout_ms);
}

typedef struct {
  const int *counter;
  int at_least;
} Count;

static gboolean
count_reached(gpointer data)
{
  const Count *count = data;
  return *count->counter >= count->at_least;
}

gboolean
hark_test_wait_for_count(const int *counter, int at_least, guint timeout_ms)
{
  Count count = { counter, at_least };
  return hark_test_wait_for(count_reached, &count, timeout_ms);
}

typedef struct {
  const guint *counter;
  guint at_least;
} UCount;

static gboolean
ucount_reached(gpointer data)
{
  const UCount *count = data;
  return *count->counter >= count->at_least;
}

gboolean
hark_test_wait_for_uint(const guint *counter, guint at_least, guint timeout_ms)
{
  UCount count = { counter, at_least };
  return hark_test_wait_for(ucount_reached, &count, timeout_ms);
}

static gboolean
is_set(gpointer pointer)
{
  return *(gpointer const *)pointer != NULL;
}

gboolean
hark_test_wait_for_nonnull(gpointer const *pointer, guint timeout_ms)
{
  return hark_test_wait_for(is_set, (gpointer)pointer, timeout_ms);
}

void
hark_test_let_time_pass(guint milliseconds)
{
  gint64 end = g_get_monotonic_time() + (gint64)milliseconds * 1000;
  gint64 left_ms;
  hark_test_iterate();
  while ((left_ms = (end - g_get_monotonic_time()) / 1000) > 0)
    dispatch_once(left_ms);
  hark_test_iterate();
}

static void
on_exited(GObject *source, GAsyncResult *result, gpointer data)
{
  g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
  *(gboolean *)data = TRUE;
}

int
hark_test_wait_process(GSubprocess *process, guint timeout_ms)
{
  /* Heap flag: the callback may come after we gave up waiting (it then leaks). */
  gboolean *exited = g_new0(gboolean, 1);
  g_subprocess_wait_async(process, NULL, on_exited, exited);
  if (!hark_test_wait_for(flag_is_set, exited, timeout_ms))
    return -1;
  g_free(exited);
  return g_subprocess_get_if_exited(process) ? g_subprocess_get_exit_status(process)
                                             : 128 + g_subprocess_get_term_sig(process);
}
