/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-join.c: how an ordinary node finds a super node (overlay-keepalive.c watches it).
 *
 * The paper's Skype probed its host cache over UDP and then tried TCP one SN at a time,
 * 5-6 s apart, which made joining behind a UDP-blocking firewall take 35 s. A join here
 * races instead ("happy eyeballs"): UDP probes to the best host-cache entries at once,
 * a TLS link to each SN as soon as it answers, TLS links to the best entries anyway a
 * short delay later (in case UDP is blocked), and the web-port transports a little
 * after that. The first link whose SN accepts our JOIN wins; the others are closed. The
 * way that worked is saved and tried first, at once, the next time. */
#include "overlay-private.h"
#include "overlay-files.h"

#include "file-util.h"

typedef struct {
  HarkJoin *join;
  char *host;
  guint16 port;
  char **transports; /* what the SN is known to offer */
  GCancellable *probe; /* a UDP probe in flight */
  gboolean answered; /* its probe came back */
  GPtrArray *started; /* transport names already tried on it */
} Candidate;

typedef struct {
  HarkJoin *join;
  Candidate *candidate;
  char *transport;
  GCancellable *cancellable;
  Peer *peer; /* once the transport made a link */
  const char *state; /* "connecting", "handshake", "joining", "failed" */
} Attempt;

struct _HarkJoin {
  HarkOverlay *overlay;
  gint64 started; /* monotonic µs */
  GPtrArray *candidates; /* Candidate* */
  GPtrArray *attempts; /* Attempt* */
  guint race_source;
  guint fallback_source;
  gboolean stages_done; /* every stage has started */
  gboolean udp_answered;
  char *only_transport; /* a `transport` switch: this transport to the current SN */
  HarkCommandCall *call; /* ... answered when it ends */
  GString *errors;
  guint redirected; /* attempts started on REDIRECTs: at most HARK_ADDRESS_LIST_MAX
                             * per join, however many SNs redirect */
};

static void join_finish_failed(HarkJoin *join);

#define JOIN_ERRORS_MAX 600 /* bytes of the failed attempts' summary, then "..." */

/* ---- remembering the way that worked ---------------------------------------------- */

/* join.json, read as untrusted input (overlay-files.c): FALSE when it is missing or
 * damaged. */
static gboolean
way_load(HarkOverlay *overlay, OverlayWay *way)
{
  g_autofree char *text = NULL;
  gsize size = 0;
  if (!g_file_get_contents(overlay->way_path, &text, &size, NULL))
    return FALSE;
  return hark_overlay_way_parse(text, size, way);
}

static void
way_save(HarkOverlay *overlay, const char *transport, const char *host, guint16 port,
         gboolean udp_answered)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "transport");
  json_builder_add_string_value(builder, transport);
  json_builder_set_member_name(builder, "host");
  json_builder_add_string_value(builder, host);
  json_builder_set_member_name(builder, "port");
  json_builder_add_int_value(builder, port);
  json_builder_set_member_name(builder, "udp_answered");
  json_builder_add_boolean_value(builder, udp_answered);
  json_builder_end_object(builder);
  g_autoptr(JsonNode) root = json_builder_get_root(builder);
  g_autofree char *text = json_to_string(root, TRUE);
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents_full(overlay->way_path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                &error))
    g_warning("cannot save how this node joined: %s", error->message);
}

/* ---- candidates and attempts ------------------------------------------------------ */

static void
candidate_free(gpointer data)
{
  Candidate *candidate = data;
  if (candidate->probe != NULL) {
    g_cancellable_cancel(candidate->probe);
    g_object_unref(candidate->probe);
  }
  g_free(candidate->host);
  g_strfreev(candidate->transports);
  g_ptr_array_unref(candidate->started);
  g_free(candidate);
}

static Candidate *
candidate_add(HarkJoin *join, const char *host, guint16 port, char **transports)
{
  for (guint i = 0; i < join->candidates->len; i++) {
    Candidate *known = join->candidates->pdata[i];
    if (known->port == port && g_strcmp0(known->host, host) == 0)
      return known;
  }
  Candidate *candidate = g_new0(Candidate, 1);
  candidate->join = join;
  candidate->host = g_strdup(host);
  candidate->port = port;
  candidate->transports = g_strdupv(transports);
  candidate->started = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(join->candidates, candidate);
  return candidate;
}

