/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* postgres.c: the `postgres` store plugin (hark/store.h): the login server's accounts,
 * devices, buddy lists and held messages in PostgreSQL, for a login server that outgrows one machine:
 * several login-server processes can share one database.
 *
 * Settings: "conninfo" (a libpq connection string, required: here at init or in the
 * settings given to open(), which override these), "connections" (the pool size of an
 * opened store, default 4).
 *
 * Every call is one transaction on a connection taken from a small pool, so worker threads
 * do not wait for each other. Counters change in the database in one statement
 * (failed_logins + 1 ... RETURNING), and a buddy-list change locks the user's row
 * (SELECT ... FOR UPDATE) before it checks the revision, so concurrent processes never
 * lose an update. The schema is versioned in the table schema_version and migrated at
 * open under a transaction-level advisory lock, so processes starting together migrate
 * once. Parameters always go separately from the SQL (PQexecParams): no SQL is built from
 * a name. A connection found broken is reset once, at the start of a transaction, where
 * doing it again cannot apply a change twice. */
#include <hark/hark.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#define STORE_NAME "postgres"
#define DEFAULT_CONNECTIONS 4
#define MAX_CONNECTIONS 64
#define MAX_PARAMS 8
/* The advisory lock key that serialises migrations: "hark" in ASCII. Advisory locks are
 * per database, so unrelated databases on one server do not wait for each other. */
#define MIGRATION_LOCK_KEY "1751216747"
#define SQLSTATE_UNIQUE_VIOLATION "23505"

static const char *const known_settings[] = { "conninfo", "connections", NULL };

typedef struct {
  HarkContext *ctx;
  /* from init: the defaults of every open() */
  char *conninfo;
  gint64 connections;
} PgPlugin;

typedef struct {
  GAsyncQueue *idle; /* PGconn* that no call is using */
  guint n_connections;
} PgStore;

/* ---- schema ------------------------------------------------------------------------------ */

/* Migration steps, oldest first: step i takes the database from version i to i + 1.
 * Append new steps; never edit a released one. Names collate as "C" (byte order), the
 * order users_find promises and the sqlite store also gives, whatever the database's
 * locale. */
static const char *const migrations[] = {
  /* 1: accounts, the devices they logged in from, buddy lists */
  "CREATE TABLE users ("
  "  name text NOT NULL,"
  "  name_key text COLLATE \"C\" PRIMARY KEY,"
  "  password_hash text NOT NULL,"
  "  created bigint NOT NULL,"
  "  failed_logins bigint NOT NULL DEFAULT 0,"
  "  locked_until bigint NOT NULL DEFAULT 0,"
  "  buddy_revision bigint NOT NULL DEFAULT 0"
  ");"
  "CREATE TABLE devices ("
  "  user_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  device_id text NOT NULL,"
  "  device_name text NOT NULL,"
  "  last_login bigint NOT NULL,"
  "  PRIMARY KEY (user_key, device_id)"
  ");"
  /* buddy_key is not a foreign key: deleting a user must also bump the revision of every
   * list that named them, which user_delete does itself. */
  "CREATE TABLE buddies ("
  "  user_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  buddy_key text COLLATE \"C\" NOT NULL,"
  "  alias text NOT NULL,"
  "  PRIMARY KEY (user_key, buddy_key)"
  ");"
  "CREATE INDEX buddies_by_buddy ON buddies (buddy_key);",
  /* 2: an account id for every account (random, unique: a name registered again is
   * another account; existing ones get a version-4 UUID's 122 random bits, in hex), and
   * devices with their first login and revocation */
  "ALTER TABLE users ADD COLUMN account_id text;"
  "UPDATE users SET account_id = replace(gen_random_uuid()::text, '-', '');"
  "ALTER TABLE users ALTER COLUMN account_id SET NOT NULL;"
  "ALTER TABLE users ADD CONSTRAINT users_account_id_key UNIQUE (account_id);"
  "ALTER TABLE devices RENAME COLUMN last_login TO last_seen;"
  "ALTER TABLE devices ADD COLUMN first_seen bigint NOT NULL DEFAULT 0;"
  "ALTER TABLE devices ADD COLUMN revoked bigint NOT NULL DEFAULT 0;"
  "UPDATE devices SET first_seen = last_seen;",
  /* 3: contact requests (answered 0: pending; else when declined) and blocks; both go
   * with either user */
  "CREATE TABLE requests ("
  "  from_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  to_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  message text,"
  "  created bigint NOT NULL,"
  "  answered bigint NOT NULL DEFAULT 0,"
  "  PRIMARY KEY (from_key, to_key)"
  ");"
  "CREATE INDEX requests_by_to ON requests (to_key);"
  "CREATE TABLE blocks ("
  "  user_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  blocked_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  PRIMARY KEY (user_key, blocked_key)"
  ");"
  "CREATE INDEX blocks_by_blocked ON blocks (blocked_key);",
  /* 4: the last certificate issued to each device, devices found by id alone, and
   * messages held for offline devices (they go with their recipient user) */
  "ALTER TABLE devices ADD COLUMN certificate text;"
  "ALTER TABLE devices ADD COLUMN certificate_expires bigint NOT NULL DEFAULT 0;"
  "CREATE INDEX devices_by_id ON devices (device_id);"
  "CREATE TABLE held_messages ("
  "  id text PRIMARY KEY,"
  "  seq bigserial NOT NULL," /* the order they came in, within the same second */
  "  device_id text NOT NULL,"
  "  user_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  "  sender_key text COLLATE \"C\" NOT NULL,"
  "  sender_device text NOT NULL,"
  "  envelope bytea NOT NULL,"
  "  size bigint NOT NULL,"
  "  held_at bigint NOT NULL,"
  "  expires bigint NOT NULL"
  ");"
  "CREATE INDEX held_by_device ON held_messages (device_id, held_at, seq);"
  "CREATE INDEX held_by_sender ON held_messages (sender_key);"
  "CREATE INDEX held_by_user ON held_messages (user_key);"
  "CREATE INDEX held_by_expiry ON held_messages (expires);",
};

/* ---- statements -------------------------------------------------------------------------- */

/* An alias left out is the buddy's name as registered (their key when they do not exist). */
#define DEFAULT_ALIAS "coalesce($3::text, (SELECT name FROM users WHERE name_key = $2), $2)"

static const char sql_user_create[] =
  "INSERT INTO users (name, name_key, account_id, password_hash, created)"
  " VALUES ($1, $2, $3, $4, $5)";
static const char sql_user_get[] =
  "SELECT name, name_key, password_hash, created, failed_logins, locked_until, account_id"
  " FROM users WHERE name_key = $1";
static const char sql_user_set_password[] =
  "UPDATE users SET password_hash = $2 WHERE name_key = $1";
static const char sql_user_delete[] = "DELETE FROM users WHERE name_key = $1";
/* Every list that names the user loses the entry and goes up one revision, in one
 * statement. */
