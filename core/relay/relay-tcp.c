/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* relay-tcp.c: TURN clients over TCP and TLS (RFC 8656 3.1: the same messages on a
 * stream, each framed by its own length, ChannelData padded to 4). A connection is a
 * pollable GIO stream (a GSocketConnection, or a GTlsConnection over one, whose first
 * read does the handshake); what it reads goes to hark_relay_handle_message like a UDP
 * datagram, and its end ends its allocation. The overlay may also hand over a stream it
 * accepted on the SN's web port and found to carry TURN (hark_relay_stream_new): the
 * same framing, fed by the overlay and written through its ops. */
#include "relay-private.h"

#include "identity-private.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

static void tcp_close(RelayTcp *tcp);

/* Writes without blocking: bytes written, 0 when it would block, -1 on an error. */
static gssize
tcp_write(RelayTcp *tcp, const guint8 *data, gsize size)
{
  g_autoptr(GError) error = NULL;
  gssize n = g_pollable_output_stream_write_nonblocking(tcp->output, data, size, NULL, &error);
  if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return 0;
  return n;
}

static gboolean
on_tcp_writable(GObject *stream, gpointer data)
{
  RelayTcp *tcp = data;
  while (tcp->out->len > 0) {
    gssize n = tcp_write(tcp, tcp->out->data, tcp->out->len);
    if (n <= 0)
      return G_SOURCE_CONTINUE; /* an error shows on the reading side too, which closes */
    g_byte_array_remove_range(tcp->out, 0, (guint)n);
  }
  g_source_unref(tcp->out_source);
  tcp->out_source = NULL;
  return G_SOURCE_REMOVE;
}

void
hark_relay_tcp_send(RelayTcp *tcp, const guint8 *data, gsize size)
{
  if (tcp->stream == NULL) {
    if (tcp->ops != NULL && !tcp->ops->send(tcp->ops_data, data, size))
      tcp->relay->refused.bandwidth++; /* the link's queue is full: as a slow TCP client */
    return;
  }
  if (tcp->out->len == 0) {
    gssize n = tcp_write(tcp, data, size);
    if (n == (gssize)size)
      return;
    if (n > 0) {
      data += n;
      size -= (gsize)n;
    }
  }
  if (tcp->out->len + size > TCP_OUT_MAX) {
    tcp->relay->refused.bandwidth++; /* a client that does not read: its media is dropped */
    return;
  }
  g_byte_array_append(tcp->out, data, (guint)size);
  if (tcp->out_source == NULL) {
    tcp->out_source = g_pollable_output_stream_create_source(tcp->output, NULL);
    g_source_set_callback(tcp->out_source, G_SOURCE_FUNC(on_tcp_writable), tcp, NULL);
    g_source_attach(tcp->out_source, NULL);
  }
}

/* The size of the frame at the start of data, 0 while incomplete, -1 when it is neither
 * STUN nor ChannelData (the stream cannot be followed any further). */
static gssize
tcp_frame_size(const guint8 *data, gsize size)
{
  if (size < 4)
    return 0;
  gsize frame;
  if ((data[0] & 0xC0) == 0x40)
    frame = 4 + (((gsize)get16(data + 2) + 3) & ~(gsize)3);
  else if ((data[0] & 0xC0) == 0)
    frame = HARK_STUN_HEADER_SIZE + get16(data + 2);
  else
    return -1;
  return frame <= size ? (gssize)frame : 0;
}

/* Hands every complete frame in tcp->in to the relay; FALSE when the connection was
 * closed (tcp is freed then). */
static gboolean
tcp_consume(RelayTcp *tcp)
{
  HarkRelay *relay = tcp->relay;
  gsize used = 0;
  for (;;) {
    gssize frame = tcp_frame_size(tcp->in + used, tcp->in_len - used);
    if (frame < 0) {
      relay->refused.malformed++;
      hark_relay_log_refusal(&(RelayFrom){ tcp->client, tcp }, NULL,
                             "neither STUN nor ChannelData on TCP");
      tcp_close(tcp);
      return FALSE;
    }
    if (frame == 0)
      break;
    RelayFrom from = { tcp->client, tcp };
    hark_relay_handle_message(relay, &from, tcp->in + used, (gsize)frame);
    used += (gsize)frame;
  }
  memmove(tcp->in, tcp->in + used, tcp->in_len - used);
  tcp->in_len -= used;
  return TRUE;
}

