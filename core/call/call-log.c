/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-log.c: the call log (call-log.h) in SQLite, and the `call-log` command.
 *
 * The file says who called whom and when, so it is opened as the message history is
 * (db-file.h): made 0600 before SQLite opens it, refused when other users can reach it,
 * marked with its own PRAGMA application_id so a damaged file, the message history or
 * another program's database is refused with a clear error and never written into, its
 * schema numbered with PRAGMA user_version and migrated at open. Every value is a bound parameter: a peer's words (the reason
 * of a decline) never become SQL. The log keeps at most HARK_CALL_LOG_MAX_ENTRIES
 * entries, the oldest dropped as new ones come, so a flood of calls cannot fill the disk. */
#include "call-log.h"

#include <hark/address.h>

#include "db-file.h"
#include "signed-variant.h"

/* "hkcl" in ASCII: PRAGMA application_id of a call log. */
#define APPLICATION_ID 0x686b636c
#define CALL_ID_LENGTH 32
#define DEVICE_ID_LENGTH 64
#define MAX_NAME_LENGTH 256 /* peer, codec, path */
#define MAX_REASON_LENGTH 200 /* bytes, as a signal's reason (call-signal.h) */
#define LIST_DEFAULT 50
#define LIST_MAX 1000

/* clang-format off */
G_DEFINE_QUARK(hark-call-log-error-quark, hark_call_log_error)
/* clang-format on */

G_STATIC_ASSERT((int)HARK_CALL_LOG_ERROR_IO == (int)HARK_DB_ERROR_IO &&
                (int)HARK_CALL_LOG_ERROR_PERMISSIONS == (int)HARK_DB_ERROR_PERMISSIONS &&
                (int)HARK_CALL_LOG_ERROR_CORRUPT == (int)HARK_DB_ERROR_CORRUPT &&
                (int)HARK_CALL_LOG_ERROR_VERSION == (int)HARK_DB_ERROR_VERSION &&
                (int)HARK_CALL_LOG_ERROR_DATABASE == (int)HARK_DB_ERROR_DATABASE);

struct _HarkCallLog {
  sqlite3 *db;
  char *path;
  guint cap;
};

/* Step i takes the file from user_version i to i + 1. Append steps; never edit one that
 * has been released. */
static const char *const migrations[] = {
  /* 1: one row per call; seq orders calls that started in the same second */
  "CREATE TABLE calls ("
  "  seq INTEGER PRIMARY KEY,"
  "  id TEXT NOT NULL,"
  "  peer TEXT NOT NULL,"
  "  peer_device TEXT,"
  "  outgoing INTEGER NOT NULL,"
  "  started_at INTEGER NOT NULL,"
  "  answered_at INTEGER NOT NULL,"
  "  ended_at INTEGER NOT NULL,"
  "  outcome TEXT NOT NULL,"
  "  reason TEXT,"
  "  codec TEXT,"
  "  path TEXT,"
  "  missed INTEGER NOT NULL,"
  "  UNIQUE (id, peer)"
  ");"
  "CREATE INDEX calls_by_start ON calls (started_at, seq);"
  "CREATE INDEX calls_missed ON calls (started_at, seq) WHERE missed = 1;",
};

static const char *const outcomes[] = {
  "answered",  "missed",    "declined", "busy",
  "cancelled", "no answer", "failed",   "answered elsewhere",
};

static const HarkDbKind call_log_kind = {
  .domain = hark_call_log_error_quark,
  .label = "call log",
  .contents = "whom you called",
  .fresh = "a new call log",
  .application_id = APPLICATION_ID,
  .migrations = migrations,
  .n_migrations = G_N_ELEMENTS(migrations),
};

guint
hark_call_log_schema_version(void)
{
  return G_N_ELEMENTS(migrations);
}

/* ---- errors and statements -------------------------------------------------------------- */

static gboolean
set_db_error(HarkCallLog *log, int rc, GError **error)
{
  return hark_db_set_error(&call_log_kind, log->db, log->path, rc, error);
}

static gboolean
invalid(GError **error, const char *what)
{
  g_set_error(error, HARK_CALL_LOG_ERROR, HARK_CALL_LOG_ERROR_INVALID, "call log: %s", what);
  return FALSE;
}

/* Constant SQL only (transactions). */
static gboolean
exec_constant(HarkCallLog *log, const char *sql, GError **error)
{
  return hark_db_exec(&call_log_kind, log->db, log->path, sql, error);
}