static const char sql_lists_naming_drop[] =
  "WITH gone AS (DELETE FROM buddies WHERE buddy_key = $1 RETURNING user_key)"
  " UPDATE users SET buddy_revision = buddy_revision + 1"
  " WHERE name_key IN (SELECT user_key FROM gone)";
static const char sql_user_note_failure[] =
  "UPDATE users SET failed_logins = failed_logins + 1, locked_until = greatest(locked_until, $2)"
  " WHERE name_key = $1 RETURNING failed_logins";
static const char sql_user_note_login[] =
  "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE name_key = $1";
static const char sql_device_upsert[] =
  "INSERT INTO devices (user_key, device_id, device_name, first_seen, last_seen)"
  " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_key, device_id) DO UPDATE"
  " SET device_name = excluded.device_name, last_seen = excluded.last_seen, revoked = 0";
/* $2 NULL keeps no device. */
static const char sql_devices_revoke_others[] =
  "UPDATE devices SET revoked = $3"
  " WHERE user_key = $1 AND revoked = 0 AND device_id IS DISTINCT FROM $2::text";
/* Like sql_buddies_get: one row with a NULL device for a user without devices. */
static const char sql_devices_list[] =
  "SELECT d.device_id, d.device_name, d.first_seen, d.last_seen, d.revoked FROM users u"
  " LEFT JOIN devices d ON d.user_key = u.name_key WHERE u.name_key = $1"
  " ORDER BY d.first_seen, d.device_id";
static const char sql_device_get[] =
  "SELECT device_id, device_name, first_seen, last_seen, revoked FROM devices"
  " WHERE user_key = $1 AND device_id = $2";
static const char sql_device_seen[] =
  "UPDATE devices SET last_seen = $3 WHERE user_key = $1 AND device_id = $2";
static const char sql_device_revoke[] =
  "UPDATE devices SET revoked = CASE revoked WHEN 0 THEN $3 ELSE revoked END"
  " WHERE user_key = $1 AND device_id = $2";
/* starts_with, not LIKE: '%' and '_' in a prefix are plain characters. The range condition
 * lets the primary key index start at the prefix. */
static const char sql_users_find[] =
  "SELECT name FROM users WHERE name_key >= $1 AND starts_with(name_key, $1)"
  " ORDER BY name_key LIMIT $2";
/* One statement, so the revision and the list come from the same snapshot. A user
 * without buddies gives one row with a NULL buddy; no user gives no row. */
static const char sql_buddies_get[] = "SELECT u.buddy_revision, b.buddy_key, b.alias FROM users u"
                                      " LEFT JOIN buddies b ON b.user_key = u.name_key"
                                      " WHERE u.name_key = $1 ORDER BY b.buddy_key";
/* FOR UPDATE: concurrent changes to one list (from any process) wait here, so each sees
 * the revision the previous one left. */
static const char sql_revision_lock[] =
  "SELECT buddy_revision FROM users WHERE name_key = $1 FOR UPDATE";
static const char sql_revision_bump[] =
  "UPDATE users SET buddy_revision = buddy_revision + 1 WHERE name_key = $1"
  " RETURNING buddy_revision";

/* Like sql_buddies_get: one row with NULL request columns for a user without any. */
static const char sql_requests_list[] =
  "SELECT r.from_key, r.to_key, r.message, r.created, r.answered FROM users u"
  " LEFT JOIN requests r ON r.from_key = u.name_key OR r.to_key = u.name_key"
  " WHERE u.name_key = $1 ORDER BY r.created, r.from_key, r.to_key";
/* The requester's row is locked first (FOR UPDATE), so concurrent requests of one user
 * (from any process) count one after the other against the limit. */
static const char sql_user_lock[] = "SELECT 0 FROM users WHERE name_key = $1 FOR UPDATE";
static const char sql_requests_pending_from[] =
  "SELECT count(*) FROM requests WHERE from_key = $1 AND answered = 0";
/* A declined request is asked again; a pending one stays as it is (no row changed). */
static const char sql_request_upsert[] =
  "INSERT INTO requests (from_key, to_key, message, created) VALUES ($1, $2, $3, $4)"
  " ON CONFLICT (from_key, to_key) DO UPDATE SET message = excluded.message,"
  " created = excluded.created, answered = 0 WHERE requests.answered <> 0";
static const char sql_request_decline[] =
  "UPDATE requests SET answered = $3 WHERE from_key = $1 AND to_key = $2 AND answered = 0";
static const char sql_request_withdraw[] =
  "DELETE FROM requests WHERE from_key = $1 AND to_key = $2 AND answered = 0";
static const char sql_requests_between_delete[] =
  "DELETE FROM requests WHERE (from_key = $1 AND to_key = $2) OR (from_key = $2 AND to_key = $1)";
static const char sql_buddy_add_if_absent[] =
  "INSERT INTO buddies (user_key, buddy_key, alias)"
  " SELECT $1, $2, name FROM users WHERE name_key = $2 ON CONFLICT DO NOTHING";
static const char sql_block_add[] =
  "INSERT INTO blocks (user_key, blocked_key) VALUES ($1, $2) ON CONFLICT DO NOTHING";
static const char sql_block_remove[] =
  "DELETE FROM blocks WHERE user_key = $1 AND blocked_key = $2";
static const char sql_blocks_list[] =
  "SELECT u.name_key, b.blocked_key FROM users u LEFT JOIN blocks b ON b.user_key = u.name_key"
  " WHERE u.name_key = $1 ORDER BY b.blocked_key";

static const char sql_device_set_certificate[] =
  "UPDATE devices SET certificate = $3, certificate_expires = $4"
  " WHERE user_key = $1 AND device_id = $2";
/* Like sql_devices_list: one row with a NULL device for a user without any. */
static const char sql_device_certificates[] =
  "SELECT d.device_id, d.certificate, d.certificate_expires FROM users u"
  " LEFT JOIN devices d ON d.user_key = u.name_key AND d.revoked = 0"
  " AND d.certificate IS NOT NULL AND d.certificate_expires > $2"
  " WHERE u.name_key = $1 ORDER BY d.first_seen, d.device_id";
static const char sql_device_find[] =
  "SELECT device_id, device_name, first_seen, last_seen, revoked, user_key FROM devices"
  " WHERE device_id = $1 AND revoked = 0 ORDER BY last_seen DESC, user_key LIMIT 1";
/* The envelope travels as hex text: every parameter here goes in text format. */
static const char sql_message_insert[] =
  "INSERT INTO held_messages (id, device_id, user_key, sender_key, sender_device, envelope,"
  " size, held_at, expires) VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'),"
  " length(decode($6, 'hex')), $7, $8)";
