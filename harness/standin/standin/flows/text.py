"""Text handling with goflow's rules: word tokens, collation, result keys and number finding.

goflow (v0.198, the engine of mailroom v9) defines these with RE2 regexes over Unicode classes
(`\\pL`, `\\pN`, `\\pM`, `\\pS`) that Python's `re` lacks, so they are written here as small scanners
over `unicodedata` categories. The behaviour, including goflow's quirks, is what the tests pin down.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

DECIMAL_SYMBOL = "."
DIGIT_GROUPING_SYMBOL = ","

# Arabic-Indic, Eastern Arabic-Indic (Persian, Urdu) and Bengali digits: the only non-ASCII numerals
# goflow converts before parsing a number; any other numeral is found but fails to parse.
_ALT_NUMERALS = {
    **{chr(0x0660 + i): str(i) for i in range(10)},
    **{chr(0x06F0 + i): str(i) for i in range(10)},
    **{chr(0x09E6 + i): str(i) for i in range(10)},
}

# shopspring's decimal parser as reached through goflow's number regex: optional sign, digits with an
# optional fraction, or a bare fraction. Anything else (a leftover symbol, a non-ASCII numeral) fails.
_PARSEABLE_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)", re.ASCII)

# A literal number argument (goflow's `decimalRegexp` in ToXNumber): no leading plus.
_LITERAL_NUMBER = re.compile(r"-?(?:[0-9]+|[0-9]+\.[0-9]+|\.[0-9]+)", re.ASCII)


def _category(char: str) -> str:
    return unicodedata.category(char)


def _is_word_char(char: str) -> bool:
    return _category(char)[0] in "LMN" or char in "_'"


def _is_numeral(char: str) -> bool:
    return _category(char)[0] == "N"


def _is_ascii_non_word(char: str) -> bool:
    # RE2's \W is ASCII-only: everything but [0-9A-Za-z_]
    return not (char.isascii() and (char.isalnum() or char == "_"))


def tokenize(text: str) -> list[str]:
    """Words of `text` as goflow's `TokenizeString`: runs of letters, marks, numerals, `_` and `'`,
    and each symbol (emoji, currency, math sign) as a word of its own."""
    tokens: list[str] = []
    word: list[str] = []
    for char in text:
        if _is_word_char(char):
            word.append(char)
            continue
        if word:
            tokens.append("".join(word))
            word = []
        if _category(char)[0] == "S":
            tokens.append(char)
    if word:
        tokens.append("".join(word))
    return tokens


def collate(text: str) -> str:
    """The form two words are compared in (goflow's default collation: lower case)."""
    return text.lower()


def collate_equals(left: str, right: str) -> bool:
    return collate(left) == collate(right)


def snakify(name: str) -> str:
    """A result name as its key in `@results`: runs of anything but letters, ASCII digits and `_`
    become one `_`, then lower case ("Result 1" -> "result_1")."""
    out: list[str] = []
    in_gap = False
    for char in name.strip():
        if _category(char)[0] == "L" or char in "0123456789_":
            out.append(char)
            in_gap = False
        elif not in_gap:
            out.append("_")
            in_gap = True
    return "".join(out).lower()


def _is_space(char: str) -> bool:
    # Go's unicode.IsSpace; Python's str.isspace() would also take U+001C..U+001F
    return char in "\t\n\v\f\r \x85\xa0" or _category(char) in ("Zs", "Zl", "Zp")


def trim_space(text: str) -> str:
    """`text` without leading and trailing white space, as Go's strings.TrimSpace."""
    start, end = 0, len(text)
    while start < end and _is_space(text[start]):
        start += 1
    while end > start and _is_space(text[end - 1]):
        end -= 1
    return text[start:end]


def _match_number_at(text: str, start: int) -> int | None:
    """End of the leftmost-first match of goflow's number regex at `start`, or None.

    The regex is `[-+]?([\\pN,]+(\\.[\\pN]+)?|(\\W|^)\\.[\\pN]+)`: try with the sign, then without;
    within each, digits-with-fraction first, then a bare fraction after a non-word char or the start.
    """
    length = len(text)

    def digits_from(position: int) -> int:
        while position < length and _is_numeral(text[position]):
            position += 1
        return position

    sign_options = (1, 0) if text[start] in "+-" else (0,)
    for sign in sign_options:
        pos = start + sign
        end = pos
        while end < length and (_is_numeral(text[end]) or text[end] == DIGIT_GROUPING_SYMBOL):
            end += 1
        if end > pos:
            if end + 1 < length and text[end] == DECIMAL_SYMBOL and _is_numeral(text[end + 1]):
                return digits_from(end + 1)
            return end
        if (
            pos + 2 < length
            and _is_ascii_non_word(text[pos])
            and text[pos + 1] == DECIMAL_SYMBOL
            and _is_numeral(text[pos + 2])
        ):
            return digits_from(pos + 2)
        if pos == 0 and pos + 1 < length and text[pos] == DECIMAL_SYMBOL and _is_numeral(text[pos + 1]):
            return digits_from(pos + 1)
    return None


def find_number_candidates(text: str) -> list[str]:
    """Every number-like substring, left to right, as goflow's FindAllString would return them."""
    found: list[str] = []
    position = 0
    while position < len(text):
        end = _match_number_at(text, position)
        if end is None:
            position += 1
        else:
            found.append(text[position:end])
            position = end
    return found


def parse_found_number(candidate: str) -> Decimal | None:
    """goflow's ParseDecimal on a found candidate: drop grouping, map alternative numerals, parse."""
    cleaned = trim_space(candidate).replace(DIGIT_GROUPING_SYMBOL, "")
    cleaned = "".join(_ALT_NUMERALS.get(char, char) for char in cleaned)
    if not _PARSEABLE_NUMBER.fullmatch(cleaned):
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the regex admits only parseable text
        return None


def find_numbers(text: str) -> list[Decimal]:
    """The numbers goflow's has_number tests consider, in order."""
    numbers = []
    for candidate in find_number_candidates(text):
        number = parse_found_number(candidate)
        if number is not None:
            numbers.append(number)
    return numbers


def parse_literal_number(text: str) -> Decimal | None:
    """A number written as an argument or value (goflow's ToXNumber on text), or None."""
    cleaned = trim_space(text)
    if not _LITERAL_NUMBER.fullmatch(cleaned):
        return None
    return Decimal(cleaned)


def format_number(number: Decimal) -> str:
    """A number as goflow renders it: plain notation, no trailing fractional zeros, no `-0`."""
    if number == 0:
        return "0"
    rendered = format(number.normalize(), "f")
    return rendered
