"""qwen2_vl_temporal: windows, prompts, generation settings, loading paths, and the answer parser.

The model here is a tiny *randomly initialised* Qwen2-VL built from a config with a locally trained
tokenizer (``tiktok_assets.model_registry.tiny_vlm``): these tests check plumbing (windows cover the
video, the frames and the anti-repetition settings reach ``generate``, the flash-attention fall-back,
the 8-bit load, the reasons a model is unavailable), never the quality of a description. The parser
and the repetition figures are tested on known strings.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import shutil

import numpy as np
import pytest
from helpers import encode_frames, make_media

from tiktok_assets.analyzers import AnalyzerContext, _vlm, get_spec, run_analyzer
from tiktok_assets.analyzers import qwen2_vl_temporal as vlm_analyzer
from tiktok_assets.media_access import merge_spans
from tiktok_assets.model_registry import ModelLoader, ModelUnavailable, ResolvedModel
from tiktok_assets.model_registry.resource import FAKE_BUILDERS, FakeModelLoader
from tiktok_assets.model_registry.tiny_vlm import tiny_qwen2_vl

MAX_PIXELS = 56 * 56 * 2  # 4 x 2 merged tokens per frame pair: a tiny prompt


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl") / "model")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """5 s at 10 fps, 64x112 portrait, grey level stepping every second (sampled frames at 2 fps)."""
    folder = tmp_path_factory.mktemp("vlm-clip")
    frames = [np.full((112, 64, 3), 30 + 40 * (i // 10), np.uint8) for i in range(50)]
    return make_media(encode_frames(folder / "steps.mp4", frames, fps=10), folder, "steps")


@pytest.fixture
def vlm_settings(settings):
    return dataclasses.replace(settings, vlm_max_pixels=MAX_PIXELS, vlm_max_new_tokens=12, vlm_window_s=2.0,
                               vlm_frames_per_window=4)


def spy(model) -> tuple[list, list]:
    """Record the prompts (with frame counts and pixel budget) and the kwargs of ``model.generate``."""
    prompts, calls = [], []
    real_batch, real_model_generate = model.generate_batch, model.model.generate

    def spy_batch(texts, videos, fps, max_pixels, generation):
        for i, text in enumerate(texts):
            prompts.append((text, None if videos is None else len(videos[i]), max_pixels))
        return real_batch(texts, videos, fps, max_pixels, generation)

    def spy_model_generate(**kwargs):
        calls.append(kwargs)
        return real_model_generate(**kwargs)

    model.generate_batch, model.model.generate = spy_batch, spy_model_generate
    return prompts, calls


def test_windows_frames_and_generation_settings_reach_generate(clip, vlm_settings, tmp_path):
    """Plumbing on the real code path: the tiny random model's answers are noise."""
    settings = dataclasses.replace(vlm_settings, vlm_german=True)
    loader = FakeModelLoader(settings, tmp_path, {"qwen2-vl-2b": tiny_qwen2_vl})
    model = loader.load("qwen2-vl-2b", "cpu")
    prompts, calls = spy(model)
    context = AnalyzerContext(video_id="steps", settings=settings, models=loader)
    run = run_analyzer(get_spec("qwen2_vl_temporal"), clip, context)
    rows = run.table.to_pylist()

    # windows cover the 5 s video: 0-2, 2-4, 4-5 (a 1 s rest is more than a quarter window)
    assert clip.duration_s == pytest.approx(5.0, abs=0.05)
    assert [(r["start_s"], r["end_s"]) for r in rows] == [(0.0, 2.0), (2.0, 4.0), (4.0, pytest.approx(5.0, abs=0.05))]
    assert [r["window_index"] for r in rows] == [0, 1, 2]
    assert [r["frames"] for r in rows] == [4, 4, 2]
    for row in rows:
        assert all(row["start_s"] <= t < row["end_s"] for t in row["frame_times"])
        assert row["new_tokens"] <= 12 and row["generate_s"] > 0
    assert loader.counts["qwen2-vl-2b"] == 1

    # one video call per window plus one German (text-only) call per described window
    video_calls = [c for c in calls if "pixel_values_videos" in c]
    assert len(video_calls) == 3
    for call, frames in zip(video_calls, (4, 4, 2)):
        # frame pairs x (112x56 pixels -> 8x4 patches of 14 px)
        assert call["video_grid_thw"].tolist() == [[frames // 2, 8, 4]]
        assert "mm_token_type_ids" in call
    for call in calls:
        assert call["do_sample"] is False and call["num_beams"] == 1
        assert call["repetition_penalty"] == pytest.approx(1.05)
        assert 4 <= call["no_repeat_ngram_size"] <= 6
        assert call["max_new_tokens"] == 12
    german_calls = [p for p in prompts if p[1] is None]
    assert len(german_calls) == sum(1 for r in rows if r["description"])
    assert all(r["description_de"] is not None for r in rows if r["description"])

    # the previous window's description is the next prompt's context
    window_prompts = [p for p, frames, _ in prompts if frames is not None]
    assert "previous part" not in window_prompts[0]
    for prompt, before in zip(window_prompts[1:], rows):
        if before["description"]:
            assert before["description"] in prompt and "what changed" in prompt
    assert all(max_pixels == MAX_PIXELS for _, _, max_pixels in prompts)

    # coverage: the windows that got a description that does not repeat the previous one
    expected = [(r["start_s"], r["end_s"]) for r in rows if r["description"] and not r["repeats_previous"]]
    assert run.claimed == merge_spans(expected, clip.duration_s)
    meta = run.metadata
    assert meta["windows"] == 3 and meta["precision"] == "fp32" and meta["attention"] == "sdpa"
    assert meta["verbatim_repeat_share"] == pytest.approx(sum(r["repeats_previous"] for r in rows) / 3, abs=1e-4)
    assert meta["distinct_3gram_ratio"] == vlm_analyzer.distinct_ngram_ratio([r["description"] for r in rows])
    assert "no_repeat_ngram_size=5" in meta["generation"]


def test_batched_windows_match_one_by_one(clip, vlm_settings, tmp_path):
    """Left padding: a batch of a 4-frame and a 2-frame window answers as the two calls alone."""
    loader = FakeModelLoader(vlm_settings, tmp_path, {"qwen2-vl-2b": FAKE_BUILDERS["qwen2-vl-2b"]})
    model = loader.load("qwen2-vl-2b", "cpu")
    frames = np.asarray(clip.frames)
    generation = vlm_analyzer.generation_settings(8)
    videos = [list(frames[0:4]), list(frames[8:10])]
    texts = [vlm_analyzer.build_prompt(None, (0.0, 2.0), None),
             vlm_analyzer.build_prompt(None, (4.0, 5.0), (2.0, 4.0, "Eine Person läuft durch den Raum."))]
    alone = [model.generate(t, v, 2.0, MAX_PIXELS, generation) for t, v in zip(texts, videos)]
    together = model.generate_batch(texts, videos, [2.0, 2.0], MAX_PIXELS, generation)
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.tokens for g in together] == [g.tokens for g in alone]
    assert [g.prompt_tokens for g in together] == [g.prompt_tokens for g in alone]
    assert alone[0].prompt_tokens != alone[1].prompt_tokens  # the batch really needed padding

    # through the analyzer: batch size 3 -> windows 0-2 in one call, sharing "no previous description"
    prompts, calls = spy(model)
    context = AnalyzerContext(video_id="steps", settings=vlm_settings, models=loader, batch_size=3)
    run = run_analyzer(get_spec("qwen2_vl_temporal"), clip, context)
    assert [c["input_ids"].shape[0] for c in calls] == [3]
    assert not any("previous part" in p for p, _, _ in prompts)
    assert run.metadata["batch_windows"] == 3 and run.table.num_rows == 3


def test_fewer_frames_per_window_and_a_short_last_window(tmp_path, vlm_settings):
    assert vlm_analyzer.windows(5.0, 2.0) == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    assert vlm_analyzer.windows(4.3, 2.0) == [(0.0, 2.0), (2.0, 4.3)]  # 0.3 s joins the window before
    assert vlm_analyzer.windows(1.2, 2.0) == [(0.0, 1.2)]
    times = np.arange(0, 5, 0.5)
    assert vlm_analyzer.pick_frames(times, 0.0, 2.0, 2).tolist() == [0, 3]
    assert vlm_analyzer.pick_frames(times, 2.0, 4.0, 4).tolist() == [4, 5, 6, 7]
    assert vlm_analyzer.pick_frames(np.array([0.0, 3.0]), 1.0, 2.0, 4).tolist() == [0]  # none inside: nearest


def test_flash_attention_falls_back_to_sdpa(tiny_folder, monkeypatch, caplog, tmp_path):
    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash_attn is installed here: the fall-back is not exercised")
    monkeypatch.setenv("TIKTOK_ASSETS_VLM_ATTENTION", "flash_attention_2")
    with caplog.at_level(logging.WARNING, logger="tiktok_assets"):
        model = _vlm.load_model(ResolvedModel("tiny", str(tiny_folder), "local path"), "cpu", 0, tmp_path)
    assert model.attention == "sdpa"
    assert model.model.config._attn_implementation == "sdpa"
    assert any("flash_attention_2 could not be used" in r.getMessage() for r in caplog.records)


def test_8bit_load_keeps_the_vision_tower_unquantized(tiny_folder, monkeypatch, tmp_path):
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install raises more than ImportError
        pytest.skip(f"bitsandbytes cannot be imported here ({type(exc).__name__})")
    monkeypatch.setenv("TIKTOK_ASSETS_VLM_PRECISION", "int8")
    model = _vlm.load_model(ResolvedModel("tiny", str(tiny_folder), "local path"), "cpu", 0, tmp_path)
    kinds = {name: type(module).__name__ for name, module in model.model.named_modules()}
    quantized = [n for n, k in kinds.items() if k == "Linear8bitLt"]
    assert model.precision == "int8"
    assert quantized and all(n.startswith("model.language_model.") for n in quantized)
    assert any(n.startswith("model.visual.") and k == "Linear" for n, k in kinds.items())
    assert kinds["lm_head"] == "Linear"
    frames = [np.full((112, 64, 3), 90, np.uint8)] * 2
    out = model.generate("Describe.", frames, 2.0, MAX_PIXELS, vlm_analyzer.generation_settings(4))
    assert 1 <= out.tokens <= 4


def test_unavailable_model_names_the_setting(settings, clip, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = dataclasses.replace(settings, model_store=tmp_path / "store")
    # the default hub id, not cached, hub off: the reason, at once
    loader = ModelLoader(store)
    with pytest.raises(ModelUnavailable, match="TIKTOK_ASSETS_VLM_MODEL"):
        loader.load("qwen2-vl-2b", "cpu")
    context = AnalyzerContext(video_id="steps", settings=store, models=loader)
    with pytest.raises(ModelUnavailable, match="not in the local hub cache"):
        run_analyzer(get_spec("qwen2_vl_temporal"), clip, context)
    # a folder that does not exist
    missing = ModelLoader(dataclasses.replace(store, vlm_model=str(tmp_path / "no" / "such" / "model")))
    with pytest.raises(ModelUnavailable, match="TIKTOK_ASSETS_VLM_MODEL"):
        missing.load("qwen2-vl-2b", "cpu")
    # nothing provided to the fake loader either
    with pytest.raises(ModelUnavailable):
        FakeModelLoader(settings, tmp_path / "fake").load("qwen2-vl-2b", "cpu")


def test_hub_id_is_found_in_the_model_store_cache_offline(tiny_folder, settings, monkeypatch, tmp_path):
    """A hub id resolves to the hub cache under the model store (layout of huggingface_hub) without network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "store" / "huggingface" / "models--tiny--qwen2-vl"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    shutil.copytree(tiny_folder, repo / "snapshots" / ("0" * 40))
    loader = ModelLoader(dataclasses.replace(settings, model_store=tmp_path / "store", vlm_model="tiny/qwen2-vl"))
    model = loader.load("qwen2-vl-2b", "cpu")
    assert model.resolved.origin == "hub" and model.resolved.path == "tiny/qwen2-vl"
    assert model.precision == "fp32" and model.parameters < 1_000_000


def test_large_model_on_the_cpu_is_refused_unless_forced(tiny_folder, monkeypatch, tmp_path):
    """A 2B-sized config (no weights: the size is counted on the meta device) on the CPU."""
    from transformers import Qwen2VLConfig

    folder = tmp_path / "big"
    shutil.copytree(tiny_folder, folder)
    (folder / "model.safetensors").unlink()
    Qwen2VLConfig(text_config={"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                               "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936},
                  vision_config={"hidden_size": 1536}).save_pretrained(folder)
    resolved = ResolvedModel("big", str(folder), "local path")
    with pytest.raises(ModelUnavailable, match="too slow for the CPU at this size.*TIKTOK_ASSETS_VLM_ALLOW_CPU"):
        _vlm.load_model(resolved, "cpu", 0, tmp_path)
    monkeypatch.setenv("TIKTOK_ASSETS_VLM_ALLOW_CPU", "1")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):  # forced: it tries (and has no weights)
        _vlm.load_model(resolved, "cpu", 0, tmp_path)


def test_constrained_answers_are_parsed():
    answer = ("DESCRIPTION: A woman in a red jacket talks to the camera in a kitchen.\n"
              "PEOPLE: 1\nSETTING: Indoor (kitchen)\nACTIVITY: talking\n"
              "OBJECTS: cup, kettle and a phone\nTEXT: yes")
    fields = vlm_analyzer.parse_answer(answer)
    assert fields == {"description": "A woman in a red jacket talks to the camera in a kitchen.", "people_count": 1,
                      "setting": "indoor", "activity": "talking", "objects": ["cup", "kettle", "a phone"],
                      "text_visible": True, "parsed": True}
    run_on = vlm_analyzer.parse_answer("description: Zwei Männer laufen über die Straße. people: two "
                                       "setting: outdoor objects: Fahrräder; Bäume text: nein")
    assert run_on["description"] == "Zwei Männer laufen über die Straße."
    assert run_on["people_count"] == 2 and run_on["setting"] == "outdoor"
    assert run_on["objects"] == ["fahrräder", "bäume"] and run_on["text_visible"] is False
    assert run_on["activity"] is None and run_on["parsed"] is True
    free = vlm_analyzer.parse_answer("A dog runs on a beach.")
    assert free["description"] == "A dog runs on a beach." and free["parsed"] is False
    assert free["people_count"] is None and free["objects"] is None


def test_repetition_figures_and_the_prompt():
    same = "A man talks to the camera."
    assert vlm_analyzer.distinct_ngram_ratio([same, same]) == 0.5
    assert vlm_analyzer.distinct_ngram_ratio(["a b c d", "e f g h"]) == 1.0
    assert vlm_analyzer.distinct_ngram_ratio(["zu kurz"]) is None
    assert vlm_analyzer.normalised("Größe, ÜBUNG!") == "größe übung"
    rows = [{"start_s": 0.0, "end_s": 2.0, "description": same, "repeats_previous": False},
            {"start_s": 2.0, "end_s": 4.0, "description": same, "repeats_previous": True},
            {"start_s": 4.0, "end_s": 6.0, "description": None, "repeats_previous": False},
            {"start_s": 6.0, "end_s": 7.0, "description": "He leaves.", "repeats_previous": False}]
    assert vlm_analyzer.examined_windows(rows) == [(0.0, 2.0), (6.0, 7.0)]
    assert vlm_analyzer.repeats(same.upper() + "!", same) and not vlm_analyzer.repeats("", "")
    prompt = vlm_analyzer.build_prompt(None, (2.0, 4.0), (0.0, 2.0, same))
    assert prompt.startswith('The previous part (0-2 s) was described as: "A man talks to the camera."')
    assert "2-second part" in prompt and prompt.endswith("TEXT: <yes or no: is text shown on screen>")
    assert vlm_analyzer.build_prompt("Was passiert in {seconds} s?", (0.0, 3.0), None).startswith("Was passiert in 3 s?")
