/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-host.c: who hosts a conference next. Each member tells the host its own
 * facts (a FACTS signal: its NAT verdict, its conference.host, its processors and load,
 * its RTT to the host); the host ranks the connected members by them and names the order
 * in every ROSTER it signs ("succession"), so that every member knows who takes over
 * when the host goes (conference-handover.c). The order is a plain sort on a few coarse
 * keys, so that the same facts give the same list on every host (docs/protocol.md,
 * "Conferences: the host and its succession"):
 *   1. a member that opted out (conference.host = false) is never named;
 *   2. a member whose facts came before one whose did not;
 *   3. the NAT verdict: open, cone, unknown, symmetric, UDP blocked (a host behind a
 *      symmetric NAT or a UDP-blocking firewall reaches everyone through relays);
 *   4. the idle processors, in whole cores (processors less the load average), more
 *      first, counted up to 8;
 *   5. the RTT to the host in steps of 50 ms, less first (the host's leg's RTCP, else
 *      what the member measured; unknown counts as 100-149 ms);
 *   6. the user name. */
#include "conference-private.h"

#include "hark/natprobe.h"

#include <string.h>

#define HOST_MAX_IDLE_CORES 8
#define HOST_RTT_STEP_MS 50
#define HOST_RTT_UNKNOWN_MS 100

/* ---- this node's facts ------------------------------------------------------------------ */

static HarkConferenceNat
own_nat(HarkConferences *conferences)
{
  HarkOverlay *overlay = hark_calls_overlay(conferences->calls);
  if (overlay == NULL)
    return HARK_CONFERENCE_NAT_UNKNOWN;
  HarkNatBehaviour mapping = HARK_NAT_BEHAVIOUR_UNKNOWN, filtering = HARK_NAT_BEHAVIOUR_UNKNOWN;
  switch (hark_overlay_nat_verdict(overlay)) {
  case HARK_NAT_VERDICT_OPEN:
    return HARK_CONFERENCE_NAT_OPEN;
  case HARK_NAT_VERDICT_UDP_BLOCKED:
    return HARK_CONFERENCE_NAT_UDP_BLOCKED;
  case HARK_NAT_VERDICT_NAT:
    if (!hark_overlay_nat_behaviours(overlay, &mapping, &filtering) ||
        mapping == HARK_NAT_BEHAVIOUR_UNKNOWN)
      return HARK_CONFERENCE_NAT_UNKNOWN;
    return mapping == HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT ? HARK_CONFERENCE_NAT_CONE
                                                             : HARK_CONFERENCE_NAT_SYMMETRIC;
  case HARK_NAT_VERDICT_UNKNOWN:
  default:
    return HARK_CONFERENCE_NAT_UNKNOWN;
  }
}

/* The 1-minute load average in hundredths, from /proc/loadavg; 0 when it cannot be read. */
static guint32
own_load(void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
    return 0;
  double load = g_ascii_strtod(text, NULL);
  return (guint32)CLAMP(load * 100.0, 0.0, (double)HARK_CONFERENCE_MAX_LOAD);
}

/* The RTT our leg measured (RTCP), 0 when not known yet. */
static guint32
leg_rtt_ms(HarkConferences *conferences, const char *call_id)
{
  g_autoptr(JsonObject) stats =
    call_id != NULL ? hark_calls_stats(conferences->calls, call_id) : NULL;
  double rtt = stats != NULL ? json_object_get_double_member_with_default(stats, "rtt_ms", -1) : -1;
  return rtt > 0 ? (guint32)MIN(rtt + 0.5, (double)HARK_CONFERENCE_MAX_RTT_MS) : 0;
}

HarkConferenceSignal *
hark_conference_facts_own(HarkConferences *conferences, const guint8 *id, const char *leg_call_id)
{
  HarkConferenceSignal *s = hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_FACTS, id);
  s->has_facts = TRUE;
  s->nat = own_nat(conferences);
  s->may_host = conferences->may_host;
  s->cores = CLAMP(g_get_num_processors(), 1, HARK_CONFERENCE_MAX_CORES);
  s->load = own_load();
  s->rtt_ms = leg_rtt_ms(conferences, leg_call_id);
  return s;
}

/* ---- at the host -------------------------------------------------------------------------- */

static ConferenceMember *
connected_member(ConferenceHosted *h, const char *user, const char *device)
{
  for (guint i = 0; i < h->members->len; i++) {
    ConferenceMember *m = h->members->pdata[i];
    if (strcmp(m->user, user) == 0 && g_strcmp0(m->state, "connected") == 0 &&
        g_strcmp0(m->device, device) == 0)
      return m;
  }
  return NULL;
}

typedef struct {
  guint no_facts; /* 0: its facts came */
  guint nat; /* HarkConferenceNat */
  guint idle_cores; /* more first */
  guint rtt_step; /* less first */
} Keys;

static Keys
keys_of(const ConferenceCandidate *c)
{
  const HarkConferenceSignal *facts = c->facts;
  guint32 rtt = c->rtt_ms != 0 ? c->rtt_ms : facts != NULL ? facts->rtt_ms : 0;
  if (rtt == 0)
    rtt = HOST_RTT_UNKNOWN_MS;
  guint idle = 0;
  if (facts != NULL && facts->cores * 100 > facts->load)
    idle = MIN((facts->cores * 100 - facts->load) / 100, HOST_MAX_IDLE_CORES);
  return (Keys){
    .no_facts = facts == NULL,
    .nat = facts != NULL ? facts->nat : HARK_CONFERENCE_NAT_UNKNOWN,
    .idle_cores = idle,
    .rtt_step = rtt / HOST_RTT_STEP_MS,
  };
}

