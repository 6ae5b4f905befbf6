/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* attack.c: misbehaving clients of a super node (see attack.h). */
#include "attack.h"
#include "test-wait.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define IO_TIMEOUT_MS 5000

struct _AttackConn {
  int fd;
  AttackCarrier carrier;
  GByteArray *pending; /* WebSocket bytes read but not yet parsed */
};

static void
set_timeout(int fd, guint unscaled_ms)
{
  guint ms = hark_test_timeout(unscaled_ms);
  struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static gboolean
write_all(int fd, const void *data, gsize size)
{
  const guint8 *p = data;
  while (size > 0) {
    ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n <= 0)
      return FALSE;
    p += n;
    size -= (gsize)n;
  }
  return TRUE;
}

/* ---- WebSocket (RFC 6455), as much as a client needs ------------------------------- */

static gboolean
ws_upgrade(AttackConn *conn, const char *host, guint16 port, const char *path)
{
  g_autofree char *request = g_strdup_printf(
    "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: hark-1\r\n\r\n",
    path, host, port);
  if (!write_all(conn->fd, request, strlen(request)))
    return FALSE;
  GString *answer = g_string_new(NULL);
  char c;
  while (answer->len < 4096 && !g_str_has_suffix(answer->str, "\r\n\r\n") &&
         recv(conn->fd, &c, 1, 0) == 1)
    g_string_append_c(answer, c);
  gboolean ok = g_str_has_prefix(answer->str, "HTTP/1.1 101");
  if (!ok)
    g_test_message("WebSocket upgrade refused: %.80s", answer->str);
  g_string_free(answer, TRUE);
  return ok;
}

/* One masked frame of opcode (2 binary, 8 close). */
static gboolean
ws_send(AttackConn *conn, guint8 opcode, const guint8 *data, gsize size)
{
  g_autoptr(GByteArray) frame = g_byte_array_new();
  guint8 head[2] = { 0x80 | opcode, 0x80 };
  if (size < 126) {
    head[1] |= (guint8)size;
    g_byte_array_append(frame, head, 2);
  } else {
    head[1] |= 126;
    guint8 length[2] = { (guint8)(size >> 8), (guint8)size };
    g_byte_array_append(frame, head, 2);
    g_byte_array_append(frame, length, 2);
  }
  guint8 mask[4] = { 0x12, 0x34, 0x56, 0x78 };
  g_byte_array_append(frame, mask, 4);
  for (gsize i = 0; i < size; i++) {
    guint8 b = data[i] ^ mask[i % 4];
    g_byte_array_append(frame, &b, 1);
  }
  return write_all(conn->fd, frame->data, frame->len);
}

static gboolean
carrier_send(AttackConn *conn, const guint8 *data, gsize size)
{
  if (conn->carrier == ATTACK_TCP)
    return write_all(conn->fd, data, size);
  for (gsize offset = 0; offset < size; offset += 16384)
    if (!ws_send(conn, 2, data + offset, MIN(size - offset, (gsize)16384)))
      return FALSE;
  return TRUE;
}

/* Appends what arrived (the payload of the next data frame for a WebSocket); 0 at the
 * end (or a WebSocket close frame), -1 on error or timeout. */
static gssize
carrier_recv(AttackConn *conn, GByteArray *into)
{
  guint8 buffer[16384];
  if (conn->carrier == ATTACK_TCP) {
    ssize_t n = recv(conn->fd, buffer, sizeof buffer, 0);
    if (n > 0)
      g_byte_array_append(into, buffer, (guint)n);
    return n;
  }
  for (;;) {
    GByteArray *p = conn->pending;
    if (p->len >= 2) {
      gsize length = p->data[1] & 0x7f, head = 2;
      if (length == 126 && p->len >= 4) {
        length = (gsize)p->data[2] << 8 | p->data[3];
        head = 4;
      } else if (length == 127 && p->len >= 10) {
        length = 0;
        for (guint i = 0; i < 8; i++)
          length = length << 8 | p->data[2 + i];
        head = 10;
      }
      if ((p->data[1] & 0x7f) < 126 || head > 2) {
        if (p->len >= head + length) {
          guint8 opcode = p->data[0] & 0x0f;
          if (opcode == 8)
            return 0;
          g_byte_array_append(into, p->data + head, (guint)length);
          g_byte_array_remove_range(p, 0, (guint)(head + length));
          if (opcode == 2 || opcode == 0)
            return (gssize)length;
          continue; /* ping, pong, text: skipped */
        }
      }
    }
    ssize_t n = recv(conn->fd, buffer, sizeof buffer, 0);
    if (n <= 0)
      return n;
    g_byte_array_append(p, buffer, (guint)n);
  }
}

