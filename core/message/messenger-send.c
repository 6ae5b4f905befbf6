/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger-send.c: sending. A message is sealed once for every device that is to read
 * it, stored with one outbox entry per device in one transaction, then each entry is
 * tried: to the device's SN when it is online, else to the login server to hold. An
 * entry stays until that device's receipt comes (or it expires), so a message is never
 * lost to a crash, a dead link or a device that stays away. */
#include "messenger-private.h"

#include "hark/certificate.h"
#include "hark/presence.h"

#include <string.h>

/* ---- sealing ------------------------------------------------------------------------- */

typedef struct {
  MessengerOp op;
  char *to; /* as asked: a user, or "#" and a group id */
  char *envelope_to; /* the envelope's `to`: the canonical user, or "#" and the id */
  char *conversation;
  char *title; /* the conversation's, when it is new: the user, or the group's name */
  GPtrArray *users; /* canonical, once each: whose devices are sealed for (this user's too) */
  GVariant *inner;
  char *text; /* what the history shows for a group change (else the inner's text) */
  HarkMessageGroup *group_after; /* a group change: the state kept with the message */
  MessengerSent done;
  gpointer data;
  guint waiting; /* peers whose certificates are still to come */
  GError *error;
} SendJob;

static void
send_job_free(SendJob *job)
{
  g_free(job->to);
  g_free(job->envelope_to);
  g_free(job->conversation);
  g_free(job->title);
  g_ptr_array_unref(job->users);
  g_variant_unref(job->inner);
  g_free(job->text);
  hark_message_group_free(job->group_after);
  g_clear_error(&job->error);
  g_free(job);
}

static void
add_user(GPtrArray *users, const char *user)
{
  for (guint i = 0; i < users->len; i++)
    if (strcmp(users->pdata[i], user) == 0)
      return;
  g_ptr_array_add(users, g_strdup(user));
}

/* The certificates of the recipients: every device of every user of the job (the
 * addressee or the group's members, and this user) but this one; FALSE when there are
 * more than an envelope takes. */
static gboolean
recipients_of(HarkMessenger *messenger, SendJob *job, GArray *recipients, GPtrArray *owners,
              GError **error)
{
  const char *own = hark_identity_get_fingerprint(messenger->node->identity);
  for (guint u = 0; u < job->users->len; u++) {
    MessengerPeer *peer = g_hash_table_lookup(messenger->peers, job->users->pdata[u]);
    for (guint i = 0; peer != NULL && peer->certificates != NULL && i < peer->certificates->len;
         i++) {
      const HarkLoginDeviceCertificate *c = peer->certificates->pdata[i];
      if (g_strcmp0(c->device_id, own) == 0)
        continue;
      if (recipients->len >= HARK_MESSAGE_MAX_RECIPIENTS) {
        g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                    "%s has more than %d devices to write to", job->to,
                    HARK_MESSAGE_MAX_RECIPIENTS);
        return FALSE;
      }
      HarkMessageRecipient r = { .recipient_device = c->device_id, .certificate = c->certificate };
      g_array_append_val(recipients, r);
      g_ptr_array_add(owners, peer->user);
    }
  }
  return TRUE;
}

static GBytes *
seal(HarkMessenger *messenger, const char *to, guint64 sequence, guint64 counter, GVariant *inner,
     const HarkMessageRecipient *recipients, guint n, GError **error)
{
  g_autofree char *me = NULL;
  if (!hark_messenger_whoami(messenger, &me, NULL)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "not logged in");
    return NULL;
  }
  HarkMessageSealParams params = {
    .identity = messenger->node->identity,
    .certificate = hark_login_client_certificate_der(messenger->login),
    .sender = me,
    .ca_pem = hark_login_client_ca_pem(messenger->login),
    .to = to,
    .sequence = sequence,
    .counter = counter,
    .time = hark_messenger_now(messenger),
    .inner = inner,
    .recipients = recipients,
    .n_recipients = n,
  };
  return hark_message_seal(&params, error);
}

