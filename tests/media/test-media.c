/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-media.c: media sessions end to end, as a listener would judge them: a tone sent
 * through a loopback session must come out at its frequency and level, over every
 * codec and transport; what cannot pass (a wrong key, >4 kHz through G.711) must not. */
#include "media-harness.h"
#include "test-files.h"
#include "test-isolate.h"
#include "test-wav.h"

#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <srtp2/srtp.h>
#include <sys/socket.h>

static Codecs codecs;
static char *tmpdir;

/* The level audiotestsrc produces at volume 0.3: 0.3 of full scale, RMS of a sine. */
#define TONE_RMS (0.3 * 32767 / G_SQRT2)

typedef struct {
  HarkMediaSession *a, *b; /* a sends the tone, b records */
  HarkMediaTransport *ta; /* a's (owned by a) */
  MemTransport *ma, *mb;
  char *wav_path;
} Pair;

typedef struct {
  const char *source; /* a's source; default tone:1000 */
  HarkMediaCodec *codecs; /* both sides; default opus */
  guint n_codecs;
  HarkMediaSrtpSuite suite;
  gboolean wrong_key;
  double loss; /* at a's transport */
  guint jitter_ms; /* a's packets delayed by 0..jitter_ms */
  gboolean udp, stream; /* instead of the in-memory pair */
  guint silence_ms; /* both sides */
  const char *sink; /* b's; default a WAV file (wav_path) */
  guint fixed_jitter_ms; /* b's jitter buffer; default adaptive */
} PairOptions;

static HarkMediaTransport *
udp_on_loopback(void)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
  g_autoptr(GError) error = NULL;
  HarkMediaTransport *t = hark_media_transport_new_udp(G_INET_SOCKET_ADDRESS(any), NULL, &error);
  g_assert_no_error(error);
  return t;
}

static void
make_transports(const PairOptions *o, HarkMediaTransport **ta, HarkMediaTransport **tb,
                MemTransport **ma, MemTransport **mb)
{
  *ma = *mb = NULL;
  if (o->udp) {
    *ta = udp_on_loopback();
    *tb = udp_on_loopback();
    g_autoptr(GInetSocketAddress) la = hark_media_transport_get_local(*ta);
    g_autoptr(GInetSocketAddress) lb = hark_media_transport_get_local(*tb);
    g_assert_true(hark_media_transport_set_remote(*ta, lb, NULL));
    g_assert_true(hark_media_transport_set_remote(*tb, la, NULL));
  } else if (o->stream) {
    int fds[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    g_autoptr(GSocket) sa = g_socket_new_from_fd(fds[0], NULL);
    g_autoptr(GSocket) sb = g_socket_new_from_fd(fds[1], NULL);
    g_autoptr(GSocketConnection) ca = g_socket_connection_factory_create_connection(sa);
    g_autoptr(GSocketConnection) cb = g_socket_connection_factory_create_connection(sb);
    *ta = hark_media_transport_new_stream(G_IO_STREAM(ca));
    *tb = hark_media_transport_new_stream(G_IO_STREAM(cb));
  } else {
    mem_transport_pair(ta, tb, ma, mb);
  }
}

static void
pair_start(Pair *p, const PairOptions *o)
{
  HarkMediaCodec opus = codec_named(&codecs, "opus", NULL);
  const HarkMediaCodec *list = o->codecs ? o->codecs : &opus;
  guint n = o->codecs ? o->n_codecs : 1;
  HarkMediaTransport *ta, *tb;
  make_transports(o, &ta, &tb, &p->ma, &p->mb);
  p->ta = ta;
  if (o->loss > 0)
    hark_media_transport_set_loss(ta, o->loss, 42);
  if (o->jitter_ms > 0)
    mem_transport_set_jitter(p->ma, o->jitter_ms, 7);
  g_autoptr(GBytes) ka = test_key(o->suite, 1);
  g_autoptr(GBytes) kb = test_key(o->suite, 2);
  g_autoptr(GBytes) wrong = test_key(o->suite, 3);
  static int count;
  p->wav_path = g_strdup_printf("%s/received-%d.wav", tmpdir, count++);
  g_autofree char *sink = g_strconcat("file:", p->wav_path, NULL);
  HarkMediaConfig ca = { .codecs = list,
                         .n_codecs = n,
                         .source = o->source ? o->source : "tone:1000",
                         .sink = "null",
                         .srtp_suite = o->suite,
                         .send_key = ka,
                         .receive_key = kb,
                         .silence_ms = o->silence_ms,
                         .transport = ta };
  HarkMediaConfig cb = { .codecs = list,
                         .n_codecs = n,
                         .source = "silence",
                         .sink = o->sink ? o->sink : sink,
                         .jitter_ms = o->fixed_jitter_ms,
                         .srtp_suite = o->suite,
                         .send_key = kb,
                         .receive_key = o->wrong_key ? wrong : ka,
                         .silence_ms = o->silence_ms,
                         .transport = tb };
  g_autoptr(GError) error = NULL;
  p->a = hark_media_session_new(&ca, &error);
  g_assert_no_error(error);
  p->b = hark_media_session_new(&cb, &error);
  g_assert_no_error(error);
  g_assert_true(hark_media_session_start(p->b, &error));
  g_assert_true(hark_media_session_start(p->a, &error));
}

static void
pair_stop(Pair *p)
{
  g_clear_pointer(&p->a, hark_media_session_free);
  g_clear_pointer(&p->b, hark_media_session_free);
}

static void
pair_clear(Pair *p)
{
  pair_stop(p);
  g_unlink(p->wav_path);
  g_free(p->wav_path);
}

/* Start a pair, let it run, read both ends' statistics and stop it (the WAV is complete). */
static void
pair_run(Pair *p, const PairOptions *o, guint ms, HarkMediaStats *sa, HarkMediaStats *sb)
{
  pair_start(p, o);
  run_for(ms);
  hark_media_session_get_stats(p->a, sa);
  hark_media_session_get_stats(p->b, sb);
  pair_stop(p);
}

/* Send a tone for 2 s and listen to the last second of what arrived. */
static void
check_tone(const char *codec, double hz, gboolean expect_through, const PairOptions *extra)
{
  PairOptions o = extra ? *extra : (PairOptions){ 0 };
  HarkMediaCodec c = codec_named(&codecs, codec, NULL);
  o.codecs = &c;
  o.n_codecs = 1;
  g_autofree char *source = g_strdup_printf("tone:%g", hz);
  o.source = source;
  Pair p = { 0 };
  HarkMediaStats sa, sb;
  pair_run(&p, &o, 2000, &sa, &sb);
  g_test_message("%s %g Hz: a sent %" G_GUINT64_FORMAT " packets, b got %" G_GUINT64_FORMAT
                 " RTP, played %" G_GUINT64_FORMAT " samples, srtp drops %" G_GUINT64_FORMAT,
                 codec, hz, sa.packets_sent, sb.rtp_received, sb.played_samples, sb.dropped_srtp);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  /* At least 1.5 s of the 2 s arrived (start-up: pipelines, jitter buffer). */
  g_assert_cmpuint(wav.n, >, 48000 * 3 / 2);
  gsize from = wav.n - 48000, len = 48000 / 2;
  double rms = wav_rms(&wav, from, len);
  double db = 20 * log10(rms / TONE_RMS);
  if (expect_through) {
    double got = wav_dominant_hz(&wav, from, len);
    g_test_message("%s: sent %g Hz, received %g Hz at %.1f dB", codec, hz, got, db);
    g_assert_cmpfloat(fabs(got - hz), <=, 20);
    g_assert_cmpfloat(fabs(db), <=, 3);
  } else {
    g_test_message("%s: sent %g Hz, received %.1f dB (should be gone)", codec, hz, db);
    g_assert_cmpfloat(db, <, -30);
  }
  wav_clear(&wav);
  pair_clear(&p);
}

static void
test_tone_opus(void)
{
  check_tone("opus", 1000, TRUE, NULL);
}
static void
test_tone_pcmu(void)
{
  check_tone("pcmu", 1000, TRUE, NULL);
}
static void
test_tone_pcma(void)
{
  check_tone("pcma", 1000, TRUE, NULL);
}
static void
test_tone_g722(void)
{
  check_tone("g722", 1000, TRUE, NULL);
}
static void
test_tone_l16(void)
{
  check_tone("l16", 1000, TRUE, NULL);
}
static void
test_band_pcmu(void)
{
  check_tone("pcmu", 5000, FALSE, NULL);
}
static void
test_band_opus(void)
{
  check_tone("opus", 5000, TRUE, NULL);
}

static void
test_tone_udp_cm(void)
{
  PairOptions o = { .udp = TRUE, .suite = HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80 };
  check_tone("opus", 700, TRUE, &o);
}

static void
test_tone_stream(void)
{
  PairOptions o = { .stream = TRUE, .suite = HARK_MEDIA_SRTP_AEAD_AES_256_GCM };
  check_tone("pcma", 1200, TRUE, &o);
}

static gboolean
fifty_packets_received(gpointer session)
{
  HarkMediaStats st;
  hark_media_session_get_stats(session, &st);
  return st.packets_received > 50;
}

/* A wrong receive key: not one sample is played, and the drops are counted. Judged once
 * 50 packets (1 s of them) have come, however long a loaded machine takes to send them. */
static void
test_wrong_key(void)
{
  PairOptions o = { .wrong_key = TRUE };
  Pair p = { 0 };
  pair_start(&p, &o);
  g_assert_true(run_until(fifty_packets_received, p.b, 15000));
  HarkMediaStats sb;
  hark_media_session_get_stats(p.b, &sb);
  g_test_message("wrong key: %" G_GUINT64_FORMAT " received, %" G_GUINT64_FORMAT
                 " dropped by SRTP, %" G_GUINT64_FORMAT " played",
                 sb.packets_received, sb.dropped_srtp, sb.played_samples);
  g_assert_cmpuint(sb.packets_received, >, 50);
  g_assert_cmpuint(sb.dropped_srtp, >=, sb.packets_received - 2);
  g_assert_cmpuint(sb.rtp_received, ==, 0);
  g_assert_cmpuint(sb.played_samples, ==, 0);
  pair_stop(&p);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_assert_cmpuint(wav.n, ==, 0);
  wav_clear(&wav);
  pair_clear(&p);
}

/* Opus that may lower its bitrate to 14 kbit/s under loss (from its 20). */
static HarkMediaCodec
opus_min_14000(void)
{
  GVariantDict d;
  g_variant_dict_init(&d, NULL);
  g_variant_dict_insert(&d, "min_bitrate", "x", (gint64)14000);
  return codec_named(&codecs, "opus", g_variant_dict_end(&d));
}

/* 10% of a's packets lost on the way: b keeps playing the tone, counts the loss and
 * conceals or rebuilds each lost frame; a hears of the loss through RTCP, and Opus
 * switches FEC on and raises its bitrate to fec_bitrate (28 kbit/s) to carry it (random
 * loss: the round trip stays flat). */
static void
test_loss(void)
{
  HarkMediaCodec c = opus_min_14000();
  PairOptions o = { .loss = 0.10, .codecs = &c, .n_codecs = 1 };
  Pair p = { 0 };
  HarkMediaStats sa, sb;
  pair_run(&p, &o, 6000, &sa, &sb);
  JsonObject *ja = hark_media_stats_to_json(&sa);
  g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), ja);
  g_autofree char *text = json_to_string(node, FALSE);
  json_object_unref(ja);
  g_test_message("sender: %s", text);
  g_test_message("receiver: lost %" G_GINT64_FORMAT ", concealed %" G_GUINT64_FORMAT
                 ", played %" G_GUINT64_FORMAT,
                 sb.lost, sb.concealed_samples, sb.played_samples);
  /* Ranges, not counts: how many packets flowed in 6 s of real time depends on the
   * machine. ~30 of ~300 lost; each lost 20 ms frame concealed. */
  g_assert_cmpint(sb.lost, >=, 10);
  g_assert_cmpuint(sb.concealed_samples, >=, 10 * 960);
  g_assert_cmpfloat(sa.remote_loss_fraction, >, 0.02);
  g_assert_cmpfloat(sa.rtt_ms, >=, 0);
  /* Raised by the first lossy receiver report (about a second in). */
  g_assert_cmpint(sa.encoder_bitrate, ==, 28000);
  /* FEC on (the loss is above 2%), and what went on the wire over the last 5 s: the
   * encoder's 20-28 kbit/s plus 22 bytes of RTP header and SRTP tag per packet at 50 a
   * second (8.8 kbit/s) and RTCP; the receiver got about 90% of that. */
  g_assert_true(sa.fec);
  g_assert_cmpfloat(sa.send_bitrate, >, 20000 + 8800 * 0.8);
  g_assert_cmpfloat(sa.send_bitrate, <, 28000 * 1.4 + 8800 * 1.2);
  g_assert_cmpfloat(sb.receive_bitrate, <, sa.send_bitrate);
  g_assert_cmpfloat(sb.receive_bitrate, >, sa.send_bitrate * 0.7);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_assert_cmpuint(wav.n, >, 48000 * 5);
  /* The tone is there in every half second of the last four. */
  for (gsize at = wav.n - 4 * 48000; at + 24000 <= wav.n; at += 24000)
    g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, at, 24000) - 1000), <=, 20);
  wav_clear(&wav);
  pair_clear(&p);
}

