"""text_overlay on generated clips with known overlays (real RapidOCR PP-OCRv6 weights, offline).

Truth: the texts, their spans, places and motion are drawn by the test (``text_media``): CER <= 5 %
on lines >= 24 px (German with umlauts/ß, English), track start/end within 0.5 s, a scrolling line
found as one scrolling track, a karaoke line as one word-by-word track with word times.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from array_media import media_from_arrays
from helpers import analyze
from text_media import background, draw_text

from tiktok_assets.analyzers._ocr import character_error_rate

FPS = 10
W, H = 360, 640
KARAOKE = ["Now", "we", "cook", "pasta"]
KARAOKE_TIMES = [0.5, 1.2, 1.9, 2.6]
TRUTH = [
    # text, start, end, language, motion
    ("Grüße aus Köln", 1.0, 4.0, "de", "static"),
    ("FOLLOW FOR PART 2", 2.0, 4.5, "en", "static"),
    ("Straße gesperrt", 4.5, 7.5, "de", "scrolling"),
    (" ".join(KARAOKE), 0.5, 4.5, "en", "word_by_word"),
]


def frame_at(t: float) -> np.ndarray:
    img = background(W, H, t)
    boxes = []
    if 1.0 <= t < 4.0:
        boxes.append(draw_text(img, "Grüße aus Köln", 24, (40, 90), "outline"))
    if 2.0 <= t < 4.5:
        boxes.append(draw_text(img, "FOLLOW FOR PART 2", 24, (40, 440), "caption"))
    if 4.5 <= t < 7.5:
        y = 560 - 100 * (t - 4.5)
        boxes.append(draw_text(img, "Straße gesperrt", 28, (30, y), "shadow"))
    shown = [w for w, at in zip(KARAOKE, KARAOKE_TIMES) if at <= t]
    if shown and t < 4.5:
        boxes.append(draw_text(img, " ".join(shown), 28, (30, 300), "outline"))
    assert all(b[0] >= 0 and b[2] <= W for b in boxes), "a line runs off the frame"
    return np.asarray(img)


@pytest.fixture(scope="module")
def overlay_run(tmp_path_factory, settings):
    frames = np.stack([frame_at(i / FPS) for i in range(int(8.0 * FPS))])
    media = media_from_arrays(tmp_path_factory.mktemp("ocr") / "clip", frames, FPS, video_id="ocr")
    return analyze("text_overlay", media, settings)


def find(rows, text):
    best = min(rows, key=lambda r: character_error_rate(text, r["text"]))
    return best, character_error_rate(text, best["text"])


@pytest.mark.parametrize("text,start,end,language,motion", TRUTH)
def test_tracks_match_the_drawn_text(overlay_run, text, start, end, language, motion):
    rows, _ = overlay_run
    row, cer = find(rows, text)
    assert cer <= 0.05, (text, row["text"])
    assert abs(row["start_s"] - start) <= 0.5 and abs(row["end_s"] - end) <= 0.5, row
    assert row["language"] == language
    assert row["motion"] == motion
    assert row["confidence"] > 0.8


def test_one_track_per_line_and_attributes(overlay_run):
    rows, run = overlay_run
    assert len(rows) == len(TRUTH), [r["text"] for r in rows]
    title, _ = find(rows, "Grüße aus Köln")
    assert title["position"] == "top" and title["in_safe_area"] and title["size_class"] == "caption"
    assert title["color_hex"] is not None and int(title["color_hex"][1:3], 16) > 200  # white glyphs
    caption, _ = find(rows, "FOLLOW FOR PART 2")
    assert caption["position"] == "bottom"
    assert caption["background_hex"] is not None and int(caption["background_hex"][1:3], 16) < 60
    meta = run.metadata
    assert meta["frames_detected"] + meta["frames_skipped"] + meta["frames_between"] == 16
    assert run.examined == [(0.0, 8.0)]


def test_karaoke_word_times(overlay_run):
    rows, _ = overlay_run
    row, _ = find(rows, " ".join(KARAOKE))
    words = row["words"]
    assert [w["word"] for w in words] == KARAOKE
    for word, at in zip(words, KARAOKE_TIMES):
        assert abs(word["start_s"] - at) <= 0.5, words


def test_sample_video_link_in_bio(sample, sample_media, settings):
    rows, _ = analyze("text_overlay", sample_media, settings)
    truth = sample.texts[0]
    assert len(rows) == 1
    row = rows[0]
    assert character_error_rate(truth["text"], row["text"]) == 0.0
    assert abs(row["start_s"] - truth["start_s"]) <= 0.5 and abs(row["end_s"] - truth["end_s"]) <= 0.5
    assert row["background_hex"] == "#000000" and row["position"] == "top"


def test_english_lines_read_again_by_the_selected_engine(tmp_path, settings):
    """TIKTOK_ASSETS_OCR_ENGINES=en=easyocr: the English line is re-read by EasyOCR, the German one
    stays with RapidOCR (EasyOCR's offline weights have no umlauts)."""
    img = background(W, H, 0.0)
    draw_text(img, "SAVE THIS RECIPE", 28, (30, 150), "outline")
    draw_text(img, "Grüße aus Köln", 28, (30, 450), "outline")
    frames = np.stack([np.asarray(img)] * 20)
    media = media_from_arrays(tmp_path / "clip", frames, FPS, video_id="engines")
    chosen = dataclasses.replace(settings, ocr_engines=(("de", "rapidocr"), ("en", "easyocr")))
    rows, _ = analyze("text_overlay", media, chosen)
    by_engine = {r["engine"]: r for r in rows}
    assert set(by_engine) == {"easyocr", "rapidocr"}
    assert character_error_rate("SAVE THIS RECIPE", by_engine["easyocr"]["text"]) <= 0.05
    assert by_engine["rapidocr"]["text"] == "Grüße aus Köln" and by_engine["rapidocr"]["language"] == "de"
