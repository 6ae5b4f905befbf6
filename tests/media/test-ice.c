/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-ice.c: ICE through libnice (core/media/media-ice.c) between two agents of this
 * process on 127.0.0.1, their credentials and candidates handed over through the
 * callbacks as a call's signalling would: they connect, packets go both ways, a media
 * session carries a tone over them; with coturn started here the relayed paths (TURN
 * over UDP and over TCP) and a restart onto the relay while packets flow; what a
 * hostile peer could send as candidates is refused. */
#include "media-harness.h"
#include "media-ice.h"
#include "media-session.h" /* hark_media_transport_send, _start */
#include "test-isolate.h"
#include "test-ports.h"

#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>

typedef struct Side Side;
struct Side {
  const char *name;
  HarkMediaIce *ice;
  Side *peer;
  HarkMediaIceState state;
  guint candidates_sent, candidates_ignored;
  int restarted; /* 0, or 1 / -1 when restart_done said ok / not */
  gboolean drop_when_connected; /* the owner lets go inside the callback */
  gboolean hide_host; /* its host candidates never reach the peer (as behind a NAT) */
  gboolean gathered;
  guint packets; /* received through the transport */
  guint8 last[64];
};

static void
on_candidate(gpointer data, const char *line)
{
  Side *s = data;
  s->candidates_sent++;
  if (s->peer->ice == NULL || (s->hide_host && strstr(line, " typ host") != NULL))
    return;
  g_autoptr(GError) error = NULL;
  if (!hark_media_ice_add_remote_candidate(s->peer->ice, line, &error)) {
    g_assert_no_error(error); /* our own lines are never refused, only ignored */
    s->candidates_ignored++;
  }
}

static void
on_gathered(gpointer data)
{
  Side *s = data;
  s->gathered = TRUE;
  if (s->peer->ice != NULL)
    hark_media_ice_remote_gathering_done(s->peer->ice);
}

static void
on_state(gpointer data, HarkMediaIceState state)
{
  Side *s = data;
  s->state = state;
  if (state == HARK_MEDIA_ICE_CONNECTED && s->drop_when_connected)
    g_clear_pointer(&s->ice, hark_media_ice_unref);
}

static void
on_restart_done(gpointer data, HarkMediaIcePath path, const char *failure)
{
  Side *s = data;
  s->restarted = failure == NULL ? 1 : -1;
}

static const HarkMediaIceCallbacks callbacks = { .version = 2,
                                                 .candidate = on_candidate,
                                                 .gathering_done = on_gathered,
                                                 .state_changed = on_state,
                                                 .restart_done = on_restart_done };

typedef struct {
  Side a, b;
  GSubprocess *turn;
  guint turn_port;
  char *dir;
} Fixture;

static void
exchange_credentials(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_media_ice_set_remote_credentials(f->b.ice, hark_media_ice_local_ufrag(f->a.ice),
                                                      hark_media_ice_local_pwd(f->a.ice), &error));
  g_assert_no_error(error);
  g_assert_true(hark_media_ice_set_remote_credentials(f->a.ice, hark_media_ice_local_ufrag(f->b.ice),
                                                      hark_media_ice_local_pwd(f->b.ice), &error));
  g_assert_no_error(error);
}

/* Two agents, a controlling; their candidates reach each other from the main loop. */
static void
start_pair(Fixture *f, const HarkMediaIceConfig *ca, const HarkMediaIceConfig *cb)
{
  f->a.name = "a";
  f->b.name = "b";
  f->a.peer = &f->b;
  f->b.peer = &f->a;
  g_autoptr(GError) error = NULL;
  f->a.ice = hark_media_ice_new(ca, &callbacks, &f->a, &error);
  g_assert_no_error(error);
  f->b.ice = hark_media_ice_new(cb, &callbacks, &f->b, &error);
  g_assert_no_error(error);
  exchange_credentials(f);
}

static gboolean
both_connected(gpointer data)
{
  Fixture *f = data;
  return f->a.state == HARK_MEDIA_ICE_CONNECTED && f->b.state == HARK_MEDIA_ICE_CONNECTED &&
         hark_media_ice_get_path(f->a.ice, &(HarkMediaIcePathInfo){ 0 }) &&
         hark_media_ice_get_path(f->b.ice, &(HarkMediaIcePathInfo){ 0 });
}

static HarkMediaIceConfig
loopback_config(gboolean controlling)
{
  return (HarkMediaIceConfig){ .controlling = controlling, .allow_loopback = TRUE };
}

static void
start_loopback_pair(Fixture *f)
{
  HarkMediaIceConfig ca = loopback_config(TRUE), cb = loopback_config(FALSE);
  start_pair(f, &ca, &cb);
}

