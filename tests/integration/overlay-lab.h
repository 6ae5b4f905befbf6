/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-lab.h: the fixture of the overlay integration cases (test-overlay and its
 * theme files): each case gets a lab of its own, made in its setup and stopped in its
 * teardown, in the case's own process (test-isolate.h):
 *
 * - a network 127.A.B.x of its own (A.B random per case), where every SN listens on the
 *   same ports (OLAB_PORT, the web ports);
 * - a login server of its own (unless the case logs nobody in), with the case's loginsrv
 *   settings;
 * - the bootstrap SNs it asks for (sn1 at .11, sn2 at .12, ...), each listing all of
 *   them, logged in and serving.
 *
 * So a case that kills or freezes an SN, fills a cap, floods or corrupts something changes
 * nothing another case sees, and any case runs alone (`-p /overlay/redirect`). A case
 * makes the rest (clients, SNs configured its way) with the helpers below, which report
 * failures as NULL/FALSE (the case failed, logs shown): check them with HARK_REQUIRE. */
#pragma once

#include "lab.h"

#include <gio/gio.h>
#include <hark/wire.h>

G_BEGIN_DECLS

#define OLAB_PORT 33033
/* The web ports when 443 and 80 are not ours. Every SN listens on the same ports (a
 * client's tls443 settings name one pair for all), on the case's own addresses; below
 * the ephemeral range (32768-60999), so no port-0 bind anywhere is handed them. */
#define OLAB_WEB_TLS_PORT 30443
#define OLAB_WEB_HTTP_PORT 30080
#define OLAB_MAX_SNS 3
#define OLAB_JOIN_MS 15000
#define OLAB_FAILOVER_MS 10000

typedef struct _OLab OLab;
typedef void (*OLabTest)(OLab *lab);

/* One case and what its lab holds. */
typedef struct {
  const char *path;
  OLabTest test;
  guint sns; /* bootstrap SNs started for it (0 to OLAB_MAX_SNS) */
  gboolean no_login; /* no login server: nothing in the case logs in */
  const char *login_settings; /* more loginsrv settings ("certificate_lifetime = 5;") */
  gboolean needs_root; /* skipped, before anything starts, unless root */
} OLabCase;

struct _OLab {
  const OLabCase *c;
  gboolean up; /* everything asked for runs: the case runs only then */
  char *net; /* "127.A.B" */
  guint16 web_tls; /* tls443's ports on every SN: 443 and 80 as root */
  guint16 web_http;
  LabLoginServer *login; /* NULL with no_login */
  LabNode *sns[OLAB_MAX_SNS];
  guint n_sns;
  guint users; /* for unique user names */
  guint handshake_timeout_ms; /* of the SNs made next, when not 0 */
};

/* Registers the cases, each isolated, with its lab as fixture. */
void olab_add_cases(const OLabCase *cases, gsize n);

/* ---- addresses and configurations ---- */

/* "127.A.B.host" of this lab. */
char *olab_host(OLab *lab, guint host);
/* The address of the lab's SN index (0: sn1). */
char *olab_sn_address(OLab *lab, guint index);
/* "{ host = ...; port = ...; transports = [...]; }, ..." for the lab SNs in indexes. */
char *olab_bootstrap_of(OLab *lab, const guint *indexes, guint n);
/* The same for every lab SN. */
char *olab_bootstrap(OLab *lab);
/* "{ host = "<net>.host"; ...; transports = [ offered ]; }" ("udp tcp": space-separated). */
char *olab_bootstrap_one(OLab *lab, guint host, const char *offered);
/* An SN listening on address; extra goes into its supernode section. */
char *olab_sn_config(OLab *lab, const char *name, const char *address, const char *transports,
                     const char *bootstrap, const char *extra);
char *olab_client_config(OLab *lab, const char *name, const char *transports, const char *bootstrap,
                         guint16 tls_port);

/* ---- nodes ---- */

/* A started client that joined and logged in as a fresh user (*user). */
LabNode *olab_client_new(OLab *lab, const char *name, const char *transports, const char *bootstrap,
                         guint16 tls_port, char **user);
/* An SN started, logged in and serving with at least links SN links. */
LabNode *olab_sn_new(OLab *lab, const char *name, const char *address, const char *transports,
                     const char *bootstrap, const char *extra, guint links);
/* One more SN for a case, at <net>.host with these transports, bootstrapped from the
 * lab's SNs (and linked to one, if there are any); *only is a bootstrap list naming it
 * alone, offering what clients may try. */
LabNode *olab_case_sn(OLab *lab, const char *name, guint host, const char *transports,
                      const char *extra, const char *offered, char **only);
/* The lab SN called name, or NULL. */
LabNode *olab_sn_named(OLab *lab, const char *name);
char *olab_next_user(OLab *lab);

/* A client of a case's own, joined through the lab's SNs and logged in. */
typedef struct {
  LabNode *node;
  char *user;
} OLabClient;

gboolean olab_own_client(OLab *lab, OLabClient *client, const char *name);
void olab_client_clear(OLabClient *client);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(OLabClient, olab_client_clear)

/* ---- overlay state ---- */

JsonObject *olab_overlay_of(LabNode *node);
JsonObject *olab_wait_attached(LabNode *node, const char *transport);
const char *olab_member_string(JsonObject *object, const char *name);
const char *olab_sn_name_of(JsonObject *overlay);
gint64 olab_dropped(JsonObject *overlay, const char *counter);
/* Attached (over transport data, when not NULL). */
gboolean olab_is_attached(JsonObject *overlay, gconstpointer transport);
/* Serving, with at least GPOINTER_TO_UINT(data) verified SN links. */
gboolean olab_is_super(JsonObject *overlay, gconstpointer data);
/* The counter named rose above its value in before, within 5 s (else the case failed). */
gboolean olab_expect_counter_rise(LabNode *sn, JsonObject *before, const char *counter);
gboolean olab_nothing_unjoined(JsonObject *overlay, gconstpointer unused);

/* ---- speaking to an SN by hand ---- */

/* A TCP connection straight to host:port, or NULL (with a message). */
GSocketConnection *olab_tcp_to(const char *host, guint16 port);
/* TLS 1.3 from GIO without a certificate, or showing the device certificate and key in
 * pem (NULL: none); NULL (with a message) when that fails. */
GIOStream *olab_tls_to(const char *host, guint16 port, const char *pem);
/* For GIO's accept-certificate: any certificate (the test checks what it needs). */
gboolean olab_accept_any(GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors,
                         gpointer data);
void olab_send_frame(GIOStream *stream, guint32 length, gconstpointer data, gsize size);
void olab_send_message(GIOStream *stream, guint16 type, GVariant *body);
/* The next message, or NULL at the end or on error. */
HarkWireMessage *olab_read_message(GIOStream *stream);
/* A UDP socket bound to source, port 0; NULL when that fails. */
GSocket *olab_udp_from(const char *source);
/* The size of the next datagram within timeout_ms, or -1. */
gssize olab_udp_answer(GSocket *socket, guint timeout_ms);

G_END_DECLS