static sqlite3_stmt *
prepare(HarkCallLog *log, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(log->db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) {
    set_db_error(log, rc, error);
    return NULL;
  }
  return stmt;
}

/* A statement of one integer (a pragma, a count): TRUE with *value. */
static gboolean
query_int(HarkCallLog *log, const char *sql, gint64 *value, GError **error)
{
  sqlite3_stmt *stmt = prepare(log, sql, error);
  if (stmt == NULL)
    return FALSE;
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    *value = sqlite3_column_int64(stmt, 0);
  else
    set_db_error(log, rc, error);
  sqlite3_finalize(stmt);
  return rc == SQLITE_ROW;
}

/* ---- opening ---------------------------------------------------------------------------- */

HarkCallLog *
hark_call_log_open(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  sqlite3 *db = hark_db_open(&call_log_kind, path, error);
  if (db == NULL)
    return NULL;
  HarkCallLog *log = g_new0(HarkCallLog, 1);
  log->db = db;
  log->path = g_strdup(path);
  log->cap = HARK_CALL_LOG_MAX_ENTRIES;
  return log;
}

void
hark_call_log_close(HarkCallLog *log)
{
  if (log == NULL)
    return;
  sqlite3_close(log->db);
  g_free(log->path);
  g_free(log);
}

void
hark_call_log_set_cap(HarkCallLog *log, guint cap)
{
  log->cap = MAX(cap, 1);
}

/* ---- entries ---------------------------------------------------------------------------- */

static gboolean
is_id(const char *text, gsize length)
{
  return text != NULL && hark_is_lower_hex(text, length);
}

/* NULL, or a short text fit to keep and show. */
static gboolean
is_optional_text(const char *text, gsize max)
{
  return text == NULL || hark_db_is_text(text, max);
}