/* Sequence, counter, seal, the history and the outbox: all or nothing. */
static gboolean
store_sealed(HarkMessenger *messenger, SendJob *job, JsonObject *answer, GError **error)
{
  HarkMessageHistory *history = messenger->history;
  const char *own = hark_identity_get_fingerprint(messenger->node->identity);
  g_autoptr(GPtrArray) owners = g_ptr_array_new();
  g_autoptr(GArray) recipients = g_array_new(FALSE, TRUE, sizeof(HarkMessageRecipient));
  if (!recipients_of(messenger, job, recipients, owners, error))
    return FALSE;
  if (recipients->len == 0) {
    g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                "%s has no device to write to (never logged in, or does not take messages "
                "from you)",
                job->to);
    return FALSE;
  }
  const char *conversation = job->conversation;
  if (!hark_message_history_begin(history, error))
    return FALSE;
  guint64 sequence = hark_message_history_take_sequence(history, conversation, own, error);
  guint64 counter = sequence != 0 ? hark_message_history_take_counter(history, own, error) : 0;
  g_autoptr(GBytes) envelope =
    counter != 0 ? seal(messenger, job->envelope_to, sequence, counter, job->inner,
                        (HarkMessageRecipient *)recipients->data, recipients->len, error)
                 : NULL;
  g_autoptr(HarkEnvelope) parsed = envelope != NULL ? hark_envelope_parse(envelope, error) : NULL;
  g_autoptr(HarkMessageInner) inner =
    parsed != NULL ? hark_message_inner_parse(job->inner, error) : NULL;
  gboolean ok = inner != NULL;
  g_autofree char *me = NULL;
  HarkHistoryMessage message = { 0 };
  if (ok) {
    hark_messenger_whoami(messenger, &me, NULL);
    message = (HarkHistoryMessage){
      .conversation = (char *)conversation,
      .sender = me,
      .sender_device = (char *)own,
      .sequence = sequence,
      .time = parsed->time,
      .kind = inner->kind_name,
      .text = job->text != NULL ? job->text : inner->text,
      .direction = HARK_MESSAGE_OUT,
    };
    memcpy(message.id, parsed->id, HARK_MESSAGE_ID_SIZE);
    HarkMessageHistoryAdd added;
    ok = (job->group_after == NULL ||
          hark_message_history_group_put(history, job->group_after, error)) &&
         hark_message_history_add(history, &message, job->title, &added, NULL, error);
    for (guint i = 0; ok && i < recipients->len; i++) {
      const HarkMessageRecipient *r = &g_array_index(recipients, HarkMessageRecipient, i);
      ok = hark_message_history_outbox_add(history, parsed->id, r->recipient_device,
                                           owners->pdata[i], envelope, 0, error);
    }
  }
  if (!ok || !hark_message_history_commit(history, error)) {
    hark_message_history_rollback(history);
    return FALSE;
  }
  hark_messenger_sync_follow(messenger, parsed, &message);
  g_autofree char *id = hark_messenger_id_hex(parsed->id);
  json_object_set_string_member(answer, "id", id);
  json_object_set_string_member(answer, "to", job->to);
  json_object_set_string_member(answer, "conversation", conversation);
  json_object_set_int_member(answer, "sequence", (gint64)sequence);
  json_object_set_int_member(answer, "devices", recipients->len);
  json_object_set_int_member(answer, "bytes", (gint64)g_bytes_get_size(envelope));
  messenger->counters.sent++;
  return TRUE;
}

static void
send_job_finish(HarkMessenger *messenger, SendJob *job)
{
  g_autoptr(GError) error = job->error != NULL ? g_steal_pointer(&job->error) : NULL;
  JsonObject *answer = NULL;
  if (error == NULL) {
    answer = json_object_new();
    if (!store_sealed(messenger, job, answer, &error))
      g_clear_pointer(&answer, json_object_unref);
  }
  job->done(messenger, answer, g_steal_pointer(&error), job->data);
  send_job_free(job);
  hark_messenger_pump_soon(messenger);
}

static void
devices_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  SendJob *job = data;
  if (error != NULL && job->error == NULL) {
    job->error = g_error_copy(error);
    g_prefix_error(&job->error, "the devices of %s: ", peer->user);
  }
  if (--job->waiting > 0)
    return;
  hark_messenger_op_end(job);
  send_job_finish(messenger, job);
}

/* Asks for the certificates of every user of the job; the job goes on when all came. */
static void
send_job_start(HarkMessenger *messenger, SendJob *job)
{
  job->waiting = job->users->len;
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < job->users->len; i++)
    g_ptr_array_add(users, g_strdup(job->users->pdata[i]));
  /* They may answer at once (fresh): the job may be gone after the last call. A device
   * that has just logged in is sealed for from the next message (..._current). */
  for (guint i = 0; i < users->len; i++)
    hark_messenger_peer_devices_current(messenger, users->pdata[i], devices_ready, job);
}

