"""What happens in each window of the video, described by a video-language model (Qwen2-VL).

The video is cut into windows of ``TIKTOK_ASSETS_VLM_WINDOW_S`` seconds (default 2; a last piece
shorter than a quarter window joins the one before). Each window's sampled frames
(``media.frames``, at most ``TIKTOK_ASSETS_VLM_FRAMES``, evenly picked; the nearest frame when a
window holds none) go to the model with a prompt asking for a constrained answer of six lines, and
with the previous window's description and the instruction to say what changed. Decoding is greedy
with ``repetition_penalty`` 1.05, ``no_repeat_ngram_size`` 5 and ``TIKTOK_ASSETS_VLM_MAX_NEW_TOKENS``
(default 96) new tokens. Qwen2-VL has no absolute time encoding: the times are the windows'.

Batching: the ``vlm`` group's ``batch_size`` windows go to one left-padded ``generate`` call (more
throughput on a GPU). With a batch size of 1 (the default) every prompt carries the previous
window's description; with more, the windows of a batch share the last description before it.

Columns (one row per window):

* ``window_index``; ``frames``: frames given to the model; ``frame_times``: their times (s).
* ``description``: the English description (``DESCRIPTION:`` line; the whole answer when the
  model ignored the format).
* ``people_count`` (``PEOPLE:``, first number or number word), ``setting`` (``SETTING:``,
  one of indoor/outdoor/studio/vehicle/unknown when the answer names one, else its text),
  ``activity`` (``ACTIVITY:``), ``objects`` (``OBJECTS:``, lower-case list), ``text_visible``
  (``TEXT:`` yes/no -> true/false); null when the answer lacks the line.
* ``parsed``: the answer had the DESCRIPTION line and at least three of the five others.
* ``description_de``: German description when ``TIKTOK_ASSETS_VLM_GERMAN`` is on (a second,
  text-only call translating the English one), else null.
* ``repeats_previous``: the description equals the previous window's verbatim (after lower-casing
  and dropping punctuation); such windows are not counted as examined.
* ``answer``: the model's raw answer; ``new_tokens``: its length; ``generate_s``: its share of
  the ``generate`` time of its batch (plus the German call's).

Metadata: ``distinct_3gram_ratio`` (distinct word 3-grams / all word 3-grams over the video's
descriptions, 1.0 = nothing repeats), ``verbatim_repeat_share`` (windows repeating the previous
description / windows), ``s_per_window``, ``batch_windows``, the model, its precision and attention, and the
generation settings. Without weights, or with a large model and no GPU, the model layer raises
:class:`~tiktok_assets.model_registry.ModelUnavailable` naming the setting (no rows, not covered).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

MODEL_ID = "qwen2-vl-2b"
REPETITION_PENALTY = 1.05
NO_REPEAT_NGRAM = 5
DISTINCT_N = 3
SETTINGS_VOCAB = ("indoor", "outdoor", "studio", "vehicle", "unknown")
FIELDS = ("DESCRIPTION", "PEOPLE", "SETTING", "ACTIVITY", "OBJECTS", "TEXT")
NUMBER_WORDS = {"no": 0, "none": 0, "nobody": 0, "zero": 0, "one": 1, "a": 1, "single": 1, "two": 2, "three": 3,
                "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "several": None}
YES = {"yes", "y", "true", "ja"}
NO = {"no", "n", "false", "nein", "none"}

DEFAULT_PROMPT = ("Describe this {seconds:.0f}-second part of a short vertical video: who is in it, what they do, "
                  "where it happens, and any on-screen action or text.")
ANSWER_FORMAT = (
    "Answer in exactly these six lines:\n"
    "DESCRIPTION: <one or two sentences>\n"
    "PEOPLE: <number of people visible>\n"
    "SETTING: <indoor, outdoor, studio, vehicle or unknown>\n"
    "ACTIVITY: <a few words>\n"
    "OBJECTS: <up to five objects, separated by commas>\n"
    "TEXT: <yes or no: is text shown on screen>"
)
CONTEXT = ('The previous part ({start:.0f}-{end:.0f} s) was described as: "{previous}". '
           "Say what changed since then; do not repeat that description.")
GERMAN_PROMPT = ("Translate this description of a video into German. Answer with the German text only.\n\n"
                 "{description}")

COLUMNS = (
    pa.field("window_index", pa.int64()),
    pa.field("frames", pa.int64()),
    pa.field("frame_times", pa.list_(pa.float64())),
    pa.field("description", pa.string()),
    pa.field("people_count", pa.int64()),
    pa.field("setting", pa.string()),
    pa.field("activity", pa.string()),
    pa.field("objects", pa.list_(pa.string())),
    pa.field("text_visible", pa.bool_()),
    pa.field("parsed", pa.bool_()),
    pa.field("description_de", pa.string()),
    pa.field("repeats_previous", pa.bool_()),
    pa.field("answer", pa.string()),
    pa.field("new_tokens", pa.int64()),
    pa.field("generate_s", pa.float64()),
)


def windows(duration_s: float, window_s: float) -> list[tuple[float, float]]:
    """``[0, duration]`` cut into ``window_s`` pieces; a last piece under a quarter window joins the
    one before."""
    if duration_s <= 0:
        return []
    count = max(1, math.ceil(duration_s / window_s - 1e-6))
    spans = [(i * window_s, min((i + 1) * window_s, duration_s)) for i in range(count)]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < 0.25 * window_s:
        spans[-2:] = [(spans[-2][0], duration_s)]
    return [(round(a, 3), round(b, 3)) for a, b in spans]


def pick_frames(times: np.ndarray, start: float, end: float, count: int) -> np.ndarray:
    """Indices of at most ``count`` sampled frames evenly spread over ``[start, end)``; the frame
    nearest the window's middle when none lies inside."""
    inside = np.flatnonzero((times >= start - 1e-6) & (times < end - 1e-6))
    if inside.size == 0:
        if times.size == 0:
            return inside
        return np.array([int(np.argmin(np.abs(times - 0.5 * (start + end))))])
    if inside.size <= count:
        return inside
    return inside[np.unique(np.round(np.linspace(0, inside.size - 1, count)).astype(int))]


