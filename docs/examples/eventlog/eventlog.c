/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* eventlog.c: an example hark plugin. It appends every event the node emits to a file,
 * one JSON object per line, and adds the command `eventlog`, which says where that file
 * is and how many events it holds. README.md says how to build and use it;
 * docs/plugin-guide.md walks through it. */

/* Before any include: our log lines are tagged "hark-eventlog", so
 * G_MESSAGES_DEBUG=hark-eventlog shows our debug lines and nobody else's. */
#define G_LOG_DOMAIN "hark-eventlog"

#include <hark/hark.h>

#define DEFAULT_PATH "events.jsonl"

/* Everything the plugin keeps lives here, handed to the core with
 * hark_context_set_plugin_data(), never in static variables: the same eventlog.so
 * may serve two nodes in one process. */
typedef struct {
  HarkContext *ctx;
  char *path; /* absolute, decided in init */
  GFileOutputStream *out; /* open between start and stop */
  guint64 events; /* lines written since start */
} EventLog;

/* ---- the frontend: start, stop, and one call per event ------------------------------ */

/* Open the file in start, not in init: `hark plugins` runs init and fini only and must
 * not create files, and the state directory is only created when the node starts. */
static gboolean
eventlog_start(gpointer instance, GError **error)
{
  EventLog *self = instance;
  g_autoptr(GFile) file = g_file_new_for_path(self->path);
  /* PRIVATE: a new file is 0600; events name peers and calls. */
  self->out = g_file_append_to(file, G_FILE_CREATE_PRIVATE, NULL, error);
  if (self->out == NULL)
    return FALSE; /* `hark run` fails, naming this frontend and error's message */
  self->events = 0;
  g_debug("logging events to %s", self->path);
  return TRUE;
}

/* The core may call stop without a successful start, so check before closing. */
static void
eventlog_stop(gpointer instance)
{
  EventLog *self = instance;
  if (self->out != NULL)
    g_output_stream_close(G_OUTPUT_STREAM(self->out), NULL, NULL);
  g_clear_object(&self->out);
}

/* data belongs to the core and every frontend gets the same object: read it, never
 * change it. The line is a copy of it behind a "time" member of our own. */
static void
eventlog_event(gpointer instance, const char *name, JsonObject *data)
{
  EventLog *self = instance;
  if (self->out == NULL)
    return;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *time = g_date_time_format_iso8601(now);
  JsonObject *line = json_object_new();
  json_object_set_string_member(line, "time", time);
  g_autoptr(GList) members = json_object_get_members(data);
  for (GList *m = members; m != NULL; m = m->next)
    json_object_set_member(line, m->data, json_node_copy(json_object_get_member(data, m->data)));
  g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(root, line);
  g_autofree char *text = json_to_string(root, FALSE);
  g_autofree char *text_nl = g_strconcat(text, "\n", NULL);

  /* A short line to a local file: blocking the main loop that briefly is fine. One
   * write per line to a file opened for appending, so `tail -f` never sees half a line. */
  g_autoptr(GError) error = NULL;
  if (!g_output_stream_write_all(G_OUTPUT_STREAM(self->out), text_nl, strlen(text_nl), NULL, NULL,
                                 &error)) {
    g_warning("cannot write event '%s' to %s: %s", name, self->path, error->message);
    return;
  }
  self->events++;
}

/* A static const table is not state: the core only reads it, and it must stay valid
 * as long as it is registered. */
static const HarkFrontendInterface eventlog_frontend = {
  .version = HARK_FRONTEND_INTERFACE_VERSION, /* the table layout this file was built with */
  .start = eventlog_start,
  .stop = eventlog_stop,
  .event = eventlog_event,
};

/* ---- the command, in every frontend: `eventlog [note]` ------------------------------ */

static const HarkCommandParam eventlog_params[] = {
  { .name = "note",
    .type = HARK_PARAM_STRING,
    .required = FALSE,
    .help = "first emit an 'eventlog-note' event carrying this text" },
  { .name = NULL },
};

static void
run_eventlog(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  EventLog *self = user_data;
  /* The core has checked args against eventlog_params: "note" is absent or a string. */
  const char *note = json_object_get_string_member_with_default(args, "note", NULL);
  if (note != NULL) {
    JsonObject *data = json_object_new();
    json_object_set_string_member(data, "note", note);
    /* To every started frontend (this one too): ctl clients see it, the log records it. */
    hark_context_emit(self->ctx, "eventlog-note", data);
  }
  JsonObject *result = json_object_new();
  json_object_set_string_member(result, "path", self->path);
  json_object_set_int_member(result, "events", (gint64)self->events);
  /* Exactly one answer per call. Ours is ready now; a command that waits for the network
   * keeps `call` and answers from a callback instead. */
  hark_command_call_return_object(call, result);
}

static const HarkCommand eventlog_command = {
  .version = HARK_COMMAND_VERSION,
  .name = "eventlog",
  .summary = "where the event log is and how many events it holds",
  .params = eventlog_params,
  .run = run_eventlog,
};

/* ---- init and fini ------------------------------------------------------------------ */

/* hark_settings_get_*() tell "missing" (the default) from "there with another type"
 * (an error naming the setting), so that `path = 5;` is refused, not ignored. */
static char *
read_path_setting(GVariant *settings, GError **error)
{
  char *path = NULL;
  if (!hark_settings_get_string(settings, "path", DEFAULT_PATH, &path, error))
    return NULL;
  if (*path != '\0')
    return path;
  g_free(path);
  g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE, "setting 'path' is empty");
  return NULL;
}

static void
eventlog_free(EventLog *self)
{
  eventlog_stop(self); /* a no-op when the node has stopped us already */
  g_free(self->path);
  g_free(self);
}

static gboolean
eventlog_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  g_autofree char *path = read_path_setting(settings, error);
  if (path == NULL)
    return FALSE; /* the core prefixes the file and plugin name to error's message */
  EventLog *self = g_new0(EventLog, 1);
  self->ctx = ctx;
  /* A relative path is in the node's state directory, which is private (0700). */
  self->path = g_path_is_absolute(path) ? g_steal_pointer(&path)
                                        : g_build_filename(hark_context_state_dir(ctx), path, NULL);
  /* Frontends start highest rank first and stop in reverse: at PRIMARY the log is open
   * before lower-ranked frontends start. A `rank` in our configuration entry replaces it.
   * The core refuses an undeclared kind, an unknown table version or a taken name. */
  if (!hark_context_register(ctx, HARK_KIND_FRONTEND, "eventlog", HARK_RANK_PRIMARY,
                             &eventlog_frontend, self, error) ||
      !hark_context_add_command(ctx, &eventlog_command, self, error)) {
    /* No fini after a failed init: the core drops what we registered, we free the rest. */
    eventlog_free(self);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, self);
  return TRUE;
}

/* Frontends are stopped and pending commands cancelled before fini; after it returns the
 * core removes our registrations and command. Nothing calls into self afterwards. */
static void
eventlog_fini(HarkContext *ctx)
{
  eventlog_free(hark_context_get_plugin_data(ctx));
}

/* The one exported symbol. It fills in the ABI numbers of the headers we compiled with. */
HARK_PLUGIN_DEFINE(.name = "eventlog", /* unique; the file must be eventlog.so */
                   .version = "1.0.0",
                   .description = "append every event of the node to a JSON-lines file",
                   .license = "LGPL-2.1-or-later",
                   .kinds = HARK_KIND_FRONTEND, /* every kind we may register */
                   .init = eventlog_init, .fini = eventlog_fini);
