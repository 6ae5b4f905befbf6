/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-gi-seeds DIR: writes the seeds of fuzz-gi (one file per message kind, valid
 * messages the engine acts on, and a few near misses). Built by hand:
 *   ninja -C build tests/fuzz/make-gi-seeds && build/tests/fuzz/make-gi-seeds tests/fuzz/corpus/gi */
#include <stdio.h>
#include <string.h>

#include "gi-engine.h"

static void
write_seed(const char *dir, const char *name, HarkGiMessage *msg)
{
  g_autoptr(GBytes) bytes = hark_gi_message_encode_bytes(msg);
  g_autofree gchar *path = g_build_filename(dir, name, NULL);
  gsize len = 0;
  const gchar *data = g_bytes_get_data(bytes, &len);
  if (!g_file_set_contents(path, data, (gssize)len, NULL))
    g_error("cannot write %s", path);
  hark_gi_message_clear(msg);
}

static void
add_record(HarkGiMessage *msg, const char *blob)
{
  g_autoptr(GBytes) b = g_bytes_new(blob, strlen(blob));
  g_ptr_array_add(msg->records, hark_gi_record_new(&msg->key, "device-1",
                                                   (gint64)1000 * G_USEC_PER_SEC * 3600, b));
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: make-gi-seeds DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  HarkGiId key;
  HarkGiMessage m;
  memset(key.b, 0x02, sizeof key.b); /* close to the fuzzed engine's self (all zero) */
  hark_gi_message_init(&m, HARK_GI_PING, 0, &key);
  write_seed(dir, "ping", &m);
  hark_gi_message_init(&m, HARK_GI_LOOKUP, 7, &key);
  m.ttl = 8;
  write_seed(dir, "lookup", &m);
  hark_gi_message_init(&m, HARK_GI_LOOKUP, 8, &key);
  m.flags = HARK_GI_FLAG_LOCAL;
  write_seed(dir, "lookup-local", &m);
  hark_gi_message_init(&m, HARK_GI_STORE, 9, &key);
  m.ttl = 8;
  add_record(&m, "signed:record");
  write_seed(dir, "store", &m);
  hark_gi_message_init(&m, HARK_GI_STORE, 10, &key);
  m.ttl = 8;
  add_record(&m, "forged:record");
  write_seed(dir, "store-forged", &m);
  hark_gi_message_init(&m, HARK_GI_REPLICA, 0, &key);
  add_record(&m, "signed:record");
  add_record(&m, "signed:record, second");
  write_seed(dir, "replica", &m);
  hark_gi_message_init(&m, HARK_GI_NODES, 11, &key);
  m.ttl = 8;
  write_seed(dir, "nodes", &m);
  hark_gi_message_init(&m, HARK_GI_ANSWER, 12, &key);
  m.flags = HARK_GI_FLAG_OK;
  m.hops = 2;
  add_record(&m, "signed:record");
  HarkGiContact c = { .id = key, .addr = g_bytes_new("127.0.0.1:4433", 14) };
  g_array_append_val(m.contacts, c);
  write_seed(dir, "answer", &m);
  hark_gi_message_init(&m, 9, 13, &key); /* an unknown kind */
  write_seed(dir, "unknown-kind", &m);
  return 0;
}
