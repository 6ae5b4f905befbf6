/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-conference-signal.c: libFuzzer target for conference signals
 * (core/conference/conference-signal.c): the input is the serialised a{sv} body of a
 * messenger signal of kind "conference", which a hostile peer writes as it likes. It must
 * be refused, or parse into a signal within its limits that builds again, in normal form,
 * to a body that parses to the same signal (a roster's succession and a facts signal's
 * facts included). Seeds (one per type):
 * make-conference-signal-seeds.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conference-signal.h"
#include "fuzz-common.h"
#include "hark/presence.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
check_limits(const HarkConferenceSignal *s)
{
  if (s->type >= HARK_CONFERENCE_SIGNAL_N_TYPES)
    abort();
  if ((s->type == HARK_CONFERENCE_SIGNAL_ROSTER || s->type == HARK_CONFERENCE_SIGNAL_END) &&
      s->version == 0)
    abort();
  if (s->type == HARK_CONFERENCE_SIGNAL_ROSTER && (s->roster == NULL || !s->has_call))
    abort();
  if (s->roster != NULL && (s->roster->len == 0 || s->roster->len > HARK_CONFERENCE_MAX_ROSTER))
    abort();
  for (guint i = 0; s->roster != NULL && i < s->roster->len; i++)
    if (!hark_presence_name_is_valid(g_array_index(s->roster, HarkConferenceMember, i).user))
      abort();
  if (s->reason != NULL && strlen(s->reason) > HARK_CONFERENCE_MAX_REASON)
    abort();
  /* The succession: only in a roster, each a member of it other than the host, once. */
  if (s->succession != NULL && (s->type != HARK_CONFERENCE_SIGNAL_ROSTER || s->roster == NULL ||
                                s->succession->len >= HARK_CONFERENCE_MAX_ROSTER))
    abort();
  for (guint i = 0; s->succession != NULL && i < s->succession->len; i++) {
    const HarkConferenceSuccessor *m = &g_array_index(s->succession, HarkConferenceSuccessor, i);
    gboolean member = FALSE;
    for (guint k = 0; k < s->roster->len; k++) {
      const HarkConferenceMember *r = &g_array_index(s->roster, HarkConferenceMember, k);
      member = member || (strcmp(r->user, m->user) == 0 && strcmp(r->state, "host") != 0);
    }
    if (!member || strlen(m->device) != HARK_CONFERENCE_DEVICE_HEX)
      abort();
  }
  /* Facts: in a facts signal only, always, within their limits. */
  if (s->has_facts != (s->type == HARK_CONFERENCE_SIGNAL_FACTS))
    abort();
  if (s->has_facts && (s->nat >= HARK_CONFERENCE_NAT_N || s->cores == 0 ||
                       s->cores > HARK_CONFERENCE_MAX_CORES || s->load > HARK_CONFERENCE_MAX_LOAD ||
                       s->rtt_ms > HARK_CONFERENCE_MAX_RTT_MS))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  FUZZ_SIGNAL_ROUND_TRIP(HarkConferenceSignal, hark_conference_signal_parse, hark_conference_signal_build, hark_conference_signal_equal,
                         hark_conference_signal_type_name, check_limits, data, size);
  return 0;
}
