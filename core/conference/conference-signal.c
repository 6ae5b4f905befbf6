/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-signal.c: a conference signal's body, built and parsed (conference-signal.h).
 * Fields: "type" s, "id" ay (16), "version" u, "call" ay (16), "roster" a(ss), "reason" s,
 * "muted" a(ss), "user" s, "mute" b.
 * Unknown fields are ignored (a later version may add some); a known field of the wrong
 * type or out of its limits refuses the signal. */
#include "conference-signal.h"

#include "hark/presence.h"

#include <gio/gio.h>
#include <string.h>

static const char *const type_names[] = {
  [HARK_CONFERENCE_SIGNAL_ROSTER] = "roster",
  [HARK_CONFERENCE_SIGNAL_END] = "end",
  [HARK_CONFERENCE_SIGNAL_JOIN] = "join",
  [HARK_CONFERENCE_SIGNAL_REFUSED] = "refused",
  [HARK_CONFERENCE_SIGNAL_INVITE] = "invite",
  [HARK_CONFERENCE_SIGNAL_MUTE] = "mute",
  [HARK_CONFERENCE_SIGNAL_SPEAKER] = "speaker",
};

static const char *const muted_by[] = { "self", "host", NULL };

static const char *const member_states[] = { "host", "calling", "connected", "left", NULL };

const char *
hark_conference_signal_type_name(HarkConferenceSignalType type)
{
  return type < HARK_CONFERENCE_SIGNAL_N_TYPES ? type_names[type] : "?";
}

static void
member_clear(gpointer data)
{
  HarkConferenceMember *m = data;
  g_free(m->user);
  g_free(m->state);
}

HarkConferenceSignal *
hark_conference_signal_new(HarkConferenceSignalType type, const guint8 *id)
{
  HarkConferenceSignal *s = g_new0(HarkConferenceSignal, 1);
  s->type = type;
  memcpy(s->id, id, HARK_CONFERENCE_ID_SIZE);
  return s;
}

void
hark_conference_signal_free(HarkConferenceSignal *signal)
{
  if (signal == NULL)
    return;
  g_clear_pointer(&signal->roster, g_array_unref);
  g_clear_pointer(&signal->muted, g_array_unref);
  g_free(signal->reason);
  g_free(signal->user);
  g_free(signal);
}

static void
pairs_add(GArray **pairs, const char *user, const char *state)
{
  if (*pairs == NULL) {
    *pairs = g_array_new(FALSE, TRUE, sizeof(HarkConferenceMember));
    g_array_set_clear_func(*pairs, member_clear);
  }
  HarkConferenceMember m = { g_strdup(user), g_strdup(state) };
  g_array_append_val(*pairs, m);
}

void
hark_conference_signal_add(HarkConferenceSignal *signal, const char *user, const char *state)
{
  pairs_add(&signal->roster, user, state);
}

void
hark_conference_signal_add_muted(HarkConferenceSignal *signal, const char *user, const char *by)
{
  pairs_add(&signal->muted, user, by);
}

/* The second string of user's pair, or NULL. */
static const char *
pairs_find(const GArray *pairs, const char *user)
{
  for (guint i = 0; pairs != NULL && i < pairs->len; i++) {
    const HarkConferenceMember *m = &g_array_index(pairs, HarkConferenceMember, i);
    if (strcmp(m->user, user) == 0)
      return m->state;
  }
  return NULL;
}

const char *
hark_conference_signal_muted_by(const HarkConferenceSignal *signal, const char *user)
{
  return pairs_find(signal->muted, user);
}

static gboolean
pairs_equal(const GArray *a, const GArray *b)
{
  if ((a == NULL) != (b == NULL))
    return FALSE;
  if (a == NULL)
    return TRUE;
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++) {
    const HarkConferenceMember *x = &g_array_index(a, HarkConferenceMember, i);
    const HarkConferenceMember *y = &g_array_index(b, HarkConferenceMember, i);
    if (strcmp(x->user, y->user) != 0 || strcmp(x->state, y->state) != 0)
      return FALSE;
  }
  return TRUE;
}

gboolean
hark_conference_signal_equal(const HarkConferenceSignal *a, const HarkConferenceSignal *b)
{
  if (a->type != b->type || memcmp(a->id, b->id, sizeof a->id) != 0 ||
      a->version != b->version || a->has_call != b->has_call ||
      (a->has_call && memcmp(a->call, b->call, sizeof a->call) != 0) ||
      g_strcmp0(a->reason, b->reason) != 0 || g_strcmp0(a->user, b->user) != 0 ||
      a->mute != b->mute)
    return FALSE;
  return pairs_equal(a->roster, b->roster) && pairs_equal(a->muted, b->muted);
}

