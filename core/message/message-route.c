/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-route.c: online delivery of instant messages through super nodes
 * (docs/protocol.md, "Messages: routing through super nodes").
 *
 * Client side: MSG_SEND to our SN, its MSG_SENT or ERROR to the caller; MSG_DELIVER up
 * through the hooks. SN side: a MSG_SEND from a client is checked (certificate, size,
 * rate, envelope shape, sender = the link's device, target among the recipients,
 * signature), then handed to the target device's link (MSG_DELIVER) or forwarded to the
 * target's SN (MSG_FORWARD over a verified SN link, opened for it when needed), whose
 * answer goes back as the answer to the MSG_SEND. A MSG_FORWARD from a verified SN is
 * checked the same way, with the rate counted per sender device.
 *
 * The SN never sees plain text: envelopes are end to end, and the router reads them only
 * through the HarkMessageEnvelopeCheck it was given. */
#include "message-route.h"

#include "hark/address.h"

#include <gio/gio.h>
#include <string.h>

#define LOG_INTERVAL_US G_USEC_PER_SEC
#define LOG_TEXT_MAX 120
#define MAX_DEVICE_BUCKETS 4096
#define FORWARD_RETRY_MS 200

typedef struct {
  double tokens;
  gint64 refilled_us;
} Bucket;

typedef struct {
  guint64 routed; /* MSG_SEND and MSG_FORWARD that passed every check */
  guint64 delivered; /* MSG_DELIVER handed to a client's link */
  guint64 forwarded; /* MSG_FORWARD sent to another SN */
  guint64 sent; /* client: MSG_SEND answered "delivered" */
  guint64 received; /* client: MSG_DELIVER handed up */
  GHashTable *refused; /* reason -> guint64* count */
} RouteCounters;

struct _HarkMessageRoute {
  HarkContext *ctx;
  HarkOverlay *overlay;
  HarkClock *clock;
  const HarkMessageEnvelopeCheck *check;
  gpointer check_data;
  const HarkMessageRouteHooks *hooks;
  gpointer hooks_data;
  HarkMessageRouteLimits limits;
  guint listener;
  GHashTable *sends; /* guint64 MSG_SEND id -> Send*: client side, waiting for the answer */
  GHashTable *forwards; /* guint64 MSG_FORWARD id -> Forward*: SN side */
  GHashTable *link_buckets; /* HarkLink* -> Bucket*: each client link's MSG_SENDs */
  GHashTable *device_buckets; /* sender device id -> Bucket*: forwarded envelopes */
  RouteCounters counters;
  gint64 last_log_us;
  guint64 refused_since_log;
};

/* ---- timers on the node's context ---------------------------------------------------- */

static guint
add_timer(HarkMessageRoute *route, guint ms, GSourceFunc func, gpointer data)
{
  GSource *source = ms == 0 ? g_idle_source_new() : g_timeout_source_new(ms);
  g_source_set_callback(source, func, data, NULL);
  guint id = g_source_attach(source, hark_context_main_context(route->ctx));
  g_source_unref(source);
  return id;
}

static void
clear_timer(HarkMessageRoute *route, guint *id)
{
  if (*id == 0)
    return;
  GSource *source = g_main_context_find_source_by_id(hark_context_main_context(route->ctx), *id);
  if (source != NULL)
    g_source_destroy(source);
  *id = 0;
}

/* ---- refusals -------------------------------------------------------------------------- */

static char *
link_text(HarkLink *link)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
  g_autofree char *user = cert != NULL ? hark_text_escape(cert->user, -1, 64) : NULL;
  return g_strdup_printf("%s:%u%s%s", hark_link_get_peer_host(link), hark_link_get_peer_port(link),
                         user != NULL ? " user " : "", user != NULL ? user : "");
}

static void
count_refused(HarkMessageRoute *route, const char *reason)
{
  guint64 *n = g_hash_table_lookup(route->counters.refused, reason);
  if (n == NULL) {
    n = g_new0(guint64, 1);
    g_hash_table_insert(route->counters.refused, g_strdup(reason), n);
  }
  (*n)++;
}

/* Counted under reason, logged (one line a second at message level; a flood's rest at
 * debug level). text may hold peer-supplied strings: the caller escaped them. */
static void
note_refused(HarkMessageRoute *route, const char *reason, HarkLink *link, const char *text)
{
  count_refused(route, reason);
  g_autofree char *who = link != NULL ? link_text(link) : g_strdup("this node");
  gint64 now = g_get_monotonic_time();
  if (now - route->last_log_us >= LOG_INTERVAL_US) {
    if (route->refused_since_log > 0)
      g_message("messages: refused from %s: %s (and %" G_GUINT64_FORMAT
                " more refusals since the last line)",
                who, text, route->refused_since_log);
    else
      g_message("messages: refused from %s: %s", who, text);
    route->last_log_us = now;
    route->refused_since_log = 0;
  } else {
    route->refused_since_log++;
    g_debug("messages: refused from %s: %s", who, text);
  }
}

