/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-history.c: the messages and conversations of the device's history
 * (message-history.h): duplicates, sequences held back for a gap and released in order,
 * the escape for a gap that never fills, this device's sequences and counter, the lists.
 * The file itself: message-history-db.c; states and the outbox: message-outbox.c. */
#include "message-history-db.h"

static gboolean
check_message(const HarkHistoryMessage *m, GError **error)
{
  if (!hark_message_db_check_conversation(m->conversation, error) ||
      !hark_message_db_check_device(m->sender_device, error))
    return FALSE;
  if (!hark_message_db_is_name(m->sender) || !hark_message_db_is_name(m->kind))
    return hark_message_db_invalid(error,
                                   "a sender and a kind are names (UTF-8, no control characters)");
  if (m->text == NULL || !g_utf8_validate(m->text, -1, NULL))
    return hark_message_db_invalid(error, "a text is UTF-8");
  if (m->sequence == 0 || m->sequence > G_MAXINT64)
    return hark_message_db_invalid(error, "a sequence is 1 to 2^63 - 1");
  if (m->direction != HARK_MESSAGE_IN && m->direction != HARK_MESSAGE_OUT)
    return hark_message_db_invalid(error, "a direction is in or out");
  return TRUE;
}

/* ---- messages -------------------------------------------------------------------------- */

void
hark_history_message_free(HarkHistoryMessage *m)
{
  if (m == NULL)
    return;
  g_free(m->conversation);
  g_free(m->sender);
  g_free(m->sender_device);
  g_free(m->kind);
  g_free(m->text);
  g_free(m);
}

#define MESSAGE_COLUMNS                                                                       \
  "id, conversation, sender, sender_device, sequence, time, kind, text, direction, received," \
  " after_gap"

static gpointer
message_from_row(sqlite3_stmt *stmt)
{
  HarkHistoryMessage *m = g_new0(HarkHistoryMessage, 1);
  hark_message_db_column_id(stmt, 0, m->id);
  m->conversation = hark_message_db_column_text(stmt, 1);
  m->sender = hark_message_db_column_text(stmt, 2);
  m->sender_device = hark_message_db_column_text(stmt, 3);
  m->sequence = (guint64)sqlite3_column_int64(stmt, 4);
  m->time = sqlite3_column_int64(stmt, 5);
  m->kind = hark_message_db_column_text(stmt, 6);
  m->text = hark_message_db_column_text(stmt, 7);
  m->direction =
    sqlite3_column_int(stmt, 8) == HARK_MESSAGE_OUT ? HARK_MESSAGE_OUT : HARK_MESSAGE_IN;
  m->received = sqlite3_column_int64(stmt, 9);
  m->after_gap = sqlite3_column_int(stmt, 10) != 0;
  return m;
}

HarkHistoryMessage *
hark_message_history_get(HarkMessageHistory *h, const char *sender_device, const guint8 *id,
                         GError **error)
{
  sqlite3_stmt *stmt = hark_message_db_query(
    h, "SELECT " MESSAGE_COLUMNS " FROM messages WHERE sender_device = ?1 AND id = ?2", error, "sb",
    sender_device, id, (gsize)HARK_MESSAGE_ID_SIZE);
  int rc = hark_message_db_step(h, stmt, error);
  HarkHistoryMessage *m = rc == SQLITE_ROW ? message_from_row(stmt) : NULL;
  if (rc >= 0)
    sqlite3_reset(stmt);
  return m;
}

/* The conversation, made with title (NULL: the name in its key) when missing. */
static gboolean
conversation_ensure(HarkMessageHistory *h, const char *key, const char *title, GError **error)
{
  return hark_message_db_finish(
           h,
           hark_message_db_query(
             h,
             "INSERT INTO conversations (key, title, last_activity) VALUES (?1, ?2, ?3)"
             " ON CONFLICT DO NOTHING",
             error, "ssi", key, title != NULL ? title : key + 2, hark_message_db_now(h)),
           error) >= 0;
}

/* Shows one stored message: the next place in its conversation, the conversation's
 * activity and (incoming) unread count; the message goes to *shown when asked for. */