static GVariant *
bytes_variant(const guint8 *data, gsize size)
{
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

GVariant *
hark_conference_signal_build(const HarkConferenceSignal *s)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&b, "{sv}", "type", g_variant_new_string(type_names[s->type]));
  g_variant_builder_add(&b, "{sv}", "id", bytes_variant(s->id, HARK_CONFERENCE_ID_SIZE));
  if (s->version != 0)
    g_variant_builder_add(&b, "{sv}", "version", g_variant_new_uint32(s->version));
  if (s->has_call)
    g_variant_builder_add(&b, "{sv}", "call", bytes_variant(s->call, sizeof s->call));
  if (s->roster != NULL) {
    GVariantBuilder r;
    g_variant_builder_init(&r, G_VARIANT_TYPE("a(ss)"));
    for (guint i = 0; i < s->roster->len; i++) {
      const HarkConferenceMember *m = &g_array_index(s->roster, HarkConferenceMember, i);
      g_variant_builder_add(&r, "(ss)", m->user, m->state);
    }
    g_variant_builder_add(&b, "{sv}", "roster", g_variant_builder_end(&r));
  }
  if (s->reason != NULL)
    g_variant_builder_add(&b, "{sv}", "reason", g_variant_new_string(s->reason));
  if (s->muted != NULL) {
    GVariantBuilder r;
    g_variant_builder_init(&r, G_VARIANT_TYPE("a(ss)"));
    for (guint i = 0; i < s->muted->len; i++) {
      const HarkConferenceMember *m = &g_array_index(s->muted, HarkConferenceMember, i);
      g_variant_builder_add(&r, "(ss)", m->user, m->state);
    }
    g_variant_builder_add(&b, "{sv}", "muted", g_variant_builder_end(&r));
  }
  if (s->user != NULL)
    g_variant_builder_add(&b, "{sv}", "user", g_variant_new_string(s->user));
  if (s->type == HARK_CONFERENCE_SIGNAL_MUTE)
    g_variant_builder_add(&b, "{sv}", "mute", g_variant_new_boolean(s->mute));
  return g_variant_builder_end(&b);
}

static gboolean G_GNUC_PRINTF(3, 4)
refuse(GError **error, const char *field, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *why = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "conference signal: '%s' %s", field,
              why);
  return FALSE;
}

/* The field name of type, or NULL when absent; FALSE (refused) when of another type. */
static gboolean
lookup(GVariant *body, const char *name, const GVariantType *type, GVariant **out, GError **error)
{
  *out = g_variant_lookup_value(body, name, NULL);
  if (*out != NULL && !g_variant_is_of_type(*out, type)) {
    g_clear_pointer(out, g_variant_unref);
    return refuse(error, name, "is not of type %s", g_variant_type_peek_string(type));
  }
  return TRUE;
}

static gboolean
parse_bytes(GVariant *body, const char *name, guint8 *out, gsize size, gboolean *has,
            GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, name, G_VARIANT_TYPE_BYTESTRING, &v, error))
    return FALSE;
  *has = v != NULL;
  if (v == NULL)
    return TRUE;
  gsize n = 0;
  const guint8 *data = g_variant_get_fixed_array(v, &n, 1);
  if (n != size)
    return refuse(error, name, "has %" G_GSIZE_FORMAT " bytes, not %" G_GSIZE_FORMAT, n, size);
  memcpy(out, data, size);
  return TRUE;
}

static gboolean
parse_roster(HarkConferenceSignal *s, GVariant *body, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, "roster", G_VARIANT_TYPE("a(ss)"), &v, error))
    return FALSE;
  if (v == NULL)
    return s->type != HARK_CONFERENCE_SIGNAL_ROSTER || refuse(error, "roster", "is missing");
  gsize n = g_variant_n_children(v);
  if (n == 0 || n > HARK_CONFERENCE_MAX_ROSTER)
    return refuse(error, "roster", "has %" G_GSIZE_FORMAT " members, not 1-%d", n,
                  HARK_CONFERENCE_MAX_ROSTER);
  for (gsize i = 0; i < n; i++) {
    const char *user = NULL, *state = NULL;
    g_variant_get_child(v, i, "(&s&s)", &user, &state);
    if (!hark_presence_name_is_valid(user))
      return refuse(error, "roster", "member %" G_GSIZE_FORMAT " is not a user name", i);
    if (!g_strv_contains(member_states, state))
      return refuse(error, "roster", "member %" G_GSIZE_FORMAT " has no known state", i);
    g_autofree char *key = hark_presence_name_key(user);
    for (guint k = 0; s->roster != NULL && k < s->roster->len; k++)
      if (strcmp(g_array_index(s->roster, HarkConferenceMember, k).user, key) == 0)
        return refuse(error, "roster", "names %s twice", key);
    hark_conference_signal_add(s, key, state);
  }
  return TRUE;
}

static gboolean
parse_reason(HarkConferenceSignal *s, GVariant *body, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, "reason", G_VARIANT_TYPE_STRING, &v, error))
    return FALSE;
  if (v == NULL)
    return TRUE;
  const char *reason = g_variant_get_string(v, NULL);
  if (strlen(reason) > HARK_CONFERENCE_MAX_REASON || !g_utf8_validate(reason, -1, NULL))
    return refuse(error, "reason", "is not 0-%d bytes of UTF-8", HARK_CONFERENCE_MAX_REASON);
  s->reason = g_strdup(reason);
  return TRUE;
}

