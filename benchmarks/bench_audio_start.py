"""Time to first result of a fresh audio process: librosa (the old path) vs tiktok_assets.dsp (the new).

Run: ``python benchmarks/bench_audio_start.py [seconds] [--rounds N]`` (default 49 s, 2 rounds).

The clip is bench_audio's dense soundtrack (English and German espeak-ng speech over most of it, a
chord bed changing every 0.5 s, i.e. a 120 BPM pulse in A major, under part of the speech and alone at
the end, noise bursts). Each measurement is a fresh Python process that loads the audio and computes
what audio_analysis and the prosody pass compute: RMS, spectral centroid / bandwidth / roll-off /
flatness, zero-crossing rate, onset strength (128 ms frames), the beats' onset envelope, tempo and
beats, chroma and the pitch track. The old process makes the librosa calls the analyzers made
(``librosa.pyin`` for the pitch); the new one calls :mod:`tiktok_assets.dsp`. Both compute everything
twice: the first pass is the time to first result (imports, numba loading its cached machine code,
first-call set-up), the second the computation alone. One untimed librosa process runs first so numba's
cache (``NUMBA_CACHE_DIR``) is warm, then old and new processes alternate. The feature values of the
last round are printed side by side, with the truth where the clip has one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_audio import dense_soundtrack

from tiktok_assets.analyzers.audio_analysis import estimate_key

RATE = 16_000
WORKER = r"""
import time
T0 = time.perf_counter()
import json, sys
import numpy as np

mode, audio_path, out_path = sys.argv[1:4]
y = np.load(audio_path)
RATE, HOP, N_FFT, BEAT_HOP = 16000, 256, 2048, 128
steps = {}


def timed(name, f):
    began = time.perf_counter()
    value = f()
    steps.setdefault(name, []).append(time.perf_counter() - began)
    return value


def old():
    import librosa
    lb = librosa
    out = {}
    out["rms"] = timed("rms", lambda: lb.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0])
    out["centroid"] = timed("centroid", lambda: lb.feature.spectral_centroid(y=y, sr=RATE, n_fft=N_FFT,
                                                                              hop_length=HOP)[0])
    out["bandwidth"] = timed("bandwidth", lambda: lb.feature.spectral_bandwidth(y=y, sr=RATE, n_fft=N_FFT,
                                                                                 hop_length=HOP)[0])
    out["rolloff"] = timed("rolloff", lambda: lb.feature.spectral_rolloff(y=y, sr=RATE, n_fft=N_FFT,
                                                                           hop_length=HOP)[0])
    out["flatness"] = timed("flatness", lambda: lb.feature.spectral_flatness(y=y, n_fft=N_FFT, hop_length=HOP)[0])
    out["zcr"] = timed("zcr", lambda: lb.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)[0])
    out["onset"] = timed("onset", lambda: lb.onset.onset_strength(y=y, sr=RATE, hop_length=HOP))
    beat_onset = timed("beat onset", lambda: lb.onset.onset_strength(y=y, sr=RATE, hop_length=BEAT_HOP))
    tempo, frames = timed("tempo+beats", lambda: lb.beat.beat_track(onset_envelope=beat_onset, sr=RATE,
                                                                     hop_length=BEAT_HOP))
    out["tempo"] = np.atleast_1d(tempo)[:1].astype(float)
    out["beat_times"] = lb.frames_to_time(frames, sr=RATE, hop_length=BEAT_HOP)
    out["chroma"] = timed("chroma", lambda: lb.feature.chroma_stft(y=y, sr=RATE, n_fft=N_FFT, hop_length=HOP))
    f0, voiced, _ = timed("pitch", lambda: lb.pyin(y, fmin=65.0, fmax=600.0, sr=RATE, frame_length=1024,
                                                   hop_length=320, resolution=0.25, center=True))
    out["f0"] = np.where(voiced, f0, np.nan)
    return out


