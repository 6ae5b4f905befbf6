/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-group.c: a group's state, the `group` kind that carries a membership change,
 * and the rules a device applies before it takes one (message-group.h). A change comes
 * from a sender whose signature checked out but who may be hostile: a member who tries
 * to add people, a stranger who claims a group: every field is bounded here and the
 * rules take a change only from a member with the right at the version this device
 * knows. */
#include "message-group.h"

#include "hark/presence.h"

#include <string.h>

#define group_error(error, code, ...) hark_message_refuse(error, code, "group change", __VA_ARGS__)

static int
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
hark_message_group_normalise(GPtrArray *names)
{
  g_ptr_array_sort(names, compare_names);
  for (guint i = 1; i < names->len;)
    if (strcmp(names->pdata[i - 1], names->pdata[i]) == 0)
      g_ptr_array_remove_index(names, i);
    else
      i++;
}

HarkMessageGroup *
hark_message_group_new(const char *id, const char *name, const char *admin, guint64 version,
                       const char *const *members)
{
  HarkMessageGroup *group = g_new0(HarkMessageGroup, 1);
  g_strlcpy(group->id, id, sizeof group->id);
  group->name = g_strdup(name);
  group->admin = g_strdup(admin);
  group->version = version;
  group->members = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; members != NULL && members[i] != NULL; i++)
    g_ptr_array_add(group->members, g_strdup(members[i]));
  hark_message_group_normalise(group->members);
  return group;
}

/* names as a NULL-terminated array (borrowed strings; free the array only). */
static const char **
names_strv(const GPtrArray *names)
{
  const char **v = g_new0(const char *, names->len + 1);
  for (guint i = 0; i < names->len; i++)
    v[i] = names->pdata[i];
  return v;
}

HarkMessageGroup *
hark_message_group_copy(const HarkMessageGroup *group)
{
  g_autofree const char **members = names_strv(group->members);
  return hark_message_group_new(group->id, group->name, group->admin, group->version, members);
}

void
hark_message_group_free(HarkMessageGroup *group)
{
  if (group == NULL)
    return;
  g_free(group->name);
  g_free(group->admin);
  g_ptr_array_unref(group->members);
  g_free(group);
}

void
hark_message_group_change_free(HarkMessageGroupChange *change)
{
  if (change == NULL)
    return;
  g_clear_pointer(&change->users, g_ptr_array_unref);
  hark_message_group_free(change->group);
  g_free(change);
}

gboolean
hark_message_group_has(const HarkMessageGroup *group, const char *user)
{
  for (guint i = 0; group != NULL && i < group->members->len; i++)
    if (strcmp(group->members->pdata[i], user) == 0)
      return TRUE;
  return FALSE;
}

gboolean
hark_message_group_id_is_valid(const char *id)
{
  if (id == NULL || strlen(id) != 2 * HARK_MESSAGE_GROUP_ID_SIZE)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

gboolean
hark_message_group_name_is_valid(const char *name)
{
  gsize length = name != NULL ? strlen(name) : 0;
  if (length == 0 || length > HARK_MESSAGE_GROUP_MAX_NAME || !g_utf8_validate(name, -1, NULL))
    return FALSE;
  for (const char *p = name; *p != '\0'; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return FALSE;
  return TRUE;
}

char *
hark_message_group_members_join(const HarkMessageGroup *group)
{
  g_autofree const char **members = names_strv(group->members);
  return g_strjoinv(" ", (char **)members);
}

GPtrArray *
hark_message_group_users_parse(const char *list, guint max, GError **error)
{
  g_auto(GStrv) words = g_strsplit_set(list != NULL ? list : "", " ,", -1);
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; words[i] != NULL; i++) {
    if (words[i][0] == '\0')
      continue;
    if (!hark_presence_name_is_valid(words[i])) {
      g_autofree char *shown = g_strescape(words[i], NULL);
      group_error(error, HARK_MESSAGE_ERROR_MALFORMED, "'%.40s' is not a user name", shown);
      return NULL;
    }
    g_ptr_array_add(users, hark_presence_name_key(words[i]));
  }
  hark_message_group_normalise(users);
  if (users->len > max) {
    group_error(error, HARK_MESSAGE_ERROR_TOO_LARGE, "%u users (at most %u)", users->len, max);
    return NULL;
  }
  return g_steal_pointer(&users);
}

/* ---- the kind ------------------------------------------------------------------------ */

static const char *const op_names[] = { "create", "add", "remove", "leave" };

const char *
hark_message_group_op_name(HarkMessageGroupOp op)
{
  return op_names[op];
}

static GVariant *
names_variant(GPtrArray *names)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_STRING_ARRAY);
  for (guint i = 0; i < names->len; i++)
    g_variant_builder_add(&b, "s", (const char *)names->pdata[i]);
  return g_variant_builder_end(&b);
}

