"""Decode once: sampled frames, full-rate low-res stream, 16 kHz audio; bad input fails clearly."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import encode_frames, make_media

from tiktok_assets.media import MediaCache, MediaError, build_media_cache, probe


def test_sample_cache_has_frames_lowres_and_audio(sample, sample_media):
    meta = sample_media.meta
    assert abs(meta.duration_s - sample.duration_s) < 0.1
    assert meta.width == 360 and meta.height == 640 and meta.fps == 30
    # 2 fps sampling: one frame every 0.5 s, all inside the video
    times = sample_media.frame_times
    assert len(times) == pytest.approx(sample.duration_s * 2, abs=1)
    assert np.allclose(np.diff(times), 0.5, atol=0.04)
    assert sample_media.frames.shape[1:] == (640, 360, 3)
    # full rate low-res stream: every frame, short side 96
    assert sample_media.lowres.shape[0] == round(sample.duration_s * 30)
    assert sample_media.lowres.shape[1:] == (170, 96, 3)
    assert sample_media.lowres_times[-1] < sample.duration_s
    # audio: 16 kHz mono; speech where the truth says, quiet between the two sentences
    audio = sample_media.audio
    assert audio.size == pytest.approx(sample.duration_s * 16000, rel=0.01)
    en, de = sample.speech
    loud = np.abs(audio[int(en["start_s"] * 16000): int(en["end_s"] * 16000)]).max()
    gap = np.abs(audio[int((en["end_s"] + 0.2) * 16000): int((de["start_s"] - 0.2) * 16000)]).max()
    assert loud > 0.3 and gap < 0.02


def test_video_without_audio_is_valid(tmp_path):
    frames = [np.full((64, 36, 3), i * 4, np.uint8) for i in range(30)]
    media = make_media(encode_frames(tmp_path / "mute.mp4", frames, fps=15), tmp_path)
    assert not media.has_audio and media.audio_path is None and media.audio.size == 0
    assert media.lowres.shape[0] == 30 and media.duration_s == pytest.approx(2.0, abs=0.1)


@pytest.fixture()
def bad_inputs(tmp_path, sample):
    good = tmp_path / "good.mp4"
    shutil.copyfile(sample.path, good)
    data = good.read_bytes()
    files = {
        "empty": tmp_path / "empty.mp4",
        "text": tmp_path / "notes.mp4",
        "random": tmp_path / "random.mp4",
        "truncated": tmp_path / "truncated.mp4",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is a shopping list, not a video\n" * 20)
    files["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["missing"] = tmp_path / "missing.mp4"
    return files


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty", "empty"),
        ("text", "not a readable video"),
        ("random", "not a readable video"),
        ("truncated", "not a readable video|truncated|no decodable"),
        ("missing", "not found"),
    ],
)
def test_bad_input_fails_with_one_clear_sentence_and_keeps_the_old_cache(bad_inputs, tmp_path, sample, name, message):
    out = tmp_path / "cache" / "vid"
    build_media_cache(Path(sample.path), out, "vid", 2.0, 320, 64)
    before = (out / "meta.json").read_text()
    with pytest.raises(MediaError, match=message) as info:
        build_media_cache(bad_inputs[name], out, "vid", 2.0, 320, 64)
    assert "\n" not in str(info.value)
    assert (out / "meta.json").read_text() == before
    assert MediaCache(out).frames.shape[0] > 0
    # no temporary folders left behind: the link and the one version it names
    assert sorted(p.name for p in out.parent.iterdir()) == [".vid.versions", "vid"]
    assert [p.name for p in (out.parent / ".vid.versions").iterdir()] == [out.resolve().name]


def test_zero_length_video_is_refused(tmp_path):
    path = tmp_path / "zero.mp4"
    # a container with a video stream but no frames
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=0.04",
                    "-frames:v", "0", "-c:v", "libx264", str(path)], check=False)
    if not path.exists() or path.stat().st_size == 0:
        path.write_bytes(b"")
    with pytest.raises(MediaError):
        probe(path)
