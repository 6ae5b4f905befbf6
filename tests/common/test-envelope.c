/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-envelope.c: message envelopes in shape, for tests (test-envelope.h). */
#include "test-envelope.h"

static GVariant *
bytes_of(gconstpointer data, gsize size)
{
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

GBytes *
hark_test_envelope_new(const char *sender_device, const char *const *recipients, gsize body_size)
{
  static const guint8 zeros[64] = { 0 };
  guint8 id[16];
  for (gsize i = 0; i < sizeof id; i++)
    id[i] = (guint8)g_random_int();
  GVariantBuilder list;
  g_variant_builder_init(&list, G_VARIANT_TYPE("a(sayay)"));
  for (gsize i = 0; recipients[i] != NULL; i++)
    g_variant_builder_add(&list, "(s@ay@ay)", recipients[i], bytes_of(zeros, 32),
                          bytes_of(zeros, 48));
  g_autofree guint8 *body = g_malloc0(body_size);
  g_autoptr(GVariant) payload = g_variant_ref_sink(g_variant_new(
    "(@ayss@aysttx@ay@a(sayay))", bytes_of(id, sizeof id), "sender", sender_device,
    bytes_of("DER", 3), "bob", (guint64)1, (guint64)1, g_get_real_time() / G_USEC_PER_SEC,
    bytes_of(body, body_size), g_variant_builder_end(&list)));
  g_autoptr(GBytes) payload_bytes = g_variant_get_data_as_bytes(payload);
  g_autoptr(GVariant) envelope = g_variant_ref_sink(g_variant_new(
    "(@ay@ay)", bytes_of(g_bytes_get_data(payload_bytes, NULL), g_bytes_get_size(payload_bytes)),
    bytes_of(zeros, 64)));
  return g_variant_get_data_as_bytes(envelope);
}
