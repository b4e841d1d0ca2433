"""A MarketSource's spec.values: defaults under an AppInstall's own values, bounded, in the hash."""

from __future__ import annotations

import pytest

from kubemart.domain.bounds import ValueLimits
from kubemart.domain.values import InvalidValues, effective_values, values_hash

LIMITS = ValueLimits(max_depth=32, max_nodes=1000, max_bytes=2000)
SOURCE = {"userspace": {"appData": "/olares/data", "appCache": "/olares/cache"}, "bfl": {"username": "admin"}}


def test_the_apps_own_values_win_over_the_sources() -> None:
    docs = [("ConfigMap t/v key values.yaml", "bfl:\n  username: from-configmap\n")]
    inline = {"userspace": {"appData": "/mine"}}
    values = effective_values(docs, inline, limits=LIMITS, defaults=SOURCE)
    assert values == {
        "userspace": {"appData": "/mine", "appCache": "/olares/cache"},
        "bfl": {"username": "from-configmap"},
    }
    assert SOURCE["userspace"]["appData"] == "/olares/data"  # nothing shared or mutated


def test_a_change_of_the_sources_values_changes_the_hash_and_none_keeps_it() -> None:
    before = values_hash(chart_digest="d", values=effective_values([], {"a": 1}, limits=LIMITS))
    same = values_hash(chart_digest="d", values=effective_values([], {"a": 1}, limits=LIMITS, defaults={}))
    assert same == before  # a source without values upgrades nothing
    one = effective_values([], {"a": 1}, limits=LIMITS, defaults=SOURCE)
    two = effective_values([], {"a": 1}, limits=LIMITS, defaults=SOURCE | {"domain": {"x": "y"}})
    assert (
        len({before, values_hash(chart_digest="d", values=one), values_hash(chart_digest="d", values=two)})
        == 3
    )


@pytest.mark.parametrize(
    ("defaults", "words"),
    [
        ({"s": "x" * 3000}, "the MarketSource's spec.values is larger than 2000 bytes"),
        ({"a": {"b": {"c": 1}}}, "the MarketSource's spec.values is nested more than 2 levels"),
    ],
)
def test_the_sources_values_are_bounded(defaults: dict[str, object], words: str) -> None:
    limits = LIMITS if "bytes" in words else ValueLimits(max_depth=2, max_nodes=1000, max_bytes=2000)
    with pytest.raises(InvalidValues) as caught:
        effective_values([], None, limits=limits, defaults=defaults)
    assert words in str(caught.value)


def test_the_source_says_when_its_values_are_beyond_the_bounds() -> None:
    from kubemart.catalog.status import values_problem
    from kubemart.models.marketsource import MarketSource

    def source(values: object) -> MarketSource:
        return MarketSource.model_validate(
            {"metadata": {"name": "s"}, "spec": {"url": "https://charts.example.com", "values": values}}
        )

    assert values_problem(source(SOURCE), LIMITS) is None
    assert values_problem(source(None), LIMITS) is None
    found = values_problem(source({"s": "x" * 3000}), LIMITS)
    assert found is not None
    assert (found.ready, found.reason, found.stalled) == (False, "InvalidValues", True)
    assert "larger than 2000 bytes" in found.message
    assert "The catalog is synced" in found.message
