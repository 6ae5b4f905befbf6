/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-wav.c: the WAV helpers the audio tests measure with (tests/common/test-wav.c):
 * a tone's frequency found in generated sines at the rates hark uses, silence and a
 * tone's level, a gap in a tone, a click or a jump of phase in a tone, and files read
 * back as written, a file cut short by a
 * writer that was stopped, and files that are not WAV refused. */
#include "test-files.h"
#include "test-wav.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* amplitude * sin at hz: n samples at rate. */
static gint16 *
sine(double hz, double amplitude, guint rate, gsize n)
{
  gint16 *samples = g_new(gint16, n);
  for (gsize i = 0; i < n; i++)
    samples[i] = (gint16)lround(amplitude * sin(2 * G_PI * hz * (double)i / rate));
  return samples;
}

static void
test_dominant(void)
{
  const double tones[] = { 440, 1000, 3150 };
  const guint rates[] = { 8000, 16000, 48000 };
  for (gsize r = 0; r < G_N_ELEMENTS(rates); r++) {
    for (gsize t = 0; t < G_N_ELEMENTS(tones); t++) {
      g_autofree gint16 *x = sine(tones[t], 8000, rates[r], rates[r] / 4);
      double got = hark_test_wav_dominant_hz(x, rates[r] / 4, rates[r]);
      g_test_message("%g Hz at %u Hz: found %g Hz", tones[t], rates[r], got);
      g_assert_cmpfloat(fabs(got - tones[t]), <=, tones[t] * 0.02);
    }
  }
  /* The stronger of two tones. */
  g_autofree gint16 *a = sine(440, 2000, 48000, 24000);
  g_autofree gint16 *b = sine(1000, 9000, 48000, 24000);
  for (gsize i = 0; i < 24000; i++)
    a[i] = (gint16)(a[i] + b[i]);
  g_assert_cmpfloat(fabs(hark_test_wav_dominant_hz(a, 24000, 48000) - 1000), <=, 20);
  g_assert_cmpfloat(hark_test_wav_dominant_hz(a, 0, 48000), ==, 0);
}

static void
test_rms_and_gap(void)
{
  g_autofree gint16 *silence = g_new0(gint16, 4800);
  g_assert_cmpfloat(hark_test_wav_rms(silence, 4800), <, 1e-9);
  /* A sine's RMS is its amplitude / sqrt(2). */
  g_autofree gint16 *tone = sine(1000, 10000, 48000, 48000);
  g_assert_cmpfloat(fabs(hark_test_wav_rms(tone, 48000) - 10000 / sqrt(2)), <, 10);
  g_assert_cmpfloat(hark_test_wav_longest_gap_ms(tone, 48000, 48000, 700), ==, 0);
  /* 100 ms cut out of the tone. */
  memset(tone + 24000, 0, 4800 * sizeof *tone);
  double gap = hark_test_wav_longest_gap_ms(tone, 48000, 48000, 700);
  g_assert_cmpfloat(gap, >=, 95);
  g_assert_cmpfloat(gap, <=, 105);
  /* ... at 500 ms (a 5 ms block either way); a shorter one before does not move it. */
  memset(tone + 4800, 0, 960 * sizeof *tone);
  gsize start = 0;
  g_assert_cmpfloat(hark_test_wav_longest_gap_at(tone, 48000, 48000, 700, &start), ==, gap);
  g_assert_cmpuint(start, >=, 24000 - 240);
  g_assert_cmpuint(start, <=, 24000 + 240);
}

