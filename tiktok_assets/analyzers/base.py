"""What an analyzer is: a declared spec plus a plain function from the media cache to rows.

Analyzers know nothing of Dagster or of the warehouse. :func:`run_analyzer` turns their rows into
an Arrow table of one fixed schema (``video_id``, ``start_s``, ``end_s`` + the spec's columns) and
checks the timestamps; the Dagster factory and the CLI both go through it.

Coverage is measured, not declared. ``run_analyzer`` hands the analyzer a
:class:`~tiktok_assets.media_access.TrackedMedia` that records which sampled frames, low-res
frames and audio samples it read. The run's ``examined`` spans are

    (spans of the media it read  ∪  examined spans of the upstream tables it was given)
    ∩  the spans the analyzer claims (``AnalyzerOutput.examined``)

so an analyzer that reads half the frames examined half the video whatever it claims, and an
analyzer whose key output is missing for a span (no model, no transcript) leaves that span out of
its claim and does not cover it. An analyzer that reads only upstream tables (no media) examined
what those tables' runs examined.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..config import Settings
from ..media import MediaCache
from ..media_access import Span, TrackedMedia, intersect_spans, merge_spans, total
from ..model_registry.clock import ModelTime, measuring

MODALITIES = ("speech", "text", "visual", "audio", "people")
BASE_FIELDS = (
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("end_s", pa.float64(), nullable=False),
)
TIME_TOLERANCE_S = 0.25


class AnalyzerError(RuntimeError):
    """An analyzer could not run; the message says what is missing and what to change."""


@dataclass
class AnalyzerContext:
    """What an analyzer gets besides the media: settings, device and upstream tables."""

    video_id: str
    settings: Settings
    device: str = "cpu"
    batch_size: int = 1
    inputs: Mapping[str, pa.Table] = field(default_factory=dict)
    # per upstream analyzer: its last run's status ("success", "failed", "missing"), the code version
    # that wrote the table, and whether that version is outdated ("stale"); a failed upstream's table
    # is not in ``inputs``
    input_runs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Examined spans of the successful upstream runs in ``inputs`` (measured coverage flows on).
    input_examined: Mapping[str, list[Span]] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("tiktok_assets"))
    # model loader (``models.load(model_id, device)``); default: the process-wide one for ``settings``
    models: Any = None

    def __post_init__(self) -> None:
        if self.models is None:
            from ..model_registry import process_loader

            self.models = process_loader(self.settings)


@dataclass
class AnalyzerOutput:
    """Rows (dicts with at least start_s/end_s), the spans the analyzer claims, and figures.

    ``examined`` is a claim of the spans whose output is complete (not the spans where it found
    something): leave out spans whose key output could not be produced (missing model, missing
    input). The framework intersects it with what was really read (module docstring).
    ``metadata`` holds the main figures shown in the Dagster UI and a ``note`` when something was
    skipped.
    """

    rows: list[dict[str, Any]]
    examined: list[tuple[float, float]]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalyzerSpec:
    name: str
    modality: str
    description: str
    version: str
    columns: tuple[pa.Field, ...]
    run: Callable[[MediaCache, AnalyzerContext], AnalyzerOutput]
    model: str | None = None
    needs_audio: bool = False
    depends_on: tuple[str, ...] = ()
    main_figure: str | None = None
    # SQL expression over the analyzer's columns giving a short label for the `timeline` view and
    # the reconstruction timeline; rows where it is NULL are left out of the readable timeline.
    timeline_label: str | None = None
    # `Settings` fields that change the output, and the distributions shipping the model weights:
    # both go into the Dagster code version, so changing them makes the asset stale
    settings: tuple[str, ...] = ()
    model_packages: tuple[str, ...] = ()
    # shared intermediates it reads (names in ``tiktok_assets.passes.VERSIONS``): their versions go
    # into the code version too
    passes: tuple[str, ...] = ()
    # analyzers read when the registry has them (e.g. a fusion analyzer reading tables that other
    # analyzers may or may not provide): the registry adds the registered ones to ``depends_on``
    # (so deps, code versions and ``context.inputs`` treat them alike) and ignores the others
    optional_inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: modality must be one of {MODALITIES}")
        clash = {f.name for f in self.columns} & {f.name for f in BASE_FIELDS}
        if clash:
            raise ValueError(f"{self.name}: columns {sorted(clash)} are added automatically")

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([*BASE_FIELDS, *self.columns])


@dataclass
class AnalyzerRun:
    table: pa.Table
    examined: list[tuple[float, float]]  # measured: (read ∪ inputs' examined) ∩ claimed
    metadata: dict[str, Any]
    seconds: float
    read: list[tuple[float, float]] = field(default_factory=list)  # media spans really read
    claimed: list[tuple[float, float]] = field(default_factory=list)  # what the analyzer declared
    model_time: ModelTime = field(default_factory=ModelTime)  # inside its model calls and loads, per model


def measured_examined(
    read: list[Span], inputs: Mapping[str, list[Span]], claimed: list[Span], duration_s: float
) -> list[Span]:
    """The coverage rule of the module docstring, clipped to the video."""
    seen = merge_spans([*read, *(s for spans in inputs.values() for s in spans)], duration_s)
    return intersect_spans(seen, merge_spans(claimed, duration_s))


def run_analyzer(spec: AnalyzerSpec, media: MediaCache, context: AnalyzerContext) -> AnalyzerRun:
    """Run one analyzer on a tracking view of ``media``; return its validated table and the
    spans it examined (measured, see the module docstring)."""
    began = time.perf_counter()
    tracked = media if isinstance(media, TrackedMedia) else TrackedMedia(media)
    model_time = ModelTime()
    if spec.needs_audio and not media.has_audio:
        output = AnalyzerOutput(rows=[], examined=[], metadata={"note": "video has no audio track"})
    else:
        with measuring() as model_time:
            output = spec.run(tracked, context)
    table = to_table(spec, context.video_id, output.rows)
    duration = float(media.duration_s)
    check_times(spec.name, table, duration)
    read = tracked.read_spans()
    inputs = {k: v for k, v in context.input_examined.items() if k in context.inputs}
    claimed = merge_spans(list(output.examined), duration)
    examined = measured_examined(read, inputs, claimed, duration)
    metadata = {"rows": table.num_rows, **output.metadata}
    metadata["examined_s"] = round(total(examined), 3)
    if total(claimed) - total(examined) > 0.05:
        metadata["coverage_note"] = (
            f"claimed {total(claimed):.1f}s but read only {total(examined):.1f}s of {duration:.1f}s"
        )
    if spec.model and "model" not in metadata:
        metadata["model"] = spec.model
    if model_time.calls or model_time.loads:
        # measured where the models are called (model_registry.clock): the rest of ``seconds`` is
        # reading, pre- and post-processing
        metadata["model_inference_s"] = round(model_time.inference_s, 3)
        metadata["model_calls"] = sum(model_time.calls.values())
        metadata["model_load_s"] = round(model_time.load_s, 3)
        metadata["model_time"] = model_time.describe()
    return AnalyzerRun(table, examined, metadata, time.perf_counter() - began, read, claimed, model_time)


def to_table(spec: AnalyzerSpec, video_id: str, rows: list[dict[str, Any]]) -> pa.Table:
    full = [{**row, "video_id": video_id} for row in rows]
    try:
        return pa.Table.from_pylist(full, schema=spec.schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise AnalyzerError(f"{spec.name} produced rows that do not match its schema: {exc}") from exc


def check_times(name: str, table: pa.Table, duration_s: float) -> None:
    """Raise if any row lies outside the video or ends before it starts."""
    if table.num_rows == 0:
        return
    starts = table.column("start_s").to_pylist()
    ends = table.column("end_s").to_pylist()
    for start, end in zip(starts, ends):
        if start < -1e-6 or end > duration_s + TIME_TOLERANCE_S or end < start - 1e-6:
            raise AnalyzerError(
                f"{name} produced a row at {start:.3f}-{end:.3f}s outside the video (0-{duration_s:.3f}s)"
            )
