/* test-media.c: media sessions end to end, as a listener would judge them: a tone sent
 * through a loopback session must come out at its frequency and level, over every
 * codec and transport; what cannot pass (a wrong key, >4 kHz through G.711) must not. */
#include "media-harness.h"

#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <math.h>
#include <sys/socket.h>

static Codecs codecs;
static char *tmpdir;

/* The level audiotestsrc produces at volume 0.3: 0.3 of full scale, RMS of a sine. */
#define TONE_RMS (0.3 * 32767 / G_SQRT2)

typedef struct {
  HarkMediaSession *a, *b; /* a sends the tone, b records */
  MemTransport *ma, *mb;
  char *wav_path;
} Pair;

typedef struct {
  const char *source;                 /* a's source; default tone:1000 */
  HarkMediaCodec *codecs;             /* both sides; default opus */
  guint n_codecs;
  HarkMediaSrtpSuite suite;
  gboolean wrong_key;
  double loss;                        /* at a's transport */
  gboolean udp, stream;               /* instead of the in-memory pair */
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
  if (o->loss > 0)
    hark_media_transport_set_loss(ta, o->loss, 42);
  g_autoptr(GBytes) ka = test_key(o->suite, 1);
  g_autoptr(GBytes) kb = test_key(o->suite, 2);
  g_autoptr(GBytes) wrong = test_key(o->suite, 3);
  static int count;
  p->wav_path = g_strdup_printf("%s/received-%d.wav", tmpdir, count++);
  g_autofree char *sink = g_strconcat("file:", p->wav_path, NULL);
  HarkMediaConfig ca = { .codecs = list, .n_codecs = n, .source = o->source ? o->source : "tone:1000",
                         .sink = "null", .srtp_suite = o->suite, .send_key = ka,
                         .receive_key = kb, .transport = ta };
  HarkMediaConfig cb = { .codecs = list, .n_codecs = n, .source = "silence", .sink = sink,
                         .srtp_suite = o->suite, .send_key = kb,
                         .receive_key = o->wrong_key ? wrong : ka, .transport = tb };
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
  pair_start(&p, &o);
  run_for(2000);
  HarkMediaStats sa, sb;
  hark_media_session_get_stats(p.a, &sa);
  hark_media_session_get_stats(p.b, &sb);
  pair_stop(&p);
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

static void test_tone_opus(void) { check_tone("opus", 1000, TRUE, NULL); }
static void test_tone_pcmu(void) { check_tone("pcmu", 1000, TRUE, NULL); }
static void test_tone_pcma(void) { check_tone("pcma", 1000, TRUE, NULL); }
static void test_tone_g722(void) { check_tone("g722", 1000, TRUE, NULL); }
static void test_tone_l16(void) { check_tone("l16", 1000, TRUE, NULL); }
static void test_band_pcmu(void) { check_tone("pcmu", 5000, FALSE, NULL); }
static void test_band_opus(void) { check_tone("opus", 5000, TRUE, NULL); }

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

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_setenv("PULSE_SERVER", "unix:/nonexistent/hark-test", TRUE);
  tmpdir = g_dir_make_tmp("hark-media-XXXXXX", NULL);
  codecs_load(&codecs);
  g_test_add_func("/media/tone/opus", test_tone_opus);
  g_test_add_func("/media/tone/pcmu", test_tone_pcmu);
  g_test_add_func("/media/tone/pcma", test_tone_pcma);
  g_test_add_func("/media/tone/g722", test_tone_g722);
  g_test_add_func("/media/tone/l16", test_tone_l16);
  g_test_add_func("/media/tone/udp-aes-cm", test_tone_udp_cm);
  g_test_add_func("/media/tone/rfc4571-stream", test_tone_stream);
  g_test_add_func("/media/band/pcmu-blocks-5khz", test_band_pcmu);
  g_test_add_func("/media/band/opus-wideband-passes-5khz", test_band_opus);
  int status = g_test_run();
  codecs_clear(&codecs);
  g_rmdir(tmpdir);
  g_free(tmpdir);
  return status;
}