static void
answer_error(HarkLink *link, guint64 id, guint code, const char *text)
{
  hark_link_send(link, HARK_MSG_ERROR, id, g_variant_new("(us)", code, text), NULL);
}

/* Refuses a request: counted, logged, answered with ERROR code. */
static void
refuse(HarkMessageRoute *route, HarkLink *link, guint64 id, const char *reason, guint code,
       const char *text)
{
  note_refused(route, reason, link, text);
  answer_error(link, id, code, text);
}

/* ---- token buckets ----------------------------------------------------------------------- */

static gboolean
bucket_take(HarkMessageRoute *route, Bucket *bucket)
{
  gint64 now = hark_clock_now_monotonic(route->clock);
  double elapsed = (double)(now - bucket->refilled_us) / G_USEC_PER_SEC;
  bucket->refilled_us = now;
  if (elapsed > 0)
    bucket->tokens = MIN(route->limits.burst, bucket->tokens + elapsed * route->limits.rate);
  if (bucket->tokens < 1.0)
    return FALSE;
  bucket->tokens -= 1.0;
  return TRUE;
}

static Bucket *
bucket_new(HarkMessageRoute *route)
{
  Bucket *bucket = g_new0(Bucket, 1);
  bucket->tokens = route->limits.burst;
  bucket->refilled_us = hark_clock_now_monotonic(route->clock);
  return bucket;
}

static Bucket *
link_bucket(HarkMessageRoute *route, HarkLink *link)
{
  Bucket *bucket = g_hash_table_lookup(route->link_buckets, link);
  if (bucket == NULL) {
    bucket = bucket_new(route);
    g_hash_table_insert(route->link_buckets, link, bucket);
  }
  return bucket;
}

/* Full buckets hold nothing a new one would not: forgotten when the table is full. */
static gboolean
bucket_is_full(gpointer key, gpointer value, gpointer data)
{
  HarkMessageRoute *route = data;
  Bucket *bucket = value;
  double elapsed =
    (double)(hark_clock_now_monotonic(route->clock) - bucket->refilled_us) / G_USEC_PER_SEC;
  return bucket->tokens + elapsed * route->limits.rate >= route->limits.burst;
}

static Bucket *
device_bucket(HarkMessageRoute *route, const char *device)
{
  Bucket *bucket = g_hash_table_lookup(route->device_buckets, device);
  if (bucket != NULL)
    return bucket;
  if (g_hash_table_size(route->device_buckets) >= MAX_DEVICE_BUCKETS)
    g_hash_table_foreach_remove(route->device_buckets, bucket_is_full, route);
  bucket = bucket_new(route);
  g_hash_table_insert(route->device_buckets, g_strdup(device), bucket);
  return bucket;
}

/* ---- client side: sending and receiving ------------------------------------------------ */

typedef struct {
  HarkMessageRoute *route;
  guint64 id;
  HarkMessageRouteSent done;
  gpointer data;
  guint timer;
  HarkMessageRouteResult result; /* for an answer decided before the SN could give one */
  guint code;
  char *text;
  gboolean decided; /* answered from an idle callback, not by the SN */
} Send;

static void
send_free(gpointer data)
{
  Send *send = data;
  clear_timer(send->route, &send->timer);
  g_free(send->text);
  g_free(send);
}

static void
send_finish(Send *send, HarkMessageRouteResult result, guint code, const char *text)
{
  HarkMessageRoute *route = send->route;
  if (result == HARK_MESSAGE_ROUTE_DELIVERED)
    route->counters.sent++;
  send->done(result, code, text, send->data);
  send_free(send);
}

static gboolean
on_send_decided(gpointer data)
{
  Send *send = data;
  send->timer = 0;
  g_hash_table_steal(send->route->sends, &send->id);
  send_finish(send, send->result, send->code, send->text);
  return G_SOURCE_REMOVE;
}

/* A send answered without asking the SN: from an idle callback, never inside send(). */
static void
send_fail_later(Send *send, HarkMessageRouteResult result, guint code, const char *text)
{
  send->decided = TRUE;
  send->result = result;
  send->code = code;
  send->text = g_strdup(text);
  send->timer = add_timer(send->route, 0, on_send_decided, send);
}

static gboolean
on_send_timeout(gpointer data)
{
  Send *send = data;
  send->timer = 0;
  g_hash_table_steal(send->route->sends, &send->id);
  send_finish(send, HARK_MESSAGE_ROUTE_UNREACHABLE, 0, "no answer from our super node in time");
  return G_SOURCE_REMOVE;
}

static void forward_start(HarkMessageRoute *route, HarkLink *client, guint64 client_id,
                          const char *host, guint16 port, const char *target_device,
                          GBytes *envelope);
