/* clock.c: the node's clock (hark/clock.h): the real time, or a test clock that stands
 * still until a test moves it, as GStreamer's GstTestClock does for pipelines. Only the
 * login server and the login client read it; see docs/testing.md "Clocks". */
#include "hark/clock.h"

#include <stdatomic.h>

struct _HarkClock {
  gboolean test;
  GMainContext *context;
  /* test: the real readings when it was made, and how far it has been moved since. */
  gint64 real_base;
  gint64 monotonic_base;
  _Atomic gint64 advanced;
};

/* A timeout of a test clock: due when the clock has reached its deadline. It never
 * asks the loop to wake it (time does not pass on its own); hark_clock_advance wakes
 * the context, which prepares every source again. */
typedef struct {
  GSource source;
  HarkClock *clock;
  gint64 deadline; /* the clock's monotonic µs */
  gint64 interval; /* µs, for a callback that asks to run again */
} ClockSource;

HarkClock *
hark_clock_new(gboolean test, GMainContext *context)
{
  HarkClock *clock = g_new0(HarkClock, 1);
  clock->test = test;
  clock->context = context ? g_main_context_ref(context) : NULL;
  clock->real_base = g_get_real_time();
  clock->monotonic_base = g_get_monotonic_time();
  return clock;
}

void
hark_clock_free(HarkClock *clock)
{
  if (clock == NULL)
    return;
  g_clear_pointer(&clock->context, g_main_context_unref);
  g_free(clock);
}

gint64
hark_clock_now_real(HarkClock *clock)
{
  if (!clock->test)
    return g_get_real_time();
  return clock->real_base + atomic_load(&clock->advanced);
}

gint64
hark_clock_now_monotonic(HarkClock *clock)
{
  if (!clock->test)
    return g_get_monotonic_time();
  return clock->monotonic_base + atomic_load(&clock->advanced);
}

gint64
hark_clock_now_seconds(HarkClock *clock)
{
  return hark_clock_now_real(clock) / G_USEC_PER_SEC;
}

gboolean
hark_clock_is_test(HarkClock *clock)
{
  return clock->test;
}

static gboolean
clock_source_due(GSource *source)
{
  ClockSource *self = (ClockSource *)source;
  return hark_clock_now_monotonic(self->clock) >= self->deadline;
}

static gboolean
clock_source_prepare(GSource *source, gint *timeout)
{
  *timeout = -1;
  return clock_source_due(source);
}

static gboolean
clock_source_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
  ClockSource *self = (ClockSource *)source;
  if (callback == NULL || !callback(data))
    return G_SOURCE_REMOVE;
  self->deadline += self->interval;
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs clock_source_funcs = {
  .prepare = clock_source_prepare,
  .check = clock_source_due,
  .dispatch = clock_source_dispatch,
};

guint
hark_clock_add_seconds(HarkClock *clock, guint seconds, GSourceFunc func, gpointer data)
{
  GSource *source;
  if (clock->test) {
    source = g_source_new(&clock_source_funcs, sizeof(ClockSource));
    ClockSource *self = (ClockSource *)source;
    self->clock = clock;
    self->interval = (gint64)seconds * G_USEC_PER_SEC;
    self->deadline = hark_clock_now_monotonic(clock) + self->interval;
    g_source_set_name(source, "hark test clock timeout");
  } else {
    source = g_timeout_source_new_seconds(seconds);
  }
  g_source_set_callback(source, func, data, NULL);
  guint id = g_source_attach(source, clock->context);
  g_source_unref(source);
  return id;
}

gboolean
hark_clock_advance(HarkClock *clock, gint64 microseconds)
{
  if (!clock->test || microseconds <= 0)
    return FALSE;
  atomic_fetch_add(&clock->advanced, microseconds);
  g_main_context_wakeup(clock->context);
  return TRUE;
}
