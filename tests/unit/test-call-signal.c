/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-call-signal.c: call signals (core/call/call-signal.c) as a hostile peer could send
 * them. Every type goes through build and parse unchanged; every field a type needs,
 * taken away, is refused with an error naming it; values beyond each limit, fields of
 * another type, a known key twice, control characters in candidate lines and words, and
 * bodies not in normal form are refused; keys the type does not use are ignored. */
#include "call-signal.h"

#include <string.h>

static const guint8 call_id[HARK_CALL_ID_SIZE] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static void
add_codec(HarkCallSignal *s, const char *name, guint8 pt)
{
  if (s->codecs == NULL)
    s->codecs = g_array_new(FALSE, TRUE, sizeof(HarkCallCodec));
  HarkCallCodec codec = { .payload_type = pt };
  g_strlcpy(codec.name, name, sizeof codec.name);
  g_array_append_val(s->codecs, codec);
}

static void
add_candidate(HarkCallSignal *s, const char *line)
{
  if (s->candidates == NULL)
    s->candidates = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(s->candidates, g_strdup(line));
}

/* A signal of type with every field it carries set, as a sender would. */
static HarkCallSignal *
full_signal(HarkCallSignalType type)
{
  HarkCallSignal *s = hark_call_signal_new(type, call_id, 7);
  switch (type) {
  case HARK_CALL_SIGNAL_INVITE:
  case HARK_CALL_SIGNAL_ANSWER:
    s->has_nonce = TRUE;
    memset(s->nonce, 0xa1, sizeof s->nonce);
    s->has_share = TRUE;
    memset(s->share, 0x5c, sizeof s->share);
    add_codec(s, "opus", 111);
    if (type == HARK_CALL_SIGNAL_INVITE) {
      add_codec(s, "g722", 9);
      add_codec(s, "pcmu", 0);
      add_codec(s, "speex_wb-16k", 97);
    } else {
      s->has_peer_nonce = TRUE;
      memset(s->peer_nonce, 0xb2, sizeof s->peer_nonce);
      s->device_name = g_strdup("Bob's phone ✆");
    }
    s->dtmf_payload_type = 101;
    s->ice_ufrag = g_strdup("ufRg");
    s->ice_pwd = g_strdup("asd88fgpdd777uzjYhagZg+/");
    add_candidate(s, "1 1 UDP 2013266431 192.0.2.1 40000 typ host");
    add_candidate(s, "2 1 UDP 1677722111 198.51.100.7 50000 typ srflx raddr 192.0.2.1 rport 40000");
    s->end_of_candidates = TRUE;
    break;
  case HARK_CALL_SIGNAL_RINGING:
    s->device_name = g_strdup("laptop");
    break;
  case HARK_CALL_SIGNAL_ACK:
    s->has_peer_nonce = TRUE;
    memset(s->peer_nonce, 0xc3, sizeof s->peer_nonce);
    break;
  case HARK_CALL_SIGNAL_DECLINE:
  case HARK_CALL_SIGNAL_BUSY:
  case HARK_CALL_SIGNAL_CANCEL:
  case HARK_CALL_SIGNAL_HANGUP:
  case HARK_CALL_SIGNAL_FAIL:
    s->reason = g_strdup("no common codec — sorry");
    break;
  case HARK_CALL_SIGNAL_HOLD:
    s->hold = TRUE;
    break;
  case HARK_CALL_SIGNAL_UPDATE:
  case HARK_CALL_SIGNAL_UPDATE_OK:
    s->has_nonce = TRUE;
    memset(s->nonce, 0xd4, sizeof s->nonce);
    if (type == HARK_CALL_SIGNAL_UPDATE_OK) {
      s->has_peer_nonce = TRUE;
      memset(s->peer_nonce, 0xe5, sizeof s->peer_nonce);
    }
    add_codec(s, "pcma", 8);
    s->ice_ufrag = g_strdup("Zz9+");
    s->ice_pwd = g_strdup("0123456789abcdefghijkl");
    add_candidate(s, "3 1 TCP 8323327 203.0.113.5 3478 typ relay raddr 0.0.0.0 rport 0");
    s->path = g_strdup("relay");
    break;
  case HARK_CALL_SIGNAL_CANDIDATES:
    add_candidate(s, "1 1 UDP 2013266431 192.0.2.1 40000 typ host");
    s->end_of_candidates = TRUE;
    break;
  }
  return s;
}