static const char sql_messages_list[] =
  "SELECT id, device_id, user_key, sender_key, sender_device, encode(envelope, 'hex'), held_at,"
  " expires FROM held_messages WHERE device_id = $1 AND expires > $2"
  " ORDER BY held_at, seq LIMIT $3";
static const char sql_messages_delete[] =
  "DELETE FROM held_messages WHERE device_id = $1 AND id = ANY ($2::text[])";
static const char sql_usage_sender[] = "SELECT count(*), coalesce(sum(size), 0) FROM held_messages"
                                       " WHERE sender_key = $1 AND expires > $2";
static const char sql_usage_device[] = "SELECT count(*), coalesce(sum(size), 0) FROM held_messages"
                                       " WHERE device_id = $1 AND expires > $2";
static const char sql_messages_expire[] = "DELETE FROM held_messages WHERE expires <= $1";

/* Each operation's statement and how many of (user, buddy, alias) it takes. */
static const struct {
  const char *sql;
  int n_params;
} buddy_ops[] = {
  [HARK_BUDDY_ADD] = { "INSERT INTO buddies (user_key, buddy_key, alias)"
                       " VALUES ($1, $2, " DEFAULT_ALIAS ")",
                       3 },
  [HARK_BUDDY_REMOVE] = { "DELETE FROM buddies WHERE user_key = $1 AND buddy_key = $2", 2 },
  [HARK_BUDDY_RENAME] = { "UPDATE buddies SET alias = " DEFAULT_ALIAS
                          " WHERE user_key = $1 AND buddy_key = $2",
                          3 },
};

/* A statement parameter: text (NULL is SQL NULL) or an integer. */
typedef struct {
  gboolean is_int;
  const char *text;
  gint64 number;
} Param;

#define TEXT(value) ((Param){ .text = (value) })
#define INT(value) ((Param){ .is_int = TRUE, .number = (value) })
#define PARAMS(...) (const Param[]){ __VA_ARGS__ }, G_N_ELEMENTS(((const Param[]){ __VA_ARGS__ }))

/* ---- errors ------------------------------------------------------------------------------ */

/* libpq's messages end with a newline (sometimes more than one line): keep the first. */
static char *
first_line(const char *message)
{
  const char *text = message != NULL && *message != '\0' ? message : "unknown error";
  return g_strndup(text, strcspn(text, "\n"));
}

static void
set_connection_error(PGconn *conn, const char *doing, GError **error)
{
  g_autofree char *message = first_line(PQerrorMessage(conn));
  g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND, "postgres store: %s: %s", doing,
              message);
}

/* A failed statement: a unique key taken is EXISTS, anything else BACKEND. */
static void
set_result_error(PGconn *conn, const PGresult *result, GError **error)
{
  if (result == NULL) {
    set_connection_error(conn, "query failed", error);
    return;
  }
  const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  g_autofree char *message = first_line(PQresultErrorMessage(result));
  HarkStoreError code = g_strcmp0(state, SQLSTATE_UNIQUE_VIOLATION) == 0 ? HARK_STORE_ERROR_EXISTS
                                                                         : HARK_STORE_ERROR_BACKEND;
  g_set_error(error, HARK_STORE_ERROR, code, "postgres store: %s", message);
}

/* ---- running statements ------------------------------------------------------------------ */

/* Run one statement with its parameters sent apart from it (text format): the result, or
 * NULL with error. */
static PGresult *
run(PGconn *conn, const char *sql, const Param *params, gsize n_params, GError **error)
{
  g_assert(n_params <= MAX_PARAMS);
  const char *values[MAX_PARAMS] = { NULL };
  char numbers[MAX_PARAMS][24];
  for (gsize i = 0; i < n_params; i++) {
    if (!params[i].is_int) {
      values[i] = params[i].text;
      continue;
    }
    g_snprintf(numbers[i], sizeof numbers[i], "%" G_GINT64_FORMAT, params[i].number);
    values[i] = numbers[i];
  }
  PGresult *result = PQexecParams(conn, sql, (int)n_params, NULL, values, NULL, NULL, 0);
  ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return result;
  set_result_error(conn, result, error);
  PQclear(result);
  return NULL;
}

/* Run a statement that returns no rows: the number of rows it changed, or -1 with error. */
static gint64
exec_count(PGconn *conn, const char *sql, const Param *params, gsize n_params, GError **error)
{
  PGresult *result = run(conn, sql, params, n_params, error);
  if (result == NULL)
    return -1;
  gint64 changed = g_ascii_strtoll(PQcmdTuples(result), NULL, 10);
  PQclear(result);
  return changed;
}

/* A change that names a user: NOT_FOUND when it changed no row. */
static gboolean
exec_on_user(PGconn *conn, const char *sql, const char *name_key, const Param *params,
             gsize n_params, GError **error)
{
  gint64 changed = exec_count(conn, sql, params, n_params, error);
  if (changed == 0)
    hark_store_set_no_user(error, name_key);
  return changed > 0;
}

static gint64
value_int(const PGresult *result, int row, int column)
{
  return g_ascii_strtoll(PQgetvalue(result, row, column), NULL, 10);
}

/* A statement giving one integer about name_key (a SELECT or a RETURNING): NOT_FOUND
 * when it gave no row. */
static gboolean
query_int(PGconn *conn, const char *sql, const char *name_key, gint64 *value, GError **error)
{
  PGresult *result = run(conn, sql, PARAMS(TEXT(name_key)), error);
  if (result == NULL)
    return FALSE;
  gboolean found = PQntuples(result) > 0;
  if (found)
    *value = value_int(result, 0, 0);
  else
    hark_store_set_no_user(error, name_key);
  PQclear(result);
  return found;
}

static gboolean
run_command(PGconn *conn, const char *sql, GError **error)
{
  PGresult *result = run(conn, sql, NULL, 0, error);
  PQclear(result);
  return result != NULL;
}

/* ---- connections and transactions -------------------------------------------------------- */

static void
on_notice(void *data, const char *message)
{
  g_autofree char *line = first_line(message);
  g_debug("postgres: %s", line);
}

/* Names travel as UTF-8 whatever the conninfo says; keywords after the expanded conninfo
 * override it, and PQreset keeps them. */
static PGconn *
connect_db(const char *conninfo, GError **error)
{
  static const char *const keywords[] = { "fallback_application_name", "dbname", "client_encoding",
                                          NULL };
  const char *const values[] = { "hark", conninfo, "UTF8", NULL };
  PGconn *conn = PQconnectdbParams(keywords, values, 1);
  if (PQstatus(conn) != CONNECTION_OK) {
    set_connection_error(conn, "cannot connect", error);
    PQfinish(conn);
    return NULL;
  }
  /* Notices (e.g. "relation already exists, skipping") are not for stderr. */
  PQsetNoticeProcessor(conn, on_notice, NULL);
  return conn;
}

/* BEGIN on conn. A connection that dropped (the server restarted, say) is reset once and
 * BEGIN tried again: nothing of this call has reached the database yet. */
