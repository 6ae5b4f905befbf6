/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference.h: the mixing arithmetic of a conference host (docs/architecture.md,
 * "Conferences"). Per tick the host sums every participant's decoded audio once, then
 * gives each participant that sum less its own contribution, saturated to 16 bits: O(N)
 * for N participants, where summing every pair would be O(N^2). */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

/* v saturated to [-32768, 32767] (clipping, never wrapping around). */
HARK_API gint16 hark_conference_clip(gint32 v);
/* sum[i] = inputs[0][i] + ... + inputs[n_inputs - 1][i] for i < n, in 32 bits (no overflow
 * for up to 65536 inputs). */
HARK_API void hark_conference_mix_sum(const gint16 *const *inputs, guint n_inputs, gsize n,
                                      gint32 *sum);
/* out[i] = clip(sum[i] - own[i]): what one participant hears (own NULL: the whole mix). */
HARK_API void hark_conference_mix_minus(const gint32 *sum, const gint16 *own, gsize n,
                                        gint16 *out);

G_END_DECLS
