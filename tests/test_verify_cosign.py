"""spec.verify with provider cosign: OCI charts pushed with `helm push` to a real registry on 127.0.0.1
(TLS from a test CA, htpasswd), signed in the test with the real cosign and keys made by the test.

A signed chart installs (and a second install runs no second cosign); an unsigned one, one signed by
another key and one carrying another digest's signature are refused (Stalled VerificationFailed, an
Event, no helm release); trusting the other key in the Secret lets its chart go on.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.apps import install, request_reconcile, running
from support.cluster import BIN, Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.registry import PASSWORD, USERNAME, Registry
from support.wait import wait_for

pytestmark = pytest.mark.cluster

KEY_PASSWORD = "cosign-key-pass-7f3a"
SIGNATURE = "dev.cosignproject.cosign/signature"  # the layer annotation holding the base64 signature
_PUSHED = re.compile(r"^Digest: (sha256:[0-9a-f]{64})$", re.M)


@dataclass(frozen=True)
class Signer:
    """A cosign key pair made by `cosign generate-key-pair`, and the environment to sign with it."""

    key: Path
    public: bytes
    env: dict[str, str]

    def sign(self, ref: str) -> None:
        subprocess.run(
            [str(BIN / "cosign"), "sign", "--key", str(self.key), "--tlog-upload=false", "--yes", ref],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )


def cosign_env(home: Path, registry: Registry) -> dict[str, str]:
    """Private HOME and DOCKER_CONFIG, the test CA trusted, the key's passphrase: as docs/sources/verification.md."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / "docker"),
        "TUF_ROOT": str(home / "tuf"),
        "SSL_CERT_FILE": str(registry.root / "ca.pem"),
        "COSIGN_PASSWORD": KEY_PASSWORD,
    }


def make_signer(home: Path, registry: Registry) -> Signer:
    home.mkdir(parents=True)
    env = cosign_env(home, registry)
    subprocess.run(
        [str(BIN / "cosign"), "generate-key-pair"],
        cwd=home,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert b"ENCRYPTED" in (home / "cosign.key").read_bytes(), "the private key is password-protected"
    # The password on stdin, not the command line; written to $DOCKER_CONFIG/config.json.
    subprocess.run(
        [str(BIN / "cosign"), "login", registry.host, "-u", USERNAME, "--password-stdin"],
        input=PASSWORD.encode(),
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Signer(key=home / "cosign.key", public=(home / "cosign.pub").read_bytes(), env=env)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("oci-cosign"))
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> dict[str, Signer]:
    home = tmp_path_factory.mktemp("cosign-keys")
    return {
        "trusted": make_signer(home / "trusted", registry),
        "other": make_signer(home / "other", registry),
    }


@pytest.fixture
def path() -> str:
    return f"c{uuid.uuid4().hex[:8]}"


def push(registry: Registry, path: str, name: str, version: str, **chart: Any) -> str:
    """`helm push`; the reference by digest (`host/path/name@sha256:...`) that cosign signs."""
    out = registry.helm("push", str(registry.package(name, version, **chart)), registry.url(path))
    found = _PUSHED.search(out)
    assert found, out
    return f"{registry.host}/{path}/{name}@{found.group(1)}"


@pytest.fixture
def source(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    signers: dict[str, Signer],
    path: str,
    cluster: Cluster,
) -> Iterator[str]:
    """Not created yet: `start(source)` once the test pushed and signed its charts."""
    name = f"cs-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="oci-auth"),
            string_data={"username": USERNAME, "password": PASSWORD, "ca.crt": registry.ca_pem},
        ),
    )
    # As the docs say: `kubectl create secret generic ... --from-file=cosign.pub`.
    cluster.run(
        "kubectl",
        "create",
        "secret",
        "generic",
        "cosign-keys",
        "-n",
        namespace,
        f"--from-file=cosign.pub={signers['trusted'].key.with_suffix('.pub')}",
    )
    yield name
    objects.delete("marketsources", name)


def trust(k8s: client.ApiClient, namespace: str, public: bytes) -> None:
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="cosign-keys"), string_data={"cosign.pub": public.decode()}
    )
    client.CoreV1Api(k8s).replace_namespaced_secret("cosign-keys", namespace, secret)