static gboolean
offers(Candidate *candidate, const char *transport)
{
  return candidate->transports == NULL ||
         g_strv_contains((const char *const *)candidate->transports, transport);
}

static gboolean
started(Candidate *candidate, const char *transport)
{
  for (guint i = 0; i < candidate->started->len; i++)
    if (g_strcmp0(candidate->started->pdata[i], transport) == 0)
      return TRUE;
  return FALSE;
}

static void
attempt_free(gpointer data)
{
  Attempt *attempt = data;
  if (attempt->cancellable != NULL) {
    g_cancellable_cancel(attempt->cancellable);
    g_object_unref(attempt->cancellable);
  }
  if (attempt->peer != NULL)
    hark_overlay_drop_peer(attempt->join->overlay, attempt->peer, NULL);
  g_free(attempt->transport);
  g_free(attempt);
}

static gboolean
join_has_live_links(HarkJoin *join)
{
  for (guint i = 0; i < join->attempts->len; i++) {
    Attempt *attempt = join->attempts->pdata[i];
    if (g_strcmp0(attempt->state, "failed") != 0)
      return TRUE;
  }
  return FALSE;
}

static gboolean
join_has_live_attempts(HarkJoin *join)
{
  for (guint i = 0; i < join->candidates->len; i++)
    if (((Candidate *)join->candidates->pdata[i])->probe != NULL)
      return TRUE;
  return join_has_live_links(join);
}

static void start_stage(HarkJoin *join, gboolean fallback);

/* After any failure: when every link tried so far failed, the fallback need not wait
 * for its delay (the paper's client sat out its timeouts instead); when nothing is left
 * to try and no stage is still to come, the whole join has failed. */
static void
join_check_exhausted(HarkJoin *join)
{
  if (join->race_source == 0 && join->fallback_source != 0 && !join_has_live_links(join)) {
    hark_overlay_clear_source(join->overlay, &join->fallback_source);
    join->stages_done = TRUE;
    start_stage(join, TRUE);
  }
  if (join->stages_done && !join_has_live_attempts(join))
    join_finish_failed(join);
}

static void
attempt_failed(Attempt *attempt, const char *why)
{
  HarkJoin *join = attempt->join;
  HarkOverlay *overlay = join->overlay;
  attempt->state = "failed";
  g_message("join: %s to %s:%u failed: %s", attempt->transport, attempt->candidate->host,
            attempt->candidate->port, why);
  /* The summary logged when the join fails stays one readable line, however many SNs
   * a REDIRECT named. */
  if (join->errors->len < JOIN_ERRORS_MAX)
    g_string_append_printf(join->errors, "%s%s to %s:%u: %s", join->errors->len ? "; " : "",
                           attempt->transport, attempt->candidate->host, attempt->candidate->port,
                           why);
  else if (!g_str_has_suffix(join->errors->str, "; ..."))
    g_string_append(join->errors, "; ...");
  if (attempt->peer != NULL) {
    hark_overlay_drop_peer(overlay, attempt->peer, NULL);
    attempt->peer = NULL;
  }
  g_clear_object(&attempt->cancellable);
  join_check_exhausted(join);
}

static Attempt *
attempt_of_peer(HarkJoin *join, Peer *peer)
{
  for (guint i = 0; i < join->attempts->len; i++) {
    Attempt *attempt = join->attempts->pdata[i];
    if (attempt->peer == peer)
      return attempt;
  }
  return NULL;
}

static void
on_opened(HarkLink *link, GError *error, gpointer data)
{
  Attempt *attempt = data;
  g_clear_object(&attempt->cancellable);
  if (link == NULL) {
    attempt_failed(attempt, error->message);
    g_error_free(error);
    return;
  }
  attempt->state = "handshake";
  attempt->peer = hark_overlay_add_peer(attempt->join->overlay, link, PEER_OPENED);
  attempt->peer->join = attempt->join;
  attempt->peer->port = attempt->candidate->port;
}

