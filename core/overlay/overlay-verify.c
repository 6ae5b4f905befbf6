/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-verify.c: which peers are super nodes.
 *
 * Anybody with a device certificate (every user who registered has one) can open a link
 * to an SN and JOIN as a peer: "I am the SN at host:port". An SN takes such a peer as
 * another SN (STUN_RELAY, SN_LIST, the RFC 5780 partner) only after it checked the claim
 * itself: a link it opened to host:port showed the same device key in its TLS handshake.
 * That is an SN link it opened there anyway, or else a probe: a link opened for the claim
 * and closed as soon as its handshake is done. A claim whose address shows another key,
 * or that cannot be checked within OVERLAY_SN_VERIFY_MS, is refused (ERROR 403, the link
 * is closed) and counted as sn_claims_refused.
 *
 * Links we open to SNs are verified by how they were made. Two SNs that link to each
 * other at the same moment each probe the other (or use their own link when it is up
 * first); neither waits for the other, so they cannot wait for each other for ever. */
#include "overlay-private.h"
#include "hark/address.h"

#include "link-private.h"
#include "stun.h"

gboolean
hark_overlay_is_verified_sn(Peer *peer)
{
  return peer->kind == PEER_SN && peer->trust == SN_VERIFIED;
}

static const char *
device_of(Peer *peer)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  return cert != NULL ? cert->device_id : NULL;
}

static gboolean
claims(Peer *peer, const char *host, guint16 port)
{
  return peer->kind == PEER_SN && peer->trust == SN_CLAIMED && peer->port == port &&
         g_strcmp0(peer->host, host) == 0;
}

const char *
hark_overlay_verify_device_limit(HarkOverlay *overlay, const HarkDeviceCertificate *cert)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (peer->kind == PEER_SN && !hark_link_is_opener(peer->link) &&
        g_strcmp0(device_of(peer), cert->device_id) == 0)
      n++;
  }
  return n >= OVERLAY_SN_LINKS_PER_DEVICE ? "too many SN links from this device" : NULL;
}

static void
mark_verified(HarkOverlay *overlay, Peer *peer, const char *how)
{
  peer->trust = SN_VERIFIED;
  hark_overlay_clear_source(overlay, &peer->timer);
  /* Only now is it an SN others may hear of from us. */
  hark_host_cache_seen(overlay->cache, peer->host, peer->port,
                       (const char *const *)peer->transports, -1,
                       g_get_real_time() / G_USEC_PER_SEC);
  hark_overlay_save_cache(overlay);
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  g_message("linked with the SN %s (user %s) at %s:%u, verified by %s", peer->name,
            cert != NULL ? cert->user : "?", peer->host, peer->port, how);
  hark_overlay_sn_peer_ready(overlay, peer);
}

static void
refuse_claim(HarkOverlay *overlay, Peer *peer, const char *why)
{
  hark_overlay_clear_source(overlay, &peer->timer);
  hark_overlay_note_drop(overlay, &overlay->counters.sn_claims_refused,
                         "%s (%s:%u) claimed to be the SN at %s:%u: %s",
                         peer->name != NULL ? peer->name : "?", hark_link_get_peer_host(peer->link),
                         hark_link_get_peer_port(peer->link), peer->host, peer->port, why);
  g_autofree char *text =
    g_strdup_printf("not verified as the SN at %s:%u: %s", peer->host, peer->port, why);
  hark_overlay_send_error(peer, peer->request_id, 403, text);
  /* It keeps no rights until the closed handler (an idle callback) drops it. */
  peer->claim = 0;
  hark_link_close(peer->link);
}

static Peer *
find_claim(HarkOverlay *overlay, guint64 claim)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (peer->kind == PEER_SN && peer->trust == SN_CLAIMED && peer->claim == claim)
      return peer;
  }
  return NULL;
}

/* A link we opened to host:port showed cert: that device's claims of that address hold. */
static void
prove_claims(HarkOverlay *overlay, const char *host, guint16 port,
             const HarkDeviceCertificate *cert, const char *how)
{
  GList *peers = g_hash_table_get_values(overlay->peers);
  for (GList *l = peers; l != NULL; l = l->next) {
    Peer *peer = l->data;
    if (claims(peer, host, port) && g_strcmp0(device_of(peer), cert->device_id) == 0)
      mark_verified(overlay, peer, how);
  }
  g_list_free(peers);
}

static gboolean
on_claim_timeout(gpointer data)
{
  Peer *peer = data;
  peer->timer = 0;
  refuse_claim(peer->overlay, peer, "no link of ours there showed its key in time");
  return G_SOURCE_REMOVE;
}

