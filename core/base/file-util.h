/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* file-util.h: the few careful file operations behind private files (keys, certificates,
 * caches): whole writes, moving a finished file into place, syncing its directory.
 * Not installed. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* write() until done (retrying EINTR); FALSE with errno set on failure. */
gboolean hark_file_write_all(int fd, const char *data, gsize length);

/* Renames tmp_path to path. Without replace an existing path is kept and this fails with
 * errno EEXIST (renameat2 RENAME_NOREPLACE, or link() where the file system lacks it). */
gboolean hark_file_move_into_place(const char *tmp_path, const char *path, gboolean replace);

/* fsync() the directory holding path, so a rename into it survives a crash. */
void hark_file_sync_parent_dir(const char *path);

/* What hark_file_make_private found. */
typedef enum {
  HARK_FILE_PRIVATE, /* a regular file only its owner can reach */
  HARK_FILE_UNREACHABLE, /* it could not be created, opened or examined */
  HARK_FILE_NOT_REGULAR, /* a folder, a device, a socket... */
  HARK_FILE_SHARED, /* its group or other users have some permission on it */
} HarkFilePrivacy;

/* For a file a library opens by name (SQLite): creates path mode 0600 (and its folder
 * 0700) when missing, before the library would create it with the umask, and checks that
 * it is a regular file only its owner can reach. A symlink is not followed. Anything but
 * HARK_FILE_PRIVATE comes with error (G_FILE_ERROR) saying what is wrong and, for a
 * shared file, the command that fixes it; what names what others could read ("the
 * messages"). */
HarkFilePrivacy hark_file_make_private(const char *path, const char *what, GError **error);

G_END_DECLS
