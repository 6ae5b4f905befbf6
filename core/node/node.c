/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* node.c: the life of a node: state directory and identity, frontends started and
 * stopped around the main loop, and an orderly shutdown. */
#include "node-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#define IDENTITY_FILE "identity.pem"

/* The newest interface-table version this core understands, per kind (the registry
 * checks registrations against it). A kind whose interface has not been defined yet
 * accepts no registration. Add a line when a kind's header (codec.h, transport.h, ...)
 * is written; raise it when a table grows. */
static const HarkInterfaceVersion interface_versions[] = {
  { HARK_KIND_FRONTEND, HARK_FRONTEND_INTERFACE_VERSION },
  { HARK_KIND_STORE, HARK_STORE_INTERFACE_VERSION },
  { HARK_KIND_TRANSPORT, HARK_TRANSPORT_INTERFACE_VERSION },
  { HARK_KIND_CODEC, HARK_CODEC_INTERFACE_VERSION },
  { HARK_KIND_NAT_PROBE, HARK_NAT_PROBE_INTERFACE_VERSION },
  { HARK_KIND_SEARCH, HARK_SEARCH_INTERFACE_VERSION },
};

static void
registration_entry_free(gpointer data)
{
  HarkRegistrationEntry *entry = data;
  g_free(entry->name);
  g_free(entry);
}

/* The node's thread owns the node's main context from here to hark_node_free, not only
 * while the loop runs: the node starts GIO work on it outside the loop too (links write
 * their goodbyes and close while the node is freed), and worker threads invoke on it (a
 * TLS handshake of the login client, in glib-networking's thread, has the certificate
 * checked with g_main_context_invoke). On a context that nobody owns, GLib runs that in
 * the worker, which then owns the context meanwhile, and the node's own
 * g_main_context_push_thread_default fails: a critical, fatal under G_DEBUG, and the
 * node exited with status 133 at shutdown. Owned, such calls wait for the node's thread
 * (tests/unit/test-node-context.c). */
static void
hold_main_context(HarkNode *node)
{
  node->owns_context = g_main_context_acquire(node->main_context);
  if (!node->owns_context)
    g_warning("another thread owns the main context this node was made on; GLib worker "
              "threads may run the node's callbacks there");
}

HarkNode *
hark_node_new(HarkConfig *config)
{
  HarkNodeRoot *root = g_new0(HarkNodeRoot, 1);
  HarkNode *node = &root->base;
  node->hooks.snapshot = hark_node_snapshot;
  node->hooks.request_stop = hark_node_request_stop;
  node->hooks.interface_versions = interface_versions;
  node->hooks.n_interface_versions = G_N_ELEMENTS(interface_versions);
  node->config = config;
  node->main_context = g_main_context_ref_thread_default();
  hold_main_context(node);
  node->loop = g_main_loop_new(node->main_context, FALSE);
  node->clock = hark_clock_new(config->test_clock, node->main_context);
  node->plugins = g_ptr_array_new();
  node->registrations = g_ptr_array_new_with_free_func(registration_entry_free);
  node->frontends = g_ptr_array_new();
  hark_commands_init(node);
  node->core_ctx = hark_context_new(node, "core", 0, -1);
  hark_builtins_register(root);
  return node;
}

HarkContext *
hark_node_get_context(HarkNode *node)
{
  return node->core_ctx;
}

/* The state directory holds keys: it must be ours alone. One we made is 0700; one that
 * exists with wider permissions is narrowed, and the log says so. */
static gboolean
prepare_state_dir(const char *dir, GError **error)
{
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    int saved = errno;
    g_set_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_STATE_DIR,
                "cannot create the state directory %s: %s", dir, g_strerror(saved));
    return FALSE;
  }
  GStatBuf st;
  if (g_stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    g_set_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_STATE_DIR,
                "the state directory %s is not a directory", dir);
    return FALSE;
  }
  if ((st.st_mode & 077) != 0) {
    g_message("state directory %s had mode %03o; setting it to 700", dir, st.st_mode & 0777);
    if (g_chmod(dir, 0700) != 0) {
      int saved = errno;
      g_set_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_STATE_DIR,
                  "cannot make the state directory %s private: %s", dir, g_strerror(saved));
      return FALSE;
    }
  }
  return TRUE;
}