/* Why we will not open a link to host: what no list of SNs may name either. An SN
 * announces an IP address; a name would make the check a DNS look-up an attacker
 * chooses. */
static const char *
probe_refusal(HarkOverlay *overlay, const char *host)
{
  return hark_address_refusal(host, overlay->node->config->allow_loopback);
}

typedef struct {
  HarkOverlay *overlay;
  char *host;
  guint16 port;
  guint64 claim;
} ProbeOpen;

static void
on_probe_opened(HarkLink *link, GError *error, gpointer data)
{
  ProbeOpen *open = data;
  HarkOverlay *overlay = open->overlay;
  g_autofree char *host = open->host;
  guint16 port = open->port;
  guint64 claim_id = open->claim;
  g_free(open);
  if (link == NULL) {
    Peer *claim = find_claim(overlay, claim_id);
    if (claim != NULL)
      refuse_claim(overlay, claim, error->message);
    g_error_free(error);
    return;
  }
  if (!overlay->is_sn || find_claim(overlay, claim_id) == NULL) {
    hark_link_free(link);
    return;
  }
  hark_link_set_handshake_timeout(link, overlay->node->config->handshake_timeout_ms);
  Peer *probe = hark_overlay_add_peer(overlay, link, PEER_PROBE);
  probe->host = g_steal_pointer(&host);
  probe->port = port;
  probe->claim = claim_id;
}

/* The best stream transport the claimed SN says it listens on, or NULL. */
static const HarkRegistration *
probe_transport(HarkOverlay *overlay, Peer *peer)
{
  g_autoptr(GPtrArray) streams = hark_overlay_transports(overlay, HARK_TRANSPORT_STREAM);
  for (guint i = 0; i < streams->len; i++) {
    const HarkRegistration *reg = streams->pdata[i];
    if (peer->transports != NULL &&
        g_strv_contains((const char *const *)peer->transports, reg->name))
      return reg;
  }
  return NULL;
}

void
hark_overlay_verify_claim(HarkOverlay *overlay, Peer *peer)
{
  peer->trust = SN_CLAIMED;
  peer->claim = hark_overlay_next_id(overlay);
  const char *device = device_of(peer);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *ours = value;
    if (hark_overlay_is_verified_sn(ours) && hark_link_is_opener(ours->link) &&
        ours->port == peer->port && g_strcmp0(ours->host, peer->host) == 0 &&
        g_strcmp0(device_of(ours), device) == 0) {
      mark_verified(overlay, peer, "our SN link there");
      return;
    }
  }
  const char *refused = probe_refusal(overlay, peer->host);
  const HarkRegistration *reg = refused == NULL ? probe_transport(overlay, peer) : NULL;
  if (refused == NULL && reg == NULL)
    refused = "no stream transport in common";
  if (refused != NULL) {
    refuse_claim(overlay, peer, refused);
    return;
  }
  g_message("%s (user %s) claims to be the SN at %s:%u: checking", peer->name,
            hark_link_get_peer_certificate(peer->link)->user, peer->host, peer->port);
  peer->timer = hark_overlay_add_timer(overlay, OVERLAY_SN_VERIFY_MS, on_claim_timeout, peer);
  ProbeOpen *open = g_new0(ProbeOpen, 1);
  open->overlay = overlay;
  open->host = g_strdup(peer->host);
  open->port = peer->port;
  open->claim = peer->claim;
  const HarkTransportInterface *iface = reg->iface;
  iface->open(reg->instance, peer->host, peer->port, NULL, on_probe_opened, open);
}

void
hark_overlay_verify_opened(HarkOverlay *overlay, Peer *peer)
{
  peer->trust = SN_VERIFIED;
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  if (cert != NULL)
    prove_claims(overlay, peer->host, peer->port, cert, "our SN link there");
}

void
hark_overlay_verify_probe_up(HarkOverlay *overlay, Peer *probe)
{
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(probe->link);
  if (cert != NULL)
    prove_claims(overlay, probe->host, probe->port, cert, "a link of ours there");
  Peer *claim = find_claim(overlay, probe->claim);
  if (claim != NULL)
    refuse_claim(overlay, claim, "a link of ours there shows another device");
  hark_overlay_drop_peer(overlay, probe, NULL);
}

void
hark_overlay_verify_probe_closed(HarkOverlay *overlay, Peer *probe, const char *why)
{
  Peer *claim = find_claim(overlay, probe->claim);
  if (claim != NULL) {
    g_autofree char *text = g_strdup_printf("our link there failed: %s", why);
    refuse_claim(overlay, claim, text);
  }
}
