"""Lose the search node: conversations do not need it."""

import pytest

from resilience.verdict.weak_spots import search_outage_logs


@pytest.mark.experiment(
    name="search-loss",
    description="SIGKILL the search node during a workload; start it again",
    expectations=(
        "Keyword-triggered flows and contact/URN starts need no search (contracts, Search): every verdict "
        "valid. The indexer retries until the node is back. A Celery cron that checks the index's lag may "
        "run while the node is down and log its connection error."
    ),
    schedule="at 8 search-loss kill; recover at 20",
    rate=4,
    duration=42,
    # A traceback is a chain of two (the connection error, then the task's): one cron run logs two lines.
    allowances=[*search_outage_logs("search-loss", max=4)],
)
def test_search_loss(experiment):
    experiment.run()


@pytest.mark.skip(
    reason="Elasticsearch replica failover needs the real elasticsearch image (harness/topologies/rapidpro-ha.yaml: "
    "two nodes); the offline search node (osmem-server) is a single node with no replication"
)
def test_search_replica_failover():
    """Run against rapidpro-ha.yaml: stop search-1, expect search-2 to serve with the replicas promoted."""
