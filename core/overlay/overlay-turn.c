/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-turn.c: TURN credentials for calls (docs/protocol.md, "Calls: TURN
 * credentials").
 *
 * An SN configured with a TURN server it vouches for (supernode.turn_server) and that
 * server's shared secret (supernode.turn_secret_file, coturn's static-auth-secret) mints
 * time-limited credentials for each logged-in client that asks (TURN_REQUEST), in the
 * name of the user its link proved: coturn checks them with the secret alone
 * (overlay-turn-parse.c), so the secret never leaves the SN and a user's credentials
 * stop working when they expire. A client asks its SN once and keeps the answer until
 * an hour before it expires; an SN's own device answers from its configuration. What a
 * client takes from its SN is checked first (hark_overlay_turn_parse): a hostile SN can
 * hand a bad TURN server, never crash the client.
 *
 * Steering: an SN whose own relay is off (supernode.relay = false) or full asks a verified
 * SN peer for credentials for that peer's relay (TURN_FORWARD, with the user its client's
 * link proved), checks the answer names that user, and passes it on as its own answer;
 * an SN serves a TURN_FORWARD from its own relay only (never forwards it again). */
#include "overlay-private.h"

#include "hark/presence.h"
#include "relay-auth.h"

#include <string.h>

#define TURN_ANSWER_MS 5000 /* a TURN_REQUEST unanswered by then has failed */
#define TURN_CACHE_MARGIN_S 3600 /* credentials are asked for again this long before expiry */
#define TURN_ABSENT_S 60 /* an SN that has no TURN server is not asked again for this long */
/* TURN_REQUESTs one client link may send: 6 a minute, in a burst of at most 6. */
#define TURN_PER_SECOND (6.0 / 60.0)
#define TURN_BURST 6.0
/* A forwarded request (steering): the client's own wait is TURN_ANSWER_MS, so the peers
 * asked get less, all of them together; then the client hears 404 as before. */
#define TURN_FORWARD_MS 4000
#define TURN_FORWARD_TRIES 3 /* SN peers asked for one client request at most */
/* TURN_FORWARDs one SN peer may send: it speaks for many clients, each of which its own
 * SN holds to 6 a minute; 10 a second in a burst of at most 100. */
#define TURN_FORWARD_PER_SECOND 10.0
#define TURN_FORWARD_BURST 100.0

/* A client's TURN_REQUEST that this SN handed on to SN peers. */
typedef struct {
  HarkOverlay *overlay;
  guint64 id; /* our TURN_FORWARD's, in flight */
  Peer *client; /* its link going ends the forward (hark_overlay_turn_peer_gone) */
  guint64 client_request; /* its TURN_REQUEST's id */
  Peer *asked; /* the SN peer the TURN_FORWARD went to */
  GPtrArray *tried; /* Peer*: the SN peers asked so far (compared, never dereferenced) */
  char *user; /* canonical, from the client's certificate */
  guint timer;
} TurnForward;

struct _OverlayTurn {
  /* SN side: supernode.turn_*, or the SN's own relay (supernode.relay) while it serves;
   * secret NULL when this node has no TURN server */
  char *server; /* "IP:PORT" as configured */
  char *host;
  guint16 port;
  gboolean tcp;
  gint64 lifetime_s;
  GBytes *secret;

  /* client side */
  guint16 sn_web_port; /* the SN's JOIN_OK "turn_web_port", 0 when none */
  HarkTurnCredentials *cached;
  char *cached_from; /* the SN ("host:port") that handed them */
  gint64 cached_until; /* unix s: asked for again from then on */
  char *absent_from; /* the SN ("host:port") that said it has no TURN server (404) */
  gint64 absent_until; /* unix s: asked again from then on */
  guint64 request_id; /* the TURN_REQUEST in flight, 0 when none */
  guint timer; /* its deadline */
  GPtrArray *waiting; /* GTask*: what waits for its answer */

