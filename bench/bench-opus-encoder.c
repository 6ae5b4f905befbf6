/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-opus-encoder.c: what a 20 ms frame costs to code in the Opus plugin's encoder
 * element (codecs/opus/opus-encoder.c, libopus's one-stream API) and in GStreamer's
 * opusenc (its multistream API), at the plugin's settings (20 kbit/s wideband voice) and
 * at complexity 10 (speech) and 0 (digital silence, opus-quiet.c). Each element is fed
 * through a GstHarness, which codes in the calling thread, so the thread's CPU time is
 * the encoder's. The two alternate within each round, so that a busy moment of a shared
 * machine falls on both; the median of the rounds is reported, as JSON on stdout
 * (scripts/bench.sh writes it into docs/benchmarks.md).
 *
 *   bench-opus-encoder [--rounds N] [--frames N] */
#include <gst/check/gstharness.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "opus-encoder.h"

#define RATE 48000
#define FRAME (RATE / 50)
#define WARM_FRAMES 50

static gint64
thread_cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A voiced sound: a 140 Hz buzz with its harmonics, its pitch and loudness moving as a
 * speaker's do, so that SILK and CELT both have something to code. */
static GstBuffer *
voice_frame(guint64 index)
{
  GstBuffer *buffer = gst_buffer_new_allocate(NULL, FRAME * 2, NULL);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_WRITE);
  gint16 *pcm = (gint16 *)map.data;
  for (int i = 0; i < FRAME; i++) {
    double t = ((double)index * FRAME + i) / RATE;
    double pitch = 140 + 20 * sin(2 * G_PI * 0.7 * t);
    double level = 0.5 + 0.5 * sin(2 * G_PI * 3 * t);
    double v = 0;
    for (int h = 1; h <= 12; h++)
      v += sin(2 * G_PI * pitch * h * t) / h;
    pcm[i] = (gint16)(5000 * level * v);
  }
  gst_buffer_unmap(buffer, &map);
  GST_BUFFER_PTS(buffer) = index * 20 * GST_MSECOND;
  GST_BUFFER_DURATION(buffer) = 20 * GST_MSECOND;
  return buffer;
}

/* CPU time per frame (us) of coding frames with element at complexity. */
static double
time_element(const char *element, int complexity, int frames)
{
  GstHarness *h = gst_harness_new(element);
  g_object_set(h->element, "bitrate", 20000, "complexity", complexity, NULL);
  /* Before the caps: both elements make their libopus encoder, with its type, on them. */
  gst_util_set_object_arg(G_OBJECT(h->element), "audio-type", "voice");
  gst_util_set_object_arg(G_OBJECT(h->element), "bandwidth", "wideband");
  gst_harness_set_src_caps_str(h, "audio/x-raw, format=S16LE, rate=48000, channels=1, "
                                  "layout=interleaved");
  /* Made before the clock starts: only the coding is timed. */
  GstBuffer **input = g_new(GstBuffer *, WARM_FRAMES + frames);
  for (int f = 0; f < WARM_FRAMES + frames; f++)
    input[f] = voice_frame((guint64)f);
  gint64 start = 0;
  for (int f = 0; f < WARM_FRAMES + frames; f++) {
    if (f == WARM_FRAMES)
      start = thread_cpu_ns();
    if (gst_harness_push(h, input[f]) != GST_FLOW_OK) {
      fprintf(stderr, "bench-opus-encoder: %s refused a frame\n", element);
      exit(1);
    }
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h)) != NULL)
      gst_buffer_unref(out);
  }
  double per_frame = (double)(thread_cpu_ns() - start) / frames / 1000.0;
  g_free(input); /* each buffer went to the element */
  gst_harness_teardown(h);
  return per_frame;
}

static int
compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double
median(double *values, int n)
{
  qsort(values, (size_t)n, sizeof *values, compare_doubles);
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
  int rounds = 9, frames = 500;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (g_str_equal(argv[i], "--rounds"))
      rounds = atoi(argv[i + 1]);
    else if (g_str_equal(argv[i], "--frames"))
      frames = atoi(argv[i + 1]);
  }
  if (rounds < 1 || frames < 1) {
    fprintf(stderr, "usage: bench-opus-encoder [--rounds N] [--frames N]\n");
    return 2;
  }
  gst_init(&argc, &argv);
  if (!hark_opus_encoder_register() || gst_element_factory_find("opusenc") == NULL) {
    fprintf(stderr, "bench-opus-encoder: needs opusenc (gstreamer1.0-plugins-base)\n");
    return 1;
  }
  static const char *const elements[] = { HARK_OPUS_ENCODER_NAME, "opusenc" };
  static const int complexities[] = { 10, 0 };
  printf("{\"rounds\": %d, \"frames\": %d, \"results\": [", rounds, frames);
  for (int c = 0; c < 2; c++) {
    double *us[2] = { g_new(double, rounds), g_new(double, rounds) };
    for (int r = 0; r < rounds; r++)
      for (int k = 0; k < 2; k++) {
        int e = (r + k) % 2; /* each goes first in every other round */
        us[e][r] = time_element(elements[e], complexities[c], frames);
      }
    g_autofree double *ratio = g_new(double, rounds); /* ours / opusenc's, per round */
    for (int r = 0; r < rounds; r++)
      ratio[r] = us[0][r] / us[1][r];
    printf("%s{\"complexity\": %d, \"ours_us\": %.1f, \"opusenc_us\": %.1f, \"ratio\": %.3f}",
           c > 0 ? ", " : "", complexities[c], median(us[0], rounds), median(us[1], rounds),
           median(ratio, rounds));
    g_free(us[0]);
    g_free(us[1]);
  }
  printf("]}\n");
  return 0;
}
