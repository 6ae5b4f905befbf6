/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-history-db.c: the message history's file (message-history.h): opening it
 * private, the schema and its migrations, the cached statements and the checks of what
 * callers hand in, which the other message-history files share (message-history-db.h).
 *
 * The file is made 0600 before SQLite opens it (its -wal and -shm files take the same
 * mode), and a file other users can reach is refused, as the identity file is: it holds
 * every conversation in clear. It is marked as ours with PRAGMA application_id, so a
 * damaged file or another program's database is refused with a clear error instead of
 * being written into. The schema is versioned with PRAGMA user_version and migrated at
 * open, one transaction per step. WAL, synchronous FULL: a message acknowledged to its
 * sender, or an envelope put in the outbox, survives a power cut.
 *
 * Every statement is prepared once (cached by its SQL's address) with bound parameters:
 * nothing a peer sent is ever part of SQL text. Each operation that runs more than one
 * statement does so inside a SAVEPOINT, so it is whole on its own and also nests in the
 * caller's begin/commit. */
#include "message-history-db.h"

#include "file-util.h"

#include <stdarg.h>

#define FILE_NAME "messages.sqlite"
/* "hark" in ASCII: PRAGMA application_id of a history file. */
#define APPLICATION_ID 0x6861726b
#define BUSY_TIMEOUT_MS 5000
#define DEVICE_ID_LENGTH 64
#define GROUP_ID_LENGTH 32
#define MAX_NAME_LENGTH 256

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

guint
hark_message_history_schema_version(void)
{
  return G_N_ELEMENTS(migrations);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void
set_db_error(HarkMessageHistory *h, int rc, GError **error)
{
  int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    g_set_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_CORRUPT,
                "message history %s: the file is damaged or not a database (%s); move it "
                "away to start a new history",
                h->path, sqlite3_errstr(rc));
  else
    g_set_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_DATABASE,
                "message history %s: %s (%s)", h->path, sqlite3_errmsg(h->db), sqlite3_errstr(rc));
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

/* Constant SQL only (pragmas, savepoints, migration steps). */
static gboolean
exec_constant(HarkMessageHistory *h, const char *sql, GError **error)
{
  int rc = sqlite3_exec(h->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    set_db_error(h, rc, error);
  return rc == SQLITE_OK;
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
  if (text == NULL || *text == '\0' || strlen(text) > MAX_NAME_LENGTH ||
      !g_utf8_validate(text, -1, NULL))
    return FALSE;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return FALSE;
  return TRUE;
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

/* Creates the file 0600 when missing (before SQLite does, which would use the umask) and
 * refuses one that is not a regular file or that other users can reach. */
static gboolean
open_private(const char *path, GError **error)
{
  g_autoptr(GError) local = NULL;
  HarkFilePrivacy found = hark_file_make_private(path, "the messages", &local);
  if (found == HARK_FILE_PRIVATE)
    return TRUE;
  g_set_error(error, HARK_MESSAGE_HISTORY_ERROR,
              found == HARK_FILE_SHARED ? HARK_MESSAGE_HISTORY_ERROR_PERMISSIONS
                                        : HARK_MESSAGE_HISTORY_ERROR_IO,
              "message history: %s", local->message);
  return FALSE;
}

static gboolean
pragma_int(HarkMessageHistory *h, const char *sql, gint64 *value, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(h->db, sql, -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    *value = sqlite3_column_int64(stmt, 0);
  else
    set_db_error(h, rc, error);
  sqlite3_finalize(stmt);
  return rc == SQLITE_ROW;
}

/* A file is ours when it carries our application id, or is still empty (new). */
static gboolean
check_ours(HarkMessageHistory *h, GError **error)
{
  gint64 id = 0, tables = 0;
  if (!pragma_int(h, "PRAGMA application_id", &id, error) ||
      !pragma_int(h, "SELECT count(*) FROM sqlite_schema", &tables, error))
    return FALSE;
  if (id == APPLICATION_ID || (id == 0 && tables == 0))
    return TRUE;
  g_set_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_CORRUPT,
              "message history %s: another program's database (application id %" G_GINT64_FORMAT
              ", %" G_GINT64_FORMAT " tables); move it away to start a new history",
              h->path, id, tables);
  return FALSE;
}

/* One migration step if one is due; *done once the schema is current. The version is
 * read inside the write transaction, so each step runs once. */
static gboolean
migrate_step(HarkMessageHistory *h, gboolean *done, GError **error)
{
  gint64 version = 0;
  if (!exec_constant(h, "BEGIN IMMEDIATE", error))
    return FALSE;
  gboolean ok = pragma_int(h, "PRAGMA user_version", &version, error);
  if (ok && (version < 0 || version > (gint64)G_N_ELEMENTS(migrations))) {
    g_set_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_VERSION,
                "message history %s: schema version %" G_GINT64_FORMAT
                " is not one this hark knows (up to %" G_GSIZE_FORMAT "): update hark",
                h->path, version, G_N_ELEMENTS(migrations));
    ok = FALSE;
  }
  *done = ok && version == (gint64)G_N_ELEMENTS(migrations);
  if (ok && !*done) {
    /* PRAGMA takes no parameters; the numbers are ours, not input. */
    g_autofree char *mark =
      g_strdup_printf("PRAGMA user_version = %" G_GINT64_FORMAT "; PRAGMA application_id = %d",
                      version + 1, APPLICATION_ID);
    ok = exec_constant(h, migrations[version], error) && exec_constant(h, mark, error);
  }
  if (ok)
    return exec_constant(h, "COMMIT", error);
  exec_constant(h, "ROLLBACK", NULL);
  return FALSE;
}

static gboolean
migrate(HarkMessageHistory *h, GError **error)
{
  gboolean done = FALSE;
  while (!done)
    if (!migrate_step(h, &done, error))
      return FALSE;
  return TRUE;
}

static gboolean
configure(HarkMessageHistory *h, GError **error)
{
  sqlite3_extended_result_codes(h->db, 1);
  sqlite3_busy_timeout(h->db, BUSY_TIMEOUT_MS);
  if (!check_ours(h, error) || !exec_constant(h, "PRAGMA journal_mode = WAL", error))
    return FALSE;
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
  if (!open_private(h->path, error))
    return NULL;
  int rc = sqlite3_open_v2(
    h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
  if (rc != SQLITE_OK) {
    set_db_error(h, rc, error);
    return NULL;
  }
  if (!configure(h, error) || !migrate(h, error))
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
