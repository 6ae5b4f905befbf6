/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gi ids, records and the message codec. Messages are GVariants of one fixed type
 * (HARK_GI_MESSAGE_TYPE); decoding is strict because every byte comes from another SN:
 * the type, normal form, kind, id lengths and every limit are checked, and a message
 * that breaks one is refused whole. */
#include "gi-engine.h"

#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(hark-gi-error-quark, hark_gi_error)
/* clang-format on */
#define HARK_GI_ERROR hark_gi_error_quark()

static void
sha256(const void *a, gsize alen, const void *b, gsize blen, HarkGiId *out)
{
  g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
  gsize len = HARK_GI_ID_LEN;
  if (alen > 0)
    g_checksum_update(sum, a, alen);
  if (blen > 0)
    g_checksum_update(sum, b, blen);
  g_checksum_get_digest(sum, out->b, &len);
}

void
hark_gi_id_for_user(const char *user, HarkGiId *out)
{
  g_autofree gchar *lower = g_utf8_strdown(user, -1);
  static const char prefix[] = "hark-user:";
  sha256(prefix, sizeof prefix - 1, lower, strlen(lower), out);
}

void
hark_gi_id_for_device_key(const guint8 *key_der, gsize len, HarkGiId *out)
{
  sha256(key_der, len, NULL, 0, out);
}

int
hark_gi_id_cmp_distance(const HarkGiId *a, const HarkGiId *b, const HarkGiId *target)
{
  for (guint i = 0; i < HARK_GI_ID_LEN; i++) {
    guint8 da = a->b[i] ^ target->b[i], db = b->b[i] ^ target->b[i];
    if (da != db)
      return da < db ? -1 : 1;
  }
  return 0;
}

guint
hark_gi_id_common_prefix(const HarkGiId *a, const HarkGiId *b)
{
  for (guint i = 0; i < HARK_GI_ID_LEN; i++) {
    guint8 x = a->b[i] ^ b->b[i];
    if (x != 0)
      return i * 8 + (guint)__builtin_clz((unsigned)x) - 24;
  }
  return HARK_GI_ID_LEN * 8;
}

guint
hark_gi_id_hash(gconstpointer id)
{
  guint h;
  memcpy(&h, ((const HarkGiId *)id)->b, sizeof h); /* ids are hashes already */
  return h;
}

gboolean
hark_gi_id_equal(gconstpointer a, gconstpointer b)
{
  return memcmp(a, b, HARK_GI_ID_LEN) == 0;
}

gboolean
hark_gi_record_fresh(const HarkGiRecord *r, gint64 life_us, gint64 max_future_us, gint64 now_us)
{
  return r->time_us + life_us > now_us && r->time_us <= now_us + max_future_us;
}

gchar *
hark_gi_id_to_hex(const HarkGiId *id, guint bytes)
{
  GString *s = g_string_sized_new(bytes * 2);
  for (guint i = 0; i < MIN(bytes, HARK_GI_ID_LEN); i++)
    g_string_append_printf(s, "%02x", id->b[i]);
  return g_string_free(s, FALSE);
}

HarkGiRecord *
hark_gi_record_new(const HarkGiId *key, const char *device, gint64 time_us, GBytes *blob)
{
  HarkGiRecord *r = g_new0(HarkGiRecord, 1);
  r->key = *key;
  r->device = g_strdup(device);
  r->time_us = time_us;
  r->blob = g_bytes_ref(blob);
  return r;
}

HarkGiRecord *
hark_gi_record_copy(const HarkGiRecord *record)
{
  return hark_gi_record_new(&record->key, record->device, record->time_us, record->blob);
}

void
hark_gi_record_free(HarkGiRecord *record)
{
  if (record == NULL)
    return;
  g_free(record->device);
  g_bytes_unref(record->blob);
  g_free(record);
}

static void
contact_clear(gpointer p)
{
  HarkGiContact *c = p;
  g_clear_pointer(&c->addr, g_bytes_unref);
}

