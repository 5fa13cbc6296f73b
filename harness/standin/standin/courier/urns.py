"""Phone URNs as courier's EX handler builds them from the `from` field (no channel country)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NON_TEL_CHARS = re.compile(r"[^0-9A-Za-z]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class URNError(ValueError):
    pass


@dataclass(frozen=True)
class URN:
    scheme: str
    path: str

    @property
    def identity(self) -> str:
        return f"{self.scheme}:{self.path}"

    def __str__(self) -> str:
        return self.identity


def parse_phone(raw: str) -> URN:
    """An E.164 tel URN from a sender string, or URNError("not a possible number").

    Like gocommon's ParseNumber without a country: separators are dropped (a leading + kept) and a
    long enough number without + is tried with one. Possible-number checks are by length only, as
    the stand-in carries no numbering-plan metadata.
    """
    text = raw.strip()
    has_plus = text.startswith("+")
    digits = _NON_TEL_CHARS.sub("", text)
    candidate = ("+" + digits) if has_plus else digits
    if _E164.match(candidate):
        return URN("tel", candidate)
    if not has_plus and len(digits) >= 11 and not digits.startswith("0") and _E164.match("+" + digits):
        return URN("tel", "+" + digits)
    raise URNError("not a possible number")
