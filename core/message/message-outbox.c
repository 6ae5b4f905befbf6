/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-outbox.c: what the device's history keeps about delivery (message-history.h):
 * the per-device states of a message (sent, delivered, read: only forward), the outbox
 * of envelopes per target device with its retries and expiry, and per sender device the
 * replay guard's state and this device's envelope counter. */
#include "message-history-db.h"

/* ---- per-device states ----------------------------------------------------------------- */

void
hark_history_device_state_free(HarkHistoryDeviceState *state)
{
  if (state == NULL)
    return;
  g_free(state->device);
  g_free(state);
}

gboolean
hark_message_history_set_state(HarkMessageHistory *h, const guint8 *id, const char *device,
                               HarkMessageState state, gboolean *changed, GError **error)
{
  if (!hark_message_db_check_device(device, error))
    return FALSE;
  if (state < HARK_MESSAGE_STATE_SENT || state > HARK_MESSAGE_STATE_READ)
    return hark_message_db_invalid(error, "a state is sent, delivered or read");
  /* Only forward: a delivered that arrives after the read changes nothing. */
  gint64 rows = hark_message_db_finish(
    h,
    hark_message_db_query(h,
                          "INSERT INTO states (message_id, device, state, changed)"
                          " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE"
                          " SET state = excluded.state, changed = excluded.changed"
                          " WHERE excluded.state > states.state",
                          error, "bsii", id, (gsize)HARK_MESSAGE_ID_SIZE, device, (gint64)state,
                          hark_message_db_now(h)),
    error);
  if (changed != NULL)
    *changed = rows > 0;
  return rows >= 0;
}

static gpointer
state_from_row(sqlite3_stmt *stmt)
{
  HarkHistoryDeviceState *s = g_new0(HarkHistoryDeviceState, 1);
  s->device = hark_message_db_column_text(stmt, 0);
  s->state = (HarkMessageState)sqlite3_column_int(stmt, 1);
  s->changed = sqlite3_column_int64(stmt, 2);
  return s;
}

GPtrArray *
hark_message_history_states(HarkMessageHistory *h, const guint8 *id, GError **error)
{
  sqlite3_stmt *stmt = hark_message_db_query(
    h, "SELECT device, state, changed FROM states WHERE message_id = ?1 ORDER BY device", error,
    "b", id, (gsize)HARK_MESSAGE_ID_SIZE);
  return hark_message_db_rows(h, stmt, state_from_row,
                              (GDestroyNotify)hark_history_device_state_free, error);
}

/* ---- the outbox ------------------------------------------------------------------------ */

void
hark_outbox_entry_free(HarkOutboxEntry *entry)
{
  if (entry == NULL)
    return;
  g_free(entry->device);
  g_free(entry->user);
  g_clear_pointer(&entry->envelope, g_bytes_unref);
  g_free(entry);
}

#define OUTBOX_COLUMNS "message_id, device, user, envelope, next_attempt, attempts, expires"

static gpointer
outbox_from_row(sqlite3_stmt *stmt)
{
  HarkOutboxEntry *e = g_new0(HarkOutboxEntry, 1);
  hark_message_db_column_id(stmt, 0, e->message_id);
  e->device = hark_message_db_column_text(stmt, 1);
  e->user = hark_message_db_column_text(stmt, 2);
  e->envelope = hark_message_db_column_bytes(stmt, 3);
  e->next_attempt = sqlite3_column_int64(stmt, 4);
  e->attempts = (guint)sqlite3_column_int64(stmt, 5);
  e->expires = sqlite3_column_int64(stmt, 6);
  return e;
}

gboolean
hark_message_history_outbox_add(HarkMessageHistory *h, const guint8 *id, const char *device,
                                const char *user, GBytes *envelope, gint64 expires, GError **error)
{
  if (!hark_message_db_check_device(device, error))
    return FALSE;
  if (!hark_message_db_is_name(user) || envelope == NULL)
    return hark_message_db_invalid(error, "an outbox entry needs a user name and an envelope");
  gint64 t = hark_message_db_now(h);
  if (expires == 0)
    expires = t + HARK_MESSAGE_HISTORY_OUTBOX_DAYS * 24 * 3600;
  return hark_message_db_finish(
           h,
           hark_message_db_query(
             h,
             "INSERT INTO outbox (" OUTBOX_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)"
             " ON CONFLICT DO UPDATE SET user = excluded.user,"
             " envelope = excluded.envelope, next_attempt = excluded.next_attempt,"
             " attempts = 0, expires = excluded.expires",
             error, "bssBii", id, (gsize)HARK_MESSAGE_ID_SIZE, device, user, envelope, t, expires),
           error) >= 0;
}

GPtrArray *
hark_message_history_outbox_due(HarkMessageHistory *h, guint limit, GError **error)
{
  gint64 t = hark_message_db_now(h);
  sqlite3_stmt *stmt =
    hark_message_db_query(h,
                          "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE next_attempt <= ?1"
                          " AND expires > ?1 ORDER BY next_attempt, message_id, device"
                          " LIMIT ?2",
                          error, "ii", t, (gint64)limit);
  return hark_message_db_rows(h, stmt, outbox_from_row, (GDestroyNotify)hark_outbox_entry_free,
                              error);
}

gboolean
hark_message_history_outbox_next(HarkMessageHistory *h, gint64 *when, GError **error)
{
  /* The earliest of a retry and an expiry: either needs the caller's attention. */
  sqlite3_stmt *stmt =
    hark_message_db_query(h, "SELECT min(min(next_attempt, expires)) FROM outbox", error, "");
  return stmt != NULL && hark_message_db_first_int(h, stmt, when, error);
}

