#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""mouth-to-ear.py RECORDING.wav [--max-delay S]: the delay between the two channels of one recording made
on one clock (left: the signal played into the caller's microphone; right: what came out
of the callee's speaker), as the paper measured it: the cross-correlation peak over 2 s
windows. Prints JSON: every window's delay and correlation, and the median and spread of
the windows where speech was found on both sides (peak correlation >= 0.5); and how well
the speech came through (bench/speech_quality.py): STOI and the mel-cepstral distortion of
the right channel against the left over all the windows with speech in, each shifted by its
own delay (or by the median where the correlation was too weak to give one). Where no
window correlates (speech so damaged that no delay can be read from 2 s of it, as over a
link narrower than the codec's rate), the scores are still given, every window shifted by
the peak of one cross-correlation of the whole recording ("whole_delay_ms", "whole_r"),
and no mouth-to-ear delay. --max-delay: the longest delay searched (0.6 s; a shaped link's
queue can hold more)."""
import json
import sys
import wave

import numpy as np

import speech_quality

WINDOW_S = 2.0
MAX_DELAY_S = 0.6   # baresip's defaults reach 160 ms; room for much worse
MIN_R = 0.5


def read(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 2, "expected 16-bit stereo"
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    return rate, data[0::2], data[1::2]


def quality(rate, left, right, windows, w, median_s):
    """STOI and mel-cepstral distortion of what came out against what went in."""
    spans = [(int(round(x["at_s"] * rate)), w, x["delay_ms"] / 1000 if x["r"] >= MIN_R else None)
             for x in windows]
    ref, out = speech_quality.aligned_windows(left, right, rate, spans, median_s)
    try:
        return {"stoi": round(speech_quality.stoi(ref, out, rate), 4),
                "mcd_db": round(speech_quality.mel_cepstral_distortion(ref, out, rate), 3)}
    except ValueError as e:   # too little speech to score
        return {"quality_error": str(e)}


def main():
    args = sys.argv[1:]
    max_delay_s = MAX_DELAY_S
    if len(args) == 3 and args[1] == "--max-delay":
        max_delay_s = float(args[2])
    elif len(args) != 1:
        sys.exit("usage: mouth-to-ear.py RECORDING.wav [--max-delay S]")
    rate, left, right = read(args[0])
    w = int(WINDOW_S * rate)
    extra = int(max_delay_s * rate)
    windows = []
    for start in range(0, len(left) - w - extra, w):
        ref = left[start: start + w]
        if np.sqrt(np.mean(ref * ref)) < 100:   # silence in: nothing to find
            continue
        delay, r = speech_quality.delay(ref, right[start: start + w + extra], rate)
        windows.append({"at_s": round(start / rate, 2), "delay_ms": round(delay * 1000, 2), "r": round(r, 3)})
    good = [x["delay_ms"] for x in windows if x["r"] >= MIN_R]
    result = {"windows": windows, "good_windows": len(good)}
    if good:
        result.update(median_ms=float(np.median(good)), p25_ms=float(np.percentile(good, 25)),
                      p75_ms=float(np.percentile(good, 75)), min_ms=min(good), max_ms=max(good))
        result.update(quality(rate, left, right, windows, w, result["median_ms"] / 1000))
    elif windows:
        whole, r = speech_quality.delay(left[: len(left) - extra], right, rate)
        result.update(whole_delay_ms=round(whole * 1000, 2), whole_r=round(r, 3))
        result.update(quality(rate, left, right, windows, w, whole))
    print(json.dumps(result))


main()
