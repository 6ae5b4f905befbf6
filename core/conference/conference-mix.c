/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-mix.c: sum once, subtract each participant's own, clip (hark/conference.h).
 * Clipping keeps a loud sum a loud (distorted) sum; truncating to 16 bits, as a plain
 * cast does, would turn it into noise of the opposite sign. */
#include "hark/conference.h"

gint16
hark_conference_clip(gint32 v)
{
  return (gint16)CLAMP(v, G_MININT16, G_MAXINT16);
}

void
hark_conference_mix_sum(const gint16 *const *inputs, guint n_inputs, gsize n, gint32 *sum)
{
  for (gsize i = 0; i < n; i++)
    sum[i] = 0;
  for (guint k = 0; k < n_inputs; k++)
    for (gsize i = 0; i < n; i++)
      sum[i] += inputs[k][i];
}

void
hark_conference_mix_minus(const gint32 *sum, const gint16 *own, gsize n, gint16 *out)
{
  for (gsize i = 0; i < n; i++)
    out[i] = hark_conference_clip(sum[i] - (own != NULL ? own[i] : 0));
}
