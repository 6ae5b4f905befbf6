/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-test.c: `hark media-test`, for people debugging audio: send a tone or a file
 * between two local media endpoints with a chosen codec and print what each end saw.
 * Both ends run in this process by default; with --local/--remote this process is one
 * end and another `hark media-test` (the keys swapped) is the other, which is how the
 * benchmark runs a call as two processes. */
#include "hark/hark.h"
#include "media-test.h"

#include <glib-unix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  char *codec, *source, *sink, *transport, *srtp, *swap_to, *local, *remote;
  char *send_key, *receive_key, *plugins, **plugin_dirs, **settings;
  int seconds, loss, jitter, pulse_buffer;
  double swap_at;
  gboolean json, quiet;
} TestOptions;

static void
test_options_clear(TestOptions *o)
{
  g_free(o->codec), g_free(o->source), g_free(o->sink), g_free(o->transport);
  g_free(o->srtp), g_free(o->swap_to), g_free(o->local), g_free(o->remote);
  g_free(o->send_key), g_free(o->receive_key), g_free(o->plugins), g_strfreev(o->plugin_dirs);
  g_strfreev(o->settings);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TestOptions, test_options_clear)

static void
print_stats(const char *who, HarkMediaSession *s, gboolean json)
{
  HarkMediaStats st;
  hark_media_session_get_stats(s, &st);
  if (json) {
    JsonObject *o = hark_media_stats_to_json(&st);
    json_object_set_string_member(o, "end", who);
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o);
    g_autofree char *text = json_to_string(node, FALSE);
    g_print("%s\n", text);
    return;
  }
  g_print("%s: codec %s (pt %u)%s\n", who, st.codec, st.payload_type,
          st.on_hold ? ", on hold" : "");
  g_print("  sent      %" G_GUINT64_FORMAT " packets, %" G_GUINT64_FORMAT
          " bytes (+%u per packet below)\n",
          st.packets_sent, st.bytes_sent, st.transport_overhead);
  g_print("  received  %" G_GUINT64_FORMAT " packets, %" G_GUINT64_FORMAT
          " bytes; %" G_GUINT64_FORMAT " RTP accepted\n",
          st.packets_received, st.bytes_received, st.rtp_received);
  char rtt[32] = "unknown";
  if (st.rtt_ms >= 0)
    g_snprintf(rtt, sizeof rtt, "%.1f ms", st.rtt_ms);
  g_print("  lost %" G_GINT64_FORMAT ", jitter %.1f ms, RTT %s, far end lost %.1f%% of ours\n",
          st.lost, st.jitter_ms, rtt, st.remote_loss_fraction * 100);
  g_print("  played %" G_GUINT64_FORMAT " samples (%.2f s), concealed %" G_GUINT64_FORMAT
          ", jitter buffer %u ms, encoder %d bit/s\n",
          st.played_samples, st.played_samples / 48000.0, st.concealed_samples, st.jitter_buffer_ms,
          st.encoder_bitrate);
  g_print("  dropped   srtp %" G_GUINT64_FORMAT ", malformed %" G_GUINT64_FORMAT
          ", unknown type %" G_GUINT64_FORMAT ", timestamp %" G_GUINT64_FORMAT "\n",
          st.dropped_srtp, st.dropped_malformed, st.dropped_unknown_pt, st.dropped_timestamp);
}

static GBytes *
parse_key(const char *hex, gsize length, GError **error)
{
  g_autoptr(GByteArray) bytes = g_byte_array_new();
  for (const char *p = hex; p[0] && p[1]; p += 2) {
    int hi = g_ascii_xdigit_value(p[0]), lo = g_ascii_xdigit_value(p[1]);
    if (hi < 0 || lo < 0)
      break;
    guint8 b = hi << 4 | lo;
    g_byte_array_append(bytes, &b, 1);
  }
  if (bytes->len != length || strlen(hex) != length * 2) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "a key for this SRTP suite is %zu bytes: %zu hex digits", length, length * 2);
    return NULL;
  }
  return g_byte_array_free_to_bytes(g_steal_pointer(&bytes));
}