static gboolean parse_sn(const char *target_sn, char **host, guint16 *port);
static gboolean is_self(HarkMessageRoute *route, const char *host, guint16 port);

/* An SN's own device sends as its SN would serve it: to a client of its own, or forwarded
 * to the target's SN (the envelope is its own: nothing to check). */
static void
send_here(HarkMessageRoute *route, Send *send, const char *target_device, const char *target_sn,
          GBytes *envelope)
{
  HarkLink *target = hark_overlay_client_link(route->overlay, target_device);
  g_autofree char *host = NULL;
  guint16 port = 0;
  if (g_bytes_get_size(envelope) > route->limits.max_envelope) {
    send_fail_later(send, HARK_MESSAGE_ROUTE_REFUSED, 413, "the envelope is too large");
  } else if (target != NULL) {
    GVariant *bytes = g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, envelope, TRUE);
    gboolean sent =
      hark_link_send(target, HARK_MSG_MSG_DELIVER, hark_overlay_new_message_id(route->overlay),
                     g_variant_new("(@ay)", bytes), NULL);
    if (sent)
      route->counters.delivered++;
    send_fail_later(send, sent ? HARK_MESSAGE_ROUTE_DELIVERED : HARK_MESSAGE_ROUTE_UNREACHABLE, 0,
                    sent ? NULL : "the device's link refused it");
  } else if (!parse_sn(target_sn, &host, &port)) {
    send_fail_later(send, HARK_MESSAGE_ROUTE_REFUSED, 400, "the target SN is not host:port");
  } else if (is_self(route, host, port)) {
    send_fail_later(send, HARK_MESSAGE_ROUTE_NOT_ONLINE, 404,
                    "the device is not online at this super node");
  } else {
    send->timer = add_timer(route, route->limits.send_ms, on_send_timeout, send);
    forward_start(route, NULL, send->id, host, port, target_device, envelope);
  }
}

void
hark_message_route_send(HarkMessageRoute *route, const char *target_device, const char *target_sn,
                        GBytes *envelope, HarkMessageRouteSent done, gpointer data)
{
  Send *send = g_new0(Send, 1);
  send->route = route;
  send->done = done;
  send->data = data;
  /* Every send is in the table until it is answered, so that freeing the router answers
   * it; one decided here has an id no SN ever saw. */
  send->id = hark_overlay_new_message_id(route->overlay);
  g_hash_table_insert(route->sends, &send->id, send);
  HarkLink *link = hark_overlay_sn_link(route->overlay);
  if (link == NULL && hark_overlay_is_super_node(route->overlay)) {
    send_here(route, send, target_device, target_sn, envelope);
    return;
  }
  if (link == NULL) {
    send_fail_later(send, HARK_MESSAGE_ROUTE_NO_SN_LINK, 0, "not attached to a super node");
    return;
  }
  if (g_bytes_get_size(envelope) > route->limits.max_envelope) {
    send_fail_later(send, HARK_MESSAGE_ROUTE_REFUSED, 413, "the envelope is too large");
    return;
  }
  GVariant *bytes = g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, envelope, TRUE);
  g_autoptr(GError) error = NULL;
  if (!hark_link_send(link, HARK_MSG_MSG_SEND, send->id,
                      g_variant_new("(ss@ay)", target_device, target_sn, bytes), &error)) {
    /* What the wire refuses (over its frame limit, a name that is no UTF-8) is ours. */
    gboolean ours = error->domain == HARK_WIRE_ERROR;
    send_fail_later(send, ours ? HARK_MESSAGE_ROUTE_REFUSED : HARK_MESSAGE_ROUTE_NO_SN_LINK,
                    ours && error->code == HARK_WIRE_ERROR_TOO_LARGE ? 413 : 0, error->message);
    return;
  }
  send->timer = add_timer(route, route->limits.send_ms, on_send_timeout, send);
}

static HarkMessageRouteResult
result_of_code(guint code)
{
  switch (code) {
  case 404:
    return HARK_MESSAGE_ROUTE_NOT_ONLINE;
  case 502:
    return HARK_MESSAGE_ROUTE_UNREACHABLE;
  default:
    return HARK_MESSAGE_ROUTE_REFUSED;
  }
}

/* MSG_SENT or ERROR from our SN: TRUE when it answered one of our sends. */
static gboolean
send_answered(HarkMessageRoute *route, const HarkWireMessage *message)
{
  Send *send = g_hash_table_lookup(route->sends, &message->id);
  if (send == NULL || send->decided)
    return FALSE;
  g_hash_table_steal(route->sends, &message->id);
  if (message->type == HARK_MSG_ERROR) {
    guint32 code = 0;
    const char *text = NULL;
    g_variant_get(message->body, "(u&s)", &code, &text);
    g_autofree char *shown = hark_text_escape(text, -1, LOG_TEXT_MAX);
    send_finish(send, result_of_code(code), code, shown);
    return TRUE;
  }
  const char *state = NULL;
  g_variant_get(message->body, "(&s)", &state);
  if (g_strcmp0(state, "delivered") == 0) {
    send_finish(send, HARK_MESSAGE_ROUTE_DELIVERED, 0, NULL);
  } else {
    g_autofree char *shown = hark_text_escape(state, -1, 32);
    g_autofree char *text = g_strdup_printf("our SN answered '%s', not 'delivered'", shown);
    send_finish(send, HARK_MESSAGE_ROUTE_UNREACHABLE, 0, text);
  }
  return TRUE;
}

