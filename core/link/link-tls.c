/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link-tls.c: the OpenSSL side of a link (hark/link.h): TLS 1.3 only, with this node's
 * credentials, the peer checked against the CA pinned by login.ca and nothing else,
 * and the channel binding over which an opener proves a certificate after the
 * handshake.
 *
 * A node keeps one SSL_CTX per role (opener, acceptor) for the certificate it was made
 * with; a renewed certificate or a logout makes the next link build a new one (links
 * already up keep a reference to theirs). A context per link cost about 60 KiB and a
 * few ms of CPU per link, which is most of what a super node spends on a client. Two
 * nodes in one process share nothing. */
#include "identity-private.h"
#include "link-private.h"
#include "openssl-errors.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static gint64
now_seconds(void)
{
  return g_get_real_time() / G_USEC_PER_SEC;
}

/* The pinned CA alone: never the system's store, which trusts far more than one login
 * server. OpenSSL's strict checks, as hark_certificate_verify applies them. */
static X509_STORE *
ca_store(const char *ca_pem, GError **error)
{
  BIO *bio = BIO_new_mem_buf(ca_pem, -1);
  X509 *ca = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  X509_STORE *store = ca != NULL ? X509_STORE_new() : NULL;
  if (store == NULL || X509_STORE_add_cert(store, ca) != 1) {
    hark_set_openssl_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_NO_CREDENTIALS,
                           "the CA pinned by login.ca is not a usable PEM certificate");
    X509_STORE_free(store);
    X509_free(ca);
    return NULL;
  }
  X509_free(ca);
  X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT);
  return store;
}

static SSL_CTX *
new_ssl_ctx(HarkLink *link, X509_STORE *store, GBytes *certificate_der, EVP_PKEY *key,
            GError **error)
{
  SSL_CTX *ssl_ctx = SSL_CTX_new(link->opener ? TLS_client_method() : TLS_server_method());
  if (ssl_ctx == NULL) {
    X509_STORE_free(store);
    hark_set_openssl_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_HANDSHAKE, "cannot set up TLS");
    return NULL;
  }
  SSL_CTX_set_cert_store(ssl_ctx, store); /* takes it */
  SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ssl_ctx, TLS1_3_VERSION);
  /* No resumption: every link shows and checks certificates, so there is nothing to
   * gain from tickets and they would only cost bytes after the handshake. */
  SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
  /* Links are idle most of the time (a keep-alive every 120 s): their record buffers
   * (about 34 KiB each) go back to the heap between records. */
  SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_num_tickets(ssl_ctx, 0);
  SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET);
  /* The acceptor asks for a certificate but does not require one: a node that is not
   * logged in may still open a link (to log in through it, or prove a certificate
   * later with AUTH). The opener always requires the acceptor's. No host name check:
   * nodes are known by their certificates, not by names. */
  SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
  /* Device certificates carry the hark device purpose, not serverAuth/clientAuth, so
   * that no TLS client takes one for a web server: OpenSSL's TLS purposes would refuse
   * them here. The chain is checked against the pinned CA all the same, and the purpose
   * after the handshake by hark_certificate_verify, which demands the device's. */
  SSL_CTX_set_purpose(ssl_ctx, X509_PURPOSE_ANY);
  if (certificate_der != NULL) {
    gsize size = 0;
    const guint8 *der = g_bytes_get_data(certificate_der, &size);
    if (SSL_CTX_use_certificate_ASN1(ssl_ctx, (int)size, der) != 1 ||
        SSL_CTX_use_PrivateKey(ssl_ctx, key) != 1 || SSL_CTX_check_private_key(ssl_ctx) != 1) {
      hark_set_openssl_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_NO_CREDENTIALS,
                             "this device's certificate and key cannot be used for TLS");
      SSL_CTX_free(ssl_ctx);
      return NULL;
    }
  }
  return ssl_ctx;
}

struct _HarkLinkTlsCache {
  SSL_CTX *ctx[2]; /* [opener] */
  GBytes *made_with[2]; /* the certificate each was made with (NULL: none) */
};

void
hark_link_tls_cache_free(HarkLinkTlsCache *cache)
{
  if (cache == NULL)
    return;
  for (int i = 0; i < 2; i++) {
    SSL_CTX_free(cache->ctx[i]);
    g_clear_pointer(&cache->made_with[i], g_bytes_unref);
  }
  g_free(cache);
}