static gboolean
show(HarkMessageHistory *h, const char *sender_device, const guint8 *id, gboolean after_gap,
     GPtrArray *shown, GError **error)
{
  gint64 changed = hark_message_db_finish(
    h,
    hark_message_db_query(
      h,
      "UPDATE messages SET after_gap = ?3, shown = 1 + (SELECT coalesce(max(shown), 0)"
      " FROM messages m WHERE m.conversation = messages.conversation)"
      " WHERE sender_device = ?1 AND id = ?2 AND shown = 0",
      error, "sbi", sender_device, id, (gsize)HARK_MESSAGE_ID_SIZE, (gint64)after_gap),
    error);
  if (changed < 0)
    return FALSE;
  g_autoptr(HarkHistoryMessage) m = hark_message_history_get(h, sender_device, id, error);
  if (m == NULL)
    return FALSE;
  if (hark_message_db_finish(
        h,
        hark_message_db_query(h,
                              "UPDATE conversations SET last_activity = ?2, unread = unread + ?3"
                              " WHERE key = ?1",
                              error, "sii", m->conversation, hark_message_db_now(h),
                              (gint64)(m->direction == HARK_MESSAGE_IN)),
        error) < 0)
    return FALSE;
  if (shown != NULL)
    g_ptr_array_add(shown, g_steal_pointer(&m));
  return TRUE;
}

static gboolean
expected_get(HarkMessageHistory *h, const char *device, const char *conversation, gint64 *next,
             GError **error)
{
  return hark_message_db_int_or(
    h,
    hark_message_db_query(
      h, "SELECT next FROM expected WHERE sender_device = ?1 AND conversation = ?2", error, "ss",
      device, conversation),
    1, next, error);
}

static gboolean
expected_set(HarkMessageHistory *h, const char *device, const char *conversation, gint64 next,
             GError **error)
{
  return hark_message_db_finish(
           h,
           hark_message_db_query(
             h,
             "INSERT INTO expected (sender_device, conversation, next) VALUES (?1, ?2, ?3)"
             " ON CONFLICT DO UPDATE SET next = excluded.next",
             error, "ssi", device, conversation, next),
           error) >= 0;
}

/* The held message of (device, conversation) with the lowest sequence up to up_to: 1 with
 * its id and sequence, 0 when there is none, -1 with error. */
static int
lowest_held(HarkMessageHistory *h, const char *device, const char *conversation, gint64 up_to,
            guint8 *id, gint64 *sequence, GError **error)
{
  sqlite3_stmt *stmt = hark_message_db_query(
    h,
    "SELECT id, sequence FROM messages WHERE sender_device = ?1 AND conversation = ?2"
    " AND shown = 0 AND sequence <= ?3 ORDER BY sequence, received LIMIT 1",
    error, "ssi", device, conversation, up_to);
  int rc = hark_message_db_step(h, stmt, error);
  if (rc < 0)
    return -1;
  gboolean ok = rc == SQLITE_ROW && hark_message_db_column_id(stmt, 0, id);
  if (ok)
    *sequence = sqlite3_column_int64(stmt, 1);
  sqlite3_reset(stmt);
  if (rc == SQLITE_ROW && !ok) {
    hark_message_db_invalid(error, "a stored message id is not 16 bytes");
    return -1;
  }
  return ok ? 1 : 0;
}

/* Where the first shown message of device in conversation with a sequence above sequence
 * is (*place; 0 when there is none): a message of that device goes before it. */
static gboolean
later_of_device(HarkMessageHistory *h, const char *device, const char *conversation,
                gint64 sequence, gint64 *place, GError **error)
{
  return hark_message_db_int_or(
    h,
    hark_message_db_query(h,
                          "SELECT coalesce(min(shown), 0) FROM messages WHERE sender_device = ?1"
                          " AND conversation = ?2 AND sequence > ?3 AND shown > 0",
                          error, "ssi", device, conversation, sequence),
    0, place, error);
}

