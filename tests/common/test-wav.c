/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-wav.c: reading, writing and measuring WAV files for tests (test-wav.h). */
#include "test-wav.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WAVE_FORMAT_PCM 1
#define WAVE_FORMAT_EXTENSIBLE 0xfffe
#define MAX_HZ 12000.0
#define MIN_HZ 50.0

static guint16
le16(const guint8 *p)
{
  return (guint16)(p[0] | p[1] << 8);
}

static guint32
le32(const guint8 *p)
{
  return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

static gboolean
not_wav(GError **error, const char *path, const char *why)
{
  g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a 16-bit PCM WAV file: %s", path,
              why);
  return FALSE;
}

/* The fmt chunk's channels and rate; FALSE when it is not 16-bit PCM. */
static gboolean
read_format(const guint8 *chunk, guint32 size, guint *channels, guint *rate)
{
  if (size < 16)
    return FALSE;
  guint16 format = le16(chunk);
  *channels = le16(chunk + 2);
  *rate = le32(chunk + 4);
  guint16 bits = le16(chunk + 14);
  return (format == WAVE_FORMAT_PCM || format == WAVE_FORMAT_EXTENSIBLE) && bits == 16 &&
         *channels > 0 && *rate > 0;
}

gboolean
hark_test_wav_read(const char *path, gint16 **samples, gsize *n, guint *rate, GError **error)
{
  g_autofree guint8 *data = NULL;
  gsize length = 0;
  if (!g_file_get_contents(path, (char **)&data, &length, error))
    return FALSE;
  if (length < 12 || memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WAVE", 4) != 0)
    return not_wav(error, path, "no RIFF WAVE header");
  guint channels = 0;
  *rate = 0;
  for (gsize at = 12; at + 8 <= length;) {
    guint32 size = le32(data + at + 4);
    const guint8 *body = data + at + 8;
    gsize left = length - at - 8;
    if (memcmp(data + at, "fmt ", 4) == 0 && !read_format(body, MIN(size, left), &channels, rate))
      return not_wav(error, path, "its format is not 16-bit PCM");
    if (memcmp(data + at, "data", 4) == 0) {
      if (channels == 0)
        return not_wav(error, path, "data before the format");
      /* A writer stopped early leaves 0 (or a placeholder) as the size: take what is there. */
      gsize bytes = size == 0 || size > left ? left : size;
      gsize frame = 2 * (gsize)channels;
      *n = bytes / frame;
      *samples = g_new(gint16, MAX(*n, 1));
      for (gsize i = 0; i < *n; i++)
        (*samples)[i] = (gint16)le16(body + i * frame);
      return TRUE;
    }
    if (size > left)
      break;
    at += 8 + (gsize)size + (size & 1); /* chunks are padded to even sizes */
  }
  return not_wav(error, path, "no data chunk");
}

static void
put16(GByteArray *out, guint16 v)
{
  guint8 b[2] = { (guint8)v, (guint8)(v >> 8) };
  g_byte_array_append(out, b, 2);
}

static void
put32(GByteArray *out, guint32 v)
{
  guint8 b[4] = { (guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24) };
  g_byte_array_append(out, b, 4);
}

gboolean
hark_test_wav_write(const char *path, const gint16 *samples, gsize n, guint rate, GError **error)
{
  g_autoptr(GByteArray) out = g_byte_array_sized_new(44 + 2 * n);
  g_byte_array_append(out, (const guint8 *)"RIFF", 4);
  put32(out, (guint32)(36 + 2 * n));
  g_byte_array_append(out, (const guint8 *)"WAVEfmt ", 8);
  put32(out, 16);
  put16(out, WAVE_FORMAT_PCM);
  put16(out, 1); /* mono */
  put32(out, rate);
  put32(out, rate * 2); /* bytes a second */
  put16(out, 2); /* bytes a frame */
  put16(out, 16);
  g_byte_array_append(out, (const guint8 *)"data", 4);
  put32(out, (guint32)(2 * n));
  for (gsize i = 0; i < n; i++)
    put16(out, (guint16)samples[i]);
  return g_file_set_contents(path, (const char *)out->data, (gssize)out->len, error);
}

static double
goertzel_power(const gint16 *x, gsize n, double hz, guint rate)
{
  double w = 2 * G_PI * hz / rate, coeff = 2 * cos(w), s1 = 0, s2 = 0;
  for (gsize i = 0; i < n; i++) {
    double s0 = x[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

/* The frequency of [from, to] in steps of step with the most power. */
static double
strongest(const gint16 *samples, gsize n, guint rate, double from, double to, double step)
{
  double best = -1, best_hz = 0;
  for (double hz = from; hz <= to; hz += step) {
    double p = goertzel_power(samples, n, hz, rate);
    if (p > best) {
      best = p;
      best_hz = hz;
    }
  }
  return best_hz;
}

double
hark_test_wav_dominant_hz(const gint16 *samples, gsize n, guint rate)
{
  if (n == 0 || rate == 0)
    return 0;
  double top = MIN(MAX_HZ, rate / 2.0);
  double coarse = strongest(samples, n, rate, MIN_HZ, top, 10);
  return strongest(samples, n, rate, MAX(MIN_HZ, coarse - 10), MIN(top, coarse + 10), 1);
}

double
hark_test_wav_rms(const gint16 *samples, gsize n)
{
  double sum = 0;
  for (gsize i = 0; i < n; i++)
    sum += (double)samples[i] * samples[i];
  return n > 0 ? sqrt(sum / n) : 0;
}

double
hark_test_wav_longest_gap_at(const gint16 *samples, gsize n, guint rate, double threshold,
                             gsize *start)
{
  const gsize block = rate / 200; /* 5 ms */
  double longest = 0, run = 0;
  gsize run_start = 0;
  *start = 0;
  for (gsize at = 0; block > 0 && at + block <= n; at += block) {
    if (hark_test_wav_rms(samples + at, block) < threshold) {
      if (run == 0)
        run_start = at;
      run += 5;
      if (run > longest) {
        longest = run;
        *start = run_start;
      }
    } else {
      run = 0;
    }
  }
  return longest;
}

double
hark_test_wav_longest_gap_ms(const gint16 *samples, gsize n, guint rate, double threshold)
{
  gsize start;
  return hark_test_wav_longest_gap_at(samples, n, rate, threshold, &start);
}

/* The amplitude of the sine at hz (the strongest of hz +- 3 Hz) in one Hann-windowed
 * block: a windowed sine of amplitude A has a Goertzel magnitude of A / 2 times the
 * window's sum. */
static double
block_tone_level(const gint16 *x, gsize n, guint rate, double hz)
{
  g_autofree double *w = g_new(double, n);
  double sum = 0;
  for (gsize i = 0; i < n; i++) {
    w[i] = 0.5 - 0.5 * cos(2 * G_PI * (double)i / (double)(n - 1));
    sum += w[i];
  }
  double best = 0;
  for (double f = hz - 3; f <= hz + 3; f += 1) {
    double omega = 2 * G_PI * f / rate, coeff = 2 * cos(omega), s1 = 0, s2 = 0;
    for (gsize i = 0; i < n; i++) {
      double s0 = w[i] * x[i] + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    best = MAX(best, s1 * s1 + s2 * s2 - coeff * s1 * s2);
  }
  return 2 * sqrt(MAX(best, 0)) / sum;
}

static int
compare_doubles(gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double
hark_test_wav_tone_level(const gint16 *samples, gsize n, guint rate, double hz)
{
  /* The median over 100 ms blocks: a jitter buffer that shrinks by a millisecond now
   * and then jumps the tone's phase, which would lower a level taken over the whole
   * window although a listener hears the tone as loud as before. */
  gsize block = rate / 10;
  if (rate == 0 || n < block || block < 2)
    return 0;
  gsize count = n / block;
  g_autofree double *levels = g_new(double, count);
  for (gsize b = 0; b < count; b++)
    levels[b] = block_tone_level(samples + b * block, block, rate, hz);
  qsort(levels, count, sizeof *levels, compare_doubles);
  return count % 2 ? levels[count / 2] : (levels[count / 2 - 1] + levels[count / 2]) / 2;
}

double
hark_test_wav_worst_tone_residual_db(const gint16 *samples, gsize n, guint rate, double hz,
                                     double min_rms, gsize *worst_at)
{
  gsize block = rate / 100;
  double worst = -200;
  for (gsize at = 0; block > 0 && at + block <= n; at += block) {
    const gint16 *x = samples + at;
    if (hark_test_wav_rms(x, block) < min_rms)
      continue;
    /* The least-squares sine: projections on cos and sin (orthogonal enough over 10 ms). */
    double c = 0, s = 0, cc = 0, ss = 0, cs = 0;
    for (gsize i = 0; i < block; i++) {
      double w = 2 * G_PI * hz * (double)(at + i) / rate;
      c += x[i] * cos(w);
      s += x[i] * sin(w);
      cc += cos(w) * cos(w);
      ss += sin(w) * sin(w);
      cs += cos(w) * sin(w);
    }
    double det = cc * ss - cs * cs;
    double a = (c * ss - s * cs) / det, b = (s * cc - c * cs) / det;
    double left = 0, all = 0;
    for (gsize i = 0; i < block; i++) {
      double w = 2 * G_PI * hz * (double)(at + i) / rate;
      double r = x[i] - a * cos(w) - b * sin(w);
      left += r * r;
      all += (double)x[i] * x[i];
    }
    double db = 10 * log10(MAX(left, 1e-9) / all);
    if (db > worst && worst_at != NULL)
      *worst_at = at;
    worst = MAX(worst, db);
  }
  return worst;
}