/* The sends our SN was asked about (and, with decided, those answered here) fail. */
static void
fail_sends(HarkMessageRoute *route, const char *why, gboolean decided)
{
  GList *sends = g_hash_table_get_values(route->sends);
  for (GList *l = sends; l != NULL; l = l->next) {
    Send *send = l->data;
    if (send->decided && !decided)
      continue;
    g_hash_table_steal(route->sends, &send->id);
    send_finish(send, HARK_MESSAGE_ROUTE_NO_SN_LINK, 0, why);
  }
  g_list_free(sends);
}

static void
deliver_up(HarkMessageRoute *route, const HarkWireMessage *message)
{
  g_autoptr(GVariant) bytes = g_variant_get_child_value(message->body, 0);
  g_autoptr(GBytes) envelope = g_variant_get_data_as_bytes(bytes);
  route->counters.received++;
  if (route->hooks != NULL && route->hooks->delivered != NULL)
    route->hooks->delivered(route->hooks_data, envelope);
}

/* ---- SN side: forwards ----------------------------------------------------------------- */

typedef struct {
  HarkMessageRoute *route;
  guint64 id; /* our MSG_FORWARD's */
  HarkLink *client; /* the sender's link and its MSG_SEND's id; NULL: local */
  guint64 client_id;
  guint64 local_id; /* client NULL: the id of this node's own Send in route->sends */
  char *host; /* the target SN */
  guint16 port;
  char *target_device;
  GBytes *envelope;
  HarkLink *peer; /* the SN link it went over; NULL while that link is being opened */
  guint timer;
  guint retry; /* sending again: the peer was still checking that we are an SN */
  gboolean counted; /* in `forwarded` (once, however often it was sent) */
} Forward;

static void
forward_free(gpointer data)
{
  Forward *forward = data;
  clear_timer(forward->route, &forward->timer);
  clear_timer(forward->route, &forward->retry);
  g_free(forward->host);
  g_free(forward->target_device);
  g_bytes_unref(forward->envelope);
  g_free(forward);
}

static HarkMessageRouteResult result_of_code(guint code);
static void send_finish(Send *send, HarkMessageRouteResult result, guint code, const char *text);

/* The sender hears how it went (code 0: delivered): a client over its link, or this
 * node's own send. */
static void
forward_reply(Forward *forward, guint code, const char *text)
{
  HarkMessageRoute *route = forward->route;
  if (forward->client != NULL) {
    if (code == 0)
      hark_link_send(forward->client, HARK_MSG_MSG_SENT, forward->client_id,
                     g_variant_new("(s)", "delivered"), NULL);
    else
      answer_error(forward->client, forward->client_id, code, text);
    return;
  }
  Send *send = g_hash_table_lookup(route->sends, &forward->local_id);
  if (send == NULL)
    return; /* timed out meanwhile */
  g_hash_table_steal(route->sends, &send->id);
  send_finish(send, code == 0 ? HARK_MESSAGE_ROUTE_DELIVERED : result_of_code(code), code, text);
}

/* The sender hears how it went; the forward is done. */
static void
forward_fail(Forward *forward, const char *reason, guint code, const char *text)
{
  HarkMessageRoute *route = forward->route;
  g_autofree char *full =
    g_strdup_printf("the SN at %s:%u: %s", forward->host, forward->port, text);
  note_refused(route, reason, forward->client, full);
  forward_reply(forward, code, full);
  g_hash_table_remove(route->forwards, &forward->id);
}

static gboolean
on_forward_timeout(gpointer data)
{
  Forward *forward = data;
  forward->timer = 0;
  forward_fail(forward, "unreachable", 502,
               forward->peer == NULL ? "no verified link to it in time" : "no answer in time");
  return G_SOURCE_REMOVE;
}

static void
forward_over(Forward *forward, HarkLink *peer)
{
  HarkMessageRoute *route = forward->route;
  forward->peer = peer;
  GVariant *bytes = g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, forward->envelope, TRUE);
  g_autoptr(GError) error = NULL;
  if (!hark_link_send(peer, HARK_MSG_MSG_FORWARD, forward->id,
                      g_variant_new("(s@ay)", forward->target_device, bytes), &error)) {
    forward_fail(forward, "unreachable", 502, error->message);
    return;
  }
  if (!forward->counted)
    route->counters.forwarded++;
  forward->counted = TRUE;
}

