/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-harness.h: what the media tests share: codecs loaded from the real plugins, an
 * in-memory transport pair that lets a test see and inject packets, two sessions wired
 * back to back. What a listener measures in the received WAV file is test-wav.h's. */
#pragma once

#include <hark/hark.h>

typedef struct {
  HarkNode *node;
  GPtrArray *registrations;
} Codecs;

void codecs_load(Codecs *codecs);
void codecs_clear(Codecs *codecs);
HarkMediaCodec codec_named(Codecs *codecs, const char *name, GVariant *settings);

/* In-memory transport: packets reach the peer from the main loop. */
typedef struct MemTransport MemTransport;
struct MemTransport {
  MemTransport *peer;
  HarkMediaReceiveFunc func;
  gpointer user_data;
  GMutex lock;
  GPtrArray *sent_rtp_headers; /* GBytes of the first 12 bytes of each RTP packet sent */
  gboolean dead;
  guint jitter_ms; /* delay each packet sent by 0..jitter_ms (pseudo-random) */
  GRand *rand;
  /* A narrow link (mem_transport_set_rate): bytes/s, the longest wait in its queue, when
   * it is free again (monotonic us), and what was offered to it and dropped at its
   * queue's end (IP bytes). */
  guint rate, queue_ms;
  gint64 busy_until;
  guint64 offered_bytes, dropped_bytes, dropped_packets;
};
/* Two transports wired to each other; hark_media_transport_free of either frees it. */
void mem_transport_pair(HarkMediaTransport **a, HarkMediaTransport **b, MemTransport **ma,
                        MemTransport **mb);
/* Delay every packet m sends by a pseudo-random 0..ms: network jitter (packets reorder). */
void mem_transport_set_jitter(MemTransport *m, guint ms, guint32 seed);
/* Send m's packets over a link of bytes_per_s, counting each packet's IPv4 and UDP headers
 * (28 bytes) as Linux's tbf qdisc does the packet it shapes: a packet waits behind the
 * ones queued before it, and one that would not be through within queue_ms is dropped
 * (tbf's latency, a limit in bytes that the whole packet must fit in). 0: no limit. */
void mem_transport_set_rate(MemTransport *m, guint bytes_per_s, guint queue_ms);
/* What m's link has seen: IP bytes offered and dropped, packets dropped, and how long a
 * packet sent now would wait (ms). */
void mem_transport_link_counts(MemTransport *m, guint64 *offered_bytes, guint64 *dropped_bytes,
                               guint64 *dropped_packets, guint *queue_ms);
#define MEM_TRANSPORT_IP_UDP 28
/* Deliver bytes to m's receiver as if they came from the peer. */
void mem_transport_inject(MemTransport *m, const guint8 *data, gsize length);

GBytes *test_key(HarkMediaSrtpSuite suite, guint8 seed);
void run_for(guint ms);
/* Runs the main loop until reached(data) holds (checked every 10 ms) or max_ms have
 * passed; returns whether it was reached. For waiting on counts that a timer drives,
 * rather than running for a fixed time and hoping the timer kept up. */
gboolean run_until(gboolean (*reached)(gpointer data), gpointer data, guint max_ms);

/* A received WAV file as the media cases read it: 48 kHz samples, measured in windows
 * [from, from + len) by test-wav.h's helpers. */
typedef struct {
  gint16 *samples;
  gsize n;
} Wav;

gboolean wav_read(const char *path, Wav *wav);
void wav_clear(Wav *wav);
double wav_dominant_hz(const Wav *wav, gsize from, gsize len);
double wav_rms(const Wav *wav, gsize from, gsize len);
/* The longest run, in ms, of 5 ms blocks in [from, to) whose RMS is under threshold. */
double wav_longest_gap_ms(const Wav *wav, gsize from, gsize to, double threshold);
