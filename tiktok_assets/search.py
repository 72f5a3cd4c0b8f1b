"""Full-text search across every analyzed video (tantivy, an embedded search engine).

One document per searchable row of the warehouse, with its video, time span, source and text:

* ``speech``: a ``speech_transcription`` segment (its words are stored with it: a hit's span is
  narrowed to the words that match the query, so a phrase in a long segment gets its own seconds);
* ``text``: an on-screen text track (``text_overlay``: ``text``);
* ``description``: a window description of a vision-language model (``qwen2_vl_temporal``:
  ``description``);
* ``label``: every other analyzer's readable label (the ``timeline`` view: cuts, camera motion,
  audio events, phases...), runs of one label merged.

Text is folded before it is analysed (lower case, ä/ö/ü/ß spelled ae/oe/ue/ss, then ASCII folding)
so ``Grüße``, ``GRÜSSE`` and ``gruesse`` are one term. It is indexed in a German field (Snowball
German stemmer: ``Tomaten`` and ``Tomate`` match), an English field (English stemmer) and an
unstemmed field; a row goes into the stemmed field of its language (the transcript's language, a
``language`` column, or the German/English word evidence of ``language_words``; both when unsure).
A query (tantivy's query language: words, ``"a phrase"``, ``-word``) is analysed the same way, in
the stemmed field of ``--lang`` (both without it) and the unstemmed one; hits are ranked by BM25.

The index lives in ``<data root>/search/index-v<N>``. The ``search_index`` asset (re)indexes a
video: its old documents are deleted and the new ones added in one tantivy commit, so readers see
either the old or the new documents of a video, never a mix; writers are serialised by a lock file.
"""

from __future__ import annotations

import fcntl
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .textfold import fold

INDEX_VERSION = 1  # a new schema or analysis: bump it (a fresh folder) and assets.SEARCH_VERSION (re-index)
SOURCES = ("speech", "text", "description", "label")
# analyzer table -> (source, text column); the other analyzers' rows are searched by their label
TEXT_TABLES = {"speech_transcription": ("speech", "text"), "text_overlay": ("text", "text"),
               "qwen2_vl_temporal": ("description", "description")}
LABEL_MERGE_GAP_S = 0.5
WORD_CLUSTER_GAP_S = 1.0
LOCK_TIMEOUT_S = 120.0
FIELDS = {"de": "text_de", "en": "text_en"}


class SearchError(ValueError):
    """The search could not run; the message says why and what to do."""


@dataclass(frozen=True)
class Hit:
    video_id: str
    start_s: float
    end_s: float
    source: str
    analyzer: str
    text: str
    language: str | None
    score: float


def index_dir(settings: Settings) -> Path:
    return settings.home / "search" / f"index-v{INDEX_VERSION}"


def _analyzer(stemmer: str | None):
    import tantivy

    builder = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase())
               .filter(tantivy.Filter.ascii_fold()))
    if stemmer:
        builder = builder.filter(tantivy.Filter.stemmer(stemmer))
    return builder.build()


ANALYZERS = {"tt_de": "german", "tt_en": "english", "tt_plain": None}


def _schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("video_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("source", stored=True, tokenizer_name="raw")
    builder.add_text_field("analyzer", stored=True, tokenizer_name="raw")
    builder.add_text_field("language", stored=True, tokenizer_name="raw")
    builder.add_float_field("start_s", stored=True)
    builder.add_float_field("end_s", stored=True)
    builder.add_bytes_field("payload", stored=True, indexed=False)  # JSON: the text and its words
    builder.add_text_field("text_de", tokenizer_name="tt_de")
    builder.add_text_field("text_en", tokenizer_name="tt_en")
    builder.add_text_field("text_plain", tokenizer_name="tt_plain")
    return builder.build()


def open_index(settings: Settings, create: bool = True):
    """The tantivy index of the data root with its analysers registered (None if absent and not
    ``create``)."""
    import tantivy

    folder = index_dir(settings)
    if not (folder / "meta.json").is_file():
        if not create:
            return None
        folder.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(_schema(), path=str(folder), reuse=True)
    for name, stemmer in ANALYZERS.items():
        index.register_tokenizer(name, _analyzer(stemmer))
    return index


@contextmanager
def _writer_lock(settings: Settings) -> Iterator[None]:
    path = settings.home / "search" / "writer.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SearchError(f"the search index is locked by another writer for {LOCK_TIMEOUT_S:.0f} s "
                                      f"({path}); try again when it finishes") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def guess_language(text: str) -> str | None:
    """``de`` or ``en`` from the word evidence of ``language_words``; None when unsure."""
    from .language_words import german_evidence

    evidence = german_evidence(text)
    return "de" if evidence >= 0.2 else "en" if evidence <= -0.2 else None