/* 10% of a's packets lost, no jitter at all: b conceals the lost frames, and its jitter
 * buffer does not grow for them. The jitter buffer gives a lost packet up at its deadline,
 * so the concealment, and the next packet Opus recovers the loss from, reach the sink
 * late by construction; taken for network jitter they grew the buffer by 5 ms or more a
 * loss, to its 200 ms ceiling within seconds (mouth to ear 63 -> 225 ms in make bench),
 * where baresip kept its delay. The bound leaves room for the stalls of a loaded machine,
 * which the policy does follow (a few close calls), not for 30-odd losses. */
static void
test_loss_keeps_delay(void)
{
  PairOptions o = { .loss = 0.10 };
  Pair p = { 0 };
  HarkMediaStats sa, sb;
  pair_run(&p, &o, 8000, &sa, &sb);
  g_test_message("10%% loss: lost %" G_GINT64_FORMAT ", concealed %" G_GUINT64_FORMAT
                 " samples, late packets %" G_GUINT64_FORMAT ", late buffers %" G_GUINT64_FORMAT
                 ", jitter buffer %u ms",
                 sb.lost, sb.concealed_samples, sb.late_packets, sb.late_buffers,
                 sb.jitter_buffer_ms);
  g_assert_cmpint(sb.lost, >=, 15);
  g_assert_cmpuint(sb.concealed_samples, >=, 15 * 960);
  g_assert_cmpuint(sb.jitter_buffer_ms, <=, 90);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  for (gsize at = wav.n - 4 * 48000; at + 24000 <= wav.n; at += 24000)
    g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, at, 24000) - 1000), <=, 20);
  wav_clear(&wav);
  pair_clear(&p);
}

typedef struct {
  HarkMediaSession *session;
  gboolean fec;
  gint bitrate_below, bitrate_at_least;
} AdaptWanted;

static gboolean
adapted(gpointer data)
{
  AdaptWanted *w = data;
  HarkMediaStats st;
  hark_media_session_get_stats(w->session, &st);
  return st.fec == w->fec && st.encoder_bitrate < w->bitrate_below &&
         st.encoder_bitrate >= w->bitrate_at_least;
}

/* Opus follows the far end's reports both ways: under 10% loss FEC comes on and the
 * bitrate goes up to fec_bitrate for it; when the loss clears FEC goes off and the
 * bitrate is back at the configured 20 kbit/s. Waited for by state, not time: reports
 * come about once a second. */
static void
test_loss_adapts_and_recovers(void)
{
  HarkMediaCodec c = opus_min_14000();
  PairOptions o = { .loss = 0.10, .codecs = &c, .n_codecs = 1 };
  Pair p = { 0 };
  pair_start(&p, &o);
  AdaptWanted lossy = { p.a, TRUE, 28001, 28000 };
  gint64 started = g_get_monotonic_time();
  g_assert_true(run_until(adapted, &lossy, 10000));
  g_test_message("10%% loss: FEC on and the bitrate raised for it after %.1f s",
                 (g_get_monotonic_time() - started) / 1e6);
  /* Random loss (no queue: the round trip stays flat) is no reason for longer packets. */
  HarkMediaStats st;
  hark_media_session_get_stats(p.a, &st);
  g_assert_cmpuint(st.ptime_ms, ==, 20);
  hark_media_transport_set_loss(p.ta, 0, 1);
  AdaptWanted clear = { p.a, FALSE, 20001, 20000 };
  started = g_get_monotonic_time();
  g_assert_true(run_until(adapted, &clear, 15000));
  g_test_message("loss cleared: FEC off and back at 20 kbit/s after %.1f s",
                 (g_get_monotonic_time() - started) / 1e6);
  pair_clear(&p);
}

/* ---- what the engine tells the codec ---- */

/* Opus with its adapt() watched: each encoder's feedback, in the order handed over,
 * before Opus's own adapt() reads it. */
static const HarkCodecInterface *spied_opus;
static GHashTable *sent_by_encoder; /* GObject * -> GArray of HarkCodecFeedback */

static void
spy_adapt(gpointer instance, GObject *encoder, GVariant *settings, const HarkCodecFeedback *fb)
{
  GArray *sent = g_hash_table_lookup(sent_by_encoder, encoder);
  if (sent == NULL) {
    sent = g_array_new(FALSE, FALSE, sizeof(HarkCodecFeedback));
    g_hash_table_insert(sent_by_encoder, encoder, sent);
  }
  if (fb->missed_s == 0)
    g_array_append_val(sent, *fb);
  spied_opus->adapt(instance, encoder, settings, fb);
}

static gboolean
both_reported(gpointer data)
{
  (void)data;
  if (g_hash_table_size(sent_by_encoder) != 2)
    return FALSE;
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, sent_by_encoder);
  while (g_hash_table_iter_next(&it, NULL, &value))
    if (((GArray *)value)->len < 5)
      return FALSE;
  return TRUE;
}

static gint
compare_doubles(gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double
median(GArray *values)
{
  g_assert_cmpuint(values->len, >, 0);
  g_array_sort(values, compare_doubles);
  return g_array_index(values, double, values->len / 2);
}

/* The median of what one encoder's feedback said it sent, after the first (which cannot
 * know: nothing was measured before it). */
static double
median_sent(GArray *feedback)
{
  g_assert_cmpfloat(g_array_index(feedback, HarkCodecFeedback, 0).sent_bitrate, <, 0);
  g_autoptr(GArray) later = g_array_new(FALSE, FALSE, sizeof(double));
  for (guint i = 1; i < feedback->len; i++) {
    double sent = g_array_index(feedback, HarkCodecFeedback, i).sent_bitrate;
    g_assert_cmpfloat(sent, >, 0);
    g_array_append_val(later, sent);
  }
  return median(later);
}

/* The median share of what one encoder sent that its feedback said arrived, over the
 * feedback that knew both (the far end's first receive report tells no rate). */
static double
median_arrived(GArray *feedback)
{
  g_autoptr(GArray) shares = g_array_new(FALSE, FALSE, sizeof(double));
  for (guint i = 0; i < feedback->len; i++) {
    const HarkCodecFeedback *fb = &g_array_index(feedback, HarkCodecFeedback, i);
    double share = fb->received_bitrate / fb->sent_bitrate;
    if (fb->sent_bitrate > 0 && fb->received_bitrate >= 0)
      g_array_append_val(shares, share);
  }
  g_assert_cmpuint(shares->len, >=, 3);
  return median(shares);
}

/* A pair of Opus sessions, a's packets lost at loss on the way, run with Opus's adapt()
 * watched until each encoder has had 5 feedbacks; *low and *high: the least and the
 * most of the two encoders' figure (figure_of reads one encoder's feedback). */
static void
run_spied(double loss, double (*figure_of)(GArray *feedback), double *low, double *high)
{
  HarkMediaCodec c = codec_named(&codecs, "opus", NULL);
  HarkCodecInterface spy = *c.iface;
  spied_opus = c.iface;
  spy.adapt = spy_adapt;
  c.iface = &spy;
  sent_by_encoder = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_array_unref);
  PairOptions o = { .codecs = &c, .n_codecs = 1, .loss = loss };
  Pair p = { 0 };
  pair_start(&p, &o);
  g_assert_true(run_until(both_reported, NULL, 15000));
  pair_stop(&p);
  *low = G_MAXDOUBLE;
  *high = 0;
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, sent_by_encoder);
  while (g_hash_table_iter_next(&it, NULL, &value)) {
    double figure = figure_of(value);
    *low = MIN(*low, figure);
    *high = MAX(*high, figure);
  }
  g_clear_pointer(&sent_by_encoder, g_hash_table_unref);
  pair_clear(&p);
}

/* The engine tells the codec what its stream really sent (HarkCodecFeedback.sent_bitrate,
 * SRTP and SRTCP bit/s since the feedback before): Opus's ladder climbs only on reports
 * of a stream that used its rung, so a figure that did not tell a tone at 20 kbit/s
 * (about 20 + 50 x 22 bytes of RTP and SRTP headers a second) from digital silence,
 * which VBR codes in a few bytes a frame, would let silence climb a narrow link. */
static void
test_feedback_says_what_was_sent(void)
{
  double quiet, tone;
  run_spied(0, median_sent, &quiet, &tone);
  g_test_message("sent: the tone %.0f bit/s, the silence %.0f bit/s", tone, quiet);
  g_assert_cmpfloat(tone, >, 20000 + 50 * 22 * 8 * 0.8);
  g_assert_cmpfloat(tone, <, 20000 * 2);
  g_assert_cmpfloat(quiet, <, tone * 0.7);
}

/* The far end says what arrived of the stream (HarkCodecFeedback.received_bitrate, from
 * its receive reports): with 30 % of a's packets dropped on the way, a's feedback says
 * about 70 % of what it sent arrived, and b's (nothing dropped) all of it. A figure that
 * echoed what was sent, or that the link's loss did not reach, would let Opus's ladder
 * climb past the link's rate (codecs/opus/opus-adapt.c, the ceiling). */
static void
test_feedback_says_what_arrived(void)
{
  double lossy, whole;
  run_spied(0.3, median_arrived, &lossy, &whole);
  g_test_message("arrived: %.2f of what a sent through 30 %% loss, %.2f of b's", lossy, whole);
  g_assert_cmpfloat(lossy, >, 0.55);
  g_assert_cmpfloat(lossy, <, 0.85);
  g_assert_cmpfloat(whole, >, 0.9);
  g_assert_cmpfloat(whole, <, 1.1);
}

/* ---- a link too narrow for the stream ---- */

#define NARROW_RATE 1500 /* bytes/s each way: the paper's link where Skype broke up */
#define NARROW_QUEUE_MS 500 /* the lab's tbf: latency 500ms */

typedef struct {
  Pair *p;
  gint64 calm_since; /* no drop, and a short queue, since */
  guint64 dropped;
} NarrowWatch;

/* a sending source to b, over the narrow link each way. */
static void
narrow_start(Pair *p, const char *source)
{
  PairOptions o = { .source = source };
  pair_start(p, &o);
  mem_transport_set_rate(p->ma, NARROW_RATE, NARROW_QUEUE_MS);
  mem_transport_set_rate(p->mb, NARROW_RATE, NARROW_QUEUE_MS);
}

/* a has lengthened its packets and lowered its bitrate, and its link has dropped nothing
 * and queued little for 5 s: the stream fits. */
static gboolean
narrow_settled(gpointer data)
{
  NarrowWatch *w = data;
  HarkMediaStats st;
  hark_media_session_get_stats(w->p->a, &st);
  guint64 offered, dropped_bytes, dropped;
  guint queue;
  mem_transport_link_counts(w->p->ma, &offered, &dropped_bytes, &dropped, &queue);
  gint64 now = g_get_monotonic_time();
  if (dropped != w->dropped || queue > 300) {
    w->dropped = dropped;
    w->calm_since = now;
  }
  return st.ptime_ms > 20 && st.encoder_bitrate < 20000 && now - w->calm_since >= 5 * G_USEC_PER_SEC;
}

/* A link of 1.5 KB/s each way (a tbf's queue: packets wait, and beyond 500 ms of waiting
 * are dropped). At 20 ms packets the headers alone are 2.5 KB/s: no bitrate fits. Opus
 * must see the queue in the round trip, turn FEC off, drop the bitrate, lengthen the
 * packets, and settle where the stream fits: what it then offers the link is at most the
 * link's rate, nothing is dropped, and b hears the 440 Hz tone throughout. */