def start(
    objects: Objects, cluster: Cluster, registry: Registry, name: str, namespace: str, path: str, apps: int
) -> None:
    """The source, then `verify` added with the command of docs/sources/oci.md, "Signed charts (cosign)"."""
    objects.create(
        "marketsources",
        {
            "kind": "MarketSource",
            "metadata": {"name": name},
            "spec": {
                "type": "oci",
                "url": registry.url(path),
                "secretRef": {"name": "oci-auth", "namespace": namespace},
            },
        },
    )
    verify = {"provider": "cosign", "secretRef": {"name": "cosign-keys", "namespace": namespace}}
    cluster.run(
        "kubectl",
        "patch",
        "marketsource",
        name,
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": {"verify": verify}}),
    )
    wait_for(
        lambda: (
            (s := objects.get("marketsources", name))
            and ready(s)
            and s["status"].get("observedGeneration") == s["metadata"]["generation"] == 2
            and s["status"].get("appCount") == apps
        ),
        timeout=90,
        what=f"source Ready with verify and {apps} apps",
    )


def cosign_runs(registry: Registry, ref: str) -> int:
    """GETs of `ref`'s `sha256-<hex>.sig` manifest the registry saw: one per `cosign verify` (and per
    `cosign sign`, which reads what is there first: compare counts taken after signing)."""
    repository, digest = ref.split("/", 1)[1].split("@")
    tag = digest.replace(":", "-") + ".sig"
    return sum(1 for m, p in registry.requests() if m == "GET" and p == f"/v2/{repository}/manifests/{tag}")


def refused(objects: Objects, namespace: str, name: str) -> dict[str, Any]:
    def failed() -> dict[str, Any] | None:
        c = condition(objects.get("appinstalls", name, namespace))
        return c if c and c["status"] == "False" and c["reason"] == "VerificationFailed" else None

    cond = wait_for(failed, timeout=120, what="Ready=False reason VerificationFailed")
    wait_for(
        lambda: any(
            r == "VerificationFailed" and t == "Warning" for t, r, _ in objects.events_for(name, namespace)
        ),
        timeout=30,
        what="a Warning Event VerificationFailed",
    )
    assert condition(objects.get("appinstalls", name, namespace), "Stalled") is not None
    return cond


def no_secrets_in(text: str, signers: dict[str, Signer]) -> None:
    for secret in (KEY_PASSWORD, PASSWORD):
        assert secret not in text
    for signer in signers.values():
        private = signer.key.read_text().splitlines()[1]
        assert private not in text, "no private key material"


def no_release(k8s: client.ApiClient, namespace: str, name: str, log: str) -> None:
    secrets = client.CoreV1Api(k8s).list_namespaced_secret(
        namespace, label_selector=f"owner=helm,name={name}"
    )
    assert secrets.items == [], "no helm release was created"
    assert not re.search(rf"running command: \S*helm upgrade {name} ", log), "helm install never ran"


def test_signed_chart_installs_and_is_verified_once(
    objects: Objects,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    signers: dict[str, Signer],
    source: str,
    path: str,
    cluster: Cluster,
) -> None:
    ref = push(registry, path, "signed", "0.1.0")
    signers["trusted"].sign(ref)
    start(objects, cluster, registry, source, namespace, path, apps=1)  # the .sig tag is no catalog version
    before = cosign_runs(registry, ref)
    since = operator.log_size()
    install(objects, namespace, "signed", source=source, app="signed")
    wait_for(lambda: running(objects, namespace, "signed"), timeout=120, what="signed chart Running")
    assert cosign_runs(registry, ref) == before + 1
    # A second install of the same digest finds the mark next to the archive: cosign does not run again.
    install(objects, namespace, "again", source=source, app="signed")
    wait_for(lambda: running(objects, namespace, "again"), timeout=120, what="second install Running")
    assert cosign_runs(registry, ref) == before + 1
    log = operator.log(since)
    assert "Traceback" not in log
    no_secrets_in(log, signers)


def test_unsigned_chart_is_refused_until_signed(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    signers: dict[str, Signer],
    source: str,
    path: str,
    cluster: Cluster,
) -> None:
    ref = push(registry, path, "unsigned", "0.1.0")
    start(objects, cluster, registry, source, namespace, path, apps=1)
    since = operator.log_size()
    install(objects, namespace, "unsigned", source=source, app="unsigned")
    cond = refused(objects, namespace, "unsigned")
    assert "unsigned 0.1.0" in cond["message"]
    assert "no cosign signature" in cond["message"]
    no_release(k8s, namespace, "unsigned", operator.log(since))
    no_secrets_in(json.dumps(objects.get("appinstalls", "unsigned", namespace)), signers)

    # Signing adds a .sig tag, the chart's digest stays: a retry (kubectl market retry) verifies again.
    signers["trusted"].sign(ref)
    request_reconcile(objects, "appinstalls", "unsigned", namespace)
    wait_for(lambda: running(objects, namespace, "unsigned"), timeout=120, what="Running once signed")
    assert "Traceback" not in operator.log(since)


