/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* settings.c: typed reading of plugin settings, so every plugin reports a wrong type
 * or range the same way instead of treating it as "not set". */
#include "hark/settings.h"

/* clang-format off */
G_DEFINE_QUARK(hark-settings-error-quark, hark_settings_error)
/* clang-format on */

/* The value when it is there with the wanted type; NULL and no error when absent. */
static GVariant *
lookup_typed(GVariant *settings, const char *key, const GVariantType *type, const char *expected,
             GError **error)
{
  GVariant *value = settings ? g_variant_lookup_value(settings, key, NULL) : NULL;
  if (value == NULL || g_variant_is_of_type(value, type))
    return value;
  g_autofree char *shown = g_variant_print(value, FALSE);
  g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_TYPE,
              "setting '%s' must be %s, not %s", key, expected, shown);
  g_variant_unref(value);
  return NULL;
}

gboolean
hark_settings_get_string(GVariant *settings, const char *key, const char *fallback, char **out,
                         GError **error)
{
  GError *local = NULL;
  g_autoptr(GVariant) value =
    lookup_typed(settings, key, G_VARIANT_TYPE_STRING, "a string", &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  *out = g_strdup(value ? g_variant_get_string(value, NULL) : fallback);
  return TRUE;
}

gboolean
hark_settings_get_int(GVariant *settings, const char *key, gint64 fallback, gint64 min, gint64 max,
                      gint64 *out, GError **error)
{
  GError *local = NULL;
  g_autoptr(GVariant) value =
    lookup_typed(settings, key, G_VARIANT_TYPE_INT64, "an integer", &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  gint64 number = value ? g_variant_get_int64(value) : fallback;
  if (number < min || number > max) {
    g_set_error(error, HARK_SETTINGS_ERROR, HARK_SETTINGS_ERROR_RANGE,
                "setting '%s' must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                ", not %" G_GINT64_FORMAT,
                key, min, max, number);
    return FALSE;
  }
  *out = number;
  return TRUE;
}

gboolean
hark_settings_get_bool(GVariant *settings, const char *key, gboolean fallback, gboolean *out,
                       GError **error)
{
  GError *local = NULL;
  g_autoptr(GVariant) value =
    lookup_typed(settings, key, G_VARIANT_TYPE_BOOLEAN, "true or false", &local);
  if (local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  *out = value ? g_variant_get_boolean(value) : fallback;
  return TRUE;
}

guint
hark_settings_warn_unknown(GVariant *settings, const char *plugin, const char *const *known)
{
  if (settings == NULL)
    return 0;
  g_autofree char *known_list = g_strjoinv(", ", (char **)known);
  guint count = 0;
  GVariantIter iter;
  const char *key;
  g_variant_iter_init(&iter, settings);
  while (g_variant_iter_next(&iter, "{&sv}", &key, NULL)) {
    if (g_strv_contains(known, key))
      continue;
    g_warning("plugin '%s': unknown setting '%s' ignored (it knows: %s)", plugin, key, known_list);
    count++;
  }
  return count;
}
