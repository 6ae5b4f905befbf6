/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* message-inner.c: what an envelope carries once opened (message-envelope.h): the kinds
 * text, receipt, typing, history-request, history (with a group's state for a group's
 * conversation), group and signal as (sa{sv}), and the replay guard a recipient keeps per
 * sender device.
 *
 * The plaintext comes from a sender whose signature checked out, but that sender may be
 * hostile: every field is type-checked and bounded here, for the one who builds a message
 * and for the one who reads it. A kind this version does not know is passed on as OTHER,
 * so that a newer sender's message is ignored rather than refused as malformed. */
#include "message-envelope.h"
#include "message-group.h"

#include "hark/presence.h"
#include "signed-variant.h"

#include <string.h>

#define KIND_NAME_MAX 32
#define PAST_TYPE "a(ayssstxs)" /* id, conversation, sender, device, sequence, time, text */

#define inner_error(error, code, ...) \
  hark_message_refuse(error, code, "message content", __VA_ARGS__)

gboolean
hark_message_refuse(GError **error, HarkMessageError code, const char *what, const char *format,
                    ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, HARK_MESSAGE_ERROR, code, "%s refused: %s", what, message);
  return FALSE;
}

/* ---- building -------------------------------------------------------------------------- */

static gboolean
check_text(const char *text, gsize length, GError **error)
{
  if (length > HARK_MESSAGE_MAX_TEXT)
    return inner_error(error, HARK_MESSAGE_ERROR_TOO_LARGE,
                       "a text has %" G_GSIZE_FORMAT " bytes (at most %d)", length,
                       HARK_MESSAGE_MAX_TEXT);
  if (!g_utf8_validate_len(text, length, NULL))
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a text is not UTF-8 without NUL");
  return TRUE;
}

static GVariant *
inner_new(const char *kind, GVariantBuilder *fields)
{
  return g_variant_new("(sa{sv})", kind, fields);
}

GVariant *
hark_message_text_new_with(const char *text, const char *name, GVariant *value, GError **error)
{
  g_return_val_if_fail(text != NULL, NULL);
  if (!check_text(text, strlen(text), error)) {
    if (value != NULL)
      g_variant_unref(g_variant_ref_sink(value));
    return NULL;
  }
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&fields, "{sv}", "text", g_variant_new_string(text));
  if (name != NULL)
    g_variant_builder_add(&fields, "{sv}", name, value);
  return inner_new("text", &fields);
}

GVariant *
hark_message_text_new(const char *text, GError **error)
{
  return hark_message_text_new_with(text, NULL, NULL, error);
}

static gboolean
is_receipt_state(const char *state)
{
  return strcmp(state, "delivered") == 0 || strcmp(state, "read") == 0;
}

GVariant *
hark_message_receipt_new(const guint8 (*ids)[HARK_MESSAGE_ID_SIZE], guint n_ids, const char *state,
                         GError **error)
{
  g_return_val_if_fail(state != NULL && (ids != NULL || n_ids == 0), NULL);
  if (n_ids == 0 || n_ids > HARK_MESSAGE_MAX_RECEIPT_IDS) {
    inner_error(error, n_ids == 0 ? HARK_MESSAGE_ERROR_MALFORMED : HARK_MESSAGE_ERROR_TOO_LARGE,
                "a receipt names %u messages (1-%d)", n_ids, HARK_MESSAGE_MAX_RECEIPT_IDS);
    return NULL;
  }
  if (!is_receipt_state(state)) {
    inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a receipt's state is not delivered or read");
    return NULL;
  }
  GVariantBuilder list;
  g_variant_builder_init(&list, G_VARIANT_TYPE("aay"));
  for (guint i = 0; i < n_ids; i++)
    g_variant_builder_add_value(
      &list, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, ids[i], HARK_MESSAGE_ID_SIZE, 1));
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&fields, "{sv}", "ids", g_variant_builder_end(&list));
  g_variant_builder_add(&fields, "{sv}", "state", g_variant_new_string(state));
  return inner_new("receipt", &fields);
}

GVariant *
hark_message_typing_new(gboolean on)
{
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&fields, "{sv}", "on", g_variant_new_boolean(on));
  return inner_new("typing", &fields);
}

GVariant *
hark_message_past_request_new(void)
{
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  return inner_new("history-request", &fields);
}

void
hark_message_past_free(HarkMessagePast *past)
{
  if (past == NULL)
    return;
  g_free(past->conversation);
  g_free(past->sender);
  g_free(past->sender_device);
  g_free(past->text);
  g_free(past);
}

