"""Calls to action (follow, like, comment, share, save, link in bio, buy/code, part 2) said or shown.

Sources: the on-screen text tracks (``text_overlay``), the transcript (``speech_transcription``,
word times) and the yt-dlp caption/description stored at ingest. The phrases, German and English,
are data: ``tiktok_assets/data/cta_phrases.csv`` (class, language, phrase; matching in
``_text_match``: case-, umlaut- and ß-insensitive, wildcards, the longest phrase wins).

One row per call to action:

* ``start_s``/``end_s``: the matched words (speech), the text track's span (text), the whole video
  (caption).
* ``source``: ``text`` | ``speech`` | ``caption``; ``cta_class``: follow, like, comment, share, save,
  link_in_bio, buy, part_2; ``phrase``: the listed phrase that matched; ``phrase_language``: its
  language; ``text``: the words that matched as read or heard; ``context``: the whole track or
  segment.
* ``said_and_shown``: a speech and a text row of the same class overlap in time (within
  ``TOGETHER_S``); set on both.
* ``confidence``: OCR confidence of the track / mean word probability of the segment; null for
  the caption.
"""

from __future__ import annotations

from functools import cache

import pyarrow as pa

from . import _text_match as tm
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

TOGETHER_S = 1.5
PHRASES_FILE = tm.DATA_DIR / "cta_phrases.csv"

COLUMNS = (
    pa.field("source", pa.string()),
    pa.field("cta_class", pa.string()),
    pa.field("phrase", pa.string()),
    pa.field("phrase_language", pa.string()),
    pa.field("text", pa.string()),
    pa.field("context", pa.string()),
    pa.field("said_and_shown", pa.bool_()),
    pa.field("confidence", pa.float64()),
)


@cache
def phrases() -> tuple[tm.Phrase, ...]:
    rows = tm.read_csv(PHRASES_FILE)
    return tuple(tm.Phrase.parse(r["class"], r["language"], r["phrase"]) for r in rows if r.get("phrase"))


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = float(media.duration_s)
    items = tm.all_items(context, duration)
    rows = []
    for item in items:
        for m in tm.find_phrases(item, phrases()):
            rows.append({
                "start_s": round(max(0.0, m.start_s), 3),
                "end_s": round(min(duration, m.end_s), 3),
                "source": item.source,
                "cta_class": m.phrase.label,
                "phrase": m.phrase.text,
                "phrase_language": m.phrase.language,
                "text": m.text,
                "context": " ".join(t.raw for t in item.tokens)[:300],
                "said_and_shown": False,
                "confidence": None if item.confidence is None else round(float(item.confidence), 4),
            })
    tm.mark_said_and_shown(rows, "cta_class", TOGETHER_S)
    rows.sort(key=lambda r: (r["start_s"], r["source"]))
    metadata = {
        "ctas": len(rows),
        "classes": ", ".join(sorted({r["cta_class"] for r in rows})) or "none",
        "sources": ", ".join(sorted({i.source for i in items})) or "none",
        "said_and_shown": sum(1 for r in rows if r["said_and_shown"] and r["source"] == "speech"),
    }
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="comment_cta_detection",
    modality="text",
    description="Calls to action (follow, like, comment, share, save, link in bio, buy/code, part 2) in on-screen "
                "text, speech and the caption, German and English phrases from a data file",
    version=f"1-{tm.data_digest(PHRASES_FILE)}",
    columns=COLUMNS,
    run=run,
    depends_on=("text_overlay", "speech_transcription"),
    main_figure="ctas",
    timeline_label="'CTA ' || cta_class || ' (' || source || ')'",
)
