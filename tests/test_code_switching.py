"""speech_transcription on code-switching speech: English and German sentences 0.2-0.4 s apart.

The clips come from the seeded corpus in ``speech_corpus`` (espeak-ng voices, exact sentence
times and texts); the transcription is the real faster-whisper base run. Targets (issue 7):
at least 95 % of sentences in the right language, a mixed clip's word error rate within 0.05 of
the same sentences transcribed one language at a time, and a single-language clip no worse than
plain faster-whisper (one call, language detected) on it. ``benchmarks/bench_code_switching.py``
measures the same on a larger set.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from faster_whisper.transcribe import Segment, Word
from helpers import analyze, encode_frames, make_media
from speech_corpus import build_clip, language_accuracy, mixed_items, single_items, transcript_text, wer

from tiktok_assets.analyzers import speech_transcription
from tiktok_assets.analyzers.base import check_times
from tiktok_assets.models import resolve_whisper

RATE = 16_000


def media_of(tmp_path, name: str, audio: np.ndarray):
    frames = [np.full((64, 36, 3), 90, np.uint8)] * int(audio.size / RATE * 10 + 1)
    return make_media(encode_frames(tmp_path / f"{name}.mp4", frames, 10, audio=audio), tmp_path / "media", name)


@pytest.fixture(scope="module")
def whisper(settings):
    resolved = resolve_whisper(settings.whisper_model, settings.model_store)
    return speech_transcription.load_whisper(resolved.path, "cpu")


def plain(model, audio: np.ndarray, language: str | None) -> str:
    """Plain faster-whisper: one call over the audio with its default options."""
    segments, _info = model.transcribe(audio, language=language)
    return " ".join(s.text for s in segments)


def count_encoder_calls(monkeypatch, model) -> list:
    """Record every run of the model's Whisper encoder (language ID and decoding both call it)."""
    calls, encode = [], model.encode

    def counted(features):
        calls.append(features.shape)
        return encode(features)

    monkeypatch.setattr(model, "encode", counted)
    return calls


def mixed_run(tmp_path, monkeypatch, settings, whisper, seed: int, first: str, music: float):
    clip = build_clip(mixed_items(seed, 4, first), seed=seed, music_level=music)
    gaps = [b[0] - a[1] for a, b in zip(clip.sentences[:-1], clip.sentences[1:], strict=True)]
    assert all(0.19 <= g <= 0.41 for g in gaps)
    media = media_of(tmp_path, f"mixed{seed}", clip.audio)
    encoded = count_encoder_calls(monkeypatch, whisper)
    rows, run = analyze("speech_transcription", media, settings)
    # full (30 s) encoder passes: the whole clip, each sentence whose short (10 s) language-ID pass
    # was unsure, each language's pack of the sentences decoded again; never more than one per
    # sentence and the clip's
    assert run.metadata["encoder_windows"] <= 1 + len(clip.sentences), (len(encoded), run.metadata)
    assert len(encoded) == run.metadata["encoder_windows"] + run.metadata["quick_language_ids"], run.metadata
    assert run.metadata["languages"] == "de, en"
    # the reference: the same sentences, one language at a time, plain faster-whisper told the language
    monkeypatch.undo()
    errors = words = 0.0
    for language in ("en", "de"):
        alone = build_clip([(s[3], s[2]) for s in clip.sentences if s[2] == language], seed=seed, music_level=music)
        n = len(alone.text().split())
        errors += wer(alone.text(), plain(whisper, alone.audio, language)) * n
        words += n
    return clip, rows, wer(clip.text(), transcript_text(rows)), errors / words


