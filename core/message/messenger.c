/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger.c: the messenger's life (history, router, overlay events), its events to
 * the frontends, and what it knows of other users' devices: their certificates (from the
 * login server, so a device that is offline can be sealed for) and where the online ones
 * are (from the directory, so an envelope goes to the right SN). */
#include "messenger-private.h"

#include "hark/address.h"
#include "hark/certificate.h"
#include "hark/presence.h"

#include <string.h>

typedef struct {
  MessengerPeerReady ready;
  gpointer data;
} MessengerWait;

gint64
hark_messenger_now(HarkMessenger *messenger)
{
  return hark_clock_now_seconds(messenger->clock);
}

static gint64
monotonic_s(HarkMessenger *messenger)
{
  return hark_clock_now_monotonic(messenger->clock) / G_USEC_PER_SEC;
}

gboolean
hark_messenger_whoami(HarkMessenger *messenger, char **user, char **key)
{
  GBytes *der = hark_login_client_certificate_der(messenger->login); /* borrowed */
  if (der == NULL)
    return FALSE;
  g_autoptr(HarkDeviceCertificate) cert = hark_certificate_verify(
    hark_login_client_ca_pem(messenger->login), der, hark_messenger_now(messenger), NULL);
  if (cert == NULL)
    return FALSE;
  if (user != NULL)
    *user = g_strdup(cert->user);
  if (key != NULL)
    *key = hark_presence_name_key(cert->user);
  return TRUE;
}

char *
hark_messenger_id_hex(const guint8 *id)
{
  GString *hex = g_string_sized_new(2 * HARK_MESSAGE_ID_SIZE);
  for (guint i = 0; i < HARK_MESSAGE_ID_SIZE; i++)
    g_string_append_printf(hex, "%02x", id[i]);
  return g_string_free(hex, FALSE);
}

gboolean
hark_messenger_id_from_hex(const char *hex, guint8 *id)
{
  if (hex == NULL || strlen(hex) != 2 * HARK_MESSAGE_ID_SIZE)
    return FALSE;
  for (guint i = 0; i < HARK_MESSAGE_ID_SIZE; i++) {
    int hi = g_ascii_xdigit_value(hex[2 * i]), lo = g_ascii_xdigit_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return FALSE;
    id[i] = (guint8)(hi << 4 | lo);
  }
  return TRUE;
}

char *
hark_messenger_conversation_of(const char *user)
{
  g_autofree char *key = hark_presence_name_key(user);
  return g_strconcat("u:", key, NULL);
}

void
hark_messenger_source_stop(HarkMessenger *messenger, guint *source_id)
{
  if (*source_id == 0)
    return;
  GSource *source =
    g_main_context_find_source_by_id(hark_context_main_context(messenger->ctx), *source_id);
  if (source != NULL)
    g_source_destroy(source);
  *source_id = 0;
}

/* ---- callbacks owed --------------------------------------------------------------------- */

gpointer
hark_messenger_op_new(HarkMessenger *messenger, gsize size)
{
  g_assert(size >= sizeof(MessengerOp));
  MessengerOp *op = g_malloc0(size);
  op->messenger = messenger;
  g_ptr_array_add(messenger->ops, op);
  return op;
}

HarkMessenger *
hark_messenger_op_end(gpointer data)
{
  MessengerOp *op = data;
  if (op->messenger != NULL)
    g_ptr_array_remove_fast(op->messenger->ops, op);
  return op->messenger;
}

/* ---- events ------------------------------------------------------------------------ */

const char *
hark_messenger_state_name(HarkMessageState state)
{
  switch (state) {
  case HARK_MESSAGE_STATE_SENT:
    return "sent";
  case HARK_MESSAGE_STATE_DELIVERED:
    return "delivered";
  case HARK_MESSAGE_STATE_READ:
    return "read";
  }
  return "unknown";
}

