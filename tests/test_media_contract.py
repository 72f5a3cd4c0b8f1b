"""The media cache's contract: upright pictures, times from timestamps, audio on the video clock,
immutable caches under concurrent readers, decode limits and damaged input.

Every clip is generated here (PyAV or ffmpeg) with an exactly known truth, tiny and short.
"""

from __future__ import annotations

import fractions
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tiktok_assets.media import MediaCache, MediaError, build_media_cache, cache_ready, probe
from tiktok_assets.media_store import new_build, versions_dir

RATE = 44_100

# an asymmetric upright picture 48 wide x 80 tall: each quadrant its own colour
QUADRANTS = {"top_left": (255, 0, 0), "top_right": (0, 255, 0), "bottom_left": (0, 0, 255),
             "bottom_right": (255, 255, 255)}


def upright_picture(w: int = 48, h: int = 80) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = QUADRANTS["top_left"]
    img[: h // 2, w // 2:] = QUADRANTS["top_right"]
    img[h // 2:, : w // 2] = QUADRANTS["bottom_left"]
    img[h // 2:, w // 2:] = QUADRANTS["bottom_right"]
    return img


def quadrant_colours(img: np.ndarray) -> dict[str, tuple[int, ...]]:
    """Mean colour of the centre of each quadrant (away from edges blurred by scaling and coding)."""
    h, w = img.shape[:2]
    ys = {"top": slice(h // 8, 3 * h // 8), "bottom": slice(5 * h // 8, 7 * h // 8)}
    xs = {"left": slice(w // 8, 3 * w // 8), "right": slice(5 * w // 8, 7 * w // 8)}
    return {f"{y}_{x}": tuple(int(v) for v in img[ys[y], xs[x]].reshape(-1, 3).mean(0).round())
            for y in ys for x in xs}


def mux(path: Path, frames, fps=10, times=None, rotation=None, hflip=False, audio=None, audio_rate=RATE,
        pix_fmt="yuv420p") -> Path:
    """Write an MP4 with PyAV: RGB ``frames`` (at ``times`` seconds, else i/fps), an optional display
    rotation (counter-clockwise degrees) and mirror, and ``audio``: (start_s, mono float samples)
    chunks placed exactly at those times (AAC)."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = pix_fmt
        vs.codec_context.time_base = fractions.Fraction(1, 1000)
        vs.options = {"bf": "0"}
        if rotation is not None:
            vs.set_display_rotation(rotation, hflip=hflip)
        aus = None
        if audio is not None:
            aus = out.add_stream("aac", rate=audio_rate, layout="mono")
            aus.codec_context.time_base = fractions.Fraction(1, audio_rate)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = round((times[i] if times is not None else i / fps) * 1000)
            frame.time_base = fractions.Fraction(1, 1000)
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        for start_s, samples in audio or []:
            pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
            first = round(start_s * audio_rate)
            for k in range(0, pcm.size, 1024):
                frame = av.AudioFrame.from_ndarray(pcm[None, k:k + 1024], format="s16", layout="mono")
                frame.sample_rate = audio_rate
                frame.pts = first + k
                frame.time_base = fractions.Fraction(1, audio_rate)
                out.mux(aus.encode(frame))
        if aus is not None:
            out.mux(aus.encode())
    return path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def tone(seconds: float, rate: int = RATE, hz: float = 1000.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    from tiktok_assets.sample_video import write_wav as write

    write(path, samples, rate)
    return path


def onsets(audio: np.ndarray, threshold: float = 0.1) -> tuple[float, float]:
    """First and last sample louder than ``threshold`` in 16 kHz audio, in seconds."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return loud[0] / 16000, (loud[-1] + 1) / 16000


def build(video: Path, out: Path, **kwargs) -> MediaCache:
    build_media_cache(video, out, out.name, 2.0, 64, 16, **kwargs)
    return MediaCache(out)


# ---------------------------------------------------------------- rotation


@pytest.mark.parametrize(("rotation", "hflip"), [(0, False), (90, False), (180, False), (270, False),
                                                 (0, True), (90, True)])
def test_rotated_clip_is_cached_upright_with_displayed_size(tmp_path, rotation, hflip):
    picture = upright_picture()  # what the viewer sees: 48 x 80, portrait
    # the container stores the picture turned back, plus the tag that turns it upright on display
    stored = np.rot90(picture[:, ::-1] if hflip else picture, k=-rotation // 90)
    clip = mux(tmp_path / "clip.mp4", [stored] * 6, fps=5, rotation=rotation, hflip=hflip)

    info = probe(clip)
    assert (info.width, info.height) == (48, 80)
    assert (info.rotation, info.mirrored) == (rotation, hflip)
    media = build(clip, tmp_path / "cache" / "v")
    assert (media.meta.width, media.meta.height) == (48, 80)
    assert (media.meta.rotation, media.meta.mirrored) == (rotation, hflip)
    assert media.frames.shape[1:] == (64, 38, 3) and media.lowres.shape[1:] == (26, 16, 3)
    for img in (media.frames[0], media.lowres[0], media.frames[-1]):
        colours = quadrant_colours(img)
        for name, expected in QUADRANTS.items():
            assert np.abs(np.subtract(colours[name], expected)).max() < 40, (name, colours)


# ---------------------------------------------------------------- frame times


def test_variable_frame_rate_keeps_each_frames_timestamp(tmp_path):
    times = [0.0, 0.04, 0.1, 0.25, 0.26, 0.5, 0.9, 0.95, 1.3, 1.31, 1.32, 2.0]
    frames = [np.full((32, 48, 3), 20 * i, np.uint8) for i in range(len(times))]
    media = build(mux(tmp_path / "vfr.mp4", frames, fps=25, times=times), tmp_path / "cache" / "v")
    assert np.allclose(media.lowres_times, times, atol=1e-3)
    # sampling at 2 fps takes the first frame at or after each 0.5 s tick, with its own time
    assert np.allclose(media.frame_times, [0.0, 0.5, 1.3, 2.0], atol=1e-3)
    assert np.allclose(media.frames[:, 8, 8, 0], [0, 100, 160, 220], atol=6)


def test_sixty_fps_odd_size_keeps_times_and_size(tmp_path):
    clip = tmp_path / "odd.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=63x111:r=60:d=1", "-c:v", "libx264", "-pix_fmt", "yuv444p", str(clip))
    media = build(clip, tmp_path / "cache" / "v")
    assert (media.meta.width, media.meta.height, media.meta.fps) == (63, 111, 60)
    assert media.lowres.shape[0] == 60
    assert np.allclose(media.lowres_times, np.arange(60) / 60, atol=1e-3)
    assert media.duration_s == pytest.approx(1.0, abs=0.02)


# ---------------------------------------------------------------- audio placement


def _grey(seconds: float, fps: int = 10) -> list[np.ndarray]:
    return [np.full((112, 64, 3), 128, np.uint8)] * round(seconds * fps)


def test_audio_starting_late_is_placed_on_the_video_clock(tmp_path):
    # the audio stream starts at 0.976 s; its tone starts 0.024 s in, so it plays at 1.0-3.0 s
    wav = write_wav(tmp_path / "a.wav", np.concatenate([np.zeros(round(0.024 * RATE)), tone(2.0), np.zeros(RATE // 2)]))
    clip = tmp_path / "late.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x112:r=10:d=4", "-itsoffset", "0.976", "-i", str(wav),
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    media = build(clip, tmp_path / "cache" / "v")
    start, end = onsets(media.audio)
    assert start == pytest.approx(1.0, abs=0.01) and end == pytest.approx(3.0, abs=0.01)
    assert media.audio.size == round(media.duration_s * 16000)
    assert media.meta.audio_offset_s == pytest.approx(0.976, abs=0.03)


def test_gap_in_the_audio_stream_is_filled_with_silence(tmp_path):
    # audio 0-1.5 s (tone from 0.5 s), nothing in the stream for 1.0 s, then a tone at 2.5-3.5 s
    first = np.concatenate([np.zeros(RATE // 2, np.float32), tone(1.0)])
    clip = mux(tmp_path / "gap.mp4", _grey(4.0), audio=[(0.0, first), (2.5, tone(1.0))])
    with av.open(str(clip)) as c:  # the file really has a hole in its audio timestamps
        pts = [float(p.pts * p.time_base) for p in c.demux(audio=0) if p.pts is not None]
        assert max(np.diff(pts)) > 0.9
    audio = build(clip, tmp_path / "cache" / "v").audio
    loud = np.convolve(np.abs(audio), np.ones(80) / 80, mode="same") > 0.1  # 5 ms envelope
    edges = np.flatnonzero(np.diff(loud.astype(np.int8))) / 16000
    assert len(edges) == 4
    for got, want in zip(edges, [0.5, 1.5, 2.5, 3.5], strict=True):
        assert got == pytest.approx(want, abs=0.01)


def test_aac_priming_does_not_shift_the_audio(tmp_path):
    wav = write_wav(tmp_path / "a.wav", np.concatenate([np.zeros(RATE // 2, np.float32), tone(1.0),
                                                        np.zeros(RATE, np.float32)]))
    clip = tmp_path / "aac.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x112:r=10:d=2.5", "-i", str(wav),
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip))
    start, end = onsets(build(clip, tmp_path / "cache" / "v").audio)
    assert start == pytest.approx(0.5, abs=0.01) and end == pytest.approx(1.5, abs=0.01)


def test_audio_past_the_video_end_is_cut(tmp_path):
    wav = write_wav(tmp_path / "a.wav", tone(3.0))
    clip = tmp_path / "long_audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x112:r=10:d=1", "-i", str(wav),
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    media = build(clip, tmp_path / "cache" / "v")
    assert media.duration_s == pytest.approx(1.0, abs=0.01)
    with __import__("wave").open(str(media.audio_path)) as w:
        assert w.getnframes() == 16000


# ---------------------------------------------------------------- limits


def test_duration_limit_holds_for_every_stream(tmp_path):
    clip = tmp_path / "long_audio.mp4"
    wav = write_wav(tmp_path / "a.wav", tone(8.0, amp=0.2))
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x112:r=5:d=1", "-i", str(wav),
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip))
    with pytest.raises(MediaError, match="above the limit of 3s") as info:
        build(clip, tmp_path / "cache" / "a", max_duration_s=3.0)
    assert "\n" not in str(info.value)
    long_video = mux(tmp_path / "long_video.mp4", _grey(5.0, fps=5), fps=5)
    with pytest.raises(MediaError, match="above the limit of 3s"):
        build(long_video, tmp_path / "cache" / "b", max_duration_s=3.0)
    assert not cache_ready(tmp_path / "cache" / "a") and not cache_ready(tmp_path / "cache" / "b")
    assert build(long_video, tmp_path / "cache" / "b", max_duration_s=10.0).duration_s == pytest.approx(5.0)


def test_limit_is_checked_on_decoded_time_not_the_header(tmp_path, monkeypatch):
    """Headers that claim less than the streams hold must not get past the limit (video or audio)."""
    import tiktok_assets.media as media_module

    long_video = mux(tmp_path / "v.mp4", _grey(5.0, fps=5), fps=5)
    long_audio = mux(tmp_path / "a.mp4", _grey(1.0, fps=5), fps=5, audio=[(0.0, tone(6.0, amp=0.2))])
    real = media_module.probe

    def lying_probe(path):
        info = real(path)
        return type(info)(**{**info.__dict__, "duration_s": 1.0, "audio_duration_s": 1.0})

    monkeypatch.setattr(media_module, "probe", lying_probe)
    for clip in (long_video, long_audio):
        with pytest.raises(MediaError, match="runs past the limit of 3s") as info:
            build(clip, tmp_path / "cache" / clip.stem, max_duration_s=3.0)
        assert "\n" not in str(info.value)
        assert not cache_ready(tmp_path / "cache" / clip.stem)
        assert [p.name for p in versions_dir(tmp_path / "cache" / clip.stem).iterdir()] == []  # no leftovers


# ---------------------------------------------------------------- damaged input


def _flip_audio_bits(src: Path, dst: Path, seed: int) -> None:
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size) for p in c.demux(audio=0) if p.size and p.pos is not None and p.pos >= 0]
    for pos, size in packets[len(packets) // 4: 3 * len(packets) // 4: 4]:
        for i in rng.integers(pos, pos + size, 3):
            data[i] ^= 1 << int(rng.integers(0, 8))
    dst.write_bytes(bytes(data))


def test_scattered_damage_is_skipped_and_reported(tmp_path):
    wav = write_wav(tmp_path / "a.wav", tone(4.0, hz=440, amp=0.3))
    clean = tmp_path / "clean.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x112:r=10:d=4", "-i", str(wav), "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-g", "10", "-c:a", "aac", "-shortest", str(clean))
    for seed in range(4):  # bit flips in a quarter of the audio packets of the middle half
        bad = tmp_path / f"bad{seed}.mp4"
        _flip_audio_bits(clean, bad, seed)
        media = build(bad, tmp_path / "cache" / f"v{seed}")
        assert media.meta.decoded_frames == 40 and media.duration_s == pytest.approx(4.0, abs=0.05)
        assert media.meta.damaged_packets > 0 and media.meta.damaged_s > 0
        # audio after the damage is still where it was played: loud at 3.5-3.9 s
        assert np.abs(media.audio[int(3.5 * 16000): int(3.9 * 16000)]).min() < 0.05  # a sine crosses 0
        assert np.abs(media.audio[int(3.5 * 16000): int(3.9 * 16000)]).max() > 0.2
        assert media.audio.size == 4 * 16000


def test_video_with_too_little_decodable_fails_with_one_sentence(tmp_path):
    clip = mux(tmp_path / "v.mp4", [np.random.default_rng(i).integers(0, 255, (64, 48, 3), np.uint8)
                                    for i in range(20)], fps=10)
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size and p.pos is not None]
    rng = np.random.default_rng(0)
    for pos, size in packets[1:]:
        data[pos:pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))
    with pytest.raises(MediaError) as info:
        build(clip, tmp_path / "cache" / "v")
    assert "\n" not in str(info.value) and "v.mp4" in str(info.value)


# ---------------------------------------------------------------- immutable caches


def _colour_clip(path: Path, colour: tuple[int, int, int], n: int) -> Path:
    return mux(path, [np.full((64, 48, 3), colour, np.uint8)] * n, fps=10)


def test_a_reader_keeps_its_version_while_the_video_is_decoded_again(tmp_path):
    red, blue = _colour_clip(tmp_path / "r.mp4", (255, 0, 0), 10), _colour_clip(tmp_path / "b.mp4", (0, 0, 255), 14)
    out = tmp_path / "cache" / "v"
    build_media_cache(red, out, "v", 2.0, 64, 16)
    reader = MediaCache(out)  # opened, nothing mapped yet
    build_media_cache(blue, out, "v", 2.0, 64, 16)
    # the reader still sees the red version in full; a new reader sees blue
    assert reader.meta.decoded_frames == 10 and reader.lowres.shape[0] == len(reader.lowres_times) == 10
    assert reader.frames[..., 0].min() > 200 and reader.frames[..., 2].max() < 60
    assert MediaCache(out).frames[..., 2].min() > 200
    old = reader.directory
    assert old.is_dir()  # not deleted while read
    reader.close()
    build_media_cache(blue, out, "v", 2.0, 64, 16)  # the next decode of the partition collects it
    assert not old.exists()
    assert [p.name for p in versions_dir(out).iterdir()] == [out.resolve().name]


EXPECTED_CHANNEL = {10: 0, 14: 2}  # frame count of the two clips -> the channel that is bright


def _read_until(out: Path, stop: Path, results, ready) -> None:
    """A reader process: open the cache again and again, a decode may finish between open and read."""
    errors, reads = [], 0
    ready.release()
    while not stop.exists():
        try:
            media = MediaCache(out)
            n = media.meta.decoded_frames
            time.sleep(0.002)
            lowres, times, frames = media.lowres, media.lowres_times, media.frames
            if lowres.shape[0] != n or len(times) != n or frames.shape[0] != len(media.frame_times):
                errors.append(f"shapes differ from meta: {n} {lowres.shape} {len(times)}")
            elif frames[..., EXPECTED_CHANNEL[n]].min() < 200 or lowres[..., EXPECTED_CHANNEL[n]].min() < 200:
                errors.append("pictures of another version")
            media.close()
            reads += 1
        except Exception as exc:  # noqa: BLE001 - every failure of a reader is what this test looks for
            errors.append(f"{type(exc).__name__}: {exc}")
    results.put((reads, errors[:5]))


def test_decode_racing_readers_never_shows_a_torn_cache(tmp_path):
    clips = [_colour_clip(tmp_path / "r.mp4", (255, 0, 0), 10), _colour_clip(tmp_path / "b.mp4", (0, 0, 255), 14)]
    out = tmp_path / "cache" / "v"
    build_media_cache(clips[0], out, "v", 2.0, 64, 16)
    stop = tmp_path / "stop"
    # spawn, not fork: forking a test process that other tests left with threads can deadlock the child
    ctx = multiprocessing.get_context("spawn")
    results, ready = ctx.Queue(), ctx.Semaphore(0)
    readers = [ctx.Process(target=_read_until, args=(out, stop, results, ready)) for _ in range(2)]
    for p in readers:
        p.start()
    try:
        for _ in readers:
            assert ready.acquire(timeout=120), "a reader process did not start"
        time.sleep(0.2)
        for i in range(8):  # the same two inputs again and again: new versions and reused ones
            build_media_cache(clips[(i + 1) % 2], out, "v", 2.0 + 0.5 * (i // 2), 64, 16)
    finally:
        stop.touch()
        outcome = [results.get(timeout=120) for _ in readers]
        for p in readers:
            p.join()
    errors = [e for _, errs in outcome for e in errs]
    assert not errors, errors
    assert all(reads > 5 for reads, _ in outcome)
    build_media_cache(clips[0], out, "v", 2.0, 64, 16)
    assert [p.name for p in versions_dir(out).iterdir()] == [out.resolve().name]  # old versions removed


def test_stale_temporaries_of_a_killed_decode_are_removed_on_the_next_run(tmp_path):
    clip = _colour_clip(tmp_path / "r.mp4", (255, 0, 0), 10)
    out = tmp_path / "cache" / "v"
    build_media_cache(clip, out, "v", 2.0, 64, 16)
    # a decode killed half-way (in another process, so its pid is gone and its lock released)
    code = ("import sys, os; from pathlib import Path; from tiktok_assets.media_store import new_build; "
            "tmp, _ = new_build(Path(sys.argv[1])); (tmp / 'frames.u8').write_bytes(bytes(1 << 20)); "
            "os._exit(9)")
    subprocess.run([sys.executable, "-c", code, str(out)], check=False, env={**os.environ})
    legacy = out.parent / f".v.tmp-{_dead_pid()}"  # the naming of caches before versions
    legacy.mkdir()
    (legacy / "frames.u8").write_bytes(bytes(1 << 20))
    stale = [p for p in versions_dir(out).iterdir() if p.name.startswith(".tmp-")]
    assert len(stale) == 1
    # a decode that is running right now in this process is left alone
    running, lock = new_build(out)
    build_media_cache(_colour_clip(tmp_path / "b.mp4", (0, 0, 255), 14), out, "v", 2.0, 64, 16)
    assert not stale[0].exists() and not legacy.exists()
    assert running.exists()
    os.close(lock)
    assert sorted(p.name for p in out.parent.iterdir()) == [".v.versions", "v"]


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_cache_ready_and_legacy_cache_folders(tmp_path):
    clip = _colour_clip(tmp_path / "r.mp4", (255, 0, 0), 10)
    out = tmp_path / "cache" / "v"
    assert not cache_ready(out)
    build_media_cache(clip, out, "v", 2.0, 64, 16)
    assert cache_ready(out) and (out / "meta.json").is_file()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["version"] == out.resolve().name
    # a cache folder written before versions existed is read, then replaced by a link on the next decode
    legacy = tmp_path / "old" / "v"
    shutil.copytree(out.resolve(), legacy)
    (legacy / ".lock").unlink()
    assert cache_ready(legacy) and MediaCache(legacy).meta.decoded_frames == 10
    build_media_cache(_colour_clip(tmp_path / "b.mp4", (0, 0, 255), 14), legacy, "v", 2.0, 64, 16)
    assert legacy.is_symlink() and MediaCache(legacy).meta.decoded_frames == 14
    assert sorted(p.name for p in legacy.parent.iterdir()) == [".v.versions", "v"]
