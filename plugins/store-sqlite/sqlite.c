/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sqlite.c: the `sqlite` store plugin (hark/store.h): the login server's accounts,
 * devices, buddy lists and held messages in one SQLite file in the node's state directory. It is the
 * embedded default; the `postgres` store is for login servers that outgrow one machine.
 *
 * Setting: "path" (default "accounts.db"; relative paths are in the state directory). It
 * is read at init, so a wrong type stops the node at load; the settings given to open()
 * override it.
 *
 * The file is created private (0600: it holds password hashes), in WAL mode so that
 * readers do not wait for a writer, with foreign keys on. The schema is versioned with
 * PRAGMA user_version and migrated at open, one transaction per step. An opened store is
 * one connection guarded by a mutex, because the login server calls it from worker threads.
 * Every statement is prepared once, with bound parameters: no SQL is built from a name. */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <hark/hark.h>
#include <sqlite3.h>
#include <unistd.h>

#define STORE_NAME "sqlite"
#define DEFAULT_PATH "accounts.db"
/* How long a statement waits for another connection's lock (another process sharing the
 * file) before it fails. */
#define BUSY_TIMEOUT_MS 10000

static const char *const known_settings[] = { "path", NULL };

typedef struct {
  HarkContext *ctx;
  char *path; /* the "path" setting from init: the default of every open() */
} SqlitePlugin;

/* ---- schema ------------------------------------------------------------------------------ */

/* Migration steps, oldest first: step i takes a database from user_version i to i + 1.
 * Append new steps; never edit a released one. Names are compared byte by byte (BINARY),
 * the order users_find promises and the postgres store's COLLATE "C" also gives. */
static const char *const migrations[] = {
  /* 1: accounts, the devices they logged in from, buddy lists */
  "CREATE TABLE users ("
  "  name TEXT NOT NULL,"
  "  name_key TEXT NOT NULL PRIMARY KEY,"
  "  password_hash TEXT NOT NULL,"
  "  created INTEGER NOT NULL,"
  "  failed_logins INTEGER NOT NULL DEFAULT 0,"
  "  locked_until INTEGER NOT NULL DEFAULT 0,"
  "  buddy_revision INTEGER NOT NULL DEFAULT 0"
  ") WITHOUT ROWID;"
  "CREATE TABLE devices ("
  "  user_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  device_id TEXT NOT NULL,"
  "  device_name TEXT NOT NULL,"
  "  last_login INTEGER NOT NULL,"
  "  PRIMARY KEY (user_key, device_id)"
  ") WITHOUT ROWID;"
  /* buddy_key is not a foreign key: deleting a user must also bump the revision of every
   * list that named them, which user_delete does itself. */
  "CREATE TABLE buddies ("
  "  user_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  buddy_key TEXT NOT NULL,"
  "  alias TEXT NOT NULL,"
  "  PRIMARY KEY (user_key, buddy_key)"
  ") WITHOUT ROWID;"
  "CREATE INDEX buddies_by_buddy ON buddies (buddy_key);",
  /* 2: an account id for every account (random, unique: a name registered again is
   * another account), and devices with their first login and revocation */
  "ALTER TABLE users ADD COLUMN account_id TEXT NOT NULL DEFAULT '';"
  "UPDATE users SET account_id = lower(hex(randomblob(16)));"
  "CREATE UNIQUE INDEX users_by_account ON users (account_id);"
  "ALTER TABLE devices RENAME COLUMN last_login TO last_seen;"
  "ALTER TABLE devices ADD COLUMN first_seen INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE devices ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;"
  "UPDATE devices SET first_seen = last_seen;",
  /* 3: contact requests (answered 0: pending; else when declined) and blocks; both go
   * with either user */
  "CREATE TABLE requests ("
  "  from_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  to_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  message TEXT,"
  "  created INTEGER NOT NULL,"
  "  answered INTEGER NOT NULL DEFAULT 0,"
  "  PRIMARY KEY (from_key, to_key)"
  ") WITHOUT ROWID;"
  "CREATE INDEX requests_by_to ON requests (to_key);"
  "CREATE TABLE blocks ("
  "  user_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  blocked_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  PRIMARY KEY (user_key, blocked_key)"
  ") WITHOUT ROWID;"
  "CREATE INDEX blocks_by_blocked ON blocks (blocked_key);",
  /* 4: the last certificate issued to each device, devices found by id alone, and
   * messages held for offline devices (they go with their recipient user) */
  "ALTER TABLE devices ADD COLUMN certificate TEXT;"
  "ALTER TABLE devices ADD COLUMN certificate_expires INTEGER NOT NULL DEFAULT 0;"
  "CREATE INDEX devices_by_id ON devices (device_id);"
  "CREATE TABLE held_messages ("
  "  id TEXT NOT NULL PRIMARY KEY,"
  "  device_id TEXT NOT NULL,"
  "  user_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  sender_key TEXT NOT NULL,"
  "  sender_device TEXT NOT NULL,"
  "  envelope BLOB NOT NULL,"
  "  size INTEGER NOT NULL,"
  "  held_at INTEGER NOT NULL,"
  "  expires INTEGER NOT NULL"
  ");"
  /* rowid: the order they came in, for messages held within the same second */
  "CREATE INDEX held_by_device ON held_messages (device_id, held_at);"
  "CREATE INDEX held_by_sender ON held_messages (sender_key);"
  "CREATE INDEX held_by_user ON held_messages (user_key);"
  "CREATE INDEX held_by_expiry ON held_messages (expires);",
};

/* ---- statements -------------------------------------------------------------------------- */

typedef enum {
  STMT_BEGIN,
  STMT_COMMIT,
  STMT_ROLLBACK,
  STMT_USER_CREATE,
  STMT_USER_GET,
  STMT_USER_SET_PASSWORD,
  STMT_USER_DELETE,
  STMT_LISTS_NAMING_BUMP,
  STMT_LISTS_NAMING_DELETE,
  STMT_USER_NOTE_FAILURE,
  STMT_USER_NOTE_LOGIN,
  STMT_DEVICE_UPSERT,
  STMT_DEVICES_REVOKE_OTHERS,
  STMT_DEVICES_LIST,
  STMT_DEVICE_GET,
  STMT_DEVICE_SEEN,
  STMT_DEVICE_REVOKE,
  STMT_USERS_FIND,
  STMT_BUDDIES_GET,
  STMT_REVISION_GET,
  STMT_REVISION_BUMP,
  STMT_BUDDY_ADD,
  STMT_BUDDY_REMOVE,
  STMT_BUDDY_RENAME,
  STMT_REQUESTS_LIST,
  STMT_REQUESTS_PENDING_FROM,
  STMT_REQUEST_UPSERT,
  STMT_REQUEST_DECLINE,
  STMT_REQUEST_WITHDRAW,
  STMT_REQUESTS_BETWEEN_DELETE,
  STMT_BUDDY_ADD_IF_ABSENT,
  STMT_BLOCK_ADD,
  STMT_BLOCK_REMOVE,
  STMT_BLOCKS_LIST,
  STMT_DEVICE_SET_CERTIFICATE,
  STMT_DEVICE_CERTIFICATES,
  STMT_DEVICE_FIND,
  STMT_USER_EXISTS,
  STMT_MESSAGE_INSERT,
  STMT_MESSAGES_LIST,
  STMT_MESSAGE_DELETE,
  STMT_USAGE_SENDER,
  STMT_USAGE_DEVICE,
  STMT_MESSAGES_EXPIRE,
  N_STMTS
} StmtId;

