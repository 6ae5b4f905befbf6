/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-shared.c: one encoding of a mix for every session that hears it (hark/media.h).
 *
 * A conference host encodes a mix for each leg every 20 ms, but the members who are
 * silent all hear the same whole mix. The legs whose encoders have the same codec and
 * settings (compared as text, hark_media_encoder_signature) follow one shared encoder:
 * it codes the mix once, and each leg's session stamps the packet with its own sequence
 * number, timestamp, SSRC and payload type and encrypts it with its own key
 * (media-send.c). A leg whose codec adapted to its link (other settings) keeps its own.
 *
 * Switching a leg changes the encoder whose state its far end's decoder follows.
 * Measured with libopus on speech (docs/benchmarks.md, "A shared encoding of the
 * conference mix"): from the own encoder to the shared one the change costs less than a
 * lost packet's concealment; back to an own encoder that stood idle for seconds it costs
 * more than a loss. So the own encoder is first fed the last 80 ms of the mix, and its
 * packets of that are dropped up to where the shared encoder's last packet to the leg
 * ended; a new shared encoder is primed the same way. Both ways the far end then hears
 * one stream (docs/architecture.md, "Conferences").
 *
 * Everything here runs on the main context: the mixer's tick writes, the shared chain
 * encodes in that call (a push source, no thread), and the packets go out through each
 * session's rtpbin from there. */
#include "media-session.h"

#include <string.h>

/* Distinct settings shared at once; the rest encode their own. A group of one costs what
 * that leg's own encoder would; under load a room's Opus legs adapt to loss each their
 * own way (at 32 participants and a load average of 35, 4 groups took 18-29 of the 29
 * silent legs). */
#define SHARED_MAX_GROUPS 8
#define SHARED_PRIME_FRAMES 4

typedef struct {
  HarkMediaShared *shared;
  char *signature;
  GstElement *pipeline, *src;
  GPtrArray *ports; /* HarkMediaPort*: the followers (a port leaves before it is freed) */
  /* The mix's frames are stamped by their count, so the encoder sees one steady stream.
   * What it codes while it is primed (with the recent mix, when it is made) goes
   * nowhere; and where the last packet it sent ends, in that count's time. */
  guint64 pushed;
  gboolean priming;
  GstClockTime sent_until;
} SharedGroup;

struct _HarkMediaShared {
  guint rate;
  gsize frame; /* samples of the last write */
  gint16 *recent; /* the last SHARED_PRIME_FRAMES frames written, oldest first */
  guint recent_count;
  GPtrArray *groups; /* SharedGroup* */
  GHashTable *refused; /* signatures no shared encoder could be made for */
  guint64 frames_encoded, packets_sent, switches;
};

/* ---- settings as text ------------------------------------------------------------------- */

static gboolean
plain_setting(const GParamSpec *spec)
{
  GType type = G_TYPE_FUNDAMENTAL(spec->value_type);
  return (spec->flags & G_PARAM_READABLE) && strcmp(spec->name, "name") != 0 &&
         strcmp(spec->name, "parent") != 0 &&
         (type == G_TYPE_BOOLEAN || type == G_TYPE_INT || type == G_TYPE_UINT ||
          type == G_TYPE_INT64 || type == G_TYPE_UINT64 || type == G_TYPE_LONG ||
          type == G_TYPE_ULONG || type == G_TYPE_FLOAT || type == G_TYPE_DOUBLE ||
          type == G_TYPE_ENUM || type == G_TYPE_FLAGS || type == G_TYPE_STRING);
}

char *
hark_media_encoder_signature(const HarkMediaCodec *codec, GstElement *encoder)
{
  GString *text = g_string_new(codec->name);
  g_string_append_printf(text, "/%u", codec->iface->clock_rate);
  guint n = 0;
  GParamSpec **specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(encoder), &n);
  for (guint i = 0; i < n; i++) {
    if (!plain_setting(specs[i]))
      continue;
    GValue value = G_VALUE_INIT;
    g_value_init(&value, specs[i]->value_type);
    g_object_get_property(G_OBJECT(encoder), specs[i]->name, &value);
    g_autofree char *contents = g_strdup_value_contents(&value);
    g_string_append_printf(text, " %s=%s", specs[i]->name, contents);
    g_value_unset(&value);
  }
  g_free(specs);
  return g_string_free(text, FALSE);
}

