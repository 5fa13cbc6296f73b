"""Kill rp-indexer and rp-archiver (single instances): they catch up after a restart."""

import time

import httpx
import pytest


@pytest.mark.experiment(
    name="kill-indexer-archiver",
    description="SIGKILL the indexer and the archiver during a workload; start them again",
    expectations=(
        "Neither is on the message path: conversations are unaffected. After its restart the indexer resumes "
        "from the newest modified_on already in the index, so every contact reaches the search node."
    ),
    schedule="at 6 kill indexer-1 as idx; at 7 kill archiver-1 as arc; recover idx at 18; recover arc at 19",
    rate=4,
    duration=42,
)
def test_kill_indexer_archiver(experiment):
    outcome = experiment.run()
    cluster = experiment.cluster
    urns = outcome.stats.urns
    # Catch-up: every contact of the workload is in the index within a few indexer polls (5 s each).
    search = cluster.run.url(cluster.run.nodes_of("elasticsearch")[0], 9200)
    with cluster.db()._connect() as conn:
        uuids = {
            str(r["uuid"])
            for r in conn.execute(
                "SELECT c.uuid FROM contacts_contact c JOIN contacts_contacturn u ON u.contact_id = c.id "
                "WHERE u.identity = ANY(%s)",
                (urns,),
            )
        }
    deadline = time.monotonic() + 40
    missing = set(uuids)
    while missing and time.monotonic() < deadline:
        # The index is reached by its alias `contacts`; documents are keyed by contact id, so ask by uuid.
        response = httpx.post(
            f"{search}/contacts/_search",
            json={"query": {"terms": {"uuid": sorted(missing)}}, "size": len(missing), "_source": ["uuid"]},
            timeout=10,
        )
        if response.status_code == 200:
            missing -= {hit["_source"]["uuid"] for hit in response.json()["hits"]["hits"]}
        time.sleep(1)
    assert not missing, f"{len(missing)} of {len(uuids)} contacts never reached the index after the restart"