/* An alias left out is the buddy's name as registered (their key when they do not exist). */
#define DEFAULT_ALIAS "coalesce(?3, (SELECT name FROM users WHERE name_key = ?2), ?2)"

static const char *const stmt_sql[N_STMTS] = {
  /* IMMEDIATE: take the write lock now, so a transaction that read something never fails
   * to write because another process wrote in between. */
  [STMT_BEGIN] = "BEGIN IMMEDIATE",
  [STMT_COMMIT] = "COMMIT",
  [STMT_ROLLBACK] = "ROLLBACK",
  [STMT_USER_CREATE] = "INSERT INTO users (name, name_key, account_id, password_hash, created)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
  [STMT_USER_GET] = "SELECT name, name_key, password_hash, created, failed_logins, locked_until,"
                    " account_id FROM users WHERE name_key = ?1",
  [STMT_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?2 WHERE name_key = ?1",
  [STMT_USER_DELETE] = "DELETE FROM users WHERE name_key = ?1",
  [STMT_LISTS_NAMING_BUMP] =
    "UPDATE users SET buddy_revision = buddy_revision + 1"
    " WHERE name_key IN (SELECT user_key FROM buddies WHERE buddy_key = ?1)",
  [STMT_LISTS_NAMING_DELETE] = "DELETE FROM buddies WHERE buddy_key = ?1",
  [STMT_USER_NOTE_FAILURE] = "UPDATE users SET failed_logins = failed_logins + 1,"
                             " locked_until = max(locked_until, ?2)"
                             " WHERE name_key = ?1 RETURNING failed_logins",
  [STMT_USER_NOTE_LOGIN] =
    "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE name_key = ?1",
  [STMT_DEVICE_UPSERT] =
    "INSERT INTO devices (user_key, device_id, device_name, first_seen, last_seen)"
    " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (user_key, device_id) DO UPDATE"
    " SET device_name = excluded.device_name, last_seen = excluded.last_seen, revoked = 0",
  /* ?2 NULL keeps no device: "IS NOT" is true for every id then. */
  [STMT_DEVICES_REVOKE_OTHERS] = "UPDATE devices SET revoked = ?3"
                                 " WHERE user_key = ?1 AND revoked = 0 AND device_id IS NOT ?2",
  /* Like STMT_BUDDIES_GET: one row with a NULL device for a user without devices. */
  [STMT_DEVICES_LIST] =
    "SELECT d.device_id, d.device_name, d.first_seen, d.last_seen, d.revoked FROM users u"
    " LEFT JOIN devices d ON d.user_key = u.name_key WHERE u.name_key = ?1"
    " ORDER BY d.first_seen, d.device_id",
  [STMT_DEVICE_GET] = "SELECT device_id, device_name, first_seen, last_seen, revoked"
                      " FROM devices WHERE user_key = ?1 AND device_id = ?2",
  [STMT_DEVICE_SEEN] = "UPDATE devices SET last_seen = ?3 WHERE user_key = ?1 AND device_id = ?2",
  [STMT_DEVICE_REVOKE] = "UPDATE devices SET revoked = CASE revoked WHEN 0 THEN ?3 ELSE revoked"
                         " END WHERE user_key = ?1 AND device_id = ?2",
  /* substr, not LIKE: '%' and '_' in a prefix are plain characters. The range condition
   * lets the primary key index start at the prefix. */
  [STMT_USERS_FIND] = "SELECT name FROM users"
                      " WHERE name_key >= ?1 AND substr(name_key, 1, length(?1)) = ?1"
                      " ORDER BY name_key LIMIT ?2",
  /* One statement, so the revision and the list come from the same snapshot. A user
   * without buddies gives one row with a NULL buddy; no user gives no row. */
  [STMT_BUDDIES_GET] = "SELECT u.buddy_revision, b.buddy_key, b.alias FROM users u"
                       " LEFT JOIN buddies b ON b.user_key = u.name_key"
                       " WHERE u.name_key = ?1 ORDER BY b.buddy_key",
  [STMT_REVISION_GET] = "SELECT buddy_revision FROM users WHERE name_key = ?1",
  [STMT_REVISION_BUMP] = "UPDATE users SET buddy_revision = buddy_revision + 1"
                         " WHERE name_key = ?1 RETURNING buddy_revision",
  [STMT_BUDDY_ADD] =
    "INSERT INTO buddies (user_key, buddy_key, alias) VALUES (?1, ?2, " DEFAULT_ALIAS ")",
  [STMT_BUDDY_REMOVE] = "DELETE FROM buddies WHERE user_key = ?1 AND buddy_key = ?2",
  [STMT_BUDDY_RENAME] =
    "UPDATE buddies SET alias = " DEFAULT_ALIAS " WHERE user_key = ?1 AND buddy_key = ?2",
  /* Like STMT_BUDDIES_GET: one row with NULL request columns for a user without any. */
  [STMT_REQUESTS_LIST] =
    "SELECT r.from_key, r.to_key, r.message, r.created, r.answered FROM users u"
    " LEFT JOIN requests r ON r.from_key = u.name_key OR r.to_key = u.name_key"
    " WHERE u.name_key = ?1 ORDER BY r.created, r.from_key, r.to_key",
  [STMT_REQUESTS_PENDING_FROM] =
    "SELECT count(*) FROM requests WHERE from_key = ?1 AND answered = 0",
  /* A declined request is asked again; a pending one stays as it is (no row changed). */
  [STMT_REQUEST_UPSERT] =
    "INSERT INTO requests (from_key, to_key, message, created) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (from_key, to_key) DO UPDATE SET message = excluded.message,"
    " created = excluded.created, answered = 0 WHERE requests.answered <> 0",
  [STMT_REQUEST_DECLINE] =
    "UPDATE requests SET answered = ?3 WHERE from_key = ?1 AND to_key = ?2 AND answered = 0",
  [STMT_REQUEST_WITHDRAW] =
    "DELETE FROM requests WHERE from_key = ?1 AND to_key = ?2 AND answered = 0",
  [STMT_REQUESTS_BETWEEN_DELETE] =
    "DELETE FROM requests WHERE (from_key = ?1 AND to_key = ?2) OR (from_key = ?2 AND to_key = ?1)",
  [STMT_BUDDY_ADD_IF_ABSENT] =
    "INSERT INTO buddies (user_key, buddy_key, alias)"
    " SELECT ?1, ?2, name FROM users WHERE name_key = ?2 ON CONFLICT DO NOTHING",
  [STMT_BLOCK_ADD] =
    "INSERT INTO blocks (user_key, blocked_key) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
  [STMT_BLOCK_REMOVE] = "DELETE FROM blocks WHERE user_key = ?1 AND blocked_key = ?2",
  [STMT_BLOCKS_LIST] = "SELECT u.name_key, b.blocked_key FROM users u"
                       " LEFT JOIN blocks b ON b.user_key = u.name_key"
                       " WHERE u.name_key = ?1 ORDER BY b.blocked_key",
  [STMT_DEVICE_SET_CERTIFICATE] = "UPDATE devices SET certificate = ?3, certificate_expires = ?4"
                                  " WHERE user_key = ?1 AND device_id = ?2",
  /* Like STMT_DEVICES_LIST: one row with a NULL device for a user without any. */
  [STMT_DEVICE_CERTIFICATES] =
    "SELECT d.device_id, d.certificate, d.certificate_expires FROM users u"
    " LEFT JOIN devices d ON d.user_key = u.name_key AND d.revoked = 0"
    " AND d.certificate IS NOT NULL AND d.certificate_expires > ?2"
    " WHERE u.name_key = ?1 ORDER BY d.first_seen, d.device_id",
  [STMT_DEVICE_FIND] = "SELECT device_id, device_name, first_seen, last_seen, revoked, user_key"
                       " FROM devices WHERE device_id = ?1 AND revoked = 0"
                       " ORDER BY last_seen DESC, user_key LIMIT 1",
  [STMT_USER_EXISTS] = "SELECT count(*) FROM users WHERE name_key = ?1",
  [STMT_MESSAGE_INSERT] =
    "INSERT INTO held_messages (id, device_id, user_key, sender_key, sender_device, envelope,"
    " size, held_at, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, length(?6), ?7, ?8)",
  [STMT_MESSAGES_LIST] = "SELECT id, device_id, user_key, sender_key, sender_device, envelope,"
                         " held_at, expires FROM held_messages"
                         " WHERE device_id = ?1 AND expires > ?2 ORDER BY held_at, rowid LIMIT ?3",
  [STMT_MESSAGE_DELETE] = "DELETE FROM held_messages WHERE device_id = ?1 AND id = ?2",
  [STMT_USAGE_SENDER] = "SELECT count(*), coalesce(sum(size), 0) FROM held_messages"
                        " WHERE sender_key = ?1 AND expires > ?2",
  [STMT_USAGE_DEVICE] = "SELECT count(*), coalesce(sum(size), 0) FROM held_messages"
                        " WHERE device_id = ?1 AND expires > ?2",
  [STMT_MESSAGES_EXPIRE] = "DELETE FROM held_messages WHERE expires <= ?1",
};

typedef struct {
  GMutex lock; /* one call at a time on the connection and its statements */
  sqlite3 *db;
  char *path;
  sqlite3_stmt *stmts[N_STMTS];
} SqliteStore;

/* Hold the store's mutex until the end of the enclosing block. (Unused as a variable, which
 * clang would otherwise warn about.) */
#define HOLD_LOCK(s) G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&(s)->lock)

/* A statement parameter: text (NULL binds SQL NULL), an integer or a blob. */
typedef struct {
  gboolean is_int;
  const char *text;
  gint64 number;
  GBytes *blob;
} Param;

#define TEXT(value) ((Param){ .text = (value) })
#define INT(value) ((Param){ .is_int = TRUE, .number = (value) })
#define BLOB(value) ((Param){ .blob = (value) })
#define PARAMS(...) (const Param[]){ __VA_ARGS__ }, G_N_ELEMENTS(((const Param[]){ __VA_ARGS__ }))

/* ---- errors ------------------------------------------------------------------------------ */

/* The database's own error: a unique key taken is EXISTS, anything else BACKEND. */
static void
set_db_error(SqliteStore *s, int rc, GError **error)
{
  int code = sqlite3_extended_errcode(s->db);
  HarkStoreError store_code =
    code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE
      ? HARK_STORE_ERROR_EXISTS
      : HARK_STORE_ERROR_BACKEND;
  g_set_error(error, HARK_STORE_ERROR, store_code, "sqlite store %s: %s (%s)", s->path,
              sqlite3_errmsg(s->db), sqlite3_errstr(rc));
}

/* A text column, copied (NULL stays NULL). */
static char *
column_string(sqlite3_stmt *stmt, int column)
{
  return g_strdup((const char *)sqlite3_column_text(stmt, column));
}

/* ---- running statements ------------------------------------------------------------------ */

/* Binds one parameter at index (from 1): an SQLite result code. */
static int
bind_param(sqlite3_stmt *stmt, int index, const Param *param)
{
  if (param->is_int)
    return sqlite3_bind_int64(stmt, index, param->number);
  if (param->blob != NULL) {
    gsize size = 0;
    gconstpointer data = g_bytes_get_data(param->blob, &size);
    /* Never NULL data: SQLite would bind an empty blob as SQL NULL. */
    return sqlite3_bind_blob64(stmt, index, data != NULL ? data : "", size, SQLITE_TRANSIENT);
  }
  if (param->text != NULL)
    return sqlite3_bind_text(stmt, index, param->text, -1, SQLITE_TRANSIENT);
  return sqlite3_bind_null(stmt, index);
}

/* The statement, reset and with params bound; NULL and error when binding fails. */
static sqlite3_stmt *
stmt_bind(SqliteStore *s, StmtId id, const Param *params, gsize n_params, GError **error)
{
  sqlite3_stmt *stmt = s->stmts[id];
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  for (gsize i = 0; i < n_params; i++) {
    int rc = bind_param(stmt, (int)i + 1, &params[i]);
    if (rc != SQLITE_OK) {
      set_db_error(s, rc, error);
      return NULL;
    }
  }
  return stmt;
}

/* One step: SQLITE_ROW or SQLITE_DONE, or -1 with error. */
static int
stmt_step(SqliteStore *s, sqlite3_stmt *stmt, GError **error)
{
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return rc;
  set_db_error(s, rc, error);
  sqlite3_reset(stmt);
  return -1;
}

/* Run a statement that returns no rows: the number of rows it changed, or -1 with error. */
static gint64
stmt_exec(SqliteStore *s, StmtId id, const Param *params, gsize n_params, GError **error)
{
  sqlite3_stmt *stmt = stmt_bind(s, id, params, n_params, error);
  if (stmt == NULL || stmt_step(s, stmt, error) < 0)
    return -1;
  sqlite3_reset(stmt);
  return sqlite3_changes64(s->db);
}

/* Run a statement for one integer (a SELECT or a RETURNING): TRUE with *value, or FALSE,
 * with NOT_FOUND for name_key when there was no row. */
static gboolean
stmt_int(SqliteStore *s, StmtId id, const char *name_key, const Param *params, gsize n_params,
         gint64 *value, GError **error)
{
  sqlite3_stmt *stmt = stmt_bind(s, id, params, n_params, error);
  int rc = stmt != NULL ? stmt_step(s, stmt, error) : -1;
  if (rc == SQLITE_ROW)
    *value = sqlite3_column_int64(stmt, 0);
  else if (rc == SQLITE_DONE)
    hark_store_set_no_user(error, name_key);
  if (stmt != NULL)
    sqlite3_reset(stmt);
  return rc == SQLITE_ROW;
}

/* A change that names a user: its row count, turned into NOT_FOUND when it was none. */
static gboolean
exec_on_user(SqliteStore *s, StmtId id, const char *name_key, const Param *params, gsize n_params,
             GError **error)
{
  gint64 changed = stmt_exec(s, id, params, n_params, error);
  if (changed == 0)
    hark_store_set_no_user(error, name_key);
  return changed > 0;
}

static gboolean
begin(SqliteStore *s, GError **error)
{
  return stmt_exec(s, STMT_BEGIN, NULL, 0, error) >= 0;
}

/* End the transaction begun: commit when ok, else roll back (keeping the first error). */
static gboolean
finish(SqliteStore *s, gboolean ok, GError **error)
{
  if (ok)
    return stmt_exec(s, STMT_COMMIT, NULL, 0, error) >= 0;
  if (sqlite3_get_autocommit(s->db) == 0)
    stmt_exec(s, STMT_ROLLBACK, NULL, 0, NULL);
  return FALSE;
}

/* ---- opening ----------------------------------------------------------------------------- */

/* Constant SQL only (pragmas and migration steps): never anything with a name in it. */
static gboolean
exec_constant(SqliteStore *s, const char *sql, GError **error)
{
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    set_db_error(s, rc, error);
  return rc == SQLITE_OK;
}

static gboolean
pragma_int(SqliteStore *s, const char *sql, gint64 *value, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    *value = sqlite3_column_int64(stmt, 0);
  else
    set_db_error(s, rc, error);
  sqlite3_finalize(stmt);
  return rc == SQLITE_ROW;
}

/* One migration step if the database needs one: *done tells whether it is up to date.
 * The version is read inside the write transaction, so two processes opening the same
 * file at once apply each step once. */
static gboolean
migrate_step(SqliteStore *s, gboolean *done, GError **error)
{
  gint64 version = 0;
  if (!exec_constant(s, "BEGIN IMMEDIATE", error))
    return FALSE;
  gboolean ok = pragma_int(s, "PRAGMA user_version", &version, error);
  if (ok && version > (gint64)G_N_ELEMENTS(migrations)) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND,
                "sqlite store %s: schema version %" G_GINT64_FORMAT
                " is newer than this hark knows (%" G_GSIZE_FORMAT "): update hark",
                s->path, version, G_N_ELEMENTS(migrations));
    ok = FALSE;
  }
  *done = ok && version == (gint64)G_N_ELEMENTS(migrations);
  if (ok && !*done) {
    /* PRAGMA takes no parameters; the number is ours, not input. */
    g_autofree char *set_version =
      g_strdup_printf("PRAGMA user_version = %" G_GINT64_FORMAT, version + 1);
    ok = exec_constant(s, migrations[version], error) && exec_constant(s, set_version, error);
  }
  if (ok)
    return exec_constant(s, "COMMIT", error);
  exec_constant(s, "ROLLBACK", NULL);
  return FALSE;
}

