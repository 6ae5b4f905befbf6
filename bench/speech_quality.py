# SPDX-License-Identifier: LGPL-2.1-or-later
"""Objective speech scores for the media benchmark, so that two peers' bytes on the wire
are compared at a known quality. PESQ, POLQA and ViSQOL are not in Debian; these are
computed here with numpy and scipy:

- stoi(): short-time objective intelligibility, written from the paper (C. H. Taal,
  R. C. Hendriks, R. Heusdens, J. Jensen, "An Algorithm for Intelligibility Prediction of
  Time-Frequency Weighted Noisy Speech", IEEE TASLP 19(7), 2011): 0 (nothing understood)
  to 1 (the clean speech itself).
- mel_cepstral_distortion(): a spectral distance for quality (R. Kubichek, "Mel-cepstral
  distance measure for objective speech quality assessment", 1993), in dB: 0 for the clean
  speech itself, larger as the spectrum is coloured, band-limited or buried in noise.

Both compare a clean reference with a degraded copy of the same length that is already
time-aligned (delay() finds the lag; aligned_windows() cuts a recording into aligned
pairs) and are independent of the copy's level."""
import numpy as np
from scipy.signal import resample_poly

# STOI's constants, as the paper gives them.
STOI_RATE = 10000
STOI_FRAME = 256            # samples at 10 kHz, Hann window, 50 % overlap
STOI_FFT = 512
STOI_BANDS = 15             # one-third octave bands ...
STOI_LOWEST_HZ = 150.0      # ... the first centred on 150 Hz
STOI_SEGMENT = 30           # frames: 384 ms
STOI_BETA_DB = -15.0        # lower bound of the signal-to-distortion ratio (clipping)
SILENCE_RANGE_DB = 40.0     # frames this far below the clean signal's loudest are dropped

# The mel-cepstral distortion's analysis: wideband speech (what both benchmarked peers'
# Opus encodes), 25 ms frames every 10 ms, 40 mel bands, cepstra c1..c13 (c0, the level,
# is left out so that the copy's gain does not count).
MCD_RATE = 16000
MCD_FRAME = 400
MCD_HOP = 160
MCD_FFT = 512
MCD_BANDS = 40
MCD_CEPSTRA = 13


