/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-turn-server.c: libFuzzer target for the SN's TURN server (core/relay), which
 * reads datagrams from anyone. A real relay on 127.0.0.1 (its own sockets, its secret in
 * a temporary state directory) gets the input as a sequence of datagrams from four
 * clients, each record: flags (bits 0-1 the client, bit 2 "sign", bit 3: bytes of the
 * stream the overlay would hand over from the web port, fed as they are), a 16-bit
 * length, the bytes. A signed record is taken as a STUN header and attributes, and the harness adds
 * the USERNAME, REALM, NONCE and MESSAGE-INTEGRITY of a good credential, so mutation
 * reaches past authentication (Allocate, permissions, channels, refresh, the data
 * path). Every answer a client gets must be a well-formed STUN message with a
 * FINGERPRINT, or ChannelData. Seeds: make-turn-server-seeds.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz-common.h"
#include "relay-auth.h"
#include "relay.h"
#include "stun.h"

#define CLIENTS 4

static HarkConfig *config;
static GSocket *clients[CLIENTS];
static char *nonces[CLIENTS];
static char *username, *password;

static void
quiet(const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  /* The relay logs each allocation at message level: quiet, but warnings stay fatal. */
  g_log_set_handler("hark", G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG, quiet,
                    NULL);
  config = hark_config_new_default();
  g_free(config->state_dir);
  config->state_dir = g_dir_make_tmp("hark-fuzz-relay-XXXXXX", NULL);
  g_free(config->listen_address);
  config->listen_address = g_strdup("127.0.0.1");
  config->sn_relay_port = 0; /* any free port: the input arrives by function call */
  config->sn_relay_max_allocations = 6;
  config->sn_relay_max_allocations_per_user = 4;
  g_strfreev(config->sn_relay_allow);
  config->sn_relay_allow = g_strsplit("127.0.0.0/8", ",", -1);
  for (int i = 0; i < CLIENTS; i++) {
    clients[i] =
      g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string("127.0.0.1", 0);
    if (!g_socket_bind(clients[i], any, FALSE, NULL))
      abort();
    g_socket_set_blocking(clients[i], FALSE);
  }
  return 0;
}

/* Reads what the relay sent the client; each must be well formed. Keeps the last nonce. */
static void
drain(int client)
{
  guint8 buffer[70000];
  gssize n;
  while ((n = g_socket_receive(clients[client], (char *)buffer, sizeof buffer, NULL, NULL)) > 0) {
    if ((buffer[0] & 0xC0) == 0x40)
      continue; /* ChannelData from a peer (another client) */
    g_autoptr(GBytes) bytes = g_bytes_new(buffer, (gsize)n);
    g_autoptr(HarkStunMessage) m = hark_stun_parse(bytes, NULL);
    if (m == NULL)
      abort();
    int cls = hark_stun_message_class(m->type);
    if (cls != HARK_STUN_CLASS_INDICATION && !m->has_fingerprint)
      abort();
    const HarkStunAttribute *nonce = hark_stun_message_find(m, HARK_STUN_ATTR_NONCE);
    if (nonce != NULL) {
      g_free(nonces[client]);
      nonces[client] = g_strndup((const char *)nonce->value, nonce->length);
    }
  }
}

static void
deliver(HarkRelay *relay, int client, const guint8 *data, gsize size)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(clients[client], NULL);
  struct sockaddr_storage sa;
  if (!g_socket_address_to_native(local, &sa, sizeof sa, NULL))
    abort();
  hark_relay_receive_udp(relay, data, size, (struct sockaddr *)&sa);
  drain(client);
}

/* data as a header and attributes, with a good credential added. */
static GBytes *
sign(int client, const guint8 *data, gsize size)
{
  guint16 type = (guint16)(((data[0] << 8) | data[1]) & 0x3FFF);
  GByteArray *b = hark_stun_builder_new(type, data + 8);
  gsize attributes = (size - HARK_STUN_HEADER_SIZE) & ~(gsize)3;
  g_byte_array_append(b, data + HARK_STUN_HEADER_SIZE, (guint)MIN(attributes, 60000));
  b->data[2] = (guint8)((b->len - HARK_STUN_HEADER_SIZE) >> 8);
  b->data[3] = (guint8)(b->len - HARK_STUN_HEADER_SIZE);
  const char *nonce = nonces[client] != NULL ? nonces[client] : "none";
  hark_stun_builder_add(b, HARK_STUN_ATTR_USERNAME, username, (guint16)strlen(username));
  hark_stun_builder_add(b, HARK_STUN_ATTR_REALM, HARK_RELAY_REALM, strlen(HARK_RELAY_REALM));
  hark_stun_builder_add(b, HARK_STUN_ATTR_NONCE, nonce, (guint16)strlen(nonce));
  guint8 key[16];
  hark_stun_long_term_key(username, HARK_RELAY_REALM, password, key);
  hark_stun_builder_add_integrity(b, key, sizeof key);
  return hark_stun_builder_finish(b);
}

/* A stream the overlay would hand over (TURN on the web port): what the relay writes is
 * dropped; its close forgets it. */
static gboolean
stream_send(gpointer data, const guint8 *bytes, gsize size)
{
  return TRUE;
}

static void
stream_close(gpointer data)
{
  *(HarkRelayStream **)data = NULL;
}

static const HarkRelayStreamOps stream_ops = { .send = stream_send, .close = stream_close };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkRelay) relay = hark_relay_new(config, NULL, "127.0.0.1", &error);
  if (relay == NULL)
    abort();
  if (username == NULL) {
    username = g_strdup_printf("%" G_GINT64_FORMAT ":fuzz",
                               g_get_real_time() / G_USEC_PER_SEC + 30 * 24 * 3600);
    password = hark_relay_password(hark_relay_get_secret(relay), username);
  }
  /* A nonce for each client: its first unauthenticated request's 401. */
  static const guint8 bare[] = { 0x00, 0x03, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1,  2,
                                 3,    4,    5,    6,    7,    8,    9,    10,   11, 12 };
  for (int i = 0; i < CLIENTS; i++)
    deliver(relay, i, bare, sizeof bare);
  HarkRelayStream *stream = hark_relay_stream_new(relay, "127.0.0.1", 40443, &stream_ops, &stream);
  gsize offset = 0;
  while (size - offset >= 3) {
    guint8 flags = data[offset];
    gsize length = MIN((gsize)((data[offset + 1] << 8) | data[offset + 2]), size - offset - 3);
    const guint8 *record = data + offset + 3;
    offset += 3 + length;
    int client = flags & 3;
    if ((flags & 8) != 0) { /* bytes of the stream, cut anywhere */
      if (stream != NULL)
        hark_relay_stream_feed(stream, record, length);
    } else if ((flags & 4) != 0 && length >= HARK_STUN_HEADER_SIZE) {
      g_autoptr(GBytes) signed_message = sign(client, record, length);
      deliver(relay, client, g_bytes_get_data(signed_message, NULL),
              g_bytes_get_size(signed_message));
    } else {
      deliver(relay, client, record, length);
    }
    /* Datagrams between the relay's sockets (a client as another's peer). */
    while (g_main_context_iteration(NULL, FALSE))
      ;
  }
  for (int i = 0; i < CLIENTS; i++)
    drain(i);
  if (stream != NULL)
    hark_relay_stream_closed(stream);
  return 0;
}
