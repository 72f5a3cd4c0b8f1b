"""speech_flow's emphasis and pause reference level on clips with exact truth.

Monotone speech is espeak-ng with its intonation range set to x-low (F0 stays within about
1 semitone); the emphasised variant raises the pitch of two known words by 40 % (about 6
semitones) with SSML prosody. Words come from the real faster-whisper base transcription.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import analyze, encode_frames, make_media

from tiktok_assets.sample_video import read_wav

RATE = 16_000
SENTENCE = "today we are going to make a very {simple} dinner for the whole family and then we clean the {kitchen}"
RAISED = '<prosody pitch="+40%">{}</prosody>'


def ssml_speech(text: str) -> np.ndarray:
    """espeak-ng (en-us) reading SSML ``text`` with a flat intonation range, 16 kHz mono."""
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        ssml = f'<speak><prosody range="x-low">{text}</prosody></speak>'
        subprocess.run(["espeak-ng", "-m", "-v", "en-us", "-w", str(wav), ssml], check=True)
        audio, rate = read_wav(wav)
    audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    pad = np.zeros(RATE // 2, np.float32)
    return np.concatenate([pad, 0.8 * audio, pad])


def flow(tmp_path, settings, name: str, audio: np.ndarray):
    frames = [np.full((64, 36, 3), 90, np.uint8)] * int(audio.size / RATE * 10 + 1)
    media = make_media(encode_frames(tmp_path / f"{name}.mp4", frames, 10, audio=audio), tmp_path / "media", name)
    _, transcription = analyze("speech_transcription", media, settings)
    rows, _ = analyze("speech_flow", media, settings, {"speech_transcription": transcription.table})
    return rows, transcription.table


def test_monotone_speech_has_no_emphasis(tmp_path, settings):
    rows, table = flow(tmp_path, settings, "monotone", ssml_speech(SENTENCE.format(simple="simple",
                                                                                   kitchen="kitchen")))
    n_words = sum(len(w) for w in table.column("words").to_pylist())
    assert n_words >= 15
    assert [r for r in rows if r["kind"] == "emphasis"] == []


def test_raised_words_are_the_emphasis(tmp_path, settings):
    text = SENTENCE.format(simple=RAISED.format("simple"), kitchen=RAISED.format("kitchen"))
    rows, _ = flow(tmp_path, settings, "raised", ssml_speech(text))
    emphasis = [r for r in rows if r["kind"] == "emphasis"]
    flagged = {r["text"].strip(".,").lower() for r in emphasis}
    assert {"simple", "kitchen"} <= flagged, emphasis
    assert len(emphasis) <= 3  # the word after a raised one may carry its pitch over
    assert all("pitch" in r["label"] for r in emphasis if r["text"].strip(".,").lower() in {"simple", "kitchen"})


def test_without_voice_activity_word_gaps_are_judged_against_the_words_level(tmp_path, settings):
    """A steady quiet hum (no speech for the VAD) under a transcription whose words have gaps:
    the gaps are as loud as the words, so none is a pause (a 0 dBFS reference made them all pauses)."""
    t = np.arange(int(4 * RATE)) / RATE
    hum = (0.03 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    frames = [np.full((64, 36, 3), 90, np.uint8)] * 41
    media = make_media(encode_frames(tmp_path / "hum.mp4", frames, 10, audio=hum), tmp_path / "media", "hum")
    words = [("eins", 0.5, 0.9), ("zwei", 1.5, 1.9), ("drei", 2.5, 2.9), ("vier", 3.3, 3.6)]
    word_type = pa.struct([("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                           ("probability", pa.float64())])
    table = pa.table({
        "start_s": [0.5], "end_s": [3.6], "text": ["eins zwei drei vier"], "language": ["de"],
        "words": pa.array([[{"word": w, "start_s": a, "end_s": b, "probability": 0.9} for w, a, b in words]],
                          type=pa.list_(word_type)),
    })
    rows, run = analyze("speech_flow", media, settings, {"speech_transcription": table})
    assert [r for r in rows if r["kind"] == "pause"] == [], rows
    assert run.metadata["pauses"] == 0
    rhythm = [r for r in rows if r["kind"] == "rhythm"]
    assert len(rhythm) == 1 and rhythm[0]["pause_share"] == pytest.approx(0.0)
