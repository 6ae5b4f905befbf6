/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-history-db.c: the message history's file (message-history.h): opening it
 * private, the schema and its migrations, the cached statements and the checks of what
 * callers hand in, which the other message-history files share (message-history-db.h).
 *
 * The file is opened as every SQLite file of the core (db-file.h): made 0600 before
 * SQLite opens it and refused when other users can reach it, as the identity file is (it
 * holds every conversation in clear), marked as ours with PRAGMA application_id so a
 * damaged file or another program's database is refused with a clear error, its schema
 * versioned with PRAGMA user_version and migrated at open. WAL, synchronous FULL: a
 * message acknowledged to its sender, or an envelope put in the outbox, survives a power
 * cut.
 *
 * Every statement is prepared once (cached by its SQL's address) with bound parameters:
 * nothing a peer sent is ever part of SQL text. Each operation that runs more than one
 * statement does so inside a SAVEPOINT, so it is whole on its own and also nests in the
 * caller's begin/commit. */
#include "message-history-db.h"

#include "db-file.h"

#include <stdarg.h>

#define FILE_NAME "messages.sqlite"
/* "hark" in ASCII: PRAGMA application_id of a history file. */
#define APPLICATION_ID 0x6861726b
#define DEVICE_ID_LENGTH 64
#define GROUP_ID_LENGTH 32
#define MAX_NAME_LENGTH 256

G_STATIC_ASSERT((int)HARK_MESSAGE_HISTORY_ERROR_IO == (int)HARK_DB_ERROR_IO &&
                (int)HARK_MESSAGE_HISTORY_ERROR_PERMISSIONS == (int)HARK_DB_ERROR_PERMISSIONS &&
                (int)HARK_MESSAGE_HISTORY_ERROR_CORRUPT == (int)HARK_DB_ERROR_CORRUPT &&
                (int)HARK_MESSAGE_HISTORY_ERROR_VERSION == (int)HARK_DB_ERROR_VERSION &&
                (int)HARK_MESSAGE_HISTORY_ERROR_DATABASE == (int)HARK_DB_ERROR_DATABASE);

/* clang-format off */
G_DEFINE_QUARK(hark-message-history-error-quark, hark_message_history_error)
/* clang-format on */

/* ---- schema ---------------------------------------------------------------------------- */

/* Step i takes the file from user_version i to i + 1. Append steps; never edit one that
 * has been released. */
static const char *const migrations[] = {
  /* 1: conversations, messages (shown: 0 while held for a gap, else the order it was
   * shown in within its conversation), the next expected sequence per sender device and
   * conversation, this device's next sequences, per-device states, the outbox, and per
   * device the replay guard's state and the own envelope counter */
  "CREATE TABLE conversations ("
  "  key TEXT NOT NULL PRIMARY KEY,"
  "  title TEXT NOT NULL,"
  "  last_activity INTEGER NOT NULL,"
  "  unread INTEGER NOT NULL DEFAULT 0"
  ") WITHOUT ROWID;"
  "CREATE INDEX conversations_by_activity ON conversations (last_activity);"
  "CREATE TABLE messages ("
  "  sender_device TEXT NOT NULL,"
  "  id BLOB NOT NULL,"
  "  conversation TEXT NOT NULL REFERENCES conversations (key),"
  "  sender TEXT NOT NULL,"
  "  sequence INTEGER NOT NULL,"
  "  time INTEGER NOT NULL,"
  "  kind TEXT NOT NULL,"
  "  text TEXT NOT NULL,"
  "  direction INTEGER NOT NULL,"
  "  received INTEGER NOT NULL,"
  "  shown INTEGER NOT NULL DEFAULT 0,"
  "  after_gap INTEGER NOT NULL DEFAULT 0,"
  "  PRIMARY KEY (sender_device, id)"
  ");"
  "CREATE INDEX messages_by_conversation ON messages (conversation, shown);"
  "CREATE INDEX messages_held ON messages (sender_device, conversation, sequence)"
  "  WHERE shown = 0;"
  "CREATE TABLE expected ("
  "  sender_device TEXT NOT NULL,"
  "  conversation TEXT NOT NULL,"
  "  next INTEGER NOT NULL,"
  "  PRIMARY KEY (sender_device, conversation)"
  ") WITHOUT ROWID;"
  "CREATE TABLE outgoing ("
  "  device TEXT NOT NULL,"
  "  conversation TEXT NOT NULL,"
  "  next INTEGER NOT NULL,"
  "  PRIMARY KEY (device, conversation)"
  ") WITHOUT ROWID;"
  "CREATE TABLE states ("
  "  message_id BLOB NOT NULL,"
  "  device TEXT NOT NULL,"
  "  state INTEGER NOT NULL,"
  "  changed INTEGER NOT NULL,"
  "  PRIMARY KEY (message_id, device)"
  ") WITHOUT ROWID;"
  "CREATE TABLE outbox ("
  "  message_id BLOB NOT NULL,"
  "  device TEXT NOT NULL,"
  "  user TEXT NOT NULL,"
  "  envelope BLOB NOT NULL,"
  "  next_attempt INTEGER NOT NULL,"
  "  attempts INTEGER NOT NULL DEFAULT 0,"
  "  expires INTEGER NOT NULL,"
  "  PRIMARY KEY (message_id, device)"
  ") WITHOUT ROWID;"
  "CREATE INDEX outbox_by_due ON outbox (next_attempt);"
  "CREATE TABLE devices ("
  "  device TEXT NOT NULL PRIMARY KEY,"
  "  replay BLOB,"
  "  next_counter INTEGER NOT NULL DEFAULT 1"
  ") WITHOUT ROWID;",
  /* 2: the groups this device knows (message-history-groups.c): members are canonical
   * user names, sorted, separated by one space */
  "CREATE TABLE groups ("
  "  id TEXT NOT NULL PRIMARY KEY,"
  "  name TEXT NOT NULL,"
  "  admin TEXT NOT NULL,"
  "  version INTEGER NOT NULL,"
  "  members TEXT NOT NULL"
  ") WITHOUT ROWID;",
};

static const HarkDbKind history_kind = {
  .domain = hark_message_history_error_quark,
  .label = "message history",
  .contents = "the messages",
  .fresh = "a new history",
  .application_id = APPLICATION_ID,
  .migrations = migrations,
  .n_migrations = G_N_ELEMENTS(migrations),
};

guint
hark_message_history_schema_version(void)
{
  return G_N_ELEMENTS(migrations);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void
set_db_error(HarkMessageHistory *h, int rc, GError **error)
{
  hark_db_set_error(&history_kind, h->db, h->path, rc, error);
}

gboolean
hark_message_db_invalid(GError **error, const char *what)
{
  g_set_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_INVALID,
              "message history: %s", what);
  return FALSE;
}

/* ---- statements ------------------------------------------------------------------------ */

/* The statement for sql (a string constant: its address is the cache key), reset, with
 * the arguments bound by format: 's' text (NULL binds NULL), 'b' a blob (pointer and
 * gsize), 'B' a GBytes, 'i' a gint64. NULL and error when preparing or binding fails. */
sqlite3_stmt *
hark_message_db_query(HarkMessageHistory *h, const char *sql, GError **error, const char *format,
                      ...)
{
  sqlite3_stmt *stmt = g_hash_table_lookup(h->stmts, sql);
  int rc = SQLITE_OK;
  if (stmt == NULL) {
    rc = sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK) {
      set_db_error(h, rc, error);
      return NULL;
    }
    g_hash_table_insert(h->stmts, (gpointer)sql, stmt);
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);

  va_list args;
  va_start(args, format);
  for (int i = 1; rc == SQLITE_OK && format[i - 1] != '\0'; i++) {
    switch (format[i - 1]) {
    case 's':
      rc = sqlite3_bind_text(stmt, i, va_arg(args, const char *), -1, SQLITE_TRANSIENT);
      break;
    case 'b': {
      const void *data = va_arg(args, const void *);
      gsize size = va_arg(args, gsize);
      rc = sqlite3_bind_blob64(stmt, i, data, size, SQLITE_TRANSIENT);
      break;
    }
    case 'B': {
      gsize size = 0;
      const void *data = g_bytes_get_data(va_arg(args, GBytes *), &size);
      rc = sqlite3_bind_blob64(stmt, i, size > 0 ? data : "", size, SQLITE_TRANSIENT);
      break;
    }
    case 'i':
      rc = sqlite3_bind_int64(stmt, i, va_arg(args, gint64));
      break;
    default:
      g_assert_not_reached();
    }
  }
  va_end(args);
  if (rc != SQLITE_OK) {
    set_db_error(h, rc, error);
    return NULL;
  }
  return stmt;
}