static void
fixture_clear(Fixture *f)
{
  g_clear_pointer(&f->a.ice, hark_media_ice_unref);
  g_clear_pointer(&f->b.ice, hark_media_ice_unref);
  run_for(50); /* the agents' close (TURN deallocation) completes on the loop */
  if (f->turn != NULL) {
    g_subprocess_force_exit(f->turn);
    g_subprocess_wait(f->turn, NULL, NULL);
    g_clear_object(&f->turn);
  }
  if (f->dir != NULL) {
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
    g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL);
    g_free(f->dir);
  }
}

static void
log_path(const char *who, HarkMediaIce *ice)
{
  HarkMediaIcePathInfo p;
  g_assert_true(hark_media_ice_get_path(ice, &p));
  g_test_message("%s: %s %s %s -> %s", who, p.kind, p.transport, p.local, p.remote);
}

/* ---- packets through the transports --------------------------------------------------- */

static void
on_packet(const guint8 *data, gsize length, gpointer user_data)
{
  Side *s = user_data;
  s->packets++;
  memcpy(s->last, data, MIN(length, sizeof s->last));
}

typedef struct {
  Side *side;
  guint at_least;
} Count;

static gboolean
received(gpointer data)
{
  Count *c = data;
  return c->side->packets >= c->at_least;
}

static void
send_some(HarkMediaTransport *t, const char *text, guint n)
{
  for (guint i = 0; i < n; i++)
    g_assert_true(hark_media_transport_send(t, (const guint8 *)text, strlen(text) + 1, NULL));
}

/* Each side sends ten packets; at least nine arrive (loopback does not lose them, but a
 * packet sent in the moment of a switch may go). */
static void
check_packets_both_ways(Fixture *f, HarkMediaTransport *ta, HarkMediaTransport *tb)
{
  guint a0 = f->a.packets, b0 = f->b.packets;
  send_some(ta, "from a", 10);
  send_some(tb, "from b", 10);
  Count cb = { &f->b, b0 + 9 }, ca = { &f->a, a0 + 9 };
  g_assert_true(run_until(received, &cb, 3000));
  g_assert_true(run_until(received, &ca, 3000));
  g_assert_cmpstr((char *)f->b.last, ==, "from a");
  g_assert_cmpstr((char *)f->a.last, ==, "from b");
}

/* Through transports of the selected pairs, as a media session would use them. */
static void
packets_both_ways(Fixture *f)
{
  HarkMediaTransport *ta = hark_media_ice_new_transport(f->a.ice);
  HarkMediaTransport *tb = hark_media_ice_new_transport(f->b.ice);
  hark_media_transport_start(ta, on_packet, &f->a);
  hark_media_transport_start(tb, on_packet, &f->b);
  check_packets_both_ways(f, ta, tb);
  hark_media_transport_free(ta);
  hark_media_transport_free(tb);
}

static void
test_connect_host(void)
{
  Fixture f = { 0 };
  start_loopback_pair(&f);
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(run_until(both_connected, &f, 5000));
  g_test_message("connected in %.1f ms", (g_get_monotonic_time() - t0) / 1000.0);
  g_assert_true(f.a.gathered && f.b.gathered);
  g_assert_cmpuint(f.a.candidates_sent, >=, 1);
  g_autoptr(GPtrArray) lines = hark_media_ice_local_candidates(f.a.ice);
  g_assert_cmpuint(lines->len, ==, f.a.candidates_sent);
  g_assert_true(g_str_has_prefix(g_ptr_array_index(lines, 0), "candidate:"));
  HarkMediaIcePathInfo p;
  g_assert_true(hark_media_ice_get_path(f.a.ice, &p));
  g_assert_cmpstr(p.kind, ==, "host");
  g_assert_cmpstr(p.transport, ==, "udp");
  log_path("a", f.a.ice);
  packets_both_ways(&f);
  fixture_clear(&f);
}

/* A session may start while ICE checks (a call does, to have audio at once): what it
 * sends before a pair is selected is lost, except the last packet, which arrives as
 * soon as one is; only that one. */
static void
test_early_packet(void)
{
  Fixture f = { 0 };
  start_loopback_pair(&f);
  HarkMediaTransport *ta = hark_media_ice_new_transport(f.a.ice);
  HarkMediaTransport *tb = hark_media_ice_new_transport(f.b.ice);
  hark_media_transport_start(ta, on_packet, &f.a);
  hark_media_transport_start(tb, on_packet, &f.b);
  send_some(ta, "early, lost", 3);
  send_some(ta, "early, last", 1);
  g_assert_true(run_until(both_connected, &f, 5000));
  Count cb = { &f.b, 1 };
  g_assert_true(run_until(received, &cb, 3000));
  g_assert_cmpuint(f.b.packets, ==, 1);
  g_assert_cmpstr((char *)f.b.last, ==, "early, last");
  g_assert_cmpuint(f.a.packets, ==, 0); /* b sent nothing early */
  check_packets_both_ways(&f, ta, tb);
  hark_media_transport_free(ta);
  hark_media_transport_free(tb);
  fixture_clear(&f);
}

