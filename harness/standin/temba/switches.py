"""The web's switches, validated from `STANDIN_SWITCHES` like every stand-in's, so a misspelt
`--set web.NAME=…` (or celery/celery-beat) stops the process at start instead of being ignored."""

from __future__ import annotations

from standin.common.switches import Switch, SwitchError, Switches, load_switches

SERVICE = "web"

DECLARED: list[Switch] = [
    Switch(
        "api_send_through_mailroom",
        True,
        "POST /api/v2/messages asks mailroom's /mr/msg/send to create and queue the message, so it fails "
        "while mailroom is unreachable (rapidpro v9.2.5). Off = the stand-in's behaviour before issue 9, "
        "no real version's: web inserts the message and pushes it to courier's queue itself",
        "Web: `POST /api/v2/messages` sends through mailroom `/mr/msg/send`",
    ),
]


def load() -> Switches:
    try:
        return load_switches(SERVICE, DECLARED)
    except SwitchError as exc:
        raise SystemExit(str(exc)) from None
