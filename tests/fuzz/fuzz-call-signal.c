/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-call-signal.c: libFuzzer target for call signals (core/call/call-signal.c): the
 * input is the serialised a{sv} body of a messenger signal of kind "call", which a hostile
 * peer writes as it likes (the envelope's signature says only who sent it). It must be
 * refused, or parse into a signal within its limits that builds again, in normal form, to
 * a body that parses to the same signal. Seeds (one per type): make-call-signal-seeds.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "call-signal.h"
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
check_limits(const HarkCallSignal *s)
{
  if (s->type >= HARK_CALL_SIGNAL_N_TYPES || s->seq == 0)
    abort();
  if (s->codecs != NULL && (s->codecs->len == 0 || s->codecs->len > HARK_CALL_MAX_CODECS))
    abort();
  if (s->candidates != NULL &&
      (s->candidates->len == 0 || s->candidates->len > HARK_CALL_MAX_CANDIDATES))
    abort();
  for (guint i = 0; s->candidates != NULL && i < s->candidates->len; i++) {
    const char *line = s->candidates->pdata[i];
    for (const char *c = line; *c != '\0'; c++)
      if (*c < ' ' || *c > '~')
        abort();
    if (strlen(line) > HARK_CALL_MAX_CANDIDATE)
      abort();
  }
  if ((s->ice_ufrag == NULL) != (s->ice_pwd == NULL))
    abort();
  if ((s->reason != NULL && strlen(s->reason) > HARK_CALL_MAX_REASON) ||
      (s->device_name != NULL && strlen(s->device_name) > HARK_CALL_MAX_DEVICE_NAME))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  FUZZ_SIGNAL_ROUND_TRIP(HarkCallSignal, hark_call_signal_parse, hark_call_signal_build, hark_call_signal_equal,
                         hark_call_signal_type_name, check_limits, data, size);
  return 0;
}