static GVariant *
build_full(HarkCallSignalType type)
{
  g_autoptr(HarkCallSignal) s = full_signal(type);
  return g_variant_ref_sink(hark_call_signal_build(s));
}

/* body with key set to value (NULL: removed); body is consumed. */
static GVariant *
with(GVariant *body, const char *key, GVariant *value)
{
  g_autoptr(GVariantDict) dict = g_variant_dict_new(body);
  g_variant_unref(body);
  if (value == NULL)
    g_variant_dict_remove(dict, key);
  else
    g_variant_dict_insert_value(dict, key, value);
  return g_variant_ref_sink(g_variant_dict_end(dict));
}

/* The signal's parse fails with MALFORMED naming needle; body is consumed. */
static void
assert_refused(GVariant *body, const char *needle)
{
  g_autoptr(GVariant) owned = body;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkCallSignal) s = hark_call_signal_parse(owned, &error);
  g_assert_null(s);
  g_assert_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MALFORMED);
  if (strstr(error->message, needle) == NULL)
    g_error("'%s' not in the error: %s", needle, error->message);
}

static HarkCallSignal *
parse_ok(GVariant *body)
{
  g_autoptr(GVariant) owned = body;
  g_autoptr(GError) error = NULL;
  HarkCallSignal *s = hark_call_signal_parse(owned, &error);
  g_assert_no_error(error);
  g_assert_nonnull(s);
  return s;
}

