#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-record-seeds.py: the record fuzzer's CA (fuzz-record-keys.h) and its seeds,
corpus/record/: presence records (hark/presence.h) signed by devices that CA certified, so
that mutations reach past the signature check, and DIR_LOOKUP queries.

Like make-login-seeds.py it makes new keys on each run (its CA key is thrown away): run it
only to change the seeds, and commit fuzz-record-keys.h with them. It has a CA of its own so
that the other fuzzers' seeds stay as they are. Uses python3-cryptography (a version that takes
the device purpose's long OID arc: 38 does not, 48 does) and the system's PyGObject (GLib.Variant: the serialiser hark uses).

Input form (fuzz-record.c): the first byte chooses the parser: 'R' a signed record (ayay),
'L' a DIR_LOOKUP body; the rest is the serialised GVariant."""
import datetime
import hashlib
import os
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID, ObjectIdentifier
try:
    from gi.repository import GLib
except ImportError:  # a python3 of its own (pyenv) without the system's PyGObject
    import sys
    sys.path.append("/usr/lib/python3/dist-packages")
    from gi.repository import GLib

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE_PURPOSE = "2.25.318258868248087382245093002452414484873"
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc)
NOW = int(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
DOMAIN = b"HARK-PRESENCE-1\n"
PAYLOAD = "(sssaysa(ssq)sstx)"


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def raw(key):
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("hark record fuzz CA"))
      .issuer_name(name("hark record fuzz CA")).public_key(ca_key.public_key())
      .serial_number(secrets.randbits(120) + 1)
      .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
      .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                     critical=True)
      .sign(ca_key, hashes.SHA256()))


def device(user):
    key = ed25519.Ed25519PrivateKey.generate()
    fingerprint = hashlib.sha256(raw(key.public_key())).hexdigest()
    uri = f"hark:device:{user}:{ACCOUNT_ID}:{fingerprint}"
    cert = (x509.CertificateBuilder().subject_name(name(user)).issuer_name(name("hark record fuzz CA"))
            .public_key(key.public_key()).serial_number(secrets.randbits(120) + 1)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(DEVICE_PURPOSE)]), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return key, fingerprint, cert.public_bytes(serialization.Encoding.DER)


def wire_bytes(variant):
    """Little-endian normal form, as hark sends it."""
    normal = variant.get_normal_form()
    if GLib.Variant("q", 1).get_data_as_bytes().get_data() != b"\x01\x00":
        normal = normal.byteswap()
    return normal.get_data_as_bytes().get_data()


def record(user, key, fingerprint, cert, form="full", status="online", addresses=None,
           time=NOW, signer=None):
    if addresses is None:
        addresses = [("host", "10.0.0.5", 40000), ("srflx", "203.0.113.9", 40001)] \
            if form == "full" else []
    payload = wire_bytes(GLib.Variant(PAYLOAD, (form, user, fingerprint, cert, "192.0.2.1:33033",
                                                addresses, "nat", status, 3, time)))
    signature = (signer or key).sign(DOMAIN + payload)
    return wire_bytes(GLib.Variant("(ayay)", (payload, signature)))


def write(seed, data):
    directory = os.path.join(HERE, "corpus", "record")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, seed), "wb") as f:
        f.write(data)


alice = device("alice")
bob = device("bob")
write("full", b"R" + record("alice", *alice))
write("public", b"R" + record("alice", *alice, form="public", status="hidden"))
write("away-mixed-case", b"R" + record("Alice", *alice, status="away"))
write("forged", b"R" + record("alice", *alice, signer=bob[0]))
write("bob-as-alice", b"R" + record("alice", *bob))
write("old", b"R" + record("alice", *alice, time=NOW - 73 * 3600))
write("future", b"R" + record("alice", *alice, time=NOW + 3600))
write("too-many-addresses", b"R" + record("alice", *alice,
                                          addresses=[("host", "10.0.0.1", 1000 + i) for i in range(9)]))
write("lookup-name", b"L" + wire_bytes(GLib.Variant("(sbas)", ("alice", False, ["gi", "loginsrv"]))))
write("lookup-prefix", b"L" + wire_bytes(GLib.Variant("(sbas)", ("ali", True, ["loginsrv"]))))

with open(os.path.join(HERE, "fuzz-record-keys.h"), "w") as f:
    f.write("/* fuzz-record-keys.h: the record fuzzer's CA and clock, written by\n"
            " * make-record-seeds.py with the seeds it signed (a test CA: its key was thrown\n"
            " * away). */\n#pragma once\n\n")
    f.write(f"#define FUZZ_RECORD_NOW G_GINT64_CONSTANT({NOW}) /* 2030-01-01, unix seconds */\n\n")
    f.write("#define FUZZ_RECORD_CA_PEM \\\n")
    for line in ca.public_bytes(serialization.Encoding.PEM).decode().splitlines():
        f.write(f'  "{line}\\n" \\\n')
    f.write("  \"\"\n")
