"""Small helpers for printed sentences."""

from __future__ import annotations


def count(n, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1: ``count(1, "epoch")`` is "1 epoch", ``count(3, "cell")``
    "3 cells" (``plural`` for nouns that do not take an s)."""
    word = noun if n == 1 else plural or noun + "s"
    return f"{n:g} {word}" if isinstance(n, float) else f"{n} {word}"
