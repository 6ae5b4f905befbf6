/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger-sync.c: a new device's first history (docs/protocol.md, "Messages: history
 * for a new device"). A device whose history is empty when it is logged in asks each
 * other device of its user (`history-request`, sealed for that device alone); each
 * answers with its last conversations as `history` batches sealed for the asker alone,
 * which the asker stores with their ids, senders, sequences and times: shown in time
 * order, never unread, no receipts. A group's conversation goes with the group's state,
 * which the asker takes under the group's rules, so that it knows the group and can write
 * to it. Answers from several devices overlap and are dropped by id. Only devices of the
 * same user ask and answer (messenger-receive.c refuses the kinds from anyone else). */
#include "messenger-private.h"

#include "hark/address.h"
#include "hark/presence.h"

#include <string.h>

/* The asker fetches what the login server held for it this long after asking: an
 * answering device that did not find it online yet (its presence was being published)
 * had the answer held. Then it asks again each asked device that has sent no batch and
 * is online now, after SYNC_FETCH_S, 2 and 4 times that: a request held for a device
 * that was restarting is fetched only at that device's next fetch (every
 * MESSENGER_FETCH_S), and until an answer comes the device's new messages in a
 * conversation it wrote in before wait here for their gap. A device with nothing to
 * pass on never answers, so the rounds are few; one that did answer ignores the repeat
 * (MESSENGER_SYNC_COOLDOWN_S). */
#define SYNC_FETCH_S 5
#define SYNC_ASK_ROUNDS 3

/* ---- asking ------------------------------------------------------------------------- */

static gboolean
history_is_empty(HarkMessenger *messenger)
{
  g_autoptr(GPtrArray) list = hark_message_history_conversations(messenger->history, NULL);
  return list != NULL && list->len == 0;
}

/* The devices asked that have not answered and are online now: asked again. */
static void
ask_again_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  GHashTableIter iter;
  gpointer device, certificate;
  g_hash_table_iter_init(&iter, messenger->sync_unanswered);
  while (g_hash_table_iter_next(&iter, &device, &certificate)) {
    if (peer->online == NULL || !g_hash_table_contains(peer->online, device))
      continue; /* the request held for it serves */
    hark_messenger_send_once(messenger, peer->user, device, certificate,
                             hark_message_past_request_new());
    messenger->counters.history_requests_again++;
  }
}

static gboolean
on_sync_fetch(gpointer data)
{
  HarkMessenger *messenger = data;
  messenger->sync_source = 0;
  hark_messenger_fetch(messenger);
  g_autofree char *me_key = NULL;
  if (g_hash_table_size(messenger->sync_unanswered) == 0 ||
      messenger->sync_rounds >= SYNC_ASK_ROUNDS || !hark_messenger_whoami(messenger, NULL, &me_key))
    return G_SOURCE_REMOVE;
  messenger->sync_rounds++;
  hark_messenger_peer_forget_online(messenger, me_key); /* who is online now */
  hark_messenger_peer_online(messenger, me_key, ask_again_ready, NULL);
  messenger->sync_source = hark_clock_add_seconds(
    messenger->clock, SYNC_FETCH_S << messenger->sync_rounds, on_sync_fetch, messenger);
  return G_SOURCE_REMOVE;
}

static void
ask_devices_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  if (messenger->sync_state != MESSENGER_SYNC_ASKING)
    return;
  if (error != NULL || peer->certificates == NULL) {
    g_debug("messages: cannot ask for history: %s", error != NULL ? error->message : "no list");
    messenger->sync_state = MESSENGER_SYNC_NONE; /* the next login or attach asks again */
    return;
  }
  messenger->sync_state = MESSENGER_SYNC_DONE;
  const char *own = hark_identity_get_fingerprint(messenger->node->identity);
  guint asked = 0;
  for (guint i = 0; i < peer->certificates->len; i++) {
    const HarkLoginDeviceCertificate *c = peer->certificates->pdata[i];
    if (g_strcmp0(c->device_id, own) == 0)
      continue;
    hark_messenger_send_once(messenger, peer->user, c->device_id, c->certificate,
                             hark_message_past_request_new());
    g_hash_table_replace(messenger->sync_unanswered, g_strdup(c->device_id),
                         g_bytes_ref(c->certificate));
    asked++;
  }
  messenger->counters.history_requests += asked;
  if (asked > 0 && messenger->sync_source == 0)
    messenger->sync_source =
      hark_clock_add_seconds(messenger->clock, SYNC_FETCH_S, on_sync_fetch, messenger);
}

