/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-message-history.c: the device's message history and outbox
 * (core/message/message-history.c), on a temporary state directory and a test clock:
 * duplicates are "already had it", messages that arrive out of order are shown in order,
 * a gap that never fills is given up after a while, everything survives a restart, the
 * file is private and a file others can read is refused, conversations are ordered and
 * counted, states only move forward, the outbox retries with backoff and expires, and a
 * damaged, foreign or newer file is a clear error. And what a hostile sender would try:
 * suppressing another device's message by sending its id first, filling the disk with
 * messages held for a gap it made on purpose, SQL in a text. */
#include "test-files.h"

#include "message-history.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#define ALICE "u:alice"
#define GROUP "g:0123456789abcdef0123456789abcdef"

typedef struct {
  char *dir;
  char *path;
  GMainContext *context;
  HarkClock *clock;
  HarkMessageHistory *history;
  char *dev_a; /* alice's device */
  char *dev_b; /* bob's device */
  char *dev_own;
} Fixture;

static HarkMessageHistory *
open_history(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  HarkMessageHistory *history = hark_message_history_open(f->dir, f->clock, &error);
  g_assert_no_error(error);
  g_assert_nonnull(history);
  return history;
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("hark-msghist-XXXXXX", &error);
  g_assert_no_error(error);
  f->path = g_build_filename(f->dir, "messages.sqlite", NULL);
  f->context = g_main_context_new();
  f->clock = hark_clock_new(TRUE, f->context);
  f->dev_a = g_strnfill(64, 'a');
  f->dev_b = g_strnfill(64, 'b');
  f->dev_own = g_strnfill(64, 'c');
  f->history = open_history(f);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  (void)data;
  hark_message_history_close(f->history);
  hark_clock_free(f->clock);
  g_main_context_unref(f->context);
  g_assert_true(hark_test_remove_tree(f->dir));
  g_free(f->dir);
  g_free(f->path);
  g_free(f->dev_a);
  g_free(f->dev_b);
  g_free(f->dev_own);
}

static void
reopen(Fixture *f)
{
  hark_message_history_close(f->history);
  f->history = open_history(f);
}

static void
advance(Fixture *f, gint64 seconds)
{
  g_assert_true(hark_clock_advance(f->clock, seconds * G_USEC_PER_SEC));
}

static void
make_id(guint8 *id, guint n)
{
  memset(id, 0, HARK_MESSAGE_ID_SIZE);
  id[0] = 0x4d;
  id[14] = (guint8)(n >> 8);
  id[15] = (guint8)n;
}

/* A message whose id is made from n, text "m<n>". */
static HarkHistoryMessage *
message(const char *conversation, const char *sender, const char *device, guint64 sequence, guint n,
        HarkMessageDirection direction)
{
  HarkHistoryMessage *m = g_new0(HarkHistoryMessage, 1);
  make_id(m->id, n);
  m->conversation = g_strdup(conversation);
  m->sender = g_strdup(sender);
  m->sender_device = g_strdup(device);
  m->sequence = sequence;
  m->time = 1700000000 + n;
  m->kind = g_strdup("text");
  m->text = g_strdup_printf("m%u", n);
  m->direction = direction;
  return m;
}

/* Adds an incoming message from alice's device; returns the texts that became showable,
 * joined with ",". */
static char *
add_full(Fixture *f, const char *conversation, const char *device, guint64 sequence, guint n,
         HarkMessageHistoryAdd expected)
{
  g_autoptr(HarkHistoryMessage) m =
    message(conversation, "alice", device, sequence, n, HARK_MESSAGE_IN);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) shown = NULL;
  HarkMessageHistoryAdd result = -1;
  g_assert_true(hark_message_history_add(f->history, m, NULL, &result, &shown, &error));
  g_assert_no_error(error);
  g_assert_cmpint(result, ==, expected);
  g_autoptr(GString) texts = g_string_new(NULL);
  for (guint i = 0; i < shown->len; i++) {
    HarkHistoryMessage *s = shown->pdata[i];
    g_string_append_printf(texts, "%s%s%s", i > 0 ? "," : "", s->text, s->after_gap ? "*" : "");
  }
  return g_string_free(g_steal_pointer(&texts), FALSE);
}

static char *
add_in(Fixture *f, guint64 sequence, guint n)
{
  return add_full(f, ALICE, f->dev_a, sequence, n, HARK_MESSAGE_HISTORY_ADDED);
}

/* The texts of the last n shown messages of a conversation, oldest first. */
static char *
history_texts(Fixture *f, const char *conversation, guint n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = hark_message_history_list(f->history, conversation, n, &error);
  g_assert_no_error(error);
  g_autoptr(GString) texts = g_string_new(NULL);
  for (guint i = 0; i < list->len; i++) {
    HarkHistoryMessage *m = list->pdata[i];
    g_string_append_printf(texts, "%s%s%s", i > 0 ? "," : "", m->text, m->after_gap ? "*" : "");
  }
  return g_string_free(g_steal_pointer(&texts), FALSE);
}

#define ASSERT_TEXTS(expr, expected)         \
  do {                                       \
    g_autofree char *texts_ = (expr);        \
    g_assert_cmpstr(texts_, ==, (expected)); \
  } while (0)

/* Takes this device's next sequence in conversation. */
static guint64
own_sequence(Fixture *f, const char *conversation)
{
  g_autoptr(GError) error = NULL;
  guint64 sequence =
    hark_message_history_take_sequence(f->history, conversation, f->dev_own, &error);
  g_assert_no_error(error);
  return sequence;
}

