"""The web's switches. It declares none yet, but validates `STANDIN_SWITCHES` like every stand-in, so a
misspelt `--set web.NAME=…` (or celery/celery-beat) stops the process at start instead of being ignored."""

from __future__ import annotations

from standin.common.switches import Switch, SwitchError, Switches, load_switches

SERVICE = "web"

DECLARED: list[Switch] = []


def load() -> Switches:
    try:
        return load_switches(SERVICE, DECLARED)
    except SwitchError as exc:
        raise SystemExit(str(exc)) from None