/* The state's fields into fields (a vardict builder). */
static void
state_add(GVariantBuilder *fields, const HarkMessageGroup *g)
{
  guint8 id[HARK_MESSAGE_GROUP_ID_SIZE];
  for (guint i = 0; i < sizeof id; i++)
    id[i] =
      (guint8)(g_ascii_xdigit_value(g->id[2 * i]) << 4 | g_ascii_xdigit_value(g->id[2 * i + 1]));
  g_variant_builder_add(fields, "{sv}", "group",
                        g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, id, sizeof id, 1));
  g_variant_builder_add(fields, "{sv}", "name", g_variant_new_string(g->name));
  g_variant_builder_add(fields, "{sv}", "admin", g_variant_new_string(g->admin));
  g_variant_builder_add(fields, "{sv}", "version", g_variant_new_uint64(g->version));
  g_variant_builder_add(fields, "{sv}", "members", names_variant(g->members));
}

GVariant *
hark_message_group_state_new(const HarkMessageGroup *group)
{
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  state_add(&fields, group);
  return g_variant_builder_end(&fields);
}

GVariant *
hark_message_group_text_new(const char *text, const HarkMessageGroup *group, GError **error)
{
  return hark_message_text_new_with(text, "group", hark_message_group_state_new(group), error);
}

GVariant *
hark_message_group_change_new(const HarkMessageGroupChange *change)
{
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  state_add(&fields, change->group);
  g_variant_builder_add(&fields, "{sv}", "op", g_variant_new_string(op_names[change->op]));
  g_variant_builder_add(&fields, "{sv}", "users", names_variant(change->users));
  return g_variant_new("(sa{sv})", "group", &fields);
}

static gboolean
lookup(GVariant *fields, const char *name, const char *type, GVariant **value, GError **error)
{
  *value = g_variant_lookup_value(fields, name, G_VARIANT_TYPE(type));
  if (*value == NULL)
    return group_error(error, HARK_MESSAGE_ERROR_MALFORMED, "no '%s' of type %s", name, type);
  return TRUE;
}

/* Canonical user names, sorted strictly (so once each), at most max. */
static GPtrArray *
names_parse(GVariant *list, guint max, const char *what, GError **error)
{
  gsize n = g_variant_n_children(list);
  if (n > max) {
    group_error(error, HARK_MESSAGE_ERROR_MALFORMED, "%" G_GSIZE_FORMAT " %s (at most %u)", n, what,
                max);
    return NULL;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (gsize i = 0; i < n; i++) {
    const char *name = NULL;
    g_variant_get_child(list, i, "&s", &name);
    g_autofree char *key = hark_presence_name_is_valid(name) ? hark_presence_name_key(name) : NULL;
    if (key == NULL || strcmp(key, name) != 0 ||
        (i > 0 && strcmp(names->pdata[i - 1], name) >= 0)) {
      group_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                  "the %s are not canonical user names in order, each once", what);
      return NULL;
    }
    g_ptr_array_add(names, g_steal_pointer(&key));
  }
  return g_steal_pointer(&names);
}

HarkMessageGroup *
hark_message_group_state_parse(GVariant *fields, GError **error)
{
  g_autoptr(GVariant) id = NULL, name = NULL, admin = NULL, version = NULL, members = NULL;
  if (!lookup(fields, "group", "ay", &id, error) || !lookup(fields, "name", "s", &name, error) ||
      !lookup(fields, "admin", "s", &admin, error) ||
      !lookup(fields, "version", "t", &version, error) ||
      !lookup(fields, "members", "as", &members, error))
    return NULL;
  gsize id_size = 0;
  const guint8 *id_bytes = g_variant_get_fixed_array(id, &id_size, 1);
  if (id_size != HARK_MESSAGE_GROUP_ID_SIZE) {
    group_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the id is not %d bytes",
                HARK_MESSAGE_GROUP_ID_SIZE);
    return NULL;
  }
  const char *name_text = g_variant_get_string(name, NULL);
  const char *admin_text = g_variant_get_string(admin, NULL);
  g_autofree char *admin_key =
    hark_presence_name_is_valid(admin_text) ? hark_presence_name_key(admin_text) : NULL;
  if (!hark_message_group_name_is_valid(name_text) || admin_key == NULL ||
      strcmp(admin_key, admin_text) != 0 || g_variant_get_uint64(version) == 0) {
    group_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                "the name (1-%d bytes, no control characters), the admin (a canonical user "
                "name) or the version (from 1) is out of limits",
                HARK_MESSAGE_GROUP_MAX_NAME);
    return NULL;
  }
  g_autoptr(GPtrArray) member_list =
    names_parse(members, HARK_MESSAGE_GROUP_MAX_MEMBERS, "members", error);
  if (member_list == NULL)
    return NULL;
  HarkMessageGroup *group = g_new0(HarkMessageGroup, 1);
  for (guint i = 0; i < id_size; i++)
    g_snprintf(group->id + 2 * i, 3, "%02x", id_bytes[i]);
  group->name = g_strdup(name_text);
  group->admin = g_steal_pointer(&admin_key);
  group->version = g_variant_get_uint64(version);
  group->members = g_steal_pointer(&member_list);
  return group;
}