static gboolean
migrate(SqliteStore *s, GError **error)
{
  gboolean done = FALSE;
  while (!done)
    if (!migrate_step(s, &done, error))
      return FALSE;
  return TRUE;
}

/* PRAGMA journal_mode = WAL, giving the mode it left the file in (NULL and error when it
 * failed). The switch needs an exclusive lock, for which SQLite does not call the busy
 * handler: when another connection is opening the file at the same moment it fails at
 * once with SQLITE_BUSY. So wait here instead, as long as the busy timeout. */
static char *
switch_to_wal(SqliteStore *s, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
  gint64 deadline = g_get_monotonic_time() + BUSY_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_BUSY &&
         g_get_monotonic_time() < deadline) {
    sqlite3_reset(stmt);
    rc = SQLITE_OK;
    g_usleep(10 * G_TIME_SPAN_MILLISECOND);
  }
  char *mode = rc == SQLITE_ROW ? column_string(stmt, 0) : NULL;
  if (rc != SQLITE_ROW)
    set_db_error(s, rc, error);
  sqlite3_finalize(stmt);
  return mode;
}

static gboolean
configure(SqliteStore *s, GError **error)
{
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  g_autofree char *mode = switch_to_wal(s, error);
  if (mode == NULL)
    return FALSE;
  if (g_ascii_strcasecmp(mode, "wal") != 0) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND,
                "sqlite store %s: cannot switch to WAL mode (the file system may not support it)",
                s->path);
    return FALSE;
  }
  /* FULL: a registered account or a buddy change survives a power cut, not only a crash. */
  return exec_constant(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL", error);
}