static gboolean
begin_on(PGconn *conn, GError **error)
{
  if (PQstatus(conn) == CONNECTION_OK && run_command(conn, "BEGIN", NULL))
    return TRUE;
  if (PQstatus(conn) == CONNECTION_OK) /* a live connection refused BEGIN: say why */
    return run_command(conn, "BEGIN", error);
  PQreset(conn);
  if (PQstatus(conn) != CONNECTION_OK) {
    set_connection_error(conn, "connection lost and reconnecting failed", error);
    return FALSE;
  }
  return run_command(conn, "BEGIN", error);
}

/* A pooled connection with a transaction begun (NULL with error). Blocks while every
 * connection of the pool is in use. */
static PGconn *
acquire(PgStore *s, GError **error)
{
  PGconn *conn = g_async_queue_pop(s->idle);
  if (begin_on(conn, error))
    return conn;
  g_async_queue_push(s->idle, conn);
  return NULL;
}

/* End the transaction begun by acquire (commit when ok, else roll back, keeping the first
 * error) and give the connection back to the pool. */
static gboolean
release(PgStore *s, PGconn *conn, gboolean ok, GError **error)
{
  if (ok)
    ok = run_command(conn, "COMMIT", error);
  if (PQtransactionStatus(conn) != PQTRANS_IDLE && PQstatus(conn) == CONNECTION_OK)
    run_command(conn, "ROLLBACK", NULL);
  g_async_queue_push(s->idle, conn);
  return ok;
}

/* ---- opening ----------------------------------------------------------------------------- */

/* Constant SQL only (migration steps, several statements in one string). */
static gboolean
exec_constant(PGconn *conn, const char *sql, GError **error)
{
  PGresult *result = PQexec(conn, sql);
  gboolean ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  if (!ok)
    set_result_error(conn, result, error);
  PQclear(result);
  return ok;
}

static gboolean
schema_version(PGconn *conn, gint64 *version, GError **error)
{
  PGresult *result =
    run(conn, "SELECT coalesce(max(version), 0) FROM schema_version", NULL, 0, error);
  if (result == NULL)
    return FALSE;
  *version = value_int(result, 0, 0);
  PQclear(result);
  return TRUE;
}

/* One migration step if the database needs one: *done tells whether it is up to date. The
 * advisory lock is held until this transaction ends, so another process opening the store
 * at the same moment waits here and then finds the step done. */
static gboolean
migrate_step(PGconn *conn, gboolean *done, GError **error)
{
  gint64 version = 0;
  gboolean ok =
    run_command(conn, "BEGIN", error) &&
    run_command(conn, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", error) &&
    /* "relation already exists, skipping" on every open is noise. */
    run_command(conn, "SET LOCAL client_min_messages = warning", error) &&
    run_command(conn,
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())",
                error) &&
    schema_version(conn, &version, error);
  if (ok && version > (gint64)G_N_ELEMENTS(migrations)) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND,
                "postgres store: schema version %" G_GINT64_FORMAT
                " is newer than this hark knows (%" G_GSIZE_FORMAT "): update hark",
                version, G_N_ELEMENTS(migrations));
    ok = FALSE;
  }
  *done = ok && version == (gint64)G_N_ELEMENTS(migrations);
  if (ok && !*done)
    ok = exec_constant(conn, migrations[version], error) &&
         exec_count(conn, "INSERT INTO schema_version (version) VALUES ($1)",
                    PARAMS(INT(version + 1)), error) >= 0;
  if (ok)
    return run_command(conn, "COMMIT", error);
  run_command(conn, "ROLLBACK", NULL);
  return FALSE;
}

static gboolean
migrate(PGconn *conn, GError **error)
{
  gboolean done = FALSE;
  while (!done)
    if (!migrate_step(conn, &done, error))
      return FALSE;
  return TRUE;
}

static void
pg_store_close(gpointer store)
{
  PgStore *s = store;
  if (s == NULL)
    return;
  /* The caller has no call in flight, so every connection is idle. */
  for (guint i = 0; i < s->n_connections; i++)
    PQfinish(g_async_queue_pop(s->idle));
  g_async_queue_unref(s->idle);
  g_free(s);
}

/* The settings of this open(): those given to it, else the plugin's from init. */
static gboolean
read_open_settings(PgPlugin *plugin, GVariant *settings, char **conninfo, gint64 *connections,
                   GError **error)
{
  if (!hark_settings_get_string(settings, "conninfo", plugin->conninfo, conninfo, error) ||
      !hark_settings_get_int(settings, "connections", plugin->connections, 1, MAX_CONNECTIONS,
                             connections, error))
    return FALSE;
  if (*conninfo != NULL && **conninfo != '\0')
    return TRUE;
  g_set_error_literal(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND,
                      "postgres store: setting 'conninfo' is required (a libpq connection "
                      "string, e.g. \"host=/run/postgresql dbname=hark\")");
  return FALSE;
}

static gpointer
pg_store_open(gpointer instance, const char *state_dir, GVariant *settings, GError **error)
{
  g_autofree char *conninfo = NULL;
  gint64 connections = 0;
  if (!read_open_settings(instance, settings, &conninfo, &connections, error))
    return NULL;
  PgStore *s = g_new0(PgStore, 1);
  s->idle = g_async_queue_new();
  /* The first connection migrates; the others are made only once that worked. */
  while (s->n_connections < connections) {
    PGconn *conn = connect_db(conninfo, error);
    if (conn == NULL || (s->n_connections == 0 && !migrate(conn, error))) {
      PQfinish(conn);
      pg_store_close(s);
      return NULL;
    }
    g_async_queue_push(s->idle, conn);
    s->n_connections++;
  }
  return s;
}

/* ---- users ------------------------------------------------------------------------------- */

static gboolean
pg_user_create(gpointer store, const char *name, const char *name_key, const char *account_id,
               const char *password_hash, gint64 now, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  gboolean ok =
    exec_count(conn, sql_user_create,
               PARAMS(TEXT(name), TEXT(name_key), TEXT(account_id), TEXT(password_hash), INT(now)),
               error) >= 0;
  if (!ok)
    hark_store_reword_exists(error, "user '%s' exists already", name_key);
  return release(store, conn, ok, error);
}

static HarkStoreUser *
user_from_row(const PGresult *result)
{
  HarkStoreUser *user = g_new0(HarkStoreUser, 1);
  user->name = g_strdup(PQgetvalue(result, 0, 0));
  user->name_key = g_strdup(PQgetvalue(result, 0, 1));
  user->password_hash = g_strdup(PQgetvalue(result, 0, 2));
  user->created = value_int(result, 0, 3);
  user->failed_logins = value_int(result, 0, 4);
  user->locked_until = value_int(result, 0, 5);
  user->account_id = g_strdup(PQgetvalue(result, 0, 6));
  return user;
}