  /* SN side: steering */
  GHashTable *forwards; /* guint64 TURN_FORWARD id -> TurnForward* */
};

/* ---- configuration ---------------------------------------------------------------- */

OverlayTurn *
hark_overlay_turn_new(const HarkConfig *config, GError **error)
{
  g_autofree OverlayTurn *turn = g_new0(OverlayTurn, 1);
  turn->waiting = g_ptr_array_new();
  turn->forwards = g_hash_table_new(g_int64_hash, g_int64_equal);
  if (config->sn_turn_server == NULL)
    return g_steal_pointer(&turn);
  if (!hark_config_parse_ip_port(config->sn_turn_server, &turn->host, &turn->port)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "supernode.turn_server %s is not IP:PORT", config->sn_turn_server);
    g_ptr_array_unref(turn->waiting);
    g_hash_table_unref(turn->forwards);
    return NULL;
  }
  turn->secret =
    hark_relay_secret_read(config->sn_turn_secret_file, "supernode.turn_secret_file", error);
  if (turn->secret == NULL) {
    g_free(turn->host);
    g_ptr_array_unref(turn->waiting);
    g_hash_table_unref(turn->forwards);
    return NULL;
  }
  turn->server = g_strdup(config->sn_turn_server);
  turn->tcp = config->sn_turn_tcp;
  turn->lifetime_s = config->sn_turn_lifetime;
  g_message("TURN: handing out credentials for %s (%s, %" G_GINT64_FORMAT " s) to logged-in "
            "clients",
            turn->server, turn->tcp ? "UDP and TCP" : "UDP", turn->lifetime_s);
  return g_steal_pointer(&turn);
}

static void
fail_waiting(HarkOverlay *overlay, GError *error)
{
  OverlayTurn *turn = overlay->turn;
  hark_overlay_clear_source(overlay, &turn->timer);
  turn->request_id = 0;
  g_autoptr(GPtrArray) waiting = g_steal_pointer(&turn->waiting);
  turn->waiting = g_ptr_array_new();
  for (guint i = 0; i < waiting->len; i++) {
    GTask *task = waiting->pdata[i];
    g_task_return_error(task, g_error_copy(error));
    g_object_unref(task);
  }
  g_error_free(error);
}

static void forward_free(HarkOverlay *overlay, TurnForward *forward);

void
hark_overlay_turn_free(HarkOverlay *overlay)
{
  OverlayTurn *turn = overlay->turn;
  if (turn == NULL)
    return;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, turn->forwards);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    g_hash_table_iter_steal(&iter);
    forward_free(overlay, value);
  }
  g_hash_table_unref(turn->forwards);
  hark_overlay_turn_relay_stop(overlay);
  fail_waiting(overlay,
               g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "the node is stopping"));
  g_ptr_array_unref(turn->waiting);
  g_clear_pointer(&turn->secret, g_bytes_unref);
  g_clear_pointer(&turn->cached, hark_turn_credentials_free);
  g_free(turn->cached_from);
  g_free(turn->absent_from);
  g_free(turn->server);
  g_free(turn->host);
  g_free(turn);
  overlay->turn = NULL;
}

void
hark_overlay_turn_relay_start(HarkOverlay *overlay)
{
  OverlayTurn *turn = overlay->turn;
  const HarkConfig *config = overlay->node->config;
  if (!config->sn_relay || turn->secret != NULL || overlay->relay != NULL)
    return; /* turned off, or a TURN server of its own (supernode.turn_server) */
  g_autoptr(GError) error = NULL;
  overlay->relay = hark_relay_new(config, overlay->node->identity, overlay->public_host, &error);
  if (overlay->relay == NULL) {
    /* The SN serves without a relay rather than not at all; its clients hear 404. */
    g_warning("relay: not relaying: %s", error->message);
    return;
  }
  turn->host = g_strdup(hark_relay_get_host(overlay->relay));
  turn->port = hark_relay_get_port(overlay->relay);
  turn->server = strchr(turn->host, ':') != NULL
                   ? g_strdup_printf("[%s]:%u", turn->host, turn->port)
                   : g_strdup_printf("%s:%u", turn->host, turn->port);
  turn->tcp = TRUE;
  turn->lifetime_s = config->sn_relay_lifetime;
  turn->secret = g_bytes_ref(hark_relay_get_secret(overlay->relay));
}

