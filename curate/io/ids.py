"""The stable question id every stage keys on (filter writes it; rollout, eval and tests recompute it).

question_id("What is 1+1?")   # '3b1f...' 16 hex chars
"""

from __future__ import annotations

import hashlib


def question_id(question: str) -> str:
    """First 16 hex chars of sha256 of the question with whitespace runs collapsed: the 16 samples of a
    question share it wherever they sit and whatever whitespace noise they carry."""
    return hashlib.sha256(" ".join(question.split()).encode()).hexdigest()[:16]
