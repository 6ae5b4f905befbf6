/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* presence.c: presence records: their canonical encoding, signing and every check a node
 * makes before it stores or forwards one (hark/presence.h).
 *
 * A record comes from a device we do not trust yet, and through nodes we trust less, so
 * the payload is parsed from its bytes in normal form only (two nodes must read the same
 * bytes the same way), every field is bounded before it is used, and the signature is
 * checked over the exact bytes that were signed. */
#include "hark/presence.h"
#include "hark/address.h"
#include "hark/certificate.h"
#include "hark/config.h"
#include "signed-variant.h"

#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(hark-presence-error-quark, hark_presence_error)
/* clang-format on */

#define SIGNATURE_DOMAIN "HARK-PRESENCE-1\n"
#define MAX_CERTIFICATE 4096
#define MAX_SN 300
#define FINGERPRINT_LENGTH 64
#define LOG_TEXT_MAX 64

static const char *const status_names[] = { "online", "away", "busy", "invisible", "hidden" };
static const char *const nat_names[] = { "unknown", "open", "nat", "udp-blocked" };

const char *
hark_presence_status_to_string(HarkPresenceStatus status)
{
  return (guint)status < G_N_ELEMENTS(status_names) ? status_names[status] : "hidden";
}

gboolean
hark_presence_status_from_string(const char *text, HarkPresenceStatus *status)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS(status_names); i++)
    if (strcmp(text, status_names[i]) == 0) {
      *status = (HarkPresenceStatus)i;
      return TRUE;
    }
  return FALSE;
}

HarkPresenceStatus
hark_presence_most_available(GPtrArray *records)
{
  HarkPresenceStatus best = HARK_PRESENCE_HIDDEN;
  for (guint i = 0; records != NULL && i < records->len; i++) {
    const HarkPresenceRecord *record = records->pdata[i];
    /* The enum is ordered from the most to the least available. */
    if (record->status < best)
      best = record->status;
  }
  return best;
}

static gboolean
is_name_char(char c)
{
  return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
}

gboolean
hark_presence_name_is_valid(const char *name)
{
  if (name == NULL || !g_ascii_isalpha(name[0]))
    return FALSE;
  gsize length = 0;
  for (const char *p = name; *p != '\0'; p++, length++)
    if (!is_name_char(*p) || length >= HARK_PRESENCE_NAME_MAX)
      return FALSE;
  return TRUE;
}

char *
hark_presence_name_key(const char *name)
{
  return g_ascii_strdown(name, -1);
}

static void
address_free(gpointer data)
{
  HarkPresenceAddress *address = data;
  g_free(address->kind);
  g_free(address->host);
  g_free(address);
}

HarkPresenceRecord *
hark_presence_record_new(void)
{
  HarkPresenceRecord *record = g_new0(HarkPresenceRecord, 1);
  record->addresses = g_ptr_array_new_with_free_func(address_free);
  record->nat = g_strdup("unknown");
  record->sn = g_strdup("");
  return record;
}

void
hark_presence_record_free(HarkPresenceRecord *record)
{
  if (record == NULL)
    return;
  g_free(record->user);
  g_free(record->device);
  g_clear_pointer(&record->certificate, g_bytes_unref);
  g_free(record->sn);
  g_ptr_array_unref(record->addresses);
  g_free(record->nat);
  g_clear_pointer(&record->signed_form, g_variant_unref);
  g_free(record);
}

void
hark_presence_record_add_address(HarkPresenceRecord *record, const char *kind, const char *host,
                                 guint16 port)
{
  HarkPresenceAddress *address = g_new0(HarkPresenceAddress, 1);
  address->kind = g_strdup(kind);
  address->host = g_strdup(host);
  address->port = port;
  g_ptr_array_add(record->addresses, address);
}