def test_chart_signed_by_another_key_goes_on_once_that_key_is_trusted(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    signers: dict[str, Signer],
    source: str,
    path: str,
    cluster: Cluster,
) -> None:
    ref = push(registry, path, "foreign", "0.1.0")
    signers["other"].sign(ref)
    start(objects, cluster, registry, source, namespace, path, apps=1)
    before = cosign_runs(registry, ref)
    since = operator.log_size()
    install(objects, namespace, "foreign", source=source, app="foreign")
    cond = refused(objects, namespace, "foreign")
    assert "signed by another key, or the signature was altered" in cond["message"]
    no_release(k8s, namespace, "foreign", operator.log(since))
    no_secrets_in(json.dumps(objects.get("appinstalls", "foreign", namespace)), signers)
    runs = cosign_runs(registry, ref)
    assert runs > before, "cosign ran"

    # The admin trusts that key in the source's Secret; the Secret is read on the next reconcile.
    trust(k8s, namespace, signers["other"].public)
    request_reconcile(objects, "appinstalls", "foreign", namespace)
    wait_for(
        lambda: running(objects, namespace, "foreign"), timeout=120, what="Running once its key is trusted"
    )
    assert cosign_runs(registry, ref) == runs + 1
    no_secrets_in(operator.log(since), signers)


def test_signature_of_another_digest_is_refused(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    signers: dict[str, Signer],
    source: str,
    path: str,
    cluster: Cluster,
) -> None:
    """A valid signature by the trusted key, but of 0.1.0, put where cosign looks for 0.2.0's (a replay)."""
    good = push(registry, path, "replayed", "0.1.0")
    signers["trusted"].sign(good)
    bad = push(registry, path, "replayed", "0.2.0")
    repository = f"{path}/replayed"
    good_tag, bad_tag = (ref.split("@")[1].replace(":", "-") + ".sig" for ref in (good, bad))
    registry.put_manifest(repository, bad_tag, registry.manifest(repository, good_tag))
    start(objects, cluster, registry, source, namespace, path, apps=1)
    since = operator.log_size()
    install(objects, namespace, "replayed", source=source, app="replayed", version="0.2.0")
    cond = refused(objects, namespace, "replayed")
    assert "replayed 0.2.0" in cond["message"]
    assert "the signature is of another digest" in cond["message"]
    no_release(k8s, namespace, "replayed", operator.log(since))
    no_secrets_in(json.dumps(objects.get("appinstalls", "replayed", namespace)), signers)
    assert cosign_runs(registry, bad) >= 1


def test_altered_signature_is_refused(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    signers: dict[str, Signer],
    source: str,
    path: str,
    cluster: Cluster,
) -> None:
    """The chart's own signature manifest pushed again with one byte of the signature changed."""
    ref = push(registry, path, "altered", "0.1.0")
    signers["trusted"].sign(ref)
    repository, tag = f"{path}/altered", ref.split("@")[1].replace(":", "-") + ".sig"
    manifest = registry.manifest(repository, tag)
    annotations = manifest["layers"][0]["annotations"]
    raw = bytearray(base64.b64decode(annotations[SIGNATURE]))
    raw[-1] ^= 0x01
    annotations[SIGNATURE] = base64.b64encode(bytes(raw)).decode()
    registry.put_manifest(repository, tag, manifest)
    start(objects, cluster, registry, source, namespace, path, apps=1)
    since = operator.log_size()
    install(objects, namespace, "altered", source=source, app="altered")
    cond = refused(objects, namespace, "altered")
    assert "the signature was altered" in cond["message"]
    no_release(k8s, namespace, "altered", operator.log(since))
    no_secrets_in(json.dumps(objects.get("appinstalls", "altered", namespace)), signers)


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("oci-cosign-token"), token=True)
    yield reg
    reg.close()


def test_signed_chart_installs_from_a_bearer_token_registry(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    token_registry: Registry,
    namespace: str,
    source: str,
    path: str,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    """The registry wants the token flow: cosign gets its token with the source's username/password."""
    signer = make_signer(tmp_path / "signer", token_registry)
    ref = push(token_registry, path, "tokened", "0.1.0")
    signer.sign(ref)
    client.CoreV1Api(k8s).replace_namespaced_secret(
        "oci-auth",
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="oci-auth"),
            string_data={"username": USERNAME, "password": PASSWORD, "ca.crt": token_registry.ca_pem},
        ),
    )
    trust(k8s, namespace, signer.public)
    start(objects, cluster, token_registry, source, namespace, path, apps=1)
    before = cosign_runs(token_registry, ref)
    since = operator.log_size()
    install(objects, namespace, "tokened", source=source, app="tokened")
    wait_for(lambda: running(objects, namespace, "tokened"), timeout=120, what="Running")
    assert cosign_runs(token_registry, ref) == before + 1
    no_secrets_in(operator.log(since), {"token": signer})
