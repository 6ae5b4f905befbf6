/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-message-group.c: the rules of group conversations (core/message/message-group.c)
 * without a network: who may create, add, remove and leave, what a device that does not
 * know the group takes (from a change, or from the state a group text carries), the order
 * of the admin's changes, and the `group` kind's limits
 * (a change a hostile member or stranger could make up is refused with the reason). */
#include "message-group.h"

#include <string.h>

#define ID "00112233445566778899aabbccddeeff"

static HarkMessageGroup *
group_of(const char *admin, guint64 version, const char *members)
{
  g_auto(GStrv) list = g_strsplit(members, " ", -1);
  return hark_message_group_new(ID, "friends", admin, version, (const char *const *)list);
}

/* A change of op by whoever, claiming the state (admin, version, members) after it. */
static HarkMessageGroupChange *
change_of(HarkMessageGroupOp op, const char *users, const char *admin, guint64 version,
          const char *members)
{
  HarkMessageGroupChange *change = g_new0(HarkMessageGroupChange, 1);
  change->op = op;
  change->users = hark_message_group_users_parse(users, 100, NULL);
  change->group = group_of(admin, version, members);
  return change;
}

static HarkMessageGroupVerdict
judge(const HarkMessageGroup *known, const char *me, const char *sender,
      const HarkMessageGroupChange *change, HarkMessageGroup **next, GError **error)
{
  return hark_message_group_judge(known, me, sender, change, next, error);
}

static char *
members_of(const HarkMessageGroup *group)
{
  return hark_message_group_members_join(group);
}

