"""What an analyzer is: a declared spec plus a plain function from the media cache to rows.

Analyzers know nothing of Dagster or of the warehouse. :func:`run_analyzer` turns their rows into
an Arrow table of one fixed schema (``video_id``, ``start_s``, ``end_s`` + the spec's columns) and
checks the timestamps; the Dagster factory and the CLI both go through it.
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

MODALITIES = ("speech", "text", "visual", "audio")
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
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("tiktok_assets"))


@dataclass
class AnalyzerOutput:
    """Rows (dicts with at least start_s/end_s), the time spans really examined, and figures.

    ``examined`` feeds the reconstruction score: list the spans of the input the analyzer looked
    at (not the spans where it found something). ``metadata`` holds the main figures shown in
    the Dagster UI and a ``note`` when something was skipped.
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
    examined: list[tuple[float, float]]
    metadata: dict[str, Any]
    seconds: float


def run_analyzer(spec: AnalyzerSpec, media: MediaCache, context: AnalyzerContext) -> AnalyzerRun:
    """Run one analyzer and return its rows as a validated Arrow table."""
    began = time.perf_counter()
    if spec.needs_audio and not media.has_audio:
        output = AnalyzerOutput(rows=[], examined=[], metadata={"note": "video has no audio track"})
    else:
        output = spec.run(media, context)
    table = to_table(spec, context.video_id, output.rows)
    check_times(spec.name, table, media.duration_s)
    examined = [(max(0.0, a), min(media.duration_s, b)) for a, b in output.examined if b > a]
    metadata = {"rows": table.num_rows, **output.metadata}
    if spec.model and "model" not in metadata:
        metadata["model"] = spec.model
    return AnalyzerRun(table, examined, metadata, time.perf_counter() - began)


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
