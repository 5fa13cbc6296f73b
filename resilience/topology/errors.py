"""Located errors: every mistake in a topology file (or in an option applied to it) as `FILE:LINE: message`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LocatedError:
    file: str
    line: int | None  # 1-based; None when the mistake is not on a line (a missing file, a CLI option)
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class TopologyError(Exception):
    """Everything wrong with one topology file (or with options applied to it)."""

    def __init__(self, errors: list[LocatedError]) -> None:
        # A YAML alias repeats its anchor's nodes, and with them their errors: report each once.
        unique = list(dict.fromkeys(errors))
        self.errors = sorted(unique, key=lambda e: (e.file, e.line or 0))
        super().__init__("\n".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, file: str, message: str, line: int | None = None) -> TopologyError:
        return cls([LocatedError(file, line, message)])


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
