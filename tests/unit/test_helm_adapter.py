"""Helm adapter, pure parts: stderr to a reason, release records as Helm stores them, manifests."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import pytest

from kubemart.adapters.helm import (
    HelmError,
    ReleaseHistory,
    ReleaseRecord,
    classify,
    decode_release,
    manifest_objects,
)

# --- classify ---------------------------------------------------------------------------------------

SCHEMA = """\
Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following chart(s):
demo:
- replicaCount: Invalid type. Expected: integer, given: string
"""
DEADLINE = "Error: INSTALLATION FAILED: context deadline exceeded\n"
WAIT_TIMEOUT = "Error: UPGRADE FAILED: timed out waiting for the condition\n"
CANCELED = "Error: UPGRADE FAILED: context canceled\n"
TEMPLATE = (
    "Error: INSTALLATION FAILED: template: demo/templates/deployment.yaml:12:20: executing "
    '"demo/templates/deployment.yaml" at <.Values.image.tag>: nil pointer evaluating interface {}.tag\n'
)
REQUIRED = (
    "Error: UPGRADE FAILED: execution error at (demo/templates/secret.yaml:3:11): "
    "a password is required: set auth.password\n"
)
PARSE = 'Error: INSTALLATION FAILED: parse error at (demo/templates/_helpers.tpl:4): function "nope" not defined\n'
CONFLICT = (
    "Error: INSTALLATION FAILED: rendered manifests contain a resource that already exists. Unable to "
    'continue with install: ConfigMap "demo-config" in namespace "apps" exists and cannot be imported into '
    "the current release: invalid ownership metadata; label validation error: missing key "
    '"app.kubernetes.io/managed-by": must be set to "Helm"; annotation validation error: missing key '
    '"meta.helm.sh/release-name": must be set to "demo"\n'
)
LOCKED = "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"
NO_NAMESPACE = 'Error: INSTALLATION FAILED: create: failed to create: namespaces "apps" not found\n'
FORBIDDEN = (
    'Error: INSTALLATION FAILED: secrets is forbidden: User "system:serviceaccount:kubemart:kubemart" '
    'cannot create resource "secrets" in API group "" in the namespace "apps"\n'
)
GENERIC = (
    "WARNING: Kubernetes configuration file is group-readable. This is insecure. Location: /root/.kube/config\n"
    'Error: INSTALLATION FAILED: Service "demo" is invalid: spec.ports[0].port: Invalid value: 0: '
    "must be between 1 and 65535, inclusive\n"
)


CASES = [
    pytest.param(SCHEMA, "install", "ValuesSchemaViolation", False, "Fix spec.values", id="values schema"),
    pytest.param(
        DEADLINE, "install", "ReleaseNotReady", True, "spec.timeout", id="context deadline exceeded"
    ),
    pytest.param(WAIT_TIMEOUT, "upgrade", "ReleaseNotReady", True, "spec.timeout", id="timed out waiting"),
    pytest.param(CANCELED, "upgrade", "OperationCanceled", True, "The upgrade was canceled", id="canceled"),
    pytest.param(TEMPLATE, "install", "ChartRenderFailed", False, ".Values.image.tag", id="template error"),
    pytest.param(REQUIRED, "upgrade", "ChartRenderFailed", False, "a password is required", id="required"),
    pytest.param(
        PARSE, "install", "ChartRenderFailed", False, 'function "nope" not defined', id="parse error"
    ),
    pytest.param(CONFLICT, "install", "ResourceConflict", False, 'ConfigMap "demo-config"', id="ownership"),
    pytest.param(LOCKED, "upgrade", "ReleaseLocked", True, "locked by another operation", id="locked"),
    pytest.param(
        NO_NAMESPACE, "install", "TargetNamespaceNotFound", True, "Create the namespace", id="no ns"
    ),
    pytest.param(FORBIDDEN, "install", "Forbidden", True, "not allowed to install", id="forbidden"),
    pytest.param(GENERIC, "install", "ObjectRejected", False, "spec.ports[0].port", id="object rejected"),
    pytest.param(
        "Error: INSTALLATION FAILED: something nobody foresaw\n",
        "install",
        "InstallFailed",
        True,
        "something nobody foresaw",
        id="generic install",
    ),
    pytest.param(
        'Error: INSTALLATION FAILED: 1 error occurred:\n\t* Deployment.apps "x" is forbidden: quota exceeded\n\n',
        "install",
        "Forbidden",
        True,
        "quota exceeded",
        id="multi-error keeps its cause",
    ),
    pytest.param(
        "Error: uninstall: Release not loaded: demo: release: not found\n",
        "uninstall",
        "UninstallFailed",
        True,
        "release: not found",
        id="generic uninstall",
    ),
    pytest.param(
        "Error: no deployed releases\n",
        "rollback",
        "RollbackFailed",
        True,
        "no deployed",
        id="generic rollback",
    ),
    pytest.param("", "upgrade", "UpgradeFailed", True, "helm failed without a message", id="empty stderr"),
    pytest.param(
        "something odd happened\n\n",
        "install",
        "InstallFailed",
        True,
        "something odd happened",
        id="no Error:",
    ),
]


@pytest.mark.parametrize(("stderr", "operation", "reason", "retryable", "mentions"), CASES)
def test_classify(stderr: str, operation: str, reason: str, retryable: bool, mentions: str) -> None:
    err = classify(stderr, operation=operation)
    assert isinstance(err, HelmError)
    assert err.reason == reason
    assert err.retryable is retryable
    assert mentions in err.message
    assert str(err) == err.message
    assert re.fullmatch(r"[A-Z][A-Za-z]+", err.reason), "a CamelCase reason for conditions"


@pytest.mark.parametrize(
    ("stderr", "operation"),
    [
        pytest.param(
            *case.values[:2],
            id=case.id,
        )
        for case in CASES
    ],
)
def test_classify_message_is_one_readable_sentence(stderr: str, operation: str) -> None:
    assert_readable(classify(stderr, operation=operation).message)


def assert_readable(message: str) -> None:
    """What a person reads in the Ready condition: one line, a capital, a full stop, no raw prefix."""
    assert "\n" not in message
    assert message == message.strip()
    assert message[0].isupper() or message.startswith("helm "), message
    assert message.endswith("."), message
    assert not message.endswith(".."), message
    assert not re.search(r"[:;,]\.", message), f"dangling punctuation: {message}"
    assert "Error:" not in message, message
    assert "WARNING" not in message, message


@pytest.mark.parametrize(
    "stderr",
    [
        pytest.param(SCHEMA, id="values schema"),
        pytest.param(DEADLINE, id="deadline"),
        pytest.param(TEMPLATE, id="template"),
        pytest.param(CONFLICT, id="conflict"),
        pytest.param(NO_NAMESPACE, id="namespace"),
        pytest.param(FORBIDDEN, id="forbidden"),
        pytest.param(GENERIC, id="generic"),
    ],
)
def test_classify_keeps_full_stderr_as_detail(stderr: str) -> None:
    assert classify(stderr, operation="install").detail == stderr


def test_classify_caps_the_quoted_line() -> None:
    err = classify("Error: " + "x" * 5000, operation="upgrade")
    assert err.reason == "UpgradeFailed"
    assert len(err.message) < 700


def test_classify_is_case_insensitive() -> None:
    assert classify("ERROR: CONTEXT DEADLINE EXCEEDED", operation="install").reason == "ReleaseNotReady"


def test_schema_violation_message_names_the_bad_value() -> None:
    err = classify(SCHEMA, operation="install")
    assert (
        "rejected the values: demo: replicaCount: Invalid type. Expected: integer, given: string."
        in err.message
    )
    assert_readable(err.message)


# --- decode_release ---------------------------------------------------------------------------------

RELEASE: dict[str, Any] = {
    "name": "demo",
    "namespace": "apps",
    "version": 3,
    "info": {"status": "deployed", "description": "Upgrade complete"},
    "chart": {"metadata": {"name": "demo", "version": "1.2.0", "appVersion": "2.0"}},
    "config": {"replicaCount": 2},
    "manifest": "---\n# Source: demo/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
}


def secret_data(release: dict[str, Any], *, gzipped: bool = True) -> str:
    """What `data.release` of Helm's Secret holds: Helm's base64 of gzipped JSON, base64'd by the API."""
    raw = json.dumps(release).encode()
    if gzipped:
        raw = gzip.compress(raw)
    helm_encoded = base64.b64encode(raw)
    return base64.b64encode(helm_encoded).decode()


