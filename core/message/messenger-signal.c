/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* messenger-signal.c: signals, the messenger's notes for the layers above it (the call
 * layer's INVITE, ANSWER, ...). A signal is an envelope like a typing note: sealed end to
 * end once for the devices that are online now, signed by this device's certified key,
 * handed to their SNs once. It is never stored, never put in the outbox and never held
 * by the login server: a signal is worth something only now, and its sender hears which
 * devices it reached. What comes in was checked by messenger-receive.c (verified,
 * opened, not replayed, not old) and goes to the handler of its kind, or is dropped and
 * counted. docs/protocol.md, "Messages: signals".
 *
 * An SN refuses what a client sends over its message rate (429). For a signal that is a
 * moment's congestion, not an answer: a conference host calling ten members sends their
 * invitations, candidates and rosters at once, and a refused invitation used to end that
 * call ("the signal reached no device"). So a refused envelope goes to that device again
 * after SIGNAL_RATE_RETRY_MS, doubling, SIGNAL_RATE_RETRIES times (3.75 s in all, while a
 * signal is still worth something), with a little jitter so that the refused ones do not
 * all come back at once. */
#include "messenger-private.h"

#include "hark/address.h"
#include "hark/presence.h"

#include <string.h>

#define SIGNAL_RATE_RETRIES 4
#define SIGNAL_RATE_RETRY_MS 250

typedef struct {
  HarkMessengerSignalFunc func;
  gpointer data;
} MessengerSignalHandler;

/* The messenger's own kinds: a signal kind of the same name would be confusing in logs. */
static const char *const messenger_kinds[] = {
  "text", "receipt", "typing", "history-request", "history", "group", "signal", NULL,
};

static gboolean
is_signal_kind(const char *kind)
{
  if (kind == NULL || kind[0] == '\0' || strlen(kind) > 32 ||
      g_strv_contains(messenger_kinds, kind))
    return FALSE;
  for (const char *p = kind; *p != '\0'; p++)
    if (!g_ascii_islower(*p) && *p != '-')
      return FALSE;
  return TRUE;
}

void
hark_messenger_set_signal_handler(HarkMessenger *messenger, const char *kind,
                                  HarkMessengerSignalFunc func, gpointer data)
{
  g_return_if_fail(is_signal_kind(kind));
  if (func == NULL) {
    g_hash_table_remove(messenger->signal_handlers, kind);
    return;
  }
  MessengerSignalHandler *handler = g_new0(MessengerSignalHandler, 1);
  handler->func = func;
  handler->data = data;
  g_hash_table_replace(messenger->signal_handlers, g_strdup(kind), handler);
}

void
hark_messenger_signal_handlers_free(HarkMessenger *messenger)
{
  g_clear_pointer(&messenger->signal_handlers, g_hash_table_unref);
}

/* ---- sending ------------------------------------------------------------------------- */

typedef struct {
  MessengerOp op;
  char *user; /* canonical */
  char *device; /* NULL: every online device */
  GVariant *inner; /* the signal, sealed once the devices are known */
  HarkMessengerSignalSent done;
  gpointer data;
  GPtrArray *delivered; /* char*: device ids */
  guint waiting; /* SN answers still to come */
  GError *error;
  char *last_failure; /* why the last device did not get it */
  gboolean looked_again; /* one device: its SN said it was not there; asked the directory */
} SignalJob;

static void
signal_job_free(SignalJob *job)
{
  g_free(job->user);
  g_free(job->device);
  g_clear_pointer(&job->inner, g_variant_unref);
  g_ptr_array_unref(job->delivered);
  g_clear_error(&job->error);
  g_free(job->last_failure);
  g_free(job);
}

static gboolean
signal_report(gpointer data)
{
  SignalJob *job = data;
  if (job->error == NULL && job->delivered->len == 0)
    job->error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                             "the signal reached no device of %s%s%s", job->user,
                             job->last_failure != NULL ? ": " : "",
                             job->last_failure != NULL ? job->last_failure : "");
  job->done(job->data, job->error == NULL ? job->delivered : NULL, job->error);
  signal_job_free(job);
  return G_SOURCE_REMOVE;
}

/* The job is over: done is called from the main loop (never before send returned). */
static void
signal_finish(HarkMessenger *messenger, SignalJob *job, GError *error)
{
  if (error != NULL && job->error == NULL)
    job->error = error;
  else if (error != NULL)
    g_error_free(error);
  hark_messenger_op_end(job);
  GSource *source = g_idle_source_new();
  g_source_set_callback(source, signal_report, job, NULL);
  g_source_attach(source, messenger != NULL ? hark_context_main_context(messenger->ctx)
                                            : g_main_context_get_thread_default());
  g_source_unref(source);
}

typedef struct {
  SignalJob *job;
  char *device;
  char *sn; /* the device's SN, and the envelope: to send it again after a 429 */
  GBytes *envelope;
  guint retries;
} SignalSend;

