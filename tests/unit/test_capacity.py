"""Does an app fit? Quantities, pod requests as the scheduler counts them, nodes, and the verdict (pure)."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kubemart.domain.capacity import (
    INSUFFICIENT,
    KUBE_VERSION,
    Capacity,
    FitInputs,
    InvalidQuantity,
    Need,
    NodeFree,
    Resources,
    capacity,
    fit,
    judge,
    kube_version_verdict,
    need_of,
    node_info,
    pod_requests,
    quantity,
)
from kubemart.models.marketapp import Requirements
from kubemart.release.decide import decide
from kubemart.release.fit import chart_kube_version
from kubemart.release.outcome import Outcome
from kubemart.release.summarize import RESYNC, summarize
from support.release_states import NOW, state

GI = 1 << 30


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("2", Decimal(2)),
        ("1.5Gi", Decimal(3 * (1 << 29))),
        ("256Mi", Decimal(256 << 20)),
        ("1e3", Decimal(1000)),
        ("1k", Decimal(1000)),
        (" 4 ", Decimal(4)),
        (3, Decimal(3)),
    ],
)
def test_quantities_read_as_kubernetes_reads_them(text: Any, value: Decimal) -> None:
    assert quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "lots", "-1", "NaN", "inf", "Infinity", "1e999999", "9" * 70, "1Xi", "1ki", None, True, [1]]
)
def test_odd_huge_or_negative_quantities_are_refused(text: Any) -> None:
    with pytest.raises(InvalidQuantity):
        quantity(text)


def container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in {"cpu": cpu, "memory": memory}.items() if v is not None}
    return {"name": "c", "resources": {"requests": requests}, **extra}


def test_a_pod_requests_the_sum_of_its_containers() -> None:
    spec = {"containers": [container("100m", "64Mi"), container("1", "1Gi")]}
    assert pod_requests(spec) == Resources(cpu=1100, memory=GI + (64 << 20))


def test_an_init_container_larger_than_the_containers_sets_the_request() -> None:
    spec = {"containers": [container("100m", "64Mi")], "initContainers": [container("2", "32Mi")]}
    assert pod_requests(spec) == Resources(cpu=2000, memory=64 << 20)


def test_sidecars_count_with_the_containers_and_under_later_init_containers() -> None:
    spec = {
        "containers": [container("1")],
        "initContainers": [container("500m", restartPolicy="Always"), container("1")],
        "overhead": {"cpu": "10m"},
    }
    # Running: 1 + 0.5 sidecar; the plain init container ran beside the sidecar: 1.5; plus overhead.
    assert pod_requests(spec) == Resources(cpu=1510)


def test_a_pod_without_requests_holds_nothing() -> None:
    assert pod_requests({"containers": [{"name": "c"}]}).empty


def node(
    name: str = "n1",
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    disk: str | None = None,
    arch: str = "amd64",
    ready: str = "True",
    **spec: Any,
) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, **({"ephemeral-storage": disk} if disk else {})}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/arch": arch}},
        "spec": spec,
        "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": ready}]},
    }


@pytest.mark.parametrize(
    ("given", "closed"),
    [
        (node(), None),
        (node(unschedulable=True), "cordoned"),
        (node(ready="False"), "not Ready"),
        (node(taints=[{"key": "gpu", "effect": "NoSchedule"}]), "tainted gpu:NoSchedule"),
        (node(taints=[{"key": "gone", "effect": "NoExecute"}]), "tainted gone:NoExecute"),
        (node(taints=[{"key": "soft", "effect": "PreferNoSchedule"}]), None),
    ],
)
def test_only_ready_uncordoned_untainted_nodes_are_open(given: dict[str, Any], closed: str | None) -> None:
    assert node_info(given).closed == closed


def test_free_capacity_is_allocatable_minus_requests_of_open_nodes() -> None:
    nodes = [node_info(node("a")), node_info(node("b", unschedulable=True))]
    cap = capacity(nodes, {"a": Resources(cpu=1500, memory=GI)})
    assert cap == Capacity((NodeFree("a", "amd64", Resources(2500, 7 * GI, 0), False),), closed=1)


CAP = Capacity(
    (
        NodeFree("small", "amd64", Resources(1000, 2 * GI, 10 * GI), True),
        NodeFree("big", "amd64", Resources(8000, 16 * GI, 0), False),
        NodeFree("pi", "arm64", Resources(2000, 4 * GI, 0), False),
    )
)


@pytest.mark.parametrize(
    "need",
    [
        pytest.param(Need(), id="nothing asked"),
        pytest.param(Need(Resources(8000, 16 * GI)), id="exactly one node's free"),
        pytest.param(Need(Resources(500, GI, 5 * GI)), id="disk where reported"),
        pytest.param(Need(Resources(4000, 0, 100 * GI)), id="disk not judged where not reported"),
        pytest.param(Need(Resources(1000), ("arm64",)), id="an architecture that has room"),
        pytest.param(Need(architectures=("arm64", "amd64")), id="one of the architectures"),
    ],
)
def test_an_app_fits_when_one_node_has_it_all(need: Need) -> None:
    assert fit(need, CAP, app="web") is None


def test_an_app_bigger_than_every_node_does_not_fit_and_says_the_numbers() -> None:
    verdict = fit(Need(Resources(9000, GI)), CAP, app="web")
    assert verdict is not None
    assert verdict.reason == INSUFFICIENT
    assert not verdict.stalled
    assert verdict.message.startswith("web needs cpu 9, memory 1Gi free on one node")
    assert "big cpu 8, memory 16Gi" in verdict.message
    assert "small cpu 1, memory 2Gi, disk 10Gi" in verdict.message


def test_the_sum_of_nodes_is_not_enough() -> None:
    # 8 + 2 + 1 CPUs are free in all, but no one node has 9.
    assert fit(Need(Resources(9000)), CAP, app="web") is not None


def test_an_architecture_no_node_has_is_named() -> None:
    verdict = fit(Need(architectures=("riscv64",)), CAP, app="web")
    assert verdict is not None
    assert verdict.reason == INSUFFICIENT
    assert "runs on riscv64 only" in verdict.message
    assert "amd64, arm64" in verdict.message


def test_a_big_cluster_gives_a_bounded_message() -> None:
    many = Capacity(tuple(NodeFree(f"node-{i:05}", "amd64", Resources(100, GI), False) for i in range(5000)))
    verdict = fit(Need(Resources(1000)), many, app="web")
    assert verdict is not None
    assert len(verdict.message) <= 901
    assert "4997 more nodes with less" in verdict.message


def test_requirements_read_from_the_catalog() -> None:
    req = Requirements(cpu="500m", memory="1Gi", disk="bogus", architectures=["AMD64 ", ""])
    assert need_of(req) == Need(Resources(500, GI, 0), ("amd64",))
    assert need_of(None) == Need()


@pytest.mark.parametrize(
    ("constraint", "version", "blocked"),
    [
        (">=1.30.0-0", "v1.36.3", False),
        ("<1.30.0-0", "v1.36.3", True),
        (">=1.20", "v1.28.3-eks-4f4795d", True),  # as helm reads it: no prerelease unless named
        (">=1.20.0-0", "v1.28.3-eks-4f4795d", False),
        (None, "v1.36.3", False),
        ("not a range ((", "v1.36.3", False),  # helm judges what we cannot read
        (">=1.20", None, False),
    ],
)
def test_kube_version_as_helm_reads_it(constraint: str | None, version: str | None, blocked: bool) -> None:
    verdict = kube_version_verdict(constraint, version, app="web")
    assert (verdict is not None) is blocked
    if verdict is not None:
        assert verdict.reason == KUBE_VERSION
        assert verdict.stalled


BIG = Requirements(cpu="9")
SMALL = Requirements(cpu="1")


@pytest.mark.parametrize(
    ("inputs", "installed", "blocked"),
    [
        pytest.param(FitInputs(requirements=BIG, capacity=CAP), False, INSUFFICIENT, id="install too big"),
        pytest.param(FitInputs(requirements=BIG), False, None, id="capacity unknown blocks nothing"),
        pytest.param(
            FitInputs(requirements=BIG, capacity=CAP), True, None, id="installed before the check: not judged"
        ),
        pytest.param(
            FitInputs(requirements=BIG, installed_with=Requirements(cpu="8"), capacity=CAP),
            True,
            None,
            id="upgrade asks 1 more cpu, which fits",
        ),
        pytest.param(
            FitInputs(requirements=Requirements(cpu="20"), installed_with=SMALL, capacity=CAP),
            True,
            INSUFFICIENT,
            id="upgrade asks 19 more cpus",
        ),
        pytest.param(
            FitInputs(requirements=SMALL, installed_with=BIG, capacity=Capacity()),
            True,
            None,
            id="upgrade asking less is never blocked",
        ),
        pytest.param(
            FitInputs(requirements=SMALL, capacity=CAP, kube_version="<1.20.0-0", cluster_version="v1.36.3"),
            False,
            KUBE_VERSION,
            id="kubeVersion excludes the cluster",
        ),
    ],
)
def test_judge(inputs: FitInputs, installed: bool, blocked: str | None) -> None:
    verdict = judge(inputs, app="web", installed=installed)
    assert (verdict.reason if verdict else None) == blocked


def test_waiting_for_capacity_is_reported_and_woken_by_an_event_not_backoff() -> None:
    given = state(fit=FitInputs(requirements=Requirements(cpu="9"), capacity=CAP))
    decision = decide(given, now=NOW)
    report = summarize(given, decision, Outcome(), now=datetime.now(UTC), history_limit=10)
    assert (report.summary.ready, report.summary.reason, report.summary.stalled) == (
        False,
        INSUFFICIENT,
        False,
    )
    assert report.status.phase is not None
    assert report.status.phase.value == "Pending"
    assert report.next == RESYNC  # the capacity watch wakes it; the resync is only a safety net
    assert [(n.type, n.reason) for n in report.notes] == [("Warning", INSUFFICIENT)]


def test_an_install_records_the_requirements_it_was_checked_against() -> None:
    given = state(fit=FitInputs(requirements=SMALL, capacity=CAP))
    decision = decide(given, now=NOW)
    report = summarize(given, decision, Outcome(), now=datetime.now(UTC), history_limit=10)
    assert report.status.requirements == SMALL
    none_declared = state(fit=FitInputs(capacity=CAP))
    report = summarize(
        none_declared, decide(none_declared, now=NOW), Outcome(), now=datetime.now(UTC), history_limit=10
    )
    assert report.status.requirements == Requirements(), (
        "recorded as none, so that a later version's are checked"
    )


def chart_archive(tmp_path: Path, chart_yaml: bytes, *, top: str = "web") -> Path:
    path = tmp_path / "web-1.0.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            (f"{top}/Chart.yaml", chart_yaml),
            (f"{top}/charts/sub/Chart.yaml", b"kubeVersion: '<1'\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_kube_version_is_read_from_the_charts_own_chart_yaml(tmp_path: Path) -> None:
    path = chart_archive(tmp_path, b"name: web\nversion: 1.0.0\nkubeVersion: '>=1.25.0-0'\n")
    assert chart_kube_version(path) == ">=1.25.0-0"
    assert chart_kube_version(chart_archive(tmp_path, b"name: web\nversion: 1.0.0\n")) is None


def test_an_unreadable_chart_gives_no_kube_version(tmp_path: Path) -> None:
    bomb = b"a: &a [x]\nb: &b [*a, *a]\nkubeVersion: '>=1'\n"
    assert chart_kube_version(chart_archive(tmp_path, bomb)) is None, "aliases are refused"
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"not a tarball")
    assert chart_kube_version(garbage) is None
    assert chart_kube_version(tmp_path / "missing.tgz") is None