static gboolean
on_tcp_readable(GObject *stream, gpointer data)
{
  RelayTcp *tcp = data;
  g_autoptr(GError) error = NULL;
  gssize n = g_pollable_input_stream_read_nonblocking(tcp->input, tcp->in + tcp->in_len,
                                                      TCP_FRAME_MAX - tcp->in_len, NULL, &error);
  if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE; /* a TLS handshake under way */
  if (n <= 0) {
    tcp_close(tcp);
    return G_SOURCE_REMOVE;
  }
  tcp->in_len += (gsize)n;
  return tcp_consume(tcp) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

void
hark_relay_tcp_free(gpointer data)
{
  RelayTcp *tcp = data;
  if (tcp->stream == NULL) {
    const HarkRelayStreamOps *ops = tcp->ops;
    if (ops != NULL)
      ops->close(tcp->ops_data);
    g_byte_array_unref(tcp->out);
    g_free(tcp->in);
    g_free(tcp);
    return;
  }
  if (tcp->source != NULL) {
    g_source_destroy(tcp->source);
    g_source_unref(tcp->source);
  }
  if (tcp->out_source != NULL) {
    g_source_destroy(tcp->out_source);
    g_source_unref(tcp->out_source);
  }
  g_io_stream_close(tcp->stream, NULL, NULL);
  g_object_unref(tcp->stream);
  g_byte_array_unref(tcp->out);
  g_free(tcp->in);
  g_free(tcp);
}

/* The connection is gone, and with it its allocation (RFC 8656 3.1). */
static void
tcp_close(RelayTcp *tcp)
{
  HarkRelay *relay = tcp->relay;
  RelayAllocation *allocation = hark_relay_table_find(relay->table, &tcp->client);
  if (allocation != NULL) {
    hark_relay_log_allocation(allocation, "connection closed by");
    hark_relay_table_remove(relay->table, allocation);
  }
  g_hash_table_remove(relay->tcp_clients, tcp);
}

/* A connection slot for client, NULL when there is none left. */
static RelayTcp *
tcp_add(HarkRelay *relay, const RelayAddr *client)
{
  if (g_hash_table_size(relay->tcp_clients) >= relay->max_tcp) {
    relay->refused.capacity++;
    return NULL;
  }
  RelayTcp *tcp = g_new0(RelayTcp, 1);
  tcp->relay = relay;
  tcp->client = *client;
  tcp->opened = now_s();
  tcp->in = g_malloc(TCP_FRAME_MAX);
  tcp->out = g_byte_array_new();
  g_hash_table_add(relay->tcp_clients, tcp);
  return tcp;
}

/* A new client connection, TLS when the relay has a certificate for this listener. */
static void
tcp_open(HarkRelay *relay, GSocket *socket, gboolean tls)
{
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, NULL);
  RelayAddr client;
  if (remote == NULL ||
      !hark_relay_addr_from_inet(G_INET_SOCKET_ADDRESS(remote), RELAY_TCP, &client))
    return;
  if (g_hash_table_size(relay->tcp_clients) >= relay->max_tcp) {
    relay->refused.capacity++;
    return; /* closed as the socket goes */
  }
  g_socket_set_blocking(socket, FALSE);
  g_autoptr(GIOStream) stream = G_IO_STREAM(g_socket_connection_factory_create_connection(socket));
  if (tls) {
    g_autoptr(GError) error = NULL;
    GIOStream *secured = g_tls_server_connection_new(stream, relay->tls_certificate, &error);
    if (secured == NULL) {
      g_debug("relay: no TLS for a client: %s", error->message);
      return;
    }
    g_object_unref(stream);
    stream = secured;
  }
  RelayTcp *tcp = tcp_add(relay, &client);
  tcp->stream = g_steal_pointer(&stream);
  tcp->input = G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(tcp->stream));
  tcp->output = G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(tcp->stream));
  tcp->source = g_pollable_input_stream_create_source(tcp->input, NULL);
  g_source_set_callback(tcp->source, G_SOURCE_FUNC(on_tcp_readable), tcp, NULL);
  g_source_attach(tcp->source, NULL);
}

/* ---- streams the overlay hands over ------------------------------------------------------ */