@pytest.mark.parametrize(("seed", "first", "music"), [(0, "en", 0.0), (1, "de", 0.03)])
def test_mixed_sentences_get_their_own_language(tmp_path, monkeypatch, settings, whisper, seed, first, music):
    """Every sentence in its language; the WER within 0.05 of one language at a time (issue 7);
    at most one full encoder pass per sentence beside the clip's."""
    clip, rows, mixed_wer, reference_wer = mixed_run(tmp_path, monkeypatch, settings, whisper, seed, first, music)
    right, total = language_accuracy(rows, clip)
    assert right / total >= 0.95, [(r["language"], r["text"]) for r in rows]
    # issue 7's target (the benchmark's gap over 12 seeds: -0.02 and 0.005)
    assert mixed_wer <= reference_wer + 0.05, (mixed_wer, reference_wer, transcript_text(rows))
    for row in rows:  # words lie inside their segment and inside the clip
        assert 0 <= row["start_s"] <= row["end_s"] <= clip.audio.size / RATE + 0.05
        assert all(row["start_s"] - 0.05 <= w["start_s"] <= w["end_s"] <= row["end_s"] + 0.05 for w in row["words"])


def test_german_only_clip_is_no_worse_than_plain_whisper(tmp_path, settings, whisper):
    """A guard for splitting by utterance: a German-only clip keeps one language and loses nothing
    against plain faster-whisper (run on the same decoded audio the analyzer sees)."""
    clip = build_clip(single_items(100, "de"), seed=100)
    media = media_of(tmp_path, "german", clip.audio)
    rows, run = analyze("speech_transcription", media, settings)
    assert {r["language"] for r in rows} == {"de"}, [(r["language"], r["text"]) for r in rows]
    ours = wer(clip.text(), transcript_text(rows))
    assert ours <= wer(clip.text(), plain(whisper, media.audio, None)) + 0.01


def test_segments_past_the_end_are_clamped_to_the_clip():
    """Whisper can time a (hallucinated) segment in the padding after the audio: the rows are
    clamped into the clip instead of failing the analyzer's time check."""
    words = [Word(0.2, 0.6, " hallo", 0.9), Word(2.9, 3.6, " welt", 0.4)]
    segments = [
        Segment(0, 0, 0.0, 3.6, " hallo welt", [1, 2], -0.3, 1.2, 0.1, words, 0.0),
        Segment(1, 0, 4.2, 5.0, " danke", [3], -0.9, 1.0, 0.2, [Word(4.2, 5.0, " danke", 0.3)], 0.0),
    ]
    rows = speech_transcription.segment_rows(segments, offset_s=6.0, duration_s=9.5, language="de",
                                             probability=0.8)
    assert [(r["start_s"], r["end_s"]) for r in rows] == [(6.0, 9.5), (9.5, 9.5)]
    assert [(w["start_s"], w["end_s"]) for w in rows[0]["words"]] == [(6.2, 6.6), (8.9, 9.5)]
    assert rows[1]["words"][0]["start_s"] == 9.5 and rows[1]["text"] == "danke"
    table = pa.table({"start_s": [r["start_s"] for r in rows], "end_s": [r["end_s"] for r in rows]})
    check_times("speech_transcription", table, 9.5)  # raises for rows outside the clip