/* ---- messages -------------------------------------------------------------------------- */

static void
test_duplicate(Fixture *f, gconstpointer data)
{
  (void)data;
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  /* The same device's message again (a retry whose acknowledgement was lost): "already
   * had it", nothing shown twice. */
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_a, 1, 1, HARK_MESSAGE_HISTORY_DUPLICATE), "");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1");
  /* A held one again is a duplicate too and releases nothing. */
  ASSERT_TEXTS(add_in(f, 3, 3), "");
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_a, 3, 3, HARK_MESSAGE_HISTORY_DUPLICATE), "");
  ASSERT_TEXTS(add_in(f, 2, 2), "m2,m3");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m3");
}

/* A hostile member who has seen a message id sends a message with that id to another
 * member first: the real message from the real device must still be stored and shown. */
static void
test_id_of_another_device(Fixture *f, gconstpointer data)
{
  (void)data;
  ASSERT_TEXTS(add_full(f, GROUP, f->dev_b, 1, 7, HARK_MESSAGE_HISTORY_ADDED), "m7");
  ASSERT_TEXTS(add_full(f, GROUP, f->dev_a, 1, 7, HARK_MESSAGE_HISTORY_ADDED), "m7");
  ASSERT_TEXTS(history_texts(f, GROUP, 10), "m7,m7");
}

static void
test_out_of_order(Fixture *f, gconstpointer data)
{
  (void)data;
  ASSERT_TEXTS(add_in(f, 3, 3), "");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "");
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1");
  ASSERT_TEXTS(add_in(f, 2, 2), "m2,m3");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m3");
  ASSERT_TEXTS(history_texts(f, ALICE, 2), "m2,m3");
  /* Sequences are per sender device: bob's device starts at 1 in the same conversation. */
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_b, 2, 22, HARK_MESSAGE_HISTORY_ADDED), "");
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_b, 1, 21, HARK_MESSAGE_HISTORY_ADDED), "m21,m22");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m3,m21,m22");
  /* and per conversation: the group's sequence of alice's device is its own */
  ASSERT_TEXTS(add_full(f, GROUP, f->dev_a, 1, 31, HARK_MESSAGE_HISTORY_ADDED), "m31");
}

/* Adds an outgoing message of device (this user's) and returns what became showable. */
static char *
add_out(Fixture *f, const char *device, guint64 sequence, guint n)
{
  g_autoptr(HarkHistoryMessage) m = message(ALICE, "me", device, sequence, n, HARK_MESSAGE_OUT);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) shown = NULL;
  HarkMessageHistoryAdd result = -1;
  g_assert_true(hark_message_history_add(f->history, m, NULL, &result, &shown, &error));
  g_assert_no_error(error);
  g_autoptr(GString) texts = g_string_new(NULL);
  for (guint i = 0; i < shown->len; i++)
    g_string_append_printf(texts, "%s%s", i > 0 ? "," : "",
                           ((HarkHistoryMessage *)shown->pdata[i])->text);
  return g_string_free(g_steal_pointer(&texts), FALSE);
}

/* What this user wrote on another device comes as copies over the network, where a retry
 * can overtake: they are shown in that device's order, as anyone's messages are. What
 * this device wrote (its own sequences) is shown at once. */
static void
test_copies_in_order(Fixture *f, gconstpointer data)
{
  (void)data;
  ASSERT_TEXTS(add_out(f, f->dev_b, 2, 2), "");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "");
  ASSERT_TEXTS(add_out(f, f->dev_b, 1, 1), "m1,m2");
  guint64 own = own_sequence(f, ALICE);
  ASSERT_TEXTS(add_out(f, f->dev_own, own, 10), "m10");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m10");
}

