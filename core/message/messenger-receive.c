/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger-receive.c: what comes in. Every envelope, from our SN or held by the login
 * server, is checked the same way: its shape, the sender's certificate and signature,
 * that it is for this user (or a copy of what this user sent), the sender's rate, a
 * duplicate by id, the replay guard, and that it opens for this device. A new message is
 * stored (shown in order, or held for a gap) before its receipt goes back, so a receipt
 * always means the message is safe here. */
#include "messenger-private.h"

#include "hark/address.h"
#include "hark/presence.h"

#include <string.h>

#define SENDER_RATE 20.0 /* envelopes a second from one sender device */
#define SENDER_BURST 200.0
#define MAX_BUCKETS 4096
#define MAX_REPLAY_CACHED 4096

static void
count_refusal(HarkMessenger *messenger, const GError *error, const char *via)
{
  MessengerCounters *c = &messenger->counters;
  switch (error->domain == HARK_MESSAGE_ERROR ? error->code : -1) {
  case HARK_MESSAGE_ERROR_FORGED:
    c->refused_forged++;
    break;
  case HARK_MESSAGE_ERROR_FOREIGN:
    c->refused_foreign++;
    break;
  case HARK_MESSAGE_ERROR_EXPIRED:
    c->refused_expired++;
    break;
  case HARK_MESSAGE_ERROR_NOT_FOR_US:
    c->refused_not_for_us++;
    break;
  case HARK_MESSAGE_ERROR_UNDECRYPTABLE:
    c->refused_undecryptable++;
    break;
  case HARK_MESSAGE_ERROR_REPLAYED:
    c->refused_replayed++;
    break;
  default:
    c->refused_malformed++;
    break;
  }
  g_autofree char *shown = hark_text_escape(error->message, -1, 200);
  g_message("messages: refused an envelope from %s: %s", via, shown);
}

static gboolean
take_token(HarkMessenger *messenger, const char *device)
{
  gint64 now = hark_clock_now_monotonic(messenger->clock);
  MessengerBucket *bucket = g_hash_table_lookup(messenger->buckets, device);
  if (bucket == NULL) {
    if (g_hash_table_size(messenger->buckets) >= MAX_BUCKETS)
      g_hash_table_remove_all(messenger->buckets); /* full buckets again: a burst each */
    bucket = g_new0(MessengerBucket, 1);
    bucket->tokens = SENDER_BURST;
    bucket->refilled_us = now;
    g_hash_table_insert(messenger->buckets, g_strdup(device), bucket);
  }
  bucket->tokens = MIN(SENDER_BURST, bucket->tokens + (double)(now - bucket->refilled_us) *
                                                        SENDER_RATE / G_USEC_PER_SEC);
  bucket->refilled_us = now;
  if (bucket->tokens < 1.0)
    return FALSE;
  bucket->tokens -= 1.0;
  return TRUE;
}

/* The sender device's replay guard, as the history keeps it. */
static HarkMessageReplay *
replay_of(HarkMessenger *messenger, const char *device)
{
  HarkMessageReplay *guard = g_hash_table_lookup(messenger->replay, device);
  if (guard != NULL)
    return guard;
  if (g_hash_table_size(messenger->replay) >= MAX_REPLAY_CACHED)
    g_hash_table_remove_all(messenger->replay);
  guard = g_new0(HarkMessageReplay, 1);
  g_autoptr(GBytes) saved = NULL;
  g_autoptr(GError) error = NULL;
  if (hark_message_history_replay_get(messenger->history, device, &saved, &error) &&
      saved != NULL && !hark_message_replay_from_bytes(guard, saved, &error))
    g_warning("messages: the replay guard of %.12s: %s (starting afresh)", device, error->message);
  g_hash_table_insert(messenger->replay, g_strdup(device), guard);
  return guard;
}

/* A stored message's counter may be older than the guard's window (it waited at the
 * login server while the sender wrote to others): its id is new here, and the history
 * keeps every id, so it is taken. A counter inside the window must not have been seen. */
