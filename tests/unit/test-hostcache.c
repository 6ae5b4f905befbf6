/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-hostcache.c: the host cache: its ranking, its capacity (the worst entry evicted,
 * bootstrap SNs never), refreshing, failures and ageing, a save and load that keep every
 * field in a 0600 file, and a start from a missing or damaged file, which gives the
 * bootstrap list, a warning naming the file and a .corrupt copy, never a crash. */
#include "test-files.h"
#include "test-isolate.h"
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include <hark/hostcache.h>

/* ---- helpers ---------------------------------------------------------------------- */

typedef struct {
  char *dir; /* a fresh temporary directory */
  char *path; /* dir/hostcache.json, not created */
  char *aside; /* path.corrupt */
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("hark-hostcache-XXXXXX", &error);
  g_assert_no_error(error);
  f->path = g_build_filename(f->dir, "hostcache.json", NULL);
  f->aside = g_strconcat(f->path, ".corrupt", NULL);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_assert_true(hark_test_remove_tree(f->dir));
  g_free(f->aside);
  g_free(f->path);
  g_free(f->dir);
}

static const char *const udp_tcp[] = { "udp", "tcp", NULL };

static HarkBootstrapConfig *
bootstrap_new(const char *host, guint16 port)
{
  HarkBootstrapConfig *b = g_new0(HarkBootstrapConfig, 1);
  b->host = g_strdup(host);
  b->port = port;
  b->transports = g_strdupv((char **)udp_tcp);
  return b;
}

static void
bootstrap_free(gpointer data)
{
  HarkBootstrapConfig *b = data;
  g_free(b->host);
  g_strfreev(b->transports);
  g_free(b);
}

/* The configuration's bootstrap list: sn1..snN.example, port 33033. */
static GPtrArray *
bootstrap_list(guint count)
{
  GPtrArray *list = g_ptr_array_new_with_free_func(bootstrap_free);
  for (guint i = 1; i <= count; i++) {
    g_autofree char *host = g_strdup_printf("sn%u.example", i);
    g_ptr_array_add(list, bootstrap_new(host, 33033));
  }
  return list;
}

/* The hosts of the whole cache, best first, joined by ' '. */
static char *
ranked_hosts(HarkHostCache *cache)
{
  g_autoptr(GPtrArray) best = hark_host_cache_best(cache, hark_host_cache_size(cache));
  g_autoptr(GString) hosts = g_string_new(NULL);
  for (guint i = 0; i < best->len; i++) {
    const HarkHostCacheEntry *e = g_ptr_array_index(best, i);
    g_string_append_printf(hosts, "%s%s", i ? " " : "", e->host);
  }
  return g_string_free(g_steal_pointer(&hosts), FALSE);
}

static void
assert_entries_equal(const HarkHostCacheEntry *a, const HarkHostCacheEntry *b)
{
  g_assert_cmpstr(a->host, ==, b->host);
  g_assert_cmpuint(a->port, ==, b->port);
  g_assert_true(
    g_strv_equal((const char *const *)a->transports, (const char *const *)b->transports));
  g_assert_cmpint(a->last_seen, ==, b->last_seen);
  g_assert_cmpuint(a->failures, ==, b->failures);
  g_assert_cmpint(a->rtt_us, ==, b->rtt_us);
  g_assert_cmpint(a->bootstrap, ==, b->bootstrap);
  g_assert_cmpstr(a->learnt_from, ==, b->learnt_from);
}

static void
assert_same_cache(HarkHostCache *a, HarkHostCache *b)
{
  g_assert_cmpuint(hark_host_cache_size(a), ==, hark_host_cache_size(b));
  g_autoptr(GPtrArray) best_a = hark_host_cache_best(a, hark_host_cache_size(a));
  g_autoptr(GPtrArray) best_b = hark_host_cache_best(b, hark_host_cache_size(b));
  for (guint i = 0; i < best_a->len; i++)
    assert_entries_equal(g_ptr_array_index(best_a, i), g_ptr_array_index(best_b, i));
}

/* The cache holds exactly the bootstrap list, each entry marked bootstrap. */
static void
assert_bootstrap_only(HarkHostCache *cache, GPtrArray *bootstrap)
{
  g_assert_cmpuint(hark_host_cache_size(cache), ==, bootstrap->len);
  for (guint i = 0; i < bootstrap->len; i++) {
    const HarkBootstrapConfig *b = g_ptr_array_index(bootstrap, i);
    const HarkHostCacheEntry *e = hark_host_cache_lookup(cache, b->host, b->port);
    g_assert_nonnull(e);
    g_assert_true(e->bootstrap);
    g_assert_true(
      g_strv_equal((const char *const *)e->transports, (const char *const *)b->transports));
  }
}

