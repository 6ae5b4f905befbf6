/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-publish.c: this device's presence record. It is signed in both forms and
 * sent to the device's SN when the node attaches, when its certificate changes (a login,
 * a renewal), on a new NAT verdict, when the status changes, and every
 * directory.refresh_interval while online, so that the SN (and the strategies that copy
 * it elsewhere) never holds it past 72 h without a refresh. */
#include "directory-private.h"

#include "hark/certificate.h"

#include <string.h>

static gboolean
on_refresh(gpointer data)
{
  HarkDirectory *directory = data;
  directory->refresh_source = 0;
  hark_directory_publish(directory, "refresh");
  return G_SOURCE_REMOVE;
}

static void
schedule_refresh(HarkDirectory *directory)
{
  hark_directory_clear_source(directory, &directory->refresh_source);
  directory->refresh_source = hark_clock_add_seconds(
    directory->clock, (guint)directory->node->config->dir_refresh_interval, on_refresh, directory);
}

void
hark_directory_publish_start(HarkDirectory *directory)
{
  schedule_refresh(directory);
}

void
hark_directory_publish_stop(HarkDirectory *directory)
{
  hark_directory_clear_source(directory, &directory->refresh_source);
}

/* Sequences grow across restarts too: they start from the time in microseconds. */
static guint64
next_sequence(HarkDirectory *directory)
{
  guint64 now = (guint64)hark_clock_now_real(directory->clock);
  directory->sequence = MAX(directory->sequence + 1, now);
  return directory->sequence;
}

static void
add_mapped_address(HarkDirectory *directory, HarkPresenceRecord *record)
{
  g_autofree char *mapped = hark_overlay_nat_mapped(directory->overlay);
  const char *colon = mapped != NULL ? strrchr(mapped, ':') : NULL;
  guint64 port = 0;
  if (colon == NULL || !g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &port, NULL))
    return;
  g_autofree char *host = g_strndup(mapped, colon - mapped);
  if (g_hostname_is_ip_address(host))
    hark_presence_record_add_address(record, "srflx", host, (guint16)port);
}

/* This device's full record now, or NULL (and why) when it cannot make one. */
static HarkPresenceRecord *
make_record(HarkDirectory *directory, GError **error)
{
  GBytes *der = hark_login_client_certificate_der(directory->login); /* borrowed */
  if (der == NULL) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "not logged in");
    return NULL;
  }
  gint64 now = hark_directory_now(directory);
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(hark_directory_ca_pem(directory), der, now, error);
  if (cert == NULL)
    return NULL;
  g_autoptr(HarkPresenceRecord) record = hark_presence_record_new();
  record->user = g_strdup(cert->user);
  record->device = g_strdup(cert->device_id);
  record->certificate = g_bytes_ref(der);
  g_autofree char *sn = directory->store != NULL ? hark_overlay_own_address(directory->overlay)
                                                 : hark_overlay_sn_address(directory->overlay);
  g_free(record->sn);
  record->sn = g_strdup(sn != NULL ? sn : "");
  g_free(record->nat);
  record->nat = g_strdup(hark_nat_verdict_to_string(hark_overlay_nat_verdict(directory->overlay)));
  add_mapped_address(directory, record);
  record->status = directory->status;
  record->sequence = next_sequence(directory);
  record->time = now;
  return g_steal_pointer(&record);
}

/* An SN is its own SN: its record goes straight into its store, through the same checks. */
static void
publish_locally(HarkDirectory *directory, HarkPresenceRecord *pub, HarkPresenceRecord *full,
                char **buddies)
{
  g_autoptr(GError) error = NULL;
  HarkIdentity *identity = directory->node->identity;
  const HarkPresenceRecord *stored = hark_directory_store_put(
    directory->store, hark_directory_ca_pem(directory), hark_directory_now(directory),
    pub->signed_form, full->signed_form, buddies, full->user,
    hark_identity_get_fingerprint(identity), NULL, &error);
  if (stored == NULL) {
    g_free(directory->last_publish_error);
    directory->last_publish_error = g_strdup(error->message);
    return;
  }
  directory->published_at = hark_directory_now(directory);
  g_clear_pointer(&directory->last_publish_error, g_free);
  /* As a client's: the strategies spread it (others find this SN's own user too), and
   * its watchers are pushed it. */
  hark_directory_published_to_strategies(directory, stored);
  hark_directory_presence_published(directory, NULL, stored);
}

void
hark_directory_publish(HarkDirectory *directory, const char *why)
{
  schedule_refresh(directory);
  HarkLink *link = hark_overlay_sn_link(directory->overlay);
  if (link == NULL && directory->store == NULL)
    return; /* not attached: the next attach publishes */
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkPresenceRecord) full = make_record(directory, &error);
  g_autoptr(HarkPresenceRecord) pub = full != NULL ? hark_presence_record_public(full) : NULL;
  HarkIdentity *identity = directory->node->identity;
  if (full == NULL || hark_presence_sign(full, identity, &error) == NULL ||
      hark_presence_sign(pub, identity, &error) == NULL) {
    g_free(directory->last_publish_error);
    directory->last_publish_error = g_strdup(error->message);
    g_debug("directory: no record published (%s): %s", why, error->message);
    return;
  }
  g_auto(GStrv) buddies = hark_login_client_buddy_names(directory->login);
  if (link == NULL) {
    publish_locally(directory, pub, full, buddies);
    return;
  }
  directory->publish_id = hark_overlay_new_message_id(directory->overlay);
  hark_link_send(link, HARK_MSG_DIR_PUBLISH, directory->publish_id,
                 g_variant_new("(@(ayay)@(ayay)^as)", pub->signed_form, full->signed_form, buddies),
                 NULL);
  g_debug("directory: published this device's record (%s), sequence %" G_GUINT64_FORMAT, why,
          full->sequence);
}

gboolean
hark_directory_publish_answer(HarkDirectory *directory, const HarkWireMessage *message)
{
  if (directory->publish_id == 0 || message->id != directory->publish_id)
    return FALSE;
  directory->publish_id = 0;
  if (message->type == HARK_MSG_ERROR) {
    const char *text;
    guint32 code;
    g_variant_get(message->body, "(u&s)", &code, &text);
    g_free(directory->last_publish_error);
    directory->last_publish_error = hark_text_escape(text, -1, 200);
    g_message("directory: the super node refused this device's record: %s",
              directory->last_publish_error);
    return TRUE;
  }
  directory->published_at = hark_directory_now(directory);
  directory->counters.published++;
  g_clear_pointer(&directory->last_publish_error, g_free);
  return TRUE;
}

JsonObject *
hark_directory_publish_describe(HarkDirectory *directory)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "status", hark_presence_status_to_string(directory->status));
  json_object_set_int_member(o, "sequence", (gint64)directory->sequence);
  if (directory->published_at != 0)
    json_object_set_int_member(o, "published_at", directory->published_at);
  else
    json_object_set_null_member(o, "published_at");
  json_object_set_int_member(o, "refresh_interval", directory->node->config->dir_refresh_interval);
  json_object_set_string_member(o, "last_error", directory->last_publish_error);
  return o;
}