@pytest.mark.parametrize(
    "gzipped", [pytest.param(True, id="gzipped as Helm writes it"), pytest.param(False, id="plain JSON")]
)
def test_decode_release_round_trip(gzipped: bool) -> None:
    assert decode_release(secret_data(RELEASE, gzipped=gzipped)) == RELEASE


def test_decode_release_keeps_unicode() -> None:
    release = {**RELEASE, "config": {"greeting": "grüß dich ✓"}}
    assert decode_release(secret_data(release))["config"] == {"greeting": "grüß dich ✓"}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(base64.b64encode(base64.b64encode(b"not json")).decode(), ValueError, id="not JSON"),
        pytest.param(
            base64.b64encode(base64.b64encode(b"\x1f\x8bbroken")).decode(),
            Exception,
            id="gzip magic, bad body",
        ),
    ],
)
def test_decode_release_rejects_garbage(data: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_release(data)


# --- ReleaseHistory ---------------------------------------------------------------------------------


def rec(revision: int, status: str) -> ReleaseRecord:
    return ReleaseRecord(name="demo", namespace="apps", revision=revision, status=status)


@pytest.mark.parametrize(
    ("revisions", "current", "last_deployed"),
    [
        pytest.param((), None, None, id="no release"),
        pytest.param((rec(1, "deployed"),), 1, 1, id="one deployed"),
        pytest.param((rec(1, "failed"),), 1, None, id="failed first install"),
        pytest.param((rec(1, "pending-install"),), 1, None, id="pending first install"),
        pytest.param((rec(3, "failed"), rec(2, "deployed"), rec(1, "superseded")), 3, 2, id="failed upgrade"),
        pytest.param(
            (rec(3, "pending-upgrade"), rec(2, "deployed"), rec(1, "superseded")), 3, 2, id="pending upgrade"
        ),
        pytest.param(
            (rec(4, "failed"), rec(3, "failed"), rec(2, "superseded")), 4, 2, id="superseded counts"
        ),
        pytest.param((rec(2, "uninstalling"), rec(1, "uninstalled")), 2, None, id="uninstalling"),
        pytest.param((rec(3, "deployed"), rec(2, "superseded")), 3, 3, id="newest deployed"),
    ],
)
def test_release_history(
    revisions: tuple[ReleaseRecord, ...], current: int | None, last_deployed: int | None
) -> None:
    history = ReleaseHistory(revisions)
    assert (history.current.revision if history.current else None) == current
    assert (history.last_deployed.revision if history.last_deployed else None) == last_deployed


# --- manifest_objects -------------------------------------------------------------------------------

MANIFEST = """\
---
# Source: demo/templates/empty.yaml
---
# Source: demo/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  ports:
  - name: http
    port: 80
---

---
# Source: demo/templates/notes.yaml
just: a mapping without kind
---
- a
- list
---
a plain string
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
...
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: demo
"""


def test_manifest_objects_keeps_only_objects_with_a_kind() -> None:
    objects = manifest_objects(MANIFEST)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Service", "demo"),
        ("Deployment", "demo"),
        ("Ingress", "demo"),
    ]
    assert objects[0]["spec"]["ports"] == [{"name": "http", "port": 80}]


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param("", id="empty"),
        pytest.param("---\n---\n---\n", id="only separators"),
        pytest.param("# just a comment\n", id="only a comment"),
        pytest.param("kind:\n", id="null kind"),
    ],
)
def test_manifest_objects_of_nothing(manifest: str) -> None:
    assert manifest_objects(manifest) == []