static GVariant *
bytes_value(guint8 fill, gsize size)
{
  g_autofree guint8 *data = g_malloc(size);
  memset(data, fill, size);
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

static void
test_round_trip(void)
{
  for (guint t = 0; t < HARK_CALL_SIGNAL_N_TYPES; t++) {
    g_autoptr(HarkCallSignal) s = full_signal(t);
    g_autoptr(GVariant) body = g_variant_ref_sink(hark_call_signal_build(s));
    g_assert_true(g_variant_is_normal_form(body));
    g_autoptr(HarkCallSignal) back = parse_ok(g_variant_ref(body));
    g_assert_cmpint(back->type, ==, t);
    g_assert_true(hark_call_signal_equal(s, back));
    g_autoptr(GVariant) t_value = g_variant_lookup_value(body, "t", G_VARIANT_TYPE_STRING);
    g_assert_cmpstr(g_variant_get_string(t_value, NULL), ==, hark_call_signal_type_name(t));
    /* A signal with only what the type needs goes through too. */
    g_autoptr(HarkCallSignal) bare = hark_call_signal_new(t, call_id, 1);
    g_autoptr(GVariant) bare_body = g_variant_ref_sink(hark_call_signal_build(bare));
    g_autoptr(GError) error = NULL;
    g_autoptr(HarkCallSignal) bare_back = hark_call_signal_parse(bare_body, &error);
    gboolean needs_more = t == HARK_CALL_SIGNAL_INVITE || t == HARK_CALL_SIGNAL_ANSWER ||
                          t == HARK_CALL_SIGNAL_ACK || t == HARK_CALL_SIGNAL_UPDATE ||
                          t == HARK_CALL_SIGNAL_UPDATE_OK || t == HARK_CALL_SIGNAL_CANDIDATES;
    g_assert_true((bare_back == NULL) == needs_more);
    if (bare_back != NULL)
      g_assert_true(hark_call_signal_equal(bare, bare_back));
  }
  g_assert_cmpstr(hark_call_signal_type_name(HARK_CALL_SIGNAL_UPDATE_OK), ==, "update-ok");
  g_assert_null(hark_call_signal_type_name(HARK_CALL_SIGNAL_N_TYPES));
}

/* Each field a type needs, taken away, is refused by name. */
static void
test_required(void)
{
  static const struct {
    HarkCallSignalType type;
    const char *keys[8];
  } needs[] = {
    { HARK_CALL_SIGNAL_INVITE, { "t", "id", "seq", "nonce", "share", "codecs", "ufrag", "pwd" } },
    { HARK_CALL_SIGNAL_ANSWER, { "nonce", "peer-nonce", "share", "codecs", "ufrag", "pwd" } },
    { HARK_CALL_SIGNAL_ACK, { "peer-nonce", "id", "seq" } },
    { HARK_CALL_SIGNAL_HOLD, { "hold" } },
    { HARK_CALL_SIGNAL_UPDATE, { "nonce" } },
    { HARK_CALL_SIGNAL_UPDATE_OK, { "peer-nonce" } },
    { HARK_CALL_SIGNAL_RINGING, { "id", "seq" } },
    { HARK_CALL_SIGNAL_HANGUP, { "t" } },
  };
  for (guint i = 0; i < G_N_ELEMENTS(needs); i++)
    for (guint k = 0; k < G_N_ELEMENTS(needs[i].keys) && needs[i].keys[k] != NULL; k++) {
      g_autofree char *needle = g_strdup_printf("'%s' missing", needs[i].keys[k]);
      assert_refused(with(build_full(needs[i].type), needs[i].keys[k], NULL), needle);
    }
  /* An ICE restart needs both halves; an update must change something; trickled
   * candidates must say something. */
  assert_refused(with(build_full(HARK_CALL_SIGNAL_UPDATE), "pwd", NULL), "'pwd' missing");
  GVariant *update = with(build_full(HARK_CALL_SIGNAL_UPDATE), "ufrag", NULL);
  update = with(update, "pwd", NULL);
  assert_refused(with(with(g_variant_ref(update), "path", NULL), "codecs", NULL),
                 "'codecs' or 'ufrag' and 'pwd' missing");
  assert_refused(update, "'path' without an ICE restart");
  GVariant *candidates = with(build_full(HARK_CALL_SIGNAL_CANDIDATES), "eoc", NULL);
  assert_refused(with(candidates, "candidates", NULL), "'candidates' or 'eoc' missing");
  candidates = with(build_full(HARK_CALL_SIGNAL_CANDIDATES), "candidates", NULL);
  assert_refused(with(candidates, "eoc", g_variant_new_boolean(FALSE)),
                 "'candidates' or 'eoc' missing");
  /* An update that is a codec change alone, or a restart alone, is fine. */
  GVariant *codec_only = with(build_full(HARK_CALL_SIGNAL_UPDATE), "ufrag", NULL);
  codec_only = with(codec_only, "pwd", NULL);
  g_autoptr(HarkCallSignal) s = parse_ok(with(codec_only, "path", NULL));
  g_assert_null(s->ice_ufrag);
  g_assert_cmpuint(s->codecs->len, ==, 1);
  g_autoptr(HarkCallSignal) restart = parse_ok(with(build_full(HARK_CALL_SIGNAL_UPDATE), "codecs", NULL));
  g_assert_null(restart->codecs);
  g_assert_cmpstr(restart->path, ==, "relay");
}

static GVariant *
codecs_value(guint n, const char *name, guint8 pt)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a(sy)"));
  for (guint i = 0; i < n; i++) {
    g_autofree char *unique = n > 1 ? g_strdup_printf("c%u", i) : g_strdup(name);
    g_variant_builder_add(&b, "(sy)", unique, n > 1 ? (guint8)(110 + i) : pt);
  }
  return g_variant_builder_end(&b);
}

static GVariant *
candidates_value(guint n, const char *line)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new();
  for (guint i = 0; i < n; i++)
    g_ptr_array_add(lines, (gpointer)line);
  return g_variant_new_strv((const char *const *)lines->pdata, lines->len);
}