static guint
count_files(const char *dir_path)
{
  g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
  g_assert_nonnull(dir);
  guint count = 0;
  while (g_dir_read_name(dir) != NULL)
    count++;
  return count;
}

/* ---- ranking, capacity, refreshing, ageing ---------------------------------------- */

static void
test_rank(void)
{
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(10);
  g_assert_true(hark_host_cache_seen(cache, "slow", 1, udp_tcp, 5000, 100));
  g_assert_true(hark_host_cache_seen(cache, "fast-old", 1, udp_tcp, 1000, 100));
  g_assert_true(hark_host_cache_seen(cache, "unmeasured", 1, udp_tcp, -1, 200));
  g_assert_true(hark_host_cache_seen(cache, "fast-old-2", 1, udp_tcp, 1000, 100));
  g_assert_true(hark_host_cache_seen(cache, "fast-new", 1, udp_tcp, 1000, 150));
  g_assert_true(hark_host_cache_seen(cache, "failing", 1, udp_tcp, 10, 300));
  g_assert_true(hark_host_cache_failed(cache, "failing", 1, 301));

  g_autofree char *hosts = ranked_hosts(cache);
  g_assert_cmpstr(hosts, ==, "fast-new fast-old fast-old-2 slow unmeasured failing");

  g_autoptr(GPtrArray) two = hark_host_cache_best(cache, 2);
  g_assert_cmpuint(two->len, ==, 2);
  g_assert_cmpstr(((HarkHostCacheEntry *)g_ptr_array_index(two, 1))->host, ==, "fast-old");
  g_autoptr(GPtrArray) none = hark_host_cache_best(cache, 0);
  g_assert_cmpuint(none->len, ==, 0);
}

/* Entries a peer named: unverified, ranked after every entry that answered (even a
 * failing one), verified by an answer, never handed a verified entry's place. */
static void
test_learn_rank(void)
{
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(10);
  g_assert_true(hark_host_cache_seen(cache, "192.0.2.1", 1, udp_tcp, -1, 100));
  g_assert_true(hark_host_cache_failed(cache, "192.0.2.1", 1, 101));
  g_assert_true(hark_host_cache_learn(cache, "192.0.2.9", 1, udp_tcp, "198.51.100.1", 500));
  g_assert_true(hark_host_cache_learn(cache, "192.0.2.1", 1, udp_tcp, "198.51.100.1", 500));
  const HarkHostCacheEntry *known = hark_host_cache_lookup(cache, "192.0.2.1", 1);
  g_assert_null(known->learnt_from); /* known already: nothing changed */
  g_autofree char *hosts = ranked_hosts(cache);
  g_assert_cmpstr(hosts, ==, "192.0.2.1 192.0.2.9");
  const HarkHostCacheEntry *heard = hark_host_cache_lookup(cache, "192.0.2.9", 1);
  g_assert_cmpstr(heard->learnt_from, ==, "198.51.100.1");
  g_assert_cmpint(heard->last_seen, ==, 500);
  g_assert_true(hark_host_cache_seen(cache, "192.0.2.9", 1, NULL, 800, 600));
  g_assert_null(hark_host_cache_lookup(cache, "192.0.2.9", 1)->learnt_from);
  g_autofree char *after = ranked_hosts(cache);
  g_assert_cmpstr(after, ==, "192.0.2.9 192.0.2.1");
}

/* One source cannot fill the cache (HARK_HOST_CACHE_MAX_PER_SOURCE), many cannot take
 * more than the unverified share, and a full cache keeps every entry that answered. */