static void signal_routed(HarkMessageRouteResult result, guint code, const char *text,
                          gpointer data);

static void
signal_send_free(SignalSend *send)
{
  g_free(send->device);
  g_free(send->sn);
  g_bytes_unref(send->envelope);
  g_free(send);
}

static void
signal_route(HarkMessenger *messenger, SignalSend *send)
{
  hark_message_route_send(messenger->route, send->device, send->sn, send->envelope, signal_routed,
                          send);
}

static gboolean
on_signal_retry(gpointer data)
{
  SignalSend *send = data;
  HarkMessenger *messenger = send->job->op.messenger;
  if (messenger == NULL || messenger->stopping)
    signal_routed(HARK_MESSAGE_ROUTE_NO_SN_LINK, 0, "the messenger stopped", send);
  else
    signal_route(messenger, send);
  return G_SOURCE_REMOVE;
}

/* Over the SN's message rate: TRUE when it goes again later (see the top of the file). */
static gboolean
signal_retry_later(HarkMessenger *messenger, SignalSend *send, HarkMessageRouteResult result,
                   guint code)
{
  if (result != HARK_MESSAGE_ROUTE_REFUSED || code != 429 || messenger == NULL ||
      messenger->stopping || send->retries + 1 > SIGNAL_RATE_RETRIES)
    return FALSE;
  guint ms = (SIGNAL_RATE_RETRY_MS << send->retries) +
             (guint)g_random_int_range(0, SIGNAL_RATE_RETRY_MS / 2);
  send->retries++;
  messenger->counters.signals_retried++;
  g_debug("messages: a signal to %.12s is over our SN's message rate: again in %u ms", send->device,
          ms);
  GSource *source = g_timeout_source_new(ms);
  g_source_set_callback(source, on_signal_retry, send, NULL);
  g_source_attach(source, hark_context_main_context(messenger->ctx));
  g_source_unref(source);
  return TRUE;
}

static void signal_online_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error,
                                gpointer data);

/* A signal to one device that was not where it was last known (its SN answered 404, or
 * that SN is gone: 502) goes once more, wherever the directory finds it now. */
static gboolean
signal_look_again(HarkMessenger *messenger, SignalSend *send, HarkMessageRouteResult result,
                  guint code)
{
  SignalJob *job = send->job;
  gboolean moved = result == HARK_MESSAGE_ROUTE_NOT_ONLINE ||
                   (result == HARK_MESSAGE_ROUTE_UNREACHABLE && code == 502);
  if (!moved || job->device == NULL || job->looked_again || messenger == NULL ||
      messenger->stopping)
    return FALSE;
  job->looked_again = TRUE;
  g_debug("messages: %.12s is not at %s: looking %s up", send->device, send->sn, job->user);
  hark_messenger_peer_forget_device(messenger, job->user, job->device);
  signal_send_free(send);
  hark_messenger_peer_online(messenger, job->user, signal_online_ready, job);
  return TRUE;
}

static void
signal_routed(HarkMessageRouteResult result, guint code, const char *text, gpointer data)
{
  SignalSend *send = data;
  SignalJob *job = send->job;
  HarkMessenger *messenger = job->op.messenger;
  if (signal_retry_later(messenger, send, result, code) ||
      signal_look_again(messenger, send, result, code))
    return;
  if (result == HARK_MESSAGE_ROUTE_DELIVERED) {
    g_ptr_array_add(job->delivered, g_steal_pointer(&send->device));
  } else {
    g_free(job->last_failure);
    job->last_failure = g_strdup_printf(
      "%.12s: %s", send->device, text != NULL ? text : hark_message_route_result_name(result));
    if (result == HARK_MESSAGE_ROUTE_NOT_ONLINE && messenger != NULL)
      hark_messenger_peer_forget_online(messenger, job->user);
  }
  signal_send_free(send);
  if (--job->waiting == 0)
    signal_finish(messenger, job, NULL);
}

/* Why no device of peer can be sent to: none is online, or the directory did not say
 * (its answer refused, and nothing known from before). */
static GError *
signal_nobody(SignalJob *job, MessengerPeer *peer)
{
  if (peer->online == NULL && peer->online_error != NULL)
    return g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                       "where the devices of %s are is not known: the directory did not "
                       "answer (%s)",
                       job->user, peer->online_error->message);
  if (job->device != NULL)
    return g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                       "device %.12s of %s is not online", job->device, job->user);
  return g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED, "%s has no device online",
                     job->user);
}

/* The certified devices of peer that are online (only job->device when it names one),
 * sealed for once and handed to their SNs. */