/* One step: SQLITE_ROW or SQLITE_DONE, or -1 with error (the statement reset). */
int
hark_message_db_step(HarkMessageHistory *h, sqlite3_stmt *stmt, GError **error)
{
  if (stmt == NULL)
    return -1;
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return rc;
  set_db_error(h, rc, error);
  sqlite3_reset(stmt);
  return -1;
}

/* Runs a statement to its end: the rows it changed, or -1 with error. */
gint64
hark_message_db_finish(HarkMessageHistory *h, sqlite3_stmt *stmt, GError **error)
{
  int rc;
  while ((rc = hark_message_db_step(h, stmt, error)) == SQLITE_ROW)
    ;
  if (rc < 0)
    return -1;
  sqlite3_reset(stmt);
  return sqlite3_changes64(h->db);
}

/* The first column of the first row as an integer: TRUE with *value, FALSE and no error
 * when there was no row (or it was NULL), FALSE with error on failure. */
gboolean
hark_message_db_first_int(HarkMessageHistory *h, sqlite3_stmt *stmt, gint64 *value, GError **error)
{
  int rc = hark_message_db_step(h, stmt, error);
  gboolean found = rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL;
  if (found)
    *value = sqlite3_column_int64(stmt, 0);
  if (rc >= 0)
    sqlite3_reset(stmt);
  return found;
}