static void
test_learn_caps(void)
{
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(HARK_HOST_CACHE_DEFAULT_CAPACITY);
  for (guint i = 0; i < 150; i++) {
    g_autofree char *host = g_strdup_printf("192.0.2.%u", i);
    g_assert_true(hark_host_cache_seen(cache, host, 1, udp_tcp, -1, 100));
  }
  guint taken = 0;
  for (guint i = 0; i < 200; i++) {
    g_autofree char *host = g_strdup_printf("203.0.113.%u", i);
    taken += hark_host_cache_learn(cache, host, 1, udp_tcp, "198.51.100.1", 200);
  }
  g_assert_cmpuint(taken, ==, HARK_HOST_CACHE_MAX_PER_SOURCE);
  guint from_many = 0;
  for (guint i = 0; i < 200; i++) {
    g_autofree char *host = g_strdup_printf("10.0.%u.1", i);
    g_autofree char *source = g_strdup_printf("198.51.100.%u", 2 + i / 16);
    from_many += hark_host_cache_learn(cache, host, 1, udp_tcp, source, 200);
  }
  g_assert_cmpuint(taken + from_many, ==,
                   HARK_HOST_CACHE_DEFAULT_CAPACITY / HARK_HOST_CACHE_UNVERIFIED_SHARE);
  g_assert_false(hark_host_cache_learn(cache, "10.9.9.9", 1, udp_tcp, "198.51.100.99", 300));
  for (guint i = 0; i < 150; i++) {
    g_autofree char *host = g_strdup_printf("192.0.2.%u", i);
    g_assert_nonnull(hark_host_cache_lookup(cache, host, 1));
  }

  /* A cache full of SNs that answered takes nothing it was merely told of. */
  g_autoptr(HarkHostCache) small = hark_host_cache_new(8);
  for (guint i = 0; i < 8; i++) {
    g_autofree char *host = g_strdup_printf("192.0.2.%u", i);
    g_assert_true(hark_host_cache_seen(small, host, 1, udp_tcp, -1, 100));
  }
  g_assert_false(hark_host_cache_learn(small, "10.9.9.9", 1, udp_tcp, "198.51.100.99", 300));
  g_assert_null(hark_host_cache_lookup(small, "10.9.9.9", 1));
  /* An answering SN takes an unverified entry's place first. */
  g_autoptr(HarkHostCache) mixed = hark_host_cache_new(2);
  g_assert_true(hark_host_cache_seen(mixed, "192.0.2.1", 1, udp_tcp, -1, 100));
  g_assert_true(hark_host_cache_learn(mixed, "10.9.9.9", 1, udp_tcp, "198.51.100.99", 300));
  g_assert_true(hark_host_cache_seen(mixed, "192.0.2.2", 1, udp_tcp, -1, 50));
  g_autofree char *hosts = ranked_hosts(mixed);
  g_assert_cmpstr(hosts, ==, "192.0.2.1 192.0.2.2");
}

static gboolean
refuse_names(const char *host, gpointer data)
{
  return g_strcmp0(host, data) == 0;
}

/* Entries a rule of today refuses go, bootstrap ones stay. */
static void
test_forget_where(void)
{
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(10);
  HarkBootstrapConfig configured = { .host = "localhost", .port = 2, .transports = NULL };
  g_assert_true(hark_host_cache_add_bootstrap(cache, &configured));
  g_assert_true(hark_host_cache_seen(cache, "localhost", 1, udp_tcp, -1, 100));
  g_assert_true(hark_host_cache_seen(cache, "192.0.2.1", 1, udp_tcp, -1, 100));
  g_assert_cmpuint(hark_host_cache_forget_where(cache, refuse_names, "localhost"), ==, 1);
  g_autofree char *hosts = ranked_hosts(cache);
  g_assert_cmpstr(hosts, ==, "192.0.2.1 localhost");
  g_assert_true(hark_host_cache_lookup(cache, "localhost", 2)->bootstrap);
}

static void
test_capacity(void)
{
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(3);
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(HARK_HOST_CACHE_DEFAULT_CAPACITY);
  for (guint i = 0; i < bootstrap->len; i++)
    g_assert_true(hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, i)));
  /* A failing bootstrap SN ranks worst of all, and still is never evicted. */
  for (guint i = 0; i < 5; i++)
    hark_host_cache_failed(cache, "sn1.example", 33033, 1000);

  for (guint i = 0; i < HARK_HOST_CACHE_DEFAULT_CAPACITY - 3; i++) {
    g_autofree char *host = g_strdup_printf("10.0.%u.%u", i / 250, i % 250 + 1);
    g_assert_true(hark_host_cache_seen(cache, host, 33033, udp_tcp, 1000 + i, 1000));
  }
  g_assert_cmpuint(hark_host_cache_size(cache), ==, HARK_HOST_CACHE_DEFAULT_CAPACITY);
  hark_host_cache_failed(cache, "10.0.0.50", 33033, 1001);

  /* Full: the failing ordinary entry goes first, then the slowest. */
  g_assert_true(hark_host_cache_seen(cache, "new1.example", 33033, udp_tcp, -1, 1002));
  g_assert_null(hark_host_cache_lookup(cache, "10.0.0.50", 33033));
  g_assert_nonnull(hark_host_cache_lookup(cache, "10.0.0.49", 33033));
  g_assert_true(hark_host_cache_seen(cache, "new2.example", 33033, udp_tcp, 5, 1002));
  g_assert_null(hark_host_cache_lookup(cache, "new1.example", 33033)); /* unknown RTT */
  g_assert_true(hark_host_cache_seen(cache, "new3.example", 33033, udp_tcp, 5, 1002));
  g_assert_null(hark_host_cache_lookup(cache, "10.0.0.197", 33033)); /* slowest: 1196 µs */
  g_assert_cmpuint(hark_host_cache_size(cache), ==, HARK_HOST_CACHE_DEFAULT_CAPACITY);

  for (guint i = 0; i < 300; i++) {
    g_autofree char *host = g_strdup_printf("more%u.example", i);
    g_assert_true(hark_host_cache_seen(cache, host, 1, NULL, i, 2000));
    g_assert_cmpuint(hark_host_cache_size(cache), <=, HARK_HOST_CACHE_DEFAULT_CAPACITY);
  }
  g_assert_cmpuint(hark_host_cache_size(cache), ==, HARK_HOST_CACHE_DEFAULT_CAPACITY);
  for (guint i = 0; i < bootstrap->len; i++) {
    const HarkBootstrapConfig *b = g_ptr_array_index(bootstrap, i);
    g_assert_nonnull(hark_host_cache_lookup(cache, b->host, b->port));
  }
}