static void
test_read_write(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("hark-wav-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *path = g_build_filename(dir, "tone.wav", NULL);
  g_autofree gint16 *x = sine(440, 12000, 16000, 16000);
  g_assert_true(hark_test_wav_write(path, x, 16000, 16000, &error));

  g_autofree gint16 *y = NULL;
  gsize n = 0;
  guint rate = 0;
  g_assert_true(hark_test_wav_read(path, &y, &n, &rate, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(n, ==, 16000);
  g_assert_cmpuint(rate, ==, 16000);
  g_assert_cmpmem(x, 2 * n, y, 2 * n);
  g_clear_pointer(&y, g_free);

  /* Cut short by a writer that was stopped: the data size says 0. */
  g_autofree char *bytes = NULL;
  gsize length = 0;
  g_assert_true(g_file_get_contents(path, &bytes, &length, NULL));
  memset(bytes + 40, 0, 4);
  g_assert_true(g_file_set_contents(path, bytes, (gssize)(length - 1000), NULL));
  g_assert_true(hark_test_wav_read(path, &y, &n, &rate, &error));
  g_assert_cmpuint(n, ==, 16000 - 500);
  g_clear_pointer(&y, g_free);

  /* Not WAV; 8-bit WAV; missing. */
  g_assert_true(g_file_set_contents(path, "RIFF....WAVEjunk", -1, NULL));
  g_assert_false(hark_test_wav_read(path, &y, &n, &rate, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_clear_error(&error);
  bytes[34] = 8; /* bits per sample */
  g_assert_true(g_file_set_contents(path, bytes, (gssize)length, NULL));
  g_assert_false(hark_test_wav_read(path, &y, &n, &rate, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_clear_error(&error);
  g_assert_cmpint(g_unlink(path), ==, 0);
  g_assert_false(hark_test_wav_read(path, &y, &n, &rate, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_true(hark_test_remove_tree(dir));
}

/* A mix of three tones: each one's level is found, a tone that is not there is not. */
static void
test_tone_level(void)
{
  const guint rate = 16000;
  const gsize n = rate;
  g_autofree gint16 *a = sine(440, 6000, rate, n);
  g_autofree gint16 *b = sine(660, 3000, rate, n);
  g_autofree gint16 *c = sine(1100, 9000, rate, n);
  g_autofree gint16 *mix = g_new(gint16, n);
  for (gsize i = 0; i < n; i++)
    mix[i] = (gint16)(a[i] + b[i] + c[i]);
  g_assert_cmpfloat(fabs(hark_test_wav_tone_level(mix, n, rate, 440) - 6000), <, 100);
  g_assert_cmpfloat(fabs(hark_test_wav_tone_level(mix, n, rate, 660) - 3000), <, 100);
  g_assert_cmpfloat(fabs(hark_test_wav_tone_level(mix, n, rate, 1100) - 9000), <, 100);
  g_assert_cmpfloat(hark_test_wav_tone_level(mix, n, rate, 880), <, 100);
  g_assert_cmpfloat(hark_test_wav_tone_level(mix, 0, rate, 880), ==, 0);
  /* A jump of phase every 0.35 s (a jitter buffer shrinking) leaves the level alone. */
  for (gsize i = 0; i < n; i++)
    mix[i] = (gint16)lround(6000 * sin(2 * G_PI * 440 * (double)i / rate + (double)(i / 5600)));
  g_assert_cmpfloat(fabs(hark_test_wav_tone_level(mix, n, rate, 440) - 6000), <, 150);
}

/* A steady sine is next to nothing off a sine; a click (3 samples) or a jump of phase
 * (a frame lost or sent twice) in the middle is far off in the block that holds it;
 * silence is skipped. */
static void
test_tone_residual(void)
{
  const guint rate = 48000;
  const gsize n = rate / 2;
  g_autofree gint16 *x = sine(1010, 9830, rate, n);
  double steady = hark_test_wav_worst_tone_residual_db(x, n, rate, 1010, 500, NULL);
  for (gsize i = n / 2 + 17; i < n / 2 + 20; i++) /* a click: 3 samples */
    x[i] = (gint16)(x[i] / 2 + 8000);
  double click = hark_test_wav_worst_tone_residual_db(x, n, rate, 1010, 500, NULL);
  g_autofree gint16 *jump = sine(1010, 9830, rate, n);
  for (gsize i = n / 2 + 240; i < n; i++) /* 20 ms later from here on: 0.2 cycles off */
    jump[i] = (gint16)lround(9830 * sin(2 * G_PI * 1010 * (double)(i + 960) / rate));
  double jumped = hark_test_wav_worst_tone_residual_db(jump, n, rate, 1010, 500, NULL);
  g_autofree gint16 *quiet = g_new0(gint16, n);
  double none = hark_test_wav_worst_tone_residual_db(quiet, n, rate, 1010, 500, NULL);
  g_test_message("steady %.1f dB, a click %.1f dB, a jump %.1f dB", steady, click, jumped);
  g_assert_cmpfloat(steady, <, -60);
  g_assert_cmpfloat(click, >, -25);
  g_assert_cmpfloat(jumped, >, -15);
  g_assert_cmpfloat(none, ==, -200);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/wav/dominant", test_dominant);
  g_test_add_func("/wav/rms-and-gap", test_rms_and_gap);
  g_test_add_func("/wav/read-write", test_read_write);
  g_test_add_func("/wav/tone-level", test_tone_level);
  g_test_add_func("/wav/tone-residual", test_tone_residual);
  return g_test_run();
}
