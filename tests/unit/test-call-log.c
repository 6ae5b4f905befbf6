/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-call-log.c: the call log (core/call/call-log.c) on a temporary state directory:
 * what is added comes back newest first and survives a reopen, missed calls are the
 * incoming ones nobody answered here, the log stays under its cap, the file is private
 * (0600; a file others can read is refused), a damaged file is refused and left as it
 * was, bad entries are refused; and the `call-log` command through the command table. */
#include "hark-private.h"
#include "hark/hark.h"
#include "test-files.h"

#include "call-log.h"
#include "node-private.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#define ID(c) "0123456789abcdef0123456789abcd" c

typedef struct {
  char *dir;
  char *path;
  HarkCallLog *log;
} Fixture;

static HarkCallLog *
open_log(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  HarkCallLog *log = hark_call_log_open(f->path, &error);
  g_assert_no_error(error);
  g_assert_nonnull(log);
  return log;
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("hark-calllog-XXXXXX", &error);
  g_assert_no_error(error);
  f->path = g_build_filename(f->dir, "state", HARK_CALL_LOG_FILE, NULL);
  f->log = open_log(f);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  (void)data;
  hark_call_log_close(f->log);
  g_assert_true(hark_test_remove_tree(f->dir));
  g_free(f->path);
  g_free(f->dir);
}

/* A call with peer, started at start; outcome "answered" gets answered/ended times. */
static HarkCallLogEntry
entry(const char *id, const char *peer, gboolean outgoing, gint64 start, const char *outcome)
{
  gboolean answered = g_strcmp0(outcome, "answered") == 0;
  HarkCallLogEntry e = {
    .id = (char *)id,
    .peer = (char *)peer,
    .peer_device =
      answered ? "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" : NULL,
    .outgoing = outgoing,
    .started_at = start,
    .answered_at = answered ? start + 2 : 0,
    .ended_at = answered ? start + 62 : start + 45,
    .outcome = (char *)outcome,
    .codec = answered ? "opus" : NULL,
    .path = answered ? "host udp" : NULL,
  };
  return e;
}

static void
add(Fixture *f, HarkCallLogEntry e)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_call_log_add(f->log, &e, &error));
  g_assert_no_error(error);
}

/* The ids listed, as "a b c" (each id's last two characters). */
static char *
ids(Fixture *f, guint limit, gboolean missed_only)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = hark_call_log_list(f->log, limit, missed_only, &error);
  g_assert_no_error(error);
  g_autoptr(GString) s = g_string_new(NULL);
  for (guint i = 0; i < list->len; i++) {
    const HarkCallLogEntry *e = list->pdata[i];
    g_string_append_printf(s, "%s%s", i > 0 ? " " : "", e->id + 30);
  }
  return g_string_free(g_steal_pointer(&s), FALSE);
}

#define ASSERT_IDS(f, limit, missed, expected)     \
  do {                                             \
    g_autofree char *got_ = ids(f, limit, missed); \
    g_assert_cmpstr(got_, ==, expected);           \
  } while (0)

static void
test_round_trip(Fixture *f, gconstpointer data)
{
  (void)data;
  HarkCallLogEntry in = entry(ID("01"), "bob", TRUE, 1700000000, "answered");
  in.reason = "bob hung up";
  add(f, in);
  hark_call_log_close(f->log);
  f->log = open_log(f);

  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = hark_call_log_list(f->log, 0, FALSE, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 1);
  const HarkCallLogEntry *out = list->pdata[0];
  g_assert_cmpstr(out->id, ==, in.id);
  g_assert_cmpstr(out->peer, ==, "bob");
  g_assert_cmpstr(out->peer_device, ==, in.peer_device);
  g_assert_true(out->outgoing);
  g_assert_cmpint(out->started_at, ==, 1700000000);
  g_assert_cmpint(out->answered_at, ==, 1700000002);
  g_assert_cmpint(out->ended_at, ==, 1700000062);
  g_assert_cmpstr(out->outcome, ==, "answered");
  g_assert_cmpstr(out->reason, ==, "bob hung up");
  g_assert_cmpstr(out->codec, ==, "opus");
  g_assert_cmpstr(out->path, ==, "host udp");
  g_assert_cmpuint(hark_call_log_schema_version(), >=, 1);
}

/* A node's files are small: opening one more call log, adding to it and reading it back
 * does not take SQLite's first block of 20 cached pages (86 KiB) per connection. */
static void
test_open_is_small(Fixture *f, gconstpointer data)
{
  (void)data;
  hark_call_log_close(f->log);
  sqlite3_int64 before = sqlite3_memory_used();
  f->log = open_log(f);
  add(f, entry(ID("01"), "bob", TRUE, 1000, "answered"));
  ASSERT_IDS(f, 10, FALSE, "01");
  sqlite3_int64 used = sqlite3_memory_used() - before;
  g_test_message("an open call log holds %lld bytes of SQLite's memory", (long long)used);
  g_assert_cmpint(used, <, 64 * 1024);
}

