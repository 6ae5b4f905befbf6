/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fake-envelope.h: a test double of the message envelope for the router's tests
 * (core/message/message-route.h, HarkMessageEnvelopeCheck). NOT the real format and no
 * cryptography: a fake envelope is the normal-form GVariant (ssasbay) = sender user,
 * sender device id, recipient device ids, "signature good", padding; verify() believes
 * the flag. The real check (message-envelope.c) parses the signed (ayay) envelope of
 * docs/protocol.md, "Messages", and verifies its certificate against the CA and its
 * Ed25519 signature; what the router does with either is the same, which is what these
 * tests are about. */
#pragma once

#include "message-route.h"

/* recipients: NULL-terminated. padding: bytes of zeros, to make it as large as a test
 * needs. */
GBytes *hark_fake_envelope_new(const char *sender, const char *sender_device,
                               const char *const *recipients, gboolean signature_good,
                               gsize padding);

/* check_data: unused (NULL). */
extern const HarkMessageEnvelopeCheck hark_fake_envelope_check;