/* first_int with a fallback when there is no row: FALSE only on error. */
gboolean
hark_message_db_int_or(HarkMessageHistory *h, sqlite3_stmt *stmt, gint64 fallback, gint64 *value,
                       GError **error)
{
  GError *local = NULL;
  *value = fallback;
  if (stmt == NULL)
    return FALSE;
  if (!hark_message_db_first_int(h, stmt, value, &local) && local != NULL) {
    g_propagate_error(error, local);
    return FALSE;
  }
  return TRUE;
}

char *
hark_message_db_column_text(sqlite3_stmt *stmt, int column)
{
  return g_strdup((const char *)sqlite3_column_text(stmt, column));
}

GBytes *
hark_message_db_column_bytes(sqlite3_stmt *stmt, int column)
{
  return g_bytes_new(sqlite3_column_blob(stmt, column), (gsize)sqlite3_column_bytes(stmt, column));
}

/* Copies a 16-byte id column; FALSE when the stored value is not one. */
gboolean
hark_message_db_column_id(sqlite3_stmt *stmt, int column, guint8 *id)
{
  if (sqlite3_column_bytes(stmt, column) != HARK_MESSAGE_ID_SIZE)
    return FALSE;
  memcpy(id, sqlite3_column_blob(stmt, column), HARK_MESSAGE_ID_SIZE);
  return TRUE;
}

/* Every row of stmt made into an element with from_row (freed with free_row), the
 * statement reset; NULL with error on failure (or when stmt is NULL: preparing it failed). */