void
hark_media_encoder_copy_settings(GstElement *from, GstElement *to)
{
  guint n = 0;
  GParamSpec **specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(from), &n);
  for (guint i = 0; i < n; i++) {
    if (!plain_setting(specs[i]) || !(specs[i]->flags & G_PARAM_WRITABLE) ||
        (specs[i]->flags & G_PARAM_CONSTRUCT_ONLY))
      continue;
    GValue value = G_VALUE_INIT;
    g_value_init(&value, specs[i]->value_type);
    g_object_get_property(G_OBJECT(from), specs[i]->name, &value);
    g_object_set_property(G_OBJECT(to), specs[i]->name, &value);
    g_value_unset(&value);
  }
  g_free(specs);
}

/* ---- the groups ------------------------------------------------------------------------- */

/* On the main context, inside hark_media_shared_write: the packet to every follower. */
static void
fan_out(SharedGroup *g, GstBuffer *packet)
{
  for (guint i = 0; i < g->ports->len; i++) {
    HarkMediaSession *session = hark_media_port_session(g->ports->pdata[i]);
    if (session == NULL)
      continue; /* its call ended; the mixer lets it go at its next tick */
    hark_media_session_send_shared(session, gst_buffer_ref(packet));
    g->shared->packets_sent++;
  }
}

static void
fan_out_after_priming(SharedGroup *g, GstBuffer *packet)
{
  if (GST_BUFFER_PTS_IS_VALID(packet) && GST_BUFFER_DURATION_IS_VALID(packet))
    g->sent_until = GST_BUFFER_PTS(packet) + GST_BUFFER_DURATION(packet);
  if (!g->priming)
    fan_out(g, packet);
}

static GstPadProbeReturn
on_encoded(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  SharedGroup *g = data;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    fan_out_after_priming(g, GST_PAD_PROBE_INFO_BUFFER(info));
  } else {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    for (guint i = 0; i < gst_buffer_list_length(list); i++)
      fan_out_after_priming(g, gst_buffer_list_get(list, i));
  }
  return GST_PAD_PROBE_DROP; /* sent; nothing goes on to the fakesink */
}

/* One frame of the mix into the group's encoder (its packets go out from within). */
static gboolean
group_push(SharedGroup *g, const gint16 *samples, gsize n)
{
  GstBuffer *buffer = gst_buffer_new_memdup(samples, n * sizeof *samples);
  GST_BUFFER_PTS(buffer) = GST_BUFFER_DTS(buffer) =
    gst_util_uint64_scale(g->pushed, GST_SECOND, g->shared->rate);
  GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale(n, GST_SECOND, g->shared->rate);
  g->pushed += n;
  return hark_media_push_src_push(g->src, buffer) == GST_FLOW_OK;
}

static void
group_free(SharedGroup *g)
{
  for (guint i = 0; i < g->ports->len; i++)
    hark_media_port_set_group(g->ports->pdata[i], NULL);
  if (g->pipeline != NULL) {
    gst_element_set_state(g->pipeline, GST_STATE_NULL);
    gst_object_unref(g->pipeline);
  }
  g_ptr_array_unref(g->ports);
  g_free(g->signature);
  g_free(g);
}

/* The elements of the group's pipeline: the mix (at the shared rate) resampled to 48 kHz,
 * then the leg's own kind of send chain, into a fakesink the probe keeps empty. */