/* The node's context for this role and certificate, made when there is none yet or the
 * certificate changed; a new reference. */
static SSL_CTX *
cached_ssl_ctx(HarkLink *link, HarkNode *node, GBytes *certificate, GError **error)
{
  HarkNodeLinks *links = hark_node_links(node);
  if (links->tls_cache == NULL)
    links->tls_cache = g_new0(HarkLinkTlsCache, 1);
  HarkLinkTlsCache *cache = links->tls_cache;
  int role = link->opener ? 1 : 0;
  gboolean same = cache->ctx[role] != NULL &&
                  (certificate == NULL ? cache->made_with[role] == NULL
                                       : cache->made_with[role] != NULL &&
                                           g_bytes_equal(certificate, cache->made_with[role]));
  if (!same) {
    X509_STORE *store = ca_store(link->ca_pem, error);
    if (store == NULL)
      return NULL;
    SSL_CTX *made =
      new_ssl_ctx(link, store, certificate, hark_identity_get_private_key(node->identity), error);
    if (made == NULL)
      return NULL;
    SSL_CTX_free(cache->ctx[role]);
    g_clear_pointer(&cache->made_with[role], g_bytes_unref);
    cache->ctx[role] = made;
    cache->made_with[role] = certificate != NULL ? g_bytes_ref(certificate) : NULL;
  }
  SSL_CTX_up_ref(cache->ctx[role]);
  return cache->ctx[role];
}

gboolean
hark_link_tls_setup(HarkLink *link, HarkNode *node, GError **error)
{
  HarkNodeLinks *links = hark_node_links(node);
  const HarkLinkCredentials *credentials = links->credentials;
  const char *ca_pem = credentials != NULL ? credentials->ca_pem(links->credentials_data) : NULL;
  if (ca_pem == NULL || node->identity == NULL) {
    g_set_error_literal(error, HARK_LINK_ERROR, HARK_LINK_ERROR_NO_CREDENTIALS,
                        "this node has no login section, so no CA to check peers against: "
                        "it cannot make links");
    return FALSE;
  }
  GBytes *certificate = credentials->certificate_der(links->credentials_data);
  if (!link->opener && certificate == NULL) {
    g_set_error_literal(error, HARK_LINK_ERROR, HARK_LINK_ERROR_NO_CREDENTIALS,
                        "this node is not logged in: it has no certificate to accept "
                        "links with");
    return FALSE;
  }
  link->ca_pem = g_strdup(ca_pem);
  ERR_clear_error();
  link->ssl_ctx = cached_ssl_ctx(link, node, certificate, error);
  if (link->ssl_ctx == NULL)
    return FALSE;
  link->ssl = SSL_new(link->ssl_ctx);
  link->rbio = BIO_new(BIO_s_mem());
  link->wbio = BIO_new(BIO_s_mem());
  if (link->ssl == NULL || link->rbio == NULL || link->wbio == NULL) {
    BIO_free(link->rbio);
    BIO_free(link->wbio);
    link->rbio = link->wbio = NULL;
    hark_set_openssl_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_HANDSHAKE, "cannot set up TLS");
    return FALSE;
  }
  /* An empty input BIO means "wait for more", not the end of the stream. */
  BIO_set_mem_eof_return(link->rbio, -1);
  SSL_set_bio(link->ssl, link->rbio, link->wbio); /* the SSL owns them now */
  if (link->opener)
    SSL_set_connect_state(link->ssl);
  else
    SSL_set_accept_state(link->ssl);
  return TRUE;
}

/* DER of an X509, as GBytes. */
static GBytes *
certificate_bytes(X509 *certificate)
{
  unsigned char *der = NULL;
  int size = i2d_X509(certificate, &der);
  if (size <= 0)
    return NULL;
  GBytes *bytes = g_bytes_new(der, (gsize)size);
  OPENSSL_free(der);
  return bytes;
}