void
hark_gi_message_init(HarkGiMessage *msg, guint8 kind, guint64 request, const HarkGiId *key)
{
  memset(msg, 0, sizeof *msg);
  msg->kind = kind;
  msg->request = request;
  if (key != NULL)
    msg->key = *key;
  msg->contacts = g_array_new(FALSE, TRUE, sizeof(HarkGiContact));
  g_array_set_clear_func(msg->contacts, contact_clear);
  msg->records = g_ptr_array_new_with_free_func((GDestroyNotify)hark_gi_record_free);
}

void
hark_gi_message_clear(HarkGiMessage *msg)
{
  g_clear_pointer(&msg->contacts, g_array_unref);
  g_clear_pointer(&msg->records, g_ptr_array_unref);
}

static GVariant *
bytes_variant(const void *data, gsize len)
{
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, len, 1);
}

GVariant *
hark_gi_message_encode(const HarkGiMessage *msg)
{
  GVariantBuilder contacts, records;
  g_variant_builder_init(&contacts, G_VARIANT_TYPE("a(ayay)"));
  for (guint i = 0; msg->contacts != NULL && i < msg->contacts->len; i++) {
    const HarkGiContact *c = &g_array_index(msg->contacts, HarkGiContact, i);
    gsize alen = 0;
    const void *addr = c->addr != NULL ? g_bytes_get_data(c->addr, &alen) : NULL;
    g_variant_builder_add_value(
      &contacts,
      g_variant_new("(@ay@ay)", bytes_variant(c->id.b, HARK_GI_ID_LEN), bytes_variant(addr, alen)));
  }
  g_variant_builder_init(&records, G_VARIANT_TYPE("a(aysxay)"));
  for (guint i = 0; msg->records != NULL && i < msg->records->len; i++) {
    const HarkGiRecord *r = g_ptr_array_index(msg->records, i);
    gsize blen = 0;
    const void *blob = g_bytes_get_data(r->blob, &blen);
    g_variant_builder_add_value(&records,
                                g_variant_new("(@aysx@ay)", bytes_variant(r->key.b, HARK_GI_ID_LEN),
                                              r->device, r->time_us, bytes_variant(blob, blen)));
  }
  return g_variant_new("(yyt@ayyya(ayay)a(aysxay))", msg->kind, msg->flags, msg->request,
                       bytes_variant(msg->key.b, HARK_GI_ID_LEN), msg->hops, msg->ttl, &contacts,
                       &records);
}

GBytes *
hark_gi_message_encode_bytes(const HarkGiMessage *msg)
{
  g_autoptr(GVariant) v = g_variant_ref_sink(hark_gi_message_encode(msg));
  return g_variant_get_data_as_bytes(v);
}

static gboolean
get_id(GVariant *ay, HarkGiId *out)
{
  gsize len = 0;
  const guint8 *data = g_variant_get_fixed_array(ay, &len, 1);
  if (len != HARK_GI_ID_LEN)
    return FALSE;
  memcpy(out->b, data, HARK_GI_ID_LEN);
  return TRUE;
}

static gboolean
decode_contacts(GVariant *array, HarkGiMessage *msg, GError **error)
{
  gsize n = g_variant_n_children(array);
  if (n > HARK_GI_MAX_CONTACTS) {
    g_set_error(error, HARK_GI_ERROR, 1, "%zu contacts (at most %d)", n, HARK_GI_MAX_CONTACTS);
    return FALSE;
  }
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GVariant) item = g_variant_get_child_value(array, i);
    g_autoptr(GVariant) id = g_variant_get_child_value(item, 0);
    g_autoptr(GVariant) addr = g_variant_get_child_value(item, 1);
    HarkGiContact c = { 0 };
    gsize alen = 0;
    const void *a = g_variant_get_fixed_array(addr, &alen, 1);
    if (!get_id(id, &c.id) || alen > HARK_GI_MAX_ADDR) {
      g_set_error(error, HARK_GI_ERROR, 1, "contact %zu: bad id or address length", i);
      return FALSE;
    }
    c.addr = g_bytes_new(a, alen);
    g_array_append_val(msg->contacts, c);
  }
  return TRUE;
}