/* RTP from an address ICE did not validate never reaches the session, even when it is
 * sent to the selected pair's own port. */
static void
test_stranger_dropped(void)
{
  Fixture f = { 0 };
  start_loopback_pair(&f);
  g_assert_true(run_until(both_connected, &f, 5000));
  HarkMediaIcePathInfo p;
  g_assert_true(hark_media_ice_get_path(f.a.ice, &p));
  char *colon = strrchr(p.local, ':');
  *colon = '\0';
  g_autoptr(GSocketAddress) target =
    g_inet_socket_address_new_from_string(p.local, atoi(colon + 1));
  g_autoptr(GSocket) stranger =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  HarkMediaTransport *ta = hark_media_ice_new_transport(f.a.ice);
  HarkMediaTransport *tb = hark_media_ice_new_transport(f.b.ice);
  hark_media_transport_start(ta, on_packet, &f.a);
  for (int i = 0; i < 10; i++)
    g_assert_cmpint(g_socket_send_to(stranger, target, "\x80\x00stranger", 10, NULL, NULL), ==, 10);
  send_some(tb, "from b", 3);
  Count c = { &f.a, 3 };
  g_assert_true(run_until(received, &c, 2000));
  run_for(50); /* anything else queued on the loop */
  g_assert_cmpuint(f.a.packets, ==, 3);
  g_assert_cmpstr((char *)f.a.last, ==, "from b");
  hark_media_transport_free(ta);
  hark_media_transport_free(tb);
  fixture_clear(&f);
}

/* A call that ends in the state callback frees the object from inside libnice's signal:
 * nothing of it may be touched after that (ASan in build-san). */
static gboolean
dropped(gpointer data)
{
  Fixture *f = data;
  return f->a.ice == NULL && f->b.state == HARK_MEDIA_ICE_CONNECTED;
}

static void
test_unref_in_callback(void)
{
  Fixture f = { 0 };
  f.a.drop_when_connected = TRUE;
  start_loopback_pair(&f);
  g_assert_true(run_until(dropped, &f, 5000));
  run_for(100); /* whatever libnice still had queued for a's agent */
  fixture_clear(&f);
}

static gboolean
a_failed(gpointer data)
{
  Fixture *f = data;
  return f->a.state == HARK_MEDIA_ICE_FAILED;
}

/* The far end vanishes mid-call: consent (RFC 7675) runs out and the state says so
 * (libnice 0.1.22 on: 30 s; before, the keep-alive checks that stand in for it: 50 s). */
static void
test_peer_gone(void)
{
  Fixture f = { 0 };
  start_loopback_pair(&f);
  g_assert_true(run_until(both_connected, &f, 5000));
  HarkMediaTransport *ta = hark_media_ice_new_transport(f.a.ice);
  g_clear_pointer(&f.b.ice, hark_media_ice_unref);
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(run_until(a_failed, &f, 60000));
  g_test_message("failed %.1f s after the peer went", (g_get_monotonic_time() - t0) / 1e6);
  hark_media_transport_free(ta);
  fixture_clear(&f);
}

/* ---- a tone over ICE ------------------------------------------------------------------ */

static Codecs codecs;

#define TONE_RMS (0.3 * 32767 / G_SQRT2)