void
hark_messenger_sync_start(HarkMessenger *messenger)
{
  g_autofree char *me_key = NULL;
  if (messenger->history == NULL || messenger->stopping ||
      messenger->sync_state != MESSENGER_SYNC_NONE ||
      !hark_messenger_whoami(messenger, NULL, &me_key))
    return;
  if (!history_is_empty(messenger)) {
    messenger->sync_state = MESSENGER_SYNC_DONE; /* not new: it keeps its own */
    return;
  }
  messenger->sync_state = MESSENGER_SYNC_ASKING;
  hark_messenger_peer_devices(messenger, me_key, ask_devices_ready, NULL);
}

void
hark_messenger_sync_stop(HarkMessenger *messenger)
{
  hark_messenger_source_stop(messenger, &messenger->sync_source);
}

/* ---- answering ---------------------------------------------------------------------- */

/* One asking device is answered at most once in this long: a request that comes again
 * (held and fetched, or from a device that restarts empty) costs no second history. */
static gboolean
may_answer(HarkMessenger *messenger, const char *device)
{
  gint64 now = hark_clock_now_monotonic(messenger->clock) / G_USEC_PER_SEC;
  gpointer last = NULL;
  if (g_hash_table_lookup_extended(messenger->sync_answered, device, NULL, &last) &&
      now - GPOINTER_TO_SIZE(last) < MESSENGER_SYNC_COOLDOWN_S)
    return FALSE;
  if (g_hash_table_size(messenger->sync_answered) >= 1024)
    g_hash_table_remove_all(messenger->sync_answered);
  g_hash_table_replace(messenger->sync_answered, g_strdup(device), GSIZE_TO_POINTER(now));
  return TRUE;
}

/* A batch of a group's conversation carries the group's state (group; NULL for a user's
 * conversation), so that the new device learns the group from whichever batch comes first. */
static void
send_batch(HarkMessenger *messenger, const HarkEnvelope *request, GPtrArray *batch,
           const HarkMessageGroup *group)
{
  if (batch->len == 0)
    return;
  g_autoptr(GError) error = NULL;
  GVariant *inner =
    hark_message_past_group_new((HarkMessagePast *const *)batch->pdata, batch->len, group, &error);
  if (inner == NULL) { /* what the history holds passed the same checks: a bug */
    g_warning("messages: a history batch: %s", error->message);
  } else {
    hark_messenger_send_once(messenger, request->sender, request->sender_device,
                             request->certificate, inner);
    messenger->counters.history_sent++;
  }
  g_ptr_array_set_size(batch, 0);
}

/* The past message for a stored one: its strings borrowed. */
static HarkMessagePast
past_of(const HarkHistoryMessage *m)
{
  HarkMessagePast p = {
    .conversation = m->conversation,
    .sender = m->sender,
    .sender_device = m->sender_device,
    .sequence = m->sequence,
    .time = m->time,
    .text = m->text,
  };
  memcpy(p.id, m->id, HARK_MESSAGE_ID_SIZE);
  return p;
}

/* Whether the conversation's past goes to a new device, and for a group's the state it
 * goes with (*group; NULL for a user's). A group this user has left (me_key, when given,
 * is not a member) or that this device does not know is not passed on: the new device
 * could not take its messages without a state that names its user. */
static gboolean
group_to_pass(HarkMessenger *messenger, const char *conversation, const char *me_key,
              HarkMessageGroup **group)
{
  *group = NULL;
  if (!g_str_has_prefix(conversation, "g:"))
    return TRUE;
  *group = hark_message_history_group_get(messenger->history, conversation + 2, NULL);
  return *group != NULL && (me_key == NULL || hark_message_group_has(*group, me_key));
}

typedef struct {
  char *user;
  GBytes *certificate;
  gint64 until; /* monotonic s */
} MessengerFollower;

