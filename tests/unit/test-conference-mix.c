/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-conference-mix.c: a conference host's arithmetic (hark/conference.h): the sum of
 * every participant, each one's mix without its own audio, and a sum too loud for 16
 * bits clipped to full scale rather than wrapped to the opposite sign. */
#include "hark/conference.h"

static void
test_sum_and_minus(void)
{
  const gint16 a[] = { 100, -200, 300, 0 }, b[] = { 10, 20, -30, 0 }, c[] = { 1, 2, 3, 4 };
  const gint16 *const inputs[] = { a, b, c };
  gint32 sum[4];
  gint16 out[4];
  hark_conference_mix_sum(inputs, 3, 4, sum);
  const gint32 want_sum[] = { 111, -178, 273, 4 };
  for (guint i = 0; i < 4; i++)
    g_assert_cmpint(sum[i], ==, want_sum[i]);
  /* b hears a and c, nothing of its own. */
  hark_conference_mix_minus(sum, b, 4, out);
  for (guint i = 0; i < 4; i++)
    g_assert_cmpint(out[i], ==, a[i] + c[i]);
  hark_conference_mix_minus(sum, NULL, 4, out);
  for (guint i = 0; i < 4; i++)
    g_assert_cmpint(out[i], ==, want_sum[i]);
}

static void
test_clipping(void)
{
  g_assert_cmpint(hark_conference_clip(40000), ==, 32767);
  g_assert_cmpint(hark_conference_clip(-40000), ==, -32768);
  g_assert_cmpint(hark_conference_clip(-1234), ==, -1234);
  /* Three loud talkers: each hears the other two, saturated, never wrapped. */
  const gint16 a[] = { 30000, -30000 }, b[] = { 20000, -20000 }, c[] = { 15000, -15000 };
  const gint16 *const inputs[] = { a, b, c };
  gint32 sum[2];
  gint16 out[2];
  hark_conference_mix_sum(inputs, 3, 2, sum);
  g_assert_cmpint(sum[0], ==, 65000);
  hark_conference_mix_minus(sum, c, 2, out);
  g_assert_cmpint(out[0], ==, 32767);
  g_assert_cmpint(out[1], ==, -32768);
  /* Only the own part removed makes it fit again: exact. */
  const gint16 quiet[] = { 100, -100 };
  const gint16 *const two[] = { a, quiet };
  hark_conference_mix_sum(two, 2, 2, sum);
  hark_conference_mix_minus(sum, quiet, 2, out);
  g_assert_cmpint(out[0], ==, 30000);
  g_assert_cmpint(out[1], ==, -30000);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/conference-mix/sum-and-minus", test_sum_and_minus);
  g_test_add_func("/conference-mix/clipping", test_clipping);
  return g_test_run();
}
