/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-lab.c: see overlay-lab.h. */
#include "overlay-lab.h"

#include "test-isolate.h"

#include <string.h>
#include <unistd.h>

/* ---- addresses and configurations --------------------------------------------------- */

char *
olab_host(OLab *lab, guint host)
{
  return g_strdup_printf("%s.%u", lab->net, host);
}

char *
olab_sn_address(OLab *lab, guint index)
{
  return olab_host(lab, 11 + index);
}

static void
append_entry(GString *text, const char *host, const char *offered)
{
  g_auto(GStrv) names = g_strsplit(offered, " ", -1);
  g_autofree char *list = g_strjoinv("\", \"", names);
  g_string_append_printf(text, "%s{ host = \"%s\"; port = %u; transports = [ \"%s\" ]; }",
                         text->len > 0 ? ", " : "", host, OLAB_PORT, list);
}

char *
olab_bootstrap_of(OLab *lab, const guint *indexes, guint n)
{
  GString *text = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    g_autofree char *host = olab_sn_address(lab, indexes[i]);
    append_entry(text, host, "udp tcp tls443");
  }
  return g_string_free(text, FALSE);
}

char *
olab_bootstrap(OLab *lab)
{
  static const guint all[OLAB_MAX_SNS] = { 0, 1, 2 };
  return olab_bootstrap_of(lab, all, lab->c->sns);
}

char *
olab_bootstrap_one(OLab *lab, guint host, const char *offered)
{
  g_autofree char *address = olab_host(lab, host);
  GString *text = g_string_new(NULL);
  append_entry(text, address, offered);
  return g_string_free(text, FALSE);
}

/* The plugins group for the given transports ("udp tcp tls443"), then ctl. */
static char *
plugins_of(const char *transports, guint16 tls_port, guint16 http_port)
{
  g_auto(GStrv) names = g_strsplit(transports, " ", -1);
  GString *text = g_string_new("plugins: { load = (\n");
  for (char **name = names; *name != NULL; name++) {
    if (strcmp(*name, "tls443") == 0)
      g_string_append_printf(text,
                             "  { name = \"tls443\"; settings = { tls_port = %u; "
                             "http_port = %u; connect_timeout_ms = 2000; }; },\n",
                             tls_port, http_port);
    else
      g_string_append_printf(text, "  { name = \"%s\"; },\n", *name);
  }
  g_string_append(text, "  { name = \"ctl\"; }\n); };\n");
  return g_string_free(text, FALSE);
}

static char *
login_section(OLab *lab)
{
  /* Without one, no overlay: a case without a login server writes its nodes' whole
   * configurations itself (malicious-sn). */
  if (lab->login == NULL)
    return g_strdup("");
  return g_strdup_printf("login: { url = \"%s\"; ca = \"%s\"; };\n", lab->login->url,
                         lab->login->ca_path);
}

char *
olab_sn_config(OLab *lab, const char *name, const char *address, const char *transports,
               const char *bootstrap, const char *extra)
{
  g_autofree char *plugins = plugins_of(transports, lab->web_tls, lab->web_http);
  g_autofree char *login = login_section(lab);
  /* A short handshake timeout, for the slow-loris cases; longer under valgrind. */
  guint handshake_ms =
    lab->handshake_timeout_ms ? lab->handshake_timeout_ms : hark_test_timeout(1500);
  return g_strdup_printf("node: { name = \"%s\"; supernode = true; };\n%s"
                         "network: { listen = \"%s\"; port = %u; public_address = \"%s\";\n"
                         "  allow_loopback = true;\n"
                         "  keepalive = 2; keepalive_timeout = 2; keepalive_floor = 1;\n"
                         "  handshake_timeout_ms = %u;\n"
                         "  bootstrap = ( %s ); };\n"
                         "supernode: { min_uptime = 0; max_load = 10000; links = 2; %s };\n%s",
                         name, plugins, address, OLAB_PORT, address, handshake_ms, bootstrap,
                         extra != NULL ? extra : "", login);
}

char *
olab_client_config(OLab *lab, const char *name, const char *transports, const char *bootstrap,
                   guint16 tls_port)
{
  g_autofree char *plugins = plugins_of(transports, tls_port, lab->web_http);
  g_autofree char *login = login_section(lab);
  /* The web-port fallback waits 3 s, so that a slow machine (valgrind) still joins over
   * tcp when tcp works; when every link failed it starts at once anyway. */
  return g_strdup_printf("node: { name = \"%s\"; supernode = false; };\n%s"
                         "network: { keepalive = 1; keepalive_timeout = 2; allow_loopback = true;\n"
                         "  join_race_delay_ms = 100; join_fallback_delay_ms = 3000;\n"
                         "  bootstrap = ( %s ); };\n%s",
                         name, plugins, bootstrap, login);
}