static void
attempt_start(HarkJoin *join, Candidate *candidate, const char *transport)
{
  const HarkRegistration *reg = hark_overlay_transport(join->overlay, transport);
  if (reg == NULL || started(candidate, transport))
    return;
  const HarkTransportInterface *iface = reg->iface;
  if (iface->open == NULL)
    return;
  g_ptr_array_add(candidate->started, g_strdup(transport));
  Attempt *attempt = g_new0(Attempt, 1);
  attempt->join = join;
  attempt->candidate = candidate;
  attempt->transport = g_strdup(transport);
  attempt->cancellable = g_cancellable_new();
  attempt->state = "connecting";
  g_ptr_array_add(join->attempts, attempt);
  g_message("join: %s to %s:%u (+%" G_GINT64_FORMAT " ms)", transport, candidate->host,
            candidate->port, (g_get_monotonic_time() - join->started) / 1000);
  iface->open(reg->instance, candidate->host, candidate->port, attempt->cancellable, on_opened,
              attempt);
}

/* The transports of one stage: the best-ranked stream transport ("fast"), or all the
 * others (the web-port fallback). */
static GPtrArray *
stage_transports(HarkOverlay *overlay, gboolean fallback)
{
  g_autoptr(GPtrArray) streams = hark_overlay_transports(overlay, HARK_TRANSPORT_STREAM);
  GPtrArray *names = g_ptr_array_new();
  for (guint i = 0; i < streams->len; i++) {
    const HarkRegistration *reg = streams->pdata[i];
    if ((i == 0) != fallback)
      g_ptr_array_add(names, (gpointer)reg->name);
  }
  return names;
}

/* Starts the stage's transports on the best few candidates that offer them. */
static void
start_stage(HarkJoin *join, gboolean fallback)
{
  g_autoptr(GPtrArray) names = stage_transports(join->overlay, fallback);
  for (guint t = 0; t < names->len; t++) {
    guint begun = 0;
    for (guint i = 0; i < join->candidates->len && begun < 3; i++) {
      Candidate *candidate = join->candidates->pdata[i];
      if (!offers(candidate, names->pdata[t]))
        continue;
      attempt_start(join, candidate, names->pdata[t]);
      begun++;
    }
  }
}

/* A stage's timer fired: the stage starts, and when the other has run too, every stage
 * has. */
static void
run_stage(HarkJoin *join, gboolean fallback)
{
  *(fallback ? &join->fallback_source : &join->race_source) = 0;
  start_stage(join, fallback);
  if (join->race_source == 0 && join->fallback_source == 0)
    join->stages_done = TRUE;
  join_check_exhausted(join);
}

static gboolean
on_race(gpointer data)
{
  run_stage(data, FALSE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_fallback(gpointer data)
{
  run_stage(data, TRUE);
  return G_SOURCE_REMOVE;
}

/* ---- UDP probes ------------------------------------------------------------------- */

static void
on_probe_answer(GBytes *reply, gint64 rtt_us, const GError *error, gpointer data)
{
  Candidate *candidate = data;
  HarkJoin *join = candidate->join;
  HarkOverlay *overlay = join->overlay;
  g_clear_object(&candidate->probe);
  if (error != NULL) {
    g_debug("join: no probe answer from %s:%u: %s", candidate->host, candidate->port,
            error->message);
    join_check_exhausted(join);
    return;
  }
  g_autoptr(GError) decode_error = NULL;
  g_autoptr(HarkWireMessage) message = hark_wire_decode(reply, &decode_error);
  if (message == NULL || message->type != HARK_MSG_PROBE_REPLY) {
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected,
                           "a probe answer from %s:%u that is not a PROBE_REPLY", candidate->host,
                           candidate->port);
    join_check_exhausted(join);
    return;
  }
  g_autoptr(GVariant) dict = g_variant_get_child_value(message->body, 0);
  gboolean accepting = TRUE;
  g_variant_lookup(dict, "accepting", "b", &accepting);
  join->udp_answered = TRUE;
  g_message("join: %s:%u answered the UDP probe in %.1f ms%s", candidate->host, candidate->port,
            rtt_us / 1000.0, accepting ? "" : " (full)");
  hark_host_cache_seen(overlay->cache, candidate->host, candidate->port, NULL, rtt_us,
                       g_get_real_time() / G_USEC_PER_SEC);
  candidate->answered = TRUE;
  if (accepting) {
    g_autoptr(GPtrArray) names = stage_transports(overlay, FALSE);
    for (guint t = 0; t < names->len; t++)
      if (offers(candidate, names->pdata[t]))
        attempt_start(join, candidate, names->pdata[t]);
  }
  join_check_exhausted(join);
}

/* {"name": s, "pad": ay}: zeros up to OVERLAY_PROBE_SIZE, so the SN may answer. */
GBytes *
hark_overlay_probe_encode(HarkOverlay *overlay, guint64 id)
{
  GBytes *bytes = NULL;
  gsize pad = 0;
  for (int round = 0; round < 2; round++) {
    GVariantBuilder dict;
    g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&dict, "{sv}", "name",
                          g_variant_new_string(overlay->node->config->node_name));
    g_autofree guint8 *zeros = g_malloc0(MAX(pad, 1));
    g_variant_builder_add(&dict, "{sv}", "pad",
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, zeros, pad, 1));
    g_clear_pointer(&bytes, g_bytes_unref);
    bytes = hark_wire_encode(HARK_MSG_PROBE, id, g_variant_new("(a{sv})", &dict), NULL);
    gsize size = g_bytes_get_size(bytes);
    if (size >= OVERLAY_PROBE_SIZE)
      break;
    pad += OVERLAY_PROBE_SIZE - size;
  }
  return bytes;
}

