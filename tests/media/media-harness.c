/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-harness.c: see media-harness.h. */
#include "media-harness.h"
#include "test-wav.h"

void
codecs_load(Codecs *c)
{
  c->node = hark_node_new(hark_config_new_default());
  const char *names[] = { "opus", "g711", "g722", "l16" };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *path = hark_node_find_plugin(c->node, names[i], &error);
    g_assert_no_error(error);
    hark_node_load_plugin_file(c->node, path, NULL, -1, &error);
    g_assert_no_error(error);
  }
  c->registrations = hark_context_lookup(hark_node_get_context(c->node), HARK_KIND_CODEC);
}

void
codecs_clear(Codecs *c)
{
  g_clear_pointer(&c->registrations, g_ptr_array_unref);
  g_clear_pointer(&c->node, hark_node_free);
}

HarkMediaCodec
codec_named(Codecs *c, const char *name, GVariant *settings)
{
  const char *const preference[] = { name, NULL };
  g_autoptr(GError) error = NULL;
  const HarkRegistration *r = hark_media_codec_choose(c->registrations, preference, &error);
  g_assert_no_error(error);
  return (HarkMediaCodec){
    .name = r->name, .iface = r->iface, .instance = r->instance, .settings = settings
  };
}

/* ---- in-memory transport ---- */

typedef struct {
  MemTransport *to;
  GBytes *packet;
} Delivery;

static gboolean
deliver(gpointer data)
{
  Delivery *d = data;
  if (!d->to->dead && d->to->func != NULL) {
    gsize n;
    const guint8 *p = g_bytes_get_data(d->packet, &n);
    d->to->func(p, n, d->to->user_data);
  }
  g_bytes_unref(d->packet);
  g_free(d);
  return G_SOURCE_REMOVE;
}

static gboolean
mem_send(gpointer impl, const guint8 *data, gsize length, GError **error)
{
  MemTransport *m = impl;
  g_mutex_lock(&m->lock);
  if (length >= 12 && !(data[1] >= 192 && data[1] <= 223))
    g_ptr_array_add(m->sent_rtp_headers, g_bytes_new(data, 12));
  MemTransport *peer = m->peer;
  guint delay = m->jitter_ms ? (guint)g_rand_int_range(m->rand, 0, m->jitter_ms + 1) : 0;
  if (m->rate > 0) {
    gint64 now = g_get_monotonic_time();
    gint64 start = MAX(now, m->busy_until);
    guint64 wire = length + MEM_TRANSPORT_IP_UDP;
    m->offered_bytes += wire;
    /* The queue holds queue_ms of bytes, and a packet enters only if all of it fits: a
     * byte-limited drop-tail queue, as tbf's (its latency makes a limit in bytes). One that
     * small RTP packets keep full nearly never has room for a larger RTCP packet. */
    if (start - now + (gint64)(wire * G_USEC_PER_SEC / m->rate) > (gint64)m->queue_ms * 1000) {
      m->dropped_bytes += wire;
      m->dropped_packets++;
      g_mutex_unlock(&m->lock);
      return TRUE; /* the queue is full: gone, as a datagram goes */
    }
    m->busy_until = start + (gint64)(wire * G_USEC_PER_SEC / m->rate);
    delay += (guint)((m->busy_until - now + 999) / 1000);
  }
  g_mutex_unlock(&m->lock);
  if (peer != NULL && delay > 0) {
    Delivery *d = g_new0(Delivery, 1);
    d->to = peer;
    d->packet = g_bytes_new(data, length);
    g_timeout_add(delay, deliver, d);
  } else if (peer != NULL) {
    mem_transport_inject(peer, data, length);
  }
  return TRUE;
}

void
mem_transport_set_jitter(MemTransport *m, guint ms, guint32 seed)
{
  g_mutex_lock(&m->lock);
  m->jitter_ms = ms;
  if (m->rand == NULL)
    m->rand = g_rand_new_with_seed(seed);
  g_mutex_unlock(&m->lock);
}

void
mem_transport_set_rate(MemTransport *m, guint bytes_per_s, guint queue_ms)
{
  g_mutex_lock(&m->lock);
  m->rate = bytes_per_s;
  m->queue_ms = queue_ms;
  g_mutex_unlock(&m->lock);
}

void
mem_transport_link_counts(MemTransport *m, guint64 *offered_bytes, guint64 *dropped_bytes,
                          guint64 *dropped_packets, guint *queue_ms)
{
  g_mutex_lock(&m->lock);
  *offered_bytes = m->offered_bytes;
  *dropped_bytes = m->dropped_bytes;
  *dropped_packets = m->dropped_packets;
  gint64 wait = m->busy_until - g_get_monotonic_time();
  *queue_ms = wait > 0 ? (guint)(wait / 1000) : 0;
  g_mutex_unlock(&m->lock);
}