static SendJob *
send_job_new(HarkMessenger *messenger, const char *to, GVariant *inner, MessengerSent done,
             gpointer data)
{
  SendJob *job = hark_messenger_op_new(messenger, sizeof(SendJob));
  job->to = g_strdup(to);
  job->users = g_ptr_array_new_with_free_func(g_free);
  job->inner = g_variant_ref_sink(inner);
  job->done = done;
  job->data = data;
  return job;
}

/* Why a message cannot be sent now (messages off, logged out), or NULL; *me_key then. */
static GError *
cannot_send(HarkMessenger *messenger, char **me_key)
{
  if (messenger->history == NULL)
    return g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED, "messages are off: %s",
                       messenger->history_error);
  if (!hark_messenger_whoami(messenger, NULL, me_key))
    return g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                               "not logged in (`login USER`)");
  return NULL;
}

/* The group of a `#id` addressee that this user is a member of, or NULL and why. */
static HarkMessageGroup *
group_to_write(HarkMessenger *messenger, const char *to, const char *me_key, GError **error)
{
  g_autoptr(GError) local = NULL;
  HarkMessageGroup *group = hark_message_group_id_is_valid(to + 1)
                              ? hark_message_history_group_get(messenger->history, to + 1, &local)
                              : NULL;
  if (group == NULL || !hark_message_group_has(group, me_key)) {
    g_set_error(error, HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                "'%s' is not a group you are a member of", to);
    hark_message_group_free(group);
    return NULL;
  }
  return group;
}

void
hark_messenger_send(HarkMessenger *messenger, const char *to, GVariant *inner, MessengerSent done,
                    gpointer data)
{
  g_autofree char *me_key = NULL;
  GError *error = cannot_send(messenger, &me_key);
  g_autoptr(HarkMessageGroup) group = NULL;
  if (error == NULL && to[0] == '#')
    group = group_to_write(messenger, to, me_key, &error);
  else if (error == NULL && !hark_presence_name_is_valid(to))
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "'%s' is not a user name", to);
  if (error != NULL) {
    g_variant_unref(g_variant_ref_sink(inner));
    done(messenger, NULL, error, data);
    return;
  }
  SendJob *job = send_job_new(messenger, to, inner, done, data);
  if (group != NULL) {
    job->envelope_to = g_strconcat("#", group->id, NULL);
    job->conversation = g_strconcat("g:", group->id, NULL);
    job->title = g_strdup(group->name);
    for (guint i = 0; i < group->members->len; i++)
      add_user(job->users, group->members->pdata[i]);
  } else {
    job->envelope_to = hark_presence_name_key(to);
    job->conversation = hark_messenger_conversation_of(to);
    job->title = g_strdup(to);
    add_user(job->users, job->envelope_to);
  }
  add_user(job->users, me_key);
  send_job_start(messenger, job);
}

void
hark_messenger_send_change(HarkMessenger *messenger, const HarkMessageGroup *before,
                           const HarkMessageGroupChange *change, HarkMessageGroup *after,
                           MessengerSent done, gpointer data)
{
  g_autoptr(HarkMessageGroup) owned_after = after;
  g_autofree char *me_key = NULL;
  GError *error = cannot_send(messenger, &me_key);
  if (error != NULL) {
    done(messenger, NULL, error, data);
    return;
  }
  g_autofree char *to = g_strconcat("#", change->group->id, NULL);
  SendJob *job = send_job_new(messenger, to, hark_message_group_change_new(change), done, data);
  job->envelope_to = g_strdup(to);
  job->conversation = g_strconcat("g:", change->group->id, NULL);
  job->title = g_strdup(owned_after->name);
  job->text = hark_message_group_describe(me_key, change);
  job->group_after = g_steal_pointer(&owned_after);
  /* Who was a member and who is one now: a removed or leaving user hears of it too. */
  for (guint i = 0; before != NULL && i < before->members->len; i++)
    add_user(job->users, before->members->pdata[i]);
  for (guint i = 0; i < job->group_after->members->len; i++)
    add_user(job->users, job->group_after->members->pdata[i]);
  add_user(job->users, me_key);
  send_job_start(messenger, job);
}