HarkPresenceRecord *
hark_presence_record_public(const HarkPresenceRecord *record)
{
  HarkPresenceRecord *copy = hark_presence_record_new();
  copy->is_public = TRUE;
  copy->user = g_strdup(record->user);
  copy->device = g_strdup(record->device);
  copy->certificate = record->certificate != NULL ? g_bytes_ref(record->certificate) : NULL;
  g_free(copy->sn);
  copy->sn = g_strdup(record->sn);
  g_free(copy->nat);
  copy->nat = g_strdup(record->nat);
  copy->status = HARK_PRESENCE_HIDDEN;
  copy->sequence = record->sequence;
  copy->time = record->time;
  return copy;
}

/* ---- limits ---------------------------------------------------------------------------- */

static gboolean malformed(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
malformed(GError **error, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
              "malformed presence record: %s", message);
  return FALSE;
}

static gboolean
is_known(const char *text, const char *const *names, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (strcmp(text, names[i]) == 0)
      return TRUE;
  return FALSE;
}

/* "" or "host:port" with a host the configuration would take and a port 1-65535. */
static gboolean
is_sn_address(const char *text)
{
  if (*text == '\0')
    return TRUE;
  if (strlen(text) > MAX_SN)
    return FALSE;
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text)
    return FALSE;
  guint64 port = 0;
  if (!g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &port, NULL))
    return FALSE;
  g_autofree char *host = g_strndup(text, colon - text);
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    g_autofree char *inner = g_strndup(host + 1, strlen(host) - 2);
    return g_hostname_is_ip_address(inner);
  }
  return hark_config_is_host(host);
}

static gboolean
check_limits(const HarkPresenceRecord *r, GError **error)
{
  if (!hark_presence_name_is_valid(r->user))
    return malformed(error, "the user is not a valid user name");
  if (r->device == NULL || !hark_is_lower_hex(r->device, FINGERPRINT_LENGTH))
    return malformed(error, "the device id is not 64 lower-case hex digits");
  gsize cert_size = r->certificate != NULL ? g_bytes_get_size(r->certificate) : 0;
  if (cert_size == 0 || cert_size > MAX_CERTIFICATE)
    return malformed(error, "the certificate has %" G_GSIZE_FORMAT " bytes (1-%d)", cert_size,
                     MAX_CERTIFICATE);
  if (r->sn == NULL || !is_sn_address(r->sn))
    return malformed(error, "the super node is not \"host:port\"");
  if (r->nat == NULL || !is_known(r->nat, nat_names, G_N_ELEMENTS(nat_names)))
    return malformed(error, "the NAT verdict is not one of unknown, open, nat, udp-blocked");
  if ((guint)r->status > HARK_PRESENCE_HIDDEN)
    return malformed(error, "the status is out of range");
  if (r->addresses->len > HARK_PRESENCE_MAX_ADDRESSES)
    return malformed(error, "%u addresses (at most %d)", r->addresses->len,
                     HARK_PRESENCE_MAX_ADDRESSES);
  for (guint i = 0; i < r->addresses->len; i++) {
    const HarkPresenceAddress *a = r->addresses->pdata[i];
    if (g_strcmp0(a->kind, "host") != 0 && g_strcmp0(a->kind, "srflx") != 0)
      return malformed(error, "an address kind is neither host nor srflx");
    if (a->host == NULL || !g_hostname_is_ip_address(a->host) || a->port == 0)
      return malformed(error, "an address is not an IP address and a port");
  }
  if (r->is_public && (r->addresses->len > 0 || r->status != HARK_PRESENCE_HIDDEN))
    return malformed(error, "a public record carries addresses or a status");
  if (!r->is_public && r->status == HARK_PRESENCE_HIDDEN)
    return malformed(error, "a full record has no status");
  if (r->time <= 0)
    return malformed(error, "the time is not after 1970");
  return TRUE;
}

/* ---- encoding -------------------------------------------------------------------------- */

