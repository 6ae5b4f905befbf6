/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-store.c: the store plugins (sqlite, postgres) against hark/store.h, loaded through
 * the core the way a login server loads them.
 *
 * One suite of cases, registered once per store: /store/sqlite/... and /store/postgres/....
 * The postgres half needs a server named by HARK_TEST_PG_CONNINFO (`make check` starts a
 * throw-away one with scripts/pg.sh); without it those cases are skipped. Every case gets
 * a fresh state directory, and a postgres case a database of its own (dropped at the
 * end), so cases are independent and parallel runs do not collide. A few checks look at
 * the database directly (schema versions, a database made by an older hark). */
#include <glib/gstdio.h>
#include <hark/hark.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "test-pg.h"
#include "test-isolate.h"

#define NOW 1700000000
#define N_THREADS 4
#define CALLS_PER_THREAD 50

typedef enum {
  BACKEND_SQLITE = 1 << 0,
  BACKEND_POSTGRES = 1 << 1,
} Backend;
#define BACKEND_ALL (BACKEND_SQLITE | BACKEND_POSTGRES)

typedef struct {
  Backend backend;
  char *dir; /* the node's state directory, fresh for the case */
  HarkTestPgDatabase *database; /* postgres: this case's database */
  const char *conninfo; /* postgres: how to reach it (database's) */
  GVariant *settings;
  HarkNode *node;
  const HarkStoreInterface *iface;
  gpointer instance;
  gpointer store; /* opened by the set-up unless the case opens its own */
} Fixture;

typedef struct {
  const char *name;
  void (*func)(Fixture *f);
  guint backends; /* Backend bits the case runs for */
  gboolean no_open; /* the case opens the store itself */
} Case;

typedef struct {
  const Case *test_case;
  Backend backend;
} Registration;

static const char *
backend_name(Backend backend)
{
  return backend == BACKEND_SQLITE ? "sqlite" : "postgres";
}

/* ---- the database, directly ------------------------------------------------------------ */

static PGconn *
pg_connect(const char *conninfo)
{
  PGconn *conn = PQconnectdb(conninfo);
  if (PQstatus(conn) != CONNECTION_OK)
    g_error("cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
  return conn;
}

/* The first column of the first row (NULL when none) of a constant SQL statement. */
static char *
pg_query(const char *conninfo, const char *sql)
{
  PGconn *conn = pg_connect(conninfo);
  PGresult *result = PQexec(conn, sql);
  ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    g_error("%s: %s", sql, PQresultErrorMessage(result));
  char *value =
    status == PGRES_TUPLES_OK && PQntuples(result) > 0 ? g_strdup(PQgetvalue(result, 0, 0)) : NULL;
  PQclear(result);
  PQfinish(conn);
  return value;
}

static char *
sqlite_query(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
      sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
      sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
    g_error("%s: %s", sql, sqlite3_errmsg(db));
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    g_error("%s: %s", sql, sqlite3_errmsg(db));
  char *value = rc == SQLITE_ROW ? g_strdup((const char *)sqlite3_column_text(stmt, 0)) : NULL;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

static char *
sqlite_path(Fixture *f)
{
  return g_build_filename(f->dir, "accounts.db", NULL);
}

/* Run constant SQL on the case's database, beside the store under test. */
static char *
db_query(Fixture *f, const char *sql)
{
  if (f->backend == BACKEND_POSTGRES)
    return pg_query(f->conninfo, sql);
  g_autofree char *path = sqlite_path(f);
  return sqlite_query(path, sql);
}

static gint64
db_count(Fixture *f, const char *sql)
{
  g_autofree char *value = db_query(f, sql);
  g_assert_nonnull(value);
  return g_ascii_strtoll(value, NULL, 10);
}

static gint64
schema_version(Fixture *f)
{
  return db_count(f, f->backend == BACKEND_SQLITE ? "PRAGMA user_version"
                                                  : "SELECT max(version) FROM schema_version");
}

/* ---- fixture ----------------------------------------------------------------------------- */

static void
load_plugin(Fixture *f)
{
  const char *build_root = g_getenv("HARK_BUILD_ROOT");
  g_assert_nonnull(build_root);
  g_autofree char *file = g_strconcat(backend_name(f->backend), ".so", NULL);
  g_autofree char *path = g_build_filename(build_root, "plugins", file, NULL);
  g_autoptr(GError) error = NULL;
  f->node = hark_node_new(hark_config_new_default());
  g_assert_true(hark_node_load_plugin_file(f->node, path, f->settings, -1, &error));
  g_assert_no_error(error);
  GPtrArray *stores = hark_context_lookup(hark_node_get_context(f->node), HARK_KIND_STORE);
  g_assert_cmpuint(stores->len, ==, 1);
  const HarkRegistration *registration = g_ptr_array_index(stores, 0);
  g_assert_cmpstr(registration->name, ==, backend_name(f->backend));
  f->iface = registration->iface;
  f->instance = registration->instance;
  g_assert_cmpuint(f->iface->version, ==, HARK_STORE_INTERFACE_VERSION);
  g_ptr_array_unref(stores);
}

static gpointer
open_store(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  gpointer store = f->iface->open(f->instance, f->dir, f->settings, &error);
  g_assert_no_error(error);
  g_assert_nonnull(store);
  return store;
}

static void
close_store(Fixture *f)
{
  if (f->store != NULL)
    f->iface->close(f->store);
  f->store = NULL;
}

/* What a restart of the login server does to its store: everything let go, the plugin
 * unloaded, then loaded and opened again. */
static void
restart(Fixture *f)
{
  close_store(f);
  g_clear_pointer(&f->node, hark_node_free);
  load_plugin(f);
  f->store = open_store(f);
}

/* FALSE when the case cannot run here (and was marked skipped). */
static gboolean
fixture_set_up(Fixture *f, Backend backend, gboolean open)
{
  g_autoptr(GError) error = NULL;
  GVariantDict settings;
  g_variant_dict_init(&settings, NULL);
  f->backend = backend;
  if (backend == BACKEND_POSTGRES) {
    f->database = hark_test_pg_database_new("t");
    if (f->database == NULL) { /* skipped, or failed */
      g_variant_dict_clear(&settings);
      return FALSE;
    }
    f->conninfo = f->database->conninfo;
    g_variant_dict_insert(&settings, "conninfo", "s", f->conninfo);
  } else {
    g_variant_dict_insert(&settings, "path", "s", "accounts.db");
  }
  f->settings = g_variant_ref_sink(g_variant_dict_end(&settings));
  f->dir = g_dir_make_tmp("hark-store-XXXXXX", &error);
  g_assert_no_error(error);
  load_plugin(f);
  if (open)
    f->store = open_store(f);
  return TRUE;
}

static void
remove_dir(const char *path)
{
  GDir *dir = g_dir_open(path, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
    g_autofree char *child = g_build_filename(path, name, NULL);
    g_remove(child);
  }
  if (dir != NULL)
    g_dir_close(dir);
  g_rmdir(path);
}

static void
fixture_tear_down(Fixture *f)
{
  close_store(f);
  g_clear_pointer(&f->node, hark_node_free);
  g_clear_pointer(&f->database, hark_test_pg_database_free);
  if (f->dir != NULL)
    remove_dir(f->dir);
  g_free(f->dir);
  g_clear_pointer(&f->settings, g_variant_unref);
}

static void
run_case(gconstpointer data)
{
  const Registration *registration = data;
  Fixture f = { 0 };
  if (!fixture_set_up(&f, registration->backend, !registration->test_case->no_open))
    return;
  registration->test_case->func(&f);
  fixture_tear_down(&f);
}

/* ---- assertion helpers ------------------------------------------------------------------- */

/* A fresh account id of the form the login server makes (the store only keeps it). */
static char *
new_account_id(void)
{
  return g_strdup_printf("%08x%08x%08x%08x", g_random_int(), g_random_int(), g_random_int(),
                         g_random_int());
}

static void
create_user(Fixture *f, const char *name, const char *name_key)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *hash = g_strconcat("$argon2id$hash-of-", name_key, NULL);
  g_autofree char *account_id = new_account_id();
  g_assert_true(f->iface->user_create(f->store, name, name_key, account_id, hash, NOW, &error));
  g_assert_no_error(error);
  g_autoptr(HarkStoreUser) user = f->iface->user_get(f->store, name_key, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(user->account_id, ==, account_id);
}

static HarkStoreUser *
get_user(Fixture *f, const char *name_key)
{
  g_autoptr(GError) error = NULL;
  HarkStoreUser *user = f->iface->user_get(f->store, name_key, &error);
  g_assert_no_error(error);
  g_assert_nonnull(user);
  return user;
}

static void
assert_no_user(Fixture *f, const char *name_key)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(f->iface->user_get(f->store, name_key, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
}

/* The names users_find gives are exactly the NULL-terminated list that follows. */
static void
assert_found(Fixture *f, const char *prefix_key, guint limit, ...)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) names = f->iface->users_find(f->store, prefix_key, limit, &error);
  g_assert_no_error(error);
  g_assert_nonnull(names);
  va_list args;
  va_start(args, limit);
  guint i = 0;
  for (const char *expected; (expected = va_arg(args, const char *)) != NULL; i++) {
    g_assert_cmpuint(i, <, names->len);
    g_assert_cmpstr(g_ptr_array_index(names, i), ==, expected);
  }
  va_end(args);
  g_assert_cmpuint(names->len, ==, i);
}

/* The buddy list and revision are exactly these: key, alias, ..., NULL. */
static void
assert_buddies(Fixture *f, const char *name_key, gint64 revision, ...)
{
  g_autoptr(GError) error = NULL;
  gint64 got_revision = -1;
  g_autoptr(GPtrArray) buddies = f->iface->buddies_get(f->store, name_key, &got_revision, &error);
  g_assert_no_error(error);
  g_assert_nonnull(buddies);
  g_assert_cmpint(got_revision, ==, revision);
  va_list args;
  va_start(args, revision);
  guint i = 0;
  for (const char *key; (key = va_arg(args, const char *)) != NULL; i++) {
    const char *alias = va_arg(args, const char *);
    g_assert_cmpuint(i, <, buddies->len);
    const HarkStoreBuddy *buddy = g_ptr_array_index(buddies, i);
    g_assert_cmpstr(buddy->name_key, ==, key);
    g_assert_cmpstr(buddy->alias, ==, alias);
  }
  va_end(args);
  g_assert_cmpuint(buddies->len, ==, i);
}

/* A buddy change that must work and give this revision. */
static void
change(Fixture *f, const char *name_key, HarkBuddyOp op, const char *buddy_key, const char *alias,
       gint64 expected_revision, gint64 new_revision)
{
  g_autoptr(GError) error = NULL;
  gint64 revision = -1;
  g_assert_true(f->iface->buddies_change(f->store, name_key, op, buddy_key, alias,
                                         expected_revision, &revision, &error));
  g_assert_no_error(error);
  g_assert_cmpint(revision, ==, new_revision);
}

/* A buddy change that must fail with code. */
static void
change_fails(Fixture *f, const char *name_key, HarkBuddyOp op, const char *buddy_key,
             const char *alias, gint64 expected_revision, gint code)
{
  g_autoptr(GError) error = NULL;
  gint64 revision = -1;
  g_assert_false(f->iface->buddies_change(f->store, name_key, op, buddy_key, alias,
                                          expected_revision, &revision, &error));
  g_assert_error(error, HARK_STORE_ERROR, code);
}

static gint64
note_failure(Fixture *f, const char *name_key, gint64 lock_until)
{
  g_autoptr(GError) error = NULL;
  gint64 count = -1;
  g_assert_true(f->iface->user_note_failure(f->store, name_key, lock_until, &count, &error));
  g_assert_no_error(error);
  return count;
}

static void
note_login(Fixture *f, const char *name_key, const char *device_id, const char *device_name,
           gint64 now)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(f->iface->user_note_login(f->store, name_key, device_id, device_name, now, &error));
  g_assert_no_error(error);
}

