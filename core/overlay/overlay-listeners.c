/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-listeners.c: how the layers above the overlay (the directory) take part
 * without the overlay calling up into them: they register the message types they handle
 * and hear the overlay's events and closed links (overlay.h). Also the few read-only
 * views of the overlay's state they need. */
#include "overlay-private.h"

#include <string.h>

typedef struct {
  guint id;
  const HarkOverlayListener *listener;
  gpointer data;
} OverlayListenerEntry;

guint
hark_overlay_add_listener(HarkOverlay *overlay, const HarkOverlayListener *listener, gpointer data)
{
  if (overlay->listeners == NULL)
    overlay->listeners = g_ptr_array_new_with_free_func(g_free);
  OverlayListenerEntry *entry = g_new0(OverlayListenerEntry, 1);
  entry->id = ++overlay->next_listener;
  entry->listener = listener;
  entry->data = data;
  g_ptr_array_add(overlay->listeners, entry);
  return entry->id;
}

void
hark_overlay_remove_listener(HarkOverlay *overlay, guint id)
{
  for (guint i = 0; overlay->listeners != NULL && i < overlay->listeners->len; i++) {
    OverlayListenerEntry *entry = overlay->listeners->pdata[i];
    if (entry->id == id) {
      g_ptr_array_remove_index(overlay->listeners, i);
      return;
    }
  }
}

void
hark_overlay_listeners_free(HarkOverlay *overlay)
{
  g_clear_pointer(&overlay->listeners, g_ptr_array_unref);
}

static gboolean
takes(const HarkOverlayListener *listener, guint16 type, HarkOverlayFrom from)
{
  if (type == HARK_MSG_ERROR)
    return (listener->errors_from_sn && from == HARK_OVERLAY_FROM_MY_SN) ||
           (listener->errors_from_sn_peers && from == HARK_OVERLAY_FROM_SN);
  for (gsize i = 0; i < listener->n_types; i++)
    if (listener->types[i] == type)
      return TRUE;
  return FALSE;
}

static gboolean
from_of(Peer *peer, HarkOverlayFrom *from)
{
  switch (peer->kind) {
  case PEER_MY_SN:
    *from = HARK_OVERLAY_FROM_MY_SN;
    return TRUE;
  case PEER_CLIENT:
    *from = HARK_OVERLAY_FROM_CLIENT;
    return TRUE;
  case PEER_SN:
    *from = HARK_OVERLAY_FROM_SN;
    return hark_overlay_is_verified_sn(peer);
  default:
    return FALSE;
  }
}

gboolean
hark_overlay_listeners_message(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  HarkOverlayFrom from;
  if (overlay->listeners == NULL)
    return FALSE;
  gboolean claimed = peer->kind == PEER_SN && !hark_overlay_is_verified_sn(peer);
  if (claimed)
    from = HARK_OVERLAY_FROM_CLAIMED_SN;
  else if (!from_of(peer, &from))
    return FALSE;
  for (guint i = 0; i < overlay->listeners->len; i++) {
    OverlayListenerEntry *entry = overlay->listeners->pdata[i];
    if (claimed && !entry->listener->claimed_sn_peers)
      continue;
    if (takes(entry->listener, message->type, from) && entry->listener->message != NULL &&
        entry->listener->message(entry->data, peer->link, from, message))
      return TRUE;
  }
  return FALSE;
}

void
hark_overlay_listeners_event(HarkOverlay *overlay, const char *event, JsonObject *details)
{
  for (guint i = 0; overlay->listeners != NULL && i < overlay->listeners->len; i++) {
    OverlayListenerEntry *entry = overlay->listeners->pdata[i];
    if (entry->listener->event != NULL)
      entry->listener->event(entry->data, event, details);
  }
}

void
hark_overlay_listeners_link_closed(HarkOverlay *overlay, Peer *peer)
{
  HarkOverlayFrom from;
  if (peer->listeners_told || overlay->listeners == NULL || !from_of(peer, &from))
    return;
  peer->listeners_told = TRUE;
  for (guint i = 0; i < overlay->listeners->len; i++) {
    OverlayListenerEntry *entry = overlay->listeners->pdata[i];
    if (entry->listener->link_closed != NULL)
      entry->listener->link_closed(entry->data, peer->link, from);
  }
}

/* ---- read-only views ------------------------------------------------------------------- */

HarkLink *
hark_overlay_sn_link(HarkOverlay *overlay)
{
  return overlay->sn != NULL ? overlay->sn->link : NULL;
}

static char *
host_port(const char *host, guint16 port)
{
  return strchr(host, ':') != NULL ? g_strdup_printf("[%s]:%u", host, port)
                                   : g_strdup_printf("%s:%u", host, port);
}

char *
hark_overlay_sn_address(HarkOverlay *overlay)
{
  Peer *sn = overlay->sn;
  if (sn == NULL)
    return NULL;
  guint16 port = sn->port != 0 ? sn->port : hark_link_get_peer_port(sn->link);
  return host_port(hark_link_get_peer_host(sn->link), port);
}

char *
hark_overlay_own_address(HarkOverlay *overlay)
{
  if (!overlay->is_sn || overlay->public_host == NULL)
    return NULL;
  return host_port(overlay->public_host, overlay->node->config->port);
}

gboolean
hark_overlay_is_super_node(HarkOverlay *overlay)
{
  return overlay->is_sn;
}

GPtrArray *
hark_overlay_sn_peer_links(HarkOverlay *overlay)
{
  GPtrArray *links = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (hark_overlay_is_verified_sn(peer) && peer->host != NULL)
      g_ptr_array_add(links, peer->link);
  }
  return links;
}

HarkLink *
hark_overlay_client_link(HarkOverlay *overlay, const char *device_id)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    const HarkDeviceCertificate *cert =
      peer->kind == PEER_CLIENT ? hark_link_get_peer_certificate(peer->link) : NULL;
    if (cert != NULL && g_strcmp0(cert->device_id, device_id) == 0)
      return peer->link;
  }
  return NULL;
}

HarkLink *
hark_overlay_peer_link(HarkOverlay *overlay, const char *host, guint16 port)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (hark_overlay_is_verified_sn(peer) && peer->port == port && g_strcmp0(peer->host, host) == 0)
      return peer->link;
  }
  return NULL;
}

char *
hark_overlay_peer_id(HarkOverlay *overlay, HarkLink *link)
{
  Peer *peer = hark_overlay_peer_of(overlay, link);
  if (peer == NULL || peer->kind != PEER_SN || peer->host == NULL)
    return NULL;
  return host_port(peer->host, peer->port);
}

guint64
hark_overlay_new_message_id(HarkOverlay *overlay)
{
  return hark_overlay_next_id(overlay);
}

void
hark_overlay_count_refused(HarkOverlay *overlay, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *text = g_strdup_vprintf(format, args);
  va_end(args);
  hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "%s", text);
}