JsonObject *
hark_messenger_message_json(const HarkHistoryMessage *message, const char *id_name)
{
  JsonObject *o = json_object_new();
  g_autofree char *id = hark_messenger_id_hex(message->id);
  json_object_set_string_member(o, id_name, id);
  json_object_set_string_member(o, "from", message->sender);
  json_object_set_string_member(o, "device", message->sender_device);
  json_object_set_int_member(o, "sequence", (gint64)message->sequence);
  json_object_set_int_member(o, "time", message->time);
  json_object_set_string_member(o, "direction",
                                message->direction == HARK_MESSAGE_IN ? "in" : "out");
  json_object_set_string_member(o, "text", message->text);
  if (message->after_gap)
    json_object_set_boolean_member(o, "after_gap", TRUE);
  return o;
}

void
hark_messenger_emit_message(HarkMessenger *messenger, const HarkHistoryMessage *message)
{
  /* "message_id": an event's "id" would read as a ctl answer's. */
  JsonObject *o = hark_messenger_message_json(message, "message_id");
  json_object_set_string_member(o, "conversation", message->conversation);
  hark_context_emit(messenger->ctx, "message", o);
}

void
hark_messenger_emit_state(HarkMessenger *messenger, const guint8 *id, const char *device,
                          const char *state)
{
  JsonObject *o = json_object_new();
  g_autofree char *hex = hark_messenger_id_hex(id);
  json_object_set_string_member(o, "message_id", hex);
  json_object_set_string_member(o, "device", device);
  json_object_set_string_member(o, "state", state);
  hark_context_emit(messenger->ctx, "message-state", o);
}

/* ---- other users' devices ---------------------------------------------------------- */

static void
peer_free(gpointer data)
{
  MessengerPeer *peer = data;
  g_free(peer->user);
  g_clear_pointer(&peer->certificates, g_ptr_array_unref);
  g_clear_pointer(&peer->online, g_hash_table_unref);
  g_clear_error(&peer->online_error);
  g_ptr_array_unref(peer->waiting_devices);
  g_ptr_array_unref(peer->waiting_online);
  g_free(peer);
}

static MessengerPeer *
peer_get(HarkMessenger *messenger, const char *user)
{
  g_autofree char *key = hark_presence_name_key(user);
  MessengerPeer *peer = g_hash_table_lookup(messenger->peers, key);
  if (peer == NULL) {
    peer = g_new0(MessengerPeer, 1);
    peer->user = g_strdup(key);
    peer->waiting_devices = g_ptr_array_new_with_free_func(g_free);
    peer->waiting_online = g_ptr_array_new_with_free_func(g_free);
    g_hash_table_insert(messenger->peers, g_strdup(key), peer);
  }
  return peer;
}

/* Everyone waiting on waiting hears the outcome, once; those who start waiting while
 * the callbacks run wait for the next answer. */
static void
peer_answer(HarkMessenger *messenger, MessengerPeer *peer, GPtrArray *waiting, const GError *error)
{
  g_autoptr(GPtrArray) now = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < waiting->len; i++)
    g_ptr_array_add(now, g_steal_pointer(&waiting->pdata[i]));
  g_ptr_array_set_size(waiting, 0);
  for (guint i = 0; i < now->len; i++) {
    MessengerWait *wait = now->pdata[i];
    wait->ready(messenger, peer, error, wait->data);
  }
}

static void
wait_add(GPtrArray *waiting, MessengerPeerReady ready, gpointer data)
{
  MessengerWait *wait = g_new0(MessengerWait, 1);
  wait->ready = ready;
  wait->data = data;
  g_ptr_array_add(waiting, wait);
}

typedef struct {
  MessengerOp op;
  char *user;
} PeerAsk;

static void
peer_ask_free(PeerAsk *ask)
{
  g_free(ask->user);
  g_free(ask);
}

