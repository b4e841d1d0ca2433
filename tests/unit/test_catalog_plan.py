"""Catalog sync decisions: what to write, whose objects are whose, the interval floor, what status says."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from kubemart.catalog.entries import Catalog, CatalogEntry, catalog_from_charts, content_hash
from kubemart.catalog.plan import Existing, effective_interval, existing_of, plan_sync
from kubemart.catalog.status import failure_summary, keep_note, key_problem, ready_summary, with_note
from kubemart.domain.catalog import controlled_by, entry_belongs, valid_source_name
from kubemart.domain.conditions import conditions_for
from kubemart.models.marketsource import MarketSource, MarketSourceStatus
from kubemart.sources.base import SourceError

UID = "uid-of-main"


def catalog_of(*apps: str, title: str = "T") -> Catalog:
    return catalog_from_charts(
        "main", {a: [{"version": "1.0.0", "annotations": {"kubemart.io/title": title}}] for a in apps}
    )


def names(entries: list[CatalogEntry]) -> list[str]:
    return sorted(e.name for e in entries)


def ours(catalog: Catalog) -> dict[str, Existing]:
    return {name: Existing(owned=True, content_hash=e.content_hash) for name, e in catalog.entries.items()}


def theirs(*names: str) -> dict[str, Existing]:
    return {n: Existing(owned=False, content_hash=None) for n in names}


# --- plan_sync --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catalog", "existing", "create", "update", "delete", "taken"),
    [
        pytest.param(catalog_of(), {}, [], [], [], [], id="nothing at all"),
        pytest.param(catalog_of("a", "b"), {}, ["main.a", "main.b"], [], [], [], id="all new"),
        pytest.param(catalog_of("a", "b"), ours(catalog_of("a", "b")), [], [], [], [], id="all unchanged"),
        pytest.param(
            catalog_of("a", "b"),
            {**ours(catalog_of("a")), **ours(catalog_of("b", title="old"))},
            [],
            ["main.b"],
            [],
            [],
            id="one changed",
        ),
        pytest.param(
            catalog_of("a"),
            {"main.a": Existing(owned=True, content_hash=None)},
            [],
            ["main.a"],
            [],
            [],
            id="ours without a readable spec is rewritten",
        ),
        pytest.param(
            catalog_of("a"),
            {**ours(catalog_of("a")), **ours(catalog_of("z")), **ours(catalog_of("gone"))},
            [],
            [],
            ["main.gone", "main.z"],
            [],
            id="gone ones deleted in sorted order",
        ),
        pytest.param(
            catalog_of("a", "b"),
            {**theirs("main.b"), **ours(catalog_of("a"))},
            [],
            [],
            [],
            ["main.b"],
            id="a name held by another object is never written",
        ),
        pytest.param(
            catalog_of("a"),
            {**ours(catalog_of("a")), **theirs("main.stray")},
            [],
            [],
            [],
            [],
            id="an object we do not control is never deleted",
        ),
        pytest.param(
            catalog_of("a", "new"),
            {**ours(catalog_of("a", title="old")), **ours(catalog_of("old"))},
            ["main.new"],
            ["main.a"],
            ["main.old"],
            [],
            id="changed, new and gone together",
        ),
    ],
)
def test_plan_sync(
    catalog: Catalog,
    existing: dict[str, Existing],
    create: list[str],
    update: list[str],
    delete: list[str],
    taken: list[str],
) -> None:
    plan = plan_sync(catalog, existing)
    assert names(plan.create) == create
    assert names(plan.update) == update
    assert plan.delete == delete
    assert plan.taken == taken
    assert len(plan.create) + len(plan.update) + len(plan.taken) + plan.unchanged == len(catalog.entries)
    assert plan.writes == len(create) + len(update) + len(delete)


def marketapp(name: str, spec: dict[str, Any], refs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": name, "ownerReferences": refs}, "spec": spec}


def ref(uid: str, *, controller: bool = True, kind: str = "MarketSource") -> dict[str, Any]:
    return {"kind": kind, "uid": uid, "controller": controller, "name": "x"}


def test_existing_of_reads_ownership_and_hashes_the_live_spec() -> None:
    catalog = catalog_of("a")
    wire = catalog.entries["main.a"].spec.wire()
    found = existing_of(
        [
            marketapp("main.a", wire, [ref(UID)]),
            marketapp("main.b", wire, [ref("another-uid")]),
            marketapp("main.c", wire, []),
            marketapp("main.d", wire, [ref(UID, controller=False)]),
            marketapp("main.e", {**wire, "price": {"amount": "0.01", "currency": "USD"}}, [ref(UID)]),
        ],
        UID,
    )
    assert found["main.a"] == Existing(owned=True, content_hash=content_hash(wire))
    assert not found["main.b"].owned, "another source's (or an old incarnation's) object"
    assert not found["main.c"].owned, "a person's object without an owner"
    assert not found["main.d"].owned, "an owner that is not the controller"
    plan = plan_sync(catalog_of("a", "b", "c", "d", "e"), found)
    assert names(plan.update) == ["main.e"], "a hand-edited object of ours is put back"
    assert plan.taken == ["main.b", "main.c", "main.d"]


# --- names and ownership ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("acme", True),
        ("acme-pro", True),
        ("a", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("acme.pro", False),
        ("Acme", False),
        ("-acme", False),
        ("acme-", False),
        ("", False),
    ],
)
def test_valid_source_name(name: str, valid: bool) -> None:
    assert valid_source_name(name) is valid


def test_entry_belongs_checks_source_app_and_controller_uid() -> None:
    body = marketapp("acme.pro.vaultlite", {"source": "acme", "app": "pro.vaultlite"}, [ref(UID)])
    assert entry_belongs(body, source="acme", source_uid=UID, app="pro.vaultlite")
    # The paid app of a source `acme.pro` is not what acme's free chart wrote under that name.
    assert not entry_belongs(body, source="acme.pro", source_uid=UID, app="vaultlite")
    assert not entry_belongs(body, source="acme", source_uid="other", app="pro.vaultlite")
    assert not controlled_by({"metadata": {"ownerReferences": [ref(UID, kind="Payment")]}}, UID)


# --- interval floor ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds", "noted"),
    [
        ("10m", 600.0, False),
        ("30s", 30.0, False),
        ("29s", 30.0, True),
        ("0s", 30.0, True),
        ("500ms", 30.0, True),
        ("1h30m", 5400.0, False),
    ],
)
def test_effective_interval_never_under_the_minimum(text: str, seconds: float, noted: bool) -> None:
    got, note = effective_interval(text, 30.0)
    assert got == seconds
    assert (note is not None) is noted
    if note:
        assert text in note
        assert "30s" in note


def test_effective_interval_refuses_text_that_is_no_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        effective_interval("soon", 30.0)


# --- what status says -------------------------------------------------------------------------------


def source(**spec: Any) -> MarketSource:
    return MarketSource.model_validate(
        {"metadata": {"name": "main"}, "spec": {"url": "https://c.example", **spec}}
    )


def test_ready_summary_counts_notes_and_keeps_them_while_unchanged() -> None:
    status = MarketSourceStatus(app_count=3, revision="sha256:" + "a" * 64)
    first = ready_summary(source(), status, changed=True, skipped=2, taken=1)
    assert first.ready is True
    assert first.message.startswith("3 apps from https://c.example at revision sha256:aaaaaaaaaaaa")
    assert "2 charts left out" in first.message
    assert "1 names are held by objects this source does not control" in first.message
    status.conditions = conditions_for(first, generation=1, previous=[], now=datetime.now(UTC))
    again = ready_summary(source(), status, changed=False)
    assert again.message == first.message


def test_keep_note_says_the_last_good_catalog_stays() -> None:
    assert keep_note("Broken.", MarketSourceStatus()) == "Broken."
    assert keep_note("Broken.", MarketSourceStatus(app_count=1)).endswith(
        "The last good catalog (1 app) is kept."
    )


def gateway(key: str) -> dict[str, Any]:
    return {"url": "https://pay.example", "secretRef": {"name": "s", "namespace": "n"}, "publicKey": key}


def test_key_problem_stalls_on_a_key_that_cannot_verify_anything() -> None:
    good = base64.b64encode(bytes(range(32))).decode()
    assert key_problem(source()) is None
    assert key_problem(source(payment=gateway(good))) is None
    short = base64.b64encode(bytes(30)).decode() + "AAAA"  # passes the pattern, decodes to 33 bytes
    problem = key_problem(source(payment=gateway(short)))
    assert problem is not None
    assert (problem.ready, problem.reason, problem.stalled) == (False, "InvalidPublicKey", True)
    assert "base64" in problem.message
    assert "The catalog is synced" in problem.message


@pytest.mark.parametrize(
    ("reason", "stalled"),
    [
        ("UnsupportedSourceType", True),
        ("InvalidRepositoryURL", True),
        ("IndexTooLarge", False),
        ("RepositoryTimeout", False),
        ("InvalidIndex", False),
    ],
)
def test_failure_summary_stalls_only_when_a_new_spec_is_the_only_cure(reason: str, stalled: bool) -> None:
    summary = failure_summary(SourceError(reason, "It broke." + "!" * 5000), MarketSourceStatus(app_count=2))
    assert (summary.ready, summary.reason, summary.stalled) == (False, reason, stalled)
    assert len(summary.message) <= 1000


def test_with_note_adds_a_note_once() -> None:
    summary = ready_summary(source(), MarketSourceStatus(app_count=1), changed=True)
    noted = with_note(summary, "the interval is raised")
    assert noted.message.endswith("Note: the interval is raised.")
    assert with_note(noted, "the interval is raised") == noted
    assert with_note(summary, None) == summary
