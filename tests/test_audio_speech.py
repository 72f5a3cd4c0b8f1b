"""speech_rate, speech_flow and speech_emotion on espeak-ng speech placed at known times.

The transcription is the real faster-whisper base run (packaged weights) on the generated clip,
so word counts and fillers asserted here are real recognition results; the known truth (word
counts, voiced durations, gap positions) comes from how the clip was built.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
from helpers import analyze, encode_frames, make_media

from tiktok_assets.analyzers import speech_flow
from tiktok_assets.audio_features import count_syllables, filler_label
from tiktok_assets.config import load_settings
from tiktok_assets.sample_video import speak, voiced_span

RATE = 16_000
SENTENCES = (
    ("today we are going to make a very simple dinner for the whole family", "en"),
    ("first we cut the onions and then we fry them in a big pan", "en"),
    ("danach kochen wir die Nudeln in einem großen Topf mit Wasser", "de"),
)
GAPS_BEFORE = (0.5, 1.2, 0.9)  # silence before each sentence
TRAILING_S = 0.8


def clip(tmp_path, name: str, audio: np.ndarray):
    """An MP4 with a flat grey picture at 10 fps and ``audio``, decoded into a media cache."""
    frames = [np.full((64, 36, 3), 90, np.uint8)] * int(audio.size / RATE * 10 + 1)
    video = encode_frames(tmp_path / f"{name}.mp4", frames, 10, audio=audio)
    return make_media(video, tmp_path / "media", name)


@pytest.fixture(scope="module")
def speech(tmp_path_factory, settings):
    """Three sentences (trimmed to their voiced part) after known silences; plus the transcription."""
    parts, spans, words, t = [], [], 0, 0.0
    for (text, voice), gap in zip(SENTENCES, GAPS_BEFORE, strict=True):
        audio = speak(text, voice)
        a, b = voiced_span(audio)
        audio = audio[int(a * RATE) : int(b * RATE)]
        parts += [np.zeros(int(gap * RATE), np.float32), audio]
        t += int(gap * RATE) / RATE
        spans.append((t, t + audio.size / RATE))
        t += audio.size / RATE
        words += len(text.split())
    parts.append(np.zeros(int(TRAILING_S * RATE), np.float32))
    media = clip(tmp_path_factory.mktemp("speech"), "speech", 0.8 * np.concatenate(parts))
    _, run = analyze("speech_transcription", media, settings)
    assert run.metadata["device"] == "cpu"  # where the model ran (the loader's placement)
    return media, {"speech_transcription": run.table}, spans, words


def test_speech_rate_matches_known_words_per_minute(speech, settings):
    media, inputs, spans, n_words = speech
    rows, run = analyze("speech_rate", media, settings, inputs)
    video = [r for r in rows if r["level"] == "video"]
    windows = [r for r in rows if r["level"] == "window"]
    assert len(video) == 1
    video = video[0]
    voiced = sum(b - a for a, b in spans)
    known_articulation = 60 * n_words / voiced
    known_speaking = 60 * n_words / (spans[-1][1] - spans[0][0])
    assert abs(video["articulation_wpm"] - known_articulation) <= 0.15 * known_articulation, video
    assert abs(video["speaking_wpm"] - known_speaking) <= 0.15 * known_speaking, video
    assert abs(video["voiced_s"] - voiced) <= 0.1 * voiced
    assert video["articulation_wpm"] > video["speaking_wpm"]  # pauses excluded vs included
    assert video["syllables"] > video["words"]
    # 5 s windows tile the clip and share out every word
    assert [w["start_s"] for w in windows] == [5.0 * k for k in range(len(windows))]
    assert windows[-1]["end_s"] == pytest.approx(media.duration_s, abs=1e-3)
    assert sum(w["words"] for w in windows) == video["words"]
    assert {w["language"] for w in windows if w["words"]} >= {"en", "de"}
    assert run.metadata["articulation_wpm"] == video["articulation_wpm"]


def test_speech_rate_without_transcription_gives_voiced_time_only(speech, settings):
    media, _inputs, spans, _ = speech
    rows, run = analyze("speech_rate", media, settings, {})
    video = next(r for r in rows if r["level"] == "video")
    assert video["articulation_wpm"] is None and video["speaking_wpm"] is None
    assert abs(video["voiced_s"] - sum(b - a for a, b in spans)) < 1.0
    assert "no speech_transcription input" in run.metadata["note"]


def test_every_long_gap_is_a_pause_at_the_right_time(speech, settings):
    media, inputs, spans, _ = speech
    rows, run = analyze("speech_flow", media, settings, inputs)
    pauses = [r for r in rows if r["kind"] == "pause"]
    gaps = [(a[1], b[0]) for a, b in zip(spans[:-1], spans[1:], strict=True)]
    assert all(b - a > 0.7 for a, b in gaps)
    for gap_start, gap_end in gaps:
        match = [p for p in pauses if abs(p["start_s"] - gap_start) <= 0.15 and abs(p["end_s"] - gap_end) <= 0.15]
        assert match, (gap_start, gap_end, pauses)
        assert match[0]["duration_s"] == pytest.approx(match[0]["end_s"] - match[0]["start_s"], abs=1e-3)
    # no pause before the first or after the last word
    assert all(spans[0][0] - 0.1 <= p["start_s"] and p["end_s"] <= spans[-1][1] + 0.1 for p in pauses)
    rhythm = [r for r in rows if r["kind"] == "rhythm"]
    assert len(rhythm) == 1
    pause_total = sum(b - a for a, b in gaps)
    region = spans[-1][1] - spans[0][0]
    assert rhythm[0]["pause_share"] == pytest.approx(pause_total / region, abs=0.05)
    assert 0.1 < rhythm[0]["mean_interval_s"] < 0.6  # espeak at 150+ wpm: a word every ~0.3 s
    assert rhythm[0]["npvi"] is not None and rhythm[0]["npvi"] > 0
    assert run.metadata["pauses"] == len(pauses)


def test_pause_threshold_is_a_parameter(speech, settings):
    """Raising the threshold above the known gaps (1.2 s and 0.9 s) leaves only the longest."""
    media, inputs, spans, _ = speech
    from tiktok_assets.audio_features import transcript_words, voiced_spans

    words = transcript_words(inputs["speech_transcription"])
    vad = voiced_spans(media.audio, 1.0)
    found = speech_flow.find_pauses(vad, words, lambda a, b: True, min_pause_s=1.0)
    assert len(found) == 1 and abs(found[0][0] - spans[0][1]) < 0.2


def test_emphasis_rows_point_at_loud_or_high_words(speech, settings):
    media, inputs, _, _ = speech
    rows, _ = analyze("speech_flow", media, settings, inputs)
    emphasis = [r for r in rows if r["kind"] == "emphasis"]
    assert emphasis, "espeak's stressed words should stand out somewhere"
    for row in emphasis:
        assert row["z_score"] >= speech_flow.EMPHASIS_Z
        assert row["label"] in {"energy", "pitch", "energy+pitch"}
        assert row["text"]
        if "pitch" in row["label"]:
            assert 65 <= row["pitch_hz"] <= 600


@pytest.fixture(scope="module")
def fillers(tmp_path_factory, settings):
    audio = np.concatenate(
        [
            np.zeros(RATE // 2, np.float32),
            speak("Um, I think, uh, we should go home now.", "en"),
            np.zeros(RATE, np.float32),
            speak("Äh, ich weiß nicht, ähm, vielleicht gehen wir morgen also in die Stadt.", "de"),
            np.zeros(RATE // 2, np.float32),
        ]
    )
    media = clip(tmp_path_factory.mktemp("fillers"), "fillers", 0.8 * audio)
    _, run = analyze("speech_transcription", media, settings)
    return media, {"speech_transcription": run.table}


def test_english_and_german_fillers_found_but_not_also(fillers, settings):
    """End to end: Whisper base does transcribe espeak's "um", "uh", "äh" and "ähm" here."""
    media, inputs = fillers
    rows, run = analyze("speech_flow", media, settings, inputs)
    found = [r for r in rows if r["kind"] == "filler"]
    labels = {r["label"] for r in found}
    assert {"um", "uh", "äh", "ähm"} <= labels, found
    assert "also" not in labels
    by_label = {r["label"]: r for r in found}
    assert by_label["um"]["language"] == "en" and by_label["äh"]["language"] == "de"
    assert by_label["um"]["start_s"] < 1.5 and by_label["äh"]["start_s"] > 3.5
    assert run.metadata["fillers"] == len(found)