static void
test_gap_escape(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  ASSERT_TEXTS(add_in(f, 4, 4), "");
  advance(f, 30);
  ASSERT_TEXTS(add_in(f, 5, 5), "");
  ASSERT_TEXTS(add_in(f, 7, 7), "");

  /* Not old enough yet: nothing moves. */
  g_autoptr(GPtrArray) none = NULL;
  g_assert_true(hark_message_history_release_held(f->history, 60, &none, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(none->len, ==, 0);

  /* m4 has waited 60 s: the gap before it (2, 3) is given up and 5 follows; 6 is
   * missing too, but m7 has waited only 30 s, so it stays held for now. */
  advance(f, 30);
  g_autoptr(GPtrArray) released = NULL;
  g_assert_true(hark_message_history_release_held(f->history, 60, &released, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(released->len, ==, 2);
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m4*,m5");
  advance(f, 30);
  g_clear_pointer(&released, g_ptr_array_unref);
  g_assert_true(hark_message_history_release_held(f->history, 60, &released, &error));
  g_assert_no_error(error);
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m4*,m5,m7*");

  /* A late arrival from the gap is still shown (not lost, not held forever), in its
   * device's order (new, so unread and handed on like any), and the next in sequence
   * after the last released one is shown at once. */
  ASSERT_TEXTS(add_in(f, 2, 2), "m2");
  ASSERT_TEXTS(add_in(f, 8, 8), "m8");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m4*,m5,m7*,m8");
}

static void
test_restart(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  guint8 id[HARK_MESSAGE_ID_SIZE];
  make_id(id, 100);

  /* This device's own sequence and counter. */
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 1);
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 2);
  g_assert_cmpuint(own_sequence(f, GROUP), ==, 1);
  g_assert_cmpuint(hark_message_history_take_counter(f->history, f->dev_own, &error), ==, 1);
  g_assert_cmpuint(hark_message_history_take_counter(f->history, f->dev_own, &error), ==, 2);
  g_assert_no_error(error);

  /* A message in, one held, one out with its outbox entry and state; a replay state. */
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  ASSERT_TEXTS(add_in(f, 3, 3), "");
  g_autoptr(HarkHistoryMessage) out = message(ALICE, "carol", f->dev_own, 2, 100, HARK_MESSAGE_OUT);
  HarkMessageHistoryAdd result;
  g_assert_true(hark_message_history_add(f->history, out, NULL, &result, NULL, &error));
  g_autoptr(GBytes) envelope = g_bytes_new_static("\x00\x01sealed\xff", 9);
  g_assert_true(
    hark_message_history_outbox_add(f->history, id, f->dev_a, "alice", envelope, 0, &error));
  g_assert_true(hark_message_history_set_state(f->history, id, f->dev_a, HARK_MESSAGE_STATE_SENT,
                                               NULL, &error));
  g_autoptr(GBytes) replay = g_bytes_new_static("guard\0state", 11);
  g_assert_true(hark_message_history_replay_set(f->history, f->dev_a, replay, &error));
  g_assert_no_error(error);

  reopen(f);

  g_assert_cmpuint(own_sequence(f, ALICE), ==, 3);
  g_assert_cmpuint(own_sequence(f, GROUP), ==, 2);
  g_assert_cmpuint(hark_message_history_take_counter(f->history, f->dev_own, &error), ==, 3);
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m100");
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_a, 1, 1, HARK_MESSAGE_HISTORY_DUPLICATE), "");
  /* the held message is still held, and still released when the gap fills */
  ASSERT_TEXTS(add_in(f, 2, 2), "m2,m3");
  g_autoptr(GPtrArray) due = hark_message_history_outbox_due(f->history, 10, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(due->len, ==, 1);
  HarkOutboxEntry *entry = due->pdata[0];
  g_assert_true(g_bytes_equal(entry->envelope, envelope));
  g_assert_cmpmem(entry->message_id, HARK_MESSAGE_ID_SIZE, id, HARK_MESSAGE_ID_SIZE);
  g_assert_cmpstr(entry->device, ==, f->dev_a);
  g_assert_cmpstr(entry->user, ==, "alice");
  g_autoptr(GPtrArray) states = hark_message_history_states(f->history, id, &error);
  g_assert_cmpuint(states->len, ==, 1);
  g_assert_cmpint(((HarkHistoryDeviceState *)states->pdata[0])->state, ==, HARK_MESSAGE_STATE_SENT);
  g_autoptr(GBytes) replay_back = NULL;
  g_assert_true(hark_message_history_replay_get(f->history, f->dev_a, &replay_back, &error));
  g_assert_true(g_bytes_equal(replay_back, replay));
  g_autoptr(GBytes) no_replay = NULL;
  g_assert_true(hark_message_history_replay_get(f->history, f->dev_b, &no_replay, &error));
  g_assert_null(no_replay);
  g_assert_no_error(error);
}

/* What begin/rollback leaves: nothing, not even the sequence taken (so a crash between
 * taking a sequence and storing what it was for leaves no gap at the recipients). */
static void
test_transaction(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_message_history_begin(f->history, &error));
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 1);
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  hark_message_history_rollback(f->history);
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "");
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 1);

  g_assert_true(hark_message_history_begin(f->history, &error));
  g_assert_false(hark_message_history_begin(f->history, &error));
  g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 2);
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  g_assert_true(hark_message_history_commit(f->history, &error));
  g_assert_no_error(error);
  reopen(f);
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1");
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 3);

  /* Closed (the node stopped) between begin and commit: as if never begun. */
  g_assert_true(hark_message_history_begin(f->history, &error));
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 4);
  ASSERT_TEXTS(add_in(f, 2, 2), "m2");
  reopen(f);
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1");
  g_assert_cmpuint(own_sequence(f, ALICE), ==, 4);
}

/* ---- the file -------------------------------------------------------------------------- */

static void
test_file_mode(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  g_assert_cmpuint(hark_test_file_mode(f->path), ==, 0600);
  g_autofree char *wal = g_strconcat(f->path, "-wal", NULL);
  g_assert_cmpuint(hark_test_file_mode(wal), ==, 0600);
  hark_message_history_close(g_steal_pointer(&f->history));

  g_assert_cmpint(g_chmod(f->path, 0644), ==, 0);
  g_assert_null(hark_message_history_open(f->dir, f->clock, &error));
  g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_PERMISSIONS);
  g_assert_nonnull(strstr(error->message, "chmod 600"));
  g_clear_error(&error);

  /* A link in its place (to a file someone else chose) is not followed. */
  g_autofree char *elsewhere = g_build_filename(f->dir, "elsewhere", NULL);
  g_assert_cmpint(g_rename(f->path, elsewhere), ==, 0);
  g_assert_cmpint(g_chmod(elsewhere, 0600), ==, 0);
  g_assert_cmpint(symlink(elsewhere, f->path), ==, 0);
  g_assert_null(hark_message_history_open(f->dir, f->clock, &error));
  g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_IO);
  g_clear_error(&error);

  g_assert_cmpint(g_unlink(f->path), ==, 0);
  g_assert_cmpint(g_rename(elsewhere, f->path), ==, 0);
  f->history = open_history(f);
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1");
}

static void
write_file(const char *path, const char *data, gsize length)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(
    g_file_set_contents_full(path, data, (gssize)length, G_FILE_SET_CONTENTS_NONE, 0600, &error));
  g_assert_no_error(error);
}