GPtrArray *
hark_message_db_rows(HarkMessageHistory *h, sqlite3_stmt *stmt,
                     gpointer (*from_row)(sqlite3_stmt *), GDestroyNotify free_row, GError **error)
{
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(free_row);
  int rc;
  while ((rc = hark_message_db_step(h, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(rows, from_row(stmt));
  if (rc < 0)
    return NULL;
  sqlite3_reset(stmt);
  return g_steal_pointer(&rows);
}

/* Constant SQL only (pragmas, savepoints, transactions). */
static gboolean
exec_constant(HarkMessageHistory *h, const char *sql, GError **error)
{
  return hark_db_exec(&history_kind, h->db, h->path, sql, error);
}

/* Every operation is one savepoint: whole alone, and part of the caller's transaction
 * when there is one. */
gboolean
hark_message_db_op_begin(HarkMessageHistory *h, GError **error)
{
  return exec_constant(h, "SAVEPOINT op", error);
}

gboolean
hark_message_db_op_end(HarkMessageHistory *h, gboolean ok, GError **error)
{
  if (ok)
    return exec_constant(h, "RELEASE op", error);
  exec_constant(h, "ROLLBACK TO op; RELEASE op", NULL);
  return FALSE;
}

gint64
hark_message_db_now(HarkMessageHistory *h)
{
  return h->clock != NULL ? hark_clock_now_seconds(h->clock) : g_get_real_time() / G_USEC_PER_SEC;
}

/* ---- checks of what the caller hands in ------------------------------------------------ */

static gboolean
is_lower_hex(const char *text, gsize length)
{
  if (text == NULL || strlen(text) != length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isxdigit(text[i]) || g_ascii_isupper(text[i]))
      return FALSE;
  return TRUE;
}

/* A name (user, title, kind): UTF-8 without control characters, 1 to 256 bytes. */
gboolean
hark_message_db_is_name(const char *text)
{
  return hark_db_is_text(text, MAX_NAME_LENGTH);
}

gboolean
hark_message_db_check_conversation(const char *key, GError **error)
{
  if (key != NULL && g_str_has_prefix(key, "u:") && hark_message_db_is_name(key + 2))
    return TRUE;
  if (key != NULL && g_str_has_prefix(key, "g:") && is_lower_hex(key + 2, GROUP_ID_LENGTH))
    return TRUE;
  return hark_message_db_invalid(error, "a conversation is u:USER or g: and 32 lowercase hex");
}

gboolean
hark_message_db_check_device(const char *device, GError **error)
{
  return is_lower_hex(device, DEVICE_ID_LENGTH) ||
         hark_message_db_invalid(error, "a device id is 64 lowercase hex");
}

/* ---- opening --------------------------------------------------------------------------- */

static gboolean
configure(HarkMessageHistory *h, GError **error)
{
  /* FULL: what was acknowledged or queued survives a power cut, not only a crash. */
  return exec_constant(h, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", error);
}

static void
finalize_stmt(gpointer stmt)
{
  sqlite3_finalize(stmt);
}

HarkMessageHistory *
hark_message_history_open(const char *state_dir, HarkClock *clock, GError **error)
{
  g_return_val_if_fail(state_dir != NULL, NULL);
  g_autoptr(HarkMessageHistory) h = g_new0(HarkMessageHistory, 1);
  h->clock = clock;
  h->path = g_build_filename(state_dir, FILE_NAME, NULL);
  h->stmts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, finalize_stmt);
  h->db = hark_db_open(&history_kind, h->path, error);
  if (h->db == NULL || !configure(h, error))
    return NULL;
  return g_steal_pointer(&h);
}

void
hark_message_history_close(HarkMessageHistory *h)
{
  if (h == NULL)
    return;
  if (h->in_transaction)
    hark_message_history_rollback(h);
  g_hash_table_destroy(h->stmts); /* finalizes every statement before the close */
  sqlite3_close(h->db);
  g_free(h->path);
  g_free(h);
}

gboolean
hark_message_history_begin(HarkMessageHistory *h, GError **error)
{
  if (h->in_transaction)
    return hark_message_db_invalid(error, "a transaction is open already");
  h->in_transaction = exec_constant(h, "BEGIN IMMEDIATE", error);
  return h->in_transaction;
}

gboolean
hark_message_history_commit(HarkMessageHistory *h, GError **error)
{
  if (!h->in_transaction)
    return hark_message_db_invalid(error, "no transaction to commit");
  if (!exec_constant(h, "COMMIT", error)) {
    hark_message_history_rollback(h);
    return FALSE;
  }
  h->in_transaction = FALSE;
  return TRUE;
}

void
hark_message_history_rollback(HarkMessageHistory *h)
{
  if (sqlite3_get_autocommit(h->db) == 0)
    exec_constant(h, "ROLLBACK", NULL);
  h->in_transaction = FALSE;
}
