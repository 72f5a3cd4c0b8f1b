"""The per-video HTML report in a real browser (Playwright + Debian's chromium, as test_browser.py).

A 6 s clip of three bundled photos (astronaut 0-1.67 s, cat to 3.67 s, coffee to the end) with
"today we cook pasta with fresh basil" spoken from 0.5 s is analyzed through the CLI (ingest,
media, cut_analysis, camera_analysis, faster-whisper, audio_analysis, temporal_flow); its score run
writes ``reports/<id>/index.html``.
"""

from __future__ import annotations

import base64
import io
import re

import cv2
import numpy as np
import pytest
from helpers import encode_frames
from PIL import Image
from skimage import data

from tiktok_assets import cli, report_html, steps
from tiktok_assets.config import load_settings
from tiktok_assets.sample_video import speak, voiced_span

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
W, H, FPS, RATE = 180, 320, 30, 16_000
SHOTS = ((0.0, 50 / 30), (50 / 30, 110 / 30), (110 / 30, 6.0))
WORDS = ("today", "we", "cook", "pasta", "with", "fresh", "basil")


def fit(img: np.ndarray) -> np.ndarray:
    ih, iw = img.shape[:2]
    s = max(W / iw, H / ih)
    r = cv2.resize(img[..., :3], (int(iw * s + 1), int(ih * s + 1)), interpolation=cv2.INTER_AREA)
    y, x = (r.shape[0] - H) // 2, (r.shape[1] - W) // 2
    return np.ascontiguousarray(r[y : y + H, x : x + W])


@pytest.fixture(scope="module")
def reported(module_home, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    pictures = [fit(data.astronaut()), fit(data.chelsea()), fit(data.coffee())]
    frames = [pictures[0]] * 50 + [pictures[1]] * 60 + [pictures[2]] * 70
    audio = np.zeros(6 * RATE, np.float32)
    said = speak(" ".join(WORDS), "en-us")
    a, b = voiced_span(said)
    said = said[int(a * RATE) : int(b * RATE)]
    audio[int(0.5 * RATE) : int(0.5 * RATE) + said.size] = 0.8 * said
    video = encode_frames(tmp / "three.mp4", frames, FPS, audio=audio)
    settings = load_settings()
    key, ok = cli.analyze(settings, str(video), only=["cut_analysis", "camera_analysis", "speech_transcription",
                                                       "temporal_flow"])
    assert ok
    return settings, key, pictures


def decoded(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def test_report_renders_keyframes_per_shot_and_the_transcript_in_chromium(reported):
    from playwright.sync_api import sync_playwright

    settings, key, pictures = reported
    path = report_html.report_path(settings, key)
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        try:
            page.goto(path.as_uri())
            assert page.title() == f"{key}: reconstruction"
            keyframes = page.locator("img.keyframe")
            assert keyframes.count() == len(SHOTS)
            widths = keyframes.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert all(w > 0 for w in widths)  # decoded by the browser
            starts = [float(x) for x in page.locator("figure.shot").evaluate_all(
                "fs => fs.map(f => f.dataset.start)")]
            assert starts == pytest.approx([a for a, _ in SHOTS], abs=0.07)
            # the timeline figure holds one image per shot on its time axis, and the swimlanes
            assert page.locator("#timeline svg [id^='keyframe-']").count() == len(SHOTS)
            lanes = page.locator("#timeline svg text").evaluate_all("ts => ts.map(t => t.textContent.trim())")
            assert {"transcript", "cuts", "camera motion", "story"} <= set(lanes)
            words = [re.sub(r"\W", "", w).lower() for w in page.locator("#transcript span.word").all_inner_texts()]
            assert words == list(WORDS)
            sources = page.locator("#sources").inner_text()
            # the people analyzers ran on the clip; on-screen text and objects have no table here
            assert "people" in set(lanes)
            missing = sources.split("Lanes without a table: ", 1)[1].split(".")[0].split(", ")
            assert "objects" in missing and "people" not in missing  # no YOLO weights offline
            srcs = keyframes.evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
        finally:
            browser.close()
    assert outside == []  # self-contained: nothing loaded from anywhere else
    # each keyframe shows its shot's picture (closest of the three by mean absolute difference)
    for index, uri in enumerate(srcs):
        thumb = decoded(uri).astype(np.float32)
        diffs = [np.abs(cv2.resize(p, thumb.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.float32) - thumb).mean()
                 for p in pictures]
        assert int(np.argmin(diffs)) == index and min(diffs) < 12


def test_score_metadata_links_the_report(reported):
    import dagster as dg

    from tiktok_assets.catalog import connect

    settings, key, _ = reported
    instance = cli.ensure_instance(settings)
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("reconstruction_scores"), asset_partitions=[key]), limit=1
    ).records[0]
    metadata = record.asset_materialization.metadata
    assert metadata["report"].value == report_html.report_path(settings, key).resolve().as_uri()
    page = report_html.report_path(settings, key).read_text()
    con = connect(settings)
    try:
        (score,), = con.execute("SELECT score FROM reconstruction_scores WHERE video_id = ?", [key]).fetchall()
    finally:
        con.close()
    assert f'<b id="score">{score:.1f}</b>' in page