/* Runs SQL on a file with SQLite directly (another program, or a newer hark). */
static void
sqlite_exec(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close(db);
}

static void
assert_open_fails(Fixture *f, int code)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(hark_message_history_open(f->dir, f->clock, &error));
  g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, code);
  g_test_message("refused: %s", error->message);
  g_assert_nonnull(strstr(error->message, f->path));
}

static void
remove_files(Fixture *f)
{
  const char *suffixes[] = { "", "-wal", "-shm" };
  for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
    g_autofree char *p = g_strconcat(f->path, suffixes[i], NULL);
    g_unlink(p);
  }
}

static void
test_corrupt(Fixture *f, gconstpointer data)
{
  (void)data;
  hark_message_history_close(g_steal_pointer(&f->history));

  /* Not a database at all. */
  remove_files(f);
  g_autofree char *garbage = g_strnfill(8192, 'x');
  write_file(f->path, garbage, 8192);
  assert_open_fails(f, HARK_MESSAGE_HISTORY_ERROR_CORRUPT);
  /* It was not written into. */
  g_autofree char *contents = NULL;
  gsize length = 0;
  g_assert_true(g_file_get_contents(f->path, &contents, &length, NULL));
  g_assert_cmpmem(contents, length, garbage, 8192);

  /* Another program's database. */
  remove_files(f);
  write_file(f->path, "", 0);
  sqlite_exec(f->path, "CREATE TABLE accounts (name TEXT); INSERT INTO accounts VALUES ('x')");
  assert_open_fails(f, HARK_MESSAGE_HISTORY_ERROR_CORRUPT);

  /* A newer hark's. */
  remove_files(f);
  f->history = open_history(f);
  hark_message_history_close(g_steal_pointer(&f->history));
  sqlite_exec(f->path, "PRAGMA user_version = 99");
  assert_open_fails(f, HARK_MESSAGE_HISTORY_ERROR_VERSION);

  /* Ours, damaged after its first page: refused at open or at the first read, with the
   * corrupt error either way. */
  remove_files(f);
  f->history = open_history(f);
  for (guint i = 1; i <= 50; i++)
    g_free(add_in(f, i, i));
  hark_message_history_close(g_steal_pointer(&f->history));
  int fd = open(f->path, O_WRONLY);
  g_assert_cmpint(fd, >=, 0);
  g_autofree char *damage = g_strnfill(4096 * 4, '\xa5');
  g_assert_cmpint(pwrite(fd, damage, 4096 * 4, 4096), ==, 4096 * 4);
  close(fd);
  g_autoptr(GError) error = NULL;
  f->history = hark_message_history_open(f->dir, f->clock, &error);
  if (f->history != NULL) {
    g_autoptr(GPtrArray) list = hark_message_history_list(f->history, ALICE, 10, &error);
    g_assert_null(list);
  }
  g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_CORRUPT);
  g_test_message("damaged: %s", error->message);
}

/* ---- conversations and states ---------------------------------------------------------- */

static void
test_conversations(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  gint64 start = hark_clock_now_seconds(f->clock);
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  advance(f, 10);
  ASSERT_TEXTS(add_full(f, GROUP, f->dev_b, 1, 2, HARK_MESSAGE_HISTORY_ADDED), "m2");
  ASSERT_TEXTS(add_full(f, GROUP, f->dev_b, 3, 4, HARK_MESSAGE_HISTORY_ADDED), "");
  advance(f, 10);
  g_autoptr(HarkHistoryMessage) out = message("u:bob", "carol", f->dev_own, 1, 9, HARK_MESSAGE_OUT);
  HarkMessageHistoryAdd result;
  g_autoptr(GPtrArray) shown = NULL;
  g_assert_true(hark_message_history_add(f->history, out, "Bob B.", &result, &shown, &error));
  g_assert_cmpuint(shown->len, ==, 1);
  g_assert_true(hark_message_history_set_title(f->history, GROUP, "Friends", &error));

  g_autoptr(GPtrArray) list = hark_message_history_conversations(f->history, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 3);
  HarkHistoryConversation *bob = list->pdata[0], *group = list->pdata[1], *alice = list->pdata[2];
  g_assert_cmpstr(bob->key, ==, "u:bob");
  g_assert_cmpstr(bob->title, ==, "Bob B.");
  g_assert_cmpuint(bob->unread, ==, 0); /* our own message is not unread */
  g_assert_cmpint(bob->last_activity, ==, start + 20);
  g_assert_cmpstr(group->title, ==, "Friends");
  g_assert_cmpuint(group->unread, ==, 1); /* the held one is not shown, so not unread */
  g_assert_cmpint(group->last_activity, ==, start + 10);
  g_assert_cmpstr(alice->title, ==, "alice");
  g_assert_cmpuint(alice->unread, ==, 1);

  /* A new message moves alice's conversation to the top; seeing it clears the count. */
  advance(f, 10);
  ASSERT_TEXTS(add_in(f, 2, 3), "m3");
  g_clear_pointer(&list, g_ptr_array_unref);
  list = hark_message_history_conversations(f->history, &error);
  g_assert_cmpstr(((HarkHistoryConversation *)list->pdata[0])->key, ==, ALICE);
  g_assert_cmpuint(((HarkHistoryConversation *)list->pdata[0])->unread, ==, 2);
  g_assert_true(hark_message_history_mark_seen(f->history, ALICE, &error));
  g_clear_pointer(&list, g_ptr_array_unref);
  list = hark_message_history_conversations(f->history, &error);
  g_assert_cmpuint(((HarkHistoryConversation *)list->pdata[0])->unread, ==, 0);
  g_assert_no_error(error);
}

