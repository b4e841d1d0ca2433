"""spec.verify with provider helm: charts signed in the test with keys made by the test.

A signed chart installs; a tampered one (the archive changed after signing, the index digest updated
so only the signature catches it), an unsigned one and one signed by another key are refused
(Stalled VerificationFailed, an Event, no helm release, no retry storm); a missing Secret says so.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.apps import create_source, handled, install, request_reconcile, running
from support.cluster import BIN
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.signing import SigningKey, make_key
from support.wait import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SigningKey]:
    home = tmp_path_factory.mktemp("keys")
    return {"trusted": make_key(home, "Publisher"), "other": make_key(home, "Stranger")}


def keyring_secret(k8s: client.ApiClient, namespace: str, keyring: bytes, name: str = "trusted-keys") -> None:
    client.CoreV1Api(k8s).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name), data={"keyring": base64.b64encode(keyring).decode()}
        ),
    )


@pytest.fixture
def verified_source(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, namespace: str
) -> Iterator[str]:
    """A source requiring helm provenance against Secret <namespace>/trusted-keys (made by each test)."""
    name = f"v-{uuid.uuid4().hex[:8]}"
    create_source(
        objects,
        name,
        chart_repo.url,
        verify={"provider": "pgp", "secretRef": {"name": "trusted-keys", "namespace": namespace}},
    )
    yield name
    objects.delete("marketsources", name)


def synced(objects: Objects, source: str, app: str) -> None:
    """The source re-read after the test published its charts, and `app` in the catalog."""
    wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")
    stamp = request_reconcile(objects, "marketsources", source)
    wait_for(lambda: handled(objects, "marketsources", source, stamp), timeout=60, what="source re-synced")
    wait_for(
        lambda: [
            a
            for a in objects.list("marketapps")
            if a["spec"].get("app") == app and a["spec"].get("source") == source
        ],
        timeout=60,
        what=f"MarketApp {app}",
    )


def refused(
    objects: Objects, namespace: str, name: str, reason: str = "VerificationFailed"
) -> dict[str, Any]:
    def failed() -> dict[str, Any] | None:
        c = condition(objects.get("appinstalls", name, namespace))
        return c if c and c["status"] == "False" and c["reason"] == reason else None

    cond = wait_for(failed, timeout=90, what=f"Ready=False reason {reason}")
    wait_for(
        lambda: any(r == reason and t == "Warning" for t, r, _ in objects.events_for(name, namespace)),
        timeout=30,
        what=f"a Warning Event {reason}",
    )
    return cond


def no_release(k8s: client.ApiClient, namespace: str, name: str, log: str) -> None:
    secrets = client.CoreV1Api(k8s).list_namespaced_secret(
        namespace, label_selector=f"owner=helm,name={name}"
    )
    assert secrets.items == [], "no helm release was created"
    assert not re.search(rf"running command: \S*helm upgrade {name} ", log), "helm install never ran"


def verify_runs(log: str, archive: str) -> int:
    return len(re.findall(rf"running command: \S*helm verify {re.escape(archive)}\b", log))


def stalled_without_storm(
    objects: Objects, operator: OperatorProcess, namespace: str, name: str, archive: str, since: int
) -> None:
    """Stalled; asking again re-checks nothing (the refusal is remembered) and runs no helm."""
    assert condition(objects.get("appinstalls", name, namespace), "Stalled") is not None
    stamp = request_reconcile(objects, "appinstalls", name, namespace)
    wait_for(
        lambda: handled(objects, "appinstalls", name, stamp, namespace), timeout=60, what="reconciled again"
    )
    log = operator.log(since)
    assert verify_runs(log, archive) <= 1, "a refused chart is not verified again while nothing changed"
    assert "Traceback" not in log


def test_signed_chart_installs(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    namespace: str,
    keys: dict[str, SigningKey],
    verified_source: str,
) -> None:
    trusted = keys["trusted"]
    # Armored, as people hand keys out: helm reads only binary keyrings, the operator converts it.
    keyring_secret(k8s, namespace, trusted.public_armored)
    chart_repo.add_chart("signed", "0.1.0", sign=(trusted.name, trusted.secring))
    synced(objects, verified_source, "signed")
    since = operator.log_size()
    install(objects, namespace, "signed", source=verified_source, app="signed")
    wait_for(lambda: running(objects, namespace, "signed"), timeout=120, what="signed chart Running")
    assert any("signed-0.1.0.tgz.prov" in p for p in chart_repo.log.paths()), "the .prov was fetched"
    # A second install of the same digest finds the mark next to the archive: no second helm verify.
    install(objects, namespace, "again", source=verified_source, app="signed")
    wait_for(lambda: running(objects, namespace, "again"), timeout=120, what="second install Running")
    log = operator.log(since)
    assert verify_runs(log, "signed-0.1.0.tgz") == 1
    assert trusted.public_armored.decode().splitlines()[3] not in log, "no key material in the log"


def test_tampered_chart_is_refused_until_fixed(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    namespace: str,
    keys: dict[str, SigningKey],
    verified_source: str,
    tmp_path: Path,
) -> None:
    trusted = keys["trusted"]
    keyring_secret(k8s, namespace, trusted.public)
    archive = chart_repo.add_chart("tampered", "0.1.0", sign=(trusted.name, trusted.secring))
    tamper(archive, tmp_path)
    chart_repo.reindex()  # the index now has the tampered archive's digest: only the signature catches it
    synced(objects, verified_source, "tampered")
    since = operator.log_size()
    install(objects, namespace, "tampered", source=verified_source, app="tampered")
    cond = refused(objects, namespace, "tampered")
    assert "tampered 0.1.0" in cond["message"]
    assert "changed after it was signed" in cond["message"]
    no_release(k8s, namespace, "tampered", operator.log(since))
    stalled_without_storm(objects, operator, namespace, "tampered", "tampered-0.1.0.tgz", since)

    # The publisher signs the chart again: a new digest in the index, checked and installed.
    archive.unlink()
    Path(f"{archive}.prov").unlink()
    shutil.rmtree(chart_repo.src / "tampered-0.1.0")
    chart_repo.add_chart(
        "tampered", "0.1.0", sign=(trusted.name, trusted.secring), values={"message": "fixed"}
    )
    request_reconcile(objects, "marketsources", verified_source)
    wait_for(lambda: running(objects, namespace, "tampered"), timeout=120, what="Running once re-signed")


def test_unsigned_chart_is_refused(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    namespace: str,
    keys: dict[str, SigningKey],
    verified_source: str,
) -> None:
    keyring_secret(k8s, namespace, keys["trusted"].public)
    chart_repo.add_chart("unsigned", "0.1.0")
    synced(objects, verified_source, "unsigned")
    since = operator.log_size()
    install(objects, namespace, "unsigned", source=verified_source, app="unsigned")
    cond = refused(objects, namespace, "unsigned")
    assert "not signed" in cond["message"]
    assert "unsigned-0.1.0.tgz.prov" in cond["message"]
    no_release(k8s, namespace, "unsigned", operator.log(since))
    assert condition(objects.get("appinstalls", "unsigned", namespace), "Stalled") is not None


def test_chart_signed_by_another_key_is_refused(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    namespace: str,
    keys: dict[str, SigningKey],
    verified_source: str,
) -> None:
    keyring_secret(k8s, namespace, keys["trusted"].public)
    other = keys["other"]
    chart_repo.add_chart("foreign", "0.1.0", sign=(other.name, other.secring))
    synced(objects, verified_source, "foreign")
    since = operator.log_size()
    install(objects, namespace, "foreign", source=verified_source, app="foreign")
    cond = refused(objects, namespace, "foreign")
    assert "not in the keyring" in cond["message"]
    no_release(k8s, namespace, "foreign", operator.log(since))
    stalled_without_storm(objects, operator, namespace, "foreign", "foreign-0.1.0.tgz", since)

    # The admin trusts that key (a source change): the AppInstall goes on at once, not at the resync.
    keyring_secret(k8s, namespace, other.public, name="other-keys")
    objects.patch(
        "marketsources",
        verified_source,
        {"spec": {"verify": {"secretRef": {"name": "other-keys", "namespace": namespace}}}},
    )
    wait_for(
        lambda: running(objects, namespace, "foreign"), timeout=60, what="Running once its key is trusted"
    )


def test_missing_secret_is_reported_then_created(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    namespace: str,
    keys: dict[str, SigningKey],
    verified_source: str,
) -> None:
    trusted = keys["trusted"]
    chart_repo.add_chart("keyless", "0.1.0", sign=(trusted.name, trusted.secring))
    synced(objects, verified_source, "keyless")
    since = operator.log_size()
    install(objects, namespace, "keyless", source=verified_source, app="keyless")
    cond = refused(objects, namespace, "keyless", reason="VerificationSecretNotFound")
    assert f"Secret {namespace}/trusted-keys" in cond["message"]
    no_release(k8s, namespace, "keyless", operator.log(since))
    keyring_secret(k8s, namespace, trusted.public)
    wait_for(
        lambda: running(objects, namespace, "keyless"), timeout=120, what="Running once the Secret exists"
    )


def tamper(archive: Path, work: Path) -> None:
    """Change a values default inside the signed archive and package it again under the same name."""
    unpacked = work / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    chart = next(p for p in unpacked.iterdir() if p.is_dir())
    values = chart / "values.yaml"
    values.write_text(values.read_text() + "injected: true\n")
    out = work / "out"
    out.mkdir()
    subprocess.run(
        [str(BIN / "helm"), "package", str(chart), "-d", str(out)], check=True, capture_output=True
    )
    shutil.copy(out / archive.name, archive)