/* "u:" + a canonical user name, or "g:" + a group id. */
static gboolean
is_conversation(const char *key)
{
  if (g_str_has_prefix(key, "g:"))
    return hark_is_lower_hex(key + 2, HARK_MESSAGE_GROUP_ID_LENGTH);
  if (!g_str_has_prefix(key, "u:") || !hark_presence_name_is_valid(key + 2))
    return FALSE;
  g_autofree char *canonical = hark_presence_name_key(key + 2);
  return strcmp(canonical, key + 2) == 0;
}

static gboolean
check_past(const HarkMessagePast *p, GError **error)
{
  if (p->conversation == NULL || !is_conversation(p->conversation))
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a past message's conversation is not u:USER or g:GROUP");
  if (p->sender == NULL || !hark_presence_name_is_valid(p->sender))
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a past message's sender is not a user name");
  if (p->sender_device == NULL || !hark_is_lower_hex(p->sender_device, 64))
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a past message's device is not 64 lower-case hex digits");
  if (p->sequence == 0 || p->sequence > G_MAXINT64 || p->time <= 0)
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a past message's sequence or time is out of range");
  return p->text != NULL && check_text(p->text, strlen(p->text), error);
}

static GVariant *
past_variant(const HarkMessagePast *p)
{
  return g_variant_new(
    "(@ayssstxs)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, p->id, HARK_MESSAGE_ID_SIZE, 1),
    p->conversation, p->sender, p->sender_device, p->sequence, p->time, p->text);
}

gsize
hark_message_past_size(const HarkMessagePast *past)
{
  g_autoptr(GVariant) v = g_variant_ref_sink(past_variant(past));
  return g_variant_get_size(v) + 8; /* and its offset in the array, at most */
}

/* A batch that carries a group's state holds that group's messages only: the state is
 * what the new device checks them against. */
static gboolean
check_past_group(const HarkMessagePast *p, const HarkMessageGroup *group, GError **error)
{
  if (group == NULL ||
      (g_str_has_prefix(p->conversation, "g:") && strcmp(p->conversation + 2, group->id) == 0))
    return TRUE;
  return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                     "a history batch with a group's state holds a message of another "
                     "conversation");
}

GVariant *
hark_message_past_new(HarkMessagePast *const *past, guint n_past, GError **error)
{
  return hark_message_past_group_new(past, n_past, NULL, error);
}

GVariant *
hark_message_past_group_new(HarkMessagePast *const *past, guint n_past,
                            const HarkMessageGroup *group, GError **error)
{
  g_return_val_if_fail(past != NULL || n_past == 0, NULL);
  if (n_past == 0 || n_past > HARK_MESSAGE_MAX_PAST) {
    inner_error(error, n_past == 0 ? HARK_MESSAGE_ERROR_MALFORMED : HARK_MESSAGE_ERROR_TOO_LARGE,
                "a history batch has %u messages (1-%d)", n_past, HARK_MESSAGE_MAX_PAST);
    return NULL;
  }
  GVariantBuilder list;
  g_variant_builder_init(&list, G_VARIANT_TYPE(PAST_TYPE));
  for (guint i = 0; i < n_past; i++) {
    if (!check_past(past[i], error) || !check_past_group(past[i], group, error)) {
      g_variant_builder_clear(&list);
      return NULL;
    }
    g_variant_builder_add_value(&list, past_variant(past[i]));
  }
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&fields, "{sv}", "messages", g_variant_builder_end(&list));
  if (group != NULL)
    g_variant_builder_add(&fields, "{sv}", "group", hark_message_group_state_new(group));
  return inner_new("history", &fields);
}

static gboolean is_kind_name(const char *kind);

static gboolean
check_signal(const char *kind, GVariant *body, GError **error)
{
  if (!is_kind_name(kind))
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a signal's kind is not 1-32 of a-z and -");
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE_VARDICT))
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a signal's body is not a{sv}");
  gsize size = g_variant_get_size(body);
  if (size > HARK_MESSAGE_MAX_SIGNAL_BODY)
    return inner_error(error, HARK_MESSAGE_ERROR_TOO_LARGE,
                       "a signal's body has %" G_GSIZE_FORMAT " bytes (at most %d)", size,
                       HARK_MESSAGE_MAX_SIGNAL_BODY);
  return TRUE;
}

