"""Media-cache retention: evict once every analyzer is up to date, never under a reader, rebuild on
demand with identical media, and a clear sentence (with nothing lost) when the source is gone.

The analyzer registry is narrowed to three cheap real analyzers (cut_analysis, color_analysis that
reads its table, sound_effects on the audio), so "every analyzer" is those three here.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from test_media_contract import mux

from tiktok_assets import analyzers, catalog, media_store, retention, steps
from tiktok_assets.config import load_settings
from tiktok_assets.ingest import register_source
from tiktok_assets.media import MediaCache, MediaError, Orientation, build_media_cache

CHEAP = ("cut_analysis", "color_analysis", "sound_effects")


@pytest.fixture()
def cheap_registry(monkeypatch):
    specs = {name: spec for name, spec in analyzers.all_specs().items() if name in CHEAP}
    monkeypatch.setattr(analyzers, "all_specs", lambda: specs)
    monkeypatch.setattr(steps, "all_specs", lambda: specs)
    return specs


def _add(settings, video: Path) -> str:
    key = register_source(settings, str(video))
    steps.ingest_video(settings, key)
    steps.decode_media(settings, key)
    return key


def _analyze(settings, key: str, names) -> None:
    for name in names:
        steps.run_analyzer_step(settings, analyzers.all_specs()[name], key, "cpu", 1)


def _media_digest(settings, key: str) -> dict[str, str]:
    with MediaCache(settings.media_dir / key) as media:
        folder = media.directory
        return {"version": folder.name, **{name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                                          for name in ("frames.u8", "lowres.u8", "audio.wav", "frame_times.npy",
                                                       "lowres_times.npy")}}


def _warehouse(settings, key: str) -> dict[str, list[dict]]:
    store = catalog.warehouse(settings)
    tables = {}
    for name in store.tables():
        table = store.read(name, key)
        if table is not None:
            tables[name] = table.to_pylist()
    return tables


def _tiny_clip(path: Path, seconds: float = 2.0) -> Path:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=64x112:rate=15:d={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def test_evicted_once_every_analyzer_is_up_to_date_then_rebuilt_identically(module_home, sample, cheap_registry):
    settings = load_settings()
    assert settings.media_retention == "evict"  # the default
    key = _add(settings, Path(sample.path))
    media = _media_digest(settings, key)
    cache_bytes = media_store.disk_usage(media_store.versions_dir(settings.media_dir / key))
    assert cache_bytes > 5e6  # 11 s of 360x640: sampled frames, every frame small, audio

    _analyze(settings, key, ["cut_analysis"])
    steps.score_reconstruction(settings, key)  # two analyzers never ran: the cache stays
    assert (settings.media_dir / key / "meta.json").is_file()
    kept = retention.evict_media_cache(settings, key)
    assert not kept.evicted and kept.reason.startswith("kept: 2 analyzer(s) not up to date")
    assert "color_analysis" in kept.reason and "sound_effects" in kept.reason

    _analyze(settings, key, ["color_analysis", "sound_effects"])
    before = _warehouse(settings, key)
    steps.score_reconstruction(settings, key)  # every analyzer up to date now: evicted
    assert not (settings.media_dir / key).exists()
    assert media_store.disk_usage(settings.media_dir) < 64 * 1024
    after = _warehouse(settings, key)
    assert after.keys() == before.keys() and {"videos", "analyzer_runs", *CHEAP} <= after.keys()
    for name in before.keys() - {"reconstruction_scores", "coverage_seconds"}:  # the scores were rewritten
        assert after[name] == before[name], name
    assert {r["analyzer"]: r["status"] for r in after["analyzer_runs"]} == dict.fromkeys(CHEAP, "success")
    assert after["videos"][0]["duration_s"] == pytest.approx(sample.duration_s, abs=0.1)
    assert retention.analyzed_duration_s(settings, key) == pytest.approx(sample.duration_s, abs=0.1)

    # an analyzer run later decodes the cache again: same version, byte-identical media, same cuts
    cuts = [r["start_s"] for r in after["cut_analysis"] if r["kind"] == "hard_cut"]
    assert len(cuts) == len(sample.cuts_s)
    _analyze(settings, key, ["cut_analysis"])
    assert _media_digest(settings, key) == media
    again = catalog.warehouse(settings).read("cut_analysis", key).to_pylist()
    assert [r["start_s"] for r in again if r["kind"] == "hard_cut"] == cuts
    assert retention.evict_media_cache(settings, key).evicted  # up to date again


def test_eviction_never_deletes_a_version_a_reader_holds(module_home, tmp_path):
    settings = load_settings()
    key = register_source(settings, str(_tiny_clip(tmp_path / "pinned.mp4")))
    steps.ingest_video(settings, key)
    with retention.ensure_media_cache(settings, key) as reader:  # decodes: nothing was there
        frames = np.array(reader.frames)
        result = retention.evict_media_cache(settings, key, force=True)
        assert not result.evicted and result.reason.startswith(f"kept version(s) {reader.directory.name}")
        assert (settings.media_dir / key / "meta.json").is_file()
        assert np.array_equal(np.array(reader.frames), frames) and reader.lowres.shape[0] == 30
    result = retention.evict_media_cache(settings, key, force=True)
    assert result.evicted and result.freed_bytes > frames.nbytes
    assert not (settings.media_dir / key).exists() and not reader.directory.exists()
    assert retention.evict_media_cache(settings, key).reason == "nothing to evict: the video has no media cache"


def test_missing_source_gives_one_sentence_and_loses_nothing(module_home, tmp_path, cheap_registry, monkeypatch):
    for name in ("color_analysis", "sound_effects"):
        monkeypatch.delitem(cheap_registry, name)
    settings = load_settings()
    key = _add(settings, _tiny_clip(tmp_path / "gone.mp4"))
    _analyze(settings, key, ["cut_analysis"])
    steps.score_reconstruction(settings, key)
    assert not (settings.media_dir / key).exists()  # evicted
    stored = _warehouse(settings, key)
    for path in (settings.videos_dir / key).iterdir():
        path.unlink()
    with pytest.raises(MediaError) as err:
        _analyze(settings, key, ["cut_analysis"])
    message = str(err.value)
    assert message.startswith(f"the media cache of video {key} cannot be rebuilt because its source file is missing")
    assert "\n" not in message and message.count(". ") == 0
    assert _warehouse(settings, key) == stored  # no failed run recorded over the successful one
    assert [p.name for p in media_store.versions_dir(settings.media_dir / key).iterdir()] == []


def test_keep_policy_and_a_bad_policy_value(module_home, tmp_path, monkeypatch, cheap_registry):
    monkeypatch.setenv("TIKTOK_ASSETS_MEDIA_RETENTION", "KEEP")
    settings = load_settings()
    assert settings.media_retention == "keep"
    key = register_source(settings, str(_tiny_clip(tmp_path / "kept.mp4")))
    steps.ingest_video(settings, key)
    steps.decode_media(settings, key)
    assert retention.evict_if_done(settings, key) is None
    assert (settings.media_dir / key / "meta.json").is_file()
    evictions = retention.evict_media_caches(settings, force=True)  # the explicit way, whatever the policy
    assert [e.video_id for e in evictions if e.evicted] == [key] and not (settings.media_dir / key).exists()
    monkeypatch.setenv("TIKTOK_ASSETS_MEDIA_RETENTION", "sometimes")
    with pytest.raises(ValueError, match=r"^TIKTOK_ASSETS_MEDIA_RETENTION must be one of evict, keep, got 'sometimes'$"):
        load_settings()


def test_batched_scaling_gives_exactly_the_per_frame_pixels(tmp_path):
    """The media step scales with one reused context and turns frames upright in batches: its bytes
    equal converting each frame on its own (the former way) for a rotated, mirrored, odd-sized clip."""
    rng = np.random.default_rng(7)
    pictures = [rng.integers(0, 256, (58, 90, 3), dtype=np.uint8) for _ in range(24)]
    clip = mux(tmp_path / "rotated.mp4", pictures, fps=12, rotation=90, hflip=True)
    meta = build_media_cache(clip, tmp_path / "cache" / "r", "r", 2.0, 64, 16)
    assert (meta.rotation, meta.mirrored, meta.width, meta.height) == (90, True, 58, 90)
    orient = Orientation.from_rotation(meta.rotation, meta.mirrored)
    expected: dict[str, list[np.ndarray]] = {"lowres": [], "frames": []}
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            for name, shape in (("lowres", meta.lowres_shape), ("frames", meta.frame_shape)):
                if name == "lowres" or i % 6 == 0:  # 12 fps sampled at 2 fps
                    sw, sh = orient.stored_size(shape[2], shape[1])
                    expected[name].append(orient.apply(frame.to_ndarray(width=sw, height=sh, format="rgb24")))
    with MediaCache(tmp_path / "cache" / "r") as media:
        assert media.lowres.shape[0] == 24 and media.frames.shape[0] == 4
        assert np.array_equal(media.lowres, np.stack(expected["lowres"]))
        assert np.array_equal(media.frames, np.stack(expected["frames"]))


def _ensure_in_process(home: str, key: str, results) -> None:
    """A process of its own asking for the cache (what a step of the multiprocess executor does)."""
    import os

    os.environ["TIKTOK_ASSETS_HOME"] = home
    messages: list[str] = []
    with retention.ensure_media_cache(load_settings(), key, messages.append) as media:
        results.put((media.directory.name, int(media.lowres.shape[0]), any("decoding" in m for m in messages)))


def test_two_processes_needing_an_evicted_cache_decode_it_once(module_home, tmp_path):
    import multiprocessing

    settings = load_settings()
    key = register_source(settings, str(_tiny_clip(tmp_path / "shared.mp4")))
    steps.ingest_video(settings, key)
    version = steps.decode_media(settings, key).version
    assert retention.evict_media_cache(settings, key, force=True).evicted
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_ensure_in_process, args=(str(settings.home), key, results)) for _ in range(2)]
    for p in workers:
        p.start()
    outcome = sorted(results.get(timeout=120) for _ in workers)
    for p in workers:
        p.join()
    assert outcome == [(version, 30, False), (version, 30, True)]  # one decoded, the other waited and read it