static gboolean
replay_take(HarkMessenger *messenger, const HarkEnvelope *envelope, gboolean stored, GError **error)
{
  HarkMessageReplay *guard = replay_of(messenger, envelope->sender_device);
  if (stored && guard->highest >= HARK_MESSAGE_REPLAY_WINDOW &&
      envelope->counter <= guard->highest - HARK_MESSAGE_REPLAY_WINDOW)
    return TRUE;
  if (!hark_message_replay_check_and_mark(guard, envelope->counter, error))
    return FALSE;
  g_autoptr(GBytes) bytes = hark_message_replay_to_bytes(guard);
  return hark_message_history_replay_set(messenger->history, envelope->sender_device, bytes, error);
}

/* Who the message is between: it is for this user, or this user sent it from another
 * device (a copy, so the conversation shows everywhere), or it is to a group (whose
 * rules are checked once it is open). FOREIGN otherwise. */
static char *
conversation_for(const HarkEnvelope *envelope, const char *me_key, gboolean *outgoing,
                 GError **error)
{
  g_autofree char *sender_key = hark_presence_name_key(envelope->sender);
  *outgoing = g_strcmp0(sender_key, me_key) == 0;
  if (envelope->to[0] == '#')
    return g_strconcat("g:", envelope->to + 1, NULL);
  g_autofree char *to_key = hark_presence_name_key(envelope->to);
  if (*outgoing)
    return hark_messenger_conversation_of(to_key);
  if (g_strcmp0(to_key, me_key) == 0)
    return hark_messenger_conversation_of(sender_key);
  hark_message_refuse(error, HARK_MESSAGE_ERROR_FOREIGN, "envelope",
                      "it is to another user, from another user");
  return NULL;
}

/* ---- acknowledging what the login server held ------------------------------------------ */

/* One fetch's acknowledgement to the login server. A held message is acknowledged only
 * once its receipt is held there in turn: the sender does not send a held message again
 * while it is held, so its outbox entry waits for that receipt for the whole hold (30
 * days). A receipt through the SN is not enough: "delivered" there means the sender's SN
 * wrote it to the sender's link, and an SN killed a moment later (a reset loses what the
 * sender had not read yet) or a sender that dies before storing it loses it. Held, the
 * sender fetches it at its next fetch, whatever crashed. One receipt per sender device
 * and fetch (up to 256 ids): a hold is a request to the server, limited per minute. A
 * message whose receipt cannot be held stays held, comes again at the next fetch and is
 * answered again (a duplicate, dropped by id). */
typedef struct {
  MessengerOp op;
  GPtrArray *ids; /* char*: held ids to acknowledge */
  GPtrArray *receipts; /* AckOwed*: collected while the fetch's loop runs */
  guint waiting; /* receipts not held yet, and 1 while the fetch's loop runs */
} AckBatch;

/* The receipt owed to one sender device for the held messages of a fetch. */
typedef struct {
  AckBatch *batch;
  char *sender; /* user */
  char *sender_device;
  GBytes *certificate;
  GArray *message_ids; /* guint8[HARK_MESSAGE_ID_SIZE] each */
  GPtrArray *held_ids; /* char*: the login server's ids of those messages */
} AckOwed;

static void ack_batch_release(AckBatch *batch);

static void
ack_owed_free(AckOwed *owed)
{
  g_free(owed->sender);
  g_free(owed->sender_device);
  g_bytes_unref(owed->certificate);
  g_array_unref(owed->message_ids);
  g_ptr_array_unref(owed->held_ids);
  g_free(owed);
}

