/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-group-seeds.c: writes fuzz-group's seeds, the inner plaintexts of membership
 * changes a device may get: `make-group-seeds DIR` (DIR is tests/fuzz/corpus/group).
 * Run by hand after a change to the `group` kind; the seeds are committed. */
#include "message-group.h"

#include <stdio.h>

static void
write_seed(const char *dir, const char *name, HarkMessageGroupOp op, const char *users,
           const char *admin, guint64 version, const char *members)
{
  g_auto(GStrv) list = g_strsplit(members, " ", -1);
  HarkMessageGroupChange change = {
    .op = op,
    .users = hark_message_group_users_parse(users, 100, NULL),
    .group = hark_message_group_new("00112233445566778899aabbccddeeff", "friends", admin, version,
                                    (const char *const *)list),
  };
  g_autoptr(GVariant) inner = g_variant_ref_sink(hark_message_group_change_new(&change));
  g_autoptr(GVariant) normal = g_variant_get_normal_form(inner);
  g_autofree char *path = g_build_filename(dir, name, NULL);
  if (!g_file_set_contents(path, g_variant_get_data(normal), (gssize)g_variant_get_size(normal),
                           NULL))
    g_error("cannot write %s", path);
  g_ptr_array_unref(change.users);
  hark_message_group_free(change.group);
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: make-group-seeds DIR\n");
    return 2;
  }
  write_seed(argv[1], "create", HARK_MESSAGE_GROUP_CREATE, "", "alice", 1, "alice bob carol");
  write_seed(argv[1], "add", HARK_MESSAGE_GROUP_ADD, "dave", "alice", 4, "alice bob carol dave");
  write_seed(argv[1], "remove", HARK_MESSAGE_GROUP_REMOVE, "bob", "alice", 4, "alice carol");
  write_seed(argv[1], "leave", HARK_MESSAGE_GROUP_LEAVE, "", "alice", 3, "alice carol");
  write_seed(argv[1], "hostile-add", HARK_MESSAGE_GROUP_ADD, "mallory", "bob", 4,
             "alice bob carol mallory");
  /* A text to the group with its state. */
  const char *members[] = { "alice", "bob", "carol", NULL };
  g_autoptr(HarkMessageGroup) group =
    hark_message_group_new("00112233445566778899aabbccddeeff", "friends", "alice", 3, members);
  g_autoptr(GVariant) text = g_variant_ref_sink(hark_message_group_text_new("hi", group, NULL));
  g_autoptr(GVariant) normal = g_variant_get_normal_form(text);
  g_autofree char *path = g_build_filename(argv[1], "text-with-state", NULL);
  if (!g_file_set_contents(path, g_variant_get_data(normal), (gssize)g_variant_get_size(normal),
                           NULL))
    g_error("cannot write %s", path);
  return 0;
}