static GVariant *
payload_variant(const HarkPresenceRecord *r)
{
  GVariantBuilder addresses;
  g_variant_builder_init(&addresses, G_VARIANT_TYPE("a(ssq)"));
  for (guint i = 0; i < r->addresses->len; i++) {
    const HarkPresenceAddress *a = r->addresses->pdata[i];
    g_variant_builder_add(&addresses, "(ssq)", a->kind, a->host, a->port);
  }
  gsize cert_size = 0;
  gconstpointer cert = g_bytes_get_data(r->certificate, &cert_size);
  GVariant *cert_v = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, cert, cert_size, 1);
  return g_variant_ref_sink(g_variant_new(
    "(sss@aysa(ssq)sstx)", r->is_public ? "public" : "full", r->user, r->device, cert_v, r->sn,
    &addresses, r->nat, hark_presence_status_to_string(r->status), r->sequence, r->time));
}

GVariant *
hark_presence_sign(HarkPresenceRecord *record, HarkIdentity *identity, GError **error)
{
  g_return_val_if_fail(record != NULL && identity != NULL, NULL);
  if (!check_limits(record, error))
    return NULL;
  g_autoptr(GVariant) payload = payload_variant(record);
  g_autoptr(GBytes) bytes = hark_variant_wire_bytes(payload);
  if (g_bytes_get_size(bytes) > HARK_PRESENCE_MAX_PAYLOAD) {
    malformed(error, "the payload has %" G_GSIZE_FORMAT " bytes (at most %d)",
              g_bytes_get_size(bytes), HARK_PRESENCE_MAX_PAYLOAD);
    return NULL;
  }
  g_autoptr(GBytes) data = hark_signed_data(SIGNATURE_DOMAIN, bytes);
  g_autoptr(GBytes) signature = hark_identity_sign(identity, data, error);
  if (signature == NULL)
    return NULL;
  g_clear_pointer(&record->signed_form, g_variant_unref);
  record->signed_form = g_variant_ref_sink(
    g_variant_new("(@ay@ay)", hark_variant_new_bytes(bytes), hark_variant_new_bytes(signature)));
  return record->signed_form;
}

/* ---- parsing --------------------------------------------------------------------------- */

static GVariant *
payload_from_bytes(GBytes *bytes, GError **error)
{
  gsize size = g_bytes_get_size(bytes);
  if (size == 0 || size > HARK_PRESENCE_MAX_PAYLOAD) {
    malformed(error, "the payload has %" G_GSIZE_FORMAT " bytes (1-%d)", size,
              HARK_PRESENCE_MAX_PAYLOAD);
    return NULL;
  }
  GVariant *payload =
    hark_variant_from_wire_bytes(G_VARIANT_TYPE(HARK_PRESENCE_PAYLOAD_TYPE), bytes);
  if (payload == NULL)
    malformed(error, "the payload is not a normal-form %s", HARK_PRESENCE_PAYLOAD_TYPE);
  return payload;
}

static HarkPresenceRecord *
record_from_payload(GVariant *payload, GError **error)
{
  const char *form, *user, *device, *sn, *nat, *status;
  g_autoptr(GVariant) cert_v = NULL;
  g_autoptr(GVariantIter) addresses = NULL;
  g_autoptr(HarkPresenceRecord) r = hark_presence_record_new();
  g_variant_get(payload, "(&s&s&s@ay&sa(ssq)&s&stx)", &form, &user, &device, &cert_v, &sn,
                &addresses, &nat, &status, &r->sequence, &r->time);
  if (strcmp(form, "public") != 0 && strcmp(form, "full") != 0) {
    malformed(error, "the form is neither full nor public");
    return NULL;
  }
  r->is_public = strcmp(form, "public") == 0;
  r->user = g_strdup(user);
  r->device = g_strdup(device);
  r->certificate = g_variant_get_data_as_bytes(cert_v);
  g_free(r->sn);
  r->sn = g_strdup(sn);
  g_free(r->nat);
  r->nat = g_strdup(nat);
  if (!hark_presence_status_from_string(status, &r->status)) {
    malformed(error, "the status is not one of online, away, busy, invisible, hidden");
    return NULL;
  }
  if (g_variant_iter_n_children(addresses) > HARK_PRESENCE_MAX_ADDRESSES) {
    malformed(error, "%" G_GSIZE_FORMAT " addresses (at most %d)",
              g_variant_iter_n_children(addresses), HARK_PRESENCE_MAX_ADDRESSES);
    return NULL;
  }
  const char *kind, *host;
  guint16 port;
  while (g_variant_iter_next(addresses, "(&s&sq)", &kind, &host, &port))
    hark_presence_record_add_address(r, kind, host, port);
  if (!check_limits(r, error))
    return NULL;
  return g_steal_pointer(&r);
}