/* The receipt for sender device's messages in batch, with room for one more id. */
static AckOwed *
ack_owed_for(AckBatch *batch, const HarkEnvelope *envelope)
{
  for (guint i = batch->receipts->len; i > 0; i--) {
    AckOwed *owed = batch->receipts->pdata[i - 1];
    if (strcmp(owed->sender_device, envelope->sender_device) == 0 &&
        owed->message_ids->len < HARK_MESSAGE_MAX_RECEIPT_IDS)
      return owed;
  }
  AckOwed *owed = g_new0(AckOwed, 1);
  owed->batch = batch;
  owed->sender = g_strdup(envelope->sender);
  owed->sender_device = g_strdup(envelope->sender_device);
  owed->certificate = g_bytes_ref(envelope->certificate);
  owed->message_ids = g_array_new(FALSE, FALSE, HARK_MESSAGE_ID_SIZE);
  owed->held_ids = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(batch->receipts, owed);
  return owed;
}

static void
receipt_handed(gpointer data, gboolean handed_on)
{
  AckOwed *owed = data;
  AckBatch *batch = owed->batch;
  for (guint i = 0; handed_on && i < owed->held_ids->len; i++)
    g_ptr_array_add(batch->ids, g_strdup(owed->held_ids->pdata[i]));
  ack_owed_free(owed);
  ack_batch_release(batch);
}

/* The fetch's receipts, each held for its sender device. */
static void
ack_batch_send(HarkMessenger *messenger, AckBatch *batch)
{
  g_autoptr(GPtrArray) receipts = g_steal_pointer(&batch->receipts);
  batch->waiting += receipts->len;
  for (guint i = 0; i < receipts->len; i++) {
    AckOwed *owed = receipts->pdata[i];
    g_autoptr(GError) error = NULL;
    GVariant *receipt = hark_message_receipt_new(
      (const guint8(*)[HARK_MESSAGE_ID_SIZE])(gpointer)owed->message_ids->data,
      owed->message_ids->len, "delivered", &error);
    if (receipt == NULL) {
      receipt_handed(owed, FALSE);
      continue;
    }
    hark_messenger_hold_once_then(messenger, owed->sender, owed->sender_device, owed->certificate,
                                  receipt, receipt_handed, owed);
  }
}

static void
acknowledge(HarkMessenger *messenger, const HarkEnvelope *envelope, const char *state)
{
  if (messenger->acking != NULL && messenger->acking_id != NULL) { /* a held message's */
    AckOwed *owed = ack_owed_for(messenger->acking, envelope);
    g_array_append_vals(owed->message_ids, envelope->id, 1);
    g_ptr_array_add(owed->held_ids, g_strdup(messenger->acking_id));
    messenger->acking_id = NULL; /* owed now: the fetch does not acknowledge it itself */
    return;
  }
  g_autoptr(GError) error = NULL;
  const guint8(*ids)[HARK_MESSAGE_ID_SIZE] = (const guint8(*)[HARK_MESSAGE_ID_SIZE])envelope->id;
  GVariant *receipt = hark_message_receipt_new(ids, 1, state, &error);
  if (receipt != NULL)
    hark_messenger_send_once(messenger, envelope->sender, envelope->sender_device,
                             envelope->certificate, receipt);
}

/* Stores a message (a text, or what a group change says) and, for a change, the group's
 * new state, with the replay guard's step: all or nothing. */
