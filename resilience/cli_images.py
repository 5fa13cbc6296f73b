"""`resilience images build`: the offline images the stand-in topology needs."""

from __future__ import annotations

import argparse
import sys

from resilience import derived_images, images
from resilience.backends import engine
from resilience.exitcodes import ExitCode

EXIT_USAGE = ExitCode.BAD_INPUT  # `resilience images` with no action: a usage error is bad input


def _build(args: argparse.Namespace) -> int:
    try:
        results = images.build_all(log=lambda m: print(m, flush=True), force=args.force)
    except images.ImageBuildError as exc:
        print(f"resilience images build: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    for result in results:
        state = f"built in {result.seconds:.1f} s" if result.built else "up to date"
        print(f"{result.tag}: {state}")
    return 0


def _derive(args: argparse.Namespace) -> int:
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"resilience images derive: --env {item!r}: expected NAME=VALUE", file=sys.stderr)
            return ExitCode.BAD_INPUT
        env[key] = value
    try:
        client = engine.connect()
        result = derived_images.derive_image(client, args.base, args.tag, env, log=lambda m: print(m, flush=True))
    except images.ImageBuildError as exc:
        print(f"resilience images derive: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    print(f"{result.tag}: built in {result.seconds:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("images", help="build the offline images (build), or a derived one (derive)")
    images_sub = parser.add_subparsers(dest="images_command", metavar="ACTION")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    parser.set_defaults(func=usage)
    build = images_sub.add_parser("build", help="build every image standin-ha needs (a no-op when up to date)")
    build.add_argument(
        "topology", nargs="?", metavar="TOPOLOGY", help="accepted for symmetry; every offline service uses one image"
    )
    build.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    build.set_defaults(func=_build)
    derive = images_sub.add_parser(
        "derive", help="a local image = BASE plus env settings: a stand-in 'next version' for rolling-upgrade drills"
    )
    derive.add_argument("tag", metavar="TAG", help=f"the new image's tag, e.g. {derived_images.UPGRADE_REPO}:9.3")
    derive.add_argument("--base", default=images.NODE_REPO, help="the image to start from (default: the node image)")
    derive.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment setting of the new image, e.g. STANDIN_VERSION=9.3.0-standin; repeatable",
    )
    derive.set_defaults(func=_derive)
