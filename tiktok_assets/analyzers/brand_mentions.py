"""Brand names said (transcript) or shown (on-screen text) or written in the caption.

The brand list is data: ``tiktok_assets/data/brands.csv`` (brand, aliases separated by ``|``,
category) plus the rows of the CSV named by ``TIKTOK_ASSETS_BRANDS_FILE`` (same columns; a brand
listed again adds its aliases). Matching (``_text_match``) ignores case, umlauts and ß and is by
whole words (an alias may be several words); on-screen text whose spaces the OCR lost still
matches multi-word names of six letters or more.

One row per mention:

* ``start_s``/``end_s``: the words said, the text track's span, or the whole video (caption).
* ``brand``: the listed name; ``category``: from the list; ``alias``: the name that matched;
  ``source``: ``speech`` | ``text`` | ``caption``; ``text``: the words as heard/read;
  ``context``: the whole segment / track; ``said_and_shown``: the brand is also said/shown within
  ``TOGETHER_S`` of this mention (set on both); ``confidence``: OCR confidence / mean word probability.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pyarrow as pa

from . import _text_match as tm
from .base import AnalyzerContext, AnalyzerError, AnalyzerOutput, AnalyzerSpec

TOGETHER_S = 1.5
BRANDS_FILE = tm.DATA_DIR / "brands.csv"

COLUMNS = (
    pa.field("brand", pa.string()),
    pa.field("category", pa.string()),
    pa.field("alias", pa.string()),
    pa.field("source", pa.string()),
    pa.field("text", pa.string()),
    pa.field("context", pa.string()),
    pa.field("said_and_shown", pa.bool_()),
    pa.field("confidence", pa.float64()),
)


@cache
def brand_phrases(extra: Path | None) -> tuple[tuple[tm.Phrase, ...], dict[str, str]]:
    """(one phrase per brand name and alias, category per brand) from the packaged and extra CSVs."""
    rows = tm.read_csv(BRANDS_FILE)
    if extra is not None:
        try:
            rows += tm.read_csv(extra)
        except OSError as exc:
            raise AnalyzerError(f"brand list {extra} (TIKTOK_ASSETS_BRANDS_FILE) cannot be read: {exc}") from exc
    phrases, categories = [], {}
    for row in rows:
        brand = row.get("brand", "")
        if not brand:
            continue
        categories.setdefault(brand, row.get("category") or None)
        for name in [brand, *(a.strip() for a in (row.get("aliases") or "").split("|"))]:
            if name and tm.words(name):
                phrases.append(tm.Phrase.parse(brand, "", name))
    return tuple(phrases), categories


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = float(media.duration_s)
    phrases, categories = brand_phrases(context.settings.brands_file)
    items = tm.all_items(context, duration)
    rows = []
    for item in items:
        for m in tm.find_phrases(item, phrases):
            rows.append({
                "start_s": round(max(0.0, m.start_s), 3),
                "end_s": round(min(duration, m.end_s), 3),
                "brand": m.phrase.label,
                "category": categories.get(m.phrase.label),
                "alias": m.phrase.text,
                "source": item.source,
                "text": m.text,
                "context": " ".join(t.raw for t in item.tokens)[:300],
                "said_and_shown": False,
                "confidence": None if item.confidence is None else round(float(item.confidence), 4),
            })
    tm.mark_said_and_shown(rows, "brand", TOGETHER_S)
    rows.sort(key=lambda r: (r["start_s"], r["source"]))
    metadata = {"mentions": len(rows), "brands": ", ".join(sorted({r["brand"] for r in rows})) or "none",
                "brands_listed": len(categories)}
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="brand_mentions",
    modality="text",
    description="Brand names said, shown on screen or written in the caption, from an extendable brand list "
                "(case- and umlaut-insensitive)",
    version=f"1-{tm.data_digest(BRANDS_FILE)}",
    columns=COLUMNS,
    run=run,
    depends_on=("text_overlay", "speech_transcription"),
    main_figure="mentions",
    timeline_label="'brand ' || brand || ' (' || source || ')'",
    settings=("brands_file",),
)