/* "muted": only in a ROSTER, each a member of its roster, once, muted by "self" or "host". */
static gboolean
parse_muted(HarkConferenceSignal *s, GVariant *body, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, "muted", G_VARIANT_TYPE("a(ss)"), &v, error))
    return FALSE;
  if (v == NULL)
    return TRUE;
  if (s->type != HARK_CONFERENCE_SIGNAL_ROSTER)
    return refuse(error, "muted", "is only in a roster");
  gsize n = g_variant_n_children(v);
  if (n == 0 || n > HARK_CONFERENCE_MAX_ROSTER)
    return refuse(error, "muted", "has %" G_GSIZE_FORMAT " members, not 1-%d", n,
                  HARK_CONFERENCE_MAX_ROSTER);
  for (gsize i = 0; i < n; i++) {
    const char *user = NULL, *by = NULL;
    g_variant_get_child(v, i, "(&s&s)", &user, &by);
    g_autofree char *key = hark_presence_name_is_valid(user) ? hark_presence_name_key(user) : NULL;
    if (key == NULL || pairs_find(s->roster, key) == NULL)
      return refuse(error, "muted", "member %" G_GSIZE_FORMAT " is not in the roster", i);
    if (!g_strv_contains(muted_by, by))
      return refuse(error, "muted", "member %" G_GSIZE_FORMAT " is muted by neither self nor host",
                    i);
    if (pairs_find(s->muted, key) != NULL)
      return refuse(error, "muted", "names %s twice", key);
    pairs_add(&s->muted, key, by);
  }
  return TRUE;
}

/* "user": required in an INVITE, optional in a SPEAKER (nobody talks), else refused. */
static gboolean
parse_user(HarkConferenceSignal *s, GVariant *body, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, "user", G_VARIANT_TYPE_STRING, &v, error))
    return FALSE;
  gboolean wanted =
    s->type == HARK_CONFERENCE_SIGNAL_INVITE || s->type == HARK_CONFERENCE_SIGNAL_SPEAKER;
  if (v == NULL)
    return s->type != HARK_CONFERENCE_SIGNAL_INVITE || refuse(error, "user", "is missing");
  if (!wanted)
    return refuse(error, "user", "is only in an invite or a speaker");
  const char *user = g_variant_get_string(v, NULL);
  if (!hark_presence_name_is_valid(user))
    return refuse(error, "user", "is not a user name");
  s->user = hark_presence_name_key(user);
  return TRUE;
}

/* "mute": required in a MUTE, else refused. */
static gboolean
parse_mute(HarkConferenceSignal *s, GVariant *body, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, "mute", G_VARIANT_TYPE_BOOLEAN, &v, error))
    return FALSE;
  if ((v != NULL) != (s->type == HARK_CONFERENCE_SIGNAL_MUTE))
    return refuse(error, "mute", v == NULL ? "is missing" : "is only in a mute");
  s->mute = v != NULL && g_variant_get_boolean(v);
  return TRUE;
}

HarkConferenceSignal *
hark_conference_signal_parse(GVariant *body, GError **error)
{
  if (body == NULL || !g_variant_is_of_type(body, G_VARIANT_TYPE_VARDICT)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "conference signal: not an a{sv}");
    return NULL;
  }
  g_autoptr(GVariant) type = NULL;
  if (!lookup(body, "type", G_VARIANT_TYPE_STRING, &type, error))
    return NULL;
  gint found = -1;
  for (guint i = 0; type != NULL && i < G_N_ELEMENTS(type_names); i++)
    if (strcmp(g_variant_get_string(type, NULL), type_names[i]) == 0)
      found = (gint)i;
  if (found < 0) {
    refuse(error, "type", "is missing or unknown");
    return NULL;
  }
  guint8 id[HARK_CONFERENCE_ID_SIZE];
  gboolean has_id = FALSE;
  if (!parse_bytes(body, "id", id, sizeof id, &has_id, error))
    return NULL;
  if (!has_id) {
    refuse(error, "id", "is missing");
    return NULL;
  }
  g_autoptr(HarkConferenceSignal) s = hark_conference_signal_new(found, id);
  g_autoptr(GVariant) version = NULL;
  if (!lookup(body, "version", G_VARIANT_TYPE_UINT32, &version, error))
    return NULL;
  s->version = version != NULL ? g_variant_get_uint32(version) : 0;
  gboolean versioned = s->type == HARK_CONFERENCE_SIGNAL_ROSTER ||
                       s->type == HARK_CONFERENCE_SIGNAL_END ||
                       s->type == HARK_CONFERENCE_SIGNAL_SPEAKER;
  if (versioned && s->version == 0) {
    refuse(error, "version", "is missing or 0");
    return NULL;
  }
  if (!parse_bytes(body, "call", s->call, sizeof s->call, &s->has_call, error))
    return NULL;
  if (s->type == HARK_CONFERENCE_SIGNAL_ROSTER && !s->has_call) {
    refuse(error, "call", "is missing");
    return NULL;
  }
  if (!parse_roster(s, body, error) || !parse_reason(s, body, error) ||
      !parse_muted(s, body, error) || !parse_user(s, body, error) || !parse_mute(s, body, error))
    return NULL;
  return g_steal_pointer(&s);
}
