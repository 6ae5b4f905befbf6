/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* udp.c: the udp transport plugin: single datagrams for probes, STUN and the few small
 * requests that need an answer, retransmitted until it comes (hark/transport.h).
 *
 * One socket per node, read on the node's main context. A datagram that answers a
 * pending request completes it; every other one goes to the core
 * (hark_transport_datagram_received), after a per-source token bucket and a size limit,
 * because a super node's UDP port is open to the whole Internet. */
#include <hark/hark.h>

#include <string.h>

#define MAX_DATAGRAM 1500 /* larger ones are dropped: nothing of ours is that big */
#define MAX_RTO_MS 2000
#define READS_PER_DISPATCH 64 /* then let the rest of the main loop run */
#define DROP_MESSAGE_INTERVAL_US (10 * G_USEC_PER_SEC)
/* Buckets of sources that have been quiet long enough to be full again carry no
 * information, so they are forgotten once there are this many. */
#define MAX_BUCKETS 4096
#define OVERFLOW_BUCKET "*"

typedef struct {
  double tokens;
  gint64 refilled_us;
} Bucket;

typedef struct _Udp Udp;

typedef struct {
  Udp *udp;
  guint64 id;
  GSocketAddress *to;
  GBytes *message;
  GCancellable *cancellable;
  gulong cancel_handler;
  HarkTransportAnswered answered;
  gpointer user_data;
  guint transmissions;
  guint rto_ms;
  gint64 first_sent_us;
  gint64 last_sent_us;
  gint64 deadline_us;
  GSource *timer;
  GSource *finisher; /* an idle that ends the request outside the caller's stack */
  GError *failure; /* what the finisher reports; NULL: cancelled, report nothing */
} Request;

struct _Udp {
  HarkContext *ctx;
  guint initial_rto_ms;
  double max_per_second;
  GSocket *socket;
  GSource *source;
  gboolean listening;
  guint16 port;
  GHashTable *pending; /* set of Request*, owned */
  GHashTable *buckets; /* source IP as a string -> Bucket*, owned */
  guint64 datagrams_in, datagrams_out, retransmissions, dropped, requests_timed_out;
  guint64 bytes_in, bytes_out; /* UDP payloads, no IP/UDP headers */
  gint64 last_drop_message_us;
  guint64 drops_not_reported;
};

static void request_free(gpointer data);

/* Sockets */

static gboolean receive_ready(GSocket *socket, GIOCondition condition, gpointer data);

static void
close_socket(Udp *udp)
{
  if (udp->source != NULL) {
    g_source_destroy(udp->source);
    g_clear_pointer(&udp->source, g_source_unref);
  }
  if (udp->socket != NULL)
    g_socket_close(udp->socket, NULL);
  g_clear_object(&udp->socket);
  udp->listening = FALSE;
  udp->port = 0;
}

static gboolean
open_socket(Udp *udp, const char *address, guint16 port, GError **error)
{
  g_autoptr(GInetAddress) ip = g_inet_address_new_from_string(address);
  if (ip == NULL) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "udp: '%s' is not an IP address", address);
    return FALSE;
  }
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GSocket) socket = g_socket_new(g_inet_address_get_family(ip), G_SOCKET_TYPE_DATAGRAM,
                                           G_SOCKET_PROTOCOL_UDP, &local_error);
  g_autoptr(GSocketAddress) bind_to = g_inet_socket_address_new(ip, port);
  if (socket == NULL || !g_socket_bind(socket, bind_to, FALSE, &local_error)) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "udp: cannot bind %s port %u: %s", address, port, local_error->message);
    return FALSE;
  }
  g_socket_set_blocking(socket, FALSE);
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address(socket, &local_error);
  if (bound == NULL) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "udp: bound %s but cannot read the port: %s", address, local_error->message);
    return FALSE;
  }
  close_socket(udp);
  udp->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  udp->socket = g_steal_pointer(&socket);
  udp->source = g_socket_create_source(udp->socket, G_IO_IN, NULL);
  g_source_set_callback(udp->source, G_SOURCE_FUNC(receive_ready), udp, NULL);
  g_source_attach(udp->source, hark_context_main_context(udp->ctx));
  return TRUE;
}

