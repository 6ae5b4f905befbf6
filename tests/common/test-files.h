/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-files.h: file helpers every test needs (temporary trees, modes), in one place. */
#pragma once

#include <glib.h>

/* Remove path and everything below it (symbolic links are removed, not followed).
 * TRUE when all of it is gone. */
gboolean hark_test_remove_tree(const char *path);

/* The permission bits of path (07777); the test fails when it cannot stat it. */
guint hark_test_file_mode(const char *path);