void
hark_overlay_turn_relay_stop(HarkOverlay *overlay)
{
  OverlayTurn *turn = overlay->turn;
  if (overlay->relay == NULL)
    return;
  g_clear_pointer(&overlay->relay, hark_relay_free);
  g_clear_pointer(&turn->secret, g_bytes_unref);
  g_clear_pointer(&turn->server, g_free);
  g_clear_pointer(&turn->host, g_free);
}

JsonObject *
hark_overlay_turn_describe(HarkOverlay *overlay)
{
  OverlayTurn *turn = overlay->turn;
  JsonObject *object = json_object_new();
  json_object_set_string_member(object, "server", turn->server);
  if (turn->server != NULL) {
    json_object_set_boolean_member(object, "tcp", turn->tcp);
    json_object_set_int_member(object, "lifetime_s", turn->lifetime_s);
  }
  if (overlay->relay != NULL)
    json_object_set_object_member(object, "relay", hark_relay_describe(overlay->relay));
  return object;
}

/* ---- TURN over TLS on the web port ------------------------------------------------- */

/* The relay writes to the client through the link's TLS. */
static gboolean
stream_send(gpointer data, const guint8 *bytes, gsize size)
{
  Peer *peer = data;
  return hark_link_write_raw(peer->link, bytes, size);
}

/* The relay ended the stream: the link goes, and the peer with it (on_link_closed). */
static void
stream_close(gpointer data)
{
  Peer *peer = data;
  peer->relay_stream = NULL;
  hark_link_close(peer->link);
}

static const HarkRelayStreamOps stream_ops = {
  .send = stream_send,
  .close = stream_close,
};

static void
stream_received(HarkLink *link, const guint8 *data, gsize size, gpointer user_data)
{
  Peer *peer = user_data;
  if (peer->relay_stream != NULL)
    hark_relay_stream_feed(peer->relay_stream, data, size);
}

/* A STUN header (RFC 8489 6): the first two bits 0 and the magic cookie at offset 4.
 * An overlay frame never starts so: its length would be over HARK_WIRE_MAX_SIZE. */
static gboolean
is_stun_start(const guint8 *data, gsize size)
{
  return size >= 8 && (data[0] & 0xC0) == 0 && data[4] == 0x21 && data[5] == 0x12 &&
         data[6] == 0xA4 && data[7] == 0x42;
}

gboolean
hark_overlay_turn_foreign(HarkOverlay *overlay, Peer *peer, const guint8 *data, gsize size)
{
  HarkLink *link = peer->link;
  if (overlay->relay == NULL || g_strcmp0(hark_link_get_transport(link), "tls443") != 0 ||
      !is_stun_start(data, size))
    return FALSE;
  peer->relay_stream = hark_relay_stream_new(overlay->relay, hark_link_get_peer_host(link),
                                             hark_link_get_peer_port(link), &stream_ops, peer);
  if (peer->relay_stream == NULL)
    return FALSE; /* no connection slot left: the link fails as any bad framing does */
  /* The relay's own limits (idle connections, allocations) hold it from now on. */
  hark_overlay_clear_source(overlay, &peer->timer);
  hark_overlay_release_admission(overlay, peer);
  hark_link_divert(link, stream_received, peer);
  return TRUE;
}