static void
test_tone(void)
{
  codecs_load(&codecs);
  Fixture f = { 0 };
  start_loopback_pair(&f);
  g_assert_true(run_until(both_connected, &f, 5000));
  HarkMediaCodec opus = codec_named(&codecs, "opus", NULL);
  g_autoptr(GBytes) ka = test_key(HARK_MEDIA_SRTP_AEAD_AES_256_GCM, 1);
  g_autoptr(GBytes) kb = test_key(HARK_MEDIA_SRTP_AEAD_AES_256_GCM, 2);
  g_autofree char *tmpdir = g_dir_make_tmp("hark-ice-XXXXXX", NULL);
  g_autofree char *wav_path = g_build_filename(tmpdir, "ice-tone.wav", NULL);
  g_autofree char *sink = g_strconcat("wav:", wav_path, NULL);
  HarkMediaConfig sa = { .codecs = &opus, .n_codecs = 1, .source = "tone:440", .sink = "null",
                         .srtp_suite = HARK_MEDIA_SRTP_AEAD_AES_256_GCM, .send_key = ka,
                         .receive_key = kb, .transport = hark_media_ice_new_transport(f.a.ice) };
  HarkMediaConfig sb = { .codecs = &opus, .n_codecs = 1, .source = "silence", .sink = sink,
                         .srtp_suite = HARK_MEDIA_SRTP_AEAD_AES_256_GCM, .send_key = kb,
                         .receive_key = ka, .transport = hark_media_ice_new_transport(f.b.ice) };
  g_autoptr(GError) error = NULL;
  HarkMediaSession *a = hark_media_session_new(&sa, &error);
  g_assert_no_error(error);
  HarkMediaSession *b = hark_media_session_new(&sb, &error);
  g_assert_no_error(error);
  g_assert_true(hark_media_session_start(b, &error));
  g_assert_true(hark_media_session_start(a, &error));
  run_for(2000);
  HarkMediaStats st;
  hark_media_session_get_stats(b, &st);
  g_assert_cmpuint(st.transport_overhead, ==, 28);
  hark_media_session_free(a);
  hark_media_session_free(b);
  Wav wav = { 0 };
  g_assert_true(wav_read(wav_path, &wav));
  g_assert_cmpuint(wav.n, >, 48000 * 3 / 2);
  gsize from = wav.n - 48000, len = 48000 / 2;
  double hz = wav_dominant_hz(&wav, from, len);
  double db = 20 * log10(wav_rms(&wav, from, len) / TONE_RMS);
  g_test_message("over ICE: sent 440 Hz, received %g Hz at %.1f dB, %" G_GUINT64_FORMAT " RTP",
                 hz, db, st.rtp_received);
  g_assert_cmpfloat(fabs(hz - 440), <=, 20);
  g_assert_cmpfloat(fabs(db), <=, 3);
  wav_clear(&wav);
  g_unlink(wav_path);
  g_rmdir(tmpdir);
  fixture_clear(&f);
  codecs_clear(&codecs);
}

/* a's host candidates never reach b, as if a stood behind a NAT: b learns a's address
 * from a's checks (a peer-reflexive candidate), and b's path is the punched one while a
 * reaches b's host candidate directly. (Server-reflexive gathering is not covered on
 * one machine: with no NAT in between, libnice drops a reflexive address equal to a
 * host's, and the in-process fake-stun serves no RFC 3489-style retransmissions.) */
static void
test_punched(void)
{
  Fixture f = { 0 };
  f.a.hide_host = TRUE;
  start_loopback_pair(&f);
  g_assert_true(run_until(both_connected, &f, 5000));
  HarkMediaIcePathInfo p;
  log_path("a", f.a.ice);
  log_path("b", f.b.ice);
  g_assert_true(hark_media_ice_get_path(f.a.ice, &p));
  g_assert_cmpstr(p.kind, ==, "host");
  g_assert_true(hark_media_ice_get_path(f.b.ice, &p));
  g_assert_cmpstr(p.kind, ==, "punched");
  g_assert_cmpstr(p.transport, ==, "udp");
  packets_both_ways(&f);
  fixture_clear(&f);
}

/* `path tcp` without a relay: ICE-TCP between the two hosts. */
static void
test_path_tcp_host(void)
{
  Fixture f = { 0 };
  HarkMediaIceConfig ca = loopback_config(TRUE), cb = loopback_config(FALSE);
  ca.path = cb.path = HARK_MEDIA_ICE_PATH_TCP;
  start_pair(&f, &ca, &cb);
  g_assert_true(run_until(both_connected, &f, 5000));
  g_autoptr(GPtrArray) lines = hark_media_ice_local_candidates(f.a.ice);
  for (guint i = 0; i < lines->len; i++)
    g_assert_nonnull(strstr(g_ptr_array_index(lines, i), " TCP "));
  g_test_message("a: %s", (char *)g_ptr_array_index(lines, 0));
  HarkMediaIcePathInfo p;
  g_assert_true(hark_media_ice_get_path(f.a.ice, &p));
  log_path("a", f.a.ice);
  g_assert_cmpstr(p.kind, ==, "host");
  g_assert_cmpstr(p.transport, ==, "tcp");
  packets_both_ways(&f);
  fixture_clear(&f);
}

/* ---- what a hostile peer sends -------------------------------------------------------- */

