/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-inner-seeds.c: writes fuzz-inner's seeds, the serialised inner plaintexts of each
 * kind (with message-inner.c's own builders), into the directory given:
 *   ninja -C build tests/fuzz/make-inner-seeds
 *   build/tests/fuzz/make-inner-seeds tests/fuzz/corpus/inner */
#include "message-envelope.h"
#include "message-group.h"

#include <string.h>

static void
write_seed(const char *dir, const char *name, GVariant *inner)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink(inner);
  g_autoptr(GVariant) normal = g_variant_get_normal_form(owned);
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_file_set_contents(path, g_variant_get_data(normal), (gssize)g_variant_get_size(normal),
                           &error))
    g_error("%s", error->message);
}

int
main(int argc, char **argv)
{
  if (argc != 2)
    g_error("usage: make-inner-seeds DIR");
  guint8 ids[2][HARK_MESSAGE_ID_SIZE];
  memset(ids, 0x5a, sizeof ids);
  write_seed(argv[1], "text", hark_message_text_new("hello ✓", NULL));
  write_seed(argv[1], "receipt",
             hark_message_receipt_new((const guint8(*)[HARK_MESSAGE_ID_SIZE])ids, 2, "read", NULL));
  write_seed(argv[1], "typing", hark_message_typing_new(TRUE));
  write_seed(argv[1], "history-request", hark_message_past_request_new());
  HarkMessagePast past[2] = {
    { .conversation = "u:bob", .sender = "bob",
      .sender_device = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      .sequence = 3, .time = 1700000000, .text = "from bob" },
    { .conversation = "g:0123456789abcdef0123456789abcdef", .sender = "Alice",
      .sender_device = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
      .sequence = 1, .time = 1700000100, .text = "" },
  };
  memset(past[0].id, 0x11, HARK_MESSAGE_ID_SIZE);
  memset(past[1].id, 0x22, HARK_MESSAGE_ID_SIZE);
  HarkMessagePast *list[] = { &past[0], &past[1] };
  write_seed(argv[1], "history", hark_message_past_new(list, 2, NULL));
  /* A batch of a group's conversation, with the group's state. */
  const char *members[] = { "alice", "bob", "carol", NULL };
  g_autoptr(HarkMessageGroup) group =
    hark_message_group_new("0123456789abcdef0123456789abcdef", "friends ✓", "alice", 3, members);
  write_seed(argv[1], "history-group", hark_message_past_group_new(&list[1], 1, group, NULL));
  /* The same state with a user's message beside the group's: malformed. */
  write_seed(argv[1], "history-group-mixed",
             g_variant_new_parsed("('history', {'messages': <[(@ay [byte 0x11, 0x11, 0x11, 0x11,"
                                  " 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,"
                                  " 0x11, 0x11], 'u:bob', 'bob', %s, @t 3, @x 1700000000,"
                                  " 'from bob')]>, 'group': <%@a{sv}>})",
                                  past[0].sender_device, hark_message_group_state_new(group)));
  write_seed(argv[1], "history-empty",
             g_variant_new_parsed("('history', {'messages': <@a(ayssstxs) []>})"));
  write_seed(argv[1], "signal",
             hark_message_signal_new("call",
                                     g_variant_new_parsed("{'type': <'invite'>, 'seq': <@u 1>}"),
                                     NULL));
  write_seed(argv[1], "other-kind", g_variant_new_parsed("('group', @a{sv} {})"));
  return 0;
}