static HarkMessageState
state_of(Fixture *f, const guint8 *id, const char *device)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) states = hark_message_history_states(f->history, id, &error);
  g_assert_no_error(error);
  for (guint i = 0; i < states->len; i++) {
    HarkHistoryDeviceState *s = states->pdata[i];
    if (g_strcmp0(s->device, device) == 0)
      return s->state;
  }
  return 0;
}

static void
set_state(Fixture *f, const guint8 *id, const char *device, HarkMessageState state,
          gboolean expect_change)
{
  g_autoptr(GError) error = NULL;
  gboolean changed = !expect_change;
  g_assert_true(hark_message_history_set_state(f->history, id, device, state, &changed, &error));
  g_assert_no_error(error);
  g_assert_cmpint(changed, ==, expect_change);
}

static void
test_states_forward(Fixture *f, gconstpointer data)
{
  (void)data;
  guint8 id[HARK_MESSAGE_ID_SIZE];
  make_id(id, 1);
  set_state(f, id, f->dev_a, HARK_MESSAGE_STATE_SENT, TRUE);
  set_state(f, id, f->dev_b, HARK_MESSAGE_STATE_SENT, TRUE);
  set_state(f, id, f->dev_a, HARK_MESSAGE_STATE_READ, TRUE);
  /* The delivered receipt overtaken by the read one changes nothing; neither does sent. */
  set_state(f, id, f->dev_a, HARK_MESSAGE_STATE_DELIVERED, FALSE);
  set_state(f, id, f->dev_a, HARK_MESSAGE_STATE_SENT, FALSE);
  set_state(f, id, f->dev_a, HARK_MESSAGE_STATE_READ, FALSE);
  g_assert_cmpint(state_of(f, id, f->dev_a), ==, HARK_MESSAGE_STATE_READ);
  set_state(f, id, f->dev_b, HARK_MESSAGE_STATE_DELIVERED, TRUE);
  g_assert_cmpint(state_of(f, id, f->dev_b), ==, HARK_MESSAGE_STATE_DELIVERED);
  guint8 other[HARK_MESSAGE_ID_SIZE];
  make_id(other, 2);
  g_assert_cmpint(state_of(f, other, f->dev_a), ==, 0);

  g_autoptr(GError) error = NULL;
  g_assert_false(hark_message_history_set_state(f->history, id, f->dev_a, 7, NULL, &error));
  g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_INVALID);
}

/* ---- the outbox ------------------------------------------------------------------------ */

static guint
due_count(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) due = hark_message_history_outbox_due(f->history, 100, &error);
  g_assert_no_error(error);
  return due->len;
}

static void
retry(Fixture *f, const guint8 *id, const char *device)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_message_history_outbox_retry(f->history, id, device, &error));
  g_assert_no_error(error);
}