static gboolean
decode_records(GVariant *array, HarkGiMessage *msg, GError **error)
{
  gsize n = g_variant_n_children(array);
  if (n > HARK_GI_MAX_RECORDS) {
    g_set_error(error, HARK_GI_ERROR, 1, "%zu records (at most %d)", n, HARK_GI_MAX_RECORDS);
    return FALSE;
  }
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GVariant) item = g_variant_get_child_value(array, i);
    g_autoptr(GVariant) key = g_variant_get_child_value(item, 0);
    g_autoptr(GVariant) blob = g_variant_get_child_value(item, 3);
    const char *device = NULL;
    gint64 time_us = 0;
    HarkGiId k;
    gsize blen = 0;
    const void *b = g_variant_get_fixed_array(blob, &blen, 1);
    g_variant_get_child(item, 1, "&s", &device);
    g_variant_get_child(item, 2, "x", &time_us);
    if (!get_id(key, &k) || strlen(device) == 0 || strlen(device) > HARK_GI_MAX_DEVICE ||
        blen == 0 || blen > HARK_GI_MAX_BLOB) {
      g_set_error(error, HARK_GI_ERROR, 1, "record %zu: bad key, device or blob length", i);
      return FALSE;
    }
    g_autoptr(GBytes) bytes = g_bytes_new(b, blen);
    g_ptr_array_add(msg->records, hark_gi_record_new(&k, device, time_us, bytes));
  }
  return TRUE;
}

gboolean
hark_gi_message_decode(GVariant *variant, HarkGiMessage *msg, GError **error)
{
  hark_gi_message_init(msg, 0, 0, NULL);
  if (!g_variant_is_of_type(variant, G_VARIANT_TYPE(HARK_GI_MESSAGE_TYPE)) ||
      !g_variant_is_normal_form(variant)) {
    g_set_error(error, HARK_GI_ERROR, 1, "not a gi message (type %s or not in normal form)",
                g_variant_get_type_string(variant));
    hark_gi_message_clear(msg);
    return FALSE;
  }
  g_autoptr(GVariant) key = g_variant_get_child_value(variant, 3);
  g_autoptr(GVariant) contacts = g_variant_get_child_value(variant, 6);
  g_autoptr(GVariant) records = g_variant_get_child_value(variant, 7);
  g_variant_get_child(variant, 0, "y", &msg->kind);
  g_variant_get_child(variant, 1, "y", &msg->flags);
  g_variant_get_child(variant, 2, "t", &msg->request);
  g_variant_get_child(variant, 4, "y", &msg->hops);
  g_variant_get_child(variant, 5, "y", &msg->ttl);
  gboolean ok = FALSE;
  if (msg->kind < HARK_GI_PING || msg->kind > HARK_GI_NODES)
    g_set_error(error, HARK_GI_ERROR, 1, "unknown kind %u", msg->kind);
  else if (!get_id(key, &msg->key))
    g_set_error(error, HARK_GI_ERROR, 1, "the key is not %d bytes", HARK_GI_ID_LEN);
  else
    ok = decode_contacts(contacts, msg, error) && decode_records(records, msg, error);
  if (!ok)
    hark_gi_message_clear(msg);
  return ok;
}

gboolean
hark_gi_message_decode_bytes(GBytes *bytes, HarkGiMessage *msg, GError **error)
{
  g_autoptr(GVariant) v = g_variant_ref_sink(
    g_variant_new_from_bytes(G_VARIANT_TYPE(HARK_GI_MESSAGE_TYPE), bytes, FALSE));
  return hark_gi_message_decode(v, msg, error);
}
