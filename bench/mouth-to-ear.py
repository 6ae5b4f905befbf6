#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""mouth-to-ear.py RECORDING.wav [--max-delay S] [--realign S]: the delay between the two channels of one recording made
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
queue can hold more). --realign S: before scoring, each window is cut into parts of S
seconds, each shifted by its own delay within 100 ms of the window's, so that a delay that
moves inside a window (a jitter buffer growing, a receiver stretching its playback) is not
scored as lost speech; the mouth-to-ear figures are the windows' either way."""
import json
import sys
import wave

import numpy as np

import speech_quality

WINDOW_S = 2.0
MAX_DELAY_S = 0.6   # baresip's defaults reach 160 ms; room for much worse
MIN_R = 0.5
SEARCH_S = 0.1      # --realign: how far a part's delay may stray from its window's
PART_MIN_R = 0.3


def read(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 2, "expected 16-bit stereo"
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    return rate, data[0::2], data[1::2]


def realigned(rate, left, right, spans, fallback_s, part_s):
    """spans cut into parts of part_s, each shifted by its own delay, searched within
    SEARCH_S of its window's (a receiver that grows or shrinks its buffer moves the delay
    inside a 2 s window; STOI compares frames in place, so it would count that move as
    damage). A part with no clear peak (r < PART_MIN_R), or silent, keeps its window's delay."""
    part, search = int(part_s * rate), int(SEARCH_S * rate)
    out = []
    for start, length, lag_s in spans:
        lag = int(round((fallback_s if lag_s is None else lag_s) * rate))
        for s in range(start, start + length - part + 1, part):
            ref = left[s: s + part]
            lo = s + lag - search
            if lo < 0 or s + lag + part + search > len(right) or np.sqrt(np.mean(ref * ref)) < 100:
                out.append((s, part, lag / rate))
                continue
            d, r = speech_quality.delay(ref, right[lo: s + lag + part + search], rate)
            out.append((s, part, (lo - s) / rate + d if r >= PART_MIN_R else lag / rate))
    return out


def quality(rate, left, right, windows, w, median_s, part_s=None):
    """STOI and mel-cepstral distortion of what came out against what went in."""
    spans = [(int(round(x["at_s"] * rate)), w, x["delay_ms"] / 1000 if x["r"] >= MIN_R else None)
             for x in windows]
    if part_s:
        spans = realigned(rate, left, right, spans, median_s, part_s)
    ref, out = speech_quality.aligned_windows(left, right, rate, spans, median_s)
    try:
        return {"stoi": round(speech_quality.stoi(ref, out, rate), 4),
                "mcd_db": round(speech_quality.mel_cepstral_distortion(ref, out, rate), 3)}
    except ValueError as e:   # too little speech to score
        return {"quality_error": str(e)}


def main():
    args = sys.argv[1:]
    options = {"--max-delay": MAX_DELAY_S, "--realign": None}
    while len(args) >= 3 and args[-2] in options:
        options[args[-2]] = float(args[-1])
        del args[-2:]
    if len(args) != 1:
        sys.exit("usage: mouth-to-ear.py RECORDING.wav [--max-delay S] [--realign S]")
    max_delay_s, part_s = options["--max-delay"], options["--realign"]
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
        result.update(quality(rate, left, right, windows, w, result["median_ms"] / 1000, part_s))
    elif windows:
        whole, r = speech_quality.delay(left[: len(left) - extra], right, rate)
        result.update(whole_delay_ms=round(whole * 1000, 2), whole_r=round(r, 3))
        result.update(quality(rate, left, right, windows, w, whole, part_s))
    print(json.dumps(result))


main()