static void
probe(HarkJoin *join, Candidate *candidate, const HarkRegistration *udp)
{
  const HarkTransportInterface *iface = udp->iface;
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string(candidate->host);
  if (address == NULL || iface->request == NULL || !offers(candidate, "udp"))
    return; /* host names are not probed: the stream transports resolve them */
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new(address, candidate->port);
  guint64 id = hark_overlay_next_id(join->overlay);
  g_autoptr(GBytes) bytes = hark_overlay_probe_encode(join->overlay, id);
  candidate->probe = g_cancellable_new();
  iface->request(udp->instance, to, bytes, id, OVERLAY_PROBE_TIMEOUT_MS, candidate->probe,
                 on_probe_answer, candidate);
}

/* ---- the join itself -------------------------------------------------------------- */

static HarkJoin *
join_new(HarkOverlay *overlay)
{
  HarkJoin *join = g_new0(HarkJoin, 1);
  join->overlay = overlay;
  join->started = g_get_monotonic_time();
  join->candidates = g_ptr_array_new_with_free_func(candidate_free);
  join->attempts = g_ptr_array_new_with_free_func(attempt_free);
  join->errors = g_string_new(NULL);
  return join;
}

void
hark_overlay_join_free(HarkJoin *join)
{
  if (join == NULL)
    return;
  HarkOverlay *overlay = join->overlay;
  hark_overlay_clear_source(overlay, &join->race_source);
  hark_overlay_clear_source(overlay, &join->fallback_source);
  g_ptr_array_unref(join->attempts);
  g_ptr_array_unref(join->candidates);
  if (join->call != NULL)
    hark_command_call_return_error(
      join->call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                      "the transport switch was abandoned"));
  g_string_free(join->errors, TRUE);
  g_free(join->only_transport);
  g_free(join);
}

static void join_retry_later(HarkOverlay *overlay);

