#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-layers.py [BUILD_DIR]: the layers of core/ only use what is below them.

Every #include "..." in core/<layer>/ and core/include/hark/ must name a header of the
same layer or of one below it (docs/architecture.md, "Layers"). The compiler already
refuses a private header of a higher layer (each layer's include path stops at its own
folder), but not a public header (core/include/hark/ is on every path) nor a header
meson does not compile: this checks them all.

Given BUILD_DIR, it also reads the symbols of each layer's static library (nm) and
fails on any call of a hark_* function that a higher layer defines: a call that went
up although no header of that layer was included (a declaration of its own, say).

Prints one line per breach and a TAP summary; exits 1 when there is any.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CORE = os.path.join(ROOT, "core")

# Bottom up. `program` (the hark executable) may use every layer.
LAYERS = ["base", "registry", "control", "link", "login", "relay", "overlay", "directory", "message", "media", "call",
          "conference", "node", "program"]

# The public headers, by the layer that implements them (or, for plugin interfaces,
# the lowest layer whose types they use).
PUBLIC = {
    "base": ["address", "certificate", "clock", "codec", "config", "export", "hostcache",
             "identity", "media-spec", "plugin", "presence", "settings", "store", "stun", "version",
             "wire"],
    "registry": ["command", "context", "frontend", "natprobe", "search"],
    "control": ["control"],
    "link": ["link", "transport"],
    "media": ["media"],
    "conference": ["conference"],
    "node": ["hark", "node"],
}
PUBLIC_LAYER = {f"hark/{name}.h": layer for layer, names in PUBLIC.items() for name in names}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def rank(layer):
    return LAYERS.index(layer)


def private_headers():
    """name -> layer, for every header in a layer folder."""
    found = {}
    for layer in LAYERS:
        folder = os.path.join(CORE, layer)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name.endswith(".h"):
                found[name] = layer
    return found


def sources():
    """(path, layer) of every C file and header of core/."""
    for layer in LAYERS:
        folder = os.path.join(CORE, layer)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.endswith((".c", ".h")):
                    yield os.path.join(folder, name), layer
    public = os.path.join(CORE, "include", "hark")
    for name in sorted(os.listdir(public)):
        if name.endswith(".h") or name.endswith(".h.in"):
            header = "hark/" + name.replace(".h.in", ".h")
            if header not in PUBLIC_LAYER:
                yield os.path.join(public, name), None
            else:
                yield os.path.join(public, name), PUBLIC_LAYER[header]


def check_includes():
    private = private_headers()
    breaches = []
    for path, layer in sources():
        rel = os.path.relpath(path, ROOT)
        if layer is None:
            breaches.append(f"{rel}: public header not placed in a layer (add it to PUBLIC)")
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for included in INCLUDE.findall(text):
            if included in PUBLIC_LAYER:
                target = PUBLIC_LAYER[included]
            elif included in private:
                target = private[included]
            else:
                continue  # a header of the build (version.h's template) or of a test
            if rank(target) > rank(layer):
                breaches.append(f"{rel} ({layer}) includes {included} ({target})")
    return breaches


def check_calls(build):
    defined = {}    # symbol -> layer
    undefined = []  # (layer, object, symbol)
    for layer in LAYERS[:-1]:
        folder = os.path.join(CORE, layer)
        if not os.path.isdir(folder) or not any(f.endswith(".c") for f in os.listdir(folder)):
            continue  # a layer named in the order whose first file has not landed yet
        lib = os.path.join(build, "core", f"libhark-{layer}.a")
        if not os.path.exists(lib):
            return [f"{lib}: missing (build first)"]
        out = subprocess.run(["nm", "-A", lib], capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            # libhark-base.a:wire.c.o:0000000000000000 T hark_wire_encode
            where, _, rest = line.rpartition(":")
            parts = rest.split()
            if len(parts) == 3 and parts[1] in "TDBR" and parts[2].startswith("hark_"):
                defined[parts[2]] = layer
            elif len(parts) == 2 and parts[0] == "U" and parts[1].startswith("hark_"):
                undefined.append((layer, where.rpartition(":")[2], parts[1]))
    breaches = []
    for layer, obj, symbol in undefined:
        target = defined.get(symbol)
        if target is not None and rank(target) > rank(layer):
            breaches.append(f"core/{layer}/{obj.removesuffix('.o')} ({layer}) calls {symbol} "
                            f"({target})")
    return breaches


def main():
    checks = [("every #include goes down", check_includes())]
    if len(sys.argv) > 1:
        checks.append(("every call goes down", check_calls(sys.argv[1])))
    print(f"1..{len(checks)}")
    failed = 0
    for i, (name, breaches) in enumerate(checks, 1):
        for breach in breaches:
            print(f"# {breach}")
        print(f"{'not ok' if breaches else 'ok'} {i} - {name}")
        failed += bool(breaches)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
