"""Targets: a RapidPro deployment the harness did not create (the user's staging), described by a target file.

`load_target(NAME_OR_PATH)` reads one (loader); `Target` is what it describes (model); `run_checks` verifies,
before any fault, that the harness can use it (check). docs/target.md is the reference.
"""

from resilience.target.loader import TARGETS_ENV, load_target, parse_target, resolve_target_path
from resilience.target.model import Target, TargetError, mask_secret, mask_url_password

__all__ = [
    "TARGETS_ENV",
    "Target",
    "TargetError",
    "load_target",
    "mask_secret",
    "mask_url_password",
    "parse_target",
    "resolve_target_path",
]