void
hark_overlay_join_start(HarkOverlay *overlay)
{
  HarkConfig *config = overlay->node->config;
  if (overlay->join != NULL || overlay->sn != NULL || overlay->is_sn || overlay->stopping)
    return;
  /* Entries age out between runs and during a long one alike. */
  if (hark_host_cache_expire(overlay->cache, g_get_real_time() / G_USEC_PER_SEC,
                             config->host_cache_max_age) > 0)
    hark_overlay_save_cache(overlay);
  HarkJoin *join = join_new(overlay);
  overlay->join = join;
  OverlayWay way = { 0 };
  gboolean remembered = way_load(overlay, &way);
  if (remembered)
    candidate_add(join, way.host, way.port, NULL);
  g_autoptr(GPtrArray) best = hark_host_cache_best(overlay->cache, OVERLAY_JOIN_CANDIDATES);
  for (guint i = 0; i < best->len; i++) {
    const HarkHostCacheEntry *entry = best->pdata[i];
    Candidate *candidate = candidate_add(join, entry->host, entry->port, entry->transports);
    if (candidate->transports == NULL)
      candidate->transports = g_strdupv(entry->transports);
  }
  g_message("join: %u super nodes to try (host cache %u)%s%s", join->candidates->len,
            hark_host_cache_size(overlay->cache), remembered ? ", first the way that worked: " : "",
            remembered ? way.transport : "");
  JsonObject *data = json_object_new();
  json_object_set_int_member(data, "candidates", join->candidates->len);
  hark_overlay_emit(overlay, "overlay-joining", data);
  if (join->candidates->len == 0) {
    g_string_assign(join->errors, "no super node known: the host cache is empty and no "
                                  "bootstrap SN is configured (network.bootstrap)");
    hark_overlay_way_clear(&way);
    join_finish_failed(join);
    return;
  }
  /* The NAT probe found UDP blocked: no probes, nothing to wait for. */
  gboolean udp_blocked = hark_overlay_nat_verdict(overlay) == HARK_NAT_VERDICT_UDP_BLOCKED;
  const HarkRegistration *udp = hark_overlay_transport(overlay, "udp");
  if (udp != NULL && !udp_blocked)
    for (guint i = 0; i < join->candidates->len; i++)
      probe(join, join->candidates->pdata[i], udp);
  if (remembered)
    attempt_start(join, join->candidates->pdata[0], way.transport);
  /* When UDP did not answer last time, nothing is gained by waiting for it. */
  gboolean no_udp = udp_blocked || (remembered && !way.udp_answered);
  if (udp_blocked)
    g_message("join: the NAT probe found UDP blocked: no UDP probes, TLS links at once");
  else if (no_udp)
    g_message("join: no UDP answer last time: no waiting for UDP");
  /* Nothing to wait for without UDP, but a remembered way goes first alone: it usually
   * works, and one TLS handshake costs a third of three. */
  guint race_ms = no_udp && !remembered ? 0 : config->join_race_delay_ms;
  join->race_source = hark_overlay_add_timer(overlay, race_ms, on_race, join);
  join->fallback_source = hark_overlay_add_timer(
    overlay, no_udp ? config->join_race_delay_ms : config->join_fallback_delay_ms, on_fallback,
    join);
  hark_overlay_way_clear(&way);
}

static void
join_finish_failed(HarkJoin *join)
{
  HarkOverlay *overlay = join->overlay;
  g_free(overlay->last_error);
  overlay->last_error = g_strdup(join->errors->len ? join->errors->str : "no super node answered");
  if (join->call != NULL) {
    hark_command_call_return_error(join->call,
                                   g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                               "cannot move the link to %s: %s",
                                               join->only_transport, overlay->last_error));
    join->call = NULL;
  }
  gboolean was_switch = join->only_transport != NULL;
  for (guint i = 0; i < join->candidates->len; i++) {
    Candidate *candidate = join->candidates->pdata[i];
    if (!candidate->answered && !was_switch)
      hark_host_cache_failed(overlay->cache, candidate->host, candidate->port,
                             g_get_real_time() / G_USEC_PER_SEC);
  }
  if (overlay->join == join)
    overlay->join = NULL;
  hark_overlay_join_free(join);
  if (was_switch && overlay->sn != NULL)
    return; /* the old link is still there */
  if (was_switch) {
    hark_overlay_join_start(overlay); /* it died while we tried to move it */
    return;
  }
  hark_overlay_save_cache(overlay);
  g_message("join failed: %s", overlay->last_error);
  join_retry_later(overlay);
}

static gboolean
on_retry(gpointer data)
{
  HarkOverlay *overlay = data;
  overlay->retry_source = 0;
  hark_overlay_join_start(overlay);
  return G_SOURCE_REMOVE;
}

static void
join_retry_later(HarkOverlay *overlay)
{
  if (overlay->retry_source != 0 || overlay->stopping)
    return;
  g_message("join: trying again in %.1f s", overlay->retry_ms / 1000.0);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "error", overlay->last_error);
  json_object_set_int_member(data, "retry_ms", overlay->retry_ms);
  hark_overlay_emit(overlay, "overlay-join-failed", data);
  overlay->retry_source = hark_overlay_add_timer(overlay, overlay->retry_ms, on_retry, overlay);
  overlay->retry_ms = MIN(overlay->retry_ms * 2, OVERLAY_RETRY_MAX_MS);
}

