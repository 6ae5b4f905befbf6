/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* call-signal.c: call signals to and from their a{sv} body (call-signal.h; docs/protocol.md,
 * "Calls: signalling"). One table says which fields each type carries and which it needs.
 * Parsing refuses a body not in normal form, walks the dictionary once (a known key twice,
 * or of another type, is refused), then checks each field the type uses against its limits.
 * Keys the type does not use are ignored like unknown ones (a newer sender's), so what
 * parse keeps is exactly what build writes again: parse(build(x)) equals x. Errors name
 * the field but never quote the peer's value (it could forge a log line). */
#include "call-signal.h"

#include <string.h>

G_DEFINE_QUARK(hark-call-error-quark, hark_call_error)

typedef enum {
  F_T,
  F_ID,
  F_SEQ,
  F_NONCE,
  F_PEER_NONCE,
  F_SHARE,
  F_CODECS,
  F_DTMF_PT,
  F_UFRAG,
  F_PWD,
  F_CANDIDATES,
  F_EOC,
  F_PATH,
  F_HOLD,
  F_REASON,
  F_DEVICE_NAME,
  N_FIELDS
} Field;

static const struct {
  const char *key;
  const char *type;
} fields[N_FIELDS] = {
  [F_T] = { "t", "s" },
  [F_ID] = { "id", "ay" },
  [F_SEQ] = { "seq", "u" },
  [F_NONCE] = { "nonce", "ay" },
  [F_PEER_NONCE] = { "peer-nonce", "ay" },
  [F_SHARE] = { "share", "ay" },
  [F_CODECS] = { "codecs", "a(sy)" },
  [F_DTMF_PT] = { "dtmf-pt", "y" },
  [F_UFRAG] = { "ufrag", "s" },
  [F_PWD] = { "pwd", "s" },
  [F_CANDIDATES] = { "candidates", "as" },
  [F_EOC] = { "eoc", "b" },
  [F_PATH] = { "path", "s" },
  [F_HOLD] = { "hold", "b" },
  [F_REASON] = { "reason", "s" },
  [F_DEVICE_NAME] = { "device-name", "s" },
};

#define B(f) (1u << (f))
#define COMMON (B(F_T) | B(F_ID) | B(F_SEQ))
#define ICE (B(F_UFRAG) | B(F_PWD) | B(F_CANDIDATES) | B(F_EOC))
#define ENDING (COMMON | B(F_REASON))

/* uses: the fields the type carries; needs: those it cannot go without; max_codecs: how
 * many codecs it may name (an offer many, an answer or update the one chosen). */
static const struct {
  const char *name;
  guint uses, needs, max_codecs;
} types[HARK_CALL_SIGNAL_N_TYPES] = {
  [HARK_CALL_SIGNAL_INVITE] = { "invite",
                                COMMON | B(F_NONCE) | B(F_SHARE) | B(F_CODECS) | B(F_DTMF_PT) | ICE,
                                COMMON | B(F_NONCE) | B(F_SHARE) | B(F_CODECS) | B(F_UFRAG) |
                                  B(F_PWD),
                                HARK_CALL_MAX_CODECS },
  [HARK_CALL_SIGNAL_RINGING] = { "ringing", COMMON | B(F_DEVICE_NAME), COMMON, 0 },
  [HARK_CALL_SIGNAL_ANSWER] = { "answer",
                                COMMON | B(F_NONCE) | B(F_PEER_NONCE) | B(F_SHARE) | B(F_CODECS) |
                                  B(F_DTMF_PT) | ICE | B(F_DEVICE_NAME),
                                COMMON | B(F_NONCE) | B(F_PEER_NONCE) | B(F_SHARE) | B(F_CODECS) |
                                  B(F_UFRAG) | B(F_PWD),
                                1 },
  [HARK_CALL_SIGNAL_ACK] = { "ack", COMMON | B(F_PEER_NONCE), COMMON | B(F_PEER_NONCE), 0 },
  [HARK_CALL_SIGNAL_DECLINE] = { "decline", ENDING, COMMON, 0 },
  [HARK_CALL_SIGNAL_BUSY] = { "busy", ENDING, COMMON, 0 },
  [HARK_CALL_SIGNAL_CANCEL] = { "cancel", ENDING, COMMON, 0 },
  [HARK_CALL_SIGNAL_HANGUP] = { "hangup", ENDING, COMMON, 0 },
  [HARK_CALL_SIGNAL_HOLD] = { "hold", COMMON | B(F_HOLD), COMMON | B(F_HOLD), 0 },
  [HARK_CALL_SIGNAL_UPDATE] = { "update", COMMON | B(F_NONCE) | B(F_CODECS) | ICE | B(F_PATH),
                                COMMON | B(F_NONCE), 1 },
  [HARK_CALL_SIGNAL_UPDATE_OK] = { "update-ok",
                                   COMMON | B(F_NONCE) | B(F_PEER_NONCE) | B(F_CODECS) | ICE |
                                     B(F_PATH),
                                   COMMON | B(F_PEER_NONCE), 1 },
  [HARK_CALL_SIGNAL_CANDIDATES] = { "candidates", COMMON | B(F_CANDIDATES) | B(F_EOC), COMMON, 0 },
  [HARK_CALL_SIGNAL_FAIL] = { "fail", ENDING, COMMON, 0 },
};

static const char *const paths[] = { "any", "udp", "tcp", "relay" };

/* ---- the object ------------------------------------------------------------------------ */

HarkCallSignal *
hark_call_signal_new(HarkCallSignalType type, const guint8 call_id[HARK_CALL_ID_SIZE], guint32 seq)
{
  g_return_val_if_fail(type < HARK_CALL_SIGNAL_N_TYPES, NULL);
  HarkCallSignal *signal = g_new0(HarkCallSignal, 1);
  signal->type = type;
  if (call_id != NULL)
    memcpy(signal->call_id, call_id, HARK_CALL_ID_SIZE);
  signal->seq = seq;
  return signal;
}

void
hark_call_signal_free(HarkCallSignal *signal)
{
  if (signal == NULL)
    return;
  if (signal->codecs != NULL)
    g_array_unref(signal->codecs);
  if (signal->candidates != NULL)
    g_ptr_array_unref(signal->candidates);
  g_free(signal->ice_ufrag);
  g_free(signal->ice_pwd);
  g_free(signal->path);
  g_free(signal->reason);
  g_free(signal->device_name);
  g_free(signal);
}

const char *
hark_call_signal_type_name(HarkCallSignalType type)
{
  return type < HARK_CALL_SIGNAL_N_TYPES ? types[type].name : NULL;
}

static gboolean
type_from_name(const char *name, HarkCallSignalType *type)
{
  for (guint i = 0; i < HARK_CALL_SIGNAL_N_TYPES; i++)
    if (strcmp(types[i].name, name) == 0) {
      *type = i;
      return TRUE;
    }
  return FALSE;
}

static gboolean
bytes_equal(gboolean has_a, const guint8 *a, gboolean has_b, const guint8 *b, gsize size)
{
  return has_a == has_b && (!has_a || memcmp(a, b, size) == 0);
}

static guint
n_codecs(const HarkCallSignal *s)
{
  return s->codecs != NULL ? s->codecs->len : 0;
}

static guint
n_candidates(const HarkCallSignal *s)
{
  return s->candidates != NULL ? s->candidates->len : 0;
}

gboolean
hark_call_signal_equal(const HarkCallSignal *a, const HarkCallSignal *b)
{
  if (a->type != b->type || memcmp(a->call_id, b->call_id, HARK_CALL_ID_SIZE) != 0 ||
      a->seq != b->seq ||
      !bytes_equal(a->has_nonce, a->nonce, b->has_nonce, b->nonce, HARK_CALL_NONCE_SIZE) ||
      !bytes_equal(a->has_peer_nonce, a->peer_nonce, b->has_peer_nonce, b->peer_nonce,
                   HARK_CALL_NONCE_SIZE) ||
      !bytes_equal(a->has_share, a->share, b->has_share, b->share, HARK_CALL_SHARE_SIZE) ||
      n_codecs(a) != n_codecs(b) || a->dtmf_payload_type != b->dtmf_payload_type ||
      g_strcmp0(a->ice_ufrag, b->ice_ufrag) != 0 || g_strcmp0(a->ice_pwd, b->ice_pwd) != 0 ||
      n_candidates(a) != n_candidates(b) || !a->end_of_candidates != !b->end_of_candidates ||
      g_strcmp0(a->path, b->path) != 0 || !a->hold != !b->hold ||
      g_strcmp0(a->reason, b->reason) != 0 || g_strcmp0(a->device_name, b->device_name) != 0)
    return FALSE;
  for (guint i = 0; i < n_codecs(a); i++) {
    const HarkCallCodec *x = &g_array_index(a->codecs, HarkCallCodec, i);
    const HarkCallCodec *y = &g_array_index(b->codecs, HarkCallCodec, i);
    if (strcmp(x->name, y->name) != 0 || x->payload_type != y->payload_type)
      return FALSE;
  }
  for (guint i = 0; i < n_candidates(a); i++)
    if (strcmp(a->candidates->pdata[i], b->candidates->pdata[i]) != 0)
      return FALSE;
  return TRUE;
}

/* ---- building -------------------------------------------------------------------------- */

static void
put(GVariantBuilder *builder, Field field, GVariant *value)
{
  g_variant_builder_add(builder, "{sv}", fields[field].key, value);
}

static GVariant *
byte_array(const guint8 *data, gsize size)
{
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

static GVariant *
codecs_variant(const GArray *codecs)
{
  GVariantBuilder builder;
  g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sy)"));
  for (guint i = 0; i < codecs->len; i++) {
    const HarkCallCodec *codec = &g_array_index(codecs, HarkCallCodec, i);
    g_variant_builder_add(&builder, "(sy)", codec->name, codec->payload_type);
  }
  return g_variant_builder_end(&builder);
}

GVariant *
hark_call_signal_build(const HarkCallSignal *s)
{
  g_return_val_if_fail(s != NULL && s->type < HARK_CALL_SIGNAL_N_TYPES, NULL);
  guint uses = types[s->type].uses;
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  put(&b, F_T, g_variant_new_string(types[s->type].name));
  put(&b, F_ID, byte_array(s->call_id, HARK_CALL_ID_SIZE));
  put(&b, F_SEQ, g_variant_new_uint32(s->seq));
  if ((uses & B(F_NONCE)) && s->has_nonce)
    put(&b, F_NONCE, byte_array(s->nonce, HARK_CALL_NONCE_SIZE));
  if ((uses & B(F_PEER_NONCE)) && s->has_peer_nonce)
    put(&b, F_PEER_NONCE, byte_array(s->peer_nonce, HARK_CALL_NONCE_SIZE));
  if ((uses & B(F_SHARE)) && s->has_share)
    put(&b, F_SHARE, byte_array(s->share, HARK_CALL_SHARE_SIZE));
  if ((uses & B(F_CODECS)) && n_codecs(s) > 0)
    put(&b, F_CODECS, codecs_variant(s->codecs));
  if ((uses & B(F_DTMF_PT)) && s->dtmf_payload_type != 0)
    put(&b, F_DTMF_PT, g_variant_new_byte(s->dtmf_payload_type));
  if ((uses & B(F_UFRAG)) && s->ice_ufrag != NULL)
    put(&b, F_UFRAG, g_variant_new_string(s->ice_ufrag));
  if ((uses & B(F_PWD)) && s->ice_pwd != NULL)
    put(&b, F_PWD, g_variant_new_string(s->ice_pwd));
  if ((uses & B(F_CANDIDATES)) && n_candidates(s) > 0)
    put(&b, F_CANDIDATES,
        g_variant_new_strv((const char *const *)s->candidates->pdata, s->candidates->len));
  if ((uses & B(F_EOC)) && s->end_of_candidates)
    put(&b, F_EOC, g_variant_new_boolean(TRUE));
  if ((uses & B(F_PATH)) && s->path != NULL)
    put(&b, F_PATH, g_variant_new_string(s->path));
  if (uses & B(F_HOLD))
    put(&b, F_HOLD, g_variant_new_boolean(s->hold));
  if ((uses & B(F_REASON)) && s->reason != NULL)
    put(&b, F_REASON, g_variant_new_string(s->reason));
  if ((uses & B(F_DEVICE_NAME)) && s->device_name != NULL)
    put(&b, F_DEVICE_NAME, g_variant_new_string(s->device_name));
  return g_variant_builder_end(&b);
}

/* ---- parsing --------------------------------------------------------------------------- */

static gboolean G_GNUC_PRINTF(3, 4)
refuse(GError **error, const char *type, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MALFORMED, "call signal%s%s refused: %s",
              type != NULL ? " " : "", type != NULL ? type : "", message);
  return FALSE;
}

