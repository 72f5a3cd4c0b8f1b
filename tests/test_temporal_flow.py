"""temporal_flow on generated clips built to have each feature, with the real upstream analyzers.

Clip ``loop`` (6 s): skimage's astronaut 0-1.5 s, cat 1.5-3.5 s, coffee 3.5-5.2 s, astronaut
again to the end (the last second replays the first), English speech from 0.1 s. Clip ``late``
(8 s): a pan over the rocket photo 0-3 s, a cut to the cat, held to the end; the call to action
"follow me for more recipes" spoken from 4.2 s, silence after ~5.9 s. cut_analysis,
camera_analysis, audio_analysis and speech_transcription (faster-whisper) really run on them.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pytest
from helpers import analyze, encode_frames, make_media
from skimage import data

from tiktok_assets.analyzers import AnalyzerContext, get_spec, run_analyzer, temporal_flow
from tiktok_assets.sample_video import speak, voiced_span

W, H, FPS, RATE = 180, 320, 30, 16_000
UPSTREAM = ("cut_analysis", "camera_analysis", "speech_transcription", "audio_analysis")


def fit(img: np.ndarray) -> np.ndarray:
    """``img`` scaled to cover W x H and centre-cropped (RGB uint8)."""
    img = img[..., :3] if img.ndim == 3 else np.repeat(img[..., None], 3, 2)
    ih, iw = img.shape[:2]
    s = max(W / iw, H / ih)
    r = cv2.resize(img, (int(iw * s + 1), int(ih * s + 1)), interpolation=cv2.INTER_AREA)
    y, x = (r.shape[0] - H) // 2, (r.shape[1] - W) // 2
    return np.ascontiguousarray(r[y : y + H, x : x + W])


def voice(text: str, at: float, duration: float) -> tuple[np.ndarray, float]:
    """``duration`` s of audio with ``text`` spoken (espeak-ng, en-us) from ``at``; and its end."""
    said = speak(text, "en-us")
    a, b = voiced_span(said)
    said = said[int(a * RATE) : int(b * RATE)]
    out = np.zeros(int(duration * RATE), np.float32)
    out[int(at * RATE) : int(at * RATE) + said.size] = 0.8 * said
    return out, at + said.size / RATE


@pytest.fixture(scope="module")
def clips(tmp_path_factory, settings):
    tmp = tmp_path_factory.mktemp("flow")
    astronaut, cat, coffee = fit(data.astronaut()), fit(data.chelsea()), fit(data.coffee())
    rocket = cv2.resize(data.rocket(), (W * 3, H), interpolation=cv2.INTER_AREA)
    built = {
        "loop": ([astronaut] * 45 + [cat] * 60 + [coffee] * 51 + [astronaut] * 24,
                 voice("today I show you my favourite pasta recipe", 0.1, 6.0)),
        "late": ([np.ascontiguousarray(rocket[:, 4 * i : 4 * i + W]) for i in range(90)] + [cat] * 150,
                 voice("follow me for more recipes", 4.2, 8.0)),
    }
    out = {}
    for name, (frames, (audio, speech_end)) in built.items():
        media = make_media(encode_frames(tmp / f"{name}.mp4", frames, FPS, audio=audio), tmp / "media", name)
        inputs = {}
        for upstream in UPSTREAM:
            _, run = analyze(upstream, media, settings, inputs)
            inputs[upstream] = run.table
        out[name] = (media, inputs, speech_end)
    return out


def flow(clip, settings, extra=None):
    media, inputs, _ = clip
    rows, run = analyze("temporal_flow", media, settings, {**inputs, **(extra or {})})
    by_level: dict[str, list[dict]] = {}
    for row in rows:
        by_level.setdefault(row["level"], []).append(row)
    return by_level, run


def test_hook_pacing_phases_and_loop_of_a_looping_clip(clips, settings):
    levels, run = flow(clips["loop"], settings)
    hook = levels["hook"][0]
    assert hook["end_s"] == pytest.approx(2.0)  # a third of 6 s
    assert hook["hook_elements"] == ["cut", "speech"]  # cut at 1.5 s, speech from 0.1 s, camera static
    assert hook["first_cut_s"] == pytest.approx(1.5, abs=0.07)
    assert hook["first_speech_s"] == pytest.approx(0.1, abs=0.3)
    seconds = levels["second"]
    assert [r["cuts"] for r in seconds] == [0, 1, 0, 1, 0, 1]  # cuts at 1.5, 3.5 and 5.2 s
    assert all(r["motion_energy"] < 0.02 for r in seconds)
    # speech (0.1 to ~2.7 s) fills the first seconds and none of the last three
    assert seconds[0]["speech_density"] > 0.6 and seconds[1]["speech_density"] > 0.6
    assert all(r["speech_density"] == 0 and r["words"] == 0 for r in seconds[3:])
    assert all(seconds[i]["audio_rms_db"] > seconds[4]["audio_rms_db"] + 30 for i in (0, 1))
    # no call to action, no quiet end (the last cut at 5.2 s is new content): hook, setup, main;
    # the setup/main split (2 + 4/4 = 3.0 s) snaps to the cut at 3.5 s
    phases = [(r["phase"], r["start_s"], r["end_s"]) for r in levels["phase"]]
    assert [p[0] for p in phases] == ["hook", "setup", "main"]
    assert phases[1][2] == pytest.approx(3.5, abs=0.07) and phases[-1][2] == pytest.approx(6.0, abs=0.05)
    loop = levels["loop"][0]
    assert loop["is_loop"] is True and loop["loop_similarity"] > 0.95
    assert run.metadata["is_loop"] is True and "text_overlay" in run.metadata["missing_tables"]
    assert run.metadata["examined_s"] == pytest.approx(6.0, abs=0.05)


def test_late_speech_call_to_action_outro_and_no_loop(clips, settings):
    levels, run = flow(clips["late"], settings)
    _, _, speech_end = clips["late"]
    hook = levels["hook"][0]
    assert hook["hook_elements"] == ["motion"]  # the pan; the cut at 3.0 s is after the hook (2.67 s)
    assert hook["first_speech_s"] == pytest.approx(4.2, abs=0.3)
    seconds = levels["second"]
    assert all(r["motion_energy"] > 0.3 for r in seconds[:3]) and all(r["motion_energy"] < 0.02 for r in seconds[4:])
    assert [r["words"] for r in seconds[:4]] == [0, 0, 0, 0] and sum(r["words"] for r in seconds) == 5
    phases = {r["phase"]: (r["start_s"], r["end_s"]) for r in levels["phase"]}
    assert list(phases) == ["hook", "main", "call_to_action", "outro"]
    assert phases["call_to_action"][0] == pytest.approx(4.2, abs=0.3)
    assert phases["outro"][0] == pytest.approx(speech_end, abs=0.4) and phases["outro"][1] == pytest.approx(8.0)
    assert [r["phase"] for r in seconds] == ["hook"] * 3 + ["main", "call_to_action", "call_to_action"] + ["outro"] * 2
    loop = levels["loop"][0]
    assert loop["is_loop"] is False and loop["loop_similarity"] < 0.5  # the cat is not the rocket


def test_text_overlay_table_when_present(clips, settings):
    """text_overlay's table shape (start_s, end_s, text), written here as input data: it adds text
    density, the hook's text and a CTA shown on screen (German, umlauts)."""
    media, _, _ = clips["late"]
    texts = pa.table({"video_id": [media.video_id] * 2, "start_s": [0.2, 6.0], "end_s": [2.0, 7.5],
                      "text": ["Drei Tipps für Anfänger", "FOLGT MIR für Teil 2"]})
    levels, run = flow(clips["late"], settings, {"text_overlay": texts})
    assert levels["hook"][0]["hook_elements"] == ["motion", "text"]
    assert [r["text_density"] for r in levels["second"]] == [0.8, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.5]
    phases = [(r["phase"], r["end_s"]) for r in levels["phase"]]
    assert phases[-1] == ("call_to_action", 8.0)  # the shown CTA runs to 7.5 s: no outro left
    assert "text_overlay" not in run.metadata.get("missing_tables", "")


