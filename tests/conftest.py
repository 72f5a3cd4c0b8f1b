"""Shared fixtures: an isolated data root per test session and the generated sample video."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiktok_assets.config import load_settings
from tiktok_assets.media import MediaCache, build_media_cache
from tiktok_assets.sample_video import generate_sample_video


@pytest.fixture(scope="session")
def home(tmp_path_factory, monkeypatch_session) -> Path:
    root = tmp_path_factory.mktemp("home")
    monkeypatch_session.setenv("TIKTOK_ASSETS_HOME", str(root))
    monkeypatch_session.setenv("TIKTOK_ASSETS_ALLOW_PRIVATE_URLS", "1")
    monkeypatch_session.setenv("DAGSTER_HOME", str(root / "dagster"))
    (root / "dagster").mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="module")
def module_home(home, tmp_path_factory) -> Path:
    """A data root of the test module's own, for tests that look at what ran on a video (runs,
    staleness, scores) and must not see what other modules ran on the same sample."""
    patch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("module-home")
    patch.setenv("TIKTOK_ASSETS_HOME", str(root))
    patch.setenv("DAGSTER_HOME", str(root / "dagster"))
    yield root
    patch.undo()


@pytest.fixture(scope="session")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def settings(home):
    return load_settings()


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """The demo's sample video (360x640, ~11 s) and its ground truth."""
    folder = tmp_path_factory.mktemp("sample")
    truth = generate_sample_video(folder / "sample.mp4")
    return truth


@pytest.fixture(scope="session")
def sample_media(sample, tmp_path_factory) -> MediaCache:
    out = tmp_path_factory.mktemp("media") / "sample"
    build_media_cache(Path(sample.path), out, "sample", 2.0, 640, 96)
    return MediaCache(out)
