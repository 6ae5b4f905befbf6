/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-sn-load.c: many idle ordinary nodes for one super node, speaking the real protocol.
 *
 * One process embeds a hark node (logged in from a saved certificate in STATE_DIR) and
 * opens COUNT links to the SN over the `tcp` transport, each a full TLS 1.3 handshake
 * with the device certificate followed by JOIN, at most 32 at a time. Every link sends a
 * PING once it has been silent for KEEPALIVE seconds, as an idle node does
 * (network.keepalive; an SN drops a client silent for longer than its keepalive plus
 * twice its timeout), from its JOIN on; SECONDS is the idle window after all joined.
 * The SN cannot tell these links from COUNT separate devices of one user, which is what
 * an SN's load is: links, keep-alives, memory per link.
 *
 * Usage: bench-sn-load CONFIG HOST PORT COUNT KEEPALIVE SECONDS
 * Prints one JSON object: joined, failed, connect_seconds, pings, pongs. */
#include <hark/hark.h>

#include <stdio.h>
#include <stdlib.h>

#define IN_FLIGHT 32 /* an SN admits 32 unjoined links from one address */
#define TICK_MS 100

typedef struct {
  HarkNode *node;
  const HarkTransportInterface *tcp;
  gpointer tcp_instance;
  const char *host;
  guint16 port;
  guint count;
  guint started, in_flight, joined, failed;
  guint64 pings, pongs;
  GPtrArray *links; /* HarkLink* that got JOIN_OK */
  gint64 keepalive_us;
  gint64 t0, connected_at;
  GMainLoop *loop;
} Load;

static void open_more(Load *load);

static void
on_up(HarkLink *link, gpointer data)
{
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string("load"));
  g_variant_builder_add(&dict, "{sv}", "as", g_variant_new_string("client"));
  hark_link_send(link, HARK_MSG_JOIN, 1, g_variant_new("(a{sv})", &dict), NULL);
}

static void
settle(Load *load)
{
  load->in_flight--;
  if (load->joined + load->failed == load->count && load->connected_at == 0)
    load->connected_at = g_get_monotonic_time();
  open_more(load);
}

static void
on_message(HarkLink *link, const HarkWireMessage *message, gpointer data)
{
  Load *load = data;
  if (message->type == HARK_MSG_JOIN_OK) {
    load->joined++;
    g_ptr_array_add(load->links, link);
    settle(load);
  } else if (message->type == HARK_MSG_PONG) {
    load->pongs++;
  } else if (message->type == HARK_MSG_PING) {
    hark_link_send(link, HARK_MSG_PONG, message->id, message->body, NULL);
  }
}

static void
on_closed(HarkLink *link, const GError *error, gpointer data)
{
  Load *load = data;
  if (!g_ptr_array_remove(load->links, link)) {
    load->failed++;
    settle(load);
  }
  g_printerr("link closed: %s\n", error != NULL ? error->message : "by us");
  hark_link_free(link);
}

static const HarkLinkHandler handler = { on_up, on_message, on_closed };

static void
on_opened(HarkLink *link, GError *error, gpointer data)
{
  Load *load = data;
  if (link == NULL) {
    g_printerr("open failed: %s\n", error->message);
    g_error_free(error);
    load->failed++;
    settle(load);
    return;
  }
  hark_link_set_handler(link, &handler, load);
}

static void
open_more(Load *load)
{
  while (load->in_flight < IN_FLIGHT && load->started < load->count) {
    load->started++;
    load->in_flight++;
    load->tcp->open(load->tcp_instance, load->host, load->port, NULL, on_opened, load);
  }
}

/* Keep-alives as COUNT independent idle nodes send them: a PING after KEEPALIVE s with
 * no message either way (a link's times are its JOIN and JOIN_OK at first). */
static gboolean
on_tick(gpointer data)
{
  Load *load = data;
  gint64 now = g_get_monotonic_time();
  for (guint i = 0; i < load->links->len; i++) {
    HarkLink *link = load->links->pdata[i];
    const HarkLinkStats *stats = hark_link_get_stats(link);
    if (now - MIN(stats->last_in_at, stats->last_out_at) < load->keepalive_us)
      continue;
    hark_link_send(link, HARK_MSG_PING, 2, g_variant_new("(t)", (guint64)now), NULL);
    load->pings++;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_end(gpointer data)
{
  g_main_loop_quit(((Load *)data)->loop);
  return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
  if (argc != 7) {
    g_printerr("usage: %s CONFIG HOST PORT COUNT KEEPALIVE SECONDS\n", argv[0]);
    return 2;
  }
  g_autoptr(GError) error = NULL;
  HarkConfig *config = hark_config_load(argv[1], &error);
  if (config == NULL) {
    g_printerr("%s\n", error->message);
    return 1;
  }
  Load load = { 0 };
  load.host = argv[2];
  load.port = (guint16)atoi(argv[3]);
  load.count = (guint)atoi(argv[4]);
  guint keepalive = (guint)atoi(argv[5]);
  guint seconds = (guint)atoi(argv[6]);
  load.links = g_ptr_array_new();
  load.keepalive_us = (gint64)keepalive * G_USEC_PER_SEC;
  load.node = hark_node_new(config);
  if (!hark_node_load_plugins(load.node, &error) || !hark_node_start(load.node, &error)) {
    g_printerr("%s\n", error->message);
    return 1;
  }
  g_autoptr(GPtrArray) transports =
    hark_context_lookup(hark_node_get_context(load.node), HARK_KIND_TRANSPORT);
  for (guint i = 0; i < transports->len; i++) {
    const HarkRegistration *reg = transports->pdata[i];
    if (g_strcmp0(reg->name, "tcp") == 0) {
      load.tcp = reg->iface;
      load.tcp_instance = reg->instance;
    }
  }
  if (load.tcp == NULL) {
    g_printerr("the configuration must load the tcp transport\n");
    return 1;
  }
  load.loop = g_main_loop_new(hark_context_main_context(hark_node_get_context(load.node)), FALSE);
  load.t0 = g_get_monotonic_time();
  /* Links that joined first keep alive while the others connect. */
  GSource *tick = g_timeout_source_new(TICK_MS);
  g_source_set_callback(tick, on_tick, &load, NULL);
  g_source_attach(tick, g_main_loop_get_context(load.loop));
  open_more(&load);
  while (load.connected_at == 0)
    g_main_context_iteration(g_main_loop_get_context(load.loop), TRUE);
  GSource *end = g_timeout_source_new_seconds(seconds);
  g_source_set_callback(end, on_end, &load, NULL);
  g_source_attach(end, g_main_loop_get_context(load.loop));
  g_print("{\"joined\": %u, \"failed\": %u, \"connect_seconds\": %.2f, \"ready\": true}\n",
          load.joined, load.failed, (load.connected_at - load.t0) / 1e6);
  fflush(stdout);
  g_main_loop_run(load.loop);
  g_print(
    "{\"joined\": %u, \"failed\": %u, \"connect_seconds\": %.2f, \"pings\": %" G_GUINT64_FORMAT
    ", \"pongs\": %" G_GUINT64_FORMAT ", \"still_up\": %u}\n",
    load.joined, load.failed, (load.connected_at - load.t0) / 1e6, load.pings, load.pongs,
    load.links->len);
  g_source_destroy(tick);
  g_source_unref(tick);
  g_source_unref(end);
  for (guint i = 0; i < load.links->len; i++)
    hark_link_free(load.links->pdata[i]);
  g_ptr_array_unref(load.links);
  g_main_loop_unref(load.loop);
  hark_node_free(load.node);
  return 0;
}