static gboolean
group_build(SharedGroup *g, HarkMediaSession *leader, GError **error)
{
  GstElement *chain[4] = { 0 };
  if (!hark_media_session_shared_chain(leader, chain, error))
    return FALSE;
  g->pipeline = gst_pipeline_new("shared");
  g_autoptr(GstClock) clock = gst_system_clock_obtain();
  gst_pipeline_use_clock(GST_PIPELINE(g->pipeline), clock);
  g_autoptr(GstCaps) in = hark_media_mono_caps(g->shared->rate);
  g->src = hark_media_push_src_new("shared-mix", in, FALSE);
  gst_bin_add(GST_BIN(g->pipeline), g->src);
  GstElement *resample = hark_media_element_make("audioresample", error);
  GstElement *raw = resample != NULL ? hark_media_element_make("capsfilter", error) : NULL;
  GstElement *sink = raw != NULL ? hark_media_element_make("fakesink", error) : NULL;
  if (sink == NULL) {
    GstElement *made[4] = { resample, raw, NULL, NULL };
    hark_media_send_chain_discard(made);
    hark_media_send_chain_discard(chain);
    return FALSE;
  }
  g_autoptr(GstCaps) out = hark_media_mono_caps(48000);
  g_object_set(raw, "caps", out, NULL);
  g_object_set(sink, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add_many(GST_BIN(g->pipeline), resample, raw, chain[0], chain[1], chain[2], chain[3],
                   sink, NULL);
  if (!gst_element_link_many(g->src, resample, raw, chain[0], chain[1], chain[2], chain[3], sink,
                             NULL)) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "shared encoder: could not link its chain");
    return FALSE;
  }
  g_autoptr(GstPad) payloaded = gst_element_get_static_pad(chain[3], "src");
  gst_pad_add_probe(payloaded, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                    on_encoded, g, NULL);
  if (gst_element_set_state(g->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_GSTREAMER,
                "shared encoder: the pipeline did not start");
    return FALSE;
  }
  return TRUE;
}

/* The group whose encoder codes as the session's does (made if need be), or NULL. */
static SharedGroup *
group_for(HarkMediaShared *shared, HarkMediaSession *session, const char *signature)
{
  for (guint i = 0; i < shared->groups->len; i++) {
    SharedGroup *g = shared->groups->pdata[i];
    if (strcmp(g->signature, signature) == 0)
      return g;
  }
  if (shared->groups->len >= SHARED_MAX_GROUPS || g_hash_table_contains(shared->refused, signature))
    return NULL;
  SharedGroup *g = g_new0(SharedGroup, 1);
  g->shared = shared;
  g->signature = g_strdup(signature);
  g->ports = g_ptr_array_new();
  g->sent_until = GST_CLOCK_TIME_NONE;
  g_autoptr(GError) error = NULL;
  if (!group_build(g, session, &error)) {
    /* Not tried again for these settings: the legs encode their own, as without sharing. */
    g_info("media: no shared encoder for %s: %s", signature, error->message);
    g_hash_table_add(shared->refused, g_strdup(signature));
    group_free(g);
    return NULL;
  }
  /* A new encoder starts from nothing: what it codes first would reach the far end late
   * by the resampler's and the codec's delay, and from another state than the one the
   * leg's own encoder left. Primed with the recent mix, it is where a running one is. */
  g->priming = TRUE; /* the push source codes in this thread: all of it is priming */
  for (guint i = 0; i < shared->recent_count; i++)
    group_push(g, shared->recent + i * shared->frame, shared->frame);
  g->priming = FALSE;
  g_ptr_array_add(shared->groups, g);
  return g;
}

static void
group_remove(SharedGroup *g, HarkMediaPort *port)
{
  g_ptr_array_remove(g->ports, port);
  hark_media_port_set_group(port, NULL);
}

/* How much of the mix group's encoder was given it has not sent yet (its frame and the
 * resampler's delay: a frame, as much as a session's own chain holds). */
static GstClockTime
group_holds(SharedGroup *g)
{
  GstClockTime pushed = gst_util_uint64_scale(g->pushed, GST_SECOND, g->shared->rate);
  return GST_CLOCK_TIME_IS_VALID(g->sent_until) && pushed > g->sent_until ? pushed - g->sent_until
                                                                          : 0;
}

/* port's session (which followed g) back on its own encoder, primed with the last frames
 * of the mix; it sends from where g's last packet to it ended. */