static gboolean
is_outcome(const char *outcome)
{
  for (gsize i = 0; i < G_N_ELEMENTS(outcomes); i++)
    if (g_strcmp0(outcome, outcomes[i]) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
check_entry(const HarkCallLogEntry *e, GError **error)
{
  if (!is_id(e->id, CALL_ID_LENGTH))
    return invalid(error, "a call id is 32 lowercase hex");
  if (!hark_db_is_text(e->peer, MAX_NAME_LENGTH))
    return invalid(error, "the peer is a user name (1-256 bytes of UTF-8, no control characters)");
  if (e->peer_device != NULL && !is_id(e->peer_device, DEVICE_ID_LENGTH))
    return invalid(error, "a device id is 64 lowercase hex");
  if (!is_outcome(e->outcome))
    return invalid(error, "the outcome is not one of the call log's");
  if (!is_optional_text(e->codec, MAX_NAME_LENGTH) || !is_optional_text(e->path, MAX_NAME_LENGTH))
    return invalid(error, "codec and path are short UTF-8 without control characters");
  if (e->started_at <= 0 || e->ended_at < e->started_at ||
      (e->answered_at != 0 && (e->answered_at < e->started_at || e->answered_at > e->ended_at)))
    return invalid(error, "times: 0 < started_at <= answered_at (or 0) <= ended_at");
  return TRUE;
}

gboolean
hark_call_log_entry_is_missed(const HarkCallLogEntry *entry)
{
  return !entry->outgoing && entry->answered_at == 0 &&
         (g_strcmp0(entry->outcome, "missed") == 0 || g_strcmp0(entry->outcome, "no answer") == 0 ||
          g_strcmp0(entry->outcome, "cancelled") == 0);
}

static gboolean
bind_text(sqlite3_stmt *stmt, int i, const char *text)
{
  return sqlite3_bind_text(stmt, i, text, -1, SQLITE_TRANSIENT) == SQLITE_OK;
}

static gboolean
bind_entry(sqlite3_stmt *stmt, const HarkCallLogEntry *e)
{
  return bind_text(stmt, 1, e->id) && bind_text(stmt, 2, e->peer) &&
         bind_text(stmt, 3, e->peer_device) &&
         sqlite3_bind_int(stmt, 4, e->outgoing ? 1 : 0) == SQLITE_OK &&
         sqlite3_bind_int64(stmt, 5, e->started_at) == SQLITE_OK &&
         sqlite3_bind_int64(stmt, 6, e->answered_at) == SQLITE_OK &&
         sqlite3_bind_int64(stmt, 7, e->ended_at) == SQLITE_OK && bind_text(stmt, 8, e->outcome) &&
         bind_text(stmt, 9, e->reason) && bind_text(stmt, 10, e->codec) &&
         bind_text(stmt, 11, e->path) &&
         sqlite3_bind_int(stmt, 12, hark_call_log_entry_is_missed(e) ? 1 : 0) == SQLITE_OK;
}

/* Runs stmt (finalized here) to its end. */
static gboolean
run_to_end(HarkCallLog *log, sqlite3_stmt *stmt, GError **error)
{
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc == SQLITE_DONE)
    return TRUE;
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return invalid(error, "that call is in the log already");
  return set_db_error(log, rc, error);
}

static gboolean
insert_and_prune(HarkCallLog *log, const HarkCallLogEntry *entry, GError **error)
{
  sqlite3_stmt *insert = prepare(log,
                                 "INSERT INTO calls (id, peer, peer_device, outgoing, started_at, "
                                 "answered_at, ended_at, outcome, reason, codec, path, missed) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 error);
  if (insert == NULL)
    return FALSE;
  if (!bind_entry(insert, entry)) {
    sqlite3_finalize(insert);
    return set_db_error(log, sqlite3_errcode(log->db), error);
  }
  if (!run_to_end(log, insert, error))
    return FALSE;
  /* The oldest beyond the cap: by start, as the list shows them. */
  sqlite3_stmt *prune = prepare(log,
                                "DELETE FROM calls WHERE seq IN (SELECT seq FROM calls ORDER BY "
                                "started_at DESC, seq DESC LIMIT -1 OFFSET ?)",
                                error);
  if (prune == NULL)
    return FALSE;
  sqlite3_bind_int64(prune, 1, log->cap);
  return run_to_end(log, prune, error);
}

/* The reason is often the peer's words: kept whatever they are, so a hostile caller
 * cannot keep its call out of the log with a bad one, but escaped (and cut) when they are
 * not short text fit to show. */
static char *
reason_to_keep(const char *reason)
{
  if (reason == NULL || *reason == '\0')
    return NULL;
  if (hark_db_is_text(reason, MAX_REASON_LENGTH))
    return g_strdup(reason);
  return hark_text_escape(reason, -1, MAX_REASON_LENGTH);
}

gboolean
hark_call_log_add(HarkCallLog *log, const HarkCallLogEntry *entry, GError **error)
{
  g_return_val_if_fail(log != NULL && entry != NULL, FALSE);
  g_autofree char *reason = reason_to_keep(entry->reason);
  HarkCallLogEntry kept = *entry;
  kept.reason = reason;
  if (!check_entry(&kept, error) || !exec_constant(log, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (!insert_and_prune(log, &kept, error)) {
    exec_constant(log, "ROLLBACK", NULL);
    return FALSE;
  }
  if (exec_constant(log, "COMMIT", error))
    return TRUE;
  exec_constant(log, "ROLLBACK", NULL);
  return FALSE;
}

void
hark_call_log_entry_free(HarkCallLogEntry *entry)
{
  if (entry == NULL)
    return;
  g_free(entry->id);
  g_free(entry->peer);
  g_free(entry->peer_device);
  g_free(entry->outcome);
  g_free(entry->reason);
  g_free(entry->codec);
  g_free(entry->path);
  g_free(entry);
}

static char *
column_text(sqlite3_stmt *stmt, int column)
{
  return g_strdup((const char *)sqlite3_column_text(stmt, column));
}

static HarkCallLogEntry *
entry_from_row(sqlite3_stmt *stmt)
{
  HarkCallLogEntry *e = g_new0(HarkCallLogEntry, 1);
  e->id = column_text(stmt, 0);
  e->peer = column_text(stmt, 1);
  e->peer_device = column_text(stmt, 2);
  e->outgoing = sqlite3_column_int(stmt, 3) != 0;
  e->started_at = sqlite3_column_int64(stmt, 4);
  e->answered_at = sqlite3_column_int64(stmt, 5);
  e->ended_at = sqlite3_column_int64(stmt, 6);
  e->outcome = column_text(stmt, 7);
  e->reason = column_text(stmt, 8);
  e->codec = column_text(stmt, 9);
  e->path = column_text(stmt, 10);
  return e;
}

GPtrArray *
hark_call_log_list(HarkCallLog *log, guint limit, gboolean missed_only, GError **error)
{
  g_return_val_if_fail(log != NULL, NULL);
  sqlite3_stmt *stmt = prepare(log,
                               "SELECT id, peer, peer_device, outgoing, started_at, answered_at, "
                               "ended_at, outcome, reason, codec, path FROM calls "
                               "WHERE missed = 1 OR ?1 = 0 ORDER BY started_at DESC, seq DESC "
                               "LIMIT ?2",
                               error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int(stmt, 1, missed_only ? 1 : 0);
  sqlite3_bind_int64(stmt, 2, limit > 0 ? (gint64)limit : -1);
  GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)hark_call_log_entry_free);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    g_ptr_array_add(list, entry_from_row(stmt));
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    g_ptr_array_unref(list);
    set_db_error(log, rc, error);
    return NULL;
  }
  return list;
}

gint64
hark_call_log_count_missed(HarkCallLog *log, GError **error)
{
  gint64 n = 0;
  return query_int(log, "SELECT count(*) FROM calls WHERE missed = 1", &n, error) ? n : -1;
}

/* ---- the command ------------------------------------------------------------------------ */

static void
set_text_or_null(JsonObject *o, const char *name, const char *text)
{
  if (text != NULL)
    json_object_set_string_member(o, name, text);
  else
    json_object_set_null_member(o, name);
}

static JsonObject *
entry_json(const HarkCallLogEntry *e)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "id", e->id);
  json_object_set_string_member(o, "peer", e->peer);
  set_text_or_null(o, "peer_device", e->peer_device);
  json_object_set_string_member(o, "direction", e->outgoing ? "out" : "in");
  json_object_set_int_member(o, "started_at", e->started_at);
  json_object_set_int_member(o, "answered_at", e->answered_at);
  json_object_set_int_member(o, "ended_at", e->ended_at);
  json_object_set_int_member(o, "duration_s",
                             e->answered_at > 0 ? e->ended_at - e->answered_at : 0);
  json_object_set_string_member(o, "outcome", e->outcome);
  set_text_or_null(o, "reason", e->reason);
  set_text_or_null(o, "codec", e->codec);
  set_text_or_null(o, "path", e->path);
  return o;
}