JsonArray *
hark_overlay_join_describe(HarkJoin *join)
{
  JsonArray *array = json_array_new();
  for (guint i = 0; i < join->attempts->len; i++) {
    Attempt *attempt = join->attempts->pdata[i];
    JsonObject *object = json_object_new();
    json_object_set_string_member(object, "host", attempt->candidate->host);
    json_object_set_int_member(object, "port", attempt->candidate->port);
    json_object_set_string_member(object, "transport", attempt->transport);
    json_object_set_string_member(object, "state", attempt->state);
    json_array_add_object_element(array, object);
  }
  return array;
}

/* ---- the link a join opened ------------------------------------------------------- */

static gboolean
on_join_timeout(gpointer data)
{
  Peer *peer = data;
  peer->timer = 0;
  Attempt *attempt = attempt_of_peer(peer->join, peer);
  if (attempt != NULL)
    attempt_failed(attempt, "no answer to JOIN");
  return G_SOURCE_REMOVE;
}

void
hark_overlay_join_link_up(HarkJoin *join, Peer *peer)
{
  HarkOverlay *overlay = join->overlay;
  Attempt *attempt = attempt_of_peer(join, peer);
  if (attempt == NULL)
    return;
  attempt->state = "joining";
  GVariantBuilder dict;
  g_variant_builder_init(&dict, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&dict, "{sv}", "name",
                        g_variant_new_string(overlay->node->config->node_name));
  g_variant_builder_add(
    &dict, "{sv}", "as",
    g_variant_new_string(join->only_transport == NULL && overlay->is_sn ? "peer" : "client"));
  peer->request_id = hark_overlay_next_id(overlay);
  g_autoptr(GError) error = NULL;
  if (!hark_link_send(peer->link, HARK_MSG_JOIN, peer->request_id, g_variant_new("(a{sv})", &dict),
                      &error)) {
    attempt_failed(attempt, error->message);
    return;
  }
  peer->timer = hark_overlay_add_timer(overlay, OVERLAY_JOIN_TIMEOUT_MS, on_join_timeout, peer);
}

void
hark_overlay_join_link_closed(HarkJoin *join, Peer *peer, const GError *error)
{
  Attempt *attempt = attempt_of_peer(join, peer);
  if (attempt != NULL)
    attempt_failed(attempt, error != NULL ? error->message : "closed");
}

/* The winner: this link becomes the node's SN link, the join ends. */
static void
join_won(HarkJoin *join, Attempt *attempt, GVariant *dict)
{
  HarkOverlay *overlay = join->overlay;
  Peer *peer = attempt->peer;
  attempt->peer = NULL;
  hark_overlay_clear_source(overlay, &peer->timer);
  peer->join = NULL;
  const char *name = NULL;
  g_variant_lookup(dict, "name", "&s", &name);
  g_free(peer->name);
  peer->name = name != NULL ? hark_overlay_peer_text(name) : g_strdup("?");
  /* The SN says how long it lets a client stay silent; keep-alives come often enough. */
  guint32 keepalive = 0;
  g_variant_lookup(dict, "keepalive", "u", &keepalive);
  overlay->keepalive_s = hark_overlay_keepalive_choose(overlay->node->config, keepalive);
  if (keepalive > 0 && keepalive < (guint32)overlay->node->config->keepalive_floor)
    hark_overlay_note_drop(overlay, &overlay->counters.sn_keepalive_raised,
                           "%s asked for a PING every %u s: below network.keepalive_floor, "
                           "every %u s instead",
                           peer->name, keepalive, overlay->keepalive_s);
  guint16 turn_web_port = 0; /* an older SN or one without a relay on 443 says nothing */
  g_variant_lookup(dict, "turn_web_port", "q", &turn_web_port);
  hark_overlay_turn_set_sn_web_port(overlay, turn_web_port);
  g_autoptr(GVariant) sns = g_variant_lookup_value(dict, "sns", G_VARIANT_TYPE("a(sqas)"));
  const HarkLinkStats *stats = hark_link_get_stats(peer->link);
  gint64 now = g_get_monotonic_time();
  gint64 rtt = stats->up_at > 0 ? (stats->up_at - stats->opened_at) : -1;
  hark_link_set_rtt(peer->link, rtt);
  hark_host_cache_seen(overlay->cache, attempt->candidate->host, attempt->candidate->port, NULL, -1,
                       g_get_real_time() / G_USEC_PER_SEC);
  if (sns != NULL)
    g_ptr_array_unref(
      hark_overlay_learn_sn_list(overlay, sns, hark_link_get_peer_host(peer->link)));
  hark_overlay_save_cache(overlay);
  Peer *old = overlay->sn;
  peer->kind = PEER_MY_SN;
  peer->since = now;
  overlay->sn = peer;
  overlay->retry_ms = OVERLAY_RETRY_FIRST_MS;
  g_clear_pointer(&overlay->last_error, g_free);
  way_save(overlay, attempt->transport, attempt->candidate->host, attempt->candidate->port,
           join->udp_answered);
  gint64 took = now - join->started;
  g_message("joined: attached to %s at %s:%u over %s in %.1f ms", peer->name,
            attempt->candidate->host, attempt->candidate->port, attempt->transport, took / 1000.0);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "sn", peer->name);
  json_object_set_string_member(data, "host", attempt->candidate->host);
  json_object_set_int_member(data, "port", attempt->candidate->port);
  json_object_set_string_member(data, "transport", attempt->transport);
  json_object_set_double_member(data, "ms", took / 1000.0);
  HarkCommandCall *call = g_steal_pointer(&join->call);
  if (old != NULL)
    hark_overlay_drop_peer(overlay, old, "moved to another transport");
  if (overlay->join == join)
    overlay->join = NULL;
  hark_overlay_join_free(join);
  gboolean authenticated = FALSE;
  g_variant_lookup(dict, "authenticated", "b", &authenticated);
  if (!authenticated)
    hark_overlay_send_auth(overlay, peer);
  hark_overlay_keepalive_start(overlay);
  hark_overlay_sync_login(overlay);
  if (call != NULL)
    hark_command_call_return_object(call, json_object_ref(data));
  hark_overlay_emit(overlay, "overlay-attached", data);
}

