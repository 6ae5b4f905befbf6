/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* file-util.h: the few careful file operations behind private files (keys, certificates,
 * caches): whole writes, moving a finished file into place, syncing its directory.
 * Not installed. */
#pragma once

#include <glib.h>

/* write() until done (retrying EINTR); FALSE with errno set on failure. */
gboolean hark_file_write_all(int fd, const char *data, gsize length);

/* Renames tmp_path to path. Without replace an existing path is kept and this fails with
 * errno EEXIST (renameat2 RENAME_NOREPLACE, or link() where the file system lacks it). */
gboolean hark_file_move_into_place(const char *tmp_path, const char *path, gboolean replace);

/* fsync() the directory holding path, so a rename into it survives a crash. */
void hark_file_sync_parent_dir(const char *path);
