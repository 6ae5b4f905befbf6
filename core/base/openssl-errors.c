/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* openssl-errors.c: OpenSSL's error queue and errno turned into GErrors. */
#include "openssl-errors.h"

#include <openssl/err.h>

char *
hark_openssl_take_errors(void)
{
  GString *text = g_string_new(NULL);
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (text->len > 0)
      g_string_append(text, "; ");
    g_string_append(text, buffer);
  }
  ERR_clear_error();
  return g_string_free(text, FALSE);
}

void
hark_set_openssl_error(GError **error, GQuark domain, int code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree char *message = g_strdup_vprintf(format, args);
  va_end(args);
  g_autofree char *details = hark_openssl_take_errors();
  g_set_error(error, domain, code, "%s%s%s", message, details[0] ? ": " : "", details);
}

void
hark_set_errno_error(GError **error, GQuark domain, int code, const char *what, const char *path,
                     int saved_errno)
{
  g_set_error(error, domain, code, "%s: %s: %s", path, what, g_strerror(saved_errno));
}