static void
test_narrow_link(void)
{
  Pair p = { 0 };
  /* A tone within SILK's pitch range (about 55-500 Hz), which it codes exactly at
   * 6 kbit/s in narrowband; 1 kHz came through the lab's link at up to 1022 Hz. */
  narrow_start(&p, "tone:440");
  gint64 started = g_get_monotonic_time();
  guint64 offered0, dropped_bytes0, dropped0, offered1, dropped_bytes1, dropped1;
  guint queue;
  run_for(3000);
  mem_transport_link_counts(p.ma, &offered0, &dropped_bytes0, &dropped0, &queue);
  double before = offered0 * 1e6 / (g_get_monotonic_time() - started);
  g_test_message("first 3 s: a offered %.0f bytes/s, %" G_GUINT64_FORMAT " packets dropped",
                 before, dropped0);
  g_assert_cmpfloat(before, >, NARROW_RATE); /* the configured stream does not fit */
  NarrowWatch w = { &p, g_get_monotonic_time(), dropped0 };
  g_assert_true(run_until(narrow_settled, &w, 75000 - 3000 - 6000));
  gint64 settled = g_get_monotonic_time();
  /* What a offers the link once settled, over 5 s. */
  HarkMediaStats sa0, sb0, sa, sb;
  hark_media_session_get_stats(p.a, &sa0);
  hark_media_session_get_stats(p.b, &sb0);
  mem_transport_link_counts(p.ma, &offered0, &dropped_bytes0, &dropped0, &queue);
  run_for(5000);
  mem_transport_link_counts(p.ma, &offered1, &dropped_bytes1, &dropped1, &queue);
  double after = (offered1 - offered0) * 1e6 / (g_get_monotonic_time() - settled);
  hark_media_session_get_stats(p.a, &sa);
  hark_media_session_get_stats(p.b, &sb);
  guint64 sent = sa.packets_sent - sa0.packets_sent;
  g_test_message("calm from %.1f s on: %u ms packets at %d bit/s, FEC %s; a offers %.0f "
                 "bytes/s, %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                 " packets dropped in 5 s; b concealed %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                 " samples in them",
                 (settled - started) / 1e6 - 5, sa.ptime_ms, sa.encoder_bitrate,
                 sa.fec ? "on" : "off", after, dropped1 - dropped0, sent,
                 sb.concealed_samples - sb0.concealed_samples,
                 sb.played_samples - sb0.played_samples);
  g_assert_cmpuint(sa.ptime_ms, >=, 60);
  g_assert_cmpint(sa.encoder_bitrate, <=, 12000);
  g_assert_false(sa.fec);
  g_assert_cmpfloat(after, <=, NARROW_RATE);
  /* The queue keeps up with what is offered: none dropped on a quiet machine; a loaded
   * one that holds the sender up and then sends what waited at once can overflow the
   * 500 ms queue (2 of about 50 once, with 3 suites run on 2 cores). Before settling it
   * was two packets of three. */
  g_assert_cmpuint((dropped1 - dropped0) * 20, <=, sent);
  /* b played on: at most 5% of what it played in those 5 s made up. */
  g_assert_cmpuint(sb.played_samples - sb0.played_samples, >, 4 * 48000);
  g_assert_cmpuint((sb.concealed_samples - sb0.concealed_samples) * 20, <=,
                   sb.played_samples - sb0.played_samples);
  pair_stop(&p);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  /* The tone in every half second of the last four. */
  for (gsize at = wav.n - 4 * 48000; at + 24000 <= wav.n; at += 24000)
    g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, at, 24000) - 440), <=, 20);
  wav_clear(&wav);
  pair_clear(&p);
}

/* The same link with both ends silent, as a call is before anyone speaks: 20 ms packets
 * of silence are small, an RTCP report is larger, and the byte-limited queue they keep
 * full has no room for it, so neither end hears a report (in make bench none came in
 * 40 s, and the ends stayed at 20 ms packets). Each end must step down on the missing
 * reports alone, until reports pass again and both settle where their stream fits. */
static void
test_narrow_reports_lost(void)
{
  Pair p = { 0 };
  narrow_start(&p, "silence");
  gint64 started = g_get_monotonic_time();
  NarrowWatch w = { &p, started, 0 };
  g_assert_true(run_until(narrow_settled, &w, 60000));
  HarkMediaStats sa, sb;
  hark_media_session_get_stats(p.a, &sa);
  hark_media_session_get_stats(p.b, &sb);
  g_test_message("calm from %.1f s on: a at %u ms packets and %d bit/s, b at %u ms and %d",
                 (g_get_monotonic_time() - started) / 1e6 - 5, sa.ptime_ms, sa.encoder_bitrate,
                 sb.ptime_ms, sb.encoder_bitrate);
  g_assert_cmpuint(sa.ptime_ms, >=, 60);
  g_assert_cmpuint(sb.ptime_ms, >=, 60);
  g_assert_false(sa.fec);
  g_assert_false(sb.fec);
  pair_clear(&p);
}

/* Network jitter of 0-60 ms on a's packets: b's jitter buffer starts at one frame
 * (20 ms), loses the packets that come too late at first, grows until they fit, and then
 * plays the tone without concealing: the delay it reports grew, and it stays within its
 * bounds. "Without concealing" is a 3 s stretch with at most two frames concealed, found
 * among the first four after 6 s: on a loaded machine (the suites run beside each other,
 * under ASan) the scheduler adds stalls of its own that the buffer then grows for, and a
 * later stretch is calm again. A buffer that does not adapt conceals in every stretch. */
static void
test_adaptive_jitter(void)
{
  PairOptions o = { .jitter_ms = 60 };
  Pair p = { 0 };
  pair_start(&p, &o);
  HarkMediaStats first, settled, end;
  run_for(1000);
  hark_media_session_get_stats(p.b, &first);
  run_for(5000);
  hark_media_session_get_stats(p.b, &settled);
  guint64 concealed_in_stretch = G_MAXUINT64;
  for (int stretch = 0; stretch < 4 && concealed_in_stretch > 2 * 960; stretch++) {
    if (stretch > 0)
      settled = end;
    run_for(3000);
    hark_media_session_get_stats(p.b, &end);
    concealed_in_stretch = end.concealed_samples - settled.concealed_samples;
    g_test_message("stretch %d: %" G_GUINT64_FORMAT " samples concealed, buffer %u ms", stretch + 1,
                   concealed_in_stretch, end.jitter_buffer_ms);
  }
  pair_stop(&p);
  g_test_message("jitter 0-60 ms: jitter buffer %u ms after 1 s, %u after 6 s, %u at the end; "
                 "concealed %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT
                 " samples; late packets %" G_GUINT64_FORMAT ", late buffers %" G_GUINT64_FORMAT
                 "; RTCP jitter %.1f ms",
                 first.jitter_buffer_ms, settled.jitter_buffer_ms, end.jitter_buffer_ms,
                 first.concealed_samples, settled.concealed_samples, end.concealed_samples,
                 end.late_packets, end.late_buffers, end.jitter_ms);
  g_assert_cmpuint(settled.jitter_buffer_ms, >=, 50);
  g_assert_cmpuint(end.jitter_buffer_ms, <=, 200);
  /* Settled: at most two frames concealed in a 3 s stretch (150 frames). */
  g_assert_cmpuint(concealed_in_stretch, <=, 2 * 960);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_assert_cmpuint(wav.n, >, 48000 * 7);
  for (gsize at = wav.n - 3 * 48000; at + 24000 <= wav.n; at += 24000)
    g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, at, 24000) - 1000), <=, 20);
  /* The two frames a calm stretch may conceal are its longest possible gap (concealment
   * fades a lost frame out: 15 ms were measured under stress-ng with two concealed). */
  g_assert_cmpfloat(wav_longest_gap_ms(&wav, wav.n - 3 * 48000, wav.n, TONE_RMS / 10), <=, 2 * 20);
  wav_clear(&wav);
  pair_clear(&p);
}

static gboolean
two_keepalives_sent(gpointer session)
{
  HarkMediaStats st;
  hark_media_session_get_stats(session, &st);
  return st.keepalives_sent >= 2;
}

static gboolean
two_keepalives_received(gpointer session)
{
  HarkMediaStats st;
  hark_media_session_get_stats(session, &st);
  return st.keepalives_received >= 2;
}

/* Hold: media stops but a keep-alive leaves every 3 s; resuming brings the tone back.
 * The keep-alives are waited for by count and their timing judged against the time
 * they took (never before 6 s for two), rather than counted after a fixed 6.5 s that a
 * loaded machine's late buffers could push the second one past. */
static void
test_hold(void)
{
  Pair p = { 0 };
  PairOptions o = { 0 };
  pair_start(&p, &o);
  run_for(1000);
  HarkMediaStats before, during, after, sb;
  hark_media_session_get_stats(p.a, &before);
  gint64 held = g_get_monotonic_time();
  hark_media_session_set_hold(p.a, TRUE);
  g_assert_true(run_until(two_keepalives_sent, p.a, 15000));
  gint64 took = g_get_monotonic_time() - held;
  g_assert_true(run_until(two_keepalives_received, p.b, 5000));
  hark_media_session_get_stats(p.a, &during);
  hark_media_session_get_stats(p.b, &sb);
  hark_media_session_set_hold(p.a, FALSE);
  run_for(1000);
  hark_media_session_get_stats(p.a, &after);
  g_test_message("hold: %" G_GUINT64_FORMAT " packets in %.2f s (RTCP included), %" G_GUINT64_FORMAT
                 " keep-alives sent, %" G_GUINT64_FORMAT " received",
                 during.packets_sent - before.packets_sent, took / 1e6, during.keepalives_sent,
                 sb.keepalives_received);
  g_assert_true(during.on_hold);
  g_assert_cmpint(took, >=, 6 * G_USEC_PER_SEC);
  /* Exactly two: the third is not due until 3 s after the second, which just left. */
  g_assert_cmpuint(during.keepalives_sent, ==, 2);
  g_assert_cmpuint(sb.keepalives_received, ==, 2);
  /* 325 without hold; what remains is RTCP (about one a second) and the keep-alives. */
  g_assert_cmpuint(during.packets_sent - before.packets_sent, <, 20);
  g_assert_cmpuint(after.packets_sent - during.packets_sent, >, 40);
  pair_clear(&p);
}

/* Mute: the far end hears silence while muted (the packets keep coming) and the tone
 * again after. Where the mute falls in the received WAV is known from b's count of
 * played samples (the WAV is exactly what was played) at the moments a was muted and
 * unmuted; 200 ms on either side are left for what was on the way. */
static void
test_mute(void)
{
  Pair p = { 0 };
  PairOptions o = { 0 };
  pair_start(&p, &o);
  run_for(1000);
  HarkMediaStats before, during, sb;
  hark_media_session_get_stats(p.a, &before);
  hark_media_session_get_stats(p.b, &sb);
  guint64 muted_at = sb.played_samples;
  hark_media_session_set_mute(p.a, TRUE);
  run_for(1200);
  hark_media_session_get_stats(p.a, &during);
  hark_media_session_get_stats(p.b, &sb);
  guint64 unmuted_at = sb.played_samples;
  hark_media_session_set_mute(p.a, FALSE);
  run_for(1200);
  HarkMediaStats after;
  hark_media_session_get_stats(p.a, &after);
  pair_stop(&p);
  g_assert_false(before.muted);
  g_assert_true(during.muted);
  g_assert_false(after.muted);
  /* 60 packets in 1.2 s: muted audio still flows. */
  g_assert_cmpuint(during.packets_sent - before.packets_sent, >, 40);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_test_message("mute: played %" G_GUINT64_FORMAT " samples at mute, %" G_GUINT64_FORMAT
                 " at unmute, %zu in all",
                 muted_at, unmuted_at, wav.n);
  g_assert_cmpuint(unmuted_at, >, muted_at + 48000 * 6 / 10);
  g_assert_cmpuint(wav.n, >, unmuted_at + 48000 * 6 / 10);
  gsize quiet_from = muted_at + 48000 / 5, quiet_len = unmuted_at - quiet_from;
  double quiet = wav_rms(&wav, quiet_from, quiet_len);
  g_test_message("mute: RMS %.1f while muted (the tone is %.0f)", quiet, TONE_RMS);
  g_assert_cmpfloat(quiet, <, TONE_RMS / 100);
  /* The tone before the mute and after the unmute. */
  g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, muted_at - 24000, 24000) - 1000), <=, 20);
  gsize back = unmuted_at + 48000 / 5;
  g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, back, wav.n - back) - 1000), <=, 20);
  g_assert_cmpfloat(wav_rms(&wav, back, wav.n - back), >, TONE_RMS / 2);
  wav_clear(&wav);
  pair_clear(&p);
}

