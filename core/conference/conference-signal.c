/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conference-signal.c: a conference signal's body, built and parsed (conference-signal.h).
 * Fields: "type" s, "id" ay (16), "version" u, "call" ay (16), "roster" a(ss), "reason" s,
 * "muted" a(ss), "user" s, "mute" b, "succession" a(ss) (user, device), and a FACTS
 * signal's "nat" s, "may_host" b, "cores" u, "load" u, "rtt_ms" u.
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
  [HARK_CONFERENCE_SIGNAL_FACTS] = "facts",
};

static const char *const muted_by[] = { "self", "host", NULL };
static const char *const nat_names[] = {
  [HARK_CONFERENCE_NAT_OPEN] = "open",
  [HARK_CONFERENCE_NAT_CONE] = "cone",
  [HARK_CONFERENCE_NAT_UNKNOWN] = "unknown",
  [HARK_CONFERENCE_NAT_SYMMETRIC] = "symmetric",
  [HARK_CONFERENCE_NAT_UDP_BLOCKED] = "udp-blocked",
};

const char *
hark_conference_nat_name(HarkConferenceNat nat)
{
  return nat < HARK_CONFERENCE_NAT_N ? nat_names[nat] : "?";
}

static const char *const member_states[] = { "host", "calling", "connected", "left", NULL };

const char *
hark_conference_signal_type_name(HarkConferenceSignalType type)
{
  return type < HARK_CONFERENCE_SIGNAL_N_TYPES ? type_names[type] : "?";
}

/* The roster, the muted and the succession are arrays of two strings each (a user, then
 * its state, who muted them, or its device): one set of functions for all three. */
typedef struct {
  char *user, *second;
} Pair;
G_STATIC_ASSERT(sizeof(Pair) == sizeof(HarkConferenceMember) &&
                G_STRUCT_OFFSET(HarkConferenceMember, state) == G_STRUCT_OFFSET(Pair, second));
G_STATIC_ASSERT(sizeof(Pair) == sizeof(HarkConferenceSuccessor) &&
                G_STRUCT_OFFSET(HarkConferenceSuccessor, device) == G_STRUCT_OFFSET(Pair, second));

static void
pair_clear(gpointer data)
{
  Pair *m = data;
  g_free(m->user);
  g_free(m->second);
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
  g_clear_pointer(&signal->succession, g_array_unref);
  g_free(signal->reason);
  g_free(signal->user);
  g_free(signal);
}

static void
pairs_add(GArray **pairs, const char *user, const char *second)
{
  if (*pairs == NULL) {
    *pairs = g_array_new(FALSE, TRUE, sizeof(Pair));
    g_array_set_clear_func(*pairs, pair_clear);
  }
  Pair m = { g_strdup(user), g_strdup(second) };
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
    const Pair *m = &g_array_index(pairs, Pair, i);
    if (strcmp(m->user, user) == 0)
      return m->second;
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
    const Pair *x = &g_array_index(a, Pair, i);
    const Pair *y = &g_array_index(b, Pair, i);
    if (strcmp(x->user, y->user) != 0 || strcmp(x->second, y->second) != 0)
      return FALSE;
  }
  return TRUE;
}

void
hark_conference_signal_add_successor(HarkConferenceSignal *signal, const char *user,
                                     const char *device)
{
  pairs_add(&signal->succession, user, device);
}

static gboolean
facts_equal(const HarkConferenceSignal *a, const HarkConferenceSignal *b)
{
  return a->has_facts == b->has_facts &&
         (!a->has_facts || (a->nat == b->nat && a->may_host == b->may_host &&
                            a->cores == b->cores && a->load == b->load && a->rtt_ms == b->rtt_ms));
}

