/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* settings.h: typed reading of a plugin's settings, the a{sv} handed to its init.
 *
 * A missing key gives the fallback; a key present with the wrong type or out of range
 * is an error that names the key and says what was expected, so a typo in the
 * configuration never silently becomes a default. Integers from the configuration
 * always arrive as int64 ("x"). */
#pragma once

#include "hark/export.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_SETTINGS_ERROR (hark_settings_error_quark())
HARK_API GQuark hark_settings_error_quark(void);

typedef enum {
  HARK_SETTINGS_ERROR_TYPE, /* the key has another type */
  HARK_SETTINGS_ERROR_RANGE, /* an integer outside [min, max] */
} HarkSettingsError;

/* *out is a new string (or a copy of fallback, which may be NULL). */
HARK_API gboolean hark_settings_get_string(GVariant *settings, const char *key,
                                           const char *fallback, char **out, GError **error);
HARK_API gboolean hark_settings_get_int(GVariant *settings, const char *key, gint64 fallback,
                                        gint64 min, gint64 max, gint64 *out, GError **error);
HARK_API gboolean hark_settings_get_bool(GVariant *settings, const char *key, gboolean fallback,
                                         gboolean *out, GError **error);

/* Log a warning for each key not in known (NULL-terminated); returns how many. The
 * warning names the plugin and the keys it knows, like the configuration's own
 * warnings for unknown keys. */
HARK_API guint hark_settings_warn_unknown(GVariant *settings, const char *plugin,
                                          const char *const *known);

G_END_DECLS