typedef struct {
  guint silent;
  gint64 at;
  GString *digits;
} Heard;

static void
on_silent(gpointer data, guint silence_ms)
{
  Heard *h = data;
  h->silent++;
  h->at = g_get_monotonic_time();
  g_test_message("silent after %u ms", silence_ms);
}

static void
on_dtmf(gpointer data, char digit)
{
  Heard *h = data;
  g_string_append_c(h->digits, digit);
}

static void
listen_to(HarkMediaSession *s, Heard *h)
{
  static const HarkMediaSessionEvents events = { .version = 1,
                                                 .silent = on_silent,
                                                 .dtmf = on_dtmf };
  h->digits = g_string_new(NULL);
  hark_media_session_set_events(s, &events, h);
}

static gboolean
heard_silent(gpointer data)
{
  return ((Heard *)data)->silent > 0;
}

static gboolean
heard_silent_twice(gpointer data)
{
  return ((Heard *)data)->silent > 1;
}

/* A stranger's packets, every 20 ms: RTP and RTCP headers that look right, with
 * payloads no key made. */
typedef struct {
  MemTransport *to;
  HarkMediaSession *victim;
  guint sent;
} Stranger;

static gboolean
inject_forged(gpointer data)
{
  Stranger *st = data;
  guint16 seq = st->sent++;
  guint8 packet[60];
  memset(packet, 0x5a, sizeof packet);
  packet[0] = 0x80;
  packet[1] = (seq & 1) ? 111 : 200; /* Opus RTP, or an RTCP sender report */
  packet[2] = seq >> 8, packet[3] = seq & 0xff;
  if (packet[1] == 200)
    packet[2] = 0, packet[3] = 6; /* a length that fits */
  mem_transport_inject(st->to, packet, sizeof packet);
  return G_SOURCE_CONTINUE;
}

static gboolean
stranger_all_refused(gpointer data)
{
  Stranger *st = data;
  HarkMediaStats stats;
  hark_media_session_get_stats(st->victim, &stats);
  return stats.dropped_srtp >= st->sent;
}

/* The far end's transport stops (every packet it sends lost): `silent` fires once after
 * silence_ms, not again while it stays silent, and again only after packets came back
 * and stopped once more. A stranger sending forged packets all along does not keep the
 * call alive: only what passes SRTP counts. */
static void
test_silent(void)
{
  PairOptions o = { .silence_ms = 1000 };
  Pair p = { 0 };
  pair_start(&p, &o);
  Heard h = { 0 };
  listen_to(p.b, &h);
  run_for(1500);
  g_assert_cmpuint(h.silent, ==, 0);
  gint64 stopped = g_get_monotonic_time();
  hark_media_transport_set_loss(p.ta, 1.0, 1);
  Stranger stranger = { .to = p.mb, .victim = p.b };
  guint forging = g_timeout_add(20, inject_forged, &stranger);
  g_assert_true(run_until(heard_silent, &h, 5000));
  g_source_remove(forging);
  /* The stranger's packets kept coming through the silence (fewer than one per 20 ms when
   * the loaded machine runs the loop late: 12 in a CI run), and every one was refused. */
  g_test_message("the stranger sent %u packets before silent fired", stranger.sent);
  g_assert_cmpuint(stranger.sent, >=, 5);
  g_assert_true(run_until(stranger_all_refused, &stranger, 2000));
  HarkMediaStats sb;
  hark_media_session_get_stats(p.b, &sb);
  g_assert_cmpuint(sb.dropped_srtp, ==, stranger.sent);
  gint64 took = (h.at - stopped) / 1000;
  g_test_message("silent: fired %" G_GINT64_FORMAT " ms after the far end stopped", took);
  /* silence_ms after the last packet heard, which is decrypted as it arrives: up to a
   * packet time (and the loaded machine's scheduling) before the transport stopped. */
  g_assert_cmpint(took, >=, 1000 - 60);
  g_assert_cmpint(took, <, 2000);
  run_for(1500);
  g_assert_cmpuint(h.silent, ==, 1);
  hark_media_transport_set_loss(p.ta, 0, 1);
  run_for(500);
  g_assert_cmpuint(h.silent, ==, 1);
  hark_media_transport_set_loss(p.ta, 1.0, 1);
  g_assert_true(run_until(heard_silent_twice, &h, 5000));
  g_string_free(h.digits, TRUE);
  pair_clear(&p);
}

/* On hold the far end sends no media, only keep-alives (and RTCP): that is not silence,
 * even over several silence_ms. */
static void
test_silent_not_on_hold(void)
{
  PairOptions o = { .silence_ms = 1500 };
  Pair p = { 0 };
  pair_start(&p, &o);
  Heard h = { 0 };
  listen_to(p.b, &h);
  run_for(500);
  hark_media_session_set_hold(p.a, TRUE);
  g_assert_true(run_until(two_keepalives_received, p.b, 15000));
  HarkMediaStats sb;
  hark_media_session_get_stats(p.b, &sb);
  g_assert_cmpuint(sb.keepalives_received, >=, 2);
  g_assert_cmpuint(h.silent, ==, 0);
  /* The far end really gone while held: now it fires. */
  hark_media_transport_set_loss(p.ta, 1.0, 1);
  g_assert_true(run_until(heard_silent, &h, 5000));
  g_string_free(h.digits, TRUE);
  pair_clear(&p);
}

/* Read the RTP header fields the sender put on the wire (they are not encrypted). */
static void
header_fields(GBytes *h, guint *pt, guint16 *seq, guint32 *ts, guint32 *ssrc)
{
  const guint8 *b = g_bytes_get_data(h, NULL);
  *pt = b[1] & 0x7f;
  *seq = (b[2] << 8) | b[3];
  *ts = ((guint32)b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7];
  *ssrc = ((guint32)b[8] << 24) | (b[9] << 16) | (b[10] << 8) | b[11];
}

/* The packets a sender put on the wire, as one RTP stream: one SSRC, sequence numbers one
 * apart (asserted); how often the payload type changed, the least and the most the
 * timestamp moved from one packet to the next, and how often that was not `frame`. */
typedef struct {
  guint pt_changes, uneven;
  gint32 least_step, most_step;
} StreamWalk;

static StreamWalk
stream_walk(GPtrArray *headers, gint32 frame)
{
  StreamWalk w = { .least_step = G_MAXINT32, .most_step = G_MININT32 };
  guint pt0, pt;
  guint16 seq0, seq;
  guint32 ts0, ts, ssrc0, ssrc;
  header_fields(headers->pdata[0], &pt0, &seq0, &ts0, &ssrc0);
  for (guint i = 1; i < headers->len; i++) {
    header_fields(headers->pdata[i], &pt, &seq, &ts, &ssrc);
    g_assert_cmpuint(ssrc, ==, ssrc0);
    g_assert_cmpuint((guint16)(seq - seq0), ==, 1);
    gint32 step = (gint32)(ts - ts0);
    w.least_step = MIN(w.least_step, step);
    w.most_step = MAX(w.most_step, step);
    w.uneven += step != frame;
    w.pt_changes += pt != pt0;
    pt0 = pt;
    seq0 = seq;
    ts0 = ts;
  }
  return w;
}

static gboolean
four_digits(gpointer data)
{
  return ((Heard *)data)->digits->len >= 4;
}

/* "123#" sent as RFC 4733 events with codec: the far end reports exactly those digits, once each
 * (the end packet goes three times); on the wire they share the audio's SSRC and
 * sequence numbers (nothing reads as lost), and the tone plays on after them. */
static void
check_dtmf(const char *codec)
{
  HarkMediaCodec c = codec_named(&codecs, codec, NULL);
  Pair p = { 0 };
  PairOptions o = { .codecs = &c, .n_codecs = 1 };
  pair_start(&p, &o);
  Heard h = { 0 };
  listen_to(p.b, &h);
  run_for(800);
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_media_session_send_dtmf(p.a, "123#", &error));
  g_assert_no_error(error);
  g_assert_true(run_until(four_digits, &h, 5000));
  /* Long enough for any repeated end packet still on its way. */
  run_for(1000);
  HarkMediaStats sa, sb;
  hark_media_session_get_stats(p.a, &sa);
  hark_media_session_get_stats(p.b, &sb);
  pair_stop(&p);
  g_test_message("dtmf %s: received '%s'; sent %" G_GUINT64_FORMAT ", received %" G_GUINT64_FORMAT
                 ", lost %" G_GINT64_FORMAT ", concealed %" G_GUINT64_FORMAT,
                 codec, h.digits->str, sa.dtmf_sent, sb.dtmf_received, sb.lost,
                 sb.concealed_samples);
  g_assert_cmpstr(h.digits->str, ==, "123#");
  g_assert_cmpuint(sa.dtmf_sent, ==, 4);
  g_assert_cmpuint(sb.dtmf_received, ==, 4);
  g_assert_cmpint(sb.lost, ==, 0);
  g_assert_cmpuint(sb.dropped_unknown_pt + sb.dropped_malformed, ==, 0);

  GPtrArray *headers = p.ma->sent_rtp_headers;
  guint pt, events = 0, starts = 0;
  guint16 seq, seq0 = 0;
  guint32 ts, ssrc, ssrc0 = 0;
  for (guint i = 0; i < headers->len; i++) {
    header_fields(headers->pdata[i], &pt, &seq, &ts, &ssrc);
    if (i > 0) {
      g_assert_cmpuint(ssrc, ==, ssrc0);
      g_assert_cmpuint((guint16)(seq - seq0), ==, 1);
    }
    if (pt == 101) {
      events++;
      starts += (((const guint8 *)g_bytes_get_data(headers->pdata[i], NULL))[1] & 0x80) != 0;
    }
    seq0 = seq, ssrc0 = ssrc;
  }
  /* Per digit: 100 ms in 20 ms frames (the fifth the first end) and two more ends. */
  g_assert_cmpuint(events, ==, 4 * 7);
  g_assert_cmpuint(starts, ==, 4);

  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_assert_cmpuint(wav.n, >, 48000 * 3 / 2);
  g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, wav.n - 24000, 24000) - 1000), <=, 20);
  g_assert_cmpfloat(wav_rms(&wav, wav.n - 24000, 24000), >, TONE_RMS / 2);
  wav_clear(&wav);
  g_string_free(h.digits, TRUE);
  pair_clear(&p);
}

static void
test_dtmf_opus(void)
{
  check_dtmf("opus"); /* events in a 48 kHz clock */
}

static void
test_dtmf_pcmu(void)
{
  check_dtmf("pcmu"); /* in 8 kHz */
}

/* A digit in Opus's 48 kHz clock, a swap to PCMU (8 kHz), another digit in 8 kHz: both
 * heard, nothing lost or concealed, the tone after. */
static void
test_dtmf_after_swap(void)
{
  HarkMediaCodec list[] = { codec_named(&codecs, "opus", NULL),
                            codec_named(&codecs, "pcmu", NULL) };
  PairOptions o = { .codecs = list, .n_codecs = 2 };
  Pair p = { 0 };
  pair_start(&p, &o);
  Heard h = { 0 };
  listen_to(p.b, &h);
  run_for(800);
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_media_session_send_dtmf(p.a, "1", &error));
  run_for(600);
  g_assert_true(hark_media_session_swap_codec(p.a, 1, &error));
  run_for(600);
  g_assert_true(hark_media_session_send_dtmf(p.a, "2", &error));
  run_for(1000);
  HarkMediaStats sb;
  hark_media_session_get_stats(p.b, &sb);
  pair_stop(&p);
  g_test_message("dtmf around a swap: heard '%s', lost %" G_GINT64_FORMAT
                 ", concealed %" G_GUINT64_FORMAT,
                 h.digits->str, sb.lost, sb.concealed_samples);
  g_assert_cmpstr(h.digits->str, ==, "12");
  g_assert_cmpint(sb.lost, ==, 0);
  g_assert_cmpuint(sb.concealed_samples, ==, 0);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, wav.n - 24000, 24000) - 1000), <=, 20);
  wav_clear(&wav);
  g_string_free(h.digits, TRUE);
  pair_clear(&p);
}