static void
test_full_of_bootstrap(void)
{
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(3);
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(2);
  g_assert_true(hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, 0)));
  g_assert_true(hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, 1)));
  g_assert_false(hark_host_cache_seen(cache, "other.example", 1, udp_tcp, 1, 100));
  g_assert_false(hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, 2)));
  g_assert_cmpuint(hark_host_cache_size(cache), ==, 2);
  /* Known entries are still refreshed. */
  g_assert_true(hark_host_cache_seen(cache, "sn1.example", 33033, NULL, 7, 100));
  g_assert_cmpint(hark_host_cache_lookup(cache, "sn1.example", 33033)->rtt_us, ==, 7);
}

static void
test_seen_failed(void)
{
  static const char *const tls_only[] = { "tls443", NULL };
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(10);

  g_assert_true(hark_host_cache_seen(cache, "sn.example", 4000, tls_only, 1500, 100));
  const HarkHostCacheEntry *e = hark_host_cache_lookup(cache, "sn.example", 4000);
  g_assert_nonnull(e);
  g_assert_false(e->bootstrap);
  g_assert_cmpint(e->last_seen, ==, 100);
  g_assert_null(hark_host_cache_lookup(cache, "sn.example", 4001));

  g_assert_true(hark_host_cache_failed(cache, "sn.example", 4000, 110));
  g_assert_true(hark_host_cache_failed(cache, "SN.Example", 4000, 120));
  g_assert_cmpuint(hark_host_cache_lookup(cache, "sn.example", 4000)->failures, ==, 2);
  g_assert_false(hark_host_cache_failed(cache, "unknown.example", 4000, 120));
  g_assert_cmpuint(hark_host_cache_size(cache), ==, 1);

  /* An answer without a new measure or transport list keeps the old ones. */
  g_assert_true(hark_host_cache_seen(cache, "sn.example", 4000, NULL, -1, 130));
  e = hark_host_cache_lookup(cache, "sn.example", 4000);
  g_assert_cmpuint(e->failures, ==, 0);
  g_assert_cmpint(e->last_seen, ==, 130);
  g_assert_cmpint(e->rtt_us, ==, 1500);
  g_assert_true(g_strv_equal((const char *const *)e->transports, tls_only));

  /* The configuration makes a known SN a bootstrap one, with its transports. */
  g_autoptr(GPtrArray) bootstrap = g_ptr_array_new_with_free_func(bootstrap_free);
  g_ptr_array_add(bootstrap, bootstrap_new("sn.example", 4000));
  g_assert_true(hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, 0)));
  e = hark_host_cache_lookup(cache, "sn.example", 4000);
  g_assert_true(e->bootstrap);
  g_assert_cmpint(e->last_seen, ==, 130);
  g_assert_true(g_strv_equal((const char *const *)e->transports, udp_tcp));
  g_assert_cmpuint(hark_host_cache_size(cache), ==, 1);
}

