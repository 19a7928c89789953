"""Emotion vocabulary shared by models, datasets, reports and the music example.

Models and datasets spell the same class differently (FER2013 ``angry``, FER+ ``anger``,
AffectNet ``happiness``, CK+ ``sadness``, KDEF ``afraid``); ``canonical_emotion`` brings
every spelling to one lower-case name, so classes are matched by meaning, not by position.
"""
from __future__ import annotations

from typing import Sequence

# Canonical names: the FER2013 seven, plus contempt (FER+, CK+, AffectNet).
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")

# Other spellings datasets and models use for the same class (lower case).
SYNONYMS = {
    "anger": "angry",
    "angered": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "contemptuous": "contempt",
    "neutrality": "neutral",
}


def canonical_emotion(name: str) -> str:
    """Lower-case an emotion name and map synonyms (``Happiness`` -> ``happy``, ``anger`` -> ``angry``)."""
    key = str(name).strip().lower()
    return SYNONYMS.get(key, key)


def match_classes(names: Sequence[str], targets: Sequence[str]) -> list[int | None]:
    """For each of ``names``, the index of the ``targets`` class with the same canonical name, or None."""
    index = {canonical_emotion(t): i for i, t in enumerate(targets)}
    return [index.get(canonical_emotion(n)) for n in names]