def test_without_media_cache_the_report_says_so(reported):
    from tiktok_assets.retention import evict_media_caches

    settings, key, _ = reported
    evict_media_caches(settings, [key], force=True)
    steps.score_reconstruction(settings, key)
    page = report_html.report_path(settings, key).read_text()
    assert "No keyframes: the media cache was not present" in page and 'class="keyframe"' not in page
    assert "<span class=\"word\"" in page


def test_shot_spans_from_edit_points():
    rows = [{"kind": "hard_cut", "start_s": 1.0, "end_s": 1.0}, {"kind": "dissolve", "start_s": 2.0, "end_s": 2.5},
            {"kind": "fade_out", "start_s": 3.5, "end_s": 4.0}]
    assert report_html.shots(rows, 4.0) == [(0.0, 1.0), (1.0, 2.0), (2.5, 3.5)]
    assert report_html.shots(None, 3.0) == [(0.0, 3.0)]


def test_render_shows_descriptions_text_and_people_lanes_when_their_tables_exist():
    """Tables of analyzers other branches add, as rows of their documented shape: their lanes and
    the description section appear, text is escaped."""
    frames = [np.full((32, 18, 3), v, np.uint8) for v in (40, 200)]
    tables = {
        "cut_analysis": [{"start_s": 1.0, "end_s": 1.0, "kind": "hard_cut"}],
        "qwen2_vl_temporal": [{"start_s": 0.0, "end_s": 2.0, "description": "A cook <chops> Tomaten"}],
        "text_overlay": [{"start_s": 0.2, "end_s": 1.5, "text": "Grüße!"}],
        "face_emotion": [{"start_s": 0.5, "end_s": 1.0, "face_id": 1, "emotion": "happy"}],
    }
    # analyzers with a timeline label: the report shows the timeline view's label of their rows
    labels = {"face_emotion": [{"start_s": 0.5, "end_s": 1.0, "label": "face 1 happy"}],
              "text_overlay": [{"start_s": 0.2, "end_s": 1.5, "label": "Grüße!"}]}
    page = report_html.render("v", 2.0, tables, labels, {"score": 50.0}, [], frames, [])
    assert "A cook &lt;chops&gt; Tomaten" in page and page.count('class="keyframe"') == 2
    lanes = re.findall(r"<text[^>]*>([^<]*)</text>", page)
    assert {"on-screen text", "people", "cuts", "Grüße!", "face 1 happy"} <= {t.strip() for t in lanes}
    assert "transcript" not in {t.strip() for t in lanes}


def test_timeline_svg_is_well_formed_and_puts_each_keyframe_on_its_shot():
    """The hand-written SVG parses as XML (text escaped), each keyframe image lies inside its
    shot's span on the time axis, and every lane and modality row has its title."""
    import xml.etree.ElementTree as ET

    from tiktok_assets import report_svg

    spans = [(0.0, 1.2), (1.2, 4.0), (4.0, 9.5)]
    uris = ["data:image/jpeg;base64,AAAA"] * 3
    lanes = [("transcript", [(0.3, 0.6, "Grüße", "speech_transcription"), (0.7, 0.9, "<&>", "speech_transcription")]),
             ("cuts", [(1.2, 1.2, "hard_cut", "cut_analysis")])]
    coverage = [{"start_s": float(t), "end_s": float(t + 1), "speech": t < 5} for t in range(10)]
    svg = report_svg.timeline_svg(9.5, spans, uris, [(320, 180)] * 3, lanes, [(0.0, 0.4), (1.0, 0.8)], coverage)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = {t.text for t in root.iter(f"{ns}text")}
    assert {"transcript", "cuts", "shots", "pace", "Grüße", "<&>", "seconds", "speech covered"} <= texts
    rows = report_svg._Rows(9.5)
    for index, (a, b) in enumerate(spans, start=1):
        image = next(e for e in root.iter(f"{ns}image") if e.get("id") == f"keyframe-{index}")
        x, w = float(image.get("x")), float(image.get("width"))
        assert rows.x(a) <= x and x + w <= rows.x(b) + 0.1
    assert report_svg.tick_step(9.5) == 1 and report_svg.tick_step(49.0) == 5 and report_svg.tick_step(600.0) == 60
    ET.fromstring(report_svg.score_svg({"score": 80.0, "speech_score": 75.0}))