void
hark_overlay_join_message(HarkJoin *join, Peer *peer, const HarkWireMessage *message)
{
  HarkOverlay *overlay = join->overlay;
  Attempt *attempt = attempt_of_peer(join, peer);
  if (attempt == NULL)
    return;
  if (hark_overlay_handle_keepalive(overlay, peer, message))
    return;
  if (message->id != peer->request_id) {
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "%s before the answer to JOIN",
                           hark_wire_type_name(message->type));
    return;
  }
  switch (message->type) {
  case HARK_MSG_JOIN_OK: {
    g_autoptr(GVariant) dict = g_variant_get_child_value(message->body, 0);
    join_won(join, attempt, dict);
    return;
  }
  case HARK_MSG_REDIRECT: {
    g_autoptr(GVariant) list = g_variant_get_child_value(message->body, 0);
    overlay->counters.redirected++;
    /* Only what passed the checks, and at most HARK_ADDRESS_LIST_MAX: a REDIRECT must not
     * turn this node into a flood of connections at someone. */
    g_autoptr(GPtrArray) others =
      hark_overlay_learn_sn_list(overlay, list, hark_link_get_peer_host(peer->link));
    g_message("join: %s:%u is full and sent us elsewhere (%u SNs of the %zu it named)",
              attempt->candidate->host, attempt->candidate->port, others->len,
              g_variant_n_children(list));
    for (guint i = 0; i < others->len && join->redirected < HARK_ADDRESS_LIST_MAX; i++) {
      const HarkHostCacheEntry *entry = others->pdata[i];
      join->redirected++;
      Candidate *candidate = candidate_add(join, entry->host, entry->port, entry->transports);
      attempt_start(join, candidate, attempt->transport);
    }
    attempt_failed(attempt, "full (redirected)");
    return;
  }
  case HARK_MSG_ERROR: {
    const char *text;
    guint32 code;
    g_variant_get(message->body, "(u&s)", &code, &text);
    g_autofree char *escaped = hark_overlay_peer_text(text);
    g_autofree char *why = g_strdup_printf("refused: %s", escaped);
    attempt_failed(attempt, why);
    return;
  }
  default:
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "%s as the answer to JOIN",
                           hark_wire_type_name(message->type));
    return;
  }
}

/* ---- attached --------------------------------------------------------------------- */