static void
test_outbox(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  gint64 start = hark_clock_now_seconds(f->clock);
  guint8 id[HARK_MESSAGE_ID_SIZE];
  make_id(id, 1);
  g_autoptr(GBytes) envelope = g_bytes_new_static("envelope", 8);
  gint64 when = 0;
  g_assert_false(hark_message_history_outbox_next(f->history, &when, &error));
  g_assert_no_error(error);

  g_assert_true(
    hark_message_history_outbox_add(f->history, id, f->dev_a, "alice", envelope, 0, &error));
  g_assert_true(hark_message_history_outbox_add(f->history, id, f->dev_b, "bob", envelope,
                                                start + 1000, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(due_count(f), ==, 2);

  /* Backoff: 2 s, then 4, 8, ... and never more than 10 min. */
  retry(f, id, f->dev_a);
  retry(f, id, f->dev_b);
  g_assert_cmpuint(due_count(f), ==, 0);
  g_assert_true(hark_message_history_outbox_next(f->history, &when, &error));
  g_assert_cmpint(when, ==, start + 2);
  advance(f, 1);
  g_assert_cmpuint(due_count(f), ==, 0);
  advance(f, 1);
  g_assert_cmpuint(due_count(f), ==, 2);
  retry(f, id, f->dev_a);
  advance(f, 3);
  g_assert_cmpuint(due_count(f), ==, 1); /* only bob's: alice's waits 4 s now */
  advance(f, 1);
  g_assert_cmpuint(due_count(f), ==, 2);
  for (int i = 0; i < 20; i++)
    retry(f, id, f->dev_a);
  g_autoptr(GPtrArray) due = hark_message_history_outbox_due(f->history, 100, &error);
  g_assert_cmpuint(due->len, ==, 1);
  g_assert_cmpstr(((HarkOutboxEntry *)due->pdata[0])->device, ==, f->dev_b);
  advance(f, 599);
  g_assert_cmpuint(due_count(f), ==, 1);
  advance(f, 1);
  g_assert_cmpuint(due_count(f), ==, 2);

  /* Bob's entry expires at start + 1000: no longer due, and expire hands it back once. */
  advance(f, 393);
  g_assert_cmpuint(due_count(f), ==, 2);
  advance(f, 1);
  g_assert_cmpuint(due_count(f), ==, 1);
  g_autoptr(GPtrArray) expired = NULL;
  g_assert_true(hark_message_history_outbox_expire(f->history, &expired, &error));
  g_assert_cmpuint(expired->len, ==, 1);
  g_assert_cmpstr(((HarkOutboxEntry *)expired->pdata[0])->user, ==, "bob");
  g_clear_pointer(&expired, g_ptr_array_unref);
  g_assert_true(hark_message_history_outbox_expire(f->history, &expired, &error));
  g_assert_cmpuint(expired->len, ==, 0);

  /* alice's device acknowledged: the entry is done, once. */
  gboolean found = FALSE;
  g_assert_true(hark_message_history_outbox_done(f->history, id, f->dev_a, &found, &error));
  g_assert_true(found);
  g_assert_true(hark_message_history_outbox_done(f->history, id, f->dev_a, &found, &error));
  g_assert_false(found);
  g_assert_cmpuint(due_count(f), ==, 0);
  g_assert_no_error(error);

  /* The default expiry is 30 days, and it survives a restart. */
  g_assert_true(
    hark_message_history_outbox_add(f->history, id, f->dev_a, "alice", envelope, 0, &error));
  reopen(f);
  g_assert_cmpuint(due_count(f), ==, 1);
  advance(f, 30 * 24 * 3600 - 1);
  g_assert_cmpuint(due_count(f), ==, 1);
  advance(f, 1);
  g_assert_cmpuint(due_count(f), ==, 0);
  g_clear_pointer(&expired, g_ptr_array_unref);
  g_assert_true(hark_message_history_outbox_expire(f->history, &expired, &error));
  g_assert_cmpuint(expired->len, ==, 1);

  /* Held by the login server: the entry waits for the hold's end, not for a backoff, and
   * a postponed entry that does not exist is an error. */
  gint64 now = hark_clock_now_seconds(f->clock);
  g_assert_true(
    hark_message_history_outbox_add(f->history, id, f->dev_b, "bob", envelope, 0, &error));
  g_assert_true(hark_message_history_outbox_postpone(f->history, id, f->dev_b, now + 5000, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(due_count(f), ==, 0);
  g_assert_true(hark_message_history_outbox_next(f->history, &when, &error));
  g_assert_cmpint(when, ==, now + 5000);
  advance(f, 5000);
  g_assert_cmpuint(due_count(f), ==, 1);
  g_assert_false(hark_message_history_outbox_postpone(f->history, id, f->dev_a, now, &error));
  g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_INVALID);
  g_clear_error(&error);

  /* A way out came back: an entry in its retry backoff is due at once, one waiting for
   * its hold's end is not. */
  g_assert_true(
    hark_message_history_outbox_add(f->history, id, f->dev_a, "alice", envelope, 0, &error));
  retry(f, id, f->dev_a);
  retry(f, id, f->dev_a);
  g_assert_true(hark_message_history_outbox_postpone(
    f->history, id, f->dev_b, hark_clock_now_seconds(f->clock) + 5000, &error));
  g_assert_cmpuint(due_count(f), ==, 0);
  g_assert_true(hark_message_history_outbox_hurry(f->history, 600, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) hurried = hark_message_history_outbox_due(f->history, 100, &error);
  g_assert_cmpuint(hurried->len, ==, 1);
  g_assert_cmpstr(((HarkOutboxEntry *)hurried->pdata[0])->device, ==, f->dev_a);
}

/* ---- what a hostile sender tries ------------------------------------------------------- */

/* A sender skips a sequence on purpose and sends on: what is held for the gap is bounded
 * per sender device, also when it spreads them over conversations (group ids it makes
 * up); other senders are not affected. */
static void
test_held_bounded(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  g_assert_true(hark_message_history_begin(f->history, &error));
  for (guint i = 0; i < HARK_MESSAGE_HISTORY_MAX_HELD; i++)
    g_free(add_in(f, 2 + i, 1000 + i));
  g_assert_true(hark_message_history_commit(f->history, &error));

  const char *elsewhere[] = { ALICE, GROUP, "g:ffffffffffffffffffffffffffffffff" };
  for (guint i = 0; i < G_N_ELEMENTS(elsewhere); i++) {
    g_autoptr(HarkHistoryMessage) more =
      message(elsewhere[i], "alice", f->dev_a, 5000, 9000 + i, HARK_MESSAGE_IN);
    HarkMessageHistoryAdd result;
    g_assert_false(hark_message_history_add(f->history, more, NULL, &result, NULL, &error));
    g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_TOO_MANY_HELD);
    g_clear_error(&error);
  }
  /* Nothing of the refused ones was kept, not even a conversation. */
  g_autoptr(GPtrArray) conversations = hark_message_history_conversations(f->history, &error);
  g_assert_cmpuint(conversations->len, ==, 1);
  /* What is next in sequence is still taken: it holds nothing up. */
  ASSERT_TEXTS(add_full(f, GROUP, f->dev_a, 1, 3, HARK_MESSAGE_HISTORY_ADDED), "m3");
  /* Its retry of one already held is still "already had it". */
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_a, 2, 1000, HARK_MESSAGE_HISTORY_DUPLICATE), "");
  /* Another device is not held up by it. */
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_b, 2, 1, HARK_MESSAGE_HISTORY_ADDED), "");
  /* The one it skipped releases them all, in order. */
  g_autofree char *released = add_in(f, 1, 1);
  g_assert_true(g_str_has_prefix(released, "m1,m1000,m1001,"));
  g_assert_true(g_str_has_suffix(released, ",m2023"));
}