static gint
candidate_compare(gconstpointer pa, gconstpointer pb)
{
  const ConferenceCandidate *ca = pa, *cb = pb;
  Keys a = keys_of(ca), b = keys_of(cb);
  if (a.no_facts != b.no_facts)
    return a.no_facts < b.no_facts ? -1 : 1;
  if (a.nat != b.nat)
    return a.nat < b.nat ? -1 : 1;
  if (a.idle_cores != b.idle_cores)
    return a.idle_cores > b.idle_cores ? -1 : 1;
  if (a.rtt_step != b.rtt_step)
    return a.rtt_step < b.rtt_step ? -1 : 1;
  return strcmp(ca->user, cb->user);
}

void
hark_conference_succession_order(GArray *candidates)
{
  for (guint i = candidates->len; i-- > 0;) {
    const HarkConferenceSignal *facts = g_array_index(candidates, ConferenceCandidate, i).facts;
    if (facts != NULL && !facts->may_host)
      g_array_remove_index(candidates, i);
  }
  g_array_sort(candidates, candidate_compare);
}

/* The ranking itself: the connected members, best first, into ranked. */
static void
succession_rank(HarkConferences *conferences, HarkConferenceSignal *ranked)
{
  ConferenceHosted *h = conferences->hosted;
  g_autoptr(GArray) candidates = g_array_new(FALSE, TRUE, sizeof(ConferenceCandidate));
  for (guint i = 0; h != NULL && i < h->members->len; i++) {
    const ConferenceMember *m = h->members->pdata[i];
    if (g_strcmp0(m->state, "connected") != 0 || m->device == NULL)
      continue;
    ConferenceCandidate c = {
      .user = m->user,
      .device = m->device,
      .facts = g_hash_table_lookup(conferences->facts, m->user),
      .rtt_ms = leg_rtt_ms(conferences, m->call_id),
    };
    g_array_append_val(candidates, c);
  }
  hark_conference_succession_order(candidates);
  for (guint i = 0; i < candidates->len; i++) {
    const ConferenceCandidate *c = &g_array_index(candidates, ConferenceCandidate, i);
    hark_conference_signal_add_successor(ranked, c->user, c->device);
  }
}

/* Whether the ranking now differs from the one the last roster carried. */
static gboolean
succession_changed(HarkConferences *conferences)
{
  HarkConferenceSignal *sent = conferences->succession;
  if (sent == NULL || conferences->hosted == NULL)
    return TRUE;
  g_autoptr(HarkConferenceSignal) now =
    hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_ROSTER, sent->id);
  succession_rank(conferences, now);
  return !hark_conference_signal_equal(now, sent);
}

void
hark_conference_facts_take(HarkConferences *conferences, HarkConferenceSignal **taken,
                           const char *id_hex, const char *sender, const char *device)
{
  ConferenceHosted *h = conferences->hosted;
  if (h == NULL || strcmp(h->id_hex, id_hex) != 0 || connected_member(h, sender, device) == NULL) {
    hark_conference_refuse(conferences, &conferences->counters.refused_sender, sender, device,
                           "facts from a device that is no connected member here");
    return;
  }
  conferences->counters.signals++;
  HarkConferenceSignal *s = *taken;
  g_debug("conference: %s: %s's facts: %s, host %s, %u cores, load %u.%02u, RTT %u ms",
          id_hex, sender, hark_conference_nat_name(s->nat), s->may_host ? "yes" : "no",
          s->cores, s->load / 100, s->load % 100, s->rtt_ms);
  g_hash_table_replace(conferences->facts, g_strdup(sender), g_steal_pointer(taken));
  /* Everyone hears the roster again only when the succession is another now: each member's
   * facts arrive soon after it joins, and a roster to every member for each of them would
   * be O(N^2) signals through the host's SN, which forwards 20 a second. */
  if (succession_changed(conferences))
    hark_conference_changed(conferences);
}

void
hark_conference_succession_fill(HarkConferences *conferences, HarkConferenceSignal *roster)
{
  /* Ranked once per roster version (and conference), not once per member it goes to. */
  HarkConferenceSignal *cached = conferences->succession;
  if (cached == NULL || conferences->succession_version != roster->version ||
      memcmp(cached->id, roster->id, sizeof cached->id) != 0) {
    hark_conference_signal_free(cached);
    cached = conferences->succession =
      hark_conference_signal_new(HARK_CONFERENCE_SIGNAL_ROSTER, roster->id);
    conferences->succession_version = roster->version;
    succession_rank(conferences, cached);
  }
  for (guint i = 0; cached->succession != NULL && i < cached->succession->len; i++) {
    const HarkConferenceSuccessor *m = &g_array_index(cached->succession, HarkConferenceSuccessor, i);
    hark_conference_signal_add_successor(roster, m->user, m->device);
  }
}

JsonArray *
hark_conference_succession_json(const HarkConferenceSignal *roster)
{
  JsonArray *a = json_array_new();
  for (guint i = 0; roster != NULL && roster->succession != NULL && i < roster->succession->len;
       i++) {
    const HarkConferenceSuccessor *m = &g_array_index(roster->succession, HarkConferenceSuccessor, i);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "user", m->user);
    json_object_set_string_member(o, "device", m->device);
    json_array_add_object_element(a, o);
  }
  return a;
}