static HarkStoreUser *
pg_user_get(gpointer store, const char *name_key, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_user_get, PARAMS(TEXT(name_key)), error);
  HarkStoreUser *user = NULL;
  if (result != NULL && PQntuples(result) > 0)
    user = user_from_row(result);
  else if (result != NULL)
    hark_store_set_no_user(error, name_key);
  PQclear(result);
  if (!release(store, conn, user != NULL, error))
    g_clear_pointer(&user, hark_store_user_free);
  return user;
}

static gboolean
pg_user_set_password(gpointer store, const char *name_key, const char *password_hash,
                     gboolean revoke_others, const char *keep_device_id, gint64 now,
                     gint64 *revoked, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 count = 0;
  gboolean ok = exec_on_user(conn, sql_user_set_password, name_key,
                             PARAMS(TEXT(name_key), TEXT(password_hash)), error);
  if (ok && revoke_others)
    ok = (count = exec_count(conn, sql_devices_revoke_others,
                             PARAMS(TEXT(name_key), TEXT(keep_device_id), INT(now)), error)) >= 0;
  if (!release(store, conn, ok, error))
    return FALSE;
  if (revoked != NULL)
    *revoked = count;
  return TRUE;
}

static gboolean
pg_user_delete(gpointer store, const char *name_key, GError **error)
{
  /* The user's own devices and buddies go with the row (ON DELETE CASCADE). */
  PGconn *conn = acquire(store, error);
  return conn != NULL &&
         release(store, conn,
                 exec_on_user(conn, sql_user_delete, name_key, PARAMS(TEXT(name_key)), error) &&
                   exec_count(conn, sql_lists_naming_drop, PARAMS(TEXT(name_key)), error) >= 0,
                 error);
}

static gboolean
pg_user_note_failure(gpointer store, const char *name_key, gint64 lock_until, gint64 *failed_logins,
                     GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  PGresult *result =
    run(conn, sql_user_note_failure, PARAMS(TEXT(name_key), INT(lock_until)), error);
  gboolean found = result != NULL && PQntuples(result) > 0;
  if (found && failed_logins != NULL)
    *failed_logins = value_int(result, 0, 0);
  else if (result != NULL && !found)
    hark_store_set_no_user(error, name_key);
  PQclear(result);
  return release(store, conn, found, error);
}

static gboolean
pg_user_note_login(gpointer store, const char *name_key, const char *device_id,
                   const char *device_name, gint64 now, GError **error)
{
  PGconn *conn = acquire(store, error);
  return conn != NULL &&
         release(store, conn,
                 exec_on_user(conn, sql_user_note_login, name_key, PARAMS(TEXT(name_key)), error) &&
                   exec_count(conn, sql_device_upsert,
                              PARAMS(TEXT(name_key), TEXT(device_id), TEXT(device_name), INT(now)),
                              error) >= 0,
                 error);
}

static GPtrArray *
pg_users_find(gpointer store, const char *prefix_key, guint limit, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_users_find, PARAMS(TEXT(prefix_key), INT(limit)), error);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  for (int row = 0; result != NULL && row < PQntuples(result); row++)
    g_ptr_array_add(names, g_strdup(PQgetvalue(result, row, 0)));
  PQclear(result);
  return release(store, conn, result != NULL, error) ? g_steal_pointer(&names) : NULL;
}

/* ---- devices ------------------------------------------------------------------------------ */

/* The device of a row (columns: id, name, first, last, revoked). */
static HarkStoreDevice *
device_from_row(const PGresult *result, int row)
{
  HarkStoreDevice *device = g_new0(HarkStoreDevice, 1);
  device->device_id = g_strdup(PQgetvalue(result, row, 0));
  device->name = g_strdup(PQgetvalue(result, row, 1));
  device->first_seen = value_int(result, row, 2);
  device->last_seen = value_int(result, row, 3);
  device->revoked = value_int(result, row, 4);
  return device;
}

static GPtrArray *
pg_devices_list(gpointer store, const char *name_key, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_devices_list, PARAMS(TEXT(name_key)), error);
  g_autoptr(GPtrArray) devices = NULL;
  if (result != NULL && PQntuples(result) > 0) {
    devices = g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_device_free);
    for (int row = 0; row < PQntuples(result); row++)
      if (!PQgetisnull(result, row, 0))
        g_ptr_array_add(devices, device_from_row(result, row));
  } else if (result != NULL) {
    hark_store_set_no_user(error, name_key);
  }
  PQclear(result);
  return release(store, conn, devices != NULL, error) ? g_steal_pointer(&devices) : NULL;
}

static HarkStoreDevice *
pg_device_get(gpointer store, const char *name_key, const char *device_id, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_device_get, PARAMS(TEXT(name_key), TEXT(device_id)), error);
  HarkStoreDevice *device = NULL;
  if (result != NULL && PQntuples(result) > 0)
    device = device_from_row(result, 0);
  else if (result != NULL)
    hark_store_set_no_device(error, name_key, device_id);
  PQclear(result);
  if (!release(store, conn, device != NULL, error))
    g_clear_pointer(&device, hark_store_device_free);
  return device;
}

/* A change to one device: NOT_FOUND when there is no such device. */
static gboolean
change_device(PgStore *store, const char *sql, const char *name_key, const char *device_id,
              gint64 now, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 changed = exec_count(conn, sql, PARAMS(TEXT(name_key), TEXT(device_id), INT(now)), error);
  if (changed == 0)
    hark_store_set_no_device(error, name_key, device_id);
  return release(store, conn, changed > 0, error);
}

static gboolean
pg_device_seen(gpointer store, const char *name_key, const char *device_id, gint64 now,
               GError **error)
{
  return change_device(store, sql_device_seen, name_key, device_id, now, error);
}

static gboolean
pg_device_revoke(gpointer store, const char *name_key, const char *device_id, gint64 now,
                 GError **error)
{
  return change_device(store, sql_device_revoke, name_key, device_id, now, error);
}

/* ---- buddy lists ------------------------------------------------------------------------- */

static GPtrArray *
buddies_from_rows(const PGresult *result, gint64 *revision)
{
  GPtrArray *buddies = g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_buddy_free);
  for (int row = 0; row < PQntuples(result); row++) {
    if (revision != NULL)
      *revision = value_int(result, row, 0);
    if (!PQgetisnull(result, row, 1))
      g_ptr_array_add(buddies,
                      hark_store_buddy_new(PQgetvalue(result, row, 1), PQgetvalue(result, row, 2)));
  }
  return buddies;
}

static GPtrArray *
pg_buddies_get(gpointer store, const char *name_key, gint64 *revision, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_buddies_get, PARAMS(TEXT(name_key)), error);
  g_autoptr(GPtrArray) buddies = NULL;
  if (result != NULL && PQntuples(result) > 0)
    buddies = buddies_from_rows(result, revision);
  else if (result != NULL)
    hark_store_set_no_user(error, name_key);
  PQclear(result);
  return release(store, conn, buddies != NULL, error) ? g_steal_pointer(&buddies) : NULL;
}

