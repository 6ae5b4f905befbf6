/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-files.c: removing temporary trees and reading file modes for the tests. */
#include "test-files.h"

#include <glib/gstdio.h>

gboolean
hark_test_remove_tree(const char *path)
{
  gboolean ok = TRUE;
  if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;
    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      ok = hark_test_remove_tree(child) && ok;
    }
    return g_rmdir(path) == 0 && ok;
  }
  return g_unlink(path) == 0;
}

guint
hark_test_file_mode(const char *path)
{
  GStatBuf st;
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  return st.st_mode & 07777;
}
