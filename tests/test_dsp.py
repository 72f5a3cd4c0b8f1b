"""tiktok_assets.dsp (the numpy audio features that replaced librosa) on generated signals with exact
truth, and against librosa, the reference the stored tables were built on (only tests import it).

Truth: a 1 kHz sine (RMS A/sqrt 2, 0.125 zero crossings per sample, centroid and roll-off at 1 kHz,
flatness ~0); white Gaussian noise (flat spectrum: flatness exp(-Euler's gamma) = 0.5615, centroid
sr/4, roll-off 0.85 sr/2, bandwidth of a uniform spread (sr/2)/sqrt 12, one zero crossing every
two samples); click tracks at 80-160 BPM from a known first click; glides with known instantaneous
f0; triads of known key.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tiktok_assets import dsp
from tiktok_assets.analyzers.audio_analysis import estimate_key
from tiktok_assets.sample_video import speak

RATE = 16_000
N_FFT, HOP = 2048, 256
EULER_GAMMA = 0.5772156649


def interior(n_frames: int, hop: int = HOP, n_fft: int = N_FFT) -> slice:
    """Frames whose window lies entirely inside the signal."""
    return slice(n_fft // (2 * hop) + 1, n_frames - n_fft // (2 * hop) - 1)


def test_features_of_a_sine_are_its_amplitude_and_frequency():
    t = np.arange(2 * RATE) / RATE
    y = (0.5 * np.sin(2 * np.pi * 1000 * t + 0.3)).astype(np.float32)
    inner = interior(dsp.n_frames(y.size, HOP))
    spectral = dsp.spectral_features(dsp.stft_magnitude(y, N_FFT, HOP), RATE, N_FFT)
    assert dsp.rms(y, N_FFT, HOP)[inner] == pytest.approx(0.5 / np.sqrt(2), rel=2e-3)
    assert dsp.zero_crossing_rate(y, N_FFT, HOP)[inner] == pytest.approx(0.125, abs=1.5 / N_FFT)
    assert spectral["centroid"][inner] == pytest.approx(1000, rel=0.01)
    assert np.abs(spectral["rolloff"][inner] - 1000).max() <= 2 * RATE / N_FFT
    assert spectral["bandwidth"][inner].max() < 30
    assert spectral["flatness"][inner].max() < 1e-3


def test_features_of_white_noise_are_those_of_a_flat_spectrum():
    y = (0.1 * np.random.default_rng(0).standard_normal(4 * RATE)).astype(np.float32)
    inner = interior(dsp.n_frames(y.size, HOP))
    spectral = {k: v[inner].mean() for k, v in
                dsp.spectral_features(dsp.stft_magnitude(y, N_FFT, HOP), RATE, N_FFT).items()}
    assert spectral["flatness"] == pytest.approx(np.exp(-EULER_GAMMA), rel=0.03)
    assert spectral["centroid"] == pytest.approx(RATE / 4, rel=0.02)
    assert spectral["rolloff"] == pytest.approx(0.85 * RATE / 2, rel=0.02)
    assert spectral["bandwidth"] == pytest.approx(RATE / 2 / np.sqrt(12), rel=0.03)
    assert dsp.zero_crossing_rate(y, N_FFT, HOP)[inner].mean() == pytest.approx(0.5, rel=0.02)
    assert dsp.rms(y, N_FFT, HOP)[inner].mean() == pytest.approx(0.1, rel=0.02)


@pytest.fixture(scope="module")
def mixture() -> np.ndarray:
    """Silence, English and German speech, a 330 Hz tone with harmonics, noise bursts and clicks."""
    rng = np.random.default_rng(1)
    speech = np.concatenate([speak("hello everyone, welcome back", "en-us"),
                             speak("heute kochen wir zusammen", "de")])
    t = np.arange(2 * RATE) / RATE
    tone = sum(0.2 / k * np.sin(2 * np.pi * 330 * k * t) for k in (1, 2, 3))
    noise = np.zeros(RATE)
    noise[RATE // 4 : RATE // 2] = 0.2 * rng.standard_normal(RATE // 4)
    clicks = np.zeros(RATE)
    clicks[::4000] = 0.9
    return np.concatenate([np.zeros(RATE // 2), speech, tone + 0.01 * rng.standard_normal(t.size), noise,
                           clicks]).astype(np.float32)


def test_features_equal_librosa_on_speech_music_and_noise(mixture):
    librosa = pytest.importorskip("librosa")
    y = mixture
    magnitude = dsp.stft_magnitude(y, N_FFT, HOP)
    assert np.abs(magnitude - np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))).max() < 1e-5 * magnitude.max()
    ours = dsp.spectral_features(magnitude, RATE, N_FFT)
    reference = {
        "centroid": librosa.feature.spectral_centroid(y=y, sr=RATE, n_fft=N_FFT, hop_length=HOP)[0],
        "bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=RATE, n_fft=N_FFT, hop_length=HOP)[0],
        "rolloff": librosa.feature.spectral_rolloff(y=y, sr=RATE, n_fft=N_FFT, hop_length=HOP)[0],
        "flatness": librosa.feature.spectral_flatness(y=y, n_fft=N_FFT, hop_length=HOP)[0],
    }
    loud = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0] > 1e-3
    for name, expected in reference.items():
        assert ours[name].shape == expected.shape
        np.testing.assert_allclose(ours[name][loud], expected[loud], rtol=1e-3, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(dsp.rms(y, N_FFT, HOP),
                               librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0], rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(dsp.zero_crossing_rate(y, N_FFT, HOP),
                                  librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)[0])
    for hop in (HOP, 128):
        expected = librosa.onset.onset_strength(y=y, sr=RATE, hop_length=hop)
        ours_onset = dsp.onset_strength(y, RATE, hop, N_FFT)
        assert ours_onset.shape == expected.shape
        np.testing.assert_allclose(ours_onset, expected, rtol=1e-3, atol=1e-3 * expected.max())
    np.testing.assert_allclose(dsp.frames_to_time(np.arange(7), RATE, HOP),
                               librosa.frames_to_time(np.arange(7), sr=RATE, hop_length=HOP))


def clicks(bpm: float, seconds: float, first: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Decaying noise clicks every 60/bpm s from ``first`` over a faint noise floor; (audio, click times)."""
    rng = np.random.default_rng(seed)
    y = 0.003 * rng.standard_normal(int(seconds * RATE))
    n = int(0.03 * RATE)
    click = 0.5 * rng.standard_normal(n) * np.exp(-150 * np.arange(n) / RATE)
    times = np.arange(first, seconds - 0.05, 60.0 / bpm)
    for t in times:
        i = int(round(t * RATE))
        y[i : i + n] += click[: y.size - i]
    return y.astype(np.float32), times


