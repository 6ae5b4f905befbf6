/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* certificate.h: the X.509 certificates that bind a user and a device to a device key.
 *
 * The login server holds a CA (an ECDSA P-256 key and a self-signed certificate); at
 * login it issues each device a short-lived certificate for the device's Ed25519 key,
 * with the user name as the subject's common name, and the account id (random, never
 * reused: a name deleted and registered again is another account) and the device id (the
 * key's fingerprint) in a URI subject alternative name
 * "hark:device:<user>:<account id>:<fingerprint>".
 * The device certificate's only extended key usage is HARK_CERTIFICATE_DEVICE_PURPOSE
 * (never serverAuth or clientAuth); the login server's TLS certificate, from the same
 * CA, has serverAuth alone: neither passes for the other (docs/protocol.md,
 * "Certificates").
 * Every node pins the CA certificate from its configuration and checks certificates
 * with hark_certificate_verify() (devices) and hark_certificate_verify_server() (the
 * login server). Requests a device signs with its key
 * (hark_request_sign) are checked the same way by the login server. */
#pragma once

#include "hark/export.h"

#include "hark/identity.h"

#include <glib.h>

G_BEGIN_DECLS

#define HARK_CERTIFICATE_ERROR (hark_certificate_error_quark())
HARK_API GQuark hark_certificate_error_quark(void);

typedef enum {
  HARK_CERTIFICATE_ERROR_MALFORMED, /* not a PEM/DER certificate or key of the right type */
  HARK_CERTIFICATE_ERROR_UNTRUSTED, /* not signed by the pinned CA */
  HARK_CERTIFICATE_ERROR_EXPIRED, /* outside its validity (or not yet valid) */
  HARK_CERTIFICATE_ERROR_BAD_SIGNATURE,
  HARK_CERTIFICATE_ERROR_STALE, /* a signed request outside the allowed clock skew */
  HARK_CERTIFICATE_ERROR_CRYPTO, /* OpenSSL failed */
  HARK_CERTIFICATE_ERROR_IO,
  HARK_CERTIFICATE_ERROR_WRONG_PURPOSE, /* a device's where a server's is due, or back */
  HARK_CERTIFICATE_ERROR_WRONG_HOST, /* no subject alternative name is the host */
} HarkCertificateError;

/* The extended key usage of device certificates: a UUID OID (ITU-T X.667, 2.25),
 * which needs no registration. */
#define HARK_CERTIFICATE_DEVICE_PURPOSE "2.25.318258868248087382245093002452414484873"

typedef struct _HarkCa HarkCa;

/* Load the CA from dir (ca-key.pem 0600, ca.pem), or create it there. */
HARK_API HarkCa *hark_ca_load_or_create(const char *dir, const char *common_name, GError **error);
/* The CA certificate, PEM, to hand to clients (they pin it). */
HARK_API const char *hark_ca_get_certificate_pem(HarkCa *ca);
/* The form of an account id: 32 lower-case hex digits (128 random bits). */
#define HARK_ACCOUNT_ID_LENGTH 32
HARK_API gboolean hark_account_id_is_valid(const char *account_id);
/* A new random account id (OpenSSL's CSPRNG); NULL only when that fails. */
HARK_API char *hark_account_id_new(GError **error);

/* A device certificate (PEM) for public_key_pem (an Ed25519 SubjectPublicKeyInfo) of the
 * account account_id, registered as user. */
HARK_API char *hark_ca_issue_device(HarkCa *ca, const char *user, const char *account_id,
                                    const char *public_key_pem, gint64 not_before,
                                    gint64 lifetime_seconds, GError **error);
/* A TLS server certificate and key (PEM, ECDSA P-256) for the given host names and IP
 * addresses, signed by the CA, written to cert_path and key_path (0600). Existing files
 * are kept when they are from this CA, name every host and have 30 days or more left;
 * otherwise they are replaced. */
HARK_API gboolean hark_ca_ensure_server_certificate(HarkCa *ca, const char *const *hosts,
                                                    const char *cert_path, const char *key_path,
                                                    GError **error);
HARK_API void hark_ca_free(HarkCa *ca);

typedef struct {
  char *user; /* the subject's common name */
  char *account_id; /* the account the certificate was issued for */
  char *device_id; /* the fingerprint of the certified key */
  GBytes *public_key; /* raw Ed25519, 32 bytes */
  gint64 not_before;
  gint64 not_after;
} HarkDeviceCertificate;

/* Check cert_pem (PEM or DER) against the pinned ca_pem at time now and return what it
 * certifies. UNTRUSTED, EXPIRED, MALFORMED or WRONG_PURPOSE (not a device certificate)
 * otherwise. */
HARK_API HarkDeviceCertificate *hark_certificate_verify(const char *ca_pem, GBytes *cert,
                                                        gint64 now, GError **error);
/* The same, but a certificate that expired at most grace seconds before now is taken too
 * (checked as of its last valid second): a device that has been offline since its
 * certificate ran out is still the user's device until the login server revokes it, and
 * a sender seals messages for it to hold. */
HARK_API HarkDeviceCertificate *hark_certificate_verify_recent(const char *ca_pem, GBytes *cert,
                                                               gint64 now, gint64 grace,
                                                               GError **error);
HARK_API void hark_device_certificate_free(HarkDeviceCertificate *cert);

/* Checks cert (PEM or DER) as the login server's TLS certificate for host (a host name
 * or an IP address, from login.url) at time now: issued by the pinned ca_pem, valid, not
 * a CA, serverAuth as its only TLS purpose and not the device purpose, and host among
 * its subject alternative names (DNS or IP; the common name is never looked at).
 * UNTRUSTED, EXPIRED, MALFORMED, WRONG_PURPOSE or WRONG_HOST otherwise. */
HARK_API gboolean hark_certificate_verify_server(const char *ca_pem, GBytes *cert, const char *host,
                                                 gint64 now, GError **error);

/* Signed requests: the device signs "HARK-REQUEST-2\n<method>\n<path>\n<date>\n<nonce>\n
 * <hex sha-256 of body>" with its key; see docs/protocol.md. The nonce (16-64 characters of
 * A-Z, a-z, 0-9, '_', '-'; hark_request_new_nonce) is new for every request, so that the
 * server can refuse one it has seen (a replay). Returns the base64 signature. */
HARK_API char *hark_request_sign(HarkIdentity *identity, const char *method, const char *path,
                                 gint64 date, const char *nonce, GBytes *body, GError **error);
HARK_API gboolean hark_request_verify(GBytes *public_key, const char *method, const char *path,
                                      gint64 date, const char *nonce, GBytes *body,
                                      const char *signature_b64, gint64 now, gint64 max_skew,
                                      GError **error);
HARK_API gboolean hark_request_nonce_is_valid(const char *nonce);
/* 32 random lower-case hex digits (OpenSSL's generator). */
HARK_API char *hark_request_new_nonce(void);

/* Login nonces and proofs (docs/protocol.md, "Proof of the device key"): the login server
 * gives a nonce, "<unix seconds>-<32 hex random>-<32 hex HMAC>", MACed with a key derived
 * from the CA key (so every server process holding the CA takes the others' nonces); the
 * device signs "HARK-LOGIN-1\n<nonce>\n<user>\n<fingerprint>" with the key it asks a
 * certificate for. Checking a nonce does not remember it: the server does (a replay). */
HARK_API char *hark_ca_make_nonce(HarkCa *ca, gint64 now);
/* MALFORMED, BAD_SIGNATURE (not this CA's) or STALE (older than lifetime seconds, or
 * from the future); *issued (may be NULL) is when it was made. */
HARK_API gboolean hark_ca_check_nonce(HarkCa *ca, const char *nonce, gint64 now, gint64 lifetime,
                                      gint64 *issued, GError **error);
/* The base64 proof. */
HARK_API char *hark_login_proof_sign(HarkIdentity *identity, const char *nonce, const char *user,
                                     GError **error);
/* public_key: raw Ed25519, 32 bytes. BAD_SIGNATURE when proof_b64 is not its signature. */
HARK_API gboolean hark_login_proof_verify(GBytes *public_key, const char *nonce, const char *user,
                                          const char *proof_b64, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkCa, hark_ca_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkDeviceCertificate, hark_device_certificate_free)

/* For hark's own program (main(), before the node starts): GIO's default TLS database
 * becomes one that trusts no certificate, so that GIO never loads the system's trust
 * store, which no TLS connection of hark's consults (every one that checks a peer gives
 * its own database; tls-default.c). Once per process; the later calls do nothing. */
HARK_API void hark_tls_prepare(void);

G_END_DECLS