guint16
hark_overlay_turn_web_port(HarkOverlay *overlay)
{
  if (overlay->relay == NULL)
    return 0;
  g_autoptr(GPtrArray) all = hark_context_lookup(overlay->ctx, HARK_KIND_TRANSPORT);
  for (guint i = 0; i < all->len; i++) {
    const HarkRegistration *reg = all->pdata[i];
    if (g_strcmp0(reg->name, "tls443") == 0)
      return ((const HarkTransportInterface *)reg->iface)->local_port(reg->instance);
  }
  return 0;
}

void
hark_overlay_turn_set_sn_web_port(HarkOverlay *overlay, guint16 port)
{
  overlay->turn->sn_web_port = port;
}

void
hark_overlay_turn_stream_end(Peer *peer)
{
  if (peer->relay_stream != NULL)
    hark_relay_stream_closed(g_steal_pointer(&peer->relay_stream));
}

/* ---- SN side ---------------------------------------------------------------------- */

static HarkTurnCredentials *
mint(OverlayTurn *turn, const char *user)
{
  gint64 expires_at = g_get_real_time() / G_USEC_PER_SEC + turn->lifetime_s;
  return hark_overlay_turn_make(turn->host, turn->port, turn->tcp, turn->secret, user, expires_at);
}

/* A refused TURN_REQUEST: logged (rate-limited), counted and answered. */
static void
refuse(HarkOverlay *overlay, Peer *peer, guint64 id, guint code, const char *why, const char *text)
{
  hark_overlay_note_drop(overlay, &overlay->counters.turn_refused, "TURN_REQUEST from %s:%u (%s)",
                         hark_link_get_peer_host(peer->link), hark_link_get_peer_port(peer->link),
                         why);
  hark_overlay_send_error(peer, id, code, text);
}

/* Whether this SN hands out credentials of its own now: a TURN server it vouches for, or
 * its own relay while that has room for another allocation. */
static gboolean
can_mint(HarkOverlay *overlay)
{
  return overlay->turn->secret != NULL &&
         (overlay->relay == NULL || !hark_relay_is_full(overlay->relay));
}

/* ---- SN side: steering to another SN's relay ---------------------------------------- */

static void
forward_free(HarkOverlay *overlay, TurnForward *forward)
{
  hark_overlay_clear_source(overlay, &forward->timer);
  g_ptr_array_unref(forward->tried);
  g_free(forward->user);
  g_free(forward);
}

/* The forward is over: the client hears 404, as it would have without steering (its
 * link going ends the forward before: hark_overlay_turn_peer_gone). */
static void
forward_fail(HarkOverlay *overlay, TurnForward *forward, const char *why)
{
  g_hash_table_remove(overlay->turn->forwards, &forward->id);
  g_debug("TURN: no SN peer relays for a client (%s)", why);
  hark_overlay_send_error(forward->client, forward->client_request, 404, "no TURN server here");
  forward_free(overlay, forward);
}

/* A verified SN peer not asked yet for this request, or NULL. */
static Peer *
next_relay_peer(HarkOverlay *overlay, TurnForward *forward)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, overlay->peers);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Peer *peer = value;
    if (hark_overlay_is_verified_sn(peer) && !g_ptr_array_find(forward->tried, peer, NULL))
      return peer;
  }
  return NULL;
}

/* Asks the next SN peer; FALSE when none is left to ask (or TURN_FORWARD_TRIES were). */
static gboolean
forward_ask(HarkOverlay *overlay, TurnForward *forward)
{
  while (forward->tried->len < TURN_FORWARD_TRIES) {
    Peer *sn = next_relay_peer(overlay, forward);
    if (sn == NULL)
      return FALSE;
    g_ptr_array_add(forward->tried, sn);
    g_hash_table_remove(overlay->turn->forwards, &forward->id);
    forward->id = hark_overlay_next_id(overlay);
    if (!hark_link_send(sn->link, HARK_MSG_TURN_FORWARD, forward->id,
                        g_variant_new("(s)", forward->user), NULL))
      continue;
    forward->asked = sn;
    g_hash_table_insert(overlay->turn->forwards, &forward->id, forward);
    overlay->counters.turn_forwarded++;
    return TRUE;
  }
  return FALSE;
}

