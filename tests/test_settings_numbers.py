"""Numeric settings: nan, inf, negative, zero and words are refused with one sentence naming the variable."""

from __future__ import annotations

import pytest

from tiktok_assets.config import load_settings

NUMERIC = [
    "TIKTOK_ASSETS_SAMPLE_FPS",
    "TIKTOK_ASSETS_FRAME_LONG_SIDE",
    "TIKTOK_ASSETS_LOWRES_SHORT_SIDE",
    "TIKTOK_ASSETS_MAX_DURATION_S",
    "TIKTOK_ASSETS_MAX_FILE_MB",
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "0", "ten", "1e999"])
@pytest.mark.parametrize("name", NUMERIC)
def test_bad_numeric_setting_fails_with_one_sentence_naming_it(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv("TIKTOK_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name) as info:
        load_settings()
    assert "\n" not in str(info.value)


def test_whole_numbers_for_sizes_and_good_values_load(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOK_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("TIKTOK_ASSETS_FRAME_LONG_SIDE", "320.5")
    with pytest.raises(ValueError, match="TIKTOK_ASSETS_FRAME_LONG_SIDE must be a whole number"):
        load_settings()
    for name, value in [("TIKTOK_ASSETS_FRAME_LONG_SIDE", "320"), ("TIKTOK_ASSETS_LOWRES_SHORT_SIDE", "48"),
                        ("TIKTOK_ASSETS_MAX_DURATION_S", "90.5"), ("TIKTOK_ASSETS_MAX_FILE_MB", "0.5"),
                        ("TIKTOK_ASSETS_SAMPLE_FPS", "4")]:
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert (settings.frame_long_side, settings.lowres_short_side) == (320, 48)
    assert settings.max_duration_s == 90.5 and settings.max_file_bytes == 512 * 1024
    assert settings.sample_fps == 4.0