/* An ordinary node probes before (or without) listening: it gets an ephemeral port. */
static gboolean
ensure_socket(Udp *udp, GError **error)
{
  return udp->socket != NULL || open_socket(udp, "0.0.0.0", 0, error);
}

static gboolean
send_datagram(Udp *udp, GSocketAddress *to, GBytes *datagram, GError **error)
{
  if (!ensure_socket(udp, error))
    return FALSE;
  gsize size;
  const char *data = g_bytes_get_data(datagram, &size);
  g_autoptr(GError) local_error = NULL;
  if (g_socket_send_to(udp->socket, to, data, size, NULL, &local_error) < 0) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_UNREACHABLE,
                "udp: cannot send: %s", local_error->message);
    return FALSE;
  }
  udp->datagrams_out++;
  udp->bytes_out += size;
  return TRUE;
}

static gboolean
same_address(GSocketAddress *a, GSocketAddress *b)
{
  if (!G_IS_INET_SOCKET_ADDRESS(a) || !G_IS_INET_SOCKET_ADDRESS(b))
    return FALSE;
  GInetSocketAddress *ia = G_INET_SOCKET_ADDRESS(a), *ib = G_INET_SOCKET_ADDRESS(b);
  return g_inet_socket_address_get_port(ia) == g_inet_socket_address_get_port(ib) &&
         g_inet_address_equal(g_inet_socket_address_get_address(ia),
                              g_inet_socket_address_get_address(ib));
}

/* Flood protection */

static void
count_drop(Udp *udp, GSocketAddress *from, const char *why)
{
  udp->dropped++;
  g_autofree char *who = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(from));
  gint64 now = g_get_monotonic_time();
  if (udp->last_drop_message_us == 0 ||
      now - udp->last_drop_message_us >= DROP_MESSAGE_INTERVAL_US) {
    g_message("udp: dropped a datagram from %s (%s); %" G_GUINT64_FORMAT
              " more dropped since the last message, %" G_GUINT64_FORMAT " in all",
              who, why, udp->drops_not_reported, udp->dropped);
    udp->last_drop_message_us = now;
    udp->drops_not_reported = 0;
  } else {
    g_debug("udp: dropped a datagram from %s (%s)", who, why);
    udp->drops_not_reported++;
  }
}

static gboolean
bucket_is_full_again(gpointer key, gpointer value, gpointer data)
{
  Udp *udp = data;
  const Bucket *bucket = value;
  double burst = 2 * udp->max_per_second;
  return (double)(g_get_monotonic_time() - bucket->refilled_us) / G_USEC_PER_SEC *
             udp->max_per_second +
           bucket->tokens >=
         burst;
}

/* Keyed by IP without the port: a flood from one host gains nothing by changing ports. */
static gboolean
take_token(Udp *udp, GSocketAddress *from)
{
  if (!G_IS_INET_SOCKET_ADDRESS(from))
    return FALSE;
  g_autofree char *key =
    g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(from)));
  gint64 now = g_get_monotonic_time();
  double burst = 2 * udp->max_per_second;
  Bucket *bucket = g_hash_table_lookup(udp->buckets, key);
  if (bucket == NULL && g_hash_table_size(udp->buckets) >= MAX_BUCKETS) {
    g_hash_table_foreach_remove(udp->buckets, bucket_is_full_again, udp);
    /* Still full: a flood from many (likely spoofed) addresses. New sources then share
     * one bucket, so memory stays bounded and sources already known keep theirs. */
    if (g_hash_table_size(udp->buckets) >= MAX_BUCKETS) {
      g_free(key);
      key = g_strdup(OVERFLOW_BUCKET);
      bucket = g_hash_table_lookup(udp->buckets, key);
    }
  }
  if (bucket == NULL) {
    bucket = g_new(Bucket, 1);
    bucket->tokens = burst;
    bucket->refilled_us = now;
    g_hash_table_insert(udp->buckets, g_steal_pointer(&key), bucket);
  } else {
    double refill = (double)(now - bucket->refilled_us) / G_USEC_PER_SEC * udp->max_per_second;
    bucket->tokens = MIN(burst, bucket->tokens + refill);
    bucket->refilled_us = now;
  }
  if (bucket->tokens < 1)
    return FALSE;
  bucket->tokens -= 1;
  return TRUE;
}