static GBytes *
random_key(gsize length)
{
  guint8 *k = g_malloc(length);
  for (gsize i = 0; i < length; i++)
    k[i] = g_random_int_range(0, 256);
  return g_bytes_new_take(k, length);
}

static GInetSocketAddress *
parse_address(const char *text, GError **error)
{
  g_autoptr(GSocketConnectable) c = g_network_address_parse(text, 0, error);
  if (c == NULL)
    return NULL;
  GInetAddress *ip =
    g_inet_address_new_from_string(g_network_address_get_hostname(G_NETWORK_ADDRESS(c)));
  if (ip == NULL) {
    g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                "'%s': expected an IP address and port, e.g. 127.0.0.1:40000", text);
    return NULL;
  }
  GSocketAddress *a =
    g_inet_socket_address_new(ip, g_network_address_get_port(G_NETWORK_ADDRESS(c)));
  g_object_unref(ip);
  return G_INET_SOCKET_ADDRESS(a);
}

typedef struct {
  GSocketConnection *accepted;
} Accept;

static void
on_accepted(GObject *source, GAsyncResult *result, gpointer data)
{
  Accept *a = data;
  a->accepted = g_socket_listener_accept_finish(G_SOCKET_LISTENER(source), result, NULL, NULL);
}

/* A real TCP connection on loopback, each end framing with RFC 4571. */
static gboolean
tcp_pair(HarkMediaTransport **a, HarkMediaTransport **b, GError **error)
{
  g_autoptr(GSocketListener) listener = g_socket_listener_new();
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  if (!g_socket_listener_add_address(listener, any, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                     NULL, &bound, error))
    return FALSE;
  Accept accept = { 0 };
  g_socket_listener_accept_async(listener, NULL, on_accepted, &accept);
  g_autoptr(GSocketClient) client = g_socket_client_new();
  /* Media goes straight to the peer, never through the system's proxy. */
  g_socket_client_set_enable_proxy(client, FALSE);
  g_autoptr(GSocketConnection) out =
    g_socket_client_connect(client, G_SOCKET_CONNECTABLE(bound), NULL, error);
  if (out == NULL)
    return FALSE;
  while (accept.accepted == NULL)
    g_main_context_iteration(NULL, TRUE);
  g_socket_set_option(g_socket_connection_get_socket(out), IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  g_socket_set_option(g_socket_connection_get_socket(accept.accepted), IPPROTO_TCP, TCP_NODELAY, 1,
                      NULL);
  *a = hark_media_transport_new_stream(G_IO_STREAM(out));
  *b = hark_media_transport_new_stream(G_IO_STREAM(accept.accepted));
  g_object_unref(accept.accepted);
  return TRUE;
}

static gboolean
udp_pair(HarkMediaTransport **a, HarkMediaTransport **b, GError **error)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
  *a = hark_media_transport_new_udp(G_INET_SOCKET_ADDRESS(any), NULL, error);
  *b = *a ? hark_media_transport_new_udp(G_INET_SOCKET_ADDRESS(any), NULL, error) : NULL;
  if (*b == NULL)
    return FALSE;
  g_autoptr(GInetSocketAddress) la = hark_media_transport_get_local(*a);
  g_autoptr(GInetSocketAddress) lb = hark_media_transport_get_local(*b);
  return hark_media_transport_set_remote(*a, lb, error) &&
         hark_media_transport_set_remote(*b, la, error);
}