/* What is not a digit is refused with the character named (escaped when it is not
 * printable, so it cannot forge a log line), and nothing of that call is sent; so is
 * sending while on hold. */
static void
test_dtmf_refused(void)
{
  Pair p = { 0 };
  PairOptions o = { 0 };
  pair_start(&p, &o);
  g_autoptr(GError) error = NULL;
  g_assert_false(hark_media_session_send_dtmf(p.a, "12x", &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID);
  g_assert_nonnull(strstr(error->message, "'x'"));
  g_clear_error(&error);
  g_assert_false(hark_media_session_send_dtmf(p.a, "1\n2", &error));
  g_assert_nonnull(strstr(error->message, "0x0a"));
  g_assert_null(strchr(error->message, '\n'));
  g_clear_error(&error);
  g_assert_false(hark_media_session_send_dtmf(p.a, "", &error));
  g_clear_error(&error);
  char many[66];
  memset(many, '5', 65);
  many[65] = '\0';
  g_assert_false(hark_media_session_send_dtmf(p.a, many, &error));
  g_clear_error(&error);
  hark_media_session_set_hold(p.a, TRUE);
  g_assert_false(hark_media_session_send_dtmf(p.a, "1", &error));
  g_assert_nonnull(strstr(error->message, "hold"));
  g_clear_error(&error);
  hark_media_session_set_hold(p.a, FALSE);
  run_for(600);
  HarkMediaStats sa;
  hark_media_session_get_stats(p.a, &sa);
  g_assert_cmpuint(sa.dtmf_sent, ==, 0);
  pair_stop(&p);
  for (guint i = 0; i < p.ma->sent_rtp_headers->len; i++) {
    const guint8 *h = g_bytes_get_data(p.ma->sent_rtp_headers->pdata[i], NULL);
    g_assert_cmpuint(h[1] & 0x7f, !=, 101);
  }
  pair_clear(&p);
}

/* Whether the far end's WAV (16-bit mono at 48 kHz) holds more than this many seconds. */
static gboolean
wav_holds(const char *path, double seconds)
{
  GStatBuf st;
  return g_stat(path, &st) == 0 && st.st_size > 44 + 2 * 48000 * seconds;
}

static gboolean
holds_two_seconds(gpointer path)
{
  return wav_holds(path, 2.1);
}

static gboolean
holds_four_seconds(gpointer path)
{
  return wav_holds(path, 4.1);
}

/* Opus -> PCMU -> Opus while running. The tone is there before and after each swap, the
 * longest silence anywhere after start-up stays under the bound, and on the wire the
 * SSRC is one, sequence numbers step by one, timestamps never step back or jump. */
static void
test_swap(void)
{
  HarkMediaCodec list[] = { codec_named(&codecs, "opus", NULL),
                            codec_named(&codecs, "pcmu", NULL) };
  PairOptions o = { .codecs = list, .n_codecs = 2 };
  Pair p = { 0 };
  pair_start(&p, &o);
  g_autoptr(GError) error = NULL;
  run_for(1500);
  g_assert_true(hark_media_session_swap_codec(p.a, 1, &error));
  run_for(1500);
  HarkMediaStats mid;
  hark_media_session_get_stats(p.a, &mid);
  g_assert_cmpstr(mid.codec, ==, "pcmu");
  g_assert_true(hark_media_session_swap_codec(p.a, 0, &error));
  run_for(1500);
  /* And until the far end's WAV holds the 4 s the checks below read, however long a
   * loaded machine took to start the pair (4.5 s of running once gave 3.93 s of audio). */
  g_assert_true(run_until(holds_four_seconds, p.wav_path, 10000));
  HarkMediaStats end, received;
  hark_media_session_get_stats(p.a, &end);
  hark_media_session_get_stats(p.b, &received);
  g_assert_cmpstr(end.codec, ==, "opus");
  pair_stop(&p);

  StreamWalk walk = stream_walk(p.ma->sent_rtp_headers, 960);
  /* At most 3 frames of 20 ms in the codec's clock (48 kHz bounds both). */
  g_assert_cmpint(walk.least_step, >=, 0);
  g_assert_cmpint(walk.most_step, <=, 3 * 960);
  g_assert_cmpuint(walk.pt_changes, ==, 2);

  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_assert_cmpuint(wav.n, >, 48000 * 4);
  double gap = wav_longest_gap_ms(&wav, 48000 / 2, wav.n, TONE_RMS / 10);
  g_test_message("codec swap: longest gap %.0f ms over %.1f s received; the receiver's stats "
                 "say %u ms around the last swap",
                 gap, wav.n / 48000.0, received.last_swap_gap_ms);
  /* The receiver's own measure (quiet 5 ms blocks and holes in the timeline around the
   * last swap) agrees with the WAV's, within its 5 ms blocks' alignment. */
  g_assert_cmpuint(received.last_swap_gap_ms, <=, 45);
  g_assert_cmpfloat(received.last_swap_gap_ms, <=, gap + 10);
  /* The bound: one 20 ms frame drained or concealed at the swap, plus the receiver's
   * jitter buffer re-timing on the clock-rate change (one 20 ms frame), plus a 5 ms
   * block of rounding: 45 ms. A restart of the session would cost far more. */
  g_assert_cmpfloat(gap, <=, 45);
  /* Tone before, between and after the swaps (0.5 s windows). */
  gsize marks[] = { 48000, wav.n / 2, wav.n - 24000 };
  for (guint i = 0; i < G_N_ELEMENTS(marks); i++)
    g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, marks[i] - 12000, 24000) - 1000), <=, 20);
  wav_clear(&wav);
  pair_clear(&p);
}

/* ---- receiving carried over to a session made again ------------------------------------ */

/* A session, not started, that receives under suite with receive_key. */
static HarkMediaSession *
receiver_new(HarkMediaSrtpSuite suite, GBytes *receive_key)
{
  HarkMediaCodec opus = codec_named(&codecs, "opus", NULL);
  HarkMediaTransport *ta, *tb;
  mem_transport_pair(&ta, &tb, NULL, NULL);
  hark_media_transport_free(ta);
  g_autoptr(GBytes) own = test_key(suite, 9);
  HarkMediaConfig c = { .codecs = &opus,
                        .n_codecs = 1,
                        .source = "silence",
                        .sink = "null",
                        .srtp_suite = suite,
                        .send_key = own,
                        .receive_key = receive_key,
                        .transport = tb };
  g_autoptr(GError) error = NULL;
  HarkMediaSession *s = hark_media_session_new(&c, &error);
  g_assert_no_error(error);
  return s;
}

/* What a session received carries over only to one with the same key and suite (the
 * SRTP state would mean nothing under another key); the mechanism itself, a stream past
 * its rollover going on and its past refused, is /media-srtp/carry-over/. */
static void
test_receiving_carry_over(void)
{
  HarkMediaSrtpSuite gcm = HARK_MEDIA_SRTP_AEAD_AES_256_GCM;
  g_autoptr(GBytes) ka = test_key(gcm, 1), kb = test_key(gcm, 2);
  g_autoptr(GBytes) cm = test_key(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, 1);
  g_autoptr(HarkMediaSession) old = receiver_new(gcm, ka);
  g_autoptr(HarkMediaReceiving) receiving = hark_media_session_save_receiving(old);
  g_autoptr(HarkMediaSession) same = receiver_new(gcm, ka);
  g_autoptr(HarkMediaSession) other_key = receiver_new(gcm, kb);
  g_autoptr(HarkMediaSession) other_suite =
    receiver_new(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, cm);
  g_assert_true(hark_media_session_restore_receiving(same, receiving));
  g_assert_false(hark_media_session_restore_receiving(other_key, receiving));
  g_assert_false(hark_media_session_restore_receiving(other_suite, receiving));
}

/* ---- a shared encoder (media-shared.c) ------------------------------------------------ */

#define SHARED_RATE 16000
#define SHARED_FRAME (SHARED_RATE / 50)
/* Hz in the first second, then after: not a whole number of cycles in a 20 ms frame, so
 * a frame lost or sent twice jumps the phase. */
#define SHARED_TONE_BEFORE 700
#define SHARED_TONE 1010

/* Two sessions sending what a test "mixer" writes to their ports, a 20 ms frame a tick
 * (catching up by the clock, as the conference mixer does): each on its own encoder,
 * both following the shared one, or a mix (want_follow). */
typedef struct {
  HarkMediaPort *port[2];
  HarkMediaShared *shared;
  gboolean want_follow[2], following[2];
  gint64 start_us;
  guint64 frames;
  double phase;
  guint refused; /* follows that returned FALSE while wanted */
} SharedFeed;

static gboolean
shared_feed_tick(gpointer data)
{
  SharedFeed *f = data;
  guint64 due = (guint64)(g_get_monotonic_time() - f->start_us) / 20000;
  gint16 frame[SHARED_FRAME];
  for (; f->frames < due; f->frames++) {
    /* Another tone from the first switch on: an own encoder that stood idle meanwhile
     * comes back with the state of the first. */
    double hz = f->frames < 50 ? SHARED_TONE_BEFORE : SHARED_TONE;
    for (guint i = 0; i < SHARED_FRAME; i++) {
      frame[i] = (gint16)(0.3 * 32767 * sin(f->phase));
      f->phase = fmod(f->phase + 2 * G_PI * hz / SHARED_RATE, 2 * G_PI);
    }
    for (guint k = 0; k < 2; k++) {
      if (f->want_follow[k]) {
        f->following[k] = hark_media_shared_follow(f->shared, f->port[k]);
        f->refused += !f->following[k];
      } else if (f->following[k]) {
        hark_media_shared_leave(f->shared, f->port[k]);
        f->following[k] = FALSE;
      }
      if (!f->following[k])
        hark_media_port_write(f->port[k], frame, SHARED_FRAME);
    }
    hark_media_shared_write(f->shared, frame, SHARED_FRAME);
  }
  return G_SOURCE_CONTINUE;
}

/* The far end of one pair: the tone all along (after start-up), no hole and no click
 * (no 10 ms block strays from a steady sine by more than the codec's own noise), and its
 * packets one stream: one SSRC, sequence numbers one apart, timestamps one frame apart,
 * across every switch between the own and the shared encoder. */
static void
check_shared_far_end(Pair *p, const char *who, gsize tail, const HarkMediaStats *heard)
{
  Wav wav = { 0 };
  g_assert_true(wav_read(p->wav_path, &wav));
  g_assert_cmpuint(wav.n, >, 48000 * 3 + tail);
  wav.n -= tail;
  gsize from = 48000 / 2, changed = 48000 * 13 / 10; /* the tone changed before 1.3 s */
  double gap = wav_longest_gap_ms(&wav, from, wav.n, TONE_RMS / 10);
  double hz = wav_dominant_hz(&wav, changed, wav.n - changed);
  gsize worst_at = 0;
  double residual = hark_test_wav_worst_tone_residual_db(
    wav.samples + changed, wav.n - changed, 48000, SHARED_TONE, TONE_RMS / 10, &worst_at);
  g_test_message("%s: %.0f Hz, longest gap %.0f ms, worst 10 ms block %.1f dB off the sine at "
                 "%.3f s of %.3f; far end: %" G_GUINT64_FORMAT
                 " samples concealed, %" G_GUINT64_FORMAT " late packets, %" G_GUINT64_FORMAT
                 " late buffers, jitter buffer grown %u, shrunk %u, now %u ms",
                 who, hz, gap, residual, (changed + worst_at) / 48000.0, wav.n / 48000.0,
                 heard->concealed_samples, heard->late_packets, heard->late_buffers,
                 heard->jitter_buffer_grown, heard->jitter_buffer_shrunk, heard->jitter_buffer_ms);
  g_assert_cmpfloat(fabs(hz - SHARED_TONE), <=, 20);
  g_assert_cmpfloat(gap, <=, 10);
  /* A click is the switch's only while the far end played every packet as it came: one
   * that came too late for its jitter buffer (a loaded machine's stall of the receiving
   * threads: nothing is lost in memory) is concealed or played late, which jumps the tone
   * as a bad switch would. The packets' own steps are checked below either way. */
  if (heard->concealed_samples == 0 && heard->late_buffers == 0 && heard->late_packets == 0)
    g_assert_cmpfloat(residual, <, -20);
  else
    g_test_message("%s: the far end concealed or played late (a stall here): its blocks say "
                   "nothing of the switches",
                   who);
  wav.n += tail;
  wav_clear(&wav);
  StreamWalk walk = stream_walk(p->ma->sent_rtp_headers, 960);
  g_test_message("%s: %u packets, %u not one frame after the one before", who,
                 p->ma->sent_rtp_headers->len, walk.uneven);
  g_assert_cmpuint(walk.pt_changes, ==, 0);
  g_assert_cmpuint(walk.uneven, ==, 0);
}