/* Requests */

static gboolean
finish_request(gpointer data)
{
  Request *request = data;
  Udp *udp = request->udp;
  g_autoptr(GError) failure = g_steal_pointer(&request->failure);
  HarkTransportAnswered answered = request->answered;
  gpointer user_data = request->user_data;
  gboolean cancelled = g_cancellable_is_cancelled(request->cancellable);
  g_hash_table_remove(udp->pending, request); /* frees request */
  if (failure != NULL && !cancelled)
    answered(NULL, 0, failure, user_data);
  return G_SOURCE_REMOVE;
}

/* Ends the request from an idle: with failure (taken) or, when NULL, silently. */
static void
finish_later(Request *request, GError *failure)
{
  if (request->finisher != NULL) {
    g_clear_error(&failure);
    return;
  }
  if (request->timer != NULL) {
    g_source_destroy(request->timer);
    g_clear_pointer(&request->timer, g_source_unref);
  }
  request->failure = failure;
  request->finisher = g_idle_source_new();
  g_source_set_callback(request->finisher, finish_request, request, NULL);
  g_source_attach(request->finisher, hark_context_main_context(request->udp->ctx));
}

static gboolean retransmit(gpointer data);

static void
arm_timer(Request *request, gint64 now)
{
  gint64 left_ms = (request->deadline_us - now + 999) / 1000;
  guint wait_ms = (guint)CLAMP(MIN((gint64)request->rto_ms, left_ms), 0, G_MAXUINT);
  if (request->timer != NULL) {
    g_source_destroy(request->timer);
    g_source_unref(request->timer);
  }
  request->timer = g_timeout_source_new(wait_ms);
  g_source_set_callback(request->timer, retransmit, request, NULL);
  g_source_attach(request->timer, hark_context_main_context(request->udp->ctx));
}

static gboolean
transmit(Request *request, GError **error)
{
  if (!send_datagram(request->udp, request->to, request->message, error))
    return FALSE;
  gint64 now = g_get_monotonic_time();
  if (request->transmissions == 0)
    request->first_sent_us = now;
  else
    request->udp->retransmissions++;
  request->transmissions++;
  request->last_sent_us = now;
  return TRUE;
}

static gboolean
retransmit(gpointer data)
{
  Request *request = data;
  Udp *udp = request->udp;
  gint64 now = g_get_monotonic_time();
  g_clear_pointer(&request->timer, g_source_unref);
  if (g_cancellable_is_cancelled(request->cancellable)) {
    finish_later(request, NULL);
    return G_SOURCE_REMOVE;
  }
  if (now >= request->deadline_us) {
    udp->requests_timed_out++;
    g_autofree char *to = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(request->to));
    finish_later(request,
                 g_error_new(HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_TIMEOUT,
                             "udp: no answer from %s after %u transmissions in %" G_GINT64_FORMAT
                             " ms",
                             to, request->transmissions, (now - request->first_sent_us) / 1000));
    return G_SOURCE_REMOVE;
  }
  GError *error = NULL;
  if (!transmit(request, &error)) {
    finish_later(request, error);
    return G_SOURCE_REMOVE;
  }
  request->rto_ms = MIN(request->rto_ms * 2, MAX_RTO_MS);
  arm_timer(request, now);
  return G_SOURCE_REMOVE;
}

static void
complete_request(Request *request, GBytes *reply)
{
  gint64 now = g_get_monotonic_time();
  /* Karn's rule: after a retransmission we cannot know which transmission was answered;
   * measuring from the last one can only underestimate, never inflate, the RTT. */
  gint64 rtt = now - (request->transmissions == 1 ? request->first_sent_us : request->last_sent_us);
  HarkTransportAnswered answered = request->answered;
  gpointer user_data = request->user_data;
  g_hash_table_remove(request->udp->pending, request);
  answered(reply, rtt, NULL, user_data);
}

