/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-tunnels.c: the SN's login tunnels, spoken to by hand (cases of test-overlay,
 * each with a lab of its own: overlay-lab.h). Clients join the lab's SN over TLS, open a
 * tunnel to the lab's login server and run TLS with it through TUNNEL_DATA (OpenSSL over
 * memory BIOs), as a node's login client does through its SOCKS endpoint. */
#include "overlay-cases.h"
#include "overlay-lab.h"
#include "test-nodes.h"

#include "hark/hark.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <string.h>

/* Tunnel ids are the clients' own message ids: every client here uses the same one, as
 * nodes that start together and send the same messages do. */
#define TUNNEL_ID 1
#define VICTIMS 3
#define CLOSERS 6

/* The next message that is not the SN's own chatter (SN_LIST, PING, ...); NULL at the
 * end, on an error, or after the socket's timeout. */
static HarkWireMessage *
next_answer(GIOStream *link)
{
  for (;;) {
    HarkWireMessage *message = olab_read_message(link);
    if (message == NULL)
      return NULL;
    switch (message->type) {
    case HARK_MSG_JOIN_OK:
    case HARK_MSG_PONG:
    case HARK_MSG_ERROR:
    case HARK_MSG_TUNNEL_OK:
    case HARK_MSG_TUNNEL_DATA:
    case HARK_MSG_TUNNEL_CLOSE:
      return message;
    default:
      hark_wire_message_free(message);
    }
  }
}

/* TRUE when the next answer is of that type. */
static gboolean
expect_answer(GIOStream *link, guint16 type, const char *what)
{
  g_autoptr(HarkWireMessage) answer = next_answer(link);
  if (answer == NULL || answer->type != type) {
    g_test_message("%s: got %s", what,
                   answer != NULL ? hark_wire_type_name(answer->type)
                                  : "nothing (closed or timed out)");
    return FALSE;
  }
  return TRUE;
}

/* A client joined to the SN at sn_host, with tunnel TUNNEL_ID open to the login server;
 * NULL (with a message) when that fails. */
static GIOStream *
client_with_tunnel(const char *sn_host, const char *name, GUri *login)
{
  g_autoptr(GIOStream) link = olab_tls_to(sn_host, OLAB_PORT, NULL);
  if (link == NULL)
    return NULL;
  g_autoptr(GSocketConnection) tcp = NULL;
  g_object_get(link, "base-io-stream", &tcp, NULL);
  g_socket_set_timeout(g_socket_connection_get_socket(tcp), hark_test_timeout(5000) / 1000);
  olab_send_message(link, HARK_MSG_JOIN,
                    g_variant_new_parsed("({'name': <%s>, 'as': <'client'>},)", name));
  if (!expect_answer(link, HARK_MSG_JOIN_OK, name))
    return NULL;
  olab_send_message(link, HARK_MSG_TUNNEL_OPEN,
                    g_variant_new("(sq)", g_uri_get_host(login), (guint16)g_uri_get_port(login)));
  if (!expect_answer(link, HARK_MSG_TUNNEL_OK, name))
    return NULL;
  return g_steal_pointer(&link);
}

/* TUNNEL_CLOSE, then a PING: its PONG says the SN has handled the close. */
static gboolean
close_tunnel(GIOStream *link)
{
  olab_send_message(link, HARK_MSG_TUNNEL_CLOSE, g_variant_new("(ts)", (guint64)TUNNEL_ID, ""));
  olab_send_message(link, HARK_MSG_PING, g_variant_new("(t)", (guint64)0));
  return expect_answer(link, HARK_MSG_PONG, "the closer's PING");
}

static void
send_pending(GIOStream *link, BIO *out)
{
  guint8 buffer[16384];
  int n;
  while ((n = BIO_read(out, buffer, sizeof buffer)) > 0) {
    GVariant *bytes = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, buffer, n, 1);
    olab_send_message(link, HARK_MSG_TUNNEL_DATA,
                      g_variant_new("(t@ay)", (guint64)TUNNEL_ID, bytes));
  }
}

/* Feeds the next TUNNEL_DATA into in; FALSE (with a message) when the tunnel closed or
 * nothing came. */
