"""Each fault kind's documented weak spots (resilience/verdict/by_kind.py): real kinds, bound to their kind,
a valid policy, and no looser than what the catalogue's own experiment for that kind documents."""

from __future__ import annotations

import pytest

from resilience.cli_experiments import load_experiment
from resilience.explore.trial import kinds_without_allowances, with_weak_spots
from resilience.faults.base import FAULT_KINDS
from resilience.verdict.by_kind import WEAK_SPOTS_BY_KIND, allowances_for
from resilience.verdict.policy import make_policy


def test_every_kind_is_a_fault_kind_and_its_allowances_are_bound_to_it() -> None:
    for kind in WEAK_SPOTS_BY_KIND:
        assert kind in FAULT_KINDS
        allowances = allowances_for([kind])
        assert allowances and {a.fault for a in allowances} == {kind}
        assert len({a.key for a in allowances}) == len(allowances)  # one maximum per finding key
    make_policy(allowances_for(WEAK_SPOTS_BY_KIND), {}, {}, {}, (), where="all kinds")


@pytest.mark.parametrize(
    ("experiment", "kind"),
    [("kill_courier", "kill"), ("pg_failover_async", "pg-failover"), ("redis_failover", "redis-failover")],
)
def test_a_kind_excuses_what_its_catalogue_experiment_documents_and_no_more(experiment: str, kind: str) -> None:
    catalogue: dict[str, int] = {}
    for allowance in load_experiment(experiment).allowances:
        catalogue[allowance.key] = max(catalogue.get(allowance.key, 0), allowance.max)
    by_kind = {a.key: a.max for a in allowances_for([kind])}
    assert set(catalogue) <= set(by_kind)
    # kill's maxima come from the catalogue's several kill experiments (courier's and mailroom's, the nightly's)
    assert all(by_kind[key] <= max(catalogue[key], 10) for key in catalogue), (catalogue, by_kind)


def test_a_kind_without_documented_weak_spots_adds_nothing() -> None:
    assert allowances_for(["search-loss", "meteor"]) == ()


def test_exploration_adds_only_the_kinds_its_base_does_not_cover() -> None:
    nightly = load_experiment("nightly_mixed")
    extra = kinds_without_allowances(nightly, ("kill", "pause", "pg-failover", "redis-failover"))
    assert extra == ("pg-failover", "redis-failover")
    widened = with_weak_spots(nightly, extra)
    assert widened.allowances[: len(nightly.allowances)] == nightly.allowances
    assert {a.fault for a in widened.allowances[len(nightly.allowances) :]} == {"pg-failover", "redis-failover"}
