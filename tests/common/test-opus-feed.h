/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-opus-feed.h: the Opus plugin's encoder element fed by hand through a GstHarness, as
 * the engine's capture feeds it (10 ms blocks of 48 kHz mono, a tone or zeros), and what
 * comes out, for the unit tests of the element (test-opus-encoder.c, test-opus-quiet.c). */
#pragma once

#include <gst/check/gstharness.h>

#define OPUS_FEED_RATE 48000
#define OPUS_FEED_BLOCK (OPUS_FEED_RATE / 100) /* samples in 10 ms */

typedef struct {
  GstHarness *h;
  guint blocks; /* pushed so far */
  double tone_hz;
} OpusFeed;

/* A harness around a new encoder element whose audio-type (opusenc's names) is taken
 * with the caps, as the engine's configure sets it before the pipeline plays. */
void opus_feed_init(OpusFeed *f, const char *audio_type, double tone_hz);
void opus_feed_clear(OpusFeed *f);

/* samples of the tone (or zeros) at the feed's place, pushed as one buffer. */
void opus_feed_samples(OpusFeed *f, int samples, gboolean tone);
/* count 10 ms blocks of the tone or of zeros. */
void opus_feed(OpusFeed *f, guint count, gboolean tone);

/* The packets out so far, in order (GBytes). */
GPtrArray *opus_feed_packets(OpusFeed *f);
/* Samples a packet holds at OPUS_FEED_RATE. */
int opus_feed_packet_samples(GBytes *packet);

/* Zero crossings a second of n samples at OPUS_FEED_RATE: a tone of f Hz has 2f. */
double opus_feed_crossings_per_second(const gint16 *pcm, int n);