static gboolean
prepare_statements(SqliteStore *s, GError **error)
{
  for (int i = 0; i < N_STMTS; i++) {
    int rc =
      sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[i], NULL);
    if (rc != SQLITE_OK) {
      set_db_error(s, rc, error);
      return FALSE;
    }
  }
  return TRUE;
}

/* Create the file private before SQLite does (it would use the umask); its WAL and shared
 * memory files then get the same mode. An existing file keeps the mode it has. */
static gboolean
create_private(const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  int fd = -1;
  if (g_mkdir_with_parents(dir, 0700) == 0)
    fd = g_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    int saved = errno;
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND,
                "sqlite store: cannot create %s: %s", path, g_strerror(saved));
    return FALSE;
  }
  close(fd);
  return TRUE;
}

static void
sqlite_store_close(gpointer store)
{
  SqliteStore *s = store;
  if (s == NULL)
    return;
  for (int i = 0; i < N_STMTS; i++)
    sqlite3_finalize(s->stmts[i]);
  sqlite3_close(s->db);
  g_mutex_clear(&s->lock);
  g_free(s->path);
  g_free(s);
}

static gpointer
sqlite_store_open(gpointer instance, const char *state_dir, GVariant *settings, GError **error)
{
  SqlitePlugin *plugin = instance;
  g_autofree char *setting = NULL;
  if (!hark_settings_get_string(settings, "path", plugin->path, &setting, error))
    return NULL;
  SqliteStore *s = g_new0(SqliteStore, 1);
  g_mutex_init(&s->lock);
  s->path = hark_config_state_path(
    state_dir != NULL ? state_dir : hark_context_state_dir(plugin->ctx), setting);
  if (!create_private(s->path, error)) {
    sqlite_store_close(s);
    return NULL;
  }
  /* NOMUTEX: the store's own mutex already serialises every use of the connection. */
  int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    set_db_error(s, rc, error);
  if (rc != SQLITE_OK || !configure(s, error) || !migrate(s, error) ||
      !prepare_statements(s, error)) {
    sqlite_store_close(s);
    return NULL;
  }
  return s;
}

/* ---- users ------------------------------------------------------------------------------- */