/* ---- overlay state ------------------------------------------------------------------ */

JsonObject *
olab_overlay_of(LabNode *node)
{
  return lab_call(node, "overlay", NULL);
}

const char *
olab_member_string(JsonObject *object, const char *name)
{
  return object != NULL ? json_object_get_string_member_with_default(object, name, NULL) : NULL;
}

gboolean
olab_is_attached(JsonObject *overlay, gconstpointer transport)
{
  if (g_strcmp0(olab_member_string(overlay, "state"), "attached") != 0)
    return FALSE;
  JsonObject *sn = json_object_get_object_member(overlay, "sn");
  return transport == NULL || g_strcmp0(olab_member_string(sn, "transport"), transport) == 0;
}

gboolean
olab_is_super(JsonObject *overlay, gconstpointer data)
{
  if (g_strcmp0(olab_member_string(overlay, "role"), "super") != 0)
    return FALSE;
  JsonArray *links = json_object_get_array_member(overlay, "sn_links");
  guint verified = 0;
  for (guint i = 0; i < json_array_get_length(links); i++)
    verified += json_object_get_boolean_member_with_default(json_array_get_object_element(links, i),
                                                            "verified", FALSE);
  return verified >= GPOINTER_TO_UINT(data);
}

JsonObject *
olab_wait_attached(LabNode *node, const char *transport)
{
  return lab_wait_overlay(node, olab_is_attached, transport, OLAB_JOIN_MS, "attached");
}

const char *
olab_sn_name_of(JsonObject *overlay)
{
  return olab_member_string(json_object_get_object_member(overlay, "sn"), "name");
}

gint64
olab_dropped(JsonObject *overlay, const char *counter)
{
  return json_object_get_int_member(json_object_get_object_member(overlay, "dropped"), counter);
}

typedef struct {
  const char *counter;
  gint64 above;
} CounterAbove;

static gboolean
counter_above(JsonObject *overlay, gconstpointer data)
{
  const CounterAbove *want = data;
  return olab_dropped(overlay, want->counter) > want->above;
}

gboolean
olab_expect_counter_rise(LabNode *sn, JsonObject *before, const char *counter)
{
  CounterAbove want = { counter, olab_dropped(before, counter) };
  g_autoptr(JsonObject) after = lab_wait_overlay(sn, counter_above, &want, 5000, counter);
  return after != NULL;
}

gboolean
olab_nothing_unjoined(JsonObject *overlay, gconstpointer unused)
{
  return json_object_get_int_member_with_default(overlay, "unjoined", -1) == 0;
}

/* ---- nodes -------------------------------------------------------------------------- */

LabNode *
olab_sn_named(OLab *lab, const char *name)
{
  for (guint i = 0; i < lab->n_sns; i++)
    if (lab->sns[i] != NULL && g_strcmp0(lab->sns[i]->name, name) == 0)
      return lab->sns[i];
  return NULL;
}

char *
olab_next_user(OLab *lab)
{
  return g_strdup_printf("user%u", ++lab->users);
}

LabNode *
olab_client_new(OLab *lab, const char *name, const char *transports, const char *bootstrap,
                guint16 tls_port, char **user)
{
  g_autofree char *config = olab_client_config(lab, name, transports, bootstrap, tls_port);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autoptr(JsonObject) attached = olab_wait_attached(node, NULL);
  if (attached == NULL)
    return NULL;
  *user = olab_next_user(lab);
  if (!lab_register_and_login(node, *user))
    return NULL;
  return g_steal_pointer(&node);
}

LabNode *
olab_sn_new(OLab *lab, const char *name, const char *address, const char *transports,
            const char *bootstrap, const char *extra, guint links)
{
  g_autofree char *config = olab_sn_config(lab, name, address, transports, bootstrap, extra);
  g_autoptr(LabNode) node = lab_node_new(name, config);
  if (!lab_node_start(node))
    return NULL;
  g_autofree char *user = g_strdup_printf("%s-user", name);
  if (!lab_register_and_login(node, user))
    return NULL;
  g_autoptr(JsonObject) super =
    lab_wait_overlay(node, olab_is_super, GUINT_TO_POINTER(links), OLAB_JOIN_MS, "serving");
  return super != NULL ? g_steal_pointer(&node) : NULL;
}

