"""A rolling upgrade of every app tier to the next version, then a rolling rollback, under load."""

import docker
import pytest

from resilience.derived_images import derive_image

# The stand-ins' "next version": the node image reporting another STANDIN_VERSION. Against real RapidPro
# images, load the new release's images and name them in the schedule instead (docs/faults.md).
NEXT = "resilience-upgrade:next"


@pytest.fixture
def next_version(cluster):
    client = docker.from_env()
    derive_image(client, "resilience-node", NEXT, {"STANDIN_VERSION": "9.3.0-standin"}, log=lambda _m: None)
    try:
        yield NEXT
    finally:
        client.images.remove(NEXT, force=True)


@pytest.mark.experiment(
    name="rolling-upgrade",
    description="move courier, mailroom and web node by node to the next version; roll back after",
    expectations=(
        "Each node is stopped gracefully and replaced by one of the new image, healthy before the next goes: "
        "never more than one node of a tier is down, and old and new versions serve side by side for a while. "
        "Every verdict valid, both ways (upgrade, then rollback). A schedule's steps run one after another, "
        "and a roll lasts as long as its nodes take to become healthy (web: 10-30 s a node here), so the "
        "tiers are rolled in turn and the workload lasts long enough to cover the rollback too."
    ),
    schedule=(
        f"at 3 rolling-upgrade courier {NEXT} as c; at 4 rolling-upgrade mailroom {NEXT} as m; "
        f"at 5 rolling-upgrade web {NEXT} as w; recover c at 50; recover m at 51; recover w at 52"
    ),
    rate=3,
    duration=100,
    quiesce_timeout=90,
)
def test_rolling_upgrade(experiment, next_version):
    experiment.run()