static void
test_hostile_strings(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkHistoryMessage) m = message(ALICE, "alice", f->dev_a, 1, 1, HARK_MESSAGE_IN);
  g_free(m->text);
  m->text = g_strdup("'); DROP TABLE messages; --\n\x1b[2J");
  HarkMessageHistoryAdd result;
  g_assert_true(hark_message_history_add(f->history, m, NULL, &result, NULL, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) list = hark_message_history_list(f->history, ALICE, 1, &error);
  g_assert_cmpstr(((HarkHistoryMessage *)list->pdata[0])->text, ==, m->text);

  /* What the store refuses, each as a caller's error and nothing stored. */
  struct {
    const char *conversation, *sender, *device, *text;
    guint64 sequence;
  } bad[] = {
    { "alice", "alice", f->dev_a, "x", 1 }, /* no u: */
    { "u:", "alice", f->dev_a, "x", 1 }, /* no name */
    { "u:al\nice", "alice", f->dev_a, "x", 1 }, /* a line break */
    { "g:0123", "alice", f->dev_a, "x", 1 }, /* short group id */
    { "g:0123456789ABCDEF0123456789ABCDEF", "alice", f->dev_a, "x", 1 }, /* upper case */
    { ALICE, "alice", "abc", "x", 1 }, /* not a device id */
    { ALICE, "al\x1b[0mice", f->dev_a, "x", 1 }, /* escape in a name */
    { ALICE, "alice", f->dev_a, "\xff\xfe", 1 }, /* not UTF-8 */
    { ALICE, "alice", f->dev_a, "x", 0 }, /* sequence 0 */
    { ALICE, "alice", f->dev_a, "x", G_MAXUINT64 }, /* beyond int64 */
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(HarkHistoryMessage) b = message(bad[i].conversation, bad[i].sender, bad[i].device,
                                              bad[i].sequence, 50 + i, HARK_MESSAGE_IN);
    g_free(b->text);
    b->text = g_strdup(bad[i].text);
    g_assert_false(hark_message_history_add(f->history, b, NULL, &result, NULL, &error));
    g_assert_error(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_INVALID);
    g_clear_error(&error);
  }
  g_autoptr(GPtrArray) conversations = hark_message_history_conversations(f->history, &error);
  g_assert_cmpuint(conversations->len, ==, 1);
}

/* Only with -m perf: what adding and listing cost (each add on its own is a synced
 * transaction). */
static void
test_perf(Fixture *f, gconstpointer data)
{
  (void)data;
  if (!g_test_perf()) {
    g_test_skip("only with -m perf");
    return;
  }
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time();
  for (guint i = 1; i <= 200; i++)
    g_free(add_in(f, i, i));
  double single = (g_get_monotonic_time() - start) / 200.0;
  start = g_get_monotonic_time();
  g_assert_true(hark_message_history_begin(f->history, &error));
  for (guint i = 201; i <= 10200; i++)
    g_free(add_in(f, i, i));
  g_assert_true(hark_message_history_commit(f->history, &error));
  double batched = (g_get_monotonic_time() - start) / 10000.0;
  start = g_get_monotonic_time();
  for (guint i = 0; i < 100; i++)
    g_free(history_texts(f, ALICE, 50));
  double list = (g_get_monotonic_time() - start) / 100.0;
  g_test_message("add alone %.0f us, add in a transaction %.0f us, last 50 of 10200 %.0f us",
                 single, batched, list);
}

/* A past message another device of this user had, as a new device stores it. */
static char *
add_past(Fixture *f, const char *device, guint64 sequence, guint n, HarkMessageDirection direction,
         HarkMessageHistoryAdd expected)
{
  g_autoptr(HarkHistoryMessage) m =
    message(ALICE, direction == HARK_MESSAGE_IN ? "alice" : "me", device, sequence, n, direction);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) shown = NULL;
  HarkMessageHistoryAdd result = -1;
  g_assert_true(hark_message_history_add_past(f->history, m, NULL, &result, &shown, &error));
  g_assert_no_error(error);
  g_assert_cmpint(result, ==, expected);
  g_autoptr(GString) texts = g_string_new(NULL);
  for (guint i = 0; i < shown->len; i++)
    g_string_append_printf(texts, "%s%s", i > 0 ? "," : "",
                           ((HarkHistoryMessage *)shown->pdata[i])->text);
  return g_string_free(g_steal_pointer(&texts), FALSE);
}

static guint64
unread_of(Fixture *f, const char *conversation)
{
  g_autoptr(GPtrArray) list = hark_message_history_conversations(f->history, NULL);
  for (guint i = 0; list != NULL && i < list->len; i++) {
    HarkHistoryConversation *c = list->pdata[i];
    if (g_strcmp0(c->key, conversation) == 0)
      return c->unread;
  }
  return G_MAXUINT64;
}

/* A new device: alice's live message (sequence 5) comes before the history from this
 * user's other device (her 1-4 and one this user wrote, in any order). The past ones are
 * placed by time, are never unread, move the expected sequence past them (so 5 is shown,
 * and 6 at once), and are duplicates when they come again, past or live. */
