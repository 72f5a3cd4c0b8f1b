"""Search across videos: the `search_index` asset, German/English stemming, umlaut folding, spans.

Clip ``said`` speaks "hello and welcome" (from 0.5 s) and "the secret ingredient is fresh basil"
(from 2.6 s) with espeak-ng; the CLI analyzes it in process (ingest, media, faster-whisper,
cut_analysis) and its score run materializes `search_index`. Clip ``shown`` (two pictures, a cut at
2.0 s, no audio) is analyzed the same way; text_overlay is not on this branch, so its on-screen
text rows are written into the warehouse here (that table's shape: start_s, end_s, text) and the
video is indexed again, as a re-run of its partition would.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from helpers import encode_frames

from tiktok_assets import catalog, cli, search
from tiktok_assets.config import load_settings
from tiktok_assets.sample_video import speak, voiced_span

pytestmark = pytest.mark.slow  # the clips go through the CLI's Dagster run

RATE = 16_000
SAID = (("hello and welcome", 0.5), ("the secret ingredient is fresh basil", 2.6))
SHOWN = (("THE SECRET INGREDIENT: BASIL", 1.0, 3.0), ("Frische Tomaten und viele GRÜSSE aus München", 3.5, 5.5))


@pytest.fixture(scope="module")
def indexed(module_home, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    settings = load_settings()
    audio = np.zeros(int(6.0 * RATE), np.float32)
    spans = []
    for text, at in SAID:
        said = speak(text, "en-us")
        a, b = voiced_span(said)
        said = said[int(a * RATE) : int(b * RATE)]
        audio[int(at * RATE) : int(at * RATE) + said.size] = 0.8 * said
        spans.append((at, at + said.size / RATE))
    grey = [np.full((160, 90, 3), 100, np.uint8)] * 60
    said_video = encode_frames(tmp / "said.mp4", grey, 10, audio=audio)
    rng = np.random.default_rng(3)
    pictures = [rng.integers(0, 255, (160, 90, 3), dtype=np.uint8) for _ in range(2)]
    shown_video = encode_frames(tmp / "shown.mp4", [pictures[0]] * 20 + [pictures[1]] * 40, 10)
    said_id, ok = cli.analyze(settings, str(said_video), only=["speech_transcription", "cut_analysis"])
    assert ok
    shown_id, ok = cli.analyze(settings, str(shown_video), only=["cut_analysis"])
    assert ok
    before = search.search(settings, "secret ingredient")
    rows = [{"video_id": shown_id, "start_s": a, "end_s": b, "text": t} for t, a, b in SHOWN]
    catalog.warehouse(settings).write("text_overlay", shown_id, pa.Table.from_pylist(rows))
    counts = search.index_video(settings, shown_id)
    return settings, said_id, shown_id, spans, before, counts


def test_the_score_run_indexes_the_transcript(indexed):
    import dagster as dg

    from tiktok_assets.cli import ensure_instance

    settings, said_id, shown_id, spans, before, _ = indexed
    assert [(h.video_id, h.source) for h in before] == [(said_id, "speech")]  # before the text rows
    instance = ensure_instance(settings)
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("search_index"), asset_partitions=[said_id]), limit=1
    ).records[0]
    metadata = record.asset_materialization.metadata
    assert metadata["speech_documents"].value >= 1 and "speech_transcription" in metadata["tables"].value


def test_a_phrase_said_in_one_clip_and_shown_in_another_finds_both(indexed):
    settings, said_id, shown_id, spans, _, _ = indexed
    hits = search.search(settings, '"secret ingredient"')
    found = {(h.video_id, h.source): h for h in hits}
    assert set(found) == {(said_id, "speech"), (shown_id, "text")}
    speech = found[(said_id, "speech")]
    start, end = spans[1]  # the second sentence; "secret ingredient" are its words 2-3 of 6
    assert start - 0.3 <= speech.start_s and speech.end_s <= start + 0.7 * (end - start) + 0.3
    assert speech.end_s - speech.start_s < 0.8 * (end - start)
    text = found[(shown_id, "text")]
    assert (text.start_s, text.end_s, text.text) == (1.0, 3.0, SHOWN[0][0])
    assert not any(h.source == "speech" for h in search.search(settings, "Tomaten"))


@pytest.mark.parametrize("query", ["Grüße", "GRÜSSE", "gruesse", "grüsse", "MÜNCHEN", "muenchen"])
def test_umlaut_and_case_variants_match(indexed, query):
    settings, _, shown_id, _, _, _ = indexed
    hits = search.search(settings, query)
    assert [(h.video_id, h.start_s, h.end_s) for h in hits] == [(shown_id, 3.5, 5.5)]


def test_german_and_english_stemming(indexed):
    settings, said_id, shown_id, _, _, _ = indexed
    assert [h.video_id for h in search.search(settings, "Tomate", lang="de")] == [shown_id]
    assert [h.video_id for h in search.search(settings, "frisch", lang="de")] == [shown_id]
    # English stemming: "ingredients" finds "ingredient" (said and shown); German stemming does not apply
    english = search.search(settings, "ingredients", lang="en")
    assert {h.video_id for h in english} == {said_id, shown_id}
    assert search.search(settings, "Tomate", lang="en") == []  # no English stem matches "Tomaten"


def test_labels_reindex_and_cli(indexed, capsys):
    settings, said_id, shown_id, _, _, counts = indexed
    cut = [h for h in search.search(settings, "hard cut") if h.video_id == shown_id]
    assert len(cut) == 1 and cut[0].source == "label" and cut[0].start_s == pytest.approx(2.0, abs=0.11)
    again = search.index_video(settings, shown_id)  # a re-run replaces the video's documents
    assert again == counts and counts["text"] == 2
    assert len([h for h in search.search(settings, "basil", limit=50) if h.video_id == shown_id]) == 1
    assert cli.main(["search", "grüße", "--lang", "de", "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["video_id"], x["source"], x["text"]) for x in lines] == [(shown_id, "text", SHOWN[1][0])]
    assert cli.main(["search", "Quantenphysik"]) == 1
    assert "no match" in capsys.readouterr().out
    assert cli.main(["search", "?!"]) == 2
    assert "no word to search for" in capsys.readouterr().err
