/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-log.h: the calls this device took part in, kept in the state directory
 * (calls.sqlite, 0600), newest first, with the missed ones marked; and the `call-log`
 * command that shows them (private to the call layer and the node). */
#pragma once

#include <hark/command.h>

G_BEGIN_DECLS

#define HARK_CALL_LOG_ERROR (hark_call_log_error_quark())
GQuark hark_call_log_error_quark(void);

typedef enum {
  HARK_CALL_LOG_ERROR_IO, /* cannot create, open or read the file */
  HARK_CALL_LOG_ERROR_PERMISSIONS, /* other users could read it */
  HARK_CALL_LOG_ERROR_CORRUPT, /* not an SQLite file, damaged, or another program's */
  HARK_CALL_LOG_ERROR_VERSION, /* written by a newer hark */
  HARK_CALL_LOG_ERROR_DATABASE, /* anything else SQLite refused */
  HARK_CALL_LOG_ERROR_INVALID, /* an entry field out of its range */
} HarkCallLogError;

/* The file's name in the state directory. */
#define HARK_CALL_LOG_FILE "calls.sqlite"
/* At most this many entries are kept: adding one more drops the oldest. */
#define HARK_CALL_LOG_MAX_ENTRIES 10000

typedef struct _HarkCallLog HarkCallLog;

typedef struct {
  char *id; /* the call id, 32 hex */
  char *peer; /* the other user (canonical) */
  char *peer_device; /* the device that answered / called; NULL when none */
  gboolean outgoing;
  gint64 started_at, answered_at, ended_at; /* unix s; answered_at 0 when never */
  char *outcome; /* "answered", "missed", "declined", "busy", "cancelled", "no answer",
                  * "failed", "answered elsewhere" */
  char *reason; /* NULL or the words shown to the user */
  char *codec, *path; /* NULL when no media flowed */
} HarkCallLogEntry;

/* Opens (or creates, mode 0600) the log at path; refuses a file other users can reach,
 * one that is not a regular file, and a damaged or foreign one (never written into). */
HarkCallLog *hark_call_log_open(const char *path, GError **error);
void hark_call_log_close(HarkCallLog *log);
/* Checks and stores entry (a copy); a call already logged with that id and peer is
 * refused (INVALID). A reason that is not short text fit to show (control characters,
 * more than 200 bytes, not UTF-8: a peer's words) is kept escaped (hark_text_escape).
 * Drops the oldest entries beyond the cap. */
gboolean hark_call_log_add(HarkCallLog *log, const HarkCallLogEntry *entry, GError **error);
/* Newest first (by started_at), at most limit (0: no limit); missed_only: the missed
 * ones. Elements are HarkCallLogEntry, freed with the array. */
GPtrArray *hark_call_log_list(HarkCallLog *log, guint limit, gboolean missed_only, GError **error);
/* How many of the kept entries are missed calls; -1 with error on failure. */
gint64 hark_call_log_count_missed(HarkCallLog *log, GError **error);
/* An incoming call never answered on this device that the caller gave up on or that
 * rang out: "missed", "no answer", "cancelled" (not "declined", not "answered
 * elsewhere"). */
gboolean hark_call_log_entry_is_missed(const HarkCallLogEntry *entry);
void hark_call_log_entry_free(HarkCallLogEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkCallLogEntry, hark_call_log_entry_free)

/* The schema version a new file gets (PRAGMA user_version). */
guint hark_call_log_schema_version(void);
/* For tests: keep at most cap entries (default HARK_CALL_LOG_MAX_ENTRIES). */
void hark_call_log_set_cap(HarkCallLog *log, guint cap);

/* The `call-log` command: {"calls": [...], "missed": N}. *log NULL (no state directory,
 * or the file was refused): the command answers that calls are not available. */
void hark_call_log_commands_register(HarkContext *core_ctx, HarkCallLog **log);

G_END_DECLS
