#!/usr/bin/env python3
"""make-login-seeds.py: a fixed test CA (fuzz-keys.h) and the seeds of the targets that
check certificates and signatures: corpus/loginsrv/ and corpus/certificate/.

A fuzzer cannot forge a signature, so the seeds that reach past the checks must be signed
by keys the fuzzer's CA certified. The keys are made anew on each run of this script
(python3-cryptography), so run it only to change the seeds, and commit fuzz-keys.h with
them. Every certificate is valid from 2025 to 2045 and the fuzzers' clock is fixed at
FUZZ_NOW inside that, so a replay does the same on every day.

Input forms (tests/fuzz/fuzz-loginsrv.c, fuzz-certificate.c): the first byte chooses what
is fuzzed; see the fuzzers' top comments."""
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID, ObjectIdentifier

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE_PURPOSE = "2.25.318258868248087382245093002452414484873"
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc)
NOW = int(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def builder(subject, issuer, key):
    return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(key).serial_number(secrets.randbits(120) + 1)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False))


def raw(key):
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (builder("hark fuzz CA", "hark fuzz CA", ca_key.public_key())
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                     critical=True)
      .sign(ca_key, hashes.SHA256()))
ca_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())


def device_certificate(user, key, purposes=(DEVICE_PURPOSE,), uri_user=None):
    fingerprint = hashlib.sha256(raw(key.public_key())).hexdigest()
    uri = f"hark:device:{uri_user or user}:{ACCOUNT_ID}:{fingerprint}"
    b = (builder(user, "hark fuzz CA", key.public_key())
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                      False), critical=True)
         .add_extension(ca_aki, critical=False)
         .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]),
                        critical=False))
    if purposes:
        b = b.add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(p) for p in purposes]),
                            critical=True)
    return b.sign(ca_key, hashes.SHA256())