# --- the subprocess wrapper -------------------------------------------------------------------------


def test_a_second_cancel_still_stops_and_reaps_the_subprocess(tmp_path: Any, caplog: Any) -> None:
    """Cancelled twice (a spec change, then a deletion), helm still gets SIGTERM and is reaped."""
    import asyncio
    import logging
    import os

    from kubemart.adapters.helm import _ExecCommand

    pidfile = tmp_path / "pid"
    script = tmp_path / "slow-helm"
    # Traps SIGTERM and takes a moment to exit, as helm does when it marks a release failed.
    script.write_text(
        f"#!/bin/sh\necho $$ > {pidfile}\ntrap 'sleep 0.3; exit 143' TERM\nwhile :; do sleep 0.05; done\n"
    )
    script.chmod(0o755)

    async def scenario() -> int:
        command = _ExecCommand(executable=str(script), history_max_revisions=1, term_grace=5)
        task = asyncio.ensure_future(command.run(["upgrade"]))
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()  # lands while the first cancel's cleanup waits for helm to exit
        with pytest.raises(asyncio.CancelledError):
            await task
        return int(pidfile.read_text())

    with caplog.at_level(logging.INFO, logger="kubemart.helm"):
        pid = asyncio.run(scenario())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped, not a zombie or an orphan
    assert any("command canceled" in r.getMessage() for r in caplog.records)
