"""German/English word evidence for a short transcript: which of the two languages does it read as?

Used by ``speech_transcription`` when Whisper's language ID is unsure and an utterance was decoded
in both languages: a decode that reads as the other language (English words under a German
decode, German words under an English one) tells which language was spoken. The lists are small
and general (function words, umlauts and ß, typical endings), not tied to any test sentences.
"""

from __future__ import annotations

import re
import unicodedata

_GERMAN = """
    der die das den dem des ein eine einen einem einer eines und oder aber nicht kein keine ist sind
    war waren bin bist hat haben habe hast wird werden wurde ich du er sie es wir ihr mich mir dich dir
    uns euch sich mein meine dein deine sein seine unser unsere euer ihre zu zum zur mit auf für von
    vom bei aus nach über unter vor hinter zwischen durch gegen ohne um bis im ins am an auch noch schon
    sehr nur mal dann wenn weil dass als wie was wer wo warum wieso heute morgen jetzt hier dort da ja
    nein nicht doch immer wieder etwas viel viele mehr ganz gut gerne kann können muss müssen will
    wollen soll sollen gibt geht gehen macht machen kommt kommen diese dieser dieses jeden jeder alle
    alles einfach wirklich zusammen danke bitte hallo tschüss leute in so also
"""
_ENGLISH = """
    the a an and or but not no is are was were be been being am have has had do does did will would
    can could should shall may might must i you he she it we they me him her us them my your his its
    our their this that these those to of in on at for with from by about into over under after before
    between through without up down out off so if because than as like what who where when why how
    very just only also too again always never really today tomorrow now here there yes please thank
    thanks hello everyone going get got make made some any all more most each every one which while
"""
GERMAN_WORDS = frozenset(_GERMAN.split())
ENGLISH_WORDS = frozenset(_ENGLISH.split())
GERMAN_ENDINGS = ("ung", "chen", "lich", "keit", "heit", "schaft", "isch", "ern", "sch", "tz", "ei")
ENGLISH_ENDINGS = ("ing", "tion", "ly", "th", "ght", "ed", "ous", "ness", "ful", "ck")


def words_of(text: str) -> list[str]:
    """Lower-case words (letters, umlauts, ß, apostrophes inside a word)."""
    text = unicodedata.normalize("NFC", text.lower())
    return re.findall(r"[a-zäöüß]+(?:'[a-z]+)?", text)


def german_evidence(text: str) -> float:
    """How German ``text`` reads, from -1 (plainly English) to 1 (plainly German); 0 when there is
    nothing to go by. Each word scores +1/-1 for a function word of one list only, +1 for an umlaut
    or ß, +0.5/-0.5 for a typical ending; the sum is divided by the number of words."""
    words = words_of(text)
    if not words:
        return 0.0
    total = 0.0
    for word in words:
        german, english = word in GERMAN_WORDS, word in ENGLISH_WORDS
        if german != english:
            total += 1.0 if german else -1.0
        elif not german:
            if re.search("[äöüß]", word):
                total += 1.0
            elif word.endswith(GERMAN_ENDINGS):
                total += 0.5
            elif word.endswith(ENGLISH_ENDINGS) or "'" in word:
                total -= 0.5
    return max(-1.0, min(1.0, total / len(words)))