void
hark_messenger_sync_followers_free(gpointer data)
{
  MessengerFollower *follower = data;
  g_free(follower->user);
  g_bytes_unref(follower->certificate);
  g_free(follower);
}

static void
follow(HarkMessenger *messenger, const HarkEnvelope *request)
{
  MessengerFollower *follower = g_new0(MessengerFollower, 1);
  follower->user = g_strdup(request->sender);
  follower->certificate = g_bytes_ref(request->certificate);
  follower->until =
    hark_clock_now_monotonic(messenger->clock) / G_USEC_PER_SEC + MESSENGER_SYNC_FOLLOW_S;
  g_hash_table_replace(messenger->sync_followers, g_strdup(request->sender_device), follower);
}

void
hark_messenger_sync_follow(HarkMessenger *messenger, const HarkEnvelope *envelope,
                           const HarkHistoryMessage *message)
{
  gint64 now = hark_clock_now_monotonic(messenger->clock) / G_USEC_PER_SEC;
  GHashTableIter iter;
  gpointer device, value;
  g_hash_table_iter_init(&iter, messenger->sync_followers);
  while (g_hash_table_iter_next(&iter, &device, &value)) {
    MessengerFollower *follower = value;
    if (follower->until < now) {
      g_hash_table_iter_remove(&iter);
      continue;
    }
    if (hark_envelope_find_recipient((HarkEnvelope *)envelope, device) != NULL ||
        g_strcmp0(device, envelope->sender_device) == 0)
      continue;
    HarkMessagePast p = past_of(message);
    const HarkMessagePast *one = &p;
    g_autoptr(GError) error = NULL;
    g_autoptr(HarkMessageGroup) group = NULL;
    if (!group_to_pass(messenger, message->conversation, NULL, &group))
      continue;
    GVariant *inner = hark_message_past_group_new((HarkMessagePast *const *)&one, 1, group, &error);
    if (inner == NULL)
      continue;
    hark_messenger_send_once(messenger, follower->user, device, follower->certificate, inner);
    messenger->counters.history_sent++;
  }
}

void
hark_messenger_sync_answer(HarkMessenger *messenger, const HarkEnvelope *request)
{
  if (!may_answer(messenger, request->sender_device)) {
    messenger->counters.history_requests_ignored++;
    return;
  }
  follow(messenger, request);
  g_autoptr(GError) error = NULL;
  g_autofree char *me_key = NULL;
  g_autoptr(GPtrArray) conversations =
    hark_messenger_whoami(messenger, NULL, &me_key)
      ? hark_message_history_conversations(messenger->history, &error)
      : NULL;
  if (conversations == NULL) {
    g_warning("messages: cannot answer a history request: %s",
              error != NULL ? error->message : "not logged in");
    return;
  }
  /* The asker has just come online: look it up afresh rather than hold the answer. */
  hark_messenger_peer_forget_online(messenger, request->sender);
  g_autoptr(GPtrArray) batch = g_ptr_array_new_with_free_func(g_free);
  gsize bytes = 0;
  for (guint c = 0, passed = 0; c < conversations->len && passed < MESSENGER_SYNC_CONVERSATIONS;
       c++) {
    const HarkHistoryConversation *conversation = conversations->pdata[c];
    g_autoptr(HarkMessageGroup) group = NULL;
    if (!group_to_pass(messenger, conversation->key, me_key, &group))
      continue;
    passed++;
    g_autoptr(GPtrArray) messages = hark_message_history_list(messenger->history, conversation->key,
                                                              MESSENGER_SYNC_MESSAGES, NULL);
    for (guint i = 0; messages != NULL && i < messages->len; i++) {
      HarkMessagePast *p = g_new(HarkMessagePast, 1);
      *p = past_of(messages->pdata[i]);
      gsize size = hark_message_past_size(p);
      if (batch->len == HARK_MESSAGE_MAX_PAST || bytes + size > HARK_MESSAGE_PAST_BATCH_BYTES) {
        send_batch(messenger, request, batch, group);
        bytes = 0;
      }
      g_ptr_array_add(batch, p);
      bytes += size;
    }
    send_batch(messenger, request, batch, group); /* before its messages go */
    bytes = 0;
  }
}