static void
expect_refused(HarkMediaIce *ice, const char *line)
{
  g_autoptr(GError) error = NULL;
  guint64 before = hark_media_ice_refused_candidates(ice);
  g_assert_false(hark_media_ice_add_remote_candidate(ice, line, &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID);
  g_assert_cmpuint(hark_media_ice_refused_candidates(ice), ==, before + 1);
  g_test_message("refused: %s", error->message);
}

static void
test_refused(void)
{
  HarkMediaIceConfig c = { .controlling = TRUE };
  g_autoptr(GError) error = NULL;
  Side side = { 0 };
  side.peer = &side;
  g_autoptr(HarkMediaIce) ice = hark_media_ice_new(&c, &callbacks, &side, &error);
  g_assert_no_error(error);
  expect_refused(ice, "garbage");
  expect_refused(ice, "candidate:");
  expect_refused(ice, "candidate:1 1 UDP 2013266431 192.0.2.1 0 typ host");
  expect_refused(ice, "candidate:1 1 UDP 2013266431 not.an.address 4000 typ host");
  expect_refused(ice, "candidate:1 1 UDP 2013266431 192.0.2.1 70000 typ host");
  expect_refused(ice, "candidate:1 1 SCTP 2013266431 192.0.2.1 4000 typ host");
  expect_refused(ice, "candidate:1 1 UDP 2013266431 192.0.2.1 4000 typ bogus");
  expect_refused(ice, "candidate:1 2 UDP 2013266431 192.0.2.1 4000 typ host");
  expect_refused(ice, "candidate:1 1 UDP 2013266431 0.0.0.0 4000 typ host");
  expect_refused(ice, "candidate:1 1 UDP 2013266431 224.0.0.1 4000 typ host");
  /* Without allow_loopback, checks to this machine's own services are not made. */
  expect_refused(ice, "candidate:1 1 UDP 2013266431 127.0.0.1 4000 typ host");
  g_autofree char *log_forgery = g_strdup("candidate:1 1 UDP 1 192.0.2.1 4000 typ host\nFAKE");
  expect_refused(ice, log_forgery);
  char longer[600];
  memset(longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  expect_refused(ice, longer);
  /* Credentials a peer could make up. */
  g_assert_false(hark_media_ice_set_remote_credentials(ice, "ab", "0123456789012345678901", &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_false(hark_media_ice_set_remote_credentials(ice, "abcd", "short", &error));
  g_clear_error(&error);
  g_assert_false(
    hark_media_ice_set_remote_credentials(ice, "ab d", "0123456789012345678901", &error));
  g_clear_error(&error);
  /* A flood of plausible candidates: 32 taken, the 33rd refused. */
  for (guint i = 0; i < 32; i++) {
    g_autofree char *line =
      g_strdup_printf("candidate:%u 1 UDP 2013266431 192.0.2.%u 4000 typ host", i, i + 1);
    g_assert_true(hark_media_ice_add_remote_candidate(ice, line, &error));
    g_assert_no_error(error);
  }
  expect_refused(ice, "candidate:99 1 UDP 2013266431 192.0.2.200 4000 typ host");
  /* The same credentials again do not start a new count. */
  g_assert_true(hark_media_ice_set_remote_credentials(ice, "abcd", "0123456789012345678901", &error));
  g_assert_true(hark_media_ice_set_remote_credentials(ice, "abcd", "0123456789012345678901", &error));
  g_assert_no_error(error);
  expect_refused(ice, "candidate:98 1 UDP 2013266431 192.0.2.201 4000 typ host");
  /* New credentials are a restart of the peer: one a second. */
  g_assert_true(hark_media_ice_set_remote_credentials(ice, "efgh", "0123456789012345678901", &error));
  g_assert_no_error(error);
  g_assert_true(hark_media_ice_add_remote_candidate(
    ice, "candidate:1 1 UDP 2013266431 192.0.2.1 4000 typ host", &error)); /* a new count */
  g_assert_false(hark_media_ice_set_remote_credentials(ice, "ijkl", "0123456789012345678901", &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID);
  g_clear_error(&error);
  /* Not literal addresses for the servers. */
  HarkMediaIceConfig bad = { .stun_host = "stun.example.org", .stun_port = 3478 };
  g_assert_null(hark_media_ice_new(&bad, &callbacks, &side, &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID);
  g_clear_error(&error);
  HarkMediaIceConfig relay_without_turn = { .path = HARK_MEDIA_ICE_PATH_RELAY };
  g_assert_null(hark_media_ice_new(&relay_without_turn, &callbacks, &side, &error));
  g_assert_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID);
}

/* A UDP path ignores (without an error) the peer's TCP and relayed candidates. */
static void
test_path_filter(void)
{
  HarkMediaIceConfig c = { .controlling = TRUE, .path = HARK_MEDIA_ICE_PATH_UDP };
  g_autoptr(GError) error = NULL;
  Side side = { 0 };
  side.peer = &side;
  g_autoptr(HarkMediaIce) ice = hark_media_ice_new(&c, &callbacks, &side, &error);
  g_assert_no_error(error);
  g_assert_false(hark_media_ice_add_remote_candidate(
    ice, "candidate:1 1 TCP 1015023871 192.0.2.1 9 typ host tcptype active", &error));
  g_assert_no_error(error);
  g_assert_false(hark_media_ice_add_remote_candidate(
    ice, "candidate:2 1 UDP 33562623 192.0.2.9 50000 typ relay raddr 192.0.2.1 rport 4000",
    &error));
  g_assert_no_error(error);
  g_assert_true(hark_media_ice_add_remote_candidate(
    ice, "candidate:3 1 UDP 2013266431 192.0.2.1 4000 typ host", &error));
  g_assert_no_error(error);
  g_assert_cmpuint(hark_media_ice_refused_candidates(ice), ==, 0);
}

/* ---- relayed, with coturn ------------------------------------------------------------- */

static gboolean
turn_listening(guint port)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_timeout(client, 1);
  g_socket_client_set_enable_proxy(client, FALSE);
  g_autoptr(GSocketConnection) c =
    g_socket_client_connect_to_host(client, "127.0.0.1", port, NULL, NULL);
  return c != NULL;
}

/* A case that fails aborts its process: coturn must not outlive it. */
static void
die_with_parent(gpointer data)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static guint
free_udp_port(void)
{
  g_autoptr(GSocket) s =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
  g_assert_true(g_socket_bind(s, any, FALSE, NULL));
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address(s, NULL);
  return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

/* coturn on 127.0.0.1 (long-term credentials U:P, realm hark); FALSE (case skipped) when
 * it is not installed. A port that was free a moment ago may be taken by another test:
 * then coturn does not listen and another one is tried. */
static gboolean
start_turn_full(Fixture *f, gboolean no_udp)
{
  g_autofree char *turnserver = g_find_program_in_path("turnserver");
  if (turnserver == NULL) {
    g_test_skip("turnserver (coturn) is not installed");
    return FALSE;
  }
  f->dir = g_dir_make_tmp("hark-turn-XXXXXX", NULL);
  g_autofree char *pid = g_build_filename(f->dir, "turn.pid", NULL);
  g_autofree char *db = g_build_filename(f->dir, "turndb", NULL);
  for (int attempt = 0; attempt < 5; attempt++) {
    f->turn_port = free_udp_port();
    g_autofree char *port = g_strdup_printf("%u", f->turn_port);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
    f->turn = g_subprocess_launcher_spawn(
      launcher, &error, turnserver, "-n", "--listening-ip", "127.0.0.1", "--relay-ip",
      "127.0.0.1", "--lt-cred-mech", "--user", "U:P", "--realm", "hark", "--no-tls", "--no-dtls",
      "--no-cli", "--allow-loopback-peers", "--log-file", "stdout", "--pidfile", pid, "--userdb",
      db, "-p", port, no_udp ? "--no-udp" : NULL, NULL);
    g_assert_no_error(error);
    gint64 deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline && !turn_listening(f->turn_port)) {
      if (g_subprocess_get_identifier(f->turn) == NULL) /* it exited */
        break;
      run_for(20);
    }
    if (turn_listening(f->turn_port))
      return TRUE;
    g_subprocess_force_exit(f->turn);
    g_subprocess_wait(f->turn, NULL, NULL);
    g_clear_object(&f->turn);
  }
  g_assert_not_reached();
}

static gboolean
start_turn(Fixture *f)
{
  return start_turn_full(f, FALSE);
}

static HarkMediaIceConfig
relay_config(Fixture *f, gboolean controlling, HarkMediaIcePath path, gboolean udp, gboolean tcp)
{
  HarkMediaIceConfig c = loopback_config(controlling);
  c.turn_host = "127.0.0.1";
  c.turn_port = f->turn_port;
  c.turn_username = "U";
  c.turn_password = "P";
  c.turn_udp = udp;
  c.turn_tcp = tcp;
  c.path = path;
  return c;
}

/* a relays (TURN over UDP and/or TCP as told, path as told); b is a plain host. */
/* web: the relay's own port is one where nothing listens, and the TURN server is at
 * the web port instead (a node whose UDP is blocked and only the web ports get out). */
static void
check_relayed_web(HarkMediaIcePath path, gboolean turn_udp, gboolean turn_tcp, gboolean udp_blocked,
                  gboolean web, const char *expect)
{
  Fixture f = { 0 };
  if (!start_turn_full(&f, udp_blocked)) {
    fixture_clear(&f);
    return;
  }
  HarkMediaIceConfig ca = relay_config(&f, TRUE, path, turn_udp, turn_tcp);
  if (web) {
    ca.turn_web_port = f.turn_port;
    ca.turn_port = free_udp_port(); /* nothing takes TCP there either */
    ca.udp_blocked = TRUE;
  }
  HarkMediaIceConfig cb = loopback_config(FALSE);
  start_pair(&f, &ca, &cb);
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(run_until(both_connected, &f, 8000));
  g_test_message("relayed connected in %.1f ms", (g_get_monotonic_time() - t0) / 1000.0);
  /* a announced relayed candidates only */
  g_autoptr(GPtrArray) lines = hark_media_ice_local_candidates(f.a.ice);
  g_assert_cmpuint(lines->len, >=, 1);
  for (guint i = 0; i < lines->len; i++) {
    g_test_message("a: %s", (char *)g_ptr_array_index(lines, i));
    g_assert_nonnull(strstr(g_ptr_array_index(lines, i), "typ relay"));
  }
  HarkMediaIcePathInfo p;
  g_assert_true(hark_media_ice_get_path(f.a.ice, &p));
  log_path("a", f.a.ice);
  log_path("b", f.b.ice);
  g_assert_cmpstr(p.kind, ==, "relayed");
  g_assert_cmpstr(p.transport, ==, expect);
  g_assert_true(hark_media_ice_get_path(f.b.ice, &p));
  g_assert_cmpstr(p.kind, ==, "relayed");
  packets_both_ways(&f);
  fixture_clear(&f);
}

static void
check_relayed_full(HarkMediaIcePath path, gboolean turn_udp, gboolean turn_tcp,
                   gboolean udp_blocked, const char *expect)
{
  check_relayed_web(path, turn_udp, turn_tcp, udp_blocked, FALSE, expect);
}

static void
check_relayed(HarkMediaIcePath path, gboolean turn_udp, gboolean turn_tcp, const char *expect)
{
  check_relayed_full(path, turn_udp, turn_tcp, FALSE, expect);
}

/* UDP blocked, the relay's own port unreachable: TURN over TCP to its web port (the
 * SN's tls443 port, turn_web_port) carries the call. */
static void
test_relayed_web_port(void)
{
  check_relayed_web(HARK_MEDIA_ICE_PATH_RELAY, TRUE, TRUE, TRUE, TRUE, "tcp");
}

static void
test_relayed_udp(void)
{
  check_relayed(HARK_MEDIA_ICE_PATH_RELAY, TRUE, FALSE, "udp");
}

static void
test_relayed_tcp(void)
{
  check_relayed(HARK_MEDIA_ICE_PATH_RELAY, FALSE, TRUE, "tcp");
}

/* The paper's setup 3 on one machine: both ways to the relay configured, but UDP to it
 * gets no answer (coturn --no-udp): TCP to the relay carries the call. */
static void
test_relayed_udp_blocked(void)
{
  check_relayed_full(HARK_MEDIA_ICE_PATH_RELAY, TRUE, TRUE, TRUE, "tcp");
}

/* `path tcp` with a relay reachable both ways: every packet goes over TCP to it. */
static void
test_path_tcp_relayed(void)
{
  check_relayed(HARK_MEDIA_ICE_PATH_TCP, TRUE, TRUE, "tcp");
}

/* Packets every 10 ms from both sides while the restart runs. */
typedef struct {
  HarkMediaTransport *ta, *tb;
  guint sent; /* by each side */
} Pump;

static gboolean
pump(gpointer data)
{
  Pump *p = data;
  send_some(p->ta, "from a", 1);
  send_some(p->tb, "from b", 1);
  p->sent++;
  return G_SOURCE_CONTINUE;
}

static gboolean
moved_to_relay(gpointer data)
{
  Fixture *f = data;
  HarkMediaIcePathInfo p;
  return hark_media_ice_get_path(f->a.ice, &p) && strcmp(p.kind, "relayed") == 0;
}

static void
test_restart_to_relay(void)
{
  Fixture f = { 0 };
  if (!start_turn(&f)) {
    fixture_clear(&f);
    return;
  }
  HarkMediaIceConfig ca = relay_config(&f, TRUE, HARK_MEDIA_ICE_PATH_ANY, TRUE, FALSE);
  HarkMediaIceConfig cb = relay_config(&f, FALSE, HARK_MEDIA_ICE_PATH_ANY, TRUE, FALSE);
  start_pair(&f, &ca, &cb);
  g_assert_true(run_until(both_connected, &f, 5000));
  HarkMediaIcePathInfo p;
  g_assert_true(hark_media_ice_get_path(f.a.ice, &p));
  g_assert_cmpstr(p.kind, ==, "host"); /* direct first */
  Pump pu = { hark_media_ice_new_transport(f.a.ice), hark_media_ice_new_transport(f.b.ice) };
  hark_media_transport_start(pu.ta, on_packet, &f.a);
  hark_media_transport_start(pu.tb, on_packet, &f.b);
  guint timer = g_timeout_add(10, pump, &pu);
  Count c = { &f.b, 5 };
  g_assert_true(run_until(received, &c, 2000));

  /* `path relay` on a's side: the call sends the new credentials, b follows. */
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(hark_media_ice_restart(f.a.ice, HARK_MEDIA_ICE_PATH_RELAY, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(hark_media_ice_get_state(f.a.ice), ==, HARK_MEDIA_ICE_CONNECTED);
  exchange_credentials(&f);
  /* While the new checks run, packets keep coming over the old pair. */
  guint before = f.b.packets;
  c.at_least = before + 5;
  g_assert_true(run_until(received, &c, 1000));
  g_assert_true(run_until(moved_to_relay, &f, 8000));
  g_test_message("restart onto the relay: relayed after at most %.1f ms", (g_get_monotonic_time() - t0) / 1000.0);
  log_path("a", f.a.ice);
  g_assert_cmpuint(f.a.state, ==, HARK_MEDIA_ICE_CONNECTED);
  g_assert_cmpint(f.a.restarted, ==, 1);
  /* and after it, over the relay */
  c.at_least = f.b.packets + 20;
  g_assert_true(run_until(received, &c, 2000));
  Count ca2 = { &f.a, f.a.packets + 20 };
  g_assert_true(run_until(received, &ca2, 2000));
  g_source_remove(timer);
  /* Nothing was lost over the switch but what was in flight when the old agents closed
   * (loopback loses nothing else). */
  c.at_least = pu.sent;
  ca2.at_least = pu.sent;
  run_until(received, &c, 500);
  run_until(received, &ca2, 500);
  g_test_message("sent %u each way; b got %u, a got %u", pu.sent, f.b.packets, f.a.packets);
  g_assert_cmpuint(f.b.packets + 3, >=, pu.sent);
  g_assert_cmpuint(f.a.packets + 3, >=, pu.sent);
  hark_media_transport_free(pu.ta);
  hark_media_transport_free(pu.tb);
  fixture_clear(&f);
}

static gboolean
restart_ended(gpointer data)
{
  Side *s = data;
  return s->restarted != 0;
}

/* A restart onto a relay that does not answer: it is given up, said so, and the call
 * goes on over the old pair. */
static void
test_restart_fails(void)
{
  Fixture f = { 0 };
  guint16 closed;
  g_autoptr(GSocket) hold = hark_test_closed_port(&closed);
  g_assert_nonnull(hold);
  HarkMediaIceConfig ca = loopback_config(TRUE), cb = loopback_config(FALSE);
  ca.turn_host = "127.0.0.1";
  ca.turn_port = closed; /* TCP: refused; UDP: nothing listens either */
  ca.turn_username = "U";
  ca.turn_password = "P";
  ca.turn_udp = ca.turn_tcp = TRUE;
  start_pair(&f, &ca, &cb);
  g_assert_true(run_until(both_connected, &f, 5000));
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(hark_media_ice_restart(f.a.ice, HARK_MEDIA_ICE_PATH_RELAY, &error));
  exchange_credentials(&f);
  g_assert_true(run_until(restart_ended, &f.a, 20000));
  g_test_message("restart given up after %.0f ms", (g_get_monotonic_time() - t0) / 1000.0);
  g_assert_cmpint(f.a.restarted, ==, -1);
  g_assert_cmpuint(hark_media_ice_get_state(f.a.ice), ==, HARK_MEDIA_ICE_CONNECTED);
  HarkMediaIcePathInfo p;
  g_assert_true(hark_media_ice_get_path(f.a.ice, &p));
  g_assert_cmpstr(p.kind, ==, "host");
  packets_both_ways(&f);
  fixture_clear(&f);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 90000);
  g_setenv("PULSE_SERVER", "unix:/nonexistent/hark-test", TRUE);
  hark_test_add_isolated_func("/ice/connect/host-packets-both-ways", test_connect_host);
  hark_test_add_isolated_func("/ice/connect/early-packet-kept", test_early_packet);
  hark_test_add_isolated_func("/ice/refused/stranger-packets-dropped", test_stranger_dropped);
  hark_test_add_isolated_func("/ice/connect/owner-lets-go-in-callback", test_unref_in_callback);
  hark_test_add_isolated_func("/ice/connect/peer-gone-fails", test_peer_gone);
  hark_test_add_isolated_func("/ice/media/tone-over-ice", test_tone);
  hark_test_add_isolated_func("/ice/refused/absurd-candidates", test_refused);
  hark_test_add_isolated_func("/ice/path/udp-ignores-tcp-and-relay", test_path_filter);
  hark_test_add_isolated_func("/ice/connect/peer-reflexive-is-punched", test_punched);
  hark_test_add_isolated_func("/ice/path/tcp-between-hosts", test_path_tcp_host);
  hark_test_add_isolated_func("/ice/relay/turn-udp", test_relayed_udp);
  hark_test_add_isolated_func("/ice/relay/turn-tcp", test_relayed_tcp);
  hark_test_add_isolated_func("/ice/relay/udp-blocked-tcp-to-relay", test_relayed_udp_blocked);
  hark_test_add_isolated_func("/ice/relay/web-port", test_relayed_web_port);
  hark_test_add_isolated_func("/ice/path/tcp-over-turn-tcp", test_path_tcp_relayed);
  hark_test_add_isolated_func("/ice/restart/onto-relay-while-sending", test_restart_to_relay);
  hark_test_add_isolated_func("/ice/restart/unreachable-relay-keeps-old-pair", test_restart_fails);
  return g_test_run();
}
