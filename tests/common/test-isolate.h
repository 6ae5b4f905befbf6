/* test-isolate.h: each case in a subprocess of its own, as GStreamer's check framework
 * forks, so that a crash, an abort or a hang costs that case and not the rest of the
 * binary. The parent re-runs the binary for the one case (-p PATH --tap) with a bounded
 * time (hark_test_timeout), lets its stderr through, passes its messages on and marks the
 * case failed (or skipped) as the child says, or failed when it crashed or hung; the next
 * case then runs as usual.
 *
 * For the tests that feed code bytes a peer chooses (frames, STUN, host lists, links), and
 * the integration tests whose cases make everything they use. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* g_test_init, and in the parent (not in a case's child) nonfatal assertions, which is
 * how GLib keeps going after a failed case; the parent itself asserts nothing. A case's
 * process is killed, and the case failed, after milliseconds (scaled). */
void hark_test_init_isolated(int *argc, char ***argv, guint milliseconds);

/* Like g_test_add(path, Fixture, data, setup, test, teardown). */
#define hark_test_add_isolated(path, Fixture, data, setup, test, teardown)            \
  hark_test_add_isolated_full(path, sizeof(Fixture), data, (GTestFixtureFunc)(setup), \
                              (GTestFixtureFunc)(test), (GTestFixtureFunc)(teardown))

void hark_test_add_isolated_full(const char *path, gsize fixture_size, gconstpointer data,
                                 GTestFixtureFunc setup, GTestFixtureFunc test,
                                 GTestFixtureFunc teardown);
/* Like g_test_add_func and g_test_add_data_func. */
void hark_test_add_isolated_func(const char *path, GTestFunc test);
void hark_test_add_isolated_data_func(const char *path, gconstpointer data, GTestDataFunc test);

G_END_DECLS