HarkMessageGroupChange *
hark_message_group_change_parse(GVariant *fields, GError **error)
{
  g_autoptr(GVariant) op = NULL, users = NULL;
  if (!lookup(fields, "op", "s", &op, error) || !lookup(fields, "users", "as", &users, error))
    return NULL;
  g_autoptr(HarkMessageGroupChange) change = g_new0(HarkMessageGroupChange, 1);
  const char *op_name = g_variant_get_string(op, NULL);
  guint o = 0;
  while (o < G_N_ELEMENTS(op_names) && strcmp(op_names[o], op_name) != 0)
    o++;
  if (o == G_N_ELEMENTS(op_names)) {
    group_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the op is not create, add, remove or leave");
    return NULL;
  }
  change->op = (HarkMessageGroupOp)o;
  change->users = names_parse(users, HARK_MESSAGE_GROUP_MAX_MEMBERS, "users", error);
  change->group = change->users != NULL ? hark_message_group_state_parse(fields, error) : NULL;
  return change->group != NULL ? g_steal_pointer(&change) : NULL;
}

/* ---- the rules ----------------------------------------------------------------------- */

/* A device that does not know the group (or left it) takes the sender's state whole, but
 * only as a create or an add that makes this user a member, from the admin it names, who
 * is a member. Nothing else can be checked then: whoever makes a group is its admin. */
