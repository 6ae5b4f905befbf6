/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-node-context.c: the thread that made a node owns the node's main context for the
 * node's whole life, not only while its loop runs. Worker threads of GIO and of
 * glib-networking (a TLS handshake's certificate check) call g_main_context_invoke() on
 * that context; on a context nobody owns, GLib runs the function right in the worker,
 * which then holds the context, and the node's own g_main_context_push_thread_default()
 * fails ("acquired_context" critical: a node exiting with status 133 at shutdown). */
#include "hark-private.h"
#include "hark/hark.h"

typedef struct {
  GMainContext *context;
  GThread *ran_on; /* where the invoked function ran, NULL before it ran */
  gboolean acquired; /* the worker could take the context */
} Invoke;

static gboolean
note_thread(gpointer data)
{
  Invoke *invoke = data;
  invoke->ran_on = g_thread_self();
  return G_SOURCE_REMOVE;
}

/* What glib-networking's handshake thread does: invoke on the context it started on. */
static gpointer
worker_invoke(gpointer data)
{
  Invoke *invoke = data;
  g_main_context_invoke(invoke->context, note_thread, invoke);
  return NULL;
}

static gpointer
worker_acquire(gpointer data)
{
  Invoke *invoke = data;
  invoke->acquired = g_main_context_acquire(invoke->context);
  if (invoke->acquired)
    g_main_context_release(invoke->context);
  return NULL;
}

static void
in_worker(GThreadFunc func, Invoke *invoke)
{
  g_thread_join(g_thread_new("node-context-worker", func, invoke));
}

/* Outside the loop (before hark_node_run, after it quits, through hark_node_free) a
 * worker's invoke is queued to the node's thread: it neither runs in the worker nor
 * leaves the worker owning the context. */
static void
test_invoke_between_loops(void)
{
  g_autoptr(HarkNode) node = hark_node_new(hark_config_new_default());
  g_assert_nonnull(node);
  Invoke invoke = { .context = g_main_context_default() };
  in_worker(worker_invoke, &invoke);
  g_assert_null(invoke.ran_on);
  g_assert_true(g_main_context_is_owner(invoke.context));
  /* The node's thread can still start GIO work on its context. */
  g_main_context_push_thread_default(invoke.context);
  g_main_context_pop_thread_default(invoke.context);
  while (invoke.ran_on == NULL)
    g_main_context_iteration(invoke.context, TRUE);
  g_assert_true(invoke.ran_on == g_thread_self());
}

/* The ownership ends with the node (and with the last node of a thread that has two):
 * another thread can take the context afterwards. */
static void
test_released_with_node(void)
{
  Invoke invoke = { .context = g_main_context_default() };
  HarkNode *first = hark_node_new(hark_config_new_default());
  HarkNode *second = hark_node_new(hark_config_new_default());
  hark_node_free(first);
  in_worker(worker_acquire, &invoke);
  g_assert_false(invoke.acquired);
  hark_node_free(second);
  in_worker(worker_acquire, &invoke);
  g_assert_true(invoke.acquired);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/node-context/invoke-between-loops", test_invoke_between_loops);
  g_test_add_func("/node-context/released-with-node", test_released_with_node);
  return g_test_run();
}