static gboolean
on_forward_timeout(gpointer data)
{
  TurnForward *forward = data;
  forward->timer = 0;
  forward_fail(forward->overlay, forward, "no SN peer answered in time");
  return G_SOURCE_REMOVE;
}

/* The client's TURN_REQUEST goes to an SN peer that relays (this one does not now). */
static void
forward_start(HarkOverlay *overlay, Peer *client, guint64 request, const char *user)
{
  TurnForward *forward = g_new0(TurnForward, 1);
  forward->overlay = overlay;
  forward->client = client;
  forward->client_request = request;
  forward->tried = g_ptr_array_new();
  forward->user = g_strdup(user);
  if (!forward_ask(overlay, forward)) {
    forward_fail(overlay, forward, "no verified SN peer");
    return;
  }
  forward->timer = hark_overlay_add_timer(overlay, TURN_FORWARD_MS, on_forward_timeout, forward);
}

/* An SN peer's answer that names another user or a relay a client cannot use is not
 * passed on: NULL with the reason. */
static HarkTurnCredentials *
forward_check(HarkOverlay *overlay, TurnForward *forward, GVariant *body, GError **error)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(HarkTurnCredentials) credentials =
    hark_overlay_turn_parse(body, now, overlay->node->config->allow_loopback, error);
  if (credentials == NULL)
    return NULL;
  const char *colon = strchr(credentials->username, ':');
  if (colon == NULL || strcmp(colon + 1, forward->user) != 0) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "the username names another user than the one asked for");
    return NULL;
  }
  return g_steal_pointer(&credentials);
}

gboolean
hark_overlay_turn_forward_answer(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  OverlayTurn *turn = overlay->turn;
  TurnForward *forward = g_hash_table_lookup(turn->forwards, &message->id);
  if (forward == NULL || forward->asked != peer)
    return FALSE;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkTurnCredentials) credentials = NULL;
  if (message->type == HARK_MSG_TURN_CREDENTIALS) {
    credentials = forward_check(overlay, forward, message->body, &error);
    if (credentials == NULL)
      hark_overlay_note_drop(overlay, &overlay->counters.turn_forward_bad,
                             "TURN_CREDENTIALS from the SN %s refused: %s", peer->name,
                             error->message);
  }
  if (credentials == NULL) {
    /* An ERROR (no relay there, full, or it refused us) or a bad answer: the next. */
    if (!forward_ask(overlay, forward))
      forward_fail(overlay, forward, "every SN peer asked said no");
    return TRUE;
  }
  g_hash_table_remove(turn->forwards, &forward->id);
  if (hark_link_send(forward->client->link, HARK_MSG_TURN_CREDENTIALS, forward->client_request,
                     hark_overlay_turn_to_variant(credentials), NULL)) {
    overlay->counters.turn_answered++;
    g_autofree char *user = hark_overlay_peer_text(forward->user);
    g_debug("TURN credentials for %s at the SN %s's relay %s:%u", user, peer->name,
            credentials->host, credentials->port);
  }
  forward_free(overlay, forward);
  return TRUE;
}

void
hark_overlay_turn_peer_gone(HarkOverlay *overlay, Peer *peer)
{
  OverlayTurn *turn = overlay->turn;
  if (turn == NULL || turn->forwards == NULL)
    return;
  g_autoptr(GPtrArray) asked_gone = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, turn->forwards);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    TurnForward *forward = value;
    if (forward->client == peer) {
      g_hash_table_iter_remove(&iter);
      forward_free(overlay, forward);
    } else if (forward->asked == peer)
      g_ptr_array_add(asked_gone, forward);
  }
  /* The SN peer asked went away: the next one, else the client hears 404. */
  for (guint i = 0; i < asked_gone->len; i++) {
    TurnForward *forward = asked_gone->pdata[i];
    forward->asked = NULL;
    if (!forward_ask(overlay, forward))
      forward_fail(overlay, forward, "the SN peer asked went away");
  }
}