static gboolean
on_deadline(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
on_interrupt(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_CONTINUE;
}

/* KEY=VALUE settings of the sent codec as the a{sv} a codec takes: integers as int64,
 * true/false as booleans, anything else as a string; NULL on a word without '='. */
static GVariant *
codec_settings(char **words, GError **error)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
  for (guint i = 0; words != NULL && words[i] != NULL; i++) {
    g_auto(GStrv) kv = g_strsplit(words[i], "=", 2);
    if (kv[0] == NULL || kv[1] == NULL || kv[0][0] == '\0') {
      g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                  "--setting '%s': expected KEY=VALUE", words[i]);
      return NULL;
    }
    gint64 n;
    GVariant *value = g_ascii_string_to_signed(kv[1], 10, G_MININT64, G_MAXINT64, &n, NULL)
                        ? g_variant_new_int64(n)
                      : g_str_equal(kv[1], "true")  ? g_variant_new_boolean(TRUE)
                      : g_str_equal(kv[1], "false") ? g_variant_new_boolean(FALSE)
                                                    : g_variant_new_string(kv[1]);
    g_variant_builder_add(&b, "{sv}", kv[0], value);
  }
  return g_variant_ref_sink(g_variant_builder_end(&b));
}

static int
run(TestOptions *o, GError **error)
{
  HarkConfig *config = hark_config_new_default();
  if (o->plugin_dirs != NULL)
    config->plugin_path = g_strdupv(o->plugin_dirs);
  g_autoptr(HarkNode) node = hark_node_new(config);
  /* Only codec plugins: loading every plugin found would also map the login server's
   * libraries (libsoup, SQLite, PostgreSQL, argon2) into what the benchmark weighs. */
  g_auto(GStrv) names = g_strsplit(o->plugins, ",", -1);
  for (guint i = 0; names[i] != NULL; i++) {
    g_autofree char *path = hark_node_find_plugin(node, g_strstrip(names[i]), error);
    if (path == NULL || !hark_node_load_plugin_file(node, path, NULL, -1, error))
      return 1;
  }
  g_autoptr(GPtrArray) registrations =
    hark_context_lookup(hark_node_get_context(node), HARK_KIND_CODEC);
  const char *first[] = { o->codec, NULL }, *second[] = { o->swap_to, NULL };
  const HarkRegistration *r = hark_media_codec_choose(registrations, first, error);
  const HarkRegistration *r2 =
    r && o->swap_to ? hark_media_codec_choose(registrations, second, error) : NULL;
  if (r == NULL || (o->swap_to && r2 == NULL))
    return 1;
  g_autoptr(GVariant) settings = codec_settings(o->settings, error);
  if (settings == NULL)
    return 2;
  HarkMediaCodec codecs[2] = {
    { .name = r->name, .iface = r->iface, .instance = r->instance, .settings = settings },
    { .name = r2 ? r2->name : NULL,
      .iface = r2 ? r2->iface : NULL,
      .instance = r2 ? r2->instance : NULL },
  };
  HarkMediaSrtpSuite suite = g_str_equal(o->srtp, "aes-gcm")
                               ? HARK_MEDIA_SRTP_AEAD_AES_256_GCM
                               : HARK_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80;
  gsize key_length = hark_media_srtp_key_length(suite);
  gboolean one_end = o->local != NULL || o->remote != NULL;
  HarkMediaTransport *ta = NULL, *tb = NULL;
  g_autoptr(GBytes) ka = NULL;
  g_autoptr(GBytes) kb = NULL;
  if (one_end) {
    g_autoptr(GInetSocketAddress) local = o->local ? parse_address(o->local, error) : NULL;
    g_autoptr(GInetSocketAddress) remote =
      local && o->remote ? parse_address(o->remote, error) : NULL;
    if (remote == NULL) {
      if (error && *error == NULL)
        g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                    "one end needs both --local and --remote");
      return 2;
    }
    if (o->send_key == NULL || o->receive_key == NULL) {
      g_set_error(error, HARK_MEDIA_ERROR, HARK_MEDIA_ERROR_INVALID,
                  "one end needs --send-key and --receive-key (the other end's send key)");
      return 2;
    }
    if ((ka = parse_key(o->send_key, key_length, error)) == NULL ||
        (kb = parse_key(o->receive_key, key_length, error)) == NULL ||
        (ta = hark_media_transport_new_udp(local, remote, error)) == NULL)
      return 2;
  } else {
    ka = random_key(key_length);
    kb = random_key(key_length);
    if (!(g_str_equal(o->transport, "tcp") ? tcp_pair(&ta, &tb, error) : udp_pair(&ta, &tb, error)))
      return 1;
  }
  if (o->loss > 0)
    hark_media_transport_set_loss(ta, o->loss / 100.0, g_random_int());
  HarkMediaConfig ca = { .codecs = codecs,
                         .n_codecs = r2 ? 2 : 1,
                         .source = o->source,
                         .sink = one_end ? o->sink : "null",
                         .srtp_suite = suite,
                         .send_key = ka,
                         .receive_key = kb,
                         .transport = ta,
                         .jitter_ms = o->jitter,
                         .pulse_buffer_ms = o->pulse_buffer };
  g_autoptr(HarkMediaSession) a = hark_media_session_new(&ca, error);
  if (a == NULL) {
    hark_media_transport_free(tb);
    return 1;
  }
  g_autoptr(HarkMediaSession) b = NULL;
  if (!one_end) {
    HarkMediaConfig cb = ca;
    cb.source = "silence";
    cb.sink = o->sink;
    cb.send_key = kb;
    cb.receive_key = ka;
    cb.transport = tb;
    if ((b = hark_media_session_new(&cb, error)) == NULL || !hark_media_session_start(b, error))
      return 1;
  }
  if (!hark_media_session_start(a, error))
    return 1;
  gboolean stop = FALSE, swapped = o->swap_to == NULL;
  guint deadline = o->seconds > 0 ? g_timeout_add_seconds(o->seconds, on_deadline, &stop) : 0;
  guint sigint = g_unix_signal_add(SIGINT, on_interrupt, &stop);
  guint sigterm = g_unix_signal_add(SIGTERM, on_interrupt, &stop);
  gint64 started = g_get_monotonic_time();
  while (!stop) {
    g_main_context_iteration(NULL, TRUE);
    if (!swapped && g_get_monotonic_time() - started >= o->swap_at * G_USEC_PER_SEC) {
      swapped = TRUE;
      if (!hark_media_session_swap_codec(a, 1, error))
        return 1;
      if (!o->quiet)
        g_printerr("swapping to %s after %.1f s\n", o->swap_to, o->swap_at);
    }
  }
  if (deadline && !g_main_context_find_source_by_id(NULL, deadline))
    deadline = 0;
  if (deadline)
    g_source_remove(deadline);
  g_source_remove(sigint);
  g_source_remove(sigterm);
  print_stats(one_end ? "this end" : "sender", a, o->json);
  if (b != NULL)
    print_stats("receiver", b, o->json);
  return 0;
}