/* ---- sealed once, sent once: receipts and typing --------------------------------------- */

GBytes *
hark_messenger_seal_note(HarkMessenger *messenger, const char *to, GVariant *inner,
                         const HarkMessageRecipient *recipients, guint n, GError **error)
{
  const char *own = hark_identity_get_fingerprint(messenger->node->identity);
  guint64 counter = hark_message_history_take_counter(messenger->history, own, error);
  /* Not shown, so not ordered: every receipt, typing note and signal has sequence 1. */
  return counter != 0 ? seal(messenger, to, 1, counter, inner, recipients, n, error) : NULL;
}

typedef struct {
  MessengerOp op;
  char *device;
  GBytes *envelope;
  MessengerHanded done;
  gpointer data;
} OnceJob;

/* Tells whoever waits (a fetch that acknowledges to the login server only what it
 * answered) and frees the job. */
static void
once_job_end(OnceJob *job, gboolean handed_on)
{
  if (job->done != NULL)
    job->done(job->data, handed_on);
  g_free(job->device);
  g_bytes_unref(job->envelope);
  g_free(job);
}

static void
once_held(GObject *source, GAsyncResult *result, gpointer data)
{
  OnceJob *job = data;
  g_autoptr(GError) error = NULL;
  g_free(hark_login_client_hold_message_finish(result, NULL, &error));
  HarkMessenger *messenger = hark_messenger_op_end(job);
  if (messenger != NULL && error == NULL)
    messenger->counters.held++;
  else if (messenger != NULL)
    g_debug("messages: a note for %.12s was not held (%s)", job->device, error->message);
  once_job_end(job, messenger != NULL && error == NULL);
}

static void
once_hold(HarkMessenger *messenger, OnceJob *job)
{
  hark_login_client_hold_message_async(messenger->login, job->device, job->envelope,
                                       messenger->cancellable, once_held, job);
}

static void
once_sent(HarkMessageRouteResult result, guint code, const char *text, gpointer data)
{
  OnceJob *job = data;
  HarkMessenger *messenger = job->op.messenger;
  /* Over the SN's rate (429) it is not refused for good: the login server holds it, as
   * a receipt dropped here would cost its message a retry and a duplicate. */
  gboolean refused = result == HARK_MESSAGE_ROUTE_REFUSED && code != 429;
  if (messenger == NULL || messenger->stopping || result == HARK_MESSAGE_ROUTE_DELIVERED ||
      refused) {
    hark_messenger_op_end(job);
    once_job_end(job, messenger != NULL && !messenger->stopping);
    return;
  }
  once_hold(messenger, job);
}

static void
once_online(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  OnceJob *job = data;
  const char *sn = peer->online != NULL ? g_hash_table_lookup(peer->online, job->device) : NULL;
  if (sn != NULL)
    hark_message_route_send(messenger->route, job->device, sn, job->envelope, once_sent, job);
  else
    once_hold(messenger, job);
}

/* The note sealed for device, as a job that tells done; NULL (done told) when it cannot
 * be sealed. */
static OnceJob *
once_job_new(HarkMessenger *messenger, const char *user, const char *device, GBytes *certificate,
             GVariant *inner, MessengerHanded done, gpointer data)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink(inner);
  if (messenger->history == NULL || messenger->stopping) {
    if (done != NULL)
      done(data, FALSE);
    return NULL;
  }
  g_autoptr(GError) error = NULL;
  HarkMessageRecipient recipient = { .recipient_device = device, .certificate = certificate };
  g_autofree char *to = hark_presence_name_key(user);
  g_autoptr(GBytes) envelope = hark_messenger_seal_note(messenger, to, owned, &recipient, 1, &error);
  if (envelope == NULL) {
    g_debug("messages: cannot seal a note for %.12s: %s", device, error->message);
    if (done != NULL)
      done(data, FALSE);
    return NULL;
  }
  OnceJob *job = hark_messenger_op_new(messenger, sizeof(OnceJob));
  job->device = g_strdup(device);
  job->envelope = g_steal_pointer(&envelope);
  job->done = done;
  job->data = data;
  return job;
}

