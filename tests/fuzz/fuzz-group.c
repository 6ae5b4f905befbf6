/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-group.c: libFuzzer target for group membership changes (core/message/
 * message-group.c): the input is an opened envelope's inner plaintext, `(sa{sv})` in
 * normal form, as a member's device gets it from a sender whose signature checked out
 * but who may be hostile. It goes through hark_message_inner_parse; a `group` kind that
 * parses must honour every limit, and is judged by the rules as carol's device would
 * (not knowing the group, and knowing it as a member with alice its admin), then
 * described; a text's group state is judged as a new device of carol's would. Whatever the
 * rules take must be a state within the limits. Seeds:
 * make-group-seeds.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "message-group.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
check_state(const HarkMessageGroup *group)
{
  if (group->members->len > HARK_MESSAGE_GROUP_MAX_MEMBERS || group->version == 0 ||
      !hark_message_group_id_is_valid(group->id) || !hark_message_group_name_is_valid(group->name))
    abort();
  for (guint i = 1; i < group->members->len; i++)
    if (strcmp(group->members->pdata[i - 1], group->members->pdata[i]) >= 0)
      abort(); /* sorted, each once */
}

static void
judge_as_carol(const HarkMessageGroup *known, const char *sender,
               const HarkMessageGroupChange *change)
{
  g_autoptr(HarkMessageGroup) next = NULL;
  g_autoptr(GError) error = NULL;
  HarkMessageGroupVerdict verdict =
    hark_message_group_judge(known, "carol", sender, change, &next, &error);
  if ((verdict == HARK_MESSAGE_GROUP_TAKE) != (next != NULL) ||
      (verdict == HARK_MESSAGE_GROUP_REFUSE) != (error != NULL))
    abort();
  if (next != NULL)
    check_state(next);
  fuzz_say(verdict == HARK_MESSAGE_GROUP_TAKE    ? "taken"
           : verdict == HARK_MESSAGE_GROUP_LATER ? "later"
                                                 : "refused",
           error != NULL ? error->message : NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  g_autoptr(GVariant) inner =
    g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE("(sa{sv})"), bytes, FALSE));
  if (!g_variant_is_normal_form(inner)) {
    fuzz_say("not normal form", NULL);
    return 0;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(inner, &error);
  if (parsed == NULL) {
    fuzz_say("refused", error->message);
    return 0;
  }
  if (parsed->kind == HARK_MESSAGE_KIND_TEXT && parsed->group_state != NULL) {
    check_state(parsed->group_state);
    g_autoptr(HarkMessageGroup) next = NULL;
    g_autoptr(GError) refused = NULL;
    if ((hark_message_group_judge_state(NULL, "carol", parsed->group_state->admin,
                                        parsed->group_state, &next,
                                        &refused) == HARK_MESSAGE_GROUP_TAKE) != (next != NULL))
      abort();
    fuzz_say(next != NULL ? "state taken" : "state refused", NULL);
    return 0;
  }
  if (parsed->kind != HARK_MESSAGE_KIND_GROUP) {
    fuzz_say("another kind", parsed->kind_name);
    return 0;
  }
  const HarkMessageGroupChange *change = parsed->group;
  check_state(change->group);
  if (change->users->len > HARK_MESSAGE_GROUP_MAX_MEMBERS)
    abort();
  const char *members[] = { "alice", "bob", "carol", NULL };
  g_autoptr(HarkMessageGroup) known =
    hark_message_group_new(change->group->id, "friends", "alice", 3, members);
  judge_as_carol(NULL, change->group->admin, change);
  judge_as_carol(known, "alice", change);
  judge_as_carol(known, "bob", change);
  g_free(hark_message_group_describe("alice", change));
  return 0;
}