/* The change itself, inside the transaction: EXISTS or NOT_FOUND for the buddy. */
static gboolean
apply_buddy_op(PGconn *conn, const char *name_key, HarkBuddyOp op, const char *buddy_key,
               const char *alias, GError **error)
{
  const Param params[] = { TEXT(name_key), TEXT(buddy_key), TEXT(alias) };
  gint64 changed = exec_count(conn, buddy_ops[op].sql, params, buddy_ops[op].n_params, error);
  return hark_store_buddy_change_result(changed, name_key, buddy_key, error);
}

static gboolean
pg_buddies_change(gpointer store, const char *name_key, HarkBuddyOp op, const char *buddy_key,
                  const char *alias, gint64 expected_revision, gint64 *new_revision, GError **error)
{
  g_return_val_if_fail(op < G_N_ELEMENTS(buddy_ops), FALSE);
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 current = 0, next = 0;
  gboolean ok = query_int(conn, sql_revision_lock, name_key, &current, error) &&
                hark_store_check_revision(current, expected_revision, name_key, error) &&
                apply_buddy_op(conn, name_key, op, buddy_key, alias, error) &&
                query_int(conn, sql_revision_bump, name_key, &next, error);
  if (!release(store, conn, ok, error))
    return FALSE;
  if (new_revision != NULL)
    *new_revision = next;
  return TRUE;
}

/* ---- contact requests and blocks ---------------------------------------------------------- */

static GPtrArray *
pg_requests_list(gpointer store, const char *name_key, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_requests_list, PARAMS(TEXT(name_key)), error);
  g_autoptr(GPtrArray) requests = NULL;
  if (result != NULL && PQntuples(result) > 0) {
    requests = g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_request_free);
    for (int row = 0; row < PQntuples(result); row++)
      if (!PQgetisnull(result, row, 0))
        g_ptr_array_add(requests, hark_store_request_new(
                                    PQgetvalue(result, row, 0), PQgetvalue(result, row, 1),
                                    PQgetisnull(result, row, 2) ? NULL : PQgetvalue(result, row, 2),
                                    value_int(result, row, 3), value_int(result, row, 4)));
  } else if (result != NULL) {
    hark_store_set_no_user(error, name_key);
  }
  PQclear(result);
  return release(store, conn, requests != NULL, error) ? g_steal_pointer(&requests) : NULL;
}

/* NOT_FOUND for whichever of the two users does not exist; locks the first one's row. */
static gboolean
both_exist(PGconn *conn, const char *a_key, const char *b_key, GError **error)
{
  gint64 value = 0;
  return query_int(conn, sql_user_lock, a_key, &value, error) &&
         query_int(conn, sql_revision_lock, b_key, &value, error);
}

static gboolean
pg_request_send(gpointer store, const char *from_key, const char *to_key, const char *message,
                guint max_pending, gint64 now, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  /* Inserted first, then counted (and rolled back when over): asking again while a
   * request waits is EXISTS, not a new pending request. */
  gint64 pending = 0, changed = -1;
  gboolean ok = both_exist(conn, from_key, to_key, error) &&
                (changed = exec_count(conn, sql_request_upsert,
                                      PARAMS(TEXT(from_key), TEXT(to_key), TEXT(message), INT(now)),
                                      error)) > 0 &&
                query_int(conn, sql_requests_pending_from, from_key, &pending, error);
  if (changed == 0)
    hark_store_set_request_pending(error, from_key, to_key);
  if (ok && pending > max_pending) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_LIMIT,
                "'%s' has %u pending requests already", from_key, max_pending);
    ok = FALSE;
  }
  return release(store, conn, ok, error);
}

/* NOT_FOUND when the statement changed no request. */
static gboolean
exec_on_request(PGconn *conn, const char *sql, const char *from_key, const char *to_key,
                const Param *params, gsize n_params, GError **error)
{
  gint64 changed = exec_count(conn, sql, params, n_params, error);
  if (changed == 0)
    hark_store_set_no_request(error, from_key, to_key);
  return changed > 0;
}

/* Each of the two gains the other, both revisions go up, and the requests go. */
static gboolean
make_buddies(PGconn *conn, const char *a_key, const char *b_key, GError **error)
{
  gint64 revision = 0;
  return exec_count(conn, sql_requests_between_delete, PARAMS(TEXT(a_key), TEXT(b_key)), error) >=
           0 &&
         exec_count(conn, sql_buddy_add_if_absent, PARAMS(TEXT(a_key), TEXT(b_key)), error) >= 0 &&
         exec_count(conn, sql_buddy_add_if_absent, PARAMS(TEXT(b_key), TEXT(a_key)), error) >= 0 &&
         query_int(conn, sql_revision_bump, a_key, &revision, error) &&
         query_int(conn, sql_revision_bump, b_key, &revision, error);
}

static gboolean
pg_request_answer(gpointer store, const char *to_key, const char *from_key, gboolean accept,
                  gint64 now, GError **error)
{
  PGconn *conn = acquire(store, error);
  /* Declining first also checks that the request is pending; an accepted one then goes. */
  return conn != NULL &&
         release(store, conn,
                 exec_on_request(conn, sql_request_decline, from_key, to_key,
                                 PARAMS(TEXT(from_key), TEXT(to_key), INT(now)), error) &&
                   (!accept || make_buddies(conn, to_key, from_key, error)),
                 error);
}

static gboolean
pg_request_cancel(gpointer store, const char *from_key, const char *to_key, GError **error)
{
  PGconn *conn = acquire(store, error);
  return conn != NULL && release(store, conn,
                                 exec_on_request(conn, sql_request_withdraw, from_key, to_key,
                                                 PARAMS(TEXT(from_key), TEXT(to_key)), error),
                                 error);
}

/* Blocking: the block, their pending request declined, ours withdrawn, their entry gone. */
static gboolean
block_add(PGconn *conn, const char *name_key, const char *other_key, gint64 now, GError **error)
{
  gint64 removed = 0, revision = 0;
  return exec_count(conn, sql_block_add, PARAMS(TEXT(name_key), TEXT(other_key)), error) >= 0 &&
         exec_count(conn, sql_request_decline, PARAMS(TEXT(other_key), TEXT(name_key), INT(now)),
                    error) >= 0 &&
         exec_count(conn, sql_request_withdraw, PARAMS(TEXT(name_key), TEXT(other_key)), error) >=
           0 &&
         (removed = exec_count(conn, buddy_ops[HARK_BUDDY_REMOVE].sql,
                               PARAMS(TEXT(name_key), TEXT(other_key)), error)) >= 0 &&
         (removed == 0 || query_int(conn, sql_revision_bump, name_key, &revision, error));
}