/* Both sessions on their own encoders for 1 s, then both following one shared encoder
 * (one encoding, two packets sent per frame), then the first back on its own (primed)
 * while the second keeps following; last, the second muted: a muted session does not
 * follow (the shared mix would leak what its mute keeps back), and its far end hears
 * silence. Both far ends hear one unbroken tone through all the switches before. */
static void
test_shared(void)
{
  SharedFeed f = { .shared = hark_media_shared_new(SHARED_RATE) };
  Pair pairs[2] = { 0 };
  char *specs[2];
  for (guint k = 0; k < 2; k++) {
    g_autofree char *name = g_strdup_printf("shared-%u", k);
    g_autoptr(GError) error = NULL;
    f.port[k] = hark_media_port_new(name, SHARED_RATE, &error);
    g_assert_no_error(error);
    specs[k] = g_strdup_printf("port:%s", name);
    /* A fixed jitter buffer with room for a loaded machine's stalls: the far end plays
     * what the switches sent, never re-timed by its own adaptation. */
    PairOptions o = { .source = specs[k], .fixed_jitter_ms = 60 };
    pair_start(&pairs[k], &o);
  }
  f.start_us = g_get_monotonic_time();
  guint tick = g_timeout_add(5, shared_feed_tick, &f);
  run_for(1000);
  HarkMediaSharedCounts idle, both, one;
  hark_media_shared_get_counts(f.shared, &idle);
  g_assert_cmpuint(idle.frames_encoded, ==, 0);
  f.want_follow[0] = f.want_follow[1] = TRUE;
  run_for(1500);
  hark_media_shared_get_counts(f.shared, &both);
  g_test_message("both following: %u encoder(s), %u followers, %" G_GUINT64_FORMAT
                 " frames encoded, %" G_GUINT64_FORMAT " packets sent, %u refused",
                 both.encoders, both.followers, both.frames_encoded, both.packets_sent, f.refused);
  g_assert_cmpuint(both.encoders, ==, 1);
  g_assert_cmpuint(both.followers, ==, 2);
  g_assert_cmpuint(f.refused, ==, 0);
  g_assert_cmpuint(both.frames_encoded, >, 60);
  g_assert_cmpuint(both.packets_sent, >=, 2 * both.frames_encoded - 2);
  f.want_follow[0] = FALSE;
  run_for(1500);
  hark_media_shared_get_counts(f.shared, &one);
  g_assert_cmpuint(one.followers, ==, 1);
  g_assert_cmpuint(one.switches, ==, 3);
  g_assert_true(run_until(holds_four_seconds, pairs[0].wav_path, 10000));
  g_assert_true(run_until(holds_four_seconds, pairs[1].wav_path, 10000));

  hark_media_session_set_mute(pairs[1].a, TRUE);
  guint refused = f.refused;
  run_for(1200);
  g_assert_cmpuint(f.refused, >, refused);
  hark_media_shared_get_counts(f.shared, &one);
  g_assert_cmpuint(one.followers, ==, 0);
  g_source_remove(tick);
  HarkMediaStats heard[2];
  hark_media_session_get_stats(pairs[0].b, &heard[0]);
  hark_media_session_get_stats(pairs[1].b, &heard[1]);
  pair_stop(&pairs[0]);
  pair_stop(&pairs[1]);
  check_shared_far_end(&pairs[0], "back on its own", 0, &heard[0]);
  check_shared_far_end(&pairs[1], "following to the end", 48000 * 6 / 5, &heard[1]);
  Wav wav = { 0 };
  g_assert_true(wav_read(pairs[1].wav_path, &wav));
  double muted_db = 20 * log10(wav_rms(&wav, wav.n - 48000 / 2, 48000 / 2) / TONE_RMS + 1e-9);
  g_test_message("muted while following: the last 0.5 s at %.1f dB", muted_db);
  g_assert_cmpfloat(muted_db, <, -30);
  wav_clear(&wav);
  for (guint k = 0; k < 2; k++) {
    pair_clear(&pairs[k]);
    hark_media_port_free(f.port[k]);
    g_free(specs[k]);
  }
  hark_media_shared_free(f.shared);
}

/* A port whose writer stalls (a conference host's main loop held up for 300 ms, its mixer
 * skipping the lost ticks) sends a gap: the timestamps jump with the pause, so the far end
 * plays it as the gap it is, rather than taking every packet after it for late. A pause
 * while following a shared encoder is no gap (above); this one is. */
static void
test_port_stall(void)
{
  SharedFeed f = { .shared = hark_media_shared_new(SHARED_RATE) };
  g_autoptr(GError) error = NULL;
  f.port[0] = hark_media_port_new("stall-0", SHARED_RATE, &error);
  g_assert_no_error(error);
  f.port[1] = hark_media_port_new("stall-1", SHARED_RATE, &error);
  g_assert_no_error(error);
  Pair p = { 0 };
  PairOptions o = { .source = "port:stall-0" };
  pair_start(&p, &o);
  f.start_us = g_get_monotonic_time();
  guint tick = g_timeout_add(5, shared_feed_tick, &f);
  run_for(1000);
  g_source_remove(tick);
  run_for(300);
  f.start_us += 300 * 1000; /* the ticks of the stall are skipped, not made up */
  tick = g_timeout_add(5, shared_feed_tick, &f);
  run_for(1000);
  g_source_remove(tick);
  pair_stop(&p);
  StreamWalk walk = stream_walk(p.ma->sent_rtp_headers, 960);
  g_test_message("a 300 ms stall: %u uneven steps, the longest %d (48 kHz)", walk.uneven,
                 walk.most_step);
  g_assert_cmpuint(walk.uneven, ==, 1);
  g_assert_cmpint(walk.most_step, >=, 960 + 48 * 250);
  g_assert_cmpint(walk.most_step, <=, 960 + 48 * 400);
  pair_clear(&p);
  hark_media_port_free(f.port[0]);
  hark_media_port_free(f.port[1]);
  hark_media_shared_free(f.shared);
}

