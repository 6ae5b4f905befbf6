/* hark-private.h: the structures behind HarkNode and HarkContext, shared by the
 * files of libhark and never installed. */
#pragma once

#include "hark/hark.h"
#include "hark/link.h"
#include "login.h"

#include <gmodule.h>

typedef void (*HarkLinkAccepted)(HarkLink *link, gpointer data);
typedef struct _HarkLinkTlsCache HarkLinkTlsCache; /* link-tls.c */
typedef struct _HarkLinkPoller HarkLinkPoller;     /* link-poller.c */
typedef void (*HarkDatagramReceived)(const char *transport, GSocketAddress *from,
                                     GBytes *datagram, gpointer data);

typedef struct {
  char *path;
  GModule *module;
  const HarkPluginDescriptor *descriptor;
  HarkContext *ctx;
} HarkLoadedPlugin;

typedef struct {
  HarkRegistration pub;
  char *name;
  HarkContext *owner;
  guint seq; /* load order, to keep equal ranks stable */
} HarkRegistrationEntry;

typedef struct {
  const HarkCommand *command;
  gpointer user_data;
  HarkContext *owner;
} HarkCommandEntry;

struct _HarkContext {
  HarkNode *node;
  char *plugin_name;      /* "core" for the core's own context */
  guint32 declared_kinds; /* what the descriptor allows it to register */
  int rank_override;      /* -1: none */
  gpointer plugin_data;
};

struct _HarkNode {
  HarkConfig *config;
  GMainContext *main_context;
  GMainLoop *loop;
  HarkIdentity *identity;
  HarkContext *core_ctx;
  GPtrArray *plugins;       /* HarkLoadedPlugin*, load order */
  GPtrArray *registrations; /* HarkRegistrationEntry* */
  GHashTable *commands;     /* name -> HarkCommandEntry* */
  GPtrArray *frontends;     /* HarkRegistrationEntry* of started frontends, start order */
  GHashTable *pending_calls; /* HarkCommandCall* not yet answered */
  guint registration_seq;
  gint64 started_at;        /* wall clock, µs; 0 before start */
  HarkClock *clock;         /* what the login server and client read (hark/clock.h) */
  guint stop_source;
  gboolean stopping;
  HarkLoginClient *login;   /* when the configuration has a login section, from start */
  /* Where links accepted by transports and datagrams that are not answers go: the
   * overlay sets these when it starts; tests of the transport layer set their own. */
  struct _HarkOverlay *overlay; /* with a login section, from start (overlay.h) */
  HarkLinkTlsCache *link_tls_cache; /* TLS contexts shared by this node's links */
  HarkLinkPoller *link_poller;       /* the epoll set of its stream links' sockets */
  HarkLinkAccepted link_accepted;
  HarkDatagramReceived datagram_received;
  gpointer network_handler_data;
};

/* context.c */
HarkContext *hark_context_new(HarkNode *node, const char *plugin_name, guint32 kinds, int rank);
void hark_context_free(HarkContext *ctx);
/* Drop every registration and command made through ctx. */
void hark_context_forget(HarkContext *ctx);
guint hark_context_count_registrations(HarkContext *ctx, HarkPluginKind kind);

/* command.c */
void hark_commands_init(HarkNode *node);
void hark_commands_cancel_pending(HarkNode *node);
void hark_commands_remove_owned(HarkNode *node, HarkContext *owner);

/* builtins.c */
void hark_builtins_register(HarkContext *core_ctx);

/* node.c: where links accepted by transports (link.c calls node->link_accepted, or frees
 * the link when there is none) and datagrams that are not answers go. */
void hark_node_set_network_handlers(HarkNode *node, HarkLinkAccepted link_accepted,
                                    HarkDatagramReceived datagram_received, gpointer data);

/* loader.c */
void hark_loader_unload_all(HarkNode *node);