def test_a_comparison_decoding_stops_at_its_token_cap(monkeypatch, whisper):
    """A comparison decoding (temperature 0, language forced) generates at most ``token_cap`` new
    tokens and counts as failed when it reaches them (on the wrong language Whisper can loop on to
    448 tokens); a decoding that is kept has the wider cap, which ordinary speech stays far below.
    Real faster-whisper base on two espeak-ng sentences, with the cap per second lowered so that
    ordinary speech reaches it."""
    from speech_corpus import ENGLISH, sentence_audio

    audio = np.concatenate([sentence_audio(ENGLISH[0], "en"), np.zeros(RATE // 4, np.float32),
                            sentence_audio(ENGLISH[1], "en")])
    generated, inner = [], whisper.generate_with_fallback

    def counted(encoder_output, prompt, tokenizer, options):
        result = inner(encoder_output, prompt, tokenizer, options)
        generated.append((options.max_new_tokens, len(result[0].sequences_ids[0])))
        return result

    monkeypatch.setattr(whisper, "generate_with_fallback", counted)
    features, encoded = speech_transcription.encode_window(whisper, audio)
    kept = speech_transcription.decode(whisper, features, encoded, "en")
    wide = speech_transcription.token_cap(features.shape[-1] / 100, kept=True)
    assert generated and all(cap == wide for cap, _n in generated) and not kept.failed
    assert {"welcome", "kitchen", "dinner"} <= set(kept.text.lower().replace(",", "").replace(".", "").split())
    full = max(n for _cap, n in generated)
    assert full < wide / 2  # ordinary speech: far from the kept cap

    monkeypatch.setattr(speech_transcription, "TOKENS_PER_S", 1.0)
    monkeypatch.setattr(speech_transcription, "TOKENS_FLOOR", 2)
    cap = speech_transcription.token_cap(features.shape[-1] / 100)
    assert cap < full / 2
    generated.clear()
    compared = speech_transcription.decode(whisper, features, encoded, "en", fallback=False)
    # (CTranslate2 may return one token past max_length less the prompt: its count starts after SOT)
    assert generated and all(c == cap and n <= cap + 1 for c, n in generated), (cap, generated)
    assert compared.failed
    assert speech_transcription.token_cap(600.0) == speech_transcription.MAX_NEW_TOKENS
    assert speech_transcription.token_cap(28.0, kept=True) > whisper.max_length  # long windows: uncapped
    # a kept decoding is capped too (each temperature of its fallback), only wider
    monkeypatch.setattr(speech_transcription, "KEPT_TOKENS_PER_S", 1.0)
    monkeypatch.setattr(speech_transcription, "KEPT_TOKENS_FLOOR", 2)
    generated.clear()
    speech_transcription.decode(whisper, features, encoded, "en")
    assert generated and all(c == cap and n <= cap + 1 for c, n in generated), (cap, generated)


def test_a_token_cap_is_lowered_to_what_the_prompt_leaves():
    """faster-whisper refuses ``max_new_tokens`` past Whisper's 448 less the prompt (a later window
    carries up to 223 tokens of earlier text): the watch lowers the cap for that window only."""
    from types import SimpleNamespace

    from faster_whisper.transcribe import TranscriptionOptions

    seen = []

    class Model:
        max_length = 448

        def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):
            seen.append(options.max_new_tokens)
            return (SimpleNamespace(sequences_ids=[[1, 2, 3]]), -0.2, 0.0, 1.0)

    fields = {name: None for name in TranscriptionOptions.__dataclass_fields__}
    options = TranscriptionOptions(**{**fields, "max_new_tokens": 300})
    tokenizer = SimpleNamespace(decode=lambda ids: "a b c")
    watch = speech_transcription.GenerationWatch(Model())
    watch.generate_with_fallback(None, [0] * 4, tokenizer, options)
    watch.generate_with_fallback(None, [0] * 226, tokenizer, options)
    assert seen == [300, 448 - 226] and options.max_new_tokens == 300 and not watch.failed


def test_sentences_under_music_are_split_and_each_gets_its_language(tmp_path, settings):
    """With music under the speech, the 0.2 s pause between an English and a German sentence keeps
    the speech probability above faster-whisper's lower threshold (0.35): its spans join the two,
    and the German sentence was read as English words. The utterance split (``UTTERANCE_GAP_S``,
    ``UTTERANCE_DROP``) separates them inside the pause, and each sentence gets its language."""
    from tiktok_assets.vad import speech_spans

    clip = build_clip(mixed_items(60, 2, "en"), seed=60, music_level=0.15)
    (_, english_end, _, _), (german_start, _, _, _) = clip.sentences
    media = media_of(tmp_path, "music", clip.audio)
    assert len(speech_spans(media, min_silence_s=0.1)) == 1  # faster-whisper's hysteresis joins them
    spans = speech_spans(media, min_silence_s=speech_transcription.UTTERANCE_GAP_S,
                         drop=speech_transcription.UTTERANCE_DROP)
    assert len(spans) == 2 and english_end - 0.1 <= spans[0][1] <= spans[1][0] <= german_start + 0.1, spans
    rows, _run = analyze("speech_transcription", media, settings)
    assert language_accuracy(rows, clip) == (2, 2), [(r["language"], r["text"]) for r in rows]
    # (the German decoding falls back to sampling under this music: its words vary between runs)
    german = " ".join(r["text"] for r in rows if r["language"] == "de").lower()
    assert "einen" in german and "topf" in german, german