void
hark_overlay_sn_lost(HarkOverlay *overlay, const char *why)
{
  hark_overlay_keepalive_stop(overlay);
  hark_overlay_tunnel_client_link_lost(overlay);
  hark_overlay_turn_link_lost(overlay);
  if (overlay->stopping)
    return;
  g_message("lost the super node: %s; joining another", why);
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "reason", why);
  hark_overlay_emit(overlay, "overlay-detached", data);
  g_free(overlay->last_error);
  overlay->last_error = g_strdup(why);
  hark_overlay_join_start(overlay);
}

void
hark_overlay_send_auth(HarkOverlay *overlay, Peer *peer)
{
  GBytes *cert = hark_link_local_certificate(overlay->node);
  g_autoptr(GBytes) binding = hark_link_channel_binding(peer->link);
  if (cert == NULL || binding == NULL)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) signature = hark_identity_sign(overlay->node->identity, binding, &error);
  if (signature == NULL) {
    g_warning("cannot prove this device's certificate to the SN: %s", error->message);
    return;
  }
  GVariant *body =
    g_variant_new("(@ay@ay)", g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, cert, TRUE),
                  g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, signature, TRUE));
  hark_link_send(peer->link, HARK_MSG_AUTH, hark_overlay_next_id(overlay), body, NULL);
}

void
hark_overlay_client_message(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  if (hark_overlay_handle_keepalive(overlay, peer, message))
    return;
  switch (message->type) {
  case HARK_MSG_SN_LIST: {
    g_autoptr(GVariant) list = g_variant_get_child_value(message->body, 0);
    g_ptr_array_unref(
      hark_overlay_learn_sn_list(overlay, list, hark_link_get_peer_host(peer->link)));
    return;
  }
  case HARK_MSG_AUTH_OK: {
    const char *user;
    g_variant_get(message->body, "(&s)", &user);
    g_autofree char *escaped = hark_overlay_peer_text(user);
    g_message("the SN %s knows this device as user %s", peer->name, escaped);
    return;
  }
  case HARK_MSG_TURN_CREDENTIALS:
    if (!hark_overlay_turn_client_message(overlay, message))
      hark_overlay_note_drop(overlay, &overlay->counters.unexpected,
                             "TURN_CREDENTIALS from our SN %s that we did not ask for", peer->name);
    return;
  case HARK_MSG_ERROR: {
    if (hark_overlay_turn_client_message(overlay, message))
      return;
    const char *text;
    guint32 code;
    g_variant_get(message->body, "(u&s)", &code, &text);
    g_autofree char *escaped = hark_overlay_peer_text(text);
    g_message("the SN %s answered an error: %s", peer->name, escaped);
    hark_overlay_tunnel_client_message(overlay, message);
    return;
  }
  case HARK_MSG_TUNNEL_OK:
  case HARK_MSG_TUNNEL_DATA:
  case HARK_MSG_TUNNEL_CLOSE:
    hark_overlay_tunnel_client_message(overlay, message);
    return;
  default:
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "%s from our SN %s",
                           hark_wire_type_name(message->type), peer->name);
  }
}

/* ---- moving the SN link to another transport -------------------------------------- */

void
hark_overlay_switch_transport(HarkOverlay *overlay, const char *transport, HarkCommandCall *call)
{
  const HarkRegistration *reg = hark_overlay_transport(overlay, transport);
  const char *problem = NULL;
  if (reg == NULL || ((const HarkTransportInterface *)reg->iface)->open == NULL)
    problem = "no such stream transport is loaded";
  else if (overlay->is_sn)
    problem = "this node is a super node: it has no SN link to move";
  else if (overlay->sn == NULL)
    problem = "this node is not attached to a super node yet";
  else if (overlay->join != NULL)
    problem = "a join is already running";
  else if (g_strcmp0(hark_link_get_transport(overlay->sn->link), transport) == 0)
    problem = "the SN link already uses that transport";
  if (problem != NULL) {
    hark_command_call_return_error(call, g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                                     "%s: %s", transport, problem));
    return;
  }
  HarkJoin *join = join_new(overlay);
  join->only_transport = g_strdup(transport);
  join->call = call;
  join->stages_done = TRUE;
  overlay->join = join;
  Candidate *candidate =
    candidate_add(join, hark_link_get_peer_host(overlay->sn->link), overlay->sn->port, NULL);
  attempt_start(join, candidate, transport);
}