static void
test_past(Fixture *f, gconstpointer data)
{
  (void)data;
  ASSERT_TEXTS(add_in(f, 5, 50), ""); /* held: 1-4 have not come */
  ASSERT_TEXTS(add_past(f, f->dev_a, 3, 13, HARK_MESSAGE_IN, HARK_MESSAGE_HISTORY_ADDED), "");
  ASSERT_TEXTS(add_past(f, f->dev_a, 1, 11, HARK_MESSAGE_IN, HARK_MESSAGE_HISTORY_ADDED), "");
  ASSERT_TEXTS(add_past(f, f->dev_b, 1, 12, HARK_MESSAGE_OUT, HARK_MESSAGE_HISTORY_ADDED), "");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m11,m12,m13");
  ASSERT_TEXTS(add_past(f, f->dev_a, 4, 14, HARK_MESSAGE_IN, HARK_MESSAGE_HISTORY_ADDED), "m50");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m11,m12,m13,m14,m50");
  g_assert_cmpuint(unread_of(f, ALICE), ==, 1); /* only the live one */
  ASSERT_TEXTS(add_past(f, f->dev_a, 1, 11, HARK_MESSAGE_IN, HARK_MESSAGE_HISTORY_DUPLICATE), "");
  ASSERT_TEXTS(add_full(f, ALICE, f->dev_a, 3, 13, HARK_MESSAGE_HISTORY_DUPLICATE), "");
  ASSERT_TEXTS(add_in(f, 6, 60), "m60");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m11,m12,m13,m14,m50,m60");
  g_assert_cmpuint(unread_of(f, ALICE), ==, 2);
}

/* A new device's history overtakes live messages of the same sender device (the answer
 * came while the live ones were still being retried): the past message moves the
 * expected sequence past them, and each live one that comes later, or that was held, is
 * still shown in its device's order, before that device's later messages; so is a past
 * message whose time says otherwise (a clock set back, or the same second). */
static void
test_past_overtakes_live(Fixture *f, gconstpointer data)
{
  (void)data;
  ASSERT_TEXTS(add_in(f, 1, 1), "m1");
  ASSERT_TEXTS(add_in(f, 2, 2), "m2");
  ASSERT_TEXTS(add_in(f, 5, 5), ""); /* held: 3 and 4 have not come */
  ASSERT_TEXTS(add_past(f, f->dev_a, 7, 7, HARK_MESSAGE_IN, HARK_MESSAGE_HISTORY_ADDED), "m5");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m5,m7");
  ASSERT_TEXTS(add_in(f, 3, 3), "m3");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m3,m5,m7");
  ASSERT_TEXTS(add_past(f, f->dev_a, 4, 9, HARK_MESSAGE_IN, HARK_MESSAGE_HISTORY_ADDED), "");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m3,m9,m5,m7");
  ASSERT_TEXTS(add_in(f, 6, 6), "m6");
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m3,m9,m5,m6,m7");
  ASSERT_TEXTS(add_in(f, 8, 8), "m8"); /* after the past one: in turn again */
  ASSERT_TEXTS(history_texts(f, ALICE, 10), "m1,m2,m3,m9,m5,m6,m7,m8");
  g_assert_cmpuint(unread_of(f, ALICE), ==, 6); /* the live ones, wherever they went */
}

static void
put_past(Fixture *f, const char *conversation, const char *device, guint64 sequence, guint n)
{
  g_autoptr(HarkHistoryMessage) m =
    message(conversation, "alice", device, sequence, n, HARK_MESSAGE_IN);
  g_autoptr(GError) error = NULL;
  HarkMessageHistoryAdd result = -1;
  g_assert_true(hark_message_history_add_past(f->history, m, "alice", &result, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpint(result, ==, HARK_MESSAGE_HISTORY_ADDED);
}

/* A new device learns a group (its state, then its past messages) and a conversation
 * with a user from another device's history: the group keeps its name as title, each
 * conversation's activity is its last message's time (not when the group's row was
 * made), so the list is in the order the conversations really had, and nothing is
 * unread. */
static void
test_past_group(Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr(GError) error = NULL;
  const char *members[] = { "alice", "bob", "me", NULL };
  g_autoptr(HarkMessageGroup) group =
    hark_message_group_new(&GROUP[2], "Friends", "alice", 2, members);
  g_assert_true(hark_message_history_group_put(f->history, group, &error));
  g_assert_no_error(error);
  put_past(f, ALICE, f->dev_a, 1, 5);
  put_past(f, GROUP, f->dev_a, 2, 12);
  put_past(f, GROUP, f->dev_a, 1, 11);
  put_past(f, ALICE, f->dev_a, 2, 20);

  g_autoptr(GPtrArray) list = hark_message_history_conversations(f->history, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 2);
  HarkHistoryConversation *first = list->pdata[0], *second = list->pdata[1];
  g_assert_cmpstr(first->key, ==, ALICE);
  g_assert_cmpint(first->last_activity, ==, 1700000020);
  g_assert_cmpuint(first->unread, ==, 0);
  g_assert_cmpstr(second->key, ==, GROUP);
  g_assert_cmpstr(second->title, ==, "Friends");
  g_assert_cmpint(second->last_activity, ==, 1700000012);
  g_assert_cmpuint(second->unread, ==, 0);
  ASSERT_TEXTS(history_texts(f, GROUP, 10), "m11,m12");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, func) \
  g_test_add("/message-history/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD("duplicate", test_duplicate);
  ADD("id-of-another-device", test_id_of_another_device);
  ADD("out-of-order", test_out_of_order);
  ADD("copies-in-order", test_copies_in_order);
  ADD("gap-escape", test_gap_escape);
  ADD("restart", test_restart);
  ADD("transaction", test_transaction);
  ADD("file-mode", test_file_mode);
  ADD("corrupt", test_corrupt);
  ADD("conversations", test_conversations);
  ADD("states-forward", test_states_forward);
  ADD("outbox", test_outbox);
  ADD("held-bounded", test_held_bounded);
  ADD("hostile-strings", test_hostile_strings);
  ADD("perf", test_perf);
  ADD("past", test_past);
  ADD("past-overtakes-live", test_past_overtakes_live);
  ADD("past-group", test_past_group);
  return g_test_run();
}