def test_filler_detection_on_a_synthetic_transcription(speech, settings):
    """Filler words given directly as a transcription table (independent of what Whisper hears)."""
    media, _, _, _ = speech
    words = [
        ("Also", 0.6, 0.8), ("ähhm,", 0.9, 1.1), ("ich", 1.2, 1.3), ("Hmm", 1.4, 1.6),
        ("like", 1.7, 1.8), ("Ummm...", 1.9, 2.1), ("Öh", 2.2, 2.3), ("erm", 2.4, 2.5), ("um", 2.6, 2.7),
    ]
    word_type = pa.struct([("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                           ("probability", pa.float64())])
    table = pa.table(
        {
            "start_s": [0.6], "end_s": [2.7], "text": [" ".join(w for w, _, _ in words)], "language": ["de"],
            "words": pa.array([[{"word": w, "start_s": a, "end_s": b, "probability": 0.9} for w, a, b in words]],
                              type=pa.list_(word_type)),
        }
    )
    rows, _ = analyze("speech_flow", media, settings, {"speech_transcription": table})
    fillers = [(r["text"], r["label"], r["start_s"]) for r in rows if r["kind"] == "filler"]
    # in a German segment "um" (however spelled) is the German word and "erm" is not on the German list
    assert fillers == [("ähhm,", "ähm", 0.9), ("Hmm", "hm", 1.4), ("Öh", "öh", 2.2)]
    english = table.set_column(3, "language", pa.array(["en"]))
    rows, _ = analyze("speech_flow", media, settings, {"speech_transcription": english})
    fillers = [(r["text"], r["label"]) for r in rows if r["kind"] == "filler"]
    assert fillers == [("Hmm", "hm"), ("Ummm...", "um"), ("erm", "erm"), ("um", "um")]


def test_filler_and_syllable_rules():
    assert filler_label("Also", "de") is None and filler_label("like", "en") is None
    assert filler_label("Ähhhm", "de") == "ähm" and filler_label("hmmm", "en") == "hm"
    assert filler_label("um,", "en") == "um" and filler_label("um", "de") is None  # "um fünf Uhr"
    assert filler_label("er", "en") == "er" and filler_label("er", "de") is None  # "er" = he
    assert filler_label("Äh", None) == "äh"
    german = {"Straße": 2, "heute": 2, "vielleicht": 2, "Mädchen": 2, "Bäume": 2, "Nudeln": 2, "Wasser": 2,
              "großen": 2, "Eis": 1, "Haus": 1, "Liebe": 2, "Qualität": 3}
    english = {"make": 1, "table": 2, "jumped": 1, "wanted": 2, "dinner": 2, "today": 2, "family": 3,
               "home": 1, "onions": 2, "yes": 1, "simple": 2, "the": 1}
    for word, n in german.items():
        assert count_syllables(word, "de") == n, word
    for word, n in english.items():
        assert count_syllables(word, "en") == n, word


def test_speech_emotion_without_model_gives_prosody_and_no_label(speech, settings):
    media, inputs, _, _ = speech
    plain = dataclasses.replace(settings, speech_emotion_model=None)
    rows, run = analyze("speech_emotion", media, plain, inputs)
    assert len(rows) == inputs["speech_transcription"].num_rows
    for row in rows:
        assert row["emotion"] is None and row["confidence"] is None and row["emotion_scores"] is None
        assert row["model_status"].startswith("unavailable") and "TIKTOK_ASSETS_SPEECH_EMOTION_MODEL" in row[
            "model_status"]
        assert 70 <= row["pitch_mean_hz"] <= 250  # espeak's default voices speak around 100-130 Hz
        assert row["pitch_range_hz"] > 0 and row["energy_db"] > -40
        assert 100 <= row["speaking_rate_wpm"] <= 300
        assert row["source"] == "transcription"
    assert run.metadata["model"] == "none" and "prosody only" in run.metadata["note"]


def test_speech_emotion_falls_back_to_vad_segments(speech, settings):
    media, _, spans, _ = speech
    plain = dataclasses.replace(settings, speech_emotion_model=None)
    rows, run = analyze("speech_emotion", media, plain, {})
    assert run.metadata["segment_source"] == "vad" and {r["source"] for r in rows} == {"vad"}
    for a, b in spans:  # every sentence is covered by a VAD segment
        assert any(r["start_s"] <= a + 0.2 and r["end_s"] >= b - 0.2 for r in rows), (a, b, rows)
    assert all(r["speaking_rate_wpm"] is None and r["pitch_mean_hz"] for r in rows)


def _tiny_wav2vec2(folder, with_head: bool = True):
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
        Wav2Vec2Model,
    )

    labels = ["angry", "happy", "neutral", "sad"]
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, classifier_proj_size=16, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )
    model = Wav2Vec2ForSequenceClassification(config) if with_head else Wav2Vec2Model(config)
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    return labels


def test_speech_emotion_with_tiny_random_classifier(speech, settings, tmp_path, monkeypatch):
    """The real loading/inference path with a tiny *randomly initialised* wav2vec2 classifier built
    here; its labels are meaningless, so only shapes, labels from the config and probabilities are
    asserted, never which emotion is found."""
    media, inputs, _, _ = speech
    labels = _tiny_wav2vec2(tmp_path / "emotion")
    monkeypatch.setenv("TIKTOK_ASSETS_SPEECH_EMOTION_MODEL", str(tmp_path / "emotion"))
    configured = load_settings()
    assert configured.speech_emotion_model == str(tmp_path / "emotion")
    rows, run = analyze("speech_emotion", media, configured, inputs)
    assert len(rows) == inputs["speech_transcription"].num_rows
    for row in rows:
        scores = row["emotion_scores"]
        assert sorted(s["label"] for s in scores) == labels
        assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-3)
        assert [s["score"] for s in scores] == sorted((s["score"] for s in scores), reverse=True)
        assert row["emotion"] == scores[0]["label"] and row["confidence"] == scores[0]["score"]
        assert row["model_status"] == "ok: emotion (local path)"
        assert row["pitch_mean_hz"] is not None
    assert run.metadata["model_origin"] == "local path"
    assert run.metadata["main_emotion"] in labels


def test_speech_emotion_refuses_a_checkpoint_without_head(speech, settings, tmp_path):
    """A base wav2vec2 checkpoint would get a random head: the analyzer says so instead."""
    media, inputs, _, _ = speech
    _tiny_wav2vec2(tmp_path / "nohead", with_head=False)
    rows, _ = analyze("speech_emotion", media, dataclasses.replace(settings, speech_emotion_model=str(
        tmp_path / "nohead")), inputs)
    assert rows and all(r["emotion"] is None for r in rows)
    assert "no trained classification head" in rows[0]["model_status"]


def test_speech_emotion_hub_id_offline_is_unavailable(speech, settings, monkeypatch):
    media, inputs, _, _ = speech
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = dataclasses.replace(settings, speech_emotion_model="someone/wav2vec2-emotion")
    rows, run = analyze("speech_emotion", media, hub, inputs)
    assert rows and all(r["emotion"] is None for r in rows)
    assert "not reachable" in rows[0]["model_status"] and "someone/wav2vec2-emotion" in rows[0]["model_status"]
