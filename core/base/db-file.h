/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* db-file.h: what the core's SQLite files share (the message history, the call log):
 * opening one private and marked as ours, bringing its schema up to date, and the errors
 * SQLite's result codes become. Not installed. */
#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* The first five codes, in this order, of the error enum of every domain a HarkDbFile
 * names (G_STATIC_ASSERT it next to that enum's use). */
typedef enum {
  HARK_DB_ERROR_IO, /* cannot create, open or read the file */
  HARK_DB_ERROR_PERMISSIONS, /* other users could read it */
  HARK_DB_ERROR_CORRUPT, /* not an SQLite file, damaged, or another program's */
  HARK_DB_ERROR_VERSION, /* written by a newer hark */
  HARK_DB_ERROR_DATABASE, /* anything else SQLite refused */
} HarkDbError;

/* One kind of file (a static const). */
typedef struct {
  GQuark (*domain)(void); /* of its errors: the domain's quark function */
  const char *label; /* begins every error: "message history" */
  const char *contents; /* what others could read: "the messages" */
  const char *fresh; /* what moving the file away starts: "a new history" */
  guint32 application_id; /* PRAGMA application_id: marks the file as this kind */
  const char *const *migrations; /* step i takes user_version i to i + 1 */
  gsize n_migrations;
} HarkDbKind;

/* Opens path: creates it 0600 (its folder 0700) when missing, refuses a file that is not
 * regular or that other users can reach (PERMISSIONS, with the chmod that fixes it), one
 * that is not a database or is another kind's or program's (CORRUPT: it is never written
 * into), one of a newer schema (VERSION); then WAL, extended result codes, a busy timeout,
 * and the migrations due, one transaction each. NULL with error on failure. */
sqlite3 *hark_db_open(const HarkDbKind *kind, const char *path, GError **error);

/* Sets error for an SQLite result code: CORRUPT for a damaged file, else DATABASE with
 * SQLite's message. Returns FALSE. */
gboolean hark_db_set_error(const HarkDbKind *kind, sqlite3 *db, const char *path, int rc,
                           GError **error);
/* Runs constant SQL (pragmas, transactions, savepoints; never anything with input). */
gboolean hark_db_exec(const HarkDbKind *kind, sqlite3 *db, const char *path, const char *sql,
                      GError **error);

/* UTF-8 without control characters, 1 to max bytes: a name or words fit to keep and show. */
gboolean hark_db_is_text(const char *text, gsize max);

G_END_DECLS