@pytest.mark.parametrize(("bpm", "first"), [(80.0, 0.31), (97.0, 0.5), (120.0, 0.1), (143.0, 0.27), (160.0, 0.4)])
def test_tempo_and_beats_of_click_tracks(bpm, first):
    y, truth = clicks(bpm, 12.0, first)
    hop = 128
    onset = dsp.onset_strength(y, RATE, hop, 512, n_mels=64)
    tempo, frames = dsp.beat_track(onset, RATE / hop)
    beats = dsp.frames_to_time(frames, RATE, hop)
    assert tempo == pytest.approx(bpm, rel=0.02)
    assert beats.size == truth.size
    assert np.abs(beats - truth).max() <= 0.030, np.round(beats - truth, 3)


@pytest.mark.parametrize("bpm", [84.0, 131.0])
def test_tempo_inside_a_mask_ignores_what_lies_outside(bpm):
    """Clicks at ``bpm`` in two music spans, and between them clicks at another tempo that the
    mask excludes: the tempo is that of the spans."""
    music, _ = clicks(bpm, 12.0, 0.2)
    other, _ = clicks(bpm * 1.37, 12.0, 0.1, seed=1)
    fps = RATE / 128
    t = np.arange(dsp.n_frames(music.size, 128)) / fps
    inside = (t < 4.5) | (t >= 8.0)
    audio = np.where(np.repeat(inside, 128)[: music.size], music, other)
    onset = dsp.onset_strength(audio, RATE, 128, 512, n_mels=64)
    assert dsp.tempo(np.where(inside, onset, 0.0), fps, mask=inside) == pytest.approx(bpm, rel=0.02)


