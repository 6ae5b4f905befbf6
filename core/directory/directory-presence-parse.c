/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-presence-parse.c: what a DIR_SUBSCRIBE, DIR_WATCH, DIR_PRESENCE or DIR_HINT must be before the
 * SN or the device looks at it (directory-presence-parse.h). Pure: no state, no clock. */
#include "directory-presence-parse.h"

#include "hark/presence.h"

#include <string.h>

static gboolean
malformed(GError **error, const char *what)
{
  g_set_error_literal(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED, what);
  return FALSE;
}

gboolean
hark_directory_subscribe_parse(GVariant *body, char **watcher, GHashTable **users, GError **error)
{
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE("(sas)")))
    return malformed(error, "a DIR_SUBSCRIBE that is not (sas)");
  const char *watcher_text;
  g_autoptr(GVariant) list = NULL;
  g_variant_get(body, "(&s@as)", &watcher_text, &list);
  if (*watcher_text != '\0' && !hark_presence_name_is_valid(watcher_text))
    return malformed(error, "a DIR_SUBSCRIBE whose watcher is not a user name");
  if (g_variant_n_children(list) > DIRECTORY_PRESENCE_MAX_USERS)
    return malformed(error, "a DIR_SUBSCRIBE with too many users");
  g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  GVariantIter iter;
  const char *name;
  g_variant_iter_init(&iter, list);
  while (g_variant_iter_next(&iter, "&s", &name)) {
    if (!hark_presence_name_is_valid(name))
      return malformed(error, "a DIR_SUBSCRIBE with a name that is not a user name");
    g_hash_table_add(names, hark_presence_name_key(name));
  }
  *watcher = g_strdup(watcher_text);
  *users = g_steal_pointer(&names);
  return TRUE;
}

gboolean
hark_directory_watch_parse(GVariant *body, char **watcher, GVariant **watches, GError **error)
{
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE("(sa(ayay))")))
    return malformed(error, "a DIR_WATCH that is not (sa(ayay))");
  const char *watcher_text;
  g_autoptr(GVariant) list = NULL;
  g_variant_get(body, "(&s@a(ayay))", &watcher_text, &list);
  if (*watcher_text != '\0' && !hark_presence_name_is_valid(watcher_text))
    return malformed(error, "a DIR_WATCH whose watcher is not a user name");
  if (g_variant_n_children(list) > DIRECTORY_PRESENCE_MAX_WATCHES)
    return malformed(error, "a DIR_WATCH with too many watches");
  *watcher = g_strdup(watcher_text);
  *watches = g_steal_pointer(&list);
  return TRUE;
}

gboolean
hark_directory_hint_parse(GVariant *body, char **user, GError **error)
{
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE("(s)")))
    return malformed(error, "a DIR_HINT that is not (s)");
  const char *user_text;
  g_variant_get(body, "(&s)", &user_text);
  if (!hark_presence_name_is_valid(user_text))
    return malformed(error, "a DIR_HINT whose user is not a user name");
  *user = hark_presence_name_key(user_text);
  return TRUE;
}

static gboolean
is_device_id(const char *text)
{
  if (strlen(text) != 64)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

gboolean
hark_directory_presence_parse(GVariant *body, char **watcher, char **user, GVariant **records,
                              GVariant **gone, GError **error)
{
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE("(ssa(ayay)as)")))
    return malformed(error, "a DIR_PRESENCE that is not (ssa(ayay)as)");
  const char *watcher_text, *user_text;
  g_autoptr(GVariant) records_v = NULL;
  g_autoptr(GVariant) gone_v = NULL;
  g_variant_get(body, "(&s&s@a(ayay)@as)", &watcher_text, &user_text, &records_v, &gone_v);
  if (!hark_presence_name_is_valid(watcher_text) || !hark_presence_name_is_valid(user_text))
    return malformed(error, "a DIR_PRESENCE whose watcher or user is not a user name");
  if (g_variant_n_children(records_v) > DIRECTORY_PRESENCE_MAX_ITEMS ||
      g_variant_n_children(gone_v) > DIRECTORY_PRESENCE_MAX_ITEMS)
    return malformed(error, "a DIR_PRESENCE with too many records or devices");
  GVariantIter iter;
  const char *device;
  g_variant_iter_init(&iter, gone_v);
  while (g_variant_iter_next(&iter, "&s", &device))
    if (!is_device_id(device))
      return malformed(error, "a DIR_PRESENCE with a device id that is not one");
  *watcher = hark_presence_name_key(watcher_text);
  *user = hark_presence_name_key(user_text);
  *records = g_steal_pointer(&records_v);
  *gone = g_steal_pointer(&gone_v);
  return TRUE;
}
