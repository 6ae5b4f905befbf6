/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-history-groups.c: the groups this device knows, one row each (id, name, admin,
 * version, members). The rules that change them are message-group.c's; this only keeps
 * what the messenger took. */
#include "message-history-db.h"

#include <string.h>

static gpointer
group_from_row(sqlite3_stmt *stmt)
{
  g_autofree char *id = hark_message_db_column_text(stmt, 0);
  g_autofree char *name = hark_message_db_column_text(stmt, 1);
  g_autofree char *admin = hark_message_db_column_text(stmt, 2);
  g_autofree char *members = hark_message_db_column_text(stmt, 4);
  g_auto(GStrv) list = g_strsplit(members != NULL ? members : "", " ", -1);
  /* "" splits into no names (a group everyone left). */
  return hark_message_group_new(
    id, name, admin, (guint64)sqlite3_column_int64(stmt, 3),
    (const char *const *)(list[0] != NULL && list[0][0] == '\0' ? list + 1 : list));
}

#define GROUP_COLUMNS "id, name, admin, version, members"

HarkMessageGroup *
hark_message_history_group_get(HarkMessageHistory *h, const char *id, GError **error)
{
  if (!hark_message_group_id_is_valid(id)) {
    hark_message_db_invalid(error, "a group id is 32 lower-case hex digits");
    return NULL;
  }
  g_autoptr(GPtrArray) rows = hark_message_db_rows(
    h,
    hark_message_db_query(h, "SELECT " GROUP_COLUMNS " FROM groups WHERE id = ?1", error, "s", id),
    group_from_row, (GDestroyNotify)hark_message_group_free, error);
  return rows != NULL && rows->len > 0 ? g_steal_pointer(&rows->pdata[0]) : NULL;
}

gboolean
hark_message_history_group_put(HarkMessageHistory *h, const HarkMessageGroup *group, GError **error)
{
  if (!hark_message_group_id_is_valid(group->id) || !hark_message_group_name_is_valid(group->name))
    return hark_message_db_invalid(error, "a group needs an id and a name");
  g_autofree char *members = hark_message_group_members_join(group);
  g_autofree char *conversation = g_strconcat("g:", group->id, NULL);
  if (!hark_message_db_op_begin(h, error))
    return FALSE;
  gboolean ok =
    hark_message_db_finish(
      h,
      hark_message_db_query(h,
                            "INSERT INTO groups (" GROUP_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)"
                            " ON CONFLICT DO UPDATE SET name = excluded.name,"
                            " admin = excluded.admin, version = excluded.version,"
                            " members = excluded.members",
                            error, "sssis", group->id, group->name, group->admin,
                            (gint64)group->version, members),
      error) >= 0 &&
    hark_message_history_set_title(h, conversation, group->name, error);
  return hark_message_db_op_end(h, ok, error);
}

GPtrArray *
hark_message_history_groups(HarkMessageHistory *h, GError **error)
{
  return hark_message_db_rows(
    h,
    hark_message_db_query(h, "SELECT " GROUP_COLUMNS " FROM groups ORDER BY name, id", error, ""),
    group_from_row, (GDestroyNotify)hark_message_group_free, error);
}