def _language(value: Any) -> str | None:
    text = str(value or "").lower()[:2]
    return text if text in FIELDS else None


def video_documents(settings: Settings, video_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The search documents of one video from the warehouse, and the tables they came from."""
    from . import catalog

    store = catalog.warehouse(settings)
    docs: list[dict[str, Any]] = []
    used: list[str] = []
    for table_name, (source, column) in TEXT_TABLES.items():
        table = store.read(table_name, video_id)
        if table is None or column not in table.column_names:
            continue
        used.append(table_name)
        for row in table.to_pylist():
            text = (row.get(column) or "").strip()
            if not text:
                continue
            language = _language(row.get("language")) or guess_language(text)
            words = [{"w": w["word"], "s": w["start_s"], "e": w["end_s"]} for w in row.get("words") or []
                     if w.get("word") and w.get("start_s") is not None]
            docs.append({"source": source, "analyzer": table_name, "start_s": float(row["start_s"]),
                         "end_s": float(row["end_s"]), "text": text, "language": language, "words": words})
    labels = _labels(settings, video_id)
    if labels:
        used.append("timeline")
    docs += labels
    return docs, used


def _labels(settings: Settings, video_id: str) -> list[dict[str, Any]]:
    """Label documents of the analyzers without a text table; consecutive equal labels merged."""
    from .steps import readable_timeline

    merged: list[dict[str, Any]] = []
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for row in readable_timeline(settings, video_id):
        if row["analyzer"] in TEXT_TABLES:
            continue
        label = str(row["label"]).strip()
        key = (row["analyzer"], label)
        prev = last.get(key)
        if prev is not None and row["start_s"] - prev["end_s"] <= LABEL_MERGE_GAP_S:
            prev["end_s"] = max(prev["end_s"], float(row["end_s"]))
            continue
        doc = {"source": "label", "analyzer": row["analyzer"], "start_s": float(row["start_s"]),
               "end_s": float(row["end_s"]), "text": label, "language": "en", "words": []}
        merged.append(doc)
        last[key] = doc
    return merged


def _searchable(text: str) -> str:
    """Folded text with the separators of analyzer labels (``pan_left``) made spaces."""
    return fold(text).replace("_", " ")


def index_video(settings: Settings, video_id: str) -> dict[str, Any]:
    """Replace the video's documents in the index (one commit); returns counts per source."""
    import tantivy

    docs, used = video_documents(settings, video_id)
    with _writer_lock(settings):
        index = open_index(settings)
        writer = index.writer(heap_size=32_000_000, num_threads=1)
        try:
            writer.delete_documents_by_term("video_id", video_id)
            for doc in docs:
                folded = _searchable(doc["text"])
                fields: dict[str, Any] = {
                    "video_id": video_id, "source": doc["source"], "analyzer": doc["analyzer"],
                    "language": doc["language"] or "", "start_s": doc["start_s"], "end_s": doc["end_s"],
                    "payload": json.dumps({"text": doc["text"], "words": doc["words"]}).encode(),
                    "text_plain": folded,
                }
                for language, field in FIELDS.items():
                    if doc["language"] in (None, language):
                        fields[field] = folded
                writer.add_document(tantivy.Document(**fields))
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            writer.rollback()
            raise
    counts = {source: sum(d["source"] == source for d in docs) for source in SOURCES}
    return {"documents": len(docs), **counts, "tables": used}


_QUERY_CHARS = re.compile(r"[^\w\s\"-]")


def _query_text(query: str) -> str:
    """The folded query with tantivy's syntax reduced to words, phrases and ``-word``."""
    text = _QUERY_CHARS.sub(" ", _searchable(query))
    if text.count('"') % 2:
        text = text.replace('"', " ")
    return re.sub(r"(?<!\s)-|-(?=\s|$)", " ", text).strip()


def _terms(text: str, analyzers: list[Any]) -> set[str]:
    return {t for a in analyzers for t in a.analyze(_searchable(text))}


def _narrow(words: list[dict[str, Any]], wanted: set[str], analyzers: list[Any]) -> tuple[float, float] | None:
    """The span of the first cluster of words matching ``wanted`` (gaps <= WORD_CLUSTER_GAP_S)."""
    hits = [w for w in words if _terms(w["w"], analyzers) & wanted]
    if not hits:
        return None
    start, end = hits[0]["s"], hits[0]["e"]
    for w in hits[1:]:
        if w["s"] - end > WORD_CLUSTER_GAP_S:
            break
        end = max(end, w["e"])
    return float(start), float(end)


def search(settings: Settings, query: str, lang: str | None = None, limit: int = 10) -> list[Hit]:
    """Ranked hits of ``query`` over every indexed video (see the module docstring)."""
    if lang not in (None, "de", "en"):
        raise SearchError(f"unknown language {lang!r}: use de or en (or leave it out for both)")
    text = _query_text(query)
    if not re.search(r"\w", text):
        raise SearchError("the query has no word to search for")
    index = open_index(settings, create=False)
    if index is None:
        return []
    index.reload()
    fields = ([FIELDS[lang]] if lang else list(FIELDS.values())) + ["text_plain"]
    try:
        parsed = index.parse_query(text, fields)
    except ValueError as exc:
        raise SearchError(f"cannot read the query {query!r}: {exc}") from exc
    searcher = index.searcher()
    analyzers = [_analyzer(ANALYZERS[name]) for name in (["tt_de"] if lang == "de" else ["tt_en"] if lang == "en"
                                                         else ["tt_de", "tt_en"])]
    wanted = _terms(re.sub(r"-\w+", " ", text).replace('"', " "), analyzers)
    hits = []
    for score, address in searcher.search(parsed, limit).hits:
        doc = searcher.doc(address)
        payload = json.loads(bytes(doc["payload"][0]))
        start, end = doc["start_s"][0], doc["end_s"][0]
        span = _narrow(payload["words"], wanted, analyzers)
        if span is not None:
            start, end = span
        hits.append(Hit(doc["video_id"][0], round(start, 3), round(end, 3), doc["source"][0], doc["analyzer"][0],
                        payload["text"], doc["language"][0] or None, round(float(score), 4)))
    return hits


def hits_text(hits: list[Hit], fmt: str = "table") -> str:
    """Hits as an aligned table (or JSON lines with ``fmt='json'``)."""
    if fmt == "json":
        return "\n".join(json.dumps(hit.__dict__, ensure_ascii=False) for hit in hits)
    if not hits:
        return "no match (videos are indexed by the score run that follows their analysis)"
    lines = [f"{'score':>7}  {'video':<20} {'span':<15} {'source':<30} text"]
    for hit in hits:
        text = " ".join(hit.text.split())
        text = text if len(text) <= 100 else text[:99] + "…"
        span = f"{hit.start_s:.1f}-{hit.end_s:.1f}s"
        lines.append(f"{hit.score:7.3f}  {hit.video_id:<20} {span:<15} {hit.source + ' (' + hit.analyzer + ')':<30} {text}")
    return "\n".join(lines)