static gboolean
sqlite_user_create(gpointer store, const char *name, const char *name_key, const char *account_id,
                   const char *password_hash, gint64 now, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  if (stmt_exec(s, STMT_USER_CREATE,
                PARAMS(TEXT(name), TEXT(name_key), TEXT(account_id), TEXT(password_hash), INT(now)),
                error) >= 0)
    return TRUE;
  hark_store_reword_exists(error, "user '%s' exists already", name_key);
  return FALSE;
}

static HarkStoreUser *
sqlite_user_get(gpointer store, const char *name_key, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt = stmt_bind(s, STMT_USER_GET, PARAMS(TEXT(name_key)), error);
  int rc = stmt != NULL ? stmt_step(s, stmt, error) : -1;
  HarkStoreUser *user = NULL;
  if (rc == SQLITE_ROW) {
    user = g_new0(HarkStoreUser, 1);
    user->name = column_string(stmt, 0);
    user->name_key = column_string(stmt, 1);
    user->password_hash = column_string(stmt, 2);
    user->created = sqlite3_column_int64(stmt, 3);
    user->failed_logins = sqlite3_column_int64(stmt, 4);
    user->locked_until = sqlite3_column_int64(stmt, 5);
    user->account_id = column_string(stmt, 6);
  } else if (rc == SQLITE_DONE) {
    hark_store_set_no_user(error, name_key);
  }
  if (stmt != NULL)
    sqlite3_reset(stmt);
  return user;
}

static gboolean
sqlite_user_set_password(gpointer store, const char *name_key, const char *password_hash,
                         gboolean revoke_others, const char *keep_device_id, gint64 now,
                         gint64 *revoked, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gint64 count = 0;
  gboolean ok = begin(s, error) && exec_on_user(s, STMT_USER_SET_PASSWORD, name_key,
                                                PARAMS(TEXT(name_key), TEXT(password_hash)), error);
  if (ok && revoke_others)
    ok = (count = stmt_exec(s, STMT_DEVICES_REVOKE_OTHERS,
                            PARAMS(TEXT(name_key), TEXT(keep_device_id), INT(now)), error)) >= 0;
  if (!finish(s, ok, error))
    return FALSE;
  if (revoked != NULL)
    *revoked = count;
  return TRUE;
}

static gboolean
sqlite_user_delete(gpointer store, const char *name_key, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  /* The user's own devices and buddies go with the row (ON DELETE CASCADE); the lists
   * that name them change, so their revisions go up before those entries go. */
  gboolean ok = begin(s, error) &&
                exec_on_user(s, STMT_USER_DELETE, name_key, PARAMS(TEXT(name_key)), error) &&
                stmt_exec(s, STMT_LISTS_NAMING_BUMP, PARAMS(TEXT(name_key)), error) >= 0 &&
                stmt_exec(s, STMT_LISTS_NAMING_DELETE, PARAMS(TEXT(name_key)), error) >= 0;
  return finish(s, ok, error);
}

static gboolean
sqlite_user_note_failure(gpointer store, const char *name_key, gint64 lock_until,
                         gint64 *failed_logins, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gint64 count = 0;
  if (!stmt_int(s, STMT_USER_NOTE_FAILURE, name_key, PARAMS(TEXT(name_key), INT(lock_until)),
                &count, error))
    return FALSE;
  if (failed_logins != NULL)
    *failed_logins = count;
  return TRUE;
}

static gboolean
sqlite_user_note_login(gpointer store, const char *name_key, const char *device_id,
                       const char *device_name, gint64 now, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gboolean ok =
    begin(s, error) &&
    exec_on_user(s, STMT_USER_NOTE_LOGIN, name_key, PARAMS(TEXT(name_key)), error) &&
    stmt_exec(s, STMT_DEVICE_UPSERT,
              PARAMS(TEXT(name_key), TEXT(device_id), TEXT(device_name), INT(now)), error) >= 0;
  return finish(s, ok, error);
}