def server_certificate(key):
    return (builder("login.example", "hark fuzz CA", key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(ca_aki, critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("login.example"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def write(target, seed, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, seed), "wb") as f:
        f.write(data)


alice_key = ed25519.Ed25519PrivateKey.generate()
alice = device_certificate("alice", alice_key)
sn_key = ed25519.Ed25519PrivateKey.generate()
sn = device_certificate("sn-one", sn_key)
legacy = device_certificate("bob", ed25519.Ed25519PrivateKey.generate(), purposes=())
wrong_uri = device_certificate("carol", ed25519.Ed25519PrivateKey.generate(), uri_user="dave")
server = server_certificate(ec.generate_private_key(ec.SECP256R1()))

with open(os.path.join(HERE, "fuzz-keys.h"), "w") as f:
    f.write("/* fuzz-keys.h: the fuzzers' CA and clock, written by make-login-seeds.py with the\n"
            " * seeds it signed (a test CA: its key was thrown away). */\n#pragma once\n\n")
    f.write(f"#define FUZZ_NOW G_GINT64_CONSTANT({NOW}) /* 2030-01-01, unix seconds */\n\n")
    f.write("#define FUZZ_CA_PEM \\\n")
    for line in pem(ca).decode().splitlines():
        f.write(f'  "{line}\\n" \\\n')
    f.write("  \"\"\n")

# ---- loginsrv: 'B' + table + body, 'S' + headers, 'T' + preamble line -----------------
bodies = {
    "body-login": (0, {"user": "alice", "password": "correct horse", "device": "phone",
                       "public_key": "-----BEGIN PUBLIC KEY-----", "nonce": "1-2-3"}),
    "body-register": (1, {"user": "Alice.B", "password": "12345678"}),
    "body-buddies": (2, {"op": "add", "name": "bob", "alias": "Bob \u2066x", "revision": 3}),
    "body-devices": (3, {"device": "a" * 64}),
    "body-password": (4, {"user": "alice", "password": "old password", "new_password": "n" * 9,
                          "revoke_others": True, "keep_device": "f" * 64}),
    "body-empty-route": (5, {}),
    "body-contacts-send": (6, {"op": "send", "name": "Bob", "message": "hi \u202e it's me"}),
    "body-contacts-accept": (6, {"op": "accept", "name": "alice"}),
    "body-contacts-block": (6, {"op": "block", "name": "m" * 33, "message": ""}),
}
for seed, (table, body) in bodies.items():
    write("loginsrv", seed, b"B" + bytes([table]) + json.dumps(body).encode())
write("loginsrv", "body-repeated-member", b"B\x00" + b'{"user":"a","user":"b"}')
write("loginsrv", "body-nul-escape", b"B\x00" + b'{"user":"alice\\u0000x"}')
write("loginsrv", "body-two-values", b"B\x01" + b'{"user":"a"} {"user":"b"}')
write("loginsrv", "body-contacts-message-type", b"B\x06" + b'{"op":"send","name":"bob","message":7}')


def signed_request(method, path, body, date, nonce):
    digest = hashlib.sha256(body).hexdigest()
    text = f"HARK-REQUEST-2\n{method}\n{path}\n{date}\n{nonce}\n{digest}".encode()
    signature = base64.b64encode(alice_key.sign(text)).decode()
    certificate = base64.b64encode(der(alice)).decode()
    return ("S" + "\n".join([certificate, str(date), nonce, signature, method, path]) + "\n"
            ).encode() + body


write("loginsrv", "signed-get", signed_request("GET", "/v1/buddies", b"", NOW, "n" * 32))
write("loginsrv", "signed-post",
      signed_request("POST", "/v1/renew", b'{"public_key":"x"}', NOW - 200, "abc_DEF-0123456789"))
write("loginsrv", "signed-stale", signed_request("GET", "/v1/devices", b"", NOW - 301, "q" * 16))
write("loginsrv", "signed-missing-headers", b"S" + base64.b64encode(der(alice)) + b"\n1\n")


def preamble(client, date, nonce, certificate=sn, key=sn_key):
    text = f"HARK-TUNNEL-1\n{client}\n{date}\n{nonce}".encode()
    signature = base64.b64encode(key.sign(text)).decode()
    cert = base64.b64encode(der(certificate)).decode()
    return f"THARK-TUNNEL-1 {client} {date} {nonce} {cert} {signature}\r\n".encode()


write("loginsrv", "tunnel-v4", preamble("192.0.2.7", NOW, "0123456789abcdef0123456789abcdef"))
write("loginsrv", "tunnel-v6", preamble("2001:db8::1", NOW + 299, "f" * 32))
write("loginsrv", "tunnel-not-sn-key",
      preamble("192.0.2.7", NOW, "e" * 32, certificate=alice, key=sn_key))
write("loginsrv", "tunnel-short", b"THARK-TUNNEL-1 192.0.2.7 1 00\r\n")

# ---- certificate: 'D' + device certificate, 'S' + host + '\n' + server certificate,
#      'H' + hostcache.json --------------------------------------------------------------
write("certificate", "device-der", b"D" + der(alice))
write("certificate", "device-pem", b"D" + pem(sn))
write("certificate", "device-legacy-no-eku", b"D" + der(legacy))
write("certificate", "device-uri-other-user", b"D" + der(wrong_uri))
write("certificate", "device-is-server", b"D" + der(server))
write("certificate", "ca-as-device", b"D" + pem(ca))
write("certificate", "server-name", b"Slogin.example\n" + der(server))
write("certificate", "server-ip", b"S127.0.0.1\n" + pem(server))
write("certificate", "server-is-device", b"Slogin.example\n" + der(alice))


def hostcache(entries, version=1):
    return b"H" + json.dumps({"version": version, "entries": entries}, indent=2).encode()


sn_entry = {"host": "sn1.example", "port": 7000, "transports": ["udp", "tcp"],
            "last_seen": NOW, "failures": 0, "rtt_us": 1200, "bootstrap": True}
learnt = {"host": "192.0.2.9", "port": 443, "transports": ["tls443"], "last_seen": 0,
          "failures": 3, "rtt_us": -1, "bootstrap": False, "learnt_from": "198.51.100.1:7000"}
write("certificate", "hostcache", hostcache([sn_entry, learnt]))
write("certificate", "hostcache-empty", hostcache([]))
write("certificate", "hostcache-twice", hostcache([sn_entry, sn_entry]))
write("certificate", "hostcache-version-2", hostcache([], version=2))
write("certificate", "hostcache-deep", b"H" + b"[" * 12 + b"]" * 12)