void
hark_messenger_send_once_then(HarkMessenger *messenger, const char *user, const char *device,
                              GBytes *certificate, GVariant *inner, MessengerHanded done,
                              gpointer data)
{
  OnceJob *job = once_job_new(messenger, user, device, certificate, inner, done, data);
  if (job == NULL)
    return;
  g_autofree char *to = hark_presence_name_key(user);
  hark_messenger_peer_online(messenger, to, once_online, job);
}

void
hark_messenger_hold_once_then(HarkMessenger *messenger, const char *user, const char *device,
                              GBytes *certificate, GVariant *inner, MessengerHanded done,
                              gpointer data)
{
  OnceJob *job = once_job_new(messenger, user, device, certificate, inner, done, data);
  if (job != NULL)
    once_hold(messenger, job);
}

void
hark_messenger_send_once(HarkMessenger *messenger, const char *user, const char *device,
                         GBytes *certificate, GVariant *inner)
{
  hark_messenger_send_once_then(messenger, user, device, certificate, inner, NULL, NULL);
}

/* ---- sealed once for the online devices: typing notes ---------------------------------- */

typedef struct {
  MessengerOp op;
  char *user; /* canonical */
  GVariant *inner;
  MessengerSent done;
  gpointer data;
} OnlineJob;

static void
online_job_free(OnlineJob *job)
{
  g_free(job->user);
  g_variant_unref(job->inner);
  g_free(job);
}

static void
online_sent(HarkMessageRouteResult result, guint code, const char *text, gpointer data)
{
  /* Nothing to do either way: a note that did not arrive is not tried again. */
}

/* The envelope for the devices of peer that are online and certified; n_online says how
 * many. NULL with n_online 0 when none is. */
static GBytes *
seal_for_online(HarkMessenger *messenger, MessengerPeer *peer, GVariant *inner, GPtrArray *devices,
                GError **error)
{
  g_autoptr(GArray) recipients = g_array_new(FALSE, TRUE, sizeof(HarkMessageRecipient));
  for (guint i = 0; peer->certificates != NULL && peer->online != NULL &&
                    i < peer->certificates->len && recipients->len < HARK_MESSAGE_MAX_RECIPIENTS;
       i++) {
    const HarkLoginDeviceCertificate *c = peer->certificates->pdata[i];
    const char *sn = g_hash_table_lookup(peer->online, c->device_id);
    if (sn == NULL)
      continue;
    HarkMessageRecipient r = { .recipient_device = c->device_id, .certificate = c->certificate };
    g_array_append_val(recipients, r);
    g_ptr_array_add(devices, (gpointer)c->device_id);
    g_ptr_array_add(devices, (gpointer)sn);
  }
  if (recipients->len == 0)
    return NULL;
  return hark_messenger_seal_note(messenger, peer->user, inner,
                                  (HarkMessageRecipient *)recipients->data, recipients->len, error);
}

static void
online_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  OnlineJob *job = data;
  hark_messenger_op_end(job);
  GError *failed = NULL;
  g_autoptr(GPtrArray) devices = g_ptr_array_new(); /* device id, SN, ... (borrowed) */
  g_autoptr(GBytes) envelope = seal_for_online(messenger, peer, job->inner, devices, &failed);
  for (guint i = 0; envelope != NULL && i + 1 < devices->len; i += 2)
    hark_message_route_send(messenger->route, devices->pdata[i], devices->pdata[i + 1], envelope,
                            online_sent, NULL);
  if (failed != NULL) {
    job->done(messenger, NULL, failed, job->data);
  } else {
    JsonObject *answer = json_object_new();
    json_object_set_string_member(answer, "to", job->user);
    json_object_set_int_member(answer, "devices", devices->len / 2);
    job->done(messenger, answer, NULL, job->data);
  }
  online_job_free(job);
}

static void
online_devices_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error,
                     gpointer data)
{
  OnlineJob *job = data;
  if (error != NULL) {
    hark_messenger_op_end(job);
    GError *copy = g_error_copy(error);
    g_prefix_error(&copy, "the devices of %s: ", peer->user);
    job->done(messenger, NULL, copy, job->data);
    online_job_free(job);
    return;
  }
  hark_messenger_peer_online(messenger, job->user, online_ready, job);
}