static GPtrArray *
sqlite_users_find(gpointer store, const char *prefix_key, guint limit, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt = stmt_bind(s, STMT_USERS_FIND, PARAMS(TEXT(prefix_key), INT(limit)), error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  int rc;
  while ((rc = stmt_step(s, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(names, column_string(stmt, 0));
  sqlite3_reset(stmt);
  return rc == SQLITE_DONE ? g_steal_pointer(&names) : NULL;
}

/* ---- devices ------------------------------------------------------------------------------ */

/* The device of the statement's current row (columns: id, name, first, last, revoked). */
static HarkStoreDevice *
device_from_row(sqlite3_stmt *stmt)
{
  HarkStoreDevice *device = g_new0(HarkStoreDevice, 1);
  device->device_id = column_string(stmt, 0);
  device->name = column_string(stmt, 1);
  device->first_seen = sqlite3_column_int64(stmt, 2);
  device->last_seen = sqlite3_column_int64(stmt, 3);
  device->revoked = sqlite3_column_int64(stmt, 4);
  return device;
}

static GPtrArray *
sqlite_devices_list(gpointer store, const char *name_key, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt = stmt_bind(s, STMT_DEVICES_LIST, PARAMS(TEXT(name_key)), error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) devices =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_device_free);
  gboolean found = FALSE;
  int rc;
  while ((rc = stmt_step(s, stmt, error)) == SQLITE_ROW) {
    found = TRUE;
    if (sqlite3_column_type(stmt, 0) != SQLITE_NULL)
      g_ptr_array_add(devices, device_from_row(stmt));
  }
  sqlite3_reset(stmt);
  if (rc == SQLITE_DONE && !found)
    hark_store_set_no_user(error, name_key);
  return rc == SQLITE_DONE && found ? g_steal_pointer(&devices) : NULL;
}

static HarkStoreDevice *
sqlite_device_get(gpointer store, const char *name_key, const char *device_id, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt =
    stmt_bind(s, STMT_DEVICE_GET, PARAMS(TEXT(name_key), TEXT(device_id)), error);
  int rc = stmt != NULL ? stmt_step(s, stmt, error) : -1;
  HarkStoreDevice *device = rc == SQLITE_ROW ? device_from_row(stmt) : NULL;
  if (rc == SQLITE_DONE)
    hark_store_set_no_device(error, name_key, device_id);
  if (stmt != NULL)
    sqlite3_reset(stmt);
  return device;
}

/* A change to one device: NOT_FOUND when there is no such device. */
static gboolean
exec_on_device(SqliteStore *s, StmtId id, const char *name_key, const char *device_id, gint64 now,
               GError **error)
{
  gint64 changed = stmt_exec(s, id, PARAMS(TEXT(name_key), TEXT(device_id), INT(now)), error);
  if (changed == 0)
    hark_store_set_no_device(error, name_key, device_id);
  return changed > 0;
}

static gboolean
sqlite_device_seen(gpointer store, const char *name_key, const char *device_id, gint64 now,
                   GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  return exec_on_device(s, STMT_DEVICE_SEEN, name_key, device_id, now, error);
}

static gboolean
sqlite_device_revoke(gpointer store, const char *name_key, const char *device_id, gint64 now,
                     GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  return exec_on_device(s, STMT_DEVICE_REVOKE, name_key, device_id, now, error);
}

/* ---- buddy lists ------------------------------------------------------------------------- */

static GPtrArray *
sqlite_buddies_get(gpointer store, const char *name_key, gint64 *revision, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt = stmt_bind(s, STMT_BUDDIES_GET, PARAMS(TEXT(name_key)), error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) buddies =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_buddy_free);
  gboolean found = FALSE;
  int rc;
  while ((rc = stmt_step(s, stmt, error)) == SQLITE_ROW) {
    found = TRUE;
    if (revision != NULL)
      *revision = sqlite3_column_int64(stmt, 0);
    if (sqlite3_column_type(stmt, 1) != SQLITE_NULL)
      g_ptr_array_add(buddies, hark_store_buddy_new((const char *)sqlite3_column_text(stmt, 1),
                                                    (const char *)sqlite3_column_text(stmt, 2)));
  }
  sqlite3_reset(stmt);
  if (rc == SQLITE_DONE && !found)
    hark_store_set_no_user(error, name_key);
  return rc == SQLITE_DONE && found ? g_steal_pointer(&buddies) : NULL;
}

/* Each operation's statement and how many of (user, buddy, alias) it takes. */
static const struct {
  StmtId stmt;
  gsize n_params;
} buddy_ops[] = {
  [HARK_BUDDY_ADD] = { STMT_BUDDY_ADD, 3 },
  [HARK_BUDDY_REMOVE] = { STMT_BUDDY_REMOVE, 2 },
  [HARK_BUDDY_RENAME] = { STMT_BUDDY_RENAME, 3 },
};

/* The change itself, inside the transaction: EXISTS or NOT_FOUND for the buddy. */
static gboolean
apply_buddy_op(SqliteStore *s, const char *name_key, HarkBuddyOp op, const char *buddy_key,
               const char *alias, GError **error)
{
  const Param params[] = { TEXT(name_key), TEXT(buddy_key), TEXT(alias) };
  gint64 changed = stmt_exec(s, buddy_ops[op].stmt, params, buddy_ops[op].n_params, error);
  return hark_store_buddy_change_result(changed, name_key, buddy_key, error);
}

static gboolean
sqlite_buddies_change(gpointer store, const char *name_key, HarkBuddyOp op, const char *buddy_key,
                      const char *alias, gint64 expected_revision, gint64 *new_revision,
                      GError **error)
{
  g_return_val_if_fail(op < G_N_ELEMENTS(buddy_ops), FALSE);
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gint64 current = 0, next = 0;
  gboolean ok = begin(s, error) &&
                stmt_int(s, STMT_REVISION_GET, name_key, PARAMS(TEXT(name_key)), &current, error) &&
                hark_store_check_revision(current, expected_revision, name_key, error) &&
                apply_buddy_op(s, name_key, op, buddy_key, alias, error) &&
                stmt_int(s, STMT_REVISION_BUMP, name_key, PARAMS(TEXT(name_key)), &next, error);
  if (!finish(s, ok, error))
    return FALSE;
  if (new_revision != NULL)
    *new_revision = next;
  return TRUE;
}

/* ---- contact requests and blocks ---------------------------------------------------------- */

static GPtrArray *
sqlite_requests_list(gpointer store, const char *name_key, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt = stmt_bind(s, STMT_REQUESTS_LIST, PARAMS(TEXT(name_key)), error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) requests =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_request_free);
  gboolean found = FALSE;
  int rc;
  while ((rc = stmt_step(s, stmt, error)) == SQLITE_ROW) {
    found = TRUE;
    if (sqlite3_column_type(stmt, 0) != SQLITE_NULL)
      g_ptr_array_add(requests, hark_store_request_new((const char *)sqlite3_column_text(stmt, 0),
                                                       (const char *)sqlite3_column_text(stmt, 1),
                                                       (const char *)sqlite3_column_text(stmt, 2),
                                                       sqlite3_column_int64(stmt, 3),
                                                       sqlite3_column_int64(stmt, 4)));
  }
  sqlite3_reset(stmt);
  if (rc == SQLITE_DONE && !found)
    hark_store_set_no_user(error, name_key);
  return rc == SQLITE_DONE && found ? g_steal_pointer(&requests) : NULL;
}

/* NOT_FOUND for whichever of the two users does not exist. */
static gboolean
both_exist(SqliteStore *s, const char *a_key, const char *b_key, GError **error)
{
  gint64 revision = 0;
  return stmt_int(s, STMT_REVISION_GET, a_key, PARAMS(TEXT(a_key)), &revision, error) &&
         stmt_int(s, STMT_REVISION_GET, b_key, PARAMS(TEXT(b_key)), &revision, error);
}

static gboolean
sqlite_request_send(gpointer store, const char *from_key, const char *to_key, const char *message,
                    guint max_pending, gint64 now, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  /* Inserted first, then counted (and rolled back when over): asking again while a
   * request waits is EXISTS, not a new pending request. */
  gint64 pending = 0, changed = -1;
  gboolean ok =
    begin(s, error) && both_exist(s, from_key, to_key, error) &&
    (changed = stmt_exec(s, STMT_REQUEST_UPSERT,
                         PARAMS(TEXT(from_key), TEXT(to_key), TEXT(message), INT(now)), error)) >
      0 &&
    stmt_int(s, STMT_REQUESTS_PENDING_FROM, from_key, PARAMS(TEXT(from_key)), &pending, error);
  if (changed == 0)
    hark_store_set_request_pending(error, from_key, to_key);
  if (ok && pending > max_pending) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_LIMIT,
                "'%s' has %u pending requests already", from_key, max_pending);
    ok = FALSE;
  }
  return finish(s, ok, error);
}

/* NOT_FOUND when the statement changed no request. */
static gboolean
exec_on_request(SqliteStore *s, StmtId id, const char *from_key, const char *to_key,
                const Param *params, gsize n_params, GError **error)
{
  gint64 changed = stmt_exec(s, id, params, n_params, error);
  if (changed == 0)
    hark_store_set_no_request(error, from_key, to_key);
  return changed > 0;
}

/* Each of the two gains the other, both revisions go up, and the requests go. */
static gboolean
make_buddies(SqliteStore *s, const char *a_key, const char *b_key, GError **error)
{
  gint64 revision = 0;
  return stmt_exec(s, STMT_REQUESTS_BETWEEN_DELETE, PARAMS(TEXT(a_key), TEXT(b_key)), error) >= 0 &&
         stmt_exec(s, STMT_BUDDY_ADD_IF_ABSENT, PARAMS(TEXT(a_key), TEXT(b_key)), error) >= 0 &&
         stmt_exec(s, STMT_BUDDY_ADD_IF_ABSENT, PARAMS(TEXT(b_key), TEXT(a_key)), error) >= 0 &&
         stmt_int(s, STMT_REVISION_BUMP, a_key, PARAMS(TEXT(a_key)), &revision, error) &&
         stmt_int(s, STMT_REVISION_BUMP, b_key, PARAMS(TEXT(b_key)), &revision, error);
}