static void
stop_frontends(HarkNode *node)
{
  while (node->frontends->len > 0) {
    HarkRegistrationEntry *entry =
      g_ptr_array_steal_index(node->frontends, node->frontends->len - 1);
    const HarkFrontendInterface *iface = entry->pub.iface;
    if (iface->stop != NULL)
      iface->stop(entry->pub.instance);
  }
}

static gboolean
start_frontends(HarkNode *node, GError **error)
{
  g_autoptr(GPtrArray) frontends = hark_context_lookup(node->core_ctx, HARK_KIND_FRONTEND);
  for (guint i = 0; i < frontends->len; i++) {
    HarkRegistration *reg = frontends->pdata[i];
    HarkRegistrationEntry *entry = (HarkRegistrationEntry *)reg;
    const HarkFrontendInterface *iface = reg->iface;
    g_autoptr(GError) local = NULL;
    if (iface->start != NULL && !iface->start(reg->instance, &local)) {
      if (iface->stop != NULL)
        iface->stop(reg->instance);
      stop_frontends(node);
      g_set_error(error, HARK_NODE_ERROR, HARK_NODE_ERROR_FRONTEND,
                  "frontend '%s' (plugin '%s') could not start: %s", reg->name, reg->plugin,
                  local ? local->message : "no reason given");
      return FALSE;
    }
    g_ptr_array_add(node->frontends, entry);
  }
  return TRUE;
}

/* Links trust the CA the login section pins and show the login client's certificate. */
static const char *
login_ca_pem(gpointer data)
{
  return hark_login_client_ca_pem(data);
}

static GBytes *
login_certificate_der(gpointer data)
{
  return hark_login_client_certificate_der(data);
}

static const HarkLinkCredentials login_credentials = {
  .ca_pem = login_ca_pem,
  .certificate_der = login_certificate_der,
};

/* The plugin functions of the public API are the loader's. */
GPtrArray *
hark_node_plugin_dirs(HarkNode *node)
{
  return hark_loader_plugin_dirs(node);
}

char *
hark_node_find_plugin(HarkNode *node, const char *name, GError **error)
{
  return hark_loader_find_plugin(node, name, error);
}

gboolean
hark_node_load_plugins(HarkNode *node, GError **error)
{
  return hark_loader_load_plugins(node, error);
}

gboolean
hark_node_load_all_plugins(HarkNode *node, GError **error)
{
  return hark_loader_load_all_plugins(node, error);
}

gboolean
hark_node_load_plugin_file(HarkNode *node, const char *path, GVariant *settings, int rank,
                           GError **error)
{
  return hark_loader_load_plugin_file(node, path, settings, rank, error);
}

JsonArray *
hark_node_describe_plugins(HarkNode *node)
{
  return hark_loader_describe_plugins(node);
}