/* Puts a message at place in its conversation; those from there on move down one. */
static gboolean
move_to(HarkMessageHistory *h, const char *device, const guint8 *id, const char *conversation,
        gint64 place, GError **error)
{
  return hark_message_db_finish(h,
                                hark_message_db_query(h,
                                                      "UPDATE messages SET shown = shown + 1"
                                                      " WHERE conversation = ?1 AND shown >= ?2",
                                                      error, "si", conversation, place),
                                error) >= 0 &&
         hark_message_db_finish(
           h,
           hark_message_db_query(
             h, "UPDATE messages SET shown = ?3 WHERE sender_device = ?1 AND id = ?2", error, "sbi",
             device, id, (gsize)HARK_MESSAGE_ID_SIZE, place),
           error) >= 0;
}

/* A message shown after its device's expected sequence had moved past it (a new device's
 * past messages overtook it, or its gap was given up): shown, then moved before its
 * device's later messages, so that one device's messages read in the order it wrote them. */
static gboolean
show_late(HarkMessageHistory *h, const char *device, const guint8 *id, const char *conversation,
          gint64 sequence, GPtrArray *shown, GError **error)
{
  gint64 place = 0;
  return show(h, device, id, FALSE, shown, error) &&
         later_of_device(h, device, conversation, sequence, &place, error) &&
         (place == 0 || move_to(h, device, id, conversation, place, error));
}

/* A past message's place: after every shown message of its conversation sent at or
 * before its time, but before its device's later messages (clocks step, and one second
 * holds several messages). */
static gboolean
place_past(HarkMessageHistory *h, const HarkHistoryMessage *m, GError **error)
{
  gint64 place = 0, later = 0;
  if (!hark_message_db_int_or(
        h,
        hark_message_db_query(h,
                              "SELECT 1 + coalesce(max(shown), 0) FROM messages"
                              " WHERE conversation = ?1 AND shown > 0 AND time <= ?2",
                              error, "si", m->conversation, m->time),
        1, &place, error) ||
      !later_of_device(h, m->sender_device, m->conversation, (gint64)m->sequence, &later, error))
    return FALSE;
  if (later > 0)
    place = MIN(place, later);
  return move_to(h, m->sender_device, m->id, m->conversation, place, error);
}

/* From the next expected sequence on: shows the held messages of (device, conversation)
 * whose turn it is, moving the next expected past each, until the next one is missing. */
static gboolean
release_from(HarkMessageHistory *h, const char *device, const char *conversation, gint64 next,
             GPtrArray *shown, GError **error)
{
  for (;;) {
    guint8 id[HARK_MESSAGE_ID_SIZE];
    gint64 sequence = 0;
    int found = lowest_held(h, device, conversation, next, id, &sequence, error);
    if (found < 0)
      return FALSE;
    if (found == 0)
      return expected_set(h, device, conversation, next, error);
    gboolean late = sequence < next; /* next jumped past it: a past message */
    if (late ? !show_late(h, device, id, conversation, sequence, shown, error)
             : !show(h, device, id, FALSE, shown, error))
      return FALSE;
    if (sequence == next)
      next++;
  }
}

/* How many messages of device are held for a gap, over all its conversations. */
static gboolean
held_count(HarkMessageHistory *h, const char *device, gint64 *count, GError **error)
{
  return hark_message_db_int_or(
    h,
    hark_message_db_query(h, "SELECT count(*) FROM messages WHERE sender_device = ?1 AND shown = 0",
                          error, "s", device),
    0, count, error);
}

static gboolean
insert_message(HarkMessageHistory *h, const HarkHistoryMessage *m, gboolean *inserted,
               GError **error)
{
  gint64 changed = hark_message_db_finish(
    h,
    hark_message_db_query(
      h,
      "INSERT INTO messages (id, conversation, sender, sender_device, sequence, time, kind,"
      " text, direction, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
      " ON CONFLICT DO NOTHING",
      error, "bsssiissii", m->id, (gsize)HARK_MESSAGE_ID_SIZE, m->conversation, m->sender,
      m->sender_device, (gint64)m->sequence, m->time, m->kind, m->text, (gint64)m->direction,
      hark_message_db_now(h)),
    error);
  *inserted = changed > 0;
  return changed >= 0;
}

/* Whether m, ahead of its sender device's next sequence, may be held: not when that
 * device has HARK_MESSAGE_HISTORY_MAX_HELD held already, unless m is one of them (a
 * retry, which add then calls a duplicate). */