gboolean
hark_conference_signal_equal(const HarkConferenceSignal *a, const HarkConferenceSignal *b)
{
  if (!pairs_equal(a->succession, b->succession) || !facts_equal(a, b))
    return FALSE;
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

/* An a(ss) of pairs. */
static GVariant *
pairs_variant(const GArray *pairs)
{
  GVariantBuilder r;
  g_variant_builder_init(&r, G_VARIANT_TYPE("a(ss)"));
  for (guint i = 0; i < pairs->len; i++) {
    const Pair *m = &g_array_index(pairs, Pair, i);
    g_variant_builder_add(&r, "(ss)", m->user, m->second);
  }
  return g_variant_builder_end(&r);
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
  if (s->roster != NULL)
    g_variant_builder_add(&b, "{sv}", "roster", pairs_variant(s->roster));
  if (s->reason != NULL)
    g_variant_builder_add(&b, "{sv}", "reason", g_variant_new_string(s->reason));
  if (s->muted != NULL)
    g_variant_builder_add(&b, "{sv}", "muted", pairs_variant(s->muted));
  if (s->user != NULL)
    g_variant_builder_add(&b, "{sv}", "user", g_variant_new_string(s->user));
  if (s->type == HARK_CONFERENCE_SIGNAL_MUTE)
    g_variant_builder_add(&b, "{sv}", "mute", g_variant_new_boolean(s->mute));
  if (s->succession != NULL)
    g_variant_builder_add(&b, "{sv}", "succession", pairs_variant(s->succession));
  if (s->has_facts) {
    g_variant_builder_add(&b, "{sv}", "nat", g_variant_new_string(nat_names[s->nat]));
    g_variant_builder_add(&b, "{sv}", "may_host", g_variant_new_boolean(s->may_host));
    g_variant_builder_add(&b, "{sv}", "cores", g_variant_new_uint32(s->cores));
    g_variant_builder_add(&b, "{sv}", "load", g_variant_new_uint32(s->load));
    g_variant_builder_add(&b, "{sv}", "rtt_ms", g_variant_new_uint32(s->rtt_ms));
  }
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
    if (pairs_find(s->roster, key) != NULL)
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

static gboolean
is_device(const char *device)
{
  if (strlen(device) != HARK_CONFERENCE_DEVICE_HEX)
    return FALSE;
  for (const char *c = device; *c != '\0'; c++)
    if (!g_ascii_isxdigit(*c) || g_ascii_isupper(*c))
      return FALSE;
  return TRUE;
}

/* Only in a ROSTER, after its roster: each successor a member of it other than the host,
 * named once. */
static gboolean
parse_succession(HarkConferenceSignal *s, GVariant *body, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, "succession", G_VARIANT_TYPE("a(ss)"), &v, error))
    return FALSE;
  if (v == NULL)
    return TRUE;
  if (s->type != HARK_CONFERENCE_SIGNAL_ROSTER)
    return refuse(error, "succession", "is only in a roster");
  gsize n = g_variant_n_children(v);
  if (n > HARK_CONFERENCE_MAX_ROSTER - 1)
    return refuse(error, "succession", "has %" G_GSIZE_FORMAT " members, more than %d", n,
                  HARK_CONFERENCE_MAX_ROSTER - 1);
  for (gsize i = 0; i < n; i++) {
    const char *user = NULL, *device = NULL;
    g_variant_get_child(v, i, "(&s&s)", &user, &device);
    if (!hark_presence_name_is_valid(user))
      return refuse(error, "succession", "member %" G_GSIZE_FORMAT " is not a user name", i);
    if (!is_device(device))
      return refuse(error, "succession", "member %" G_GSIZE_FORMAT " has no device id", i);
    g_autofree char *key = hark_presence_name_key(user);
    const char *state = pairs_find(s->roster, key);
    if (state == NULL || strcmp(state, "host") == 0)
      return refuse(error, "succession", "names %s, who is not a member", key);
    if (pairs_find(s->succession, key) != NULL)
      return refuse(error, "succession", "names %s twice", key);
    hark_conference_signal_add_successor(s, key, device);
  }
  return TRUE;
}

/* u name within 0..max (min: its least); *out untouched when absent. FALSE: refused. */
static gboolean
parse_u32(GVariant *body, const char *name, guint32 min, guint32 max, guint32 *out,
          gboolean *has, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  if (!lookup(body, name, G_VARIANT_TYPE_UINT32, &v, error))
    return FALSE;
  *has = v != NULL;
  if (v == NULL)
    return TRUE;
  guint32 value = g_variant_get_uint32(v);
  if (value < min || value > max)
    return refuse(error, name, "is not within %u-%u", min, max);
  *out = value;
  return TRUE;
}

/* A FACTS signal's: nat, may_host, cores and load are required, rtt_ms is not. */
static gboolean
parse_facts(HarkConferenceSignal *s, GVariant *body, GError **error)
{
  gboolean facts = s->type == HARK_CONFERENCE_SIGNAL_FACTS;
  g_autoptr(GVariant) nat = NULL, may_host = NULL;
  if (!lookup(body, "nat", G_VARIANT_TYPE_STRING, &nat, error) ||
      !lookup(body, "may_host", G_VARIANT_TYPE_BOOLEAN, &may_host, error))
    return FALSE;
  gboolean has_cores = FALSE, has_load = FALSE, has_rtt = FALSE;
  if (!parse_u32(body, "cores", 1, HARK_CONFERENCE_MAX_CORES, &s->cores, &has_cores, error) ||
      !parse_u32(body, "load", 0, HARK_CONFERENCE_MAX_LOAD, &s->load, &has_load, error) ||
      !parse_u32(body, "rtt_ms", 0, HARK_CONFERENCE_MAX_RTT_MS, &s->rtt_ms, &has_rtt, error))
    return FALSE;
  if (!facts)
    return nat == NULL && may_host == NULL && !has_cores && !has_load && !has_rtt
             ? TRUE
             : refuse(error, "nat", "and the other facts are only in a facts signal");
  if (nat == NULL || may_host == NULL || !has_cores || !has_load)
    return refuse(error, nat == NULL        ? "nat"
                         : may_host == NULL ? "may_host"
                         : !has_cores       ? "cores"
                                            : "load",
                  "is missing");
  gint found = -1;
  for (guint i = 0; i < G_N_ELEMENTS(nat_names); i++)
    if (strcmp(g_variant_get_string(nat, NULL), nat_names[i]) == 0)
      found = (gint)i;
  if (found < 0)
    return refuse(error, "nat", "is not a known verdict");
  s->has_facts = TRUE;
  s->nat = found;
  s->may_host = g_variant_get_boolean(may_host);
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
      !parse_muted(s, body, error) || !parse_user(s, body, error) || !parse_mute(s, body, error) ||
      !parse_succession(s, body, error) || !parse_facts(s, body, error))
    return NULL;
  return g_steal_pointer(&s);
}