/* The record and, when wanted, the payload's bytes and the signature (new). */
static HarkPresenceRecord *
parse(GVariant *signed_form, GBytes **payload_out, GBytes **signature_out, GError **error)
{
  g_return_val_if_fail(signed_form != NULL, NULL);
  if (!g_variant_is_of_type(signed_form, G_VARIANT_TYPE(HARK_PRESENCE_SIGNED_TYPE))) {
    malformed(error, "it has type %s, not %s", g_variant_get_type_string(signed_form),
              HARK_PRESENCE_SIGNED_TYPE);
    return NULL;
  }
  g_autoptr(GVariant) payload_v = g_variant_get_child_value(signed_form, 0);
  g_autoptr(GVariant) signature_v = g_variant_get_child_value(signed_form, 1);
  g_autoptr(GBytes) payload_b = g_variant_get_data_as_bytes(payload_v);
  g_autoptr(GBytes) signature = g_variant_get_data_as_bytes(signature_v);
  if (g_bytes_get_size(signature) != HARK_IDENTITY_SIGNATURE_SIZE) {
    malformed(error, "the signature has %" G_GSIZE_FORMAT " bytes, not %d",
              g_bytes_get_size(signature), HARK_IDENTITY_SIGNATURE_SIZE);
    return NULL;
  }
  g_autoptr(GVariant) payload = payload_from_bytes(payload_b, error);
  if (payload == NULL)
    return NULL;
  HarkPresenceRecord *record = record_from_payload(payload, error);
  if (record == NULL)
    return NULL;
  record->signed_form = g_variant_get_normal_form(signed_form); /* a full reference */
  if (payload_out != NULL)
    *payload_out = g_steal_pointer(&payload_b);
  if (signature_out != NULL)
    *signature_out = g_steal_pointer(&signature);
  return record;
}

HarkPresenceRecord *
hark_presence_parse(GVariant *signed_form, GError **error)
{
  return parse(signed_form, NULL, NULL, error);
}

static void set_error(GError **error, HarkPresenceError code, const char *user, const char *format,
                      ...) G_GNUC_PRINTF(4, 5);

/* Messages name the (escaped) user, so a log line says whose record was refused. */
static void
set_error(GError **error, HarkPresenceError code, const char *user, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_autofree char *shown = hark_text_escape(user, -1, LOG_TEXT_MAX);
  g_set_error(error, HARK_PRESENCE_ERROR, code, "presence record of '%s' refused: %s", shown,
              message);
}

static gboolean
check_certificate(const HarkPresenceRecord *r, const char *ca_pem, const char *user,
                  GBytes **public_key, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(ca_pem, r->certificate, r->time, &local);
  if (cert == NULL) {
    gboolean expired =
      g_error_matches(local, HARK_CERTIFICATE_ERROR, HARK_CERTIFICATE_ERROR_EXPIRED);
    set_error(error, expired ? HARK_PRESENCE_ERROR_EXPIRED : HARK_PRESENCE_ERROR_FOREIGN, r->user,
              "its certificate %s: %s",
              expired ? "was not valid when the record was signed" : "is not the CA's",
              local->message);
    return FALSE;
  }
  if (g_ascii_strcasecmp(cert->user, r->user) != 0) {
    g_autofree char *certified = hark_text_escape(cert->user, -1, LOG_TEXT_MAX);
    set_error(error, HARK_PRESENCE_ERROR_FOREIGN, r->user,
              "it is published under that name with a certificate of user '%s'", certified);
    return FALSE;
  }
  if (user != NULL && g_ascii_strcasecmp(user, r->user) != 0) {
    set_error(error, HARK_PRESENCE_ERROR_FOREIGN, r->user,
              "it was sent where a record of another user was due");
    return FALSE;
  }
  if (strcmp(cert->device_id, r->device) != 0) {
    set_error(error, HARK_PRESENCE_ERROR_FOREIGN, r->user,
              "its device id is not the certified key's");
    return FALSE;
  }
  *public_key = g_bytes_ref(cert->public_key);
  return TRUE;
}