/* What one parse is at: the signal so far, and each known field's value (borrowed from
 * the body). */
typedef struct {
  HarkCallSignal *signal;
  const char *type; /* its name, for the errors */
  GVariant *values[N_FIELDS];
} Parse;

static gboolean
bad(Parse *p, GError **error, Field field, const char *why)
{
  return refuse(error, p->type, "'%s' %s", fields[field].key, why);
}

static gboolean
parse_bytes(Parse *p, Field field, guint8 *out, gsize size, GError **error)
{
  gsize n = 0;
  const guint8 *data = g_variant_get_fixed_array(p->values[field], &n, 1);
  if (n != size) {
    g_autofree char *why = g_strdup_printf("is not %" G_GSIZE_FORMAT " bytes", size);
    return bad(p, error, field, why);
  }
  memcpy(out, data, size);
  return TRUE;
}

static gboolean
is_codec_name(const char *name, gsize length)
{
  if (length == 0 || length > HARK_CALL_MAX_CODEC_NAME)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_islower(name[i]) && !g_ascii_isdigit(name[i]) && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

/* RTP payload types a codec may have: the dynamic range, or PCMU, PCMA, G.722. */
static gboolean
is_codec_payload_type(guint8 pt)
{
  return (pt >= 96 && pt <= 127) || pt == 0 || pt == 8 || pt == 9;
}

static gboolean
parse_codecs(Parse *p, guint max, GError **error)
{
  GVariant *value = p->values[F_CODECS];
  gsize n = g_variant_n_children(value);
  if (n == 0)
    return bad(p, error, F_CODECS, "is empty");
  if (n > max) {
    g_autofree char *why = g_strdup_printf("names more than %u codec%s", max, max == 1 ? "" : "s");
    return bad(p, error, F_CODECS, why);
  }
  GArray *codecs = g_array_sized_new(FALSE, TRUE, sizeof(HarkCallCodec), (guint)n);
  p->signal->codecs = codecs;
  for (gsize i = 0; i < n; i++) {
    const char *name = NULL;
    guint8 pt = 0;
    g_variant_get_child(value, i, "(&sy)", &name, &pt);
    gsize length = strlen(name);
    if (!is_codec_name(name, length))
      return bad(p, error, F_CODECS, "has a name not of 1-31 characters of [a-z0-9_-]");
    if (!is_codec_payload_type(pt))
      return bad(p, error, F_CODECS, "has a payload type not in 96-127, 0, 8 or 9");
    for (guint j = 0; j < codecs->len; j++) {
      const HarkCallCodec *other = &g_array_index(codecs, HarkCallCodec, j);
      if (other->payload_type == pt || strcmp(other->name, name) == 0)
        return bad(p, error, F_CODECS, "names a codec or payload type twice");
    }
    HarkCallCodec codec = { .payload_type = pt };
    memcpy(codec.name, name, length + 1);
    g_array_append_val(codecs, codec);
  }
  return TRUE;
}

static gboolean
parse_dtmf(Parse *p, GError **error)
{
  guint8 pt = g_variant_get_byte(p->values[F_DTMF_PT]);
  if (pt < 96 || pt > 127)
    return bad(p, error, F_DTMF_PT, "is not a dynamic payload type (96-127)");
  for (guint i = 0; i < n_codecs(p->signal); i++)
    if (g_array_index(p->signal->codecs, HarkCallCodec, i).payload_type == pt)
      return bad(p, error, F_DTMF_PT, "is a codec's payload type");
  p->signal->dtmf_payload_type = pt;
  return TRUE;
}

/* Bytes of printable ASCII from lowest (a space or '!') to '~'. */
static gboolean
is_ascii_text(const char *text, gsize length, char lowest)
{
  for (gsize i = 0; i < length; i++)
    if (text[i] < lowest || text[i] > '~')
      return FALSE;
  return TRUE;
}

/* ICE's username fragment and password: no spaces (they are fields of a line). */
static gboolean
parse_ice_text(Parse *p, Field field, char **out, GError **error)
{
  gsize length = 0;
  const char *text = g_variant_get_string(p->values[field], &length);
  if (length < 4 || length > HARK_CALL_MAX_ICE_TEXT || !is_ascii_text(text, length, '!'))
    return bad(p, error, field, "is not 4-256 bytes of printable ASCII without spaces");
  *out = g_strndup(text, length);
  return TRUE;
}

static gboolean
parse_candidates(Parse *p, GError **error)
{
  GVariant *value = p->values[F_CANDIDATES];
  gsize n = g_variant_n_children(value);
  if (n > HARK_CALL_MAX_CANDIDATES)
    return bad(p, error, F_CANDIDATES, "has more than 32 lines");
  if (n == 0)
    return TRUE; /* as if absent: build leaves an empty list out */
  p->signal->candidates = g_ptr_array_new_full((guint)n, g_free);
  for (gsize i = 0; i < n; i++) {
    gsize length = 0;
    const char *line = NULL;
    g_variant_get_child(value, i, "&s", &line);
    length = strlen(line);
    if (length == 0 || length > HARK_CALL_MAX_CANDIDATE || !is_ascii_text(line, length, ' '))
      return bad(p, error, F_CANDIDATES,
                 "has a line not of 1-256 bytes of printable ASCII (no control characters)");
    g_ptr_array_add(p->signal->candidates, g_strndup(line, length));
  }
  return TRUE;
}

static gboolean
parse_path(Parse *p, GError **error)
{
  const char *path = g_variant_get_string(p->values[F_PATH], NULL);
  for (guint i = 0; i < G_N_ELEMENTS(paths); i++)
    if (strcmp(path, paths[i]) == 0) {
      p->signal->path = g_strdup(paths[i]);
      return TRUE;
    }
  return bad(p, error, F_PATH, "is not any, udp, tcp or relay");
}

/* Characters a user could not see or that rearrange what is shown around them: C0 and C1
 * controls, line and paragraph separators, the bidi embeddings, overrides and isolates. */
static gboolean
is_hidden_control(gunichar c)
{
  return g_unichar_iscntrl(c) || c == 0x2028 || c == 0x2029 || (c >= 0x202a && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

static gboolean
parse_words(Parse *p, Field field, gsize min, gsize max, char **out, GError **error)
{
  gsize length = 0;
  const char *text = g_variant_get_string(p->values[field], &length);
  if (length < min || length > max) {
    g_autofree char *why = g_strdup_printf("is not %" G_GSIZE_FORMAT "-%" G_GSIZE_FORMAT " bytes",
                                           min, max);
    return bad(p, error, field, why);
  }
  if (!g_utf8_validate_len(text, length, NULL))
    return bad(p, error, field, "is not UTF-8");
  for (const char *c = text; c < text + length; c = g_utf8_next_char(c))
    if (is_hidden_control(g_utf8_get_char(c)))
      return bad(p, error, field, "has a control character");
  *out = g_strndup(text, length);
  return TRUE;
}

/* Each known key's value into p->values, checking its type; the type's name first. */
static gboolean
collect(Parse *p, GVariant *body, GError **error)
{
  GVariantIter iter;
  const char *key = NULL;
  GVariant *value = NULL;
  g_variant_iter_init(&iter, body);
  while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
    guint f = 0;
    while (f < N_FIELDS && strcmp(fields[f].key, key) != 0)
      f++;
    if (f == N_FIELDS) { /* a newer sender's field */
      g_variant_unref(value);
      continue;
    }
    if (p->values[f] != NULL) {
      g_variant_unref(value);
      return refuse(error, NULL, "'%s' twice", fields[f].key);
    }
    if (!g_variant_is_of_type(value, G_VARIANT_TYPE(fields[f].type))) {
      g_variant_unref(value);
      return refuse(error, NULL, "'%s' is not of type %s", fields[f].key, fields[f].type);
    }
    p->values[f] = value;
  }
  return TRUE;
}

/* The type, the fields it needs, the common ones. */
static gboolean
parse_head(Parse *p, GError **error)
{
  if (p->values[F_T] == NULL)
    return refuse(error, NULL, "'t' missing");
  HarkCallSignalType type;
  if (!type_from_name(g_variant_get_string(p->values[F_T], NULL), &type))
    return refuse(error, NULL, "'t' is not a signal type");
  p->type = types[type].name;
  for (guint f = 0; f < N_FIELDS; f++)
    if ((types[type].needs & B(f)) && p->values[f] == NULL)
      return bad(p, error, f, "missing");
  /* Fields this type does not use are ignored, as unknown keys are. */
  for (guint f = 0; f < N_FIELDS; f++)
    if (!(types[type].uses & B(f)))
      g_clear_pointer(&p->values[f], g_variant_unref);
  p->signal = hark_call_signal_new(type, NULL, g_variant_get_uint32(p->values[F_SEQ]));
  if (p->signal->seq == 0)
    return bad(p, error, F_SEQ, "is 0");
  return parse_bytes(p, F_ID, p->signal->call_id, HARK_CALL_ID_SIZE, error);
}

static gboolean
parse_fields(Parse *p, GError **error)
{
  HarkCallSignal *s = p->signal;
  GVariant **v = p->values;
  if (v[F_NONCE] != NULL &&
      !(s->has_nonce = parse_bytes(p, F_NONCE, s->nonce, HARK_CALL_NONCE_SIZE, error)))
    return FALSE;
  if (v[F_PEER_NONCE] != NULL &&
      !(s->has_peer_nonce =
          parse_bytes(p, F_PEER_NONCE, s->peer_nonce, HARK_CALL_NONCE_SIZE, error)))
    return FALSE;
  if (v[F_SHARE] != NULL &&
      !(s->has_share = parse_bytes(p, F_SHARE, s->share, HARK_CALL_SHARE_SIZE, error)))
    return FALSE;
  if (v[F_CODECS] != NULL && !parse_codecs(p, types[s->type].max_codecs, error))
    return FALSE;
  if (v[F_DTMF_PT] != NULL && !parse_dtmf(p, error))
    return FALSE;
  if (v[F_UFRAG] != NULL && !parse_ice_text(p, F_UFRAG, &s->ice_ufrag, error))
    return FALSE;
  if (v[F_PWD] != NULL && !parse_ice_text(p, F_PWD, &s->ice_pwd, error))
    return FALSE;
  if (v[F_CANDIDATES] != NULL && !parse_candidates(p, error))
    return FALSE;
  s->end_of_candidates = v[F_EOC] != NULL && g_variant_get_boolean(v[F_EOC]);
  if (v[F_PATH] != NULL && !parse_path(p, error))
    return FALSE;
  s->hold = v[F_HOLD] != NULL && g_variant_get_boolean(v[F_HOLD]);
  if (v[F_REASON] != NULL &&
      !parse_words(p, F_REASON, 0, HARK_CALL_MAX_REASON, &s->reason, error))
    return FALSE;
  return v[F_DEVICE_NAME] == NULL || parse_words(p, F_DEVICE_NAME, 1, HARK_CALL_MAX_DEVICE_NAME,
                                                 &s->device_name, error);
}

/* What one field alone cannot say: an ICE restart has both ufrag and pwd, a path change is
 * one, an update changes something, trickled candidates say something. */
static gboolean
check_whole(Parse *p, GError **error)
{
  const HarkCallSignal *s = p->signal;
  if ((s->ice_ufrag == NULL) != (s->ice_pwd == NULL))
    return bad(p, error, s->ice_ufrag == NULL ? F_UFRAG : F_PWD, "missing (with the other)");
  if (s->path != NULL && s->ice_ufrag == NULL)
    return bad(p, error, F_PATH, "without an ICE restart ('ufrag', 'pwd')");
  if (s->type == HARK_CALL_SIGNAL_UPDATE && s->codecs == NULL && s->ice_ufrag == NULL)
    return refuse(error, p->type, "'codecs' or 'ufrag' and 'pwd' missing");
  if (s->type == HARK_CALL_SIGNAL_CANDIDATES && s->candidates == NULL && !s->end_of_candidates)
    return refuse(error, p->type, "'candidates' or 'eoc' missing");
  return TRUE;
}

HarkCallSignal *
hark_call_signal_parse(GVariant *body, GError **error)
{
  g_return_val_if_fail(body != NULL, NULL);
  if (!g_variant_is_of_type(body, G_VARIANT_TYPE_VARDICT)) {
    refuse(error, NULL, "not an a{sv}");
    return NULL;
  }
  /* Not normal form: two encodings of one signal, or values GVariant would replace by
   * defaults behind our back. A sender builds its signals with GVariant, which writes
   * only normal form. */
  if (!g_variant_is_normal_form(body)) {
    refuse(error, NULL, "not in normal form");
    return NULL;
  }
  Parse p = { 0 };
  gboolean ok = collect(&p, body, error) && parse_head(&p, error) && parse_fields(&p, error) &&
                check_whole(&p, error);
  for (guint f = 0; f < N_FIELDS; f++)
    g_clear_pointer(&p.values[f], g_variant_unref);
  if (!ok)
    g_clear_pointer(&p.signal, hark_call_signal_free);
  return p.signal;
}
