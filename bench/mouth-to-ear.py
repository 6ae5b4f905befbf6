#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""mouth-to-ear.py RECORDING.wav: the delay between the two channels of one recording made
on one clock (left: the signal played into the caller's microphone; right: what came out
of the callee's speaker), as the paper measured it: the cross-correlation peak over 2 s
windows. Prints JSON: every window's delay and correlation, and the median and spread of
the windows where speech was found on both sides (peak correlation >= 0.5)."""
import json
import sys
import wave

import numpy as np

WINDOW_S = 2.0
MAX_DELAY_S = 0.6   # baresip's defaults reach 160 ms; room for much worse
MIN_R = 0.5


def read(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 2, "expected 16-bit stereo"
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    return rate, data[0::2], data[1::2]


def window_delay(ref, out, rate):
    """Lag (s) of out behind ref with the highest normalised correlation, and that r."""
    n = len(ref)
    size = 1 << int(np.ceil(np.log2(n + len(out))))
    corr = np.fft.irfft(np.fft.rfft(out, size) * np.conj(np.fft.rfft(ref, size)), size)
    max_lag = len(out) - n
    lags = corr[: max_lag + 1]
    # Normalise by the energy of each candidate segment of out.
    energy = np.cumsum(np.concatenate(([0.0], out * out)))
    seg = energy[n: n + max_lag + 1] - energy[: max_lag + 1]
    denom = np.sqrt(np.maximum(seg, 1e-9) * np.dot(ref, ref))
    r = lags / denom
    best = int(np.argmax(r))
    return best / rate, float(r[best])


def main():
    rate, left, right = read(sys.argv[1])
    w = int(WINDOW_S * rate)
    extra = int(MAX_DELAY_S * rate)
    windows = []
    for start in range(0, len(left) - w - extra, w):
        ref = left[start: start + w]
        if np.sqrt(np.mean(ref * ref)) < 100:   # silence in: nothing to find
            continue
        delay, r = window_delay(ref, right[start: start + w + extra], rate)
        windows.append({"at_s": round(start / rate, 2), "delay_ms": round(delay * 1000, 2), "r": round(r, 3)})
    good = [x["delay_ms"] for x in windows if x["r"] >= MIN_R]
    result = {"windows": windows, "good_windows": len(good)}
    if good:
        result.update(median_ms=float(np.median(good)), p25_ms=float(np.percentile(good, 25)),
                      p75_ms=float(np.percentile(good, 75)), min_ms=min(good), max_ms=max(good))
    print(json.dumps(result))


main()