/* A TURN_FORWARD's user: a user name as the login server takes them, canonical. */
static gboolean
plausible_user(const char *user)
{
  if (!hark_presence_name_is_valid(user))
    return FALSE;
  g_autofree char *key = hark_presence_name_key(user);
  return strcmp(key, user) == 0;
}

static void
refuse_forward(HarkOverlay *overlay, Peer *peer, guint64 id, guint code, const char *why,
               const char *text)
{
  hark_overlay_note_drop(overlay, &overlay->counters.turn_forward_refused,
                         "TURN_FORWARD from %s:%u (%s)", hark_link_get_peer_host(peer->link),
                         hark_link_get_peer_port(peer->link), why);
  hark_overlay_send_error(peer, id, code, text);
}

void
hark_overlay_turn_serve_forward(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  OverlayTurn *turn = overlay->turn;
  const char *user = NULL;
  g_variant_get(message->body, "(&s)", &user);
  if (!hark_overlay_is_verified_sn(peer)) {
    refuse_forward(overlay, peer, message->id, 403, "not a verified SN",
                   "TURN_FORWARD is for super nodes whose address this one has checked");
    return;
  }
  if (!hark_overlay_bucket_take(&peer->turn_bucket, TURN_FORWARD_PER_SECOND, TURN_FORWARD_BURST)) {
    refuse_forward(overlay, peer, message->id, 429, "over 10 a second",
                   "too many TURN_FORWARDs: at most 10 a second");
    return;
  }
  if (!plausible_user(user)) {
    refuse_forward(overlay, peer, message->id, 400, "not a user name",
                   "the user is not a canonical user name");
    return;
  }
  /* Only its own relay: a forwarded request is never forwarded again. */
  if (overlay->relay == NULL || !can_mint(overlay)) {
    hark_overlay_send_error(peer, message->id, 404, "no relay with room here");
    return;
  }
  g_autoptr(HarkTurnCredentials) credentials = mint(turn, user);
  if (!hark_link_send(peer->link, HARK_MSG_TURN_CREDENTIALS, message->id,
                      hark_overlay_turn_to_variant(credentials), NULL))
    return;
  overlay->counters.turn_forward_served++;
  g_autofree char *shown = hark_overlay_peer_text(user);
  g_debug("TURN credentials for %s of the SN %s until %" G_GINT64_FORMAT, shown, peer->name,
          credentials->expires_at);
}

void
hark_overlay_turn_serve(HarkOverlay *overlay, Peer *peer, const HarkWireMessage *message)
{
  OverlayTurn *turn = overlay->turn;
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(peer->link);
  if (!hark_overlay_bucket_take(&peer->turn_bucket, TURN_PER_SECOND, TURN_BURST)) {
    refuse(overlay, peer, message->id, 429, "over 6 a minute",
           "too many TURN requests: at most 6 a minute; keep the credentials until they expire");
    return;
  }
  if (cert == NULL) {
    refuse(overlay, peer, message->id, 401, "not logged in",
           "log in first: TURN credentials are for users whose device certificate this link "
           "proved");
    return;
  }
  if (!can_mint(overlay)) {
    forward_start(overlay, peer, message->id, cert->user);
    return;
  }
  g_autoptr(HarkTurnCredentials) credentials = mint(turn, cert->user);
  if (!hark_link_send(peer->link, HARK_MSG_TURN_CREDENTIALS, message->id,
                      hark_overlay_turn_to_variant(credentials), NULL))
    return;
  overlay->counters.turn_answered++;
  g_autofree char *user = hark_overlay_peer_text(cert->user);
  g_debug("TURN credentials for %s at %s until %" G_GINT64_FORMAT, user, turn->server,
          credentials->expires_at);
}

