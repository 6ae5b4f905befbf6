/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* file-util.c: whole writes, moves into place and directory syncs for private files. */
#include "file-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
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

HarkFilePrivacy
hark_file_make_private(const char *path, const char *what, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  int fd = -1;
  if (g_mkdir_with_parents(dir, 0700) == 0)
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int saved = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "cannot open %s: %s", path,
                g_strerror(saved));
    return HARK_FILE_UNREACHABLE;
  }
  struct stat st;
  gboolean ok = fstat(fd, &st) == 0;
  int saved = errno;
  close(fd);
  if (!ok) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "cannot stat %s: %s", path,
                g_strerror(saved));
    return HARK_FILE_UNREACHABLE;
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s is not a regular file", path);
    return HARK_FILE_NOT_REGULAR;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                "%s: mode %04o lets other users read %s; run 'chmod 600 %s'", path,
                (unsigned)(st.st_mode & 07777), what, path);
    return HARK_FILE_SHARED;
  }
  return HARK_FILE_PRIVATE;
}
