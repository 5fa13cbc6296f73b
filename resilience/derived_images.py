"""Derived images: a local image plus environment settings, built without pulling anything.

What a rolling-upgrade drill needs when no newer RapidPro image can be had: the stand-ins' "next
version" (`STANDIN_VERSION=9.3.0-standin`), so that old and new nodes run side by side and say which
they are. With real RapidPro images, load the new version's images instead (`docker load`).

Kept apart from `images`: that module's source is part of the base image's content hash.
"""

from __future__ import annotations

import io
import json
import tarfile
import time

import docker
import docker.errors

from resilience.images import BuildResult, ImageBuildError, Log, resolve_image

UPGRADE_REPO = "resilience-upgrade"


def derive_image(
    client: docker.DockerClient, base: str, tag: str, env: dict[str, str], log: Log = print
) -> BuildResult:
    """An image that is `base` plus environment settings: the stand-ins' "next version" for an upgrade
    drill (`STANDIN_VERSION=9.3.0-standin`), built from the local image alone (nothing is pulled)."""
    source = resolve_image(base)
    bad = [key for key in env if not key.isidentifier()]
    if bad:
        raise ImageBuildError(f"bad environment variable name(s) {', '.join(map(repr, bad))}; expected NAME=VALUE")
    started = time.monotonic()
    dockerfile = f"FROM {source}\n" + "".join(f"ENV {key}={json.dumps(value)}\n" for key, value in env.items())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    log(f"deriving {tag} from {source}")
    try:
        client.images.build(
            fileobj=io.BytesIO(buf.getvalue()),
            custom_context=True,
            tag=tag,
            rm=True,
            pull=False,
            labels={"resilience.derived-from": source},
        )
    except docker.errors.BuildError as exc:
        lines = [str(chunk.get("stream", chunk.get("error", ""))).strip() for chunk in exc.build_log]
        raise ImageBuildError(f"deriving {tag} from {source} failed:\n" + "\n".join(lines[-15:])) from None
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"deriving {tag} from {source} failed: {exc.explanation or exc}") from None
    return BuildResult(tag, built=True, seconds=time.monotonic() - started)
