/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* natprobe.h: the interface of a nat-probe plugin (kind HARK_KIND_NAT_PROBE).
 *
 * A nat probe finds out how this node is seen from the Internet: its mapped (reflexive)
 * address, whether it is behind a NAT or a firewall that blocks UDP, and the NAT's
 * mapping and filtering behaviour in RFC 4787 / RFC 5780 terms. The core runs the
 * highest-ranked probe at start (when its stored result is old), every
 * network.nat_probe_interval, when the local addresses change and on the `nat probe`
 * command; it stores the result (nat.json) and uses it to decide whether the node may
 * serve as a super node and whether a join tries UDP. The servers it hands over are
 * super nodes (host:port of their overlay UDP port, which serves STUN).
 *
 * The core calls every function on the node's main loop; the probe runs there too. */
#pragma once

#include "hark/export.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "hark/context.h"

G_BEGIN_DECLS

#define HARK_NAT_PROBE_INTERFACE_VERSION 1

typedef enum {
  HARK_NAT_VERDICT_UNKNOWN, /* answers came, but not enough to say (no RFC 5780) */
  HARK_NAT_VERDICT_OPEN, /* no NAT: the mapped address is one of this host's */
  HARK_NAT_VERDICT_NAT, /* behind a NAT: see mapping and filtering */
  HARK_NAT_VERDICT_UDP_BLOCKED, /* no server answered over UDP */
} HarkNatVerdict;

typedef enum {
  HARK_NAT_BEHAVIOUR_UNKNOWN,
  HARK_NAT_BEHAVIOUR_ENDPOINT_INDEPENDENT,
  HARK_NAT_BEHAVIOUR_ADDRESS_DEPENDENT,
  HARK_NAT_BEHAVIOUR_ADDRESS_AND_PORT_DEPENDENT,
} HarkNatBehaviour;

typedef struct {
  HarkNatVerdict verdict;
  HarkNatBehaviour mapping; /* UNKNOWN for OPEN (there is no mapping) and UDP_BLOCKED */
  HarkNatBehaviour filtering;
  char *mapped; /* "ip:port" as the server saw us, or NULL */
  char *server; /* "host:port" of the server the tests ran against, or NULL */
  char *other; /* its RFC 5780 OTHER-ADDRESS "ip:port", or NULL */
  gint64 duration_ms; /* how long the probe took */
} HarkNatResult;

/* "unknown", "open", "nat", "udp-blocked"; and back (FALSE for anything else). */
HARK_API const char *hark_nat_verdict_to_string(HarkNatVerdict verdict);
HARK_API gboolean hark_nat_verdict_from_string(const char *text, HarkNatVerdict *verdict);
/* "unknown", "endpoint-independent", "address-dependent", "address-and-port-dependent". */
HARK_API const char *hark_nat_behaviour_to_string(HarkNatBehaviour behaviour);
HARK_API gboolean hark_nat_behaviour_from_string(const char *text, HarkNatBehaviour *behaviour);
/* Results are allocated with g_new0 and their strings with g_strdup. */
HARK_API void hark_nat_result_free(HarkNatResult *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkNatResult, hark_nat_result_free)

/* done: exactly once, with a result (the callee gives it, the core frees it) or an error
 * (borrowed), never after cancel. UDP blocked is a result, not an error; an error means
 * the probe could not run (no socket, no server it could use). */
typedef void (*HarkNatProbeDone)(HarkNatResult *result, const GError *error, gpointer user_data);

typedef struct {
  guint32 version; /* HARK_NAT_PROBE_INTERFACE_VERSION; new members go at the end */

  /* Probe against servers: "host:port" strings (IP addresses), best first,
   * NULL-terminated (borrowed: copy what is kept). */
  void (*probe)(gpointer instance, const char *const *servers, GCancellable *cancellable,
                HarkNatProbeDone done, gpointer user_data);
  /* Counters for `nat`: at least what was dropped and why. A new object. */
  JsonObject *(*stats)(gpointer instance);
} HarkNatProbeInterface;

G_END_DECLS