static gboolean
take_text(HarkMessenger *messenger, const HarkEnvelope *envelope, const HarkMessageInner *inner,
          const char *conversation, gboolean outgoing, const char *text,
          const HarkMessageGroup *group, GError **error)
{
  HarkHistoryMessage message = {
    .conversation = (char *)conversation,
    .sender = envelope->sender,
    .sender_device = envelope->sender_device,
    .sequence = envelope->sequence,
    .time = envelope->time,
    .kind = inner->kind_name,
    .text = (char *)text,
    .direction = outgoing ? HARK_MESSAGE_OUT : HARK_MESSAGE_IN,
  };
  memcpy(message.id, envelope->id, HARK_MESSAGE_ID_SIZE);
  HarkMessageHistoryAdd added;
  g_autoptr(GPtrArray) shown = NULL;
  g_autofree char *title = group != NULL ? g_strdup(group->name)
                           : outgoing    ? g_strdup(envelope->to)
                                         : g_strdup(envelope->sender);
  if (!hark_message_history_begin(messenger->history, error))
    return FALSE;
  if (!replay_take(messenger, envelope, TRUE, error) ||
      (group != NULL && !hark_message_history_group_put(messenger->history, group, error)) ||
      !hark_message_history_add(messenger->history, &message, title, &added, &shown, error) ||
      !hark_message_history_commit(messenger->history, error)) {
    hark_message_history_rollback(messenger->history);
    g_hash_table_remove(messenger->replay, envelope->sender_device); /* reload: rolled back */
    return FALSE;
  }
  if (inner->kind == HARK_MESSAGE_KIND_TEXT)
    messenger->counters.received++;
  for (guint i = 0; shown != NULL && i < shown->len; i++)
    hark_messenger_emit_message(messenger, shown->pdata[i]);
  hark_messenger_sync_follow(messenger, envelope, &message);
  return TRUE;
}

static void
take_receipt(HarkMessenger *messenger, const HarkEnvelope *envelope, const HarkMessageInner *inner)
{
  const char *own = hark_identity_get_fingerprint(messenger->node->identity);
  HarkMessageState state =
    g_strcmp0(inner->state, "read") == 0 ? HARK_MESSAGE_STATE_READ : HARK_MESSAGE_STATE_DELIVERED;
  messenger->counters.receipts++;
  for (guint i = 0; i < inner->ids->len; i++) {
    const guint8 *id = g_bytes_get_data(inner->ids->pdata[i], NULL);
    /* Only for what this device sent; the receipt's sender is a device it sealed for
     * (no other device can have read the id). */
    g_autoptr(HarkHistoryMessage) sent =
      hark_message_history_get(messenger->history, own, id, NULL);
    if (sent == NULL)
      continue;
    gboolean changed = FALSE;
    hark_message_history_outbox_done(messenger->history, id, envelope->sender_device, NULL, NULL);
    if (hark_message_history_set_state(messenger->history, id, envelope->sender_device, state,
                                       &changed, NULL) &&
        changed)
      hark_messenger_emit_state(messenger, id, envelope->sender_device,
                                hark_messenger_state_name(state));
  }
}

static void
take_typing(HarkMessenger *messenger, const HarkEnvelope *envelope, const HarkMessageInner *inner,
            gboolean outgoing)
{
  messenger->counters.typing_received++;
  if (!messenger->typing_enabled || outgoing)
    return;
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "from", envelope->sender);
  json_object_set_string_member(o, "device", envelope->sender_device);
  json_object_set_boolean_member(o, "typing", inner->on);
  hark_context_emit(messenger->ctx, "typing", o);
}

/* A message to a group: only from a member of a group this device is in (its state as
 * this device has it), or with a state this device may take (from its own user or the
 * group's admin, when it does not know the group: message-group.h). *take: that state,
 * to keep with the message. */
static gboolean
group_allows_text(HarkMessenger *messenger, const HarkEnvelope *envelope,
                  const HarkMessageInner *inner, const char *me_key, HarkMessageGroup **take,
                  GError **error)
{
  *take = NULL;
  g_autofree char *sender_key = hark_presence_name_key(envelope->sender);
  g_autoptr(HarkMessageGroup) known =
    hark_message_history_group_get(messenger->history, envelope->to + 1, NULL);
  if (known != NULL && hark_message_group_has(known, me_key)) {
    if (hark_message_group_has(known, sender_key))
      return TRUE;
    return hark_message_refuse(error, HARK_MESSAGE_ERROR_NOT_ALLOWED, "group message",
                               "its sender is not a member");
  }
  if (inner->group_state == NULL || strcmp(inner->group_state->id, envelope->to + 1) != 0)
    return hark_message_refuse(error, HARK_MESSAGE_ERROR_NOT_ALLOWED, "group message",
                               "to a group this user is not in");
  return hark_message_group_judge_state(known, me_key, sender_key, inner->group_state, take,
                                        error) == HARK_MESSAGE_GROUP_TAKE;
}