void
hark_messenger_send_online(HarkMessenger *messenger, const char *user, GVariant *inner,
                           MessengerSent done, gpointer data)
{
  OnlineJob *job = hark_messenger_op_new(messenger, sizeof(OnlineJob));
  job->user = hark_presence_name_key(user);
  job->inner = g_variant_ref_sink(inner);
  job->done = done;
  job->data = data;
  g_autofree char *key = g_strdup(job->user);
  hark_messenger_peer_devices(messenger, key, online_devices_ready, job);
}

/* ---- the outbox -------------------------------------------------------------------- */

typedef struct {
  MessengerOp op;
  HarkOutboxEntry *entry;
  char *key; /* in messenger->attempts */
} Attempt;

static void
attempt_free(Attempt *attempt)
{
  hark_outbox_entry_free(attempt->entry);
  g_free(attempt->key);
  g_free(attempt);
}

/* The attempt is over: its entry is due again when the history says. */
static void
attempt_end(Attempt *attempt)
{
  HarkMessenger *messenger = hark_messenger_op_end(attempt);
  if (messenger != NULL) {
    g_hash_table_remove(messenger->attempts, attempt->key);
    hark_messenger_pump_soon(messenger);
  }
  attempt_free(attempt);
}

static void
attempt_outcome(HarkMessenger *messenger, Attempt *attempt, gboolean sent, gint64 postpone_until)
{
  HarkOutboxEntry *entry = attempt->entry;
  g_autoptr(GError) error = NULL;
  gboolean changed = FALSE;
  if (sent &&
      hark_message_history_set_state(messenger->history, entry->message_id, entry->device,
                                     HARK_MESSAGE_STATE_SENT, &changed, &error) &&
      changed)
    hark_messenger_emit_state(messenger, entry->message_id, entry->device, "sent");
  g_clear_error(&error);
  gboolean ok = postpone_until > 0
                  ? hark_message_history_outbox_postpone(messenger->history, entry->message_id,
                                                         entry->device, postpone_until, &error)
                  : hark_message_history_outbox_retry(messenger->history, entry->message_id,
                                                      entry->device, &error);
  /* INVALID: the receipt came first and the entry is gone. */
  if (!ok &&
      !g_error_matches(error, HARK_MESSAGE_HISTORY_ERROR, HARK_MESSAGE_HISTORY_ERROR_INVALID))
    g_warning("messages: the outbox: %s", error->message);
}

static void
attempt_failed(HarkMessenger *messenger, Attempt *attempt, const char *why)
{
  HarkOutboxEntry *entry = attempt->entry;
  g_autofree char *id = hark_messenger_id_hex(entry->message_id);
  g_message("messages: %s for device %.12s of %s cannot be delivered: %s", id, entry->device,
            entry->user, why);
  hark_message_history_outbox_done(messenger->history, entry->message_id, entry->device, NULL,
                                   NULL);
  hark_messenger_emit_state(messenger, entry->message_id, entry->device, "failed");
}

static void
attempt_held(GObject *source, GAsyncResult *result, gpointer data)
{
  Attempt *attempt = data;
  g_autoptr(GError) error = NULL;
  gint64 expires = 0;
  g_autofree char *held = hark_login_client_hold_message_finish(result, &expires, &error);
  HarkMessenger *messenger = attempt->op.messenger;
  if (messenger != NULL && !messenger->stopping) {
    if (held != NULL) {
      messenger->counters.held++;
      /* The login server has it: try again only if its hold ends before the receipt. */
      attempt_outcome(messenger, attempt, TRUE, MAX(expires, hark_messenger_now(messenger) + 60));
    } else if (g_error_matches(error, HARK_LOGIN_ERROR, HARK_LOGIN_ERROR_SERVER)) {
      attempt_failed(messenger, attempt, error->message); /* the server refused the envelope */
    } else {
      g_debug("messages: holding for %.12s: %s", attempt->entry->device, error->message);
      attempt_outcome(messenger, attempt, FALSE, 0);
    }
  }
  attempt_end(attempt);
}

static void
attempt_hold(HarkMessenger *messenger, Attempt *attempt)
{
  hark_login_client_hold_message_async(messenger->login, attempt->entry->device,
                                       attempt->entry->envelope, messenger->cancellable,
                                       attempt_held, attempt);
}

