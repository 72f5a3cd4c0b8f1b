"""Umlaut folding shared by the search index and text rules: ``"GRÜSSE"``, ``"Grüße"`` -> ``"gruesse"``."""

from __future__ import annotations

import unicodedata

_SPELLED = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("ẞ", "ss"))


def fold(text: str) -> str:
    """Lower case (NFC) with German umlauts and ß spelled out as ae/oe/ue/ss."""
    text = unicodedata.normalize("NFC", text).lower()
    for a, b in _SPELLED:
        text = text.replace(a, b)
    return text
