/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fake-envelope.c: see fake-envelope.h. */
#include "fake-envelope.h"

#define FAKE_TYPE G_VARIANT_TYPE("(ssasbay)")
#define FAKE_MAX_RECIPIENTS 1024

GBytes *
hark_fake_envelope_new(const char *sender, const char *sender_device, const char *const *recipients,
                       gboolean signature_good, gsize padding)
{
  guint8 *zeros = g_malloc0(MAX(padding, 1));
  GVariant *pad = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, zeros, padding, 1);
  g_free(zeros);
  g_autoptr(GVariant) value = g_variant_ref_sink(
    g_variant_new("(ss^asb@ay)", sender, sender_device, recipients, signature_good, pad));
  g_autoptr(GVariant) normal = g_variant_get_normal_form(value);
  return g_variant_get_data_as_bytes(normal);
}

static HarkMessageEnvelopeInfo *
fake_parse(gpointer data, GBytes *envelope, GError **error)
{
  (void)data;
  g_autoptr(GVariant) value =
    g_variant_ref_sink(g_variant_new_from_bytes(FAKE_TYPE, envelope, FALSE));
  if (!g_variant_is_normal_form(value)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "not a normal-form fake envelope (ssasbay)");
    return NULL;
  }
  HarkMessageEnvelopeInfo *info = g_new0(HarkMessageEnvelopeInfo, 1);
  gboolean good = FALSE;
  g_variant_get(value, "(ss^asb@ay)", &info->sender, &info->sender_device, &info->recipients, &good,
                NULL);
  info->parsed = GINT_TO_POINTER(good);
  if (g_strv_length(info->recipients) > FAKE_MAX_RECIPIENTS) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "more than %d recipients",
                FAKE_MAX_RECIPIENTS);
    hark_message_envelope_info_free(info);
    return NULL;
  }
  return info;
}

static gboolean
fake_verify(gpointer data, const HarkMessageEnvelopeInfo *info, GBytes *envelope, gint64 now,
            GError **error)
{
  (void)data;
  (void)envelope;
  (void)now;
  if (GPOINTER_TO_INT(info->parsed))
    return TRUE;
  g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                      "the signature does not match (fake envelope)");
  return FALSE;
}

const HarkMessageEnvelopeCheck hark_fake_envelope_check = {
  .parse = fake_parse,
  .verify = fake_verify,
};