static HarkMessageGroupVerdict
judge_newcomer(const HarkMessageGroup *known, const char *me, const char *sender,
               const HarkMessageGroupChange *change, HarkMessageGroup **next, GError **error)
{
  const HarkMessageGroup *claimed = change->group;
  if (change->op != HARK_MESSAGE_GROUP_CREATE && change->op != HARK_MESSAGE_GROUP_ADD) {
    group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED, "a %s of a group this user is not in",
                op_names[change->op]);
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  if (strcmp(sender, claimed->admin) != 0 || !hark_message_group_has(claimed, sender) ||
      !hark_message_group_has(claimed, me)) {
    group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED,
                "the sender is not the admin it names, or not a member, or this user is not");
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  /* Re-added after leaving: the admin is the one it was, the version moves on. */
  if (known != NULL &&
      (strcmp(known->admin, claimed->admin) != 0 || claimed->version <= known->version)) {
    group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED,
                "another admin, or not newer than version %" G_GUINT64_FORMAT, known->version);
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  if (change->op == HARK_MESSAGE_GROUP_CREATE && claimed->version != 1) {
    group_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a create has version 1");
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  *next = hark_message_group_copy(claimed);
  if (known != NULL) { /* the name is the group's, not the change's to set */
    g_free((*next)->name);
    (*next)->name = g_strdup(known->name);
  }
  return HARK_MESSAGE_GROUP_TAKE;
}

/* An add or a remove by the admin, in version order: applied as a delta to what this
 * device knows (so a leave that crossed it is not undone by the admin's list). */
static HarkMessageGroupVerdict
judge_admin_change(const HarkMessageGroup *known, const char *sender,
                   const HarkMessageGroupChange *change, HarkMessageGroup **next, GError **error)
{
  if (strcmp(sender, known->admin) != 0 || !hark_message_group_has(known, sender)) {
    group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED, "only the admin (a member) may %s",
                op_names[change->op]);
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  if (change->group->version <= known->version) {
    group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED,
                "version %" G_GUINT64_FORMAT " is not newer than %" G_GUINT64_FORMAT,
                change->group->version, known->version);
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  if (change->group->version > known->version + 1)
    return HARK_MESSAGE_GROUP_LATER; /* an earlier change is still on its way */
  g_autoptr(HarkMessageGroup) after = hark_message_group_copy(known);
  after->version = change->group->version;
  for (guint i = 0; i < change->users->len; i++) {
    const char *user = change->users->pdata[i];
    if (change->op == HARK_MESSAGE_GROUP_ADD)
      g_ptr_array_add(after->members, g_strdup(user));
    else if (strcmp(user, known->admin) != 0) /* the admin goes by leaving */
      for (guint m = 0; m < after->members->len; m++)
        if (strcmp(after->members->pdata[m], user) == 0)
          g_ptr_array_remove_index(after->members, m);
  }
  hark_message_group_normalise(after->members);
  if (after->members->len > HARK_MESSAGE_GROUP_MAX_MEMBERS) {
    group_error(error, HARK_MESSAGE_ERROR_TOO_LARGE, "it would have more than %d members",
                HARK_MESSAGE_GROUP_MAX_MEMBERS);
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  *next = g_steal_pointer(&after);
  return HARK_MESSAGE_GROUP_TAKE;
}

HarkMessageGroupVerdict
hark_message_group_judge(const HarkMessageGroup *known, const char *me, const char *sender,
                         const HarkMessageGroupChange *change, HarkMessageGroup **next,
                         GError **error)
{
  *next = NULL;
  if (known != NULL && strcmp(known->id, change->group->id) != 0) {
    group_error(error, HARK_MESSAGE_ERROR_MALFORMED, "another group's state");
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  if (known == NULL || !hark_message_group_has(known, me))
    return judge_newcomer(known, me, sender, change, next, error);
  switch (change->op) {
  case HARK_MESSAGE_GROUP_CREATE:
    group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED, "the group exists already");
    return HARK_MESSAGE_GROUP_REFUSE;
  case HARK_MESSAGE_GROUP_LEAVE:
    if (!hark_message_group_has(known, sender)) {
      group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED, "a leave from a user who is not a member");
      return HARK_MESSAGE_GROUP_REFUSE;
    }
    *next = hark_message_group_copy(known);
    for (guint m = 0; m < (*next)->members->len; m++)
      if (strcmp((*next)->members->pdata[m], sender) == 0)
        g_ptr_array_remove_index((*next)->members, m);
    return HARK_MESSAGE_GROUP_TAKE;
  default:
    return judge_admin_change(known, sender, change, next, error);
  }
}

HarkMessageGroupVerdict
hark_message_group_judge_state(const HarkMessageGroup *known, const char *me, const char *sender,
                               const HarkMessageGroup *state, HarkMessageGroup **next,
                               GError **error)
{
  *next = NULL;
  gboolean newer =
    known == NULL || (strcmp(known->id, state->id) == 0 &&
                      strcmp(known->admin, state->admin) == 0 && state->version > known->version);
  gboolean trusted = strcmp(sender, me) == 0 ||
                     (strcmp(sender, state->admin) == 0 && hark_message_group_has(state, sender));
  if ((known != NULL && hark_message_group_has(known, me)) || !newer || !trusted ||
      !hark_message_group_has(state, me) || !hark_message_group_has(state, sender)) {
    group_error(error, HARK_MESSAGE_ERROR_NOT_ALLOWED,
                "a group's state is taken only by a device that does not know it (or left it), "
                "from its own user or the group's admin, naming both as members");
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  *next = hark_message_group_copy(state);
  return HARK_MESSAGE_GROUP_TAKE;
}

char *
hark_message_group_describe(const char *sender, const HarkMessageGroupChange *change)
{
  g_autofree const char **user_list = names_strv(change->users);
  g_autofree const char **member_list = names_strv(change->group->members);
  g_autofree char *users = g_strjoinv(", ", (char **)user_list);
  g_autofree char *members = g_strjoinv(", ", (char **)member_list);
  switch (change->op) {
  case HARK_MESSAGE_GROUP_CREATE:
    return g_strdup_printf("%s created the group \"%s\" with %s", sender, change->group->name,
                           members);
  case HARK_MESSAGE_GROUP_ADD:
    return g_strdup_printf("%s added %s", sender, users);
  case HARK_MESSAGE_GROUP_REMOVE:
    return g_strdup_printf("%s removed %s", sender, users);
  case HARK_MESSAGE_GROUP_LEAVE:
    return g_strdup_printf("%s left", sender);
  }
  return g_strdup("");
}
