/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* natprobe.c: the small shared part of hark/natprobe.h: names of verdicts and
 * behaviours (as stored in nat.json and shown by `nat`) and freeing a result. */
#include "hark/natprobe.h"

static const char *const verdicts[] = { "unknown", "open", "nat", "udp-blocked" };
static const char *const behaviours[] = { "unknown", "endpoint-independent", "address-dependent",
                                          "address-and-port-dependent" };

static gboolean
index_of(const char *const *names, guint n, const char *text, guint *out)
{
  for (guint i = 0; text != NULL && i < n; i++)
    if (g_str_equal(names[i], text)) {
      *out = i;
      return TRUE;
    }
  return FALSE;
}

const char *
hark_nat_verdict_to_string(HarkNatVerdict verdict)
{
  return (guint)verdict < G_N_ELEMENTS(verdicts) ? verdicts[verdict] : "unknown";
}

gboolean
hark_nat_verdict_from_string(const char *text, HarkNatVerdict *verdict)
{
  guint i;
  if (!index_of(verdicts, G_N_ELEMENTS(verdicts), text, &i))
    return FALSE;
  *verdict = (HarkNatVerdict)i;
  return TRUE;
}

const char *
hark_nat_behaviour_to_string(HarkNatBehaviour behaviour)
{
  return (guint)behaviour < G_N_ELEMENTS(behaviours) ? behaviours[behaviour] : "unknown";
}

gboolean
hark_nat_behaviour_from_string(const char *text, HarkNatBehaviour *behaviour)
{
  guint i;
  if (!index_of(behaviours, G_N_ELEMENTS(behaviours), text, &i))
    return FALSE;
  *behaviour = (HarkNatBehaviour)i;
  return TRUE;
}

void
hark_nat_result_free(HarkNatResult *result)
{
  if (result == NULL)
    return;
  g_free(result->mapped);
  g_free(result->server);
  g_free(result->other);
  g_free(result);
}