def generation_settings(max_new_tokens: int) -> dict[str, Any]:
    """Greedy decoding with the anti-repetition settings (what reaches ``model.generate``)."""
    return {"do_sample": False, "num_beams": 1, "repetition_penalty": REPETITION_PENALTY,
            "no_repeat_ngram_size": NO_REPEAT_NGRAM, "max_new_tokens": int(max_new_tokens)}


def build_prompt(template: str | None, span: tuple[float, float], previous: tuple[float, float, str] | None) -> str:
    """The window's prompt: the previous description as context, the task, the answer format."""
    seconds = f"{span[1] - span[0]:.0f}"
    task = (template or DEFAULT_PROMPT).replace("{seconds:.0f}", seconds).replace("{seconds}", seconds)
    parts = []
    if previous is not None and previous[2]:
        parts.append(CONTEXT.format(start=previous[0], end=previous[1], previous=previous[2]))
    parts += [task, ANSWER_FORMAT]
    return "\n".join(parts)


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().strip("<>\"'").strip()


def parse_answer(answer: str) -> dict[str, Any]:
    """The structured fields of a constrained answer (lines or one run-on line, any case)."""
    marks = list(re.finditer(rf"\b({'|'.join(FIELDS)})\s*:", answer, flags=re.IGNORECASE))
    found: dict[str, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(answer)
        key = mark.group(1).upper()
        if key not in found:
            found[key] = _clean(answer[mark.end() : end])
    description = found.get("DESCRIPTION") or (_clean(answer)[:400] if not marks else None)
    out: dict[str, Any] = {
        "description": description or None,
        "people_count": people_count(found.get("PEOPLE")),
        "setting": setting_of(found.get("SETTING")),
        "activity": found.get("ACTIVITY") or None,
        "objects": objects_of(found.get("OBJECTS")),
        "text_visible": yes_no(found.get("TEXT")),
    }
    others = sum(1 for key in FIELDS[1:] if found.get(key))
    out["parsed"] = bool(found.get("DESCRIPTION")) and others >= 3
    return out


def people_count(value: str | None) -> int | None:
    if not value:
        return None
    digits = re.search(r"\d+", value)
    if digits:
        return int(digits.group())
    for word in re.findall(r"[a-zäöüß]+", value.lower()):
        if word in NUMBER_WORDS:
            return NUMBER_WORDS[word]
    return None


def setting_of(value: str | None) -> str | None:
    if not value:
        return None
    low = value.lower()
    for word in SETTINGS_VOCAB:
        if re.search(rf"\b{word}\b", low):
            return word
    return low[:60]


def objects_of(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items: list[str] = []
    for part in re.split(r",|;|\band\b|\n", value.lower()):
        item = _clean(part).strip(".")
        if item and item not in {"none", "no objects", "nothing"} and item not in items:
            items.append(item)
    return items[:10]


def yes_no(value: str | None) -> bool | None:
    if not value:
        return None
    first = re.findall(r"[a-zäöüß]+", value.lower())[:1]
    if first and first[0] in YES:
        return True
    if first and first[0] in NO:
        return False
    return None


def normalised(text: str | None) -> str:
    """Lower-case words without punctuation (for the verbatim-repeat test); umlauts are kept."""
    return " ".join(re.findall(r"\w+", (text or "").lower()))


def repeats(description: str | None, previous: str | None) -> bool:
    """Whether ``description`` repeats ``previous`` verbatim (case and punctuation aside)."""
    text = normalised(description)
    return bool(text) and text == normalised(previous)


def examined_windows(rows: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """The windows whose description exists and does not repeat the previous one (the claim)."""
    return [(r["start_s"], r["end_s"]) for r in rows if r["description"] and not r["repeats_previous"]]


def distinct_ngram_ratio(texts: Sequence[str | None], n: int = DISTINCT_N) -> float | None:
    """Distinct word n-grams / all word n-grams over ``texts`` (None when there are none)."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        words = normalised(text).split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else None


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    settings = context.settings
    duration = float(media.duration_s)
    vlm = context.models.load(MODEL_ID, context.device)  # ModelUnavailable: no rows, not covered
    generation = generation_settings(settings.vlm_max_new_tokens)
    times = np.asarray(media.frame_times, dtype=np.float64)
    batch = max(1, int(context.batch_size))
    spans = windows(duration, settings.vlm_window_s)
    rows: list[dict[str, Any]] = []
    for first in range(0, len(spans), batch):
        chunk = []
        for index in range(first, min(first + batch, len(spans))):
            start, end = spans[index]
            picked = pick_frames(times, start, end, settings.vlm_frames_per_window)
            if picked.size:
                chunk.append((index, start, end, picked))
        if not chunk:
            continue
        # context: the last description before this batch (with batch size 1: the previous window's)
        previous = (rows[-1]["start_s"], rows[-1]["end_s"], rows[-1]["description"] or "") if rows else None
        prompts = [build_prompt(settings.vlm_prompt, (start, end), previous) for _, start, end, _ in chunk]
        videos = [[np.asarray(frame) for frame in media.frames[picked]] for *_, picked in chunk]
        fps = [max(len(v) / max(end - start, 1e-3), 0.1) for v, (_, start, end, _) in zip(videos, chunk)]
        results = vlm.generate_batch(prompts, videos, fps, settings.vlm_max_pixels, generation)
        new_rows = []
        for (index, start, end, picked), result in zip(chunk, results):
            fields = parse_answer(result.text)
            before = new_rows[-1] if new_rows else rows[-1] if rows else None
            new_rows.append({
                "start_s": start, "end_s": end, "window_index": index, "frames": len(picked),
                "frame_times": [round(float(times[i]), 3) for i in picked], **fields, "description_de": None,
                "repeats_previous": before is not None and repeats(fields["description"], before["description"]),
                "answer": result.text, "new_tokens": result.tokens, "generate_s": result.seconds,
            })
        described = [r for r in new_rows if r["description"]]
        if settings.vlm_german and described:
            german = vlm.generate_batch([GERMAN_PROMPT.format(description=r["description"]) for r in described],
                                        None, [1.0] * len(described), settings.vlm_max_pixels, generation)
            for row, translated in zip(described, german):
                row["description_de"] = translated.text or None
                row["generate_s"] += translated.seconds
        for row in new_rows:
            row["generate_s"] = round(row["generate_s"], 3)
        rows += new_rows
    seconds = [r["generate_s"] for r in rows]
    repeated_count = sum(1 for r in rows if r["repeats_previous"])
    metadata: dict[str, Any] = {
        "model": vlm.resolved.name,
        "model_origin": vlm.resolved.origin,
        "device": vlm.placed_device,
        "precision": vlm.precision,
        "attention": vlm.attention,
        "windows": len(rows),
        "window_s": settings.vlm_window_s,
        "repeated_windows": repeated_count,
        "verbatim_repeat_share": round(repeated_count / len(rows), 4) if rows else None,
        "distinct_3gram_ratio": distinct_ngram_ratio([r["description"] for r in rows]),
        "parsed_share": round(sum(r["parsed"] for r in rows) / len(rows), 4) if rows else None,
        "s_per_window": round(float(np.mean(seconds)), 3) if seconds else None,
        "batch_windows": batch,
        "generation": ", ".join(f"{k}={v}" for k, v in generation.items()),
        "german": settings.vlm_german,
    }
    if repeated_count:
        metadata["note"] = f"{repeated_count} window(s) repeat the previous description verbatim: not counted as examined"
    return AnalyzerOutput(rows=rows, examined=examined_windows(rows), metadata={k: v for k, v in metadata.items() if v is not None})


SPEC = AnalyzerSpec(
    name="qwen2_vl_temporal",
    modality="visual",
    description="A description per window (who, what, where, on-screen action) with people count, setting, "
                "activity, objects and visible text from a video-language model (Qwen2-VL)",
    version="1",
    columns=COLUMNS,
    run=run,
    model="video-language model (TIKTOK_ASSETS_VLM_MODEL)",
    main_figure="distinct_3gram_ratio",
    timeline_label="CASE WHEN description IS NOT NULL THEN 'vlm: ' || left(description, 60) END",
    settings=("vlm_model", "vlm_revision", "vlm_window_s", "vlm_frames_per_window", "vlm_max_pixels", "vlm_prompt",
              "vlm_precision", "vlm_german", "vlm_max_new_tokens"),
    model_packages=("transformers",),
)