static gboolean
sqlite_request_answer(gpointer store, const char *to_key, const char *from_key, gboolean accept,
                      gint64 now, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  /* Declining first also checks that the request is pending; an accepted one then goes. */
  gboolean ok = begin(s, error) &&
                exec_on_request(s, STMT_REQUEST_DECLINE, from_key, to_key,
                                PARAMS(TEXT(from_key), TEXT(to_key), INT(now)), error) &&
                (!accept || make_buddies(s, to_key, from_key, error));
  return finish(s, ok, error);
}

static gboolean
sqlite_request_cancel(gpointer store, const char *from_key, const char *to_key, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  return exec_on_request(s, STMT_REQUEST_WITHDRAW, from_key, to_key,
                         PARAMS(TEXT(from_key), TEXT(to_key)), error);
}

/* Blocking: the block, their pending request declined, ours withdrawn, their entry gone. */
static gboolean
block_add(SqliteStore *s, const char *name_key, const char *other_key, gint64 now, GError **error)
{
  gint64 removed = 0, revision = 0;
  return stmt_exec(s, STMT_BLOCK_ADD, PARAMS(TEXT(name_key), TEXT(other_key)), error) >= 0 &&
         stmt_exec(s, STMT_REQUEST_DECLINE, PARAMS(TEXT(other_key), TEXT(name_key), INT(now)),
                   error) >= 0 &&
         stmt_exec(s, STMT_REQUEST_WITHDRAW, PARAMS(TEXT(name_key), TEXT(other_key)), error) >= 0 &&
         (removed =
            stmt_exec(s, STMT_BUDDY_REMOVE, PARAMS(TEXT(name_key), TEXT(other_key)), error)) >= 0 &&
         (removed == 0 ||
          stmt_int(s, STMT_REVISION_BUMP, name_key, PARAMS(TEXT(name_key)), &revision, error));
}

static gboolean
block_remove(SqliteStore *s, const char *name_key, const char *other_key, gint64 now,
             GError **error)
{
  gint64 changed = stmt_exec(s, STMT_BLOCK_REMOVE, PARAMS(TEXT(name_key), TEXT(other_key)), error);
  if (changed == 0)
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND, "'%s' does not block '%s'",
                name_key, other_key);
  return changed > 0 && stmt_exec(s, STMT_REQUEST_DECLINE,
                                  PARAMS(TEXT(other_key), TEXT(name_key), INT(now)), error) >= 0;
}

static gboolean
sqlite_block_set(gpointer store, const char *name_key, const char *other_key, gboolean blocked,
                 gint64 now, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gboolean ok = begin(s, error) && both_exist(s, name_key, other_key, error) &&
                (blocked ? block_add(s, name_key, other_key, now, error)
                         : block_remove(s, name_key, other_key, now, error));
  return finish(s, ok, error);
}

static GPtrArray *
sqlite_blocks_list(gpointer store, const char *name_key, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt = stmt_bind(s, STMT_BLOCKS_LIST, PARAMS(TEXT(name_key)), error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  gboolean found = FALSE;
  int rc;
  while ((rc = stmt_step(s, stmt, error)) == SQLITE_ROW) {
    found = TRUE;
    if (sqlite3_column_type(stmt, 1) != SQLITE_NULL)
      g_ptr_array_add(names, column_string(stmt, 1));
  }
  sqlite3_reset(stmt);
  if (rc == SQLITE_DONE && !found)
    hark_store_set_no_user(error, name_key);
  return rc == SQLITE_DONE && found ? g_steal_pointer(&names) : NULL;
}

/* ---- certificates and held messages ------------------------------------------------------- */

static gboolean
sqlite_device_set_certificate(gpointer store, const char *name_key, const char *device_id,
                              const char *certificate, gint64 expires, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gint64 changed =
    stmt_exec(s, STMT_DEVICE_SET_CERTIFICATE,
              PARAMS(TEXT(name_key), TEXT(device_id), TEXT(certificate), INT(expires)), error);
  if (changed == 0)
    hark_store_set_no_device(error, name_key, device_id);
  return changed > 0;
}

static GPtrArray *
sqlite_device_certificates(gpointer store, const char *name_key, gint64 now, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt =
    stmt_bind(s, STMT_DEVICE_CERTIFICATES, PARAMS(TEXT(name_key), INT(now)), error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) list =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_certificate_free);
  gboolean found = FALSE;
  int rc;
  while ((rc = stmt_step(s, stmt, error)) == SQLITE_ROW) {
    found = TRUE;
    if (sqlite3_column_type(stmt, 0) != SQLITE_NULL)
      g_ptr_array_add(list, hark_store_certificate_new((const char *)sqlite3_column_text(stmt, 0),
                                                       (const char *)sqlite3_column_text(stmt, 1),
                                                       sqlite3_column_int64(stmt, 2)));
  }
  sqlite3_reset(stmt);
  if (rc == SQLITE_DONE && !found)
    hark_store_set_no_user(error, name_key);
  return rc == SQLITE_DONE && found ? g_steal_pointer(&list) : NULL;
}

static HarkStoreDevice *
sqlite_device_find(gpointer store, const char *device_id, char **name_key, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  sqlite3_stmt *stmt = stmt_bind(s, STMT_DEVICE_FIND, PARAMS(TEXT(device_id)), error);
  int rc = stmt != NULL ? stmt_step(s, stmt, error) : -1;
  HarkStoreDevice *device = rc == SQLITE_ROW ? device_from_row(stmt) : NULL;
  if (device != NULL && name_key != NULL)
    *name_key = column_string(stmt, 5);
  if (rc == SQLITE_DONE)
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND, "no device '%s'", device_id);
  if (stmt != NULL)
    sqlite3_reset(stmt);
  return device;
}

/* Count and bytes of one usage statement (?1 a name, ?2 now); zero for a NULL name. */
static gboolean
usage_of(SqliteStore *s, StmtId id, const char *name, gint64 now, HarkStoreUsage *usage,
         GError **error)
{
  *usage = (HarkStoreUsage){ 0, 0 };
  if (name == NULL)
    return TRUE;
  sqlite3_stmt *stmt = stmt_bind(s, id, PARAMS(TEXT(name), INT(now)), error);
  int rc = stmt != NULL ? stmt_step(s, stmt, error) : -1;
  if (rc == SQLITE_ROW)
    *usage = (HarkStoreUsage){ sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1) };
  if (stmt != NULL)
    sqlite3_reset(stmt);
  return rc == SQLITE_ROW;
}

static gboolean
usage_both(SqliteStore *s, const char *sender_key, const char *device_id, gint64 now,
           HarkStoreUsage *sender, HarkStoreUsage *device, GError **error)
{
  return usage_of(s, STMT_USAGE_SENDER, sender_key, now, sender, error) &&
         usage_of(s, STMT_USAGE_DEVICE, device_id, now, device, error);
}

