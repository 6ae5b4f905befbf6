/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-settings.c: `media-set`, the media settings a frontend changes while the node
 * runs (codec order, sound source and sink, the jitter buffer's bounds), and the `media`
 * part of `state`. They live in the node's configuration, which every call reads when it
 * starts, so a change applies to the next call (a call going on keeps what it started
 * with; `codec` changes its codec). Nothing is written to the configuration file: that
 * is the user's, and a restart goes back to it. Every value is checked before any is
 * applied, so a refused command changes nothing. */
#include "node-private.h"
#include "hark/media-spec.h"

#include <string.h>

#define MAX_CODECS 16 /* as many as an INVITE carries (HARK_CALL_MAX_CODECS) */

/* The codecs loaded here: each registration's name, and each codec plugin's name where it
 * differs ("g711" is pcmu and pcma), as media.codecs may name either. */
static GPtrArray *
loaded_codec_names(HarkContext *ctx)
{
  GPtrArray *names = g_ptr_array_new();
  g_autoptr(GPtrArray) registrations = hark_context_lookup(ctx, HARK_KIND_CODEC);
  for (guint i = 0; i < registrations->len; i++) {
    const HarkRegistration *r = registrations->pdata[i];
    if (!g_ptr_array_find_with_equal_func(names, r->name, g_str_equal, NULL))
      g_ptr_array_add(names, (gpointer)r->name);
    if (r->plugin != NULL && !g_ptr_array_find_with_equal_func(names, r->plugin, g_str_equal, NULL))
      g_ptr_array_add(names, (gpointer)r->plugin);
  }
  return names;
}

JsonObject *
hark_node_media_settings(HarkNode *node)
{
  const HarkConfig *config = node->config;
  JsonObject *o = json_object_new();
  json_object_set_member(o, "codecs", hark_node_strv_json(config->codecs));
  json_object_set_string_member(o, "source", config->audio_source);
  json_object_set_string_member(o, "sink", config->audio_sink);
  json_object_set_int_member(o, "jitter_min_ms", config->jitter_min_ms);
  json_object_set_int_member(o, "jitter_max_ms", config->jitter_max_ms);
  g_autoptr(GPtrArray) loaded = loaded_codec_names(node->core_ctx);
  g_ptr_array_add(loaded, NULL);
  json_object_set_member(o, "codecs_loaded", hark_node_strv_json((char **)loaded->pdata));
  return o;
}

static gboolean refuse(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
refuse(GError **error, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error_literal(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS, message);
  return FALSE;
}

/* A value the user typed, shown in an error: escaped (no line of its own in a log) and
 * cut short. */
static char *
shown(const char *value)
{
  g_autofree char *cut = g_utf8_substring(value, 0, MIN(g_utf8_strlen(value, -1), 40));
  g_autofree char *escaped = g_strescape(cut, NULL);
  return strlen(cut) < strlen(value) ? g_strconcat(escaped, "...", NULL)
                                     : g_steal_pointer(&escaped);
}

/* "pcmu, opus" or "pcmu opus" -> { "pcmu", "opus" }, each a loaded codec, once. */
static char **
parse_codecs(HarkContext *ctx, const char *text, GError **error)
{
  g_auto(GStrv) words = g_regex_split_simple("[\\s,]+", text, 0, 0);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
  g_autoptr(GPtrArray) loaded = loaded_codec_names(ctx);
  g_autoptr(GPtrArray) seen = g_ptr_array_new();
  for (char **w = words; *w != NULL; w++) {
    if (**w == '\0')
      continue;
    g_autofree char *name = shown(*w);
    if (!g_ptr_array_find_with_equal_func(loaded, *w, g_str_equal, NULL)) {
      g_autoptr(GString) list = g_string_new(NULL);
      for (guint i = 0; i < loaded->len; i++)
        g_string_append_printf(list, "%s%s", i > 0 ? ", " : "", (char *)loaded->pdata[i]);
      refuse(error, "codecs: '%s' is not a codec loaded here (loaded: %s)", name,
             loaded->len > 0 ? list->str : "none");
      return NULL;
    }
    if (g_ptr_array_find_with_equal_func(seen, *w, g_str_equal, NULL)) {
      refuse(error, "codecs: '%s' is named twice", name);
      return NULL;
    }
    if (seen->len == MAX_CODECS) {
      refuse(error, "codecs: at most %d", MAX_CODECS);
      return NULL;
    }
    g_ptr_array_add(seen, *w);
    g_strv_builder_add(builder, *w);
  }
  if (seen->len == 0) {
    refuse(error, "codecs: name at least one codec, in the order of preference (e.g. opus,g711)");
    return NULL;
  }
  return g_strv_builder_end(builder);
}

/* A source or sink: as the configuration takes it, and no control characters (its
 * words go to logs and screens). */
static gboolean
check_spec(const char *what, const char *value, gboolean (*check)(const char *, GError **),
           GError **error)
{
  for (const char *c = value; *c != '\0'; c++)
    if ((guchar)*c < 0x20 || *c == 0x7f) {
      g_autofree char *text = shown(value);
      return refuse(error, "%s '%s': control characters are not allowed", what, text);
    }
  g_autoptr(GError) local = NULL;
  return check(value, &local) || refuse(error, "%s", local->message);
}

static gboolean
check_jitter(const char *name, gint64 value, GError **error)
{
  if (value >= HARK_CONFIG_JITTER_MIN && value <= HARK_CONFIG_JITTER_MAX)
    return TRUE;
  return refuse(error, "%s: %" G_GINT64_FORMAT " is outside %d to %d ms", name, value,
                HARK_CONFIG_JITTER_MIN, HARK_CONFIG_JITTER_MAX);
}

/* The new settings, checked together; nothing is changed unless all of them are good. */
typedef struct {
  char **codecs;
  const char *source;
  const char *sink;
  gint64 jitter_min_ms;
  gint64 jitter_max_ms;
} MediaChange;

static gboolean
media_change_check(HarkNode *node, JsonObject *args, MediaChange *change, GError **error)
{
  const HarkConfig *config = node->config;
  const char *codecs = json_object_get_string_member_with_default(args, "codecs", NULL);
  change->source = json_object_get_string_member_with_default(args, "source", NULL);
  change->sink = json_object_get_string_member_with_default(args, "sink", NULL);
  change->jitter_min_ms =
    json_object_get_int_member_with_default(args, "jitter_min_ms", config->jitter_min_ms);
  change->jitter_max_ms =
    json_object_get_int_member_with_default(args, "jitter_max_ms", config->jitter_max_ms);
  if ((change->source != NULL &&
       !check_spec("source", change->source, hark_media_source_check, error)) ||
      (change->sink != NULL && !check_spec("sink", change->sink, hark_media_sink_check, error)))
    return FALSE;
  if (!check_jitter("jitter_min_ms", change->jitter_min_ms, error) ||
      !check_jitter("jitter_max_ms", change->jitter_max_ms, error))
    return FALSE;
  if (change->jitter_min_ms > change->jitter_max_ms)
    return refuse(
      error, "jitter_min_ms (%" G_GINT64_FORMAT ") is above jitter_max_ms (%" G_GINT64_FORMAT ")",
      change->jitter_min_ms, change->jitter_max_ms);
  if (codecs != NULL && (change->codecs = parse_codecs(node->core_ctx, codecs, error)) == NULL)
    return FALSE;
  return TRUE;
}

static void
replace_string(char **field, const char *value)
{
  if (value == NULL)
    return;
  g_free(*field);
  *field = g_strdup(value);
}

static void
run_media_set(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkNode *node = user_data;
  MediaChange change = { 0 };
  GError *error = NULL;
  if (!media_change_check(node, args, &change, &error)) {
    hark_command_call_return_error(call, error);
    return;
  }
  HarkConfig *config = node->config;
  if (change.codecs != NULL) {
    g_strfreev(config->codecs);
    config->codecs = change.codecs;
  }
  replace_string(&config->audio_source, change.source);
  replace_string(&config->audio_sink, change.sink);
  config->jitter_min_ms = (int)change.jitter_min_ms;
  config->jitter_max_ms = (int)change.jitter_max_ms;
  /* Every frontend shows the settings: tell them all, not only the one that asked. */
  if (json_object_get_size(args) > 0)
    hark_context_emit(node->core_ctx, "media-settings", hark_node_media_settings(node));
  hark_command_call_return_object(call, hark_node_media_settings(node));
}

static const HarkCommandParam media_set_params[] = {
  { "codecs", HARK_PARAM_STRING, FALSE,
    "codecs in order of preference, separated by commas or spaces (loaded ones: `state`)" },
  { "source", HARK_PARAM_STRING, FALSE,
    "where call audio comes from: pulse, pulse:DEVICE, tone, tone:HZ[:LEVEL], silence, "
    "wav:PATH" },
  { "sink", HARK_PARAM_STRING, FALSE,
    "where call audio goes: pulse, pulse:DEVICE, null, wav:PATH" },
  { "jitter_min_ms", HARK_PARAM_INT, FALSE, "the jitter buffer's least delay (10-2000 ms)" },
  { "jitter_max_ms", HARK_PARAM_INT, FALSE, "the jitter buffer's greatest delay (10-2000 ms)" },
  { NULL },
};

static const HarkCommand media_set_command = {
  HARK_COMMAND_VERSION,
  "media-set",
  "change the media settings for the next call (not saved to the configuration file)",
  media_set_params,
  run_media_set,
};

void
hark_node_media_settings_register(HarkNode *node)
{
  g_autoptr(GError) error = NULL;
  if (!hark_context_add_command(node->core_ctx, &media_set_command, node, &error))
    g_error("the media-set command is broken: %s", error->message);
}