static void
test_expire(void)
{
  const gint64 now = 100000, max_age = 3600;
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(1);
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(10);

  g_assert_true(hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, 0)));
  for (guint i = 0; i < HARK_HOST_CACHE_MAX_FAILURES + 2; i++)
    hark_host_cache_failed(cache, "sn1.example", 33033, now);
  hark_host_cache_seen(cache, "fresh", 1, udp_tcp, -1, now - 10);
  hark_host_cache_seen(cache, "at-max-age", 1, udp_tcp, -1, now - max_age);
  hark_host_cache_seen(cache, "too-old", 1, udp_tcp, -1, now - max_age - 1);
  hark_host_cache_seen(cache, "almost-failed", 1, udp_tcp, -1, now);
  hark_host_cache_seen(cache, "failed", 1, udp_tcp, -1, now);
  for (guint i = 0; i < HARK_HOST_CACHE_MAX_FAILURES; i++) {
    hark_host_cache_failed(cache, "failed", 1, now);
    if (i + 1 < HARK_HOST_CACHE_MAX_FAILURES)
      hark_host_cache_failed(cache, "almost-failed", 1, now);
  }

  g_assert_cmpuint(hark_host_cache_expire(cache, now, max_age), ==, 2);
  g_autofree char *hosts = ranked_hosts(cache);
  g_assert_cmpstr(hosts, ==, "fresh at-max-age almost-failed sn1.example");
  g_assert_cmpuint(hark_host_cache_expire(cache, now, max_age), ==, 0);
  /* Much later everything ordinary has aged out; the bootstrap SN stays. */
  g_assert_cmpuint(hark_host_cache_expire(cache, now * 10, max_age), ==, 3);
  assert_bootstrap_only(cache, bootstrap);
}

/* ---- saving and loading ----------------------------------------------------------- */

/* A cache with a bit of everything: bootstrap and ordinary, failures, unknown RTT,
 * never seen, all transports. */
static HarkHostCache *
varied_cache(GPtrArray *bootstrap)
{
  static const char *const all[] = { "tls443", "udp", "tcp", NULL };
  HarkHostCache *cache = hark_host_cache_new(HARK_HOST_CACHE_DEFAULT_CAPACITY);
  for (guint i = 0; i < bootstrap->len; i++)
    hark_host_cache_add_bootstrap(cache, g_ptr_array_index(bootstrap, i));
  hark_host_cache_seen(cache, "sn1.example", 33033, NULL, 900, 1700000000);
  hark_host_cache_seen(cache, "192.0.2.7", 443, all, -1, 1700000100);
  hark_host_cache_seen(cache, "2001:db8::1", 65535, udp_tcp, 12345, 1700000200);
  hark_host_cache_failed(cache, "2001:db8::1", 65535, 1700000300);
  hark_host_cache_seen(cache, "tie-a", 1, udp_tcp, 50, 5);
  hark_host_cache_seen(cache, "tie-b", 1, udp_tcp, 50, 5);
  hark_host_cache_learn(cache, "198.51.100.20", 33033, udp_tcp, "2001:db8:1:2::/64", 1700000400);
  return cache;
}

static void
test_save_load(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(2);
  g_autoptr(HarkHostCache) cache = varied_cache(bootstrap);

  /* An older file others could read is replaced by a private one. */
  g_assert_true(g_file_set_contents(f->path, "old", -1, NULL));
  g_assert_cmpint(g_chmod(f->path, 0644), ==, 0);
  g_assert_true(hark_host_cache_save(cache, f->path, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(hark_test_file_mode(f->path), ==, 0600);
  g_assert_cmpuint(count_files(f->dir), ==, 1); /* no temporary file left behind */

  g_autoptr(HarkHostCache) loaded =
    hark_host_cache_load(f->path, HARK_HOST_CACHE_DEFAULT_CAPACITY, &error);
  g_assert_no_error(error);
  g_assert_nonnull(loaded);
  assert_same_cache(cache, loaded);
  g_autofree char *hosts = ranked_hosts(loaded);
  g_assert_cmpstr(hosts, ==,
                  "tie-a tie-b sn1.example 192.0.2.7 sn2.example 2001:db8::1 198.51.100.20");
}

static void
test_save_error(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkHostCache) cache = hark_host_cache_new(1);
  g_autofree char *path = g_build_filename(f->dir, "no-such-dir", "hostcache.json", NULL);
  g_assert_false(hark_host_cache_save(cache, path, &error));
  g_assert_error(error, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_IO);
  g_assert_nonnull(strstr(error->message, "no-such-dir"));
}

static void
test_load_errors(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(hark_host_cache_load(f->path, 10, &error));
  g_assert_error(error, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_MISSING);
  g_assert_nonnull(strstr(error->message, f->path));
  g_clear_error(&error);

  /* load only reports: the damaged file stays where it is. */
  g_assert_true(g_file_set_contents(f->path, "{", -1, NULL));
  g_assert_null(hark_host_cache_load(f->path, 10, &error));
  g_assert_error(error, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_CORRUPT);
  g_assert_nonnull(strstr(error->message, f->path));
  g_assert_true(g_file_test(f->path, G_FILE_TEST_EXISTS));
  g_assert_false(g_file_test(f->aside, G_FILE_TEST_EXISTS));
}

/* ---- opening at start ------------------------------------------------------------- */

static void
test_open_missing(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) warning = NULL;
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(2);
  g_autoptr(HarkHostCache) cache = hark_host_cache_open(f->path, 200, bootstrap, &warning);
  g_assert_no_error(warning);
  g_assert_nonnull(cache);
  assert_bootstrap_only(cache, bootstrap);
  g_assert_cmpuint(count_files(f->dir), ==, 0);

  g_autoptr(HarkHostCache) empty = hark_host_cache_open(f->path, 200, NULL, &warning);
  g_assert_no_error(warning);
  g_assert_cmpuint(hark_host_cache_size(empty), ==, 0);
}

