/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-trust.c: the TLS trust of the login client (login.h): a GTlsDatabase that takes
 * only the login server's own certificate.
 *
 * Device certificates and the server's come from the same pinned CA, and a device
 * certificate's subject common name is a user's name, which anyone can register: GIO's
 * usual check (any certificate of the CA, the host matched against the common name when
 * there is no DNS name, without case) would take a user called like the login host for
 * the server, and hand them passwords. So verification is hark_certificate_verify_server:
 * the pinned CA, serverAuth and not the device purpose, and the host among the subject
 * alternative names only. */
#include "login.h"

#include "hark/certificate.h"

struct _HarkLoginTrust {
  GTlsDatabase parent;
  char *ca_pem;
  GMutex lock;
  char *last_refusal; /* why the last certificate was refused, for the error message */
};

G_DEFINE_FINAL_TYPE(HarkLoginTrust, hark_login_trust, G_TYPE_TLS_DATABASE)

/* The host name or address the connection is for (login.url's host). */
static char *
identity_host(GSocketConnectable *identity)
{
  if (G_IS_NETWORK_ADDRESS(identity))
    return g_strdup(g_network_address_get_hostname(G_NETWORK_ADDRESS(identity)));
  if (G_IS_NETWORK_SERVICE(identity))
    return g_strdup(g_network_service_get_domain(G_NETWORK_SERVICE(identity)));
  if (G_IS_INET_SOCKET_ADDRESS(identity))
    return g_inet_address_to_string(
      g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(identity)));
  return NULL;
}

static GTlsCertificateFlags
flags_for(const GError *error)
{
  if (error->domain != HARK_CERTIFICATE_ERROR)
    return G_TLS_CERTIFICATE_GENERIC_ERROR;
  switch (error->code) {
  case HARK_CERTIFICATE_ERROR_UNTRUSTED:
    return G_TLS_CERTIFICATE_UNKNOWN_CA;
  case HARK_CERTIFICATE_ERROR_EXPIRED:
    return G_TLS_CERTIFICATE_EXPIRED;
  case HARK_CERTIFICATE_ERROR_WRONG_HOST:
    return G_TLS_CERTIFICATE_BAD_IDENTITY;
  default:
    return G_TLS_CERTIFICATE_GENERIC_ERROR;
  }
}

static void
note_refusal(HarkLoginTrust *trust, const char *message)
{
  g_mutex_lock(&trust->lock);
  g_free(trust->last_refusal);
  trust->last_refusal = g_strdup(message);
  g_mutex_unlock(&trust->lock);
}

/* Runs in GIO's handshake thread: reads only the immutable ca_pem. */
static GTlsCertificateFlags
verify_chain(GTlsDatabase *database, GTlsCertificate *chain, const gchar *purpose,
             GSocketConnectable *identity, GTlsInteraction *interaction,
             GTlsDatabaseVerifyFlags flags, GCancellable *cancellable, GError **error)
{
  HarkLoginTrust *trust = HARK_LOGIN_TRUST(database);
  if (g_strcmp0(purpose, G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER) != 0) {
    note_refusal(trust, "only the login server's certificate is checked here");
    return G_TLS_CERTIFICATE_GENERIC_ERROR;
  }
  g_autofree char *host = identity != NULL ? identity_host(identity) : NULL;
  if (host == NULL) {
    note_refusal(trust, "there is no host name to check the certificate against");
    return G_TLS_CERTIFICATE_BAD_IDENTITY;
  }
  g_autoptr(GByteArray) der = NULL;
  g_object_get(chain, "certificate", &der, NULL);
  g_autoptr(GBytes) bytes = der != NULL ? g_bytes_new(der->data, der->len) : NULL;
  g_autoptr(GError) local = NULL;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  if (bytes != NULL && hark_certificate_verify_server(trust->ca_pem, bytes, host, now, &local))
    return 0;
  const char *why = local != NULL ? local->message : "no certificate";
  note_refusal(trust, why);
  return local != NULL ? flags_for(local) : G_TLS_CERTIFICATE_GENERIC_ERROR;
}

static void
hark_login_trust_finalize(GObject *object)
{
  HarkLoginTrust *trust = HARK_LOGIN_TRUST(object);
  g_free(trust->ca_pem);
  g_free(trust->last_refusal);
  g_mutex_clear(&trust->lock);
  G_OBJECT_CLASS(hark_login_trust_parent_class)->finalize(object);
}

static void
hark_login_trust_class_init(HarkLoginTrustClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = hark_login_trust_finalize;
  G_TLS_DATABASE_CLASS(klass)->verify_chain = verify_chain;
}

static void
hark_login_trust_init(HarkLoginTrust *trust)
{
  g_mutex_init(&trust->lock);
}

GTlsDatabase *
hark_login_trust_new(const char *ca_pem)
{
  HarkLoginTrust *trust = g_object_new(HARK_TYPE_LOGIN_TRUST, NULL);
  trust->ca_pem = g_strdup(ca_pem);
  return G_TLS_DATABASE(trust);
}

char *
hark_login_trust_last_refusal(GTlsDatabase *database)
{
  HarkLoginTrust *trust = HARK_LOGIN_TRUST(database);
  g_mutex_lock(&trust->lock);
  char *copy = g_strdup(trust->last_refusal);
  g_mutex_unlock(&trust->lock);
  return copy;
}