static void
signal_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error, gpointer data)
{
  SignalJob *job = data;
  if (error != NULL) {
    GError *copy = g_error_copy(error);
    g_prefix_error(&copy, "the devices of %s: ", peer->user);
    signal_finish(messenger, job, copy);
    return;
  }
  const char *own = hark_identity_get_fingerprint(messenger->node->identity);
  g_autoptr(GArray) recipients = g_array_new(FALSE, TRUE, sizeof(HarkMessageRecipient));
  g_autoptr(GPtrArray) sns = g_ptr_array_new();
  for (guint i = 0; peer->certificates != NULL && peer->online != NULL &&
                    i < peer->certificates->len && recipients->len < HARK_MESSAGE_MAX_RECIPIENTS;
       i++) {
    const HarkLoginDeviceCertificate *c = peer->certificates->pdata[i];
    const char *sn = g_hash_table_lookup(peer->online, c->device_id);
    if (sn == NULL || g_strcmp0(c->device_id, own) == 0 ||
        (job->device != NULL && strcmp(job->device, c->device_id) != 0))
      continue;
    HarkMessageRecipient r = { .recipient_device = c->device_id, .certificate = c->certificate };
    g_array_append_val(recipients, r);
    g_ptr_array_add(sns, (gpointer)sn);
  }
  if (recipients->len == 0) {
    signal_finish(messenger, job, signal_nobody(job, peer));
    return;
  }
  GError *failed = NULL;
  g_autoptr(GBytes) envelope =
    hark_messenger_seal_note(messenger, job->user, job->inner,
                             (HarkMessageRecipient *)recipients->data, recipients->len, &failed);
  if (envelope == NULL) {
    signal_finish(messenger, job, failed);
    return;
  }
  if (!job->looked_again)
    messenger->counters.signals_sent++;
  job->waiting = recipients->len;
  for (guint i = 0; i < recipients->len; i++) {
    const HarkMessageRecipient *r = &g_array_index(recipients, HarkMessageRecipient, i);
    SignalSend *send = g_new0(SignalSend, 1);
    send->job = job;
    send->device = g_strdup(r->recipient_device);
    send->sn = g_strdup(sns->pdata[i]);
    send->envelope = g_bytes_ref(envelope);
    signal_route(messenger, send);
  }
}

static void
signal_online_ready(HarkMessenger *messenger, MessengerPeer *peer, const GError *error,
                    gpointer data)
{
  hark_messenger_peer_devices(messenger, peer->user, signal_ready, data);
}

void
hark_messenger_signal_send(HarkMessenger *messenger, const char *user, const char *device,
                           const char *kind, GVariant *body, HarkMessengerSignalSent done,
                           gpointer data)
{
  g_return_if_fail(user != NULL && kind != NULL && body != NULL && done != NULL);
  SignalJob *job = hark_messenger_op_new(messenger, sizeof(SignalJob));
  job->user = hark_presence_name_key(user);
  job->device = g_strdup(device);
  job->done = done;
  job->data = data;
  job->delivered = g_ptr_array_new_with_free_func(g_free);
  GError *error = NULL;
  if (!is_signal_kind(kind))
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "'%s' is not a signal kind", kind);
  else if (!hark_presence_name_is_valid(user))
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                        "'%s' is not a user name", user);
  else if (messenger->history == NULL)
    error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED, "messages are off: %s",
                        messenger->history_error);
  else if (messenger->stopping || !hark_messenger_whoami(messenger, NULL, NULL))
    error = g_error_new_literal(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                "not logged in (`login USER`)");
  if (error == NULL)
    job->inner = hark_message_signal_new(kind, body, &error);
  else
    g_variant_unref(g_variant_ref_sink(body));
  if (job->inner != NULL)
    job->inner = g_variant_ref_sink(job->inner);
  if (error != NULL) {
    signal_finish(messenger, job, error);
    return;
  }
  /* To every device: the online list as fresh as for a new message (a device that has
   * just logged in rings too). To one device: where it was last known to be serves until
   * its SN says otherwise (a call's later signals and a conference's rosters cost no
   * lookup each). */
  if (device == NULL)
    hark_messenger_peer_devices_current(messenger, job->user, signal_ready, job);
  else
    hark_messenger_peer_online_device(messenger, job->user, job->device, signal_online_ready, job);
}

/* ---- receiving ----------------------------------------------------------------------- */

void
hark_messenger_signal_deliver(HarkMessenger *messenger, const HarkEnvelope *envelope,
                              const HarkMessageInner *inner, const char *via)
{
  MessengerSignalHandler *handler =
    g_hash_table_lookup(messenger->signal_handlers, inner->signal_kind);
  if (handler == NULL) {
    messenger->counters.signals_refused++;
    g_autofree char *sender = hark_text_escape(envelope->sender, -1, 64);
    g_message("messages: dropped a signal of kind %s from %s (%.12s) from %s: nothing here "
              "takes that kind",
              inner->signal_kind, sender, envelope->sender_device, via);
    return;
  }
  messenger->counters.signals_received++;
  g_autofree char *sender_key = hark_presence_name_key(envelope->sender);
  /* The handler may remove itself: what it needs is copied first. */
  HarkMessengerSignalFunc func = handler->func;
  gpointer data = handler->data;
  func(data, sender_key, envelope->sender_device, inner->signal_body, envelope->time);
}
