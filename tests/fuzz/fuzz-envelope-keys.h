/* fuzz-envelope-keys.h: fuzz-envelope's CA, the recipient device's key
 * and clock, written by make-envelope-seeds with the seeds it sealed
 * (a test CA: its key was thrown away). */
#pragma once

#define FUZZ_ENVELOPE_NOW G_GINT64_CONSTANT(1893456000) /* 2030-01-01 */

#define FUZZ_ENVELOPE_CA_PEM \
  "-----BEGIN CERTIFICATE-----\n" \
  "MIIBgDCCASegAwIBAgIRAIKT5FaKvtOj1GzwbwRIpC0wCgYIKoZIzj0EAwIwIDEe\n" \
  "MBwGA1UEAwwVaGFyayBlbnZlbG9wZSBmdXp6IENBMB4XDTI2MTIwNDIyMTE1NFoX\n" \
  "DTM2MTIwMzIzMTE1NFowIDEeMBwGA1UEAwwVaGFyayBlbnZlbG9wZSBmdXp6IENB\n" \
  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtxL0n+i5qrH53IY0dALVmw8kbjfe\n" \
  "+PohFqc25lJg6oSMaexf4DT8mkDsyouIBf3T5GdsD67nWGJyz0EzAFVc86NCMEAw\n" \
  "DwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFKW7ywfw\n" \
  "aLZN+bjJKO2VdntlCsISMAoGCCqGSM49BAMCA0cAMEQCIDJ+ICKjbsDNWCiVxFQh\n" \
  "FgehaXUBJEUrYL+Avg7lEgQiAiBuL/s6qMT627SC5cFuXk060bAjkpOdiCE1oVki\n" \
  "Zug9cg==\n" \
  "-----END CERTIFICATE-----\n" \
  ""

#define FUZZ_ENVELOPE_KEY_PEM \
  "-----BEGIN PRIVATE KEY-----\n" \
  "MC4CAQAwBQYDK2VwBCIEIKGcGnJgh8LgS5CMfjyKSFTgObOGXTJIDW0dfKOxad5m\n" \
  "-----END PRIVATE KEY-----\n" \
  ""

