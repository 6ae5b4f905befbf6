/* fuzz-record-keys.h: the record fuzzer's CA and clock, written by
 * make-record-seeds.py with the seeds it signed (a test CA: its key was thrown
 * away). */
#pragma once

#define FUZZ_RECORD_NOW G_GINT64_CONSTANT(1893456000) /* 2030-01-01, unix seconds */

#define FUZZ_RECORD_CA_PEM                                             \
  "-----BEGIN CERTIFICATE-----\n"                                      \
  "MIIBfTCCASKgAwIBAgIQANHEIHTZ/kqK3Fvnyt5iJDAKBggqhkjOPQQDAjAeMRww\n" \
  "GgYDVQQDDBNoYXJrIHJlY29yZCBmdXp6IENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ1\n" \
  "MDEwMTAwMDAwMFowHjEcMBoGA1UEAwwTaGFyayByZWNvcmQgZnV6eiBDQTBZMBMG\n" \
  "ByqGSM49AgEGCCqGSM49AwEHA0IABF/sVeDa/UQXchxOBSAJ4uRuNtspR70PUIGg\n" \
  "9ZSeOh76IRZy2ckucw5/IuCTBODRJOwkdZ6jpyOcbqpvW1dwS92jQjBAMB0GA1Ud\n" \
  "DgQWBBTImBkqimQ3W8UQIRywrFogE8O3VzAPBgNVHRMBAf8EBTADAQH/MA4GA1Ud\n" \
  "DwEB/wQEAwIBBjAKBggqhkjOPQQDAgNJADBGAiEAqwPoWdp31WsXQQt93aXfVYli\n" \
  "JAG5XNxdnG2oY5GXh3ICIQD7Qaqlr+M40ilb2Rdf5scWvwn1NYQr0BsspRiAKEoG\n" \
  "ag==\n"                                                             \
  "-----END CERTIFICATE-----\n"                                        \
  ""
