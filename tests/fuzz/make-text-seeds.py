#!/usr/bin/env python3
"""make-text-seeds.py: the seeds of the fuzz targets whose inputs are text and need no
key: corpus/loginanswer/, ctlline/, tunnel/, statefile/ (SEEDS lists them). Running it again writes the
same files; edit SEEDS and run it to change them. Input forms: the fuzzers' top comments
(tests/fuzz/fuzz-NAME.c)."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

PEM = ("-----BEGIN CERTIFICATE-----\nMIIBbjCCARSgAwIBAgIQANG5xhqIFoB9Jferr0VpwDAKBggqhkjOPQQDAjAX\n"
       "-----END CERTIFICATE-----\n")
BUDDIES = {"revision": 7, "buddies": [{"name": "bob", "alias": "Bob"}, {"name": "carol"}]}


def answer(kind, status, body, retry_after=""):
    """KIND STATUS \\n RETRY-AFTER \\n BODY (fuzz-loginanswer.c)."""
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return f"{kind}{status:03d}\n{retry_after}\n".encode() + body


def refusal(code, message, **more):
    return {"error": dict(code=code, message=message, **more)}


LOGINANSWER = {
    "login": answer("L", 200, {"user": "alice", "certificate": PEM, "expires": "2030-01-02",
                               "buddies": BUDDIES}),
    "login-no-certificate": answer("L", 200, {"user": "alice", "buddies": BUDDIES}),
    "login-buddy-without-name": answer("L", 200, {"certificate": PEM, "buddies": {
        "revision": 1, "buddies": [{"alias": "nameless"}, 3]}}),
    "login-wrong-credentials": answer("L", 401, refusal("wrong-credentials", "no")),
    "login-locked-out": answer("L", 429, refusal("locked-out", "wait", retry_after=300)),
    "login-locked-out-header": answer("L", 429, refusal("locked-out", "wait"), "86400"),
    "lookup-limited": answer("S", 429, refusal(
        "locked-out", "too many user look-ups from this address: try again in 60 s\u0007",
        retry_after=60)),
    "renew": answer("R", 200, {"certificate": PEM, "expires": "2030-01-02"}),
    "renew-unauthenticated": answer("R", 401, refusal("unauthenticated", "revoked")),
    "renew-certificate-number": answer("R", 200, {"certificate": 12}),
    "nonce": answer("N", 200, {"nonce": "3q2+7w=="}),
    "nonce-array-root": answer("N", 200, "[1, 2, 3]"),
    "buddies": answer("B", 200, BUDDIES),
    "buddies-revision-string": answer("B", 200, {"revision": "7", "buddies": []}),
    "buddy-change-conflict": answer("C", 409, refusal("conflict", "changed")),
    "buddy-change-not-found": answer("C", 404, refusal("not-found", "no such buddy")),
    "buddy-change-unknown-user": answer("C", 404, refusal("unknown-user", "who?")),
    "register-exists": answer("U", 409, refusal("user-exists", "taken")),
    "register-bad-name": answer("U", 400, refusal("bad-name", "bad")),
    "register-weak": answer("U", 400, refusal("weak-password", "short")),
    "devices": answer("D", 200, {"devices": [
        {"name": "laptop", "id": "ab" * 32, "first_seen": "2029-12-01", "revoked": False}]}),
    "device-remove": answer("X", 200, {"removed": {"name": "laptop", "id": "ab" * 32}}),
    "server-error-other-code": answer("D", 500, refusal("overloaded", "try later")),
    "error-in-success": answer("D", 200, refusal("conflict", "a 200 that refuses")),
    "html-502": answer("D", 502, "<html>bad gateway</html>"),
    "empty-body": answer("N", 200, ""),
    "escaped-strings": answer("B", 200,
                              '{"revision": 1, "buddies": [{"name": "a\\u0000b", "alias": '
                              '"\\ud800\\n\\u001b[31m"}]}'),
}

CTLLINE = {
    "call": '{"id": 1, "command": "call", "args": {"name": "bob", "seconds": 30, "video": true}}\n',
    "call-string-id-crlf": '{"id": "a1", "command": "call", "args": {"name": "bob"}}\r\n',
    "call-missing-name": '{"id": 2.5, "command": "call", "args": {"video": false}}\n',
    "call-wrong-types": '{"command": "call", "args": {"name": 3, "seconds": "30", "video": 1}}\n',
    "call-unknown-arg": '{"command": "call", "args": {"name": "bob", "colour": "red"}}\n',
    "status-no-args": '{"command": "status"}',
    "status-with-args": '{"command": "status", "args": {"x": null}}\n',
    "several-lines": '\n   \n{"command": "status"}\n[1]\n"text"\n{"command": "call", "args": {"name": "a"}}',
    "bad-id": '{"id": {"nested": true}, "command": "status"}\n',
    "bad-id-array": '{"id": [1], "command": "status"}\n',
    "no-command": '{"id": 7, "args": {}}\n',
    "command-not-string": '{"id": 7, "command": 12}\n',
    "args-not-object": '{"command": "call", "args": ["bob"]}\n',
    "not-json": '{"command": "call", \n',
    "not-utf8": b'{"command": "call", "args": {"name": "\xff\xfe"}}\n',
    "escapes": '{"id": "\\u0000\\ud800", "command": "sta\\u0000tus", "args": {"name": "\\udfff"}}\n',
    "surrogate-id": '{"id": "\\ud800", "command": "status"}\n',
    "surrogate-arg": '{"command": "call", "args": {"name": "\\udbff\\u0041"}}\n',
    "surrogate-pair": '{"command": "call", "args": {"name": "\\ud83d\\ude00"}}\n',
    "two-objects": '{"command": "status"} {"command": "call"}\n',
    "repeated-member": '{"command": "status", "command": "call", "args": {"name": "x"}}\n',
}

def socks(chunk, *parts):
    """'S' SIZE BYTES (fuzz-tunnel.c)."""
    return b"S" + bytes([chunk]) + b"".join(parts)


GREETING = bytes([5, 1, 0])
NAME = b"login.example"
TUNNEL = {
    "socks-name": socks(0, GREETING, bytes([5, 1, 0, 3, len(NAME)]), NAME, bytes([1, 187])),
    "socks-name-bytewise": socks(1, GREETING, bytes([5, 1, 0, 3, len(NAME)]), NAME, bytes([1, 187])),
    "socks-ipv4": socks(3, bytes([5, 2, 2, 0]), bytes([5, 1, 0, 1, 127, 0, 0, 1, 0x20, 0xfb])),
    "socks-ipv6": socks(7, GREETING, bytes([5, 1, 0, 4]) + bytes(15) + b"\x01" + bytes([0, 80])),
    "socks-only-password": socks(0, bytes([5, 1, 2])),
    "socks-version-4": socks(0, bytes([4, 1, 0])),
    "socks-bind": socks(0, GREETING, bytes([5, 2, 0, 1, 10, 0, 0, 1, 0, 80])),
    "socks-empty-name": socks(0, GREETING, bytes([5, 1, 0, 3, 0, 0, 80])),
    "socks-long-name": socks(0, GREETING, bytes([5, 1, 0, 3, 255]) + b"a" * 255 + bytes([1, 187])),
    "socks-name-controls": socks(2, GREETING, bytes([5, 1, 0, 3, 8]) + b"a\x00b\n\x1b[\xff\xfe" + bytes([0, 1])),
    "socks-all-methods": socks(0, bytes([5, 255]) + bytes(range(255)), bytes([5, 1, 0, 1, 1, 2, 3, 4, 0, 1])),
    "socks-incomplete": socks(0, GREETING, bytes([5, 1, 0, 4, 0, 0])),
    "open-own-server": b"Ohttps://login.example/\nLOGIN.example\n443",
    "open-port": b"Ohttps://login.example:8443/v1\nlogin.example\n8443",
    "open-other-host": b"Ohttps://login.example/\nevil.example\n443",
    "open-no-host": b"Ofile:///etc/passwd\n\n443",
    "open-ipv6": b"Ohttps://[2001:db8::1]:444/\n2001:db8::1\n444",
    "close-reason": b"Cthe login server closed the connection",
    "close-reason-controls": b"Cline\nforged: \x1b[31m\xe2\x80\xae\xc2\x85\xff\\",
}

NAT = {"verdict": "nat", "mapping": "endpoint-independent",
       "filtering": "address-and-port-dependent", "mapped": "203.0.113.7:40000",
       "server": "sn1.example:4433", "other": "198.51.100.2:3479", "duration_ms": 812,
       "probed_at": 1893456000, "plugin": "natprobe-stun", "version": 1}


def state(kind, value):
    """'J' or 'N', then the file (fuzz-statefile.c)."""
    return kind.encode() + (value if isinstance(value, bytes) else json.dumps(value).encode())


STATEFILE = {
    "join-udp": state("J", {"transport": "udp", "host": "sn1.example", "port": 4433,
                            "udp_answered": True}),
    "join-tls443-old": state("J", {"transport": "tls443", "host": "192.0.2.1", "port": 443}),
    "join-unknown-transport": state("J", {"transport": "carrier-pigeon", "host": "a", "port": 1}),
    "join-bad-host": state("J", {"transport": "tcp", "host": "a b\n", "port": 4433}),
    "join-port-zero": state("J", {"transport": "tcp", "host": "sn.example", "port": 0}),
    "join-port-large": state("J", {"transport": "tcp", "host": "sn.example", "port": 65536}),
    "join-wrong-types": state("J", {"transport": ["udp"], "host": {"a": 1}, "port": "4433",
                                    "udp_answered": "yes"}),
    "join-array": state("J", [1, 2]),
    "join-not-utf8": b'J{"transport": "udp", "host": "\xff", "port": 1}',
    "nat": state("N", NAT),
    "nat-open": state("N", dict(NAT, verdict="open", mapping="unknown", mapped=None, other=None)),
    "nat-blocked-no-addresses": state("N", {k: v for k, v in dict(NAT, verdict="udp-blocked").items()
                                            if k not in ("mapped", "server", "other")}),
    "nat-bad-verdict": state("N", dict(NAT, verdict="maybe")),
    "nat-long-address": state("N", dict(NAT, mapped="1" * 60 + ":12345")),
    "nat-address-no-port": state("N", dict(NAT, server="sn1.example")),
    "nat-probed-at-string": state("N", dict(NAT, probed_at="2030")),
    "nat-plugin-missing": state("N", {k: v for k, v in NAT.items() if k != "plugin"}),
    "nat-wrong-types": state("N", dict(NAT, mapping=3, mapped=["a:1"], plugin={"a": "b"})),
    "nat-truncated": state("N", NAT)[:60],
}

SEEDS = {
    "loginanswer": LOGINANSWER,
    "ctlline": CTLLINE,
    "tunnel": TUNNEL,
    "statefile": STATEFILE,
}


def main():
    for target, seeds in SEEDS.items():
        directory = os.path.join(HERE, "corpus", target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())


if __name__ == "__main__":
    main()
