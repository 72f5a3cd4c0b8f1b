"""The pieces of per-utterance language ID in ``speech_transcription`` that need no model: German/
English word evidence, how utterances become encoder windows, and how two decodings of an unsure
window are weighed (log probability, language ID, word evidence, repetition loops)."""

from __future__ import annotations

import pytest
from faster_whisper.transcribe import Segment, Word

from tiktok_assets.analyzers.speech_transcription import (
    MAX_WINDOW_S,
    Decoding,
    Heard,
    Window,
    choose,
    clip_prior,
    doubtful,
    heard_rows,
    long_windows,
    looping,
    split_by_utterance,
    utterance_windows,
)
from tiktok_assets.language_words import german_evidence


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Ich habe heute leider keine Zeit für dich.", 1),
        ("Wir fahren morgen früh mit dem Zug nach München.", 1),
        ("Die Bedienung war wirklich freundlich.", 1),
        ("I don't have time for you today.", -1),
        ("We are taking the early train to Munich tomorrow.", -1),
        ("The waiter was really friendly and the food was amazing.", -1),
    ],
)
def test_word_evidence_reads_german_and_english(text, sign):
    assert sign * german_evidence(text) >= 0.3, german_evidence(text)


def test_word_evidence_is_zero_without_words():
    assert german_evidence("") == 0.0 and german_evidence("... 42 !") == 0.0


def test_short_utterances_join_their_nearer_neighbour():
    spans = [(0.5, 3.0), (3.1, 3.4), (4.0, 7.0), (7.5, 7.8), (9.5, 12.0), (40.0, 40.3), (41.0, 70.0)]
    # 3.1-3.4 is 0.1 s from the first and 0.6 s from the next; 7.5-7.8 is nearer the one before;
    # 40.0-40.3 would make a window over MAX_WINDOW_S with its neighbour and stays alone
    assert utterance_windows(spans) == [(0.5, 3.4), (4.0, 7.8), (9.5, 12.0), (40.0, 40.3), (41.0, 70.0)]
    assert utterance_windows([(1.0, 1.2)]) == [(1.0, 1.2)]
    assert utterance_windows([]) == []


def window(de: tuple[float, str], en: tuple[float, str], p_de: float, p_en: float) -> Window:
    w = Window(0.0, 3.0, sorted([("de", p_de), ("en", p_en)], key=lambda c: -c[1]), how="decoded")
    w.decodings = {
        "de": Decoding("de", [], de[0], german_evidence(de[1])),
        "en": Decoding("en", [], en[0], german_evidence(en[1])),
    }
    return w


def test_a_german_decoding_that_reads_as_english_means_english():
    """Whisper told "German" on English speech often writes the English words: that decoding
    reads as English, so English wins although the scores are close."""
    w = window((-0.45, "Please leave a comment if you like this video"),
               (-0.50, "Please leave a comment if you liked this video"), 0.55, 0.30)
    choose(w)
    assert w.language == "en"


def test_language_id_breaks_a_tie_between_two_fluent_decodings():
    """German speech decoded as English often comes out as a fluent translation: with the scores
    level, the language ID's clear preference decides."""
    w = window((-0.90, "Wir brauchen noch etwas Salz und Pfeffer"),
               (-0.88, "We still need some salt and pepper"), 0.60, 0.05)
    choose(w)
    assert w.language == "de"


def test_an_unsure_english_guess_counts_less():
    """Whisper's ID leans to English: German it is unsure about often comes out as English first;
    with level decodings the discounted English guess loses."""
    w = window((-0.98, "Meine Schwester kauft jeden Morgen frisches Brot"),
               (-1.02, "My wish is to come to you even more than for the court"), 0.15, 0.54)
    choose(w)
    assert w.language == "de"


def test_a_decoding_in_a_repetition_loop_loses():
    w = window((-1.30, "Am Wochenende fahren wir in die Berge"), (-0.90, "I'm looking to find a beer"), 0.14, 0.26)
    choose(w)
    assert w.language == "en"  # the better score wins ...
    w.decodings["en"].failed = True  # ... unless it failed Whisper's compression check or loops
    choose(w)
    assert w.language == "de"
    assert looping("I'm looking to find a neat in-be-be-beer-g-g-g-g-g-g.")
    assert looping("Die Zwiebeln, die Zwiebeln, die Zwiebeln, die Zwiebeln.")
    assert not looping("We will need a large pan and some olive oil, oil and salt.")


def test_long_windows_keep_within_whispers_window():
    utterances = [(t, t + 2.5) for t in range(0, 70, 3)]
    groups = long_windows(utterances)
    assert [u for g in groups for u in g] == utterances
    assert all(g[-1][1] - g[0][0] <= MAX_WINDOW_S for g in groups) and len(groups) == 3


def heard(text: str, probability: float) -> Heard:
    words = [Word(i * 0.3, i * 0.3 + 0.25, " " + w, probability) for i, w in enumerate(text.split())]
    return Heard(0.0, 3.0, [(None, words)])


def test_doubtful_utterances_of_a_whole_window_decoding():
    english = "Please leave a comment if you liked this video"
    german = "Wir brauchen noch etwas Salz und Pfeffer"
    assert not doubtful(heard(english, 0.9), "en")
    assert doubtful(heard(english, 0.9), "de")  # English words under a German decoding
    assert doubtful(heard("I have come to ask a user in an awesome top", 0.35), "en")  # low-scoring English
    assert not doubtful(heard(german, 0.35), "de")  # German scores lower and is still German
    assert doubtful(heard(german, 0.9), "en")  # German words under an English decoding
    assert doubtful(Heard(0.0, 1.0), "en")  # nothing heard


def test_a_segment_spanning_two_utterances_is_split_between_them():
    words = [Word(0.1, 0.5, " Hello", 0.9), Word(0.5, 1.0, " everyone.", 0.9),
             Word(1.6, 2.0, " Heute", 0.8), Word(2.0, 2.6, " kochen", 0.8)]
    segment = Segment(0, 0, 0.0, 2.6, " Hello everyone. Heute kochen", [1, 2, 3, 4], -0.4, 1.1, 0.05, words, 0.0)
    decoding = Decoding("en", [segment], -0.4, 0.0)
    parts = split_by_utterance(decoding, 10.0, [(10.0, 11.1), (11.5, 12.7)])
    assert [h.text for h in parts] == [" Hello everyone.", " Heute kochen"]
    rows = heard_rows(parts[1], 10.0, 12.7, "de", 0.7)
    assert [(r["start_s"], r["end_s"], r["text"]) for r in rows] == [(11.6, 12.6, "Heute kochen")]
    assert [(w["start_s"], w["word"]) for w in rows[0]["words"]] == [(11.6, "Heute"), (12.0, "kochen")]


def test_clip_prior_turns_a_close_call_to_the_clip_language():
    sure = [Window(i, i + 2.0, [("de", 0.97), ("en", 0.01)], language="de") for i in range(4)]
    prior = clip_prior(window((-1.0, "x"), (-1.0, "x"), 0.3, 0.3), sure)
    assert prior == pytest.approx({"de": 0.9, "en": 0.1})  # kept within PRIOR_FLOOR
    w = window((-1.20, "Am Wochenende fahren wir"), (-0.80, "At the weekend we drive"), 0.11, 0.19)
    choose(w)
    assert w.language == "en"  # alone it would be English
    choose(w, prior)
    assert w.language == "de"
    mixed = sure[:2] + [Window(9.0, 11.0, [("en", 0.99), ("de", 0.0025)], language="en")] * 2
    choose(w, clip_prior(w, mixed))
    assert w.language == "en"  # a mixed clip gives no prior to speak of
