/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* envelope.c: the shape of a signed message envelope, as the login server checks it
 * before holding it for an offline device (docs/protocol.md, "Messages: held for offline
 * devices").
 *
 * The server never opens an envelope and never verifies its signature: the envelope is
 * end to end, and its recipient verifies it (core/message). What the server needs is who
 * sealed it (sender_device, to refuse holding in another device's name) and for whom
 * (the recipients' device ids, to refuse holding it for a device it does not name); and
 * that it is a well-formed envelope within the design's limits, so that nothing else is
 * kept in its place. GVariant in normal form only: one meaning per byte string. Touches
 * no store and no clock, so tests/fuzz/fuzz-envelope.c calls it as the server does. */
#include "loginsrv.h"

#include <string.h>

#define ENVELOPE_TYPE "(ayay)"
#define PAYLOAD_TYPE "(ayssaysttxaya(sayay))"
#define MESSAGE_ID_SIZE 16
#define SIGNATURE_SIZE 64
#define CERTIFICATE_MAX 4096
#define RECIPIENTS_MAX 1024
#define EPHEMERAL_KEY_SIZE 32
#define WRAPPED_KEY_SIZE 48 /* the content key (32) and its tag (16) */

void
login_envelope_shape_free(LoginEnvelopeShape *shape)
{
  if (shape == NULL)
    return;
  g_free(shape->sender_device);
  g_strfreev(shape->recipients);
  g_free(shape);
}

/* A GVariant of type from a copy of bytes (a copy: the nested payload's bytes may sit at
 * any alignment in the outer one), when it is in normal form; NULL otherwise. */
static GVariant *
variant_normal(const char *type, gconstpointer data, gsize length)
{
  g_autoptr(GBytes) copy = g_bytes_new(data, length);
  g_autoptr(GVariant) value =
    g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(type), copy, FALSE));
  return g_variant_is_normal_form(value) ? g_steal_pointer(&value) : NULL;
}

static gsize
child_bytes(GVariant *tuple, gsize index)
{
  g_autoptr(GVariant) child = g_variant_get_child_value(tuple, index);
  return g_variant_get_size(child);
}

/* The recipients' device ids; NULL and why not when one breaks the rules. */
static char **
read_recipients(GVariant *payload, char **problem)
{
  g_autoptr(GVariant) list = g_variant_get_child_value(payload, 9);
  gsize n = g_variant_n_children(list);
  if (n == 0 || n > RECIPIENTS_MAX) {
    *problem = g_strdup_printf("an envelope names 1 to %d recipient devices, not %" G_GSIZE_FORMAT,
                               RECIPIENTS_MAX, n);
    return NULL;
  }
  g_auto(GStrv) ids = g_new0(char *, n + 1);
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GVariant) entry = g_variant_get_child_value(list, i);
    g_autoptr(GVariant) id = g_variant_get_child_value(entry, 0);
    if (!login_device_id_is_valid(g_variant_get_string(id, NULL))) {
      *problem = g_strdup_printf("recipient %" G_GSIZE_FORMAT " is not a device id (64 "
                                 "lower-case hex digits)",
                                 i);
      return NULL;
    }
    if (child_bytes(entry, 1) != EPHEMERAL_KEY_SIZE || child_bytes(entry, 2) != WRAPPED_KEY_SIZE) {
      *problem = g_strdup_printf("recipient %" G_GSIZE_FORMAT " needs a %d-byte ephemeral key "
                                 "and a %d-byte wrapped key",
                                 i, EPHEMERAL_KEY_SIZE, WRAPPED_KEY_SIZE);
      return NULL;
    }
    ids[i] = g_variant_dup_string(id, NULL);
  }
  return g_steal_pointer(&ids);
}

/* The payload's fixed-size fields and its sender; FALSE and why not otherwise. */
static gboolean
check_payload_fields(GVariant *payload, char **problem)
{
  g_autoptr(GVariant) sender_device = g_variant_get_child_value(payload, 2);
  gsize certificate = child_bytes(payload, 3);
  if (child_bytes(payload, 0) != MESSAGE_ID_SIZE)
    *problem = g_strdup_printf("the message id must be %d bytes", MESSAGE_ID_SIZE);
  else if (!login_device_id_is_valid(g_variant_get_string(sender_device, NULL)))
    *problem = g_strdup("sender_device is not a device id (64 lower-case hex digits)");
  else if (certificate == 0 || certificate > CERTIFICATE_MAX)
    *problem = g_strdup_printf("the sender's certificate must be 1 to %d bytes", CERTIFICATE_MAX);
  return *problem == NULL;
}

LoginEnvelopeShape *
login_envelope_shape_read(GBytes *bytes, char **problem)
{
  gsize length = 0;
  gconstpointer data = bytes != NULL ? g_bytes_get_data(bytes, &length) : NULL;
  *problem = NULL;
  if (length == 0 || length > LOGIN_ENVELOPE_MAX) {
    *problem = g_strdup_printf("an envelope is 1 to %d bytes, not %" G_GSIZE_FORMAT,
                               LOGIN_ENVELOPE_MAX, length);
    return NULL;
  }
  g_autoptr(GVariant) envelope = variant_normal(ENVELOPE_TYPE, data, length);
  if (envelope == NULL) {
    *problem = g_strdup("the envelope is not a " ENVELOPE_TYPE " GVariant in normal form");
    return NULL;
  }
  if (child_bytes(envelope, 1) != SIGNATURE_SIZE) {
    *problem = g_strdup_printf("the envelope's signature must be %d bytes", SIGNATURE_SIZE);
    return NULL;
  }
  g_autoptr(GVariant) payload_bytes = g_variant_get_child_value(envelope, 0);
  gsize payload_length = 0;
  gconstpointer payload_data = g_variant_get_fixed_array(payload_bytes, &payload_length, 1);
  g_autoptr(GVariant) payload = variant_normal(PAYLOAD_TYPE, payload_data, payload_length);
  if (payload == NULL) {
    *problem = g_strdup("the envelope's payload is not a " PAYLOAD_TYPE " GVariant in normal form");
    return NULL;
  }
  if (!check_payload_fields(payload, problem))
    return NULL;
  char **recipients = read_recipients(payload, problem);
  if (recipients == NULL)
    return NULL;
  LoginEnvelopeShape *shape = g_new0(LoginEnvelopeShape, 1);
  g_autoptr(GVariant) sender_device = g_variant_get_child_value(payload, 2);
  shape->sender_device = g_variant_dup_string(sender_device, NULL);
  shape->recipients = recipients;
  return shape;
}

gboolean
login_envelope_shape_names(const LoginEnvelopeShape *shape, const char *device_id)
{
  return g_strv_contains((const char *const *)shape->recipients, device_id);
}