/* client NULL: the sender is this node (client_id: its Send's id). */
static void
forward_start(HarkMessageRoute *route, HarkLink *client, guint64 client_id, const char *host,
              guint16 port, const char *target_device, GBytes *envelope)
{
  Forward *forward = g_new0(Forward, 1);
  forward->route = route;
  forward->id = hark_overlay_new_message_id(route->overlay);
  forward->client = client;
  forward->client_id = client != NULL ? client_id : 0;
  forward->local_id = client != NULL ? 0 : client_id;
  forward->host = g_strdup(host);
  forward->port = port;
  forward->target_device = g_strdup(target_device);
  forward->envelope = g_bytes_ref(envelope);
  forward->timer = add_timer(route, route->limits.forward_ms, on_forward_timeout, forward);
  g_hash_table_insert(route->forwards, &forward->id, forward);
  HarkLink *peer = hark_overlay_peer_link(route->overlay, host, port);
  if (peer != NULL) {
    forward_over(forward, peer);
    return;
  }
  g_autoptr(GError) error = NULL;
  if (!hark_overlay_open_peer_link(route->overlay, host, port, &error))
    forward_fail(forward, "unreachable", 502, error->message);
}

/* The listeners' "sn-peer-linked" / "sn-peer-link-failed": forwards waiting for that SN
 * go now, or fail. */
static void
forwards_link_news(HarkMessageRoute *route, JsonObject *details, gboolean linked)
{
  const char *host = json_object_get_string_member_with_default(details, "host", NULL);
  guint16 port = (guint16)json_object_get_int_member_with_default(details, "port", 0);
  const char *error = json_object_get_string_member_with_default(details, "error", "failed");
  GList *forwards = g_hash_table_get_values(route->forwards);
  for (GList *l = forwards; l != NULL; l = l->next) {
    Forward *forward = l->data;
    if (forward->peer != NULL || forward->port != port || g_strcmp0(forward->host, host) != 0)
      continue;
    HarkLink *peer = linked ? hark_overlay_peer_link(route->overlay, host, port) : NULL;
    if (peer != NULL)
      forward_over(forward, peer);
    else if (!linked)
      forward_fail(forward, "unreachable", 502, error);
  }
  g_list_free(forwards);
}

static gboolean
on_forward_retry(gpointer data)
{
  Forward *forward = data;
  forward->retry = 0;
  forward_over(forward, forward->peer);
  return G_SOURCE_REMOVE;
}

static gboolean
is_relayed_code(guint code)
{
  return code == 400 || code == 401 || code == 404 || code == 413 || code == 429;
}

/* MSG_SENT or ERROR from an SN peer: TRUE when it answered one of our forwards over
 * that very link. */
static gboolean
forward_answered(HarkMessageRoute *route, HarkLink *link, const HarkWireMessage *message)
{
  Forward *forward = g_hash_table_lookup(route->forwards, &message->id);
  if (forward == NULL || forward->peer != link)
    return FALSE;
  if (message->type == HARK_MSG_MSG_SENT) {
    const char *state = NULL;
    g_variant_get(message->body, "(&s)", &state);
    if (g_strcmp0(state, "delivered") != 0) {
      forward_fail(forward, "unreachable", 502, "it answered something other than 'delivered'");
      return TRUE;
    }
    forward_reply(forward, 0, NULL);
    g_hash_table_remove(route->forwards, &forward->id);
    return TRUE;
  }
  guint32 code = 0;
  const char *text = NULL;
  g_variant_get(message->body, "(u&s)", &code, &text);
  g_autofree char *shown = hark_text_escape(text, -1, LOG_TEXT_MAX);
  if (code == 503 && forward->retry == 0) {
    /* It linked to us (or we to it) a moment ago and is still checking our claim: the
     * same forward goes again, within the forward's own deadline. */
    forward->retry = add_timer(route, FORWARD_RETRY_MS, on_forward_retry, forward);
    return TRUE;
  }
  if (!is_relayed_code(code)) {
    g_autofree char *odd = g_strdup_printf("error %u: %s", code, shown);
    forward_fail(forward, "unreachable", 502, odd);
    return TRUE;
  }
  g_autofree char *full =
    g_strdup_printf("the SN at %s:%u: %s", forward->host, forward->port, shown);
  /* Refused over there (and counted there): passed on, not counted twice. */
  forward_reply(forward, code, full);
  g_hash_table_remove(route->forwards, &forward->id);
  return TRUE;
}

static void
forwards_link_closed(HarkMessageRoute *route, HarkLink *link)
{
  GList *forwards = g_hash_table_get_values(route->forwards);
  for (GList *l = forwards; l != NULL; l = l->next) {
    Forward *forward = l->data;
    if (forward->client == link)
      g_hash_table_remove(route->forwards, &forward->id); /* nobody to answer */
    else if (forward->peer == link)
      forward_fail(forward, "unreachable", 502, "its link closed before it answered");
  }
  g_list_free(forwards);
}