static void
test_limits(void)
{
  HarkCallSignalType invite = HARK_CALL_SIGNAL_INVITE;
  /* codecs: count, name, payload type, repeats */
  assert_refused(with(build_full(invite), "codecs", codecs_value(17, NULL, 0)),
                 "'codecs' names more than 16 codecs");
  g_autoptr(HarkCallSignal) sixteen = parse_ok(with(build_full(invite), "codecs", codecs_value(16, NULL, 0)));
  g_assert_cmpuint(sixteen->codecs->len, ==, 16);
  assert_refused(with(build_full(HARK_CALL_SIGNAL_ANSWER), "codecs", codecs_value(2, NULL, 0)),
                 "'codecs' names more than 1 codec");
  assert_refused(with(build_full(invite), "codecs", codecs_value(0, NULL, 0)), "'codecs' is empty");
  g_autofree char *long_name = g_strnfill(32, 'a');
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, long_name, 96)),
                 "'codecs' has a name");
  long_name[31] = '\0';
  g_autoptr(HarkCallSignal) long_ok = parse_ok(with(build_full(invite), "codecs", codecs_value(1, long_name, 96)));
  g_assert_cmpstr(g_array_index(long_ok->codecs, HarkCallCodec, 0).name, ==, long_name);
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, "Opus", 96)), "'codecs' has a name");
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, "op us", 96)), "'codecs' has a name");
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, "", 96)), "'codecs' has a name");
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, "opus", 128)), "payload type");
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, "opus", 255)), "payload type");
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, "opus", 95)), "payload type");
  assert_refused(with(build_full(invite), "codecs", codecs_value(1, "opus", 3)), "payload type");
  assert_refused(with(build_full(invite), "codecs",
                      g_variant_new_parsed("[('opus', byte 96), ('g722', byte 96)]")),
                 "'codecs' names a codec or payload type twice");
  assert_refused(with(build_full(invite), "codecs",
                      g_variant_new_parsed("[('opus', byte 96), ('opus', byte 97)]")),
                 "'codecs' names a codec or payload type twice");
  /* telephone-event: dynamic and not a codec's */
  assert_refused(with(build_full(invite), "dtmf-pt", g_variant_new_byte(0)), "'dtmf-pt'");
  assert_refused(with(build_full(invite), "dtmf-pt", g_variant_new_byte(128)), "'dtmf-pt'");
  assert_refused(with(build_full(invite), "dtmf-pt", g_variant_new_byte(111)),
                 "'dtmf-pt' is a codec's payload type");
  /* the fixed sizes */
  assert_refused(with(build_full(invite), "nonce", bytes_value(1, 31)), "'nonce' is not 32 bytes");
  assert_refused(with(build_full(invite), "nonce", bytes_value(1, 33)), "'nonce' is not 32 bytes");
  assert_refused(with(build_full(invite), "share", bytes_value(1, 0)), "'share' is not 32 bytes");
  assert_refused(with(build_full(HARK_CALL_SIGNAL_ACK), "peer-nonce", bytes_value(1, 16)),
                 "'peer-nonce' is not 32 bytes");
  assert_refused(with(build_full(invite), "id", bytes_value(1, 15)), "'id' is not 16 bytes");
  assert_refused(with(build_full(invite), "seq", g_variant_new_uint32(0)), "'seq' is 0");
  /* candidates */
  const char *line = "1 1 UDP 2013266431 192.0.2.1 40000 typ host";
  assert_refused(with(build_full(invite), "candidates", candidates_value(33, line)),
                 "'candidates' has more than 32 lines");
  g_autoptr(HarkCallSignal) many = parse_ok(with(build_full(invite), "candidates", candidates_value(32, line)));
  g_assert_cmpuint(many->candidates->len, ==, 32);
  g_autofree char *long_line = g_strnfill(257, 'x');
  assert_refused(with(build_full(invite), "candidates", candidates_value(1, long_line)),
                 "'candidates' has a line");
  long_line[256] = '\0';
  g_autoptr(HarkCallSignal) long_line_ok = parse_ok(with(build_full(invite), "candidates", candidates_value(1, long_line)));
  g_assert_cmpuint(strlen(long_line_ok->candidates->pdata[0]), ==, HARK_CALL_MAX_CANDIDATE);
  assert_refused(with(build_full(invite), "candidates", candidates_value(1, "")),
                 "'candidates' has a line");
  /* ICE credentials */
  assert_refused(with(build_full(invite), "ufrag", g_variant_new_string("abc")), "'ufrag' is not 4-256");
  g_autofree char *long_pwd = g_strnfill(257, 'p');
  assert_refused(with(build_full(invite), "pwd", g_variant_new_string(long_pwd)), "'pwd' is not 4-256");
  assert_refused(with(build_full(invite), "pwd", g_variant_new_string("pass word")), "'pwd'");
  assert_refused(with(build_full(invite), "ufrag", g_variant_new_string("caf\xc3\xa9")), "'ufrag'");
  /* words */
  g_autofree char *long_reason = g_strnfill(HARK_CALL_MAX_REASON + 1, 'r');
  assert_refused(with(build_full(HARK_CALL_SIGNAL_HANGUP), "reason", g_variant_new_string(long_reason)),
                 "'reason' is not 0-200 bytes");
  g_autofree char *long_name2 = g_strnfill(HARK_CALL_MAX_DEVICE_NAME + 1, 'n');
  assert_refused(with(build_full(HARK_CALL_SIGNAL_RINGING), "device-name", g_variant_new_string(long_name2)),
                 "'device-name' is not 1-64 bytes");
  assert_refused(with(build_full(HARK_CALL_SIGNAL_RINGING), "device-name", g_variant_new_string("")),
                 "'device-name' is not 1-64 bytes");
  /* path */
  assert_refused(with(build_full(HARK_CALL_SIGNAL_UPDATE), "path", g_variant_new_string("udp6")),
                 "'path' is not any, udp, tcp or relay");
  assert_refused(with(build_full(HARK_CALL_SIGNAL_UPDATE), "path", g_variant_new_string("UDP")),
                 "'path'");
}