/* No sound server: start fails at once, and says what to configure. */
static void
test_no_sound_server(void)
{
  HarkMediaCodec c = codec_named(&codecs, "opus", NULL);
  HarkMediaTransport *ta, *tb;
  mem_transport_pair(&ta, &tb, NULL, NULL);
  g_autoptr(GBytes) k = test_key(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, 1);
  HarkMediaConfig config = { .codecs = &c,
                             .n_codecs = 1,
                             .source = "pulse",
                             .sink = "null",
                             .send_key = k,
                             .receive_key = k,
                             .transport = ta };
  g_autoptr(GError) error = NULL;
  gint64 started = g_get_monotonic_time();
  g_autoptr(HarkMediaSession) s = hark_media_session_new(&config, &error);
  g_assert_no_error(error);
  g_assert_false(hark_media_session_start(s, &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_NO_SOUND);
  g_assert_nonnull(strstr(error->message, "media.source"));
  g_assert_nonnull(strstr(error->message, "media.sink"));
  g_assert_cmpint(g_get_monotonic_time() - started, <, 5 * G_USEC_PER_SEC);
  hark_media_transport_free(tb);
  /* The same for playback (media-pulse-playback.c connects on the way to PAUSED). */
  mem_transport_pair(&ta, &tb, NULL, NULL);
  config.source = "tone";
  config.sink = "pulse";
  config.transport = ta;
  g_clear_error(&error);
  g_autoptr(HarkMediaSession) s2 = hark_media_session_new(&config, &error);
  g_assert_no_error(error);
  g_assert_false(hark_media_session_start(s2, &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_NO_SOUND);
  g_assert_nonnull(strstr(error->message, "media.sink"));
  hark_media_transport_free(tb);
}

/* ---- through a sound server: a private PulseAudio with a null sink ------------------ */

typedef struct {
  GSubprocess *daemon;
  char *dir, *socket;
} Pulse;

static gboolean
socket_exists(gpointer data)
{
  return g_file_test(((Pulse *)data)->socket, G_FILE_TEST_EXISTS);
}

/* FALSE (the case is skipped) where PulseAudio is not installed. The null sink is made
 * before the socket, so a client that finds the socket finds the sink. */
static gboolean
pulse_start(Pulse *p)
{
  g_autofree char *daemon = g_find_program_in_path("pulseaudio");
  g_autofree char *recorder = g_find_program_in_path("parecord");
  if (daemon == NULL || recorder == NULL)
    return FALSE;
  p->dir = g_build_filename(tmpdir, "pulse", NULL);
  g_assert_cmpint(g_mkdir_with_parents(p->dir, 0700), ==, 0);
  p->socket = g_build_filename(p->dir, "socket", NULL);
  g_autofree char *script_path = g_build_filename(p->dir, "pa.pa", NULL);
  g_autofree char *script = g_strdup_printf(
    "load-module module-null-sink sink_name=spk channels=1 rate=48000\n"
    "load-module module-native-protocol-unix socket=%s auth-anonymous=1\n",
    p->socket);
  g_assert_true(g_file_set_contents(script_path, script, -1, NULL));
  g_autofree char *server = g_strconcat("unix:", p->socket, NULL);
  g_setenv("PULSE_SERVER", server, TRUE);
  g_setenv("HOME", p->dir, TRUE);
  g_setenv("XDG_RUNTIME_DIR", p->dir, TRUE);
  g_autoptr(GError) error = NULL;
  p->daemon = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, daemon, "-n", "-F",
                               script_path, "--daemonize=no", "--system=false",
                               "--exit-idle-time=-1", "--disallow-exit", "--realtime=no",
                               "--high-priority=no", NULL);
  g_assert_no_error(error);
  g_assert_true(run_until(socket_exists, p, 10000));
  return TRUE;
}

static void
pulse_stop(Pulse *p)
{
  if (p->daemon != NULL) {
    g_subprocess_send_signal(p->daemon, SIGTERM);
    g_subprocess_wait(p->daemon, NULL, NULL);
    g_clear_object(&p->daemon);
  }
  hark_test_remove_tree(p->dir);
  g_free(p->socket);
  g_free(p->dir);
}

static gboolean
recording_started(gpointer path)
{
  return wav_holds(path, 0.1); /* the monitor's recording: 16-bit mono at 48 kHz too */
}

/* What the far end plays to the sound server (written where each buffer is due,
 * media-pulse-playback.c) is the tone that was sent, at its level, and
 * keeps coming: a recording of the device's monitor hears it for a second without a
 * gap (the jitter buffer's delay fixed: a growth of the adaptive one is a gap by
 * design; 20 ms allowed for a stall of the loaded machine). */
static void
test_pulse_playback(void)
{
  Pulse pulse = { 0 };
  if (!pulse_start(&pulse)) {
    g_test_skip("PulseAudio (pulseaudio, parecord) is not installed");
    return;
  }
  g_autofree char *recording = g_build_filename(pulse.dir, "monitor.wav", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) recorder = g_subprocess_new(
    G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, "parecord", "-d", "spk.monitor", "--rate=48000",
    "--channels=1", "--format=s16le", "--latency-msec=10", "--file-format=wav", recording, NULL);
  g_assert_no_error(error);
  g_assert_true(run_until(recording_started, recording, 10000));
  Pair p = { 0 };
  PairOptions o = { .sink = "pulse:spk", .fixed_jitter_ms = 40 };
  pair_start(&p, &o);
  run_for(2500);
  HarkMediaStats sb;
  hark_media_session_get_stats(p.b, &sb);
  pair_stop(&p);
  g_subprocess_send_signal(recorder, SIGINT);
  g_assert_true(g_subprocess_wait(recorder, NULL, NULL));
  Wav wav = { 0 };
  g_assert_true(wav_read(recording, &wav));
  pulse_stop(&pulse);
  g_test_message("pulse: played %" G_GUINT64_FORMAT " samples, recorded %zu, jitter buffer %u ms",
                 sb.played_samples, wav.n, sb.jitter_buffer_ms);
  g_assert_cmpuint(sb.played_samples, >, 48000);
  /* Where the tone starts in the recording, and the second after it. */
  gsize start = 0;
  while (start + 240 <= wav.n && wav_rms(&wav, start, 240) < TONE_RMS / 4)
    start += 240;
  g_assert_cmpuint(start + 48000, <=, wav.n);
  double got = wav_dominant_hz(&wav, start, 48000);
  double db = 20 * log10(wav_rms(&wav, start + 240, 48000 - 480) / TONE_RMS);
  double gap = wav_longest_gap_ms(&wav, start, start + 48000, TONE_RMS / 4);
  g_test_message("pulse: %g Hz at %.1f dB, longest gap %.0f ms", got, db, gap);
  g_assert_cmpfloat(fabs(got - 1000), <=, 20);
  g_assert_cmpfloat(fabs(db), <=, 3);
  g_assert_cmpfloat(gap, <=, 20);
  wav_clear(&wav);
  pair_clear(&p);
}

/* What a session captures from the sound server (media-pulse.c, reading the server's
 * fragments into blocks) reaches the far end: one pair plays the tone into the null sink,
 * a second captures the sink's monitor and sends it on; what the second's far end decoded
 * is the tone, at its level, with no gap over its last second. */
static void
test_pulse_capture(void)
{
  Pulse pulse = { 0 };
  if (!pulse_start(&pulse)) {
    g_test_skip("PulseAudio (pulseaudio, parecord) is not installed");
    return;
  }
  Pair play = { 0 }, capture = { 0 };
  PairOptions po = { .sink = "pulse:spk", .fixed_jitter_ms = 40 };
  pair_start(&play, &po);
  run_for(500);
  PairOptions co = { .source = "pulse:spk.monitor", .fixed_jitter_ms = 40 };
  pair_start(&capture, &co);
  /* Until the far end holds 2 s, however long a loaded machine takes to start both pairs
   * and the sound server (3 s of running once gave 1.74 s). */
  g_assert_true(run_until(holds_two_seconds, capture.wav_path, 15000));
  run_for(500);
  HarkMediaStats sa;
  hark_media_session_get_stats(capture.a, &sa);
  pair_stop(&capture);
  pair_stop(&play);
  pulse_stop(&pulse);
  Wav wav = { 0 };
  g_assert_true(wav_read(capture.wav_path, &wav));
  g_test_message("capture: sent %" G_GUINT64_FORMAT " packets, far end decoded %zu samples",
                 sa.packets_sent, wav.n);
  g_assert_cmpuint(wav.n, >, 2 * 48000);
  gsize from = wav.n - 48000;
  double got = wav_dominant_hz(&wav, from, 48000);
  double db = 20 * log10(wav_rms(&wav, from, 48000) / TONE_RMS);
  double gap = wav_longest_gap_ms(&wav, from, wav.n, TONE_RMS / 4);
  g_test_message("capture: %g Hz at %.1f dB, longest gap %.0f ms", got, db, gap);
  g_assert_cmpfloat(fabs(got - 1000), <=, 20);
  g_assert_cmpfloat(fabs(db), <=, 3);
  g_assert_cmpfloat(gap, <=, 20);
  wav_clear(&wav);
  pair_clear(&capture);
  pair_clear(&play);
}

/* Configuration mistakes are errors that name the mistake. */
static void
test_bad_config(void)
{
  HarkMediaCodec c = codec_named(&codecs, "opus", NULL);
  g_autoptr(GBytes) k = test_key(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, 1);
  g_autoptr(GBytes) short_key = g_bytes_new("0123456789", 10);
  struct {
    const char *source, *sink;
    GBytes *key;
    const char *expect;
  } cases[] = {
    { "tone", "null", short_key, "30 bytes" },
    { "tone:5", "null", k, "tone:HZ" },
    { "microphone", "null", k, "expected tone" },
    { "file:/nonexistent/in.wav", "null", k, "/nonexistent/in.wav" },
    { "wav:/nonexistent/in.wav", "null", k, "/nonexistent/in.wav" },
    { "tone", "file:/nonexistent/out.wav", k, "/nonexistent/out.wav" },
    { "tone", "wav:/nonexistent/out.wav", k, "/nonexistent/out.wav" },
    { "tone", "speaker", k, "expected null" },
  };
  /* What the configuration file is checked with agrees with what sessions take. */
  const char *const good_sources[] = { "tone",       "tone:440",    "tone:440:0.5", "silence",
                                       "wav:in.wav", "file:in.wav", "pulse",        "pulse:mic" };
  const char *const bad_sources[] = { "microphone", "tone:5", "tone:x", "wav:", "pulse:", "null" };
  const char *const good_sinks[] = { "null", "wav:out.wav", "file:out.wav", "pulse", "pulse:spk" };
  const char *const bad_sinks[] = { "speaker", "tone", "wav:", "pulse:", "silence" };
  for (guint i = 0; i < G_N_ELEMENTS(good_sources); i++)
    g_assert_true(hark_media_source_check(good_sources[i], NULL));
  for (guint i = 0; i < G_N_ELEMENTS(bad_sources); i++)
    g_assert_false(hark_media_source_check(bad_sources[i], NULL));
  for (guint i = 0; i < G_N_ELEMENTS(good_sinks); i++)
    g_assert_true(hark_media_sink_check(good_sinks[i], NULL));
  for (guint i = 0; i < G_N_ELEMENTS(bad_sinks); i++)
    g_assert_false(hark_media_sink_check(bad_sinks[i], NULL));
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    HarkMediaTransport *ta, *tb;
    mem_transport_pair(&ta, &tb, NULL, NULL);
    HarkMediaConfig config = { .codecs = &c,
                               .n_codecs = 1,
                               .source = cases[i].source,
                               .sink = cases[i].sink,
                               .send_key = cases[i].key,
                               .receive_key = k,
                               .transport = ta };
    g_autoptr(GError) error = NULL;
    HarkMediaSession *s = hark_media_session_new(&config, &error);
    g_assert_null(s);
    g_assert_nonnull(error);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, cases[i].expect));
    hark_media_transport_free(tb); /* ta was taken, failure or not */
  }
  GVariantDict d;
  g_variant_dict_init(&d, NULL);
  g_variant_dict_insert(&d, "bandwidth", "s", "ultraband");
  HarkMediaCodec bad = codec_named(&codecs, "opus", g_variant_dict_end(&d));
  HarkMediaTransport *ta, *tb;
  mem_transport_pair(&ta, &tb, NULL, NULL);
  HarkMediaConfig config = { .codecs = &bad,
                             .n_codecs = 1,
                             .source = "tone",
                             .sink = "null",
                             .send_key = k,
                             .receive_key = k,
                             .transport = ta };
  g_autoptr(GError) error = NULL;
  g_assert_null(hark_media_session_new(&config, &error));
  g_assert_nonnull(strstr(error->message, "bandwidth"));
  hark_media_transport_free(tb);
}

/* ---- hostile and broken packets, made with libsrtp so they pass or fail SRTP as meant ---- */

typedef struct {
  MemTransport *to;
  srtp_t srtp;
  guint16 seq;
  guint32 ts;
  guint step;
} Injector;

/* One packet with this payload (NULL: 160 bytes of PCMU silence), protected; returns
 * its length. */
static int
protect_payload(Injector *in, guint8 *packet, guint pt, guint32 ts, const guint8 *payload,
                gsize payload_length)
{
  memset(packet, 0xff, 12 + 160 + 16);
  if (payload != NULL)
    memcpy(packet + 12, payload, payload_length);
  packet[0] = 0x80;
  packet[1] = pt;
  packet[2] = in->seq >> 8;
  packet[3] = in->seq & 0xff;
  packet[4] = ts >> 24;
  packet[5] = ts >> 16;
  packet[6] = ts >> 8;
  packet[7] = ts;
  packet[8] = 0x11, packet[9] = 0x22, packet[10] = 0x33, packet[11] = 0x44;
  in->seq++;
  int length = 12 + (int)payload_length;
  g_assert_cmpint(srtp_protect(in->srtp, packet, &length), ==, srtp_err_status_ok);
  return length;
}

static int
protect(Injector *in, guint8 *packet, guint pt, guint32 ts)
{
  return protect_payload(in, packet, pt, ts, NULL, 160);
}

#define INJECTED 110

/* Every 20 ms: 50 good packets, then the bad ones one by one, then 50 good again. */
static gboolean
inject_next(gpointer data)
{
  Injector *in = data;
  guint8 packet[256];
  guint i = in->step++;
  int n;
  switch (i) {
  case 50: /* a payload type the session does not take */
    n = protect(in, packet, 100, in->ts);
    break;
  case 51: /* a timestamp a quarter of the 32-bit range ahead */
    n = protect(in, packet, 0, in->ts + 0x40000000u);
    break;
  case 52: /* truncated: not even an RTP header */
    n = 5;
    break;
  case 53: /* not RTP version 2 */
    n = 40;
    memset(packet, 0, n);
    break;
  case 54: /* a good packet with one payload bit flipped: fails authentication */
    n = protect(in, packet, 0, in->ts);
    packet[40] ^= 0x01;
    break;
  case 55: /* a telephone-event that is no DTMF digit (event 200, ended) */
    n = protect_payload(in, packet, 101, in->ts, (const guint8[]){ 200, 0x8a, 0x03, 0x20 }, 4);
    break;
  case 56: /* a telephone-event too short to hold one */
    n = protect_payload(in, packet, 101, in->ts, (const guint8[]){ 5, 0x8a }, 2);
    break;
  case 57: /* digit 5 ended, and its end repeated twice: reported once */
  case 58:
  case 59:
    n = protect_payload(in, packet, 101, in->ts, (const guint8[]){ 5, 0x8a, 0x03, 0x20 }, 4);
    break;
  default:
    n = protect(in, packet, 0, in->ts);
    in->ts += 160;
  }
  mem_transport_inject(in->to, packet, n);
  return in->step < INJECTED ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

typedef struct {
  Injector *in;
  HarkMediaSession *session;
} Counting;

/* Every packet injected has been counted one way or another (103 taken, 7 dropped), and
 * the stream played on for 1.5 s. */
static gboolean
all_counted(gpointer data)
{
  Counting *c = data;
  HarkMediaStats st;
  hark_media_session_get_stats(c->session, &st);
  return c->in->step >= INJECTED &&
         st.rtp_received + st.dropped_unknown_pt + st.dropped_timestamp + st.dropped_malformed +
             st.dropped_srtp >=
           INJECTED &&
         st.played_samples > 48000 * 3 / 2;
}

static void
test_bad_packets(void)
{
  HarkMediaCodec c = codec_named(&codecs, "pcmu", NULL);
  HarkMediaTransport *ta, *tb;
  MemTransport *ma, *mb;
  mem_transport_pair(&ta, &tb, &ma, &mb);
  g_autoptr(GBytes) k = test_key(HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, 1);
  HarkMediaConfig config = { .codecs = &c,
                             .n_codecs = 1,
                             .source = "silence",
                             .sink = "null",
                             .send_key = k,
                             .receive_key = k,
                             .transport = tb };
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMediaSession) s = hark_media_session_new(&config, &error);
  g_assert_no_error(error);
  g_assert_true(hark_media_session_start(s, &error));
  Heard heard = { 0 };
  listen_to(s, &heard);

  /* GStreamer's SRTP elements share this libsrtp and initialised it already (a second
   * srtp_init then complains); the srtp_create below is what must work. */
  srtp_init();
  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  srtp_crypto_policy_set_rtp_default(&policy.rtp); /* AES_CM_128_HMAC_SHA1_80 */
  srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
  policy.ssrc.type = ssrc_any_outbound;
  policy.key = (guint8 *)g_bytes_get_data(k, NULL);
  policy.window_size = 128;
  Injector in = { .to = mb, .seq = 100, .ts = 8000 };
  g_assert_cmpint(srtp_create(&in.srtp, &policy), ==, srtp_err_status_ok);
  /* Every 20 ms, 110 steps: waited for by count, not for a fixed time a loaded machine
   * may not keep up with; and the timer, which points at this frame's injector, is gone
   * before the frame ends. */
  guint injecting = g_timeout_add(20, inject_next, &in);
  Counting counting = { .in = &in, .session = s };
  gboolean counted = run_until(all_counted, &counting, 20000);
  if (in.step < INJECTED)
    g_source_remove(injecting);
  HarkMediaStats st;
  hark_media_session_get_stats(s, &st);
  g_test_message("bad packets: %" G_GUINT64_FORMAT " RTP accepted, dropped: %" G_GUINT64_FORMAT
                 " unknown type, %" G_GUINT64_FORMAT " timestamp, %" G_GUINT64_FORMAT
                 " malformed, %" G_GUINT64_FORMAT " SRTP; %" G_GUINT64_FORMAT " played",
                 st.rtp_received, st.dropped_unknown_pt, st.dropped_timestamp, st.dropped_malformed,
                 st.dropped_srtp, st.played_samples);
  g_assert_true(counted);
  g_assert_cmpuint(in.step, ==, INJECTED);
  g_assert_cmpuint(st.rtp_received, ==, 103); /* 100 audio, 3 events of one digit */
  g_assert_cmpuint(st.dropped_unknown_pt, ==, 1);
  g_assert_cmpuint(st.dropped_timestamp, ==, 1);
  g_assert_cmpuint(st.dropped_malformed, ==, 4);
  g_assert_cmpuint(st.dropped_srtp, ==, 1);
  g_assert_cmpuint(st.dtmf_received, ==, 1);
  g_assert_cmpstr(heard.digits->str, ==, "5");
  g_string_free(heard.digits, TRUE);
  /* The stream went on through all of it: about 2 s of 48 kHz played. */
  g_assert_cmpuint(st.played_samples, >, 48000 * 3 / 2);
  srtp_dealloc(in.srtp);
  g_clear_pointer(&s, hark_media_session_free);
  hark_media_transport_free(ta);
}