/* An unreadable cache (here a directory) is a warning too, but it is not corrupt, so it
 * is not moved. */
static void
test_open_unreadable(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) warning = NULL;
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(1);
  g_assert_cmpint(g_mkdir(f->path, 0700), ==, 0);
  g_autoptr(HarkHostCache) cache = hark_host_cache_open(f->path, 200, bootstrap, &warning);
  g_assert_error(warning, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_IO);
  g_assert_nonnull(strstr(warning->message, f->path));
  assert_bootstrap_only(cache, bootstrap);
  g_assert_true(g_file_test(f->path, G_FILE_TEST_IS_DIR));
  g_assert_false(g_file_test(f->aside, G_FILE_TEST_EXISTS));
}

static void
test_round_trip_bootstrap(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(2);
  g_autoptr(HarkHostCache) first = hark_host_cache_open(f->path, 200, bootstrap, &error);
  g_assert_no_error(error);
  hark_host_cache_seen(first, "learnt.example", 33033, udp_tcp, 300, 1700000000);
  hark_host_cache_seen(first, "sn2.example", 33033, NULL, 200, 1700000000);
  g_assert_true(hark_host_cache_save(first, f->path, &error));
  g_assert_no_error(error);

  g_autoptr(HarkHostCache) second = hark_host_cache_open(f->path, 200, bootstrap, &error);
  g_assert_no_error(error);
  assert_same_cache(first, second);
  g_assert_true(hark_host_cache_lookup(second, "sn1.example", 33033)->bootstrap);
  g_assert_true(hark_host_cache_lookup(second, "sn2.example", 33033)->bootstrap);
  g_assert_false(hark_host_cache_lookup(second, "learnt.example", 33033)->bootstrap);

  /* sn1 left the configuration: it is an ordinary entry now, and never seen, so it ages
   * out; sn2 was seen and stays until it is old. */
  g_ptr_array_remove_index(bootstrap, 0);
  g_autoptr(HarkHostCache) third = hark_host_cache_open(f->path, 200, bootstrap, &error);
  g_assert_no_error(error);
  g_assert_false(hark_host_cache_lookup(third, "sn1.example", 33033)->bootstrap);
  g_assert_true(hark_host_cache_lookup(third, "sn2.example", 33033)->bootstrap);
  g_assert_cmpuint(hark_host_cache_expire(third, 1700000001, 3600), ==, 1);
  g_assert_null(hark_host_cache_lookup(third, "sn1.example", 33033));
}

/* ---- opening a corrupt file ------------------------------------------------------- */

typedef struct {
  const char *name;
  GBytes *(*make)(void); /* the file's content */
  const char *problem; /* in the warning's message */
} CorruptCase;

#define ENTRY(host, port, transports, last_seen, rtt, bootstrap)         \
  "{\"host\": " host ", \"port\": " port ", \"transports\": " transports \
  ", \"last_seen\": " last_seen ", \"failures\": 0, \"rtt_us\": " rtt    \
  ", \"bootstrap\": " bootstrap "}"
#define GOOD_ENTRY ENTRY("\"sn.example\"", "33033", "[\"udp\"]", "100", "-1", "false")
#define FILE_OF(entries) "{\"version\": 1, \"entries\": [" entries "]}"

static GBytes *
text(const char *content)
{
  return g_bytes_new_static(content, strlen(content));
}

