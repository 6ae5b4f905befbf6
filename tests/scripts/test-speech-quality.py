#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-speech-quality.py: the media benchmark's speech scores (bench/speech_quality.py)
behave as their papers say. The speech is made, not recorded (sq.synthetic_speech: a
voice whose pitch glides, its harmonics shaped by formants that move, in syllables with
pauses between words, and hiss for fricatives). Debian's python3 with numpy and scipy (deps/debian.txt).
TAP output."""
import json
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

BENCH = os.path.join(os.environ.get("HARK_SOURCE_ROOT", os.path.dirname(__file__) + "/../.."), "bench")
sys.path.insert(0, BENCH)
import speech_quality as sq  # noqa: E402

RATE = 16000
SECONDS = 6
SNRS_DB = (20, 10, 5, 0, -5)
cases = []


def case(function):
    cases.append(function)
    return function


def speech(seed=1):
    """Speech-like sound (sq.synthetic_speech), SECONDS long at RATE."""
    return sq.synthetic_speech(RATE, SECONDS, seed)


def note(text):
    print(f"# {text}")


CLEAN = speech()


@case
def identical():
    """identical signals: STOI 1 and distortion 0"""
    s = sq.stoi(CLEAN, CLEAN, RATE)
    d = sq.mel_cepstral_distortion(CLEAN, CLEAN, RATE)
    note(f"STOI {s:.8f}, MCD {d:.6f} dB")
    return abs(s - 1) <= 1e-6 and abs(d) <= 1e-9


@case
def level_independent():
    """a copy at another level (-20 dB) still scores STOI 1 and distortion 0"""
    s = sq.stoi(CLEAN, 0.1 * CLEAN, RATE)
    d = sq.mel_cepstral_distortion(CLEAN, 0.1 * CLEAN, RATE)
    note(f"STOI {s:.8f}, MCD {d:.6f} dB")
    return abs(s - 1) <= 1e-6 and abs(d) <= 1e-6


@case
def noise_lowers_scores():
    """in white noise, STOI falls and the distortion grows as the SNR falls; STOI < 0.8 at -5 dB"""
    stois = [sq.stoi(CLEAN, sq.white_noise(CLEAN, snr), RATE) for snr in SNRS_DB]
    mcds = [sq.mel_cepstral_distortion(CLEAN, sq.white_noise(CLEAN, snr), RATE) for snr in SNRS_DB]
    for snr, s, d in zip(SNRS_DB, stois, mcds):
        note(f"SNR {snr:+3d} dB: STOI {s:.4f}, MCD {d:.2f} dB")
    return (all(a > b for a, b in zip(stois, stois[1:])) and
            all(a < b for a, b in zip(mcds, mcds[1:])) and stois[-1] < 0.8 and stois[0] < 1)


@case
def pauses_do_not_count():
    """noise as loud as the speech but only in its pauses barely moves the scores (silent frames are dropped)"""
    # The pauses, 40 ms in from each side (STOI's frames are 25.6 ms long).
    quiet = np.convolve(CLEAN == 0, np.ones(int(0.08 * RATE)), mode="same") >= int(0.08 * RATE)
    noise = np.random.default_rng(3).standard_normal(len(CLEAN)) * np.sqrt(np.mean(CLEAN * CLEAN))
    degraded = CLEAN + quiet * noise
    s, d = sq.stoi(CLEAN, degraded, RATE), sq.mel_cepstral_distortion(CLEAN, degraded, RATE)
    everywhere = sq.stoi(CLEAN, sq.white_noise(CLEAN, 0), RATE)
    note(f"{np.mean(quiet) * 100:.0f} % of the time in pauses; STOI {s:.4f} (the same noise everywhere:"
         f" {everywhere:.4f}), MCD {d:.3f} dB")
    return s >= 0.99 and d <= 1.0 and np.mean(quiet) > 0.1


@case
def delay_aligned_away():
    """a delay (123.4 ms) found by the cross-correlation and removed leaves both scores as they were"""
    degraded = sq.white_noise(CLEAN, 5)
    lag = int(0.1234 * RATE)
    extra = int(0.6 * RATE)
    late = np.concatenate((np.zeros(lag), degraded, np.zeros(extra)))
    found_s, r = sq.delay(CLEAN, late[: len(CLEAN) + extra], RATE)
    ref, out = sq.aligned_windows(CLEAN, late, RATE, [(0, len(CLEAN), found_s)], 0)
    s0, s1 = sq.stoi(CLEAN, degraded, RATE), sq.stoi(ref, out, RATE)
    d0, d1 = sq.mel_cepstral_distortion(CLEAN, degraded, RATE), sq.mel_cepstral_distortion(ref, out, RATE)
    unaligned = sq.stoi(CLEAN, late[: len(CLEAN)], RATE)
    note(f"found {found_s * 1000:.2f} ms (r {r:.3f}); STOI {s0:.4f} -> {s1:.4f} "
         f"(not aligned: {unaligned:.4f}); MCD {d0:.3f} -> {d1:.3f} dB")
    return (round(found_s * RATE) == lag and abs(s1 - s0) <= 0.01 and abs(d1 - d0) <= 0.01
            and unaligned < s0 - 0.1)


@case
def windows_aligned_each():
    """windows delayed by different amounts (a jitter buffer that grew) are each aligned"""
    degraded = sq.white_noise(CLEAN, 10)
    half = len(CLEAN) // 2
    # The second half comes out 40 ms later than the first.
    late = np.concatenate((np.zeros(800), degraded[:half], np.zeros(640), degraded[half:], np.zeros(RATE)))
    each = sq.aligned_windows(CLEAN, late, RATE, [(0, half, 0.05), (half, half, 0.09)], 0.05)
    # Windows without a delay of their own take the fallback: the second half is then off.
    fallback = sq.aligned_windows(CLEAN, late, RATE, [(0, half, None), (half, half, None)], 0.05)
    s = sq.stoi(CLEAN, degraded, RATE)
    s_each, s_fallback = sq.stoi(*each, RATE), sq.stoi(*fallback, RATE)
    note(f"STOI {s:.4f}; each window aligned {s_each:.4f}; one delay for both {s_fallback:.4f}")
    return abs(s - s_each) <= 0.01 and s_fallback < s - 0.05


@case
def narrowband_below_wideband():
    """a 300-3400 Hz copy scores below the full-band one (STOI lower, distortion higher)"""
    full = sq.white_noise(CLEAN, 20)
    narrow = sq.band_limit(full, RATE, 300, 3400)
    s_full, s_narrow = sq.stoi(CLEAN, full, RATE), sq.stoi(CLEAN, narrow, RATE)
    d_full = sq.mel_cepstral_distortion(CLEAN, full, RATE)
    d_narrow = sq.mel_cepstral_distortion(CLEAN, narrow, RATE)
    note(f"full band: STOI {s_full:.4f}, MCD {d_full:.2f} dB; 300-3400 Hz: STOI {s_narrow:.4f}, "
         f"MCD {d_narrow:.2f} dB")
    return s_narrow < s_full and d_narrow > d_full


@case
def any_rate():
    """the scores are the same (STOI 0.01, distortion 2 %) whether the pair comes at 16 or 48 kHz"""
    degraded = sq.white_noise(CLEAN, 5)
    up = lambda x: sq.resample(x, RATE, 48000)
    s16, s48 = sq.stoi(CLEAN, degraded, RATE), sq.stoi(up(CLEAN), up(degraded), 48000)
    d16 = sq.mel_cepstral_distortion(CLEAN, degraded, RATE)
    d48 = sq.mel_cepstral_distortion(up(CLEAN), up(degraded), 48000)
    note(f"16 kHz: STOI {s16:.4f}, MCD {d16:.3f}; 48 kHz: STOI {s48:.4f}, MCD {d48:.3f}")
    # The MCD moves a little: the resampling filters cut the top of the noise near 8 kHz.
    return abs(s16 - s48) <= 0.01 and abs(d16 - d48) <= 0.02 * d16


@case
def recording_scored():
    """bench/mouth-to-ear.py scores a recording (right: left 123 ms late, in noise) as the module does"""
    lag = int(0.123 * RATE)
    heard = np.concatenate((np.zeros(lag), sq.white_noise(CLEAN, 10)))[: len(CLEAN)]
    scaled = lambda x: np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "call.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(np.column_stack((scaled(CLEAN), scaled(heard))).tobytes())
        result = json.loads(subprocess.run([sys.executable, os.path.join(BENCH, "mouth-to-ear.py"), path],
                                           check=True, capture_output=True, text=True).stdout)
    # The same windows by hand: 2 s each while 2.6 s of recording remain.
    starts = range(0, len(CLEAN) - int(2.6 * RATE), 2 * RATE)
    ref, out = sq.aligned_windows(CLEAN, heard, RATE, [(s, 2 * RATE, 0.123) for s in starts], 0.123)
    s, d = sq.stoi(ref, out, RATE), sq.mel_cepstral_distortion(ref, out, RATE)
    note(f"mouth-to-ear.py: {result.get('median_ms')} ms, STOI {result.get('stoi')}, MCD {result.get('mcd_db')} dB;"
         f" by hand: STOI {s:.4f}, MCD {d:.3f} dB")
    return (result.get("median_ms") == 123.0 and abs(result.get("stoi", 0) - s) <= 0.01
            and abs(result.get("mcd_db", 0) - d) <= 0.1 and result.get("stoi", 1) < 0.99)


def write_recording(path, left, right):
    scaled = lambda x: np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.column_stack((scaled(left), scaled(right))).tobytes())


@case
def wrecked_recording_still_scored():
    """where no 2 s window correlates (speech 1 s late in noise 10 dB louder: a link far too
    narrow), mouth-to-ear.py --max-delay 1.5 still scores it, aligned by the whole
    recording's peak, low (--realign 0.25 alike), and gives no mouth-to-ear delay"""
    lag = RATE
    heard = np.concatenate((np.zeros(lag), sq.white_noise(CLEAN, -10)))[: len(CLEAN)]
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "call.wav")
        write_recording(path, CLEAN, heard)
        result = json.loads(subprocess.run([sys.executable, os.path.join(BENCH, "mouth-to-ear.py"), path,
                                            "--max-delay", "1.5"],
                                           check=True, capture_output=True, text=True).stdout)
        # Parts aligned one by one find no better score in noise than the whole did.
        parts = json.loads(subprocess.run([sys.executable, os.path.join(BENCH, "mouth-to-ear.py"), path,
                                           "--max-delay", "1.5", "--realign", "0.25"],
                                          check=True, capture_output=True, text=True).stdout)
    result.pop("windows", None)
    note(f"mouth-to-ear.py: {result}; with --realign 0.25: STOI {parts.get('stoi')}")
    return (result.get("good_windows") == 0 and "median_ms" not in result
            and result.get("whole_delay_ms") == 1000.0 and 0 < result.get("stoi", 1) < 0.6
            and abs(parts.get("stoi", 1) - result["stoi"]) < 0.03)