/* ---- client side ------------------------------------------------------------------ */

static void
return_copy(GTask *task, const HarkTurnCredentials *credentials)
{
  g_task_return_pointer(task, hark_turn_credentials_copy(credentials),
                        (GDestroyNotify)hark_turn_credentials_free);
}

static void
return_error(GTask *task, GIOErrorEnum code, const char *text)
{
  g_task_return_new_error(task, G_IO_ERROR, code, "%s", text);
}

/* An SN's own device: its own configuration, in the name of its own user. */
static void
answer_own(HarkOverlay *overlay, GTask *task)
{
  OverlayTurn *turn = overlay->turn;
  g_autoptr(JsonObject) login =
    overlay->login != NULL ? hark_login_client_snapshot(overlay->login) : NULL;
  const char *user =
    login != NULL ? json_object_get_string_member_with_default(login, "user", NULL) : NULL;
  if (turn->secret == NULL)
    return_error(task, G_IO_ERROR_NOT_FOUND,
                 "this super node has no TURN server (supernode.turn_server)");
  else if (user == NULL)
    return_error(task, G_IO_ERROR_PERMISSION_DENIED,
                 "not logged in: TURN credentials are for logged-in users");
  else {
    g_autoptr(HarkTurnCredentials) credentials = mint(turn, user);
    return_copy(task, credentials);
  }
}

static gboolean
on_answer_timeout(gpointer data)
{
  HarkOverlay *overlay = data;
  overlay->turn->timer = 0;
  fail_waiting(overlay, g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                    "no TURN credentials: the super node did not answer "
                                    "within %d s",
                                    TURN_ANSWER_MS / 1000));
  return G_SOURCE_REMOVE;
}

void
hark_overlay_turn_credentials_async(HarkOverlay *overlay, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer data)
{
  g_return_if_fail(overlay != NULL);
  OverlayTurn *turn = overlay->turn;
  g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, data);
  g_task_set_source_tag(task, hark_overlay_turn_credentials_async);
  if (g_task_return_error_if_cancelled(task))
    return;
  if (overlay->is_sn) {
    answer_own(overlay, task);
    return;
  }
  if (overlay->sn == NULL) {
    return_error(task, G_IO_ERROR_NOT_CONNECTED,
                 "no TURN credentials: this node is not attached to a super node");
    return;
  }
  g_autofree char *sn = hark_overlay_sn_address(overlay);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  if (turn->cached != NULL && g_strcmp0(turn->cached_from, sn) == 0 && now < turn->cached_until) {
    return_copy(task, turn->cached);
    return;
  }
  /* Every call asks before its INVITE leaves: an SN without a TURN server is not asked
   * again at each (a round trip per call, and its rate limit). */
  if (g_strcmp0(turn->absent_from, sn) == 0 && now < turn->absent_until) {
    return_error(task, G_IO_ERROR_NOT_FOUND,
                 "no TURN credentials: the super node has no TURN server (it said so lately)");
    return;
  }
  /* The answer to the request in flight serves everyone waiting: one request per SN link. */
  g_ptr_array_add(turn->waiting, g_steal_pointer(&task));
  if (turn->request_id != 0)
    return;
  turn->request_id = hark_overlay_next_id(overlay);
  if (!hark_link_send(overlay->sn->link, HARK_MSG_TURN_REQUEST, turn->request_id,
                      g_variant_new("()"), NULL)) {
    fail_waiting(overlay, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                                              "no TURN credentials: the link to the super "
                                              "node would not take the request"));
    return;
  }
  turn->timer = hark_overlay_add_timer(overlay, TURN_ANSWER_MS, on_answer_timeout, overlay);
}