static void
devices_answered(GObject *source, GAsyncResult *result, gpointer data)
{
  PeerAsk *ask = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) certificates = hark_login_client_device_certificates_finish(result, &error);
  HarkMessenger *messenger = hark_messenger_op_end(ask);
  if (messenger == NULL) {
    peer_ask_free(ask);
    return;
  }
  MessengerPeer *peer = peer_get(messenger, ask->user);
  peer_ask_free(ask);
  peer->asking_devices = FALSE;
  if (certificates != NULL) {
    g_clear_pointer(&peer->certificates, g_ptr_array_unref);
    peer->certificates = g_steal_pointer(&certificates);
    peer->certificates_at = monotonic_s(messenger);
  } else if (peer->certificates != NULL) {
    /* No answer now (over the login server's look-up limit, which every device behind
     * one address shares, or no way to it): the last list serves until the next ask, as
     * the directory's last answer does, rather than the user's message being refused. */
    g_debug("messages: the devices of %s: %s (the last list is used)", peer->user,
            error->message);
    peer->certificates_at = monotonic_s(messenger);
    g_clear_error(&error);
  }
  peer_answer(messenger, peer, peer->waiting_devices, error);
}

void
hark_messenger_peer_devices(HarkMessenger *messenger, const char *user, MessengerPeerReady ready,
                            gpointer data)
{
  MessengerPeer *peer = peer_get(messenger, user);
  if (peer->certificates != NULL &&
      monotonic_s(messenger) - peer->certificates_at < MESSENGER_DEVICES_TTL_S) {
    ready(messenger, peer, NULL, data);
    return;
  }
  wait_add(peer->waiting_devices, ready, data);
  if (peer->asking_devices)
    return;
  peer->asking_devices = TRUE;
  PeerAsk *ask = hark_messenger_op_new(messenger, sizeof(PeerAsk));
  ask->user = g_strdup(peer->user);
  hark_login_client_device_certificates_async(messenger->login, peer->user, messenger->cancellable,
                                              devices_answered, ask);
}

/* The directory's answer: the online devices and the SN each is a client of. A device
 * without an SN (an SN's own device) is left out: envelopes for it are held. */
static void
online_answered(HarkSearchAnswer answer, const HarkPresenceQuery *query, GPtrArray *records,
                GPtrArray *names, const GError *error, gpointer data)
{
  PeerAsk *ask = data;
  HarkMessenger *messenger = hark_messenger_op_end(ask);
  if (messenger == NULL) {
    peer_ask_free(ask);
    return;
  }
  MessengerPeer *peer = peer_get(messenger, ask->user);
  peer_ask_free(ask);
  peer->asking_online = FALSE;
  if (error != NULL) {
    /* No answer now (over the SN's lookup rate, say). What was known serves until the
     * next try; a device that left answers 404 and its envelope is held. When nothing
     * was known, nothing is kept either: an empty answer would read "no device online"
     * for MESSENGER_ONLINE_TTL_S, which is not what the directory said. */
    g_debug("messages: looking %s up: %s", peer->user, error->message);
    if (peer->online != NULL) {
      peer->online_at = monotonic_s(messenger);
      peer->online_at_us = hark_clock_now_monotonic(messenger->clock);
    } else {
      g_clear_error(&peer->online_error);
      peer->online_error = g_error_copy(error);
    }
    peer_answer(messenger, peer, peer->waiting_online, NULL);
    return;
  }
  GHashTable *online = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; records != NULL && i < records->len; i++) {
    const HarkPresenceRecord *record = records->pdata[i];
    if (record->sn != NULL && record->sn[0] != '\0')
      g_hash_table_replace(online, g_strdup(record->device), g_strdup(record->sn));
  }
  g_clear_pointer(&peer->online, g_hash_table_unref);
  g_clear_error(&peer->online_error);
  peer->online = online;
  peer->online_at = monotonic_s(messenger);
  peer->online_at_us = hark_clock_now_monotonic(messenger->clock);
  peer_answer(messenger, peer, peer->waiting_online, NULL);
}