/* ---- SN side: the checks ---------------------------------------------------------------- */

static gboolean
is_recipient(const HarkMessageEnvelopeInfo *info, const char *device)
{
  return info->recipients != NULL && g_strv_contains((const char *const *)info->recipients, device);
}

/* The envelope's shape, sender, target and signature. cert: the link's certificate for a
 * MSG_SEND (the sender must be its user and device), NULL for a MSG_FORWARD. Returns
 * the parsed envelope or NULL (refused and answered). */
static HarkMessageEnvelopeInfo *
check_envelope(HarkMessageRoute *route, HarkLink *link, guint64 id,
               const HarkDeviceCertificate *cert, const char *target_device, GBytes *envelope)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageEnvelopeInfo) info =
    route->check->parse(route->check_data, envelope, &error);
  if (info == NULL) {
    g_autofree char *text = g_strdup_printf("malformed envelope: %s", error->message);
    refuse(route, link, id, "malformed", 400, text);
    return NULL;
  }
  if (cert != NULL && (g_strcmp0(info->sender, cert->user) != 0 ||
                       g_strcmp0(info->sender_device, cert->device_id) != 0)) {
    g_autofree char *user = hark_text_escape(info->sender, -1, 64);
    g_autofree char *text = g_strdup_printf(
      "not yours: the envelope is from user %s, and this link is another user's or device's", user);
    refuse(route, link, id, "not_yours", 400, text);
    return NULL;
  }
  if (!is_recipient(info, target_device)) {
    refuse(route, link, id, "not_a_recipient", 400,
           "the target device is not among the envelope's recipients");
    return NULL;
  }
  /* A MSG_FORWARD's rate is its sender device's (the peer SN carries many senders). */
  if (cert == NULL && !bucket_take(route, device_bucket(route, info->sender_device))) {
    refuse(route, link, id, "rate", 429, "over the sender device's message rate");
    return NULL;
  }
  if (!route->check->verify(route->check_data, info, envelope, hark_clock_now_seconds(route->clock),
                            &error)) {
    g_autofree char *text = g_strdup_printf("envelope not verified: %s", error->message);
    refuse(route, link, id, "forged", 400, text);
    return NULL;
  }
  return g_steal_pointer(&info);
}

/* Splits "host:port" ("[v6]:port"); FALSE when it is not that. */
static gboolean
parse_sn(const char *target_sn, char **host, guint16 *port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnectable) address = g_network_address_parse(target_sn, 0, &error);
  if (address == NULL)
    return FALSE;
  GNetworkAddress *network = G_NETWORK_ADDRESS(address);
  *port = g_network_address_get_port(network);
  *host = g_strdup(g_network_address_get_hostname(network));
  return *port != 0 && hark_text_is_clean(*host);
}

static gboolean
is_self(HarkMessageRoute *route, const char *host, guint16 port)
{
  g_autofree char *own = hark_overlay_own_address(route->overlay);
  g_autofree char *asked = strchr(host, ':') != NULL ? g_strdup_printf("[%s]:%u", host, port)
                                                     : g_strdup_printf("%s:%u", host, port);
  return own != NULL && strcmp(own, asked) == 0;
}

/* Hands the envelope to the target device when it is our client: TRUE when it was. */
static gboolean
deliver_here(HarkMessageRoute *route, HarkLink *link, guint64 id, const char *target_device,
             GVariant *envelope)
{
  const char *own = route->hooks != NULL && route->hooks->own_device != NULL
                      ? route->hooks->own_device(route->hooks_data)
                      : NULL;
  if (own != NULL && g_strcmp0(own, target_device) == 0) {
    /* This SN's own device: the layer above takes it, as from an SN. */
    g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes(envelope);
    route->counters.delivered++;
    hark_link_send(link, HARK_MSG_MSG_SENT, id, g_variant_new("(s)", "delivered"), NULL);
    route->hooks->delivered(route->hooks_data, bytes);
    return TRUE;
  }
  HarkLink *target = hark_overlay_client_link(route->overlay, target_device);
  if (target == NULL)
    return FALSE;
  g_autoptr(GError) error = NULL;
  if (!hark_link_send(target, HARK_MSG_MSG_DELIVER, hark_overlay_new_message_id(route->overlay),
                      g_variant_new("(@ay)", envelope), &error)) {
    g_autofree char *text = g_strdup_printf("the device's link refused it: %s", error->message);
    refuse(route, link, id, "unreachable", 502, text);
    return TRUE;
  }
  route->counters.delivered++;
  hark_link_send(link, HARK_MSG_MSG_SENT, id, g_variant_new("(s)", "delivered"), NULL);
  return TRUE;
}

static void
not_online(HarkMessageRoute *route, HarkLink *link, guint64 id)
{
  refuse(route, link, id, "not_online", 404, "the device is not online at this super node");
}