def resample(x, rate, to):
    """x at rate, resampled to `to` with a linear-phase polyphase filter (no delay)."""
    if rate == to:
        return np.asarray(x, dtype=np.float64)
    g = np.gcd(int(rate), int(to))
    return resample_poly(np.asarray(x, dtype=np.float64), to // g, rate // g)


def hann(n):
    """The Hann window without its zero end points (MATLAB's hanning(n)), as the paper's."""
    return np.hanning(n + 2)[1:-1]


def frames(x, size, hop):
    """The frames of x (rows), each weighted by the window; a trailing partial frame is dropped."""
    count = max(0, (len(x) - size) // hop + 1)
    if count == 0:
        return np.zeros((0, size))
    index = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return x[index] * hann(size)[None, :]


def speech_frames(clean, size, hop, range_db=SILENCE_RANGE_DB):
    """Which frames of clean are speech: within range_db of its loudest frame."""
    energy = 20 * np.log10(np.linalg.norm(frames(clean, size, hop), axis=1) + np.finfo(float).eps)
    return energy > energy.max() - range_db if len(energy) else energy.astype(bool)


def remove_silent_frames(clean, degraded, size, hop):
    """Both signals rebuilt by overlap-add from only the frames where clean is speech (the
    paper's step before the analysis, so that pauses do not count)."""
    keep = speech_frames(clean, size, hop)
    fx, fy = frames(clean, size, hop)[keep], frames(degraded, size, hop)[keep]
    n = (len(fx) - 1) * hop + size if len(fx) else 0
    x, y = np.zeros(n), np.zeros(n)
    for i in range(len(fx)):
        x[i * hop: i * hop + size] += fx[i]
        y[i * hop: i * hop + size] += fy[i]
    return x, y


def third_octave_matrix(rate, fft, bands, lowest):
    """Rows: the one-third octave bands (centres lowest * 2^(k/3)) as sums of FFT bins."""
    freqs = np.linspace(0, rate, fft + 1)[: fft // 2 + 1]
    k = np.arange(bands)
    low = lowest * 2.0 ** ((2 * k - 1) / 6)
    high = lowest * 2.0 ** ((2 * k + 1) / 6)
    matrix = np.zeros((bands, len(freqs)))
    for band in range(bands):
        first = int(np.argmin(np.abs(freqs - low[band])))
        last = int(np.argmin(np.abs(freqs - high[band])))
        matrix[band, first:last] = 1
    return matrix


def band_envelopes(x):
    """Short-time one-third octave band amplitudes of x at 10 kHz: bands x frames."""
    spectrum = np.abs(np.fft.rfft(frames(x, STOI_FRAME, STOI_FRAME // 2), STOI_FFT, axis=1)) ** 2
    bands = third_octave_matrix(STOI_RATE, STOI_FFT, STOI_BANDS, STOI_LOWEST_HZ)
    return np.sqrt(bands @ spectrum.T)


def stoi(clean, degraded, rate):
    """STOI of degraded against clean (same length, aligned, sampled at rate): the
    correlation of their band envelopes over 384 ms segments, after scaling each segment
    of the degraded one to the clean one's energy and clipping it at 15 dB above the clean
    one, averaged over bands and segments. Raises ValueError if the speech is shorter
    than one segment."""
    if len(clean) != len(degraded):
        raise ValueError("clean and degraded differ in length")
    x = resample(clean, rate, STOI_RATE)
    y = resample(degraded, rate, STOI_RATE)
    x, y = remove_silent_frames(x, y, STOI_FRAME, STOI_FRAME // 2)
    X, Y = band_envelopes(x), band_envelopes(y)
    count = X.shape[1] - STOI_SEGMENT + 1
    if count < 1:
        raise ValueError("less speech than one 384 ms segment")
    # Every segment of STOI_SEGMENT frames ending at each frame: segments x bands x frames.
    index = np.arange(STOI_SEGMENT)[None, :] + np.arange(count)[:, None]
    xs = np.transpose(X[:, index], (1, 0, 2))
    ys = np.transpose(Y[:, index], (1, 0, 2))
    eps = np.finfo(float).eps
    scale = np.linalg.norm(xs, axis=2, keepdims=True) / (np.linalg.norm(ys, axis=2, keepdims=True) + eps)
    ys = np.minimum(ys * scale, xs * (1 + 10 ** (-STOI_BETA_DB / 20)))
    xs = xs - xs.mean(axis=2, keepdims=True)
    ys = ys - ys.mean(axis=2, keepdims=True)
    xs /= np.linalg.norm(xs, axis=2, keepdims=True) + eps
    ys /= np.linalg.norm(ys, axis=2, keepdims=True) + eps
    return float(np.mean(np.sum(xs * ys, axis=2)))


def mel_matrix(rate, fft, bands):
    """Triangular mel filters (HTK's mel scale) from 0 Hz to rate / 2: bands x FFT bins."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)
    edges = hz(np.linspace(0, mel(rate / 2), bands + 2))
    freqs = np.linspace(0, rate / 2, fft // 2 + 1)
    matrix = np.zeros((bands, len(freqs)))
    for band in range(bands):
        low, centre, high = edges[band: band + 3]
        rise = (freqs - low) / (centre - low)
        fall = (high - freqs) / (high - centre)
        matrix[band] = np.maximum(0, np.minimum(rise, fall))
    return matrix


def mel_cepstra(x, keep):
    """c1..c13 of the kept frames of x (16 kHz): the orthonormal DCT-II of the natural log of
    the mel band amplitudes. Band energies are floored 60 dB under the signal's loudest: what
    is quieter than that (digital silence, a codec's empty bands, dither) is not heard beside
    the speech and would otherwise dominate the distance with logarithms of nothing."""
    power = np.abs(np.fft.rfft(frames(x, MCD_FRAME, MCD_HOP), MCD_FFT, axis=1)) ** 2
    energies = power[keep] @ mel_matrix(MCD_RATE, MCD_FFT, MCD_BANDS).T
    energies = np.maximum(energies, 1e-6 * energies.max() + np.finfo(float).tiny)
    amplitude = 0.5 * np.log(energies)
    n = np.arange(MCD_BANDS)
    k = np.arange(1, MCD_CEPSTRA + 1)
    dct = np.sqrt(2 / MCD_BANDS) * np.cos(np.pi * k[:, None] * (n[None, :] + 0.5) / MCD_BANDS)
    return amplitude @ dct.T


def mel_cepstral_distortion(clean, degraded, rate):
    """Mean mel-cepstral distortion in dB, (10 / ln 10) * sqrt(2 * sum (c_d - c'_d)^2) per
    frame, over the frames where clean is speech (within 40 dB of its loudest frame)."""
    if len(clean) != len(degraded):
        raise ValueError("clean and degraded differ in length")
    x = resample(clean, rate, MCD_RATE)
    y = resample(degraded, rate, MCD_RATE)
    keep = speech_frames(x, MCD_FRAME, MCD_HOP)
    if not keep.any():
        raise ValueError("no speech in the clean signal")
    diff = mel_cepstra(x, keep) - mel_cepstra(y, keep)
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * np.sum(diff * diff, axis=1))))


def delay(ref, out, rate):
    """Lag (s) of out behind ref (out holds ref's length plus the longest lag searched)
    with the highest normalised cross-correlation, and that correlation."""
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


def aligned_windows(left, right, rate, windows, fallback_s):
    """The speech windows of a recording, each as (left part, right part shifted by that
    window's own delay) concatenated into two signals of equal length. windows: (start
    sample, length, delay in s or None); a window without a delay of its own (no clear
    correlation: its speech may be the most damaged) takes fallback_s, so that the scores
    cover all the speech and not only what came through well."""
    refs, outs = [], []
    for start, length, lag_s in windows:
        lag = int(round((fallback_s if lag_s is None else lag_s) * rate))
        if start + lag + length > len(right):
            continue
        refs.append(left[start: start + length])
        outs.append(right[start + lag: start + lag + length])
    if not refs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(refs), np.concatenate(outs)


def white_noise(x, snr_db, seed=2):
    """x in white Gaussian noise at snr_db (powers over the whole signal)."""
    noise = np.random.default_rng(seed).standard_normal(len(x))
    return x + noise * np.sqrt(np.mean(x * x) / np.mean(noise * noise) / 10 ** (snr_db / 10))


def band_limit(x, rate, low, high):
    """x through an ideal band-pass: the FFT bins outside low-high zeroed."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, len(x))


SCALE_SNRS_DB = (20, 10, 5, 0, -5)


def scale(x, rate):
    """What known damage does to x's scores, to read a call's scores against: x in white
    noise at each of SCALE_SNRS_DB, and x cut to the telephone band (300-3400 Hz). At 16 kHz,
    so that the noise is white over the wideband the scores look at (at 48 kHz four fifths
    of it would lie above what they see, and the SNR would flatter)."""
    x, rate = resample(x, rate, MCD_RATE), MCD_RATE

    def both(y):
        return {"stoi": round(stoi(x, y, rate), 4), "mcd_db": round(mel_cepstral_distortion(x, y, rate), 3)}
    return {"white_noise": [{"snr_db": snr, **both(white_noise(x, snr))} for snr in SCALE_SNRS_DB],
            "telephone_band": both(band_limit(x, rate, 300, 3400))}


def synthetic_speech(rate, seconds, seed=1):
    """Speech-like sound, no recording needed: 4 syllables a second inside words of
    0.4-1.2 s, 0.15-0.4 s pauses; a pitch gliding between 100 and 180 Hz whose harmonics
    three wandering formants shape, and hiss for fricatives. Peak 0.5 of full scale."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    # Words and pauses: an on/off gate with 10 ms ramps.
    gate = np.zeros(n)
    at = 0.2
    while at < seconds:
        length = rng.uniform(0.4, 1.2)
        gate[int(at * rate): int(min(at + length, seconds) * rate)] = 1
        at += length + rng.uniform(0.15, 0.4)
    ramp = max(1, rate // 100)
    gate = np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    syllables = 0.55 - 0.45 * np.cos(2 * np.pi * 4 * t)
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t) * np.sin(2 * np.pi * 0.23 * t + 1)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    f1 = 500 + 250 * np.sin(2 * np.pi * 2.1 * t)
    f2 = 1500 + 600 * np.sin(2 * np.pi * 1.3 * t + 2)
    f3 = 2600 + 200 * np.sin(2 * np.pi * 0.9 * t)
    top = min(7000, rate / 2 - 500)
    voiced = np.zeros(n)
    for k in range(1, int(top / 100)):
        freq = k * f0
        envelope = sum(a / (1 + ((freq - f) / bw) ** 2) for f, a, bw in
                       ((f1, 1.0, 120), (f2, 0.5, 150), (f3, 0.25, 200)))
        voiced += np.where(freq < top, envelope, 0) * np.sin(k * phase)
    hiss = np.diff(rng.standard_normal(n + 1)) * 0.15 * (np.sin(2 * np.pi * 1.7 * t) > 0.6)
    x = (voiced * syllables + hiss) * gate
    return x / np.max(np.abs(x)) * 0.5


def score(clean, received, rate, max_delay_s=1.0, window_s=0.5, drift_s=0.2):
    """STOI and mel-cepstral distortion of a received copy of clean, over the stretch both
    hold (the copy may start late or early by up to max_delay_s, and end early: a call's
    recording starts when the audio does and ends at the hang-up). Aligned window by
    window (window_s, each within drift_s of the whole's delay), as a jitter buffer or a
    codec change moves the delay during a call."""
    size = 1 << int(np.ceil(np.log2(len(clean) + len(received))))
    corr = np.fft.irfft(np.fft.rfft(received, size) * np.conj(np.fft.rfft(clean, size)), size)
    most = int(max_delay_s * rate)
    lags = np.concatenate((np.arange(0, most + 1), np.arange(-most, 0)))
    lag = int(lags[np.argmax(np.abs(np.concatenate((corr[: most + 1], corr[-most:]))))])
    # received[i + lag] is clean[i]; each window's own lag is searched within drift
    drift, length = int(drift_s * rate), int(window_s * rate)
    windows = []
    for start in range(max(0, drift - lag), len(clean) - length + 1, length):
        at = start + lag - drift
        if at + length + 2 * drift > len(received):
            break
        own, r = delay(clean[start: start + length], received[at: at + length + 2 * drift], rate)
        windows.append((start, length, (own * rate + lag - drift) / rate if r > 0.3 else None))
    ref, out = aligned_windows(clean, received, rate, windows, lag / rate)
    if len(ref) == 0:
        raise SystemExit("score: the received copy holds no whole window of the speech")
    x, y = resample(ref, rate, MCD_RATE), resample(out, rate, MCD_RATE)
    return {"stoi": round(stoi(x, y, MCD_RATE), 3),
            "mcd_db": round(mel_cepstral_distortion(x, y, MCD_RATE), 2),
            "delay_ms": round(lag * 1000 / rate, 1), "seconds": round(len(ref) / rate, 2)}


def tone_level(x, rate, hz, block_s=0.1):
    """The amplitude (full scale 32767 for 16-bit samples) of the sine at hz (+-3 Hz) in x:
    the median over Hann-windowed blocks of block_s, as the tests measure it
    (tests/common/test-wav.c), so that a jitter buffer's occasional phase jump does not
    lower the level of a tone a listener hears as loud as before."""
    size = int(rate * block_s)
    blocks = frames(np.asarray(x, dtype=np.float64), size, size)
    if len(blocks) == 0:
        return 0.0
    t = np.arange(size) / rate
    probes = np.exp(-2j * np.pi * np.outer(hz + np.arange(-3, 4), t))   # one row per Hz
    return float(np.median(np.max(np.abs(blocks @ probes.T), axis=1) * 2 / hann(size).sum()))


def rest_rms(x, rate, tones, width_hz=20.0, block_s=0.1):
    """The RMS of x without the bands of +-width_hz around each of tones: what else it holds
    (speech beside tones, or only codec noise). Per Hann-windowed block of block_s, the
    median over them, as tone_level(): a jitter buffer's phase jump spreads a tone over
    every band for a moment, a click that would otherwise count as much as a word."""
    size = int(rate * block_s)
    blocks = frames(np.asarray(x, dtype=np.float64), size, size)
    if len(blocks) == 0:
        return 0.0
    spectra = np.fft.rfft(blocks, axis=1)
    hz = np.fft.rfftfreq(size, 1.0 / rate)
    keep = np.ones(len(hz), dtype=bool)
    for tone in tones:
        keep &= np.abs(hz - tone) > width_hz
    # Parseval, for a window of power sum(w^2): the RMS of what the kept bins hold.
    power = 2 * np.sum(np.abs(spectra[:, keep]) ** 2, axis=1) / (size * np.sum(hann(size) ** 2))
    return float(np.median(np.sqrt(power)))


def read_wav(path):
    import wave
    with wave.open(path) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16-bit mono")
        rate = w.getframerate()
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64), rate


def write_wav(path, x, rate):
    import wave
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def main(argv):
    """speech_quality.py scale SPEECH.wav: the scale above for a 16-bit mono file, as JSON.
    speech_quality.py speech OUT.wav [SECONDS]: synthetic speech, 48 kHz 16-bit mono.
    speech_quality.py score CLEAN.wav RECEIVED.wav: score() of the two, as JSON.
    speech_quality.py tones WAV SECONDS HZ...: in the last SECONDS of WAV, the level of each
    tone (tone_level()) and rest_rms() without them, as JSON."""
    import json
    if len(argv) >= 5 and argv[1] == "tones":
        x, rate = read_wav(argv[2])
        x = x[-int(float(argv[3]) * rate):]
        tones = [float(hz) for hz in argv[4:]]
        print(json.dumps({"seconds": round(len(x) / rate, 2),
                          "levels": {f"{hz:g}": round(tone_level(x, rate, hz)) for hz in tones},
                          "rest_rms": round(rest_rms(x, rate, tones))}))
        return
    if len(argv) >= 3 and argv[1] == "speech":
        write_wav(argv[2], synthetic_speech(48000, float(argv[3]) if len(argv) > 3 else 5.0), 48000)
        return
    if len(argv) == 4 and argv[1] == "score":
        clean, rate = read_wav(argv[2])
        received, rate2 = read_wav(argv[3])
        if rate2 != rate:
            received = resample(received, rate2, rate)
        print(json.dumps(score(clean, received, rate)))
        return
    if len(argv) != 3 or argv[1] != "scale":
        raise SystemExit(main.__doc__)
    x, rate = read_wav(argv[2])
    print(json.dumps(scale(x, rate)))


if __name__ == "__main__":
    import sys
    main(sys.argv)
