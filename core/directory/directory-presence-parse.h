/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-presence-parse.h: the bodies of DIR_SUBSCRIBE, DIR_PRESENCE, DIR_WATCH and DIR_HINT checked
 * (directory-presence-parse.c), apart from the SN's and the device's state so the
 * `record` fuzzer can feed them. docs/protocol.md, "Presence subscriptions". */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DIRECTORY_PRESENCE_MAX_USERS 1000 /* names one DIR_SUBSCRIBE may list */
#define DIRECTORY_PRESENCE_MAX_ITEMS 16 /* records, and devices gone, in one DIR_PRESENCE */
#define DIRECTORY_PRESENCE_MAX_WATCHES 16 /* signed watches in one DIR_WATCH */

/* A DIR_SUBSCRIBE body (sas): *watcher the name as sent ("" from a device: new), *users
 * the canonical names (a set, new). HARK_PRESENCE_ERROR_MALFORMED when the body is not of
 * that type, the watcher is neither "" nor a user name, a listed name is not one, or
 * there are more than DIRECTORY_PRESENCE_MAX_USERS; the message is safe to log. */
gboolean hark_directory_subscribe_parse(GVariant *body, char **watcher, GHashTable **users,
                                        GError **error);
/* A DIR_PRESENCE body (ssa(ayay)as): the watcher and the user canonical (new), the
 * records and the device ids gone (new references; the records not checked yet:
 * hark_presence_verify each). MALFORMED unless both names are user names, each list has
 * at most DIRECTORY_PRESENCE_MAX_ITEMS and each device id is 64 lower-case hex digits. */
gboolean hark_directory_presence_parse(GVariant *body, char **watcher, char **user,
                                       GVariant **records, GVariant **gone, GError **error);
/* A DIR_WATCH body (sa(ayay)): *watcher the name as sent ("" from a device; new), *watches
 * the signed watches (a new reference; not checked yet: hark_presence_watch_verify each).
 * MALFORMED unless the watcher is "" or a user name and there are at most
 * DIRECTORY_PRESENCE_MAX_WATCHES. */
gboolean hark_directory_watch_parse(GVariant *body, char **watcher, GVariant **watches,
                                    GError **error);
/* A DIR_HINT body (s): *user the canonical name (new) of the user whose devices are to
 * fetch their contacts. MALFORMED unless it is a user name. */
gboolean hark_directory_hint_parse(GVariant *body, char **user, GError **error);

G_END_DECLS
