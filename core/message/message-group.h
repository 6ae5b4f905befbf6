/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-group.h: group conversations (docs/protocol.md, "Messages: groups"): a group's
 * state (id, name, admin, version, members), the inner kind `group` that carries a
 * membership change, and the rules a device applies to a change before it takes it.
 * Pure: no keys, no network, no storage (the history keeps the state, the messenger
 * sends and receives). Private to libhark's message layer. */
#pragma once

#include "message-envelope.h"

G_BEGIN_DECLS

#define HARK_MESSAGE_GROUP_ID_SIZE 16
#define HARK_MESSAGE_GROUP_MAX_MEMBERS 100
#define HARK_MESSAGE_GROUP_MAX_NAME 64

/* A group as one device knows it. members: canonical user names, sorted, no twice. */
typedef struct _HarkMessageGroup {
  char id[2 * HARK_MESSAGE_GROUP_ID_SIZE + 1]; /* lower-case hex */
  char *name;
  char *admin; /* canonical: the creator, the only one who adds and removes */
  guint64 version; /* 1 at creation, +1 at every add or remove */
  GPtrArray *members; /* char* */
} HarkMessageGroup;

typedef enum {
  HARK_MESSAGE_GROUP_CREATE,
  HARK_MESSAGE_GROUP_ADD,
  HARK_MESSAGE_GROUP_REMOVE,
  HARK_MESSAGE_GROUP_LEAVE,
} HarkMessageGroupOp;

/* A membership change: the op, the users it adds or removes (none for leave and
 * create), and the group as its sender has it after the change. */
typedef struct _HarkMessageGroupChange {
  HarkMessageGroupOp op;
  GPtrArray *users; /* char*, canonical */
  HarkMessageGroup *group;
} HarkMessageGroupChange;

typedef enum {
  HARK_MESSAGE_GROUP_TAKE, /* *next is the new state */
  HARK_MESSAGE_GROUP_LATER, /* an admin change ahead of the known version: let it come again */
  HARK_MESSAGE_GROUP_REFUSE, /* error says why (NOT_ALLOWED, MALFORMED) */
} HarkMessageGroupVerdict;

HarkMessageGroup *hark_message_group_new(const char *id, const char *name, const char *admin,
                                         guint64 version, const char *const *members);
HarkMessageGroup *hark_message_group_copy(const HarkMessageGroup *group);
void hark_message_group_free(HarkMessageGroup *group);
void hark_message_group_change_free(HarkMessageGroupChange *change);
/* names (char*): sorted, each once. */
void hark_message_group_normalise(GPtrArray *names);
gboolean hark_message_group_has(const HarkMessageGroup *group, const char *user);
/* "#" + the id: an envelope's `to`; "g:" + the id: the history's conversation. */
gboolean hark_message_group_id_is_valid(const char *id);
/* Members as one space-separated string (the history's column) and back. */
char *hark_message_group_members_join(const HarkMessageGroup *group);
/* A list of user names (space or comma separated) as canonical names, sorted, once
 * each; NULL and MALFORMED when one is not a user name or there are more than max. */
GPtrArray *hark_message_group_users_parse(const char *list, guint max, GError **error);
/* A group name: 1-64 bytes of UTF-8 without control characters. */
gboolean hark_message_group_name_is_valid(const char *name);

/* The inner plaintext of a change (floating), and its parse (from the kind's fields). */
GVariant *hark_message_group_change_new(const HarkMessageGroupChange *change);
HarkMessageGroupChange *hark_message_group_change_parse(GVariant *fields, GError **error);
/* A group's state as the `group` field of a text to the group (a{sv}, floating: group,
 * name, admin, version, members, as in a change), and its parse. */
GVariant *hark_message_group_state_new(const HarkMessageGroup *group);
HarkMessageGroup *hark_message_group_state_parse(GVariant *fields, GError **error);
/* A text to a group (floating) that carries the group's state (for the sender's own new
 * devices and, from the admin, a member's), or NULL when the text is out of limits. */
GVariant *hark_message_group_text_new(const char *text, const HarkMessageGroup *group,
                                      GError **error);

/* The rules. known: this device's state of the group (NULL when it has none); me and
 * sender: canonical user names. On TAKE, *next is the state to keep. */
HarkMessageGroupVerdict hark_message_group_judge(const HarkMessageGroup *known, const char *me,
                                                 const char *sender,
                                                 const HarkMessageGroupChange *change,
                                                 HarkMessageGroup **next, GError **error);
/* The state a text to the group carries: taken (whole) only by a device that does not
 * know the group or has left it, when the sender is its own user (another device of
 * the same user) or the admin the state names, both members in it; and when it knew the
 * group, only with the same admin and a newer version. REFUSE (NOT_ALLOWED) otherwise:
 * a device in the group trusts nobody's list over its own. */
HarkMessageGroupVerdict hark_message_group_judge_state(const HarkMessageGroup *known,
                                                       const char *me, const char *sender,
                                                       const HarkMessageGroup *state,
                                                       HarkMessageGroup **next, GError **error);
/* What the history shows for a change: "alice added mallory", ... */
char *hark_message_group_describe(const char *sender, const HarkMessageGroupChange *change);
const char *hark_message_group_op_name(HarkMessageGroupOp op);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMessageGroup, hark_message_group_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkMessageGroupChange, hark_message_group_change_free)

G_END_DECLS