@case
def moving_delay_realigned():
    """a delay that moves inside a window (100 ms, then 160 ms from 2.9 s on: a jitter
    buffer that grew) costs the scores unless mouth-to-ear.py --realign 0.25 follows it,
    which scores the clean copy as clean"""
    heard = np.concatenate((np.zeros(int(0.1 * RATE)), CLEAN))[: len(CLEAN)]
    jump = int(2.9 * RATE)
    heard[jump:] = np.concatenate((np.zeros(int(0.16 * RATE)), CLEAN))[jump: len(CLEAN)]
    scores = []
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "call.wav")
        write_recording(path, CLEAN, heard)
        for extra in ([], ["--realign", "0.25"]):
            scores.append(json.loads(subprocess.run([sys.executable, os.path.join(BENCH, "mouth-to-ear.py"), path]
                                                    + extra, check=True, capture_output=True,
                                                    text=True).stdout))
    note(f"STOI {scores[0].get('stoi')} without, {scores[1].get('stoi')} with --realign; "
         f"mouth to ear {scores[0].get('median_ms')} / {scores[1].get('median_ms')} ms")
    return (scores[0].get("stoi", 1) < 0.95 and scores[1].get("stoi", 0) >= 0.98
            and scores[0].get("median_ms") == scores[1].get("median_ms"))


