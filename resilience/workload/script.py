"""Conversation scripts: what a virtual contact says to a flow and which replies it is owed at each step.

A script is a YAML file beside the flows (fixtures/conversations/). It is declarative and knows nothing of
the stand-ins, so the same script checks a real RapidPro running the same flow export.

```yaml
flow: Registration              # the flow's name in the export
keyword: join                   # step 0 sends this keyword; an API start skips step 0
values:                         # the contact's answers, chosen per conversation with the seeded RNG
  name: [Alice, Bob]
  age: {range: [18, 80]}
steps:
  - send: "join"
    expect: ["Welcome to registration. What is your name?"]
  - send: "{name}"
    expect: ["Thanks {sent}. How old are you?"]
```
Every MO gets a unique token appended as its own word (courier drops a repeated text within seconds),
so expectations that quote what was sent use `{sent}` (this step's text, token included) or `{sent_N}`
(step N's), and `{name}`-style placeholders for chosen values.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ScriptError(ValueError):
    """A conversation script that cannot be used; the message names the file and what was expected."""


@dataclass(frozen=True)
class Step:
    send: str
    expect: tuple[str, ...]


@dataclass(frozen=True)
class Script:
    name: str
    flow: str
    keyword: str
    steps: tuple[Step, ...]
    values: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def choose_values(self, rng: random.Random) -> dict[str, str]:
        chosen: dict[str, str] = {}
        for key, spec in self.values.items():
            if isinstance(spec, list):
                chosen[key] = str(rng.choice(spec))
            else:
                low, high = spec["range"]
                chosen[key] = str(rng.randint(int(low), int(high)))
        return chosen


def _fail(path: Path, what: str) -> ScriptError:
    return ScriptError(f"{path}: {what}")


def load_script(path: Path) -> Script:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ScriptError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except OSError as exc:
        raise ScriptError(f"{path}: cannot be read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise _fail(path, "expected a mapping with flow, keyword, steps")
    unknown = set(data) - {"flow", "keyword", "values", "steps", "description"}
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(sorted(unknown))}; expected flow, keyword, values, steps")
    for key in ("flow", "keyword"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _fail(path, f"'{key}' must be a non-empty string")
    values = data.get("values") or {}
    if not isinstance(values, dict):
        raise _fail(path, "'values' must map names to a list of choices or {range: [low, high]}")
    for key, spec in values.items():
        ok = (isinstance(spec, list) and spec) or (
            isinstance(spec, dict) and isinstance(spec.get("range"), list) and len(spec["range"]) == 2
        )
        if not ok:
            raise _fail(path, f"value '{key}' must be a non-empty list or {{range: [low, high]}}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _fail(path, "'steps' must be a non-empty list of {send, expect}")
    steps = []
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict) or not isinstance(raw.get("send"), str):
            raise _fail(path, f"step {i}: expected {{send: TEXT, expect: [TEXT, ...]}}")
        expect = raw.get("expect") or []
        if not isinstance(expect, list) or not all(isinstance(e, str) for e in expect):
            raise _fail(path, f"step {i}: 'expect' must be a list of texts")
        steps.append(Step(raw["send"], tuple(expect)))
    return Script(path.stem, data["flow"], data["keyword"], tuple(steps), values, path)


def load_scripts(directory: Path) -> dict[str, Script]:
    return {p.stem: load_script(p) for p in sorted(directory.glob("*.yaml"))}


def new_token(rng: random.Random) -> str:
    # Letters only, with a prefix no flow case list contains, so the token never matches a number test,
    # a keyword or a category word.
    return "zq" + "".join(rng.choice(string.ascii_lowercase) for _ in range(6))


def render(template: str, values: dict[str, str], sent: list[str]) -> str:
    context = dict(values)
    if sent:
        context["sent"] = sent[-1]
    for i, text in enumerate(sent):
        context[f"sent_{i}"] = text
    try:
        return template.format(**context)
    except (KeyError, IndexError) as exc:
        raise ScriptError(f"template {template!r} refers to {exc} which is not defined") from None