static gboolean
may_hold(HarkMessageHistory *h, const HarkHistoryMessage *m, GError **error)
{
  gint64 held = 0;
  if (!held_count(h, m->sender_device, &held, error))
    return FALSE;
  if (held < HARK_MESSAGE_HISTORY_MAX_HELD)
    return TRUE;
  GError *local = NULL;
  g_autoptr(HarkHistoryMessage) had = hark_message_history_get(h, m->sender_device, m->id, &local);
  if (had != NULL)
    return TRUE;
  if (local == NULL)
    g_set_error(&local, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_TOO_MANY_HELD,
                "message history: %d messages of that device are already held for a gap",
                HARK_MESSAGE_HISTORY_MAX_HELD);
  g_propagate_error(error, local);
  return FALSE;
}

/* Whether m's sequence was handed out here (take_sequence: this device wrote it, and its
 * messages are added in the order taken). A copy of what this user wrote on another
 * device is outgoing too, but comes over the network like any message: it is ordered. */
static gboolean
sequence_is_ours(HarkMessageHistory *h, const HarkHistoryMessage *m, gboolean *ours, GError **error)
{
  gint64 n = 0;
  if (!hark_message_db_int_or(h,
                              hark_message_db_query(h,
                                                    "SELECT count(*) FROM outgoing"
                                                    " WHERE device = ?1 AND conversation = ?2",
                                                    error, "ss", m->sender_device, m->conversation),
                              0, &n, error))
    return FALSE;
  *ours = n > 0;
  return TRUE;
}

/* Stores and shows what is showable; *result as for add. */
static gboolean
add_message(HarkMessageHistory *h, const HarkHistoryMessage *m, const char *title,
            HarkMessageHistoryAdd *result, GPtrArray *shown, GError **error)
{
  gint64 next = 1;
  gboolean inserted = FALSE, ours = FALSE;
  if (!conversation_ensure(h, m->conversation, title, error))
    return FALSE;
  if (m->direction == HARK_MESSAGE_OUT && !sequence_is_ours(h, m, &ours, error))
    return FALSE;
  gboolean ordered = !ours;
  if (ordered && !expected_get(h, m->sender_device, m->conversation, &next, error))
    return FALSE;
  gboolean ahead = ordered && (gint64)m->sequence > next;
  if ((ahead && !may_hold(h, m, error)) || !insert_message(h, m, &inserted, error))
    return FALSE;
  *result = inserted ? HARK_MESSAGE_HISTORY_ADDED : HARK_MESSAGE_HISTORY_DUPLICATE;
  if (!inserted || ahead)
    return TRUE;
  if (!ordered)
    return show(h, m->sender_device, m->id, FALSE, shown, error);
  if ((gint64)m->sequence < next)
    return show_late(h, m->sender_device, m->id, m->conversation, (gint64)m->sequence, shown,
                     error);
  return release_from(h, m->sender_device, m->conversation, next, shown, error);
}

typedef gboolean (*AddFunc)(HarkMessageHistory *h, const HarkHistoryMessage *m, const char *title,
                            HarkMessageHistoryAdd *result, GPtrArray *shown, GError **error);

/* The checks, then add in one operation of the file. */
static gboolean
add_checked(HarkMessageHistory *h, AddFunc add, const HarkHistoryMessage *message,
            const char *title, HarkMessageHistoryAdd *result, GPtrArray **shown, GError **error)
{
  g_return_val_if_fail(h != NULL && message != NULL && result != NULL, FALSE);
  if (!check_message(message, error))
    return FALSE;
  if (title != NULL && !hark_message_db_is_name(title))
    return hark_message_db_invalid(error, "a title is a name (UTF-8, no control characters)");
  g_autoptr(GPtrArray) rows =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_history_message_free);
  if (!hark_message_db_op_begin(h, error) ||
      !hark_message_db_op_end(h, add(h, message, title, result, rows, error), error))
    return FALSE;
  if (shown != NULL)
    *shown = g_steal_pointer(&rows);
  return TRUE;
}

gboolean
hark_message_history_add(HarkMessageHistory *h, const HarkHistoryMessage *message,
                         const char *title, HarkMessageHistoryAdd *result, GPtrArray **shown,
                         GError **error)
{
  return add_checked(h, add_message, message, title, result, shown, error);
}

