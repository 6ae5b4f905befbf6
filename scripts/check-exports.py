#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-exports.py BUILD_DIR: libhark exports its public API and nothing else.

libhark and its layer libraries are compiled with -fvisibility=hidden; a function is
exported only when its declaration in core/include/hark/ carries HARK_API
(core/include/hark/export.h, docs/architecture.md "Layers"). This checks:

1. every dynamic symbol libhark.so defines (nm -D) is a function a public header
   declares with HARK_API: a private function exported by mistake (a HARK_API on its
   definition, a visibility attribute, a layer built without the flag) fails;
2. every HARK_API function is exported: a plugin calling it would not load otherwise;
3. every function a public header declares carries HARK_API;
4. in each layer's static library, every global function or variable that is not
   HARK_API is hidden: the flag reaches every layer, not only the shared library.

Prints one line per breach and a TAP summary; exits 1 when there is any.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PUBLIC = os.path.join(ROOT, "core", "include", "hark")
LAYERS = ["base", "registry", "link", "login", "overlay", "media", "node"]
# What the linker itself puts in every shared object's dynamic symbol table.
LINKER_SYMBOLS = {"__bss_start", "_edata", "_end", "_init", "_fini"}

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
# Preprocessor lines (with their continuations), GLib's declaration brackets and its
# macros that define things without a semicolon (G_DEFINE_AUTOPTR_CLEANUP_FUNC).
PREPROCESSOR = re.compile(r"^\s*#(?:[^\n]*\\\n)*[^\n]*$", re.M)
MACRO_LINE = re.compile(r"^\s*G_[A-Z_]+(?:\([^;]*?\))?\s*$", re.M)
NAME = re.compile(r"([A-Za-z_]\w*)\s*\($")


def declarations():
    """(name, marked, header) of every function declared at the top level of a public
    header; marked: whether it carries HARK_API."""
    for entry in sorted(os.listdir(PUBLIC)):
        if not entry.endswith(".h"):
            continue
        with open(os.path.join(PUBLIC, entry), encoding="utf-8") as f:
            text = f.read()
        text = MACRO_LINE.sub("", PREPROCESSOR.sub("", COMMENT.sub(" ", text)))
        depth, start = 0, 0
        for i, char in enumerate(text):
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            elif char == ";" and depth == 0:
                decl = " ".join(text[start:i].split())
                start = i + 1
                if "(" not in decl or decl.startswith(("typedef", "struct", "enum", "union")):
                    continue
                head = decl[:decl.index("(") + 1]
                if "{" in decl or "=" in head:
                    continue  # a type or an initialised variable, not a prototype
                match = NAME.search(head)
                if match:
                    yield match.group(1), decl.startswith("HARK_API "), "hark/" + entry


def exported(build):
    lib = os.path.join(build, "core", "libhark.so")
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                         text=True, check=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}


def layer_symbols(build, layer):
    """(object, name) of every global symbol with default visibility a layer defines."""
    lib = os.path.join(build, "core", f"libhark-{layer}.a")
    out = subprocess.run(["readelf", "-sW", lib], capture_output=True, text=True,
                         check=True)
    obj = None
    for line in out.stdout.splitlines():
        if line.startswith("File: "):
            # File: build/core/libhark-base.a[libhark-base.a.p/base_wire.c.o]
            obj = os.path.basename(line.rstrip("])").rpartition("[")[2].rpartition("(")[2])
            continue
        # Num: Value Size Type Bind Vis Ndx Name
        parts = line.split()
        if (len(parts) == 8 and parts[4] in ("GLOBAL", "WEAK") and parts[5] == "DEFAULT"
                and parts[6] != "UND" and parts[3] in ("FUNC", "OBJECT")):
            yield obj, parts[7]


def main():
    if len(sys.argv) != 2:
        print("usage: check-exports.py BUILD_DIR", file=sys.stderr)
        return 2
    build = sys.argv[1]
    decls = list(declarations())
    marked = {name for name, is_marked, _ in decls if is_marked}
    symbols = exported(build)
    checks = [
        ("libhark exports only functions declared with HARK_API",
         [f"{name}: exported by libhark.so but no public header declares it with HARK_API"
          for name in sorted(symbols - marked - LINKER_SYMBOLS)]),
        ("every HARK_API function is exported",
         [f"{name}: declared with HARK_API but not exported by libhark.so"
          for name in sorted(marked - symbols)]),
        ("every public function carries HARK_API",
         [f"{header}: {name} is declared without HARK_API"
          for name, is_marked, header in decls if not is_marked]),
        ("the layer libraries are built with hidden visibility",
         [f"libhark-{layer}.a({obj}): {name} is visible but not HARK_API"
          for layer in LAYERS for obj, name in layer_symbols(build, layer)
          if name not in marked]),
    ]
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
