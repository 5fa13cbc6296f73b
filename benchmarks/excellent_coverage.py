"""Excellent coverage: the functions and router case types goflow v0.198.0 has (the engine of mailroom
v9) against what the stand-in flow engine implements. Run: `.venv/bin/python benchmarks/excellent_coverage.py`.

goflow's lists are its `excellent/functions/builtin.go` and `flows/routers/cases/tests.go` registries at
v0.198.0, written out here so the measure needs no network.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "harness" / "standin"))

from standin.flows.cases import CASE_TESTS, UNSUPPORTED_CASE_TESTS
from standin.flows.excellent.functions import FUNCTIONS, UNSUPPORTED

GOFLOW_FUNCTIONS = [
    "abs",
    "and",
    "array",
    "attachment_parts",
    "boolean",
    "char",
    "clean",
    "code",
    "concat",
    "contains",
    "count",
    "date",
    "date_from_parts",
    "datetime",
    "datetime_add",
    "datetime_diff",
    "datetime_from_epoch",
    "default",
    "epoch",
    "extract",
    "extract_object",
    "field",
    "filter",
    "foreach",
    "foreach_value",
    "format",
    "format_date",
    "format_datetime",
    "format_location",
    "format_number",
    "format_time",
    "format_urn",
    "html_decode",
    "if",
    "is_error",
    "join",
    "json",
    "keys",
    "legacy_add",
    "lower",
    "max",
    "mean",
    "min",
    "mod",
    "now",
    "number",
    "object",
    "or",
    "parse_datetime",
    "parse_json",
    "parse_time",
    "percent",
    "rand",
    "rand_between",
    "read_chars",
    "regex_match",
    "remove_first_word",
    "repeat",
    "replace",
    "replace_time",
    "reverse",
    "round",
    "round_down",
    "round_up",
    "sort",
    "split",
    "sum",
    "text",
    "text_compare",
    "text_length",
    "text_slice",
    "time",
    "time_from_parts",
    "title",
    "today",
    "trim",
    "trim_left",
    "trim_right",
    "tz",
    "tz_offset",
    "unique",
    "upper",
    "url_encode",
    "urn_parts",
    "week_number",
    "weekday",
    "word",
    "word_count",
    "word_slice",
]

GOFLOW_CASE_TYPES = [
    "has_all_words",
    "has_any_word",
    "has_beginning",
    "has_category",
    "has_date",
    "has_date_eq",
    "has_date_gt",
    "has_date_lt",
    "has_district",
    "has_email",
    "has_error",
    "has_group",
    "has_intent",
    "has_number",
    "has_number_between",
    "has_number_eq",
    "has_number_gt",
    "has_number_gte",
    "has_number_lt",
    "has_number_lte",
    "has_only_phrase",
    "has_only_text",
    "has_pattern",
    "has_phone",
    "has_phrase",
    "has_state",
    "has_text",
    "has_time",
    "has_top_intent",
    "has_value",
    "has_ward",
]


def coverage() -> dict[str, tuple[list[str], list[str]]]:
    """Per list: (implemented, missing) names."""
    return {
        "functions": (
            [name for name in GOFLOW_FUNCTIONS if name in FUNCTIONS],
            [name for name in GOFLOW_FUNCTIONS if name not in FUNCTIONS],
        ),
        "case types": (
            [name for name in GOFLOW_CASE_TYPES if name in CASE_TESTS],
            [name for name in GOFLOW_CASE_TYPES if name not in CASE_TESTS],
        ),
    }


def main() -> None:
    reasons = {**UNSUPPORTED, **UNSUPPORTED_CASE_TESTS}
    for what, (implemented, missing) in coverage().items():
        total = len(implemented) + len(missing)
        print(f"{what}: {len(implemented)}/{total} ({100 * len(implemented) / total:.0f}%)")
        for name in missing:
            print(f"  missing {name}: {reasons.get(name, 'not implemented')}")


if __name__ == "__main__":
    main()
