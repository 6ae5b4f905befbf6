/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link-poller.c: one epoll set per node for the sockets of its stream links.
 *
 * An idle link must cost nothing. With GIO's async reads every link keeps a GSource on
 * the main context, and GLib polls every source on every wakeup: a super node with
 * 4,000 idle clients spent about 16% of a core just answering their keep-alives, and
 * each pending read held its own 16 KiB buffer. Here the sockets of all stream links sit
 * in one epoll set behind one GSource: a wakeup costs what the ready sockets cost, and
 * reads go through one buffer of the node's (TLS copies what it needs at once).
 *
 * Level-triggered: a socket with more to read than one chunk is simply ready again on
 * the next iteration, so one busy link cannot starve the others. */
#include "link-private.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVENTS_PER_WAKEUP 64

struct _HarkLinkPoller {
  GSource source;
  int epfd;
  guint8 buffer[HARK_LINK_READ_CHUNK];
};

/* Reads what one ready link has, as GIO's async read would have. */
static void
read_ready(HarkLink *link, guint8 *buffer)
{
  if (!link->polled || link->state == HARK_LINK_CLOSED)
    return;
  GSocket *socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(link->stream));
  g_autoptr(GError) error = NULL;
  gssize n = g_socket_receive_with_blocking(socket, (char *)buffer, HARK_LINK_READ_CHUNK, FALSE,
                                            NULL, &error);
  if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return;
  hark_link_stream_got(link, buffer, n, error);
}

static gboolean
poller_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
  HarkLinkPoller *poller = (HarkLinkPoller *)source;
  struct epoll_event events[EVENTS_PER_WAKEUP];
  int n = epoll_wait(poller->epfd, events, EVENTS_PER_WAKEUP, 0);
  /* A link's messages may close others of the batch (the overlay drops a peer): every
   * link of the batch is held until the batch is done, and one that left the set is
   * skipped. */
  for (int i = 0; i < n; i++)
    hark_link_hold(events[i].data.ptr);
  for (int i = 0; i < n; i++)
    read_ready(events[i].data.ptr, poller->buffer);
  for (int i = 0; i < n; i++)
    hark_link_release(events[i].data.ptr);
  return G_SOURCE_CONTINUE;
}

static void
poller_finalize(GSource *source)
{
  HarkLinkPoller *poller = (HarkLinkPoller *)source;
  if (poller->epfd >= 0)
    close(poller->epfd);
  poller->epfd = -1;
}

static GSourceFuncs poller_funcs = {
  .dispatch = poller_dispatch,
  .finalize = poller_finalize,
};

/* The node's poller, made on first use; NULL when epoll is not available (the link
 * then reads with GIO, as before). */
static HarkLinkPoller *
node_poller(HarkLink *link)
{
  HarkNode *node = link->node;
  HarkNodeLinks *links = hark_node_links(node);
  if (links->poller != NULL)
    return links->poller;
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    g_debug("no epoll (%s): links read through GIO", g_strerror(errno));
    return NULL;
  }
  HarkLinkPoller *poller = (HarkLinkPoller *)g_source_new(&poller_funcs, sizeof *poller);
  poller->epfd = epfd;
  g_source_set_name(&poller->source, "hark link poller");
  g_source_add_unix_fd(&poller->source, epfd, G_IO_IN);
  g_source_attach(&poller->source, node->main_context);
  links->poller = poller;
  return poller;
}

gboolean
hark_link_poller_add(HarkLink *link)
{
  if (link->polled)
    return TRUE;
  if (!G_IS_SOCKET_CONNECTION(link->stream))
    return FALSE;
  HarkLinkPoller *poller = node_poller(link);
  if (poller == NULL)
    return FALSE;
  GSocket *socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(link->stream));
  struct epoll_event event = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = link };
  if (epoll_ctl(poller->epfd, EPOLL_CTL_ADD, g_socket_get_fd(socket), &event) != 0) {
    g_debug("epoll_ctl: %s: this link reads through GIO", g_strerror(errno));
    return FALSE;
  }
  link->polled = TRUE;
  link->poller = (HarkLinkPoller *)g_source_ref(&poller->source);
  hark_link_hold(link);
  return TRUE;
}

void
hark_link_poller_remove(HarkLink *link)
{
  if (!link->polled)
    return;
  link->polled = FALSE;
  HarkLinkPoller *poller = g_steal_pointer(&link->poller);
  GSocket *socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(link->stream));
  if (poller->epfd >= 0)
    epoll_ctl(poller->epfd, EPOLL_CTL_DEL, g_socket_get_fd(socket), NULL);
  g_source_unref(&poller->source);
  hark_link_release(link);
}

void
hark_link_poller_free(HarkLinkPoller *poller)
{
  if (poller == NULL)
    return;
  g_source_destroy(&poller->source);
  g_source_unref(&poller->source);
}
