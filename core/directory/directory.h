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

#include "login.h"
#include "overlay.h"

G_BEGIN_DECLS

typedef struct _HarkDirectory HarkDirectory;

/* overlay and login: borrowed, must outlive it. Registers its overlay listener and hands
 * every search registration the services (attach). */
HarkDirectory *hark_directory_new(HarkNode *node, HarkOverlay *overlay, HarkLoginClient *login);
void hark_directory_free(HarkDirectory *directory);

/* The commands answer about *directory, which the node sets once it has one. */
void hark_directory_commands_register(HarkContext *core_ctx, HarkDirectory **directory);

G_END_DECLS
