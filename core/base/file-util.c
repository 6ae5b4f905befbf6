/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* file-util.c: whole writes, moves into place and directory syncs for private files. */
#include "file-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

gboolean
hark_file_write_all(int fd, const char *data, gsize length)
{
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return FALSE;
    data += n;
    length -= (gsize)n;
  }
  return TRUE;
}

gboolean
hark_file_move_into_place(const char *tmp_path, const char *path, gboolean replace)
{
  if (replace)
    return rename(tmp_path, path) == 0;
  if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
    return TRUE;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    return FALSE;
  /* A file system that cannot rename without replacing: link() never replaces. */
  if (link(tmp_path, path) != 0)
    return FALSE;
  unlink(tmp_path);
  return TRUE;
}

void
hark_file_sync_parent_dir(const char *path)
{
  g_autofree char *dir = g_path_get_dirname(path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}