def test_beats_agree_with_librosa_on_the_same_envelope():
    librosa = pytest.importorskip("librosa")
    y, truth = clicks(111.0, 10.0, 0.35)
    onset = librosa.onset.onset_strength(y=y, sr=RATE, hop_length=128)
    reference_tempo, reference = librosa.beat.beat_track(onset_envelope=onset, sr=RATE, hop_length=128)
    tempo, frames = dsp.beat_track(onset, RATE / 128)
    assert tempo == pytest.approx(float(np.atleast_1d(reference_tempo)[0]), rel=0.02)
    assert tempo == pytest.approx(111.0, rel=0.02)
    assert frames.size == reference.size == truth.size
    assert np.abs(frames - reference).max() <= 2  # frames of 8 ms


def tones(notes_hz: list[float], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(0.2 / k * np.sin(2 * np.pi * f * k * t) for f in notes_hz for k in (1, 2, 3))


def midi(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def progression(chords: list[list[int]]) -> np.ndarray:
    return np.concatenate([tones([midi(n) for n in chord], 1.0) for chord in chords]).astype(np.float32)


C_MAJOR = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]]  # C F G C
A_MINOR = [[57, 60, 64], [62, 65, 69], [64, 68, 71], [57, 60, 64]]  # Am Dm E Am
D_MAJOR = [[62, 66, 69], [67, 71, 74], [69, 73, 76], [62, 66, 69]]  # D G A D


def test_chroma_of_a_tone_is_its_pitch_class():
    y = tones([440.0], 1.0).astype(np.float32)
    chroma = dsp.chroma(dsp.stft_magnitude(y, N_FFT, HOP), RATE, N_FFT)
    assert chroma.shape == (12, dsp.n_frames(y.size, HOP))
    assert set(np.argmax(chroma, axis=0)) == {9}  # A
    for note, pitch_class in ((60, 0), (66, 6), (71, 11)):
        y = tones([midi(note)], 1.0).astype(np.float32)
        chroma = dsp.chroma(dsp.stft_magnitude(y, N_FFT, HOP), RATE, N_FFT)
        assert int(np.argmax(chroma[:, interior(chroma.shape[1])].mean(axis=1))) == pitch_class


@pytest.mark.parametrize(("chords", "key"), [(C_MAJOR, "C major"), (A_MINOR, "A minor"), (D_MAJOR, "D major")])
def test_key_from_chroma_matches_truth_and_librosa(chords, key):
    librosa = pytest.importorskip("librosa")
    y = progression(chords)
    ours = dsp.chroma(dsp.stft_magnitude(y, N_FFT, HOP), RATE, N_FFT)
    reference = librosa.feature.chroma_stft(y=y, sr=RATE, n_fft=N_FFT, hop_length=HOP)
    assert estimate_key(ours) == key
    assert estimate_key(reference) == key
    assert np.corrcoef(ours.mean(axis=1), reference.mean(axis=1))[0, 1] > 0.9


