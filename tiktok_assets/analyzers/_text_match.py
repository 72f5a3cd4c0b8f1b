"""Phrase matching over timed words from on-screen text, the transcript and the yt-dlp caption.

Texts are *folded* before matching, the same way on both sides: lower case, ß -> ss, accents and
umlauts dropped, and ae/oe/ue -> a/o/u, so "Müller", "Mueller" and "MULLER" all match, as do
"für"/"fuer"/"fur". A phrase is a sequence of words; a word ending in ``*`` matches any word
starting with it, a lone ``*`` matches one to three words ("comment * and i'll send").
Phrases without wildcards also match on-screen text whose spaces the OCR lost ("LINKINBIO").
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def fold(text: str) -> str:
    """Lower case, ß -> ss, diacritics dropped, ae/oe/ue -> a/o/u, curly apostrophes straightened."""
    text = unicodedata.normalize("NFKD", text.lower().replace("ß", "ss").replace("’", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"([aou])e", r"\1", text)


def words(text: str) -> list[str]:
    return WORD_RE.findall(fold(text))


@dataclass(frozen=True)
class Token:
    """One folded word with the time span it was said or shown in and the original text."""

    word: str
    start_s: float
    end_s: float
    raw: str


@dataclass
class Item:
    """A unit of text from one source: a text track, a transcript segment or the caption."""

    source: str  # "text" | "speech" | "caption"
    tokens: list[Token]
    confidence: float | None = None
    language: str | None = None

    @property
    def joined(self) -> str:
        return "".join(t.word for t in self.tokens)


def item_from_text(source: str, text: str, start_s: float, end_s: float, **kw) -> Item:
    """An item whose words all share one span; each token keeps the written word it came from."""
    tokens = [Token(w, start_s, end_s, piece.strip(".,;:!?\"()[]")) for piece in text.split() for w in words(piece)]
    return Item(source, tokens, **kw)


@dataclass(frozen=True)
class Phrase:
    label: str  # class or brand
    language: str
    text: str
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, label: str, language: str, text: str) -> Phrase:
        parts = tuple(p for p in (_part(x) for x in text.split()) if p)
        return cls(label, language, text, parts)

    @property
    def literal(self) -> str | None:
        """The phrase's letters without spaces when it has no wildcard (for OCR text without spaces)."""
        return None if any("*" in p for p in self.parts) else "".join(self.parts)


def _part(word: str) -> str:
    if word == "*":
        return "*"
    star = word.endswith("*")
    folded = "".join(words(word.rstrip("*")))
    return folded + "*" if star and folded else folded


def _match_at(parts: tuple[str, ...], tokens: list[Token], i: int) -> int | None:
    """End index (exclusive) of ``parts`` matched from token ``i``, or None."""
    if not parts:
        return i
    head, rest = parts[0], parts[1:]
    if head == "*":
        for skip in (1, 2, 3):
            if i + skip <= len(tokens):
                end = _match_at(rest, tokens, i + skip)
                if end is not None:
                    return end
        return None
    if i >= len(tokens):
        return None
    word = tokens[i].word
    ok = word.startswith(head[:-1]) if head.endswith("*") else word == head
    return _match_at(rest, tokens, i + 1) if ok else None


@dataclass
class Match:
    phrase: Phrase
    item: Item
    first: int
    last: int  # inclusive token indices (for joined-letter matches: the whole item)

    @property
    def start_s(self) -> float:
        return min(t.start_s for t in self.item.tokens[self.first : self.last + 1])

    @property
    def end_s(self) -> float:
        return max(t.end_s for t in self.item.tokens[self.first : self.last + 1])

    @property
    def text(self) -> str:
        return " ".join(t.raw for t in self.item.tokens[self.first : self.last + 1])


def find_phrases(item: Item, phrases: Iterable[Phrase]) -> list[Match]:
    """Non-overlapping matches of ``phrases`` in ``item``, longest first."""
    found: list[Match] = []
    tokens = item.tokens
    for phrase in phrases:
        for i in range(len(tokens)):
            end = _match_at(phrase.parts, tokens, i)
            if end is not None and end > i:
                found.append(Match(phrase, item, i, end - 1))
        literal = phrase.literal
        if (item.source == "text" and literal and len(literal) >= 6 and literal in item.joined
                and not any(m.phrase == phrase for m in found)):
            found.append(Match(phrase, item, 0, len(tokens) - 1))
    found.sort(key=lambda m: (-(m.last - m.first), -len("".join(m.phrase.parts)), m.first))
    kept: list[Match] = []
    for m in found:
        if all(m.last < k.first or m.first > k.last for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.first)


def data_digest(*paths: Path) -> str:
    """A short digest of data files, for analyzer versions (editing a phrase list recomputes the tables)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:8]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(
            line for line in handle if line.strip() and not line.lstrip().startswith("#"))]


def caption_of(settings, video_id: str) -> dict:
    """The yt-dlp caption (description, else title), tags and uploader stored at ingest; {} when none."""
    path = Path(settings.videos_dir) / video_id / "info.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    caption = info.get("description") or info.get("title") or ""
    tags = [str(t).lstrip("#") for t in (info.get("tags") or []) if t]
    tags += [t for t in re.findall(r"#(\w+)", caption) if t not in tags]
    return {"caption": caption, "hashtags": tags, "mentions": re.findall(r"@([\w.]+)", caption)}


def text_items(table) -> list[Item]:
    """Items of a ``text_overlay`` table (one per track)."""
    if table is None or table.num_rows == 0:
        return []
    return [item_from_text("text", r["text"] or "", float(r["start_s"]), float(r["end_s"]),
                           confidence=r.get("confidence"), language=r.get("language"))
            for r in table.to_pylist()]


def speech_items(table) -> list[Item]:
    """Items of a ``speech_transcription`` table: one per segment, words timed when known."""
    if table is None or table.num_rows == 0:
        return []
    items = []
    for r in table.to_pylist():
        tokens = []
        for w in r.get("words") or []:
            if w.get("start_s") is None:
                continue
            tokens += [Token(x, float(w["start_s"]), float(w["end_s"]), (w.get("word") or "").strip())
                       for x in words(w.get("word") or "")]
        if not tokens:
            tokens = [Token(x, float(r["start_s"]), float(r["end_s"]), x) for x in words(r.get("text") or "")]
        probs = [w.get("probability") for w in r.get("words") or [] if w.get("probability") is not None]
        items.append(Item("speech", tokens, float(sum(probs) / len(probs)) if probs else None, r.get("language")))
    return items


def all_items(context, duration_s: float) -> list[Item]:
    """The video's text tracks, transcript segments and yt-dlp caption (spanning the video) as items."""
    items = text_items(context.inputs.get("text_overlay"))
    items += speech_items(context.inputs.get("speech_transcription"))
    caption = caption_of(context.settings, context.video_id).get("caption")
    if caption:
        items.append(item_from_text("caption", caption, 0.0, duration_s))
    return items


def mark_said_and_shown(rows: list[dict], key: str, within_s: float) -> None:
    """Set ``said_and_shown`` on speech and text rows of the same ``key`` within ``within_s`` of each other."""
    said = [r for r in rows if r["source"] == "speech"]
    shown = [r for r in rows if r["source"] == "text"]
    for a in said:
        for b in shown:
            if a[key] == b[key] and a["start_s"] <= b["end_s"] + within_s and b["start_s"] <= a["end_s"] + within_s:
                a["said_and_shown"] = b["said_and_shown"] = True