/* Opus settings that GStreamer allows to change run live; the others are refused with
 * an error that names the key. */
static void
test_live_settings(void)
{
  Pair p = { 0 };
  PairOptions o = { 0 };
  pair_start(&p, &o);
  run_for(300);
  g_autoptr(GError) error = NULL;
  HarkMediaStats st;
  hark_media_session_get_stats(p.a, &st);
  g_assert_false(st.fec); /* off by default, and no loss */
  g_assert_true(
    hark_media_session_set_codec_setting(p.a, "bitrate", g_variant_new_int64(12000), &error));
  g_assert_no_error(error);
  g_assert_true(
    hark_media_session_set_codec_setting(p.a, "inband_fec", g_variant_new_boolean(TRUE), &error));
  hark_media_session_get_stats(p.a, &st);
  g_assert_cmpint(st.encoder_bitrate, ==, 12000);
  g_assert_true(st.fec);
  g_assert_false(
    hark_media_session_set_codec_setting(p.a, "frame_size", g_variant_new_int64(40), &error));
  g_assert_nonnull(strstr(error->message, "frame_size"));
  g_clear_error(&error);
  g_assert_false(
    hark_media_session_set_codec_setting(p.a, "bitrate", g_variant_new_int64(1), &error));
  g_assert_nonnull(strstr(error->message, "bitrate"));
  g_clear_error(&error);
  g_assert_false(
    hark_media_session_set_codec_setting(p.a, "bitrate", g_variant_new_string("fast"), &error));
  g_assert_nonnull(strstr(error->message, "bitrate"));
  /* Still sending at the new rate: about 12 kbit/s of payload for a second. */
  HarkMediaStats before, after;
  hark_media_session_get_stats(p.a, &before);
  run_for(1000);
  hark_media_session_get_stats(p.a, &after);
  guint64 payload =
    (after.bytes_sent - before.bytes_sent) - (after.packets_sent - before.packets_sent) * 22;
  g_test_message("live bitrate 12000: %" G_GUINT64_FORMAT " payload bytes in 1 s", payload);
  /* A window of real time: a range around 1500 bytes (Opus's rate control, and how many
   * 20 ms frames fell into the second, vary). */
  g_assert_cmpuint(payload, <, 12000 / 8 * 3 / 2);
  g_assert_cmpuint(payload, >, 12000 / 8 / 2);
  pair_clear(&p);
}

static guint64
sent_in(HarkMediaSession *s, guint ms)
{
  HarkMediaStats before, after;
  hark_media_session_get_stats(s, &before);
  run_for(ms);
  hark_media_session_get_stats(s, &after);
  return after.packets_sent - before.packets_sent;
}

/* Opus with dtx = true: muted (the encoder gets silence) a sends a comfort-noise frame
 * every 400 ms and RTCP, not 50 packets a second, so the far end (a conference host
 * above all) has nothing to decode; unmuted the tone is heard again (the received WAV
 * holds only what was played: DTX gaps are not in it). DTX switched off
 * live brings the 50 packets a second back while still muted. */
static void
test_opus_dtx(void)
{
  GVariantDict d;
  g_variant_dict_init(&d, NULL);
  g_variant_dict_insert(&d, "dtx", "b", TRUE);
  HarkMediaCodec c = codec_named(&codecs, "opus", g_variant_dict_end(&d));
  PairOptions o = { .codecs = &c, .n_codecs = 1 };
  Pair p = { 0 };
  pair_start(&p, &o);
  run_for(600);
  guint64 talking = sent_in(p.a, 1000);
  hark_media_session_set_mute(p.a, TRUE);
  run_for(200); /* what was encoded before the mute */
  guint64 silent = sent_in(p.a, 1200);
  g_autoptr(GError) error = NULL;
  g_assert_true(
    hark_media_session_set_codec_setting(p.a, "dtx", g_variant_new_boolean(FALSE), &error));
  g_assert_no_error(error);
  run_for(100);
  guint64 dtx_off = sent_in(p.a, 1000);
  hark_media_session_set_mute(p.a, FALSE);
  run_for(1200);
  HarkMediaStats sb;
  hark_media_session_get_stats(p.b, &sb);
  pair_stop(&p);
  g_test_message("opus dtx: %" G_GUINT64_FORMAT " packets in 1 s talking, %" G_GUINT64_FORMAT
                 " in 1.2 s muted, %" G_GUINT64_FORMAT " in 1 s muted without DTX",
                 talking, silent, dtx_off);
  /* Talking, the encoder's own activity detection drops some frames of a steady tone
   * (about 30 of 50 are sent); muted, one in 20 and RTCP. */
  g_assert_cmpuint(talking, >, 20);
  g_assert_cmpuint(silent, <, 12);
  g_assert_cmpuint(dtx_off, >, 40);
  Wav wav = { 0 };
  g_assert_true(wav_read(p.wav_path, &wav));
  g_assert_cmpuint(wav.n, >, 48000 / 2);
  gsize last = 48000 / 2;
  g_assert_cmpfloat(fabs(wav_dominant_hz(&wav, wav.n - last, last) - 1000), <=, 20);
  g_assert_cmpfloat(wav_rms(&wav, wav.n - last, last), >, TONE_RMS / 2);
  wav_clear(&wav);
  pair_clear(&p);
}

/* The codec is the first of the configured preference that a plugin registers. */
static void
test_choose_codec(void)
{
  const char *const pref[] = { "g729", "pcma", "opus", NULL };
  g_autoptr(GError) error = NULL;
  const HarkRegistration *r = hark_media_codec_choose(codecs.registrations, pref, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(r->name, ==, "pcma");
  r = hark_media_codec_choose(codecs.registrations, NULL, &error);
  g_assert_cmpstr(r->name, ==, "opus"); /* the highest rank */
  const char *const none[] = { "g729", "ilbc", NULL };
  g_assert_null(hark_media_codec_choose(codecs.registrations, none, &error));
  g_assert_nonnull(strstr(error->message, "g729, ilbc"));
}

int
main(int argc, char **argv)
{
  /* A case in a process of its own: a failed or crashed case costs only itself. The
   * longest case (adaptive jitter) runs about 20 s. */
  hark_test_init_isolated(&argc, &argv, 90000);
  g_setenv("PULSE_SERVER", "unix:/nonexistent/hark-test", TRUE);
  tmpdir = g_dir_make_tmp("hark-media-XXXXXX", NULL);
  codecs_load(&codecs);
  hark_test_add_isolated_func("/media/tone/opus", test_tone_opus);
  hark_test_add_isolated_func("/media/shared/follow-and-back", test_shared);
  hark_test_add_isolated_func("/media/receiving/carry-over", test_receiving_carry_over);
  hark_test_add_isolated_func("/media/port/stall-is-a-gap", test_port_stall);
  hark_test_add_isolated_func("/media/tone/pcmu", test_tone_pcmu);
  hark_test_add_isolated_func("/media/tone/pcma", test_tone_pcma);
  hark_test_add_isolated_func("/media/tone/g722", test_tone_g722);
  hark_test_add_isolated_func("/media/tone/l16", test_tone_l16);
  hark_test_add_isolated_func("/media/tone/udp-aes-cm", test_tone_udp_cm);
  hark_test_add_isolated_func("/media/tone/rfc4571-stream", test_tone_stream);
  hark_test_add_isolated_func("/media/band/pcmu-blocks-5khz", test_band_pcmu);
  hark_test_add_isolated_func("/media/band/opus-wideband-passes-5khz", test_band_opus);
  hark_test_add_isolated_func("/media/codec/choose-by-preference", test_choose_codec);
  hark_test_add_isolated_func("/media/codec/opus-live-settings", test_live_settings);
  hark_test_add_isolated_func("/media/codec/opus-dtx", test_opus_dtx);
  hark_test_add_isolated_func("/media/srtp/wrong-key-plays-nothing", test_wrong_key);
  hark_test_add_isolated_func("/media/loss/ten-percent", test_loss);
  hark_test_add_isolated_func("/media/loss/jitter-buffer-keeps-its-delay",
                              test_loss_keeps_delay);
  hark_test_add_isolated_func("/media/loss/opus-adapts-and-recovers",
                              test_loss_adapts_and_recovers);
  hark_test_add_isolated_func("/media/adapt/feedback-says-what-was-sent",
                              test_feedback_says_what_was_sent);
  hark_test_add_isolated_func("/media/adapt/feedback-says-what-arrived",
                              test_feedback_says_what_arrived);
  hark_test_add_isolated_func("/media/narrow/opus-fits-1500-bytes-per-s", test_narrow_link);
  hark_test_add_isolated_func("/media/narrow/reports-lost-in-silence", test_narrow_reports_lost);
  hark_test_add_isolated_func("/media/hold/keepalive", test_hold);
  hark_test_add_isolated_func("/media/hold/not-silent", test_silent_not_on_hold);
  hark_test_add_isolated_func("/media/mute/far-end-hears-silence", test_mute);
  hark_test_add_isolated_func("/media/silent/far-end-stops", test_silent);
  hark_test_add_isolated_func("/media/dtmf/opus-digits-once-each", test_dtmf_opus);
  hark_test_add_isolated_func("/media/dtmf/pcmu-digits-once-each", test_dtmf_pcmu);
  hark_test_add_isolated_func("/media/dtmf/bad-digit-and-hold-refused", test_dtmf_refused);
  hark_test_add_isolated_func("/media/dtmf/clock-follows-codec-swap", test_dtmf_after_swap);
  hark_test_add_isolated_func("/media/jitter/adaptive-buffer-grows", test_adaptive_jitter);
  hark_test_add_isolated_func("/media/swap/opus-pcmu-opus", test_swap);
  hark_test_add_isolated_func("/media/errors/bad-packets-dropped-and-counted", test_bad_packets);
  hark_test_add_isolated_func("/media/errors/no-sound-server", test_no_sound_server);
  hark_test_add_isolated_func("/media/errors/bad-config", test_bad_config);
  hark_test_add_isolated_func("/media/pulse/tone-played-to-the-sound-server", test_pulse_playback);
  hark_test_add_isolated_func("/media/pulse/tone-captured-from-the-sound-server", test_pulse_capture);
  int status = g_test_run();
  codecs_clear(&codecs);
  g_rmdir(tmpdir);
  g_free(tmpdir);
  return status;
}
