/* fuzz-stun.c: libFuzzer target for the STUN binding server, which reads datagrams
 * from anyone. Besides crashes and leaks it checks that the demultiplexer and the parser
 * agree, and that every answer the server builds is itself a valid STUN message of the
 * request's transaction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stun.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

static void
check_answer(GBytes *request, GBytes *answer)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunMessage) m = hark_stun_parse(answer, &error);
  if (m == NULL || !m->has_fingerprint || !hark_stun_is_stun(answer))
    abort();
  if (m->type != HARK_STUN_BINDING_SUCCESS && m->type != HARK_STUN_BINDING_ERROR)
    abort();
  if (memcmp(m->transaction_id, (const guint8 *)g_bytes_get_data(request, NULL) + 8, 12) != 0)
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) input = g_bytes_new(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunMessage) parsed = hark_stun_parse(input, &error);
  if (parsed == NULL ? error == NULL || error->domain != HARK_STUN_ERROR
                     : !hark_stun_is_stun(input))
    abort();
  g_clear_error(&error);

  /* Both address families, since the XOR covers the transaction id only for IPv6. */
  static const char *const from[] = { "192.0.2.1", "2001:db8::1" };
  for (gsize i = 0; i < G_N_ELEMENTS(from); i++) {
    g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string(from[i], 4242);
    g_autoptr(GBytes) answer = hark_stun_answer(input, address, &error);
    if (answer == NULL) {
      if (error == NULL || error->domain != HARK_STUN_ERROR)
        abort();
      g_clear_error(&error);
      continue;
    }
    check_answer(input, answer);
  }
  return 0;
}
