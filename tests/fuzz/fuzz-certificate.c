/* fuzz-certificate.c: libFuzzer target for the records a node reads that a stranger may
 * have written:
 *
 *   'D' BYTES         hark_certificate_verify (core/certificate.c): a device certificate,
 *                     PEM or DER, as SNs, peers and the login server get them, including
 *                     the device URI "hark:device:<user>:<account id>:<fingerprint>";
 *   'S' HOST\nBYTES   hark_certificate_verify_server: the login server's TLS certificate
 *                     as the login client checks it for HOST;
 *   'H' JSON          hark_host_cache_load (core/hostcache.c): a hostcache.json file,
 *                     handed over through a memfd, so nothing touches the disk.
 *
 * Certificates are checked against fuzz-keys.h's CA at FUZZ_NOW (make-login-seeds.py
 * made the seeds), so the seeds issued by it get past the signature to the parsing of
 * what they certify. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hark/certificate.h>
#include <hark/hostcache.h>

#include "fuzz-common.h"
#include "fuzz-keys.h"

#define CACHE_CAPACITY 64

static int cache_fd = -1;
static char cache_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  cache_fd = memfd_create("hostcache.json", 0);
  if (cache_fd < 0)
    abort();
  g_snprintf(cache_path, sizeof cache_path, "/proc/self/fd/%d", cache_fd);
  return 0;
}

static void
fuzz_device(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) device =
    hark_certificate_verify(FUZZ_CA_PEM, bytes, FUZZ_NOW, &error);
  if ((device == NULL) == (error == NULL))
    abort();
  fuzz_say(device != NULL ? "device certificate accepted" : "device certificate refused",
           error ? error->message : NULL);
  if (device == NULL)
    return;
  /* What a caller then relies on: a user, an account id, the key's fingerprint, valid now. */
  gsize key_length = 0;
  g_bytes_get_data(device->public_key, &key_length);
  if (device->user == NULL || !hark_account_id_is_valid(device->account_id) ||
      device->device_id == NULL || strlen(device->device_id) != 64 ||
      key_length != HARK_IDENTITY_PUBLIC_KEY_SIZE || device->not_before > FUZZ_NOW ||
      device->not_after < FUZZ_NOW)
    abort();
  /* A device's certificate is never a login server's. */
  if (hark_certificate_verify_server(FUZZ_CA_PEM, bytes, "login.example", FUZZ_NOW, NULL))
    abort();
}

static void
fuzz_server(const uint8_t *data, size_t size)
{
  const uint8_t *newline = memchr(data, '\n', size);
  if (newline == NULL)
    return;
  g_autofree char *host = g_strndup((const char *)data, (gsize)(newline - data));
  g_autoptr(GBytes) bytes = g_bytes_new(newline + 1, size - (gsize)(newline + 1 - data));
  g_autoptr(GError) error = NULL;
  gboolean ok = hark_certificate_verify_server(FUZZ_CA_PEM, bytes, host, FUZZ_NOW, &error);
  if (ok == (error != NULL))
    abort();
  fuzz_say(ok ? "server certificate accepted" : "server certificate refused",
           error ? error->message : NULL);
  /* ... and a login server's is never a device's. */
  if (ok && hark_certificate_verify(FUZZ_CA_PEM, bytes, FUZZ_NOW, NULL) != NULL)
    abort();
}

static void
fuzz_host_cache(const uint8_t *data, size_t size)
{
  if (ftruncate(cache_fd, 0) != 0 || pwrite(cache_fd, data, size, 0) != (ssize_t)size)
    abort();
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkHostCache) cache = hark_host_cache_load(cache_path, CACHE_CAPACITY, &error);
  if ((cache == NULL) == (error == NULL))
    abort();
  fuzz_say(cache != NULL ? "host cache loaded" : "host cache refused",
           error ? error->message : NULL);
  if (cache == NULL)
    return;
  if (hark_host_cache_size(cache) > CACHE_CAPACITY)
    abort();
  g_autoptr(GPtrArray) best = hark_host_cache_best(cache, CACHE_CAPACITY);
  for (guint i = 0; i < best->len; i++) {
    const HarkHostCacheEntry *entry = g_ptr_array_index(best, i);
    if (hark_host_cache_lookup(cache, entry->host, entry->port) == NULL)
      abort();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  switch (data[0]) {
  case 'D':
    fuzz_device(data + 1, size - 1);
    break;
  case 'S':
    fuzz_server(data + 1, size - 1);
    break;
  case 'H':
    fuzz_host_cache(data + 1, size - 1);
    break;
  default:
    break;
  }
  return 0;
}
