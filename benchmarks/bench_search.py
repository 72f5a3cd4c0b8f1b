"""Benchmark the search index: indexing many videos' transcripts and text, and query latency.

Run: ``python benchmarks/bench_search.py [--videos 500] [--segments 40]``. Writes synthetic
warehouse tables (German and English sentences drawn from small word lists, 8 words per segment,
and on-screen text rows) into a fresh data root, indexes each video the way the ``search_index``
asset does (one commit per video), then times queries (a word, a stemmed German word, a phrase,
an umlaut variant). Prints seconds per video indexed and milliseconds per query (median of 20).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa

GERMAN_TEXT = ("heute kochen wir frische Tomaten mit Basilikum und viel Knoblauch für die ganze Familie "
          "danach schneiden wir Zwiebeln Grüße aus München schön lecker")
ENGLISH_TEXT = ("today we cook fresh tomatoes with basil and garlic for the whole family then we cut "
           "onions and fry them in a big pan the secret ingredient is love")
GERMAN, ENGLISH = GERMAN_TEXT.split(), ENGLISH_TEXT.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--segments", type=int, default=40)
    args = parser.parse_args()
    os.environ["TIKTOK_ASSETS_HOME"] = tempfile.mkdtemp(prefix="tiktok-bench-search-")

    from tiktok_assets import catalog, search
    from tiktok_assets.analyzers import all_specs
    from tiktok_assets.config import load_settings

    settings = load_settings()
    store = catalog.warehouse(settings)
    schema = all_specs()["speech_transcription"].schema
    rng = np.random.default_rng(0)
    for v in range(args.videos):
        video_id = f"bench-{v:05d}"
        rows, texts = [], []
        for k in range(args.segments):
            language = "de" if rng.random() < 0.5 else "en"
            vocab = GERMAN if language == "de" else ENGLISH
            words = [str(w) for w in rng.choice(vocab, 8)]
            start = 1.5 * k
            rows.append({"video_id": video_id, "start_s": start, "end_s": start + 1.4, "text": " ".join(words),
                         "language": language, "words": [{"word": w, "start_s": start + 0.17 * i,
                                                          "end_s": start + 0.17 * i + 0.15, "probability": 0.9}
                                                         for i, w in enumerate(words)]})
            if k % 4 == 0:
                texts.append({"video_id": video_id, "start_s": start, "end_s": start + 3.0,
                              "text": " ".join(str(w) for w in rng.choice(vocab, 4))})
        store.write("speech_transcription", video_id, pa.Table.from_pylist(rows, schema=schema))
        store.write("text_overlay", video_id, pa.Table.from_pylist(texts))
    catalog.refresh_catalog(settings)
    began = time.perf_counter()
    documents = 0
    for v in range(args.videos):
        documents += search.index_video(settings, f"bench-{v:05d}")["documents"]
    indexing = time.perf_counter() - began
    print(f"indexed {args.videos} videos ({documents} documents) in {indexing:.1f} s: "
          f"{1000 * indexing / args.videos:.1f} ms per video")
    for query, lang in (("Knoblauch", None), ("Tomate", "de"), ('"secret ingredient"', None), ("GRUESSE", None)):
        times, hits = [], []
        for _ in range(20):
            t = time.perf_counter()
            hits = search.search(settings, query, lang, limit=10)
            times.append(time.perf_counter() - t)
        print(f"{query!r:24} lang={lang or 'both':4} {len(hits)} hits, median {1000 * statistics.median(times):.1f} ms")


if __name__ == "__main__":
    main()