def new():
    from tiktok_assets import dsp
    out = {}
    magnitude = timed("stft", lambda: dsp.stft_magnitude(y, N_FFT, HOP))
    spectral = timed("spectral", lambda: dsp.spectral_features(magnitude, RATE, N_FFT))
    out.update(centroid=spectral["centroid"], bandwidth=spectral["bandwidth"], rolloff=spectral["rolloff"],
               flatness=spectral["flatness"])
    out["rms"] = timed("rms", lambda: dsp.rms(y, N_FFT, HOP))
    out["zcr"] = timed("zcr", lambda: dsp.zero_crossing_rate(y, N_FFT, HOP))
    out["onset"] = timed("onset", lambda: dsp.onset_strength(y, RATE, HOP, N_FFT, magnitude=magnitude))
    beat_onset = timed("beat onset", lambda: dsp.onset_strength(y, RATE, BEAT_HOP, 512, n_mels=64))
    tempo, frames = timed("tempo+beats", lambda: dsp.beat_track(beat_onset, RATE / BEAT_HOP))
    out["tempo"] = np.array([tempo])
    out["beat_times"] = dsp.frames_to_time(frames, RATE, BEAT_HOP)
    out["chroma"] = timed("chroma", lambda: dsp.chroma(magnitude, RATE, N_FFT))
    out["f0"] = timed("pitch", lambda: dsp.yin(y, RATE, 65.0, 600.0, 1024, 320)[0])
    return out


run = old if mode == "old" else new
began = time.perf_counter()
result = run()
first = time.perf_counter() - began
began = time.perf_counter()
run()
second = time.perf_counter() - began
np.savez(out_path, **result)
print("RESULT " + json.dumps({"since_start": time.perf_counter() - T0, "first": first, "second": second,
                              "steps": steps, "first_to_result": began - T0}))