static gint64
count_devices(Fixture *f, const char *name_key)
{
  /* The test's own constant keys only: this SQL is built from them. */
  g_autofree char *sql =
    g_strdup_printf("SELECT count(*) FROM devices WHERE user_key = '%s'", name_key);
  return db_count(f, sql);
}

/* ---- contact requests and blocks ----------------------------------------------------------- */

static void
send_request(Fixture *f, const char *from_key, const char *to_key, const char *message,
             guint max_pending)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(
    f->iface->request_send(f->store, from_key, to_key, message, max_pending, NOW, &error));
  g_assert_no_error(error);
}

static void
send_request_fails(Fixture *f, const char *from_key, const char *to_key, guint max_pending,
                   gint code)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(
    f->iface->request_send(f->store, from_key, to_key, NULL, max_pending, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, code);
}

static void
answer_request(Fixture *f, const char *to_key, const char *from_key, gboolean accept)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(f->iface->request_answer(f->store, to_key, from_key, accept, NOW + 1, &error));
  g_assert_no_error(error);
}

static void
block(Fixture *f, const char *name_key, const char *other_key, gboolean blocked)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(f->iface->block_set(f->store, name_key, other_key, blocked, NOW + 2, &error));
  g_assert_no_error(error);
}

/* The user's requests are exactly these: "from>to:answered", ..., NULL. */
static void
assert_requests(Fixture *f, const char *name_key, ...)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) requests = f->iface->requests_list(f->store, name_key, &error);
  g_assert_no_error(error);
  g_assert_nonnull(requests);
  g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < requests->len; i++) {
    const HarkStoreRequest *r = requests->pdata[i];
    g_ptr_array_add(
      got, g_strdup_printf("%s>%s:%" G_GINT64_FORMAT, r->from_key, r->to_key, r->answered));
  }
  g_ptr_array_sort(got, (GCompareFunc)g_strcmp0);
  va_list args;
  va_start(args, name_key);
  guint i = 0;
  for (const char *expected; (expected = va_arg(args, const char *)) != NULL; i++) {
    g_assert_cmpuint(i, <, got->len);
    g_assert_cmpstr(*(char **)&got->pdata[i], ==, expected);
  }
  va_end(args);
  g_assert_cmpuint(got->len, ==, i);
}

/* ---- cases: users ------------------------------------------------------------------------ */

static void
test_create_get(Fixture *f)
{
  create_user(f, "Alice", "alice");
  g_autoptr(HarkStoreUser) user = get_user(f, "alice");
  g_assert_cmpstr(user->name, ==, "Alice");
  g_assert_cmpstr(user->name_key, ==, "alice");
  g_assert_cmpstr(user->password_hash, ==, "$argon2id$hash-of-alice");
  g_assert_cmpint(user->created, ==, NOW);
  g_assert_cmpint(user->failed_logins, ==, 0);
  g_assert_cmpint(user->locked_until, ==, 0);
  /* Keys are compared as they are: the store does not fold case itself. */
  assert_no_user(f, "Alice");
}