HarkRelayStream *
hark_relay_stream_new(HarkRelay *relay, const char *client_host, guint16 client_port,
                      const HarkRelayStreamOps *ops, gpointer data)
{
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string(client_host, client_port);
  RelayAddr client;
  if (address == NULL ||
      !hark_relay_addr_from_inet(G_INET_SOCKET_ADDRESS(address), RELAY_TCP, &client))
    return NULL;
  RelayTcp *tcp = tcp_add(relay, &client);
  if (tcp == NULL)
    return NULL;
  tcp->ops = ops;
  tcp->ops_data = data;
  return tcp;
}

void
hark_relay_stream_feed(HarkRelayStream *tcp, const guint8 *data, gsize size)
{
  while (size > 0) {
    gsize room = TCP_FRAME_MAX - tcp->in_len;
    if (room == 0)
      return; /* cannot happen: a full buffer holds a whole frame, consumed below */
    gsize n = MIN(size, room);
    memcpy(tcp->in + tcp->in_len, data, n);
    tcp->in_len += n;
    data += n;
    size -= n;
    if (!tcp_consume(tcp))
      return;
  }
}

void
hark_relay_stream_closed(HarkRelayStream *tcp)
{
  tcp->ops = NULL; /* the other side knows */
  tcp_close(tcp);
}

static void
accept_all(HarkRelay *relay, GSocket *listener, gboolean tls)
{
  for (int i = 0; i < BATCH; i++) {
    g_autoptr(GSocket) socket = g_socket_accept(listener, NULL, NULL);
    if (socket == NULL)
      break;
    tcp_open(relay, socket, tls);
  }
}

gboolean
hark_relay_tcp_on_accept(GSocket *listener, GIOCondition condition, gpointer data)
{
  accept_all(data, listener, FALSE);
  return G_SOURCE_CONTINUE;
}

gboolean
hark_relay_tls_on_accept(GSocket *listener, GIOCondition condition, gpointer data)
{
  accept_all(data, listener, TRUE);
  return G_SOURCE_CONTINUE;
}

/* TCP clients that hold a connection without an allocation (connection slots are few:
 * the allocation limit and TCP_CONNECTIONS_EXTRA more). */
void
hark_relay_tcp_close_idle(HarkRelay *relay, gint64 now)
{
  g_autoptr(GPtrArray) idle = g_ptr_array_new();
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init(&iter, relay->tcp_clients);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    RelayTcp *tcp = key;
    if (now - tcp->opened >= TCP_IDLE_S &&
        hark_relay_table_find(relay->table, &tcp->client) == NULL)
      g_ptr_array_add(idle, tcp);
  }
  for (guint i = 0; i < idle->len; i++) {
    relay->refused.tcp_idle++;
    tcp_close(idle->pdata[i]);
  }
}

/* TURN over TLS shows a certificate of the node's own key (Ed25519), made here and
 * signed by itself: TURN clients (libnice, coturn's) check a TURN server by the
 * credentials it accepts, not by a certificate chain, so a self-signed one is what
 * coturn ships too. The private key's PEM exists only while GIO reads it, then is wiped. */
GTlsCertificate *
hark_relay_tls_certificate(HarkIdentity *identity, const char *host, GError **error)
{
  EVP_PKEY *key = hark_identity_get_private_key(identity);
  X509 *cert = X509_new();
  BIO *bio = BIO_new(BIO_s_mem());
  gboolean ok =
    cert != NULL && bio != NULL && X509_set_version(cert, 2) == 1 &&
    ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)g_random_int_range(1, G_MAXINT32)) == 1 &&
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
    X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600) != NULL &&
    X509_set_pubkey(cert, key) == 1 &&
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)host, -1, -1, 0) == 1 &&
    X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1 &&
    X509_sign(cert, key, NULL) > 0 && PEM_write_bio_X509(bio, cert) == 1 &&
    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1;
  GTlsCertificate *certificate = NULL;
  if (ok) {
    char *data = NULL;
    long size = BIO_get_mem_data(bio, &data);
    g_autofree char *pem = g_strndup(data, (gsize)size);
    explicit_bzero(data, (gsize)size);
    certificate = g_tls_certificate_new_from_pem(pem, -1, error);
    explicit_bzero(pem, (gsize)size);
  } else {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "relay: cannot make a TLS certificate of the node's key (OpenSSL)");
  }
  BIO_free(bio);
  X509_free(cert);
  return certificate;
}
