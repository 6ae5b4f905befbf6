/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* openssl-errors.h: OpenSSL's error queue and errno turned into GErrors, shared by the
 * parts of libhark that use OpenSSL (identity.c, certificate.c). Not installed. */
#pragma once

#include <glib.h>

/* OpenSSL's error queue as "; "-separated text; the queue is left empty. */
char *hark_openssl_take_errors(void);

/* error = "<message>: <OpenSSL's errors>"; the queue is left empty. */
void hark_set_openssl_error(GError **error, GQuark domain, int code, const char *format, ...)
  G_GNUC_PRINTF(4, 5);

/* error = "<path>: <what>: <strerror>". */
void hark_set_errno_error(GError **error, GQuark domain, int code, const char *what,
                          const char *path, int saved_errno);
