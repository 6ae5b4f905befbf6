/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-answer.h: what the login client makes of the bytes the login server answers
 * (login-answer.c). Nothing here does I/O or touches the client, so that the fuzz target
 * tests/fuzz/fuzz-loginanswer.c feeds it answers the way login-requests.c does. */
#pragma once

#include "login.h"

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Whom and what a request was about, for the words of its errors. */
typedef struct {
  const char *url; /* the login server, as configured */
  const char *user; /* the user the request is about */
  const char *buddy_name; /* the buddy a buddy change is about, or NULL */
  gboolean server_words; /* the login server's directory part (a contact request or block,
                           * a lookup, a search): refusals in the server's words */
} HarkLoginAsk;

/* JSON members of the expected type, NULL/FALSE otherwise (answers are not trusted to
 * have the right shape, and json-glib's getters complain loudly about wrong types). */
const char *hark_login_member_string(JsonObject *object, const char *name);
gboolean hark_login_member_int(JsonObject *object, const char *name, gint64 *value);
JsonObject *hark_login_member_object(JsonObject *object, const char *name);
/* A JSON object whose strings are all UTF-8, or NULL for anything else. */
JsonObject *hark_login_parse_object(GBytes *bytes);
/* "8 s", or minutes for longer waits. */
char *hark_login_format_wait(gint64 seconds);

/* An HTTP answer (status, reason phrase, Retry-After header or NULL, body): the object of
 * a success, else NULL and the error it stands for (a refusal in words about ask, or
 * HARK_LOGIN_ERROR_BAD_ANSWER). */
JsonObject *hark_login_read_answer(const HarkLoginAsk *ask, guint status, const char *reason,
                                   const char *retry_after, GBytes *body, GError **error);

/* {"revision", "buddies": [{"name", "alias"}]} -> a clean copy, or an error. */
JsonArray *hark_login_read_buddy_list(JsonObject *list, gint64 *revision, GError **error);
/* A login answer {"certificate", "buddies": {...}}: its certificate (PEM, borrowed from
 * answer, not checked yet) and a clean copy of its buddy list, or an error. */
JsonArray *hark_login_read_login(JsonObject *answer, const char **pem, gint64 *revision,
                                 GError **error);
/* A renewal {"certificate"}: the PEM (borrowed, not checked yet), or an error. */
const char *hark_login_read_renewal(JsonObject *answer, GError **error);
/* A nonce answer {"nonce"}: the nonce (borrowed), or an error. */
const char *hark_login_read_nonce(JsonObject *answer, GError **error);

G_END_DECLS