static void
test_duplicate(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Alice", "alice");
  g_autofree char *other_id = new_account_id();
  g_assert_false(
    f->iface->user_create(f->store, "ALICE", "alice", other_id, "other", NOW + 1, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_EXISTS);
  g_assert_cmpstr(error->message, ==, "user 'alice' exists already");
  g_autoptr(HarkStoreUser) user = get_user(f, "alice");
  /* An account id is never given twice, even to another name. */
  g_clear_error(&error);
  g_assert_false(f->iface->user_create(f->store, "Bob", "bob", user->account_id, "h", NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_EXISTS);
  assert_no_user(f, "bob");
  g_assert_cmpstr(user->name, ==, "Alice");
  g_assert_cmpstr(user->password_hash, ==, "$argon2id$hash-of-alice");
}

/* The call (which sets error) must fail with NOT_FOUND. */
#define ASSERT_NOT_FOUND(call)                                           \
  G_STMT_START                                                           \
  {                                                                      \
    g_autoptr(GError) error = NULL;                                      \
    g_assert_false(call);                                                \
    g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND); \
  }                                                                      \
  G_STMT_END

static void
test_unknown(Fixture *f)
{
  gint64 value = -1;
  create_user(f, "Alice", "alice"); /* someone exists, just not "nobody" */
  assert_no_user(f, "nobody");
  ASSERT_NOT_FOUND(
    f->iface->user_set_password(f->store, "nobody", "h", TRUE, NULL, NOW, NULL, &error));
  ASSERT_NOT_FOUND(f->iface->devices_list(f->store, "nobody", &error) != NULL);
  ASSERT_NOT_FOUND(f->iface->device_get(f->store, "nobody", "fp", &error) != NULL);
  ASSERT_NOT_FOUND(f->iface->device_seen(f->store, "nobody", "fp", NOW, &error));
  ASSERT_NOT_FOUND(f->iface->device_revoke(f->store, "nobody", "fp", NOW, &error));
  ASSERT_NOT_FOUND(f->iface->device_get(f->store, "alice", "fp", &error) != NULL);
  ASSERT_NOT_FOUND(f->iface->device_revoke(f->store, "alice", "fp", NOW, &error));
  ASSERT_NOT_FOUND(f->iface->user_delete(f->store, "nobody", &error));
  ASSERT_NOT_FOUND(f->iface->user_note_failure(f->store, "nobody", 0, &value, &error));
  ASSERT_NOT_FOUND(f->iface->user_note_login(f->store, "nobody", "fp", "dev", NOW, &error));
  ASSERT_NOT_FOUND(f->iface->buddies_get(f->store, "nobody", &value, &error) != NULL);
  for (HarkBuddyOp op = HARK_BUDDY_ADD; op <= HARK_BUDDY_RENAME; op++)
    change_fails(f, "nobody", op, "alice", "A", -1, HARK_STORE_ERROR_NOT_FOUND);
  g_assert_cmpint(db_count(f, "SELECT count(*) FROM devices"), ==, 0);
  g_assert_cmpint(db_count(f, "SELECT count(*) FROM buddies"), ==, 0);
}

static void
test_set_password(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Alice", "alice");
  note_failure(f, "alice", 0);
  g_assert_true(f->iface->user_set_password(f->store, "alice", "$argon2id$new", FALSE, NULL, NOW,
                                            NULL, &error));
  g_assert_no_error(error);
  g_autoptr(HarkStoreUser) user = get_user(f, "alice");
  g_assert_cmpstr(user->password_hash, ==, "$argon2id$new");
  g_assert_cmpstr(user->name, ==, "Alice");
  g_assert_cmpint(user->created, ==, NOW);
  g_assert_cmpint(user->failed_logins, ==, 1);
}

static void
test_note_failure(Fixture *f)
{
  create_user(f, "Bob", "bob");
  g_assert_cmpint(note_failure(f, "bob", 0), ==, 1);
  g_assert_cmpint(note_failure(f, "bob", 0), ==, 2);
  g_assert_cmpint(note_failure(f, "bob", NOW + 500), ==, 3);
  /* An earlier lock_until never shortens the lock already there. */
  g_assert_cmpint(note_failure(f, "bob", NOW + 100), ==, 4);
  g_autoptr(HarkStoreUser) user = get_user(f, "bob");
  g_assert_cmpint(user->failed_logins, ==, 4);
  g_assert_cmpint(user->locked_until, ==, NOW + 500);
  g_assert_cmpint(note_failure(f, "bob", NOW + 900), ==, 5);
  g_autoptr(HarkStoreUser) later = get_user(f, "bob");
  g_assert_cmpint(later->locked_until, ==, NOW + 900);
}

static void
test_note_login(Fixture *f)
{
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  note_failure(f, "alice", NOW + 900);
  note_failure(f, "alice", NOW + 900);
  note_login(f, "alice", "fp-1", "laptop", NOW + 10);
  g_autoptr(HarkStoreUser) user = get_user(f, "alice");
  g_assert_cmpint(user->failed_logins, ==, 0);
  g_assert_cmpint(user->locked_until, ==, 0);
  g_assert_cmpint(count_devices(f, "alice"), ==, 1);
  /* The same device again is the same row, renamed and with the new time. */
  note_login(f, "alice", "fp-1", "work laptop", NOW + 20);
  g_assert_cmpint(count_devices(f, "alice"), ==, 1);
  g_autofree char *device_name =
    db_query(f, "SELECT device_name FROM devices WHERE user_key = 'alice'");
  g_assert_cmpstr(device_name, ==, "work laptop");
  g_assert_cmpint(db_count(f, "SELECT last_seen FROM devices WHERE user_key = 'alice'"), ==,
                  NOW + 20);
  note_login(f, "alice", "fp-2", "phone", NOW + 30);
  g_assert_cmpint(count_devices(f, "alice"), ==, 2);
  /* Devices are per user: another user may log in from the same key. */
  note_login(f, "bob", "fp-1", "shared", NOW + 40);
  g_assert_cmpint(count_devices(f, "bob"), ==, 1);
}

static void
test_users_find(Fixture *f)
{
  /* Keys in byte order: a%c a\c a_c a_cd ab abc axc b */
  static const char *const users[][2] = {
    { "Axc", "axc" }, { "A_C", "a_c" }, { "B", "b" },       { "A%C", "a%c" },
    { "Abc", "abc" }, { "Ab", "ab" },   { "A_CD", "a_cd" }, { "A\\C", "a\\c" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(users); i++)
    create_user(f, users[i][0], users[i][1]);
  assert_found(f, "a", 100, "A%C", "A\\C", "A_C", "A_CD", "Ab", "Abc", "Axc", NULL);
  assert_found(f, "a", 3, "A%C", "A\\C", "A_C", NULL);
  assert_found(f, "a", 0, NULL);
  assert_found(f, "", 100, "A%C", "A\\C", "A_C", "A_CD", "Ab", "Abc", "Axc", "B", NULL);
  /* '%', '_' and '\' are plain characters, not patterns or escapes. */
  assert_found(f, "a_", 100, "A_C", "A_CD", NULL);
  assert_found(f, "a%", 100, "A%C", NULL);
  assert_found(f, "a\\", 100, "A\\C", NULL);
  assert_found(f, "ab", 100, "Ab", "Abc", NULL);
  assert_found(f, "abc", 100, "Abc", NULL);
  assert_found(f, "abcd", 100, NULL);
  assert_found(f, "A", 100, NULL);
}

/* ---- cases: buddy lists ------------------------------------------------------------------ */

static void
test_buddies(Fixture *f)
{
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  create_user(f, "Carol", "carol");
  assert_buddies(f, "alice", 0, NULL);
  change(f, "alice", HARK_BUDDY_ADD, "bob", "Bobby", 0, 1);
  /* No alias: the buddy's name as registered, or the key of someone not registered. */
  change(f, "alice", HARK_BUDDY_ADD, "carol", NULL, -1, 2);
  change(f, "alice", HARK_BUDDY_ADD, "zed", NULL, 2, 3);
  assert_buddies(f, "alice", 3, "bob", "Bobby", "carol", "Carol", "zed", "zed", NULL);
  change_fails(f, "alice", HARK_BUDDY_ADD, "bob", "again", 3, HARK_STORE_ERROR_EXISTS);
  change_fails(f, "alice", HARK_BUDDY_ADD, "bob", "again", -1, HARK_STORE_ERROR_EXISTS);
  change(f, "alice", HARK_BUDDY_RENAME, "bob", "Robert", 3, 4);
  change_fails(f, "alice", HARK_BUDDY_RENAME, "dave", "D", -1, HARK_STORE_ERROR_NOT_FOUND);
  change_fails(f, "alice", HARK_BUDDY_REMOVE, "dave", NULL, 4, HARK_STORE_ERROR_NOT_FOUND);
  change(f, "alice", HARK_BUDDY_RENAME, "carol", "C.", -1, 5);
  change(f, "alice", HARK_BUDDY_RENAME, "carol", NULL, -1, 6);
  change(f, "alice", HARK_BUDDY_REMOVE, "zed", NULL, 6, 7);
  /* Failed changes left the revision alone. */
  assert_buddies(f, "alice", 7, "bob", "Robert", "carol", "Carol", NULL);
  /* Lists are per user. */
  assert_buddies(f, "bob", 0, NULL);
  change(f, "bob", HARK_BUDDY_ADD, "alice", "Al", -1, 1);
  assert_buddies(f, "alice", 7, "bob", "Robert", "carol", "Carol", NULL);
}

static void
test_buddies_conflict(Fixture *f)
{
  create_user(f, "Alice", "alice");
  change(f, "alice", HARK_BUDDY_ADD, "bob", NULL, 0, 1);
  change(f, "alice", HARK_BUDDY_ADD, "carol", NULL, 1, 2);
  /* A device still at revision 1 (or one from the future) is refused, for any operation,
   * before the operation's own checks. */
  change_fails(f, "alice", HARK_BUDDY_REMOVE, "bob", NULL, 1, HARK_STORE_ERROR_CONFLICT);
  change_fails(f, "alice", HARK_BUDDY_ADD, "dave", NULL, 0, HARK_STORE_ERROR_CONFLICT);
  change_fails(f, "alice", HARK_BUDDY_RENAME, "bob", "B", 3, HARK_STORE_ERROR_CONFLICT);
  change_fails(f, "alice", HARK_BUDDY_ADD, "bob", NULL, 1, HARK_STORE_ERROR_CONFLICT);
  assert_buddies(f, "alice", 2, "bob", "bob", "carol", "carol", NULL);
  change(f, "alice", HARK_BUDDY_REMOVE, "bob", NULL, 2, 3);
  assert_buddies(f, "alice", 3, "carol", "carol", NULL);
}

static void
test_delete(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  create_user(f, "Carol", "carol");
  create_user(f, "Dave", "dave");
  change(f, "alice", HARK_BUDDY_ADD, "bob", NULL, -1, 1);
  change(f, "bob", HARK_BUDDY_ADD, "alice", NULL, -1, 1);
  change(f, "carol", HARK_BUDDY_ADD, "alice", "A", -1, 1);
  change(f, "carol", HARK_BUDDY_ADD, "bob", NULL, -1, 2);
  change(f, "dave", HARK_BUDDY_ADD, "bob", NULL, -1, 1);
  note_login(f, "alice", "fp-a", "laptop", NOW);
  note_login(f, "bob", "fp-b", "phone", NOW);

  g_autoptr(HarkStoreUser) before = get_user(f, "alice");
  g_assert_true(f->iface->user_delete(f->store, "alice", &error));
  g_assert_no_error(error);
  assert_no_user(f, "alice");
  /* Gone from every list that named her, and those lists moved on a revision. */
  assert_buddies(f, "bob", 2, NULL);
  assert_buddies(f, "carol", 3, "bob", "Bob", NULL);
  assert_buddies(f, "dave", 1, "bob", "Bob", NULL);
  g_assert_cmpint(count_devices(f, "alice"), ==, 0);
  g_assert_cmpint(count_devices(f, "bob"), ==, 1);
  g_assert_cmpint(db_count(f, "SELECT count(*) FROM buddies WHERE user_key = 'alice'"), ==, 0);
  g_assert_false(f->iface->user_delete(f->store, "alice", &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);

  /* The name is free again, and the new Alice starts with nothing. */
  create_user(f, "ALICE", "alice");
  assert_buddies(f, "alice", 0, NULL);
  g_autoptr(HarkStoreUser) user = get_user(f, "alice");
  g_assert_cmpstr(user->name, ==, "ALICE");
  g_assert_cmpstr(user->account_id, !=, before->account_id);
  g_clear_error(&error);
  g_autoptr(GPtrArray) devices = f->iface->devices_list(f->store, "alice", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(devices->len, ==, 0);
}

/* ---- cases: contact requests and blocks --------------------------------------------------- */

static void
test_requests(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  create_user(f, "Carol", "carol");
  send_request(f, "alice", "bob", "hi, it's Alice", 10);
  g_autoptr(GPtrArray) list = f->iface->requests_list(f->store, "bob", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 1);
  const HarkStoreRequest *r = list->pdata[0];
  g_assert_cmpstr(r->message, ==, "hi, it's Alice");
  g_assert_cmpint(r->created, ==, NOW);
  /* Asking again while it waits: EXISTS, nothing changes. */
  send_request_fails(f, "alice", "bob", 10, HARK_STORE_ERROR_EXISTS);
  /* The pending limit counts pending requests only; asking again is no new one. */
  send_request_fails(f, "alice", "carol", 1, HARK_STORE_ERROR_LIMIT);
  send_request_fails(f, "alice", "bob", 1, HARK_STORE_ERROR_EXISTS);
  assert_requests(f, "carol", NULL);
  send_request_fails(f, "alice", "nobody", 10, HARK_STORE_ERROR_NOT_FOUND);
  /* Only the recipient answers: bob's key with alice as the recipient finds nothing. */
  g_assert_false(f->iface->request_answer(f->store, "alice", "bob", TRUE, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  /* Declined: kept with its time, no longer pending, and asked again it is pending. */
  answer_request(f, "bob", "alice", FALSE);
  assert_requests(f, "bob", "alice>bob:1700000001", NULL);
  g_assert_false(f->iface->request_answer(f->store, "bob", "alice", TRUE, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  send_request(f, "alice", "bob", NULL, 10);
  assert_requests(f, "alice", "alice>bob:0", NULL);
  /* Accepted: both lists, both revisions, and the requests between them go. */
  send_request(f, "bob", "alice", NULL, 10);
  answer_request(f, "bob", "alice", TRUE);
  assert_buddies(f, "alice", 1, "bob", "Bob", NULL);
  assert_buddies(f, "bob", 1, "alice", "Alice", NULL);
  assert_requests(f, "alice", NULL);
  /* Cancelling: only a pending request of one's own. */
  send_request(f, "carol", "alice", NULL, 10);
  g_assert_false(f->iface->request_cancel(f->store, "alice", "carol", &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_assert_true(f->iface->request_cancel(f->store, "carol", "alice", &error));
  g_assert_no_error(error);
  assert_requests(f, "carol", NULL);
}

static void
test_blocks(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  create_user(f, "Mallory", "mallory");
  change(f, "bob", HARK_BUDDY_ADD, "mallory", NULL, -1, 1);
  send_request(f, "mallory", "bob", NULL, 10);
  send_request(f, "bob", "mallory", NULL, 10);
  block(f, "bob", "mallory", TRUE);
  /* Her pending request is declined, his is withdrawn, her entry goes (revision up). */
  assert_requests(f, "bob", "mallory>bob:1700000002", NULL);
  assert_buddies(f, "bob", 2, NULL);
  block(f, "bob", "mallory", TRUE);
  assert_buddies(f, "bob", 2, NULL);
  g_autoptr(GPtrArray) blocked = f->iface->blocks_list(f->store, "bob", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(blocked->len, ==, 1);
  g_assert_cmpstr(blocked->pdata[0], ==, "mallory");
  /* Requests made while blocked are stored (the server hides them); unblocking declines
   * them and restores nothing. */
  send_request(f, "mallory", "bob", NULL, 10);
  block(f, "bob", "mallory", FALSE);
  assert_requests(f, "bob", "mallory>bob:1700000002", NULL);
  assert_buddies(f, "bob", 2, NULL);
  g_assert_false(f->iface->block_set(f->store, "bob", "mallory", FALSE, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_assert_false(f->iface->block_set(f->store, "bob", "nobody", TRUE, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  /* A deleted user's requests and blocks go with them, both ways. */
  block(f, "alice", "mallory", TRUE);
  send_request(f, "alice", "bob", NULL, 10);
  g_assert_true(f->iface->user_delete(f->store, "mallory", &error));
  g_assert_no_error(error);
  assert_requests(f, "bob", "alice>bob:0", NULL);
  g_autoptr(GPtrArray) none = f->iface->blocks_list(f->store, "alice", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(none->len, ==, 0);
  g_assert_null(f->iface->requests_list(f->store, "mallory", &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
}

/* ---- cases: devices ---------------------------------------------------------------------- */

static HarkStoreDevice *
get_device(Fixture *f, const char *name_key, const char *device_id)
{
  g_autoptr(GError) error = NULL;
  HarkStoreDevice *device = f->iface->device_get(f->store, name_key, device_id, &error);
  g_assert_no_error(error);
  g_assert_nonnull(device);
  return device;
}

static void
set_password(Fixture *f, gboolean revoke_others, const char *keep, gint64 now,
             gint64 expected_revoked)
{
  g_autoptr(GError) error = NULL;
  gint64 revoked = -1;
  g_assert_true(f->iface->user_set_password(f->store, "alice", "$argon2id$new", revoke_others, keep,
                                            now, &revoked, &error));
  g_assert_no_error(error);
  g_assert_cmpint(revoked, ==, expected_revoked);
}

static void
test_devices(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  note_login(f, "alice", "fp-1", "laptop", NOW + 10);
  note_login(f, "alice", "fp-2", "phone", NOW + 20);
  note_login(f, "alice", "fp-3", "tablet", NOW + 30);
  note_login(f, "bob", "fp-1", "shared", NOW + 40);
  g_assert_true(f->iface->device_seen(f->store, "alice", "fp-1", NOW + 50, &error));
  note_login(f, "alice", "fp-2", "new phone", NOW + 60);

  g_autoptr(GPtrArray) devices = f->iface->devices_list(f->store, "alice", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(devices->len, ==, 3);
  const HarkStoreDevice *first = g_ptr_array_index(devices, 0);
  g_assert_cmpstr(first->device_id, ==, "fp-1");
  g_assert_cmpstr(first->name, ==, "laptop");
  g_assert_cmpint(first->first_seen, ==, NOW + 10);
  g_assert_cmpint(first->last_seen, ==, NOW + 50);
  g_assert_cmpint(first->revoked, ==, 0);
  const HarkStoreDevice *second = g_ptr_array_index(devices, 1);
  g_assert_cmpstr(second->name, ==, "new phone");
  g_assert_cmpint(second->first_seen, ==, NOW + 20);
  g_assert_cmpint(second->last_seen, ==, NOW + 60);

  /* Revoked once: a second revocation keeps the first time. */
  g_assert_true(f->iface->device_revoke(f->store, "alice", "fp-3", NOW + 70, &error));
  g_assert_true(f->iface->device_revoke(f->store, "alice", "fp-3", NOW + 80, &error));
  g_assert_no_error(error);
  g_autoptr(HarkStoreDevice) tablet = get_device(f, "alice", "fp-3");
  g_assert_cmpint(tablet->revoked, ==, NOW + 70);
  /* Bob's device with the same key is another device. */
  g_autoptr(HarkStoreDevice) shared = get_device(f, "bob", "fp-1");
  g_assert_cmpint(shared->revoked, ==, 0);

  /* A password change revokes the others (not the one kept, nor again the one revoked);
   * without revoke_others it revokes nothing. */
  set_password(f, FALSE, NULL, NOW + 85, 0);
  set_password(f, TRUE, "fp-1", NOW + 90, 1);
  g_autoptr(HarkStoreDevice) laptop = get_device(f, "alice", "fp-1");
  g_autoptr(HarkStoreDevice) phone = get_device(f, "alice", "fp-2");
  g_autoptr(HarkStoreDevice) tablet_after = get_device(f, "alice", "fp-3");
  g_assert_cmpint(laptop->revoked, ==, 0);
  g_assert_cmpint(phone->revoked, ==, NOW + 90);
  g_assert_cmpint(tablet_after->revoked, ==, NOW + 70);
  g_autoptr(HarkStoreDevice) still_shared = get_device(f, "bob", "fp-1");
  g_assert_cmpint(still_shared->revoked, ==, 0);
  set_password(f, TRUE, NULL, NOW + 95, 1);
  g_autoptr(HarkStoreDevice) laptop_after = get_device(f, "alice", "fp-1");
  g_assert_cmpint(laptop_after->revoked, ==, NOW + 95);

  /* A login with the password makes the device a working one again. */
  note_login(f, "alice", "fp-2", "phone", NOW + 100);
  g_autoptr(HarkStoreDevice) phone_again = get_device(f, "alice", "fp-2");
  g_assert_cmpint(phone_again->revoked, ==, 0);
  g_assert_cmpint(phone_again->first_seen, ==, NOW + 20);
}

/* ---- held messages (version 4) ------------------------------------------------------------ */

/* Room for 3 messages or 100 bytes per sender, 2 or 50 per device. */
static const HarkStoreMessageLimits small_limits = { { 3, 100 }, { 2, 50 } };

/* Holds size bytes (all id[0]) for device of user_key from sender_key at held_at, for 30
 * days; FALSE with error when refused. */
static gboolean
hold_message_full(Fixture *f, const char *id, const char *device, const char *user_key,
                  const char *sender_key, gsize size, gint64 held_at, GError **error)
{
  g_autofree guint8 *data = g_malloc(size);
  memset(data, id[0], size);
  g_autoptr(GBytes) envelope = g_bytes_new(data, size);
  g_autoptr(HarkStoreMessage) message = hark_store_message_new(
    id, device, user_key, sender_key, "fp-sender", envelope, held_at, held_at + 30 * 86400);
  return f->iface->message_hold(f->store, message, &small_limits, error);
}

static void
hold_message(Fixture *f, const char *id, const char *device, const char *user_key,
             const char *sender_key, gsize size, gint64 held_at)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hold_message_full(f, id, device, user_key, sender_key, size, held_at, &error));
  g_assert_no_error(error);
}

/* The ids messages_list gives for device, joined with ','; each envelope is checked to be
 * what hold_message stored. Static buffer: one call's answer at a time. */
static const char *
held_ids(Fixture *f, const char *device, gint64 now, guint limit, gboolean *more)
{
  static char text[256];
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = f->iface->messages_list(f->store, device, now, limit, more, &error);
  g_assert_no_error(error);
  g_autoptr(GString) ids = g_string_new(NULL);
  for (guint i = 0; list != NULL && i < list->len; i++) {
    const HarkStoreMessage *message = list->pdata[i];
    gsize size = 0;
    const guint8 *data = g_bytes_get_data(message->envelope, &size);
    g_assert_true(size > 0 && data[0] == (guint8)message->id[0]);
    g_assert_cmpstr(message->device_id, ==, device);
    g_string_append_printf(ids, "%s%s", i ? "," : "", message->id);
  }
  g_strlcpy(text, ids->str, sizeof text);
  return text;
}

static void
assert_usage(Fixture *f, const char *sender_key, const char *device, gint64 now,
             gint64 sender_count, gint64 sender_bytes, gint64 device_count, gint64 device_bytes)
{
  g_autoptr(GError) error = NULL;
  HarkStoreUsage sender, held;
  g_assert_true(
    f->iface->messages_usage(f->store, sender_key, device, now, &sender, &held, &error));
  g_assert_no_error(error);
  g_assert_cmpint(sender.count, ==, sender_count);
  g_assert_cmpint(sender.bytes, ==, sender_bytes);
  g_assert_cmpint(held.count, ==, device_count);
  g_assert_cmpint(held.bytes, ==, device_bytes);
}

/* Limits in the transaction (sender first: LIMIT; then the device: FULL), oldest first in
 * the order held, deletion only of the device's own, expiry, and the messages going with
 * their recipient user. */
static void
test_held_messages(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  hold_message(f, "b2", "fp-b", "bob", "alice", 10, NOW);
  hold_message(f, "a1", "fp-b", "bob", "alice", 10, NOW); /* same second: after b2 */
  g_assert_false(hold_message_full(f, "c3", "fp-b", "bob", "carol", 10, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_FULL);
  g_clear_error(&error);
  hold_message(f, "d4", "fp-c", "bob", "alice", 10, NOW + 1);
  g_assert_false(hold_message_full(f, "e5", "fp-c", "bob", "alice", 10, NOW + 1, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_LIMIT);
  g_clear_error(&error);
  g_assert_false(hold_message_full(f, "f6", "fp-d", "bob", "carol", 51, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_FULL); /* bytes */
  g_clear_error(&error);
  g_assert_false(hold_message_full(f, "g7", "fp-d", "nobody", "carol", 1, NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  assert_usage(f, "alice", "fp-b", NOW, 3, 30, 2, 20);

  gboolean more = FALSE;
  g_assert_cmpstr(held_ids(f, "fp-b", NOW, 1, &more), ==, "b2");
  g_assert_true(more);
  g_assert_cmpstr(held_ids(f, "fp-b", NOW, 10, &more), ==, "b2,a1");
  g_assert_false(more);
  g_assert_cmpstr(held_ids(f, "fp-x", NOW, 10, &more), ==, "");

  /* Another device's ids are left alone. */
  const char *const ids[] = { "b2", "d4", "zz" };
  gint64 deleted = -1;
  g_assert_true(f->iface->messages_delete(f->store, "fp-b", ids, 3, &deleted, &error));
  g_assert_no_error(error);
  g_assert_cmpint(deleted, ==, 1);
  g_assert_cmpstr(held_ids(f, "fp-c", NOW, 10, NULL), ==, "d4");

  /* Expired: not listed, not counted, then gone. */
  gint64 later = NOW + 30 * 86400; /* a1 expires now; d4, held a second later, does not */
  g_assert_cmpstr(held_ids(f, "fp-b", later, 10, NULL), ==, "");
  assert_usage(f, "alice", "fp-b", later, 1, 10, 0, 0);
  g_assert_true(f->iface->messages_expire(f->store, later, &deleted, &error));
  g_assert_no_error(error);
  g_assert_cmpint(deleted, ==, 1);
  assert_usage(f, "alice", "fp-c", NOW, 1, 10, 1, 10);

  g_assert_true(f->iface->user_delete(f->store, "bob", &error));
  g_assert_no_error(error);
  assert_usage(f, "alice", "fp-c", NOW, 0, 0, 0, 0);
}

/* The last certificate of each device, for devices not revoked whose certificate is still
 * valid; a device found by its id alone, revoked ones not. */
static void
test_device_certificates(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  create_user(f, "Bob", "bob");
  note_login(f, "bob", "fp-phone", "phone", NOW);
  note_login(f, "bob", "fp-tablet", "tablet", NOW + 1);
  g_assert_false(f->iface->device_set_certificate(f->store, "bob", "fp-none", "x", NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_assert_true(
    f->iface->device_set_certificate(f->store, "bob", "fp-phone", "old", NOW + 10, &error));
  g_assert_true(
    f->iface->device_set_certificate(f->store, "bob", "fp-phone", "new", NOW + 100, &error));
  g_assert_true(
    f->iface->device_set_certificate(f->store, "bob", "fp-tablet", "tab", NOW + 50, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) both = f->iface->device_certificates(f->store, "bob", NOW, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(both->len, ==, 2);
  const HarkStoreCertificate *phone = both->pdata[0];
  g_assert_cmpstr(phone->device_id, ==, "fp-phone");
  g_assert_cmpstr(phone->certificate, ==, "new");
  g_assert_cmpint(phone->expires, ==, NOW + 100);
  g_autoptr(GPtrArray) one = f->iface->device_certificates(f->store, "bob", NOW + 60, &error);
  g_assert_cmpuint(one->len, ==, 1);
  g_assert_null(f->iface->device_certificates(f->store, "nobody", NOW, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);

  g_autofree char *owner = NULL;
  g_autoptr(HarkStoreDevice) found = f->iface->device_find(f->store, "fp-tablet", &owner, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(owner, ==, "bob");
  g_assert_cmpstr(found->name, ==, "tablet");
  g_assert_true(f->iface->device_revoke(f->store, "bob", "fp-tablet", NOW + 2, &error));
  g_autoptr(HarkStoreDevice) revoked = f->iface->device_find(f->store, "fp-tablet", NULL, &error);
  g_assert_null(revoked);
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_autoptr(GPtrArray) after = f->iface->device_certificates(f->store, "bob", NOW, &error);
  g_assert_cmpuint(after->len, ==, 1);
}

/* A database as hark made it before account ids (schema 1), with users and a device:
 * opening it migrates in place, giving every account its own id. */
static const char schema_v1_sqlite[] =
  "CREATE TABLE users (name TEXT NOT NULL, name_key TEXT NOT NULL PRIMARY KEY,"
  " password_hash TEXT NOT NULL, created INTEGER NOT NULL,"
  " failed_logins INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0,"
  " buddy_revision INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
  "CREATE TABLE devices (user_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  " device_id TEXT NOT NULL, device_name TEXT NOT NULL, last_login INTEGER NOT NULL,"
  " PRIMARY KEY (user_key, device_id)) WITHOUT ROWID;"
  "CREATE TABLE buddies (user_key TEXT NOT NULL REFERENCES users (name_key) ON DELETE CASCADE,"
  " buddy_key TEXT NOT NULL, alias TEXT NOT NULL, PRIMARY KEY (user_key, buddy_key))"
  " WITHOUT ROWID;"
  "CREATE INDEX buddies_by_buddy ON buddies (buddy_key);"
  "PRAGMA user_version = 1;";
static const char schema_v1_postgres[] =
  "CREATE TABLE schema_version (version integer PRIMARY KEY,"
  " applied timestamptz NOT NULL DEFAULT now());"
  "INSERT INTO schema_version (version) VALUES (1);"
  "CREATE TABLE users (name text NOT NULL, name_key text COLLATE \"C\" PRIMARY KEY,"
  " password_hash text NOT NULL, created bigint NOT NULL,"
  " failed_logins bigint NOT NULL DEFAULT 0, locked_until bigint NOT NULL DEFAULT 0,"
  " buddy_revision bigint NOT NULL DEFAULT 0);"
  "CREATE TABLE devices (user_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key)"
  " ON DELETE CASCADE, device_id text NOT NULL, device_name text NOT NULL,"
  " last_login bigint NOT NULL, PRIMARY KEY (user_key, device_id));"
  "CREATE TABLE buddies (user_key text COLLATE \"C\" NOT NULL REFERENCES users (name_key)"
  " ON DELETE CASCADE, buddy_key text COLLATE \"C\" NOT NULL, alias text NOT NULL,"
  " PRIMARY KEY (user_key, buddy_key));"
  "CREATE INDEX buddies_by_buddy ON buddies (buddy_key);";
static const char rows_v1[] =
  "INSERT INTO users (name, name_key, password_hash, created) VALUES"
  " ('Alice', 'alice', 'h1', 1), ('Bob', 'bob', 'h2', 2);"
  "INSERT INTO devices (user_key, device_id, device_name, last_login) VALUES"
  " ('alice', 'fp-a', 'laptop', 1700000000);";

/* Several statements of constant SQL on the case's database. */
static void
db_script(Fixture *f, const char *sql)
{
  if (f->backend == BACKEND_POSTGRES) {
    PGconn *conn = pg_connect(f->conninfo);
    PGresult *result = PQexec(conn, sql);
    if (PQresultStatus(result) != PGRES_COMMAND_OK)
      g_error("%s: %s", sql, PQresultErrorMessage(result));
    PQclear(result);
    PQfinish(conn);
    return;
  }
  g_autofree char *path = sqlite_path(f);
  sqlite3 *db = NULL;
  char *message = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK)
    g_error("%s: %s", sql, message != NULL ? message : sqlite3_errmsg(db));
  sqlite3_close(db);
}

static void
test_migrate_v1(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  db_script(f, f->backend == BACKEND_SQLITE ? schema_v1_sqlite : schema_v1_postgres);
  db_script(f, rows_v1);
  f->store = open_store(f);
  g_assert_cmpint(schema_version(f), ==, 4);
  g_autoptr(HarkStoreUser) alice = get_user(f, "alice");
  g_autoptr(HarkStoreUser) bob = get_user(f, "bob");
  g_assert_true(hark_account_id_is_valid(alice->account_id));
  g_assert_true(hark_account_id_is_valid(bob->account_id));
  g_assert_cmpstr(alice->account_id, !=, bob->account_id);
  g_assert_cmpstr(alice->password_hash, ==, "h1");
  g_autoptr(HarkStoreDevice) laptop = get_device(f, "alice", "fp-a");
  g_assert_cmpstr(laptop->name, ==, "laptop");
  g_assert_cmpint(laptop->first_seen, ==, 1700000000);
  g_assert_cmpint(laptop->last_seen, ==, 1700000000);
  g_assert_cmpint(laptop->revoked, ==, 0);
  /* New accounts work as on a new database, and so do requests (schema 3) and held
   * messages (schema 4). */
  create_user(f, "Carol", "carol");
  g_assert_true(f->iface->device_revoke(f->store, "alice", "fp-a", NOW, &error));
  g_assert_no_error(error);
  send_request(f, "alice", "bob", NULL, 10);
  answer_request(f, "bob", "alice", TRUE);
  assert_buddies(f, "alice", 1, "bob", "Bob", NULL);
  hold_message(f, "m1", "fp-a", "alice", "bob", 10, NOW);
  g_assert_cmpstr(held_ids(f, "fp-a", NOW, 10, NULL), ==, "m1");
}

/* ---- cases: durability, input, files ----------------------------------------------------- */

static void
test_reopen(Fixture *f)
{
  create_user(f, "Alice", "alice");
  create_user(f, "Bob", "bob");
  g_assert_true(f->iface->user_set_password(f->store, "alice", "$argon2id$changed", FALSE, NULL,
                                            NOW, NULL, NULL));
  change(f, "alice", HARK_BUDDY_ADD, "bob", "Bobby", -1, 1);
  change(f, "alice", HARK_BUDDY_ADD, "carol", NULL, -1, 2);
  change(f, "alice", HARK_BUDDY_REMOVE, "carol", NULL, -1, 3);
  note_login(f, "alice", "fp-a", "laptop", NOW);
  note_failure(f, "bob", NOW + 60);
  note_failure(f, "bob", NOW + 60);

  restart(f);

  g_autoptr(HarkStoreUser) alice = get_user(f, "alice");
  g_assert_cmpstr(alice->name, ==, "Alice");
  g_assert_cmpstr(alice->password_hash, ==, "$argon2id$changed");
  g_assert_cmpint(alice->created, ==, NOW);
  g_autoptr(HarkStoreUser) bob = get_user(f, "bob");
  g_assert_cmpint(bob->failed_logins, ==, 2);
  g_assert_cmpint(bob->locked_until, ==, NOW + 60);
  assert_buddies(f, "alice", 3, "bob", "Bobby", NULL);
  assert_found(f, "", 10, "Alice", "Bob", NULL);
  g_assert_cmpint(count_devices(f, "alice"), ==, 1);
  /* Reopening did not migrate again, and counting goes on where it stopped. */
  g_assert_cmpint(schema_version(f), ==, 4);
  g_assert_cmpint(note_failure(f, "bob", 0), ==, 3);
  change(f, "alice", HARK_BUDDY_RENAME, "bob", "B", 3, 4);
}

/* Names and aliases full of SQL syntax are data like any other. */
static void
test_metacharacters(Fixture *f)
{
  static const char *const keys[] = {
    "o'brien",   "x\"y",        "robert'); drop table users;--",
    "a;b",       "back\\slash", "per%cent_",
    "$1",        "?1",          "--",
    "/* c */",   "it''s",       "ünïcödé",
    "tab\there", "' or '1'='1",
  };
  create_user(f, "Meta", "meta");
  for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
    g_autofree char *name = g_ascii_strup(keys[i], -1);
    g_autofree char *hash = g_strdup_printf("$argon2id$'%s\"", keys[i]);
    g_autofree char *account_id = new_account_id();
    g_assert_true(f->iface->user_create(f->store, name, keys[i], account_id, hash, NOW, NULL));
    g_autoptr(HarkStoreUser) user = get_user(f, keys[i]);
    g_assert_cmpstr(user->name, ==, name);
    g_assert_cmpstr(user->name_key, ==, keys[i]);
    g_assert_cmpstr(user->password_hash, ==, hash);
    assert_found(f, keys[i], 1, name, NULL);
    g_autofree char *alias = g_strdup_printf("'%s' \"%s\"; --", keys[i], keys[i]);
    change(f, "meta", HARK_BUDDY_ADD, keys[i], alias, -1, (gint64)i + 1);
    note_login(f, keys[i], keys[i], alias, NOW);
  }
  g_autoptr(GPtrArray) buddies = f->iface->buddies_get(f->store, "meta", NULL, NULL);
  g_assert_nonnull(buddies);
  g_assert_cmpuint(buddies->len, ==, G_N_ELEMENTS(keys));
  for (guint i = 0; i < buddies->len; i++) {
    const HarkStoreBuddy *buddy = g_ptr_array_index(buddies, i);
    g_autofree char *alias = g_strdup_printf("'%s' \"%s\"; --", buddy->name_key, buddy->name_key);
    g_assert_cmpstr(buddy->alias, ==, alias);
    g_assert_true(g_strv_contains((const char *const *)keys, buddy->name_key));
  }
  g_assert_cmpint(db_count(f, "SELECT count(*) FROM users"), ==, G_N_ELEMENTS(keys) + 1);
  g_assert_cmpint(db_count(f, "SELECT count(*) FROM devices"), ==, G_N_ELEMENTS(keys));
}

static void
assert_mode_0600(const char *path)
{
  GStatBuf st;
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0600);
}

/* The file holds password hashes: private, whatever the umask, WAL files too. */
static void
test_file_mode(Fixture *f)
{
  g_autofree char *path = sqlite_path(f);
  mode_t saved = umask(0);
  restart(f);
  create_user(f, "Alice", "alice");
  umask(saved);
  g_autofree char *wal = g_strconcat(path, "-wal", NULL);
  g_autofree char *shm = g_strconcat(path, "-shm", NULL);
  assert_mode_0600(path);
  assert_mode_0600(wal);
  assert_mode_0600(shm);
  g_autofree char *journal_mode = db_query(f, "PRAGMA journal_mode");
  g_assert_cmpstr(journal_mode, ==, "wal");
}

/* A database whose schema is newer than this hark is refused, not used or downgraded. */
static void
test_newer_schema(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  close_store(f);
  g_free(db_query(f, f->backend == BACKEND_SQLITE
                       ? "PRAGMA user_version = 99"
                       : "INSERT INTO schema_version (version) VALUES (99)"));
  g_assert_null(f->iface->open(f->instance, f->dir, f->settings, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND);
  g_assert_nonnull(strstr(error->message, "newer"));
}

/* A setting of the wrong type stops the plugin at load, naming the key. */
static void
test_bad_settings(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  const char *key = f->backend == BACKEND_SQLITE ? "path" : "conninfo";
  GVariantDict dict;
  g_variant_dict_init(&dict, NULL);
  g_variant_dict_insert(&dict, key, "x", (gint64)7);
  g_autoptr(GVariant) settings = g_variant_ref_sink(g_variant_dict_end(&dict));
  g_autofree char *file = g_strconcat(backend_name(f->backend), ".so", NULL);
  g_autofree char *path = g_build_filename(g_getenv("HARK_BUILD_ROOT"), "plugins", file, NULL);
  g_autoptr(HarkNode) node = hark_node_new(hark_config_new_default());
  g_assert_false(hark_node_load_plugin_file(node, path, settings, -1, &error));
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, key));
}

/* postgres: conninfo is required, and an unreachable server is a clear error. */
static void
test_postgres_conninfo(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) empty = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
  g_autoptr(HarkNode) node = hark_node_new(hark_config_new_default());
  g_autofree char *path =
    g_build_filename(g_getenv("HARK_BUILD_ROOT"), "plugins", "postgres.so", NULL);
  g_assert_true(hark_node_load_plugin_file(node, path, empty, -1, &error));
  GPtrArray *stores = hark_context_lookup(hark_node_get_context(node), HARK_KIND_STORE);
  const HarkRegistration *registration = g_ptr_array_index(stores, 0);
  const HarkStoreInterface *iface = registration->iface;
  g_assert_null(iface->open(registration->instance, f->dir, empty, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND);
  g_assert_nonnull(strstr(error->message, "conninfo"));
  g_clear_error(&error);

  GVariantDict dict;
  g_variant_dict_init(&dict, NULL);
  g_autofree char *nowhere = g_strdup_printf("host=%s dbname=hark connect_timeout=5", f->dir);
  g_variant_dict_insert(&dict, "conninfo", "s", nowhere);
  g_autoptr(GVariant) unreachable = g_variant_ref_sink(g_variant_dict_end(&dict));
  g_assert_null(iface->open(registration->instance, f->dir, unreachable, &error));
  g_assert_error(error, HARK_STORE_ERROR, HARK_STORE_ERROR_BACKEND);
  g_assert_nonnull(strstr(error->message, "cannot connect"));
  g_ptr_array_unref(stores);
}

/* postgres: connections the server dropped (a restart, an administrator) are made again
 * on their next use, and the call that found them dropped still works. */
static void
test_postgres_reconnect(Fixture *f)
{
  create_user(f, "Alice", "alice");
  g_autofree char *kill =
    g_strdup_printf("SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
                    " WHERE datname = '%s' AND pid <> pg_backend_pid()",
                    f->database->name);
  g_assert_cmpint(db_count(f, kill), >=, 1);
  /* More calls than the pool has connections, so every one of them is found dropped. */
  for (int i = 0; i < 8; i++)
    g_assert_cmpint(note_failure(f, "alice", 0), ==, i + 1);
  g_autoptr(HarkStoreUser) user = get_user(f, "alice");
  g_assert_cmpstr(user->name, ==, "Alice");
}

/* ---- cases: concurrency ------------------------------------------------------------------ */

typedef struct {
  Fixture *f;
  guint index;
  gint *waiting; /* threads not yet at the start line */
  gint *seen; /* failed_logins values returned (each must come once); or a count of
                   * wrong revisions */
  gpointer store; /* concurrent open: what this thread opened */
  GError *error;
} Worker;

/* Start all workers at once, so their calls really overlap. */
static void
start_line(Worker *w)
{
  g_atomic_int_dec_and_test(w->waiting);
  while (g_atomic_int_get(w->waiting) > 0)
    g_thread_yield();
}

static gpointer
failing_worker(gpointer data)
{
  Worker *w = data;
  start_line(w);
  for (int i = 0; i < CALLS_PER_THREAD && w->error == NULL; i++) {
    gint64 count = 0;
    if (w->f->iface->user_note_failure(w->f->store, "bob", NOW, &count, &w->error) && count >= 1 &&
        count <= N_THREADS * CALLS_PER_THREAD)
      g_atomic_int_inc(&w->seen[count - 1]);
  }
  return NULL;
}

static gpointer
buddy_worker(gpointer data)
{
  Worker *w = data;
  start_line(w);
  for (int i = 0; i < CALLS_PER_THREAD && w->error == NULL; i++) {
    g_autofree char *buddy = g_strdup_printf("buddy-%u-%02d", w->index, i);
    w->f->iface->buddies_change(w->f->store, "alice", HARK_BUDDY_ADD, buddy, NULL, -1, NULL,
                                &w->error);
  }
  return NULL;
}

/* Read the revision, change based on it, start again on CONFLICT: every change that
 * succeeds must be exactly one revision after the one it was based on, or two changes
 * passed the check at once. */
static gpointer
optimistic_worker(gpointer data)
{
  Worker *w = data;
  start_line(w);
  for (int done = 0; done < CALLS_PER_THREAD && w->error == NULL;) {
    g_autofree char *buddy = g_strdup_printf("friend-%u-%02d", w->index, done);
    gint64 revision = 0, next = 0;
    g_autoptr(GPtrArray) buddies =
      w->f->iface->buddies_get(w->f->store, "carol", &revision, &w->error);
    if (buddies == NULL)
      break;
    if (w->f->iface->buddies_change(w->f->store, "carol", HARK_BUDDY_ADD, buddy, NULL, revision,
                                    &next, &w->error)) {
      g_atomic_int_add(w->seen, next == revision + 1 ? 0 : 1);
      done++;
    } else if (g_error_matches(w->error, HARK_STORE_ERROR, HARK_STORE_ERROR_CONFLICT)) {
      g_clear_error(&w->error);
    }
  }
  return NULL;
}

static gpointer
opening_worker(gpointer data)
{
  Worker *w = data;
  start_line(w);
  w->store = w->f->iface->open(w->f->instance, w->f->dir, w->f->settings, &w->error);
  return NULL;
}

static void
run_workers(Fixture *f, GThreadFunc func, Worker *workers, gint *seen)
{
  GThread *threads[N_THREADS];
  gint waiting = N_THREADS;
  for (guint i = 0; i < N_THREADS; i++) {
    workers[i] = (Worker){ .f = f, .index = i, .waiting = &waiting, .seen = seen };
    threads[i] = g_thread_new("store-worker", func, &workers[i]);
  }
  for (guint i = 0; i < N_THREADS; i++) {
    g_thread_join(threads[i]);
    g_assert_no_error(workers[i].error);
  }
}

/* Four threads at once: no failure counted twice or lost, no buddy change lost, no
 * revision check passed by two changes at once. */
static void
test_concurrent(Fixture *f)
{
  Worker workers[N_THREADS];
  gint seen[N_THREADS * CALLS_PER_THREAD] = { 0 };
  create_user(f, "Bob", "bob");
  run_workers(f, failing_worker, workers, seen);
  g_autoptr(HarkStoreUser) bob = get_user(f, "bob");
  g_assert_cmpint(bob->failed_logins, ==, N_THREADS * CALLS_PER_THREAD);
  for (guint i = 0; i < G_N_ELEMENTS(seen); i++)
    g_assert_cmpint(seen[i], ==, 1);

  create_user(f, "Alice", "alice");
  run_workers(f, buddy_worker, workers, NULL);
  gint64 revision = 0;
  g_autoptr(GPtrArray) buddies = f->iface->buddies_get(f->store, "alice", &revision, NULL);
  g_assert_nonnull(buddies);
  g_assert_cmpuint(buddies->len, ==, N_THREADS * CALLS_PER_THREAD);
  g_assert_cmpint(revision, ==, N_THREADS * CALLS_PER_THREAD);

  gint wrong = 0;
  create_user(f, "Carol", "carol");
  run_workers(f, optimistic_worker, workers, &wrong);
  g_assert_cmpint(wrong, ==, 0);
  g_autoptr(GPtrArray) friends = f->iface->buddies_get(f->store, "carol", &revision, NULL);
  g_assert_cmpuint(friends->len, ==, N_THREADS * CALLS_PER_THREAD);
  g_assert_cmpint(revision, ==, N_THREADS * CALLS_PER_THREAD);
}

/* Several login servers starting at once on an empty database: each open succeeds, the
 * schema is made once, and they all see each other's changes. */
static void
test_concurrent_open(Fixture *f)
{
  Worker workers[N_THREADS];
  run_workers(f, opening_worker, workers, NULL);
  for (guint i = 0; i < N_THREADS; i++)
    g_assert_nonnull(workers[i].store);
  g_assert_cmpint(schema_version(f), ==, 4);
  if (f->backend == BACKEND_POSTGRES)
    g_assert_cmpint(db_count(f, "SELECT count(*) FROM schema_version"), ==, 4); /* each step once */
  f->store = workers[0].store;
  create_user(f, "Alice", "alice");
  f->store = workers[N_THREADS - 1].store;
  g_autoptr(HarkStoreUser) user = get_user(f, "alice");
  g_assert_cmpstr(user->name, ==, "Alice");
  for (guint i = 0; i < N_THREADS; i++)
    f->iface->close(workers[i].store);
  f->store = NULL;
}

/* ---- main -------------------------------------------------------------------------------- */

static const Case cases[] = {
  { "create-get", test_create_get, BACKEND_ALL },
  { "duplicate", test_duplicate, BACKEND_ALL },
  { "unknown", test_unknown, BACKEND_ALL },
  { "set-password", test_set_password, BACKEND_ALL },
  { "note-failure", test_note_failure, BACKEND_ALL },
  { "note-login", test_note_login, BACKEND_ALL },
  { "users-find", test_users_find, BACKEND_ALL },
  { "buddies", test_buddies, BACKEND_ALL },
  { "buddies-conflict", test_buddies_conflict, BACKEND_ALL },
  { "delete", test_delete, BACKEND_ALL },
  { "requests", test_requests, BACKEND_ALL },
  { "blocks", test_blocks, BACKEND_ALL },
  { "devices", test_devices, BACKEND_ALL },
  { "held-messages", test_held_messages, BACKEND_ALL },
  { "device-certificates", test_device_certificates, BACKEND_ALL },
  { "migrate-v1", test_migrate_v1, BACKEND_ALL, TRUE },
  { "reopen", test_reopen, BACKEND_ALL },
  { "metacharacters", test_metacharacters, BACKEND_ALL },
  { "newer-schema", test_newer_schema, BACKEND_ALL },
  { "bad-settings", test_bad_settings, BACKEND_ALL, TRUE },
  { "concurrent", test_concurrent, BACKEND_ALL },
  { "concurrent-open", test_concurrent_open, BACKEND_ALL, TRUE },
  { "file-mode", test_file_mode, BACKEND_SQLITE },
  { "conninfo", test_postgres_conninfo, BACKEND_POSTGRES, TRUE },
  { "reconnect", test_postgres_reconnect, BACKEND_POSTGRES },
};

int
main(int argc, char **argv)
{
  /* A case in a process of its own: a crash or a hang costs that case only. */
  hark_test_init_isolated(&argc, &argv, 90000);
  static const Backend backends[] = { BACKEND_SQLITE, BACKEND_POSTGRES };
  static Registration registrations[G_N_ELEMENTS(backends) * G_N_ELEMENTS(cases)];
  guint n = 0;
  for (gsize b = 0; b < G_N_ELEMENTS(backends); b++)
    for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
      if (!(cases[c].backends & backends[b]))
        continue;
      registrations[n] = (Registration){ &cases[c], backends[b] };
      g_autofree char *path =
        g_strdup_printf("/store/%s/%s", backend_name(backends[b]), cases[c].name);
      hark_test_add_isolated_data_func(path, &registrations[n++], run_case);
    }
  return g_test_run();
}