LabNode *
olab_case_sn(OLab *lab, const char *name, guint host, const char *transports, const char *extra,
             const char *offered, char **only)
{
  g_autofree char *address = olab_host(lab, host);
  *only = olab_bootstrap_one(lab, host, offered);
  /* Alone, it bootstraps from itself. */
  g_autofree char *bootstrap = lab->n_sns > 0 ? olab_bootstrap(lab) : g_strdup(*only);
  return olab_sn_new(lab, name, address, transports, bootstrap, extra, MIN(lab->n_sns, 1));
}

gboolean
olab_own_client(OLab *lab, OLabClient *client, const char *name)
{
  g_autofree char *bootstrap = olab_bootstrap(lab);
  client->node =
    olab_client_new(lab, name, "udp tcp tls443", bootstrap, lab->web_tls, &client->user);
  return client->node != NULL;
}

void
olab_client_clear(OLabClient *client)
{
  g_clear_pointer(&client->node, lab_node_free);
  g_clear_pointer(&client->user, g_free);
}

/* ---- speaking to an SN by hand ------------------------------------------------------ */

GSocketConnection *
olab_tcp_to(const char *host, guint16 port)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_timeout(client, 5);
  g_socket_client_set_enable_proxy(client, FALSE); /* straight to the SN, as nodes do */
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection = g_socket_client_connect_to_host(client, host, port, NULL, &error);
  if (connection == NULL)
    g_test_fail_printf("cannot connect to %s:%u: %s", host, port, error->message);
  return connection;
}

gboolean
olab_accept_any(GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors,
                gpointer data)
{
  return TRUE;
}

GIOStream *
olab_tls_to(const char *host, guint16 port, const char *pem)
{
  g_autoptr(GSocketConnection) tcp = olab_tcp_to(host, port);
  if (tcp == NULL)
    return NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GIOStream) tls = g_tls_client_connection_new(G_IO_STREAM(tcp), NULL, &error);
  if (tls != NULL && pem != NULL) {
    g_autoptr(GTlsCertificate) cert = g_tls_certificate_new_from_pem(pem, -1, &error);
    if (cert != NULL)
      g_tls_connection_set_certificate(G_TLS_CONNECTION(tls), cert);
    else
      g_clear_object(&tls);
  }
  if (tls != NULL) {
    g_signal_connect(tls, "accept-certificate", G_CALLBACK(olab_accept_any), NULL);
    if (!g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &error))
      g_clear_object(&tls);
  }
  if (tls == NULL)
    g_test_fail_printf("no TLS link to %s:%u: %s", host, port,
                       error != NULL ? error->message : "?");
  return g_steal_pointer(&tls);
}

void
olab_send_frame(GIOStream *stream, guint32 length, gconstpointer data, gsize size)
{
  guint8 header[4] = { length >> 24, length >> 16, length >> 8, length };
  GOutputStream *out = g_io_stream_get_output_stream(stream);
  g_output_stream_write_all(out, header, 4, NULL, NULL, NULL);
  if (size > 0)
    g_output_stream_write_all(out, data, size, NULL, NULL, NULL);
  g_output_stream_flush(out, NULL, NULL);
}

void
olab_send_message(GIOStream *stream, guint16 type, GVariant *body)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = hark_wire_encode(type, 1, body, &error);
  g_assert_no_error(error);
  gsize size;
  gconstpointer data = g_bytes_get_data(bytes, &size);
  olab_send_frame(stream, (guint32)size, data, size);
}

HarkWireMessage *
olab_read_message(GIOStream *stream)
{
  GInputStream *in = g_io_stream_get_input_stream(stream);
  guint8 header[4];
  gsize got = 0;
  if (!g_input_stream_read_all(in, header, 4, &got, NULL, NULL) || got != 4)
    return NULL;
  guint32 length = (guint32)header[0] << 24 | header[1] << 16 | header[2] << 8 | header[3];
  if (length == 0 || length > HARK_WIRE_MAX_SIZE)
    return NULL;
  g_autofree guint8 *body = g_malloc(length);
  if (!g_input_stream_read_all(in, body, length, &got, NULL, NULL) || got != length)
    return NULL;
  g_autoptr(GBytes) bytes = g_bytes_new(body, length);
  return hark_wire_decode(bytes, NULL);
}

