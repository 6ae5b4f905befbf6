/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory.h: the directory inside libhark (private): presence records published to
 * the super node, the SN's store of them, lookups through the search strategies, and the
 * `search`, `status` and `directory` commands. docs/architecture.md, "Directory".
 *
 * Files: directory.c (the object, the overlay listener, the strategies and the services
 * handed to them, the commands), directory-store.c (an SN's records), directory-publish.c
 * (this device's record), directory-lookup.c (lookups: an SN serving its clients, a
 * client's `search`). */
#pragma once

#include "hark/presence.h"
#include "hark/search.h"
#include "login.h"
#include "overlay.h"

G_BEGIN_DECLS

typedef struct _HarkDirectory HarkDirectory;

/* overlay and login: borrowed, must outlive it. Registers its overlay listener and hands
 * every search registration the services (attach). */
HarkDirectory *hark_directory_new(HarkNode *node, HarkOverlay *overlay, HarkLoginClient *login);
void hark_directory_free(HarkDirectory *directory);

/* A lookup's end: the answer (found, known, unknown), the query as parsed, the verified
 * records (HarkPresenceRecord*: public forms, full forms for a buddy) and, for a
 * prefix, the names found; or error (records and names then hold what was gathered).
 * Everything is borrowed for the call. */
typedef void (*HarkDirectoryLookupDone)(HarkSearchAnswer answer, const HarkPresenceQuery *query,
                                        GPtrArray *records, GPtrArray *names, const GError *error,
                                        gpointer data);
/* Look a user up (text: a name, or the start of names ending in `*`) the way `search`
 * does: our SN (or, an SN, its own store), then the client-side strategies in
 * directory.search order. done is called exactly once, also when the node stops. */
void hark_directory_lookup(HarkDirectory *directory, const char *text, HarkDirectoryLookupDone done,
                           gpointer data);

/* The commands answer about *directory, which the node sets once it has one. */
void hark_directory_commands_register(HarkContext *core_ctx, HarkDirectory **directory);

G_END_DECLS