static GBytes *
make_garbage(void)
{
  return g_bytes_new_static("\x01\x02 not json \xff\x00!", 15);
}
static GBytes *
make_empty(void)
{
  return text("");
}
static GBytes *
make_truncated(void)
{
  return text("{\"version\": 1, \"entries\": [" GOOD_ENTRY);
}
static GBytes *
make_not_object(void)
{
  return text("[" GOOD_ENTRY "]");
}
static GBytes *
make_version(void)
{
  return text("{\"version\": 2, \"entries\": []}");
}
static GBytes *
make_no_entries(void)
{
  return text("{\"version\": 1}");
}
static GBytes *
make_port_string(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "\"33033\"", "[\"udp\"]", "1", "-1", "false")));
}
static GBytes *
make_port_70000(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "70000", "[\"udp\"]", "1", "-1", "false")));
}
static GBytes *
make_port_zero(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "0", "[\"udp\"]", "1", "-1", "false")));
}
static GBytes *
make_empty_host(void)
{
  return text(FILE_OF(ENTRY("\"\"", "1", "[\"udp\"]", "1", "-1", "false")));
}
static GBytes *
make_host_number(void)
{
  return text(FILE_OF(ENTRY("42", "1", "[\"udp\"]", "1", "-1", "false")));
}
static GBytes *
make_unknown_transport(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "1", "[\"udp\", \"sctp\"]", "1", "-1", "false")));
}
static GBytes *
make_no_transport(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "1", "[]", "1", "-1", "false")));
}
static GBytes *
make_rtt_double(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "1", "[\"udp\"]", "1", "1.5", "false")));
}
static GBytes *
make_bootstrap_string(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "1", "[\"udp\"]", "1", "-1", "\"yes\"")));
}
static GBytes *
make_negative_time(void)
{
  return text(FILE_OF(ENTRY("\"sn.example\"", "1", "[\"udp\"]", "-5", "-1", "false")));
}
static GBytes *
make_duplicate(void)
{
  return text(FILE_OF(GOOD_ENTRY ", " GOOD_ENTRY));
}
#define LEARNT_ENTRY(bootstrap, source)                                                  \
  "{\"host\": \"192.0.2.1\", \"port\": 1, \"transports\": [\"udp\"], \"last_seen\": 1, " \
  "\"failures\": 0, \"rtt_us\": -1, \"bootstrap\": " bootstrap ", \"learnt_from\": " source "}"
static GBytes *
make_learnt_from_text(void)
{
  return text(FILE_OF(LEARNT_ENTRY("false", "\"evil\\nline\"")));
}
static GBytes *
make_learnt_bootstrap(void)
{
  return text(FILE_OF(LEARNT_ENTRY("true", "\"192.0.2.9\"")));
}
static GBytes *
make_unknown_member(void)
{
  return text("{\"version\": 1, \"entries\": [], \"extra\": true}");
}

static GBytes *
make_201_entries(void)
{
  g_autoptr(GString) s = g_string_new("{\"version\": 1, \"entries\": [");
  for (guint i = 0; i < 201; i++)
    g_string_append_printf(s,
                           "%s{\"host\": \"sn%u.example\", \"port\": 1, \"transports\": "
                           "[\"udp\"], \"last_seen\": 1, \"failures\": 0, \"rtt_us\": -1, "
                           "\"bootstrap\": false}",
                           i ? ", " : "", i);
  g_string_append(s, "]}");
  return g_string_free_to_bytes(g_steal_pointer(&s));
}

/* Valid JSON, but 2 MiB of it: refused by size, not parsed. */
static GBytes *
make_2_mib(void)
{
  gsize size = 2 * 1024 * 1024;
  g_autoptr(GString) s = g_string_new(FILE_OF(GOOD_ENTRY));
  g_string_append(s, "\n");
  while (s->len < size)
    g_string_append_c(s, ' ');
  return g_string_free_to_bytes(g_steal_pointer(&s));
}

/* Far below 1 MiB, deep enough to exhaust the stack of a recursive parser. */
static GBytes *
make_deep(void)
{
  g_autoptr(GString) s = g_string_new("{\"version\": 1, \"entries\": ");
  for (guint i = 0; i < 500000; i++)
    g_string_append_c(s, '[');
  return g_string_free_to_bytes(g_steal_pointer(&s));
}

