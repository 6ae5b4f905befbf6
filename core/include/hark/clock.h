/* clock.h: the node's clock, handed to plugins through their HarkContext.
 *
 * The login server (lock-outs, rate windows, nonce and replay windows, certificate
 * times) and the login client (certificate expiry, renewal) read time only through
 * this clock, so a test can move it instead of waiting. A node's clock is the real
 * one unless its configuration says `node.test_clock = true`: then it stands still at
 * the time the node was made and moves only when told to (hark_clock_advance, the
 * `clock` control command that only such a node has). Other subsystems (links,
 * overlay, media) keep the real time. */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HarkClock HarkClock;

/* The real clock, or (test) one that stands still at now until advanced. context is
 * where its timeouts are attached; it is woken when a test clock moves. */
HARK_API HarkClock *hark_clock_new(gboolean test, GMainContext *context);
HARK_API void hark_clock_free(HarkClock *clock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkClock, hark_clock_free)

/* Microseconds since the Unix epoch; safe from any thread. */
HARK_API gint64 hark_clock_now_real(HarkClock *clock);
/* Microseconds of a clock that never goes back; safe from any thread. */
HARK_API gint64 hark_clock_now_monotonic(HarkClock *clock);
/* Seconds since the Unix epoch. */
HARK_API gint64 hark_clock_now_seconds(HarkClock *clock);

HARK_API gboolean hark_clock_is_test(HarkClock *clock);

/* Calls func(data) on the clock's context once seconds of this clock have passed (a
 * test clock: once it has been advanced that far). Returns the source id, for
 * g_source_remove on that context. */
HARK_API guint hark_clock_add_seconds(HarkClock *clock, guint seconds, GSourceFunc func,
                                      gpointer data);

/* Moves a test clock forward by microseconds (> 0); timeouts now due run from its
 * context. FALSE for the real clock, which nobody moves. */
HARK_API gboolean hark_clock_advance(HarkClock *clock, gint64 microseconds);

G_END_DECLS