static gboolean
add_past(HarkMessageHistory *h, const HarkHistoryMessage *m, const char *title,
         HarkMessageHistoryAdd *result, GPtrArray *shown, GError **error)
{
  gboolean inserted = FALSE;
  if (hark_message_db_finish(
        h,
        hark_message_db_query(
          h,
          "INSERT INTO conversations (key, title, last_activity) VALUES (?1, ?2, ?3)"
          " ON CONFLICT DO UPDATE SET last_activity = max(last_activity, excluded.last_activity)",
          error, "ssi", m->conversation, title != NULL ? title : m->conversation + 2, m->time),
        error) < 0 ||
      !insert_message(h, m, &inserted, error))
    return FALSE;
  *result = inserted ? HARK_MESSAGE_HISTORY_ADDED : HARK_MESSAGE_HISTORY_DUPLICATE;
  if (!inserted || !place_past(h, m, error))
    return inserted ? FALSE : TRUE;
  /* Another device's messages wait for their gaps, this user's copies too (a past
   * message is never this device's own): the expected sequence moves past it. */
  gint64 next = 1;
  if (!expected_get(h, m->sender_device, m->conversation, &next, error))
    return FALSE;
  return release_from(h, m->sender_device, m->conversation, MAX(next, (gint64)m->sequence + 1),
                      shown, error);
}

gboolean
hark_message_history_add_past(HarkMessageHistory *h, const HarkHistoryMessage *message,
                              const char *title, HarkMessageHistoryAdd *result, GPtrArray **shown,
                              GError **error)
{
  return add_checked(h, add_past, message, title, result, shown, error);
}

/* The oldest held message stored at or before cutoff: its (device, conversation). */
static gboolean
oldest_stuck(HarkMessageHistory *h, gint64 cutoff, char **device, char **conversation,
             GError **error)
{
  sqlite3_stmt *stmt =
    hark_message_db_query(h,
                          "SELECT sender_device, conversation FROM messages"
                          " WHERE shown = 0 AND received <= ?1 ORDER BY received LIMIT 1",
                          error, "i", cutoff);
  int rc = hark_message_db_step(h, stmt, error);
  if (rc == SQLITE_ROW) {
    *device = hark_message_db_column_text(stmt, 0);
    *conversation = hark_message_db_column_text(stmt, 1);
  }
  if (rc >= 0)
    sqlite3_reset(stmt);
  return rc == SQLITE_ROW;
}

/* Gives up the gap before the lowest held message of (device, conversation): it is shown
 * marked after_gap, and those that follow it without a gap after it. */
static gboolean
skip_gap(HarkMessageHistory *h, const char *device, const char *conversation, GPtrArray *shown,
         GError **error)
{
  guint8 id[HARK_MESSAGE_ID_SIZE];
  gint64 sequence = 0;
  int found = lowest_held(h, device, conversation, G_MAXINT64, id, &sequence, error);
  if (found <= 0)
    return found == 0;
  return show(h, device, id, TRUE, shown, error) &&
         release_from(h, device, conversation, sequence + 1, shown, error);
}

static gboolean
release_held(HarkMessageHistory *h, gint64 cutoff, GPtrArray *released, GError **error)
{
  for (;;) {
    g_autofree char *device = NULL, *conversation = NULL;
    GError *local = NULL;
    if (!oldest_stuck(h, cutoff, &device, &conversation, &local)) {
      if (local == NULL)
        return TRUE;
      g_propagate_error(error, local);
      return FALSE;
    }
    /* Each round shows at least one held message, so this ends. */
    if (!skip_gap(h, device, conversation, released, error))
      return FALSE;
  }
}

gboolean
hark_message_history_release_held(HarkMessageHistory *h, gint64 max_age, GPtrArray **released,
                                  GError **error)
{
  g_autoptr(GPtrArray) rows =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_history_message_free);
  if (!hark_message_db_op_begin(h, error) ||
      !hark_message_db_op_end(
        h, release_held(h, hark_message_db_now(h) - MAX(max_age, 0), rows, error), error))
    return FALSE;
  if (released != NULL)
    *released = g_steal_pointer(&rows);
  return TRUE;
}

/* Takes the next value of a persisted counter: stmt (one statement, so whole on its own)
 * bumps it and returns the value before (RETURNING). 0 on error. */