static void
attempt_sent(HarkMessageRouteResult result, guint code, const char *text, gpointer data)
{
  Attempt *attempt = data;
  HarkMessenger *messenger = attempt->op.messenger;
  if (messenger == NULL || messenger->stopping) {
    attempt_end(attempt);
    return;
  }
  switch (result) {
  case HARK_MESSAGE_ROUTE_DELIVERED:
    /* On the device's link: the receipt ends the entry; if none comes, a retry. */
    attempt_outcome(messenger, attempt, TRUE, 0);
    break;
  case HARK_MESSAGE_ROUTE_REFUSED:
    if (code != 429 && code != 413) {
      attempt_failed(messenger, attempt, text);
      break;
    }
    /* Over the SN's rate (429: a burst, a restart's backlog, a busy conversation, would
     * else back off further at every try), or over a wire message (413: 64 KiB, a large
     * group's envelope; the hold takes 256 KiB): the login server takes it instead. */
    attempt_hold(messenger, attempt);
    return;
  default: /* not online there, unreachable, no SN: the login server holds it */
    hark_messenger_peer_forget_online(messenger, attempt->entry->user);
    attempt_hold(messenger, attempt);
    return;
  }
  attempt_end(attempt);
}

static void
attempt_online(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  Attempt *attempt = data;
  const char *sn =
    peer->online != NULL ? g_hash_table_lookup(peer->online, attempt->entry->device) : NULL;
  if (sn != NULL)
    hark_message_route_send(messenger->route, attempt->entry->device, sn, attempt->entry->envelope,
                            attempt_sent, attempt);
  else
    attempt_hold(messenger, attempt);
}

static void
attempt_start(HarkMessenger *messenger, HarkOutboxEntry *entry)
{
  g_autofree char *id = hark_messenger_id_hex(entry->message_id);
  char *key = g_strdup_printf("%s/%s", id, entry->device);
  if (g_hash_table_contains(messenger->attempts, key)) {
    g_free(key);
    hark_outbox_entry_free(entry);
    return;
  }
  g_hash_table_add(messenger->attempts, key);
  Attempt *attempt = hark_messenger_op_new(messenger, sizeof(Attempt));
  attempt->entry = entry;
  attempt->key = g_strdup(key);
  hark_messenger_peer_online(messenger, entry->user, attempt_online, attempt);
}

static void
expire_outbox(HarkMessenger *messenger)
{
  g_autoptr(GPtrArray) expired = NULL;
  g_autoptr(GError) error = NULL;
  if (!hark_message_history_outbox_expire(messenger->history, &expired, &error)) {
    g_warning("messages: the outbox: %s", error->message);
    return;
  }
  for (guint i = 0; i < expired->len; i++) {
    const HarkOutboxEntry *entry = expired->pdata[i];
    hark_messenger_emit_state(messenger, entry->message_id, entry->device, "expired");
  }
}

static gboolean
pump(gpointer data)
{
  HarkMessenger *messenger = data;
  messenger->pump_source = 0;
  if (messenger->stopping || messenger->history == NULL ||
      !hark_messenger_whoami(messenger, NULL, NULL))
    return G_SOURCE_REMOVE; /* a login or an attach starts it again */
  expire_outbox(messenger);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) due =
    hark_message_history_outbox_due(messenger->history, MESSENGER_PUMP_BATCH, &error);
  for (guint i = 0; due != NULL && i < due->len; i++)
    attempt_start(messenger, g_steal_pointer(&due->pdata[i]));
  if (due != NULL)
    g_ptr_array_set_size(due, 0);
  gint64 when = 0;
  if (messenger->pump_source == 0 &&
      hark_message_history_outbox_next(messenger->history, &when, NULL)) {
    gint64 wait = CLAMP(when - hark_messenger_now(messenger), 1, 600);
    messenger->pump_source = hark_clock_add_seconds(messenger->clock, (guint)wait, pump, messenger);
  }
  return G_SOURCE_REMOVE;
}

void
hark_messenger_pump_soon(HarkMessenger *messenger)
{
  if (messenger->stopping)
    return;
  hark_messenger_pump_stop(messenger);
  GSource *source = g_idle_source_new();
  g_source_set_callback(source, pump, messenger, NULL);
  messenger->pump_source = g_source_attach(source, hark_context_main_context(messenger->ctx));
  g_source_unref(source);
}

void
hark_messenger_pump_stop(HarkMessenger *messenger)
{
  hark_messenger_source_stop(messenger, &messenger->pump_source);
}