HarkTurnCredentials *
hark_overlay_turn_credentials_finish(HarkOverlay *overlay, GAsyncResult *result, GError **error)
{
  (void)overlay;
  g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
  return g_task_propagate_pointer(G_TASK(result), error);
}

static GError *
error_from_sn(GVariant *body)
{
  guint32 code;
  const char *text;
  g_variant_get(body, "(u&s)", &code, &text);
  g_autofree char *shown = hark_text_escape(text, -1, OVERLAY_LOG_TEXT_MAX);
  GIOErrorEnum kind = code == 404   ? G_IO_ERROR_NOT_FOUND
                      : code == 401 ? G_IO_ERROR_PERMISSION_DENIED
                      : code == 429 ? G_IO_ERROR_BUSY
                                    : G_IO_ERROR_FAILED;
  const char *what = code == 404   ? "the super node has no TURN server"
                     : code == 401 ? "the super node wants this device logged in first"
                     : code == 429 ? "the super node says we asked too often"
                                   : "the super node refused";
  return g_error_new(G_IO_ERROR, kind, "no TURN credentials: %s (it answered %u: %s)", what, code,
                     shown);
}

gboolean
hark_overlay_turn_client_message(HarkOverlay *overlay, const HarkWireMessage *message)
{
  OverlayTurn *turn = overlay->turn;
  if (turn->request_id == 0 || message->id != turn->request_id)
    return FALSE;
  if (message->type == HARK_MSG_ERROR) {
    GError *error = error_from_sn(message->body);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
      g_free(turn->absent_from);
      turn->absent_from = hark_overlay_sn_address(overlay);
      turn->absent_until = g_get_real_time() / G_USEC_PER_SEC + TURN_ABSENT_S;
    }
    fail_waiting(overlay, error);
    return TRUE;
  }
  if (message->type != HARK_MSG_TURN_CREDENTIALS)
    return FALSE;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkTurnCredentials) credentials =
    hark_overlay_turn_parse(message->body, now, overlay->node->config->allow_loopback, &error);
  if (credentials == NULL) {
    hark_overlay_note_drop(overlay, &overlay->counters.unexpected, "TURN_CREDENTIALS refused: %s",
                           error->message);
    fail_waiting(overlay, g_error_new(G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                      "no TURN credentials: %s", error->message));
    return TRUE;
  }
  g_clear_pointer(&turn->cached, hark_turn_credentials_free);
  g_free(turn->cached_from);
  turn->cached_from = hark_overlay_sn_address(overlay);
  /* An hour before expiry, or halfway for shorter credentials. */
  turn->cached_until =
    credentials->expires_at - MIN(TURN_CACHE_MARGIN_S, (credentials->expires_at - now) / 2);
  /* The SN's web port is its own relay's: not that of another SN's it steered us to. */
  if (g_strcmp0(credentials->host, hark_link_get_peer_host(overlay->sn->link)) == 0)
    credentials->web_port = turn->sn_web_port;
  turn->cached = hark_turn_credentials_copy(credentials);
  hark_overlay_clear_source(overlay, &turn->timer);
  turn->request_id = 0;
  g_autoptr(GPtrArray) waiting = g_steal_pointer(&turn->waiting);
  turn->waiting = g_ptr_array_new();
  for (guint i = 0; i < waiting->len; i++) {
    return_copy(waiting->pdata[i], credentials);
    g_object_unref(waiting->pdata[i]);
  }
  return TRUE;
}

void
hark_overlay_turn_link_lost(HarkOverlay *overlay)
{
  OverlayTurn *turn = overlay->turn;
  if (turn == NULL)
    return;
  g_clear_pointer(&turn->cached, hark_turn_credentials_free);
  g_clear_pointer(&turn->cached_from, g_free);
  g_clear_pointer(&turn->absent_from, g_free);
  if (turn->request_id != 0)
    fail_waiting(overlay, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                                              "no TURN credentials: the link to the super "
                                              "node closed"));
}