static guint64
take(HarkMessageHistory *h, sqlite3_stmt *stmt, GError **error)
{
  gint64 value = 0;
  if (!hark_message_db_int_or(h, stmt, 0, &value, error))
    return 0;
  if (value <= 0)
    hark_message_db_invalid(error, "a counter gave no value");
  return value > 0 ? (guint64)value : 0;
}

guint64
hark_message_history_take_sequence(HarkMessageHistory *h, const char *conversation,
                                   const char *device, GError **error)
{
  if (!hark_message_db_check_conversation(conversation, error) ||
      !hark_message_db_check_device(device, error))
    return 0;
  return take(
    h,
    hark_message_db_query(h,
                          "INSERT INTO outgoing (device, conversation, next) VALUES (?1, ?2, 2)"
                          " ON CONFLICT DO UPDATE SET next = next + 1 RETURNING next - 1",
                          error, "ss", device, conversation),
    error);
}

guint64
hark_message_history_take_counter(HarkMessageHistory *h, const char *device, GError **error)
{
  if (!hark_message_db_check_device(device, error))
    return 0;
  return take(h,
              hark_message_db_query(h,
                                    "INSERT INTO devices (device, next_counter) VALUES (?1, 2)"
                                    " ON CONFLICT DO UPDATE SET next_counter = next_counter + 1"
                                    " RETURNING next_counter - 1",
                                    error, "s", device),
              error);
}

GPtrArray *
hark_message_history_list(HarkMessageHistory *h, const char *conversation, guint n, GError **error)
{
  if (!hark_message_db_check_conversation(conversation, error))
    return NULL;
  sqlite3_stmt *stmt = hark_message_db_query(
    h,
    "SELECT * FROM (SELECT " MESSAGE_COLUMNS ", shown FROM messages"
    " WHERE conversation = ?1 AND shown > 0 ORDER BY shown DESC LIMIT ?2) ORDER BY shown",
    error, "si", conversation, (gint64)n);
  return hark_message_db_rows(h, stmt, message_from_row, (GDestroyNotify)hark_history_message_free,
                              error);
}

/* ---- conversations --------------------------------------------------------------------- */

void
hark_history_conversation_free(HarkHistoryConversation *c)
{
  if (c == NULL)
    return;
  g_free(c->key);
  g_free(c->title);
  g_free(c);
}

static gpointer
conversation_from_row(sqlite3_stmt *stmt)
{
  HarkHistoryConversation *c = g_new0(HarkHistoryConversation, 1);
  c->key = hark_message_db_column_text(stmt, 0);
  c->title = hark_message_db_column_text(stmt, 1);
  c->last_activity = sqlite3_column_int64(stmt, 2);
  c->unread = (guint64)sqlite3_column_int64(stmt, 3);
  return c;
}

GPtrArray *
hark_message_history_conversations(HarkMessageHistory *h, GError **error)
{
  sqlite3_stmt *stmt =
    hark_message_db_query(h,
                          "SELECT key, title, last_activity, unread FROM conversations"
                          " ORDER BY last_activity DESC, key",
                          error, "");
  return hark_message_db_rows(h, stmt, conversation_from_row,
                              (GDestroyNotify)hark_history_conversation_free, error);
}

gboolean
hark_message_history_set_title(HarkMessageHistory *h, const char *conversation, const char *title,
                               GError **error)
{
  if (!hark_message_db_check_conversation(conversation, error))
    return FALSE;
  if (!hark_message_db_is_name(title))
    return hark_message_db_invalid(error, "a title is a name (UTF-8, no control characters)");
  return hark_message_db_finish(
           h,
           hark_message_db_query(
             h,
             "INSERT INTO conversations (key, title, last_activity) VALUES (?1, ?2, 0)"
             " ON CONFLICT DO UPDATE SET title = excluded.title",
             error, "ss", conversation, title),
           error) >= 0;
}

gboolean
hark_message_history_mark_seen(HarkMessageHistory *h, const char *conversation, GError **error)
{
  return hark_message_db_finish(
           h,
           hark_message_db_query(h, "UPDATE conversations SET unread = 0 WHERE key = ?1", error,
                                 "s", conversation),
           error) >= 0;
}
