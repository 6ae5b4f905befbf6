#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# make-webauth-seeds.py: the seeds of fuzz-webauth (corpus/webauth): Cookie headers with a
# session cookie that fuzz-webauth.c's secret (bytes 0..31) issued a day before its time,
# the same with a changed MAC, with other cookies around it, twice, and odd shapes.
import hashlib
import hmac
import os

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus", "webauth")
os.makedirs(out, exist_ok=True)
secret = bytes(range(32))
issued = 1800000000 - 86400
body = f"v1.{issued}.00112233445566778899aabbccddeeff"
mac = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
good = f"{body}.{mac}"
bad_mac = good[:-1] + ("0" if good[-1] != "0" else "1")
seeds = {
    "good": f"hark_session={good}",
    "good-among-others": f"a=b; hark_session={good} ; theme=dark",
    "bad-mac": f"hark_session={bad_mac}",
    "twice": f"hark_session={good}; hark_session={good}",
    "value-alone": good,
    "empty-value": "hark_session=",
    "no-equals": "hark_session; x",
    "token": "0" * 64,
    "future": f"hark_session=v1.999999999999.{'0' * 32}.{'0' * 64}",
}
for name, text in seeds.items():
    with open(os.path.join(out, name), "w") as f:
        f.write(text)
