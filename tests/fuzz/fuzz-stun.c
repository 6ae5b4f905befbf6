/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-stun.c: libFuzzer target for the STUN code, which reads datagrams from anyone:
 * the binding server (with and without RFC 5780) and the client's response reader.
 * Besides crashes and leaks it checks that the demultiplexer and the parser agree, that
 * every answer the server builds is itself a valid STUN message of the request's
 * transaction that the client side reads back, and that the client accepts only what the
 * strict parser accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stun.h"
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
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
  g_autoptr(HarkStunBindingResponse) r = hark_stun_read_binding_response(answer, &error);
  if (r == NULL || (r->error_code == 0) != (r->mapped != NULL))
    abort();
}

/* The client side: what it accepts must parse, and a success must carry its address. */
static void
check_response_reader(GBytes *input, const HarkStunMessage *parsed)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkStunBindingResponse) r = hark_stun_read_binding_response(input, &error);
  if (r == NULL ? error == NULL || error->domain != HARK_STUN_ERROR
                : parsed == NULL || (r->error_code == 0 && r->mapped == NULL) ||
                    (r->error_code != 0 && (r->error_code < 300 || r->error_code > 699)))
    abort();
}

/* RFC 5780: a request read with CHANGE-REQUEST served, answered with both addresses. */
static void
check_rfc5780(GBytes *input)
{
  HarkStunRequest request;
  g_autoptr(GError) error = NULL;
  if (!hark_stun_read_request(input, TRUE, &request, &error)) {
    if (error == NULL || error->domain != HARK_STUN_ERROR)
      abort();
    return;
  }
  if ((request.change & ~(guint)(HARK_STUN_CHANGE_IP | HARK_STUN_CHANGE_PORT)) != 0 ||
      request.n_unknown > HARK_STUN_MAX_UNKNOWN)
    abort();
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new_from_string("192.0.2.1", 4242);
  g_autoptr(GSocketAddress) origin = g_inet_socket_address_new_from_string("198.18.0.20", 1);
  g_autoptr(GSocketAddress) other = g_inet_socket_address_new_from_string("198.18.0.21", 2);
  g_autoptr(GBytes) answer = hark_stun_answer_request(&request, to, origin, other, &error);
  if (answer == NULL)
    abort();
  check_answer(input, answer);
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
  check_response_reader(input, parsed);
  check_rfc5780(input);

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