/* A membership change: the group's rules (message-group.c) against what this device
 * knows; *next is the state to keep when it is taken. */
static HarkMessageGroupVerdict
group_judge(HarkMessenger *messenger, const HarkEnvelope *envelope, const HarkMessageInner *inner,
            const char *me_key, HarkMessageGroup **next, GError **error)
{
  *next = NULL;
  if (envelope->to[0] != '#' || strcmp(envelope->to + 1, inner->group->group->id) != 0) {
    hark_message_refuse(error, HARK_MESSAGE_ERROR_MALFORMED, "group change",
                        "its envelope is not to the group it changes");
    return HARK_MESSAGE_GROUP_REFUSE;
  }
  g_autoptr(GError) local = NULL;
  g_autoptr(HarkMessageGroup) known =
    hark_message_history_group_get(messenger->history, inner->group->group->id, &local);
  if (local != NULL) { /* the disk: let it come again */
    g_propagate_error(error, g_steal_pointer(&local));
    return HARK_MESSAGE_GROUP_LATER;
  }
  g_autofree char *sender_key = hark_presence_name_key(envelope->sender);
  return hark_message_group_judge(known, me_key, sender_key, inner->group, next, error);
}

static void
count_group_refusal(HarkMessenger *messenger, guint64 *counter, const GError *error,
                    const HarkEnvelope *envelope, const char *via)
{
  (*counter)++;
  g_autofree char *shown = hark_text_escape(error->message, -1, 200);
  g_autofree char *sender = hark_text_escape(envelope->sender, -1, 40);
  g_message("messages: refused %s's envelope to %s from %s: %s", sender, envelope->to, via, shown);
}

/* Every check before a key is used, then open. NULL (and why) when refused. */
static HarkEnvelope *
check_envelope(HarkMessenger *messenger, GBytes *bytes, GError **error)
{
  g_autoptr(HarkEnvelope) envelope = hark_envelope_parse(bytes, error);
  if (envelope == NULL)
    return NULL;
  if (!hark_envelope_verify(envelope, hark_login_client_ca_pem(messenger->login),
                            hark_messenger_now(messenger), error))
    return NULL;
  if (hark_envelope_find_recipient(
        envelope, hark_identity_get_fingerprint(messenger->node->identity)) == NULL) {
    hark_message_refuse(error, HARK_MESSAGE_ERROR_NOT_FOR_US, "envelope",
                        "this device is not among its recipients");
    return NULL;
  }
  return g_steal_pointer(&envelope);
}

/* A text or a group change, opened: the group's rules, then kept and acknowledged. */
static MessengerTaken
take_message(HarkMessenger *messenger, const HarkEnvelope *envelope, const HarkMessageInner *inner,
             const char *conversation, gboolean outgoing, const char *me_key, const char *via)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageGroup) group = NULL;
  g_autofree char *text = NULL;
  gboolean to_group = envelope->to[0] == '#';
  if (inner->kind == HARK_MESSAGE_KIND_GROUP) {
    switch (group_judge(messenger, envelope, inner, me_key, &group, &error)) {
    case HARK_MESSAGE_GROUP_REFUSE:
      count_group_refusal(messenger, &messenger->counters.refused_group, error, envelope, via);
      return MESSENGER_REFUSED;
    case HARK_MESSAGE_GROUP_LATER: /* an earlier change is on its way: not acknowledged */
      return MESSENGER_LATER;
    case HARK_MESSAGE_GROUP_TAKE:
      break;
    }
    g_autofree char *sender_key = hark_presence_name_key(envelope->sender);
    text = hark_message_group_describe(sender_key, inner->group);
  } else if (to_group && !group_allows_text(messenger, envelope, inner, me_key, &group, &error)) {
    count_group_refusal(messenger, &messenger->counters.refused_not_member, error, envelope, via);
    return MESSENGER_REFUSED;
  }
  const HarkMessageGroup *changed = group; /* a change's, or a state a text brought */
  if (!take_text(messenger, envelope, inner, conversation, outgoing,
                 text != NULL ? text : inner->text, changed, &error)) {
    if (error->domain == HARK_MESSAGE_ERROR)
      count_refusal(messenger, error, via);
    else /* the disk, or too much held: not acknowledged, so it comes again */
      g_message("messages: cannot keep a message from %s: %s", via, error->message);
    return error->domain == HARK_MESSAGE_ERROR ? MESSENGER_REFUSED : MESSENGER_LATER;
  }
  if (changed != NULL && inner->kind == HARK_MESSAGE_KIND_GROUP)
    messenger->counters.group_changes++;
  else if (changed != NULL)
    messenger->counters.group_states++;
  acknowledge(messenger, envelope, "delivered");
  return MESSENGER_TAKEN;
}

