/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-bytes.c: see test-bytes.h. */
#include "test-bytes.h"

GBytes *
hark_test_bytes_patched(const guint8 *data, gsize size, gsize index, guint8 value)
{
  g_assert_cmpuint(index, <, size);
  guint8 *copy = g_memdup2(data, size);
  copy[index] = value;
  return g_bytes_new_take(copy, size);
}