AttackConn *
attack_connect(AttackCarrier carrier, const char *source, const char *host, guint16 port,
               const char *path)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return NULL;
  AttackConn *conn = g_new0(AttackConn, 1);
  conn->fd = fd;
  conn->carrier = carrier;
  conn->pending = g_byte_array_new();
  set_timeout(fd, IO_TIMEOUT_MS);
  struct sockaddr_in from = { .sin_family = AF_INET };
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
  gboolean ok = inet_pton(AF_INET, host, &to.sin_addr) == 1;
  if (ok && source != NULL)
    ok = inet_pton(AF_INET, source, &from.sin_addr) == 1 &&
         bind(fd, (struct sockaddr *)&from, sizeof from) == 0;
  ok = ok && connect(fd, (struct sockaddr *)&to, sizeof to) == 0;
  if (!ok)
    g_test_message("cannot connect to %s:%u: %s", host, port, g_strerror(errno));
  if (ok && carrier == ATTACK_WEBSOCKET)
    ok = ws_upgrade(conn, host, port, path);
  if (!ok) {
    attack_conn_free(conn);
    return NULL;
  }
  return conn;
}

gboolean
attack_wait_closed(AttackConn *conn, guint timeout_ms)
{
  set_timeout(conn->fd, timeout_ms);
  guint8 buffer[4096];
  gint64 deadline = g_get_monotonic_time() + (gint64)hark_test_timeout(timeout_ms) * 1000;
  for (;;) {
    ssize_t n = recv(conn->fd, buffer, sizeof buffer, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return TRUE;
    if (n < 0 || g_get_monotonic_time() > deadline)
      return FALSE;
    /* a WebSocket close frame, an alert: the end is coming */
  }
}

void
attack_conn_free(AttackConn *conn)
{
  if (conn == NULL)
    return;
  close(conn->fd);
  g_byte_array_unref(conn->pending);
  g_free(conn);
}

/* ---- TLS ------------------------------------------------------------------------------ */

/* A P-256 key and a self-signed certificate for it: what no SN trusts. */
static gboolean
self_signed(SSL_CTX *ctx)
{
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = X509_new();
  gboolean ok = key != NULL && cert != NULL;
  if (ok) {
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const guchar *)"intruder", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ok = X509_sign(cert, key, EVP_sha256()) > 0 && SSL_CTX_use_certificate(ctx, cert) == 1 &&
         SSL_CTX_use_PrivateKey(ctx, key) == 1;
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok;
}

static gboolean
flush_tls(AttackConn *conn, BIO *wbio)
{
  guint8 buffer[16384];
  int n;
  while ((n = BIO_read(wbio, buffer, sizeof buffer)) > 0)
    if (!carrier_send(conn, buffer, (gsize)n))
      return FALSE;
  return TRUE;
}

/* A TLS 1.3 client over memory BIOs: ATTACK_ABORT stops after the server's first
 * answer, ATTACK_UNTRUSTED goes to the end with its certificate. */
static gboolean
tls_attack(AttackConn *conn, AttackKind kind)
{
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  gboolean ok = kind != ATTACK_UNTRUSTED || self_signed(ctx);
  SSL *ssl = SSL_new(ctx);
  BIO *rbio = BIO_new(BIO_s_mem());
  BIO *wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_connect_state(ssl);
  g_autoptr(GByteArray) in = g_byte_array_new();
  while (ok) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    ok = flush_tls(conn, wbio);
    if (r == 1 || !ok || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
      break; /* done (the SN judges the certificate now), or refused */
    g_byte_array_set_size(in, 0);
    if (carrier_recv(conn, in) <= 0)
      break; /* the SN closed */
    BIO_write(rbio, in->data, (int)in->len);
    if (kind == ATTACK_ABORT)
      break;
  }
  ERR_clear_error();
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return ok;
}

gboolean
attack_failed_handshake(AttackKind kind, AttackCarrier carrier, const char *source,
                        const char *host, guint16 port, const char *path)
{
  AttackConn *conn = attack_connect(carrier, source, host, port, path);
  if (conn == NULL)
    return FALSE;
  static const char garbage[] = "GET / HTTP/1.0\r\n\r\n\x16\x03\x01\x00\x05junk";
  gboolean ok = TRUE;
  switch (kind) {
  case ATTACK_CLOSE:
    break;
  case ATTACK_GARBAGE:
    ok = carrier_send(conn, (const guint8 *)garbage, sizeof garbage - 1);
    break;
  case ATTACK_ABORT:
  case ATTACK_UNTRUSTED:
    ok = tls_attack(conn, kind);
    break;
  }
  /* Our end closes (a WebSocket says so first); the SN must close its side. */
  if (ok && carrier == ATTACK_WEBSOCKET)
    ws_send(conn, 8, (const guint8 *)"\x03\xe8", 2);
  shutdown(conn->fd, SHUT_WR);
  ok = ok && attack_wait_closed(conn, IO_TIMEOUT_MS);
  if (!ok)
    g_test_message("attack %d over carrier %d to %s:%u did not end as expected", kind, carrier,
                   host, port);
  attack_conn_free(conn);
  return ok;
}