static void
test_create(void)
{
  g_autoptr(HarkMessageGroupChange) create =
    change_of(HARK_MESSAGE_GROUP_CREATE, "", "alice", 1, "alice bob carol");
  g_autoptr(HarkMessageGroup) next = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_cmpint(judge(NULL, "bob", "alice", create, &next, &error), ==, HARK_MESSAGE_GROUP_TAKE);
  g_autofree char *members = members_of(next);
  g_assert_cmpstr(members, ==, "alice bob carol");
  g_assert_cmpstr(next->admin, ==, "alice");

  /* Not from the admin it names, or not to a member: refused. */
  g_autoptr(HarkMessageGroup) none = NULL;
  g_assert_cmpint(judge(NULL, "bob", "carol", create, &none, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_NOT_ALLOWED);
  g_clear_error(&error);
  g_assert_cmpint(judge(NULL, "dave", "alice", create, &none, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  /* A second create of a group this device is in. */
  g_assert_cmpint(judge(next, "bob", "alice", create, &none, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_NOT_ALLOWED);
  g_assert_null(none);
}

static void
test_admin_only(void)
{
  g_autoptr(HarkMessageGroup) known = group_of("alice", 1, "alice bob carol");
  g_autoptr(HarkMessageGroup) next = NULL;
  g_autoptr(GError) error = NULL;
  /* bob is a member, not the admin: he can neither add mallory nor remove carol, whatever
   * his change claims the admin is. */
  g_autoptr(HarkMessageGroupChange) add_by_bob =
    change_of(HARK_MESSAGE_GROUP_ADD, "mallory", "bob", 2, "alice bob carol mallory");
  g_assert_cmpint(judge(known, "carol", "bob", add_by_bob, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_NOT_ALLOWED);
  g_clear_error(&error);
  g_autoptr(HarkMessageGroupChange) remove_by_bob =
    change_of(HARK_MESSAGE_GROUP_REMOVE, "carol", "alice", 2, "alice bob");
  g_assert_cmpint(judge(known, "alice", "bob", remove_by_bob, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  /* mallory, not a member, cannot leave (or anything else) either. */
  g_autoptr(HarkMessageGroupChange) leave_by_mallory =
    change_of(HARK_MESSAGE_GROUP_LEAVE, "", "alice", 1, "alice bob carol");
  g_assert_cmpint(judge(known, "alice", "mallory", leave_by_mallory, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  g_assert_null(next);

  /* The admin adds dave: applied to what this device knows. */
  g_autoptr(HarkMessageGroupChange) add =
    change_of(HARK_MESSAGE_GROUP_ADD, "dave", "alice", 2, "alice bob carol dave");
  g_assert_cmpint(judge(known, "bob", "alice", add, &next, &error), ==, HARK_MESSAGE_GROUP_TAKE);
  g_autofree char *members = members_of(next);
  g_assert_cmpstr(members, ==, "alice bob carol dave");
  g_assert_cmpuint(next->version, ==, 2);
}

static void
test_order(void)
{
  g_autoptr(HarkMessageGroup) known = group_of("alice", 1, "alice bob carol");
  g_autoptr(HarkMessageGroup) next = NULL;
  g_autoptr(GError) error = NULL;
  /* Version 3 before 2: later (it comes again); 1 again: refused (stale). */
  g_autoptr(HarkMessageGroupChange) ahead =
    change_of(HARK_MESSAGE_GROUP_REMOVE, "carol", "alice", 3, "alice bob");
  g_assert_cmpint(judge(known, "bob", "alice", ahead, &next, &error), ==, HARK_MESSAGE_GROUP_LATER);
  g_assert_null(next);
  g_autoptr(HarkMessageGroupChange) stale =
    change_of(HARK_MESSAGE_GROUP_ADD, "dave", "alice", 1, "alice bob carol dave");
  g_assert_cmpint(judge(known, "bob", "alice", stale, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);

  /* carol's leave crosses the admin's add: the add is a delta and does not bring her back. */
  g_autoptr(HarkMessageGroupChange) leave =
    change_of(HARK_MESSAGE_GROUP_LEAVE, "", "alice", 1, "alice bob");
  g_autoptr(HarkMessageGroup) after_leave = NULL;
  g_assert_cmpint(judge(known, "bob", "carol", leave, &after_leave, &error), ==,
                  HARK_MESSAGE_GROUP_TAKE);
  g_autoptr(HarkMessageGroupChange) add =
    change_of(HARK_MESSAGE_GROUP_ADD, "dave", "alice", 2, "alice bob carol dave");
  g_assert_cmpint(judge(after_leave, "bob", "alice", add, &next, &error), ==,
                  HARK_MESSAGE_GROUP_TAKE);
  g_autofree char *members = members_of(next);
  g_assert_cmpstr(members, ==, "alice bob dave");

  /* The admin cannot be removed (it leaves instead). */
  g_autoptr(HarkMessageGroupChange) remove_admin =
    change_of(HARK_MESSAGE_GROUP_REMOVE, "alice", "alice", 2, "bob carol");
  g_autoptr(HarkMessageGroup) kept = NULL;
  g_assert_cmpint(judge(known, "bob", "alice", remove_admin, &kept, &error), ==,
                  HARK_MESSAGE_GROUP_TAKE);
  g_assert_true(hark_message_group_has(kept, "alice"));
}

static void
test_newcomer(void)
{
  g_autoptr(HarkMessageGroup) next = NULL;
  g_autoptr(GError) error = NULL;
  /* dave is added: his device takes the whole state from the admin. */
  g_autoptr(HarkMessageGroupChange) add =
    change_of(HARK_MESSAGE_GROUP_ADD, "dave", "alice", 4, "alice bob dave");
  g_assert_cmpint(judge(NULL, "dave", "alice", add, &next, &error), ==, HARK_MESSAGE_GROUP_TAKE);
  g_assert_cmpuint(next->version, ==, 4);
  g_clear_pointer(&next, hark_message_group_free);
  /* A leave or remove of a group this device does not know tells it nothing it can check. */
  g_autoptr(HarkMessageGroupChange) leave =
    change_of(HARK_MESSAGE_GROUP_LEAVE, "", "alice", 4, "alice dave");
  g_assert_cmpint(judge(NULL, "dave", "bob", leave, &next, &error), ==, HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  /* Re-added after leaving: only by the admin it had, and only newer. */
  g_autoptr(HarkMessageGroup) left = group_of("alice", 4, "alice bob");
  g_autoptr(HarkMessageGroupChange) other_admin =
    change_of(HARK_MESSAGE_GROUP_ADD, "carol", "bob", 5, "alice bob carol");
  g_assert_cmpint(judge(left, "carol", "bob", other_admin, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  g_autoptr(HarkMessageGroupChange) back =
    change_of(HARK_MESSAGE_GROUP_ADD, "carol", "alice", 5, "alice bob carol");
  g_assert_cmpint(judge(left, "carol", "alice", back, &next, &error), ==, HARK_MESSAGE_GROUP_TAKE);
}

/* The state a group text carries: taken only by a device outside the group, from its own
 * user or the admin it names. */
static void
test_state(void)
{
  g_autoptr(HarkMessageGroup) state = group_of("alice", 3, "alice bob carol");
  g_autoptr(HarkMessageGroup) next = NULL;
  g_autoptr(GError) error = NULL;
  /* bob's new phone: from bob's laptop, or from alice (the admin). */
  g_assert_cmpint(hark_message_group_judge_state(NULL, "bob", "bob", state, &next, &error), ==,
                  HARK_MESSAGE_GROUP_TAKE);
  g_clear_pointer(&next, hark_message_group_free);
  g_assert_cmpint(hark_message_group_judge_state(NULL, "bob", "alice", state, &next, &error), ==,
                  HARK_MESSAGE_GROUP_TAKE);
  g_clear_pointer(&next, hark_message_group_free);
  /* From carol, a member but not the admin: refused (she could name anyone admin). */
  g_assert_cmpint(hark_message_group_judge_state(NULL, "bob", "carol", state, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_NOT_ALLOWED);
  g_clear_error(&error);
  /* A device in the group takes nobody's list over its own, not even the admin's. */
  g_autoptr(HarkMessageGroup) known = group_of("alice", 3, "alice bob");
  g_assert_cmpint(hark_message_group_judge_state(known, "bob", "alice", state, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  /* One that left takes only a newer state of the same admin. */
  g_autoptr(HarkMessageGroup) left = group_of("alice", 3, "alice carol");
  g_assert_cmpint(hark_message_group_judge_state(left, "bob", "alice", state, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  g_autoptr(HarkMessageGroup) newer = group_of("alice", 4, "alice bob carol");
  g_assert_cmpint(hark_message_group_judge_state(left, "bob", "alice", newer, &next, &error), ==,
                  HARK_MESSAGE_GROUP_TAKE);
  g_clear_pointer(&next, hark_message_group_free);
  /* A state that leaves this user or the sender out is refused. */
  g_autoptr(HarkMessageGroup) without = group_of("alice", 3, "alice carol");
  g_assert_cmpint(hark_message_group_judge_state(NULL, "bob", "alice", without, &next, &error), ==,
                  HARK_MESSAGE_GROUP_REFUSE);
  g_clear_error(&error);
  g_assert_null(next);

  /* The text that carries it round-trips; a malformed state makes the text malformed. */
  g_autoptr(GVariant) text = g_variant_ref_sink(hark_message_group_text_new("hi", state, &error));
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(text, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(parsed->text, ==, "hi");
  g_assert_nonnull(parsed->group_state);
  g_assert_cmpuint(parsed->group_state->version, ==, 3);
  g_autoptr(GVariant) bad = g_variant_ref_sink(
    g_variant_new_parsed("('text', {'text': <'hi'>, 'group': <@a{sv} {'name': <'x'>}>})"));
  g_autoptr(HarkMessageInner) refused = hark_message_inner_parse(bad, &error);
  g_assert_null(refused);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
}

/* The kind round-trips, and what a hostile sender could put in it is refused. */
static void
test_kind(void)
{
  g_autoptr(HarkMessageGroupChange) change =
    change_of(HARK_MESSAGE_GROUP_ADD, "dave", "alice", 2, "alice bob dave");
  g_autoptr(GVariant) inner = g_variant_ref_sink(hark_message_group_change_new(change));
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageInner) parsed = hark_message_inner_parse(inner, &error);
  g_assert_no_error(error);
  g_assert_cmpint(parsed->kind, ==, HARK_MESSAGE_KIND_GROUP);
  g_assert_cmpstr(parsed->group->group->id, ==, ID);
  g_assert_cmpuint(parsed->group->group->version, ==, 2);
  g_autofree char *members = members_of(parsed->group->group);
  g_assert_cmpstr(members, ==, "alice bob dave");

  struct {
    const char *what;
    const char *text;
  } bad[] = {
    { "members out of order",
      "{'group': <@ay [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]>, 'op': <'add'>, 'name': <'x'>, "
      "'admin': <'alice'>, 'version': <@t 1>, 'members': <['bob', 'alice']>, 'users': <@as []>}" },
    { "a member twice", "{'group': <@ay [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]>, 'op': <'add'>, "
                        "'name': <'x'>, 'admin': <'alice'>, 'version': <@t 1>, 'members': "
                        "<['alice', 'alice']>, 'users': <@as []>}" },
    { "not canonical",
      "{'group': <@ay [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]>, 'op': <'add'>, 'name': <'x'>, "
      "'admin': <'Alice'>, 'version': <@t 1>, 'members': <['alice']>, 'users': <@as []>}" },
    { "a short id", "{'group': <@ay [0,1,2]>, 'op': <'add'>, 'name': <'x'>, 'admin': <'alice'>, "
                    "'version': <@t 1>, 'members': <['alice']>, 'users': <@as []>}" },
    { "an unknown op",
      "{'group': <@ay [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]>, 'op': <'promote'>, 'name': <'x'>, "
      "'admin': <'alice'>, 'version': <@t 1>, 'members': <['alice']>, 'users': <@as []>}" },
    { "version 0",
      "{'group': <@ay [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]>, 'op': <'add'>, 'name': <'x'>, "
      "'admin': <'alice'>, 'version': <@t 0>, 'members': <['alice']>, 'users': <@as []>}" },
    { "a name with a newline",
      "{'group': <@ay [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]>, 'op': <'add'>, 'name': <'x\\ny'>, "
      "'admin': <'alice'>, 'version': <@t 1>, 'members': <['alice']>, 'users': <@as []>}" },
    { "no members field",
      "{'group': <@ay [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]>, 'op': <'add'>, 'name': <'x'>, "
      "'admin': <'alice'>, 'version': <@t 1>, 'users': <@as []>}" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) local = NULL;
    g_autoptr(GVariant) fields =
      g_variant_parse(G_VARIANT_TYPE_VARDICT, bad[i].text, NULL, NULL, &local);
    g_assert_no_error(local);
    g_autoptr(GVariant) value = g_variant_ref_sink(g_variant_new("(s@a{sv})", "group", fields));
    g_autoptr(HarkMessageInner) refused = hark_message_inner_parse(value, &local);
    g_test_message("%s: %s", bad[i].what, local != NULL ? local->message : "(taken)");
    g_assert_null(refused);
    g_assert_error(local, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_MALFORMED);
  }

  /* 101 members: too many. */
  GString *many = g_string_new(NULL);
  for (guint i = 0; i < 101; i++)
    g_string_append_printf(many, "%su%03u", i > 0 ? " " : "", i);
  g_autoptr(GPtrArray) users = hark_message_group_users_parse(many->str, 100, &error);
  g_assert_null(users);
  g_assert_error(error, HARK_MESSAGE_ERROR, HARK_MESSAGE_ERROR_TOO_LARGE);
  g_string_free(many, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/message-group/create", test_create);
  g_test_add_func("/message-group/admin-only", test_admin_only);
  g_test_add_func("/message-group/order", test_order);
  g_test_add_func("/message-group/newcomer", test_newcomer);
  g_test_add_func("/message-group/state", test_state);
  g_test_add_func("/message-group/kind", test_kind);
  return g_test_run();
}
