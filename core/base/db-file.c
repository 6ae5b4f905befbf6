/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* db-file.c: opening the core's SQLite files (db-file.h).
 *
 * A file is made 0600 before SQLite opens it (its -wal and -shm files take the same
 * mode; SQLite alone would use the umask) and refused when other users can reach it. It
 * is marked with its kind's PRAGMA application_id, so a damaged file, another kind's or
 * another program's database is refused with a clear error instead of being written
 * into. The schema is versioned with PRAGMA user_version and migrated at open, one
 * transaction per step, the version read inside it so a step never runs twice. */
#include "db-file.h"

#include "file-util.h"

#define BUSY_TIMEOUT_MS 5000

gboolean
hark_db_set_error(const HarkDbKind *kind, sqlite3 *db, const char *path, int rc, GError **error)
{
  int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    g_set_error(error, kind->domain(), HARK_DB_ERROR_CORRUPT,
                "%s %s: the file is damaged or not a database (%s); move it away to start %s",
                kind->label, path, sqlite3_errstr(rc), kind->fresh);
  else
    g_set_error(error, kind->domain(), HARK_DB_ERROR_DATABASE, "%s %s: %s (%s)", kind->label, path,
                sqlite3_errmsg(db), sqlite3_errstr(rc));
  return FALSE;
}

gboolean
hark_db_exec(const HarkDbKind *kind, sqlite3 *db, const char *path, const char *sql, GError **error)
{
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK || hark_db_set_error(kind, db, path, rc, error);
}

static gboolean
query_int(const HarkDbKind *kind, sqlite3 *db, const char *path, const char *sql, gint64 *value,
          GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW)
    *value = sqlite3_column_int64(stmt, 0);
  else
    hark_db_set_error(kind, db, path, rc, error);
  sqlite3_finalize(stmt);
  return rc == SQLITE_ROW;
}

static gboolean
open_private(const HarkDbKind *kind, const char *path, GError **error)
{
  g_autoptr(GError) local = NULL;
  HarkFilePrivacy found = hark_file_make_private(path, kind->contents, &local);
  if (found == HARK_FILE_PRIVATE)
    return TRUE;
  g_set_error(error, kind->domain(),
              found == HARK_FILE_SHARED ? HARK_DB_ERROR_PERMISSIONS : HARK_DB_ERROR_IO, "%s: %s",
              kind->label, local->message);
  return FALSE;
}

/* A file is ours when it carries the kind's application id, or is still empty (new).
 * Reading the id is also where a file that is not a database shows. */
static gboolean
check_ours(const HarkDbKind *kind, sqlite3 *db, const char *path, GError **error)
{
  gint64 id = 0, tables = 0;
  if (!query_int(kind, db, path, "PRAGMA application_id", &id, error) ||
      !query_int(kind, db, path, "SELECT count(*) FROM sqlite_schema", &tables, error))
    return FALSE;
  if (id == kind->application_id || (id == 0 && tables == 0))
    return TRUE;
  g_set_error(error, kind->domain(), HARK_DB_ERROR_CORRUPT,
              "%s %s: another program's database (application id %" G_GINT64_FORMAT
              ", %" G_GINT64_FORMAT " tables); move it away to start %s",
              kind->label, path, id, tables, kind->fresh);
  return FALSE;
}

/* One migration step if one is due; *done once the schema is current. */
static gboolean
migrate_step(const HarkDbKind *kind, sqlite3 *db, const char *path, gboolean *done, GError **error)
{
  gint64 version = 0;
  if (!hark_db_exec(kind, db, path, "BEGIN IMMEDIATE", error))
    return FALSE;
  gboolean ok = query_int(kind, db, path, "PRAGMA user_version", &version, error);
  if (ok && (version < 0 || version > (gint64)kind->n_migrations)) {
    g_set_error(error, kind->domain(), HARK_DB_ERROR_VERSION,
                "%s %s: schema version %" G_GINT64_FORMAT
                " is not one this hark knows (up to %" G_GSIZE_FORMAT "): update hark",
                kind->label, path, version, kind->n_migrations);
    ok = FALSE;
  }
  *done = ok && version == (gint64)kind->n_migrations;
  if (ok && !*done) {
    /* PRAGMA takes no parameters; the numbers are ours, not input. */
    g_autofree char *mark = g_strdup_printf("PRAGMA user_version = %" G_GINT64_FORMAT
                                            "; PRAGMA application_id = %" G_GUINT32_FORMAT,
                                            version + 1, kind->application_id);
    ok = hark_db_exec(kind, db, path, kind->migrations[version], error) &&
         hark_db_exec(kind, db, path, mark, error);
  }
  if (ok)
    return hark_db_exec(kind, db, path, "COMMIT", error);
  hark_db_exec(kind, db, path, "ROLLBACK", NULL);
  return FALSE;
}

/* SQLite gives each connection's page cache a first block of 20 pages (86 KiB) at its
 * first read, sized for a database that is read at once; a node's files (the message
 * history, the call log) are small and read a few pages at a time, so pages are taken one
 * by one instead. Set before SQLite starts (sqlite3_config is refused after that, when
 * another part of the process started it first: then nothing changes). */
static void
lean_page_cache(void)
{
  static gsize done;
  if (g_once_init_enter(&done)) {
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    g_once_init_leave(&done, 1);
  }
}

sqlite3 *
hark_db_open(const HarkDbKind *kind, const char *path, GError **error)
{
  lean_page_cache();
  if (!open_private(kind, path, error))
    return NULL;
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(
    path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
  gboolean ok = rc == SQLITE_OK || hark_db_set_error(kind, db, path, rc, error);
  if (ok) {
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    ok = check_ours(kind, db, path, error) &&
         hark_db_exec(kind, db, path, "PRAGMA journal_mode = WAL", error);
  }
  gboolean done = FALSE;
  while (ok && !done)
    ok = migrate_step(kind, db, path, &done, error);
  if (!ok) {
    sqlite3_close(db);
    return NULL;
  }
  return db;
}

gboolean
hark_db_is_text(const char *text, gsize max)
{
  if (text == NULL || *text == '\0' || strlen(text) > max || !g_utf8_validate(text, -1, NULL))
    return FALSE;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return FALSE;
  return TRUE;
}