int
hark_media_test_main(int argc, char **argv)
{
  g_auto(TestOptions) o = { .seconds = 5, .swap_at = 2.0 };
  GOptionEntry entries[] = {
    { "codec", 0, 0, G_OPTION_ARG_STRING, &o.codec,
      "codec to send (opus, pcmu, pcma, g722, l16; default opus)", "NAME" },
    { "source", 0, 0, G_OPTION_ARG_STRING, &o.source,
      "tone[:HZ[:LEVEL]], silence, file:PATH (WAV), pulse[:DEVICE] (default tone:440)", "SPEC" },
    { "sink", 0, 0, G_OPTION_ARG_STRING, &o.sink,
      "null, file:PATH (WAV), pulse[:DEVICE] (default null)", "SPEC" },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &o.seconds, "how long (default 5; 0: until interrupted)",
      "S" },
    { "transport", 0, 0, G_OPTION_ARG_STRING, &o.transport,
      "udp or tcp (RFC 4571 framing) (default udp)", "T" },
    { "srtp", 0, 0, G_OPTION_ARG_STRING, &o.srtp,
      "aes-cm (AES_CM_128_HMAC_SHA1_80) or aes-gcm (AEAD_AES_256_GCM)", "SUITE" },
    { "loss", 0, 0, G_OPTION_ARG_INT, &o.loss, "drop this percentage of the sender's packets",
      "PCT" },
    { "jitter-buffer", 0, 0, G_OPTION_ARG_INT, &o.jitter,
      "fixed jitter-buffer delay in ms (default: adaptive, from 20 ms)", "MS" },
    { "pulse-buffer", 0, 0, G_OPTION_ARG_INT, &o.pulse_buffer,
      "sound-server buffer in ms (default 10)", "MS" },
    { "setting", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.settings,
      "a setting of the codec sent (repeatable; e.g. frame_size=10 for Opus)", "KEY=VALUE" },
    { "swap-to", 0, 0, G_OPTION_ARG_STRING, &o.swap_to,
      "swap the sent codec to this one while running", "NAME" },
    { "swap-at", 0, 0, G_OPTION_ARG_DOUBLE, &o.swap_at, "when to swap, in seconds (default 2)",
      "S" },
    { "local", 0, 0, G_OPTION_ARG_STRING, &o.local, "be one end: bind here (UDP)", "IP:PORT" },
    { "remote", 0, 0, G_OPTION_ARG_STRING, &o.remote, "be one end: the other end's address",
      "IP:PORT" },
    { "send-key", 0, 0, G_OPTION_ARG_STRING, &o.send_key,
      "one end: SRTP key this end sends with (hex)", "HEX" },
    { "receive-key", 0, 0, G_OPTION_ARG_STRING, &o.receive_key,
      "one end: the other end's send key (hex)", "HEX" },
    { "plugins", 0, 0, G_OPTION_ARG_STRING, &o.plugins,
      "codec plugins to load (default opus,g711,g722,l16)", "LIST" },
    { "plugin-dir", 'P', 0, G_OPTION_ARG_FILENAME_ARRAY, &o.plugin_dirs,
      "look for plugins here first", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o.json, "statistics as JSON lines", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &o.quiet, "no progress messages", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context =
    g_option_context_new("- send audio between two local media endpoints");
  g_option_context_set_summary(
    context, "Sends a tone or a WAV file from one media endpoint to another on 127.0.0.1 with the\n"
             "chosen codec, SRTP-protected, and prints both ends' statistics at the end.");
  g_option_context_add_main_entries(context, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(context, &argc, &argv, &error)) {
    g_printerr("hark media-test: %s\n", error->message);
    return 2;
  }
  if (o.codec == NULL)
    o.codec = g_strdup("opus");
  if (o.source == NULL)
    o.source = g_strdup("tone:440");
  if (o.sink == NULL)
    o.sink = g_strdup("null");
  if (o.transport == NULL)
    o.transport = g_strdup("udp");
  if (o.plugins == NULL)
    o.plugins = g_strdup("opus,g711,g722,l16");
  if (o.srtp == NULL)
    o.srtp = g_strdup("aes-cm");
  const char *problem = NULL;
  if (!g_str_equal(o.transport, "udp") && !g_str_equal(o.transport, "tcp"))
    problem = "--transport is udp or tcp";
  else if (!g_str_equal(o.srtp, "aes-cm") && !g_str_equal(o.srtp, "aes-gcm"))
    problem = "--srtp is aes-cm or aes-gcm";
  else if (o.loss < 0 || o.loss > 100 || o.seconds < 0 || o.jitter < 0 || o.pulse_buffer < 0)
    problem = "--loss is 0-100; --seconds, --jitter-buffer and --pulse-buffer are not negative";
  if (problem != NULL) {
    g_printerr("hark media-test: %s\n", problem);
    return 2;
  }
  int status = run(&o, &error);
  if (status != 0)
    g_printerr("hark media-test: %s\n", error ? error->message : "failed");
  return status;
}