/* MSG_SEND (a client) or MSG_FORWARD (a verified SN). */
static void
serve_envelope(HarkMessageRoute *route, HarkLink *link, const HarkWireMessage *message)
{
  gboolean forwarded = message->type == HARK_MSG_MSG_FORWARD;
  const char *target_device = NULL;
  const char *target_sn = NULL;
  g_autoptr(GVariant) bytes = NULL;
  if (forwarded)
    g_variant_get(message->body, "(&s@ay)", &target_device, &bytes);
  else
    g_variant_get(message->body, "(&s&s@ay)", &target_device, &target_sn, &bytes);
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
  if (!forwarded && cert == NULL) {
    refuse(route, link, message->id, "unauthenticated", 401,
           "log in (prove a certificate) before sending messages");
    return;
  }
  if (g_variant_get_size(bytes) > route->limits.max_envelope) {
    g_autofree char *text = g_strdup_printf("the envelope has %" G_GSIZE_FORMAT
                                            " bytes; at most %" G_GSIZE_FORMAT " are carried",
                                            g_variant_get_size(bytes), route->limits.max_envelope);
    refuse(route, link, message->id, "too_large", 413, text);
    return;
  }
  if (!forwarded && !bucket_take(route, link_bucket(route, link))) {
    refuse(route, link, message->id, "rate", 429, "over this link's message rate");
    return;
  }
  g_autoptr(GBytes) envelope = g_variant_get_data_as_bytes(bytes);
  g_autoptr(HarkMessageEnvelopeInfo) info =
    check_envelope(route, link, message->id, forwarded ? NULL : cert, target_device, envelope);
  if (info == NULL)
    return;
  route->counters.routed++;
  g_debug("messages: %s from device %.16s to device %.16s, %" G_GSIZE_FORMAT " bytes",
          forwarded ? "MSG_FORWARD" : "MSG_SEND", info->sender_device, target_device,
          g_bytes_get_size(envelope));
  if (deliver_here(route, link, message->id, target_device, bytes))
    return;
  g_autofree char *host = NULL;
  guint16 port = 0;
  if (forwarded) {
    not_online(route, link, message->id);
  } else if (!parse_sn(target_sn, &host, &port)) {
    refuse(route, link, message->id, "malformed", 400, "the target SN is not host:port");
  } else if (is_self(route, host, port)) {
    not_online(route, link, message->id);
  } else {
    forward_start(route, link, message->id, host, port, target_device, envelope);
  }
}

/* ---- the overlay listener --------------------------------------------------------------- */

static const guint16 listened_types[] = {
  HARK_MSG_MSG_SEND,
  HARK_MSG_MSG_SENT,
  HARK_MSG_MSG_DELIVER,
  HARK_MSG_MSG_FORWARD,
};

static gboolean
on_message(gpointer data, HarkLink *link, HarkOverlayFrom from, const HarkWireMessage *message)
{
  HarkMessageRoute *route = data;
  switch (message->type) {
  case HARK_MSG_MSG_SEND:
    if (from != HARK_OVERLAY_FROM_CLIENT)
      break;
    serve_envelope(route, link, message);
    return TRUE;
  case HARK_MSG_MSG_FORWARD:
    if (from == HARK_OVERLAY_FROM_CLAIMED_SN) {
      refuse(route, link, message->id, "unverified", 503,
             "not verified as a super node (yet): try again once it is");
      return TRUE;
    }
    if (from != HARK_OVERLAY_FROM_SN)
      break;
    serve_envelope(route, link, message);
    return TRUE;
  case HARK_MSG_MSG_DELIVER:
    if (from != HARK_OVERLAY_FROM_MY_SN)
      break;
    deliver_up(route, message);
    return TRUE;
  case HARK_MSG_MSG_SENT:
  case HARK_MSG_ERROR:
    if (from == HARK_OVERLAY_FROM_MY_SN)
      return send_answered(route, message);
    if (from == HARK_OVERLAY_FROM_SN && forward_answered(route, link, message))
      return TRUE;
    if (message->type == HARK_MSG_ERROR)
      return FALSE; /* someone else's answer */
    break;
  default:
    return FALSE;
  }
  g_autofree char *text =
    g_strdup_printf("%s, which makes no sense on that link", hark_wire_type_name(message->type));
  note_refused(route, "unexpected", link, text);
  return TRUE;
}

static void
on_event(gpointer data, const char *event, JsonObject *details)
{
  HarkMessageRoute *route = data;
  if (g_strcmp0(event, "sn-peer-linked") == 0)
    forwards_link_news(route, details, TRUE);
  else if (g_strcmp0(event, "sn-peer-link-failed") == 0)
    forwards_link_news(route, details, FALSE);
}

static void
on_link_closed(gpointer data, HarkLink *link, HarkOverlayFrom from)
{
  HarkMessageRoute *route = data;
  if (from == HARK_OVERLAY_FROM_MY_SN) {
    fail_sends(route, "the link to our super node closed before it answered", FALSE);
    return;
  }
  g_hash_table_remove(route->link_buckets, link);
  forwards_link_closed(route, link);
}