def glide(f_start: float, f_end: float, seconds: float, harmonics: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A tone gliding exponentially from ``f_start`` to ``f_end``; (audio, f0 of every sample)."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = f_start * (f_end / f_start) ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    return sum(0.3 / k * np.sin(k * phase) for k in harmonics).astype(np.float32), f0


@pytest.mark.parametrize(("f_start", "f_end", "harmonics"), [
    (70.0, 500.0, (1,)),  # pure tone rising over 2.8 octaves
    (450.0, 80.0, (1, 2, 3, 4, 5)),  # a voice-like harmonic tone falling
    (110.0, 240.0, (2, 3, 4)),  # without its fundamental: the pitch is still f0
])
def test_yin_follows_a_glide_within_two_percent(f_start, f_end, harmonics):
    y, truth = glide(f_start, f_end, 3.0, harmonics)
    hop = 320
    f0, periodicity = dsp.yin(y, RATE, 65.0, 600.0, 1024, hop)
    centres = np.arange(f0.size) * hop
    inner = (centres >= 512) & (centres < y.size - 512)
    assert np.isfinite(f0[inner]).all()
    assert np.abs(f0[inner] / truth[centres[inner]] - 1).max() < 0.02
    assert periodicity[inner].min() > 0.8


def test_yin_finds_no_pitch_in_noise_or_silence():
    noise = (0.1 * np.random.default_rng(2).standard_normal(2 * RATE)).astype(np.float32)
    silence = np.zeros(2 * RATE, np.float32)
    for y in (noise, silence):
        f0, _ = dsp.yin(y, RATE, 65.0, 600.0, 1024, 320)
        assert f0.size == dsp.n_frames(y.size, 320) and not np.isfinite(f0).any()
    # a tone between two silences is voiced only where it sounds
    tone, _ = glide(200.0, 200.0, 1.0, (1, 2, 3))
    f0, _ = dsp.yin(np.concatenate([silence, tone, silence]), RATE, 65.0, 600.0, 1024, 320)
    t = np.arange(f0.size) * 0.02
    assert not np.isfinite(f0[(t < 1.95) | (t > 3.05)]).any()
    assert np.isfinite(f0[(t > 2.05) & (t < 2.95)]).all()
    assert np.nanmedian(f0) == pytest.approx(200.0, rel=0.005)


@pytest.mark.parametrize(("text", "voice"), [("hello everyone and welcome back to my kitchen", "en-us"),
                                             ("heute kochen wir zusammen eine schnelle Pasta", "de+f3")])
def test_yin_agrees_with_librosa_pyin_on_speech(text, voice):
    librosa = pytest.importorskip("librosa")
    y = speak(text, voice)
    f0, _ = dsp.yin(y, RATE, 65.0, 600.0, 1024, 320)
    reference, voiced, _ = librosa.pyin(y, fmin=65.0, fmax=600.0, sr=RATE, frame_length=1024, hop_length=320,
                                        resolution=0.25)
    reference = np.where(voiced, reference, np.nan)
    assert f0.size == reference.size
    both = np.isfinite(f0) & np.isfinite(reference)
    # most frames either tracker voices are voiced by both (pYIN's HMM bridges weak frames more)
    assert both.sum() >= 0.7 * np.isfinite(reference).sum() and both.sum() >= 0.85 * np.isfinite(f0).sum()
    semitones = np.abs(12 * np.log2(f0[both] / reference[both]))
    assert np.median(semitones) < 0.25  # pYIN's own grid is 0.25 semitone
    assert np.mean(semitones > 1.0) < 0.05  # no octave slips beyond a few frames
    assert np.mean(np.isfinite(f0) == np.isfinite(reference)) > 0.75


def test_audio_steps_do_not_import_librosa():
    """A fresh process that imports the audio analyzers and runs every dsp feature, the pitch pass
    and the loudness measures has neither librosa, numba nor SciPy loaded (seconds of imports in
    every fresh process), and the forkserver preload list names none of them."""
    code = """
import sys
import numpy as np
from tiktok_assets import dsp
from tiktok_assets.analyzers import audio_analysis, speech_emotion, speech_flow  # noqa: F401
from tiktok_assets.executors.multiprocess import FORKSERVER_PRELOAD
from tiktok_assets.passes import prosody
y = (0.1 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
m = dsp.stft_magnitude(y, 2048, 256)
dsp.spectral_features(m, 16000, 2048); dsp.chroma(m, 16000, 2048); dsp.rms(y, 2048, 256)
dsp.zero_crossing_rate(y, 2048, 256); dsp.beat_track(dsp.onset_strength(y, 16000, 128, 512), 125.0)
prosody.f0_track(y)
from tiktok_assets.audio_features import integrated_loudness, k_weighted, short_term_loudness
integrated_loudness(y); short_term_loudness(k_weighted(y), 1.0)
print(sorted(m for m in ("librosa", "numba", "scipy") if m in sys.modules),
      any(m.split(".")[0] in ("librosa", "numba", "scipy") for m in FORKSERVER_PRELOAD))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["[]", "False"], out.stdout + out.stderr[-2000:]


def test_k_weighting_by_fft_equals_recursive_filtering():
    """``k_weighted`` (impulse response by FFT, no SciPy at run time) equals the two biquads run
    recursively by ``scipy.signal.lfilter``: noise with silence and a click, lengths from one sample
    to past one FFT block."""
    from scipy.signal import lfilter

    from tiktok_assets.audio_features import FILTER_BLOCK, k_weighted, k_weighting

    rng = np.random.default_rng(3)
    for rate in (16_000, 48_000):
        (b1, a1), (b2, a2) = k_weighting(rate)
        for n in (1, 700, rate, FILTER_BLOCK + 12_345):
            x = 0.1 * rng.standard_normal(n)
            x[: n // 3] = 0.0
            x[n // 2] += 0.9
            ours, reference = k_weighted(x, rate), lfilter(b2, a2, lfilter(b1, a1, x))
            assert ours.shape == x.shape
            assert np.abs(ours - reference).max() <= 1e-9 * max(1.0, np.abs(reference).max()), (rate, n)