/* TRUE when datagram answered a pending request (and completed it). */
static gboolean
answer_pending(Udp *udp, GSocketAddress *from, GBytes *datagram)
{
  if (g_hash_table_size(udp->pending) == 0)
    return FALSE;
  g_autoptr(HarkWireMessage) message = hark_wire_decode(datagram, NULL);
  if (message == NULL || !hark_wire_is_answer(message->type))
    return FALSE;
  GHashTableIter iter;
  Request *request;
  g_hash_table_iter_init(&iter, udp->pending);
  while (g_hash_table_iter_next(&iter, (gpointer *)&request, NULL)) {
    if (request->id != message->id || !same_address(request->to, from))
      continue;
    /* An answer to a request that is ending (cancelled, failed) is swallowed too. */
    if (request->finisher != NULL)
      return TRUE;
    if (g_cancellable_is_cancelled(request->cancellable)) {
      finish_later(request, NULL);
      return TRUE;
    }
    complete_request(request, datagram);
    return TRUE;
  }
  return FALSE;
}

static void
request_free(gpointer data)
{
  Request *request = data;
  if (request->timer != NULL) {
    g_source_destroy(request->timer);
    g_source_unref(request->timer);
  }
  if (request->finisher != NULL) {
    g_source_destroy(request->finisher);
    g_source_unref(request->finisher);
  }
  if (request->cancellable != NULL) {
    g_cancellable_disconnect(request->cancellable, request->cancel_handler);
    g_object_unref(request->cancellable);
  }
  g_clear_error(&request->failure);
  g_object_unref(request->to);
  g_bytes_unref(request->message);
  g_free(request);
}

/* Receiving */

