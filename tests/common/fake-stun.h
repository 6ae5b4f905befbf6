/* fake-stun.h: an RFC 5389 / RFC 5780 STUN server in the test's process that pretends
 * to stand behind a NAT of the test's choosing, so that NAT classification is tested
 * without root, namespaces or a second process (docs/testing.md, "Fakes").
 *
 * It binds four UDP sockets: 127.0.0.2 and 127.0.0.3, each on the same two ports P1 and
 * P2. Every binding request is answered with XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN and
 * OTHER-ADDRESS (the diagonally opposite socket), from the socket its CHANGE-REQUEST asks
 * for. Between the client and those answers sits a modelled NAT (HarkFakeNat): the
 * mapped address it reports depends on which server address and port was asked (the
 * mapping behaviour), and answers the NAT's filter would not let in are dropped (the
 * filtering behaviour): the filter lets in what comes from an address (address-dependent)
 * or an address and port (address-and-port-dependent) this client has sent to. A test
 * that wants something else installs hooks that choose the mapped address and the drops
 * per answer.
 *
 * The sockets are read on the thread-default main context of the caller of
 * hark_fake_stun_new(). */
#pragma once

#include <gio/gio.h>
#include <hark/natprobe.h>

G_BEGIN_DECLS

typedef struct _HarkFakeStun HarkFakeStun;

/* The NAT in front of the server's clients. */
typedef struct {
  gboolean blocked; /* UDP blocked: no request gets an answer */
  gboolean nat; /* FALSE: no NAT (the client's own address is reported) */
  HarkNatBehaviour mapping; /* with nat: ENDPOINT_INDEPENDENT, ADDRESS_DEPENDENT, ... */
  HarkNatBehaviour filtering;
} HarkFakeNat;

/* Where the NAT's mappings appear: TEST-NET-1, never an address of this host. */
#define HARK_FAKE_STUN_PUBLIC_IP "192.0.2.1"

/* Hooks for behaviour the model does not cover. client: where the request came from;
 * asked: the server address it was sent to; from: the server address the answer would
 * leave from (after CHANGE-REQUEST). map returns the address to report (a new
 * reference), or NULL for the model's; answer returns FALSE to drop the answer. */
typedef struct {
  GInetSocketAddress *(*map)(GInetSocketAddress *client, GInetSocketAddress *asked, gpointer data);
  gboolean (*answer)(GInetSocketAddress *client, GInetSocketAddress *asked,
                     GInetSocketAddress *from, guint change, gpointer data);
  gpointer data;
} HarkFakeStunHooks;

typedef struct {
  guint requests; /* binding requests read */
  guint answers; /* answers sent */
  guint dropped; /* answers the NAT model or the answer hook dropped */
  guint malformed; /* datagrams that were no binding request */
} HarkFakeStunCounters;

/* Starts the server with no NAT in front (every request answered, the source reported). */
HarkFakeStun *hark_fake_stun_new(GError **error);
void hark_fake_stun_free(HarkFakeStun *stun);

/* Changes the NAT; forgets the mappings and filter state of the previous one. */
void hark_fake_stun_set_nat(HarkFakeStun *stun, const HarkFakeNat *nat);
/* hooks: NULL removes them. */
void hark_fake_stun_set_hooks(HarkFakeStun *stun, const HarkFakeStunHooks *hooks);

/* "127.0.0.2:P1", the server a probe is pointed at (a new string). */
char *hark_fake_stun_primary(HarkFakeStun *stun);
/* One of the four addresses (borrowed): alternate_ip picks 127.0.0.3, alternate_port P2. */
GInetSocketAddress *hark_fake_stun_address(HarkFakeStun *stun, gboolean alternate_ip,
                                           gboolean alternate_port);
const HarkFakeStunCounters *hark_fake_stun_counters(HarkFakeStun *stun);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkFakeStun, hark_fake_stun_free)

G_END_DECLS