static void
run_call_log(HarkCommandCall *call, JsonObject *args, gpointer user_data)
{
  HarkCallLog *log = *(HarkCallLog **)user_data;
  if (log == NULL) {
    hark_command_call_return_error(
      call, g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                "calls are not available on this node (no state directory, "
                                "or its call log was refused: see the node's log)"));
    return;
  }
  gint64 limit = json_object_get_int_member_with_default(args, "limit", LIST_DEFAULT);
  gboolean missed_only = json_object_get_boolean_member_with_default(args, "missed", FALSE);
  if (limit < 1 || limit > LIST_MAX) {
    hark_command_call_return_error(call,
                                   g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                                               "call-log: limit is from 1 to %d", LIST_MAX));
    return;
  }
  GError *error = NULL;
  g_autoptr(GPtrArray) entries = hark_call_log_list(log, (guint)limit, missed_only, &error);
  gint64 missed = entries != NULL ? hark_call_log_count_missed(log, &error) : -1;
  if (missed < 0) {
    hark_command_call_return_error(call, error);
    return;
  }
  JsonArray *calls = json_array_new();
  for (guint i = 0; i < entries->len; i++)
    json_array_add_object_element(calls, entry_json(entries->pdata[i]));
  JsonObject *o = json_object_new();
  json_object_set_array_member(o, "calls", calls);
  json_object_set_int_member(o, "missed", missed);
  hark_command_call_return_object(call, o);
}

static const HarkCommandParam call_log_params[] = {
  { "limit", HARK_PARAM_INT, FALSE, "how many of the last calls (50, at most 1000)" },
  { "missed", HARK_PARAM_BOOL, FALSE, "only the missed calls (false)" },
  { NULL },
};

static const HarkCommand call_log_commands[] = {
  { HARK_COMMAND_VERSION, "call-log",
    "the calls of this device, the newest first, and how many were missed", call_log_params,
    run_call_log },
};

void
hark_call_log_commands_register(HarkContext *core_ctx, HarkCallLog **log)
{
  for (gsize i = 0; i < G_N_ELEMENTS(call_log_commands); i++) {
    g_autoptr(GError) error = NULL;
    if (!hark_context_add_command(core_ctx, &call_log_commands[i], log, &error))
      g_error("call log command table is broken: %s", error->message);
  }
}
