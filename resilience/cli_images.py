"""`resilience images build`: the offline images the stand-in topology needs."""

from __future__ import annotations

import argparse
import sys

from resilience import images


def _build(args: argparse.Namespace) -> int:
    try:
        results = images.build_all(log=lambda m: print(m, flush=True), force=args.force)
    except images.ImageBuildError as exc:
        print(f"resilience images build: {exc}", file=sys.stderr)
        return 1
    for result in results:
        state = f"built in {result.seconds:.1f} s" if result.built else "up to date"
        print(f"{result.tag}: {state}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("images", help="build the offline images")
    images_sub = parser.add_subparsers(dest="images_command", metavar="ACTION")
    build = images_sub.add_parser("build", help="build every image standin-ha needs (a no-op when up to date)")
    build.add_argument("topology", nargs="?", help="accepted for symmetry; every offline service uses one image")
    build.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    build.set_defaults(func=_build)
