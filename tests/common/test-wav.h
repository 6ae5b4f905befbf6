/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-wav.h: what a listener would measure in a received WAV file, for the tests that
 * check audio at the far end (media sessions, calls): the samples, the frequency with
 * the most power (a tone's), the level, the longest silence. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Reads a 16-bit PCM WAV file (GStreamer's wavenc writes one): the first channel's
 * samples (g_free them) and the sample rate. A file whose writer was stopped before it
 * finished (a data size of 0 or past the end) gives what is there. FALSE with error
 * (G_FILE_ERROR) when the file cannot be read or is not such a WAV file. */
gboolean hark_test_wav_read(const char *path, gint16 **samples, gsize *n, guint *rate,
                            GError **error);
/* Writes mono 16-bit PCM (for tests that make their own audio). */
gboolean hark_test_wav_write(const char *path, const gint16 *samples, gsize n, guint rate,
                             GError **error);

/* The frequency with the most power in samples[0, n) (Goertzel at 10 Hz steps from 50 Hz
 * to 12 kHz or rate / 2, refined to 1 Hz around the best); 0 for n = 0. */
double hark_test_wav_dominant_hz(const gint16 *samples, gsize n, guint rate);
/* The amplitude (full scale 32767) of the sine at hz (+-3 Hz) in samples[0, n): the
 * median over 100 ms Hann-windowed blocks, for telling which of several tones a mix
 * holds. 0 for less than one block. */
double hark_test_wav_tone_level(const gint16 *samples, gsize n, guint rate, double hz);
/* The root mean square of samples[0, n) (0 for n = 0); full scale is 32767. */
double hark_test_wav_rms(const gint16 *samples, gsize n);
/* The longest run, in ms, of 5 ms blocks of samples[0, n) whose RMS is under threshold. */
double hark_test_wav_longest_gap_ms(const gint16 *samples, gsize n, guint rate, double threshold);
/* The same, and where that run starts (*start, a sample index; 0 when there is none). */
double hark_test_wav_longest_gap_at(const gint16 *samples, gsize n, guint rate, double threshold,
                                    gsize *start);

/* How far samples[0, n) stray from a steady sine at hz, where they stray most: over 10 ms
 * blocks, the energy left after taking out the block's best-fitting sine at hz, against
 * the block's energy, in dB; the worst block's (a click, a jump of phase or level shows
 * as a block far above the others). Blocks with RMS under min_rms are skipped; -200 when
 * none is left. worst_at (may be NULL): where the worst block starts, in samples. */
double hark_test_wav_worst_tone_residual_db(const gint16 *samples, gsize n, guint rate, double hz,
                                            double min_rms, gsize *worst_at);

G_END_DECLS
