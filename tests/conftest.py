"""Fixtures: the real cluster (session), a fresh namespace per test, and the operator process."""

from __future__ import annotations

import faulthandler
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from support.apps import SCHEMA, create_source
from support.cluster import ROOT, Cluster, start_cluster, stop_cluster
from support.gateway import Gateway
from support.kube import Objects, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for

_operator_log_key = pytest.StashKey[tuple[OperatorProcess, int]]()
_stderr_key = pytest.StashKey[int]()

# pytest-timeout fails a test that runs past `timeout` (600 s) by a signal, once; something that
# hangs again after that (a second wait in a teardown) would hold the run until CI's own limit.
# Past this, every thread's stack goes to the real stderr, the local cluster is taken down and the
# run stops.
WATCHDOG_SECONDS = 900


def pytest_configure(config: pytest.Config) -> None:
    # Capture is suspended here, so fd 2 is still the terminal (or CI's log), not a capture file.
    config.stash[_stderr_key] = os.dup(2)


def _give_up(stderr: int) -> None:
    os.write(stderr, f"\nwatchdog: one test ran past {WATCHDOG_SECONDS}s; stopping the run\n".encode())
    if os.environ.get("KUBEMART_TEST_CLUSTER") != "external":
        subprocess.run(
            [str(ROOT / "hack" / "cluster.sh"), "down"],
            stdout=stderr,
            stderr=stderr,
            check=False,
            timeout=120,
        )
    os._exit(1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    stderr = item.config.stash[_stderr_key]
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, file=stderr)
    timer = threading.Timer(WATCHDOG_SECONDS + 5, _give_up, args=(stderr,))
    timer.daemon = True
    timer.start()
    try:
        return (yield)
    finally:
        timer.cancel()
        faulthandler.cancel_dump_traceback_later()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Any test that reaches the cluster is marked, so `-m 'not cluster'` runs the fast unit tests alone.
    for item in items:
        if {"cluster", "namespace", "operator", "k8s", "crds", "objects"} & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    c = start_cluster()
    os.environ["KUBECONFIG"] = str(c.kubeconfig)
    yield c
    stop_cluster(c)


@pytest.fixture(scope="session")
def k8s(cluster: Cluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, k8s: client.ApiClient) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(k8s)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    """The generated CRDs, applied server-side and Established."""
    cluster.run("kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.run("kubectl", "wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))


@pytest.fixture(scope="session")
def objects(k8s: client.ApiClient, crds: None) -> Objects:
    return Objects(k8s)


@pytest.fixture
def chart_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartRepo]:
    repo = ChartRepo(tmp_path_factory.mktemp("repo"))
    yield repo
    repo.close()


@pytest.fixture(scope="session")
def operator_session(
    cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(
        cluster,
        extra_env={
            "KUBEMART_CHART_CACHE_DIR": str(tmp_path_factory.mktemp("charts")),
            # Some scenarios install into a second namespace; tests/test_tenancy.py checks the default policy.
            "KUBEMART_ALLOW_CROSS_NAMESPACE": "true",
            # NotificationSinks post to receivers on 127.0.0.1 over http (tests/test_notifications.py);
            # a receiver that comes back is retried within 2 s.
            "KUBEMART_NOTIFY_ALLOW_PRIVATE": "true",
            "KUBEMART_NOTIFY_ALLOW_HTTP": "true",
            "KUBEMART_NOTIFY_BACKOFF_MAX": "2",
        },
    )
    op.start()
    yield op
    op.stop()


@pytest.fixture
def shared_operator_paused(operator_session: OperatorProcess) -> Iterator[None]:
    """The shared operator stopped, for a test that runs operators of its own; started again after."""
    operator_session.stop()
    yield
    operator_session.start()


@pytest.fixture
def operator(request: pytest.FixtureRequest, operator_session: OperatorProcess) -> OperatorProcess:
    """The shared operator; the part of its log written during a failing test is attached to it."""
    request.node.stash[_operator_log_key] = (operator_session, operator_session.log_size())
    return operator_session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    entry = item.stash.get(_operator_log_key, None)
    if entry is not None and report.failed:  # type: ignore[attr-defined]
        op, since = entry
        report.sections.append(("operator log", op.log(since)[-20000:]))  # type: ignore[attr-defined]
    ns = getattr(item, "funcargs", {}).get("namespace")
    if report.failed and call.when == "call" and isinstance(ns, str):  # type: ignore[attr-defined]
        # What the operator reported, as it stood when the test failed.
        found = subprocess.run(
            [str(ROOT / "bin" / "kubectl"), "get", "appinstalls,payments", "-n", ns, "-o", "yaml"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        report.sections.append(("objects in the test namespace", (found.stdout or found.stderr)[-20000:]))  # type: ignore[attr-defined]
        sources = subprocess.run(
            [str(ROOT / "bin" / "kubectl"), "get", "marketsources", "-o", "yaml"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        report.sections.append(("MarketSources", (sources.stdout or sources.stderr)[-20000:]))  # type: ignore[attr-defined]
    return report


@pytest.fixture
def catalog(objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo) -> Iterator[str]:
    """A synced source with `hello` 0.1.0 and 0.2.0 (with a values schema)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    chart_repo.add_chart("hello", "0.1.0", schema=SCHEMA, reindex=False)
    chart_repo.add_chart("hello", "0.2.0", schema=SCHEMA)
    create_source(objects, name, chart_repo.url)
    wait_for(lambda: ready(objects.get("marketsources", name)), timeout=60, what="source Ready")
    yield name
    objects.delete("marketsources", name)


PAID = {"kubemart.io/price": "4.99 USD", "kubemart.io/developer": "Acme Apps", "kubemart.io/title": "Notes"}


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    yield gw
    gw.close()


@pytest.fixture
def shop(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    gateway: Gateway,
) -> Iterator[str]:
    """A source selling `notes` (4.99 USD) through `gateway`, and giving away `blog`."""
    name = f"t-shop-{uuid.uuid4().hex[:6]}"
    ns = "default"
    client.CoreV1Api(k8s).create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            string_data={"token": gateway.token, "webhookSecret": "whsec"},
        ),
    )
    chart_repo.add_chart("notes", "1.0.0", annotations=PAID, reindex=False)
    chart_repo.add_chart("blog", "1.0.0")
    create_source(
        objects,
        name,
        chart_repo.url,
        payment={
            "url": gateway.url,
            "secretRef": {"name": name, "namespace": ns},
            "publicKey": gateway.public_key,
        },
    )
    wait_for(lambda: ready(objects.get("marketsources", name)), timeout=60, what="shop Ready")
    yield name
    objects.delete("marketsources", name)
    client.CoreV1Api(k8s).delete_namespaced_secret(name, ns)