/* ---- taking an answer ----------------------------------------------------------------- */

/* The group state a batch of a group's conversation brings: kept when this device does
 * not know the group (or has left it) and the state passes the group's rules for a state
 * from this user's own device (hark_message_group_judge_state: it names this user as a
 * member; a group this user left comes back only with its admin and a newer version). A
 * device in the group keeps its own state, as with a text's. FALSE: refused. */
static gboolean
take_group(HarkMessenger *messenger, const HarkMessageGroup *state, const char *me_key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageGroup) known =
    hark_message_history_group_get(messenger->history, state->id, &error);
  if (error == NULL && known != NULL && hark_message_group_has(known, me_key))
    return TRUE;
  g_autoptr(HarkMessageGroup) next = NULL;
  if (error != NULL ||
      hark_message_group_judge_state(known, me_key, me_key, state, &next, &error) !=
        HARK_MESSAGE_GROUP_TAKE ||
      !hark_message_history_group_put(messenger->history, next, &error)) {
    messenger->counters.history_groups_refused++;
    g_autofree char *shown = hark_text_escape(error->message, -1, 200);
    g_message("messages: refused the group %s from another device's history: %s", state->id, shown);
    return FALSE;
  }
  messenger->counters.history_groups++;
  return TRUE;
}

/* Whether p may be in this user's history at all: a conversation with a user holds only
 * that user's messages and this user's; a group's, only when this device knows the group
 * with its user a member (from the batch's state, or its own); never one this device sent
 * (it knows its own). */
static gboolean
past_fits(HarkMessenger *messenger, const HarkMessagePast *p, const char *me_key)
{
  if (g_strcmp0(p->sender_device, hark_identity_get_fingerprint(messenger->node->identity)) == 0)
    return FALSE;
  if (g_str_has_prefix(p->conversation, "g:")) {
    g_autoptr(HarkMessageGroup) group =
      hark_message_history_group_get(messenger->history, p->conversation + 2, NULL);
    return group != NULL && hark_message_group_has(group, me_key);
  }
  g_autofree char *sender_key = hark_presence_name_key(p->sender);
  return g_strcmp0(sender_key, me_key) == 0 || g_strcmp0(sender_key, p->conversation + 2) == 0;
}

void
hark_messenger_sync_take(HarkMessenger *messenger, const HarkMessageInner *inner,
                         const char *sender_device, const char *me_key)
{
  g_hash_table_remove(messenger->sync_unanswered, sender_device); /* it answered */
  if (inner->group_state != NULL && !take_group(messenger, inner->group_state, me_key)) {
    messenger->counters.history_refused += inner->past->len; /* all of that group's */
    return;
  }
  for (guint i = 0; i < inner->past->len; i++) {
    const HarkMessagePast *p = inner->past->pdata[i];
    if (!past_fits(messenger, p, me_key)) {
      messenger->counters.history_refused++;
      continue;
    }
    g_autofree char *sender_key = hark_presence_name_key(p->sender);
    gboolean out = g_strcmp0(sender_key, me_key) == 0;
    HarkHistoryMessage message = {
      .conversation = p->conversation,
      .sender = p->sender,
      .sender_device = p->sender_device,
      .sequence = p->sequence,
      .time = p->time,
      .kind = (char *)"text",
      .text = p->text,
      .direction = out ? HARK_MESSAGE_OUT : HARK_MESSAGE_IN,
    };
    memcpy(message.id, p->id, HARK_MESSAGE_ID_SIZE);
    HarkMessageHistoryAdd added;
    g_autoptr(GPtrArray) shown = NULL;
    g_autoptr(GError) error = NULL;
    if (!hark_message_history_add_past(messenger->history, &message, out ? NULL : p->sender, &added,
                                       &shown, &error)) {
      g_message("messages: cannot keep a past message: %s", error->message);
      continue;
    }
    if (added == HARK_MESSAGE_HISTORY_ADDED)
      messenger->counters.history_received++;
    /* Live messages that waited for these are new: they are shown now. */
    for (guint s = 0; shown != NULL && s < shown->len; s++)
      hark_messenger_emit_message(messenger, shown->pdata[s]);
  }
}