HarkPresenceRecord *
hark_presence_verify(GVariant *signed_form, const char *ca_pem, const char *user, gint64 now,
                     GError **error)
{
  g_return_val_if_fail(ca_pem != NULL, NULL);
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) signature = NULL;
  g_autoptr(HarkPresenceRecord) r = parse(signed_form, &payload, &signature, error);
  if (r == NULL)
    return NULL;
  if (r->time > now + HARK_PRESENCE_MAX_SKEW_S) {
    set_error(error, HARK_PRESENCE_ERROR_FUTURE, r->user,
              "it is dated %" G_GINT64_FORMAT " s ahead (at most %d)", r->time - now,
              HARK_PRESENCE_MAX_SKEW_S);
    return NULL;
  }
  if (r->time < now - HARK_PRESENCE_LIFETIME_S) {
    set_error(error, HARK_PRESENCE_ERROR_EXPIRED, r->user,
              "it is %" G_GINT64_FORMAT " s old (at most %d)", now - r->time,
              HARK_PRESENCE_LIFETIME_S);
    return NULL;
  }
  g_autoptr(GBytes) public_key = NULL;
  if (!check_certificate(r, ca_pem, user, &public_key, error))
    return NULL;
  g_autoptr(GBytes) data = hark_signed_data(SIGNATURE_DOMAIN, payload);
  if (!hark_identity_verify(public_key, data, signature, NULL)) {
    set_error(error, HARK_PRESENCE_ERROR_FORGED, r->user,
              "its signature is not the certified device key's");
    return NULL;
  }
  return g_steal_pointer(&r);
}

/* ---- lookups --------------------------------------------------------------------------- */

static gboolean
is_strategy_name(const char *name)
{
  gsize length = strlen(name);
  if (length == 0 || length > 32)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-')
      return FALSE;
  return TRUE;
}

HarkPresenceQuery *
hark_presence_query_parse(GVariant *body, GError **error)
{
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE(HARK_PRESENCE_QUERY_TYPE))) {
    g_set_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                "a lookup has type %s, not %s", g_variant_get_type_string(body),
                HARK_PRESENCE_QUERY_TYPE);
    return NULL;
  }
  const char *key;
  gboolean prefix;
  g_autofree const char **strategies = NULL;
  g_variant_get(body, "(&sb^a&s)", &key, &prefix, &strategies);
  /* A prefix is checked as a name: the same characters, a letter first, at most 32. */
  if (!hark_presence_name_is_valid(key)) {
    g_set_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                "a lookup needs a user name or the start of one (1-%d of A-Z a-z 0-9 . _ -, "
                "a letter first)",
                HARK_PRESENCE_NAME_MAX);
    return NULL;
  }
  guint n = g_strv_length((char **)strategies);
  if (n > HARK_PRESENCE_MAX_STRATEGIES) {
    g_set_error(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                "a lookup names %u strategies (at most %d)", n, HARK_PRESENCE_MAX_STRATEGIES);
    return NULL;
  }
  for (guint i = 0; i < n; i++)
    if (!is_strategy_name(strategies[i])) {
      g_set_error_literal(error, HARK_PRESENCE_ERROR, HARK_PRESENCE_ERROR_MALFORMED,
                          "a lookup's strategy name is not 1-32 of a-z 0-9 -");
      return NULL;
    }
  HarkPresenceQuery *query = g_new0(HarkPresenceQuery, 1);
  query->key = hark_presence_name_key(key);
  query->prefix = prefix;
  query->strategies = g_strdupv((char **)strategies);
  return query;
}

void
hark_presence_query_free(HarkPresenceQuery *query)
{
  if (query == NULL)
    return;
  g_free(query->key);
  g_strfreev(query->strategies);
  g_free(query);
}