gboolean
hark_message_history_outbox_done(HarkMessageHistory *h, const guint8 *id, const char *device,
                                 gboolean *found, GError **error)
{
  gint64 rows = hark_message_db_finish(
    h,
    hark_message_db_query(h, "DELETE FROM outbox WHERE message_id = ?1 AND device = ?2", error,
                          "bs", id, (gsize)HARK_MESSAGE_ID_SIZE, device),
    error);
  if (found != NULL)
    *found = rows > 0;
  return rows >= 0;
}

/* Seconds to wait after the attempts-th failed attempt: 2, 4, 8, ... at most 600. */
static gint64
retry_delay(gint64 attempts)
{
  gint64 delay = HARK_MESSAGE_HISTORY_RETRY_FIRST;
  for (gint64 i = 1; i < attempts && delay < HARK_MESSAGE_HISTORY_RETRY_MAX; i++)
    delay *= 2;
  return MIN(delay, HARK_MESSAGE_HISTORY_RETRY_MAX);
}

static gboolean
outbox_retry(HarkMessageHistory *h, const guint8 *id, const char *device, GError **error)
{
  gint64 attempts = 0;
  sqlite3_stmt *stmt =
    hark_message_db_query(h,
                          "UPDATE outbox SET attempts = attempts + 1"
                          " WHERE message_id = ?1 AND device = ?2 RETURNING attempts",
                          error, "bs", id, (gsize)HARK_MESSAGE_ID_SIZE, device);
  GError *local = NULL;
  if (stmt == NULL || !hark_message_db_first_int(h, stmt, &attempts, &local)) {
    if (local == NULL && stmt != NULL)
      hark_message_db_invalid(&local, "no such outbox entry");
    if (local != NULL)
      g_propagate_error(error, local);
    return FALSE;
  }
  return hark_message_db_finish(
           h,
           hark_message_db_query(
             h, "UPDATE outbox SET next_attempt = ?3 WHERE message_id = ?1 AND device = ?2", error,
             "bsi", id, (gsize)HARK_MESSAGE_ID_SIZE, device,
             hark_message_db_now(h) + retry_delay(attempts)),
           error) >= 0;
}

gboolean
hark_message_history_outbox_retry(HarkMessageHistory *h, const guint8 *id, const char *device,
                                  GError **error)
{
  return hark_message_db_op_begin(h, error) &&
         hark_message_db_op_end(h, outbox_retry(h, id, device, error), error);
}

gboolean
hark_message_history_outbox_hurry(HarkMessageHistory *h, gint64 horizon, GError **error)
{
  gint64 now = hark_message_db_now(h);
  return hark_message_db_finish(
           h,
           hark_message_db_query(h,
                                 "UPDATE outbox SET next_attempt = ?1"
                                 " WHERE next_attempt > ?1 AND next_attempt <= ?2",
                                 error, "ii", now, now + horizon),
           error) >= 0;
}

gboolean
hark_message_history_outbox_postpone(HarkMessageHistory *h, const guint8 *id, const char *device,
                                     gint64 until, GError **error)
{
  gint64 changed = hark_message_db_finish(
    h,
    hark_message_db_query(h,
                          "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?3"
                          " WHERE message_id = ?1 AND device = ?2",
                          error, "bsi", id, (gsize)HARK_MESSAGE_ID_SIZE, device, until),
    error);
  if (changed == 0)
    hark_message_db_invalid(error, "no such outbox entry");
  return changed > 0;
}

gboolean
hark_message_history_outbox_expire(HarkMessageHistory *h, GPtrArray **expired, GError **error)
{
  sqlite3_stmt *stmt =
    hark_message_db_query(h, "DELETE FROM outbox WHERE expires <= ?1 RETURNING " OUTBOX_COLUMNS,
                          error, "i", hark_message_db_now(h));
  g_autoptr(GPtrArray) rows =
    hark_message_db_rows(h, stmt, outbox_from_row, (GDestroyNotify)hark_outbox_entry_free, error);
  if (rows == NULL)
    return FALSE;
  if (expired != NULL)
    *expired = g_steal_pointer(&rows);
  return TRUE;
}

/* ---- per sender device ----------------------------------------------------------------- */

gboolean
hark_message_history_replay_get(HarkMessageHistory *h, const char *device, GBytes **state,
                                GError **error)
{
  *state = NULL;
  sqlite3_stmt *stmt =
    hark_message_db_query(h, "SELECT replay FROM devices WHERE device = ?1", error, "s", device);
  int rc = hark_message_db_step(h, stmt, error);
  if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
    *state = hark_message_db_column_bytes(stmt, 0);
  if (rc >= 0)
    sqlite3_reset(stmt);
  return rc >= 0;
}

gboolean
hark_message_history_replay_set(HarkMessageHistory *h, const char *device, GBytes *state,
                                GError **error)
{
  if (!hark_message_db_check_device(device, error))
    return FALSE;
  if (state == NULL)
    return hark_message_db_invalid(error, "no replay state to keep");
  return hark_message_db_finish(
           h,
           hark_message_db_query(h,
                                 "INSERT INTO devices (device, replay) VALUES (?1, ?2)"
                                 " ON CONFLICT DO UPDATE SET replay = excluded.replay",
                                 error, "sB", device, state),
           error) >= 0;
}