/* Control characters in a candidate line could forge lines where the ICE agent or a log
 * reads them; in a reason or device name they could forge what the user sees. */
static void
test_control_characters(void)
{
  const char *lines[] = { "1 1 UDP 1 192.0.2.1 4 typ host\r\na=candidate:evil",
                          "1 1 UDP 1 192.0.2.1 4 typ\thost", "1 1 UDP 1 192.0.2.1 4 typ host\x7f",
                          "1 1 UDP 1 192.0.2.1 4 typ host \xc3\xa9" };
  for (guint i = 0; i < G_N_ELEMENTS(lines); i++)
    assert_refused(with(build_full(HARK_CALL_SIGNAL_CANDIDATES), "candidates",
                        candidates_value(1, lines[i])),
                   "'candidates' has a line");
  const char *words[] = { "busy\nhark: call from alice accepted", "a\x1b[2Jb", "x\xc2\x85y",
                          ("evil\xe2\x80\xae" "gnp.exe"), "line\xe2\x80\xa8sep" };
  for (guint i = 0; i < G_N_ELEMENTS(words); i++) {
    assert_refused(with(build_full(HARK_CALL_SIGNAL_DECLINE), "reason", g_variant_new_string(words[i])),
                   "'reason' has a control character");
    assert_refused(with(build_full(HARK_CALL_SIGNAL_RINGING), "device-name",
                        g_variant_new_string(words[i])),
                   "'device-name' has a control character");
  }
  /* The error never quotes what the peer sent. */
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) body = with(build_full(HARK_CALL_SIGNAL_HANGUP), "t",
                                  g_variant_new_string("x\nhark: FORGED"));
  g_assert_null(hark_call_signal_parse(body, &error));
  g_assert_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MALFORMED);
  g_assert_null(strstr(error->message, "FORGED"));
  g_assert_nonnull(strstr(error->message, "'t' is not a signal type"));
}

static void
test_wrong_types(void)
{
  static const struct {
    HarkCallSignalType type;
    const char *key, *value, *needle;
  } cases[] = {
    { HARK_CALL_SIGNAL_INVITE, "nonce", "'aaaa'", "'nonce' is not of type ay" },
    { HARK_CALL_SIGNAL_INVITE, "seq", "int32 3", "'seq' is not of type u" },
    { HARK_CALL_SIGNAL_INVITE, "seq", "uint64 3", "'seq' is not of type u" },
    { HARK_CALL_SIGNAL_INVITE, "codecs", "[('opus', 'x')]", "'codecs' is not of type a(sy)" },
    { HARK_CALL_SIGNAL_INVITE, "codecs", "['opus']", "'codecs' is not of type a(sy)" },
    { HARK_CALL_SIGNAL_INVITE, "candidates", "'one line'", "'candidates' is not of type as" },
    { HARK_CALL_SIGNAL_INVITE, "dtmf-pt", "uint32 101", "'dtmf-pt' is not of type y" },
    { HARK_CALL_SIGNAL_HOLD, "hold", "'yes'", "'hold' is not of type b" },
    { HARK_CALL_SIGNAL_HOLD, "t", "b'hold'", "'t' is not of type s" },
    { HARK_CALL_SIGNAL_HOLD, "id", "'0102'", "'id' is not of type ay" },
    { HARK_CALL_SIGNAL_HANGUP, "reason", "<'nested'>", "'reason' is not of type s" },
    { HARK_CALL_SIGNAL_RINGING, "device-name", "[byte 0x41]", "'device-name' is not of type s" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
    assert_refused(with(build_full(cases[i].type), cases[i].key,
                        g_variant_new_parsed(cases[i].value)),
                   cases[i].needle);
  /* Not a dictionary at all. */
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) tuple = g_variant_ref_sink(g_variant_new_parsed("('invite', 1)"));
  g_assert_null(hark_call_signal_parse(tuple, &error));
  g_assert_error(error, HARK_CALL_ERROR, HARK_CALL_ERROR_MALFORMED);
  /* A known key of the wrong type is refused even where the type does not use it; the
   * same key twice is refused. */
  assert_refused(with(build_full(HARK_CALL_SIGNAL_HOLD), "nonce", g_variant_new_string("x")),
                 "'nonce' is not of type ay");
  g_autoptr(GVariant) hold = build_full(HARK_CALL_SIGNAL_HOLD);
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  GVariantIter iter;
  const char *key;
  GVariant *value;
  g_variant_iter_init(&iter, hold);
  while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
    g_variant_builder_add(&b, "{sv}", key, value);
    if (strcmp(key, "hold") == 0)
      g_variant_builder_add(&b, "{sv}", key, g_variant_new_boolean(FALSE));
    g_variant_unref(value);
  }
  assert_refused(g_variant_ref_sink(g_variant_builder_end(&b)), "'hold' twice");
}