static gboolean
receive_ready(GSocket *socket, GIOCondition condition, gpointer data)
{
  Udp *udp = data;
  for (int i = 0; i < READS_PER_DISPATCH; i++) {
    /* One byte more than we accept, so a larger datagram shows as too large. */
    guint8 buffer[MAX_DATAGRAM + 1];
    GSocketAddress *from_raw = NULL;
    g_autoptr(GError) error = NULL;
    gssize size =
      g_socket_receive_from(socket, &from_raw, (char *)buffer, sizeof buffer, NULL, &error);
    g_autoptr(GSocketAddress) from = from_raw;
    if (size < 0) {
      if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_debug("udp: receive: %s", error->message);
      break;
    }
    udp->datagrams_in++;
    udp->bytes_in += (guint64)size;
    if (from == NULL)
      continue;
    if (!take_token(udp, from)) {
      count_drop(udp, from, "over the per-source rate");
      continue;
    }
    if (size > MAX_DATAGRAM) {
      count_drop(udp, from, "larger than 1500 bytes");
      continue;
    }
    g_autoptr(GBytes) datagram = g_bytes_new(buffer, (gsize)size);
    if (!answer_pending(udp, from, datagram))
      hark_transport_datagram_received(udp->ctx, "udp", from, datagram);
    /* A handler may have stopped listening (closed this socket). */
    if (udp->socket != socket)
      return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

/* The interface */

static gboolean
udp_listen(gpointer instance, const char *address, guint16 port, GError **error)
{
  Udp *udp = instance;
  if (udp->listening) {
    g_set_error(error, HARK_TRANSPORT_ERROR, HARK_TRANSPORT_ERROR_LISTEN,
                "udp: already listening on port %u", udp->port);
    return FALSE;
  }
  /* The ephemeral socket of earlier probes is replaced: answers still on their way to
   * it are lost, and their requests' next retransmission goes out from the new port. */
  if (!open_socket(udp, address, port, error))
    return FALSE;
  udp->listening = TRUE;
  return TRUE;
}

static void
udp_stop_listening(gpointer instance)
{
  Udp *udp = instance;
  if (udp->listening)
    close_socket(udp);
}

static guint16
udp_local_port(gpointer instance)
{
  Udp *udp = instance;
  return udp->listening ? udp->port : 0;
}

static gboolean
udp_send_to(gpointer instance, GSocketAddress *to, GBytes *datagram, GError **error)
{
  return send_datagram(instance, to, datagram, error);
}

/* Transports are called on the node's main loop, and so is cancel (the node's own code
 * cancels there); the callback may run inside g_cancellable_connect(), so it only
 * schedules the end. */
static void
on_cancelled(GCancellable *cancellable, gpointer data)
{
  finish_later(data, NULL);
}

static void
udp_request(gpointer instance, GSocketAddress *to, GBytes *message, guint64 id, guint timeout_ms,
            GCancellable *cancellable, HarkTransportAnswered answered, gpointer user_data)
{
  Udp *udp = instance;
  Request *request = g_new0(Request, 1);
  request->udp = udp;
  request->id = id;
  request->to = g_object_ref(to);
  request->message = g_bytes_ref(message);
  request->answered = answered;
  request->user_data = user_data;
  request->rto_ms = udp->initial_rto_ms;
  gint64 now = g_get_monotonic_time();
  request->deadline_us = now + (gint64)timeout_ms * 1000;
  g_hash_table_add(udp->pending, request);
  if (cancellable != NULL) {
    request->cancellable = g_object_ref(cancellable);
    request->cancel_handler =
      g_cancellable_connect(cancellable, G_CALLBACK(on_cancelled), request, NULL);
    if (request->finisher != NULL)
      return; /* already cancelled */
  }
  GError *error = NULL;
  if (!transmit(request, &error)) {
    finish_later(request, error);
    return;
  }
  arm_timer(request, now);
}

static JsonObject *
udp_stats(gpointer instance)
{
  Udp *udp = instance;
  JsonObject *o = json_object_new();
  if (udp->listening)
    json_object_set_int_member(o, "listening", udp->port);
  else
    json_object_set_null_member(o, "listening");
  json_object_set_int_member(o, "datagrams_in", (gint64)udp->datagrams_in);
  json_object_set_int_member(o, "datagrams_out", (gint64)udp->datagrams_out);
  json_object_set_int_member(o, "bytes_in", (gint64)udp->bytes_in);
  json_object_set_int_member(o, "bytes_out", (gint64)udp->bytes_out);
  json_object_set_int_member(o, "retransmissions", (gint64)udp->retransmissions);
  json_object_set_int_member(o, "dropped", (gint64)udp->dropped);
  json_object_set_int_member(o, "requests_timed_out", (gint64)udp->requests_timed_out);
  return o;
}

static const HarkTransportInterface udp_interface = {
  .version = HARK_TRANSPORT_INTERFACE_VERSION,
  .flags = HARK_TRANSPORT_DATAGRAM,
  .listen = udp_listen,
  .stop_listening = udp_stop_listening,
  .local_port = udp_local_port,
  .send_to = udp_send_to,
  .request = udp_request,
  .stats = udp_stats,
};

static void
udp_free(Udp *udp)
{
  g_hash_table_destroy(udp->pending);
  close_socket(udp);
  g_hash_table_destroy(udp->buckets);
  g_free(udp);
}

static gboolean
udp_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  static const char *const known[] = { "initial_rto_ms", "max_datagrams_per_second", NULL };
  gint64 rto, rate;
  if (!hark_settings_get_int(settings, "initial_rto_ms", 250, 1, MAX_RTO_MS, &rto, error) ||
      !hark_settings_get_int(settings, "max_datagrams_per_second", 50, 1, 1000000, &rate, error))
    return FALSE;
  hark_settings_warn_unknown(settings, "udp", known);

  Udp *udp = g_new0(Udp, 1);
  udp->ctx = ctx;
  udp->initial_rto_ms = (guint)rto;
  udp->max_per_second = (double)rate;
  /* A set: few requests are pending at once, and two may share an id. */
  udp->pending = g_hash_table_new_full(NULL, NULL, request_free, NULL);
  udp->buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  if (!hark_context_register(ctx, HARK_KIND_TRANSPORT, "udp", HARK_RANK_PRIMARY, &udp_interface,
                             udp, error)) {
    udp_free(udp);
    return FALSE;
  }
  hark_context_set_plugin_data(ctx, udp);
  return TRUE;
}

static void
udp_fini(HarkContext *ctx)
{
  /* Requests still pending end without a callback: the node is going away. */
  udp_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "udp", .version = HARK_VERSION,
                   .description = "datagram transport: probes, STUN, retransmitted requests",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_TRANSPORT, .init = udp_init,
                   .fini = udp_fini);
