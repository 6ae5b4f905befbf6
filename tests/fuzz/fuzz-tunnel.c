/* fuzz-tunnel.c: libFuzzer target for what the login tunnel (core/overlay/overlay-tunnel.c)
 * reads from others, calling the functions it calls (overlay-tunnel-parse.c):
 *
 *   'S' SIZE BYTES     the SOCKS5 greeting and CONNECT request any local process may send
 *                      to the node's loopback endpoint: BYTES arrive SIZE at a time (0:
 *                      as much as fits), each read followed by hark_overlay_socks_step,
 *                      until it answers or the bytes run out;
 *   'O' URL\nHOST\nPORT  an SN's check of a TUNNEL_OPEN's destination
 *                      (hark_overlay_tunnel_allowed) against its own login.url;
 *   'C' TEXT           a peer's text as the tunnel logs it (a TUNNEL_CLOSE's reason, a
 *                      SOCKS host): hark_text_escape (core/base/address.c) must make
 *                      clean text of it.
 *
 * The TUNNEL_* bodies themselves are decoded by hark_wire_decode (the `wire` target)
 * before the tunnel sees them. */
#include <stdlib.h>
#include <string.h>

#include <hark/address.h>

#include "../../core/overlay/overlay-tunnel-parse.h"
#include "fuzz-common.h"

#define LOG_TEXT_MAX 120 /* OVERLAY_LOG_TEXT_MAX */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
check_shown(const char *text, gssize length)
{
  g_autofree char *shown = hark_text_escape(text, length, LOG_TEXT_MAX);
  /* Every input character becomes at most 10 bytes ("\u{NNNNN}"), then "...". */
  if (!hark_text_is_clean(shown) || strlen(shown) > LOG_TEXT_MAX * 10 + 3)
    abort();
}

static void
fuzz_socks(const uint8_t *data, size_t size)
{
  if (size < 1)
    return;
  gsize chunk = data[0] != 0 ? data[0] : HARK_SOCKS_MAX_REQUEST;
  const uint8_t *p = data + 1, *end = data + size;
  HarkSocksState state = { 0 };
  while (p < end) {
    if (state.have >= sizeof state.request)
      abort(); /* the endpoint would read into no room */
    gsize n = MIN(MIN(chunk, sizeof state.request - state.have), (gsize)(end - p));
    memcpy(state.request + state.have, p, n);
    state.have += n;
    p += n;
    char *host = NULL;
    guint16 port = 0;
    HarkSocksStep step = hark_overlay_socks_step(&state, &host, &port);
    if ((step == HARK_SOCKS_CONNECT) != (host != NULL) || state.have > sizeof state.request)
      abort();
    if (step == HARK_SOCKS_MORE)
      continue;
    fuzz_say(step == HARK_SOCKS_CONNECT ? "connect" : "refused", host);
    if (host != NULL)
      check_shown(host, -1);
    g_free(host);
    return;
  }
  fuzz_say("incomplete", NULL);
}

static void
fuzz_open(const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup((const char *)data, size);
  g_auto(GStrv) lines = g_strsplit(text, "\n", 3);
  if (g_strv_length(lines) != 3)
    return;
  guint64 port = g_ascii_strtoull(lines[2], NULL, 10);
  if (port > G_MAXUINT16)
    return;
  gboolean allowed = hark_overlay_tunnel_allowed(lines[0], lines[1], (guint16)port);
  fuzz_say(allowed ? "tunnel allowed" : "tunnel refused", lines[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  switch (data[0]) {
  case 'S':
    fuzz_socks(data + 1, size - 1);
    break;
  case 'O':
    fuzz_open(data + 1, size - 1);
    break;
  case 'C':
    check_shown((const char *)data + 1, (gssize)size - 1);
    break;
  default:
    break;
  }
  return 0;
}
