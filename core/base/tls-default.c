/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tls-default.c: GIO's default TLS database, for hark's own program, is one that trusts
 * no certificate (certificate.h, hark_tls_prepare).
 *
 * GIO's TLS backend (glib-networking, GnuTLS) loads the system's trust store, every CA of
 * ca-certificates parsed by GnuTLS, the first time a TLS connection is made without a
 * database given at construction, and keeps it for the life of the process: about 7 MiB
 * of heap (the database and its GnuTLS credentials each hold the 140-odd certificates).
 * libsoup makes every client connection that way (the session's tls-database is set on
 * the connection only after it is made), so the login client paid that for a store it
 * never consults: it trusts the pinned CA alone (login-trust.c). Nothing else in hark
 * trusts the system's CAs either: links and relays check the overlay's certificates
 * with OpenSSL, and GIO's server connections here ask no client for a certificate. */
#include "hark/certificate.h"

#include <gio/gio.h>

#define HARK_TYPE_TRUST_NOTHING (hark_trust_nothing_get_type())
G_DECLARE_FINAL_TYPE(HarkTrustNothing, hark_trust_nothing, HARK, TRUST_NOTHING, GTlsDatabase)

struct _HarkTrustNothing {
  GTlsDatabase parent;
};

G_DEFINE_FINAL_TYPE(HarkTrustNothing, hark_trust_nothing, G_TYPE_TLS_DATABASE)

static GTlsCertificateFlags
verify_chain(GTlsDatabase *database, GTlsCertificate *chain, const char *purpose,
             GSocketConnectable *identity, GTlsInteraction *interaction,
             GTlsDatabaseVerifyFlags flags, GCancellable *cancellable, GError **error)
{
  (void)database, (void)chain, (void)purpose, (void)identity, (void)interaction, (void)flags;
  if (g_cancellable_set_error_if_cancelled(cancellable, error))
    return G_TLS_CERTIFICATE_GENERIC_ERROR;
  return G_TLS_CERTIFICATE_UNKNOWN_CA;
}

static void
hark_trust_nothing_class_init(HarkTrustNothingClass *klass)
{
  G_TLS_DATABASE_CLASS(klass)->verify_chain = verify_chain;
}

static void
hark_trust_nothing_init(HarkTrustNothing *self)
{
  (void)self;
}

void
hark_tls_prepare(void)
{
  static gsize done;
  if (!g_once_init_enter(&done))
    return;
  GTlsBackend *backend = g_tls_backend_get_default();
  if (g_tls_backend_supports_tls(backend)) {
    g_autoptr(GTlsDatabase) nothing = g_object_new(HARK_TYPE_TRUST_NOTHING, NULL);
    g_tls_backend_set_default_database(backend, nothing);
  }
  g_once_init_leave(&done, 1);
}