void
hark_messenger_peer_online(HarkMessenger *messenger, const char *user, MessengerPeerReady ready,
                           gpointer data)
{
  MessengerPeer *peer = peer_get(messenger, user);
  if (peer->online != NULL && monotonic_s(messenger) - peer->online_at < MESSENGER_ONLINE_TTL_S) {
    ready(messenger, peer, NULL, data);
    return;
  }
  wait_add(peer->waiting_online, ready, data);
  if (peer->asking_online)
    return;
  peer->asking_online = TRUE;
  PeerAsk *ask = hark_messenger_op_new(messenger, sizeof(PeerAsk));
  ask->user = g_strdup(peer->user);
  hark_directory_lookup(messenger->directory, peer->user, online_answered, ask);
}

void
hark_messenger_peer_online_device(HarkMessenger *messenger, const char *user, const char *device,
                                  MessengerPeerReady ready, gpointer data)
{
  MessengerPeer *peer = peer_get(messenger, user);
  if (peer->online != NULL && g_hash_table_contains(peer->online, device))
    ready(messenger, peer, NULL, data);
  else
    hark_messenger_peer_online(messenger, user, ready, data);
}

/* ---- a device list that knows the devices online now ------------------------------ */

typedef struct {
  MessengerPeerReady ready;
  gpointer data;
} CurrentWait;

/* Whether every device the directory shows online is in the cached device list. */
static gboolean
lists_every_online(MessengerPeer *peer)
{
  GHashTableIter iter;
  gpointer device;
  g_hash_table_iter_init(&iter, peer->online);
  while (g_hash_table_iter_next(&iter, &device, NULL)) {
    gboolean listed = FALSE;
    for (guint i = 0; !listed && i < peer->certificates->len; i++)
      listed = g_strcmp0(((HarkLoginDeviceCertificate *)peer->certificates->pdata[i])->device_id,
                         device) == 0;
    if (!listed)
      return FALSE;
  }
  return TRUE;
}

static void
current_online(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  CurrentWait *wait = data;
  MessengerPeerReady ready = wait->ready;
  gpointer ready_data = wait->data;
  g_free(wait);
  if (peer->certificates != NULL && peer->online != NULL && !lists_every_online(peer))
    peer->certificates_at = G_MININT64 / 2; /* a new device came: ask the login server */
  hark_messenger_peer_devices(messenger, peer->user, ready, ready_data);
}

void
hark_messenger_peer_devices_current(HarkMessenger *messenger, const char *user,
                                    MessengerPeerReady ready, gpointer data)
{
  CurrentWait *wait = g_new0(CurrentWait, 1);
  wait->ready = ready;
  wait->data = data;
  /* Fresh within MESSENGER_ONLINE_FRESH_MS: a device that just logged in is sealed for
   * from the next message, and a burst of messages costs one lookup, not one each (an SN
   * answers a client 30 lookups a minute; over that, the last answer serves). */
  g_autofree char *key = hark_presence_name_key(user);
  MessengerPeer *peer = g_hash_table_lookup(messenger->peers, key);
  if (peer != NULL && hark_clock_now_monotonic(messenger->clock) - peer->online_at_us >=
                        MESSENGER_ONLINE_FRESH_MS * 1000)
    hark_messenger_peer_forget_online(messenger, user);
  hark_messenger_peer_online(messenger, user, current_online, wait);
}

#define MAX_CERTIFICATES 4096

void
hark_messenger_remember_certificate(HarkMessenger *messenger, const char *device,
                                    GBytes *certificate)
{
  if (g_hash_table_size(messenger->certificates) >= MAX_CERTIFICATES)
    g_hash_table_remove_all(messenger->certificates);
  g_hash_table_replace(messenger->certificates, g_strdup(device), g_bytes_ref(certificate));
}