"""


def measure(mode: str, audio: Path, out: Path) -> dict:
    """One fresh process; its timings plus the wall time from spawning it to its exit."""
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WORKER, mode, str(audio), str(out)], capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"the {mode} worker failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    result["wall"] = wall
    return result


def window_means(values: np.ndarray, hop: int, seconds: float) -> np.ndarray:
    """Mean of a frame feature per second (frames centred at k * hop)."""
    t = np.arange(values.size) * hop / RATE
    return np.array([values[(t >= w) & (t < w + 1)].mean() for w in range(int(np.ceil(seconds)))])


def compare(old: dict, new: dict, seconds: float) -> None:
    print("\nfeature values, old (librosa) | new (dsp)")
    loud = old["rms"] > 1e-3
    print(f"{'per-frame feature':<20}{'old mean':>12}{'new mean':>12}{'max |diff| / old max':>24}")
    for name in ("rms", "centroid", "bandwidth", "rolloff", "flatness", "zcr", "onset"):
        a, b = old[name], new[name][: old[name].size]
        sel = loud if name not in ("rms", "zcr", "onset") else np.ones_like(loud)
        diff = np.abs(a[sel] - b[sel]).max() / max(np.abs(a).max(), 1e-12)
        print(f"{name:<20}{a[sel].mean():>12.4f}{b[sel].mean():>12.4f}{diff:>24.2e}")
    windows = np.abs(window_means(old["centroid"], 256, seconds) - window_means(new["centroid"], 256, seconds))
    print(f"per-second centroid (the table's column): max |old - new| = {np.nanmax(windows):.4f} Hz")
    print(f"{'tempo (truth 120 BPM)':<28}{old['tempo'][0]:>10.2f}{new['tempo'][0]:>10.2f}")
    truth = np.arange(0.0, seconds, 0.5)
    for label, beats in (("old", old["beat_times"]), ("new", new["beat_times"])):
        music = beats[beats >= seconds * 0.35]  # the chord bed starts at 35 % of the clip
        err = np.array([np.abs(truth - b).min() for b in music]) if music.size else np.zeros(0)
        on_grid = float(np.mean(err <= 0.05)) if err.size else float("nan")
        print(f"beats ({label}): {beats.size}, {music.size} in the music part, {on_grid:.0%} within 50 ms of the "
              f"0.5 s chord grid, median offset {np.median(err) * 1000 if err.size else float('nan'):.0f} ms")
    print(f"{'key (truth A major)':<28}{estimate_key(old['chroma'])!s:>14}{estimate_key(new['chroma'])!s:>14}")
    print(f"{'chroma: corr. of clip means':<28}{np.corrcoef(old['chroma'].mean(1), new['chroma'].mean(1))[0, 1]:>14.3f}")
    f_old, f_new = old["f0"], new["f0"][: old["f0"].size]
    both = np.isfinite(f_old) & np.isfinite(f_new)
    st = np.abs(12 * np.log2(f_new[both] / f_old[both]))
    print(f"pitch: voiced frames old {np.isfinite(f_old).mean():.1%}, new {np.isfinite(f_new).mean():.1%}, "
          f"same decision {np.mean(np.isfinite(f_old) == np.isfinite(f_new)):.1%}; where both voiced: median "
          f"|diff| {np.median(st):.3f} semitones, {np.mean(st > 1):.1%} over 1 semitone")
    print(f"pitch mean / 5-95 % range (Hz): old {np.nanmean(f_old):.1f} / "
          f"{np.nanpercentile(f_old, 95) - np.nanpercentile(f_old, 5):.1f}, new {np.nanmean(f_new):.1f} / "
          f"{np.nanpercentile(f_new, 95) - np.nanpercentile(f_new, 5):.1f}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(args[0]) if args else 49.0
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 2
    work = Path(tempfile.mkdtemp(prefix="tiktok-bench-audio-start-"))
    audio = work / "audio.npy"
    np.save(audio, dense_soundtrack(seconds).astype(np.float32))
    measure("old", audio, work / "warm.npz")  # numba's cache warm, as in a set-up environment
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for _ in range(rounds):
        for mode in ("old", "new"):
            runs[mode].append(measure(mode, audio, work / f"{mode}.npz"))

    print(f"\nfresh audio process on a {seconds:.0f} s clip ({rounds} rounds, old and new alternating; "
          f"process wall = spawn to exit, first = imports + first computation, second = computation again)")
    print(f"{'':<6}{'process wall':>14}{'first result':>14}{'second':>10}{'start-up':>10}")
    mean = {}
    for mode in ("old", "new"):
        for r in runs[mode]:
            print(f"{mode:<6}{r['wall']:>14.2f}{r['first_to_result']:>14.2f}{r['second']:>10.2f}"
                  f"{r['first'] - r['second']:>10.2f}")
        mean[mode] = {k: float(np.mean([r[k] for r in runs[mode]])) for k in ("wall", "first_to_result", "second")}
    saved = mean["old"]["first_to_result"] - mean["new"]["first_to_result"]
    print(f"time to first result: old {mean['old']['first_to_result']:.2f} s, new {mean['new']['first_to_result']:.2f}"
          f" s: {saved:.2f} s saved per audio process ({mean['old']['first_to_result'] / mean['new']['first_to_result']:.1f}x)")
    print("\nper step, first call / second call (s), last round")
    names = list(dict.fromkeys([*runs["old"][-1]["steps"], *runs["new"][-1]["steps"]]))
    for name in names:
        cells = []
        for mode in ("old", "new"):
            calls = runs[mode][-1]["steps"].get(name)
            cells.append(f"{calls[0]:7.3f} / {calls[1]:6.3f}" if calls else f"{'-':>16}")
        print(f"{name:<14}{'old ' + cells[0]:>22}   {'new ' + cells[1]:>22}")
    old = dict(np.load(work / "old.npz"))
    new = dict(np.load(work / "new.npz"))
    compare(old, new, seconds)


if __name__ == "__main__":
    main()