static void
test_newest_first_and_limit(Fixture *f, gconstpointer data)
{
  (void)data;
  add(f, entry(ID("02"), "bob", TRUE, 2000, "answered"));
  add(f, entry(ID("01"), "carol", FALSE, 1000, "declined"));
  add(f, entry(ID("04"), "bob", FALSE, 4000, "missed"));
  add(f, entry(ID("03"), "dave", TRUE, 3000, "busy"));
  /* Two calls in the same second: the one logged last is the newer. */
  add(f, entry(ID("05"), "erin", FALSE, 4000, "answered"));
  ASSERT_IDS(f, 0, FALSE, "05 04 03 02 01");
  ASSERT_IDS(f, 2, FALSE, "05 04");
}

static void
test_missed(Fixture *f, gconstpointer data)
{
  (void)data;
  add(f, entry(ID("01"), "bob", FALSE, 1000, "missed"));
  add(f, entry(ID("02"), "bob", FALSE, 2000, "no answer"));
  add(f, entry(ID("03"), "bob", FALSE, 3000, "cancelled"));
  /* Not missed: declined here, answered on another device, outgoing, answered. */
  add(f, entry(ID("04"), "bob", FALSE, 4000, "declined"));
  add(f, entry(ID("05"), "bob", FALSE, 5000, "answered elsewhere"));
  add(f, entry(ID("06"), "bob", TRUE, 6000, "no answer"));
  add(f, entry(ID("07"), "bob", TRUE, 7000, "cancelled"));
  add(f, entry(ID("08"), "bob", FALSE, 8000, "answered"));
  ASSERT_IDS(f, 0, TRUE, "03 02 01");
  ASSERT_IDS(f, 2, TRUE, "03 02");
  g_assert_cmpint(hark_call_log_count_missed(f->log, NULL), ==, 3);
}

static void
test_pruned_at_cap(Fixture *f, gconstpointer data)
{
  (void)data;
  hark_call_log_set_cap(f->log, 3);
  for (int i = 1; i <= 5; i++) {
    g_autofree char *id = g_strdup_printf(ID("%02d"), i);
    add(f, entry(id, "bob", FALSE, 1000 * i, "missed"));
  }
  ASSERT_IDS(f, 0, FALSE, "05 04 03");
  g_assert_cmpint(hark_call_log_count_missed(f->log, NULL), ==, 3);
  /* A late entry older than all kept ones is itself the oldest: it is dropped. */
  add(f, entry(ID("00"), "bob", FALSE, 10, "missed"));
  ASSERT_IDS(f, 0, FALSE, "05 04 03");
  g_assert_cmpint(HARK_CALL_LOG_MAX_ENTRIES, ==, 10000);
}

static void
test_file_mode(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  add(f, entry(ID("01"), "bob", FALSE, 1000, "missed"));
  g_assert_cmpuint(hark_test_file_mode(f->path), ==, 0600);
  g_autofree char *dir = g_path_get_dirname(f->path);
  g_assert_cmpuint(hark_test_file_mode(dir), ==, 0700);
  hark_call_log_close(g_steal_pointer(&f->log));

  g_assert_cmpint(g_chmod(f->path, 0644), ==, 0);
  g_assert_null(hark_call_log_open(f->path, &error));
  g_assert_error(error, HARK_CALL_LOG_ERROR, HARK_CALL_LOG_ERROR_PERMISSIONS);
  g_assert_nonnull(strstr(error->message, "chmod 600"));
  g_clear_error(&error);
  g_assert_cmpuint(hark_test_file_mode(f->path), ==, 0644); /* told, not changed */

  /* Not a regular file. */
  g_autofree char *folder = g_build_filename(f->dir, "folder", NULL);
  g_assert_cmpint(g_mkdir(folder, 0700), ==, 0);
  g_assert_null(hark_call_log_open(folder, &error));
  g_assert_error(error, HARK_CALL_LOG_ERROR, HARK_CALL_LOG_ERROR_IO);
  g_clear_error(&error);

  g_assert_cmpint(g_chmod(f->path, 0600), ==, 0);
  f->log = open_log(f);
  ASSERT_IDS(f, 0, FALSE, "01");
}

static GBytes *
file_bytes(const char *path)
{
  char *data = NULL;
  gsize length = 0;
  g_assert_true(g_file_get_contents(path, &data, &length, NULL));
  return g_bytes_new_take(data, length);
}

