/* test-pg.h: the one way a test makes a PostgreSQL database: a throw-away database of
 * the case's own on the server HARK_TEST_PG_CONNINFO names (scripts/check.sh exports it
 * from scripts/pg.sh), dropped when the case ends. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *name; /* <prefix>_<random hex> */
  char *conninfo; /* HARK_TEST_PG_CONNINFO with dbname=<name> (libpq takes the last one) */
} HarkTestPgDatabase;

/* A new empty database. NULL and the case skipped when HARK_TEST_PG_CONNINFO is not set;
 * NULL and the case failed (the server's message in the log) when it cannot be made. */
HarkTestPgDatabase *hark_test_pg_database_new(const char *prefix);
/* Drops the database (closing what is still connected to it) and frees. */
void hark_test_pg_database_free(HarkTestPgDatabase *database);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkTestPgDatabase, hark_test_pg_database_free)

/* Runs a statement as the server's administrator; FALSE (message logged) on failure. */
gboolean hark_test_pg_admin_exec(const char *sql);

G_END_DECLS