static gboolean
receive_some(GIOStream *link, BIO *in, const char *name)
{
  g_autoptr(HarkWireMessage) message = next_answer(link);
  if (message == NULL || message->type != HARK_MSG_TUNNEL_DATA) {
    g_test_message("%s: the tunnel gave %s", name,
                   message != NULL ? hark_wire_type_name(message->type)
                                   : "nothing more (no TUNNEL_CLOSE either)");
    return FALSE;
  }
  g_autoptr(GVariant) data = g_variant_get_child_value(message->body, 1);
  gsize size;
  gconstpointer bytes = g_variant_get_fixed_array(data, &size, 1);
  BIO_write(in, bytes, (int)size);
  return TRUE;
}

/* The status line of the login server's answer to GET /v1/version, asked over TLS
 * through the tunnel (the server's certificate is not what this checks); NULL when no
 * answer came. */
static char *
version_through(GIOStream *link, GUri *login, const char *name)
{
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl = SSL_new(ctx);
  BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  g_autofree char *request =
    g_strdup_printf("GET /v1/version HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
                    g_uri_get_host(login), g_uri_get_port(login));
  g_autoptr(GString) answer = g_string_new(NULL);
  gboolean asked = FALSE, failed = FALSE;
  while (!failed && strstr(answer->str, "\r\n") == NULL) {
    char buffer[4096];
    int n =
      SSL_is_init_finished(ssl) ? SSL_read(ssl, buffer, sizeof buffer) : SSL_do_handshake(ssl);
    if (n > 0 && SSL_is_init_finished(ssl) && !asked) {
      asked = SSL_write(ssl, request, (int)strlen(request)) > 0;
      failed = !asked;
    } else if (n > 0 && asked) {
      g_string_append_len(answer, buffer, n);
    } else if (n <= 0 && SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ) {
      g_test_message("%s: TLS through the tunnel failed (%d)", name, SSL_get_error(ssl, n));
      failed = TRUE;
    }
    send_pending(link, out);
    if (!failed && n <= 0)
      failed = !receive_some(link, in, name);
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  if (failed)
    return NULL;
  return g_strndup(answer->str, strstr(answer->str, "\r\n") - answer->str);
}

/* Clients with the same tunnel id at one SN: one closing its tunnel must not end
 * another's. Each victim opens its tunnel first; then closers, one after another, each
 * on a new link, open a tunnel with that id and close it; then every victim still gets
 * its answer through its tunnel. (The SN found a closed tunnel by its id among all its
 * clients' tunnels, so a closer took the first victim it met down instead of itself,
 * silently: the victim's request waited out its 15 s. Several victims and closers, as
 * which client the SN met first was up to a hash table's order.) */
static void
test_tunnel_same_ids(OLab *lab)
{
  g_autofree char *sn_host = olab_sn_address(lab, 0);
  g_autoptr(GUri) login = g_uri_parse(lab->login->url, G_URI_FLAGS_NONE, NULL);
  HARK_REQUIRE(login != NULL);
  GIOStream *victims[VICTIMS] = { NULL };
  for (guint i = 0; i < VICTIMS; i++) {
    g_autofree char *name = g_strdup_printf("victim-%u", i);
    victims[i] = client_with_tunnel(sn_host, name, login);
    g_assert_nonnull(victims[i]);
  }
  for (guint i = 0; i < CLOSERS; i++) {
    g_autofree char *name = g_strdup_printf("closer-%u", i);
    g_autoptr(GIOStream) closer = client_with_tunnel(sn_host, name, login);
    g_assert_nonnull(closer);
    g_assert_true(closer != NULL && close_tunnel(closer));
  }
  for (guint i = 0; i < VICTIMS; i++) {
    g_autofree char *name = g_strdup_printf("victim-%u", i);
    g_autofree char *status = victims[i] != NULL ? version_through(victims[i], login, name) : NULL;
    g_test_message("%s: %s", name, status != NULL ? status : "no answer");
    g_assert_cmpstr(status, ==, "HTTP/1.1 200 OK");
    g_clear_object(&victims[i]);
  }
}

static const OLabCase tunnel_cases[] = {
  /* The victims' tunnels wait, TLS not begun, while the closers come and go: longer than
   * the login server's 3 s for a preamble and handshake on a loaded machine. */
  { "/overlay/tunnel-same-ids", test_tunnel_same_ids, .sns = 1,
    .login_settings = "handshake_timeout = 60;" },
};

void
overlay_tunnels_add_cases(void)
{
  olab_add_cases(tunnel_cases, G_N_ELEMENTS(tunnel_cases));
}