void
mem_transport_inject(MemTransport *m, const guint8 *data, gsize length)
{
  Delivery *d = g_new0(Delivery, 1);
  d->to = m;
  d->packet = g_bytes_new(data, length);
  /* Always through the main loop, as a socket's packets come: g_main_context_invoke would
   * run deliver at once in a streaming thread whenever the loop is idle, racing the main
   * thread that frees the receiving session (seen under ASan). */
  g_idle_add_full(G_PRIORITY_DEFAULT, deliver, d, NULL);
}

static void
mem_start(gpointer impl, HarkMediaReceiveFunc func, gpointer user_data)
{
  MemTransport *m = impl;
  m->func = func;
  m->user_data = user_data;
}

/* Both ends are freed with the second session; deliveries still queued see dead. */
static void
mem_free(gpointer impl)
{
  MemTransport *m = impl;
  m->dead = TRUE;
  m->func = NULL;
  if (m->peer != NULL) {
    g_mutex_lock(&m->peer->lock);
    m->peer->peer = NULL;
    g_mutex_unlock(&m->peer->lock);
  }
}

static const HarkMediaTransportInterface mem_interface = {
  .version = 1,
  .send = mem_send,
  .start = mem_start,
  .free = mem_free,
  .overhead = 28,
};

void
mem_transport_pair(HarkMediaTransport **a, HarkMediaTransport **b, MemTransport **ma,
                   MemTransport **mb)
{
  /* Kept until the process ends: a delivery queued on the main loop may outlive both. */
  MemTransport *x = g_new0(MemTransport, 1), *y = g_new0(MemTransport, 1);
  x->peer = y;
  y->peer = x;
  g_mutex_init(&x->lock);
  g_mutex_init(&y->lock);
  x->sent_rtp_headers = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  y->sent_rtp_headers = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  *a = hark_media_transport_new(&mem_interface, x);
  *b = hark_media_transport_new(&mem_interface, y);
  if (ma)
    *ma = x;
  if (mb)
    *mb = y;
}

GBytes *
test_key(HarkMediaSrtpSuite suite, guint8 seed)
{
  gsize n = hark_media_srtp_key_length(suite);
  guint8 *k = g_malloc(n);
  for (gsize i = 0; i < n; i++)
    k[i] = (guint8)(seed * 31 + i * 7);
  return g_bytes_new_take(k, n);
}

static gboolean
quit_loop(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

/* The timeout points at this frame's done: it is destroyed before the frame ends, even
 * if the loop is left some other way one day. */
void
run_for(guint ms)
{
  gboolean done = FALSE;
  GSource *timeout = g_timeout_source_new(ms);
  g_source_set_callback(timeout, quit_loop, &done, NULL);
  g_source_attach(timeout, NULL);
  while (!done)
    g_main_context_iteration(NULL, TRUE);
  g_source_destroy(timeout);
  g_source_unref(timeout);
}

gboolean
run_until(gboolean (*reached)(gpointer data), gpointer data, guint max_ms)
{
  gint64 deadline = g_get_monotonic_time() + (gint64)max_ms * 1000;
  while (!reached(data)) {
    if (g_get_monotonic_time() >= deadline)
      return FALSE;
    run_for(10);
  }
  return TRUE;
}

/* ---- the received WAV, through test-wav.h ---- */

gboolean
wav_read(const char *path, Wav *wav)
{
  guint rate = 0;
  g_autoptr(GError) error = NULL;
  if (!hark_test_wav_read(path, &wav->samples, &wav->n, &rate, &error)) {
    g_test_message("%s", error->message);
    return FALSE;
  }
  return rate == 48000;
}

void
wav_clear(Wav *wav)
{
  g_clear_pointer(&wav->samples, g_free);
  wav->n = 0;
}

double
wav_dominant_hz(const Wav *wav, gsize from, gsize len)
{
  g_assert_cmpuint(from + len, <=, wav->n);
  return hark_test_wav_dominant_hz(wav->samples + from, len, 48000);
}

double
wav_rms(const Wav *wav, gsize from, gsize len)
{
  g_assert_cmpuint(from + len, <=, wav->n);
  return hark_test_wav_rms(wav->samples + from, len);
}

double
wav_longest_gap_ms(const Wav *wav, gsize from, gsize to, double threshold)
{
  to = MIN(to, wav->n);
  return from < to ? hark_test_wav_longest_gap_ms(wav->samples + from, to - from, 48000, threshold)
                   : 0;
}
