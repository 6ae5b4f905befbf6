/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-call-signal-seeds.c: writes fuzz-call-signal's seeds, one body of each signal type
 * with every field it carries, into the directory given; each is parsed first, so only
 * signals the parser takes become seeds:
 *   ninja -C build tests/fuzz/make-call-signal-seeds
 *   build/tests/fuzz/make-call-signal-seeds tests/fuzz/corpus/call-signal */
#include "call-signal.h"

#define HEAD "'id': <[byte 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]>, 'seq': <uint32 3>, "
#define BYTES32(b) "<[byte " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " \
  b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " b ", " \
  b ", " b ", " b ", " b ", " b ", " b ", " b ", " b "]>"
#define ICE "'ufrag': <'ufRg'>, 'pwd': <'asd88fgpdd777uzjYhagZg+/'>, " \
  "'candidates': <['1 1 UDP 2013266431 192.0.2.1 40000 typ host', " \
  "'2 1 UDP 1677722111 198.51.100.7 50000 typ srflx raddr 192.0.2.1 rport 40000']>, 'eoc': <true>"

static const char *const seeds[HARK_CALL_SIGNAL_N_TYPES] = {
  [HARK_CALL_SIGNAL_INVITE] = "{'t': <'invite'>, " HEAD "'nonce': " BYTES32("0xa1") ", 'share': "
    BYTES32("0x5c") ", 'codecs': <[('opus', byte 111), ('g722', byte 9), ('pcmu', byte 0)]>, "
    "'dtmf-pt': <byte 101>, " ICE "}",
  [HARK_CALL_SIGNAL_RINGING] = "{'t': <'ringing'>, " HEAD "'device-name': <'laptop'>}",
  [HARK_CALL_SIGNAL_ANSWER] = "{'t': <'answer'>, " HEAD "'nonce': " BYTES32("0xb2") ", 'peer-nonce': "
    BYTES32("0xa1") ", 'share': " BYTES32("0x6d") ", 'codecs': <[('opus', byte 111)]>, "
    "'dtmf-pt': <byte 101>, 'device-name': <'Bob’s phone'>, " ICE "}",
  [HARK_CALL_SIGNAL_ACK] = "{'t': <'ack'>, " HEAD "'peer-nonce': " BYTES32("0xb2") "}",
  [HARK_CALL_SIGNAL_DECLINE] = "{'t': <'decline'>, " HEAD "'reason': <'declined'>}",
  [HARK_CALL_SIGNAL_BUSY] = "{'t': <'busy'>, " HEAD "'reason': <'busy'>}",
  [HARK_CALL_SIGNAL_CANCEL] = "{'t': <'cancel'>, " HEAD "'reason': <'answered elsewhere'>}",
  [HARK_CALL_SIGNAL_HANGUP] = "{'t': <'hangup'>, " HEAD "'reason': <'bye'>}",
  [HARK_CALL_SIGNAL_HOLD] = "{'t': <'hold'>, " HEAD "'hold': <true>}",
  [HARK_CALL_SIGNAL_UPDATE] = "{'t': <'update'>, " HEAD "'nonce': " BYTES32("0xc3")
    ", 'codecs': <[('pcma', byte 8)]>, 'path': <'relay'>, " ICE "}",
  [HARK_CALL_SIGNAL_UPDATE_OK] = "{'t': <'update-ok'>, " HEAD "'peer-nonce': " BYTES32("0xc3")
    ", 'codecs': <[('pcma', byte 8)]>}",
  [HARK_CALL_SIGNAL_CANDIDATES] = "{'t': <'candidates'>, " HEAD
    "'candidates': <['3 1 TCP 8323327 203.0.113.5 3478 typ relay raddr 0.0.0.0 rport 0']>, "
    "'eoc': <true>}",
  [HARK_CALL_SIGNAL_FAIL] = "{'t': <'fail'>, " HEAD "'reason': <'no common codec'>}",
};

int
main(int argc, char **argv)
{
  if (argc != 2)
    g_error("usage: make-call-signal-seeds DIR");
  for (guint t = 0; t < HARK_CALL_SIGNAL_N_TYPES; t++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) parsed = g_variant_ref_sink(
      g_variant_parse(G_VARIANT_TYPE_VARDICT, seeds[t], NULL, NULL, &error));
    if (parsed == NULL)
      g_error("%s: %s", hark_call_signal_type_name(t), error->message);
    g_autoptr(GVariant) body = g_variant_get_normal_form(parsed);
    g_autoptr(HarkCallSignal) signal = hark_call_signal_parse(body, &error);
    if (signal == NULL || signal->type != t)
      g_error("%s: %s", hark_call_signal_type_name(t), error != NULL ? error->message : "other type");
    g_autofree char *path = g_build_filename(argv[1], hark_call_signal_type_name(t), NULL);
    if (!g_file_set_contents(path, g_variant_get_data(body), (gssize)g_variant_get_size(body),
                             &error))
      g_error("%s", error->message);
  }
  return 0;
}