static MessengerTaken
refuse_signal(HarkMessenger *messenger, const HarkEnvelope *envelope, const char *via,
              const char *why)
{
  messenger->counters.signals_refused++;
  g_autofree char *sender = hark_text_escape(envelope->sender, -1, 64);
  g_message("messages: refused a signal from %s (%.12s) from %s: %s", sender,
            envelope->sender_device, via, why);
  return MESSENGER_REFUSED;
}

/* A signal is worth something only now and only straight from the sender: one the login
 * server hands out (it never should hold one) or one sealed more than a minute ago is
 * dropped, and the replay guard takes each counter once. */
static MessengerTaken
take_signal(HarkMessenger *messenger, const HarkEnvelope *envelope, const HarkMessageInner *inner,
            const char *via)
{
  if (strcmp(via, MESSENGER_VIA_LOGIN) == 0)
    return refuse_signal(messenger, envelope, via, "a signal is never held");
  gint64 age = hark_messenger_now(messenger) - envelope->time;
  if (age > HARK_MESSAGE_MAX_SIGNAL_AGE_S) {
    g_autofree char *why = g_strdup_printf("sealed %" G_GINT64_FORMAT " s ago (at most %d)", age,
                                           HARK_MESSAGE_MAX_SIGNAL_AGE_S);
    return refuse_signal(messenger, envelope, via, why);
  }
  g_autoptr(GError) error = NULL;
  if (!replay_take(messenger, envelope, FALSE, &error)) {
    count_refusal(messenger, error, via);
    messenger->counters.signals_refused++;
    return MESSENGER_REFUSED;
  }
  hark_messenger_signal_deliver(messenger, envelope, inner, via);
  return MESSENGER_TAKEN;
}

