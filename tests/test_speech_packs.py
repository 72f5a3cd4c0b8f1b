"""Packing utterances of one language into one window and moving the decoded words back to clip
time (``speech_transcription``'s decoding one language at a time); no model needed."""

from __future__ import annotations

import numpy as np
from faster_whisper.transcribe import Segment, Word

from tiktok_assets.analyzers.speech_transcription import (
    MAX_WINDOW_S,
    PACK_GAP_S,
    RATE,
    Decoding,
    pack_rows,
    packs,
)


def test_utterances_are_packed_per_language_in_order_within_a_window():
    utterances = [((0.5, 2.5), "en"), ((2.8, 5.0), "de"), ((5.3, 7.3), "en"), ((7.6, 9.0), "de"),
                  ((10.0, 34.0), "en")]
    found = packs(utterances)
    assert [(p.language, p.spans) for p in found] == [
        ("en", [(0.5, 2.5), (5.3, 7.3)]),
        ("de", [(2.8, 5.0), (7.6, 9.0)]),
        ("en", [(10.0, 34.0)]),  # 4.3 s + gap + 24 s would pass MAX_WINDOW_S: a window of its own
    ]
    assert found[0].offsets == [0.0, 2.0 + PACK_GAP_S]
    assert np.isclose(found[1].length_s, 2.2 + PACK_GAP_S + 1.4)
    assert all(p.length_s <= MAX_WINDOW_S for p in found)


def test_pack_audio_holds_each_utterance_at_its_offset():
    audio = np.zeros(10 * RATE, np.float32)
    audio[1 * RATE : 2 * RATE] = 0.5  # utterance 1.0-2.0 s
    audio[6 * RATE : int(6.5 * RATE)] = -0.25  # utterance 6.0-6.5 s
    (pack,) = packs([((1.0, 2.0), "de"), ((6.0, 6.5), "de")])
    samples = pack.audio(audio)
    second = int(round((1.0 + PACK_GAP_S) * RATE))
    assert samples.size == int(round((1.5 + PACK_GAP_S) * RATE)) + 1
    assert np.all(samples[:RATE] == 0.5)
    assert np.all(samples[RATE:second] == 0.0)  # the silence between them
    assert np.all(samples[second : second + RATE // 2] == -0.25)


def test_packed_words_go_back_to_their_utterances_clip_time():
    (pack,) = packs([((3.0, 5.0), "de"), ((9.0, 10.5), "de")])
    second = 2.0 + PACK_GAP_S  # where the second utterance starts in the packed window
    words = [Word(0.1, 0.6, " Heute", 0.9), Word(0.7, 1.8, " kochen", 0.8),
             Word(second + 0.2, second + 0.7, " wir", 0.95), Word(second + 0.8, second + 1.6, " Suppe", 0.7)]
    # one segment spanning both utterances: split at their boundary; the last word runs past the
    # second utterance's end (into padding) and is clamped to it
    decoding = Decoding("de", [Segment(0, 0, 0.0, second + 1.6, " Heute kochen wir Suppe", [1, 2, 3, 4], -0.3,
                                       1.1, 0.05, words, 0.0)], -0.3, 1.0)
    rows = pack_rows(pack, decoding, duration_s=12.0, probability={(3.0, 5.0): 0.9})
    assert [(r["text"], r["start_s"], r["end_s"], r["language"]) for r in rows] == [
        ("Heute kochen", 3.1, 4.8, "de"), ("wir Suppe", 9.2, 10.5, "de")]
    assert [(w["word"], w["start_s"], w["end_s"]) for r in rows for w in r["words"]] == [
        ("Heute", 3.1, 3.6), ("kochen", 3.7, 4.8), ("wir", 9.2, 9.7), ("Suppe", 9.8, 10.5)]
    assert [r["language_probability"] for r in rows] == [0.9, 0.0]