GBytes *
hark_messenger_certificate_of(HarkMessenger *messenger, const char *user, const char *device)
{
  GBytes *known = g_hash_table_lookup(messenger->certificates, device);
  if (known != NULL)
    return known;
  g_autofree char *key = hark_presence_name_key(user);
  MessengerPeer *peer = g_hash_table_lookup(messenger->peers, key);
  for (guint i = 0; peer != NULL && peer->certificates != NULL && i < peer->certificates->len;
       i++) {
    const HarkLoginDeviceCertificate *c = peer->certificates->pdata[i];
    if (g_strcmp0(c->device_id, device) == 0)
      return c->certificate;
  }
  return NULL;
}

void
hark_messenger_peer_forget_online(HarkMessenger *messenger, const char *user)
{
  g_autofree char *key = hark_presence_name_key(user);
  MessengerPeer *peer = g_hash_table_lookup(messenger->peers, key);
  if (peer != NULL)
    peer->online_at = G_MININT64 / 2;
}

void
hark_messenger_peer_forget_device(HarkMessenger *messenger, const char *user, const char *device)
{
  g_autofree char *key = hark_presence_name_key(user);
  MessengerPeer *peer = g_hash_table_lookup(messenger->peers, key);
  if (peer != NULL && peer->online != NULL)
    g_hash_table_remove(peer->online, device);
  hark_messenger_peer_forget_online(messenger, user);
}

/* Everything known of other users' devices is asked again at the next use. The peers
 * stay: a send or an outbox attempt waiting on a question in flight hears its answer
 * (dropping them would leave that `msg` unanswered and that outbox entry never tried
 * again). */
static void
peers_forget(HarkMessenger *messenger)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, messenger->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    MessengerPeer *peer = value;
    peer->certificates_at = G_MININT64 / 2;
    peer->online_at = G_MININT64 / 2;
  }
}

/* ---- the router's view of envelopes -------------------------------------------------- */

static void
envelope_free(gpointer data)
{
  hark_envelope_free(data);
}

static HarkMessageEnvelopeInfo *
check_parse(gpointer data, GBytes *bytes, GError **error)
{
  HarkEnvelope *envelope = hark_envelope_parse(bytes, error);
  if (envelope == NULL)
    return NULL;
  HarkMessageEnvelopeInfo *info = g_new0(HarkMessageEnvelopeInfo, 1);
  info->sender = g_strdup(envelope->sender);
  info->sender_device = g_strdup(envelope->sender_device);
  info->recipients = g_new0(char *, envelope->recipients->len + 1);
  for (guint i = 0; i < envelope->recipients->len; i++) {
    const HarkEnvelopeRecipient *r = envelope->recipients->pdata[i];
    info->recipients[i] = g_strdup(r->device);
  }
  info->parsed = envelope;
  info->parsed_free = envelope_free;
  return info;
}

static gboolean
check_verify(gpointer data, const HarkMessageEnvelopeInfo *info, GBytes *bytes, gint64 now,
             GError **error)
{
  HarkMessenger *messenger = data;
  return hark_envelope_verify(info->parsed, hark_login_client_ca_pem(messenger->login), now, error);
}

static const HarkMessageEnvelopeCheck envelope_check = {
  .parse = check_parse,
  .verify = check_verify,
};

static void
on_delivered(gpointer data, GBytes *envelope)
{
  hark_messenger_take(data, envelope, "our super node");
}

static const char *
own_device(gpointer data)
{
  HarkMessenger *messenger = data;
  return hark_identity_get_fingerprint(messenger->node->identity);
}

static const HarkMessageRouteHooks route_hooks = {
  .delivered = on_delivered,
  .own_device = own_device,
};

/* ---- the overlay's events ------------------------------------------------------------ */

