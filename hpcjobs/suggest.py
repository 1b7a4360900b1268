"""'Did you mean' for input errors: the closest of the valid words to a mistyped one. Stdlib only."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, options: Iterable[str]) -> str | None:
    """The valid option nearest to `word` (case ignored), if one is near enough to be a typo of it."""
    by_lower = {o.lower(): o for o in options}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[found[0]] if found else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' to append to a message, or '' when nothing is close."""
    found = closest(word, options)
    return f" (did you mean '{found}'?)" if found else ""
