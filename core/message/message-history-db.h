/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-history-db.h: what the files of the message history share (message-history-db.c,
 * message-history.c, message-outbox.c): the connection and its cached statements, errors,
 * and the checks of what callers hand in. Not for the rest of the message layer: it uses
 * message-history.h. */
#pragma once

#include "message-history.h"

#include <sqlite3.h>

G_BEGIN_DECLS

struct _HarkMessageHistory {
  sqlite3 *db;
  char *path;
  HarkClock *clock; /* borrowed; NULL: real time */
  GHashTable *stmts; /* SQL text (by address) -> prepared statement */
  gboolean in_transaction; /* the caller's begin */
};

/* The statement for sql (a string constant: its address is the cache key), reset, with
 * the arguments bound by format: 's' text (NULL binds NULL), 'b' a blob (pointer and
 * gsize), 'B' a GBytes, 'i' a gint64. NULL and error when preparing or binding fails. */
sqlite3_stmt *hark_message_db_query(HarkMessageHistory *h, const char *sql, GError **error,
                                    const char *format, ...);
/* One step: SQLITE_ROW or SQLITE_DONE, or -1 with error (the statement reset). NULL
 * (a failed query) gives -1 and leaves its error. */
int hark_message_db_step(HarkMessageHistory *h, sqlite3_stmt *stmt, GError **error);
/* Runs a statement to its end: the rows it changed, or -1 with error. */
gint64 hark_message_db_finish(HarkMessageHistory *h, sqlite3_stmt *stmt, GError **error);
/* The first column of the first row as an integer: TRUE with *value, FALSE and no error
 * when there was no row (or it was NULL), FALSE with error on failure. */
gboolean hark_message_db_first_int(HarkMessageHistory *h, sqlite3_stmt *stmt, gint64 *value,
                                   GError **error);
/* first_int with a fallback when there is no row: FALSE only on error. */
gboolean hark_message_db_int_or(HarkMessageHistory *h, sqlite3_stmt *stmt, gint64 fallback,
                                gint64 *value, GError **error);
GPtrArray *hark_message_db_rows(HarkMessageHistory *h, sqlite3_stmt *stmt,
                                gpointer (*from_row)(sqlite3_stmt *), GDestroyNotify free_row,
                                GError **error);

char *hark_message_db_column_text(sqlite3_stmt *stmt, int column);
GBytes *hark_message_db_column_bytes(sqlite3_stmt *stmt, int column);
/* Copies a 16-byte id column; FALSE when the stored value is not one. */
gboolean hark_message_db_column_id(sqlite3_stmt *stmt, int column, guint8 *id);

/* An operation of several statements is one savepoint: whole alone, and part of the
 * caller's transaction when there is one. op_end releases it when ok, else rolls it back
 * (and returns FALSE). */
gboolean hark_message_db_op_begin(HarkMessageHistory *h, GError **error);
gboolean hark_message_db_op_end(HarkMessageHistory *h, gboolean ok, GError **error);

/* Unix seconds of the history's clock. */
gint64 hark_message_db_now(HarkMessageHistory *h);

/* Sets INVALID with "message history: what"; returns FALSE. */
gboolean hark_message_db_invalid(GError **error, const char *what);
/* A name (user, title, kind): UTF-8 without control characters, 1 to 256 bytes. */
gboolean hark_message_db_is_name(const char *text);
gboolean hark_message_db_check_conversation(const char *key, GError **error);
gboolean hark_message_db_check_device(const char *device, GError **error);

G_END_DECLS