static gboolean
block_remove(PGconn *conn, const char *name_key, const char *other_key, gint64 now, GError **error)
{
  gint64 changed =
    exec_count(conn, sql_block_remove, PARAMS(TEXT(name_key), TEXT(other_key)), error);
  if (changed == 0)
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND, "'%s' does not block '%s'",
                name_key, other_key);
  return changed > 0 && exec_count(conn, sql_request_decline,
                                   PARAMS(TEXT(other_key), TEXT(name_key), INT(now)), error) >= 0;
}

static gboolean
pg_block_set(gpointer store, const char *name_key, const char *other_key, gboolean blocked,
             gint64 now, GError **error)
{
  PGconn *conn = acquire(store, error);
  return conn != NULL && release(store, conn,
                                 both_exist(conn, name_key, other_key, error) &&
                                   (blocked ? block_add(conn, name_key, other_key, now, error)
                                            : block_remove(conn, name_key, other_key, now, error)),
                                 error);
}

static GPtrArray *
pg_blocks_list(gpointer store, const char *name_key, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_blocks_list, PARAMS(TEXT(name_key)), error);
  g_autoptr(GPtrArray) names = NULL;
  if (result != NULL && PQntuples(result) > 0) {
    names = g_ptr_array_new_with_free_func(g_free);
    for (int row = 0; row < PQntuples(result); row++)
      if (!PQgetisnull(result, row, 1))
        g_ptr_array_add(names, g_strdup(PQgetvalue(result, row, 1)));
  } else if (result != NULL) {
    hark_store_set_no_user(error, name_key);
  }
  PQclear(result);
  return release(store, conn, names != NULL, error) ? g_steal_pointer(&names) : NULL;
}

/* ---- certificates and held messages ------------------------------------------------------- */

static gboolean
pg_device_set_certificate(gpointer store, const char *name_key, const char *device_id,
                          const char *certificate, gint64 expires, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 changed =
    exec_count(conn, sql_device_set_certificate,
               PARAMS(TEXT(name_key), TEXT(device_id), TEXT(certificate), INT(expires)), error);
  if (changed == 0)
    hark_store_set_no_device(error, name_key, device_id);
  return release(store, conn, changed > 0, error);
}

static GPtrArray *
pg_device_certificates(gpointer store, const char *name_key, gint64 now, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_device_certificates, PARAMS(TEXT(name_key), INT(now)), error);
  g_autoptr(GPtrArray) list = NULL;
  if (result != NULL && PQntuples(result) > 0) {
    list = g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_certificate_free);
    for (int row = 0; row < PQntuples(result); row++)
      if (!PQgetisnull(result, row, 0))
        g_ptr_array_add(list, hark_store_certificate_new(PQgetvalue(result, row, 0),
                                                         PQgetvalue(result, row, 1),
                                                         value_int(result, row, 2)));
  } else if (result != NULL) {
    hark_store_set_no_user(error, name_key);
  }
  PQclear(result);
  return release(store, conn, list != NULL, error) ? g_steal_pointer(&list) : NULL;
}

static HarkStoreDevice *
pg_device_find(gpointer store, const char *device_id, char **name_key, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  PGresult *result = run(conn, sql_device_find, PARAMS(TEXT(device_id)), error);
  HarkStoreDevice *device = NULL;
  if (result != NULL && PQntuples(result) > 0) {
    device = device_from_row(result, 0);
    if (name_key != NULL)
      *name_key = g_strdup(PQgetvalue(result, 0, 5));
  } else if (result != NULL) {
    g_set_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND, "no device '%s'", device_id);
  }
  PQclear(result);
  if (!release(store, conn, device != NULL, error)) {
    g_clear_pointer(&device, hark_store_device_free);
    if (name_key != NULL)
      g_clear_pointer(name_key, g_free);
  }
  return device;
}

/* Count and bytes of one usage statement ($1 a name, $2 now); zero for a NULL name. */
static gboolean
usage_of(PGconn *conn, const char *sql, const char *name, gint64 now, HarkStoreUsage *usage,
         GError **error)
{
  *usage = (HarkStoreUsage){ 0, 0 };
  if (name == NULL)
    return TRUE;
  PGresult *result = run(conn, sql, PARAMS(TEXT(name), INT(now)), error);
  if (result != NULL && PQntuples(result) > 0)
    *usage = (HarkStoreUsage){ value_int(result, 0, 0), value_int(result, 0, 1) };
  PQclear(result);
  return result != NULL;
}

static gboolean
usage_both(PGconn *conn, const char *sender_key, const char *device_id, gint64 now,
           HarkStoreUsage *sender, HarkStoreUsage *device, GError **error)
{
  return usage_of(conn, sql_usage_sender, sender_key, now, sender, error) &&
         usage_of(conn, sql_usage_device, device_id, now, device, error);
}

static gboolean
pg_messages_usage(gpointer store, const char *sender_key, const char *device_id, gint64 now,
                  HarkStoreUsage *sender, HarkStoreUsage *device, GError **error)
{
  PGconn *conn = acquire(store, error);
  HarkStoreUsage ignored_sender, ignored_device;
  return conn != NULL &&
         release(store, conn,
                 usage_both(conn, sender_key, device_id, now, sender ? sender : &ignored_sender,
                            device ? device : &ignored_device, error),
                 error);
}

/* The rows of both users locked (FOR UPDATE), in name order so that two holds the other
 * way round cannot deadlock: concurrent holds for one sender or one recipient (from any
 * process) count one after the other against the limits. The recipient's is NOT_FOUND
 * when missing; a sender deleted meanwhile is not (their messages may still be held). */
/* The sender's row locked when the sender still exists (their messages may outlive them). */
static gboolean
lock_sender(PGconn *conn, const char *sender_key, GError **error)
{
  gint64 value = 0;
  g_autoptr(GError) local = NULL;
  if (query_int(conn, sql_user_lock, sender_key, &value, &local) ||
      g_error_matches(local, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND))
    return TRUE;
  g_propagate_error(error, g_steal_pointer(&local));
  return FALSE;
}

static gboolean
lock_pair(PGconn *conn, const char *sender_key, const char *user_key, GError **error)
{
  gint64 value = 0;
  if (strcmp(sender_key, user_key) == 0)
    return query_int(conn, sql_user_lock, user_key, &value, error);
  if (strcmp(sender_key, user_key) < 0)
    return lock_sender(conn, sender_key, error) &&
           query_int(conn, sql_user_lock, user_key, &value, error);
  return query_int(conn, sql_user_lock, user_key, &value, error) &&
         lock_sender(conn, sender_key, error);
}

