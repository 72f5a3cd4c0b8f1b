"""Keywords of what is said and shown, the caption's hashtags and mentions, and whether they agree.

Keywords come from YAKE (unsupervised, per language with its German/English stop words) run on the
transcript (``speech_transcription``, per segment language) and on the on-screen text
(``text_overlay``, per track language), at most ``TOP`` per source and language, up to two words.
Hashtags and @mentions come from the yt-dlp caption and tags stored at ingest.

One row per term, all spanning the whole video:

* ``kind``: ``keyword`` | ``hashtag`` | ``mention``; ``term``: as written; ``source``: ``speech`` /
  ``text`` for keywords, ``caption`` for hashtags and mentions; ``language``: of the text it came
  from (keywords).
* ``score``: YAKE's score (lower is more relevant), ``rank``: 1 = most relevant within its source
  and language; null for hashtags/mentions.
* ``said``/``shown``: the term occurs in the transcript / in an on-screen text track (folded:
  case, umlauts and ß ignored; a hashtag also matches the same letters spread over up to four
  words, "#linkinbio" = "link in bio", and inflections of a stem of at least five letters,
  "nudel"/"nudeln"); ``first_said_s``/``first_shown_s``: when first.
* Hashtag-content agreement: ``agrees`` = said or shown (hashtag rows); metadata gives the share.
"""

from __future__ import annotations

import pyarrow as pa

from . import _text_match as tm
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

TOP = 10
MAX_WORDS = 2
JOIN_MAX = 4

COLUMNS = (
    pa.field("kind", pa.string()),
    pa.field("term", pa.string()),
    pa.field("source", pa.string()),
    pa.field("language", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("rank", pa.int64()),
    pa.field("said", pa.bool_()),
    pa.field("shown", pa.bool_()),
    pa.field("first_said_s", pa.float64()),
    pa.field("first_shown_s", pa.float64()),
    pa.field("agrees", pa.bool_()),
)


def yake_keywords(text: str, language: str) -> list[tuple[str, float]]:
    import yake

    lan = language if language in ("de", "en") else "en"
    extractor = yake.KeywordExtractor(lan=lan, n=MAX_WORDS, top=TOP, dedupLim=0.8)
    return [(kw, float(score)) for kw, score in extractor.extract_keywords(text)]


def _word_match(a: str, b: str) -> bool:
    """Equal, or inflections of one stem: the shorter has >= 5 letters, the longer starts with all
    but its last letter and is at most two letters longer ("nudel"/"nudeln", "rezept"/"rezepte")."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 5 and long.startswith(short[:-1]) and len(long) - len(short) <= 2


def first_occurrence(term: str, items: list[tm.Item]) -> float | None:
    """Start time of the first place in ``items`` where ``term`` (its folded words, or its letters
    spread over up to JOIN_MAX consecutive words) occurs."""
    parts = tm.words(term)
    if not parts:
        return None
    joined = "".join(parts)
    best = None
    for item in items:
        toks = item.tokens
        for i in range(len(toks)):
            hit = False
            if i + len(parts) <= len(toks) and all(_word_match(p, t.word) for p, t in zip(parts, toks[i:])):
                hit = True
            else:
                acc = ""
                for j in range(i, min(len(toks), i + JOIN_MAX)):
                    acc += toks[j].word
                    if j > i and acc == joined:
                        hit = True
                        break
                    if len(acc) >= len(joined):
                        break
            if hit:
                best = toks[i].start_s if best is None else min(best, toks[i].start_s)
                break
    return best


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    duration = float(media.duration_s)
    text_items = tm.text_items(context.inputs.get("text_overlay"))
    speech_items = tm.speech_items(context.inputs.get("speech_transcription"))
    info = tm.caption_of(context.settings, context.video_id)
    rows = []

    def row(kind: str, term: str, source: str, **extra) -> dict:
        said = first_occurrence(term, speech_items)
        shown = first_occurrence(term, text_items)
        return {"start_s": 0.0, "end_s": round(duration, 3), "kind": kind, "term": term, "source": source,
                "said": said is not None, "shown": shown is not None,
                "first_said_s": None if said is None else round(said, 3),
                "first_shown_s": None if shown is None else round(shown, 3), **extra}

    table = context.inputs.get("speech_transcription")
    text_table = context.inputs.get("text_overlay")
    for source, tab in (("speech", table), ("text", text_table)):
        if tab is None or tab.num_rows == 0:
            continue
        by_language: dict[str, list[str]] = {}
        for r in tab.to_pylist():
            lang = (r.get("language") or "en")[:2]
            by_language.setdefault(lang, []).append((r.get("text") or "").strip())
        for lang, texts in sorted(by_language.items()):
            text = ". ".join(t.rstrip(".") for t in texts if t)
            for rank, (kw, score) in enumerate(yake_keywords(text, lang), 1):
                rows.append(row("keyword", kw, source, language=lang, score=round(score, 5), rank=rank, agrees=None))
    for tag in info.get("hashtags") or []:
        r = row("hashtag", f"#{tag}", "caption", language=None, score=None, rank=None)
        r["agrees"] = r["said"] or r["shown"]
        rows.append(r)
    for name in info.get("mentions") or []:
        rows.append(row("mention", f"@{name}", "caption", language=None, score=None, rank=None, agrees=None))
    tags = [r for r in rows if r["kind"] == "hashtag"]
    metadata = {
        "keywords": sum(1 for r in rows if r["kind"] == "keyword"),
        "hashtags": len(tags),
        "top": ", ".join(r["term"] for r in rows if r["kind"] == "keyword" and r["rank"] <= 3)[:200] or "none",
    }
    if tags:
        metadata["hashtag_agreement"] = round(sum(1 for r in tags if r["agrees"]) / len(tags), 3)
    return AnalyzerOutput(rows=rows, examined=[(0.0, duration)], metadata=metadata)


SPEC = AnalyzerSpec(
    name="keywords",
    modality="text",
    description="Keywords of the transcript and on-screen text (YAKE, German/English), the caption's hashtags "
                "and mentions, and whether each hashtag is said or shown",
    version="1",
    columns=COLUMNS,
    run=run,
    depends_on=("text_overlay", "speech_transcription"),
    main_figure="keywords",
    model_packages=("yake",),
)
