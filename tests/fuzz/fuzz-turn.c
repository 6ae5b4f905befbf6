/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-turn.c: libFuzzer target for what a client takes from its super node when it asks
 * for TURN credentials (core/overlay/overlay-turn.c): the input is a whole wire message,
 * decoded as the link does (hark_wire_decode); a TURN_CREDENTIALS body then goes through
 * hark_overlay_turn_parse (overlay-turn-parse.c), with loopback refused and allowed, at a
 * fixed time (2026-01-01, FUZZ_NOW). What it takes must be what the client may use: a
 * usable address, a port, clean strings within HARK_TURN_TEXT_MAX, an expiry after now
 * and within HARK_TURN_LIFETIME_MAX; and it must survive its own encoding unchanged.
 *
 * An input starting with 'M' instead tests the SN's side: the rest is "SECRET\nUSER",
 * minted into credentials (hark_overlay_turn_make) that the client's check must take
 * whenever the user is clean text.
 *
 * Seeds: make-turn-seeds.py (by hand; its output is committed in corpus/turn/). */
#include <stdlib.h>
#include <string.h>

#include <hark/address.h>
#include <hark/wire.h>

#include "../../core/overlay/overlay-turn-parse.h"
#include "fuzz-common.h"

#define FUZZ_NOW G_GINT64_CONSTANT(1767225600)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
check_taken(const HarkTurnCredentials *c, gboolean allow_loopback)
{
  if (hark_address_refusal(c->host, allow_loopback) != NULL || c->port == 0 ||
      strlen(c->username) == 0 || strlen(c->username) > HARK_TURN_TEXT_MAX ||
      strlen(c->password) == 0 || strlen(c->password) > HARK_TURN_TEXT_MAX ||
      !hark_text_is_clean(c->username) || !hark_text_is_clean(c->password) ||
      c->expires_at <= FUZZ_NOW || c->expires_at - FUZZ_NOW > HARK_TURN_LIFETIME_MAX)
    abort();
  g_autoptr(GVariant) again = g_variant_ref_sink(hark_overlay_turn_to_variant(c));
  g_autoptr(HarkTurnCredentials) back =
    hark_overlay_turn_parse(again, FUZZ_NOW, allow_loopback, NULL);
  if (back == NULL || g_strcmp0(back->host, c->host) != 0 || back->port != c->port ||
      g_strcmp0(back->username, c->username) != 0 || g_strcmp0(back->password, c->password) != 0 ||
      back->expires_at != c->expires_at || back->tcp != c->tcp)
    abort();
}

static void
fuzz_answer(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkWireMessage) message = hark_wire_decode(bytes, &error);
  if (message == NULL || message->type != HARK_MSG_TURN_CREDENTIALS) {
    fuzz_say("not credentials", error != NULL ? error->message : NULL);
    return;
  }
  for (int allow_loopback = 0; allow_loopback <= 1; allow_loopback++) {
    g_autoptr(GError) refused = NULL;
    g_autoptr(HarkTurnCredentials) taken =
      hark_overlay_turn_parse(message->body, FUZZ_NOW, allow_loopback, &refused);
    if ((taken == NULL) == (refused == NULL))
      abort(); /* exactly one of the two */
    if (taken != NULL)
      check_taken(taken, allow_loopback);
    else if (!g_utf8_validate(refused->message, -1, NULL))
      abort(); /* the refusal goes to a log line */
    fuzz_say(taken != NULL ? "taken" : "refused", refused != NULL ? refused->message : NULL);
  }
}

static void
fuzz_mint(const uint8_t *data, size_t size)
{
  const uint8_t *newline = memchr(data, '\n', size);
  if (newline == NULL)
    return;
  g_autoptr(GBytes) secret = g_bytes_new(data, (gsize)(newline - data));
  g_autofree char *user = g_strndup((const char *)newline + 1, size - (gsize)(newline - data) - 1);
  if (!g_utf8_validate(user, -1, NULL))
    return;
  g_autoptr(HarkTurnCredentials) minted =
    hark_overlay_turn_make("192.0.2.7", 3478, TRUE, secret, user, FUZZ_NOW + 86400);
  g_autoptr(GVariant) body = g_variant_ref_sink(hark_overlay_turn_to_variant(minted));
  g_autoptr(HarkTurnCredentials) taken = hark_overlay_turn_parse(body, FUZZ_NOW, FALSE, NULL);
  /* "EXPIRY:" with an empty user is still a username coturn takes. */
  gboolean clean = hark_text_is_clean(user) && strlen(minted->username) <= HARK_TURN_TEXT_MAX;
  if (clean != (taken != NULL))
    abort();
  fuzz_say(taken != NULL ? "minted and taken" : "minted, refused", NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size >= 1 && data[0] == 'M')
    fuzz_mint(data + 1, size - 1);
  else
    fuzz_answer(data, size);
  return 0;
}
