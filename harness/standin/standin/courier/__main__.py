"""`python -m standin.courier`: run the courier stand-in until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys

from standin.common.switches import SwitchError

from .config import ConfigError, load_config
from .server import serve
from .switches import load


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = load_config()
        switches = load()
    except (ConfigError, SwitchError) as exc:
        print(f"courier: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(config, switches))


if __name__ == "__main__":
    sys.exit(main())