static void
test_corrupt_refused(Fixture *f, gconstpointer data)
{
  (void)data;
  hark_call_log_close(g_steal_pointer(&f->log));
  g_assert_cmpint(g_unlink(f->path), ==, 0);
  GString *junk = g_string_new(NULL);
  for (int i = 0; i < 512; i++)
    g_string_append_printf(junk, "not a database %d\n", i);
  g_assert_true(g_file_set_contents_full(f->path, junk->str, (gssize)junk->len,
                                         G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_string_free(junk, TRUE);
  g_autoptr(GBytes) before = file_bytes(f->path);

  g_autoptr(GError) error = NULL;
  g_assert_null(hark_call_log_open(f->path, &error));
  g_assert_error(error, HARK_CALL_LOG_ERROR, HARK_CALL_LOG_ERROR_CORRUPT);
  g_assert_nonnull(strstr(error->message, "move it away"));
  g_autoptr(GBytes) after = file_bytes(f->path);
  g_assert_true(g_bytes_equal(before, after));

  /* Another program's database (here: one with a table and no application id). */
  g_assert_cmpint(g_unlink(f->path), ==, 0);
  g_autofree char *other = g_build_filename(f->dir, "other.sqlite", NULL);
  sqlite3 *db = NULL;
  g_assert_cmpint(sqlite3_open(other, &db), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close(db);
  g_assert_cmpint(g_chmod(other, 0600), ==, 0);
  g_clear_error(&error);
  g_assert_null(hark_call_log_open(other, &error));
  g_assert_error(error, HARK_CALL_LOG_ERROR, HARK_CALL_LOG_ERROR_CORRUPT);
}

static void
test_bad_entries(Fixture *f, gconstpointer data)
{
  (void)data;
  struct {
    const char *what;
    HarkCallLogEntry e;
  } cases[] = {
    { "short id", entry("0123", "bob", FALSE, 1000, "missed") },
    { "upper-case id", entry(ID("0A"), "bob", FALSE, 1000, "missed") },
    { "empty peer", entry(ID("01"), "", FALSE, 1000, "missed") },
    { "control in peer", entry(ID("01"), "bob\n[hark] forged", FALSE, 1000, "missed") },
    { "unknown outcome", entry(ID("01"), "bob", FALSE, 1000, "won") },
    { "no start", entry(ID("01"), "bob", FALSE, 0, "missed") },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_test_message("%s", cases[i].what);
    g_assert_false(hark_call_log_add(f->log, &cases[i].e, &error));
    g_assert_error(error, HARK_CALL_LOG_ERROR, HARK_CALL_LOG_ERROR_INVALID);
  }
  HarkCallLogEntry e = entry(ID("01"), "bob", FALSE, 1000, "answered");
  g_autoptr(GError) error = NULL;
  e.ended_at = 999;
  g_assert_false(hark_call_log_add(f->log, &e, &error));
  g_clear_error(&error);
  e.peer_device = "xyz";
  e.ended_at = 2000;
  g_assert_false(hark_call_log_add(f->log, &e, &error));
  g_clear_error(&error);
  ASSERT_IDS(f, 0, FALSE, "");

  /* A hostile caller's reason does not keep its call out of the log: it is kept escaped,
   * and cut to 200 characters. */
  e = entry(ID("02"), "mallory", FALSE, 3000, "cancelled");
  e.reason = "bye\r\n* incoming call from alice\x1b[2J";
  add(f, e);
  g_autofree char *long_reason = g_strnfill(5000, 'x');
  e = entry(ID("03"), "mallory", FALSE, 4000, "cancelled");
  e.reason = long_reason;
  add(f, e);
  g_autoptr(GPtrArray) list = hark_call_log_list(f->log, 0, TRUE, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 2);
  const HarkCallLogEntry *kept = list->pdata[1];
  g_assert_cmpstr(kept->reason, ==, "bye\\x0d\\x0a* incoming call from alice\\x1b[2J");
  kept = list->pdata[0];
  g_assert_cmpuint(strlen(kept->reason), ==, 203);
  g_assert_true(g_str_has_suffix(kept->reason, "..."));
  g_assert_cmpint(hark_call_log_count_missed(f->log, NULL), ==, 2);

  /* SQL in a reason is text; the same call twice is refused. */
  e = entry(ID("01"), "bob", FALSE, 1000, "answered");
  e.reason = "'); DROP TABLE calls; --";
  add(f, e);
  g_assert_false(hark_call_log_add(f->log, &e, &error));
  g_assert_error(error, HARK_CALL_LOG_ERROR, HARK_CALL_LOG_ERROR_INVALID);
  ASSERT_IDS(f, 0, FALSE, "03 02 01");
}

/* ---- the command ------------------------------------------------------------------------ */

typedef struct {
  JsonNode *result;
  GError *error;
  int answers;
} Answer;

static void
on_done(JsonNode *result, const GError *error, gpointer data)
{
  Answer *a = data;
  a->answers++;
  if (result != NULL)
    a->result = json_node_ref(result);
  if (error != NULL)
    a->error = g_error_copy(error);
}

static Answer
run(HarkContext *ctx, const char *args_json)
{
  g_autoptr(JsonNode) node = json_from_string(args_json, NULL);
  g_assert_nonnull(node);
  Answer a = { 0 };
  hark_context_run_command(ctx, "call-log", json_node_get_object(node), on_done, &a);
  g_assert_cmpint(a.answers, ==, 1);
  return a;
}

static void
answer_clear(Answer *a)
{
  g_clear_pointer(&a->result, json_node_unref);
  g_clear_error(&a->error);
}

static void
test_command(Fixture *f, gconstpointer data)
{
  (void)data;
  add(f, entry(ID("01"), "bob", TRUE, 1000, "answered"));
  HarkCallLogEntry missed = entry(ID("02"), "carol", FALSE, 2000, "cancelled");
  missed.reason = "carol hung up";
  add(f, missed);
  add(f, entry(ID("03"), "dave", FALSE, 3000, "declined"));

  /* The node registers `call-log` on its own slot, empty until it starts. */
  HarkNode *node = hark_node_new(hark_config_new_default());
  HarkContext *ctx = hark_node_get_context(node);
  HarkCallLog **slot = &hark_node_root(node)->call_log;

  /* No log: a clear error, not a crash. */
  Answer a = run(ctx, "{}");
  g_assert_error(a.error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED);
  g_assert_nonnull(strstr(a.error->message, "calls are not available"));
  answer_clear(&a);

  *slot = f->log;
  a = run(ctx, "{}");
  g_assert_no_error(a.error);
  JsonObject *o = json_node_get_object(a.result);
  g_assert_cmpint(json_object_get_int_member(o, "missed"), ==, 1);
  JsonArray *calls = json_object_get_array_member(o, "calls");
  g_assert_cmpuint(json_array_get_length(calls), ==, 3);
  JsonObject *first = json_array_get_object_element(calls, 0);
  g_assert_cmpstr(json_object_get_string_member(first, "peer"), ==, "dave");
  g_assert_cmpstr(json_object_get_string_member(first, "outcome"), ==, "declined");
  g_assert_true(json_object_get_null_member(first, "peer_device"));
  JsonObject *last = json_array_get_object_element(calls, 2);
  g_assert_cmpstr(json_object_get_string_member(last, "id"), ==, ID("01"));
  g_assert_cmpstr(json_object_get_string_member(last, "direction"), ==, "out");
  g_assert_cmpint(json_object_get_int_member(last, "duration_s"), ==, 60);
  g_assert_cmpstr(json_object_get_string_member(last, "codec"), ==, "opus");
  g_assert_cmpstr(json_object_get_string_member(last, "path"), ==, "host udp");
  g_assert_cmpint(json_object_get_int_member(last, "answered_at"), ==, 1002);
  g_assert_cmpint(json_object_get_int_member(last, "ended_at"), ==, 1062);
  answer_clear(&a);

  a = run(ctx, "{\"missed\": true, \"limit\": 10}");
  g_assert_no_error(a.error);
  calls = json_object_get_array_member(json_node_get_object(a.result), "calls");
  g_assert_cmpuint(json_array_get_length(calls), ==, 1);
  first = json_array_get_object_element(calls, 0);
  g_assert_cmpstr(json_object_get_string_member(first, "direction"), ==, "in");
  g_assert_cmpstr(json_object_get_string_member(first, "reason"), ==, "carol hung up");
  g_assert_cmpint(json_object_get_int_member(first, "duration_s"), ==, 0);
  answer_clear(&a);

  a = run(ctx, "{\"limit\": 1}");
  calls = json_object_get_array_member(json_node_get_object(a.result), "calls");
  g_assert_cmpuint(json_array_get_length(calls), ==, 1);
  answer_clear(&a);

  const char *bad[] = { "{\"limit\": 0}", "{\"limit\": 1001}", "{\"limit\": -5}" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    a = run(ctx, bad[i]);
    g_assert_error(a.error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS);
    answer_clear(&a);
  }
  *slot = NULL; /* the fixture's, closed there */
  hark_node_free(node);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, func) \
  g_test_add("/call-log/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD("round-trip", test_round_trip);
  ADD("newest-first-and-limit", test_newest_first_and_limit);
  ADD("open-is-small", test_open_is_small);
  ADD("missed", test_missed);
  ADD("pruned-at-cap", test_pruned_at_cap);
  ADD("file-mode", test_file_mode);
  ADD("corrupt-refused", test_corrupt_refused);
  ADD("bad-entries", test_bad_entries);
  ADD("command", test_command);
  return g_test_run();
}