static const HarkOverlayListener route_listener = {
  .types = listened_types,
  .n_types = G_N_ELEMENTS(listened_types),
  .errors_from_sn = TRUE,
  .message = on_message,
  .event = on_event,
  .link_closed = on_link_closed,
  .errors_from_sn_peers = TRUE,
  .claimed_sn_peers = TRUE,
};

/* ---- the object ------------------------------------------------------------------------- */

void
hark_message_envelope_info_free(HarkMessageEnvelopeInfo *info)
{
  if (info == NULL)
    return;
  g_free(info->sender);
  g_free(info->sender_device);
  g_strfreev(info->recipients);
  if (info->parsed_free != NULL)
    info->parsed_free(info->parsed);
  g_free(info);
}

static void
set_limits(HarkMessageRouteLimits *out, const HarkMessageRouteLimits *in)
{
  HarkMessageRouteLimits none = { 0 };
  *out = in != NULL ? *in : none;
  if (out->max_envelope == 0)
    out->max_envelope = HARK_MESSAGE_ROUTE_MAX_ENVELOPE;
  if (out->rate <= 0)
    out->rate = HARK_MESSAGE_ROUTE_RATE;
  if (out->burst < 1)
    out->burst = HARK_MESSAGE_ROUTE_BURST;
  if (out->forward_ms == 0)
    out->forward_ms = HARK_MESSAGE_ROUTE_FORWARD_MS;
  if (out->send_ms == 0)
    out->send_ms = HARK_MESSAGE_ROUTE_SEND_MS;
}

HarkMessageRoute *
hark_message_route_new(HarkContext *ctx, HarkOverlay *overlay,
                       const HarkMessageEnvelopeCheck *check, gpointer check_data,
                       const HarkMessageRouteHooks *hooks, gpointer hooks_data,
                       const HarkMessageRouteLimits *limits)
{
  g_return_val_if_fail(check != NULL && check->parse != NULL && check->verify != NULL, NULL);
  HarkMessageRoute *route = g_new0(HarkMessageRoute, 1);
  route->ctx = ctx;
  route->overlay = overlay;
  route->clock = hark_context_get_clock(ctx);
  route->check = check;
  route->check_data = check_data;
  route->hooks = hooks;
  route->hooks_data = hooks_data;
  set_limits(&route->limits, limits);
  route->sends = g_hash_table_new(g_int64_hash, g_int64_equal);
  route->forwards = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, forward_free);
  route->link_buckets = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  route->device_buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  route->counters.refused = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  route->listener = hark_overlay_add_listener(overlay, &route_listener, route);
  return route;
}

void
hark_message_route_free(HarkMessageRoute *route)
{
  if (route == NULL)
    return;
  hark_overlay_remove_listener(route->overlay, route->listener);
  fail_sends(route, "stopped", TRUE);
  g_hash_table_unref(route->sends);
  g_hash_table_unref(route->forwards);
  g_hash_table_unref(route->link_buckets);
  g_hash_table_unref(route->device_buckets);
  g_hash_table_unref(route->counters.refused);
  g_free(route);
}

const char *
hark_message_route_result_name(HarkMessageRouteResult result)
{
  switch (result) {
  case HARK_MESSAGE_ROUTE_DELIVERED:
    return "delivered";
  case HARK_MESSAGE_ROUTE_NOT_ONLINE:
    return "not-online";
  case HARK_MESSAGE_ROUTE_REFUSED:
    return "refused";
  case HARK_MESSAGE_ROUTE_UNREACHABLE:
    return "unreachable";
  case HARK_MESSAGE_ROUTE_NO_SN_LINK:
    return "no-sn-link";
  }
  return "?";
}

JsonObject *
hark_message_route_snapshot(HarkMessageRoute *route)
{
  const RouteCounters *c = &route->counters;
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "role",
                                hark_overlay_is_super_node(route->overlay) ? "super" : "client");
  json_object_set_int_member(o, "routed", (gint64)c->routed);
  json_object_set_int_member(o, "delivered", (gint64)c->delivered);
  json_object_set_int_member(o, "forwarded", (gint64)c->forwarded);
  json_object_set_int_member(o, "sent", (gint64)c->sent);
  json_object_set_int_member(o, "received", (gint64)c->received);
  json_object_set_int_member(o, "waiting_sends", g_hash_table_size(route->sends));
  json_object_set_int_member(o, "waiting_forwards", g_hash_table_size(route->forwards));
  JsonObject *refused = json_object_new();
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init(&iter, c->refused);
  while (g_hash_table_iter_next(&iter, &key, &value))
    json_object_set_int_member(refused, key, (gint64) * (guint64 *)value);
  json_object_set_object_member(o, "refused", refused);
  return o;
}