gboolean
hark_node_start(HarkNode *node, GError **error)
{
  if (!prepare_state_dir(node->config->state_dir, error))
    return FALSE;
  g_autofree char *key_path = g_build_filename(node->config->state_dir, IDENTITY_FILE, NULL);
  gboolean created = FALSE;
  node->identity = hark_identity_load_or_create(key_path, &created, error);
  if (node->identity == NULL)
    return FALSE;
  g_message("%s identity %s (%s)", created ? "created" : "loaded",
            hark_identity_get_fingerprint(node->identity), key_path);
  HarkNodeRoot *root = hark_node_root(node);
  /* Before the frontends, so that their first `state` already says who is logged in. */
  if (node->config->login_url != NULL) {
    root->login = hark_login_client_new(node->core_ctx, node->config, node->identity, error);
    if (root->login == NULL)
      return FALSE;
    hark_link_set_credentials(node, &login_credentials, root->login);
  }
  node->started_at = g_get_real_time();
  if (root->login != NULL) {
    /* NULL with no error: the node takes no part in the overlay; with one (a TURN secret
     * file others may read, say): it does not start. */
    g_autoptr(GError) overlay_error = NULL;
    root->overlay = hark_overlay_new(node, root->login, &overlay_error);
    if (overlay_error != NULL) {
      g_propagate_error(error, g_steal_pointer(&overlay_error));
      return FALSE;
    }
  }
  /* Before the overlay starts, so that it hears the overlay's first role and attach. */
  if (root->overlay != NULL)
    root->directory = hark_directory_new(node, root->overlay, root->login);
  if (root->directory != NULL)
    root->messenger = hark_messenger_new(node, root->overlay, root->directory, root->login);
  if (root->messenger != NULL) {
    g_autofree char *log_path =
      g_build_filename(node->config->state_dir, HARK_CALL_LOG_FILE, NULL);
    g_autoptr(GError) log_error = NULL;
    root->call_log = hark_call_log_open(log_path, &log_error);
    if (root->call_log == NULL)
      g_warning("calls: the call log: %s; calls are not logged", log_error->message);
    root->calls = hark_calls_new(node, root->overlay, root->messenger, root->call_log);
    root->conferences = hark_conferences_new(node, root->calls, root->messenger);
  }
  if (!start_frontends(node, error))
    return FALSE;
  if (root->overlay != NULL)
    hark_overlay_start(root->overlay);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "name", node->config->node_name);
  hark_context_emit(node->core_ctx, "node-started", data);
  return TRUE;
}

void
hark_node_run(HarkNode *node)
{
  if (!node->stopping)
    g_main_loop_run(node->loop);
}

/* Low priority, so that answers and events already queued (the reply to `shutdown`
 * itself, say) are written before the loop ends. */
static gboolean
quit_loop(gpointer data)
{
  HarkNode *node = data;
  node->stop_source = 0;
  g_main_loop_quit(node->loop);
  return G_SOURCE_REMOVE;
}

void
hark_node_request_stop(HarkNode *node)
{
  if (node->stopping)
    return;
  node->stopping = TRUE;
  hark_context_emit(node->core_ctx, "node-stopping", NULL);
  GSource *source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_LOW);
  g_source_set_callback(source, quit_loop, node, NULL);
  node->stop_source = g_source_attach(source, node->main_context);
  g_source_unref(source);
}

void
hark_node_free(HarkNode *node)
{
  if (node == NULL)
    return;
  /* Cancel first, while frontends can still tell their clients "cancelled". */
  hark_commands_cancel_pending(node);
  stop_frontends(node);
  HarkNodeRoot *root = hark_node_root(node);
  g_clear_pointer(&root->conferences, hark_conferences_free);
  g_clear_pointer(&root->calls, hark_calls_free);
  g_clear_pointer(&root->call_log, hark_call_log_close);
  g_clear_pointer(&root->messenger, hark_messenger_free);
  g_clear_pointer(&root->directory, hark_directory_free);
  g_clear_pointer(&root->overlay, hark_overlay_free);
  hark_link_set_credentials(node, NULL, NULL);
  /* Its requests in flight answer their (already cancelled) commands now; it borrows
   * the identity, freed below. */
  g_clear_pointer(&root->login, hark_login_client_free);
  hark_loader_unload_all(node);
  hark_context_forget(node->core_ctx);
  hark_context_free(node->core_ctx);
  if (node->stop_source != 0) {
    GSource *source = g_main_context_find_source_by_id(node->main_context, node->stop_source);
    if (source != NULL)
      g_source_destroy(source);
  }
  hark_node_links_free(node);
  g_clear_pointer(&node->identity, hark_identity_free);
  g_hash_table_unref(node->commands);
  g_hash_table_unref(node->pending_calls);
  g_ptr_array_unref(node->frontends);
  g_ptr_array_unref(node->registrations);
  g_ptr_array_unref(node->plugins);
  g_main_loop_unref(node->loop);
  hark_clock_free(node->clock); /* after everything that may have a timeout on it */
  if (node->owns_context)
    g_main_context_release(node->main_context);
  g_main_context_unref(node->main_context);
  hark_config_free(node->config);
  g_free(root);
}