/* Unknown keys, and keys the type does not use, are ignored and not built again. */
static void
test_ignored(void)
{
  GVariant *body = with(build_full(HARK_CALL_SIGNAL_HOLD), "future-field", g_variant_new_parsed("[1, 2]"));
  body = with(body, "nonce", bytes_value(7, 32));
  body = with(body, "reason", g_variant_new_string("not a hold's"));
  g_autoptr(HarkCallSignal) s = parse_ok(body);
  g_autoptr(HarkCallSignal) expected = full_signal(HARK_CALL_SIGNAL_HOLD);
  g_assert_false(s->has_nonce);
  g_assert_null(s->reason);
  g_assert_true(hark_call_signal_equal(s, expected));
  g_autoptr(GVariant) again = g_variant_ref_sink(hark_call_signal_build(s));
  g_assert_cmpuint(g_variant_n_children(again), ==, 4); /* t, id, seq, hold */
  /* A hold FALSE is a resume, and eoc FALSE is no end of candidates. */
  g_autoptr(HarkCallSignal) resume = parse_ok(with(build_full(HARK_CALL_SIGNAL_HOLD), "hold",
                                                   g_variant_new_boolean(FALSE)));
  g_assert_false(resume->hold);
}

/* Bytes from the network that GVariant would read with defaults in place of the bad
 * parts: refused as a whole. */
static void
test_not_normal_form(void)
{
  g_autoptr(GVariant) hangup = build_full(HARK_CALL_SIGNAL_HANGUP);
  gsize size = g_variant_get_size(hangup);
  g_autofree guint8 *data = g_memdup2(g_variant_get_data(hangup), size);
  /* "no common codec" -> invalid UTF-8 in the reason */
  guint8 *at = NULL;
  for (gsize i = 0; i + 6 <= size && at == NULL; i++)
    if (memcmp(data + i, "common", 6) == 0)
      at = data + i;
  g_assert_nonnull(at);
  at[0] = 0xff;
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  assert_refused(g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, bytes, FALSE)),
                 "not in normal form");
  /* framing offsets past the end */
  static const guint8 garbage[] = { 't', 0, 0, 's', 0, 0xff, 0xff, 0xff };
  g_autoptr(GBytes) garbage_bytes = g_bytes_new_static(garbage, sizeof garbage);
  assert_refused(g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, garbage_bytes,
                                                             FALSE)),
                 "not in normal form");
  /* the same bytes, untouched, parse */
  g_autoptr(GBytes) good = g_bytes_new(g_variant_get_data(hangup), size);
  g_autoptr(HarkCallSignal) s =
    parse_ok(g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, good, FALSE)));
  g_assert_cmpstr(s->reason, ==, "no common codec — sorry");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/call-signal/round-trip", test_round_trip);
  g_test_add_func("/call-signal/required", test_required);
  g_test_add_func("/call-signal/limits", test_limits);
  g_test_add_func("/call-signal/control-characters", test_control_characters);
  g_test_add_func("/call-signal/wrong-types", test_wrong_types);
  g_test_add_func("/call-signal/ignored", test_ignored);
  g_test_add_func("/call-signal/not-normal-form", test_not_normal_form);
  return g_test_run();
}
