/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-envelope.h: message envelopes in shape (docs/protocol.md, "Messages"), for tests of
 * what holds or carries them without opening them (the login server, the fuzz seeds). */
#pragma once

#include <glib.h>

/* A signed envelope (ayay) in normal form: a payload (ayssaysttxaya(sayay)) with a random
 * id, sealed by the device sender_device (64 hex), for the devices in recipients
 * (NULL-terminated device ids), with a body of body_size zero bytes; zero keys and a
 * zero signature (nothing here is meant to open or verify). */
GBytes *hark_test_envelope_new(const char *sender_device, const char *const *recipients,
                               gsize body_size);
