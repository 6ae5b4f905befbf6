/* test-wait.h: the one way a test here waits for something: a bounded poll for a
 * condition, its bound scaled by HARK_TEST_TIMEOUT_SCALE (default 20 under
 * HARK_TEST_WRAPPER, such as valgrind), dispatching the default main context meanwhile.
 *
 * A wait wakes as soon as a callback of the test's own process has run (it blocks in the
 * main context) and at least every 20 ms (for conditions outside the process: a file, a
 * child's socket). No test sleeps to let something happen: when a wait runs out it says
 * so and returns FALSE, and the caller stops the case (g_assert_true, HARK_REQUIRE). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Milliseconds, scaled for a loaded or instrumented machine. */
guint hark_test_timeout(guint milliseconds);

typedef gboolean (*HarkTestCondition)(gpointer data);

/* TRUE once condition(data) holds; FALSE (with a test message) when timeout_ms (scaled)
 * has passed first. */
gboolean hark_test_wait_for(HarkTestCondition condition, gpointer data, guint timeout_ms);
/* The same for the usual conditions: a flag set, a counter reaching at_least. */
gboolean hark_test_wait_for_flag(const gboolean *flag, guint timeout_ms);
gboolean hark_test_wait_for_count(const int *counter, int at_least, guint timeout_ms);
gboolean hark_test_wait_for_uint(const guint *counter, guint at_least, guint timeout_ms);
/* ... and a pointer set (*pointer != NULL). */
gboolean hark_test_wait_for_nonnull(gpointer const *pointer, guint timeout_ms);

/* Waits for a child process (GSubprocess) to end: its exit status (128 + signal when
 * killed), or -1 when it did not end within timeout_ms (scaled). */
int hark_test_wait_process(GSubprocess *process, guint timeout_ms);

/* Dispatches what is ready now, without blocking. */
void hark_test_iterate(void);
/* Dispatches for milliseconds (not scaled): for a check that something does NOT happen
 * within a time, or to let a deadline of the code under test pass. Never for waiting until
 * something happens: that is hark_test_wait_for. */
void hark_test_let_time_pass(guint milliseconds);

G_END_DECLS