MessengerTaken
hark_messenger_take(HarkMessenger *messenger, GBytes *bytes, const char *via)
{
  g_autofree char *me_key = NULL;
  if (messenger->history == NULL || messenger->stopping ||
      !hark_messenger_whoami(messenger, NULL, &me_key))
    return MESSENGER_REFUSED;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkEnvelope) envelope = check_envelope(messenger, bytes, &error);
  gboolean outgoing = FALSE;
  g_autofree char *conversation =
    envelope != NULL ? conversation_for(envelope, me_key, &outgoing, &error) : NULL;
  if (conversation == NULL) {
    count_refusal(messenger, error, via);
    return MESSENGER_REFUSED;
  }
  if (!take_token(messenger, envelope->sender_device)) {
    messenger->counters.refused_rate++;
    return MESSENGER_LATER;
  }
  hark_messenger_remember_certificate(messenger, envelope->sender_device, envelope->certificate);
  g_autoptr(HarkHistoryMessage) had =
    hark_message_history_get(messenger->history, envelope->sender_device, envelope->id, NULL);
  if (had != NULL) { /* a retry after a lost receipt, or a replay: acknowledged again */
    messenger->counters.duplicates++;
    acknowledge(messenger, envelope, "delivered");
    return MESSENGER_DUPLICATE;
  }
  g_autoptr(GVariant) plain = hark_envelope_open(envelope, messenger->node->identity, &error);
  g_autoptr(HarkMessageInner) inner =
    plain != NULL ? hark_message_inner_parse(plain, &error) : NULL;
  if (inner == NULL) {
    count_refusal(messenger, error, via);
    return MESSENGER_REFUSED;
  }
  switch (inner->kind) {
  case HARK_MESSAGE_KIND_GROUP:
  case HARK_MESSAGE_KIND_TEXT:
    return take_message(messenger, envelope, inner, conversation, outgoing, me_key, via);
  case HARK_MESSAGE_KIND_RECEIPT:
  case HARK_MESSAGE_KIND_TYPING:
    if (!replay_take(messenger, envelope, FALSE, &error)) {
      count_refusal(messenger, error, via);
      return MESSENGER_REFUSED;
    }
    if (inner->kind == HARK_MESSAGE_KIND_RECEIPT)
      take_receipt(messenger, envelope, inner);
    else
      take_typing(messenger, envelope, inner, outgoing);
    return MESSENGER_TAKEN;
  case HARK_MESSAGE_KIND_HISTORY_REQUEST:
  case HARK_MESSAGE_KIND_HISTORY:
    /* Only this user's devices ask for its history and answer: another user's would
     * read our conversations, or write into them. */
    if (!outgoing) {
      messenger->counters.refused_history++;
      g_autofree char *sender = hark_text_escape(envelope->sender, -1, 64);
      g_message("messages: refused a %s envelope from another user (%s) from %s", inner->kind_name,
                sender, via);
      return MESSENGER_REFUSED;
    }
    if (!replay_take(messenger, envelope, FALSE, &error)) {
      count_refusal(messenger, error, via);
      return MESSENGER_REFUSED;
    }
    if (inner->kind == HARK_MESSAGE_KIND_HISTORY_REQUEST)
      hark_messenger_sync_answer(messenger, envelope);
    else
      hark_messenger_sync_take(messenger, inner, envelope->sender_device, me_key);
    return MESSENGER_TAKEN;
  case HARK_MESSAGE_KIND_SIGNAL:
    return take_signal(messenger, envelope, inner, via);
  default: /* a newer sender's kind: nothing to do with it */
    return MESSENGER_TAKEN;
  }
}

/* ---- what the login server held for this device ------------------------------------ */

typedef struct {
  MessengerOp op;
} FetchJob;

static void fetch_now(HarkMessenger *messenger);

static gboolean
on_fetch_timer(gpointer data)
{
  HarkMessenger *messenger = data;
  messenger->fetch_source = 0;
  fetch_now(messenger);
  return G_SOURCE_REMOVE;
}

static void
fetch_done(HarkMessenger *messenger, gboolean again)
{
  messenger->fetching = FALSE;
  if (messenger->stopping)
    return;
  if (again || messenger->fetch_again) {
    messenger->fetch_again = FALSE;
    fetch_now(messenger);
    return;
  }
  /* The gaps that never filled are given up on the same beat. */
  g_autoptr(GPtrArray) released = NULL;
  if (messenger->history != NULL && hark_message_history_release_held(
                                      messenger->history, MESSENGER_GAP_GIVE_UP_S, &released, NULL))
    for (guint i = 0; i < released->len; i++)
      hark_messenger_emit_message(messenger, released->pdata[i]);
  if (messenger->fetch_source == 0)
    messenger->fetch_source =
      hark_clock_add_seconds(messenger->clock, MESSENGER_FETCH_S, on_fetch_timer, messenger);
}