GVariant *
hark_message_signal_new(const char *kind, GVariant *body, GError **error)
{
  g_return_val_if_fail(kind != NULL && body != NULL, NULL);
  g_autoptr(GVariant) owned = g_variant_ref_sink(body);
  if (!check_signal(kind, owned, error))
    return NULL;
  GVariantBuilder fields;
  g_variant_builder_init(&fields, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&fields, "{sv}", "kind", g_variant_new_string(kind));
  g_variant_builder_add(&fields, "{sv}", "body", owned);
  return inner_new("signal", &fields);
}

/* ---- parsing --------------------------------------------------------------------------- */

void
hark_message_inner_free(HarkMessageInner *inner)
{
  if (inner == NULL)
    return;
  g_free(inner->kind_name);
  g_free(inner->text);
  g_clear_pointer(&inner->ids, g_ptr_array_unref);
  g_clear_pointer(&inner->past, g_ptr_array_unref);
  g_free(inner->state);
  hark_message_group_change_free(inner->group);
  hark_message_group_free(inner->group_state);
  g_free(inner->signal_kind);
  g_clear_pointer(&inner->signal_body, g_variant_unref);
  g_free(inner);
}

/* The field name of fields, of type; NULL (and MALFORMED) when it is missing or another
 * type. */
static GVariant *
field(GVariant *fields, const char *kind, const char *name, const GVariantType *type,
      GError **error)
{
  GVariant *value = g_variant_lookup_value(fields, name, type);
  if (value == NULL)
    inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a %s has no '%s' of type %s", kind, name,
                g_variant_type_peek_string(type));
  return value;
}

static gboolean
parse_text(HarkMessageInner *inner, GVariant *fields, GError **error)
{
  g_autoptr(GVariant) text = field(fields, "text", "text", G_VARIANT_TYPE_STRING, error);
  if (text == NULL)
    return FALSE;
  gsize length = 0;
  const char *data = g_variant_get_string(text, &length);
  if (!check_text(data, length, error))
    return FALSE;
  inner->text = g_strdup(data);
  /* A text to a group may carry the group's state (message-group.h). */
  g_autoptr(GVariant) group = g_variant_lookup_value(fields, "group", G_VARIANT_TYPE_VARDICT);
  if (group != NULL)
    inner->group_state = hark_message_group_state_parse(group, error);
  return group == NULL || inner->group_state != NULL;
}

static gboolean
parse_receipt(HarkMessageInner *inner, GVariant *fields, GError **error)
{
  g_autoptr(GVariant) ids = field(fields, "receipt", "ids", G_VARIANT_TYPE("aay"), error);
  g_autoptr(GVariant) state =
    ids != NULL ? field(fields, "receipt", "state", G_VARIANT_TYPE_STRING, error) : NULL;
  if (state == NULL)
    return FALSE;
  if (!is_receipt_state(g_variant_get_string(state, NULL)))
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a receipt's state is not delivered or read");
  gsize n = g_variant_n_children(ids);
  if (n == 0 || n > HARK_MESSAGE_MAX_RECEIPT_IDS)
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a receipt names %" G_GSIZE_FORMAT " messages (1-%d)", n,
                       HARK_MESSAGE_MAX_RECEIPT_IDS);
  inner->state = g_variant_dup_string(state, NULL);
  inner->ids = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GVariant) id = g_variant_get_child_value(ids, i);
    if (g_variant_n_children(id) != HARK_MESSAGE_ID_SIZE)
      return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a receipt's id is not %d bytes",
                         HARK_MESSAGE_ID_SIZE);
    g_ptr_array_add(inner->ids, g_variant_get_data_as_bytes(id));
  }
  return TRUE;
}

static gboolean
parse_typing(HarkMessageInner *inner, GVariant *fields, GError **error)
{
  g_autoptr(GVariant) on = field(fields, "typing", "on", G_VARIANT_TYPE_BOOLEAN, error);
  if (on == NULL)
    return FALSE;
  inner->on = g_variant_get_boolean(on);
  return TRUE;
}

static gboolean
parse_signal(HarkMessageInner *inner, GVariant *fields, GError **error)
{
  g_autoptr(GVariant) kind = field(fields, "signal", "kind", G_VARIANT_TYPE_STRING, error);
  g_autoptr(GVariant) body =
    kind != NULL ? field(fields, "signal", "body", G_VARIANT_TYPE_VARDICT, error) : NULL;
  if (body == NULL || !check_signal(g_variant_get_string(kind, NULL), body, error))
    return FALSE;
  inner->signal_kind = g_variant_dup_string(kind, NULL);
  inner->signal_body = g_steal_pointer(&body);
  return TRUE;
}