GSocket *
olab_udp_from(const char *source)
{
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(source);
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new(inet, 0);
  if (socket == NULL || !g_socket_bind(socket, local, FALSE, NULL))
    return NULL;
  return g_steal_pointer(&socket);
}

gssize
olab_udp_answer(GSocket *socket, guint timeout_ms)
{
  if (!g_socket_condition_timed_wait(socket, G_IO_IN, (gint64)timeout_ms * 1000, NULL, NULL))
    return -1;
  guint8 buffer[2048];
  return g_socket_receive(socket, (char *)buffer, sizeof buffer, NULL, NULL);
}

/* ---- the fixture -------------------------------------------------------------------- */

/* Can this process listen on address:port (a port below 1024 needs root; a web server
 * listening on every address holds it too)? */
static gboolean
can_listen(const char *address, guint16 port)
{
  g_autoptr(GSocket) socket =
    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address);
  g_autoptr(GSocketAddress) where = g_inet_socket_address_new(inet, port);
  return socket != NULL && g_socket_bind(socket, where, TRUE, NULL) &&
         g_socket_listen(socket, NULL);
}

/* The lab SNs, each linked to all the others (verified) before the case starts, so that
 * partners and peers are there from its first step. */
static gboolean
start_sns(OLab *lab)
{
  g_autofree char *bootstrap = olab_bootstrap(lab);
  for (guint i = 0; i < lab->c->sns; i++) {
    g_autofree char *name = g_strdup_printf("sn%u", i + 1);
    g_autofree char *address = olab_sn_address(lab, i);
    lab->sns[i] = olab_sn_new(lab, name, address, "udp tcp tls443", bootstrap, NULL, 0);
    if (lab->sns[i] == NULL)
      return FALSE;
    lab->n_sns = i + 1;
  }
  for (guint i = 0; i < lab->n_sns; i++) {
    g_autoptr(JsonObject) linked =
      lab_wait_overlay(lab->sns[i], olab_is_super, GUINT_TO_POINTER(lab->n_sns - 1), OLAB_JOIN_MS,
                       "linked to every other lab SN");
    if (linked == NULL)
      return FALSE;
  }
  return TRUE;
}

static void
olab_set_up(OLab *lab, gconstpointer data)
{
  lab->c = data;
  g_assert_cmpuint(lab->c->sns, <=, OLAB_MAX_SNS);
  if (lab->c->needs_root && geteuid() != 0) {
    g_test_skip("needs root");
    return;
  }
  /* Each case its own addresses: nothing of an earlier case (or of a parallel run) can
   * answer there. */
  lab->net = g_strdup_printf("127.%u.%u", g_random_int_range(1, 255), g_random_int_range(0, 255));
  /* The real web ports when they are free to us, as on a super node; others otherwise. */
  g_autofree char *first = olab_sn_address(lab, 0);
  gboolean web_ports = can_listen(first, 443) && can_listen(first, 80);
  lab->web_tls = web_ports ? 443 : OLAB_WEB_TLS_PORT;
  lab->web_http = web_ports ? 80 : OLAB_WEB_HTTP_PORT;
  g_test_message("lab %s.x, web ports %u and %u, %u SNs", lab->net, lab->web_tls, lab->web_http,
                 lab->c->sns);
  if (!lab->c->no_login) {
    lab->login =
      lab_login_server_new_with(lab->c->login_settings != NULL ? lab->c->login_settings : "");
    if (lab->login == NULL) {
      g_test_fail_printf("the case's login server did not start");
      return;
    }
  }
  if (!start_sns(lab)) {
    g_test_fail_printf("the case's lab SNs did not come up");
    return;
  }
  lab->up = TRUE;
}

static void
olab_run(OLab *lab, gconstpointer data)
{
  if (lab->up)
    lab->c->test(lab);
}

static void
olab_tear_down(OLab *lab, gconstpointer data)
{
  for (guint i = OLAB_MAX_SNS; i-- > 0;)
    g_clear_pointer(&lab->sns[i], lab_node_free);
  g_clear_pointer(&lab->login, lab_login_server_free);
  g_clear_pointer(&lab->net, g_free);
}

void
olab_add_cases(const OLabCase *cases, gsize n)
{
  for (gsize i = 0; i < n; i++)
    hark_test_add_isolated(cases[i].path, OLab, &cases[i], olab_set_up, olab_run, olab_tear_down);
}