static void
acked(GObject *source, GAsyncResult *result, gpointer data)
{
  FetchJob *job = data;
  g_autoptr(GError) error = NULL;
  gint64 deleted = hark_login_client_ack_messages_finish(result, &error);
  HarkMessenger *messenger = hark_messenger_op_end(job);
  g_free(job);
  if (messenger == NULL)
    return;
  if (deleted < 0) /* they come again at the next fetch: duplicates, dropped by id */
    g_message("messages: the login server did not take the acknowledgement: %s", error->message);
  fetch_done(messenger, FALSE);
}

static void
ack_batch_release(AckBatch *batch)
{
  if (--batch->waiting > 0)
    return;
  HarkMessenger *messenger = hark_messenger_op_end(batch);
  g_autoptr(GPtrArray) ids = g_steal_pointer(&batch->ids);
  g_free(batch);
  if (messenger == NULL || messenger->stopping)
    return;
  if (ids->len == 0) {
    fetch_done(messenger, FALSE);
    return;
  }
  g_ptr_array_add(ids, NULL);
  FetchJob *ack = hark_messenger_op_new(messenger, sizeof(FetchJob));
  hark_login_client_ack_messages_async(messenger->login, (const char *const *)ids->pdata,
                                       messenger->cancellable, acked, ack);
}

static void
fetched(GObject *source, GAsyncResult *result, gpointer data)
{
  FetchJob *job = data;
  g_autoptr(GError) error = NULL;
  gboolean more = FALSE;
  g_autoptr(GPtrArray) held = hark_login_client_fetch_messages_finish(result, &more, &error);
  HarkMessenger *messenger = hark_messenger_op_end(job);
  g_free(job);
  if (messenger == NULL || messenger->stopping)
    return;
  if (held == NULL) {
    g_debug("messages: fetching what the login server holds: %s", error->message);
    fetch_done(messenger, FALSE);
    return;
  }
  /* Each is taken (or refused for good) before it is acknowledged: refused ones too, or
   * they would come back at every fetch. One that cannot be kept now stays held, and so
   * does one whose receipt finds no way out (see AckBatch). */
  AckBatch *batch = hark_messenger_op_new(messenger, sizeof(AckBatch));
  batch->ids = g_ptr_array_new_with_free_func(g_free);
  batch->receipts = g_ptr_array_new();
  batch->waiting = 1;
  guint taken = 0;
  for (guint i = 0; i < held->len; i++) {
    const HarkLoginHeldMessage *m = held->pdata[i];
    messenger->counters.fetched++;
    messenger->acking = batch;
    messenger->acking_id = m->id;
    gboolean later = hark_messenger_take(messenger, m->envelope, MESSENGER_VIA_LOGIN) ==
                     MESSENGER_LATER;
    if (!later && messenger->acking_id != NULL) /* nothing to answer: done with it */
      g_ptr_array_add(batch->ids, g_strdup(m->id));
    taken += !later;
    messenger->acking = NULL;
    messenger->acking_id = NULL;
  }
  messenger->fetch_again = messenger->fetch_again || (more && taken > 0);
  ack_batch_send(messenger, batch);
  ack_batch_release(batch);
}

static void
fetch_now(HarkMessenger *messenger)
{
  if (messenger->history == NULL || messenger->stopping ||
      !hark_messenger_whoami(messenger, NULL, NULL))
    return;
  if (messenger->fetching) {
    messenger->fetch_again = TRUE;
    return;
  }
  messenger->fetching = TRUE;
  FetchJob *job = hark_messenger_op_new(messenger, sizeof(FetchJob));
  hark_login_client_fetch_messages_async(messenger->login, messenger->cancellable, fetched, job);
}

void
hark_messenger_fetch(HarkMessenger *messenger)
{
  hark_messenger_fetch_stop(messenger);
  fetch_now(messenger);
}

void
hark_messenger_fetch_stop(HarkMessenger *messenger)
{
  hark_messenger_source_stop(messenger, &messenger->fetch_source);
}