def test_static_clip_is_not_a_loop_and_without_inputs_claims_nothing(tmp_path, settings):
    frames = [fit(data.coffee())] * 60
    media = make_media(encode_frames(tmp_path / "still.mp4", frames, FPS), tmp_path / "media", "still")
    run = run_analyzer(get_spec("temporal_flow"), media, AnalyzerContext(video_id="still", settings=settings))
    rows = run.table.to_pylist()
    loop = next(r for r in rows if r["level"] == "loop")
    assert loop["loop_similarity"] == pytest.approx(1.0, abs=0.01) and loop["is_loop"] is False
    assert "does not change" in loop["detail"]
    assert run.examined == [] and "no input table" in run.metadata["note"]


def test_cta_phrases_and_optional_inputs():
    assert temporal_flow.is_cta("Folgt mir für mehr!") and temporal_flow.is_cta("LINK IN MEINER BIO")
    assert temporal_flow.is_cta("Abonnieren nicht vergessen") and temporal_flow.is_cta("Follow for part two")
    assert not temporal_flow.is_cta("Wir folgen dem Rezept") and not temporal_flow.is_cta("Tomaten schneiden")
    assert temporal_flow.fold("GRÜSSE") == temporal_flow.fold("Grüße") == "gruesse"
    spec = get_spec("temporal_flow")
    # optional inputs are deps only when such an analyzer is registered
    assert spec.depends_on[:4] == temporal_flow.REQUIRED
    assert set(spec.depends_on[4:]) <= set(spec.optional_inputs)
