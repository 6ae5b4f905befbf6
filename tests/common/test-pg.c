/* test-pg.c: throw-away PostgreSQL databases for the tests (see test-pg.h). */
#include "test-pg.h"

#include <libpq-fe.h>

static const char *
admin_conninfo(void)
{
  const char *conninfo = g_getenv("HARK_TEST_PG_CONNINFO");
  return conninfo != NULL && *conninfo != '\0' ? conninfo : NULL;
}

gboolean
hark_test_pg_admin_exec(const char *sql)
{
  PGconn *conn = PQconnectdb(admin_conninfo());
  gboolean ok = PQstatus(conn) == CONNECTION_OK;
  if (ok) {
    PGresult *result = PQexec(conn, sql);
    ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (!ok)
      g_test_message("%s: %s", sql, PQresultErrorMessage(result));
    PQclear(result);
  } else {
    g_test_message("cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
  }
  PQfinish(conn);
  return ok;
}

HarkTestPgDatabase *
hark_test_pg_database_new(const char *prefix)
{
  const char *admin = admin_conninfo();
  if (admin == NULL) {
    g_test_skip("HARK_TEST_PG_CONNINFO is not set (make check starts a server)");
    return NULL;
  }
  g_autofree char *name = g_strdup_printf("%s_%08x%08x", prefix, g_random_int(), g_random_int());
  g_autofree char *create = g_strdup_printf("CREATE DATABASE %s", name);
  if (!hark_test_pg_admin_exec(create)) {
    g_test_fail_printf("cannot create the database %s", name);
    return NULL;
  }
  HarkTestPgDatabase *database = g_new0(HarkTestPgDatabase, 1);
  database->conninfo = g_strdup_printf("%s dbname=%s", admin, name);
  database->name = g_steal_pointer(&name);
  return database;
}

void
hark_test_pg_database_free(HarkTestPgDatabase *database)
{
  if (database == NULL)
    return;
  g_autofree char *drop =
    g_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", database->name);
  hark_test_pg_admin_exec(drop);
  g_free(database->name);
  g_free(database->conninfo);
  g_free(database);
}
