/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-bytes.h: byte helpers for tests that feed decoders altered copies of test vectors. */
#pragma once

#include <glib.h>

/* A copy of data with the byte at index replaced by value (index < size). */
GBytes *hark_test_bytes_patched(const guint8 *data, gsize size, gsize index, guint8 value);