gboolean
hark_link_tls_check_peer(HarkLink *link, GError **error)
{
  X509 *peer = SSL_get0_peer_certificate(link->ssl);
  if (peer == NULL) {
    if (!link->opener)
      return TRUE; /* unauthenticated until it proves a certificate (AUTH) */
    g_set_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED, "%s:%u presented no certificate",
                link->peer_host, link->peer_port);
    return FALSE;
  }
  long result = SSL_get_verify_result(link->ssl);
  if (result != X509_V_OK) {
    g_set_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED,
                "the certificate of %s:%u is not from the CA in login.ca: %s", link->peer_host,
                link->peer_port, X509_verify_cert_error_string(result));
    return FALSE;
  }
  /* The chain is the CA's; this also checks what the certificate binds (the URI that
   * names user and device, and that the device id is the key's fingerprint). */
  g_autoptr(GBytes) der = certificate_bytes(peer);
  g_autoptr(GError) local = NULL;
  HarkDeviceCertificate *device =
    der != NULL ? hark_certificate_verify(link->ca_pem, der, now_seconds(), &local) : NULL;
  if (device == NULL) {
    g_set_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED,
                "the certificate of %s:%u is not a device certificate from the CA in "
                "login.ca: %s",
                link->peer_host, link->peer_port,
                local != NULL ? local->message : "cannot read it");
    ERR_clear_error();
    return FALSE;
  }
  link->peer_certificate = device;
  return TRUE;
}

GError *
hark_link_tls_handshake_error(HarkLink *link)
{
  long result = SSL_get_verify_result(link->ssl);
  if (result != X509_V_OK) {
    ERR_clear_error();
    return g_error_new(HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED,
                       "the certificate of %s:%u is not from the CA in login.ca: %s",
                       link->peer_host, link->peer_port, X509_verify_cert_error_string(result));
  }
  g_autofree char *details = hark_openssl_take_errors();
  return g_error_new(HARK_LINK_ERROR, HARK_LINK_ERROR_HANDSHAKE,
                     "TLS handshake with %s:%u failed: %s", link->peer_host, link->peer_port,
                     details[0] != '\0' ? details : "no reason given");
}

GBytes *
hark_link_channel_binding(HarkLink *link)
{
  g_return_val_if_fail(link != NULL, NULL);
  if (link->state != HARK_LINK_UP)
    return NULL;
  guint8 binding[HARK_LINK_BINDING_SIZE];
  ERR_clear_error();
  if (SSL_export_keying_material(link->ssl, binding, sizeof binding, HARK_LINK_BINDING_LABEL,
                                 strlen(HARK_LINK_BINDING_LABEL), NULL, 0, 0) != 1) {
    ERR_clear_error();
    return NULL;
  }
  return g_bytes_new(binding, sizeof binding);
}

gboolean
hark_link_authenticate(HarkLink *link, GBytes *cert, GBytes *signature, GError **error)
{
  g_return_val_if_fail(link != NULL && cert != NULL && signature != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  g_autoptr(GBytes) binding = hark_link_channel_binding(link);
  if (binding == NULL) {
    g_set_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED,
                "the link with %s:%u is not up: there is nothing to prove a certificate over",
                link->peer_host, link->peer_port);
    return FALSE;
  }
  g_autoptr(GError) local = NULL;
  g_autoptr(HarkDeviceCertificate) device =
    hark_certificate_verify(link->ca_pem, cert, now_seconds(), &local);
  if (device == NULL) {
    g_set_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED,
                "the certificate of %s:%u is not a device certificate from the CA in "
                "login.ca: %s",
                link->peer_host, link->peer_port, local->message);
    return FALSE;
  }
  if (!hark_identity_verify(device->public_key, binding, signature, &local)) {
    g_set_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED,
                "%s:%u did not prove the key of %s's device %s: %s", link->peer_host,
                link->peer_port, device->user, device->device_id, local->message);
    return FALSE;
  }
  /* One peer per link: a second proof may renew the certificate, not change who it is. */
  if (link->peer_certificate != NULL &&
      (g_strcmp0(link->peer_certificate->device_id, device->device_id) != 0 ||
       g_strcmp0(link->peer_certificate->user, device->user) != 0)) {
    g_set_error(error, HARK_LINK_ERROR, HARK_LINK_ERROR_UNTRUSTED,
                "%s:%u is already authenticated as %s's device %s", link->peer_host,
                link->peer_port, link->peer_certificate->user, link->peer_certificate->device_id);
    return FALSE;
  }
  g_clear_pointer(&link->peer_certificate, hark_device_certificate_free);
  link->peer_certificate = g_steal_pointer(&device);
  hark_link_watch_peer_certificate(link);
  return TRUE;
}