static HarkMessagePast *
parse_one_past(GVariant *entry, GError **error)
{
  g_autoptr(GVariant) id = NULL;
  g_autoptr(HarkMessagePast) p = g_new0(HarkMessagePast, 1);
  g_variant_get(entry, "(@ayssstxs)", &id, &p->conversation, &p->sender, &p->sender_device,
                &p->sequence, &p->time, &p->text);
  if (g_variant_n_children(id) != HARK_MESSAGE_ID_SIZE) {
    inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "a past message's id is not %d bytes",
                HARK_MESSAGE_ID_SIZE);
    return NULL;
  }
  memcpy(p->id, g_variant_get_data(id), HARK_MESSAGE_ID_SIZE);
  return check_past(p, error) ? g_steal_pointer(&p) : NULL;
}

static gboolean
parse_history(HarkMessageInner *inner, GVariant *fields, GError **error)
{
  g_autoptr(GVariant) list = field(fields, "history", "messages", G_VARIANT_TYPE(PAST_TYPE), error);
  if (list == NULL)
    return FALSE;
  gsize n = g_variant_n_children(list);
  if (n == 0 || n > HARK_MESSAGE_MAX_PAST)
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a history batch has %" G_GSIZE_FORMAT " messages (1-%d)", n,
                       HARK_MESSAGE_MAX_PAST);
  /* A batch of a group's conversation carries the group's state (a new device of a
   * member learns the group from it). */
  g_autoptr(GVariant) group = g_variant_lookup_value(fields, "group", G_VARIANT_TYPE_VARDICT);
  if (group != NULL && (inner->group_state = hark_message_group_state_parse(group, error)) == NULL)
    return FALSE;
  inner->past = g_ptr_array_new_with_free_func((GDestroyNotify)hark_message_past_free);
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GVariant) entry = g_variant_get_child_value(list, i);
    HarkMessagePast *p = parse_one_past(entry, error);
    if (p == NULL)
      return FALSE;
    g_ptr_array_add(inner->past, p);
    if (!check_past_group(p, inner->group_state, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
is_kind_name(const char *kind)
{
  gsize length = strlen(kind);
  if (length == 0 || length > KIND_NAME_MAX)
    return FALSE;
  for (const char *p = kind; *p != '\0'; p++)
    if (!g_ascii_islower(*p) && *p != '-')
      return FALSE;
  return TRUE;
}

HarkMessageInner *
hark_message_inner_parse(GVariant *value, GError **error)
{
  g_return_val_if_fail(value != NULL, NULL);
  if (!g_variant_is_of_type(value, G_VARIANT_TYPE(HARK_MESSAGE_INNER_TYPE))) {
    inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "it has type %s, not %s",
                g_variant_get_type_string(value), HARK_MESSAGE_INNER_TYPE);
    return NULL;
  }
  const char *kind;
  g_autoptr(GVariant) fields = NULL;
  g_variant_get(value, "(&s@a{sv})", &kind, &fields);
  if (!is_kind_name(kind)) {
    inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "the kind is not 1-%d of a-z and -",
                KIND_NAME_MAX);
    return NULL;
  }
  g_autoptr(HarkMessageInner) inner = g_new0(HarkMessageInner, 1);
  inner->kind_name = g_strdup(kind);
  gboolean ok = TRUE;
  if (strcmp(kind, "text") == 0) {
    inner->kind = HARK_MESSAGE_KIND_TEXT;
    ok = parse_text(inner, fields, error);
  } else if (strcmp(kind, "receipt") == 0) {
    inner->kind = HARK_MESSAGE_KIND_RECEIPT;
    ok = parse_receipt(inner, fields, error);
  } else if (strcmp(kind, "typing") == 0) {
    inner->kind = HARK_MESSAGE_KIND_TYPING;
    ok = parse_typing(inner, fields, error);
  } else if (strcmp(kind, "history-request") == 0) {
    inner->kind = HARK_MESSAGE_KIND_HISTORY_REQUEST; /* no fields (later ones are ignored) */
  } else if (strcmp(kind, "history") == 0) {
    inner->kind = HARK_MESSAGE_KIND_HISTORY;
    ok = parse_history(inner, fields, error);
  } else if (strcmp(kind, "group") == 0) {
    inner->kind = HARK_MESSAGE_KIND_GROUP;
    inner->group = hark_message_group_change_parse(fields, error);
    ok = inner->group != NULL;
  } else if (strcmp(kind, "signal") == 0) {
    inner->kind = HARK_MESSAGE_KIND_SIGNAL;
    ok = parse_signal(inner, fields, error);
  } else {
    inner->kind = HARK_MESSAGE_KIND_OTHER;
  }
  return ok ? g_steal_pointer(&inner) : NULL;
}