static void
on_event(gpointer data, const char *event, JsonObject *details)
{
  HarkMessenger *messenger = data;
  if (g_strcmp0(event, "overlay-attached") == 0 || g_strcmp0(event, "certificate-changed") == 0 ||
      g_strcmp0(event, "overlay-role") == 0) {
    /* A new way out: what waited is tried again, and what was held for us comes. What
     * was learnt of others' devices is asked again when next needed; a question in
     * flight still answers those waiting for it. */
    peers_forget(messenger);
    /* What failed while there was no way out is tried now, not after its backoff. */
    if (messenger->history != NULL)
      hark_message_history_outbox_hurry(messenger->history, HARK_MESSAGE_HISTORY_RETRY_MAX, NULL);
    hark_messenger_pump_soon(messenger);
    hark_messenger_fetch(messenger);
    hark_messenger_sync_start(messenger);
  }
}

static const HarkOverlayListener messenger_listener = {
  .event = on_event,
};

HarkMessenger *
hark_messenger_new(HarkNode *node, HarkOverlay *overlay, HarkDirectory *directory,
                   HarkLoginClient *login)
{
  HarkMessenger *messenger = g_new0(HarkMessenger, 1);
  messenger->node = node;
  messenger->ctx = node->core_ctx;
  messenger->clock = hark_context_get_clock(node->core_ctx);
  messenger->overlay = overlay;
  messenger->directory = directory;
  messenger->login = login;
  messenger->read_receipts = node->config->msg_read_receipts;
  messenger->typing_enabled = node->config->msg_typing;
  messenger->cancellable = g_cancellable_new();
  messenger->ops = g_ptr_array_new();
  messenger->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, peer_free);
  messenger->replay = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  messenger->attempts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  messenger->buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  messenger->certificates =
    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
  messenger->sync_answered = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  messenger->sync_unanswered =
    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
  messenger->sync_followers =
    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, hark_messenger_sync_followers_free);
  messenger->typing_sent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  messenger->signal_handlers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GError) error = NULL;
  messenger->history = hark_message_history_open(node->config->state_dir, messenger->clock, &error);
  if (messenger->history == NULL) {
    messenger->history_error = g_strdup(error->message);
    g_warning("messages: %s; messages are off on this node", error->message);
  }
  messenger->route = hark_message_route_new(messenger->ctx, overlay, &envelope_check, messenger,
                                            &route_hooks, messenger, NULL);
  messenger->listener = hark_overlay_add_listener(overlay, &messenger_listener, messenger);
  /* A node that starts logged in (a saved certificate) fetches at once; the overlay's
   * attach brings the rest. */
  hark_messenger_fetch(messenger);
  hark_messenger_pump_soon(messenger);
  hark_messenger_sync_start(messenger);
  return messenger;
}

void
hark_messenger_free(HarkMessenger *messenger)
{
  if (messenger == NULL)
    return;
  messenger->stopping = TRUE;
  hark_overlay_remove_listener(messenger->overlay, messenger->listener);
  g_cancellable_cancel(messenger->cancellable);
  hark_messenger_pump_stop(messenger);
  hark_messenger_fetch_stop(messenger);
  hark_messenger_sync_stop(messenger);
  /* The router answers its sends "stopped" now: the outbox keeps them for next time. */
  g_clear_pointer(&messenger->route, hark_message_route_free);
  /* Callbacks still owed (login requests, lookups) find no messenger. */
  for (guint i = 0; i < messenger->ops->len; i++)
    ((MessengerOp *)messenger->ops->pdata[i])->messenger = NULL;
  g_ptr_array_unref(messenger->ops);
  g_hash_table_unref(messenger->peers);
  g_hash_table_unref(messenger->replay);
  g_hash_table_unref(messenger->attempts);
  g_hash_table_unref(messenger->buckets);
  g_hash_table_unref(messenger->certificates);
  g_hash_table_unref(messenger->sync_answered);
  g_hash_table_unref(messenger->sync_unanswered);
  g_hash_table_unref(messenger->sync_followers);
  g_hash_table_unref(messenger->typing_sent);
  hark_messenger_signal_handlers_free(messenger);
  g_clear_pointer(&messenger->history, hark_message_history_close);
  g_free(messenger->history_error);
  g_object_unref(messenger->cancellable);
  g_free(messenger);
}