static gboolean
sqlite_messages_usage(gpointer store, const char *sender_key, const char *device_id, gint64 now,
                      HarkStoreUsage *sender, HarkStoreUsage *device, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  HarkStoreUsage ignored_sender, ignored_device;
  return usage_both(s, sender_key, device_id, now, sender ? sender : &ignored_sender,
                    device ? device : &ignored_device, error);
}

static gboolean
user_exists(SqliteStore *s, const char *name_key, GError **error)
{
  gint64 count = 0;
  if (!stmt_int(s, STMT_USER_EXISTS, name_key, PARAMS(TEXT(name_key)), &count, error))
    return FALSE;
  if (count == 0)
    hark_store_set_no_user(error, name_key);
  return count > 0;
}

static gboolean
sqlite_message_hold(gpointer store, const HarkStoreMessage *m, const HarkStoreMessageLimits *limits,
                    GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  HarkStoreUsage sender, device;
  gboolean ok =
    begin(s, error) && user_exists(s, m->user_key, error) &&
    usage_both(s, m->sender_key, m->device_id, m->held_at, &sender, &device, error) &&
    hark_store_check_message_limits(limits, &sender, &device, g_bytes_get_size(m->envelope),
                                    error) &&
    stmt_exec(s, STMT_MESSAGE_INSERT,
              PARAMS(TEXT(m->id), TEXT(m->device_id), TEXT(m->user_key), TEXT(m->sender_key),
                     TEXT(m->sender_device), BLOB(m->envelope), INT(m->held_at), INT(m->expires)),
              error) > 0;
  return finish(s, ok, error);
}

static HarkStoreMessage *
message_from_row(sqlite3_stmt *stmt)
{
  g_autoptr(GBytes) envelope =
    g_bytes_new(sqlite3_column_blob(stmt, 5), (gsize)sqlite3_column_bytes(stmt, 5));
  return hark_store_message_new(
    (const char *)sqlite3_column_text(stmt, 0), (const char *)sqlite3_column_text(stmt, 1),
    (const char *)sqlite3_column_text(stmt, 2), (const char *)sqlite3_column_text(stmt, 3),
    (const char *)sqlite3_column_text(stmt, 4), envelope, sqlite3_column_int64(stmt, 6),
    sqlite3_column_int64(stmt, 7));
}

static GPtrArray *
sqlite_messages_list(gpointer store, const char *device_id, gint64 now, guint limit, gboolean *more,
                     GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  /* One more than asked: whether there are more. */
  sqlite3_stmt *stmt = stmt_bind(s, STMT_MESSAGES_LIST,
                                 PARAMS(TEXT(device_id), INT(now), INT((gint64)limit + 1)), error);
  if (stmt == NULL)
    return NULL;
  g_autoptr(GPtrArray) list =
    g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_message_free);
  gboolean over = FALSE;
  int rc;
  while ((rc = stmt_step(s, stmt, error)) == SQLITE_ROW) {
    if (list->len == limit)
      over = TRUE;
    else
      g_ptr_array_add(list, message_from_row(stmt));
  }
  sqlite3_reset(stmt);
  if (more != NULL)
    *more = over;
  return rc == SQLITE_DONE ? g_steal_pointer(&list) : NULL;
}

static gboolean
sqlite_messages_delete(gpointer store, const char *device_id, const char *const *ids, guint n_ids,
                       gint64 *deleted, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gint64 total = 0;
  gboolean ok = begin(s, error);
  for (guint i = 0; ok && i < n_ids; i++) {
    gint64 changed =
      stmt_exec(s, STMT_MESSAGE_DELETE, PARAMS(TEXT(device_id), TEXT(ids[i])), error);
    ok = changed >= 0;
    total += MAX(changed, 0);
  }
  if (!finish(s, ok, error))
    return FALSE;
  if (deleted != NULL)
    *deleted = total;
  return TRUE;
}

static gboolean
sqlite_messages_expire(gpointer store, gint64 now, gint64 *deleted, GError **error)
{
  SqliteStore *s = store;
  HOLD_LOCK(s);
  gint64 changed = stmt_exec(s, STMT_MESSAGES_EXPIRE, PARAMS(INT(now)), error);
  if (changed >= 0 && deleted != NULL)
    *deleted = changed;
  return changed >= 0;
}

/* ---- the plugin -------------------------------------------------------------------------- */

static const HarkStoreInterface sqlite_store = {
  .version = HARK_STORE_INTERFACE_VERSION,
  .open = sqlite_store_open,
  .close = sqlite_store_close,
  .user_create = sqlite_user_create,
  .user_get = sqlite_user_get,
  .user_set_password = sqlite_user_set_password,
  .user_delete = sqlite_user_delete,
  .user_note_failure = sqlite_user_note_failure,
  .user_note_login = sqlite_user_note_login,
  .users_find = sqlite_users_find,
  .buddies_get = sqlite_buddies_get,
  .buddies_change = sqlite_buddies_change,
  .devices_list = sqlite_devices_list,
  .device_get = sqlite_device_get,
  .device_seen = sqlite_device_seen,
  .device_revoke = sqlite_device_revoke,
  .requests_list = sqlite_requests_list,
  .request_send = sqlite_request_send,
  .request_answer = sqlite_request_answer,
  .request_cancel = sqlite_request_cancel,
  .block_set = sqlite_block_set,
  .blocks_list = sqlite_blocks_list,
  .device_set_certificate = sqlite_device_set_certificate,
  .device_certificates = sqlite_device_certificates,
  .device_find = sqlite_device_find,
  .message_hold = sqlite_message_hold,
  .messages_list = sqlite_messages_list,
  .messages_delete = sqlite_messages_delete,
  .messages_usage = sqlite_messages_usage,
  .messages_expire = sqlite_messages_expire,
};

static void
plugin_free(SqlitePlugin *plugin)
{
  g_free(plugin->path);
  g_free(plugin);
}

static gboolean
sqlite_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  SqlitePlugin *plugin = g_new0(SqlitePlugin, 1);
  plugin->ctx = ctx;
  if (!hark_settings_get_string(settings, "path", DEFAULT_PATH, &plugin->path, error) ||
      !hark_context_register(ctx, HARK_KIND_STORE, STORE_NAME, HARK_RANK_PRIMARY, &sqlite_store,
                             plugin, error)) {
    plugin_free(plugin);
    return FALSE;
  }
  hark_settings_warn_unknown(settings, hark_context_plugin_name(ctx), known_settings);
  hark_context_set_plugin_data(ctx, plugin);
  return TRUE;
}

/* The plugin's defaults are this context's data, not a global: two nodes in one process
 * share this code but not their settings. */
static void
sqlite_fini(HarkContext *ctx)
{
  plugin_free(hark_context_get_plugin_data(ctx));
}

HARK_PLUGIN_DEFINE(.name = "sqlite", .version = HARK_VERSION,
                   .description = "account store in one SQLite file (the login server's default)",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_STORE, .init = sqlite_init,
                   .fini = sqlite_fini);