@case
def too_short_refused():
    """less speech than one 384 ms segment is refused, not scored"""
    short = CLEAN[: int(0.3 * RATE)]
    try:
        sq.stoi(short, short, RATE)
    except ValueError as e:
        note(str(e))
        return True
    return False


@case
def tones_measured():
    """tone_level() finds each tone of a mix at its amplitude and an absent one near 0;
    rest_rms() leaves out the tones, and a phase jump's click, and keeps the speech beside them"""
    t = np.arange(2 * RATE) / RATE
    mix = 9830 * np.sin(2 * np.pi * 440 * t) + 3277 * np.sin(2 * np.pi * 660 * t + 1)
    speech = CLEAN[: len(t)] * 3000 / np.sqrt(np.mean(CLEAN[: len(t)] ** 2))
    levels = [sq.tone_level(mix, RATE, hz) for hz in (440, 660, 880)]
    clicked = mix.copy()
    clicked[RATE // 2:] = 9830 * np.sin(2 * np.pi * 440 * t[RATE // 2:] + 2) + mix[RATE // 2:] - \
        9830 * np.sin(2 * np.pi * 440 * t[RATE // 2:])   # the 440 Hz tone's phase jumps once
    rest, with_speech = sq.rest_rms(mix, RATE, (440, 660)), sq.rest_rms(mix + speech, RATE, (440, 660))
    after_jump = sq.rest_rms(clicked, RATE, (440, 660))
    note(f"levels {levels}, rest {rest:.1f}, after a phase jump {after_jump:.1f}, with speech {with_speech:.0f}")
    return (abs(levels[0] - 9830) < 100 and abs(levels[1] - 3277) < 100 and levels[2] < 10
            and rest < 5 and after_jump < 5 and 1000 < with_speech < 3500)

def main():
    print(f"1..{len(cases)}")
    failed = 0
    for number, function in enumerate(cases, 1):
        ok = function()
        failed += not ok
        # A TAP result is one line: a docstring's further lines would be taken for
        # unknown output.
        summary = " ".join(function.__doc__.split())
        print(f"{'ok' if ok else 'not ok'} {number} - {summary}", flush=True)
    return 1 if failed else 0


sys.exit(main())
