#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The codec's share of speech quality under random loss: bench/opus-loss (libopus alone,
no network or sound card) over a grid of settings and loss rates, each scored with
bench/speech_quality.py (STOI, mel-cepstral distortion) against the speech that went in,
the median over seeds (each seed loses other packets; every setting loses the same ones).

  opus-loss-sweep.py BUILD_DIR [--seeds N] [--seconds S] [--drops 0,5,10,20] CONFIG ...

CONFIG is a label and opus-loss settings, e.g. "hark20:bitrate=20000" or
"fec20:bitrate=20000,fec=1,loss_hint=10". The speech is the media benchmark's (espeak-ng,
the Harvard sentences, 48 kHz mono)."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import speech_quality as sq  # noqa: E402

TEXT = ("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
        "It is easy to tell the depth of a well. These days a chicken leg is a rare dish. "
        "Rice is often served in round bowls. The juice of lemons makes fine punch.")
RATE = 48000


def make_speech(work, seconds):
    one, raw = os.path.join(work, "one.wav"), os.path.join(work, "speech.raw")
    subprocess.run(["espeak-ng", "-w", one, TEXT], check=True)
    subprocess.run(["sox", one, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw",
                    raw, "repeat", "9", "trim", "0", str(seconds)], check=True)
    return raw


def run(tool, raw, work, settings):
    out = os.path.join(work, "out.raw")
    line = subprocess.run([tool, raw, out] + settings, check=True, capture_output=True,
                          text=True).stdout.split()
    stats = dict(zip(line[::2], (float(v) for v in line[1::2])))
    clean = np.fromfile(raw, dtype="<i2").astype(np.float64)
    got = np.fromfile(out, dtype="<i2").astype(np.float64)
    return sq.score(clean, got, RATE, max_delay_s=0.05), stats


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--drops", default="0,5,10,20")
    p.add_argument("configs", nargs="+")
    a = p.parse_args()
    tool = os.path.join(a.build, "bench", "opus-loss")
    with tempfile.TemporaryDirectory() as work:
        raw = make_speech(work, a.seconds)
        print("| setting | loss % | STOI | MCD, dB | payload bytes/s | encoder CPU, % of a core |")
        print("|---|---|---|---|---|---|")
        for config in a.configs:
            label, _, rest = config.partition(":")
            base = [kv for kv in rest.split(",") if kv]
            for drop in a.drops.split(","):
                scores, rates, cpu = [], [], []
                for seed in range(1, a.seeds + 1):
                    s, stats = run(tool, raw, work, base + [f"drop={drop}", f"seed={seed}"])
                    scores.append((s["stoi"], s["mcd_db"]))
                    rates.append(stats["payload_bytes_per_s"])
                    cpu.append(stats["encode_cpu_percent"])
                st, mcd = np.median(scores, axis=0)
                print(f"| {label} | {drop} | {st:.3f} | {mcd:.2f} | {np.median(rates):.0f} "
                      f"| {np.median(cpu):.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
