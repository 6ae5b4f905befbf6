/* fuzz-keys.h: the fuzzers' CA and clock, written by make-login-seeds.py with the
 * seeds it signed (a test CA: its key was thrown away). */
#pragma once

#define FUZZ_NOW G_GINT64_CONSTANT(1893456000) /* 2030-01-01, unix seconds */

#define FUZZ_CA_PEM                                                    \
  "-----BEGIN CERTIFICATE-----\n"                                      \
  "MIIBbjCCARSgAwIBAgIQANG5xhqIFoB9Jferr0VpwDAKBggqhkjOPQQDAjAXMRUw\n" \
  "EwYDVQQDDAxoYXJrIGZ1enogQ0EwHhcNMjUwMTAxMDAwMDAwWhcNNDUwMTAxMDAw\n" \
  "MDAwWjAXMRUwEwYDVQQDDAxoYXJrIGZ1enogQ0EwWTATBgcqhkjOPQIBBggqhkjO\n" \
  "PQMBBwNCAAQ5w4dshDUpBzrx8sBSc/Til8xOi4iwxWNJRQcdabRImTFUh4WfT+3r\n" \
  "fxUvblTvOk9u8WECW8R5a/6XMP2TDqjEo0IwQDAdBgNVHQ4EFgQUwtjDlWI6rPAO\n" \
  "GVzyhaLO9RK0jdowDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYI\n" \
  "KoZIzj0EAwIDSAAwRQIhAIJ6TloPRsTFUpj/lRj7DNTZJs/IeOOnu2FDeDO/aRj0\n" \
  "AiAp55+NV1l+f7B3n3eohjN4Hz0W4FGMQoUDb4oaSe7GYA==\n"                 \
  "-----END CERTIFICATE-----\n"                                        \
  ""