static void
back_to_own(HarkMediaShared *shared, HarkMediaPort *port, SharedGroup *g)
{
  HarkMediaSession *session = hark_media_port_session(port);
  if (session == NULL)
    return;
  shared->switches++;
  GstClockTime primed =
    gst_util_uint64_scale(shared->recent_count * shared->frame, GST_SECOND, shared->rate);
  GstClockTime held = group_holds(g);
  hark_media_session_follow(session, FALSE, primed > held ? primed - held : 0);
  for (guint i = 0; i < shared->recent_count; i++)
    hark_media_port_write(port, shared->recent + i * shared->frame, shared->frame);
}

/* ---- the API ------------------------------------------------------------------------------ */

HarkMediaShared *
hark_media_shared_new(guint rate)
{
  HarkMediaShared *shared = g_new0(HarkMediaShared, 1);
  shared->rate = rate;
  shared->groups = g_ptr_array_new_with_free_func((GDestroyNotify)group_free);
  shared->refused = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  return shared;
}

void
hark_media_shared_free(HarkMediaShared *shared)
{
  if (shared == NULL)
    return;
  g_ptr_array_unref(shared->groups);
  g_hash_table_unref(shared->refused);
  g_free(shared->recent);
  g_free(shared);
}

gboolean
hark_media_shared_follow(HarkMediaShared *shared, HarkMediaPort *port)
{
  HarkMediaSession *session = hark_media_port_session(port);
  SharedGroup *now = hark_media_port_get_group(port);
  const char *signature = session != NULL && hark_media_session_can_follow(session)
                            ? hark_media_session_encoder_signature(session)
                            : NULL;
  SharedGroup *g = signature != NULL ? group_for(shared, session, signature) : NULL;
  if (g == now)
    return g != NULL;
  if (now != NULL)
    group_remove(now, port);
  if (g == NULL) {
    if (now != NULL)
      back_to_own(shared, port, now);
    return FALSE;
  }
  g_ptr_array_add(g->ports, port);
  hark_media_port_set_group(port, g);
  hark_media_session_follow(session, TRUE, 0);
  shared->switches++;
  return TRUE;
}

void
hark_media_shared_leave(HarkMediaShared *shared, HarkMediaPort *port)
{
  SharedGroup *g = hark_media_port_get_group(port);
  if (g == NULL)
    return;
  group_remove(g, port);
  back_to_own(shared, port, g);
}

void
hark_media_port_leave_group(HarkMediaPort *port)
{
  SharedGroup *g = hark_media_port_get_group(port);
  if (g == NULL)
    return;
  group_remove(g, port);
  /* The port goes: its session, if it stays, sends what its own chain makes. */
  HarkMediaSession *session = hark_media_port_session(port);
  if (session != NULL)
    hark_media_session_follow(session, FALSE, 0);
}

static void
remember(HarkMediaShared *shared, const gint16 *samples, gsize n)
{
  if (n != shared->frame) {
    shared->frame = n;
    shared->recent_count = 0;
    g_free(shared->recent);
    shared->recent = g_new0(gint16, n * SHARED_PRIME_FRAMES);
  }
  if (shared->recent_count == SHARED_PRIME_FRAMES) {
    memmove(shared->recent, shared->recent + n, (SHARED_PRIME_FRAMES - 1) * n * sizeof *samples);
    shared->recent_count--;
  }
  memcpy(shared->recent + shared->recent_count * n, samples, n * sizeof *samples);
  shared->recent_count++;
}

void
hark_media_shared_write(HarkMediaShared *shared, const gint16 *samples, gsize n)
{
  remember(shared, samples, n);
  for (guint i = shared->groups->len; i-- > 0;) {
    SharedGroup *g = shared->groups->pdata[i];
    if (g->ports->len == 0) {
      g_ptr_array_remove_index(shared->groups, i);
      continue;
    }
    if (group_push(g, samples, n))
      shared->frames_encoded++;
  }
}

void
hark_media_shared_get_counts(HarkMediaShared *shared, HarkMediaSharedCounts *counts)
{
  memset(counts, 0, sizeof *counts);
  counts->encoders = shared->groups->len;
  for (guint i = 0; i < shared->groups->len; i++)
    counts->followers += ((SharedGroup *)shared->groups->pdata[i])->ports->len;
  counts->frames_encoded = shared->frames_encoded;
  counts->packets_sent = shared->packets_sent;
  counts->switches = shared->switches;
}