static gboolean
pg_message_hold(gpointer store, const HarkStoreMessage *m, const HarkStoreMessageLimits *limits,
                GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  gsize size = 0;
  const guint8 *data = g_bytes_get_data(m->envelope, &size);
  g_autofree char *hex = g_malloc(size * 2 + 1);
  for (gsize i = 0; i < size; i++)
    g_snprintf(hex + i * 2, 3, "%02x", data[i]);
  hex[size * 2] = '\0';
  HarkStoreUsage sender, device;
  gboolean ok =
    lock_pair(conn, m->sender_key, m->user_key, error) &&
    usage_both(conn, m->sender_key, m->device_id, m->held_at, &sender, &device, error) &&
    hark_store_check_message_limits(limits, &sender, &device, size, error) &&
    exec_count(conn, sql_message_insert,
               PARAMS(TEXT(m->id), TEXT(m->device_id), TEXT(m->user_key), TEXT(m->sender_key),
                      TEXT(m->sender_device), TEXT(hex), INT(m->held_at), INT(m->expires)),
               error) > 0;
  return release(store, conn, ok, error);
}

static HarkStoreMessage *
message_from_row(const PGresult *result, int row)
{
  const char *hex = PQgetvalue(result, row, 5);
  gsize size = strlen(hex) / 2;
  guint8 *data = g_malloc(size + 1);
  for (gsize i = 0; i < size; i++)
    data[i] =
      (guint8)(g_ascii_xdigit_value(hex[2 * i]) << 4 | g_ascii_xdigit_value(hex[2 * i + 1]));
  g_autoptr(GBytes) envelope = g_bytes_new_take(data, size);
  return hark_store_message_new(PQgetvalue(result, row, 0), PQgetvalue(result, row, 1),
                                PQgetvalue(result, row, 2), PQgetvalue(result, row, 3),
                                PQgetvalue(result, row, 4), envelope, value_int(result, row, 6),
                                value_int(result, row, 7));
}

static GPtrArray *
pg_messages_list(gpointer store, const char *device_id, gint64 now, guint limit, gboolean *more,
                 GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return NULL;
  /* One more than asked: whether there are more. */
  PGresult *result =
    run(conn, sql_messages_list, PARAMS(TEXT(device_id), INT(now), INT((gint64)limit + 1)), error);
  g_autoptr(GPtrArray) list = NULL;
  if (result != NULL) {
    list = g_ptr_array_new_with_free_func((GDestroyNotify)hark_store_message_free);
    for (int row = 0; row < PQntuples(result) && (guint)row < limit; row++)
      g_ptr_array_add(list, message_from_row(result, row));
    if (more != NULL)
      *more = (guint)PQntuples(result) > limit;
  }
  PQclear(result);
  return release(store, conn, list != NULL, error) ? g_steal_pointer(&list) : NULL;
}

/* ids as a PostgreSQL array literal; ids are the caller's checked hex, quoted anyway. */
static char *
text_array(const char *const *ids, guint n_ids)
{
  GString *text = g_string_new("{");
  for (guint i = 0; i < n_ids; i++) {
    g_string_append(text, i > 0 ? ",\"" : "\"");
    for (const char *c = ids[i]; *c != '\0'; c++) {
      if (*c == '"' || *c == '\\')
        g_string_append_c(text, '\\');
      g_string_append_c(text, *c);
    }
    g_string_append_c(text, '"');
  }
  g_string_append_c(text, '}');
  return g_string_free(text, FALSE);
}

static gboolean
pg_messages_delete(gpointer store, const char *device_id, const char *const *ids, guint n_ids,
                   gint64 *deleted, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  g_autofree char *array = text_array(ids, n_ids);
  gint64 changed =
    exec_count(conn, sql_messages_delete, PARAMS(TEXT(device_id), TEXT(array)), error);
  if (!release(store, conn, changed >= 0, error))
    return FALSE;
  if (deleted != NULL)
    *deleted = changed;
  return TRUE;
}

static gboolean
pg_messages_expire(gpointer store, gint64 now, gint64 *deleted, GError **error)
{
  PGconn *conn = acquire(store, error);
  if (conn == NULL)
    return FALSE;
  gint64 changed = exec_count(conn, sql_messages_expire, PARAMS(INT(now)), error);
  if (!release(store, conn, changed >= 0, error))
    return FALSE;
  if (deleted != NULL)
    *deleted = changed;
  return TRUE;
}

/* ---- the plugin -------------------------------------------------------------------------- */

static const HarkStoreInterface pg_store = {
  .version = HARK_STORE_INTERFACE_VERSION,
  .open = pg_store_open,
  .close = pg_store_close,
  .user_create = pg_user_create,
  .user_get = pg_user_get,
  .user_set_password = pg_user_set_password,
  .user_delete = pg_user_delete,
  .user_note_failure = pg_user_note_failure,
  .user_note_login = pg_user_note_login,
  .users_find = pg_users_find,
  .buddies_get = pg_buddies_get,
  .buddies_change = pg_buddies_change,
  .devices_list = pg_devices_list,
  .device_get = pg_device_get,
  .device_seen = pg_device_seen,
  .device_revoke = pg_device_revoke,
  .requests_list = pg_requests_list,
  .request_send = pg_request_send,
  .request_answer = pg_request_answer,
  .request_cancel = pg_request_cancel,
  .block_set = pg_block_set,
  .blocks_list = pg_blocks_list,
  .device_set_certificate = pg_device_set_certificate,
  .device_certificates = pg_device_certificates,
  .device_find = pg_device_find,
  .message_hold = pg_message_hold,
  .messages_list = pg_messages_list,
  .messages_delete = pg_messages_delete,
  .messages_usage = pg_messages_usage,
  .messages_expire = pg_messages_expire,
};

static void
plugin_free(PgPlugin *plugin)
{
  g_free(plugin->conninfo);
  g_free(plugin);
}

/* conninfo may come later, with open(); a wrong type or range stops the load now. */
static gboolean
pg_init(HarkContext *ctx, GVariant *settings, GError **error)
{
  PgPlugin *plugin = g_new0(PgPlugin, 1);
  plugin->ctx = ctx;
  if (!hark_settings_get_string(settings, "conninfo", NULL, &plugin->conninfo, error) ||
      !hark_settings_get_int(settings, "connections", DEFAULT_CONNECTIONS, 1, MAX_CONNECTIONS,
                             &plugin->connections, error) ||
      !hark_context_register(ctx, HARK_KIND_STORE, STORE_NAME, HARK_RANK_SECONDARY, &pg_store,
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
pg_fini(HarkContext *ctx)
{
  plugin_free(hark_context_get_plugin_data(ctx));
}

/* SECONDARY: when both stores are loaded and none is named, the embedded sqlite wins. */
HARK_PLUGIN_DEFINE(.name = "postgres", .version = HARK_VERSION,
                   .description = "account store in PostgreSQL, shared by several login servers",
                   .license = "LGPL-2.1-or-later", .kinds = HARK_KIND_STORE, .init = pg_init,
                   .fini = pg_fini);