/* ---- the replay guard ------------------------------------------------------------------ */

#define WORDS (HARK_MESSAGE_REPLAY_WINDOW / 64)
#define REPLAY_VERSION 1

static gboolean
bit_is_set(const HarkMessageReplay *g, guint64 offset)
{
  return (g->bitmap[offset / 64] >> (offset % 64)) & 1;
}

/* Moves the window up by shift: bit i becomes bit i + shift; those past the window go. */
static void
shift_window(HarkMessageReplay *g, guint64 shift)
{
  if (shift >= HARK_MESSAGE_REPLAY_WINDOW) {
    memset(g->bitmap, 0, sizeof g->bitmap);
    return;
  }
  guint words = (guint)(shift / 64), bits = (guint)(shift % 64);
  for (int i = WORDS - 1; i >= 0; i--) {
    guint64 value = 0;
    if (i >= (int)words) {
      value = g->bitmap[i - words] << bits;
      if (bits != 0 && i - (int)words - 1 >= 0)
        value |= g->bitmap[i - words - 1] >> (64 - bits);
    }
    g->bitmap[i] = value;
  }
}

gboolean
hark_message_replay_check(const HarkMessageReplay *g, guint64 counter, GError **error)
{
  g_return_val_if_fail(g != NULL, FALSE);
  if (counter == 0)
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED, "counter 0 is never sent");
  if (counter > g->highest)
    return TRUE;
  guint64 offset = g->highest - counter;
  if (offset >= HARK_MESSAGE_REPLAY_WINDOW)
    return inner_error(error, HARK_MESSAGE_ERROR_REPLAYED,
                       "counter %" G_GUINT64_FORMAT
                       " is older than the last %d of %" G_GUINT64_FORMAT,
                       counter, HARK_MESSAGE_REPLAY_WINDOW, g->highest);
  if (bit_is_set(g, offset))
    return inner_error(error, HARK_MESSAGE_ERROR_REPLAYED,
                       "counter %" G_GUINT64_FORMAT " was taken already", counter);
  return TRUE;
}

gboolean
hark_message_replay_check_and_mark(HarkMessageReplay *g, guint64 counter, GError **error)
{
  if (!hark_message_replay_check(g, counter, error))
    return FALSE;
  if (counter > g->highest) {
    shift_window(g, counter - g->highest);
    g->highest = counter;
  }
  guint64 offset = g->highest - counter;
  g->bitmap[offset / 64] |= G_GUINT64_CONSTANT(1) << (offset % 64);
  return TRUE;
}

GBytes *
hark_message_replay_to_bytes(const HarkMessageReplay *g)
{
  guint8 *out = g_malloc(HARK_MESSAGE_REPLAY_BYTES);
  out[0] = REPLAY_VERSION;
  guint64 highest = GUINT64_TO_LE(g->highest);
  memcpy(out + 1, &highest, 8);
  for (guint i = 0; i < WORDS; i++) {
    guint64 word = GUINT64_TO_LE(g->bitmap[i]);
    memcpy(out + 9 + 8 * i, &word, 8);
  }
  return g_bytes_new_take(out, HARK_MESSAGE_REPLAY_BYTES);
}

gboolean
hark_message_replay_from_bytes(HarkMessageReplay *g, GBytes *bytes, GError **error)
{
  gsize size = 0;
  const guint8 *data = g_bytes_get_data(bytes, &size);
  if (size != HARK_MESSAGE_REPLAY_BYTES || data[0] != REPLAY_VERSION)
    return inner_error(error, HARK_MESSAGE_ERROR_MALFORMED,
                       "a replay guard's state is not %d bytes of version %d",
                       HARK_MESSAGE_REPLAY_BYTES, REPLAY_VERSION);
  HarkMessageReplay read = { 0 };
  memcpy(&read.highest, data + 1, 8);
  read.highest = GUINT64_FROM_LE(read.highest);
  for (guint i = 0; i < WORDS; i++) {
    memcpy(&read.bitmap[i], data + 9 + 8 * i, 8);
    read.bitmap[i] = GUINT64_FROM_LE(read.bitmap[i]);
  }
  *g = read;
  return TRUE;
}