static const CorruptCase corrupt_cases[] = {
  { "garbage", make_garbage, "not a valid host cache" },
  { "empty", make_empty, "empty" },
  { "truncated", make_truncated, "not a valid host cache" },
  { "not-object", make_not_object, "top level is not an object" },
  { "version", make_version, "version 2 is not supported" },
  { "no-entries", make_no_entries, "\"entries\" is missing" },
  { "port-string", make_port_string, "entry 0: \"port\" is not an integer" },
  { "port-70000", make_port_70000, "\"port\" is 70000" },
  { "port-zero", make_port_zero, "\"port\" is 0" },
  { "empty-host", make_empty_host, "\"host\" \"\" is not" },
  { "host-number", make_host_number, "\"host\" is not a string" },
  { "unknown-transport", make_unknown_transport, "\"transports\" item 1" },
  { "no-transport", make_no_transport, "\"transports\" has 0 names" },
  { "rtt-double", make_rtt_double, "\"rtt_us\" is not an integer" },
  { "bootstrap-string", make_bootstrap_string, "\"bootstrap\" is not true or false" },
  { "negative-time", make_negative_time, "\"last_seen\" is -5" },
  { "duplicate", make_duplicate, "entry 1: sn.example:33033 is listed twice" },
  { "learnt-from-text", make_learnt_from_text, "\"learnt_from\" is not a source address" },
  { "learnt-bootstrap", make_learnt_bootstrap, "\"learnt_from\" is not a source address" },
  { "unknown-member", make_unknown_member, "unknown member \"extra\"" },
  { "201-entries", make_201_entries, "201 entries, more than the 200" },
  { "2-mib", make_2_mib, "larger than 1048576 bytes" },
  { "deep", make_deep, "nested more than" },
};

static void
test_open_corrupt(Fixture *f, gconstpointer data)
{
  const CorruptCase *c = data;
  g_autoptr(GBytes) content = c->make();
  g_autoptr(GPtrArray) bootstrap = bootstrap_list(2);
  g_autoptr(GError) warning = NULL;
  gsize length = 0;
  const char *bytes = g_bytes_get_data(content, &length);
  g_assert_true(g_file_set_contents(f->path, bytes, (gssize)length, NULL));

  g_autoptr(HarkHostCache) cache = hark_host_cache_open(f->path, 200, bootstrap, &warning);
  g_assert_nonnull(cache);
  g_assert_error(warning, HARK_HOST_CACHE_ERROR, HARK_HOST_CACHE_ERROR_CORRUPT);
  g_test_message("%s", warning->message);
  g_assert_true(g_str_has_prefix(warning->message, f->path));
  g_assert_nonnull(strstr(warning->message, c->problem));
  g_assert_nonnull(strstr(warning->message, f->aside));
  assert_bootstrap_only(cache, bootstrap);

  /* The bad file is kept, byte for byte, beside the place a new one will go. */
  g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
  g_autofree char *kept = NULL;
  gsize kept_length = 0;
  g_assert_true(g_file_get_contents(f->aside, &kept, &kept_length, NULL));
  g_assert_cmpmem(kept, kept_length, bytes, length);

  g_autoptr(GError) error = NULL;
  g_assert_true(hark_host_cache_save(cache, f->path, &error));
  g_assert_no_error(error);
}

int
main(int argc, char **argv)
{
  hark_test_init_isolated(&argc, &argv, 60000);
  hark_test_add_isolated_func("/hostcache/rank", test_rank);
  hark_test_add_isolated_func("/hostcache/capacity", test_capacity);
  hark_test_add_isolated_func("/hostcache/learn-rank", test_learn_rank);
  hark_test_add_isolated_func("/hostcache/learn-caps", test_learn_caps);
  hark_test_add_isolated_func("/hostcache/forget-where", test_forget_where);
  hark_test_add_isolated_func("/hostcache/full-of-bootstrap", test_full_of_bootstrap);
  hark_test_add_isolated_func("/hostcache/seen-failed", test_seen_failed);
  hark_test_add_isolated_func("/hostcache/expire", test_expire);
#define ADD(path, func) \
  hark_test_add_isolated(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD("/hostcache/save-load", test_save_load);
  ADD("/hostcache/save-error", test_save_error);
  ADD("/hostcache/load-errors", test_load_errors);
  ADD("/hostcache/open/missing", test_open_missing);
  ADD("/hostcache/open/unreadable", test_open_unreadable);
  ADD("/hostcache/open/round-trip-bootstrap", test_round_trip_bootstrap);
#undef ADD
  for (guint i = 0; i < G_N_ELEMENTS(corrupt_cases); i++) {
    g_autofree char *path = g_strdup_printf("/hostcache/open/corrupt/%s", corrupt_cases[i].name);
    hark_test_add_isolated(path, Fixture, &corrupt_cases[i], fixture_set_up, test_open_corrupt,
                           fixture_tear_down);
  }
  return g_test_run();
}
